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
#else
int cdes_open_beneath(int dirfd, const char *path) {
    (void)dirfd; (void)path;
    errno = ENOSYS;
    return -1;
}
#endif
