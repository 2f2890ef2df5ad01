#define _GNU_SOURCE
#include "cdes_filesystem.h"

#include <errno.h>
#include <sys/uio.h>

long cdes_pread_cached(int fd, void *buffer, unsigned long count, long long offset) {
#if defined(__linux__) && defined(RWF_NOWAIT)
    struct iovec iov = { .iov_base = buffer, .iov_len = count };
    return (long)preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
#else
    (void)fd; (void)buffer; (void)count; (void)offset;
    errno = ENOSYS;
    return -1;
#endif
}
