/* The parameter-server trainer of wide & deep: each step pulls its batch's rows and the deep
 * stack, and pushes both gradients while the next batch is prepared. */
#include "worker/train/wide_deep_remote.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rng.h"
#include "worker/train/rejoin.h"
#include "worker/train/step_rows.h"

/* Keys per pull when copying the trained rows into a local model. */
enum { MODEL_PULL_KEYS = 16384 };

/* What one step holds while its pushes are in flight; steps alternate between two. */
typedef struct step_buf {
    pst_step_rows_t step; /* keys, slots, rows and gradients */
    bool pending;
    pst_ticket_t push_rows, push_dense;
} step_buf_t;

struct pst_wd_remote {
    pst_wd_remote_opts_t opts;
    pst_wide_deep_t *model; /* its MLP holds the pulled deep weights and their gradient */
    pst_psclient_t *client; /* not owned */
    uint32_t width;
    size_t n_dense;
    int rows_tensor, dense_tensor;
    uint64_t clock;    /* steps pushed */
    bool dense_pulled; /* the MLP holds the global deep weights of `clock` */
    step_buf_t buf[2], eval;
    uint64_t *pull_keys; // (pull_cap) the trained keys of a chunk
    uint32_t *pull_at;   // (pull_cap) their index among the chunk's keys
    size_t pull_cap;
    uint8_t *trained; // (n_trained) trained[k] != 0 when key k occurs in training rows
    size_t n_trained;
    uint64_t keys_pushed, eval_wire, eval_raw;
};

