/* ROC, precision-recall and reliability curves from scores and labels. */
#include "common/eval/curves.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/eval/metrics.h"

typedef struct ranked {
    float score;
    int positive;
} ranked_t;

/* Highest score first. */
static int by_score_desc(const void *a, const void *b)
{
    float x = ((const ranked_t *)a)->score, y = ((const ranked_t *)b)->score;
    return (x < y) - (x > y);
}

static int curve_alloc(pst_curve_t *c, size_t n)
{
    c->n = 0;
    c->x = malloc((n ? n : 1) * sizeof *c->x);
    c->y = malloc((n ? n : 1) * sizeof *c->y);
    if (c->x && c->y)
        return PST_OK;
    pst_curve_fini(c);
    return PST_ENOMEM;
}

static void curve_add(pst_curve_t *c, double x, double y)
{
    c->x[c->n] = x;
    c->y[c->n++] = y;
}

void pst_curve_fini(pst_curve_t *c)
{
    free(c->x);
    free(c->y);
    c->x = c->y = NULL;
    c->n = 0;
}

/* The rows sorted by score, or NULL when a score is NaN or a label is not 0/1. */
static ranked_t *rank_rows(const float *score, const float *label01, size_t n, size_t *n_pos,
                           bool *oom)
{
    ranked_t *r = malloc((n ? n : 1) * sizeof *r);
    *oom = r == NULL;
    *n_pos = 0;
    for (size_t i = 0; r && i < n; i++) {
        if (isnan(score[i]) || (label01[i] != 0.0f && label01[i] != 1.0f)) {
            free(r);
            return NULL;
        }
        r[i].score = score[i];
        r[i].positive = label01[i] == 1.0f;
        *n_pos += (size_t)r[i].positive;
    }
    if (r)
        qsort(r, n, sizeof *r, by_score_desc);
    return r;
}

/* Walks the thresholds, highest first: a ROC point and a PR point each. */
static void walk_thresholds(pst_class_curves_t *c, const ranked_t *r, size_t n)
{
    double P = (double)c->n_pos, N = (double)c->n_neg, tp = 0, fp = 0, ap = 0, last_recall = 0;
    curve_add(&c->roc, 0, 0);
    curve_add(&c->pr, 0, 1);
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && r[end].score == r[start].score) {
            tp += r[end].positive;
            fp += !r[end].positive;
            end++;
        }
        double precision = tp / (tp + fp), recall = tp / P;
        curve_add(&c->roc, fp / N, recall);
        curve_add(&c->pr, recall, precision);
        ap += (recall - last_recall) * precision;
        last_recall = recall;
        start = end;
    }
    c->average_precision = ap;
}

