"""The security rules and the IAM policy of deploy/swiftnfs-ha.yaml, exactly: which ports, which
protocols, from where, which API calls on which resources, and that nothing else is open or
allowed."""
import re

import pytest

from conftest import load_template, read
from test_ha_template import ha_user_data
from test_template_security import ingress, standalone_ingress


def group(name):
    return {"Fn::GetAtt": [f"{name}SecurityGroup", "GroupId"]}


ADMIN, CLIENT, SERVER, ETCD = group("Admin"), group("Client"), group("Server"), group("Etcd")
GROUPS = {"AdminSecurityGroup": ADMIN, "ClientSecurityGroup": CLIENT, "ServerSecurityGroup": SERVER,
          "EtcdSecurityGroup": ETCD}
ADMIN_CIDR = {"Ref": "AdminCidr"}

# Every resource type the stack may create. A new type (another IAM policy, a network ACL, an
# endpoint...) must be added here on purpose, with its own check.
EXPECTED_TYPES = {
    **{name: "AWS::EC2::SecurityGroup" for name in GROUPS},
    **{f"ClientCallback{name}{proto}": "AWS::EC2::SecurityGroupIngress"
       for name in ("Portmap", "Lockd", "Statd") for proto in ("Tcp", "Udp")},
    "ServerReplication": "AWS::EC2::SecurityGroupIngress",
    "EtcdPeers": "AWS::EC2::SecurityGroupIngress",
    "NodeRole": "AWS::IAM::Role",
    "NodeInstanceProfile": "AWS::IAM::InstanceProfile",
    "NodeFiles": "AWS::CloudFormation::WaitConditionHandle",
    "EtcdReadyHandle": "AWS::CloudFormation::WaitConditionHandle",
    "EtcdReady": "AWS::CloudFormation::WaitCondition",
    "NodesReadyHandle": "AWS::CloudFormation::WaitConditionHandle",
    "NodesReady": "AWS::CloudFormation::WaitCondition",
    **{f"EtcdMember{i}Interface": "AWS::EC2::NetworkInterface" for i in (1, 2, 3)},
    **{f"EtcdMember{i}": "AWS::EC2::Instance" for i in (1, 2, 3)},
    "EtcdLaunchTemplate": "AWS::EC2::LaunchTemplate",
    **{f"Node{n}NetworkInterface": "AWS::EC2::NetworkInterface" for n in "AB"},
    **{f"Node{n}Instance": "AWS::EC2::Instance" for n in "AB"},
    **{f"Node{n}DurableVolume": "AWS::EC2::Volume" for n in "AB"},
    **{f"Node{n}DurableVolumeAttachment": "AWS::EC2::VolumeAttachment" for n in "AB"},
    "ClientLaunchTemplate": "AWS::EC2::LaunchTemplate",
    "ClientGroup": "AWS::AutoScaling::AutoScalingGroup",
}

# (group, protocol, port, source): everything any group admits.
EXPECTED_RULES = {
    ("AdminSecurityGroup", "tcp", 22, "AdminCidr"),
    *{("ServerSecurityGroup", proto, port, "ClientSecurityGroup") for proto in ("tcp", "udp") for port in (111, 2049)},
    ("ServerSecurityGroup", "tcp", 2050, "ServerSecurityGroup"),
    ("EtcdSecurityGroup", "tcp", 2379, "ServerSecurityGroup"),
    ("EtcdSecurityGroup", "tcp", 2380, "EtcdSecurityGroup"),
    *{("ClientSecurityGroup", proto, port, "ServerSecurityGroup") for proto in ("tcp", "udp") for port in (111, 32768, 32765)},
}


def every_rule(resources):
    """(group name, rule) for every ingress rule, inline or standalone."""
    for name in GROUPS:
        for rule in ingress(resources, name):
            yield name, rule
    for rule in standalone_ingress(resources).values():
        (name,) = [n for n, ref in GROUPS.items() if ref == rule["GroupId"]]
        yield name, {k: v for k, v in rule.items() if k != "GroupId"}


def source_name(rule):
    sources = {k: v for k, v in rule.items() if k.startswith(("Cidr", "Source"))}
    if sources == {"CidrIp": ADMIN_CIDR}:
        return "AdminCidr"
    (name,) = [n for n, ref in GROUPS.items() if sources == {"SourceSecurityGroupId": ref}]
    return name


