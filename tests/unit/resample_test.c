/* Tests for common/resample: class counts and weights, over/under-sampling, SMOTE geometry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataload.h"
#include "common/sample/folds.h"
#include "common/log.h"
#include "common/sample/resample.h"
#include "common/rng.h"

static pst_dataset_t *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PST_TEST_DATA, name);
    pst_data_spec_t spec = {.path = path, .target = "target"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    if (pst_data_load(&spec, &d, &err) != PST_OK)
        fail_msg("loading %s: %s", name, err.msg);
    return d;
}

/* A classification set with the given labels; feature 0 = row number, feature 1 = label. */
static pst_dataset_t *labelled(const int *labels, size_t n, int n_classes)
{
    pst_dataset_t *d = pst_dataset_new(n, 2, PST_TASK_CLASSIFICATION);
    d->n_classes = n_classes;
    for (size_t i = 0; i < n; i++) {
        d->y[i] = (float)labels[i];
        d->x[2 * i] = (float)i;
        d->x[2 * i + 1] = (float)labels[i];
    }
    return d;
}

static void counts_of(const pst_dataset_t *d, const size_t *idx, size_t n, size_t *counts)
{
    assert_int_equal(pst_class_counts(d, idx, n, counts, NULL), PST_OK);
}

static bool contains(const size_t *list, size_t n, size_t row)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == row)
            return true;
    return false;
}

/* ---- counts and weights ---- */

static void balanced_weights_by_hand(void **state)
{
    static const int labels[10] = {0, 1, 0, 2, 0, 1, 0, 0, 1, 0};
    pst_dataset_t *d = labelled(labels, 10, 4);
    size_t all[10], counts[4];
    for (size_t i = 0; i < 10; i++)
        all[i] = i;
    counts_of(d, NULL, 10, counts);
    assert_int_equal(counts[0], 6);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[3], 0);
    double w[4];
    assert_int_equal(pst_class_weights_balanced(d, all, 10, w, NULL), PST_OK);
    /* 3 classes present: 10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1); class 3 absent */
    assert_float_equal(w[0], 10.0 / 18.0, 1e-12);
    assert_float_equal(w[1], 10.0 / 9.0, 1e-12);
    assert_float_equal(w[2], 10.0 / 3.0, 1e-12);
    assert_float_equal(w[3], 0.0, 0.0);
    /* a repeated row counts each time: rows 0, 0, 0, 1 are classes 0, 0, 0, 1 */
    const size_t bag[4] = {0, 0, 0, 1};
    assert_int_equal(pst_class_weights_balanced(d, bag, 4, w, NULL), PST_OK);
    assert_float_equal(w[0], 4.0 / 6.0, 1e-12);
    assert_float_equal(w[1], 2.0, 1e-12);
    assert_float_equal(w[2], 0.0, 0.0);
    pst_dataset_destroy(&d);
}

static void balanced_weights_training_fold(void **state)
{
    pst_dataset_t *d = load("wine.csv"); /* 59 / 71 / 48 rows */
    pst_folds_t f;
    assert_int_equal(pst_kfold(d, 5, true, 1, 4, NULL, &f, NULL), PST_OK);
    const pst_fold_t *fold = &f.fold[0];
    size_t counts[3];
    counts_of(d, fold->train, fold->n_train, counts);
    double w[3], sum = 0;
    assert_int_equal(pst_class_weights_balanced(d, fold->train, fold->n_train, w, NULL), PST_OK);
    for (int c = 0; c < 3; c++) {
        assert_float_equal(w[c], (double)fold->n_train / (3.0 * (double)counts[c]), 1e-12);
        sum += w[c] * (double)counts[c];
    }
    assert_float_equal(sum, (double)fold->n_train, 1e-9); /* weights average to 1 per row */
    assert_true(w[2] > w[0] && w[0] > w[1]);              /* rarest class weighs most */
    pst_folds_fini(&f);
    pst_dataset_destroy(&d);
}

