/* RDP accountant for the subsampled Gaussian mechanism: per-order RDP in log space, composition,
 * conversion to (epsilon, delta) and noise calibration. */
#include "common/fed/dpacct.h"

#include "common/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The fractional-order series stop once both terms fall below e^-LOG_TINY (A >= 1, so that is a
 * relative bound), or after MAX_TERMS terms. */
#define LOG_TINY 40.0
enum { MAX_TERMS = 1000000, MAX_INT_ORDER = 256, N_EXTRA = 3 };

struct pst_dpacct {
    double q, sigma;
    uint64_t steps;
    size_t n_orders;
    double *orders;   // (n_orders)
    double *step_rdp; // (n_orders) RDP of one step of (q, sigma)
    double *rdp;      // (n_orders) accumulated
};

/* Default orders: 90 non-integers of the 0.1 grid, 3 quarter points, 255 integers. */
enum { N_DEFAULT = 90 + N_EXTRA + (MAX_INT_ORDER - 1) };

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

size_t pst_dpacct_default_orders(double *orders, size_t cap)
{
    static const double extra[N_EXTRA] = {1.25, 1.75, 2.25};
    if (orders == NULL || cap < N_DEFAULT)
        return N_DEFAULT;
    size_t c = 0;
    for (int x = 11; x < 110; x++) {
        if (x % 10 != 0)
            orders[c++] = x / 10.0;
    }
    for (int i = 0; i < N_EXTRA; i++)
        orders[c++] = extra[i];
    for (int a = 2; a <= MAX_INT_ORDER; a++)
        orders[c++] = a;
    qsort(orders, c, sizeof *orders, cmp_double);
    return c;
}

/* log(e^x + e^y) without overflow; -inf is the empty sum. */
static double log_add(double x, double y)
{
    if (x == -INFINITY)
        return y;
    if (y == -INFINITY)
        return x;
    double hi = x > y ? x : y, lo = x > y ? y : x;
    return hi + log1p(exp(lo - hi));
}

/* log(erfc(x)), finite far into the tail where erfc underflows. */
static double log_erfc(double x)
{
    if (x < 26.0)
        return log(erfc(x));
    /* erfc(x) = e^{-x^2} / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6) + 105/(16x^8) - ...);
     * the first omitted term is below 1e-12 for x >= 26. */
    double r = 1.0 / (x * x);
    double series = 1.0 + r * (-0.5 + r * (0.75 + r * (-1.875 + r * 6.5625)));
    return -x * x - log(x) - 0.5 * log(M_PI) + log(series);
}

/* log(e^x - 1) for x > 0. */
static double log_expm1(double x)
{
    return x > 30.0 ? x + log1p(-exp(-x)) : log(expm1(x));
}

/* log A for integer alpha >= 2 and 0 < q < 1. The binomial weights sum to 1, so
 * A - 1 = sum_{k>=2} C(alpha,k) (1-q)^(alpha-k) q^k (e^{(k^2-k)/(2 sigma^2)} - 1): all terms
 * positive, summed in log space, which keeps tiny RDP values accurate too. */
static double log_a_int(double q, double sigma, int alpha)
{
    double lq = log(q), l1q = log1p(-q), two_s2 = 2.0 * sigma * sigma;
    double log_coef = log((double)alpha); /* log C(alpha, 1) */
    double log_a1 = -INFINITY;            /* log(A - 1) */
    for (int k = 2; k <= alpha; k++) {
        log_coef += log((double)(alpha - k + 1)) - log((double)k);
        double expo = ((double)k * k - k) / two_s2;
        double term = log_coef + (alpha - k) * l1q + k * lq + log_expm1(expo);
        log_a1 = log_add(log_a1, term);
    }
    return log_a1 > 0 ? log_a1 + log1p(exp(-log_a1)) : log1p(exp(log_a1));
}

/* Signed sum in log space: the positive and the negative terms apart. */
typedef struct signed_sum {
    double pos, neg;
} signed_sum_t;

static void signed_add(signed_sum_t *s, int sign, double log_term)
{
    if (sign > 0)
        s->pos = log_add(s->pos, log_term);
    else
        s->neg = log_add(s->neg, log_term);
}

