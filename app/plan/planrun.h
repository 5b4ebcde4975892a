/* Executing a plan of fits (cv folds, bag members, stack bases, sweep trials): one after another
 * in this process, or under mpirun handed by a coordinator on the first server rank to worker
 * groups (cluster.groups) that train on the shared parameter servers. */
#ifndef PST_APP_PLAN_PLANRUN_H
#define PST_APP_PLAN_PLANRUN_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "app/mpi/mpijob.h"
#include "app/plan/fit.h"
#include "app/plan/plan.h"
#include "app/rundir.h"
#include "worker/model/modelfile.h"

/* What a plan is made of: each task's rows, and its name for people. */
typedef struct pst_planrun_kind {
    const char *name;
    /* Fills the task's rows (train, eval, cols) of fit; the rest is set by the runner. */
    void (*describe)(void *ctx, int task, const pst_dataset_t *ds, pst_fit_t *fit);
    void (*label)(void *ctx, int task, char *buf, size_t cap);
    void *ctx;
    /* Optional, for plans that grow as results come in (sweeps): the next task to start.
     * Returns PST_PLAN_RUN with *task set, PST_PLAN_WAIT (a running task must report first) or
     * PST_PLAN_DONE. NULL: tasks 0..n_tasks-1 in order. Called on the coordinator only. */
    int (*next)(void *ctx, int *task);
    /* Optional: a task's result, on the coordinator (metrics NULL when it failed). */
    void (*report)(void *ctx, int task, const cJSON *metrics);
    /* Optional, for plans whose tasks only the coordinator knows (a TPE sweep proposes each
     * trial as it starts it): a text the coordinator sends with the task (malloc'ed, caller
     * frees; NULL: none), and, on every worker of the group that runs it, the text received
     * before config is asked for the task. */
    char *(*payload)(void *ctx, int task);
    int (*receive)(void *ctx, int task, const char *payload, pst_err_t *err);
    /* Optional: keeps the plan's state on disk (a sweep's results table). Called on the
     * coordinator after each result once the groups waiting for work have their next task, so
     * the writing never holds them up; `last` on the final call. */
    void (*persist)(void *ctx, bool last);
    /* Optional: fills cfg (initialised by the caller) with the task's own configuration; every
     * rank must be able to do it for any task. NULL: every task uses the plan's configuration. */
    int (*config)(void *ctx, int task, pst_config_t *cfg, pst_err_t *err);
    /* Tasks >= keep_from hand their trained model to the lead (ensembles); keep_models off:
     * none do. */
    bool keep_models;
    int keep_from;
    /* The plan prints and logs its tasks itself (their eval rows mix several parts). */
    bool own_log;
} pst_planrun_kind_t;

enum { PST_PLAN_DONE = 0, PST_PLAN_RUN = 1, PST_PLAN_WAIT = 2 };

typedef struct pst_planrun {
    pst_config_t cfg;
    pst_dataset_t *data; /* data.train, dense and raw */
    int64_t *groups;     /* --group-column values, or NULL */
    const char *format;
    bool lead; /* writes the run directory: the local process, or rank 0 */
    bool distributed;
    bool quiet; /* -q: no line per task, only the summary */
    pst_rundir_t rundir;
    cJSON *report; /* report.json being built (lead) */
    int n_tasks;
    cJSON **task_metrics; /* (n_tasks) each task's eval metrics and timings (lead) */
    float **pred;         /* (n_tasks) each task's outputs on its eval rows (lead) */
    int *n_outs;          /* (n_tasks) outputs per row of each task's predictions (lead) */
    uint8_t **models;     /* (n_tasks) kept tasks' model-file bytes, else NULL (lead) */
    size_t *model_len;    /* (n_tasks) */
    int n_out;            /* outputs per row of the last task scored */
    double seconds;       /* wall time of the whole plan */
    pst_mpijob_t mpi;     /* distributed: MPI, begun with the cluster */
    struct pst_planrun_cluster *cluster; /* distributed state, or NULL */
} pst_planrun_t;

/* Loads the configuration and data.train, starts MPI roles when launched by mpirun, and opens
 * the run directory (lead). */
int pst_planrun_begin(pst_planrun_t *run, const pst_plan_args_t *args, const char *group_column,
                      pst_err_t *err);
/* Runs the plan's fits (n_tasks of them, or with kind->next as many as it hands out, ids below
 * n_tasks); afterwards the lead holds every finished task's metrics and predictions. */
int pst_planrun_execute(pst_planrun_t *run, const pst_planrun_kind_t *kind, int n_tasks,
                        pst_err_t *err);
/* A kept task's trained model (lead), owned by the caller (pst_modelfile_fini). */
int pst_planrun_model(const pst_planrun_t *run, int task, pst_modelfile_t *mf, pst_err_t *err);

/* Hands a kept task's model-file bytes to the caller (who frees *buf) and frees the task's
 * predictions, so a plan that keeps few of its tasks' outputs holds none of the others (lead).
 * PST_ENOTFOUND when the task kept no model. */
int pst_planrun_take_model(pst_planrun_t *run, int task, uint8_t **buf, size_t *len);

/* Adds the tasks and timings to the report and writes report.json (lead). */
int pst_planrun_finish(pst_planrun_t *run, const char *command, pst_err_t *err);
/* Frees everything, joins the other ranks, and returns the process exit status for rc. */
int pst_planrun_end(pst_planrun_t *run, int rc);

#endif
