/* Tests for worker/model/quant, qgemm, qplan and quantfile: quantisation round-trip bounds, the
 * int8 GEMM against a direct loop (bit-exact), the int8 forward against a hand-written one
 * (bit-exact) and against the float model, the model file round trip and its refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rng.h"
#include "scratch.h"
#include "worker/model/modelfile.h"
#include "worker/model/quant.h"
#include "worker/model/quantfile.h"

static void test_row_round_trip_within_half_a_step(void **state)
{
    (void)state;
    pst_rng_t rng;
    pst_rng_init(&rng, 7);
    float w[301];
    int8_t q[301];
    for (int i = 0; i < 301; i++)
        w[i] = (float)(pst_rng_uniform(&rng) * 6.0 - 3.0);
    w[17] = -3.5f; /* the largest magnitude: maps to -127 exactly */
    float scale;
    pst_quant_row(w, 301, q, &scale);
    assert_float_equal(scale, 3.5f / 127.0f, 1e-9f);
    assert_int_equal(q[17], -127);
    for (int i = 0; i < 301; i++) {
        assert_true(q[i] >= -127 && q[i] <= 127);
        assert_true(fabsf(w[i] - q[i] * scale) <= 0.5f * scale * (1.0f + 1e-5f));
    }
    float zeros[4] = {0}, s0;
    pst_quant_row(zeros, 4, q, &s0);
    assert_float_equal(s0, 1.0f, 0.0f);
    assert_int_equal(q[0], 0);
}

static void test_values_clamp_and_round(void **state)
{
    (void)state;
    float x[6] = {1000.0f, -1000.0f, 0.49f, 0.51f, -2.5f, 126.6f};
    int8_t q[6];
    pst_quant_values(x, 6, 1.0f, q);
    assert_int_equal(q[0], 127);
    assert_int_equal(q[1], -127);
    assert_int_equal(q[2], 0);
    assert_int_equal(q[3], 1);
    assert_int_equal(q[4], -2); /* round half to even */
    assert_int_equal(q[5], 127);
}

/* The vector path (32 at a time) and the scalar tail agree, ties to even included. */
static void test_values_vector_and_tail_agree(void **state)
{
    (void)state;
    float x[77];
    int8_t q[77], one;
    for (int i = 0; i < 77; i++)
        x[i] = (float)(i - 38) * 0.5f - 0.25f * (float)(i % 3); /* halves: ties */
    x[3] = 500.0f, x[40] = -500.0f;
    pst_quant_values(x, 77, 0.5f, q);
    for (int i = 0; i < 77; i++) {
        pst_quant_values(&x[i], 1, 0.5f, &one); /* n = 1: the scalar span */
        assert_int_equal(q[i], one);
        assert_int_equal(one, (int8_t)fmaxf(-127.0f, fminf(127.0f, rintf(x[i] / 0.5f))));
    }
}

static void random_int8(int8_t *v, size_t n, pst_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (int8_t)((int)(pst_rng_uniform(rng) * 255.0) - 127);
}

/* Every kernel this processor runs, on shapes around the kernels' blocks: k below, at and past
 * 32, n not a multiple of 4 and past a cache block. */
static void test_qgemm_matches_direct_loop(void **state)
{
    (void)state;
    const int shapes[][3] = {{1, 1, 1},  {3, 7, 31},    {2, 4, 32},
                             {5, 9, 77}, {4, 256, 784}, {1, 10, 128}};
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        int8_t *a = malloc((size_t)m * k), *b = malloc((size_t)n * k);
        int32_t *c = malloc((size_t)m * n * sizeof(int32_t));
        random_int8(a, (size_t)m * k, &rng);
        random_int8(b, (size_t)n * k, &rng);
        a[0] = -127, b[0] = -127; /* extremes too */
        if (k > 1)
            a[1] = 127, b[1] = -127;
        for (int kernel = PST_QGEMM_PLAIN; kernel <= PST_QGEMM_VNNI; kernel++) {
            if (!pst_qgemm_has((pst_qgemm_kernel_t)kernel))
                continue;
            memset(c, 0x5a, (size_t)m * n * sizeof(int32_t));
            pst_qgemm_with((pst_qgemm_kernel_t)kernel, a, b, c, m, n, k);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    int32_t want = 0;
                    for (int t = 0; t < k; t++)
                        want += (int32_t)a[(size_t)i * k + t] * (int32_t)b[(size_t)j * k + t];
                    if (c[(size_t)i * n + j] != want)
                        fail_msg("kernel %d, (%d, %d, %d): c[%d][%d] = %d, want %d", kernel, m, n,
                                 k, i, j, c[(size_t)i * n + j], want);
                }
        }
        pst_qgemm(a, b, c, m, n, k); /* the dispatcher picks one of those */
        free(a);
        free(b);
        free(c);
    }
}

