#!/usr/bin/env bash
# Runs the server and the conformance suite against the kernel NFS client, on this machine:
# inside the guest that ./run boots, or directly on a host whose kernel has an NFS client.
# Needs root (mount). Talks to 127.0.0.1 only.
#
# Environment: SWIFTNFSD_BIN (required), CONF_OUT (results and logs; default a new temporary
# directory), CONF_VARIANTS, CONF_CHECKS, CONF_LOG_LEVEL, CONF_NFS_PORT (default 2049),
# CONF_BIG_ALL=1 (the 100,000-entry directory on every variant, not just the first),
# CONF_BIG_N (its size), CONF_EXPORT_FS (tmpfs or ext4; default ext4 when mkfs.ext4 exists).
#
# Prints PASS/FAIL lines (also collected in $CONF_OUT/results), TIME lines, and at the end
# "N passed, N failed". Exits 1 if anything failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${SWIFTNFSD_BIN:?SWIFTNFSD_BIN must name the server binary}
OUT=${CONF_OUT:-$(mktemp -d /tmp/conformance-out.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results"
: >"$RESULTS"
NFSPORT=${CONF_NFS_PORT:-2049}
LOGLEVEL=${CONF_LOG_LEVEL:-notice}
T_START=$(date +%s.%N)

# name | mount options | portmapper port the server runs (0: none) | what runs
ALL_VARIANTS="tcp-ports-mnttcp tcp-ports-mntudp tcp-portmap-mnttcp tcp-portmap-mntudp defaults durable restart locking ha"
variant_opts() {
    case $1 in
        tcp-ports-mnttcp) echo "vers=3,proto=tcp,port=$NFSPORT,mountport=$NFSPORT,mountproto=tcp,nolock" ;;
        tcp-ports-mntudp) echo "vers=3,proto=tcp,port=$NFSPORT,mountport=$NFSPORT,mountproto=udp,nolock" ;;
        tcp-portmap-mnttcp) echo "vers=3,proto=tcp,mountproto=tcp,nolock" ;;
        tcp-portmap-mntudp) echo "vers=3,proto=tcp,mountproto=udp,nolock" ;;
        defaults) echo "nolock" ;;   # the client negotiates the version, protocol and ports
        restart) echo "vers=3,proto=tcp,port=$NFSPORT,mountport=$NFSPORT,mountproto=tcp,nolock" ;;
        durable) echo "vers=3,proto=tcp,port=$NFSPORT,mountport=$NFSPORT,mountproto=tcp,nolock" ;;  # server with --durable-dir
        locking) echo "none: mount SERVER:/path /mnt (see locking.sh)" ;;
        ha) echo "$HA_OPTS" ;;   # two serving nodes, etcd, the service address (see ha.sh)
        *) return 1 ;;
    esac
}
variant_portmap() {
    case $1 in
        tcp-ports-*|restart|durable) echo 0 ;;   # explicit ports: no portmapper needed, none running
        *) echo 111 ;;
    esac
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
note() { echo "harness: $*" >&2; }
result() { echo "$*"; echo "$*" >>"$RESULTS"; }
pass() { result "PASS $1: $2"; }
failc() { result "FAIL $1: $2: $3"; }

# --- the export and the server ----------------------------------------------------------------
W=$(mktemp -d /tmp/conformance.XXXXXX)
chmod 755 "$W"  # the non-root user of the EACCES checks must reach the mount point
EXP="$W/export"
STATE="$W/state"
MNT="$W/mnt"
mkdir -p "$EXP" "$STATE" "$MNT" "$MNT-ro" "$MNT-squash" "$MNT-big"

FS=${CONF_EXPORT_FS:-}
if [ -z "$FS" ]; then
    if command -v mkfs.ext4 >/dev/null; then FS=ext4; else FS=tmpfs; fi
fi
if [ -n "${CONF_IN_GUEST:-}" ]; then
    # In the guest, /tmp is a tmpfs already; the export gets its own file system.
    if [ "$FS" = ext4 ]; then
        truncate -s 1200M "$W/export.img"
        mkfs.ext4 -q -F -N 400000 -E lazy_itable_init=1,lazy_journal_init=1 "$W/export.img" \
            && mount -o loop "$W/export.img" "$EXP" || { note "ext4 export failed; using tmpfs"; FS=tmpfs; }
    fi
    [ "$FS" = ext4 ] || mount -t tmpfs -o size=1200m,mode=0755 conformance-export "$EXP"
