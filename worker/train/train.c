/* The training loop over mini-batches, locally or against parameter servers through hooks. */
#include "worker/train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/train/early_stop.h"
#include "worker/train/rejoin.h"

void pst_train_opts_defaults(pst_train_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->epochs = 10;
    opts->batch_size = 64;
    opts->shuffle = true;
    opts->loss = PST_LOSS_SOFTMAX_CE;
    opts->fused_output = true;
    opts->huber_delta = 1.0f;
    opts->restore_best = true;
    pst_optim_cfg_defaults(&opts->optim, PST_OPT_ADAM);
    opts->sched.kind = PST_SCHED_CONSTANT;
    opts->sched.base_lr = 1e-3f;
}

/* Everything one run allocates up front, so the step loop never allocates. */
typedef struct train_state {
    size_t *order;      // (n_train) row order of the epoch
    float *xb, *yb;     // (batch, d), (batch)
    float *dout;        // (batch, n_out)
    float *best;        // (n_params + n_state) weights, then running statistics, of the best
                        // epoch, or NULL
    pst_optim_t *optim; // local mode only
    float *aug_scratch; // (d) one image, when augmenting
    float *frozen;      // (n_params) the weights at the start, when a layer is frozen (local)
    pst_dpsgd_t *dp;    // DP-SGD, or NULL
} train_state_t;

static void state_free(train_state_t *st)
{
    free(st->order);
    free(st->xb);
    free(st->yb);
    free(st->dout);
    free(st->best);
    free(st->aug_scratch);
    free(st->frozen);
    pst_optim_destroy(&st->optim);
    pst_dpsgd_destroy(&st->dp);
}

static bool any_frozen(const pst_model_t *model)
{
    for (int t = 0; t < pst_model_n_tensors(model); t++)
        if (pst_model_tensor(model, t)->frozen)
            return true;
    return false;
}

/* Frozen layers' gradients are 0, yet some optimizers still move their weights (decoupled
 * weight decay, lookahead): the local step puts them back, so they stay exactly as they began.
 * (Under mpirun they are not on the servers at all.) */
static void restore_frozen(pst_model_t *model, const float *frozen)
{
    float *params = pst_model_params(model);
    for (int t = 0; frozen != NULL && t < pst_model_n_tensors(model); t++) {
        const pst_tensor_info_t *info = pst_model_tensor(model, t);
        if (info->frozen)
            memcpy(params + info->offset, frozen + info->offset, info->size * sizeof(float));
    }
}

static int state_alloc(train_state_t *st, pst_model_t *model, const pst_rows_t *train,
                       const pst_train_opts_t *opts, bool local, pst_err_t *err)
{
    memset(st, 0, sizeof *st);
    size_t b = (size_t)opts->batch_size, n_out = (size_t)pst_model_n_outputs(model);
    st->order = malloc(train->n * sizeof *st->order);
    st->xb = malloc(b * pst_rows_width(train) * sizeof(float));
    st->yb = malloc(b * sizeof(float));
    st->dout = malloc(b * n_out * sizeof(float));
    if (opts->patience > 0 && opts->restore_best)
        st->best =
            malloc((pst_model_n_params(model) + pst_model_n_state(model) + 1) * sizeof(float));
    if (opts->augment.n_ops > 0 &&
        !(st->aug_scratch = malloc(pst_rows_width(train) * sizeof(float))))
        return pst_err_set(err, PST_ENOMEM, "training buffers: out of memory");
    if (!st->order || !st->xb || !st->yb || !st->dout ||
        (opts->patience > 0 && opts->restore_best && !st->best))
        return pst_err_set(err, PST_ENOMEM, "training buffers: out of memory");
    for (size_t i = 0; i < train->n; i++)
        st->order[i] = i;
    if (local && !(st->optim = pst_optim_new(&opts->optim, pst_model_n_params(model), err)))
        return err ? err->code : PST_ENOMEM;
    if (local && any_frozen(model)) {
        size_t bytes = pst_model_n_params(model) * sizeof(float);
        if (!(st->frozen = malloc(bytes)))
            return pst_err_set(err, PST_ENOMEM, "training buffers: out of memory");
        memcpy(st->frozen, pst_model_params(model), bytes);
    }
    return PST_OK;
}

