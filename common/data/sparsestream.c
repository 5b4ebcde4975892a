/* Sparse streaming: the shuffle buffer, batches and whole-file loads over text or cache rows. */
#include "common/data/sparsestream.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/data/sparsestream_internal.h"
#include "common/data/textfile.h"
#include "common/log.h"
#include "common/rng.h"

#define DEFAULT_CHUNK (1u << 20)
#define DEFAULT_BATCH 256

typedef struct slot {
    uint32_t nnz, cap;
    float y;
    uint64_t id;
    uint32_t *idx; // (cap)
    float *val;    // (cap)
} slot_t;

struct pst_sparse_stream {
    pst_sparse_source_t src; /* path points to path_copy */
    char *path_copy, *cache_path;
    pst_sparse_stream_opts_t opts;
    pst_sparse_text_t text;
    bool text_open;
    pst_sparse_cache_reader_t cache;
    bool cache_open;
    pst_sparse_cache_writer_t *tee; /* the cache being written while the text is read */
    uint64_t skip_until; /* text rows before this id were already served from the cache */
    bool source_done;
    slot_t *slots; // (n_slots) the shuffle buffer; slots[0..held) are full
    size_t n_slots, held;
    pst_rng_t rng;
    pst_sparse_stream_batch_t batch;
    size_t batch_nnz_cap;
    size_t max_col; /* largest 0-based column + 1 seen */
    pst_sparse_stream_stats_t stats;
};

static void close_sources(pst_sparse_stream_t *s)
{
    if (s->text_open)
        pst_sparse_text_close(&s->text);
    if (s->cache_open)
        pst_sparse_cache_close(&s->cache);
    s->text_open = s->cache_open = false;
    pst_sparse_cache_writer_destroy(&s->tee);
}

/* Opens the text, writing a new cache beside it when caching is on and none is usable. */
static int open_text(pst_sparse_stream_t *s, bool write_cache, pst_err_t *err)
{
    pst_sparse_cache_header_t identity;
    int rc = pst_sparse_source_identity(&s->src, &identity, err);
    if (rc == PST_OK)
        rc = pst_sparse_text_open(&s->text, &s->src, s->opts.chunk_bytes, err);
    if (rc != PST_OK)
        return rc;
    s->text_open = true;
    if (write_cache) {
        pst_err_t werr;
        if (pst_sparse_cache_writer_new(s->cache_path, &identity, &s->tee, &werr) != PST_OK)
            pst_warn("not caching %s: %s", s->src.path, werr.msg);
    }
    return PST_OK;
}

static int begin_epoch(pst_sparse_stream_t *s, uint64_t epoch, pst_err_t *err)
{
    close_sources(s);
    s->held = 0;
    s->source_done = false;
    s->skip_until = 0;
    s->stats.epoch = epoch;
    s->stats.from_cache = false;
    s->stats.rows_held = 0;
    pst_rng_init(&s->rng, pst_rng_derive(s->opts.seed, epoch));
    if (!s->opts.use_cache || !pst_sparse_host_is_little_endian())
        return open_text(s, false, err);
    pst_err_t cerr;
    int rc = pst_sparse_cache_open(&s->cache, &s->src, s->cache_path, &cerr);
    if (rc == PST_OK) {
        s->cache_open = s->stats.from_cache = true;
        if (s->cache.h.n_features > s->max_col)
            s->max_col = (size_t)s->cache.h.n_features;
        return PST_OK;
    }
    if (rc == PST_EFORMAT) {
        pst_info("rebuilding cache: %s", cerr.msg);
        s->stats.caches_rejected++;
    } else if (rc != PST_ENOTFOUND) {
        return pst_err_set(err, rc, "%s", cerr.msg);
    }
    return open_text(s, true, err);
}

/* A corrupt cache block: delete the cache and continue this epoch from the text. */
static int fall_back_to_text(pst_sparse_stream_t *s, pst_err_t *err)
{
    uint64_t done = s->cache.rows_done;
    pst_warn("%s: block %llu of %llu is corrupt; deleting the cache and reading %s", s->cache_path,
             (unsigned long long)s->cache.blocks_read + 1, (unsigned long long)s->cache.h.n_blocks,
             s->src.path);
    pst_sparse_cache_close(&s->cache);
    s->cache_open = s->stats.from_cache = false;
    s->stats.caches_rejected++;
    unlink(s->cache_path);
    s->skip_until = done;
    return open_text(s, false, err);
}

