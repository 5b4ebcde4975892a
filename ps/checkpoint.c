/* Server checkpoints: serialisation of the shard store with a magic, a version and a CRC-32. */
#include "ps/checkpoint.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/atomicfile.h"

/* File layout, host byte order (the magic reads back wrong on a host of the other order):
 *   "PSTCKPT\0"  u32 version  u32 server  u32 n_servers  u32 n_slices  u64 clock  u64 body_len
 *   body: n_slices records
 *     u32 model  u32 tensor  u8 sparse  u64 clock
 *     dense:  u64 total  u64 offset  u64 len  f32 values[len]  optimizer
 *     sparse: u32 row_width  f32 init_scale  u64 seed  u64 n_rows  optimizer (shared)
 *             n_rows x { u64 key  f32 values[row_width]  u8 has_state  [optimizer] }
 *     optimizer: u64 steps  u64 n_state  f32 state[n_state]
 *   u32 crc32 of everything before it */

static const char MAGIC[8] = "PSTCKPT";
#define HEADER_BYTES (8 + 4 * 4 + 8 + 8)
#define MAX_FILE_BYTES ((size_t)1 << 40)

/* ---- writing ---- */

typedef struct writer {
    uint8_t *buf;
    size_t len, cap;
    bool failed;
} writer_t;

static void put(writer_t *w, const void *data, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *grown = realloc(w->buf, cap);
        if (grown == NULL) {
            w->failed = true;
            return;
        }
        w->buf = grown;
        w->cap = cap;
    }
    if (n > 0)
        memcpy(w->buf + w->len, data, n);
    w->len += n;
}

static void put_u8(writer_t *w, uint8_t v)
{
    put(w, &v, sizeof v);
}

static void put_u32(writer_t *w, uint32_t v)
{
    put(w, &v, sizeof v);
}

static void put_u64(writer_t *w, uint64_t v)
{
    put(w, &v, sizeof v);
}

static void put_f32(writer_t *w, float v)
{
    put(w, &v, sizeof v);
}

static void put_state(writer_t *w, uint64_t steps, const float *state, size_t n_state)
{
    put_u64(w, steps);
    put_u64(w, n_state);
    put(w, state, n_state * sizeof(float));
}

static void put_optim(writer_t *w, pst_optim_t *opt)
{
    size_t n_state = 0;
    const float *state = pst_optim_state(opt, &n_state);
    put_state(w, pst_optim_steps(opt), state, n_state);
}

static void put_dense(writer_t *w, const pst_slice_t *s)
{
    put_u64(w, s->total);
    put_u64(w, s->offset);
    put_u64(w, s->len);
    put(w, s->values, s->len * sizeof(float));
    put_optim(w, s->optim);
}

static void put_sparse(writer_t *w, const pst_slice_t *s)
{
    put_u32(w, s->row_width);
    put_f32(w, s->init_scale);
    put_u64(w, s->seed);
    put_u64(w, s->n_rows);
    put_optim(w, s->optim);
    for (size_t r = 0; r < s->n_rows; r++) {
        put_u64(w, s->row_keys[r]);
        put(w, s->rows + r * s->row_width, s->row_width * sizeof(float));
        size_t n_state = 0;
        uint64_t steps = 0;
        const float *state = pst_slice_row_state(s, r, &n_state, &steps);
        put_u8(w, state != NULL);
        if (state != NULL)
            put_state(w, steps, state, n_state);
    }
}

static void put_slice(writer_t *w, const pst_slice_t *s)
{
    put_u32(w, s->model_id);
    put_u32(w, s->tensor_id);
    put_u8(w, s->sparse);
    put_u64(w, s->clock);
    if (s->sparse)
        put_sparse(w, s);
    else
        put_dense(w, s);
}

int pst_checkpoint_path(const char *dir, uint32_t server, char *buf, size_t len, pst_err_t *err)
{
    int n = snprintf(buf, len, "%s/server-%u.ckpt", dir, server);
    if (n < 0 || (size_t)n >= len)
        return pst_err_set(err, PST_EINVAL, "checkpoint: directory name too long: %s", dir);
    return PST_OK;
}