static int check_inputs(pst_model_t *model, const pst_rows_t *train, const pst_rows_t *val,
                        const pst_train_opts_t *opts, pst_err_t *err)
{
    const pst_dataset_t *tr = train->ds, *va = val && val->n ? val->ds : NULL;
    if (!tr || pst_dataset_is_sparse(tr) || (va && pst_dataset_is_sparse(va)))
        return pst_err_set(err, PST_EINVAL, "the layer-stack model needs dense data");
    if (train->n == 0)
        return pst_err_set(err, PST_EINVAL, "the training set is empty");
    if ((int)pst_rows_width(train) != pst_model_n_inputs(model) ||
        (va && pst_rows_width(val) != pst_rows_width(train)))
        return pst_err_set(err, PST_EINVAL, "data has %zu features but the model takes %d",
                           pst_rows_width(train), pst_model_n_inputs(model));
    if (opts->batch_size <= 0 || opts->epochs <= 0)
        return pst_err_set(err, PST_EINVAL, "batch size and epochs must be positive");
    const pst_augment_t *a = &opts->augment;
    if (a->n_ops > 0 && (size_t)a->channels * a->height * a->width != pst_rows_width(train))
        return pst_err_set(err, PST_EINVAL,
                           "data.augment: rows of %zu values are not %dx%dx%d images "
                           "(set data.image_shape)",
                           pst_rows_width(train), a->channels, a->height, a->width);
    return PST_OK;
}

/* One mini-batch: forward, loss, backward, penalty and clipping; the gradient is left in the
 * model's gradient arena. Returns the batch's mean loss (penalty included). */
static double compute_gradient(pst_model_t *model, train_state_t *st, int n,
                               const pst_train_opts_t *opts, pst_rng_t *dropout_rng)
{
    int n_out = pst_model_n_outputs(model);
    if (opts->qat)
        pst_fakequant_weights_begin(opts->qat);
    const float *out = pst_model_forward(model, st->xb, n, true, dropout_rng);
    double loss = opts->distill ? pst_distill_loss(opts->distill, st->xb,
                                                   pst_model_pre_output(model), st->yb, n, st->dout)
                                : pst_loss_eval(opts->loss, out, st->yb, n, n_out,
                                                opts->huber_delta, opts->fused_output, st->dout);
    if (opts->class_weights)
        for (int i = 0; i < n; i++) {
            float wt = (float)opts->class_weights[(int)st->yb[i]];
            for (int k = 0; k < n_out; k++)
                st->dout[(size_t)i * n_out + k] *= wt;
        }
    pst_model_backward(model, st->dout, n, opts->fused_output);
    if (opts->qat) /* the float weights back: the optimizer and the penalty act on them */
        pst_fakequant_weights_end(opts->qat);
    if (opts->l1 > 0 || opts->l2 > 0)
        loss += pst_loss_penalty(model, opts->l1, opts->l2, true);
    float *g = pst_model_grads(model);
    size_t n_params = pst_model_n_params(model);
    if (opts->prune) /* pruned weights learn nothing, and clipping sees what is pushed */
        pst_prune_apply(opts->prune, g);
    if (opts->clip_value > 0)
        pst_clip_value(g, n_params, opts->clip_value);
    if (opts->clip_norm > 0)
        pst_clip_global_norm(g, n_params, opts->clip_norm);
    return loss;
}

/* A distributed step whose weights travel per dense layer (see pst_train_hooks_t): the model's
 * layer hooks wait for each layer's pull and send each layer's push. The first failure stops the
 * transfers; the passes finish on whatever weights they hold and the step then fails. */
typedef struct layer_link {
    const pst_train_hooks_t *h;
    const pst_prune_t *prune;
    float *params;
    const float *grads;
    uint64_t clock;
    float lr;
    int rc;
    pst_err_t *err;
} layer_link_t;

