/* Kernel SHAP: each row's Shapley values over the input columns, estimated by the weighted least
 * squares fit of coalition values (Lundberg and Lee, 2017) with the sum pinned to
 * f(x) - E[f(background)]. With every coalition evaluated the fit is the exact Shapley value of
 * the game v(S) = mean over background rows b of f(x on S, b elsewhere). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/explain/attributions.h"
#include "common/rng.h"

/* Rows evaluated in one call of the model: coalitions x background rows. */
#define SHAP_CHUNK_ROWS 16384

typedef struct coalitions {
    int k, m;          /* coalitions, players */
    unsigned char *in; // (k, m) 1 = the player takes the row's value
    double *weight;    // (k)
    bool exhaustive;
} coalitions_t;

static double binomial(int n, int k)
{
    double c = 1;
    for (int i = 1; i <= k; i++)
        c = c * (n - k + i) / i;
    return c;
}

/* Every proper non-empty subset with its Shapley kernel weight. */
static void enumerate(coalitions_t *c)
{
    for (int s = 1; s <= c->k; s++) {
        unsigned char *row = c->in + (size_t)(s - 1) * (size_t)c->m;
        int size = 0;
        for (int j = 0; j < c->m; j++)
            size += (row[j] = (unsigned char)((s >> j) & 1));
        c->weight[s - 1] = (c->m - 1) / (binomial(c->m, size) * size * (c->m - size));
    }
}

/* Subsets drawn in complementary pairs, their size s with probability proportional to the
 * kernel's total weight of that size, (m - 1) / (s (m - s)); then every draw weighs the same. */
static void sample(coalitions_t *c, pst_rng_t *rng)
{
    int m = c->m;
    double total = 0;
    for (int s = 1; s < m; s++)
        total += 1.0 / ((double)s * (m - s));
    int *pick = malloc((size_t)m * sizeof(int));
    for (int i = 0; i + 1 < c->k; i += 2) {
        double u = pst_rng_uniform(rng) * total;
        int s = 1;
        while (s < m - 1 && (u -= 1.0 / ((double)s * (m - s))) > 0)
            s++;
        for (int j = 0; j < m; j++)
            pick[j] = j;
        for (int j = 0; j < s; j++) { /* partial Fisher-Yates: the first s are the subset */
            int r = j + (int)pst_rng_below(rng, (uint64_t)(m - j));
            int t = pick[j];
            pick[j] = pick[r];
            pick[r] = t;
        }
        unsigned char *a = c->in + (size_t)i * (size_t)m, *b = a + m;
        memset(a, 0, (size_t)m);
        for (int j = 0; j < s; j++)
            a[pick[j]] = 1;
        for (int j = 0; j < m; j++)
            b[j] = (unsigned char)!a[j];
        c->weight[i] = c->weight[i + 1] = 1;
    }
    free(pick);
}

static int coalitions_make(coalitions_t *c, int m, int budget, uint64_t seed, pst_err_t *err)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    c->exhaustive = m < 30 && ((1L << m) - 2) <= budget;
    c->k = c->exhaustive ? (int)((1L << m) - 2) : budget - budget % 2;
    c->in = calloc((size_t)(c->k ? c->k : 1) * (size_t)m, 1);
    c->weight = calloc((size_t)(c->k ? c->k : 1), sizeof(double));
    if (!c->in || !c->weight)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(seed, 2));
    if (c->exhaustive)
        enumerate(c);
    else
        sample(c, &rng);
    return PST_OK;
}

static void coalitions_fini(coalitions_t *c)
{
    free(c->in);
    free(c->weight);
}

/* Solves a x = b (n x n, row-major, overwritten) by Gaussian elimination with partial pivoting;
 * false when a is singular. */
static bool solve(double *a, double *b, int n)
{
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[p * n + c]))
                p = r;
        if (fabs(a[p * n + c]) < 1e-12)
            return false;
        for (int j = 0; j < n && p != c; j++) {
            double t = a[c * n + j];
            a[c * n + j] = a[p * n + j];
            a[p * n + j] = t;
        }
        double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (int r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            for (int j = c; j < n; j++)
                a[r * n + j] -= f * a[c * n + j];
            b[r] -= f * b[c];
        }
    }
    for (int c = n - 1; c >= 0; c--) {
        for (int j = c + 1; j < n; j++)
            b[c] -= a[c * n + j] * b[j];
        b[c] /= a[c * n + c];
    }
    return true;
}

/* The weighted fit: v[k] ~ base + sum over j in coalition k of phi_j, with sum phi = delta.
 * Eliminating the last player: v - base - z_last delta = sum_{j<m-1} (z_j - z_last) phi_j. */
static bool fit(const coalitions_t *c, const double *v, double base, double delta, double *phi,
                double *a)
{
    int m = c->m, n = m - 1;
    memset(a, 0, (size_t)n * (size_t)n * sizeof(double));
    memset(phi, 0, (size_t)m * sizeof(double));
    for (int k = 0; k < c->k; k++) {
        const unsigned char *z = c->in + (size_t)k * (size_t)m;
        double y = v[k] - base - z[n] * delta, w = c->weight[k];
        for (int i = 0; i < n; i++) {
            double ui = (double)z[i] - z[n];
            if (ui == 0)
                continue;
            phi[i] += w * ui * y;
            for (int j = 0; j < n; j++)
                a[i * n + j] += w * ui * ((double)z[j] - z[n]);
        }
    }
    if (!solve(a, phi, n))
        return false;
    double rest = delta;
    for (int i = 0; i < n; i++)
        rest -= phi[i];
    phi[n] = rest;
    return true;
}

