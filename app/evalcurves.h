/* The curves a report draws of a classifier's evaluation (ROC, precision-recall, reliability),
 * computed from all rows at the end of training and stored in report.json beside the metrics,
 * and the bounded test_predictions.csv of the test split. */
#ifndef PST_APP_EVALCURVES_H
#define PST_APP_EVALCURVES_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define PST_EVALCURVES_MAX_POINTS 400 /* a drawn curve keeps about twice this many points */
#define PST_EVALCURVES_BINS 10        /* reliability bins */
#define PST_EVALCURVES_GRID 101       /* rates at which the macro average is taken */

/* Adds "curves" to obj (a part of report.json: "val" or "test") for a classification of n rows:
 * out (n, n_out) model outputs (class probabilities, or for n_out == 1 the probability of class
 * 1), labels (n) class indices. A binary task gets class 1 against class 0; more classes get
 * each class against the rest and their macro average. Each class: auc (equal to the roc_auc the
 * metrics report), average_precision, roc {fpr, tpr}, pr {recall, precision}; calibration
 * {of, mean_pred, observed, count, brier, ece}; thinned says whether points were dropped for
 * drawing (the figures always come from every row). Nothing for fewer than 2 classes. */
int pst_evalcurves_add(cJSON *obj, int n_classes, size_t n, const float *out, int n_out,
                       const float *labels, pst_err_t *err);

/* Writes path atomically as CSV: a header "label,p0,p1,..." (classification; one column "p1"
 * for a single output) or "target,prediction", then the first min(n, max_rows) rows of labels
 * and outputs (%.9g: exact for float32). max_rows 0 writes nothing. */
int pst_evalcurves_write_predictions(const char *path, size_t n, const float *out, int n_out,
                                     const float *labels, bool classification, size_t max_rows,
                                     pst_err_t *err);

#endif
