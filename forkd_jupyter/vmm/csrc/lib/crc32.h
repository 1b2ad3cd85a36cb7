/* CRC-32 (IEEE 802.3, as zlib's crc32) for the on-disk formats. */
#ifndef CRC32_H
#define CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over n bytes; start with 0. fj_crc32(fj_crc32(0, a), b) is
 * the CRC of a followed by b. Any thread. */
uint32_t fj_crc32(uint32_t crc, const void *data, size_t n);

#endif
