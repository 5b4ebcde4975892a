/* Tests for common/fedagg: every rule and server optimizer against hand arithmetic, robustness to
 * an attacker, non-finite sites, DP clipping and noise, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fed/fedagg.h"

#define N_MAX 16

static pst_fedagg_cfg_t cfg_for(pst_fedagg_rule_t rule, pst_fedopt_t opt)
{
    pst_fedagg_cfg_t c;
    pst_fedagg_cfg_defaults(&c, opt);
    c.rule = rule;
    return c;
}

static pst_fedagg_t *make(const pst_fedagg_cfg_t *c, size_t n)
{
    pst_err_t err = {0};
    pst_fedagg_t *a = pst_fedagg_new(c, n, &err);
    if (a == NULL)
        fail_msg("pst_fedagg_new: %s", err.msg);
    return a;
}

/* One round from a zero global model: global ends up holding the combined delta (sgd, lr 1). */
static void combined(pst_fedagg_t *a, const float *const *deltas, const double *counts, int k,
                     size_t n, float *out)
{
    pst_err_t err = {0};
    memset(out, 0, n * sizeof *out);
    int rc = pst_fedagg_round(a, out, deltas, counts, k, &err);
    if (rc != PST_OK)
        fail_msg("pst_fedagg_round: %s", err.msg);
}

static void assert_vec(const float *got, const double *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        if (fabs(got[i] - want[i]) > tol)
            fail_msg("[%zu]: got %.9g, want %.9g", i, (double)got[i], want[i]);
    }
}

static double distance(const float *x, const double *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (x[i] - y[i]) * (x[i] - y[i]);
    return sqrt(s);
}

static void fedavg_weights_by_counts(void **state)
{
    (void)state;
    /* counts 1 and 3: weights 1/4 and 3/4.
     * (1/4)(4, -8) + (3/4)(0, 8) = (1, -2) + (0, 6) = (1, 4); global (1, 1) -> (2, 5). */
    const float d0[] = {4, -8}, d1[] = {0, 8};
    const float *deltas[] = {d0, d1};
    const double counts[] = {1, 3};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    assert_true(c.server_lr == 1.0);
    pst_fedagg_t *a = make(&c, 2);
    float g[] = {1, 1};
    assert_int_equal(pst_fedagg_round(a, g, deltas, counts, 2, NULL), PST_OK);
    assert_vec(g, (const double[]){2, 5}, 2, 1e-6);
    /* counts NULL: equal weights, (4 + 0)/2 = 2, (-8 + 8)/2 = 0; (2, 5) -> (4, 5). */
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 2, NULL), PST_OK);
    assert_vec(g, (const double[]){4, 5}, 2, 1e-6);
    assert_int_equal(pst_fedagg_rounds(a), 2);
    assert_int_equal(pst_fedagg_last(a)->n_used, 2);
    size_t n_state = 99;
    assert_null(pst_fedagg_state(a, &n_state));
    assert_int_equal(n_state, 0);
    pst_fedagg_destroy(&a);
    pst_fedagg_destroy(&a);
    assert_null(a);
}

/* FedAvgM: m = b m + d, global += lr m. With b = 0.5, lr 2 and the mean delta (1, -2) twice:
 * m = (1, -2), global (0, 0) -> (2, -4); m = (1.5, -3), global -> (5, -10). The momentum sits in
 * the state's m, v stays 0. Momentum on an adaptive server optimizer is refused. */
static void fedavgm_steps_along_the_momentum(void **state)
{
    (void)state;
    const float d0[] = {2, -4}, d1[] = {0, 0};
    const float *deltas[] = {d0, d1};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    c.server_lr = 2;
    c.server_momentum = 0.5;
    pst_fedagg_t *a = make(&c, 2);
    float g[] = {0, 0};
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 2, NULL), PST_OK);
    assert_vec(g, (const double[]){2, -4}, 2, 1e-6);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 2, NULL), PST_OK);
    assert_vec(g, (const double[]){5, -10}, 2, 1e-6);
    size_t n_state = 0;
    const float *st = pst_fedagg_state(a, &n_state);
    assert_int_equal(n_state, 4);
    assert_vec(st, (const double[]){1.5, -3, 0, 0}, 4, 1e-6);
    pst_fedagg_destroy(&a);
    pst_fedagg_cfg_t adam = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_ADAM);
    adam.server_momentum = 0.5;
    pst_err_t err = {0};
    assert_null(pst_fedagg_new(&adam, 2, &err));
    assert_non_null(strstr(err.msg, "server_momentum is for the sgd server optimizer"));
    c.server_momentum = 1.0;
    assert_null(pst_fedagg_new(&c, 2, &err));
    assert_non_null(strstr(err.msg, "server_momentum 1 not in [0, 1)"));
}

