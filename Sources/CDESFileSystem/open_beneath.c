#define _GNU_SOURCE
#include "cdes_filesystem.h"

#include <errno.h>
#include <fcntl.h>

#if defined(__linux__)
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <string.h>

int cdes_open_beneath(int dirfd, const char *path) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (the caller fstat()s the
       descriptor, refuses anything but a regular file, and clears O_NONBLOCK for the read). */
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd;
    int tries = 0;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 8);
    return (int)fd;
#else
    (void)dirfd; (void)path;
    errno = ENOSYS;
    return -1;
#endif
}

int cdes_unlink_beneath(int dirfd, const char *path) {
#ifdef SYS_openat2
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (base[0] == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        errno = EINVAL;
        return -1;
    }
    int parent = dirfd;
    int opened = -1;
    if (slash) {
        size_t n = (size_t)(slash - path);
        char dir[4096];
        if (n == 0 || n >= sizeof dir) {
            errno = n == 0 ? EXDEV : ENAMETOOLONG;
            return -1;
        }
        memcpy(dir, path, n);
        dir[n] = 0;
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        long fd;
        int tries = 0;
        do {
            fd = syscall(SYS_openat2, dirfd, dir, &how, sizeof how);
        } while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 8);
        if (fd < 0) return -1;
        opened = (int)fd;
        parent = opened;
    }
    int result = unlinkat(parent, base, 0);
    int saved = errno;
    if (opened >= 0) close(opened);
    errno = saved;
    return result;
#else
    (void)dirfd; (void)path;
    errno = ENOSYS;
    return -1;
#endif
}

int cdes_open_no_symlinks(const char *path) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd;
    int tries = 0;
    do {
        fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 8);
    return (int)fd;
#else
    (void)path;
    errno = ENOSYS;
    return -1;
#endif
}
#else
int cdes_open_no_symlinks(const char *path) {
    (void)path;
    errno = ENOSYS;
    return -1;
}
int cdes_unlink_beneath(int dirfd, const char *path) {
    (void)dirfd; (void)path;
    errno = ENOSYS;
    return -1;
}
int cdes_open_beneath(int dirfd, const char *path) {
    (void)dirfd; (void)path;
    errno = ENOSYS;
    return -1;
}
#endif