static void link_before_forward(void *ctx, int k)
{
    layer_link_t *l = ctx;
    if (l->rc == PST_OK)
        l->rc = l->h->pull_wait(l->h->ctx, k, l->err);
    if (l->rc == PST_OK && l->prune)
        pst_prune_apply_layer(l->prune, l->params, k);
}

static void link_after_backward(void *ctx, int k)
{
    layer_link_t *l = ctx;
    if (l->rc == PST_OK)
        l->rc = l->h->push_layer(l->h->ctx, k, l->grads, l->clock, l->lr, l->err);
}

typedef struct epoch_ctx {
    pst_model_t *model;
    const pst_rows_t *train;
    const pst_train_opts_t *opts;
    const pst_train_hooks_t *hooks;
    train_state_t *st;
    pst_sched_t *sched;
    uint64_t clock;
    long steps;
} epoch_ctx_t;

/* compute_gradient on weights pulled per layer (pull_start already sent), each layer's gradient
 * pushed as soon as it is final: during backward, or after it when a penalty or clipping still
 * changes the gradients. */
static int layered_gradient(const epoch_ctx_t *c, int n, float lr, pst_rng_t *dropout_rng,
                            double *loss, pst_err_t *err)
{
    const pst_train_hooks_t *h = c->hooks;
    const pst_train_opts_t *o = c->opts;
    bool final_in_backward =
        o->l1 == 0 && o->l2 == 0 && o->clip_norm == 0 && o->clip_value == 0 && !o->prune;
    layer_link_t link = {
        h,      o->prune, pst_model_params(c->model), pst_model_grads(c->model), c->clock, lr,
        PST_OK, err};
    pst_model_layer_hooks_t mh = {&link, link_before_forward,
                                  final_in_backward ? link_after_backward : NULL};
    pst_model_set_layer_hooks(c->model, &mh);
    *loss = compute_gradient(c->model, c->st, n, o, dropout_rng);
    pst_model_set_layer_hooks(c->model, NULL);
    for (int k = pst_model_n_tensors(c->model) / 2 - 1; !final_in_backward && k >= 0; k--) {
        if (link.rc == PST_OK)
            link.rc = h->push_layer(h->ctx, k, link.grads, c->clock, lr, err);
    }
    return link.rc;
}

/* DP-SGD's rows: gathered, then augmented with the step's stream (a chunk's own). */
typedef struct dp_gather_ctx {
    const epoch_ctx_t *c;
    pst_rng_t aug_rng;
} dp_gather_ctx_t;

static int dp_gather(void *ctx, const size_t *pos, size_t n, float *x, float *y, pst_err_t *err)
{
    dp_gather_ctx_t *g = ctx;
    int rc = pst_rows_gather(g->c->train, pos, 0, n, x, y, err);
    if (rc == PST_OK && g->c->opts->augment.n_ops > 0)
        pst_augment_apply(&g->c->opts->augment, x, (int)n, &g->aug_rng, g->c->st->aug_scratch);
    return rc;
}

/* The step's private gradient (worker/train/dpsgd.h); *b receives the sample's size. */
static int dp_gradient(const epoch_ctx_t *c, pst_rng_t *dropout_rng, double *loss, int *b,
                       pst_err_t *err)
{
    const pst_train_opts_t *o = c->opts;
    dp_gather_ctx_t g = {.c = c};
    pst_rng_init(&g.aug_rng, pst_rng_derive(pst_rng_derive(o->seed, 3), c->clock));
    pst_dpsgd_loss_t l = {(int)o->loss, o->fused_output, o->huber_delta, o->class_weights};
    size_t m = 0;
    int rc = pst_dpsgd_gradient(c->st->dp, c->model, &l, c->clock, dp_gather, &g, c->st->xb,
                                c->st->yb, o->batch_size, dropout_rng, loss, &m, err);
    /* The penalty's gradient reads only the weights: added after the noise, it costs no privacy. */
    if (rc == PST_OK && (o->l1 > 0 || o->l2 > 0))
        *loss += pst_loss_penalty(c->model, o->l1, o->l2, true);
    *b = (int)m;
    return rc;
}

/* Every epoch's row order and every step's dropout masks come from their own seeded streams, so a
 * run resumed at any clock draws exactly what an uninterrupted run would have drawn. */
