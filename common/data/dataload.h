/* One entry point for loading a dataset file (CSV, IDX, LIBSVM), plus what the readers share. */
#ifndef PST_COMMON_DATA_DATALOAD_H
#define PST_COMMON_DATA_DATALOAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"

typedef enum {
    PST_DATA_TASK_AUTO =
        0, /* classification if every target is integral with <= 20 distinct values */
    PST_DATA_TASK_CLASSIFICATION,
    PST_DATA_TASK_REGRESSION
} pst_data_task_t;

/* Most distinct integral targets that auto still calls classification. */
#define PST_DATA_AUTO_MAX_CLASSES 20

typedef struct pst_data_spec {
    const char *path;        /* the data file; IDX: the images file. Plain or gzip-compressed. */
    const char *format;      /* "csv", "idx", "libsvm" (or "svmlight"); NULL or "" = infer */
    const char *target;      /* CSV: target column name; NULL or "" = the last column */
    const char *labels_path; /* IDX: labels file; NULL = path with "images-idx3" -> "labels-idx1" */
    pst_data_task_t task;
    int n_classes; /* expected class count, 0 = any. Implies classification under auto. */
    /* Optional class mapping to reuse (e.g. the training file's class_values when loading its
     * test file), so that class indices agree across files. Sorted ascending. A label not in
     * the list is an error. NULL = build the mapping from this file's labels. */
    const double *class_values; // (n_class_values)
    int n_class_values;
    /* Threads parsing a LIBSVM or hashed TSV text (data.read_threads): 0 = the online cores
     * (one per MiB of text at most), 1 = serial. The rows are the same for every count. */
    unsigned read_threads;
    /* CSV: text class labels to reuse (the training file's, sorted, n_class_values of them), like
     * class_values for numeric labels; NULL = this file's. */
    const char *const *class_names;
    /* CSV: column selection and types; NULL = every column but the target, types detected. */
    const struct pst_table_opts *table;
    /* CSV: a file without the target column is read unlabelled (every y 0, the classes of
     * class_values / class_names) instead of refused: rows to predict. */
    bool target_optional;
} pst_data_spec_t;

/* Loads spec->path into a new dataset: dense for CSV and IDX, CSR sparse for LIBSVM.
 * Returns PST_OK and *out (caller owns), or a negative code with err naming the file. */
int pst_data_load(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err);

/* The reader that would be used for spec: "csv", "idx" or "libsvm". Infers from the file name,
 * then from the first line. Returns PST_OK or an error naming the file. */
int pst_data_infer_format(const pst_data_spec_t *spec, const char **format, pst_err_t *err);

/* Reads a whole file, gzip-compressed or not, into a NUL-terminated buffer (caller frees). Text
 * only: a line longer than PST_DATA_MAX_LINE (a device like /dev/zero, a binary file) or content
 * larger than half the machine's memory is refused with the byte where reading stopped. */
#define PST_DATA_MAX_LINE ((size_t)16 << 20)

/* The buffer a reader streams path through, at most max bytes: the file's size on disk rounded up
 * to a power of two, from PST_DATA_MIN_BUFFER, so that a small file is not read through megabytes
 * of buffers (each a fresh mapping to fault in). Only the speed depends on it. */
#define PST_DATA_MIN_BUFFER ((size_t)16 << 10)
size_t pst_data_buffer_bytes(const char *path, size_t max);
int pst_data_read_file(const char *path, char **buf, size_t *len, pst_err_t *err);

/* For the readers: resolves the task from spec and turns raw targets into d->y, d->task,
 * d->n_classes and d->class_values (see pst_data_spec_t). raw: (d->n_rows) original values;
 * lines: (d->n_rows) source line of each row for messages, or NULL; path names the file. */
int pst_data_set_targets(pst_dataset_t *d, const double *raw, const size_t *lines,
                         const pst_data_spec_t *spec, const char *path, pst_err_t *err);

/* CSR arrays a sparse reader filled, with the label of each row as written. */
typedef struct pst_data_csr {
    size_t n_rows;
    size_t n_features;
    size_t *row_ptr;   // (n_rows + 1)
    uint32_t *col_idx; // (nnz) 0-based
    float *val;        // (nnz)
    double *raw;       // (n_rows) labels as written
    size_t *lines;     // (n_rows) source line of each row for messages, or NULL
} pst_data_csr_t;

/* For the sparse readers: moves row_ptr, col_idx and val of csr into a new CSR dataset (caller
 * owns *out; the three are NULL in csr afterwards, raw and lines stay the caller's) and sets its
 * targets from raw as pst_data_set_targets does. "PATH: no data rows" when n_rows is 0. */
int pst_data_from_csr(pst_data_csr_t *csr, const pst_data_spec_t *spec, const char *path,
                      pst_dataset_t **out, pst_err_t *err);

#endif