int pst_checkpoint_write(const char *dir, pst_shard_t *shard, uint64_t clock, pst_err_t *err)
{
    char path[4096];
    int rc = pst_checkpoint_path(dir, pst_shard_server(shard), path, sizeof path, err);
    if (rc == PST_OK)
        rc = pst_mkdir_p(dir, err);
    return rc == PST_OK ? pst_checkpoint_write_file(path, shard, clock, err) : rc;
}

int pst_checkpoint_write_file(const char *path, pst_shard_t *shard, uint64_t clock, pst_err_t *err)
{
    int rc;
    writer_t w = {0};
    put(&w, MAGIC, sizeof MAGIC);
    put_u32(&w, PST_CHECKPOINT_VERSION);
    put_u32(&w, pst_shard_server(shard));
    put_u32(&w, pst_shard_n_servers(shard));
    put_u32(&w, (uint32_t)pst_shard_count(shard));
    put_u64(&w, clock);
    put_u64(&w, 0); /* body length, patched below */
    for (size_t i = 0; i < pst_shard_count(shard); i++)
        put_slice(&w, pst_shard_slice(shard, i));
    if (!w.failed) {
        uint64_t body = w.len - HEADER_BYTES;
        memcpy(w.buf + HEADER_BYTES - sizeof body, &body, sizeof body);
        put_u32(&w, 0); /* CRC, patched below */
    }
    if (w.failed) {
        free(w.buf);
        return pst_err_set(err, PST_ENOMEM, "checkpoint: no memory to serialise %s", path);
    }
    /* The CRC covers every byte before it; crc32_z takes lengths above 4 GiB. */
    uint32_t crc = (uint32_t)crc32_z(0L, w.buf, w.len - sizeof(uint32_t));
    memcpy(w.buf + w.len - sizeof crc, &crc, sizeof crc);
    rc = pst_write_file_atomic(path, w.buf, w.len, err);
    free(w.buf);
    return rc;
}

/* ---- reading ---- */

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

static bool get(reader_t *r, void *dst, size_t n)
{
    if (n > r->left)
        return false;
    if (n == 0) /* an empty array's dst may be NULL, which memcpy must not see even for 0 bytes */
        return true;
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

/* A pointer to n floats inside the buffer (copied out by the caller), or NULL past the end. */
static const uint8_t *get_span(reader_t *r, uint64_t n_floats)
{
    if (n_floats > r->left / sizeof(float))
        return NULL;
    const uint8_t *at = r->p;
    r->p += n_floats * sizeof(float);
    r->left -= n_floats * sizeof(float);
    return at;
}

static int corrupt(pst_err_t *err, const char *path, const char *what)
{
    return pst_err_set(err, PST_EFORMAT, "%s: corrupt checkpoint: %s", path, what);
}

static int get_optim(reader_t *r, pst_optim_t *opt, const char *path, pst_err_t *err)
{
    uint64_t steps, n_state;
    if (!get(r, &steps, sizeof steps) || !get(r, &n_state, sizeof n_state))
        return corrupt(err, path, "optimizer record cut short");
    const uint8_t *state = get_span(r, n_state);
    if (state == NULL)
        return corrupt(err, path, "optimizer state cut short");
    size_t have = 0;
    float *dst = pst_optim_state(opt, &have);
    if (have != n_state)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: optimizer state of %llu floats, this optimizer keeps %zu "
                           "(was the checkpoint written with another optimizer?)",
                           path, (unsigned long long)n_state, have);
    memcpy(dst, state, n_state * sizeof(float));
    pst_optim_set_steps(opt, steps);
    return PST_OK;
}

