/* Tests for common/sweep*: sweep files, sampling, grids, ASHA scheduling, results and resume. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/rng.h"
#include "app/sweep/sweep.h"

#define EXAMPLES PST_TEST_DATA "/../../examples"

static pst_sweep_space_t *load(const char *yaml)
{
    pst_sweep_space_t *sp = NULL;
    pst_err_t err = {0};
    int rc = pst_sweep_space_load_string(yaml, "s.yaml", &sp, &err);
    if (rc != PST_OK)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    assert_int_equal(rc, PST_OK);
    return sp;
}

static double value_of(const pst_sweep_trial_t *t, const char *key)
{
    const char *text = pst_sweep_trial_value(t, key);
    assert_non_null(text);
    return strtod(text, NULL);
}

/* ---- parsing ---- */

static const char *brief_space = "base: examples/fashion_mlp.yaml\n"
                                 "method: random\n"
                                 "metric: val.accuracy\n"
                                 "trials: 20\n"
                                 "seed: 0\n"
                                 "space:\n"
                                 "  optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n"
                                 "  model.dropout: {uniform: [0.0, 0.5]}\n"
                                 "  train.batch_size: {choice: [32, 64, 128]}\n"
                                 "  model.hidden: {choice: [\"[128]\", [256, 128]]}\n"
                                 "  optimizer.momentum: {uniform: [0.8, 0.99], when: "
                                 "{optimizer.name: [momentum, nesterov]}}\n"
                                 "  optimizer.name: {choice: [adam, momentum, nesterov]}\n"
                                 "  train.epochs: {int: [5, 20]}\n";

static void parses_every_distribution(void **state)
{
    pst_sweep_space_t *sp = load(brief_space);
    assert_string_equal(sp->base, "examples/fashion_mlp.yaml");
    assert_int_equal(sp->method, PST_SWEEP_RANDOM);
    assert_string_equal(sp->metric, "val.accuracy");
    assert_true(sp->maximize);
    assert_int_equal(sp->trials, 20);
    assert_int_equal(sp->n_params, 7);
    const pst_sweep_param_t *p = sp->params;
    assert_string_equal(p[0].key, "optimizer.lr");
    assert_int_equal(p[0].dist, PST_SWEEP_LOG_UNIFORM);
    assert_true(p[0].lo == 1.0e-4 && p[0].hi == 1.0e-2);
    assert_int_equal(p[0].line, 7);
    assert_int_equal(p[1].dist, PST_SWEEP_UNIFORM);
    assert_true(p[1].lo == 0.0 && p[1].hi == 0.5);
    assert_int_equal(p[2].dist, PST_SWEEP_CHOICE);
    assert_int_equal(p[2].n_values, 3);
    assert_string_equal(p[2].values[2], "128");
    /* A quoted --set text and a YAML list give the same kind of text. */
    assert_string_equal(p[3].values[0], "[128]");
    assert_string_equal(p[3].values[1], "[256, 128]");
    assert_int_equal(p[4].n_conds, 1);
    assert_string_equal(p[4].conds[0].key, "optimizer.name");
    assert_int_equal(p[4].conds[0].param, 5); /* declared after the parameter it enables */
    assert_int_equal(p[4].conds[0].n_values, 2);
    assert_string_equal(p[4].conds[0].values[1], "nesterov");
    assert_int_equal(p[6].dist, PST_SWEEP_INT);
    assert_true(p[6].lo == 5 && p[6].hi == 20);
    /* Condition order: optimizer.name comes before optimizer.momentum. */
    int pos_name = -1, pos_momentum = -1;
    for (int i = 0; i < sp->n_params; i++) {
        pos_name = sp->order[i] == 5 ? i : pos_name;
        pos_momentum = sp->order[i] == 4 ? i : pos_momentum;
    }
    assert_true(pos_name >= 0 && pos_name < pos_momentum);
    pst_sweep_space_destroy(&sp);
    pst_sweep_space_destroy(&sp);
    assert_null(sp);
}

static void parses_hyperband_and_mode(void **state)
{
    pst_sweep_space_t *sp = load("base: b.yaml\nmethod: hyperband\nmetric: val.loss\n"
                                 "trials: 9\nhyperband: {max_epochs: 27}\n"
                                 "space:\n  optimizer.lr: {uniform: [0.001, 0.1]}\n");
    assert_int_equal(sp->method, PST_SWEEP_HYPERBAND);
    assert_false(sp->maximize);
    assert_int_equal(sp->min_epochs, 1);
    assert_int_equal(sp->max_epochs, 27);
    assert_int_equal(sp->eta, 3);
    pst_sweep_space_destroy(&sp);
    sp = load("base: b.yaml\nmethod: random\nmetric: my.score\nmode: max\ntrials: 2\n"
              "space:\n  optimizer.lr: {uniform: [0.001, 0.1]}\n");
    assert_true(sp->maximize);
    pst_sweep_space_destroy(&sp);
}

typedef struct bad_case {
    const char *space; /* lines after "space:" */
    const char *expect[3];
} bad_case_t;

