/* Shard store: dense ranges and hashed sparse rows of every tensor this server owns. */
#include "ps/shard.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/net/codec.h"
#include "ps/shard_ftrl.h"

#define INIT_STREAM 0x9e3779b97f4a7c15ull
/* Keys looked up ahead of use, hiding the latency of random access into large slices. */
#define PREFETCH_AHEAD 16

struct pst_shard {
    uint32_t server, n_servers;
    pst_optim_cfg_t optim;
    pst_slice_t **slices; /* (n_slices) */
    size_t n_slices, cap;
};

/* ---- store ---- */

/* The values of a dense slice: one reference for the slice, one per message that lent them. */
struct pst_values_block {
    atomic_int refs;
    float *data;
    bool sum_known; /* sum is pst_checksum of the data as it is now */
    uint32_t sum;
};

static struct pst_values_block *block_new(size_t n)
{
    struct pst_values_block *b = malloc(sizeof *b);
    float *data = calloc(n > 0 ? n : 1, sizeof(float));
    if (b == NULL || data == NULL) {
        free(b);
        free(data);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->data = data;
    b->sum_known = false;
    return b;
}

static void block_unref(struct pst_values_block *b)
{
    if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        free(b->data);
        free(b);
    }
}

pst_shard_t *pst_shard_new(uint32_t server, uint32_t n_servers, const pst_optim_cfg_t *optim,
                           pst_err_t *err)
{
    if (n_servers == 0 || server >= n_servers) {
        pst_err_set(err, PST_EINVAL, "shard: server %u of %u", server, n_servers);
        return NULL;
    }
    pst_shard_t *sh = calloc(1, sizeof *sh);
    if (sh == NULL) {
        pst_err_set(err, PST_ENOMEM, "shard: out of memory");
        return NULL;
    }
    sh->server = server;
    sh->n_servers = n_servers;
    sh->optim = *optim;
    return sh;
}

static void slice_free(pst_slice_t *s)
{
    if (s == NULL)
        return;
    pst_optim_destroy(&s->optim);
    free(s->row_state);
    free(s->row_steps);
    block_unref(s->block);
    free(s->row_keys);
    free(s->rows);
    pst_keymap_fini(&s->keymap);
    free(s->acc);
    free(s->touched);
    free(s->is_touched);
    pst_slice_ftrl_fini(&s->ftrl);
    free(s);
}

void pst_shard_destroy(pst_shard_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_shard_t *sh = *self_p;
    for (size_t i = 0; i < sh->n_slices; i++)
        slice_free(sh->slices[i]);
    free(sh->slices);
    free(sh);
    *self_p = NULL;
}

uint32_t pst_shard_server(const pst_shard_t *self)
{
    return self->server;
}

uint32_t pst_shard_n_servers(const pst_shard_t *self)
{
    return self->n_servers;
}

size_t pst_shard_drop_model(pst_shard_t *self, uint32_t model_id)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n_slices; i++) {
        if (self->slices[i]->model_id == model_id)
            slice_free(self->slices[i]);
        else
            self->slices[kept++] = self->slices[i];
    }
    size_t dropped = self->n_slices - kept;
    self->n_slices = kept;
    return dropped;
}

int pst_shard_find(const pst_shard_t *self, uint32_t model_id, uint32_t tensor_id)
{
    for (size_t i = 0; i < self->n_slices; i++) {
        const pst_slice_t *s = self->slices[i];
        if (s->model_id == model_id && s->tensor_id == tensor_id)
            return (int)i;
    }
    return -1;
}

size_t pst_shard_count(const pst_shard_t *self)
{
    return self->n_slices;
}

pst_slice_t *pst_shard_slice(pst_shard_t *self, size_t index)
{
    return index < self->n_slices ? self->slices[index] : NULL;
}

/* Allocates a slice with its optimizer over n parameters and appends it; returns its index. */
static int shard_append(pst_shard_t *sh, uint32_t model_id, uint32_t tensor_id, size_t n,
                        pst_slice_t **out, pst_err_t *err)
{
    if (pst_shard_find(sh, model_id, tensor_id) >= 0)
        return pst_err_set(err, PST_ESTATE, "shard: tensor %u/%u already registered", model_id,
                           tensor_id);
    if (sh->n_slices == sh->cap) {
        size_t cap = sh->cap ? 2 * sh->cap : 8;
        pst_slice_t **grown = realloc(sh->slices, cap * sizeof *grown);
        if (grown == NULL)
            return pst_err_set(err, PST_ENOMEM, "shard: out of memory");
        sh->slices = grown;
        sh->cap = cap;
    }
    pst_slice_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pst_err_set(err, PST_ENOMEM, "shard: out of memory");
    s->model_id = model_id;
    s->tensor_id = tensor_id;
    s->optim_cfg = sh->optim;
    s->optim = pst_optim_new(&sh->optim, n, err);
    if (s->optim == NULL) {
        free(s);
        return err ? err->code : PST_ENOMEM;
    }
    sh->slices[sh->n_slices] = s;
    *out = s;
    return (int)sh->n_slices++;
}

