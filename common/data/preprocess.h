/* Feature preprocessing fitted on a training set: pixel scaling, imputation, scaling, dedup. */
#ifndef PST_COMMON_DATA_PREPROCESS_H
#define PST_COMMON_DATA_PREPROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/data/dataset.h"
#include "common/err.h"

typedef enum { PST_SCALER_NONE = 0, PST_SCALER_STANDARD, PST_SCALER_MINMAX } pst_scaler_t;
typedef enum { PST_IMPUTE_MEAN = 0, PST_IMPUTE_MEDIAN, PST_IMPUTE_MOST_FREQUENT } pst_impute_t;

typedef struct pst_preproc_opts {
    pst_scaler_t scaler;
    pst_impute_t impute;
    bool pixel_scale; /* multiply by 1/255 first (images stored as 0..255) */
} pst_preproc_opts_t;

/* Applied to every cell x of column j:
 *   v = x * pixel_scale; if v is NaN then v = fill[j]; result = (v - shift[j]) * scale[j]. */
typedef struct pst_preproc {
    size_t n_features;
    float pixel_scale; /* 1 when off */
    float *shift;      // (n_features) mean (standard) or min (minmax), 0 for none
    float *scale;      // (n_features) 1/std or 1/(max - min); 1 for none or a constant column
    float *fill;       // (n_features) imputed value, in pixel-scaled units
} pst_preproc_t;

/* Allocates an identity transform (shift 0, scale 1, fill 0, pixel_scale 1). Caller owns. */
pst_preproc_t *pst_preproc_new(size_t n_features);
void pst_preproc_destroy(pst_preproc_t **self_p);

/* Fits on the dense training set: fill from its non-missing values, then scaler statistics over
 * the imputed column (population std), as an imputer followed by a scaler would. A column with
 * no values gets fill 0. Returns PST_OK and a new *out (caller owns). */
int pst_preproc_fit(const pst_dataset_t *train, const pst_preproc_opts_t *opts, pst_preproc_t **out,
                    pst_err_t *err);

/* The same fit over rows[0..n) of train only (repeats count as often as they appear; NULL: the
 * first n rows), for folds and bootstrap samples that are index lists over one dataset. */
int pst_preproc_fit_rows(const pst_dataset_t *train, const size_t *rows, size_t n,
                         const pst_preproc_opts_t *opts, pst_preproc_t **out, pst_err_t *err);

/* Transforms n_rows contiguous rows (n_rows, p->n_features) in place. Stops at the first
 * non-finite result with PST_ENUMERIC and its position in *bad_row, *bad_col. */
int pst_preproc_apply_block(const pst_preproc_t *p, float *x, size_t n_rows, size_t *bad_row,
                            size_t *bad_col);

/* The same for rows holding only columns cols[0..n_cols) of the features (x: (n_rows, n_cols));
 * cols NULL: every column, as pst_preproc_apply_block. */
int pst_preproc_apply_cols(const pst_preproc_t *p, float *x, size_t n_rows, const size_t *cols,
                           size_t n_cols, size_t *bad_row, size_t *bad_col);

/* Transforms the dense dataset d in place with p's statistics. Returns PST_ENUMERIC naming the
 * first row and column whose result is not finite (the data is still fully transformed). */
int pst_preproc_apply(const pst_preproc_t *p, pst_dataset_t *d, pst_err_t *err);

/* PST_OK if every feature (dense or sparse) and target of d is finite, else PST_ENUMERIC naming
 * the first 1-based row and the column (by name when known). */
int pst_preproc_check_finite(const pst_dataset_t *d, pst_err_t *err);

/* Removes rows equal in every feature and the label to an earlier row (NaN equals NaN, -0 equals
 * 0), keeping the first, preserving order. Dense or sparse. Hashing, O(n_rows * width). */
int pst_preproc_drop_duplicates(pst_dataset_t *d, size_t *n_dropped, pst_err_t *err);

#endif
