/* A dense model file as one ONNX graph: preprocessing (common/onnx/onnxprep), column selection,
 * the layer stack (worker/model/onnxlayers), and the label and probability outputs. */
#include "worker/model/onnxmodel.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/onnx/onnxprep.h"
#include "worker/model/onnxcolumns.h"
#include "worker/model/onnxlayers.h"

static int out_of_memory(pst_err_t *err, const char *what)
{
    return pst_err_set(err, PST_ENOMEM, "ONNX %s: out of memory", what);
}

/* The feature matrix the layer stack takes: raw input, preprocessed, narrowed to the columns. */
static int emit_features(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char *input,
                         const char **out, pst_err_t *err)
{
    const char *v = input;
    if (mf->shift) {
        /* A model file holds either no preprocessing or all of it (pst_modelfile_preprocess). */
        pst_onnx_numeric_t spec = {(size_t)mf->n_inputs, mf->pixel_scale, mf->fill, mf->shift,
                                   mf->scale};
        int rc = pst_onnx_prep_numeric(g, v, &spec, &v, err);
        if (rc != PST_OK)
            return rc;
    }
    if (mf->n_columns > 0) {
        int64_t *columns = malloc((size_t)mf->n_columns * sizeof *columns);
        if (!columns)
            return out_of_memory(err, "columns");
        for (int i = 0; i < mf->n_columns; i++)
            columns[i] = (int64_t)mf->columns[i];
        const char *index = pst_onnx_graph_unique(g, "columns");
        const char *selected = pst_onnx_graph_unique(g, "selected");
        int64_t dims[1] = {mf->n_columns};
        int rc = pst_onnx_graph_int64s(g, index, 1, dims, columns);
        free(columns);
        const char *in[] = {v, index, NULL};
        if (rc != PST_OK ||
            pst_onnx_attr_int(g, pst_onnx_graph_op(g, "Gather", selected, in), "axis", 1) != PST_OK)
            return out_of_memory(err, "columns");
        v = selected;
    }
    *out = v;
    return PST_OK;
}

/* The layer stack over x; *out names its (N, n_outputs) result. */
static int emit_layers(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char *x,
                       const char **out, int *n_outputs, pst_err_t *err)
{
    pst_model_t *model = pst_modelfile_build(mf, 1, err);
    if (!model)
        return err ? err->code : PST_EFORMAT;
    int rc = pst_onnx_emit_stack(g, model, x, out, err);
    *n_outputs = pst_model_n_outputs(model);
    pst_model_destroy(&model);
    return rc;
}

static bool integral_classes(const pst_modelfile_t *mf)
{
    for (int k = 0; mf->class_values && k < mf->n_classes; k++) {
        double v = mf->class_values[k];
        if (v != floor(v) || fabs(v) > 9007199254740992.0) /* 2^53: exact in both types */
            return false;
    }
    return true;
}

/* label = Gather(class values, index): the data's own label values (0..k-1 when none), or its
 * text class names. */
static int emit_label(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char *index,
                      pst_onnx_type_t *type)
{
    int n = mf->n_classes;
    int64_t dims[1] = {n};
    const char *classes = pst_onnx_graph_unique(g, "classes");
    int rc;
    *type = mf->class_names        ? PST_ONNX_STRING
            : integral_classes(mf) ? PST_ONNX_INT64
                                   : PST_ONNX_DOUBLE;
    if (*type == PST_ONNX_STRING) {
        rc = pst_onnx_graph_strings(g, classes, 1, dims, (const char *const *)mf->class_names);
    } else if (*type == PST_ONNX_DOUBLE) {
        rc = pst_onnx_graph_doubles(g, classes, 1, dims, mf->class_values);
    } else {
        int64_t *values = malloc((size_t)n * sizeof *values);
        if (!values)
            return PST_ENOMEM;
        for (int k = 0; k < n; k++)
            values[k] = mf->class_values ? (int64_t)mf->class_values[k] : k;
        rc = pst_onnx_graph_int64s(g, classes, 1, dims, values);
        free(values);
    }
    const char *in[] = {classes, index, NULL};
    if (rc == PST_OK && !pst_onnx_graph_op(g, "Gather", PST_ONNX_LABEL_NAME, in))
        rc = PST_ENOMEM;
    return rc;
}

/* out = [1 - p, p] for one sigmoid output p (N, 1), as pst_ensemble_outputs_to_probs. */
static int emit_two_probs(pst_onnx_graph_t *g, const char *p, const char *out)
{
    const char *one = pst_onnx_graph_unique(g, "one");
    const float one_v = 1.0f;
    if (pst_onnx_graph_floats(g, one, 0, NULL, &one_v) != PST_OK)
        return PST_ENOMEM;
    const char *q = pst_onnx_graph_unique(g, "p_negative");
    const char *q_in[] = {one, p, NULL}, *cat_in[] = {q, p, NULL};
    pst_onnx_node_t *cat = NULL;
    if (pst_onnx_graph_op(g, "Sub", q, q_in))
        cat = pst_onnx_graph_op(g, "Concat", out, cat_in);
    return pst_onnx_attr_int(g, cat, "axis", 1);
}