static void epoch_order(const epoch_ctx_t *c, int epoch)
{
    size_t n = c->train->n;
    for (size_t i = 0; i < n; i++)
        c->st->order[i] = i;
    if (!c->opts->shuffle)
        return;
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(pst_rng_derive(c->opts->seed, 1), (uint64_t)epoch));
    pst_rng_shuffle(&rng, c->st->order, n);
}

/* Runs steps first_step.. of an epoch. */
static int run_epoch(epoch_ctx_t *c, int epoch, long first_step, double *loss_sum, long *rows,
                     uint64_t *jump, pst_err_t *err)
{
    const pst_train_opts_t *opts = c->opts;
    const pst_train_hooks_t *h = c->hooks;
    bool remote = h && h->push;
    bool layered = remote && h->pull_start != NULL;
    size_t n = c->train->n;
    bool dp = c->st->dp != NULL;
    layered = layered && !dp;        /* a private gradient is final only once the noise is in */
    layered = layered && !opts->qat; /* the weights are fake-quantised whole, before forward */
    epoch_order(c, epoch);
    float *params = pst_model_params(c->model);
    double t0 = pst_clock_seconds(), last_report = t0;
    uint64_t dropout_seed = pst_rng_derive(opts->seed, 2);
    uint64_t augment_seed = pst_rng_derive(opts->seed, 3);
    *loss_sum = 0;
    *rows = 0;
    *jump = 0;
    for (long step = first_step; step < c->steps; step++) {
        size_t start = (size_t)step * (size_t)opts->batch_size;
        if (start >= n && !dp)
            break;
        int b = (int)(n - start < (size_t)opts->batch_size ? n - start : (size_t)opts->batch_size);
        float lr = pst_sched_lr(c->sched, epoch - 1, (long)c->clock);
        int rc = PST_OK;
        /* Per-layer weights: the pulls go out first, and the batch is gathered while they
         * travel. */
        if (layered)
            rc = h->pull_start(h->ctx, params, c->clock, err);
        else if (remote && (rc = h->pull(h->ctx, params, c->clock, err)) == PST_OK && opts->prune)
            pst_prune_apply(opts->prune, params);
        if (rc == PST_OK && remote && h->rejoin_clock &&
            (*jump = h->rejoin_clock(h->ctx, c->clock)) > c->clock)
            return PST_OK;
        *jump = 0;
        if (rc == PST_OK && !dp)
            rc = pst_rows_gather(c->train, c->st->order + start, 0, (size_t)b, c->st->xb, c->st->yb,
                                 err);
        if (rc != PST_OK)
            return rc;
        if (opts->augment.n_ops > 0 && !dp) { /* a stream per step, like dropout's: resumable */
            pst_rng_t aug_rng;
            pst_rng_init(&aug_rng, pst_rng_derive(augment_seed, c->clock));
            pst_augment_apply(&opts->augment, c->st->xb, b, &aug_rng, c->st->aug_scratch);
        }
        pst_rng_t dropout_rng;
        pst_rng_init(&dropout_rng, pst_rng_derive(dropout_seed, c->clock));
        double loss = 0.0;
        if (dp)
            rc = dp_gradient(c, &dropout_rng, &loss, &b, err);
        else if (layered)
            rc = layered_gradient(c, b, lr, &dropout_rng, &loss, err);
        else
            loss = compute_gradient(c->model, c->st, b, opts, &dropout_rng);
        if (rc != PST_OK)
            return rc;
        if (!isfinite(loss))
            return pst_err_set(err, PST_ENUMERIC,
                               "epoch %d step %ld: loss is not finite (lower optimizer.lr?)", epoch,
                               step + 1);
        /* (layered: already pushed, layer by layer) */
        if (remote && !layered &&
            (rc = h->push(h->ctx, pst_model_grads(c->model), c->clock, lr, err)) != PST_OK)
            return rc;
        /* The next step's weights are asked for as soon as the pushes are out: the servers
         * answer them while this worker finishes the step and gathers the next batch. */
        bool next_follows = step + 1 < c->steps && start + (size_t)b < n;
        if (layered && h->pull_ahead && next_follows &&
            (rc = h->pull_ahead(h->ctx, params, c->clock + 1, err)) != PST_OK)
            return rc;
        if (!remote) {
            pst_optim_step(c->st->optim, params, pst_model_grads(c->model), lr);
            restore_frozen(c->model, c->st->frozen);
            if (opts->prune) /* momentum would move pruned weights off zero */
                pst_prune_apply(opts->prune, params);
        }
        c->clock++;
        if (h && h->on_clock && (rc = h->on_clock(h->clock_ctx, c->clock, err)) != PST_OK)
            return rc;
        *loss_sum += loss;
        *rows += b;
        double t = pst_clock_seconds();
        if (h && h->on_step && h->step_every > 0 && c->clock % (uint64_t)h->step_every == 0) {
            pst_step_progress_t p = {epoch,
                                     opts->epochs,
                                     step + 1,
                                     c->steps,
                                     *loss_sum / (double)(step + 1 - first_step),
                                     (double)*rows / (t - t0)};
            h->on_step(h->observer_ctx ? h->observer_ctx : h->ctx, &p);
        }
        if (h && h->on_progress && (t - last_report > 0.25 || step + 1 == c->steps)) {
            last_report = t;
            pst_step_progress_t p = {epoch,
                                     opts->epochs,
                                     step + 1,
                                     c->steps,
                                     *loss_sum / (double)(step + 1 - first_step),
                                     (double)*rows / (t - t0)};
            h->on_progress(h->observer_ctx ? h->observer_ctx : h->ctx, &p);
        }
    }
    return PST_OK;
}

