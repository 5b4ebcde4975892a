/* DP-SGD for the dense loop: Poisson-sampled batches, per-example gradients clipped to an L2 bound,
 * Gaussian noise on their sum, and the RDP accountant that turns the steps into epsilon. */
#ifndef PST_WORKER_TRAIN_DPSGD_H
#define PST_WORKER_TRAIN_DPSGD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/rng.h"
#include "worker/model/model.h"

/* The train.dp.* keys. clip 0: DP-SGD off. */
typedef struct pst_dp_opts {
    double clip;           /* per-example L2 bound C */
    double noise;          /* sigma; 0: calibrated to spend epsilon_budget in the run's epochs */
    double delta;          /* in (0, 1) */
    double epsilon_budget; /* 0: no budget */
    int worker;            /* this worker's index (0 locally): its own sample and noise streams */
} pst_dp_opts_t;

/* How one run trains: sizes fixed before the first step. Under mpirun n_rows_total and n_workers
 * are the sums over workers (the loop learns them by an allreduce). */
typedef struct pst_dpsgd_setup {
    size_t n_params;
    size_t n_rows;       /* this worker's training rows */
    size_t n_rows_total; /* all workers' */
    int n_workers;
    int batch_size;       /* expected rows per worker per step */
    long steps_per_epoch; /* the same on every worker */
    int epochs;
    uint64_t seed; /* the run's seed; streams are derived per worker and clock */
} pst_dpsgd_setup_t;

typedef struct pst_dpsgd pst_dpsgd_t;

/* Checks the options against the setup and derives q = n_workers x batch / n_rows_total and, when
 * opts->noise is 0, the smallest sigma that spends the budget in epochs x steps_per_epoch steps.
 * Caller owns the result. */
pst_dpsgd_t *pst_dpsgd_new(const pst_dp_opts_t *opts, const pst_dpsgd_setup_t *setup,
                           pst_err_t *err);
void pst_dpsgd_destroy(pst_dpsgd_t **self_p);

/* Refuses a model whose examples are not independent inside a batch (batchnorm), naming the
 * layer. */
int pst_dpsgd_check_model(const pst_model_t *model, pst_err_t *err);

double pst_dpsgd_q(const pst_dpsgd_t *dp);
double pst_dpsgd_sigma(const pst_dpsgd_t *dp);
/* Standard deviation of the noise this worker adds to its sum: sigma x clip / sqrt(workers). */
double pst_dpsgd_noise_std(const pst_dpsgd_t *dp);

/* Poisson sampling: each of n positions is in the step's sample independently with probability
 * q. Writes the chosen positions (ascending) to out (room for n) and returns their number. */
size_t pst_dpsgd_poisson_sample(pst_rng_t *rng, double q, size_t n, size_t *out);

/* Scales g (n) to L2 norm at most clip (unchanged when already within) and adds it to sum.
 * Returns g's norm before clipping. */
double pst_dpsgd_clip_add(float *sum, float *g, size_t n, double clip);

/* g[i] = (sum[i] + N(0, std^2)) / divisor. */
void pst_dpsgd_noise_mean(float *g, const float *sum, size_t n, double std, double divisor,
                          pst_rng_t *rng);

/* Fills rows pos[0..n) of this worker's view into x (n, d) and y (n), ready for the model. */
typedef int (*pst_dpsgd_gather_fn)(void *ctx, const size_t *pos, size_t n, float *x, float *y,
                                   pst_err_t *err);

/* What the per-example loss needs (from the training options). */
typedef struct pst_dpsgd_loss {
    int kind; /* pst_loss_kind_t */
    bool fused_output;
    float huber_delta;
    const double *class_weights; /* or NULL */
} pst_dpsgd_loss_t;

/* One step's private gradient into the model's gradient arena: this worker's Poisson sample at
 * clock, each example's gradient clipped, summed, its share of the noise added, divided by the
 * expected batch size. xb/yb hold chunk rows at a time. *loss gets the sample's mean loss (0 for
 * an empty sample; a training metric, not privatised) and *n_sampled its size. */
int pst_dpsgd_gradient(pst_dpsgd_t *dp, pst_model_t *model, const pst_dpsgd_loss_t *loss,
                       uint64_t clock, pst_dpsgd_gather_fn gather, void *gather_ctx, float *xb,
                       float *yb, int chunk, pst_rng_t *dropout_rng, double *loss_out,
                       size_t *n_sampled, pst_err_t *err);

/* Accounting by epochs. Composes `steps` steps already taken (a resumed run). */
void pst_dpsgd_account_steps(pst_dpsgd_t *dp, uint64_t steps);
/* Epsilon spent so far at the configured delta. */
double pst_dpsgd_epsilon(const pst_dpsgd_t *dp);
/* Epsilon once `steps` more steps are composed, without composing them. */
double pst_dpsgd_epsilon_after(const pst_dpsgd_t *dp, uint64_t steps);
/* True when `steps` more steps stay within the budget (always, without a budget). */
bool pst_dpsgd_within_budget(const pst_dpsgd_t *dp, uint64_t steps, double *eps_after);

#endif