/* One sigmoid output p: probabilities [1 - p, p] and class index p >= 0.5, as pstrain predicts. */
static int emit_binary(pst_onnx_graph_t *g, const char *p, const char **index)
{
    const char *half = pst_onnx_graph_unique(g, "half");
    const char *shape = pst_onnx_graph_unique(g, "flat_shape");
    const float half_v = 0.5f;
    const int64_t flat = -1, flat_dims[1] = {1};
    if (pst_onnx_graph_floats(g, half, 0, NULL, &half_v) != PST_OK ||
        pst_onnx_graph_int64s(g, shape, 1, flat_dims, &flat) != PST_OK ||
        emit_two_probs(g, p, PST_ONNX_PROBABILITIES_NAME) != PST_OK)
        return PST_ENOMEM;
    const char *positive = pst_onnx_graph_unique(g, "positive");
    const char *as_int = pst_onnx_graph_unique(g, "positive_index");
    const char *flat_index = pst_onnx_graph_unique(g, "class_index");
    const char *ge_in[] = {p, half, NULL}, *cast_in[] = {positive, NULL};
    const char *reshape_in[] = {as_int, shape, NULL};
    if (!pst_onnx_graph_op(g, "GreaterOrEqual", positive, ge_in) ||
        pst_onnx_attr_int(g, pst_onnx_graph_op(g, "Cast", as_int, cast_in), "to", PST_ONNX_INT64) !=
            PST_OK ||
        !pst_onnx_graph_op(g, "Reshape", flat_index, reshape_in))
        return PST_ENOMEM;
    *index = flat_index;
    return PST_OK;
}

/* Several outputs: they are the probabilities; the class is the first largest (ArgMax). */
static int emit_multiclass(pst_onnx_graph_t *g, const char *out, const char **index)
{
    const char *in[] = {out, NULL};
    const char *arg = pst_onnx_graph_unique(g, "class_index");
    pst_onnx_node_t *node = pst_onnx_graph_op(g, "ArgMax", arg, in);
    if (pst_onnx_attr_int(g, node, "axis", 1) != PST_OK ||
        pst_onnx_attr_int(g, node, "keepdims", 0) != PST_OK ||
        !pst_onnx_graph_op(g, "Identity", PST_ONNX_PROBABILITIES_NAME, in))
        return PST_ENOMEM;
    *index = arg;
    return PST_OK;
}

int pst_onnx_emit_outputs(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char *out,
                          int n_outputs, pst_err_t *err)
{
    if (mf->task == PST_TASK_REGRESSION) {
        const char *in[] = {out, NULL};
        int64_t dims[2] = {PST_ONNX_BATCH, n_outputs};
        if (!pst_onnx_graph_op(g, "Identity", PST_ONNX_VALUE_NAME, in) ||
            pst_onnx_graph_output(g, PST_ONNX_VALUE_NAME, PST_ONNX_FLOAT, 2, dims,
                                  "the predicted value") != PST_OK)
            return out_of_memory(err, "outputs");
        return PST_OK;
    }
    if (n_outputs != mf->n_classes && !(n_outputs == 1 && mf->n_classes == 2))
        return pst_err_set(err, PST_EFORMAT, "the model has %d outputs for %d classes", n_outputs,
                           mf->n_classes);
    const char *index = NULL;
    pst_onnx_type_t label_type;
    int rc = n_outputs == 1 ? emit_binary(g, out, &index) : emit_multiclass(g, out, &index);
    if (rc == PST_OK)
        rc = emit_label(g, mf, index, &label_type);
    int64_t label_dims[1] = {PST_ONNX_BATCH}, prob_dims[2] = {PST_ONNX_BATCH, mf->n_classes};
    if (rc == PST_OK)
        rc = pst_onnx_graph_output(g, PST_ONNX_LABEL_NAME, label_type, 1, label_dims,
                                   "the predicted class, in the data's label values (its text for "
                                   "text labels)");
    if (rc == PST_OK)
        rc = pst_onnx_graph_output(g, PST_ONNX_PROBABILITIES_NAME, PST_ONNX_FLOAT, 2, prob_dims,
                                   "the probability of each class, in label order");
    return rc == PST_OK ? PST_OK : out_of_memory(err, "outputs");
}

int pst_onnx_emit_rows(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char *input, int width,
                       const char **out, pst_err_t *err)
{
    const char *features = NULL, *y = NULL;
    int n_outputs = 0;
    const char *raw = NULL;
    int rc = pst_onnx_columns_typed(mf->encoder)
                 ? pst_onnx_encode_columns(g, mf->encoder, &raw, err)
                 : pst_onnx_emit_clips(g, mf->encoder, input, &raw, err);
    if (rc == PST_OK)
        rc = emit_features(g, mf, raw, &features, err);
    if (rc == PST_OK)
        rc = emit_layers(g, mf, features, &y, &n_outputs, err);
    if (rc != PST_OK)
        return rc;
    if (n_outputs == width) {
        *out = y;
        return PST_OK;
    }
    if (n_outputs != 1 || width != 2)
        return pst_err_set(err, PST_EFORMAT, "a model gives %d outputs, %d are needed", n_outputs,
                           width);
    const char *probs = pst_onnx_graph_unique(g, "probs");
    if (emit_two_probs(g, y, probs) != PST_OK)
        return out_of_memory(err, "probabilities");
    *out = probs;
    return PST_OK;
}

