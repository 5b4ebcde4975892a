/* Cross-validation: the folds as a plan of fits, their summary and out-of-fold predictions. */
#include "app/plan/cv.h"

#include <stdio.h>
#include <stdlib.h>

#include "app/console.h"
#include "app/evalcurves.h"
#include "app/mpi/cluster.h"
#include "app/plan/fit.h"
#include "app/plan/planrun.h"
#include "app/rundir.h"
#include "common/atomicfile.h"
#include "common/sample/folds.h"

/* The plan: every fold of every repeat is one fit. */
typedef struct cv_plan {
    const pst_cv_opts_t *opts;
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

/* Each fold's ROC, precision-recall and reliability curves of its out-of-fold rows, kept with
 * the fold's metrics in report.json (classification only). */
static int fold_curves(pst_planrun_t *run, const cv_plan_t *p, pst_err_t *err)
{
    const pst_dataset_t *ds = run->data;
    int rc = PST_OK;
    for (int t = 0; rc == PST_OK && t < run->n_tasks; t++) {
        const pst_fold_t *fold = &p->folds.fold[t];
        if (ds->task != PST_TASK_CLASSIFICATION || !run->pred[t] || !run->task_metrics[t])
            continue;
        float *labels = malloc((fold->n_test ? fold->n_test : 1) * sizeof *labels);
        if (!labels)
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        for (size_t i = 0; i < fold->n_test; i++)
            labels[i] = ds->y[fold->test[i]];
        rc = pst_evalcurves_add(run->task_metrics[t], ds->n_classes, fold->n_test, run->pred[t],
                                run->n_outs[t], labels, err);
        free(labels);
    }
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

/* The folds' means as a TensorBoard run of their own ("mean"), beside fold_1, fold_2... */
static void log_mean(pst_planrun_t *run, const cJSON *cv)
{
    cJSON *line = cJSON_CreateObject();
    for (const cJSON *m = cv->child; m; m = m->next) {
        const cJSON *mean = cJSON_IsObject(m) ? cJSON_GetObjectItem(m, "mean") : NULL;
        if (cJSON_IsNumber(mean))
            pst_json_add_number(line, m->string, mean->valuedouble);
    }
    pst_rundir_tb_line(&run->rundir.tb, "mean", line);
    cJSON_Delete(line);
}

int pst_cv_run(const pst_cv_opts_t *o)
{
    cv_plan_t p = {.opts = o};
    pst_planrun_t run;
    pst_planrun_kind_t kind = {.name = "cv", .describe = cv_describe, .label = cv_label, .ctx = &p};
    pst_err_t err = {0};
    int rc = pst_planrun_begin(&run, &o->plan, o->group_column, &err);
    if (rc == PST_OK)
        rc = pst_kfold(run.data, o->folds, o->stratified, o->repeats, (uint64_t)run.cfg.seed,
                       run.groups, &p.folds, &err);
    if (rc == PST_OK)
        rc = pst_planrun_execute(&run, &kind, p.folds.n_folds, &err);
    if (rc == PST_OK && run.lead) {
        cJSON *cv = cJSON_AddObjectToObject(run.report, "cv");
        cJSON_AddNumberToObject(cv, "folds", o->folds);
        cJSON_AddNumberToObject(cv, "repeats", o->repeats);
        cJSON_AddBoolToObject(cv, "stratified", o->stratified);
        pst_plan_summarise(run.task_metrics, run.n_tasks, cv);
        print_summary(cv, p.folds.n_folds);
        log_mean(&run, cv);
        rc = write_oof(&run, &p, &err);
        if (rc == PST_OK)
            rc = fold_curves(&run, &p, &err);
        if (rc == PST_OK)
            rc = pst_planrun_finish(&run, "cv", &err);
    }
    if (rc != PST_OK && (run.lead || !pst_cluster_launched()))
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    pst_folds_fini(&p.folds);
    return pst_planrun_end(&run, rc);
}