#define N_IN 20
#define N_HID 13
#define N_OUT 3

static pst_model_t *mlp(int max_batch, uint64_t seed)
{
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = N_HID},
                                 {.kind = PST_LAYER_RELU},
                                 {.kind = PST_LAYER_DENSE, .units = N_OUT},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(N_IN, layers, 4, max_batch, &err);
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

static float *random_rows(int n, uint64_t seed)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    float *x = malloc((size_t)n * N_IN * sizeof(float));
    for (int i = 0; i < n * N_IN; i++)
        x[i] = (float)(pst_rng_uniform(&rng) * 4.0 - 2.0);
    return x;
}

/* The int8 forward written out by hand for one row: quantise, integer dot, rescale, bias. */
static void dense_by_hand(const pst_quant_layer_t *ql, const float *b, const float *x, float *y)
{
    int8_t qx[N_IN];
    pst_quant_values(x, (size_t)ql->cols, ql->in_scale, qx);
    for (int o = 0; o < ql->rows; o++) {
        int32_t acc = 0;
        for (int i = 0; i < ql->cols; i++)
            acc += qx[i] * ql->w[(size_t)o * ql->cols + i];
        y[o] = (float)acc * (ql->in_scale * ql->w_scale[o]) + b[o];
    }
}

static void test_int8_forward_matches_hand_computation(void **state)
{
    (void)state;
    pst_model_t *m = mlp(8, 3);
    float *x = random_rows(64, 5);
    pst_err_t err = {0};
    pst_quant_t *q = pst_quant_new(m, x, 64, 100.0, &err);
    assert_non_null(q);
    assert_int_equal(q->n_layers, 2);
    assert_string_equal(q->rule, "max");
    assert_int_equal(pst_model_attach_quant(m, q, &err), PST_OK);
    assert_true(pst_model_is_quantized(m));
    const float *out = pst_model_forward(m, x, 8, false, NULL);
    const float *p = pst_model_params(m);
    for (int r = 0; r < 8; r++) {
        float h[N_HID], z[N_OUT], e[N_OUT], sum = 0.0f;
        dense_by_hand(&q->layers[0], p + pst_model_tensor(m, 1)->offset, x + r * N_IN, h);
        for (int i = 0; i < N_HID; i++)
            h[i] = h[i] > 0.0f ? h[i] : 0.0f;
        dense_by_hand(&q->layers[1], p + pst_model_tensor(m, 3)->offset, h, z);
        float mx = fmaxf(z[0], fmaxf(z[1], z[2]));
        for (int k = 0; k < N_OUT; k++)
            sum += (e[k] = expf(z[k] - mx));
        for (int k = 0; k < N_OUT; k++)
            assert_true(out[r * N_OUT + k] == e[k] * (1.0f / sum));
    }
    pst_quant_destroy(&q);
    free(x);
    pst_model_destroy(&m);
}

/* A CNN: conv2d 2->5 channels, 5x5 window, pad 1 (50 values per window: quantised), then a
 * conv2d of 5*1*1 = 5 values per window (left float), flatten, dense. */
