/* Tests for the spatial layers of worker/model (spatial.c through the model API): conv2d against
 * direct loops, the pools' values, finite-difference gradient checks of every spatial layer (the
 * weights and the input), shape errors, model.layers parsing and the model file round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "tests/unit/gradcheck.h"
#include "tests/unit/scratch.h"
#include "worker/model/modelfile.h"
#include "worker/model/modelspec.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define INPUT(c, h, w)                                                                             \
    {                                                                                              \
        .kind = PST_LAYER_INPUT, .channels = (c), .height = (h), .width = (w)                      \
    }
#define CONV(c, k, s, p)                                                                           \
    {                                                                                              \
        .kind = PST_LAYER_CONV2D, .channels = (c), .kernel = (k), .stride = (s), .pad = (p)        \
    }
#define POOL(which, k, s)                                                                          \
    {                                                                                              \
        .kind = (which), .kernel = (k), .stride = (s)                                              \
    }
#define ACT(k)                                                                                     \
    {                                                                                              \
        .kind = (k)                                                                                \
    }
#define DENSE(n)                                                                                   \
    {                                                                                              \
        .kind = PST_LAYER_DENSE, .units = (n)                                                      \
    }

/* Parameters drawn from [-0.5, 0.5]. */
static pst_model_t *random_model(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                                 int max_batch, uint64_t seed)
{
    return random_model_in(n_inputs, layers, n_layers, max_batch, seed, -0.5f, 0.5f);
}

/* Sets the first conv2d (a 1x1 from c to c channels) to the identity. */
static void identity_conv(pst_model_t *m, int c)
{
    float *w = pst_model_params(m) + pst_model_tensor(m, 0)->offset;
    float *b = pst_model_params(m) + pst_model_tensor(m, 1)->offset;
    for (int i = 0; i < c; i++) {
        for (int j = 0; j < c; j++)
            w[i * c + j] = i == j ? 1.0f : 0.0f;
        b[i] = 0;
    }
}

/* ---- forward values ---- */

/* y[n][o][oy][ox] = b[o] + sum_c,ky,kx W[o][c][ky][kx] x[n][c][oy*s-p+ky][ox*s-p+kx]. */
static void conv_naive(const float *x, const float *w, const float *b, int batch, int c, int h,
                       int wd, int oc, int k, int s, int p, float *y, int oh, int ow)
{
    for (int n = 0; n < batch; n++)
        for (int o = 0; o < oc; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double sum = b[o];
                    for (int ch = 0; ch < c; ch++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
                                    continue;
                                sum += (double)w[((o * c + ch) * k + ky) * k + kx] *
                                       x[((n * c + ch) * h + iy) * wd + ix];
                            }
                    y[((n * oc + o) * oh + oy) * ow + ox] = (float)sum;
                }
}

static void conv_matches_direct_loops(void **state)
{
    (void)state;
    enum { B = 3, C = 2, H = 7, W = 6, OC = 4, K = 3, S = 2, P = 1, OH = 4, OW = 3 };
    pst_layer_spec_t spec[] = {INPUT(C, H, W), CONV(OC, K, S, P)};
    pst_model_t *m = random_model(C * H * W, spec, 2, B, 5);
    int shape[3];
    pst_model_shape(m, 1, shape);
    assert_int_equal(shape[0], OC);
    assert_int_equal(shape[1], OH);
    assert_int_equal(shape[2], OW);
    assert_int_equal(pst_model_n_outputs(m), OC * OH * OW);
    const pst_tensor_info_t *wt = pst_model_tensor(m, 0), *bt = pst_model_tensor(m, 1);
    assert_int_equal(wt->rows, OC);
    assert_int_equal(wt->cols, C * K * K);
    assert_int_equal(bt->size, OC);
    pst_rng_t rng;
    pst_rng_init(&rng, 9);
    float x[B * C * H * W], want[B * OC * OH * OW];
    fill_uniform(x, N_OF(x), -1, 1, &rng);
    const float *params = pst_model_params(m);
    conv_naive(x, params + wt->offset, params + bt->offset, B, C, H, W, OC, K, S, P, want, OH, OW);
    const float *y = pst_model_forward(m, x, B, false, NULL);
    for (int i = 0; i < N_OF(want); i++)
        assert_float_equal(y[i], want[i], 1e-5);
    pst_model_destroy(&m);
}

