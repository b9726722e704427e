#!/usr/bin/python3
"""Run a unit's ExecStart the way systemd would, without systemd (the test container has no
systemd as PID 1): the unit's Environment= and EnvironmentFile= expanded into ExecStart, and of
its sandbox what a process can apply to itself:

  CapabilityBoundingSet=   prctl(PR_CAPBSET_DROP) of every other capability
  NoNewPrivileges=yes      prctl(PR_SET_NO_NEW_PRIVS)
  MemoryDenyWriteExecute=  prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) (Linux 6.3+)
  SystemCallFilter=        a seccomp allow-list of the same syscall groups (python3-seccomp),
                           expanded by `systemd-analyze syscall-filter`; SystemCallErrorNumber=
  Type=notify              a $NOTIFY_SOCKET whose datagrams are appended to --notify-log

Namespacing options (ProtectSystem=, PrivateTmp=, ...) need systemd and are not applied; the
script says which options it applied and which not.

  unit_exec.py UNIT [--notify-log FILE] [--status FILE] [--pidfile FILE] [--print-argv]

Runs in the foreground until the service exits; --status receives its exit status.
--print-argv prints the expanded command line and exits.
"""
import argparse
import ctypes
import errno
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def parse_unit(path):
    """[Service] settings of a unit file plus its drop-ins: {key: [values in order]}."""
    files = [path]
    dropins = path + ".d"
    if os.path.isdir(dropins):
        files += sorted(os.path.join(dropins, f) for f in os.listdir(dropins) if f.endswith(".conf"))
    settings = {}
    for f in files:
        section = None
        for raw in open(f, encoding="utf-8"):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            if section == "Service":
                settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def unquote_env(value):
    """Environment= takes space-separated assignments, each possibly double-quoted."""
    return shlex.split(value)


def read_env_file(path, env):
    for raw in open(path, encoding="utf-8"):
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value


def expand_exec(line, env):
    """systemd's rules: a word that is exactly $NAME becomes the variable split at whitespace
    (no words when empty); ${NAME} is replaced in place, as one word."""
    argv = []
    for word in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return argv