static void test_conv_int8_matches_hand_computation(void **state)
{
    (void)state;
    enum { C = 2, H = 6, W = 6, OC = 5, K = 5, OH = 4, OW = 4, ROWS = 3 };
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_INPUT, .channels = C, .height = H, .width = W},
                                 {.kind = PST_LAYER_CONV2D, .channels = OC, .kernel = K, .pad = 1},
                                 {.kind = PST_LAYER_RELU},
                                 {.kind = PST_LAYER_CONV2D, .channels = 4, .kernel = 1},
                                 {.kind = PST_LAYER_FLATTEN},
                                 {.kind = PST_LAYER_DENSE, .units = 3}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(C * H * W, layers, 6, ROWS, &err);
    assert_non_null(m);
    pst_rng_t rng;
    pst_rng_init(&rng, 41);
    pst_model_init_params(m, &rng);
    float *params = pst_model_params(m);
    for (int k = 0; k < OC; k++) /* non-zero conv biases */
        params[pst_model_tensor(m, 1)->offset + k] = 0.1f * (float)k - 0.2f;
    float x[ROWS * C * H * W];
    for (int i = 0; i < ROWS * C * H * W; i++)
        x[i] = (float)pst_rng_normal(&rng);
    pst_quant_t *q = pst_quant_new(m, x, ROWS, 100.0, &err);
    assert_non_null(q);
    assert_int_equal(q->n_layers, 2); /* the first conv2d and the dense layer */
    assert_int_equal(q->layers[0].layer, 1);
    assert_int_equal(q->layers[1].layer, 5);
    assert_int_equal(pst_model_attach_quant(m, q, &err), PST_OK);
    assert_non_null(pst_model_forward(m, x, ROWS, false, NULL));
    /* the quantised conv2d is checked through a model cut after its relu, running the same
     * quantised layer (the plan's first) */
    pst_model_t *cut = pst_model_new(C * H * W, layers, 3, ROWS, &err);
    assert_non_null(cut);
    memcpy(pst_model_params(cut), params, pst_model_n_params(cut) * sizeof(float));
    pst_quant_t one = *q;
    one.n_layers = 1;
    assert_int_equal(pst_model_attach_quant(cut, &one, &err), PST_OK);
    const float *y = pst_model_forward(cut, x, ROWS, false, NULL);
    const pst_quant_layer_t *ql = &q->layers[0];
    const float *b = params + pst_model_tensor(m, 1)->offset;
    for (int n = 0; n < ROWS; n++)
        for (int o = 0; o < OC; o++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    int32_t acc = 0;
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int iy = oy - 1 + ky, ix = ox - 1 + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                int8_t qv;
                                pst_quant_values(&x[((n * C + c) * H + iy) * W + ix], 1,
                                                 ql->in_scale, &qv);
                                acc += qv * ql->w[o * ql->cols + (c * K + ky) * K + kx];
                            }
                    float v = (float)acc * (ql->in_scale * ql->w_scale[o]) + b[o];
                    v = v > 0.0f ? v : 0.0f;
                    assert_true(y[((n * OC + o) * OH + oy) * OW + ox] == v);
                }
    pst_model_destroy(&cut);
    pst_quant_destroy(&q);
    pst_model_destroy(&m);
}

/* Max calibration clamps nothing seen: the int8 model's probabilities stay within 0.02 of the
 * float model's on the calibration rows (about twice the 0.0105 measured, far below a
 * wrong scale's error). */
static void test_int8_close_to_float(void **state)
{
    (void)state;
    pst_model_t *f = mlp(64, 9), *i8 = mlp(64, 9);
    float *x = random_rows(64, 13);
    pst_err_t err = {0};
    pst_quant_t *q = pst_quant_new(f, x, 64, 100.0, &err);
    assert_non_null(q);
    assert_int_equal(pst_model_attach_quant(i8, q, &err), PST_OK);
    const float *a = pst_model_forward(f, x, 64, false, NULL);
    const float *b = pst_model_forward(i8, x, 64, false, NULL);
    double worst = 0.0;
    for (int i = 0; i < 64 * N_OUT; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    assert_true(worst > 0.0); /* it really ran in int8 */
    assert_true(worst < 0.02);
    /* training forwards stay float */
    const float *t = pst_model_forward(i8, x, 64, true, NULL);
    for (int i = 0; i < 64 * N_OUT; i++)
        assert_true(t[i] == pst_model_forward(f, x, 64, false, NULL)[i]);
    pst_quant_destroy(&q);
    free(x);
    pst_model_destroy(&f);
    pst_model_destroy(&i8);
}

static void test_percentile_scale_below_max(void **state)
{
    (void)state;
    pst_model_t *m = mlp(16, 21);
    float *x = random_rows(64, 23);
    x[5] = 50.0f; /* one outlier in the input */
    pst_err_t err = {0};
    pst_quant_t *qmax = pst_quant_new(m, x, 64, 100.0, &err);
    pst_quant_t *qp = pst_quant_new(m, x, 64, 99.0, &err);
    assert_non_null(qmax);
    assert_non_null(qp);
    assert_float_equal(qmax->layers[0].in_scale, 50.0f / 127.0f, 1e-6f);
    /* inputs are uniform in [-2, 2]: the 99th percentile of |x| is about 1.98 */
    assert_true(qp->layers[0].in_scale > 1.9f / 127.0f && qp->layers[0].in_scale < 2.05f / 127.0f);
    assert_string_equal(qp->rule, "p99");
    assert_null(pst_quant_new(m, x, 0, 100.0, &err));
    assert_null(pst_quant_new(m, x, 64, 0.0, &err));
    pst_quant_destroy(&qmax);
    pst_quant_destroy(&qp);
    free(x);
    pst_model_destroy(&m);
}

/* A quantised model file of mlp(), written to path. */
static void save_quantised(const char *path, pst_quant_t **q_out, float **x_out)
{
    pst_model_t *m = mlp(16, 31);
    float *x = random_rows(32, 37);
    pst_err_t err = {0};
    pst_quant_t *q = pst_quant_new(m, x, 32, 100.0, &err);
    assert_non_null(q);
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = N_HID},
                                 {.kind = PST_LAYER_RELU},
                                 {.kind = PST_LAYER_DENSE, .units = N_OUT},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_modelfile_t mf = {.n_inputs = N_IN,
                          .n_layers = 4,
                          .layers = layers,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = N_OUT,
                          .params = pst_model_params(m),
                          .n_params = pst_model_n_params(m),
                          .quant = q};
    assert_int_equal(pst_modelfile_save(&mf, path, &err), PST_OK);
    *q_out = q;
    *x_out = x;
    pst_model_destroy(&m);
}

