/* A worker's link to the parameter servers for a dense model, held as one tensor or as one tensor
 * per dense layer: the push/pull training hooks (each pull overlapping the previous pushes'
 * acknowledgements; per layer, pulls waited for just before each layer's forward and pushes sent
 * as backward produces them) and epoch sums over a group. */
#ifndef PST_APP_MPI_REMOTE_H
#define PST_APP_MPI_REMOTE_H

#include <cjson/cJSON.h>
#include <mpi.h>
#include <stdbool.h>

#include "app/mpi/ranks.h"
#include "app/mpi/watchdog.h"
#include "common/config.h"
#include "worker/psclient.h"
#include "worker/train/train.h"

/* A contiguous range of the parameter arena held as one tensor on the servers. */
typedef struct pst_remote_part {
    int tensor;
    size_t off, len; /* floats */
    bool frozen;     /* a frozen layer: never on the servers, never pulled or pushed */
    bool push_pending, pull_pending;
    pst_ticket_t push_ticket, pull_ticket;
    uint64_t pull_clock; /* the clock of the pull pending */
} pst_remote_part_t;

typedef struct pst_remote {
    pst_psclient_t *client;
    MPI_Comm group;           /* the workers training these tensors together */
    pst_remote_part_t *parts; // (n_parts) tensors 0..n_parts-1 of the model, in arena order
    int n_parts;
    bool layered; /* one part per dense layer, with the per-layer training hooks */
    double pull_wait_s, push_wait_s; /* blocked in the hooks on pulls and on acknowledgements */
    /* Set after connecting (NULL: unbounded): the epoch-end reduction with the other workers
     * may wait reduce_timeout_s for them; a stopped or hung worker then ends the job with a
     * message instead of holding it forever. */
    pst_watchdog_t *watchdog;
    double reduce_timeout_s;
    /* app/mpi/elastic: with elastic set, epoch sums go through server 0 (workers the servers
     * declared dead left out) instead of MPI, and a worker the servers went on without rejoins at
     * their clock. */
    bool elastic;
    int n_workers;
    uint64_t clock;                /* the clock this worker is at: its last pull, or push + 1 */
    uint64_t reduce_clock;         /* the clock of the last reduction, and how many were made */
    uint64_t reduce_index;         /* there */
    double *reduce_buf;            /* (reduce_cap) the last result: sums, then workers' fields */
    size_t reduce_cap, reduce_got; /* doubles */
} pst_remote_t;

/* Connects worker `worker` to every server with the transport.* codecs and cluster.timeout. */
int pst_remote_connect(pst_remote_t *r, const pst_ranks_t *ranks, const pst_config_t *cfg,
                       MPI_Comm group, pst_err_t *err);
/* Registers and initialises tensor 0 of model_id (first writer's values win), then waits until
 * every worker of the group has done the same. *clock (may be NULL): clocks already done. */
int pst_remote_begin(pst_remote_t *r, uint32_t model_id, const float *params, size_t n,
                     uint64_t *clock, pst_err_t *err);
/* pst_remote_begin with tensor k of model_id holding dense layer k of model (weights and bias),
 * so each layer can be pulled and pushed on its own (pst_remote_hooks then fills the per-layer
 * hooks). A frozen layer (train.freeze) is left out: every worker keeps the weights it started
 * with (the same on all: one seed, or one model.init_from file) and no gradient of it travels.
 * Under BSP training is the same to the bit as with one tensor: the server's optimizers work
 * element by element. */
int pst_remote_begin_layers(pst_remote_t *r, uint32_t model_id, pst_model_t *model, uint64_t *clock,
                            pst_err_t *err);
/* Waits for the last push, then has the servers forget model_id (app/fed/fedjoin_mpi: each
 * federated round trains a fresh namespace, so the servers hold one round's model at a time). Needs
 * no other worker; a model already dropped is no error. */
int pst_remote_drop(pst_remote_t *r, uint32_t model_id, pst_err_t *err);
/* Fills the pull, push and allreduce_sum hooks (ctx = r), and pull_start, pull_wait, push_layer
 * and pull_ahead after pst_remote_begin_layers. */
void pst_remote_hooks(pst_remote_t *r, pst_train_hooks_t *hooks);
/* Waits for the last pushes' acknowledgements, if any. */
int pst_remote_flush(pst_remote_t *r, pst_err_t *err);
/* A worker's link counters in a fixed order, for the caller to sum over workers. */
enum {
    PST_COMM_BYTES_RAW,
    PST_COMM_BYTES_WIRE,
    PST_COMM_PUSHES,
    PST_COMM_PULLS,
    PST_COMM_PUSH_MS, /* latency sums: mean x count */
    PST_COMM_PULL_MS,
    PST_COMM_STALE,
    PST_COMM_ERRORS,
    PST_COMM_N
};
void pst_comm_counters(const pst_psclient_stats_t *st, double out[PST_COMM_N]);
/* Fills report.json's comm section from counters summed over workers. */
void pst_comm_json(cJSON *comm, const pst_ranks_t *ranks, const pst_config_t *cfg,
                   const double sum[PST_COMM_N]);
/* comm.codec_choices: what transport.codec auto chose for each tensor this worker pushed to each
 * server, and why (the compressor's ratio and MB/s, the link's MB/s). Nothing without a client. */
void pst_comm_codec_json(cJSON *comm, const pst_psclient_t *client);

/* Tells the servers this worker is done, and disconnects. */
void pst_remote_close(pst_remote_t *r);

#endif
