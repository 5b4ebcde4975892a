/* Tests for ps/fedcoord: a FedAvg round by hand, independence from arrival order, dropped and
 * silent sites, rounds with no update or a failing rule, the round limit and the privacy budget.
 * Time is passed in, never read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/fed/dpacct.h"
#include "ps/fed/fedcoord.h"

#define N 4

static pst_fedcoord_cfg_t base_cfg(void)
{
    pst_fedcoord_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.round = (pst_fedround_cfg_t){1.0, 1, 1000, 0, 100, 11};
    pst_fedagg_cfg_defaults(&cfg.agg, PST_FEDOPT_SGD);
    cfg.rounds = 5;
    cfg.dp_delta = 1e-5;
    return cfg;
}

static pst_fedcoord_t *make(const pst_fedcoord_cfg_t *cfg, int n_sites)
{
    const float init[N] = {1, 2, 3, 4};
    pst_err_t err = {0};
    pst_fedcoord_t *c = pst_fedcoord_new(cfg, init, N, &err);
    assert_non_null(c);
    for (int i = 0; i < n_sites; i++) {
        char id[16];
        snprintf(id, sizeof id, "site-%d", i);
        assert_int_equal(pst_fedround_register(pst_fedcoord_sites(c), id, NULL), i);
    }
    return c;
}

/* Site i's update in the tests: every coordinate i + 1. */
static void delta_of(int site, float *d)
{
    for (int j = 0; j < N; j++)
        d[j] = (float)(site + 1) * (j % 2 ? -1.0f : 1.0f);
}

/* One round in which the asked sites answer in the order given by reverse. */
static void run_round(pst_fedcoord_t *c, bool reverse, pst_fedcoord_round_t *out)
{
    const int *asked;
    int k;
    assert_int_equal(pst_fedcoord_begin(c, 0, &asked, &k, NULL), PST_OK);
    for (int i = 0; i < k; i++) {
        int site = asked[reverse ? k - 1 - i : i];
        float d[N];
        delta_of(site, d);
        assert_int_equal(
            pst_fedcoord_offer(c, site, pst_fedcoord_round(c), d, 10.0 * (site + 1), 0.5, 1),
            PST_FEDROUND_ACCEPTED);
    }
    assert_int_equal(pst_fedcoord_poll(c, 1, NULL), PST_FEDROUND_ALL);
    assert_int_equal(pst_fedcoord_end(c, 1, out, NULL), PST_OK);
}

/* Sites 0, 1, 2 with 10, 20, 30 rows and deltas 1, 2, 3: the mean is (10 + 40 + 90) / 60. */
static void fedavg_round_by_hand(void **state)
{
    (void)state;
    pst_fedcoord_cfg_t cfg = base_cfg();
    pst_fedcoord_t *c = make(&cfg, 3);
    pst_fedcoord_round_t r;
    run_round(c, false, &r);
    float want = 140.0f / 60.0f;
    const float *g = pst_fedcoord_global(c);
    assert_float_equal(g[0], 1 + want, 1e-6);
    assert_float_equal(g[1], 2 - want, 1e-6);
    assert_int_equal(r.round, 1);
    assert_int_equal(r.asked, 3);
    assert_int_equal(r.answered, 3);
    assert_true(r.aggregated);
    assert_int_equal(r.closed_by, PST_FEDROUND_ALL);
    assert_float_equal(r.samples, 60, 0);
    assert_float_equal(r.train_loss, 0.5, 1e-12);
    assert_float_equal(r.update_norm, 2 * want, 1e-5);
    assert_float_equal(r.epsilon, 0, 0);
    pst_fedcoord_destroy(&c);
    pst_fedcoord_destroy(&c);
}

/* The update of the site asked pos-th: huge values that cancel, then small ones, so a sum in
 * asking order keeps the small ones and a sum in reverse order loses them. */
