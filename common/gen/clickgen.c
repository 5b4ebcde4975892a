/* Synthetic clicks: alias-table power-law sampling, logistic labels, fast LIBSVM output. */
#include "common/gen/clickgen.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/eval/metrics.h"
#include "common/rng.h"
#include "common/data/sparsestream.h"

#define MAX_FEATURES (1u << 28)
#define PILOT_ROWS 50000
#define STREAM_WEIGHTS 1
#define STREAM_ROWS 2
#define STREAM_PILOT 3
#define HEAD_IDS 32768 /* head alias table: 256 KiB, stays in cache */

/* A tail alias column with the weights of both ids it can yield, so that a tail draw reads one
 * cache line for its id and weight. */
typedef struct tail_entry {
    uint32_t threshold, alias; /* keep this column when the coin is below threshold */
    float w_self, w_alias;
} tail_entry_t;

/* A drawn tail id and its weight. */
typedef struct tail_draw {
    uint32_t id;
    float w;
} tail_draw_t;

struct pst_clickgen_state {
    pst_clickgen_t cfg;
    float *w;           // (F) true weights
    uint32_t n_head;    /* ids with their own column in the head table */
    uint64_t *head;     // (n_head + 1) alias table of ids [0, n_head) and "the tail"
    tail_entry_t *tail; // (F - n_head) alias table of ids [n_head, F), offset by n_head
    uint64_t head_bits[HEAD_IDS / 64];      /* the row's head ids, a bitmap */
    uint64_t head_summary[HEAD_IDS / 4096]; /* bit w: head_bits[w] is non-zero */
    uint32_t *tail_pos;    // (nnz) scratch of draw_round: draws that fell in the tail
    uint64_t *tail_word;   // (nnz) ... and their random words
    tail_draw_t *draws;    // (nnz) scratch: one round's tail draws
    tail_draw_t *row_tail; // (nnz) scratch: the row's distinct tail ids
    double bias;
    pst_rng_t rng; /* the rows of the file */
};

void pst_clickgen_defaults(pst_clickgen_t *cfg)
{
    *cfg = (pst_clickgen_t){.rows = 0,
                            .n_features = 1000000,
                            .nnz = 30,
                            .seed = 1,
                            .click_rate = 0.03,
                            .zipf_exponent = 1.1,
                            .sigma = 0.25};
}

int pst_clickgen_check(const pst_clickgen_t *cfg, pst_err_t *err)
{
    if (cfg->n_features < 2 || cfg->n_features > MAX_FEATURES)
        return pst_err_set(err, PST_EINVAL, "features %u outside [2, %u]", cfg->n_features,
                           MAX_FEATURES);
    if (cfg->nnz < 1 || cfg->nnz > cfg->n_features / 2)
        return pst_err_set(err, PST_EINVAL, "nnz %u outside [1, features/2 = %u]", cfg->nnz,
                           cfg->n_features / 2);
    if (!(cfg->click_rate > 0.0 && cfg->click_rate < 1.0))
        return pst_err_set(err, PST_EINVAL, "click rate %g outside (0, 1)", cfg->click_rate);
    if (!(cfg->zipf_exponent > 0.0 && cfg->zipf_exponent <= 10.0))
        return pst_err_set(err, PST_EINVAL, "zipf exponent %g outside (0, 10]", cfg->zipf_exponent);
    if (!(cfg->sigma >= 0.0 && cfg->sigma <= 100.0))
        return pst_err_set(err, PST_EINVAL, "sigma %g outside [0, 100]", cfg->sigma);
    return PST_OK;
}

/* Vose's alias method: table[j] = alias << 32 | threshold for the weights p[0..n), which it
 * overwrites. A draw takes column j uniformly, keeps j when a 32-bit coin is below the
 * threshold, else takes the alias: O(1) from one random word. */
