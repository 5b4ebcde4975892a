/* Criteo-style click generator: token tables, row drawing, TSV and truth files. */
#include "common/gen/criteogen.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/gen/clickgen.h"
#include "common/data/hashing.h"
#include "common/eval/metrics.h"
#include "common/rng.h"
#include "common/data/sparsestream.h"

#define PILOT_ROWS 20000
#define MAX_TABLE (1u << 24) /* categorical fields x vocab */
enum { STREAM_WEIGHTS = 1, STREAM_ROWS = 2, STREAM_PILOT = 3, STREAM_TOKENS = 4 };

void pst_criteogen_defaults(pst_criteogen_t *cfg)
{
    *cfg = (pst_criteogen_t){.n_numeric = 13,
                             .n_categorical = 26,
                             .vocab = 1000,
                             .seed = 1,
                             .click_rate = 0.25,
                             .sigma = 0.5,
                             .interaction = 1.0,
                             .missing = 0.05,
                             .zipf_exponent = 1.1};
}

int pst_criteogen_check(const pst_criteogen_t *c, pst_err_t *err)
{
    if (c->rows < 1)
        return pst_err_set(err, PST_EINVAL, "criteo generator: no rows to write");
    if (c->n_numeric > PST_CRITEOGEN_MAX_FIELDS || c->n_categorical < 1 ||
        c->n_categorical > PST_CRITEOGEN_MAX_FIELDS)
        return pst_err_set(err, PST_EINVAL,
                           "criteo generator: %u numeric and %u categorical columns (numeric "
                           "0..%d, categorical 1..%d)",
                           c->n_numeric, c->n_categorical, PST_CRITEOGEN_MAX_FIELDS,
                           PST_CRITEOGEN_MAX_FIELDS);
    if (c->vocab < 2 || (uint64_t)c->vocab * c->n_categorical > MAX_TABLE)
        return pst_err_set(err, PST_EINVAL,
                           "criteo generator: vocabulary %u outside [2, %u / categorical columns]",
                           c->vocab, MAX_TABLE);
    if (!(c->click_rate > 0 && c->click_rate < 1))
        return pst_err_set(err, PST_EINVAL, "criteo generator: click rate %g outside (0, 1)",
                           c->click_rate);
    if (!(c->sigma >= 0 && c->sigma <= 10) || !(c->interaction >= 0 && c->interaction <= 10))
        return pst_err_set(err, PST_EINVAL,
                           "criteo generator: sigma %g and interaction %g must be in [0, 10]",
                           c->sigma, c->interaction);
    if (!(c->missing >= 0 && c->missing < 1))
        return pst_err_set(err, PST_EINVAL, "criteo generator: missing rate %g outside [0, 1)",
                           c->missing);
    if (!(c->zipf_exponent > 0 && c->zipf_exponent <= 10))
        return pst_err_set(err, PST_EINVAL, "criteo generator: zipf exponent %g outside (0, 10]",
                           c->zipf_exponent);
    return PST_OK;
}

/* ---- the process ---- */

typedef struct gen {
    pst_criteogen_t cfg;
    double *cdf;                       // (vocab) token popularity, cumulative, last = 1
    float *w;                          // (n_categorical, vocab) token weights
    float *u;                          // (n_categorical, vocab, RANK) token factors
    float a[PST_CRITEOGEN_MAX_FIELDS]; /* numeric weights */
    double bias;
} gen_t;

/* One drawn row: -1 for an empty cell. */
typedef struct row {
    int64_t count[PST_CRITEOGEN_MAX_FIELDS];
    int64_t token[PST_CRITEOGEN_MAX_FIELDS];
    double main, pair; /* logit parts without the bias */
} row_t;

static void gen_fini(gen_t *g)
{
    free(g->cdf);
    free(g->w);
    free(g->u);
}

static int gen_init(gen_t *g, const pst_criteogen_t *cfg, pst_err_t *err)
{
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    size_t v = cfg->vocab, n = (size_t)cfg->n_categorical * v;
    g->cdf = malloc(v * sizeof *g->cdf);
    g->w = malloc(n * sizeof *g->w);
    g->u = malloc(n * PST_CRITEOGEN_RANK * sizeof *g->u);
    if (g->cdf == NULL || g->w == NULL || g->u == NULL) {
        gen_fini(g);
        return pst_err_set(err, PST_ENOMEM, "criteo generator: out of memory");
    }
    double total = 0;
    for (size_t t = 0; t < v; t++)
        g->cdf[t] = total += pow((double)(t + 1), -cfg->zipf_exponent);
    for (size_t t = 0; t < v; t++)
        g->cdf[t] /= total;
    g->cdf[v - 1] = 1.0;
    double pairs = 0.5 * cfg->n_categorical * (cfg->n_categorical - 1.0);
    double s = pairs > 0
                   ? pow(cfg->interaction * cfg->interaction / (pairs * PST_CRITEOGEN_RANK), 0.25)
                   : 0.0;
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(cfg->seed, STREAM_WEIGHTS));
    for (size_t i = 0; i < cfg->n_numeric; i++)
        g->a[i] = (float)(cfg->sigma * pst_rng_normal(&rng));
    for (size_t j = 0; j < n; j++)
        g->w[j] = (float)(cfg->sigma * pst_rng_normal(&rng));
    for (size_t j = 0; j < n * PST_CRITEOGEN_RANK; j++)
        g->u[j] = (float)(s * pst_rng_normal(&rng));
    return PST_OK;
}

