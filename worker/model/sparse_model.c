/* Sparse logistic regression and factorization machines: batch keys, gradients, local training. */
#include "worker/model/sparse_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/eval/metrics.h"
#include "common/rng.h"
#include "common/net/wire.h"

/* Rows scored per call when evaluating a dataset. */
enum { EVAL_ROWS = 2048 };

/* ---- batches ---- */

static int batch_check(const pst_sparse_batch_t *b, pst_err_t *err)
{
    if ((b->col32 == NULL) == (b->col64 == NULL))
        return pst_err_set(err, PST_EINVAL, "sparse batch: set exactly one of col32 and col64");
    if (b->n_rows > 0 && b->row_ptr == NULL)
        return pst_err_set(err, PST_EINVAL, "sparse batch: no row_ptr");
    for (size_t i = 0; i < b->n_rows; i++) {
        if (b->row_ptr[i + 1] < b->row_ptr[i])
            return pst_err_set(err, PST_EINVAL, "sparse batch: row_ptr decreases at row %zu", i);
    }
    return PST_OK;
}

/* Value of entry at (an absolute offset, as in row_ptr). */
static float val_at(const pst_sparse_batch_t *b, size_t at)
{
    return b->val != NULL ? b->val[at] : 1.0f;
}

/* ---- batch keys: an LSD radix sort of (key, nnz index) pairs ---- */

/* Digits of at most 11 bits, as even as the key width allows: 20-bit ids sort in 2 passes of 10. */
enum { DIGIT_BITS = 11, DIGITS = (64 + DIGIT_BITS - 1) / DIGIT_BITS, BUCKETS = 1 << DIGIT_BITS };

/* Ping-pong buffers of the key sort, kept between batches so a step allocates nothing. */
typedef struct key_scratch {
    size_t cap;
    uint64_t *sort[2];               // (cap) packed key << index_bits | nnz, or bare keys
    uint32_t *index[2];              // (cap) nnz of sort[.][i] when the pair does not fit 64 bits
    uint32_t count[DIGITS][BUCKETS]; /* histogram of every digit */
} key_scratch_t;

static void key_scratch_fini(key_scratch_t *s)
{
    for (int i = 0; i < 2; i++) {
        free(s->sort[i]);
        free(s->index[i]);
        s->sort[i] = NULL;
        s->index[i] = NULL;
    }
    s->cap = 0;
}

static int key_scratch_reserve(key_scratch_t *s, size_t nnz)
{
    if (nnz <= s->cap)
        return PST_OK;
    key_scratch_fini(s);
    size_t n = nnz > 0 ? nnz : 1;
    for (int i = 0; i < 2; i++) {
        s->sort[i] = malloc(n * sizeof(uint64_t));
        s->index[i] = malloc(n * sizeof(uint32_t));
        if (s->sort[i] == NULL || s->index[i] == NULL) {
            key_scratch_fini(s);
            return PST_ENOMEM;
        }
    }
    s->cap = nnz;
    return PST_OK;
}

/* Bits needed to write x: 0 for 0. */
static unsigned bit_width(uint64_t x)
{
    return x == 0 ? 0 : 64u - (unsigned)__builtin_clzll(x);
}

/* out[k] = nnz k's key << shift | k, where shift is 0 or leaves room for k (k < 2^shift);
 * returns the OR of all keys, unshifted. */
static uint64_t load_keys(const pst_sparse_batch_t *b, size_t base, size_t nnz, unsigned shift,
                          uint64_t *out)
{
    uint64_t all = 0, tag_mask = ((uint64_t)1 << shift) - 1;
    if (b->col64 != NULL) {
        for (size_t k = 0; k < nnz; k++) {
            uint64_t key = b->col64[base + k];
            out[k] = key << shift | (k & tag_mask);
            all |= key;
        }
    } else {
        for (size_t k = 0; k < nnz; k++) {
            uint64_t key = b->col32[base + k];
            out[k] = key << shift | (k & tag_mask);
            all |= key;
        }
    }
    return all;
}

/* Histograms of the n_digits digits of `width` bits of v[0..n) >> low. */
static void count_digits(key_scratch_t *s, const uint64_t *v, size_t n, unsigned low,
                         unsigned n_digits, unsigned width)
{
    uint64_t mask = ((uint64_t)1 << width) - 1;
    for (unsigned d = 0; d < n_digits; d++)
        memset(s->count[d], 0, ((size_t)1 << width) * sizeof(uint32_t));
    for (size_t k = 0; k < n; k++) {
        uint64_t x = v[k] >> low;
        for (unsigned d = 0; d < n_digits; d++)
            s->count[d][(x >> (d * width)) & mask]++;
    }
}

/* Turns a histogram of n values over buckets into start offsets; false if all share a bucket. */
static bool digit_offsets(uint32_t *count, size_t n, uint32_t buckets)
{
    uint32_t sum = 0;
    for (uint32_t c = 0; c < buckets; c++) {
        if (count[c] == n)
            return false;
        uint32_t t = count[c];
        count[c] = sum;
        sum += t;
    }
    return true;
}

/* Sorts v = s->sort[*cur][0..n) stably by the field of `bits` bits above bit `low`, moving the
 * indices s->index[*cur] along when with_index; *cur names the buffer that holds the result. */
static void radix_sort(key_scratch_t *s, size_t n, unsigned low, unsigned bits, bool with_index,
                       int *cur)
{
    unsigned n_digits = (bits + DIGIT_BITS - 1) / DIGIT_BITS;
    unsigned width = n_digits > 0 ? (bits + n_digits - 1) / n_digits : 0;
    uint64_t mask = ((uint64_t)1 << width) - 1;
    count_digits(s, s->sort[*cur], n, low, n_digits, width);
    for (unsigned d = 0; d < n_digits; d++) {
        uint32_t *off = s->count[d];
        if (!digit_offsets(off, n, (uint32_t)mask + 1))
            continue;
        unsigned shift = low + d * width;
        const uint64_t *src = s->sort[*cur];
        uint64_t *dst = s->sort[!*cur];
        if (with_index) {
            const uint32_t *isrc = s->index[*cur];
            uint32_t *idst = s->index[!*cur];
            for (size_t k = 0; k < n; k++) {
                uint32_t to = off[(src[k] >> shift) & mask]++;
                dst[to] = src[k];
                idst[to] = isrc[k];
            }
        } else {
            for (size_t k = 0; k < n; k++)
                dst[off[(src[k] >> shift) & mask]++] = src[k];
        }
        *cur = !*cur;
    }
}