static int build_alias(double *p, uint32_t n, uint64_t *table)
{
    uint32_t *work = malloc((size_t)n * sizeof *work); /* small stack at the front, large at the
                                                          back */
    if (work == NULL)
        return PST_ENOMEM;
    double total = 0;
    for (uint32_t j = 0; j < n; j++)
        total += p[j];
    size_t n_small = 0, n_large = 0;
    for (uint32_t j = 0; j < n; j++) {
        p[j] *= (double)n / total;
        if (p[j] < 1.0)
            work[n_small++] = j;
        else
            work[n - 1 - n_large++] = j;
    }
    while (n_small > 0 && n_large > 0) {
        uint32_t s = work[--n_small], l = work[n - n_large];
        table[s] = (uint64_t)l << 32 | (uint32_t)(p[s] * 4294967296.0);
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) {
            n_large--;
            work[n_small++] = l;
        }
    }
    for (size_t k = 0; k < n_small; k++) /* rounding leftovers are full columns */
        table[work[k]] = (uint64_t)work[k] << 32 | UINT32_MAX;
    for (size_t k = 0; k < n_large; k++)
        table[work[n - 1 - k]] = (uint64_t)work[n - 1 - k] << 32 | UINT32_MAX;
    free(work);
    return PST_OK;
}

static int cmp_tail(const void *a, const void *b)
{
    uint32_t x = ((const tail_draw_t *)a)->id, y = ((const tail_draw_t *)b)->id;
    return (x > y) - (x < y);
}

static void sort_tail(tail_draw_t *t, uint32_t n)
{
    if (n > 64) {
        qsort(t, n, sizeof *t, cmp_tail);
        return;
    }
    for (uint32_t i = 1; i < n; i++) {
        tail_draw_t v = t[i];
        uint32_t k = i;
        for (; k > 0 && t[k - 1].id > v.id; k--)
            t[k] = t[k - 1];
        t[k] = v;
    }
}

/* Adds head id j to the row's bitmap; false when the row already has it. */
static bool head_insert(pst_clickgen_state_t *g, uint32_t j)
{
    uint64_t bit = 1ULL << (j & 63);
    if (g->head_bits[j >> 6] & bit)
        return false;
    g->head_bits[j >> 6] |= bit;
    g->head_summary[j >> 12] |= 1ULL << ((j >> 6) & 63);
    return true;
}

/* The row's head ids in increasing order into out; clears the bitmap. Returns the count. */
static uint32_t head_extract(pst_clickgen_state_t *g, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < HEAD_IDS / 4096; s++) {
        uint64_t summary = g->head_summary[s];
        g->head_summary[s] = 0;
        for (; summary != 0; summary &= summary - 1) {
            uint32_t wi = 64 * s + (uint32_t)__builtin_ctzll(summary);
            uint64_t word = g->head_bits[wi];
            g->head_bits[wi] = 0;
            for (; word != 0; word &= word - 1)
                out[n++] = 64 * wi + (uint32_t)__builtin_ctzll(word);
        }
    }
    return n;
}

/* The tail table of ids [head, F) with each column's weights beside it. */
static int build_tail(pst_clickgen_state_t *g, double *p, uint32_t head, uint32_t tail)
{
    uint64_t *table = malloc((size_t)tail * sizeof *table);
    if (table == NULL || build_alias(p, tail, table) != PST_OK) {
        free(table);
        return PST_ENOMEM;
    }
    for (uint32_t c = 0; c < tail; c++) {
        uint32_t alias = (uint32_t)(table[c] >> 32);
        g->tail[c] = (tail_entry_t){(uint32_t)table[c], alias, g->w[head + c], g->w[head + alias]};
    }
    free(table);
    return PST_OK;
}

/* The popularity law as two alias tables, so that most draws stay in cache: the head table
 * holds ids [0, n_head) plus one column (n_head) standing for all the others, drawn from the
 * tail table. Probabilities are exact to the 2^-32 of the thresholds. Needs the weights. */
static int build_popularity(pst_clickgen_state_t *g)
{
    uint32_t f = g->cfg.n_features, head = f < HEAD_IDS ? f : HEAD_IDS, tail = f - head;
    double *p = malloc(((size_t)(tail > head ? tail : head) + 1) * sizeof *p);
    g->head = malloc(((size_t)head + 1) * sizeof *g->head);
    g->tail = malloc(((size_t)tail + 1) * sizeof *g->tail);
    int rc = p && g->head && g->tail ? PST_OK : PST_ENOMEM;
    double s = g->cfg.zipf_exponent, tail_mass = 0;
    for (uint32_t j = 0; rc == PST_OK && j < tail; j++)
        tail_mass += p[j] = pow((double)head + j + 1.0, -s);
    if (rc == PST_OK && tail > 0)
        rc = build_tail(g, p, head, tail);
    for (uint32_t j = 0; rc == PST_OK && j < head; j++)
        p[j] = pow((double)j + 1.0, -s);
    if (rc == PST_OK) {
        p[head] = tail_mass;
        g->n_head = head;
        rc = build_alias(p, head + (tail > 0 ? 1 : 0), g->head);
    }
    free(p);
    return rc;
}

