#!/usr/bin/env bash
# SwiftNFS client setup for Debian/Ubuntu: EC2 user data (deploy/swiftnfs.yaml) or by hand.
# Installs nfs-common, adds the share to /etc/fstab (so it is mounted at every boot) and mounts
# it. Running it again changes nothing. Settings (environment):
#   SWIFTNFS_SERVER         the server's address (required)
#   SWIFTNFS_EXPORT_PATH    the exported directory              (default /srv/nfs)
#   SWIFTNFS_MOUNT_POINT    where it appears on this host       (default /mnt/nfs)
#   SWIFTNFS_MOUNT_OPTIONS  see below
#   SWIFTNFS_WAIT           seconds to wait for the server before mounting (default 900)
#   SWIFTNFS_MOUNT_NOW      0: only write /etc/fstab            (default 1)
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The mount options:
#   vers=3       SwiftNFS speaks NFSv3 only; without it the client first tries v4 and falls back.
#   proto=tcp    TCP for NFS and MOUNT: one connection, no IP fragment reassembly.
#   hard         an operation the server does not answer is retried until it does, never
#                failed. A soft mount turns a server restart, a reboot or a slow disk into EIO
#                for whatever call was in flight: applications see writes fail half-way, or
#                worse, ignore the error and lose data. With hard, they only wait; SwiftNFS's
#                file handles survive the restart and its duplicate request cache answers a
#                retransmitted CREATE, RENAME or WRITE without running it twice.
#   timeo=600,retrans=2  the TCP defaults, written out: 60 s before a retransmission, and a
#                "server not responding" message after 2.
#   nolock       SwiftNFS has no NLM (lock manager) yet: without nolock, fcntl/flock locks fail
#                with ENOLCK. With it they are local to each client, not seen by the others.
# In /etc/fstab also: _netdev (mount after the network is up) and nofail (the client still
# boots when the server is down; `mount -a -t nfs` later).
: "${SWIFTNFS_MOUNT_OPTIONS:=vers=3,proto=tcp,hard,timeo=600,retrans=2,nolock}"
: "${SWIFTNFS_SERVER:=}"
: "${SWIFTNFS_EXPORT_PATH:=/srv/nfs}"
: "${SWIFTNFS_MOUNT_POINT:=/mnt/nfs}"
: "${SWIFTNFS_WAIT:=900}"
: "${SWIFTNFS_MOUNT_NOW:=1}"

log() { printf 'client-init: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); log "changed: $*"; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -n "$SWIFTNFS_SERVER" ] || die "set SWIFTNFS_SERVER to the server's address"
src="$SWIFTNFS_SERVER:$SWIFTNFS_EXPORT_PATH"

if ! command -v mount.nfs >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nfs-common
    changed "installed nfs-common"
fi

# /etc/fstab with our block replaced in place (or added at the end), and any other entry for
# the same mount point commented out.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
[ -e /etc/fstab ] || : >/etc/fstab
awk -v b="# BEGIN swiftnfs (client-init.sh)" -v e="# END swiftnfs" -v m="$SWIFTNFS_MOUNT_POINT" \
    -v line="$src $SWIFTNFS_MOUNT_POINT nfs $SWIFTNFS_MOUNT_OPTIONS,_netdev,nofail 0 0" '
    $0 == b { skip = 1; print b; print line; done = 1; next }
    skip { if ($0 == e) { skip = 0; print e }; next }
    $1 !~ /^#/ && $2 == m { print "# disabled by swiftnfs: " $0; next }
    { print }
    END { if (!done) { print b; print line; print e } }' /etc/fstab >"$tmp"
if ! cmp -s "$tmp" /etc/fstab; then
    install -m 0644 "$tmp" /etc/fstab
    changed "/etc/fstab"
    if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
fi
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
