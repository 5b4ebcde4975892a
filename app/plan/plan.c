/* Shared machinery of the plan commands: data, scoring, summaries, prediction files. */
#include "app/plan/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/mpi/cluster.h"
#include "app/pipeline.h"
#include "app/rundir.h"
#include "app/session.h"
#include "common/data/dataload.h"
#include "common/log.h"
#include "common/eval/metrics.h"
#include "worker/train/train.h"

static int take_group_column(pst_dataset_t *ds, const char *name, int64_t **groups, pst_err_t *err)
{
    size_t d = ds->n_features, col = d;
    for (size_t j = 0; j < d && ds->feature_names; j++)
        if (ds->feature_names[j] && strcmp(ds->feature_names[j], name) == 0)
            col = j;
    if (col == d)
        return pst_err_set(err, PST_ENOTFOUND, "--group-column: no feature column named '%s'",
                           name);
    *groups = malloc((ds->n_rows ? ds->n_rows : 1) * sizeof(int64_t));
    if (!*groups)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; i < ds->n_rows; i++) {
        float v = ds->x[i * d + col];
        if (!isfinite(v))
            return pst_err_set(err, PST_EFORMAT, "row %zu: group column '%s' is missing", i + 1,
                               name);
        (*groups)[i] = (int64_t)v;
        /* Close the gap the column leaves, row by row. */
    }
    for (size_t i = 0; i < ds->n_rows; i++) {
        const float *src = ds->x + i * d;
        float *dst = ds->x + i * (d - 1);
        memmove(dst, src, col * sizeof(float));
        memmove(dst + col, src + col + 1, (d - col - 1) * sizeof(float));
    }
    free(ds->feature_names[col]);
    memmove(ds->feature_names + col, ds->feature_names + col + 1, (d - col - 1) * sizeof(char *));
    ds->n_features = d - 1;
    return PST_OK;
}

int pst_plan_load(const pst_config_t *cfg, const char *group_column, pst_dataset_t **out,
                  int64_t **groups, const char **format, pst_err_t *err)
{
    *out = NULL;
    if (groups)
        *groups = NULL;
    if (cfg->data.window > 0) /* folds and bootstrap samples of windows would mix past and future */
        return pst_err_set(err, PST_EINVAL,
                           "data.window: a plan of fits (cv, bag, stack, sweep) draws rows at "
                           "random, which would let a time series' future into its training "
                           "folds; train windowed data with 'pstrain train'");
    pst_data_spec_t spec = {.path = cfg->data.train,
                            .format = strcmp(cfg->data.format, "auto") ? cfg->data.format : NULL};
    int rc = pst_data_infer_format(&spec, format, err);
    if (rc == PST_OK)
        rc =
            pst_pipeline_load_file(cfg, cfg->data.train, cfg->data.train_labels, NULL, 0, out, err);
    if (rc == PST_OK && (rc = pst_dataset_densify(*out, 0, err)) != PST_OK)
        pst_err_prefix(err, rc, "%s: ", cfg->data.train);
    if (rc == PST_OK && group_column)
        rc = take_group_column(*out, group_column, groups, err);
    if (rc != PST_OK) {
        pst_dataset_destroy(out);
        if (groups) {
            free(*groups);
            *groups = NULL;
        }
    }
    return rc;
}

int pst_plan_score(const pst_dataset_t *ds, const size_t *idx, size_t n, const float *out,
                   int n_out, cJSON *obj, pst_err_t *err)
{
    float *labels = malloc((n ? n : 1) * sizeof(float));
    if (!labels)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        labels[i] = ds->y[idx ? idx[i] : i];
    int rc = PST_OK;
    if (ds->task == PST_TASK_CLASSIFICATION) {
        pst_class_metrics_t m;
        rc = pst_class_metrics_from_outputs(&m, ds->n_classes, n, out, n_out, labels, err);
        if (rc == PST_OK)
            pst_json_add_class_metrics(obj, &m);
        pst_class_metrics_fini(&m);
    } else {
        pst_reg_metrics_t m;
        pst_reg_metrics_compute(&m, n, out, labels);
        pst_json_add_reg_metrics(obj, &m);
    }
    free(labels);
    return rc;
}

