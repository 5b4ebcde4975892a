/* Tests for common/ftrl: FTRL-Proximal and AdaGrad steps against hand-computed values, L1 zeroing,
 * the PST_OPT_FTRL optimizer kind, and FTRL on a parameter server's sparse rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common/optim/ftrl.h"
#include "common/optim/optim.h"
#include "ps/shard.h"

static void assert_near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

static const pst_ftrl_cfg_t CFG = {.alpha = 0.5f, .beta = 1.0f, .l1 = 0.1f, .l2 = 0.2f};

/* alpha 0.5, beta 1, l1 0.1, l2 0.2; weight(z, n) = -(z - sign(z) 0.1) / ((1 + sqrt(n)) / 0.5 +
 * 0.2)
 *
 * coordinate 0, fresh (z 0, n 0, w 0), g 0.6:
 *   w_old = 0; sigma = (sqrt(0.36) - 0) / 0.5 = 1.2; z = 0.6 - 1.2 * 0 = 0.6; n = 0.36
 *   w = -(0.6 - 0.1) / ((1 + 0.6) / 0.5 + 0.2) = -0.5 / 3.4 = -0.147058824
 * coordinate 1, with history (z -2, n 4), g 1.5:
 *   w_old = -(-2 + 0.1) / ((1 + 2) / 0.5 + 0.2) = 1.9 / 6.2 = 0.306451613
 *   sigma = (sqrt(4 + 2.25) - 2) / 0.5 = (2.5 - 2) / 0.5 = 1
 *   z = -2 + 1.5 - 1 * 0.306451613 = -0.806451613; n = 6.25
 *   w = -(-0.806451613 + 0.1) / ((1 + 2.5) / 0.5 + 0.2) = 0.706451613 / 7.2 = 0.098118280
 * coordinate 2, fresh, g 0.04 (L1): sigma = 0.04 / 0.5 = 0.08; z = 0.04; n = 0.0016;
 *   |z| = 0.04 <= l1 = 0.1, so w = 0
 * coordinate 3, fresh but holding w = -0.2 (a randomly initialised row), g 0.5:
 *   start z = -(w (beta / alpha + l2) + sign(w) l1) = -(-0.2 * 2.2 - 0.1) = 0.54
 *   w_old = -(0.54 - 0.1) / 2.2 = -0.2 (the start point is kept)
 *   sigma = (sqrt(0.25) - 0) / 0.5 = 1; z = 0.54 + 0.5 - 1 * (-0.2) = 1.24; n = 0.25
 *   w = -(1.24 - 0.1) / ((1 + 0.5) / 0.5 + 0.2) = -1.14 / 3.2 = -0.35625
 * coordinate 4, fresh holding w = 0.3, g 0: z = -(0.3 * 2.2 + 0.1) = -0.76, n = 0, w stays 0.3 */
static void ftrl_one_step_by_hand(void **state)
{
    float w[5] = {0.0f, 0.0f, 0.0f, -0.2f, 0.3f};
    float z[5] = {0.0f, -2.0f, 0.0f, 0.0f, 0.0f};
    float n[5] = {0.0f, 4.0f, 0.0f, 0.0f, 0.0f};
    const float g[5] = {0.6f, 1.5f, 0.04f, 0.5f, 0.0f};
    assert_int_equal(pst_ftrl_cfg_check(&CFG, NULL), PST_OK);
    assert_near(pst_ftrl_weight(&CFG, -2.0f, 4.0f), 0.306451613, 1e-6);

    pst_ftrl_update(&CFG, w, z, n, g, 5);

    const double want_w[5] = {-0.147058824, 0.098118280, 0.0, -0.35625, 0.3};
    const double want_z[5] = {0.6, -0.806451613, 0.04, 1.24, -0.76};
    const double want_n[5] = {0.36, 6.25, 0.0016, 0.25, 0.0};
    for (int i = 0; i < 5; i++) {
        assert_near(w[i], want_w[i], 1e-6);
        assert_near(z[i], want_z[i], 1e-6);
        assert_near(n[i], want_n[i], 1e-7);
    }
    assert_true(w[2] == 0.0f);

    float again[5];
    pst_ftrl_weights(&CFG, again, z, n, 5);
    for (int i = 0; i < 5; i++)
        assert_near(again[i], w[i], 1e-7);
}

/* Coordinate 0 above, second step with g -0.8:
 *   w_old = -0.147058824; sigma = (sqrt(0.36 + 0.64) - 0.6) / 0.5 = 0.8
 *   z = 0.6 - 0.8 - 0.8 * (-0.147058824) = -0.082352941; n = 1
 *   |z| <= l1 = 0.1: the weight is exactly 0 although the coordinate has moved. */
