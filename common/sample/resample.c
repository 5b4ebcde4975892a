/* Class counts and weights, random over/under-sampling and SMOTE over a training index list. */
#include "common/sample/resample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rng.h"

/* Positions 0..n-1 of an index list grouped by class: order[start[c]..start[c + 1]) are the
 * positions whose row has class c. */
typedef struct class_positions {
    size_t *counts; // (n_classes)
    size_t *order;  // (n)
    size_t *start;  // (n_classes + 1)
    size_t n_classes;
    size_t n_present; /* classes with at least one row */
} class_positions_t;

/* Neighbour search state for one class in SMOTE. */
typedef struct smote_class {
    const pst_dataset_t *ds;
    size_t *member; // (m) distinct rows of the class in idx, ascending
    size_t m;
    size_t k;               // neighbours per row: min(k_neighbors, m - 1)
    size_t *nn;             // (m, k) member positions of each member's nearest, filled on demand
    unsigned char *have_nn; // (m)
    double *nn_dist;        // (k) scratch: distances of the current best k
} smote_class_t;

/* The generated rows: base row, partner row and interpolation factor of each. */
typedef struct smote_plan {
    size_t *base;    // (total)
    size_t *partner; // (total)
    double *u;       // (total)
    size_t total;
    size_t filled;
} smote_plan_t;

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int check_list(const pst_dataset_t *ds, const size_t *idx, size_t n, const char *what,
                      pst_err_t *err)
{
    if (ds->task != PST_TASK_CLASSIFICATION || ds->n_classes <= 0)
        return pst_err_set(err, PST_EINVAL, "%s: needs a classification dataset", what);
    if (n == 0 || idx == NULL)
        return pst_err_set(err, PST_EINVAL, "%s: the index list is empty", what);
    return PST_OK;
}

int pst_class_counts(const pst_dataset_t *ds, const size_t *idx, size_t n, size_t *counts,
                     pst_err_t *err)
{
    if (ds->task != PST_TASK_CLASSIFICATION || ds->n_classes <= 0)
        return pst_err_set(err, PST_EINVAL, "class counts: needs a classification dataset");
    memset(counts, 0, (size_t)ds->n_classes * sizeof *counts);
    for (size_t i = 0; i < n; i++) {
        size_t row = idx ? idx[i] : i;
        if (row >= ds->n_rows)
            return pst_err_set(err, PST_ERANGE, "class counts: index %zu is row %zu of %zu", i, row,
                               ds->n_rows);
        float y = ds->y[row];
        if (!(y >= 0 && y < (float)ds->n_classes && y == floorf(y)))
            return pst_err_set(err, PST_ERANGE,
                               "class counts: row %zu has label %g, not a class index below %d",
                               row, (double)y, ds->n_classes);
        counts[(size_t)y]++;
    }
    return PST_OK;
}

static void positions_fini(class_positions_t *p)
{
    free(p->counts);
    free(p->order);
    free(p->start);
    memset(p, 0, sizeof *p);
}

