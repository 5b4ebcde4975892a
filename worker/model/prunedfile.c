/* Compact storage of pruned weight tensors in the model file (see prunedfile.h). */
#include "worker/model/prunedfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A tensor is stored compactly from this share of exact zeros on (1 / COMPACT_FROM). */
#define COMPACT_FROM 16

static bool is_plus_zero(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == 0;
}

static size_t count_zeros(const float *w, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++)
        z += is_plus_zero(w[i]);
    return z;
}

/* The weight tensors worth compacting, by index in model's tensor table; returns how many. */
static int pick_tensors(const pst_model_t *model, const float *params, int *pick)
{
    int n = 0;
    for (int i = 0, k = 0; i < pst_model_n_layers(model); i++) {
        pst_layer_kind_t kind = pst_model_layer(model, i)->kind;
        if (kind != PST_LAYER_DENSE && kind != PST_LAYER_CONV2D && kind != PST_LAYER_BATCHNORM)
            continue;
        const pst_tensor_info_t *t = pst_model_tensor(model, 2 * k);
        if (kind != PST_LAYER_BATCHNORM &&
            count_zeros(params + t->offset, t->size) * COMPACT_FROM >= t->size)
            pick[n++] = 2 * k;
        k++;
    }
    return n;
}

/* Fills the bitmap and values of one tensor; returns the values written. */
static size_t compact(const float *w, size_t n, uint8_t *keep, float *values)
{
    size_t kept = 0;
    memset(keep, 0, (n + 7) / 8);
    for (size_t i = 0; i < n; i++)
        if (!is_plus_zero(w[i])) {
            keep[i / 8] |= (uint8_t)(1u << (i % 8));
            values[kept++] = w[i];
        }
    return kept;
}

/* Lays out the picked tensors in pk and the rest of the arena in pk->rest. */
static int fill_pack(const pst_modelfile_t *mf, const pst_model_t *model, const int *pick,
                     int n_pick, pst_prunedfile_pack_t *pk, pst_err_t *err)
{
    size_t bitmap_bytes = 0, values = 0;
    for (int j = 0; j < n_pick; j++) {
        const pst_tensor_info_t *t = pst_model_tensor(model, pick[j]);
        bitmap_bytes += (t->size + 7) / 8;
        values += t->size - count_zeros(mf->params + t->offset, t->size);
    }
    pk->tensors = calloc((size_t)n_pick, sizeof *pk->tensors);
    pk->ptrs = calloc((size_t)n_pick, sizeof *pk->ptrs);
    pk->rest = malloc((mf->n_params ? mf->n_params : 1) * sizeof(float));
    pk->raw = malloc(bitmap_bytes + values * sizeof(float) + 1);
    if (!pk->tensors || !pk->ptrs || !pk->rest || !pk->raw)
        return pst_err_set(err, PST_ENOMEM, "model file: out of memory");
    uint8_t *vals = pk->raw, *bits = pk->raw + values * sizeof(float); /* values aligned */
    size_t at = 0, n_rest = 0;
    for (int j = 0; j < n_pick; j++) {
        const pst_tensor_info_t *t = pst_model_tensor(model, pick[j]);
        memcpy(pk->rest + n_rest, mf->params + at, (t->offset - at) * sizeof(float));
        n_rest += t->offset - at;
        float *tv = (float *)(void *)vals;
        size_t kept = compact(mf->params + t->offset, t->size, bits, tv);
        Pst__PrunedTensor *pt = &pk->tensors[j];
        pst__pruned_tensor__init(pt);
        pt->offset = t->offset;
        pt->size = t->size;
        pt->keep = (ProtobufCBinaryData){(t->size + 7) / 8, bits};
        pt->values = (ProtobufCBinaryData){kept * sizeof(float), vals};
        pk->ptrs[j] = pt;
        bits += (t->size + 7) / 8;
        vals += kept * sizeof(float);
        at = t->offset + t->size;
    }
    memcpy(pk->rest + n_rest, mf->params + at, (mf->n_params - at) * sizeof(float));
    pk->msg.n_tensors = (size_t)n_pick;
    pk->msg.tensors = pk->ptrs;
    return PST_OK;
}