static void ftrl_l1_zeroes_a_weight(void **state)
{
    float w = 0.0f, z = 0.0f, n = 0.0f;
    float g = 0.6f;
    pst_ftrl_update(&CFG, &w, &z, &n, &g, 1);
    assert_true(w < -0.1f);
    g = -0.8f;
    pst_ftrl_update(&CFG, &w, &z, &n, &g, 1);
    assert_near(z, -0.082352941, 1e-6);
    assert_near(n, 1.0, 1e-6);
    assert_true(w == 0.0f);
}

/* FTRL's l1 weighs against the sum of the gradients seen: a weight at 0 under the constant
 * gradient -t of (w - t)^2 / 2 has |z| = |t| T after T steps, and stays exactly 0 while that is
 * <= l1. With T = 200 and l1 = 5, the small targets (|t| T = 1 and 1.6) stay at 0; the large ones
 * leave 0 at once and reach their target (at w = t the gradient is 0, so z stops moving there). */
static void ftrl_l1_sparsifies_a_solution(void **state)
{
    const pst_ftrl_cfg_t cfg = {.alpha = 1.0f, .beta = 1.0f, .l1 = 5.0f, .l2 = 0.0f};
    const float target[4] = {0.005f, -0.008f, 1.5f, -2.0f};
    float w[4] = {0}, z[4] = {0}, n[4] = {0}, g[4];
    for (int step = 0; step < 200; step++) {
        for (int i = 0; i < 4; i++)
            g[i] = w[i] - target[i];
        pst_ftrl_update(&cfg, w, z, n, g, 4);
    }
    assert_true(w[0] == 0.0f && w[1] == 0.0f);
    assert_near(w[2], 1.5, 1e-3);
    assert_near(w[3], -2.0, 1e-3);
}

/* lr 0.1, eps 1e-10, l2 0.5:
 *   coordinate 0: w 1, acc 0, g 0.3: d = 0.3 + 0.5 * 1 = 0.8; acc = 0.64;
 *     w = 1 - 0.1 * 0.8 / sqrt(0.64) = 0.9
 *   coordinate 1: w -2, acc 1, g 0.4: d = 0.4 + 0.5 * (-2) = -0.6; acc = 1.36;
 *     w = -2 - 0.1 * (-0.6) / sqrt(1.36) = -2 + 0.06 / 1.166190379 = -1.948550424
 *   coordinate 2: w 0, acc 0, g 0: nothing moves (no 0 / 0) */
static void adagrad_one_step_by_hand(void **state)
{
    const pst_ftrl_adagrad_cfg_t cfg = {.lr = 0.1f, .eps = 1e-10f, .l2 = 0.5f};
    float w[3] = {1.0f, -2.0f, 0.0f}, acc[3] = {0.0f, 1.0f, 0.0f};
    const float g[3] = {0.3f, 0.4f, 0.0f};
    assert_int_equal(pst_ftrl_adagrad_cfg_check(&cfg, NULL), PST_OK);
    pst_ftrl_adagrad_update(&cfg, w, acc, g, 3);
    assert_near(w[0], 0.9, 1e-6);
    assert_near(acc[0], 0.64, 1e-6);
    assert_near(w[1], -1.948550424, 1e-6);
    assert_near(acc[1], 1.36, 1e-6);
    assert_true(w[2] == 0.0f && acc[2] == 0.0f);
}

static void configs_are_checked(void **state)
{
    pst_err_t err = {0};
    pst_ftrl_cfg_t f;
    pst_ftrl_cfg_defaults(&f);
    assert_int_equal(pst_ftrl_cfg_check(&f, &err), PST_OK);
    f.alpha = 0.0f;
    assert_int_equal(pst_ftrl_cfg_check(&f, &err), PST_EINVAL);
    pst_ftrl_cfg_defaults(&f);
    f.l1 = -1.0f;
    assert_int_equal(pst_ftrl_cfg_check(&f, &err), PST_EINVAL);
    f.l1 = NAN;
    assert_int_equal(pst_ftrl_cfg_check(&f, &err), PST_EINVAL);

    pst_ftrl_adagrad_cfg_t a;
    pst_ftrl_adagrad_cfg_defaults(&a);
    assert_int_equal(pst_ftrl_adagrad_cfg_check(&a, &err), PST_OK);
    a.lr = -0.1f;
    assert_int_equal(pst_ftrl_adagrad_cfg_check(&a, &err), PST_EINVAL);

    pst_optim_cfg_t o;
    pst_optim_cfg_defaults(&o, PST_OPT_FTRL);
    assert_true(o.ftrl_beta == 1.0f && o.ftrl_l1 == 0.0f && o.ftrl_l2 == 0.0f);
    o.weight_decay = 0.1f;
    assert_null(pst_optim_new(&o, 3, &err));
    assert_int_equal(err.code, PST_EINVAL);
    o.weight_decay = 0.0f;
    o.lookahead_k = 5;
    assert_null(pst_optim_new(&o, 3, &err));
    o.lookahead_k = 0;
    o.ftrl_beta = 0.0f;
    assert_null(pst_optim_new(&o, 3, &err));
}

