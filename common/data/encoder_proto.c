/* Encoder <-> pst.Encoder: names for kinds and types, and a full check of what a file holds. */
#include "common/data/encoder_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_names[] = {"value", "date", "onehot", "hash", "ordinal"};

int pst_encoder_to_proto(const pst_encoder_t *e, Pst__Encoder *msg, pst_err_t *err)
{
    Pst__EncoderInput **ins = calloc(e->n_inputs ? e->n_inputs : 1, sizeof *ins);
    if (ins == NULL)
        return pst_err_set(err, PST_ENOMEM, "encoder: out of memory");
    msg->inputs = ins;
    msg->n_inputs = e->n_inputs;
    msg->hash_seed = e->hash_seed;
    msg->n_features = (uint32_t)e->n_features;
    for (size_t j = 0; j < e->n_inputs; j++) {
        const pst_enc_input_t *in = &e->inputs[j];
        if ((ins[j] = malloc(sizeof *ins[j])) == NULL) {
            msg->n_inputs = j;
            pst_encoder_proto_free(msg);
            return pst_err_set(err, PST_ENOMEM, "encoder: out of memory");
        }
        pst__encoder_input__init(ins[j]);
        ins[j]->name = in->name;
        ins[j]->type = (char *)pst_col_type_name(in->type);
        ins[j]->kind = (char *)kind_names[in->kind];
        ins[j]->vocab = in->vocab;
        ins[j]->n_vocab = in->n_vocab;
        ins[j]->n_slots = (uint32_t)in->n_slots;
        ins[j]->clip = isfinite(in->clip_lo) || isfinite(in->clip_hi);
        ins[j]->clip_lo = in->clip_lo;
        ins[j]->clip_hi = in->clip_hi;
    }
    return PST_OK;
}

void pst_encoder_proto_free(Pst__Encoder *msg)
{
    for (size_t j = 0; msg->inputs && j < msg->n_inputs; j++)
        free(msg->inputs[j]);
    free(msg->inputs);
    msg->inputs = NULL;
    msg->n_inputs = 0;
}

static int lookup(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* Checks one input message and copies it into in. */
static int read_input(const Pst__EncoderInput *m, pst_enc_input_t *in, const char *origin,
                      pst_err_t *err)
{
    static const char *type_names[] = {"numeric", "categorical", "boolean", "date"};
    int type = lookup(type_names, 4, m->type), kind = lookup(kind_names, 5, m->kind);
    if (type < 0 || kind < 0)
        return pst_err_set(err, PST_EFORMAT, "%s: input '%s' has type '%s' and kind '%s'", origin,
                           m->name, m->type, m->kind);
    bool categorical = type == PST_COL_CATEGORICAL;
    bool fits = categorical ? kind >= PST_ENC_ONEHOT
                            : kind == (type == PST_COL_DATE ? PST_ENC_DATE : PST_ENC_VALUE);
    if (!fits || (kind == PST_ENC_HASH && (m->n_slots == 0 || m->n_slots > (1u << 24))) ||
        m->n_vocab > (1u << 24))
        return pst_err_set(err, PST_EFORMAT, "%s: input '%s': kind %s does not fit type %s", origin,
                           m->name, m->kind, m->type);
    for (size_t k = 1; k < m->n_vocab; k++)
        if (strcmp(m->vocab[k - 1], m->vocab[k]) >= 0)
            return pst_err_set(err, PST_EFORMAT, "%s: input '%s': vocabulary not sorted", origin,
                               m->name);
    in->type = (pst_col_type_t)type;
    in->kind = (pst_enc_kind_t)kind;
    in->n_slots = m->n_slots;
    if (m->clip) {
        in->clip_lo = m->clip_lo;
        in->clip_hi = m->clip_hi;
    }
    if (!(in->name = strdup(m->name)) || !(in->vocab = calloc(m->n_vocab + 1, sizeof(char *))))
        return PST_ENOMEM;
    for (; in->n_vocab < m->n_vocab; in->n_vocab++)
        if (!(in->vocab[in->n_vocab] = strdup(m->vocab[in->n_vocab])))
            return PST_ENOMEM;
    return PST_OK;
}

int pst_encoder_from_proto(const Pst__Encoder *msg, const char *origin, pst_encoder_t **out,
                           pst_err_t *err)
{
    *out = NULL;
    if (msg->n_inputs == 0 || msg->n_inputs > (1u << 20))
        return pst_err_set(err, PST_EFORMAT, "%s: encoder with %zu inputs", origin, msg->n_inputs);
    pst_encoder_t *e = pst_encoder_new(msg->n_inputs);
    int rc = e ? PST_OK : PST_ENOMEM;
    for (size_t j = 0; rc == PST_OK && j < msg->n_inputs; j++)
        rc = read_input(msg->inputs[j], &e->inputs[j], origin, err);
    for (size_t j = 0; rc == PST_OK && j < msg->n_inputs; j++)
        if (pst_encoder_find_input(e, e->inputs[j].name) != (long)j)
            rc = pst_err_set(err, PST_EFORMAT, "%s: input '%s' appears twice", origin,
                             e->inputs[j].name);
    if (rc == PST_OK) {
        e->hash_seed = msg->hash_seed;
        pst_encoder_layout(e);
        if (e->n_features != msg->n_features)
            rc = pst_err_set(err, PST_EFORMAT, "%s: encoder inputs make %zu features, not %u",
                             origin, e->n_features, msg->n_features);
    }
    if (rc == PST_ENOMEM)
        pst_err_set(err, rc, "%s: out of memory", origin);
    if (rc != PST_OK)
        pst_encoder_destroy(&e);
    *out = e;
    return rc;
}