static uint32_t draw_token(const gen_t *g, pst_rng_t *rng)
{
    double r = pst_rng_uniform(rng);
    size_t lo = 0, hi = g->cfg.vocab - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->cdf[mid] < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

/* Draws a row's cells and its logit parts: the pairwise term through
 * sum_{c<d} <u_c, u_d> = 1/2 (|sum_c u_c|^2 - sum_c |u_c|^2). */
static void draw_row(const gen_t *g, pst_rng_t *rng, row_t *r)
{
    const pst_criteogen_t *c = &g->cfg;
    double main = 0, sum[PST_CRITEOGEN_RANK] = {0}, sq = 0;
    for (uint32_t i = 0; i < c->n_numeric; i++) {
        bool empty = pst_rng_uniform(rng) < c->missing;
        double x = floor(exp(1.0 + pst_rng_normal(rng)));
        r->count[i] = empty ? -1 : (int64_t)x;
        main += empty ? 0.0 : g->a[i] * log1p(x);
    }
    for (uint32_t f = 0; f < c->n_categorical; f++) {
        bool empty = pst_rng_uniform(rng) < c->missing;
        uint32_t t = draw_token(g, rng);
        r->token[f] = empty ? -1 : (int64_t)t;
        if (empty)
            continue;
        size_t j = (size_t)f * c->vocab + t;
        main += g->w[j];
        for (int k = 0; k < PST_CRITEOGEN_RANK; k++) {
            double e = g->u[j * PST_CRITEOGEN_RANK + (size_t)k];
            sum[k] += e;
            sq += e * e;
        }
    }
    double norm = 0;
    for (int k = 0; k < PST_CRITEOGEN_RANK; k++)
        norm += sum[k] * sum[k];
    r->main = main;
    r->pair = 0.5 * (norm - sq);
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static int calibrate(gen_t *g, pst_err_t *err)
{
    double *z = malloc(PILOT_ROWS * sizeof *z);
    if (z == NULL)
        return pst_err_set(err, PST_ENOMEM, "criteo generator: out of memory");
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(g->cfg.seed, STREAM_PILOT));
    row_t r;
    for (size_t i = 0; i < PILOT_ROWS; i++) {
        draw_row(g, &rng, &r);
        z[i] = r.main + r.pair;
    }
    g->bias = pst_clickgen_solve_bias(z, PILOT_ROWS, g->cfg.click_rate);
    free(z);
    return PST_OK;
}

/* ---- files ---- */

static size_t max_line(const pst_criteogen_t *c)
{
    return 2 + 21 * (size_t)c->n_numeric + 9 * (size_t)c->n_categorical + 1;
}

/* The row's TSV line (with its newline) at p; returns its length. */
static size_t format_row(const gen_t *g, const row_t *r, int label, char *p)
{
    const pst_criteogen_t *c = &g->cfg;
    size_t n = 0;
    p[n++] = label ? '1' : '0';
    for (uint32_t i = 0; i < c->n_numeric; i++) {
        p[n++] = '\t';
        if (r->count[i] >= 0)
            n += (size_t)sprintf(p + n, "%lld", (long long)r->count[i]);
    }
    for (uint32_t f = 0; f < c->n_categorical; f++) {
        p[n++] = '\t';
        if (r->token[f] < 0)
            continue;
        uint32_t t = (uint32_t)r->token[f];
        unsigned char le[4] = {(unsigned char)t, (unsigned char)(t >> 8), (unsigned char)(t >> 16),
                               (unsigned char)(t >> 24)};
        uint64_t h = pst_hash64(pst_rng_derive(c->seed, STREAM_TOKENS) + f, le, sizeof le);
        n += (size_t)sprintf(p + n, "%08x", (unsigned)(h >> 32));
    }
    p[n++] = '\n';
    return n;
}

/* Per-row memory for the exact AUCs. */
typedef struct truth_acc {
    float *p, *p_main, *label; // (rows)
    double sum_loss;
    uint64_t positives;
} truth_acc_t;

static int write_rows(gen_t *g, pst_atomic_writer_t *w, truth_acc_t *acc, pst_err_t *err)
{
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(g->cfg.seed, STREAM_ROWS));
    row_t r;
    int rc = PST_OK;
    for (uint64_t i = 0; i < g->cfg.rows && rc == PST_OK; i++) {
        draw_row(g, &rng, &r);
        double p = sigmoid(g->bias + r.main + r.pair);
        int label = pst_rng_uniform(&rng) < p;
        acc->sum_loss -= log(label ? p : 1.0 - p);
        acc->positives += (uint64_t)label;
        acc->p[i] = (float)p;
        acc->p_main[i] = (float)sigmoid(g->bias + r.main);
        acc->label[i] = (float)label;
        char *out;
        if ((rc = pst_atomic_writer_reserve(w, max_line(&g->cfg), &out, err)) == PST_OK)
            pst_atomic_writer_advance(w, format_row(g, &r, label, out));
    }
    return rc;
}