static void errors_name_key_and_line(void **state)
{
    const char *head = "base: b.yaml\nmethod: random\nmetric: val.accuracy\ntrials: 4\nspace:\n";
    /* The space starts on line 6. */
    static const bad_case_t cases[] = {
        {"  optimizer.lr: {normal: [0, 1]}\n", {"s.yaml:6", "optimizer.lr", "'normal'"}},
        {"  model.dropout: {uniform: [0.1, 0.2]}\n  optimizer.lr: {log_uniform: [0, 0.1]}\n",
         {"s.yaml:7", "optimizer.lr", "log_uniform"}},
        {"  optimizer.lr: {log_uniform: [-1, 0.1]}\n", {"s.yaml:6", "optimizer.lr", "above 0"}},
        {"  model.dropout: {uniform: [0.5, 0.1]}\n", {"s.yaml:6", "model.dropout", "low < high"}},
        {"  optimizer.lr: {uniform: [0.1]}\n", {"s.yaml:6", "optimizer.lr", "[low, high]"}},
        {"  optimizer.lr: {uniform: [0.1, 0.2], when: {model.dropout: 0.1}}\n"
         "  model.dropout: {choice: [0.1, 0.2], when: {optimizer.lr: 0.1}}\n",
         {"s.yaml:6", "cycle", "optimizer.lr -> model.dropout -> optimizer.lr"}},
        {"  optimizer.lr: {uniform: [0.1, 0.2], when: {optimizer.lr: 0.15}}\n",
         {"s.yaml:6", "cycle", "optimizer.lr"}},
        {"  model.dropout: {uniform: [0.1, 0.2]}\n"
         "  optimizer.momentum: {uniform: [0.8, 0.9], when: {optimizer.nam: [momentum]}}\n",
         {"s.yaml:7", "optimizer.momentum", "'optimizer.nam'"}},
        {"  optimizer.name: {choice: [adam, sgd]}\n"
         "  optimizer.momentum: {uniform: [0.8, 0.9], when: {optimizer.name: [momentum]}}\n",
         {"s.yaml:7", "optimizer.momentum", "'momentum'"}},
        {"  optimizer.learning_rate: {uniform: [0.1, 0.2]}\n",
         {"s.yaml:6", "'optimizer.learning_rate'", "unknown"}},
        {"  optimizer.name: {choice: [adam, adamm]}\n", {"s.yaml:6", "optimizer.name", "adamm"}},
        {"  train.batch_size: {uniform: [16, 64]}\n", {"s.yaml:6", "train.batch_size", "int"}},
        {"  train.batch_size: {int: [0, 64]}\n", {"s.yaml:6", "train.batch_size", "'0'"}},
        {"  model.dropout: {uniform: [0.1, 0.2], grid: 1}\n",
         {"s.yaml:6", "model.dropout", "grid"}},
        {"  model.dropout: {uniform: [0.1, 0.2], choice: [0.1]}\n",
         {"s.yaml:6", "model.dropout", "more than one"}},
        {"  model.dropout: {}\n", {"s.yaml:6", "model.dropout", "no distribution"}},
        {"  model.dropout: {uniform: [0.1, 0.2]}\n  model.dropout: {uniform: [0.1, 0.3]}\n",
         {"s.yaml:7", "model.dropout", "twice"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml, "%s%s", head, cases[i].space);
        pst_sweep_space_t *sp = (pst_sweep_space_t *)1;
        pst_err_t err = {0};
        int rc = pst_sweep_space_load_string(yaml, "s.yaml", &sp, &err);
        if (rc != PST_EINVAL)
            fprintf(stderr, "case %zu: rc %d: %s\n", i, rc, err.msg);
        assert_int_equal(rc, PST_EINVAL);
        assert_null(sp);
        for (int j = 0; j < 3; j++) {
            if (!strstr(err.msg, cases[i].expect[j]))
                fprintf(stderr, "case %zu: '%s' not in: %s\n", i, cases[i].expect[j], err.msg);
            assert_non_null(strstr(err.msg, cases[i].expect[j]));
        }
    }
}

static void expect_load_error(const char *yaml, const char *a, const char *b)
{
    pst_sweep_space_t *sp = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_sweep_space_load_string(yaml, "t.yaml", &sp, &err), PST_EINVAL);
    if (!strstr(err.msg, a) || !strstr(err.msg, b))
        fprintf(stderr, "expected '%s' and '%s' in: %s\n", a, b, err.msg);
    assert_non_null(strstr(err.msg, a));
    assert_non_null(strstr(err.msg, b));
}

static void sweep_level_errors(void **state)
{
    const char *space = "space:\n  model.dropout: {uniform: [0.1, 0.2]}\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "base: b\nmethod: random\nmetric: val.accuracy\ntrails: 5\n%s",
             space);
    expect_load_error(yaml, "t.yaml:4", "'trails'");
    snprintf(yaml, sizeof yaml, "base: b\nmethod: anneal\nmetric: val.accuracy\n%s", space);
    expect_load_error(yaml, "t.yaml:2", "method");
    snprintf(yaml, sizeof yaml, "base: b\nmethod: grid\nmetric: val.accuracy\n%s", space);
    expect_load_error(yaml, "t.yaml:5", "grid: N");
    snprintf(yaml, sizeof yaml, "base: b\nmethod: random\nmetric: val.wobble\ntrials: 3\n%s",
             space);
    expect_load_error(yaml, "val.wobble", "mode");
    snprintf(yaml, sizeof yaml, "base: b\nmethod: random\nmetric: val.accuracy\n%s", space);
    expect_load_error(yaml, "t.yaml", "trials");
    snprintf(yaml, sizeof yaml,
             "base: b\nmethod: hyperband\nmetric: val.accuracy\ntrials: 3\n"
             "hyperband: {max_epochs: 9, etta: 3}\n%s",
             space);
    expect_load_error(yaml, "t.yaml:5", "hyperband.etta");
    snprintf(yaml, sizeof yaml,
             "base: b\nmethod: hyperband\nmetric: val.accuracy\ntrials: 3\n"
             "hyperband: {max_epochs: 9}\n%s  train.epochs: {int: [1, 5]}\n",
             space);
    expect_load_error(yaml, "t.yaml:8", "train.epochs");
    snprintf(yaml, sizeof yaml,
             "base: b\nmethod: hyperband\nmetric: val.accuracy\ntrials: 3\n"
             "hyperband: {min_epochs: 10, max_epochs: 9}\n%s",
             space);
    expect_load_error(yaml, "t.yaml:5", "min_epochs");
    snprintf(yaml, sizeof yaml, "method: random\nmetric: val.accuracy\ntrials: 3\n%s", space);
    expect_load_error(yaml, "t.yaml", "base");
}

