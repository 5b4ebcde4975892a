/* Federated aggregation: screening the sites' deltas, the combination rules, DP-FedAvg and the
 * server optimizers. */
#include "common/fed/fedagg.h"

#include "common/log.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Above this many sites the per-coordinate sorts switch from insertion sort to qsort. */
enum { INSERTION_MAX = 32 };

struct pst_fedagg {
    pst_fedagg_cfg_t cfg;
    size_t n;
    float *agg;   // (n) the round's combined delta
    float *state; // (2n) m then v; NULL for sgd
    uint64_t rounds;
    pst_rng_t rng;
    pst_fedagg_info_t last;
    /* Per-round scratch, grown to the largest k seen. */
    int cap;
    int *used;       // (cap) indices of the usable sites, ascending
    int *order;      // (cap) multi-Krum ranking
    float *column;   // (cap) one coordinate across the usable sites
    double *weight;  // (cap) per used site: mean weight or DP clipping scale
    double *score;   // (cap) Krum scores
    double *dist;    // (cap * cap) squared distances between used sites; Krum only
    double *nearest; // (cap) one row of dist, sorted; Krum only
};

static const char *const rule_names[] = {"mean", "median", "trimmed_mean", "krum", "multi_krum"};
static const char *const opt_names[] = {"sgd", "adam", "yogi", "adagrad"};
enum {
    N_RULES = sizeof rule_names / sizeof rule_names[0],
    N_OPTS = sizeof opt_names / sizeof opt_names[0]
};

void pst_fedagg_cfg_defaults(pst_fedagg_cfg_t *cfg, pst_fedopt_t server_opt)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rule = PST_FEDAGG_MEAN;
    cfg->server_opt = server_opt;
    cfg->server_lr = server_opt == PST_FEDOPT_SGD ? 1.0 : 0.01;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.99;
    cfg->tau = 1e-3;
    cfg->trim_fraction = 0.1;
    cfg->krum_f = 1;
}

