#!/usr/bin/env bash
# SwiftNFS client setup for Debian/Ubuntu: EC2 user data (deploy/swiftnfs.yaml) or by hand.
# Installs nfs-common and rpcbind, fixes the ports on which the server calls this client back
# for locks, adds the share to /etc/fstab (so it is mounted at every boot) and mounts it.
# Running it again changes nothing. Settings (environment):
#   SWIFTNFS_SERVER         the server's address (required)
#   SWIFTNFS_EXPORT_PATH    the exported directory              (default /srv/nfs)
#   SWIFTNFS_MOUNT_POINT    where it appears on this host       (default /mnt/nfs)
#   SWIFTNFS_MOUNT_OPTIONS  see below                           (default defaults)
#   SWIFTNFS_LOCKD_PORT     the kernel's lock manager, TCP and UDP            (default 32768)
#   SWIFTNFS_STATD_PORT     rpc.statd, the status monitor, TCP and UDP        (default 32765)
#   SWIFTNFS_STATD_OUTGOING_PORT  the source port of its reboot notifications (default 32766)
#   SWIFTNFS_WAIT           seconds to wait for the server before mounting (default 900)
#   SWIFTNFS_MOUNT_NOW      0: only write the files             (default 1)
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The mount options: none. mount.nfs asks for NFSv4 first, SwiftNFS answers that it serves
# version 3 only (an RPC version mismatch), and the client mounts NFSv3 at once, with what the
# kernel defaults to:
#   proto=tcp,timeo=600,retrans=2  one TCP connection, 60 s before a retransmission, and a
#                "server not responding" message after 2.
#   hard         the default, and the one to keep: an operation the server does not answer
#                is retried until it does, never failed. A soft mount turns a server restart, a
#                reboot or a slow disk into EIO for whatever call was in flight: applications see
#                writes fail half-way, or worse, ignore the error and lose data. With hard, they
#                only wait; SwiftNFS's file handles survive the restart and its duplicate request
#                cache answers a retransmitted CREATE, RENAME or WRITE without running it twice.
#   locking      fcntl/lockf and flock locks (SQLite's too) go to the server's lock manager, so
#                every client sees them. The server calls back: the client's lockd when a lock
#                it waits for comes free, its rpc.statd after a server restart so that it
#                reclaims its locks. They have the fixed ports below, which the client security
#                group opens to the server, with the portmapper (111) that names them.
# In /etc/fstab the options field cannot be empty: `defaults`, and also _netdev (mount after the
# network is up) and nofail (the client still boots when the server is down; `mount -a -t nfs`
# later).
: "${SWIFTNFS_MOUNT_OPTIONS:=defaults}"
: "${SWIFTNFS_LOCKD_PORT:=32768}"
: "${SWIFTNFS_STATD_PORT:=32765}"
: "${SWIFTNFS_STATD_OUTGOING_PORT:=32766}"
: "${SWIFTNFS_SERVER:=}"
: "${SWIFTNFS_EXPORT_PATH:=/srv/nfs}"
: "${SWIFTNFS_MOUNT_POINT:=/mnt/nfs}"
: "${SWIFTNFS_WAIT:=900}"
: "${SWIFTNFS_MOUNT_NOW:=1}"