static void ugly_delta(int pos, float *d)
{
    static const float v[5] = {1e17f, -1e17f, 1.0f, 0.5f, 0.25f};
    for (int j = 0; j < N; j++)
        d[j] = v[pos] * (float)(j + 1);
}

/* The weights the aggregator alone gives for the updates of positions pos[0..k) in that order. */
static void aggregate_in_order(const int *pos, int k, float *out)
{
    pst_fedcoord_cfg_t cfg = base_cfg();
    pst_fedagg_t *agg = pst_fedagg_new(&cfg.agg, N, NULL);
    float d[8][N];
    const float *ptrs[8];
    double counts[8];
    for (int i = 0; i < k; i++) {
        ugly_delta(pos[i], d[i]);
        ptrs[i] = d[i];
        counts[i] = 1.0;
    }
    const float init[N] = {1, 2, 3, 4};
    memcpy(out, init, sizeof init);
    assert_int_equal(pst_fedagg_round(agg, out, ptrs, counts, k, NULL), PST_OK);
    pst_fedagg_destroy(&agg);
}

/* Updates arriving in opposite orders give the weights of the sampling order, bit for bit, though
 * the aggregator's sums differ with the order. */
static void arrival_order_does_not_matter(void **state)
{
    (void)state;
    pst_fedcoord_cfg_t cfg = base_cfg();
    cfg.round.fraction = 0.7;
    pst_fedcoord_t *c[2] = {make(&cfg, 7), make(&cfg, 7)};
    const int *asked[2];
    int k[2];
    for (int v = 0; v < 2; v++) {
        assert_int_equal(pst_fedcoord_begin(c[v], 0, &asked[v], &k[v], NULL), PST_OK);
        for (int i = 0; i < k[v]; i++) {
            int pos = v ? k[v] - 1 - i : i;
            float d[N];
            ugly_delta(pos, d);
            pst_fedcoord_offer(c[v], asked[v][pos], 1, d, 1.0, 0, 0);
        }
        pst_fedcoord_round_t r;
        assert_int_equal(pst_fedcoord_end(c[v], 1, &r, NULL), PST_OK);
    }
    assert_int_equal(k[0], 5);
    assert_memory_equal(asked[0], asked[1], 5 * sizeof(int));
    const int forward[5] = {0, 1, 2, 3, 4}, reversed[5] = {4, 3, 2, 1, 0};
    float forward_w[N], reverse_w[N];
    aggregate_in_order(forward, 5, forward_w);
    aggregate_in_order(reversed, 5, reverse_w);
    assert_true(memcmp(forward_w, reverse_w, sizeof forward_w) != 0);
    assert_memory_equal(pst_fedcoord_global(c[0]), forward_w, sizeof forward_w);
    assert_memory_equal(pst_fedcoord_global(c[1]), forward_w, sizeof forward_w);
    pst_fedcoord_destroy(&c[0]);
    pst_fedcoord_destroy(&c[1]);
}

/* A dropped site closes the round without it; a round nobody answers leaves the weights alone;
 * offers for another round or from unasked sites count as refused. */
