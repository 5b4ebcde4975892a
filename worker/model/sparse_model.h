/* Sparse local model: LR or FM rows keyed by uint64 feature keys, kept in this process with their
 * optimizer state (FTRL or AdaGrad) and stepped on CSR mini-batches. */
#ifndef PST_WORKER_MODEL_SPARSE_MODEL_H
#define PST_WORKER_MODEL_SPARSE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/optim/ftrl.h"
#include "worker/model/sparse_batch.h"
#include "worker/model/sparse_fm.h"

typedef enum { PST_SPARSE_OPT_FTRL = 0, PST_SPARSE_OPT_ADAGRAD = 1 } pst_sparse_opt_t;

typedef struct pst_sparse_train_opts {
    pst_sparse_spec_t spec;     /* LR */
    pst_sparse_opt_t optimizer; /* FTRL */
    pst_ftrl_cfg_t ftrl;        /* alpha 0.1, beta 1/256, l1 0, l2 0 (see common/optim/ftrl.h) */
    pst_ftrl_adagrad_cfg_t adagrad; /* pst_ftrl_adagrad_cfg_defaults */
    float init_scale;               /* new rows uniform in [-s, s], as a server's (0; FM: 0.01) */
    uint64_t init_seed;             /* the rows' init seed, as a server's sparse tensor (0) */
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

/* The trained weights: keys in order of first touch, index < pst_sparse_model_n_keys. */
size_t pst_sparse_model_n_keys(const pst_sparse_model_t *self);
/* Bytes the model's rows, optimizer state, keys and index hold (allocated capacity; the step
 * workspace is not counted). */
uint64_t pst_sparse_model_bytes(const pst_sparse_model_t *self);
const float *pst_sparse_model_entry(const pst_sparse_model_t *self, size_t index, uint64_t *key);
/* The row of key (row_width floats), or NULL if the key was never trained. */
const float *pst_sparse_model_row(const pst_sparse_model_t *self, uint64_t key);
float pst_sparse_model_bias(const pst_sparse_model_t *self);

/* Sets key's row to values (row_width floats), creating the row if the key is new, with fresh
 * optimizer state (zeros: an FTRL row continues from these weights). For a model whose weights
 * were trained elsewhere (on parameter servers). PST_ENOMEM when the row cannot be added. */
int pst_sparse_model_set_row(pst_sparse_model_t *self, uint64_t key, const float *values,
                             pst_err_t *err);

#endif
