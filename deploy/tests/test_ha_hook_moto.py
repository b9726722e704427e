"""deploy/ha/ec2-takeover-hook.sh against moto in server mode (a local EC2 API emulator, reached
through the hook's SWIFTNFS_EC2_ENDPOINT_URL; never real AWS), with the real AWS CLI: the
secondary private IP and the overlay route move to the node that becomes the active.

What moto does not model: `assign-private-ip-addresses --allow-reassignment` adds the address
to the new interface but leaves it on the old one too (EC2 takes it off in the same call), so
the tests check where the address was assigned, not that it left the other interface.
"""
import os
import re
import shutil
import socket
import subprocess

import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed (deploy/tests/run installs it)")

HOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ha", "ec2-takeover-hook.sh")
REGION = "us-east-1"
SERVICE_IP = "10.20.1.100"
OVERLAY_IP = "192.168.250.100"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ec2(monkeypatch):
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed (Debian package awscli; deploy/tests/run installs it)")
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        yield endpoint, boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    finally:
        server.stop()


@pytest.fixture
def network(ec2):
    endpoint, client = ec2
    vpc = client.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone=REGION + "a")["Subnet"]["SubnetId"]
    enis = [client.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"] for _ in "ab"]
    table = client.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    return {"endpoint": endpoint, "client": client, "enis": enis, "table": table}


def run_hook(network, eni, role="active", **extra):
    env = dict(os.environ)
    env.update({
        "SWIFTNFS_HA_ROLE": role, "SWIFTNFS_HA_ADDRESS": extra.pop("address", SERVICE_IP + "/24"), "SWIFTNFS_HA_NAME": "b",
        "SWIFTNFS_HA_EPOCH": "42", "SWIFTNFS_HA_INTERFACE": "eth0", "SWIFTNFS_EC2_ENI": eni,
        "SWIFTNFS_EC2_ENDPOINT_URL": network["endpoint"], "SWIFTNFS_EC2_REGION": REGION,
        "SWIFTNFS_EC2_CONFIG": "/nonexistent",
    })
    env.update(extra)
    return subprocess.run(["/bin/sh", HOOK], env=env, capture_output=True, text=True, timeout=120, check=False)


def secondary_ips(client, eni):
    interface = client.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return [a["PrivateIpAddress"] for a in interface["PrivateIpAddresses"] if not a["Primary"]]


def test_secondary_ip_moves_to_the_new_active(network):
    client, (a, b) = network["client"], network["enis"]
    client.assign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=[SERVICE_IP])
    assert secondary_ips(client, b) == []
    done = run_hook(network, b)
    assert done.returncode == 0, done.stderr
    assert SERVICE_IP in secondary_ips(client, b)
    assert f"secondary private IP {SERVICE_IP} assigned to {b} (epoch 42, node b)" in done.stderr


def test_route_moves_to_the_new_active_and_is_created_if_missing(network):
    client, (a, b), table = network["client"], network["enis"], network["table"]

    def target():
        routes = client.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
        return [r.get("NetworkInterfaceId") for r in routes if r.get("DestinationCidrBlock") == OVERLAY_IP + "/32"]

    created = run_hook(network, a, address=OVERLAY_IP + "/32", SWIFTNFS_EC2_MODE="route", SWIFTNFS_EC2_ROUTE_TABLES=table)
    assert created.returncode == 0, created.stderr
    assert target() == [a]
    moved = run_hook(network, b, address=OVERLAY_IP + "/32", SWIFTNFS_EC2_MODE="route", SWIFTNFS_EC2_ROUTE_TABLES=table)
    assert moved.returncode == 0, moved.stderr
    assert target() == [b]


def test_a_standby_changes_nothing(network):
    client, (a, b) = network["client"], network["enis"]
    client.assign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=[SERVICE_IP])
    done = run_hook(network, b, role="standby")
    assert done.returncode == 0, done.stderr
    assert secondary_ips(client, b) == []
    assert "role standby: nothing to do" in done.stderr


def test_a_failure_is_an_exit_status_with_the_reason(network):
    done = run_hook(network, "eni-00000000000000000")
    assert done.returncode != 0
    assert done.stderr.strip() != ""
    bad = run_hook(network, network["enis"][0], SWIFTNFS_EC2_MODE="teleport")
    assert bad.returncode == 2
    assert "unknown SWIFTNFS_EC2_MODE teleport" in bad.stderr


def ha_unit(tmp_path, command, environment):
    """deploy/swiftnfsd.service with an HA node's drop-in (as ha-node.sh writes it), running
    COMMAND with ENVIRONMENT instead of swiftnfsd: the sandbox the hook runs in."""
    deploy = os.path.dirname(HOOK.rsplit("/", 1)[0])
    with open(os.path.join(deploy, "swiftnfsd.service"), encoding="utf-8") as f:
        unit = f.read()
    unit = re.sub(r"^ExecStart=.*$", f"ExecStart={command}", unit, flags=re.M)
    unit = re.sub(r"^EnvironmentFile=.*$", f"EnvironmentFile={tmp_path}/env", unit, flags=re.M)
    (tmp_path / "env").write_text("".join(f"{k}={v}\n" for k, v in environment.items()))
    (tmp_path / "hook.service").write_text(unit)
    with open(os.path.join(deploy, "ha", "ha-node.sh"), encoding="utf-8") as f:
        dropin = re.search(r'put "\$HA_DROPIN" 0644 <<EOF\n(.*?)\nEOF\n', f.read(), re.S).group(1)
    (tmp_path / "hook.service.d").mkdir()
    (tmp_path / "hook.service.d" / "20-ha.conf").write_text(dropin.replace("$SWIFTNFS_HA_INTERFACE", "eth0") + "\n")
    return tmp_path / "hook.service"


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping capabilities from the bounding set needs root")
def test_the_hook_works_inside_the_unit_s_sandbox(network, tmp_path):
    """The hook runs as a child of swiftnfsd, under its unit's capability bounding set (with the
    HA drop-in), NoNewPrivileges, MemoryDenyWriteExecute and system call filter: the AWS CLI must
    still move the address there (tests/unit_exec.py applies them as systemd would)."""
    if not os.path.exists("/usr/bin/python3") or subprocess.run(["/usr/bin/python3", "-c", "import seccomp"]).returncode:
        pytest.skip("unit_exec.py needs /usr/bin/python3 with python3-seccomp")
    client, (a, b) = network["client"], network["enis"]
    client.assign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=[SERVICE_IP])
    env = {"PATH": f"{os.path.dirname(shutil.which('aws'))}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "SWIFTNFS_HA_ROLE": "active", "SWIFTNFS_HA_ADDRESS": SERVICE_IP + "/24", "SWIFTNFS_HA_NAME": "b",
           "SWIFTNFS_HA_EPOCH": "43", "SWIFTNFS_EC2_ENI": b, "SWIFTNFS_EC2_ENDPOINT_URL": network["endpoint"],
           "SWIFTNFS_EC2_REGION": REGION, "SWIFTNFS_EC2_CONFIG": "/nonexistent"}
    unit = ha_unit(tmp_path, f"/bin/sh {HOOK}", env)
    run = subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "unit_exec.py"), str(unit)],
                         capture_output=True, text=True, timeout=180)
    applied = re.search(r"^unit_exec: applied: (.*)$", run.stderr, re.M)
    assert applied, run.stderr
    for what in ("CapabilityBoundingSet", "NoNewPrivileges", "MemoryDenyWriteExecute", "SystemCallFilter ("):
        assert what in applied.group(1), run.stderr
    assert run.returncode == 0, run.stderr
    assert SERVICE_IP in secondary_ips(client, b)
