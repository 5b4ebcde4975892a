/* The job of a sparse training run (model.type sparse_lr, fm or wide_deep): what the
 * configuration asks for, and the options of the in-process models that follow from it. */
#ifndef PST_APP_SPARSE_SPARSE_JOB_H
#define PST_APP_SPARSE_SPARSE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/sparse/sparse_wd.h"
#include "common/config.h"
#include "common/data/hashing.h"
#include "common/err.h"
#include "common/optim/optim.h"
#include "worker/model/sparse_model.h"

/* FTRL's beta, l1, l2 and AdaGrad's eps and L2 are per example: they apply to gradients summed
 * over a batch, so results do not depend on the batch size through them. The servers see summed
 * gradients (workers scale their batch means); the local model steps on batch means, so its
 * constants are divided by the batch size (common/optim/ftrl.h: scaling g and them alike is
 * neutral). */
typedef struct pst_sparse_job {
    const char *type;
    pst_sparse_spec_t spec;
    bool ftrl;             /* else adagrad */
    pst_optim_cfg_t optim; /* the servers' optimizer, per example */
    float lr;              /* FTRL alpha or AdaGrad lr */
    float init_scale;
    uint64_t init_seed, shuffle_seed;
    int epochs;
    size_t batch;
    bool shuffle;
    int patience;         /* train.patience: early stopping on the validation log-loss; 0: off */
    double min_delta;     /* train.min_delta */
    bool restore_best;    /* train.restore_best (with patience > 0) */
    bool wide_deep;       /* rows are [w | embedding] (spec: FM of embedding_dim factors) */
    pst_wd_job_t wd;      /* wide_deep */
    bool tsv;             /* the data files read as hashed Criteo-style TSV */
    pst_hash_spec_t hash; /* tsv */
} pst_sparse_job_t;

/* Reads and checks the job (the optimizer settings as a server would check them); warns about
 * settings a sparse run does not use. */
int pst_sparse_job_from_config(const pst_config_t *cfg, pst_sparse_job_t *j, pst_err_t *err);

/* Options of the in-process model: the job's constants per batch mean. */
void pst_sparse_job_local_opts(const pst_sparse_job_t *j, pst_sparse_train_opts_t *o);

/* The deep part's optimizer in this process: the servers' rule with its per-example constants
 * per batch mean, as pst_sparse_job_local_opts sets the rows'. */
void pst_sparse_job_local_dense_opts(const pst_sparse_job_t *j, pst_optim_cfg_t *o);

#endif
