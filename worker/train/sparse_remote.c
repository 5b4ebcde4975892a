/* The parameter-server trainer of sparse models: each step pulls exactly its batch's rows and the
 * bias (sent ahead, while the previous batch computes, when prefetching), and pushes their
 * gradients without waiting for the acknowledgement. */
#include "worker/train/sparse_remote.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "worker/train/rejoin.h"

void pst_sparse_remote_init(pst_sparse_remote_t *r, pst_psclient_t *client,
                            const pst_sparse_remote_opts_t *opts)
{
    memset(r, 0, sizeof *r);
    r->client = client;
    r->opts = *opts;
    r->width = pst_sparse_row_width(&opts->spec);
    int d = opts->prefetch_depth;
    r->ahead = d < 1                             ? 1
               : d > PST_SPARSE_REMOTE_MAX_AHEAD ? PST_SPARSE_REMOTE_MAX_AHEAD
                                                 : (uint32_t)d;
    r->n_bufs = r->ahead + 2;
}

/* The buffer of step clock. */
static pst_sparse_remote_buf_t *buf_of(pst_sparse_remote_t *r, uint64_t clock)
{
    return &r->buf[clock % r->n_bufs];
}

static void step_buf_fini(pst_sparse_remote_buf_t *b)
{
    pst_step_rows_fini(&b->step);
    memset(b, 0, sizeof *b);
}

/* Waits for a request of the step; the time blocked is added to *waited (NULL: not counted, as
 * for the pulls of evaluation and of pst_sparse_remote_pull_model). */
static int timed_wait(pst_sparse_remote_t *r, pst_ticket_t t, double *waited, pst_err_t *err)
{
    double t0 = pst_clock_seconds();
    int rc = pst_psclient_wait(r->client, t, err);
    if (waited != NULL)
        *waited += pst_clock_seconds() - t0;
    return rc;
}

