/* The job of a sparse training run: the model, optimizer and data layout the configuration
 * describes, checked as the servers would check them. */
#include "app/sparse/sparse_job.h"

#include <string.h>

#include "app/session.h"
#include "app/sparse/sparse_tsv.h"
#include "common/log.h"
#include "common/rng.h"

int pst_sparse_job_from_config(const pst_config_t *cfg, pst_sparse_job_t *j, pst_err_t *err)
{
    memset(j, 0, sizeof *j);
    j->type = cfg->model.type;
    bool fm = strcmp(cfg->model.type, "fm") == 0;
    j->wide_deep = strcmp(cfg->model.type, "wide_deep") == 0;
    j->spec.kind = fm || j->wide_deep ? PST_SPARSE_FM : PST_SPARSE_LR;
    j->spec.n_factors = fm             ? (uint32_t)cfg->model.factors
                        : j->wide_deep ? (uint32_t)cfg->model.embedding_dim
                                       : 0;
    const char *opt = cfg->optimizer.name;
    if (strcmp(opt, "ftrl") != 0 && strcmp(opt, "adagrad") != 0)
        return pst_err_set(err, PST_EINVAL,
                           "model.type %s trains with optimizer.name ftrl or adagrad, not %s",
                           j->type, opt);
    if (!(cfg->optimizer.lr > 0))
        return pst_err_set(err, PST_EINVAL, "optimizer.lr must be above 0 for model.type %s",
                           j->type);
    j->ftrl = strcmp(opt, "ftrl") == 0;
    pst_session_optim_cfg(cfg, &j->optim);
    /* The servers' own check of the optimizer settings, made here so a local run meets it too. */
    pst_optim_t *probe = pst_optim_new(&j->optim, 1, err);
    if (probe == NULL)
        return err != NULL && err->code != 0 ? err->code : PST_EINVAL;
    pst_optim_destroy(&probe);
    j->lr = (float)cfg->optimizer.lr;
    j->init_scale = fm || j->wide_deep ? (float)cfg->model.init_scale : 0.0f;
    j->init_seed = pst_rng_derive((uint64_t)cfg->seed, 0);
    j->shuffle_seed = pst_rng_derive((uint64_t)cfg->seed, 100);
    j->epochs = (int)cfg->train.epochs;
    j->batch = (size_t)cfg->train.batch_size;
    j->shuffle = cfg->train.shuffle;
    if (!j->wide_deep && (cfg->model.hidden.n > 0 || cfg->model.layers.n > 0))
        pst_warn("model.type %s: model.hidden and model.layers are not used", j->type);
    j->patience = (int)cfg->train.patience;
    j->min_delta = cfg->train.min_delta;
    j->restore_best = cfg->train.restore_best;
    if (strcmp(cfg->schedule.name, "constant") != 0)
        pst_warn("model.type %s: the learning rate stays constant (schedule.* is not used)",
                 j->type);
    j->tsv = pst_click_is_tsv(cfg, cfg->data.train);
    int rc = j->tsv ? pst_click_hash_spec(cfg, j->wide_deep, &j->hash, err) : PST_OK;
    if (rc == PST_OK && j->wide_deep)
        rc = pst_wd_job_from_config(cfg, j->tsv ? &j->hash : NULL, j->batch, &j->wd, err);
    return rc == PST_OK ? pst_sparse_spec_check(&j->spec, err) : rc;
}

void pst_sparse_job_local_opts(const pst_sparse_job_t *j, pst_sparse_train_opts_t *o)
{
    pst_sparse_train_opts_defaults(o, j->spec.kind);
    float per_row = 1.0f / (float)j->batch;
    o->spec = j->spec;
    o->optimizer = j->ftrl ? PST_SPARSE_OPT_FTRL : PST_SPARSE_OPT_ADAGRAD;
    o->ftrl = (pst_ftrl_cfg_t){.alpha = j->lr,
                               .beta = j->optim.ftrl_beta * per_row,
                               .l1 = j->optim.ftrl_l1 * per_row,
                               .l2 = j->optim.ftrl_l2 * per_row};
    o->adagrad = (pst_ftrl_adagrad_cfg_t){
        .lr = j->lr, .eps = j->optim.eps * per_row, .l2 = j->optim.weight_decay * per_row};
    o->init_scale = j->init_scale;
    o->init_seed = j->init_seed;
}

void pst_sparse_job_local_dense_opts(const pst_sparse_job_t *j, pst_optim_cfg_t *o)
{
    float per_row = 1.0f / (float)j->batch;
    *o = j->optim;
    o->ftrl_beta *= per_row;
    o->ftrl_l1 *= per_row;
    o->ftrl_l2 *= per_row;
    o->eps *= per_row;
    o->weight_decay *= per_row;
}
