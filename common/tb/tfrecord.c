/* TFRecord framing: building, appending and checking records. */
#include "common/tb/tfrecord.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/crc32c.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void pst_tfrecord_header(uint8_t out[PST_TFRECORD_HEADER], uint64_t len)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(len >> (8 * i));
    put_u32(out + 8, pst_crc32c_mask(pst_crc32c(0, out, 8)));
}

void pst_tfrecord_footer(uint8_t out[PST_TFRECORD_FOOTER], const void *data, size_t len)
{
    put_u32(out, pst_crc32c_mask(pst_crc32c(0, data, len)));
}

int pst_tfrecord_write(int fd, const void *data, size_t len, pst_err_t *err)
{
    size_t total = PST_TFRECORD_HEADER + len + PST_TFRECORD_FOOTER;
    uint8_t *rec = malloc(total);
    if (!rec)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    pst_tfrecord_header(rec, len);
    memcpy(rec + PST_TFRECORD_HEADER, data, len);
    pst_tfrecord_footer(rec + PST_TFRECORD_HEADER + len, data, len);
    int rc = pst_write_all(fd, rec, total) == 0
                 ? PST_OK
                 : pst_err_set(err, PST_EIO, "write failed: %s", strerror(errno));
    free(rec);
    return rc;
}

int pst_tfrecord_next(const uint8_t *buf, size_t size, size_t *off, const uint8_t **data,
                      size_t *len, pst_err_t *err)
{
    size_t at = *off;
    if (at == size)
        return PST_ENOTFOUND;
    if (size - at < PST_TFRECORD_HEADER)
        return pst_err_set(err, PST_EFORMAT, "offset %zu: truncated record header", at);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)buf[at + i] << (8 * i);
    if (get_u32(buf + at + 8) != pst_crc32c_mask(pst_crc32c(0, buf + at, 8)))
        return pst_err_set(err, PST_EFORMAT, "offset %zu: length checksum mismatch", at);
    size_t room = size - at - PST_TFRECORD_HEADER;
    if (room < PST_TFRECORD_FOOTER || n > room - PST_TFRECORD_FOOTER)
        return pst_err_set(err, PST_EFORMAT, "offset %zu: record of %llu bytes is truncated", at,
                           (unsigned long long)n);
    const uint8_t *body = buf + at + PST_TFRECORD_HEADER;
    if (get_u32(body + n) != pst_crc32c_mask(pst_crc32c(0, body, (size_t)n)))
        return pst_err_set(err, PST_EFORMAT, "offset %zu: data checksum mismatch", at);
    *data = body;
    *len = (size_t)n;
    *off = at + PST_TFRECORD_HEADER + (size_t)n + PST_TFRECORD_FOOTER;
    return PST_OK;
}
