# shellcheck shell=bash
# The locking variant, sourced by harness.sh: file locking through the stock mount command with
# no options, between two hosts as the deployment has them.
#
# The server host is a network namespace (10.77.0.2) with a mount namespace of its own (its own
# /run, where the embedded portmapper serves rpcbind's local socket), kept by a holder process;
# the client host is the guest's root namespace (10.77.0.1) with its own rpcbind and rpc.statd.
# A veth pair joins them. (Client and server sharing one portmapper is not the deployment:
# there the client's lockd takes over the NLM registration, with every server.)
SRV_ADDR=10.77.0.2 CLI_ADDR=10.77.0.1 SRV_NS=

# (-r: the holder's root, the guest's chroot, not the root of the mount namespace.)
on_server() { nsenter -t "$SRV_NS" -m -n -r -w -- "$@"; }

setup_two_hosts() {
    ip netns add swnfs-srv || return 1
    ip link add swnfs0 type veth peer name swnfs1 || return 1
    ip link set swnfs1 netns swnfs-srv || return 1
    { ip addr add "$CLI_ADDR/24" dev swnfs0 && ip link set swnfs0 up; } || return 1
    ip netns exec swnfs-srv sh -c "ip link set lo up && ip addr add $SRV_ADDR/24 dev swnfs1 && ip link set swnfs1 up" || return 1
    ip netns exec swnfs-srv unshare -m --propagation private sh -c \
        'mount -t tmpfs srv-run /run && echo $$ >"$1" && exec sleep 1000000' sh "$W/srv-ns.pid" &
    local i
    for i in $(seq 1 100); do [ -s "$W/srv-ns.pid" ] && break; sleep 0.1; done
    SRV_NS=$(cat "$W/srv-ns.pid" 2>/dev/null)
    [ -n "$SRV_NS" ] || return 1
    # The client host's own rpcbind and status monitor.
    mkdir -p /run/rpcbind
    pgrep -x rpcbind >/dev/null || rpcbind -w || return 1
    pgrep -x rpc.statd >/dev/null || rpc.statd --no-notify || return 1
}

teardown_two_hosts() {
    mountpoint -q "$MNT" && umount -f -l "$MNT" 2>/dev/null
    mountpoint -q "$MNT-docker" && umount -f -l "$MNT-docker" 2>/dev/null
    [ -n "$SRV_NS" ] && on_server umount -f -l "$MNT-self" 2>/dev/null
    stop_server
    [ -n "$SRV_NS" ] && kill "$SRV_NS" 2>/dev/null
    ip link del swnfs0 2>/dev/null
    ip netns del swnfs-srv 2>/dev/null
    SRV_NS=
}

srv_listening() { on_server bash -c 'exec 3<>/dev/tcp/127.0.0.1/2049 && exec 4<>/dev/tcp/127.0.0.1/111' 2>/dev/null; }

start_srv_server() {
    # nsenter itself, not a shell function in the background (a subshell): $! is the server.
    nsenter -t "$SRV_NS" -m -n -r -w -- "$BIN" serve --exports "$W/exports" --state-dir "$STATE" --log-level "$LOGLEVEL" \
        --lock-grace-seconds "${CONF_LOCK_GRACE:-8}" >>"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 600); do
        srv_listening && kill -0 "$SERVER_PID" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { note "the server exited: $(tail -n 3 "$OUT/server.log")"; return 1; }
        sleep 0.1
    done
    return 1
}

# Waits (up to 60 s) for a file to exist.
await_file() { local i; for i in $(seq 1 600); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }

# A lock held by `fsops.py lockhold` on the client; its control directory is $1.
hold_lock() { # ctl file
    rm -rf "$1"; mkdir -p "$1"
    python3 "$HERE/fsops.py" lockhold "$2" "$1" >"$1.out" 2>&1 &
    HOLDER=$!
    await_file "$1/locked"
}

refused() { case "$1" in EAGAIN|EACCES) return 0 ;; *) return 1 ;; esac; }

