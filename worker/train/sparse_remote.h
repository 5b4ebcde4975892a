/* The parameter-server trainer of sparse models (LR, FM): a sparse tensor of rows created on first
 * touch and a one-float bias tensor on the servers, stepped through the sparse loop's hooks. */
#ifndef PST_WORKER_TRAIN_SPARSE_REMOTE_H
#define PST_WORKER_TRAIN_SPARSE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"
#include "worker/model/sparse_model.h"
#include "worker/psclient.h"
#include "worker/train/sparse_loop.h"
#include "worker/train/step_rows.h"

typedef struct pst_sparse_remote_opts {
    pst_sparse_spec_t spec;
    float lr;         /* FTRL alpha or AdaGrad lr, sent with every push */
    float init_scale; /* the rows tensor's */
    uint64_t init_seed;
    uint32_t n_workers; /* the workers training together: batch means are scaled by it */
    bool prefetch; /* pull the next batch's rows while the current one computes (prepare hook) */
    /* with prefetch: steps whose pulls are in flight while a step computes, 1 to
     * PST_SPARSE_REMOTE_MAX_AHEAD (0 counts as 1) */
    int prefetch_depth;
    /* hand a step's pushes to ZeroMQ at once rather than coalesced with the next pulls (when the
     * client coalesces): under bsp and ssp the next answer waits for them, and the server applies
     * them while the worker prepares the next batch */
    bool pushes_now;
} pst_sparse_remote_opts_t;

/* Steps whose buffers live at once: the one computing, up to PST_SPARSE_REMOTE_MAX_AHEAD whose
 * pulls are prefetched, and one whose push may still await its acknowledgement. With a prefetch
 * depth d, step c uses buf[c % (d + 2)]. */
#define PST_SPARSE_REMOTE_MAX_AHEAD 3
#define PST_SPARSE_REMOTE_DEPTH (PST_SPARSE_REMOTE_MAX_AHEAD + 2)

/* What one step holds while its pull or push is in flight. */
typedef struct pst_sparse_remote_buf {
    pst_step_rows_t step; /* keys, slots, rows and gradients */
    size_t n_keys;
    float bias, bias_grad;
    bool pending; /* push_rows and push_bias await their acknowledgements */
    pst_ticket_t push_rows, push_bias;
    bool prepared; /* pull_rows and pull_bias were sent ahead for the batch below */
    pst_ticket_t pull_rows, pull_bias;
    const size_t *prepared_row_ptr; /* the batch prepared, checked when its step comes */
    size_t prepared_rows;
} pst_sparse_remote_buf_t;

/* Where a worker's step time went, in seconds over all steps. */
typedef struct pst_sparse_remote_times {
    double pull_wait; /* blocked on pulled rows */
    double push_wait; /* blocked on push acknowledgements (before reusing a buffer) */
    double total;     /* in the step and prepare hooks; compute = total - pull_wait - push_wait */
} pst_sparse_remote_times_t;

/* Read the fields. */
typedef struct pst_sparse_remote {
    pst_psclient_t *client; /* not owned */
    pst_sparse_remote_opts_t opts;
    uint32_t width;
    uint32_t ahead;  /* prefetch depth in use, 1..PST_SPARSE_REMOTE_MAX_AHEAD */
    uint32_t n_bufs; /* buffers in use: ahead + 2 */
    int rows_tensor, bias_tensor;
    uint64_t clock; /* steps pushed */
    pst_sparse_remote_buf_t buf[PST_SPARSE_REMOTE_DEPTH], eval;
    pst_sparse_remote_times_t times;
    uint64_t *pull_keys; // (pull_cap) evaluation: the trained keys of a chunk
    uint32_t *pull_at;   // (pull_cap) their index among the chunk's keys
    size_t pull_cap;
    uint64_t keys_pushed;
    uint64_t eval_wire, eval_raw; /* evaluation traffic, kept out of the per-example figure */
    uint64_t eval_wire_sent;      /* its part worker to servers */
    double eval_pull_wait_ms;     /* evaluation's share of the link's pull wait */
    uint8_t *trained;             /* evaluating: trained[k] != 0 when key k occurs in training */
    size_t n_trained;
} pst_sparse_remote_t;

/* A trainer over client's servers (client may be NULL until pst_sparse_remote_register). */
void pst_sparse_remote_init(pst_sparse_remote_t *r, pst_psclient_t *client,
                            const pst_sparse_remote_opts_t *opts);
void pst_sparse_remote_fini(pst_sparse_remote_t *r);