static void drops_timeouts_and_refusals(void **state)
{
    (void)state;
    pst_fedcoord_cfg_t cfg = base_cfg();
    cfg.round.round_timeout = 50;
    pst_fedcoord_t *c = make(&cfg, 3);
    const int *asked;
    int k;
    assert_int_equal(pst_fedcoord_begin(c, 0, &asked, &k, NULL), PST_OK);
    assert_int_equal(pst_fedcoord_begin(c, 0, &asked, &k, NULL), PST_ESTATE); /* still open */
    float d[N];
    delta_of(asked[0], d);
    assert_int_equal(pst_fedcoord_offer(c, asked[0], 1, d, 5, 1.0, 1), PST_FEDROUND_ACCEPTED);
    assert_int_equal(pst_fedcoord_offer(c, asked[0], 1, d, 5, 1.0, 1), PST_FEDROUND_DUPLICATE);
    assert_int_equal(pst_fedcoord_offer(c, asked[1], 0, d, 5, 1.0, 1), PST_FEDROUND_LATE);
    assert_true(pst_fedcoord_drop(c, asked[1]));
    assert_true(pst_fedcoord_drop(c, asked[2]));
    pst_fedcoord_round_t r;
    assert_int_equal(pst_fedcoord_poll(c, 2, NULL), PST_FEDROUND_ALL);
    assert_int_equal(pst_fedcoord_end(c, 2, &r, NULL), PST_OK);
    assert_int_equal(r.answered, 1);
    assert_int_equal(r.refused, 2);
    assert_true(r.aggregated);
    assert_float_equal(pst_fedcoord_global(c)[0], 1 + (asked[0] + 1), 1e-6);
    /* round 2: only the answering site is still eligible, and it stays silent */
    float before[N];
    memcpy(before, pst_fedcoord_global(c), sizeof before);
    assert_int_equal(pst_fedcoord_begin(c, 10, &asked, &k, NULL), PST_OK);
    assert_int_equal(k, 1);
    double deadline;
    assert_int_equal(pst_fedcoord_poll(c, 59, &deadline), PST_FEDROUND_OPEN);
    assert_float_equal(deadline, 60, 0);
    assert_int_equal(pst_fedcoord_poll(c, 60, NULL), PST_FEDROUND_TIMEOUT);
    assert_int_equal(pst_fedcoord_end(c, 60, &r, NULL), PST_OK);
    assert_int_equal(r.closed_by, PST_FEDROUND_TIMEOUT);
    assert_int_equal(r.answered, 0);
    assert_false(r.aggregated);
    assert_true(isnan(r.train_loss));
    assert_memory_equal(before, pst_fedcoord_global(c), sizeof before);
    /* nobody is eligible now: the next round waits */
    pst_err_t err = {0};
    assert_int_equal(pst_fedcoord_begin(c, 61, &asked, &k, &err), PST_ENOTFOUND);
    pst_fedround_seen(pst_fedcoord_sites(c), 0);
    assert_int_equal(pst_fedcoord_begin(c, 62, &asked, &k, NULL), PST_OK);
    pst_fedcoord_destroy(&c);
}

/* Krum needs more than 2f + 2 updates: a round with fewer fails, leaves the weights alone, and
 * the next round starts as usual. */
static void a_failing_rule_leaves_the_weights(void **state)
{
    (void)state;
    pst_fedcoord_cfg_t cfg = base_cfg();
    cfg.agg.rule = PST_FEDAGG_KRUM;
    pst_fedcoord_t *c = make(&cfg, 3);
    pst_fedcoord_round_t r;
    const int *asked;
    int k;
    assert_int_equal(pst_fedcoord_begin(c, 0, &asked, &k, NULL), PST_OK);
    for (int i = 0; i < k; i++) {
        float d[N];
        delta_of(asked[i], d);
        pst_fedcoord_offer(c, asked[i], 1, d, 1, 0, 0);
    }
    pst_err_t err = {0};
    assert_int_equal(pst_fedcoord_end(c, 1, &r, &err), PST_EINVAL);
    assert_false(r.aggregated);
    assert_int_equal(r.answered, 3);
    const float init[N] = {1, 2, 3, 4};
    assert_memory_equal(init, pst_fedcoord_global(c), sizeof init);
    assert_int_equal(pst_fedcoord_begin(c, 2, &asked, &k, NULL), PST_OK);
    pst_fedcoord_destroy(&c);
}

