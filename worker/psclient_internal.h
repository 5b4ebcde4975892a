/* Push/pull client internals shared by psclient.c, psclient_tickets.c, psclient_sparse.c and
 * psclient_heartbeat.c. */
#ifndef PST_PSCLIENT_INTERNAL_H
#define PST_PSCLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "common/net/keycodec.h"
#include "common/net/wire.h"
#include "worker/psclient.h"

#define PST_PSCLIENT_MAX_OPS 64 /* requests outstanding at once */

typedef struct pst_psclient_tensor {
    uint32_t model_id, tensor_id;
    bool dropped; /* a free slot: its model was dropped; the next registration reuses it */
    bool sparse;
    uint64_t n; /* dense: floats */
    uint32_t row_width;
    float init_scale;
    uint64_t seed;
    uint64_t *off, *len;       /* dense: (n_servers) each server's range */
    float *residual;           /* dense with a lossy push codec: (n) error feedback */
    pst_keycodec_list_t *sent; /* sparse: (n_servers, PST_WIRE_KEY_LISTS) the last key lists
                                * sent in full to each server, as the server remembers them */
    uint8_t *sent_newest;      /* sparse: (n_servers) the slot of the last list sent in full */
} pst_psclient_tensor_t;

/* One request in flight, addressed to some or all servers. */
typedef struct pst_psclient_op {
    bool active, done;
    atomic_int lent; /* frames of the caller's buffer ZeroMQ still holds; the slot is not reused
                      * (nor a wait on it finished) until they are all released */
    uint64_t seq;
    Pst__Op kind;
    int tensor;
    float *dst;           /* PULL: where values go */
    const uint64_t *keys; /* sparse PULL: the caller's keys, for scattering the replies */
    size_t n_keys;
    uint64_t *counters; /* STATS: (PST_STAT_COUNT) */
    uint8_t *replied;   /* (n_servers) 1 once answered, or when not asked */
    uint64_t *n_sent;   /* (n_servers) sparse: keys sent to each server */
    uint32_t n_waiting;
    bool unasked;   /* a push sent with PST_WIRE_FLAG_NO_ACK: servers answer only a refusal */
    uint64_t clock; /* INIT: least clock the servers reported */
    double *sums;   /* reduction (a BARRIER with a blob): where the reply's doubles go */
    size_t sums_cap, sums_got;
    bool late; /* reduction: it completed before this worker's values came */
    int64_t start_ns, end_ns;
    int rc;
    char error[512];
} pst_psclient_op_t;

/* Per-server keys of a sparse request split by key owner (pushed rows go straight into frames of
 * the wire's pool). */
typedef struct pst_psclient_split {
    uint64_t *keys;
    size_t keys_cap;
} pst_psclient_split_t;

struct pst_psclient {
    pst_psclient_cfg_t cfg;
    char **endpoints;                        /* (n_servers) copies */
    pst_fedkey_pair_t curve_key;             /* when curve */
    char (*server_keys)[PST_FEDKEY_Z85 + 1]; /* (n_servers) when curve */
    bool curve;
    bool plain; /* tokens: PLAIN with the token kept in curve_key.secret_key */
    void *ctx;
    bool own_ctx;
    void **socks;       /* (n_servers) DEALERs */
    pst_wire_t **wires; /* (n_servers) */
    zmq_pollitem_t *items;
    pst_psclient_tensor_t *tensors;
    size_t n_tensors, tensors_cap;
    pst_psclient_op_t ops[PST_PSCLIENT_MAX_OPS];
    uint8_t *replied_block; /* (PST_PSCLIENT_MAX_OPS, n_servers) */
    uint64_t *sent_block;   /* (PST_PSCLIENT_MAX_OPS, n_servers) */
    uint64_t next_seq;
    pst_psclient_split_t *split; /* (n_servers) */
    uint32_t *owner;             /* sparse: server of each key; (owner_cap) */
    size_t *fill;                /* (n_servers) split cursor */
    size_t owner_cap;
    uint64_t pushes, pulls, stale, errors;
    uint64_t stale_clock; /* the least clock of the stale acknowledgements not yet taken; 0: none */
    double push_ms, pull_ms;           /* sums */
    double push_wait_ms, pull_wait_ms; /* sums of the time callers blocked waiting */
    int deferred_rc; /* a refusal of an unacknowledged push, reported by the next wait */
    char deferred_error[512];
    /* heartbeats */
    bool hb_running, hb_stop;
    pthread_t hb_thread;
    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cv;
    void **hb_socks; /* (n_servers) used by the heartbeat thread only */
    pst_wire_t *hb_wire;
};

/* ---- connections and requests (psclient.c) ---- */

/* A DEALER connected to server s (over CURVE when the client uses it), or NULL with err set. */
void *pst_psclient_connect_dealer(pst_psclient_t *c, uint32_t s, int send_timeout_ms,
                                  pst_err_t *err);
/* The tensor behind a handle, which must be sparse or dense as asked; NULL with err set. */
pst_psclient_tensor_t *pst_psclient_get_tensor(pst_psclient_t *c, int tensor, bool sparse,
                                               pst_err_t *err);
/* A request header naming tensor t (NULL: none). */
Pst__Header pst_psclient_request_header(const pst_psclient_tensor_t *t, Pst__Op op, uint64_t clock);
/* Sends op's request to server s; on failure op is released and the error names the server. */
int pst_psclient_send_to(pst_psclient_t *c, uint32_t s, pst_psclient_op_t *op, Pst__Header *h,
                         const pst_wire_payload_t *payload, pst_err_t *err);

/* ---- tickets (psclient_tickets.c) ---- */

/* A fresh request awaiting every server; NULL (PST_ESTATE in err) when PST_PSCLIENT_MAX_OPS are
 * open. */
pst_psclient_op_t *pst_psclient_op_start(pst_psclient_t *c, Pst__Op kind, int tensor,
                                         pst_err_t *err);
void pst_psclient_op_release(pst_psclient_op_t *op);
/* Server s was sent op without asking for an answer: it counts as answered. */
void pst_psclient_op_unasked(pst_psclient_op_t *op, uint32_t s);
/* Lends values (the caller's buffer) to ZeroMQ for op's message to one server: fills the payload's
 * lend, release and hint so that ZeroMQ's release is counted against op. */
void pst_psclient_op_lend(pst_psclient_op_t *op, pst_wire_payload_t *out, const float *values);
/* Marks op failed by server s with the formatted text; the first failure wins. */
void pst_psclient_op_fail(pst_psclient_op_t *op, int code, uint32_t s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* pst_psclient_wait with its own time limit. */
int pst_psclient_wait_for(pst_psclient_t *c, pst_ticket_t ticket, int timeout_ms, pst_err_t *err);

/* ---- sparse key routing (psclient_sparse.c) ---- */

/* Decodes a server's rows and puts each where its key sits in the caller's key list. */
void pst_psclient_absorb_sparse_pull(pst_psclient_t *c, uint32_t s, pst_psclient_op_t *op,
                                     const pst_wire_msg_t *msg);

/* ---- heartbeats (psclient_heartbeat.c) ---- */

/* Starts the thread that sends a HEARTBEAT to every server each heartbeat_ms. */
int pst_psclient_start_heartbeats(pst_psclient_t *c, pst_err_t *err);
/* Stops and joins it; safe when it never started or already stopped. */
void pst_psclient_stop_heartbeats(pst_psclient_t *c);

#endif
