/* Parameter server internals shared by server.c, server_consistency.c and server_tensors.c. */
#ifndef PST_SERVER_INTERNAL_H
#define PST_SERVER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fed/fedauth.h"
#include "common/net/keycodec.h"
#include "common/net/reduce_layout.h"
#include "common/net/wire.h"
#include "ps/server.h"
#include "ps/shard.h"

#define PST_SERVER_MAX_ROUTE 256 /* ZeroMQ identities are at most 255 bytes */
/* A worker's pulls waiting for their clock, per tensor slice, and how far past the slice's clock
 * (beyond the staleness bound) a pull may ask: a worker prefetches one step ahead; more is a bug
 * or a hostile peer filling the queue. */
#define PST_SERVER_MAX_QUEUED_PULLS 16
#define PST_SERVER_MAX_CLOCKS_AHEAD 8

typedef struct pst_server_route {
    uint8_t id[PST_SERVER_MAX_ROUTE];
    size_t len;
} pst_server_route_t;

typedef struct pst_server_worker {
    int64_t last_seen_ms;
    bool alive; /* heard from within the heartbeat timeout */
    bool done;  /* sent SHUTDOWN */
    bool at_barrier;
    pst_server_route_t barrier_route;
    uint64_t barrier_seq;
    /* BSP elastic: the latest drops, (first clock missed, clock back at or UINT64_MAX) */
    uint32_t n_drops;
    uint64_t dropped_at[PST_REDUCE_MAX_DROPS], rejoined_at[PST_REDUCE_MAX_DROPS];
} pst_server_worker_t;

/* A key list a worker sent in full, and the slice rows of its keys once looked up: rows never move
 * while their slice lives, so a push naming the list its pull sent skips the lookups. */
typedef struct pst_server_keylist {
    pst_keycodec_list_t keys;
    uint32_t *rows; // (rows_cap) the row of each key, when rows_known
    size_t rows_cap;
    bool rows_known;
} pst_server_keylist_t;

/* A pull that waits for its clock. */
typedef struct pst_server_pending {
    pst_server_route_t route;
    uint32_t sender;
    uint64_t seq, clock, offset, count;
    Pst__Codec codec;
    uint64_t *keys; /* sparse: count keys; (keys_cap) */
    size_t keys_cap;
    pst_server_keylist_t *list; /* the remembered list the keys came from, or NULL; used only
                                 * while it still holds list_signature */
    uint64_t list_signature;
} pst_server_pending_t;

/* Consistency state beside slice i of the shard (same index). */
typedef struct pst_server_tensor {
    uint8_t *participant; /* (n_workers) sent INIT for this tensor */
    uint64_t *pushed;     /* (n_workers) clocks pushed: last pushed clock + 1 */
    uint8_t *contributed; /* (n_workers) BSP: pushed the open clock */
    uint32_t n_participants, n_contributed;
    float lr; /* BSP: learning rate of the open clock */
    pst_server_pending_t *pending;
    size_t n_pending, pending_cap;
    uint64_t ckpt_mark; /* clock of the last checkpoint written for this tensor's model */
    pst_server_keylist_t *keylists; /* (n_keylists = n_workers, PST_WIRE_KEY_LISTS) sparse: the
                                     * last key lists each worker sent in full */
    uint8_t *keylist_newest;        /* (n_keylists) the slot of each worker's latest list */
    uint32_t n_keylists;
} pst_server_tensor_t;

struct pst_server {
    pst_server_cfg_t cfg;
    char *ckpt_dir;
    void *ctx;
    bool own_ctx, bound;
    void *sock;
    pst_wire_t *wire;
    pst_fedauth_t *auth; /* the ZAP handler admitting the job's workers, or NULL (plain TCP) */
    pst_shard_t *shard;
    pst_contract_t contract; /* the tensors INIT may create, when has_contract */
    bool has_contract;
    struct pst_server_namespaces *namespaces; /* server_namespaces.c: declared while running */
    pst_server_tensor_t *tensors; /* (tensors_cap), the first pst_shard_count(shard) in use */
    size_t tensors_cap;
    pst_server_worker_t *workers; /* (n_workers) */
    uint64_t counters[PST_STAT_COUNT];
    float *scratch; /* decoded values; (scratch_cap) */
    size_t scratch_cap;
    uint32_t *rows; /* sparse row indices; (rows_cap) */
    size_t rows_cap;
    pst_server_keylist_t
        *msg_list; /* the remembered list of the PUSH/PULL being handled, or NULL */
    struct pst_server_reductions *reductions; /* server_reduce.c; NULL until the first */
    atomic_int stop;
};

static inline bool pst_server_worker_live(const pst_server_worker_t *w)
{
    return w->alive && !w->done;
}

/* ---- replies (server.c) ---- */

