/* Tests for common/optim: every rule against PyTorch golden numbers, state, lookahead, clipping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/optim/optim.h"

enum { N = 5, N_STEPS = 8 };

static const float W0[N] = {0.5f, -1.2f, 2.0f, -0.3f, 1.5f};
static const float GRADS[N_STEPS][N] = {
    {0.1f, -0.2f, 0.3f, 0.0f, -0.5f},    {0.4f, 0.1f, -0.6f, 0.2f, -0.1f},
    {-0.3f, 0.25f, 0.5f, -0.7f, 0.05f},  {0.2f, -0.4f, 0.1f, 0.3f, 0.6f},
    {-0.1f, 0.3f, -0.2f, 0.05f, -0.35f}, {0.05f, -0.15f, 0.45f, -0.25f, 0.2f},
    {0.3f, 0.2f, -0.1f, 0.4f, -0.3f},    {-0.2f, -0.05f, 0.15f, -0.1f, 0.25f},
};

typedef struct golden {
    const char *name;
    pst_optim_cfg_t cfg;
    float lr;
    int grow; /* lr of step t (0-based) is lr * (1 + t / 4) */
    double after3[N], after8[N];
} golden_t;

/* Produced by scripts/golden/optim_golden.py (torch 1.13.0, numpy 1.24.2): torch.optim.SGD (plain,
 * momentum, nesterov), Adam, AdamW, RAdam and Adagrad in float64 on the float32 inputs above;
 * AdaBelief (paper, Algorithm 2) and Lookahead (slow += alpha (fast - slow) every k steps) written
 * in numpy from their formulas, Lookahead wrapping the torch optimizers. RAdam's rectified branch
 * starts at step 6. */
