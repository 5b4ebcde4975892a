/* Tests for app/sweep/sweep_tpe.c and the schedulers around it: TPE proposals reproducible per
 * seed and concentrated where a known objective is best, conditions kept, the median pruner's
 * verdicts, TPE over rungs, and resuming a TPE sweep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "app/sweep/sweep.h"
#include "app/sweep/sweep_tpe.h"
#include "common/log.h"

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

/* A 1-D objective, best at lr = 10^-2.5, to minimise (mode: min, metric val.loss). */
static double loss_1d(const pst_sweep_trial_t *t)
{
    double d = log10(value_of(t, "optimizer.lr")) + 2.5;
    return d * d;
}

/* A 2-D objective with a narrow valley, best at (0.3, 0.7). */
static double loss_2d(const pst_sweep_trial_t *t)
{
    double x = value_of(t, "model.dropout"), y = value_of(t, "optimizer.momentum");
    return (x - 0.3) * (x - 0.3) + 4 * (y - 0.7) * (y - 0.7);
}

static char *space_text(const char *method, int trials, int seed, const char *extra,
                        const char *params)
{
    char *text = malloc(4096);
    snprintf(text, 4096,
             "base: b.yaml\nmethod: %s\nmetric: val.loss\nmode: min\ntrials: %d\nseed: %d\n%s"
             "space:\n%s",
             method, trials, seed, extra, params);
    return text;
}

static const char *space_1d = "  optimizer.lr: {log_uniform: [1.0e-5, 1.0]}\n";
static const char *space_2d = "  model.dropout: {uniform: [0.0, 0.9]}\n"
                              "  optimizer.momentum: {uniform: [0.0, 0.99]}\n";

/* Runs a whole sweep one job at a time, as a local run does; returns the best loss. The trials'
 * value texts are appended to log (when not NULL). */
static double run_sweep(pst_sweep_space_t *sp, double (*loss)(const pst_sweep_trial_t *), char *log,
                        size_t cap)
{
    pst_err_t err = {0};
    pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 3, &err);
    assert_non_null(s);
    pst_sweep_job_t job;
    while (pst_sweep_next(s, &job) == PST_SWEEP_RUN) {
        const pst_sweep_trial_t *t = pst_sweep_get_trial(s, job.trial);
        assert_non_null(t);
        double v = loss(t) + 0.001 * (double)job.epochs; /* longer rungs differ a little */
        assert_int_equal(pst_sweep_report(s, job.trial, job.rung, v, job.epochs, &err), PST_OK);
        for (int i = 0; log && i < t->n_overrides; i++) {
            size_t len = strlen(log);
            snprintf(log + len, cap - len, "%d:%s=%s;", t->id, t->overrides[i].key,
                     t->overrides[i].value);
        }
    }
    assert_int_equal(pst_sweep_n_created(s), sp->trials);
    int best;
    double metric;
    assert_int_equal(pst_sweep_best(s, &best, &metric), PST_OK);
    pst_sweep_sched_destroy(&s);
    return metric;
}

static double best_of(const char *method, int trials, int seed, const char *extra,
                      const char *params, double (*loss)(const pst_sweep_trial_t *))
{
    char *text = space_text(method, trials, seed, extra, params);
    pst_sweep_space_t *sp = load(text);
    double best = run_sweep(sp, loss, NULL, 0);
    pst_sweep_space_destroy(&sp);
    free(text);
    return best;
}

static void same_seed_same_trials(void **state)
{
    (void)state;
    const char *variants[] = {"", "tpe: {multivariate: true}\n"};
    for (int v = 0; v < 2; v++) {
        char *logs[3];
        for (int r = 0; r < 3; r++) {
            char *text = space_text("tpe", 30, r < 2 ? 7 : 8, variants[v], space_2d);
            pst_sweep_space_t *sp = load(text);
            logs[r] = calloc(1, 1 << 16);
            run_sweep(sp, loss_2d, logs[r], 1 << 16);
            pst_sweep_space_destroy(&sp);
            free(text);
        }
        assert_true(strlen(logs[0]) > 1000);
        assert_string_equal(logs[0], logs[1]); /* the same texts, bit for bit */
        assert_string_not_equal(logs[0], logs[2]);
        for (int r = 0; r < 3; r++)
            free(logs[r]);
    }
}

/* Trials after the startup ones cluster around the optimum: within half a decade of it, a
 * window random search hits one time in five. */
