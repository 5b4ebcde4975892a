/* Atomic file writes (whole or streamed: temp file, fsync, rename, dir fsync), reads, mkdir -p. */
#ifndef PST_ATOMICFILE_H
#define PST_ATOMICFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Writes all len bytes to fd, retrying short writes and EINTR. 0 on success, -1 (errno set). */
int pst_write_all(int fd, const void *data, size_t len);

/* Writes len bytes to path atomically (through a pst_atomic_writer_t). */
int pst_write_file_atomic(const char *path, const void *data, size_t len, pst_err_t *err);

/* Reads a whole file into a malloc'ed buffer (caller frees *data), followed by a NUL byte that
 * *len does not count, so a text file can be read as a string. Fails above max_len bytes. */
int pst_read_file(const char *path, size_t max_len, unsigned char **data, size_t *len,
                  pst_err_t *err);

/* Creates a directory and its parents (mkdir -p). */
int pst_mkdir_p(const char *path, pst_err_t *err);

/* Atomic streaming writer: bytes go to PATH.tmp.XXXXXX (unique) and appear at PATH only on
 * commit (flush, fsync, rename, directory fsync), so a failure or crash never leaves half a file at
 * PATH. A crash may leave the temporary file behind. */

typedef struct pst_atomic_writer pst_atomic_writer_t;

/* Creates the temporary file; buffer_bytes is the write buffer (0 = 4 MiB). */
int pst_atomic_writer_open(const char *path, size_t buffer_bytes, pst_atomic_writer_t **out,
                           pst_err_t *err);
int pst_atomic_writer_write(pst_atomic_writer_t *w, const void *data, size_t len, pst_err_t *err);
/* Room for up to len bytes (len <= the buffer size) at *p; pst_atomic_writer_advance(w, used)
 * then appends the first `used` bytes written there. Lets callers format in place. */
int pst_atomic_writer_reserve(pst_atomic_writer_t *w, size_t len, char **p, pst_err_t *err);
void pst_atomic_writer_advance(pst_atomic_writer_t *w, size_t used);
/* Bytes appended so far. */
uint64_t pst_atomic_writer_offset(const pst_atomic_writer_t *w);
/* Overwrites len already-appended bytes at offset (a header completed at the end). */
int pst_atomic_writer_patch(pst_atomic_writer_t *w, uint64_t offset, const void *data, size_t len,
                            pst_err_t *err);
/* Publishes the file at its path. Destroys *w (sets it NULL) whether or not it succeeds. */
int pst_atomic_writer_commit(pst_atomic_writer_t **w, pst_err_t *err);
/* Discards an uncommitted file (unlinks the temporary). Safe on NULL and twice. */
void pst_atomic_writer_destroy(pst_atomic_writer_t **w);

#endif