/* ---- sampling ---- */

static void sampling_in_bounds_and_log_uniform(void **state)
{
    pst_sweep_space_t *sp =
        load("base: b\nmethod: random\nmetric: val.accuracy\ntrials: 4000\nseed: 7\nspace:\n"
             "  optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n"
             "  model.dropout: {uniform: [0.0, 0.5]}\n"
             "  train.batch_size: {int: [16, 20]}\n"
             "  optimizer.name: {choice: [adam, sgd, momentum, nesterov]}\n"
             "  optimizer.momentum: {uniform: [0.8, 0.99], when: {optimizer.name: [momentum, "
             "nesterov]}}\n");
    pst_sweep_trials_t trials;
    pst_err_t err;
    assert_int_equal(pst_sweep_trials(sp, &trials, &err), PST_OK);
    assert_int_equal(trials.n, 4000);
    int log_bins[4] = {0}, int_counts[5] = {0}, below_median = 0, with_momentum = 0;
    double dropout_sum = 0, log_sum = 0;
    for (int i = 0; i < trials.n; i++) {
        const pst_sweep_trial_t *t = &trials.items[i];
        assert_int_equal(t->id, i);
        double lr = value_of(t, "optimizer.lr"), dropout = value_of(t, "model.dropout");
        double batch = value_of(t, "train.batch_size");
        assert_true(lr >= 1.0e-4 && lr <= 1.0e-2);
        assert_true(dropout >= 0.0 && dropout <= 0.5);
        assert_true(batch >= 16 && batch <= 20 && batch == floor(batch));
        /* Values are "%.9g" texts: they read back and format to the same text. */
        char again[64];
        snprintf(again, sizeof again, "%.9g", lr);
        assert_string_equal(again, pst_sweep_trial_value(t, "optimizer.lr"));
        double l = log10(lr);
        log_sum += l;
        log_bins[l < -3.5 ? 0 : l < -3.0 ? 1 : l < -2.5 ? 2 : 3]++;
        below_median += lr < 1.0e-3;
        dropout_sum += dropout;
        int_counts[(int)batch - 16]++;
        const char *name = pst_sweep_trial_value(t, "optimizer.name");
        bool wants = strcmp(name, "momentum") == 0 || strcmp(name, "nesterov") == 0;
        const char *momentum = pst_sweep_trial_value(t, "optimizer.momentum");
        assert_true(wants == (momentum != NULL));
        with_momentum += momentum != NULL;
        /* Overrides follow declaration order. */
        assert_string_equal(t->overrides[0].key, "optimizer.lr");
        assert_string_equal(t->overrides[3].key, "optimizer.name");
    }
    /* Uniform in log10 space on [-4, -2]: each half-decade holds a quarter (sd 0.0068), the
     * mean is -3 (sd 0.0091) and half lie below 1e-3 (a linear uniform would put 9% there). */
    for (int b = 0; b < 4; b++)
        assert_true(fabs(log_bins[b] / 4000.0 - 0.25) < 0.03);
    assert_true(fabs(log_sum / 4000.0 + 3.0) < 0.04);
    assert_true(fabs(below_median / 4000.0 - 0.5) < 0.03);
    assert_true(fabs(dropout_sum / 4000.0 - 0.25) < 0.012); /* sd 0.0023 */
    for (int v = 0; v < 5; v++)
        assert_true(fabs(int_counts[v] / 4000.0 - 0.2) < 0.03); /* sd 0.0063 */
    assert_true(fabs(with_momentum / 4000.0 - 0.5) < 0.04);
    pst_sweep_trials_fini(&trials);
    pst_sweep_space_destroy(&sp);
}

static bool same_trial(const pst_sweep_trial_t *a, const pst_sweep_trial_t *b)
{
    if (a->n_overrides != b->n_overrides)
        return false;
    for (int i = 0; i < a->n_overrides; i++)
        if (strcmp(a->overrides[i].key, b->overrides[i].key) != 0 ||
            strcmp(a->overrides[i].value, b->overrides[i].value) != 0)
            return false;
    return true;
}

static void sampling_is_deterministic_per_seed(void **state)
{
    pst_sweep_space_t *a = load(brief_space), *b = load(brief_space);
    char other[2048];
    snprintf(other, sizeof other, "%s", brief_space);
    memcpy(strstr(other, "seed: 0"), "seed: 1", 7);
    pst_sweep_space_t *c = load(other);
    pst_sweep_trials_t ta, tb, tc;
    assert_int_equal(pst_sweep_trials(a, &ta, NULL), PST_OK);
    assert_int_equal(pst_sweep_trials(b, &tb, NULL), PST_OK);
    assert_int_equal(pst_sweep_trials(c, &tc, NULL), PST_OK);
    int differ = 0;
    for (int i = 0; i < ta.n; i++) {
        assert_true(same_trial(&ta.items[i], &tb.items[i]));
        differ += !same_trial(&ta.items[i], &tc.items[i]);
        /* Trial i depends on (seed, i) only. */
        pst_sweep_trial_t alone;
        assert_int_equal(pst_sweep_sample(a, i, &alone), PST_OK);
        assert_true(same_trial(&alone, &ta.items[i]));
        pst_sweep_trial_fini(&alone);
    }
    assert_int_equal(differ, ta.n);
    pst_sweep_trials_fini(&ta);
    pst_sweep_trials_fini(&tb);
    pst_sweep_trials_fini(&tc);
    pst_sweep_space_destroy(&a);
    pst_sweep_space_destroy(&b);
    pst_sweep_space_destroy(&c);
}

