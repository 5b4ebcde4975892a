/* Model file: pst.Model protobuf with magic and version, written atomically, validated on read. */
#include "worker/model/modelfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/data/encoder_proto.h"
#include "common/drift/profile_pack.h"
#include "common/drift/profile_proto.h"
#include "common/filesum.h"
#include "common/data/preprocess.h"
#include "worker/model/prunedfile.h"
#include "worker/model/quantfile.h"
#include "worker/model/sparsefile.h"
#include "pstrain.pb-c.h"

#define MODELFILE_MAX_BYTES ((size_t)4 << 30)
/* Layer sizes beyond this are refused before they reach int arithmetic. */
#define MAX_LAYER_FIELD (1u << 24)

void pst_modelfile_fini(pst_modelfile_t *mf)
{
    free(mf->layers);
    free(mf->class_values);
    free(mf->shift);
    free(mf->scale);
    free(mf->fill);
    free(mf->params);
    free(mf->state);
    free(mf->config_yaml);
    free(mf->target_name);
    if (mf->feature_names)
        for (int i = 0; i < mf->n_inputs; i++)
            free(mf->feature_names[i]);
    free(mf->feature_names);
    free(mf->columns);
    pst_encoder_destroy(&mf->encoder);
    pst_drift_profile_destroy(&mf->drift);
    if (mf->class_names)
        for (int i = 0; i < mf->n_classes; i++)
            free(mf->class_names[i]);
    free(mf->class_names);
    pst_quant_destroy(&mf->quant);
    memset(mf, 0, sizeof *mf);
}

static const char *task_name(pst_task_t task)
{
    return task == PST_TASK_REGRESSION ? "regression" : "classification";
}