static void counts_and_weights_errors(void **state)
{
    static const int labels[4] = {0, 1, 1, 0};
    pst_dataset_t *d = labelled(labels, 4, 2);
    size_t counts[2];
    double w[2];
    pst_err_t err = {0};
    const size_t bad_row[2] = {0, 4};
    assert_int_equal(pst_class_counts(d, bad_row, 2, counts, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "row 4"));
    assert_int_equal(pst_class_weights_balanced(d, bad_row, 2, w, &err), PST_ERANGE);
    assert_int_equal(pst_class_weights_balanced(d, bad_row, 0, w, &err), PST_EINVAL);
    d->y[1] = 2.0f;
    assert_int_equal(pst_class_counts(d, NULL, 4, counts, &err), PST_ERANGE);
    d->task = PST_TASK_REGRESSION;
    d->n_classes = 0;
    assert_int_equal(pst_class_weights_balanced(d, bad_row, 1, w, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "classification"));
    pst_dataset_destroy(&d);
}

/* ---- random over- and under-sampling ---- */

/* 40 rows: class 0 has 20, class 1 has 12, class 2 has 8. The training list leaves out 5 rows
 * of class 1 and 5 of class 2: 20 / 7 / 3 in idx. */
static pst_dataset_t *imbalanced(size_t *idx, size_t *n)
{
    int labels[40];
    for (int i = 0; i < 40; i++)
        labels[i] = i < 20 ? 0 : i < 32 ? 1 : 2;
    pst_dataset_t *d = labelled(labels, 40, 3);
    *n = 0;
    for (size_t i = 0; i < 40; i++)
        if (!(i >= 20 && i < 25) && !(i >= 32 && i < 37))
            idx[(*n)++] = i;
    /* a shuffled training order, as a fold's caller may hand it over */
    pst_rng_t rng;
    pst_rng_init(&rng, 99);
    pst_rng_shuffle(&rng, idx, *n);
    return d;
}

static void oversample_to_majority(void **state)
{
    size_t idx[40], n, *out = NULL, n_out = 0, counts[3];
    pst_dataset_t *d = imbalanced(idx, &n);
    assert_int_equal(n, 30);
    assert_int_equal(pst_oversample_random(d, idx, n, 5, &out, &n_out, NULL), PST_OK);
    assert_int_equal(n_out, 60);
    counts_of(d, out, n_out, counts);
    assert_int_equal(counts[0], 20);
    assert_int_equal(counts[1], 20);
    assert_int_equal(counts[2], 20);
    assert_memory_equal(out, idx, n * sizeof *idx); /* the original list comes first */
    for (size_t i = n; i < n_out; i++) {
        assert_true(contains(idx, n, out[i])); /* never a row outside the training list */
        assert_int_not_equal((int)d->y[out[i]], 0);
    }
    size_t *again = NULL, n_again = 0;
    assert_int_equal(pst_oversample_random(d, idx, n, 5, &again, &n_again, NULL), PST_OK);
    assert_memory_equal(out, again, n_out * sizeof *out);
    free(again);
    assert_int_equal(pst_oversample_random(d, idx, n, 6, &again, &n_again, NULL), PST_OK);
    assert_memory_not_equal(out + n, again + n, (n_out - n) * sizeof *out);
    free(again);
    free(out);
    /* a class absent from the list stays absent */
    size_t no_two[40], m = 0;
    for (size_t i = 0; i < n; i++)
        if (d->y[idx[i]] != 2.0f)
            no_two[m++] = idx[i];
    assert_int_equal(pst_oversample_random(d, no_two, m, 5, &out, &n_out, NULL), PST_OK);
    counts_of(d, out, n_out, counts);
    assert_int_equal(counts[0], 20);
    assert_int_equal(counts[1], 20);
    assert_int_equal(counts[2], 0);
    free(out);
    pst_dataset_destroy(&d);
}