pst_wd_remote_t *pst_wd_remote_new(const pst_wide_deep_spec_t *spec,
                                   const pst_wd_remote_opts_t *opts, pst_err_t *err)
{
    if (opts->n_workers < 1 || opts->worker >= opts->n_workers) {
        pst_err_set(err, PST_EINVAL, "wide & deep: worker %u of %u", opts->worker, opts->n_workers);
        return NULL;
    }
    pst_wd_remote_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        pst_err_set(err, PST_ENOMEM, "wide & deep: out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->rows_tensor = self->dense_tensor = -1;
    self->model = pst_wide_deep_new(spec, err);
    if (self->model == NULL) {
        pst_wd_remote_destroy(&self);
        return NULL;
    }
    self->width = pst_wide_deep_row_width(self->model);
    self->n_dense = pst_model_n_params(pst_wide_deep_mlp(self->model));
    return self;
}

static void step_buf_fini(step_buf_t *b)
{
    pst_step_rows_fini(&b->step);
    memset(b, 0, sizeof *b);
}

void pst_wd_remote_destroy(pst_wd_remote_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_wd_remote_t *self = *self_p;
    pst_wide_deep_destroy(&self->model);
    step_buf_fini(&self->buf[0]);
    step_buf_fini(&self->buf[1]);
    step_buf_fini(&self->eval);
    free(self->pull_keys);
    free(self->pull_at);
    free(self->trained);
    free(self);
    *self_p = NULL;
}

/* Waits for a step's pushes to be acknowledged. */
static int step_buf_flush(pst_wd_remote_t *r, step_buf_t *b, pst_err_t *err)
{
    if (!b->pending)
        return PST_OK;
    b->pending = false;
    pst_err_t scratch;
    int rc = pst_psclient_wait(r->client, b->push_rows, err);
    int dense_rc = pst_psclient_wait(r->client, b->push_dense, rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : dense_rc;
}

int pst_wd_remote_flush(pst_wd_remote_t *self, pst_err_t *err)
{
    if (self->client == NULL)
        return PST_OK;
    pst_err_t scratch;
    int rc = pst_psclient_flush(self->client, err);
    if (rc == PST_OK)
        rc = step_buf_flush(self, &self->buf[0], err);
    int rc2 = step_buf_flush(self, &self->buf[1], rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : rc2;
}

/* Pulls keys[0..n) into rows (none for n = 0) and, with dense, the deep stack into the MLP for
 * the current clock, while `prev` (may be NULL) has its pushes acknowledged. */
static int pull_weights(pst_wd_remote_t *r, const uint64_t *keys, size_t n, float *rows, bool dense,
                        step_buf_t *prev, pst_err_t *err)
{
    pst_psclient_t *c = r->client;
    pst_ticket_t rows_t, dense_t;
    float *params = pst_model_params(pst_wide_deep_mlp(r->model));
    bool rows_sent = false, dense_sent = false;
    int rc = PST_OK;
    if (n > 0) {
        rc = pst_psclient_pull_sparse(c, r->rows_tensor, keys, n, rows, r->clock, &rows_t, err);
        rows_sent = rc == PST_OK;
    }
    if (rc == PST_OK && dense) {
        rc = pst_psclient_pull(c, r->dense_tensor, params, r->clock, &dense_t, err);
        dense_sent = rc == PST_OK;
    }
    if (rc == PST_OK && prev != NULL)
        rc = step_buf_flush(r, prev, err);
    /* every ticket sent is waited on; the first failure keeps its message */
    pst_err_t scratch;
    int wait_rc = rows_sent ? pst_psclient_wait(c, rows_t, rc == PST_OK ? err : &scratch) : PST_OK;
    rc = rc != PST_OK ? rc : wait_rc;
    wait_rc = dense_sent ? pst_psclient_wait(c, dense_t, rc == PST_OK ? err : &scratch) : PST_OK;
    rc = rc != PST_OK ? rc : wait_rc;
    if (dense)
        r->dense_pulled = rc == PST_OK;
    return rc;
}

/* Batch-mean gradients become sums over the batch (the servers' constants are per example);
 * the servers average the workers' pushes (BSP) or scale each by 1/W (SSP, ASP), so the
 * workers' count is multiplied in as well. */
static void scale_gradients(pst_wd_remote_t *r, float *rows_grad, size_t n_keys, size_t n_rows)
{
    float scale = (float)n_rows * (float)r->opts.n_workers;
    float *dense = pst_model_grads(pst_wide_deep_mlp(r->model));
    for (size_t i = 0; i < n_keys * r->width; i++)
        rows_grad[i] *= scale;
    for (size_t i = 0; i < r->n_dense; i++)
        dense[i] *= scale;
}

static int push_gradients(pst_wd_remote_t *r, step_buf_t *cur, size_t n_keys, pst_err_t *err)
{
    pst_psclient_t *c = r->client;
    const float *dense = pst_model_grads(pst_wide_deep_mlp(r->model));
    int rc = pst_psclient_push_sparse(c, r->rows_tensor, cur->step.keys, n_keys, cur->step.grad,
                                      r->clock, r->opts.lr, &cur->push_rows, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_psclient_push(c, r->dense_tensor, dense, r->clock, r->opts.lr, &cur->push_dense, err);
    if (rc != PST_OK) {
        pst_psclient_wait(c, cur->push_rows, NULL);
        return rc;
    }
    cur->pending = true;
    return PST_OK;
}

/* The MLP's gradient arena is pushed without a copy: the next step's backward overwrites it only
 * after pull_weights has waited for that push. */
static int remote_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    pst_wd_remote_t *r = ctx;
    step_buf_t *cur = &r->buf[r->clock & 1], *prev = &r->buf[(r->clock + 1) & 1];
    size_t n_keys = 0;
    int rc = pst_step_rows_reserve(&cur->step, pst_sparse_batch_nnz(b), r->width, err);
    if (rc == PST_OK)
        rc = pst_step_rows_keys(&cur->step, b, &n_keys, err);
    if (rc == PST_OK)
        rc = pull_weights(r, cur->step.keys, n_keys, cur->step.rows, true, prev, err);
    pst_rng_t dropout;
    uint64_t draw = r->clock * r->opts.n_workers + r->opts.worker;
    pst_rng_init(&dropout, pst_rng_derive(r->opts.dropout_seed, draw));
    double mean_loss = 0.0;
    if (rc == PST_OK)
        rc = pst_wide_deep_step(r->model, b, cur->step.slot, cur->step.rows, n_keys, &dropout,
                                cur->step.grad, &mean_loss, err);
    if (rc != PST_OK)
        return rc;
    scale_gradients(r, cur->step.grad, n_keys, b->n_rows);
    if ((rc = push_gradients(r, cur, n_keys, err)) != PST_OK)
        return rc;
    r->clock++;
    r->dense_pulled = false;
    r->keys_pushed += n_keys;
    *loss = mean_loss;
    return PST_OK;
}

static int pull_reserve(pst_wd_remote_t *r, size_t n, pst_err_t *err)
{
    if (n <= r->pull_cap)
        return PST_OK;
    if (pst_array_resize((void **)&r->pull_keys, n, sizeof(uint64_t)) != PST_OK ||
        pst_array_resize((void **)&r->pull_at, n, sizeof(uint32_t)) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %zu keys", n);
    r->pull_cap = n;
    return PST_OK;
}

/* The chunk's keys that occur in training rows go into pull_keys; *n their count. */
static int select_trained(pst_wd_remote_t *r, size_t n_keys, size_t *n, pst_err_t *err)
{
    int rc = pull_reserve(r, n_keys, err);
    if (rc != PST_OK)
        return rc;
    size_t m = 0;
    for (size_t i = 0; i < n_keys; i++) {
        uint64_t key = r->eval.step.keys[i];
        if (key < r->n_trained && r->trained[key]) {
            r->pull_keys[m] = key;
            r->pull_at[m++] = (uint32_t)i;
        }
    }
    *n = m;
    return PST_OK;
}

/* Adds the traffic since `before` to the evaluation counters. */
static void count_eval(pst_wd_remote_t *r, const pst_psclient_stats_t *before)
{
    pst_psclient_stats_t after;
    pst_psclient_stats(r->client, &after);
    r->eval_wire += after.bytes_wire - before->bytes_wire;
    r->eval_raw += after.bytes_raw - before->bytes_raw;
}

/* Scores a chunk on the global weights of the current clock. Only keys that occur in training
 * rows are pulled (a pull creates rows on the servers); the others count as zero rows, as in
 * the local trainer. The deep stack is pulled once per clock. */
static int remote_predict(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    pst_wd_remote_t *r = ctx;
    step_buf_t *e = &r->eval;
    int rc = pst_wd_remote_flush(r, err);
    pst_psclient_stats_t before;
    pst_psclient_stats(r->client, &before);
    size_t n_keys = 0, n_pull = 0, w = r->width;
    if (rc == PST_OK)
        rc = pst_step_rows_reserve(&e->step, pst_sparse_batch_nnz(b), w, err);
    if (rc == PST_OK)
        rc = pst_step_rows_keys(&e->step, b, &n_keys, err);
    if (rc == PST_OK)
        rc = select_trained(r, n_keys, &n_pull, err);
    /* e->step.grad holds the pulled rows, compacted */
    if (rc == PST_OK)
        rc = pull_weights(r, r->pull_keys, n_pull, e->step.grad, !r->dense_pulled, NULL, err);
    count_eval(r, &before);
    if (rc != PST_OK)
        return rc;
    memset(e->step.rows, 0, n_keys * w * sizeof(float));
    for (size_t j = 0; j < n_pull; j++)
        memcpy(e->step.rows + (size_t)r->pull_at[j] * w, e->step.grad + j * w, w * sizeof(float));
    return pst_wide_deep_predict(r->model, b, e->step.slot, e->step.rows, n_keys, prob, err);
}

/* The rejoin hook: as the sparse trainer's (worker/train/sparse_remote.c). */
static int flush_cb(void *ctx, pst_err_t *err)
{
    return pst_wd_remote_flush(ctx, err);
}

static uint64_t remote_rejoin(void *ctx)
{
    pst_wd_remote_t *r = ctx;
    uint64_t behind = pst_train_rejoin_steps(r->client, &r->clock, flush_cb, r);
    if (behind > 0)
        r->dense_pulled = false; /* the deep stack is pulled again at the new clock */
    return behind;
}

pst_sparse_trainer_t pst_wd_remote_trainer(pst_wd_remote_t *self)
{
    return (pst_sparse_trainer_t){self, remote_step, remote_predict, NULL, remote_rejoin};
}

int pst_wd_remote_register(pst_wd_remote_t *self, pst_psclient_t *client, pst_err_t *err)
{
    const pst_wd_remote_opts_t *o = &self->opts;
    self->client = client;
    self->rows_tensor = pst_psclient_register_sparse(client, o->model_id, PST_WD_REMOTE_ROWS_TENSOR,
                                                     self->width, o->init_scale, o->init_seed, err);
    if (self->rows_tensor < 0)
        return self->rows_tensor;
    self->dense_tensor = pst_psclient_register_dense(
        client, o->model_id, PST_WD_REMOTE_DENSE_TENSOR, self->n_dense, err);
    if (self->dense_tensor < 0)
        return self->dense_tensor;
    pst_wide_deep_init_dense(self->model, o->dense_seed);
    const float *init = pst_model_params(pst_wide_deep_mlp(self->model));
    uint64_t rows_clock = 0, dense_clock = 0;
    int rc = pst_psclient_init_on_servers(client, self->rows_tensor, NULL, &rows_clock, err);
    if (rc == PST_OK)
        rc = pst_psclient_init_on_servers(client, self->dense_tensor, init, &dense_clock, err);
    if (rc == PST_OK && (rows_clock != 0 || dense_clock != 0))
        rc = pst_err_set(err, PST_ESTATE, "the servers already hold clock %llu of this model",
                         (unsigned long long)(rows_clock > dense_clock ? rows_clock : dense_clock));
    return rc;
}

int pst_wd_remote_mark_trained(pst_wd_remote_t *self, const pst_dataset_t *train, size_t *n_keys,
                               pst_err_t *err)
{
    uint8_t *trained = calloc(train->n_features > 0 ? train->n_features : 1, 1);
    if (trained == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %zu feature marks",
                           train->n_features);
    size_t nnz = train->n_rows > 0 ? train->row_ptr[train->n_rows] - train->row_ptr[0] : 0;
    size_t keys = 0;
    for (size_t k = 0; k < nnz; k++) {
        uint32_t key = train->col_idx[train->row_ptr[0] + k];
        if (key >= train->n_features) {
            free(trained);
            return pst_err_set(err, PST_ERANGE, "training entry %zu: feature %u of %zu", k, key,
                               train->n_features);
        }
        keys += trained[key] == 0;
        trained[key] = 1;
    }
    free(self->trained);
    self->trained = trained;
    self->n_trained = train->n_features;
    *n_keys = keys;
    return PST_OK;
}

void pst_wd_remote_stats(const pst_wd_remote_t *self, pst_wd_remote_stats_t *out)
{
    *out = (pst_wd_remote_stats_t){.steps = self->clock,
                                   .keys_pushed = self->keys_pushed,
                                   .eval_wire = self->eval_wire,
                                   .eval_raw = self->eval_raw};
}

/* ---- the trained model into a local one ---- */

static int check_shape(pst_wd_remote_t *r, pst_wd_local_t *into, pst_err_t *err)
{
    pst_wide_deep_t *m = pst_wd_local_model(into);
    size_t n_dense = pst_model_n_params(pst_wide_deep_mlp(m));
    if (pst_wide_deep_row_width(m) != r->width || n_dense != r->n_dense)
        return pst_err_set(err, PST_EINVAL,
                           "wide & deep: the local model has rows of %u and %zu deep parameters, "
                           "the servers' rows of %u and %zu",
                           pst_wide_deep_row_width(m), n_dense, r->width, r->n_dense);
    if (r->trained == NULL)
        return pst_err_set(err, PST_ESTATE, "wide & deep: no trained keys marked to pull");
    return PST_OK;
}

/* The marked keys from *next on, at most MODEL_PULL_KEYS, into pull_keys; *n their count. */
static size_t next_trained_keys(pst_wd_remote_t *r, size_t *next)
{
    size_t n = 0, k = *next;
    for (; k < r->n_trained && n < MODEL_PULL_KEYS; k++) {
        if (r->trained[k])
            r->pull_keys[n++] = k;
    }
    *next = k;
    return n;
}

/* Every marked key's row, chunk by chunk, into the local row store. */
static int pull_rows_into(pst_wd_remote_t *r, pst_sparse_model_t *store, pst_err_t *err)
{
    step_buf_t *e = &r->eval;
    int rc = pull_reserve(r, MODEL_PULL_KEYS, err);
    if (rc == PST_OK)
        rc = pst_step_rows_reserve(&e->step, MODEL_PULL_KEYS, r->width, err);
    for (size_t next = 0, n; rc == PST_OK && (n = next_trained_keys(r, &next)) > 0;) {
        pst_ticket_t t;
        rc = pst_psclient_pull_sparse(r->client, r->rows_tensor, r->pull_keys, n, e->step.rows,
                                      r->clock, &t, err);
        if (rc == PST_OK)
            rc = pst_psclient_wait(r->client, t, err);
        if (rc == PST_OK)
            rc = pst_sparse_model_put(store, r->pull_keys, n, e->step.rows, err);
    }
    return rc;
}

int pst_wd_remote_pull_model(pst_wd_remote_t *self, pst_wd_local_t *into, pst_err_t *err)
{
    int rc = check_shape(self, into, err);
    if (rc == PST_OK && self->client == NULL)
        rc = pst_err_set(err, PST_ESTATE, "wide & deep: not registered with the servers");
    if (rc == PST_OK)
        rc = pst_wd_remote_flush(self, err);
    if (rc != PST_OK)
        return rc;
    pst_psclient_stats_t before;
    pst_psclient_stats(self->client, &before);
    if (!self->dense_pulled)
        rc = pull_weights(self, NULL, 0, NULL, true, NULL, err);
    if (rc == PST_OK) {
        pst_model_t *mlp = pst_wide_deep_mlp(pst_wd_local_model(into));
        memcpy(pst_model_params(mlp), pst_model_params(pst_wide_deep_mlp(self->model)),
               self->n_dense * sizeof(float));
        rc = pull_rows_into(self, pst_wd_local_rows(into), err);
    }
    count_eval(self, &before);
    return rc;
}
