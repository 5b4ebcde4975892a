/* Tests for the recurrent layers (worker/model/rnn.c through the model API): lstm and gru
 * forward values against a direct step-by-step computation and against PyTorch's nn.LSTM and
 * nn.GRU (golden numbers), finite-difference gradient checks of
 * the parameters and the input (last state, whole sequence, stacked), orthogonal initialisation,
 * the model file round trip and the layer specs' errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/unit/gradcheck.h"
#include "tests/unit/scratch.h"
#include "worker/model/modelfile.h"
#include "worker/model/modelspec.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parameters drawn from [-0.6, 0.6]. */
static pst_model_t *random_model(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                                 int max_batch, uint64_t seed)
{
    return random_model_in(n_inputs, layers, n_layers, max_batch, seed, -0.6f, 0.6f);
}

static double sig(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* Pre-activation of gate row g for input x (F) and state h (H): b[g] + W[g] . [x, h]. */
static double pre(const float *w, const float *b, int g, const float *x, int F, const double *h,
                  int H, bool with_h)
{
    double s = b[g];
    for (int k = 0; k < F; k++)
        s += (double)w[(size_t)g * (F + H) + k] * x[k];
    for (int k = 0; with_h && k < H; k++)
        s += (double)w[(size_t)g * (F + H) + F + k] * h[k];
    return s;
}

/* One sequence (T, F) through an lstm or gru of H units, in double; writes every step's h. */
static void reference(bool lstm, const float *w, const float *b, const float *x, int T, int F,
                      int H, double *hs)
{
    double h[16] = {0}, c[16] = {0}, next[16];
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * F;
        for (int j = 0; j < H; j++) {
            if (lstm) {
                double i = sig(pre(w, b, j, xt, F, h, H, true));
                double f = sig(pre(w, b, H + j, xt, F, h, H, true));
                double g = tanh(pre(w, b, 2 * H + j, xt, F, h, H, true));
                double o = sig(pre(w, b, 3 * H + j, xt, F, h, H, true));
                c[j] = f * c[j] + i * g;
                next[j] = o * tanh(c[j]);
            } else {
                double r = sig(pre(w, b, j, xt, F, h, H, true));
                double z = sig(pre(w, b, H + j, xt, F, h, H, true));
                double hn = b[3 * H + j];
                for (int k = 0; k < H; k++)
                    hn += (double)w[(size_t)(2 * H + j) * (F + H) + F + k] * h[k];
                double n = tanh(pre(w, b, 2 * H + j, xt, F, h, H, false) + r * hn);
                next[j] = (1 - z) * n + z * h[j];
            }
        }
        memcpy(h, next, sizeof h);
        for (int j = 0; j < H; j++)
            hs[(size_t)t * H + j] = h[j];
    }
}

static void forward_matches_step_by_step(pst_layer_kind_t kind, bool sequences)
{
    enum { B = 3, T = 5, F = 2, H = 4 };
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_INPUT, .channels = T, .height = F, .width = 1},
                               {.kind = kind, .units = H, .sequences = sequences}};
    pst_model_t *m = random_model(T * F, spec, 2, B, 7);
    assert_int_equal(pst_model_n_outputs(m), sequences ? T * H : H);
    const pst_tensor_info_t *wt = pst_model_tensor(m, 0), *bt = pst_model_tensor(m, 1);
    assert_int_equal(wt->rows, (kind == PST_LAYER_LSTM ? 4 : 3) * H);
    assert_int_equal(wt->cols, F + H);
    assert_int_equal(bt->size, 4 * H);
    pst_rng_t rng;
    pst_rng_init(&rng, 8);
    float x[B * T * F];
    fill_uniform(x, B * T * F, -1, 1, &rng);
    const float *w = pst_model_params(m) + wt->offset, *b = pst_model_params(m) + bt->offset;
    const float *y = pst_model_forward(m, x, B, false, NULL);
    for (int r = 0; r < B; r++) {
        double hs[T * H];
        reference(kind == PST_LAYER_LSTM, w, b, x + r * T * F, T, F, H, hs);
        for (int t = sequences ? 0 : T - 1; t < T; t++)
            for (int j = 0; j < H; j++) {
                float got = sequences ? y[(r * T + t) * H + j] : y[r * H + j];
                assert_float_equal(got, hs[t * H + j], 2e-6);
            }
    }
    pst_model_destroy(&m);
}