int pst_shard_add_dense(pst_shard_t *self, uint32_t model_id, uint32_t tensor_id, uint64_t total,
                        const float *init, pst_err_t *err)
{
    uint64_t offset, len;
    pst_wire_shard_range(total, self->n_servers, self->server, &offset, &len);
    if (len > SIZE_MAX / sizeof(float))
        return pst_err_set(err, PST_ERANGE, "shard: %llu elements", (unsigned long long)len);
    struct pst_values_block *block = block_new(len);
    if (block == NULL)
        return pst_err_set(err, PST_ENOMEM, "shard: no memory for %llu values",
                           (unsigned long long)len);
    pst_slice_t *s;
    int index = shard_append(self, model_id, tensor_id, len, &s, err);
    if (index < 0) {
        block_unref(block);
        return index;
    }
    if (init != NULL && len > 0)
        memcpy(block->data, init, len * sizeof(float));
    s->block = block;
    s->values = block->data;
    s->total = total;
    s->offset = offset;
    s->len = len;
    return index;
}

int pst_shard_add_sparse(pst_shard_t *self, uint32_t model_id, uint32_t tensor_id,
                         uint32_t row_width, float init_scale, uint64_t seed, pst_err_t *err)
{
    if (row_width == 0)
        return pst_err_set(err, PST_EINVAL, "shard: sparse tensor %u/%u with row width 0", model_id,
                           tensor_id);
    pst_slice_t *s;
    int index = shard_append(self, model_id, tensor_id, row_width, &s, err);
    if (index < 0)
        return index;
    s->sparse = true;
    s->row_width = row_width;
    s->init_scale = init_scale;
    s->seed = seed;
    size_t n_state = 0;
    pst_optim_state(s->optim, &n_state);
    s->state_width = (uint32_t)n_state;
    return index;
}

/* ---- dense slices ---- */

/* Called by ZeroMQ, possibly on its I/O thread, once a lent message is sent. */
static void block_release(void *data, void *hint)
{
    (void)data;
    block_unref(hint);
}

const float *pst_slice_lend(pst_slice_t *s, void (**release)(void *data, void *hint), void **hint)
{
    atomic_fetch_add_explicit(&s->block->refs, 1, memory_order_relaxed);
    *release = block_release;
    *hint = s->block;
    return s->values;
}

/* Before values change: if a message still holds them, continue on a private copy. */
static int values_make_private(pst_slice_t *s, pst_err_t *err)
{
    if (atomic_load_explicit(&s->block->refs, memory_order_acquire) == 1)
        return PST_OK;
    struct pst_values_block *copy = block_new(s->len);
    if (copy == NULL)
        return pst_err_set(err, PST_ENOMEM, "shard: no memory to copy %llu values",
                           (unsigned long long)s->len);
    memcpy(copy->data, s->values, s->len * sizeof(float));
    block_unref(s->block);
    s->block = copy;
    s->values = copy->data;
    return PST_OK;
}

static void scale_floats(float *v, size_t n, float scale)
{
    if (scale == 1.0f)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] *= scale;
}

int pst_slice_dense_step(pst_slice_t *s, const float *g, float lr, pst_err_t *err)
{
    int rc = values_make_private(s, err);
    if (rc == PST_OK) {
        pst_optim_step(s->optim, s->values, g, lr);
        pst_slice_values_changed(s);
    }
    return rc;
}

void pst_slice_values_changed(pst_slice_t *s)
{
    s->block->sum_known = false;
}

uint32_t pst_slice_checksum(pst_slice_t *s)
{
    struct pst_values_block *b = s->block;
    if (!b->sum_known) {
        b->sum = pst_checksum(s->values, s->len * sizeof(float));
        b->sum_known = true;
    }
    return b->sum;
}