/* Registers the rows tensor (0) and the bias tensor (1) of model 0 on every server and
 * initialises them; PST_ESTATE if the servers already hold a clock of this model. Every worker
 * of the run must have registered before anyone pushes. */
int pst_sparse_remote_register(pst_sparse_remote_t *r, pst_err_t *err);
/* As pst_sparse_remote_register, for a run resumed from the servers' checkpoints: accepts the
 * clock they restored (the same for the rows and the bias, else PST_ESTATE), continues counting
 * from it and returns it in *clock (0: nothing was restored). */
int pst_sparse_remote_resume(pst_sparse_remote_t *r, uint64_t *clock, pst_err_t *err);

/* For evaluation: only keys that occur in the rows of train (ids below its n_features) are
 * pulled (a pull creates rows on the servers); *n_keys = how many distinct keys those are. */
int pst_sparse_remote_mark_trained(pst_sparse_remote_t *r, const pst_dataset_t *train,
                                   size_t *n_keys, pst_err_t *err);

/* Keys pst_sparse_remote_pull_model asks for in one request. */
enum { PST_SPARSE_REMOTE_PULL_CHUNK = 65536 };

/* Copies the model the servers hold into model, a local model whose rows have this trainer's
 * width (pst_sparse_model_new with opts.spec = the remote's spec): the rows of every key
 * pst_sparse_remote_mark_trained marked, pulled at the current clock in ascending key order and
 * chunks of PST_SPARSE_REMOTE_PULL_CHUNK keys, and the bias. Pending pushes are waited for
 * first; under BSP the pull at the current clock sees every worker's steps before it, so after
 * an epoch the copy is the model every worker trained. Rows model already holds are overwritten
 * (pulling into the same model again refreshes it), other rows are left alone; the optimizer
 * state stays on the servers. The traffic counts as evaluation traffic. PST_ESTATE when no keys
 * were marked, PST_EINVAL on a model of another row width. */
int pst_sparse_remote_pull_model(pst_sparse_remote_t *r, pst_sparse_model_t *model, pst_err_t *err);

/* Waits for the last steps' pushes to be acknowledged (and for any pull sent ahead, whose rows
 * are then dropped). */
int pst_sparse_remote_flush(pst_sparse_remote_t *r, pst_err_t *err);

/* The loop's hooks: step pulls the batch's rows and the bias at the current clock (overlapping
 * the previous pushes' acknowledgements), computes the gradient and pushes it as a sum over the
 * batch times n_workers (the servers' constants are per example) without waiting for the
 * acknowledgement; predict scores a chunk on the global weights, unmarked keys as zero rows.
 *
 * With opts.prefetch, prepare sends each batch's pull ahead: the next batch's (clock + 1) before
 * the current batch computes, so it is in flight during the computation and the current push.
 * (An epoch's first batch is prepared first, so the key lists the servers remember always hold
 * the current batch's and those prepared after it, and every push names its keys by signature.)
 * What each consistency mode then guarantees:
 *  - bsp: the server holds a pull for clock c until clock c - 1 is applied (every worker's push),
 *    so the prefetched pull is answered with exactly the weights a pull sent after the push
 *    would get: training is bit for bit the same as without prefetching. Only the key
 *    extraction and the request's trip overlap the computation.
 *  - ssp: the pull of clock c is answered once every live worker pushed clock c - staleness - 1,
 *    as without prefetching; it may miss this worker's own push of clock c - 1 (sent after the
 *    pull), which staleness 0 never does (the server holds the pull until that push arrives).
 *  - asp: answered at once; it misses this worker's push of clock c - 1 and whatever other
 *    workers have not yet pushed (one step more staleness than without prefetching).
 * With opts.prefetch_depth d > 1 the pull of clock c + d is sent before step c computes, so d
 * pulls are in flight while a step computes and the server's answer has d steps to arrive:
 *  - bsp: still bit for bit the same (the server holds each pull until its previous clock is
 *    applied; the worker waits only for the current clock's pull before it pushes);
 *  - ssp: a pull of clock c may miss this worker's own pushes of clocks c - d to c - 1, never
 *    more than the staleness bound allows (the server holds it until every live worker pushed
 *    clock c - staleness - 1);
 *  - asp: the rows of step c miss this worker's pushes of clocks c - d to c - 1 (d steps more
 *    staleness than without prefetching) and whatever other workers have not yet pushed; each
 *    push is still applied exactly once, in the order sent, and the bias as well. */
pst_sparse_trainer_t pst_sparse_remote_trainer(pst_sparse_remote_t *r);

#endif
