/* TPE: Parzen estimators of the good and the other trials, candidates drawn from the good one and
 * ranked by the ratio of the two densities. */
#include "app/sweep/sweep_tpe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/numparse.h"
#include "common/rng.h"

#define TPE_MAX_BELOW 25    /* Optuna's cap on the good group */
#define TPE_MIN_OBS 2       /* fewer results than this: sample at random */
#define TPE_MAGIC_SIGMA 0.2 /* multivariate bandwidth scale, as a fraction of the range */
#define TPE_MAX_TRIES 100   /* rejection draws of a truncated Gaussian before clamping */

/* One parameter's value in a trial, in the space the kernels live in: log for log_uniform, the
 * choice's index for choice. */
typedef struct tpe_value {
    bool active;
    double x;
} tpe_value_t;

/* A mixture of n_comp components (the observations of one group, then the prior), over dims
 * parameters. Component c of parameter d: a truncated Gaussian (mu, sigma) or, for a choice, the
 * probabilities prob[(c * dims + d) * max_choices + i]. */
typedef struct tpe_mixture {
    int n_comp, dims, max_choices;
    const int *params;  /* (dims) parameter indices */
    double *mu, *sigma; /* (n_comp, dims) */
    double *prob;       /* (n_comp, dims, max_choices) */
} tpe_mixture_t;

typedef struct tpe_ctx {
    const pst_sweep_space_t *sp;
    int n_obs;
    tpe_value_t *values; /* (n_obs, n_params) of the observations, best first */
    int n_below;
} tpe_ctx_t;

/* ---- the kernels' space ---- */

static void bounds(const pst_sweep_param_t *param, double *lo, double *hi)
{
    switch (param->dist) {
    case PST_SWEEP_LOG_UNIFORM:
        *lo = log(param->lo), *hi = log(param->hi);
        break;
    case PST_SWEEP_INT:
        *lo = param->lo - 0.5, *hi = param->hi + 0.5;
        break;
    case PST_SWEEP_CHOICE:
        *lo = 0, *hi = param->n_values;
        break;
    default:
        *lo = param->lo, *hi = param->hi;
    }
}

static tpe_value_t parse_value(const pst_sweep_param_t *param, const char *text)
{
    tpe_value_t v = {.active = text != NULL};
    if (!text)
        return v;
    if (param->dist == PST_SWEEP_CHOICE) {
        v.active = false;
        for (int i = 0; i < param->n_values && !v.active; i++)
            if (strcmp(param->values[i], text) == 0)
                v.active = true, v.x = i;
        return v;
    }
    if (pst_parse_double(text, 0, &v.x) != PST_OK)
        v.active = false;
    else if (param->dist == PST_SWEEP_LOG_UNIFORM)
        v.x = v.x > 0 ? log(v.x) : log(param->lo);
    return v;
}

/* The value text of internal value x. */
static const char *format_value(const pst_sweep_param_t *param, double x,
                                char text[PST_SWEEP_VALUE_MAX])
{
    if (param->dist == PST_SWEEP_CHOICE)
        return param->values[(int)x];
    double v = param->dist == PST_SWEEP_LOG_UNIFORM ? exp(x) : x;
    if (param->dist == PST_SWEEP_INT)
        v = floor(v + 0.5);
    pst_sweep_param_format(param, fmin(fmax(v, param->lo), param->hi), text);
    return text;
}

/* ---- the mixture ---- */

static int mixture_init(tpe_mixture_t *m, const tpe_ctx_t *c, const int *params, int dims,
                        int n_comp)
{
    memset(m, 0, sizeof *m);
    m->n_comp = n_comp, m->dims = dims, m->params = params, m->max_choices = 1;
    for (int d = 0; d < dims; d++) {
        const pst_sweep_param_t *param = &c->sp->params[params[d]];
        if (param->dist == PST_SWEEP_CHOICE && param->n_values > m->max_choices)
            m->max_choices = param->n_values;
    }
    size_t cells = (size_t)n_comp * (size_t)dims;
    m->mu = calloc(cells + 1, sizeof *m->mu);
    m->sigma = calloc(cells + 1, sizeof *m->sigma);
    m->prob = calloc(cells * (size_t)m->max_choices + 1, sizeof *m->prob);
    return m->mu && m->sigma && m->prob ? PST_OK : PST_ENOMEM;
}

static void mixture_fini(tpe_mixture_t *m)
{
    free(m->mu);
    free(m->sigma);
    free(m->prob);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Univariate bandwidth (Bergstra et al., as Optuna computes it): the larger gap to a neighbour
 * among the sorted centres, the prior's included (the range's ends are not neighbours), clipped
 * to [range / min(100, n + 1), range]. */
