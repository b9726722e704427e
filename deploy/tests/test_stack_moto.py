"""deploy/swiftnfs.yaml created as a stack in moto (an in-process AWS emulator; no network):
the resources exist and are wired to each other as the design says.

What moto does not model, and how this test deals with it:
- AWS::EC2::Instance's SecurityGroupIds (VPC groups) are ignored by moto 5's CloudFormation
  support; `honor_security_group_ids` passes them on as AWS does, so that the server's groups
  can be checked on the instance moto creates.
- The public SSM parameter of the Debian AMI does not exist in moto: it is put in moto's
  parameter store, pointing at one of moto's AMIs.
- Wait conditions are not modelled (moto skips them), so ${ServerReadyHandle} stays
  unsubstituted in the server's user data; the clients are still created after the server.
- Volume encryption and type are not kept by moto's CloudFormation: test_template_security.py
  checks Encrypted: true in the template itself.
"""
import base64
import copy
import datetime
import os

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.ec2.models.instances import Instance  # noqa: E402
from moto.ssm.models import Parameter, ssm_backends  # noqa: E402

from conftest import TEMPLATE, load_template  # noqa: E402
from test_template import payload_files  # noqa: E402

REGION = "us-east-1"
DEBIAN_AMI_PARAMETER = load_template()["Parameters"]["ImageId"]["Default"]


@pytest.fixture
def honor_security_group_ids(monkeypatch):
    original = Instance.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        if "SecurityGroupIds" in props and "SecurityGroups" not in props:
            cloudformation_json = copy.deepcopy(cloudformation_json)
            cloudformation_json["Properties"]["SecurityGroups"] = props["SecurityGroupIds"]
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    monkeypatch.setattr(Instance, "create_from_cloudformation_json", classmethod(create))


@pytest.fixture
def aws(honor_security_group_ids, monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        yield {s: boto3.client(s, region_name=REGION) for s in ("ec2", "cloudformation", "autoscaling")}


def network_and_ami(ec2):
    """A VPC with one subnet, and the AMI that the template's public SSM parameter names."""
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=f"{REGION}b")["Subnet"]["SubnetId"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ssm_backends[DEFAULT_ACCOUNT_ID][REGION]._parameters[DEBIAN_AMI_PARAMETER].append(Parameter(
        account_id=DEFAULT_ACCOUNT_ID, name=DEBIAN_AMI_PARAMETER, value=ami, parameter_type="String",
        description=None, allowed_pattern=None, keyid=None,
        last_modified_date=datetime.datetime.now(), version=1, data_type="aws:ec2:image"))
    return vpc, subnet, ami


def create_stack(cf, name, template, params, **kwargs):
    """Creates the stack; its physical resource ids and its outputs, by logical name."""
    with open(template, encoding="utf-8") as f:
        body = f.read()
    cf.create_stack(StackName=name, TemplateBody=body,
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()], **kwargs)
    st = cf.describe_stacks(StackName=name)["Stacks"][0]
    assert st["StackStatus"] == "CREATE_COMPLETE", st.get("StackStatusReason")
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId")
                for r in cf.describe_stack_resources(StackName=name)["StackResources"]
                if "LogicalResourceId" in r}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in st["Outputs"]}
    return physical, outputs


@pytest.fixture
def stack(aws):
    vpc, subnet, ami = network_and_ami(aws["ec2"])
    params = {
        "VpcId": vpc, "SubnetId": subnet, "AdminCidr": "203.0.113.0/24",
        "ReleaseUrl": "https://releases.example.invalid/swiftnfs-linux-x86_64.tar.gz",
        "ClientCount": "3", "DurableVolumeSize": "250",
    }
    physical, outputs = create_stack(aws["cloudformation"], "nfs", TEMPLATE, params)
    return {"vpc": vpc, "subnet": subnet, "ami": ami, "params": params, "ids": physical,
            "outputs": outputs, **aws}


