/* pst.QuantModel <-> pst_quant_t: the int8 weights stay int8 on disk (a quarter of the floats),
 * biases and other tensors stay float, and every size is checked against the bytes present. */
#include "worker/model/quantfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUANT_LAYERS 1024
#define MAX_QUANT_SIDE (1u << 24)

static size_t layer_size(const pst_quant_layer_t *ql)
{
    return (size_t)ql->rows * (size_t)ql->cols;
}

/* Copies the arena's values outside the quantised weights, in order, into rest. */
static size_t gather_rest(const pst_quant_t *q, const float *params, size_t n_params, float *rest)
{
    size_t at = 0, n = 0;
    for (int j = 0; j <= q->n_layers; j++) {
        size_t end = j < q->n_layers ? q->layers[j].offset : n_params;
        memcpy(rest + n, params + at, (end - at) * sizeof(float));
        n += end - at;
        at = j < q->n_layers ? end + layer_size(&q->layers[j]) : at;
    }
    return n;
}

int pst_quantfile_to_msg(const pst_quant_t *q, const float *params, size_t n_params,
                         Pst__QuantModel *msg, pst_err_t *err)
{
    pst__quant_model__init(msg);
    size_t n_rest = n_params;
    for (int j = 0; j < q->n_layers; j++) {
        const pst_quant_layer_t *ql = &q->layers[j];
        if (ql->offset > n_params || layer_size(ql) > n_params - ql->offset ||
            (j > 0 && ql->offset < q->layers[j - 1].offset + layer_size(&q->layers[j - 1])))
            return pst_err_set(err, PST_EINVAL, "quantised layer %d does not fit the arena", j + 1);
        n_rest -= layer_size(ql);
    }
    Pst__QuantLayer *layers = calloc((size_t)q->n_layers + 1, sizeof *layers);
    msg->layers = calloc((size_t)q->n_layers + 1, sizeof *msg->layers);
    float *rest = malloc((n_rest + 1) * sizeof(float));
    if (!layers || !msg->layers || !rest) {
        free(layers);
        free(rest);
        free(msg->layers);
        msg->layers = NULL;
        return pst_err_set(err, PST_ENOMEM, "quantised model: out of memory");
    }
    for (int j = 0; j < q->n_layers; j++) {
        const pst_quant_layer_t *ql = &q->layers[j];
        pst__quant_layer__init(&layers[j]);
        layers[j].layer = (uint32_t)ql->layer;
        layers[j].offset = ql->offset;
        layers[j].rows = (uint32_t)ql->rows;
        layers[j].cols = (uint32_t)ql->cols;
        layers[j].weights = (ProtobufCBinaryData){layer_size(ql), (uint8_t *)ql->w};
        layers[j].scales =
            (ProtobufCBinaryData){(size_t)ql->rows * sizeof(float), (uint8_t *)ql->w_scale};
        layers[j].input_scale = ql->in_scale;
        msg->layers[j] = &layers[j];
    }
    msg->n_layers = (size_t)q->n_layers;
    msg->n_params = n_params;
    msg->rest = (ProtobufCBinaryData){gather_rest(q, params, n_params, rest) * sizeof(float),
                                      (uint8_t *)rest};
    msg->calibration = (char *)q->rule;
    msg->calibration_rows = q->calib_rows;
    return PST_OK;
}

void pst_quantfile_msg_fini(Pst__QuantModel *msg)
{
    free(msg->layers ? msg->layers[0] : NULL); /* the layers are one block */
    free(msg->layers);
    free(msg->rest.data);
    pst__quant_model__init(msg);
}

/* The checks of one layer message that need nothing else; prev_end is where the previous
 * layer's weights end in the arena. */
static int check_layer_msg(const Pst__QuantLayer *l, int j, uint64_t prev_end, const char *origin,
                           pst_err_t *err)
{
    if (l->rows == 0 || l->cols == 0 || l->rows > MAX_QUANT_SIDE || l->cols > MAX_QUANT_SIDE)
        return pst_err_set(err, PST_EFORMAT, "%s: quantised layer %d is (%u, %u)", origin, j + 1,
                           l->rows, l->cols);
    uint64_t n = (uint64_t)l->rows * l->cols;
    if (l->weights.len != n || l->scales.len != (uint64_t)l->rows * sizeof(float))
        return pst_err_set(err, PST_EFORMAT,
                           "%s: quantised layer %d holds %zu weight and %zu scale bytes, (%u, %u) "
                           "needs %llu and %llu",
                           origin, j + 1, l->weights.len, l->scales.len, l->rows, l->cols,
                           (unsigned long long)n, (unsigned long long)l->rows * sizeof(float));
    if (l->offset < prev_end)
        return pst_err_set(err, PST_EFORMAT, "%s: quantised layer %d overlaps the one before",
                           origin, j + 1);
    if (!(isfinite(l->input_scale) && l->input_scale > 0.0f))
        return pst_err_set(err, PST_EFORMAT, "%s: quantised layer %d has input scale %g", origin,
                           j + 1, (double)l->input_scale);
    for (uint64_t i = 0; i < n; i++)
        if ((int8_t)l->weights.data[i] < -PST_QUANT_MAX)
            return pst_err_set(err, PST_EFORMAT, "%s: quantised layer %d holds weight -128", origin,
                               j + 1);
    for (uint32_t r = 0; r < l->rows; r++) {
        float s;
        memcpy(&s, l->scales.data + (size_t)r * sizeof(float), sizeof s);
        if (!(isfinite(s) && s > 0.0f))
            return pst_err_set(err, PST_EFORMAT, "%s: quantised layer %d row %u has scale %g",
                               origin, j + 1, r + 1, (double)s);
    }
    return PST_OK;
}