def test_exactly_the_expected_resources(ha_resources):
    assert {k: v["Type"] for k, v in ha_resources.items()} == EXPECTED_TYPES


def test_every_rule_exactly_as_designed(ha_resources):
    """Clients -> nodes 111 and 2049 (TCP, UDP); nodes <-> nodes 2050 (replication); nodes ->
    etcd 2379; etcd <-> etcd 2380; nodes -> clients' lock callbacks; SSH from AdminCidr. One port
    a rule, no range, and nothing from any address but AdminCidr (whose pattern refuses /0)."""
    seen = []
    for name, rule in every_rule(ha_resources):
        assert set(rule) - {"CidrIp", "SourceSecurityGroupId"} == {"Description", "IpProtocol", "FromPort", "ToPort"}, rule
        assert rule["FromPort"] == rule["ToPort"], rule
        seen.append((name, rule["IpProtocol"], rule["FromPort"], source_name(rule)))
    assert len(seen) == len(set(seen))
    assert set(seen) == EXPECTED_RULES


def test_no_egress_rules_and_every_group_in_the_vpc(ha_resources):
    for name, r in ha_resources.items():
        assert r["Type"] != "AWS::EC2::SecurityGroupEgress", name
    for name in GROUPS:
        props = ha_resources[name]["Properties"]
        # Egress stays the default (all outbound: packages, the release, CloudFormation, EC2's API).
        assert "SecurityGroupEgress" not in props, name
        assert props["VpcId"] == {"Ref": "VpcId"}


def test_the_lock_callback_ports_are_client_init_s(ha_resources):
    ports = {int(re.search(rf'^: "\$\{{SWIFTNFS_{name}_PORT:=([0-9]+)\}}"', read("client-init.sh"), re.M).group(1))
             for name in ("LOCKD", "STATD")}
    assert {port for (g, _, port, _) in EXPECTED_RULES if g == "ClientSecurityGroup"} == ports | {111}


def test_the_replication_port_is_swiftnfsd_s_default(ha_resources):
    """2050 is the --ha-replication-port default (swiftnfsd serve --help); the stack passes none."""
    assert "--ha-replication-port" not in read("ha/ha-node.sh")
    assert ("ServerSecurityGroup", "tcp", 2050, "ServerSecurityGroup") in EXPECTED_RULES


def test_admin_cidr_is_the_single_stack_s(ha_template):
    """Same parameter, same pattern (test_template_security.py checks that it refuses /0)."""
    assert ha_template["Parameters"]["AdminCidr"] == load_template()["Parameters"]["AdminCidr"]


@pytest.mark.parametrize("interface,groups", [
    ("NodeANetworkInterface", [SERVER, ADMIN]), ("NodeBNetworkInterface", [SERVER, ADMIN]),
    *[(f"EtcdMember{i}Interface", [ETCD, ADMIN]) for i in (1, 2, 3)],
])
def test_groups_on_the_right_interfaces(ha_resources, interface, groups):
    assert ha_resources[interface]["Properties"]["GroupSet"] == groups


@pytest.mark.parametrize("instance", ["NodeAInstance", "NodeBInstance", "EtcdMember1", "EtcdMember2", "EtcdMember3"])
def test_instances_take_their_groups_from_their_interface_only(ha_resources, instance):
    props = ha_resources[instance]["Properties"]
    for key in ("SecurityGroups", "SecurityGroupIds", "SubnetId"):
        assert key not in props, (instance, key)
    (nic,) = props["NetworkInterfaces"]
    assert set(nic) == {"NetworkInterfaceId", "DeviceIndex"} and nic["DeviceIndex"] == "0"


