/* libpstrain: load a model file written by pstrain, describe its inputs and outputs, and predict
 * batches of rows whose columns the caller names. Errors are return codes with a message in a
 * caller-given pstrain_error; the library never prints and never exits. A loaded model is
 * read-only: any number of threads may call pstrain_predict on it at once. */
#ifndef PSTRAIN_H
#define PSTRAIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PSTRAIN_API __attribute__((visibility("default")))
#else
#define PSTRAIN_API
#endif

/* Return codes: 0 on success, negative on failure. */
enum {
    PSTRAIN_OK = 0,
    PSTRAIN_ENOMEM = -1,       /* allocation failed */
    PSTRAIN_EINVAL = -2,       /* bad argument (NULL pointer, duplicate column name, ...) */
    PSTRAIN_EIO = -3,          /* the model file cannot be read */
    PSTRAIN_EFORMAT = -4,      /* the model file is corrupt or not a pstrain model */
    PSTRAIN_ERANGE = -6,       /* an index or a number out of range */
    PSTRAIN_ENUMERIC = -10,    /* infinity, or a missing value the model cannot impute */
    PSTRAIN_EMISSING = -20,    /* an input column the model needs was not given */
    PSTRAIN_ETYPE = -21,       /* a cell of the wrong type (text where a number is needed) */
    PSTRAIN_EUNSUPPORTED = -22 /* a model kind this library does not score */
};

/* What went wrong: the code again and a message naming the place (file, column, row). */
typedef struct pstrain_error {
    int code;
    char message[512];
} pstrain_error;

typedef struct pstrain_model pstrain_model;

typedef enum { PSTRAIN_CLASSIFICATION = 0, PSTRAIN_REGRESSION = 1 } pstrain_task;

/* The kind of value an input column takes (values fixed: append only).
 * - NUMERIC: a number, or a string that reads as one.
 * - CATEGORICAL: any string; a value the model did not see in training goes to its "other"
 *   category, as in `pstrain predict`. A number is taken as the text of its shortest decimal
 *   form that reads back exactly (3 is the category "3", 0.5 is "0.5").
 * - BOOLEAN: "yes"/"no", "true"/"false", "y"/"n", "t"/"f" (any case), "1"/"0"; or the numbers
 *   1 and 0 (any other number is an error).
 * - DATE: "YYYY-MM-DD" or "YYYY/MM/DD", optionally followed by a time; or a number of days since
 *   1970-01-01.
 * Models trained on a file without text columns have numeric inputs only. */
typedef enum {
    PSTRAIN_NUMERIC = 0,
    PSTRAIN_CATEGORICAL = 1,
    PSTRAIN_BOOLEAN = 2,
    PSTRAIN_DATE = 3
} pstrain_input_type;

/* One column of a batch, named as the model names its input. Give numbers (NaN: missing) or
 * strings (NULL, "", "NA", "NaN", "N/A" or "?": missing), not both. Strings are read exactly as
 * `pstrain predict` reads the same text in a CSV field, so both give the same bits. A missing
 * number, boolean or date is imputed with the value the model stored at training time; a
 * missing category is a category of its own. */
typedef struct pstrain_column {
    const char *name;
    const double *numbers;      /* (n_rows) or NULL */
    const char *const *strings; /* (n_rows) or NULL */
} pstrain_column;

/* Loads a model file (model.pst, or an ensemble file of pstrain bag/stack). On success *out is
 * the caller's, to release with pstrain_model_free. */
PSTRAIN_API int pstrain_model_load(const char *path, pstrain_model **out, pstrain_error *err);
/* Releases a model; NULL is ignored. No prediction may be running on it. */
PSTRAIN_API void pstrain_model_free(pstrain_model *model);

/* The input columns a prediction needs, in the model's order (the caller's order never matters).
 * Names are those of the training file's header ("x0", "x1", ... for files without one): the
 * raw columns, before any category or date encoding, with the type the training file gave them
 * (detected, or set by data.categorical / data.numeric). */
PSTRAIN_API int pstrain_model_n_inputs(const pstrain_model *model);
PSTRAIN_API const char *pstrain_model_input_name(const pstrain_model *model, int i);
PSTRAIN_API pstrain_input_type pstrain_model_input_type(const pstrain_model *model, int i);

PSTRAIN_API pstrain_task pstrain_model_task(const pstrain_model *model);
/* Number of classes (0 for regression) and the label of class k as the training data wrote it:
 * the text of a text label ("yes", "churned"), else the number as pstrain predict prints it. */
PSTRAIN_API int pstrain_model_n_classes(const pstrain_model *model);
PSTRAIN_API const char *pstrain_model_class_name(const pstrain_model *model, int k);
/* Values per predicted row: n_classes probabilities (classification) or 1 (regression). */
PSTRAIN_API int pstrain_model_n_outputs(const pstrain_model *model);

/* Predicts n_rows rows given as n_columns named columns. Columns the model does not take are
 * ignored; a missing one is an error naming every missing input. out (n_rows * n_outputs,
 * row-major) receives the class probabilities or the predicted value; classes (n_rows, or NULL)
 * receives the index of each row's predicted class (classification only). On failure nothing
 * is promised about out. */
PSTRAIN_API int pstrain_predict(const pstrain_model *model, const pstrain_column *columns,
                                int n_columns, size_t n_rows, double *out, int *classes,
                                pstrain_error *err);

/* A short text for a return code. */
PSTRAIN_API const char *pstrain_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
