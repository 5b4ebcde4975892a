/* String table: open addressing over codes, strings kept in first-appearance order. */
#include "common/data/strtab.h"

#include <stdlib.h>
#include <string.h>

#include "common/data/hashing.h"
#include "common/err.h"

void pst_strtab_init(pst_strtab_t *t)
{
    memset(t, 0, sizeof *t);
}

void pst_strtab_fini(pst_strtab_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->strs[i]);
    free(t->strs);
    free(t->lens);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static size_t slot_of(const pst_strtab_t *t, const char *s, size_t len)
{
    size_t mask = t->n_slots - 1, i = (size_t)pst_hash64(0x5354u, s, len) & mask;
    for (;;) {
        uint32_t c = t->slots[i];
        if (c == 0 || (t->lens[c - 1] == len && memcmp(t->strs[c - 1], s, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

/* Doubles the slot array (load factor stays under 1/2). */
static int grow_slots(pst_strtab_t *t)
{
    size_t n_slots = t->n_slots ? 2 * t->n_slots : 64;
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL)
        return PST_ENOMEM;
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    for (size_t k = 0; k < t->n; k++)
        t->slots[slot_of(t, t->strs[k], t->lens[k])] = (uint32_t)(k + 1);
    return PST_OK;
}

long pst_strtab_find(const pst_strtab_t *t, const char *s, size_t len)
{
    if (t->n_slots == 0)
        return -1;
    uint32_t c = t->slots[slot_of(t, s, len)];
    return c ? (long)c - 1 : -1;
}

int pst_strtab_intern(pst_strtab_t *t, const char *s, size_t len, uint32_t *code)
{
    if (2 * (t->n + 1) > t->n_slots && grow_slots(t) != PST_OK)
        return PST_ENOMEM;
    size_t i = slot_of(t, s, len);
    if (t->slots[i] != 0) {
        *code = t->slots[i] - 1;
        return PST_OK;
    }
    if (t->n >= (1u << 31))
        return PST_ERANGE;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **strs = realloc(t->strs, cap * sizeof *strs);
        if (strs)
            t->strs = strs;
        size_t *lens = strs ? realloc(t->lens, cap * sizeof *lens) : NULL;
        if (lens == NULL)
            return PST_ENOMEM;
        t->lens = lens;
        t->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return PST_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    t->strs[t->n] = copy;
    t->lens[t->n] = len;
    t->slots[i] = (uint32_t)(t->n + 1);
    *code = (uint32_t)t->n++;
    return PST_OK;
}
