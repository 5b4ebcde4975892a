/* Typed tables: a CSV file read into a dataset of raw columns (numbers, booleans, dates as day
 * counts, categories as codes) with the schema that says what each column holds. */
#ifndef PST_COMMON_DATA_TABLE_H
#define PST_COMMON_DATA_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/data/cells.h"
#include "common/data/dataset.h"
#include "common/err.h"

/* One column of a raw dataset. In x a categorical cell holds the index of its text in vocab
 * (missing cells share the value "", which is in vocab when the column has any); a date holds
 * its day count since 1970-01-01; a boolean 0 or 1; a number itself; NaN marks a missing cell. */
typedef struct pst_table_col {
    char *name;
    pst_col_type_t type;
    char **vocab; // (n_vocab) categorical: the column's distinct values, first appearance first
    size_t n_vocab;
} pst_table_col_t;

/* The schema of a raw dataset, shared (reference-counted) by the datasets taken from it. */
typedef struct pst_table {
    int refs;
    size_t n_cols;
    pst_table_col_t *cols; // (n_cols), column j describes feature j of the dataset
} pst_table_t;

/* How columns are chosen and typed (the data.* keys). Names are matched exactly. */
typedef struct pst_table_opts {
    const char *const *categorical; /* read as categories even when they look numeric */
    int n_categorical;
    const char *const *numeric; /* read as numbers: a cell that is not one is an error */
    int n_numeric;
    const char *const *features; /* keep only these (empty: every column but the target) */
    int n_features;
    const char *const *drop; /* leave these out */
    int n_drop;
    bool drop_dates;       /* date columns are left out rather than kept */
    const char *id_column; /* an identifier, never a feature; NULL or "" = none */
    /* The training file's schema: its columns keep their types here (a test file whose
     * categories happen to look numeric still reads them as categories). NULL = detect. */
    const struct pst_table *schema;
} pst_table_opts_t;

/* A schema of n_cols zeroed columns with one reference. Caller owns the result. */
pst_table_t *pst_table_new(size_t n_cols);
pst_table_t *pst_table_ref(pst_table_t *t);
void pst_table_unref(pst_table_t **self_p);

/* Rewrites the category codes of d (a raw dataset read like into's data: the same columns in the
 * same order) as codes of into's vocabularies, adding the values into has not seen, so that d's
 * rows can join into's dataset. */
int pst_table_adopt_codes(pst_table_t *into, pst_dataset_t *d, pst_err_t *err);

/* Most distinct values a categorical column may have in a file (codes are exact in a float). */
#define PST_TABLE_MAX_VOCAB (1u << 24)

#endif
