/* Encoder fitting on training rows of a raw (typed CSV) dataset, and its application to one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/encoder.h"
#include "common/data/table.h"

#define ROW(rows, i) ((rows) ? (rows)[i] : (i))

typedef struct value_count {
    const char *text;
    size_t count;
} value_count_t;

static int by_count_then_text(const void *a, const void *b)
{
    const value_count_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->text, y->text);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Categorical input j: the values of the training rows, counted; the kind and vocabulary. */
static int fit_category(const pst_dataset_t *raw, size_t j, const size_t *rows, size_t n,
                        const pst_encoder_opts_t *o, pst_enc_input_t *in)
{
    const pst_table_col_t *col = &raw->table->cols[j];
    value_count_t *vc = calloc(col->n_vocab ? col->n_vocab : 1, sizeof *vc);
    if (vc == NULL)
        return PST_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        float code = raw->x[ROW(rows, i) * raw->n_features + j];
        vc[(size_t)code].count++;
    }
    size_t seen = 0;
    for (size_t k = 0; k < col->n_vocab; k++)
        if (vc[k].count > 0)
            vc[seen++] = (value_count_t){col->vocab[k], vc[k].count};
    in->kind = seen <= o->max_categories ? PST_ENC_ONEHOT : o->beyond;
    in->n_slots = in->kind == PST_ENC_HASH ? o->hash_slots : 0;
    size_t keep = in->kind == PST_ENC_HASH      ? 0
                  : in->kind == PST_ENC_ORDINAL ? seen
                  : seen < o->max_categories    ? seen
                                                : o->max_categories;
    qsort(vc, seen, sizeof *vc, by_count_then_text);
    in->vocab = calloc(keep ? keep : 1, sizeof *in->vocab);
    int rc = in->vocab ? PST_OK : PST_ENOMEM;
    for (size_t k = 0; rc == PST_OK && k < keep; k++, in->n_vocab++)
        if ((in->vocab[k] = strdup(vc[k].text)) == NULL)
            rc = PST_ENOMEM;
    if (rc == PST_OK)
        qsort(in->vocab, in->n_vocab, sizeof *in->vocab, by_text);
    free(vc);
    return rc;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Linear-interpolated quantile q of sorted v[0..n) (numpy's default). */
static double quantile(const float *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    double frac = pos - (double)lo;
    return lo + 1 < n ? v[lo] + frac * ((double)v[lo + 1] - v[lo]) : v[lo];
}

/* Numeric input j: Tukey fences or mean +- z * std of the training rows' non-missing values. */
static int fit_clip(const pst_dataset_t *raw, size_t j, const size_t *rows, size_t n,
                    const pst_encoder_opts_t *o, pst_enc_input_t *in)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL)
        return PST_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        float x = raw->x[ROW(rows, i) * raw->n_features + j];
        if (!isnan(x))
            v[m++] = x;
    }
    if (m > 0 && o->outliers == PST_OUTLIERS_CLIP_IQR) {
        double t = o->outlier_threshold > 0 ? o->outlier_threshold : 1.5;
        qsort(v, m, sizeof *v, cmp_float);
        double q1 = quantile(v, m, 0.25), q3 = quantile(v, m, 0.75);
        in->clip_lo = (float)(q1 - t * (q3 - q1));
        in->clip_hi = (float)(q3 + t * (q3 - q1));
    } else if (m > 0) {
        double t = o->outlier_threshold > 0 ? o->outlier_threshold : 3.0, sum = 0, sq = 0;
        for (size_t i = 0; i < m; i++)
            sum += v[i];
        double mean = sum / (double)m;
        for (size_t i = 0; i < m; i++)
            sq += (v[i] - mean) * (v[i] - mean);
        double sd = sqrt(sq / (double)m);
        in->clip_lo = (float)(mean - t * sd);
        in->clip_hi = (float)(mean + t * sd);
    }
    free(v);
    return PST_OK;
}

int pst_encoder_fit(const pst_dataset_t *raw, const size_t *rows, size_t n,
                    const pst_encoder_opts_t *opts, pst_encoder_t **out, pst_err_t *err)
{
    *out = NULL;
    if (raw->table == NULL || raw->x == NULL)
        return pst_err_set(err, PST_EINVAL, "encoder: the data has no typed columns");
    pst_encoder_t *e = pst_encoder_new(raw->table->n_cols);
    int rc = e ? PST_OK : PST_ENOMEM;
    if (e)
        e->hash_seed = opts->hash_seed;
    for (size_t j = 0; rc == PST_OK && j < raw->table->n_cols; j++) {
        const pst_table_col_t *col = &raw->table->cols[j];
        pst_enc_input_t *in = &e->inputs[j];
        in->type = col->type;
        if ((in->name = strdup(col->name)) == NULL)
            rc = PST_ENOMEM;
        else if (col->type == PST_COL_CATEGORICAL)
            rc = fit_category(raw, j, rows, n, opts, in);
        else if (col->type == PST_COL_DATE)
            in->kind = PST_ENC_DATE;
        else if (col->type == PST_COL_NUMERIC && opts->outliers != PST_OUTLIERS_NONE)
            rc = fit_clip(raw, j, rows, n, opts, in);
    }
    if (rc != PST_OK) {
        pst_encoder_destroy(&e);
        return pst_err_set(err, rc, "encoder: out of memory");
    }
    pst_encoder_layout(e);
    *out = e;
    return PST_OK;
}

