/* Federated aggregation: how the server turns the sites' model deltas of one round into a new
 * global model (FedAvg, server optimizers, robust rules, DP-FedAvg). */
#ifndef PST_COMMON_FED_FEDAGG_H
#define PST_COMMON_FED_FEDAGG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/rng.h"

/* How the deltas of one round are combined into one delta. */
typedef enum {
    /* FedAvg (and FedProx, whose difference lives on the sites): the mean of the deltas weighted
     * by the sites' sample counts (equal weights when counts is NULL). */
    PST_FEDAGG_MEAN = 0,
    /* Robust rules. They ignore the sample counts: a count is the site's own claim, and weighting
     * by it would let one site outvote the others by claiming a large one. */
    PST_FEDAGG_MEDIAN,       /* coordinate-wise median (mean of the two middle values if k even) */
    PST_FEDAGG_TRIMMED_MEAN, /* coordinate-wise: drop the floor(trim*k) largest and smallest */
    PST_FEDAGG_KRUM,         /* the one delta with the smallest Krum score */
    PST_FEDAGG_MULTI_KRUM,   /* equal-weight mean of the multi_krum_m deltas with the best scores */
} pst_fedagg_rule_t;

/* What the server does with the combined delta d (Reddi et al., "Adaptive Federated
 * Optimization", Algorithm 2; m starts at 0, v at tau^2, no bias correction):
 *   sgd:      global += lr * d                         (FedAvg: lr = 1)
 *   sgd with server_momentum b > 0 (FedAvgM): m = b m + d, global += lr * m
 *   ... and server_nesterov: m = b m + d, global += lr * (b m + d)
 *   m = beta1 m + (1 - beta1) d, then
 *   adagrad:  v = v + d^2
 *   adam:     v = beta2 v + (1 - beta2) d^2
 *   yogi:     v = v - (1 - beta2) d^2 sign(v - d^2)
 *   and       global += lr * m / (sqrt(v) + tau)      (all per coordinate) */
typedef enum {
    PST_FEDOPT_SGD = 0,
    PST_FEDOPT_ADAM,
    PST_FEDOPT_YOGI,
    PST_FEDOPT_ADAGRAD,
} pst_fedopt_t;

typedef struct pst_fedagg_cfg {
    pst_fedagg_rule_t rule;
    pst_fedopt_t server_opt;
    double server_lr; /* sgd 1; adaptive 0.01 */
    /* sgd only, in [0, 1) (0): FedAvgM (Hsu et al. 2019), m = momentum m + d, global += lr m */
    double server_momentum;
    /* sgd with server_momentum > 0 only: Nesterov's look-ahead, global += lr (b m + d) */
    int server_nesterov;
    double beta1, beta2;  /* adaptive (0.9, 0.99); beta1 = 0 makes FedAdagrad plain Adagrad */
    double tau;           /* adaptivity epsilon, > 0 (1e-3) */
    double trim_fraction; /* trimmed mean, in [0, 0.5) (0.1) */
    int krum_f;           /* Krum: assumed number of attackers f >= 0 (1); needs k > 2f + 2 */
    int multi_krum_m;     /* multi-Krum: how many deltas to average; 0 = k - f (0) */
    /* A site whose delta holds a NaN or infinity, or whose count is negative or not finite:
     * 0 (default) fails the whole round with PST_ENUMERIC naming the site, global untouched;
     * 1 drops the site, logs a warning naming it, and aggregates the others. */
    int skip_nonfinite;
    /* DP-FedAvg (rule must be MEAN): dp_clip = C > 0 turns it on. Each site's delta is clipped
     * to L2 norm C, the clipped deltas are summed with equal weights (counts are ignored) and
     * divided by m, then N(0, (dp_noise * C / m)^2) is added to every coordinate. m =
     * dp_expected_sites, or the round's k when 0. Dropped sites count in m as zero deltas. */
    double dp_clip;        /* C (0 = off) */
    double dp_noise;       /* noise multiplier z >= 0 (0 = clipping only) */
    int dp_expected_sites; /* m (0 = the round's k) */
    uint64_t seed;         /* DP noise stream */
} pst_fedagg_cfg_t;