int pst_modelfile_pack(const pst_modelfile_t *mf, uint8_t **buf_out, size_t *len_out,
                       pst_err_t *err)
{
    *buf_out = NULL;
    *len_out = 0;
    Pst__Model m = PST__MODEL__INIT;
    Pst__Preprocess pre = PST__PREPROCESS__INIT;
    Pst__LayerSpec *specs = calloc((size_t)mf->n_layers, sizeof *specs);
    Pst__LayerSpec **spec_ptrs = calloc((size_t)mf->n_layers, sizeof *spec_ptrs);
    if (mf->n_layers > 0 && (!specs || !spec_ptrs)) {
        free(specs);
        free(spec_ptrs);
        return pst_err_set(err, PST_ENOMEM, "model file: out of memory");
    }
    for (int i = 0; i < mf->n_layers; i++) {
        pst__layer_spec__init(&specs[i]);
        specs[i].kind = (char *)pst_layer_kind_name(mf->layers[i].kind);
        specs[i].units = (uint32_t)mf->layers[i].units;
        specs[i].rate = mf->layers[i].rate;
        specs[i].channels = (uint32_t)mf->layers[i].channels;
        specs[i].kernel = (uint32_t)mf->layers[i].kernel;
        specs[i].stride = (uint32_t)mf->layers[i].stride;
        specs[i].pad = (uint32_t)mf->layers[i].pad;
        specs[i].height = (uint32_t)mf->layers[i].height;
        specs[i].width = (uint32_t)mf->layers[i].width;
        specs[i].sequences = mf->layers[i].sequences;
        specs[i].steps = (uint32_t)mf->layers[i].steps;
        specs[i].init = mf->layers[i].init == PST_INIT_AUTO
                            ? ""
                            : (char *)pst_init_kind_name(mf->layers[i].init);
        spec_ptrs[i] = &specs[i];
    }
    m.magic = PST_MODELFILE_MAGIC;
    m.version = PST_MODELFILE_VERSION;
    m.n_inputs = (uint32_t)mf->n_inputs;
    m.n_layers = (size_t)mf->n_layers;
    m.layers = spec_ptrs;
    m.loss = (char *)pst_loss_kind_name(mf->loss);
    m.task = (char *)task_name(mf->task);
    m.n_classes = (uint32_t)mf->n_classes;
    m.n_class_values = mf->class_values ? (size_t)mf->n_classes : 0;
    m.class_values = mf->class_values;
    if (mf->shift) {
        pre.n_shift = pre.n_scale = pre.n_fill = (size_t)mf->n_inputs;
        pre.shift = mf->shift;
        pre.scale = mf->scale;
        pre.fill = mf->fill;
    }
    pre.pixel_scale = mf->pixel_scale;
    m.preprocess = &pre;
    m.params.data = (uint8_t *)mf->params;
    m.params.len = mf->n_params * sizeof(float);
    m.state.data = (uint8_t *)mf->state;
    m.state.len = mf->state ? mf->n_state * sizeof(float) : 0;
    m.config_yaml = mf->config_yaml ? mf->config_yaml : "";
    m.target_name = mf->target_name ? mf->target_name : "";
    m.n_feature_names = mf->feature_names ? (size_t)mf->n_inputs : 0;
    m.feature_names = mf->feature_names;
    uint32_t *columns = malloc((mf->n_columns > 0 ? (size_t)mf->n_columns : 1) * sizeof *columns);
    for (int i = 0; columns && i < mf->n_columns; i++)
        columns[i] = (uint32_t)mf->columns[i];
    m.n_columns = (size_t)(mf->n_columns > 0 ? mf->n_columns : 0);
    m.columns = columns;
    m.n_class_names = mf->class_names ? (size_t)mf->n_classes : 0;
    m.class_names = mf->class_names;
    Pst__Encoder enc = PST__ENCODER__INIT;
    if (mf->encoder && pst_encoder_to_proto(mf->encoder, &enc, err) != PST_OK) {
        free(columns);
        columns = NULL;
    }
    m.encoder = mf->encoder ? &enc : NULL;
    pst_prunedfile_pack_t pruned;
    memset(&pruned, 0, sizeof pruned);
    Pst__QuantModel quant = PST__QUANT_MODEL__INIT;
    Pst__DriftProfilePacked drift = PST__DRIFT_PROFILE_PACKED__INIT;
    int rc = PST_OK;
    if (mf->quant && columns) {
        /* the int8 weights replace the float arena */
        rc = pst_quantfile_to_msg(mf->quant, mf->params, mf->n_params, &quant, err);
        m.quant = &quant;
        m.params.len = 0;
    } else if (columns) {
        rc = pst_prunedfile_pack(mf, &m, &pruned, err);
    }
    if (rc == PST_OK && columns && mf->drift)
        rc = pst_drift_to_packed(mf->drift, &drift, err);
    m.drift_packed = mf->drift ? &drift : NULL;

    size_t len = rc == PST_OK ? pst__model__get_packed_size(&m) : 0;
    uint8_t *buf = columns && rc == PST_OK ? malloc(len ? len : 1) : NULL;
    if (rc == PST_OK && !buf) {
        rc = err && err->code != PST_OK ? err->code
                                        : pst_err_set(err, PST_ENOMEM, "model file: out of memory");
    } else if (rc == PST_OK) {
        pst__model__pack(&m, buf);
        *buf_out = buf;
        *len_out = len;
    }
    free(columns);
    free(specs);
    free(spec_ptrs);
    pst_encoder_proto_free(&enc);
    pst_drift_packed_free(&drift);
    pst_prunedfile_pack_fini(&pruned);
    pst_quantfile_msg_fini(&quant);
    return rc;
}

