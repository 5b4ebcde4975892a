/* IDX reader (MNIST / Fashion-MNIST): a uint8 images file plus a uint8 labels file. */
#ifndef PST_COMMON_DATA_IDX_H
#define PST_COMMON_DATA_IDX_H

#include "common/data/dataload.h"
#include "common/data/dataset.h"
#include "common/err.h"

enum {
    PST_IDX_IMAGES_MAGIC = 0x00000803, /* uint8, 3 dimensions: n x rows x cols */
    PST_IDX_LABELS_MAGIC = 0x00000801  /* uint8, 1 dimension: n */
};

/* Reads the images file spec->path and the labels file spec->labels_path (NULL = derived, see
 * pst_idx_labels_path), plain or gzip, into a new dense classification dataset (caller owns
 * *out): n_rows = n, n_features = rows * cols, pixels as raw 0..255 floats, row-major per image.
 * n_classes = max label + 1, or spec->n_classes when given, else spec->n_class_values when
 * spec->class_values is given (a larger label is an error).
 * Errors name the file and the byte offset (in the uncompressed stream). */
int pst_idx_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err);

/* The labels file beside an images file: "images-idx3" replaced by "labels-idx1" (last
 * occurrence). Returns a new string (caller frees) or NULL if the name has no "images-idx3". */
char *pst_idx_labels_path(const char *images_path);

#endif
