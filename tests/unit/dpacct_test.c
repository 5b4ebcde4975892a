/* Tests for common/dpacct: exact RDP without subsampling, RDP against numerical integration,
 * TensorFlow Privacy's published epsilons, composition, conversions, calibration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common/fed/dpacct.h"

static void assert_rel(double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want)))
        fail_msg("got %.17g, want %.17g (relative error %.3g > %.3g)", got, want,
                 fabs(got - want) / fabs(want), rel);
}

static pst_dpacct_t *make(double q, double sigma, const double *orders, size_t n_orders)
{
    pst_err_t err = {0};
    pst_dpacct_t *a = orders != NULL ? pst_dpacct_new_orders(q, sigma, orders, n_orders, &err)
                                     : pst_dpacct_new(q, sigma, &err);
    if (a == NULL)
        fail_msg("pst_dpacct_new: %s", err.msg);
    return a;
}

static double epsilon(const pst_dpacct_t *a, double delta, pst_dpacct_conv_t conv, double *order)
{
    double eps = NAN;
    pst_err_t err = {0};
    if (pst_dpacct_epsilon_conv(a, delta, conv, &eps, order, &err) != PST_OK)
        fail_msg("epsilon: %s", err.msg);
    return eps;
}

static void no_subsampling_is_exact(void **state)
{
    (void)state;
    /* q = 1 is the plain Gaussian mechanism: RDP(alpha) = alpha / (2 sigma^2); sigma = 2 gives
     * alpha / 8. */
    const double alphas[] = {2, 3, 7.5, 256};
    for (int i = 0; i < 4; i++)
        assert_rel(pst_dpacct_rdp_step(1, 2, alphas[i]), alphas[i] / 8, 1e-15);
    assert_true(pst_dpacct_rdp_step(0, 1, 3) == 0.0);
    assert_true(isinf(pst_dpacct_rdp_step(0.1, 0, 3)));
    assert_true(isnan(pst_dpacct_rdp_step(1.5, 1, 3)));
    assert_true(isnan(pst_dpacct_rdp_step(0.1, 1, 1.0)));
    assert_true(isnan(pst_dpacct_rdp_step(0.1, -1, 2)));
}

static void no_subsampling_epsilon_by_hand(void **state)
{
    (void)state;
    /* q = 1, sigma = 1, one step, delta = e^-50: eps(alpha) = alpha/2 + 50/(alpha - 1), whose
     * minimum over real alpha is at alpha - 1 = sqrt(2 * 50) = 10: eps(11) = 5.5 + 5 = 10.5
     * (neighbours: eps(10.9) = 5.45 + 50/9.9 = 10.505, eps(12) = 6 + 50/11 = 10.545). */
    double delta = exp(-50), order = 0;
    pst_dpacct_t *a = make(1, 1, NULL, 0);
    pst_dpacct_step(a);
    assert_rel(epsilon(a, delta, PST_DPACCT_STANDARD, &order), 10.5, 1e-12);
    assert_true(order == 11);
    pst_dpacct_destroy(&a);
    pst_dpacct_destroy(&a);
    assert_null(a);

    /* Composition: 4 steps at sigma = 2 spend 4 * alpha/8 = alpha/2, the same as above. */
    a = make(1, 2, NULL, 0);
    for (int i = 0; i < 4; i++)
        pst_dpacct_step(a);
    assert_int_equal(pst_dpacct_steps(a), 4);
    double eps = 0;
    assert_int_equal(pst_dpacct_epsilon(a, delta, &eps, NULL), PST_OK);
    assert_rel(eps, 10.5, 1e-12);
    pst_dpacct_destroy(&a);

    /* Balle et al. at the single order 11: 5.5 + log(10/11) - (-50 + log 11)/10
     * = 5.5 - 0.0953101798 + 5 - 0.2397895273 = 10.1649002929. */
    const double eleven = 11;
    a = make(1, 1, &eleven, 1);
    pst_dpacct_step(a);
    assert_rel(epsilon(a, delta, PST_DPACCT_BALLE, NULL), 10.1649002929, 1e-10);
    assert_rel(epsilon(a, delta, PST_DPACCT_STANDARD, NULL), 10.5, 1e-12);
    pst_dpacct_destroy(&a);
}

