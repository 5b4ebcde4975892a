/* The arrays a parameter-server trainer keeps for one step: the batch's unique keys, the key
 * index of every batch entry, the keys' pulled rows and their gradients. Grown to the largest
 * batch seen and reused from step to step. */
#ifndef PST_WORKER_TRAIN_STEP_ROWS_H
#define PST_WORKER_TRAIN_STEP_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "worker/model/sparse_batch.h"

typedef struct pst_step_rows {
    size_t cap;         /* entries the arrays hold */
    uint64_t *keys;     // (cap) the batch's unique keys, ascending
    uint32_t *slot;     // (cap) key index of every entry
    float *rows, *grad; // (cap, row width)
    /* the key sort's buffers and histograms (~50 KB), kept: set up per step they cost as much as
     * the sort itself */
    pst_sparse_keysort_t sort;
} pst_step_rows_t;

/* Room for nnz entries of rows of width floats (a no-op when there is room); PST_ENOMEM names
 * the batch size. */
int pst_step_rows_reserve(pst_step_rows_t *s, size_t nnz, uint32_t width, pst_err_t *err);
void pst_step_rows_fini(pst_step_rows_t *s);
/* pst_sparse_batch_keys of b into s->keys and s->slot (reserved for the batch's nnz), with the
 * sort's buffers kept in s: the same keys and slots, no allocation once the arrays are grown. */
int pst_step_rows_keys(pst_step_rows_t *s, const pst_sparse_batch_t *b, size_t *n_keys,
                       pst_err_t *err);

#endif