/* Waits for both tickets (rows, then bias); the first failure is reported. */
static int wait_pair(pst_sparse_remote_t *r, pst_ticket_t rows, pst_ticket_t bias, double *waited,
                     pst_err_t *err)
{
    pst_err_t scratch;
    int rc = timed_wait(r, rows, waited, err);
    int bias_rc = timed_wait(r, bias, waited, rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : bias_rc;
}

/* Waits for a step's pushes to be acknowledged and for a pull sent ahead (its rows dropped). */
static int step_buf_flush(pst_sparse_remote_t *r, pst_sparse_remote_buf_t *b, pst_err_t *err)
{
    int rc = PST_OK, pull_rc = PST_OK;
    pst_err_t scratch;
    if (b->pending) {
        b->pending = false;
        rc = wait_pair(r, b->push_rows, b->push_bias, &r->times.push_wait, err);
    }
    if (b->prepared) {
        b->prepared = false;
        pull_rc = wait_pair(r, b->pull_rows, b->pull_bias, &r->times.pull_wait,
                            rc == PST_OK ? err : &scratch);
    }
    return rc != PST_OK ? rc : pull_rc;
}

int pst_sparse_remote_flush(pst_sparse_remote_t *r, pst_err_t *err)
{
    pst_err_t scratch;
    int rc = r->client != NULL ? pst_psclient_flush(r->client, err) : PST_OK;
    for (int i = 0; i < PST_SPARSE_REMOTE_DEPTH; i++) {
        int one = step_buf_flush(r, &r->buf[i], rc == PST_OK ? err : &scratch);
        rc = rc != PST_OK ? rc : one;
    }
    return rc;
}

/* Sends the pulls of keys[0..n) into rows and of the bias for clock. */
static int send_pulls(pst_sparse_remote_t *r, const uint64_t *keys, size_t n, float *rows,
                      float *bias, uint64_t clock, pst_ticket_t *rows_t, pst_ticket_t *bias_t,
                      pst_err_t *err)
{
    pst_psclient_t *c = r->client;
    int rc = pst_psclient_pull_sparse(c, r->rows_tensor, keys, n, rows, clock, rows_t, err);
    if (rc == PST_OK)
        rc = pst_psclient_pull(c, r->bias_tensor, bias, clock, bias_t, err);
    return rc;
}

/* Pulls keys[0..n) into rows and the bias for the current clock, and waits for them (the time
 * blocked is added to *waited). */
static int pull_weights(pst_sparse_remote_t *r, const uint64_t *keys, size_t n, float *rows,
                        float *bias, double *waited, pst_err_t *err)
{
    pst_ticket_t rows_t, bias_t;
    int rc = send_pulls(r, keys, n, rows, bias, r->clock, &rows_t, &bias_t, err);
    return rc == PST_OK ? wait_pair(r, rows_t, bias_t, waited, err) : rc;
}

/* Makes buffer b ready for a batch of step `clock`: the pushes it held (step clock - n_bufs)
 * acknowledged, the batch's unique keys extracted. */
static int step_buf_load(pst_sparse_remote_t *r, pst_sparse_remote_buf_t *b,
                         const pst_sparse_batch_t *batch, pst_err_t *err)
{
    int rc = step_buf_flush(r, b, err);
    if (rc == PST_OK)
        rc = pst_step_rows_reserve(&b->step, pst_sparse_batch_nnz(batch), r->width, err);
    if (rc == PST_OK)
        rc = pst_step_rows_keys(&b->step, batch, &b->n_keys, err);
    return rc;
}

/* The prepare hook: a coming step's keys, and its pull sent for that step's clock (the first
 * clock not yet prepared: the current one at an epoch's start, else one of the next `ahead`). */
static int remote_prepare(void *ctx, const pst_sparse_batch_t *next, pst_err_t *err)
{
    pst_sparse_remote_t *r = ctx;
    double t0 = pst_clock_seconds();
    uint64_t clock = r->clock, end = r->clock + r->ahead + 1;
    while (clock < end && buf_of(r, clock)->prepared)
        clock++;
    if (clock == end)
        return pst_err_set(err, PST_ESTATE, "sparse trainer: %u batches already prepared",
                           r->ahead + 1);
    pst_sparse_remote_buf_t *b = buf_of(r, clock);
    int rc = step_buf_load(r, b, next, err);
    if (rc == PST_OK)
        rc = send_pulls(r, b->step.keys, b->n_keys, b->step.rows, &b->bias, clock, &b->pull_rows,
                        &b->pull_bias, err);
    if (rc == PST_OK) {
        b->prepared = true;
        b->prepared_row_ptr = next->row_ptr;
        b->prepared_rows = next->n_rows;
    }
    r->times.total += pst_clock_seconds() - t0;
    return rc;
}

/* The current step's weights: waited for when prepare sent their pull, pulled now otherwise. */
static int step_weights(pst_sparse_remote_t *r, pst_sparse_remote_buf_t *cur,
                        const pst_sparse_batch_t *b, pst_err_t *err)
{
    if (cur->prepared && cur->prepared_row_ptr == b->row_ptr && cur->prepared_rows == b->n_rows) {
        cur->prepared = false;
        return wait_pair(r, cur->pull_rows, cur->pull_bias, &r->times.pull_wait, err);
    }
    int rc = step_buf_load(r, cur, b, err);
    return rc == PST_OK ? pull_weights(r, cur->step.keys, cur->n_keys, cur->step.rows, &cur->bias,
                                       &r->times.pull_wait, err)
                        : rc;
}

/* Batch-mean gradients become sums over the batch (the servers' constants are per example);
 * the servers average the workers' pushes (BSP) or scale each by 1/W (SSP, ASP), so the
 * workers' count is multiplied in as well. */
static void scale_gradient(pst_sparse_remote_t *r, pst_sparse_remote_buf_t *cur, size_t n_keys,
                           size_t n_rows)
{
    float scale = (float)n_rows * (float)r->opts.n_workers;
    size_t n = n_keys * r->width;
    for (size_t i = 0; i < n; i++)
        cur->step.grad[i] *= scale;
    cur->bias_grad *= scale;
}

static int remote_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    pst_sparse_remote_t *r = ctx;
    double t0 = pst_clock_seconds();
    pst_sparse_remote_buf_t *cur = buf_of(r, r->clock);
    int rc = step_weights(r, cur, b, err);
    pst_sparse_weights_t w = {.rows = cur->step.rows, .n_keys = cur->n_keys, .bias = cur->bias};
    pst_sparse_grad_t g = {.rows = cur->step.grad};
    if (rc == PST_OK)
        rc = pst_sparse_step(&r->opts.spec, b, cur->step.slot, &w, &g, err);
    if (rc != PST_OK)
        return rc;
    cur->bias_grad = g.bias;
    scale_gradient(r, cur, cur->n_keys, b->n_rows);
    pst_psclient_t *c = r->client;
    rc = pst_psclient_push_sparse(c, r->rows_tensor, cur->step.keys, cur->n_keys, cur->step.grad,
                                  r->clock, r->opts.lr, &cur->push_rows, err);
    if (rc == PST_OK)
        rc = pst_psclient_push(c, r->bias_tensor, &cur->bias_grad, r->clock, r->opts.lr,
                               &cur->push_bias, err);
    if (rc == PST_OK && r->opts.pushes_now)
        rc = pst_psclient_flush(c, err);
    if (rc != PST_OK)
        return rc;
    cur->pending = true;
    r->clock++;
    r->keys_pushed += cur->n_keys;
    *loss = g.loss;
    r->times.total += pst_clock_seconds() - t0;
    return PST_OK;
}

