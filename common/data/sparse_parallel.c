/* Sparse text in memory parsed by threads, one line-aligned byte range each, joined in file
 * order: the rows and the first error of the line-by-line reader, bit for bit. */
#include "common/data/sparsestream_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/data/libsvm.h"
#include "common/data/textfile.h"

/* One range's parse, then its share of the copy into the joined arrays. */
typedef struct range {
    const pst_sparse_source_t *src;
    unsigned n_ranges;     /* in the file */
    const char *data;      /* the whole text */
    const uint64_t *seeds; /* hashed TSV: the seed of each field */
    size_t len, begin, end;
    bool with_lines;
    /* results of the parse, local to the range */
    size_t n_lines; /* lines passed, blank and comment lines included */
    size_t n_rows, nnz;
    size_t cap_label, cap_line, cap_ptr, cap_col, cap_val; /* room in each array */
    size_t *row_ptr;  // (cap_ptr) 0, then the entries up to and including each row
    double *label;    // (cap_label) as written
    size_t *line;     // (cap_line) local line number of each row; with_lines only
    uint32_t *col;    // (cap_col)
    float *val;       // (cap_val)
    size_t n_columns; /* largest column + 1 */
    int rc;           /* the first failure: a parse error on line n_lines, or PST_ENOMEM */
    size_t bad_begin, bad_len;
    /* the copy: where this range's rows, entries and lines start in the whole */
    size_t row0, nnz0, line0;
    pst_data_csr_t *out;
} range_t;

static void range_free(range_t *r)
{
    free(r->row_ptr);
    free(r->label);
    free(r->line);
    free(r->col);
    free(r->val);
    r->row_ptr = r->line = NULL;
    r->label = NULL;
    r->col = NULL;
    r->val = NULL;
}

/* Grows *p to hold need elements, doubling from a first guess of first; false when out of
 * memory. Large arrays are offered transparent huge pages: on first touch every 4 KiB page
 * costs a fault, and the faults of a few hundred MB weigh as much as the parsing. */
static bool grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? 2 * *cap : first;
    if (cap2 < need)
        cap2 = need;
    void *q = realloc(*p, cap2 * elem);
    if (q == NULL)
        return false;
    pst_text_advise_huge(q, cap2 * elem);
    *p = q;
    *cap = cap2;
    return true;
}

/* Lines in the range: an upper bound of its rows. */
static size_t count_lines(const range_t *r)
{
    size_t n = 0;
    const char *p = r->data + r->begin, *end = r->data + r->end;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n + 1;
}

/* Room for one more row of up to max_entries entries. The first call sizes every array for
 * the whole range from its line count (a LIBSVM entry takes 4 bytes with its blank; a TSV row
 * at most its width): only the pages written are ever faulted in, and no array moves while the
 * other ranges run (a move of a mapping interrupts every thread of the process). */
static bool range_reserve(range_t *r, size_t max_entries)
{
    size_t need_rows = r->n_rows + 1, need_nnz = r->nnz + max_entries;
    if (need_rows <= r->cap_label && need_rows < r->cap_ptr && need_nnz <= r->cap_col &&
        need_nnz <= r->cap_val && (!r->with_lines || need_rows <= r->cap_line))
        return true;
    size_t lines = count_lines(r), bytes = r->end - r->begin;
    size_t rows0 = lines + 1,
           nnz0 = (r->src->format == PST_SPARSE_LIBSVM ? bytes / 4 + lines : lines * max_entries) +
                  max_entries;
    bool ok =
        grow((void **)&r->label, &r->cap_label, need_rows, sizeof *r->label, rows0) &&
        (!r->with_lines ||
         grow((void **)&r->line, &r->cap_line, need_rows, sizeof *r->line, rows0)) &&
        grow((void **)&r->row_ptr, &r->cap_ptr, need_rows + 1, sizeof *r->row_ptr, rows0 + 1) &&
        grow((void **)&r->col, &r->cap_col, need_nnz, sizeof *r->col, nnz0) &&
        grow((void **)&r->val, &r->cap_val, need_nnz, sizeof *r->val, nnz0);
    if (ok)
        r->row_ptr[0] = 0;
    return ok;
}

/* Parses line s[0..len) (s[len] never continues a number) numbered line_no: 1 with the row in
 * idx/val (room for pst_libsvm_max_entries(len) or the TSV width), 0 when blank, or an error. */
