/* Sparse model files applied to data: rows streamed through the file's hashing in chunks, scored
 * by worker/model/sparsescore, then metrics, predictions or a description. */
#include "app/sparse/sparse_score.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/rundir.h"
#include "common/atomicfile.h"
#include "common/data/sparsestream.h"
#include "common/net/codec.h"
#include "worker/model/modelspec.h"
#include "worker/model/sparsefile.h"
#include "worker/model/sparsescore.h"

/* Receives each scored chunk: prob and labels 0/1 (n rows each), in input order. */
typedef int (*chunk_sink_t)(void *ctx, const float *prob, const float *y, size_t n, pst_err_t *err);

/* Labels of a streamed chunk as 0/1 (0/1 or -1/+1 in the file, as training read them). */
static int click_labels(const pst_sparse_stream_batch_t *sb, const char *data, float *y,
                        pst_err_t *err)
{
    for (size_t i = 0; i < sb->n_rows; i++) {
        float v = sb->y[i];
        if (v != 0.0f && v != 1.0f && v != -1.0f)
            return pst_err_set(err, PST_EFORMAT,
                               "%s: data row %llu: a sparse model scores click labels 0/1 (or "
                               "-1/+1), not %g",
                               data, (unsigned long long)sb->row_id[i] + 1, (double)v);
        y[i] = v > 0.0f ? 1.0f : 0.0f;
    }
    return PST_OK;
}

/* Streams data in chunks of PST_SPARSE_SCORE_ROWS, scores each and hands it to sink. */
static int score_stream(const pst_sparsefile_t *sf, const char *data, chunk_sink_t sink, void *ctx,
                        pst_err_t *err)
{
    pst_sparse_source_t src = {.path = data, .format = sf->format, .hash = sf->hash};
    pst_sparse_stream_opts_t opts = {.batch_rows = PST_SPARSE_SCORE_ROWS};
    pst_sparse_stream_t *stream = NULL;
    pst_sparse_scorer_t *scorer = pst_sparse_scorer_new(sf, err);
    float *prob = malloc(PST_SPARSE_SCORE_ROWS * sizeof *prob);
    float *y = malloc(PST_SPARSE_SCORE_ROWS * sizeof *y);
    int rc = scorer == NULL ? pst_err_code(err, PST_ENOMEM) : PST_OK;
    if (rc == PST_OK && (prob == NULL || y == NULL))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        rc = pst_sparse_stream_open(&src, &opts, &stream, err);
    for (const pst_sparse_stream_batch_t *sb = NULL; rc == PST_OK;) {
        if ((rc = pst_sparse_stream_next(stream, &sb, err)) != PST_OK || sb->n_rows == 0)
            break;
        pst_sparse_batch_t b = {
            .n_rows = sb->n_rows, .row_ptr = sb->row_ptr, .col32 = sb->col_idx, .val = sb->val};
        if ((rc = click_labels(sb, data, y, err)) == PST_OK &&
            (rc = pst_sparse_scorer_predict(scorer, &b, prob, err)) == PST_OK)
            rc = sink(ctx, prob, y, sb->n_rows, err);
    }
    pst_sparse_stream_destroy(&stream);
    pst_sparse_scorer_destroy(&scorer);
    free(prob);
    free(y);
    return rc;
}

/* ---- eval ---- */

typedef struct collected {
    float *prob, *y; // (cap)
    size_t n, cap;
} collected_t;

static int collect(void *ctx, const float *prob, const float *y, size_t n, pst_err_t *err)
{
    collected_t *c = ctx;
    if (c->n + n > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        while (cap < c->n + n)
            cap *= 2;
        float *p = realloc(c->prob, cap * sizeof *p);
        if (p != NULL)
            c->prob = p;
        float *l = realloc(c->y, cap * sizeof *l);
        if (l != NULL)
            c->y = l;
        if (p == NULL || l == NULL)
            return pst_err_set(err, PST_ENOMEM, "out of memory scoring %zu rows", c->n + n);
        c->cap = cap;
    }
    memcpy(c->prob + c->n, prob, n * sizeof *prob);
    memcpy(c->y + c->n, y, n * sizeof *y);
    c->n += n;
    return PST_OK;
}

int pst_sparse_score_metrics(const char *path, const char *data, pst_binary_metrics_t *m,
                             pst_err_t *err)
{
    pst_binary_metrics_none(m);
    pst_sparsefile_t sf;
    int rc = pst_sparsefile_load(&sf, path, err);
    if (rc != PST_OK)
        return rc;
    collected_t c = {0};
    rc = score_stream(&sf, data, collect, &c, err);
    if (rc == PST_OK && c.n == 0)
        rc = pst_err_set(err, PST_EFORMAT, "%s: no rows to score", data);
    if (rc == PST_OK)
        pst_binary_metrics_compute(m, c.prob, c.y, c.n);
    free(c.prob);
    free(c.y);
    pst_sparsefile_fini(&sf);
    return rc;
}