static void undersample_to_minority(void **state)
{
    size_t idx[40], n, *out = NULL, n_out = 0, counts[3];
    pst_dataset_t *d = imbalanced(idx, &n);
    assert_int_equal(pst_undersample_random(d, idx, n, 5, &out, &n_out, NULL), PST_OK);
    assert_int_equal(n_out, 9);
    counts_of(d, out, n_out, counts);
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 3);
    size_t pos = 0; /* a subsequence of idx: kept rows in their training-list order */
    for (size_t i = 0; i < n_out; i++) {
        while (pos < n && idx[pos] != out[i])
            pos++;
        assert_true(pos < n);
        pos++;
    }
    /* the minority class is kept whole; other seeds keep other majority rows */
    for (size_t i = 0; i < n; i++)
        if (d->y[idx[i]] == 2.0f)
            assert_true(contains(out, n_out, idx[i]));
    bool other = false;
    for (uint64_t seed = 6; seed < 10 && !other; seed++) {
        size_t *again = NULL, n_again = 0;
        assert_int_equal(pst_undersample_random(d, idx, n, seed, &again, &n_again, NULL), PST_OK);
        assert_int_equal(n_again, 9);
        other = memcmp(again, out, 9 * sizeof *out) != 0;
        free(again);
    }
    assert_true(other);
    free(out);
    pst_err_t err = {0};
    assert_int_equal(pst_undersample_random(d, idx, 0, 5, &out, &n_out, &err), PST_EINVAL);
    assert_null(out);
    idx[3] = 40;
    assert_int_equal(pst_oversample_random(d, idx, n, 5, &out, &n_out, &err), PST_ERANGE);
    assert_null(out);
    pst_dataset_destroy(&d);
}

/* ---- SMOTE ---- */

static double dist2(const pst_dataset_t *d, size_t a, size_t b)
{
    double sum = 0;
    for (size_t j = 0; j < d->n_features; j++) {
        double diff = (double)d->x[a * d->n_features + j] - (double)d->x[b * d->n_features + j];
        sum += diff * diff;
    }
    return sum;
}

/* The distinct rows of class c in idx, ascending. */
static size_t class_rows(const pst_dataset_t *d, const size_t *idx, size_t n, int c, size_t *rows)
{
    size_t m = 0;
    for (size_t r = 0; r < d->n_rows; r++)
        if (d->y[r] == (float)c && contains(idx, n, r))
            rows[m++] = r;
    return m;
}

/* nn (m, k): for each of rows[0..m), the positions of its k nearest other rows, by selection. */
static void nearest_table(const pst_dataset_t *d, const size_t *rows, size_t m, size_t k,
                          size_t *nn)
{
    unsigned char *taken = malloc(m);
    for (size_t a = 0; a < m; a++) {
        memset(taken, 0, m);
        taken[a] = 1;
        for (size_t t = 0; t < k; t++) {
            size_t best = m;
            for (size_t b = 0; b < m; b++)
                if (!taken[b] &&
                    (best == m || dist2(d, rows[a], rows[b]) < dist2(d, rows[a], rows[best])))
                    best = b;
            taken[best] = 1;
            nn[a * k + t] = best;
        }
    }
    free(taken);
}

/* Whether s = x_a + u (x_b - x_a) with u in [0, 1], within float rounding: s is stored as float
 * and u is recovered from it, each off by a few units in the last place. */
static bool on_segment(const pst_dataset_t *d, size_t a, size_t b, const float *s)
{
    const float *xa = d->x + a * d->n_features, *xb = d->x + b * d->n_features;
    double num = 0, den = 0;
    for (size_t j = 0; j < d->n_features; j++) {
        num += ((double)s[j] - xa[j]) * ((double)xb[j] - xa[j]);
        den += ((double)xb[j] - xa[j]) * ((double)xb[j] - xa[j]);
    }
    double u = den > 0 ? num / den : 0;
    if (u < -1e-6 || u > 1 + 1e-6)
        return false;
    for (size_t j = 0; j < d->n_features; j++) {
        double want = xa[j] + u * ((double)xb[j] - xa[j]);
        if (fabs(want - s[j]) > 1e-5 * (fabs(xa[j]) + fabs(xb[j])) + 1e-9)
            return false;
    }
    return true;
}

/* How many synthetic rows of class c lie on no segment from a row a of class c in idx to one of
 * a's k nearest rows of class c in idx. */
static size_t off_segment_rows(const pst_dataset_t *d, const size_t *idx, size_t n, int c, size_t k,
                               const pst_dataset_t *syn)
{
    size_t *rows = malloc(d->n_rows * sizeof *rows);
    size_t m = class_rows(d, idx, n, c, rows);
    size_t *nn = malloc(m * k * sizeof *nn), off = 0;
    nearest_table(d, rows, m, k, nn);
    for (size_t s = 0; s < syn->n_rows; s++) {
        if (syn->y[s] != (float)c)
            continue;
        bool found = false;
        for (size_t a = 0; a < m && !found; a++)
            for (size_t t = 0; t < k && !found; t++)
                found = on_segment(d, rows[a], rows[nn[a * k + t]], syn->x + s * syn->n_features);
        off += !found;
    }
    free(nn);
    free(rows);
    return off;
}