/* The unique keys of the sorted pairs (key, nnz) and the slot of every nnz. */
static size_t unique_keys(const uint64_t *key, const uint32_t *nnz_of, size_t n, uint64_t *keys,
                          uint32_t *slot_of_nnz)
{
    size_t n_keys = 0;
    for (size_t k = 0; k < n; k++) {
        if (n_keys == 0 || key[k] != keys[n_keys - 1])
            keys[n_keys++] = key[k];
        slot_of_nnz[nnz_of[k]] = (uint32_t)(n_keys - 1);
    }
    return n_keys;
}

/* The same for pairs packed as key << index_bits | nnz. */
static size_t unique_packed(const uint64_t *packed, size_t n, unsigned index_bits, uint64_t *keys,
                            uint32_t *slot_of_nnz)
{
    uint64_t index_mask = ((uint64_t)1 << index_bits) - 1;
    size_t n_keys = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t key = packed[k] >> index_bits;
        if (n_keys == 0 || key != keys[n_keys - 1])
            keys[n_keys++] = key;
        slot_of_nnz[packed[k] & index_mask] = (uint32_t)(n_keys - 1);
    }
    return n_keys;
}

/* pst_sparse_batch_keys on a checked batch with nnz < 2^32, using the scratch s (cap >= nnz).
 * When the key bits and the nnz bits fit one word, the pairs are sorted packed; otherwise the
 * keys are sorted with their nnz beside them. */
static size_t collect_keys(key_scratch_t *s, const pst_sparse_batch_t *b, uint64_t *keys,
                           uint32_t *slot_of_nnz)
{
    size_t nnz = pst_sparse_batch_nnz(b);
    if (nnz == 0)
        return 0;
    size_t base = b->row_ptr[0];
    unsigned index_bits = bit_width(nnz - 1);
    unsigned key_bits = bit_width(load_keys(b, base, nnz, index_bits, s->sort[0]));
    int cur = 0;
    if (key_bits + index_bits <= 64) {
        /* the pairs start in nnz order and the sort is stable: sorting the keys alone suffices */
        radix_sort(s, nnz, index_bits, key_bits, false, &cur);
        return unique_packed(s->sort[cur], nnz, index_bits, keys, slot_of_nnz);
    }
    load_keys(b, base, nnz, 0, s->sort[0]); /* the keys do not fit beside their index */
    for (size_t k = 0; k < nnz; k++)
        s->index[0][k] = (uint32_t)k;
    radix_sort(s, nnz, 0, key_bits, true, &cur);
    return unique_keys(s->sort[cur], s->index[cur], nnz, keys, slot_of_nnz);
}

int pst_sparse_batch_keys(const pst_sparse_batch_t *b, uint64_t *keys, size_t *n_keys,
                          uint32_t *slot_of_nnz, pst_err_t *err)
{
    int rc = batch_check(b, err);
    if (rc != PST_OK)
        return rc;
    size_t nnz = pst_sparse_batch_nnz(b);
    if (nnz > UINT32_MAX)
        return pst_err_set(err, PST_ERANGE, "sparse batch: %zu entries exceed 2^32", nnz);
    key_scratch_t *s = calloc(1, sizeof *s);
    if (s == NULL || key_scratch_reserve(s, nnz) != PST_OK) {
        free(s);
        return pst_err_set(err, PST_ENOMEM, "sparse batch: no memory for %zu entries", nnz);
    }
    *n_keys = collect_keys(s, b, keys, slot_of_nnz);
    key_scratch_fini(s);
    free(s);
    return PST_OK;
}

/* ---- models ---- */

int pst_sparse_spec_check(const pst_sparse_spec_t *spec, pst_err_t *err)
{
    if (spec->kind == PST_SPARSE_LR)
        return PST_OK;
    if (spec->kind != PST_SPARSE_FM)
        return pst_err_set(err, PST_EINVAL, "sparse model: unknown kind %d", (int)spec->kind);
    if (spec->n_factors < 1 || spec->n_factors > PST_FM_MAX_FACTORS)
        return pst_err_set(err, PST_EINVAL, "sparse model: FM factors %u not in [1, %d]",
                           spec->n_factors, PST_FM_MAX_FACTORS);
    return PST_OK;
}

/* LR is the FM without factors: one kernel serves both, with k = 0 for LR. */
static uint32_t factors_of(const pst_sparse_spec_t *spec)
{
    return spec->kind == PST_SPARSE_FM ? spec->n_factors : 0;
}

uint32_t pst_sparse_row_width(const pst_sparse_spec_t *spec)
{
    return 1 + factors_of(spec);
}

/* One pass over a batch: the forward, and with grad the backward too. */
typedef struct pass {
    const pst_sparse_batch_t *b;
    uint32_t k; /* factors; 0 = LR */
    const uint32_t *slot;
    const pst_sparse_weights_t *w;
    float sums[PST_FM_MAX_FACTORS]; /* the row's sum_j v_jf x_j */
} pass_t;

/* Margin of row i; fills p->sums for the backward. */
static double row_margin(pass_t *p, size_t i)
{
    const pst_sparse_batch_t *b = p->b;
    size_t base = b->row_ptr[0], width = 1 + p->k;
    double linear = p->w->bias, squares = 0.0;
    memset(p->sums, 0, p->k * sizeof(float));
    for (size_t at = b->row_ptr[i]; at < b->row_ptr[i + 1]; at++) {
        const float *row = p->w->rows + (size_t)p->slot[at - base] * width;
        float x = val_at(b, at);
        linear += (double)row[0] * x;
        for (uint32_t f = 0; f < p->k; f++) {
            float t = row[1 + f] * x;
            p->sums[f] += t;
            squares += (double)t * t;
        }
    }
    double pairs = -squares;
    for (uint32_t f = 0; f < p->k; f++)
        pairs += (double)p->sums[f] * p->sums[f];
    return linear + 0.5 * pairs;
}

/* Adds d * (dmargin / dparameter) of row i to the gradient rows. */
static void row_backward(const pass_t *p, size_t i, float d, float *grad_rows)
{
    const pst_sparse_batch_t *b = p->b;
    size_t base = b->row_ptr[0], width = 1 + p->k;
    for (size_t at = b->row_ptr[i]; at < b->row_ptr[i + 1]; at++) {
        size_t off = (size_t)p->slot[at - base] * width;
        const float *row = p->w->rows + off;
        float *g = grad_rows + off;
        float x = val_at(b, at), dx = d * x;
        g[0] += dx;
        for (uint32_t f = 0; f < p->k; f++)
            g[1 + f] += dx * (p->sums[f] - row[1 + f] * x);
    }
}