/* Nesterov FedAvgM: m = b m + d, global += lr (b m + d). With b = 0.5, lr 2 and the mean delta
 * (1, -2) twice: m = (1, -2), global -> 2 (0.5 (1, -2) + (1, -2)) = (3, -6); m = (1.5, -3),
 * global += 2 (0.5 (1.5, -3) + (1, -2)) = (3.5, -7) -> (6.5, -13). Without momentum, or on an
 * adaptive server optimizer, it is refused. */
static void fedavgm_nesterov_looks_ahead(void **state)
{
    (void)state;
    const float d0[] = {2, -4}, d1[] = {0, 0};
    const float *deltas[] = {d0, d1};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    c.server_lr = 2;
    c.server_momentum = 0.5;
    c.server_nesterov = 1;
    pst_fedagg_t *a = make(&c, 2);
    float g[] = {0, 0};
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 2, NULL), PST_OK);
    assert_vec(g, (const double[]){3, -6}, 2, 1e-6);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 2, NULL), PST_OK);
    assert_vec(g, (const double[]){6.5, -13}, 2, 1e-6);
    size_t n_state = 0;
    const float *st = pst_fedagg_state(a, &n_state);
    assert_int_equal(n_state, 4);
    assert_vec(st, (const double[]){1.5, -3, 0, 0}, 4, 1e-6);
    pst_fedagg_destroy(&a);
    pst_err_t err = {0};
    c.server_momentum = 0;
    assert_null(pst_fedagg_new(&c, 2, &err));
    assert_non_null(strstr(err.msg, "server_nesterov needs the sgd server optimizer"));
    pst_fedagg_cfg_t adam = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_ADAM);
    adam.server_nesterov = 1;
    assert_null(pst_fedagg_new(&adam, 2, &err));
    assert_non_null(strstr(err.msg, "server_nesterov needs the sgd server optimizer"));
}

static void server_lr_scales_the_mean(void **state)
{
    (void)state;
    /* lr 0.5: counts 2 and 6 are again weights 1/4, 3/4: mean (1, 4); global (0, 0) -> (0.5, 2).
     * A zero count is allowed: that site weighs nothing. */
    const float d0[] = {4, -8}, d1[] = {0, 8}, d2[] = {1000, 1000};
    const float *deltas[] = {d0, d1, d2};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    c.server_lr = 0.5;
    pst_fedagg_t *a = make(&c, 2);
    float g[] = {0, 0};
    assert_int_equal(pst_fedagg_round(a, g, deltas, (const double[]){2, 6, 0}, 3, NULL), PST_OK);
    assert_vec(g, (const double[]){0.5, 2}, 2, 1e-6);
    pst_fedagg_destroy(&a);
}

static void fedprox_gradient_term(void **state)
{
    (void)state;
    /* grad += mu (w - wg), mu 0.5: 1 + 0.5(2-1) = 1.5; 1 + 0.5(0-1) = 0.5; 1 + 0.5(1-1) = 1;
     * -2 + 0.5(-3-1) = -4. */
    float grad[] = {1, 1, 1, -2};
    const float w[] = {2, 0, 1, -3}, wg[] = {1, 1, 1, 1};
    pst_fedprox_grad_add(grad, w, wg, 4, 0.5f);
    assert_vec(grad, (const double[]){1.5, 0.5, 1, -4}, 4, 0);
    pst_fedagg_rule_t r = PST_FEDAGG_MEDIAN;
    assert_int_equal(pst_fedagg_rule_parse("fedprox", &r), PST_OK);
    assert_int_equal(r, PST_FEDAGG_MEAN);
}

static void median_by_hand(void **state)
{
    (void)state;
    /* coord 0: 3, -1, 10, 2 -> sorted -1 2 3 10 -> (2 + 3)/2 = 2.5
     * coord 1: 0, 0, 7, -4 -> sorted -4 0 0 7 -> (0 + 0)/2 = 0
     * with a fifth site (100, 1): -1 2 3 10 100 -> 3 and -4 0 0 1 7 -> 0. */
    const float d0[] = {3, 0}, d1[] = {-1, 0}, d2[] = {10, 7}, d3[] = {2, -4}, d4[] = {100, 1};
    const float *deltas[] = {d0, d1, d2, d3, d4};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEDIAN, PST_FEDOPT_SGD);
    pst_fedagg_t *a = make(&c, 2);
    float out[2];
    /* Counts are ignored by the robust rules: a huge claimed count changes nothing. */
    combined(a, deltas, (const double[]){1, 1, 1e9, 1, 1}, 4, 2, out);
    assert_vec(out, (const double[]){2.5, 0}, 2, 0);
    combined(a, deltas, NULL, 5, 2, out);
    assert_vec(out, (const double[]){3, 0}, 2, 0);
    /* Fewer sites than before: the scratch sized for 5 serves 3: -1 3 10 -> 3; 0 0 7 -> 0. */
    combined(a, deltas, NULL, 3, 2, out);
    assert_vec(out, (const double[]){3, 0}, 2, 0);
    pst_fedagg_destroy(&a);
}