static void rdp_matches_numerical_integration(void **state)
{
    (void)state;
    /* Reference: log(A)/(alpha-1) with A the integral over z of
     * mu0(z) ((1-q) + q mu1(z)/mu0(z))^alpha, mu0 = N(0, sigma^2), mu1 = N(1, sigma^2),
     * integrated by mpmath.quad at 40 digits (integer orders by the exact binomial sum at 50
     * digits) — an evaluation independent of the series used here. */
    static const double table[][4] = {
        {0.01, 0.8, 2.5, 0.0004894537156697903},
        {0.01, 0.8, 7.3, 0.38811354606390388},
        {0.01, 0.8, 32, 20.246275937044548},
        {0.5, 10, 1.1, 0.001377060014973602},
        {0.5, 10, 1.5, 0.0018796884753311767},
        {0.5, 1, 1.1, 0.15613047568549298},
        {0.3, 2, 3.7, 0.051984626899272513},
        {1e-5, 0.1, 1.25, 5.9575608855150503},
        {256.0 / 60000, 1.1, 8.8, 0.00010896430075952502},
        {0.9, 0.5, 1.3, 2.3016291957767187},
        {0.5, 10, 200, 0.45097318542403207},
        {1e-4, 50, 3, 6.0012004001080291e-12},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        assert_rel(pst_dpacct_rdp_step(table[i][0], table[i][1], table[i][2]), table[i][3], 1e-8);
    /* A fractional order with a tiny RDP (5.0010002e-12) loses relative precision to the
     * cancellation in log A ~ 7.5e-12 (absolute error ~1e-16): still within 1e-4. */
    assert_rel(pst_dpacct_rdp_step(1e-4, 50, 2.5), 5.0010002333800082e-12, 1e-4);
}

/* The orders of TensorFlow Privacy's compute_dp_sgd_privacy_lib. */
static size_t tf_lib_orders(double *o)
{
    static const double head[] = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
    size_t c = 0;
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        o[c++] = head[i];
    for (int a = 5; a < 64; a++)
        o[c++] = a;
    o[c++] = 128;
    o[c++] = 256;
    o[c++] = 512;
    return c;
}

/* One compute_dp_sgd_privacy case: n examples, batch b, sigma, epochs; steps as there:
 * ceil(epochs * n / b). */
static void tf_case(double n, double b, double sigma, double epochs, double delta,
                    double want_standard, double want_order, double want_balle)
{
    double orders[80];
    size_t n_orders = tf_lib_orders(orders);
    pst_dpacct_t *a = make(b / n, sigma, orders, n_orders);
    pst_dpacct_step_n(a, (uint64_t)ceil(epochs * n / b));
    double order = 0;
    assert_rel(epsilon(a, delta, PST_DPACCT_STANDARD, &order), want_standard, 1e-8);
    assert_true(order == want_order);
    assert_rel(epsilon(a, delta, PST_DPACCT_BALLE, &order), want_balle, 1e-8);
    assert_true(order == want_order);
    pst_dpacct_destroy(&a);
}

static void tf_privacy_published_cases(void **state)
{
    (void)state;
    /* TensorFlow Privacy's compute_dp_sgd_privacy_test: (n, batch, sigma, epochs, delta) ->
     * (eps, order). Its older releases converted RDP with the standard formula (0.941870567,
     * 1.70928734, 5907984.81339406); releases built on dp_accounting use the conversion of
     * Balle et al. 2020 on the same RDP (0.7242234026109595, 1.4154988495444845,
     * 5907982.31138195). The third case is decided by the fractional order 1.25. */
    tf_case(60000, 150, 1.3, 15, 1e-5, 0.941870567, 19, 0.7242234026109595);
    tf_case(100000, 100, 1.0, 30, 1e-7, 1.70928734, 13, 1.4154988495444845);
    tf_case(100000000, 1024, 0.1, 10, 1e-7, 5907984.81339406, 1.25, 5907982.31138195);
}

static void tf_privacy_mnist_tutorial(void **state)
{
    (void)state;
    /* TensorFlow Privacy's MNIST DP-SGD tutorial (tutorials/README.md): 60000 examples, batch
     * 256, noise multiplier 1.12 (the README's table; 1.1 gives 3.01, see below), delta 1e-5,
     * 60000 // 256 = 234 steps an epoch, orders 1 + x/10 for x = 1..99 plus 12..63, standard
     * conversion. Published: 1.00 after epoch 1, 1.04 after epoch 2, 2.92 after epoch 60. The
     * full-precision figures (1.0003009124, 1.0411913694, 2.9198905203) are from an independent
     * evaluation of the same sums at 50 digits. */
    double orders[160];
    size_t n = 0;
    for (int x = 1; x < 100; x++)
        orders[n++] = 1 + x / 10.0;
    for (int a = 12; a < 64; a++)
        orders[n++] = a;
    pst_dpacct_t *a = make(256.0 / 60000, 1.12, orders, n);
    double want[] = {1.0003009124, 1.0411913694}, eps = 0;
    for (int epoch = 1; epoch <= 60; epoch++) {
        pst_dpacct_step_n(a, 234);
        eps = epsilon(a, 1e-5, PST_DPACCT_STANDARD, NULL);
        if (epoch <= 2)
            assert_rel(eps, want[epoch - 1], 1e-9);
    }
    assert_int_equal(pst_dpacct_steps(a), 14040);
    assert_rel(eps, 2.9198905203, 1e-9);
    pst_dpacct_destroy(&a);

    /* With noise multiplier 1.1 the same run spends 3.0058748679, not 2.92. */
    a = make(256.0 / 60000, 1.1, orders, n);
    pst_dpacct_step_n(a, 14040);
    assert_rel(epsilon(a, 1e-5, PST_DPACCT_STANDARD, NULL), 3.0058748679, 1e-9);
    pst_dpacct_destroy(&a);
}

static void composition_is_additive(void **state)
{
    (void)state;
    pst_dpacct_t *one = make(0.02, 0.9, NULL, 0), *ten = make(0.02, 0.9, NULL, 0);
    pst_dpacct_step(one);
    pst_dpacct_step_n(ten, 10);
    size_t n = pst_dpacct_n_orders(one);
    const double *orders = pst_dpacct_orders(one);
    double *r1 = pst_dpacct_rdp(one), *r10 = pst_dpacct_rdp(ten);
    for (size_t o = 0; o < n; o++) {
        assert_rel(r10[o], 10 * r1[o], 1e-14);
        assert_rel(r1[o], pst_dpacct_rdp_step(0.02, 0.9, orders[o]), 0);
    }
    /* Another mechanism composed on top adds its own RDP. */
    assert_int_equal(pst_dpacct_compose(ten, 0.05, 1.5, 3, NULL), PST_OK);
    assert_int_equal(pst_dpacct_steps(ten), 13);
    for (size_t o = 0; o < n; o++)
        assert_rel(r10[o], 10 * r1[o] + 3 * pst_dpacct_rdp_step(0.05, 1.5, orders[o]), 1e-14);
    /* More steps never spend less; Balle's conversion is never looser than the standard. */
    double e1 = epsilon(one, 1e-6, PST_DPACCT_STANDARD, NULL);
    double e10 = epsilon(ten, 1e-6, PST_DPACCT_STANDARD, NULL);
    double b10 = epsilon(ten, 1e-6, PST_DPACCT_BALLE, NULL);
    assert_true(e1 > 0 && e1 < e10);
    assert_true(b10 < e10);
    /* Restoring a checkpoint: the accumulated RDP and counter copied into a fresh accountant. */
    pst_dpacct_t *copy = make(0.02, 0.9, NULL, 0);
    memcpy(pst_dpacct_rdp(copy), r10, n * sizeof *r10);
    pst_dpacct_set_steps(copy, pst_dpacct_steps(ten));
    assert_true(epsilon(copy, 1e-6, PST_DPACCT_STANDARD, NULL) == e10);
    assert_int_equal(pst_dpacct_steps(copy), 13);
    pst_dpacct_destroy(&one);
    pst_dpacct_destroy(&ten);
    pst_dpacct_destroy(&copy);
}

static void degenerate_cases_and_errors(void **state)
{
    (void)state;
    pst_err_t err = {0};
    double eps = -1, order = 0;
    /* Nothing composed: nothing spent. */
    pst_dpacct_t *a = make(0.01, 1, NULL, 0);
    assert_int_equal(pst_dpacct_epsilon_conv(a, 1e-5, PST_DPACCT_STANDARD, &eps, &order, &err),
                     PST_OK);
    assert_true(eps == 0.0);
    assert_true(isnan(order));
    assert_int_equal(pst_dpacct_epsilon(a, 0, &eps, &err), PST_EINVAL);
    assert_int_equal(pst_dpacct_epsilon(a, 1, &eps, &err), PST_EINVAL);
    assert_int_equal(pst_dpacct_compose(a, 2, 1, 1, &err), PST_EINVAL);
    pst_dpacct_destroy(&a);
    /* No noise: no privacy. */
    a = make(0.01, 0, NULL, 0);
    pst_dpacct_step(a);
    assert_true(isinf(epsilon(a, 1e-5, PST_DPACCT_STANDARD, &order)));
    assert_true(isnan(order));
    pst_dpacct_destroy(&a);
    /* Bad mechanisms and orders. */
    assert_null(pst_dpacct_new(-0.1, 1, &err));
    assert_int_equal(err.code, PST_EINVAL);
    assert_null(pst_dpacct_new(0.1, NAN, &err));
    const double bad_orders[] = {2, 1};
    assert_null(pst_dpacct_new_orders(0.1, 1, bad_orders, 2, &err));
    assert_null(pst_dpacct_new_orders(0.1, 1, bad_orders, 0, &err));
}

static void default_orders(void **state)
{
    (void)state;
    /* 90 non-integers of 1.1..10.9, plus 1.25, 1.75, 2.25, plus the 255 integers 2..256. */
    size_t n = pst_dpacct_default_orders(NULL, 0);
    assert_int_equal(n, 348);
    double o[348];
    assert_int_equal(pst_dpacct_default_orders(o, 348), 348);
    assert_true(o[0] == 1.1 && o[1] == 1.2 && o[2] == 1.25 && o[347] == 256);
    int integers = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(o[i] > o[i - 1]);
        integers += o[i] == floor(o[i]);
    }
    assert_int_equal(integers, 255);
    pst_dpacct_t *a = make(0.1, 1, NULL, 0);
    assert_int_equal(pst_dpacct_n_orders(a), 348);
    assert_memory_equal(pst_dpacct_orders(a), o, sizeof o);
    pst_dpacct_destroy(&a);
}