int pst_modelfile_save(const pst_modelfile_t *mf, const char *path, pst_err_t *err)
{
    uint8_t *buf;
    size_t len;
    int rc = pst_modelfile_pack(mf, &buf, &len, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", path);
    rc = pst_filesum_write(path, buf, len, err);
    free(buf);
    return rc;
}

static int copy_floats(float **dst, const float *src, size_t n)
{
    *dst = malloc((n ? n : 1) * sizeof(float));
    if (!*dst)
        return PST_ENOMEM;
    memcpy(*dst, src, n * sizeof(float));
    return PST_OK;
}

static int read_layers(pst_modelfile_t *mf, const Pst__Model *m, const char *path, pst_err_t *err)
{
    if (m->n_layers == 0 || m->n_layers > 1024)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu layers", path, m->n_layers);
    mf->n_layers = (int)m->n_layers;
    mf->layers = calloc(m->n_layers, sizeof *mf->layers);
    if (!mf->layers)
        return PST_ENOMEM;
    for (size_t i = 0; i < m->n_layers; i++) {
        if (pst_layer_kind_parse(m->layers[i]->kind, &mf->layers[i].kind) != PST_OK)
            return pst_err_set(err, PST_EFORMAT, "%s: layer %zu has unknown kind '%s'", path, i + 1,
                               m->layers[i]->kind);
        const Pst__LayerSpec *l = m->layers[i];
        if (l->units > MAX_LAYER_FIELD || l->channels > MAX_LAYER_FIELD ||
            l->kernel > MAX_LAYER_FIELD || l->stride > MAX_LAYER_FIELD ||
            l->pad > MAX_LAYER_FIELD || l->height > MAX_LAYER_FIELD || l->width > MAX_LAYER_FIELD ||
            l->steps > MAX_LAYER_FIELD)
            return pst_err_set(err, PST_EFORMAT, "%s: layer %zu has a size over %u", path, i + 1,
                               MAX_LAYER_FIELD);
        if (mf->layers[i].kind == PST_LAYER_DENSE && l->units == 0)
            return pst_err_set(err, PST_EFORMAT, "%s: layer %zu has 0 units", path, i + 1);
        mf->layers[i].units = (int)l->units;
        mf->layers[i].rate = l->rate;
        mf->layers[i].channels = (int)l->channels;
        mf->layers[i].kernel = (int)l->kernel;
        mf->layers[i].stride = (int)l->stride;
        mf->layers[i].pad = (int)l->pad;
        mf->layers[i].height = (int)l->height;
        mf->layers[i].width = (int)l->width;
        mf->layers[i].sequences = l->sequences;
        mf->layers[i].steps = (int)l->steps;
        if (l->init[0] != '\0' && pst_init_kind_parse(l->init, &mf->layers[i].init) != PST_OK)
            return pst_err_set(err, PST_EFORMAT, "%s: layer %zu has unknown init '%s'", path, i + 1,
                               l->init);
    }
    return PST_OK;
}

/* The parameters mf's layers need (weights and biases of each dense layer), computed before any
 * model is built from them: a file's claims are checked against the bytes it holds, so a small
 * file cannot make the reader allocate gigabytes. */
/* The parameters a stack of dense and element-wise layers needs; UINT64_MAX for a stack with
 * spatial, batchnorm or recurrent layers, whose count needs the shapes the model builds (their
 * fields are bounded by MAX_LAYER_FIELD instead). */
static uint64_t layer_params(const pst_modelfile_t *mf)
{
    uint64_t width = (uint64_t)mf->n_inputs, n = 0;
    for (int i = 0; i < mf->n_layers; i++) {
        if (pst_layer_kind_is_spatial(mf->layers[i].kind) ||
            mf->layers[i].kind == PST_LAYER_BATCHNORM || mf->layers[i].kind == PST_LAYER_INPUT ||
            mf->layers[i].kind == PST_LAYER_LSTM || mf->layers[i].kind == PST_LAYER_GRU)
            return UINT64_MAX;
        if (mf->layers[i].kind != PST_LAYER_DENSE)
            continue;
        uint64_t units = (uint64_t)mf->layers[i].units;
        n += units * width + units; /* at most 2^52 + 2^26 a layer, 1024 layers: no overflow */
        width = units;
    }
    return n;
}

static int read_preprocess(pst_modelfile_t *mf, const Pst__Preprocess *pre, const char *path,
                           pst_err_t *err)
{
    if (!pre)
        return PST_OK;
    mf->pixel_scale = pre->pixel_scale;
    if (pre->n_shift == 0 && pre->n_scale == 0 && pre->n_fill == 0)
        return PST_OK;
    size_t n = (size_t)mf->n_inputs;
    if (pre->n_shift != n || pre->n_scale != n || pre->n_fill != n)
        return pst_err_set(err, PST_EFORMAT, "%s: preprocessing has %zu values for %zu inputs",
                           path, pre->n_shift, n);
    if (copy_floats(&mf->shift, pre->shift, n) || copy_floats(&mf->scale, pre->scale, n) ||
        copy_floats(&mf->fill, pre->fill, n))
        return PST_ENOMEM;
    return PST_OK;
}

static int read_strings(pst_modelfile_t *mf, const Pst__Model *m, const char *path, pst_err_t *err)
{
    if ((m->config_yaml[0] && !(mf->config_yaml = strdup(m->config_yaml))) ||
        (m->target_name[0] && !(mf->target_name = strdup(m->target_name))))
        return PST_ENOMEM;
    if (m->n_feature_names == 0)
        return PST_OK;
    if (m->n_feature_names != (size_t)mf->n_inputs)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu feature names for %d inputs", path,
                           m->n_feature_names, mf->n_inputs);
    mf->feature_names = calloc(m->n_feature_names, sizeof(char *));
    if (!mf->feature_names)
        return PST_ENOMEM;
    for (size_t i = 0; i < m->n_feature_names; i++)
        if (!(mf->feature_names[i] = strdup(m->feature_names[i])))
            return PST_ENOMEM;
    return PST_OK;
}

