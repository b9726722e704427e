#define _GNU_SOURCE
#include "CNFSShims.h"
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <stdio.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>

int cnfs_open_beneath(int dirfd, const char *path, int flags, mode_t mode) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

ssize_t cnfs_pread_nowait(int fd, void *buffer, size_t count, off_t offset) {
    struct iovec iov = { .iov_base = buffer, .iov_len = count };
    return preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
}

uint64_t cnfs_makedev(uint32_t major, uint32_t minor) { return makedev(major, minor); }
uint32_t cnfs_major(uint64_t dev) { return major(dev); }
uint32_t cnfs_minor(uint64_t dev) { return minor(dev); }

const char *cnfs_dirent_name(const struct dirent *entry) { return entry->d_name; }

/* The fsuid and fsgid this thread set last (UINT32_MAX: not known yet, ask the kernel), so that
   reading them costs no system call: every change of a thread's file-system identity goes
   through the two functions below. (Each setfsuid/setfsgid makes the kernel copy and replace
   the thread's credentials, which is most of the cost of a GETATTR.) */
static __thread uint32_t thread_fsuid = UINT32_MAX, thread_fsgid = UINT32_MAX;

int cnfs_thread_setfsuid(uint32_t uid) {
    int previous = (int)syscall(SYS_setfsuid, uid);
    thread_fsuid = uid == UINT32_MAX ? (uint32_t)previous : uid;
    return previous;
}
int cnfs_thread_setfsgid(uint32_t gid) {
    int previous = (int)syscall(SYS_setfsgid, gid);
    thread_fsgid = gid == UINT32_MAX ? (uint32_t)previous : gid;
    return previous;
}
uint32_t cnfs_thread_fsuid(void) {
    return thread_fsuid != UINT32_MAX ? thread_fsuid : (uint32_t)cnfs_thread_setfsuid(UINT32_MAX);
}
uint32_t cnfs_thread_fsgid(void) {
    return thread_fsgid != UINT32_MAX ? thread_fsgid : (uint32_t)cnfs_thread_setfsgid(UINT32_MAX);
}
int cnfs_thread_setgroups(size_t count, const uint32_t *groups) {
    return (int)syscall(SYS_setgroups, count, groups);
}

int cnfs_syncfs(int fd) { return syncfs(fd); }

/* user.*, not trusted.*: trusted.* needs CAP_SYS_ADMIN, which the hardened unit does not give.
   NFSv3 clients cannot read or set extended attributes; symlinks cannot carry user.* ones. */
static const char *file_id_attribute = "user.swiftnfs.id";

static int proc_path(char *out, size_t size, int dirfd, const char *name) {
    int n = snprintf(out, size, "/proc/self/fd/%d/%s", dirfd, name);
    if (n < 0 || (size_t)n >= size) { errno = ENAMETOOLONG; return -1; }
    return 0;
}

int cnfs_set_file_id(int dirfd, const char *name, uint64_t id) {
    char path[4200];
    if (proc_path(path, sizeof path, dirfd, name) != 0) return -1;
    unsigned char v[8];
    for (int i = 0; i < 8; i++) v[i] = (unsigned char)(id >> (56 - 8 * i));
    return lsetxattr(path, file_id_attribute, v, sizeof v, 0);
}

int cnfs_get_file_id(int dirfd, const char *name, uint64_t *id) {
    char path[4200];
    if (proc_path(path, sizeof path, dirfd, name) != 0) return -1;
    unsigned char v[8];
    ssize_t n = lgetxattr(path, file_id_attribute, v, sizeof v);
    if (n < 0) return -1;
    if (n != 8) { errno = ENODATA; return -1; }
    uint64_t r = 0;
    for (int i = 0; i < 8; i++) r = (r << 8) | v[i];
    *id = r;
    return 0;
}

/* CRC-32C over `n` bytes, continuing from the register value `crc` (not inverted). With
   SSE 4.2 (every x86-64 CPU EC2 offers) the crc32 instruction does 8 bytes at a time;
   elsewhere a table does one byte at a time. */
static uint32_t crc32c_table[256];

static uint32_t crc32c_software(uint32_t crc, const unsigned char *p, size_t n) {
    if (crc32c_table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            crc32c_table[i] = c;
        }
    }
    while (n--) crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t cnfs_crc32c_update(uint32_t crc, const void *bytes, size_t count) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return crc32c_sse42(crc, bytes, count);
#endif
    return crc32c_software(crc, bytes, count);
}

/* Runs the program `path` with `argv` and waits for it. The child is killed (SIGKILL) when
   the calling thread's process dies, so a helper (a rebuild's cp) never outlives a server that
   was killed, to go on changing files under the next one. Returns the exit status, 128 + the
   signal that ended it, or -1 with errno. */
int cnfs_run_tied(const char *path, char *const argv[]) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127); /* the parent died before prctl */
        execv(path, argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

int cnfs_spawn(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    if (posix_spawn_file_actions_init(&actions) != 0) return errno;
    if (posix_spawnattr_init(&attributes) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return errno;
    }
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    int result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return result;
}
