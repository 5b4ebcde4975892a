/* `pstrain explain`: load, explain, print and write. */
#include "app/explain/explain.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/console.h"
#include "app/explain/explain_write.h"
#include "app/pipeline.h"
#include "app/report/report.h"
#include "app/score_csv.h"
#include "common/atomicfile.h"
#include "common/config.h"
#include "common/data/rowreader.h"
#include "common/log.h"
#include "worker/model/sparsefile.h"

void pst_explain_opts_defaults(pst_explain_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->repeats = 5;
    o->attr = (pst_attr_opts_t){
        .rows = 100, .background = 50, .steps = 50, .coalitions = 2048, .seed = 1};
}

/* What one explanation holds: the model or ensemble, its configuration and the explainer. */
typedef struct job {
    pst_modelfile_t mf;
    pst_ensemble_t ens;
    bool ensemble;
    const pst_modelfile_t *ref;
    pst_config_t cfg;
    bool cfg_ready;
    pst_explainer_t ex;
    char **ids; // (rows explained) or NULL
    size_t n_ids;
} job_t;

static void job_fini(job_t *j)
{
    for (size_t i = 0; j->ids && i < j->n_ids; i++)
        free(j->ids[i]);
    free(j->ids);
    pst_explainer_fini(&j->ex);
    if (j->cfg_ready)
        pst_config_fini(&j->cfg);
    pst_modelfile_fini(&j->mf);
    pst_ensemble_fini(&j->ens);
}

static int load_model(job_t *j, const char *path, pst_err_t *err)
{
    bool sparse = false;
    if (pst_sparsefile_probe(path, &sparse, err) == PST_OK && sparse)
        return pst_err_set(err, PST_EINVAL,
                           "%s: a sparse model (sparse_lr, fm, wide_deep); explain takes dense "
                           "models and ensembles",
                           path);
    int rc = pst_ensemble_probe(path, &j->ensemble, err);
    if (rc == PST_OK)
        rc = j->ensemble ? pst_ensemble_load(&j->ens, path, err)
                         : pst_modelfile_load(&j->mf, path, err);
    if (rc == PST_OK)
        j->ref = j->ensemble ? &j->ens.members[0] : &j->mf;
    return rc;
}

static int load_config(job_t *j, const pst_explain_opts_t *o, pst_err_t *err)
{
    pst_config_init(&j->cfg);
    j->cfg_ready = true;
    int rc = PST_OK;
    if (j->ref->config_yaml)
        rc = pst_config_load_string(&j->cfg, j->ref->config_yaml, o->model, err);
    for (int i = 0; i < o->n_sets && rc == PST_OK; i++)
        rc = pst_config_set(&j->cfg, o->sets[i], err);
    return rc;
}

static int load_data(job_t *j, const char *path, pst_err_t *err)
{
    pst_dataset_t *ds = NULL;
    bool labelled = true;
    int rc = pst_pipeline_load_for(&j->cfg, path, j->cfg.data.test_labels, j->ref, true, &ds, err);
    if (rc != PST_OK) {
        /* rows without labels still get attributions; any other fault fails both reads */
        pst_err_t second = {0};
        if (pst_pipeline_load_for(&j->cfg, path, j->cfg.data.test_labels, j->ref, false, &ds,
                                  &second) == PST_OK) {
            rc = PST_OK;
            labelled = false;
        }
    }
    if (rc == PST_OK && (rc = pst_dataset_densify(ds, (size_t)j->ref->n_inputs, err)))
        pst_err_prefix(err, rc, "%s: ", path);
    if (rc != PST_OK) {
        pst_dataset_destroy(&ds);
        return rc;
    }
    rc = j->ensemble ? pst_explainer_init_ensemble(&j->ex, &j->ens, ds, labelled, err)
                     : pst_explainer_init_model(&j->ex, &j->mf, ds, labelled, err);
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", path);
}

