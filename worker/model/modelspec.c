/* Layer stack from configuration: model.hidden + activation + dropout, or an explicit model.layers
 * list, followed by the output layer the task needs. */
#include "worker/model/modelspec.h"
#include "common/numparse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int push_layer(pst_modelspec_t *spec, pst_layer_kind_t kind, int units, float rate,
                      pst_err_t *err)
{
    if (spec->n_layers >= PST_MAX_LAYERS)
        return pst_err_set(err, PST_EINVAL, "model: more than %d layers", PST_MAX_LAYERS);
    spec->layers[spec->n_layers++] = (pst_layer_spec_t){.kind = kind, .units = units, .rate = rate};
    return PST_OK;
}

#define LAYER_NAMES                                                                                \
    "dense:N, relu, sigmoid, tanh, softmax, dropout:RATE, conv2d:CHANNELS:KERNEL[:STRIDE[:PAD]], " \
    "maxpool2d:K[:STRIDE], avgpool2d:K[:STRIDE], flatten, global_avgpool, batchnorm, "             \
    "input:C:H:W, "                                                                                \
    "lstm:UNITS[:seq], gru:UNITS[:seq]"

/* Up to four integer fields after the kind, "conv2d:32:3:1:1"; named fields ("pad=1", "stride=2",
 * "kernel=3") set the same places. Returns the count of fields, or -1 on a bad one. */
static int int_fields(const char *text, const char *const *names, long out[4])
{
    int n = 0;
    for (const char *p = strchr(text, ':'); p != NULL && n < 5; p = strchr(p + 1, ':'), n++) {
        char field[32];
        const char *end = strchr(p + 1, ':');
        size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
        if (len == 0 || len >= sizeof field)
            return -1;
        memcpy(field, p + 1, len);
        field[len] = '\0';
        int at = n;
        char *value = strchr(field, '=');
        if (value != NULL) {
            *value++ = '\0';
            for (at = 0; at < 4 && (names[at] == NULL || strcmp(names[at], field) != 0); at++)
                ;
        }
        double v;
        if (n >= 4 || at >= 4 || pst_parse_double(value ? value : field, 0, &v) != PST_OK ||
            v != (long)v || v < 0 || v > 65536)
            return -1;
        out[at] = (long)v;
    }
    return n;
}

/* conv2d, pools and input: "KIND:a:b:c:d" into spec; errors name the entry. */
static int parse_shaped(pst_layer_spec_t *l, const char *text, int index, pst_err_t *err)
{
    static const char *const conv[4] = {"channels", "kernel", "stride", "pad"};
    static const char *const pool[4] = {"kernel", "stride", NULL, NULL};
    static const char *const input[4] = {"channels", "height", "width", NULL};
    long f[4] = {0, 0, 0, 0};
    const char *const *names = l->kind == PST_LAYER_CONV2D  ? conv
                               : l->kind == PST_LAYER_INPUT ? input
                                                            : pool;
    int n = int_fields(text, names, f);
    int need = l->kind == PST_LAYER_CONV2D ? 2 : l->kind == PST_LAYER_INPUT ? 3 : 1;
    const char *form = l->kind == PST_LAYER_CONV2D  ? "conv2d:32:3 or conv2d:32:3:pad=1"
                       : l->kind == PST_LAYER_INPUT ? "input:1:28:28"
                                                    : "maxpool2d:2 or avgpool2d:3:stride=2";
    if (n < need || (l->kind != PST_LAYER_CONV2D && n > (l->kind == PST_LAYER_INPUT ? 3 : 2)) ||
        (l->kind != PST_LAYER_INPUT && f[0] < 1) || (l->kind == PST_LAYER_CONV2D && f[1] < 1))
        return pst_err_set(err, PST_EINVAL, "model.layers[%d]: bad fields in '%s', e.g. %s", index,
                           text, form);
    if (l->kind == PST_LAYER_CONV2D)
        *l = (pst_layer_spec_t){.kind = l->kind,
                                .channels = (int)f[0],
                                .kernel = (int)f[1],
                                .stride = (int)f[2],
                                .pad = (int)f[3]};
    else if (l->kind == PST_LAYER_INPUT)
        *l = (pst_layer_spec_t){
            .kind = l->kind, .channels = (int)f[0], .height = (int)f[1], .width = (int)f[2]};
    else
        *l = (pst_layer_spec_t){.kind = l->kind, .kernel = (int)f[0], .stride = (int)f[1]};
    return PST_OK;
}