int pst_fedagg_rule_parse(const char *name, pst_fedagg_rule_t *rule)
{
    if (name == NULL)
        return PST_EINVAL;
    if (strcmp(name, "fedavg") == 0 || strcmp(name, "fedprox") == 0) {
        *rule = PST_FEDAGG_MEAN;
        return PST_OK;
    }
    for (int i = 0; i < N_RULES; i++) {
        if (strcmp(name, rule_names[i]) == 0) {
            *rule = (pst_fedagg_rule_t)i;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

const char *pst_fedagg_rule_name(pst_fedagg_rule_t rule)
{
    return (int)rule >= 0 && (int)rule < N_RULES ? rule_names[rule] : "unknown";
}

int pst_fedagg_opt_parse(const char *name, pst_fedopt_t *opt)
{
    if (name == NULL)
        return PST_EINVAL;
    if (strncmp(name, "fed", 3) == 0)
        name += 3;
    for (int i = 0; i < N_OPTS; i++) {
        if (strcmp(name, opt_names[i]) == 0) {
            *opt = (pst_fedopt_t)i;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

const char *pst_fedagg_opt_name(pst_fedopt_t opt)
{
    return (int)opt >= 0 && (int)opt < N_OPTS ? opt_names[opt] : "unknown";
}

static int check_optimizer_cfg(const pst_fedagg_cfg_t *c, pst_err_t *err)
{
    if ((int)c->server_opt < 0 || (int)c->server_opt >= N_OPTS)
        return pst_err_set(err, PST_EINVAL, "fedagg: unknown server optimizer %d",
                           (int)c->server_opt);
    if (!(c->server_lr > 0 && isfinite(c->server_lr)))
        return pst_err_set(err, PST_EINVAL, "fedagg: server_lr %g must be > 0", c->server_lr);
    if (!(c->server_momentum >= 0 && c->server_momentum < 1))
        return pst_err_set(err, PST_EINVAL, "fedagg: server_momentum %g not in [0, 1)",
                           c->server_momentum);
    if (c->server_nesterov && !(c->server_opt == PST_FEDOPT_SGD && c->server_momentum > 0))
        return pst_err_set(err, PST_EINVAL,
                           "fedagg: server_nesterov needs the sgd server optimizer with "
                           "server_momentum > 0");
    if (c->server_opt == PST_FEDOPT_SGD)
        return PST_OK;
    if (c->server_momentum > 0)
        return pst_err_set(err, PST_EINVAL,
                           "fedagg: server_momentum is for the sgd server optimizer; %s has its "
                           "own first moment",
                           opt_names[c->server_opt]);
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1))
        return pst_err_set(err, PST_EINVAL, "fedagg: betas (%g, %g) not in [0, 1)", c->beta1,
                           c->beta2);
    if (!(c->tau > 0 && isfinite(c->tau)))
        return pst_err_set(err, PST_EINVAL, "fedagg: tau %g must be > 0", c->tau);
    return PST_OK;
}

static int check_rule_cfg(const pst_fedagg_cfg_t *c, pst_err_t *err)
{
    if ((int)c->rule < 0 || (int)c->rule >= N_RULES)
        return pst_err_set(err, PST_EINVAL, "fedagg: unknown rule %d", (int)c->rule);
    if (!(c->trim_fraction >= 0 && c->trim_fraction < 0.5))
        return pst_err_set(err, PST_EINVAL, "fedagg: trim_fraction %g not in [0, 0.5)",
                           c->trim_fraction);
    if (c->krum_f < 0 || c->multi_krum_m < 0)
        return pst_err_set(err, PST_EINVAL, "fedagg: krum_f %d and multi_krum_m %d must be >= 0",
                           c->krum_f, c->multi_krum_m);
    if (!(c->dp_clip >= 0 && isfinite(c->dp_clip)) || !(c->dp_noise >= 0 && isfinite(c->dp_noise)))
        return pst_err_set(err, PST_EINVAL, "fedagg: dp_clip %g and dp_noise %g must be >= 0",
                           c->dp_clip, c->dp_noise);
    if (c->dp_expected_sites < 0)
        return pst_err_set(err, PST_EINVAL, "fedagg: dp_expected_sites %d must be >= 0",
                           c->dp_expected_sites);
    if (c->dp_clip > 0 && c->rule != PST_FEDAGG_MEAN)
        return pst_err_set(err, PST_EINVAL, "fedagg: DP needs the mean rule, not %s",
                           rule_names[c->rule]);
    if (c->dp_clip == 0 && c->dp_noise > 0)
        return pst_err_set(err, PST_EINVAL, "fedagg: dp_noise %g needs dp_clip > 0", c->dp_noise);
    return PST_OK;
}

pst_fedagg_t *pst_fedagg_new(const pst_fedagg_cfg_t *cfg, size_t n, pst_err_t *err)
{
    if (cfg == NULL || n == 0) {
        pst_err_set(err, PST_EINVAL, "fedagg: need a configuration and n > 0");
        return NULL;
    }
    if (check_optimizer_cfg(cfg, err) != PST_OK || check_rule_cfg(cfg, err) != PST_OK)
        return NULL;
    if (n > SIZE_MAX / (2 * sizeof(float))) {
        pst_err_set(err, PST_ENOMEM, "fedagg: %zu parameters overflow", n);
        return NULL;
    }
    pst_fedagg_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        goto nomem;
    a->cfg = *cfg;
    a->n = n;
    a->agg = malloc(n * sizeof *a->agg);
    if (a->agg == NULL)
        goto nomem;
    if (cfg->server_opt != PST_FEDOPT_SGD || cfg->server_momentum > 0) {
        a->state = malloc(2 * n * sizeof *a->state);
        if (a->state == NULL)
            goto nomem;
        /* FedAvgM keeps its momentum in m and leaves v at 0 */
        float v0 = cfg->server_opt != PST_FEDOPT_SGD ? (float)(cfg->tau * cfg->tau) : 0.0f;
        for (size_t i = 0; i < n; i++) {
            a->state[i] = 0.0f;
            a->state[n + i] = v0;
        }
    }
    pst_rng_init(&a->rng, cfg->seed);
    a->last.first_skipped = -1;
    a->last.krum_choice = -1;
    return a;
nomem:
    pst_fedagg_destroy(&a);
    pst_err_set(err, PST_ENOMEM, "fedagg: no memory for %zu parameters", n);
    return NULL;
}

static void free_scratch(pst_fedagg_t *a)
{
    free(a->used);
    free(a->order);
    free(a->column);
    free(a->weight);
    free(a->score);
    free(a->dist);
    free(a->nearest);
}

void pst_fedagg_destroy(pst_fedagg_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_fedagg_t *a = *self_p;
    free_scratch(a);
    free(a->agg);
    free(a->state);
    free(a);
    *self_p = NULL;
}

/* Makes the per-round scratch hold k sites. */
static int grow_scratch(pst_fedagg_t *a, int k, pst_err_t *err)
{
    if (k <= a->cap)
        return PST_OK;
    size_t c = (size_t)k;
    free_scratch(a);
    a->cap = 0;
    a->used = malloc(c * sizeof *a->used);
    a->order = malloc(c * sizeof *a->order);
    a->column = malloc(c * sizeof *a->column);
    a->weight = malloc(c * sizeof *a->weight);
    a->score = malloc(c * sizeof *a->score);
    /* Only Krum needs the k x k distances. */
    int krum = a->cfg.rule == PST_FEDAGG_KRUM || a->cfg.rule == PST_FEDAGG_MULTI_KRUM;
    a->dist = krum ? malloc(c * c * sizeof *a->dist) : NULL;
    a->nearest = krum ? malloc(c * sizeof *a->nearest) : NULL;
    if (!a->used || !a->order || !a->column || !a->weight || !a->score ||
        (krum && (!a->dist || !a->nearest))) {
        free_scratch(a);
        a->used = a->order = NULL;
        a->column = NULL;
        a->weight = a->score = a->dist = a->nearest = NULL;
        return pst_err_set(err, PST_ENOMEM, "fedagg: no memory for %d sites", k);
    }
    a->cap = k;
    return PST_OK;
}

/* Index of the first non-finite value of x[0..n), or n when all are finite. */
static size_t first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return i;
    }
    return n;
}

/* PST_OK when site i is usable; otherwise PST_ENUMERIC with the reason in err. */
static int check_site(const pst_fedagg_t *a, const float *delta, const double *counts, int i,
                      pst_err_t *err)
{
    if (counts != NULL && !(counts[i] >= 0 && isfinite(counts[i])))
        return pst_err_set(err, PST_ENUMERIC, "fedagg: site %d: sample count %g is invalid", i,
                           counts[i]);
    size_t bad = first_nonfinite(delta, a->n);
    if (bad < a->n)
        return pst_err_set(err, PST_ENUMERIC, "fedagg: site %d: delta[%zu] is %g", i, bad,
                           (double)delta[bad]);
    return PST_OK;
}

/* Fills a->used with the sites that may enter the round; records skips in a->last. */
static int screen_sites(pst_fedagg_t *a, const float *const *deltas, const double *counts, int k,
                        int *n_used, pst_err_t *err)
{
    int used = 0;
    for (int i = 0; i < k; i++) {
        if (deltas[i] == NULL)
            return pst_err_set(err, PST_EINVAL, "fedagg: site %d: no delta", i);
        pst_err_t why = {0};
        int rc = check_site(a, deltas[i], counts, i, &why);
        if (rc == PST_OK) {
            a->used[used++] = i;
            continue;
        }
        if (!a->cfg.skip_nonfinite)
            return pst_err_set(err, rc, "%s", why.msg);
        pst_warn("%s: site skipped", why.msg);
        if (a->last.n_skipped++ == 0)
            a->last.first_skipped = i;
    }
    if (used == 0)
        return pst_err_set(err, PST_EINVAL, "fedagg: no usable site among %d", k);
    *n_used = used;
    return PST_OK;
}

/* agg = sum over used sites of weight[u] * delta, accumulated in double per coordinate. */
static void weighted_sum(pst_fedagg_t *a, const float *const *deltas, int n_used)
{
    for (size_t j = 0; j < a->n; j++) {
        double s = 0.0;
        for (int u = 0; u < n_used; u++)
            s += a->weight[u] * (double)deltas[a->used[u]][j];
        a->agg[j] = (float)s;
    }
}

static int combine_mean(pst_fedagg_t *a, const float *const *deltas, const double *counts,
                        int n_used, pst_err_t *err)
{
    double total = 0.0;
    for (int u = 0; u < n_used; u++)
        total += counts != NULL ? counts[a->used[u]] : 1.0;
    if (!(total > 0) || !isfinite(total))
        return pst_err_set(err, PST_EINVAL, "fedagg: sample counts sum to %g", total);
    for (int u = 0; u < n_used; u++)
        a->weight[u] = (counts != NULL ? counts[a->used[u]] : 1.0) / total;
    weighted_sum(a, deltas, n_used);
    return PST_OK;
}

static double l2_norm(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s);
}

/* DP-FedAvg: clip each delta to norm C, sum, divide by m, add N(0, (z C / m)^2). */
static void combine_dp(pst_fedagg_t *a, const float *const *deltas, int k, int n_used)
{
    double clip = a->cfg.dp_clip;
    double m = a->cfg.dp_expected_sites > 0 ? a->cfg.dp_expected_sites : k;
    for (int u = 0; u < n_used; u++) {
        double norm = l2_norm(deltas[a->used[u]], a->n);
        double scale = norm > clip ? clip / norm : 1.0;
        if (norm > clip)
            a->last.n_clipped++;
        a->weight[u] = scale / m;
    }
    weighted_sum(a, deltas, n_used);
    double sd = a->cfg.dp_noise * clip / m;
    if (sd > 0) {
        for (size_t j = 0; j < a->n; j++)
            a->agg[j] = (float)(a->agg[j] + sd * pst_rng_normal(&a->rng));
    }
}

static int cmp_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void sort_floats(float *v, int k)
{
    if (k > INSERTION_MAX) {
        qsort(v, (size_t)k, sizeof *v, cmp_float);
        return;
    }
    for (int i = 1; i < k; i++) {
        float x = v[i];
        int j = i - 1;
        for (; j >= 0 && v[j] > x; j--)
            v[j + 1] = v[j];
        v[j + 1] = x;
    }
}

/* Copies coordinate j of every used site into a->column, sorted ascending. */
static void sorted_column(pst_fedagg_t *a, const float *const *deltas, int n_used, size_t j)
{
    for (int u = 0; u < n_used; u++)
        a->column[u] = deltas[a->used[u]][j];
    sort_floats(a->column, n_used);
}

static void combine_median(pst_fedagg_t *a, const float *const *deltas, int n_used)
{
    for (size_t j = 0; j < a->n; j++) {
        sorted_column(a, deltas, n_used, j);
        const float *c = a->column;
        int h = n_used / 2;
        a->agg[j] = n_used % 2 ? c[h] : (float)(((double)c[h - 1] + c[h]) / 2.0);
    }
}

static void combine_trimmed(pst_fedagg_t *a, const float *const *deltas, int n_used)
{
    int b = (int)floor(a->cfg.trim_fraction * n_used); /* 2b < n_used since trim < 0.5 */
    for (size_t j = 0; j < a->n; j++) {
        sorted_column(a, deltas, n_used, j);
        double s = 0.0;
        for (int u = b; u < n_used - b; u++)
            s += a->column[u];
        a->agg[j] = (float)(s / (n_used - 2 * b));
    }
}

static double squared_distance(const float *x, const float *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        s += d * d;
    }
    return s;
}

