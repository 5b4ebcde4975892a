/* Data pipeline: load, split, deduplicate, fit preprocessing on train, apply to all parts. */
#include "app/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "app/seqsplit.h"
#include "app/tabular.h"
#include "common/clock.h"
#include "common/data/dataload.h"
#include "common/data/table.h"
#include "common/drift/profile.h"
#include "common/log.h"
#include "worker/model/modelfile.h"
#include "common/sample/split.h"

static pst_data_task_t task_of(const char *name)
{
    if (strcmp(name, "classification") == 0)
        return PST_DATA_TASK_CLASSIFICATION;
    if (strcmp(name, "regression") == 0)
        return PST_DATA_TASK_REGRESSION;
    return PST_DATA_TASK_AUTO;
}

static int load_spec(const pst_config_t *cfg, const char *path, const char *labels_path,
                     const pst_dataset_t *like, const double *class_values, int n_class_values,
                     bool need_target, pst_dataset_t **out, pst_err_t *err)
{
    pst_table_opts_t table;
    pst_tabular_table_opts(cfg, &table);
    /* A file read like a training table takes the training columns, by name. */
    const char **names = NULL;
    if (like && like->table) {
        table.schema = like->table;
        if (!(names = calloc(like->table->n_cols, sizeof *names)))
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        for (size_t j = 0; j < like->table->n_cols; j++)
            names[j] = like->table->cols[j].name;
        table.features = names;
        table.n_features = (int)like->table->n_cols;
        table.n_drop = 0;
        table.id_column = NULL;
    }
    pst_data_spec_t spec = {
        .path = path,
        .format = strcmp(cfg->data.format, "auto") == 0 ? NULL : cfg->data.format,
        .target = cfg->data.target,
        .labels_path = labels_path && labels_path[0] ? labels_path : NULL,
        .task = task_of(cfg->data.task),
        .n_classes = (int)cfg->data.n_classes,
        .class_values = class_values,
        .n_class_values = n_class_values,
        .read_threads = (unsigned)cfg->data.read_threads,
        .class_names = like ? (const char *const *)like->class_names : NULL,
        .table = &table,
        .target_optional = !need_target,
    };
    if (class_values)
        spec.task = PST_DATA_TASK_CLASSIFICATION;
    int rc = pst_data_load(&spec, out, err);
    free(names);
    if (rc == PST_OK && strcmp(path, cfg->data.train) == 0 &&
        (rc = pst_tabular_check_training(*out, path, err)) != PST_OK)
        pst_dataset_destroy(out);
    return rc;
}

int pst_pipeline_load_file(const pst_config_t *cfg, const char *path, const char *labels_path,
                           const double *class_values, int n_class_values, pst_dataset_t **out,
                           pst_err_t *err)
{
    return load_spec(cfg, path, labels_path, NULL, class_values, n_class_values, true, out, err);
}

int pst_pipeline_load_like(const pst_config_t *cfg, const char *path, const char *labels_path,
                           const pst_dataset_t *like, pst_dataset_t **out, pst_err_t *err)
{
    bool classify = like->task == PST_TASK_CLASSIFICATION;
    return load_spec(cfg, path, labels_path, like, classify ? like->class_values : NULL,
                     classify ? like->n_classes : 0, true, out, err);
}

static int take(const pst_dataset_t *all, const size_t *idx, size_t n, pst_dataset_t **out,
                pst_err_t *err)
{
    *out = pst_dataset_take_rows(all, idx, n);
    return *out ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory splitting the data");
}

static int split_parts(pst_pipeline_t *p, const pst_config_t *cfg, pst_dataset_t *all,
                       pst_err_t *err)
{
    pst_split_t s;
    bool stratify = cfg->data.stratify && all->task == PST_TASK_CLASSIFICATION;
    int rc =
        cfg->data.test[0]
            ? pst_split_two(all, cfg->data.val_fraction, stratify, (uint64_t)cfg->seed, &s, err)
            : pst_split_three(all, cfg->data.train_fraction, cfg->data.val_fraction,
                              cfg->data.test_fraction, stratify, (uint64_t)cfg->seed, &s, err);
    if (rc != PST_OK)
        return rc;
    if ((rc = take(all, s.train, s.n_train, &p->train, err)) == PST_OK &&
        (rc = take(all, s.val, s.n_val, &p->val, err)) == PST_OK && !cfg->data.test[0])
        rc = take(all, s.test, s.n_test, &p->test, err);
    pst_split_fini(&s);
    if (rc == PST_OK && p->train->n_rows == 0)
        rc = pst_err_set(err, PST_EINVAL, "%s: no rows left for training after the split",
                         cfg->data.train);
    return rc;
}

