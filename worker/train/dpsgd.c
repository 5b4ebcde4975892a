/* DP-SGD: Poisson-sampled batches, per-example clipping, Gaussian noise, RDP accounting. */
#include "worker/train/dpsgd.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fed/dpacct.h"
#include "worker/model/loss.h"

/* Streams derived from the run's seed; 1..3 are the loop's (order, dropout, augment). */
enum { STREAM_SAMPLE = 4, STREAM_NOISE = 5 };

struct pst_dpsgd {
    pst_dp_opts_t o;
    pst_dpsgd_setup_t s;
    double q, sigma, noise_std;
    pst_dpacct_t *acct;
    pst_dpacct_t *probe; /* same (q, sigma): the accountant's state plus steps not yet taken */
    uint64_t sample_seed, noise_seed; /* this worker's */
    float *sum;                       // (n_params) clipped per-example gradients of the step
    float *dout;                      // (n_outputs) one example's loss gradient
    size_t *sample;                   // (n_rows) the step's sampled positions
};

static int check_opts(const pst_dp_opts_t *o, const pst_dpsgd_setup_t *s, pst_err_t *err)
{
    if (!(o->clip > 0) || !isfinite(o->clip))
        return pst_err_set(err, PST_EINVAL, "train.dp.clip must be > 0 for DP-SGD");
    if (!(o->delta > 0 && o->delta < 1))
        return pst_err_set(err, PST_EINVAL, "train.dp.delta %g is not in (0, 1)", o->delta);
    if (!(o->noise > 0) && !(o->epsilon_budget > 0))
        return pst_err_set(err, PST_EINVAL,
                           "train.dp.clip without noise: set train.dp.noise > 0, or "
                           "train.dp.epsilon_budget > 0 to calibrate it");
    if (s->n_rows == 0 || s->n_rows_total == 0 || s->n_workers < 1 || s->batch_size < 1)
        return pst_err_set(err, PST_EINVAL, "train.dp: no training rows");
    if ((double)s->batch_size * s->n_workers > (double)s->n_rows_total)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp: train.batch_size %d x %d workers exceeds the %zu training "
                           "rows (sampling rate above 1)",
                           s->batch_size, s->n_workers, s->n_rows_total);
    return PST_OK;
}

/* The noise multiplier: configured, or the smallest that spends the budget over the run. */
static int choose_sigma(pst_dpsgd_t *dp, pst_err_t *err)
{
    if (dp->o.noise > 0) {
        dp->sigma = dp->o.noise;
        return PST_OK;
    }
    uint64_t steps = (uint64_t)dp->s.steps_per_epoch * (uint64_t)dp->s.epochs;
    int rc = pst_dpacct_calibrate_sigma(dp->q, steps, dp->o.epsilon_budget, dp->o.delta,
                                        PST_DPACCT_STANDARD, &dp->sigma, err);
    return rc ? pst_err_prefix(err, rc, "train.dp.epsilon_budget: ") : PST_OK;
}

pst_dpsgd_t *pst_dpsgd_new(const pst_dp_opts_t *opts, const pst_dpsgd_setup_t *setup,
                           pst_err_t *err)
{
    if (check_opts(opts, setup, err) != PST_OK)
        return NULL;
    pst_dpsgd_t *dp = calloc(1, sizeof *dp);
    if (!dp) {
        pst_err_set(err, PST_ENOMEM, "train.dp: out of memory");
        return NULL;
    }
    dp->o = *opts;
    dp->s = *setup;
    dp->q = (double)setup->batch_size * setup->n_workers / (double)setup->n_rows_total;
    uint64_t worker_seed = pst_rng_derive(setup->seed, (uint64_t)opts->worker);
    dp->sample_seed = pst_rng_derive(worker_seed, STREAM_SAMPLE);
    dp->noise_seed = pst_rng_derive(worker_seed, STREAM_NOISE);
    int rc = choose_sigma(dp, err);
    /* One share per worker: see pst_dpsgd_gradient for why sigma / sqrt(W) adds up. */
    dp->noise_std = dp->sigma * opts->clip / sqrt((double)setup->n_workers);
    if (rc == PST_OK && (!(dp->acct = pst_dpacct_new(dp->q, dp->sigma, err)) ||
                         !(dp->probe = pst_dpacct_new(dp->q, dp->sigma, err))))
        rc = pst_err_code(err, PST_ENOMEM);
    dp->sum = rc == PST_OK ? malloc(setup->n_params * sizeof *dp->sum) : NULL;
    dp->sample = dp->sum ? malloc(setup->n_rows * sizeof *dp->sample) : NULL;
    if (rc == PST_OK && !dp->sample)
        rc = pst_err_set(err, PST_ENOMEM, "train.dp: out of memory for %zu parameters",
                         setup->n_params);
    if (rc != PST_OK)
        pst_dpsgd_destroy(&dp);
    return dp;
}

