/* Encoder: layout, lookups, feature names and the encoding of raw cells (text or numbers). */
#include "common/data/encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/hashing.h"

pst_encoder_t *pst_encoder_new(size_t n_inputs)
{
    pst_encoder_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->n_inputs = n_inputs;
    if ((e->inputs = calloc(n_inputs ? n_inputs : 1, sizeof *e->inputs)) == NULL) {
        free(e);
        return NULL;
    }
    for (size_t j = 0; j < n_inputs; j++) {
        e->inputs[j].clip_lo = -INFINITY;
        e->inputs[j].clip_hi = INFINITY;
    }
    return e;
}

void pst_encoder_destroy(pst_encoder_t **self_p)
{
    pst_encoder_t *e = self_p ? *self_p : NULL;
    if (e == NULL)
        return;
    for (size_t j = 0; j < e->n_inputs; j++) {
        free(e->inputs[j].name);
        for (size_t k = 0; k < e->inputs[j].n_vocab; k++)
            free(e->inputs[j].vocab[k]);
        free(e->inputs[j].vocab);
    }
    free(e->inputs);
    free(e);
    *self_p = NULL;
}

pst_encoder_t *pst_encoder_clone(const pst_encoder_t *e)
{
    pst_encoder_t *c = pst_encoder_new(e->n_inputs);
    bool ok = c != NULL;
    for (size_t j = 0; ok && j < e->n_inputs; j++) {
        const pst_enc_input_t *a = &e->inputs[j];
        pst_enc_input_t *b = &c->inputs[j];
        *b = *a;
        b->vocab = NULL;
        b->n_vocab = 0;
        ok = (b->name = strdup(a->name)) != NULL &&
             (b->vocab = calloc(a->n_vocab ? a->n_vocab : 1, sizeof *b->vocab)) != NULL;
        for (size_t k = 0; ok && k < a->n_vocab; k++, b->n_vocab++)
            ok = (b->vocab[k] = strdup(a->vocab[k])) != NULL;
    }
    if (c) {
        c->n_features = e->n_features;
        c->hash_seed = e->hash_seed;
    }
    if (!ok)
        pst_encoder_destroy(&c);
    return c;
}

void pst_encoder_layout(pst_encoder_t *e)
{
    size_t at = 0;
    for (size_t j = 0; j < e->n_inputs; j++) {
        pst_enc_input_t *in = &e->inputs[j];
        switch (in->kind) {
        case PST_ENC_DATE:
            in->width = PST_DATE_PARTS;
            break;
        case PST_ENC_ONEHOT:
            in->width = in->n_vocab + 1;
            break;
        case PST_ENC_HASH:
            in->width = in->n_slots;
            break;
        default:
            in->width = 1;
            break;
        }
        in->offset = at;
        at += in->width;
    }
    e->n_features = at;
}

long pst_encoder_find_input(const pst_encoder_t *e, const char *name)
{
    for (size_t j = 0; j < e->n_inputs; j++)
        if (strcmp(e->inputs[j].name, name) == 0)
            return (long)j;
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

long pst_encoder_vocab_index(const pst_enc_input_t *in, const char *text)
{
    char *const *hit = bsearch(&text, in->vocab, in->n_vocab, sizeof *in->vocab, cmp_str);
    return hit ? (long)(hit - in->vocab) : -1;
}

size_t pst_encoder_hash_slot(const pst_encoder_t *e, const pst_enc_input_t *in, const char *text,
                             size_t len)
{
    return in->n_slots ? (size_t)(pst_hash64(e->hash_seed, text, len) % in->n_slots) : 0;
}

void pst_encoder_feature_name(const pst_encoder_t *e, size_t f, char *buf, size_t cap)
{
    snprintf(buf, cap, "feature_%zu", f);
    for (size_t j = 0; j < e->n_inputs; j++) {
        const pst_enc_input_t *in = &e->inputs[j];
        if (f < in->offset || f >= in->offset + in->width)
            continue;
        size_t k = f - in->offset;
        if (in->kind == PST_ENC_DATE)
            snprintf(buf, cap, "%s%s", in->name, pst_date_part_names[k]);
        else if (in->kind == PST_ENC_ONEHOT && k < in->n_vocab)
            snprintf(buf, cap, "%s=%s", in->name, in->vocab[k][0] ? in->vocab[k] : "<missing>");
        else if (in->kind == PST_ENC_ONEHOT)
            snprintf(buf, cap, "%s=<other>", in->name);
        else if (in->kind == PST_ENC_HASH)
            snprintf(buf, cap, "%s#%zu", in->name, k);
        else
            snprintf(buf, cap, "%s", in->name);
        return;
    }
}

/* A category's text for a cell: itself, "" when missing, or a number's shortest decimal. */
static const char *category_text(const pst_enc_cell_t *cell, char *buf, size_t cap)
{
    if (cell->text != NULL)
        return pst_cell_is_missing(cell->text, strlen(cell->text)) ? "" : cell->text;
    if (isnan(cell->number))
        return "";
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, cell->number);
        if (strtod(buf, NULL) == cell->number)
            break;
    }
    return buf;
}

