"""The security rules of deploy/swiftnfs.yaml, exactly: which ports, which protocols, from
where, and that nothing else is open."""
import re

import pytest

from conftest import read

CLIENT_GROUP = {"Fn::GetAtt": ["ClientSecurityGroup", "GroupId"]}
SERVER_GROUP = {"Fn::GetAtt": ["ServerSecurityGroup", "GroupId"]}
ADMIN_GROUP = {"Fn::GetAtt": ["AdminSecurityGroup", "GroupId"]}

# Every resource type the stack may create. A new type (a standalone ingress rule, a network
# ACL, an endpoint...) must be added here on purpose, with its own check.
EXPECTED_TYPES = {
    "AdminSecurityGroup": "AWS::EC2::SecurityGroup",
    "ClientSecurityGroup": "AWS::EC2::SecurityGroup",
    "ServerSecurityGroup": "AWS::EC2::SecurityGroup",
    **{f"ClientCallback{name}{proto}": "AWS::EC2::SecurityGroupIngress"
       for name in ("Portmap", "Lockd", "Statd") for proto in ("Tcp", "Udp")},
    "ServerReadyHandle": "AWS::CloudFormation::WaitConditionHandle",
    "ServerReady": "AWS::CloudFormation::WaitCondition",
    "ServerInstance": "AWS::EC2::Instance",
    "DurableVolume": "AWS::EC2::Volume",
    "DurableVolumeAttachment": "AWS::EC2::VolumeAttachment",
    "ClientLaunchTemplate": "AWS::EC2::LaunchTemplate",
    "ClientGroup": "AWS::AutoScaling::AutoScalingGroup",
}


def ingress(resources, name):
    return resources[name]["Properties"].get("SecurityGroupIngress", [])


