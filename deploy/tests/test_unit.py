"""deploy/swiftnfsd.service, read as systemd reads it (systemd-analyze verify runs in
tests/run and, on the installed copy, in tests/boot-scripts.sh)."""
import re
import shutil
import subprocess

import pytest

from conftest import read

KEPT_CAPABILITIES = {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE",
                     "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_CHOWN", "CAP_FSETID", "CAP_MKNOD"}


def parse(text):
    sections, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return sections


UNIT = read("swiftnfsd.service")
S = parse(UNIT)


def one(section, key):
    values = S[section][key]
    assert len(values) == 1, (key, values)
    return values[0]


def test_readiness_restart_reload():
    assert one("Service", "Type") == "notify"
    assert one("Service", "NotifyAccess") == "main"
    assert one("Service", "Restart") == "on-failure"
    assert one("Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Install", "WantedBy") == "multi-user.target"


def test_starts_after_its_file_systems():
    assert one("Unit", "RequiresMountsFor").split() == ["/srv/nfs", "/var/lib/swiftnfs"]


def test_exec_start_and_the_durable_dir_variable():
    start = one("Service", "ExecStart")
    assert start.startswith("/usr/local/sbin/swiftnfsd serve --exports ${SWIFTNFSD_EXPORTS} --state-dir ${SWIFTNFSD_STATE_DIR} ")
    words = start.split()
    assert "$SWIFTNFSD_DURABLE_ARGS" in words
    # An HA node's --ha-* options (server-init.sh with SWIFTNFS_HA_ETCD), before the operator's own.
    assert words.index("$SWIFTNFSD_DURABLE_ARGS") < words.index("$SWIFTNFSD_HA_ARGS") < words.index("$SWIFTNFSD_ARGS")
    env = " ".join(S["Service"]["Environment"])
    assert '"SWIFTNFSD_DURABLE_ARGS=--durable-dir /var/lib/swiftnfs"' in env
    assert "SWIFTNFSD_HA_ARGS=" in S["Service"]["Environment"]
    assert one("Service", "EnvironmentFile") == "-/etc/default/swiftnfsd"


def test_capabilities_exactly_and_each_explained():
    assert set(one("Service", "CapabilityBoundingSet").split()) == KEPT_CAPABILITIES
    for cap in KEPT_CAPABILITIES:
        assert re.search(rf"^#\s+{cap}\s+\S.{{10,}}$", UNIT, re.M), f"no comment explaining {cap}"
    assert one("Service", "NoNewPrivileges") == "yes"
    # uid 0 is part of the design (the kernel drops file-system capabilities when a thread's
    # fsuid leaves 0); ambient capabilities would survive that and must not be used.
    for key in ("User", "DynamicUser", "AmbientCapabilities"):
        assert key not in S["Service"], key


@pytest.mark.parametrize("option", ["PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock",
                                    "RestrictSUIDSGID", "ProtectHome"])
def test_no_option_that_breaks_a_file_server(option):
    """Each restricts MKNOD of device nodes or set-id bits, or hides /home (see the unit's comments)."""
    assert option not in S["Service"]


def test_hardening_present():
    for key, value in {"ProtectSystem": "full", "PrivateTmp": "yes", "ProtectKernelTunables": "yes",
                       "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
                       "RestrictNamespaces": "yes", "LockPersonality": "yes",
                       "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native"}.items():
        assert one("Service", key) == value, key
    assert set(one("Service", "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_syscall_filter_allows_what_the_server_calls():
    groups = one("Service", "SystemCallFilter").split()
    allowed = set()
    for g in groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", g], check=True, capture_output=True, text=True).stdout
        allowed |= {w.strip() for w in out.splitlines()[1:] if w.strip() and not w.strip().startswith("#")}
    # Nested groups are listed by name: expand one level more.
    for g in [a for a in allowed if a.startswith("@")]:
        out = subprocess.run(["systemd-analyze", "syscall-filter", g], check=True, capture_output=True, text=True).stdout
        allowed |= {w.strip() for w in out.splitlines()[1:] if w.strip() and not w.strip().startswith("#")}
    needed = {"setfsuid", "setfsgid", "setgroups", "openat2", "mknodat", "fchownat", "fchmodat",
              "utimensat", "renameat2", "linkat", "symlinkat", "unlinkat", "fsync", "fdatasync",
              "ftruncate", "pread64", "pwrite64", "getdents64", "statx", "accept4", "recvmsg", "sendmsg",
              "bind", "listen", "epoll_wait", "setsockopt", "statfs", "fstatfs"}
    assert needed <= allowed, needed - allowed


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_security_exposure_is_low(tmp_path):
    unit = tmp_path / "swiftnfsd.service"
    unit.write_text(UNIT)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for swiftnfsd.service: ([0-9.]+)", r.stdout + r.stderr)
    if not m:
        pytest.skip("systemd-analyze security --offline is not supported here")
    assert float(m.group(1)) <= 4.5, m.group(0)
