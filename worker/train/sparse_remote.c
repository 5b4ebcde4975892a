/* The parameter-server trainer of sparse models: each step pulls exactly its batch's rows and the
 * bias, and pushes their gradients while the next batch is prepared. */
#include "worker/train/sparse_remote.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void pst_sparse_remote_init(pst_sparse_remote_t *r, pst_psclient_t *client,
                            const pst_sparse_remote_opts_t *opts)
{
    memset(r, 0, sizeof *r);
    r->client = client;
    r->opts = *opts;
    r->width = pst_sparse_row_width(&opts->spec);
}

static void step_buf_fini(pst_sparse_remote_buf_t *b)
{
    free(b->keys);
    free(b->slot);
    free(b->rows);
    free(b->grad);
    memset(b, 0, sizeof *b);
}

static int step_buf_reserve(pst_sparse_remote_buf_t *b, size_t nnz, uint32_t width, pst_err_t *err)
{
    if (nnz <= b->cap)
        return PST_OK;
    int rc = pst_array_resize((void **)&b->keys, nnz, sizeof(uint64_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&b->slot, nnz, sizeof(uint32_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&b->rows, nnz, width * sizeof(float));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&b->grad, nnz, width * sizeof(float));
    if (rc != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for a batch of %zu entries", nnz);
    b->cap = nnz;
    return PST_OK;
}

/* Waits for a step's pushes to be acknowledged. */
static int step_buf_flush(pst_sparse_remote_t *r, pst_sparse_remote_buf_t *b, pst_err_t *err)
{
    if (!b->pending)
        return PST_OK;
    b->pending = false;
    pst_err_t scratch;
    int rc = pst_psclient_wait(r->client, b->push_rows, err);
    int bias_rc = pst_psclient_wait(r->client, b->push_bias, rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : bias_rc;
}

int pst_sparse_remote_flush(pst_sparse_remote_t *r, pst_err_t *err)
{
    pst_err_t scratch;
    int rc = step_buf_flush(r, &r->buf[0], err);
    int rc2 = step_buf_flush(r, &r->buf[1], rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : rc2;
}

/* Pulls keys[0..n) into rows and the bias for the current clock, while `prev` (may be NULL)
 * has its pushes acknowledged. */
static int pull_weights(pst_sparse_remote_t *r, const uint64_t *keys, size_t n, float *rows,
                        float *bias, pst_sparse_remote_buf_t *prev, pst_err_t *err)
{
    pst_psclient_t *c = r->client;
    pst_ticket_t rows_t, bias_t;
    int rc = pst_psclient_pull_sparse(c, r->rows_tensor, keys, n, rows, r->clock, &rows_t, err);
    if (rc == PST_OK)
        rc = pst_psclient_pull(c, r->bias_tensor, bias, r->clock, &bias_t, err);
    if (rc != PST_OK)
        return rc;
    pst_err_t scratch;
    rc = prev != NULL ? step_buf_flush(r, prev, err) : PST_OK;
    int rows_rc = pst_psclient_wait(c, rows_t, rc == PST_OK ? err : &scratch);
    rc = rc != PST_OK ? rc : rows_rc;
    int bias_rc = pst_psclient_wait(c, bias_t, rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : bias_rc;
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
        cur->grad[i] *= scale;
    cur->bias_grad *= scale;
}

static int remote_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    pst_sparse_remote_t *r = ctx;
    pst_sparse_remote_buf_t *cur = &r->buf[r->clock & 1], *prev = &r->buf[(r->clock + 1) & 1];
    size_t n_keys = 0;
    int rc = step_buf_reserve(cur, pst_sparse_batch_nnz(b), r->width, err);
    if (rc == PST_OK)
        rc = pst_sparse_batch_keys(b, cur->keys, &n_keys, cur->slot, err);
    if (rc == PST_OK)
        rc = pull_weights(r, cur->keys, n_keys, cur->rows, &cur->bias, prev, err);
    pst_sparse_weights_t w = {.rows = cur->rows, .n_keys = n_keys, .bias = cur->bias};
    pst_sparse_grad_t g = {.rows = cur->grad};
    if (rc == PST_OK)
        rc = pst_sparse_step(&r->opts.spec, b, cur->slot, &w, &g, err);
    if (rc != PST_OK)
        return rc;
    cur->bias_grad = g.bias;
    scale_gradient(r, cur, n_keys, b->n_rows);
    pst_psclient_t *c = r->client;
    rc = pst_psclient_push_sparse(c, r->rows_tensor, cur->keys, n_keys, cur->grad, r->clock,
                                  r->opts.lr, &cur->push_rows, err);
    if (rc == PST_OK)
        rc = pst_psclient_push(c, r->bias_tensor, &cur->bias_grad, r->clock, r->opts.lr,
                               &cur->push_bias, err);
    if (rc != PST_OK)
        return rc;
    cur->pending = true;
    r->clock++;
    r->keys_pushed += n_keys;
    *loss = g.loss;
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
        uint64_t key = r->eval.keys[i];
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
    int rc = pst_sparse_remote_flush(r, err);
    pst_psclient_stats_t before, after;
    pst_psclient_stats(r->client, &before);
    size_t n_keys = 0, n_pull = 0, w = r->width;
    if (rc == PST_OK)
        rc = step_buf_reserve(e, pst_sparse_batch_nnz(b), w, err);
    if (rc == PST_OK)
        rc = pst_sparse_batch_keys(b, e->keys, &n_keys, e->slot, err);
    if (rc == PST_OK)
        rc = select_trained(r, n_keys, &n_pull, err);
    /* e->grad holds the pulled rows, compacted */
    if (rc == PST_OK)
        rc = pull_weights(r, r->pull_keys, n_pull, e->grad, &e->bias, NULL, err);
    if (rc != PST_OK)
        return rc;
    memset(e->rows, 0, n_keys * w * sizeof(float));
    for (size_t j = 0; j < n_pull; j++)
        memcpy(e->rows + (size_t)r->pull_at[j] * w, e->grad + j * w, w * sizeof(float));
    pst_psclient_stats(r->client, &after);
    r->eval_wire += after.bytes_wire - before.bytes_wire;
    r->eval_raw += after.bytes_raw - before.bytes_raw;
    r->eval_wire_sent += after.bytes_wire_sent - before.bytes_wire_sent;
    r->eval_pull_wait_ms += after.pull_wait_ms - before.pull_wait_ms;
    pst_sparse_weights_t weights = {.rows = e->rows, .n_keys = n_keys, .bias = e->bias};
    return pst_sparse_predict(&r->opts.spec, b, e->slot, &weights, prob, err);
}

void pst_sparse_remote_fini(pst_sparse_remote_t *r)
{
    step_buf_fini(&r->buf[0]);
    step_buf_fini(&r->buf[1]);
    step_buf_fini(&r->eval);
    free(r->pull_keys);
    free(r->pull_at);
    free(r->trained);
    r->trained = NULL;
}

int pst_sparse_remote_register(pst_sparse_remote_t *r, pst_err_t *err)
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
    uint64_t rows_clock = 0, bias_clock = 0;
    int rc = pst_psclient_init_on_servers(c, r->rows_tensor, NULL, &rows_clock, err);
    if (rc == PST_OK)
        rc = pst_psclient_init_on_servers(c, r->bias_tensor, &zero, &bias_clock, err);
    if (rc == PST_OK && (rows_clock != 0 || bias_clock != 0))
        rc = pst_err_set(err, PST_ESTATE, "the servers already hold clock %llu of this model",
                         (unsigned long long)rows_clock);
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

pst_sparse_trainer_t pst_sparse_remote_trainer(pst_sparse_remote_t *r)
{
    return (pst_sparse_trainer_t){r, remote_step, remote_predict};
}
