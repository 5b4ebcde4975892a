/* What the ensemble plans (bag, stack) share: the training pool and test rows of the data, fits
 * that keep their trained models, member model files, and scoring of combined outputs. */
#ifndef PST_APP_PLAN_ENSEMBLE_H
#define PST_APP_PLAN_ENSEMBLE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "app/plan/fit.h"
#include "app/plan/planrun.h"
#include "worker/model/ensemble.h"

/* The rows of run->data an ensemble learns from and is tested on, each list ascending. */
typedef struct pst_ens_rows {
    size_t *pool; // (n_pool) the split's training and validation rows, or all of data.train
    size_t n_pool;
    size_t *test; // (n_test) the split's test rows, or the rows of data.test
    size_t n_test;
} pst_ens_rows_t;

/* Splits run->data as pstrain train does (data.*_fraction, seeded, stratified); fits carve their
 * own validation rows from the pool when train.patience > 0. With data.test, its rows are
 * appended to run->data and are the test rows. Every rank computes the same rows. */
int pst_ens_rows(pst_planrun_t *run, pst_ens_rows_t *rows, pst_err_t *err);
void pst_ens_rows_fini(pst_ens_rows_t *rows);

/* How a plan's fits ran, beyond what pst_planrun_t holds. */
typedef struct pst_ens_exec {
    int n_tasks;
    int keep_from; /* tasks >= keep_from hand their trained models to the lead */
} pst_ens_exec_t;

/* Runs the plan's fits through pst_planrun_execute (here, or on worker groups under mpirun),
 * the tasks >= ex->keep_from keeping their trained models. Afterwards the lead holds every
 * task's metrics (on its eval rows), predictions and kept models in run. */
int pst_ens_execute(pst_planrun_t *run, const pst_planrun_kind_t *kind, int n_tasks,
                    pst_ens_exec_t *ex, pst_err_t *err);

/* Rows [first, first + n) of task's predictions as (n, width) probabilities (a single sigmoid
 * output p becomes 1 - p, p). *probs is new (caller frees). */
int pst_ens_task_probs(const pst_planrun_t *run, int task, size_t first, size_t n, int width,
                       float **probs, pst_err_t *err);

/* Columns of a combined output row for run->data: n_classes, or 1 for regression. */
int pst_ens_width(const pst_planrun_t *run);

/* The model file of a kept task (lead); owned by the caller: pst_modelfile_fini. */
int pst_ens_member(const pst_planrun_t *run, int task, pst_modelfile_t *mf, pst_err_t *err);
/* The model file of a fit trained in this process on data with cfg; owned likewise. */
int pst_ens_member_fit(const pst_config_t *cfg, const pst_dataset_t *data, const pst_fit_out_t *out,
                       pst_modelfile_t *mf, pst_err_t *err);

/* Scores probs (n, width) of rows idx of ds into a new object obj[name]; returns it or NULL. */
cJSON *pst_ens_score(const pst_dataset_t *ds, const size_t *idx, size_t n, const float *probs,
                     int width, cJSON *obj, const char *name, pst_err_t *err);

/* The number under obj[key], or NaN. */
double pst_ens_number(const cJSON *obj, const char *key);

/* Writes the rows' combined predictions to DIR/name (CSV, as cv's oof_predictions.csv). */
int pst_ens_write_predictions(const pst_planrun_t *run, const char *name, const size_t *idx,
                              size_t n, const float *probs, int width, pst_err_t *err);

/* Appends one JSON line for a member to metrics.jsonl (lead). */
void pst_ens_log(const pst_planrun_t *run, const char *label, const cJSON *metrics);

#endif