static void proposals_concentrate_at_the_optimum(void **state)
{
    (void)state;
    for (int seed = 0; seed < 5; seed++) {
        char *text = space_text("tpe", 40, seed, "tpe: {startup_trials: 10}\n", space_1d);
        pst_sweep_space_t *sp = load(text);
        pst_err_t err = {0};
        pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 1, &err);
        pst_sweep_job_t job;
        int near = 0, late = 0;
        while (pst_sweep_next(s, &job) == PST_SWEEP_RUN) {
            const pst_sweep_trial_t *t = pst_sweep_get_trial(s, job.trial);
            double lr = value_of(t, "optimizer.lr");
            assert_true(lr >= 1.0e-5 && lr <= 1.0);
            if (job.trial >= 20) {
                late++;
                near += fabs(log10(lr) + 2.5) < 0.5;
            }
            pst_sweep_report(s, job.trial, 0, loss_1d(t), 1, &err);
        }
        assert_int_equal(late, 20);
        assert_true(near >= 8); /* twice what random search expects (4) */
        pst_sweep_sched_destroy(&s);
        pst_sweep_space_destroy(&sp);
        free(text);
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Over seven seeds at an equal budget, TPE's median best is better than random search's, and it
 * wins on most seeds, on the 1-D and the 2-D objective, in both variants. */
static void tpe_beats_random_at_equal_budget(void **state)
{
    (void)state;
    struct {
        const char *params;
        double (*loss)(const pst_sweep_trial_t *);
        const char *extra;
    } cases[] = {{space_1d, loss_1d, ""},
                 {space_2d, loss_2d, ""},
                 {space_2d, loss_2d, "tpe: {multivariate: true}\n"}};
    enum { SEEDS = 7 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double tpe[SEEDS], rnd[SEEDS];
        int wins = 0;
        for (int seed = 0; seed < SEEDS; seed++) {
            tpe[seed] = best_of("tpe", 40, seed, cases[c].extra, cases[c].params, cases[c].loss);
            rnd[seed] = best_of("random", 40, seed, "", cases[c].params, cases[c].loss);
            wins += tpe[seed] < rnd[seed];
        }
        qsort(tpe, SEEDS, sizeof *tpe, compare_double);
        qsort(rnd, SEEDS, sizeof *rnd, compare_double);
        printf("case %zu: median best tpe %.6g random %.6g, tpe wins %d of %d\n", c, tpe[SEEDS / 2],
               rnd[SEEDS / 2], wins, SEEDS);
        assert_true(tpe[SEEDS / 2] < rnd[SEEDS / 2]);
        assert_true(wins >= 5);
    }
}

/* A conditional parameter is set exactly when its condition holds, in TPE's proposals too. */
static void conditions_hold_in_proposals(void **state)
{
    (void)state;
    const char *params = "  optimizer.name: {choice: [adam, momentum]}\n"
                         "  optimizer.momentum: {uniform: [0.5, 0.99], when: "
                         "{optimizer.name: [momentum]}}\n"
                         "  optimizer.lr: {log_uniform: [1.0e-5, 1.0]}\n";
    for (int v = 0; v < 2; v++) {
        char *text = space_text("tpe", 40, 3, v ? "tpe: {multivariate: true}\n" : "", params);
        pst_sweep_space_t *sp = load(text);
        pst_err_t err = {0};
        pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 1, &err);
        pst_sweep_job_t job;
        int momentum = 0;
        while (pst_sweep_next(s, &job) == PST_SWEEP_RUN) {
            const pst_sweep_trial_t *t = pst_sweep_get_trial(s, job.trial);
            const char *name = pst_sweep_trial_value(t, "optimizer.name");
            assert_non_null(name);
            bool is_momentum = strcmp(name, "momentum") == 0;
            momentum += is_momentum && job.trial >= 20;
            assert_int_equal(pst_sweep_trial_value(t, "optimizer.momentum") != NULL, is_momentum);
            /* momentum pays, and more so near 0.9 */
            double loss =
                loss_1d(t) + (is_momentum ? fabs(value_of(t, "optimizer.momentum") - 0.9) : 1.0);
            pst_sweep_report(s, job.trial, 0, loss, 1, &err);
        }
        assert_true(momentum >= 14); /* of the last 20: the better branch is learnt */
        pst_sweep_sched_destroy(&s);
        pst_sweep_space_destroy(&sp);
        free(text);
    }
}

