/* CSV reader: header, column selection, every cell interned per column, then typed columns and
 * the target (numbers, or text class labels). */
#include "common/data/csv.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/csvtok.h"
#include "common/data/table_internal.h"

typedef struct csv_load {
    const pst_data_spec_t *spec;
    const char *path;
    pst_csvtok_t *tok;
    char **names; // (n_cols) header
    size_t n_cols, header_line, target;
    size_t *keep; // (n_keep) header index of each feature column, in file order
    size_t n_keep;
    pst_col_type_t *forced; // (n_cols) type given by the options, or -1
    pst_strtab_t *cells;    // (n_keep + 1) distinct cells per kept column; the last: the target
    uint32_t *codes;        // (n_rows, n_keep + 1)
    size_t *lines;          // (n_rows)
    size_t n_rows, cap_rows;
} csv_load_t;

static const pst_table_opts_t no_opts = {0};

/* L->target of a file without the (optional) target column. */
#define NO_TARGET SIZE_MAX

static void load_fini(csv_load_t *L)
{
    for (size_t j = 0; L->names && j < L->n_cols; j++)
        free(L->names[j]);
    free(L->names);
    for (size_t k = 0; L->cells && k <= L->n_keep; k++)
        pst_strtab_fini(&L->cells[k]);
    free(L->cells);
    free(L->keep);
    free(L->forced);
    free(L->codes);
    free(L->lines);
    pst_csvtok_destroy(&L->tok);
}

static long find_name(const csv_load_t *L, const char *name)
{
    for (size_t j = 0; j < L->n_cols; j++)
        if (strcmp(L->names[j], name) == 0)
            return (long)j;
    return -1;
}

/* "a, b, c" listing of the header names, cut to fit cap. */
static void list_columns(const csv_load_t *L, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < L->n_cols && used + 1 < cap; j++) {
        int n = snprintf(buf + used, cap - used, "%s%s", j ? ", " : "", L->names[j]);
        used += n > 0 ? (size_t)n : 0;
    }
}

static int unknown_column(const csv_load_t *L, const char *what, const char *name, pst_err_t *err)
{
    char cols[400];
    list_columns(L, cols, sizeof cols);
    return pst_err_set(err, PST_ENOTFOUND, "%s:%zu: %s column '%s' not found; columns are: %s",
                       L->path, L->header_line, what, name, cols);
}

