/* CSV reader: header, numeric cells with missing markers, a target column, file:line errors. */
#include "common/data/csv.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/numparse.h"

/* One cell of the current line: text between the separators (inside the quotes if quoted). */
typedef struct field {
    const char *s;
    size_t len;
} field_t;

typedef struct csv_reader {
    const char *path;
    const char *cur, *end; /* unread part of the file buffer */
    size_t line;           /* 1-based number of the line last returned */
    field_t *fields;       // (cap_fields)
    size_t cap_fields, n_fields;
    char **names; // (n_cols) header names
    size_t n_cols, target_col;
} csv_reader_t;

/* Next line without its "\n" or "\r\n"; false at end of input. */
static bool next_line(csv_reader_t *r, const char **s, size_t *len)
{
    if (r->cur >= r->end)
        return false;
    const char *nl = memchr(r->cur, '\n', (size_t)(r->end - r->cur));
    const char *stop = nl ? nl : r->end;
    *s = r->cur;
    *len = (size_t)(stop - r->cur);
    if (*len > 0 && (*s)[*len - 1] == '\r')
        (*len)--;
    r->cur = nl ? nl + 1 : r->end;
    r->line++;
    return true;
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

static int push_field(csv_reader_t *r, const char *s, size_t len)
{
    if (r->n_fields == r->cap_fields) {
        size_t cap = r->cap_fields ? 2 * r->cap_fields : 16;
        field_t *grown = realloc(r->fields, cap * sizeof *grown);
        if (grown == NULL)
            return PST_ENOMEM;
        r->fields = grown;
        r->cap_fields = cap;
    }
    r->fields[r->n_fields++] = (field_t){s, len};
    return PST_OK;
}

/* Quoted field starting at *p (on the opening quote): content span and position after it. */
static int scan_quoted(csv_reader_t *r, const char **p, const char *end, field_t *f, pst_err_t *err)
{
    const char *q = *p + 1;
    f->s = q;
    while (q < end && !(*q == '"' && (q + 1 >= end || q[1] != '"')))
        q += (*q == '"') ? 2 : 1;
    if (q >= end)
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: field %zu: unterminated quote", r->path,
                           r->line, r->n_fields + 1);
    f->len = (size_t)(q - f->s);
    q++;
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    if (q < end && *q != ',')
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: field %zu: text after the closing quote",
                           r->path, r->line, r->n_fields + 1);
    *p = q;
    return PST_OK;
}

/* Splits line s[0..len) at commas into r->fields, honouring double quotes. */
static int split_fields(csv_reader_t *r, const char *s, size_t len, pst_err_t *err)
{
    const char *p = s, *end = s + len;
    r->n_fields = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        field_t f = {NULL, 0};
        if (p < end && *p == '"') {
            int rc = scan_quoted(r, &p, end, &f, err);
            if (rc != PST_OK)
                return rc;
        } else {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            f.s = p;
            f.len = (size_t)((comma ? comma : end) - p);
            trim(&f.s, &f.len);
            p = comma ? comma : end;
        }
        if (push_field(r, f.s, f.len) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", r->path, r->line);
        if (p >= end)
            return PST_OK;
        p++; /* the comma */
    }
}

/* A header name with "" unescaped to ". */
static char *field_text(const field_t *f)
{
    char *out = malloc(f->len + 1), *w = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < f->len; i++) {
        *w++ = f->s[i];
        if (f->s[i] == '"' && i + 1 < f->len && f->s[i + 1] == '"')
            i++;
    }
    *w = '\0';
    return out;
}

static bool is_missing(const field_t *f)
{
    static const char *markers[] = {"na", "nan", "n/a", "?"};
    if (f->len == 0)
        return true;
    for (size_t i = 0; i < sizeof markers / sizeof *markers; i++)
        if (f->len == strlen(markers[i]) && strncasecmp(f->s, markers[i], f->len) == 0)
            return true;
    return false;
}

/* Parses cell `col` of the current line: NaN if missing, else a finite float-range number. */
static int parse_cell(const csv_reader_t *r, size_t col, double *value, pst_err_t *err)
{
    field_t cell = r->fields[col], *f = &cell;
    trim(&f->s, &f->len); /* quoted content keeps its spaces until here */
    if (is_missing(f)) {
        *value = NAN;
        return PST_OK;
    }
    double v;
    int rc = pst_parse_float_field(f->s, f->len, &v);
    if (rc == PST_EFORMAT)
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s': non-numeric value '%.*s'",
                           r->path, r->line, r->names[col], (int)(f->len > 64 ? 64 : f->len), f->s);
    if (rc != PST_OK)
        return pst_err_set(err, PST_EFORMAT,
                           "%s:%zu: column '%s': value '%.*s' is not a finite float", r->path,
                           r->line, r->names[col], (int)(f->len > 64 ? 64 : f->len), f->s);
    *value = v;
    return PST_OK;
}

/* "a, b, c" listing of the header names, cut to fit cap. */
static void list_columns(const csv_reader_t *r, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < r->n_cols && used + 1 < cap; j++) {
        int n = snprintf(buf + used, cap - used, "%s%s", j ? ", " : "", r->names[j]);
        used += n > 0 ? (size_t)n : 0;
    }
}