static void trial_applies_to_config(void **state)
{
    pst_sweep_space_t *sp = load(brief_space);
    pst_sweep_trials_t trials;
    assert_int_equal(pst_sweep_trials(sp, &trials, NULL), PST_OK);
    for (int i = 0; i < trials.n; i++) {
        pst_config_t cfg;
        pst_err_t err;
        pst_config_init(&cfg);
        const pst_sweep_trial_t *t = &trials.items[i];
        assert_int_equal(pst_sweep_trial_apply(t, &cfg, &err), PST_OK);
        assert_true(cfg.optimizer.lr == value_of(t, "optimizer.lr"));
        assert_true(cfg.model.dropout == value_of(t, "model.dropout"));
        assert_int_equal(cfg.train.epochs, (long)value_of(t, "train.epochs"));
        assert_string_equal(cfg.optimizer.name, pst_sweep_trial_value(t, "optimizer.name"));
        const char *hidden = pst_sweep_trial_value(t, "model.hidden");
        assert_int_equal(cfg.model.hidden.n, strcmp(hidden, "[128]") == 0 ? 1 : 2);
        assert_int_equal(cfg.model.hidden.items[0], strcmp(hidden, "[128]") == 0 ? 128 : 256);
        pst_config_fini(&cfg);
    }
    pst_sweep_trials_fini(&trials);
    pst_sweep_space_destroy(&sp);
}

/* ---- grids ---- */

static void grid_counts_with_conditionals(void **state)
{
    pst_sweep_space_t *sp =
        load("base: b\nmethod: grid\nmetric: val.loss\nspace:\n"
             "  optimizer.momentum: {uniform: [0.8, 0.99], grid: 3, when: {optimizer.name: "
             "[momentum, nesterov]}}\n"
             "  optimizer.name: {choice: [adam, momentum, nesterov]}\n"
             "  train.batch_size: {choice: [32, 64]}\n"
             "  optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2], grid: 3}\n");
    long n;
    pst_err_t err;
    assert_int_equal(pst_sweep_grid_size(sp, &n, &err), PST_OK);
    /* (adam + 2 names x 3 momenta) x 2 batch sizes x 3 learning rates. */
    assert_int_equal(n, (1 + 2 * 3) * 2 * 3);
    pst_sweep_trials_t grid;
    assert_int_equal(pst_sweep_trials(sp, &grid, &err), PST_OK);
    assert_int_equal(grid.n, 42);
    int adam = 0, lr_mid = 0, momentum_mid = 0;
    for (int i = 0; i < grid.n; i++) {
        const pst_sweep_trial_t *t = &grid.items[i];
        for (int j = 0; j < i; j++)
            assert_false(same_trial(t, &grid.items[j]));
        const char *name = pst_sweep_trial_value(t, "optimizer.name");
        const char *momentum = pst_sweep_trial_value(t, "optimizer.momentum");
        adam += strcmp(name, "adam") == 0;
        assert_true((strcmp(name, "adam") == 0) == (momentum == NULL));
        const char *lr = pst_sweep_trial_value(t, "optimizer.lr");
        assert_true(strcmp(lr, "0.0001") == 0 || strcmp(lr, "0.001") == 0 ||
                    strcmp(lr, "0.01") == 0); /* log-spaced */
        lr_mid += strcmp(lr, "0.001") == 0;
        momentum_mid += momentum && strcmp(momentum, "0.895") == 0; /* evenly spaced */
    }
    assert_int_equal(adam, 6);
    assert_int_equal(lr_mid, 14);
    assert_int_equal(momentum_mid, 2 * 2 * 3);
    pst_sweep_trials_fini(&grid);
    pst_sweep_space_destroy(&sp);

    /* A chain: c needs b = 2, b needs a = y; ints deduplicated. */
    sp = load("base: b\nmethod: grid\nmetric: val.loss\nspace:\n"
              "  train.patience: {int: [0, 2], grid: 7, when: {train.epochs: 2}}\n"
              "  train.epochs: {int: [1, 3], grid: 5, when: {optimizer.name: sgd}}\n"
              "  optimizer.name: {choice: [adam, sgd]}\n");
    assert_int_equal(sp->params[0].n_values, 3);
    assert_int_equal(sp->params[1].n_values, 3);
    assert_int_equal(pst_sweep_grid_size(sp, &n, &err), PST_OK);
    assert_int_equal(n, 1 + (2 + 3)); /* adam; sgd with epochs 1, 3, and 2 x 3 patiences */
    pst_sweep_space_destroy(&sp);
}

/* ---- scheduling ---- */

static const char *asha_space = "base: b\nmethod: hyperband\nmetric: val.accuracy\ntrials: 27\n"
                                "seed: 3\nhyperband: {min_epochs: 1, max_epochs: 9, eta: 3}\n"
                                "space:\n"
                                "  optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}\n"
                                "  model.dropout: {uniform: [0.0, 0.5]}\n"
                                "  model.hidden: {choice: [\"[128]\", \"[256, 128]\"]}\n";

/* The synthetic objective: a quality per configuration, approached as epochs grow, so rankings
 * agree at every rung. */
static double quality(const pst_sweep_trial_t *t)
{
    double l = log10(value_of(t, "optimizer.lr")) + 2.5, d = value_of(t, "model.dropout") - 0.1;
    bool wide = strcmp(pst_sweep_trial_value(t, "model.hidden"), "[256, 128]") == 0;
    return -l * l - 2 * d * d + (wide ? 0.3 : 0.0);
}

