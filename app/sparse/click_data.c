/* Click data of a sparse run: LIBSVM or hashed TSV files read into CSR with labels 0/1, split
 * as a dense run splits them, or data.train streamed through a shuffle buffer. */
#include "app/sparse/click_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataload.h"
#include "common/log.h"
#include "common/sample/split.h"

void pst_click_data_fini(pst_click_data_t *d)
{
    pst_sparse_stream_destroy(&d->stream);
    pst_dataset_destroy(&d->train);
    pst_dataset_destroy(&d->val);
    pst_dataset_destroy(&d->test);
}

/* Labels 0/1 (or -1/+1) become y in {0, 1}; anything else is an error naming the labels. */
static int to_clicks(pst_dataset_t *d, const char *path, const char *type, pst_err_t *err)
{
    bool zero_one = true, plus_minus = true;
    for (int c = 0; c < d->n_classes; c++) {
        double v = d->class_values[c];
        zero_one = zero_one && (v == 0.0 || v == 1.0);
        plus_minus = plus_minus && (v == -1.0 || v == 1.0);
    }
    if (d->task != PST_TASK_CLASSIFICATION || d->class_values == NULL ||
        !(zero_one || plus_minus)) {
        char seen[160] = "";
        for (int c = 0; c < d->n_classes && c < 6 && d->class_values; c++)
            snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%g", c ? ", " : "",
                     d->class_values[c]);
        return pst_err_set(err, PST_EFORMAT,
                           "%s: model.type %s needs click labels 0/1 (or -1/+1), but the file "
                           "has %d distinct labels: %s%s",
                           path, type, d->n_classes, seen, d->n_classes > 6 ? ", ..." : "");
    }
    for (size_t i = 0; i < d->n_rows; i++)
        d->y[i] = d->class_values[(size_t)d->y[i]] > 0.0 ? 1.0f : 0.0f;
    double *binary = realloc(d->class_values, 2 * sizeof *binary);
    if (binary == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    binary[0] = 0.0;
    binary[1] = 1.0;
    d->class_values = binary;
    d->n_classes = 2;
    return PST_OK;
}

/* The reader of path: hashed TSV (job->hash) or LIBSVM. */
static pst_sparse_source_t click_source(const pst_sparse_job_t *job, const char *path)
{
    return (pst_sparse_source_t){.path = path,
                                 .format = job->tsv ? PST_SPARSE_TSV_HASHED : PST_SPARSE_LIBSVM,
                                 .hash = job->hash};
}

/* *from_cache (may be NULL): whether the read used a valid FILE.pstcache. */
static int load_click_file(const pst_config_t *cfg, const pst_sparse_job_t *job, const char *path,
                           pst_dataset_t **out, bool *from_cache, pst_err_t *err)
{
    pst_data_spec_t spec = {.path = path,
                            .format = strcmp(cfg->data.format, "auto") ? cfg->data.format : NULL,
                            .task = PST_DATA_TASK_CLASSIFICATION,
                            .read_threads = (unsigned)cfg->data.read_threads};
    const char *format = "libsvm";
    int rc = job->tsv ? PST_OK : pst_data_infer_format(&spec, &format, err);
    if (rc == PST_OK && strcmp(format, "libsvm") != 0)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: model.type %s reads LIBSVM data (\"label index:value ...\"), but "
                           "this file reads as %s",
                           path, cfg->model.type, format);
    pst_sparse_source_t src = click_source(job, path);
    pst_err_t scratch = {0};
    if (from_cache != NULL)
        *from_cache = cfg->data.cache && pst_sparse_cache_check(&src, &scratch) == PST_OK;
    if (rc == PST_OK)
        rc = pst_sparse_load(&src, cfg->data.cache, &spec, out, err);
    if (rc == PST_OK && (rc = to_clicks(*out, path, cfg->model.type, err)) != PST_OK)
        pst_dataset_destroy(out);
    return rc;
}

int pst_click_data_take(const pst_dataset_t *all, const size_t *idx, size_t n, pst_dataset_t **out,
                        pst_err_t *err)
{
    *out = pst_dataset_take_rows(all, idx, n);
    return *out ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory splitting the data");
}