/* score[u] = sum of the squared distances from used site u to its n_used - f - 2 nearest
 * other used sites (Blanchard et al. 2017). */
static void krum_scores(pst_fedagg_t *a, const float *const *deltas, int n_used)
{
    int k = n_used;
    for (int u = 0; u < k; u++) {
        a->dist[u * k + u] = 0.0;
        for (int w = u + 1; w < k; w++) {
            double d = squared_distance(deltas[a->used[u]], deltas[a->used[w]], a->n);
            a->dist[u * k + w] = a->dist[w * k + u] = d;
        }
    }
    int neighbours = k - a->cfg.krum_f - 2;
    for (int u = 0; u < k; u++) {
        int c = 0;
        for (int w = 0; w < k; w++) {
            if (w != u)
                a->nearest[c++] = a->dist[u * k + w];
        }
        qsort(a->nearest, (size_t)c, sizeof *a->nearest, cmp_double);
        double s = 0.0;
        for (int i = 0; i < neighbours; i++)
            s += a->nearest[i];
        a->score[u] = s;
    }
}

/* a->order = used positions by ascending score, ties by site index (stable insertion). */
static void rank_by_score(pst_fedagg_t *a, int n_used)
{
    for (int u = 0; u < n_used; u++) {
        int j = u - 1;
        for (; j >= 0 && a->score[a->order[j]] > a->score[u]; j--)
            a->order[j + 1] = a->order[j];
        a->order[j + 1] = u;
    }
}

