/* A federated site's local training: from the global weights of a round, fed.local_epochs epochs
 * over the site's rows with the optimizer.* settings (and FedProx's proximal term), giving the
 * update the site sends back. One trainer serves every site a process plays. */
#ifndef PST_WORKER_FED_FEDTRAIN_H
#define PST_WORKER_FED_FEDTRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/model/modelspec.h"
#include "common/config.h"
#include "common/optim/optim.h"
#include "worker/model/model.h"
#include "worker/fed/fedsite.h"
#include "worker/train/train.h"

typedef struct pst_fedtrainer {
    pst_model_t *local;    /* the site's copy of the model */
    pst_train_opts_t opts; /* local training: epochs = fed.local_epochs, no early stopping */
    float mu;              /* FedProx proximal weight; 0 for the other aggregators */
    double lr_decay;       /* round r trains with the learning rate times lr_decay^(r-1) */
    bool keep_state;       /* fed.local_state keep: each site's optimizer lives across rounds */
    size_t n_params;
    /* Called about every quarter second while training (NULL: nothing), e.g. to send heartbeats. */
    void (*keepalive)(void *ctx);
    void *keepalive_ctx;
} pst_fedtrainer_t;

/* A trainer for models of spec with n_inputs inputs; base holds the training options of the
 * configuration (its train.*, optimizer.* and schedule.* keys), cfg the fed.* keys. */
int pst_fedtrainer_init(pst_fedtrainer_t *t, const pst_modelspec_t *spec, size_t n_inputs,
                        const pst_train_opts_t *base, const pst_config_t *cfg, pst_err_t *err);
void pst_fedtrainer_fini(pst_fedtrainer_t *t);

/* What one local training produced. */
typedef struct pst_fedtrain_result {
    bool ok;     /* false: training diverged (NaN or infinite loss); no update */
    double rows; /* training rows of the site */
    double loss; /* mean training loss of the last local epoch */
    long rows_trained;
    double seconds;
} pst_fedtrain_result_t;

/* Trains rows from global (n_params floats) for round `round` (1-based) with seed; delta (n_params)
 * receives the trained weights minus global. A diverged training is not an error: res->ok is false
 * and the message is in err.
 *
 * remote NULL: the site trains alone, in this process. Otherwise this is one worker of a site
 * that is an mpirun job (app/fed/fedjoin_mpi): remote's pull and push reach the site's parameter
 * servers, which run the optimizer (state fresh for the round's namespace) with BSP. Its
 * allreduce_sum is not used: the training takes no collective step, so a worker that fails never
 * leaves the others waiting in one. Every worker calls it with its share of the rows, the same
 * global weights and seed, and the same t->opts.steps_per_epoch; delta is the servers' final
 * weights minus global; res->rows, rows_trained and loss (the last epoch's mean) are this
 * worker's. */
int pst_fedtrainer_run(pst_fedtrainer_t *t, const pst_rows_t *rows, const float *global,
                       uint64_t round, uint64_t seed, const pst_train_hooks_t *remote, float *delta,
                       pst_fedtrain_result_t *res, pst_err_t *err);

/* pst_fedtrainer_run for a site that trains alone, with its own optimizer *kept: NULL for a
 * fresh optimizer every round (fed.local_state reset); otherwise the site's optimizer across
 * rounds, created at its first round (*kept NULL) and continued at the next ones (Adam's moments
 * and step count), which the caller frees with pst_optim_destroy. */
int pst_fedtrainer_run_kept(pst_fedtrainer_t *t, const pst_rows_t *rows, const float *global,
                            uint64_t round, uint64_t seed, pst_optim_t **kept, float *delta,
                            pst_fedtrain_result_t *res, pst_err_t *err);

/* One site a process plays: its rows and the trainer it shares with the process's other sites. */
typedef struct pst_fedtrain_site {
    pst_fedtrainer_t *trainer;
    pst_optim_t *optim; /* the site's own optimizer across rounds when trainer->keep_state */
    pst_rows_t rows;
    long rows_trained;
    double seconds;
} pst_fedtrain_site_t;

/* Frees what the site kept across rounds (its optimizer). */
void pst_fedtrain_site_fini(pst_fedtrain_site_t *fs);

/* What every train hook of a site does around its training. begin checks the task against the
 * trainer and keeps every site of the run alive while it trains. end stops that and returns the
 * hook's result: rc when it is an error, PST_ENUMERIC when res says the training diverged (the
 * round is declined), otherwise PST_OK, with res's rows trained and seconds added to fs and its
 * rows and loss given as the round's samples and loss. */
int pst_fedtrain_site_begin(pst_fedtrain_site_t *fs, const pst_fedsite_task_t *task,
                            pst_err_t *err);
int pst_fedtrain_site_end(pst_fedtrain_site_t *fs, int rc, const pst_fedtrain_result_t *res,
                          double *samples, double *loss);

/* The train hook of worker/fed/fedsite over a pst_fedtrain_site_t (ctx): trains the task's round
 * with the task's seed, keeping every site of the run alive meanwhile. */
int pst_fedtrain_hook(void *ctx, pst_fedsite_t *site, const pst_fedsite_task_t *task, float *delta,
                      double *samples, double *loss, pst_err_t *err);

#endif
