/* What the ensemble plans (bag, stack) share: the training pool and test rows of the data, fits
 * that keep their trained models, member model files, and scoring of combined outputs. */
#ifndef PST_CLI_ENSEMBLE_H
#define PST_CLI_ENSEMBLE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "cli/fit.h"
#include "cli/planrun.h"
#include "worker/ensemble.h"

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

/* A trained fit kept for the ensemble file. */
typedef struct pst_ens_kept {
    pst_fit_out_t out;
    const pst_config_t *cfg; /* the fit's configuration (owned by the plan) */
    const size_t *cols;      /* (n_cols) its feature columns, or NULL (owned by the plan) */
    size_t n_cols;
} pst_ens_kept_t;

/* How a plan's fits ran, beyond what pst_planrun_t holds. */
typedef struct pst_ens_exec {
    int n_tasks;
    int keep_from;        /* tasks >= keep_from keep their trained models */
    pst_ens_kept_t *kept; // (n_tasks - keep_from) when has_models
    bool has_models;      /* false under mpirun: the trained models stay with the groups */
    int *n_out;           // (n_tasks) outputs per row of each task's predictions (lead)
} pst_ens_exec_t;

/* Runs the plan's fits: in this process one after another, keeping the models of tasks >=
 * ex->keep_from; under mpirun through pst_planrun_execute (no models). Afterwards the lead holds
 * every task's metrics (on its eval rows) and predictions in run. */
int pst_ens_execute(pst_planrun_t *run, const pst_planrun_kind_t *kind, int n_tasks,
                    pst_ens_exec_t *ex, pst_err_t *err);
void pst_ens_exec_fini(pst_ens_exec_t *ex);

/* Rows [first, first + n) of task's predictions as (n, width) probabilities (a single sigmoid
 * output p becomes 1 - p, p). *probs is new (caller frees). */
int pst_ens_task_probs(const pst_planrun_t *run, const pst_ens_exec_t *ex, int task, size_t first,
                       size_t n, int width, float **probs, pst_err_t *err);

/* Columns of a combined output row for run->data: n_classes, or 1 for regression. */
int pst_ens_width(const pst_planrun_t *run);

/* A model file describing a kept fit on ds: arrays point into k and ds, except config_yaml and
 * columns, which are copies freed by pst_ens_member_fini. */
int pst_ens_member(const pst_ens_kept_t *k, const pst_dataset_t *ds, pst_modelfile_t *mf,
                   pst_err_t *err);
void pst_ens_member_fini(pst_modelfile_t *mf);

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
