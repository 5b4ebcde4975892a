/* Sparse row cache: the PSTCACHE header, its validity checks, and the block reader and writer. */
#include "common/data/sparsestream_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/data/textfile.h"

#define CACHE_MAGIC "PSTCACHE"
#define CACHE_VERSION 1u
#define HEADER_BYTES 96
#define BLOCK_HEADER_BYTES 16
#define BLOCK_PAYLOAD_BYTES (1u << 20) /* a block closes once its payload reaches this */
#define BLOCK_MAX_ROWS 65536u

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

static void header_encode(const pst_sparse_cache_header_t *h, unsigned char out[HEADER_BYTES])
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
static const char *header_decode(const unsigned char in[HEADER_BYTES], pst_sparse_cache_header_t *h)
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

bool pst_sparse_host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static uint64_t source_digest(const pst_sparse_source_t *src)
{
    return src->format == PST_SPARSE_TSV_HASHED ? pst_hash_spec_digest(&src->hash) : 0;
}

/* The identity of the source a cache must match: format, spec digest, size and mtime. */
int pst_sparse_source_identity(const pst_sparse_source_t *src, pst_sparse_cache_header_t *h,
                               pst_err_t *err)
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

static uint64_t expected_cache_size(const pst_sparse_cache_header_t *h)
{
    return HEADER_BYTES + h->n_blocks * BLOCK_HEADER_BYTES + 8 * h->n_rows + 8 * h->nnz;
}

/* NULL when the cache header raw (of a file_size-byte cache) is intact and matches the source
 * identity want, else the reason. */
static const char *header_check(const unsigned char raw[HEADER_BYTES], uint64_t file_size,
                                const pst_sparse_cache_header_t *want, pst_sparse_cache_header_t *h)
{
    const char *why = header_decode(raw, h);
    if (why != NULL)
        return why;
    if (h->format != want->format || h->digest != want->digest)
        return "built with another format or hash spec";
    if (h->src_size != want->src_size || h->mtime_s != want->mtime_s ||
        h->mtime_ns != want->mtime_ns)
        return "source changed (size or mtime)";
    if (file_size != expected_cache_size(h))
        return "file length does not match its header";
    if (!pst_sparse_host_is_little_endian())
        return "caches are little-endian only";
    return NULL;
}

/* Opens and checks the cache at path for src; on PST_OK *f is positioned at the first block. */
static int cache_open_checked(const pst_sparse_source_t *src, const char *path, FILE **f,
                              pst_sparse_cache_header_t *h, pst_err_t *err)
{
    pst_sparse_cache_header_t want;
    int rc = pst_sparse_source_identity(src, &want, err);
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
    else if (fstat(fileno(*f), &sb) != 0)
        why = "cannot stat";
    else
        why = header_check(raw, (uint64_t)sb.st_size, &want, h);
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
    pst_sparse_cache_header_t h;
    int rc = cache_open_checked(src, path, &f, &h, err);
    if (f != NULL)
        fclose(f);
    free(path);
    return rc;
}

void pst_sparse_cache_close(pst_sparse_cache_reader_t *c)
{
    if (c->map != NULL)
        munmap((void *)c->map, c->map_len);
    memset(c, 0, sizeof *c);
}

