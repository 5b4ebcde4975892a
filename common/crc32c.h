/* CRC-32C (Castagnoli): the checksum of TFRecord framing (TensorBoard event files). */
#ifndef PST_CRC32C_H
#define PST_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over len bytes: pst_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t pst_crc32c(uint32_t crc, const void *data, size_t len);

/* The masked form TFRecord stores: a checksum of bytes that themselves hold checksums would
 * otherwise be degenerate, so the CRC is rotated right by 15 bits and offset by 0xa282ead8. */
uint32_t pst_crc32c_mask(uint32_t crc);
uint32_t pst_crc32c_unmask(uint32_t masked);

#endif
