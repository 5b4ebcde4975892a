/* libpstrain's model handle: loading a model or ensemble file and describing its inputs and
 * outputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib_internal.h"
#include "worker/model/sparsefile.h"

int pst_lib_report(const pst_err_t *in, int code, pstrain_error *out)
{
    if (out) {
        out->code = code;
        snprintf(out->message, sizeof out->message, "%s",
                 in && in->msg[0] ? in->msg : pst_strerror(code));
    }
    return code;
}

static void free_names(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void pstrain_model_free(pstrain_model *m)
{
    if (!m)
        return;
    free_names(m->raw_names, m->n_raw);
    free_names(m->class_names, m->ref ? m->ref->n_classes : 0);
    free(m->imputable);
    free(m->types);
    free(m->inputs);
    pst_modelfile_fini(&m->mf);
    pst_ensemble_fini(&m->ens);
    free(m);
}

static char *format_name(const char *fmt, double value)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, value);
    return strdup(buf);
}

/* Marks the raw columns one model reads, and those it cannot impute. */
static void mark_reads(const pst_modelfile_t *mf, bool *read, bool *imputable)
{
    bool fills = mf->shift && mf->fill;
    for (int j = 0; j < (mf->n_columns > 0 ? mf->n_columns : mf->n_inputs); j++) {
        size_t c = mf->n_columns > 0 ? mf->columns[j] : (size_t)j;
        read[c] = true;
        imputable[c] = imputable[c] && fills;
    }
}

/* A CSV model's raw columns are its encoder's inputs, all of them read. Numbers, booleans and
 * dates can be missing only where the model stores fills; a missing category is a category. */
static int describe_encoded(pstrain_model *m, bool *read)
{
    const pst_encoder_t *e = m->encoder;
    bool fills = m->ensemble ? true : m->mf.shift && m->mf.fill;
    for (int k = 0; m->ensemble && k < m->ens.n_members; k++)
        fills = fills && m->ens.members[k].shift && m->ens.members[k].fill;
    for (int i = 0; i < m->n_raw; i++) {
        const pst_enc_input_t *in = &e->inputs[i];
        bool category =
            in->kind == PST_ENC_ONEHOT || in->kind == PST_ENC_HASH || in->kind == PST_ENC_ORDINAL;
        read[i] = true;
        m->imputable[i] = category || fills;
        m->types[i] = category                      ? PSTRAIN_CATEGORICAL
                      : in->type == PST_COL_BOOLEAN ? PSTRAIN_BOOLEAN
                      : in->type == PST_COL_DATE    ? PSTRAIN_DATE
                                                    : PSTRAIN_NUMERIC;
        if (!(m->raw_names[i] = strdup(in->name)))
            return PST_ENOMEM;
    }
    return PST_OK;
}

/* A model reading its features directly: the file's names, or x0, x1, ... */
static int describe_plain(pstrain_model *m, bool *read)
{
    const pst_modelfile_t *ref = m->ref;
    for (int i = 0; i < m->n_raw; i++) {
        m->imputable[i] = true;
        m->types[i] = PSTRAIN_NUMERIC;
        m->raw_names[i] =
            ref->feature_names ? strdup(ref->feature_names[i]) : format_name("x%.0f", (double)i);
        if (!m->raw_names[i])
            return PST_ENOMEM;
    }
    for (int k = 0; m->ensemble && k < m->ens.n_members; k++)
        mark_reads(&m->ens.members[k], read, m->imputable);
    if (!m->ensemble)
        mark_reads(&m->mf, read, m->imputable);
    return PST_OK;
}

/* Class k's label as pstrain predict writes it: the text label, the data's own value, or the
 * class index. */
static char *class_name(const pst_modelfile_t *ref, int k)
{
    if (ref->class_names)
        return strdup(ref->class_names[k]);
    return ref->class_values ? format_name("%.17g", ref->class_values[k])
                             : format_name("%.0f", (double)k);
}

static int describe(pstrain_model *m, pst_err_t *err)
{
    const pst_modelfile_t *ref = m->ref;
    m->width = ref->n_inputs;
    m->n_raw = m->encoder ? (int)m->encoder->n_inputs : ref->n_inputs;
    size_t n = (size_t)(m->n_raw > 0 ? m->n_raw : 1);
    bool *read = calloc(n, sizeof *read);
    m->raw_names = calloc(n, sizeof *m->raw_names);
    m->imputable = malloc(n * sizeof *m->imputable);
    m->types = malloc(n * sizeof *m->types);
    m->inputs = malloc(n * sizeof *m->inputs);
    int rc = read && m->raw_names && m->imputable && m->types && m->inputs ? PST_OK : PST_ENOMEM;
    if (rc == PST_OK)
        rc = m->encoder ? describe_encoded(m, read) : describe_plain(m, read);
    for (int i = 0; rc == PST_OK && i < m->n_raw; i++)
        if (read[i])
            m->inputs[m->n_inputs++] = i;
    bool classify = ref->task == PST_TASK_CLASSIFICATION;
    if (rc == PST_OK && classify && ref->n_classes > 0) {
        rc =
            (m->class_names = calloc((size_t)ref->n_classes, sizeof(char *))) ? PST_OK : PST_ENOMEM;
        for (int k = 0; rc == PST_OK && k < ref->n_classes; k++)
            rc = (m->class_names[k] = class_name(ref, k)) ? PST_OK : PST_ENOMEM;
    }
    m->n_outputs = classify ? ref->n_classes : 1;
    free(read);
    return rc == PST_OK ? PST_OK : pst_err_set(err, rc, "out of memory describing the model");
}

