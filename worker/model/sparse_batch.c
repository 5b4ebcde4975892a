/* Sparse batches: checks and the sorted unique keys of a batch with the key slot of every entry. */
#include "worker/model/sparse_batch.h"

#include <stdlib.h>
#include <string.h>

enum { DIGIT_BITS = PST_SPARSE_KEYSORT_DIGIT_BITS, BUCKETS = 1 << DIGIT_BITS };

int pst_sparse_batch_check(const pst_sparse_batch_t *b, pst_err_t *err)
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

/* ---- batch keys: an LSD radix sort of (key, nnz index) pairs ---- */

void pst_sparse_keysort_fini(pst_sparse_keysort_t *s)
{
    for (int i = 0; i < 2; i++) {
        free(s->sort[i]);
        free(s->index[i]);
        s->sort[i] = NULL;
        s->index[i] = NULL;
    }
    s->cap = 0;
}

int pst_sparse_keysort_reserve(pst_sparse_keysort_t *s, size_t nnz)
{
    if (nnz <= s->cap)
        return PST_OK;
    pst_sparse_keysort_fini(s);
    size_t n = nnz > 0 ? nnz : 1;
    for (int i = 0; i < 2; i++) {
        s->sort[i] = malloc(n * sizeof(uint64_t));
        s->index[i] = malloc(n * sizeof(uint32_t));
        if (s->sort[i] == NULL || s->index[i] == NULL) {
            pst_sparse_keysort_fini(s);
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
static void count_digits(pst_sparse_keysort_t *s, const uint64_t *v, size_t n, unsigned low,
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
static void radix_sort(pst_sparse_keysort_t *s, size_t n, unsigned low, unsigned bits,
                       bool with_index, int *cur)
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
size_t pst_sparse_keysort_collect(pst_sparse_keysort_t *s, const pst_sparse_batch_t *b,
                                  uint64_t *keys, uint32_t *slot_of_nnz)
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
    int rc = pst_sparse_batch_check(b, err);
    if (rc != PST_OK)
        return rc;
    size_t nnz = pst_sparse_batch_nnz(b);
    if (nnz > UINT32_MAX)
        return pst_err_set(err, PST_ERANGE, "sparse batch: %zu entries exceed 2^32", nnz);
    pst_sparse_keysort_t *s = calloc(1, sizeof *s);
    if (s == NULL || pst_sparse_keysort_reserve(s, nnz) != PST_OK) {
        free(s);
        return pst_err_set(err, PST_ENOMEM, "sparse batch: no memory for %zu entries", nnz);
    }
    *n_keys = pst_sparse_keysort_collect(s, b, keys, slot_of_nnz);
    pst_sparse_keysort_fini(s);
    free(s);
    return PST_OK;
}