/* data.train split as a dense run splits it: 70/20/10 (the data.*_fraction keys), or with
 * data.test a validation share carved from data.train. */
int pst_click_data_load(const pst_config_t *cfg, const pst_sparse_job_t *job, pst_click_data_t *d,
                        pst_err_t *err)
{
    memset(d, 0, sizeof *d);
    pst_dataset_t *all = NULL;
    pst_split_t s = {0};
    bool has_test = cfg->data.test[0] != '\0';
    int rc = load_click_file(cfg, job, cfg->data.train, &all, &d->from_cache, err);
    if (rc == PST_OK && has_test)
        rc = load_click_file(cfg, job, cfg->data.test, &d->test, NULL, err);
    if (rc == PST_OK)
        rc = has_test ? pst_split_two(all, cfg->data.val_fraction, cfg->data.stratify,
                                      (uint64_t)cfg->seed, &s, err)
                      : pst_split_three(all, cfg->data.train_fraction, cfg->data.val_fraction,
                                        cfg->data.test_fraction, cfg->data.stratify,
                                        (uint64_t)cfg->seed, &s, err);
    if (rc == PST_OK &&
        (rc = pst_click_data_take(all, s.train, s.n_train, &d->train, err)) == PST_OK &&
        (rc = pst_click_data_take(all, s.val, s.n_val, &d->val, err)) == PST_OK && !has_test)
        rc = pst_click_data_take(all, s.test, s.n_test, &d->test, err);
    pst_split_fini(&s);
    pst_dataset_destroy(&all);
    if (rc == PST_OK && d->train->n_rows == 0)
        rc = pst_err_set(err, PST_EINVAL, "%s: no rows left for training after the split",
                         cfg->data.train);
    if (rc != PST_OK)
        pst_click_data_fini(d);
    return rc;
}

/* Streamed data.train (data.buffer_rows > 0): the rows stay in the file and pass through the
 * shuffle buffer every epoch. No validation share is carved (that would hold rows in memory);
 * train and val are empty sets, test is data.test. */
int pst_click_data_open_stream(const pst_config_t *cfg, const pst_sparse_job_t *job,
                               pst_click_data_t *d, pst_err_t *err)
{
    memset(d, 0, sizeof *d);
    if (cfg->data.test[0] == '\0')
        return pst_err_set(err, PST_EINVAL,
                           "data.buffer_rows %ld streams data.train, which needs data.test: the "
                           "70/20/10 split of one file needs all its rows in memory",
                           cfg->data.buffer_rows);
    if (cfg->data.format[0] != '\0' && strcmp(cfg->data.format, "auto") != 0 &&
        strcmp(cfg->data.format, "libsvm") != 0 && !job->tsv)
        return pst_err_set(err, PST_EINVAL,
                           "data.buffer_rows streams LIBSVM or criteo files, not %s",
                           cfg->data.format);
    if (cfg->data.val_fraction > 0)
        pst_warn("data.buffer_rows: data.val_fraction is not used (no validation rows are carved "
                 "from a streamed data.train)");
    int rc = load_click_file(cfg, job, cfg->data.test, &d->test, NULL, err);
    pst_sparse_source_t src = click_source(job, cfg->data.train);
    pst_sparse_stream_opts_t opts = {.batch_rows = job->batch,
                                     .buffer_rows = (size_t)cfg->data.buffer_rows,
                                     .seed = job->shuffle_seed,
                                     .use_cache = cfg->data.cache};
    if (rc == PST_OK)
        rc = pst_sparse_stream_open(&src, &opts, &d->stream, err);
    if (rc == PST_OK && ((d->train = pst_dataset_take_rows(d->test, NULL, 0)) == NULL ||
                         (d->val = pst_dataset_take_rows(d->test, NULL, 0)) == NULL))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK) {
        pst_sparse_stream_stats_t st;
        pst_sparse_stream_stats(d->stream, &st);
        d->from_cache = st.from_cache;
    }
    if (rc != PST_OK)
        pst_click_data_fini(d);
    return rc;
}

size_t pst_click_data_nnz(const pst_dataset_t *d)
{
    return d->n_rows > 0 && d->row_ptr ? d->row_ptr[d->n_rows] - d->row_ptr[0] : 0;
}