int pst_sparse_score_eval(const char *path, const char *data, const char *json, pst_err_t *err)
{
    pst_binary_metrics_t m;
    int rc = pst_sparse_score_metrics(path, data, &m, err);
    if (rc != PST_OK)
        return rc;
    printf("rows %zu  roc_auc %.6f  log_loss %.6f  mean_pred %.4f  observed %.4f\n", m.n, m.roc_auc,
           m.log_loss, m.mean_pred, m.observed);
    if (json == NULL)
        return PST_OK;
    cJSON *doc = cJSON_CreateObject();
    pst_json_add_number(doc, "n", (double)m.n);
    pst_json_add_number(doc, "log_loss", m.log_loss);
    pst_json_add_number(doc, "roc_auc", m.roc_auc);
    cJSON *cal = cJSON_AddObjectToObject(doc, "calibration");
    pst_json_add_number(cal, "mean_pred", m.mean_pred);
    pst_json_add_number(cal, "observed", m.observed);
    char *text = cJSON_Print(doc);
    rc = text ? pst_write_file_atomic(json, text, strlen(text), err)
              : pst_err_set(err, PST_ENOMEM, "out of memory");
    free(text);
    cJSON_Delete(doc);
    return rc;
}

/* ---- predict ---- */

typedef struct printed {
    pst_atomic_writer_t *w; /* or NULL: stdout */
} printed_t;

static int print_chunk(void *ctx, const float *prob, const float *y, size_t n, pst_err_t *err)
{
    (void)y;
    printed_t *p = ctx;
    for (size_t i = 0; i < n; i++) {
        char line[32];
        int len = snprintf(line, sizeof line, "%.9g\n", (double)prob[i]);
        if (p->w == NULL) {
            if (fwrite(line, 1, (size_t)len, stdout) != (size_t)len)
                return pst_err_set(err, PST_EIO, "standard output: write failed");
            continue;
        }
        int rc = pst_atomic_writer_write(p->w, line, (size_t)len, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

int pst_sparse_score_predict(const char *path, const char *data, const char *out, pst_err_t *err)
{
    pst_sparsefile_t sf;
    int rc = pst_sparsefile_load(&sf, path, err);
    if (rc != PST_OK)
        return rc;
    printed_t p = {0};
    if (out != NULL)
        rc = pst_atomic_writer_open(out, 0, &p.w, err);
    if (rc == PST_OK)
        rc = score_stream(&sf, data, print_chunk, &p, err);
    if (rc == PST_OK && p.w != NULL)
        rc = pst_atomic_writer_commit(&p.w, err);
    if (rc == PST_OK && out == NULL && fflush(stdout) != 0)
        rc = pst_err_set(err, PST_EIO, "standard output: write failed");
    pst_atomic_writer_destroy(&p.w);
    pst_sparsefile_fini(&sf);
    return rc;
}

/* ---- info ---- */

static void print_input(const pst_sparsefile_t *sf)
{
    if (sf->format == PST_SPARSE_LIBSVM) {
        printf("input: libsvm (keys are the feature ids)\n");
        return;
    }
    const pst_hash_spec_t *h = &sf->hash;
    static const char *const modes[] = {"value", "bucket", "log"};
    printf("input: criteo tsv, %zu numeric + %zu categorical columns, 2^%d buckets%s, seed %llu, "
           "numeric %s\n",
           h->n_numeric, h->n_categorical, h->bits, h->field_keys ? " per column" : "",
           (unsigned long long)h->seed, modes[h->numeric]);
}

static void print_deep(const pst_sparsefile_t *sf)
{
    const pst_wide_deep_spec_t *wd = &sf->wd;
    printf("fields: %u (%u raw), embedding_dim %u, pooling %s\nhidden:", wd->n_fields, wd->n_raw,
           wd->dim, wd->pooling == PST_WD_POOL_MEAN ? "mean" : "sum");
    for (int i = 0; i < wd->n_hidden; i++) {
        char text[64];
        printf(" %s", pst_layer_spec_format(&wd->hidden[i], text, sizeof text));
    }
    printf("%s\ndeep parameters: %zu\n", wd->n_hidden ? "" : " none", sf->n_dense);
}

int pst_sparse_score_info(const char *path, bool params, pst_err_t *err)
{
    pst_sparsefile_t sf;
    int rc = pst_sparsefile_load(&sf, path, err);
    if (rc != PST_OK)
        return rc;
    struct stat st;
    uint32_t w = pst_sparse_row_width(&sf.spec);
    printf("model: %s (sparse)\ntask: classification (click probability)\n",
           pst_sparsefile_type_name(sf.type));
    print_input(&sf);
    printf("row width: %u\nnonzero rows: %zu\n", w, sf.n_rows);
    if (sf.type == PST_SPARSEFILE_WIDE_DEEP)
        print_deep(&sf);
    else
        printf("bias: %.9g\n", (double)sf.bias);
    printf("parameters: %zu\n",
           sf.n_rows * w + (sf.type == PST_SPARSEFILE_WIDE_DEEP ? sf.n_dense : 1));
    if (stat(path, &st) == 0)
        printf("file size: %lld bytes\n", (long long)st.st_size);
    printf("checksum: %08x\n", pst_checksum(sf.rows, sf.n_rows * w * sizeof(float)));
    for (size_t i = 0; params && i < sf.n_rows; i++) {
        printf("%llu", (unsigned long long)sf.keys[i]);
        for (uint32_t j = 0; j < w; j++)
            printf(" %.9g", (double)sf.rows[i * w + j]);
        printf("\n");
    }
    for (size_t i = 0; params && i < sf.n_dense; i++)
        printf("%.9g\n", (double)sf.dense[i]);
    pst_sparsefile_fini(&sf);
    return PST_OK;
}
