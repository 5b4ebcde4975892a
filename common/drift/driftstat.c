/* Drift statistics: PSI, binned KS, chi-square and the distributions of their p-values. */
#include "common/drift/driftstat.h"

#include <math.h>
#include <string.h>

static const char *const severity_names[] = {"stable", "moderate", "major"};

pst_drift_severity_t pst_drift_severity(double psi)
{
    return psi > PST_DRIFT_PSI_MAJOR       ? PST_DRIFT_MAJOR
           : psi >= PST_DRIFT_PSI_MODERATE ? PST_DRIFT_MODERATE
                                           : PST_DRIFT_STABLE;
}

const char *pst_drift_severity_name(pst_drift_severity_t s)
{
    return severity_names[s];
}

int pst_drift_severity_parse(const char *name)
{
    for (int s = 0; s < 3; s++)
        if (strcmp(name, severity_names[s]) == 0)
            return s;
    return -1;
}

static uint64_t total(const uint64_t *c, size_t n)
{
    uint64_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += c[k];
    return t;
}

static double share(uint64_t count, uint64_t all)
{
    double s = (double)count / (double)all;
    return s < PST_DRIFT_PSI_FLOOR ? PST_DRIFT_PSI_FLOOR : s;
}

double pst_drift_psi(const uint64_t *ref, const uint64_t *cur, size_t n_bins, size_t max_groups)
{
    uint64_t n_ref = total(ref, n_bins), n_cur = total(cur, n_bins);
    if (n_ref == 0 || n_cur == 0)
        return 0;
    size_t groups = max_groups > 0 && max_groups < n_bins ? max_groups : n_bins;
    double psi = 0;
    size_t k = 0;
    for (size_t g = 0; g < groups; g++) {
        uint64_t a = 0, b = 0;
        for (; k < n_bins && k * groups / n_bins == g; k++) {
            a += ref[k];
            b += cur[k];
        }
        double p = share(a, n_ref), q = share(b, n_cur);
        psi += (q - p) * log(q / p);
    }
    return psi;
}

double pst_drift_ks(const uint64_t *ref, const uint64_t *cur, size_t n_bins, double *upper)
{
    uint64_t n_ref = total(ref, n_bins), n_cur = total(cur, n_bins);
    if (upper)
        *upper = 0;
    if (n_ref == 0 || n_cur == 0)
        return 0;
    double d = 0, widest = 0, a = 0, b = 0;
    for (size_t k = 0; k < n_bins; k++) {
        double pa = (double)ref[k] / (double)n_ref, pb = (double)cur[k] / (double)n_cur;
        a += pa;
        b += pb;
        if (fabs(a - b) > d)
            d = fabs(a - b);
        widest = fmax(widest, fmax(pa, pb));
    }
    if (upper)
        *upper = fmin(1.0, d + widest);
    return d;
}

double pst_drift_ks_pvalue(double d, uint64_t n1, uint64_t n2)
{
    if (n1 == 0 || n2 == 0)
        return 1;
    double en = sqrt((double)n1 * (double)n2 / ((double)n1 + (double)n2));
    double lambda = en * d;
    if (lambda < 0.2)
        return 1; /* the series below converges too slowly here; the survival is 1 to 1e-20 */
    double sum = 0, sign = 1;
    for (int k = 1; k <= 100; k++) {
        double term = exp(-2.0 * k * k * lambda * lambda);
        sum += sign * term;
        sign = -sign;
        if (term < 1e-18)
            break;
    }
    double p = 2 * sum;
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

double pst_drift_chi2(const uint64_t *ref, const uint64_t *cur, size_t n_bins, int *df)
{
    double n_ref = (double)total(ref, n_bins), n_cur = (double)total(cur, n_bins);
    double n = n_ref + n_cur, chi2 = 0;
    int used = 0;
    for (size_t k = 0; k < n_bins && n_ref > 0 && n_cur > 0; k++) {
        double col = (double)ref[k] + (double)cur[k];
        if (col == 0)
            continue;
        used++;
        double e_ref = col * n_ref / n, e_cur = col * n_cur / n;
        chi2 += ((double)ref[k] - e_ref) * ((double)ref[k] - e_ref) / e_ref +
                ((double)cur[k] - e_cur) * ((double)cur[k] - e_cur) / e_cur;
    }
    *df = used > 1 ? used - 1 : 0;
    return chi2;
}

/* Regularised lower incomplete gamma P(a, x) by its power series (x < a + 1). */
static double gamma_p_series(double a, double x)
{
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 1000; n++) {
        term *= x / (a + n);
        sum += term;
        if (fabs(term) < fabs(sum) * 1e-15)
            break;
    }
    return sum * exp(-x + a * log(x) - lgamma(a));
}

/* Regularised upper incomplete gamma Q(a, x) by its continued fraction (x >= a + 1), evaluated
 * with the modified Lentz method. */
static double gamma_q_fraction(double a, double x)
{
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 1000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        d = fabs(d) < tiny ? tiny : d;
        c = b + an / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        double step = d * c;
        h *= step;
        if (fabs(step - 1) < 1e-15)
            break;
    }
    return exp(-x + a * log(x) - lgamma(a)) * h;
}

double pst_drift_chi2_pvalue(double x, int df)
{
    if (df <= 0 || !(x > 0))
        return 1;
    double a = df / 2.0, hx = x / 2.0;
    double q = hx < a + 1 ? 1 - gamma_p_series(a, hx) : gamma_q_fraction(a, hx);
    return q < 0 ? 0 : q > 1 ? 1 : q;
}
