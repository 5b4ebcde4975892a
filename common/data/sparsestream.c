/* Sparse streaming: text and cache readers, the cache writer, the shuffle buffer and batches. */
#include "common/data/sparsestream.h"

#include "common/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/log.h"
#include "common/rng.h"

#define CACHE_MAGIC "PSTCACHE"
#define CACHE_VERSION 1u
#define HEADER_BYTES 96
#define BLOCK_HEADER_BYTES 16
#define BLOCK_PAYLOAD_BYTES (1u << 20) /* a block closes once its payload reaches this */
#define BLOCK_MAX_ROWS 65536u
#define DEFAULT_WRITER_BUFFER (4u << 20)
#define DEFAULT_CHUNK (1u << 20)
#define DEFAULT_BATCH 256

/* ======================= atomic streaming writer ======================= */

struct pst_atomic_writer {
    int fd;
    char *path, *tmp;
    char *buf;
    size_t cap, len; /* buffer size, bytes buffered */
    uint64_t flushed;
};

static int writer_flush(pst_atomic_writer_t *w, pst_err_t *err)
{
    if (w->len > 0 && pst_write_all(w->fd, w->buf, w->len) != 0)
        return pst_err_set(err, PST_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->flushed += w->len;
    w->len = 0;
    return PST_OK;
}

int pst_atomic_writer_open(const char *path, size_t buffer_bytes, pst_atomic_writer_t **out,
                           pst_err_t *err)
{
    *out = NULL;
    pst_atomic_writer_t *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 32;
    if (w == NULL || (w->tmp = malloc(n)) == NULL || (w->path = strdup(path)) == NULL) {
        pst_atomic_writer_destroy(&w);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    w->fd = -1;
    w->cap = buffer_bytes ? buffer_bytes : DEFAULT_WRITER_BUFFER;
    snprintf(w->tmp, n, "%s.tmp.XXXXXX", path);
    w->buf = malloc(w->cap);
    if (w->buf == NULL) {
        pst_atomic_writer_destroy(&w);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    w->fd = mkstemp(w->tmp); /* a unique name: two writers of one path never share it */
    if (w->fd < 0) {
        int rc = pst_err_set(err, PST_EIO, "%s: cannot create: %s", path, strerror(errno));
        w->tmp[0] = '\0';
        pst_atomic_writer_destroy(&w);
        return rc;
    }
    fchmod(w->fd, 0644);
    *out = w;
    return PST_OK;
}

int pst_atomic_writer_write(pst_atomic_writer_t *w, const void *data, size_t len, pst_err_t *err)
{
    if (len > w->cap - w->len) {
        int rc = writer_flush(w, err);
        if (rc != PST_OK)
            return rc;
    }
    if (len >= w->cap) {
        if (pst_write_all(w->fd, data, len) != 0)
            return pst_err_set(err, PST_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
        w->flushed += len;
        return PST_OK;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    return PST_OK;
}

int pst_atomic_writer_reserve(pst_atomic_writer_t *w, size_t len, char **p, pst_err_t *err)
{
    if (len > w->cap)
        return pst_err_set(err, PST_EINVAL, "%s: reserve of %zu bytes exceeds the buffer", w->path,
                           len);
    if (len > w->cap - w->len) {
        int rc = writer_flush(w, err);
        if (rc != PST_OK)
            return rc;
    }
    *p = w->buf + w->len;
    return PST_OK;
}

void pst_atomic_writer_advance(pst_atomic_writer_t *w, size_t used)
{
    w->len += used;
}

uint64_t pst_atomic_writer_offset(const pst_atomic_writer_t *w)
{
    return w->flushed + w->len;
}

int pst_atomic_writer_patch(pst_atomic_writer_t *w, uint64_t offset, const void *data, size_t len,
                            pst_err_t *err)
{
    if (offset + len > pst_atomic_writer_offset(w))
        return pst_err_set(err, PST_EINVAL, "%s: patch beyond the written bytes", w->path);
    int rc = writer_flush(w, err);
    const char *p = data;
    while (rc == PST_OK && len > 0) {
        ssize_t n = pwrite(w->fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pst_err_set(err, PST_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
        p += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    return rc;
}

static void fsync_parent(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int pst_atomic_writer_commit(pst_atomic_writer_t **w_p, pst_err_t *err)
{
    pst_atomic_writer_t *w = *w_p;
    int rc = writer_flush(w, err);
    if (rc == PST_OK && fsync(w->fd) != 0)
        rc = pst_err_set(err, PST_EIO, "%s: fsync failed: %s", w->tmp, strerror(errno));
    if (close(w->fd) != 0 && rc == PST_OK)
        rc = pst_err_set(err, PST_EIO, "%s: close failed: %s", w->tmp, strerror(errno));
    w->fd = -1;
    if (rc == PST_OK && rename(w->tmp, w->path) != 0)
        rc = pst_err_set(err, PST_EIO, "%s: rename failed: %s", w->path, strerror(errno));
    if (rc == PST_OK) {
        fsync_parent(w->path);
        w->tmp[0] = '\0'; /* nothing left to unlink */
    }
    pst_atomic_writer_destroy(w_p);
    return rc;
}

void pst_atomic_writer_destroy(pst_atomic_writer_t **w_p)
{
    if (w_p == NULL || *w_p == NULL)
        return;
    pst_atomic_writer_t *w = *w_p;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp != NULL && w->tmp[0] != '\0' && w->path != NULL)
        unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w->buf);
    free(w);
    *w_p = NULL;
}

/* ======================= cache header ======================= */

typedef struct cache_header {
    uint32_t format;
    uint64_t digest, src_size;
    int64_t mtime_s, mtime_ns;
    uint64_t n_rows, nnz, n_blocks, n_features;
    uint32_t max_block; /* largest block payload in bytes */
} cache_header_t;

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t crc_of(const void *p, size_t len)
{
    return (uint32_t)crc32(0L, p, (uInt)len);
}

static void header_encode(const cache_header_t *h, unsigned char out[HEADER_BYTES])
{
    memset(out, 0, HEADER_BYTES);
    memcpy(out, CACHE_MAGIC, 8);
    put_u32(out + 8, CACHE_VERSION);
    put_u32(out + 12, h->format);
    put_u64(out + 16, h->digest);
    put_u64(out + 24, h->src_size);
    put_u64(out + 32, (uint64_t)h->mtime_s);
    put_u64(out + 40, (uint64_t)h->mtime_ns);
    put_u64(out + 48, h->n_rows);
    put_u64(out + 56, h->nnz);
    put_u64(out + 64, h->n_blocks);
    put_u64(out + 72, h->n_features);
    put_u32(out + 80, h->max_block);
    put_u32(out + 92, crc_of(out, 92));
}

/* NULL when the header is intact, else the reason. */
static const char *header_decode(const unsigned char in[HEADER_BYTES], cache_header_t *h)
{
    if (memcmp(in, CACHE_MAGIC, 8) != 0)
        return "bad magic";
    if (get_u32(in + 92) != crc_of(in, 92))
        return "header checksum mismatch";
    if (get_u32(in + 8) != CACHE_VERSION)
        return "unsupported version";
    h->format = get_u32(in + 12);
    h->digest = get_u64(in + 16);
    h->src_size = get_u64(in + 24);
    h->mtime_s = (int64_t)get_u64(in + 32);
    h->mtime_ns = (int64_t)get_u64(in + 40);
    h->n_rows = get_u64(in + 48);
    h->nnz = get_u64(in + 56);
    h->n_blocks = get_u64(in + 64);
    h->n_features = get_u64(in + 72);
    h->max_block = get_u32(in + 80);
    if (h->n_rows >> 56 || h->nnz >> 56 || h->n_blocks > h->n_rows)
        return "implausible counts";
    return NULL;
}

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static uint64_t source_digest(const pst_sparse_source_t *src)
{
    return src->format == PST_SPARSE_TSV_HASHED ? pst_hash_spec_digest(&src->hash) : 0;
}

/* The identity of the source a cache must match: format, spec digest, size and mtime. */
static int source_identity(const pst_sparse_source_t *src, cache_header_t *h, pst_err_t *err)
{
    struct stat sb;
    if (stat(src->path, &sb) != 0)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", src->path, strerror(errno));
    memset(h, 0, sizeof *h);
    h->format = (uint32_t)src->format;
    h->digest = source_digest(src);
    h->src_size = (uint64_t)sb.st_size;
    h->mtime_s = (int64_t)sb.st_mtim.tv_sec;
    h->mtime_ns = (int64_t)sb.st_mtim.tv_nsec;
    return PST_OK;
}

char *pst_sparse_cache_path(const char *source_path)
{
    size_t n = strlen(source_path) + sizeof ".pstcache";
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s.pstcache", source_path);
    return p;
}

static uint64_t expected_cache_size(const cache_header_t *h)
{
    return HEADER_BYTES + h->n_blocks * BLOCK_HEADER_BYTES + 8 * h->n_rows + 8 * h->nnz;
}

/* Opens and checks the cache at path for src; on PST_OK *f is positioned at the first block. */
static int cache_open_checked(const pst_sparse_source_t *src, const char *path, FILE **f,
                              cache_header_t *h, pst_err_t *err)
{
    cache_header_t want;
    int rc = source_identity(src, &want, err);
    if (rc != PST_OK)
        return rc;
    *f = fopen(path, "rb");
    if (*f == NULL)
        return pst_err_set(err, PST_ENOTFOUND, "%s: no cache", path);
    unsigned char raw[HEADER_BYTES];
    struct stat sb;
    const char *why = NULL;
    if (fread(raw, 1, HEADER_BYTES, *f) != HEADER_BYTES)
        why = "truncated header";
    else if ((why = header_decode(raw, h)) != NULL)
        ;
    else if (h->format != want.format || h->digest != want.digest)
        why = "built with another format or hash spec";
    else if (h->src_size != want.src_size || h->mtime_s != want.mtime_s ||
             h->mtime_ns != want.mtime_ns)
        why = "source changed (size or mtime)";
    else if (fstat(fileno(*f), &sb) != 0 || (uint64_t)sb.st_size != expected_cache_size(h))
        why = "file length does not match its header";
    else if (!host_is_little_endian())
        why = "caches are little-endian only";
    if (why == NULL)
        return PST_OK;
    fclose(*f);
    *f = NULL;
    return pst_err_set(err, PST_EFORMAT, "%s: %s", path, why);
}

int pst_sparse_cache_check(const pst_sparse_source_t *src, pst_err_t *err)
{
    char *path = pst_sparse_cache_path(src->path);
    if (path == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    FILE *f = NULL;
    cache_header_t h;
    int rc = cache_open_checked(src, path, &f, &h, err);
    if (f != NULL)
        fclose(f);
    free(path);
    return rc;
}

/* ======================= rows from text ======================= */

/* One row, viewed in a reader's storage until the reader's next call. */
typedef struct row_view {
    uint32_t nnz;
    float y;
    uint64_t id;
    const uint32_t *idx; // (nnz)
    const float *val;    // (nnz)
} row_view_t;

typedef struct text_reader {
    gzFile gz;
    const char *path;
    const pst_sparse_source_t *src;
    char *buf;            // (cap + 1), NUL after the data
    size_t cap, len, pos; /* buffer size, bytes in it, start of the unread part */
    bool eof;
    size_t line_no;
    uint64_t rows; /* data rows parsed so far */
    uint32_t *idx; // (scratch_cap) entries of the current row
    float *val;    // (scratch_cap)
    size_t scratch_cap;
} text_reader_t;

static bool grow_array(void **p, size_t *cap, size_t need, size_t elem)
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

static bool text_scratch(text_reader_t *r, size_t need)
{
    size_t cap = r->scratch_cap;
    return grow_array((void **)&r->idx, &cap, need, sizeof *r->idx) &&
           grow_array((void **)&r->val, &r->scratch_cap, need, sizeof *r->val);
}

static void text_close(text_reader_t *r)
{
    if (r->gz != NULL)
        gzclose(r->gz);
    free(r->buf);
    free(r->idx);
    free(r->val);
    memset(r, 0, sizeof *r);
}

static int text_open(text_reader_t *r, const pst_sparse_source_t *src, size_t chunk, pst_err_t *err)
{
    memset(r, 0, sizeof *r);
    r->src = src;
    r->path = src->path;
    r->cap = chunk;
    r->buf = malloc(chunk + 1);
    size_t width =
        src->format == PST_SPARSE_TSV_HASHED ? src->hash.n_numeric + src->hash.n_categorical : 64;
    if (r->buf == NULL || !text_scratch(r, width)) {
        text_close(r);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", src->path);
    }
    r->buf[0] = '\0';
    r->gz = gzopen(src->path, "rb");
    if (r->gz == NULL) {
        int rc = pst_err_set(err, PST_EIO, "%s: cannot open: %s", src->path, strerror(errno));
        text_close(r);
        return rc;
    }
    return PST_OK;
}

/* Reads more text after moving the unread part to the front. */
static int text_fill(text_reader_t *r, pst_err_t *err)
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
static int text_line(text_reader_t *r, const char **line, size_t *len, pst_err_t *err)
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

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A finite float-range number filling s[0..len); plain integers skip strtod. s[len] must end
 * any number (a blank, ':', '\n' or NUL). */
static bool parse_value(const char *s, size_t len, double *v)
{
    size_t i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (len > i && len - i <= 15) {
        double acc = 0;
        size_t k = i;
        while (k < len && s[k] >= '0' && s[k] <= '9')
            acc = acc * 10 + (s[k++] - '0');
        if (k == len) {
            *v = s[0] == '-' ? -acc : acc;
            return true;
        }
    }
    if (len == 0 || is_blank(s[0]))
        return false;
    char *stop;
    *v = strtod(s, &stop);
    return stop == s + len && isfinite(*v) && fabs(*v) <= FLT_MAX;
}

static int svm_bad(const text_reader_t *r, const char *tok, size_t len, const char *why,
                   pst_err_t *err)
{
    return pst_err_set(err, PST_EFORMAT, "%s:%zu: bad token '%.*s': %s", r->path, r->line_no,
                       (int)(len > 64 ? 64 : len), tok, why);
}

/* "idx:val" (idx 1-based, above *prev) into entry n of the scratch row. */
static int svm_pair(text_reader_t *r, const char *tok, size_t len, size_t n, uint64_t *prev,
                    pst_err_t *err)
{
    uint64_t index = 0;
    size_t i = 0;
    for (; i < len && tok[i] >= '0' && tok[i] <= '9'; i++)
        if (index <= UINT32_MAX) /* saturates above, still reported as too large */
            index = index * 10 + (uint64_t)(tok[i] - '0');
    if (i == 0 || i >= len || tok[i] != ':')
        return svm_bad(r, tok, len, "expected idx:value", err);
    if (index == 0)
        return svm_bad(r, tok, len, "feature index 0 (indices are 1-based)", err);
    if (index > UINT32_MAX)
        return svm_bad(r, tok, len, "feature index too large", err);
    if (index <= *prev)
        return svm_bad(r, tok, len, "feature indices must be strictly increasing", err);
    double v;
    if (!parse_value(tok + i + 1, len - i - 1, &v))
        return svm_bad(r, tok, len, "non-numeric or non-finite value", err);
    if (!text_scratch(r, n + 1))
        return pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", r->path, r->line_no);
    r->idx[n] = (uint32_t)(index - 1);
    r->val[n] = (float)v;
    *prev = index;
    return PST_OK;
}

/* 1 with the parsed row, 0 for a blank or comment line, or an error naming FILE:LINE. */
static int svm_line(text_reader_t *r, const char *s, size_t len, row_view_t *row, pst_err_t *err)
{
    const char *hash = memchr(s, '#', len);
    const char *p = s, *end = hash ? hash : s + len;
    while (p < end && is_blank(*p))
        p++;
    if (p == end)
        return 0;
    const char *tok = p;
    while (p < end && !is_blank(*p))
        p++;
    double label;
    if (!parse_value(tok, (size_t)(p - tok), &label))
        return svm_bad(r, tok, (size_t)(p - tok), "label is not a finite number", err);
    size_t n = 0;
    uint64_t prev = 0;
    for (;;) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            break;
        tok = p;
        while (p < end && !is_blank(*p))
            p++;
        int rc = svm_pair(r, tok, (size_t)(p - tok), n++, &prev, err);
        if (rc != PST_OK)
            return rc;
    }
    row->nnz = (uint32_t)n;
    row->y = (float)label;
    return 1;
}

static int tsv_line(text_reader_t *r, const char *s, size_t len, row_view_t *row, pst_err_t *err)
{
    if (len == 0 || (len == 1 && s[0] == '\r'))
        return 0;
    size_t nnz;
    int rc = pst_tsv_hashed_parse_line(&r->src->hash, s, len, &row->y, r->idx, r->val, &nnz,
                                       r->path, r->line_no, err);
    row->nnz = (uint32_t)nnz;
    return rc == PST_OK ? 1 : rc;
}

/* 1 and the next data row, 0 at the end of the file, or an error. */
static int text_row(text_reader_t *r, row_view_t *row, pst_err_t *err)
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

/* ======================= rows from the cache ======================= */

#define CACHE_CORRUPT 1000 /* internal: a block failed its checks */

typedef struct cache_reader {
    FILE *f;
    cache_header_t h;
    unsigned char *block; // (h.max_block) payload of the current block
    uint32_t rows, nnz;   /* of the current block */
    uint32_t row_pos;     /* next row in the block */
    size_t entry_pos;     /* its first entry */
    uint64_t blocks_read, rows_done;
    const uint32_t *row_nnz; // (rows)
    const float *y;          // (rows)
    const uint32_t *col;     // (nnz)
    const float *val;        // (nnz)
} cache_reader_t;

static void cache_close(cache_reader_t *c)
{
    if (c->f != NULL)
        fclose(c->f);
    free(c->block);
    memset(c, 0, sizeof *c);
}

static int cache_open(cache_reader_t *c, const pst_sparse_source_t *src, const char *path,
                      pst_err_t *err)
{
    memset(c, 0, sizeof *c);
    int rc = cache_open_checked(src, path, &c->f, &c->h, err);
    if (rc != PST_OK)
        return rc;
    c->block = malloc(c->h.max_block ? c->h.max_block : 1);
    if (c->block == NULL) {
        cache_close(c);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    setvbuf(c->f, NULL, _IONBF, 0); /* payloads are read whole into c->block */
    return PST_OK;
}

/* PST_OK with the next block loaded, 0 rows at the end, or CACHE_CORRUPT. */
static int cache_load_block(cache_reader_t *c)
{
    c->rows = c->nnz = c->row_pos = 0;
    c->entry_pos = 0;
    if (c->blocks_read == c->h.n_blocks)
        return c->rows_done == c->h.n_rows ? PST_OK : CACHE_CORRUPT;
    unsigned char bh[BLOCK_HEADER_BYTES];
    if (fread(bh, 1, sizeof bh, c->f) != sizeof bh)
        return CACHE_CORRUPT;
    uint32_t rows = get_u32(bh), nnz = get_u32(bh + 4), crc = get_u32(bh + 8);
    uint64_t bytes = 8 * (uint64_t)rows + 8 * (uint64_t)nnz;
    if (rows == 0 || bytes > c->h.max_block || c->rows_done + rows > c->h.n_rows)
        return CACHE_CORRUPT;
    if (fread(c->block, 1, bytes, c->f) != bytes || crc_of(c->block, bytes) != crc)
        return CACHE_CORRUPT;
    c->rows = rows;
    c->nnz = nnz;
    c->blocks_read++;
    c->row_nnz = (const uint32_t *)c->block;
    c->y = (const float *)(c->block + 4 * (size_t)rows);
    c->col = (const uint32_t *)(c->block + 8 * (size_t)rows);
    c->val = (const float *)(c->block + 8 * (size_t)rows + 4 * (size_t)nnz);
    return PST_OK;
}

/* 1 and the next row, 0 at the end, or CACHE_CORRUPT. */
static int cache_row(cache_reader_t *c, row_view_t *row)
{
    if (c->row_pos == c->rows) {
        int rc = cache_load_block(c);
        if (rc != PST_OK)
            return rc;
        if (c->rows == 0)
            return 0;
    }
    uint32_t n = c->row_nnz[c->row_pos];
    if (c->entry_pos + n > c->nnz)
        return CACHE_CORRUPT;
    row->nnz = n;
    row->y = c->y[c->row_pos];
    row->id = c->rows_done++;
    row->idx = c->col + c->entry_pos;
    row->val = c->val + c->entry_pos;
    c->entry_pos += n;
    c->row_pos++;
    return 1;
}

/* ======================= cache writer ======================= */

typedef struct cache_writer {
    pst_atomic_writer_t *w;
    cache_header_t h; /* source identity, then totals */
    size_t rows, nnz; /* in the open block */
    size_t cap_rows, cap_nnz;
    uint32_t *row_nnz; // (cap_rows)
    float *y;          // (cap_rows)
    uint32_t *col;     // (cap_nnz)
    float *val;        // (cap_nnz)
} cache_writer_t;

static void cache_writer_destroy(cache_writer_t **cw_p)
{
    cache_writer_t *cw = *cw_p;
    if (cw == NULL)
        return;
    pst_atomic_writer_destroy(&cw->w);
    free(cw->row_nnz);
    free(cw->y);
    free(cw->col);
    free(cw->val);
    free(cw);
    *cw_p = NULL;
}

static int cache_writer_new(const char *path, const cache_header_t *identity, cache_writer_t **out,
                            pst_err_t *err)
{
    cache_writer_t *cw = calloc(1, sizeof *cw);
    if (cw == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    cw->h = *identity;
    unsigned char zero[HEADER_BYTES] = {0};
    int rc = pst_atomic_writer_open(path, 0, &cw->w, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(cw->w, zero, sizeof zero, err);
    if (rc != PST_OK)
        cache_writer_destroy(&cw);
    *out = cw;
    return rc;
}

static int cache_writer_flush(cache_writer_t *cw, pst_err_t *err)
{
    if (cw->rows == 0)
        return PST_OK;
    size_t r = cw->rows, n = cw->nnz, bytes = 8 * r + 8 * n;
    uLong crc = crc32(0L, (const Bytef *)cw->row_nnz, (uInt)(4 * r));
    crc = crc32(crc, (const Bytef *)cw->y, (uInt)(4 * r));
    crc = crc32(crc, (const Bytef *)cw->col, (uInt)(4 * n));
    crc = crc32(crc, (const Bytef *)cw->val, (uInt)(4 * n));
    unsigned char bh[BLOCK_HEADER_BYTES] = {0};
    put_u32(bh, (uint32_t)r);
    put_u32(bh + 4, (uint32_t)n);
    put_u32(bh + 8, (uint32_t)crc);
    int rc = pst_atomic_writer_write(cw->w, bh, sizeof bh, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(cw->w, cw->row_nnz, 4 * r, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(cw->w, cw->y, 4 * r, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(cw->w, cw->col, 4 * n, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(cw->w, cw->val, 4 * n, err);
    if (bytes > cw->h.max_block)
        cw->h.max_block = (uint32_t)bytes;
    cw->h.n_blocks++;
    cw->rows = cw->nnz = 0;
    return rc;
}

static int cache_writer_add(cache_writer_t *cw, const row_view_t *row, pst_err_t *err)
{
    size_t cap_rows = cw->cap_rows, cap_nnz = cw->cap_nnz;
    if (!grow_array((void **)&cw->row_nnz, &cap_rows, cw->rows + 1, 4) ||
        !grow_array((void **)&cw->y, &cw->cap_rows, cw->rows + 1, 4) ||
        !grow_array((void **)&cw->col, &cap_nnz, cw->nnz + row->nnz, 4) ||
        !grow_array((void **)&cw->val, &cw->cap_nnz, cw->nnz + row->nnz, 4))
        return pst_err_set(err, PST_ENOMEM, "cache: out of memory");
    cw->row_nnz[cw->rows] = row->nnz;
    cw->y[cw->rows++] = row->y;
    memcpy(cw->col + cw->nnz, row->idx, 4 * (size_t)row->nnz);
    memcpy(cw->val + cw->nnz, row->val, 4 * (size_t)row->nnz);
    cw->nnz += row->nnz;
    cw->h.n_rows++;
    cw->h.nnz += row->nnz;
    if (8 * (cw->rows + cw->nnz) >= BLOCK_PAYLOAD_BYTES || cw->rows >= BLOCK_MAX_ROWS)
        return cache_writer_flush(cw, err);
    return PST_OK;
}

/* Writes the last block and the header, then publishes the cache. Destroys *cw_p. */
static int cache_writer_commit(cache_writer_t **cw_p, uint64_t n_features, pst_err_t *err)
{
    cache_writer_t *cw = *cw_p;
    cw->h.n_features = n_features;
    unsigned char raw[HEADER_BYTES];
    int rc = cache_writer_flush(cw, err);
    header_encode(&cw->h, raw);
    if (rc == PST_OK)
        rc = pst_atomic_writer_patch(cw->w, 0, raw, sizeof raw, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_commit(&cw->w, err);
    cache_writer_destroy(cw_p);
    return rc;
}

/* ======================= the stream ======================= */

typedef struct slot {
    uint32_t nnz, cap;
    float y;
    uint64_t id;
    uint32_t *idx; // (cap)
    float *val;    // (cap)
} slot_t;

struct pst_sparse_stream {
    pst_sparse_source_t src; /* path points to path_copy */
    char *path_copy, *cache_path;
    pst_sparse_stream_opts_t opts;
    text_reader_t text;
    bool text_open;
    cache_reader_t cache;
    bool cache_open;
    cache_writer_t *tee; /* the cache being written while the text is read */
    uint64_t skip_until; /* text rows before this id were already served from the cache */
    bool source_done;
    slot_t *slots; // (n_slots) the shuffle buffer; slots[0..held) are full
    size_t n_slots, held;
    pst_rng_t rng;
    pst_sparse_stream_batch_t batch;
    size_t batch_nnz_cap;
    size_t max_col; /* largest 0-based column + 1 seen */
    pst_sparse_stream_stats_t stats;
};

static void close_sources(pst_sparse_stream_t *s)
{
    if (s->text_open)
        text_close(&s->text);
    if (s->cache_open)
        cache_close(&s->cache);
    s->text_open = s->cache_open = false;
    cache_writer_destroy(&s->tee);
}

/* Opens the text, writing a new cache beside it when caching is on and none is usable. */
static int open_text(pst_sparse_stream_t *s, bool write_cache, pst_err_t *err)
{
    cache_header_t identity;
    int rc = source_identity(&s->src, &identity, err);
    if (rc == PST_OK)
        rc = text_open(&s->text, &s->src, s->opts.chunk_bytes, err);
    if (rc != PST_OK)
        return rc;
    s->text_open = true;
    if (write_cache) {
        pst_err_t werr;
        if (cache_writer_new(s->cache_path, &identity, &s->tee, &werr) != PST_OK)
            pst_warn("not caching %s: %s", s->src.path, werr.msg);
    }
    return PST_OK;
}

static int begin_epoch(pst_sparse_stream_t *s, uint64_t epoch, pst_err_t *err)
{
    close_sources(s);
    s->held = 0;
    s->source_done = false;
    s->skip_until = 0;
    s->stats.epoch = epoch;
    s->stats.from_cache = false;
    s->stats.rows_held = 0;
    pst_rng_init(&s->rng, pst_rng_derive(s->opts.seed, epoch));
    if (!s->opts.use_cache || !host_is_little_endian())
        return open_text(s, false, err);
    pst_err_t cerr;
    int rc = cache_open(&s->cache, &s->src, s->cache_path, &cerr);
    if (rc == PST_OK) {
        s->cache_open = s->stats.from_cache = true;
        if (s->cache.h.n_features > s->max_col)
            s->max_col = (size_t)s->cache.h.n_features;
        return PST_OK;
    }
    if (rc == PST_EFORMAT) {
        pst_info("rebuilding cache: %s", cerr.msg);
        s->stats.caches_rejected++;
    } else if (rc != PST_ENOTFOUND) {
        return pst_err_set(err, rc, "%s", cerr.msg);
    }
    return open_text(s, true, err);
}

/* A corrupt cache block: delete the cache and continue this epoch from the text. */
static int fall_back_to_text(pst_sparse_stream_t *s, pst_err_t *err)
{
    uint64_t done = s->cache.rows_done;
    pst_warn("%s: block %llu of %llu is corrupt; deleting the cache and reading %s", s->cache_path,
             (unsigned long long)s->cache.blocks_read + 1, (unsigned long long)s->cache.h.n_blocks,
             s->src.path);
    cache_close(&s->cache);
    s->cache_open = s->stats.from_cache = false;
    s->stats.caches_rejected++;
    unlink(s->cache_path);
    s->skip_until = done;
    return open_text(s, false, err);
}

static int finish_text(pst_sparse_stream_t *s, pst_err_t *err)
{
    if (s->tee == NULL)
        return PST_OK;
    pst_err_t werr;
    if (cache_writer_commit(&s->tee, s->max_col, &werr) == PST_OK)
        s->stats.caches_written++;
    else
        pst_warn("not caching %s: %s", s->src.path, werr.msg);
    return PST_OK;
}

/* 1 and the next source row in *row, 0 at the end of the source, or an error. */
static int read_row(pst_sparse_stream_t *s, row_view_t *row, pst_err_t *err)
{
    if (s->cache_open) {
        int rc = cache_row(&s->cache, row);
        if (rc != CACHE_CORRUPT)
            return rc;
        rc = fall_back_to_text(s, err);
        if (rc != PST_OK)
            return rc;
    }
    for (;;) {
        int rc = text_row(&s->text, row, err);
        if (rc == 0)
            return finish_text(s, err);
        if (rc < 0)
            return rc;
        if (row->id < s->skip_until)
            continue;
        pst_err_t werr;
        if (s->tee != NULL && cache_writer_add(s->tee, row, &werr) != PST_OK) {
            pst_warn("not caching %s: %s", s->src.path, werr.msg);
            cache_writer_destroy(&s->tee);
        }
        return 1;
    }
}

static int fill_slot(pst_sparse_stream_t *s, slot_t *slot, pst_err_t *err)
{
    row_view_t row;
    int rc = read_row(s, &row, err);
    if (rc <= 0)
        return rc;
    if (row.nnz > slot->cap) {
        uint32_t *idx = realloc(slot->idx, row.nnz * sizeof *idx);
        float *val = idx ? realloc(slot->val, row.nnz * sizeof *val) : NULL;
        if (idx)
            slot->idx = idx;
        if (val == NULL)
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", s->src.path);
        slot->val = val;
        slot->cap = row.nnz;
    }
    memcpy(slot->idx, row.idx, row.nnz * sizeof *row.idx);
    memcpy(slot->val, row.val, row.nnz * sizeof *row.val);
    slot->nnz = row.nnz;
    slot->y = row.y;
    slot->id = row.id;
    s->stats.rows_read++;
    if (row.nnz > s->stats.max_row_nnz)
        s->stats.max_row_nnz = row.nnz;
    if (row.nnz > 0 && (size_t)row.idx[row.nnz - 1] + 1 > s->max_col)
        s->max_col = (size_t)row.idx[row.nnz - 1] + 1;
    return 1;
}

static int append_to_batch(pst_sparse_stream_t *s, const slot_t *slot, pst_err_t *err)
{
    pst_sparse_stream_batch_t *b = &s->batch;
    size_t cap = s->batch_nnz_cap;
    if (!grow_array((void **)&b->col_idx, &cap, b->nnz + slot->nnz, sizeof *b->col_idx) ||
        !grow_array((void **)&b->val, &s->batch_nnz_cap, b->nnz + slot->nnz, sizeof *b->val))
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory for a batch", s->src.path);
    memcpy(b->col_idx + b->nnz, slot->idx, slot->nnz * sizeof *slot->idx);
    memcpy(b->val + b->nnz, slot->val, slot->nnz * sizeof *slot->val);
    b->nnz += slot->nnz;
    b->y[b->n_rows] = slot->y;
    b->row_id[b->n_rows++] = slot->id;
    b->row_ptr[b->n_rows] = b->nnz;
    return PST_OK;
}

static void swap_slots(slot_t *a, slot_t *b)
{
    slot_t t = *a;
    *a = *b;
    *b = t;
}

/* Moves one row through the shuffle buffer into the batch: 1, 0 when the epoch is over. */
static int take_row(pst_sparse_stream_t *s, pst_err_t *err)
{
    while (!s->source_done && s->held < s->n_slots) {
        int rc = fill_slot(s, &s->slots[s->held], err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            s->source_done = true;
        else if (++s->held > s->stats.max_rows_held)
            s->stats.max_rows_held = s->held;
    }
    if (s->held == 0)
        return 0;
    size_t j = s->held == 1 ? 0 : (size_t)pst_rng_below(&s->rng, s->held);
    int rc = append_to_batch(s, &s->slots[j], err);
    if (rc != PST_OK)
        return rc;
    if (!s->source_done) {
        rc = fill_slot(s, &s->slots[j], err);
        if (rc != 0)
            return rc < 0 ? rc : 1;
        s->source_done = true;
    }
    swap_slots(&s->slots[j], &s->slots[--s->held]);
    return 1;
}

int pst_sparse_stream_next(pst_sparse_stream_t *s, const pst_sparse_stream_batch_t **batch,
                           pst_err_t *err)
{
    pst_sparse_stream_batch_t *b = &s->batch;
    b->n_rows = b->nnz = 0;
    b->row_ptr[0] = 0;
    *batch = b;
    while (b->n_rows < s->opts.batch_rows) {
        int rc = take_row(s, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
    }
    s->stats.rows_held = s->held;
    return PST_OK;
}

int pst_sparse_stream_rewind(pst_sparse_stream_t *s, pst_err_t *err)
{
    return begin_epoch(s, s->stats.epoch + 1, err);
}

void pst_sparse_stream_stats(const pst_sparse_stream_t *s, pst_sparse_stream_stats_t *stats)
{
    *stats = s->stats;
    stats->n_features = s->src.format == PST_SPARSE_TSV_HASHED
                            ? pst_hash_spec_n_features(&s->src.hash)
                            : s->max_col;
}

void pst_sparse_stream_destroy(pst_sparse_stream_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_sparse_stream_t *s = *self_p;
    close_sources(s);
    for (size_t i = 0; s->slots != NULL && i < s->n_slots; i++) {
        free(s->slots[i].idx);
        free(s->slots[i].val);
    }
    free(s->slots);
    free(s->batch.row_ptr);
    free(s->batch.col_idx);
    free(s->batch.val);
    free(s->batch.y);
    free(s->batch.row_id);
    free(s->path_copy);
    free(s->cache_path);
    free(s);
    *self_p = NULL;
}

static int check_source(const pst_sparse_source_t *src, pst_err_t *err)
{
    if (src->path == NULL || src->path[0] == '\0')
        return pst_err_set(err, PST_EINVAL, "no data path");
    if (src->format == PST_SPARSE_TSV_HASHED) {
        int rc = pst_hash_spec_check(&src->hash, err);
        return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", src->path);
    }
    if (src->format != PST_SPARSE_LIBSVM)
        return pst_err_set(err, PST_EINVAL, "%s: unknown format %d", src->path, (int)src->format);
    return PST_OK;
}

static bool alloc_stream(pst_sparse_stream_t *s, const pst_sparse_source_t *src)
{
    size_t rows = s->opts.batch_rows;
    s->path_copy = strdup(src->path);
    s->cache_path = pst_sparse_cache_path(src->path);
    s->slots = calloc(s->n_slots, sizeof *s->slots);
    s->batch.row_ptr = malloc((rows + 1) * sizeof *s->batch.row_ptr);
    s->batch.y = malloc(rows * sizeof *s->batch.y);
    s->batch.row_id = malloc(rows * sizeof *s->batch.row_id);
    return s->path_copy && s->cache_path && s->slots && s->batch.row_ptr && s->batch.y &&
           s->batch.row_id;
}

int pst_sparse_stream_open(const pst_sparse_source_t *src, const pst_sparse_stream_opts_t *opts,
                           pst_sparse_stream_t **out, pst_err_t *err)
{
    *out = NULL;
    int rc = check_source(src, err);
    if (rc != PST_OK)
        return rc;
    pst_sparse_stream_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", src->path);
    s->opts = *opts;
    if (s->opts.batch_rows == 0)
        s->opts.batch_rows = DEFAULT_BATCH;
    if (s->opts.chunk_bytes == 0)
        s->opts.chunk_bytes = DEFAULT_CHUNK;
    s->n_slots = opts->buffer_rows > 1 ? opts->buffer_rows : 1;
    if (!alloc_stream(s, src)) {
        pst_sparse_stream_destroy(&s);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory for the shuffle buffer", src->path);
    }
    s->src = *src;
    s->src.path = s->path_copy;
    rc = begin_epoch(s, 0, err);
    if (rc != PST_OK)
        pst_sparse_stream_destroy(&s);
    *out = s;
    return rc;
}

/* ======================= whole-file load ======================= */

typedef struct load_build {
    size_t n_rows, nnz, cap_ptr, cap_rows, cap_nnz;
    size_t *row_ptr;   // (cap_rows + 1)
    uint32_t *col_idx; // (cap_nnz)
    float *val;        // (cap_nnz)
    double *raw;       // (cap_rows) labels as written
} load_build_t;

static int load_append(load_build_t *lb, const pst_sparse_stream_batch_t *b, pst_err_t *err)
{
    size_t cap_nnz = lb->cap_nnz;
    if (!grow_array((void **)&lb->row_ptr, &lb->cap_ptr, lb->n_rows + b->n_rows + 1,
                    sizeof *lb->row_ptr) ||
        !grow_array((void **)&lb->raw, &lb->cap_rows, lb->n_rows + b->n_rows, sizeof *lb->raw) ||
        !grow_array((void **)&lb->col_idx, &cap_nnz, lb->nnz + b->nnz, sizeof *lb->col_idx) ||
        !grow_array((void **)&lb->val, &lb->cap_nnz, lb->nnz + b->nnz, sizeof *lb->val))
        return pst_err_set(err, PST_ENOMEM, "out of memory loading %zu rows", lb->n_rows);
    memcpy(lb->col_idx + lb->nnz, b->col_idx, b->nnz * sizeof *b->col_idx);
    memcpy(lb->val + lb->nnz, b->val, b->nnz * sizeof *b->val);
    lb->row_ptr[0] = 0;
    for (size_t i = 0; i < b->n_rows; i++) {
        lb->raw[lb->n_rows + i] = b->y[i];
        lb->row_ptr[lb->n_rows + i + 1] = lb->nnz + b->row_ptr[i + 1];
    }
    lb->n_rows += b->n_rows;
    lb->nnz += b->nnz;
    return PST_OK;
}

static int load_finish(load_build_t *lb, size_t n_features, const pst_sparse_source_t *src,
                       const pst_data_spec_t *labels, pst_dataset_t **out, pst_err_t *err)
{
    if (lb->n_rows == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: no data rows", src->path);
    pst_dataset_t *d = pst_dataset_new(lb->n_rows, 0, PST_TASK_REGRESSION);
    if (d == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", src->path);
    free(d->x);
    d->x = NULL;
    d->n_features = n_features;
    d->row_ptr = lb->row_ptr;
    d->col_idx = lb->col_idx;
    d->val = lb->val;
    lb->row_ptr = NULL;
    lb->col_idx = NULL;
    lb->val = NULL;
    pst_data_spec_t spec = labels ? *labels : (pst_data_spec_t){0};
    spec.path = src->path;
    int rc = pst_data_set_targets(d, lb->raw, NULL, &spec, src->path, err);
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}

int pst_sparse_load(const pst_sparse_source_t *src, bool use_cache, const pst_data_spec_t *labels,
                    pst_dataset_t **out, pst_err_t *err)
{
    *out = NULL;
    pst_sparse_stream_opts_t opts = {.batch_rows = 65536, .buffer_rows = 1, .use_cache = use_cache};
    pst_sparse_stream_t *s;
    int rc = pst_sparse_stream_open(src, &opts, &s, err);
    if (rc != PST_OK)
        return rc;
    load_build_t lb = {0};
    const pst_sparse_stream_batch_t *b;
    while (rc == PST_OK) {
        rc = pst_sparse_stream_next(s, &b, err);
        if (rc != PST_OK || b->n_rows == 0)
            break;
        rc = load_append(&lb, b, err);
    }
    pst_sparse_stream_stats_t st;
    pst_sparse_stream_stats(s, &st);
    pst_sparse_stream_destroy(&s);
    if (rc == PST_OK)
        rc = load_finish(&lb, st.n_features, src, labels, out, err);
    free(lb.row_ptr);
    free(lb.col_idx);
    free(lb.val);
    free(lb.raw);
    return rc;
}
