/* Wire internals shared by the framing core (wire.c) and the receiving side (wire_recv.c). */
#ifndef PST_COMMON_NET_WIRE_INTERNAL_H
#define PST_COMMON_NET_WIRE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net/codec_auto.h"
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

#define PST_WIRE_TRACK_SLOTS 64 /* values frames of auto tensors timed at once per wire */

struct pst_wire_track;

/* One values frame handed to ZeroMQ whose release is timed: send to release is the time the link
 * took to carry it. */
typedef struct pst_wire_track_rec {
    atomic_llong done_ns; /* 0 until ZeroMQ let go of the frame */
    long long sent_ns;
    size_t bytes;
    size_t entry;                            /* index in the wire's auto table */
    void (*release)(void *data, void *hint); /* the frame owner's, called first */
    void *hint;
    struct pst_wire_track *ring;
} pst_wire_track_rec_t;

/* The wire's timed frames, in send order. Outlives the wire while ZeroMQ holds frames: the wire
 * holds one reference, and every timed frame ZeroMQ has not released one more. */
typedef struct pst_wire_track {
    atomic_int refs;
    uint64_t head, tail; /* records [tail, head) are in flight or not yet harvested */
    pst_wire_track_rec_t rec[PST_WIRE_TRACK_SLOTS];
} pst_wire_track_t;

/* The automatic codec choice of one tensor in one direction (op) on this wire. */
typedef struct pst_wire_auto_entry {
    uint32_t model_id, tensor_id;
    int op;
    pst_codec_auto_t choice;
    size_t sample_at;       /* where the next probe's sample starts, in floats */
    long long last_done_ns; /* release time of this entry's previous timed frame */
} pst_wire_auto_entry_t;

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
    pst_wire_auto_entry_t *autos; /* (n_autos) */
    size_t n_autos, autos_cap;
    pst_wire_track_t *track; /* NULL until the first auto send */
    uint8_t *probe_enc;      /* a probe's encoded sample; (probe_enc_cap) bytes */
    size_t probe_enc_cap;
    float *probe_back; /* a probe's decoded sample; (PST_WIRE_AUTO_SAMPLE) floats */
    /* coalescing (see pst_wire_set_coalesce) */
    bool coalesce;
    bool out_open; /* a ZeroMQ message is being sent: its last frame went with ZMQ_SNDMORE */
    uint8_t out_route[256]; /* ROUTER: the peer that message goes to */
    size_t out_route_len;
    bool in_open; /* the last message received has another after it in the same ZeroMQ message,
                   * whose header frame is in_next */
    zmq_msg_t in_next;
    zmq_msg_t in_route; /* ROUTER: that ZeroMQ message's routing frame, when in_route_kept */
    bool in_route_kept;
    _Alignas(16) uint8_t arena[ARENA_BYTES];
};

/* Grows *buf to at least n floats (contents not kept): PST_OK or PST_ENOMEM. */
int pst_wire_ensure_floats(float **buf, size_t *cap, size_t n);

/* ---- automatic codec choice (wire_auto.c) ---- */

#define PST_WIRE_AUTO_SAMPLE 32768 /* floats a probe encodes and decodes (128 KiB) */

/* The codec for n values of the message hdr announces, chosen by that tensor's auto entry
 * (measuring the compressors on a sample when due); *entry receives the entry's index, or SIZE_MAX
 * when none could be kept (the values then travel raw). */
pst_codec_t pst_wire_auto_pick(pst_wire_t *w, const Pst__Header *hdr, const float *values, size_t n,
                               size_t *entry);
/* Wraps len bytes at data in msg so that release(data, hint) runs once ZeroMQ lets go, timing the
 * frame for entry's link estimate when entry != SIZE_MAX and a slot is free. On failure release
 * has run. */
int pst_wire_auto_wrap(pst_wire_t *w, size_t entry, zmq_msg_t *msg, void *data, size_t len,
                       void (*release)(void *data, void *hint), void *hint, pst_err_t *err);
/* Frees the auto table and drops the wire's reference to its timed frames. */
void pst_wire_auto_fini(pst_wire_t *w);

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
