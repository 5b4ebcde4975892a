/* Scoring with a sparse model file: the probability of every row of a CSR batch, reading keys the
 * file does not hold as zero rows, exactly as the trained model predicted. */
#ifndef PST_WORKER_MODEL_SPARSESCORE_H
#define PST_WORKER_MODEL_SPARSESCORE_H

#include "common/err.h"
#include "worker/model/sparse_batch.h"
#include "worker/model/sparsefile.h"

typedef struct pst_sparse_scorer pst_sparse_scorer_t;

/* A scorer over sf, which it borrows (sf must outlive it); wide_deep builds its deep stack with
 * the file's parameters. Caller owns the result. */
pst_sparse_scorer_t *pst_sparse_scorer_new(const pst_sparsefile_t *sf, pst_err_t *err);
void pst_sparse_scorer_destroy(pst_sparse_scorer_t **self_p);

/* prob (n_rows) for a batch of any size; labels are not read. */
int pst_sparse_scorer_predict(pst_sparse_scorer_t *self, const pst_sparse_batch_t *b, float *prob,
                              pst_err_t *err);

#endif