static double default_epsilon(double q, double sigma, uint64_t steps, double delta)
{
    pst_dpacct_t *a = make(q, sigma, NULL, 0);
    pst_dpacct_step_n(a, steps);
    double eps = epsilon(a, delta, PST_DPACCT_STANDARD, NULL);
    pst_dpacct_destroy(&a);
    return eps;
}

static void calibration_finds_the_tutorial_noise(void **state)
{
    (void)state;
    /* The tutorial's 2.92 came from sigma = 1.12 over fewer orders; the default orders include
     * those and more, so the calibrated sigma is at most 1.12 and close to it. */
    double q = 256.0 / 60000, sigma = 0;
    pst_err_t err = {0};
    assert_int_equal(
        pst_dpacct_calibrate_sigma(q, 14040, 2.92, 1e-5, PST_DPACCT_STANDARD, &sigma, &err),
        PST_OK);
    assert_true(sigma > 1.115 && sigma <= 1.12);
    assert_true(default_epsilon(q, sigma, 14040, 1e-5) <= 2.92);
    assert_true(default_epsilon(q, sigma * (1 - 1e-4), 14040, 1e-5) > 2.92);
    /* The tighter conversion needs less noise for the same budget. */
    double sigma_balle = 0;
    assert_int_equal(
        pst_dpacct_calibrate_sigma(q, 14040, 2.92, 1e-5, PST_DPACCT_BALLE, &sigma_balle, &err),
        PST_OK);
    assert_true(sigma_balle < sigma);
    /* An unreachable budget and bad arguments. */
    assert_int_equal(
        pst_dpacct_calibrate_sigma(1, 1000000, 1e-9, 1e-5, PST_DPACCT_STANDARD, &sigma, &err),
        PST_ERANGE);
    assert_int_equal(pst_dpacct_calibrate_sigma(q, 0, 1, 1e-5, PST_DPACCT_STANDARD, &sigma, &err),
                     PST_EINVAL);
}

