/* Tests for worker/loss: values and gradients against PyTorch, clamping, invalid inputs, the
 * L1/L2 penalty on a hand-computed model. Gradients through a model are checked in model_test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "worker/model/loss.h"
#include "worker/model/model.h"

static void assert_close(const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > tol * (1.0 + fabs(want[i])))
            fail_msg("element %d: got %.9g, want %.9g", i, (double)got[i], want[i]);
}

static void names_parse(void **state)
{
    const char *names[] = {"softmax_ce", "bce", "mse", "mae", "huber"};
    for (int k = PST_LOSS_SOFTMAX_CE; k <= PST_LOSS_HUBER; k++) {
        pst_loss_kind_t kind = PST_LOSS_MAE;
        assert_string_equal(pst_loss_kind_name((pst_loss_kind_t)k), names[k]);
        assert_int_equal(pst_loss_kind_parse(names[k], &kind), PST_OK);
        assert_int_equal(kind, k);
    }
    pst_loss_kind_t kind = PST_LOSS_MSE;
    assert_int_equal(pst_loss_kind_parse("cross_entropy", &kind), PST_OK);
    assert_int_equal(kind, PST_LOSS_SOFTMAX_CE);
    assert_int_equal(pst_loss_kind_parse("hinge", &kind), PST_EINVAL);
    assert_int_equal(pst_loss_kind_parse("MSE", &kind), PST_EINVAL);
    assert_int_equal(pst_loss_kind_parse(NULL, &kind), PST_EINVAL);
    assert_int_equal(kind, PST_LOSS_SOFTMAX_CE);
}

/* Logits (3, 4) and labels (2, 0, 3); golden numbers from torch.nn.functional.cross_entropy in
 * float64, the non-fused gradient from autograd through -log p[y] with respect to p. */
static const double CE_LOGITS[12] = {1.0, -0.5, 2.0, 0.3, 0.2, 0.1, -1.0, 0.0, -2.0, 1.5, 0.5, 3.0};
static const float CE_LABELS[3] = {2, 0, 3};

static void softmax_rows(const double *logits, float *p, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        double z = 0;
        for (int c = 0; c < cols; c++)
            z += exp(logits[r * cols + c]);
        for (int c = 0; c < cols; c++)
            p[r * cols + c] = (float)(exp(logits[r * cols + c]) / z);
    }
}

static void softmax_ce_matches_torch(void **state)
{
    float p[12], dout[12];
    softmax_rows(CE_LOGITS, p, 3, 4);
    const double fused_grad[12] = {0.0751089537,  0.0167590729, -0.129166029, 0.0372980026,
                                   -0.223131839,  0.0997144352, 0.0331920521, 0.0902253521,
                                   0.00171193797, 0.0566915995, 0.0208556739, -0.0792592114};
    const double p_grad[12] = {0, 0, -0.544215988, 0, -1.00825413, 0, 0, 0, 0, 0, 0, -0.437317702};
    double loss = pst_loss_eval(PST_LOSS_SOFTMAX_CE, p, CE_LABELS, 3, 4, 0, true, dout);
    assert_float_equal(loss, 0.622850899693, 1e-6);
    assert_close(dout, fused_grad, 12, 1e-6);
    loss = pst_loss_eval(PST_LOSS_SOFTMAX_CE, p, CE_LABELS, 3, 4, 0, false, dout);
    assert_float_equal(loss, 0.622850899693, 1e-6);
    assert_close(dout, p_grad, 12, 1e-6);
    assert_float_equal(pst_loss_eval(PST_LOSS_SOFTMAX_CE, p, CE_LABELS, 3, 4, 0, false, NULL),
                       0.622850899693, 1e-6);
}

/* p = (0.9, 0.2, 0.6, 0.01), y = (1, 0, 0, 1): F.binary_cross_entropy and, fused, the gradient of
 * F.binary_cross_entropy_with_logits at logit(p). */
static void bce_matches_torch(void **state)
{
    const float p[4] = {0.9f, 0.2f, 0.6f, 0.01f}, y[4] = {1, 0, 0, 1};
    const double p_grad[4] = {-0.277777778, 0.3125, 0.625, -25};
    const double fused_grad[4] = {-0.025, 0.05, 0.15, -0.2475};
    float dout[4];
    double loss = pst_loss_eval(PST_LOSS_BCE, p, y, 4, 1, 0, false, dout);
    assert_float_equal(loss, 1.46249124621, 1e-6);
    assert_close(dout, p_grad, 4, 1e-6);
    loss = pst_loss_eval(PST_LOSS_BCE, p, y, 4, 1, 0, true, dout);
    assert_float_equal(loss, 1.46249124621, 1e-6);
    assert_close(dout, fused_grad, 4, 1e-6);
}

/* out = (0.5, -1, 3, 2), y = (1, 1.5, 0, 2): residuals (-0.5, -2.5, 3, 0). F.mse_loss, F.l1_loss,
 * F.huber_loss with delta 1 and 2.6 (torch's subgradient of |d| at 0 is 0). */
