/* The sparse training loop: batches of a CSR set or a stream, a trainer's hooks, evaluation. */
#include "worker/train/sparse_loop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* Rows scored per predict call when evaluating. */
enum { EVAL_ROWS = 512 };

/* Rows ahead of the one being copied whose offsets (ROW_AHEAD) and entries (DATA_AHEAD) are
 * prefetched: shuffled rows are scattered over the whole CSR arrays. */
enum { ROW_AHEAD = 16, DATA_AHEAD = 4 };

static int local_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    return pst_sparse_model_update(ctx, b, loss, err);
}

static int local_predict(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    return pst_sparse_model_predict(ctx, b, prob, err);
}

pst_sparse_trainer_t pst_sparse_trainer_local(pst_sparse_model_t *model)
{
    return (pst_sparse_trainer_t){model, local_step, local_predict, NULL, NULL};
}

/* Rows [start, start + n) of a CSR set as a batch, without copying. */
static pst_sparse_batch_t window(const pst_dataset_t *d, size_t start, size_t n)
{
    return (pst_sparse_batch_t){.n_rows = n,
                                .row_ptr = d->row_ptr + start,
                                .col32 = d->col_idx,
                                .val = d->val,
                                .y = d->y + start};
}

void pst_sparse_loop_init(pst_sparse_loop_t *self, pst_sparse_trainer_t trainer,
                          const pst_sparse_loop_opts_t *opts)
{
    memset(self, 0, sizeof *self);
    self->trainer = trainer;
    self->opts = *opts;
    pst_rng_init(&self->rng, opts->seed);
    self->skip_left = opts->skip_steps;
}

static void loop_batch_fini(pst_sparse_loop_batch_t *g)
{
    free(g->row_ptr);
    free(g->col);
    free(g->val);
    free(g->y);
}

void pst_sparse_loop_fini(pst_sparse_loop_t *self)
{
    free(self->order);
    for (int i = 0; i <= PST_SPARSE_LOOP_MAX_AHEAD; i++)
        loop_batch_fini(&self->batch[i]);
    memset(self, 0, sizeof *self);
}

static int batch_reserve(pst_sparse_loop_batch_t *g, size_t n_rows, size_t nnz)
{
    int rc = PST_OK;
    if (n_rows > g->rows_cap) {
        rc = pst_array_resize((void **)&g->row_ptr, n_rows + 1, sizeof(size_t));
        if (rc == PST_OK)
            rc = pst_array_resize((void **)&g->y, n_rows, sizeof(float));
        if (rc == PST_OK)
            g->rows_cap = n_rows;
    }
    if (rc == PST_OK && nnz > g->nnz_cap) {
        rc = pst_array_resize((void **)&g->col, nnz, sizeof(uint32_t));
        if (rc == PST_OK)
            rc = pst_array_resize((void **)&g->val, nnz, sizeof(float));
        if (rc == PST_OK)
            g->nnz_cap = nnz;
    }
    return rc;
}

/* Prefetches the entries of the row DATA_AHEAD rows ahead of row i of idx. */
static void prefetch_row(const pst_dataset_t *d, const size_t *idx, size_t i, size_t n)
{
    if (i + DATA_AHEAD >= n)
        return;
    size_t ahead = d->row_ptr[idx[i + DATA_AHEAD]];
    __builtin_prefetch(d->col_idx + ahead);
    if (d->val != NULL)
        __builtin_prefetch(d->val + ahead);
    __builtin_prefetch(&d->y[idx[i + DATA_AHEAD]]);
}

/* Rows idx[0..n) of d copied into one batch. */
static int gather(pst_sparse_loop_batch_t *g, const pst_dataset_t *d, const size_t *idx, size_t n,
                  pst_sparse_batch_t *out, pst_err_t *err)
{
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + ROW_AHEAD < n)
            __builtin_prefetch(&d->row_ptr[idx[i + ROW_AHEAD]]);
        nnz += d->row_ptr[idx[i] + 1] - d->row_ptr[idx[i]];
    }
    if (batch_reserve(g, n, nnz) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for a batch of %zu entries", nnz);
    size_t at = 0;
    g->row_ptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        prefetch_row(d, idx, i, n);
        size_t begin = d->row_ptr[idx[i]], count = d->row_ptr[idx[i] + 1] - begin;
        memcpy(g->col + at, d->col_idx + begin, count * sizeof *g->col);
        if (d->val != NULL)
            memcpy(g->val + at, d->val + begin, count * sizeof *g->val);
        at += count;
        g->row_ptr[i + 1] = at;
        g->y[i] = d->y[idx[i]];
    }
    *out = (pst_sparse_batch_t){.n_rows = n,
                                .row_ptr = g->row_ptr,
                                .col32 = g->col,
                                .val = d->val != NULL ? g->val : NULL,
                                .y = g->y};
    return PST_OK;
}

/* The row order of epoch (1-based): the first reads the rows as stored (windows, no copies);
 * later epochs reshuffle when asked to. */