static int combine_krum(pst_fedagg_t *a, const float *const *deltas, int n_used, pst_err_t *err)
{
    int f = a->cfg.krum_f;
    if (n_used <= 2 * f + 2)
        return pst_err_set(err, PST_EINVAL,
                           "fedagg: Krum with f = %d needs more than %d sites, got %d usable", f,
                           2 * f + 2, n_used);
    int m = 1;
    if (a->cfg.rule == PST_FEDAGG_MULTI_KRUM)
        m = a->cfg.multi_krum_m > 0 ? a->cfg.multi_krum_m : n_used - f;
    if (m > n_used)
        return pst_err_set(err, PST_EINVAL, "fedagg: multi_krum_m %d > %d usable sites", m, n_used);
    krum_scores(a, deltas, n_used);
    rank_by_score(a, n_used);
    if (a->cfg.rule == PST_FEDAGG_KRUM)
        a->last.krum_choice = a->used[a->order[0]];
    /* weighted_sum over the m best: reorder used[] so they come first. */
    for (int i = 0; i < m; i++)
        a->weight[i] = 1.0 / m;
    for (int i = 0; i < m; i++)
        a->order[i] = a->used[a->order[i]];
    memcpy(a->used, a->order, (size_t)m * sizeof *a->used);
    weighted_sum(a, deltas, m);
    return PST_OK;
}

