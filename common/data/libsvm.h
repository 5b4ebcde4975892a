/* LIBSVM / SVMlight reader: "label idx:val ..." lines into a CSR sparse dataset. */
#ifndef PST_COMMON_DATA_LIBSVM_H
#define PST_COMMON_DATA_LIBSVM_H

#include "common/data/dataload.h"
#include "common/data/dataset.h"
#include "common/err.h"

/* Reads spec->path (plain or gzip) into a new CSR dataset (caller owns *out); x is NULL.
 * Indices are 1-based and strictly increasing in the file, 0-based in col_idx; n_features is the
 * largest index seen (densify with a larger width to match another file). Text after '#' is a
 * comment. Labels follow spec->task, spec->n_classes and spec->class_values: classification maps
 * the distinct label values (-1/+1, 0/1, 1..K) to class indices in sorted order.
 * Errors name FILE:LINE and the bad token. */
int pst_libsvm_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err);

#endif
