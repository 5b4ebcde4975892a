/* The training loop over mini-batches, locally or against parameter servers through hooks. */
#include "worker/train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "worker/train/early_stop.h"

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

int pst_predicted_class(const float *out_row, int n_out)
{
    if (n_out == 1)
        return out_row[0] >= 0.5f ? 1 : 0;
    int best = 0;
    for (int k = 1; k < n_out; k++)
        if (out_row[k] > out_row[best])
            best = k;
    return best;
}

pst_rows_t pst_rows_all(const pst_dataset_t *ds)
{
    pst_rows_t r = {ds, NULL, ds ? ds->n_rows : 0, NULL, NULL, 0};
    return r;
}

/* Copies n rows of the view into the contiguous buffers x (n, d) and y (n), applying the view's
 * preprocessing. Row i is view position pos[i], or first + i when pos is NULL. */
static int gather_rows(const pst_rows_t *rows, const size_t *pos, size_t first, size_t n, float *x,
                       float *y, pst_err_t *err)
{
    const pst_dataset_t *ds = rows->ds;
    size_t d = ds->n_features, w = pst_rows_width(rows);
    for (size_t i = 0; i < n; i++) {
        size_t p = pos ? pos[i] : first + i;
        size_t r = rows->idx ? rows->idx[p] : p;
        if (rows->cols)
            for (size_t j = 0; j < w; j++)
                x[i * w + j] = ds->x[r * d + rows->cols[j]];
        else
            memcpy(x + i * d, ds->x + r * d, d * sizeof(float));
        y[i] = ds->y[r];
    }
    size_t bad_row, bad_col;
    if (rows->preproc &&
        pst_preproc_apply_cols(rows->preproc, x, n, rows->cols, w, &bad_row, &bad_col)) {
        size_t p = pos ? pos[bad_row] : first + bad_row;
        return pst_err_set(
            err, PST_ENUMERIC, "row %zu, feature %zu: not finite after preprocessing",
            (rows->idx ? rows->idx[p] : p) + 1, (rows->cols ? rows->cols[bad_col] : bad_col) + 1);
    }
    return PST_OK;
}

/* Calls fn on the view in chunks of at most chunk rows, gathered and preprocessed. */
typedef int (*chunk_fn)(void *ctx, size_t start, const float *x, const float *y, int n,
                        pst_err_t *err);

static int for_each_chunk(const pst_rows_t *rows, int chunk, chunk_fn fn, void *ctx, pst_err_t *err)
{
    size_t d = pst_rows_width(rows);
    float *x = malloc((size_t)chunk * d * sizeof(float));
    float *y = malloc((size_t)chunk * sizeof(float));
    int rc = x && y ? PST_OK : pst_err_set(err, PST_ENOMEM, "evaluation buffers: out of memory");
    for (size_t start = 0; start < rows->n && rc == PST_OK; start += (size_t)chunk) {
        size_t n = rows->n - start < (size_t)chunk ? rows->n - start : (size_t)chunk;
        if ((rc = gather_rows(rows, NULL, start, n, x, y, err)) == PST_OK)
            rc = fn(ctx, start, x, y, (int)n, err);
    }
    free(x);
    free(y);
    return rc;
}

typedef struct eval_ctx {
    pst_model_t *model;
    pst_loss_kind_t loss;
    float huber_delta;
    pst_eval_sums_t *sums;
    float *out; /* predict: (n, n_outputs) */
} eval_ctx_t;

static int eval_chunk(void *ctx, size_t start, const float *x, const float *y, int n,
                      pst_err_t *err)
{
    eval_ctx_t *e = ctx;
    int n_out = pst_model_n_outputs(e->model);
    bool classify = e->loss == PST_LOSS_SOFTMAX_CE || e->loss == PST_LOSS_BCE;
    const float *out = pst_model_forward(e->model, x, n, false, NULL);
    double mean = pst_loss_eval(e->loss, out, y, n, n_out, e->huber_delta, false, NULL);
    if (!isfinite(mean))
        return pst_err_set(err, PST_ENUMERIC, "evaluation loss is not finite (rows %zu..%zu)",
                           start + 1, start + (size_t)n);
    e->sums->loss_sum += mean * n;
    for (int i = 0; i < n; i++) {
        const float *row = out + (size_t)i * n_out;
        if (classify) {
            e->sums->correct += pst_predicted_class(row, n_out) == (int)y[i];
        } else {
            double diff = (double)row[0] - y[i];
            e->sums->sq_err_sum += diff * diff;
        }
    }
    e->sums->n += n;
    return PST_OK;
}

int pst_eval_sums_rows(pst_model_t *model, const pst_rows_t *rows, int chunk, pst_loss_kind_t loss,
                       float huber_delta, pst_eval_sums_t *sums, pst_err_t *err)
{
    memset(sums, 0, sizeof *sums);
    if (rows == NULL || rows->n == 0)
        return PST_OK;
    eval_ctx_t e = {model, loss, huber_delta, sums, NULL};
    return for_each_chunk(rows, chunk, eval_chunk, &e, err);
}

int pst_eval_sums(pst_model_t *model, const pst_dataset_t *ds, int chunk, pst_loss_kind_t loss,
                  float huber_delta, pst_eval_sums_t *sums, pst_err_t *err)
{
    pst_rows_t rows = pst_rows_all(ds);
    return pst_eval_sums_rows(model, &rows, chunk, loss, huber_delta, sums, err);
}