static int read_header(csv_load_t *L, pst_err_t *err)
{
    const pst_csv_record_t *rec;
    int got = pst_csvtok_next(L->tok, &rec, err);
    if (got < 0)
        return got;
    if (got == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: empty file (no header row)", L->path);
    L->header_line = rec->line;
    L->n_cols = rec->n_fields;
    if ((L->names = calloc(L->n_cols, sizeof *L->names)) == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    for (size_t j = 0; j < L->n_cols; j++)
        if ((L->names[j] = strdup(rec->fields[j])) == NULL)
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    if (L->n_cols < 2)
        return pst_err_set(err, PST_EFORMAT,
                           "%s:%zu: header has %zu column; need features and a target", L->path,
                           L->header_line, L->n_cols);
    for (size_t j = 0; j < L->n_cols; j++) {
        size_t count = 0;
        for (size_t k = 0; k < L->n_cols; k++)
            count += strcmp(L->names[j], L->names[k]) == 0;
        if (count > 1)
            return pst_err_set(err, PST_EFORMAT,
                               "%s:%zu: column '%s' appears %zu times in the header; names must "
                               "be unique",
                               L->path, L->header_line, L->names[j], count);
    }
    const char *target = L->spec->target;
    long t = target && target[0] ? find_name(L, target) : (long)L->n_cols - 1;
    if (t < 0 && L->spec->target_optional) {
        L->target = NO_TARGET;
        return PST_OK;
    }
    if (t < 0)
        return unknown_column(L, "target", target, err);
    L->target = (size_t)t;
    return PST_OK;
}

/* Index of name for option key, or an error naming both. */
static int named(const csv_load_t *L, const char *key, const char *name, size_t *j, pst_err_t *err)
{
    long at = find_name(L, name);
    if (at < 0)
        return unknown_column(L, key, name, err);
    *j = (size_t)at;
    return PST_OK;
}

/* Applies data.categorical / data.as_numeric: forced[j] for each named column. */
static int force_types(csv_load_t *L, const pst_table_opts_t *o, pst_err_t *err)
{
    if ((L->forced = malloc(L->n_cols * sizeof *L->forced)) == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    for (size_t j = 0; j < L->n_cols; j++)
        L->forced[j] = (pst_col_type_t)-1;
    for (size_t k = 0; o->schema && k < o->schema->n_cols; k++) {
        long at = find_name(L, o->schema->cols[k].name);
        if (at >= 0)
            L->forced[at] = o->schema->cols[k].type;
    }
    size_t j = 0;
    for (int i = 0; i < o->n_categorical; i++) {
        int rc = named(L, "data.categorical", o->categorical[i], &j, err);
        if (rc != PST_OK)
            return rc;
        L->forced[j] = PST_COL_CATEGORICAL;
    }
    for (int i = 0; i < o->n_numeric; i++) {
        int rc = named(L, "data.as_numeric", o->numeric[i], &j, err);
        if (rc != PST_OK)
            return rc;
        if (L->forced[j] == PST_COL_CATEGORICAL)
            return pst_err_set(err, PST_EINVAL,
                               "column '%s' is in both data.categorical and data.as_numeric",
                               o->numeric[i]);
        L->forced[j] = PST_COL_NUMERIC;
    }
    return PST_OK;
}

/* The feature columns: data.features (or all but the target and id), less data.drop_columns. */
static int select_columns(csv_load_t *L, const pst_table_opts_t *o, pst_err_t *err)
{
    bool *use = calloc(L->n_cols, sizeof *use);
    L->keep = calloc(L->n_cols, sizeof *L->keep);
    int rc = use && L->keep ? PST_OK : pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    size_t j = 0;
    for (size_t k = 0; rc == PST_OK && k < L->n_cols; k++)
        use[k] = o->n_features == 0 && k != L->target;
    for (int i = 0; rc == PST_OK && i < o->n_features; i++) {
        if ((rc = named(L, "data.features", o->features[i], &j, err)) == PST_OK && j == L->target)
            rc = pst_err_set(err, PST_EINVAL, "data.features names the target column '%s'",
                             o->features[i]);
        if (rc == PST_OK)
            use[j] = true;
    }
    if (rc == PST_OK && o->id_column && o->id_column[0]) {
        if ((rc = named(L, "id", o->id_column, &j, err)) == PST_OK)
            use[j] = false;
    }
    for (int i = 0; rc == PST_OK && i < o->n_drop; i++)
        if ((rc = named(L, "data.drop_columns", o->drop[i], &j, err)) == PST_OK)
            use[j] = false;
    /* data.features gives the order; otherwise the file's order */
    for (int i = 0; rc == PST_OK && i < o->n_features; i++) {
        size_t at = (size_t)find_name(L, o->features[i]);
        if (use[at])
            L->keep[L->n_keep++] = at;
        use[at] = false;
    }
    for (size_t k = 0; rc == PST_OK && k < L->n_cols; k++)
        if (use[k])
            L->keep[L->n_keep++] = k;
    if (rc == PST_OK && L->n_keep == 0)
        rc = pst_err_set(err, PST_EINVAL, "%s: no feature columns are left", L->path);
    free(use);
    if (rc == PST_OK && (L->cells = calloc(L->n_keep + 1, sizeof *L->cells)) == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    return rc;
}

static int grow_rows(csv_load_t *L, pst_err_t *err)
{
    size_t cap = L->cap_rows ? 2 * L->cap_rows : 1024, width = L->n_keep + 1;
    uint32_t *codes = realloc(L->codes, cap * width * sizeof *codes);
    if (codes)
        L->codes = codes;
    size_t *lines = codes ? realloc(L->lines, cap * sizeof *lines) : NULL;
    if (lines == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory after %zu rows", L->path, L->n_rows);
    L->lines = lines;
    L->cap_rows = cap;
    return PST_OK;
}

static int read_rows(csv_load_t *L, pst_err_t *err)
{
    const pst_csv_record_t *rec;
    int got;
    size_t width = L->n_keep + 1;
    while ((got = pst_csvtok_next(L->tok, &rec, err)) == 1) {
        if (rec->n_fields != L->n_cols)
            return pst_err_set(err, PST_EFORMAT,
                               "%s:%zu: ragged row: %zu fields, the header has %zu", L->path,
                               rec->line, rec->n_fields, L->n_cols);
        if (L->n_rows == L->cap_rows && grow_rows(L, err) != PST_OK)
            return PST_ENOMEM;
        uint32_t *row = L->codes + L->n_rows * width;
        for (size_t k = 0; k < width; k++) {
            size_t j = k < L->n_keep ? L->keep[k] : L->target;
            const char *cell = j == NO_TARGET ? "" : rec->fields[j];
            if (pst_strtab_intern(&L->cells[k], cell, j == NO_TARGET ? 0 : rec->lens[j], &row[k]) !=
                PST_OK)
                return pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", L->path, rec->line);
        }
        L->lines[L->n_rows++] = rec->line;
    }
    if (got < 0)
        return got;
    if (L->n_rows == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: no data rows after the header", L->path);
    return PST_OK;
}

static pst_table_cells_t cells_of(const csv_load_t *L, size_t k)
{
    return (pst_table_cells_t){L->path,       &L->cells[k], L->codes + k,
                               L->n_keep + 1, L->lines,     L->n_rows};
}

/* Types every kept column and fills the dataset's raw columns and schema. */
static int fill_features(csv_load_t *L, bool drop_dates, pst_dataset_t **out, pst_err_t *err)
{
    pst_col_type_t *types = malloc(L->n_keep * sizeof *types);
    if (types == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    size_t width = 0;
    for (size_t k = 0; k < L->n_keep; k++) {
        pst_col_type_t f = L->forced[L->keep[k]];
        types[k] = (int)f >= 0 ? f : pst_table_detect(&L->cells[k]);
        width += !(drop_dates && types[k] == PST_COL_DATE);
    }
    pst_dataset_t *d = width ? pst_dataset_new(L->n_rows, width, PST_TASK_REGRESSION) : NULL;
    int rc = PST_OK;
    if (width == 0)
        rc = pst_err_set(err, PST_EINVAL, "%s: no feature columns are left", L->path);
    else if (d == NULL || !(d->table = pst_table_new(width)) ||
             !(d->feature_names = calloc(width, sizeof(char *))))
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu rows", L->path, L->n_rows);
    for (size_t k = 0, j = 0; rc == PST_OK && k < L->n_keep; k++) {
        if (drop_dates && types[k] == PST_COL_DATE)
            continue;
        pst_table_col_t *col = &d->table->cols[j];
        col->type = types[k];
        col->name = strdup(L->names[L->keep[k]]);
        d->feature_names[j] = strdup(L->names[L->keep[k]]);
        if (!col->name || !d->feature_names[j])
            rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
        pst_table_cells_t in = cells_of(L, k);
        if (rc == PST_OK)
            rc = pst_table_fill_column(col, &in, d->x + j, width, err);
        j++;
    }
    free(types);
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Text class labels: the class list (the spec's, or this file's sorted) and each row's index. */
static int text_targets(csv_load_t *L, pst_dataset_t *d, double *raw, pst_err_t *err)
{
    const pst_strtab_t *t = &L->cells[L->n_keep];
    const char *name = L->names[L->target];
    if (L->spec->task == PST_DATA_TASK_REGRESSION)
        return pst_err_set(err, PST_EFORMAT,
                           "%s:%zu: column '%s': text value '%s' in a regression "
                           "target",
                           L->path, L->lines[0], name, t->strs[L->codes[L->n_keep]]);
    const pst_data_spec_t *spec = L->spec;
    size_t k = spec->class_names ? (size_t)spec->n_class_values : t->n;
    char **classes = calloc(k ? k : 1, sizeof *classes);
    double *index = malloc((k ? k : 1) * sizeof *index);
    int rc = classes && index ? PST_OK : pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    for (size_t c = 0; rc == PST_OK && c < k; c++) {
        index[c] = (double)c;
        if (!(classes[c] = strdup(spec->class_names ? spec->class_names[c] : t->strs[c])))
            rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    }
    if (rc == PST_OK && !spec->class_names)
        qsort(classes, k, sizeof *classes, cmp_str);
    for (size_t i = 0; rc == PST_OK && i < L->n_rows; i++) {
        const char *label = t->strs[L->codes[i * (L->n_keep + 1) + L->n_keep]];
        char **hit = bsearch(&label, classes, k, sizeof *classes, cmp_str);
        if (hit == NULL)
            rc = pst_err_set(err, PST_ERANGE,
                             "%s:%zu: label '%s' is not one of the %zu known "
                             "classes",
                             L->path, L->lines[i], label, k);
        else
            raw[i] = (double)(hit - classes);
    }
    pst_data_spec_t by_index = *spec;
    by_index.class_values = index;
    by_index.n_class_values = (int)k;
    by_index.task = PST_DATA_TASK_CLASSIFICATION;
    if (rc == PST_OK)
        rc = pst_data_set_targets(d, raw, L->lines, &by_index, L->path, err);
    if (rc == PST_OK) {
        d->class_names = classes;
        classes = NULL;
    }
    for (size_t c = 0; classes && c < k; c++)
        free(classes[c]);
    free(classes);
    free(index);
    return rc;
}

/* No target column: the classes the caller gave (if any), every label 0. */
static int no_targets(csv_load_t *L, pst_dataset_t *d, pst_err_t *err)
{
    const pst_data_spec_t *spec = L->spec;
    int k = spec->n_class_values;
    if (spec->class_values == NULL || k <= 0) {
        d->task = PST_TASK_REGRESSION;
        return PST_OK;
    }
    d->task = PST_TASK_CLASSIFICATION;
    d->n_classes = k;
    bool ok = (d->class_values = malloc((size_t)k * sizeof(double))) != NULL;
    if (ok)
        memcpy(d->class_values, spec->class_values, (size_t)k * sizeof(double));
    if (ok && spec->class_names && (ok = (d->class_names = calloc((size_t)k, sizeof(char *)))))
        for (int c = 0; ok && c < k; c++)
            ok = (d->class_names[c] = strdup(spec->class_names[c])) != NULL;
    return ok ? PST_OK : pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
}

static int set_targets(csv_load_t *L, pst_dataset_t *d, pst_err_t *err)
{
    if (L->target == NO_TARGET)
        return no_targets(L, d, err);
    const pst_strtab_t *t = &L->cells[L->n_keep];
    const char *name = L->names[L->target];
    size_t width = L->n_keep + 1;
    double *raw = malloc(L->n_rows * sizeof *raw);
    if (raw == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    int rc = PST_OK;
    bool text = L->spec->class_names != NULL;
    for (size_t i = 0; rc == PST_OK && i < L->n_rows; i++) {
        uint32_t c = L->codes[i * width + L->n_keep];
        double v;
        bool finite;
        if (pst_cell_is_missing(t->strs[c], t->lens[c]))
            rc = pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s': missing target value", L->path,
                             L->lines[i], name);
        else if (!pst_cell_number(t->strs[c], t->lens[c], &v, &finite))
            text = true;
        else if (!finite)
            rc = pst_err_set(err, PST_EFORMAT,
                             "%s:%zu: column '%s': value '%s' is not a finite "
                             "float",
                             L->path, L->lines[i], name, t->strs[c]);
        else
            raw[i] = v;
    }
    if (rc == PST_OK)
        rc = text ? text_targets(L, d, raw, err)
                  : pst_data_set_targets(d, raw, L->lines, L->spec, L->path, err);
    free(raw);
    if (rc == PST_OK && (d->target_name = strdup(name)) == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", L->path);
    return rc;
}

int pst_csv_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    const pst_table_opts_t *o = spec->table ? spec->table : &no_opts;
    csv_load_t L = {.spec = spec, .path = spec->path};
    *out = NULL;
    if ((L.tok = pst_csvtok_open(spec->path, err)) == NULL)
        return pst_err_code(err, PST_EIO);
    int rc = read_header(&L, err);
    if (rc == PST_OK)
        rc = force_types(&L, o, err);
    if (rc == PST_OK)
        rc = select_columns(&L, o, err);
    if (rc == PST_OK)
        rc = read_rows(&L, err);
    pst_dataset_t *d = NULL;
    if (rc == PST_OK)
        rc = fill_features(&L, o->drop_dates, &d, err);
    if (rc == PST_OK)
        rc = set_targets(&L, d, err);
    load_fini(&L);
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}
