/* Tests for worker/model/onnxlayout.c: pstrain's conv2d weights read as OIHW, and lstm and gru
 * weights rewritten as ONNX's W, R and B, checked two ways: the entries land where ONNX's gate
 * order puts them, and ONNX's own equations (as its operator documentation states them) run on
 * the converted weights give pstrain's forward, for hand-made weights and inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "common/log.h"
#include "worker/model/model.h"
#include "worker/model/onnxlayout.h"

/* Distinct hand-made values in [-0.5, 0.5): every entry tells where it came from. */
static float made(int i)
{
    return (float)((i * 37) % 101) / 101.0f - 0.5f;
}

static pst_model_t *model_with(int n_inputs, const pst_layer_spec_t *layers, int n_layers)
{
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(n_inputs, layers, n_layers, 4, &err);
    assert_non_null(m);
    float *p = pst_model_params(m);
    for (size_t i = 0; i < pst_model_n_params(m); i++)
        p[i] = made((int)i + 5);
    return m;
}

/* ---- conv2d ---- */

static void conv_weights_are_oihw(void **state)
{
    (void)state;
    enum { C = 2, H = 5, W = 6, O = 3, K = 3, STRIDE = 2, PAD = 1, N = 2 };
    const pst_layer_spec_t layers[] = {
        {.kind = PST_LAYER_INPUT, .channels = C, .height = H, .width = W},
        {.kind = PST_LAYER_CONV2D, .channels = O, .kernel = K, .stride = STRIDE, .pad = PAD}};
    pst_model_t *m = model_with(C * H * W, layers, 2);
    int64_t dims[4];
    pst_onnx_conv_dims(O, C, K, dims);
    assert_int_equal(dims[0], O);
    assert_int_equal(dims[1], C);
    assert_int_equal(dims[2], K);
    assert_int_equal(dims[3], K);
    const pst_tensor_info_t *wt = pst_model_tensor(m, 0);
    assert_int_equal(wt->size, (size_t)(dims[0] * dims[1] * dims[2] * dims[3]));
    float x[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++)
        x[i] = made(3 * i + 1);
    const float *y = pst_model_forward(m, x, N, false, NULL);
    const float *w = pst_model_params(m) + wt->offset;
    const float *b = pst_model_params(m) + pst_model_tensor(m, 1)->offset;
    int oh = (H + 2 * PAD - K) / STRIDE + 1, ow = (W + 2 * PAD - K) / STRIDE + 1;
    assert_int_equal(pst_model_n_outputs(m), O * oh * ow);
    /* ONNX Conv: y[n][o][i][j] = b[o] + sum w[o][c][ky][kx] x[n][c][i s - p + ky][j s - p + kx] */
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double sum = b[o];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int iy = i * STRIDE - PAD + ky, ix = j * STRIDE - PAD + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                sum += (double)w[((o * C + c) * K + ky) * K + kx] *
                                       x[((n * C + c) * H + iy) * W + ix];
                            }
                    float got = y[((n * O + o) * oh + i) * ow + j];
                    assert_true(fabs(got - sum) < 1e-5);
                }
    pst_model_destroy(&m);
}

/* ---- recurrent layers ---- */

