#!/bin/sh
# The conformance suite: what users do, checked through an NFS mount.
#
#   suite.sh VARIANT MNT [SRV]
#
# VARIANT names the mount variant in the report; MNT is the mounted export (read-write);
# SRV, when given, is the same export's directory as the server sees it (the suite then also
# checks the files on the server side, and creates the 100,000-entry directory there directly
# rather than through the mount). Environment:
#   RO_MNT    a read-only export, mounted (EROFS checks; skipped when unset)
#   CHECKS    the checks to run (default: all, in order)
#   BIG_N     entries in the big directory (default 100000; 0 skips it)
#   BIG_MNT   the same export as MNT, mounted with actimeo=3600, for listing the big directory
#   SRC_TREE  the tree that cp -a copies (default: the project's Sources/)
#   CHECK_TIMEOUT  seconds per check (default 300)
#   TEST_UID  the non-root user for the EACCES checks (default 1000)
#
# One line per check: "PASS VARIANT: CHECK" or "FAIL VARIANT: CHECK: REASON", and
# "TIME VARIANT CHECK: Ns" for checks that took longer than 5 s. Runs under busybox sh, dash
# and bash alike; it calls python3 (fsops.py, next to this file) where a shell cannot be
# precise (errno values, offsets, mmap, O_EXCL, fsync).
# The exit status is the number of failed checks (at most 125).

ALL_CHECKS="write_small write_large overwrite sparse beyond_4g append truncate excl rename hardlink
symlink mkdir_rmdir special chmod chown utimes dir0 dir1 dir1000 dir_names dir_big unlink_open
mmap fsync df cp_tree concurrent errors eacces root_squash erofs"

HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/suite.sh"
FSOPS="$HERE/fsops.py"
: "${CHECK_TIMEOUT:=300}" "${BIG_N:=100000}" "${TEST_UID:=1000}" "${SRC_TREE:=$HERE/../../Sources}"
export CHECK_TIMEOUT BIG_N TEST_UID SRC_TREE

# The shell running this script, to run each check in a fresh one of the same kind.
SELF_SH=$(readlink /proc/$$/exe 2>/dev/null || echo /bin/sh)
case "$SELF_SH" in
    *busybox*) SELF_SH="$SELF_SH sh" ;;
esac

# busybox sh runs its own applets before anything in PATH; the checks want the tools users have
# (GNU coreutils and friends) where they exist: functions take precedence over applets.
case "$SELF_SH" in
    *busybox*)
        for t in cat chgrp chmod chown cmp cp cut date dd df diff find grep head id ln ls mkdir \
            mkfifo mknod mv readlink rm rmdir sed seq setpriv sha256sum sort stat tail tee timeout \
            touch tr truncate wc xargs; do
            for d in /usr/bin /bin; do
                if [ -x "$d/$t" ] && ! [ -L "$d/$t" -a "$(readlink "$d/$t" 2>/dev/null)" = busybox ]; then
                    eval "$t() { $d/$t \"\$@\"; }"
                    break
                fi
            done
        done ;;
esac
# The python3 that a non-root user can run (not one under /root, such as a pyenv shim).
USER_PY=python3
[ -x /usr/bin/python3 ] && USER_PY=/usr/bin/python3

