/* Whole-file writes that never leave a half-written file: temp file, fsync, rename, dir fsync. */
#ifndef PST_ATOMICFILE_H
#define PST_ATOMICFILE_H

#include <stddef.h>

#include "common/err.h"

/* Writes all len bytes to fd, retrying short writes and EINTR. 0 on success, -1 (errno set). */
int pst_write_all(int fd, const void *data, size_t len);

/* Writes len bytes to path atomically. */
int pst_write_file_atomic(const char *path, const void *data, size_t len, pst_err_t *err);

/* Reads a whole file into a malloc'ed buffer (caller frees *data). Fails above max_len bytes. */
int pst_read_file(const char *path, size_t max_len, unsigned char **data, size_t *len,
                  pst_err_t *err);

/* Creates a directory and its parents (mkdir -p). */
int pst_mkdir_p(const char *path, pst_err_t *err);

#endif