fi
[ -n "${CONF_IN_GUEST:-}" ] || FS="$(stat -f -c %T "$EXP")"
note "export on $FS ($EXP)"
RW="$EXP/rw" RO="$EXP/ro" SQ="$EXP/squash"
mkdir -p "$RW" "$RO/dir" "$SQ"
echo "read only" >"$RO/readme"
chmod 777 "$SQ"
cat >"$W/exports" <<EOF
$RW     *(rw,no_root_squash,no_subtree_check)
$RO     *(ro,no_root_squash,no_subtree_check)
$SQ     *(rw,root_squash,no_subtree_check)
EOF

SERVER_PID=
LISTEN=127.0.0.1
start_server() { # $1: portmapper port (0: none)
    # shellcheck disable=SC2086 # SERVER_EXTRA: further options, word-split on purpose
    "$BIN" serve --exports "$W/exports" --listen "$LISTEN" --nfs-port "$NFSPORT" \
        --portmap-port "$1" --state-dir "$STATE" --log-level "$LOGLEVEL" ${SERVER_EXTRA:-} >>"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    local i ports=$NFSPORT
    [ "$1" = 0 ] || ports="$NFSPORT $1"
    for i in $(seq 1 600); do
        local ok=1 p
        for p in $ports; do
            (exec 3<>"/dev/tcp/$LISTEN/$p") 2>/dev/null || ok=0
        done
        [ $ok = 1 ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { note "the server exited: $(tail -n 3 "$OUT/server.log")"; return 1; }
        sleep 0.1
    done
    note "the server did not listen on $ports within 60 s"
    return 1
}
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}

do_mount() { # options export dir [host]
    timeout 120 mount -t nfs -o "$1" "${4:-127.0.0.1}:$2" "$3" 2>&1
}
do_umount() {
    local d=$1 out
    out=$(timeout 60 umount "$d" 2>&1) && return 0
    echo "$out"
    timeout 30 umount -f -l "$d" >/dev/null 2>&1
    return 1
}

cleanup() {
    for d in "$MNT-big" "$MNT" "$MNT-ro" "$MNT-squash"; do mountpoint -q "$d" && umount -f -l "$d" 2>/dev/null; done
    [ -z "${SRV_NS:-}" ] || teardown_two_hosts
    [ -z "${HA_UP:-}" ] || ha_teardown
    stop_server
    if [ -n "${CONF_IN_GUEST:-}" ]; then umount -l "$EXP" 2>/dev/null; fi
    rm -rf "$W" 2>/dev/null
}
trap cleanup EXIT

# --- variants ---------------------------------------------------------------------------------
run_suite_variant() { # name
    local v=$1 opts pm rc
    opts=$(variant_opts "$v")
    pm=$(variant_portmap "$v")
    start_server "$pm" || { failc "$v" server "did not start (see server.log)"; return; }
    local t0; t0=$(now)
    if out=$(do_mount "$opts" "$RW" "$MNT"); then
        pass "$v" "mount -o $opts"
    else
        failc "$v" "mount -o $opts" "$(echo "$out" | tail -n 1)"
        stop_server; return
    fi
    echo "TIME $v mount: $(elapsed "$t0")s" >&2
    note "$v: $(grep " $MNT " /proc/mounts | cut -d' ' -f4)"
    local ro= sq=
    if out=$(do_mount "$opts" "$RO" "$MNT-ro"); then ro="$MNT-ro"; else
        failc "$v" "mount of the read-only export" "$(echo "$out" | tail -n 1)"; fi
    if out=$(do_mount "$opts" "$SQ" "$MNT-squash"); then sq="$MNT-squash"; else
        failc "$v" "mount of the root_squash export" "$(echo "$out" | tail -n 1)"; fi
    # A developer's hook: a script to run against the fresh mount before the suite.
    [ -z "${CONF_HOOK:-}" ] || bash "$CONF_HOOK" "$MNT" "$RW" "$v" 2>&1 | sed 's/^/hook: /'
    local big=${CONF_BIG_N:-100000} bigmnt= keep=
    if [ -n "$BIG_DONE" ] && [ -z "${CONF_BIG_ALL:-}" ]; then big=0; fi
    # With a journal, nothing may change the served tree behind the server's back (the journal
    # would not know): no 100,000-entry directory made on the server side, and the files the
    # checks made stay, for the comparison of the copy with the tree.
    if [ "$v" = durable ]; then big=0 keep=1; fi
    if [ "$big" != 0 ]; then
        BIG_DONE=1
        # The 100,000-entry directory is listed through a second mount of the same export that
        # keeps attributes for an hour (a separate client cache: the options differ).
        if out=$(do_mount "$opts,actimeo=3600" "$RW" "$MNT-big"); then bigmnt="$MNT-big"; else
            failc "$v" "mount -o $opts,actimeo=3600" "$(echo "$out" | tail -n 1)"; fi
    fi
    local checks=${CONF_CHECKS:-}
    if [ -z "$checks" ] && [ -n "$FULL_DONE" ] && [ "${CONF_FULL_VARIANTS:-}" != all ]; then
        checks=$VARIANT_CHECKS
    fi
    FULL_DONE=1
    if [ "$v" = durable ] && [ -z "$checks" ]; then checks=$VARIANT_CHECKS; fi
    RO_MNT=$ro SQUASH_MNT=$sq BIG_N=$big BIG_MNT=$bigmnt CHECKS="$checks" KEEP_FILES=$keep \
        sh "$HERE/suite.sh" "$v" "$MNT" "$RW" | tee -a "$RESULTS"
    local um=ok
    for d in "$MNT-big" "$MNT-squash" "$MNT-ro" "$MNT"; do
        mountpoint -q "$d" || continue
        if ! out=$(do_umount "$d"); then um="$d: $(echo "$out" | tail -n 1)"; fi
    done
    if [ "$um" = ok ]; then pass "$v" umount; else failc "$v" umount "$um"; fi
    stop_server
    [ "$v" = durable ] && check_durable_copy "$v"
}