static int epoch_order(pst_sparse_loop_t *self, size_t n, int epoch, pst_err_t *err)
{
    if (!self->opts.shuffle || epoch == 1)
        return PST_OK;
    if (self->order == NULL || self->order_n != n) {
        free(self->order);
        if ((self->order = malloc((n > 0 ? n : 1) * sizeof *self->order)) == NULL)
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            self->order[i] = i;
        self->order_n = n;
    }
    pst_rng_shuffle(&self->rng, self->order, n);
    return PST_OK;
}

static int csr_check(const pst_dataset_t *d, pst_err_t *err)
{
    if (d->n_rows > 0 && (d->row_ptr == NULL || d->col_idx == NULL || d->y == NULL))
        return pst_err_set(err, PST_EINVAL, "sparse loop: the dataset is not a labelled CSR set");
    return PST_OK;
}

/* Batches prepared beyond the current one (0: the trainer has no prepare hook). */
static size_t look_ahead(const pst_sparse_loop_t *self)
{
    int ahead = self->opts.ahead;
    if (self->trainer.prepare == NULL)
        return 0;
    return ahead < 1 ? 1 : ahead > PST_SPARSE_LOOP_MAX_AHEAD ? PST_SPARSE_LOOP_MAX_AHEAD : ahead;
}

/* Batch number k of the epoch in slot k % (look-ahead + 1) (rows from k * batch_size): a window,
 * or gathered rows. */
static int epoch_batch(pst_sparse_loop_t *self, const pst_dataset_t *train, size_t k,
                       pst_sparse_batch_t *b, pst_err_t *err)
{
    size_t n = train->n_rows, bs = self->opts.batch_size, start = k * bs;
    size_t len = n - start < bs ? n - start : bs;
    *b = window(train, start, len);
    if (self->order == NULL)
        return PST_OK;
    pst_sparse_loop_batch_t *slot = &self->batch[k % (look_ahead(self) + 1)];
    return gather(slot, train, self->order + start, len, b, err);
}

/* Makes batch k and hands it to the prepare hook. */
static int prepare_batch(pst_sparse_loop_t *self, const pst_dataset_t *train, size_t k,
                         pst_sparse_batch_t *b, pst_err_t *err)
{
    int rc = epoch_batch(self, train, k, b, err);
    return rc == PST_OK ? self->trainer.prepare(self->trainer.ctx, b, err) : rc;
}

/* Makes batches first.. of the epoch: the `ahead` coming ones made and prepared, or without a
 * prepare hook the first one only. */
static int fill_batches(pst_sparse_loop_t *self, const pst_dataset_t *train, size_t first,
                        size_t steps, pst_sparse_batch_t *batches, pst_err_t *err)
{
    size_t ahead = look_ahead(self), slots = ahead + 1;
    int rc = PST_OK;
    for (size_t k = first; rc == PST_OK && k < steps && k < first + (ahead > 0 ? ahead : 1); k++)
        rc = ahead > 0 ? prepare_batch(self, train, k, &batches[k % slots], err)
                       : epoch_batch(self, train, k, &batches[k % slots], err);
    return rc;
}

/* After step k the servers were `behind` steps ahead of this worker (the trainer has answered
 * and forgotten every batch prepared ahead): the batches from the step they are at are made (and
 * prepared) again, with *k just before it; a step past this epoch's last is left to the coming
 * epochs' skip_left. */
static int rejoin_batches(pst_sparse_loop_t *self, const pst_dataset_t *train, size_t *k,
                          size_t steps, uint64_t behind, pst_sparse_batch_t *batches,
                          pst_err_t *err)
{
    uint64_t at = (uint64_t)*k + 1 + behind;
    if (at >= steps) {
        self->skip_left += at - steps;
        *k = steps;
        return PST_OK;
    }
    *k = (size_t)at - 1; /* the loop's k++ comes next */
    return fill_batches(self, train, (size_t)at, steps, batches, err);
}

int pst_sparse_loop_epoch(pst_sparse_loop_t *self, const pst_dataset_t *train, int epoch,
                          pst_sparse_epoch_t *out, pst_err_t *err)
{
    int rc = csr_check(train, err);
    if (rc == PST_OK)
        rc = epoch_order(self, train->n_rows, epoch, err);
    if (rc != PST_OK)
        return rc;
    size_t bs = self->opts.batch_size, n = train->n_rows;
    size_t steps = (n + bs - 1) / bs;
    if (self->opts.steps_per_epoch > 0 && (size_t)self->opts.steps_per_epoch < steps)
        steps = (size_t)self->opts.steps_per_epoch;
    double sum = 0.0;
    pst_sparse_epoch_t e = {0};
    /* Resuming: the batches a checkpoint already holds are passed over (the epoch's order was
     * drawn all the same, so the rest come as in the uninterrupted run). */
    size_t first = self->skip_left < steps ? (size_t)self->skip_left : steps;
    self->skip_left -= first;
    /* batches[k % slots]: batch k, made (and prepared) `ahead` steps before its own */
    pst_sparse_batch_t batches[PST_SPARSE_LOOP_MAX_AHEAD + 1] = {{0}};
    size_t ahead = look_ahead(self), slots = ahead + 1;
    rc = fill_batches(self, train, first, steps, batches, err);
    for (size_t k = first; rc == PST_OK && k < steps; k++) {
        /* With a prepare hook batch k + ahead is made and handed over before batch k trains;
         * the batches are the same either way. */
        if (ahead > 0 && k + ahead < steps)
            rc = prepare_batch(self, train, k + ahead, &batches[(k + ahead) % slots], err);
        const pst_sparse_batch_t *cur = &batches[k % slots];
        double batch_loss = 0.0;
        if (rc == PST_OK)
            rc = self->trainer.step(self->trainer.ctx, cur, &batch_loss, err);
        if (rc != PST_OK)
            break;
        sum += batch_loss;
        e.steps++;
        e.rows += cur->n_rows;
        e.nnz += pst_sparse_batch_nnz(cur);
        if (ahead == 0 && k + 1 < steps)
            rc = epoch_batch(self, train, k + 1, &batches[(k + 1) % slots], err);
        uint64_t behind = self->trainer.rejoin ? self->trainer.rejoin(self->trainer.ctx) : 0;
        if (rc == PST_OK && behind > 0)
            rc = rejoin_batches(self, train, &k, steps, behind, batches, err);
    }
    if (rc != PST_OK)
        return rc;
    e.loss = e.steps > 0 ? sum / (double)e.steps : NAN;
    *out = e;
    return PST_OK;
}