/* A reply header echoing the request's model, tensor, sender, sequence number and clock. */
Pst__Header pst_server_reply_header(const Pst__Header *req, Pst__Op op);
/* Sends to the worker at route; a failure is logged, not returned. */
void pst_server_send_reply(pst_server_t *srv, const uint8_t *route, size_t route_len,
                           Pst__Header *h, const pst_wire_payload_t *payload);
void pst_server_reply_ack(pst_server_t *srv, const pst_wire_msg_t *msg, uint64_t clock,
                          uint32_t flags);
/* An ERROR reply with code and the formatted text, counted and logged. */
void pst_server_reply_error(pst_server_t *srv, const pst_wire_msg_t *msg, int code, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));

/* ---- consistency (server_consistency.c) ---- */

/* Consistency state for slice idx, every worker's pushes starting at clock. */
int pst_server_new_tensor_state(pst_server_t *srv, size_t idx, uint64_t clock);
void pst_server_tensor_fini(pst_server_tensor_t *t);
/* Whether a pull of slice idx at clock may be answered now. */
bool pst_server_pull_ready(const pst_server_t *srv, size_t idx, uint64_t clock);
/* The request header of a queued pull of slice idx, as the worker sent it. */
Pst__Header pst_server_pending_request(const pst_server_t *srv, size_t idx,
                                       const pst_server_pending_t *p);
/* Keeps a pull (with a copy of its keys) until its clock is ready. */
int pst_server_queue_pull(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg);
/* BSP admission: the push must be for the open clock, once per worker. Returns false after
 * replying (a stale push is acknowledged and dropped). */
bool pst_server_bsp_admit(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg);
/* A push reached slice idx: its clock may complete and queued pulls may go. */
void pst_server_progress(pst_server_t *srv, size_t idx);
/* Releases the barrier once every live worker is at it. */
void pst_server_check_barrier(pst_server_t *srv);
/* The live set changed: clocks, queued pulls and the barrier may move. */
void pst_server_recheck_all(pst_server_t *srv);
/* Declares workers silent for longer than the heartbeat timeout dead; now in ms, monotonic. */
void pst_server_check_heartbeats(pst_server_t *srv, int64_t now);

/* ---- reductions among the workers and drops (server_reduce.c) ---- */

/* A BARRIER with a blob: a reduction (common/net/reduce_layout.h). */
void pst_server_on_reduce(pst_server_t *srv, const pst_wire_msg_t *msg);
/* Completes the reductions every live worker contributed to (after a worker died or left). */
void pst_server_reduce_progress(pst_server_t *srv);
void pst_server_reductions_free(pst_server_t *srv);
/* Records that worker w was declared dead, or came back: the clocks of its drop. */
void pst_server_note_drop(pst_server_t *srv, uint32_t w);
void pst_server_note_rejoin(pst_server_t *srv, uint32_t w);

/* ---- tensor requests (server_tensors.c) ---- */

/* Sparse PUSH/PULL: remembers a full key list for its sender and tensor (in place of the older of
 * its PST_WIRE_KEY_LISTS), or points msg->keys at the remembered list a signature names; either
 * way srv->msg_list is that list (NULL for other messages). Returns
 * false after an ERROR reply ("unknown key signature"); true otherwise, also when the tensor is
 * unknown (the handler answers that). */
bool pst_server_resolve_keys(pst_server_t *srv, pst_wire_msg_t *msg);

/* Resolves sparse keys to rows (creating them on first touch; list's rows when it knows them, list
 * may be NULL), then answers. */
int pst_server_reply_pull(pst_server_t *srv, size_t idx, const uint8_t *route, size_t route_len,
                          const Pst__Header *req, const uint64_t *keys, pst_server_keylist_t *list,
                          pst_err_t *err);
void pst_server_on_init(pst_server_t *srv, const pst_wire_msg_t *msg);
void pst_server_on_push(pst_server_t *srv, const pst_wire_msg_t *msg);
void pst_server_on_pull(pst_server_t *srv, const pst_wire_msg_t *msg);
/* Forgets every tensor of the message's model: slices, clocks, remembered keys; pulls still
 * queued on them get an ERROR reply. */
void pst_server_on_drop(pst_server_t *srv, const pst_wire_msg_t *msg);

/* ---- the model contract (server_namespaces.c) ---- */

typedef struct pst_server_namespaces pst_server_namespaces_t;
/* PST_OK when the contract (if any) admits INIT h; else the reason in err. */
int pst_server_contract_admit(pst_server_t *srv, const Pst__Header *h, pst_err_t *err);
/* The key bound the contract declares for sparse INIT h (0: none). */
uint64_t pst_server_contract_key_bound(pst_server_t *srv, const Pst__Header *h);
/* A dropped namespace's declaration is gone with it (plans only). */
void pst_server_forget_namespace(pst_server_t *srv, uint32_t model_id);
void pst_server_namespaces_free(pst_server_t *srv);

#endif