void pst_plan_summarise(cJSON *const *tasks, int n_tasks, cJSON *summary)
{
    if (n_tasks == 0)
        return;
    for (cJSON *item = tasks[0]->child; item; item = item->next) {
        if (!cJSON_IsNumber(item) || strcmp(item->string, "n") == 0)
            continue;
        double sum = 0, sq = 0;
        int count = 0;
        cJSON *values = cJSON_CreateArray();
        for (int t = 0; t < n_tasks; t++) {
            cJSON *v = cJSON_GetObjectItem(tasks[t], item->string);
            if (!v || !cJSON_IsNumber(v)) {
                cJSON_AddItemToArray(values, cJSON_CreateNull());
                continue;
            }
            sum += v->valuedouble;
            sq += v->valuedouble * v->valuedouble;
            count++;
            cJSON_AddItemToArray(values, cJSON_CreateNumber(v->valuedouble));
        }
        cJSON *s = cJSON_AddObjectToObject(summary, item->string);
        double mean = count ? sum / count : NAN;
        double var = count ? fmax(0.0, sq / count - mean * mean) : NAN;
        pst_json_add_number(s, "mean", mean);
        pst_json_add_number(s, "std", sqrt(var));
        cJSON_AddItemToObject(s, "values", values);
    }
}

static void write_label(FILE *f, const pst_dataset_t *ds, int k)
{
    if (ds->class_values)
        fprintf(f, "%.17g", ds->class_values[k]);
    else
        fprintf(f, "%d", k);
}

void pst_plan_write_predictions(FILE *f, const pst_dataset_t *ds, const size_t *idx, size_t n,
                                const float *out, int n_out, const char *extra_header,
                                const char *const *extra, bool header)
{
    bool classify = ds->task == PST_TASK_CLASSIFICATION;
    if (header) {
        fprintf(f, "row%s%s,label,prediction", extra_header ? "," : "",
                extra_header ? extra_header : "");
        for (int k = 0; classify && k < ds->n_classes; k++) {
            fputs(",p_", f);
            write_label(f, ds, k);
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < n; i++) {
        size_t r = idx ? idx[i] : i;
        const float *o = out + i * (size_t)n_out;
        fprintf(f, "%zu%s%s,", r, extra ? "," : "", extra ? extra[i] : "");
        if (!classify) {
            fprintf(f, "%.9g,%.9g\n", ds->y[r], o[0]);
            continue;
        }
        write_label(f, ds, (int)ds->y[r]);
        fputc(',', f);
        write_label(f, ds, pst_predicted_class(o, n_out));
        for (int k = 0; k < ds->n_classes; k++)
            fprintf(f, ",%.6g", n_out == 1 ? (k ? o[0] : 1.0f - o[0]) : o[k]);
        fputc('\n', f);
    }
}

int pst_plan_config(pst_config_t *cfg, const pst_plan_args_t *a, pst_err_t *err)
{
    int rc = pst_load_config(cfg, a->config, a->sets, a->n_sets, err);
    if (rc == PST_OK)
        rc = pst_config_validate(cfg, err);
    /* Folds, members and trials share the rows: their privacy would compose, unaccounted. */
    if (rc == PST_OK && cfg->train.dp.clip > 0)
        rc = pst_err_set(err, PST_EINVAL, "train.dp.clip: DP-SGD runs in pstrain train only");
    /* Loading sets the log level from log_level; -q outranks it on every load (a sweep or a
     * stack loads CONFIG again for each trial or base model). */
    if (a->quiet)
        pst_log_set_level(PST_LOG_ERROR);
    return rc;
}