static double neighbour_sigma(const double *sorted, int n, double x, double lo, double hi)
{
    int i = 0;
    while (i < n && sorted[i] < x)
        i++;
    double left = i > 0 ? x - sorted[i - 1] : 0;
    double right = i + 1 < n ? sorted[i + 1] - x : 0;
    double range = hi - lo, floor_sigma = range / fmin(100.0, n + 1.0);
    return n < 2 ? range : fmin(fmax(fmax(left, right), floor_sigma), range);
}

/* Fills dimension d from the observations rows[0..n) (component i = rows[i]) and the prior
 * (component n). An observation that leaves the parameter unset contributes the prior kernel. */
static int fit_dimension(tpe_mixture_t *m, const tpe_ctx_t *c, int d, const int *rows, int n,
                         bool multivariate)
{
    int p = m->params[d];
    const pst_sweep_param_t *param = &c->sp->params[p];
    double lo, hi;
    bounds(param, &lo, &hi);
    double *sorted = calloc((size_t)n + 2, sizeof *sorted);
    if (!sorted)
        return PST_ENOMEM;
    int n_active = 0;
    for (int i = 0; i < n; i++) {
        const tpe_value_t *v = &c->values[(size_t)rows[i] * c->sp->n_params + p];
        if (v->active)
            sorted[n_active++] = v->x;
    }
    sorted[n_active] = 0.5 * (lo + hi); /* the prior's centre */
    qsort(sorted, (size_t)n_active + 1, sizeof *sorted, compare_double);
    double scott = TPE_MAGIC_SIGMA * pow(fmax(n_active, 1), -1.0 / (m->dims + 4)) * (hi - lo);
    int k = param->n_values;
    for (int i = 0; i <= n; i++) {
        size_t cell = (size_t)i * m->dims + d;
        double *prob = &m->prob[cell * m->max_choices];
        const tpe_value_t *v = i < n ? &c->values[(size_t)rows[i] * c->sp->n_params + p] : NULL;
        bool prior = !v || !v->active;
        m->mu[cell] = prior ? 0.5 * (lo + hi) : v->x;
        m->sigma[cell] = prior          ? hi - lo
                         : multivariate ? scott
                                        : neighbour_sigma(sorted, n_active + 1, v->x, lo, hi);
        if (param->dist != PST_SWEEP_CHOICE)
            continue;
        /* A choice kernel: the prior weight spread evenly, plus one on the observed value. */
        for (int j = 0; j < k; j++)
            prob[j] = (1.0 / k + (!prior && j == (int)v->x)) / (prior ? 1.0 : 2.0);
    }
    free(sorted);
    return PST_OK;
}

static int mixture_fit(tpe_mixture_t *m, const tpe_ctx_t *c, const int *params, int dims,
                       const int *rows, int n, bool multivariate)
{
    int rc = mixture_init(m, c, params, dims, n + 1);
    for (int d = 0; rc == PST_OK && d < dims; d++)
        rc = fit_dimension(m, c, d, rows, n, multivariate);
    return rc;
}

static double normal_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

/* Log density of component cell at x (a truncated Gaussian, or a choice's probability). */
static double kernel_log_pdf(const tpe_mixture_t *m, const pst_sweep_param_t *param, size_t cell,
                             double x)
{
    if (param->dist == PST_SWEEP_CHOICE)
        return log(m->prob[cell * m->max_choices + (size_t)x]);
    double lo, hi, mu = m->mu[cell], s = m->sigma[cell];
    bounds(param, &lo, &hi);
    double mass = fmax(normal_cdf((hi - mu) / s) - normal_cdf((lo - mu) / s), 1e-300);
    double z = (x - mu) / s;
    return -0.5 * z * z - log(s) - 0.5 * log(2 * M_PI) - log(mass);
}

/* log sum_c (1 / n_comp) prod_{d active} kernel(c, d) at point x (x[d], active[d]). */
static double mixture_log_pdf(const tpe_mixture_t *m, const tpe_ctx_t *c, const double *x,
                              const bool *active, double *scratch)
{
    double top = -INFINITY;
    for (int i = 0; i < m->n_comp; i++) {
        double sum = 0;
        for (int d = 0; d < m->dims; d++)
            if (active[d])
                sum +=
                    kernel_log_pdf(m, &c->sp->params[m->params[d]], (size_t)i * m->dims + d, x[d]);
        scratch[i] = sum;
        top = fmax(top, sum);
    }
    if (!isfinite(top))
        return top;
    double total = 0;
    for (int i = 0; i < m->n_comp; i++)
        total += exp(scratch[i] - top);
    return top + log(total / m->n_comp);
}

