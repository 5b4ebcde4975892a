/* LIBSVM / SVMlight: the line syntax (a label, increasing idx:val pairs) and the whole-file reader.
 */
#include "common/data/libsvm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/sparsestream_internal.h"
#include "common/data/textfile.h"
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

/* The next blank-separated token of [*p, end); false when none is left. Always inline: it runs
 * for every entry of a file, twice per line. */
static inline __attribute__((always_inline)) bool next_token(const char **p, const char *end,
                                                             const char **tok, size_t *tok_len)
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

/* The common line in one pass: "label idx:val idx:val ..." with single spaces, a plain decimal
 * label and values (see pst_scan_decimal), valid increasing indices, perhaps a trailing blank or
 * '\r'. 1 with the row, as pst_libsvm_parse_line would give it; 0 when the line is anything else
 * (a comment, tabs, an error...), which the general parser then reads. */
static inline int plain_line(const char *s, size_t len, double *label, uint32_t *idx, float *val,
                             size_t *nnz)
{
    if (len > 0 && s[len - 1] == '\r')
        len--;
    const char *p = s, *end = s + len;
    size_t took = pst_scan_decimal(p, len, label);
    if (took == 0 || ((p += took) < end && *p != ' '))
        return 0;
    uint64_t prev = 0;
    size_t n = 0;
    while (p < end && ++p < end) { /* p at a space, then at the entry after it */
        uint64_t one_based = 0;
        const char *digits = p;
        while (p < end && (unsigned)(*p - '0') < 10 && p - digits < 10)
            one_based = one_based * 10 + (uint64_t)(*p++ - '0');
        if (p == digits || p == end || *p != ':' || one_based <= prev || one_based > UINT32_MAX)
            return 0;
        double v;
        p++;
        took = pst_scan_decimal(p, (size_t)(end - p), &v);
        if (took == 0 || ((p += took) < end && *p != ' '))
            return 0;
        idx[n] = (uint32_t)(one_based - 1);
        val[n++] = (float)v;
        prev = one_based;
    }
    *nnz = n;
    return 1;
}

int pst_libsvm_parse_line(const char *s, size_t len, double *label, uint32_t *idx, float *val,
                          size_t *nnz, const char *path, size_t line_no, pst_err_t *err)
{
    if (plain_line(s, len, label, idx, val, nnz))
        return 1;
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

int pst_libsvm_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    *out = NULL;
    pst_sparse_source_t src = {.path = spec->path, .format = PST_SPARSE_LIBSVM};
    pst_text_file_t text;
    int rc = pst_text_file_open(&text, spec->path, err);
    if (rc != PST_OK)
        return rc;
    pst_sparse_csr_build_t build = {.with_lines = true};
    rc = pst_sparse_parse_text(&src, text.data, text.len, spec->read_threads, &build, err);
    pst_text_file_close(&text);
    return rc == PST_OK ? pst_sparse_csr_finish(&build, spec, spec->path, out, err) : rc;
}
