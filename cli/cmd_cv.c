/* pstrain cv: k-fold cross-validation, repeated, stratified or grouped, as a plan of fits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "app/console.h"
#include "app/mpi/cluster.h"
#include "app/plan/fit.h"
#include "app/plan/plan.h"
#include "app/plan/planrun.h"
#include "app/rundir.h"
#include "common/atomicfile.h"
#include "common/sample/folds.h"
#include "common/log.h"

void pst_usage_cv(FILE *out)
{
    fprintf(out,
            "usage: pstrain cv CONFIG [--folds K] [--stratified] [--repeats R]\n"
            "                  [--group-column C] [--set KEY=VALUE]... [--out DIR]\n\n"
            "Cross-validates the model CONFIG describes on data.train: the rows are cut into K\n"
            "folds (R times with different shuffles) and one model per fold trains on the other\n"
            "folds and is scored on its own. Preprocessing and train.imbalance handling are\n"
            "fitted on each fold's training rows only. Under mpirun the folds are shared out to\n"
            "worker groups (cluster.groups).\n\n"
            "options:\n"
            "  --folds K          folds per repeat (default 5)\n"
            "  --stratified       keep each class's share in every fold\n"
            "  --repeats R        repeat with R different shuffles (default 1)\n"
            "  --group-column C   rows sharing a value of feature column C stay in one fold (the\n"
            "                     column is not used as a feature)\n"
            "  --set KEY=VALUE    override a configuration key\n"
            "  --out DIR          run directory (default runs/NAME-cv-YYYYMMDD-HHMMSS)\n\n"
            "Writes report.json (cv.<metric>.mean/std over folds, every fold's metrics, fit and\n"
            "score times), metrics.jsonl (a line per fold) and oof_predictions.csv (each row's\n"
            "prediction by the model that did not train on it).\n");
}

typedef struct cv_args {
    pst_plan_args_t plan;
    int folds, repeats;
    bool stratified;
    const char *group_column;
} cv_args_t;

static int parse_cv_args(cv_args_t *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->folds = 5;
    a->repeats = 1;
    for (int i = 1; i < argc; i++) {
        int used = pst_plan_common_arg(&a->plan, argc, argv, i);
        bool has_value = i + 1 < argc;
        if (used) {
            i += used - 1;
        } else if (pst_is_help(argv[i])) {
            pst_usage_cv(stdout);
            return 1;
        } else if (strcmp(argv[i], "--folds") == 0 && has_value) {
            a->folds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--repeats") == 0 && has_value) {
            a->repeats = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--stratified") == 0) {
            a->stratified = true;
        } else if (strcmp(argv[i], "--group-column") == 0 && has_value) {
            a->group_column = argv[++i];
        } else {
            pst_app_error("cv: unknown or incomplete option '%s' (see 'pstrain cv --help')",
                          argv[i]);
            return 2;
        }
    }
    if (!a->plan.config) {
        pst_app_error("cv: no CONFIG file given (see 'pstrain cv --help')");
        return 2;
    }
    if (a->folds < 2 || a->repeats < 1) {
        pst_app_error("cv: --folds must be at least 2 and --repeats at least 1");
        return 2;
    }
    return 0;
}

/* The plan: every fold of every repeat is one fit. */
typedef struct cv_plan {
    const cv_args_t *args;
    pst_folds_t folds;
} cv_plan_t;

static void cv_describe(void *ctx, int task, const pst_dataset_t *ds, pst_fit_t *fit)
{
    cv_plan_t *p = ctx;
    const pst_fold_t *f = &p->folds.fold[task];
    fit->train = f->train;
    fit->n_train = f->n_train;
    fit->eval = f->test;
    fit->n_eval = f->n_test;
}

static void cv_label(void *ctx, int task, char *buf, size_t cap)
{
    cv_plan_t *p = ctx;
    if (p->folds.repeats > 1)
        snprintf(buf, cap, "repeat %d fold %d", task / p->folds.k + 1, task % p->folds.k + 1);
    else
        snprintf(buf, cap, "fold %d", task + 1);
}

/* oof_predictions.csv: every repeat's out-of-fold prediction of every row. */
static int write_oof(const pst_planrun_t *run, const cv_plan_t *p, pst_err_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int t = 0; t < run->n_tasks; t++) {
        const pst_fold_t *fold = &p->folds.fold[t];
        char **extra = malloc((fold->n_test ? fold->n_test : 1) * sizeof(char *));
        char text[32];
        snprintf(text, sizeof text, "%d,%d", t / p->folds.k, t % p->folds.k);
        for (size_t i = 0; extra && i < fold->n_test; i++)
            extra[i] = text;
        pst_plan_write_predictions(f, run->data, fold->test, fold->n_test, run->pred[t], run->n_out,
                                   "repeat,fold", (const char *const *)extra, t == 0);
        free(extra);
    }
    fclose(f);
    char path[1100];
    int rc = pst_write_file_atomic(
        pst_rundir_file(&run->rundir, "oof_predictions.csv", path, sizeof path), buf, len, err);
    free(buf);
    return rc;
}

/* "accuracy 0.9830 +- 0.0228" for the metrics people look at first. */
static void print_summary(const cJSON *cv, int n_folds)
{
    const char *keys[] = {"accuracy", "f1_macro", "roc_auc", "log_loss", "mse", "mae", "r2"};
    printf("\ncv over %d folds:", n_folds);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const cJSON *m = cJSON_GetObjectItem(cv, keys[k]);
        const cJSON *mean = m ? cJSON_GetObjectItem(m, "mean") : NULL;
        const cJSON *std = m ? cJSON_GetObjectItem(m, "std") : NULL;
        if (mean && std && cJSON_IsNumber(mean) && cJSON_IsNumber(std))
            printf("  %s %.4f +- %.4f", keys[k], mean->valuedouble, std->valuedouble);
    }
    printf("\n");
}

int pst_cmd_cv(int argc, char **argv)
{
    cv_args_t a;
    int status = parse_cv_args(&a, argc, argv);
    if (status != 0)
        return status == 1 ? 0 : status;
    cv_plan_t p = {.args = &a};
    pst_planrun_t run;
    pst_planrun_kind_t kind = {.name = "cv", .describe = cv_describe, .label = cv_label, .ctx = &p};
    pst_err_t err = {0};
    int rc = pst_planrun_begin(&run, &a.plan, a.group_column, &err);
    if (rc == PST_OK)
        rc = pst_kfold(run.data, a.folds, a.stratified, a.repeats, (uint64_t)run.cfg.seed,
                       run.groups, &p.folds, &err);
    if (rc == PST_OK)
        rc = pst_planrun_execute(&run, &kind, p.folds.n_folds, &err);
    if (rc == PST_OK && run.lead) {
        cJSON *cv = cJSON_AddObjectToObject(run.report, "cv");
        cJSON_AddNumberToObject(cv, "folds", a.folds);
        cJSON_AddNumberToObject(cv, "repeats", a.repeats);
        cJSON_AddBoolToObject(cv, "stratified", a.stratified);
        pst_plan_summarise(run.task_metrics, run.n_tasks, cv);
        print_summary(cv, p.folds.n_folds);
        rc = write_oof(&run, &p, &err);
        if (rc == PST_OK)
            rc = pst_planrun_finish(&run, "cv", &err);
    }
    if (rc != PST_OK && (run.lead || !pst_cluster_launched()))
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    pst_folds_fini(&p.folds);
    status = pst_planrun_end(&run, rc);
    return status;
}