static void lstm_forward_values(void **state)
{
    (void)state;
    forward_matches_step_by_step(PST_LAYER_LSTM, false);
    forward_matches_step_by_step(PST_LAYER_LSTM, true);
}

static void gru_forward_values(void **state)
{
    (void)state;
    forward_matches_step_by_step(PST_LAYER_GRU, false);
    forward_matches_step_by_step(PST_LAYER_GRU, true);
}

/* Produced by scripts/golden/rnn_golden.py (torch 1.13.0, float64): torch.nn.LSTM and
 * torch.nn.GRU over 2 sequences of 4 steps of 3 features, 3 units, parameter k
 * 0.5 sin(0.7 k + 0.3) in pstrain's layout, input value k cos(0.37 k); every step's state. */
static const double GOLDEN_LSTM[24] = {
    0.236361284814,    -0.113807395483,  -0.0344637756798, -0.0236972062104, -0.234381049439,
    0.000563928804159, -0.0942893673179, -0.0574519720533, 0.0696409318624,  -0.130355579683,
    0.256030825661,    -0.0271489514488, -0.100429558207,  -0.136819406052,  -0.107395855556,
    0.190156669147,    -0.126172801604,  -0.0986816033329, 0.27682536205,    -0.159487908866,
    -0.0579949266523,  -0.0577190402412, -0.24379653963,   -0.0045753333088};
static const double GOLDEN_GRU[24] = {
    0.122559305793,  -0.63115023384,  0.117252339457,   -0.0941330666079, -0.529994097922,
    0.307828207877,  -0.642449359247, -0.163517788517,  0.39104937987,    -0.808830429921,
    0.0824759573704, 0.346129840102,  -0.0588492754119, -0.0600711136549, -0.0653664405723,
    0.0806331045717, -0.631666958141, 0.0155196387916,  0.153870950903,   -0.782186020986,
    0.228945942156,  -0.28967036198,  -0.430054709161,  0.375882305815};

static void matches_pytorch(pst_layer_kind_t kind, const double *golden)
{
    enum { B = 2, T = 4, F = 3, H = 3 };
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_INPUT, .channels = T, .height = F, .width = 1},
                               {.kind = kind, .units = H, .sequences = true}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(T * F, spec, 2, B, &err);
    assert_non_null(m);
    float *p = pst_model_params(m);
    for (size_t k = 0; k < pst_model_n_params(m); k++)
        p[k] = (float)(0.5 * sin(0.7 * (double)k + 0.3));
    float x[B * T * F];
    for (int k = 0; k < B * T * F; k++)
        x[k] = (float)cos(0.37 * k);
    const float *y = pst_model_forward(m, x, B, false, NULL);
    for (int i = 0; i < B * T * H; i++)
        if (fabs(y[i] - golden[i]) > 1e-6)
            fail_msg("%s output %d: %.9g, PyTorch %.9g", pst_layer_kind_name(kind), i, y[i],
                     golden[i]);
    pst_model_destroy(&m);
}

static void lstm_and_gru_match_pytorch(void **state)
{
    (void)state;
    matches_pytorch(PST_LAYER_LSTM, GOLDEN_LSTM);
    matches_pytorch(PST_LAYER_GRU, GOLDEN_GRU);
}

static void check_gradients(const pst_layer_spec_t *spec, int n_layers, int n_inputs, int batch,
                            uint64_t seed)
{
    gradcheck_t g = {.training = true,
                     .eps = 1e-2f,
                     .rel = 1e-2,
                     .abs = 2e-4,
                     .param_lo = -0.6f,
                     .param_hi = 0.6f};
    gradcheck_run(&g, spec, n_layers, n_inputs, batch, seed);
}

static void gradcheck_lstm(void **state)
{
    (void)state;
    pst_layer_spec_t last[] = {{.kind = PST_LAYER_INPUT, .channels = 4, .height = 3, .width = 1},
                               {.kind = PST_LAYER_LSTM, .units = 5},
                               {.kind = PST_LAYER_DENSE, .units = 2}};
    check_gradients(last, N_OF(last), 12, 3, 11);
    pst_layer_spec_t seq[] = {{.kind = PST_LAYER_LSTM, .units = 3, .sequences = true},
                              {.kind = PST_LAYER_DENSE, .units = 2}};
    check_gradients(seq, N_OF(seq), 6, 2, 12); /* a flat row: 6 steps of one feature */
}