static void assert_balanced(const pst_dataset_t *d, const size_t *idx, size_t n,
                            const pst_dataset_t *syn)
{
    size_t before[16], added[16], most = 0;
    counts_of(d, idx, n, before);
    counts_of(syn, NULL, syn->n_rows, added);
    for (int c = 0; c < d->n_classes; c++)
        most = before[c] > most ? before[c] : most;
    for (int c = 0; c < d->n_classes; c++)
        if (before[c] > 0)
            assert_int_equal(before[c] + added[c], most);
        else
            assert_int_equal(added[c], 0);
}

static void smote_breast_cancer_fold(void **state)
{
    pst_dataset_t *d = load("breast_cancer.csv"); /* 212 malignant (0), 357 benign (1) */
    pst_folds_t f;
    assert_int_equal(pst_kfold(d, 5, true, 1, 8, NULL, &f, NULL), PST_OK);
    const pst_fold_t *fold = &f.fold[2];
    pst_dataset_t *syn = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_smote(d, fold->train, fold->n_train, 5, 17, &syn, &err), PST_OK);
    size_t counts[2];
    counts_of(d, fold->train, fold->n_train, counts);
    assert_int_equal(syn->n_rows, counts[1] - counts[0]);
    assert_int_equal(syn->n_features, 30);
    assert_int_equal(syn->n_classes, 2);
    assert_non_null(syn->class_values);
    assert_false(pst_dataset_is_sparse(syn));
    for (size_t s = 0; s < syn->n_rows; s++)
        assert_float_equal(syn->y[s], 0.0, 0.0);
    assert_balanced(d, fold->train, fold->n_train, syn);
    assert_int_equal(off_segment_rows(d, fold->train, fold->n_train, 0, 5, syn), 0);
    /* seeded: the same rows again, other rows for another seed */
    pst_dataset_t *again = NULL;
    assert_int_equal(pst_smote(d, fold->train, fold->n_train, 5, 17, &again, NULL), PST_OK);
    assert_memory_equal(syn->x, again->x, syn->n_rows * 30 * sizeof *syn->x);
    pst_dataset_destroy(&again);
    assert_int_equal(pst_smote(d, fold->train, fold->n_train, 5, 18, &again, NULL), PST_OK);
    assert_memory_not_equal(syn->x, again->x, syn->n_rows * 30 * sizeof *syn->x);
    pst_dataset_destroy(&again);
    pst_dataset_destroy(&syn);
    pst_folds_fini(&f);
    pst_dataset_destroy(&d);
}

/* Distance from point p to the segment a-b (3-D). */
static double point_segment_distance(const double *p, const double *a, const double *b)
{
    double ab[3], ap[3], den = 0, num = 0, out = 0;
    for (int j = 0; j < 3; j++) {
        ab[j] = b[j] - a[j];
        ap[j] = p[j] - a[j];
        den += ab[j] * ab[j];
        num += ap[j] * ab[j];
    }
    double u = fmin(1.0, fmax(0.0, num / den));
    for (int j = 0; j < 3; j++)
        out += (ap[j] - u * ab[j]) * (ap[j] - u * ab[j]);
    return sqrt(out);
}

/* Whether point q is farther than `gap` from every segment between the first n points. */
static bool clear_of_segments(const double (*pt)[3], size_t n, const double *q, double gap)
{
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (point_segment_distance(q, pt[a], pt[b]) <= gap)
                return false;
    return true;
}

enum { N_KEPT = 10, N_MAJOR = 30 };

/* Class 0: N_KEPT points P_i in [0, 20]^3, farther than 1 from each other and from every segment
 * between two others, plus a left-out partner E_i = P_i + 0.3 * (unit vector) whose direction is
 * far from parallel to any P_j - P_i. Had E_i been searched, it would be P_i's nearest neighbour,
 * and a row from P_i towards E_i (or from E_i) lies on no segment between kept rows: decidable.
 * Rows 0..9 are P, 10..19 are E, 20..49 class 1 (in [40, 50]^3). */