def standalone_ingress(resources):
    return {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::EC2::SecurityGroupIngress"}


def client_init_port(name):
    return int(re.search(rf'^: "\$\{{SWIFTNFS_{name}_PORT:=([0-9]+)\}}"', read("client-init.sh"), re.M).group(1))


def test_exactly_the_expected_resources(resources):
    assert {k: v["Type"] for k, v in resources.items()} == EXPECTED_TYPES


def test_no_rule_outside_the_three_groups(resources):
    for name, r in resources.items():
        assert r["Type"] != "AWS::EC2::SecurityGroupEgress", name
        # Rules of their own only for the client group (the two groups name each other).
        if r["Type"] == "AWS::EC2::SecurityGroupIngress":
            assert name.startswith("ClientCallback") and r["Properties"]["GroupId"] == CLIENT_GROUP, name
    for name in ("AdminSecurityGroup", "ClientSecurityGroup", "ServerSecurityGroup"):
        props = resources[name]["Properties"]
        # Egress stays the default (all outbound: packages, the release archive, CloudFormation).
        assert "SecurityGroupEgress" not in props, name
        assert props["VpcId"] == {"Ref": "VpcId"}


def test_server_group_admits_portmapper_and_nfs_tcp_udp_from_the_client_group_only(resources):
    rules = ingress(resources, "ServerSecurityGroup")
    seen = set()
    for rule in rules:
        assert set(rule) == {"Description", "IpProtocol", "FromPort", "ToPort", "SourceSecurityGroupId"}, rule
        assert rule["SourceSecurityGroupId"] == CLIENT_GROUP, rule
        assert rule["FromPort"] == rule["ToPort"], rule
        seen.add((rule["IpProtocol"], rule["FromPort"]))
    assert len(rules) == 4
    assert seen == {("tcp", 111), ("udp", 111), ("tcp", 2049), ("udp", 2049)}


def test_admin_group_admits_ssh_from_the_admin_cidr_only(resources):
    assert ingress(resources, "AdminSecurityGroup") == [{
        "Description": "SSH from the administrators",
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": {"Ref": "AdminCidr"},
    }]


def test_client_group_admits_the_servers_lock_callbacks_from_the_server_group_only(resources):
    """GRANTED to the clients' lockd and SM_NOTIFY to their rpc.statd, both found through their
    portmapper: the ports client-init.sh pins, TCP and UDP, and nothing from anywhere else."""
    assert ingress(resources, "ClientSecurityGroup") == []
    rules = standalone_ingress(resources)
    seen = set()
    for name, rule in rules.items():
        assert set(rule) == {"GroupId", "Description", "IpProtocol", "FromPort", "ToPort", "SourceSecurityGroupId"}, name
        assert rule["GroupId"] == CLIENT_GROUP, name
        assert rule["SourceSecurityGroupId"] == SERVER_GROUP, name
        assert rule["FromPort"] == rule["ToPort"], name
        seen.add((rule["IpProtocol"], rule["FromPort"]))
    ports = {111, client_init_port("LOCKD"), client_init_port("STATD")}
    assert ports == {111, 32768, 32765}
    assert len(rules) == 6
    assert seen == {(proto, port) for proto in ("tcp", "udp") for port in ports}


def test_every_rule_admits_a_group_of_the_stack_or_the_admin_cidr(resources):
    """No rule is open to 0.0.0.0/0 or any other address range but AdminCidr (whose pattern
    refuses /0, below)."""
    rules = [rule for name in ("AdminSecurityGroup", "ClientSecurityGroup", "ServerSecurityGroup")
             for rule in ingress(resources, name)] + list(standalone_ingress(resources).values())
    assert len(rules) == 1 + 4 + 6
    for rule in rules:
        sources = {k: v for k, v in rule.items() if k.startswith(("Cidr", "Source"))}
        assert sources in ({"SourceSecurityGroupId": CLIENT_GROUP}, {"SourceSecurityGroupId": SERVER_GROUP},
                           {"CidrIp": {"Ref": "AdminCidr"}}), rule


def test_admin_cidr_has_no_default_and_refuses_the_world(template):
    p = template["Parameters"]["AdminCidr"]
    assert "Default" not in p
    pattern = re.compile(p["AllowedPattern"])
    for ok in ("203.0.113.0/24", "10.0.0.0/8", "198.51.100.7/32", "1.2.3.4/1"):
        assert pattern.fullmatch(ok), ok
    for bad in ("0.0.0.0/0", "10.0.0.0/0", "::/0", "0.0.0.0/00", "10.0.0.0/33", "256.1.1.1/32",
                "10.0.0.0", " 10.0.0.0/8", "10.0.0.0/8 ", ""):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize("where,path,groups", [
    ("server", ("ServerInstance", "Properties", "SecurityGroupIds"), [SERVER_GROUP, ADMIN_GROUP]),
    ("clients", ("ClientLaunchTemplate", "Properties", "LaunchTemplateData", "SecurityGroupIds"),
     [CLIENT_GROUP, ADMIN_GROUP]),
])
def test_groups_on_the_right_instances(resources, where, path, groups):
    node = resources
    for key in path:
        node = node[key]
    assert node == groups, where
    parent = resources[path[0]]["Properties"]
    if path[0] == "ClientLaunchTemplate":
        parent = parent["LaunchTemplateData"]
    # No other way to attach groups or open a port on an instance.
    assert "SecurityGroups" not in parent and "NetworkInterfaces" not in parent, where


def test_instances_require_imdsv2(resources):
    server = resources["ServerInstance"]["Properties"]["MetadataOptions"]
    client = resources["ClientLaunchTemplate"]["Properties"]["LaunchTemplateData"]["MetadataOptions"]
    assert server["HttpTokens"] == client["HttpTokens"] == "required"


def test_durable_volume_encrypted_and_kept(resources):
    vol = resources["DurableVolume"]
    assert vol["Properties"]["Encrypted"] is True
    assert vol["DeletionPolicy"] == "Retain" and vol["UpdateReplacePolicy"] == "Retain"