static void gradcheck_gru(void **state)
{
    (void)state;
    pst_layer_spec_t last[] = {{.kind = PST_LAYER_INPUT, .channels = 4, .height = 3, .width = 1},
                               {.kind = PST_LAYER_GRU, .units = 5},
                               {.kind = PST_LAYER_DENSE, .units = 2}};
    check_gradients(last, N_OF(last), 12, 3, 21);
    pst_layer_spec_t seq[] = {{.kind = PST_LAYER_GRU, .units = 3, .sequences = true},
                              {.kind = PST_LAYER_TANH},
                              {.kind = PST_LAYER_DENSE, .units = 2}};
    check_gradients(seq, N_OF(seq), 6, 2, 22);
}

/* data.window's form: a flat row of steps x features values read through spec.steps. */
static void gradcheck_flat_steps(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_GRU, .units = 4, .steps = 3},
                               {.kind = PST_LAYER_DENSE, .units = 2}};
    pst_model_t *m = random_model(6, spec, N_OF(spec), 2, 51);
    assert_int_equal(pst_model_tensor(m, 0)->cols, 2 + 4); /* 2 features a step */
    pst_model_destroy(&m);
    check_gradients(spec, N_OF(spec), 6, 2, 52);
    pst_layer_spec_t lstm[] = {{.kind = PST_LAYER_LSTM, .units = 3, .steps = 2, .sequences = true},
                               {.kind = PST_LAYER_DENSE, .units = 1}};
    check_gradients(lstm, N_OF(lstm), 8, 3, 53);
    /* a row that is not whole steps is refused by layer */
    pst_err_t err = {0};
    spec[0].steps = 4;
    assert_null(pst_model_new(6, spec, N_OF(spec), 2, &err));
    assert_non_null(strstr(err.msg, "layer 0: gru: an input of 6 values is not 4 steps"));
}

static void gradcheck_stacked(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_INPUT, .channels = 5, .height = 2, .width = 1},
                               {.kind = PST_LAYER_LSTM, .units = 4, .sequences = true},
                               {.kind = PST_LAYER_GRU, .units = 3},
                               {.kind = PST_LAYER_DENSE, .units = 1}};
    check_gradients(spec, N_OF(spec), 10, 3, 31);
}

/* Rows i and j of w (n columns, row stride ld): their dot product. */
static double row_dot(const float *w, int i, int j, int n, int ld)
{
    double s = 0;
    for (int k = 0; k < n; k++)
        s += (double)w[(size_t)i * ld + k] * w[(size_t)j * ld + k];
    return s;
}

static void orthogonal_init(void **state)
{
    (void)state;
    enum { F = 3, H = 6 };
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_INPUT, .channels = 4, .height = F, .width = 1},
                               {.kind = PST_LAYER_LSTM, .units = H},
                               {.kind = PST_LAYER_DENSE, .units = 4, .init = PST_INIT_ORTHOGONAL}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(4 * F, spec, N_OF(spec), 2, &err);
    assert_non_null(m);
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    pst_model_init_params(m, &rng);
    const float *p = pst_model_params(m);
    const float *w = p + pst_model_tensor(m, 0)->offset, *b = p + pst_model_tensor(m, 1)->offset;
    for (int gate = 0; gate < 4; gate++) /* each gate's recurrent block: W W^T = I */
        for (int i = 0; i < H; i++)
            for (int j = 0; j < H; j++)
                assert_float_equal(row_dot(w + (size_t)gate * H * (F + H) + F, i, j, H, F + H),
                                   i == j, 1e-5);
    for (int j = 0; j < 4 * H; j++) /* zero biases but the forget gate's */
        assert_float_equal(b[j], j >= H && j < 2 * H ? 1.0f : 0.0f, 0);
    const float *d = p + pst_model_tensor(m, 2)->offset; /* dense (4, 6): orthonormal rows */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            assert_float_equal(row_dot(d, i, j, H, H), i == j, 1e-5);
    pst_model_destroy(&m);
}