/* Column of n by multiply-shift of the high 32 bits of r (bias below n / 2^32). */
static uint32_t alias_column(uint32_t n, uint64_t r)
{
    return (uint32_t)(((r >> 32) * (uint64_t)n) >> 32);
}

/* The head draw of r: the column, or its alias when the low 32 bits reach the threshold. */
static uint32_t head_pick(const pst_clickgen_state_t *g, uint32_t n_cols, uint64_t r)
{
    uint32_t j = alias_column(n_cols, r);
    uint64_t entry = g->head[j];
    return (uint32_t)r < (uint32_t)entry ? j : (uint32_t)(entry >> 32);
}

static tail_draw_t tail_pick(const pst_clickgen_state_t *g, uint32_t n_tail, uint64_t r)
{
    uint32_t c = alias_column(n_tail, r);
    const tail_entry_t *e = &g->tail[c];
    bool keep = (uint32_t)r < e->threshold;
    return (tail_draw_t){g->n_head + (keep ? c : e->alias), keep ? e->w_self : e->w_alias};
}

/* Draws `need` ids: one random word each from the head table, then one more for each that
 * fell in the tail. Head ids are added to the row's bitmap (*n_head counts the new ones), tail
 * draws go to g->draws (returns their count). The tail lookups run as a separate loop of
 * independent loads so that their cache misses overlap. */
static uint32_t draw_round(pst_clickgen_state_t *g, pst_rng_t *rng, uint32_t need, uint32_t *n_head)
{
    uint32_t n_tail = g->cfg.n_features - g->n_head, n_cols = g->n_head + (n_tail > 0 ? 1 : 0);
    uint32_t m = 0;
    for (uint32_t i = 0; i < need; i++) {
        uint32_t j = head_pick(g, n_cols, pst_rng_next(rng));
        if (j == g->n_head)
            g->tail_pos[m++] = i;
        else
            *n_head += head_insert(g, j);
    }
    for (uint32_t t = 0; t < m; t++)
        g->tail_word[t] = pst_rng_next(rng);
    for (uint32_t t = 0; t < m; t++)
        g->draws[t] = tail_pick(g, n_tail, g->tail_word[t]);
    return m;
}

static bool tail_contains(const tail_draw_t *t, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (t[i].id == id)
            return true;
    return false;
}

/* K distinct ids, increasing: the first K distinct values of a sequence of draws, which is
 * sampling without replacement. The missing ones are drawn in rounds. Head ids go to a bitmap
 * that both removes repeats and yields them sorted; the few tail ids are kept in a list and
 * sorted (every tail id is above every head id). Returns the sum of the ids' weights, added
 * in increasing id order. */
