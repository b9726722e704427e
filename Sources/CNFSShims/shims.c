#define _GNU_SOURCE
#include "CNFSShims.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int cnfs_open_beneath(int dirfd, const char *path, int flags, mode_t mode) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

uint64_t cnfs_makedev(uint32_t major, uint32_t minor) { return makedev(major, minor); }
uint32_t cnfs_major(uint64_t dev) { return major(dev); }
uint32_t cnfs_minor(uint64_t dev) { return minor(dev); }

const char *cnfs_dirent_name(const struct dirent *entry) { return entry->d_name; }

int cnfs_thread_setfsuid(uint32_t uid) { return (int)syscall(SYS_setfsuid, uid); }
int cnfs_thread_setfsgid(uint32_t gid) { return (int)syscall(SYS_setfsgid, gid); }
int cnfs_thread_setgroups(size_t count, const uint32_t *groups) {
    return (int)syscall(SYS_setgroups, count, groups);
}

int cnfs_syncfs(int fd) { return syncfs(fd); }
