#!/usr/bin/env bash
# SwiftNFS server setup for Debian/Ubuntu: EC2 user data (deploy/swiftnfs.yaml) or by hand.
#   server-init.sh            set up everything; running it again changes nothing
#   server-init.sh --storage  format a blank instance store only (swiftnfs-storage.service, each boot)
# SWIFTNFS_STORAGE=none skips the disks (instance store, EBS): a host that already has its data
# where /etc/exports says, e.g. one migrating from nfs-kernel-server.
# SWIFTNFS_HA_ETCD makes it a node of a high-availability pair: deploy/ha/ha-node.sh, deploy/ha/README.md.
# Settings are SWIFTNFS_* variables (below, with their defaults). The environment wins over
# /etc/swiftnfs/server-init.conf, which keeps the values of the last run. See deploy/README.md.
set -Eeuo pipefail
umask 022
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

CONF=/etc/swiftnfs/server-init.conf
LIB=/usr/local/lib/swiftnfs
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
BIN=/usr/local/sbin/swiftnfsd
SRV_LABEL=swiftnfs-srv
HA_DROPIN=/etc/systemd/system/swiftnfsd.service.d/20-ha.conf
DUR_LABEL=swiftnfs-dur
VARS="STORAGE SERVED_DIR DURABLE_DIR STATE_DIR INSTANCE_STORE_DEVICE INSTANCE_STORE_WIPE DURABLE_DEVICE
DEVICE_WAIT FS_TYPE SERVED_OWNER SERVED_MODE EXPORT_CLIENTS EXPORT_OPTIONS WRITE_EXPORTS
RELEASE_URL RELEASE_SHA256 BINARY SOURCE SOURCE_REF SWIFT_TOOLCHAIN_URL ARGS
DISABLE_CONFLICTS REGISTER_RPCBIND"

log() { printf 'server-init: %s\n' "$*" >&2; }
CHANGES=0
changed() { CHANGES=$((CHANGES + 1)); log "changed: $*"; }
signal() { # CloudFormation wait condition (SWIFTNFS_READY_URL), if any
    [ -n "${SWIFTNFS_READY_URL:-}" ] || return 0
    curl -fsS -m 30 --retry 3 -X PUT -H 'Content-Type:' --data-binary \
        "{\"Status\":\"$1\",\"Reason\":\"$(printf %s "$2" | tr -d '"\134' | head -c 400)\",\"UniqueId\":\"${SWIFTNFS_READY_ID:-server}\",\"Data\":\"-\"}" \
        "$SWIFTNFS_READY_URL" >/dev/null || log "could not signal CloudFormation"
}
die() { trap - ERR; log "error: $*"; signal FAILURE "$*"; exit 1; }
trap 'die "command failed at line $LINENO"' ERR

# put DEST MODE < CONTENT: write DEST only if it differs; PUT=1 when it did.
put() {
    local tmp; tmp=$(mktemp); cat >"$tmp"; PUT=0
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        [ "$(stat -c %a "$1")" = "${2#0}" ] || { chmod "$2" "$1"; PUT=1; changed "mode of $1"; }
        return 0
    fi
    mkdir -p "$(dirname "$1")"; install -m "$2" "$tmp" "$1"; rm -f "$tmp"; PUT=1; changed "$1"
}

# --- settings: environment, then the saved file, then defaults -------------------------------
if [ -r "$CONF" ]; then
    while IFS= read -r line; do
        k=${line%%=*}; [ -n "${!k+x}" ] || eval "$line"
    done < <(grep -E '^SWIFTNFS_[A-Z0-9_]+=' "$CONF")
