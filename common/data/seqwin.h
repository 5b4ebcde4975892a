/* Sequence windows: a time-ordered dataset cut into samples of consecutive rows, for recurrent
 * models (forecasting, or classifying a window by its last row's target). */
#ifndef PST_COMMON_DATA_SEQWIN_H
#define PST_COMMON_DATA_SEQWIN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/data/dataset.h"
#include "common/err.h"

#define PST_SEQWIN_MAX_COLS 64
#define PST_SEQWIN_TARGET (-1) /* a step column that is the target (y of the row) */

typedef struct pst_seqwin {
    int window;  /* rows per sample */
    int horizon; /* target: y of the row this far after the window's last row (0: that row) */
    int n_cols;
    long cols[PST_SEQWIN_MAX_COLS]; /* each step's columns: feature index or PST_SEQWIN_TARGET */
    bool open_end; /* predicting: a window at every row, its target 0 past the range (the
                      forecasts a model is for: nothing reads those targets); set after
                      pst_seqwin_init */
} pst_seqwin_t;

/* Resolves the step columns of src by name (data.sequence_columns; target names the target
 * column). No names: every numeric or boolean column, and the target when horizon > 0. A name
 * src lacks, or a categorical or date column, is an error naming it. */
int pst_seqwin_init(pst_seqwin_t *w, const pst_dataset_t *src, int window, int horizon,
                    const char *const *names, int n_names, const char *target, pst_err_t *err);

/* The windows inside rows [first, first + n) of src (dense): sample i holds rows first + i ..
 * first + i + window - 1 as (window, n_cols) row-major, and the target of row
 * first + i + window - 1 + horizon, so neither a window nor its target leaves the range.
 * A range too short for one window is an error naming part. Caller owns *out (plain numeric
 * features, src's task and classes). */
int pst_seqwin_cut(const pst_seqwin_t *w, const pst_dataset_t *src, size_t first, size_t n,
                   const char *part, pst_dataset_t **out, pst_err_t *err);

/* Samples the rows [first, first + n) give: n - window - horizon + 1 (open_end: n - window + 1),
 * or 0. */
size_t pst_seqwin_count(const pst_seqwin_t *w, size_t n);

#endif