static int acc_alloc(pst_slice_t *s, pst_err_t *err)
{
    if (s->acc == NULL && (s->acc = malloc((s->len > 0 ? s->len : 1) * sizeof(float))) == NULL)
        return pst_err_set(err, PST_ENOMEM, "shard: no memory for an accumulator");
    return PST_OK;
}

int pst_slice_dense_acc_settle(pst_slice_t *s, pst_err_t *err)
{
    if (s->acc_held == NULL)
        return PST_OK;
    int rc = acc_alloc(s, err);
    if (rc == PST_OK) {
        memcpy(s->acc, s->acc_held, s->len * sizeof(float));
        s->acc_filled = true;
    }
    s->acc_held = NULL;
    return rc;
}

int pst_slice_dense_acc_add(pst_slice_t *s, const float *g, bool hold, pst_err_t *err)
{
    if (!s->acc_filled && s->acc_held == NULL && hold) {
        s->acc_held = g;
        return PST_OK;
    }
    int rc = pst_slice_dense_acc_settle(s, err);
    if (rc == PST_OK)
        rc = acc_alloc(s, err);
    if (rc != PST_OK)
        return rc;
    if (!s->acc_filled) {
        memcpy(s->acc, g, s->len * sizeof(float));
        s->acc_filled = true;
        return PST_OK;
    }
    for (uint64_t i = 0; i < s->len; i++)
        s->acc[i] += g[i];
    return PST_OK;
}

int pst_slice_dense_apply(pst_slice_t *s, float scale, float lr, pst_err_t *err)
{
    int rc = PST_OK;
    if (s->acc_held != NULL && scale == 1.0f) {
        rc = pst_slice_dense_step(s, s->acc_held, lr, err);
        s->acc_held = NULL;
        return rc;
    }
    if ((rc = pst_slice_dense_acc_settle(s, err)) != PST_OK || !s->acc_filled)
        return rc;
    scale_floats(s->acc, s->len, scale);
    rc = pst_slice_dense_step(s, s->acc, lr, err);
    s->acc_filled = false;
    return rc;
}

/* ---- sparse rows ---- */

static int grow_array(void **p, size_t elem, size_t old_n, size_t new_n, bool zero)
{
    void *grown = realloc(*p, new_n * elem);
    if (grown == NULL)
        return PST_ENOMEM;
    if (zero)
        memset((char *)grown + old_n * elem, 0, (new_n - old_n) * elem);
    *p = grown;
    return PST_OK;
}

/* Grows every per-row array to hold at least n_rows rows. */
static int rows_reserve(pst_slice_t *s, size_t n_rows)
{
    if (n_rows <= s->rows_cap)
        return PST_OK;
    size_t old = s->rows_cap, cap = old ? old : 64, w = s->row_width;
    while (cap < n_rows)
        cap *= 2;
    int rc = grow_array((void **)&s->row_keys, sizeof(uint64_t), old, cap, false);
    if (rc == PST_OK)
        rc = grow_array((void **)&s->rows, w * sizeof(float), old, cap, false);
    if (rc == PST_OK && s->state_width > 0)
        rc = grow_array((void **)&s->row_state, s->state_width * sizeof(float), old, cap, true);
    if (rc == PST_OK && s->state_width > 0)
        rc = grow_array((void **)&s->row_steps, sizeof(uint64_t), old, cap, true);
    if (rc == PST_OK && s->acc != NULL) {
        rc = grow_array((void **)&s->acc, w * sizeof(float), old, cap, false);
        if (rc == PST_OK)
            rc = grow_array((void **)&s->touched, sizeof(uint32_t), old, cap, false);
        if (rc == PST_OK)
            rc = grow_array((void **)&s->is_touched, 1, old, cap, true);
    }
    if (rc == PST_OK)
        s->rows_cap = cap;
    return rc;
}

/* Value j of a new row of key: uniform in [-scale, scale], a function of (seed, key, j) only, so
 * the same key starts the same on any server, in any order of touch. */
static float init_value(const pst_slice_t *s, uint64_t key, uint32_t j)
{
    uint64_t h = pst_wire_key_hash(s->seed ^ pst_wire_key_hash(key) ^ (INIT_STREAM * (j + 1)));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    return (float)((2.0 * u - 1.0) * s->init_scale);
}