static int get_dense(reader_t *r, pst_shard_t *sh, uint32_t model, uint32_t tensor,
                     const char *path, pst_slice_t **out, pst_err_t *err)
{
    uint64_t total, offset, len;
    if (!get(r, &total, 8) || !get(r, &offset, 8) || !get(r, &len, 8))
        return corrupt(err, path, "dense record cut short");
    uint64_t want_off, want_len;
    pst_wire_shard_range(total, pst_shard_n_servers(sh), pst_shard_server(sh), &want_off,
                         &want_len);
    if (offset != want_off || len != want_len)
        return corrupt(err, path, "dense range does not match the server's share");
    const uint8_t *values = get_span(r, len);
    if (values == NULL)
        return corrupt(err, path, "dense values cut short");
    int index = pst_shard_add_dense(sh, model, tensor, total, NULL, err);
    if (index < 0)
        return index;
    pst_slice_t *s = pst_shard_slice(sh, (size_t)index);
    memcpy(s->values, values, len * sizeof(float));
    pst_slice_values_changed(s);
    *out = s;
    return get_optim(r, s->optim, path, err);
}

/* Scratch for one sparse row: values and optimizer state copied out of the (unaligned) file. */
typedef struct row_scratch {
    float *values; /* (row_width) */
    float *state;  /* (state_cap) */
    size_t state_cap;
} row_scratch_t;

static int get_row(reader_t *r, pst_slice_t *s, row_scratch_t *tmp, const char *path,
                   pst_err_t *err)
{
    uint64_t key, steps = 0, n_state = 0;
    uint8_t has_state;
    if (!get(r, &key, 8) || !get(r, tmp->values, s->row_width * sizeof(float)) ||
        !get(r, &has_state, 1))
        return corrupt(err, path, "sparse row cut short");
    if (has_state) {
        if (!pst_slice_stateful(s))
            return corrupt(err, path, "row state for a stateless optimizer");
        if (!get(r, &steps, 8) || !get(r, &n_state, 8) || n_state > r->left / sizeof(float))
            return corrupt(err, path, "sparse row state cut short");
        if (n_state > tmp->state_cap) {
            float *grown = realloc(tmp->state, n_state * sizeof(float));
            if (grown == NULL)
                return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
            tmp->state = grown;
            tmp->state_cap = n_state;
        }
        get(r, tmp->state, n_state * sizeof(float));
    }
    return pst_slice_restore_row(s, key, tmp->values, has_state ? tmp->state : NULL, n_state, steps,
                                 err);
}

static int get_sparse(reader_t *r, pst_shard_t *sh, uint32_t model, uint32_t tensor,
                      const char *path, pst_slice_t **out, pst_err_t *err)
{
    uint32_t width;
    float scale;
    uint64_t seed, n_rows;
    if (!get(r, &width, 4) || !get(r, &scale, 4) || !get(r, &seed, 8) || !get(r, &n_rows, 8))
        return corrupt(err, path, "sparse record cut short");
    if (width == 0 || width > (1u << 20))
        return corrupt(err, path, "sparse row width out of range");
    int index = pst_shard_add_sparse(sh, model, tensor, width, scale, seed, err);
    if (index < 0)
        return index;
    pst_slice_t *s = pst_shard_slice(sh, (size_t)index);
    *out = s;
    int rc = get_optim(r, s->optim, path, err);
    if (rc == PST_OK && n_rows > r->left / (8 + 1 + (uint64_t)width * sizeof(float)))
        return corrupt(err, path, "fewer sparse rows than declared");
    row_scratch_t tmp = {malloc(width * sizeof(float)), NULL, 0};
    if (tmp.values == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; rc == PST_OK && i < n_rows; i++)
        rc = get_row(r, s, &tmp, path, err);
    free(tmp.values);
    free(tmp.state);
    if (rc == PST_OK && s->n_rows != n_rows)
        return corrupt(err, path, "duplicate sparse keys");
    return rc;
}

