/* Typed tables: the shared schema, and each column's type and values from its distinct cells. */
#include "common/data/table_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pst_table_t *pst_table_ref(pst_table_t *t)
{
    t->refs++;
    return t;
}

void pst_table_unref(pst_table_t **self_p)
{
    pst_table_t *t = self_p ? *self_p : NULL;
    if (t == NULL)
        return;
    *self_p = NULL;
    if (--t->refs > 0)
        return;
    for (size_t j = 0; j < t->n_cols; j++) {
        free(t->cols[j].name);
        for (size_t k = 0; k < t->cols[j].n_vocab; k++)
            free(t->cols[j].vocab[k]);
        free(t->cols[j].vocab);
    }
    free(t->cols);
    free(t);
}

pst_table_t *pst_table_new(size_t n_cols)
{
    pst_table_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->refs = 1;
    t->n_cols = n_cols;
    if ((t->cols = calloc(n_cols ? n_cols : 1, sizeof *t->cols)) == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

pst_col_type_t pst_table_detect(const pst_strtab_t *cells)
{
    bool number = true, boolean = true, date = true, any = false;
    for (size_t c = 0; c < cells->n; c++) {
        const char *s = cells->strs[c];
        size_t len = cells->lens[c];
        if (pst_cell_is_missing(s, len))
            continue;
        any = true;
        double v;
        bool finite;
        long days;
        number = number && pst_cell_number(s, len, &v, &finite);
        boolean = boolean && pst_cell_boolean(s, len, &v);
        date = date && pst_cell_date(s, len, &days);
        if (!number && !boolean && !date)
            return PST_COL_CATEGORICAL;
    }
    if (!any || number)
        return PST_COL_NUMERIC;
    return boolean ? PST_COL_BOOLEAN : date ? PST_COL_DATE : PST_COL_CATEGORICAL;
}

/* Line of the first row whose cell has code c. */
static size_t line_of(const pst_table_cells_t *in, uint32_t c)
{
    for (size_t i = 0; i < in->n_rows; i++)
        if (in->codes[i * in->stride] == c)
            return in->lines[i];
    return 0;
}

/* Value of distinct cell c of a numeric, boolean or date column. */
static int typed_value(const pst_table_col_t *col, const pst_table_cells_t *in, uint32_t c,
                       double *value, pst_err_t *err)
{
    const char *s = in->cells->strs[c];
    size_t len = in->cells->lens[c];
    int shown = (int)(len > 64 ? 64 : len);
    if (pst_cell_is_missing(s, len)) {
        *value = NAN;
        return PST_OK;
    }
    bool finite = true, ok;
    long days = 0;
    if (col->type == PST_COL_NUMERIC)
        ok = pst_cell_number(s, len, value, &finite);
    else if (col->type == PST_COL_BOOLEAN)
        ok = pst_cell_boolean(s, len, value);
    else
        ok = pst_cell_date(s, len, &days);
    if (col->type == PST_COL_DATE)
        *value = (double)days;
    if (ok && finite)
        return PST_OK;
    const char *what = !ok ? (col->type == PST_COL_NUMERIC   ? "non-numeric value"
                              : col->type == PST_COL_BOOLEAN ? "not a boolean"
                                                             : "not a date")
                           : "not a finite float";
    if (ok)
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s': value '%.*s' is %s", in->path,
                           line_of(in, c), col->name, shown, s, what);
    return pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s': %s '%.*s'", in->path, line_of(in, c),
                       col->name, what, shown, s);
}

