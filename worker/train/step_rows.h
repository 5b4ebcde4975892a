/* The arrays a parameter-server trainer keeps for one step: the batch's unique keys, the key
 * index of every batch entry, the keys' pulled rows and their gradients. Grown to the largest
 * batch seen and reused from step to step. */
#ifndef PST_WORKER_TRAIN_STEP_ROWS_H
#define PST_WORKER_TRAIN_STEP_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct pst_step_rows {
    size_t cap;         /* entries the arrays hold */
    uint64_t *keys;     // (cap) the batch's unique keys, ascending
    uint32_t *slot;     // (cap) key index of every entry
    float *rows, *grad; // (cap, row width)
} pst_step_rows_t;

/* Room for nnz entries of rows of width floats (a no-op when there is room); PST_ENOMEM names
 * the batch size. */
int pst_step_rows_reserve(pst_step_rows_t *s, size_t nnz, uint32_t width, pst_err_t *err);
void pst_step_rows_fini(pst_step_rows_t *s);

#endif
