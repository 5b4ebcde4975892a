/* The parameter-server trainer of wide & deep: the feature rows [w | e] as one sparse tensor
 * created on first touch, the deep stack as one dense tensor, both stepped by the servers'
 * optimizer through the sparse loop's hooks. */
#ifndef PST_WORKER_TRAIN_WIDE_DEEP_REMOTE_H
#define PST_WORKER_TRAIN_WIDE_DEEP_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"
#include "worker/model/wide_deep.h"
#include "worker/psclient.h"
#include "worker/train/sparse_loop.h"
#include "worker/train/wide_deep_local.h"

/* One sparse tensor holds a key's wide weight and its embedding together, as the local row store
 * does: a step pulls and pushes each key once, and the servers keep one key map and one
 * optimizer state array for both parts. */
enum { PST_WD_REMOTE_ROWS_TENSOR = 0, PST_WD_REMOTE_DENSE_TENSOR = 1 };

typedef struct pst_wd_remote_opts {
    float lr;              /* FTRL alpha or AdaGrad lr of both tensors, sent with every push */
    float init_scale;      /* new rows uniform in [-init_scale, init_scale] */
    uint64_t init_seed;    /* the rows' */
    uint64_t dense_seed;   /* the deep stack's initial weights (pst_wide_deep_init_dense) */
    uint64_t dropout_seed; /* see pst_wd_remote_trainer */
    uint32_t n_workers;    /* the workers training together: batch means are scaled by it */
    uint32_t worker;       /* this worker's index in [0, n_workers) */
    uint32_t model_id;     /* the servers' model namespace (0 for a plain training run) */
} pst_wd_remote_opts_t;

typedef struct pst_wd_remote pst_wd_remote_t;

/* What the trainer moved, for the run's report. */
typedef struct pst_wd_remote_stats {
    uint64_t steps;       /* pushed */
    uint64_t keys_pushed; /* unique keys over all steps */
    uint64_t eval_wire;   /* evaluation and model pulls, kept out of the per-example figure */
    uint64_t eval_raw;
} pst_wd_remote_stats_t;

/* A trainer of the model spec describes (no network traffic yet). Caller owns the result. */
pst_wd_remote_t *pst_wd_remote_new(const pst_wide_deep_spec_t *spec,
                                   const pst_wd_remote_opts_t *opts, pst_err_t *err);
/* Frees the trainer; the client is not touched (flush before closing it). */
void pst_wd_remote_destroy(pst_wd_remote_t **self_p);

/* Registers the rows tensor (row width 1 + d) and the dense tensor (the deep stack's parameters)
 * of opts.model_id with client (not owned; it must outlive the trainer's use) and initialises
 * them on every server: the first worker's initial deep weights win. PST_ESTATE if the servers
 * already hold a clock of this model. Every worker must have registered before anyone pushes. */
int pst_wd_remote_register(pst_wd_remote_t *self, pst_psclient_t *client, pst_err_t *err);

/* For evaluation and pst_wd_remote_pull_model: only keys that occur in the rows of train (ids
 * below its n_features) are pulled (a pull creates rows on the servers); *n_keys = how many
 * distinct keys those are. */
int pst_wd_remote_mark_trained(pst_wd_remote_t *self, const pst_dataset_t *train, size_t *n_keys,
                               pst_err_t *err);

/* Waits for the last steps' pushes to be acknowledged. */
int pst_wd_remote_flush(pst_wd_remote_t *self, pst_err_t *err);

/* The loop's hooks. step pulls the batch's rows and the deep stack at the current clock
 * (overlapping the previous push's acknowledgement), computes the gradient of the batch's mean
 * log-loss and pushes it as a sum over the batch times n_workers (the servers' constants are per
 * example). Step s of worker w draws its dropout masks from pst_rng_derive(dropout_seed,
 * s * n_workers + w): one worker draws the local trainer's masks. predict scores a chunk on the
 * global weights, keys not marked trained as zero rows. */
pst_sparse_trainer_t pst_wd_remote_trainer(pst_wd_remote_t *self);

void pst_wd_remote_stats(const pst_wd_remote_t *self, pst_wd_remote_stats_t *out);

/* The trained model as the local trainer holds it: flushes this worker's pushes, then pulls the
 * global weights at the current clock (under BSP, every worker's steps up to it) into `into`,
 * built with the same spec (pst_wd_local_new): the deep stack into its MLP's parameters and the
 * row of every key marked trained (pst_wd_remote_mark_trained first, else PST_ESTATE) into its
 * row store, created or overwritten there with fresh optimizer state (an FTRL row continues from
 * its weights). Rows `into` holds for other keys are left alone. PST_EINVAL when the shapes
 * differ. The pulls count as evaluation traffic. */
int pst_wd_remote_pull_model(pst_wd_remote_t *self, pst_wd_local_t *into, pst_err_t *err);

#endif
