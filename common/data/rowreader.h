/* Row reader for scoring: a CSV file streamed in chunks, its columns matched to a model's inputs
 * by name (order never matters, extra columns are ignored), encoded into feature rows, with the
 * labels and an id column when the file has them. */
#ifndef PST_COMMON_DATA_ROWREADER_H
#define PST_COMMON_DATA_ROWREADER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/data/dataset.h"
#include "common/data/encoder.h"
#include "common/err.h"

typedef struct pst_rowreader_opts {
    const pst_encoder_t *encoder; /* the model's inputs; must outlive the reader */
    const char *target;           /* label column; NULL or "" = none */
    bool need_target;             /* a file without the target column is an error (eval) */
    pst_task_t task;
    int n_classes;
    const double *class_values;     // (n_classes) numeric labels, or NULL
    const char *const *class_names; // (n_classes) text labels, or NULL
    const char *id_column;          /* copied through; NULL or "" = none */
} pst_rowreader_opts_t;

typedef struct pst_rowreader pst_rowreader_t;

/* Opens path and reads its header. Fails naming every model input the file lacks (and a
 * missing id or required target column). Caller owns the result. */
pst_rowreader_t *pst_rowreader_open(const char *path, const pst_rowreader_opts_t *opts,
                                    pst_err_t *err);
void pst_rowreader_destroy(pst_rowreader_t **self_p);

/* The file's columns that are neither inputs, target nor id ("a, b"), or NULL when none. */
const char *pst_rowreader_ignored(const pst_rowreader_t *r);
/* Whether the file has the target column (labels are read). */
bool pst_rowreader_has_target(const pst_rowreader_t *r);

/* Up to max_rows next rows: features into x (max_rows, n_features of the encoder), labels into
 * y (class index or target value; left alone without a target column), and with an id column a
 * copy of each id into ids[i] (caller frees each). *n_rows is 0 at the end of the file. Errors
 * name FILE:LINE and the column (a ragged row, a cell not of its column's type, an unknown
 * class label, a missing label). */
int pst_rowreader_next(pst_rowreader_t *r, size_t max_rows, float *x, float *y, char **ids,
                       size_t *n_rows, pst_err_t *err);

#endif