static int read_columns(pst_modelfile_t *mf, const Pst__Model *m, const char *path, pst_err_t *err)
{
    if (m->n_columns == 0)
        return PST_OK;
    if (m->n_columns > (size_t)mf->n_inputs)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu columns of %d inputs", path, m->n_columns,
                           mf->n_inputs);
    if (!(mf->columns = malloc(m->n_columns * sizeof *mf->columns)))
        return PST_ENOMEM;
    mf->n_columns = (int)m->n_columns;
    for (size_t i = 0; i < m->n_columns; i++) {
        if (m->columns[i] >= m->n_inputs)
            return pst_err_set(err, PST_EFORMAT, "%s: column %u of %u inputs", path, m->columns[i],
                               m->n_inputs);
        mf->columns[i] = m->columns[i];
    }
    return PST_OK;
}

/* The encoder and the text class labels of a CSV model. */
static int read_tabular(pst_modelfile_t *mf, const Pst__Model *m, const char *path, pst_err_t *err)
{
    if (m->n_class_names) {
        if (m->n_class_names != m->n_classes)
            return pst_err_set(err, PST_EFORMAT, "%s: %zu class names for %u classes", path,
                               m->n_class_names, m->n_classes);
        if (!(mf->class_names = calloc(m->n_class_names, sizeof(char *))))
            return PST_ENOMEM;
        for (size_t i = 0; i < m->n_class_names; i++)
            if (!(mf->class_names[i] = strdup(m->class_names[i])))
                return PST_ENOMEM;
    }
    if (m->encoder == NULL)
        return PST_OK;
    int rc = pst_encoder_from_proto(m->encoder, path, &mf->encoder, err);
    if (rc == PST_OK && mf->encoder->n_features != (size_t)mf->n_inputs)
        rc = pst_err_set(err, PST_EFORMAT, "%s: the encoder makes %zu features, the model takes %d",
                         path, mf->encoder->n_features, mf->n_inputs);
    return rc;
}