# The durable variant: the server keeps a journal and a checkpointed copy in $DURABLE. After a
# clean stop (which ends with a checkpoint) the copy of the read-write export must be the
# served tree itself: names, types, contents, symlink targets, modes and hard links.
DURABLE="$W/durable"
tree_listing() { # dir: one line per entry, with what a copy must keep
    (cd "$1" && find . -mindepth 1 \( -type d -printf '%P d %m\n' \) -o -printf '%P %y %m %n %s %l\n' | sort)
}
check_durable_copy() {
    local v=$1 c copy=
    for c in "$DURABLE"/copy/*; do
        [ -d "$c" ] && [ "$(tree_listing "$c")" = "$(tree_listing "$RW")" ] && diff -r --no-dereference "$RW" "$c" >/dev/null 2>&1 && copy=$c
    done
    if [ -n "$copy" ]; then pass "$v" "the durable copy is the served tree after a clean stop ($(tree_listing "$RW" | wc -l) entries)"
    else failc "$v" "the durable copy is the served tree after a clean stop" "no copy under $DURABLE/copy matches $RW"; fi
}

# Restart under a live mount: hold a mount, open files, a current directory; write + fsync;
# SIGKILL the server and start it again with the same state directory; the client goes on.
run_restart() {
    local v=restart opts; opts=$(variant_opts $v)
    start_server 0 || { failc $v server "did not start"; return; }
    if ! out=$(do_mount "$opts" "$RW" "$MNT"); then
        failc $v "mount -o $opts" "$(echo "$out" | tail -n 1)"; stop_server; return
    fi
    local d="$MNT/restart.$$" ctl="$W/restart-ctl"
    mkdir -p "$d" "$ctl"
    # A shell whose current directory is on the mount, and files looked up before.
    echo before >"$d/looked-up"
    head -c $((4 << 20)) /dev/urandom >"$W/streamed"
    python3 "$HERE/fsops.py" holder "$d" "$ctl" >"$W/holder.out" 2>&1 &
    local hpid=$! i
    for i in $(seq 1 600); do [ -e "$ctl/ready" ] && break; sleep 0.1; done
    [ -e "$ctl/ready" ] || { failc $v holder "never got ready: $(cat "$W/holder.out")"; }
    stat "$d/looked-up" >/dev/null
    # A writer in the middle of a stream of writes when the server dies.
    ( dd if="$W/streamed" of="$d/streamed" bs=64k conv=fsync 2>"$W/dd.err"; echo $? >"$W/dd.rc" ) &
    local wpid=$!
    sleep 1
    kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
    note "server killed (SIGKILL) under a live mount"
    sleep 2
    local t0; t0=$(now)
    start_server 0 || { failc $v "server restart" "did not start again"; }
    echo "TIME $v server restart: $(elapsed "$t0")s" >&2
    touch "$ctl/go"
    t0=$(now)
    if wait $hpid; then pass $v "held files, descriptors and directories after SIGKILL + restart"
    else failc $v "held files, descriptors and directories after SIGKILL + restart" "$(tail -n 1 "$W/holder.out")"; fi
    wait $wpid
    if [ "$(cat "$W/dd.rc" 2>/dev/null)" = 0 ] && cmp -s "$W/streamed" "$d/streamed" && cmp -s "$W/streamed" "$RW/restart.$$/streamed"; then
        pass $v "a write stream across the restart completes intact"
    else
        failc $v "a write stream across the restart completes intact" "dd: $(cat "$W/dd.rc" 2>/dev/null) $(tail -n 1 "$W/dd.err"); $(cmp "$W/streamed" "$d/streamed" 2>&1 | head -n 1)"
    fi
    echo "TIME $v client recovery: $(elapsed "$t0")s" >&2
    if out=$(cat "$d/looked-up" 2>&1) && [ "$out" = before ]; then pass $v "a path looked up before the restart"
    else failc $v "a path looked up before the restart" "$out"; fi
    if out=$(cd "$d" && ls -A held-dir 2>&1 | tr '\n' ' '); then pass $v "listing after the restart"
    else failc $v "listing after the restart" "$out"; fi
    # A second kill while idle, then a remount-free check with the server's index reloaded twice.
    kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
    start_server 0 || failc $v "second restart" "did not start again"
    if out=$(python3 "$HERE/fsops.py" verifyat "$d/held-write" 0 $((2 << 20)) held-a 2>&1); then
        pass $v "fsynced data after a second SIGKILL + restart"
    else failc $v "fsynced data after a second SIGKILL + restart" "$out"; fi
    rm -rf "$d" || failc $v cleanup "rm -rf after the restarts failed"
    if out=$(do_umount "$MNT"); then pass $v umount; else failc $v umount "$out"; fi
    stop_server
}

# The locking variant (run_locking): see locking.sh.
# shellcheck source=locking.sh
. "$HERE/locking.sh"
# The HA variant (run_ha): see ha.sh.
# shellcheck source=ha.sh
. "$HERE/ha.sh"

BIG_DONE= FULL_DONE=
# The whole suite runs on the first mount variant. Under emulation (about 2 to 10 ms per NFS
# round trip, 0.1 s per exec, 1 s per python3 start) the whole suite on every variant would not
# fit in 20 minutes, so the other variants run these checks, which cover what differs between
# mounts (the mount itself, I/O, namespace operations, errors); CONF_FULL_VARIANTS=all (the
# default on a host with its own NFS client) runs everything everywhere.
VARIANT_CHECKS="write_small write_large truncate rename hardlink symlink dir1000 excl unlink_open fsync errors eacces erofs"
if [ -z "${CONF_IN_GUEST:-}" ] && [ -z "${CONF_FULL_VARIANTS:-}" ]; then CONF_FULL_VARIANTS=all; fi
note "server: $BIN"
note "kernel: $(uname -r)"
t0=$(now); python3 -c pass; note "python3 starts in $(elapsed "$t0")s"
t0=$(now); sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done'; note "10 execs of /bin/true: $(elapsed "$t0")s"
for v in ${CONF_VARIANTS:-$ALL_VARIANTS}; do
    variant_opts "$v" >/dev/null || { failc "$v" variant "unknown variant"; continue; }
    t0=$(now)
    case $v in
        restart) run_restart ;;
        locking) run_locking ;;
        ha) run_ha ;;
        durable) SERVER_EXTRA="--durable-dir $DURABLE" run_suite_variant "$v" ;;
        *) run_suite_variant "$v" ;;
    esac
    echo "TIME variant $v: $(elapsed "$t0")s"
done

passed=$(grep -c '^PASS ' "$RESULTS")
failed=$(grep -c '^FAIL ' "$RESULTS")
echo "TIME harness: $(elapsed "$T_START")s"
if [ -z "${CONF_FROM_RUN:-}" ]; then  # otherwise ./run prints these, last
    if [ "$failed" -gt 0 ]; then
        echo "failed checks:"
        grep '^FAIL ' "$RESULTS" | sed 's/^/  /'
    fi
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