static int pass_check(const pass_t *p, bool labelled, pst_err_t *err)
{
    int rc = batch_check(p->b, err);
    if (rc != PST_OK)
        return rc;
    if (p->k > PST_FM_MAX_FACTORS)
        return pst_err_set(err, PST_EINVAL, "sparse model: FM factors %u exceed %d", p->k,
                           PST_FM_MAX_FACTORS);
    size_t nnz = pst_sparse_batch_nnz(p->b);
    for (size_t k = 0; k < nnz; k++) {
        if (p->slot[k] >= p->w->n_keys)
            return pst_err_set(err, PST_ERANGE, "sparse model: slot %u of entry %zu >= %zu keys",
                               p->slot[k], k, p->w->n_keys);
    }
    if (!labelled)
        return PST_OK;
    if (p->b->y == NULL && p->b->n_rows > 0)
        return pst_err_set(err, PST_EINVAL, "sparse model: a training batch needs labels");
    for (size_t i = 0; i < p->b->n_rows; i++) {
        if (!(p->b->y[i] >= 0.0f && p->b->y[i] <= 1.0f))
            return pst_err_set(err, PST_EINVAL, "sparse model: label %g of row %zu not in [0, 1]",
                               p->b->y[i], i);
    }
    return PST_OK;
}

/* The forward (prob, may be NULL) and, with grad, the mean log-loss gradient. */
static int run_pass(pass_t *p, pst_sparse_grad_t *grad, float *prob, pst_err_t *err)
{
    int rc = pass_check(p, grad != NULL, err);
    if (rc != PST_OK)
        return rc;
    size_t n_rows = p->b->n_rows;
    double scale = n_rows > 0 ? 1.0 / (double)n_rows : 0.0, loss = 0.0, bias_grad = 0.0;
    if (grad != NULL)
        memset(grad->rows, 0, p->w->n_keys * (1 + p->k) * sizeof(float));
    for (size_t i = 0; i < n_rows; i++) {
        double m = row_margin(p, i);
        if (!isfinite(m))
            return pst_err_set(err, PST_ENUMERIC, "sparse model: non-finite output at row %zu", i);
        /* sigmoid and log-loss from one exponential: exp(-|m|) is exp(-m) or exp(m) */
        double e = exp(-fabs(m)), prob_i = m >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        if (prob != NULL)
            prob[i] = (float)prob_i;
        if (grad == NULL)
            continue;
        double y = p->b->y[i], d = (prob_i - y) * scale;
        loss += fmax(m, 0.0) - m * y + log1p(e); /* -[y log p + (1 - y) log(1 - p)] */
        bias_grad += d;
        row_backward(p, i, (float)d, grad->rows);
    }
    if (grad != NULL) {
        grad->bias = (float)bias_grad;
        grad->loss = loss * scale;
    }
    return PST_OK;
}

int pst_fm_step(const pst_sparse_batch_t *b, uint32_t n_factors, const uint32_t *slot_of_nnz,
                const pst_sparse_weights_t *w, pst_sparse_grad_t *grad, pst_err_t *err)
{
    pass_t p = {.b = b, .k = n_factors, .slot = slot_of_nnz, .w = w};
    return run_pass(&p, grad, NULL, err);
}

int pst_sparse_lr_step(const pst_sparse_batch_t *b, const uint32_t *slot_of_nnz,
                       const pst_sparse_weights_t *w, pst_sparse_grad_t *grad, pst_err_t *err)
{
    return pst_fm_step(b, 0, slot_of_nnz, w, grad, err);
}

int pst_sparse_step(const pst_sparse_spec_t *spec, const pst_sparse_batch_t *b,
                    const uint32_t *slot_of_nnz, const pst_sparse_weights_t *w,
                    pst_sparse_grad_t *grad, pst_err_t *err)
{
    int rc = pst_sparse_spec_check(spec, err);
    if (rc != PST_OK)
        return rc;
    return pst_fm_step(b, factors_of(spec), slot_of_nnz, w, grad, err);
}

int pst_sparse_predict(const pst_sparse_spec_t *spec, const pst_sparse_batch_t *b,
                       const uint32_t *slot_of_nnz, const pst_sparse_weights_t *w, float *prob,
                       pst_err_t *err)
{
    int rc = pst_sparse_spec_check(spec, err);
    if (rc != PST_OK)
        return rc;
    pass_t p = {.b = b, .k = factors_of(spec), .slot = slot_of_nnz, .w = w};
    return run_pass(&p, NULL, prob, err);
}

/* ---- the local model's key map: open addressing over rows [weights | optimizer state] ---- */

#define INIT_STREAM 0x9e3779b97f4a7c15ull
#define MAX_ROWS 0xfffffffeu /* the table stores row + 1 in a uint32, 0 = empty */
#define NO_ROW UINT32_MAX    /* a key the map does not hold */
/* Keys looked up ahead of use: their table cells and rows are requested while earlier ones are
 * processed, hiding the memory latency of random access into large maps. */
#define PREFETCH_AHEAD 16
#define HUGE_PAGE ((size_t)2 << 20)
#define SMALL_PAGE ((size_t)4096)

/* Keys below this are placed by index in a direct array instead of the hash table: feature ids
 * of LIBSVM files and hashed features of up to 2^22 buckets then cost no hashing and 8 bytes of
 * cache per key, and ids numbered by frequency keep the frequent keys together. The array grows
 * to the largest such key seen (at most 32 MiB). */
#define DIRECT_KEYS_MAX ((uint64_t)1 << 22)

/* Where a key's row is, and a training step's mark on the key (see step_keys). */
typedef struct row_ref {
    uint32_t row1; /* row + 1, 0 = empty */
    uint32_t tag;
} row_ref_t;

/* A table cell holds its key beside the row, so a probe reads one cache line, not two. */
typedef struct table_cell {
    uint64_t key;
    row_ref_t ref;
} table_cell_t;

typedef struct key_map {
    uint32_t width; /* floats per entry: row_width + state width */
    size_t n, cap;
    uint64_t *keys;      // (cap) in order of first touch
    float *entries;      // (cap, width)
    table_cell_t *table; // (table_cap) at most half full; keys >= DIRECT_KEYS_MAX
    size_t table_cap;
    size_t n_hashed;   /* keys in the table */
    row_ref_t *direct; // (direct_cap) the refs of keys < direct_cap <= DIRECT_KEYS_MAX
    size_t direct_cap;
} key_map_t;

