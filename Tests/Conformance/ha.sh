# shellcheck shell=bash
# The ha variant, sourced by harness.sh: failover of an HA pair (issue 17) under the stock kernel
# client, which holds open descriptors, a current directory and paths across it.
#
#   guest root namespace: bridge swnfsha0, 10.78.0.1/24: the client, and etcd (10.78.0.1:2379)
#   swnfs-ha-a:           node a, ha0 = 10.78.0.11/24  } swiftnfsd serve --durable-dir --ha-*,
#   swnfs-ha-b:           node b, ha0 = 10.78.0.12/24  } each with its own export, state and
#                                                      } durable directories (on the ext4 export)
#   service address:      10.78.0.100/24, added and removed on ha0 by the nodes themselves
#
# Both nodes export the same path ($HA_EXPORT): each runs in a mount namespace of its own (`ip
# netns exec` makes one) where its own directory is bind-mounted there, with a tmpfs on
# /run/swiftnfs for its crash markers. The client mounts SERVICE:$HA_EXPORT with $HA_OPTS.
#
# The steps: a active, b a standby in sync; files written through the mount (fsync, O_SYNC, a
# large one) and held open by a process (fsops.py haholder); a planned switchover to b; a
# follows b; more writes; SIGKILL of b in the middle of a write stream; a takes over. After
# each change the held descriptors, paths and directories go on working (no ESTALE, no EIO),
# every byte written before reads back identical (through the mount with the client's cache
# dropped, and in the new active's served tree), and new writes work. The outage (from the
# switchover's start or the kill to the first write + fsync through a held descriptor that
# succeeded) is printed; the issue's 15 s target is for real hardware and is not checked here
# (under TCG everything runs 30 to 50 times slower).
#
# --ha-ttl: 10 s (CONF_HA_TTL). The active renews its lease every third of the TTL and fences
# itself when four fifths of it passed since it sent its last renewal that succeeded: with 10 s
# a renewal may be late by about 4.7 s before the active steps down. Under TCG a stall of a
# second or two (an exec, python's start, a burst of journal fsyncs, etcd's own fsyncs, all on
# two emulated CPUs) is ordinary; the lab's 3 s TTL (fenced after 1.4 s late) would flap here.
# The price is the outage after a SIGKILL, which is at least the TTL. The check "no leadership
# change but the three asked for" catches flaps.
HA_BR=swnfsha0 HA_NET=10.78.0 HA_SVC=10.78.0.100 HA_IF=ha0
HA_ETCD_URL=http://10.78.0.1:2379
HA_TTL=${CONF_HA_TTL:-10}
# The mount: NFSv3 over TCP, hard (a hard mount waits out the failover; soft would return EIO),
# nolock (locks are not replicated yet), the ports from the portmapper on the service address
# (every node answers it), and timeo=20,retrans=1. Those two set the kernel client's failover:
# the back-off between its attempts to reconnect grows from 3 s up to its largest RPC timeout,
# timeo * (retrans + 1) (2 s * 2 = 4 s here; 60 s * 3 = 180 s with the defaults for TCP,
# timeo=600,retrans=2), and a request it got no answer to is sent again (on a new connection:
# NFS clients disconnect to retry) after timeo. Measured here, from the kill to the first answer:
# 38 s with timeo=50,retrans=2 (one run), 13.5 to 22 s with timeo=20,retrans=1 (9 to 12 s of
# which until the new active served).
HA_OPTS=${CONF_HA_MOUNT_OPTS:-vers=3,proto=tcp,hard,timeo=20,retrans=1,nolock}
HA_UP='' HA_ETCD_PID='' HA_HOLDER=''
declare -A HA_PID=()

ha_ns() { echo "swnfs-ha-$1"; }

