/* Checksummed files: whole-file writes that end in a CRC trailer, and reads that refuse a file
 * whose bytes do not match it. Model, sparse model and ensemble files use them. */
#ifndef PST_FILESUM_H
#define PST_FILESUM_H

#include <stddef.h>

#include "common/err.h"

/* The trailer after the content: 4 bytes PST_FILESUM_MAGIC, then the little-endian CRC-32 (zlib)
 * of the content before the trailer. */
#define PST_FILESUM_MAGIC "PSUM"
#define PST_FILESUM_TRAILER 8

/* Writes data then its trailer to path atomically (common/atomicfile). */
int pst_filesum_write(const char *path, const void *data, size_t len, pst_err_t *err);

/* Reads path (at most max_len bytes of content), checks the trailer and gives the content without
 * it (caller frees *data; a NUL byte follows it). A file without the trailer, or whose CRC does
 * not match, is PST_EFORMAT with a message naming the file and what is wrong. */
int pst_filesum_read(const char *path, size_t max_len, unsigned char **data, size_t *len,
                     pst_err_t *err);

/* Checks the trailer of a whole file already in memory; *content_len: the bytes before it. */
int pst_filesum_check(const unsigned char *data, size_t len, const char *origin,
                      size_t *content_len, pst_err_t *err);

#endif
