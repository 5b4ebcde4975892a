/* In-memory datasets: a dense (or CSR sparse) feature matrix with labels or targets. */
#ifndef PST_COMMON_DATA_DATASET_H
#define PST_COMMON_DATA_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum { PST_TASK_CLASSIFICATION = 0, PST_TASK_REGRESSION = 1 } pst_task_t;

struct pst_table;

typedef struct pst_dataset {
    size_t n_rows;
    size_t n_features;
    pst_task_t task;

    /* Dense storage; NaN marks a missing cell. NULL when the set is sparse. */
    float *x; // (n_rows, n_features), row-major

    /* CSR storage (LIBSVM input); NULL when dense. Column indices are 0-based. */
    size_t *row_ptr;   // (n_rows + 1)
    uint32_t *col_idx; // (nnz)
    float *val;        // (nnz)

    /* Classification: class index 0..n_classes-1 stored exactly as a float.
     * Regression: the target value. */
    float *y; // (n_rows)

    int n_classes;        /* 0 for regression */
    double *class_values; /* (n_classes) original label value of each class index, sorted; may be
                             NULL */
    char **feature_names; /* (n_features) or NULL */
    char *target_name;    /* or NULL */
    char **class_names;   /* (n_classes) text labels as written, sorted, or NULL (numeric labels) */
    /* Typed CSV: the schema of the raw columns (common/data/table.h), shared by the datasets
     * taken from this one; NULL when the columns are plain features. */
    struct pst_table *table;
} pst_dataset_t;

/* Allocates a dense dataset with zeroed x and y. Caller owns the result. */
pst_dataset_t *pst_dataset_new(size_t n_rows, size_t n_features, pst_task_t task);
void pst_dataset_destroy(pst_dataset_t **self_p);

static inline bool pst_dataset_is_sparse(const pst_dataset_t *d)
{
    return d->row_ptr != NULL;
}

/* New dataset holding rows idx[0..n) of src (dense or sparse), same metadata. Caller owns. */
pst_dataset_t *pst_dataset_take_rows(const pst_dataset_t *src, const size_t *idx, size_t n);

/* Exchanges the contents of a and b (a dataset replaced in place by a transformed copy). */
void pst_dataset_swap(pst_dataset_t *a, pst_dataset_t *b);

/* Appends the rows of src (dense, same width) to dense dst in place; dst keeps its metadata.
 * On failure dst is unchanged. */
int pst_dataset_append_rows(pst_dataset_t *dst, const pst_dataset_t *src, pst_err_t *err);

/* Converts sparse storage to dense in place (no-op when dense). n_features may grow the width
 * (e.g. to match a training set); it is an error if a column index is >= n_features. 0 = keep. */
/* The widest a sparse dataset may become when densified for a dense model: past it the dense
 * copy would be mostly zeros and gigabytes large; such data is for the sparse models. */
#define PST_DATASET_MAX_DENSE_WIDTH ((size_t)1 << 18)
int pst_dataset_densify(pst_dataset_t *d, size_t n_features, pst_err_t *err);

#endif