ha_setup_network() {
    ip link add $HA_BR type bridge || return 1
    ip addr add $HA_NET.1/24 dev $HA_BR && ip link set $HA_BR up || return 1
    local n i=11 ns
    for n in a b; do
        ns=$(ha_ns $n)
        ip netns add "$ns" || return 1
        ip link add "swnfsha-$n" type veth peer name $HA_IF netns "$ns" || return 1
        ip link set "swnfsha-$n" master $HA_BR up || return 1
        ip -n "$ns" addr add "$HA_NET.$i/24" dev $HA_IF || return 1
        ip -n "$ns" link set $HA_IF up && ip -n "$ns" link set lo up || return 1
        i=$((i + 1))
    done
}

ha_start_etcd() {
    local peer=http://127.0.0.1:2380 i
    etcd --name ha --data-dir "$HW/etcd" --listen-client-urls $HA_ETCD_URL --advertise-client-urls $HA_ETCD_URL \
        --listen-peer-urls $peer --initial-advertise-peer-urls $peer --initial-cluster "ha=$peer" \
        --initial-cluster-state new --heartbeat-interval 500 --election-timeout 5000 --log-level warn \
        >>"$OUT/etcd.log" 2>&1 &
    HA_ETCD_PID=$!
    for i in $(seq 1 600); do
        "$BIN" ha status --ha-etcd $HA_ETCD_URL >/dev/null 2>&1 && return 0
        kill -0 $HA_ETCD_PID 2>/dev/null || { note "etcd exited: $(tail -n 3 "$OUT/etcd.log")"; return 1; }
        sleep 0.1
    done
    return 1
}

# Starts node $1 in its namespace (the pid in HA_PID is the server's: ip netns exec and the shell
# exec it). --max-journal-mib 64: journal segments of 8 MiB, not 64 (each is preallocated, and
# the export's ext4 image lies on the guest's /tmp, a tmpfs of half its memory).
ha_start_node() {
    local n=$1 d=$HD/$1
    mkdir -p "$d/export" "$d/state" "$d/durable"
    # shellcheck disable=SC2016 # the inner shell expands $1 and $2
    ip netns exec "$(ha_ns "$n")" sh -c \
        'mount --bind "$1" "$2" && mkdir -p /run/swiftnfs && mount -t tmpfs ha /run/swiftnfs && shift 2 && exec "$@"' sh \
        "$d/export" "$HA_EXPORT" "$BIN" serve --exports "$HW/exports" --state-dir "$d/state" --durable-dir "$d/durable" \
        --portmap-port 111 --rpcbind-socket "" --lock-grace-seconds 2 --log-level "$LOGLEVEL" --max-journal-mib 64 \
        --ha-etcd $HA_ETCD_URL --ha-name "$n" --ha-address "$HA_SVC/24" --ha-interface $HA_IF --ha-ttl "$HA_TTL" \
        >>"$OUT/ha-$n.log" 2>&1 &
    HA_PID[$n]=$!
}

ha_status() { timeout 30 "$BIN" status --state-dir "$HD/$1/state" 2>&1; }

# The nodes whose ha0 holds the service address.
ha_holders() {
    local n out=
    for n in a b; do
        ip -n "$(ha_ns $n)" -o addr show dev $HA_IF 2>/dev/null | grep -q " $HA_SVC/" && out="$out$n"
    done
    echo "$out"
}

# Waits up to $2 seconds until exactly node $1 holds the address.
ha_await_holder() {
    local end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt $end ]; do
        [ "$(ha_holders)" = "$1" ] && return 0
        sleep 0.2
    done
    return 1
}

# Waits up to $3 seconds until active $1 reports standby $2 in sync and named in the sync
# record (only then may it take over).
ha_await_in_sync() {
    local end=$(($(date +%s) + $3)) status
    while [ "$(date +%s)" -lt $end ]; do
        status=$(ha_status "$1")
        echo "$status" | grep -q "standby $2: in sync" && echo "$status" | grep -q "sync record: $1, sync standby $2" && return 0
        sleep 0.5
    done
    return 1
}