/* Every layer checked, and n_params equal to the values the message actually holds. */
static int check_msg(const Pst__QuantModel *msg, const char *origin, pst_err_t *err)
{
    if (msg->n_layers > MAX_QUANT_LAYERS)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu quantised layers", origin, msg->n_layers);
    if (msg->rest.len % sizeof(float) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: quantised model's float block of %zu bytes",
                           origin, msg->rest.len);
    uint64_t end = 0, held = msg->rest.len / sizeof(float);
    for (size_t j = 0; j < msg->n_layers; j++) {
        const Pst__QuantLayer *l = msg->layers[j];
        int rc = check_layer_msg(l, (int)j, end, origin, err);
        if (rc != PST_OK)
            return rc;
        /* compared without forming offset + len, which a hostile offset could wrap */
        if (l->offset > msg->n_params || l->weights.len > msg->n_params - l->offset)
            return pst_err_set(
                err, PST_EFORMAT, "%s: quantised layer %zu at %llu runs past the %llu parameters",
                origin, j + 1, (unsigned long long)l->offset, (unsigned long long)msg->n_params);
        end = l->offset + l->weights.len;
        held += l->weights.len;
    }
    if (held != msg->n_params)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: quantised model claims %llu parameters and holds %llu", origin,
                           (unsigned long long)msg->n_params, (unsigned long long)held);
    return PST_OK;
}

static int read_layers(const Pst__QuantModel *msg, pst_quant_t *q)
{
    for (size_t j = 0; j < msg->n_layers; j++) {
        const Pst__QuantLayer *l = msg->layers[j];
        pst_quant_layer_t *ql = &q->layers[j];
        *ql = (pst_quant_layer_t){(int)l->layer, l->offset, (int)l->rows,  (int)l->cols,
                                  NULL,          NULL,      l->input_scale};
        ql->w = malloc(l->weights.len);
        ql->w_scale = malloc(l->scales.len);
        if (!ql->w || !ql->w_scale)
            return PST_ENOMEM;
        memcpy(ql->w, l->weights.data, l->weights.len);
        memcpy(ql->w_scale, l->scales.data, l->scales.len);
    }
    return PST_OK;
}

/* The arena: rest's values around the dequantised weights. */
static void fill_arena(const Pst__QuantModel *msg, const pst_quant_t *q, float *params)
{
    const uint8_t *rest = msg->rest.data;
    size_t at = 0;
    for (int j = 0; j <= q->n_layers; j++) {
        size_t end = j < q->n_layers ? q->layers[j].offset : msg->n_params;
        memcpy(params + at, rest, (end - at) * sizeof(float));
        rest += (end - at) * sizeof(float);
        at = j < q->n_layers ? end + layer_size(&q->layers[j]) : at;
    }
    pst_quant_dequantize(q, params);
}

int pst_quantfile_from_msg(const Pst__QuantModel *msg, const char *origin, pst_quant_t **q_out,
                           float **params_out, size_t *n_params, pst_err_t *err)
{
    *q_out = NULL;
    *params_out = NULL;
    int rc = check_msg(msg, origin, err);
    if (rc != PST_OK)
        return rc;
    pst_quant_t *q = calloc(1, sizeof *q);
    float *params = malloc((msg->n_params + 1) * sizeof(float));
    if (q && params && (q->layers = calloc(msg->n_layers + 1, sizeof *q->layers))) {
        q->n_layers = (int)msg->n_layers;
        rc = read_layers(msg, q);
    } else {
        rc = PST_ENOMEM;
    }
    if (rc != PST_OK) {
        pst_quant_destroy(&q);
        free(params);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    }
    snprintf(q->rule, sizeof q->rule, "%s", msg->calibration);
    q->calib_rows = msg->calibration_rows;
    fill_arena(msg, q, params);
    *q_out = q;
    *params_out = params;
    *n_params = msg->n_params;
    return PST_OK;
}