static double objective(const pst_sweep_sched_t *s, int trial, long epochs)
{
    return quality(pst_sweep_get_trial(s, trial)) - 1.0 / (double)epochs;
}

static int known_best(const pst_sweep_sched_t *s)
{
    int best = 0;
    for (int t = 1; t < pst_sweep_n_trials(s); t++)
        if (quality(pst_sweep_get_trial(s, t)) > quality(pst_sweep_get_trial(s, best)))
            best = t;
    return best;
}

/* Rank of trial among trials whose quality is known to the test, by quality. */
static int quality_rank(const pst_sweep_sched_t *s, int trial, const bool *among)
{
    int rank = 0;
    double q = quality(pst_sweep_get_trial(s, trial));
    for (int t = 0; t < pst_sweep_n_trials(s); t++)
        rank += among[t] && t != trial && quality(pst_sweep_get_trial(s, t)) > q;
    return rank;
}

static void report(pst_sweep_sched_t *s, const pst_sweep_job_t *job, bool resume)
{
    long spent = resume ? job->epochs - job->from_epochs : job->epochs;
    assert_int_equal(pst_sweep_report(s, job->trial, job->rung,
                                      objective(s, job->trial, job->epochs), spent, NULL),
                     PST_OK);
}

static void asha_promotes_exactly_the_top_third(void **state)
{
    pst_sweep_space_t *sp = load(asha_space);
    pst_err_t err;
    pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 10, &err);
    assert_non_null(s);
    assert_int_equal(pst_sweep_n_rungs(s), 3);
    assert_int_equal(pst_sweep_rung_epochs(s, 0), 1);
    assert_int_equal(pst_sweep_rung_epochs(s, 1), 3);
    assert_int_equal(pst_sweep_rung_epochs(s, 2), 9);
    /* As many worker groups as trials: every wave is handed out before any result returns. */
    pst_sweep_job_t jobs[27], job;
    int waves = 0, wave_size[3] = {0};
    for (;;) {
        int n = 0;
        pst_sweep_action_t a;
        while ((a = pst_sweep_next(s, &job)) == PST_SWEEP_RUN)
            jobs[n++] = job;
        if (n == 0) {
            assert_int_equal(a, PST_SWEEP_DONE);
            break;
        }
        assert_int_equal(a, PST_SWEEP_WAIT);
        assert_true(waves < 3);
        bool known[27] = {false};
        for (int t = 0; t < 27; t++)
            known[t] = pst_sweep_trial_rungs_done(s, t) >= waves;
        for (int i = 0; i < n; i++) {
            assert_int_equal(jobs[i].rung, waves);
            assert_int_equal(jobs[i].epochs, pst_sweep_rung_epochs(s, waves));
            assert_int_equal(jobs[i].from_epochs, waves ? pst_sweep_rung_epochs(s, waves - 1) : 0);
            /* Exactly the best of those that ran the previous rung. */
            if (waves > 0)
                assert_true(quality_rank(s, jobs[i].trial, known) < n);
            assert_int_equal(pst_sweep_trial_state(s, jobs[i].trial), PST_SWEEP_RUNNING);
        }
        for (int i = n - 1; i >= 0; i--)
            report(s, &jobs[i], true);
        wave_size[waves++] = n;
    }
    assert_int_equal(wave_size[0], 27);
    assert_int_equal(wave_size[1], 9);
    assert_int_equal(wave_size[2], 3);
    int completed = 0, stopped = 0;
    for (int t = 0; t < 27; t++) {
        pst_sweep_state_t st = pst_sweep_trial_state(s, t);
        completed += st == PST_SWEEP_COMPLETED;
        stopped += st == PST_SWEEP_STOPPED;
    }
    assert_int_equal(completed, 3);
    assert_int_equal(stopped, 24);
    /* Resuming promoted trials: 27 x 1 + 9 x (3 - 1) + 3 x (9 - 3), against 27 x 9. */
    assert_int_equal(pst_sweep_epochs_spent(s), 63);
    assert_int_equal(pst_sweep_full_epochs(s), 243);
    int best;
    double metric;
    assert_int_equal(pst_sweep_best(s, &best, &metric), PST_OK);
    assert_int_equal(best, known_best(s));
    assert_true(metric == objective(s, best, 9));
    assert_int_equal(pst_sweep_trial_epochs(s, best), 9);
    pst_sweep_sched_destroy(&s);
    pst_sweep_sched_destroy(&s);
    pst_sweep_space_destroy(&sp);
}

/* Runs a sweep with `workers` groups finishing in a seeded random order; checks every promotion
 * against the asynchronous rule. Stops after max_reports reports (-1: to the end); running jobs
 * are then left unreported, as in a killed coordinator. `finished` marks (trial, rung) done. */
typedef struct sim {
    int workers;
    pst_rng_t order;
    bool finished[64][PST_SWEEP_MAX_RUNGS];
    int promotions_before_last_start;
    int reports;
} sim_t;

static void check_promotion(const pst_sweep_sched_t *s, const pst_sweep_job_t *job)
{
    int k = job->rung - 1;
    bool at_k[64] = {false};
    int n_k = 0;
    for (int t = 0; t < pst_sweep_n_trials(s); t++) {
        at_k[t] = pst_sweep_trial_rungs_done(s, t) > k;
        n_k += at_k[t];
    }
    assert_true(at_k[job->trial]);
    assert_true(quality_rank(s, job->trial, at_k) < n_k / 3);
}

