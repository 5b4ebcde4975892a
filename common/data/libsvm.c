/* LIBSVM / SVMlight reader: tokenises each line into a label and increasing idx:val pairs. */
#include "common/data/libsvm.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The CSR arrays being filled, sized from upper bounds counted before parsing. */
typedef struct svm_build {
    const char *path;
    size_t line;       /* 1-based current line */
    size_t n_rows;     /* rows parsed so far */
    size_t nnz;        /* entries stored so far */
    size_t max_index;  /* largest 1-based index seen */
    size_t *row_ptr;   // (max_rows + 1)
    uint32_t *col_idx; // (max_nnz)
    float *val;        // (max_nnz)
    double *raw;       // (max_rows) labels as written
    size_t *lines;     // (max_rows) source line of each row
} svm_build_t;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int bad_token(const svm_build_t *b, const char *tok, size_t len, const char *why,
                     pst_err_t *err)
{
    return pst_err_set(err, PST_EFORMAT, "%s:%zu: bad token '%.*s': %s", b->path, b->line,
                       (int)(len > 64 ? 64 : len), tok, why);
}

/* A finite float-range number filling exactly tok[0..len). */
static bool parse_number(const char *tok, size_t len, double *v)
{
    char *stop;
    if (len == 0 || is_space(tok[0]))
        return false;
    *v = strtod(tok, &stop);
    return stop == tok + len && isfinite(*v) && fabs(*v) <= FLT_MAX;
}

/* "idx:val" with idx 1-based, above the previous index of the row. */
static int parse_pair(svm_build_t *b, const char *tok, size_t len, size_t *prev, pst_err_t *err)
{
    if (tok[0] < '0' || tok[0] > '9')
        return bad_token(b, tok, len, "expected idx:value", err);
    char *colon;
    errno = 0;
    unsigned long long index = strtoull(tok, &colon, 10);
    if (*colon != ':' || colon >= tok + len)
        return bad_token(b, tok, len, "expected idx:value", err);
    if (index == 0)
        return bad_token(b, tok, len, "feature index 0 (indices are 1-based)", err);
    if (errno == ERANGE || index > UINT32_MAX)
        return bad_token(b, tok, len, "feature index too large", err);
    if (index <= *prev)
        return bad_token(b, tok, len, "feature indices must be strictly increasing", err);
    double v;
    if (!parse_number(colon + 1, (size_t)(tok + len - colon - 1), &v))
        return bad_token(b, tok, len, "non-numeric or non-finite value", err);
    b->col_idx[b->nnz] = (uint32_t)(index - 1);
    b->val[b->nnz++] = (float)v;
    *prev = (size_t)index;
    if (index > b->max_index)
        b->max_index = (size_t)index;
    return PST_OK;
}

/* Next whitespace-separated token of s[*pos..len); false when none is left. */
static bool next_token(const char *s, size_t len, size_t *pos, const char **tok, size_t *tok_len)
{
    size_t i = *pos;
    while (i < len && is_space(s[i]))
        i++;
    if (i >= len)
        return false;
    size_t start = i;
    while (i < len && !is_space(s[i]))
        i++;
    *tok = s + start;
    *tok_len = i - start;
    *pos = i;
    return true;
}

/* Parses one line (comment already cut off). Blank lines add no row. */
static int parse_line(svm_build_t *b, const char *s, size_t len, pst_err_t *err)
{
    size_t pos = 0, tok_len, prev = 0;
    const char *tok;
    if (!next_token(s, len, &pos, &tok, &tok_len))
        return PST_OK;
    double label;
    if (!parse_number(tok, tok_len, &label))
        return bad_token(b, tok, tok_len, "label is not a finite number", err);
    while (next_token(s, len, &pos, &tok, &tok_len)) {
        int rc = parse_pair(b, tok, tok_len, &prev, err);
        if (rc != PST_OK)
            return rc;
    }
    b->raw[b->n_rows] = label;
    b->lines[b->n_rows++] = b->line;
    b->row_ptr[b->n_rows] = b->nnz;
    return PST_OK;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (const char *p = s; (p = memchr(p, c, len - (size_t)(p - s))) != NULL; p++)
        n++;
    return n;
}

static int parse_all(svm_build_t *b, const char *buf, size_t len, pst_err_t *err)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(stop - p));
        b->line++;
        int rc = parse_line(b, p, (size_t)((hash ? hash : stop) - p), err);
        if (rc != PST_OK)
            return rc;
        p = stop + 1;
    }
    if (b->n_rows == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: no data rows", b->path);
    return PST_OK;
}

static void build_fini(svm_build_t *b)
{
    free(b->row_ptr);
    free(b->col_idx);
    free(b->val);
    free(b->raw);
    free(b->lines);
}

/* Moves the CSR arrays of b into a new dataset and encodes the labels. */
static int finish(svm_build_t *b, const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    pst_dataset_t *d = pst_dataset_new(b->n_rows, 0, PST_TASK_REGRESSION);
    if (d == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", b->path);
    free(d->x);
    d->x = NULL;
    d->n_features = b->max_index;
    d->row_ptr = b->row_ptr;
    d->col_idx = b->col_idx;
    d->val = b->val;
    b->row_ptr = NULL;
    b->col_idx = NULL;
    b->val = NULL;
    int rc = pst_data_set_targets(d, b->raw, b->lines, spec, b->path, err);
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}

int pst_libsvm_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    char *buf;
    size_t len;
    int rc = pst_data_read_file(spec->path, &buf, &len, err);
    if (rc != PST_OK)
        return rc;
    size_t max_rows = count_char(buf, len, '\n') + 1, max_nnz = count_char(buf, len, ':') + 1;
    svm_build_t b = {.path = spec->path};
    b.row_ptr = calloc(max_rows + 1, sizeof *b.row_ptr);
    b.col_idx = malloc(max_nnz * sizeof *b.col_idx);
    b.val = malloc(max_nnz * sizeof *b.val);
    b.raw = malloc(max_rows * sizeof *b.raw);
    b.lines = malloc(max_rows * sizeof *b.lines);
    if (!b.row_ptr || !b.col_idx || !b.val || !b.raw || !b.lines)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu lines", spec->path, max_rows);
    if (rc == PST_OK)
        rc = parse_all(&b, buf, len, err);
    free(buf);
    if (rc == PST_OK)
        rc = finish(&b, spec, out, err);
    build_fini(&b);
    return rc;
}
