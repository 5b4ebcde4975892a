/* Push/pull client of a worker: one DEALER per parameter server, asynchronous requests split
 * across the servers' ranges or keys, and tickets to wait on. */
#ifndef PST_PSCLIENT_H
#define PST_PSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net/codec.h"
#include "common/err.h"
#include "common/fed/fedkeys.h"
#include "common/net/wire.h"

typedef struct pst_psclient_cfg {
    const char *const *endpoints; /* (n_servers) in server order, e.g. "tcp://10.0.0.2:41234" */
    uint32_t n_servers;
    uint32_t worker_id;     /* in [0, n_workers) of the servers' configuration */
    pst_codec_t push_codec; /* gradients (lossy codecs keep an error-feedback residual) */
    pst_codec_t pull_codec; /* weights */
    int timeout_ms;         /* a request unanswered this long fails (default 120000) */
    int heartbeat_ms;       /* heartbeat period of a background thread; 0: none (default 1000) */
    uint64_t max_message_bytes; /* 0: 1 GiB */
    /* false: pushes travel with PST_WIRE_FLAG_NO_ACK; a push's ticket is done once ZeroMQ
     * released its values, and a server's later refusal (or stale drop) of it is reported by
     * the next wait on any ticket (default true: every push is acknowledged) */
    bool push_acks;
    /* true: requests to a server are coalesced into one ZeroMQ message (common/net/wire.h) until
     * the client waits for anything (default false: one ZeroMQ message per request) */
    bool coalesce;
    void *zmq_ctx; /* a ZeroMQ context to use, or NULL for the client's own */
    /* CURVE: with curve_key set, every connection is a CURVE client with this worker's key pair,
     * trusting server s only under server_keys[s] (Z85). Copied by pst_psclient_new. */
    const pst_fedkey_pair_t *curve_key;
    const char *const *server_keys; /* (n_servers) */
    /* Tokens: with token set (and curve_key NULL), every connection is a PLAIN client with user
     * name the decimal worker_id and this 40-character secret. Copied by pst_psclient_new. */
    const char *token;
} pst_psclient_cfg_t;

/* Identifies one asynchronous request; valid until waited on. */
typedef uint64_t pst_ticket_t;

typedef struct pst_psclient_stats {
    uint64_t bytes_raw;  /* keys and decoded values, both directions */
    uint64_t bytes_wire; /* header, keys and values frames as they travelled, both directions */
    uint64_t bytes_raw_sent, bytes_wire_sent, bytes_raw_received, bytes_wire_received;
    uint64_t pushes, pulls; /* completed */
    double push_latency_ms; /* mean, send to the last server's ACK (unacknowledged pushes: to
                               the send, as ZeroMQ's release is not timed) */
    double pull_latency_ms; /* mean, send to the last server's reply */
    double push_wait_ms;    /* total time callers blocked in wait/test on pushes (latency not
                               hidden behind their own work) */
    double pull_wait_ms;    /* the same for pulls */
    uint64_t stale_pushes;  /* BSP pushes a server dropped as late */
    uint64_t errors;        /* requests that failed */
} pst_psclient_stats_t;

typedef struct pst_psclient pst_psclient_t;

void pst_psclient_cfg_defaults(pst_psclient_cfg_t *cfg);

/* Connects to every server (connections complete in the background). Caller owns the result. */
pst_psclient_t *pst_psclient_new(const pst_psclient_cfg_t *cfg, pst_err_t *err);
/* Stops the heartbeat thread and closes the sockets without waiting for unsent messages. */
void pst_psclient_destroy(pst_psclient_t **self_p);

/* Declares a tensor of model model_id: dense of n floats, or sparse with rows of row_width floats
 * (new rows start uniform in [-init_scale, init_scale] seeded by seed, 0 = zeros). Returns a
 * handle >= 0 for the calls below. No network traffic. */
int pst_psclient_register_dense(pst_psclient_t *self, uint32_t model_id, uint32_t tensor_id,
                                uint64_t n, pst_err_t *err);
int pst_psclient_register_sparse(pst_psclient_t *self, uint32_t model_id, uint32_t tensor_id,
                                 uint32_t row_width, float init_scale, uint64_t seed,
                                 pst_err_t *err);

/* Sends INIT for the tensor to every server and waits for the answers: dense values (n floats) are
 * the initial weights, kept only if this worker is the first to INIT (sparse: values must be NULL).
 * Every worker that pushes a tensor must INIT it, and all must do so before any pushes (for example
 * followed by pst_psclient_barrier). *clock (may be NULL) receives the clocks the servers have
 * completed for the tensor, the least over servers: 0 for a new run, the resume clock after a
 * restart from checkpoints. */
int pst_psclient_init_on_servers(pst_psclient_t *self, int tensor, const float *values,
                                 uint64_t *clock, pst_err_t *err);

/* Asynchronous push of a dense gradient (n floats) for clock, with the learning rate the servers
 * apply.
 * Ownership of grad: when its values travel raw (the raw codec, or auto choosing raw) ZeroMQ sends
 * them from grad itself, after this call returns, and tells the ticket when it let go of each
 * server's part. So grad must stay valid and unchanged until the ticket is waited on; a wait that
 * succeeds returns only once ZeroMQ released all of grad, and grad is the caller's again. After a
 * failed wait ZeroMQ may still hold it (a server that never answered): keep it until the client
 * is destroyed (with a shared zmq_ctx, until that context is terminated). Other codecs encode a
 * copy during this call. */
