"""deploy/swiftnfs-ha.yaml created as a stack in moto (an in-process AWS emulator; no network):
the groups, interfaces, addresses, role, volumes and user data exist and agree with each other.

What moto does not model, on top of what test_stack_moto.py says, and how this test deals
with it (the fixture `ha_moto` below):
- AWS::EC2::NetworkInterface: moto reads neither GroupSet nor SecondaryPrivateIpAddressCount
  and cannot give the SecondaryPrivateIpAddresses attribute: the fixture applies the two
  properties as EC2 would and answers the attribute from the interface.
- AWS::EC2::Instance: moto ignores NetworkInterfaces and LaunchTemplate: the fixture launches
  the instance on the given interface, from the given launch template, as EC2 does.
- Resource metadata (NodeFiles) is not returned by DescribeStackResource: test_ha_template.py
  unpacks it from the template.
"""
import ast
import base64
import copy
import re

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.ec2.models.elastic_network_interfaces import NetworkInterface  # noqa: E402
from moto.ec2.models.instances import Instance  # noqa: E402

from conftest import HA_TEMPLATE  # noqa: E402
from test_stack_moto import REGION, create_stack, instance, network_and_ami, rules, user_data_of  # noqa: E402
from test_stack_moto import aws, honor_security_group_ids  # noqa: E402,F401 - fixtures
from test_template import payload_files  # noqa: E402


