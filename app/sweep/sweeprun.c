/* Sweeps: trials and rungs as a plan of fits, results written as they come, the best kept. */
#include "app/sweep/sweeprun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/console.h"
#include "app/mpi/cluster.h"
#include "app/plan/fit.h"
#include "app/plan/planrun.h"
#include "app/rundir.h"
#include "app/sweep/sweep.h"
#include "app/sweep/sweep_tb.h"
#include "app/sweep/sweep_keep.h"
#include "common/atomicfile.h"
#include "common/filesum.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sample/split.h"

typedef struct sweep_plan {
    const pst_sweeprun_opts_t *opts;
    pst_sweep_space_t *space;
    pst_sweep_sched_t *sched;
    pst_split_t split;
    pst_planrun_t *run;
    int n_rungs;
    const char *metric_key; /* key in a task's metrics */
    bool *tb_started;       /* per trial: its HParams session start is written */
    char results_json[1100], results_csv[1100], best_model[1100];
    char *received; /* a worker's current job: its overrides as "key=value" lines */
    int received_task;
    double last_write; /* when the results tables were last written (clock seconds) */
    bool unwritten;    /* results recorded since */
    uint8_t *best;     /* the best job's model file, until written */
    size_t best_len;
    pst_sweep_keep_t *keep; /* keep_models > 1: the best jobs' models, for top_models/ */
} sweep_plan_t;

/* Results tables are rewritten at most this often while trials run (and at the end): with
 * hundreds of short trials, writing both tables after each one would cost more than the trials.
 * A trial finished but not yet written is run again by --resume. */
#define RESULTS_WRITE_INTERVAL_S 0.5

static void sweep_describe(void *ctx, int task, const pst_dataset_t *ds, pst_fit_t *fit)
{
    sweep_plan_t *p = ctx;
    fit->train = p->split.train;
    fit->n_train = p->split.n_train;
    fit->eval = p->split.val;
    fit->n_eval = p->split.n_val;
}

static void sweep_label(void *ctx, int task, char *buf, size_t cap)
{
    sweep_plan_t *p = ctx;
    int rung = task % p->n_rungs;
    snprintf(buf, cap, "trial %d @%ld", task / p->n_rungs, pst_sweep_rung_epochs(p->sched, rung));
}

static int sweep_next(void *ctx, int *task)
{
    sweep_plan_t *p = ctx;
    pst_sweep_job_t job;
    pst_sweep_action_t a = pst_sweep_next(p->sched, &job);
    if (a == PST_SWEEP_RUN) {
        *task = job.trial * p->n_rungs + job.rung;
        return PST_PLAN_RUN;
    }
    return a == PST_SWEEP_WAIT ? PST_PLAN_WAIT : PST_PLAN_DONE;
}

/* A job as the overrides that make its configuration, one "key=value" a line. */
static char *sweep_payload(void *ctx, int task)
{
    sweep_plan_t *p = ctx;
    const pst_sweep_trial_t *t = pst_sweep_get_trial(p->sched, task / p->n_rungs);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return NULL;
    for (int i = 0; t && i < t->n_overrides; i++)
        fprintf(out, "%s=%s\n", t->overrides[i].key, t->overrides[i].value);
    fprintf(out, "train.epochs=%ld\n", pst_sweep_rung_epochs(p->sched, task % p->n_rungs));
    fclose(out);
    return buf;
}

/* Under mpirun the coordinator's scheduler alone knows a TPE trial: workers take the job's
 * overrides as sent. */
static int sweep_receive(void *ctx, int task, const char *payload, pst_err_t *err)
{
    sweep_plan_t *p = ctx;
    free(p->received);
    p->received = payload ? strdup(payload) : NULL;
    p->received_task = task;
    return p->received ? PST_OK : pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
}

static int apply_received(const char *text, pst_config_t *cfg, pst_err_t *err)
{
    char line[4096];
    for (const char *at = text; *at;) {
        size_t n = strcspn(at, "\n");
        if (n >= sizeof line)
            return pst_err_set(err, PST_EPROTO, "sweep: an override of %zu bytes", n);
        memcpy(line, at, n);
        line[n] = '\0';
        int rc = n > 0 ? pst_config_set(cfg, line, err) : PST_OK;
        if (rc != PST_OK)
            return rc;
        at += n + (at[n] == '\n');
    }
    return PST_OK;
}

static int sweep_config(void *ctx, int task, pst_config_t *cfg, pst_err_t *err)
{
    sweep_plan_t *p = ctx;
    int rc = pst_plan_config(cfg, &p->opts->plan, err);
    if (rc == PST_OK && p->received && p->received_task == task)
        return apply_received(p->received, cfg, err);
    pst_sweep_job_t job = {task / p->n_rungs, task % p->n_rungs,
                           pst_sweep_rung_epochs(p->sched, task % p->n_rungs), 0};
    return rc ? rc : pst_sweep_job_apply(p->sched, &job, cfg, err);
}

