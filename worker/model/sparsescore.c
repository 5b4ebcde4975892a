/* Sparse scorer: the batch's unique keys found by binary search in the file's sorted keys, their
 * rows gathered (zeros for absent keys) and passed to the same forward training evaluated with. */
#include "worker/model/sparsescore.h"

#include <stdlib.h>
#include <string.h>

struct pst_sparse_scorer {
    const pst_sparsefile_t *sf;
    uint32_t width;
    pst_wide_deep_t *wd; /* wide_deep, else NULL */
    size_t cap;          /* nnz the buffers hold */
    uint64_t *keys;      // (cap) the batch's unique keys
    uint32_t *slot;      // (cap) key slot of every nnz
    float *rows;         // (cap, width)
};

pst_sparse_scorer_t *pst_sparse_scorer_new(const pst_sparsefile_t *sf, pst_err_t *err)
{
    pst_sparse_scorer_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        pst_err_set(err, PST_ENOMEM, "sparse scorer: out of memory");
        return NULL;
    }
    self->sf = sf;
    self->width = pst_sparse_row_width(&sf->spec);
    if (sf->type != PST_SPARSEFILE_WIDE_DEEP)
        return self;
    pst_wide_deep_spec_t spec = sf->wd;
    spec.max_batch = 1;
    self->wd = pst_wide_deep_new(&spec, err);
    pst_model_t *mlp = self->wd ? pst_wide_deep_mlp(self->wd) : NULL;
    if (mlp != NULL && pst_model_n_params(mlp) != sf->n_dense)
        pst_err_set(err, PST_EFORMAT, "sparse model: the deep stack has %zu parameters, not %zu",
                    pst_model_n_params(mlp), sf->n_dense);
    else if (mlp != NULL)
        memcpy(pst_model_params(mlp), sf->dense, sf->n_dense * sizeof(float));
    if (mlp == NULL || pst_model_n_params(mlp) != sf->n_dense)
        pst_sparse_scorer_destroy(&self);
    return self;
}

void pst_sparse_scorer_destroy(pst_sparse_scorer_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_sparse_scorer_t *self = *self_p;
    pst_wide_deep_destroy(&self->wd);
    free(self->keys);
    free(self->slot);
    free(self->rows);
    free(self);
    *self_p = NULL;
}

static int reserve(pst_sparse_scorer_t *self, size_t nnz, pst_err_t *err)
{
    if (nnz <= self->cap)
        return PST_OK;
    size_t cap = nnz;
    uint64_t *keys = realloc(self->keys, cap * sizeof *keys);
    if (keys != NULL)
        self->keys = keys;
    uint32_t *slot = realloc(self->slot, cap * sizeof *slot);
    if (slot != NULL)
        self->slot = slot;
    float *rows = realloc(self->rows, cap * self->width * sizeof *rows);
    if (rows != NULL)
        self->rows = rows;
    if (keys == NULL || slot == NULL || rows == NULL)
        return pst_err_set(err, PST_ENOMEM, "sparse scorer: out of memory for %zu entries", nnz);
    self->cap = cap;
    return PST_OK;
}

/* Index of key among the file's keys, or -1. */
static long long find_key(const pst_sparsefile_t *sf, uint64_t key)
{
    size_t lo = 0, hi = sf->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sf->keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sf->n_rows && sf->keys[lo] == key ? (long long)lo : -1;
}

/* rows (n_keys, width): the file's row of each key, zeros for keys it does not hold. */
static void gather(pst_sparse_scorer_t *self, size_t n_keys)
{
    size_t w = self->width;
    for (size_t i = 0; i < n_keys; i++) {
        long long at = find_key(self->sf, self->keys[i]);
        if (at >= 0)
            memcpy(self->rows + i * w, self->sf->rows + (size_t)at * w, w * sizeof(float));
        else
            memset(self->rows + i * w, 0, w * sizeof(float));
    }
}

int pst_sparse_scorer_predict(pst_sparse_scorer_t *self, const pst_sparse_batch_t *b, float *prob,
                              pst_err_t *err)
{
    int rc = pst_sparse_batch_check(b, err);
    size_t nnz = pst_sparse_batch_nnz(b), n_keys = 0;
    if (rc == PST_OK)
        rc = reserve(self, nnz ? nnz : 1, err);
    if (rc == PST_OK)
        rc = pst_sparse_batch_keys(b, self->keys, &n_keys, self->slot, err);
    if (rc != PST_OK)
        return rc;
    gather(self, n_keys);
    if (self->wd != NULL)
        return pst_wide_deep_predict(self->wd, b, self->slot, self->rows, n_keys, prob, err);
    pst_sparse_weights_t w = {.rows = self->rows, .n_keys = n_keys, .bias = self->sf->bias};
    return pst_sparse_predict(&self->sf->spec, b, self->slot, &w, prob, err);
}
