/* Drift statistics between a training distribution and new data counted in the same bins:
 * population stability index, Kolmogorov-Smirnov at the bin edges, Pearson chi-square, and their
 * p-values. */
#ifndef PST_COMMON_DRIFT_DRIFTSTAT_H
#define PST_COMMON_DRIFT_DRIFTSTAT_H

#include <stddef.h>
#include <stdint.h>

/* The usual PSI bands: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 major. */
#define PST_DRIFT_PSI_MODERATE 0.1
#define PST_DRIFT_PSI_MAJOR 0.25
/* Numeric PSI merges the stored quantile bins into at most this many (deciles). */
#define PST_DRIFT_PSI_GROUPS 10
/* A share below this counts as this in PSI, so that an empty bin gives a finite term. */
#define PST_DRIFT_PSI_FLOOR 1e-4

typedef enum {
    PST_DRIFT_STABLE = 0,
    PST_DRIFT_MODERATE = 1,
    PST_DRIFT_MAJOR = 2
} pst_drift_severity_t;

pst_drift_severity_t pst_drift_severity(double psi);
/* "stable", "moderate", "major". */
const char *pst_drift_severity_name(pst_drift_severity_t s);
/* Parses a severity name; -1 when it is none of them. */
int pst_drift_severity_parse(const char *name);

/* PSI = sum over bins of (q - p) ln(q / p), p and q the shares of ref and cur (each at least
 * PST_DRIFT_PSI_FLOOR). With max_groups > 0 adjacent bins are first merged into at most that
 * many groups (bin k joins group k * groups / n_bins). 0 when either side has no rows. */
double pst_drift_psi(const uint64_t *ref, const uint64_t *cur, size_t n_bins, size_t max_groups);

/* Two-sample Kolmogorov-Smirnov statistic from binned counts: the largest gap between the two
 * cumulative shares at the bin edges. The exact statistic over the raw values lies between it
 * and it plus the largest share any single bin holds on either side (*upper, may be NULL). */
double pst_drift_ks(const uint64_t *ref, const uint64_t *cur, size_t n_bins, double *upper);

/* Asymptotic p-value of a two-sample KS statistic d for samples of n1 and n2 values: the
 * Kolmogorov distribution's survival at sqrt(n1 n2 / (n1 + n2)) d. */
double pst_drift_ks_pvalue(double d, uint64_t n1, uint64_t n2);

/* Pearson chi-square of homogeneity of the 2 x n_bins table (ref, cur); bins empty on both
 * sides are left out. *df gets the degrees of freedom (non-empty bins - 1). */
double pst_drift_chi2(const uint64_t *ref, const uint64_t *cur, size_t n_bins, int *df);

/* Survival function of the chi-square distribution with df degrees of freedom at x. */
double pst_drift_chi2_pvalue(double x, int df);

#endif