/* The cell where the probe for a key of hash h (pst_wire_key_hash) starts. */
static size_t table_slot(uint64_t h, size_t mask)
{
    return (size_t)((h >> 32 | h << 32) & mask);
}

/* The row of key, whose hash is h, or -1. */
static int64_t map_find_hashed(const key_map_t *m, uint64_t key, uint64_t h)
{
    if (key < DIRECT_KEYS_MAX)
        return key < m->direct_cap ? (int64_t)m->direct[key].row1 - 1 : -1;
    if (m->table_cap == 0)
        return -1;
    size_t mask = m->table_cap - 1;
    for (size_t at = table_slot(h, mask);; at = (at + 1) & mask) {
        const table_cell_t *cell = &m->table[at];
        if (cell->ref.row1 == 0)
            return -1;
        if (cell->key == key)
            return (int64_t)cell->ref.row1 - 1;
    }
}

static int64_t map_find(const key_map_t *m, uint64_t key)
{
    return map_find_hashed(m, key, pst_wire_key_hash(key));
}

/* Hints the cache to load the cell where the probe for a key of hash h starts. */
static void map_prefetch(const key_map_t *m, uint64_t h)
{
    if (m->table_cap > 0)
        __builtin_prefetch(&m->table[table_slot(h, m->table_cap - 1)]);
}

static void table_put(key_map_t *m, uint64_t key, uint64_t h, row_ref_t ref)
{
    size_t mask = m->table_cap - 1, at = table_slot(h, mask);
    while (m->table[at].ref.row1 != 0)
        at = (at + 1) & mask;
    m->table[at] = (table_cell_t){.key = key, .ref = ref};
}

/* Asks for huge pages under a large block: the map's tables and rows are read at random, and
 * with 4 KiB pages nearly every such read would also miss the TLB. Only a hint. */