static void median_sorts_many_sites(void **state)
{
    (void)state;
    /* 41 sites (past the insertion-sort size): site i holds (i * 37) mod 41 and its negation;
     * the values are a permutation of 0..40, whose median is 20. */
    enum { K = 41 };
    float vals[K][2];
    const float *deltas[K];
    for (int i = 0; i < K; i++) {
        vals[i][0] = (float)((i * 37) % K);
        vals[i][1] = -vals[i][0];
        deltas[i] = vals[i];
    }
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEDIAN, PST_FEDOPT_SGD);
    pst_fedagg_t *a = make(&c, 2);
    float out[2];
    combined(a, deltas, NULL, K, 2, out);
    assert_vec(out, (const double[]){20, -20}, 2, 0);
    pst_fedagg_destroy(&a);
}

static void trimmed_mean_by_hand(void **state)
{
    (void)state;
    /* k = 5, trim 0.2: b = floor(1.0) = 1 dropped at each end.
     * coord 0: 5 1 3 100 -50 -> sorted -50 1 3 5 100 -> (1 + 3 + 5)/3 = 3
     * coord 1: 0 10 2 4 -6   -> sorted -6 0 2 4 10   -> (0 + 2 + 4)/3 = 2
     * trim 0.19: b = floor(0.95) = 0, the plain mean: 59/5 = 11.8 and 10/5 = 2. */
    const float d0[] = {5, 0}, d1[] = {1, 10}, d2[] = {3, 2}, d3[] = {100, 4}, d4[] = {-50, -6};
    const float *deltas[] = {d0, d1, d2, d3, d4};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_TRIMMED_MEAN, PST_FEDOPT_SGD);
    c.trim_fraction = 0.2;
    pst_fedagg_t *a = make(&c, 2);
    float out[2];
    combined(a, deltas, NULL, 5, 2, out);
    assert_vec(out, (const double[]){3, 2}, 2, 1e-6);
    pst_fedagg_destroy(&a);
    c.trim_fraction = 0.19;
    a = make(&c, 2);
    combined(a, deltas, NULL, 5, 2, out);
    assert_vec(out, (const double[]){11.8, 2}, 2, 1e-5);
    pst_fedagg_destroy(&a);
}

/* Five 2-D deltas for the Krum cases; squared distances:
 *        d0    d1    d2    d3    d4
 *   d0    -     1     4     2   200
 *   d1    1     -     5     1   181
 *   d2    4     5     -     2   164
 *   d3    2     1     2     -   162
 *   d4  200   181   164   162     -
 * f = 1: each score sums the k - f - 2 = 2 smallest of its row:
 *   d0: 1+2 = 3, d1: 1+1 = 2, d2: 2+4 = 6, d3: 1+2 = 3, d4: 162+164 = 326. */
static const float krum_d[5][2] = {{0, 0}, {1, 0}, {0, 2}, {1, 1}, {10, 10}};

static void krum_by_hand(void **state)
{
    (void)state;
    const float *deltas[] = {krum_d[0], krum_d[1], krum_d[2], krum_d[3], krum_d[4]};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_KRUM, PST_FEDOPT_SGD);
    c.krum_f = 1;
    pst_fedagg_t *a = make(&c, 2);
    float out[2];
    /* Krum: the smallest score is d1's (2). */
    combined(a, deltas, NULL, 5, 2, out);
    assert_vec(out, (const double[]){1, 0}, 2, 0);
    assert_int_equal(pst_fedagg_last(a)->krum_choice, 1);
    pst_fedagg_destroy(&a);

    /* Multi-Krum m = 3: d1 (2), then the tie d0, d3 (3, 3): ((1+0+1)/3, (0+0+1)/3). */
    c.rule = PST_FEDAGG_MULTI_KRUM;
    c.multi_krum_m = 3;
    a = make(&c, 2);
    combined(a, deltas, NULL, 5, 2, out);
    assert_vec(out, (const double[]){2.0 / 3, 1.0 / 3}, 2, 1e-6);
    assert_int_equal(pst_fedagg_last(a)->krum_choice, -1);
    pst_fedagg_destroy(&a);

    /* m = 0 means k - f = 4: d1 d0 d3 d2 -> ((1+0+1+0)/4, (0+0+1+2)/4) = (0.5, 0.75). */
    c.multi_krum_m = 0;
    a = make(&c, 2);
    combined(a, deltas, NULL, 5, 2, out);
    assert_vec(out, (const double[]){0.5, 0.75}, 2, 1e-6);
    pst_fedagg_destroy(&a);
}