/* A streamed batch as a model batch, labels mapped to {0, 1} in the loop's y. */
static int stream_batch(pst_sparse_loop_t *self, const pst_sparse_stream_batch_t *sb,
                        pst_sparse_batch_t *b, pst_err_t *err)
{
    pst_sparse_loop_batch_t *g = &self->batch[0];
    if (batch_reserve(g, sb->n_rows, 0) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for a batch of %zu rows", sb->n_rows);
    for (size_t i = 0; i < sb->n_rows; i++) {
        float y = sb->y[i];
        if (y != 0.0f && y != 1.0f && y != -1.0f)
            return pst_err_set(err, PST_EFORMAT,
                               "%s: data row %llu: model.type %s needs click labels 0/1 (or "
                               "-1/+1), not %g",
                               self->opts.source, (unsigned long long)sb->row_id[i] + 1,
                               self->opts.model_type, (double)y);
        g->y[i] = y > 0.0f ? 1.0f : 0.0f;
    }
    *b = (pst_sparse_batch_t){.n_rows = sb->n_rows,
                              .row_ptr = sb->row_ptr,
                              .col32 = sb->col_idx,
                              .val = sb->val,
                              .y = g->y};
    return PST_OK;
}

int pst_sparse_loop_stream_epoch(pst_sparse_loop_t *self, pst_sparse_stream_t *stream, int epoch,
                                 pst_sparse_epoch_t *out, pst_err_t *err)
{
    int rc = epoch > 1 ? pst_sparse_stream_rewind(stream, err) : PST_OK;
    double sum = 0.0;
    pst_sparse_epoch_t e = {0};
    for (;;) {
        const pst_sparse_stream_batch_t *sb = NULL;
        pst_sparse_batch_t b;
        double batch_loss = 0.0;
        if (rc == PST_OK)
            rc = pst_sparse_stream_next(stream, &sb, err);
        if (rc != PST_OK || sb->n_rows == 0)
            break;
        rc = stream_batch(self, sb, &b, err);
        if (rc == PST_OK)
            rc = self->trainer.step(self->trainer.ctx, &b, &batch_loss, err);
        sum += batch_loss;
        e.steps++;
        e.rows += sb->n_rows;
        e.nnz += sb->nnz;
    }
    if (rc != PST_OK)
        return rc;
    e.loss = e.steps > 0 ? sum / (double)e.steps : NAN;
    *out = e;
    return PST_OK;
}

int pst_sparse_evaluate(const pst_sparse_trainer_t *trainer, const pst_dataset_t *d,
                        pst_binary_metrics_t *m, pst_err_t *err)
{
    float *prob = NULL;
    int rc = pst_sparse_evaluate_keep(trainer, d, m, &prob, err);
    free(prob);
    return rc;
}

int pst_sparse_evaluate_keep(const pst_sparse_trainer_t *trainer, const pst_dataset_t *d,
                             pst_binary_metrics_t *m, float **kept, pst_err_t *err)
{
    *kept = NULL;
    pst_binary_metrics_none(m);
    if (d->n_rows == 0)
        return PST_OK;
    int rc = csr_check(d, err);
    if (rc != PST_OK)
        return rc;
    float *prob = malloc(d->n_rows * sizeof *prob);
    if (prob == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory scoring %zu rows", d->n_rows);
    for (size_t start = 0; start < d->n_rows && rc == PST_OK; start += EVAL_ROWS) {
        size_t len = d->n_rows - start < EVAL_ROWS ? d->n_rows - start : EVAL_ROWS;
        pst_sparse_batch_t b = window(d, start, len);
        rc = trainer->predict(trainer->ctx, &b, prob + start, err);
    }
    if (rc == PST_OK) {
        pst_binary_metrics_compute(m, prob, d->y, d->n_rows);
        *kept = prob;
    } else {
        free(prob);
    }
    return rc;
}