/* A new row for key, whose empty ref is given; the slice has room for it. */
static void row_create(pst_slice_t *s, uint64_t key, pst_keymap_ref_t *ref)
{
    size_t r = s->n_rows++;
    s->row_keys[r] = key;
    float *v = s->rows + r * s->row_width;
    for (uint32_t j = 0; j < s->row_width; j++)
        v[j] = s->init_scale != 0.0f ? init_value(s, key, j) : 0.0f;
    pst_keymap_claim(&s->keymap, key, ref, (uint32_t)r);
}

/* The row of key, created on first touch. */
static int row_of(pst_slice_t *s, uint64_t key, uint32_t *row)
{
    int64_t found = pst_keymap_find(&s->keymap, key);
    if (found >= 0) {
        *row = (uint32_t)found;
        return PST_OK;
    }
    if (s->n_rows >= PST_KEYMAP_MAX_ROWS)
        return PST_ERANGE;
    int rc = rows_reserve(s, s->n_rows + 1);
    pst_keymap_ref_t *ref = rc == PST_OK ? pst_keymap_ref(&s->keymap, key) : NULL;
    if (ref == NULL)
        return PST_ENOMEM;
    row_create(s, key, ref);
    *row = ref->row1 - 1;
    return PST_OK;
}

int pst_slice_rows(pst_slice_t *s, const uint64_t *keys, size_t n, uint32_t *rows, pst_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            pst_keymap_prefetch(&s->keymap, keys[i + PREFETCH_AHEAD]);
        int rc = row_of(s, keys[i], &rows[i]);
        if (rc != PST_OK)
            return pst_err_set(err, rc, "shard: cannot add a row to tensor %u/%u (%zu rows)",
                               s->model_id, s->tensor_id, s->n_rows);
    }
    return PST_OK;
}

void pst_slice_gather(const pst_slice_t *s, const uint32_t *rows, size_t n, float *out)
{
    size_t w = s->row_width;
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            __builtin_prefetch(s->rows + (size_t)rows[i + PREFETCH_AHEAD] * w);
        memcpy(out + i * w, s->rows + (size_t)rows[i] * w, w * sizeof(float));
    }
}

bool pst_slice_stateful(const pst_slice_t *s)
{
    size_t n_state = 0;
    pst_optim_state(s->optim, &n_state);
    return n_state > 0;
}

const float *pst_slice_row_state(const pst_slice_t *s, size_t row, size_t *n_state, uint64_t *steps)
{
    if (s->state_width == 0 || row >= s->n_rows || s->row_steps[row] == 0)
        return NULL;
    *n_state = s->state_width;
    *steps = s->row_steps[row];
    return s->row_state + row * s->state_width;
}

/* Loads the cache lines a step of row r reads and writes (its values, optimizer state and step
 * count, and with_acc its accumulator): a batch's rows are scattered over arrays far larger than
 * the cache, so each would otherwise stall on three or four misses in turn. */
static inline void prefetch_step(const pst_slice_t *s, uint32_t r, bool with_acc)
{
    __builtin_prefetch(s->rows + (size_t)r * s->row_width, 1);
    if (s->state_width > 0) {
        __builtin_prefetch(s->row_state + (size_t)r * s->state_width, 1);
        __builtin_prefetch(&s->row_steps[r], 1);
    }
    if (with_acc)
        __builtin_prefetch(s->acc + (size_t)r * s->row_width, 1);
}

/* A stateless optimizer steps every row itself; a stateful one steps each row's own state. */
static void step_row(pst_slice_t *s, uint32_t row, const float *g, float lr)
{
    float *w = s->rows + (size_t)row * s->row_width;
    if (s->state_width == 0)
        pst_optim_step(s->optim, w, g, lr);
    else
        pst_optim_step_external(s->optim, w, g, lr, s->row_state + (size_t)row * s->state_width,
                                &s->row_steps[row]);
}

int pst_slice_sparse_step(pst_slice_t *s, const uint32_t *rows, size_t n, const float *g, float lr,
                          pst_err_t *err)
{
    (void)err;
    size_t w = s->row_width;
    if (pst_slice_ftrl_block_step(s, rows, n, g, false, 1.0f, lr))
        return PST_OK;
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            prefetch_step(s, rows[i + PREFETCH_AHEAD], false);
        step_row(s, rows[i], g + i * w, lr);
    }
    return PST_OK;
}