static int get_slice(reader_t *r, pst_shard_t *sh, const char *path, pst_err_t *err)
{
    uint32_t model, tensor;
    uint8_t sparse;
    uint64_t clock;
    if (!get(r, &model, 4) || !get(r, &tensor, 4) || !get(r, &sparse, 1) || !get(r, &clock, 8))
        return corrupt(err, path, "slice record cut short");
    if (sparse > 1)
        return corrupt(err, path, "slice kind");
    pst_slice_t *s = NULL;
    int rc = sparse ? get_sparse(r, sh, model, tensor, path, &s, err)
                    : get_dense(r, sh, model, tensor, path, &s, err);
    if (rc == PST_ESTATE)
        return corrupt(err, path, "a tensor appears twice");
    if (s != NULL)
        s->clock = clock;
    return rc;
}

typedef struct file_header {
    uint32_t version, server, n_servers, n_slices;
    uint64_t clock, body_len;
} file_header_t;

/* Checks magic, version, length and CRC before anything else is trusted. */
static int check_file(const uint8_t *data, size_t len, const char *path, file_header_t *h,
                      pst_err_t *err)
{
    if (len < HEADER_BYTES + sizeof(uint32_t) || memcmp(data, MAGIC, sizeof MAGIC) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: not a pstrain checkpoint (bad magic or empty)",
                           path);
    reader_t r = {data + sizeof MAGIC, HEADER_BYTES - sizeof MAGIC};
    get(&r, &h->version, 4);
    get(&r, &h->server, 4);
    get(&r, &h->n_servers, 4);
    get(&r, &h->n_slices, 4);
    get(&r, &h->clock, 8);
    get(&r, &h->body_len, 8);
    if (h->version != PST_CHECKPOINT_VERSION)
        return pst_err_set(err, PST_EFORMAT, "%s: checkpoint version %u, this build reads %u", path,
                           h->version, PST_CHECKPOINT_VERSION);
    if (h->body_len != len - HEADER_BYTES - sizeof(uint32_t))
        return pst_err_set(err, PST_EFORMAT,
                           "%s: truncated or torn checkpoint (%zu bytes, header says %llu)", path,
                           len, (unsigned long long)(h->body_len + HEADER_BYTES + 4));
    uint32_t stored;
    memcpy(&stored, data + len - sizeof stored, sizeof stored);
    uint32_t crc = (uint32_t)crc32_z(0L, data, len - sizeof stored);
    if (crc != stored)
        return pst_err_set(err, PST_EFORMAT, "%s: checkpoint checksum mismatch (file is corrupt)",
                           path);
    if (h->n_servers == 0 || h->server >= h->n_servers)
        return corrupt(err, path, "server index");
    return PST_OK;
}

pst_shard_t *pst_checkpoint_load_mem(const uint8_t *data, size_t len, const char *name,
                                     const pst_optim_cfg_t *optim, uint64_t *clock, pst_err_t *err)
{
    file_header_t h = {0};
    pst_shard_t *sh = NULL;
    int rc = check_file(data, len, name, &h, err);
    if (rc == PST_OK) {
        sh = pst_shard_new(h.server, h.n_servers, optim, err);
        rc = sh != NULL ? PST_OK : PST_ENOMEM;
    }
    reader_t r = {data + HEADER_BYTES, rc == PST_OK ? len - HEADER_BYTES - sizeof(uint32_t) : 0};
    for (uint32_t i = 0; rc == PST_OK && i < h.n_slices; i++)
        rc = get_slice(&r, sh, name, err);
    if (rc == PST_OK && r.left != 0)
        rc = corrupt(err, name, "bytes after the last slice");
    if (rc != PST_OK) {
        pst_shard_destroy(&sh);
        return NULL;
    }
    *clock = h.clock;
    return sh;
}

pst_shard_t *pst_checkpoint_load(const char *path, const pst_optim_cfg_t *optim, uint64_t *clock,
                                 pst_err_t *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (pst_read_file(path, MAX_FILE_BYTES, &data, &len, err) != PST_OK)
        return NULL;
    pst_shard_t *sh = pst_checkpoint_load_mem(data, len, path, optim, clock, err);
    free(data);
    return sh;
}