@pytest.fixture
def ha_moto(monkeypatch):
    create_eni = NetworkInterface.create_from_cloudformation_json.__func__
    eni_attribute = NetworkInterface.get_cfn_attribute

    def eni_from_cfn(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        cfn = copy.deepcopy(cloudformation_json)
        cfn["Properties"]["SecurityGroups"] = props.get("GroupSet", [])
        eni = create_eni(cls, resource_name, cfn, account_id, region_name, **kwargs)
        if props.get("SecondaryPrivateIpAddressCount"):
            ec2_backends[account_id][region_name].assign_private_ip_addresses(
                eni.id, secondary_ips_count=int(props["SecondaryPrivateIpAddressCount"]))
        return eni

    def attribute(self, name):
        if name == "SecondaryPrivateIpAddresses":
            return [a["PrivateIpAddress"] for a in self.private_ip_addresses if not a["Primary"]]
        return eni_attribute(self, name)

    def instance_from_cfn(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = ec2_backends[account_id][region_name]
        nics = []
        for nic in props.get("NetworkInterfaces", []):
            eni = backend.get_network_interface(nic["NetworkInterfaceId"])
            nics.append({"NetworkInterfaceId": eni.id, "DeviceIndex": int(nic["DeviceIndex"]), "SubnetId": eni.subnet.id})
        template = props.get("LaunchTemplate")
        reservation = backend.run_instances(
            image_id=props.get("ImageId"), user_data=props.get("UserData"), count=1, security_group_names=[],
            instance_type=props.get("InstanceType", "m1.small"), is_instance_type_default=not props.get("InstanceType"),
            key_name=props.get("KeyName"), nics=nics,
            launch_template={"LaunchTemplateId": template["LaunchTemplateId"], "Version": str(template["Version"])} if template else None)
        i = reservation.instances[0]
        for tag in props.get("Tags", []):
            i.add_tag(tag["Key"], tag["Value"])
        if props.get("IamInstanceProfile"):
            backend.associate_iam_instance_profile(instance_id=i.id, iam_instance_profile_name=props["IamInstanceProfile"])
        return i

    monkeypatch.setattr(NetworkInterface, "create_from_cloudformation_json", classmethod(eni_from_cfn))
    monkeypatch.setattr(NetworkInterface, "get_cfn_attribute", attribute)
    monkeypatch.setattr(Instance, "create_from_cloudformation_json", classmethod(instance_from_cfn))


PARAMS = {"AdminCidr": "203.0.113.0/24", "ReleaseUrl": "https://releases.example.invalid/swiftnfs-linux-x86_64.tar.gz",
          "ClientCount": "2", "DurableVolumeSize": "250", "LeaseTtl": "4"}


def make_ha_stack(aws, **params):
    vpc, subnet, ami = network_and_ami(aws["ec2"])
    params = {"VpcId": vpc, "SubnetId": subnet, **PARAMS, **params}
    physical, outputs = create_stack(aws["cloudformation"], "ha", HA_TEMPLATE, params, Capabilities=["CAPABILITY_IAM"])
    return {"vpc": vpc, "subnet": subnet, "ami": ami, "ids": physical, "outputs": outputs,
            "iam": boto3.client("iam", region_name=REGION), **aws}


@pytest.fixture
def ha_stack(aws, ha_moto):  # noqa: F811 - the fixture imported above
    return make_ha_stack(aws)


def eni(ec2, eni_id):
    return ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]


def addresses(ec2, eni_id):
    """(primary, [secondaries]) of an interface."""
    a = eni(ec2, eni_id)["PrivateIpAddresses"]
    return [x["PrivateIpAddress"] for x in a if x["Primary"]][0], [x["PrivateIpAddress"] for x in a if not x["Primary"]]


def exports(ud):
    return dict(re.findall(r"^export (SWIFTNFS_[A-Z0-9_]+)='?([^'\n]*)'?$", ud, re.M))


def test_security_groups_as_created(ha_stack):
    ec2, ids = ha_stack["ec2"], ha_stack["ids"]
    admin, client, server, etcd = (ids[f"{g}SecurityGroup"] for g in ("Admin", "Client", "Server", "Etcd"))
    assert rules(ec2, admin)[1] == {("tcp", 22, 22, "203.0.113.0/24")}
    assert rules(ec2, server)[1] == {(p, port, port, client) for p in ("tcp", "udp") for port in (111, 2049)} | {("tcp", 2050, 2050, server)}
    assert rules(ec2, etcd)[1] == {("tcp", 2379, 2379, server), ("tcp", 2380, 2380, etcd)}
    assert rules(ec2, client)[1] == {(p, port, port, server) for p in ("tcp", "udp") for port in (111, 32768, 32765)}
    for name, gid in (("Admin", admin), ("Client", client), ("Server", server), ("Etcd", etcd)):
        assert ha_stack["outputs"][f"{name}SecurityGroupId"] == gid
        assert rules(ec2, gid)[0]["VpcId"] == ha_stack["vpc"]


def test_nodes_on_their_interfaces_with_the_service_address(ha_stack):
    ec2, ids, out = ha_stack["ec2"], ha_stack["ids"], ha_stack["outputs"]
    a_ip, (service,) = addresses(ec2, ids["NodeANetworkInterface"])
    b_ip, b_secondary = addresses(ec2, ids["NodeBNetworkInterface"])
    assert b_secondary == [] and len({a_ip, b_ip, service}) == 3
    assert out["ServiceAddress"] == service
    assert (out["NodeAPrivateIp"], out["NodeBPrivateIp"]) == (a_ip, b_ip)
    for node, ip in (("A", a_ip), ("B", b_ip)):
        i = instance(ec2, ids[f"Node{node}Instance"])
        assert out[f"Node{node}InstanceId"] == i["InstanceId"]
        assert [n["NetworkInterfaceId"] for n in i["NetworkInterfaces"]] == [ids[f"Node{node}NetworkInterface"]]
        assert i["PrivateIpAddress"] == ip and i["SubnetId"] == ha_stack["subnet"]
        assert i["InstanceType"] == "m6id.large" and i["ImageId"] == ha_stack["ami"]
        groups = {g["GroupId"] for g in eni(ec2, ids[f"Node{node}NetworkInterface"])["Groups"]}
        assert groups == {ids["ServerSecurityGroup"], ids["AdminSecurityGroup"]}
        env = exports(user_data_of(ec2, i["InstanceId"]))
        assert env["SWIFTNFS_HA_NAME"] == f"node-{node.lower()}"
        assert env["SWIFTNFS_HA_ADDRESS"] == f"{service}/32"
        assert env["SWIFTNFS_HA_ETCD"] == out["EtcdEndpoints"]
        assert env["SWIFTNFS_HA_TTL"] == "4" and env["SWIFTNFS_HA_EC2_REGION"] == REGION
        assert f"--stack-name '{ha_stack['cloudformation'].describe_stacks(StackName='ha')['Stacks'][0]['StackId']}'" \
            in user_data_of(ec2, i["InstanceId"])


def test_etcd_members_form_the_cluster_the_nodes_use(ha_stack):
    ec2, ids, out = ha_stack["ec2"], ha_stack["ids"], ha_stack["outputs"]
    ips = []
    for n in (1, 2, 3):
        i = instance(ec2, ids[f"EtcdMember{n}"])
        ip, _ = addresses(ec2, ids[f"EtcdMember{n}Interface"])
        assert i["PrivateIpAddress"] == ip
        assert {g["GroupId"] for g in eni(ec2, ids[f"EtcdMember{n}Interface"])["Groups"]} == \
            {ids["EtcdSecurityGroup"], ids["AdminSecurityGroup"]}
        assert "IamInstanceProfile" not in i
        ud = user_data_of(ec2, i["InstanceId"])  # the launch template's
        assert "etcd-init.sh" in payload_files(ud, "etcd", ["ha/etcd-init.sh"])
        ips.append(ip)
        cluster = exports(ud)["SWIFTNFS_ETCD_CLUSTER"]
    assert cluster == ",".join(f"etcd-{n}=http://{ip}:2380" for n, ip in enumerate(ips, 1))
    endpoints = ",".join(f"http://{ip}:2379" for ip in ips)
    assert out["EtcdEndpoints"] == endpoints
    assert out["HaStatusCommand"] == f"swiftnfsd ha status --ha-etcd {endpoints}"
    assert out["SwitchoverCommand"] == f"swiftnfsd ha switchover --ha-etcd {endpoints} --to node-b"


def test_role_as_created_names_the_two_interfaces_and_this_stack(ha_stack):
    iam, ec2, ids = ha_stack["iam"], ha_stack["ec2"], ha_stack["ids"]
    (policy_name,) = iam.list_role_policies(RoleName=ids["NodeRole"])["PolicyNames"]
    doc = iam.get_role_policy(RoleName=ids["NodeRole"], PolicyName=policy_name)["PolicyDocument"]
    if isinstance(doc, str):  # moto keeps the document as Python's repr of the stack's
        doc = ast.literal_eval(doc)
    move, read = doc["Statement"]
    assert move["Resource"] == [f"arn:aws:ec2:{REGION}:123456789012:network-interface/{ids[f'Node{n}NetworkInterface']}" for n in "AB"]
    stack_id = ha_stack["cloudformation"].describe_stacks(StackName="ha")["Stacks"][0]["StackId"]
    assert read["Resource"] == stack_id
    assert iam.list_attached_role_policies(RoleName=ids["NodeRole"])["AttachedPolicies"] == []
    associations = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    profiled = {a["InstanceId"] for a in associations}
    assert profiled == {ids["NodeAInstance"], ids["NodeBInstance"]}


def test_each_node_has_its_durable_volume_attached_in_its_zone(ha_stack):
    ec2, ids, out = ha_stack["ec2"], ha_stack["ids"], ha_stack["outputs"]
    for node in "AB":
        i = instance(ec2, ids[f"Node{node}Instance"])
        vol = ec2.describe_volumes(VolumeIds=[ids[f"Node{node}DurableVolume"]])["Volumes"][0]
        assert vol["Size"] == 250 and vol["AvailabilityZone"] == i["Placement"]["AvailabilityZone"] == f"{REGION}b"
        assert [(a["InstanceId"], a["Device"]) for a in vol["Attachments"]] == [(i["InstanceId"], "/dev/sdf")]
        assert out[f"Node{node}DurableVolumeId"] == vol["VolumeId"]


def test_clients_mount_the_service_address(ha_stack):
    ec2, asg, ids, out = ha_stack["ec2"], ha_stack["autoscaling"], ha_stack["ids"], ha_stack["outputs"]
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ids["ClientGroup"]])["AutoScalingGroups"][0]
    assert len(group["Instances"]) == 2
    for m in group["Instances"]:
        i = instance(ec2, m["InstanceId"])
        assert {g["GroupId"] for g in i["SecurityGroups"]} == {ids["ClientSecurityGroup"], ids["AdminSecurityGroup"]}
        assert exports(user_data_of(ec2, m["InstanceId"]))["SWIFTNFS_SERVER"] == out["ServiceAddress"]
    assert out["MountCommand"] == f"sudo mkdir -p /mnt/nfs && sudo mount {out['ServiceAddress']}:/srv/nfs /mnt/nfs"