log() { printf 'client-init: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); log "changed: $*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# put FILE < CONTENT: write FILE (mode 0644) unless it holds CONTENT already; PUT=1 when it did.
put() {
    cat >"$work/new"; PUT=0
    if cmp -s "$work/new" "$1"; then return 0; fi
    mkdir -p "$(dirname "$1")"; install -m 0644 "$work/new" "$1"; PUT=1; changed "$1"
}

[ "$(id -u)" = 0 ] || die "run as root"
[ -n "$SWIFTNFS_SERVER" ] || die "set SWIFTNFS_SERVER to the server's address"
for port in "$SWIFTNFS_LOCKD_PORT" "$SWIFTNFS_STATD_PORT" "$SWIFTNFS_STATD_OUTGOING_PORT"; do
    if ! [[ $port =~ ^[1-9][0-9]{0,4}$ ]] || [ "$port" -gt 65535 ]; then die "not a port number: '$port'"; fi
done
[ "$SWIFTNFS_STATD_PORT" != "$SWIFTNFS_STATD_OUTGOING_PORT" ] || die "rpc.statd's two ports must differ"
src="$SWIFTNFS_SERVER:$SWIFTNFS_EXPORT_PATH"

# nfs-common: mount.nfs, rpc.statd, sm-notify; rpcbind: the portmapper the server asks.
if ! command -v mount.nfs >/dev/null || ! command -v rpcbind >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nfs-common rpcbind
    changed "installed nfs-common and rpcbind"
fi

# The ports of the lock callbacks. rpc.statd reads [statd]; sm-notify, which tells the servers
# at boot that this client restarted (so they drop its old locks), reads [sm-notify]; lockd gets
# [lockd] from rpc.statd, which mount.nfs starts before the first mount with locks, and the
# module options whenever the module loads. A lockd already running keeps its port until no
# NFS mount is left, or the next boot.
put /etc/nfs.conf.d/swiftnfs.conf <<CONF
# Written by client-init.sh (SwiftNFS): the fixed ports of the lock callbacks, which the
# client security group opens to the server.
[lockd]
port=$SWIFTNFS_LOCKD_PORT
udp-port=$SWIFTNFS_LOCKD_PORT
[statd]
port=$SWIFTNFS_STATD_PORT
outgoing-port=$SWIFTNFS_STATD_OUTGOING_PORT
[sm-notify]
outgoing-port=$SWIFTNFS_STATD_OUTGOING_PORT
CONF
if [ "$PUT" = 1 ] && [ -d /run/systemd/system ]; then systemctl try-restart rpc-statd.service; fi
if command -v nfsconf >/dev/null && [ "$(nfsconf --get statd port || true)" != "$SWIFTNFS_STATD_PORT" ]; then
    log "warning: this nfs-utils does not read /etc/nfs.conf.d: copy /etc/nfs.conf.d/swiftnfs.conf into /etc/nfs.conf"
fi
put /etc/modprobe.d/swiftnfs-lockd.conf <<CONF
# Written by client-init.sh (SwiftNFS): lockd's fixed ports, as in /etc/nfs.conf.d/swiftnfs.conf.
options lockd nlm_tcpport=$SWIFTNFS_LOCKD_PORT nlm_udpport=$SWIFTNFS_LOCKD_PORT
CONF

# rpcbind answers the server's questions for lockd's and statd's ports; nfs-client.target runs
# sm-notify at boot. The packages enable both; a host that serves SwiftNFS keeps rpcbind off,
# since swiftnfsd's portmapper stands in for it (on 111 and /run/rpcbind.sock).
if [ -d /run/systemd/system ]; then
    for unit in rpcbind.socket nfs-client.target; do
        if [ "$unit" = rpcbind.socket ] && systemctl is-enabled -q swiftnfsd.service 2>/dev/null; then continue; fi
        case $(systemctl is-enabled "$unit" 2>/dev/null || true) in
            enabled) ;;
            masked) log "$unit is masked: left as it is" ;;
            *) systemctl enable --now "$unit"; changed "enabled $unit" ;;
        esac
    done
fi

# /etc/fstab with our block replaced in place (or added at the end), and any other entry for
# the same mount point commented out.
[ -e /etc/fstab ] || : >/etc/fstab
awk -v b="# BEGIN swiftnfs (client-init.sh)" -v e="# END swiftnfs" -v m="$SWIFTNFS_MOUNT_POINT" \
    -v line="$src $SWIFTNFS_MOUNT_POINT nfs $SWIFTNFS_MOUNT_OPTIONS,_netdev,nofail 0 0" '
    $0 == b { skip = 1; print b; print line; done = 1; next }
    skip { if ($0 == e) { skip = 0; print e }; next }
    $1 !~ /^#/ && $2 == m { print "# disabled by swiftnfs: " $0; next }
    { print }
    END { if (!done) { print b; print line; print e } }' /etc/fstab >"$work/fstab"
put /etc/fstab <"$work/fstab"
if [ "$PUT" = 1 ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
[ -d "$SWIFTNFS_MOUNT_POINT" ] || { mkdir -p "$SWIFTNFS_MOUNT_POINT"; changed "created $SWIFTNFS_MOUNT_POINT"; }

if [ "$SWIFTNFS_MOUNT_NOW" = 1 ]; then
    if cur=$(findmnt -rn -o SOURCE --mountpoint "$SWIFTNFS_MOUNT_POINT"); then
        [ "$cur" = "$src" ] || die "$SWIFTNFS_MOUNT_POINT is mounted from $cur, not $src"
        log "ok: $src is mounted on $SWIFTNFS_MOUNT_POINT"
    else
        # On a new stack the server may still be installing: wait until MOUNT answers.
        i=0
        until rpcinfo -T tcp "$SWIFTNFS_SERVER" 100005 3 >/dev/null 2>&1; do
            [ "$i" -lt "$SWIFTNFS_WAIT" ] || die "no answer from $SWIFTNFS_SERVER (MOUNT v3, TCP) after ${SWIFTNFS_WAIT}s"
            [ "$i" = 0 ] && log "waiting for $SWIFTNFS_SERVER"
            sleep 5; i=$((i + 5))
        done
        mount "$SWIFTNFS_MOUNT_POINT"
        changed "mounted $src on $SWIFTNFS_MOUNT_POINT"
    fi
fi
log "done: $CHANGES changes"
