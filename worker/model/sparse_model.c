/* Sparse local model: rows of LR or FM weights with their optimizer state, created on first
 * touch, stepped by FTRL or AdaGrad. */
#include "worker/model/sparse_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/keymap.h"
#include "common/net/wire.h"

#define INIT_STREAM 0x9e3779b97f4a7c15ull
#define NO_ROW UINT32_MAX /* a key the map does not hold */
/* Keys looked up ahead of use: their table cells and rows are requested while earlier ones are
 * processed, hiding the memory latency of random access into large maps. */
#define PREFETCH_AHEAD 16

/* The model's rows: entry r = [weights | optimizer state] of keys[r], the map's row r. */
typedef struct row_store {
    uint32_t width; /* floats per entry: row_width + state width */
    size_t cap;
    uint64_t *keys; // (cap) in order of first touch
    float *entries; // (cap, width)
    pst_keymap_t map;
} row_store_t;

/* Room for n rows. */
static int rows_reserve(row_store_t *m, size_t n)
{
    if (n <= m->cap)
        return PST_OK;
    size_t cap = m->cap ? m->cap : 256;
    while (cap < n)
        cap *= 2;
    uint64_t *keys = realloc(m->keys, cap * sizeof *keys);
    if (keys == NULL)
        return PST_ENOMEM;
    m->keys = keys;
    float *entries = realloc(m->entries, cap * m->width * sizeof *entries);
    if (entries == NULL)
        return PST_ENOMEM;
    m->entries = entries;
    pst_keymap_advise_huge(entries, cap * m->width * sizeof *entries);
    m->cap = cap;
    return PST_OK;
}

static void row_store_fini(row_store_t *m)
{
    free(m->keys);
    free(m->entries);
    pst_keymap_fini(&m->map);
    memset(m, 0, sizeof *m);
}

/* ---- the local model ---- */

struct pst_sparse_model {
    pst_sparse_train_opts_t opts;
    uint32_t row_width, state_width;
    row_store_t store;
    uint32_t tag_base; /* cells tagged in [tag_base, tag_base + unique keys) are in this step */
    float bias;
    float bias_state[2];
    /* step workspace, grown to the largest batch */
    size_t nnz_cap;
    uint64_t *keys;     // (nnz_cap)
    uint32_t *slot;     // (nnz_cap)
    uint64_t *hash;     // (nnz_cap) pst_wire_key_hash of each unique key
    uint32_t *entry;    // (nnz_cap) map row of each unique key
    float *rows, *grad; // (nnz_cap, row_width)
    float *state;       // (nnz_cap, state_width) FTRL: the z rows, then the n rows
    pst_sparse_keysort_t scratch;
};

void pst_sparse_train_opts_defaults(pst_sparse_train_opts_t *opts, pst_sparse_kind_t kind)
{
    memset(opts, 0, sizeof *opts);
    opts->spec.kind = kind;
    opts->spec.n_factors = kind == PST_SPARSE_FM ? 8 : 0;
    opts->optimizer = PST_SPARSE_OPT_FTRL;
    pst_ftrl_cfg_defaults(&opts->ftrl);
    /* gradients are means over batches of 256 rows: the per-example beta 1 divided by 256 */
    opts->ftrl.alpha = 0.1f;
    opts->ftrl.beta = 1.0f / 256.0f;
    pst_ftrl_adagrad_cfg_defaults(&opts->adagrad);
    opts->init_scale = kind == PST_SPARSE_FM ? 0.01f : 0.0f;
}

static int opts_check(const pst_sparse_train_opts_t *o, pst_err_t *err)
{
    int rc = pst_sparse_spec_check(&o->spec, err);
    if (rc != PST_OK)
        return rc;
    if (o->optimizer == PST_SPARSE_OPT_FTRL)
        rc = pst_ftrl_cfg_check(&o->ftrl, err);
    else if (o->optimizer == PST_SPARSE_OPT_ADAGRAD)
        rc = pst_ftrl_adagrad_cfg_check(&o->adagrad, err);
    else
        rc = pst_err_set(err, PST_EINVAL, "sparse model: unknown optimizer %d", (int)o->optimizer);
    if (rc != PST_OK)
        return rc;
    if (!(o->init_scale >= 0.0f && isfinite(o->init_scale)))
        return pst_err_set(err, PST_EINVAL, "sparse model: init_scale %g must be >= 0",
                           o->init_scale);
    return PST_OK;
}

