#include "cdes_process.h"
#if defined(__GLIBC__)
#include <malloc.h>
void cdes_bound_heap(void) { mallopt(M_MMAP_THRESHOLD, 256 * 1024); }
#else
void cdes_bound_heap(void) {}
#endif
