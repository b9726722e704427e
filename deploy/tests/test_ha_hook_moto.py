"""deploy/ha/ec2-takeover-hook.sh against moto in server mode (a local EC2 API emulator, reached
through the hook's SWIFTNFS_EC2_ENDPOINT_URL; never real AWS), with the real AWS CLI: the
secondary private IP and the overlay route move to the node that becomes the active.

What moto does not model: `assign-private-ip-addresses --allow-reassignment` adds the address
to the new interface but leaves it on the old one too (EC2 takes it off in the same call), so
the tests check where the address was assigned, not that it left the other interface.
"""
import os
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
