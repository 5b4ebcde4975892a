/* Federated site: a connection to the federated server (a DEALER, optionally CURVE-encrypted),
 * registration, heartbeats (also while training), each round's task handed to a training
 * callback and its update sent back, and the final weights. One process may play several sites
 * (a simulation), each over its own connection. */
#ifndef PST_WORKER_FED_FEDSITE_H
#define PST_WORKER_FED_FEDSITE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/fed/fedkeys.h"

typedef struct pst_fedsite pst_fedsite_t;

typedef struct pst_fedsite_cfg {
    const char *site;             /* this site's id */
    const char *endpoint;         /* the server, tcp://HOST:PORT */
    const pst_fedkey_pair_t *key; /* CURVE key pair of this site; NULL: plaintext */
    const char *server_public;    /* with key: the server's public key (Z85) */
    double heartbeat;             /* seconds between heartbeats */
    double server_timeout;        /* give up when nothing came from the server this long */
    void *zmq_ctx;                /* a context to share, or NULL for the site's own */
} pst_fedsite_cfg_t;

/* A round's task as the training callback sees it. */
typedef struct pst_fedsite_task {
    uint64_t round, seed;
    const float *global; /* (n) the global weights the round starts from */
    size_t n;
    /* Call often while training (about every quarter second): it sends the heartbeats due for
     * every site of the run, so the server knows they are alive. */
    void (*keepalive)(void *keepalive_ctx);
    void *keepalive_ctx;
} pst_fedsite_task_t;

typedef struct pst_fedsite_hooks {
    void *ctx;
    /* The server's model contract, once registered (again after a re-registration): set up the
     * model of n_params floats. An error ends the site. */
    int (*welcome)(void *ctx, pst_fedsite_t *site, const uint8_t *contract, size_t len,
                   size_t n_params, pst_err_t *err);
    /* Trains for a task: delta (task->n floats) = local weights - global, *samples rows,
     * *loss the mean training loss. PST_ENUMERIC (training diverged) declines the round with
     * err's message; any other error ends the site. */
    int (*train)(void *ctx, pst_fedsite_t *site, const pst_fedsite_task_t *task, float *delta,
                 double *samples, double *loss, pst_err_t *err);
    /* The run is over after `rounds` rounds: final holds the final global weights (n floats), or
     * is NULL when the server stopped early. */
    int (*done)(void *ctx, pst_fedsite_t *site, const float *final, size_t n, uint64_t rounds,
                pst_err_t *err);
} pst_fedsite_hooks_t;

typedef struct pst_fedsite_stats {
    uint64_t rounds_trained, rounds_declined;
    uint64_t bytes_up_raw, bytes_up_wire;     /* updates sent */
    uint64_t bytes_down_raw, bytes_down_wire; /* tasks, the contract and the final weights */
    uint64_t reconnects;                      /* connections re-established after a drop */
} pst_fedsite_stats_t;

/* Connects (the connection completes in the background) and queues the registration. Caller owns
 * the result. */
pst_fedsite_t *pst_fedsite_new(const pst_fedsite_cfg_t *cfg, const pst_fedsite_hooks_t *hooks,
                               pst_err_t *err);
void pst_fedsite_destroy(pst_fedsite_t **self_p);

const char *pst_fedsite_id(const pst_fedsite_t *site);
void pst_fedsite_stats(const pst_fedsite_t *site, pst_fedsite_stats_t *out);

/* Serves sites[0..n) until each has received the end of the run. Fails on the first site that
 * fails: refused by the server (unknown key, bad id), a server silent for server_timeout, or a
 * callback's error. */
int pst_fedsite_run(pst_fedsite_t *const *sites, int n, pst_err_t *err);

#endif