/* Categorical: the vocabulary (missing cells as "") and each distinct cell's code in it. */
static int category_values(pst_table_col_t *col, const pst_table_cells_t *in, double *values,
                           pst_err_t *err)
{
    pst_strtab_t vocab;
    pst_strtab_init(&vocab);
    int rc = PST_OK;
    for (size_t c = 0; c < in->cells->n && rc == PST_OK; c++) {
        const char *s = in->cells->strs[c];
        size_t len = in->cells->lens[c];
        bool missing = pst_cell_is_missing(s, len);
        uint32_t code;
        rc = pst_strtab_intern(&vocab, missing ? "" : s, missing ? 0 : len, &code);
        values[c] = code;
    }
    if (rc == PST_OK && vocab.n > PST_TABLE_MAX_VOCAB)
        rc = pst_err_set(err, PST_ERANGE, "%s: column '%s' has over %u distinct values", in->path,
                         col->name, PST_TABLE_MAX_VOCAB);
    else if (rc != PST_OK)
        rc = pst_err_set(err, rc, "%s: column '%s': out of memory", in->path, col->name);
    if (rc == PST_OK) {
        /* The table's strings move into the column. */
        col->vocab = vocab.strs;
        col->n_vocab = vocab.n;
        vocab.strs = NULL;
        vocab.n = 0;
    }
    pst_strtab_fini(&vocab);
    return rc;
}

int pst_table_fill_column(pst_table_col_t *col, const pst_table_cells_t *in, float *x,
                          size_t x_stride, pst_err_t *err)
{
    double *values = malloc((in->cells->n ? in->cells->n : 1) * sizeof *values);
    if (values == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", in->path);
    int rc = PST_OK;
    if (col->type == PST_COL_CATEGORICAL)
        rc = category_values(col, in, values, err);
    for (uint32_t c = 0; col->type != PST_COL_CATEGORICAL && c < in->cells->n && rc == PST_OK; c++)
        rc = typed_value(col, in, c, &values[c], err);
    for (size_t i = 0; rc == PST_OK && i < in->n_rows; i++)
        x[i * x_stride] = (float)values[in->codes[i * in->stride]];
    free(values);
    return rc;
}

/* Index of text in col's vocabulary, appending it when new; -1 when out of memory. */
static long vocab_code(pst_table_col_t *col, const char *text)
{
    for (size_t k = 0; k < col->n_vocab; k++)
        if (strcmp(col->vocab[k], text) == 0)
            return (long)k;
    char **grown = realloc(col->vocab, (col->n_vocab + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    col->vocab = grown;
    if ((col->vocab[col->n_vocab] = strdup(text)) == NULL)
        return -1;
    return (long)col->n_vocab++;
}

int pst_table_adopt_codes(pst_table_t *into, pst_dataset_t *d, pst_err_t *err)
{
    const pst_table_t *from = d->table;
    if (from == NULL || from->n_cols != into->n_cols)
        return pst_err_set(err, PST_EFORMAT, "the files' columns differ");
    for (size_t j = 0; j < into->n_cols; j++) {
        pst_table_col_t *col = &into->cols[j];
        const pst_table_col_t *src = &from->cols[j];
        if (strcmp(col->name, src->name) != 0 || col->type != src->type)
            return pst_err_set(err, PST_EFORMAT,
                               "column %zu is '%s' (%s) in one file and '%s' (%s) "
                               "in the other",
                               j + 1, col->name, pst_col_type_name(col->type), src->name,
                               pst_col_type_name(src->type));
        if (col->type != PST_COL_CATEGORICAL)
            continue;
        long *map = malloc((src->n_vocab ? src->n_vocab : 1) * sizeof *map);
        int rc = map ? PST_OK : PST_ENOMEM;
        for (size_t k = 0; rc == PST_OK && k < src->n_vocab; k++)
            if ((map[k] = vocab_code(col, src->vocab[k])) < 0)
                rc = PST_ENOMEM;
        for (size_t i = 0; rc == PST_OK && i < d->n_rows; i++) {
            float *x = &d->x[i * d->n_features + j];
            *x = (float)map[(size_t)*x];
        }
        free(map);
        if (rc != PST_OK)
            return pst_err_set(err, rc, "out of memory");
    }
    return PST_OK;
}