/* One line per finished job: the trial, the objective, what became of the trial, its time and
 * its hyperparameters. */
static void print_job(sweep_plan_t *p, int trial, int rung, double value, const cJSON *metrics)
{
    const pst_sweep_trial_t *t = pst_sweep_get_trial(p->sched, trial);
    const cJSON *secs = metrics ? cJSON_GetObjectItem(metrics, "fit_seconds") : NULL;
    char label[64];
    sweep_label(p, trial * p->n_rungs + rung, label, sizeof label);
    printf("%-16s %s %-8.4f %-9s %6.2fs ", label, p->space->metric, value,
           pst_sweep_state_name(pst_sweep_trial_state(p->sched, trial)),
           cJSON_IsNumber(secs) ? secs->valuedouble : 0.0);
    for (int i = 0; i < t->n_overrides; i++)
        printf(" %s=%s", t->overrides[i].key, t->overrides[i].value);
    printf("\n");
    fflush(stdout);
    if (metrics)
        pst_rundir_log_task(&p->run->rundir, label, metrics);
}

/* Keeps the model of the job that produced the best result so far, for best_model.pst (the lead
 * holds no other trained model: memory stays bounded however many trials run). */
static void keep_model(sweep_plan_t *p, int task, int trial, int rung)
{
    uint8_t *model;
    size_t len;
    int best;
    double metric;
    if (pst_planrun_take_model(p->run, task, &model, &len) != PST_OK)
        return;
    bool is_best = pst_sweep_best(p->sched, &best, &metric) == PST_OK && best == trial &&
                   pst_sweep_trial_rungs_done(p->sched, trial) == rung + 1;
    if (p->keep) {
        uint8_t *copy = is_best ? malloc(len) : NULL;
        if (copy)
            memcpy(copy, model, len);
        pst_sweep_keep_offer(p->keep, trial, rung, pst_sweep_trial_metric(p->sched, trial, rung),
                             model, len);
        model = copy;
        is_best = copy != NULL;
    }
    if (!is_best) {
        free(model);
        return;
    }
    free(p->best);
    p->best = model;
    p->best_len = len;
}

static void sweep_report(void *ctx, int task, const cJSON *metrics)
{
    sweep_plan_t *p = ctx;
    int trial = task / p->n_rungs, rung = task % p->n_rungs;
    const cJSON *v = metrics ? cJSON_GetObjectItem(metrics, p->metric_key) : NULL;
    double value = v && cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (p->tb_started)
        pst_sweep_tb_trial(&p->run->rundir, pst_sweep_get_trial(p->sched, trial),
                           &p->tb_started[trial]);
    pst_err_t err;
    if (pst_sweep_report(p->sched, trial, rung, value, pst_sweep_rung_epochs(p->sched, rung),
                         &err) != PST_OK)
        pst_warn("sweep: %s", err.msg);
    p->unwritten = true;
    print_job(p, trial, rung, value, metrics);
    keep_model(p, task, trial, rung);
}

static void sweep_persist(void *ctx, bool last)
{
    sweep_plan_t *p = ctx;
    double now = pst_clock_seconds();
    if (!p->unwritten || (!last && now - p->last_write < RESULTS_WRITE_INTERVAL_S))
        return;
    pst_err_t err;
    /* the model before the tables, so that a table never names a best model not yet on disk */
    if (p->best && pst_filesum_write(p->best_model, p->best, p->best_len, &err) != PST_OK)
        pst_warn("sweep: %s", err.msg);
    free(p->best);
    p->best = NULL;
    if (p->keep && pst_sweep_keep_write(p->keep, p->run->rundir.path, &err) != PST_OK)
        pst_warn("sweep: %s", err.msg);
    if (pst_sweep_write_results(p->sched, p->results_json, &err) != PST_OK ||
        pst_sweep_write_results(p->sched, p->results_csv, &err) != PST_OK)
        pst_warn("sweep: %s", err.msg);
    p->last_write = now;
    p->unwritten = false;
}

/* The metric's key in a task's metrics: val.X is X, and val.loss the task's own loss. */
static const char *metric_key(const char *metric, pst_task_t task)
{
    const char *key = strncmp(metric, "val.", 4) == 0 ? metric + 4 : metric;
    if (strcmp(key, "loss") == 0)
        return task == PST_TASK_CLASSIFICATION ? "log_loss" : "mse";
    return key;
}