static void model_file_round_trip(void **state)
{
    (void)state;
    pst_layer_spec_t spec[] = {{.kind = PST_LAYER_INPUT, .channels = 6, .height = 2, .width = 1},
                               {.kind = PST_LAYER_LSTM, .units = 5, .sequences = true},
                               {.kind = PST_LAYER_GRU, .units = 4, .init = PST_INIT_ORTHOGONAL},
                               {.kind = PST_LAYER_DENSE, .units = 1}};
    pst_model_t *m = random_model(12, spec, N_OF(spec), 4, 41);
    pst_modelfile_t mf = {.n_inputs = 12,
                          .n_layers = N_OF(spec),
                          .layers = spec,
                          .loss = PST_LOSS_MSE,
                          .task = PST_TASK_REGRESSION,
                          .params = pst_model_params(m),
                          .n_params = pst_model_n_params(m)};
    char path[256];
    pst_scratch_path(path, "rnn.pst");
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_save(&mf, path, &err), PST_OK);
    pst_modelfile_t back;
    assert_int_equal(pst_modelfile_load(&back, path, &err), PST_OK);
    assert_int_equal(back.n_layers, N_OF(spec));
    assert_int_equal(back.layers[1].kind, PST_LAYER_LSTM);
    assert_true(back.layers[1].sequences);
    assert_int_equal(back.layers[2].kind, PST_LAYER_GRU);
    assert_false(back.layers[2].sequences);
    assert_int_equal(back.layers[2].init, PST_INIT_ORTHOGONAL);
    pst_model_t *built = pst_modelfile_build(&back, 4, &err);
    assert_non_null(built);
    pst_rng_t rng;
    pst_rng_init(&rng, 42);
    float x[4 * 12], want[4];
    fill_uniform(x, N_OF(x), -1, 1, &rng);
    memcpy(want, pst_model_forward(m, x, 4, false, NULL), sizeof want);
    assert_memory_equal(pst_model_forward(built, x, 4, false, NULL), want, sizeof want);
    pst_model_destroy(&built);
    pst_modelfile_fini(&back);
    pst_model_destroy(&m);
}

/* spec built from model.layers written as a YAML list, or the error. */
static int build_from(const char *layers, pst_modelspec_t *spec, pst_err_t *err)
{
    pst_config_t cfg;
    pst_config_init(&cfg);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "model:\n  layers: [%s]\n", layers);
    int rc = pst_config_load_string(&cfg, yaml, "test", err);
    if (rc == PST_OK)
        rc = pst_modelspec_build(spec, &cfg, PST_TASK_REGRESSION, 0, err);
    pst_config_fini(&cfg);
    return rc;
}

static void specs_parse_format_and_errors(void **state)
{
    (void)state;
    pst_modelspec_t spec;
    pst_err_t err = {0};
    assert_int_equal(build_from("lstm:16:seq, gru:8:init=orthogonal, dense:1", &spec, &err),
                     PST_OK);
    assert_int_equal(spec.layers[0].kind, PST_LAYER_LSTM);
    assert_int_equal(spec.layers[0].units, 16);
    assert_true(spec.layers[0].sequences);
    assert_int_equal(spec.layers[1].init, PST_INIT_ORTHOGONAL);
    char buf[64];
    assert_string_equal(pst_layer_spec_format(&spec.layers[0], buf, sizeof buf), "lstm:16:seq");
    assert_string_equal(pst_layer_spec_format(&spec.layers[1], buf, sizeof buf),
                        "gru:8:init=orthogonal");
    const char *bad[] = {"lstm", "lstm:0", "gru:8:last", "lstm:x", "lstm:70000"};
    for (int i = 0; i < N_OF(bad); i++) {
        char layers[64];
        snprintf(layers, sizeof layers, "%s, dense:1", bad[i]);
        assert_int_equal(build_from(layers, &spec, &err), PST_EINVAL);
        assert_non_null(strstr(err.msg, "model.layers[0]"));
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lstm_forward_values),   cmocka_unit_test(lstm_and_gru_match_pytorch),
        cmocka_unit_test(gru_forward_values),    cmocka_unit_test(gradcheck_lstm),
        cmocka_unit_test(gradcheck_gru),         cmocka_unit_test(gradcheck_stacked),
        cmocka_unit_test(gradcheck_flat_steps),  cmocka_unit_test(orthogonal_init),
        cmocka_unit_test(model_file_round_trip), cmocka_unit_test(specs_parse_format_and_errors),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