void pst_dpsgd_destroy(pst_dpsgd_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pst_dpsgd_t *dp = *self_p;
    pst_dpacct_destroy(&dp->acct);
    pst_dpacct_destroy(&dp->probe);
    free(dp->sum);
    free(dp->dout);
    free(dp->sample);
    free(dp);
    *self_p = NULL;
}

int pst_dpsgd_check_model(const pst_model_t *model, pst_err_t *err)
{
    for (int i = 0; i < pst_model_n_layers(model); i++) {
        if (pst_model_layer(model, i)->kind == PST_LAYER_BATCHNORM)
            return pst_err_set(err, PST_EINVAL,
                               "train.dp: layer %d (batchnorm) normalises each example with its "
                               "batch's statistics, so an example's gradient depends on the "
                               "others and clipping it bounds nothing; remove batchnorm for "
                               "DP-SGD",
                               i + 1);
    }
    return PST_OK;
}

double pst_dpsgd_q(const pst_dpsgd_t *dp)
{
    return dp->q;
}

double pst_dpsgd_sigma(const pst_dpsgd_t *dp)
{
    return dp->sigma;
}

double pst_dpsgd_noise_std(const pst_dpsgd_t *dp)
{
    return dp->noise_std;
}

size_t pst_dpsgd_poisson_sample(pst_rng_t *rng, double q, size_t n, size_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (pst_rng_uniform(rng) < q)
            out[m++] = i;
    }
    return m;
}

/* Squared L2 norm in double: eight independent sums keep the adds pipelined (a single chain
 * waits on each add's latency), and double keeps the clipping bound exact to far below float's
 * rounding. (BLAS dsdot is not enough: OpenBLAS's kernel rounds the products to float.) */
