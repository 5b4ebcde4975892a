/* libpstrain's raw cells to features: the caller's named columns matched to the model's inputs,
 * numbers checked and strings parsed, missing cells marked for imputation. */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/numparse.h"
#include "lib/lib_internal.h"

/* The markers the CSV reader takes for a missing cell, so that a row scores the same through
 * the library as through a file. */
static bool is_missing(const char *s, size_t len)
{
    static const char *markers[] = {"na", "nan", "n/a", "?"};
    if (len == 0)
        return true;
    for (size_t i = 0; i < sizeof markers / sizeof *markers; i++)
        if (len == strlen(markers[i]) && strncasecmp(s, markers[i], len) == 0)
            return true;
    return false;
}

static int string_cell(const char *name, size_t row, const char *text, float *value, pst_err_t *err)
{
    if (!text) {
        *value = NAN;
        return PST_OK;
    }
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)*text))
        text++, len--;
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (is_missing(text, len)) {
        *value = NAN;
        return PST_OK;
    }
    double v;
    int rc = pst_parse_float_field(text, len, &v);
    int shown = (int)(len > 64 ? 64 : len);
    if (rc == PST_EFORMAT)
        return pst_err_set(err, PSTRAIN_ETYPE, "column '%s', row %zu: non-numeric value '%.*s'",
                           name, row, shown, text);
    if (rc != PST_OK)
        return pst_err_set(err, PSTRAIN_ENUMERIC,
                           "column '%s', row %zu: value '%.*s' is not a finite float", name, row,
                           shown, text);
    *value = (float)v;
    return PST_OK;
}

static int number_cell(const char *name, size_t row, double v, float *value, pst_err_t *err)
{
    if (!isnan(v) && !(fabs(v) <= FLT_MAX))
        return pst_err_set(err, PSTRAIN_ENUMERIC,
                           "column '%s', row %zu: value %g is not a finite "
                           "float",
                           name, row, v);
    *value = (float)v;
    return PST_OK;
}

/* The caller's column named name, or NULL. */
static const pstrain_column *find_column(const pstrain_column *columns, int n_columns,
                                         const char *name)
{
    for (int c = 0; c < n_columns; c++)
        if (strcmp(columns[c].name, name) == 0)
            return &columns[c];
    return NULL;
}

/* The caller's columns are well formed: named once each, numbers or strings. */
static int check_columns(const pstrain_column *columns, int n_columns, pst_err_t *err)
{
    for (int c = 0; c < n_columns; c++) {
        if (!columns[c].name)
            return pst_err_set(err, PSTRAIN_EINVAL, "column %d has no name", c);
        if (!columns[c].numbers == !columns[c].strings)
            return pst_err_set(err, PSTRAIN_EINVAL,
                               "column '%s': give either numbers or strings, not %s",
                               columns[c].name, columns[c].numbers ? "both" : "neither");
        if (find_column(columns, c, columns[c].name))
            return pst_err_set(err, PSTRAIN_EINVAL, "column '%s' is given twice", columns[c].name);
    }
    return PST_OK;
}

/* Every input the model reads has a column: else one error naming all that are missing. */
static int check_present(const pstrain_model *m, const pstrain_column *columns, int n_columns,
                         pst_err_t *err)
{
    char list[400] = "";
    int n_missing = 0;
    for (int i = 0; i < m->n_inputs; i++) {
        const char *name = m->raw_names[m->inputs[i]];
        if (find_column(columns, n_columns, name))
            continue;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s'%s'", n_missing ? ", " : "", name);
        n_missing++;
    }
    if (n_missing == 0)
        return PST_OK;
    /* A list cut short says how many it names in all. */
    if (strlen(list) == sizeof list - 1)
        return pst_err_set(err, PSTRAIN_EMISSING, "%d missing input columns: %s...", n_missing,
                           list);
    return pst_err_set(err, PSTRAIN_EMISSING, "missing input column%s: %s",
                       n_missing > 1 ? "s" : "", list);
}