static int finish_text(pst_sparse_stream_t *s, pst_err_t *err)
{
    if (s->tee == NULL)
        return PST_OK;
    pst_err_t werr;
    if (pst_sparse_cache_writer_commit(&s->tee, s->max_col, &werr) == PST_OK)
        s->stats.caches_written++;
    else
        pst_warn("not caching %s: %s", s->src.path, werr.msg);
    return PST_OK;
}

/* 1 and the next source row in *row, 0 at the end of the source, or an error. */
static int read_row(pst_sparse_stream_t *s, pst_sparse_row_t *row, pst_err_t *err)
{
    if (s->cache_open) {
        int rc = pst_sparse_cache_row(&s->cache, row);
        if (rc != PST_SPARSE_CACHE_CORRUPT)
            return rc;
        rc = fall_back_to_text(s, err);
        if (rc != PST_OK)
            return rc;
    }
    for (;;) {
        int rc = pst_sparse_text_row(&s->text, row, err);
        if (rc == 0)
            return finish_text(s, err);
        if (rc < 0)
            return rc;
        if (row->id < s->skip_until)
            continue;
        pst_err_t werr;
        if (s->tee != NULL && pst_sparse_cache_writer_add(s->tee, row, &werr) != PST_OK) {
            pst_warn("not caching %s: %s", s->src.path, werr.msg);
            pst_sparse_cache_writer_destroy(&s->tee);
        }
        return 1;
    }
}

static int fill_slot(pst_sparse_stream_t *s, slot_t *slot, pst_err_t *err)
{
    pst_sparse_row_t row;
    int rc = read_row(s, &row, err);
    if (rc <= 0)
        return rc;
    if (row.nnz > slot->cap) {
        uint32_t *idx = realloc(slot->idx, row.nnz * sizeof *idx);
        float *val = idx ? realloc(slot->val, row.nnz * sizeof *val) : NULL;
        if (idx)
            slot->idx = idx;
        if (val == NULL)
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", s->src.path);
        slot->val = val;
        slot->cap = row.nnz;
    }
    memcpy(slot->idx, row.idx, row.nnz * sizeof *row.idx);
    memcpy(slot->val, row.val, row.nnz * sizeof *row.val);
    slot->nnz = row.nnz;
    slot->y = row.y;
    slot->id = row.id;
    s->stats.rows_read++;
    if (row.nnz > s->stats.max_row_nnz)
        s->stats.max_row_nnz = row.nnz;
    if (row.nnz > 0 && (size_t)row.idx[row.nnz - 1] + 1 > s->max_col)
        s->max_col = (size_t)row.idx[row.nnz - 1] + 1;
    return 1;
}

static int append_to_batch(pst_sparse_stream_t *s, const slot_t *slot, pst_err_t *err)
{
    pst_sparse_stream_batch_t *b = &s->batch;
    size_t cap = s->batch_nnz_cap;
    if (!pst_sparse_grow_array((void **)&b->col_idx, &cap, b->nnz + slot->nnz,
                               sizeof *b->col_idx) ||
        !pst_sparse_grow_array((void **)&b->val, &s->batch_nnz_cap, b->nnz + slot->nnz,
                               sizeof *b->val))
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory for a batch", s->src.path);
    memcpy(b->col_idx + b->nnz, slot->idx, slot->nnz * sizeof *slot->idx);
    memcpy(b->val + b->nnz, slot->val, slot->nnz * sizeof *slot->val);
    b->nnz += slot->nnz;
    b->y[b->n_rows] = slot->y;
    b->row_id[b->n_rows++] = slot->id;
    b->row_ptr[b->n_rows] = b->nnz;
    return PST_OK;
}

static void swap_slots(slot_t *a, slot_t *b)
{
    slot_t t = *a;
    *a = *b;
    *b = t;
}

