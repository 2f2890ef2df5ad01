// CRC-32C (Castagnoli) for the DES archive seal: hardware instructions where the
// processor has them (SSE4.2 on x86-64, the CRC extension on AArch64), a
// slicing-by-8 table otherwise. Same result either way.
#ifndef CDES_CHECKSUM_H
#define CDES_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/// Continues a CRC-32C over `length` bytes. Start with 0; the value returned is the
/// finished CRC (pre- and post-inversion are done inside), so calls chain:
/// des_crc32c(des_crc32c(0, a, n), b, m) == des_crc32c(0, a||b, n+m).
uint32_t des_crc32c(uint32_t crc, const void *data, size_t length);

/// The same with the table-driven code only (tests compare the two paths).
uint32_t des_crc32c_portable(uint32_t crc, const void *data, size_t length);

#endif
