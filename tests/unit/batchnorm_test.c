/* Tests for batchnorm (worker/model/batchnorm.c through the model API): training forward values
 * and running statistics against a direct computation, evaluation with the running statistics,
 * finite-difference gradient checks after dense and conv2d layers in training and evaluation mode,
 * and the running statistics' round trip through a model file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/unit/gradcheck.h"
#include "tests/unit/scratch.h"
#include "worker/model/modelfile.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parameters drawn from [-0.5, 1.5]. */
static pst_model_t *random_model(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                                 int max_batch, uint64_t seed)
{
    return random_model_in(n_inputs, layers, n_layers, max_batch, seed, -0.5f, 1.5f);
}

/* dense 3 -> batchnorm over 3 features, batch 4: the output of training is gamma * z + beta with
 * z the batch-standardised dense output; the running moments move 10% of the way. */
static void training_forward_and_running_statistics(void **state)
{
    (void)state;
    enum { B = 4, IN = 2, C = 3 };
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_DENSE, .units = C},
                               {.kind = PST_LAYER_BATCHNORM}};
    pst_model_t *m = random_model(IN, spec, 2, B, 4);
    assert_int_equal(pst_model_n_tensors(m), 4);
    assert_int_equal(pst_model_n_state(m), 2 * C);
    const float *st = pst_model_state(m);
    for (int c = 0; c < C; c++) {
        assert_float_equal(st[c], 0.0f, 0);
        assert_float_equal(st[C + c], 1.0f, 0);
    }
    float x[B * IN] = {0.5f, -1, 2, 0.25f, -0.75f, 1.5f, 1, 1};
    const float *p = pst_model_params(m);
    const float *w = p, *b = p + C * IN, *gamma = p + C * IN + C, *beta = gamma + C;
    float h[B * C];
    for (int r = 0; r < B; r++)
        for (int c = 0; c < C; c++)
            h[r * C + c] = b[c] + w[c * IN] * x[r * IN] + w[c * IN + 1] * x[r * IN + 1];
    const float *y = pst_model_forward(m, x, B, true, NULL);
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (int r = 0; r < B; r++)
            mean += h[r * C + c] / (double)B;
        for (int r = 0; r < B; r++)
            var += (h[r * C + c] - mean) * (h[r * C + c] - mean) / B;
        for (int r = 0; r < B; r++)
            assert_float_equal(y[r * C + c],
                               gamma[c] * (h[r * C + c] - mean) / sqrt(var + 1e-5) + beta[c], 1e-4);
        assert_float_equal(st[c], 0.1 * mean, 1e-6);
        assert_float_equal(st[C + c], 0.9 + 0.1 * var * B / (B - 1), 1e-6);
    }
    /* evaluation uses the running moments, whatever the batch */
    y = pst_model_forward(m, x, 1, false, NULL);
    for (int c = 0; c < C; c++)
        assert_float_equal(y[c], gamma[c] * (h[c] - st[c]) / sqrt(st[C + c] + 1e-5) + beta[c],
                           1e-4);
    pst_model_destroy(&m);
}

/* Batch sums in float32: a wider step beats rounding. Evaluation mode gets running moments
 * that are not the trivial 0 and 1. */
static void check_gradients(const pst_layer_spec_t *spec, int n_layers, int n_inputs, int batch,
                            bool training, uint64_t seed)
{
    gradcheck_t g = {.training = training,
                     .eps = 1e-2f,
                     .rel = 2e-2,
                     .abs = 2e-4,
                     .param_lo = -0.5f,
                     .param_hi = 1.5f,
                     .random_state = true};
    gradcheck_run(&g, spec, n_layers, n_inputs, batch, seed);
}

static void gradcheck_batchnorm_after_dense(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_DENSE, .units = 5},
                               {.kind = PST_LAYER_BATCHNORM},
                               {.kind = PST_LAYER_TANH},
                               {.kind = PST_LAYER_DENSE, .units = 3}};
    check_gradients(spec, N_OF(spec), 4, 6, true, 31);
    check_gradients(spec, N_OF(spec), 4, 6, false, 32);
}

static void gradcheck_batchnorm_after_conv(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_INPUT, .channels = 2, .height = 4, .width = 4},
                               {.kind = PST_LAYER_CONV2D, .channels = 3, .kernel = 3, .pad = 1},
                               {.kind = PST_LAYER_BATCHNORM},
                               {.kind = PST_LAYER_SIGMOID},
                               {.kind = PST_LAYER_FLATTEN},
                               {.kind = PST_LAYER_DENSE, .units = 2}};
    check_gradients(spec, N_OF(spec), 32, 3, true, 41);
    check_gradients(spec, N_OF(spec), 32, 3, false, 42);
}

static void running_statistics_round_trip_through_the_model_file(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_DENSE, .units = 4},
                               {.kind = PST_LAYER_BATCHNORM},
                               {.kind = PST_LAYER_DENSE, .units = 2},
                               {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *m = random_model(3, spec, N_OF(spec), 8, 51);
    pst_rng_t rng;
    pst_rng_init(&rng, 52);
    float x[8 * 3];
    fill_uniform(x, N_OF(x), -1, 1, &rng);
    pst_model_forward(m, x, 8, true, NULL); /* moves the running moments off 0 and 1 */
    pst_modelfile_t mf = {.n_inputs = 3,
                          .n_layers = N_OF(spec),
                          .layers = spec,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = 2,
                          .params = pst_model_params(m),
                          .n_params = pst_model_n_params(m),
                          .state = pst_model_state(m),
                          .n_state = pst_model_n_state(m)};
    char path[256];
    pst_scratch_path(path, "bn.pst");
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_save(&mf, path, &err), PST_OK);
    pst_modelfile_t back;
    assert_int_equal(pst_modelfile_load(&back, path, &err), PST_OK);
    assert_int_equal(back.n_state, 8);
    assert_memory_equal(back.state, pst_model_state(m), 8 * sizeof(float));
    pst_model_t *built = pst_modelfile_build(&back, 8, &err);
    assert_non_null(built);
    float want[8 * 2];
    memcpy(want, pst_model_forward(m, x, 8, false, NULL), sizeof want);
    assert_memory_equal(pst_model_forward(built, x, 8, false, NULL), want, sizeof want);
    pst_model_destroy(&built);
    /* a file whose statistics do not match its layers is refused */
    back.n_state = 6;
    built = pst_modelfile_build(&back, 8, &err);
    assert_null(built);
    assert_non_null(strstr(err.msg, "holds 6 running statistics, its batchnorm layers need 8"));
    back.n_state = 8;
    pst_modelfile_fini(&back);
    pst_model_destroy(&m);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(training_forward_and_running_statistics),
        cmocka_unit_test(gradcheck_batchnorm_after_dense),
        cmocka_unit_test(gradcheck_batchnorm_after_conv),
        cmocka_unit_test(running_statistics_round_trip_through_the_model_file),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
