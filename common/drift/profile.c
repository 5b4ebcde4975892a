/* Drift profiles: quantile bins of numeric values, counts of the most frequent categories. */
#include "common/drift/profile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *pst_drift_kind_name(pst_drift_kind_t kind)
{
    return kind == PST_DRIFT_CATEGORICAL ? "categorical" : "numeric";
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Edges at the k/PST_DRIFT_BINS quantiles of the sorted sample, duplicates (ties) merged. */
static size_t quantile_edges(const float *s, size_t m, double *edges)
{
    size_t n_edges = 0;
    for (size_t k = 1; m > 0 && k < PST_DRIFT_BINS; k++) {
        size_t at = (k * m + PST_DRIFT_BINS - 1) / PST_DRIFT_BINS;
        double e = s[at > 0 ? at - 1 : 0];
        if (n_edges == 0 || e > edges[n_edges - 1])
            edges[n_edges++] = e;
    }
    return n_edges;
}

int pst_drift_dist_init_numeric(pst_drift_dist_t *d, const char *name, float *sample, size_t m,
                                pst_err_t *err)
{
    memset(d, 0, sizeof *d);
    d->kind = PST_DRIFT_NUMERIC;
    d->min = d->max = NAN;
    d->name = strdup(name);
    d->edges = malloc(PST_DRIFT_BINS * sizeof *d->edges);
    d->counts = calloc(PST_DRIFT_BINS, sizeof *d->counts);
    if (!d->name || !d->edges || !d->counts) {
        pst_drift_dist_fini(d);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    size_t finite = 0;
    for (size_t i = 0; i < m; i++)
        if (isfinite(sample[i]))
            sample[finite++] = sample[i];
    qsort(sample, finite, sizeof *sample, cmp_float);
    d->n_edges = quantile_edges(sample, finite, d->edges);
    d->n_bins = d->n_edges + 1;
    return PST_OK;
}

int pst_drift_dist_init_edges(pst_drift_dist_t *d, const char *name, const double *edges, size_t n,
                              pst_err_t *err)
{
    float none = NAN;
    int rc = pst_drift_dist_init_numeric(d, name, &none, 0, err);
    for (size_t k = 0; rc == PST_OK && k < n && d->n_edges < PST_DRIFT_BINS - 1; k++)
        if (d->n_edges == 0 || edges[k] > d->edges[d->n_edges - 1])
            d->edges[d->n_edges++] = edges[k];
    d->n_bins = d->n_edges + 1;
    return rc;
}

/* Every step-th of values[i * stride], i < n (at most PST_DRIFT_EDGE_SAMPLE). Caller frees. */
static float *edge_sample(const float *values, size_t stride, size_t n, size_t *m)
{
    size_t step =
        n > PST_DRIFT_EDGE_SAMPLE ? (n + PST_DRIFT_EDGE_SAMPLE - 1) / PST_DRIFT_EDGE_SAMPLE : 1;
    float *sample = malloc((n / step + 1) * sizeof *sample);
    *m = 0;
    for (size_t i = 0; sample && i < n; i += step)
        sample[(*m)++] = values[i * stride];
    return sample;
}

int pst_drift_quantiles(const float *values, size_t stride, size_t n, double *q, size_t *n_finite,
                        pst_err_t *err)
{
    size_t m;
    float *sample = edge_sample(values, stride, n, &m);
    if (sample == NULL)
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    size_t finite = 0;
    for (size_t i = 0; i < m; i++)
        if (isfinite(sample[i]))
            sample[finite++] = sample[i];
    qsort(sample, finite, sizeof *sample, cmp_float);
    for (size_t k = 1; finite > 0 && k < PST_DRIFT_BINS; k++) {
        size_t at = (k * finite + PST_DRIFT_BINS - 1) / PST_DRIFT_BINS;
        q[k - 1] = sample[at > 0 ? at - 1 : 0];
    }
    *n_finite = finite;
    free(sample);
    return PST_OK;
}

int pst_drift_dist_fit_numeric(pst_drift_dist_t *d, const char *name, const float *values,
                               size_t stride, size_t n, pst_err_t *err)
{
    size_t m;
    float *sample = edge_sample(values, stride, n, &m);
    if (sample == NULL)
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    int rc = pst_drift_dist_init_numeric(d, name, sample, m, err);
    free(sample);
    for (size_t i = 0; rc == PST_OK && i < n; i++)
        pst_drift_dist_add(d, values[i * stride]);
    return rc;
}

typedef struct ranked {
    const char *value;
    uint64_t count;
} ranked_t;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->value, y->value);
}