/* log A for fractional alpha > 1 and 0 < q < 1: split the integral at z0, where (1-q) mu0 =
 * q mu1, and expand each side with the generalised binomial series (Mironov et al. 2019,
 * Sec. 3.3). Below z0, term i: C(alpha,i) (1-q)^(alpha-i) q^i e^{(i^2-i)/(2 s^2)} P(N(i,s^2) <=
 * z0); above z0, with j = alpha - i: C(alpha,i) q^j (1-q)^i e^{(j^2-j)/(2 s^2)} P(N(j,s^2) > z0).
 */
static double log_a_frac(double q, double sigma, double alpha)
{
    double lq = log(q), l1q = log1p(-q), two_s2 = 2.0 * sigma * sigma;
    double z0 = sigma * sigma * (l1q - lq) + 0.5, root2s = M_SQRT2 * sigma;
    signed_sum_t sum = {-INFINITY, -INFINITY};
    double log_coef = 0.0; /* log |C(alpha, i)| */
    int sign = 1;          /* sign of C(alpha, i) */
    for (int i = 0; i < MAX_TERMS; i++) {
        if (i > 0) {
            double factor = alpha - i + 1;
            log_coef += log(fabs(factor)) - log((double)i);
            sign = factor < 0 ? -sign : sign;
        }
        double j = alpha - i;
        double below = log_coef + (alpha - i) * l1q + i * lq + ((double)i * i - i) / two_s2 +
                       log(0.5) + log_erfc((i - z0) / root2s);
        double above = log_coef + j * lq + i * l1q + (j * j - j) / two_s2 + log(0.5) +
                       log_erfc((z0 - j) / root2s);
        signed_add(&sum, sign, below);
        signed_add(&sum, sign, above);
        if (i > alpha + 1 && below < -LOG_TINY && above < -LOG_TINY)
            return sum.pos + log1p(-exp(sum.neg - sum.pos));
    }
    pst_warn("dpacct: RDP series at order %g (q %g, sigma %g) cut after %d terms", alpha, q, sigma,
             MAX_TERMS);
    return sum.pos + log1p(-exp(sum.neg - sum.pos));
}

double pst_dpacct_rdp_step(double q, double sigma, double alpha)
{
    if (!(q >= 0 && q <= 1) || !(sigma >= 0 && isfinite(sigma)) || !(alpha > 1) || !isfinite(alpha))
        return NAN;
    if (q == 0)
        return 0.0;
    if (sigma == 0)
        return INFINITY;
    if (q == 1)
        return alpha / (2.0 * sigma * sigma);
    double log_a = alpha == floor(alpha) && alpha <= 1e6 ? log_a_int(q, sigma, (int)alpha)
                                                         : log_a_frac(q, sigma, alpha);
    return log_a / (alpha - 1.0);
}

static int check_mechanism(double q, double sigma, pst_err_t *err)
{
    if (!(q >= 0 && q <= 1))
        return pst_err_set(err, PST_EINVAL, "dpacct: sampling rate %g not in [0, 1]", q);
    if (!(sigma >= 0 && isfinite(sigma)))
        return pst_err_set(err, PST_EINVAL, "dpacct: noise multiplier %g must be >= 0", sigma);
    return PST_OK;
}

/* step_rdp = RDP of one step of (q, sigma) at every order. */
static void fill_step_rdp(const pst_dpacct_t *a, double q, double sigma, double *out)
{
    for (size_t o = 0; o < a->n_orders; o++)
        out[o] = pst_dpacct_rdp_step(q, sigma, a->orders[o]);
}