int pst_class_curves_compute(pst_class_curves_t *c, const float *score, const float *label01,
                             size_t n, pst_err_t *err)
{
    memset(c, 0, sizeof *c);
    c->auc = c->average_precision = NAN;
    bool oom;
    ranked_t *r = rank_rows(score, label01, n, &c->n_pos, &oom);
    if (oom)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    c->n_neg = n - c->n_pos;
    if (!r || c->n_pos == 0 || c->n_neg == 0) {
        free(r);
        return PST_OK;
    }
    if (curve_alloc(&c->roc, n + 1) != PST_OK || curve_alloc(&c->pr, n + 1) != PST_OK) {
        free(r);
        pst_class_curves_fini(c);
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    walk_thresholds(c, r, n);
    free(r);
    c->auc = pst_roc_auc(score, label01, n);
    return PST_OK;
}

void pst_class_curves_fini(pst_class_curves_t *c)
{
    pst_curve_fini(&c->roc);
    pst_curve_fini(&c->pr);
}

/* Points kept when a point is kept once the curve moved step (x + |y|, or x alone) since the
 * last kept one; the first and last always. Moves them into place when apply. */
static int thin_pass(pst_curve_t *c, double step, bool x_only, bool apply)
{
    int kept = 1, last = 0;
    for (int i = 1; i < c->n; i++) {
        double moved = fabs(c->x[i] - c->x[last]);
        if (!x_only)
            moved += fabs(c->y[i] - c->y[last]);
        if (moved >= step || i == c->n - 1) {
            last = apply ? kept : i;
            if (apply) {
                c->x[kept] = c->x[i];
                c->y[kept] = c->y[i];
            }
            kept++;
        }
    }
    return kept;
}

bool pst_curve_thin(pst_curve_t *c, int max_points)
{
    if (c->n <= 2 || max_points < 1)
        return false;
    double step = 1.0 / max_points;
    bool x_only = thin_pass(c, step, false, false) > 2 * max_points + 2;
    int kept = thin_pass(c, step, x_only, true);
    bool dropped = kept < c->n;
    c->n = kept;
    return dropped;
}

/* The true positive rate of a ROC curve at false positive rate f. */
static double roc_at(const pst_curve_t *c, double f)
{
    int i = 0; /* the last point at or left of f; x grows, so the highest y at an equal x */
    while (i + 1 < c->n && c->x[i + 1] <= f)
        i++;
    if (i + 1 >= c->n || c->x[i] == f)
        return c->y[i];
    double t = (f - c->x[i]) / (c->x[i + 1] - c->x[i]);
    return c->y[i] + t * (c->y[i + 1] - c->y[i]);
}

/* The highest precision at a recall of at least r; 0 past the curve's last recall. */
static double pr_at(const pst_curve_t *c, double r)
{
    double best = 0;
    for (int i = 0; i < c->n; i++)
        if (c->x[i] >= r && c->y[i] > best)
            best = c->y[i];
    return best;
}

static int curve_mean(const pst_curve_t *curves, int n_curves, int grid_n, bool roc,
                      pst_curve_t *mean, pst_err_t *err)
{
    memset(mean, 0, sizeof *mean);
    if (grid_n < 2)
        return pst_err_set(err, PST_EINVAL, "a mean curve needs at least 2 grid points");
    int used = 0;
    for (int k = 0; k < n_curves; k++)
        used += curves[k].n > 0;
    if (used == 0)
        return PST_OK;
    if (curve_alloc(mean, (size_t)grid_n) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int g = 0; g < grid_n; g++) {
        double at = (double)g / (grid_n - 1), sum = 0;
        for (int k = 0; k < n_curves; k++)
            if (curves[k].n > 0)
                sum += roc ? roc_at(&curves[k], at) : pr_at(&curves[k], at);
        curve_add(mean, at, sum / used);
    }
    return PST_OK;
}

int pst_roc_mean(const pst_curve_t *curves, int n_curves, int grid_n, pst_curve_t *mean,
                 pst_err_t *err)
{
    return curve_mean(curves, n_curves, grid_n, true, mean, err);
}

int pst_pr_mean(const pst_curve_t *curves, int n_curves, int grid_n, pst_curve_t *mean,
                pst_err_t *err)
{
    return curve_mean(curves, n_curves, grid_n, false, mean, err);
}

/* The bin of p: how many inner edges (b / n_bins, computed as numpy.linspace does) lie below. */
static int bin_of(double p, int n_bins)
{
    double width = 1.0 / n_bins;
    int b = 0;
    while (b < n_bins - 1 && (double)(b + 1) * width < p)
        b++;
    return b;
}

int pst_calibration_compute(pst_calibration_t *c, const float *conf, const float *hit01, size_t n,
                            int n_bins, pst_err_t *err)
{
    memset(c, 0, sizeof *c);
    if (n_bins < 1 || n_bins > 1000)
        return pst_err_set(err, PST_EINVAL, "calibration: %d bins (1 to 1000)", n_bins);
    c->mean_pred = calloc((size_t)n_bins, sizeof *c->mean_pred);
    c->observed = calloc((size_t)n_bins, sizeof *c->observed);
    c->count = calloc((size_t)n_bins, sizeof *c->count);
    if (!c->mean_pred || !c->observed || !c->count) {
        pst_calibration_fini(c);
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    c->n_bins = n_bins;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(conf[i]))
            continue;
        int b = bin_of(conf[i], n_bins);
        c->mean_pred[b] += conf[i];
        c->observed[b] += hit01[i] == 1.0f;
        c->count[b]++;
        c->n++;
    }
    double ece = 0;
    for (int b = 0; b < n_bins; b++) {
        double k = (double)c->count[b];
        c->mean_pred[b] = k > 0 ? c->mean_pred[b] / k : NAN;
        c->observed[b] = k > 0 ? c->observed[b] / k : NAN;
        if (k > 0)
            ece += k * fabs(c->observed[b] - c->mean_pred[b]);
    }
    c->ece = c->n > 0 ? ece / (double)c->n : NAN;
    return PST_OK;
}

void pst_calibration_fini(pst_calibration_t *c)
{
    free(c->mean_pred);
    free(c->observed);
    free(c->count);
    memset(c, 0, sizeof *c);
}

double pst_brier_score(const float *prob, int n_cols, const float *labels, size_t n)
{
    if (n == 0)
        return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (n_cols == 1) {
            double d = (double)prob[i] - (double)labels[i];
            sum += d * d;
            continue;
        }
        for (int k = 0; k < n_cols; k++) {
            double d = (double)prob[i * (size_t)n_cols + k] - (labels[i] == (float)k ? 1.0 : 0.0);
            sum += d * d;
        }
    }
    return sum / (double)n;
}