def syscalls_of(groups):
    names = set()
    for g in groups:
        if g.startswith("@"):
            out = subprocess.run(["systemd-analyze", "syscall-filter", g], check=True,
                                 capture_output=True, text=True).stdout
            for line in out.splitlines()[1:]:
                w = line.strip()
                if not w or w.startswith("#"):
                    continue
                names |= syscalls_of([w]) if w.startswith("@") else {w}
        else:
            names.add(g)
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("unit")
    ap.add_argument("--notify-log")
    ap.add_argument("--status")
    ap.add_argument("--pidfile", help="receives the service's pid ($MAINPID)")
    ap.add_argument("--print-argv", action="store_true")
    a = ap.parse_args()

    s = parse_unit(a.unit)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for e in s.get("Environment", []):
        for assignment in unquote_env(e):
            k, _, v = assignment.partition("=")
            env[k] = v
    for f in s.get("EnvironmentFile", []):
        optional = f.startswith("-")
        f = f.lstrip("-")
        if os.path.exists(f):
            read_env_file(f, env)
        elif not optional:
            sys.exit(f"unit_exec: EnvironmentFile {f} missing")
    (exec_start,) = s["ExecStart"]
    argv = expand_exec(exec_start.lstrip("-@:+!"), env)
    if a.print_argv:
        print(shlex.join(argv))
        return

    applied, not_applied = [], []
    keep = set()
    for v in s.get("CapabilityBoundingSet", []):
        keep |= set(v.split())
    filters = []
    for v in s.get("SystemCallFilter", []):
        filters += v.split()
    errnum = errno.EPERM
    for v in s.get("SystemCallErrorNumber", []):
        errnum = getattr(errno, v)
    no_new_privs = s.get("NoNewPrivileges", ["no"])[-1] == "yes"
    mdwe = s.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes"

    seccomp_filter = None
    if filters:
        if any(f.startswith("~") for f in filters):
            sys.exit("unit_exec: deny-list filters are not emulated")
        try:
            import seccomp
        except ImportError:
            not_applied.append("SystemCallFilter (no python3-seccomp)")
        else:
            seccomp_filter = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errnum))
            allowed = 0
            # systemd always lets a service exec and exit; @default has these too.
            for name in sorted(syscalls_of(filters) | {"execve", "exit", "exit_group"}):
                try:
                    seccomp_filter.add_rule(seccomp.ALLOW, name)
                    allowed += 1
                except (RuntimeError, ValueError):
                    pass  # not a syscall on this architecture
            applied.append(f"SystemCallFilter ({allowed} syscalls allowed, others {errno.errorcode[errnum]})")

    sock_path = None
    sock = None
    if a.notify_log:
        sock_dir = tempfile.mkdtemp(prefix="notify.", dir="/run")
        sock_path = os.path.join(sock_dir, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        env["NOTIFY_SOCKET"] = sock_path
    if keep:
        applied.append("CapabilityBoundingSet")
    if no_new_privs:
        applied.append("NoNewPrivileges")
    if mdwe:
        applied.append("MemoryDenyWriteExecute (prctl PR_SET_MDWE)")
    for k in ("ProtectSystem", "PrivateTmp", "ProtectKernelTunables", "ProtectKernelModules",
              "ProtectKernelLogs", "ProtectControlGroups", "ProtectHostname", "RestrictNamespaces",
              "RestrictRealtime", "LockPersonality", "RestrictAddressFamilies",
              "SystemCallArchitectures"):
        if k in s:
            not_applied.append(k)
    print("unit_exec: applied: " + ", ".join(applied), file=sys.stderr)
    print("unit_exec: not applied (needs systemd): " + ", ".join(not_applied), file=sys.stderr)
    print("unit_exec: exec " + shlex.join(argv), file=sys.stderr, flush=True)

    libc = ctypes.CDLL(None, use_errno=True)
    pid = os.fork()
    if pid == 0:
        try:
            if sock:
                sock.close()
            if keep:
                unknown = keep - set(CAPS)
                if unknown:
                    raise SystemExit(f"unit_exec: unknown capabilities {unknown}")
                for number, name in enumerate(CAPS):
                    if name not in keep and libc.prctl(PR_CAPBSET_DROP, number, 0, 0, 0) != 0:
                        if ctypes.get_errno() != errno.EINVAL:  # EINVAL: the kernel lacks it
                            raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {name}")
            if no_new_privs and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
            if mdwe and libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "PR_SET_MDWE (kernel older than 6.3?)")
            if seccomp_filter is not None:
                seccomp_filter.load()
            os.execve(argv[0], argv, env)
        except BaseException as e:  # noqa: BLE001 - report anything, then leave the child
            print(f"unit_exec: cannot start: {e}", file=sys.stderr, flush=True)
            os._exit(127)

    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(f"{pid}\n")
    log = open(a.notify_log, "a", buffering=1) if a.notify_log else None
    if sock:
        sock.settimeout(0.2)
    status = None
    while status is None:
        if sock:
            try:
                data = sock.recv(4096)
                log.write(f"{time.monotonic():.3f} {data.decode(errors='replace').replace(chr(10), ' ')}\n")
                continue
            except socket.timeout:
                pass
        else:
            time.sleep(0.2)
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
    if sock:  # what arrived just before the exit
        sock.settimeout(0)
        try:
            while True:
                data = sock.recv(4096)
                log.write(f"{time.monotonic():.3f} {data.decode(errors='replace').replace(chr(10), ' ')}\n")
        except (BlockingIOError, socket.timeout):
            pass
        os.unlink(sock_path)
        os.rmdir(os.path.dirname(sock_path))
    if a.status:
        with open(a.status, "w") as f:
            f.write(f"{status}\n")
    print(f"unit_exec: exit status {status}", file=sys.stderr, flush=True)
    sys.exit(0 if status == 0 else 1)


if __name__ == "__main__":
    main()