/* Rungs of 1, 2, 4 epochs; with startup_trials 2 the third result at rung 0 is judged. */
static void median_pruner_stops_below_the_median(void **state)
{
    (void)state;
    char *text = space_text("random", 6, 1,
                            "rungs: {min_epochs: 1, max_epochs: 4, eta: 2}\n"
                            "pruner: {rule: median, startup_trials: 2}\n",
                            space_1d);
    pst_sweep_space_t *sp = load(text);
    assert_int_equal(sp->pruner, PST_SWEEP_PRUNE_MEDIAN);
    pst_err_t err = {0};
    pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 1, &err);
    assert_int_equal(pst_sweep_n_rungs(s), 3);
    /* rung-0 losses in report order; the median of those so far decides each one */
    const double losses[6] = {0.5, 0.4, 0.9, 0.3, 0.45, 0.8};
    const pst_sweep_state_t expect[6] = {PST_SWEEP_PROMOTED, PST_SWEEP_PROMOTED, PST_SWEEP_STOPPED,
                                         PST_SWEEP_PROMOTED, PST_SWEEP_PROMOTED, PST_SWEEP_STOPPED};
    pst_sweep_job_t job;
    for (int i = 0; i < 6; i++) {
        /* start every trial at rung 0 before any promotion: report as they are handed out */
        assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_RUN);
        if (job.rung != 0) { /* a promotion comes first: finish it at once, well */
            assert_int_equal(pst_sweep_report(s, job.trial, job.rung, 0.0, job.epochs, &err),
                             PST_OK);
            i--;
            continue;
        }
        assert_int_equal(job.trial, i);
        assert_int_equal(pst_sweep_report(s, i, 0, losses[i], 1, &err), PST_OK);
        /* 0.4 against {0.5, 0.4}: median 0.45, goes on; 0.9 against three: median 0.5,
         * stopped; 0.45 against five: median 0.45, goes on; 0.8 against six: 0.475, stopped */
        assert_int_equal(pst_sweep_trial_state(s, i), expect[i]);
    }
    while (pst_sweep_next(s, &job) == PST_SWEEP_RUN)
        assert_int_equal(pst_sweep_report(s, job.trial, job.rung, 0.0, job.epochs, &err), PST_OK);
    for (int i = 0; i < 6; i++) {
        bool pruned = expect[i] == PST_SWEEP_STOPPED;
        assert_int_equal(pst_sweep_trial_rungs_done(s, i), pruned ? 1 : 3);
        assert_int_equal(pst_sweep_trial_state(s, i),
                         pruned ? PST_SWEEP_STOPPED : PST_SWEEP_COMPLETED);
    }
    assert_int_equal(pst_sweep_epochs_spent(s), 6 * 1 + 4 * (2 + 4));
    pst_sweep_sched_destroy(&s);
    pst_sweep_space_destroy(&sp);
    free(text);
}

/* TPE proposing, successive halving pruning: fewer epochs than training every trial fully, and
 * a best value as good as TPE alone at the same number of trials. */
static void tpe_with_rungs_spends_fewer_epochs(void **state)
{
    (void)state;
    for (int seed = 0; seed < 3; seed++) {
        char *text = space_text("tpe", 30, seed, "rungs: {min_epochs: 1, max_epochs: 9, eta: 3}\n",
                                space_1d);
        pst_sweep_space_t *sp = load(text);
        pst_err_t err = {0};
        pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 1, &err);
        pst_sweep_job_t job;
        while (pst_sweep_next(s, &job) == PST_SWEEP_RUN)
            pst_sweep_report(s, job.trial, job.rung,
                             loss_1d(pst_sweep_get_trial(s, job.trial)) + 0.01 / job.epochs,
                             job.epochs, &err);
        assert_int_equal(pst_sweep_n_created(s), 30);
        assert_true(pst_sweep_epochs_spent(s) < pst_sweep_full_epochs(s) / 2);
        int best;
        double metric;
        assert_int_equal(pst_sweep_best(s, &best, &metric), PST_OK);
        assert_int_equal(pst_sweep_trial_rungs_done(s, best), 3);
        assert_true(metric < 0.1);
        pst_sweep_sched_destroy(&s);
        pst_sweep_space_destroy(&sp);
        free(text);
    }
}

/* A TPE sweep written to its results table half way and resumed proposes exactly the trials of
 * the uninterrupted sweep. */
