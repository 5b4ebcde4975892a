/* Row reader for scoring: header matching by name, then record by record encoding. */
#include "common/data/rowreader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/cells.h"
#include "common/data/csvtok.h"

struct pst_rowreader {
    pst_rowreader_opts_t o;
    pst_csvtok_t *tok;
    char *path;
    size_t n_cols;
    size_t *input_col;       // (encoder n_inputs) file column of each input
    long target_col, id_col; /* -1: none */
    pst_enc_cell_t *cells;   // (encoder n_inputs)
    char *ignored;           /* listing of the ignored columns, or NULL */
};

void pst_rowreader_destroy(pst_rowreader_t **self_p)
{
    pst_rowreader_t *r = self_p ? *self_p : NULL;
    if (r == NULL)
        return;
    pst_csvtok_destroy(&r->tok);
    free(r->path);
    free(r->input_col);
    free(r->cells);
    free(r->ignored);
    free(r);
    *self_p = NULL;
}

const char *pst_rowreader_ignored(const pst_rowreader_t *r)
{
    return r->ignored;
}

bool pst_rowreader_has_target(const pst_rowreader_t *r)
{
    return r->target_col >= 0;
}

static long column_of(const pst_csv_record_t *h, const char *name)
{
    for (size_t j = 0; name && name[0] && j < h->n_fields; j++)
        if (strcmp(h->fields[j], name) == 0)
            return (long)j;
    return -1;
}

/* Appends s to the growing list *buf ("a, b"), false when out of memory. */
static bool append_name(char **buf, const char *s)
{
    size_t used = *buf ? strlen(*buf) : 0, add = strlen(s) + 2;
    char *grown = realloc(*buf, used + add + 1);
    if (grown == NULL)
        return false;
    memcpy(grown + used, used ? ", " : "", used ? 2 : 0);
    memcpy(grown + used + (used ? 2 : 0), s, strlen(s) + 1);
    *buf = grown;
    return true;
}

/* Maps inputs, target and id to file columns; lists the missing inputs in one error. */
static int match_header(pst_rowreader_t *r, const pst_csv_record_t *h, pst_err_t *err)
{
    const pst_encoder_t *e = r->o.encoder;
    char *missing = NULL;
    size_t n_missing = 0;
    bool ok = true;
    for (size_t j = 0; j < h->n_fields; j++)
        if (column_of(h, h->fields[j]) != (long)j)
            return pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s' appears twice in the header",
                               r->path, h->line, h->fields[j]);
    for (size_t i = 0; i < e->n_inputs; i++) {
        long at = column_of(h, e->inputs[i].name);
        if (at < 0) {
            n_missing++;
            ok = ok && append_name(&missing, e->inputs[i].name);
        }
        r->input_col[i] = (size_t)at;
    }
    int rc = PST_OK;
    if (!ok)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", r->path);
    else if (n_missing)
        rc = pst_err_set(err, PST_ENOTFOUND, "%s:%zu: %zu column%s of the model %s missing: %s",
                         r->path, h->line, n_missing, n_missing > 1 ? "s" : "",
                         n_missing > 1 ? "are" : "is", missing);
    free(missing);
    if (rc != PST_OK)
        return rc;
    r->target_col = column_of(h, r->o.target);
    r->id_col = column_of(h, r->o.id_column);
    if (r->o.need_target && r->target_col < 0)
        return pst_err_set(err, PST_ENOTFOUND, "%s:%zu: no target column '%s' (eval needs labels)",
                           r->path, h->line, r->o.target ? r->o.target : "");
    if (r->o.id_column && r->o.id_column[0] && r->id_col < 0)
        return pst_err_set(err, PST_ENOTFOUND, "%s:%zu: no id column '%s'", r->path, h->line,
                           r->o.id_column);
    for (size_t j = 0; j < h->n_fields; j++) {
        bool used = (long)j == r->target_col || (long)j == r->id_col ||
                    pst_encoder_find_input(e, h->fields[j]) >= 0;
        if (!used && !append_name(&r->ignored, h->fields[j]))
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", r->path);
    }
    return PST_OK;
}

