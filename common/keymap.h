/* Keymap: uint64 key -> row index, for the sparse tensors of the servers and the local models. */
#ifndef PST_COMMON_KEYMAP_H
#define PST_COMMON_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/net/wire.h"

/* Keys below the direct array's capacity are placed by index in it instead of the hash table:
 * feature ids of LIBSVM files and hashed features of up to 2^22 buckets then cost no hashing and
 * 8 bytes of cache per key, and ids numbered by frequency keep the frequent keys together. The
 * array grows to cover a new key below PST_KEYMAP_DIRECT_MAX (at most 32 MiB) while it holds at
 * most PST_KEYMAP_DIRECT_DENSITY refs per key held (or PST_KEYMAP_DIRECT_MIN refs), so a few
 * large ids do not cost more than the table would; keys beyond it go to the table, and move to
 * the array when it grows over them. */
#define PST_KEYMAP_DIRECT_MAX ((uint64_t)1 << 22)
#define PST_KEYMAP_DIRECT_MIN ((size_t)65536)
#define PST_KEYMAP_DIRECT_DENSITY 8
/* The most rows a map holds: a ref stores row + 1 in a uint32, 0 = empty. */
#define PST_KEYMAP_MAX_ROWS 0xfffffffeu

/* Where a key's row is, and a mark its owner may set on the key (a training step's slot). */
typedef struct pst_keymap_ref {
    uint32_t row1; /* row + 1, 0 = empty */
    uint32_t tag;
} pst_keymap_ref_t;

/* A table cell holds its key beside the row, so a probe reads one cache line, not two. */
typedef struct pst_keymap_cell {
    uint64_t key;
    pst_keymap_ref_t ref;
} pst_keymap_cell_t;

/* Read the fields; change them only through the functions below. A zeroed struct is empty. */
typedef struct pst_keymap {
    size_t n;                 /* keys held */
    size_t n_hashed;          /* of which in the table */
    pst_keymap_cell_t *table; // (table_cap) at most half full; keys >= direct_cap
    size_t table_cap;
    pst_keymap_ref_t *direct; // (direct_cap) refs of keys < direct_cap <= PST_KEYMAP_DIRECT_MAX
    size_t direct_cap;
} pst_keymap_t;

void pst_keymap_init(pst_keymap_t *m);
void pst_keymap_fini(pst_keymap_t *m);

/* The cell where the probe for a key of hash h (pst_wire_key_hash) starts. The low bits of the
 * hash place a key on a server; the table uses the high ones. */
static inline size_t pst_keymap_slot(uint64_t h, size_t mask)
{
    return (size_t)((h >> 32 | h << 32) & mask);
}

/* The row of key, whose hash is h (only read for keys >= direct_cap), or -1. */
static inline int64_t pst_keymap_find_hashed(const pst_keymap_t *m, uint64_t key, uint64_t h)
{
    if (key < m->direct_cap)
        return (int64_t)m->direct[key].row1 - 1;
    if (m->table_cap == 0)
        return -1;
    size_t mask = m->table_cap - 1;
    for (size_t at = pst_keymap_slot(h, mask);; at = (at + 1) & mask) {
        const pst_keymap_cell_t *cell = &m->table[at];
        if (cell->ref.row1 == 0)
            return -1;
        if (cell->key == key)
            return (int64_t)cell->ref.row1 - 1;
    }
}

static inline int64_t pst_keymap_find(const pst_keymap_t *m, uint64_t key)
{
    return pst_keymap_find_hashed(m, key, key < m->direct_cap ? 0 : pst_wire_key_hash(key));
}

/* Hints the cache to load the table cell where the probe for a key of hash h starts. */
static inline void pst_keymap_prefetch_hashed(const pst_keymap_t *m, uint64_t h)
{
    if (m->table_cap > 0)
        __builtin_prefetch(&m->table[pst_keymap_slot(h, m->table_cap - 1)]);
}

/* Hints the cache to load the ref of key. Safe on any map and key. */
static inline void pst_keymap_prefetch(const pst_keymap_t *m, uint64_t key)
{
    if (key < m->direct_cap)
        __builtin_prefetch(&m->direct[key]);
    else if (m->table_cap > 0)
        pst_keymap_prefetch_hashed(m, pst_wire_key_hash(key));
}

/* The ref of a key beyond the direct array's reach: the array grown to it, or its table cell
 * (taken, with an empty ref, when the key is new). NULL when out of memory. Growth moves refs
 * (re-read m->direct; earlier refs are stale) but keeps their tags. */
pst_keymap_ref_t *pst_keymap_ref_far(pst_keymap_t *m, uint64_t key);

/* The ref of key in the table, which has room for one more key (key >= direct_cap, of hash h):
 * its cell's, or that of the empty cell where the key goes, whose key is then set. */
static inline pst_keymap_ref_t *pst_keymap_table_ref(pst_keymap_t *m, uint64_t key, uint64_t h)
{
    size_t mask = m->table_cap - 1;
    for (size_t at = pst_keymap_slot(h, mask);; at = (at + 1) & mask) {
        pst_keymap_cell_t *cell = &m->table[at];
        if (cell->ref.row1 == 0)
            cell->key = key;
        if (cell->key == key)
            return &cell->ref;
    }
}

/* pst_keymap_ref_far with the common case inline: a key the direct array never takes, in a table
 * with room for one more key. */
static inline pst_keymap_ref_t *pst_keymap_ref_beyond(pst_keymap_t *m, uint64_t key)
{
    if (key < PST_KEYMAP_DIRECT_MAX || 2 * (m->n_hashed + 1) > m->table_cap)
        return pst_keymap_ref_far(m, key);
    return pst_keymap_table_ref(m, key, pst_wire_key_hash(key));
}

/* The ref of key; an empty one (row1 == 0) for a new key, to be claimed with
 * pst_keymap_claim or left empty. NULL when out of memory. */
static inline pst_keymap_ref_t *pst_keymap_ref(pst_keymap_t *m, uint64_t key)
{
    return key < m->direct_cap ? &m->direct[key] : pst_keymap_ref_beyond(m, key);
}

/* Gives key's empty ref (from pst_keymap_ref) the row `row`, with tag 0. */
static inline void pst_keymap_claim(pst_keymap_t *m, uint64_t key, pst_keymap_ref_t *ref,
                                    uint32_t row)
{
    *ref = (pst_keymap_ref_t){.row1 = row + 1, .tag = 0};
    m->n++;
    m->n_hashed += key >= m->direct_cap;
}

/* Maps key to row (key must be new, row < PST_KEYMAP_MAX_ROWS). PST_ENOMEM, PST_ESTATE if the
 * key is already held. */
int pst_keymap_insert(pst_keymap_t *m, uint64_t key, uint32_t row);

/* Sets every ref's tag to 0. */
void pst_keymap_clear_tags(pst_keymap_t *m);

/* Bytes the table and the direct array hold (allocated capacity). */
uint64_t pst_keymap_bytes(const pst_keymap_t *m);

/* Asks for huge pages under a block of bytes read at random (rows, tables): with 4 KiB pages
 * nearly every such read would also miss the TLB. Only a hint. */
void pst_keymap_advise_huge(void *p, size_t bytes);

#endif