/* Adaptive server optimizers, two rounds by hand. beta1 = 0.5, beta2 = 0.5, tau = 1 (v starts at
 * tau^2 = 1), lr = 1, one site per round, so the combined delta is that site's:
 * d1 = (1, 4), d2 = (2, -1).
 * m1 = 0.5*0 + 0.5*d1 = (0.5, 2);  m2 = 0.5*m1 + 0.5*d2 = (0.25+1, 1-0.5) = (1.25, 0.5).
 * Adam:    v1 = 0.5*1 + 0.5*d1^2 = (1, 8.5);  v2 = 0.5*v1 + 0.5*d2^2 = (0.5+2, 4.25+0.5)
 *          = (2.5, 4.75)
 * Yogi:    v1: coord 0: d^2 = 1 = v, sign 0 -> 1; coord 1: 16 > 1 -> 1 + 0.5*16 = 9.
 *          v2: coord 0: 4 > 1 -> 1 + 0.5*4 = 3; coord 1: 1 < 9 -> 9 - 0.5*1 = 8.5.
 * Adagrad: v1 = 1 + d1^2 = (2, 17);  v2 = v1 + d2^2 = (6, 18).
 * Each round: global += m / (sqrt(v) + 1). */
static const float ada_d1[] = {1, 4}, ada_d2[] = {2, -1};

static void run_two_rounds(pst_fedopt_t opt, float *g, pst_fedagg_t **out)
{
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, opt);
    c.beta1 = 0.5;
    c.beta2 = 0.5;
    c.tau = 1;
    c.server_lr = 1;
    pst_fedagg_t *a = make(&c, 2);
    const float *r1[] = {ada_d1}, *r2[] = {ada_d2};
    g[0] = g[1] = 0;
    assert_int_equal(pst_fedagg_round(a, g, r1, NULL, 1, NULL), PST_OK);
    assert_int_equal(pst_fedagg_round(a, g, r2, NULL, 1, NULL), PST_OK);
    *out = a;
}

static void check_state(pst_fedagg_t *a, const double *v2)
{
    size_t n_state = 0;
    float *s = pst_fedagg_state(a, &n_state);
    assert_int_equal(n_state, 4);
    assert_vec(s, (const double[]){1.25, 0.5, v2[0], v2[1]}, 4, 1e-6);
}

static void fedadam_two_rounds(void **state)
{
    (void)state;
    float g[2];
    pst_fedagg_t *a;
    run_two_rounds(PST_FEDOPT_ADAM, g, &a);
    double want[] = {0.5 / 2 + 1.25 / (sqrt(2.5) + 1),
                     2 / (sqrt(8.5) + 1) + 0.5 / (sqrt(4.75) + 1)};
    assert_vec(g, want, 2, 1e-6);
    check_state(a, (const double[]){2.5, 4.75});
    pst_fedagg_destroy(&a);
}

static void fedyogi_two_rounds(void **state)
{
    (void)state;
    float g[2];
    pst_fedagg_t *a;
    run_two_rounds(PST_FEDOPT_YOGI, g, &a);
    /* round 1: (0.5/2, 2/(3+1)) = (0.25, 0.5) */
    double want[] = {0.25 + 1.25 / (sqrt(3) + 1), 0.5 + 0.5 / (sqrt(8.5) + 1)};
    assert_vec(g, want, 2, 1e-6);
    check_state(a, (const double[]){3, 8.5});
    pst_fedagg_destroy(&a);
}

static void fedadagrad_two_rounds(void **state)
{
    (void)state;
    float g[2];
    pst_fedagg_t *a;
    run_two_rounds(PST_FEDOPT_ADAGRAD, g, &a);
    double want[] = {0.5 / (sqrt(2) + 1) + 1.25 / (sqrt(6) + 1),
                     2 / (sqrt(17) + 1) + 0.5 / (sqrt(18) + 1)};
    assert_vec(g, want, 2, 1e-6);
    check_state(a, (const double[]){6, 18});
    pst_fedagg_destroy(&a);
}

static void adaptive_state_restores(void **state)
{
    (void)state;
    /* Round 1 on one aggregator, its state copied into a fresh one, round 2 there: the same
     * global as two rounds on one aggregator. */
    float want[2];
    pst_fedagg_t *full;
    run_two_rounds(PST_FEDOPT_ADAM, want, &full);

    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_ADAM);
    c.beta1 = c.beta2 = 0.5;
    c.tau = c.server_lr = 1;
    pst_fedagg_t *first = make(&c, 2), *second = make(&c, 2);
    const float *r1[] = {ada_d1}, *r2[] = {ada_d2};
    float g[2] = {0, 0};
    assert_int_equal(pst_fedagg_round(first, g, r1, NULL, 1, NULL), PST_OK);
    size_t n1, n2;
    float *s1 = pst_fedagg_state(first, &n1), *s2 = pst_fedagg_state(second, &n2);
    assert_int_equal(n1, n2);
    memcpy(s2, s1, n1 * sizeof *s1);
    pst_fedagg_set_rounds(second, pst_fedagg_rounds(first));
    assert_int_equal(pst_fedagg_round(second, g, r2, NULL, 1, NULL), PST_OK);
    assert_vec(g, (const double[]){want[0], want[1]}, 2, 0);
    assert_int_equal(pst_fedagg_rounds(second), 2);
    pst_fedagg_destroy(&full);
    pst_fedagg_destroy(&first);
    pst_fedagg_destroy(&second);
}

