"""deploy/swiftnfs-ha.yaml beyond its security rules and IAM: the boot files and user data, the
service address and etcd endpoints that every part must agree on, the order of the stack."""
import os
import re
import subprocess

import pytest

from conftest import DEPLOY, HA_TEMPLATE, load_template, read
from test_template import LONG, USER_DATA_LIMIT, payload_files, substitute

# The payloads of this template, by name: the files as the BEGIN line names them (relative to
# deploy/), unpacked under their base names.
HA_PAYLOADS = {
    "node": ["server-init.sh", "swiftnfsd.service", "ha/ha-node.sh", "ha/ec2-takeover-hook.sh"],
    "etcd": ["ha/etcd-init.sh"],
    "client": ["client-init.sh"],
}
NODES = {"A": "node-a", "B": "node-b"}
SERVICE_ADDRESS = {"Fn::Select": [0, {"Fn::GetAtt": ["NodeANetworkInterface", "SecondaryPrivateIpAddresses"]}]}
ETCD_IPS = [f"${{EtcdMember{i}Interface.PrimaryPrivateIpAddress}}" for i in (1, 2, 3)]
ETCD_ENDPOINTS = ",".join(f"http://{ip}:2379" for ip in ETCD_IPS)
# Values as long as an operator (or AWS) could plausibly give, for the size checks.
HA_LONG = {**LONG, "LeaseTtl": "60", "ServiceAddress": "10.123.123.124",
           "EtcdEndpoints": ",".join(f"http://10.123.123.{i}:2379" for i in (101, 102, 103)),
           "AWS::Region": "ap-southeast-4", "AWS::StackName": "s" * 128,
           "AWS::StackId": "arn:aws:cloudformation:ap-southeast-4:123456789012:stack/" + "s" * 128 + "/" + "f" * 36,
           "NodesReadyHandle": LONG["ServerReadyHandle"], "EtcdReadyHandle": LONG["ServerReadyHandle"],
           **{f"EtcdMember{i}Interface.PrimaryPrivateIpAddress": f"10.123.123.{100 + i}" for i in (1, 2, 3)}}


def sub_text(node):
    """The text of a Fn::Sub (either form) and its variable map."""
    sub = node["Fn::Sub"]
    return (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])


def ha_user_data(resources, which):
    """(text, variables) of the user data: node-a, node-b, etcd or client."""
    if which in ("etcd", "client"):
        name = "EtcdLaunchTemplate" if which == "etcd" else "ClientLaunchTemplate"
        node = resources[name]["Properties"]["LaunchTemplateData"]["UserData"]
    else:
        node = resources[f"Node{which[-1].upper()}Instance"]["Properties"]["UserData"]
    return sub_text(node["Fn::Base64"])


def node_files(resources):
    return resources["NodeFiles"]["Metadata"]["SwiftNFSBootFiles"]


def all_user_data():
    return ["node-a", "node-b", "etcd", "client"]


@pytest.mark.parametrize("which", ["node", "etcd", "client"])
def test_payload_is_the_files_in_deploy(ha_resources, which):
    text = node_files(ha_resources) if which == "node" else ha_user_data(ha_resources, which)[0]
    files = payload_files(text, which, HA_PAYLOADS[which])
    assert set(files) == {os.path.basename(name) for name in HA_PAYLOADS[which]}
    for name in HA_PAYLOADS[which]:
        data, mode = files[os.path.basename(name)]
        assert data == read(name).encode(), f"{name} differs from the template's copy: run deploy/tools/embed-payloads"
        assert mode == (0o755 if name.endswith(".sh") else 0o644)


