/* Teacher scores by row content (see distill_cache.h). */
#include "worker/train/distill_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/hashing.h"
#include "common/keymap.h"

/* Seeds of the two hashes: any two different values. */
#define SEED_FIND 0x9e3779b97f4a7c15ull
#define SEED_CHECK 0xc2b2ae3d27d4eb4full
/* Rows first allocated for; the arrays double from there up to max_rows. */
#define FIRST_ROWS 4096

struct pst_distill_cache {
    pst_keymap_t map; /* first hash -> row */
    uint64_t *check;  // (cap) second hash of each row
    float *scores;    // (cap, n_classes)
    size_t n, cap, max_rows;
    size_t row_bytes;
    int n_classes;
};

pst_distill_cache_t *pst_distill_cache_new(int n_inputs, int n_classes, size_t max_rows)
{
    pst_distill_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    pst_keymap_init(&c->map);
    c->row_bytes = (size_t)n_inputs * sizeof(float);
    c->n_classes = n_classes;
    /* per row: its scores, its check hash, and about two keymap cells */
    size_t per_row =
        (size_t)n_classes * sizeof(float) + sizeof(uint64_t) + 2 * sizeof(pst_keymap_cell_t);
    size_t cap = PST_DISTILL_CACHE_BYTES / per_row;
    c->max_rows = max_rows > 0 && max_rows < cap ? max_rows : cap;
    if (c->max_rows > PST_KEYMAP_MAX_ROWS)
        c->max_rows = PST_KEYMAP_MAX_ROWS;
    return c;
}

void pst_distill_cache_destroy(pst_distill_cache_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_distill_cache_t *c = *self_p;
    pst_keymap_fini(&c->map);
    free(c->check);
    free(c->scores);
    free(c);
    *self_p = NULL;
}

const float *pst_distill_cache_find(const pst_distill_cache_t *c, const float *row)
{
    int64_t at = pst_keymap_find(&c->map, pst_hash64(SEED_FIND, row, c->row_bytes));
    if (at < 0 || c->check[at] != pst_hash64(SEED_CHECK, row, c->row_bytes))
        return NULL;
    return c->scores + (size_t)at * (size_t)c->n_classes;
}

/* Room for one more row; false when full or out of memory. */
static bool grow(pst_distill_cache_t *c)
{
    if (c->n < c->cap)
        return true;
    if (c->cap >= c->max_rows)
        return false;
    size_t cap = c->cap ? 2 * c->cap : FIRST_ROWS;
    cap = cap < c->max_rows ? cap : c->max_rows;
    uint64_t *check = realloc(c->check, cap * sizeof *check);
    if (check == NULL)
        return false;
    c->check = check;
    float *scores = realloc(c->scores, cap * (size_t)c->n_classes * sizeof *scores);
    if (scores == NULL)
        return false;
    c->scores = scores;
    c->cap = cap;
    return true;
}

bool pst_distill_cache_put(pst_distill_cache_t *c, const float *row, const float *scores)
{
    if (!grow(c))
        return false;
    uint64_t key = pst_hash64(SEED_FIND, row, c->row_bytes);
    if (pst_keymap_find(&c->map, key) >= 0 || pst_keymap_insert(&c->map, key, (uint32_t)c->n) != 0)
        return false;
    c->check[c->n] = pst_hash64(SEED_CHECK, row, c->row_bytes);
    memcpy(c->scores + c->n * (size_t)c->n_classes, scores, (size_t)c->n_classes * sizeof *scores);
    c->n++;
    return true;
}

size_t pst_distill_cache_size(const pst_distill_cache_t *c)
{
    return c->n;
}
