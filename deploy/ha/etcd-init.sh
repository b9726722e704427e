#!/usr/bin/env bash
# One etcd member for SwiftNFS's high availability (deploy/swiftnfs-ha.yaml, deploy/ha/README.md),
# on Debian or Ubuntu, from the distribution's package etcd-server (etcd 3.4 or later: swiftnfsd
# talks to its v3 HTTP/JSON gateway). EC2 user data or by hand; running it again changes nothing.
#
# Settings (environment):
#   SWIFTNFS_ETCD_NAME      this member's name (default: the member whose address is this host's)
#   SWIFTNFS_ETCD_CLUSTER   every member as NAME=http://IP:2380, comma-separated (required)
#   SWIFTNFS_ETCD_STATE     new: the members start together (default); existing: this member
#                           joins a running cluster (README: replace an etcd member)
#   SWIFTNFS_ETCD_TOKEN     the cluster's token, the same on every member     (default swiftnfs)
#   SWIFTNFS_ETCD_WAIT      seconds to wait for a healthy cluster             (default 900)
#   SWIFTNFS_READY_URL      a CloudFormation wait condition to signal, SWIFTNFS_READY_ID the
#                           member's id there
#
# What it writes: /etc/swiftnfs/etcd.env (the member's ETCD_* settings) and the drop-in
# /etc/systemd/system/etcd.service.d/10-swiftnfs.conf that makes the package's etcd.service
# read it. The package's own /etc/default/etcd stays as it is. The member keeps its data in
# /var/lib/etcd/swiftnfs. Clients (swiftnfsd) use port 2379, the members each other on 2380:
# plain HTTP, so keep both to the stack's security groups.
set -Eeuo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
: "${SWIFTNFS_ETCD_NAME:=}"
: "${SWIFTNFS_ETCD_CLUSTER:=}"
: "${SWIFTNFS_ETCD_STATE:=new}"
: "${SWIFTNFS_ETCD_TOKEN:=swiftnfs}"
: "${SWIFTNFS_ETCD_WAIT:=900}"
ENV_FILE=/etc/swiftnfs/etcd.env
DROPIN=/etc/systemd/system/etcd.service.d/10-swiftnfs.conf