fi
: "${SWIFTNFS_STORAGE:=disks}"                    # disks: set up the two below; none: use them as they are
: "${SWIFTNFS_SERVED_DIR:=/srv/nfs}"              # the instance store's mount: what clients see
: "${SWIFTNFS_DURABLE_DIR:=/var/lib/swiftnfs}"    # the EBS volume's mount (--durable-dir)
: "${SWIFTNFS_STATE_DIR:=$SWIFTNFS_DURABLE_DIR/state}"  # file identity index, handle key
: "${SWIFTNFS_INSTANCE_STORE_DEVICE:=}"           # default: the first NVMe instance store disk
: "${SWIFTNFS_INSTANCE_STORE_WIPE:=0}"            # 1: wipe it even if it holds something else
: "${SWIFTNFS_DURABLE_DEVICE:=}"                  # default: the one EBS disk besides the root
: "${SWIFTNFS_DEVICE_WAIT:=600}"                  # seconds to wait for the EBS attachment
: "${SWIFTNFS_FS_TYPE:=ext4}"                     # ext4 or xfs, for disks this script formats
: "${SWIFTNFS_SERVED_OWNER:=root:root}"           # owner and mode of the served directory,
: "${SWIFTNFS_SERVED_MODE:=0755}"                 #   set when the instance store is formatted
: "${SWIFTNFS_EXPORT_CLIENTS:=}"                  # default: the VPC's CIDR blocks (from IMDS)
: "${SWIFTNFS_EXPORT_OPTIONS:=rw,sync,no_subtree_check}"
: "${SWIFTNFS_WRITE_EXPORTS:=auto}"               # auto: unless /etc/exports is someone else's
: "${SWIFTNFS_RELEASE_URL:=}"                     # a release archive (.tar.gz) with swiftnfsd
: "${SWIFTNFS_RELEASE_SHA256:=}"
: "${SWIFTNFS_BINARY:=}"                          # or a swiftnfsd already on this host
: "${SWIFTNFS_SOURCE:=}"                          # or build: a git URL or a source directory
: "${SWIFTNFS_SOURCE_REF:=main}"
: "${SWIFTNFS_SWIFT_TOOLCHAIN_URL:=}"             # a swift.org toolchain, if swift is missing
: "${SWIFTNFS_ARGS:=}"                            # more `swiftnfsd serve` options
: "${SWIFTNFS_DISABLE_CONFLICTS:=0}"              # 1: stop and disable nfs-kernel-server, rpcbind
: "${SWIFTNFS_REGISTER_RPCBIND:=0}"               # 1: keep rpcbind and register with it
: "${SWIFTNFS_HA_ETCD:=}"                         # etcd URLs: an HA node (its settings: ha-node.sh)
if [ -n "$SWIFTNFS_HA_ETCD" ]; then
    for HA_SH in "$HERE/ha-node.sh" "$HERE/ha/ha-node.sh" ""; do [ -r "$HA_SH" ] && break; done
    [ -n "$HA_SH" ] || die "SWIFTNFS_HA_ETCD: no ha-node.sh beside $HERE/server-init.sh"
    # shellcheck source-path=SCRIPTDIR source=ha/ha-node.sh
    . "$HA_SH"
fi