static int load_test(pst_pipeline_t *p, const pst_config_t *cfg, const pst_dataset_t *all,
                     pst_err_t *err)
{
    int rc = pst_pipeline_load_like(cfg, cfg->data.test, cfg->data.test_labels, all, &p->test, err);
    if (rc != PST_OK)
        return rc;
    if ((rc = pst_dataset_densify(p->test, all->n_features, err)) != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", cfg->data.test);
    if (p->test->n_features != all->n_features)
        return pst_err_set(err, PST_EFORMAT, "%s has %zu features but %s has %zu", cfg->data.test,
                           p->test->n_features, cfg->data.train, all->n_features);
    return PST_OK;
}

static int fit_and_apply(pst_pipeline_t *p, const pst_config_t *cfg, pst_err_t *err)
{
    bool images = strcmp(p->format, "idx") == 0;
    pst_preproc_opts_t opts = {PST_SCALER_STANDARD, PST_IMPUTE_MEAN, images};
    const char *s = cfg->data.scaler;
    if (strcmp(s, "none") == 0 || (strcmp(s, "auto") == 0 && images))
        opts.scaler = PST_SCALER_NONE;
    else if (strcmp(s, "minmax") == 0)
        opts.scaler = PST_SCALER_MINMAX;
    if (strcmp(cfg->data.impute, "median") == 0)
        opts.impute = PST_IMPUTE_MEDIAN;
    else if (strcmp(cfg->data.impute, "most_frequent") == 0)
        opts.impute = PST_IMPUTE_MOST_FREQUENT;
    pst_dataset_t *parts[3] = {p->train, p->val, p->test};
    int rc = PST_OK;
    /* Raw columns, before encoding and scaling: what new data will be compared with. */
    double t0 = pst_clock_seconds();
    if (cfg->drift.profile &&
        (rc = pst_drift_profile_fit_features(p->train, &p->drift, err)) == PST_OK)
        rc = pst_drift_profile_fit_labels(p->drift, p->train, err);
    if (p->drift)
        pst_debug("drift profile of %zu inputs over %zu rows in %.3fs", p->drift->n_features,
                  p->train->n_rows, pst_clock_seconds() - t0);
    if (rc == PST_OK)
        rc = pst_tabular_encode(cfg, parts, 3, NULL, 0, &p->encoder, err);
    if (rc == PST_OK)
        rc = pst_preproc_fit(p->train, &opts, &p->preproc, err);
    const char *names[3] = {"training", "validation", "test"};
    for (int i = 0; i < 3 && rc == PST_OK; i++) {
        if ((rc = pst_preproc_apply(p->preproc, parts[i], err)) == PST_OK)
            rc = pst_preproc_check_finite(parts[i], err);
        if (rc != PST_OK)
            pst_err_prefix(err, rc, "%s data after preprocessing: ", names[i]);
    }
    return rc;
}

int pst_pipeline_load(pst_pipeline_t *p, const pst_config_t *cfg, pst_err_t *err)
{
    memset(p, 0, sizeof *p);
    pst_data_spec_t spec = {.path = cfg->data.train,
                            .format = strcmp(cfg->data.format, "auto") ? cfg->data.format : NULL};
    int rc = pst_data_infer_format(&spec, &p->format, err);
    pst_dataset_t *all = NULL;
    if (rc == PST_OK)
        rc = pst_pipeline_load_file(cfg, cfg->data.train, cfg->data.train_labels, NULL, 0, &all,
                                    err);
    if (rc == PST_OK && (rc = pst_dataset_densify(all, 0, err)) != PST_OK)
        pst_err_prefix(err, rc, "%s: ", cfg->data.train);
    if (rc == PST_OK && cfg->data.test[0])
        rc = load_test(p, cfg, all, err);
    if (rc == PST_OK) /* a time series keeps its order: see app/seqsplit.h */
        rc = cfg->data.window > 0 ? pst_seqsplit(p, cfg, all, err) : split_parts(p, cfg, all, err);
    if (rc == PST_OK && !p->test && !(p->test = pst_dataset_take_rows(all, NULL, 0)))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK && cfg->data.drop_duplicates)
        rc = pst_preproc_drop_duplicates(p->train, &p->n_duplicates, err);
    if (rc == PST_OK)
        rc = fit_and_apply(p, cfg, err);
    pst_dataset_destroy(&all);
    if (rc != PST_OK)
        pst_pipeline_fini(p);
    return rc;
}

void pst_pipeline_fini(pst_pipeline_t *p)
{
    pst_dataset_destroy(&p->train);
    pst_dataset_destroy(&p->val);
    pst_dataset_destroy(&p->test);
    pst_preproc_destroy(&p->preproc);
    pst_encoder_destroy(&p->encoder);
    pst_drift_profile_destroy(&p->drift);
}

int pst_pipeline_load_for(const pst_config_t *cfg, const char *path, const char *labels_path,
                          const pst_modelfile_t *mf, bool need_target, pst_dataset_t **out,
                          pst_err_t *err)
{
    bool classify = mf->task == PST_TASK_CLASSIFICATION;
    const pst_encoder_t *e = mf->encoder;
    if (e == NULL && cfg->data.window > 0) { /* trained on windows: scores windows */
        int rc = load_spec(cfg, path, labels_path, NULL, classify ? mf->class_values : NULL,
                           classify ? mf->n_classes : 0, true, out, err);
        if (rc == PST_OK && (rc = pst_dataset_densify(*out, 0, err)) != PST_OK)
            pst_err_prefix(err, rc, "%s: ", path);
        return rc == PST_OK ? pst_seqsplit_whole(cfg, out, path, !need_target, err) : rc;
    }
    if (e == NULL)
        return load_spec(cfg, path, labels_path, NULL, classify ? mf->class_values : NULL,
                         classify ? mf->n_classes : 0, need_target, out, err);
    /* A stand-in for the training data: the model's classes and its inputs' names and types. */
    pst_dataset_t like = {.task = mf->task,
                          .n_classes = mf->n_classes,
                          .class_values = mf->class_values,
                          .class_names = mf->class_names};
    if ((like.table = pst_table_new(e->n_inputs)) == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t j = 0; j < e->n_inputs; j++) {
        like.table->cols[j].name = e->inputs[j].name; /* borrowed: cleared below */
        like.table->cols[j].type = e->inputs[j].type;
    }
    int rc = load_spec(cfg, path, labels_path, &like, classify ? like.class_values : NULL,
                       classify ? like.n_classes : 0, need_target, out, err);
    for (size_t j = 0; j < e->n_inputs; j++)
        like.table->cols[j].name = NULL;
    pst_table_unref(&like.table);
    return rc;
}
