/* One fit of a plan (a fold, a bag member, a base model, a sweep trial): train a model on rows
 * of one loaded dataset and predict other rows, locally or on a worker group's servers. */
#ifndef PST_APP_PLAN_FIT_H
#define PST_APP_PLAN_FIT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/model/modelspec.h"
#include "common/config.h"
#include "common/data/dataset.h"
#include "common/data/encoder.h"
#include "common/data/preprocess.h"
#include "worker/model/model.h"
#include "worker/train/train.h"

/* How a task reaches parameter servers; NULL runs it in this process. */
typedef struct pst_fit_env {
    void *ctx;
    /* Registers model namespace model_id (n parameters, initial values params) for this worker
     * group and fills the transport hooks (pull, push, allreduce_sum) of *hooks. */
    int (*begin)(void *ctx, uint32_t model_id, const float *params, size_t n,
                 pst_train_hooks_t *hooks, pst_err_t *err);
    /* Called after training, whatever happened (waits for outstanding pushes). */
    int (*end)(void *ctx, pst_err_t *err);
    /* Worker 0 of the group prints and is the one whose outputs count. */
    bool lead;
    /* This worker trains on rows share_index, share_index + n_shares, ... of the task's
     * training (and validation) rows; the group's gradients are averaged by the servers. */
    int share_index, n_shares;
} pst_fit_env_t;

typedef struct pst_fit {
    const pst_config_t *cfg;   /* the task's training configuration */
    const pst_dataset_t *data; /* dense; raw when fit_preproc, else ready to use */
    bool fit_preproc;          /* fit data.scaler / data.impute on the task's training rows */
    bool images;               /* data.scaler auto means none, and pixels are scaled */
    const size_t *train;       /* (n_train) training rows of data; repeats allowed */
    size_t n_train;
    const size_t *eval; /* (n_eval) rows to predict */
    size_t n_eval;
    const size_t *cols; /* (n_cols) feature columns the model sees; NULL: all */
    size_t n_cols;
    uint64_t seed;     /* initialisation, shuffling, dropout, resampling */
    uint32_t model_id; /* namespace on the servers */
} pst_fit_t;

typedef struct pst_fit_out {
    float *pred; /* (n_eval, n_out) model outputs, caller frees (fini) */
    int n_out;
    double fit_seconds, score_seconds;
    pst_train_result_t result;
    pst_modelspec_t spec;
    pst_model_t *model;     /* the trained model */
    pst_preproc_t *preproc; /* fitted preprocessing, or NULL */
    size_t n_synthetic;     /* SMOTE rows added */
    /* Typed CSV data: the task's encoder (fitted on its training rows), the data encoded with
     * it, and the feature columns of the task's column subset; NULL otherwise. */
    pst_encoder_t *encoder;
    pst_dataset_t *encoded;
    size_t *cols; // (n_cols)
    size_t n_cols;
    cJSON *history; /* per-epoch figures (app/plan/history.h), or NULL; owned */
} pst_fit_out_t;

/* Runs the task: typed CSV columns encoded with an encoder fitted on its training rows, imbalance
 * handling (train.imbalance) on training rows only, validation rows carved from them when
 * train.patience > 0, preprocessing fitted on them, training, prediction of the eval rows. */
int pst_fit_run(const pst_fit_t *t, const pst_fit_env_t *env, pst_fit_out_t *out, pst_err_t *err);
void pst_fit_out_fini(pst_fit_out_t *out);

/* The trained fit as model-file bytes (layers, preprocessing, columns, parameters, the fit's
 * configuration), for the lead to keep or for a group to send. *buf is new (caller frees). */
int pst_fit_model_pack(const pst_fit_t *fit, const pst_fit_out_t *out, uint8_t **buf, size_t *len,
                       pst_err_t *err);

#endif
