/* Evaluation metrics for classification and regression, computed from predictions and labels. */
#ifndef PST_COMMON_EVAL_METRICS_H
#define PST_COMMON_EVAL_METRICS_H

#include <stddef.h>

#include "common/err.h"

typedef struct pst_class_metrics {
    int n_classes;
    size_t n;
    long *confusion; /* (n_classes, n_classes): row = true class, column = predicted */
    double accuracy;
    double log_loss; /* NaN when probabilities were not given */
    double roc_auc;  /* binary tasks only; NaN otherwise or when one class is absent */
    double *precision, *recall, *f1, *specificity; /* (n_classes) per class */
    double precision_macro, recall_macro, f1_macro, specificity_macro;
    double precision_micro, recall_micro, f1_micro, specificity_micro;
} pst_class_metrics_t;

typedef struct pst_reg_metrics {
    size_t n;
    double mse, mae, r2;
} pst_reg_metrics_t;

/* prob is (n, n_classes) class probabilities (for a single-output binary model pass the 2-column
 * form: [1-p, p]); the predicted class is the argmax. prob may be NULL if pred is given.
 * pred (n) optional explicit predictions; NULL = argmax of prob. labels (n) are class indices.
 * Caller owns m's arrays: free with pst_class_metrics_fini. */
int pst_class_metrics_compute(pst_class_metrics_t *m, int n_classes, size_t n, const float *prob,
                              const int *pred, const float *labels, pst_err_t *err);
void pst_class_metrics_fini(pst_class_metrics_t *m);

/* The same from model outputs (n, n_out): class probabilities, or for n_out == 1 the
 * probability of class 1 of a binary task. */
int pst_class_metrics_from_outputs(pst_class_metrics_t *m, int n_classes, size_t n,
                                   const float *out, int n_out, const float *labels,
                                   pst_err_t *err);

void pst_reg_metrics_compute(pst_reg_metrics_t *m, size_t n, const float *pred,
                             const float *target);

/* Mean log-loss of probabilities of class 1 against labels y in [0, 1], each probability clipped
 * to [1e-15, 1 - 1e-15] as scikit-learn does; 0 for n == 0. */
double pst_log_loss_binary(const float *prob, const float *y, size_t n);

/* A binary classifier's figures on n > 0 rows (click models): log-loss (pst_log_loss_binary),
 * ROC-AUC and calibration, the mean probability against the observed rate of class 1. */
typedef struct pst_binary_metrics {
    size_t n;
    double log_loss, roc_auc;
    double mean_pred, observed;
} pst_binary_metrics_t;

/* n 0, every figure NaN: the metrics of a set without rows. */
void pst_binary_metrics_none(pst_binary_metrics_t *m);
void pst_binary_metrics_compute(pst_binary_metrics_t *m, const float *prob, const float *y,
                                size_t n);

/* ROC-AUC from scores of the positive class (ties count one half). NaN if a class is absent. */
double pst_roc_auc(const float *score, const float *label01, size_t n);

#endif