def test_volumes_survive_the_stack(ha_stack):
    ec2, cf, ids = ha_stack["ec2"], ha_stack["cloudformation"], ha_stack["ids"]
    cf.delete_stack(StackName="ha")
    left = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert {ids["NodeADurableVolume"], ids["NodeBDurableVolume"]} <= left


def test_user_data_is_base64_of_the_text(ha_stack):
    """What EC2 hands the instance is the rendered script itself (moto keeps it base64)."""
    ec2, ids = ha_stack["ec2"], ha_stack["ids"]
    raw = ec2.describe_instance_attribute(InstanceId=ids["NodeAInstance"], Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(raw).decode().startswith("#!/bin/bash\n")


def test_a_stack_with_node_b_disabled(aws, ha_moto):  # noqa: F811 - the fixtures imported above
    """The first of the two updates that replace a dead node-b, as a stack of its own (moto does
    not apply conditions on update): no node-b instance or volume, its interface kept, and the
    service address still on node-a's."""
    st = make_ha_stack(aws, NodeBEnabled="false")
    ids, out = st["ids"], st["outputs"]
    for gone in ("NodeBInstance", "NodeBDurableVolume", "NodeBDurableVolumeAttachment"):
        assert gone not in ids
    assert "NodeBInstanceId" not in out and "NodeBDurableVolumeId" not in out
    assert out["NodeBPrivateIp"] == addresses(st["ec2"], ids["NodeBNetworkInterface"])[0]
    assert out["ServiceAddress"] == addresses(st["ec2"], ids["NodeANetworkInterface"])[1][0]
    assert {a["InstanceId"] for a in st["ec2"].describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]} \
        == {ids["NodeAInstance"]}

