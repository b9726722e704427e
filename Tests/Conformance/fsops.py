#!/usr/bin/env python3
"""System-call level helpers for suite.sh: the things a shell cannot say precisely.

Each subcommand exits 0 when what it checks holds and otherwise prints one line saying what
went wrong (that line becomes the FAIL reason) and exits 1. Data is a deterministic pattern
(seeded), so any offset can be checked without keeping a copy.

  errno NAME OP ARGS...         OP must fail with errno NAME ("OK" = must succeed; A|B: either)
  errnos                        lines of "NAME OP ARGS..." on stdin, all checked
  pattern SEED LEN              the pattern, to stdout
  writeat PATH OFF LEN SEED     pwrite the pattern at OFF (creating PATH)
  verifyat PATH OFF LEN SEED    the bytes at OFF are the pattern
  zeros PATH OFF LEN            the bytes at OFF are all zero
  size PATH N                   st_size is N
  sparse SERVERPATH             the server-side file uses less space than its size
  excl DIR                      O_EXCL create: mode, times, EEXIST on the second try
  unlink-open DIR               unlink of an open file
  mmap DIR [SERVERDIR]          mmap write (msync) and read
  fsync DIR SERVERDIR           fsync'ed data is on the server at once
  manifest DIR                  a line per entry: path, type, mode, uid, gid, size, mtime, digest
  concurrent DIR [SERVERDIR]    several processes writing at once
  statvfs DIR                   statvfs is sane and follows a write
  evict PATH...                 fsync and drop the client's cached pages of PATH
  trylock PATH fcntl|flock      one non-blocking exclusive lock: "granted" or the errno name
  lockhold PATH CTL             hold an exclusive fcntl lock from CTL/locked until CTL/release
  sqlite DB N                   insert N rows, one transaction each; print the row count
  rangelocks PATH               Connectathon-style byte-range lock cases between two processes
  mount2 SOURCE DIR TYPE DATA   mount(2) as Docker's local volume driver calls it: "ok" or errno
  holder DIR CTL                restart test: see harness.sh
  haholder DIR CTL              HA failovers (ha.sh): held files used after each, the outage timed
  getdents DIR                  read DIR with one getdents64 call into a 64 MiB buffer

Several subcommands can run in one process, separated by "--".
"""
import errno
import hashlib
import mmap
import os
import random
import stat
import sys
import time

CHUNK = 1 << 20


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def pattern(seed, off, n):
    """Bytes [off, off+n) of the pattern for seed: 64 KiB blocks, each from its own seed."""
    out = bytearray()
    blk = 1 << 16
    pos = off
    end = off + n
    while pos < end:
        b = pos // blk
        data = random.Random(f"{seed}:{b}").randbytes(blk)
        lo = pos - b * blk
        hi = min(blk, end - b * blk)
        out += data[lo:hi]
        pos = b * blk + hi
    return bytes(out)


def pread_all(fd, off, n):
    out = bytearray()
    while len(out) < n:
        b = os.pread(fd, min(CHUNK, n - len(out)), off + len(out))
        if not b:
            break
        out += b
    return bytes(out)


def pwrite_all(fd, data, off):
    view = memoryview(data)
    while view:
        k = os.pwrite(fd, view[:CHUNK], off)
        view = view[k:]
        off += k


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return min(len(a), len(b))


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            os.fsync(fd)
        except OSError:
            pass
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# --- errno -------------------------------------------------------------------------------------

def _open(path, flags, mode=0o644):
    os.close(os.open(path, flags, mode))


