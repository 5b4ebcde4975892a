/* Local wide & deep training: rows from the sparse store, gradients from the model, optimizer
 * steps on both parts. */
#include "worker/train/wide_deep_local.h"

#include <stdlib.h>

struct pst_wd_local {
    pst_wd_local_opts_t opts;
    pst_wide_deep_t *model;
    pst_sparse_model_t *rows;
    pst_optim_t *dense_optim;
    uint64_t steps;
    size_t grad_cap;
    float *grad; // (grad_cap) gradient of the batch's rows
};

pst_wd_local_t *pst_wd_local_new(const pst_wide_deep_spec_t *spec, const pst_wd_local_opts_t *opts,
                                 pst_err_t *err)
{
    if (opts->rows.spec.kind != PST_SPARSE_FM || opts->rows.spec.n_factors != spec->dim) {
        pst_err_set(err, PST_EINVAL,
                    "wide & deep: the row store must hold factorization-machine rows of %u "
                    "factors",
                    spec->dim);
        return NULL;
    }
    pst_wd_local_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        pst_err_set(err, PST_ENOMEM, "wide & deep: out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->model = pst_wide_deep_new(spec, err);
    if (self->model != NULL)
        self->rows = pst_sparse_model_new(&opts->rows, err);
    if (self->rows != NULL) {
        pst_model_t *mlp = pst_wide_deep_mlp(self->model);
        self->dense_optim = pst_optim_new(&opts->dense, pst_model_n_params(mlp), err);
        pst_wide_deep_init_dense(self->model, opts->dense_seed);
    }
    if (self->dense_optim == NULL)
        pst_wd_local_destroy(&self);
    return self;
}

void pst_wd_local_destroy(pst_wd_local_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_wd_local_t *self = *self_p;
    pst_wide_deep_destroy(&self->model);
    pst_sparse_model_destroy(&self->rows);
    pst_optim_destroy(&self->dense_optim);
    free(self->grad);
    free(self);
    *self_p = NULL;
}

static int grad_reserve(pst_wd_local_t *self, size_t n, pst_err_t *err)
{
    if (n <= self->grad_cap)
        return PST_OK;
    float *g = realloc(self->grad, n * sizeof *g);
    if (g == NULL)
        return pst_err_set(err, PST_ENOMEM, "wide & deep: out of memory for %zu gradients", n);
    self->grad = g;
    self->grad_cap = n;
    return PST_OK;
}

int pst_wd_local_update(pst_wd_local_t *self, const pst_sparse_batch_t *b, double *loss,
                        pst_err_t *err)
{
    const float *rows;
    const uint32_t *slot;
    size_t n_keys = 0, width = pst_wide_deep_row_width(self->model);
    int rc = pst_sparse_model_lookup(self->rows, b, true, &rows, &slot, &n_keys, err);
    if (rc == PST_OK)
        rc = grad_reserve(self, n_keys * width, err);
    pst_rng_t dropout;
    pst_rng_init(&dropout, pst_rng_derive(self->opts.dropout_seed, self->steps));
    if (rc == PST_OK)
        rc =
            pst_wide_deep_step(self->model, b, slot, rows, n_keys, &dropout, self->grad, loss, err);
    if (rc != PST_OK)
        return rc;
    pst_sparse_model_apply(self->rows, self->grad, n_keys);
    pst_model_t *mlp = pst_wide_deep_mlp(self->model);
    pst_optim_step(self->dense_optim, pst_model_params(mlp), pst_model_grads(mlp),
                   self->opts.dense_lr);
    self->steps++;
    return PST_OK;
}

int pst_wd_local_predict(pst_wd_local_t *self, const pst_sparse_batch_t *b, float *prob,
                         pst_err_t *err)
{
    const float *rows;
    const uint32_t *slot;
    size_t n_keys = 0;
    int rc = pst_sparse_model_lookup(self->rows, b, false, &rows, &slot, &n_keys, err);
    if (rc == PST_OK)
        rc = pst_wide_deep_predict(self->model, b, slot, rows, n_keys, prob, err);
    return rc;
}

pst_wide_deep_t *pst_wd_local_model(pst_wd_local_t *self)
{
    return self->model;
}

pst_sparse_model_t *pst_wd_local_rows(pst_wd_local_t *self)
{
    return self->rows;
}