/* run_epoch from first_step, following the servers' clock when this worker rejoins a BSP run
 * (hooks->rejoin_clock): inside the epoch it carries on from there; a clock past the epoch's end
 * comes back in *jump (0: none). *steps_run counts the steps taken. */
static int run_epoch_rejoining(epoch_ctx_t *c, int epoch, long first_step, double *loss_sum,
                               long *rows, double *steps_run, uint64_t *jump, pst_err_t *err)
{
    uint64_t epoch_end = (uint64_t)epoch * (uint64_t)c->steps;
    *loss_sum = 0, *rows = 0;
    *steps_run = (double)(c->steps - first_step); /* without a rejoin: the epoch's steps */
    double taken = 0;
    for (bool rejoined = false;; rejoined = true) {
        double l;
        long r;
        uint64_t before = c->clock;
        int rc = run_epoch(c, epoch, first_step, &l, &r, jump, err);
        *loss_sum += l, *rows += r, taken += (double)(c->clock - before);
        if (rejoined || *jump != 0)
            *steps_run = taken;
        if (rc != PST_OK || *jump == 0)
            return rc;
        if (*jump > epoch_end)
            return PST_OK;
        c->clock = *jump; /* within the epoch, or its end: this epoch's end comes next */
        first_step = (long)(*jump - (epoch_end - (uint64_t)c->steps));
        *jump = 0;
    }
}

/* Validation sums, summed over workers when distributed. vals: loss, correct, sq_err, n. */
static int validate(epoch_ctx_t *c, const pst_rows_t *val, double *train_stats,
                    pst_eval_sums_t *sums, pst_err_t *err)
{
    const pst_train_hooks_t *h = c->hooks;
    int rc;
    if (h && h->push && (rc = h->pull(h->ctx, pst_model_params(c->model), c->clock, err)) != PST_OK)
        return rc;
    if (h && h->push && c->opts->prune) /* servers keep every weight: the mask lives here */
        pst_prune_apply(c->opts->prune, pst_model_params(c->model));
    if ((rc = pst_eval_sums_rows(c->model, val, c->opts->batch_size, c->opts->loss,
                                 c->opts->huber_delta, sums, err)) != PST_OK)
        return rc;
    if (h && h->allreduce_sum) {
        double v[6] = {sums->loss_sum, sums->correct,  sums->sq_err_sum,
                       sums->n,        train_stats[0], train_stats[1]};
        if ((rc = h->allreduce_sum(h->ctx, v, 6, err)) != PST_OK)
            return rc;
        sums->loss_sum = v[0], sums->correct = v[1], sums->sq_err_sum = v[2], sums->n = v[3];
        train_stats[0] = v[4], train_stats[1] = v[5];
    }
    return PST_OK;
}