/* What the last successful round did. */
typedef struct pst_fedagg_info {
    int n_sites;       /* k passed in */
    int n_used;        /* sites that entered the combination */
    int n_skipped;     /* sites dropped for non-finite values (skip_nonfinite) */
    int first_skipped; /* index of the first dropped site, -1 if none */
    int n_clipped;     /* DP: sites whose delta was longer than C */
    int krum_choice;   /* KRUM: index of the chosen site; -1 for other rules */
    double agg_norm;   /* L2 norm of the combined delta (after DP noise), before the optimizer */
} pst_fedagg_info_t;

typedef struct pst_fedagg pst_fedagg_t;

/* Fills cfg with the defaults above for a server optimizer (the lr depends on it). */
void pst_fedagg_cfg_defaults(pst_fedagg_cfg_t *cfg, pst_fedopt_t server_opt);
/* "fedavg", "fedprox" and "mean" (all PST_FEDAGG_MEAN), "median", "trimmed_mean", "krum",
 * "multi_krum". Returns PST_EINVAL for anything else. */
int pst_fedagg_rule_parse(const char *name, pst_fedagg_rule_t *rule);
const char *pst_fedagg_rule_name(pst_fedagg_rule_t rule);
/* "sgd", "adam", "yogi", "adagrad", each also with a "fed" prefix ("fedadam"). */
int pst_fedagg_opt_parse(const char *name, pst_fedopt_t *opt);
const char *pst_fedagg_opt_name(pst_fedopt_t opt);

/* An aggregator for models of n floats; checks cfg. Caller owns the result. */
pst_fedagg_t *pst_fedagg_new(const pst_fedagg_cfg_t *cfg, size_t n, pst_err_t *err);
void pst_fedagg_destroy(pst_fedagg_t **self_p);

/* One round: combines deltas[0..k) (each n floats: site weights minus the global weights the
 * site started from; counts[i] = site i's sample count, or counts = NULL) and applies the result
 * to global (n floats, in/out). Either the round succeeds, or it fails with global, the
 * optimizer state, the DP noise stream and the round counter untouched:
 * PST_EINVAL for k < 1, a NULL delta, no usable site left, counts that sum to 0 (MEAN),
 * k <= 2f + 2 usable sites (Krum) or multi_krum_m > usable sites; PST_ENUMERIC for a
 * non-finite site (unless skipped) or a combined delta that overflows. */
int pst_fedagg_round(pst_fedagg_t *a, float *global, const float *const *deltas,
                     const double *counts, int k, pst_err_t *err);

const pst_fedagg_info_t *pst_fedagg_last(const pst_fedagg_t *a);

/* Checkpoint support: the adaptive optimizers' state is 2n floats, m (n) then v (n); NULL and
 * *n_state = 0 for sgd. The caller may read or overwrite it in place. */
float *pst_fedagg_state(pst_fedagg_t *a, size_t *n_state);
uint64_t pst_fedagg_rounds(const pst_fedagg_t *a);
void pst_fedagg_set_rounds(pst_fedagg_t *a, uint64_t rounds);
/* DP: the m of the next rounds (the sites asked; 0: the round's k). */
void pst_fedagg_set_dp_sites(pst_fedagg_t *a, int m);
/* The DP noise stream, to save and restore with a checkpoint. */
pst_rng_t *pst_fedagg_rng(pst_fedagg_t *a);

/* FedProx on a site: grad += mu * (w - w_global), the gradient of (mu/2) |w - w_global|^2.
 * All arrays n floats; w_global is the global model the site's round started from. */
void pst_fedprox_grad_add(float *grad, const float *w, const float *w_global, size_t n, float mu);

#endif