static int read_model(pst_modelfile_t *mf, const Pst__Model *m, const char *path, pst_err_t *err)
{
    if (m->magic != PST_MODELFILE_MAGIC)
        return pst_err_set(err, PST_EFORMAT, "%s: not a pstrain model file (bad magic)", path);
    if (m->version == PST_MODELFILE_VERSION_SPARSE)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: a sparse model file (model.type %s), not a dense model: pstrain "
                           "eval, predict and info read it, ensembles and stacks do not",
                           path, m->sparse ? m->sparse->type : "unknown");
    if (m->version != PST_MODELFILE_VERSION)
        return pst_err_set(err, PST_EFORMAT, "%s: model file version %u, this pstrain reads %u",
                           path, m->version, PST_MODELFILE_VERSION);
    if (m->n_inputs == 0 || m->n_inputs > (1u << 26))
        return pst_err_set(err, PST_EFORMAT, "%s: %u inputs", path, m->n_inputs);
    mf->n_inputs = (int)m->n_inputs;
    int rc = read_layers(mf, m, path, err);
    if (rc != PST_OK)
        return rc;
    if (pst_loss_kind_parse(m->loss, &mf->loss) != PST_OK)
        return pst_err_set(err, PST_EFORMAT, "%s: unknown loss '%s'", path, m->loss);
    mf->task = strcmp(m->task, "regression") == 0 ? PST_TASK_REGRESSION : PST_TASK_CLASSIFICATION;
    mf->n_classes = (int)m->n_classes;
    if (m->n_class_values) {
        if (m->n_class_values != m->n_classes)
            return pst_err_set(err, PST_EFORMAT, "%s: %zu class values for %u classes", path,
                               m->n_class_values, m->n_classes);
        mf->class_values = malloc(m->n_class_values * sizeof(double));
        if (!mf->class_values)
            return PST_ENOMEM;
        memcpy(mf->class_values, m->class_values, m->n_class_values * sizeof(double));
    }
    if ((rc = read_preprocess(mf, m->preprocess, path, err)) != PST_OK)
        return rc;
    if (m->quant && (m->params.len != 0 || m->pruned))
        return pst_err_set(err, PST_EFORMAT, "%s: %s beside int8 weights", path,
                           m->pruned ? "pruned tensors" : "a float parameter block");
    if (m->quant)
        rc = pst_quantfile_from_msg(m->quant, path, &mf->quant, &mf->params, &mf->n_params, err);
    else /* a pruned model's tensors expand: every bound is checked before anything is allocated */
        rc = pst_prunedfile_count(m, path, &mf->n_params, err);
    if (rc != PST_OK)
        return rc;
    /* pst_modelfile_width: the layers see the selected columns when the file names them. */
    int saved_inputs = mf->n_inputs;
    if (m->n_columns > 0 && m->n_columns <= m->n_inputs)
        mf->n_inputs = (int)m->n_columns;
    uint64_t need = layer_params(mf);
    mf->n_inputs = saved_inputs;
    if (need != UINT64_MAX && need != mf->n_params)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu parameters stored, its layers need %llu",
                           path, mf->n_params, (unsigned long long)need);
    if (!mf->quant && !(mf->params = malloc((mf->n_params ? mf->n_params : 1) * sizeof(float))))
        return PST_ENOMEM;
    if (!mf->quant)
        pst_prunedfile_expand(m, mf->params, mf->n_params);
    if (m->state.len % sizeof(float) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: state block of %zu bytes", path, m->state.len);
    mf->n_state = m->state.len / sizeof(float);
    if (mf->n_state > 0 && copy_floats(&mf->state, (const float *)m->state.data, mf->n_state))
        return PST_ENOMEM;
    if ((rc = read_strings(mf, m, path, err)) != PST_OK)
        return rc;
    if ((rc = read_tabular(mf, m, path, err)) != PST_OK)
        return rc;
    size_t n_named = mf->encoder ? mf->encoder->n_inputs : (size_t)mf->n_inputs;
    /* files before the packed form hold the plain one */
    if (m->drift_packed)
        rc = pst_drift_from_packed(m->drift_packed, n_named, path, &mf->drift, err);
    else if (m->drift)
        rc = pst_drift_from_proto(m->drift, n_named, path, &mf->drift, err);
    if (rc != PST_OK)
        return rc;
    return read_columns(mf, m, path, err);
}

int pst_modelfile_unpack(pst_modelfile_t *mf, const uint8_t *buf, size_t len, const char *origin,
                         pst_err_t *err)
{
    memset(mf, 0, sizeof *mf);
    Pst__Model *m = pst__model__unpack(NULL, len, buf);
    if (!m)
        return pst_err_set(err, PST_EFORMAT, "%s: not a pstrain model file (cannot decode)",
                           origin);
    int rc = read_model(mf, m, origin, err);
    pst__model__free_unpacked(m, NULL);
    if (rc == PST_ENOMEM)
        pst_err_set(err, rc, "%s: out of memory", origin);
    if (rc != PST_OK)
        pst_modelfile_fini(mf);
    return rc;
}

