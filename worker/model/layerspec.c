/* Layer kinds by name, and the checks of a layer stack that come before its shapes. */
#include "worker/model/model_internal.h"

#include <string.h>

/* Widths are capped so every buffer size fits comfortably in size_t. */
#define MAX_WIDTH (1 << 24)

static const char *const KIND_NAMES[] = {
    [PST_LAYER_DENSE] = "dense",
    [PST_LAYER_RELU] = "relu",
    [PST_LAYER_SIGMOID] = "sigmoid",
    [PST_LAYER_TANH] = "tanh",
    [PST_LAYER_SOFTMAX] = "softmax",
    [PST_LAYER_DROPOUT] = "dropout",
    [PST_LAYER_INPUT] = "input",
    [PST_LAYER_CONV2D] = "conv2d",
    [PST_LAYER_MAXPOOL2D] = "maxpool2d",
    [PST_LAYER_AVGPOOL2D] = "avgpool2d",
    [PST_LAYER_FLATTEN] = "flatten",
    [PST_LAYER_GLOBAL_AVGPOOL] = "global_avgpool",
    [PST_LAYER_BATCHNORM] = "batchnorm",
    [PST_LAYER_LSTM] = "lstm",
    [PST_LAYER_GRU] = "gru",
};
#define N_KINDS ((int)(sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0])))

int pst_layer_kind_parse(const char *name, pst_layer_kind_t *kind)
{
    for (int i = 0; name != NULL && i < N_KINDS; i++) {
        if (strcmp(name, KIND_NAMES[i]) == 0) {
            *kind = (pst_layer_kind_t)i;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

const char *pst_layer_kind_name(pst_layer_kind_t kind)
{
    if ((int)kind < 0 || (int)kind >= N_KINDS)
        return "unknown";
    return KIND_NAMES[kind];
}

bool pst_layer_kind_is_spatial(pst_layer_kind_t kind)
{
    return kind == PST_LAYER_CONV2D || kind == PST_LAYER_MAXPOOL2D || kind == PST_LAYER_AVGPOOL2D ||
           kind == PST_LAYER_GLOBAL_AVGPOOL;
}

bool pst_layer_kind_has_weights(pst_layer_kind_t kind)
{
    return pst_layer_kind_has_params(kind);
}

bool pst_layer_kind_has_params(pst_layer_kind_t kind)
{
    return kind == PST_LAYER_DENSE || kind == PST_LAYER_CONV2D || kind == PST_LAYER_BATCHNORM ||
           kind == PST_LAYER_LSTM || kind == PST_LAYER_GRU;
}

/* ---- spec validation ---- */

static int check_layer(const pst_layer_spec_t *l, int i, int n_layers, pst_err_t *err)
{
    if ((int)l->kind < 0 || (int)l->kind >= N_KINDS)
        return pst_err_set(err, PST_EINVAL, "layerspec.c:%d: layer %d: unknown kind %d", __LINE__,
                           i, (int)l->kind);
    if (l->kind == PST_LAYER_DENSE && (l->units <= 0 || l->units > MAX_WIDTH))
        return pst_err_set(err, PST_EINVAL,
                           "layerspec.c:%d: layer %d: dense units must be in [1, %d], got %d",
                           __LINE__, i, MAX_WIDTH, l->units);
    if ((l->kind == PST_LAYER_LSTM || l->kind == PST_LAYER_GRU) &&
        (l->units <= 0 || l->units > 65536))
        return pst_err_set(err, PST_EINVAL,
                           "layerspec.c:%d: layer %d: %s units must be in [1, 65536], got %d",
                           __LINE__, i, pst_layer_kind_name(l->kind), l->units);
    if (l->kind == PST_LAYER_DROPOUT && !(l->rate >= 0.0f && l->rate < 1.0f))
        return pst_err_set(err, PST_EINVAL,
                           "layerspec.c:%d: layer %d: dropout rate must be in [0, 1), got %g",
                           __LINE__, i, (double)l->rate);
    if (l->kind == PST_LAYER_SOFTMAX && i != n_layers - 1)
        return pst_err_set(err, PST_EINVAL,
                           "layerspec.c:%d: layer %d: softmax is only allowed as the last layer",
                           __LINE__, i);
    if (l->kind == PST_LAYER_INPUT && i != 0)
        return pst_err_set(err, PST_EINVAL,
                           "layerspec.c:%d: layer %d: input is only allowed as the first layer",
                           __LINE__, i);
    return PST_OK;
}

int pst_layer_specs_check(int n_inputs, const pst_layer_spec_t *layers, int n_layers, int max_batch,
                          pst_err_t *err)
{
    if (n_inputs <= 0 || n_inputs > MAX_WIDTH)
        return pst_err_set(err, PST_EINVAL, "layerspec.c:%d: n_inputs must be in [1, %d], got %d",
                           __LINE__, MAX_WIDTH, n_inputs);
    if (max_batch <= 0)
        return pst_err_set(err, PST_EINVAL, "layerspec.c:%d: max_batch must be positive, got %d",
                           __LINE__, max_batch);
    if (layers == NULL || n_layers <= 0)
        return pst_err_set(err, PST_EINVAL, "layerspec.c:%d: the model has no layers", __LINE__);
    int n_dense = 0;
    for (int i = 0; i < n_layers; i++) {
        int rc = check_layer(&layers[i], i, n_layers, err);
        if (rc != PST_OK)
            return rc;
        n_dense += pst_layer_kind_has_params(layers[i].kind);
    }
    if (n_dense == 0)
        return pst_err_set(err, PST_EINVAL,
                           "layerspec.c:%d: the model needs at least one dense or conv2d layer, "
                           "or an lstm or gru",
                           __LINE__);
    return PST_OK;
}