pst_dpacct_t *pst_dpacct_new_orders(double q, double sigma, const double *orders, size_t n_orders,
                                    pst_err_t *err)
{
    if (check_mechanism(q, sigma, err) != PST_OK)
        return NULL;
    if (orders == NULL || n_orders == 0) {
        pst_err_set(err, PST_EINVAL, "dpacct: no orders");
        return NULL;
    }
    for (size_t o = 0; o < n_orders; o++) {
        if (!(orders[o] > 1) || !isfinite(orders[o])) {
            pst_err_set(err, PST_EINVAL, "dpacct: order %g must be finite and > 1", orders[o]);
            return NULL;
        }
    }
    pst_dpacct_t *a = calloc(1, sizeof *a);
    double *block = a != NULL ? calloc(3 * n_orders, sizeof *block) : NULL;
    if (block == NULL) {
        free(a);
        pst_err_set(err, PST_ENOMEM, "dpacct: no memory for %zu orders", n_orders);
        return NULL;
    }
    a->q = q;
    a->sigma = sigma;
    a->n_orders = n_orders;
    a->orders = block;
    a->step_rdp = block + n_orders;
    a->rdp = block + 2 * n_orders;
    memcpy(a->orders, orders, n_orders * sizeof *orders);
    fill_step_rdp(a, q, sigma, a->step_rdp);
    return a;
}

pst_dpacct_t *pst_dpacct_new(double q, double sigma, pst_err_t *err)
{
    double orders[N_DEFAULT];
    size_t n = pst_dpacct_default_orders(orders, N_DEFAULT);
    return pst_dpacct_new_orders(q, sigma, orders, n, err);
}

void pst_dpacct_destroy(pst_dpacct_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->orders);
    free(*self_p);
    *self_p = NULL;
}

static void add_steps(pst_dpacct_t *a, const double *step_rdp, uint64_t n)
{
    if (n == 0)
        return;
    for (size_t o = 0; o < a->n_orders; o++)
        a->rdp[o] += step_rdp[o] == 0 ? 0.0 : (double)n * step_rdp[o];
    a->steps += n;
}

void pst_dpacct_step(pst_dpacct_t *a)
{
    add_steps(a, a->step_rdp, 1);
}

void pst_dpacct_step_n(pst_dpacct_t *a, uint64_t n)
{
    add_steps(a, a->step_rdp, n);
}

int pst_dpacct_compose(pst_dpacct_t *a, double q, double sigma, uint64_t n, pst_err_t *err)
{
    int rc = check_mechanism(q, sigma, err);
    if (rc != PST_OK)
        return rc;
    double *tmp = malloc(a->n_orders * sizeof *tmp);
    if (tmp == NULL)
        return pst_err_set(err, PST_ENOMEM, "dpacct: no memory for %zu orders", a->n_orders);
    fill_step_rdp(a, q, sigma, tmp);
    add_steps(a, tmp, n);
    free(tmp);
    return PST_OK;
}

uint64_t pst_dpacct_steps(const pst_dpacct_t *a)
{
    return a->steps;
}

/* Epsilon from the RDP at one order, by the chosen conversion. */
static double convert(double rdp, double alpha, double log_delta, pst_dpacct_conv_t conv)
{
    if (conv == PST_DPACCT_BALLE)
        return rdp + log1p(-1.0 / alpha) - (log_delta + log(alpha)) / (alpha - 1.0);
    return rdp - log_delta / (alpha - 1.0);
}

/* Minimum over orders; *eps = 0 when no RDP was spent, +inf when none is finite. */
static void min_epsilon(const double *orders, const double *rdp, size_t n_orders, double delta,
                        pst_dpacct_conv_t conv, double *eps, double *order)
{
    double best = INFINITY, best_order = NAN, spent = 0.0;
    for (size_t o = 0; o < n_orders; o++) {
        spent += rdp[o];
        double e = convert(rdp[o], orders[o], log(delta), conv);
        if (e < best) {
            best = e;
            best_order = orders[o];
        }
    }
    if (spent == 0.0)
        best_order = NAN;
    if (spent == 0.0 || best < 0.0)
        best = 0.0;
    *eps = best;
    if (order != NULL)
        *order = best_order;
}