/* val_rows.txt: the rows of data.train every trial is scored on (0-based, one a line), so a kept
 * model can be checked against its trial's metric with pstrain eval. */
static int write_val_rows(const sweep_plan_t *p, pst_planrun_t *run, pst_err_t *err)
{
    char path[1100], *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
    for (size_t i = 0; i < p->split.n_val; i++)
        fprintf(out, "%zu\n", p->split.val[i]);
    bool failed = ferror(out) != 0;
    fclose(out);
    int rc = failed ? pst_err_set(err, PST_ENOMEM, "sweep: out of memory")
                    : pst_write_file_atomic(
                          pst_rundir_file(&run->rundir, "val_rows.txt", path, sizeof path), buf,
                          len, err);
    free(buf);
    return rc;
}

static int prepare(sweep_plan_t *p, pst_planrun_t *run, pst_err_t *err)
{
    const pst_config_t *cfg = &run->cfg;
    bool stratify = cfg->data.stratify && run->data->task == PST_TASK_CLASSIFICATION;
    int rc = cfg->data.test[0] ? pst_split_two(run->data, cfg->data.val_fraction, stratify,
                                               (uint64_t)cfg->seed, &p->split, err)
                               : pst_split_three(run->data, cfg->data.train_fraction,
                                                 cfg->data.val_fraction, cfg->data.test_fraction,
                                                 stratify, (uint64_t)cfg->seed, &p->split, err);
    if (rc != PST_OK)
        return rc;
    if (p->split.n_val == 0)
        return pst_err_set(err, PST_EINVAL, "sweep: data.val_fraction leaves no validation rows");
    if (!(p->sched = pst_sweep_sched_new(p->space, cfg->train.epochs, err)))
        return err->code;
    p->n_rungs = pst_sweep_n_rungs(p->sched);
    p->metric_key = metric_key(p->space->metric, run->data->task);
    if (!run->lead)
        return PST_OK;
    if (!(p->tb_started = calloc((size_t)pst_sweep_n_trials(p->sched) + 1, sizeof(bool))))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    if (p->space->keep_models > 1 &&
        !(p->keep = pst_sweep_keep_new((int)p->space->keep_models, p->space->maximize)))
        return pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
    pst_rundir_file(&run->rundir, "sweep_results.json", p->results_json, sizeof p->results_json);
    pst_rundir_file(&run->rundir, "sweep_results.csv", p->results_csv, sizeof p->results_csv);
    pst_rundir_file(&run->rundir, "best_model.pst", p->best_model, sizeof p->best_model);
    if ((rc = write_val_rows(p, run, err)) != PST_OK)
        return rc;
    struct stat sb;
    if (p->opts->resume && stat(p->results_json, &sb) == 0) {
        if ((rc = pst_sweep_load_results(p->sched, p->results_json, err)) != PST_OK)
            return rc;
        pst_info("sweep: resumed from %s", p->results_json);
    }
    return PST_OK;
}

#define TOP_TRIALS 10

/* The final table: the best trials, ranked as the best one is chosen (the furthest rung first,
 * then the metric), printed and added to the report. */
static int top_trials(const sweep_plan_t *p, cJSON *sw, pst_err_t *err)
{
    int ids[TOP_TRIALS];
    int n = pst_sweep_ranking(p->sched, ids, TOP_TRIALS);
    cJSON *top = cJSON_AddArrayToObject(sw, "top");
    if (!top)
        return pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
    printf("\ntop %d trials by %s:\n%4s %6s %7s %12s  %s\n", n, p->space->metric, "rank", "trial",
           "epochs", p->space->metric, "hyperparameters");
    for (int r = 0; r < n; r++) {
        int t = ids[r], done = pst_sweep_trial_rungs_done(p->sched, t);
        double m = pst_sweep_trial_metric(p->sched, t, done - 1);
        const pst_sweep_trial_t *trial = pst_sweep_get_trial(p->sched, t);
        printf("%4d %6d %7ld %12.6f ", r + 1, t, pst_sweep_rung_epochs(p->sched, done - 1), m);
        cJSON *row = cJSON_CreateObject(), *params = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "trial", t);
        pst_json_add_number(row, "val_metric", m);
        cJSON_AddNumberToObject(row, "epochs", (double)pst_sweep_rung_epochs(p->sched, done - 1));
        for (int i = 0; i < trial->n_overrides; i++) {
            printf(" %s=%s", trial->overrides[i].key, trial->overrides[i].value);
            cJSON_AddStringToObject(params, trial->overrides[i].key, trial->overrides[i].value);
        }
        printf("\n");
        cJSON_AddItemToObject(row, "params", params);
        cJSON_AddItemToArray(top, row);
    }
    return PST_OK;
}