static int combine(pst_fedagg_t *a, const float *const *deltas, const double *counts, int k,
                   int n_used, pst_err_t *err)
{
    switch (a->cfg.rule) {
    case PST_FEDAGG_MEAN:
        if (a->cfg.dp_clip > 0) {
            combine_dp(a, deltas, k, n_used);
            return PST_OK;
        }
        return combine_mean(a, deltas, counts, n_used, err);
    case PST_FEDAGG_MEDIAN:
        combine_median(a, deltas, n_used);
        return PST_OK;
    case PST_FEDAGG_TRIMMED_MEAN:
        combine_trimmed(a, deltas, n_used);
        return PST_OK;
    case PST_FEDAGG_KRUM:
    case PST_FEDAGG_MULTI_KRUM:
        return combine_krum(a, deltas, n_used, err);
    }
    return pst_err_set(err, PST_EINVAL, "fedagg: unknown rule %d", (int)a->cfg.rule);
}

/* v update of the adaptive optimizers for one coordinate with combined delta d. */
static float second_moment(pst_fedopt_t opt, float v, float d, float beta2)
{
    float d2 = d * d;
    switch (opt) {
    case PST_FEDOPT_ADAGRAD:
        return v + d2;
    case PST_FEDOPT_ADAM:
        return beta2 * v + (1.0f - beta2) * d2;
    case PST_FEDOPT_YOGI: {
        float s = (float)((v > d2) - (v < d2));
        return v - (1.0f - beta2) * d2 * s;
    }
    case PST_FEDOPT_SGD:
        break;
    }
    return v;
}