static int sparse_acc_enable(pst_slice_t *s)
{
    if (s->acc != NULL)
        return PST_OK;
    size_t cap = s->rows_cap > 0 ? s->rows_cap : 1;
    s->acc = malloc(cap * s->row_width * sizeof(float));
    s->touched = malloc(cap * sizeof(uint32_t));
    s->is_touched = calloc(cap, 1);
    if (s->acc == NULL || s->touched == NULL || s->is_touched == NULL) {
        free(s->acc);
        free(s->touched);
        free(s->is_touched);
        s->acc = NULL;
        s->touched = NULL;
        s->is_touched = NULL;
        return PST_ENOMEM;
    }
    s->n_touched = 0;
    return PST_OK;
}

int pst_slice_sparse_acc_add(pst_slice_t *s, const uint32_t *rows, size_t n, const float *g,
                             pst_err_t *err)
{
    if (sparse_acc_enable(s) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "shard: no memory for an accumulator");
    size_t w = s->row_width;
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n) {
            __builtin_prefetch(s->acc + (size_t)rows[i + PREFETCH_AHEAD] * w, 1);
            __builtin_prefetch(&s->is_touched[rows[i + PREFETCH_AHEAD]], 1);
        }
        uint32_t r = rows[i];
        float *acc = s->acc + (size_t)r * w;
        const float *gi = g + i * w;
        if (!s->is_touched[r]) {
            s->is_touched[r] = 1;
            s->touched[s->n_touched++] = r;
            memcpy(acc, gi, w * sizeof(float));
        } else {
            for (size_t j = 0; j < w; j++)
                acc[j] += gi[j];
        }
    }
    return PST_OK;
}

int pst_slice_sparse_apply(pst_slice_t *s, float scale, float lr, pst_err_t *err)
{
    (void)err;
    size_t w = s->row_width;
    if (pst_slice_ftrl_block_step(s, s->touched, s->n_touched, NULL, true, scale, lr)) {
        for (size_t i = 0; i < s->n_touched; i++)
            s->is_touched[s->touched[i]] = 0;
        s->n_touched = 0;
        return PST_OK;
    }
    for (size_t i = 0; i < s->n_touched; i++) {
        if (i + PREFETCH_AHEAD < s->n_touched)
            prefetch_step(s, s->touched[i + PREFETCH_AHEAD], true);
        uint32_t r = s->touched[i];
        float *acc = s->acc + (size_t)r * w;
        scale_floats(acc, w, scale);
        step_row(s, r, acc, lr);
        s->is_touched[r] = 0;
    }
    s->n_touched = 0;
    return PST_OK;
}

int pst_slice_restore_row(pst_slice_t *s, uint64_t key, const float *values, const float *state,
                          size_t n_state, uint64_t steps, pst_err_t *err)
{
    uint32_t row;
    int rc = pst_slice_rows(s, &key, 1, &row, err);
    if (rc != PST_OK)
        return rc;
    memcpy(s->rows + (size_t)row * s->row_width, values, s->row_width * sizeof(float));
    pst_slice_ftrl_forget(&s->ftrl);
    if (state == NULL)
        return PST_OK;
    if (n_state != s->state_width)
        return pst_err_set(err, PST_EFORMAT, "shard: row state of %zu floats, optimizer has %u",
                           n_state, s->state_width);
    if (n_state > 0)
        memcpy(s->row_state + (size_t)row * n_state, state, n_state * sizeof(float));
    if (n_state > 0)
        s->row_steps[row] = steps;
    return PST_OK;
}

/* ---- memory ---- */

uint64_t pst_slice_bytes(const pst_slice_t *s)
{
    size_t n_state = 0;
    pst_optim_state(s->optim, &n_state);
    uint64_t bytes = sizeof *s + n_state * sizeof(float);
    if (!s->sparse)
        return bytes + s->len * sizeof(float) * (s->acc != NULL ? 2 : 1);
    uint64_t per_row = sizeof(uint64_t) + s->row_width * sizeof(float) +
                       s->state_width * sizeof(float) + (s->state_width ? sizeof(uint64_t) : 0);
    if (s->acc != NULL)
        per_row += s->row_width * sizeof(float) + sizeof(uint32_t) + 1;
    return bytes + s->rows_cap * per_row + pst_keymap_bytes(&s->keymap);
}

uint64_t pst_shard_bytes(const pst_shard_t *self)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < self->n_slices; i++)
        bytes += pst_slice_bytes(self->slices[i]);
    return bytes;
}

uint64_t pst_shard_sparse_rows(const pst_shard_t *self)
{
    uint64_t rows = 0;
    for (size_t i = 0; i < self->n_slices; i++)
        rows += self->slices[i]->sparse ? self->slices[i]->n_rows : 0;
    return rows;
}
