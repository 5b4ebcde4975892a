/* Wide & deep over sparse features (Cheng et al., 2016): a wide logistic part on the features
 * themselves and a deep part that pools each field's feature embeddings, concatenates the pooled
 * vectors and feeds them to a dense layer stack (worker/model); the two logits are summed and
 * trained with binary cross-entropy. */
#ifndef PST_WORKER_MODEL_WIDE_DEEP_H
#define PST_WORKER_MODEL_WIDE_DEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/rng.h"
#include "worker/model/model.h"
#include "worker/model/sparse_model.h"

enum { PST_WD_MAX_FIELDS = 4096, PST_WD_MAX_DIM = 512, PST_WD_MAX_LAYERS = 64 };

typedef enum { PST_WD_POOL_SUM = 0, PST_WD_POOL_MEAN = 1 } pst_wd_pooling_t;

/* Parses "sum" or "mean". */
int pst_wd_pooling_parse(const char *name, pst_wd_pooling_t *out);

/* A key's row is [w_j, e_j1..e_jd] (row width 1 + d), like a factorization machine's. With
 * x_ij the value of feature j in row i and F(j) its field:
 *   pooled_if = sum over the row's features j with F(j) = f of x_ij e_j (mean: divided by their
 *               count; a field with no feature in the row pools to 0)
 *   h_i       = [pooled_i0, ..., pooled_i(F-1), r_i0, ..., r_i(R-1)], r_if = sum of x_ij over F(j)
 * = f p_i       = sigmoid(sum_j w_j x_ij + MLP(h_i)),  MLP = hidden layers + dense:1 (linear) The
 * MLP's output bias is the model's only bias. */
typedef struct pst_wide_deep_spec {
    uint32_t n_fields;    /* F, 1..PST_WD_MAX_FIELDS */
    uint32_t field_shift; /* > 0: F(key) = key >> field_shift (hashed TSV: field << bits | bucket);
                             0: F(key) = key mod n_fields (LIBSVM ids) */
    uint32_t n_raw;       /* R <= F: fields 0..R-1 also feed their raw value (numeric columns) */
    uint32_t dim;         /* d, 1..PST_WD_MAX_DIM */
    pst_wd_pooling_t pooling;
    const pst_layer_spec_t *hidden; /* (n_hidden) hidden stack, e.g. dense:64, relu, dropout:0.1 */
    int n_hidden;                   /* 0..PST_WD_MAX_LAYERS - 1; 0: a linear deep part */
    int max_batch;                  /* most rows a training step takes (>= 1) */
} pst_wide_deep_spec_t;

typedef struct pst_wide_deep pst_wide_deep_t;

/* Builds the model (the MLP's parameters uninitialised: see pst_wide_deep_init_dense). Errors
 * name the bad field of spec. Caller owns the result. */
pst_wide_deep_t *pst_wide_deep_new(const pst_wide_deep_spec_t *spec, pst_err_t *err);
void pst_wide_deep_destroy(pst_wide_deep_t **self_p);

/* The model's spec; its hidden points into the model (valid while it lives). */
const pst_wide_deep_spec_t *pst_wide_deep_spec(const pst_wide_deep_t *self);
/* Floats per key: 1 + d. */
uint32_t pst_wide_deep_row_width(const pst_wide_deep_t *self);
/* Width of the MLP's input: F d + R. */
int pst_wide_deep_input_width(const pst_wide_deep_t *self);
/* The dense part: its parameter arena (pst_model_params, the weights a worker pulls) and the
 * gradient arena the last step wrote (pst_model_grads). */
pst_model_t *pst_wide_deep_mlp(pst_wide_deep_t *self);
/* He/Glorot initialisation of the MLP from seed (worker/model/model.h). */
void pst_wide_deep_init_dense(pst_wide_deep_t *self, uint64_t seed);

/* Forward and backward on a labelled batch of at most max_batch rows. rows (n_keys, row_width)
 * are the rows of the batch's unique keys and slot_of_nnz maps every nnz to its row, as from
 * pst_sparse_batch_keys. grad_rows (n_keys, row_width) receives the gradient of the mean
 * log-loss for every row (all written), the MLP's gradient arena that of its parameters; *loss
 * (may be NULL) the mean log-loss. dropout (may be NULL: no dropout) draws the dropout masks.
 * Errors: PST_EINVAL (no labels, too many rows), PST_ERANGE (a slot >= n_keys, a key whose
 * field is >= F), PST_ENUMERIC (a non-finite logit). */
int pst_wide_deep_step(pst_wide_deep_t *self, const pst_sparse_batch_t *b,
                       const uint32_t *slot_of_nnz, const float *rows, size_t n_keys,
                       pst_rng_t *dropout, float *grad_rows, double *loss, pst_err_t *err);

/* prob (n_rows) = p of every row of a batch of any size, without dropout; labels are not read. */
int pst_wide_deep_predict(pst_wide_deep_t *self, const pst_sparse_batch_t *b,
                          const uint32_t *slot_of_nnz, const float *rows, size_t n_keys,
                          float *prob, pst_err_t *err);

#endif
