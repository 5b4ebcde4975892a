/* TFRecord framing, the container of TensorBoard event files: each record is
 *   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
 *   length bytes of data         | uint32 masked CRC-32C of the data. */
#ifndef PST_TB_TFRECORD_H
#define PST_TB_TFRECORD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PST_TFRECORD_HEADER 12
#define PST_TFRECORD_FOOTER 4

/* The 12 header bytes of a record of len bytes. */
void pst_tfrecord_header(uint8_t out[PST_TFRECORD_HEADER], uint64_t len);
/* The 4 footer bytes of a record holding data. */
void pst_tfrecord_footer(uint8_t out[PST_TFRECORD_FOOTER], const void *data, size_t len);

/* Frames data and appends the record to fd in one write, so a reader never sees a record's
 * header without its body unless the write itself fails part way. */
int pst_tfrecord_write(int fd, const void *data, size_t len, pst_err_t *err);

/* Reads the record at buf[*off] (size bytes in all): *data and *len point into buf and *off moves
 * past it. Returns PST_OK, PST_ENOTFOUND at the clean end (*off == size), PST_EFORMAT for a
 * truncated record or a checksum that does not match (message names the offset). */
int pst_tfrecord_next(const uint8_t *buf, size_t size, size_t *off, const uint8_t **data,
                      size_t *len, pst_err_t *err);

#endif