/* Under mpirun every worker normalises with its own batches, so each holds its own batchnorm
 * running statistics; at every epoch's end they are replaced by their mean over the workers, as
 * the weights already are one set. */
static int average_state(epoch_ctx_t *c, pst_err_t *err)
{
    const pst_train_hooks_t *h = c->hooks;
    size_t n = pst_model_n_state(c->model);
    if (!h || !h->push || !h->allreduce_sum || n == 0)
        return PST_OK;
    double *v = malloc((n + 1) * sizeof *v);
    if (!v)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %zu running statistics", n);
    float *state = pst_model_state(c->model);
    for (size_t i = 0; i < n; i++)
        v[i] = state[i];
    v[n] = 1.0; /* counts the workers */
    int rc = h->allreduce_sum(h->ctx, v, (int)n + 1, err);
    for (size_t i = 0; rc == PST_OK && i < n; i++)
        state[i] = (float)(v[i] / v[n]);
    free(v);
    return rc;
}

/* The best epoch is its weights and its batchnorm running statistics: evaluation uses both, so
 * restoring one without the other would give a model no epoch ever had. save: model -> best. */
static void keep_best(pst_model_t *model, float *best, bool save)
{
    size_t n_params = pst_model_n_params(model), n_state = pst_model_n_state(model);
    float *params = pst_model_params(model), *state = pst_model_state(model);
    if (save) {
        memcpy(best, params, n_params * sizeof(float));
        if (n_state > 0)
            memcpy(best + n_params, state, n_state * sizeof(float));
    } else {
        memcpy(params, best, n_params * sizeof(float));
        if (n_state > 0)
            memcpy(state, best + n_params, n_state * sizeof(float));
    }
}

/* The mask grows at the end of the epochs start..end, from the weights every worker pulls at
 * the same clock: under BSP they are one set, so every worker derives the same mask. */
static int prune_epoch_end(epoch_ctx_t *c, int epoch, pst_err_t *err)
{
    const pst_train_hooks_t *h = c->hooks;
    pst_prune_t *prune = c->opts->prune;
    float *params = pst_model_params(c->model);
    const pst_prune_opts_t *po = prune ? pst_prune_opts(prune) : NULL;
    if (!prune || epoch < po->start || epoch > po->end)
        return PST_OK;
    int rc;
    if (h && h->push && (rc = h->pull(h->ctx, params, c->clock, err)) != PST_OK)
        return rc;
    pst_prune_apply(prune, params);
    bool changed;
    if ((rc = pst_prune_epoch_end(prune, params, epoch, &changed, err)) == PST_OK)
        pst_prune_apply(prune, params);
    return rc;
}

/* The final weights (perhaps restored from a best epoch) carry the target sparsity: a run that
 * stopped or resumed past the schedule prunes the rest at once. A mask already at the target
 * comes out unchanged (pruned weights rank first). */
static int prune_finish(epoch_ctx_t *c, pst_err_t *err)
{
    pst_prune_t *prune = c->opts->prune;
    if (!prune)
        return PST_OK;
    float *params = pst_model_params(c->model);
    pst_prune_apply(prune, params);
    int rc = pst_prune_update(prune, params, pst_prune_opts(prune)->sparsity, err);
    if (rc == PST_OK)
        pst_prune_apply(prune, params);
    return rc;
}

static long steps_for(const pst_train_opts_t *opts, size_t n_rows)
{
    if (opts->steps_per_epoch > 0)
        return opts->steps_per_epoch;
    return (long)((n_rows + (size_t)opts->batch_size - 1) / (size_t)opts->batch_size);
}

/* DP-SGD set-up: the sampling rate counts every worker's rows (summed under mpirun); a resumed
 * run first composes the steps already taken. */