OPS = {
    "stat": lambda p: os.stat(p),
    "lstat": lambda p: os.lstat(p),
    "open-r": lambda p: _open(p, os.O_RDONLY),
    "open-w": lambda p: _open(p, os.O_WRONLY),
    "open-rw": lambda p: _open(p, os.O_RDWR),
    "open-trunc": lambda p: _open(p, os.O_WRONLY | os.O_TRUNC),
    "creat": lambda p: _open(p, os.O_WRONLY | os.O_CREAT),
    "excl": lambda p: _open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
    "mkdir": lambda p: os.mkdir(p),
    "rmdir": lambda p: os.rmdir(p),
    "unlink": lambda p: os.unlink(p),
    "rename": lambda a, b: os.rename(a, b),
    "link": lambda a, b: os.link(a, b),
    "symlink": lambda t, p: os.symlink(t, p),
    "readlink": lambda p: os.readlink(p),
    "chmod": lambda p, m: os.chmod(p, int(m, 8)),
    "chown": lambda p, u, g: os.chown(p, int(u), int(g)),
    "lchown": lambda p, u, g: os.lchown(p, int(u), int(g)),
    "utime": lambda p: os.utime(p, (1000000000, 1000000000)),
    "utime-now": lambda p: os.utime(p, None),
    "truncate": lambda p, n: os.truncate(p, int(n)),
    "listdir": lambda p: os.listdir(p),
    "mkfifo": lambda p: os.mkfifo(p),
    "chdir": lambda p: os.chdir(p),
}


def cmd_errno(want, op, *args):
    """WANT is an errno name, "OK", or alternatives separated by '|'."""
    wants = want.split("|")
    try:
        OPS[op](*args)
    except OSError as e:
        got = errno.errorcode.get(e.errno, str(e.errno))
        check(got in wants, f"{op} {' '.join(args)}: expected {want}, got {got}")
        return
    check("OK" in wants, f"{op} {' '.join(args)}: expected {want}, but it succeeded")


def cmd_errnos():
    """Lines of "WANT OP ARGS..." on stdin (whitespace-separated); reports every mismatch."""
    bad = []
    for line in sys.stdin:
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            cmd_errno(*words)
        except Fail as e:
            bad.append(str(e))
    check(not bad, "; ".join(bad))


# --- data --------------------------------------------------------------------------------------

def cmd_pattern(seed, n):
    n = int(n)
    out = sys.stdout.buffer
    off = 0
    while off < n:
        k = min(CHUNK, n - off)
        out.write(pattern(seed, off, k))
        off += k


def cmd_writeat(path, off, n, seed):
    off, n = int(off), int(n)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        pos = 0
        while pos < n:
            k = min(CHUNK, n - pos)
            pwrite_all(fd, pattern(seed, off + pos, k), off + pos)
            pos += k
    finally:
        os.close(fd)


def cmd_verifyat(path, off, n, seed):
    off, n = int(off), int(n)
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < n:
            k = min(CHUNK, n - pos)
            got = pread_all(fd, off + pos, k)
            want = pattern(seed, off + pos, k)
            if got != want:
                i = first_diff(got, want)
                raise Fail(f"{path}: wrong data at offset {off + pos + i} (read {len(got)} of {k} bytes)")
            pos += k
    finally:
        os.close(fd)


def cmd_zeros(path, off, n):
    off, n = int(off), int(n)
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < n:
            k = min(CHUNK, n - pos)
            got = pread_all(fd, off + pos, k)
            check(len(got) == k, f"{path}: short read at {off + pos}: {len(got)} of {k}")
            if got.count(0) != k:
                i = next(j for j, c in enumerate(got) if c)
                raise Fail(f"{path}: non-zero byte in a hole at offset {off + pos + i}")
            pos += k
    finally:
        os.close(fd)


def cmd_size(path, n):
    st = os.stat(path)
    check(st.st_size == int(n), f"{path}: size {st.st_size}, expected {n}")


def cmd_sparse(path):
    st = os.stat(path)
    check(st.st_blocks * 512 < st.st_size // 2,
          f"{path}: server-side file of {st.st_size} bytes uses {st.st_blocks * 512} bytes: holes were filled")


# --- O_EXCL ------------------------------------------------------------------------------------

