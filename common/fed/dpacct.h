/* Privacy accountant for the subsampled Gaussian mechanism (DP-FedAvg rounds, DP-SGD steps):
 * Renyi DP per order, composed over steps, converted to (epsilon, delta). */
#ifndef PST_COMMON_FED_DPACCT_H
#define PST_COMMON_FED_DPACCT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The mechanism of one step: each record (a site, or an example) is in the batch independently
 * with probability q (Poisson sampling), the batch sum of clipped contributions gets Gaussian
 * noise of standard deviation sigma times the clipping norm. Its RDP at order alpha is
 * log(A_alpha) / (alpha - 1) with A_alpha = E_{z ~ N(0, sigma^2)}[((1-q) + q e^{(2z-1)/(2
 * sigma^2)})^alpha] (Mironov, Talwar, Zhang 2019): for integer alpha the finite binomial sum A =
 * sum_{k=0..alpha} C(alpha,k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)), for fractional
 * alpha their two convergent series with erfc, both summed in log space. q = 1 gives exactly alpha
 * / (2 sigma^2); q = 0 gives 0; sigma = 0 with q > 0 gives +inf. */

/* RDP to (epsilon, delta):
 *   STANDARD: eps = min_alpha rdp(alpha) + log(1/delta) / (alpha - 1)      (Mironov 2017)
 *   BALLE:    eps = min_alpha rdp(alpha) + log((alpha-1)/alpha)
 *                               - (log(delta) + log(alpha)) / (alpha - 1)  (Balle et al. 2020,
 *             Theorem 21), never looser than STANDARD for alpha > 1, clamped at 0. */
typedef enum { PST_DPACCT_STANDARD = 0, PST_DPACCT_BALLE = 1 } pst_dpacct_conv_t;

typedef struct pst_dpacct pst_dpacct_t;

/* The default orders, ascending: every non-integer 1.1, 1.2, ..., 10.9 (step 0.1) plus 1.25,
 * 1.75, 2.25, and every integer 2..256 (348 orders). Returns their number; fills orders only
 * when cap is at least that number (call with NULL, 0 to learn it). */
size_t pst_dpacct_default_orders(double *orders, size_t cap);

/* An accountant for steps of sampling rate q in [0, 1] and noise multiplier sigma >= 0, over the
 * default orders (first form) or orders[0..n_orders), each finite and > 1. Nothing is composed
 * yet. Caller owns the result. */
pst_dpacct_t *pst_dpacct_new(double q, double sigma, pst_err_t *err);
pst_dpacct_t *pst_dpacct_new_orders(double q, double sigma, const double *orders, size_t n_orders,
                                    pst_err_t *err);
void pst_dpacct_destroy(pst_dpacct_t **self_p);

/* Composes one step (one federated round), or n steps, of the accountant's (q, sigma). */
void pst_dpacct_step(pst_dpacct_t *a);
void pst_dpacct_step_n(pst_dpacct_t *a, uint64_t n);
/* Composes n steps of another mechanism (q, sigma), e.g. after the sampling rate changed. */
int pst_dpacct_compose(pst_dpacct_t *a, double q, double sigma, uint64_t n, pst_err_t *err);
/* Steps composed so far, by step(), step_n() and compose(). */
uint64_t pst_dpacct_steps(const pst_dpacct_t *a);

/* Epsilon spent at delta in (0, 1), standard conversion. 0 when nothing is spent (no step, or
 * q = 0); +inf when every order's RDP is infinite (sigma = 0). */
int pst_dpacct_epsilon(const pst_dpacct_t *a, double delta, double *eps, pst_err_t *err);
/* The same with a choice of conversion; *order (may be NULL) receives the minimising order
 * (NaN when nothing is spent or eps is +inf). */
int pst_dpacct_epsilon_conv(const pst_dpacct_t *a, double delta, pst_dpacct_conv_t conv,
                            double *eps, double *order, pst_err_t *err);

/* The epsilon at delta (standard conversion) that n more steps of (q, sigma) would bring the
 * composition to, without composing them: a budget check before a round. */
int pst_dpacct_epsilon_after(const pst_dpacct_t *a, double q, double sigma, uint64_t n,
                             double delta, double *eps, pst_err_t *err);

/* The orders and the accumulated RDP at each (n_orders each). The RDP may be overwritten in place
 * to restore a checkpoint (with pst_dpacct_set_steps for the counter). */
size_t pst_dpacct_n_orders(const pst_dpacct_t *a);
const double *pst_dpacct_orders(const pst_dpacct_t *a);
double *pst_dpacct_rdp(pst_dpacct_t *a);
void pst_dpacct_set_steps(pst_dpacct_t *a, uint64_t steps);

/* RDP of one step of the subsampled Gaussian mechanism at one order alpha > 1; NaN for
 * arguments out of range. */
double pst_dpacct_rdp_step(double q, double sigma, double alpha);

/* The smallest noise multiplier (to a relative 1e-6, rounded up) for which `steps` steps at
 * sampling rate q spend at most eps at delta over the default orders. PST_ERANGE when even
 * sigma = 1e6 does not reach eps. */
int pst_dpacct_calibrate_sigma(double q, uint64_t steps, double eps, double delta,
                               pst_dpacct_conv_t conv, double *sigma, pst_err_t *err);

#endif