int pst_drift_dist_fit_counts(pst_drift_dist_t *d, const char *name, const char *const *values,
                              const uint64_t *counts, size_t n_values, pst_err_t *err)
{
    memset(d, 0, sizeof *d);
    d->kind = PST_DRIFT_CATEGORICAL;
    d->min = d->max = NAN;
    ranked_t *r = malloc((n_values ? n_values : 1) * sizeof *r);
    size_t keep = n_values < PST_DRIFT_MAX_CATEGORIES ? n_values : PST_DRIFT_MAX_CATEGORIES;
    d->name = strdup(name);
    d->categories = calloc(keep ? keep : 1, sizeof *d->categories);
    d->counts = calloc(keep + 1, sizeof *d->counts);
    bool ok = r && d->name && d->categories && d->counts;
    for (size_t i = 0; ok && i < n_values; i++)
        r[i] = (ranked_t){values[i], counts[i]};
    if (ok)
        qsort(r, n_values, sizeof *r, cmp_ranked);
    for (size_t i = 0; ok && i < keep; i++, d->n_categories++) {
        ok = (d->categories[i] = strdup(r[i].value)) != NULL;
        d->counts[i] = r[i].count;
    }
    for (size_t i = keep; ok && i < n_values; i++)
        d->counts[keep] += r[i].count;
    d->n_bins = keep + 1;
    free(r);
    if (!ok) {
        pst_drift_dist_fini(d);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    return PST_OK;
}

size_t pst_drift_dist_bin(const pst_drift_dist_t *d, double v)
{
    size_t lo = 0, hi = d->n_edges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= d->edges[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

size_t pst_drift_dist_category(const pst_drift_dist_t *d, const char *text)
{
    for (size_t k = 0; k < d->n_categories; k++)
        if (strcmp(d->categories[k], text) == 0)
            return k;
    return d->n_categories;
}

uint64_t pst_drift_dist_total(const pst_drift_dist_t *d)
{
    uint64_t total = 0;
    for (size_t k = 0; k < d->n_bins; k++)
        total += d->counts[k];
    return total;
}

int pst_drift_dist_copy(pst_drift_dist_t *dst, const pst_drift_dist_t *src, pst_err_t *err)
{
    *dst = *src;
    dst->name = strdup(src->name);
    dst->edges = malloc((src->n_edges ? src->n_edges : 1) * sizeof *dst->edges);
    dst->counts = malloc((src->n_bins ? src->n_bins : 1) * sizeof *dst->counts);
    dst->categories = calloc(src->n_categories ? src->n_categories : 1, sizeof(char *));
    bool ok = dst->name && dst->edges && dst->counts && dst->categories;
    size_t done = 0;
    for (; ok && done < src->n_categories; done++)
        ok = (dst->categories[done] = strdup(src->categories[done])) != NULL;
    dst->n_categories = done;
    if (!ok) {
        pst_drift_dist_fini(dst);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    if (src->n_edges > 0) /* a categorical distribution has no edges (and may have no array) */
        memcpy(dst->edges, src->edges, src->n_edges * sizeof *dst->edges);
    if (src->n_bins > 0)
        memcpy(dst->counts, src->counts, src->n_bins * sizeof *dst->counts);
    return PST_OK;
}

void pst_drift_dist_fini(pst_drift_dist_t *d)
{
    free(d->name);
    free(d->edges);
    free(d->counts);
    for (size_t k = 0; d->categories && k < d->n_categories; k++)
        free(d->categories[k]);
    free(d->categories);
    memset(d, 0, sizeof *d);
}

void pst_drift_profile_fini(pst_drift_profile_t *p)
{
    for (size_t j = 0; p->features && j < p->n_features; j++)
        pst_drift_dist_fini(&p->features[j]);
    free(p->features);
    pst_drift_dist_fini(&p->prediction);
    pst_drift_dist_fini(&p->label);
    free(p->prediction_rows);
    memset(p, 0, sizeof *p);
}

void pst_drift_profile_destroy(pst_drift_profile_t **self_p)
{
    pst_drift_profile_t *p = self_p ? *self_p : NULL;
    if (p == NULL)
        return;
    pst_drift_profile_fini(p);
    free(p);
    *self_p = NULL;
}

void pst_drift_class_text(const char *const *class_names, const double *class_values, int k,
                          char *buf, size_t cap)
{
    if (class_names)
        snprintf(buf, cap, "%s", class_names[k]);
    else if (class_values)
        snprintf(buf, cap, "%.17g", class_values[k]);
    else
        snprintf(buf, cap, "%d", k);
}