static void pools_forward_values(void **state)
{
    (void)state;
    /* one 4x4 image, two channels: maxpool 2 and avgpool 2 give 2x2 each, global gives 1 */
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)((i * 7) % 11) - 5.0f;
    pst_layer_spec_t max_spec[] = {INPUT(2, 4, 4), CONV(2, 1, 1, 0),
                                   POOL(PST_LAYER_MAXPOOL2D, 2, 0)};
    pst_layer_spec_t avg_spec[] = {INPUT(2, 4, 4), CONV(2, 1, 1, 0),
                                   POOL(PST_LAYER_AVGPOOL2D, 2, 0)};
    pst_layer_spec_t glob_spec[] = {INPUT(2, 4, 4), CONV(2, 1, 1, 0),
                                    ACT(PST_LAYER_GLOBAL_AVGPOOL)};
    pst_model_t *mx = random_model(32, max_spec, 3, 1, 1);
    pst_model_t *ma = random_model(32, avg_spec, 3, 1, 1);
    pst_model_t *mg = random_model(32, glob_spec, 3, 1, 1);
    identity_conv(mx, 2);
    identity_conv(ma, 2);
    identity_conv(mg, 2);
    const float *ymax = pst_model_forward(mx, x, 1, false, NULL);
    const float *yavg = pst_model_forward(ma, x, 1, false, NULL);
    const float *yglob = pst_model_forward(mg, x, 1, false, NULL);
    for (int c = 0; c < 2; c++) {
        double total = 0;
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                float best = -INFINITY, sum = 0;
                for (int ky = 0; ky < 2; ky++)
                    for (int kx = 0; kx < 2; kx++) {
                        float v = x[c * 16 + (2 * oy + ky) * 4 + 2 * ox + kx];
                        best = v > best ? v : best;
                        sum += v;
                    }
                assert_float_equal(ymax[c * 4 + oy * 2 + ox], best, 0);
                assert_float_equal(yavg[c * 4 + oy * 2 + ox], sum / 4, 1e-6);
                total += sum;
            }
        assert_float_equal(yglob[c], total / 16, 1e-6);
    }
    pst_model_destroy(&mx);
    pst_model_destroy(&ma);
    pst_model_destroy(&mg);
}

/* ---- gradient checks ---- */

static void check_gradients(const pst_layer_spec_t *spec, int n_layers, int n_inputs, int batch,
                            uint64_t seed)
{
    gradcheck_t g = {.training = false,
                     .eps = 1e-3f,
                     .rel = 1e-2,
                     .abs = 1e-4,
                     .param_lo = -0.5f,
                     .param_hi = 0.5f};
    gradcheck_run(&g, spec, n_layers, n_inputs, batch, seed);
}

static void gradcheck_conv_stride_padding_maxpool(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {INPUT(2, 7, 6),
                               CONV(3, 3, 2, 1),
                               ACT(PST_LAYER_TANH),
                               CONV(4, 2, 1, 0),
                               POOL(PST_LAYER_MAXPOOL2D, 2, 1),
                               ACT(PST_LAYER_FLATTEN),
                               DENSE(3)};
    check_gradients(spec, N_OF(spec), 2 * 7 * 6, 3, 11);
}

static void gradcheck_avgpool_and_global_avgpool(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {INPUT(3, 6, 6),
                               CONV(4, 3, 1, 1),
                               ACT(PST_LAYER_SIGMOID),
                               POOL(PST_LAYER_AVGPOOL2D, 3, 2),
                               CONV(5, 1, 1, 0),
                               ACT(PST_LAYER_GLOBAL_AVGPOOL),
                               DENSE(2)};
    check_gradients(spec, N_OF(spec), 3 * 6 * 6, 2, 12);
}

/* maxpool passes the whole gradient to the window's maximum and nothing to the other inputs. */
static void maxpool_routes_gradient_to_the_maximum_only(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {INPUT(1, 2, 2), CONV(1, 1, 1, 0), POOL(PST_LAYER_MAXPOOL2D, 2, 0)};
    pst_model_t *m = random_model(4, spec, 3, 1, 3);
    identity_conv(m, 1);
    float x[4] = {0.1f, 0.9f, -0.4f, 0.3f}, dout[1] = {2.0f};
    assert_float_equal(pst_model_forward(m, x, 1, false, NULL)[0], 0.9f, 0);
    const float *dx = pst_model_backward_input(m, dout, 1, false);
    float want[4] = {0, 2.0f, 0, 0};
    assert_memory_equal(dx, want, sizeof want);
    pst_model_destroy(&m);
}

/* ---- shapes and errors ---- */