static bool takes_shape(pst_layer_kind_t kind)
{
    return kind == PST_LAYER_CONV2D || kind == PST_LAYER_MAXPOOL2D || kind == PST_LAYER_AVGPOOL2D ||
           kind == PST_LAYER_INPUT;
}

/* "lstm:64" (the last step's state) or "lstm:64:seq" (every step's), the same for gru. */
static int parse_recurrent(pst_modelspec_t *spec, pst_layer_kind_t kind, const char *text,
                           int index, pst_err_t *err)
{
    const char *colon = strchr(text, ':');
    char *end = NULL;
    long units = colon ? strtol(colon + 1, &end, 10) : 0;
    bool seq = end != NULL && strcmp(end, ":seq") == 0;
    if (colon == NULL || end == colon + 1 || units < 1 || units > 65536 || (*end != '\0' && !seq))
        return pst_err_set(err, PST_EINVAL,
                           "model.layers[%d]: '%s' needs units in [1, 65536] and optionally "
                           "':seq', e.g. %s:64 or %s:64:seq",
                           index, text, pst_layer_kind_name(kind), pst_layer_kind_name(kind));
    int rc = push_layer(spec, kind, (int)units, 0, err);
    if (rc == PST_OK)
        spec->layers[spec->n_layers - 1].sequences = seq;
    return rc;
}

/* Parses "dense:256", "dropout:0.2", "relu", "conv2d:32:3:pad=1", ... */
static int parse_layer_body(pst_modelspec_t *spec, const char *text, int index, pst_err_t *err)
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
                           "model.layers[%d]: unknown layer '%s' (" LAYER_NAMES ")", index, text);
    if (kind == PST_LAYER_LSTM || kind == PST_LAYER_GRU)
        return parse_recurrent(spec, kind, text, index, err);
    if (takes_shape(kind)) {
        pst_layer_spec_t l = {.kind = kind};
        int rc = parse_shaped(&l, text, index, err);
        if (rc == PST_OK && (rc = push_layer(spec, kind, 0, 0, err)) == PST_OK)
            spec->layers[spec->n_layers - 1] = l;
        return rc;
    }
    double arg = 0;
    if (colon && pst_parse_double(colon + 1, 0, &arg) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "model.layers[%d]: bad number in '%s'", index, text);
    if (colon && kind != PST_LAYER_DENSE && kind != PST_LAYER_DROPOUT)
        return pst_err_set(err, PST_EINVAL, "model.layers[%d]: '%s' takes no argument", index,
                           text);
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

/* A stack with spatial layers starts from an input layer: data.image_shape's, or one inferred
 * by the model from the row width. */
static int add_input_layer(pst_modelspec_t *spec, const pst_config_t *cfg, pst_err_t *err)
{
    bool spatial = false;
    for (int i = 0; i < spec->n_layers; i++)
        spatial |= pst_layer_kind_is_spatial(spec->layers[i].kind);
    if (!spatial || spec->layers[0].kind == PST_LAYER_INPUT)
        return PST_OK;
    const pst_int_list_t *shape = &cfg->data.image_shape;
    if (shape->n != 0 && shape->n != 2 && shape->n != 3)
        return pst_err_set(err, PST_EINVAL,
                           "data.image_shape: %d values, expected [channels, height, width] or "
                           "[height, width]",
                           shape->n);
    if (spec->n_layers >= PST_MAX_LAYERS)
        return pst_err_set(err, PST_EINVAL, "model: more than %d layers", PST_MAX_LAYERS);
    memmove(spec->layers + 1, spec->layers, (size_t)spec->n_layers * sizeof spec->layers[0]);
    spec->n_layers++;
    pst_layer_spec_t *in = &spec->layers[0];
    *in = (pst_layer_spec_t){.kind = PST_LAYER_INPUT, .channels = 1};
    if (shape->n > 0) {
        int o = shape->n == 3;
        in->channels = o ? (int)shape->items[0] : 1;
        in->height = (int)shape->items[o];
        in->width = (int)shape->items[o + 1];
    }
    return PST_OK;
}

