/* Sparse batches: CSR mini-batches of binary-labelled rows and the unique keys a step touches. */
#ifndef PST_WORKER_MODEL_SPARSE_BATCH_H
#define PST_WORKER_MODEL_SPARSE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A CSR mini-batch of binary-labelled rows. The column arrays are indexed by the absolute offsets
 * in row_ptr, so a batch can be a window of a larger CSR set: its nnz k (0-based within the
 * batch) is entry row_ptr[0] + k of col32/col64/val. A feature's key is its id (col32) or the
 * key itself (col64, e.g. a hashed feature); the same key may occur twice in a row. */
typedef struct pst_sparse_batch {
    size_t n_rows;
    const size_t *row_ptr; // (n_rows + 1), non-decreasing
    const uint32_t *col32; // feature ids, or NULL
    const uint64_t *col64; // feature keys, or NULL; exactly one of col32, col64 is set
    const float *val;      // feature values, or NULL: every value is 1 (one-hot click features)
    const float *y;        // (n_rows) labels in [0, 1]; may be NULL for prediction
} pst_sparse_batch_t;

static inline size_t pst_sparse_batch_nnz(const pst_sparse_batch_t *b)
{
    return b->n_rows > 0 ? b->row_ptr[b->n_rows] - b->row_ptr[0] : 0;
}

/* PST_EINVAL unless exactly one key array is set and row_ptr does not decrease. */
int pst_sparse_batch_check(const pst_sparse_batch_t *b, pst_err_t *err);

/* The batch's unique keys, ascending, into keys[0..*n_keys) (capacity: the batch's nnz), and for
 * every nnz k the index of its key: keys[slot_of_nnz[k]] is nnz k's key (slot_of_nnz: nnz).
 * These are exactly the keys a worker pulls (pst_psclient_pull_sparse wants sorted unique keys). */
int pst_sparse_batch_keys(const pst_sparse_batch_t *b, uint64_t *keys, size_t *n_keys,
                          uint32_t *slot_of_nnz, pst_err_t *err);

/* ---- the key sort behind pst_sparse_batch_keys, with buffers kept between batches ---- */

/* Digits of at most 11 bits, as even as the key width allows: 20-bit ids sort in 2 passes of 10. */
enum {
    PST_SPARSE_KEYSORT_DIGIT_BITS = 11,
    PST_SPARSE_KEYSORT_DIGITS =
        (64 + PST_SPARSE_KEYSORT_DIGIT_BITS - 1) / PST_SPARSE_KEYSORT_DIGIT_BITS
};

/* Ping-pong buffers of an LSD radix sort of (key, nnz index) pairs; zeroed = empty. */
typedef struct pst_sparse_keysort {
    size_t cap;
    uint64_t *sort[2];  // (cap) packed key << index_bits | nnz, or bare keys
    uint32_t *index[2]; // (cap) nnz of sort[.][i] when the pair does not fit 64 bits
    /* histogram of every digit */
    uint32_t count[PST_SPARSE_KEYSORT_DIGITS][1 << PST_SPARSE_KEYSORT_DIGIT_BITS];
} pst_sparse_keysort_t;

/* Room for batches of nnz entries: PST_OK or PST_ENOMEM (the buffers then empty). */
int pst_sparse_keysort_reserve(pst_sparse_keysort_t *s, size_t nnz);
void pst_sparse_keysort_fini(pst_sparse_keysort_t *s);
/* pst_sparse_batch_keys on a checked batch with nnz < 2^32 and s->cap >= nnz: returns n_keys. */
size_t pst_sparse_keysort_collect(pst_sparse_keysort_t *s, const pst_sparse_batch_t *b,
                                  uint64_t *keys, uint32_t *slot_of_nnz);

#endif