static int dp_begin(epoch_ctx_t *c, pst_train_result_t *r, pst_err_t *err)
{
    const pst_train_opts_t *o = c->opts;
    const pst_train_hooks_t *h = c->hooks;
    r->dp_q = r->dp_sigma = r->epsilon = r->epsilon_next = NAN;
    if (!(o->dp.clip > 0))
        return PST_OK;
    if (o->clip_norm > 0 || o->clip_value > 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp.clip bounds each example's gradient: set train.clip_norm "
                           "and train.clip_value to 0");
    int rc = pst_dpsgd_check_model(c->model, err);
    double v[2] = {(double)c->train->n, 1.0}; /* rows, workers */
    if (rc == PST_OK && h && h->push && h->allreduce_sum)
        rc = h->allreduce_sum(h->ctx, v, 2, err);
    if (rc != PST_OK)
        return rc;
    pst_dpsgd_setup_t s = {pst_model_n_params(c->model),
                           c->train->n,
                           (size_t)v[0],
                           (int)v[1],
                           o->batch_size,
                           c->steps,
                           o->epochs,
                           o->seed};
    if (!(c->st->dp = pst_dpsgd_new(&o->dp, &s, err)))
        return pst_err_code(err, PST_ENOMEM);
    pst_dpsgd_account_steps(c->st->dp, o->start_clock);
    r->dp_q = pst_dpsgd_q(c->st->dp);
    r->dp_sigma = pst_dpsgd_sigma(c->st->dp);
    r->epsilon = pst_dpsgd_epsilon(c->st->dp);
    pst_info("dp-sgd: Poisson sampling q %.6g (%zu rows, %d worker%s), noise multiplier %.6g, "
             "clip %g, delta %g",
             r->dp_q, s.n_rows_total, s.n_workers, s.n_workers == 1 ? "" : "s", r->dp_sigma,
             o->dp.clip, o->dp.delta);
    return PST_OK;
}

/* Whether the next epoch's steps stay within train.dp.epsilon_budget; a run that cannot afford
 * even its first epoch is an error rather than an untrained model. */
static int dp_epoch_fits(const epoch_ctx_t *c, long first_step, pst_train_result_t *r, bool *fits,
                         pst_err_t *err)
{
    *fits = true;
    if (!c->st->dp)
        return PST_OK;
    *fits = pst_dpsgd_within_budget(c->st->dp, (uint64_t)(c->steps - first_step), &r->epsilon_next);
    r->stopped_at_budget = !*fits;
    if (!*fits && c->clock == 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp.epsilon_budget %g: one epoch already spends epsilon %.4g; "
                           "raise train.dp.noise or set it to 0 to calibrate",
                           c->opts->dp.epsilon_budget, r->epsilon_next);
    return PST_OK;
}

int pst_train_run(pst_model_t *model, const pst_dataset_t *train, const pst_dataset_t *val,
                  const pst_train_opts_t *opts, const pst_train_hooks_t *hooks,
                  pst_train_result_t *result, pst_err_t *err)
{
    pst_rows_t t = pst_rows_all(train), v = pst_rows_all(val);
    return pst_train_rows(model, &t, &v, opts, hooks, result, err);
}