pst_rowreader_t *pst_rowreader_open(const char *path, const pst_rowreader_opts_t *opts,
                                    pst_err_t *err)
{
    pst_rowreader_t *r = calloc(1, sizeof *r);
    size_t n = opts->encoder->n_inputs;
    if (r == NULL || !(r->path = strdup(path)) || !(r->input_col = calloc(n, sizeof(size_t))) ||
        !(r->cells = calloc(n, sizeof *r->cells))) {
        pst_rowreader_destroy(&r);
        pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    r->o = *opts;
    const pst_csv_record_t *h;
    int got = (r->tok = pst_csvtok_open(path, err)) ? pst_csvtok_next(r->tok, &h, err) : PST_EIO;
    int rc = got == 1   ? PST_OK
             : got == 0 ? pst_err_set(err, PST_EFORMAT, "%s: empty file (no header row)", path)
                        : got;
    if (rc == PST_OK) {
        r->n_cols = h->n_fields;
        rc = match_header(r, h, err);
    }
    if (rc != PST_OK)
        pst_rowreader_destroy(&r);
    return r;
}

/* The class index or target value of a label cell. */
static int read_label(const pst_rowreader_t *r, const pst_csv_record_t *rec, float *y,
                      pst_err_t *err)
{
    const char *s = rec->fields[r->target_col];
    size_t len = rec->lens[r->target_col];
    double v = NAN;
    bool finite = false;
    if (pst_cell_is_missing(s, len))
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s': missing target value", r->path,
                           rec->line, r->o.target);
    for (int k = 0; r->o.class_names && k < r->o.n_classes; k++)
        if (strcmp(r->o.class_names[k], s) == 0) {
            *y = (float)k;
            return PST_OK;
        }
    if (!r->o.class_names && pst_cell_number(s, len, &v, &finite) && finite) {
        if (r->o.task == PST_TASK_REGRESSION) {
            *y = (float)v;
            return PST_OK;
        }
        for (int k = 0; k < r->o.n_classes; k++)
            if (r->o.class_values ? r->o.class_values[k] == v : k == v) {
                *y = (float)k;
                return PST_OK;
            }
    }
    return pst_err_set(err, PST_ERANGE,
                       "%s:%zu: label '%.64s' is not one of the %d classes of "
                       "the model",
                       r->path, rec->line, s, r->o.n_classes);
}

int pst_rowreader_next(pst_rowreader_t *r, size_t max_rows, float *x, float *y, char **ids,
                       size_t *n_rows, pst_err_t *err)
{
    const pst_encoder_t *e = r->o.encoder;
    *n_rows = 0;
    while (*n_rows < max_rows) {
        const pst_csv_record_t *rec;
        int got = pst_csvtok_next(r->tok, &rec, err);
        if (got <= 0)
            return got;
        size_t i = *n_rows;
        if (rec->n_fields != r->n_cols)
            return pst_err_set(err, PST_EFORMAT,
                               "%s:%zu: ragged row: %zu fields, the header has "
                               "%zu",
                               r->path, rec->line, rec->n_fields, r->n_cols);
        for (size_t k = 0; k < e->n_inputs; k++)
            r->cells[k] = (pst_enc_cell_t){rec->fields[r->input_col[k]], 0};
        int rc = pst_encoder_encode(e, r->cells, 1, x + i * e->n_features, err);
        if (rc != PST_OK)
            return pst_err_prefix(err, rc, "%s:%zu: ", r->path, rec->line);
        if (r->target_col >= 0 && (rc = read_label(r, rec, &y[i], err)) != PST_OK)
            return rc;
        if (r->id_col >= 0 && ids && !(ids[i] = strdup(rec->fields[r->id_col])))
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", r->path);
        (*n_rows)++;
    }
    return PST_OK;
}