def instance(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def user_data_of(ec2, instance_id):
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    return base64.b64decode(value).decode()


def rules(ec2, group_id):
    g = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    out = set()
    for p in g["IpPermissions"]:
        for pair in p.get("UserIdGroupPairs", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], pair["GroupId"]))
        for r in p.get("IpRanges", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"]))
        for r in p.get("Ipv6Ranges", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIpv6"]))
    return g, out


def test_security_groups_as_created(stack):
    ec2, ids = stack["ec2"], stack["ids"]
    admin, client, server = ids["AdminSecurityGroup"], ids["ClientSecurityGroup"], ids["ServerSecurityGroup"]
    g, r = rules(ec2, server)
    assert g["VpcId"] == stack["vpc"]
    assert r == {("tcp", 111, 111, client), ("udp", 111, 111, client),
                 ("tcp", 2049, 2049, client), ("udp", 2049, 2049, client)}
    assert rules(ec2, admin)[1] == {("tcp", 22, 22, "203.0.113.0/24")}
    # The lock callbacks: the clients' portmapper, lockd and rpc.statd, from the server group.
    assert rules(ec2, client)[1] == {(proto, port, port, server) for proto in ("tcp", "udp") for port in (111, 32768, 32765)}
    assert stack["outputs"]["AdminSecurityGroupId"] == admin
    assert stack["outputs"]["ClientSecurityGroupId"] == client
    assert stack["outputs"]["ServerSecurityGroupId"] == server


def test_server_instance(stack):
    ec2, ids = stack["ec2"], stack["ids"]
    i = instance(ec2, ids["ServerInstance"])
    assert i["InstanceType"] == "m6id.large"
    assert i["ImageId"] == stack["ami"]  # resolved from the public SSM parameter
    assert i["SubnetId"] == stack["subnet"]
    assert {g["GroupId"] for g in i["SecurityGroups"]} == {ids["ServerSecurityGroup"], ids["AdminSecurityGroup"]}
    assert stack["outputs"]["ServerPrivateIp"] == i["PrivateIpAddress"]
    assert stack["outputs"]["ServerInstanceId"] == i["InstanceId"]
    ud = user_data_of(ec2, i["InstanceId"])
    assert ud.startswith("#!/bin/bash\n")
    assert f"export SWIFTNFS_RELEASE_URL='{stack['params']['ReleaseUrl']}'\n" in ud
    assert "export SWIFTNFS_SERVED_DIR='/srv/nfs'\n" in ud
    assert "export SWIFTNFS_DISABLE_CONFLICTS=1\n" in ud
    assert ud.rstrip().endswith("exec /usr/local/lib/swiftnfs/server-init.sh")
    files = payload_files(ud, "server")
    assert files["server-init.sh"][0] == open(os.path.join(os.path.dirname(TEMPLATE), "server-init.sh"), "rb").read()


def test_durable_volume_attached_to_the_server(stack):
    ec2, ids = stack["ec2"], stack["ids"]
    server = instance(ec2, ids["ServerInstance"])
    vol = ec2.describe_volumes(VolumeIds=[ids["DurableVolume"]])["Volumes"][0]
    assert vol["Size"] == 250
    assert vol["AvailabilityZone"] == server["Placement"]["AvailabilityZone"] == f"{REGION}b"
    assert [(a["InstanceId"], a["Device"], a["State"]) for a in vol["Attachments"]] == \
        [(server["InstanceId"], "/dev/sdf", "attached")]
    assert stack["outputs"]["DurableVolumeId"] == vol["VolumeId"]


def test_clients(stack):
    ec2, asg, ids = stack["ec2"], stack["autoscaling"], stack["ids"]
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ids["ClientGroup"]])["AutoScalingGroups"][0]
    assert stack["outputs"]["ClientGroupName"] == group["AutoScalingGroupName"]
    assert group["MinSize"] == group["MaxSize"] == group["DesiredCapacity"] == 3
    assert group["VPCZoneIdentifier"] == stack["subnet"]
    members = [m["InstanceId"] for m in group["Instances"]]
    assert len(members) == 3
    server_ip = stack["outputs"]["ServerPrivateIp"]
    for iid in members:
        i = instance(ec2, iid)
        assert {g["GroupId"] for g in i["SecurityGroups"]} == {ids["ClientSecurityGroup"], ids["AdminSecurityGroup"]}
        assert i["SubnetId"] == stack["subnet"]
        ud = user_data_of(ec2, iid)
        assert f"export SWIFTNFS_SERVER='{server_ip}'\n" in ud
        assert "export SWIFTNFS_EXPORT_PATH='/srv/nfs'\n" in ud
        assert ud.rstrip().endswith("exec /usr/local/lib/swiftnfs/client-init.sh")
        assert "client-init.sh" in payload_files(ud, "client")
    assert stack["outputs"]["MountCommand"] == f"sudo mkdir -p /mnt/nfs && sudo mount {server_ip}:/srv/nfs /mnt/nfs"
    assert stack["outputs"]["FstabLine"] == f"{server_ip}:/srv/nfs /mnt/nfs nfs defaults,_netdev,nofail 0 0"


def test_volume_survives_the_stack(stack):
    ec2, cf, ids = stack["ec2"], stack["cloudformation"], stack["ids"]
    cf.delete_stack(StackName="nfs")
    left = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert ids["DurableVolume"] in left
    gone = ec2.describe_instances(InstanceIds=[ids["ServerInstance"]])["Reservations"][0]["Instances"][0]
    assert gone["State"]["Name"] in ("terminated", "shutting-down")