static void test_modelfile_round_trip(void **state)
{
    (void)state;
    char path[256];
    pst_scratch_path(path, "q.pst");
    pst_quant_t *q;
    float *x;
    save_quantised(path, &q, &x);
    pst_modelfile_t mf;
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_load(&mf, path, &err), PST_OK);
    assert_non_null(mf.quant);
    assert_int_equal(mf.quant->n_layers, q->n_layers);
    for (int j = 0; j < q->n_layers; j++) {
        const pst_quant_layer_t *a = &q->layers[j], *b = &mf.quant->layers[j];
        assert_int_equal(a->layer, b->layer);
        assert_int_equal(a->offset, b->offset);
        assert_memory_equal(a->w, b->w, (size_t)a->rows * a->cols);
        assert_memory_equal(a->w_scale, b->w_scale, (size_t)a->rows * sizeof(float));
        assert_true(a->in_scale == b->in_scale);
        /* the arena holds the dequantised weights */
        for (int i = 0; i < a->rows * a->cols; i++)
            assert_true(mf.params[a->offset + i] == a->w[i] * a->w_scale[i / a->cols]);
    }
    /* predictions of the loaded file equal the in-memory quantised model's, bit for bit */
    pst_model_t *loaded = pst_modelfile_build(&mf, 16, &err);
    assert_non_null(loaded);
    assert_true(pst_model_is_quantized(loaded));
    pst_model_t *mem = mlp(16, 31);
    assert_int_equal(pst_model_attach_quant(mem, q, &err), PST_OK);
    float a[16 * N_OUT];
    memcpy(a, pst_model_forward(mem, x, 16, false, NULL), sizeof a);
    assert_memory_equal(a, pst_model_forward(loaded, x, 16, false, NULL), sizeof a);
    /* float bytes = 4 per weight; int8 file: 1 per weight plus a scale per row */
    assert_true(mf.n_params == (size_t)(N_IN * N_HID + N_HID + N_HID * N_OUT + N_OUT));
    pst_model_destroy(&loaded);
    pst_model_destroy(&mem);
    pst_modelfile_fini(&mf);
    pst_quant_destroy(&q);
    free(x);
}

/* Saves a quantised file after spoil() changes its quantisation; loading or building it fails
 * with an error containing want. */
static void expect_refused(void (*spoil)(pst_quant_t *), const char *want)
{
    char path[256];
    pst_scratch_path(path, "bad.pst");
    pst_quant_t *q;
    float *x;
    save_quantised(path, &q, &x);
    pst_modelfile_t mf;
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_load(&mf, path, &err), PST_OK);
    spoil(mf.quant);
    assert_int_equal(pst_modelfile_save(&mf, path, &err), PST_OK);
    pst_modelfile_fini(&mf);
    memset(&err, 0, sizeof err);
    int rc = pst_modelfile_load(&mf, path, &err);
    if (rc == PST_OK) {
        pst_model_t *m = pst_modelfile_build(&mf, 4, &err);
        assert_null(m);
        pst_modelfile_fini(&mf);
    }
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not say '%s'", err.msg, want);
    pst_quant_destroy(&q);
    free(x);
}

