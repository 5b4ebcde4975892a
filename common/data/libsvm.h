/* LIBSVM / SVMlight reader: "label idx:val ..." lines into a CSR sparse dataset. */
#ifndef PST_COMMON_DATA_LIBSVM_H
#define PST_COMMON_DATA_LIBSVM_H

#include <stddef.h>
#include <stdint.h>

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

/* Entries a line of len bytes can hold at most (each takes "i:v" and a blank before it, after a
 * label): room enough for pst_libsvm_parse_line. */
static inline size_t pst_libsvm_max_entries(size_t len)
{
    return len / 4 + 1;
}

/* Parses one line s[0..len) (without its '\n'; text after '#' is a comment), the one LIBSVM
 * syntax of every reader: 1 with *label, *nnz entries in idx/val (0-based, strictly increasing;
 * room for as many entries as the line has ':', pst_libsvm_max_entries(len) always suffices),
 * 0 for a blank or comment-only line, or PST_EFORMAT naming PATH:LINE_NO and the bad token. */
int pst_libsvm_parse_line(const char *s, size_t len, double *label, uint32_t *idx, float *val,
                          size_t *nnz, const char *path, size_t line_no, pst_err_t *err);

#endif
