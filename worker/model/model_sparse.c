/* Sparse inference for pruned dense layers: their weights in compressed sparse rows, used by
 * forwards of few rows, where sgemm's work is proportional to the zeros it multiplies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/model/model_internal.h"

struct pst_model_csr {
    int rows, cols;    /* (out, in) */
    uint32_t *row_ptr; // (rows + 1)
    uint32_t *col;     // (nnz)
    float *val;        // (nnz)
};

static void csr_destroy(struct pst_model_csr **c_p)
{
    if (!*c_p)
        return;
    free((*c_p)->row_ptr);
    free((*c_p)->col);
    free((*c_p)->val);
    free(*c_p);
    *c_p = NULL;
}

void pst_model_csr_free(pst_model_t *m)
{
    for (int i = 0; m->layers && i < m->n_layers; i++)
        csr_destroy(&m->layers[i].csr);
}

static struct pst_model_csr *csr_new(const float *w, int rows, int cols, size_t nnz)
{
    struct pst_model_csr *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->rows = rows;
    c->cols = cols;
    c->row_ptr = malloc(((size_t)rows + 1) * sizeof *c->row_ptr);
    c->col = malloc((nnz ? nnz : 1) * sizeof *c->col);
    c->val = malloc((nnz ? nnz : 1) * sizeof *c->val);
    if (!c->row_ptr || !c->col || !c->val) {
        csr_destroy(&c);
        return NULL;
    }
    size_t at = 0;
    for (int r = 0; r < rows; r++) {
        c->row_ptr[r] = (uint32_t)at;
        for (int j = 0; j < cols; j++) {
            float v = w[(size_t)r * cols + j];
            if (v != 0.0f) {
                c->col[at] = (uint32_t)j;
                c->val[at++] = v;
            }
        }
    }
    c->row_ptr[rows] = (uint32_t)at;
    return c;
}

void pst_model_csr_forward(const struct pst_model_csr *c, const float *x, int batch, float *y)
{
    for (int b = 0; b < batch; b++) {
        const float *xr = x + (size_t)b * c->cols;
        float *yr = y + (size_t)b * c->rows;
        for (int r = 0; r < c->rows; r++) {
            float acc = 0.0f;
            for (uint32_t j = c->row_ptr[r]; j < c->row_ptr[r + 1]; j++)
                acc += c->val[j] * xr[c->col[j]];
            yr[r] += acc;
        }
    }
}

int pst_model_use_sparse(pst_model_t *self, double max_density, int max_rows, pst_err_t *err)
{
    pst_model_csr_free(self);
    self->csr_max_rows = max_rows;
    for (int i = 0; max_rows > 0 && i < self->n_layers; i++) {
        pst_model_layer_t *l = &self->layers[i];
        if (l->spec.kind != PST_LAYER_DENSE)
            continue;
        const pst_tensor_info_t *t = &self->tensors[l->w_tensor];
        const float *w = self->params + t->offset;
        size_t nnz = 0;
        for (size_t j = 0; j < t->size; j++)
            nnz += w[j] != 0.0f;
        if ((double)nnz > max_density * (double)t->size || t->size > UINT32_MAX)
            continue;
        if (!(l->csr = csr_new(w, l->out, l->in, nnz))) {
            pst_model_csr_free(self);
            return pst_err_set(err, PST_ENOMEM, "out of memory for sparse weights");
        }
    }
    return PST_OK;
}

int pst_model_n_sparse_layers(const pst_model_t *self)
{
    int n = 0;
    for (int i = 0; i < self->n_layers; i++)
        n += self->layers[i].csr != NULL;
    return n;
}
