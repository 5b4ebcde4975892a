/* Tests for the fused conv2d - relu - maxpool2d block (worker/model/convblock.c through the model
 * API): bit for bit the values of the same layers run one by one (kept apart by a dropout of rate
 * 0, which passes values through), for tiling 2x2 pools, an odd side and overlapping windows; the
 * 2x2 maxpool against direct loops where windows tie; finite-difference gradient checks of the
 * fused path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/gradcheck.h"
#include "worker/model/model.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAX_LAYERS 8

typedef struct block_case {
    int c, h, w;        /* input image */
    int oc, k, pad;     /* convolution (stride 1) */
    int pool, pool_str; /* maxpool window and stride */
} block_case_t;

/* INPUT, CONV, RELU, [DROPOUT 0], MAXPOOL, FLATTEN, DENSE 5; returns the layer count. */
static int block_spec(const block_case_t *c, bool apart, pst_layer_spec_t *spec)
{
    int n = 0;
    spec[n++] = (pst_layer_spec_t){
        .kind = PST_LAYER_INPUT, .channels = c->c, .height = c->h, .width = c->w};
    spec[n++] = (pst_layer_spec_t){
        .kind = PST_LAYER_CONV2D, .channels = c->oc, .kernel = c->k, .stride = 1, .pad = c->pad};
    spec[n++] = (pst_layer_spec_t){.kind = PST_LAYER_RELU};
    if (apart)
        spec[n++] = (pst_layer_spec_t){.kind = PST_LAYER_DROPOUT, .rate = 0.0f};
    spec[n++] =
        (pst_layer_spec_t){.kind = PST_LAYER_MAXPOOL2D, .kernel = c->pool, .stride = c->pool_str};
    spec[n++] = (pst_layer_spec_t){.kind = PST_LAYER_FLATTEN};
    spec[n++] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = 5};
    return n;
}

static void expect_same_as_separate_layers(const block_case_t *c, int batch, uint64_t seed)
{
    pst_layer_spec_t fused_spec[MAX_LAYERS], apart_spec[MAX_LAYERS];
    int n_fused = block_spec(c, false, fused_spec), n_apart = block_spec(c, true, apart_spec);
    int n_inputs = c->c * c->h * c->w;
    pst_model_t *fused = random_model_in(n_inputs, fused_spec, n_fused, batch, seed, -0.5f, 0.5f);
    pst_model_t *apart = random_model_in(n_inputs, apart_spec, n_apart, batch, seed, -0.5f, 0.5f);
    size_t n_params = pst_model_n_params(fused);
    assert_int_equal(n_params, pst_model_n_params(apart));
    memcpy(pst_model_params(apart), pst_model_params(fused), n_params * sizeof(float));

    pst_rng_t rng;
    pst_rng_init(&rng, seed + 1);
    float *x = malloc((size_t)batch * n_inputs * sizeof(float));
    float dout[64 * 5];
    assert_true(batch * 5 <= N_OF(dout));
    fill_uniform(x, (size_t)batch * n_inputs, -1, 1, &rng);
    fill_uniform(dout, (size_t)batch * 5, -1, 1, &rng);

    const float *y_fused = pst_model_forward(fused, x, batch, true, NULL);
    const float *y_apart = pst_model_forward(apart, x, batch, true, NULL);
    assert_memory_equal(y_fused, y_apart, (size_t)batch * 5 * sizeof(float));

    const float *dx_fused = pst_model_backward_input(fused, dout, batch, false);
    const float *dx_apart = pst_model_backward_input(apart, dout, batch, false);
    assert_memory_equal(dx_fused, dx_apart, (size_t)batch * n_inputs * sizeof(float));
    assert_memory_equal(pst_model_grads(fused), pst_model_grads(apart), n_params * sizeof(float));
    double norm = 0;
    for (int i = 0; i < batch * n_inputs; i++)
        norm += fabs(dx_fused[i]);
    assert_true(norm > 0);
    free(x);
    pst_model_destroy(&fused);
    pst_model_destroy(&apart);
}

static void tiling_2x2_pool_matches_separate_layers(void **state)
{
    (void)state;
    block_case_t c = {.c = 3, .h = 8, .w = 8, .oc = 4, .k = 3, .pad = 1, .pool = 2, .pool_str = 0};
    expect_same_as_separate_layers(&c, 5, 11);
}

static void odd_side_2x2_pool_matches_separate_layers(void **state)
{
    (void)state;
    block_case_t c = {.c = 1, .h = 7, .w = 9, .oc = 3, .k = 3, .pad = 1, .pool = 2, .pool_str = 2};
    expect_same_as_separate_layers(&c, 4, 12);
}

