/* Checksummed files: a CRC-32 trailer written after the content and checked before it is used. */
#include "common/filesum.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/atomicfile.h"

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int pst_filesum_write(const char *path, const void *data, size_t len, pst_err_t *err)
{
    unsigned char trailer[PST_FILESUM_TRAILER];
    memcpy(trailer, PST_FILESUM_MAGIC, 4);
    put_le32(trailer + 4, (uint32_t)crc32_z(0L, data, len));
    pst_atomic_writer_t *w;
    int rc = pst_atomic_writer_open(path, 1, &w, err); /* one byte: data goes straight through */
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(w, data, len, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(w, trailer, sizeof trailer, err);
    if (rc == PST_OK)
        return pst_atomic_writer_commit(&w, err);
    pst_atomic_writer_destroy(&w);
    return rc;
}

int pst_filesum_check(const unsigned char *data, size_t len, const char *origin,
                      size_t *content_len, pst_err_t *err)
{
    if (len < PST_FILESUM_TRAILER ||
        memcmp(data + len - PST_FILESUM_TRAILER, PST_FILESUM_MAGIC, 4) != 0)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: not a pstrain model file, or a damaged one (no checksum trailer)",
                           origin);
    size_t n = len - PST_FILESUM_TRAILER;
    uint32_t stored = get_le32(data + n + 4), actual = (uint32_t)crc32_z(0L, data, n);
    if (stored != actual)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: checksum mismatch (CRC-32 %08x, the file says %08x): the file is "
                           "corrupt",
                           origin, actual, stored);
    *content_len = n;
    return PST_OK;
}

int pst_filesum_read(const char *path, size_t max_len, unsigned char **data, size_t *len,
                     pst_err_t *err)
{
    int rc = pst_read_file(path, max_len + PST_FILESUM_TRAILER, data, len, err);
    if (rc != PST_OK)
        return rc;
    size_t content = 0;
    rc = pst_filesum_check(*data, *len, path, &content, err);
    if (rc != PST_OK) {
        free(*data);
        *data = NULL;
        *len = 0;
        return rc;
    }
    (*data)[content] = '\0';
    *len = content;
    return PST_OK;
}