/* epsilon_after predicts exactly what composing the steps then gives, and leaves the accountant
 * as it was. */
static void epsilon_after_predicts_composition(void **state)
{
    (void)state;
    pst_dpacct_t *a = pst_dpacct_new(0.5, 3.0, NULL);
    assert_non_null(a);
    pst_dpacct_step_n(a, 4);
    double before, predicted, after;
    assert_int_equal(pst_dpacct_epsilon(a, 1e-5, &before, NULL), PST_OK);
    assert_int_equal(pst_dpacct_epsilon_after(a, 0.3, 2.0, 2, 1e-5, &predicted, NULL), PST_OK);
    double still;
    assert_int_equal(pst_dpacct_epsilon(a, 1e-5, &still, NULL), PST_OK);
    assert_true(still == before);
    assert_int_equal(pst_dpacct_compose(a, 0.3, 2.0, 2, NULL), PST_OK);
    assert_int_equal(pst_dpacct_epsilon(a, 1e-5, &after, NULL), PST_OK);
    assert_rel(predicted, after, 1e-12);
    assert_true(after > before);
    assert_int_equal(pst_dpacct_epsilon_after(a, 0.3, 2.0, 0, 1e-5, &predicted, NULL), PST_OK);
    assert_true(predicted == after);
    assert_int_equal(pst_dpacct_epsilon_after(a, 1.5, 2.0, 1, 1e-5, &predicted, NULL), PST_EINVAL);
    assert_int_equal(pst_dpacct_epsilon_after(a, 0.3, 2.0, 1, 0, &predicted, NULL), PST_EINVAL);
    pst_dpacct_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_subsampling_is_exact),
        cmocka_unit_test(no_subsampling_epsilon_by_hand),
        cmocka_unit_test(rdp_matches_numerical_integration),
        cmocka_unit_test(tf_privacy_published_cases),
        cmocka_unit_test(tf_privacy_mnist_tutorial),
        cmocka_unit_test(composition_is_additive),
        cmocka_unit_test(degenerate_cases_and_errors),
        cmocka_unit_test(default_orders),
        cmocka_unit_test(calibration_finds_the_tutorial_noise),
        cmocka_unit_test(epsilon_after_predicts_composition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
