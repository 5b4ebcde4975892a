/* Sparse streaming internals shared by the text reader, the cache and the stream. */
#ifndef PST_COMMON_DATA_SPARSESTREAM_INTERNAL_H
#define PST_COMMON_DATA_SPARSESTREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "common/data/dataload.h"
#include "common/data/sparsestream.h"

/* pst_sparse_cache_row: a block failed its checks (never a PST_* code). */
#define PST_SPARSE_CACHE_CORRUPT 1000

/* The cache header's fields (see sparsestream.h for the layout). */
typedef struct pst_sparse_cache_header {
    uint32_t format;
    uint64_t digest, src_size;
    int64_t mtime_s, mtime_ns;
    uint64_t n_rows, nnz, n_blocks, n_features;
    uint32_t max_block; /* largest block payload in bytes */
} pst_sparse_cache_header_t;

/* One row, viewed in a reader's storage until the reader's next call. */
typedef struct pst_sparse_row {
    uint32_t nnz;
    float y;
    double label; /* y as written in the text (double); y itself from the cache */
    uint64_t id;
    const uint32_t *idx; // (nnz)
    const float *val;    // (nnz)
} pst_sparse_row_t;

typedef struct pst_sparse_text {
    gzFile gz;
    const char *path;
    const pst_sparse_source_t *src;
    char *buf;            // (cap + 1), NUL after the data
    size_t cap, len, pos; /* buffer size, bytes in it, start of the unread part */
    bool eof;
    size_t line_no;
    uint64_t rows; /* data rows parsed so far */
    uint32_t *idx; // (scratch_cap) entries of the current row
    float *val;    // (scratch_cap)
    size_t scratch_cap;
} pst_sparse_text_t;

typedef struct pst_sparse_cache_reader {
    const unsigned char *map; // (map_len) the whole cache, mapped read-only
    size_t map_len, pos;      /* its length; where the next block starts */
    pst_sparse_cache_header_t h;
    uint32_t rows, nnz; /* of the current block */
    uint32_t row_pos;   /* next row in the block */
    size_t entry_pos;   /* its first entry */
    uint64_t blocks_read, rows_done;
    const uint32_t *row_nnz; // (rows)
    const float *y;          // (rows)
    const uint32_t *col;     // (nnz)
    const float *val;        // (nnz)
} pst_sparse_cache_reader_t;

typedef struct pst_sparse_cache_writer pst_sparse_cache_writer_t;

/* The reallocation behind pst_sparse_grow_array, for when need > *cap. */
bool pst_sparse_grow_array_to(void **p, size_t *cap, size_t need, size_t elem);

/* Grows *p (of *cap elements of elem bytes) to hold need, doubling; false when out of memory.
 * Inline: the readers and builders check their room on every row, and it is nearly always there. */
static inline bool pst_sparse_grow_array(void **p, size_t *cap, size_t need, size_t elem)
{
    return need <= *cap || pst_sparse_grow_array_to(p, cap, need, elem);
}

/* Text reader: LIBSVM or hashed TSV lines from a plain or gzip file, read chunk bytes at a time. */
int pst_sparse_text_open(pst_sparse_text_t *r, const pst_sparse_source_t *src, size_t chunk,
                         pst_err_t *err);
/* 1 and the next data row, 0 at the end of the file, or an error naming FILE:LINE. */
int pst_sparse_text_row(pst_sparse_text_t *r, pst_sparse_row_t *row, pst_err_t *err);
void pst_sparse_text_close(pst_sparse_text_t *r);

/* Caches are written and read on little-endian hosts only. */
bool pst_sparse_host_is_little_endian(void);
/* The identity of the source a cache must match: format, spec digest, size and mtime. */
int pst_sparse_source_identity(const pst_sparse_source_t *src, pst_sparse_cache_header_t *h,
                               pst_err_t *err);

/* A CSR dataset built row by row for whole-file loads; zero-initialise, set with_lines to keep
 * each row's source line. */
typedef struct pst_sparse_csr_build {
    pst_data_csr_t csr;
    bool with_lines;
    size_t nnz, cap_rows, cap_nnz; /* entries so far, room for rows and entries */
} pst_sparse_csr_build_t;

/* Appends one row (idx 0-based, increasing); csr.n_features grows to its largest index + 1. */
int pst_sparse_csr_append(pst_sparse_csr_build_t *b, const pst_sparse_row_t *row, size_t line_no,
                          pst_err_t *err);
/* Moves the rows into a new dataset (pst_data_from_csr) and frees the build. */
int pst_sparse_csr_finish(pst_sparse_csr_build_t *b, const pst_data_spec_t *spec, const char *path,
                          pst_dataset_t **out, pst_err_t *err);
/* Frees the rows of an unfinished build. */
void pst_sparse_csr_fini(pst_sparse_csr_build_t *b);

/* Parses the whole text of src (its format and hash spec) in data[0..len) into b (zeroed, with
 * with_lines set as wanted) on n_threads line-aligned byte ranges (0 = the online cores, one per
 * MiB at most; see common/data/textfile.h): rows in file order, labels as written in b->csr.raw,
 * global line numbers in b->csr.lines, b->csr.n_features the largest column + 1. The rows, and
 * on bad input the first error in file order with its message (FILE:LINE), are those of the
 * line-by-line reader. data[len] need not exist. On failure b is freed. */
int pst_sparse_parse_text(const pst_sparse_source_t *src, const char *data, size_t len,
                          unsigned n_threads, pst_sparse_csr_build_t *b, pst_err_t *err);

/* Cache reader: PST_OK, PST_ENOTFOUND when absent, PST_EFORMAT when stale or corrupt. */
int pst_sparse_cache_open(pst_sparse_cache_reader_t *c, const pst_sparse_source_t *src,
                          const char *path, pst_err_t *err);
/* 1 and the next row, 0 at the end, or PST_SPARSE_CACHE_CORRUPT. */
int pst_sparse_cache_row(pst_sparse_cache_reader_t *c, pst_sparse_row_t *row);
void pst_sparse_cache_close(pst_sparse_cache_reader_t *c);

/* Loads the whole cache at path for src into b (zeroed here) through a read-only mapping, the
 * blocks checked and copied on n_threads (as data.read_threads): labels in b->csr.raw,
 * b->csr.n_features from the header. Every size is checked against the file's length before
 * anything is read. PST_OK; PST_ENOTFOUND when absent; PST_EFORMAT with the reason when stale,
 * truncated or corrupt (b freed). */
int pst_sparse_cache_load(const pst_sparse_source_t *src, const char *path, unsigned n_threads,
                          pst_sparse_csr_build_t *b, pst_err_t *err);

/* Cache writer: blocks of rows through an atomic writer; the header is written at commit. */
int pst_sparse_cache_writer_new(const char *path, const pst_sparse_cache_header_t *identity,
                                pst_sparse_cache_writer_t **out, pst_err_t *err);
int pst_sparse_cache_writer_add(pst_sparse_cache_writer_t *cw, const pst_sparse_row_t *row,
                                pst_err_t *err);
/* Writes the last block and the header, then publishes the cache. Destroys *cw_p. */
int pst_sparse_cache_writer_commit(pst_sparse_cache_writer_t **cw_p, uint64_t n_features,
                                   pst_err_t *err);
void pst_sparse_cache_writer_destroy(pst_sparse_cache_writer_t **cw_p);

#endif