static int predict_chunk(void *ctx, size_t start, const float *x, const float *y, int n,
                         pst_err_t *err)
{
    eval_ctx_t *e = ctx;
    size_t n_out = (size_t)pst_model_n_outputs(e->model);
    const float *o = pst_model_forward(e->model, x, n, false, NULL);
    memcpy(e->out + start * n_out, o, (size_t)n * n_out * sizeof(float));
    return PST_OK;
}

int pst_predict_rows(pst_model_t *model, const pst_rows_t *rows, int chunk, float *out,
                     pst_err_t *err)
{
    eval_ctx_t e = {model, PST_LOSS_MSE, 1, NULL, out};
    return for_each_chunk(rows, chunk, predict_chunk, &e, err);
}

int pst_predict(pst_model_t *model, const pst_dataset_t *ds, int chunk, float *out, pst_err_t *err)
{
    pst_rows_t rows = pst_rows_all(ds);
    return pst_predict_rows(model, &rows, chunk, out, err);
}

/* Everything one run allocates up front, so the step loop never allocates. */
typedef struct train_state {
    size_t *order;      // (n_train) row order of the epoch
    float *xb, *yb;     // (batch, d), (batch)
    float *dout;        // (batch, n_out)
    float *best;        // (n_params) weights of the best epoch, or NULL
    pst_optim_t *optim; // local mode only
    float *aug_scratch; // (d) one image, when augmenting
} train_state_t;

static void state_free(train_state_t *st)
{
    free(st->order);
    free(st->xb);
    free(st->yb);
    free(st->dout);
    free(st->best);
    free(st->aug_scratch);
    pst_optim_destroy(&st->optim);
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
        st->best = malloc(pst_model_n_params(model) * sizeof(float));
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
                     pst_err_t *err)
{
    const pst_train_opts_t *opts = c->opts;
    const pst_train_hooks_t *h = c->hooks;
    bool remote = h && h->push;
    bool layered = remote && h->pull_start != NULL;
    size_t n = c->train->n;
    epoch_order(c, epoch);
    float *params = pst_model_params(c->model);
    double t0 = pst_clock_seconds(), last_report = t0;
    uint64_t dropout_seed = pst_rng_derive(opts->seed, 2);
    uint64_t augment_seed = pst_rng_derive(opts->seed, 3);
    *loss_sum = 0;
    *rows = 0;
    for (long step = first_step; step < c->steps; step++) {
        size_t start = (size_t)step * (size_t)opts->batch_size;
        if (start >= n)
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
        if (rc == PST_OK)
            rc = gather_rows(c->train, c->st->order + start, 0, (size_t)b, c->st->xb, c->st->yb,
                             err);
        if (rc != PST_OK)
            return rc;
        if (opts->augment.n_ops > 0) { /* a stream per step, like dropout's: resumable */
            pst_rng_t aug_rng;
            pst_rng_init(&aug_rng, pst_rng_derive(augment_seed, c->clock));
            pst_augment_apply(&opts->augment, c->st->xb, b, &aug_rng, c->st->aug_scratch);
        }
        pst_rng_t dropout_rng;
        pst_rng_init(&dropout_rng, pst_rng_derive(dropout_seed, c->clock));
        double loss = 0.0;
        if (layered)
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
        if (!remote) {
            pst_optim_step(c->st->optim, params, pst_model_grads(c->model), lr);
            if (opts->prune) /* momentum would move pruned weights off zero */
                pst_prune_apply(opts->prune, params);
        }
        c->clock++;
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
    for (int epoch = first_epoch; epoch <= opts->epochs; epoch++) {
        double t0 = pst_clock_seconds(), loss_sum;
        long rows;
        if ((rc = run_epoch(&c, epoch, first_step, &loss_sum, &rows, err)) != PST_OK)
            break;
        double steps_run = (double)(c.steps - first_step);
        first_step = 0;
        double seconds = pst_clock_seconds() - t0;
        result->seconds += seconds;
        result->rows_trained += rows;
        double train_stats[2] = {loss_sum, steps_run};
        pst_eval_sums_t sums;
        if ((rc = prune_epoch_end(&c, epoch, err)) != PST_OK ||
            (rc = average_state(&c, err)) != PST_OK ||
            (rc = validate(&c, val, train_stats, &sums, err)) != PST_OK)
            break;
        pst_epoch_stats_t es = {epoch,
                                opts->epochs,
                                train_stats[0] / train_stats[1],
                                NAN,
                                NAN,
                                classify ? "accuracy" : "mse",
                                pst_sched_lr(&sched, epoch - 1, (long)c.clock),
                                seconds,
                                (double)rows / seconds,
                                false};
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
                memcpy(st.best, pst_model_params(model), pst_model_n_params(model) * sizeof(float));
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
        memcpy(pst_model_params(model), st.best, pst_model_n_params(model) * sizeof(float));
    if (rc == PST_OK)
        rc = prune_finish(&c, err);
    result->clock = c.clock;
    result->samples_per_s = result->seconds > 0 ? result->rows_trained / result->seconds : 0;
    state_free(&st);
    return rc;
}