static void simulate(pst_sweep_sched_t *s, sim_t *sim, int max_reports)
{
    pst_sweep_job_t running[16], job;
    int n_running = 0, started = 0;
    for (;;) {
        while (n_running < sim->workers && pst_sweep_next(s, &job) == PST_SWEEP_RUN) {
            assert_false(sim->finished[job.trial][job.rung]);
            if (job.rung > 0) {
                check_promotion(s, &job);
                sim->promotions_before_last_start += started < pst_sweep_n_trials(s);
            }
            started += job.rung == 0;
            running[n_running++] = job;
        }
        if (n_running == 0 || sim->reports == max_reports)
            return;
        int i = (int)pst_rng_below(&sim->order, (uint64_t)n_running);
        report(s, &running[i], false);
        sim->finished[running[i].trial][running[i].rung] = true;
        sim->reports++;
        running[i] = running[--n_running];
    }
}

static void check_finished_sweep(pst_sweep_sched_t *s)
{
    pst_sweep_job_t job;
    assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_DONE);
    int n = pst_sweep_n_trials(s);
    for (int t = 0; t < n; t++) {
        pst_sweep_state_t st = pst_sweep_trial_state(s, t);
        assert_true(st == PST_SWEEP_COMPLETED || st == PST_SWEEP_STOPPED);
    }
    /* The final top floor(n_k / 3) of every rung went on to the next one. */
    for (int k = 0; k + 1 < pst_sweep_n_rungs(s); k++) {
        bool at_k[64] = {false};
        int n_k = 0;
        for (int t = 0; t < n; t++)
            n_k += at_k[t] = pst_sweep_trial_rungs_done(s, t) > k;
        for (int t = 0; t < n; t++)
            if (at_k[t] && quality_rank(s, t, at_k) < n_k / 3)
                assert_true(pst_sweep_trial_rungs_done(s, t) > k + 1);
    }
    int best;
    double metric;
    assert_int_equal(pst_sweep_best(s, &best, &metric), PST_OK);
    assert_int_equal(best, known_best(s));
    assert_true(metric == objective(s, best, 9));
    /* Retrained promotions: still far below training all 27 for 9 epochs. */
    assert_true(pst_sweep_epochs_spent(s) * 2 < pst_sweep_full_epochs(s));
}

static void asha_is_asynchronous(void **state)
{
    pst_sweep_space_t *sp = load(asha_space);
    for (int workers = 1; workers <= 4; workers += 3) {
        pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 10, NULL);
        sim_t sim = {.workers = workers};
        pst_rng_init(&sim.order, 11);
        simulate(s, &sim, -1);
        /* Promotions happen while new trials are still to start. */
        assert_true(sim.promotions_before_last_start > 0);
        check_finished_sweep(s);
        long spent = 0;
        for (int t = 0; t < 27; t++)
            spent += pst_sweep_trial_epochs(s, t);
        assert_int_equal(spent, pst_sweep_epochs_spent(s));
        pst_sweep_sched_destroy(&s);
    }
    pst_sweep_space_destroy(&sp);
}

static void grid_and_random_run_each_trial_once(void **state)
{
    pst_sweep_space_t *sp = load("base: b\nmethod: grid\nmetric: val.loss\nspace:\n"
                                 "  model.dropout: {uniform: [0.0, 0.4], grid: 3}\n"
                                 "  train.epochs: {choice: [2, 5]}\n");
    pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 10, NULL);
    assert_int_equal(pst_sweep_n_trials(s), 6);
    assert_int_equal(pst_sweep_n_rungs(s), 1);
    pst_sweep_job_t job;
    for (int t = 0; t < 6; t++) {
        assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_RUN);
        assert_int_equal(job.trial, t);
        assert_int_equal(job.rung, 0);
        assert_int_equal(job.epochs, (long)value_of(pst_sweep_get_trial(s, t), "train.epochs"));
    }
    assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_WAIT);
    pst_err_t err;
    assert_int_equal(pst_sweep_report(s, 9, 0, 1.0, 1, &err), PST_ERANGE);
    for (int t = 0; t < 6; t++) {
        double dropout = value_of(pst_sweep_get_trial(s, t), "model.dropout");
        double loss = t == 4 ? NAN : fabs(dropout - 0.2) + 0.01 * t; /* trial 4 diverges */
        long epochs = (long)value_of(pst_sweep_get_trial(s, t), "train.epochs");
        assert_int_equal(pst_sweep_report(s, t, 0, loss, epochs, &err), PST_OK);
    }
    assert_int_equal(pst_sweep_report(s, 0, 0, 1.0, 1, &err), PST_ESTATE);
    assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_DONE);
    assert_int_equal(pst_sweep_trial_state(s, 4), PST_SWEEP_FAILED);
    assert_int_equal(pst_sweep_trial_state(s, 2), PST_SWEEP_COMPLETED);
    assert_int_equal(pst_sweep_epochs_spent(s), 3 * 2 + 3 * 5);
    assert_int_equal(pst_sweep_full_epochs(s), 3 * 2 + 3 * 5);
    int best;
    double metric;
    assert_int_equal(pst_sweep_best(s, &best, &metric), PST_OK);
    assert_string_equal(pst_sweep_trial_value(pst_sweep_get_trial(s, best), "model.dropout"),
                        "0.2");
    assert_int_equal(best, 2); /* dropout 0.2 with 2 epochs (grid order: epochs vary fastest) */
    pst_sweep_sched_destroy(&s);
    pst_sweep_space_destroy(&sp);

    sp = load("base: b\nmethod: random\nmetric: val.loss\ntrials: 5\nspace:\n"
              "  model.dropout: {uniform: [0.0, 0.4]}\n");
    s = pst_sweep_sched_new(sp, 7, NULL);
    for (int t = 0; t < 5; t++) {
        assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_RUN);
        assert_int_equal(job.epochs, 7);
        pst_config_t cfg;
        pst_config_init(&cfg);
        assert_int_equal(pst_sweep_job_apply(s, &job, &cfg, NULL), PST_OK);
        assert_int_equal(cfg.train.epochs, 7);
        assert_true(cfg.model.dropout == value_of(pst_sweep_get_trial(s, t), "model.dropout"));
        pst_config_fini(&cfg);
    }
    assert_int_equal(pst_sweep_full_epochs(s), 35);
    pst_sweep_sched_destroy(&s);
    pst_sweep_space_destroy(&sp);
}