# --- disks ------------------------------------------------------------------------------------
nvme_disks() { # nvme_disks MODEL-PREFIX: NVMe disks whose model starts so
    local d m
    for d in /sys/block/nvme*n*; do
        [ -e "$d/device/model" ] || continue
        read -r m <"$d/device/model" || true
        case "$m" in "$1"*) echo "/dev/${d##*/}" ;; esac
    done
}
root_disk() { # the disk that holds /, e.g. nvme0n1 for /dev/nvme0n1p1
    local src pk; src=$(findmnt -no SOURCE /)
    pk=$(lsblk -no PKNAME "$src" 2>/dev/null | head -n 1 || true)
    echo "${pk:-${src##*/}}"
}
wait_for() { # wait_for DESCRIPTION FUNCTION: until FUNCTION prints one device
    local i=0 dev
    while :; do
        dev=$("$2" || true)
        if [ -n "$dev" ] && [ -b "$dev" ]; then echo "$dev"; return 0; fi
        [ "$i" -lt "$SWIFTNFS_DEVICE_WAIT" ] || die "no $1 after ${SWIFTNFS_DEVICE_WAIT}s"
        [ "$i" = 0 ] && log "waiting for the $1"
        sleep 2; i=$((i + 2))
    done
}
find_instance_store() {
    [ -z "$SWIFTNFS_INSTANCE_STORE_DEVICE" ] || { echo "$SWIFTNFS_INSTANCE_STORE_DEVICE"; return; }
    nvme_disks "Amazon EC2 NVMe Instance Storage" | head -n 1
}
find_durable() {
    [ -z "$SWIFTNFS_DURABLE_DEVICE" ] || { echo "$SWIFTNFS_DURABLE_DEVICE"; return; }
    local root list; root=$(root_disk)
    list=$(nvme_disks "Amazon Elastic Block Store" | grep -v "^/dev/$root\$" || true)
    if [ -z "$list" ]; then
        for d in /dev/xvdf /dev/sdf; do [ -b "$d" ] && { echo "$d"; return; }; done
        return 0
    fi
    [ "$(echo "$list" | wc -l)" = 1 ] || die "several EBS disks ($(echo "$list" | xargs)): set SWIFTNFS_DURABLE_DEVICE"
    echo "$list"
}
has_signature() { local rc=0; blkid -p "$1" >/dev/null 2>&1 || rc=$?; [ "$rc" != 2 ]; }
mkfs_label() { # mkfs_label DEV LABEL
    case "$SWIFTNFS_FS_TYPE" in
        ext4) mkfs.ext4 -q -F -m 0 -E nodiscard -L "$2" "$1" ;;
        xfs) mkfs.xfs -q -f -K -L "$2" "$1" ;;
        *) die "SWIFTNFS_FS_TYPE must be ext4 or xfs" ;;
    esac
    changed "formatted $1 ($SWIFTNFS_FS_TYPE, label $2)"
}

# The instance store is blank after every stop/start: give it a file system if it has none.
prepare_instance_store() {
    local dev t
    dev=$(wait_for "instance store disk" find_instance_store)
    if [ "$(blkid -p -o value -s LABEL "$dev" 2>/dev/null || true)" = "$SRV_LABEL" ]; then
        log "ok: $dev is the served file system"; return 0
    fi
    if has_signature "$dev"; then
        [ "$SWIFTNFS_INSTANCE_STORE_WIPE" = 1 ] \
            || die "$dev holds $(blkid -p -o value -s TYPE "$dev" || echo data), not $SRV_LABEL: set SWIFTNFS_INSTANCE_STORE_WIPE=1 to wipe it"
        { findmnt -rn -S "$dev" -o TARGET || true; } | while read -r t; do umount "$t"; done
        wipefs -qa "$dev"
    fi
    mkfs_label "$dev" "$SRV_LABEL"
    t=$(mktemp -d /run/swiftnfs-fmt.XXXXXX)
    mount "$dev" "$t"
    chown "$SWIFTNFS_SERVED_OWNER" "$t"; chmod "$SWIFTNFS_SERVED_MODE" "$t"
    umount "$t"; rmdir "$t"
}

# The EBS volume is formatted only when it is blank: after that it is never touched.
prepare_durable() {
    local dev
    dev=$(wait_for "EBS volume for $SWIFTNFS_DURABLE_DIR" find_durable)
    has_signature "$dev" || mkfs_label "$dev" "$DUR_LABEL"
    DUR_UUID=$(blkid -p -o value -s UUID "$dev" || true)
    DUR_TYPE=$(blkid -p -o value -s TYPE "$dev" || true)
    if [ -z "$DUR_UUID" ] || [ -z "$DUR_TYPE" ]; then
        die "$dev holds no file system (a partition table?): set SWIFTNFS_DURABLE_DEVICE"
    fi
}