int pst_modelfile_load(pst_modelfile_t *mf, const char *path, pst_err_t *err)
{
    memset(mf, 0, sizeof *mf);
    unsigned char *buf;
    size_t len;
    int rc = pst_filesum_read(path, MODELFILE_MAX_BYTES, &buf, &len, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_modelfile_unpack(mf, buf, len, path, err);
    free(buf);
    return rc;
}

/* Index of the first tensor whose size differs between a and b, or -1. */
static int first_tensor_mismatch(const pst_model_t *a, const pst_model_t *b)
{
    for (int t = 0; t < pst_model_n_tensors(a); t++)
        if (pst_model_tensor(a, t)->size != pst_model_tensor(b, t)->size)
            return t;
    return -1;
}

int pst_modelfile_transfer(const pst_modelfile_t *mf, pst_model_t *model, bool *kept_output,
                           pst_err_t *err)
{
    int n = pst_model_n_layers(model);
    if (mf->n_layers != n)
        return pst_err_set(err, PST_EINVAL, "%d layers in the model file, %d here", mf->n_layers,
                           n);
    for (int i = 0; i < n; i++)
        if (mf->layers[i].kind != pst_model_layer(model, i)->kind)
            return pst_err_set(err, PST_EINVAL, "layer %d is %s in the model file, %s here", i,
                               pst_layer_kind_name(mf->layers[i].kind),
                               pst_layer_kind_name(pst_model_layer(model, i)->kind));
    pst_model_t *from = pst_modelfile_build(mf, 1, err);
    if (!from)
        return pst_err_code(err, PST_EINVAL);
    int t = first_tensor_mismatch(from, model), n_t = pst_model_n_tensors(model);
    int rc = PST_OK;
    if (pst_model_n_state(from) != pst_model_n_state(model)) {
        rc = pst_err_set(err, PST_EINVAL, "%zu batchnorm statistics in the model file, %zu here",
                         pst_model_n_state(from), pst_model_n_state(model));
    } else if (t >= 0 && t < n_t - 2) {
        rc = pst_err_set(err, PST_EINVAL,
                         "tensor %d holds %zu values in the model file, %zu here (only the output "
                         "layer may differ)",
                         t, pst_model_tensor(from, t)->size, pst_model_tensor(model, t)->size);
    } else {
        /* the output layer's W and b are the arena's last two tensors */
        size_t n_copy =
            t < 0 ? pst_model_n_params(model) : pst_model_tensor(model, n_t - 2)->offset;
        memcpy(pst_model_params(model), pst_model_params(from), n_copy * sizeof(float));
        if (pst_model_n_state(model) > 0)
            memcpy(pst_model_state(model), pst_model_state(from),
                   pst_model_n_state(model) * sizeof(float));
        *kept_output = t >= 0;
    }
    pst_model_destroy(&from);
    return rc;
}

pst_model_t *pst_modelfile_build(const pst_modelfile_t *mf, int max_batch, pst_err_t *err)
{
    pst_model_t *model =
        pst_model_new(pst_modelfile_width(mf), mf->layers, mf->n_layers, max_batch, err);
    if (!model)
        return NULL;
    if (pst_model_n_params(model) != mf->n_params) {
        pst_err_set(err, PST_EFORMAT, "model file holds %zu parameters, its layers need %zu",
                    mf->n_params, pst_model_n_params(model));
        pst_model_destroy(&model);
        return NULL;
    }
    if (pst_model_n_state(model) != mf->n_state) {
        pst_err_set(err, PST_EFORMAT,
                    "model file holds %zu running statistics, its batchnorm layers need %zu",
                    mf->n_state, pst_model_n_state(model));
        pst_model_destroy(&model);
        return NULL;
    }
    memcpy(pst_model_params(model), mf->params, mf->n_params * sizeof(float));
    if (mf->n_state > 0)
        memcpy(pst_model_state(model), mf->state, mf->n_state * sizeof(float));
    /* pruned layers: single rows skip the zeros (where that is faster, see model.h) */
    if (pst_model_use_sparse(model, PST_MODEL_SPARSE_DENSITY, PST_MODEL_SPARSE_ROWS, err) !=
            PST_OK ||
        (mf->quant && pst_model_attach_quant(model, mf->quant, err) != PST_OK))
        pst_model_destroy(&model);
    return model;
}

/* Narrows ds in place to mf's columns, in their order (names follow their columns). */
static int keep_columns(const pst_modelfile_t *mf, pst_dataset_t *ds, pst_err_t *err)
{
    size_t d = ds->n_features, w = (size_t)mf->n_columns;
    if (w == 0)
        return PST_OK;
    char **names = NULL;
    if (ds->feature_names && !(names = calloc(w, sizeof *names)))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    float *row = malloc(w * sizeof *row);
    if (!row) {
        free(names);
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ds->n_rows; i++) {
        for (size_t j = 0; j < w; j++)
            row[j] = ds->x[i * d + mf->columns[j]];
        memcpy(ds->x + i * w, row, w * sizeof *row);
    }
    free(row);
    for (size_t j = 0; names && j < w; j++) {
        names[j] = ds->feature_names[mf->columns[j]];
        ds->feature_names[mf->columns[j]] = NULL;
    }
    for (size_t j = 0; names && j < d; j++)
        free(ds->feature_names[j]);
    if (ds->feature_names) {
        free(ds->feature_names);
        ds->feature_names = names;
    }
    ds->n_features = w;
    return PST_OK;
}

int pst_modelfile_preprocess(const pst_modelfile_t *mf, pst_dataset_t *ds, pst_err_t *err)
{
    if (pst_dataset_is_sparse(ds))
        return pst_err_set(err, PST_EINVAL, "data must be dense before preprocessing");
    if (mf->encoder && ds->table) {
        pst_dataset_t *enc;
        int rc = pst_encoder_apply(mf->encoder, ds, &enc, err);
        if (rc != PST_OK)
            return rc;
        pst_dataset_swap(ds, enc);
        pst_dataset_destroy(&enc);
    }
    if (ds->n_features != (size_t)mf->n_inputs)
        return pst_err_set(err, PST_EINVAL, "data has %zu features, the model takes %d",
                           ds->n_features, mf->n_inputs);
    if (mf->shift) {
        /* A view of the file's statistics; the struct does not own these arrays. */
        pst_preproc_t view = {ds->n_features, mf->pixel_scale != 0 ? mf->pixel_scale : 1.0f,
                              mf->shift, mf->scale, mf->fill};
        int rc = pst_preproc_apply(&view, ds, err);
        if (rc != PST_OK)
            return rc;
    }
    int rc = pst_preproc_check_finite(ds, err);
    return rc == PST_OK ? keep_columns(mf, ds, err) : rc;
}

/* The sparse-file probe lives here, beside the dense reader, so that a program reading only
 * dense model files (libpstrain) can tell a sparse one apart without linking the sparse models. */
/* A varint at p[*at..len) into *v; false when it runs past len or 10 bytes. */
static bool read_varint(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && *at < len; shift += 7) {
        uint8_t byte = p[(*at)++];
        *v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

int pst_sparsefile_probe(const char *path, bool *is_sparse, pst_err_t *err)
{
    *is_sparse = false;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return pst_err_set(err, PST_EIO, "%s: cannot open", path);
    /* protobuf-c writes fields in number order: magic (field 1), then version (field 2) */
    uint8_t head[24];
    size_t len = fread(head, 1, sizeof head, f), at = 0;
    fclose(f);
    uint64_t magic = 0, version = 0;
    if (len > 0 && head[at++] == 0x08 && read_varint(head, len, &at, &magic) && at < len &&
        head[at++] == 0x10 && read_varint(head, len, &at, &version))
        *is_sparse = magic == PST_MODELFILE_MAGIC && version == PST_MODELFILE_VERSION_SPARSE;
    return PST_OK;
}