/* The chunk's keys that occur in training rows go into pull_keys; *n their count. */
static int select_trained(pst_sparse_remote_t *r, size_t n_keys, size_t *n, pst_err_t *err)
{
    if (n_keys > r->pull_cap) {
        if (pst_array_resize((void **)&r->pull_keys, n_keys, sizeof(uint64_t)) != PST_OK ||
            pst_array_resize((void **)&r->pull_at, n_keys, sizeof(uint32_t)) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "out of memory for %zu keys", n_keys);
        r->pull_cap = n_keys;
    }
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

/* Scores a chunk on the global weights of the current clock. Only keys that occur in training
 * rows are pulled (a pull creates rows on the servers); the others count as zero rows, as in
 * a local model. */
static int remote_predict(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    pst_sparse_remote_t *r = ctx;
    pst_sparse_remote_buf_t *e = &r->eval;
    double eval_wait = 0; /* evaluation is kept out of the step times */
    int rc = pst_sparse_remote_flush(r, err);
    pst_psclient_stats_t before, after;
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
        rc = pull_weights(r, r->pull_keys, n_pull, e->step.grad, &e->bias, &eval_wait, err);
    if (rc != PST_OK)
        return rc;
    memset(e->step.rows, 0, n_keys * w * sizeof(float));
    for (size_t j = 0; j < n_pull; j++)
        memcpy(e->step.rows + (size_t)r->pull_at[j] * w, e->step.grad + j * w, w * sizeof(float));
    pst_psclient_stats(r->client, &after);
    r->eval_wire += after.bytes_wire - before.bytes_wire;
    r->eval_raw += after.bytes_raw - before.bytes_raw;
    r->eval_wire_sent += after.bytes_wire_sent - before.bytes_wire_sent;
    r->eval_pull_wait_ms += after.pull_wait_ms - before.pull_wait_ms;
    pst_sparse_weights_t weights = {.rows = e->step.rows, .n_keys = n_keys, .bias = e->bias};
    return pst_sparse_predict(&r->opts.spec, b, e->step.slot, &weights, prob, err);
}

void pst_sparse_remote_fini(pst_sparse_remote_t *r)
{
    for (int i = 0; i < PST_SPARSE_REMOTE_DEPTH; i++)
        step_buf_fini(&r->buf[i]);
    step_buf_fini(&r->eval);
    free(r->pull_keys);
    free(r->pull_at);
    free(r->trained);
    r->trained = NULL;
}

/* Registers and INITs both tensors; the clocks the servers completed for each. */
static int register_tensors(pst_sparse_remote_t *r, uint64_t *rows_clock, uint64_t *bias_clock,
                            pst_err_t *err)
{
    pst_psclient_t *c = r->client;
    r->rows_tensor =
        pst_psclient_register_sparse(c, 0, 0, r->width, r->opts.init_scale, r->opts.init_seed, err);
    if (r->rows_tensor < 0)
        return r->rows_tensor;
    r->bias_tensor = pst_psclient_register_dense(c, 0, 1, 1, err);
    if (r->bias_tensor < 0)
        return r->bias_tensor;
    const float zero = 0.0f;
    int rc = pst_psclient_init_on_servers(c, r->rows_tensor, NULL, rows_clock, err);
    if (rc == PST_OK)
        rc = pst_psclient_init_on_servers(c, r->bias_tensor, &zero, bias_clock, err);
    return rc;
}

int pst_sparse_remote_register(pst_sparse_remote_t *r, pst_err_t *err)
{
    uint64_t rows_clock = 0, bias_clock = 0;
    int rc = register_tensors(r, &rows_clock, &bias_clock, err);
    if (rc == PST_OK && (rows_clock != 0 || bias_clock != 0))
        rc = pst_err_set(err, PST_ESTATE, "the servers already hold clock %llu of this model",
                         (unsigned long long)rows_clock);
    return rc;
}

int pst_sparse_remote_resume(pst_sparse_remote_t *r, uint64_t *clock, pst_err_t *err)
{
    uint64_t rows_clock = 0, bias_clock = 0;
    *clock = 0;
    int rc = register_tensors(r, &rows_clock, &bias_clock, err);
    if (rc == PST_OK && rows_clock != bias_clock)
        rc = pst_err_set(err, PST_ESTATE,
                         "--resume: the servers restored the rows at clock %llu but the bias at "
                         "%llu",
                         (unsigned long long)rows_clock, (unsigned long long)bias_clock);
    if (rc == PST_OK)
        *clock = r->clock = rows_clock;
    return rc;
}

int pst_sparse_remote_mark_trained(pst_sparse_remote_t *r, const pst_dataset_t *train,
                                   size_t *n_keys, pst_err_t *err)
{
    uint8_t *trained = calloc(train->n_features > 0 ? train->n_features : 1, 1);
    if (trained == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    size_t nnz = train->n_rows > 0 ? train->row_ptr[train->n_rows] - train->row_ptr[0] : 0;
    size_t keys = 0;
    for (size_t k = 0; k < nnz; k++) {
        uint32_t key = train->col_idx[train->row_ptr[0] + k];
        keys += trained[key] == 0;
        trained[key] = 1;
    }
    free(r->trained);
    r->trained = trained;
    r->n_trained = train->n_features;
    *n_keys = keys;
    return PST_OK;
}

/* The rejoin hook: the steps between this worker's clock and the one a stale push revealed,
 * after the requests in flight (pulls sent ahead, pushes) are answered and forgotten. */
static int flush_cb(void *ctx, pst_err_t *err)
{
    return pst_sparse_remote_flush(ctx, err);
}

static uint64_t remote_rejoin(void *ctx)
{
    pst_sparse_remote_t *r = ctx;
    return pst_train_rejoin_steps(r->client, &r->clock, flush_cb, r);
}

pst_sparse_trainer_t pst_sparse_remote_trainer(pst_sparse_remote_t *r)
{
    return (pst_sparse_trainer_t){r, remote_step, remote_predict,
                                  r->opts.prefetch ? remote_prepare : NULL, remote_rejoin};
}

/* The marked keys from *next on, at most PST_SPARSE_REMOTE_PULL_CHUNK of them, into pull_keys
 * (ascending); *next moves past them. */
static size_t next_marked_keys(pst_sparse_remote_t *r, size_t *next)
{
    size_t m = 0, k = *next;
    for (; k < r->n_trained && m < PST_SPARSE_REMOTE_PULL_CHUNK; k++)
        if (r->trained[k])
            r->pull_keys[m++] = k;
    *next = k;
    return m;
}

int pst_sparse_remote_pull_model(pst_sparse_remote_t *r, pst_sparse_model_t *model, pst_err_t *err)
{
    if (r->trained == NULL)
        return pst_err_set(
            err, PST_ESTATE,
            "pulling the model: no keys were marked (pst_sparse_remote_mark_trained)");
    if (pst_sparse_model_row_width(model) != r->width)
        return pst_err_set(err, PST_EINVAL, "pulling the model: local rows of %u floats, not %u",
                           pst_sparse_model_row_width(model), r->width);
    pst_sparse_remote_buf_t *e = &r->eval;
    enum { CHUNK = PST_SPARSE_REMOTE_PULL_CHUNK };
    int rc = pst_sparse_remote_flush(r, err);
    if (rc == PST_OK && r->pull_cap < CHUNK &&
        (pst_array_resize((void **)&r->pull_keys, CHUNK, sizeof(uint64_t)) != PST_OK ||
         pst_array_resize((void **)&r->pull_at, CHUNK, sizeof(uint32_t)) != PST_OK))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory for %d keys", CHUNK);
    else if (rc == PST_OK && r->pull_cap < CHUNK)
        r->pull_cap = CHUNK;
    if (rc == PST_OK)
        rc = pst_step_rows_reserve(&e->step, CHUNK, r->width, err);
    pst_psclient_stats_t before, after;
    pst_psclient_stats(r->client, &before);
    float bias = 0.0f;
    for (size_t next = 0; rc == PST_OK && next < r->n_trained;) {
        size_t n = next_marked_keys(r, &next);
        rc = pull_weights(r, r->pull_keys, n, e->step.rows, &bias, NULL, err);
        if (rc == PST_OK)
            rc = pst_sparse_model_put(model, r->pull_keys, n, e->step.rows, err);
    }
    if (rc == PST_OK && r->n_trained == 0) /* no keys: the bias alone */
        rc = pull_weights(r, r->pull_keys, 0, e->step.rows, &bias, NULL, err);
    pst_psclient_stats(r->client, &after);
    r->eval_wire += after.bytes_wire - before.bytes_wire;
    r->eval_raw += after.bytes_raw - before.bytes_raw;
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "pulling the model: ");
    pst_sparse_model_set_bias(model, bias);
    return PST_OK;
}