log() { printf 'etcd-init: %s\n' "$*" >&2; }
report() { # report SUCCESS|FAILURE REASON: to the CloudFormation wait condition, if any
    [ -n "${SWIFTNFS_READY_URL:-}" ] || return 0
    local body
    body=$(printf '{"Status":"%s","Reason":"%s","UniqueId":"%s","Data":"-"}' \
        "$1" "$(printf %s "$2" | tr -d '"\134' | head -c 400)" "${SWIFTNFS_READY_ID:-$SWIFTNFS_ETCD_NAME}")
    curl -fsS -m 30 --retry 3 -X PUT -H 'Content-Type:' --data-binary "$body" "$SWIFTNFS_READY_URL" >/dev/null \
        || log "could not signal CloudFormation"
}
die() { trap - ERR; log "error: $*"; report FAILURE "etcd member ${SWIFTNFS_ETCD_NAME:-?}: $*"; exit 1; }
trap 'die "command failed at line $LINENO"' ERR
CHANGES=0
# install_file DEST < CONTENT: write DEST (0644) unless it holds CONTENT; WROTE=1 when it did.
install_file() {
    local tmp; tmp=$(mktemp); cat >"$tmp"; WROTE=0
    if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 0; fi
    mkdir -p "$(dirname "$1")"; install -m 0644 "$tmp" "$1"; rm -f "$tmp"
    WROTE=1; CHANGES=$((CHANGES + 1)); log "changed: $1"
}

[ "$(id -u)" = 0 ] || die "run as root"
if [ -z "$SWIFTNFS_ETCD_NAME" ]; then  # the entry NAME=http://IP:2380 whose IP is one of ours
    for ip in $(ip -o -4 addr show | awk '{ sub("/.*", "", $4); print $4 }'); do
        SWIFTNFS_ETCD_NAME=$(tr , '\n' <<<"$SWIFTNFS_ETCD_CLUSTER" | sed -n "s|^\([^=]*\)=http://${ip//./\\.}:2380\$|\1|p")
        [ -z "$SWIFTNFS_ETCD_NAME" ] || break
    done
    [ -n "$SWIFTNFS_ETCD_NAME" ] || die "no member of SWIFTNFS_ETCD_CLUSTER has this host's address: set SWIFTNFS_ETCD_NAME"
fi
[[ $SWIFTNFS_ETCD_NAME =~ ^[A-Za-z0-9_-]+$ ]] || die "SWIFTNFS_ETCD_NAME: letters, digits, - and _ only"
case $SWIFTNFS_ETCD_STATE in new | existing) ;; *) die "SWIFTNFS_ETCD_STATE must be new or existing" ;; esac
# This member's peer URL, from its own entry in the cluster list: its address is the host there.
peer=""
IFS=, read -ra members <<<"$SWIFTNFS_ETCD_CLUSTER"
for m in "${members[@]}"; do
    [[ $m =~ ^[A-Za-z0-9_-]+=http://[0-9.]+:2380$ ]] || die "SWIFTNFS_ETCD_CLUSTER: '$m' is not NAME=http://IP:2380"
    [ "${m%%=*}" != "$SWIFTNFS_ETCD_NAME" ] || peer=${m#*=}
done
[ -n "$peer" ] || die "SWIFTNFS_ETCD_CLUSTER has no entry for $SWIFTNFS_ETCD_NAME"
address=${peer#http://}; address=${address%:2380}
clients=http://$address:2379  # and on loopback, for the health check below
[ "$address" = 127.0.0.1 ] || clients+=,http://127.0.0.1:2379

if ! command -v etcd >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends etcd-server curl
    CHANGES=$((CHANGES + 1)); log "changed: installed etcd-server"
fi

install_file "$ENV_FILE" <<EOF
# Written by SwiftNFS etcd-init.sh: this etcd member (read by etcd.service through $DROPIN).
ETCD_NAME=$SWIFTNFS_ETCD_NAME
ETCD_DATA_DIR=/var/lib/etcd/swiftnfs
ETCD_LISTEN_PEER_URLS=http://$address:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$address:2380
ETCD_LISTEN_CLIENT_URLS=$clients
ETCD_ADVERTISE_CLIENT_URLS=http://$address:2379
ETCD_INITIAL_CLUSTER=$SWIFTNFS_ETCD_CLUSTER
ETCD_INITIAL_CLUSTER_STATE=$SWIFTNFS_ETCD_STATE
ETCD_INITIAL_CLUSTER_TOKEN=$SWIFTNFS_ETCD_TOKEN
# The nodes rewrite their keys as leases renew and lags move: keep an hour of history, so the
# database stays far below its quota (2 GiB), where etcd would refuse every write.
ETCD_AUTO_COMPACTION_MODE=periodic
ETCD_AUTO_COMPACTION_RETENTION=1h
EOF
restart=$WROTE
install_file "$DROPIN" <<EOF
# Written by SwiftNFS etcd-init.sh: the member's settings, after the package's /etc/default/etcd.
[Service]
EnvironmentFile=$ENV_FILE
# A member of a new cluster reports ready once a quorum of its peers is up, which takes as long
# as the slowest of them takes to boot.
TimeoutStartSec=infinity
EOF
restart=$((restart | WROTE))

if [ ! -d /run/systemd/system ]; then
    log "systemd is not running here: $ENV_FILE written, etcd not started"
    log "done: $CHANGES changes"
    exit 0
fi
systemctl daemon-reload
systemctl -q is-enabled etcd.service || { systemctl -q enable etcd.service; CHANGES=$((CHANGES + 1)); }
if [ "$restart" = 1 ] || ! systemctl -q is-active etcd.service; then
    # Stopped first and for sure: the package starts an etcd of its own at install, whose health
    # the check below must not take for this cluster's. The start is not waited for here: a
    # member of a new cluster is ready only with its peers, and the check below waits for them.
    systemctl stop etcd.service
    systemctl start --no-block etcd.service
    CHANGES=$((CHANGES + 1)); log "changed: (re)started etcd"
fi
i=0
until curl -fsS -m 5 http://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"'; do
    [ "$i" -lt "$SWIFTNFS_ETCD_WAIT" ] || die "the cluster is not healthy after ${SWIFTNFS_ETCD_WAIT}s: journalctl -u etcd"
    [ "$i" = 0 ] && log "waiting for the cluster (its peers: $SWIFTNFS_ETCD_CLUSTER)"
    sleep 5; i=$((i + 5))
done
log "ok: etcd member $SWIFTNFS_ETCD_NAME is healthy, clients at http://$address:2379"
report SUCCESS "etcd member $SWIFTNFS_ETCD_NAME is healthy"
log "done: $CHANGES changes"