int pst_train_rows(pst_model_t *model, const pst_rows_t *train, const pst_rows_t *val,
                   const pst_train_opts_t *opts, const pst_train_hooks_t *hooks,
                   pst_train_result_t *result, pst_err_t *err)
{
    memset(result, 0, sizeof *result);
    int rc = check_inputs(model, train, val, opts, err);
    if (rc != PST_OK)
        return rc;
    train_state_t st;
    bool remote = hooks && hooks->push;
    if ((rc = state_alloc(&st, model, train, opts, !remote, err)) != PST_OK) {
        state_free(&st);
        return rc;
    }
    pst_sched_t sched;
    epoch_ctx_t c = {
        model, train, opts, hooks, &st, &sched, opts->start_clock, steps_for(opts, train->n)};
    pst_sched_cfg_t sched_cfg = opts->sched;
    sched_cfg.steps_per_epoch = c.steps; /* this worker's: its clock counts its own steps */
    pst_sched_init(&sched, &sched_cfg);
    /* A resumed run continues inside the epoch its clock falls in. */
    int first_epoch = (int)(opts->start_clock / (uint64_t)c.steps) + 1;
    long first_step = (long)(opts->start_clock % (uint64_t)c.steps);
    bool classify = opts->loss == PST_LOSS_SOFTMAX_CE || opts->loss == PST_LOSS_BCE;
    result->best_val_loss = INFINITY;
    pst_early_stop_t stop;
    pst_early_stop_init(&stop, opts->patience, opts->min_delta);
    rc = dp_begin(&c, result, err);
    for (int epoch = first_epoch; rc == PST_OK && epoch <= opts->epochs; epoch++) {
        double t0 = pst_clock_seconds(), loss_sum;
        long rows;
        bool fits;
        if ((rc = dp_epoch_fits(&c, first_step, result, &fits, err)) != PST_OK || !fits)
            break;
        double steps_run;
        uint64_t jump;
        if ((rc = run_epoch_rejoining(&c, epoch, first_step, &loss_sum, &rows, &steps_run, &jump,
                                      err)) != PST_OK)
            break;
        if (jump > 0) { /* rejoining past this epoch: its end, and those skipped, were others' */
            result->seconds += pst_clock_seconds() - t0;
            result->rows_trained += rows;
            c.clock = jump;
            epoch = pst_train_rejoin_epoch(jump, c.steps, &first_step) - 1; /* (the loop's ++) */
            continue;
        }
        if (st.dp) {
            pst_dpsgd_account_steps(st.dp, (uint64_t)steps_run);
            result->epsilon = pst_dpsgd_epsilon(st.dp);
        }
        first_step = 0;
        double seconds = pst_clock_seconds() - t0;
        result->seconds += seconds;
        result->rows_trained += rows;
        double train_stats[2] = {loss_sum, steps_run};
        pst_eval_sums_t sums;
        if ((rc = prune_epoch_end(&c, epoch, err)) != PST_OK ||
            (rc = average_state(&c, err)) != PST_OK ||
            (rc = validate(&c, val, train_stats, &sums, err)) != PST_OK) {
            if ((jump = pst_train_rejoin_after(hooks, c.clock, rc, err)) == 0)
                break;
            rc = PST_OK; /* its reduction long gone: the servers went on without this worker */
            c.clock = jump;
            epoch = pst_train_rejoin_epoch(jump, c.steps, &first_step) - 1; /* (the loop's ++) */
            continue;
        }
        pst_epoch_stats_t es = {epoch,
                                opts->epochs,
                                train_stats[0] / train_stats[1],
                                NAN,
                                NAN,
                                classify ? "accuracy" : "mse",
                                pst_sched_lr(&sched, epoch - 1, (long)c.clock),
                                seconds,
                                (double)rows / seconds,
                                false,
                                result->epsilon};
        if (sums.n > 0) {
            es.val_loss = sums.loss_sum / sums.n;
            es.val_metric = classify ? sums.correct / sums.n : sums.sq_err_sum / sums.n;
            pst_sched_observe(&sched, es.val_loss);
        }
        bool stop_now = pst_early_stop_observe(&stop, epoch, es.val_loss, &es.improved);
        if (es.improved) {
            result->best_val_loss = stop.best_loss;
            result->best_epoch = epoch;
            if (st.best)
                keep_best(model, st.best, true);
        }
        result->epochs_run = epoch;
        if (hooks && hooks->on_epoch)
            hooks->on_epoch(hooks->observer_ctx ? hooks->observer_ctx : hooks->ctx, &es);
        if (stop_now) {
            result->stopped_early = true;
            break;
        }
    }
    /* A run resumed after its last clock trains nothing: it still ends on the global weights. */
    if (rc == PST_OK && remote && result->epochs_run == 0)
        rc = hooks->pull(hooks->ctx, pst_model_params(model), c.clock, err);
    if (rc == PST_OK && st.best && result->best_epoch > 0)
        keep_best(model, st.best, false);
    if (rc == PST_OK)
        rc = prune_finish(&c, err);
    result->clock = c.clock;
    result->samples_per_s = result->seconds > 0 ? result->rows_trained / result->seconds : 0;
    state_free(&st);
    return rc;
}
