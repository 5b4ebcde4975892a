/* Layer stack from configuration: model.hidden + activation + dropout, or an explicit model.layers
 * list, followed by the output layer the task needs. */
#include "worker/model/modelspec.h"
#include "common/numparse.h"

#include <stdlib.h>
#include <string.h>

static int push_layer(pst_modelspec_t *spec, pst_layer_kind_t kind, int units, float rate,
                      pst_err_t *err)
{
    if (spec->n_layers >= PST_MAX_LAYERS)
        return pst_err_set(err, PST_EINVAL, "model: more than %d layers", PST_MAX_LAYERS);
    spec->layers[spec->n_layers++] = (pst_layer_spec_t){kind, units, rate};
    return PST_OK;
}

/* Parses "dense:256", "dropout:0.2", "relu", ... */
static int parse_layer(pst_modelspec_t *spec, const char *text, int index, pst_err_t *err)
{
    char name[32];
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n >= sizeof name)
        n = sizeof name - 1;
    memcpy(name, text, n);
    name[n] = '\0';
    pst_layer_kind_t kind;
    if (pst_layer_kind_parse(name, &kind) != PST_OK)
        return pst_err_set(err, PST_EINVAL,
                           "model.layers[%d]: unknown layer '%s' (dense:N, relu, sigmoid, tanh, "
                           "softmax, dropout:RATE)",
                           index, text);
    double arg = 0;
    if (colon && pst_parse_double(colon + 1, 0, &arg) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "model.layers[%d]: bad number in '%s'", index, text);
    if (kind == PST_LAYER_DENSE && (!colon || arg < 1 || arg != (int)arg))
        return pst_err_set(err, PST_EINVAL, "model.layers[%d]: '%s' needs a width, e.g. dense:128",
                           index, text);
    if (kind == PST_LAYER_DROPOUT && (!colon || arg < 0 || arg >= 1))
        return pst_err_set(err, PST_EINVAL,
                           "model.layers[%d]: '%s' needs a rate in [0, 1), e.g. dropout:0.2", index,
                           text);
    return push_layer(spec, kind, kind == PST_LAYER_DENSE ? (int)arg : 0,
                      kind == PST_LAYER_DROPOUT ? (float)arg : 0.0f, err);
}

