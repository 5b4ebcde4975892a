/* eval, predict and info on a sparse model file (model.type sparse_lr, fm, wide_deep): DATA is
 * streamed in chunks of rows and turned into keys with the hashing the file holds. */
#ifndef PST_APP_SPARSE_SPARSE_SCORE_H
#define PST_APP_SPARSE_SPARSE_SCORE_H

#include <stdbool.h>

#include "common/err.h"
#include "common/eval/metrics.h"

/* Rows of DATA held at once while scoring. */
enum { PST_SPARSE_SCORE_ROWS = 4096 };

/* Scores every row of data with the model at path: *m = log-loss, ROC-AUC and calibration.
 * Memory: the model, one chunk of rows, and a probability and a label (8 bytes) per row, which
 * the exact ROC-AUC needs. */
int pst_sparse_score_metrics(const char *path, const char *data, pst_binary_metrics_t *m,
                             pst_err_t *err);

/* eval: prints the metrics and writes them to json (NULL: none) atomically. */
int pst_sparse_score_eval(const char *path, const char *data, const char *json, pst_err_t *err);

/* predict: one probability per row of data, in input order, one line each and no header, to out
 * (written atomically) or to standard output when out is NULL. */
int pst_sparse_score_predict(const char *path, const char *data, const char *out, pst_err_t *err);

/* info: prints the model's type, input hashing, rows, deep stack, file size and checksum (and
 * with params every row as KEY VALUES...). */
int pst_sparse_score_info(const char *path, bool params, pst_err_t *err);

#endif
