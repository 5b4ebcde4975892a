/* Federated splits: IID and Dirichlet non-IID assignment of row indices to sites. */
#include "common/sample/fedsplit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pst_fedsplit_fini(pst_fedsplit_t *split)
{
    free(split->rows);
    free(split->start);
    memset(split, 0, sizeof *split);
}

static int split_alloc(pst_fedsplit_t *split, size_t n_rows, int n_sites, pst_err_t *err)
{
    memset(split, 0, sizeof *split);
    if (n_sites < 1)
        return pst_err_set(err, PST_EINVAL, "fedsplit: %d sites (need at least 1)", n_sites);
    if (n_rows < (size_t)n_sites)
        return pst_err_set(err, PST_EINVAL, "fedsplit: %zu rows cannot fill %d sites", n_rows,
                           n_sites);
    split->n_sites = n_sites;
    split->n_rows = n_rows;
    split->rows = malloc(n_rows * sizeof *split->rows);
    split->start = calloc((size_t)n_sites + 1, sizeof *split->start);
    if (!split->rows || !split->start) {
        pst_fedsplit_fini(split);
        return pst_err_set(err, PST_ENOMEM, "fedsplit: out of memory");
    }
    return PST_OK;
}

int pst_fedsplit_iid(pst_fedsplit_t *split, size_t n_rows, int n_sites, uint64_t seed,
                     pst_err_t *err)
{
    int rc = split_alloc(split, n_rows, n_sites, err);
    if (rc != PST_OK)
        return rc;
    for (size_t i = 0; i < n_rows; i++)
        split->rows[i] = i;
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    pst_rng_shuffle(&rng, split->rows, n_rows);
    size_t base = n_rows / (size_t)n_sites, extra = n_rows % (size_t)n_sites;
    for (int s = 0; s < n_sites; s++)
        split->start[s + 1] = split->start[s] + base + ((size_t)s < extra ? 1 : 0);
    return PST_OK;
}

double pst_fedsplit_gamma(pst_rng_t *rng, double shape)
{
    if (shape < 1) {
        /* Gamma(a) = Gamma(a + 1) * U^(1/a). */
        double u = pst_rng_uniform(rng);
        return pst_fedsplit_gamma(rng, shape + 1) * pow(u > 0 ? u : 1e-300, 1 / shape);
    }
    double d = shape - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = pst_rng_normal(rng), v = 1 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = pst_rng_uniform(rng);
        if (u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)))
            return d * v;
    }
}

/* p (n) ~ Dirichlet(alpha, ..., alpha). */
static void draw_dirichlet(pst_rng_t *rng, double alpha, double *p, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += p[i] = pst_fedsplit_gamma(rng, alpha);
    for (int i = 0; i < n; i++)
        p[i] = sum > 0 ? p[i] / sum : 1.0 / n;
}

/* One draw: site[i] receives the site of row i. Returns the smallest site size. */
static size_t dirichlet_draw(const int *labels, size_t n_rows, int n_classes, int n_sites,
                             double alpha, uint64_t seed, size_t *order, double *p, int *site,
                             size_t *sizes)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    memset(sizes, 0, (size_t)n_sites * sizeof *sizes);
    for (int c = 0; c < n_classes; c++) {
        size_t n_c = 0;
        for (size_t i = 0; i < n_rows; i++)
            if (labels[i] == c)
                order[n_c++] = i;
        pst_rng_shuffle(&rng, order, n_c);
        draw_dirichlet(&rng, alpha, p, n_sites);
        double cum = 0;
        size_t from = 0;
        for (int s = 0; s < n_sites; s++) {
            cum += p[s];
            size_t to = s + 1 == n_sites ? n_c : (size_t)llround(cum * (double)n_c);
            if (to > n_c)
                to = n_c;
            for (size_t j = from; j < to; j++)
                site[order[j]] = s;
            sizes[s] += to > from ? to - from : 0;
            from = to > from ? to : from;
        }
    }
    size_t min = n_rows;
    for (int s = 0; s < n_sites; s++)
        min = sizes[s] < min ? sizes[s] : min;
    return min;
}

/* Gives each empty site one row of the currently largest site. */
static void fill_empty_sites(size_t n_rows, int n_sites, int *site, size_t *sizes)
{
    for (int s = 0; s < n_sites; s++) {
        if (sizes[s] > 0)
            continue;
        int big = 0;
        for (int t = 1; t < n_sites; t++)
            big = sizes[t] > sizes[big] ? t : big;
        for (size_t i = 0; i < n_rows; i++)
            if (site[i] == big) {
                site[i] = s;
                sizes[big]--, sizes[s]++;
                break;
            }
    }
}

int pst_fedsplit_dirichlet(pst_fedsplit_t *split, const int *labels, size_t n_rows, int n_classes,
                           int n_sites, double alpha, uint64_t seed, pst_err_t *err)
{
    if (!(alpha > 0) || n_classes < 1)
        return pst_err_set(err, PST_EINVAL, "fedsplit: Dirichlet needs alpha > 0 and classes");
    for (size_t i = 0; i < n_rows; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            return pst_err_set(err, PST_EINVAL, "fedsplit: row %zu has class %d outside 0..%d", i,
                               labels[i], n_classes - 1);
    int rc = split_alloc(split, n_rows, n_sites, err);
    if (rc != PST_OK)
        return rc;
    size_t *order = malloc(n_rows * sizeof *order), *sizes = calloc((size_t)n_sites, sizeof *sizes);
    double *p = malloc((size_t)n_sites * sizeof *p);
    int *site = malloc(n_rows * sizeof *site);
    if (!order || !sizes || !p || !site) {
        rc = pst_err_set(err, PST_ENOMEM, "fedsplit: out of memory");
    } else {
        size_t min = 0;
        for (uint64_t attempt = 0; attempt < 100 && min == 0; attempt++)
            min = dirichlet_draw(labels, n_rows, n_classes, n_sites, alpha,
                                 pst_rng_derive(seed, attempt), order, p, site, sizes);
        if (min == 0)
            fill_empty_sites(n_rows, n_sites, site, sizes);
        for (int s = 0; s < n_sites; s++)
            split->start[s + 1] = split->start[s] + sizes[s];
        size_t *fill = order; /* reused as each site's write position */
        for (int s = 0; s < n_sites; s++)
            fill[s] = split->start[s];
        for (size_t i = 0; i < n_rows; i++)
            split->rows[fill[site[i]]++] = i;
    }
    free(order), free(sizes), free(p), free(site);
    if (rc != PST_OK)
        pst_fedsplit_fini(split);
    return rc;
}