pst_sparse_model_t *pst_sparse_model_new(const pst_sparse_train_opts_t *opts, pst_err_t *err)
{
    if (opts_check(opts, err) != PST_OK)
        return NULL;
    pst_sparse_model_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        pst_err_set(err, PST_ENOMEM, "sparse model: out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->row_width = pst_sparse_row_width(&opts->spec);
    self->state_width =
        opts->optimizer == PST_SPARSE_OPT_FTRL ? 2 * self->row_width : self->row_width;
    self->store.width = self->row_width + self->state_width;
    return self;
}

static void free_workspace(pst_sparse_model_t *self)
{
    free(self->keys);
    free(self->slot);
    free(self->hash);
    free(self->entry);
    free(self->rows);
    free(self->grad);
    free(self->state);
    pst_sparse_keysort_fini(&self->scratch);
}

void pst_sparse_model_destroy(pst_sparse_model_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_sparse_model_t *self = *self_p;
    row_store_fini(&self->store);
    free_workspace(self);
    free(self);
    *self_p = NULL;
}

static int workspace_reserve(pst_sparse_model_t *self, size_t nnz, pst_err_t *err)
{
    if (nnz > UINT32_MAX)
        return pst_err_set(err, PST_ERANGE, "sparse batch: %zu entries exceed 2^32", nnz);
    if (nnz <= self->nnz_cap)
        return PST_OK;
    size_t w = self->row_width;
    int rc = pst_array_resize((void **)&self->keys, nnz, sizeof(uint64_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&self->slot, nnz, sizeof(uint32_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&self->hash, nnz, sizeof(uint64_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&self->entry, nnz, sizeof(uint32_t));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&self->rows, nnz, w * sizeof(float));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&self->grad, nnz, w * sizeof(float));
    if (rc == PST_OK)
        rc = pst_array_resize((void **)&self->state, nnz, self->state_width * sizeof(float));
    if (rc == PST_OK)
        rc = pst_sparse_keysort_reserve(&self->scratch, nnz);
    if (rc != PST_OK)
        return pst_err_set(err, rc, "sparse model: no memory for a batch of %zu entries", nnz);
    self->nnz_cap = nnz;
    return PST_OK;
}

/* Value j of a new row of key: uniform in [-init_scale, init_scale] as a function of (seed, key,
 * j) only, the same function a parameter server's sparse tensor uses (ps/shard.c), so a local
 * model starts where a distributed one does. */
static float init_value(const pst_sparse_model_t *self, uint64_t key, uint32_t j)
{
    uint64_t h =
        pst_wire_key_hash(self->opts.init_seed ^ pst_wire_key_hash(key) ^ (INIT_STREAM * (j + 1)));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    return (float)((2.0 * u - 1.0) * self->opts.init_scale);
}

/* self->hash[0..n) = the hashes of keys[0..n), each computed once per step. */
static void hash_keys(pst_sparse_model_t *self, size_t n)
{
    for (size_t i = 0; i < n; i++)
        self->hash[i] = pst_wire_key_hash(self->keys[i]);
}

/* The map rows of keys[0..n) into self->entry, NO_ROW for keys not in the map. */
static void find_rows(pst_sparse_model_t *self, size_t n)
{
    hash_keys(self, n);
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            pst_keymap_prefetch_hashed(&self->store.map, self->hash[i + PREFETCH_AHEAD]);
        int64_t found = pst_keymap_find_hashed(&self->store.map, self->keys[i], self->hash[i]);
        self->entry[i] = found >= 0 ? (uint32_t)found : NO_ROW;
    }
}

/* self->rows (n, row_width) = the rows self->entry[0..n) name; zeros for NO_ROW. With state
 * (the rows exist), their FTRL state too: self->state = z (n, row_width), then n. */
static void gather(pst_sparse_model_t *self, size_t n, bool state)
{
    size_t w = self->row_width;
    float *z = self->state, *sq = self->state + n * w;
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n && self->entry[i + PREFETCH_AHEAD] != NO_ROW)
            __builtin_prefetch(self->store.entries +
                               (size_t)self->entry[i + PREFETCH_AHEAD] * self->store.width);
        /* a loop, not memcpy: rows are a few floats (LR: one) */
        float *dst = self->rows + i * w;
        uint32_t e = self->entry[i];
        const float *src = e != NO_ROW ? self->store.entries + (size_t)e * self->store.width : NULL;
        for (size_t j = 0; j < w; j++)
            dst[j] = src != NULL ? src[j] : 0.0f;
        for (size_t j = 0; state && j < w; j++) {
            z[i * w + j] = src[w + j];
            sq[i * w + j] = src[2 * w + j];
        }
    }
}