static void expect_error(int n_inputs, const pst_layer_spec_t *spec, int n_layers,
                         const char *needle)
{
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(n_inputs, spec, n_layers, 4, &err);
    assert_null(m);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("expected '%s' in '%s'", needle, err.msg);
}

static void shape_errors_name_the_layer(void **state)
{
    (void)state;
    pst_layer_spec_t big_kernel[] = {INPUT(1, 4, 4), CONV(2, 7, 1, 0), DENSE(2)};
    expect_error(16, big_kernel, 3, "layer 1: conv2d kernel 7 does not fit the 4x4 input");
    pst_layer_spec_t wrong_size[] = {INPUT(3, 4, 4), CONV(2, 3, 1, 1), DENSE(2)};
    expect_error(16, wrong_size, 3, "an input of 16 values is not a 3x4x4 image");
    pst_layer_spec_t not_square[] = {INPUT(0, 0, 0), CONV(2, 3, 1, 1), DENSE(2)};
    expect_error(15, not_square, 3, "data.image_shape");
    pst_layer_spec_t pad_too_big[] = {INPUT(1, 4, 4), CONV(2, 3, 1, 3), DENSE(2)};
    expect_error(16, pad_too_big, 3, "padding in [0, kernel-1]");
    pst_layer_spec_t pool_too_big[] = {INPUT(1, 4, 4), POOL(PST_LAYER_MAXPOOL2D, 5, 0), DENSE(2)};
    expect_error(16, pool_too_big, 3, "maxpool2d window 5 does not fit the 4x4 input");
    pst_layer_spec_t late_input[] = {DENSE(16), INPUT(1, 4, 4), DENSE(2)};
    expect_error(16, late_input, 3, "input is only allowed as the first layer");
    /* a square single-channel image is inferred from the width */
    pst_layer_spec_t inferred[] = {INPUT(0, 0, 0), CONV(2, 3, 1, 0), DENSE(2)};
    pst_model_t *m = random_model(25, inferred, 3, 2, 1);
    int shape[3];
    pst_model_shape(m, 0, shape);
    assert_int_equal(shape[0] * 100 + shape[1] * 10 + shape[2], 155);
    pst_model_shape(m, 1, shape);
    assert_int_equal(shape[0] * 100 + shape[1] * 10 + shape[2], 233);
    pst_model_destroy(&m);
}

/* ---- configuration ---- */

static int build_spec(const char *yaml, pst_modelspec_t *spec, pst_err_t *err)
{
    pst_config_t cfg;
    pst_config_init(&cfg);
    int rc = pst_config_load_string(&cfg, yaml, "test.yaml", err);
    if (rc == PST_OK)
        rc = pst_modelspec_build(spec, &cfg, PST_TASK_CLASSIFICATION, 10, err);
    pst_config_fini(&cfg);
    return rc;
}

