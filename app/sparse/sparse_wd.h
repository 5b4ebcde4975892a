/* model.type wide_deep in a sparse training run: the model from the configuration and the data's
 * field layout, and its in-process trainer. */
#ifndef PST_APP_SPARSE_SPARSE_WD_H
#define PST_APP_SPARSE_SPARSE_WD_H

#include <stddef.h>
#include <stdint.h>

#include "worker/model/modelspec.h"
#include "common/config.h"
#include "common/data/hashing.h"
#include "common/optim/optim.h"
#include "worker/model/sparse_model.h"
#include "worker/model/wide_deep.h"
#include "worker/train/wide_deep_local.h"
#include "worker/train/wide_deep_remote.h"

/* What the run needs to build the model; copyable (the spec's layer pointer is set by
 * pst_wd_job_spec). */
typedef struct pst_wd_job {
    pst_wide_deep_spec_t spec; /* hidden is NULL here */
    pst_modelspec_t hidden;    /* the hidden stack */
    uint64_t dropout_seed;     /* the dropout masks' (local and distributed runs alike) */
} pst_wd_job_t;

/* Reads model.embedding_dim, model.pooling, model.fields and the hidden stack (model.hidden or
 * model.layers). hash (NULL for LIBSVM data) is the hashed TSV layout with field keys: every
 * column is a field (field = feature >> bits) and the numeric columns also feed their values
 * to the deep part unless bucketised. batch is the most rows a step takes. */
int pst_wd_job_from_config(const pst_config_t *cfg, const pst_hash_spec_t *hash, size_t batch,
                           pst_wd_job_t *out, pst_err_t *err);

/* The model spec with its hidden stack pointing into job. */
void pst_wd_job_spec(const pst_wd_job_t *job, pst_wide_deep_spec_t *out);

/* Parameters of the deep part (the dense tensor a distributed run keeps on the servers). */
size_t pst_wd_job_dense_params(const pst_wd_job_t *job, pst_err_t *err);

/* The in-process model: rows options as a factorization machine's of embedding_dim factors
 * (their optimizer and per-row constants as given), the deep part stepped by dense (the same
 * rule, constants per batch mean) with learning rate lr, initialised from init_seed, dropout
 * masks from dropout_seed. Caller owns the result. */
pst_wd_local_t *pst_wd_job_local(const pst_wd_job_t *job, const pst_sparse_train_opts_t *rows,
                                 const pst_optim_cfg_t *dense, float lr, uint64_t init_seed,
                                 uint64_t dropout_seed, pst_err_t *err);

/* The parameter-server trainer of worker `worker` of n_workers, with the same rows, initial
 * weights and dropout masks as pst_wd_job_local given the same lr, init_scale and init_seed
 * (app/sparse/sparse_job.h: the servers' optimizer takes the per-example constants). Caller owns
 * the result. */
pst_wd_remote_t *pst_wd_job_remote(const pst_wd_job_t *job, float lr, float init_scale,
                                   uint64_t init_seed, uint32_t n_workers, uint32_t worker,
                                   pst_err_t *err);

/* Trainer callbacks (the ctx is a pst_wd_local_t). */
int pst_wd_local_step_cb(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err);
int pst_wd_local_predict_cb(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err);

#endif