int pst_prunedfile_pack(const pst_modelfile_t *mf, Pst__Model *m, pst_prunedfile_pack_t *pk,
                        pst_err_t *err)
{
    memset(pk, 0, sizeof *pk);
    pst__pruned_params__init(&pk->msg);
    /* the tensor table of mf's layers, without the inference extras of pst_modelfile_build */
    pst_model_t *model = pst_model_new(pst_modelfile_width(mf), mf->layers, mf->n_layers, 1, NULL);
    if (!model || pst_model_n_params(model) != mf->n_params) {
        pst_model_destroy(&model);
        return PST_OK; /* not a layer stack this file can describe: stored as it is */
    }
    int *pick = malloc(((size_t)pst_model_n_tensors(model) + 1) * sizeof *pick);
    int rc = pick ? PST_OK : pst_err_set(err, PST_ENOMEM, "model file: out of memory");
    int n_pick = pick ? pick_tensors(model, mf->params, pick) : 0;
    if (rc == PST_OK && n_pick > 0 &&
        (rc = fill_pack(mf, model, pick, n_pick, pk, err)) == PST_OK) {
        size_t n_rest = mf->n_params;
        for (int j = 0; j < n_pick; j++)
            n_rest -= pst_model_tensor(model, pick[j])->size;
        m->params.data = (uint8_t *)pk->rest;
        m->params.len = n_rest * sizeof(float);
        m->pruned = &pk->msg;
    }
    free(pick);
    pst_model_destroy(&model);
    return rc;
}

void pst_prunedfile_pack_fini(pst_prunedfile_pack_t *pk)
{
    free(pk->tensors);
    free(pk->ptrs);
    free(pk->rest);
    free(pk->raw);
    memset(pk, 0, sizeof *pk);
}

static size_t popcount_bytes(const uint8_t *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (size_t)__builtin_popcount(p[i]);
    return c;
}

/* One tensor's own bounds: bitmap length, clear tail bits, as many values as set bits. */
static int check_tensor(const Pst__PrunedTensor *t, size_t j, const char *path, pst_err_t *err)
{
    if (t->size == 0 || t->keep.len != (t->size - 1) / 8 + 1)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: pruned tensor %zu: %zu bitmap bytes for %llu values", path, j + 1,
                           t->keep.len, (unsigned long long)t->size);
    unsigned tail = (unsigned)(t->size % 8);
    if (tail && (t->keep.data[t->keep.len - 1] >> tail) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: pruned tensor %zu: bits set past its end", path,
                           j + 1);
    size_t kept = popcount_bytes(t->keep.data, t->keep.len);
    if (t->values.len != kept * sizeof(float))
        return pst_err_set(err, PST_EFORMAT,
                           "%s: pruned tensor %zu: %zu value bytes for %zu stored values", path,
                           j + 1, t->values.len, kept);
    return PST_OK;
}

int pst_prunedfile_count(const Pst__Model *m, const char *path, size_t *n_params, pst_err_t *err)
{
    const Pst__PrunedParams *pp = m->pruned;
    if (m->params.len % sizeof(float) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: parameter block of %zu bytes", path,
                           m->params.len);
    /* every size is bounded by 8 bits a stored byte, so the sum cannot overflow */
    uint64_t n = m->params.len / sizeof(float);
    for (size_t j = 0; pp && j < pp->n_tensors; j++) {
        int rc = check_tensor(pp->tensors[j], j, path, err);
        if (rc != PST_OK)
            return rc;
        n += pp->tensors[j]->size;
    }
    uint64_t end = 0;
    for (size_t j = 0; pp && j < pp->n_tensors; j++) {
        const Pst__PrunedTensor *t = pp->tensors[j];
        if (t->offset < end || t->offset > n || t->size > n - t->offset)
            return pst_err_set(err, PST_EFORMAT,
                               "%s: pruned tensor %zu at offset %llu overlaps another or ends "
                               "past the %llu parameters",
                               path, j + 1, (unsigned long long)t->offset, (unsigned long long)n);
        end = t->offset + t->size;
    }
    *n_params = (size_t)n;
    return PST_OK;
}

void pst_prunedfile_expand(const Pst__Model *m, float *params, size_t n_params)
{
    const Pst__PrunedParams *pp = m->pruned;
    const uint8_t *rest = m->params.data;
    size_t at = 0;
    for (size_t j = 0; pp && j < pp->n_tensors; j++) {
        const Pst__PrunedTensor *t = pp->tensors[j];
        size_t gap = (size_t)t->offset - at;
        /* the dense stretches may be empty, with no bytes at all: rest is NULL then */
        if (gap > 0) {
            memcpy(params + at, rest, gap * sizeof(float));
            rest += gap * sizeof(float);
        }
        const uint8_t *vals = t->values.data;
        float *w = params + t->offset;
        for (size_t i = 0; i < t->size; i++) {
            if (t->keep.data[i / 8] >> (i % 8) & 1u) {
                memcpy(&w[i], vals, sizeof(float));
                vals += sizeof(float);
            } else {
                w[i] = 0.0f;
            }
        }
        at = (size_t)(t->offset + t->size);
    }
    if (n_params > at)
        memcpy(params + at, rest, (n_params - at) * sizeof(float));
}