static int hidden_layers(pst_modelspec_t *spec, const pst_config_t *cfg, pst_err_t *err)
{
    pst_layer_kind_t act;
    pst_layer_kind_parse(cfg->model.activation, &act);
    for (int i = 0; i < cfg->model.hidden.n; i++) {
        int rc = push_layer(spec, PST_LAYER_DENSE, (int)cfg->model.hidden.items[i], 0, err);
        if (rc == PST_OK)
            rc = push_layer(spec, act, 0, 0, err);
        if (rc == PST_OK && cfg->model.dropout > 0)
            rc = push_layer(spec, PST_LAYER_DROPOUT, 0, (float)cfg->model.dropout, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int output_layers(pst_modelspec_t *spec, const pst_config_t *cfg, pst_task_t task,
                         int n_classes, pst_err_t *err)
{
    const char *out = cfg->model.output;
    if (task == PST_TASK_REGRESSION) {
        if (strcmp(out, "auto") != 0 && strcmp(out, "linear") != 0)
            return pst_err_set(err, PST_EINVAL, "model.output: '%s' does not fit a regression",
                               out);
        return push_layer(spec, PST_LAYER_DENSE, 1, 0, err);
    }
    if (strcmp(out, "linear") == 0)
        return pst_err_set(err, PST_EINVAL,
                           "model.output: a classifier needs a softmax or sigmoid output");
    if (strcmp(out, "sigmoid") == 0) {
        if (n_classes != 2)
            return pst_err_set(err, PST_EINVAL,
                               "model.output: sigmoid needs exactly 2 classes, the data has %d",
                               n_classes);
        int rc = push_layer(spec, PST_LAYER_DENSE, 1, 0, err);
        return rc ? rc : push_layer(spec, PST_LAYER_SIGMOID, 0, 0, err);
    }
    int rc = push_layer(spec, PST_LAYER_DENSE, n_classes, 0, err);
    return rc ? rc : push_layer(spec, PST_LAYER_SOFTMAX, 0, 0, err);
}

static int choose_loss(pst_modelspec_t *spec, const pst_config_t *cfg, pst_task_t task,
                       pst_err_t *err)
{
    pst_layer_kind_t last = spec->layers[spec->n_layers - 1].kind;
    if (strcmp(cfg->model.loss, "auto") == 0)
        spec->loss = last == PST_LAYER_SOFTMAX   ? PST_LOSS_SOFTMAX_CE
                     : last == PST_LAYER_SIGMOID ? PST_LOSS_BCE
                                                 : PST_LOSS_MSE;
    else
        pst_loss_kind_parse(cfg->model.loss, &spec->loss);
    bool ce = spec->loss == PST_LOSS_SOFTMAX_CE || spec->loss == PST_LOSS_BCE;
    if (task == PST_TASK_CLASSIFICATION && !ce)
        return pst_err_set(err, PST_EINVAL,
                           "model.loss: %s is a regression loss but the task is classification",
                           cfg->model.loss);
    if (task == PST_TASK_REGRESSION && ce)
        return pst_err_set(err, PST_EINVAL,
                           "model.loss: %s needs a classification task (data.task)",
                           cfg->model.loss);
    if (spec->loss == PST_LOSS_SOFTMAX_CE && last != PST_LAYER_SOFTMAX)
        return pst_err_set(err, PST_EINVAL, "model.loss: softmax_ce needs a softmax output layer");
    if (spec->loss == PST_LOSS_BCE && last != PST_LAYER_SIGMOID)
        return pst_err_set(err, PST_EINVAL, "model.loss: bce needs a sigmoid output layer");
    spec->fused_output = ce;
    return PST_OK;
}

/* model.layers as written into spec. */
static int explicit_layers(pst_modelspec_t *spec, const pst_config_t *cfg, pst_err_t *err)
{
    int rc = PST_OK;
    for (int i = 0; i < cfg->model.layers.n && rc == PST_OK; i++)
        rc = parse_layer(spec, cfg->model.layers.items[i], i, err);
    return rc;
}

int pst_modelspec_hidden(pst_modelspec_t *spec, const pst_config_t *cfg, pst_err_t *err)
{
    memset(spec, 0, sizeof *spec);
    return cfg->model.layers.n > 0 ? explicit_layers(spec, cfg, err)
                                   : hidden_layers(spec, cfg, err);
}

int pst_modelspec_build(pst_modelspec_t *spec, const pst_config_t *cfg, pst_task_t task,
                        int n_classes, pst_err_t *err)
{
    memset(spec, 0, sizeof *spec);
    int rc = PST_OK;
    if (cfg->model.layers.n > 0) {
        if ((rc = explicit_layers(spec, cfg, err)) != PST_OK)
            return rc;
        int width = 0;
        for (int i = 0; i < spec->n_layers; i++)
            if (spec->layers[i].kind == PST_LAYER_DENSE)
                width = spec->layers[i].units;
        int want = task == PST_TASK_REGRESSION                                  ? 1
                   : spec->layers[spec->n_layers - 1].kind == PST_LAYER_SIGMOID ? 1
                                                                                : n_classes;
        if (width != want)
            return pst_err_set(err, PST_EINVAL,
                               "model.layers: the last dense layer has %d units, the task needs %d",
                               width, want);
    } else {
        if ((rc = hidden_layers(spec, cfg, err)) != PST_OK ||
            (rc = output_layers(spec, cfg, task, n_classes, err)) != PST_OK)
            return rc;
    }
    return choose_loss(spec, cfg, task, err);
}
