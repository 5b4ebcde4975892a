/* Drift profiles: bounded summaries of the distributions a model was trained on (its inputs, its
 * predictions and its labels), stored in the model file and compared with new data later.
 *
 * A numeric distribution keeps quantile bin edges of the training values with the exact count of
 * every bin (at most PST_DRIFT_BINS bins, whatever the row count); a categorical one keeps the
 * counts of its PST_DRIFT_MAX_CATEGORIES most frequent values and one "other" count. A model
 * with more than PST_DRIFT_MAX_FEATURES inputs profiles its first PST_DRIFT_MAX_FEATURES; the
 * profile records how many inputs the model has so that a report can say what was left out. */
#ifndef PST_COMMON_DRIFT_PROFILE_H
#define PST_COMMON_DRIFT_PROFILE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"

#define PST_DRIFT_BINS 20
#define PST_DRIFT_MAX_CATEGORIES 32
#define PST_DRIFT_MAX_FEATURES 1024
/* Edges are chosen on at most this many values of a column (an even stride over the rows), and
 * for wide data on fewer, so that the sample of all columns stays within PST_DRIFT_SAMPLE_BUDGET
 * values (but never fewer than PST_DRIFT_EDGE_SAMPLE_MIN rows); counts are exact over all rows. */
#define PST_DRIFT_EDGE_SAMPLE 20000
#define PST_DRIFT_EDGE_SAMPLE_MIN 2000
#define PST_DRIFT_SAMPLE_BUDGET ((size_t)4 << 20)

/* Stored in model files by name ("numeric", "categorical"). */
typedef enum { PST_DRIFT_NUMERIC = 0, PST_DRIFT_CATEGORICAL = 1 } pst_drift_kind_t;

typedef struct pst_drift_dist {
    char *name;
    pst_drift_kind_t kind;
    double *edges; // (n_edges) numeric: strictly ascending; bin k is (edges[k-1], edges[k]]
    size_t n_edges;
    uint64_t *counts; // (n_bins) numeric: n_edges + 1; categorical: n_categories + 1 ("other")
    size_t n_bins;
    char **categories; // (n_categories) categorical, most frequent first; "" = missing
    size_t n_categories;
    uint64_t n_missing; /* numeric: missing cells, not in counts */
    double min, max;    /* numeric: range of the training values (NaN when none) */
} pst_drift_dist_t;

typedef struct pst_drift_profile {
    pst_drift_dist_t *features; // (n_features)
    size_t n_features;
    size_t n_inputs; /* inputs of the model (> n_features when capped) */
    bool has_prediction, has_label;
    pst_drift_dist_t prediction, label;
    char *prediction_rows; /* "training" or "validation", or NULL */
} pst_drift_profile_t;

const char *pst_drift_kind_name(pst_drift_kind_t kind);

/* An empty numeric distribution with the quantile edges of sample[0..m) (NaN = missing; the
 * sample is reordered): values are then counted with pst_drift_dist_add. */
int pst_drift_dist_init_numeric(pst_drift_dist_t *d, const char *name, float *sample, size_t m,
                                pst_err_t *err);
/* An empty numeric distribution with edges[0..n) (ascending; repeats are dropped). */
int pst_drift_dist_init_edges(pst_drift_dist_t *d, const char *name, const double *edges, size_t n,
                              pst_err_t *err);
/* The k/PST_DRIFT_BINS quantiles, k = 1 .. PST_DRIFT_BINS - 1, of the finite values among
 * values[i * stride], i < n, taken on the edge sample pst_drift_dist_fit_numeric takes, into q;
 * *n_finite gets the finite values of that sample (0: q is left alone). */
int pst_drift_quantiles(const float *values, size_t stride, size_t n, double *q, size_t *n_finite,
                        pst_err_t *err);
/* Numeric distribution of values[0..n) (NaN = missing), named name. Fails only on memory. */
int pst_drift_dist_fit_numeric(pst_drift_dist_t *d, const char *name, const float *values,
                               size_t stride, size_t n, pst_err_t *err);
/* Categorical distribution from the count of each of n_values distinct values: the
 * PST_DRIFT_MAX_CATEGORIES most frequent (ties by name) are kept, the rest count as "other". */
int pst_drift_dist_fit_counts(pst_drift_dist_t *d, const char *name, const char *const *values,
                              const uint64_t *counts, size_t n_values, pst_err_t *err);

/* Bin of a numeric value (not NaN): the first k with v <= edges[k], else n_edges. */
size_t pst_drift_dist_bin(const pst_drift_dist_t *d, double v);
/* Counts one numeric value (NaN or infinite: missing) and widens min and max. */
static inline void pst_drift_dist_add(pst_drift_dist_t *d, float v)
{
    if (!isfinite(v)) {
        d->n_missing++;
        return;
    }
    d->counts[pst_drift_dist_bin(d, v)]++;
    if (!(v >= d->min))
        d->min = v;
    if (!(v <= d->max))
        d->max = v;
}

/* Index of a categorical value, or n_categories ("other"). */
size_t pst_drift_dist_category(const pst_drift_dist_t *d, const char *text);
/* Total of the counts (rows that are not missing). */
uint64_t pst_drift_dist_total(const pst_drift_dist_t *d);

/* Deep copy of src into dst. */
int pst_drift_dist_copy(pst_drift_dist_t *dst, const pst_drift_dist_t *src, pst_err_t *err);
void pst_drift_dist_fini(pst_drift_dist_t *d);

void pst_drift_profile_fini(pst_drift_profile_t *p);
void pst_drift_profile_destroy(pst_drift_profile_t **self_p);

/* A new profile of the features of a dense dataset before encoding and scaling: a raw CSV table
 * (ds->table) by column, categories by their text; otherwise every feature (the first
 * PST_DRIFT_MAX_FEATURES) as numeric. Caller owns *out. */
int pst_drift_profile_fit_features(const pst_dataset_t *ds, pst_drift_profile_t **out,
                                   pst_err_t *err);

/* The label distribution of ds (classes by name or value; regression targets numeric). */
int pst_drift_profile_fit_labels(pst_drift_profile_t *p, const pst_dataset_t *ds, pst_err_t *err);

/* Text of class k as profiles name it: the class name, its value (%.17g) or its index. */
void pst_drift_class_text(const char *const *class_names, const double *class_values, int k,
                          char *buf, size_t cap);

#endif
