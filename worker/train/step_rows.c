/* The per-step arrays of the parameter-server trainers. */
#include "worker/train/step_rows.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

int pst_step_rows_reserve(pst_step_rows_t *s, size_t nnz, uint32_t width, pst_err_t *err)
{
    if (nnz <= s->cap)
        return PST_OK;
    int rc = pst_array_resize((void **)&s->keys, nnz, sizeof(uint64_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&s->slot, nnz, sizeof(uint32_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&s->rows, nnz, width * sizeof(float));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&s->grad, nnz, width * sizeof(float));
    if (rc != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for a batch of %zu entries", nnz);
    s->cap = nnz;
    return PST_OK;
}

void pst_step_rows_fini(pst_step_rows_t *s)
{
    free(s->keys);
    free(s->slot);
    free(s->rows);
    free(s->grad);
    pst_sparse_keysort_fini(&s->sort);
    memset(s, 0, sizeof *s);
}

int pst_step_rows_keys(pst_step_rows_t *s, const pst_sparse_batch_t *b, size_t *n_keys,
                       pst_err_t *err)
{
    int rc = pst_sparse_batch_check(b, err);
    if (rc != PST_OK)
        return rc;
    size_t nnz = pst_sparse_batch_nnz(b);
    if (nnz > UINT32_MAX)
        return pst_err_set(err, PST_ERANGE, "sparse batch: %zu entries exceed 2^32", nnz);
    if (nnz > s->cap)
        return pst_err_set(err, PST_EINVAL, "step rows: %zu entries, room for %zu", nnz, s->cap);
    if (pst_sparse_keysort_reserve(&s->sort, nnz) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sparse batch: no memory for %zu entries", nnz);
    *n_keys = pst_sparse_keysort_collect(&s->sort, b, s->keys, s->slot);
    return PST_OK;
}
