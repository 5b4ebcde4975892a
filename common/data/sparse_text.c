/* Sparse text reader: LIBSVM or hashed TSV rows from plain or gzip text, chunk by chunk. */
#include "common/data/sparsestream_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/libsvm.h"

bool pst_sparse_grow_array_to(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need)
        cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (q == NULL)
        return false;
    *p = q;
    *cap = cap2;
    return true;
}

static bool text_scratch(pst_sparse_text_t *r, size_t need)
{
    size_t cap = r->scratch_cap;
    return pst_sparse_grow_array((void **)&r->idx, &cap, need, sizeof *r->idx) &&
           pst_sparse_grow_array((void **)&r->val, &r->scratch_cap, need, sizeof *r->val);
}

void pst_sparse_text_close(pst_sparse_text_t *r)
{
    if (r->gz != NULL)
        gzclose(r->gz);
    free(r->buf);
    free(r->idx);
    free(r->val);
    memset(r, 0, sizeof *r);
}

int pst_sparse_text_open(pst_sparse_text_t *r, const pst_sparse_source_t *src, size_t chunk,
                         pst_err_t *err)
{
    memset(r, 0, sizeof *r);
    r->src = src;
    r->path = src->path;
    r->cap = chunk;
    r->buf = malloc(chunk + 1);
    size_t width =
        src->format == PST_SPARSE_TSV_HASHED ? src->hash.n_numeric + src->hash.n_categorical : 64;
    if (r->buf == NULL || !text_scratch(r, width)) {
        pst_sparse_text_close(r);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", src->path);
    }
    r->buf[0] = '\0';
    r->gz = gzopen(src->path, "rb");
    if (r->gz == NULL) {
        int rc = pst_err_set(err, PST_EIO, "%s: cannot open: %s", src->path, strerror(errno));
        pst_sparse_text_close(r);
        return rc;
    }
    return PST_OK;
}

/* Reads more text after moving the unread part to the front. */
static int text_fill(pst_sparse_text_t *r, pst_err_t *err)
{
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    if (r->len == r->cap) {
        char *b = realloc(r->buf, 2 * r->cap + 1);
        if (b == NULL)
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory for a long line", r->path);
        r->buf = b;
        r->cap *= 2;
    }
    int n = gzread(r->gz, r->buf + r->len, (unsigned)(r->cap - r->len));
    if (n < 0) {
        int errnum;
        const char *msg = gzerror(r->gz, &errnum);
        return pst_err_set(err, PST_EIO, "%s: read failed: %s", r->path, msg);
    }
    r->eof = n == 0;
    r->len += (size_t)n;
    r->buf[r->len] = '\0';
    return PST_OK;
}

/* 1 and the next line (without '\n'; followed by '\n' or NUL), 0 at the end, or an error. */
static int text_line(pst_sparse_text_t *r, const char **line, size_t *len, pst_err_t *err)
{
    for (;;) {
        char *start = r->buf + r->pos;
        char *nl = memchr(start, '\n', r->len - r->pos);
        if (nl != NULL || (r->eof && r->pos < r->len)) {
            char *stop = nl ? nl : r->buf + r->len;
            *line = start;
            *len = (size_t)(stop - start);
            r->pos = (size_t)(stop - r->buf) + (nl ? 1 : 0);
            r->line_no++;
            return 1;
        }
        if (r->eof)
            return 0;
        int rc = text_fill(r, err);
        if (rc != PST_OK)
            return rc;
    }
}

/* 1 with the parsed row, 0 for a blank or comment line, or an error naming FILE:LINE. */
static int svm_line(pst_sparse_text_t *r, const char *s, size_t len, pst_sparse_row_t *row,
                    pst_err_t *err)
{
    if (!text_scratch(r, pst_libsvm_max_entries(len)))
        return pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", r->path, r->line_no);
    double label;
    size_t nnz;
    int rc = pst_libsvm_parse_line(s, len, &label, r->idx, r->val, &nnz, r->path, r->line_no, err);
    if (rc == 1) {
        row->nnz = (uint32_t)nnz;
        row->y = (float)label;
        row->label = label;
    }
    return rc;
}

static int tsv_line(pst_sparse_text_t *r, const char *s, size_t len, pst_sparse_row_t *row,
                    pst_err_t *err)
{
    if (len == 0 || (len == 1 && s[0] == '\r'))
        return 0;
    size_t nnz;
    int rc = pst_tsv_hashed_parse_line(&r->src->hash, s, len, &row->y, r->idx, r->val, &nnz,
                                       r->path, r->line_no, err);
    row->nnz = (uint32_t)nnz;
    row->label = row->y;
    return rc == PST_OK ? 1 : rc;
}

/* 1 and the next data row, 0 at the end of the file, or an error. */
int pst_sparse_text_row(pst_sparse_text_t *r, pst_sparse_row_t *row, pst_err_t *err)
{
    for (;;) {
        const char *line = NULL;
        size_t len = 0;
        int rc = text_line(r, &line, &len, err);
        if (rc <= 0)
            return rc;
        rc = r->src->format == PST_SPARSE_TSV_HASHED ? tsv_line(r, line, len, row, err)
                                                     : svm_line(r, line, len, row, err);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            row->id = r->rows++;
            row->idx = r->idx;
            row->val = r->val;
            return 1;
        }
    }
}
