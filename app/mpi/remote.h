/* A worker's link to the parameter servers for one dense tensor: the push/pull training hooks
 * (each pull overlapping the previous push's acknowledgement) and epoch sums over a group. */
#ifndef PST_APP_MPI_REMOTE_H
#define PST_APP_MPI_REMOTE_H

#include <cjson/cJSON.h>
#include <mpi.h>
#include <stdbool.h>

#include "app/mpi/ranks.h"
#include "common/config.h"
#include "worker/psclient.h"
#include "worker/train/train.h"

typedef struct pst_remote {
    pst_psclient_t *client;
    MPI_Comm group; /* the workers training this tensor together */
    int tensor;
    bool push_pending;
    pst_ticket_t push_ticket;
} pst_remote_t;

/* Connects worker `worker` to every server with the transport.* codecs and cluster.timeout. */
int pst_remote_connect(pst_remote_t *r, const pst_ranks_t *ranks, const pst_config_t *cfg,
                       MPI_Comm group, pst_err_t *err);
/* Registers and initialises tensor 0 of model_id (first writer's values win), then waits until
 * every worker of the group has done the same. *clock (may be NULL): clocks already done. */
int pst_remote_begin(pst_remote_t *r, uint32_t model_id, const float *params, size_t n,
                     uint64_t *clock, pst_err_t *err);
/* Waits for the last push, then has the servers forget model_id (app/fed/fedjoin_mpi: each
 * federated round trains a fresh namespace, so the servers hold one round's model at a time). Needs
 * no other worker; a model already dropped is no error. */
int pst_remote_drop(pst_remote_t *r, uint32_t model_id, pst_err_t *err);
/* Fills the pull, push and allreduce_sum hooks (ctx = r). */
void pst_remote_hooks(pst_remote_t *r, pst_train_hooks_t *hooks);
/* Waits for the last push's acknowledgements, if any. */
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
