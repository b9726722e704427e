"""deploy/swiftnfs.yaml beyond the security rules: user data, storage, clients, outputs."""
import base64
import gzip
import io
import os
import re
import shlex
import subprocess
import tarfile

import pytest

from conftest import DEPLOY, read

PAYLOADS = {"server": ["server-init.sh", "swiftnfsd.service"], "client": ["client-init.sh"]}
USER_DATA_LIMIT = 16 * 1024  # EC2's limit on user data, before base64


def user_data(resources, which):
    if which == "server":
        node = resources["ServerInstance"]["Properties"]["UserData"]
    else:
        node = resources["ClientLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    return node["Fn::Base64"]["Fn::Sub"]


def substitute(text, values):
    def one(m):
        return values[m.group(1)]
    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", one, text)


def payload_files(text, which, names=None):
    """The files of a payload, unpacked from the user data text; names: what its BEGIN line lists
    (default: this template's PAYLOADS)."""
    m = re.search(rf"# BEGIN PAYLOAD {which}: (.+)\n *base64 -d <<'SWIFTNFS_PAYLOAD'.*\n((?:.*\n)*?) *SWIFTNFS_PAYLOAD\n *# END PAYLOAD {which}\n", text)
    assert m, f"no {which} payload"
    assert m.group(1).split() == (names or PAYLOADS[which])
    blob = base64.b64decode("".join(m.group(2).split()))
    out = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        for member in tar.getmembers():
            out[member.name] = (tar.extractfile(member).read(), member.mode)
    return out


# Values as long as an operator could plausibly give, for the size check.
LONG = {
    "ServedDirectory": "/srv/" + "d" * 60, "ServedDirectoryOwner": "65534:65534",
    "ExportClients": " ".join(f"10.{i}.0.0/16" for i in range(8)), "ExportOptions": "rw,sync,no_subtree_check,root_squash,secure",
    "ReleaseUrl": "https://example.com/" + "r" * 200 + ".tar.gz", "ReleaseSha256": "f" * 64,
    "SourceUrl": "https://example.com/" + "s" * 120 + ".git", "SourceRef": "v" * 40,
    "SwiftToolchainUrl": "https://example.com/" + "t" * 200 + ".tar.gz",
    "ServerReadyHandle": "https://cloudformation-waitcondition-us-east-1.s3.amazonaws.com/" + "w" * 900,
    "ServerInstance.PrivateIp": "10.123.123.123", "ClientMountPoint": "/mnt/" + "m" * 60,
}


@pytest.mark.parametrize("which", ["server", "client"])
def test_payload_is_the_files_in_deploy(resources, which):
    files = payload_files(user_data(resources, which), which)
    assert set(files) == set(PAYLOADS[which])
    for name, (data, mode) in files.items():
        assert data == read(name).encode(), f"{name} differs from the template's copy: run deploy/tools/embed-payloads"
        assert mode == (0o755 if name.endswith(".sh") else 0o644)


@pytest.mark.parametrize("which", ["server", "client"])
def test_user_data_fits_and_is_valid_bash(resources, tmp_path, which):
    text = substitute(user_data(resources, which), LONG)
    assert len(text.encode()) <= USER_DATA_LIMIT, len(text.encode())
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    # Run the bootstrap up to the exec, unpacking into a scratch directory instead.
    script = text.replace("/usr/local/lib/swiftnfs", str(tmp_path)).replace("exec ", "echo ")
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    for name in PAYLOADS[which]:
        assert (tmp_path / name).read_text() == read(name)
    assert os.access(tmp_path / PAYLOADS[which][0], os.X_OK)


def test_user_data_refers_only_to_what_exists(template, resources):
    names = set(template["Parameters"]) | set(resources)
    for which in ("server", "client"):
        for ref in re.findall(r"\$\{([A-Za-z0-9:.]+)\}", user_data(resources, which)):
            assert ref.split(".")[0] in names, ref


def test_user_data_sets_only_settings_the_scripts_read(resources):
    server_vars = set(re.search(r'VARS="([^"]+)"', read("server-init.sh")).group(1).split())
    known = {f"SWIFTNFS_{v}" for v in server_vars} | {"SWIFTNFS_READY_URL"}
    exported = set(re.findall(r"^export (SWIFTNFS_[A-Z0-9_]+)=", user_data(resources, "server"), re.M))
    assert exported and exported <= known, exported - known
    client_known = set(re.findall(r'^: "\$\{(SWIFTNFS_[A-Z_]+):=', read("client-init.sh"), re.M))
    exported = set(re.findall(r"^export (SWIFTNFS_[A-Z0-9_]+)=", user_data(resources, "client"), re.M))
    assert exported and exported <= client_known, exported - client_known


def test_parameters_that_reach_the_shell_cannot_break_its_quoting(template):
    """User data puts parameters between single quotes: none may contain one."""
    params = template["Parameters"]
    for name in ("ServedDirectory", "ServedDirectoryOwner", "ExportClients", "ExportOptions", "ReleaseUrl",
                 "ReleaseSha256", "SourceUrl", "SourceRef", "SwiftToolchainUrl", "ClientMountPoint"):
        pattern = re.compile(params[name]["AllowedPattern"])
        assert not pattern.fullmatch("x'; rm -rf / #"), name
        if "Default" in params[name]:
            assert pattern.fullmatch(str(params[name]["Default"])), name


def test_server_instance_type_has_an_instance_store(template):
    p = template["Parameters"]["ServerInstanceType"]
    assert p["Default"] in p["AllowedValues"]
    for t in p["AllowedValues"]:
        family = t.split(".")[0]
        # NVMe instance store families: a "d" after the generation, or storage-optimized i4i.
        assert re.fullmatch(r"[a-z]+\d[a-z]*d|i4i", family), t


def test_durable_volume_is_attached_to_the_server_in_its_zone(resources, template):
    vol = resources["DurableVolume"]["Properties"]
    assert vol["AvailabilityZone"] == {"Fn::GetAtt": ["ServerInstance", "AvailabilityZone"]}
    assert vol["Size"] == {"Ref": "DurableVolumeSize"}
    assert "Default" in template["Parameters"]["DurableVolumeSize"]
    att = resources["DurableVolumeAttachment"]["Properties"]
    assert att["InstanceId"] == {"Ref": "ServerInstance"} and att["VolumeId"] == {"Ref": "DurableVolume"}


def test_n_clients_start_after_the_server_is_serving(resources, template):
    asg = resources["ClientGroup"]
    props = asg["Properties"]
    assert props["MinSize"] == props["MaxSize"] == props["DesiredCapacity"] == {"Ref": "ClientCount"}
    assert template["Parameters"]["ClientCount"]["Type"] == "Number"
    assert asg["DependsOn"] == "ServerReady"
    assert resources["ServerReady"]["Properties"]["Handle"] == {"Ref": "ServerReadyHandle"}
    assert "${ServerReadyHandle}" in user_data(resources, "server")
    assert "${ServerInstance.PrivateIp}" in user_data(resources, "client")


def test_outputs(template):
    out = template["Outputs"]
    assert out["ServerPrivateIp"]["Value"] == {"Fn::GetAtt": ["ServerInstance", "PrivateIp"]}
    for name, group in (("AdminSecurityGroupId", "AdminSecurityGroup"),
                        ("ClientSecurityGroupId", "ClientSecurityGroup"),
                        ("ServerSecurityGroupId", "ServerSecurityGroup")):
        assert out[name]["Value"] == {"Fn::GetAtt": [group, "GroupId"]}
    # The mount command and fstab line use client-init.sh's own options.
    options = re.search(r'SWIFTNFS_MOUNT_OPTIONS:=([^}]+)\}', read("client-init.sh")).group(1)
    mount = shlex.split(out["MountCommand"]["Value"]["Fn::Sub"].split("&&")[1])
    assert mount == ["sudo", "mount", "${ServerInstance.PrivateIp}:${ServedDirectory}", "${ClientMountPoint}"]
    assert out["FstabLine"]["Value"]["Fn::Sub"] == (
        f"${{ServerInstance.PrivateIp}}:${{ServedDirectory}} ${{ClientMountPoint}} nfs {options},_netdev,nofail 0 0")


def test_mount_is_the_plain_one(template):
    """No version (the client negotiates NFSv3), no nolock (locks go to the server), hard by
    default: fstab's options field holds only `defaults`, and the outputs say the same."""
    assert re.search(r'SWIFTNFS_MOUNT_OPTIONS:=([^}]+)\}', read("client-init.sh")).group(1) == "defaults"
    out = template["Outputs"]
    assert out["MountCommand"]["Value"]["Fn::Sub"].endswith(
        " && sudo mount ${ServerInstance.PrivateIp}:${ServedDirectory} ${ClientMountPoint}")
    assert out["FstabLine"]["Value"]["Fn::Sub"].endswith(" nfs defaults,_netdev,nofail 0 0")
    for name in ("MountCommand", "FstabLine"):
        assert not re.search(r"nolock|vers=|soft|-o ", out[name]["Value"]["Fn::Sub"]), name


def test_release_or_source_is_required(template):
    rule = template["Rules"]["SoftwareSource"]["Assertions"][0]["Assert"]
    assert rule == {"Fn::Or": [{"Fn::Not": [{"Fn::Equals": [{"Ref": "ReleaseUrl"}, ""]}]},
                               {"Fn::Not": [{"Fn::Equals": [{"Ref": "SourceUrl"}, ""]}]}]}