static void zero_scale(pst_quant_t *q)
{
    q->layers[1].w_scale[2] = 0.0f;
}
static void minus_128(pst_quant_t *q)
{
    q->layers[0].w[5] = -128;
}
static void nan_input_scale(pst_quant_t *q)
{
    q->layers[0].in_scale = NAN;
}
static void wrong_layer(pst_quant_t *q)
{
    q->layers[1].layer = 1; /* the relu */
}
static void wrong_shape(pst_quant_t *q)
{
    /* same weight count, transposed shape: the file's sums agree, the stack does not */
    int r = q->layers[0].rows;
    q->layers[0].rows = q->layers[0].cols;
    q->layers[0].cols = r;
    float *s = realloc(q->layers[0].w_scale, (size_t)q->layers[0].rows * sizeof(float));
    for (int i = 0; i < q->layers[0].rows; i++)
        s[i] = 1.0f;
    q->layers[0].w_scale = s;
}

static void test_refuses_bad_quantisation(void **state)
{
    (void)state;
    expect_refused(zero_scale, "quantised layer 2 row 3 has scale 0");
    expect_refused(minus_128, "quantised layer 1 holds weight -128");
    expect_refused(nan_input_scale, "quantised layer 1 has input scale nan");
    expect_refused(wrong_layer, "layer 2 is relu, not dense or conv2d");
    expect_refused(wrong_shape, "quantised layer 1: (20, 13) at 0");
}

/* An offset so large that offset + size wraps around: refused when read, and when written. */
static void test_refuses_wrapping_offset(void **state)
{
    (void)state;
    pst_quant_t *q;
    float *x;
    char path[256];
    save_quantised(pst_scratch_path(path, "wrap.pst"), &q, &x);
    size_t n_params = (size_t)(N_IN * N_HID + N_HID + N_HID * N_OUT + N_OUT);
    float *params = calloc(n_params, sizeof(float));
    Pst__QuantModel msg;
    pst_err_t err = {0};
    assert_int_equal(pst_quantfile_to_msg(q, params, n_params, &msg, &err), PST_OK);
    msg.layers[1]->offset = UINT64_MAX - 8;
    pst_quant_t *back = NULL;
    float *arena = NULL;
    size_t n = 0;
    assert_int_equal(pst_quantfile_from_msg(&msg, "m.pst", &back, &arena, &n, &err), PST_EFORMAT);
    assert_string_equal(err.msg, "m.pst: quantised layer 2 at 18446744073709551607 runs past the "
                                 "315 parameters");
    assert_null(back);
    pst_quantfile_msg_fini(&msg);
    q->layers[1].offset = SIZE_MAX - 8;
    assert_int_equal(pst_quantfile_to_msg(q, params, n_params, &msg, &err), PST_EINVAL);
    assert_null(msg.layers);
    free(params);
    pst_quant_destroy(&q);
    free(x);
}

/* Byte-level damage: the checksum trailer covers the int8 block; a truncated file is refused. */
static void test_refuses_corrupt_bytes(void **state)
{
    (void)state;
    char path[256];
    pst_scratch_path(path, "corrupt.pst");
    pst_quant_t *q;
    float *x;
    save_quantised(path, &q, &x);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, len / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, len / 2, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    pst_modelfile_t mf;
    pst_err_t err = {0};
    assert_int_not_equal(pst_modelfile_load(&mf, path, &err), PST_OK);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(truncate(path, len - 9), 0);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(pst_modelfile_load(&mf, path, &err), PST_OK);
    assert_non_null(strstr(err.msg, path));
    pst_quant_destroy(&q);
    free(x);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_round_trip_within_half_a_step),
        cmocka_unit_test(test_values_clamp_and_round),
        cmocka_unit_test(test_values_vector_and_tail_agree),
        cmocka_unit_test(test_qgemm_matches_direct_loop),
        cmocka_unit_test(test_int8_forward_matches_hand_computation),
        cmocka_unit_test(test_int8_close_to_float),
        cmocka_unit_test(test_conv_int8_matches_hand_computation),
        cmocka_unit_test(test_percentile_scale_below_max),
        cmocka_unit_test(test_modelfile_round_trip),
        cmocka_unit_test(test_refuses_bad_quantisation),
        cmocka_unit_test(test_refuses_wrapping_offset),
        cmocka_unit_test(test_refuses_corrupt_bytes),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