static int write_data(gen_t *g, const char *path, truth_acc_t *acc, pst_err_t *err)
{
    pst_atomic_writer_t *w = NULL;
    int rc = pst_atomic_writer_open(path, 4u << 20, &w, err);
    if (rc == PST_OK)
        rc = write_rows(g, w, acc, err);
    if (rc == PST_OK)
        rc = pst_atomic_writer_commit(&w, err);
    pst_atomic_writer_destroy(&w);
    return rc;
}

static int write_truth(const pst_criteogen_t *c, const pst_criteogen_truth_t *t, const char *path,
                       pst_err_t *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "generator", "criteo");
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddNumberToObject(o, "rows", (double)c->rows);
    cJSON_AddNumberToObject(o, "numeric", c->n_numeric);
    cJSON_AddNumberToObject(o, "categorical", c->n_categorical);
    cJSON_AddNumberToObject(o, "vocab", c->vocab);
    cJSON_AddNumberToObject(o, "sigma", c->sigma);
    cJSON_AddNumberToObject(o, "interaction", c->interaction);
    cJSON_AddNumberToObject(o, "missing", c->missing);
    cJSON_AddNumberToObject(o, "zipf_exponent", c->zipf_exponent);
    cJSON_AddNumberToObject(o, "click_rate_target", c->click_rate);
    cJSON_AddNumberToObject(o, "bias", t->bias);
    cJSON_AddNumberToObject(o, "positives", (double)t->positives);
    cJSON_AddNumberToObject(o, "click_rate", t->click_rate);
    cJSON_AddNumberToObject(o, "bayes_auc", t->bayes_auc);
    cJSON_AddNumberToObject(o, "bayes_log_loss", t->bayes_log_loss);
    cJSON_AddNumberToObject(o, "main_effects_auc", t->main_effects_auc);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (text == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's terminator becomes the final newline */
    int rc = pst_write_file_atomic(path, text, len + 1, err);
    cJSON_free(text);
    return rc;
}

int pst_criteogen_write(const pst_criteogen_t *cfg, const char *data_path, const char *truth_path,
                        pst_criteogen_truth_t *truth, pst_err_t *err)
{
    int rc = pst_criteogen_check(cfg, err);
    if (rc != PST_OK)
        return rc;
    size_t n = (size_t)cfg->rows;
    truth_acc_t acc = {.p = malloc((n ? n : 1) * sizeof(float)),
                       .p_main = malloc((n ? n : 1) * sizeof(float)),
                       .label = malloc((n ? n : 1) * sizeof(float))};
    gen_t g;
    if (acc.p == NULL || acc.p_main == NULL || acc.label == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "criteo generator: out of memory for %zu rows", n);
    if (rc == PST_OK && (rc = gen_init(&g, cfg, err)) == PST_OK) {
        rc = calibrate(&g, err);
        if (rc == PST_OK)
            rc = write_data(&g, data_path, &acc, err);
        if (rc == PST_OK && cfg->main_probs != NULL)
            rc = pst_write_file_atomic(cfg->main_probs, acc.p_main, n * sizeof(float), err);
        pst_criteogen_truth_t t = {.bias = g.bias,
                                   .positives = acc.positives,
                                   .click_rate = n ? (double)acc.positives / (double)n : NAN,
                                   .bayes_auc = pst_roc_auc(acc.p, acc.label, n),
                                   .bayes_log_loss = n ? acc.sum_loss / (double)n : NAN,
                                   .main_effects_auc = pst_roc_auc(acc.p_main, acc.label, n)};
        if (rc == PST_OK && truth_path != NULL)
            rc = write_truth(cfg, &t, truth_path, err);
        if (rc == PST_OK && truth != NULL)
            *truth = t;
        gen_fini(&g);
    }
    free(acc.p);
    free(acc.p_main);
    free(acc.label);
    return rc;
}
