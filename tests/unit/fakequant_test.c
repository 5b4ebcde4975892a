/* Tests for worker/model/fakequant: fake quantisation equal bit for bit to quantise-dequantise
 * (values and per-row weights, as pst_quant_new and pst_quant_dequantize make them), the
 * straight-through gradient kept inside the clip range and zero outside, a training forward
 * equal to the int8 model's inference forward on the calibration batch, the input gradient of a
 * later batch masked where its values were clipped, the float weights restored exactly after a
 * step, and a model with nothing to quantise refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/rng.h"
#include "worker/model/fakequant.h"
#include "worker/model/quant.h"

#define N_IN 20
#define N_HID 13
#define N_OUT 3
#define ROWS 16

static pst_model_t *model_of(const pst_layer_spec_t *layers, int n_layers, uint64_t seed)
{
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(N_IN, layers, n_layers, ROWS, &err);
    assert_non_null(m);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    pst_model_init_params(m, &rng);
    float *p = pst_model_params(m);
    for (size_t i = 0; i < pst_model_n_params(m); i++)
        if (p[i] == 0.0f) /* biases */
            p[i] = (float)(pst_rng_uniform(&rng) * 0.4 - 0.2);
    return m;
}

static pst_model_t *mlp(uint64_t seed)
{
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = N_HID},
                                 {.kind = PST_LAYER_RELU},
                                 {.kind = PST_LAYER_DENSE, .units = N_OUT},
                                 {.kind = PST_LAYER_SOFTMAX}};
    return model_of(layers, 4, seed);
}

static void random_values(float *x, size_t n, double span, uint64_t seed)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((pst_rng_uniform(&rng) * 2.0 - 1.0) * span);
}

static void values_equal_quantize_then_dequantize(void **state)
{
    (void)state;
    enum { N = 1000 }; /* more than one block of the implementation, and an AVX2 tail */
    float x[N], got[N], want[N];
    random_values(x, N, 3.0, 7);
    x[10] = 50.0f, x[11] = -50.0f; /* outside the range: clamped to +-127 steps */
    int8_t q[N];
    float scale = pst_quant_scale(2.5f);
    pst_quant_values(x, N, scale, q);
    for (int i = 0; i < N; i++)
        want[i] = (float)q[i] * scale;
    pst_fakequant_values(x, N, scale, got);
    assert_memory_equal(got, want, sizeof got);
    assert_true(got[10] == 127 * scale && got[11] == -127 * scale);
    pst_fakequant_values(x, N, scale, x); /* in place */
    assert_memory_equal(x, want, sizeof x);
}

static void ste_passes_inside_the_range_and_stops_outside(void **state)
{
    (void)state;
    float scale = 0.02f, lim = 127 * scale;
    float x[6] = {0.0f, 0.5f * lim, -lim, lim, 1.01f * lim, -1.5f * lim};
    float g[6] = {1, 2, 3, 4, 5, 6};
    pst_fakequant_ste(x, 6, scale, g);
    const float want[6] = {1, 2, 3, 4, 0, 0};
    assert_memory_equal(g, want, sizeof g);
}

/* begin writes exactly pst_quant_dequantize's weights; end restores the float ones bit for bit. */
static void weights_equal_the_quantized_models(void **state)
{
    (void)state;
    pst_model_t *m = mlp(3);
    float x[ROWS * N_IN];
    random_values(x, ROWS * N_IN, 2.0, 5);
    size_t n = pst_model_n_params(m);
    float *before = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    memcpy(before, pst_model_params(m), n * sizeof(float));
    memcpy(want, before, n * sizeof(float));
    pst_err_t err = {0};
    pst_quant_t *q = pst_quant_new(m, x, ROWS, 100.0, &err);
    assert_non_null(q);
    pst_quant_dequantize(q, want);
    pst_fakequant_t *fq = pst_fakequant_new(m, &err);
    assert_non_null(fq);
    assert_int_equal(pst_fakequant_n_layers(fq), 2);
    pst_fakequant_weights_begin(fq);
    assert_memory_equal(pst_model_params(m), want, n * sizeof(float));
    assert_true(memcmp(want, before, n * sizeof(float)) != 0); /* the rounding moved something */
    pst_fakequant_weights_end(fq);
    assert_memory_equal(pst_model_params(m), before, n * sizeof(float));
    pst_fakequant_destroy(&fq);
    pst_fakequant_destroy(&fq);
    pst_quant_destroy(&q);
    free(before);
    free(want);
    pst_model_destroy(&m);
}

/* The training forward is the int8 forward of a quantisation with the same input ranges (the
 * first layer's is the batch's maximum, what calibration on the same rows finds; the hidden
 * layer's is the maximum the fake-quantised forward saw, where calibration runs the float model),
 * up to the order of float sums: the int8 path sums exactly in int32. */