now() { date +%s.%N 2>/dev/null | sed 's/N$/0/'; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- helpers for the checks (each check runs in its own shell, under set -e) ---------------------

fail() { echo "$*"; exit 1; }
eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }
py() { python3 "$FSOPS" "$@"; }
# expect_errno NAME OP ARGS...: OP (see fsops.py) fails with errno NAME ("OK": succeeds).
expect_errno() { py errno "$@"; }
# expect_errnos <<EOF: lines of "NAME OP ARGS..." (no quoting: paths without blanks), one process.
expect_errnos() { py errnos; }
as_user() { setpriv --reuid "$TEST_UID" --regid "$TEST_UID" --clear-groups "$@"; }
# Drop the client's cached pages of files (so that reads go to the server).
evict() { py evict "$@"; }
srv() { [ -n "$SRV" ]; }
same_file() { cmp -s "$1" "$2" || fail "$3: $1 and $2 differ ($(cmp "$1" "$2" 2>&1 | head -n 1))"; }
sha() { sha256sum <"$1" | cut -d' ' -f1; }
# Read a file bypassing the client's page cache (O_DIRECT), as the server has it.
direct_sha() { dd if="$1" bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
count_lines() { wc -l | tr -d ' '; }

# --- the checks ------------------------------------------------------------------------------
# $T: this check's directory on the mount; $S: the same directory on the server (if SRV);
# $L: a local scratch directory.

c_write_small() {
    printf 'hello, world\n' >"$T/hello"
    : >"$T/empty"
    sizes="1 511 4095 4096 4097 65537 1000001"
    for n in $sizes; do
        head -c $n /dev/urandom >"$L/f$n"
        cp "$L/f$n" "$T/f$n"
    done
    (cd "$L" && sha256sum f*) >"$L/sums"
    evict "$T"/f* "$T/hello"
    eq "$(cat "$T/hello")" "hello, world" "read back"
    eq "$(stat -c %s "$T/empty")" 0 "size of an empty file"
    eq "$(wc -c <"$T/empty" | tr -d ' ')" 0 "bytes read from an empty file"
    (cd "$T" && sha256sum -c --quiet "$L/sums") >"$L/out" 2>&1 || fail "read back: $(head -n 1 "$L/out")"
    eq "$(cd "$T" && stat -c %s $(for n in $sizes; do echo f$n; done) | tr '\n' ' ')" "$(echo $sizes) " "sizes"
    if srv; then
        eq "$(cat "$S/hello")" "hello, world" "server-side content"
        (cd "$S" && sha256sum -c --quiet "$L/sums") >"$L/out" 2>&1 || fail "server side: $(head -n 1 "$L/out")"
    fi
}

c_write_large() {
    head -c $((8 << 20)) /dev/urandom >"$L/big8"
    cp "$L/big8" "$T/big8"
    want=$(sha "$L/big8")
    eq "$(direct_sha "$T/big8")" "$want" "8 MiB copy read back with O_DIRECT"
    ! srv || eq "$(sha "$S/big8")" "$want" "8 MiB server-side copy"
    # 24 MiB in odd-sized writes, fsync at the end.
    head -c $((24 << 20)) /dev/urandom >"$L/big24"
    dd if="$L/big24" of="$T/big24" bs=777777 conv=fsync 2>/dev/null
    want=$(sha "$L/big24")
    evict "$T/big24"
    eq "$(sha "$T/big24")" "$want" "24 MiB written in 777777-byte blocks, read back"
    eq "$(dd if="$T/big24" bs=65536 2>/dev/null | sha256sum | cut -d' ' -f1)" "$want" "read in 64 KiB blocks"
    ! srv || eq "$(sha "$S/big24")" "$want" "24 MiB server-side copy"
}

c_overwrite() {
    head -c 300000 /dev/urandom >"$L/f"
    cp "$L/f" "$T/f"
    # Overwrite in place, unaligned, within the file and across its end.
    for spec in 0:1 4095:2 100000:5000 299990:20; do
        off=${spec%:*} n=${spec#*:}
        head -c "$n" /dev/urandom >"$L/patch"
        dd if="$L/patch" of="$L/f" bs=1 seek="$off" conv=notrunc 2>/dev/null
        dd if="$L/patch" of="$T/f" bs=1 seek="$off" conv=notrunc 2>/dev/null
    done
    evict "$T/f"
    same_file "$L/f" "$T/f" "after in-place overwrites"
    ! srv || same_file "$L/f" "$S/f" "server side after overwrites"
    # Rewrite a file with shorter content (O_TRUNC).
    printf 'short' >"$T/f"
    evict "$T/f"
    eq "$(cat "$T/f")" "short" "after O_TRUNC rewrite"
}

c_sparse() {
    f="$T/sparse"
    py writeat "$f" 1048576 4096 sp1 -- writeat "$f" 67108865 4096 sp2 -- evict "$f" \
        -- size "$f" $((67108865 + 4096)) -- zeros "$f" 0 1048576 -- verifyat "$f" 1048576 4096 sp1 \
        -- zeros "$f" $((1048576 + 4096)) $((67108865 - 1048576 - 4096)) -- verifyat "$f" 67108865 4096 sp2
    # A file that is all hole.
    truncate -s 10M "$T/hole"
    py zeros "$T/hole" 0 $((10 << 20)) ${SRV:+-- sparse "$S/sparse" -- sparse "$S/hole"}
}

c_beyond_4g() {
    f="$T/big"
    g5=$((5 * 1024 * 1024 * 1024 + 12345))
    g4=$((4 * 1024 * 1024 * 1024 - 100))
    py writeat "$f" $g5 70000 above -- writeat "$f" $g4 200 straddle -- writeat "$f" 0 1000 start \
        -- evict "$f" -- size "$f" $((g5 + 70000)) -- verifyat "$f" $g5 70000 above \
        -- verifyat "$f" $g4 200 straddle -- verifyat "$f" 0 1000 start -- zeros "$f" $((g4 + 200)) 65536 \
        ${SRV:+-- verifyat "$S/big" $g5 70000 above -- verifyat "$S/big" $g4 200 straddle}
    eq "$(stat -c %s "$f")" $((g5 + 70000)) "stat size"
    # Truncate to just above 4 GiB, and read the end.
    truncate -s $((g4 + 150)) "$f"
    py evict "$f" -- size "$f" $((g4 + 150)) -- verifyat "$f" $g4 150 straddle
}

c_append() {
    f="$T/log"
    i=1
    while [ $i -le 20 ]; do echo "line $i" >>"$f"; i=$((i + 1)); done
    evict "$f"
    eq "$(count_lines <"$f")" 20 "lines after 20 appends"
    eq "$(sed -n '1p;20p' "$f" | tr '\n' ' ')" "line 1 line 20 " "first and last line"
    # Appends from two descriptors, interleaved: each lands at the end.
    python3 - "$f" <<'EOF'
import os, sys
a = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
b = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for i in range(10):
    os.write(a, b"a%d\n" % i)
    os.write(b, b"b%d\n" % i)
os.close(a); os.close(b)
EOF
    evict "$f"
    eq "$(count_lines <"$f")" 40 "lines after interleaved O_APPEND writes"
    eq "$(tail -n 2 "$f" | tr '\n' ' ')" "a9 b9 " "last two lines"
    ! srv || same_file "$f" "$S/log" "server side"
}

c_truncate() {
    f="$T/t"
    py writeat "$f" 0 100000 tr
    truncate -s 5000 "$f"
    py evict "$f" -- size "$f" 5000 -- verifyat "$f" 0 5000 tr
    truncate -s 20000 "$f"
    py evict "$f" -- size "$f" 20000 -- verifyat "$f" 0 5000 tr -- zeros "$f" 5000 15000
    # Truncate to zero, then extend with a write past the end (a hole in between).
    truncate -s 0 "$f"
    py size "$f" 0 -- writeat "$f" 8192 10 tr2 -- evict "$f" -- size "$f" 8202 -- zeros "$f" 0 8192 \
        ${SRV:+-- size "$S/t" 8202 -- zeros "$S/t" 0 8192}
    # ftruncate on an open descriptor while writing.
    python3 - "$f" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_TRUNC)
os.write(fd, b"x" * 10000)
os.ftruncate(fd, 3000)
os.write(fd, b"y")  # at offset 10000: a hole from 3000
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
st = os.fstat(fd)
if st.st_size != 10001:
    sys.exit(f"size {st.st_size} after ftruncate + write, expected 10001")
if os.pread(fd, 20000, 0) != b"x" * 3000 + b"\0" * 7000 + b"y":
    sys.exit("content after ftruncate + write is wrong")
os.close(fd)
PY
}

c_excl() {
    py excl "$T"
}

c_rename() {
    echo a >"$T/a"
    mv "$T/a" "$T/b"
    [ ! -e "$T/a" ] || fail "the old name exists after a rename"
    eq "$(cat "$T/b")" a "content after a rename"
    mkdir "$T/d1" "$T/d2"
    echo x >"$T/d1/x"
    ino=$(stat -c %i "$T/d1/x")
    mv "$T/d1/x" "$T/d2/y"
    [ ! -e "$T/d1/x" ] || fail "the old name exists after a rename across directories"
    eq "$(cat "$T/d2/y")" x "content after a rename across directories"
    eq "$(stat -c %i "$T/d2/y")" "$ino" "inode number after a rename"
    eq "$(ls -A "$T/d1" | count_lines)" 0 "entries left in the source directory"
    # Over an existing file: the target's old content is gone, a descriptor to it still reads it.
    echo old >"$T/target"
    echo new >"$T/source"
    exec 3<"$T/target"
    mv -f "$T/source" "$T/target"
    eq "$(cat "$T/target")" new "content after a rename over an existing file"
    eq "$(cat <&3)" old "the replaced file through a descriptor opened before"
    exec 3<&-
    [ ! -e "$T/source" ] || fail "the source exists after a rename over a file"
    # Directories: with contents, over an empty directory, not over a non-empty one.
    mkdir -p "$T/tree/sub"
    echo deep >"$T/tree/sub/f"
    mv "$T/tree" "$T/d2/moved"
    eq "$(cat "$T/d2/moved/sub/f")" deep "content under a renamed directory"
    mkdir "$T/empty" "$T/full"
    echo 1 >"$T/full/f"
    expect_errnos <<EOF
    OK rename $T/d2/moved $T/empty
    ENOTEMPTY rename $T/empty $T/full
    EISDIR rename $T/b $T/full
    ENOTDIR rename $T/full $T/b
    EINVAL rename $T/full $T/full/inside
    ENOENT rename $T/missing $T/whatever
EOF
    # A rename onto itself and between two links of one file: no-ops.
    expect_errno OK rename "$T/b" "$T/b"
    ln "$T/b" "$T/b2"
    expect_errno OK rename "$T/b" "$T/b2"
    [ -e "$T/b" ] && [ -e "$T/b2" ] || fail "a rename between two links of one file removed one"
    eq "$(ls "$T" | tr '\n' ' ')" "b b2 d1 d2 empty full target " "the directory after the renames"
    if srv; then
        eq "$(cat "$S/d2/y")" x "server side after a rename across directories"
        eq "$(cat "$S/empty/sub/f")" deep "server side after directory renames"
    fi
}

c_hardlink() {
    echo one >"$T/a"
    eq "$(stat -c %h "$T/a")" 1 "link count of a new file"
    ln "$T/a" "$T/b"
    mkdir "$T/sub"
    ln "$T/a" "$T/sub/c"
    eq "$(stat -c %h "$T/a")" 3 "link count after two links"
    eq "$(stat -c %h "$T/sub/c")" 3 "link count seen through another link"
    eq "$(stat -c %i "$T/b")" "$(stat -c %i "$T/a")" "inode number of a link"
    echo two >>"$T/b"
    evict "$T/a"
    eq "$(cat "$T/a" | tr '\n' ' ')" "one two " "a write through one link seen through another"
    rm "$T/a"
    eq "$(stat -c %h "$T/b")" 2 "link count after removing a link"
    rm "$T/sub/c"
    eq "$(stat -c %h "$T/b")" 1 "link count after removing another"
    eq "$(cat "$T/b" | tr '\n' ' ')" "one two " "content of the last link"
    expect_errnos <<EOF
    EPERM link $T/sub $T/dirlink
    EEXIST link $T/b $T/sub
    ENOENT link $T/missing $T/x
EOF
    if srv; then
        ln "$T/b" "$T/c"
        eq "$(stat -c %h "$S/b")" 2 "server-side link count"
        eq "$(stat -c %i "$S/c")" "$(stat -c %i "$S/b")" "server-side inode of a link"
    fi
}

c_symlink() {
    echo target >"$T/file"
    ln -s file "$T/rel"
    ln -s "$T/file" "$T/abs"
    ln -s nowhere "$T/dangling"
    mkdir "$T/dir"
    echo in >"$T/dir/f"
    ln -s dir "$T/dirlink"
    ln -s ../file "$T/dir/up"
    eq "$(readlink "$T/rel")" file "readlink of a relative link"
    eq "$(readlink "$T/abs")" "$T/file" "readlink of an absolute link"
    eq "$(cat "$T/rel")" target "reading through a link"
    eq "$(cat "$T/dir/up")" target "reading through a ../ link"
    eq "$(cat "$T/dirlink/f")" in "a path through a directory link"
    eq "$(stat -c %F "$T/rel")" "symbolic link" "lstat type"
    eq "$(stat -L -c %F "$T/rel")" "regular file" "stat type through the link"
    eq "$(stat -c %s "$T/rel")" 4 "size of a symlink (its target's length)"
    [ ! -e "$T/dangling" ] || fail "a dangling link resolves"
    [ -L "$T/dangling" ] || fail "a dangling link is not a link"
    long=$(printf '%01000d' 0 | tr 0 x)
    ln -s "$long" "$T/long"
    eq "$(readlink "$T/long")" "$long" "readlink of a 1000-byte target"
    ln -s 'with space/and ünïcödé' "$T/odd"
    eq "$(readlink "$T/odd")" 'with space/and ünïcödé' "readlink of a target with spaces and UTF-8"
    echo more >>"$T/rel"
    eq "$(cat "$T/file" | tr '\n' ' ')" "target more " "a write through a link"
    expect_errnos <<EOF
    EEXIST symlink x $T/rel
    EINVAL readlink $T/file
EOF
    ! srv || eq "$(readlink "$S/long")" "$long" "server-side link target"
}

c_mkdir_rmdir() {
    mkdir -p "$T/a/b/c"
    [ -d "$T/a/b/c" ] || fail "mkdir -p made no directory"
    eq "$(stat -c %h "$T/a")" 3 "link count of a directory with one subdirectory"
    mkdir "$T/a/b2" "$T/a/b3"
    eq "$(stat -c %h "$T/a")" 5 "link count of a directory with three subdirectories"
    (umask 0 && mkdir -m 0700 "$T/private")
    eq "$(stat -c %a "$T/private")" 700 "mode of mkdir -m 0700"
    (umask 022 && mkdir "$T/umasked")
    eq "$(stat -c %a "$T/umasked")" 755 "mode of a mkdir under umask 022"
    expect_errnos <<EOF
    ENOTEMPTY rmdir $T/a/b
    EEXIST mkdir $T/a
EOF
    echo f >"$T/file"
    expect_errnos <<EOF
    ENOTDIR rmdir $T/file
    ENOTDIR mkdir $T/file/sub
EOF
    rmdir "$T/a/b/c" "$T/a/b" "$T/a/b2" "$T/a/b3"
    eq "$(stat -c %h "$T/a")" 2 "link count after the rmdirs"
    rmdir "$T/a"
    [ ! -e "$T/a" ] || fail "a removed directory still exists"
    expect_errno ENOENT rmdir "$T/a"
    ! srv || [ ! -e "$S/a" ] || fail "the removed directory still exists on the server"
    # rm -r of a tree
    mkdir -p "$T/tree/x/y" "$T/tree/z"
    touch "$T/tree/1" "$T/tree/x/2" "$T/tree/x/y/3"
    rm -r "$T/tree"
    [ ! -e "$T/tree" ] || fail "rm -r left the tree"
}

c_special() {
    mkfifo "$T/fifo"
    eq "$(stat -c %F "$T/fifo")" fifo "type of a FIFO"
    # Device nodes (MKNOD) as root.
    mknod "$T/null" c 1 3
    eq "$(stat -c '%F %t %T' "$T/null")" "character special file 1 3" "a character device node"
    mknod "$T/blk" b 7 200
    eq "$(stat -c '%F %t %T' "$T/blk")" "block special file 7 c8" "a block device node"
    python3 - "$T/sock" <<'EOF'
import socket, stat, os, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.close()
assert stat.S_ISSOCK(os.lstat(sys.argv[1]).st_mode), "bind() made no socket node"
EOF
    ! srv || eq "$(stat -c %F "$S/fifo")" fifo "server-side type of the FIFO"
}

c_chmod() {
    echo x >"$T/f"
    for m in 751 600 644 4755 2755 1777 0; do
        chmod "$m" "$T/f"
        eq "$(stat -c %a "$T/f")" "$m" "mode after chmod $m"
        ! srv || eq "$(stat -c %a "$S/f")" "$m" "server-side mode after chmod $m"
    done
    mkdir "$T/d"
    chmod 1777 "$T/d"
    eq "$(stat -c %a "$T/d")" 1777 "directory mode after chmod 1777"
    chmod 0750 "$T/d"
    eq "$(stat -c %A "$T/d")" drwxr-x--- "directory mode after chmod 0750"
    # chmod changes ctime, not mtime.
    touch -d '2001-01-01 00:00:00 UTC' "$T/f"
    chmod 640 "$T/f"
    eq "$(stat -c %Y "$T/f")" 978307200 "mtime after a chmod"
}

c_chown() {
    echo x >"$T/f"
    eq "$(stat -c %u:%g "$T/f")" 0:0 "owner of a file root created (no_root_squash)"
    chown 1000:1000 "$T/f"
    eq "$(stat -c %u:%g "$T/f")" 1000:1000 "owner after chown 1000:1000"
    chown 1234:5678 "$T/f"
    eq "$(stat -c %u:%g "$T/f")" 1234:5678 "owner after chown 1234:5678"
    chgrp 4321 "$T/f"
    eq "$(stat -c %u:%g "$T/f")" 1234:4321 "owner after chgrp"
    ! srv || eq "$(stat -c %u:%g "$S/f")" 1234:4321 "server-side owner"
    ln -s f "$T/l"
    chown -h 2000:2000 "$T/l"
    eq "$(stat -c %u:%g "$T/l")" 2000:2000 "owner of a symlink after chown -h"
    eq "$(stat -c %u:%g "$T/f")" 1234:4321 "owner of the target after chown -h of a link"
    # chown of a setuid file clears the set-id bits (as on a local file system).
    chmod 4755 "$T/f"
    chown 1000 "$T/f"
    eq "$(stat -c %a "$T/f")" 755 "mode after chown of a setuid file"
}

c_utimes() {
    echo x >"$T/f"
    touch -d '2001-02-03 04:05:06.123456789 UTC' "$T/f"
    eq "$(stat -c %Y "$T/f")" 981173106 "mtime seconds after touch -d"
    eq "$(stat -c %X "$T/f")" 981173106 "atime seconds after touch -d"
    eq "$(python3 -c 'import os,sys; print(os.stat(sys.argv[1]).st_mtime_ns)' "$T/f")" 981173106123456789 \
        "mtime in nanoseconds"
    touch -m -d '@1500000000' "$T/f"
    eq "$(stat -c %Y:%X "$T/f")" 1500000000:981173106 "times after touch -m (atime unchanged)"
    touch -a -d '@1400000000' "$T/f"
    eq "$(stat -c %Y:%X "$T/f")" 1500000000:1400000000 "times after touch -a (mtime unchanged)"
    ! srv || eq "$(stat -c %Y:%X "$S/f")" 1500000000:1400000000 "server-side times"
    # Times after 2038 (NFSv3 times are unsigned 32-bit seconds: up to 2106, none before 1970).
    touch -m -d '@2200000000' "$T/f"
    eq "$(stat -c %Y "$T/f")" 2200000000 "mtime in 2039"
    touch -m -d '@4102444800' "$T/f"
    eq "$(stat -c %Y "$T/f")" 4102444800 "mtime in 2100"
    ! srv || eq "$(stat -c %Y "$S/f")" 4102444800 "server-side mtime in 2100"
    # touch with no time: the server's now (SET_TO_SERVER_TIME).
    touch "$T/f"
    d=$(( $(stat -c %Y "$T/f") - $(date +%s) ))
    [ $d -ge -60 ] && [ $d -le 60 ] || fail "mtime after a plain touch is $d s from now"
    # A write moves mtime and ctime.
    touch -d '@1000000000' "$T/f"
    sleep 1
    echo more >>"$T/f"
    m=$(stat -c %Y "$T/f")
    [ "$m" -gt 1000000000 ] || fail "mtime did not move after a write"
    # A create moves the directory's mtime.
    touch -d '@1000000000' "$T"
    echo y >"$T/g"
    [ "$(stat -c %Y "$T")" -gt 1000000000 ] || fail "the directory's mtime did not move after a create"
    # Times as a non-root owner: touch of one's own file works, setting others' times does not.
    chown "$TEST_UID:$TEST_UID" "$T/g"
    chmod 644 "$T/g"
    as_user touch -d '@1200000000' "$T/g" 2>"$L/err" || fail "the owner could not set times of own file: $(cat "$L/err")"
    eq "$(stat -c %Y "$T/g")" 1200000000 "mtime set by the owner"
    as_user $USER_PY "$FSOPS" errno EPERM utime "$T/f"
}

# Directory listings: NAMES file with the expected names, DIR on the mount.
check_listing() {
    dir=$1 want=$2 what=$3
    LC_ALL=C sort "$want" >"$L/want.sorted"
    n=$(count_lines <"$L/want.sorted")
    ls -A "$dir" | LC_ALL=C sort >"$L/ls"
    eq "$(count_lines <"$L/ls")" "$n" "$what: entries listed by ls"
    cmp -s "$L/ls" "$L/want.sorted" || fail "$what: ls lists other names than expected ($(diff "$L/want.sorted" "$L/ls" | sed -n 2p))"
    ls -f "$dir" | grep -v -e '^\.$' -e '^\.\.$' | LC_ALL=C sort >"$L/lsf"
    cmp -s "$L/lsf" "$L/want.sorted" || fail "$what: ls -f (readdir order) lists other names than expected"
    (cd "$dir" && find . -mindepth 1) | sed 's|^\./||' | LC_ALL=C sort >"$L/find"
    eq "$(count_lines <"$L/find")" "$n" "$what: entries listed by find"
    cmp -s "$L/find" "$L/want.sorted" || fail "$what: find lists other names than expected"
}

c_dir0() {
    mkdir "$T/d"
    : >"$L/names"
    check_listing "$T/d" "$L/names" "empty directory"
    eq "$(ls -a "$T/d" | tr '\n' ' ')" ". .. " "ls -a of an empty directory"
}

c_dir1() {
    mkdir "$T/d"
    echo x >"$T/d/only"
    echo only >"$L/names"
    check_listing "$T/d" "$L/names" "one entry"
}

c_dir1000() {
    mkdir "$T/d"
    seq -f 'entry-%06g' 1 1000 >"$L/names"
    while read -r n; do : >"$T/d/$n"; done <"$L/names"
    check_listing "$T/d" "$L/names" "1000 entries"
    # Listings stay complete after removing entries (cookies of the remaining ones).
    (cd "$T/d" && seq -f 'entry-%06g' 1 2 1000 | xargs rm)
    seq -f 'entry-%06g' 2 2 1000 >"$L/names"
    check_listing "$T/d" "$L/names" "500 entries left after removing every other one"
    rm -r "$T/d"
    [ ! -e "$T/d" ] || fail "rm -r of the directory left it"
}

c_dir_names() {
    # Names users have: long (255 bytes), UTF-8, spaces, leading dashes and dots, shell characters.
    mkdir "$T/d"
    long=$(printf '%0255d' 0 | tr 0 n)
    printf '%s\n' "$long" 'ünïcödé 名前' 'with space' '-dash' '.hidden' '..dots' "quote'd" 'a;b&c|d' \
        'tab	in' 'x=y' >"$L/names"
    while IFS= read -r n; do echo "$n" >"$T/d/$n"; done <"$L/names"
    check_listing "$T/d" "$L/names" "unusual names"
    eq "$(cat "$T/d/$long")" "$long" "content of the file with a 255-byte name"
    expect_errno ENAMETOOLONG creat "$T/d/${long}x"
    ! srv || [ -f "$S/d/ünïcödé 名前" ] || fail "the UTF-8 name is not on the server as is"
}

c_dir_big() {
    [ "$BIG_N" -gt 0 ] || { echo "skipped (BIG_N=0)"; return 0; }
    # BIG_MNT: the same export mounted with actimeo=3600 (see harness.sh): the attributes that
    # READDIRPLUS brings stay valid while ls and find go through 100,000 entries.
    B="${BIG_MNT:-$MNT}/$RUNID/$name/big"
    trap 'rm -rf "${S:-$T}/big"' EXIT
    t0=$(now)
    if srv; then
        # Created on the server side directly: through the mount it would take too long here.
        mkdir "$S/big"
        (cd "$S/big" && seq -f 'f%07g' 0 $((BIG_N - 1)) | xargs touch)
        how="on the server side"
    else
        mkdir "$T/big"
        (cd "$T/big" && seq -f 'f%07g' 0 $((BIG_N - 1)) | xargs touch)
        how="through the mount"
    fi
    echo "TIME $VARIANT dir_big: create $BIG_N entries $how: $(elapsed "$t0")s" >&2
    seq -f 'f%07g' 0 $((BIG_N - 1)) >"$L/names"
    # A cold listing with readdir(3), as ls does: 32 KiB getdents calls, READDIR from the server.
    t0=$(now)
    ls -f "$T/big" | grep -v -e '^\.$' -e '^\.\.$' | LC_ALL=C sort >"$L/cold"
    cmp -s "$L/cold" "$L/names" || fail "$BIG_N entries: a cold ls -f lists $(count_lines <"$L/cold") entries ($(diff "$L/names" "$L/cold" | sed -n 2p))"
    echo "TIME $VARIANT dir_big: cold ls -f: $(elapsed "$t0")s" >&2
    # Then the whole directory with one getdents call, which the client serves with READDIRPLUS
    # from offset 0 (entries with their attributes). find stats every entry whose type readdir
    # did not tell (plain READDIR gives none): with the attributes cached, that costs no round
    # trip; without, 100,000 GETATTRs or LOOKUPs, far too slow under emulation.
    t0=$(now)
    py getdents "$B"
    echo "TIME $VARIANT dir_big: one getdents (READDIRPLUS): $(elapsed "$t0")s" >&2
    t0=$(now)
    check_listing "$B" "$L/names" "$BIG_N entries"
    echo "TIME $VARIANT dir_big: ls -A, ls -f, find: $(elapsed "$t0")s" >&2
    eq "$(stat -c %s "$B/$(tail -n 1 "$L/names")")" 0 "stat of the last entry"
}

c_unlink_open() {
    py unlink-open "$T"
}

c_mmap() {
    if srv; then py mmap "$T" "$S"; else py mmap "$T"; fi
}

c_fsync() {
    srv || { echo "skipped: needs the server-side directory"; return 0; }
    py fsync "$T" "$S"
    echo synced >"$T/s"
    sync
    eq "$(cat "$S/s")" synced "server side after sync(1)"
}

c_df() {
    out=$(df -P "$MNT" | tail -n 1)
    set -- $out
    [ "$2" -gt 0 ] || fail "df shows a size of $2 blocks: $out"
    [ "$4" -gt 0 ] || fail "df shows $4 blocks available: $out"
    df -i "$MNT" >/dev/null || fail "df -i failed"
    stat -f "$MNT" >/dev/null || fail "stat -f failed"
    py statvfs "$T"
}

c_cp_tree() {
    [ -d "$SRC_TREE" ] || fail "no source tree at $SRC_TREE"
    cp -a "$SRC_TREE" "$L/src"
    # Some variety: a symlink, an empty directory, an executable, odd modes and times.
    ln -s ../README "$L/src/link"
    mkdir "$L/src/emptydir"
    printf '#!/bin/sh\n' >"$L/src/tool"
    chmod 751 "$L/src/tool"
    chmod 600 "$(find "$L/src" -type f -name '*.swift' | head -n 1)"
    touch -d '1999-12-31 23:59:59.5 UTC' "$L/src/tool"
    chown -R 1000:1000 "$L/src/emptydir"
    t0=$(now)
    cp -a "$L/src" "$T/tree"
    cp_time=$(elapsed "$t0")
    files=$(find "$L/src" -type f | count_lines)
    py manifest "$L/src" >"$L/m.local"
    py manifest "$T/tree" >"$L/m.mount"
    cmp -s "$L/m.local" "$L/m.mount" || fail "cp -a of $files files: the copy differs ($(diff "$L/m.local" "$L/m.mount" | grep '^[<>]' | head -n 2 | tr '\n' ' '))"
    (cd "$L/src" && find . -type f | LC_ALL=C sort | xargs sha256sum) >"$L/sums"
    (cd "$T/tree" && sha256sum -c --quiet "$L/sums") >"$L/check" 2>&1 || fail "sha256sum -c: $(head -n 1 "$L/check")"
    if srv; then
        py manifest "$S/tree" >"$L/m.server"
        cmp -s "$L/m.local" "$L/m.server" || fail "server-side copy differs ($(diff "$L/m.local" "$L/m.server" | grep '^[<>]' | head -n 2 | tr '\n' ' '))"
    fi
    # And back: cp -a from the mount to local, compare again.
    cp -a "$T/tree" "$L/back"
    py manifest "$L/back" >"$L/m.back"
    cmp -s "$L/m.local" "$L/m.back" || fail "cp -a back from the mount differs ($(diff "$L/m.local" "$L/m.back" | grep '^[<>]' | head -n 2 | tr '\n' ' '))"
    rm -rf "$T/tree"
    [ ! -e "$T/tree" ] || fail "rm -rf of the copied tree left something"
    echo "TIME $VARIANT cp_tree cp -a of $files files: ${cp_time}s" >&2
}

c_concurrent() {
    if srv; then py concurrent "$T" "$S"; else py concurrent "$T"; fi
}

c_errors() {
    echo f >"$T/file"
    mkdir "$T/dir" "$T/full"
    echo x >"$T/full/x"
    expect_errnos <<EOF
    ENOENT stat $T/missing
    ENOENT open-r $T/missing
    ENOENT creat $T/nodir/file
    ENOENT unlink $T/missing
    ENOENT rmdir $T/missing
    ENOENT chmod $T/missing 644
    EEXIST mkdir $T/dir
    EEXIST mkdir $T/file
    EEXIST excl $T/file
    EEXIST symlink x $T/file
    EEXIST link $T/file $T/dir
    ENOTEMPTY rmdir $T/full
    ENOTDIR open-r $T/file/x
    ENOTDIR listdir $T/file
    EISDIR open-w $T/dir
    EISDIR unlink $T/dir
    ENOTDIR rmdir $T/file
EOF
    # The shell's view of the same: messages and exit codes users see.
    cat "$T/missing" 2>/dev/null && fail "cat of a missing file succeeded"
    mkdir "$T/dir" 2>/dev/null && fail "mkdir of an existing directory succeeded"
    rmdir "$T/full" 2>/dev/null && fail "rmdir of a non-empty directory succeeded"
    return 0
}

c_eacces() {
    mkdir "$T/rootdir"
    chmod 755 "$T/rootdir"
    echo secret >"$T/rootdir/secret"
    chmod 600 "$T/rootdir/secret"
    echo public >"$T/rootdir/public"
    chmod 644 "$T/rootdir/public"
    as_user $USER_PY "$FSOPS" errnos <<EOF
    EACCES creat $T/rootdir/new
    EACCES mkdir $T/rootdir/newdir
    EACCES open-r $T/rootdir/secret
    EACCES open-w $T/rootdir/public
    EACCES unlink $T/rootdir/public
    EACCES rename $T/rootdir/public $T/rootdir/p2
    OK open-r $T/rootdir/public
    EPERM chmod $T/rootdir/public 666
    EPERM chown $T/rootdir/public $TEST_UID $TEST_UID
    EPERM utime $T/rootdir/public
    EACCES utime-now $T/rootdir/public
    EACCES truncate $T/rootdir/public 0
EOF
    chmod 700 "$T/rootdir"
    as_user $USER_PY "$FSOPS" errnos <<EOF
    EACCES stat $T/rootdir/public
    EACCES listdir $T/rootdir
EOF
    # The user's own directory: creates work, and what is created belongs to the user.
    mkdir "$T/userdir"
    chown "$TEST_UID:$TEST_UID" "$T/userdir"
    as_user sh -c "echo mine >'$T/userdir/f' && mkdir '$T/userdir/d' && ln -s f '$T/userdir/l'" >"$L/out" 2>&1 \
        || fail "the user could not create in the user's own directory: $(tail -n 1 "$L/out")"
    eq "$(stat -c %u:%g "$T/userdir/f" "$T/userdir/d" "$T/userdir/l" | tr '\n' ' ')" \
        "$TEST_UID:$TEST_UID $TEST_UID:$TEST_UID $TEST_UID:$TEST_UID " "owner of a file, a directory and a symlink the user created"
    ! srv || eq "$(stat -c %u:%g "$S/userdir/f")" "$TEST_UID:$TEST_UID" "server-side owner of the user's file"
    # A file the user made read-only: the owner cannot write it, root can. Writing through a
    # descriptor opened before a chmod 000 keeps working (the server must allow the owner's
    # writes to a file the owner has open, as local file systems do).
    as_user $USER_PY - "$T/userdir" <<'PY'
import os, sys
d = sys.argv[1]
os.chmod(os.path.join(d, "f"), 0o444)
try:
    os.open(os.path.join(d, "f"), os.O_WRONLY)
    sys.exit("the owner opened a mode 0444 file for writing")
except PermissionError:
    pass
fd = os.open(os.path.join(d, "g"), os.O_WRONLY | os.O_CREAT, 0o644)
os.fchmod(fd, 0o000)
try:
    os.write(fd, b"still writable\n")
    os.fsync(fd)
except OSError as e:
    sys.exit(f"a write to an open file after fchmod 000: {e}")
os.close(fd)
PY
    python3 "$FSOPS" errno OK open-w "$T/userdir/f"
    [ "$(cat "$T/userdir/g")" = "still writable" ] || fail "a write to an open file after chmod 000 was lost"
    # Sticky directory: others' files cannot be removed. Group access for the user's group.
    mkdir "$T/sticky"
    chmod 1777 "$T/sticky"
    echo r >"$T/sticky/roots"
    echo g >"$T/group"
    chgrp "$TEST_UID" "$T/group"
    chmod 640 "$T/group"
    as_user $USER_PY "$FSOPS" errnos <<EOF
    EPERM unlink $T/sticky/roots
    OK open-r $T/group
    EACCES open-w $T/group
EOF
}

c_root_squash() {
    [ -n "${SQUASH_MNT:-}" ] || { echo "skipped: no root_squash export mounted"; return 0; }
    d="$SQUASH_MNT/squash.$$"
    mkdir "$d" || fail "mkdir in the world-writable root_squash export failed"
    echo x >"$d/f"
    eq "$(stat -c %u:%g "$d/f")" 65534:65534 "owner of a file root created on a root_squash export"
    python3 "$FSOPS" errno EPERM chown "$d/f" 0 0
    rm -r "$d"
}

c_erofs() {
    [ -n "${RO_MNT:-}" ] || { echo "skipped: no read-only export mounted"; return 0; }
    [ -f "$RO_MNT/readme" ] || fail "the read-only export lacks its readme file"
    eq "$(cat "$RO_MNT/readme")" "read only" "reading from the read-only export"
    # Opening an existing file for writing (and truncate(2), which checks write permission
    # first) asks the server with ACCESS, and a read-only export grants no MODIFY: the Linux
    # client then says EACCES, as it does against knfsd. Operations on directories and
    # SETATTR go to the server as they are, and must come back as NFS3ERR_ROFS (EROFS).
    expect_errnos <<EOF
    EROFS creat $RO_MNT/new
    EROFS mkdir $RO_MNT/newdir
    EROFS|EACCES open-w $RO_MNT/readme
    EROFS unlink $RO_MNT/readme
    EROFS rmdir $RO_MNT/dir
    EROFS rename $RO_MNT/readme $RO_MNT/other
    EROFS chmod $RO_MNT/readme 600
    EROFS chown $RO_MNT/readme 1 1
    EROFS utime $RO_MNT/readme
    EROFS|EACCES truncate $RO_MNT/readme 0
    EROFS symlink x $RO_MNT/link
    EROFS link $RO_MNT/readme $RO_MNT/link
EOF
    eq "$(cat "$RO_MNT/readme")" "read only" "the file after the refused operations"
    ls "$RO_MNT/dir" >/dev/null || fail "listing a directory of the read-only export failed"
}

# --- running ---------------------------------------------------------------------------------

run_one() { # in a fresh shell: one check
    name=$1
    set -e
    T="$MNT/$RUNID/$name"
    S="${SRV:+$SRV/$RUNID/$name}"
    L="$LOCAL/$name"
    mkdir -p "$T" "$L"
    cd "$L"
    "c_$name"
    cd /
    rm -rf "$L"
}

if [ "${1:-}" = "--one" ]; then
    shift
    run_one "$@"
    exit 0
fi

VARIANT=${1:?usage: suite.sh VARIANT MNT [SRV]}
MNT=${2:?usage: suite.sh VARIANT MNT [SRV]}
SRV=${3:-}
RUNID="suite.$$"
LOCAL=$(mktemp -d "${TMPDIR:-/tmp}/suite-local.XXXXXX")
chmod 755 "$LOCAL"  # the non-root user's commands run from in here
export VARIANT MNT SRV RUNID LOCAL
[ -d "$MNT" ] || { echo "FAIL $VARIANT: setup: $MNT is not a directory"; exit 1; }
mkdir "$MNT/$RUNID" || { echo "FAIL $VARIANT: setup: cannot mkdir in $MNT"; exit 1; }

failed=0
for name in ${CHECKS:-$ALL_CHECKS}; do
    t0=$(now)
    out=$(timeout -k 10 "$CHECK_TIMEOUT" $SELF_SH "$SELF" --one "$name" 2>"$LOCAL/stderr")
    rc=$?
    grep '^TIME ' "$LOCAL/stderr" >&2
    dt=$(elapsed "$t0")
    if [ $rc = 0 ]; then
        note=$(printf '%s\n' "$out" | grep '^skipped' | head -n 1)
        echo "PASS $VARIANT: $name${note:+ ($note)}"
    else
        reason=$(printf '%s\n' "$out" | grep -v '^$' | tail -n 1)
        [ -n "$reason" ] || reason=$(grep -v -e '^$' -e '^TIME ' "$LOCAL/stderr" | tail -n 1)
        [ -n "$reason" ] || reason="exit status $rc"
        [ $rc = 124 ] || [ $rc = 137 ] && reason="timed out after ${CHECK_TIMEOUT}s; $reason"
        echo "FAIL $VARIANT: $name: $reason"
        failed=$((failed + 1))
    fi
    awk -v d="$dt" 'BEGIN { exit !(d > 5) }' && echo "TIME $VARIANT $name: ${dt}s" >&2
done
# Clean up on the server side when possible: faster, and it works whatever state the mount is
# in. KEEP_FILES=1 leaves what the checks made (for a caller that compares it with something).
rm -rf "$LOCAL"
if [ -z "${KEEP_FILES:-}" ]; then
    rm -rf "${SRV:-$MNT}/$RUNID" 2>/dev/null || echo "note: cleanup of ${SRV:-$MNT}/$RUNID failed" >&2
fi
[ $failed -le 125 ] || failed=125
exit $failed