static void regression_losses_match_torch(void **state)
{
    const float out[4] = {0.5f, -1.0f, 3.0f, 2.0f}, y[4] = {1.0f, 1.5f, 0.0f, 2.0f};
    struct {
        pst_loss_kind_t kind;
        float delta;
        double loss, grad[4];
    } cases[] = {
        {PST_LOSS_MSE, 1.0f, 3.875, {-0.25, -1.25, 1.5, 0}},
        {PST_LOSS_MAE, 1.0f, 1.5, {-0.25, -0.25, 0.25, 0}},
        {PST_LOSS_HUBER, 1.0f, 1.15625, {-0.125, -0.25, 0.25, 0}},
        {PST_LOSS_HUBER, 2.6f, 1.9175, {-0.125, -0.625, 0.65, 0}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        float dout[4];
        for (int fused = 0; fused < 2; fused++) {
            double loss = pst_loss_eval(cases[c].kind, out, y, 4, 1, cases[c].delta, fused, dout);
            assert_float_equal(loss, cases[c].loss, 1e-6);
            assert_close(dout, cases[c].grad, 4, 1e-6);
        }
    }
}

/* A probability of exactly 0 or 1 is clamped to 1e-7 inside the log: finite loss and gradient. */
static void probabilities_are_clamped(void **state)
{
    const float p[3] = {0.0f, 1.0f, 0.0f}, label[1] = {0};
    float dout[3];
    double loss = pst_loss_eval(PST_LOSS_SOFTMAX_CE, p, label, 1, 3, 0, false, dout);
    assert_float_equal(loss, -log(1e-7), 1e-9);
    assert_true(isfinite(dout[0]) && dout[0] < -1e6);
    const float pb[2] = {0.0f, 1.0f}, yb[2] = {1, 0};
    loss = pst_loss_eval(PST_LOSS_BCE, pb, yb, 2, 1, 0, false, dout);
    assert_float_equal(loss, -log(1e-7), 1e-6);
    assert_true(isfinite(dout[0]) && isfinite(dout[1]));
    loss = pst_loss_eval(PST_LOSS_BCE, pb, yb, 2, 1, 0, true, dout);
    assert_float_equal(dout[0], -0.5, 1e-9);
    assert_float_equal(dout[1], 0.5, 1e-9);
}

/* Inputs the loss cannot be computed on give NaN, which the training loop reports. */
static void invalid_inputs_give_nan(void **state)
{
    const float p[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    const float out_of_range[2] = {0, 2}, negative[2] = {-1, 0}, fractional[2] = {0.5f, 1};
    assert_true(isnan(pst_loss_eval(PST_LOSS_SOFTMAX_CE, p, out_of_range, 2, 2, 0, true, NULL)));
    assert_true(isnan(pst_loss_eval(PST_LOSS_SOFTMAX_CE, p, negative, 2, 2, 0, true, NULL)));
    assert_true(isnan(pst_loss_eval(PST_LOSS_SOFTMAX_CE, p, fractional, 2, 2, 0, true, NULL)));
    const float y01[2] = {0, 1}, y_bad[2] = {0, 2};
    assert_true(isnan(pst_loss_eval(PST_LOSS_BCE, p, y01, 2, 2, 0, true, NULL)));
    assert_true(isnan(pst_loss_eval(PST_LOSS_BCE, p, y_bad, 2, 1, 0, true, NULL)));
    assert_true(isnan(pst_loss_eval(PST_LOSS_MSE, p, y01, 2, 2, 0, false, NULL)));
    assert_true(isnan(pst_loss_eval(PST_LOSS_HUBER, p, y01, 2, 1, 0.0f, false, NULL)));
    assert_true(isnan(pst_loss_eval(PST_LOSS_MAE, p, y01, 0, 1, 0, false, NULL)));
    assert_false(isnan(pst_loss_eval(PST_LOSS_HUBER, p, y01, 2, 1, 1.0f, false, NULL)));
}

/* Dense 3 -> 2 with W = ((1, -2, 0), (0.5, 0, -1)), b = (3, -4): sum|w| = 4.5, sum w^2 = 6.25. */
static void penalty_by_hand(void **state)
{
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_DENSE, .units = 2, .rate = 0.0f}};
    pst_model_t *m = pst_model_new(3, spec, 1, 1, NULL);
    assert_non_null(m);
    const float params[8] = {1, -2, 0, 0.5f, 0, -1, 3, -4};
    memcpy(pst_model_params(m), params, sizeof(params));
    float *g = pst_model_grads(m);
    for (int i = 0; i < 8; i++)
        g[i] = 1.0f;
    assert_float_equal(pst_loss_penalty(m, 0.0f, 0.0f, true), 0.0, 0.0);
    assert_float_equal(pst_loss_penalty(m, 0.1f, 0.2f, false), 0.45 + 0.1 * 6.25, 1e-6);
    for (int i = 0; i < 8; i++)
        assert_true(g[i] == 1.0f);
    assert_float_equal(pst_loss_penalty(m, 0.1f, 0.2f, true), 1.075, 1e-6);
    /* g += 0.1 sign(w) + 0.2 w; sign(0) = 0; biases untouched. */
    const double want[8] = {1.3, 0.5, 1.0, 1.2, 1.0, 0.7, 1.0, 1.0};
    assert_close(g, want, 8, 1e-6);
    assert_float_equal(pst_loss_penalty(m, 0.0f, 1.0f, false), 3.125, 1e-6);
    assert_float_equal(pst_loss_penalty(m, 1.0f, 0.0f, false), 4.5, 1e-6);
    pst_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_parse),
        cmocka_unit_test(softmax_ce_matches_torch),
        cmocka_unit_test(bce_matches_torch),
        cmocka_unit_test(regression_losses_match_torch),
        cmocka_unit_test(probabilities_are_clamped),
        cmocka_unit_test(invalid_inputs_give_nan),
        cmocka_unit_test(penalty_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