static void overlapping_pool_matches_separate_layers(void **state)
{
    (void)state;
    block_case_t c = {.c = 2, .h = 9, .w = 8, .oc = 3, .k = 2, .pad = 0, .pool = 3, .pool_str = 1};
    expect_same_as_separate_layers(&c, 3, 13);
}

static void wide_tiling_2x2_pool_matches_separate_layers(void **state)
{
    (void)state; /* 6 outputs a row: one vector of four and two left over */
    block_case_t c = {.c = 2, .h = 10, .w = 12, .oc = 3, .k = 3, .pad = 1, .pool = 2};
    expect_same_as_separate_layers(&c, 3, 14);
}

/* The 2x2 maxpool against direct loops, on values drawn from {-2, ..., 2} so that windows tie: the
 * first maximum in row order takes the value and, in backward, the whole gradient. */
static void maxpool_2x2_first_maximum_wins_ties(void **state)
{
    (void)state;
    enum { B = 2, C = 3, H = 10, W = 14, OH = 5, OW = 7 };
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_INPUT, .channels = C, .height = H, .width = W},
                               {.kind = PST_LAYER_CONV2D, .channels = C, .kernel = 1, .stride = 1},
                               {.kind = PST_LAYER_MAXPOOL2D, .kernel = 2, .stride = 2}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(C * H * W, spec, N_OF(spec), B, &err);
    if (m == NULL)
        fail_msg("pst_model_new: %s", err.msg);
    float *params = pst_model_params(m); /* the 1x1 convolution passes its input through */
    memset(params, 0, pst_model_n_params(m) * sizeof(float));
    for (int c = 0; c < C; c++)
        params[pst_model_tensor(m, 0)->offset + (size_t)c * C + c] = 1.0f;
    pst_rng_t rng;
    pst_rng_init(&rng, 7);
    float x[B * C * H * W], dout[B * C * OH * OW], want_dx[B * C * H * W] = {0};
    for (int i = 0; i < N_OF(x); i++)
        x[i] = (float)(int)(pst_rng_uniform(&rng) * 5) - 2.0f;
    fill_uniform(dout, N_OF(dout), 0.5f, 1.5f, &rng);
    const float *y = pst_model_forward(m, x, B, true, NULL);
    int ties = 0;
    for (int nc = 0; nc < B * C; nc++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int best = -1, n_best = 0;
                for (int ky = 0; ky < 2; ky++)
                    for (int kx = 0; kx < 2; kx++) {
                        int at = nc * H * W + (2 * oy + ky) * W + 2 * ox + kx;
                        if (best < 0 || x[at] > x[best])
                            best = at, n_best = 1;
                        else if (x[at] == x[best])
                            n_best++;
                    }
                int o = (nc * OH + oy) * OW + ox;
                assert_true(y[o] == x[best]);
                want_dx[best] = dout[o];
                ties += n_best > 1;
            }
    assert_true(ties > 20);
    const float *dx = pst_model_backward_input(m, dout, B, false);
    assert_memory_equal(dx, want_dx, sizeof want_dx);
    pst_model_destroy(&m);
}

static void gradcheck_block(const block_case_t *c, int batch, uint64_t seed)
{
    pst_layer_spec_t spec[MAX_LAYERS];
    int n = block_spec(c, false, spec);
    gradcheck_t g = {.training = true,
                     .eps = 1e-3f,
                     .rel = 1e-2,
                     .abs = 1e-4,
                     .param_lo = -0.5f,
                     .param_hi = 0.5f};
    gradcheck_run(&g, spec, n, c->c * c->h * c->w, batch, seed);
}

/* Central differences are only exact away from a ReLU's kink and a window's tie; the seeds draw
 * models and inputs that none of the +-eps steps pushes across one (other draws do, at an input
 * or weight whose pre-activation lies within eps of 0). */
static void gradcheck_fused_tiling_and_overlapping(void **state)
{
    (void)state;
    block_case_t tiling = {.c = 2, .h = 6, .w = 6, .oc = 3, .k = 3, .pad = 1, .pool = 2};
    block_case_t overlapping = {.c = 1, .h = 7, .w = 6, .oc = 2, .k = 2, .pool = 3, .pool_str = 2};
    gradcheck_block(&tiling, 2, 31);
    gradcheck_block(&overlapping, 3, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiling_2x2_pool_matches_separate_layers),
        cmocka_unit_test(odd_side_2x2_pool_matches_separate_layers),
        cmocka_unit_test(overlapping_pool_matches_separate_layers),
        cmocka_unit_test(wide_tiling_2x2_pool_matches_separate_layers),
        cmocka_unit_test(maxpool_2x2_first_maximum_wins_ties),
        cmocka_unit_test(gradcheck_fused_tiling_and_overlapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