static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes < HUGE_PAGE)
        return;
    uintptr_t start = ((uintptr_t)p + SMALL_PAGE - 1) & ~(uintptr_t)(SMALL_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~(uintptr_t)(SMALL_PAGE - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Room for n rows. */
static int rows_reserve(key_map_t *m, size_t n)
{
    if (n <= m->cap)
        return PST_OK;
    size_t cap = m->cap ? m->cap : 256;
    while (cap < n)
        cap *= 2;
    uint64_t *keys = realloc(m->keys, cap * sizeof *keys);
    if (keys == NULL)
        return PST_ENOMEM;
    m->keys = keys;
    float *entries = realloc(m->entries, cap * m->width * sizeof *entries);
    if (entries == NULL)
        return PST_ENOMEM;
    m->entries = entries;
    advise_huge(entries, cap * m->width * sizeof *entries);
    m->cap = cap;
    return PST_OK;
}

/* Room for n keys in the hash table, keeping it at most half full. */
static int table_reserve(key_map_t *m, size_t n)
{
    if (2 * n <= m->table_cap)
        return PST_OK;
    size_t cap = m->table_cap ? m->table_cap : 512;
    while (cap < 2 * n)
        cap *= 2;
    table_cell_t *table = calloc(cap, sizeof *table);
    if (table == NULL)
        return PST_ENOMEM;
    advise_huge(table, cap * sizeof *table);
    table_cell_t *old = m->table;
    size_t old_cap = m->table_cap;
    m->table = table;
    m->table_cap = cap;
    /* in the old table's order: a cell's new home lies near its old one (the slot keeps the
     * hash's low bits), so the writes stream instead of hopping at random */
    for (size_t at = 0; at < old_cap; at++) {
        if (old[at].ref.row1 != 0)
            table_put(m, old[at].key, pst_wire_key_hash(old[at].key), old[at].ref);
    }
    free(old);
    return PST_OK;
}

static void map_fini(key_map_t *m)
{
    free(m->keys);
    free(m->entries);
    free(m->table);
    free(m->direct);
    memset(m, 0, sizeof *m);
}

/* ---- the local model ---- */

struct pst_sparse_model {
    pst_sparse_train_opts_t opts;
    uint32_t row_width, state_width;
    key_map_t map;
    uint32_t tag_base; /* cells tagged in [tag_base, tag_base + unique keys) are in this step */
    float bias;
    float bias_state[2];
    pst_rng_t rng;
    /* step workspace, grown to the largest batch */
    size_t nnz_cap;
    uint64_t *keys;     // (nnz_cap)
    uint32_t *slot;     // (nnz_cap)
    uint64_t *hash;     // (nnz_cap) pst_wire_key_hash of each unique key
    uint32_t *entry;    // (nnz_cap) map row of each unique key
    float *rows, *grad; // (nnz_cap, row_width)
    float *state;       // (nnz_cap, state_width) FTRL: the z rows, then the n rows
    key_scratch_t scratch;
    /* a gathered mini-batch of shuffled rows */
    size_t batch_rows_cap, batch_nnz_cap;
    size_t *batch_row_ptr; // (batch_rows_cap + 1)
    uint64_t *batch_col;   // (batch_nnz_cap)
    float *batch_val;      // (batch_nnz_cap)
    float *batch_y;        // (batch_rows_cap)
};

void pst_sparse_train_opts_defaults(pst_sparse_train_opts_t *opts, pst_sparse_kind_t kind)
{
    memset(opts, 0, sizeof *opts);
    opts->spec.kind = kind;
    opts->spec.n_factors = kind == PST_SPARSE_FM ? 8 : 0;
    opts->optimizer = PST_SPARSE_OPT_FTRL;
    pst_ftrl_cfg_defaults(&opts->ftrl);
    /* gradients are means over batches of 256 rows: the per-example beta 1 divided by 256 */
    opts->ftrl.alpha = 0.1f;
    opts->ftrl.beta = 1.0f / 256.0f;
    pst_ftrl_adagrad_cfg_defaults(&opts->adagrad);
    opts->init_scale = kind == PST_SPARSE_FM ? 0.01f : 0.0f;
    opts->epochs = 1;
    opts->batch_size = 256;
    opts->shuffle = true;
}

static int opts_check(const pst_sparse_train_opts_t *o, pst_err_t *err)
{
    int rc = pst_sparse_spec_check(&o->spec, err);
    if (rc != PST_OK)
        return rc;
    if (o->optimizer == PST_SPARSE_OPT_FTRL)
        rc = pst_ftrl_cfg_check(&o->ftrl, err);
    else if (o->optimizer == PST_SPARSE_OPT_ADAGRAD)
        rc = pst_ftrl_adagrad_cfg_check(&o->adagrad, err);
    else
        rc = pst_err_set(err, PST_EINVAL, "sparse model: unknown optimizer %d", (int)o->optimizer);
    if (rc != PST_OK)
        return rc;
    if (!(o->init_scale >= 0.0f && isfinite(o->init_scale)))
        return pst_err_set(err, PST_EINVAL, "sparse model: init_scale %g must be >= 0",
                           o->init_scale);
    if (o->epochs < 0 || o->batch_size == 0)
        return pst_err_set(err, PST_EINVAL, "sparse model: epochs %d and batch size %zu", o->epochs,
                           o->batch_size);
    return PST_OK;
}

pst_sparse_model_t *pst_sparse_model_new(const pst_sparse_train_opts_t *opts, pst_err_t *err)
{
    if (opts_check(opts, err) != PST_OK)
        return NULL;
    pst_sparse_model_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        pst_err_set(err, PST_ENOMEM, "sparse model: out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->row_width = pst_sparse_row_width(&opts->spec);
    self->state_width =
        opts->optimizer == PST_SPARSE_OPT_FTRL ? 2 * self->row_width : self->row_width;
    self->map.width = self->row_width + self->state_width;
    pst_rng_init(&self->rng, opts->seed);
    return self;
}

static void free_workspace(pst_sparse_model_t *self)
{
    free(self->keys);
    free(self->slot);
    free(self->hash);
    free(self->entry);
    free(self->rows);
    free(self->grad);
    free(self->state);
    free(self->batch_row_ptr);
    free(self->batch_col);
    free(self->batch_val);
    free(self->batch_y);
    key_scratch_fini(&self->scratch);
}

void pst_sparse_model_destroy(pst_sparse_model_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_sparse_model_t *self = *self_p;
    map_fini(&self->map);
    free_workspace(self);
    free(self);
    *self_p = NULL;
}

/* realloc of *p to n elements of elem bytes; *p is kept on failure. */
static int grow(void **p, size_t n, size_t elem)
{
    void *q = realloc(*p, (n > 0 ? n : 1) * elem);
    if (q == NULL)
        return PST_ENOMEM;
    *p = q;
    return PST_OK;
}

static int workspace_reserve(pst_sparse_model_t *self, size_t nnz, pst_err_t *err)
{
    if (nnz > UINT32_MAX)
        return pst_err_set(err, PST_ERANGE, "sparse batch: %zu entries exceed 2^32", nnz);
    if (nnz <= self->nnz_cap)
        return PST_OK;
    size_t w = self->row_width;
    int rc = grow((void **)&self->keys, nnz, sizeof(uint64_t));
    if (rc == PST_OK)
        rc = grow((void **)&self->slot, nnz, sizeof(uint32_t));
    if (rc == PST_OK)
        rc = grow((void **)&self->hash, nnz, sizeof(uint64_t));
    if (rc == PST_OK)
        rc = grow((void **)&self->entry, nnz, sizeof(uint32_t));
    if (rc == PST_OK)
        rc = grow((void **)&self->rows, nnz, w * sizeof(float));
    if (rc == PST_OK)
        rc = grow((void **)&self->grad, nnz, w * sizeof(float));
    if (rc == PST_OK)
        rc = grow((void **)&self->state, nnz, self->state_width * sizeof(float));
    if (rc == PST_OK)
        rc = key_scratch_reserve(&self->scratch, nnz);
    if (rc != PST_OK)
        return pst_err_set(err, rc, "sparse model: no memory for a batch of %zu entries", nnz);
    self->nnz_cap = nnz;
    return PST_OK;
}

/* Value j of a new row of key: uniform in [-init_scale, init_scale] as a function of (seed, key,
 * j) only, the same function a parameter server's sparse tensor uses (ps/shard.c), so a local
 * model starts where a distributed one does. */
static float init_value(const pst_sparse_model_t *self, uint64_t key, uint32_t j)
{
    uint64_t h =
        pst_wire_key_hash(self->opts.init_seed ^ pst_wire_key_hash(key) ^ (INIT_STREAM * (j + 1)));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    return (float)((2.0 * u - 1.0) * self->opts.init_scale);
}

/* self->hash[0..n) = the hashes of keys[0..n), each computed once per step. */
static void hash_keys(pst_sparse_model_t *self, size_t n)
{
    for (size_t i = 0; i < n; i++)
        self->hash[i] = pst_wire_key_hash(self->keys[i]);
}

/* The map rows of keys[0..n) into self->entry, NO_ROW for keys not in the map. */
static void find_rows(pst_sparse_model_t *self, size_t n)
{
    hash_keys(self, n);
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            map_prefetch(&self->map, self->hash[i + PREFETCH_AHEAD]);
        int64_t found = map_find_hashed(&self->map, self->keys[i], self->hash[i]);
        self->entry[i] = found >= 0 ? (uint32_t)found : NO_ROW;
    }
}

/* self->rows (n, row_width) = the rows self->entry[0..n) name; zeros for NO_ROW. With state
 * (the rows exist), their FTRL state too: self->state = z (n, row_width), then n. */
static void gather(pst_sparse_model_t *self, size_t n, bool state)
{
    size_t w = self->row_width;
    float *z = self->state, *sq = self->state + n * w;
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n && self->entry[i + PREFETCH_AHEAD] != NO_ROW)
            __builtin_prefetch(self->map.entries +
                               (size_t)self->entry[i + PREFETCH_AHEAD] * self->map.width);
        /* a loop, not memcpy: rows are a few floats (LR: one) */
        float *dst = self->rows + i * w;
        uint32_t e = self->entry[i];
        const float *src = e != NO_ROW ? self->map.entries + (size_t)e * self->map.width : NULL;
        for (size_t j = 0; j < w; j++)
            dst[j] = src != NULL ? src[j] : 0.0f;
        for (size_t j = 0; state && j < w; j++) {
            z[i * w + j] = src[w + j];
            sq[i * w + j] = src[2 * w + j];
        }
    }
}

static void gather_rows(pst_sparse_model_t *self, size_t n)
{
    gather(self, n, false);
}