int pst_dpacct_epsilon_conv(const pst_dpacct_t *a, double delta, pst_dpacct_conv_t conv,
                            double *eps, double *order, pst_err_t *err)
{
    if (!(delta > 0 && delta < 1))
        return pst_err_set(err, PST_EINVAL, "dpacct: delta %g not in (0, 1)", delta);
    if (conv != PST_DPACCT_STANDARD && conv != PST_DPACCT_BALLE)
        return pst_err_set(err, PST_EINVAL, "dpacct: unknown conversion %d", (int)conv);
    min_epsilon(a->orders, a->rdp, a->n_orders, delta, conv, eps, order);
    return PST_OK;
}

int pst_dpacct_epsilon(const pst_dpacct_t *a, double delta, double *eps, pst_err_t *err)
{
    return pst_dpacct_epsilon_conv(a, delta, PST_DPACCT_STANDARD, eps, NULL, err);
}

int pst_dpacct_epsilon_after(const pst_dpacct_t *a, double q, double sigma, uint64_t n,
                             double delta, double *eps, pst_err_t *err)
{
    int rc = check_mechanism(q, sigma, err);
    if (rc != PST_OK)
        return rc;
    if (!(delta > 0 && delta < 1))
        return pst_err_set(err, PST_EINVAL, "dpacct: delta %g not in (0, 1)", delta);
    double *tmp = malloc(a->n_orders * sizeof *tmp);
    if (tmp == NULL)
        return pst_err_set(err, PST_ENOMEM, "dpacct: no memory for %zu orders", a->n_orders);
    fill_step_rdp(a, q, sigma, tmp);
    for (size_t i = 0; i < a->n_orders; i++)
        tmp[i] = a->rdp[i] + (tmp[i] == 0 || n == 0 ? 0.0 : (double)n * tmp[i]);
    min_epsilon(a->orders, tmp, a->n_orders, delta, PST_DPACCT_STANDARD, eps, NULL);
    free(tmp);
    return PST_OK;
}

size_t pst_dpacct_n_orders(const pst_dpacct_t *a)
{
    return a->n_orders;
}

const double *pst_dpacct_orders(const pst_dpacct_t *a)
{
    return a->orders;
}

double *pst_dpacct_rdp(pst_dpacct_t *a)
{
    return a->rdp;
}

void pst_dpacct_set_steps(pst_dpacct_t *a, uint64_t steps)
{
    a->steps = steps;
}

/* Epsilon of `steps` steps of (q, sigma) over the default orders. */
static double epsilon_for(double q, double sigma, uint64_t steps, double delta,
                          pst_dpacct_conv_t conv)
{
    double orders[N_DEFAULT], rdp[N_DEFAULT];
    size_t n = pst_dpacct_default_orders(orders, N_DEFAULT);
    for (size_t o = 0; o < n; o++) {
        double r = pst_dpacct_rdp_step(q, sigma, orders[o]);
        rdp[o] = r == 0 ? 0.0 : (double)steps * r;
    }
    double eps;
    min_epsilon(orders, rdp, n, delta, conv, &eps, NULL);
    return eps;
}

int pst_dpacct_calibrate_sigma(double q, uint64_t steps, double eps, double delta,
                               pst_dpacct_conv_t conv, double *sigma, pst_err_t *err)
{
    if (!(q > 0 && q <= 1) || steps == 0 || !(eps > 0) || !(delta > 0 && delta < 1))
        return pst_err_set(err, PST_EINVAL,
                           "dpacct: calibration needs q in (0, 1], steps > 0, eps > 0 and delta "
                           "in (0, 1); got q %g, steps %llu, eps %g, delta %g",
                           q, (unsigned long long)steps, eps, delta);
    /* epsilon falls as sigma grows: bracket by doubling, then bisect. */
    double hi = 1.0;
    while (epsilon_for(q, hi, steps, delta, conv) > eps) {
        hi *= 2.0;
        if (hi > 1e6)
            return pst_err_set(err, PST_ERANGE, "dpacct: no sigma <= 1e6 reaches eps %g", eps);
    }
    double lo = hi > 1.0 ? hi / 2.0 : 0.0;
    while (hi - lo > 1e-6 * hi) {
        double mid = 0.5 * (lo + hi);
        if (epsilon_for(q, mid, steps, delta, conv) > eps)
            lo = mid;
        else
            hi = mid;
    }
    *sigma = hi;
    return PST_OK;
}