run_locking() {
    local v=locking t0 out rc opts f
    if ! setup_two_hosts; then
        failc $v "two hosts" "network namespace, veth pair, rpcbind or rpc.statd could not be set up"
        teardown_two_hosts; return
    fi
    start_srv_server || { failc $v server "did not start on the server host"; teardown_two_hosts; return; }
    # The deployment's exact line: the client tries NFSv4 first and falls back to v3.
    t0=$(now)
    if out=$(timeout 120 mount "$SRV_ADDR:$RW" "$MNT" 2>&1); then
        pass $v "mount $SRV_ADDR:/export /mnt with no options ($(elapsed "$t0")s)"
    else
        failc $v "mount SERVER:/export /mnt with no options" "$(echo "$out" | tail -n 1) (after $(elapsed "$t0")s)"
        teardown_two_hosts; return
    fi
    opts=$(grep " $MNT " /proc/mounts | cut -d' ' -f4)
    case ",$opts," in
        *,nolock,*) failc $v "the plain mount locks through the server" "mounted with nolock: $opts" ;;
        *,vers=3,*) pass $v "the plain mount is NFSv3 with locking ($opts)" ;;
        *) failc $v "the plain mount is NFSv3 with locking" "$opts" ;;
    esac
    f="$MNT/lock.$$"
    echo data >"$f"
    t0=$(now)
    if out=$(timeout 60 flock -n "$f" true 2>&1); then pass $v "flock(1) -n ($(elapsed "$t0")s)"
    else failc $v "flock(1) -n" "$out (after $(elapsed "$t0")s)"; fi
    out=$(timeout 60 python3 "$HERE/fsops.py" trylock "$f" fcntl 2>&1)
    if [ "$out" = granted ]; then pass $v "fcntl F_SETLK"; else failc $v "fcntl F_SETLK" "$out"; fi

    # Two processes: the second is refused while the first holds; a blocked waiter is granted
    # when the holder lets go, within the 30 s after which the client would ask again by itself:
    # the server's GRANTED call woke it.
    if hold_lock "$W/ctl1" "$f"; then
        timeout 60 flock -n "$f" true 2>/dev/null; rc=$?
        if [ $rc = 1 ]; then pass $v "flock -n is refused while another process holds the lock"
        else failc $v "flock -n is refused while another process holds the lock" "exit $rc"; fi
        out=$(timeout 60 python3 "$HERE/fsops.py" trylock "$f" fcntl 2>&1)
        if refused "$out"; then pass $v "F_SETLK is refused ($out) while another process holds the lock"
        else failc $v "F_SETLK is refused while another process holds the lock" "$out"; fi
        ( timeout 120 flock "$f" true; echo "$? $(now)" >"$W/waiter" ) &
        local wpid=$!
        sleep 3
        local released; released=$(now)
        touch "$W/ctl1/release"
        wait "$HOLDER"; wait $wpid
        read -r rc t0 <"$W/waiter"
        local after; after=$(awk -v a="$released" -v b="$t0" 'BEGIN { printf "%.1f", b - a }')
        if [ "$rc" = 0 ] && awk -v d="$after" 'BEGIN { exit !(d < 25) }'; then
            pass $v "a blocked waiter is granted ${after}s after the holder releases"
        else failc $v "a blocked waiter is granted when the holder releases" "exit $rc, ${after}s after the release"; fi
    else
        failc $v "a process holds an fcntl lock" "$(cat "$W/ctl1.out")"
    fi

    # Connectathon-style byte-range cases (F_GETLK, F_SETLK; split, downgrade, past 4 GiB).
    if out=$(timeout 300 python3 "$HERE/fsops.py" rangelocks "$MNT/ranges.$$" 2>&1); then
        pass $v "byte-range locks between two processes ($(echo "$out" | grep -c '^ok ') cases)"
    else failc $v "byte-range locks between two processes" "$(echo "$out" | tail -n 2 | tr '\n' ' ')"; fi
    rm -f "$MNT/ranges.$$"

    # SQLite (fcntl locks on the database file), two writers at once.
    python3 "$HERE/fsops.py" sqlite "$MNT/db.$$" 40 >"$W/sq1" 2>&1 &
    local s1=$!
    python3 "$HERE/fsops.py" sqlite "$MNT/db.$$" 40 >"$W/sq2" 2>&1
    wait $s1
    out=$(python3 "$HERE/fsops.py" sqlite "$MNT/db.$$" 0 2>&1)
    if [ "$out" = 80 ]; then pass $v "SQLite with two writers at once on the mount"
    else failc $v "SQLite with two writers at once on the mount" "$out; $(tail -n 1 "$W/sq1"); $(tail -n 1 "$W/sq2")"; fi

    # A Docker volume of the local driver with type=nfs: mount(2) itself, with addr=.
    mkdir -p "$MNT-docker"
    out=$(timeout 120 python3 "$HERE/fsops.py" mount2 ":$RW" "$MNT-docker" nfs "addr=$SRV_ADDR,rw" 2>&1)
    if [ "$out" = ok ]; then
        pass $v "mount(2) as Docker's local driver does (device :/export, o=addr=SERVER,rw)"
        out=$(timeout 60 python3 "$HERE/fsops.py" trylock "$MNT-docker/lock.$$" fcntl 2>&1)
        if [ "$out" = granted ]; then pass $v "fcntl F_SETLK on the Docker-style mount"
        else failc $v "fcntl F_SETLK on the Docker-style mount" "$out"; fi
        umount "$MNT-docker" 2>/dev/null || umount -l "$MNT-docker"
    else
        failc $v "mount(2) as Docker's local driver does (device :/export, o=addr=SERVER,rw)" "$out"
    fi

    # The server's own host mounts the export with no options, and sees the client's locks.
    mkdir -p "$MNT-self"
    t0=$(now)
    # By its network address (not 127.0.0.1): the server must still know the client as itself.
    if out=$(on_server timeout 120 mount "$SRV_ADDR:$RW" "$MNT-self" 2>&1); then
        pass $v "the server host mounts its own export with no options ($(elapsed "$t0")s)"
        out=$(on_server timeout 60 python3 "$HERE/fsops.py" trylock "$MNT-self/self.$$" fcntl 2>&1)
        if [ "$out" = granted ]; then pass $v "fcntl F_SETLK on the server host's own mount"
        else failc $v "fcntl F_SETLK on the server host's own mount" "$out"; fi
    else
        failc $v "the server host mounts its own export with no options" "$(echo "$out" | tail -n 1) (after $(elapsed "$t0")s)"
    fi
    if hold_lock "$W/ctl2" "$f"; then
        out=$(on_server timeout 60 python3 "$HERE/fsops.py" trylock "$MNT-self/lock.$$" fcntl 2>&1)
        if refused "$out"; then pass $v "a lock the client holds conflicts on the other host ($out)"
        else failc $v "a lock the client holds conflicts on the other host" "$out"; fi
        # SIGKILL and restart: the server notifies the client, which reclaims its lock in the
        # grace period; afterwards it still conflicts.
        kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
        if srv_listening; then failc $v "server SIGKILL" "something still listens on the server host"; fi
        t0=$(now)
        start_srv_server || failc $v "server restart" "did not start again"
        out=$(on_server timeout 120 python3 "$HERE/fsops.py" trylock "$MNT-self/lock.$$" fcntl 2>&1)
        if refused "$out"; then pass $v "a lock held across a server SIGKILL and restart is reclaimed and still conflicts ($(elapsed "$t0")s)"
        else failc $v "a lock held across a server SIGKILL and restart is reclaimed and still conflicts" "$out after $(elapsed "$t0")s"; fi
        # A waiter on the server host, granted (GRANTED to the host's own kernel lockd, which
        # registered through the server's /run/rpcbind.sock) when the client releases.
        ( on_server timeout 120 flock "$MNT-self/lock.$$" true; echo "$? $(now)" >"$W/self-waiter" ) &
        local swpid=$!
        sleep 3
        local freed; freed=$(now)
        touch "$W/ctl2/release"
        wait "$HOLDER"; wait $swpid
        read -r rc t0 <"$W/self-waiter"
        after=$(awk -v a="$freed" -v b="$t0" 'BEGIN { printf "%.1f", b - a }')
        if [ "$rc" = 0 ] && awk -v d="$after" 'BEGIN { exit !(d < 25) }'; then
            pass $v "a waiter on the server host is granted ${after}s after the client releases"
        else failc $v "a waiter on the server host is granted when the client releases" "exit $rc, ${after}s after the release"; fi
    else
        failc $v "a process holds an fcntl lock" "$(cat "$W/ctl2.out")"
    fi
    if [ "$(cat "$f" 2>&1)" = data ]; then pass $v "I/O on the mount after the locking"
    else failc $v "I/O on the mount after the locking" "read '$(cat "$f" 2>&1)'"; fi
    rm -f "$f" "$MNT/db.$$"
    on_server umount "$MNT-self" 2>/dev/null
    if out=$(do_umount "$MNT"); then pass $v umount; else failc $v umount "$out"; fi
    teardown_two_hosts
}
