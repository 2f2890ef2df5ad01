#ifndef CDES_PROCESS_H
#define CDES_PROCESS_H
/// Fixes glibc's mmap threshold at 256 KiB, so that large buffers are mapped on their own and
/// returned to the system when freed (glibc otherwise raises the threshold after the first such
/// free, and a long-running process keeps a heap fragmented by them). No effect elsewhere.
void cdes_bound_heap(void);
#endif