def test_launch_templates_groups(ha_resources):
    client = ha_resources["ClientLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert client["SecurityGroupIds"] == [CLIENT, ADMIN]
    etcd = ha_resources["EtcdLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    for data in (client, etcd):
        assert "SecurityGroups" not in data and "NetworkInterfaces" not in data and "IamInstanceProfile" not in data
    assert "SecurityGroupIds" not in etcd  # the members' interfaces carry their groups


def test_instances_require_imdsv2(ha_resources):
    options = [ha_resources[f"Node{n}Instance"]["Properties"]["MetadataOptions"] for n in "AB"]
    options += [ha_resources[t]["Properties"]["LaunchTemplateData"]["MetadataOptions"]
                for t in ("EtcdLaunchTemplate", "ClientLaunchTemplate")]
    for o in options:
        assert o == {"HttpTokens": "required", "HttpEndpoint": "enabled"}


@pytest.mark.parametrize("node", "AB")
def test_durable_volumes_encrypted_and_kept(ha_resources, node):
    vol = ha_resources[f"Node{node}DurableVolume"]
    assert vol["Properties"]["Encrypted"] is True
    assert vol["DeletionPolicy"] == "Retain" and vol["UpdateReplacePolicy"] == "Retain"


# ---- IAM: least privilege --------------------------------------------------------------------
def eni_arn(node):
    return {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/${"
                       f"Node{node}NetworkInterface" "}"}


def statements(ha_resources):
    (policy,) = ha_resources["NodeRole"]["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Version"] == "2012-10-17"
    return policy["PolicyDocument"]["Statement"]


def test_the_role_is_for_ec2_and_has_only_its_inline_policy(ha_resources):
    role = ha_resources["NodeRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    for key in ("ManagedPolicyArns", "PermissionsBoundary", "RoleName", "Path"):
        assert key not in role, key
    assert ha_resources["NodeInstanceProfile"]["Properties"] == {"Roles": [{"Ref": "NodeRole"}]}


def test_the_policy_exactly(ha_resources):
    """Move the service address between the two nodes' interfaces and no other; read this
    stack's resources (the boot files) and no other stack's. No wildcard, no Not*, nothing else."""
    assert statements(ha_resources) == [
        {"Sid": "MoveTheServiceAddressBetweenTheNodes", "Effect": "Allow",
         "Action": ["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
         "Resource": [eni_arn("A"), eni_arn("B")]},
        {"Sid": "ReadTheBootFilesOfThisStack", "Effect": "Allow",
         "Action": "cloudformation:DescribeStackResource", "Resource": {"Ref": "AWS::StackId"}},
    ]
    assert "*" not in repr(statements(ha_resources))


def aws_calls(text):
    """The API actions a script calls through the AWS CLI (`aws SERVICE verb-noun`, or the hook's
    `aws_ec2 verb-noun`), as IAM names them."""
    calls = set()
    for m in re.finditer(r"\baws (cloudformation|ec2) ([a-z][a-z-]+)|\baws_ec2 ([a-z][a-z-]+)", text):
        service, verb = (m.group(1), m.group(2)) if m.group(1) else ("ec2", m.group(3))
        calls.add(f"{service}:" + "".join(w.capitalize() for w in verb.split("-")))
    return calls


def granted(ha_resources):
    out = set()
    for s in statements(ha_resources):
        out |= set([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return out


def test_what_the_nodes_call_is_granted(ha_resources):
    """The node's bootstrap and the hook in secondary-ip mode (the stack's) need nothing more.
    Route mode (replace-route, create-route) is not granted: the stack keeps both nodes in one
    subnet (deploy/ha/README.md says what to add for routes)."""
    hook = read("ha/ec2-takeover-hook.sh")
    secondary_ip = hook[hook.index("secondary-ip)"):hook.index("route)")]
    node = ha_user_data(ha_resources, "node-a")[0]
    needed = aws_calls(secondary_ip) | aws_calls(node)
    assert needed == {"ec2:AssignPrivateIpAddresses", "cloudformation:DescribeStackResource"}
    assert needed <= granted(ha_resources)
    assert aws_calls(hook) - aws_calls(secondary_ip) == {"ec2:ReplaceRoute", "ec2:CreateRoute"}
    assert not granted(ha_resources) & {"ec2:ReplaceRoute", "ec2:CreateRoute"}


def test_only_the_nodes_have_the_profile(ha_resources):
    for name, r in ha_resources.items():
        props = r.get("Properties", {})
        data = props.get("LaunchTemplateData", {})
        has = "IamInstanceProfile" in props or "IamInstanceProfile" in data
        assert has == (name in ("NodeAInstance", "NodeBInstance")), name
    for n in "AB":
        assert ha_resources[f"Node{n}Instance"]["Properties"]["IamInstanceProfile"] == {"Ref": "NodeInstanceProfile"}