/* Index of the target column: the named one or the last. */
static int find_target(csv_reader_t *r, const char *target, pst_err_t *err)
{
    if (target == NULL || target[0] == '\0') {
        r->target_col = r->n_cols - 1;
        return PST_OK;
    }
    size_t found = 0;
    for (size_t j = 0; j < r->n_cols; j++) {
        if (strcmp(r->names[j], target) == 0) {
            if (found++ == 0)
                r->target_col = j;
        }
    }
    if (found == 1)
        return PST_OK;
    if (found > 1)
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: target column '%s' appears %zu times",
                           r->path, r->line, target, found);
    char cols[400];
    list_columns(r, cols, sizeof cols);
    return pst_err_set(err, PST_ENOTFOUND, "%s:%zu: target column '%s' not found; columns are: %s",
                       r->path, r->line, target, cols);
}

/* Reads the first non-blank line as the header: names and the target column. */
static int read_header(csv_reader_t *r, const char *target, pst_err_t *err)
{
    const char *s;
    size_t len;
    do {
        if (!next_line(r, &s, &len))
            return pst_err_set(err, PST_EFORMAT, "%s: empty file (no header row)", r->path);
    } while (is_blank(s, len));
    int rc = split_fields(r, s, len, err);
    if (rc != PST_OK)
        return rc;
    r->n_cols = r->n_fields;
    r->names = calloc(r->n_cols, sizeof *r->names);
    if (r->names == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", r->path);
    for (size_t j = 0; j < r->n_cols; j++)
        if ((r->names[j] = field_text(&r->fields[j])) == NULL)
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", r->path);
    if (r->n_cols < 2)
        return pst_err_set(err, PST_EFORMAT,
                           "%s:%zu: header has %zu column; need features and a target", r->path,
                           r->line, r->n_cols);
    return find_target(r, target, err);
}

/* Parses the current line's fields into feature row x (n_cols - 1) and *target. */
static int parse_row(const csv_reader_t *r, float *x, double *target, pst_err_t *err)
{
    if (r->n_fields != r->n_cols)
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: ragged row: %zu fields, the header has %zu",
                           r->path, r->line, r->n_fields, r->n_cols);
    size_t k = 0;
    for (size_t j = 0; j < r->n_cols; j++) {
        double v = NAN;
        int rc = parse_cell(r, j, &v, err);
        if (rc != PST_OK)
            return rc;
        if (j == r->target_col)
            *target = v;
        else
            x[k++] = (float)v;
    }
    if (isnan(*target))
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s': missing target value", r->path,
                           r->line, r->names[r->target_col]);
    return PST_OK;
}

/* Upper bound on data rows: lines left in the buffer. */
static size_t count_lines(const char *s, const char *end)
{
    size_t n = 1;
    while ((s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        n++;
        s++;
    }
    return n;
}

/* Reads every data line into d (allocated with room for max_rows), raw targets and lines. */
static int read_rows(csv_reader_t *r, pst_dataset_t *d, double *raw, size_t *lines, pst_err_t *err)
{
    size_t n = 0, width = d->n_features;
    const char *s;
    size_t len;
    while (next_line(r, &s, &len)) {
        if (is_blank(s, len))
            continue;
        int rc = split_fields(r, s, len, err);
        if (rc == PST_OK)
            rc = parse_row(r, d->x + n * width, &raw[n], err);
        if (rc != PST_OK)
            return rc;
        lines[n++] = r->line;
    }
    if (n == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: no data rows after the header", r->path);
    d->n_rows = n;
    return PST_OK;
}

/* Moves the non-target header names into d->feature_names and the target's into target_name. */
static void take_names(csv_reader_t *r, pst_dataset_t *d)
{
    d->feature_names = calloc(d->n_features, sizeof *d->feature_names);
    if (d->feature_names == NULL)
        return;
    size_t k = 0;
    for (size_t j = 0; j < r->n_cols; j++) {
        if (j == r->target_col)
            d->target_name = r->names[j];
        else
            d->feature_names[k++] = r->names[j];
        r->names[j] = NULL;
    }
}

static void reader_fini(csv_reader_t *r)
{
    for (size_t j = 0; r->names != NULL && j < r->n_cols; j++)
        free(r->names[j]);
    free(r->names);
    free(r->fields);
}

/* Parses the whole buffer into *out. */
static int parse_buffer(csv_reader_t *r, const pst_data_spec_t *spec, pst_dataset_t **out,
                        pst_err_t *err)
{
    int rc = read_header(r, spec->target, err);
    if (rc != PST_OK)
        return rc;
    size_t max_rows = count_lines(r->cur, r->end);
    pst_dataset_t *d = pst_dataset_new(max_rows, r->n_cols - 1, PST_TASK_REGRESSION);
    double *raw = malloc(max_rows * sizeof *raw);
    size_t *lines = malloc(max_rows * sizeof *lines);
    if (d == NULL || raw == NULL || lines == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu rows", r->path, max_rows);
    if (rc == PST_OK)
        rc = read_rows(r, d, raw, lines, err);
    if (rc == PST_OK)
        rc = pst_data_set_targets(d, raw, lines, spec, r->path, err);
    if (rc == PST_OK) {
        take_names(r, d);
        if (d->feature_names == NULL || d->target_name == NULL)
            rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", r->path);
    }
    free(raw);
    free(lines);
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}

int pst_csv_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    char *buf;
    size_t len;
    int rc = pst_data_read_file(spec->path, &buf, &len, err);
    if (rc != PST_OK)
        return rc;
    csv_reader_t r = {.path = spec->path, .cur = buf, .end = buf + len};
    rc = parse_buffer(&r, spec, out, err);
    reader_fini(&r);
    free(buf);
    return rc;
}