typedef struct shap_run {
    const pst_explainer_t *ex;
    const coalitions_t *c;
    const float *bg; // (b, d)
    int b;
    float *rows; // (chunk coalitions * b, d)
    double *out; // (chunk coalitions * b)
    int *cls;    // (chunk coalitions * b)
    double *v;   // (k) coalition values
} shap_run_t;

/* v[k] for the coalitions of row x, class k_cls: background rows with the coalition's columns
 * taken from x, averaged. */
static int coalition_values(shap_run_t *r, const float *x, int k_cls, pst_err_t *err)
{
    const pst_explainer_t *ex = r->ex;
    size_t d = ex->data->n_features;
    int per = SHAP_CHUNK_ROWS / r->b > 0 ? SHAP_CHUNK_ROWS / r->b : 1;
    for (int k0 = 0; k0 < r->c->k; k0 += per) {
        int nk = r->c->k - k0 < per ? r->c->k - k0 : per;
        size_t n = (size_t)nk * (size_t)r->b;
        for (int k = 0; k < nk; k++) {
            const unsigned char *in = r->c->in + (size_t)(k0 + k) * (size_t)r->c->m;
            float *dst = r->rows + (size_t)k * (size_t)r->b * d;
            memcpy(dst, r->bg, (size_t)r->b * d * sizeof(float));
            for (int g = 0; g < ex->n_groups; g++)
                for (int i = 0; in[g] && i < r->b; i++)
                    memcpy(dst + (size_t)i * d + ex->group_offset[g], x + ex->group_offset[g],
                           ex->group_width[g] * sizeof(float));
        }
        for (size_t i = 0; i < n; i++)
            r->cls[i] = k_cls;
        int rc = pst_explainer_output(ex, r->rows, n, r->cls, r->out, err);
        if (rc != PST_OK)
            return rc;
        for (int k = 0; k < nk; k++) {
            double sum = 0;
            for (int i = 0; i < r->b; i++)
                sum += r->out[(size_t)k * (size_t)r->b + (size_t)i];
            r->v[k0 + k] = sum / r->b;
        }
    }
    return PST_OK;
}

static int explain_row(shap_run_t *r, size_t row, pst_attributions_t *at, double *a, pst_err_t *err)
{
    const pst_explainer_t *ex = r->ex;
    const float *x = ex->data->x + row * ex->data->n_features;
    int k_cls = at->cls[row];
    for (int i = 0; i < r->b; i++)
        r->cls[i] = k_cls;
    int rc = pst_explainer_output(ex, r->bg, (size_t)r->b, r->cls, r->out, err);
    if (rc == PST_OK)
        rc = pst_explainer_output(ex, x, 1, &k_cls, &at->fx[row], err);
    if (rc != PST_OK)
        return rc;
    double base = 0;
    for (int i = 0; i < r->b; i++)
        base += r->out[i] / r->b;
    at->fbase[row] = base;
    double *phi = at->phi + row * (size_t)at->n_groups;
    if (r->c->m == 1) {
        phi[0] = at->fx[row] - base;
        return PST_OK;
    }
    if ((rc = coalition_values(r, x, k_cls, err)) != PST_OK)
        return rc;
    if (!fit(r->c, r->v, base, at->fx[row] - base, phi, a))
        return pst_err_set(err, PST_EINVAL,
                           "kernel_shap: the %d coalitions do not determine %d columns' values; "
                           "raise --coalitions",
                           r->c->k, r->c->m);
    return PST_OK;
}

int pst_attr_kernel_shap(const pst_explainer_t *ex, const pst_attr_opts_t *o,
                         pst_attributions_t *at, pst_err_t *err)
{
    coalitions_t c;
    int rc = coalitions_make(&c, ex->n_groups, o->coalitions, o->seed, err);
    at->exhaustive = c.exhaustive;
    int b = o->background;
    int per = SHAP_CHUNK_ROWS / b > 0 ? SHAP_CHUNK_ROWS / b : 1;
    size_t chunk = (size_t)(per < c.k ? per : (c.k ? c.k : 1)) * (size_t)b;
    if (chunk < (size_t)b)
        chunk = (size_t)b;
    shap_run_t r = {.ex = ex, .c = &c, .b = b};
    size_t d = ex->data->n_features, m = (size_t)ex->n_groups;
    r.rows = malloc(chunk * d * sizeof(float));
    r.out = malloc(chunk * sizeof(double));
    r.cls = malloc(chunk * sizeof(int));
    r.v = malloc((size_t)(c.k ? c.k : 1) * sizeof(double));
    double *a = malloc(m * m * sizeof(double));
    if (rc == PST_OK && (!r.rows || !r.out || !r.cls || !r.v || !a))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    float *bg = rc == PST_OK ? pst_attr_background(ex, b, o->seed, err) : NULL;
    if (rc == PST_OK && !bg)
        rc = pst_err_code(err, PST_ENOMEM);
    r.bg = bg;
    for (size_t i = 0; rc == PST_OK && i < at->n_rows; i++)
        rc = explain_row(&r, i, at, a, err);
    free(bg);
    free(a);
    free(r.rows);
    free(r.out);
    free(r.cls);
    free(r.v);
    coalitions_fini(&c);
    return rc;
}