/* The feature names as a JSON array (a name may hold a comma), or NULL. Caller frees. */
static char *names_json(const pst_modelfile_t *mf)
{
    cJSON *names = cJSON_CreateArray();
    for (int i = 0; names && i < mf->n_inputs; i++)
        if (!cJSON_AddItemToArray(names, cJSON_CreateString(mf->feature_names[i]))) {
            cJSON_Delete(names);
            return NULL;
        }
    char *text = names ? cJSON_PrintUnformatted(names) : NULL;
    cJSON_Delete(names);
    return text;
}

/* The steps of a window when mf was trained on data.window (which alone sets a recurrent
 * layer's steps: it reads the flat row as that many steps), else 0. */
static int window_steps(const pst_modelfile_t *mf)
{
    for (int i = 0; i < mf->n_layers; i++)
        if ((mf->layers[i].kind == PST_LAYER_LSTM || mf->layers[i].kind == PST_LAYER_GRU) &&
            mf->layers[i].steps > 0)
            return mf->layers[i].steps;
    return 0;
}

/* The graph input, documented with its columns by name when the model file knows them, or as
 * windows of a series with their steps in the metadata window. */
static int emit_input(pst_onnx_graph_t *g, const pst_modelfile_t *mf)
{
    static const char doc[] = "raw feature columns in the training file's order (the target left "
                              "out), NaN for a missing value; their names are the metadata "
                              "feature_names";
    static const char window_doc[] = "one window of the series per row: its rows in time order "
                                     "(the metadata window counts them), each row's sequence "
                                     "columns in order, NaN for a missing value";
    int64_t dims[2] = {PST_ONNX_BATCH, mf->n_inputs};
    int steps = window_steps(mf);
    int rc = pst_onnx_graph_input(g, PST_ONNX_INPUT_NAME, PST_ONNX_FLOAT, 2, dims,
                                  steps ? window_doc : doc);
    if (rc == PST_OK && steps) {
        char text[16];
        snprintf(text, sizeof text, "%d", steps);
        rc = pst_onnx_graph_metadata(g, "window", text);
    }
    if (rc == PST_OK && mf->feature_names) {
        char *names = names_json(mf);
        rc = names ? pst_onnx_graph_metadata(g, "feature_names", names) : PST_ENOMEM;
        free(names);
    }
    if (rc == PST_OK && mf->target_name)
        rc = pst_onnx_graph_metadata(g, "target", mf->target_name);
    return rc;
}

static int emit_task(pst_onnx_graph_t *g, const pst_modelfile_t *mf, pst_err_t *err)
{
    const char *task = mf->task == PST_TASK_REGRESSION ? "regression" : "classification";
    if (pst_onnx_graph_metadata(g, "task", task) != PST_OK)
        return out_of_memory(err, "metadata");
    return PST_OK;
}

int pst_onnx_emit_input(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char **input,
                        pst_err_t *err)
{
    if (!pst_onnx_columns_typed(mf->encoder)) {
        *input = PST_ONNX_INPUT_NAME;
        if (emit_input(g, mf) != PST_OK)
            return out_of_memory(err, "input");
        return emit_task(g, mf, err);
    }
    if (mf->encoder->n_features != (size_t)mf->n_inputs)
        return pst_err_set(err, PST_EFORMAT, "the encoder gives %zu features, the model takes %d",
                           mf->encoder->n_features, mf->n_inputs);
    *input = NULL; /* the columns, by name */
    int rc = pst_onnx_declare_columns(g, mf->encoder, err);
    if (rc == PST_OK && mf->target_name &&
        pst_onnx_graph_metadata(g, "target", mf->target_name) != PST_OK)
        rc = out_of_memory(err, "metadata");
    return rc == PST_OK ? emit_task(g, mf, err) : rc;
}

int pst_onnx_emit_model(pst_onnx_graph_t *g, const pst_modelfile_t *mf, pst_err_t *err)
{
    const char *raw = NULL, *features = NULL, *out = NULL;
    int n_outputs = 0;
    int rc = pst_onnx_emit_input(g, mf, &raw, err);
    if (rc == PST_OK)
        rc = pst_onnx_columns_typed(mf->encoder)
                 ? pst_onnx_encode_columns(g, mf->encoder, &raw, err)
                 : pst_onnx_emit_clips(g, mf->encoder, raw, &raw, err);
    if (rc == PST_OK)
        rc = emit_features(g, mf, raw, &features, err);
    if (rc == PST_OK)
        rc = emit_layers(g, mf, features, &out, &n_outputs, err);
    return rc == PST_OK ? pst_onnx_emit_outputs(g, mf, out, n_outputs, err) : rc;
}