static void model_layers_parse_spatial_entries(void **state)
{
    (void)state;
    pst_modelspec_t spec;
    pst_err_t err = {0};
    int rc = build_spec("model:\n  layers: [conv2d:8:5:stride=2:pad=2, relu, maxpool2d:3:2, "
                        "avgpool2d:2, conv2d:4:1, global_avgpool, flatten, dense:10, softmax]\n"
                        "data:\n  image_shape: [3, 32, 30]\n",
                        &spec, &err);
    assert_int_equal(rc, PST_OK);
    assert_int_equal(spec.n_layers, 10);
    pst_layer_spec_t *l = spec.layers;
    assert_int_equal(l[0].kind, PST_LAYER_INPUT);
    assert_int_equal(l[0].channels * 10000 + l[0].height * 100 + l[0].width, 33230);
    assert_int_equal(l[1].kind, PST_LAYER_CONV2D);
    assert_int_equal(l[1].channels * 1000 + l[1].kernel * 100 + l[1].stride * 10 + l[1].pad, 8522);
    assert_int_equal(l[3].kind, PST_LAYER_MAXPOOL2D);
    assert_int_equal(l[3].kernel * 10 + l[3].stride, 32);
    assert_int_equal(l[4].kind, PST_LAYER_AVGPOOL2D);
    assert_int_equal(l[4].kernel * 10 + l[4].stride, 20);
    assert_int_equal(l[5].channels * 10 + l[5].kernel, 41);
    assert_int_equal(l[6].kind, PST_LAYER_GLOBAL_AVGPOOL);
    assert_int_equal(l[7].kind, PST_LAYER_FLATTEN);
    pst_model_t *m = pst_model_new(3 * 32 * 30, spec.layers, spec.n_layers, 2, &err);
    assert_non_null(m);
    int shape[3];
    pst_model_shape(m, 3, shape); /* conv 32x30 s2 p2 k5 -> 16x15, pool 3 s2 -> 7x7 */
    assert_int_equal(shape[0] * 10000 + shape[1] * 100 + shape[2], 80707);
    pst_model_destroy(&m);

    /* model.init reaches every dense and conv2d layer that names none */
    rc = build_spec("model:\n  init: lecun_uniform\n  layers: [conv2d:4:3:init=he_uniform, relu, "
                    "flatten, dense:10, softmax]\n",
                    &spec, &err);
    assert_int_equal(rc, PST_OK);
    assert_int_equal(spec.layers[1].init, PST_INIT_HE_UNIFORM);
    assert_int_equal(spec.layers[4].init, PST_INIT_LECUN_UNIFORM);
    char text[64];
    assert_string_equal(pst_layer_spec_format(&spec.layers[1], text, sizeof text),
                        "conv2d:4:3:1:0:init=he_uniform");

    const char *bad[][2] = {
        {"[conv2d:8, dense:10, softmax]", "model.layers[0]: bad fields in 'conv2d:8'"},
        {"[conv2d:8:3:bogus=1, dense:10, softmax]", "bad fields"},
        {"[maxpool2d:2:2:2, dense:10, softmax]", "bad fields"},
        {"[flatten:3, dense:10, softmax]", "'flatten:3' takes no argument"},
        {"[conv3d:8:3, dense:10, softmax]", "unknown layer 'conv3d:8:3'"},
        {"[conv2d:8:3:init=identity, dense:10, softmax]", "bad init"},
        {"[conv2d:8:3, relu:init=he_normal, dense:10, softmax]",
         "only dense, conv2d, lstm and gru take"},
    };
    for (int i = 0; i < N_OF(bad); i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "model:\n  layers: %s\n", bad[i][0]);
        assert_int_not_equal(build_spec(yaml, &spec, &err), PST_OK);
        if (strstr(err.msg, bad[i][1]) == NULL)
            fail_msg("'%s': expected '%s' in '%s'", bad[i][0], bad[i][1], err.msg);
    }
    rc =
        build_spec("model:\n  layers: [conv2d:2:3, dense:10, softmax]\ndata:\n  image_shape: [1]\n",
                   &spec, &err);
    assert_int_not_equal(rc, PST_OK);
    assert_non_null(strstr(err.msg, "data.image_shape: 1 values"));
}

/* ---- model file ---- */

static void model_file_round_trips_spatial_layers(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {INPUT(2, 5, 4),         CONV(3, 3, 2, 1),
                               ACT(PST_LAYER_RELU),    POOL(PST_LAYER_AVGPOOL2D, 2, 1),
                               ACT(PST_LAYER_FLATTEN), DENSE(3),
                               ACT(PST_LAYER_SOFTMAX)};
    pst_model_t *m = random_model(40, spec, N_OF(spec), 4, 21);
    pst_modelfile_t mf = {.n_inputs = 40,
                          .n_layers = N_OF(spec),
                          .layers = spec,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = 3,
                          .params = pst_model_params(m),
                          .n_params = pst_model_n_params(m)};
    char path[256];
    pst_scratch_path(path, "cnn.pst");
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_save(&mf, path, &err), PST_OK);
    pst_modelfile_t back;
    assert_int_equal(pst_modelfile_load(&back, path, &err), PST_OK);
    assert_int_equal(back.n_layers, N_OF(spec));
    assert_memory_equal(back.layers, spec, sizeof spec);
    pst_model_t *built = pst_modelfile_build(&back, 4, &err);
    assert_non_null(built);
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    float x[4 * 40], want[4 * 3];
    fill_uniform(x, N_OF(x), 0, 1, &rng);
    memcpy(want, pst_model_forward(m, x, 4, false, NULL), sizeof want);
    assert_memory_equal(pst_model_forward(built, x, 4, false, NULL), want, sizeof want);
    pst_model_destroy(&built);
    pst_modelfile_fini(&back);
    pst_model_destroy(&m);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_matches_direct_loops),
        cmocka_unit_test(pools_forward_values),
        cmocka_unit_test(gradcheck_conv_stride_padding_maxpool),
        cmocka_unit_test(gradcheck_avgpool_and_global_avgpool),
        cmocka_unit_test(maxpool_routes_gradient_to_the_maximum_only),
        cmocka_unit_test(shape_errors_name_the_layer),
        cmocka_unit_test(model_layers_parse_spatial_entries),
        cmocka_unit_test(model_file_round_trips_spatial_layers),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