static bool takes_init(pst_layer_kind_t kind)
{
    return kind == PST_LAYER_DENSE || kind == PST_LAYER_CONV2D || kind == PST_LAYER_LSTM ||
           kind == PST_LAYER_GRU;
}

/* An entry may end in ":init=NAME" (dense, conv2d, lstm, gru); the rest is parse_layer_body's. */
static int parse_layer(pst_modelspec_t *spec, const char *text, int index, pst_err_t *err)
{
    const char *at = strstr(text, ":init=");
    if (at == NULL)
        return parse_layer_body(spec, text, index, err);
    pst_init_kind_t init;
    char body[128];
    size_t n = (size_t)(at - text);
    if (pst_init_kind_parse(at + 6, &init) != PST_OK || n >= sizeof body)
        return pst_err_set(err, PST_EINVAL,
                           "model.layers[%d]: bad init in '%s' (he_normal, he_uniform, "
                           "glorot_normal, glorot_uniform, lecun_normal, lecun_uniform, "
                           "orthogonal)",
                           index, text);
    memcpy(body, text, n);
    body[n] = '\0';
    int rc = parse_layer_body(spec, body, index, err);
    if (rc != PST_OK)
        return rc;
    pst_layer_spec_t *l = &spec->layers[spec->n_layers - 1];
    if (!takes_init(l->kind))
        return pst_err_set(err, PST_EINVAL,
                           "model.layers[%d]: '%s': only dense, conv2d, lstm and gru take "
                           "an init",
                           index, text);
    l->init = init;
    return rc;
}

/* With data.window, a row is window steps: the first recurrent layer reads its flat input so
 * unless an input layer already shaped it. */
static void apply_window(pst_modelspec_t *spec, const pst_config_t *cfg)
{
    for (int i = 0; cfg->data.window > 0 && i < spec->n_layers; i++) {
        pst_layer_kind_t k = spec->layers[i].kind;
        if (k == PST_LAYER_INPUT)
            return;
        if (k == PST_LAYER_LSTM || k == PST_LAYER_GRU) {
            if (spec->layers[i].steps == 0)
                spec->layers[i].steps = (int)cfg->data.window;
            return;
        }
    }
}

/* Marks entry `name` of train.freeze (an index of model.layers, or a kind: all of that kind) in
 * spec; first is the stack's index of model.layers[0] (1 after an inserted input layer). */
static int freeze_entry(pst_modelspec_t *spec, const char *name, int first, pst_err_t *err)
{
    char *end = NULL;
    long index = strtol(name, &end, 10);
    pst_layer_kind_t kind;
    if (end != name && *end == '\0') {
        int i = (int)index + first;
        if (index < 0 || i >= spec->n_layers)
            return pst_err_set(err, PST_EINVAL, "train.freeze: no layer %ld (the model has %d)",
                               index, spec->n_layers - first);
        if (!pst_layer_kind_has_weights(spec->layers[i].kind))
            return pst_err_set(err, PST_EINVAL, "train.freeze: layer %ld (%s) has no weights",
                               index, pst_layer_kind_name(spec->layers[i].kind));
        spec->layers[i].frozen = true;
        return PST_OK;
    }
    bool found = false;
    if (pst_layer_kind_parse(name, &kind) == PST_OK)
        for (int i = 0; i < spec->n_layers; i++)
            if (spec->layers[i].kind == kind && pst_layer_kind_has_weights(kind))
                found = spec->layers[i].frozen = true;
    if (!found)
        return pst_err_set(err, PST_EINVAL,
                           "train.freeze: '%s' is neither a layer index nor the kind of a layer "
                           "with weights in the model",
                           name);
    return PST_OK;
}