static double sig(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/* Row g of M (rows, n) times v (n), plus bias. */
static double row_dot(const float *mat, int g, int n, const double *v, double bias)
{
    double s = bias;
    for (int k = 0; k < n; k++)
        s += (double)mat[(size_t)g * n + k] * v[k];
    return s;
}

enum { F = 3, HID = 4, T = 5, N = 2 };

/* ONNX LSTM (forward, no peepholes, default activations) over x (T, F) from zero states:
 *   it = f(Xt Wi^T + Ht-1 Ri^T + Wbi + Rbi), ft, ot alike, ct = g(Xt Wc^T + Ht-1 Rc^T + Wbc + Rbc)
 *   Ct = ft Ct-1 + it ct, Ht = ot h(Ct); gates stacked i, o, f, c. */
static void onnx_lstm(const float *W, const float *R, const float *B, const double *x, double *h)
{
    double c[HID] = {0}, hp[HID] = {0};
    for (int t = 0; t < T; t++) {
        double hn[HID];
        for (int j = 0; j < HID; j++) {
            double g4[4];
            for (int slot = 0; slot < 4; slot++) {
                int r = slot * HID + j;
                g4[slot] =
                    row_dot(W, r, F, x + t * F, B[r]) + row_dot(R, r, HID, hp, B[4 * HID + r]);
            }
            double it = sig(g4[0]), ot = sig(g4[1]), ft = sig(g4[2]), ct = tanh(g4[3]);
            c[j] = ft * c[j] + it * ct;
            hn[j] = ot * tanh(c[j]);
        }
        for (int j = 0; j < HID; j++)
            hp[j] = hn[j];
    }
    for (int j = 0; j < HID; j++)
        h[j] = hp[j];
}

/* ONNX GRU with linear_before_reset = 1, gates stacked z, r, h:
 *   zt = f(Xt Wz^T + Ht-1 Rz^T + Wbz + Rbz), rt alike,
 *   ht = g(Xt Wh^T + rt (Ht-1 Rh^T + Rbh) + Wbh), Ht = (1 - zt) ht + zt Ht-1. */
static void onnx_gru(const float *W, const float *R, const float *B, const double *x, double *h)
{
    double hp[HID] = {0};
    for (int t = 0; t < T; t++) {
        double hn[HID];
        for (int j = 0; j < HID; j++) {
            double z =
                sig(row_dot(W, j, F, x + t * F, B[j]) + row_dot(R, j, HID, hp, B[3 * HID + j]));
            double r = sig(row_dot(W, HID + j, F, x + t * F, B[HID + j]) +
                           row_dot(R, HID + j, HID, hp, B[4 * HID + j]));
            double n = tanh(row_dot(W, 2 * HID + j, F, x + t * F, B[2 * HID + j]) +
                            r * row_dot(R, 2 * HID + j, HID, hp, B[5 * HID + j]));
            hn[j] = (1 - z) * n + z * hp[j];
        }
        for (int j = 0; j < HID; j++)
            hp[j] = hn[j];
    }
    for (int j = 0; j < HID; j++)
        h[j] = hp[j];
}

/* pstrain's layer over N sequences against ONNX's equations on the converted weights. */
static void recurrent_matches_onnx(pst_layer_kind_t kind)
{
    const pst_layer_spec_t layers[] = {{.kind = kind, .units = HID, .steps = T}};
    pst_model_t *m = model_with(T * F, layers, 1);
    const float *w = pst_model_params(m) + pst_model_tensor(m, 0)->offset;
    const float *b = pst_model_params(m) + pst_model_tensor(m, 1)->offset;
    float W[4 * HID * F], R[4 * HID * HID], B[8 * HID];
    if (kind == PST_LAYER_LSTM)
        pst_onnx_lstm_layout(w, b, F, HID, W, R, B);
    else
        pst_onnx_gru_layout(w, b, F, HID, W, R, B);
    float x[N * T * F];
    for (int i = 0; i < N * T * F; i++)
        x[i] = 2.0f * made(7 * i + 2);
    const float *y = pst_model_forward(m, x, N, false, NULL);
    assert_int_equal(pst_model_n_outputs(m), HID);
    for (int n = 0; n < N; n++) {
        double xs[T * F], h[HID];
        for (int i = 0; i < T * F; i++)
            xs[i] = x[n * T * F + i];
        if (kind == PST_LAYER_LSTM)
            onnx_lstm(W, R, B, xs, h);
        else
            onnx_gru(W, R, B, xs, h);
        for (int j = 0; j < HID; j++)
            assert_true(fabs(y[n * HID + j] - h[j]) < 1e-5);
    }
    pst_model_destroy(&m);
}

static void lstm_matches_onnx_equations(void **state)
{
    (void)state;
    recurrent_matches_onnx(PST_LAYER_LSTM);
}

static void gru_matches_onnx_equations(void **state)
{
    (void)state;
    recurrent_matches_onnx(PST_LAYER_GRU);
}

/* Entry by entry: ONNX slot s of unit j comes from pstrain gate from[s] of unit j. */
static void check_entries(const float *w, const float *W, const float *R, int gates,
                          const int *from)
{
    for (int s = 0; s < gates; s++)
        for (int j = 0; j < HID; j++) {
            const float *row = w + (size_t)(from[s] * HID + j) * (F + HID);
            for (int k = 0; k < F; k++)
                assert_true(W[(s * HID + j) * F + k] == row[k]);
            for (int k = 0; k < HID; k++)
                assert_true(R[(s * HID + j) * HID + k] == row[F + k]);
        }
}

static void lstm_gates_become_i_o_f_c(void **state)
{
    (void)state;
    float w[4 * HID * (F + HID)], b[4 * HID], W[4 * HID * F], R[4 * HID * HID], B[8 * HID];
    for (int i = 0; i < 4 * HID * (F + HID); i++)
        w[i] = (float)i;
    for (int i = 0; i < 4 * HID; i++)
        b[i] = 1000.0f + (float)i;
    pst_onnx_lstm_layout(w, b, F, HID, W, R, B);
    const int from[4] = {0, 3, 1, 2}; /* i, o, f, c from pstrain's i, f, g, o */
    check_entries(w, W, R, 4, from);
    for (int j = 0; j < HID; j++) {
        assert_true(B[j] == b[j]);                     /* i */
        assert_true(B[HID + j] == b[3 * HID + j]);     /* o */
        assert_true(B[2 * HID + j] == b[HID + j]);     /* f */
        assert_true(B[3 * HID + j] == b[2 * HID + j]); /* c */
    }
    for (int k = 4 * HID; k < 8 * HID; k++)
        assert_true(B[k] == 0.0f); /* one bias per gate: the recurrent side's are 0 */
}

static void gru_gates_become_z_r_h(void **state)
{
    (void)state;
    float w[3 * HID * (F + HID)], b[4 * HID], W[3 * HID * F], R[3 * HID * HID], B[6 * HID];
    for (int i = 0; i < 3 * HID * (F + HID); i++)
        w[i] = (float)i;
    for (int i = 0; i < 4 * HID; i++)
        b[i] = 1000.0f + (float)i;
    pst_onnx_gru_layout(w, b, F, HID, W, R, B);
    const int from[3] = {1, 0, 2}; /* z, r, h from pstrain's r, z, n */
    check_entries(w, W, R, 3, from);
    for (int j = 0; j < HID; j++) {
        assert_true(B[j] == b[HID + j]);               /* Wb_z */
        assert_true(B[HID + j] == b[j]);               /* Wb_r */
        assert_true(B[2 * HID + j] == b[2 * HID + j]); /* Wb_h */
        assert_true(B[3 * HID + j] == 0.0f);
        assert_true(B[4 * HID + j] == 0.0f);
        assert_true(B[5 * HID + j] == b[3 * HID + j]); /* Rb_h: pstrain's recurrent n bias */
    }
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_weights_are_oihw),      cmocka_unit_test(lstm_gates_become_i_o_f_c),
        cmocka_unit_test(gru_gates_become_z_r_h),     cmocka_unit_test(lstm_matches_onnx_equations),
        cmocka_unit_test(gru_matches_onnx_equations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
