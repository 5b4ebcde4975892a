/* A site's local training rounds: copy the global weights, train, return the difference. */
#include "worker/fed/fedtrain.h"

#include <math.h>
#include <string.h>

#include "common/fed/fedagg.h"
#include "common/optim/optim.h"

int pst_fedtrainer_init(pst_fedtrainer_t *t, const pst_modelspec_t *spec, size_t n_inputs,
                        const pst_train_opts_t *base, const pst_config_t *cfg, pst_err_t *err)
{
    memset(t, 0, sizeof *t);
    t->opts = *base;
    t->opts.epochs = (int)cfg->fed.local_epochs;
    t->opts.sched.total_epochs = t->opts.epochs;
    t->opts.patience = 0;
    t->opts.restore_best = false;
    t->opts.start_clock = 0;
    t->opts.steps_per_epoch = 0;
    t->mu = strcmp(cfg->fed.aggregator, "fedprox") == 0 ? (float)cfg->fed.mu : 0.0f;
    t->lr_decay = cfg->fed.lr_decay;
    t->keep_state = strcmp(cfg->fed.local_state, "keep") == 0;
    t->local = pst_model_new(n_inputs, spec->layers, spec->n_layers, t->opts.batch_size, err);
    if (!t->local)
        return pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "model: ");
    t->n_params = pst_model_n_params(t->local);
    return PST_OK;
}

void pst_fedtrainer_fini(pst_fedtrainer_t *t)
{
    pst_model_destroy(&t->local);
}

/* Transport hooks of a site's training. Alone, the training stays in this process: pull leaves
 * the weights where they are, push takes one local optimizer step. With the site's parameter
 * servers (remote), pull and push go to them and they run the optimizer. Either way the pushed
 * gradient is the loss's plus mu (w - w_global), which is FedProx's local objective,
 * loss + (mu / 2) |w - w_global|^2, exactly: under BSP every worker adds the same term at the
 * same pulled weights, so the servers' average carries it once. */
typedef struct site_ctx {
    pst_fedtrainer_t *t;
    const float *w_global;
    pst_optim_t *optim;              /* alone: the site's optimizer (fresh or kept) */
    const pst_train_hooks_t *remote; /* the servers' pull and push, or NULL */
    double last_loss;
} site_ctx_t;

static int site_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    site_ctx_t *c = ctx;
    return c->remote ? c->remote->pull(c->remote->ctx, params, clock, err) : PST_OK;
}

static int site_push(void *ctx, const float *grads, uint64_t clock, float lr, pst_err_t *err)
{
    site_ctx_t *c = ctx;
    float *w = pst_model_params(c->t->local), *g = (float *)grads; /* the model's gradient arena */
    if (c->t->mu > 0)
        pst_fedprox_grad_add(g, w, c->w_global, c->t->n_params, c->t->mu);
    if (c->remote)
        return c->remote->push(c->remote->ctx, g, clock, lr, err);
    pst_optim_step(c->optim, w, g, lr);
    return PST_OK;
}

static void site_epoch(void *ctx, const pst_epoch_stats_t *stats)
{
    ((site_ctx_t *)ctx)->last_loss = stats->train_loss;
}

static void site_progress(void *ctx, const pst_step_progress_t *progress)
{
    (void)progress;
    site_ctx_t *c = ctx;
    if (c->t->keepalive)
        c->t->keepalive(c->t->keepalive_ctx);
}

