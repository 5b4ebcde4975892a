/* Parameter server: one ROUTER socket serving INIT, PUSH, PULL, BARRIER and control requests of
 * n_workers workers, with BSP, SSP or ASP consistency per tensor slice. */
#ifndef PST_SERVER_H
#define PST_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/fed/fedkeys.h"
#include "common/optim/optim.h"
#include "common/net/wire.h"
#include "ps/contract.h"

typedef enum {
    PST_CONSISTENCY_BSP = 0, /* one averaged step per clock, after every live worker pushed */
    PST_CONSISTENCY_SSP,     /* pulls at clock c wait until every live worker pushed c - s - 1 */
    PST_CONSISTENCY_ASP,     /* every push applied at once, pulls never wait */
} pst_consistency_t;

/* Parses "bsp", "ssp", "asp". */
int pst_consistency_parse(const char *name, pst_consistency_t *out);
const char *pst_consistency_name(pst_consistency_t c);

typedef struct pst_server_cfg {
    uint32_t server_index, n_servers; /* this server is s of S */
    uint32_t n_workers;               /* workers send sender ids in [0, n_workers) */
    pst_consistency_t consistency;
    uint32_t staleness;         /* SSP: s */
    int heartbeat_timeout_ms;   /* a worker silent this long is dead (default 30000) */
    pst_optim_cfg_t optim;      /* every slice's optimizer (default SGD) */
    const char *checkpoint_dir; /* NULL: no checkpoints; copied by pst_server_new */
    uint64_t checkpoint_every;  /* write after every N clocks of a model; 0: on request only */
    uint32_t
        keep_checkpoints; /* clock-named checkpoints kept (ps/checkpoint.h), default 3; 0: all */
    uint64_t max_message_bytes; /* largest keys or values frame; 0: 1 GiB */
    void *zmq_ctx;              /* a ZeroMQ context to use, or NULL for the server's own */
    /* CURVE: with curve_key set, the socket is a CURVE server with that key pair, and a ZAP
     * handler in the server's context admits only worker_keys (entry w: worker w's public key,
     * its site the decimal index w); a request whose header names another sender than the key
     * it was admitted with is refused. NULL: plain TCP, anyone may connect. Both are copied by
     * pst_server_new; the context must have no other ZAP handler. */
    const pst_fedkey_pair_t *curve_key;
    const pst_fedkey_list_t *worker_keys;
    /* Tokens: with plain_tokens set (curve_key unused), the socket is a PLAIN server and
     * worker_keys' entry w holds worker w's secret token instead of a public key; the same
     * admission and sender rules apply, without encryption (one host's loopback). */
    bool plain_tokens;
    uint64_t max_store_bytes; /* refuse INITs and new sparse rows past this store size; 0: none */
} pst_server_cfg_t;

void pst_server_cfg_defaults(pst_server_cfg_t *cfg);

typedef struct pst_server pst_server_t;

/* Caller owns the result. */
pst_server_t *pst_server_new(const pst_server_cfg_t *cfg, pst_err_t *err);
/* Closes the socket (letting queued replies leave for up to a second) and frees everything. */
void pst_server_destroy(pst_server_t **self_p);

/* Forgets every tensor, clock, queued pull, reduction, worker state, contract and counter, as a
 * new server with this consistency and optimizer would start, keeping the socket, its bindings
 * and connections (the fuzz target reuses one server for every input this way; the wire's own
 * byte counters go on). Not while run() runs. */
int pst_server_reset(pst_server_t *self, pst_consistency_t consistency,
                     const pst_optim_cfg_t *optim, pst_err_t *err);

/* Binds the ROUTER to an endpoint such as tcp://127.0.0.1 with port "*" (ephemeral); actual gets
 * the endpoint bound (ZMQ_LAST_ENDPOINT) for workers to connect to. May be called more than once.
 */
int pst_server_bind(pst_server_t *self, const char *endpoint, char *actual, size_t actual_len,
                    pst_err_t *err);

/* Before run(): the server accepts INIT only for the tensors contract declares, with their shapes
 * (a copy is kept); any other INIT, or a second INIT of a tensor with another shape, is refused
 * with an ERROR naming the tensor and counted (PST_STAT_CONTRACT). Without a contract every INIT
 * within max_store_bytes is accepted. */
int pst_server_set_contract(pst_server_t *self, const pst_contract_t *contract, pst_err_t *err);

/* Before run(), instead of a fixed contract, for plans (cv folds, bag members, stack models, sweep
 * trials: each task a namespace of its own, created when it starts and dropped when it ends): the
 * server starts with an empty contract and admits INIT only in namespaces declared while it runs,
 * at most max_live of them at once. */
int pst_server_expect_namespaces(pst_server_t *self, size_t max_live, pst_err_t *err);
/* Thread-safe while run() goes on: namespace model_id may create the tensors of ns (every entry
 * of model_id) with their shapes. PST_EINVAL when model_id is declared already or ns names
 * another namespace, PST_ERANGE when max_live namespaces are declared; PST_ESTATE without
 * pst_server_expect_namespaces. A DROP of the namespace removes its declaration with its
 * tensors. The caller vouches for the declarer (the job's own ranks, over MPI). */
int pst_server_declare_namespace(pst_server_t *self, uint32_t model_id, const pst_contract_t *ns,
                                 pst_err_t *err);
/* Namespaces declared and not dropped (thread-safe). */
size_t pst_server_namespaces_live(pst_server_t *self);

/* Loads DIR/server-S.ckpt before run(): slices, optimizer state and clocks come back, and pulls
 * are answered as if the checkpoint's clocks had just completed. *clock receives the file's clock
 * (clocks completed). PST_ENOTFOUND when there is no checkpoint to resume from. */
int pst_server_restore(pst_server_t *self, uint64_t *clock, pst_err_t *err);

/* Serves until every worker has sent SHUTDOWN or is dead, or pst_server_stop was called.
 * Malformed frames are counted, logged and dropped; bad requests get an ERROR reply. */
int pst_server_run(pst_server_t *self, pst_err_t *err);

/* Handles the requests already waiting on the socket (at most 256), in the caller's thread and
 * without waiting for more, then sends the replies: one pass of run()'s loop without its wait or
 * heartbeat checks, for a caller that drives the server itself (the fuzz target replays a whole
 * input this way instead of through a server thread). Returns run()'s receive errors. */
int pst_server_serve_waiting(pst_server_t *self, pst_err_t *err);

/* Makes run() return within a poll tick. Safe from any thread. */
void pst_server_stop(pst_server_t *self);

/* Counters in PST_STAT_* order (common/net/wire.h). Call from the thread that runs the server, or
 * after run() returned; workers use a STATS request instead. */
/* Workers neither done (SHUTDOWN) nor alive: dropped for silence and not back. */
uint32_t pst_server_workers_missing(const pst_server_t *self);
void pst_server_stats(const pst_server_t *self, uint64_t counters[PST_STAT_COUNT]);

#endif
