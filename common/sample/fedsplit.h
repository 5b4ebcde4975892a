/* Federated splits: row indices dealt into sites, evenly at random (IID) or with per-site class
 * shares drawn from a Dirichlet distribution (non-IID), reproducibly from a seed. */
#ifndef PST_COMMON_SAMPLE_FEDSPLIT_H
#define PST_COMMON_SAMPLE_FEDSPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/rng.h"

/* Site s holds rows[start[s] .. start[s + 1]), row numbers in 0..n_rows-1, each exactly once. */
typedef struct pst_fedsplit {
    int n_sites;
    size_t n_rows;
    size_t *rows;  /* (n_rows) */
    size_t *start; /* (n_sites + 1) */
} pst_fedsplit_t;

/* IID: a seeded shuffle dealt into n_sites parts whose sizes differ by at most one. */
int pst_fedsplit_iid(pst_fedsplit_t *split, size_t n_rows, int n_sites, uint64_t seed,
                     pst_err_t *err);

/* Dirichlet(alpha) non-IID (Hsu, Qi, Brown 2019): for each class c, shares p_c ~ Dir(alpha, ...,
 * alpha) over the sites and the class's shuffled rows are cut in those proportions. labels[i] is
 * row i's class in 0..n_classes-1. Draws are repeated (from derived seeds, up to 100 times) until
 * every site has a row; if that fails, each empty site takes a row from the largest site. Needs
 * n_rows >= n_sites. */
int pst_fedsplit_dirichlet(pst_fedsplit_t *split, const int *labels, size_t n_rows, int n_classes,
                           int n_sites, double alpha, uint64_t seed, pst_err_t *err);

static inline size_t pst_fedsplit_size(const pst_fedsplit_t *split, int site)
{
    return split->start[site + 1] - split->start[site];
}

void pst_fedsplit_fini(pst_fedsplit_t *split);

/* A Gamma(shape, 1) variate, shape > 0 (Marsaglia and Tsang 2000; shape < 1 by boosting). */
double pst_fedsplit_gamma(pst_rng_t *rng, double shape);

#endif