static int run_site(pst_fedtrainer_t *t, const pst_rows_t *rows, const float *global,
                    uint64_t round, uint64_t seed, const pst_train_hooks_t *remote,
                    pst_optim_t **kept, float *delta, pst_fedtrain_result_t *res, pst_err_t *err)
{
    memset(res, 0, sizeof *res);
    res->rows = (double)rows->n;
    res->loss = NAN;
    float *w = pst_model_params(t->local);
    memcpy(w, global, t->n_params * sizeof *w);
    pst_train_opts_t o = t->opts;
    o.seed = seed;
    o.sched.base_lr = (float)(t->opts.sched.base_lr * pow(t->lr_decay, round > 1 ? round - 1 : 0));
    site_ctx_t ctx = {t, global, NULL, remote, NAN};
    if (kept && *kept)
        ctx.optim = *kept;
    else if (!remote && !(ctx.optim = pst_optim_new(&o.optim, t->n_params, err)))
        return pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "optimizer: ");
    if (kept)
        *kept = ctx.optim; /* continued next round, diverged or not: the caller frees it */
    pst_train_hooks_t hooks = {.ctx = &ctx,
                               .pull = site_pull,
                               .push = site_push,
                               .on_epoch = site_epoch,
                               .on_progress = site_progress};
    pst_train_result_t r;
    int rc = pst_train_rows(t->local, rows, NULL, &o, &hooks, &r, err);
    /* A kept state stays only after a clean round: a failed or diverged one may have left
     * NaN moments, and the site's next round starts fresh. */
    if (!kept || rc != PST_OK)
        pst_optim_destroy(kept ? kept : &ctx.optim);
    if (rc == PST_ENUMERIC)
        return PST_OK; /* res->ok stays false; err says why */
    if (rc != PST_OK)
        return rc;
    for (size_t i = 0; i < t->n_params; i++)
        delta[i] = w[i] - global[i];
    res->ok = true;
    res->loss = ctx.last_loss;
    res->rows_trained = r.rows_trained;
    res->seconds = r.seconds;
    return PST_OK;
}

int pst_fedtrainer_run(pst_fedtrainer_t *t, const pst_rows_t *rows, const float *global,
                       uint64_t round, uint64_t seed, const pst_train_hooks_t *remote, float *delta,
                       pst_fedtrain_result_t *res, pst_err_t *err)
{
    return run_site(t, rows, global, round, seed, remote, NULL, delta, res, err);
}

int pst_fedtrainer_run_kept(pst_fedtrainer_t *t, const pst_rows_t *rows, const float *global,
                            uint64_t round, uint64_t seed, pst_optim_t **kept, float *delta,
                            pst_fedtrain_result_t *res, pst_err_t *err)
{
    return run_site(t, rows, global, round, seed, NULL, kept, delta, res, err);
}

void pst_fedtrain_site_fini(pst_fedtrain_site_t *fs)
{
    pst_optim_destroy(&fs->optim);
}

int pst_fedtrain_site_begin(pst_fedtrain_site_t *fs, const pst_fedsite_task_t *task, pst_err_t *err)
{
    pst_fedtrainer_t *t = fs->trainer;
    if (task->n != t->n_params)
        return pst_err_set(err, PST_EPROTO, "a task of %zu floats for a model of %zu", task->n,
                           t->n_params);
    t->keepalive = task->keepalive;
    t->keepalive_ctx = task->keepalive_ctx;
    return PST_OK;
}

int pst_fedtrain_site_end(pst_fedtrain_site_t *fs, int rc, const pst_fedtrain_result_t *res,
                          double *samples, double *loss)
{
    fs->trainer->keepalive = NULL;
    if (rc != PST_OK)
        return rc;
    if (!res->ok)
        return PST_ENUMERIC;
    fs->rows_trained += res->rows_trained;
    fs->seconds += res->seconds;
    *samples = res->rows;
    *loss = res->loss;
    return PST_OK;
}

int pst_fedtrain_hook(void *ctx, pst_fedsite_t *site, const pst_fedsite_task_t *task, float *delta,
                      double *samples, double *loss, pst_err_t *err)
{
    (void)site;
    pst_fedtrain_site_t *fs = ctx;
    int rc = pst_fedtrain_site_begin(fs, task, err);
    if (rc != PST_OK)
        return rc;
    pst_fedtrain_result_t res;
    pst_optim_t **kept = fs->trainer->keep_state ? &fs->optim : NULL;
    rc = pst_fedtrainer_run_kept(fs->trainer, &fs->rows, task->global, task->round, task->seed,
                                 kept, delta, &res, err);
    return pst_fedtrain_site_end(fs, rc, &res, samples, loss);
}
