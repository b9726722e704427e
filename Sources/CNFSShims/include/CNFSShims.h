// Thin wrappers for Linux system calls and macros that Swift cannot call directly
// (variadic syscall(2), macros such as makedev, and struct fields behind arrays).
#ifndef CNFSSHIMS_H
#define CNFSSHIMS_H

#include <stdint.h>
#include <sys/types.h>
#include <dirent.h>

/// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: opens `path`
/// relative to `dirfd` without following any symlink and without leaving `dirfd`'s subtree.
/// Returns a file descriptor or -1 with errno set.
int cnfs_open_beneath(int dirfd, const char *path, int flags, mode_t mode);

/// Constants that glibc exposes only under _GNU_SOURCE.
static const int CNFS_O_PATH = 010000000;
static const long CNFS_UTIME_NOW = (1L << 30) - 1L;
static const long CNFS_UTIME_OMIT = (1L << 30) - 2L;

/// makedev(3), major(3), minor(3).
uint64_t cnfs_makedev(uint32_t major, uint32_t minor);
uint32_t cnfs_major(uint64_t dev);
uint32_t cnfs_minor(uint64_t dev);

/// syncfs(2): commit the file system holding `fd`.
int cnfs_syncfs(int fd);

/// The server's file id kept on the object itself (xattr "user.swiftnfs.id", on regular files
/// and directories: Linux keeps user.* attributes off symlinks and special files), so a copy
/// of the tree carries its identities. `dirfd` may be O_PATH.
/// Return 0, or -1 with errno set (ENODATA: no tag).
int cnfs_set_file_id(int dirfd, const char *name, uint64_t id);
int cnfs_get_file_id(int dirfd, const char *name, uint64_t *id);

/// pread(2) that takes only what the page cache holds: preadv2 with RWF_NOWAIT, which fails
/// with EAGAIN (or returns less) rather than wait for the disk. Returns bytes read or -1.
ssize_t cnfs_pread_nowait(int fd, void *buffer, size_t count, off_t offset);

/// Pointer to d_name of a dirent.
const char *cnfs_dirent_name(const struct dirent *entry);

/// Per-thread file-system credentials through raw system calls (glibc's wrappers change every
/// thread of the process). Return the previous value, as setfsuid(2) does.
int cnfs_thread_setfsuid(uint32_t uid);
int cnfs_thread_setfsgid(uint32_t gid);
/// The thread's fsuid and fsgid, as it last set them through the two functions above (no
/// system call once known).
uint32_t cnfs_thread_fsuid(void);
uint32_t cnfs_thread_fsgid(void);

/// Starts `path` with `argv` and `envp`: stdin from `in_fd`, stdout and stderr to `out_fd`, every
/// other descriptor closed, no signal blocked or handled, as the leader of a process group of
/// its own. posix_spawn with closefrom: no listing of /proc/self/fd, which Foundation's
/// `Process.run` reads past the end of (it crashed a process with over a thousand descriptors).
/// Returns 0 and the child's pid, or an errno value.
int cnfs_spawn(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, pid_t *pid);
/// Per-thread supplementary groups (raw setgroups(2)). Returns 0 or -1 with errno.
int cnfs_thread_setgroups(size_t count, const uint32_t *groups);

/// CRC-32C (Castagnoli) of `count` bytes, continuing from the register value `crc` (the
/// caller inverts before and after). Uses the SSE 4.2 crc32 instruction where there is one.
uint32_t cnfs_crc32c_update(uint32_t crc, const void *bytes, size_t count);

/// Runs `path` with `argv` (NULL-terminated), waits, and returns its exit status (128 + signal
/// if killed), or -1. The child gets SIGKILL if this process dies first.
int cnfs_run_tied(const char *path, char *const argv[]);

#endif
