/* Keymap: a direct array for small keys and open addressing with linear probing for the rest. */
#include "common/keymap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/err.h"

#define HUGE_PAGE ((size_t)2 << 20)
#define SMALL_PAGE ((size_t)4096)

void pst_keymap_init(pst_keymap_t *m)
{
    memset(m, 0, sizeof *m);
}

void pst_keymap_fini(pst_keymap_t *m)
{
    free(m->table);
    free(m->direct);
    memset(m, 0, sizeof *m);
}

void pst_keymap_advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes < HUGE_PAGE)
        return;
    uintptr_t start = ((uintptr_t)p + SMALL_PAGE - 1) & ~(uintptr_t)(SMALL_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~(uintptr_t)(SMALL_PAGE - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Puts a key that is not in the table into its first empty cell. The table has room. */
static void table_put(pst_keymap_t *m, uint64_t key, uint64_t h, pst_keymap_ref_t ref)
{
    size_t mask = m->table_cap - 1, at = pst_keymap_slot(h, mask);
    while (m->table[at].ref.row1 != 0)
        at = (at + 1) & mask;
    m->table[at] = (pst_keymap_cell_t){.key = key, .ref = ref};
}

/* Room for n keys in the hash table, keeping it at most half full. */
static int table_reserve(pst_keymap_t *m, size_t n)
{
    if (2 * n <= m->table_cap)
        return PST_OK;
    size_t cap = m->table_cap ? m->table_cap : 512;
    while (cap < 2 * n)
        cap *= 2;
    pst_keymap_cell_t *table = calloc(cap, sizeof *table);
    if (table == NULL)
        return PST_ENOMEM;
    pst_keymap_advise_huge(table, cap * sizeof *table);
    pst_keymap_cell_t *old = m->table;
    size_t old_cap = m->table_cap;
    m->table = table;
    m->table_cap = cap;
    /* in the old table's order: a cell's new home lies near its old one (the slot keeps the
     * hash's low bits), so the writes stream instead of hopping at random */
    for (size_t at = 0; at < old_cap; at++) {
        if (old[at].ref.row1 != 0)
            table_put(m, old[at].key, pst_wire_key_hash(old[at].key), old[at].ref);
    }
    free(old);
    return PST_OK;
}

/* Moves the table's keys below the direct array's new capacity into the array: the table is
 * rebuilt from the keys that stay. */
static int direct_take_from_table(pst_keymap_t *m)
{
    if (m->n_hashed == 0)
        return PST_OK;
    pst_keymap_cell_t *table = calloc(m->table_cap, sizeof *table);
    if (table == NULL)
        return PST_ENOMEM;
    pst_keymap_cell_t *old = m->table;
    m->table = table;
    for (size_t at = 0; at < m->table_cap; at++) {
        if (old[at].ref.row1 == 0)
            continue;
        if (old[at].key < m->direct_cap) {
            m->direct[old[at].key] = old[at].ref;
            m->n_hashed--;
        } else {
            table_put(m, old[at].key, pst_wire_key_hash(old[at].key), old[at].ref);
        }
    }
    free(old);
    return PST_OK;
}

/* The direct array's capacity to cover key, or 0 when it would hold too many refs per key. */
static size_t direct_cap_for(const pst_keymap_t *m, uint64_t key)
{
    if (key >= PST_KEYMAP_DIRECT_MAX)
        return 0;
    size_t cap = m->direct_cap ? m->direct_cap : PST_KEYMAP_DIRECT_MIN;
    while (cap <= key)
        cap *= 2;
    size_t allowed = PST_KEYMAP_DIRECT_DENSITY * (m->n + 1);
    return cap <= PST_KEYMAP_DIRECT_MIN || cap <= allowed ? cap : 0;
}

/* The direct array grown to cap refs; new refs are empty, table keys below cap move in. The
 * array moves into a new block that is advised for huge pages before anything touches it: the
 * copy and the zeroing then fault in a few huge pages instead of one small page per 512 refs,
 * which realloc's copy (made before any advice could apply) would cost on every growth. */
static int direct_grow(pst_keymap_t *m, size_t cap)
{
    pst_keymap_ref_t *d = malloc(cap * sizeof *d);
    if (d == NULL)
        return PST_ENOMEM;
    pst_keymap_advise_huge(d, cap * sizeof *d);
    if (m->direct_cap > 0)
        memcpy(d, m->direct, m->direct_cap * sizeof *d);
    memset(d + m->direct_cap, 0, (cap - m->direct_cap) * sizeof *d);
    free(m->direct);
    m->direct = d;
    m->direct_cap = cap;
    return direct_take_from_table(m);
}

pst_keymap_ref_t *pst_keymap_ref_far(pst_keymap_t *m, uint64_t key)
{
    size_t cap = direct_cap_for(m, key);
    if (cap > 0)
        return direct_grow(m, cap) == PST_OK ? &m->direct[key] : NULL;
    if (table_reserve(m, m->n_hashed + 1) != PST_OK)
        return NULL;
    return pst_keymap_table_ref(m, key, pst_wire_key_hash(key));
}

int pst_keymap_insert(pst_keymap_t *m, uint64_t key, uint32_t row)
{
    if (row >= PST_KEYMAP_MAX_ROWS)
        return PST_ERANGE;
    pst_keymap_ref_t *ref = pst_keymap_ref(m, key);
    if (ref == NULL)
        return PST_ENOMEM;
    if (ref->row1 != 0)
        return PST_ESTATE;
    pst_keymap_claim(m, key, ref, row);
    return PST_OK;
}

void pst_keymap_clear_tags(pst_keymap_t *m)
{
    for (size_t at = 0; at < m->table_cap; at++)
        m->table[at].ref.tag = 0;
    for (size_t at = 0; at < m->direct_cap; at++)
        m->direct[at].tag = 0;
}

uint64_t pst_keymap_bytes(const pst_keymap_t *m)
{
    return (uint64_t)m->table_cap * sizeof(pst_keymap_cell_t) +
           (uint64_t)m->direct_cap * sizeof(pst_keymap_ref_t);
}