int pst_psclient_push(pst_psclient_t *self, int tensor, const float *grad, uint64_t clock, float lr,
                      pst_ticket_t *ticket, pst_err_t *err);
/* Asynchronous pull of the weights for clock into dst (n floats), filled when the ticket is
 * waited on. BSP: answered once clock - 1 is applied; SSP: once every live worker pushed clock
 * - staleness - 1; ASP: at once. */
int pst_psclient_pull(pst_psclient_t *self, int tensor, float *dst, uint64_t clock,
                      pst_ticket_t *ticket, pst_err_t *err);

/* Sparse variants: n_keys keys, sorted and unique, with values (n_keys, row_width). Every server
 * gets a request, with the keys it owns (possibly none), so BSP clocks advance. keys, grad and dst
 * must stay valid (grad unchanged) until the ticket is waited on, under the ownership rule of
 * pst_psclient_push: with one server grad is sent as it is; with several, each server's rows are
 * gathered into a frame of the wire's pool and sent from there. */
int pst_psclient_push_sparse(pst_psclient_t *self, int tensor, const uint64_t *keys, size_t n_keys,
                             const float *grad, uint64_t clock, float lr, pst_ticket_t *ticket,
                             pst_err_t *err);
int pst_psclient_pull_sparse(pst_psclient_t *self, int tensor, const uint64_t *keys, size_t n_keys,
                             float *dst, uint64_t clock, pst_ticket_t *ticket, pst_err_t *err);

/* Hands every coalesced request to ZeroMQ now (cfg.coalesce). Waits do so by themselves; call it
 * before blocking elsewhere (an MPI collective, say) while other workers may depend on the
 * requests sent. */
int pst_psclient_flush(pst_psclient_t *self, pst_err_t *err);

/* Waits for every server's reply to a request. Fails with the servers' error text, or with
 * PST_ETIMEOUT naming the servers that did not answer within timeout_ms. The ticket is spent
 * either way. */
int pst_psclient_wait(pst_psclient_t *self, pst_ticket_t ticket, pst_err_t *err);
/* Like wait, but gives up after timeout_ms with PST_ETIMEOUT and keeps the ticket open. */
int pst_psclient_test(pst_psclient_t *self, pst_ticket_t ticket, int timeout_ms, pst_err_t *err);

/* Tells every server to forget every tensor of model_id (values, optimizer state, clocks), waits,
 * and forgets the model's tensors here too: their handles are invalid afterwards, whether or not
 * every server answered, and the next registrations reuse their slots. No request of the model
 * may be outstanding (PST_ESTATE); a pull another worker still has queued on it fails. Dropping
 * a model a server does not hold is no error, so every worker of a model may drop it. */
int pst_psclient_drop(pst_psclient_t *self, uint32_t model_id, pst_err_t *err);

/* A reduction among the workers through server 0 (common/net/reduce_layout.h): sends n values
 * for the reduction named (clock, index) and waits up to timeout_ms (time this process spent
 * stopped not counted) for the result: out (cap doubles) receives the sums, then each worker's
 * PST_REDUCE_WORKER_FIELDS; *got says how many doubles came, *late whether the reduction had
 * completed without these values (a worker that was declared dead and came back). Late with
 * *got 0, the reduction is long forgotten: the clock the servers went on to is kept for
 * pst_psclient_take_stale_clock. */
int pst_psclient_reduce(pst_psclient_t *self, uint64_t clock, uint64_t index, const double *vals,
                        uint32_t n, double *out, size_t cap, size_t *got, bool *late,
                        int timeout_ms, pst_err_t *err);
/* BSP: the least clock a server named in acknowledging a push as stale, or in answering a
 * forgotten reduction, since the last call (0: none), and forgets it. A worker the servers went
 * on without learns there where they are. */
uint64_t pst_psclient_take_stale_clock(pst_psclient_t *self);

/* Waits until every live worker reached the barrier on every server. */
int pst_psclient_barrier(pst_psclient_t *self, pst_err_t *err);
/* Asks every server to write a checkpoint now, and waits. */
int pst_psclient_checkpoint(pst_psclient_t *self, pst_err_t *err);
/* Tells every server this worker is done (no more requests after it), and waits. */
int pst_psclient_shutdown(pst_psclient_t *self, pst_err_t *err);
/* A server's counters, in PST_STAT_* order. */
int pst_psclient_server_stats(pst_psclient_t *self, uint32_t server,
                              uint64_t counters[PST_STAT_COUNT], pst_err_t *err);

void pst_psclient_stats(const pst_psclient_t *self, pst_psclient_stats_t *out);

/* What transport.codec auto chose for each tensor pushed to each server, and why. */
typedef struct pst_psclient_codec_choice {
    uint32_t server;
    pst_wire_auto_choice_t choice;
} pst_psclient_codec_choice_t;

/* Copies up to cap choices into out (server by server) and returns how many there are. */
size_t pst_psclient_codec_choices(const pst_psclient_t *self, pst_psclient_codec_choice_t *out,
                                  size_t cap);

#endif
