#ifndef CDES_FILESYSTEM_H
#define CDES_FILESYSTEM_H

/// Opens `path` (relative) read-only beneath the directory `dirfd`, refusing any
/// resolution that leaves it (`..` above it, an absolute symbolic link, a link
/// pointing outside): Linux openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS.
/// The descriptor is opened O_NONBLOCK, so that a FIFO at `path` does not block the open
/// (the caller checks the file's kind with fstat and clears O_NONBLOCK before reading).
///
/// Returns a file descriptor, or -1 with errno set: EXDEV when the path escapes,
/// ENOSYS (or EPERM under some sandboxes) when the kernel lacks openat2, in which
/// case the caller falls back to resolving the path itself.
int cdes_open_beneath(int dirfd, const char *path);

/// Removes the directory entry `path` (relative) beneath `dirfd`: its directory is opened
/// with openat2(2) RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS (so no link or `..` leads outside),
/// then the last component is unlinked there — a symbolic link itself, never what it points at.
/// Returns 0, or -1 with errno: EXDEV when the path escapes, ENOENT when it is gone, ENOSYS or
/// EPERM when the kernel lacks openat2 (the caller then checks the path itself).
int cdes_unlink_beneath(int dirfd, const char *path);

/// Opens the absolute `path` read-only (O_NONBLOCK, as cdes_open_beneath) refusing any symbolic
/// link on the way: openat2(2) with RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS. For a path
/// resolved and checked a moment before, so that a link swapped in since is not followed.
/// Returns a descriptor, or -1 with errno (ELOOP for a link; ENOSYS or EPERM without openat2).
int cdes_open_no_symlinks(const char *path);

/// Reads up to `count` bytes at `offset` of `fd` only if they are in the page cache:
/// Linux preadv2(2) with RWF_NOWAIT. Returns the bytes read (possibly fewer than asked when
/// only part is cached), or -1 with errno: EAGAIN when the first byte would wait for the
/// device, EOPNOTSUPP or ENOSYS where the file system or kernel cannot tell (the caller then
/// reads on a thread that may block).
long cdes_pread_cached(int fd, void *buffer, unsigned long count, long long offset);

#endif