/* One optimizer step on count weights w with state beside them. */
static void optimizer_step(const pst_sparse_model_t *self, float *w, float *state, const float *g,
                           size_t count)
{
    if (self->opts.optimizer == PST_SPARSE_OPT_FTRL)
        pst_ftrl_update(&self->opts.ftrl, w, state, state + count, g, count);
    else
        pst_ftrl_adagrad_update(&self->opts.adagrad, w, state, g, count);
}

/* The ref of key (>= DIRECT_KEYS_MAX, of hash h): its cell's, or that of the empty cell where the
 * key goes, whose key is then set. The table has room. */
static row_ref_t *table_ref(key_map_t *m, uint64_t key, uint64_t h)
{
    size_t mask = m->table_cap - 1;
    for (size_t at = table_slot(h, mask);; at = (at + 1) & mask) {
        table_cell_t *cell = &m->table[at];
        if (cell->ref.row1 == 0)
            cell->key = key;
        if (cell->key == key)
            return &cell->ref;
    }
}

/* The direct array covers keys [0, n) (n <= DIRECT_KEYS_MAX); new refs are empty. */
static int direct_reserve(key_map_t *m, size_t n)
{
    if (n <= m->direct_cap)
        return PST_OK;
    size_t cap = m->direct_cap ? m->direct_cap : 1024;
    while (cap < n)
        cap *= 2;
    cap = cap < DIRECT_KEYS_MAX ? cap : DIRECT_KEYS_MAX;
    row_ref_t *d = realloc(m->direct, cap * sizeof *d);
    if (d == NULL)
        return PST_ENOMEM;
    memset(d + m->direct_cap, 0, (cap - m->direct_cap) * sizeof *d);
    advise_huge(d, cap * sizeof *d);
    m->direct = d;
    m->direct_cap = cap;
    return PST_OK;
}

/* A new row for key, whose empty ref is given (the map has room for the row). */
static void row_add(pst_sparse_model_t *self, uint64_t key, row_ref_t *ref)
{
    key_map_t *m = &self->map;
    size_t r = m->n++;
    m->keys[r] = key;
    float *e = m->entries + r * m->width;
    for (uint32_t j = 0; j < self->row_width; j++)
        e[j] = self->opts.init_scale != 0.0f ? init_value(self, key, j) : 0.0f;
    memset(e + self->row_width, 0, self->state_width * sizeof(float));
    *ref = (row_ref_t){.row1 = (uint32_t)r + 1, .tag = 0};
}

