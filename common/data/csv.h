/* CSV reader: a header row, typed feature columns and one named target column. */
#ifndef PST_COMMON_DATA_CSV_H
#define PST_COMMON_DATA_CSV_H

#include "common/data/dataload.h"
#include "common/data/dataset.h"
#include "common/err.h"

/* Reads spec->path (plain or gzip) into a new dense dataset of raw columns with its schema in
 * d->table (caller owns *out; see common/data/table.h). Uses spec->target (NULL or "" = last
 * column), spec->task, spec->n_classes, spec->class_values or spec->class_names, and spec->table
 * (column selection and types). Cells that are empty, "NA", "NaN", "N/A" (any case) or "?" are
 * missing; a missing target is an error. A target with any text value is a set of class names
 * (sorted; d->class_names). RFC 4180 quoting, a UTF-8 BOM, CRLF line ends and blank lines are
 * accepted. Column names must be unique. Errors name FILE:LINE and the column. */
int pst_csv_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err);

#endif