/* A draw from component i, dimension d. */
static double kernel_draw(const tpe_mixture_t *m, const pst_sweep_param_t *param, int i, int d,
                          pst_rng_t *rng)
{
    size_t cell = (size_t)i * m->dims + d;
    if (param->dist == PST_SWEEP_CHOICE) {
        const double *prob = &m->prob[cell * m->max_choices];
        double u = pst_rng_uniform(rng), acc = 0;
        for (int j = 0; j < param->n_values; j++)
            if (u < (acc += prob[j]))
                return j;
        return param->n_values - 1;
    }
    double lo, hi, x = m->mu[cell];
    bounds(param, &lo, &hi);
    for (int t = 0; t < TPE_MAX_TRIES; t++) {
        x = m->mu[cell] + m->sigma[cell] * pst_rng_normal(rng);
        if (x >= lo && x <= hi)
            break;
    }
    x = fmin(fmax(x, lo), hi);
    return param->dist == PST_SWEEP_INT ? fmin(fmax(floor(x + 0.5), param->lo), param->hi) : x;
}

/* ---- proposing ---- */

typedef struct loss_row {
    double loss;
    int row;
} loss_row_t;

static int compare_loss(const void *a, const void *b)
{
    const loss_row_t *x = a, *y = b;
    if (x->loss != y->loss)
        return x->loss < y->loss ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Parses the observations into c->values, best first, and sizes the good group. */
static int ctx_init(tpe_ctx_t *c, const pst_sweep_space_t *sp, const pst_sweep_obs_t *obs,
                    int n_obs)
{
    memset(c, 0, sizeof *c);
    c->sp = sp;
    c->n_obs = n_obs;
    loss_row_t *order = calloc((size_t)n_obs + 1, sizeof *order);
    c->values = calloc((size_t)n_obs * sp->n_params + 1, sizeof *c->values);
    if (!order || !c->values) {
        free(order);
        return PST_ENOMEM;
    }
    for (int i = 0; i < n_obs; i++)
        order[i] = (loss_row_t){obs[i].loss, i};
    qsort(order, (size_t)n_obs, sizeof *order, compare_loss);
    for (int i = 0; i < n_obs; i++)
        for (int p = 0; p < sp->n_params; p++)
            c->values[(size_t)i * sp->n_params + p] = parse_value(
                &sp->params[p], pst_sweep_trial_value(obs[order[i].row].trial, sp->params[p].key));
    free(order);
    int below = (int)ceil(sp->tpe_gamma * n_obs);
    c->n_below = below < 1 ? 1 : below > TPE_MAX_BELOW ? TPE_MAX_BELOW : below;
    return PST_OK;
}

/* Rows [first, first + n) whose parameter p is set (p < 0: all of them). */
static int select_rows(const tpe_ctx_t *c, int first, int n, int p, int *rows)
{
    int k = 0;
    for (int i = first; i < first + n; i++)
        if (p < 0 || c->values[(size_t)i * c->sp->n_params + p].active)
            rows[k++] = i;
    return k;
}

/* The best of the candidates drawn from below: x[d] for each of dims parameters, with their
 * activity decided in condition order as they are drawn. */
typedef struct tpe_search {
    const tpe_ctx_t *c;
    tpe_mixture_t below, above;
    double *x, *best_x, *scratch;
    bool *active, *best_active;
    const char **texts; /* (n_params) value texts of the trial so far */
    char (*bufs)[PST_SWEEP_VALUE_MAX];
} tpe_search_t;

/* Draws one candidate from component i of below into s->x; activity from the conditions. */
static void draw_candidate(tpe_search_t *s, int i, pst_rng_t *rng)
{
    const pst_sweep_space_t *sp = s->c->sp;
    tpe_mixture_t *m = &s->below;
    const char **texts = s->texts;
    for (int d = 0; d < m->dims; d++) {
        int p = m->params[d];
        s->x[d] = kernel_draw(m, &sp->params[p], i, d, rng);
        /* params are in condition order, so the conditions of p are already decided */
        s->active[d] = pst_sweep_space_active(sp, p, texts);
        texts[p] = s->active[d] ? format_value(&sp->params[p], s->x[d], s->bufs[p]) : NULL;
    }
}

static void search(tpe_search_t *s, pst_rng_t *rng)
{
    double best = -INFINITY;
    const tpe_mixture_t *m = &s->below;
    for (int t = 0; t < s->c->sp->tpe_candidates; t++) {
        int comp = (int)pst_rng_below(rng, (uint64_t)m->n_comp);
        draw_candidate(s, comp, rng);
        double score = mixture_log_pdf(&s->below, s->c, s->x, s->active, s->scratch) -
                       mixture_log_pdf(&s->above, s->c, s->x, s->active, s->scratch);
        if (t == 0 || score > best) {
            best = score;
            memcpy(s->best_x, s->x, (size_t)m->dims * sizeof *s->x);
            memcpy(s->best_active, s->active, (size_t)m->dims * sizeof *s->active);
        }
    }
}

/* Fits below and above on the parameters params[0..dims) and keeps the best candidate's values
 * in texts. For one parameter (independent), only observations that set it are fitted. */
static int propose_group(const tpe_ctx_t *c, const int *params, int dims, int *rows,
                         const char **texts, char (*bufs)[PST_SWEEP_VALUE_MAX], pst_rng_t *rng)
{
    const pst_sweep_space_t *sp = c->sp;
    tpe_search_t s = {.c = c, .texts = texts, .bufs = bufs};
    int only = dims == 1 ? params[0] : -1;
    int n_below = select_rows(c, 0, c->n_below, only, rows);
    int rc = mixture_fit(&s.below, c, params, dims, rows, n_below, dims > 1);
    int n_above = select_rows(c, c->n_below, c->n_obs - c->n_below, only, rows);
    if (rc == PST_OK)
        rc = mixture_fit(&s.above, c, params, dims, rows, n_above, dims > 1);
    size_t n = (size_t)dims + 1, comps = (size_t)c->n_obs + 2;
    s.x = calloc(n, sizeof *s.x), s.best_x = calloc(n, sizeof *s.x);
    s.active = calloc(n, sizeof *s.active), s.best_active = calloc(n, sizeof *s.active);
    s.scratch = calloc(comps, sizeof *s.scratch);
    if (rc == PST_OK && (!s.x || !s.best_x || !s.active || !s.best_active || !s.scratch))
        rc = PST_ENOMEM;
    if (rc == PST_OK) {
        search(&s, rng);
        for (int d = 0; d < dims; d++) {
            int p = params[d];
            texts[p] = s.best_active[d] ? format_value(&sp->params[p], s.best_x[d], bufs[p]) : NULL;
        }
    }
    mixture_fini(&s.below);
    mixture_fini(&s.above);
    free(s.x), free(s.best_x), free(s.active), free(s.best_active), free(s.scratch);
    return rc;
}

static int propose(const tpe_ctx_t *c, uint64_t seed, const char **texts,
                   char (*bufs)[PST_SWEEP_VALUE_MAX])
{
    const pst_sweep_space_t *sp = c->sp;
    int *rows = calloc((size_t)c->n_obs + 1, sizeof *rows);
    if (!rows)
        return PST_ENOMEM;
    int rc = PST_OK;
    pst_rng_t rng;
    if (sp->tpe_multivariate) {
        pst_rng_init(&rng, seed);
        rc = propose_group(c, sp->order, sp->n_params, rows, texts, bufs, &rng);
    }
    for (int i = 0; !sp->tpe_multivariate && rc == PST_OK && i < sp->n_params; i++) {
        int p = sp->order[i];
        if (!pst_sweep_space_active(sp, p, texts))
            continue;
        pst_rng_init(&rng, pst_rng_derive(seed, (uint64_t)p));
        rc = propose_group(c, &sp->order[i], 1, rows, texts, bufs, &rng);
    }
    free(rows);
    return rc;
}

int pst_sweep_tpe_propose(const pst_sweep_space_t *space, int id, const pst_sweep_obs_t *obs,
                          int n_obs, pst_sweep_trial_t *out)
{
    if (id < space->tpe_startup || n_obs < TPE_MIN_OBS)
        return pst_sweep_sample(space, id, out);
    tpe_ctx_t c;
    const char **texts = calloc((size_t)space->n_params + 1, sizeof *texts);
    char(*bufs)[PST_SWEEP_VALUE_MAX] = calloc((size_t)space->n_params + 1, sizeof *bufs);
    int rc = texts && bufs ? ctx_init(&c, space, obs, n_obs) : PST_ENOMEM;
    if (rc == PST_OK) {
        /* its own stream: TPE's draws never repeat those of random trial id */
        uint64_t seed = pst_rng_derive(pst_rng_derive(space->seed, 0x747065u), (uint64_t)id);
        rc = propose(&c, seed, texts, bufs);
        if (rc == PST_OK)
            rc = pst_sweep_trial_from_values(space, id, texts, out);
        free(c.values);
    }
    free(texts);
    free(bufs);
    return rc;
}