/* Starts a step of nnz entries: room for every key to be new, and a tag range no ref holds. */
static int step_begin(pst_sparse_model_t *self, size_t nnz, pst_err_t *err)
{
    key_map_t *m = &self->map;
    if (m->n + nnz > MAX_ROWS || rows_reserve(m, m->n + nnz) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add %zu rows to %zu", nnz, m->n);
    if (self->tag_base == 0 || self->tag_base > UINT32_MAX - nnz) {
        for (size_t at = 0; at < m->table_cap; at++)
            m->table[at].ref.tag = 0;
        for (size_t at = 0; at < m->direct_cap; at++)
            m->direct[at].tag = 0;
        self->tag_base = 1;
    }
    return PST_OK;
}

/* The ref of a key beyond the direct array's reach: the array grown to it, or its table cell
 * (inserted, with an empty ref, when new). NULL when out of memory. Tags survive the growth. */
static row_ref_t *ref_far(key_map_t *m, uint64_t key)
{
    if (key < DIRECT_KEYS_MAX)
        return direct_reserve(m, key + 1) == PST_OK ? &m->direct[key] : NULL;
    if (table_reserve(m, m->n_hashed + 1) != PST_OK)
        return NULL;
    return table_ref(m, key, pst_wire_key_hash(key));
}

/* Hints the cache to load the ref of key. */
static inline void ref_prefetch(const key_map_t *m, uint64_t key)
{
    if (key < m->direct_cap)
        __builtin_prefetch(&m->direct[key]);
    else if (key >= DIRECT_KEYS_MAX)
        map_prefetch(m, pst_wire_key_hash(key));
}

/* The loop of step_keys over the keys col32 or col64 (the other NULL): inlined once per width,
 * so the width is a constant inside. */
static inline __attribute__((always_inline)) int step_keys_of(pst_sparse_model_t *self,
                                                              const uint32_t *col32,
                                                              const uint64_t *col64, size_t nnz,
                                                              uint32_t *n_unique)
{
    key_map_t *m = &self->map;
    uint32_t *restrict slot = self->slot, *restrict entry = self->entry;
    row_ref_t *direct = m->direct;
    uint32_t tag = self->tag_base, unique = 0;
    for (size_t k = 0; k < nnz; k++) {
        if (k + PREFETCH_AHEAD < nnz)
            ref_prefetch(m, col64 ? col64[k + PREFETCH_AHEAD] : col32[k + PREFETCH_AHEAD]);
        uint64_t key = col64 ? col64[k] : col32[k];
        row_ref_t *ref = key < m->direct_cap ? &direct[key] : ref_far(m, key);
        if (ref == NULL)
            return PST_ENOMEM;
        direct = m->direct;
        if (ref->row1 == 0) {
            row_add(self, key, ref);
            m->n_hashed += key >= DIRECT_KEYS_MAX;
        }
        if (ref->tag < tag) {
            ref->tag = tag + unique;
            entry[unique++] = ref->row1 - 1;
        }
        slot[k] = ref->tag - tag;
    }
    self->tag_base = tag + unique;
    *n_unique = unique;
    return PST_OK;
}

/* The step's unique keys without sorting: every entry's key is looked up (its row created on
 * first touch) and the first entry of a key in the step tags the key's ref with the next slot.
 * self->entry[0..*n) = the rows of the unique keys in order of first occurrence, self->slot[k] =
 * entry k's slot. A key's gradient still sums its entries in entry order, so the step equals
 * one over sorted keys; rows are created in order of first occurrence. */
static int step_keys(pst_sparse_model_t *self, const pst_sparse_batch_t *b, size_t *n,
                     pst_err_t *err)
{
    size_t nnz = pst_sparse_batch_nnz(b), base = nnz > 0 ? b->row_ptr[0] : 0;
    int rc = step_begin(self, nnz, err);
    if (rc != PST_OK)
        return rc;
    uint32_t unique = 0;
    if (b->col64 != NULL)
        rc = step_keys_of(self, NULL, b->col64 + base, nnz, &unique);
    else
        rc = step_keys_of(self, b->col32 + base, NULL, nnz, &unique);
    if (rc != PST_OK)
        return pst_err_set(err, rc, "sparse model: no memory for the rows of %zu keys",
                           self->map.n);
    *n = unique;
    return PST_OK;
}

/* The gathered weights and state back into the rows self->entry[0..n). */
static void scatter_rows(pst_sparse_model_t *self, size_t n)
{
    size_t rw = self->row_width;
    const float *w = self->rows, *z = self->state, *sq = self->state + n * rw;
    for (size_t i = 0; i < n; i++) {
        float *e = self->map.entries + (size_t)self->entry[i] * self->map.width;
        for (size_t j = 0; j < rw; j++) {
            e[j] = w[i * rw + j];
            e[rw + j] = z[i * rw + j];
            e[2 * rw + j] = sq[i * rw + j];
        }
    }
}

/* The optimizer step of the rows self->entry[0..n), gathered into self->rows (and for FTRL their
 * state into self->state), with the gradients in self->grad. FTRL steps the gathered block at once
 * (pst_ftrl_update_kept: the model's FTRL settings never change and only its steps write the rows,
 * so every row's weights are those of its state) and writes it back; AdaGrad steps the rows in
 * place. */
static void optimizer_steps(pst_sparse_model_t *self, size_t n)
{
    size_t rw = self->row_width;
    if (self->opts.optimizer == PST_SPARSE_OPT_FTRL) {
        pst_ftrl_update_kept(&self->opts.ftrl, self->rows, self->state, self->state + n * rw,
                             self->grad, n * rw);
        scatter_rows(self, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float *e = self->map.entries + (size_t)self->entry[i] * self->map.width;
        optimizer_step(self, e, e + rw, self->grad + i * rw, rw);
    }
}

int pst_sparse_model_update(pst_sparse_model_t *self, const pst_sparse_batch_t *b, double *loss,
                            pst_err_t *err)
{
    int rc = batch_check(b, err);
    if (rc == PST_OK)
        rc = workspace_reserve(self, pst_sparse_batch_nnz(b), err);
    size_t n_keys = 0;
    if (rc == PST_OK)
        rc = step_keys(self, b, &n_keys, err);
    if (rc != PST_OK)
        return rc;
    gather(self, n_keys, self->opts.optimizer == PST_SPARSE_OPT_FTRL);
    pst_sparse_weights_t w = {.rows = self->rows, .n_keys = n_keys, .bias = self->bias};
    pst_sparse_grad_t g = {.rows = self->grad};
    rc = pst_fm_step(b, factors_of(&self->opts.spec), self->slot, &w, &g, err);
    if (rc != PST_OK)
        return rc;
    optimizer_steps(self, n_keys);
    optimizer_step(self, &self->bias, self->bias_state, &g.bias, 1);
    if (loss != NULL)
        *loss = g.loss;
    return PST_OK;
}

int pst_sparse_model_predict(pst_sparse_model_t *self, const pst_sparse_batch_t *b, float *prob,
                             pst_err_t *err)
{
    int rc = batch_check(b, err);
    if (rc == PST_OK)
        rc = workspace_reserve(self, pst_sparse_batch_nnz(b), err);
    if (rc != PST_OK)
        return rc;
    size_t n_keys = collect_keys(&self->scratch, b, self->keys, self->slot);
    find_rows(self, n_keys);
    gather_rows(self, n_keys);
    pst_sparse_weights_t w = {.rows = self->rows, .n_keys = n_keys, .bias = self->bias};
    return pst_sparse_predict(&self->opts.spec, b, self->slot, &w, prob, err);
}

/* The map rows of keys[0..n) into self->entry, creating missing ones. */
static int touch_rows(pst_sparse_model_t *self, size_t n, pst_err_t *err)
{
    key_map_t *m = &self->map;
    if (m->n + n > MAX_ROWS || rows_reserve(m, m->n + n) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add %zu rows to %zu", n, m->n);
    for (size_t i = 0; i < n; i++) {
        uint64_t key = self->keys[i];
        row_ref_t *ref = key < m->direct_cap ? &m->direct[key] : ref_far(m, key);
        if (ref == NULL)
            return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add a row (%zu rows)", m->n);
        if (ref->row1 == 0) {
            row_add(self, key, ref);
            m->n_hashed += key >= DIRECT_KEYS_MAX;
        }
        self->entry[i] = ref->row1 - 1;
    }
    return PST_OK;
}

int pst_sparse_model_lookup(pst_sparse_model_t *self, const pst_sparse_batch_t *b, bool create,
                            const float **rows, const uint32_t **slot_of_nnz, size_t *n_keys,
                            pst_err_t *err)
{
    int rc = batch_check(b, err);
    if (rc == PST_OK)
        rc = workspace_reserve(self, pst_sparse_batch_nnz(b), err);
    if (rc != PST_OK)
        return rc;
    size_t n = collect_keys(&self->scratch, b, self->keys, self->slot);
    if (create)
        rc = touch_rows(self, n, err);
    else
        find_rows(self, n);
    if (rc != PST_OK)
        return rc;
    gather_rows(self, n);
    *rows = self->rows;
    *slot_of_nnz = self->slot;
    *n_keys = n;
    return PST_OK;
}

void pst_sparse_model_apply(pst_sparse_model_t *self, const float *grad, size_t n_keys)
{
    size_t rw = self->row_width;
    for (size_t i = 0; i < n_keys; i++) {
        if (self->entry[i] == NO_ROW) /* a lookup without create: nothing to step */
            continue;
        float *e = self->map.entries + (size_t)self->entry[i] * self->map.width;
        optimizer_step(self, e, e + rw, grad + i * rw, rw);
    }
}

/* ---- training and evaluation over a CSR dataset ---- */

static int dataset_check(const pst_dataset_t *d, pst_err_t *err)
{
    if (!pst_dataset_is_sparse(d) || d->col_idx == NULL)
        return pst_err_set(err, PST_EINVAL, "sparse model: the dataset is not CSR");
    if (d->task != PST_TASK_CLASSIFICATION || d->n_classes > 2)
        return pst_err_set(err, PST_EINVAL, "sparse model: needs a binary classification set");
    return PST_OK;
}

/* Rows [start, start + n) of d as a batch, without copying. */
static pst_sparse_batch_t window(const pst_dataset_t *d, size_t start, size_t n)
{
    pst_sparse_batch_t b = {.n_rows = n,
                            .row_ptr = d->row_ptr + start,
                            .col32 = d->col_idx,
                            .val = d->val,
                            .y = d->y + start};
    return b;
}

static int batch_buffers_reserve(pst_sparse_model_t *self, size_t n_rows, size_t nnz)
{
    int rc = PST_OK;
    if (n_rows > self->batch_rows_cap) {
        rc = grow((void **)&self->batch_row_ptr, n_rows + 1, sizeof(size_t));
        if (rc == PST_OK)
            rc = grow((void **)&self->batch_y, n_rows, sizeof(float));
        if (rc == PST_OK)
            self->batch_rows_cap = n_rows;
    }
    if (rc == PST_OK && nnz > self->batch_nnz_cap) {
        rc = grow((void **)&self->batch_col, nnz, sizeof(uint64_t));
        if (rc == PST_OK)
            rc = grow((void **)&self->batch_val, nnz, sizeof(float));
        if (rc == PST_OK)
            self->batch_nnz_cap = nnz;
    }
    return rc;
}

/* Rows idx[0..n) of d copied into the model's batch buffers. */
static int gather_batch(pst_sparse_model_t *self, const pst_dataset_t *d, const size_t *idx,
                        size_t n, pst_sparse_batch_t *out, pst_err_t *err)
{
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++)
        nnz += d->row_ptr[idx[i] + 1] - d->row_ptr[idx[i]];
    if (batch_buffers_reserve(self, n, nnz) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sparse model: no memory for a batch");
    size_t at = 0;
    self->batch_row_ptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t src = d->row_ptr[idx[i]]; src < d->row_ptr[idx[i] + 1]; src++, at++) {
            self->batch_col[at] = d->col_idx[src];
            self->batch_val[at] = d->val != NULL ? d->val[src] : 1.0f;
        }
        self->batch_row_ptr[i + 1] = at;
        self->batch_y[i] = d->y[idx[i]];
    }
    *out = (pst_sparse_batch_t){.n_rows = n,
                                .row_ptr = self->batch_row_ptr,
                                .col64 = self->batch_col,
                                .val = self->batch_val,
                                .y = self->batch_y};
    return PST_OK;
}

/* One pass over the rows in the order of idx; *loss = the mean batch loss. */
static int train_epoch(pst_sparse_model_t *self, const pst_dataset_t *d, const size_t *idx,
                       double *loss, pst_err_t *err)
{
    size_t n = d->n_rows, bs = self->opts.batch_size, n_batches = 0;
    double sum = 0.0;
    for (size_t start = 0; start < n; start += bs, n_batches++) {
        size_t len = n - start < bs ? n - start : bs;
        pst_sparse_batch_t b;
        int rc = PST_OK;
        if (self->opts.shuffle)
            rc = gather_batch(self, d, idx + start, len, &b, err);
        else
            b = window(d, start, len);
        double batch_loss = 0.0;
        if (rc == PST_OK)
            rc = pst_sparse_model_update(self, &b, &batch_loss, err);
        if (rc != PST_OK)
            return rc;
        sum += batch_loss;
    }
    *loss = n_batches > 0 ? sum / (double)n_batches : 0.0;
    return PST_OK;
}

int pst_sparse_train(pst_sparse_model_t *self, const pst_dataset_t *train, double *train_loss,
                     pst_err_t *err)
{
    int rc = dataset_check(train, err);
    if (rc != PST_OK)
        return rc;
    size_t n = train->n_rows;
    size_t *idx = malloc((n > 0 ? n : 1) * sizeof *idx);
    if (idx == NULL)
        return pst_err_set(err, PST_ENOMEM, "sparse model: out of memory");
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    double loss = 0.0;
    for (int epoch = 0; epoch < self->opts.epochs && rc == PST_OK; epoch++) {
        if (self->opts.shuffle)
            pst_rng_shuffle(&self->rng, idx, n);
        rc = train_epoch(self, train, idx, &loss, err);
    }
    free(idx);
    if (rc == PST_OK && train_loss != NULL)
        *train_loss = loss;
    return rc;
}

/* Mean log-loss of probabilities, clipped to [1e-15, 1 - 1e-15] as scikit-learn does. */
static double mean_log_loss(const float *prob, const float *y, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double p = fmin(fmax(prob[i], 1e-15), 1.0 - 1e-15);
        sum -= y[i] * log(p) + (1.0 - y[i]) * log(1.0 - p);
    }
    return n > 0 ? sum / (double)n : 0.0;
}