static int encode_column(const pstrain_model *m, int raw, const pstrain_column *col, size_t n_rows,
                         float *x, pst_err_t *err)
{
    size_t width = (size_t)m->width;
    for (size_t r = 0; r < n_rows; r++) {
        float *cell = x + r * width + (size_t)raw;
        int rc = col->numbers ? number_cell(col->name, r, col->numbers[r], cell, err)
                              : string_cell(col->name, r, col->strings[r], cell, err);
        if (rc != PST_OK)
            return rc;
        if (isnan(*cell) && !m->imputable[raw])
            return pst_err_set(err, PSTRAIN_ENUMERIC,
                               "column '%s', row %zu: missing value, and the model stores no "
                               "value to impute it with",
                               col->name, r);
    }
    return PST_OK;
}

/* A number for an encoded input: finite, and 0 or 1 for a boolean (NaN: missing). Categories
 * and dates take it as the encoder does (shortest decimal text; days since 1970-01-01). */
static int check_number(const pstrain_model *m, int raw, size_t row, double v, pst_err_t *err)
{
    const char *name = m->raw_names[raw];
    if (isnan(v))
        return PST_OK;
    if (!(fabs(v) <= FLT_MAX))
        return pst_err_set(err, PSTRAIN_ENUMERIC,
                           "column '%s', row %zu: value %g is not a finite float", name, row, v);
    if (m->types[raw] == PSTRAIN_BOOLEAN && v != 0 && v != 1)
        return pst_err_set(err, PSTRAIN_ETYPE,
                           "column '%s', row %zu: boolean column given %g (0 or 1 expected)", name,
                           row, v);
    return PST_OK;
}

/* Through the model's encoder, one row at a time, the cells in the encoder's input order: the
 * step pstrain predict takes for each CSV row, so the same text gives the same features. */
static int encode_with_encoder(const pstrain_model *m, const pstrain_column *columns, int n_columns,
                               size_t n_rows, float *x, pst_err_t *err)
{
    const pst_encoder_t *e = m->encoder;
    pst_enc_cell_t *cells = calloc(e->n_inputs ? e->n_inputs : 1, sizeof *cells);
    const pstrain_column **cols = calloc(e->n_inputs ? e->n_inputs : 1, sizeof *cols);
    int rc = cells && cols ? PST_OK : pst_err_set(err, PSTRAIN_ENOMEM, "out of memory");
    for (size_t j = 0; rc == PST_OK && j < e->n_inputs; j++)
        cols[j] = find_column(columns, n_columns, m->raw_names[j]);
    for (size_t r = 0; rc == PST_OK && r < n_rows; r++) {
        for (size_t j = 0; rc == PST_OK && j < e->n_inputs; j++) {
            const pstrain_column *c = cols[j];
            if (c->strings) {
                /* NULL text: the encoder reads the number, NaN, as a missing cell. */
                cells[j] = (pst_enc_cell_t){c->strings[r], NAN};
            } else {
                cells[j] = (pst_enc_cell_t){NULL, c->numbers[r]};
                rc = check_number(m, (int)j, r, c->numbers[r], err);
            }
        }
        float *f = x + r * (size_t)m->width;
        if (rc == PST_OK && (rc = pst_encoder_encode(e, cells, 1, f, err)) != PST_OK)
            rc = pst_err_prefix(err, PSTRAIN_ETYPE, "row %zu: ", r);
        for (size_t j = 0; rc == PST_OK && j < e->n_inputs; j++)
            if (!m->imputable[j] && isnan(f[e->inputs[j].offset]))
                rc = pst_err_set(err, PSTRAIN_ENUMERIC,
                                 "column '%s', row %zu: missing value, and the model stores no "
                                 "value to impute it with",
                                 m->raw_names[j], r);
    }
    free(cols);
    free(cells);
    return rc;
}

int pst_lib_encode_rows(const pstrain_model *m, const pstrain_column *columns, int n_columns,
                        size_t n_rows, float *x, pst_err_t *err)
{
    int rc = check_columns(columns, n_columns, err);
    if (rc == PST_OK)
        rc = check_present(m, columns, n_columns, err);
    memset(x, 0, n_rows * (size_t)m->width * sizeof *x);
    if (m->encoder)
        return rc == PST_OK ? encode_with_encoder(m, columns, n_columns, n_rows, x, err) : rc;
    for (int i = 0; i < m->n_inputs && rc == PST_OK; i++) {
        int raw = m->inputs[i];
        rc = encode_column(m, raw, find_column(columns, n_columns, m->raw_names[raw]), n_rows, x,
                           err);
    }
    return rc;
}