mount_at() { # mount_at DIR LABEL-OR-UUID: mount from /etc/fstab unless already there
    local src
    mkdir -p "$1"
    if src=$(findmnt -rn -o SOURCE --mountpoint "$1"); then
        [ "$(blkid -o value -s "${2%%=*}" "$src" 2>/dev/null)" = "${2#*=}" ] || die "$1 is mounted from $src, not $2"
        log "ok: $1 mounted"; return 0
    fi
    mount "$1"; changed "mounted $1"
}

# fstab_block FILE MARKER LINES: FILE with the block between "# BEGIN MARKER" and "# END swiftnfs"
# replaced by LINES (in place, or at the end), and other entries for the same mount points
# commented out.
fstab_block() {
    awk -v b="# BEGIN $2" -v e="# END swiftnfs" -v block="$3" '
        BEGIN { n = split(block, l, "\n"); for (i = 1; i <= n; i++) if (split(l[i], f, " ") >= 2) mp[f[2]] = 1 }
        $0 == b { skip = 1; print b; print block; done = 1; next }
        skip { if ($0 == e) { skip = 0; print e }; next }
        $1 !~ /^#/ && ($2 in mp) { print "# disabled by swiftnfs: " $0; next }
        { print }
        END { if (!done) { print b; print block; print e } }' "$1" 2>/dev/null
}
fstab_content() {
    local opts=defaults,noatime,nofail
    [ -e /etc/fstab ] || : >/etc/fstab
    fstab_block /etc/fstab "swiftnfs (server-init.sh)" \
"LABEL=$SRV_LABEL $SWIFTNFS_SERVED_DIR $SWIFTNFS_FS_TYPE $opts,x-systemd.requires=swiftnfs-storage.service 0 0
UUID=$DUR_UUID $SWIFTNFS_DURABLE_DIR $DUR_TYPE $opts 0 2"
}
write_fstab() {
    put /etc/fstab 0644 < <(fstab_content)
    if [ "$PUT" = 1 ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
}

case "$SWIFTNFS_STORAGE" in disks | none) ;; *) die "SWIFTNFS_STORAGE must be disks or none" ;; esac
if [ "${1:-}" = --storage ]; then
    [ "$SWIFTNFS_STORAGE" = none ] || prepare_instance_store
    exit 0