static const golden_t GOLDEN[] = {
    {"sgd",
     {.kind = PST_OPT_SGD,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.480000000149, -1.21500004776, 1.98000000089, -0.250000012666, 1.55500000089},
     {0.454999998659, -1.20500004783, 1.94000000119, -0.290000014976, 1.51499999821}},
    {"sgd_wd",
     {.kind = PST_OPT_SGD,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.05f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.472837187446, -1.19723939652, 1.95014900001, -0.245422474849, 1.5320635627},
     {0.436581509418, -1.15800211909, 1.86217925703, -0.278727199054, 1.4548612261}},
    {"momentum",
     {.kind = PST_OPT_MOMENTUM,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.426900000188, -1.1898000481, 1.98270000161, -0.268000012726, 1.64949999886},
     {0.276871190671, -1.18711955219, 1.81776153706, -0.214647350108, 1.66596773097}},
    {"momentum_wd_grow",
     {.kind = PST_OPT_MOMENTUM,
      .momentum = 0.8f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.05f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     1,
     {0.400863473892, -1.1620098251, 1.91471937218, -0.23350237786, 1.61199543262},
     {0.0847701404651, -0.953783515668, 1.21354228455, -0.135944662738, 1.25760202957}},
    {"nesterov",
     {.kind = PST_OPT_NESTEROV,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.414210002061, -1.20582004838, 1.96443000276, -0.221200014153, 1.6895499963},
     {0.254184075583, -1.1934076022, 1.77598538889, -0.213182621379, 1.66437095213}},
    {"nesterov_wd",
     {.kind = PST_OPT_NESTEROV,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.05f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.395496108603, -1.15878812801, 1.88509024354, -0.208869566418, 1.62695633379},
     {0.187790378715, -1.00259758179, 1.45908340337, -0.170179486943, 1.40183434352}},
    {"adam",
     {.kind = PST_OPT_ADAM,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.396945766068, -1.15364069046, 1.96055237567, -0.314391563212, 1.61792113344},
     {0.330058699342, -1.14881092058, 1.91506602547, -0.296043763335, 1.62112743714}},
    {"adam_wd_eps",
     {.kind = PST_OPT_ADAM,
      .momentum = 0.9f,
      .beta1 = 0.8f,
      .beta2 = 0.99f,
      .eps = 0.01f,
      .weight_decay = 0.1f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.394979539019, -1.11192326109, 1.92587021645, -0.265267230757, 1.57041448742},
     {0.304038052242, -1.01649771858, 1.78377419294, -0.235058015462, 1.46469151996}},
    {"adam_grow",
     {.kind = PST_OPT_ADAM,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     1,
     {0.381473353503, -1.15879022453, 1.96125226819, -0.312285627392, 1.64184368857},
     {0.232309953362, -1.15626756493, 1.8561488593, -0.275402629827, 1.65290752448}},
    {"adamw",
     {.kind = PST_OPT_ADAMW,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.1f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.390203047446, -1.13629587347, 1.9311093489, -0.309727991197, 1.59483393501},
     {0.314349918553, -1.10355475852, 1.83822339278, -0.283984047414, 1.55861030933}},
    {"adamw_eps",
     {.kind = PST_OPT_ADAMW,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 0.01f,
      .weight_decay = 0.5f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.369990342014, -1.07087683349, 1.81760429749, -0.289653979132, 1.50184046507},
     {0.264980239005, -0.939871338271, 1.55905686925, -0.238651922103, 1.32657663184}},
    {"radam",
     {.kind = PST_OPT_RADAM,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.479503786762, -1.19117891733, 1.98993882307, -0.2956690739, 1.5476840167},
     {0.471086189995, -1.18891190664, 1.98407325606, -0.291779796361, 1.54704054217}},
    {"radam_wd_eps",
     {.kind = PST_OPT_RADAM,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.99f,
      .eps = 0.01f,
      .weight_decay = 0.1f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.472078182058, -1.17329198659, 1.96009455631, -0.29117132888, 1.52506383493},
     {0.454336124589, -1.15362260991, 1.92683923728, -0.282763346048, 1.50385995011}},
    {"adagrad",
     {.kind = PST_OPT_ADAGRAD,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-10f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.361820589535, -1.21925700628, 1.92968128914, -0.303847617409, 1.60985261454},
     {0.317101226002, -1.19131491069, 1.88987824953, -0.350778298372, 1.55803376764}},
    {"adagrad_wd_eps",
     {.kind = PST_OPT_ADAGRAD,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 0.1f,
      .weight_decay = 0.1f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.403282865321, -1.15160146592, 1.90504953602, -0.253710887479, 1.52461748559},
     {0.342997830208, -1.06556130737, 1.79832446496, -0.281102469219, 1.41390061513}},
    {"adabelief",
     {.kind = PST_OPT_ADABELIEF,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-16f,
      .weight_decay = 0.0f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.384734951282, -1.14842979117, 1.95578951585, -0.316643740395, 1.63162124279},
     {0.312528977956, -1.14319806727, 1.90727827884, -0.297139157595, 1.63502352102}},
    {"adabelief_wd_eps",
     {.kind = PST_OPT_ADABELIEF,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.99f,
      .eps = 0.001f,
      .weight_decay = 0.1f,
      .lookahead_k = 0,
      .lookahead_alpha = 0.5f},
     0.05f,
     0,
     {0.431153578266, -1.13452920886, 1.92955902573, -0.284771989615, 1.55805914653},
     {0.361969798833, -1.06188665582, 1.80149874222, -0.255171624158, 1.48024703089}},
    {"lookahead_sgd",
     {.kind = PST_OPT_MOMENTUM,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 3,
      .lookahead_alpha = 0.5f},
     0.1f,
     0,
     {0.463450000094, -1.19490004789, 1.99135000081, -0.284000012323, 1.57474999943},
     {0.350716137666, -1.20371245163, 1.86821738357, -0.261161345094, 1.59499998956}},
    {"lookahead_adam",
     {.kind = PST_OPT_ADAM,
      .momentum = 0.9f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-08f,
      .weight_decay = 0.0f,
      .lookahead_k = 2,
      .lookahead_alpha = 0.3f},
     0.05f,
     0,
     {0.462898938862, -1.19796248396, 1.98273875082, -0.288346775873, 1.55481470109},
     {0.449017607777, -1.18464330894, 1.97451980663, -0.298813137298, 1.53633823259}},
};
enum { N_GOLDEN = sizeof GOLDEN / sizeof GOLDEN[0] };

static float lr_at(const golden_t *c, int t)
{
    return c->grow ? (float)((double)c->lr * (1.0 + 0.25 * t)) : c->lr;
}

/* Relative tolerance 1e-6 (absolute below 1). */
static void assert_close(double got, double want, const char *what, size_t i)
{
    double tol = 1e-6 * fmax(1.0, fabs(want));
    if (!(fabs(got - want) <= tol))
        fail_msg("%s [%zu]: got %.9g, want %.9g", what, i, got, want);
}

/* The 5-element problem tiled over n elements, so blocks and their tails are all exercised. */
static void tile(float *w, float *g, size_t n, int step)
{
    for (size_t i = 0; i < n; i++) {
        if (w != NULL)
            w[i] = W0[i % N];
        if (g != NULL)
            g[i] = GRADS[step][i % N];
    }
}

static void check_tiled(const float *w, size_t n, const double *want, const char *what)
{
    for (size_t i = 0; i < n; i++)
        assert_close(w[i], want[i % N], what, i);
}

static void run_golden(const golden_t *c, size_t n)
{
    float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
    pst_err_t err = {0};
    pst_optim_t *opt = pst_optim_new(&c->cfg, n, &err);
    assert_non_null(opt);
    tile(w, NULL, n, 0);
    for (int t = 0; t < N_STEPS; t++) {
        tile(NULL, g, n, t);
        pst_optim_step(opt, w, g, lr_at(c, t));
        if (t + 1 == 3)
            check_tiled(w, n, c->after3, c->name);
        if (t + 1 == 8)
            check_tiled(w, n, c->after8, c->name);
    }
    assert_int_equal(pst_optim_steps(opt), N_STEPS);
    pst_optim_destroy(&opt);
    free(w);
    free(g);
}

static void every_rule_matches_golden(void **state)
{
    for (int k = 0; k < N_GOLDEN; k++) {
        run_golden(&GOLDEN[k], N);
        run_golden(&GOLDEN[k], 1037); /* two full blocks of 512 and a tail of 13 */
    }
}

static void defaults_and_names(void **state)
{
    pst_optim_cfg_t c;
    pst_optim_cfg_defaults(&c, PST_OPT_ADAGRAD);
    assert_int_equal(c.kind, PST_OPT_ADAGRAD);
    assert_true(c.eps == 1e-10f && c.weight_decay == 0.0f && c.lookahead_k == 0);
    pst_optim_cfg_defaults(&c, PST_OPT_ADAM);
    assert_true(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f);
    assert_true(c.momentum == 0.9f && c.lookahead_alpha == 0.5f);
    pst_optim_cfg_defaults(&c, PST_OPT_ADAMW);
    assert_true(c.weight_decay == 0.01f);
    pst_optim_cfg_defaults(&c, PST_OPT_ADABELIEF);
    assert_true(c.eps == 1e-16f);

    const char *names[] = {"sgd",   "momentum", "nesterov",  "adam",
                           "adamw", "radam",    "adabelief", "adagrad"};
    for (int i = 0; i < 8; i++) {
        pst_optim_kind_t k = PST_OPT_SGD;
        assert_int_equal(pst_optim_kind_parse(names[i], &k), PST_OK);
        assert_int_equal(k, i);
        assert_string_equal(pst_optim_kind_name(k), names[i]);
    }
    pst_optim_kind_t k = PST_OPT_ADAM;
    assert_int_equal(pst_optim_kind_parse("Adam", &k), PST_EINVAL);
    assert_int_equal(pst_optim_kind_parse("", &k), PST_EINVAL);
    assert_int_equal(k, PST_OPT_ADAM);
    assert_string_equal(pst_optim_kind_name((pst_optim_kind_t)42), "unknown");
}

static void rejects_bad_config(void **state)
{
    pst_optim_cfg_t c;
    pst_err_t err = {0};
    pst_optim_cfg_defaults(&c, PST_OPT_ADAM);
    c.beta1 = 1.0f;
    assert_null(pst_optim_new(&c, 10, &err));
    assert_int_equal(err.code, PST_EINVAL);
    assert_non_null(strstr(err.msg, "betas"));

    pst_optim_cfg_defaults(&c, PST_OPT_SGD);
    c.weight_decay = -0.1f;
    assert_null(pst_optim_new(&c, 10, &err));
    assert_non_null(strstr(err.msg, "weight_decay"));

    pst_optim_cfg_defaults(&c, PST_OPT_SGD);
    c.lookahead_k = 5;
    c.lookahead_alpha = 0.0f;
    assert_null(pst_optim_new(&c, 10, &err));
    assert_non_null(strstr(err.msg, "lookahead_alpha"));

    pst_optim_cfg_defaults(&c, PST_OPT_SGD);
    c.eps = NAN;
    assert_null(pst_optim_new(&c, 10, NULL));
}

static size_t state_size(pst_optim_kind_t kind, int lookahead_k, size_t n)
{
    pst_optim_cfg_t c;
    pst_optim_cfg_defaults(&c, kind);
    c.lookahead_k = lookahead_k;
    pst_optim_t *opt = pst_optim_new(&c, n, NULL);
    assert_non_null(opt);
    size_t n_state = 99;
    assert_non_null(pst_optim_state(opt, &n_state));
    pst_optim_destroy(&opt);
    pst_optim_destroy(&opt); /* safe twice */
    assert_null(opt);
    return n_state;
}

static void state_is_one_block(void **state)
{
    assert_int_equal(state_size(PST_OPT_SGD, 0, 7), 0);
    assert_int_equal(state_size(PST_OPT_SGD, 3, 7), 7);
    assert_int_equal(state_size(PST_OPT_MOMENTUM, 0, 7), 7);
    assert_int_equal(state_size(PST_OPT_NESTEROV, 2, 7), 14);
    assert_int_equal(state_size(PST_OPT_ADAM, 0, 7), 14);
    assert_int_equal(state_size(PST_OPT_RADAM, 4, 7), 21);
    assert_int_equal(state_size(PST_OPT_ADABELIEF, 0, 7), 14);
    assert_int_equal(state_size(PST_OPT_ADAGRAD, 0, 7), 7);
    assert_int_equal(state_size(PST_OPT_ADAM, 0, 0), 0);
}

/* Adam's first step moves every weight by lr * sign(g) (bias correction makes m/sqrt(v) = ±1),
 * and its state holds m = 0.1 g, v = 0.001 g^2. */
static void adam_first_step_by_hand(void **state)
{
    pst_optim_cfg_t c;
    pst_optim_cfg_defaults(&c, PST_OPT_ADAM);
    pst_optim_t *opt = pst_optim_new(&c, 3, NULL);
    float w[3] = {1.0f, 2.0f, 3.0f}, g[3] = {0.5f, -2.0f, 0.0f};
    pst_optim_step(opt, w, g, 0.01f);
    assert_float_equal(w[0], 0.99f, 1e-6);
    assert_float_equal(w[1], 2.01f, 1e-6);
    assert_float_equal(w[2], 3.0f, 0.0);
    size_t n_state;
    float *s = pst_optim_state(opt, &n_state);
    assert_int_equal(n_state, 6);
    assert_float_equal(s[0], 0.05f, 1e-7);
    assert_float_equal(s[1], -0.2f, 1e-7);
    assert_float_equal(s[3], (1.0f - 0.999f) * 0.25f, 1e-12);
    assert_float_equal(s[4], (1.0f - 0.999f) * 4.0f, 1e-12);
    assert_int_equal(pst_optim_steps(opt), 1);
    pst_optim_destroy(&opt);
}

/* Lookahead with k = 1 after one SGD step: w = w0 + alpha * (w0 - lr g - w0) = w0 - alpha lr g. */
static void lookahead_captures_first_weights(void **state)
{
    pst_optim_cfg_t c;
    pst_optim_cfg_defaults(&c, PST_OPT_SGD);
    c.lookahead_k = 1;
    c.lookahead_alpha = 0.25f;
    pst_optim_t *opt = pst_optim_new(&c, 2, NULL);
    float w[2] = {1.0f, -2.0f}, g[2] = {4.0f, 8.0f};
    pst_optim_step(opt, w, g, 0.5f);
    assert_float_equal(w[0], 0.5f, 1e-7);
    assert_float_equal(w[1], -3.0f, 1e-7);
    size_t n_state;
    float *slow = pst_optim_state(opt, &n_state);
    assert_int_equal(n_state, 2);
    assert_float_equal(slow[0], 0.5f, 1e-7);
    assert_float_equal(slow[1], -3.0f, 1e-7);
    pst_optim_destroy(&opt);
}

/* A run interrupted after 5 steps and resumed from (state, steps) in a new optimizer is bitwise
 * identical to an uninterrupted one. */
static void state_round_trip_resumes_exactly(void **state)
{
    pst_optim_cfg_t c;
    pst_optim_cfg_defaults(&c, PST_OPT_RADAM);
    c.lookahead_k = 3;
    c.weight_decay = 0.01f;
    size_t n = 600;
    float *wa = malloc(n * sizeof *wa), *wb = malloc(n * sizeof *wb), *g = malloc(n * sizeof *g);
    pst_optim_t *a = pst_optim_new(&c, n, NULL), *b = pst_optim_new(&c, n, NULL);
    tile(wa, NULL, n, 0);
    for (int t = 0; t < 5; t++) {
        tile(NULL, g, n, t);
        pst_optim_step(a, wa, g, 0.05f);
    }
    size_t na, nb;
    float *sa = pst_optim_state(a, &na), *sb = pst_optim_state(b, &nb);
    assert_int_equal(na, nb);
    memcpy(sb, sa, na * sizeof(float));
    pst_optim_set_steps(b, pst_optim_steps(a));
    memcpy(wb, wa, n * sizeof(float));
    for (int t = 5; t < N_STEPS; t++) {
        tile(NULL, g, n, t);
        pst_optim_step(a, wa, g, 0.05f);
        pst_optim_step(b, wb, g, 0.05f);
    }
    assert_memory_equal(wa, wb, n * sizeof(float));
    assert_memory_equal(sa, sb, na * sizeof(float));
    assert_int_equal(pst_optim_steps(b), N_STEPS);
    pst_optim_destroy(&a);
    pst_optim_destroy(&b);
    free(wa);
    free(wb);
    free(g);
}

/* Golden: torch.nn.utils.clip_grad_norm_(max_norm=5) and clip_grad_value_(1), from
 * scripts/golden/optim_golden.py. */
static void clipping(void **state)
{
    static const double clipped[N] = {1.15278074681, -1.53704099575, 0.192130124469, 4.61112298726,
                                      -0.0960650622346};
    float g[N] = {3.0f, -4.0f, 0.5f, 12.0f, -0.25f};
    double norm = pst_clip_global_norm(g, N, 5.0);
    assert_close(norm, 13.0120136797, "global norm", 0);
    for (int i = 0; i < N; i++)
        assert_close(g[i], clipped[i], "clip_global_norm", (size_t)i);

    float small[2] = {0.3f, -0.4f};
    assert_close(pst_clip_global_norm(small, 2, 1.0), 0.5, "small norm", 0);
    assert_true(small[0] == 0.3f && small[1] == -0.4f);
    assert_close(pst_clip_global_norm(g, N, 0.0), 5.0, "clipped norm", 0); /* 0: measure only */

    float bad[3] = {1.0f, INFINITY, 2.0f};
    assert_true(isinf(pst_clip_global_norm(bad, 3, 1.0)));
    assert_true(bad[0] == 1.0f && bad[2] == 2.0f);

    float v[N] = {3.0f, -4.0f, 0.5f, 12.0f, -0.25f};
    pst_clip_value(v, N, 1.0f);
    const float want[N] = {1.0f, -1.0f, 0.5f, 1.0f, -0.25f};
    assert_memory_equal(v, want, sizeof want);
}

/* Many elements in double: a float accumulator would lose the small terms beside the large one. */
static void global_norm_accumulates_in_double(void **state)
{
    size_t n = 1u << 20;
    float *g = malloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++)
        g[i] = 1e-3f;
    g[0] = 1000.0f;
    double want = sqrt(1e6 + (double)(n - 1) * 1e-3f * 1e-3f);
    double got = pst_clip_global_norm(g, n, 0.0);
    if (!(fabs(got - want) <= 1e-9 * want))
        fail_msg("norm %.12g, want %.12g", got, want);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_rule_matches_golden),
        cmocka_unit_test(defaults_and_names),
        cmocka_unit_test(rejects_bad_config),
        cmocka_unit_test(state_is_one_block),
        cmocka_unit_test(adam_first_step_by_hand),
        cmocka_unit_test(lookahead_captures_first_weights),
        cmocka_unit_test(state_round_trip_resumes_exactly),
        cmocka_unit_test(clipping),
        cmocka_unit_test(global_norm_accumulates_in_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
