/* Wide & deep: field pooling of embeddings into the MLP's input, the summed logit, the loss, and
 * the gradient back through the MLP into the embedding rows. */
#include "worker/model/wide_deep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows scored per MLP forward when predicting a large batch. */
enum { PREDICT_ROWS = 512 };

struct pst_wide_deep {
    pst_wide_deep_spec_t spec;
    pst_layer_spec_t layers[PST_WD_MAX_LAYERS]; /* hidden stack + dense:1 */
    int n_layers;
    int in_width, max_rows; /* MLP input width; rows of the buffers below */
    pst_model_t *mlp;
    float *h;         // (max_rows, in_width) the MLP's input
    float *inv_count; // (max_rows, n_fields) mean pooling: 1 / features of the field in the row
    float *wide;      // (max_rows) wide logit of every row
    float *dlogit;    // (max_rows) d(mean loss)/d(logit)
};

int pst_wd_pooling_parse(const char *name, pst_wd_pooling_t *out)
{
    if (name != NULL && strcmp(name, "sum") == 0)
        *out = PST_WD_POOL_SUM;
    else if (name != NULL && strcmp(name, "mean") == 0)
        *out = PST_WD_POOL_MEAN;
    else
        return PST_EINVAL;
    return PST_OK;
}

static int spec_check(const pst_wide_deep_spec_t *s, pst_err_t *err)
{
    if (s->n_fields < 1 || s->n_fields > PST_WD_MAX_FIELDS)
        return pst_err_set(err, PST_EINVAL, "wide & deep: %u fields outside [1, %d]", s->n_fields,
                           PST_WD_MAX_FIELDS);
    if (s->dim < 1 || s->dim > PST_WD_MAX_DIM)
        return pst_err_set(err, PST_EINVAL, "wide & deep: embedding dimension %u outside [1, %d]",
                           s->dim, PST_WD_MAX_DIM);
    if (s->n_raw > s->n_fields)
        return pst_err_set(err, PST_EINVAL, "wide & deep: %u raw fields of %u", s->n_raw,
                           s->n_fields);
    if (s->field_shift > 63)
        return pst_err_set(err, PST_EINVAL, "wide & deep: field shift %u above 63", s->field_shift);
    if (s->pooling != PST_WD_POOL_SUM && s->pooling != PST_WD_POOL_MEAN)
        return pst_err_set(err, PST_EINVAL, "wide & deep: unknown pooling %d", (int)s->pooling);
    if (s->n_hidden < 0 || s->n_hidden >= PST_WD_MAX_LAYERS || (s->n_hidden > 0 && !s->hidden))
        return pst_err_set(err, PST_EINVAL, "wide & deep: %d hidden layers outside [0, %d]",
                           s->n_hidden, PST_WD_MAX_LAYERS - 1);
    if (s->max_batch < 1)
        return pst_err_set(err, PST_EINVAL, "wide & deep: max batch %d below 1", s->max_batch);
    for (int i = 0; i < s->n_hidden; i++) {
        if (s->hidden[i].kind == PST_LAYER_SOFTMAX)
            return pst_err_set(err, PST_EINVAL, "wide & deep: hidden layer %d is a softmax", i);
    }
    return PST_OK;
}

static bool alloc_buffers(pst_wide_deep_t *m)
{
    size_t rows = (size_t)m->max_rows;
    m->h = malloc(rows * (size_t)m->in_width * sizeof *m->h);
    m->inv_count = malloc(rows * m->spec.n_fields * sizeof *m->inv_count);
    m->wide = malloc(rows * sizeof *m->wide);
    m->dlogit = malloc(rows * sizeof *m->dlogit);
    return m->h && m->inv_count && m->wide && m->dlogit;
}

pst_wide_deep_t *pst_wide_deep_new(const pst_wide_deep_spec_t *spec, pst_err_t *err)
{
    if (spec_check(spec, err) != PST_OK)
        return NULL;
    pst_wide_deep_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        pst_err_set(err, PST_ENOMEM, "wide & deep: out of memory");
        return NULL;
    }
    m->spec = *spec;
    if (spec->n_hidden > 0)
        memcpy(m->layers, spec->hidden, (size_t)spec->n_hidden * sizeof *m->layers);
    m->layers[spec->n_hidden] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = 1};
    m->n_layers = spec->n_hidden + 1;
    m->spec.hidden = m->layers;
    m->in_width = (int)(spec->n_fields * spec->dim + spec->n_raw);
    m->max_rows = spec->max_batch > PREDICT_ROWS ? spec->max_batch : PREDICT_ROWS;
    m->mlp = pst_model_new(m->in_width, m->layers, m->n_layers, m->max_rows, err);
    if (m->mlp == NULL) {
        pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "wide & deep: ");
        pst_wide_deep_destroy(&m);
        return NULL;
    }
    if (!alloc_buffers(m)) {
        pst_err_set(err, PST_ENOMEM, "wide & deep: out of memory for batches of %d rows",
                    m->max_rows);
        pst_wide_deep_destroy(&m);
    }
    return m;
}