static int parse_line(const pst_sparse_source_t *src, const uint64_t *seeds, const char *s,
                      size_t len, size_t line_no, double *label, uint32_t *idx, float *val,
                      size_t *nnz, pst_err_t *err)
{
    if (src->format == PST_SPARSE_LIBSVM)
        return pst_libsvm_parse_line(s, len, label, idx, val, nnz, src->path, line_no, err);
    if (len == 0 || (len == 1 && s[0] == '\r'))
        return 0;
    float y;
    int rc =
        pst_tsv_hashed_parse_line(&src->hash, s, len, &y, idx, val, nnz, src->path, line_no, err);
    *label = y;
    return rc == PST_OK ? 1 : rc;
}

static size_t row_room(const pst_sparse_source_t *src, size_t len)
{
    return src->format == PST_SPARSE_LIBSVM ? pst_libsvm_max_entries(len)
                                            : src->hash.n_numeric + src->hash.n_categorical;
}

/* The last line of a text that does not end in '\n', copied with a '\n' after it: strtod may
 * look one byte past a field, and a mapped file has no byte there. NULL when out of memory. */
static char *terminated_copy(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\n';
    }
    return copy;
}

/* One line of the range: 1 with a row appended, 0 when blank, or an error (r->rc's code). */
static int range_line(range_t *r, const char *s, size_t len)
{
    if (!range_reserve(r, row_room(r->src, len)))
        return PST_ENOMEM;
    double label;
    size_t nnz = 0;
    pst_err_t scratch; /* messages are written again with the file's line number */
    int rc = parse_line(r->src, r->seeds, s, len, r->n_lines, &label, r->col + r->nnz,
                        r->val + r->nnz, &nnz, &scratch);
    if (rc != 1)
        return rc;
    if (nnz > 0 && (size_t)r->col[r->nnz + nnz - 1] + 1 > r->n_columns)
        r->n_columns = (size_t)r->col[r->nnz + nnz - 1] + 1;
    r->nnz += nnz;
    r->label[r->n_rows] = label;
    if (r->with_lines)
        r->line[r->n_rows] = r->n_lines;
    r->row_ptr[++r->n_rows] = r->nnz;
    return 1;
}

static void range_parse(void *arg)
{
    range_t *r = arg;
    const char *p = r->data + r->begin, *end = r->data + r->end;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        char *copy = NULL;
        if (nl == NULL && (copy = terminated_copy(p, len)) == NULL) {
            r->rc = PST_ENOMEM;
            return;
        }
        r->n_lines++;
        int rc = range_line(r, copy ? copy : p, len);
        free(copy);
        if (rc < 0) {
            r->rc = rc;
            r->bad_begin = (size_t)(p - r->data);
            r->bad_len = len;
            return;
        }
        p += len + 1;
    }
}

/* Copies the rows of the range into the joined arrays (unless they are its own). */
static void range_copy(void *arg)
{
    range_t *r = arg;
    pst_data_csr_t *c = r->out;
    if (r->n_ranges == 1)
        return;
    /* An empty range's arrays, and the joined ones when all are empty, may be NULL: neither
     * memcpy nor pointer arithmetic may see those, even for 0 bytes. */
    if (r->nnz > 0) {
        memcpy(c->col_idx + r->nnz0, r->col, r->nnz * sizeof *r->col);
        memcpy(c->val + r->nnz0, r->val, r->nnz * sizeof *r->val);
    }
    if (r->n_rows > 0)
        memcpy(c->raw + r->row0, r->label, r->n_rows * sizeof *r->label);
    for (size_t i = 0; i < r->n_rows; i++)
        c->row_ptr[r->row0 + i + 1] = r->nnz0 + r->row_ptr[i + 1];
    for (size_t i = 0; r->with_lines && i < r->n_rows; i++)
        c->lines[r->row0 + i] = r->line0 + r->line[i];
    range_free(r); /* the next range's copy runs beside this one: give the memory back now */
}

/* The first failure in file order, reported as the line-by-line reader reports it. */
static int first_error(const range_t *ranges, unsigned n, pst_err_t *err)
{
    size_t line0 = 0;
    for (unsigned k = 0; k < n; line0 += ranges[k++].n_lines) {
        const range_t *r = &ranges[k];
        if (r->rc == PST_OK)
            continue;
        size_t line_no = line0 + r->n_lines;
        if (r->rc == PST_ENOMEM)
            return pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", r->src->path, line_no);
        size_t room = row_room(r->src, r->bad_len);
        uint32_t *idx = malloc(room * sizeof *idx);
        float *val = malloc(room * sizeof *val);
        char *line = terminated_copy(r->data + r->bad_begin, r->bad_len);
        double label;
        size_t nnz;
        int rc =
            idx && val && line
                ? parse_line(r->src, NULL, line, r->bad_len, line_no, &label, idx, val, &nnz, err)
                : pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", r->src->path, line_no);
        free(idx);
        free(val);
        free(line);
        return rc < 0 ? rc : pst_err_set(err, r->rc, "%s:%zu: cannot parse", r->src->path, line_no);
    }
    return PST_OK;
}

