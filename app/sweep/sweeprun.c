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
    char results_json[1100], results_csv[1100];
} sweep_plan_t;

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

static int sweep_config(void *ctx, int task, pst_config_t *cfg, pst_err_t *err)
{
    sweep_plan_t *p = ctx;
    int rc = pst_plan_config(cfg, &p->opts->plan, err);
    pst_sweep_job_t job = {task / p->n_rungs, task % p->n_rungs,
                           pst_sweep_rung_epochs(p->sched, task % p->n_rungs), 0};
    return rc ? rc : pst_sweep_job_apply(p->sched, &job, cfg, err);
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
    if (pst_sweep_write_results(p->sched, p->results_json, &err) != PST_OK ||
        pst_sweep_write_results(p->sched, p->results_csv, &err) != PST_OK)
        pst_warn("sweep: %s", err.msg);
}

/* The metric's key in a task's metrics: val.X is X, and val.loss the task's own loss. */
static const char *metric_key(const char *metric, pst_task_t task)
{
    const char *key = strncmp(metric, "val.", 4) == 0 ? metric + 4 : metric;
    if (strcmp(key, "loss") == 0)
        return task == PST_TASK_CLASSIFICATION ? "log_loss" : "mse";
    return key;
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
    pst_rundir_file(&run->rundir, "sweep_results.json", p->results_json, sizeof p->results_json);
    pst_rundir_file(&run->rundir, "sweep_results.csv", p->results_csv, sizeof p->results_csv);
    struct stat sb;
    if (p->opts->resume && stat(p->results_json, &sb) == 0) {
        if ((rc = pst_sweep_load_results(p->sched, p->results_json, err)) != PST_OK)
            return rc;
        pst_info("sweep: resumed from %s", p->results_json);
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
    printf(")\nepochs spent %ld (training every trial fully: %ld)\nbest configuration: %s\n", spent,
           pst_sweep_full_epochs(p->sched), path);
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
                               .config = sweep_config};
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
    pst_sweep_sched_destroy(&p.sched);
    pst_sweep_space_destroy(&p.space);
    return status;
}