const pst_wide_deep_spec_t *pst_wide_deep_spec(const pst_wide_deep_t *self)
{
    return &self->spec;
}

void pst_wide_deep_destroy(pst_wide_deep_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_wide_deep_t *m = *self_p;
    pst_model_destroy(&m->mlp);
    free(m->h);
    free(m->inv_count);
    free(m->wide);
    free(m->dlogit);
    free(m);
    *self_p = NULL;
}

uint32_t pst_wide_deep_row_width(const pst_wide_deep_t *self)
{
    return 1 + self->spec.dim;
}

int pst_wide_deep_input_width(const pst_wide_deep_t *self)
{
    return self->in_width;
}

pst_model_t *pst_wide_deep_mlp(pst_wide_deep_t *self)
{
    return self->mlp;
}

void pst_wide_deep_init_dense(pst_wide_deep_t *self, uint64_t seed)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    pst_model_init_params(self->mlp, &rng);
}

/* ---- forward ---- */

static uint64_t key_at(const pst_sparse_batch_t *b, size_t at)
{
    return b->col64 != NULL ? b->col64[at] : b->col32[at];
}

static float value_at(const pst_sparse_batch_t *b, size_t at)
{
    return b->val != NULL ? b->val[at] : 1.0f;
}

static uint64_t field_of(const pst_wide_deep_spec_t *s, uint64_t key)
{
    return s->field_shift > 0 ? key >> s->field_shift : key % s->n_fields;
}

/* Every entry's slot and field in range. */
static int check_entries(const pst_wide_deep_t *m, const pst_sparse_batch_t *b,
                         const uint32_t *slot_of_nnz, size_t n_keys, pst_err_t *err)
{
    size_t base = b->row_ptr[0], nnz = pst_sparse_batch_nnz(b);
    for (size_t k = 0; k < nnz; k++) {
        if (slot_of_nnz[k] >= n_keys)
            return pst_err_set(err, PST_ERANGE, "wide & deep: entry %zu has slot %u of %zu keys", k,
                               slot_of_nnz[k], n_keys);
        uint64_t key = key_at(b, base + k), f = field_of(&m->spec, key);
        if (f >= m->spec.n_fields)
            return pst_err_set(err, PST_ERANGE,
                               "wide & deep: feature %llu is in field %llu, but the model has %u "
                               "fields",
                               (unsigned long long)key, (unsigned long long)f, m->spec.n_fields);
    }
    return PST_OK;
}

/* Scales each pooled field of row i by 1 / its feature count (mean pooling), keeping the factor. */
static void mean_pool_row(pst_wide_deep_t *m, size_t i)
{
    uint32_t n_fields = m->spec.n_fields, d = m->spec.dim;
    float *inv = m->inv_count + i * n_fields, *h = m->h + i * (size_t)m->in_width;
    for (uint32_t f = 0; f < n_fields; f++) {
        inv[f] = inv[f] > 0 ? 1.0f / inv[f] : 0.0f;
        for (uint32_t t = 0; t < d; t++)
            h[f * d + t] *= inv[f];
    }
}

/* The wide logits and the MLP input of rows [0, n) of b (a window: nnz offsets from k0). */
static void pool_rows(pst_wide_deep_t *m, const pst_sparse_batch_t *b, size_t n, size_t k0,
                      const uint32_t *slot_of_nnz, const float *rows)
{
    const pst_wide_deep_spec_t *s = &m->spec;
    size_t width = 1 + s->dim, base = b->row_ptr[0] - k0, in_width = (size_t)m->in_width;
    memset(m->h, 0, n * in_width * sizeof *m->h);
    if (s->pooling == PST_WD_POOL_MEAN)
        memset(m->inv_count, 0, n * s->n_fields * sizeof *m->inv_count);
    for (size_t i = 0; i < n; i++) {
        float wide = 0.0f, *h = m->h + i * in_width;
        for (size_t at = b->row_ptr[i]; at < b->row_ptr[i + 1]; at++) {
            const float *row = rows + (size_t)slot_of_nnz[at - base] * width;
            uint32_t f = (uint32_t)field_of(s, key_at(b, at));
            float x = value_at(b, at), *hf = h + (size_t)f * s->dim;
            wide += x * row[0];
            for (uint32_t t = 0; t < s->dim; t++)
                hf[t] += x * row[1 + t];
            if (f < s->n_raw)
                h[(size_t)s->n_fields * s->dim + f] += x;
            if (s->pooling == PST_WD_POOL_MEAN)
                m->inv_count[i * s->n_fields + f] += 1.0f;
        }
        m->wide[i] = wide;
        if (s->pooling == PST_WD_POOL_MEAN)
            mean_pool_row(m, i);
    }
}