static pst_dataset_t *partner_set(void)
{
    double pt[N_KEPT][3], dir[N_KEPT][3];
    pst_rng_t rng;
    pst_rng_init(&rng, 2024);
    for (size_t i = 0; i < N_KEPT;) {
        for (int j = 0; j < 3; j++)
            pt[i][j] = 20.0 * pst_rng_uniform(&rng);
        bool ok = clear_of_segments((const double(*)[3])pt, i, pt[i], 1.0);
        for (size_t a = 0; a < i && ok; a++)
            ok = sqrt(pow(pt[a][0] - pt[i][0], 2) + pow(pt[a][1] - pt[i][1], 2) +
                      pow(pt[a][2] - pt[i][2], 2)) > 1.0;
        for (size_t a = 0; a < i && ok; a++) /* earlier points stay clear of new segments */
            for (size_t b = 0; b < i && ok; b++)
                ok = a == b || point_segment_distance(pt[a], pt[b], pt[i]) > 1.0;
        i += ok;
    }
    for (size_t i = 0; i < N_KEPT;) {
        double norm = 0, v[3];
        for (int j = 0; j < 3; j++) {
            v[j] = pst_rng_normal(&rng);
            norm += v[j] * v[j];
        }
        bool ok = true;
        for (size_t b = 0; b < N_KEPT && ok; b++) { /* |cos(angle to P_b - P_i)| < 0.95 */
            if (b == i)
                continue;
            double dot = 0, len = 0;
            for (int j = 0; j < 3; j++) {
                dot += v[j] * (pt[b][j] - pt[i][j]);
                len += (pt[b][j] - pt[i][j]) * (pt[b][j] - pt[i][j]);
            }
            ok = fabs(dot) / sqrt(norm * len) < 0.95;
        }
        for (int j = 0; ok && j < 3; j++)
            dir[i][j] = v[j] / sqrt(norm);
        i += ok;
    }
    pst_dataset_t *d = pst_dataset_new(2 * N_KEPT + N_MAJOR, 3, PST_TASK_CLASSIFICATION);
    d->n_classes = 2;
    for (size_t i = 0; i < N_KEPT; i++)
        for (int j = 0; j < 3; j++) {
            d->x[i * 3 + j] = (float)pt[i][j];
            d->x[(N_KEPT + i) * 3 + j] = (float)(pt[i][j] + 0.3 * dir[i][j]);
        }
    for (size_t i = 2 * N_KEPT; i < d->n_rows; i++) {
        d->y[i] = 1.0f;
        for (int j = 0; j < 3; j++)
            d->x[i * 3 + j] = (float)(40.0 + 10.0 * pst_rng_uniform(&rng));
    }
    return d;
}

static void smote_only_rows_in_idx(void **state)
{
    pst_dataset_t *d = partner_set();
    size_t kept[N_KEPT + N_MAJOR], all[2 * N_KEPT + N_MAJOR], n_kept = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        all[i] = i;
        if (i < N_KEPT || i >= 2 * N_KEPT)
            kept[n_kept++] = i;
    }
    pst_dataset_t *syn = NULL;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        assert_int_equal(pst_smote(d, kept, n_kept, 5, seed, &syn, NULL), PST_OK);
        assert_int_equal(syn->n_rows, N_MAJOR - N_KEPT);
        assert_balanced(d, kept, n_kept, syn);
        assert_int_equal(off_segment_rows(d, kept, n_kept, 0, 5, syn), 0);
        pst_dataset_destroy(&syn);
    }
    /* the check can fail: with the partners in the list, SMOTE uses them, and those rows lie on
     * no segment between kept rows (but on segments between rows of the whole list) */
    assert_int_equal(pst_smote(d, all, d->n_rows, 5, 1, &syn, NULL), PST_OK);
    assert_int_equal(syn->n_rows, N_MAJOR - 2 * N_KEPT);
    assert_int_equal(off_segment_rows(d, all, d->n_rows, 0, 5, syn), 0);
    assert_true(off_segment_rows(d, kept, n_kept, 0, 5, syn) > 0);
    pst_dataset_destroy(&syn);
    pst_dataset_destroy(&d);
}