/* train.freeze: at least one layer with weights must stay trainable. */
static int apply_freeze(pst_modelspec_t *spec, const pst_config_t *cfg, pst_err_t *err)
{
    int first = cfg->model.layers.n > 0 && spec->n_layers > cfg->model.layers.n ? 1 : 0;
    for (int i = 0; i < cfg->train.freeze.n; i++) {
        int rc = freeze_entry(spec, cfg->train.freeze.items[i], first, err);
        if (rc != PST_OK)
            return rc;
    }
    for (int i = 0; i < spec->n_layers; i++)
        if (pst_layer_kind_has_weights(spec->layers[i].kind) && !spec->layers[i].frozen)
            return PST_OK;
    return pst_err_set(err, PST_EINVAL, "train.freeze: every layer with weights is frozen");
}

/* model.init for every layer with weights that names none. */
static void apply_init(pst_modelspec_t *spec, const pst_config_t *cfg)
{
    pst_init_kind_t init = PST_INIT_AUTO;
    pst_init_kind_parse(cfg->model.init, &init);
    for (int i = 0; i < spec->n_layers; i++) {
        pst_layer_spec_t *l = &spec->layers[i];
        if (takes_init(l->kind) && l->init == PST_INIT_AUTO)
            l->init = init;
    }
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
    return rc == PST_OK ? add_input_layer(spec, cfg, err) : rc;
}

int pst_modelspec_hidden(pst_modelspec_t *spec, const pst_config_t *cfg, pst_err_t *err)
{
    memset(spec, 0, sizeof *spec);
    int rc =
        cfg->model.layers.n > 0 ? explicit_layers(spec, cfg, err) : hidden_layers(spec, cfg, err);
    apply_init(spec, cfg);
    apply_window(spec, cfg);
    return rc;
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
    apply_init(spec, cfg);
    apply_window(spec, cfg);
    if ((rc = apply_freeze(spec, cfg, err)) != PST_OK)
        return rc;
    return choose_loss(spec, cfg, task, err);
}

const char *pst_layer_spec_format(const pst_layer_spec_t *l, char *buf, size_t n)
{
    const char *name = pst_layer_kind_name(l->kind);
    switch (l->kind) {
    case PST_LAYER_DENSE:
        snprintf(buf, n, "%s:%d", name, l->units);
        break;
    case PST_LAYER_DROPOUT:
        snprintf(buf, n, "%s:%g", name, (double)l->rate);
        break;
    case PST_LAYER_CONV2D:
        snprintf(buf, n, "%s:%d:%d:%d:%d", name, l->channels, l->kernel,
                 l->stride > 0 ? l->stride : 1, l->pad);
        break;
    case PST_LAYER_MAXPOOL2D:
    case PST_LAYER_AVGPOOL2D:
        snprintf(buf, n, "%s:%d:%d", name, l->kernel, l->stride > 0 ? l->stride : l->kernel);
        break;
    case PST_LAYER_INPUT:
        snprintf(buf, n, "%s:%d:%d:%d", name, l->channels, l->height, l->width);
        break;
    case PST_LAYER_LSTM:
    case PST_LAYER_GRU:
        snprintf(buf, n, "%s:%d%s", name, l->units, l->sequences ? ":seq" : "");
        break;
    default:
        snprintf(buf, n, "%s", name);
        break;
    }
    size_t used = strlen(buf);
    if (l->init != PST_INIT_AUTO && used < n)
        snprintf(buf + used, n - used, ":init=%s", pst_init_kind_name(l->init));
    return buf;
}