/* PST_OPT_FTRL: parsed by name, state [z | n] of 2n floats, and every step equal to pst_ftrl_update
 * with alpha = lr, including a changing lr; lr 0 changes nothing. */
static void optim_kind_runs_ftrl(void **state)
{
    pst_optim_kind_t kind = PST_OPT_SGD;
    assert_int_equal(pst_optim_kind_parse("ftrl", &kind), PST_OK);
    assert_int_equal(kind, PST_OPT_FTRL);
    assert_string_equal(pst_optim_kind_name(PST_OPT_FTRL), "ftrl");

    pst_optim_cfg_t o;
    pst_optim_cfg_defaults(&o, PST_OPT_FTRL);
    o.ftrl_beta = 0.5f;
    o.ftrl_l1 = 0.05f;
    o.ftrl_l2 = 0.1f;
    pst_optim_t *opt = pst_optim_new(&o, 3, NULL);
    assert_non_null(opt);
    size_t n_state = 0;
    float *st = pst_optim_state(opt, &n_state);
    assert_int_equal(n_state, 6);

    float w[3] = {0.1f, 0.0f, -0.3f}, ref_w[3], ref_z[3] = {0}, ref_n[3] = {0};
    memcpy(ref_w, w, sizeof w);
    const float grads[4][3] = {
        {0.2f, -0.5f, 0.1f}, {-0.3f, 0.4f, 0.0f}, {0.05f, 0.1f, -0.7f}, {0.3f, -0.2f, 0.25f}};
    const float lrs[4] = {0.3f, 0.3f, 0.2f, 0.1f};
    for (int t = 0; t < 4; t++) {
        pst_optim_step(opt, w, grads[t], lrs[t]);
        pst_ftrl_cfg_t f = {.alpha = lrs[t], .beta = 0.5f, .l1 = 0.05f, .l2 = 0.1f};
        pst_ftrl_update(&f, ref_w, ref_z, ref_n, grads[t], 3);
        for (int i = 0; i < 3; i++) {
            assert_near(w[i], ref_w[i], 1e-6);
            assert_near(st[i], ref_z[i], 1e-6);
            assert_near(st[3 + i], ref_n[i], 1e-6);
        }
    }
    pst_optim_step(opt, w, grads[0], 0.0f);
    for (int i = 0; i < 3; i++) {
        assert_near(w[i], ref_w[i], 1e-6);
        assert_near(st[3 + i], ref_n[i], 1e-6);
    }
    pst_optim_destroy(&opt);
}

/* The row-block AdaGrad is the optimizer kind's AdaGrad on caller-owned state. */
static void adagrad_matches_optim_kind(void **state)
{
    pst_optim_cfg_t o;
    pst_optim_cfg_defaults(&o, PST_OPT_ADAGRAD);
    o.weight_decay = 0.05f;
    pst_optim_t *opt = pst_optim_new(&o, 4, NULL);
    assert_non_null(opt);
    const pst_ftrl_adagrad_cfg_t a = {.lr = 0.2f, .eps = o.eps, .l2 = 0.05f};
    float w[4] = {0.5f, -1.0f, 0.25f, 2.0f}, ref_w[4], acc[4] = {0};
    memcpy(ref_w, w, sizeof w);
    const float g[3][4] = {
        {0.1f, -0.2f, 0.3f, 0.4f}, {-0.5f, 0.6f, 0.0f, 0.1f}, {0.2f, 0.2f, -0.3f, -0.4f}};
    for (int t = 0; t < 3; t++) {
        pst_optim_step(opt, w, g[t], a.lr);
        pst_ftrl_adagrad_update(&a, ref_w, acc, g[t], 4);
        for (int i = 0; i < 4; i++)
            assert_near(ref_w[i], w[i], 1e-6);
    }
    pst_optim_destroy(&opt);
}

/* How a server runs FTRL on sparse rows: a shard made with PST_OPT_FTRL keeps [z | n] per row and
 * steps each row with alpha = the push's lr; rows created with random values keep them as their
 * start point. The shard's rows equal pst_ftrl_update applied to the same start rows. */
