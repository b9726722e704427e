#!/bin/sh
# The takeover hook for EC2: `swiftnfsd serve ... --ha-takeover-hook /usr/local/lib/swiftnfs/ec2-takeover-hook.sh`.
# When this node becomes the active (SWIFTNFS_HA_ROLE=active), it moves the cluster's address
# to this node's network interface with the AWS CLI (Debian package awscli; instance-profile
# credentials), the way keepalived's notify scripts do:
#
#   secondary-ip  (both nodes in one subnet, so one AZ): the address is a secondary private IP,
#                 moved with `aws ec2 assign-private-ip-addresses --allow-reassignment`
#                 (EC2 takes it off the other node's interface in the same call)
#   route         (nodes in different AZs): an overlay address outside the VPC's CIDR, routed to
#                 the active's interface in each route table with `aws ec2 replace-route`
#                 (created if missing); the interfaces need source/destination checks off
#
# The built-in mover of swiftnfsd still puts the address on the interface inside the instance
# (--ha-address/--ha-interface) and announces it; this hook tells EC2's network where it is.
# On SWIFTNFS_HA_ROLE=standby it does nothing: the next active takes the address over.
#
# Configuration: environment, or the file $SWIFTNFS_EC2_CONFIG (default
# /etc/swiftnfs/ec2-takeover-hook.conf, shell variable assignments) when it exists:
#   SWIFTNFS_EC2_MODE          secondary-ip (default) or route
#   SWIFTNFS_EC2_ENI           this node's network interface id (default: asked of the
#                              instance metadata service, IMDSv2, for the interface with
#                              SWIFTNFS_EC2_MAC or the primary one)
#   SWIFTNFS_EC2_ROUTE_TABLES  route mode: the route table ids, space-separated
#   SWIFTNFS_EC2_REGION        default: the CLI's own (AWS_DEFAULT_REGION, its config)
#   SWIFTNFS_EC2_ENDPOINT_URL  an EC2 endpoint other than AWS's (tests use a local emulator)
# From swiftnfsd: SWIFTNFS_HA_ROLE, SWIFTNFS_HA_ADDRESS (IP/PREFIX), SWIFTNFS_HA_NAME,
# SWIFTNFS_HA_EPOCH, SWIFTNFS_HA_INTERFACE.
#
# Exit status 0 when the address was moved (or nothing was to be done); otherwise non-zero,
# with the reason on stderr, which swiftnfsd logs and shows in `swiftnfsd status`.
set -eu

CONFIG=${SWIFTNFS_EC2_CONFIG:-/etc/swiftnfs/ec2-takeover-hook.conf}
if [ -r "$CONFIG" ]; then
    # shellcheck disable=SC1090  # the operator's file, named at run time
    . "$CONFIG"
fi

ROLE=${SWIFTNFS_HA_ROLE:?SWIFTNFS_HA_ROLE not set: run by swiftnfsd --ha-takeover-hook}
ADDRESS=${SWIFTNFS_HA_ADDRESS:?SWIFTNFS_HA_ADDRESS not set}
IP=${ADDRESS%%/*}
MODE=${SWIFTNFS_EC2_MODE:-secondary-ip}

log() { echo "ec2-takeover-hook: $*" >&2; }

if [ "$ROLE" != active ]; then
    log "role $ROLE: nothing to do"
    exit 0
fi

aws_ec2() {
    set -- ec2 "$@" --output text
    if [ -n "${SWIFTNFS_EC2_REGION:-}" ]; then set -- "$@" --region "$SWIFTNFS_EC2_REGION"; fi
    if [ -n "${SWIFTNFS_EC2_ENDPOINT_URL:-}" ]; then set -- "$@" --endpoint-url "$SWIFTNFS_EC2_ENDPOINT_URL"; fi
    aws "$@"
}

# This node's interface: configured, or from the instance metadata (IMDSv2).
eni() {
    if [ -n "${SWIFTNFS_EC2_ENI:-}" ]; then echo "$SWIFTNFS_EC2_ENI"; return; fi
    imds=http://169.254.169.254/latest
    token=$(curl -fsS -m 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$imds/api/token") \
        || { log "no SWIFTNFS_EC2_ENI and no instance metadata service"; return 1; }
    mac=${SWIFTNFS_EC2_MAC:-$(curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/mac")}
    curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/network/interfaces/macs/$mac/interface-id"
}

ENI=$(eni)
case "$MODE" in
secondary-ip)
    aws_ec2 assign-private-ip-addresses --network-interface-id "$ENI" --private-ip-addresses "$IP" --allow-reassignment >/dev/null
    log "secondary private IP $IP assigned to $ENI (epoch ${SWIFTNFS_HA_EPOCH:-?}, node ${SWIFTNFS_HA_NAME:-?})"
    ;;
route)
    TABLES=${SWIFTNFS_EC2_ROUTE_TABLES:?route mode needs SWIFTNFS_EC2_ROUTE_TABLES}
    for table in $TABLES; do
        if ! aws_ec2 replace-route --route-table-id "$table" --destination-cidr-block "$IP/32" --network-interface-id "$ENI" >/dev/null 2>&1; then
            aws_ec2 create-route --route-table-id "$table" --destination-cidr-block "$IP/32" --network-interface-id "$ENI" >/dev/null
        fi
        log "route $IP/32 in $table now to $ENI (epoch ${SWIFTNFS_HA_EPOCH:-?}, node ${SWIFTNFS_HA_NAME:-?})"
    done
    ;;
*)
    log "unknown SWIFTNFS_EC2_MODE $MODE (secondary-ip or route)"
    exit 2
    ;;
esac
