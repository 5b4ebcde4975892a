/* Wide & deep runs: model spec from model.* keys and the data layout, the local trainer. */
#include "app/sparse/sparse_wd.h"

#include <string.h>

#include "common/rng.h"

/* Bits that hold field indices 0..n_fields-1. */
static unsigned bits_for(uint64_t n_fields)
{
    unsigned b = 0;
    while (b < 64 && (n_fields - 1) >> b)
        b++;
    return b;
}

int pst_wd_job_from_config(const pst_config_t *cfg, const pst_hash_spec_t *hash, size_t batch,
                           pst_wd_job_t *out, pst_err_t *err)
{
    memset(out, 0, sizeof *out);
    pst_wide_deep_spec_t *s = &out->spec;
    int rc = pst_wd_pooling_parse(cfg->model.pooling, &s->pooling);
    if (rc != PST_OK)
        return pst_err_set(err, rc, "model.pooling: '%s' is not sum or mean", cfg->model.pooling);
    if ((rc = pst_modelspec_hidden(&out->hidden, cfg, err)) != PST_OK)
        return rc;
    if (out->hidden.n_layers >= PST_WD_MAX_LAYERS)
        return pst_err_set(err, PST_EINVAL, "model: wide_deep takes at most %d hidden layers",
                           PST_WD_MAX_LAYERS - 1);
    out->dropout_seed = pst_rng_derive((uint64_t)cfg->seed, 200);
    s->dim = (uint32_t)cfg->model.embedding_dim;
    s->n_hidden = out->hidden.n_layers;
    s->max_batch = (int)batch;
    if (hash != NULL) {
        uint64_t n_fields = hash->n_numeric + hash->n_categorical;
        if (n_fields > PST_WD_MAX_FIELDS)
            return pst_err_set(err, PST_EINVAL, "wide_deep: %llu columns, at most %d fields",
                               (unsigned long long)n_fields, PST_WD_MAX_FIELDS);
        if (hash->bits + bits_for(n_fields) > 32)
            return pst_err_set(err, PST_EINVAL,
                               "data.hash_bits %d: wide_deep keeps a table per column, and %llu "
                               "columns of 2^%d buckets exceed 32-bit feature indices; lower "
                               "data.hash_bits to %u or less",
                               hash->bits, (unsigned long long)n_fields, hash->bits,
                               32 - bits_for(n_fields));
        s->n_fields = (uint32_t)n_fields;
        s->field_shift = (uint32_t)hash->bits;
        s->n_raw = hash->numeric == PST_NUMERIC_BUCKET ? 0 : (uint32_t)hash->n_numeric;
    } else {
        s->n_fields = (uint32_t)cfg->model.fields;
    }
    pst_wide_deep_spec_t check;
    pst_wd_job_spec(out, &check);
    pst_wide_deep_t *probe = pst_wide_deep_new(&check, err);
    rc = probe != NULL ? PST_OK : (err->code ? err->code : PST_EINVAL);
    pst_wide_deep_destroy(&probe);
    return rc;
}

void pst_wd_job_spec(const pst_wd_job_t *job, pst_wide_deep_spec_t *out)
{
    *out = job->spec;
    out->hidden = job->hidden.layers;
}

size_t pst_wd_job_dense_params(const pst_wd_job_t *job, pst_err_t *err)
{
    pst_wide_deep_spec_t spec;
    pst_wd_job_spec(job, &spec);
    pst_wide_deep_t *m = pst_wide_deep_new(&spec, err);
    size_t n = m != NULL ? pst_model_n_params(pst_wide_deep_mlp(m)) : 0;
    pst_wide_deep_destroy(&m);
    return n;
}

pst_wd_local_t *pst_wd_job_local(const pst_wd_job_t *job, const pst_sparse_train_opts_t *rows,
                                 const pst_optim_cfg_t *dense, float lr, uint64_t init_seed,
                                 uint64_t dropout_seed, pst_err_t *err)
{
    pst_wide_deep_spec_t spec;
    pst_wd_job_spec(job, &spec);
    pst_wd_local_opts_t o = {.rows = *rows,
                             .dense = *dense,
                             .dense_lr = lr,
                             .dense_seed = init_seed,
                             .dropout_seed = dropout_seed};
    o.rows.spec = (pst_sparse_spec_t){.kind = PST_SPARSE_FM, .n_factors = spec.dim};
    return pst_wd_local_new(&spec, &o, err);
}

pst_wd_remote_t *pst_wd_job_remote(const pst_wd_job_t *job, float lr, float init_scale,
                                   uint64_t init_seed, uint32_t n_workers, uint32_t worker,
                                   pst_err_t *err)
{
    pst_wide_deep_spec_t spec;
    pst_wd_job_spec(job, &spec);
    pst_wd_remote_opts_t o = {.lr = lr,
                              .init_scale = init_scale,
                              .init_seed = init_seed,
                              .dense_seed = init_seed,
                              .dropout_seed = job->dropout_seed,
                              .n_workers = n_workers,
                              .worker = worker};
    return pst_wd_remote_new(&spec, &o, err);
}

int pst_wd_local_step_cb(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    return pst_wd_local_update(ctx, b, loss, err);
}

int pst_wd_local_predict_cb(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    return pst_wd_local_predict(ctx, b, prob, err);
}
