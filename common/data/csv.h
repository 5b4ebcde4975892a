/* CSV reader: a header row, numeric feature columns and one named target column. */
#ifndef PST_COMMON_DATA_CSV_H
#define PST_COMMON_DATA_CSV_H

#include "common/data/dataload.h"
#include "common/data/dataset.h"
#include "common/err.h"

/* Reads spec->path (plain or gzip) into a new dense dataset (caller owns *out).
 * Uses spec->target (NULL or "" = last column), spec->task, spec->n_classes and
 * spec->class_values. Cells that are empty, "NA", "NaN", "N/A" (any case) or "?" are missing and
 * become NaN features; a missing target is an error. Quoted fields, CRLF line endings and blank
 * lines are accepted. Errors name FILE:LINE and the column. */
int pst_csv_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err);

#endif
