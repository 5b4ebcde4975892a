/* Curves of a classifier's scores: ROC and precision-recall of one class against the rest, their
 * averages over classes, and the reliability (calibration) table with the Brier score and the
 * expected calibration error. The points follow scikit-learn's roc_curve (drop_intermediate
 * False), precision_recall_curve and calibration_curve (uniform bins), so they can be checked
 * against it. */
#ifndef PST_COMMON_EVAL_CURVES_H
#define PST_COMMON_EVAL_CURVES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

typedef struct pst_curve {
    double *x, *y; // (n) points in drawing order
    int n;
} pst_curve_t;

/* One class against the rest. */
typedef struct pst_class_curves {
    size_t n_pos, n_neg;
    double auc;               /* pst_roc_auc of the same scores: the run's reported ROC-AUC */
    double average_precision; /* sum over thresholds of (R_i - R_{i-1}) P_i */
    pst_curve_t roc;          /* x false positive rate, y true positive rate, (0,0) to (1,1) */
    pst_curve_t pr;           /* x recall, y precision, from (0,1) */
} pst_class_curves_t;

/* The curves of score (n) against label01 (n, 0 or 1): a point per distinct score, highest
 * first. With a class absent, a NaN score or a label other than 0/1 the curves are empty and the
 * figures NaN (not an error: there is nothing to draw). PST_ENOMEM only. */
int pst_class_curves_compute(pst_class_curves_t *c, const float *score, const float *label01,
                             size_t n, pst_err_t *err);
void pst_class_curves_fini(pst_class_curves_t *c);

/* Keeps at most 2 * max_points + 2 of c's points for drawing, the first and last always: a point
 * is kept once the curve has moved 1 / max_points in x + |y| since the last kept one, or in x
 * alone when that would keep more (a precision-recall curve's precision can swing at every
 * point; x of these curves only grows). Returns whether points were dropped. */
bool pst_curve_thin(pst_curve_t *c, int max_points);

/* The mean over n_curves ROC curves of the true positive rate at each of grid_n equally spaced
 * false positive rates in [0, 1] (linear between a curve's points; at a rate with several points,
 * the highest). Empty curves are left out; *mean gets n 0 when all are. */
int pst_roc_mean(const pst_curve_t *curves, int n_curves, int grid_n, pst_curve_t *mean,
                 pst_err_t *err);
/* The same for precision-recall curves: at each recall r the interpolated precision, the highest
 * precision at a recall >= r, averaged over the curves. */
int pst_pr_mean(const pst_curve_t *curves, int n_curves, int grid_n, pst_curve_t *mean,
                pst_err_t *err);
void pst_curve_fini(pst_curve_t *c);

/* A reliability table: n_bins equal bins of [0, 1] (a value on an edge goes to the lower bin, as
 * calibration_curve puts it); per bin the mean confidence, the observed rate of hits and the
 * count (empty bins: NaN and 0). ECE is the count-weighted mean of |observed - mean confidence|. */
typedef struct pst_calibration {
    int n_bins;
    double *mean_pred, *observed; // (n_bins)
    size_t *count;                // (n_bins)
    size_t n;
    double ece;
} pst_calibration_t;

/* conf (n) in [0, 1], hit01 (n) 0 or 1: for a binary task the probability of class 1 and
 * whether the row is of class 1; for several classes the top class's probability and whether it
 * is the true class. n_bins in 1..1000 (else PST_EINVAL). */
int pst_calibration_compute(pst_calibration_t *c, const float *conf, const float *hit01, size_t n,
                            int n_bins, pst_err_t *err);
void pst_calibration_fini(pst_calibration_t *c);

/* The Brier score of prob (n, n_cols) against class-index labels: for n_cols == 1 (the
 * probability of class 1) the mean of (p - y)^2, as scikit-learn's brier_score_loss; otherwise
 * the mean over rows of sum_k (p_k - [y == k])^2. NaN for n == 0. */
double pst_brier_score(const float *prob, int n_cols, const float *labels, size_t n);

#endif
