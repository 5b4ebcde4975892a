/* Ensemble plans: data rows, fits that keep their models, member files, combined scores. */
#include "app/plan/ensemble.h"

#include "common/data/table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/pipeline.h"
#include "app/rundir.h"
#include "common/atomicfile.h"
#include "common/sample/split.h"

/* ---- rows -------------------------------------------------------------------------------- */

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static size_t *index_range(size_t first, size_t n)
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; idx && i < n; i++)
        idx[i] = first + i;
    return idx;
}

/* Appends the rows of data.test (read with data.train's classes) to run->data. */
static int append_test_file(pst_planrun_t *run, pst_err_t *err)
{
    pst_dataset_t *all = run->data, *test = NULL;
    const pst_config_t *cfg = &run->cfg;
    int rc = pst_pipeline_load_like(cfg, cfg->data.test, cfg->data.test_labels, all, &test, err);
    if (rc == PST_OK && (rc = pst_dataset_densify(test, all->n_features, err)) != PST_OK)
        pst_err_prefix(err, rc, "%s: ", cfg->data.test);
    if (rc == PST_OK && all->table && (rc = pst_table_adopt_codes(all->table, test, err)))
        pst_err_prefix(err, rc, "%s: ", cfg->data.test);
    if (rc == PST_OK && test->n_features != all->n_features)
        rc = pst_err_set(err, PST_EFORMAT, "%s has %zu features but %s has %zu", cfg->data.test,
                         test->n_features, cfg->data.train, all->n_features);
    size_t n = all->n_rows + (test ? test->n_rows : 0), d = all->n_features;
    float *x = rc == PST_OK ? realloc(all->x, (n ? n : 1) * d * sizeof(float)) : NULL;
    if (x)
        all->x = x;
    float *y = x ? realloc(all->y, (n ? n : 1) * sizeof(float)) : NULL;
    if (y)
        all->y = y;
    if (rc == PST_OK && !y)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK) {
        memcpy(all->x + all->n_rows * d, test->x, test->n_rows * d * sizeof(float));
        memcpy(all->y + all->n_rows, test->y, test->n_rows * sizeof(float));
        all->n_rows = n;
    }
    pst_dataset_destroy(&test);
    return rc;
}

int pst_ens_rows(pst_planrun_t *run, pst_ens_rows_t *rows, pst_err_t *err)
{
    memset(rows, 0, sizeof *rows);
    const pst_config_t *cfg = &run->cfg;
    size_t n_train_file = run->data->n_rows;
    if (cfg->data.test[0]) {
        int rc = append_test_file(run, err);
        if (rc != PST_OK)
            return rc;
        rows->pool = index_range(0, n_train_file);
        rows->n_pool = n_train_file;
        rows->n_test = run->data->n_rows - n_train_file;
        rows->test = index_range(n_train_file, rows->n_test);
    } else {
        pst_split_t s;
        bool stratify = cfg->data.stratify && run->data->task == PST_TASK_CLASSIFICATION;
        int rc = pst_split_three(run->data, cfg->data.train_fraction, cfg->data.val_fraction,
                                 cfg->data.test_fraction, stratify, (uint64_t)cfg->seed, &s, err);
        if (rc != PST_OK)
            return rc;
        rows->n_pool = s.n_train + s.n_val;
        rows->pool = malloc((rows->n_pool ? rows->n_pool : 1) * sizeof(size_t));
        rows->test = index_range(0, s.n_test);
        rows->n_test = s.n_test;
        if (rows->pool && rows->test) {
            memcpy(rows->pool, s.train, s.n_train * sizeof(size_t));
            memcpy(rows->pool + s.n_train, s.val, s.n_val * sizeof(size_t));
            memcpy(rows->test, s.test, s.n_test * sizeof(size_t));
        }
        pst_split_fini(&s);
    }
    if (!rows->pool || !rows->test)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    qsort(rows->pool, rows->n_pool, sizeof(size_t), cmp_size);
    qsort(rows->test, rows->n_test, sizeof(size_t), cmp_size);
    if (rows->n_test == 0)
        return pst_err_set(err, PST_EINVAL,
                           "%s: no test rows (set data.test_fraction above 0 or data.test)",
                           cfg->data.train);
    if (rows->n_pool < 2)
        return pst_err_set(err, PST_EINVAL, "%s: %zu training rows", cfg->data.train, rows->n_pool);
    return PST_OK;
}

