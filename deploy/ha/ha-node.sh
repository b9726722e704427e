# shellcheck shell=bash
# The high-availability part of deploy/server-init.sh, which sources this file when
# SWIFTNFS_HA_ETCD is set (a node of deploy/swiftnfs-ha.yaml, or by hand: deploy/ha/README.md).
# It keeps server-init.sh, which the single-server stack carries in its 16 KB of user data,
# small. Settings, with their defaults (saved with the others in /etc/swiftnfs/server-init.conf):
: "${SWIFTNFS_HA_NAME:=}"              # this node's name in the cluster (default: the short host name)
: "${SWIFTNFS_HA_ADDRESS:=}"           # the service address clients mount: IP or IP/PREFIX (/32 if none)
: "${SWIFTNFS_HA_INTERFACE:=}"         # where it goes (default: the interface of the default route)
: "${SWIFTNFS_HA_CLUSTER:=default}"    # the cluster's keys: /swiftnfs/CLUSTER in etcd
: "${SWIFTNFS_HA_TTL:=5}"              # seconds of the leadership lease (--ha-ttl)
: "${SWIFTNFS_HA_HOOK:=}"              # takeover hook: ec2 (ec2-takeover-hook.sh), an executable's path, or none
: "${SWIFTNFS_HA_EC2_REGION:=}"        # ec2 hook: the region (default: the instance's, from its metadata)
: "${SWIFTNFS_HA_EC2_ROUTE_TABLES:=}"  # ec2 hook: empty moves a secondary private IP; route table ids route an overlay IP
VARS+=" HA_ETCD HA_NAME HA_ADDRESS HA_INTERFACE HA_CLUSTER HA_TTL HA_HOOK HA_EC2_REGION HA_EC2_ROUTE_TABLES"

# ha_check: the packages, and the settings checked and completed, before anything else changes.
ha_check() {
    local pkgs=() v k
    command -v arping >/dev/null || pkgs+=(iputils-arping)  # swiftnfsd announces the address
    [ "$SWIFTNFS_HA_HOOK" != ec2 ] || command -v aws >/dev/null || pkgs+=(awscli)
    if [ ${#pkgs[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${pkgs[@]}"
        changed "installed ${pkgs[*]}"
    fi
    [ -n "$SWIFTNFS_HA_ADDRESS" ] || die "SWIFTNFS_HA_ETCD needs SWIFTNFS_HA_ADDRESS, the service address"
    case $SWIFTNFS_HA_ADDRESS in */*) ;; *) SWIFTNFS_HA_ADDRESS+=/32 ;; esac
    [ -n "$SWIFTNFS_HA_NAME" ] || SWIFTNFS_HA_NAME=$(hostname -s)
    if [ -z "$SWIFTNFS_HA_INTERFACE" ]; then
        SWIFTNFS_HA_INTERFACE=$(ip -o route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
        [ -n "$SWIFTNFS_HA_INTERFACE" ] || die "no default route to take the interface from: set SWIFTNFS_HA_INTERFACE"
    fi
    # The unit splits its variables at white space, and the hook's configuration is shell.
    for v in HA_ETCD HA_NAME HA_ADDRESS HA_INTERFACE HA_CLUSTER HA_TTL HA_HOOK; do
        k=SWIFTNFS_$v; [[ ${!k} != *[[:space:]]* ]] || die "$k must not contain white space"
    done
    [[ $SWIFTNFS_HA_TTL =~ ^[1-9][0-9]*$ ]] || die "SWIFTNFS_HA_TTL must be a whole number of seconds"
    [[ $SWIFTNFS_HA_EC2_REGION =~ ^[a-z0-9-]*$ ]] || die "SWIFTNFS_HA_EC2_REGION: not a region name"
    [[ $SWIFTNFS_HA_EC2_ROUTE_TABLES =~ ^(rtb-[0-9a-f]+( rtb-[0-9a-f]+)*)?$ ]] \
        || die "SWIFTNFS_HA_EC2_ROUTE_TABLES: route table ids (rtb-...) separated by spaces"
    case $SWIFTNFS_HA_HOOK in
        "" | ec2) ;;
        /*) [ -x "$SWIFTNFS_HA_HOOK" ] || die "SWIFTNFS_HA_HOOK: $SWIFTNFS_HA_HOOK is not executable" ;;
        *) die "SWIFTNFS_HA_HOOK must be ec2, an executable's absolute path, or empty" ;;
    esac
}

# ha_install: this file and the hook into $LIB, the hook's configuration, the unit's drop-in,
# and ha_args, the --ha-* options for /etc/default/swiftnfsd. Adds to `units` what it changed.
ha_install() {
    local hook=$SWIFTNFS_HA_HOOK region=$SWIFTNFS_HA_EC2_REGION src mode=secondary-ip
    # shellcheck disable=SC2154  # server-init.sh's: the installed swiftnfsd's `serve --help`
    grep -q -- --ha-etcd <<<"$serve_help" || die "this swiftnfsd has no --ha-etcd (older than HA): install a newer one"
    [ "$(readlink -f "$HA_SH")" = "$LIB/ha-node.sh" ] || put "$LIB/ha-node.sh" 0644 <"$HA_SH"
    if [ "$hook" = ec2 ]; then
        hook=$LIB/ec2-takeover-hook.sh
        src=$(dirname "$(readlink -f "$HA_SH")")/ec2-takeover-hook.sh
        [ -r "$src" ] || die "no ec2-takeover-hook.sh beside $HA_SH"
        [ "$(readlink -f "$src")" = "$hook" ] || put "$hook" 0755 <"$src"
        if [ -z "$region" ]; then
            region=$(imds placement/region) || die "set SWIFTNFS_HA_EC2_REGION (not on EC2: no region to default to)"
        fi
        [ -z "$SWIFTNFS_HA_EC2_ROUTE_TABLES" ] || mode=route
        put /etc/swiftnfs/ec2-takeover-hook.conf 0644 <<EOF
# Written by SwiftNFS server-init.sh (SWIFTNFS_HA_EC2_* in $CONF), for $hook.
SWIFTNFS_EC2_MODE=$mode
SWIFTNFS_EC2_REGION=$region
SWIFTNFS_EC2_ROUTE_TABLES='$SWIFTNFS_HA_EC2_ROUTE_TABLES'
EOF
    fi
    ha_args="--ha-etcd $SWIFTNFS_HA_ETCD --ha-name $SWIFTNFS_HA_NAME --ha-address $SWIFTNFS_HA_ADDRESS"
    ha_args+=" --ha-interface $SWIFTNFS_HA_INTERFACE --ha-cluster $SWIFTNFS_HA_CLUSTER --ha-ttl $SWIFTNFS_HA_TTL"
    ha_args+="${hook:+ --ha-takeover-hook $hook}"
    put "$HA_DROPIN" 0644 <<EOF
# Written by SwiftNFS server-init.sh for an HA node: swiftnfsd puts the service address on
# $SWIFTNFS_HA_INTERFACE with ip addr (CAP_NET_ADMIN, netlink) and announces it with arping
# (CAP_NET_RAW, AF_PACKET). systemd adds these to the unit's own lists.
[Service]
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
RestrictAddressFamilies=AF_PACKET
EOF
    units=$((units | PUT))
}