static double sum_squares(const float *g, size_t n)
{
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)g[i + k] * g[i + k];
    for (; i < n; i++)
        acc[0] += (double)g[i] * g[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* The per-example pass is the hot loop of a private step. */
double pst_dpsgd_clip_add(float *sum, float *g, size_t n, double clip)
{
    double norm = sqrt(sum_squares(g, n));
    if (norm > clip)
        cblas_sscal((int)n, (float)(clip / norm), g, 1);
    cblas_saxpy((int)n, 1.0f, g, 1, sum, 1);
    return norm;
}

void pst_dpsgd_noise_mean(float *g, const float *sum, size_t n, double std, double divisor,
                          pst_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        g[i] = (float)(((double)sum[i] + std * pst_rng_normal(rng)) / divisor);
}

/* One example through forward and backward; its clipped gradient is added to dp->sum. */
static double example_gradient(pst_dpsgd_t *dp, pst_model_t *model, const pst_dpsgd_loss_t *l,
                               const float *x, const float *y, pst_rng_t *dropout_rng)
{
    int n_out = pst_model_n_outputs(model);
    const float *out = pst_model_forward(model, x, 1, true, dropout_rng);
    double loss = pst_loss_eval((pst_loss_kind_t)l->kind, out, y, 1, n_out, l->huber_delta,
                                l->fused_output, dp->dout);
    if (l->class_weights) {
        float wt = (float)l->class_weights[(int)y[0]];
        for (int k = 0; k < n_out; k++)
            dp->dout[k] *= wt;
    }
    pst_model_backward(model, dp->dout, 1, l->fused_output);
    pst_dpsgd_clip_add(dp->sum, pst_model_grads(model), dp->s.n_params, dp->o.clip);
    return loss;
}

/* Noise placement under mpirun (BSP): worker w adds Z_w ~ N(0, sigma^2 C^2 / W) to its sum S_w of
 * clipped gradients and pushes p_w = (S_w + Z_w) / b. The server applies the mean of the W pushes
 * of a clock, (1/W) sum_w p_w = (S + Z) / (W b), with S = sum_w S_w the global step's clipped sum
 * and Z = sum_w Z_w. The Z_w are independent (each worker's own stream), so Z is Gaussian with
 * variance W x sigma^2 C^2 / W = sigma^2 C^2: exactly the noise of one process adding
 * N(0, sigma^2 C^2) to S and dividing by the expected global batch W b = q N. One worker is the
 * local run. The privacy is that of the applied update (the model); a single worker's push
 * carries only sigma / sqrt(W) of the noise, so the servers are trusted with it. */
int pst_dpsgd_gradient(pst_dpsgd_t *dp, pst_model_t *model, const pst_dpsgd_loss_t *loss,
                       uint64_t clock, pst_dpsgd_gather_fn gather, void *gather_ctx, float *xb,
                       float *yb, int chunk, pst_rng_t *dropout_rng, double *loss_out,
                       size_t *n_sampled, pst_err_t *err)
{
    size_t n_params = dp->s.n_params, d = (size_t)pst_model_n_inputs(model);
    if (!dp->dout && !(dp->dout = malloc((size_t)pst_model_n_outputs(model) * sizeof(float))))
        return pst_err_set(err, PST_ENOMEM, "train.dp: out of memory");
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(dp->sample_seed, clock));
    size_t m = pst_dpsgd_poisson_sample(&rng, dp->q, dp->s.n_rows, dp->sample);
    memset(dp->sum, 0, n_params * sizeof *dp->sum);
    double loss_sum = 0.0;
    for (size_t first = 0; first < m; first += (size_t)chunk) {
        size_t n = m - first < (size_t)chunk ? m - first : (size_t)chunk;
        int rc = gather(gather_ctx, dp->sample + first, n, xb, yb, err);
        if (rc != PST_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            loss_sum += example_gradient(dp, model, loss, xb + i * d, yb + i, dropout_rng);
    }
    pst_rng_init(&rng, pst_rng_derive(dp->noise_seed, clock));
    pst_dpsgd_noise_mean(pst_model_grads(model), dp->sum, n_params, dp->noise_std,
                         (double)dp->s.batch_size, &rng);
    *loss_out = m > 0 ? loss_sum / (double)m : 0.0;
    *n_sampled = m;
    return PST_OK;
}

void pst_dpsgd_account_steps(pst_dpsgd_t *dp, uint64_t steps)
{
    pst_dpacct_step_n(dp->acct, steps);
}

double pst_dpsgd_epsilon(const pst_dpsgd_t *dp)
{
    double eps = NAN;
    pst_dpacct_epsilon(dp->acct, dp->o.delta, &eps, NULL);
    return eps;
}

/* What pst_dpacct_epsilon_after computes (rdp + steps x one step's rdp, then the conversion),
 * without evaluating every order's series again each epoch: the probe holds one step's rdp. */
double pst_dpsgd_epsilon_after(const pst_dpsgd_t *dp, uint64_t steps)
{
    size_t n = pst_dpacct_n_orders(dp->acct);
    memcpy(pst_dpacct_rdp(dp->probe), pst_dpacct_rdp(dp->acct), n * sizeof(double));
    pst_dpacct_step_n(dp->probe, steps);
    double eps = NAN;
    pst_dpacct_epsilon(dp->probe, dp->o.delta, &eps, NULL);
    return eps;
}

bool pst_dpsgd_within_budget(const pst_dpsgd_t *dp, uint64_t steps, double *eps_after)
{
    double eps = pst_dpsgd_epsilon_after(dp, steps);
    if (eps_after)
        *eps_after = eps;
    return !(dp->o.epsilon_budget > 0) || eps <= dp->o.epsilon_budget;
}