void pst_ens_rows_fini(pst_ens_rows_t *rows)
{
    free(rows->pool);
    free(rows->test);
    memset(rows, 0, sizeof *rows);
}

/* ---- running the fits -------------------------------------------------------------------- */

/* One fit in this process, set up as the plan runner sets it up; its model is kept on request. */
int pst_ens_execute(pst_planrun_t *run, const pst_planrun_kind_t *kind, int n_tasks,
                    pst_ens_exec_t *ex, pst_err_t *err)
{
    pst_planrun_kind_t keeping = *kind;
    keeping.keep_models = true;
    keeping.keep_from = ex->keep_from;
    ex->n_tasks = n_tasks;
    return pst_planrun_execute(run, &keeping, n_tasks, err);
}

int pst_ens_width(const pst_planrun_t *run)
{
    return pst_ensemble_width(run->data->task, run->data->n_classes);
}

int pst_ens_task_probs(const pst_planrun_t *run, int task, size_t first, size_t n, int width,
                       float **probs, pst_err_t *err)
{
    int n_out = run->n_outs[task];
    if (!run->pred[task] || (n_out != width && !(n_out == 1 && width == 2)))
        return pst_err_set(err, PST_ESTATE, "task %d gave %d outputs per row, not %d", task + 1,
                           n_out, width);
    if (!(*probs = malloc((n ? n : 1) * (size_t)width * sizeof(float))))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    pst_ensemble_outputs_to_probs(run->pred[task] + first * (size_t)n_out, n, n_out, width, *probs);
    return PST_OK;
}

int pst_ens_member(const pst_planrun_t *run, int task, pst_modelfile_t *mf, pst_err_t *err)
{
    return pst_planrun_model(run, task, mf, err);
}

int pst_ens_member_fit(const pst_config_t *cfg, const pst_dataset_t *data, const pst_fit_out_t *out,
                       pst_modelfile_t *mf, pst_err_t *err)
{
    pst_fit_t view = {.cfg = cfg, .data = data};
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = pst_fit_model_pack(&view, out, &buf, &len, err);
    if (rc == PST_OK)
        rc = pst_modelfile_unpack(mf, buf, len, "the meta model", err);
    free(buf);
    return rc;
}

cJSON *pst_ens_score(const pst_dataset_t *ds, const size_t *idx, size_t n, const float *probs,
                     int width, cJSON *obj, const char *name, pst_err_t *err)
{
    cJSON *m = cJSON_AddObjectToObject(obj, name);
    if (!m) {
        pst_err_set(err, PST_ENOMEM, "out of memory");
        return NULL;
    }
    return pst_plan_score(ds, idx, n, probs, width, m, err) == PST_OK ? m : NULL;
}

double pst_ens_number(const cJSON *obj, const char *key)
{
    const cJSON *v = obj ? cJSON_GetObjectItem(obj, key) : NULL;
    return v && cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int pst_ens_write_predictions(const pst_planrun_t *run, const char *name, const size_t *idx,
                              size_t n, const float *probs, int width, pst_err_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    pst_plan_write_predictions(f, run->data, idx, n, probs, width, NULL, NULL, true);
    fclose(f);
    char path[1100];
    int rc = pst_write_file_atomic(pst_rundir_file(&run->rundir, name, path, sizeof path), buf, len,
                                   err);
    free(buf);
    return rc;
}

void pst_ens_log(const pst_planrun_t *run, const char *label, const cJSON *metrics)
{
    pst_rundir_log_task((pst_rundir_t *)&run->rundir, label, metrics);
}