static void smote_three_classes_and_repeats(void **state)
{
    pst_dataset_t *d = load("wine.csv"); /* 59 / 71 / 48 */
    /* a bootstrap bag as the training list: repeated rows count per occurrence */
    pst_bootstrap_t b;
    assert_int_equal(pst_bootstrap(d->n_rows, 1.0, 3, &b, NULL), PST_OK);
    pst_dataset_t *syn = NULL;
    assert_int_equal(pst_smote(d, b.sample, b.n_sample, 5, 2, &syn, NULL), PST_OK);
    assert_balanced(d, b.sample, b.n_sample, syn);
    size_t before[3];
    counts_of(d, b.sample, b.n_sample, before);
    size_t most = before[0] > before[1] ? before[0] : before[1];
    most = before[2] > most ? before[2] : most;
    assert_int_equal(syn->n_rows, 3 * most - b.n_sample);
    for (int c = 0; c < 3; c++)
        assert_int_equal(off_segment_rows(d, b.sample, b.n_sample, c, 5, syn), 0);
    /* a row's own copies are never its neighbours: no synthetic row equals a training row */
    for (size_t s = 0; s < syn->n_rows; s++)
        for (size_t t = 0; t < b.n_sample; t++)
            assert_memory_not_equal(syn->x + s * 13, d->x + b.sample[t] * 13, 13 * sizeof(float));
    pst_dataset_destroy(&syn);
    pst_bootstrap_fini(&b);
    pst_dataset_destroy(&d);
}

static void smote_small_class_and_errors(void **state)
{
    /* class 1 has 3 rows: 5 neighbours shrink to 2 */
    static const int labels[12] = {0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 2};
    pst_dataset_t *d = labelled(labels, 12, 3);
    for (size_t i = 0; i < 12; i++) /* spread the rows in feature 1 too */
        d->x[2 * i + 1] = (float)((i * 7) % 12);
    size_t idx[11] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    pst_dataset_t *syn = NULL;
    pst_err_t err = {0};
    pst_log_set_level(PST_LOG_ERROR); /* the shrunken neighbour count is a warning */
    assert_int_equal(pst_smote(d, idx, 11, 5, 1, &syn, &err), PST_OK);
    assert_int_equal(syn->n_rows, 5); /* 8 of class 0, 3 of class 1; class 2 not in idx */
    assert_int_equal(off_segment_rows(d, idx, 11, 1, 2, syn), 0);
    pst_dataset_destroy(&syn);

    /* class 2 with one row cannot be interpolated */
    size_t with_two[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    assert_int_equal(pst_smote(d, with_two, 12, 5, 1, &syn, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "class 2"));
    assert_null(syn);
    /* repeated copies of one row are still one distinct row */
    size_t copies[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11};
    assert_int_equal(pst_smote(d, copies, 13, 5, 1, &syn, &err), PST_EINVAL);
    assert_int_equal(pst_smote(d, idx, 11, 0, 1, &syn, &err), PST_EINVAL);
    assert_int_equal(pst_smote(d, idx, 0, 5, 1, &syn, &err), PST_EINVAL);
    d->x[2 * 6] = NAN; /* class 1 */
    assert_int_equal(pst_smote(d, idx, 11, 5, 1, &syn, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 6"));
    d->x[2 * 6] = 6.0f;

    /* balanced already: an empty dataset */
    size_t even[6] = {0, 1, 2, 3, 6, 9};
    assert_int_equal(pst_smote(d, even, 6, 5, 1, &syn, &err), PST_OK);
    assert_non_null(syn);
    assert_int_equal(syn->n_rows, 0);
    pst_dataset_destroy(&syn);

    /* sparse input is refused */
    pst_dataset_t *sparse = pst_dataset_new(2, 2, PST_TASK_CLASSIFICATION);
    sparse->n_classes = 2;
    sparse->y[1] = 1.0f;
    free(sparse->x);
    sparse->x = NULL;
    sparse->row_ptr = calloc(3, sizeof *sparse->row_ptr);
    assert_int_equal(pst_smote(sparse, even, 2, 5, 1, &syn, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "dense"));
    pst_log_set_level(PST_LOG_INFO);
    pst_dataset_destroy(&sparse);
    pst_dataset_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(balanced_weights_by_hand),
        cmocka_unit_test(balanced_weights_training_fold),
        cmocka_unit_test(counts_and_weights_errors),
        cmocka_unit_test(oversample_to_majority),
        cmocka_unit_test(undersample_to_minority),
        cmocka_unit_test(smote_breast_cancer_fold),
        cmocka_unit_test(smote_only_rows_in_idx),
        cmocka_unit_test(smote_three_classes_and_repeats),
        cmocka_unit_test(smote_small_class_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