/* ---- results and resume ---- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sweep_test.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void resume_repeats_no_finished_job(void **state)
{
    const char *names[2] = {"results.json", "results.csv"};
    pst_sweep_space_t *sp = load(asha_space);
    for (int f = 0; f < 2; f++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[f]);
        pst_err_t err;
        pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 10, NULL);
        sim_t sim = {.workers = 3};
        pst_rng_init(&sim.order, 5 + f);
        simulate(s, &sim, 20);
        assert_int_equal(pst_sweep_write_results(s, path, &err), PST_OK);
        long spent = pst_sweep_epochs_spent(s);
        int running = 0;
        for (int t = 0; t < 27; t++)
            running += pst_sweep_trial_state(s, t) == PST_SWEEP_RUNNING;
        assert_int_equal(running, 3); /* the coordinator dies with three jobs out */
        pst_sweep_sched_destroy(&s);

        s = pst_sweep_sched_new(sp, 10, NULL);
        assert_int_equal(pst_sweep_load_results(s, path, &err), PST_OK);
        assert_int_equal(pst_sweep_epochs_spent(s), spent);
        int done = 0;
        for (int t = 0; t < 27; t++)
            done += pst_sweep_trial_rungs_done(s, t);
        assert_int_equal(done, 20);
        /* A second load would record the same jobs twice. */
        assert_int_equal(pst_sweep_load_results(s, path, &err), PST_ESTATE);
        simulate(s, &sim, -1); /* asserts no finished (trial, rung) is handed out again */
        assert_true(sim.reports > 20);
        check_finished_sweep(s);
        pst_sweep_sched_destroy(&s);
    }
    pst_sweep_space_destroy(&sp);
}

static pst_sweep_sched_t *finished_sweep(const pst_sweep_space_t *sp)
{
    pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 10, NULL);
    sim_t sim = {.workers = 2};
    pst_rng_init(&sim.order, 1);
    simulate(s, &sim, 20);
    /* One more job fails. */
    pst_sweep_job_t job;
    while (pst_sweep_next(s, &job) == PST_SWEEP_RUN)
        if (job.rung == 0)
            break;
    assert_int_equal(pst_sweep_report(s, job.trial, job.rung, NAN, 1, NULL), PST_OK);
    assert_int_equal(pst_sweep_trial_state(s, job.trial), PST_SWEEP_FAILED);
    return s;
}

static void results_round_trip(void **state)
{
    pst_sweep_space_t *sp = load(asha_space);
    pst_sweep_sched_t *s = finished_sweep(sp);
    char *csv = pst_sweep_results_csv(s), *json = pst_sweep_results_json(s);
    assert_non_null(csv);
    assert_non_null(json);
    assert_non_null(strstr(csv, "trial,state,epochs_spent,final,val.accuracy@1,val.accuracy@3,"
                                "val.accuracy@9,optimizer.lr,model.dropout,model.hidden\n"));
    assert_non_null(strstr(csv, ",\"[256, 128]\"\n"));
    assert_non_null(strstr(csv, ",failed,"));
    assert_non_null(strstr(csv, ",nan,"));
    assert_non_null(strstr(json, "\"state\":\t\"running\""));
    assert_non_null(strstr(json, "\"state\":\t\"stopped\""));
    const char *texts[2] = {csv, json};
    for (int f = 0; f < 2; f++) {
        pst_sweep_sched_t *back = pst_sweep_sched_new(sp, 10, NULL);
        pst_err_t err;
        assert_int_equal(pst_sweep_load_results_text(back, texts[f], "r", &err), PST_OK);
        for (int t = 0; t < 27; t++) {
            pst_sweep_state_t st = pst_sweep_trial_state(s, t);
            /* A running job is not finished: it reads back as not started at that rung. */
            if (st != PST_SWEEP_RUNNING)
                assert_int_equal(pst_sweep_trial_state(back, t), st);
            assert_int_equal(pst_sweep_trial_epochs(back, t), pst_sweep_trial_epochs(s, t));
            assert_int_equal(pst_sweep_trial_rungs_done(back, t), pst_sweep_trial_rungs_done(s, t));
            for (int k = 0; k < pst_sweep_trial_rungs_done(s, t); k++) {
                double a = pst_sweep_trial_metric(s, t, k), b = pst_sweep_trial_metric(back, t, k);
                if (!(a == b || (isnan(a) && isnan(b))))
                    fprintf(stderr, "f %d t %d k %d: %.17g %.17g\n", f, t, k, a, b);
                assert_true(a == b || (isnan(a) && isnan(b)));
            }
        }
        /* With no job out, both formats read back to the very same text. */
        char *csv2 = pst_sweep_results_csv(back), *json2 = pst_sweep_results_json(back);
        pst_sweep_sched_t *again = pst_sweep_sched_new(sp, 10, NULL);
        assert_int_equal(pst_sweep_load_results_text(again, f ? json2 : csv2, "r2", &err), PST_OK);
        char *csv3 = pst_sweep_results_csv(again), *json3 = pst_sweep_results_json(again);
        assert_string_equal(csv2, csv3);
        assert_string_equal(json2, json3);
        free(csv2);
        free(json2);
        free(csv3);
        free(json3);
        pst_sweep_sched_destroy(&again);
        pst_sweep_sched_destroy(&back);
    }
    /* Results of another sweep (another seed draws other values) are refused. */
    char other_yaml[1024];
    snprintf(other_yaml, sizeof other_yaml, "%s", asha_space);
    memcpy(strstr(other_yaml, "seed: 3"), "seed: 4", 7);
    pst_sweep_space_t *other = load(other_yaml);
    for (int f = 0; f < 2; f++) {
        pst_sweep_sched_t *o = pst_sweep_sched_new(other, 10, NULL);
        pst_err_t err;
        assert_int_equal(pst_sweep_load_results_text(o, texts[f], "old", &err), PST_EINVAL);
        assert_non_null(strstr(err.msg, "old"));
        assert_non_null(strstr(err.msg, "changed"));
        pst_sweep_sched_destroy(&o);
    }
    pst_sweep_space_destroy(&other);
    free(csv);
    free(json);
    pst_sweep_sched_destroy(&s);
    pst_sweep_space_destroy(&sp);
}