def cmd_excl(d):
    os.umask(0)
    p = os.path.join(d, "excl")
    t0 = time.time()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.write(fd, b"excl\n")
    os.close(fd)
    st = os.stat(p)
    check(stat.S_IMODE(st.st_mode) == 0o640, f"O_EXCL create with mode 0640 gave {oct(stat.S_IMODE(st.st_mode))}")
    check(st.st_size == 5, f"size {st.st_size} after writing 5 bytes")
    # NFSv3 exclusive create keeps the verifier in the times until the client's SETATTR.
    for name in ("st_mtime", "st_atime"):
        v = getattr(st, name)
        check(abs(v - t0) < 300, f"{name} after an O_EXCL create is {v}, now is {t0:.0f} (the create verifier left in the times?)")
    check(st.st_uid == os.geteuid(), f"owner {st.st_uid}, expected {os.geteuid()}")
    try:
        os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        pass
    else:
        raise Fail("second O_EXCL create of the same name succeeded")
    os.symlink("nowhere", os.path.join(d, "excl-link"))
    try:
        os.open(os.path.join(d, "excl-link"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        pass
    else:
        raise Fail("O_EXCL create over a dangling symlink succeeded")
    # Many exclusive creates in a row: each must succeed exactly once.
    for i in range(50):
        fd = os.open(os.path.join(d, f"x{i}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    names = sorted(n for n in os.listdir(d) if n.startswith("x"))
    check(len(names) == 50, f"{len(names)} of 50 exclusively created files listed")


# --- unlink of an open file --------------------------------------------------------------------

def cmd_unlink_open(d):
    p = os.path.join(d, "victim")
    data = pattern("unlink", 0, 200000)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        pwrite_all(fd, data, 0)
        os.fsync(fd)
        os.unlink(p)
        try:
            os.stat(p)
            raise Fail("stat of the unlinked name succeeded")
        except FileNotFoundError:
            pass
        check("victim" not in os.listdir(d), "the unlinked name is still listed")
        st = os.fstat(fd)
        check(st.st_size == len(data), f"fstat of the open unlinked file: size {st.st_size}")
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        got = pread_all(fd, 0, len(data))
        check(got == data, "reading the open unlinked file returned wrong data")
        pwrite_all(fd, b"more", len(data))
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        check(pread_all(fd, len(data), 4) == b"more", "write to the open unlinked file did not read back")
        # A new file may take the name while the old one is open.
        with open(p, "wb") as f:
            f.write(b"new")
        check(open(p, "rb").read() == b"new", "a new file under the unlinked name reads wrong")
    finally:
        os.close(fd)
    # The client's silly-renamed .nfsXXXX file goes away when the last descriptor closes.
    deadline = time.time() + 10
    while True:
        left = [n for n in os.listdir(d) if n.startswith(".nfs")]
        if not left:
            break
        if time.time() > deadline:
            raise Fail(f"silly-renamed file(s) {left} still there 10 s after the last close")
        time.sleep(0.2)


# --- mmap --------------------------------------------------------------------------------------

def cmd_mmap(d, sd=None):
    n = 3 * 4096 + 123
    p = os.path.join(d, "mapped")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, n)
    m = mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    data = pattern("mmap", 0, n)
    m[:] = data
    m.flush()
    m.close()
    os.fsync(fd)
    os.close(fd)
    evict(p)
    with open(p, "rb") as f:
        got = f.read()
    check(got == data, f"read() after mmap write differs at {first_diff(got, data)} (size {len(got)})")
    if sd:
        with open(os.path.join(sd, "mapped"), "rb") as f:
            srv = f.read()
        check(srv == data, f"server-side file after mmap write + msync differs at {first_diff(srv, data)}")
    # mmap read of a file written with write().
    q = os.path.join(d, "written")
    data2 = pattern("mmap2", 0, 5 * 4096 + 7)
    with open(q, "wb") as f:
        f.write(data2)
    evict(q)
    with open(q, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ)
        got = m[:]
        m.close()
    check(got == data2, "mmap read differs from what write() wrote")
    # A partial-page update through mmap of an existing file.
    fd = os.open(q, os.O_RDWR)
    m = mmap.mmap(fd, 0)
    m[4090:4100] = b"0123456789"
    m.flush()
    m.close()
    os.close(fd)
    evict(q)
    want = data2[:4090] + b"0123456789" + data2[4100:]
    with open(q, "rb") as f:
        got = f.read()
    check(got == want, f"mmap update across a page boundary: differs at {first_diff(got, want)}")


# --- fsync -------------------------------------------------------------------------------------

def cmd_fsync(d, sd):
    p, sp = os.path.join(d, "synced"), os.path.join(sd, "synced")
    data = pattern("fsync", 0, 3 * CHUNK + 17)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pwrite_all(fd, data, 0)
    os.fsync(fd)
    with open(sp, "rb") as f:
        srv = f.read()
    check(srv == data, f"after fsync the server-side file has {len(srv)} bytes, differing at {first_diff(srv, data)}")
    pwrite_all(fd, b"tail", len(data))
    os.fdatasync(fd)
    with open(sp, "rb") as f:
        srv = f.read()
    check(srv == data + b"tail", "after fdatasync the server-side file lacks the last write")
    os.close(fd)
    # O_SYNC writes are stable when write() returns.
    q, sq = os.path.join(d, "osync"), os.path.join(sd, "osync")
    fd = os.open(q, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_SYNC, 0o644)
    os.write(fd, b"x" * 10000)
    check(os.path.getsize(sq) == 10000, "an O_SYNC write is not on the server when write() returns")
    os.close(fd)


# --- manifest ----------------------------------------------------------------------------------

def cmd_manifest(root, *opts):
    no_dir_times = "--no-dir-times" in opts
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            extra = ""
            mtime = st.st_mtime_ns
            if stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for b in iter(lambda: f.read(CHUNK), b""):
                        h.update(b)
                extra = h.hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = "-> " + os.readlink(p)
                mtime = 0  # utimes on symlinks: not what this compares
            elif stat.S_ISDIR(st.st_mode) and no_dir_times:
                mtime = 0
            size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
            lines.append(f"{rel}\t{kind:o}\t{stat.S_IMODE(st.st_mode):o}\t{st.st_uid}\t{st.st_gid}\t{size}\t{mtime}\t{extra}")
    sys.stdout.write("".join(l + "\n" for l in lines))


# --- concurrent writers ------------------------------------------------------------------------

def cmd_concurrent(d, sd=None):
    nproc, region = 4, 1 << 20
    shared = os.path.join(d, "shared")
    appendf = os.path.join(d, "appended")
    os.close(os.open(shared, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    pids = []
    for w in range(nproc):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                # Interleaved 64 KiB pwrites into this writer's own region of one shared file.
                fd = os.open(shared, os.O_WRONLY)
                data = pattern(f"conc{w}", w * region, region)
                for off in range(0, region, 1 << 16):
                    os.pwrite(fd, data[off:off + (1 << 16)], w * region + off)
                os.fsync(fd)
                os.close(fd)
                # O_APPEND lines into one file.
                fd = os.open(appendf, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                for i in range(200):
                    os.write(fd, f"writer {w} line {i:04d}\n".encode())
                os.close(fd)
                # Creates of separate files in one directory.
                for i in range(40):
                    with open(os.path.join(d, f"w{w}-{i}"), "wb") as f:
                        f.write(f"{w}-{i}".encode())
            except BaseException as e:  # report and exit non-zero
                sys.stderr.write(f"writer {w}: {e}\n")
                code = 1
            os._exit(code)
        pids.append(pid)
    bad = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        bad += status != 0
    check(bad == 0, f"{bad} of {nproc} writers failed")
    for path in (shared, appendf):
        evict(path)
    for w in range(nproc):
        cmd_verifyat(shared, w * region, region, f"conc{w}")
    cmd_size(shared, nproc * region)
    with open(appendf) as f:
        lines = f.read().splitlines()
    check(len(lines) == nproc * 200, f"{len(lines)} appended lines, expected {nproc * 200}")
    check(sorted(lines) == sorted(f"writer {w} line {i:04d}" for w in range(nproc) for i in range(200)),
          "appended lines are garbled")
    for w in range(nproc):
        seen = [l for l in lines if l.startswith(f"writer {w} ")]
        check(seen == sorted(seen), f"writer {w}'s appended lines are out of order")
    names = [n for n in os.listdir(d) if n.startswith("w")]
    check(len(names) == nproc * 40, f"{len(names)} files created concurrently, expected {nproc * 40}")
    for w in range(nproc):
        for i in range(40):
            with open(os.path.join(d, f"w{w}-{i}"), "rb") as f:
                check(f.read() == f"{w}-{i}".encode(), f"w{w}-{i} has the wrong content")
    if sd:
        with open(os.path.join(sd, "shared"), "rb") as f:
            srv = f.read()
        want = b"".join(pattern(f"conc{w}", w * region, region) for w in range(nproc))
        check(srv == want, f"server-side shared file differs at {first_diff(srv, want)}")


# --- statvfs -----------------------------------------------------------------------------------

def cmd_statvfs(d):
    s = os.statvfs(d)
    check(s.f_blocks > 0 and s.f_bsize > 0, f"statvfs: {s}")
    check(0 < s.f_bavail <= s.f_bfree <= s.f_blocks, f"statvfs counts inconsistent: {s}")
    check(s.f_namemax >= 255, f"f_namemax {s.f_namemax}")
    before = s.f_bfree * s.f_frsize
    p = os.path.join(d, "space")
    n = 32 << 20
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for off in range(0, n, CHUNK):
        pwrite_all(fd, b"\xa5" * CHUNK, off)
    os.fsync(fd)
    os.close(fd)
    # The client caches FSSTAT results for a little while (acregmin..); poll.
    deadline = time.time() + 20
    while True:
        s = os.statvfs(d)
        used = before - s.f_bfree * s.f_frsize
        if used >= n // 2:
            break
        if time.time() > deadline:
            raise Fail(f"free space went down by {used} bytes after writing {n}")
        time.sleep(1)
    os.unlink(p)


# --- one big getdents ---------------------------------------------------------------------------

def cmd_getdents(d):
    """Reads a whole directory with getdents64 calls into a 64 MiB buffer: the Linux client
    then fills its cache for it with READDIRPLUS from offset 0 on (entries with their types),
    where readdir(3)'s 32 KiB calls get READDIR (no types: find would stat every entry)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(64 << 20)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while True:
            r = libc.syscall(217, fd, buf, len(buf))  # SYS_getdents64 on x86-64
            if r < 0:
                raise OSError(ctypes.get_errno(), "getdents64")
            if r == 0:
                break
    finally:
        os.close(fd)


# --- locking -----------------------------------------------------------------------------------

def cmd_trylock(path, kind):
    """One non-blocking lock of the whole file: KIND is fcntl (F_SETLK through lockf) or flock.
    Prints "granted" or the errno name; never waits (an alarm ends a call that does)."""
    import fcntl
    import signal
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    signal.signal(signal.SIGALRM, lambda *a: None)
    signal.alarm(60)
    try:
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("granted")
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
    finally:
        signal.alarm(0)
        os.close(fd)


def cmd_lockhold(path, ctl):
    """Takes an exclusive fcntl lock of the whole file (waiting for it), creates CTL/locked,
    holds it until CTL/release exists, then releases it and exits."""
    import fcntl
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    open(os.path.join(ctl, "locked"), "w").close()
    while not os.path.exists(os.path.join(ctl, "release")):
        time.sleep(0.2)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    os.close(fd)


def cmd_rangelocks(path):
    """Connectathon-style byte-range locks between two processes (a parent holds, a forked child
    tests and takes): F_GETLK reports the lock in the way with its kind and range, F_SETLK is
    refused where ranges overlap and granted where they do not, unlocking the middle of a lock
    splits it, a downgrade lets readers in, ranges past 4 GiB and to the end of the file.
    Prints one line per case; exits non-zero on the first that fails."""
    import fcntl
    import struct
    fmt = "hhqqi"  # struct flock on x86_64: l_type, l_whence, l_start, l_len, l_pid (+ padding)

    def setlk(fd, kind, start, length, wait=False):
        fcntl.fcntl(fd, fcntl.F_SETLKW if wait else fcntl.F_SETLK, struct.pack(fmt, kind, 0, start, length, 0) + b"\0" * 4)

    def getlk(fd, kind, start, length):
        out = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, kind, 0, start, length, 0) + b"\0" * 4)
        t, _, s, n, _ = struct.unpack(fmt, out[:struct.calcsize(fmt)])
        return None if t == fcntl.F_UNLCK else ("W" if t == fcntl.F_WRLCK else "R", s, n)

    def refused(fd, kind, start, length):
        try:
            setlk(fd, kind, start, length)
        except OSError as e:
            return e.errno in (errno.EAGAIN, errno.EACCES)
        setlk(fd, fcntl.F_UNLCK, start, length)
        return False

    W, R, U = fcntl.F_WRLCK, fcntl.F_RDLCK, fcntl.F_UNLCK
    G = 1 << 32
    # Each step: what the parent does first, then what the child checks.
    steps = [
        ("write lock of the whole file", lambda fd: setlk(fd, W, 0, 0),
         lambda fd: check(getlk(fd, W, 10, 1) == ("W", 0, 0) and refused(fd, R, 0, 1), f"got {getlk(fd, W, 10, 1)}")),
        ("unlock [100, 200): a hole in the middle", lambda fd: setlk(fd, U, 100, 100),
         lambda fd: check(getlk(fd, W, 100, 100) is None and getlk(fd, W, 99, 2) == ("W", 0, 100)
                          and getlk(fd, W, 199, 2) == ("W", 200, 0) and not refused(fd, W, 120, 10),
                          f"got {getlk(fd, W, 99, 2)} {getlk(fd, W, 199, 2)}")),
        ("downgrade [0, 100) to a read lock", lambda fd: setlk(fd, R, 0, 100),
         lambda fd: check(not refused(fd, R, 50, 10) and refused(fd, W, 50, 10) and getlk(fd, W, 0, 1) == ("R", 0, 100),
                          f"got {getlk(fd, W, 0, 1)}")),
        ("beyond 4 GiB", lambda fd: (setlk(fd, U, 0, 0), setlk(fd, W, 5 * G, 0)),
         lambda fd: check(getlk(fd, W, 4 * G, G) is None and getlk(fd, R, 7 * G, 1) == ("W", 5 * G, 0)
                          and not refused(fd, W, 4 * G, G) and refused(fd, R, 6 * G, 1), f"got {getlk(fd, R, 7 * G, 1)}")),
        ("unlock everything", lambda fd: setlk(fd, U, 0, 0),
         lambda fd: check(getlk(fd, W, 0, 0) is None and not refused(fd, W, 0, 0), f"got {getlk(fd, W, 0, 0)}")),
    ]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    for name, parent, child in steps:
        parent(fd)
        pid = os.fork()
        if pid == 0:
            cfd = os.open(path, os.O_RDWR)
            try:
                child(cfd)
                os._exit(0)
            except Fail as e:
                print(f"{name}: {e}", flush=True)
                os._exit(1)
            except OSError as e:
                print(f"{name}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        check(status == 0, f"case failed: {name}")
        print(f"ok {name}", flush=True)
    os.close(fd)


def cmd_mount2(source, target, fstype, data):
    """mount(2) itself, as Docker's local volume driver calls it (no mount.nfs): prints "ok" or
    the errno name."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode()) == 0:
        print("ok")
    else:
        print(errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())))


def cmd_sqlite(db, n):
    """N rows inserted one transaction each into DB (SQLite locks the file with fcntl), then
    counted: prints the count."""
    import sqlite3
    c = sqlite3.connect(db, timeout=60)
    c.execute("create table if not exists t(x)")
    for i in range(int(n)):
        c.execute("insert into t values(?)", (i,))
        c.commit()
    print(c.execute("select count(*) from t").fetchone()[0])
    c.close()


# --- restart and failover under a live mount ---------------------------------------------------

class Held:
    """What a process holds across a server going away (a restart, an HA failover): a file
    written and fsynced and kept open for writing, one written with O_SYNC and kept open, one
    open for reading, and a directory with entries, open and the current directory."""

    def __init__(self, d):
        self.sub = os.path.join(d, "held-dir")
        os.mkdir(self.sub)
        for i in range(20):
            with open(os.path.join(self.sub, f"e{i}"), "w") as f:
                f.write(str(i))
        fb = os.path.join(d, "held-read")
        self.data_b = pattern("held-b", 0, 300000)
        with open(fb, "wb") as f:
            f.write(self.data_b)
        self.rfd = os.open(fb, os.O_RDONLY)
        self.wfd = os.open(os.path.join(d, "held-write"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self.data_a = pattern("held-a", 0, 2 * CHUNK)
        pwrite_all(self.wfd, self.data_a, 0)
        os.fsync(self.wfd)
        self.sfd = os.open(os.path.join(d, "held-osync"), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_SYNC, 0o644)
        self.data_s = pattern("held-s", 0, 256 << 10)
        pwrite_all(self.sfd, self.data_s, 0)
        self.dfd = os.open(self.sub, os.O_RDONLY | os.O_DIRECTORY)
        self.fb = fb
        os.stat(fb)
        os.stat(os.path.join(self.sub, "e3"))
        self.cwd = os.getcwd()
        os.chdir(self.sub)

    def use(self, n=1):
        """Uses everything held, without reopening; round n creates, renames and unlinks names
        of its own. Returns the errors, one string each ("what: ERRNO")."""
        errors = []

        def step(what, fn):
            try:
                return fn()
            except OSError as e:
                errors.append(f"{what}: {errno.errorcode.get(e.errno, e.errno)}")
            except Fail as e:
                errors.append(f"{what}: {e}")

        step("fstat of the open file", lambda: os.fstat(self.wfd))
        step("stat of a looked-up file", lambda: os.stat(self.fb))
        step("stat of the current directory", lambda: os.stat("."))
        step("relative open in the current directory", lambda: open("e3").read())
        step("readdir of a held directory fd", lambda: os.listdir(self.dfd))

        def read_back(fd, want, what):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            got = pread_all(fd, 0, len(want))
            check(got == want, f"{what} differs at {first_diff(got, want)} ({len(got)} bytes)")
        step("read through a descriptor opened before", lambda: read_back(self.rfd, self.data_b, "data"))
        step("fsynced data read back through the held descriptor", lambda: read_back(self.wfd, self.data_a, "fsynced data"))
        step("O_SYNC data read back through the held descriptor", lambda: read_back(self.sfd, self.data_s, "O_SYNC data"))

        def write_more():
            pwrite_all(self.wfd, b"after restart", len(self.data_a))
            os.fsync(self.wfd)
            pwrite_all(self.sfd, b"after restart", len(self.data_s))
        step("write + fsync and O_SYNC writes through the held descriptors", write_more)
        new = "new" if n == 1 else f"new{n}"
        step("create in a held directory", lambda: open(os.path.join(self.sub, new), "w").write(new))
        step("rename in a held directory",
             lambda: os.rename(os.path.join(self.sub, f"e{2 * n - 1}"), os.path.join(self.sub, f"e{2 * n - 1}-renamed")))
        step("unlink in a held directory", lambda: os.unlink(os.path.join(self.sub, f"e{2 * n}")))
        return errors

    def close(self):
        os.close(self.rfd)
        os.close(self.sfd)
        os.close(self.dfd)
        os.chdir(self.cwd)
        os.close(self.wfd)


def await_file(path, what):
    deadline = time.time() + 900
    while not os.path.exists(path):
        check(time.time() < deadline, f"the harness never said {what}")
        time.sleep(0.02)


def cmd_holder(d, ctl):
    """Hold files across a server restart. Phase 1 writes, fsyncs and looks things up, then
    creates CTL/ready and waits for CTL/go (the harness kills and restarts the server meanwhile);
    phase 2 uses everything it held, without reopening."""
    held = Held(d)
    open(os.path.join(ctl, "ready"), "w").close()
    await_file(os.path.join(ctl, "go"), "go")
    errors = held.use()
    try:
        held.close()
    except OSError as e:
        errors.append(f"close: {errno.errorcode.get(e.errno, e.errno)}")
    check(not errors, "; ".join(errors))


def cmd_haholder(d, ctl):
    """Hold files across HA failovers. Sets up as holder does (in DIR, made here), creates
    CTL/ready; then for each CTL/go.N (N = 1, 2, ...; it holds the time the failover began,
    CLOCK_REALTIME seconds): at once a write + fsync through a held descriptor, retried until it
    succeeds, and the seconds from the failover's start to that success into CTL/outage.N; then
    everything held is used (`Held.use`), and CTL/done.N gets the errors (empty: none). Ends at
    CTL/stop, closing everything (an error there fails)."""
    os.mkdir(d)
    held = Held(d)
    open(os.path.join(ctl, "ready"), "w").close()
    n = 1
    while True:
        go = os.path.join(ctl, f"go.{n}")
        while not os.path.exists(go):
            if os.path.exists(os.path.join(ctl, "stop")):
                held.close()
                return
            time.sleep(0.02)
        began = float(open(go).read())
        errors = []
        while True:
            try:
                os.pwrite(held.wfd, b"probe", len(held.data_a) + 64)
                os.fsync(held.wfd)
                break
            except OSError as e:
                errors.append(f"write + fsync while failing over: {errno.errorcode.get(e.errno, e.errno)}")
                check(time.time() < began + 600, "; ".join(errors[:6]))
                time.sleep(0.1)
        with open(os.path.join(ctl, f"outage.{n}"), "w") as f:
            f.write(f"{time.time() - began:.1f}")
        errors += held.use(n)
        with open(os.path.join(ctl, f"done.{n}.tmp"), "w") as f:
            f.write("; ".join(errors[:6]))
        os.rename(os.path.join(ctl, f"done.{n}.tmp"), os.path.join(ctl, f"done.{n}"))
        n += 1


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    # Several subcommands in one process (python starts slowly under emulation): A ... -- B ...
    argv, steps = sys.argv[1:], [[]]
    for a in argv:
        if a == "--":
            steps.append([])
        else:
            steps[-1].append(a)
    for step in steps:
        if step:
            run(step[0], step[1:])


def run(cmd, args):
    fn = {
        "errno": cmd_errno, "errnos": cmd_errnos, "pattern": cmd_pattern, "writeat": cmd_writeat, "verifyat": cmd_verifyat,
        "zeros": cmd_zeros, "size": cmd_size, "sparse": cmd_sparse, "excl": cmd_excl,
        "unlink-open": cmd_unlink_open, "mmap": cmd_mmap, "fsync": cmd_fsync,
        "manifest": cmd_manifest, "concurrent": cmd_concurrent, "statvfs": cmd_statvfs,
        "evict": lambda *ps: [evict(p) for p in ps], "trylock": cmd_trylock, "lockhold": cmd_lockhold, "sqlite": cmd_sqlite, "mount2": cmd_mount2, "rangelocks": cmd_rangelocks, "holder": cmd_holder, "haholder": cmd_haholder,
        "getdents": cmd_getdents,
    }.get(cmd)
    if fn is None:
        sys.exit(f"unknown subcommand {cmd}")
    try:
        fn(*args)
    except Fail as e:
        print(e)
        sys.exit(1)
    except OSError as e:
        print(f"{cmd}: unexpected error: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