static void gather_rows(pst_sparse_model_t *self, size_t n)
{
    gather(self, n, false);
}

/* One optimizer step on count weights w with state beside them. */
static void optimizer_step(const pst_sparse_model_t *self, float *w, float *state, const float *g,
                           size_t count)
{
    if (self->opts.optimizer == PST_SPARSE_OPT_FTRL)
        pst_ftrl_update(&self->opts.ftrl, w, state, state + count, g, count);
    else
        pst_ftrl_adagrad_update(&self->opts.adagrad, w, state, g, count);
}

/* A new row for key, whose empty ref is given (the map has room for the row). */
static void row_add(pst_sparse_model_t *self, uint64_t key, pst_keymap_ref_t *ref)
{
    row_store_t *m = &self->store;
    size_t r = m->map.n;
    m->keys[r] = key;
    float *e = m->entries + r * m->width;
    for (uint32_t j = 0; j < self->row_width; j++)
        e[j] = self->opts.init_scale != 0.0f ? init_value(self, key, j) : 0.0f;
    memset(e + self->row_width, 0, self->state_width * sizeof(float));
    pst_keymap_claim(&m->map, key, ref, (uint32_t)r);
}

/* Starts a step of nnz entries: room for every key to be new, and a tag range no ref holds. */
static int step_begin(pst_sparse_model_t *self, size_t nnz, pst_err_t *err)
{
    row_store_t *m = &self->store;
    size_t n = m->map.n;
    if (n + nnz > PST_KEYMAP_MAX_ROWS || rows_reserve(m, n + nnz) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add %zu rows to %zu", nnz, n);
    if (self->tag_base == 0 || self->tag_base > UINT32_MAX - nnz) {
        pst_keymap_clear_tags(&m->map);
        self->tag_base = 1;
    }
    return PST_OK;
}

/* The loop of step_keys over the keys col32 or col64 (the other NULL): inlined once per width,
 * so the width is a constant inside. */
static inline __attribute__((always_inline)) int step_keys_of(pst_sparse_model_t *self,
                                                              const uint32_t *col32,
                                                              const uint64_t *col64, size_t nnz,
                                                              uint32_t *n_unique)
{
    pst_keymap_t *m = &self->store.map;
    uint32_t *restrict slot = self->slot, *restrict entry = self->entry;
    pst_keymap_ref_t *direct = m->direct;
    uint32_t tag = self->tag_base, unique = 0;
    for (size_t k = 0; k < nnz; k++) {
        if (k + PREFETCH_AHEAD < nnz)
            pst_keymap_prefetch(m, col64 ? col64[k + PREFETCH_AHEAD] : col32[k + PREFETCH_AHEAD]);
        uint64_t key = col64 ? col64[k] : col32[k];
        pst_keymap_ref_t *ref = key < m->direct_cap ? &direct[key] : pst_keymap_ref_beyond(m, key);
        if (ref == NULL)
            return PST_ENOMEM;
        direct = m->direct;
        if (ref->row1 == 0)
            row_add(self, key, ref);
        if (ref->tag < tag) {
            ref->tag = tag + unique;
            entry[unique++] = ref->row1 - 1;
        }
        slot[k] = ref->tag - tag;
    }
    self->tag_base = tag + unique;
    *n_unique = unique;
    return PST_OK;
}

/* The step's unique keys without sorting: every entry's key is looked up (its row created on
 * first touch) and the first entry of a key in the step tags the key's ref with the next slot.
 * self->entry[0..*n) = the rows of the unique keys in order of first occurrence, self->slot[k] =
 * entry k's slot. A key's gradient still sums its entries in entry order, so the step equals
 * one over sorted keys; rows are created in order of first occurrence. */
static int step_keys(pst_sparse_model_t *self, const pst_sparse_batch_t *b, size_t *n,
                     pst_err_t *err)
{
    size_t nnz = pst_sparse_batch_nnz(b), base = nnz > 0 ? b->row_ptr[0] : 0;
    int rc = step_begin(self, nnz, err);
    if (rc != PST_OK)
        return rc;
    uint32_t unique = 0;
    if (b->col64 != NULL)
        rc = step_keys_of(self, NULL, b->col64 + base, nnz, &unique);
    else
        rc = step_keys_of(self, b->col32 + base, NULL, nnz, &unique);
    if (rc != PST_OK)
        return pst_err_set(err, rc, "sparse model: no memory for the rows of %zu keys",
                           self->store.map.n);
    *n = unique;
    return PST_OK;
}

/* The gathered weights and state back into the rows self->entry[0..n). */
static void scatter_rows(pst_sparse_model_t *self, size_t n)
{
    size_t rw = self->row_width;
    const float *w = self->rows, *z = self->state, *sq = self->state + n * rw;
    for (size_t i = 0; i < n; i++) {
        float *e = self->store.entries + (size_t)self->entry[i] * self->store.width;
        for (size_t j = 0; j < rw; j++) {
            e[j] = w[i * rw + j];
            e[rw + j] = z[i * rw + j];
            e[2 * rw + j] = sq[i * rw + j];
        }
    }
}

/* The optimizer step of the rows self->entry[0..n), gathered into self->rows (and for FTRL their
 * state into self->state), with the gradients in self->grad. FTRL steps the gathered block at once
 * (pst_ftrl_update_kept: the model's FTRL settings never change and only its steps write the rows,
 * so every row's weights are those of its state) and writes it back; AdaGrad steps the rows in
 * place. */
static void optimizer_steps(pst_sparse_model_t *self, size_t n)
{
    size_t rw = self->row_width;
    if (self->opts.optimizer == PST_SPARSE_OPT_FTRL) {
        pst_ftrl_update_kept(&self->opts.ftrl, self->rows, self->state, self->state + n * rw,
                             self->grad, n * rw);
        scatter_rows(self, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float *e = self->store.entries + (size_t)self->entry[i] * self->store.width;
        optimizer_step(self, e, e + rw, self->grad + i * rw, rw);
    }
}

int pst_sparse_model_update(pst_sparse_model_t *self, const pst_sparse_batch_t *b, double *loss,
                            pst_err_t *err)
{
    int rc = pst_sparse_batch_check(b, err);
    if (rc == PST_OK)
        rc = workspace_reserve(self, pst_sparse_batch_nnz(b), err);
    size_t n_keys = 0;
    if (rc == PST_OK)
        rc = step_keys(self, b, &n_keys, err);
    if (rc != PST_OK)
        return rc;
    gather(self, n_keys, self->opts.optimizer == PST_SPARSE_OPT_FTRL);
    pst_sparse_weights_t w = {.rows = self->rows, .n_keys = n_keys, .bias = self->bias};
    pst_sparse_grad_t g = {.rows = self->grad};
    rc = pst_fm_step(b, pst_sparse_factors(&self->opts.spec), self->slot, &w, &g, err);
    if (rc != PST_OK)
        return rc;
    optimizer_steps(self, n_keys);
    optimizer_step(self, &self->bias, self->bias_state, &g.bias, 1);
    if (loss != NULL)
        *loss = g.loss;
    return PST_OK;
}

int pst_sparse_model_predict(pst_sparse_model_t *self, const pst_sparse_batch_t *b, float *prob,
                             pst_err_t *err)
{
    int rc = pst_sparse_batch_check(b, err);
    if (rc == PST_OK)
        rc = workspace_reserve(self, pst_sparse_batch_nnz(b), err);
    if (rc != PST_OK)
        return rc;
    size_t n_keys = pst_sparse_keysort_collect(&self->scratch, b, self->keys, self->slot);
    find_rows(self, n_keys);
    gather_rows(self, n_keys);
    pst_sparse_weights_t w = {.rows = self->rows, .n_keys = n_keys, .bias = self->bias};
    return pst_sparse_predict(&self->opts.spec, b, self->slot, &w, prob, err);
}

/* The map rows of keys[0..n) into self->entry, creating missing ones. */
static int touch_rows(pst_sparse_model_t *self, size_t n, pst_err_t *err)
{
    row_store_t *m = &self->store;
    size_t held = m->map.n;
    if (held + n > PST_KEYMAP_MAX_ROWS || rows_reserve(m, held + n) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add %zu rows to %zu", n, held);
    for (size_t i = 0; i < n; i++) {
        uint64_t key = self->keys[i];
        pst_keymap_ref_t *ref = pst_keymap_ref(&m->map, key);
        if (ref == NULL)
            return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add a row (%zu rows)",
                               m->map.n);
        if (ref->row1 == 0)
            row_add(self, key, ref);
        self->entry[i] = ref->row1 - 1;
    }
    return PST_OK;
}

int pst_sparse_model_lookup(pst_sparse_model_t *self, const pst_sparse_batch_t *b, bool create,
                            const float **rows, const uint32_t **slot_of_nnz, size_t *n_keys,
                            pst_err_t *err)
{
    int rc = pst_sparse_batch_check(b, err);
    if (rc == PST_OK)
        rc = workspace_reserve(self, pst_sparse_batch_nnz(b), err);
    if (rc != PST_OK)
        return rc;
    size_t n = pst_sparse_keysort_collect(&self->scratch, b, self->keys, self->slot);
    if (create)
        rc = touch_rows(self, n, err);
    else
        find_rows(self, n);
    if (rc != PST_OK)
        return rc;
    gather_rows(self, n);
    *rows = self->rows;
    *slot_of_nnz = self->slot;
    *n_keys = n;
    return PST_OK;
}

void pst_sparse_model_apply(pst_sparse_model_t *self, const float *grad, size_t n_keys)
{
    size_t rw = self->row_width;
    for (size_t i = 0; i < n_keys; i++) {
        if (self->entry[i] == NO_ROW) /* a lookup without create: nothing to step */
            continue;
        float *e = self->store.entries + (size_t)self->entry[i] * self->store.width;
        optimizer_step(self, e, e + rw, grad + i * rw, rw);
    }
}

uint64_t pst_sparse_model_bytes(const pst_sparse_model_t *self)
{
    const row_store_t *m = &self->store;
    return (uint64_t)m->cap * (sizeof(uint64_t) + m->width * sizeof(float)) +
           pst_keymap_bytes(&m->map);
}

size_t pst_sparse_model_n_keys(const pst_sparse_model_t *self)
{
    return self->store.map.n;
}

const float *pst_sparse_model_entry(const pst_sparse_model_t *self, size_t index, uint64_t *key)
{
    if (index >= self->store.map.n)
        return NULL;
    if (key != NULL)
        *key = self->store.keys[index];
    return self->store.entries + index * self->store.width;
}

const float *pst_sparse_model_row(const pst_sparse_model_t *self, uint64_t key)
{
    int64_t found = pst_keymap_find(&self->store.map, key);
    return found >= 0 ? self->store.entries + (size_t)found * self->store.width : NULL;
}

float pst_sparse_model_bias(const pst_sparse_model_t *self)
{
    return self->bias;
}
int pst_sparse_model_set_row(pst_sparse_model_t *self, uint64_t key, const float *values,
                             pst_err_t *err)
{
    row_store_t *m = &self->store;
    size_t held = m->map.n;
    if (held + 1 > PST_KEYMAP_MAX_ROWS || rows_reserve(m, held + 1) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add a row to %zu", held);
    pst_keymap_ref_t *ref = pst_keymap_ref(&m->map, key);
    if (ref == NULL)
        return pst_err_set(err, PST_ENOMEM, "sparse model: cannot add a row (%zu rows)", held);
    if (ref->row1 == 0)
        row_add(self, key, ref);
    float *e = m->entries + (size_t)(ref->row1 - 1) * m->width;
    memcpy(e, values, self->row_width * sizeof *e);
    memset(e + self->row_width, 0, self->state_width * sizeof *e);
    return PST_OK;
}