/* log(1 + e^x) without overflow. */
static double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* ---- backward ---- */

/* grad_rows = d(loss)/d(rows) from the logits' gradient and the MLP input's gradient dh. */
static void scatter_grad(const pst_wide_deep_t *m, const pst_sparse_batch_t *b,
                         const uint32_t *slot_of_nnz, const float *dh, size_t n_keys,
                         float *grad_rows)
{
    const pst_wide_deep_spec_t *s = &m->spec;
    size_t width = 1 + s->dim, base = b->row_ptr[0], in_width = (size_t)m->in_width;
    memset(grad_rows, 0, n_keys * width * sizeof *grad_rows);
    for (size_t i = 0; i < b->n_rows; i++) {
        const float *dhi = dh + i * in_width;
        for (size_t at = b->row_ptr[i]; at < b->row_ptr[i + 1]; at++) {
            float *g = grad_rows + (size_t)slot_of_nnz[at - base] * width;
            uint32_t f = (uint32_t)field_of(s, key_at(b, at));
            float x = value_at(b, at);
            g[0] += m->dlogit[i] * x;
            if (s->pooling == PST_WD_POOL_MEAN)
                x *= m->inv_count[i * s->n_fields + f];
            const float *dhf = dhi + (size_t)f * s->dim;
            for (uint32_t t = 0; t < s->dim; t++)
                g[1 + t] += x * dhf[t];
        }
    }
}

int pst_wide_deep_step(pst_wide_deep_t *self, const pst_sparse_batch_t *b,
                       const uint32_t *slot_of_nnz, const float *rows, size_t n_keys,
                       pst_rng_t *dropout, float *grad_rows, double *loss, pst_err_t *err)
{
    size_t n = b->n_rows;
    if (b->y == NULL)
        return pst_err_set(err, PST_EINVAL, "wide & deep: a training batch needs labels");
    if (n == 0 || n > (size_t)self->spec.max_batch)
        return pst_err_set(err, PST_EINVAL, "wide & deep: %zu rows in a step outside [1, %d]", n,
                           self->spec.max_batch);
    int rc = check_entries(self, b, slot_of_nnz, n_keys, err);
    if (rc != PST_OK)
        return rc;
    pool_rows(self, b, n, 0, slot_of_nnz, rows);
    const float *out = pst_model_forward(self->mlp, self->h, (int)n, dropout != NULL, dropout);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double z = (double)self->wide[i] + out[i], y = b->y[i];
        if (!isfinite(z))
            return pst_err_set(err, PST_ENUMERIC, "wide & deep: non-finite logit at row %zu", i);
        sum += softplus(z) - y * z;
        self->dlogit[i] = (float)((1.0 / (1.0 + exp(-z)) - y) / (double)n);
    }
    const float *dh = pst_model_backward_input(self->mlp, self->dlogit, (int)n, false);
    scatter_grad(self, b, slot_of_nnz, dh, n_keys, grad_rows);
    if (loss != NULL)
        *loss = sum / (double)n;
    return PST_OK;
}

int pst_wide_deep_predict(pst_wide_deep_t *self, const pst_sparse_batch_t *b,
                          const uint32_t *slot_of_nnz, const float *rows, size_t n_keys,
                          float *prob, pst_err_t *err)
{
    if (b->n_rows == 0)
        return PST_OK;
    int rc = check_entries(self, b, slot_of_nnz, n_keys, err);
    for (size_t start = 0; start < b->n_rows && rc == PST_OK; start += (size_t)self->max_rows) {
        size_t n =
            b->n_rows - start < (size_t)self->max_rows ? b->n_rows - start : (size_t)self->max_rows;
        pst_sparse_batch_t part = *b;
        part.n_rows = n;
        part.row_ptr = b->row_ptr + start;
        pool_rows(self, &part, n, b->row_ptr[start] - b->row_ptr[0], slot_of_nnz, rows);
        const float *out = pst_model_forward(self->mlp, self->h, (int)n, false, NULL);
        for (size_t i = 0; i < n; i++) {
            double z = (double)self->wide[i] + out[i];
            if (!isfinite(z))
                return pst_err_set(err, PST_ENUMERIC, "wide & deep: non-finite logit at row %zu",
                                   start + i);
            prob[start + i] = (float)(1.0 / (1.0 + exp(-z)));
        }
    }
    return rc;
}