static int finish(sweep_plan_t *p, pst_planrun_t *run, pst_err_t *err)
{
    int best;
    double value;
    if (pst_sweep_best(p->sched, &best, &value) != PST_OK)
        return pst_err_set(err, PST_ESTATE, "sweep: no trial finished");
    cJSON *sw = cJSON_AddObjectToObject(run->report, "sweep");
    cJSON_AddStringToObject(sw, "method", pst_sweep_method_name(p->space->method));
    cJSON_AddStringToObject(sw, "metric", p->space->metric);
    cJSON_AddNumberToObject(sw, "trials", pst_sweep_n_trials(p->sched));
    cJSON *b = cJSON_AddObjectToObject(sw, "best");
    cJSON_AddNumberToObject(b, "trial", best);
    pst_json_add_number(b, "val_metric", value);
    cJSON *params = cJSON_AddObjectToObject(b, "params");
    const pst_sweep_trial_t *t = pst_sweep_get_trial(p->sched, best);
    for (int i = 0; i < t->n_overrides; i++)
        cJSON_AddStringToObject(params, t->overrides[i].key, t->overrides[i].value);
    long spent = pst_sweep_epochs_spent(p->sched), grid = 0;
    long max_epochs = pst_sweep_rung_epochs(p->sched, p->n_rungs - 1);
    pst_err_t scratch;
    if (pst_sweep_grid_size(p->space, &grid, &scratch) != PST_OK)
        grid = 0;
    cJSON_AddNumberToObject(sw, "epochs_spent", (double)spent);
    cJSON_AddNumberToObject(sw, "full_epochs", (double)pst_sweep_full_epochs(p->sched));
    if (grid > 0)
        cJSON_AddNumberToObject(sw, "full_grid_epochs", (double)(grid * max_epochs));
    pst_config_t cfg;
    char path[1100];
    int rc = pst_plan_config(&cfg, &p->opts->plan, err);
    if (rc == PST_OK)
        rc = pst_sweep_write_best_config(
            p->sched, &cfg, pst_rundir_file(&run->rundir, "best_config.yaml", path, sizeof path),
            err);
    pst_config_fini(&cfg);
    pst_sweep_tb_finish(&run->rundir, p->sched, p->tb_started, p->metric_key);
    printf("\nbest: trial %d, %s %.4f  (", best, p->space->metric, value);
    for (int i = 0; i < t->n_overrides; i++)
        printf("%s%s=%s", i ? ", " : "", t->overrides[i].key, t->overrides[i].value);
    printf(")\nepochs spent %ld (training every trial fully: %ld)\nbest configuration: %s\n"
           "best model: %s\n",
           spent, pst_sweep_full_epochs(p->sched), path, p->best_model);
    cJSON_AddStringToObject(b, "model", "best_model.pst");
    if (rc == PST_OK)
        rc = top_trials(p, sw, err);
    return rc ? rc : pst_planrun_finish(run, "sweep", err);
}

int pst_sweeprun_run(const pst_sweeprun_opts_t *o)
{
    pst_sweeprun_opts_t opts = *o;
    sweep_plan_t p = {.opts = &opts};
    pst_err_t err = {0};
    int rc = pst_sweep_space_load_file(o->sweep_path, &p.space, &err);
    if (rc != PST_OK) {
        pst_app_error("%s", err.msg);
        return 1;
    }
    opts.plan.config = p.space->base;
    pst_planrun_t run;
    pst_planrun_kind_t kind = {.name = "sweep",
                               .describe = sweep_describe,
                               .label = sweep_label,
                               .ctx = &p,
                               .next = sweep_next,
                               .report = sweep_report,
                               .persist = sweep_persist,
                               .payload = sweep_payload,
                               .receive = sweep_receive,
                               .config = sweep_config,
                               .keep_models = true,
                               .own_log = true};
    rc = pst_planrun_begin(&run, &opts.plan, NULL, &err);
    p.run = &run;
    if (rc == PST_OK)
        rc = prepare(&p, &run, &err);
    if (rc == PST_OK)
        rc = pst_planrun_execute(&run, &kind, pst_sweep_n_trials(p.sched) * p.n_rungs, &err);
    if (rc == PST_OK && run.lead)
        rc = finish(&p, &run, &err);
    if (rc != PST_OK && (run.lead || !pst_cluster_launched()))
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    int status = pst_planrun_end(&run, rc);
    pst_split_fini(&p.split);
    free(p.tb_started);
    free(p.received);
    free(p.best);
    pst_sweep_keep_destroy(&p.keep);
    pst_sweep_sched_destroy(&p.sched);
    pst_sweep_space_destroy(&p.space);
    return status;
}