static void encode_category(const pst_encoder_t *e, const pst_enc_input_t *in,
                            const pst_enc_cell_t *cell, float *f)
{
    char buf[40];
    const char *text = category_text(cell, buf, sizeof buf);
    memset(f, 0, in->width * sizeof *f);
    if (in->kind == PST_ENC_HASH) {
        f[pst_encoder_hash_slot(e, in, text, strlen(text))] = 1.0f;
        return;
    }
    long k = pst_encoder_vocab_index(in, text);
    if (in->kind == PST_ENC_ORDINAL)
        f[0] = (float)(k + 1);
    else
        f[k >= 0 ? (size_t)k : in->n_vocab] = 1.0f;
}

/* The number a VALUE or DATE cell holds (NaN when missing); false when text is not one. */
static bool cell_number(const pst_enc_input_t *in, const pst_enc_cell_t *cell, double *v)
{
    if (cell->text == NULL) {
        *v = cell->number;
        return true;
    }
    size_t len = strlen(cell->text);
    bool finite = true;
    long days;
    if (pst_cell_is_missing(cell->text, len)) {
        *v = NAN;
        return true;
    }
    if (in->type == PST_COL_DATE) {
        if (!pst_cell_date(cell->text, len, &days))
            return false;
        *v = (double)days;
        return true;
    }
    if (in->type == PST_COL_BOOLEAN && pst_cell_boolean(cell->text, len, v))
        return true;
    return pst_cell_number(cell->text, len, v, &finite) && finite &&
           (in->type != PST_COL_BOOLEAN || *v == 0 || *v == 1);
}

int pst_encoder_encode(const pst_encoder_t *e, const pst_enc_cell_t *cells, size_t n_rows,
                       float *out, pst_err_t *err)
{
    for (size_t i = 0; i < n_rows; i++) {
        const pst_enc_cell_t *row = cells + i * e->n_inputs;
        float *f = out + i * e->n_features;
        for (size_t j = 0; j < e->n_inputs; j++) {
            const pst_enc_input_t *in = &e->inputs[j];
            if (in->kind == PST_ENC_ONEHOT || in->kind == PST_ENC_HASH ||
                in->kind == PST_ENC_ORDINAL) {
                encode_category(e, in, &row[j], f + in->offset);
                continue;
            }
            double v;
            if (!cell_number(in, &row[j], &v)) {
                char where[32] = "";
                if (n_rows > 1)
                    snprintf(where, sizeof where, "row %zu: ", i + 1);
                return pst_err_set(err, PST_EFORMAT, "%scolumn '%s': '%.64s' is not %s", where,
                                   in->name, row[j].text,
                                   in->type == PST_COL_DATE      ? "a date"
                                   : in->type == PST_COL_BOOLEAN ? "a boolean"
                                                                 : "a finite number");
            }
            if (in->kind == PST_ENC_DATE) {
                pst_date_expand(v, f + in->offset);
            } else {
                float x = (float)v;
                f[in->offset] = x < in->clip_lo ? in->clip_lo : x > in->clip_hi ? in->clip_hi : x;
            }
        }
    }
    return PST_OK;
}
