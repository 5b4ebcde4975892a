/* Sparse models over CSR mini-batches: logistic regression and factorization machines keyed by
 * uint64 feature keys, their batch gradients, and a local trainer with FTRL or AdaGrad. */
#ifndef PST_WORKER_MODEL_SPARSE_MODEL_H
#define PST_WORKER_MODEL_SPARSE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"
#include "common/optim/ftrl.h"

/* ---- batches and their keys ---- */

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

/* The batch's unique keys, ascending, into keys[0..*n_keys) (capacity: the batch's nnz), and for
 * every nnz k the index of its key: keys[slot_of_nnz[k]] is nnz k's key (slot_of_nnz: nnz).
 * These are exactly the keys a worker pulls (pst_psclient_pull_sparse wants sorted unique keys). */
int pst_sparse_batch_keys(const pst_sparse_batch_t *b, uint64_t *keys, size_t *n_keys,
                          uint32_t *slot_of_nnz, pst_err_t *err);

/* ---- models ---- */

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

/* ---- local training ---- */

typedef enum { PST_SPARSE_OPT_FTRL = 0, PST_SPARSE_OPT_ADAGRAD = 1 } pst_sparse_opt_t;

typedef struct pst_sparse_train_opts {
    pst_sparse_spec_t spec;         /* LR */
    pst_sparse_opt_t optimizer;     /* FTRL */
    pst_ftrl_cfg_t ftrl;            /* alpha 0.1, beta 1/256, l1 0, l2 0 (see common/ftrl.h) */
    pst_ftrl_adagrad_cfg_t adagrad; /* pst_ftrl_adagrad_cfg_defaults */
    float init_scale;               /* new rows uniform in [-s, s], as a server's (0; FM: 0.01) */
    uint64_t init_seed;             /* the rows' init seed, as a server's sparse tensor (0) */
    int epochs;                     /* (1) */
    size_t batch_size;              /* rows per step (256) */
    bool shuffle;                   /* reshuffle the rows every epoch (true) */
    uint64_t seed;                  /* shuffling (0) */
} pst_sparse_train_opts_t;

void pst_sparse_train_opts_defaults(pst_sparse_train_opts_t *opts, pst_sparse_kind_t kind);

/* A model trained in this process: a hash map key -> row with the optimizer state beside each
 * row (FTRL: [z | n], AdaGrad: accumulator), and the bias with its own state. */
typedef struct pst_sparse_model pst_sparse_model_t;

/* An empty model; rows are created on first touch. Caller owns the result. */
pst_sparse_model_t *pst_sparse_model_new(const pst_sparse_train_opts_t *opts, pst_err_t *err);
void pst_sparse_model_destroy(pst_sparse_model_t **self_p);

/* One optimizer step on a labelled batch: creates the rows of new keys, computes the gradient of
 * the current weights and steps every touched row and the bias. *loss (may be NULL) is the
 * batch's mean log-loss before the step. */
int pst_sparse_model_update(pst_sparse_model_t *self, const pst_sparse_batch_t *b, double *loss,
                            pst_err_t *err);
/* prob (n_rows) for a batch; keys never trained count as zero rows and are not created. */
int pst_sparse_model_predict(pst_sparse_model_t *self, const pst_sparse_batch_t *b, float *prob,
                             pst_err_t *err);

/* The model as a store of rows for gradients computed elsewhere (wide & deep): the batch's
 * unique keys as pst_sparse_batch_keys finds them, their rows (creating new keys' rows when
 * create, else reading keys never trained as zeros) into *rows (n_keys, row_width) and the slot
 * of every nnz into *slot_of_nnz. Both stay valid until the next call on the model. */
int pst_sparse_model_lookup(pst_sparse_model_t *self, const pst_sparse_batch_t *b, bool create,
                            const float **rows, const uint32_t **slot_of_nnz, size_t *n_keys,
                            pst_err_t *err);
/* One optimizer step of each row of the last lookup with grad (n_keys, row_width); rows a lookup
 * without create did not find are left alone. n_keys is the lookup's. The bias is not touched. */
void pst_sparse_model_apply(pst_sparse_model_t *self, const float *grad, size_t n_keys);

/* opts->epochs passes over a CSR dataset (classification, labels 0/1) in mini-batches;
 * *train_loss (may be NULL) receives the last epoch's mean batch loss. */
int pst_sparse_train(pst_sparse_model_t *self, const pst_dataset_t *train, double *train_loss,
                     pst_err_t *err);
/* Scores every row of a CSR dataset: prob (n_rows, may be NULL), mean log-loss and ROC-AUC
 * (either may be NULL; AUC is NaN when a class is absent). */
int pst_sparse_evaluate(pst_sparse_model_t *self, const pst_dataset_t *data, float *prob,
                        double *log_loss, double *auc, pst_err_t *err);

/* The trained weights: keys in order of first touch, index < pst_sparse_model_n_keys. */
size_t pst_sparse_model_n_keys(const pst_sparse_model_t *self);
/* Bytes the model's rows, optimizer state, keys and index hold (allocated capacity; the step
 * workspace is not counted). */
uint64_t pst_sparse_model_bytes(const pst_sparse_model_t *self);
const float *pst_sparse_model_entry(const pst_sparse_model_t *self, size_t index, uint64_t *key);
/* The row of key (row_width floats), or NULL if the key was never trained. */
const float *pst_sparse_model_row(const pst_sparse_model_t *self, uint64_t key);
float pst_sparse_model_bias(const pst_sparse_model_t *self);

#endif