/* Groups the positions of idx by class (counting sort, stable). */
static int group_positions(const pst_dataset_t *ds, const size_t *idx, size_t n,
                           class_positions_t *p, const char *what, pst_err_t *err)
{
    memset(p, 0, sizeof *p);
    int rc = check_list(ds, idx, n, what, err);
    if (rc != PST_OK)
        return rc;
    p->n_classes = (size_t)ds->n_classes;
    p->counts = malloc(p->n_classes * sizeof *p->counts);
    p->order = malloc(n * sizeof *p->order);
    p->start = calloc(p->n_classes + 1, sizeof *p->start);
    if (p->counts == NULL || p->order == NULL || p->start == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu rows", what, n);
    rc = pst_class_counts(ds, idx, n, p->counts, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", what);
    for (size_t c = 0; c < p->n_classes; c++) {
        p->n_present += p->counts[c] > 0;
        p->start[c + 1] = p->start[c] + p->counts[c];
    }
    size_t *fill = p->counts; /* reused as write cursors, then restored */
    for (size_t c = 0; c < p->n_classes; c++)
        fill[c] = p->start[c];
    for (size_t i = 0; i < n; i++)
        p->order[fill[(size_t)ds->y[idx[i]]]++] = i;
    for (size_t c = 0; c < p->n_classes; c++)
        fill[c] -= p->start[c];
    return PST_OK;
}

/* Largest and smallest count among the classes present. */
static void count_range(const class_positions_t *p, size_t *most, size_t *fewest)
{
    *most = 0;
    *fewest = SIZE_MAX;
    for (size_t c = 0; c < p->n_classes; c++) {
        if (p->counts[c] == 0)
            continue;
        *most = p->counts[c] > *most ? p->counts[c] : *most;
        *fewest = p->counts[c] < *fewest ? p->counts[c] : *fewest;
    }
}

void pst_class_weights_from_counts(const size_t *counts, int n_classes, double *weights)
{
    size_t present = 0, n = 0;
    for (int c = 0; c < n_classes; c++) {
        present += counts[c] > 0;
        n += counts[c];
    }
    for (int c = 0; c < n_classes; c++)
        weights[c] = counts[c] ? (double)n / ((double)present * (double)counts[c]) : 0.0;
}

int pst_class_weights_balanced(const pst_dataset_t *ds, const size_t *idx, size_t n,
                               double *weights, pst_err_t *err)
{
    int rc = check_list(ds, idx, n, "class weights", err);
    if (rc != PST_OK)
        return rc;
    size_t *counts = malloc((size_t)ds->n_classes * sizeof *counts);
    if (counts == NULL)
        return pst_err_set(err, PST_ENOMEM, "class weights: out of memory");
    rc = pst_class_counts(ds, idx, n, counts, err);
    if (rc == PST_OK)
        pst_class_weights_from_counts(counts, ds->n_classes, weights);
    free(counts);
    return rc == PST_OK ? PST_OK : pst_err_prefix(err, rc, "class weights: ");
}

int pst_oversample_random(const pst_dataset_t *ds, const size_t *idx, size_t n, uint64_t seed,
                          size_t **out, size_t *n_out, pst_err_t *err)
{
    *out = NULL;
    *n_out = 0;
    class_positions_t p;
    int rc = group_positions(ds, idx, n, &p, "over-sampling", err);
    size_t most = 0, fewest = 0, total = 0;
    if (rc == PST_OK) {
        count_range(&p, &most, &fewest);
        total = most * p.n_present;
        *out = malloc(total * sizeof **out);
        if (*out == NULL)
            rc = pst_err_set(err, PST_ENOMEM, "over-sampling: out of memory for %zu rows", total);
    }
    if (rc == PST_OK) {
        pst_rng_t rng;
        pst_rng_init(&rng, seed);
        memcpy(*out, idx, n * sizeof *idx);
        size_t at = n;
        for (size_t c = 0; c < p.n_classes; c++) {
            const size_t *pos = p.order + p.start[c];
            for (size_t extra = p.counts[c] ? most - p.counts[c] : 0; extra > 0; extra--)
                (*out)[at++] = idx[pos[pst_rng_below(&rng, p.counts[c])]];
        }
        *n_out = total;
    }
    positions_fini(&p);
    return rc;
}

int pst_undersample_random(const pst_dataset_t *ds, const size_t *idx, size_t n, uint64_t seed,
                           size_t **out, size_t *n_out, pst_err_t *err)
{
    *out = NULL;
    *n_out = 0;
    class_positions_t p;
    int rc = group_positions(ds, idx, n, &p, "under-sampling", err);
    size_t most = 0, fewest = 0, total = 0;
    unsigned char *keep = NULL;
    if (rc == PST_OK) {
        count_range(&p, &most, &fewest);
        total = fewest * p.n_present;
        keep = calloc(n, 1);
        *out = malloc(total * sizeof **out);
        if (keep == NULL || *out == NULL) {
            free(*out);
            *out = NULL;
            rc = pst_err_set(err, PST_ENOMEM, "under-sampling: out of memory for %zu rows", n);
        }
    }
    if (rc == PST_OK) {
        pst_rng_t rng;
        pst_rng_init(&rng, seed);
        for (size_t c = 0; c < p.n_classes; c++) {
            size_t *pos = p.order + p.start[c];
            pst_rng_shuffle(&rng, pos, p.counts[c]);
            for (size_t j = 0; j < p.counts[c] && j < fewest; j++)
                keep[pos[j]] = 1;
        }
        size_t at = 0;
        for (size_t i = 0; i < n; i++)
            if (keep[i])
                (*out)[at++] = idx[i];
        *n_out = total;
    }
    free(keep);
    positions_fini(&p);
    return rc;
}

/* ---- SMOTE ---- */

static double squared_distance(const float *a, const float *b, size_t d)
{
    double sum = 0;
    for (size_t j = 0; j < d; j++) {
        double diff = (double)a[j] - (double)b[j];
        sum += diff * diff;
    }
    return sum;
}

static bool row_is_finite(const pst_dataset_t *ds, size_t row)
{
    const float *x = ds->x + row * ds->n_features;
    for (size_t j = 0; j < ds->n_features; j++)
        if (!isfinite(x[j]))
            return false;
    return true;
}

static void smote_class_fini(smote_class_t *sc)
{
    free(sc->member);
    free(sc->nn);
    free(sc->have_nn);
    free(sc->nn_dist);
    memset(sc, 0, sizeof *sc);
}

/* The distinct rows of class c among the positions p grouped, ascending, and the search state. */
static int smote_class_init(smote_class_t *sc, const pst_dataset_t *ds, const size_t *idx,
                            const class_positions_t *p, size_t c, int k_neighbors, pst_err_t *err)
{
    memset(sc, 0, sizeof *sc);
    sc->ds = ds;
    size_t count = p->counts[c];
    sc->member = malloc(count * sizeof *sc->member);
    if (sc->member == NULL)
        return pst_err_set(err, PST_ENOMEM, "SMOTE: out of memory for %zu rows", count);
    for (size_t j = 0; j < count; j++)
        sc->member[j] = idx[p->order[p->start[c] + j]];
    qsort(sc->member, count, sizeof *sc->member, cmp_size);
    for (size_t j = 0; j < count; j++)
        if (sc->m == 0 || sc->member[sc->m - 1] != sc->member[j])
            sc->member[sc->m++] = sc->member[j];
    if (sc->m < 2)
        return pst_err_set(err, PST_EINVAL,
                           "SMOTE: class %zu has %zu distinct row(s) in the training list; "
                           "it needs at least 2 to interpolate",
                           c, sc->m);
    for (size_t j = 0; j < sc->m; j++)
        if (!row_is_finite(ds, sc->member[j]))
            return pst_err_set(err, PST_ENUMERIC,
                               "SMOTE: row %zu (class %zu) has a missing or infinite value; "
                               "impute before resampling",
                               sc->member[j], c);
    sc->k = (size_t)k_neighbors < sc->m - 1 ? (size_t)k_neighbors : sc->m - 1;
    if (sc->k < (size_t)k_neighbors)
        pst_warn("SMOTE: class %zu has %zu distinct rows; using %zu neighbours, not %d", c, sc->m,
                 sc->k, k_neighbors);
    sc->nn = malloc(sc->m * sc->k * sizeof *sc->nn);
    sc->have_nn = calloc(sc->m, 1);
    sc->nn_dist = malloc(sc->k * sizeof *sc->nn_dist);
    if (sc->nn == NULL || sc->have_nn == NULL || sc->nn_dist == NULL)
        return pst_err_set(err, PST_ENOMEM, "SMOTE: out of memory for %zu neighbour lists", sc->m);
    return PST_OK;
}

/* The k nearest other members of member i, nearest first (members are ascending by row, so a
 * strict comparison keeps the lower row first among equal distances). O(m * (d + k)). */
static const size_t *neighbours(smote_class_t *sc, size_t i)
{
    size_t *best = sc->nn + i * sc->k;
    if (sc->have_nn[i])
        return best;
    const pst_dataset_t *ds = sc->ds;
    const float *xi = ds->x + sc->member[i] * ds->n_features;
    size_t found = 0;
    for (size_t j = 0; j < sc->m; j++) {
        if (j == i)
            continue;
        double dist = squared_distance(xi, ds->x + sc->member[j] * ds->n_features, ds->n_features);
        if (found == sc->k && dist >= sc->nn_dist[found - 1])
            continue;
        size_t at = found < sc->k ? found++ : found - 1;
        for (; at > 0 && dist < sc->nn_dist[at - 1]; at--) {
            sc->nn_dist[at] = sc->nn_dist[at - 1];
            best[at] = best[at - 1];
        }
        sc->nn_dist[at] = dist;
        best[at] = j;
    }
    sc->have_nn[i] = 1;
    return best;
}

/* Plans `needed` rows for one class: base, partner and interpolation factor of each. */
static void plan_class(smote_class_t *sc, size_t needed, pst_rng_t *rng, smote_plan_t *plan)
{
    for (size_t s = 0; s < needed; s++) {
        size_t i = (size_t)pst_rng_below(rng, sc->m);
        const size_t *nn = neighbours(sc, i);
        size_t j = nn[pst_rng_below(rng, sc->k)];
        plan->base[plan->filled] = sc->member[i];
        plan->partner[plan->filled] = sc->member[j];
        plan->u[plan->filled] = pst_rng_uniform(rng);
        plan->filled++;
    }
}

static int plan_alloc(smote_plan_t *plan, const class_positions_t *p, pst_err_t *err)
{
    size_t most, fewest;
    count_range(p, &most, &fewest);
    memset(plan, 0, sizeof *plan);
    for (size_t c = 0; c < p->n_classes; c++)
        plan->total += p->counts[c] ? most - p->counts[c] : 0;
    size_t slots = plan->total ? plan->total : 1;
    plan->base = malloc(slots * sizeof *plan->base);
    plan->partner = malloc(slots * sizeof *plan->partner);
    plan->u = malloc(slots * sizeof *plan->u);
    if (plan->base == NULL || plan->partner == NULL || plan->u == NULL)
        return pst_err_set(err, PST_ENOMEM, "SMOTE: out of memory for %zu rows", plan->total);
    return PST_OK;
}

static void plan_fini(smote_plan_t *plan)
{
    free(plan->base);
    free(plan->partner);
    free(plan->u);
    memset(plan, 0, sizeof *plan);
}

/* Fills the plan class by class. */
static int plan_rows(const pst_dataset_t *ds, const size_t *idx, const class_positions_t *p,
                     int k_neighbors, uint64_t seed, smote_plan_t *plan, pst_err_t *err)
{
    size_t most, fewest;
    count_range(p, &most, &fewest);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    int rc = PST_OK;
    for (size_t c = 0; rc == PST_OK && c < p->n_classes; c++) {
        if (p->counts[c] == 0 || p->counts[c] == most)
            continue;
        smote_class_t sc;
        rc = smote_class_init(&sc, ds, idx, p, c, k_neighbors, err);
        if (rc == PST_OK)
            plan_class(&sc, most - p->counts[c], &rng, plan);
        smote_class_fini(&sc);
    }
    return rc;
}

/* The synthetic dataset: the base rows (labels and metadata come with them), each moved along
 * the segment to its partner. */
static int make_rows(const pst_dataset_t *ds, const smote_plan_t *plan, pst_dataset_t **out,
                     pst_err_t *err)
{
    pst_dataset_t *syn = pst_dataset_take_rows(ds, plan->base, plan->total);
    if (syn == NULL)
        return pst_err_set(err, PST_ENOMEM, "SMOTE: out of memory for %zu rows", plan->total);
    size_t d = ds->n_features;
    for (size_t s = 0; s < plan->total; s++) {
        const float *b = ds->x + plan->partner[s] * d;
        float *x = syn->x + s * d;
        for (size_t j = 0; j < d; j++)
            x[j] = (float)((double)x[j] + plan->u[s] * ((double)b[j] - (double)x[j]));
    }
    *out = syn;
    return PST_OK;
}

int pst_smote(const pst_dataset_t *ds, const size_t *idx, size_t n, int k_neighbors, uint64_t seed,
              pst_dataset_t **synthetic, pst_err_t *err)
{
    *synthetic = NULL;
    if (pst_dataset_is_sparse(ds) || ds->x == NULL)
        return pst_err_set(err, PST_EINVAL, "SMOTE: needs a dense dataset (densify first)");
    if (k_neighbors < 1)
        return pst_err_set(err, PST_EINVAL, "SMOTE: k_neighbors = %d, need at least 1",
                           k_neighbors);
    class_positions_t p;
    smote_plan_t plan = {0};
    int rc = group_positions(ds, idx, n, &p, "SMOTE", err);
    if (rc == PST_OK)
        rc = plan_alloc(&plan, &p, err);
    if (rc == PST_OK)
        rc = plan_rows(ds, idx, &p, k_neighbors, seed, &plan, err);
    if (rc == PST_OK)
        rc = make_rows(ds, &plan, synthetic, err);
    plan_fini(&plan);
    positions_fini(&p);
    return rc;
}