/* Six honest sites near base (each coordinate within 0.01) and one attacker sending 1e6. */
enum { ATT_N = 8, ATT_K = 7 };
static float att_vals[ATT_K][ATT_N];
static double att_honest_mean[ATT_N];

static void make_attack(void)
{
    static const double base[ATT_N] = {0.1, -0.2, 0.3, 0.05, -0.1, 0.2, 0, 0.15};
    for (int j = 0; j < ATT_N; j++) {
        att_honest_mean[j] = 0;
        for (int i = 0; i < ATT_K - 1; i++) {
            att_vals[i][j] = (float)(base[j] + 0.01 * sin(7.0 * i + j));
            att_honest_mean[j] += att_vals[i][j] / (ATT_K - 1.0);
        }
        att_vals[ATT_K - 1][j] = 1e6f;
    }
}

static double attacked_distance(pst_fedagg_rule_t rule, const double *counts)
{
    pst_fedagg_cfg_t c = cfg_for(rule, PST_FEDOPT_SGD);
    c.trim_fraction = 0.2; /* floor(0.2 * 7) = 1 value dropped at each end */
    c.krum_f = 1;          /* 7 > 2*1 + 2 */
    pst_fedagg_t *a = make(&c, ATT_N);
    const float *deltas[ATT_K];
    for (int i = 0; i < ATT_K; i++)
        deltas[i] = att_vals[i];
    float out[ATT_N];
    combined(a, deltas, counts, ATT_K, ATT_N, out);
    if (rule == PST_FEDAGG_KRUM)
        assert_int_not_equal(pst_fedagg_last(a)->krum_choice, ATT_K - 1);
    pst_fedagg_destroy(&a);
    return distance(out, att_honest_mean, ATT_N);
}

static void robust_rules_resist_an_attacker(void **state)
{
    (void)state;
    make_attack();
    /* Every honest site lies within 0.01 * sqrt(8) = 0.03 of base, so of the honest mean too
     * (up to 0.06). With equal counts FedAvg moves by 1e6/7 per coordinate: about 4e5. */
    const double equal[ATT_K] = {10, 10, 10, 10, 10, 10, 10};
    const double claims[ATT_K] = {10, 10, 10, 10, 10, 10, 1e4};
    assert_true(attacked_distance(PST_FEDAGG_MEAN, equal) > 1e5);
    assert_true(attacked_distance(PST_FEDAGG_MEAN, claims) > 2e6);
    pst_fedagg_rule_t robust[] = {PST_FEDAGG_MEDIAN, PST_FEDAGG_TRIMMED_MEAN, PST_FEDAGG_KRUM,
                                  PST_FEDAGG_MULTI_KRUM};
    for (int r = 0; r < 4; r++) {
        double d_eq = attacked_distance(robust[r], equal);
        double d_claim = attacked_distance(robust[r], claims);
        if (!(d_eq < 0.05 && d_claim < 0.05))
            fail_msg("%s: distance %g / %g from the honest mean", pst_fedagg_rule_name(robust[r]),
                     d_eq, d_claim);
    }
}

static void nonfinite_site_fails_the_round(void **state)
{
    (void)state;
    /* Default policy: the round fails naming the site; global, state and counter untouched. */
    float d0[] = {1, 2, 3}, d1[] = {1, 2, 3}, d2[] = {1, NAN, 3};
    const float *deltas[] = {d0, d1, d2};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_ADAM);
    pst_fedagg_t *a = make(&c, 3);
    float g[] = {5, 6, 7};
    pst_err_t err = {0};
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 3, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "site 2"));
    assert_non_null(strstr(err.msg, "delta[1]"));
    assert_vec(g, (const double[]){5, 6, 7}, 3, 0);
    assert_int_equal(pst_fedagg_rounds(a), 0);
    size_t n_state;
    float *s = pst_fedagg_state(a, &n_state);
    for (size_t i = 0; i < 3; i++) {
        assert_true(s[i] == 0.0f);
        assert_true(s[3 + i] == (float)(c.tau * c.tau));
    }
    /* Infinity, and a negative or NaN count, are refused the same way. */
    d2[1] = 2;
    d0[2] = INFINITY;
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 3, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "site 0"));
    d0[2] = 3;
    assert_int_equal(pst_fedagg_round(a, g, deltas, (const double[]){1, -1, 1}, 3, &err),
                     PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "site 1"));
    assert_int_equal(pst_fedagg_round(a, g, deltas, (const double[]){1, 1, NAN}, 3, &err),
                     PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "site 2"));
    assert_vec(g, (const double[]){5, 6, 7}, 3, 0);
    /* A clean round still works afterwards. */
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 3, &err), PST_OK);
    assert_int_equal(pst_fedagg_rounds(a), 1);
    pst_fedagg_destroy(&a);
}

