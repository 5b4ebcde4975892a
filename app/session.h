/* One training job as the program runs it: data, model, loop, evaluation, run directory. Shared
 * by local runs and by the workers of a distributed run. */
#ifndef PST_APP_SESSION_H
#define PST_APP_SESSION_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "worker/model/modelspec.h"
#include "app/imbalance.h"
#include "app/pipeline.h"
#include "app/rundir.h"
#include "app/shardload.h"
#include "common/config.h"
#include "worker/model/model.h"
#include "worker/train/train.h"

typedef struct pst_session {
    const pst_config_t *cfg;
    pst_pipeline_t data;
    pst_modelspec_t spec;
    pst_model_t *model;
    pst_train_opts_t opts;
    pst_train_result_t result;
    bool lead;         /* writes the run directory and prints (local run, or worker 0) */
    bool progress_bar; /* live progress line on a terminal */
    pst_rundir_t rundir;
    size_t *train_share, *val_share; /* a worker's rows of train/val, or NULL: all rows */
    size_t n_train_share, n_val_share;
    pst_imbalance_t imbalance;         /* train.imbalance: class weights or resampled rows */
    cJSON *extra;                      /* more report sections (e.g. comm), owned; may be NULL */
    int n_workers;                     /* workers training together (1: a local run) */
    double load_seconds, eval_seconds; /* reading and preparing data; final evaluation */
} pst_session_t;

/* The optimizer configuration the optimizer.* keys describe (servers use it too). */
void pst_session_optim_cfg(const pst_config_t *cfg, pst_optim_cfg_t *out);

/* Training options from the train.*, optimizer.* and schedule.* keys for a layer stack. */
/* The image shape data.augment works on: the model's input layer's, else data.image_shape. */
void pst_session_augment_shape(pst_train_opts_t *o, const pst_config_t *cfg,
                               const pst_model_t *model);
void pst_session_train_opts(const pst_config_t *cfg, const pst_modelspec_t *spec,
                            pst_train_opts_t *opts);

/* Loads data, builds and initialises the model, fills training options and applies
 * train.imbalance (pst_session_imbalance). */
int pst_session_prepare(pst_session_t *s, const pst_config_t *cfg, bool lead, pst_err_t *err);
/* The same for a worker that reads only its own file (data.train with a {worker} pattern). */
int pst_session_prepare_shard(pst_session_t *s, const pst_config_t *cfg, bool lead, int worker,
                              const pst_reducer_t *reduce, pst_err_t *err);
/* Applies train.imbalance to the training set (see app/imbalance.h) and points the training
 * options at its class weights. _prepare calls it; a worker of per-worker files calls it after
 * _prepare_shard, once every worker has its rows, with reduce summing class counts. */
int pst_session_imbalance(pst_session_t *s, const pst_reducer_t *reduce, pst_err_t *err);
/* Opens the run directory (lead only). */
int pst_session_open_rundir(pst_session_t *s, const char *out, pst_err_t *err);
/* Observer hooks that print epochs and progress (lead) and log metrics.jsonl; they leave the
 * transport hooks and ctx alone. */
void pst_session_hooks(pst_session_t *s, pst_train_hooks_t *hooks);
/* What those hooks do: print (lead only) and log the epoch to metrics.jsonl. */
void pst_session_print_epoch(pst_session_t *s, const pst_epoch_stats_t *es);
void pst_session_print_progress(pst_session_t *s, const pst_step_progress_t *p);
/* Trains with the given hooks (NULL members: local). */
int pst_session_train(pst_session_t *s, pst_train_hooks_t *hooks, pst_err_t *err);
/* The session's model as a model file's bytes (layers, preprocessing, classes, parameters, the
 * configuration), in *buf (caller frees). */
int pst_session_pack_model(const pst_session_t *s, uint8_t **buf, size_t *len, pst_err_t *err);
/* Evaluates val and test, writes report.json and the model file, prints the summary (lead). */
int pst_session_finish(pst_session_t *s, pst_err_t *err);
void pst_session_fini(pst_session_t *s);
/* Ends a job run by a session: pst_session_finish when rc is PST_OK, then the error (if any) on
 * stderr, then pst_session_fini. Returns the process exit status: 0 success, 1 failure. */
int pst_session_end(pst_session_t *s, int rc, pst_err_t *err);

/* Loads CONFIG and applies the --set overrides; sets the log level. */
int pst_load_config(pst_config_t *cfg, const char *path, const char *const *sets, int n_sets,
                    pst_err_t *err);

#endif
