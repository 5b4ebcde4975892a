/* train.imbalance in a training job: class weights, or a resampled list of training rows. */
#include "app/imbalance.h"

#include <stdlib.h>
#include <string.h>

#include "app/rundir.h"
#include "common/rng.h"
#include "common/sample/resample.h"

/* Seed stream of the job's resampling (cv, bag and stack tasks derive theirs from the task). */
enum { IMBALANCE_STREAM = 33 };

void pst_imbalance_fini(pst_imbalance_t *ib)
{
    free(ib->rows);
    free(ib->class_weights);
    free(ib->class_rows);
    memset(ib, 0, sizeof *ib);
}

static int append_smote(pst_imbalance_t *ib, const pst_config_t *cfg, pst_dataset_t *train,
                        const size_t *all, uint64_t seed, pst_err_t *err)
{
    pst_dataset_t *syn = NULL;
    int rc = pst_smote(train, all, train->n_rows, (int)cfg->train.smote_k, seed, &syn, err);
    if (rc == PST_OK && (rc = pst_dataset_append_rows(train, syn, err)) == PST_OK)
        ib->n_synthetic = syn->n_rows;
    pst_dataset_destroy(&syn);
    return rc;
}

/* Class counts of the rows the trainer draws from, summed over workers when reduce is given. */
static int count_classes(pst_imbalance_t *ib, const pst_dataset_t *train,
                         const pst_reducer_t *reduce, pst_err_t *err)
{
    int k = ib->n_classes;
    size_t n = ib->rows ? ib->n_rows : train->n_rows;
    int rc = pst_class_counts(train, ib->rows, n, ib->class_rows, err);
    if (!reduce)
        return rc;
    /* Every worker reaches the reduction, failed or not, or the others would wait for it. */
    double sums[PST_IMBALANCE_MAX_CLASSES] = {0};
    for (int c = 0; rc == PST_OK && c < k; c++)
        sums[c] = (double)ib->class_rows[c];
    int reduced = reduce->sum(reduce->ctx, sums, k, err);
    for (int c = 0; rc == PST_OK && reduced == PST_OK && c < k; c++)
        ib->class_rows[c] = (size_t)sums[c];
    return rc != PST_OK ? rc : reduced;
}

static int resample(pst_imbalance_t *ib, const pst_config_t *cfg, pst_dataset_t *train,
                    pst_err_t *err)
{
    const char *how = ib->method;
    size_t n = train->n_rows;
    size_t *all = malloc((n ? n : 1) * sizeof *all);
    if (!all)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        all[i] = i;
    uint64_t seed = pst_rng_derive((uint64_t)cfg->seed, IMBALANCE_STREAM);
    int rc = PST_OK;
    if (strcmp(how, "smote") == 0)
        rc = append_smote(ib, cfg, train, all, seed, err);
    else if (strcmp(how, "oversample") == 0)
        rc = pst_oversample_random(train, all, n, seed, &ib->rows, &ib->n_rows, err);
    else if (strcmp(how, "undersample") == 0)
        rc = pst_undersample_random(train, all, n, seed, &ib->rows, &ib->n_rows, err);
    free(all);
    return rc;
}

int pst_imbalance_apply(pst_imbalance_t *ib, const pst_config_t *cfg, pst_dataset_t *train,
                        const pst_reducer_t *reduce, pst_err_t *err)
{
    memset(ib, 0, sizeof *ib);
    ib->method = cfg->train.imbalance;
    if (strcmp(ib->method, "none") == 0)
        return PST_OK;
    if (train->task != PST_TASK_CLASSIFICATION)
        return pst_err_set(err, PST_EINVAL, "train.imbalance: %s needs a classification task",
                           ib->method);
    bool weights = strcmp(ib->method, "class_weight") == 0;
    if (reduce && !weights)
        return pst_err_set(err, PST_EINVAL,
                           "train.imbalance: %s resamples the whole training set, which workers "
                           "reading a file each (data.train with {worker}) do not share; use "
                           "class_weight",
                           ib->method);
    if (train->n_classes > PST_IMBALANCE_MAX_CLASSES)
        return pst_err_set(err, PST_EINVAL, "train.imbalance: %d classes, at most %d",
                           train->n_classes, PST_IMBALANCE_MAX_CLASSES);
    ib->n_classes = train->n_classes;
    ib->class_rows = calloc((size_t)ib->n_classes, sizeof *ib->class_rows);
    if (!ib->class_rows)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    int rc = resample(ib, cfg, train, err);
    if (rc == PST_OK)
        rc = count_classes(ib, train, reduce, err);
    if (rc == PST_OK && weights) {
        if (!(ib->class_weights = calloc((size_t)ib->n_classes, sizeof(double))))
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        pst_class_weights_from_counts(ib->class_rows, ib->n_classes, ib->class_weights);
    }
    return rc == PST_OK ? PST_OK : pst_err_prefix(err, rc, "train.imbalance %s: ", ib->method);
}

void pst_imbalance_json(const pst_imbalance_t *ib, cJSON *obj)
{
    cJSON_AddStringToObject(obj, "method", ib->method);
    if (!ib->class_rows)
        return;
    cJSON *rows = cJSON_AddArrayToObject(obj, "class_rows");
    for (int c = 0; c < ib->n_classes; c++)
        cJSON_AddItemToArray(rows, cJSON_CreateNumber((double)ib->class_rows[c]));
    if (ib->class_weights) {
        cJSON *w = cJSON_AddArrayToObject(obj, "class_weights");
        for (int c = 0; c < ib->n_classes; c++)
            cJSON_AddItemToArray(w, cJSON_CreateNumber(ib->class_weights[c]));
    }
    pst_json_add_number(obj, "synthetic_rows", (double)ib->n_synthetic);
}
