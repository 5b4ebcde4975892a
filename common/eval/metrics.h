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

/* ROC-AUC from scores of the positive class (ties count one half). NaN if a class is absent. */
double pst_roc_auc(const float *score, const float *label01, size_t n);

#endif
