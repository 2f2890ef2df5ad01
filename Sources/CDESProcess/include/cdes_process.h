#ifndef CDES_PROCESS_H
#define CDES_PROCESS_H
/// Keeps glibc to two malloc arenas. glibc otherwise gives each new thread (one per database
/// connection, per S3 handle, the Swift runtime's own) an arena of its own, up to eight per
/// core, and each keeps what it once held: the packer's memory grew with the length of its run
/// (peak RSS 1.17x from 50,000 to 200,000 files; 1.05x with two arenas, at the same speed).
/// Runs by itself when the module is loaded, before main; calling it again changes nothing.
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` in the environment leave glibc's own setting alone.
/// No effect elsewhere than glibc.
void cdes_limit_arenas(void);
#endif