int pst_sparse_evaluate(pst_sparse_model_t *self, const pst_dataset_t *data, float *prob,
                        double *log_loss, double *auc, pst_err_t *err)
{
    int rc = dataset_check(data, err);
    if (rc != PST_OK)
        return rc;
    size_t n = data->n_rows;
    float *scores = prob != NULL ? prob : malloc((n > 0 ? n : 1) * sizeof *scores);
    if (scores == NULL)
        return pst_err_set(err, PST_ENOMEM, "sparse model: out of memory");
    for (size_t start = 0; start < n && rc == PST_OK; start += EVAL_ROWS) {
        size_t len = n - start < EVAL_ROWS ? n - start : EVAL_ROWS;
        pst_sparse_batch_t b = window(data, start, len);
        rc = pst_sparse_model_predict(self, &b, scores + start, err);
    }
    if (rc == PST_OK && log_loss != NULL)
        *log_loss = mean_log_loss(scores, data->y, n);
    if (rc == PST_OK && auc != NULL)
        *auc = pst_roc_auc(scores, data->y, n);
    if (scores != prob)
        free(scores);
    return rc;
}

uint64_t pst_sparse_model_bytes(const pst_sparse_model_t *self)
{
    const key_map_t *m = &self->map;
    return (uint64_t)m->cap * (sizeof(uint64_t) + m->width * sizeof(float)) +
           (uint64_t)m->table_cap * sizeof(table_cell_t) +
           (uint64_t)m->direct_cap * sizeof(row_ref_t);
}

size_t pst_sparse_model_n_keys(const pst_sparse_model_t *self)
{
    return self->map.n;
}

const float *pst_sparse_model_entry(const pst_sparse_model_t *self, size_t index, uint64_t *key)
{
    if (index >= self->map.n)
        return NULL;
    if (key != NULL)
        *key = self->map.keys[index];
    return self->map.entries + index * self->map.width;
}

const float *pst_sparse_model_row(const pst_sparse_model_t *self, uint64_t key)
{
    int64_t found = map_find(&self->map, key);
    return found >= 0 ? self->map.entries + (size_t)found * self->map.width : NULL;
}

float pst_sparse_model_bias(const pst_sparse_model_t *self)
{
    return self->bias;
}
