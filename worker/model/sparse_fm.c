/* Sparse LR and FM: one kernel for the forward and the backward of both (k = 0 for LR). */
#include "worker/model/sparse_fm.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Value of entry at (an absolute offset, as in row_ptr). */
static float val_at(const pst_sparse_batch_t *b, size_t at)
{
    return b->val != NULL ? b->val[at] : 1.0f;
}

int pst_sparse_spec_check(const pst_sparse_spec_t *spec, pst_err_t *err)
{
    if (spec->kind == PST_SPARSE_LR)
        return PST_OK;
    if (spec->kind != PST_SPARSE_FM)
        return pst_err_set(err, PST_EINVAL, "sparse model: unknown kind %d", (int)spec->kind);
    if (spec->n_factors < 1 || spec->n_factors > PST_FM_MAX_FACTORS)
        return pst_err_set(err, PST_EINVAL, "sparse model: FM factors %u not in [1, %d]",
                           spec->n_factors, PST_FM_MAX_FACTORS);
    return PST_OK;
}

/* LR is the FM without factors: one kernel serves both, with k = 0 for LR. */
uint32_t pst_sparse_factors(const pst_sparse_spec_t *spec)
{
    return spec->kind == PST_SPARSE_FM ? spec->n_factors : 0;
}

uint32_t pst_sparse_row_width(const pst_sparse_spec_t *spec)
{
    return 1 + pst_sparse_factors(spec);
}

/* One pass over a batch: the forward, and with grad the backward too. */
typedef struct pass {
    const pst_sparse_batch_t *b;
    uint32_t k; /* factors; 0 = LR */
    const uint32_t *slot;
    const pst_sparse_weights_t *w;
    float sums[PST_FM_MAX_FACTORS]; /* the row's sum_j v_jf x_j */
} pass_t;

/* Margin of row i; fills p->sums for the backward. */
static double row_margin(pass_t *p, size_t i)
{
    const pst_sparse_batch_t *b = p->b;
    size_t base = b->row_ptr[0], width = 1 + p->k;
    double linear = p->w->bias, squares = 0.0;
    memset(p->sums, 0, p->k * sizeof(float));
    for (size_t at = b->row_ptr[i]; at < b->row_ptr[i + 1]; at++) {
        const float *row = p->w->rows + (size_t)p->slot[at - base] * width;
        float x = val_at(b, at);
        linear += (double)row[0] * x;
        for (uint32_t f = 0; f < p->k; f++) {
            float t = row[1 + f] * x;
            p->sums[f] += t;
            squares += (double)t * t;
        }
    }
    double pairs = -squares;
    for (uint32_t f = 0; f < p->k; f++)
        pairs += (double)p->sums[f] * p->sums[f];
    return linear + 0.5 * pairs;
}

/* Adds d * (dmargin / dparameter) of row i to the gradient rows. */
static void row_backward(const pass_t *p, size_t i, float d, float *grad_rows)
{
    const pst_sparse_batch_t *b = p->b;
    size_t base = b->row_ptr[0], width = 1 + p->k;
    for (size_t at = b->row_ptr[i]; at < b->row_ptr[i + 1]; at++) {
        size_t off = (size_t)p->slot[at - base] * width;
        const float *row = p->w->rows + off;
        float *g = grad_rows + off;
        float x = val_at(b, at), dx = d * x;
        g[0] += dx;
        for (uint32_t f = 0; f < p->k; f++)
            g[1 + f] += dx * (p->sums[f] - row[1 + f] * x);
    }
}