def test_embed_payloads_finds_nothing_to_change():
    out = subprocess.run([os.path.join(DEPLOY, "tools", "embed-payloads"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("which", all_user_data())
def test_user_data_fits_and_is_valid_bash(ha_resources, which):
    text, variables = ha_user_data(ha_resources, which)
    rendered = substitute(text, HA_LONG)
    assert len(rendered.encode()) <= USER_DATA_LIMIT, len(rendered.encode())
    subprocess.run(["bash", "-n"], input=rendered, text=True, check=True)
    assert set(variables) <= {"ServiceAddress", "EtcdEndpoints"}


@pytest.mark.parametrize("which", ["etcd", "client"])
def test_bootstrap_unpacks_the_files(ha_resources, tmp_path, which):
    text = substitute(ha_user_data(ha_resources, which)[0], HA_LONG)
    script = text.replace("/usr/local/lib/swiftnfs", str(tmp_path)).replace("exec ", "echo ")
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    for name in HA_PAYLOADS[which]:
        assert (tmp_path / os.path.basename(name)).read_text() == read(name)


def test_node_files_unpack_as_the_node_runs_them(ha_resources, tmp_path):
    """The node's user data pipes this metadata into bash: it must unpack the four files."""
    script = node_files(ha_resources).replace("/usr/local/lib/swiftnfs", str(tmp_path))
    assert "${" not in script  # metadata is not substituted: nothing may look like a Sub
    subprocess.run(["bash"], input=script, text=True, check=True, capture_output=True)
    for name in HA_PAYLOADS["node"]:
        assert (tmp_path / os.path.basename(name)).read_text() == read(name)
        assert os.access(tmp_path / os.path.basename(name), os.X_OK) == name.endswith(".sh")


@pytest.mark.parametrize("node", ["A", "B"])
def test_node_reads_its_files_from_this_stack(ha_resources, node):
    text, _ = ha_user_data(ha_resources, f"node-{node.lower()}")
    assert "--logical-resource-id NodeFiles " in text and "--stack-name '${AWS::StackId}'" in text
    assert "--query StackResourceDetail.Metadata --output text" in text
    assert '["SwiftNFSBootFiles"]' in text
    assert ha_resources[f"Node{node}Instance"]["DependsOn"] == ["EtcdReady", "NodeFiles"]
    assert text.rstrip().endswith("exec /usr/local/lib/swiftnfs/server-init.sh")


def ha_node_settings():
    server = set(re.search(r'VARS="([^"]+)"', read("server-init.sh")).group(1).split())
    server |= set(re.search(r'^VARS\+=" ([^"]+)"', read("ha/ha-node.sh"), re.M).group(1).split())
    return {f"SWIFTNFS_{v}" for v in server} | {"SWIFTNFS_HA_ETCD", "SWIFTNFS_READY_URL", "SWIFTNFS_READY_ID"}


def script_settings(name):
    return set(re.findall(r'^: "\$\{(SWIFTNFS_[A-Z0-9_]+):=', read(name), re.M))


def exported(text):
    return dict(re.findall(r"^export (SWIFTNFS_[A-Z0-9_]+)=(.*)$", text, re.M))


def test_user_data_sets_only_settings_the_scripts_read(ha_resources):
    known = {"node-a": ha_node_settings(), "node-b": ha_node_settings(),
             "etcd": script_settings("ha/etcd-init.sh") | {"SWIFTNFS_READY_URL"},
             "client": script_settings("client-init.sh")}
    for which, names in known.items():
        got = set(exported(ha_user_data(ha_resources, which)[0]))
        assert got and got <= names, (which, got - names)
    assert "SWIFTNFS_HA_ETCD" in script_settings("server-init.sh")
    assert {"SWIFTNFS_HA_NAME", "SWIFTNFS_HA_ADDRESS", "SWIFTNFS_HA_HOOK"} <= script_settings("ha/ha-node.sh")


@pytest.mark.parametrize("node", ["A", "B"])
def test_node_settings(ha_resources, node):
    text, variables = ha_user_data(ha_resources, f"node-{node.lower()}")
    env = exported(text)
    assert env["SWIFTNFS_HA_NAME"] == env["SWIFTNFS_READY_ID"] == NODES[node]
    assert env["SWIFTNFS_HA_ETCD"] == "'${EtcdEndpoints}'" and variables["EtcdEndpoints"] == {"Fn::Sub": ETCD_ENDPOINTS}
    assert env["SWIFTNFS_HA_ADDRESS"] == "'${ServiceAddress}/32'" and variables["ServiceAddress"] == SERVICE_ADDRESS
    assert env["SWIFTNFS_HA_HOOK"] == "ec2" and env["SWIFTNFS_HA_EC2_REGION"] == "'${AWS::Region}'"
    assert env["SWIFTNFS_HA_TTL"] == "'${LeaseTtl}'"
    assert env["SWIFTNFS_READY_URL"] == "'${NodesReadyHandle}'"
    # A fresh instance: its instance store is scratch, nothing else may hold 111 or 2049.
    assert env["SWIFTNFS_INSTANCE_STORE_WIPE"] == env["SWIFTNFS_DISABLE_CONFLICTS"] == "1"


def test_user_data_refers_only_to_what_exists(ha_template, ha_resources):
    names = set(ha_template["Parameters"]) | set(ha_resources) | {"AWS::Region", "AWS::StackName", "AWS::StackId"}
    for which in all_user_data():
        text, variables = ha_user_data(ha_resources, which)
        for ref in re.findall(r"\$\{([A-Za-z0-9:.]+)\}", text):
            assert ref in variables or ref.split(".")[0] in names, (which, ref)


def test_parameters_that_reach_the_shell_cannot_break_its_quoting(ha_template, ha_resources):
    """User data puts parameters between single quotes: none may contain one."""
    params = ha_template["Parameters"]
    used = {ref for which in all_user_data() for ref in re.findall(r"\$\{([A-Za-z0-9]+)\}", ha_user_data(ha_resources, which)[0])}
    for name in sorted(used & set(params)):
        p = params[name]
        if p["Type"] == "Number":
            continue
        assert "AllowedPattern" in p, name
        assert not re.fullmatch(p["AllowedPattern"], "x'; rm -rf / #"), name
        if "Default" in p:
            assert re.fullmatch(p["AllowedPattern"], str(p["Default"])), name


def test_same_parameters_as_the_single_stack(ha_template):
    """What both templates ask for means the same in both (types, patterns, allowed values)."""
    single = load_template()["Parameters"]
    for name, p in single.items():
        if name in ("DurableSnapshotId",):  # one per node here (NodeADurableSnapshotId, ...)
            continue
        mine = ha_template["Parameters"][name]
        for key in ("Type", "Default", "AllowedPattern", "AllowedValues", "MinValue", "MaxValue"):
            assert mine.get(key) == p.get(key), (name, key)
    for node in NODES:
        assert ha_template["Parameters"][f"Node{node}DurableSnapshotId"]["AllowedPattern"] == single["DurableSnapshotId"]["AllowedPattern"]


def test_the_service_address_is_one_secondary_ip_of_node_a(ha_resources, ha_template):
    assert ha_resources["NodeANetworkInterface"]["Properties"]["SecondaryPrivateIpAddressCount"] == 1
    assert "SecondaryPrivateIpAddressCount" not in ha_resources["NodeBNetworkInterface"]["Properties"]
    assert ha_user_data(ha_resources, "client")[1]["ServiceAddress"] == SERVICE_ADDRESS
    assert exported(ha_user_data(ha_resources, "client")[0])["SWIFTNFS_SERVER"] == "'${ServiceAddress}'"
    out = ha_template["Outputs"]
    assert out["ServiceAddress"]["Value"] == SERVICE_ADDRESS
    for name in ("MountCommand", "FstabLine"):
        text, variables = sub_text(out[name]["Value"])
        assert variables == {"ServiceAddress": SERVICE_ADDRESS}
    assert sub_text(out["MountCommand"]["Value"])[0].endswith(
        " && sudo mount ${ServiceAddress}:${ServedDirectory} ${ClientMountPoint}")
    assert sub_text(out["FstabLine"]["Value"])[0] == "${ServiceAddress}:${ServedDirectory} ${ClientMountPoint} nfs defaults,_netdev,nofail 0 0"


def test_etcd_cluster_endpoints_and_commands_agree(ha_resources, ha_template):
    env = exported(ha_user_data(ha_resources, "etcd")[0])
    assert env["SWIFTNFS_ETCD_CLUSTER"] == "'" + ",".join(f"etcd-{i}=http://{ip}:2380" for i, ip in enumerate(ETCD_IPS, 1)) + "'"
    assert env["SWIFTNFS_READY_URL"] == "'${EtcdReadyHandle}'"
    assert "SWIFTNFS_ETCD_NAME" not in env  # each member finds itself by its address
    out = ha_template["Outputs"]
    assert out["EtcdEndpoints"]["Value"] == {"Fn::Sub": ETCD_ENDPOINTS}
    assert out["HaStatusCommand"]["Value"] == {"Fn::Sub": f"swiftnfsd ha status --ha-etcd {ETCD_ENDPOINTS}"}
    assert out["SwitchoverCommand"]["Value"] == {"Fn::Sub": f"swiftnfsd ha switchover --ha-etcd {ETCD_ENDPOINTS} --to node-b"}
    for i in (1, 2, 3):
        member = ha_resources[f"EtcdMember{i}"]["Properties"]
        assert member["NetworkInterfaces"] == [{"NetworkInterfaceId": {"Ref": f"EtcdMember{i}Interface"}, "DeviceIndex": "0"}]
        assert member["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": "EtcdLaunchTemplate"}
    assert ha_resources["EtcdReady"]["Properties"]["Count"] == 3


def test_the_stack_comes_up_in_order(ha_resources):
    """etcd healthy, then the nodes, then the clients."""
    assert ha_resources["EtcdReady"]["DependsOn"] == ["EtcdMember1", "EtcdMember2", "EtcdMember3"]
    assert ha_resources["NodesReady"]["DependsOn"] == "EtcdReady"
    assert ha_resources["NodesReady"]["Properties"]["Count"] == {"Fn::If": ["BothNodes", 2, 1]}
    assert ha_resources["ClientGroup"]["DependsOn"] == "NodesReady"
    props = ha_resources["ClientGroup"]["Properties"]
    assert props["MinSize"] == props["MaxSize"] == props["DesiredCapacity"] == {"Ref": "ClientCount"}


@pytest.mark.parametrize("node", ["A", "B"])
def test_each_node_has_its_own_durable_volume_in_its_zone(ha_resources, node):
    vol = ha_resources[f"Node{node}DurableVolume"]
    assert vol["Condition"] == f"Node{node}Enabled"
    assert vol["Properties"]["AvailabilityZone"] == {"Fn::GetAtt": [f"Node{node}Instance", "AvailabilityZone"]}
    assert vol["Properties"]["SnapshotId"] == {"Fn::If": [f"Node{node}HasSnapshot", {"Ref": f"Node{node}DurableSnapshotId"}, {"Ref": "AWS::NoValue"}]}
    att = ha_resources[f"Node{node}DurableVolumeAttachment"]
    assert att["Condition"] == f"Node{node}Enabled"
    assert att["Properties"] == {"InstanceId": {"Ref": f"Node{node}Instance"}, "VolumeId": {"Ref": f"Node{node}DurableVolume"}, "Device": "/dev/sdf"}
    assert ha_resources[f"Node{node}Instance"]["Condition"] == f"Node{node}Enabled"
    # The interface (and so the node's address and the service address) outlives a replacement.
    assert "Condition" not in ha_resources[f"Node{node}NetworkInterface"]


def test_template_size_and_how_to_create_it(ha_template):
    """Over the 51,200 bytes that --template-body takes (the nodes' boot files are in it), under
    the 1 MB of a template in S3: the guide creates it with `aws cloudformation deploy --s3-bucket`."""
    size = os.path.getsize(HA_TEMPLATE)
    assert size < 1_000_000
    guide = read("ha/README.md")
    if size > 51_200:
        assert "--s3-bucket" in guide and "--template-body file://deploy/swiftnfs-ha.yaml" not in guide
    assert "CAPABILITY_IAM" in guide


def test_both_nodes_disabled_is_refused(ha_template):
    """The rule that keeps one node: CloudFormation checks it before it changes anything."""
    (assertion,) = ha_template["Rules"]["OneNodeAtLeast"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Or": [{"Fn::Equals": [{"Ref": "NodeAEnabled"}, "true"]},
                                              {"Fn::Equals": [{"Ref": "NodeBEnabled"}, "true"]}]}