static void the_run_ends_after_its_rounds(void **state)
{
    (void)state;
    pst_fedcoord_cfg_t cfg = base_cfg();
    cfg.rounds = 2;
    pst_fedcoord_t *c = make(&cfg, 2);
    pst_fedcoord_round_t r;
    run_round(c, false, &r);
    assert_false(pst_fedcoord_finished(c));
    run_round(c, false, &r);
    assert_true(pst_fedcoord_finished(c));
    assert_false(pst_fedcoord_budget_stopped(c));
    const int *asked;
    int k;
    assert_int_equal(pst_fedcoord_begin(c, 5, &asked, &k, NULL), PST_ESTATE);
    pst_fedcoord_destroy(&c);
}

/* DP-FedAvg with 5 of 10 sites a round and noise multiplier 3: epsilon at 1e-5 after 9 rounds is
 * 2.888 and 10 would make it 3.035, so a budget of 3 runs exactly 9 rounds. Epsilon grows every
 * round and equals the accountant's figure for 9 steps of (0.5, 3). */
static void the_privacy_budget_stops_the_run(void **state)
{
    (void)state;
    pst_fedcoord_cfg_t cfg = base_cfg();
    cfg.rounds = 40;
    cfg.round.fraction = 0.5;
    cfg.agg.dp_clip = 1;
    cfg.agg.dp_noise = 3;
    cfg.dp_budget = 3.0;
    pst_fedcoord_t *c = make(&cfg, 10);
    double last = 0;
    int rounds = 0;
    for (;;) {
        const int *asked;
        int k;
        pst_err_t err = {0};
        int rc = pst_fedcoord_begin(c, 0, &asked, &k, &err);
        if (rc != PST_OK) {
            assert_int_equal(rc, PST_ESTATE);
            assert_non_null(strstr(err.msg, "epsilon budget"));
            break;
        }
        assert_int_equal(k, 5);
        for (int i = 0; i < k; i++) {
            float d[N];
            delta_of(asked[i], d);
            pst_fedcoord_offer(c, asked[i], pst_fedcoord_round(c), d, 1, 0, 0);
        }
        pst_fedcoord_round_t r;
        assert_int_equal(pst_fedcoord_end(c, 0, &r, NULL), PST_OK);
        assert_float_equal(r.sampling_rate, 0.5, 0);
        assert_true(r.epsilon > last);
        last = r.epsilon;
        rounds++;
    }
    assert_int_equal(rounds, 9);
    assert_true(pst_fedcoord_finished(c) && pst_fedcoord_budget_stopped(c));
    pst_dpacct_t *acct = pst_dpacct_new(0.5, 3.0, NULL);
    pst_dpacct_step_n(acct, 9);
    double want;
    assert_int_equal(pst_dpacct_epsilon(acct, 1e-5, &want, NULL), PST_OK);
    pst_dpacct_destroy(&acct);
    assert_true(fabs(last - want) <= 1e-12 * want);
    assert_true(last > 2.8 && last <= 3.0);
    pst_fedcoord_destroy(&c);
}

static void bad_settings_are_refused(void **state)
{
    (void)state;
    const float init[N] = {0};
    pst_fedcoord_cfg_t cfg = base_cfg();
    cfg.rounds = 0;
    pst_err_t err = {0};
    assert_null(pst_fedcoord_new(&cfg, init, N, &err));
    cfg = base_cfg();
    cfg.agg.dp_clip = 1;
    cfg.dp_delta = 0;
    assert_null(pst_fedcoord_new(&cfg, init, N, &err));
    assert_non_null(strstr(err.msg, "fed.dp.delta"));
    cfg = base_cfg();
    cfg.round.fraction = 0;
    assert_null(pst_fedcoord_new(&cfg, init, N, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fedavg_round_by_hand),
        cmocka_unit_test(arrival_order_does_not_matter),
        cmocka_unit_test(drops_timeouts_and_refusals),
        cmocka_unit_test(a_failing_rule_leaves_the_weights),
        cmocka_unit_test(the_run_ends_after_its_rounds),
        cmocka_unit_test(the_privacy_budget_stops_the_run),
        cmocka_unit_test(bad_settings_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
