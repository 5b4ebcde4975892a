/* Sparse data beyond memory: shuffled CSR batches and a binary row cache. */
#ifndef PST_COMMON_DATA_SPARSESTREAM_H
#define PST_COMMON_DATA_SPARSESTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataload.h"
#include "common/data/dataset.h"
#include "common/atomicfile.h"
#include "common/data/hashing.h"
#include "common/err.h"

/* ---- Sources ---- */

typedef enum { PST_SPARSE_LIBSVM = 0, PST_SPARSE_TSV_HASHED = 1 } pst_sparse_format_t;

typedef struct pst_sparse_source {
    const char *path; /* plain or gzip-compressed text */
    pst_sparse_format_t format;
    pst_hash_spec_t hash; /* PST_SPARSE_TSV_HASHED only */
} pst_sparse_source_t;

/* ---- Binary cache: PATH.pstcache beside the source, little-endian, fixed 96-byte header:
 *   0 magic "PSTCACHE"     8 u32 version (1)       12 u32 format
 *  16 u64 hash-spec digest (0 for LIBSVM)          24 u64 source size in bytes
 *  32 i64 source mtime s   40 i64 source mtime ns  48 u64 rows     56 u64 nnz
 *  64 u64 blocks           72 u64 n_features       80 u32 largest block payload in bytes
 *  84 u32 0                88 u32 0                92 u32 CRC-32 of bytes 0..92
 * then `blocks` blocks in source order, each a 16-byte header (u32 rows, u32 nnz, u32 CRC-32
 * of the payload, u32 0) and a payload of u32 row_nnz[rows], f32 label[rows],
 * u32 col_idx[nnz] (0-based), f32 val[nnz]. A cache is used only when its header is intact,
 * names the same format and hash spec, the source's size and mtime (ns) are unchanged, and the
 * file length matches the header; otherwise it is rebuilt. */

/* "PATH.pstcache", malloc'ed (caller frees); NULL when out of memory. */
char *pst_sparse_cache_path(const char *source_path);

/* PST_OK when the cache of src is valid for reading (see above); PST_ENOTFOUND when it is
 * absent; PST_EFORMAT (with the reason) when stale or corrupt in its header. Block checksums
 * are verified while reading. */
int pst_sparse_cache_check(const pst_sparse_source_t *src, pst_err_t *err);

/* ---- Streaming iterator ---- */

typedef struct pst_sparse_stream_opts {
    size_t batch_rows;  /* rows per batch (the last of an epoch may be shorter); 0 = 256 */
    size_t buffer_rows; /* shuffle buffer; 0 or 1 = source order */
    uint64_t seed;      /* shuffle seed; epoch e uses pst_rng_derive(seed, e) */
    bool use_cache;     /* read PATH.pstcache when valid, else write it while reading */
    size_t chunk_bytes; /* text read size; 0 = 1 MiB */
} pst_sparse_stream_opts_t;

/* One mini-batch, owned by the stream, valid until the next call on it. */
typedef struct pst_sparse_stream_batch {
    size_t n_rows;
    size_t nnz;
    size_t *row_ptr;   // (n_rows + 1)
    uint32_t *col_idx; // (nnz) 0-based, strictly increasing within a row
    float *val;        // (nnz)
    float *y;          // (n_rows) label as written in the source
    uint64_t *row_id;  // (n_rows) 0-based position of the row among the source's data rows
} pst_sparse_stream_batch_t;

typedef struct pst_sparse_stream_stats {
    uint64_t epoch;           /* current epoch, 0-based */
    uint64_t rows_read;       /* rows taken from the source or the cache, all epochs */
    size_t rows_held;         /* rows now in the shuffle buffer */
    size_t max_rows_held;     /* most rows the shuffle buffer ever held: <= max(1, buffer_rows) */
    size_t max_row_nnz;       /* longest row seen */
    size_t n_features;        /* LIBSVM: largest index seen (known after a full epoch or from the
                                 cache); hashed TSV: pst_hash_spec_n_features */
    bool from_cache;          /* the current epoch reads the cache */
    unsigned caches_written;  /* caches this stream wrote */
    unsigned caches_rejected; /* stale or corrupt caches this stream found */
} pst_sparse_stream_stats_t;

typedef struct pst_sparse_stream pst_sparse_stream_t;

/* Opens src and starts epoch 0. Memory is bounded by the options, never by the file size:
 *   rows held in the shuffle buffer <= max(1, buffer_rows) (stats.max_rows_held counts them),
 *   each slot 40 bytes + 8 bytes per entry of the longest row it held;
 * + one batch: batch_rows rows (20 bytes each + 8 per entry);
 * + reading: the text chunk (chunk_bytes, grown to the longest line) and a scratch row (8 bytes
 *   per entry, room for the longest LIBSVM line's length / 4 entries), or the cache mapped
 *   read-only (rows are viewed in place, blocks checked as they are reached: page cache, not
 *   the process's own memory);
 * + while a cache is being written, one such block and a 4 MiB write buffer.
 * So 2M rows of 30 entries through a 10,000-row buffer hold about 2.8 MB of rows. Caller owns
 * *out. */
int pst_sparse_stream_open(const pst_sparse_source_t *src, const pst_sparse_stream_opts_t *opts,
                           pst_sparse_stream_t **out, pst_err_t *err);

/* The next batch of the epoch in *batch; (*batch)->n_rows == 0 once the epoch has yielded every
 * row exactly once. Rows are emitted reservoir-style: the buffer is filled, then each emitted
 * row is a uniformly chosen buffered row whose slot takes the next source row. Text errors
 * name FILE:LINE. When a cache block fails its checksum, the cache file is deleted (with a
 * warning) and the epoch continues from the source text, skipping the rows already yielded; the
 * next epoch writes a new cache. */
int pst_sparse_stream_next(pst_sparse_stream_t *s, const pst_sparse_stream_batch_t **batch,
                           pst_err_t *err);

/* Starts the next epoch (re-checking the cache, reshuffling with the epoch's seed). */
int pst_sparse_stream_rewind(pst_sparse_stream_t *s, pst_err_t *err);

void pst_sparse_stream_stats(const pst_sparse_stream_t *s, pst_sparse_stream_stats_t *stats);

/* Discards an unfinished cache file. Safe on NULL and twice. */
void pst_sparse_stream_destroy(pst_sparse_stream_t **self_p);

/* Reads all of src into a new CSR dataset in source order (caller owns *out), through the
 * cache when use_cache: a valid cache is mapped and its blocks checked and copied on
 * labels->read_threads threads; otherwise the text is parsed on that many line-aligned byte
 * ranges (see pst_sparse_parse_text) and, with use_cache, the cache written from the rows. A
 * truncated or corrupt cache is logged and rebuilt from the text. Labels follow labels->task /
 * n_classes / class_values as in pst_data_set_targets (labels->path is ignored; NULL = auto: 0/1
 * click labels become the classes {0, 1}). n_features as in the stream stats. */
int pst_sparse_load(const pst_sparse_source_t *src, bool use_cache, const pst_data_spec_t *labels,
                    pst_dataset_t **out, pst_err_t *err);

#endif