int pst_sparse_cache_open(pst_sparse_cache_reader_t *c, const pst_sparse_source_t *src,
                          const char *path, pst_err_t *err)
{
    memset(c, 0, sizeof *c);
    FILE *f = NULL;
    int rc = cache_open_checked(src, path, &f, &c->h, err);
    if (rc != PST_OK)
        return rc;
    /* the header matched the file's length, so the mapping holds every block it promises; a
     * cache is replaced by rename, never rewritten in place, so the mapped file stays whole */
    c->map_len = (size_t)expected_cache_size(&c->h);
    void *map = mmap(NULL, c->map_len, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    fclose(f);
    if (map == MAP_FAILED) {
        memset(c, 0, sizeof *c);
        return pst_err_set(err, PST_EFORMAT, "%s: cannot be mapped: %s", path, strerror(errno));
    }
    madvise(map, c->map_len, MADV_SEQUENTIAL);
    c->map = map;
    c->pos = HEADER_BYTES;
    return PST_OK;
}

/* PST_OK with the next block in view, 0 rows at the end, or PST_SPARSE_CACHE_CORRUPT. The rows
 * point into the mapping: 4-byte aligned (page-aligned start, every offset a multiple of 4) and
 * little-endian like the host. */
static int cache_load_block(pst_sparse_cache_reader_t *c)
{
    c->rows = c->nnz = c->row_pos = 0;
    c->entry_pos = 0;
    if (c->blocks_read == c->h.n_blocks)
        return c->rows_done == c->h.n_rows ? PST_OK : PST_SPARSE_CACHE_CORRUPT;
    if (c->map_len - c->pos < BLOCK_HEADER_BYTES)
        return PST_SPARSE_CACHE_CORRUPT;
    const unsigned char *bh = c->map + c->pos;
    uint32_t rows = get_u32(bh), nnz = get_u32(bh + 4), crc = get_u32(bh + 8);
    uint64_t bytes = 8 * (uint64_t)rows + 8 * (uint64_t)nnz;
    if (rows == 0 || bytes > c->h.max_block || c->rows_done + rows > c->h.n_rows ||
        bytes > c->map_len - c->pos - BLOCK_HEADER_BYTES)
        return PST_SPARSE_CACHE_CORRUPT;
    const unsigned char *payload = bh + BLOCK_HEADER_BYTES;
    if (crc_of(payload, bytes) != crc)
        return PST_SPARSE_CACHE_CORRUPT;
    c->pos += BLOCK_HEADER_BYTES + (size_t)bytes;
    c->rows = rows;
    c->nnz = nnz;
    c->blocks_read++;
    c->row_nnz = (const uint32_t *)payload;
    c->y = (const float *)(payload + 4 * (size_t)rows);
    c->col = (const uint32_t *)(payload + 8 * (size_t)rows);
    c->val = (const float *)(payload + 8 * (size_t)rows + 4 * (size_t)nnz);
    return PST_OK;
}

/* 1 and the next row, 0 at the end, or PST_SPARSE_CACHE_CORRUPT. */
int pst_sparse_cache_row(pst_sparse_cache_reader_t *c, pst_sparse_row_t *row)
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
        return PST_SPARSE_CACHE_CORRUPT;
    row->nnz = n;
    row->y = c->y[c->row_pos];
    row->label = row->y;
    row->id = c->rows_done++;
    row->idx = c->col + c->entry_pos;
    row->val = c->val + c->entry_pos;
    c->entry_pos += n;
    c->row_pos++;
    return 1;
}

struct pst_sparse_cache_writer {
    pst_atomic_writer_t *w;
    pst_sparse_cache_header_t h; /* source identity, then totals */
    size_t rows, nnz;            /* in the open block */
    size_t cap_rows, cap_nnz;
    uint32_t *row_nnz; // (cap_rows)
    float *y;          // (cap_rows)
    uint32_t *col;     // (cap_nnz)
    float *val;        // (cap_nnz)
};