static void resumed_tpe_sweep_proposes_the_same_trials(void **state)
{
    (void)state;
    for (int json = 0; json < 2; json++) {
        char *text = space_text("tpe", 30, 5, "tpe: {startup_trials: 5}\n", space_2d);
        pst_sweep_space_t *sp = load(text);
        char *whole = calloc(1, 1 << 16), *resumed = calloc(1, 1 << 16);
        run_sweep(sp, loss_2d, whole, 1 << 16);

        pst_err_t err = {0};
        pst_sweep_sched_t *s = pst_sweep_sched_new(sp, 3, &err);
        pst_sweep_job_t job;
        for (int i = 0; i < 12; i++) {
            assert_int_equal(pst_sweep_next(s, &job), PST_SWEEP_RUN);
            if (i < 11) /* the last one is running when the table is written */
                pst_sweep_report(s, job.trial, 0,
                                 loss_2d(pst_sweep_get_trial(s, job.trial)) + 0.003, 3, &err);
        }
        char *table = json ? pst_sweep_results_json(s) : pst_sweep_results_csv(s);
        pst_sweep_sched_destroy(&s);
        s = pst_sweep_sched_new(sp, 3, &err);
        int rc = pst_sweep_load_results_text(s, table, "r", &err);
        if (rc != PST_OK)
            fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, PST_OK);
        assert_int_equal(pst_sweep_n_created(s), 12);
        while (pst_sweep_next(s, &job) == PST_SWEEP_RUN)
            pst_sweep_report(s, job.trial, 0, loss_2d(pst_sweep_get_trial(s, job.trial)) + 0.003, 3,
                             &err);
        for (int t = 0; t < 30; t++) {
            const pst_sweep_trial_t *trial = pst_sweep_get_trial(s, t);
            for (int i = 0; i < trial->n_overrides; i++) {
                size_t len = strlen(resumed);
                snprintf(resumed + len, (1 << 16) - len, "%d:%s=%s;", t, trial->overrides[i].key,
                         trial->overrides[i].value);
            }
        }
        assert_string_equal(whole, resumed);
        pst_sweep_sched_destroy(&s);
        free(table);
        free(whole);
        free(resumed);
        pst_sweep_space_destroy(&sp);
        free(text);
    }
}

static void expect_error(const char *yaml, const char *needle)
{
    pst_sweep_space_t *sp = NULL;
    pst_err_t err = {0};
    assert_int_not_equal(pst_sweep_space_load_string(yaml, "s.yaml", &sp, &err), PST_OK);
    assert_null(sp);
    if (!strstr(err.msg, needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, needle);
    assert_non_null(strstr(err.msg, needle));
}

static void bad_tpe_and_pruner_keys_are_refused(void **state)
{
    (void)state;
    const char *head = "base: b.yaml\nmetric: val.loss\nmode: min\nspace:\n"
                       "  optimizer.lr: {log_uniform: [1.0e-5, 1.0]}\n";
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "%smethod: tpe\ntrials: 5\ntpe: {gamma: 1.5}\n", head);
    expect_error(yaml, "s.yaml:8: tpe.gamma: expected a number in (0, 1)");
    snprintf(yaml, sizeof yaml, "%smethod: tpe\ntrials: 5\ntpe: {bandwidth: 2}\n", head);
    expect_error(yaml, "s.yaml:8: unknown key 'tpe.bandwidth'");
    snprintf(yaml, sizeof yaml, "%smethod: random\ntrials: 5\ntpe: {candidates: 8}\n", head);
    expect_error(yaml, "s.yaml:8: tpe: set, but method is random");
    snprintf(yaml, sizeof yaml, "%smethod: tpe\ntrials: 5\npruner: median\n", head);
    expect_error(yaml, "s.yaml:8: pruner: prunes at rungs");
    snprintf(yaml, sizeof yaml, "%smethod: tpe\ntrials: 5\npruner: mean\n", head);
    expect_error(yaml, "s.yaml:8: pruner: expected asha or median");
    snprintf(yaml, sizeof yaml, "%smethod: tpe\n", head);
    expect_error(yaml, "method tpe needs trials: N");
    snprintf(yaml, sizeof yaml, "%smethod: tpe\ntrials: 5\nrungs: {min_epochs: 1}\n", head);
    expect_error(yaml, "s.yaml:8: the rungs need max_epochs: N");
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_trials),
        cmocka_unit_test(proposals_concentrate_at_the_optimum),
        cmocka_unit_test(tpe_beats_random_at_equal_budget),
        cmocka_unit_test(conditions_hold_in_proposals),
        cmocka_unit_test(median_pruner_stops_below_the_median),
        cmocka_unit_test(tpe_with_rungs_spends_fewer_epochs),
        cmocka_unit_test(resumed_tpe_sweep_proposes_the_same_trials),
        cmocka_unit_test(bad_tpe_and_pruner_keys_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
