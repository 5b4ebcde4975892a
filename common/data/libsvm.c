/* LIBSVM / SVMlight reader: tokenises each line into a label and increasing idx:val pairs. */
#include "common/data/libsvm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/numparse.h"

/* Where a line is parsed, for messages. */
typedef struct svm_where {
    const char *path;
    size_t line_no;
} svm_where_t;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int bad_token(const svm_where_t *at, const char *tok, size_t len, const char *why,
                     pst_err_t *err)
{
    return pst_err_set(err, PST_EFORMAT, "%s:%zu: bad token '%.*s': %s", at->path, at->line_no,
                       (int)(len > 64 ? 64 : len), tok, why);
}

/* "idx:val" with idx 1-based, above *prev, into *index (0-based) and *value. */
static int parse_pair(const svm_where_t *at, const char *tok, size_t len, uint64_t *prev,
                      uint32_t *index, float *value, pst_err_t *err)
{
    uint64_t one_based;
    size_t digits = pst_parse_digits_u32(tok, len, &one_based);
    if (digits == 0 || digits >= len || tok[digits] != ':')
        return bad_token(at, tok, len, "expected idx:value", err);
    if (one_based == 0)
        return bad_token(at, tok, len, "feature index 0 (indices are 1-based)", err);
    if (one_based > UINT32_MAX)
        return bad_token(at, tok, len, "feature index too large", err);
    if (one_based <= *prev)
        return bad_token(at, tok, len, "feature indices must be strictly increasing", err);
    double v;
    if (pst_parse_float_field(tok + digits + 1, len - digits - 1, &v) != PST_OK)
        return bad_token(at, tok, len, "non-numeric or non-finite value", err);
    *index = (uint32_t)(one_based - 1);
    *value = (float)v;
    *prev = one_based;
    return PST_OK;
}

/* The next blank-separated token of [*p, end); false when none is left. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *tok_len)
{
    const char *q = *p;
    while (q < end && is_blank(*q))
        q++;
    if (q == end)
        return false;
    *tok = q;
    while (q < end && !is_blank(*q))
        q++;
    *tok_len = (size_t)(q - *tok);
    *p = q;
    return true;
}

int pst_libsvm_parse_line(const char *s, size_t len, double *label, uint32_t *idx, float *val,
                          size_t *nnz, const char *path, size_t line_no, pst_err_t *err)
{
    const svm_where_t at = {path, line_no};
    const char *hash = memchr(s, '#', len);
    const char *p = s, *end = hash ? hash : s + len, *tok;
    size_t tok_len, n = 0;
    if (!next_token(&p, end, &tok, &tok_len))
        return 0;
    if (pst_parse_float_field(tok, tok_len, label) != PST_OK)
        return bad_token(&at, tok, tok_len, "label is not a finite number", err);
    uint64_t prev = 0;
    while (next_token(&p, end, &tok, &tok_len)) {
        int rc = parse_pair(&at, tok, tok_len, &prev, &idx[n], &val[n], err);
        if (rc != PST_OK)
            return rc;
        n++;
    }
    *nnz = n;
    return 1;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (const char *p = s; (p = memchr(p, c, len - (size_t)(p - s))) != NULL; p++)
        n++;
    return n;
}

/* Appends the line's row, if any, to csr (sized for every ':' of the file). */
static int parse_into(pst_data_csr_t *csr, const char *s, size_t len, const char *path,
                      size_t line_no, pst_err_t *err)
{
    size_t nnz = csr->row_ptr[csr->n_rows], n;
    double label;
    int rc = pst_libsvm_parse_line(s, len, &label, csr->col_idx + nnz, csr->val + nnz, &n, path,
                                   line_no, err);
    if (rc <= 0)
        return rc;
    for (size_t k = 0; k < n; k++)
        if ((size_t)csr->col_idx[nnz + k] + 1 > csr->n_features)
            csr->n_features = (size_t)csr->col_idx[nnz + k] + 1;
    csr->raw[csr->n_rows] = label;
    csr->lines[csr->n_rows++] = line_no;
    csr->row_ptr[csr->n_rows] = nnz + n;
    return PST_OK;
}

static int parse_all(pst_data_csr_t *csr, const char *buf, size_t len, const char *path,
                     pst_err_t *err)
{
    const char *p = buf, *end = buf + len;
    size_t line_no = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        int rc = parse_into(csr, p, (size_t)(stop - p), path, ++line_no, err);
        if (rc != PST_OK)
            return rc;
        p = stop + 1;
    }
    return PST_OK;
}

static void csr_fini(pst_data_csr_t *csr)
{
    free(csr->row_ptr);
    free(csr->col_idx);
    free(csr->val);
    free(csr->raw);
    free(csr->lines);
}

int pst_libsvm_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    char *buf;
    size_t len;
    int rc = pst_data_read_file(spec->path, &buf, &len, err);
    if (rc != PST_OK)
        return rc;
    size_t max_rows = count_char(buf, len, '\n') + 1, max_nnz = count_char(buf, len, ':') + 1;
    pst_data_csr_t csr = {0};
    csr.row_ptr = calloc(max_rows + 1, sizeof *csr.row_ptr);
    csr.col_idx = malloc(max_nnz * sizeof *csr.col_idx);
    csr.val = malloc(max_nnz * sizeof *csr.val);
    csr.raw = malloc(max_rows * sizeof *csr.raw);
    csr.lines = malloc(max_rows * sizeof *csr.lines);
    if (!csr.row_ptr || !csr.col_idx || !csr.val || !csr.raw || !csr.lines)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu lines", spec->path, max_rows);
    if (rc == PST_OK)
        rc = parse_all(&csr, buf, len, spec->path, err);
    free(buf);
    if (rc == PST_OK)
        rc = pst_data_from_csr(&csr, spec, spec->path, out, err);
    csr_fini(&csr);
    return rc;
}