void pst_sparse_cache_writer_destroy(pst_sparse_cache_writer_t **cw_p)
{
    pst_sparse_cache_writer_t *cw = *cw_p;
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

int pst_sparse_cache_writer_new(const char *path, const pst_sparse_cache_header_t *identity,
                                pst_sparse_cache_writer_t **out, pst_err_t *err)
{
    pst_sparse_cache_writer_t *cw = calloc(1, sizeof *cw);
    if (cw == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    cw->h = *identity;
    unsigned char zero[HEADER_BYTES] = {0};
    int rc = pst_atomic_writer_open(path, 0, &cw->w, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(cw->w, zero, sizeof zero, err);
    if (rc != PST_OK)
        pst_sparse_cache_writer_destroy(&cw);
    *out = cw;
    return rc;
}

static int cache_writer_flush(pst_sparse_cache_writer_t *cw, pst_err_t *err)
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

int pst_sparse_cache_writer_add(pst_sparse_cache_writer_t *cw, const pst_sparse_row_t *row,
                                pst_err_t *err)
{
    size_t cap_rows = cw->cap_rows, cap_nnz = cw->cap_nnz;
    if (!pst_sparse_grow_array((void **)&cw->row_nnz, &cap_rows, cw->rows + 1, 4) ||
        !pst_sparse_grow_array((void **)&cw->y, &cw->cap_rows, cw->rows + 1, 4) ||
        !pst_sparse_grow_array((void **)&cw->col, &cap_nnz, cw->nnz + row->nnz, 4) ||
        !pst_sparse_grow_array((void **)&cw->val, &cw->cap_nnz, cw->nnz + row->nnz, 4))
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
int pst_sparse_cache_writer_commit(pst_sparse_cache_writer_t **cw_p, uint64_t n_features,
                                   pst_err_t *err)
{
    pst_sparse_cache_writer_t *cw = *cw_p;
    cw->h.n_features = n_features;
    unsigned char raw[HEADER_BYTES];
    int rc = cache_writer_flush(cw, err);
    header_encode(&cw->h, raw);
    if (rc == PST_OK)
        rc = pst_atomic_writer_patch(cw->w, 0, raw, sizeof raw, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_commit(&cw->w, err);
    pst_sparse_cache_writer_destroy(cw_p);
    return rc;
}

/* ---- Whole-cache loads through a read-only mapping ---- */

/* One block of a mapped cache: where its arrays are, and where its rows go in the whole. */
typedef struct mapped_block {
    const unsigned char *payload;
    uint32_t rows, nnz, crc;
    size_t row0, nnz0;
    pst_sparse_csr_build_t *out;
    bool corrupt; /* set by the check: checksum or row lengths wrong */
} mapped_block_t;

/* Walks the block headers of the mapping (every size checked against the file) into blocks;
 * NULL when the layout holds, else the reason. */
static const char *map_layout(const unsigned char *map, uint64_t size,
                              const pst_sparse_cache_header_t *h, mapped_block_t *blocks)
{
    uint64_t pos = HEADER_BYTES, rows = 0, nnz = 0;
    for (uint64_t k = 0; k < h->n_blocks; k++) {
        if (size - pos < BLOCK_HEADER_BYTES)
            return "truncated block header";
        mapped_block_t *b = &blocks[k];
        b->rows = get_u32(map + pos);
        b->nnz = get_u32(map + pos + 4);
        b->crc = get_u32(map + pos + 8);
        uint64_t bytes = 8 * (uint64_t)b->rows + 8 * (uint64_t)b->nnz;
        pos += BLOCK_HEADER_BYTES;
        if (b->rows == 0 || bytes > h->max_block || bytes > size - pos ||
            rows + b->rows > h->n_rows || nnz + b->nnz > h->nnz)
            return "block sizes do not match the header";
        b->payload = map + pos;
        b->row0 = (size_t)rows;
        b->nnz0 = (size_t)nnz;
        rows += b->rows;
        nnz += b->nnz;
        pos += bytes;
    }
    if (rows != h->n_rows || nnz != h->nnz || pos != size)
        return "block sizes do not match the header";
    return NULL;
}

/* Checks one block's checksum and row lengths, then copies its rows into the whole. The
 * payload is 4-byte aligned (the mapping is page-aligned, every offset a multiple of 4) and
 * little-endian like the host, so its arrays are read in place. */
static void map_block_copy(void *arg)
{
    mapped_block_t *b = arg;
    size_t r = b->rows, n = b->nnz;
    if (crc_of(b->payload, 8 * r + 8 * n) != b->crc) {
        b->corrupt = true;
        return;
    }
    const uint32_t *row_nnz = (const uint32_t *)b->payload;
    const float *y = (const float *)(b->payload + 4 * r);
    pst_data_csr_t *c = &b->out->csr;
    size_t end = b->nnz0;
    for (size_t i = 0; i < r; i++) {
        end += row_nnz[i];
        c->row_ptr[b->row0 + i + 1] = end;
        c->raw[b->row0 + i] = y[i];
    }
    if (end != b->nnz0 + n) {
        b->corrupt = true;
        return;
    }
    memcpy(c->col_idx + b->nnz0, b->payload + 8 * r, 4 * n);
    memcpy(c->val + b->nnz0, b->payload + 8 * r + 4 * n, 4 * n);
}

/* The blocks of k-th of n threads: a share of every n-th block, so each checks and copies. */
typedef struct map_share {
    mapped_block_t *blocks;
    uint64_t n_blocks;
    unsigned k, n;
} map_share_t;

static void map_share_run(void *arg)
{
    map_share_t *s = arg;
    for (uint64_t i = s->k; i < s->n_blocks; i += s->n)
        map_block_copy(&s->blocks[i]);
}

static int map_alloc(pst_sparse_csr_build_t *b, const pst_sparse_cache_header_t *h,
                     const char *path, pst_err_t *err)
{
    pst_data_csr_t *c = &b->csr;
    size_t rows = (size_t)h->n_rows, nnz = (size_t)h->nnz;
    c->row_ptr = malloc((rows + 1) * sizeof *c->row_ptr);
    c->raw = malloc((rows ? rows : 1) * sizeof *c->raw);
    c->col_idx = malloc((nnz ? nnz : 1) * sizeof *c->col_idx);
    c->val = malloc((nnz ? nnz : 1) * sizeof *c->val);
    if (!c->row_ptr || !c->raw || !c->col_idx || !c->val)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu rows", path, rows);
    c->row_ptr[0] = 0;
    c->n_rows = rows;
    c->n_features = (size_t)h->n_features;
    b->nnz = b->cap_nnz = nnz;
    b->cap_rows = rows;
    return PST_OK;
}

/* Checks and copies every block of the mapping on n_threads; PST_EFORMAT naming the first bad
 * block. */
static int map_blocks(const unsigned char *map, uint64_t size, const pst_sparse_cache_header_t *h,
                      unsigned n_threads, pst_sparse_csr_build_t *b, const char *path,
                      pst_err_t *err)
{
    mapped_block_t *blocks = calloc(h->n_blocks ? h->n_blocks : 1, sizeof *blocks);
    if (blocks == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    const char *why = map_layout(map, size, h, blocks);
    int rc = why ? pst_err_set(err, PST_EFORMAT, "%s: %s", path, why) : map_alloc(b, h, path, err);
    if (rc == PST_OK) {
        unsigned n = pst_text_thread_count(n_threads, size);
        if (n > h->n_blocks)
            n = h->n_blocks ? (unsigned)h->n_blocks : 1;
        map_share_t shares[n];
        for (unsigned k = 0; k < n; k++)
            shares[k] = (map_share_t){blocks, h->n_blocks, k, n};
        for (uint64_t i = 0; i < h->n_blocks; i++)
            blocks[i].out = b;
        pst_text_run_parallel(map_share_run, shares, sizeof *shares, n);
        for (uint64_t i = 0; rc == PST_OK && i < h->n_blocks; i++)
            if (blocks[i].corrupt)
                rc = pst_err_set(err, PST_EFORMAT, "%s: block %llu of %llu is corrupt", path,
                                 (unsigned long long)i + 1, (unsigned long long)h->n_blocks);
    }
    free(blocks);
    return rc;
}

int pst_sparse_cache_load(const pst_sparse_source_t *src, const char *path, unsigned n_threads,
                          pst_sparse_csr_build_t *b, pst_err_t *err)
{
    memset(b, 0, sizeof *b);
    pst_sparse_cache_header_t want, h;
    int rc = pst_sparse_source_identity(src, &want, err);
    if (rc != PST_OK)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pst_err_set(err, PST_ENOTFOUND, "%s: no cache", path);
    struct stat sb;
    void *map = MAP_FAILED;
    const char *why = NULL;
    if (fstat(fd, &sb) != 0 || sb.st_size < HEADER_BYTES)
        why = "truncated header";
    else if ((map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)) ==
             MAP_FAILED)
        why = "cannot be mapped";
    else
        why = header_check(map, (uint64_t)sb.st_size, &want, &h);
    close(fd);
    rc = why ? pst_err_set(err, PST_EFORMAT, "%s: %s", path, why)
             : map_blocks(map, (uint64_t)sb.st_size, &h, n_threads, b, path, err);
    if (map != MAP_FAILED)
        munmap(map, (size_t)sb.st_size);
    if (rc != PST_OK)
        pst_sparse_csr_fini(b);
    return rc;
}
