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

typedef struct pst_sparse_remote_opts {
    pst_sparse_spec_t spec;
    float lr;         /* FTRL alpha or AdaGrad lr, sent with every push */
    float init_scale; /* the rows tensor's */
    uint64_t init_seed;
    uint32_t n_workers; /* the workers training together: batch means are scaled by it */
} pst_sparse_remote_opts_t;

/* What one step holds while its push is in flight; steps alternate between two. */
typedef struct pst_sparse_remote_buf {
    size_t cap;         /* entries the arrays hold */
    uint64_t *keys;     // (cap) the batch's unique keys, ascending
    uint32_t *slot;     // (cap) key index of every entry
    float *rows, *grad; // (cap, row_width)
    float bias, bias_grad;
    bool pending;
    pst_ticket_t push_rows, push_bias;
} pst_sparse_remote_buf_t;

/* Read the fields. */
typedef struct pst_sparse_remote {
    pst_psclient_t *client; /* not owned */
    pst_sparse_remote_opts_t opts;
    uint32_t width;
    int rows_tensor, bias_tensor;
    uint64_t clock; /* steps pushed */
    pst_sparse_remote_buf_t buf[2], eval;
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

/* For evaluation: only keys that occur in the rows of train (ids below its n_features) are
 * pulled (a pull creates rows on the servers); *n_keys = how many distinct keys those are. */
int pst_sparse_remote_mark_trained(pst_sparse_remote_t *r, const pst_dataset_t *train,
                                   size_t *n_keys, pst_err_t *err);

/* Waits for the last steps' pushes to be acknowledged. */
int pst_sparse_remote_flush(pst_sparse_remote_t *r, pst_err_t *err);

/* The loop's hooks: step pulls the batch's rows and the bias at the current clock (overlapping
 * the previous push's acknowledgement), computes the gradient and pushes it as a sum over the
 * batch times n_workers (the servers' constants are per example); predict scores a chunk on
 * the global weights, unmarked keys as zero rows. */
pst_sparse_trainer_t pst_sparse_remote_trainer(pst_sparse_remote_t *r);

#endif