static void nonfinite_site_skipped_when_asked(void **state)
{
    (void)state;
    /* skip_nonfinite: site 1 (NaN) is dropped; mean of sites 0 and 2 with counts 1, 3:
     * (1/4)(4, 0) + (3/4)(0, 4) = (1, 3). */
    const float d0[] = {4, 0}, d1[] = {NAN, 1}, d2[] = {0, 4};
    const float *deltas[] = {d0, d1, d2};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    c.skip_nonfinite = 1;
    pst_fedagg_t *a = make(&c, 2);
    float out[2];
    combined(a, deltas, (const double[]){1, 1000, 3}, 3, 2, out);
    assert_vec(out, (const double[]){1, 3}, 2, 1e-6);
    const pst_fedagg_info_t *info = pst_fedagg_last(a);
    assert_int_equal(info->n_sites, 3);
    assert_int_equal(info->n_used, 2);
    assert_int_equal(info->n_skipped, 1);
    assert_int_equal(info->first_skipped, 1);
    /* Nothing usable left: an error, not an empty average. */
    const float *only_bad[] = {d1, d1};
    pst_err_t err = {0};
    assert_int_equal(pst_fedagg_round(a, out, only_bad, NULL, 2, &err), PST_EINVAL);
    assert_int_equal(pst_fedagg_last(a)->n_used, 2); /* the last successful round's */
    pst_fedagg_destroy(&a);

    /* Median with the NaN site dropped: sites 0 and 2 -> ((4+0)/2, (0+4)/2) = (2, 2). */
    c.rule = PST_FEDAGG_MEDIAN;
    a = make(&c, 2);
    combined(a, deltas, NULL, 3, 2, out);
    assert_vec(out, (const double[]){2, 2}, 2, 0);
    pst_fedagg_destroy(&a);
}

static void round_errors(void **state)
{
    (void)state;
    const float *deltas[] = {krum_d[0], krum_d[1], krum_d[2], krum_d[3], krum_d[4]};
    pst_err_t err = {0};
    float g[2] = {0, 0};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    pst_fedagg_t *a = make(&c, 2);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 0, &err), PST_EINVAL);
    assert_int_equal(pst_fedagg_round(a, g, deltas, (const double[]){0, 0}, 2, &err), PST_EINVAL);
    const float *with_null[] = {krum_d[0], NULL};
    assert_int_equal(pst_fedagg_round(a, g, with_null, NULL, 2, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "site 1"));
    pst_fedagg_destroy(&a);

    /* Krum, f = 1: needs k > 4. */
    c.rule = PST_FEDAGG_KRUM;
    c.krum_f = 1;
    a = make(&c, 2);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 4, &err), PST_EINVAL);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 5, &err), PST_OK);
    pst_fedagg_destroy(&a);
    c.rule = PST_FEDAGG_MULTI_KRUM;
    c.multi_krum_m = 6;
    a = make(&c, 2);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 5, &err), PST_EINVAL);
    assert_vec(g, (const double[]){1, 0}, 2, 0); /* only the successful Krum round applied */
    pst_fedagg_destroy(&a);
}

static void config_errors(void **state)
{
    (void)state;
    pst_err_t err = {0};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_ADAM);
    assert_true(fabs(c.server_lr - 0.01) < 1e-12);
    assert_null(pst_fedagg_new(&c, 0, &err));
    pst_fedagg_cfg_t bad = c;
    bad.beta2 = 1;
    assert_null(pst_fedagg_new(&bad, 4, &err));
    bad = c;
    bad.tau = 0;
    assert_null(pst_fedagg_new(&bad, 4, &err));
    bad = c;
    bad.server_lr = -1;
    assert_null(pst_fedagg_new(&bad, 4, &err));
    bad = c;
    bad.trim_fraction = 0.5;
    assert_null(pst_fedagg_new(&bad, 4, &err));
    bad = c;
    bad.rule = PST_FEDAGG_MEDIAN;
    bad.dp_clip = 1;
    assert_null(pst_fedagg_new(&bad, 4, &err));
    assert_int_equal(err.code, PST_EINVAL);
    assert_non_null(strstr(err.msg, "DP"));
    bad = c;
    bad.dp_noise = 1; /* noise without clipping has no sensitivity to scale to */
    assert_null(pst_fedagg_new(&bad, 4, &err));

    pst_fedagg_rule_t r;
    pst_fedopt_t o;
    assert_int_equal(pst_fedagg_rule_parse("trimmed_mean", &r), PST_OK);
    assert_int_equal(r, PST_FEDAGG_TRIMMED_MEAN);
    assert_int_equal(pst_fedagg_rule_parse("multi_krum", &r), PST_OK);
    assert_int_equal(r, PST_FEDAGG_MULTI_KRUM);
    assert_int_equal(pst_fedagg_rule_parse("fedavg", &r), PST_OK);
    assert_int_equal(r, PST_FEDAGG_MEAN);
    assert_int_equal(pst_fedagg_rule_parse("average", &r), PST_EINVAL);
    assert_int_equal(pst_fedagg_opt_parse("fedyogi", &o), PST_OK);
    assert_int_equal(o, PST_FEDOPT_YOGI);
    assert_int_equal(pst_fedagg_opt_parse("adagrad", &o), PST_OK);
    assert_int_equal(o, PST_FEDOPT_ADAGRAD);
    assert_int_equal(pst_fedagg_opt_parse("rmsprop", &o), PST_EINVAL);
    assert_string_equal(pst_fedagg_opt_name(PST_FEDOPT_ADAM), "adam");
    assert_string_equal(pst_fedagg_rule_name(PST_FEDAGG_KRUM), "krum");
}