/* Moves one row through the shuffle buffer into the batch: 1, 0 when the epoch is over. */
static int take_row(pst_sparse_stream_t *s, pst_err_t *err)
{
    while (!s->source_done && s->held < s->n_slots) {
        int rc = fill_slot(s, &s->slots[s->held], err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            s->source_done = true;
        else if (++s->held > s->stats.max_rows_held)
            s->stats.max_rows_held = s->held;
    }
    if (s->held == 0)
        return 0;
    size_t j = s->held == 1 ? 0 : (size_t)pst_rng_below(&s->rng, s->held);
    int rc = append_to_batch(s, &s->slots[j], err);
    if (rc != PST_OK)
        return rc;
    if (!s->source_done) {
        rc = fill_slot(s, &s->slots[j], err);
        if (rc != 0)
            return rc < 0 ? rc : 1;
        s->source_done = true;
    }
    swap_slots(&s->slots[j], &s->slots[--s->held]);
    return 1;
}

int pst_sparse_stream_next(pst_sparse_stream_t *s, const pst_sparse_stream_batch_t **batch,
                           pst_err_t *err)
{
    pst_sparse_stream_batch_t *b = &s->batch;
    b->n_rows = b->nnz = 0;
    b->row_ptr[0] = 0;
    *batch = b;
    while (b->n_rows < s->opts.batch_rows) {
        int rc = take_row(s, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
    }
    s->stats.rows_held = s->held;
    return PST_OK;
}

int pst_sparse_stream_rewind(pst_sparse_stream_t *s, pst_err_t *err)
{
    return begin_epoch(s, s->stats.epoch + 1, err);
}

void pst_sparse_stream_stats(const pst_sparse_stream_t *s, pst_sparse_stream_stats_t *stats)
{
    *stats = s->stats;
    stats->n_features = s->src.format == PST_SPARSE_TSV_HASHED
                            ? pst_hash_spec_n_features(&s->src.hash)
                            : s->max_col;
}

void pst_sparse_stream_destroy(pst_sparse_stream_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_sparse_stream_t *s = *self_p;
    close_sources(s);
    for (size_t i = 0; s->slots != NULL && i < s->n_slots; i++) {
        free(s->slots[i].idx);
        free(s->slots[i].val);
    }
    free(s->slots);
    free(s->batch.row_ptr);
    free(s->batch.col_idx);
    free(s->batch.val);
    free(s->batch.y);
    free(s->batch.row_id);
    free(s->path_copy);
    free(s->cache_path);
    free(s);
    *self_p = NULL;
}

static int check_source(const pst_sparse_source_t *src, pst_err_t *err)
{
    if (src->path == NULL || src->path[0] == '\0')
        return pst_err_set(err, PST_EINVAL, "no data path");
    if (src->format == PST_SPARSE_TSV_HASHED) {
        int rc = pst_hash_spec_check(&src->hash, err);
        return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", src->path);
    }
    if (src->format != PST_SPARSE_LIBSVM)
        return pst_err_set(err, PST_EINVAL, "%s: unknown format %d", src->path, (int)src->format);
    return PST_OK;
}

static bool alloc_stream(pst_sparse_stream_t *s, const pst_sparse_source_t *src)
{
    size_t rows = s->opts.batch_rows;
    s->path_copy = strdup(src->path);
    s->cache_path = pst_sparse_cache_path(src->path);
    s->slots = calloc(s->n_slots, sizeof *s->slots);
    s->batch.row_ptr = malloc((rows + 1) * sizeof *s->batch.row_ptr);
    s->batch.y = malloc(rows * sizeof *s->batch.y);
    s->batch.row_id = malloc(rows * sizeof *s->batch.row_id);
    return s->path_copy && s->cache_path && s->slots && s->batch.row_ptr && s->batch.y &&
           s->batch.row_id;
}

int pst_sparse_stream_open(const pst_sparse_source_t *src, const pst_sparse_stream_opts_t *opts,
                           pst_sparse_stream_t **out, pst_err_t *err)
{
    *out = NULL;
    int rc = check_source(src, err);
    if (rc != PST_OK)
        return rc;
    pst_sparse_stream_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", src->path);
    s->opts = *opts;
    if (s->opts.batch_rows == 0)
        s->opts.batch_rows = DEFAULT_BATCH;
    if (s->opts.chunk_bytes == 0)
        s->opts.chunk_bytes = DEFAULT_CHUNK;
    s->n_slots = opts->buffer_rows > 1 ? opts->buffer_rows : 1;
    if (!alloc_stream(s, src)) {
        pst_sparse_stream_destroy(&s);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory for the shuffle buffer", src->path);
    }
    s->src = *src;
    s->src.path = s->path_copy;
    rc = begin_epoch(s, 0, err);
    if (rc != PST_OK)
        pst_sparse_stream_destroy(&s);
    *out = s;
    return rc;
}

/* Room for rows + 1 row pointers, rows labels (and lines), and nnz entries. */
static int csr_reserve(pst_sparse_csr_build_t *b, size_t rows, size_t nnz, pst_err_t *err)
{
    pst_data_csr_t *c = &b->csr;
    /* Each array grows on its own (doubling from what it holds), so the row pointers need not
     * end up one longer than the labels: cap_rows is what all of them have room for. */
    size_t cap_raw = b->cap_rows, cap_ptr = b->cap_rows ? b->cap_rows + 1 : 0,
           cap_lines = b->cap_rows;
    size_t cap_nnz = b->cap_nnz;
    if (!pst_sparse_grow_array((void **)&c->raw, &cap_raw, rows, sizeof *c->raw) ||
        !pst_sparse_grow_array((void **)&c->row_ptr, &cap_ptr, rows + 1, sizeof *c->row_ptr) ||
        (b->with_lines &&
         !pst_sparse_grow_array((void **)&c->lines, &cap_lines, rows, sizeof *c->lines)) ||
        !pst_sparse_grow_array((void **)&c->col_idx, &cap_nnz, nnz, sizeof *c->col_idx) ||
        !pst_sparse_grow_array((void **)&c->val, &b->cap_nnz, nnz, sizeof *c->val))
        return pst_err_set(err, PST_ENOMEM, "out of memory loading %zu rows", c->n_rows);
    size_t cap = cap_raw < cap_ptr - 1 ? cap_raw : cap_ptr - 1;
    b->cap_rows = b->with_lines && cap_lines < cap ? cap_lines : cap;
    return PST_OK;
}

int pst_sparse_csr_append(pst_sparse_csr_build_t *b, const pst_sparse_row_t *row, size_t line_no,
                          pst_err_t *err)
{
    pst_data_csr_t *c = &b->csr;
    if (c->n_rows + 1 > b->cap_rows || b->nnz + row->nnz > b->cap_nnz) {
        int rc = csr_reserve(b, c->n_rows + 1, b->nnz + row->nnz, err);
        if (rc != PST_OK)
            return rc;
    }
    memcpy(c->col_idx + b->nnz, row->idx, row->nnz * sizeof *row->idx);
    memcpy(c->val + b->nnz, row->val, row->nnz * sizeof *row->val);
    b->nnz += row->nnz;
    if (row->nnz > 0 && (size_t)row->idx[row->nnz - 1] + 1 > c->n_features)
        c->n_features = (size_t)row->idx[row->nnz - 1] + 1;
    if (b->with_lines)
        c->lines[c->n_rows] = line_no;
    c->raw[c->n_rows] = row->label;
    c->row_ptr[0] = 0;
    c->row_ptr[++c->n_rows] = b->nnz;
    return PST_OK;
}

int pst_sparse_csr_finish(pst_sparse_csr_build_t *b, const pst_data_spec_t *spec, const char *path,
                          pst_dataset_t **out, pst_err_t *err)
{
    int rc = pst_data_from_csr(&b->csr, spec, path, out, err);
    pst_sparse_csr_fini(b);
    return rc;
}

void pst_sparse_csr_fini(pst_sparse_csr_build_t *b)
{
    free(b->csr.row_ptr);
    free(b->csr.col_idx);
    free(b->csr.val);
    free(b->csr.raw);
    free(b->csr.lines);
    memset(b, 0, sizeof *b);
}

/* Writes the rows of b (labels already rounded to the cache's float) to the cache at path for
 * the source whose identity was taken before its text was read. A failure only warns: the
 * rows are loaded either way. */
static void write_cache(const pst_sparse_csr_build_t *b, const char *path,
                        const pst_sparse_cache_header_t *identity, const char *src_path)
{
    pst_sparse_cache_writer_t *cw;
    pst_err_t werr;
    int rc = pst_sparse_cache_writer_new(path, identity, &cw, &werr);
    const pst_data_csr_t *c = &b->csr;
    for (size_t i = 0; rc == PST_OK && i < c->n_rows; i++) {
        pst_sparse_row_t row = {.nnz = (uint32_t)(c->row_ptr[i + 1] - c->row_ptr[i]),
                                .y = (float)c->raw[i],
                                .idx = c->col_idx + c->row_ptr[i],
                                .val = c->val + c->row_ptr[i]};
        rc = pst_sparse_cache_writer_add(cw, &row, &werr);
    }
    if (rc == PST_OK)
        rc = pst_sparse_cache_writer_commit(&cw, c->n_features, &werr);
    pst_sparse_cache_writer_destroy(&cw);
    if (rc != PST_OK)
        pst_warn("not caching %s: %s", src_path, werr.msg);
}

/* The rows of src's text into b, the labels rounded to float as the cache holds them (so a
 * load gives the same labels with or without it); with write, the cache is written too. */
static int load_text(const pst_sparse_source_t *src, unsigned n_threads, const char *cache_path,
                     bool write, pst_sparse_csr_build_t *b, pst_err_t *err)
{
    pst_sparse_cache_header_t identity;
    int rc = pst_sparse_source_identity(src, &identity, err);
    pst_text_file_t text;
    if (rc == PST_OK)
        rc = pst_text_file_open(&text, src->path, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_sparse_parse_text(src, text.data, text.len, n_threads, b, err);
    pst_text_file_close(&text);
    if (rc != PST_OK)
        return rc;
    for (size_t i = 0; i < b->csr.n_rows; i++)
        b->csr.raw[i] = (float)b->csr.raw[i];
    if (write)
        write_cache(b, cache_path, &identity, src->path);
    return PST_OK;
}

/* The rows of src from its valid cache, else from its text (writing the cache when use_cache). */
static int load_rows(const pst_sparse_source_t *src, bool use_cache, unsigned n_threads,
                     pst_sparse_csr_build_t *b, pst_err_t *err)
{
    bool use = use_cache && pst_sparse_host_is_little_endian();
    char *cache_path = use ? pst_sparse_cache_path(src->path) : NULL;
    if (use && cache_path == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", src->path);
    pst_err_t cerr;
    int rc = use ? pst_sparse_cache_load(src, cache_path, n_threads, b, &cerr) : PST_ENOTFOUND;
    if (rc == PST_EFORMAT)
        pst_info("rebuilding cache: %s", cerr.msg);
    else if (rc != PST_OK && rc != PST_ENOTFOUND)
        rc = pst_err_set(err, rc, "%s", cerr.msg);
    if (rc == PST_EFORMAT || rc == PST_ENOTFOUND)
        rc = load_text(src, n_threads, cache_path, use, b, err);
    free(cache_path);
    return rc;
}

int pst_sparse_load(const pst_sparse_source_t *src, bool use_cache, const pst_data_spec_t *labels,
                    pst_dataset_t **out, pst_err_t *err)
{
    *out = NULL;
    int rc = check_source(src, err);
    if (rc != PST_OK)
        return rc;
    pst_data_spec_t spec = labels ? *labels : (pst_data_spec_t){0};
    spec.path = src->path;
    pst_sparse_csr_build_t b = {0};
    if ((rc = load_rows(src, use_cache, spec.read_threads, &b, err)) != PST_OK)
        return rc;
    pst_data_csr_t *c = &b.csr;
    if (src->format == PST_SPARSE_TSV_HASHED)
        c->n_features = pst_hash_spec_n_features(&src->hash);
    else /* as a stream counts it: the header's count, or past the last column of a row */
        for (size_t i = 0; i < c->n_rows; i++)
            if (c->row_ptr[i + 1] > c->row_ptr[i] &&
                c->col_idx[c->row_ptr[i + 1] - 1] >= c->n_features)
                c->n_features = (size_t)c->col_idx[c->row_ptr[i + 1] - 1] + 1;
    return pst_sparse_csr_finish(&b, &spec, src->path, out, err);
}