static bool same_input(const pst_enc_input_t *a, const pst_enc_input_t *b)
{
    if (strcmp(a->name, b->name) != 0 || a->type != b->type || a->kind != b->kind ||
        a->offset != b->offset || a->width != b->width || a->n_vocab != b->n_vocab ||
        a->n_slots != b->n_slots || memcmp(&a->clip_lo, &b->clip_lo, sizeof a->clip_lo) != 0 ||
        memcmp(&a->clip_hi, &b->clip_hi, sizeof a->clip_hi) != 0)
        return false;
    for (size_t k = 0; k < a->n_vocab; k++)
        if (strcmp(a->vocab[k], b->vocab[k]) != 0)
            return false;
    return true;
}

static bool same_encoder(const pst_encoder_t *a, const pst_encoder_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->n_inputs != b->n_inputs || a->n_features != b->n_features ||
        a->hash_seed != b->hash_seed)
        return false;
    for (size_t j = 0; j < a->n_inputs; j++)
        if (!same_input(&a->inputs[j], &b->inputs[j]))
            return false;
    return true;
}

/* The members of an ensemble trained on one CSV file share one encoder (fitted once on the
 * training rows): the raw cells are encoded once with it, and each member then applies its own
 * preprocessing and columns. Members with differing encoders are not scored. */
static int ensemble_encoder(pstrain_model *m, const char *path, pst_err_t *err)
{
    const pst_encoder_t *first = m->ens.members[0].encoder;
    for (int k = 1; k < m->ens.n_members; k++)
        if (!same_encoder(first, m->ens.members[k].encoder))
            return pst_err_set(err, PSTRAIN_EUNSUPPORTED,
                               "%s: members 1 and %d of the ensemble encode their input columns "
                               "differently; libpstrain scores ensembles whose members share one "
                               "encoding",
                               path, k + 1);
    m->encoder = first;
    return PST_OK;
}

static int load_file(pstrain_model *m, const char *path, pst_err_t *err)
{
    bool sparse = false;
    int rc = pst_sparsefile_probe(path, &sparse, err);
    if (rc == PST_OK && sparse)
        return pst_err_set(err, PSTRAIN_EUNSUPPORTED,
                           "%s: a sparse model (model.type sparse_lr, fm or wide_deep); libpstrain "
                           "scores dense models and their ensembles only",
                           path);
    if (rc == PST_OK)
        rc = pst_ensemble_probe(path, &m->ensemble, err);
    if (rc == PST_OK)
        rc = m->ensemble ? pst_ensemble_load(&m->ens, path, err)
                         : pst_modelfile_load(&m->mf, path, err);
    if (rc == PST_OK && m->ensemble)
        rc = ensemble_encoder(m, path, err);
    if (rc != PST_OK)
        return rc;
    m->ref = m->ensemble ? &m->ens.members[0] : &m->mf;
    if (!m->ensemble)
        m->encoder = m->mf.encoder;
    return describe(m, err);
}

int pstrain_model_load(const char *path, pstrain_model **out, pstrain_error *err)
{
    pst_err_t e = {0};
    if (!path || !out)
        return pst_lib_report(NULL, PSTRAIN_EINVAL, err);
    *out = NULL;
    pstrain_model *m = calloc(1, sizeof *m);
    if (!m)
        return pst_lib_report(NULL, PSTRAIN_ENOMEM, err);
    int rc = load_file(m, path, &e);
    if (rc != PST_OK) {
        pstrain_model_free(m);
        return pst_lib_report(&e, rc, err);
    }
    *out = m;
    if (err)
        memset(err, 0, sizeof *err);
    return PSTRAIN_OK;
}

int pstrain_model_n_inputs(const pstrain_model *m)
{
    return m ? m->n_inputs : 0;
}

const char *pstrain_model_input_name(const pstrain_model *m, int i)
{
    return m && i >= 0 && i < m->n_inputs ? m->raw_names[m->inputs[i]] : NULL;
}

pstrain_input_type pstrain_model_input_type(const pstrain_model *m, int i)
{
    return m && i >= 0 && i < m->n_inputs ? m->types[m->inputs[i]] : PSTRAIN_NUMERIC;
}

pstrain_task pstrain_model_task(const pstrain_model *m)
{
    return m && m->ref->task == PST_TASK_REGRESSION ? PSTRAIN_REGRESSION : PSTRAIN_CLASSIFICATION;
}

int pstrain_model_n_classes(const pstrain_model *m)
{
    return m && m->class_names ? m->ref->n_classes : 0;
}

const char *pstrain_model_class_name(const pstrain_model *m, int k)
{
    return m && m->class_names && k >= 0 && k < m->ref->n_classes ? m->class_names[k] : NULL;
}

int pstrain_model_n_outputs(const pstrain_model *m)
{
    return m ? m->n_outputs : 0;
}

const char *pstrain_strerror(int code)
{
    switch (code) {
    case PSTRAIN_EMISSING:
        return "an input column is missing";
    case PSTRAIN_ETYPE:
        return "a cell has the wrong type";
    case PSTRAIN_EUNSUPPORTED:
        return "model kind not supported by libpstrain";
    default:
        return pst_strerror(code);
    }
}
