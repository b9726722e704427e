#!/usr/bin/env bash
# The boot scripts, run for real: deploy/server-init.sh and deploy/client-init.sh against loop
# devices standing in for the instance store and the EBS volume, each scenario inside its own
# sandbox: a mount namespace where /etc, /usr/local, /var/lib, /var/cache and /srv are
# overlays (the host's files are read, never written) and /run is empty, in a network namespace
# of its own (loopback only: the server's ports 111 and 2049 are the sandbox's, and nothing
# leaves the machine). The server then runs as its unit would (tests/unit_exec.py).
#
#   boot-scripts.sh SWIFTNFSD_BINARY
#
# Needs root, losetup, unshare, overlayfs. Prints PASS:/FAIL:/SKIP: lines; exits 1 on a FAIL.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DEPLOY=$(cd "$HERE/.." && pwd)

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
skip() { echo "SKIP: $*"; }
check() { # check NAME COMMAND...: PASS or FAIL on the command's status
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
show() { # show FILE: a failure's evidence
    [ -f "$1" ] && sed 's/^/    | /' "$1" | tail -n 40
    return 0
}
FAILED=0

# ============================================================================================
# Inside a sandbox: `boot-scripts.sh --in-sandbox SCENARIO`, started by the host part below.
# ============================================================================================
sandbox_setup() {
    OV=$S/ov
    mkdir -p "$OV"
    mount -t tmpfs tmpfs "$OV"
    local d n
    for d in etc usr/local var/lib var/cache srv; do
        n=${d//\//_}
        mkdir -p "$OV/$n.up" "$OV/$n.wk"
        mount -t overlay overlay -o "lowerdir=/$d,upperdir=$OV/$n.up,workdir=$OV/$n.wk" "/$d"
    done
    mount -t tmpfs tmpfs /run
    ip link set lo up
}

# Everything a run of server-init.sh could change: files (content, mode, owner, mtime), mounts,
# file systems (UUIDs), and the roots of the two file systems (ctime).
snapshot() {
    local d
    for d in "$OV"/*.up; do
        (cd "$d" && find . \( -type f -o -type l \) -printf '%p %y %m %u:%g %T@ %l\n' | sort \
            && find . -type f -exec sha256sum {} + | sort)
    done
    findmnt -rn -o TARGET,SOURCE,FSTYPE | grep -F -e "$L1" -e "$L2" | sort
    blkid -p -o value -s UUID "$L1" "$L2"
    for d in "$@"; do stat -c '%n %a %u:%g %Z' "$d"; done
}

server_env() {
    export SWIFTNFS_INSTANCE_STORE_DEVICE=$L1 SWIFTNFS_DURABLE_DEVICE=$L2 SWIFTNFS_DEVICE_WAIT=10
    export SWIFTNFS_EXPORT_CLIENTS=127.0.0.0/8 SWIFTNFS_SERVED_OWNER=1000:1000
}

run_server_init() { # run_server_init LOG [ARGS]: the script as root would run it
    local log=$1; shift
    bash "$DEPLOY/server-init.sh" "$@" >"$log" 2>&1
}

label_of() { blkid -p -o value -s LABEL "$1" 2>/dev/null; }
uuid_of() { blkid -p -o value -s UUID "$1" 2>/dev/null; }
mounted_from() { [ "$(findmnt -rn -o SOURCE --mountpoint "$1")" = "$2" ]; }

stop_unit() { # stop_unit PIDFILE UNIT_EXEC_PID: SIGTERM to the service, as systemctl stop sends it
    local i=0
    kill -TERM "$(cat "$1" 2>/dev/null || echo 0)" 2>/dev/null
    while kill -0 "$2" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$2" 2>/dev/null
    wait "$2" 2>/dev/null
}

wait_for_file_line() { # wait_for_file_line FILE REGEX SECONDS
    local i=0
    while [ "$i" -lt $(($3 * 10)) ]; do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

# --- scenario "fresh": a new server, twice, then serving, a client, a stop/start ------------
scenario_fresh() {
    server_env
    export SWIFTNFS_RELEASE_URL=file://$W/release.tar.gz SWIFTNFS_RELEASE_SHA256=$RELEASE_SHA256
    if run_server_init "$S/run1.log"; then
        pass "server-init.sh: first run on blank disks succeeds (release archive install, sha256 checked)"
    else
        fail "server-init.sh: first run on blank disks"; show "$S/run1.log"; return
    fi
    check "instance store formatted with the served label" [ "$(label_of "$L1")" = swiftnfs-srv ]
    check "EBS volume formatted with the durable label" [ "$(label_of "$L2")" = swiftnfs-dur ]
    check "/srv/nfs is mounted from the instance store" mounted_from /srv/nfs "$L1"
    check "/var/lib/swiftnfs is mounted from the EBS volume" mounted_from /var/lib/swiftnfs "$L2"
    check "state directory on the EBS volume, mode 700" [ "$(stat -c %a /var/lib/swiftnfs/state)" = 700 ]
    check "served directory owned as SWIFTNFS_SERVED_OWNER says" [ "$(stat -c %u:%g /srv/nfs)" = 1000:1000 ]
    check "fstab: served directory by label, pulled in through swiftnfs-storage.service" \
        grep -qx "LABEL=swiftnfs-srv /srv/nfs ext4 defaults,noatime,nofail,x-systemd.requires=swiftnfs-storage.service 0 0" /etc/fstab
    check "fstab: EBS volume by UUID, fsck pass 2" \
        grep -qx "UUID=$(uuid_of "$L2") /var/lib/swiftnfs ext4 defaults,noatime,nofail 0 2" /etc/fstab
    check "/etc/exports: the served directory to the configured clients" \
        grep -qx "/srv/nfs 127.0.0.0/8(rw,sync,no_subtree_check)" /etc/exports
    check "swiftnfsd installed from the archive" cmp -s "$BIN" /usr/local/sbin/swiftnfsd
    check "unit installed as shipped" cmp -s "$DEPLOY/swiftnfsd.service" /etc/systemd/system/swiftnfsd.service
    check "unit enabled (multi-user.target.wants)" [ -L /etc/systemd/system/multi-user.target.wants/swiftnfsd.service ]
    if grep -q -- --durable-dir <<<"$("$BIN" serve --help 2>&1)"; then
        check "/etc/default/swiftnfsd passes --durable-dir" grep -qx 'SWIFTNFSD_DURABLE_ARGS="--durable-dir /var/lib/swiftnfs"' /etc/default/swiftnfsd
    else
        check "/etc/default/swiftnfsd: --durable-dir left out (this swiftnfsd lacks it), said so" \
            grep -q "has no --durable-dir" "$S/run1.log"
    fi
    if grep -q "systemd is not running" "$S/run1.log"; then
        skip "starting the unit with systemctl: systemd is not PID 1 here ($(cat /proc/1/comm)); the unit runs through unit_exec.py below"
    fi

    snapshot /srv/nfs /var/lib/swiftnfs >"$S/snap1"
    if run_server_init "$S/run2.log" && grep -q "done: 0 changes" "$S/run2.log" \
        && snapshot /srv/nfs /var/lib/swiftnfs | cmp -s - "$S/snap1"; then
        pass "server-init.sh: second run (same environment) changes nothing"
    else
        fail "server-init.sh: second run changed something"; show "$S/run2.log"
        snapshot /srv/nfs /var/lib/swiftnfs | diff "$S/snap1" - | head -n 20
    fi
    if env -u SWIFTNFS_INSTANCE_STORE_DEVICE -u SWIFTNFS_DURABLE_DEVICE -u SWIFTNFS_EXPORT_CLIENTS \
        -u SWIFTNFS_SERVED_OWNER -u SWIFTNFS_RELEASE_URL -u SWIFTNFS_RELEASE_SHA256 -u SWIFTNFS_DEVICE_WAIT \
        bash /usr/local/lib/swiftnfs/server-init.sh >"$S/run3.log" 2>&1 \
        && grep -q "done: 0 changes" "$S/run3.log" && snapshot /srv/nfs /var/lib/swiftnfs | cmp -s - "$S/snap1"; then
        pass "server-init.sh: a third run with no environment (settings from /etc/swiftnfs/server-init.conf) changes nothing"
    else
        fail "server-init.sh: run from the saved settings"; show "$S/run3.log"
    fi

    if systemd-analyze verify /etc/systemd/system/swiftnfsd.service /etc/systemd/system/swiftnfs-storage.service >"$S/verify.log" 2>&1 \
        && ! [ -s "$S/verify.log" ]; then
        pass "systemd-analyze verify: installed swiftnfsd.service (with its drop-in) and swiftnfs-storage.service"
    else
        fail "systemd-analyze verify of the installed units"; show "$S/verify.log"
    fi

    serve_and_mount
    stop_start
}

# The server as systemd would run it, a client's view of it, reload, stop.
serve_and_mount() {
    local unit=/etc/systemd/system/swiftnfsd.service notify=0 reloading=0 pid i
    grep -qa NOTIFY_SOCKET "$BIN" && notify=1
    grep -qa RELOADING=1 "$BIN" && reloading=1
    : >"$S/notify.log"
    /usr/bin/python3 "$HERE/unit_exec.py" "$unit" --notify-log "$S/notify.log" --status "$S/status" \
        --pidfile "$S/pid" >"$S/server.log" 2>&1 &
    local ue=$!
    if [ $notify = 1 ]; then
        # rpcinfo right after READY=1, without retrying: the check below fails if the server
        # said READY=1 before it answered.
        if wait_for_file_line "$S/notify.log" 'READY=1' 60; then
            rpcinfo -p 127.0.0.1 >"$S/rpcinfo" 2>&1
            pass "Type=notify: READY=1 sent (rpcinfo below runs right after it)"
        else
            fail "Type=notify: no READY=1"; show "$S/server.log"; show "$S/notify.log"
        fi
    else
        skip "Type=notify: this swiftnfsd does not read NOTIFY_SOCKET"
        i=0
        until rpcinfo -p 127.0.0.1 >"$S/rpcinfo" 2>&1 || [ $i -ge 60 ]; do sleep 1; i=$((i + 1)); done
    fi
    grep -q "applied: .*CapabilityBoundingSet" "$S/server.log" && grep -q "SystemCallFilter (" "$S/server.log" \
        && pass "unit sandbox emulated: $(sed -n 's/^unit_exec: applied: //p' "$S/server.log")"
    pid=$(cat "$S/pid" 2>/dev/null || echo 0)
    if grep -Eq '100003 +3 +tcp +2049' "$S/rpcinfo" && grep -Eq '100003 +3 +udp +2049' "$S/rpcinfo" \
        && grep -Eq '100005 +3 +tcp +2049' "$S/rpcinfo" && grep -Eq '100000 +2 +udp +111' "$S/rpcinfo" \
        && grep -Eq '100021 +4 +tcp +2049' "$S/rpcinfo" && grep -Eq '100021 +4 +udp +2049' "$S/rpcinfo" \
        && grep -Eq '100024 +1 +tcp +2049' "$S/rpcinfo" && grep -Eq '100024 +1 +udp +2049' "$S/rpcinfo"; then
        pass "rpcinfo -p: NFS v3, MOUNT v3, NLM v4 and NSM v1 on 2049, portmapper on 111, TCP and UDP"
    else
        fail "rpcinfo -p"; show "$S/rpcinfo"; show "$S/server.log"
        if rpcinfo -u 127.0.0.1 100000 2 >/dev/null 2>&1; then
            echo "    hint: UDP answers, TCP does not: the server drops TCP connections under the unit's"
            echo "    capability set (strace shows the refused call; SO_DEBUG from ChannelOptions"
            echo "    .socketOption(.tcp_nodelay) needs CAP_NET_ADMIN: use .tcpOption(.tcp_nodelay))"
        fi
    fi
    check "showmount -e lists /srv/nfs" bash -c "showmount -e 127.0.0.1 | grep -q '^/srv/nfs '"

    echo "written through NFS" >"$S/hello"
    if nfs-cp "$S/hello" "nfs://127.0.0.1/srv/nfs/hello.txt?version=3&uid=1000&gid=1000" >"$S/nfscp.log" 2>&1 \
        && cmp -s "$S/hello" /srv/nfs/hello.txt && [ "$(stat -c %u:%g /srv/nfs/hello.txt)" = 1000:1000 ] \
        && [ "$(nfs-cat "nfs://127.0.0.1/srv/nfs/hello.txt?version=3&uid=1000&gid=1000" 2>/dev/null)" = "written through NFS" ] \
        && mounted_from /srv/nfs "$L1"; then
        pass "a client (libnfs) writes and reads as uid 1000 under the unit's capabilities and syscall filter; the file lands on the instance store, owned 1000:1000"
    else
        fail "NFS write/read as uid 1000"; show "$S/nfscp.log"; show "$S/server.log"
    fi
    if ! nfs-cp "$S/hello" "nfs://127.0.0.1/srv/nfs/root.txt?version=3&uid=0&gid=0" >/dev/null 2>&1 \
        && [ ! -e /srv/nfs/root.txt ]; then
        pass "root_squash: a client's root cannot write into a directory owned by uid 1000"
    else
        fail "root_squash: root wrote /srv/nfs/root.txt"
    fi

    # systemctl reload = ExecReload: the exports are read again. An operator's own exports go
    # in /etc/exports.d/*.exports (server-init.sh manages /etc/exports).
    mkdir -p /srv/nfs/extra /etc/exports.d
    echo "/srv/nfs/extra 127.0.0.1(ro,no_subtree_check)" >/etc/exports.d/extra.exports
    local reload
    reload=$(sed -n 's/^ExecReload=//p' "$unit")
    bash -c "${reload//\$MAINPID/$pid}"
    i=0
    until showmount -e 127.0.0.1 2>/dev/null | grep -q '^/srv/nfs/extra ' || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
    check "ExecReload ($reload): the new export is served" bash -c "showmount -e 127.0.0.1 | grep -q '^/srv/nfs/extra '"
    if [ $reloading = 1 ]; then
        check "reload: RELOADING=1, then READY=1" bash -c "grep -n 'RELOADING=1' '$S/notify.log' >/dev/null && awk '/RELOADING=1/{r=1} r && /READY=1/{ok=1} END{exit !ok}' '$S/notify.log'"
    else
        skip "reload notifications: this swiftnfsd does not send RELOADING=1"
    fi

    # Made on the server's disk, not through NFS: not journaled, not for the rebuild below.
    rm -f /etc/exports.d/extra.exports

    client_side

    kill -TERM "$pid" 2>/dev/null
    i=0
    while kill -0 "$ue" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    check "SIGTERM (systemctl stop): the server exits with status 0" [ "$(cat "$S/status" 2>/dev/null)" = 0 ]
    if [ $notify = 1 ]; then
        check "Type=notify: STOPPING=1 at shutdown" grep -q 'STOPPING=1' "$S/notify.log"
    fi
    kill -KILL "$ue" 2>/dev/null
    wait "$ue" 2>/dev/null
}

# client-init.sh on the same loopback: fstab, the callback ports, idempotence, and mount.nfs
# with those options.
client_side() {
    local line="127.0.0.1:/srv/nfs /mnt/nfs nfs defaults,_netdev,nofail 0 0"
    local kernel=0
    if grep -qw nfs /proc/filesystems || { modprobe nfs 2>/dev/null && grep -qw nfs /proc/filesystems; }; then kernel=1; fi
    if SWIFTNFS_SERVER=127.0.0.1 SWIFTNFS_MOUNT_NOW=$kernel bash "$DEPLOY/client-init.sh" >"$S/client1.log" 2>&1 \
        && grep -qxF "$line" /etc/fstab && [ -d /mnt/nfs ]; then
        pass "client-init.sh: the plain fstab entry (defaults,_netdev,nofail: no vers, no nolock) and the mount point"
    else
        fail "client-init.sh first run"; show "$S/client1.log"
    fi
    # The callback ports the client security group opens, as nfs-utils reads them.
    if [ "$(nfsconf --get lockd port)/$(nfsconf --get lockd udp-port)/$(nfsconf --get statd port)" = 32768/32768/32765 ] \
        && [ "$(nfsconf --get statd outgoing-port)/$(nfsconf --get sm-notify outgoing-port)" = 32766/32766 ] \
        && grep -qx "options lockd nlm_tcpport=32768 nlm_udpport=32768" /etc/modprobe.d/swiftnfs-lockd.conf; then
        pass "client-init.sh: lockd on 32768 and rpc.statd on 32765 (nfsconf reads /etc/nfs.conf.d/swiftnfs.conf; lockd's module options)"
    else
        fail "client-init.sh: the callback ports"; show /etc/nfs.conf.d/swiftnfs.conf; show "$S/client1.log"
    fi
    cp /etc/fstab "$S/fstab.client"
    if SWIFTNFS_SERVER=127.0.0.1 SWIFTNFS_MOUNT_NOW=$kernel bash "$DEPLOY/client-init.sh" >"$S/client2.log" 2>&1 \
        && grep -q "done: 0 changes" "$S/client2.log" && cmp -s /etc/fstab "$S/fstab.client"; then
        pass "client-init.sh: second run changes nothing"
    else
        fail "client-init.sh second run"; show "$S/client2.log"
    fi
    # mount -f: mount.nfs does everything but the mount(2) call. With the fstab options it asks
    # for NFSv4 first; the server answers version 3 only, which is how a real mount falls back to
    # v3 at once (-o vers=3 then shows the rest: NFS and MOUNT v3 from the portmapper).
    if mount -f -v /mnt/nfs >"$S/fake-mount.log" 2>&1 && grep -q "trying text-based options 'vers=4" "$S/fake-mount.log" \
        && { rpcinfo -T tcp 127.0.0.1 100003 4 2>&1 || true; } | grep -q "low version = 3, high version = 3" \
        && mount -f -v -o vers=3 /mnt/nfs >>"$S/fake-mount.log" 2>&1 \
        && grep -q "prog 100003, trying vers=3, prot=6" "$S/fake-mount.log" \
        && grep -q "prog 100005, trying vers=3" "$S/fake-mount.log"; then
        pass "mount -f /mnt/nfs (mount.nfs, the fstab options): NFSv4 asked first, answered with version 3 only; NFS and MOUNT v3 found"
    else
        fail "mount -f /mnt/nfs"; show "$S/fake-mount.log"
    fi
    if [ $kernel = 1 ]; then
        if mounted_from /mnt/nfs "127.0.0.1:/srv/nfs" && setpriv --reuid 1000 --regid 1000 --clear-groups \
            sh -c 'echo kernel > /mnt/nfs/kernel.txt' && [ "$(cat /srv/nfs/kernel.txt)" = kernel ]; then
            pass "kernel NFS client: mounted by client-init.sh with the fstab options; uid 1000 writes through it"
        else
            fail "kernel NFS mount"; show "$S/client1.log"
        fi
        # A lock one process holds refuses another's: locks go to the server's lock manager.
        local lock="setpriv --reuid 1000 --regid 1000 --clear-groups sh -c" holder i=0
        $lock "exec 9>>/mnt/nfs/kernel.txt && flock 9 && touch /mnt/nfs/locked && sleep 5" &
        holder=$!
        until [ -e /srv/nfs/locked ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
        if [ -e /srv/nfs/locked ] && ! $lock 'exec 9>>/mnt/nfs/kernel.txt && flock -n 9' && wait "$holder" \
            && $lock 'exec 9>>/mnt/nfs/kernel.txt && flock -n 9'; then
            pass "kernel NFS client: flock through the server's lock manager (a held lock refuses flock -n, then is free)"
        else
            fail "kernel NFS client: flock"; show "$S/server.log"
        fi
        wait "$holder" 2>/dev/null
        umount -f /mnt/nfs 2>/dev/null
    else
        skip "kernel NFS mount: this kernel has no NFS client (no nfs in /proc/filesystems, no module); the stock-kernel guest of Tests/Conformance/run covers kernel mounts"
    fi
}

# Instance stop/start: the instance store comes back blank, the EBS volume as it was.
stop_start() {
    local uuid storage
    uuid=$(uuid_of "$L2")
    echo keep >/var/lib/swiftnfs/state/marker
    umount /srv/nfs
    wipefs -qa "$L1"
    dd if=/dev/zero of="$L1" bs=1M count=4 conv=notrunc status=none
    storage=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/swiftnfs-storage.service)
    if $storage >"$S/storage.log" 2>&1 && [ "$(label_of "$L1")" = swiftnfs-srv ] \
        && mount /srv/nfs && mounted_from /srv/nfs "$L1" && [ "$(stat -c %u:%g /srv/nfs)" = 1000:1000 ]; then
        pass "after a stop/start: swiftnfs-storage.service ($storage) formats the blank instance store, the fstab entry mounts it, owner restored"
    else
        fail "boot after stop/start"; show "$S/storage.log"
    fi
    check "after a stop/start: the EBS volume is untouched (same UUID, state kept)" \
        bash -c "[ '$(uuid_of "$L2")' = '$uuid' ] && [ \"\$(cat /var/lib/swiftnfs/state/marker)\" = keep ]"
    if $storage >"$S/storage2.log" 2>&1 && grep -q "ok: $L1 is the served file system" "$S/storage2.log"; then
        pass "swiftnfs-storage.service at a reboot (instance store kept): nothing formatted"
    else
        fail "storage unit on a formatted instance store"; show "$S/storage2.log"
    fi
    if run_server_init "$S/run4.log" && grep -q "done: 0 changes" "$S/run4.log"; then
        pass "server-init.sh after the stop/start: nothing to change"
    else
        fail "server-init.sh after the stop/start"; show "$S/run4.log"
    fi

    # The server on the blank instance store: with --durable-dir it rebuilds the served tree
    # from the EBS volume before READY=1.
    if ! grep -q '^SWIFTNFSD_DURABLE_ARGS="--durable-dir ' /etc/default/swiftnfsd; then
        skip "rebuild after a stop/start: this swiftnfsd has no --durable-dir"
        return
    fi
    local ue i
    : >"$S/notify2.log"
    /usr/bin/python3 "$HERE/unit_exec.py" /etc/systemd/system/swiftnfsd.service --notify-log "$S/notify2.log" \
        --status "$S/status2" --pidfile "$S/pid2" >"$S/server2.log" 2>&1 &
    ue=$!
    i=0
    until grep -q 'READY=1' "$S/notify2.log" 2>/dev/null || ! kill -0 "$ue" 2>/dev/null || [ $i -ge 600 ]; do
        sleep 0.1; i=$((i + 1))
    done
    if [ "$(cat /srv/nfs/hello.txt 2>/dev/null)" = "written through NFS" ] \
        && [ "$(stat -c %u:%g /srv/nfs/hello.txt 2>/dev/null)" = 1000:1000 ]; then
        pass "after a stop/start: swiftnfsd rebuilt the served tree from the EBS volume before READY=1 (the file written through NFS is back, owner kept)"
    else
        fail "rebuild after a stop/start"; show "$S/server2.log"; find /srv/nfs -maxdepth 1 -printf '    | %M %u:%g %s %p\n'
    fi
    check "after the rebuild: the export's root keeps its owner and mode (1000:1000, 755)" \
        [ "$(stat -c %u:%g:%a /srv/nfs)" = 1000:1000:755 ]
    if [ "$(nfs-cat "nfs://127.0.0.1/srv/nfs/hello.txt?version=3&uid=1000&gid=1000" 2>/dev/null)" = "written through NFS" ]; then
        pass "after the rebuild: a client (uid 1000) reads the file again"
    else
        fail "after the rebuild: uid 1000 cannot read /srv/nfs/hello.txt through NFS"
    fi
    stop_unit "$S/pid2" "$ue"
}

# --- scenario "replaced": a new instance, the surviving EBS volume, other paths --------------
scenario_replaced() {
    server_env
    export SWIFTNFS_BINARY=$BIN SWIFTNFS_SERVED_DIR=/srv/export/data SWIFTNFS_DURABLE_DIR=/var/lib/swiftnfs-alt
    local uuid; uuid=$(uuid_of "$L2")
    wipefs -qa "$L1"
    if run_server_init "$S/run1.log"; then
        pass "server-init.sh on a new instance with the old EBS volume (local binary, other paths)"
    else
        fail "server-init.sh on a new instance"; show "$S/run1.log"; return
    fi
    check "the EBS volume is reused, not formatted (same UUID, state from before)" \
        bash -c "[ '$(uuid_of "$L2")' = '$uuid' ] && [ \"\$(cat /var/lib/swiftnfs-alt/state/marker)\" = keep ]"
    check "served directory at SWIFTNFS_SERVED_DIR" mounted_from /srv/export/data "$L1"
    check "drop-in: RequiresMountsFor= the configured paths" \
        grep -qx "RequiresMountsFor=/srv/export/data /var/lib/swiftnfs-alt" /etc/systemd/system/swiftnfsd.service.d/10-server-init.conf
    check "/etc/default/swiftnfsd: state directory on the EBS volume" \
        grep -qx "SWIFTNFSD_STATE_DIR=/var/lib/swiftnfs-alt/state" /etc/default/swiftnfsd
    check "exports the configured path" grep -qx "/srv/export/data 127.0.0.0/8(rw,sync,no_subtree_check)" /etc/exports
    if /usr/bin/python3 "$HERE/unit_exec.py" /etc/systemd/system/swiftnfsd.service --print-argv >"$S/argv" 2>&1 \
        && grep -q -- "--state-dir /var/lib/swiftnfs-alt/state" "$S/argv"; then
        pass "the unit's ExecStart picks the paths up from /etc/default/swiftnfsd: $(cat "$S/argv")"
    else
        fail "ExecStart expansion"; show "$S/argv"
    fi
    snapshot /srv/export/data /var/lib/swiftnfs-alt >"$S/snap1"
    if run_server_init "$S/run2.log" && grep -q "done: 0 changes" "$S/run2.log" \
        && snapshot /srv/export/data /var/lib/swiftnfs-alt | cmp -s - "$S/snap1"; then
        pass "server-init.sh: second run changes nothing"
    else
        fail "server-init.sh second run (replaced)"; show "$S/run2.log"
    fi
}

# --- scenario "refusals": a port taken, a foreign instance store, an existing exports file ----
scenario_refusals() {
    server_env
    export SWIFTNFS_BINARY=$BIN
    mkfs.ext4 -q -F -L other "$L1"
    printf '# knfsd exports\n/srv/nfs 127.0.0.1(rw,sync,no_subtree_check)\n' >/etc/exports
    cp /etc/exports "$S/exports.before"

    /usr/bin/python3 -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 2049)); s.listen(); time.sleep(120)' &
    local holder=$! i=0
    until ss -Hlnt | grep -q ':2049 ' || [ "$i" -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
    if ! run_server_init "$S/conflict.log" && grep -q "2049" "$S/conflict.log" \
        && grep -q "python3" "$S/conflict.log" && grep -q "SWIFTNFS_DISABLE_CONFLICTS" "$S/conflict.log" \
        && [ "$(label_of "$L1")" = other ]; then
        pass "port 2049 taken (as by nfs-kernel-server): refused, naming the holder and the way out; no disk touched"
    else
        fail "port conflict not refused"; show "$S/conflict.log"
    fi
    kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null

    if ! run_server_init "$S/foreign.log" && grep -q "SWIFTNFS_INSTANCE_STORE_WIPE=1" "$S/foreign.log" \
        && [ "$(label_of "$L1")" = other ]; then
        pass "an instance store holding another file system is not wiped without SWIFTNFS_INSTANCE_STORE_WIPE=1"
    else
        fail "foreign instance store"; show "$S/foreign.log"
    fi
    if SWIFTNFS_INSTANCE_STORE_WIPE=1 run_server_init "$S/wipe.log" && [ "$(label_of "$L1")" = swiftnfs-srv ]; then
        pass "SWIFTNFS_INSTANCE_STORE_WIPE=1: wiped and formatted"
    else
        fail "SWIFTNFS_INSTANCE_STORE_WIPE=1"; show "$S/wipe.log"
    fi
    if cmp -s /etc/exports "$S/exports.before" && grep -q "keeping the existing /etc/exports" "$S/wipe.log"; then
        pass "migration: an existing /etc/exports (nfs-kernel-server's) is kept as it is"
    else
        fail "existing /etc/exports was rewritten"; show "$S/wipe.log"
    fi

    # A system rpcbind on 111: refused, unless told to register with it.
    /usr/bin/python3 -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 111)); s.listen(); time.sleep(120)' &
    holder=$! i=0
    until ss -Hlnt | grep -q ':111 ' || [ "$i" -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
    if ! run_server_init "$S/rpcbind1.log" && grep -q ":111" "$S/rpcbind1.log" \
        && grep -q "SWIFTNFS_REGISTER_RPCBIND=1" "$S/rpcbind1.log"; then
        pass "port 111 taken (as by rpcbind): refused, naming the port and SWIFTNFS_REGISTER_RPCBIND"
    else
        fail "port 111 conflict"; show "$S/rpcbind1.log"
    fi
    if SWIFTNFS_REGISTER_RPCBIND=1 run_server_init "$S/rpcbind2.log" \
        && grep -qx 'SWIFTNFSD_ARGS="--register-rpcbind"' /etc/default/swiftnfsd; then
        pass "SWIFTNFS_REGISTER_RPCBIND=1: accepted, swiftnfsd gets --register-rpcbind"
    else
        fail "SWIFTNFS_REGISTER_RPCBIND=1"; show "$S/rpcbind2.log"
    fi
    kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
}

# --- scenario "migrate": a host that served /etc/exports with nfs-kernel-server ---------------
scenario_migrate() {
    export SWIFTNFS_STORAGE=none SWIFTNFS_BINARY=$BIN SWIFTNFS_SERVED_DIR=/srv/data
    local before_l1 before_l2 i ue
    before_l1=$(blkid -p "$L1" 2>/dev/null); before_l2=$(blkid -p "$L2" 2>/dev/null)
    mkdir -p /srv/data
    echo "from the knfsd days" >/srv/data/old.txt
    chown -R 1000:1000 /srv/data
    printf '# nfs-kernel-server exports\n/srv/data 127.0.0.0/8(rw,sync,no_subtree_check)\n' >/etc/exports
    cp /etc/exports "$S/exports.before"; cp /etc/fstab "$S/fstab.before"
    if run_server_init "$S/run1.log"; then
        pass "migration (SWIFTNFS_STORAGE=none): server-init.sh installs swiftnfsd beside the existing data"
    else
        fail "migration run"; show "$S/run1.log"; return
    fi
    check "migration: /etc/exports and /etc/fstab untouched, no storage unit, no --durable-dir" bash -c "
        cmp -s /etc/exports '$S/exports.before' && cmp -s /etc/fstab '$S/fstab.before' \
        && [ ! -e /etc/systemd/system/swiftnfs-storage.service ] \
        && grep -qx 'SWIFTNFSD_DURABLE_ARGS=\"\"' /etc/default/swiftnfsd"
    check "migration: no disk touched" bash -c "[ \"\$(blkid -p '$L1' 2>/dev/null)\" = '$before_l1' ] && [ \"\$(blkid -p '$L2' 2>/dev/null)\" = '$before_l2' ]"
    if run_server_init "$S/run2.log" && grep -q "done: 0 changes" "$S/run2.log"; then
        pass "migration: second run changes nothing"
    else
        fail "migration: second run"; show "$S/run2.log"
    fi
    /usr/bin/python3 "$HERE/unit_exec.py" /etc/systemd/system/swiftnfsd.service --pidfile "$S/pid" \
        --status "$S/status" >"$S/server.log" 2>&1 &
    ue=$!
    i=0
    until showmount -e 127.0.0.1 >"$S/showmount" 2>&1 || [ $i -ge 60 ]; do sleep 0.5; i=$((i + 1)); done
    if grep -q '^/srv/data ' "$S/showmount" \
        && [ "$(nfs-cat "nfs://127.0.0.1/srv/data/old.txt?version=3&uid=1000&gid=1000" 2>/dev/null)" = "from the knfsd days" ]; then
        pass "migration: the same exports file is served; a client reads the existing files"
    else
        fail "migration: serving the existing exports"; show "$S/showmount"; show "$S/server.log"
    fi
    stop_unit "$S/pid" "$ue"
}

# --- scenario "ha": an etcd member (etcd-init.sh) and an HA node (server-init.sh), for real ---
# One etcd member on loopback and one node whose service address goes on a veth of the sandbox:
# the node must win the election, hold the address with the unit's capabilities (its drop-in),
# run the hook, answer through the address, and give it all back at SIGTERM.
HA_ADDRESS=10.99.0.100
scenario_ha() {
    if ! command -v etcd >/dev/null; then skip "HA node: no etcd here (Debian package etcd-server)"; return; fi
    if ! grep -q -- --ha-etcd <<<"$("$BIN" serve --help 2>&1)"; then skip "HA node: this swiftnfsd has no --ha-etcd"; return; fi
    local etcd_pid ue i args
    # etcd-init.sh finds its member by this host's address (127.0.0.1 here).
    if SWIFTNFS_ETCD_CLUSTER=m1=http://127.0.0.1:2380 bash "$DEPLOY/ha/etcd-init.sh" >"$S/etcd1.log" 2>&1 \
        && grep -qx 'ETCD_NAME=m1' /etc/swiftnfs/etcd.env \
        && grep -qx 'ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:2379' /etc/swiftnfs/etcd.env \
        && grep -qx 'ETCD_INITIAL_CLUSTER=m1=http://127.0.0.1:2380' /etc/swiftnfs/etcd.env \
        && grep -qx 'EnvironmentFile=/etc/swiftnfs/etcd.env' /etc/systemd/system/etcd.service.d/10-swiftnfs.conf; then
        pass "etcd-init.sh: the member's settings (its name found by its address) and etcd.service's drop-in"
    else
        fail "etcd-init.sh"; show "$S/etcd1.log"; return
    fi
    if SWIFTNFS_ETCD_CLUSTER=m1=http://127.0.0.1:2380 bash "$DEPLOY/ha/etcd-init.sh" >"$S/etcd2.log" 2>&1 \
        && grep -q "done: 0 changes" "$S/etcd2.log"; then
        pass "etcd-init.sh: a second run changes nothing"
    else
        fail "etcd-init.sh: second run"; show "$S/etcd2.log"
    fi
    # etcd as its unit runs it: the package's binary with the member's environment.
    # shellcheck source=/dev/null  # written by etcd-init.sh above
    (set -a && . /etc/swiftnfs/etcd.env && exec etcd) >"$S/etcd.log" 2>&1 &
    etcd_pid=$!
    i=0
    until curl -fsS -m 2 http://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"' || [ $i -ge 100 ]; do sleep 0.2; i=$((i + 1)); done
    check "etcd from etcd-init.sh's settings is healthy" curl -fsS -m 2 -o /dev/null http://127.0.0.1:2379/health

    # The node's network: the service address goes on ha0, the interface of the default route.
    ip link add ha0 type veth peer name ha0p && ip link set ha0 up && ip link set ha0p up \
        && ip addr add 10.99.0.2/24 dev ha0 && ip route add default via 10.99.0.1 dev ha0
    server_env
    wipefs -qa "$L1" "$L2"
    # The EC2 hook needs the AWS CLI, which server-init.sh installs when it is missing: a stand-in
    # here (no network; the hook itself is tested against moto in test_ha_hook_moto.py).
    if ! PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v aws >/dev/null; then
        printf '#!/bin/sh\necho "aws: a stand-in of boot-scripts.sh" >&2\nexit 1\n' >/usr/local/bin/aws
        chmod 755 /usr/local/bin/aws
    fi
    # A client on this host reaches the service address from the service address.
    export SWIFTNFS_EXPORT_CLIENTS="127.0.0.0/8 10.99.0.0/24"
    export SWIFTNFS_BINARY=$BIN SWIFTNFS_HA_ETCD=http://127.0.0.1:2379 SWIFTNFS_HA_NAME=node-a \
        SWIFTNFS_HA_ADDRESS=$HA_ADDRESS SWIFTNFS_HA_TTL=3 SWIFTNFS_HA_HOOK=ec2 SWIFTNFS_HA_EC2_REGION=eu-west-1
    if run_server_init "$S/run1.log"; then
        pass "server-init.sh with SWIFTNFS_HA_ETCD: an HA node set up"
    else
        fail "server-init.sh with SWIFTNFS_HA_ETCD"; show "$S/run1.log"; kill "$etcd_pid"; return
    fi
    args="--ha-etcd http://127.0.0.1:2379 --ha-name node-a --ha-address $HA_ADDRESS/32 --ha-interface ha0"
    args+=" --ha-cluster default --ha-ttl 3 --ha-takeover-hook /usr/local/lib/swiftnfs/ec2-takeover-hook.sh"
    check "/etc/default/swiftnfsd: the --ha-* options (address /32, interface of the default route, the EC2 hook)" \
        grep -qx "SWIFTNFSD_HA_ARGS=\"$args\"" /etc/default/swiftnfsd
    check "/etc/default/swiftnfsd: the durable directory, which replication needs" \
        grep -qx 'SWIFTNFSD_DURABLE_ARGS="--durable-dir /var/lib/swiftnfs"' /etc/default/swiftnfsd
    check "the EC2 hook and ha-node.sh installed as shipped" \
        bash -c "cmp -s '$DEPLOY/ha/ec2-takeover-hook.sh' /usr/local/lib/swiftnfs/ec2-takeover-hook.sh \
            && cmp -s '$DEPLOY/ha/ha-node.sh' /usr/local/lib/swiftnfs/ha-node.sh"
    check "the hook's configuration: secondary-ip mode, the region" bash -c \
        "grep -qx SWIFTNFS_EC2_MODE=secondary-ip /etc/swiftnfs/ec2-takeover-hook.conf && grep -qx SWIFTNFS_EC2_REGION=eu-west-1 /etc/swiftnfs/ec2-takeover-hook.conf"
    check "drop-in 20-ha.conf: CAP_NET_ADMIN, CAP_NET_RAW and AF_PACKET for ip addr and arping" bash -c \
        "grep -qx 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW' /etc/systemd/system/swiftnfsd.service.d/20-ha.conf \
            && grep -qx 'RestrictAddressFamilies=AF_PACKET' /etc/systemd/system/swiftnfsd.service.d/20-ha.conf"
    check "the resolved settings are saved (interface, name, address with its prefix)" bash -c \
        "grep -qx SWIFTNFS_HA_INTERFACE=ha0 /etc/swiftnfs/server-init.conf && grep -qx SWIFTNFS_HA_NAME=node-a /etc/swiftnfs/server-init.conf \
            && grep -qx SWIFTNFS_HA_ADDRESS=$HA_ADDRESS/32 /etc/swiftnfs/server-init.conf"
    if systemd-analyze verify /etc/systemd/system/swiftnfsd.service >"$S/verify.log" 2>&1 && ! [ -s "$S/verify.log" ]; then
        pass "systemd-analyze verify: the installed unit with its HA drop-in"
    else
        fail "systemd-analyze verify with the HA drop-in"; show "$S/verify.log"
    fi
    if env -u SWIFTNFS_BINARY -u SWIFTNFS_HA_ETCD -u SWIFTNFS_HA_NAME -u SWIFTNFS_HA_ADDRESS -u SWIFTNFS_HA_TTL \
        -u SWIFTNFS_HA_HOOK -u SWIFTNFS_HA_EC2_REGION -u SWIFTNFS_INSTANCE_STORE_DEVICE -u SWIFTNFS_DURABLE_DEVICE \
        bash /usr/local/lib/swiftnfs/server-init.sh >"$S/run2.log" 2>&1 && grep -q "done: 0 changes" "$S/run2.log"; then
        pass "server-init.sh from /usr/local/lib/swiftnfs, no environment: still an HA node, nothing to change"
    else
        fail "HA node: a run from the saved settings"; show "$S/run2.log"
    fi

    # Started as its unit starts it, with a hook that records its calls.
    # shellcheck disable=SC2016  # expanded when the hook runs
    printf '#!/bin/sh\nenv | grep ^SWIFTNFS_HA_ | sort >"/var/lib/hook.$SWIFTNFS_HA_ROLE"\n' >/usr/local/lib/record-hook.sh
    chmod 755 /usr/local/lib/record-hook.sh
    SWIFTNFS_HA_HOOK=/usr/local/lib/record-hook.sh run_server_init "$S/run3.log" || { fail "HA node: another hook"; show "$S/run3.log"; }
    : >"$S/notify.log"
    /usr/bin/python3 "$HERE/unit_exec.py" /etc/systemd/system/swiftnfsd.service --notify-log "$S/notify.log" \
        --status "$S/status" --pidfile "$S/pid" >"$S/server.log" 2>&1 &
    ue=$!
    # READY=1 whatever the role: systemctl start (and server-init.sh) returns on the standby too.
    if wait_for_file_line "$S/notify.log" 'READY=1' 60; then pass "HA node: READY=1 sent"; else
        fail "HA node: no READY=1"; show "$S/server.log"; fi
    i=0
    until "$BIN" ha status --ha-etcd http://127.0.0.1:2379 >"$S/status.json" 2>/dev/null \
        && grep -q '"active" *: *"node-a"' "$S/status.json" || [ $i -ge 150 ]; do sleep 0.2; i=$((i + 1)); done
    if grep -q '"active" *: *"node-a"' "$S/status.json"; then
        pass "the node runs from the unit's command line and leads: swiftnfsd ha status says $(tr -d '\n ' <"$S/status.json")"
    else
        fail "HA node: not the active"; show "$S/status.json"; show "$S/server.log"
    fi
    i=0
    until ip -o addr show dev ha0 | grep -q " $HA_ADDRESS/32 " || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
    check "the service address is on ha0 (ip addr under the unit's capabilities, with the drop-in's)" \
        bash -c "ip -o addr show dev ha0 | grep -q ' $HA_ADDRESS/32 '"
    i=0
    until [ -s /var/lib/hook.active ] || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
    check "the takeover hook ran with role active, the address and the node's name" bash -c \
        "grep -qx SWIFTNFS_HA_ADDRESS=$HA_ADDRESS/32 /var/lib/hook.active && grep -qx SWIFTNFS_HA_NAME=node-a /var/lib/hook.active \
            && grep -qx SWIFTNFS_HA_INTERFACE=ha0 /var/lib/hook.active"
    if showmount -e "$HA_ADDRESS" 2>"$S/showmount.err" | grep -q '^/srv/nfs ' \
        && echo "through the service address" >"$S/hello" \
        && nfs-cp "$S/hello" "nfs://$HA_ADDRESS/srv/nfs/ha.txt?version=3&uid=1000&gid=1000" >"$S/nfscp.log" 2>&1 \
        && [ "$(cat /srv/nfs/ha.txt)" = "through the service address" ]; then
        pass "a client mounts and writes through the service address"
    else
        fail "NFS through the service address"; show "$S/showmount.err"; show "$S/nfscp.log"
    fi
    stop_unit "$S/pid" "$ue"
    if ! ip -o addr show dev ha0 | grep -q " $HA_ADDRESS/" && [ -s /var/lib/hook.standby ]; then
        pass "SIGTERM: the node resigned, dropped the address and ran the hook as standby"
    else
        fail "HA node: stop"; ip -o addr show dev ha0 | sed 's/^/    | /'; show "$S/server.log"
    fi
    kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null

    if SWIFTNFS_HA_ETCD="" run_server_init "$S/run4.log" && [ ! -e /etc/systemd/system/swiftnfsd.service.d/20-ha.conf ] \
        && grep -qx 'SWIFTNFSD_HA_ARGS=""' /etc/default/swiftnfsd; then
        pass "SWIFTNFS_HA_ETCD= turns the node back into a single server (no --ha-* options, no drop-in)"
    else
        fail "leaving HA"; show "$S/run4.log"
    fi
}

if [ "${1:-}" = --in-sandbox ]; then
    scenario=$2
    S=$W/$scenario
    mkdir -p "$S"
    sandbox_setup
    case $scenario in
        fresh) scenario_fresh ;;
        replaced) scenario_replaced ;;
        refusals) scenario_refusals ;;
        migrate) scenario_migrate ;;
        ha) scenario_ha ;;
        *) fail "no scenario $scenario" ;;
    esac
    exit $FAILED
fi

# ============================================================================================
# On the host
# ============================================================================================
BIN=$(readlink -f "${1:?usage: boot-scripts.sh SWIFTNFSD_BINARY}")
[ -x "$BIN" ] || { fail "boot scripts: $BIN is not executable"; exit 1; }
if [ "$(id -u)" != 0 ]; then skip "boot scripts: need root (loop devices, mounts, namespaces)"; exit 0; fi
for tool in losetup unshare mkfs.ext4 wipefs blkid findmnt ss rpcinfo showmount nfs-cp nfs-cat mount.nfs; do
    command -v "$tool" >/dev/null || { fail "boot scripts: $tool is missing"; exit 1; }
done

W=$(mktemp -d /var/tmp/swiftnfs-deploy-test.XXXXXX)
L1="" L2=""
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
    [ -n "$L1" ] && losetup -d "$L1" 2>/dev/null
    [ -n "$L2" ] && losetup -d "$L2" 2>/dev/null
    if [ -n "${KEEP_TEST_DIR:-}" ]; then echo "test files kept in $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

# A release archive as a release would publish it, served from a file:// URL.
mkdir -p "$W/release/swiftnfs/bin"
cp "$BIN" "$W/release/swiftnfs/bin/swiftnfsd"
tar -czf "$W/release.tar.gz" -C "$W/release" swiftnfs
RELEASE_SHA256=$(sha256sum "$W/release.tar.gz" | cut -d' ' -f1)

truncate -s 256M "$W/instance-store.img" "$W/ebs.img"
if ! L1=$(losetup -f --show "$W/instance-store.img") || ! L2=$(losetup -f --show "$W/ebs.img"); then
    skip "boot scripts: no loop devices here (losetup failed)"; exit 0
fi
echo "boot scripts: instance store = $L1, EBS volume = $L2, work dir $W" >&2

export W L1 L2 BIN RELEASE_SHA256
for scenario in ${BOOT_SCENARIOS:-fresh replaced refusals migrate ha}; do
    unshare --mount --net --propagation private bash "$0" --in-sandbox "$scenario" || FAILED=1
done
exit $FAILED
