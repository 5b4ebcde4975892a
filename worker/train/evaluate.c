/* Evaluation and prediction over row views, in preprocessed chunks; the row gather the training
 * loop shares. */
#include "worker/train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
int pst_rows_gather(const pst_rows_t *rows, const size_t *pos, size_t first, size_t n, float *x,
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
        if ((rc = pst_rows_gather(rows, NULL, start, n, x, y, err)) == PST_OK)
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