ha_teardown() {
    [ -z "$HA_HOLDER" ] || { kill -KILL "$HA_HOLDER" 2>/dev/null; wait "$HA_HOLDER" 2>/dev/null; HA_HOLDER=; }
    mountpoint -q "$MNT" && umount -f -l "$MNT" 2>/dev/null
    local n
    for n in "${!HA_PID[@]}"; do kill -KILL "${HA_PID[$n]}" 2>/dev/null; done
    for n in "${!HA_PID[@]}"; do wait "${HA_PID[$n]}" 2>/dev/null; done
    HA_PID=()
    [ -z "$HA_ETCD_PID" ] || { kill -KILL "$HA_ETCD_PID" 2>/dev/null; wait "$HA_ETCD_PID" 2>/dev/null; }
    HA_ETCD_PID=
    for n in a b; do ip netns del "$(ha_ns $n)" 2>/dev/null; ip link del "swnfsha-$n" 2>/dev/null; done
    ip link del $HA_BR 2>/dev/null
    HA_UP=
}

# The checksum of every file the checks wrote: "NAME SUM" lines, for the files named in $HW/sums.
# $1: the directory (the mount, or a node's export).
ha_sums() {
    local names
    # (No process substitution: the guest has no /dev/fd.)
    cut -d' ' -f3 "$HW/sums" >"$HW/names"
    mapfile -t names <"$HW/names"
    (cd "$1/ha" && sha256sum "${names[@]}" 2>&1)
}

# Every byte written so far reads back identical through the mount (the client's cache dropped
# first) and in node $2's served tree. $1: after what.
ha_check_data() {
    local what=$1 n=$2 out
    sync; echo 3 >/proc/sys/vm/drop_caches
    if out=$(ha_sums "$MNT" | diff "$HW/sums" - 2>&1); then
        pass ha "$(wc -l <"$HW/sums") files written before $what read back identical through the mount"
    else failc ha "the files written before $what read back identical through the mount" "$(echo "$out" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"; fi
    if out=$(ha_sums "$HD/$n/export" | diff "$HW/sums" - 2>&1); then
        pass ha "and they are node $n's served tree"
    else failc ha "the files written before $what are node $n's served tree" "$(echo "$out" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"; fi
}

# Writes $2 MiB of random data to the mount as $1 (dd $3: conv=fsync or oflag=sync); its sum is
# added to $HW/sums.
ha_write() {
    local name=$1 mib=$2 flags=$3 out
    head -c $((mib << 20)) /dev/urandom >"$HW/src"
    if out=$(dd if="$HW/src" of="$MNT/ha/$name" bs=1M "$flags" 2>&1); then
        (cd "$HW" && sha256sum src | sed "s/ src\$/ $name/") >>"$HW/sums"
        return 0
    fi
    failc ha "write $name ($mib MiB, $flags)" "$(echo "$out" | tail -n 1)"
    return 1
}

# Seconds from $1 (date +%s.%N) to when node $2 last logged that it serves as the active (the
# log's timestamps are whole seconds).
ha_serving_after() {
    local at
    at=$(grep ' ha\.serving$' "$OUT/ha-$2.log" | tail -n 1 | cut -d' ' -f1)
    [ -n "$at" ] && at=$(date -d "$at" +%s 2>/dev/null) && awk -v a="$1" -v b="$at" 'BEGIN { printf "%.0f", b - a }'
}

# The held process's round $1 began at $2 (the switchover's start or the kill), node $4 takes
# over: the outage and the checks. $3: what happened.
ha_round() {
    local r=$1 t0=$2 what=$3 n=$4 i out
    echo "$t0" >"$HW/ctl/go.$r.tmp" && mv "$HW/ctl/go.$r.tmp" "$HW/ctl/go.$r"
    for i in $(seq 1 3000); do
        [ -e "$HW/ctl/done.$r" ] || ! kill -0 "$HA_HOLDER" 2>/dev/null && break
        sleep 0.2
    done
    if [ ! -e "$HW/ctl/done.$r" ]; then
        if kill -0 "$HA_HOLDER" 2>/dev/null; then out="no answer within 600 s"; else out="the holding process ended"; fi
        failc ha "held descriptors after $what" "$out: $(tail -n 2 "$OUT/ha-holder.out" | tr '\n' ' ')"
        return 1
    fi
    out=$(cat "$HW/ctl/outage.$r" 2>/dev/null)
    echo "OUTAGE ha $what: ${out}s to the first write + fsync through a held descriptor; node $n served after about $(ha_serving_after "$t0" "$n")s" | tee -a "$RESULTS"
    HA_OUTAGE[$r]=$out
    out=$(cat "$HW/ctl/done.$r")
    if [ -z "$out" ]; then pass ha "held descriptors, paths and directories work after $what (${HA_OUTAGE[$r]}s; no ESTALE, no EIO)"
    else failc ha "held descriptors, paths and directories work after $what" "$out"; fi
}

