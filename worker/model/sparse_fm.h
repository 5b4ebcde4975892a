/* Sparse LR and factorization machines over CSR batches: the forward, the batch gradient of the
 * mean log-loss and the prediction, given the rows of the batch's unique keys. */
#ifndef PST_WORKER_MODEL_SPARSE_FM_H
#define PST_WORKER_MODEL_SPARSE_FM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "worker/model/sparse_batch.h"

typedef enum { PST_SPARSE_LR = 0, PST_SPARSE_FM = 1 } pst_sparse_kind_t;

enum { PST_FM_MAX_FACTORS = 512 };

/* LR: a key's row is [w_j] (row_width 1). FM (Rendle, 2010): a key's row is [w_j, v_j1..v_jk]
 * (row_width 1 + k). Both have one scalar bias b outside the rows, and a sigmoid output:
 *   LR: p = sigmoid(b + sum_j w_j x_j)
 *   FM: p = sigmoid(b + sum_j w_j x_j + 1/2 sum_f ((sum_j v_jf x_j)^2 - sum_j v_jf^2 x_j^2)) */
typedef struct pst_sparse_spec {
    pst_sparse_kind_t kind;
    uint32_t n_factors; /* FM: k in [1, PST_FM_MAX_FACTORS]; LR: ignored */
} pst_sparse_spec_t;

int pst_sparse_spec_check(const pst_sparse_spec_t *spec, pst_err_t *err);
/* Floats per key: 1 for LR, 1 + k for FM. */
uint32_t pst_sparse_row_width(const pst_sparse_spec_t *spec);

/* The weights a batch reads: the rows of its unique keys (as pulled) and the bias. */
typedef struct pst_sparse_weights {
    const float *rows; // (n_keys, row_width): row i belongs to keys[i] of pst_sparse_batch_keys
    size_t n_keys;
    float bias;
} pst_sparse_weights_t;

/* A batch's gradient of the mean log-loss over its rows, in the shape of the weights. */
typedef struct pst_sparse_grad {
    float *rows; // (n_keys, row_width), every row written (push them with the same keys)
    float bias;
    double loss; /* mean log-loss of the batch under the given weights */
} pst_sparse_grad_t;

/* Forward and backward on a labelled batch, O(row_width nnz): LR g_j = mean_i (p_i - y_i) x_ij;
 * FM also g_vjf = mean_i (p_i - y_i) x_ij (sum_l v_lf x_il - v_jf x_ij); bias: mean (p_i - y_i).
 * slot_of_nnz as from pst_sparse_batch_keys. Errors: PST_EINVAL (no labels, bad spec),
 * PST_ERANGE (a slot >= n_keys), PST_ENUMERIC (a non-finite output). */
int pst_sparse_lr_step(const pst_sparse_batch_t *b, const uint32_t *slot_of_nnz,
                       const pst_sparse_weights_t *w, pst_sparse_grad_t *grad, pst_err_t *err);
int pst_fm_step(const pst_sparse_batch_t *b, uint32_t n_factors, const uint32_t *slot_of_nnz,
                const pst_sparse_weights_t *w, pst_sparse_grad_t *grad, pst_err_t *err);
/* Either of the two, by spec. */
int pst_sparse_step(const pst_sparse_spec_t *spec, const pst_sparse_batch_t *b,
                    const uint32_t *slot_of_nnz, const pst_sparse_weights_t *w,
                    pst_sparse_grad_t *grad, pst_err_t *err);
/* prob (n_rows) = p of every row; labels are not read. */
int pst_sparse_predict(const pst_sparse_spec_t *spec, const pst_sparse_batch_t *b,
                       const uint32_t *slot_of_nnz, const pst_sparse_weights_t *w, float *prob,
                       pst_err_t *err);

/* Factors of the spec: n_factors for FM, 0 for LR (LR is the FM without factors). */
uint32_t pst_sparse_factors(const pst_sparse_spec_t *spec);

#endif