static double draw_row_ids(pst_clickgen_state_t *g, pst_rng_t *rng, uint32_t *ids)
{
    uint32_t k = g->cfg.nnz, n_head = 0, n_tail = 0;
    while (n_head + n_tail < k) {
        uint32_t m = draw_round(g, rng, k - n_head - n_tail, &n_head);
        for (uint32_t t = 0; t < m; t++)
            if (!tail_contains(g->row_tail, n_tail, g->draws[t].id))
                g->row_tail[n_tail++] = g->draws[t];
    }
    head_extract(g, ids);
    sort_tail(g->row_tail, n_tail);
    double sum = 0;
    for (uint32_t i = 0; i < n_head; i++)
        sum += (double)g->w[ids[i]];
    for (uint32_t t = 0; t < n_tail; t++) {
        ids[n_head + t] = g->row_tail[t].id;
        sum += (double)g->row_tail[t].w;
    }
    return sum;
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

double pst_clickgen_solve_bias(const double *s, size_t n, double rate)
{
    double lo = -60.0, hi = 60.0;
    for (int it = 0; it < 80; it++) {
        double mid = 0.5 * (lo + hi), mean = 0;
        for (size_t i = 0; i < n; i++)
            mean += sigmoid(mid + s[i]);
        if (mean / (double)n < rate)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int calibrate(pst_clickgen_state_t *g)
{
    double *sums = malloc(PILOT_ROWS * sizeof *sums);
    uint32_t *ids = malloc((size_t)g->cfg.nnz * sizeof *ids);
    if (sums == NULL || ids == NULL) {
        free(sums);
        free(ids);
        return PST_ENOMEM;
    }
    pst_rng_t pilot;
    pst_rng_init(&pilot, pst_rng_derive(g->cfg.seed, STREAM_PILOT));
    for (size_t i = 0; i < PILOT_ROWS; i++)
        sums[i] = draw_row_ids(g, &pilot, ids);
    g->bias = pst_clickgen_solve_bias(sums, PILOT_ROWS, g->cfg.click_rate);
    free(sums);
    free(ids);
    return PST_OK;
}

static bool alloc_state(pst_clickgen_state_t *g)
{
    size_t f = g->cfg.n_features, k = g->cfg.nnz;
    g->w = malloc(f * sizeof *g->w);
    g->tail_pos = malloc(k * sizeof *g->tail_pos);
    g->tail_word = malloc(k * sizeof *g->tail_word);
    g->draws = malloc(k * sizeof *g->draws);
    g->row_tail = malloc(k * sizeof *g->row_tail);
    return g->w && g->tail_pos && g->tail_word && g->draws && g->row_tail;
}

int pst_clickgen_state_new(const pst_clickgen_t *cfg, pst_clickgen_state_t **out, pst_err_t *err)
{
    *out = NULL;
    int rc = pst_clickgen_check(cfg, err);
    if (rc != PST_OK)
        return rc;
    pst_clickgen_state_t *g = calloc(1, sizeof *g);
    if (g != NULL)
        g->cfg = *cfg;
    if (g == NULL || !alloc_state(g)) {
        pst_clickgen_state_destroy(&g);
        return pst_err_set(err, PST_ENOMEM, "click generator: out of memory");
    }
    pst_rng_t wrng;
    pst_rng_init(&wrng, pst_rng_derive(cfg->seed, STREAM_WEIGHTS));
    for (size_t j = 0; j < cfg->n_features; j++)
        g->w[j] = (float)(cfg->sigma * pst_rng_normal(&wrng));
    if (build_popularity(g) != PST_OK || calibrate(g) != PST_OK) {
        pst_clickgen_state_destroy(&g);
        return pst_err_set(err, PST_ENOMEM, "click generator: out of memory for %u features",
                           cfg->n_features);
    }
    pst_rng_init(&g->rng, pst_rng_derive(cfg->seed, STREAM_ROWS));
    *out = g;
    return PST_OK;
}

void pst_clickgen_state_destroy(pst_clickgen_state_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_clickgen_state_t *g = *self_p;
    free(g->w);
    free(g->head);
    free(g->tail);
    free(g->tail_pos);
    free(g->tail_word);
    free(g->draws);
    free(g->row_tail);
    free(g);
    *self_p = NULL;
}

const float *pst_clickgen_weights(const pst_clickgen_state_t *g)
{
    return g->w;
}

double pst_clickgen_bias(const pst_clickgen_state_t *g)
{
    return g->bias;
}

/* The next row's ids, p and label (the label coin is drawn after the ids); returns its logit. */
static double next_row_logit(pst_clickgen_state_t *g, uint32_t *ids, double *p, int *label)
{
    double z = g->bias + draw_row_ids(g, &g->rng, ids);
    *p = sigmoid(z);
    *label = pst_rng_uniform(&g->rng) < *p;
    return z;
}

void pst_clickgen_next_row(pst_clickgen_state_t *g, uint32_t *ids, double *p, int *label)
{
    next_row_logit(g, ids, p, label);
}

/* ---- writing ---- */

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

/* Decimal digits of v at p; returns the count (at most 10). */
static size_t format_u32(char *p, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    while (v >= 100) {
        uint32_t q = v / 100, r = v - 100 * q;
        tmp[n++] = digit_pairs[2 * r + 1];
        tmp[n++] = digit_pairs[2 * r];
        v = q;
    }
    if (v >= 10) {
        tmp[n++] = digit_pairs[2 * v + 1];
        tmp[n++] = digit_pairs[2 * v];
    } else {
        tmp[n++] = (char)('0' + v);
    }
    for (size_t k = 0; k < n; k++)
        p[k] = tmp[n - 1 - k];
    return n;
}

/* Longest line of a row of k ids: label, k times " id:1" with up to 10 digits, newline. */
static size_t max_line(uint32_t k)
{
    return 2 + 13 * (size_t)k;
}

/* "label id:1 id:1 ...\n" with 1-based ids; returns the length (<= max_line(k)). */
static size_t format_row(char *p, int label, const uint32_t *ids, uint32_t k)
{
    char *q = p;
    *q++ = (char)('0' + label);
    for (uint32_t i = 0; i < k; i++) {
        *q++ = ' ';
        q += format_u32(q, ids[i] + 1);
        *q++ = ':';
        *q++ = '1';
    }
    *q++ = '\n';
    return (size_t)(q - p);
}

/* log(1 + e^x) without overflow: -log p = softplus(-z), -log(1 - p) = softplus(z). */
static double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* Per-row memory kept for the exact AUC: p and label as float. */
typedef struct truth_acc {
    float *p;     // (rows) or NULL when the AUC is not wanted
    float *label; // (rows)
    double sum_p, sum_loss;
    uint64_t positives;
} truth_acc_t;

static int write_rows(pst_clickgen_state_t *g, pst_atomic_writer_t *w, truth_acc_t *acc,
                      pst_err_t *err)
{
    uint32_t k = g->cfg.nnz;
    uint32_t *ids = malloc((size_t)k * sizeof *ids);
    if (ids == NULL)
        return pst_err_set(err, PST_ENOMEM, "click generator: out of memory");
    int rc = PST_OK;
    for (uint64_t r = 0; r < g->cfg.rows && rc == PST_OK; r++) {
        int label;
        double p, z = next_row_logit(g, ids, &p, &label);
        acc->sum_p += p;
        acc->sum_loss += label ? softplus(-z) : softplus(z);
        acc->positives += (uint64_t)label;
        if (acc->p != NULL) {
            acc->p[r] = (float)p;
            acc->label[r] = (float)label;
        }
        char *out;
        if (w != NULL && (rc = pst_atomic_writer_reserve(w, max_line(k), &out, err)) == PST_OK)
            pst_atomic_writer_advance(w, format_row(out, label, ids, k));
    }
    free(ids);
    return rc;
}

static void weight_moments(const pst_clickgen_state_t *g, double *mean, double *std)
{
    double s = 0, ss = 0;
    size_t n = g->cfg.n_features;
    for (size_t j = 0; j < n; j++)
        s += g->w[j];
    *mean = s / (double)n;
    for (size_t j = 0; j < n; j++)
        ss += (g->w[j] - *mean) * (g->w[j] - *mean);
    *std = sqrt(ss / (double)n);
}

static void finish_truth(const pst_clickgen_state_t *g, const truth_acc_t *acc,
                         pst_clickgen_truth_t *t)
{
    uint64_t n = g->cfg.rows;
    memset(t, 0, sizeof *t);
    t->bias = g->bias;
    t->positives = acc->positives;
    t->click_rate = n ? (double)acc->positives / (double)n : NAN;
    t->mean_p = n ? acc->sum_p / (double)n : NAN;
    t->bayes_log_loss = n ? acc->sum_loss / (double)n : NAN;
    t->bayes_auc = acc->p != NULL ? pst_roc_auc(acc->p, acc->label, (size_t)n) : NAN;
    weight_moments(g, &t->weight_mean, &t->weight_std);
}

static void add_u64(cJSON *o, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    cJSON_AddRawToObject(o, name, buf);
}

static char *truth_json_text(const pst_clickgen_t *cfg, const pst_clickgen_truth_t *t,
                             const char *weights_file)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "generator", "clicks");
    add_u64(o, "seed", cfg->seed);
    add_u64(o, "rows", cfg->rows);
    add_u64(o, "features", cfg->n_features);
    add_u64(o, "nnz", cfg->nnz);
    cJSON_AddNumberToObject(o, "sigma", cfg->sigma);
    cJSON_AddNumberToObject(o, "zipf_exponent", cfg->zipf_exponent);
    cJSON_AddNumberToObject(o, "click_rate_target", cfg->click_rate);
    char bias[40];
    snprintf(bias, sizeof bias, "%.17g", t->bias);
    cJSON_AddRawToObject(o, "bias", bias);
    add_u64(o, "positives", t->positives);
    cJSON_AddNumberToObject(o, "click_rate", t->click_rate);
    cJSON_AddNumberToObject(o, "mean_p", t->mean_p);
    cJSON_AddNumberToObject(o, "bayes_auc", t->bayes_auc);
    cJSON_AddNumberToObject(o, "bayes_log_loss", t->bayes_log_loss);
    cJSON_AddNumberToObject(o, "weight_mean", t->weight_mean);
    cJSON_AddNumberToObject(o, "weight_std", t->weight_std);
    if (weights_file != NULL)
        cJSON_AddStringToObject(o, "weights_file", weights_file);
    else
        cJSON_AddNullToObject(o, "weights_file");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static int write_truth_json(const pst_clickgen_t *cfg, const pst_clickgen_truth_t *t,
                            const pst_clickgen_files_t *files, pst_err_t *err)
{
    char *text = truth_json_text(cfg, t, files->truth_weights);
    if (text == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", files->truth_json);
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's terminator becomes the final newline */
    int rc = pst_write_file_atomic(files->truth_json, text, len + 1, err);
    cJSON_free(text);
    return rc;
}

static int write_weights(const pst_clickgen_state_t *g, const char *path, pst_err_t *err)
{
    size_t n = g->cfg.n_features;
    unsigned char *bytes = malloc(4 * n);
    if (bytes == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    for (size_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, &g->w[j], 4);
        for (int b = 0; b < 4; b++)
            bytes[4 * j + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
    int rc = pst_write_file_atomic(path, bytes, 4 * n, err);
    free(bytes);
    return rc;
}

static int truth_acc_init(truth_acc_t *acc, uint64_t rows, bool want_auc, pst_err_t *err)
{
    memset(acc, 0, sizeof *acc);
    if (!want_auc || rows == 0)
        return PST_OK;
    if (rows > SIZE_MAX / (2 * sizeof(float)))
        return pst_err_set(err, PST_ENOMEM, "click generator: too many rows for the AUC");
    acc->p = malloc((size_t)rows * sizeof *acc->p);
    acc->label = malloc((size_t)rows * sizeof *acc->label);
    if (acc->p == NULL || acc->label == NULL) {
        free(acc->p);
        free(acc->label);
        return pst_err_set(err, PST_ENOMEM,
                           "click generator: out of memory for the AUC of %llu rows",
                           (unsigned long long)rows);
    }
    return PST_OK;
}

/* Writes the rows to a temporary file and publishes it. */
static int generate_data(pst_clickgen_state_t *g, const char *path, truth_acc_t *acc,
                         pst_err_t *err)
{
    pst_atomic_writer_t *w = NULL; /* stays NULL without a data file: rows for the truth only */
    size_t buffer = 4 * max_line(g->cfg.nnz);
    int rc = path ? pst_atomic_writer_open(path, buffer > (4u << 20) ? buffer : (4u << 20), &w, err)
                  : PST_OK;
    if (rc != PST_OK)
        return rc;
    rc = write_rows(g, w, acc, err);
    if (rc == PST_OK && path != NULL)
        rc = pst_atomic_writer_commit(&w, err);
    pst_atomic_writer_destroy(&w);
    return rc;
}

int pst_clickgen_write(const pst_clickgen_t *cfg, const pst_clickgen_files_t *files,
                       pst_clickgen_truth_t *truth, pst_err_t *err)
{
    pst_clickgen_state_t *g;
    int rc = pst_clickgen_state_new(cfg, &g, err);
    if (rc != PST_OK)
        return rc;
    truth_acc_t acc;
    rc = truth_acc_init(&acc, cfg->rows, files->truth_json != NULL || truth != NULL, err);
    if (rc == PST_OK)
        rc = generate_data(g, files->data, &acc, err);
    pst_clickgen_truth_t t;
    if (rc == PST_OK)
        finish_truth(g, &acc, &t);
    if (rc == PST_OK && files->truth_weights != NULL)
        rc = write_weights(g, files->truth_weights, err);
    if (rc == PST_OK && files->truth_json != NULL)
        rc = write_truth_json(cfg, &t, files, err);
    if (rc == PST_OK && truth != NULL)
        *truth = t;
    free(acc.p);
    free(acc.label);
    pst_clickgen_state_destroy(&g);
    return rc;
}
