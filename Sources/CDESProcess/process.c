#include "cdes_process.h"
#include <stdlib.h>  // defines __GLIBC__ on glibc (an #if before any libc header never sees it)
#if defined(__GLIBC__)
#include <malloc.h>

void cdes_limit_arenas(void) { mallopt(M_ARENA_MAX, 2); }

// At load, before main and so before any thread: glibc fixes its arena limit when the first
// extra arena is made, so a call from Swift code would come too late.
__attribute__((constructor)) static void cdes_limit_arenas_at_load(void) { cdes_limit_arenas(); }
#else
void cdes_limit_arenas(void) {}
#endif