static float max_abs(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* The server optimizer's step for one coordinate: the new m, v and weight (see fedagg.h). */
static float step_one(const pst_fedagg_cfg_t *c, float *m, float *v, float d, float w)
{
    if (c->server_opt == PST_FEDOPT_SGD && c->server_momentum > 0) {
        float b = (float)c->server_momentum;
        *m = b * *m + d;
        return w + (float)c->server_lr * (c->server_nesterov ? b * *m + d : *m);
    }
    if (c->server_opt == PST_FEDOPT_SGD)
        return w + (float)c->server_lr * d;
    float beta1 = (float)c->beta1;
    *m = beta1 * *m + (1.0f - beta1) * d;
    *v = second_moment(c->server_opt, *v, d, (float)c->beta2);
    return w + (float)c->server_lr * *m / (sqrtf(*v) + (float)c->tau);
}

/* Whether the step keeps every weight and optimizer state finite (nothing is written). */
static bool step_stays_finite(const pst_fedagg_t *a, const float *global)
{
    bool adaptive = a->state != NULL;
    for (size_t j = 0; j < a->n; j++) {
        float m = adaptive ? a->state[j] : 0, v = adaptive ? a->state[a->n + j] : 0;
        float w = step_one(&a->cfg, &m, &v, a->agg[j], global[j]);
        if (!isfinite(w) || !isfinite(m) || !isfinite(v))
            return false;
    }
    return true;
}

static void apply_optimizer(pst_fedagg_t *a, float *global)
{
    float scratch[2] = {0, 0};
    bool adaptive = a->state != NULL;
    for (size_t j = 0; j < a->n; j++) {
        float *m = adaptive ? &a->state[j] : &scratch[0];
        float *v = adaptive ? &a->state[a->n + j] : &scratch[1];
        global[j] = step_one(&a->cfg, m, v, a->agg[j], global[j]);
    }
}

static void reset_info(pst_fedagg_info_t *info, int k)
{
    memset(info, 0, sizeof *info);
    info->n_sites = k;
    info->first_skipped = -1;
    info->krum_choice = -1;
}

int pst_fedagg_round(pst_fedagg_t *a, float *global, const float *const *deltas,
                     const double *counts, int k, pst_err_t *err)
{
    if (a == NULL || global == NULL || (deltas == NULL && k > 0))
        return pst_err_set(err, PST_EINVAL, "fedagg: round needs an aggregator, weights, deltas");
    if (k < 1)
        return pst_err_set(err, PST_EINVAL, "fedagg: a round needs at least one site, got %d", k);
    int rc = grow_scratch(a, k, err);
    if (rc != PST_OK)
        return rc;
    pst_fedagg_info_t saved = a->last;
    pst_rng_t rng = a->rng;
    reset_info(&a->last, k);
    int n_used = 0;
    rc = screen_sites(a, deltas, counts, k, &n_used, err);
    if (rc == PST_OK)
        rc = combine(a, deltas, counts, k, n_used, err);
    size_t bad = rc == PST_OK ? first_nonfinite(a->agg, a->n) : 0;
    if (rc == PST_OK && bad < a->n)
        rc = pst_err_set(err, PST_ENUMERIC, "fedagg: combined delta[%zu] overflows", bad);
    if (rc == PST_OK && !step_stays_finite(a, global))
        rc = pst_err_set(err, PST_ENUMERIC,
                         "fedagg: the step would make weights or server optimizer state infinite "
                         "or NaN (combined update up to %g)",
                         (double)max_abs(a->agg, a->n));
    if (rc != PST_OK) {
        a->last = saved;
        a->rng = rng;
        return rc;
    }
    a->last.n_used = n_used;
    a->last.agg_norm = l2_norm(a->agg, a->n);
    apply_optimizer(a, global);
    a->rounds++;
    return PST_OK;
}

const pst_fedagg_info_t *pst_fedagg_last(const pst_fedagg_t *a)
{
    return &a->last;
}

float *pst_fedagg_state(pst_fedagg_t *a, size_t *n_state)
{
    if (n_state != NULL)
        *n_state = a->state != NULL ? 2 * a->n : 0;
    return a->state;
}

uint64_t pst_fedagg_rounds(const pst_fedagg_t *a)
{
    return a->rounds;
}

void pst_fedagg_set_rounds(pst_fedagg_t *a, uint64_t rounds)
{
    a->rounds = rounds;
}

void pst_fedagg_set_dp_sites(pst_fedagg_t *a, int m)
{
    a->cfg.dp_expected_sites = m > 0 ? m : 0;
}

pst_rng_t *pst_fedagg_rng(pst_fedagg_t *a)
{
    return &a->rng;
}

void pst_fedprox_grad_add(float *grad, const float *w, const float *w_global, size_t n, float mu)
{
    for (size_t i = 0; i < n; i++)
        grad[i] += mu * (w[i] - w_global[i]);
}