/* Allocates b's arrays for every row of the ranges and sets where each range's share goes. */
static int join_layout(range_t *ranges, unsigned n, pst_sparse_csr_build_t *b, pst_err_t *err)
{
    size_t rows = 0, nnz = 0, lines = 0, columns = 0;
    for (unsigned k = 0; k < n; k++) {
        ranges[k].row0 = rows;
        ranges[k].nnz0 = nnz;
        ranges[k].line0 = lines;
        ranges[k].out = &b->csr;
        rows += ranges[k].n_rows;
        nnz += ranges[k].nnz;
        lines += ranges[k].n_lines;
        if (ranges[k].n_columns > columns)
            columns = ranges[k].n_columns;
    }
    range_t *r0 = &ranges[0];
    pst_data_csr_t *c = &b->csr;
    if (n == 1 && !range_reserve(r0, 1)) /* arrays even for a text without rows */
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", r0->src->path);
    if (n == 1) { /* one range: its arrays are the result (room past the rows is never touched) */
        *c = (pst_data_csr_t){.row_ptr = r0->row_ptr,
                              .raw = r0->label,
                              .lines = r0->line,
                              .col_idx = r0->col,
                              .val = r0->val};
        r0->row_ptr = r0->line = NULL;
        r0->label = NULL;
        r0->col = NULL;
        r0->val = NULL;
    } else { /* fresh arrays, filled by every range at once (a realloc might copy on one) */
        *c = (pst_data_csr_t){.row_ptr = malloc((rows + 1) * sizeof *c->row_ptr),
                              .raw = malloc((rows ? rows : 1) * sizeof *c->raw),
                              .lines = b->with_lines ? malloc((rows ? rows : 1) * sizeof *c->lines)
                                                     : NULL,
                              .col_idx = malloc((nnz ? nnz : 1) * sizeof *c->col_idx),
                              .val = malloc((nnz ? nnz : 1) * sizeof *c->val)};
        /* the copies write fresh pages: fewer faults in huge pages */
        if (c->row_ptr && c->raw && c->col_idx && c->val) {
            pst_text_advise_huge(c->row_ptr, (rows + 1) * sizeof *c->row_ptr);
            pst_text_advise_huge(c->raw, rows * sizeof *c->raw);
            pst_text_advise_huge(c->col_idx, nnz * sizeof *c->col_idx);
            pst_text_advise_huge(c->val, nnz * sizeof *c->val);
        }
    }
    if (!c->row_ptr || !c->raw || (b->with_lines && !c->lines) || !c->col_idx || !c->val)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu rows of %zu entries",
                           r0->src->path, rows, nnz);
    c->row_ptr[0] = 0;
    c->n_rows = rows;
    c->n_features = columns;
    b->nnz = nnz;
    b->cap_rows = rows;
    b->cap_nnz = nnz;
    return PST_OK;
}

int pst_sparse_parse_text(const pst_sparse_source_t *src, const char *data, size_t len,
                          unsigned n_threads, pst_sparse_csr_build_t *b, pst_err_t *err)
{
    unsigned n = pst_text_thread_count(n_threads, len);
    range_t *ranges = calloc(n, sizeof *ranges);
    bool tsv = src->format == PST_SPARSE_TSV_HASHED;
    uint64_t *seeds = tsv ? malloc((src->hash.n_numeric + src->hash.n_categorical) * 8) : NULL;
    if (ranges == NULL || (tsv && seeds == NULL)) {
        free(ranges);
        free(seeds);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", src->path);
    }
    if (tsv)
        pst_hash_spec_field_seeds(&src->hash, seeds);
    for (unsigned k = 0; k < n; k++)
        ranges[k] = (range_t){.src = src,
                              .data = data,
                              .seeds = seeds,
                              .len = len,
                              .n_ranges = n,
                              .begin = pst_text_range_start(data, len, k, n),
                              .end = pst_text_range_start(data, len, k + 1, n),
                              .with_lines = b->with_lines};
    pst_text_run_parallel(range_parse, ranges, sizeof *ranges, n);
    int rc = first_error(ranges, n, err);
    if (rc == PST_OK)
        rc = join_layout(ranges, n, b, err);
    if (rc == PST_OK)
        pst_text_run_parallel(range_copy, ranges, sizeof *ranges, n);
    for (unsigned k = 0; k < n; k++)
        range_free(&ranges[k]);
    free(ranges);
    free(seeds);
    if (rc != PST_OK)
        pst_sparse_csr_fini(b);
    return rc;
}
