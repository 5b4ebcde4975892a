/* The model file of a sparse run: model.pst in the run directory from the trained rows (and
 * wide & deep's deep stack), with its size and nonzero rows in the report. */
#ifndef PST_APP_SPARSE_SPARSE_SAVE_H
#define PST_APP_SPARSE_SPARSE_SAVE_H

#include "app/sparse/sparse_run.h"
#include "common/err.h"
#include "worker/model/sparse_model.h"
#include "worker/model/wide_deep.h"

/* Writes RUN_DIR/model.pst (atomically) from the trained rows and bias, or from a wide & deep
 * model's rows and deep stack (wd non-NULL: bias is not used), with the hashing of run->job.
 * Sets run->sparse.nonzero_rows and run->sparse.model_file_bytes. A distributed run passes the
 * rows it pulled from the servers into a local model. */
int pst_sparse_save_model(pst_sparse_run_t *run, const pst_sparse_model_t *rows, float bias,
                          pst_wide_deep_t *wd, pst_err_t *err);

#endif