/* The ids of the first n rows of a CSV file, read by the model's input columns. */
static int load_ids(job_t *j, const char *path, const char *column, size_t n, pst_err_t *err)
{
    pst_encoder_t *owned = NULL;
    const pst_encoder_t *enc = pst_score_inputs(j->ref, &owned);
    if (!enc)
        return pst_err_set(err, PST_EINVAL, "--id %s: the model has no named input columns",
                           column);
    pst_rowreader_opts_t ro = {.encoder = enc, .task = j->ref->task, .id_column = column};
    pst_rowreader_t *r = pst_rowreader_open(path, &ro, err);
    float *x = malloc(n * enc->n_features * sizeof(float) + 1);
    float *y = malloc(n * sizeof(float) + 1);
    j->ids = calloc(n ? n : 1, sizeof(char *));
    int rc = r ? PST_OK : pst_err_code(err, PST_EFORMAT);
    if (rc == PST_OK && (!x || !y || !j->ids))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    while (rc == PST_OK && j->n_ids < n) {
        size_t got = 0;
        rc = pst_rowreader_next(r, n - j->n_ids, x, y, j->ids + j->n_ids, &got, err);
        if (got == 0)
            break;
        j->n_ids += got;
    }
    pst_rowreader_destroy(&r);
    pst_encoder_destroy(&owned);
    free(x);
    free(y);
    return rc;
}

/* The training mean as the layer stack sees it, (model inputs) in *zbar (caller frees), or NULL
 * when the model file does not tell it: with mean imputation (the default) the fill value of a
 * feature is its training mean, whatever the scaler; a standard scaler's shift is the mean too,
 * so that it maps to 0. */
static double *training_baseline(const job_t *j, const char **how)
{
    const pst_modelfile_t *mf = &j->mf;
    const char *scaler = j->cfg.data.scaler;
    bool mean_fill = strcmp(j->cfg.data.impute, "mean") == 0;
    bool standard = strcmp(scaler, "standard") == 0 ||
                    (strcmp(scaler, "auto") == 0 && (mf->pixel_scale == 0 || mf->pixel_scale == 1));
    if (j->ensemble || !mf->shift || !mf->fill || !(mean_fill || standard))
        return NULL;
    int width = pst_modelfile_width(mf);
    double *zbar = calloc((size_t)width, sizeof(double));
    for (int k = 0; zbar && mean_fill && k < width; k++) {
        size_t f = mf->n_columns > 0 ? mf->columns[k] : (size_t)k;
        zbar[k] = ((double)mf->fill[f] - mf->shift[f]) * mf->scale[f];
    }
    *how = mean_fill ? "training mean (the model's mean-imputation values)"
                     : "training mean (the standard scaler's centre)";
    return zbar;
}

static void print_importance(const pst_explainer_t *ex, const pst_importance_t *imp)
{
    printf("permutation importance: %s (%s on the rows as given: %.6g), %d repeats\n",
           imp->metric == PST_IMPORTANCE_ACCURACY ? "drop in accuracy"
           : imp->metric == PST_IMPORTANCE_MSE    ? "rise in mse"
                                                  : "rise in log-loss",
           pst_importance_metric_name(imp->metric), imp->base, imp->repeats);
    printf("  %4s  %-24s %12s %12s\n", "rank", "column", "mean", "std");
    for (int i = 0; i < imp->n_groups; i++) {
        int g = imp->order[i];
        printf("  %4d  %-24.24s %12.6g %12.6g\n", i + 1, ex->group_names[g], imp->mean[g],
               imp->std[g]);
    }
}

static void print_attributions(const pst_explainer_t *ex, const pst_attributions_t *at,
                               const pst_attr_opts_t *o, const char *how)
{
    const char *baseline = at->method == PST_ATTR_KERNEL_SHAP
                               ? "mean output over the background rows"
                           : o->baseline ? how
                                         : "mean of the background rows";
    printf("attributions: %s of the %s, %zu rows; baseline: %s", pst_attr_method_name(at->method),
           pst_explainer_output_name(ex), at->n_rows, baseline);
    if (at->method == PST_ATTR_KERNEL_SHAP || !o->baseline)
        printf(" (%d rows)", o->background);
    if (at->method == PST_ATTR_KERNEL_SHAP)
        printf("; %s",
               at->exhaustive ? "every coalition (exact Shapley values)" : "sampled coalitions");
    if (at->method == PST_ATTR_IG)
        printf("; %d steps", o->steps);
    printf("\ncompleteness: each row's attributions sum to f(x) - f(baseline); worst error "
           "%.3g\n",
           at->worst_error);
}

