/* A sparse training run (model.type sparse_lr, fm, wide_deep), local or one worker's part of a
 * distributed one: the job, its click data, the epochs, the report and the run directory. */
#ifndef PST_APP_SPARSE_SPARSE_RUN_H
#define PST_APP_SPARSE_SPARSE_RUN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/rundir.h"
#include "app/sparse/click_data.h"
#include "app/sparse/sparse_job.h"
#include "common/config.h"
#include "common/err.h"
#include "common/eval/metrics.h"
#include "worker/train/early_stop.h"
#include "worker/train/sparse_best.h"
#include "worker/train/sparse_loop.h"

typedef struct pst_sparse_stats {
    double keys;              /* distinct keys trained */
    double keys_per_step;     /* mean unique keys a step pulls and pushes (distributed) */
    double bytes_per_example; /* training traffic on the wire per training row (distributed) */
    double raw_bytes_per_example;
    double model_bytes;      /* local: the model's rows, state and index */
    double server_rows;      /* distributed: sparse rows the servers hold, summed */
    double server_bytes;     /* distributed: bytes the servers' stores allocated, summed */
    double server_peak_rss;  /* distributed: the largest server process's peak RSS, bytes */
    double nonzero_rows;     /* rows model.pst holds: the trained rows that are not all zero */
    double model_file_bytes; /* size of model.pst */
} pst_sparse_stats_t;

typedef struct pst_sparse_run {
    const pst_config_t *cfg;
    pst_sparse_job_t job;
    pst_click_data_t data;
    bool lead; /* prints, evaluates, writes the run directory */
    pst_rundir_t rundir;
    pst_sparse_trainer_t trainer;
    size_t n_train_rows; /* of the whole training split (a worker keeps its share in data.train) */
    double nnz_per_row;  /* of the whole training split */
    double load_seconds; /* reading and splitting the files */
    long steps_per_epoch;
    uint64_t shuffle_seed; /* this process's shuffles of data.train */
    pst_sparse_loop_t loop;
    /* The best epoch's weights (the lead's, with train.patience > 0 and train.restore_best), set
     * up by the caller after prepare; NULL: the final weights are the last epoch's. */
    pst_sparse_best_t *best;
    /* Distributed runs: called by every worker after every epoch with its status so far; returns
     * PST_OK when every worker succeeded, and sets *stop on every worker to the lead's *stop.
     * NULL in a local run. */
    int (*agree)(void *ctx, int rc, bool *stop, pst_err_t *err);
    void *agree_ctx;
    pst_early_stop_t stop;
    /* results */
    uint64_t start_clock; /* resumed: the steps the servers' checkpoint holds (0: a new run) */
    int epochs_run;
    double seconds, train_loss;
    uint64_t rows_trained;
    bool stopped_early;
    bool restored;                  /* the final weights are the best epoch's, restored */
    pst_binary_metrics_t val, test; /* val: the final weights' (the best epoch's if restored) */
    pst_binary_metrics_t best_val;  /* the best epoch's validation figures */
    cJSON *epochs_json;             /* the lead's per-epoch figures, owned */
    pst_sparse_stats_t sparse;
    cJSON *comm;    /* distributed: the comm section, owned */
    cJSON *elastic; /* distributed: the workers dropped (app/sparse/sparse_elastic), owned */

    float *test_prob; /* (test rows) the test probabilities, for report.json's curves; or NULL */
} pst_sparse_run_t;

/* lead: this process prints, evaluates and writes the run directory. */
void pst_sparse_run_init(pst_sparse_run_t *run, const pst_config_t *cfg, bool lead);
void pst_sparse_run_fini(pst_sparse_run_t *run);

/* Reads the job and the data (steps_per_epoch: every batch of data.train). */
int pst_sparse_run_prepare(pst_sparse_run_t *run, pst_err_t *err);

/* True when the run keeps its best epoch's weights: train.patience > 0, train.restore_best and
 * validation rows (call after prepare). */
bool pst_sparse_run_wants_best(const pst_sparse_run_t *run);

/* Every epoch through run->trainer: train, then (lead) evaluate validation, print and log, and
 * stop after train.patience epochs without improvement (every worker at the same epoch). At the
 * end the lead restores run->best, if any, into run->trainer. */
int pst_sparse_run_train(pst_sparse_run_t *run, pst_err_t *err);

/* Writes report.json and prints the summary. */
int pst_sparse_run_finish(pst_sparse_run_t *run, pst_err_t *err);

#endif