static int pass_check(const pass_t *p, bool labelled, pst_err_t *err)
{
    int rc = pst_sparse_batch_check(p->b, err);
    if (rc != PST_OK)
        return rc;
    if (p->k > PST_FM_MAX_FACTORS)
        return pst_err_set(err, PST_EINVAL, "sparse model: FM factors %u exceed %d", p->k,
                           PST_FM_MAX_FACTORS);
    size_t nnz = pst_sparse_batch_nnz(p->b);
    for (size_t k = 0; k < nnz; k++) {
        if (p->slot[k] >= p->w->n_keys)
            return pst_err_set(err, PST_ERANGE, "sparse model: slot %u of entry %zu >= %zu keys",
                               p->slot[k], k, p->w->n_keys);
    }
    if (!labelled)
        return PST_OK;
    if (p->b->y == NULL && p->b->n_rows > 0)
        return pst_err_set(err, PST_EINVAL, "sparse model: a training batch needs labels");
    for (size_t i = 0; i < p->b->n_rows; i++) {
        if (!(p->b->y[i] >= 0.0f && p->b->y[i] <= 1.0f))
            return pst_err_set(err, PST_EINVAL, "sparse model: label %g of row %zu not in [0, 1]",
                               p->b->y[i], i);
    }
    return PST_OK;
}

/* The forward (prob, may be NULL) and, with grad, the mean log-loss gradient. */
static int run_pass(pass_t *p, pst_sparse_grad_t *grad, float *prob, pst_err_t *err)
{
    int rc = pass_check(p, grad != NULL, err);
    if (rc != PST_OK)
        return rc;
    size_t n_rows = p->b->n_rows;
    double scale = n_rows > 0 ? 1.0 / (double)n_rows : 0.0, loss = 0.0, bias_grad = 0.0;
    if (grad != NULL)
        memset(grad->rows, 0, p->w->n_keys * (1 + p->k) * sizeof(float));
    for (size_t i = 0; i < n_rows; i++) {
        double m = row_margin(p, i);
        if (!isfinite(m))
            return pst_err_set(err, PST_ENUMERIC, "sparse model: non-finite output at row %zu", i);
        /* sigmoid and log-loss from one exponential: exp(-|m|) is exp(-m) or exp(m) */
        double e = exp(-fabs(m)), prob_i = m >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        if (prob != NULL)
            prob[i] = (float)prob_i;
        if (grad == NULL)
            continue;
        double y = p->b->y[i], d = (prob_i - y) * scale;
        loss += fmax(m, 0.0) - m * y + log1p(e); /* -[y log p + (1 - y) log(1 - p)] */
        bias_grad += d;
        row_backward(p, i, (float)d, grad->rows);
    }
    if (grad != NULL) {
        grad->bias = (float)bias_grad;
        grad->loss = loss * scale;
    }
    return PST_OK;
}

int pst_fm_step(const pst_sparse_batch_t *b, uint32_t n_factors, const uint32_t *slot_of_nnz,
                const pst_sparse_weights_t *w, pst_sparse_grad_t *grad, pst_err_t *err)
{
    pass_t p = {.b = b, .k = n_factors, .slot = slot_of_nnz, .w = w};
    return run_pass(&p, grad, NULL, err);
}

int pst_sparse_lr_step(const pst_sparse_batch_t *b, const uint32_t *slot_of_nnz,
                       const pst_sparse_weights_t *w, pst_sparse_grad_t *grad, pst_err_t *err)
{
    return pst_fm_step(b, 0, slot_of_nnz, w, grad, err);
}

int pst_sparse_step(const pst_sparse_spec_t *spec, const pst_sparse_batch_t *b,
                    const uint32_t *slot_of_nnz, const pst_sparse_weights_t *w,
                    pst_sparse_grad_t *grad, pst_err_t *err)
{
    int rc = pst_sparse_spec_check(spec, err);
    if (rc != PST_OK)
        return rc;
    return pst_fm_step(b, pst_sparse_factors(spec), slot_of_nnz, w, grad, err);
}

int pst_sparse_predict(const pst_sparse_spec_t *spec, const pst_sparse_batch_t *b,
                       const uint32_t *slot_of_nnz, const pst_sparse_weights_t *w, float *prob,
                       pst_err_t *err)
{
    int rc = pst_sparse_spec_check(spec, err);
    if (rc != PST_OK)
        return rc;
    pass_t p = {.b = b, .k = pst_sparse_factors(spec), .slot = slot_of_nnz, .w = w};
    return run_pass(&p, NULL, prob, err);
}