/* A run directory's HTML report is written again, now with the importance section. */
static void refresh_report(const char *dir, const char *page)
{
    pst_report_opts_t ro = {.dirs = {dir}, .n_dirs = 1, .out = page};
    pst_err_t err = {0};
    if (pst_report_write(&ro, NULL, 0, &err) == PST_OK)
        printf("added the importance to %s\n", page);
    else
        pst_warn("%s: not updated: %s", page, err.msg);
}

static int write_outputs(const job_t *j, const char *dir, const pst_importance_t *imp,
                         const pst_attributions_t *at, const char *id_name, pst_err_t *err)
{
    char path[4096];
    int rc = pst_mkdir_p(dir, err);
    snprintf(path, sizeof path, "%s/importance.csv", dir);
    if (rc == PST_OK && imp)
        rc = pst_explain_write_importance(path, &j->ex, imp, err);
    snprintf(path, sizeof path, "%s/attributions.csv", dir);
    if (rc == PST_OK)
        rc = pst_explain_write_attributions(path, &j->ex, at, id_name, j->ids, err);
    snprintf(path, sizeof path, "%s/explain.html", dir);
    if (rc == PST_OK)
        rc = pst_explain_write_html(path, &j->ex, imp, at, err);
    if (rc == PST_OK)
        printf("wrote %s/%sattributions.csv and explain.html\n", dir,
               imp ? "importance.csv, " : "");
    snprintf(path, sizeof path, "%s/report.html", dir);
    if (rc == PST_OK && access(path, F_OK) == 0)
        refresh_report(dir, path);
    return rc;
}

static int run(job_t *j, const pst_explain_opts_t *o, const char *dir, pst_err_t *err)
{
    int rc = load_model(j, o->model, err);
    if (rc == PST_OK)
        rc = load_config(j, o, err);
    if (rc == PST_OK)
        rc = load_data(j, o->data, err);
    pst_attr_opts_t ao = o->attr;
    const char *how = NULL;
    double *baseline = rc == PST_OK ? training_baseline(j, &how) : NULL;
    ao.baseline = baseline;
    if (rc == PST_OK)
        rc = pst_attr_resolve(&j->ex, &ao.method, err);
    const char *id = o->id ? o->id : (j->cfg_ready ? j->cfg.data.id_column : NULL);
    pst_importance_t imp = {0};
    pst_attributions_t at = {0};
    bool labelled = rc == PST_OK && j->ex.labelled;
    if (labelled)
        rc = pst_importance_compute(&j->ex, o->metric, o->repeats, ao.seed, &imp, err);
    if (rc == PST_OK)
        rc = pst_attributions_compute(&j->ex, &ao, &at, err);
    if (rc == PST_OK && id && id[0])
        rc = load_ids(j, o->data, id, at.n_rows, err);
    if (rc == PST_OK) {
        if (labelled)
            print_importance(&j->ex, &imp);
        else
            printf("permutation importance: skipped, %s has no labels (column '%s')\n", o->data,
                   j->cfg.data.target);
        print_attributions(&j->ex, &at, &ao, how);
        rc = write_outputs(j, dir, labelled ? &imp : NULL, &at, id, err);
    }
    pst_importance_fini(&imp);
    pst_attributions_fini(&at);
    free(baseline);
    return rc;
}

int pst_explain_run(const pst_explain_opts_t *o)
{
    char *model_copy = strdup(o->model);
    const char *dir = o->out_dir ? o->out_dir : (model_copy ? dirname(model_copy) : ".");
    job_t j = {0};
    pst_err_t err = {0};
    int rc = model_copy ? run(&j, o, dir, &err) : pst_err_set(&err, PST_ENOMEM, "out of memory");
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    job_fini(&j);
    free(model_copy);
    return rc == PST_OK ? 0 : 1;
}