fi
[ $# = 0 ] || die "usage: server-init.sh [--storage]"
[ "$(id -u)" = 0 ] || die "run as root"

# --- packages ---------------------------------------------------------------------------------
# Not nfs-common: it pulls in rpcbind, which would take port 111.
pkgs=()
command -v curl >/dev/null || pkgs+=(curl ca-certificates)
command -v mkfs.ext4 >/dev/null || pkgs+=(e2fsprogs)
command -v ss >/dev/null || pkgs+=(iproute2)
[ "$SWIFTNFS_FS_TYPE" != xfs ] || command -v mkfs.xfs >/dev/null || pkgs+=(xfsprogs)
if [ ${#pkgs[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    changed "installed ${pkgs[*]}"
fi
[ -z "$SWIFTNFS_HA_ETCD" ] || ha_check

# --- nfs-kernel-server and rpcbind want the same ports ----------------------------------------
held=$(ss -Hlnptu 2>/dev/null | awk '$5 ~ /:(111|2049)$/' | grep -v '"swiftnfsd"' || true)
enabled=""
if [ -d /run/systemd/system ]; then
    for u in nfs-server.service rpcbind.socket rpcbind.service; do
        if systemctl -q is-enabled "$u" 2>/dev/null || systemctl -q is-active "$u" 2>/dev/null; then
            enabled+=" $u"
        fi
    done
fi
if [ -n "$held$enabled" ]; then
    if [ "$SWIFTNFS_DISABLE_CONFLICTS" = 1 ]; then
        systemctl disable --now nfs-server.service rpcbind.socket rpcbind.service 2>/dev/null || true
        systemctl mask rpcbind.socket rpcbind.service nfs-server.service >/dev/null 2>&1 || true
        changed "stopped, disabled and masked nfs-server and rpcbind"
    elif [ "$SWIFTNFS_REGISTER_RPCBIND" = 1 ] && ! grep -q ':2049 ' <<<"$held" \
        && ! grep -q nfs-server <<<"$enabled"; then
        log "rpcbind holds port 111: swiftnfsd will register with it (--register-rpcbind)"
    else
        die "port 111/2049 in use or claimed (${enabled# }${held:+; $(awk '{printf "%s %s %s; ", $1, $5, $7}' <<<"$held")}): stop nfs-kernel-server and rpcbind (README: Migrating), or set SWIFTNFS_DISABLE_CONFLICTS=1, or SWIFTNFS_REGISTER_RPCBIND=1 to share rpcbind"
    fi
fi

# --- storage ----------------------------------------------------------------------------------
if [ "$SWIFTNFS_STORAGE" = disks ]; then
    prepare_instance_store
    prepare_durable
    write_fstab
    mount_at "$SWIFTNFS_SERVED_DIR" "LABEL=$SRV_LABEL"
    mount_at "$SWIFTNFS_DURABLE_DIR" "UUID=$DUR_UUID"
else
    log "ok: SWIFTNFS_STORAGE=none: no disk touched, $SWIFTNFS_SERVED_DIR and $SWIFTNFS_DURABLE_DIR used as they are"
    [ -d "$SWIFTNFS_DURABLE_DIR" ] || { mkdir -p "$SWIFTNFS_DURABLE_DIR"; changed "created $SWIFTNFS_DURABLE_DIR"; }
fi
if [ ! -d "$SWIFTNFS_STATE_DIR" ]; then
    mkdir -p "$SWIFTNFS_STATE_DIR"; chmod 0700 "$SWIFTNFS_STATE_DIR"; changed "created $SWIFTNFS_STATE_DIR"
fi

# --- swiftnfsd --------------------------------------------------------------------------------
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
build_from_source() {
    local dir=$SWIFTNFS_SOURCE out=/var/cache/swiftnfs-build
    if ! command -v swift >/dev/null; then
        if [ ! -x /opt/swift/usr/bin/swift ]; then
            [ -n "$SWIFTNFS_SWIFT_TOOLCHAIN_URL" ] || die "no swift: set SWIFTNFS_SWIFT_TOOLCHAIN_URL"
            DEBIAN_FRONTEND=noninteractive apt-get update -q
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git gcc g++ \
                libc6-dev binutils pkg-config libcurl4-openssl-dev libxml2-dev libedit-dev \
                libsqlite3-dev libpython3-dev zlib1g-dev tzdata unzip
            curl -fsSL --retry 5 -o "$WORK/swift.tar.gz" "$SWIFTNFS_SWIFT_TOOLCHAIN_URL"
            mkdir -p /opt/swift; tar -xzf "$WORK/swift.tar.gz" -C /opt/swift --strip-components=1
            changed "installed the Swift toolchain in /opt/swift"
        fi
        PATH=/opt/swift/usr/bin:$PATH
    fi
    if [ ! -d "$dir" ]; then
        dir=/usr/local/src/swiftnfs
        [ -d "$dir/.git" ] || git clone -q "$SWIFTNFS_SOURCE" "$dir"
        git -C "$dir" fetch -q origin "$SWIFTNFS_SOURCE_REF"
        git -C "$dir" checkout -q --detach FETCH_HEAD
    fi
    log "building swiftnfsd in $dir"
    swift build -c release --static-swift-stdlib --product swiftnfsd --package-path "$dir" --scratch-path "$out" >&2
    echo "$(swift build -c release --package-path "$dir" --scratch-path "$out" --show-bin-path)/swiftnfsd"
}
if [ -n "$SWIFTNFS_BINARY" ]; then
    src=$SWIFTNFS_BINARY
elif [ -n "$SWIFTNFS_RELEASE_URL" ]; then
    curl -fsSL --retry 5 -o "$WORK/release.tar.gz" "$SWIFTNFS_RELEASE_URL"
    if [ -n "$SWIFTNFS_RELEASE_SHA256" ]; then
        echo "$SWIFTNFS_RELEASE_SHA256  $WORK/release.tar.gz" | sha256sum -c --quiet - || die "checksum mismatch: $SWIFTNFS_RELEASE_URL"
    fi
    mkdir "$WORK/x"; tar -xf "$WORK/release.tar.gz" -C "$WORK/x"
    src=$(find "$WORK/x" -type f -name swiftnfsd -perm -u+x | head -n 1)
    [ -n "$src" ] || die "no executable swiftnfsd in $SWIFTNFS_RELEASE_URL"
elif [ -n "$SWIFTNFS_SOURCE" ]; then
    src=$(build_from_source)
elif [ -x "$BIN" ]; then
    src=$BIN
else
    die "where is swiftnfsd? set SWIFTNFS_RELEASE_URL, SWIFTNFS_SOURCE or SWIFTNFS_BINARY"
fi
# Its options, read whole (grep -q on a pipe can end it early: SIGPIPE fails the pipeline).
serve_help=$("$src" serve --help 2>&1) || die "$src does not run on this host (a build without --static-swift-stdlib?)"
put "$BIN" 0755 <"$src"; restart=$PUT

# --- /etc/exports -----------------------------------------------------------------------------
imds() {
    local t; t=$(curl -fsS -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token) \
        && curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $t" "http://169.254.169.254/latest/meta-data/$1"
}
mine="# Written by SwiftNFS server-init.sh"
write=$SWIFTNFS_WRITE_EXPORTS
if [ "$write" = auto ]; then
    write=1
    if [ -s /etc/exports ] && [ "$(head -c ${#mine} /etc/exports)" != "$mine" ] && grep -qv '^[[:space:]]*\(#.*\)\?$' /etc/exports; then
        write=0; log "ok: keeping the existing /etc/exports (not written by this script)"
    fi
fi
reload=0
if [ "$write" = 1 ]; then
    if [ -z "$SWIFTNFS_EXPORT_CLIENTS" ]; then
        mac=$(imds mac) || die "set SWIFTNFS_EXPORT_CLIENTS (not on EC2: no VPC CIDR to default to)"
        SWIFTNFS_EXPORT_CLIENTS=$(imds "network/interfaces/macs/$mac/vpc-ipv4-cidr-blocks" | xargs)
    fi
    line=$SWIFTNFS_SERVED_DIR
    for c in $SWIFTNFS_EXPORT_CLIENTS; do line+=" $c($SWIFTNFS_EXPORT_OPTIONS)"; done
    put /etc/exports 0644 < <(printf '%s (settings: %s). exports(5).\n%s\n' "$mine" "$CONF" "$line")
    reload=$PUT
fi
"$BIN" check-exports /etc/exports >/dev/null || die "/etc/exports: see swiftnfsd check-exports /etc/exports"

# --- settings, units --------------------------------------------------------------------------
settings() {
    echo "# SwiftNFS server-init.sh settings (the environment overrides them)."
    for v in $VARS; do k=SWIFTNFS_$v; printf '%s=%q\n' "$k" "${!k}"; done
}
put "$CONF" 0644 < <(settings)
self=$(readlink -f "${BASH_SOURCE[0]}")
[ "$self" = "$LIB/server-init.sh" ] || put "$LIB/server-init.sh" 0755 <"$self"
unit=${SWIFTNFS_UNIT_FILE:-$(dirname "$self")/swiftnfsd.service}
[ -r "$unit" ] || die "no unit file at $unit (set SWIFTNFS_UNIT_FILE)"
[ "$(readlink -f "$unit")" = "$LIB/swiftnfsd.service" ] || put "$LIB/swiftnfsd.service" 0644 <"$unit"
units=0
put /etc/systemd/system/swiftnfsd.service 0644 <"$unit"; units=$((units | PUT))
if [ "$SWIFTNFS_STORAGE" = disks ]; then
    put /etc/systemd/system/swiftnfs-storage.service 0644 <<EOF
# Written by SwiftNFS server-init.sh. Pulled in by the fstab entry of $SWIFTNFS_SERVED_DIR.
[Unit]
Description=SwiftNFS: format the instance store for $SWIFTNFS_SERVED_DIR if it is blank
DefaultDependencies=no
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$LIB/server-init.sh --storage
EOF
    units=$((units | PUT))
fi
put /etc/systemd/system/swiftnfsd.service.d/10-server-init.conf 0644 <<EOF
# Written by SwiftNFS server-init.sh: the mounts swiftnfsd must not start without.
[Unit]
RequiresMountsFor=$SWIFTNFS_SERVED_DIR $SWIFTNFS_DURABLE_DIR
EOF
units=$((units | PUT))
ha_args=""
if [ -n "$SWIFTNFS_HA_ETCD" ]; then
    ha_install
elif [ -e "$HA_DROPIN" ]; then
    rm -f "$HA_DROPIN"; units=1; changed "removed $HA_DROPIN: not an HA node"
fi
durable="--durable-dir $SWIFTNFS_DURABLE_DIR"
if [ "$SWIFTNFS_STORAGE" = none ] && [ -z "$SWIFTNFS_HA_ETCD" ]; then
    durable=""  # the data is on the host's own disks already
elif ! grep -q -- --durable-dir <<<"$serve_help"; then
    durable=""; log "note: this swiftnfsd has no --durable-dir (older than the journal): SWIFTNFSD_DURABLE_ARGS is empty"
fi
args=$SWIFTNFS_ARGS
[ "$SWIFTNFS_REGISTER_RPCBIND" != 1 ] || args="--register-rpcbind${args:+ $args}"
put /etc/default/swiftnfsd 0644 <<EOF
# swiftnfsd.service settings, written by SwiftNFS server-init.sh from $CONF.
SWIFTNFSD_EXPORTS=/etc/exports
SWIFTNFSD_STATE_DIR=$SWIFTNFS_STATE_DIR
# The EBS volume for the journal; empty while swiftnfsd does not accept --durable-dir.
SWIFTNFSD_DURABLE_ARGS="$durable"
SWIFTNFSD_ARGS="$args"
# A node of a high-availability pair (deploy/ha/README.md); empty for a single server.
SWIFTNFSD_HA_ARGS="$ha_args"
EOF
restart=$((restart | PUT | units))

# --- service ----------------------------------------------------------------------------------
systemctl -q is-enabled swiftnfsd.service 2>/dev/null \
    || { systemctl -q enable swiftnfsd.service 2>/dev/null; changed "enabled swiftnfsd.service"; }
if [ -d /run/systemd/system ]; then
    [ "$units" = 0 ] || systemctl daemon-reload
    if ! systemctl -q is-active swiftnfsd.service; then
        systemctl start swiftnfsd.service; changed "started swiftnfsd"
    elif [ "$restart" = 1 ]; then
        systemctl restart swiftnfsd.service; changed "restarted swiftnfsd"
    elif [ "$reload" = 1 ]; then
        systemctl reload swiftnfsd.service; changed "reloaded the exports"
    fi
    systemctl -q is-active swiftnfsd.service || die "swiftnfsd is not running: journalctl -u swiftnfsd"
    log "ok: swiftnfsd is serving"
    signal SUCCESS "swiftnfsd is serving $SWIFTNFS_SERVED_DIR"
else
    log "systemd is not running here (PID 1: $(cat /proc/1/comm 2>/dev/null)): units installed and enabled, not started"
fi
log "done: $CHANGES changes"