ha_new_writes() { # $1: after what, $2: the new file's suffix
    if ha_write "new-after-$2" 2 conv=fsync && [ "$(ha_sums "$MNT" | grep " new-after-$2\$")" = "$(grep " new-after-$2\$" "$HW/sums")" ]; then
        pass ha "a new file written and fsynced after $1"
    else failc ha "a new file written and fsynced after $1" "wrong data read back"; fi
}

run_ha() {
    local v=ha t0 out
    HW="$W/ha" HD="$EXP/ha" HA_EXPORT="$W/ha/export"
    declare -g -A HA_OUTAGE=()
    mkdir -p "$HW/export" "$HW/ctl" "$HD" "$MNT"
    : >"$HW/sums"
    echo "$HA_EXPORT *(rw,no_root_squash,no_subtree_check)" >"$HW/exports"
    # shellcheck disable=SC2034 # harness.sh's cleanup reads it
    HA_UP=1
    # The export's ext4 image lies on a tmpfs: give back what earlier variants freed there.
    fstrim "$EXP" 2>/dev/null
    t0=$(now)
    if ! ha_setup_network; then failc $v "the bridge and two node namespaces" "could not be set up"; ha_teardown; return; fi
    if ! ha_start_etcd; then failc $v etcd "did not answer within 60 s (etcd.log)"; ha_teardown; return; fi
    ha_start_node a
    if ! ha_await_holder a 120; then failc $v "node a becomes the active" "holders after 120 s: '$(ha_holders)' (ha-a.log)"; ha_teardown; return; fi
    ha_start_node b
    if ha_await_in_sync a b 180; then pass $v "etcd, node a active and node b a standby in sync ($(elapsed "$t0")s)"
    else failc $v "node b a standby in sync" "$(ha_status a | tr '\n' ' ')"; ha_teardown; return; fi

    t0=$(now)
    if out=$(timeout 120 mount -t nfs -o "$HA_OPTS" "$HA_SVC:$HA_EXPORT" "$MNT" 2>&1); then
        pass $v "mount -o $HA_OPTS $HA_SVC:/export ($(elapsed "$t0")s)"
    else failc $v "mount -o $HA_OPTS $HA_SVC:/export" "$(echo "$out" | tail -n 1)"; ha_teardown; return; fi
    note "ha: $(grep " $MNT " /proc/mounts | cut -d' ' -f4)"
    mkdir -p "$MNT/ha"
    # Before the first change: a large file (fsync at the end), one written O_SYNC, and the
    # held process's files (written, fsynced, open).
    t0=$(now)
    ha_write big 16 conv=fsync && ha_write osync 1 oflag=sync && pass $v "16 MiB with fsync and 1 MiB O_SYNC written ($(elapsed "$t0")s)"
    python3 "$HERE/fsops.py" haholder "$MNT/ha/held" "$HW/ctl" >"$OUT/ha-holder.out" 2>&1 &
    HA_HOLDER=$!
    await_file "$HW/ctl/ready" || failc $v "a process holds files open on the mount" "$(tail -n 1 "$OUT/ha-holder.out")"

    # A planned switchover to b, once b holds everything (under TCG a standby may fall out of
    # sync for a while: the active waits a second for it at most, then answers alone).
    ha_await_in_sync a b 180 || failc $v "node b in sync before the switchover" "$(ha_status a | tr '\n' ' ')"
    t0=$(now)
    if out=$(timeout 120 "$BIN" ha switchover --ha-etcd $HA_ETCD_URL --to b --wait 60 2>&1) && ha_await_holder b 60; then
        pass $v "swiftnfsd ha switchover --to b ($(elapsed "$t0")s)"
    else failc $v "swiftnfsd ha switchover --to b" "$(echo "$out" | tail -n 1); holders '$(ha_holders)'"; fi
    ha_round 1 "$t0" "the switchover" b
    ha_check_data "the switchover" b
    ha_new_writes "the switchover" switchover
    # SIGKILL of the active (b) in the middle of a write stream, once a, stepped down, follows b
    # and holds everything b acknowledged; a takes over.
    if ha_await_in_sync b a 180; then pass $v "node a, stepped down, follows node b in sync"
    else failc $v "node a, stepped down, follows node b in sync" "$(ha_status b | tr '\n' ' ')"; fi
    head -c $((4 << 20)) /dev/urandom >"$HW/stream"
    (cd "$HW" && sha256sum stream) >>"$HW/sums"
    ( timeout -s KILL 600 dd if="$HW/stream" of="$MNT/ha/stream" bs=64k conv=fsync 2>"$HW/dd.err"; echo $? >"$HW/dd.rc" ) &
    local wpid=$!
    sleep 1
    t0=$(now)
    kill -KILL "${HA_PID[b]}"; wait "${HA_PID[b]}" 2>/dev/null; unset 'HA_PID[b]'
    note "ha: node b (the active) killed (SIGKILL) under a live mount, a write stream running"
    ha_round 2 "$t0" "SIGKILL of the active" a
    if ha_await_holder a 60; then pass $v "node a holds the service address after the SIGKILL of b"
    else failc $v "node a holds the service address after the SIGKILL of b" "holders '$(ha_holders)'"; fi
    wait $wpid
    if [ "$(cat "$HW/dd.rc" 2>/dev/null)" = 0 ]; then pass $v "a write stream (4 MiB, fsync) across the SIGKILL completes"
    else failc $v "a write stream across the SIGKILL completes" "dd: $(cat "$HW/dd.rc" 2>/dev/null) $(tail -n 1 "$HW/dd.err")"; fi
    ha_check_data "the SIGKILL" a
    ha_new_writes "the SIGKILL" kill
    touch "$HW/ctl/stop"
    if wait "$HA_HOLDER"; then pass $v "held descriptors closed without error"
    else failc $v "held descriptors closed without error" "$(tail -n 1 "$OUT/ha-holder.out")"; fi
    HA_HOLDER=

    # What the client's kernel said, and flaps: three takeovers (a, b at the switchover, a after
    # the kill), no more.
    out=$(dmesg 2>/dev/null | grep -iE 'nfs|rpc' | grep -iE 'stale|fileid|error|EIO' | tail -n 3)
    if [ -z "$out" ]; then pass $v "no NFS errors in the client's kernel log"
    else failc $v "no NFS errors in the client's kernel log" "$(echo "$out" | tr '\n' ' ')"; fi
    dmesg 2>/dev/null | grep -E 'nfs: server' | tail -n 6 | sed 's/^/harness: ha: client kernel: /' >&2
    local takeovers; takeovers=$(cat "$OUT"/ha-[ab].log | grep -c 'ha\.takeover$\|ha\.takeover ')
    if [ "$takeovers" = 3 ]; then pass $v "no leadership change but the three asked for (--ha-ttl $HA_TTL)"
    else failc $v "no leadership change but the three asked for (--ha-ttl $HA_TTL)" "$takeovers takeovers in the nodes' logs"; fi

    rm -rf "$MNT/ha" 2>/dev/null
    if out=$(do_umount "$MNT"); then pass $v umount; else failc $v umount "$out"; fi
    ha_teardown
}