static void shard_runs_ftrl_on_sparse_rows(void **state)
{
    pst_optim_cfg_t o;
    pst_optim_cfg_defaults(&o, PST_OPT_FTRL);
    o.ftrl_l1 = 0.02f;
    o.ftrl_l2 = 0.5f;
    pst_shard_t *sh = pst_shard_new(0, 1, &o, NULL);
    assert_non_null(sh);
    enum { WIDTH = 3, N_KEYS = 4 };
    int idx = pst_shard_add_sparse(sh, 1, 1, WIDTH, 0.1f, 42, NULL);
    assert_true(idx >= 0);
    pst_slice_t *s = pst_shard_slice(sh, (size_t)idx);
    assert_true(pst_slice_stateful(s));

    const uint64_t keys[N_KEYS] = {3, 17, 1ull << 40, 99};
    uint32_t rows[N_KEYS];
    assert_int_equal(pst_slice_rows(s, keys, N_KEYS, rows, NULL), PST_OK);
    float ref_w[N_KEYS * WIDTH], ref_z[N_KEYS * WIDTH] = {0}, ref_n[N_KEYS * WIDTH] = {0};
    pst_slice_gather(s, rows, N_KEYS, ref_w);

    float g[N_KEYS * WIDTH];
    const float lr = 0.25f;
    pst_ftrl_cfg_t f = {.alpha = lr, .beta = 1.0f, .l1 = 0.02f, .l2 = 0.5f};
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < N_KEYS * WIDTH; i++)
            g[i] = 0.1f * (float)((i * 7 + t * 3) % 11) - 0.5f;
        assert_int_equal(pst_slice_sparse_step(s, rows, N_KEYS, g, lr, NULL), PST_OK);
        pst_ftrl_update(&f, ref_w, ref_z, ref_n, g, N_KEYS * WIDTH);
    }
    float got[N_KEYS * WIDTH];
    pst_slice_gather(s, rows, N_KEYS, got);
    for (int i = 0; i < N_KEYS * WIDTH; i++)
        assert_near(got[i], ref_w[i], 1e-6);
    /* the row's checkpointable state is [z | n] of its row_width coordinates */
    size_t n_state = 0;
    uint64_t steps = 0;
    const float *st = pst_slice_row_state(s, rows[1], &n_state, &steps);
    assert_non_null(st);
    assert_int_equal(n_state, 2 * WIDTH);
    for (int j = 0; j < WIDTH; j++) {
        assert_near(st[j], ref_z[WIDTH + j], 1e-6);
        assert_near(st[WIDTH + j], ref_n[WIDTH + j], 1e-6);
    }
    pst_shard_destroy(&sh);
}

/* The block update for kept weights equals pst_ftrl_update bit for bit over many steps of
 * coordinates in every state: fresh with w 0, fresh with a start weight, with history, inside
 * and outside the L1 band, zero gradients; once with l1 and l2, once without. */
static void ftrl_update_kept_equals_update(void **state)
{
    enum { N = 37, STEPS = 50 };
    const pst_ftrl_cfg_t cfgs[2] = {CFG, {.alpha = 0.1f, .beta = 1.0f / 64, .l1 = 0, .l2 = 0}};
    for (int c = 0; c < 2; c++) {
        float w[N], z[N], n[N], kw[N], kz[N], kn[N], g[N];
        uint64_t r = 88172645463325252ull;
        for (int i = 0; i < N; i++) {
            w[i] = i % 3 == 0 ? 0.0f : 0.01f * (float)(i % 7) - 0.03f;
            z[i] = 0.0f;
            n[i] = 0.0f;
        }
        memcpy(kw, w, sizeof w);
        memcpy(kz, z, sizeof z);
        memcpy(kn, n, sizeof n);
        for (int t = 0; t < STEPS; t++) {
            for (int i = 0; i < N; i++) {
                r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                /* a zero gradient one time in five, else in (-1, 1) scaled down for the L1 band */
                float u = (float)(r >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
                g[i] = (r & 7) < 2 ? 0.0f : u * ((r >> 3 & 1) ? 1.0f : 0.05f);
            }
            pst_ftrl_update(&cfgs[c], w, z, n, g, N);
            pst_ftrl_update_kept(&cfgs[c], kw, kz, kn, g, N);
            assert_memory_equal(w, kw, sizeof w);
            assert_memory_equal(z, kz, sizeof z);
            assert_memory_equal(n, kn, sizeof n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ftrl_one_step_by_hand),
        cmocka_unit_test(ftrl_update_kept_equals_update),
        cmocka_unit_test(ftrl_l1_zeroes_a_weight),
        cmocka_unit_test(ftrl_l1_sparsifies_a_solution),
        cmocka_unit_test(adagrad_one_step_by_hand),
        cmocka_unit_test(configs_are_checked),
        cmocka_unit_test(optim_kind_runs_ftrl),
        cmocka_unit_test(adagrad_matches_optim_kind),
        cmocka_unit_test(shard_runs_ftrl_on_sparse_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