static pst_fedagg_cfg_t dp_cfg(double clip, double noise, int m, uint64_t seed)
{
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    c.dp_clip = clip;
    c.dp_noise = noise;
    c.dp_expected_sites = m;
    c.seed = seed;
    return c;
}

static void dp_clipping_bounds_one_site(void **state)
{
    (void)state;
    /* C = 1, m = 4, no noise. Sites 0-2 are shorter than C (norms 0.3, 0.5, 0.2) and pass
     * unchanged; the sum is (0.1+0-0.2, 0.2+0.3+0, 0.2+0.4+0) = (-0.1, 0.5, 0.6), over 4:
     * (-0.025, 0.125, 0.15). Site 3 = (3e5, 4e5, 0) has norm 5e5 and is clipped to (0.6, 0.8, 0),
     * adding (0.15, 0.2, 0): a change of norm exactly C/m = 0.25. Counts are ignored. */
    const float d0[] = {0.1f, 0.2f, 0.2f}, d1[] = {0, 0.3f, 0.4f}, d2[] = {-0.2f, 0, 0};
    const float zero[] = {0, 0, 0}, huge[] = {3e5f, 4e5f, 0};
    const float *without[] = {d0, d1, d2, zero}, *with[] = {d0, d1, d2, huge};
    pst_fedagg_cfg_t c = dp_cfg(1, 0, 4, 1);
    pst_fedagg_t *a = make(&c, 3);
    float base[3], attacked[3];
    combined(a, without, (const double[]){1, 50, 1, 1}, 4, 3, base);
    assert_vec(base, (const double[]){-0.025, 0.125, 0.15}, 3, 1e-7);
    assert_int_equal(pst_fedagg_last(a)->n_clipped, 0);
    combined(a, with, NULL, 4, 3, attacked);
    assert_vec(attacked, (const double[]){0.125, 0.325, 0.15}, 3, 1e-6);
    assert_int_equal(pst_fedagg_last(a)->n_clipped, 1);
    double change = sqrt(pow(attacked[0] - base[0], 2) + pow(attacked[1] - base[1], 2) +
                         pow(attacked[2] - base[2], 2));
    assert_true(fabs(change - 0.25) < 1e-6);
    pst_fedagg_destroy(&a);

    /* m = 8 expected sites, 3 came: the sum is still divided by 8: (-0.1, 0.5, 0.6)/8. */
    c = dp_cfg(1, 0, 8, 1);
    a = make(&c, 3);
    combined(a, without, NULL, 3, 3, base);
    assert_vec(base, (const double[]){-0.1 / 8, 0.5 / 8, 0.6 / 8}, 3, 1e-7);
    pst_fedagg_destroy(&a);

    /* m = 0: the round's k divides, a skipped site included: 4 sites, one NaN -> sum / 4. */
    const float nan_site[] = {NAN, 0, 0};
    const float *with_nan[] = {d0, d1, d2, nan_site};
    c = dp_cfg(1, 0, 0, 1);
    c.skip_nonfinite = 1;
    a = make(&c, 3);
    combined(a, with_nan, NULL, 4, 3, base);
    assert_vec(base, (const double[]){-0.025, 0.125, 0.15}, 3, 1e-7);
    assert_int_equal(pst_fedagg_last(a)->n_used, 3);
    combined(a, without, NULL, 3, 3, base);
    assert_vec(base, (const double[]){-0.1 / 3, 0.5 / 3, 0.2}, 3, 1e-7);
    pst_fedagg_destroy(&a);
}

