/* Wire internals shared by the framing core (wire.c) and the receiving side (wire_recv.c). */
#ifndef PST_COMMON_NET_WIRE_INTERNAL_H
#define PST_COMMON_NET_WIRE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net/keycodec.h"
#include "common/net/wire.h"

#define POOL_SIZE 32            /* payload buffers kept for reuse per wire */
#define ARENA_BYTES (64 * 1024) /* header unpacking; a header that needs more is rejected */

/* A payload buffer. The pool holds one reference while the buffer sits in the pool; every
 * message ZeroMQ has not yet released holds one more. */
typedef struct pst_wire_pool_buf {
    atomic_int refs;
    size_t cap;
    uint8_t *data;
} pst_wire_pool_buf_t;

struct pst_wire {
    pst_wire_role_t role;
    uint64_t max_bytes;
    pst_wire_stats_t stats;
    ProtobufCAllocator alloc; /* bump allocator over arena, reset for every header */
    size_t arena_used;
    pst_keycodec_t *kc;
    uint64_t *keys; /* decoded keys, or an aligned copy of a raw keys frame that arrived
                     * misaligned; (keys_cap) */
    size_t keys_cap;
    float *scratch; /* the receiver's view of a lossy payload, for the sender's checksum */
    size_t scratch_cap;
    float *view; /* decoded values handed out by pst_wire_view */
    size_t view_cap;
    pst_wire_pool_buf_t *pool[POOL_SIZE];
    _Alignas(16) uint8_t arena[ARENA_BYTES];
};

/* Grows *buf to at least n floats (contents not kept): PST_OK or PST_ENOMEM. */
int pst_wire_ensure_floats(float **buf, size_t *cap, size_t n);

/* What each op carries. */
bool pst_wire_op_known(int op);
bool pst_wire_op_carries_blob(int op);
/* Whether a message with this header has a blob frame. */
bool pst_wire_has_blob_frame(const Pst__Header *h);
bool pst_wire_carries_keys(const Pst__Header *h);
/* Whether a message with this header has a keys frame. */
bool pst_wire_has_keys_frame(const Pst__Header *h);
/* Whether the keys and values a header declares stay within the size limit (row_width already
 * checked for sparse headers). */
bool pst_wire_count_fits(const pst_wire_t *w, const Pst__Header *h);

#endif