/* Per raw code of a categorical table column: its features as a feature index (ONEHOT, HASH)
 * or its ORDINAL value. */
static long *category_map(const pst_encoder_t *e, const pst_enc_input_t *in,
                          const pst_table_col_t *col)
{
    long *map = malloc((col->n_vocab ? col->n_vocab : 1) * sizeof *map);
    for (size_t c = 0; map && c < col->n_vocab; c++) {
        const char *text = col->vocab[c];
        if (in->kind == PST_ENC_HASH) {
            map[c] = (long)pst_encoder_hash_slot(e, in, text, strlen(text));
        } else {
            long k = pst_encoder_vocab_index(in, text);
            map[c] = in->kind == PST_ENC_ORDINAL ? k + 1 : k >= 0 ? k : (long)in->n_vocab;
        }
    }
    return map;
}

static int type_mismatch(const pst_enc_input_t *in, const pst_table_col_t *col, pst_err_t *err)
{
    return pst_err_set(err, PST_EFORMAT,
                       "column '%s' is %s in the training data but reads as %s here; name it in "
                       "data.categorical or data.as_numeric",
                       in->name, pst_col_type_name(in->type), pst_col_type_name(col->type));
}

/* Writes input in's features for every row from raw column j. */
static int apply_input(const pst_encoder_t *e, const pst_enc_input_t *in, const pst_dataset_t *raw,
                       size_t j, float *x, pst_err_t *err)
{
    const pst_table_col_t *col = &raw->table->cols[j];
    bool categorical = in->type == PST_COL_CATEGORICAL;
    if (categorical != (col->type == PST_COL_CATEGORICAL) ||
        (in->type == PST_COL_DATE) != (col->type == PST_COL_DATE))
        return type_mismatch(in, col, err);
    long *map = categorical ? category_map(e, in, col) : NULL;
    if (categorical && map == NULL)
        return pst_err_set(err, PST_ENOMEM, "encoder: out of memory");
    for (size_t i = 0; i < raw->n_rows; i++) {
        float v = raw->x[i * raw->n_features + j], *f = x + i * e->n_features + in->offset;
        if (in->kind == PST_ENC_DATE) {
            pst_date_expand(v, f);
        } else if (in->kind == PST_ENC_VALUE) {
            f[0] = v < in->clip_lo ? in->clip_lo : v > in->clip_hi ? in->clip_hi : v;
        } else if (in->kind == PST_ENC_ORDINAL) {
            f[0] = (float)map[(size_t)v];
        } else {
            memset(f, 0, in->width * sizeof *f);
            f[map[(size_t)v]] = 1.0f;
        }
    }
    free(map);
    return PST_OK;
}

static int name_features(const pst_encoder_t *e, pst_dataset_t *d)
{
    if ((d->feature_names = calloc(e->n_features ? e->n_features : 1, sizeof(char *))) == NULL)
        return PST_ENOMEM;
    for (size_t f = 0; f < e->n_features; f++) {
        char name[512];
        pst_encoder_feature_name(e, f, name, sizeof name);
        if ((d->feature_names[f] = strdup(name)) == NULL)
            return PST_ENOMEM;
    }
    return PST_OK;
}

int pst_encoder_apply(const pst_encoder_t *e, const pst_dataset_t *raw, pst_dataset_t **out,
                      pst_err_t *err)
{
    *out = NULL;
    if (raw->table == NULL)
        return pst_err_set(err, PST_EINVAL, "encoder: the data has no typed columns");
    size_t none = 0;
    pst_dataset_t *d = pst_dataset_take_rows(raw, &none, 0);
    pst_dataset_t *sized = d ? pst_dataset_new(raw->n_rows, e->n_features, raw->task) : NULL;
    int rc = sized ? PST_OK : pst_err_set(err, PST_ENOMEM, "encoder: out of memory");
    if (rc == PST_OK) {
        /* the metadata of d (classes, names) over the rows and width of sized */
        free(d->x);
        free(d->y);
        d->x = sized->x;
        d->y = sized->y;
        sized->x = sized->y = NULL;
        d->n_rows = raw->n_rows;
        memcpy(d->y, raw->y, raw->n_rows * sizeof *d->y);
        for (size_t k = 0; k < d->n_features && d->feature_names; k++)
            free(d->feature_names[k]);
        free(d->feature_names);
        d->feature_names = NULL;
        d->n_features = e->n_features;
        pst_table_unref(&d->table);
    }
    pst_dataset_destroy(&sized);
    for (size_t j = 0; rc == PST_OK && j < e->n_inputs; j++) {
        long at = -1;
        for (size_t k = 0; k < raw->table->n_cols && at < 0; k++)
            if (strcmp(raw->table->cols[k].name, e->inputs[j].name) == 0)
                at = (long)k;
        rc = at < 0 ? pst_err_set(err, PST_ENOTFOUND, "column '%s' of the model is missing",
                                  e->inputs[j].name)
                    : apply_input(e, &e->inputs[j], raw, (size_t)at, d->x, err);
    }
    if (rc == PST_OK && name_features(e, d) != PST_OK)
        rc = pst_err_set(err, PST_ENOMEM, "encoder: out of memory");
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}