static void best_config_is_ready_to_run(void **state)
{
    pst_sweep_space_t *sp = load(asha_space);
    pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 10, NULL);
    pst_config_t cfg, back;
    pst_err_t err;
    char path[128];
    snprintf(path, sizeof path, "%s/best.yaml", tmpdir);
    pst_config_init(&cfg);
    assert_int_equal(pst_config_load_file(&cfg, EXAMPLES "/fashion_mlp.yaml", &err), PST_OK);
    assert_int_equal(pst_sweep_write_best_config(s, &cfg, path, &err), PST_ENOTFOUND);
    sim_t sim = {.workers = 2};
    pst_rng_init(&sim.order, 2);
    simulate(s, &sim, -1);
    assert_int_equal(pst_sweep_write_best_config(s, &cfg, path, &err), PST_OK);
    int best = known_best(s);
    const pst_sweep_trial_t *t = pst_sweep_get_trial(s, best);
    pst_config_init(&back);
    assert_int_equal(pst_config_load_file(&back, path, &err), PST_OK);
    assert_true(back.optimizer.lr == value_of(t, "optimizer.lr"));
    assert_true(back.model.dropout == value_of(t, "model.dropout"));
    bool wide = strcmp(pst_sweep_trial_value(t, "model.hidden"), "[256, 128]") == 0;
    assert_int_equal(back.model.hidden.n, wide ? 2 : 1);
    assert_int_equal(back.train.epochs, 9);
    assert_string_equal(back.name, "fashion-mlp"); /* the rest is the base config */
    assert_string_equal(back.data.train, cfg.data.train);
    assert_true(back.data.val_fraction == 0.1);
    pst_config_fini(&back);
    pst_config_fini(&cfg);
    pst_sweep_sched_destroy(&s);
    pst_sweep_space_destroy(&sp);
}

static void example_sweep_loads(void **state)
{
    pst_sweep_space_t *sp = NULL;
    pst_err_t err;
    assert_int_equal(pst_sweep_space_load_file(EXAMPLES "/sweep_fashion.yaml", &sp, &err), PST_OK);
    assert_int_equal(sp->method, PST_SWEEP_HYPERBAND);
    assert_string_equal(sp->metric, "val.accuracy");
    assert_true(sp->maximize);
    assert_true(pst_sweep_space_find(sp, "optimizer.lr") >= 0);
    assert_true(pst_sweep_space_find(sp, "model.hidden") >= 0);
    assert_true(pst_sweep_space_find(sp, "model.dropout") >= 0);
    assert_true(pst_sweep_space_find(sp, "train.batch_size") >= 0);
    char base[256];
    snprintf(base, sizeof base, "%s/../%s", EXAMPLES, sp->base);
    pst_config_t cfg;
    pst_config_init(&cfg);
    assert_int_equal(pst_config_load_file(&cfg, base, &err), PST_OK);
    pst_sweep_sched_t *s = pst_sweep_sched_new(sp, cfg.train.epochs, &err);
    assert_non_null(s);
    assert_int_equal(pst_sweep_n_rungs(s), 3);
    assert_int_equal(pst_sweep_full_epochs(s), 27 * 18);
    pst_sweep_job_t job;
    assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_RUN);
    assert_int_equal(pst_sweep_job_apply(s, &job, &cfg, &err), PST_OK);
    assert_int_equal(cfg.train.epochs, 2);
    pst_config_fini(&cfg);
    pst_sweep_sched_destroy(&s);
    pst_sweep_space_destroy(&sp);
    assert_int_equal(pst_sweep_space_load_file(EXAMPLES "/missing.yaml", &sp, &err), PST_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_every_distribution),
        cmocka_unit_test(parses_hyperband_and_mode),
        cmocka_unit_test(errors_name_key_and_line),
        cmocka_unit_test(sweep_level_errors),
        cmocka_unit_test(sampling_in_bounds_and_log_uniform),
        cmocka_unit_test(sampling_is_deterministic_per_seed),
        cmocka_unit_test(trial_applies_to_config),
        cmocka_unit_test(grid_counts_with_conditionals),
        cmocka_unit_test(asha_promotes_exactly_the_top_third),
        cmocka_unit_test(asha_is_asynchronous),
        cmocka_unit_test(grid_and_random_run_each_trial_once),
        cmocka_unit_test(resume_repeats_no_finished_job),
        cmocka_unit_test(results_round_trip),
        cmocka_unit_test(best_config_is_ready_to_run),
        cmocka_unit_test(example_sweep_loads),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