static void dp_noise_has_the_right_deviation(void **state)
{
    (void)state;
    /* All deltas zero: the result is pure noise with sd z C / m = 1.5 * 2 / 5 = 0.6. Over 2e5
     * coordinates the sample sd is within 1% (its standard error is 0.16%) and the mean within
     * 0.006 (10 standard errors of 0.6 / sqrt(2e5)). */
    enum { N = 200000, K = 5 };
    float *zero = calloc(N, sizeof *zero), *out = malloc(N * sizeof *out);
    float *again = malloc(N * sizeof *again);
    assert_non_null(zero);
    assert_non_null(out);
    assert_non_null(again);
    const float *deltas[K] = {zero, zero, zero, zero, zero};
    pst_fedagg_cfg_t c = dp_cfg(2, 1.5, K, 42);
    pst_fedagg_t *a = make(&c, N);
    combined(a, deltas, NULL, K, N, out);
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        s += out[i];
        s2 += (double)out[i] * out[i];
    }
    double mean = s / N, sd = sqrt(s2 / N - mean * mean);
    assert_true(fabs(mean) < 0.006);
    assert_true(fabs(sd / 0.6 - 1) < 0.01);
    pst_fedagg_destroy(&a);

    /* The same seed gives the same noise; another seed, other noise. */
    a = make(&c, N);
    combined(a, deltas, NULL, K, N, again);
    assert_memory_equal(out, again, N * sizeof *out);
    pst_fedagg_destroy(&a);
    c.seed = 43;
    a = make(&c, N);
    combined(a, deltas, NULL, K, N, again);
    assert_memory_not_equal(out, again, N * sizeof *out);
    pst_fedagg_destroy(&a);
    free(zero);
    free(out);
    free(again);
}

static void dp_overflow_leaves_everything_untouched(void **state)
{
    (void)state;
    /* Absurd noise (z = 1e44, C = 10, m = 4: sd 2.5e44) overflows float on any draw: the round
     * fails with global, counter and the noise stream as they were. */
    const float d[] = {0.5f, 0.5f};
    const float *deltas[] = {d, d, d, d};
    pst_fedagg_cfg_t c = dp_cfg(10, 1e44, 4, 7);
    pst_fedagg_t *a = make(&c, 2);
    float g[] = {1, 2};
    pst_err_t err = {0};
    pst_rng_t before = *pst_fedagg_rng(a);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 4, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "overflow"));
    assert_vec(g, (const double[]){1, 2}, 2, 0);
    assert_int_equal(pst_fedagg_rounds(a), 0);
    assert_memory_equal(&before, pst_fedagg_rng(a), sizeof before);
    pst_fedagg_destroy(&a);
}

/* Finite updates that would push the weights (FedAvg: FLT_MAX twice) or the server optimizer's
 * second moment (FedYogi: d^2 overflows) past float fail the round and change nothing. */
static void weight_overflow_leaves_everything_untouched(void **state)
{
    (void)state;
    const float big[] = {FLT_MAX, 1.0f};
    const float *deltas[] = {big, big};
    pst_fedagg_cfg_t c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_SGD);
    pst_fedagg_t *a = make(&c, 2);
    float g[] = {0, 0};
    pst_err_t err = {0};
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 2, &err), PST_OK);
    assert_true(g[0] == FLT_MAX);
    assert_int_equal(pst_fedagg_round(a, g, deltas, NULL, 2, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "infinite or NaN"));
    assert_true(g[0] == FLT_MAX && g[1] == 1.0f);
    assert_int_equal(pst_fedagg_rounds(a), 1);
    pst_fedagg_destroy(&a);

    const float huge[] = {1e20f, 0.5f};
    const float *yogi_deltas[] = {huge};
    c = cfg_for(PST_FEDAGG_MEAN, PST_FEDOPT_YOGI);
    a = make(&c, 2);
    float w[] = {1, 2};
    size_t n_state = 0;
    float *st = pst_fedagg_state(a, &n_state);
    float st_before[4];
    memcpy(st_before, st, sizeof st_before);
    assert_int_equal(pst_fedagg_round(a, w, yogi_deltas, NULL, 1, &err), PST_ENUMERIC);
    assert_vec(w, (const double[]){1, 2}, 2, 0);
    assert_memory_equal(st_before, pst_fedagg_state(a, &n_state), sizeof st_before);
    assert_int_equal(pst_fedagg_rounds(a), 0);
    pst_fedagg_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fedavg_weights_by_counts),
        cmocka_unit_test(server_lr_scales_the_mean),
        cmocka_unit_test(fedavgm_steps_along_the_momentum),
        cmocka_unit_test(fedavgm_nesterov_looks_ahead),
        cmocka_unit_test(fedprox_gradient_term),
        cmocka_unit_test(median_by_hand),
        cmocka_unit_test(median_sorts_many_sites),
        cmocka_unit_test(trimmed_mean_by_hand),
        cmocka_unit_test(krum_by_hand),
        cmocka_unit_test(fedadam_two_rounds),
        cmocka_unit_test(fedyogi_two_rounds),
        cmocka_unit_test(fedadagrad_two_rounds),
        cmocka_unit_test(adaptive_state_restores),
        cmocka_unit_test(robust_rules_resist_an_attacker),
        cmocka_unit_test(nonfinite_site_fails_the_round),
        cmocka_unit_test(nonfinite_site_skipped_when_asked),
        cmocka_unit_test(round_errors),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(dp_clipping_bounds_one_site),
        cmocka_unit_test(dp_noise_has_the_right_deviation),
        cmocka_unit_test(dp_overflow_leaves_everything_untouched),
        cmocka_unit_test(weight_overflow_leaves_everything_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