static void training_forward_is_the_int8_forward(void **state)
{
    (void)state;
    pst_model_t *a = mlp(11), *b = mlp(11);
    float x[ROWS * N_IN];
    random_values(x, ROWS * N_IN, 2.0, 13);
    pst_err_t err = {0};
    pst_fakequant_t *fq = pst_fakequant_new(a, &err);
    pst_fakequant_weights_begin(fq);
    float got[ROWS * N_OUT];
    memcpy(got, pst_model_forward(a, x, ROWS, true, NULL), sizeof got);
    pst_quant_t *q = pst_quant_new(b, x, ROWS, 100.0, &err);
    assert_non_null(q);
    assert_true(q->layers[0].in_scale == pst_quant_scale(pst_fakequant_input_max(fq, 0)));
    q->layers[1].in_scale = pst_quant_scale(pst_fakequant_input_max(fq, 1));
    assert_int_equal(pst_model_attach_quant(b, q, &err), PST_OK);
    const float *want = pst_model_forward(b, x, ROWS, false, NULL);
    for (int i = 0; i < ROWS * N_OUT; i++)
        if (fabsf(got[i] - want[i]) > 2e-6f)
            fail_msg("output %d: fake-quantised %.8g, int8 %.8g", i, got[i], want[i]);
    /* the float forward differs: the comparison above saw the rounding */
    pst_fakequant_weights_end(fq);
    pst_fakequant_destroy(&fq);
    const float *plain = pst_model_forward(a, x, ROWS, true, NULL);
    double diff = 0;
    for (int i = 0; i < ROWS * N_OUT; i++)
        diff += fabs(plain[i] - want[i]);
    assert_true(diff > 1e-4);
    pst_quant_destroy(&q);
    pst_model_destroy(&a);
    pst_model_destroy(&b);
}

/* A single dense layer: after a first batch sets the range, a second batch with values beyond it
 * is clipped; its input gradient is the float model's (weights and input fake-quantised by
 * hand) where the value was inside the range and zero where it was clipped, and the weight
 * gradient is the float model's at the fake-quantised weights and input. */
static void later_batches_clip_and_stop_the_gradient(void **state)
{
    (void)state;
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = N_OUT},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *a = model_of(layers, 2, 21), *b = model_of(layers, 2, 21);
    float x1[ROWS * N_IN], x2[ROWS * N_IN], dout[ROWS * N_OUT];
    random_values(x1, ROWS * N_IN, 1.0, 23);
    random_values(dout, ROWS * N_OUT, 1.0, 31);
    float range = 0;
    for (int i = 0; i < ROWS * N_IN; i++)
        range = fabsf(x1[i]) > range ? fabsf(x1[i]) : range;
    random_values(x2, ROWS * N_IN, 0.9 * range, 29); /* inside the range but for three values */
    x2[0] = 3.0f * range, x2[5] = -2.0f * range, x2[N_IN + 1] = 1.5f * range;
    pst_err_t err = {0};
    pst_fakequant_t *fq = pst_fakequant_new(a, &err);
    pst_fakequant_weights_begin(fq);
    pst_model_forward(a, x1, ROWS, true, NULL);
    pst_fakequant_weights_end(fq);
    assert_true(pst_fakequant_input_max(fq, 0) == range);
    pst_fakequant_weights_begin(fq);
    pst_model_forward(a, x2, ROWS, true, NULL);
    const float *dx_a = pst_model_backward_input(a, dout, ROWS, true);
    /* b: the same step written out in float */
    size_t n = pst_model_n_params(b);
    memcpy(pst_model_params(b), pst_model_params(a), n * sizeof(float)); /* fake-quantised W */
    float x2_fq[ROWS * N_IN];
    pst_fakequant_values(x2, ROWS * N_IN, pst_quant_scale(range), x2_fq);
    pst_model_forward(b, x2_fq, ROWS, true, NULL);
    const float *dx_b = pst_model_backward_input(b, dout, ROWS, true);
    int clipped = 0;
    for (int i = 0; i < ROWS * N_IN; i++) {
        bool outside = fabsf(x2[i]) > range * 1.0001f;
        clipped += outside;
        assert_true(dx_a[i] == (outside ? 0.0f : dx_b[i]));
        assert_true(outside || dx_b[i] != 0.0f);
    }
    assert_int_equal(clipped, 3);
    assert_memory_equal(pst_model_grads(a), pst_model_grads(b), n * sizeof(float));
    assert_true(pst_fakequant_input_max(fq, 0) == 3.0f * range); /* the range took x2 in */
    pst_fakequant_weights_end(fq);
    pst_fakequant_destroy(&fq);
    pst_model_destroy(&a);
    pst_model_destroy(&b);
}

static void a_model_without_int8_layers_is_refused(void **state)
{
    (void)state;
    /* a conv2d of 9 values per window stays float under pstrain quantize */
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_INPUT, .channels = 1, .height = 4, .width = 5},
                                 {.kind = PST_LAYER_CONV2D, .channels = 2, .kernel = 3, .pad = 1},
                                 {.kind = PST_LAYER_FLATTEN}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(N_IN, layers, 3, ROWS, &err);
    if (!m)
        fail_msg("%s", err.msg);
    assert_non_null(m);
    memset(&err, 0, sizeof err);
    assert_null(pst_fakequant_new(m, &err));
    assert_int_equal(err.code, PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.qat: the model has no layer"));
    pst_model_destroy(&m);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_equal_quantize_then_dequantize),
        cmocka_unit_test(ste_passes_inside_the_range_and_stops_outside),
        cmocka_unit_test(weights_equal_the_quantized_models),
        cmocka_unit_test(training_forward_is_the_int8_forward),
        cmocka_unit_test(later_batches_clip_and_stop_the_gradient),
        cmocka_unit_test(a_model_without_int8_layers_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
