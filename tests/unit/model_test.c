/* Tests for worker/model: spec checks, arena layout, sgemm shapes, init statistics,
 * finite-difference gradient checks of every layer and loss, and a small network trained on iris.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/model/loss.h"
#include "worker/model/model.h"

#define DENSE(n)                                                                                   \
    {                                                                                              \
        .kind = PST_LAYER_DENSE, .units = (n)                                                      \
    }
#define ACT(k)                                                                                     \
    {                                                                                              \
        .kind = (k)                                                                                \
    }
#define DROPOUT(r)                                                                                 \
    {                                                                                              \
        .kind = PST_LAYER_DROPOUT, .rate = (r)                                                     \
    }
#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void fill_uniform(float *v, size_t n, float lo, float hi, pst_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)pst_rng_uniform(rng);
}

static pst_model_t *new_model(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                              int max_batch)
{
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(n_inputs, layers, n_layers, max_batch, &err);
    if (m == NULL)
        fail_msg("pst_model_new: %s", err.msg);
    return m;
}

/* Initialised weights plus non-zero biases, so bias gradients are exercised too. */
static pst_model_t *random_model(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                                 int max_batch, uint64_t seed)
{
    pst_model_t *m = new_model(n_inputs, layers, n_layers, max_batch);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    pst_model_init_params(m, &rng);
    for (int t = 0; t < pst_model_n_tensors(m); t++) {
        const pst_tensor_info_t *info = pst_model_tensor(m, t);
        if (info->is_bias)
            fill_uniform(pst_model_params(m) + info->offset, info->size, -0.3f, 0.3f, &rng);
    }
    return m;
}

/* ---- names and spec validation ---- */

static void layer_names_round_trip(void **state)
{
    for (int k = PST_LAYER_DENSE; k <= PST_LAYER_GLOBAL_AVGPOOL; k++) {
        pst_layer_kind_t parsed;
        assert_int_equal(pst_layer_kind_parse(pst_layer_kind_name((pst_layer_kind_t)k), &parsed),
                         PST_OK);
        assert_int_equal(parsed, k);
    }
    pst_layer_kind_t kind = PST_LAYER_TANH;
    assert_int_equal(pst_layer_kind_parse("relu", &kind), PST_OK);
    assert_int_equal(kind, PST_LAYER_RELU);
    assert_int_equal(pst_layer_kind_parse("conv3d", &kind), PST_EINVAL);
    assert_string_equal(pst_layer_kind_name(PST_LAYER_CONV2D), "conv2d");
    assert_int_equal(pst_layer_kind_parse(NULL, &kind), PST_EINVAL);
    assert_string_equal(pst_layer_kind_name(PST_LAYER_SOFTMAX), "softmax");
}

static void expect_invalid(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                           int max_batch, const char *needle)
{
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(n_inputs, layers, n_layers, max_batch, &err);
    assert_null(m);
    assert_int_equal(err.code, PST_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void spec_validation_errors(void **state)
{
    pst_layer_spec_t ok[] = {DENSE(4), ACT(PST_LAYER_RELU), DENSE(2)};
    expect_invalid(0, ok, 3, 8, "n_inputs");
    expect_invalid(3, ok, 3, 0, "max_batch");
    expect_invalid(3, ok, 0, 8, "no layers");
    expect_invalid(3, NULL, 3, 8, "no layers");
    pst_layer_spec_t zero_units[] = {DENSE(4), DENSE(0)};
    expect_invalid(3, zero_units, 2, 8, "layer 1: dense units");
    pst_layer_spec_t neg_units[] = {DENSE(-3)};
    expect_invalid(3, neg_units, 1, 8, "layer 0: dense units");
    pst_layer_spec_t rate_one[] = {DENSE(4), DROPOUT(1.0f), DENSE(2)};
    expect_invalid(3, rate_one, 3, 8, "dropout rate");
    pst_layer_spec_t rate_neg[] = {DENSE(4), DROPOUT(-0.1f), DENSE(2)};
    expect_invalid(3, rate_neg, 3, 8, "dropout rate");
    pst_layer_spec_t rate_nan[] = {DENSE(4), DROPOUT(NAN), DENSE(2)};
    expect_invalid(3, rate_nan, 3, 8, "dropout rate");
    pst_layer_spec_t no_dense[] = {ACT(PST_LAYER_RELU), ACT(PST_LAYER_SOFTMAX)};
    expect_invalid(3, no_dense, 2, 8, "at least one dense or conv2d");
    pst_layer_spec_t softmax_mid[] = {DENSE(4), ACT(PST_LAYER_SOFTMAX), DENSE(2)};
    expect_invalid(3, softmax_mid, 3, 8, "softmax is only allowed as the last layer");
    pst_layer_spec_t bad_kind[] = {DENSE(4), {.kind = (pst_layer_kind_t)42}};
    expect_invalid(3, bad_kind, 2, 8, "unknown kind");
    /* Rate 0 dropout, a leading activation and a trailing softmax are all fine. */
    pst_layer_spec_t fine[] = {DROPOUT(0.0f), ACT(PST_LAYER_TANH), DENSE(3),
                               ACT(PST_LAYER_SOFTMAX)};
    pst_model_t *m = new_model(3, fine, 4, 8);
    assert_int_equal(pst_model_n_outputs(m), 3);
    pst_model_destroy(&m);
    pst_model_destroy(&m);
    assert_null(m);
}

/* ---- arena layout ---- */

static void tensor_table_layout(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(3), ACT(PST_LAYER_TANH), DROPOUT(0.5f), DENSE(2),
                               ACT(PST_LAYER_SIGMOID)};
    pst_model_t *m = new_model(4, spec, N_OF(spec), 5);
    assert_int_equal(pst_model_n_inputs(m), 4);
    assert_int_equal(pst_model_n_outputs(m), 2);
    assert_int_equal(pst_model_n_layers(m), 5);
    assert_int_equal(pst_model_layer(m, 2)->kind, PST_LAYER_DROPOUT);
    assert_true(pst_model_layer(m, 2)->rate == 0.5f);
    assert_null(pst_model_layer(m, 5));
    assert_int_equal(pst_model_n_tensors(m), 4);
    assert_int_equal(pst_model_n_params(m), 4 * 3 + 3 + 3 * 2 + 2);
    const size_t offsets[] = {0, 12, 15, 21}, sizes[] = {12, 3, 6, 2};
    const int rows[] = {3, 3, 2, 2}, cols[] = {4, 1, 3, 1};
    for (int t = 0; t < 4; t++) {
        const pst_tensor_info_t *info = pst_model_tensor(m, t);
        assert_int_equal(info->offset, offsets[t]);
        assert_int_equal(info->size, sizes[t]);
        assert_int_equal(info->rows, rows[t]);
        assert_int_equal(info->cols, cols[t]);
        assert_int_equal(info->is_bias, t % 2 == 1);
    }
    assert_null(pst_model_tensor(m, 4));
    pst_model_destroy(&m);
}

static void forward_rejects_bad_batch(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(2)};
    pst_model_t *m = new_model(3, spec, 1, 4);
    float x[5 * 3] = {0};
    assert_null(pst_model_forward(m, x, 5, false, NULL));
    assert_null(pst_model_forward(m, x, 0, false, NULL));
    assert_non_null(pst_model_forward(m, x, 4, false, NULL));
    pst_model_destroy(&m);
}

/* ---- sgemm shapes against naive loops ---- */

/* Two stacked dense layers 7 -> 5 -> 3 on a batch of 4: forward, dW, db and the dX that flows
 * from the second layer into the first, all against triple loops in double. */
static void dense_matches_naive_loops(void **state)
{
    enum { B = 4, I = 7, H = 5, O = 3 };
    pst_layer_spec_t spec[] = {DENSE(H), DENSE(O)};
    pst_model_t *m = random_model(I, spec, 2, B, 11);
    const float *p = pst_model_params(m);
    const float *w1 = p, *b1 = p + H * I, *w2 = p + H * I + H, *b2 = w2 + O * H;
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    float x[B * I], dout[B * O];
    fill_uniform(x, B * I, -1, 1, &rng);
    fill_uniform(dout, B * O, -1, 1, &rng);

    double h[B][H], out[B][O], dh[B][H];
    for (int r = 0; r < B; r++) {
        for (int j = 0; j < H; j++) {
            h[r][j] = b1[j];
            for (int k = 0; k < I; k++)
                h[r][j] += (double)x[r * I + k] * w1[j * I + k];
        }
        for (int j = 0; j < O; j++) {
            out[r][j] = b2[j];
            for (int k = 0; k < H; k++)
                out[r][j] += h[r][k] * w2[j * H + k];
        }
        for (int k = 0; k < H; k++) {
            dh[r][k] = 0;
            for (int j = 0; j < O; j++)
                dh[r][k] += (double)dout[r * O + j] * w2[j * H + k];
        }
    }
    const float *y = pst_model_forward(m, x, B, false, NULL);
    for (int r = 0; r < B; r++)
        for (int j = 0; j < O; j++)
            assert_float_equal(y[r * O + j], out[r][j], 1e-5);
    assert_ptr_equal(pst_model_pre_output(m), y);

    pst_model_backward(m, dout, B, false);
    const float *g = pst_model_grads(m);
    const float *gw1 = g, *gb1 = g + H * I, *gw2 = g + H * I + H, *gb2 = gw2 + O * H;
    for (int j = 0; j < O; j++) {
        double db = 0;
        for (int r = 0; r < B; r++)
            db += dout[r * O + j];
        assert_float_equal(gb2[j], db, 1e-5);
        for (int k = 0; k < H; k++) {
            double dw = 0;
            for (int r = 0; r < B; r++)
                dw += (double)dout[r * O + j] * h[r][k];
            assert_float_equal(gw2[j * H + k], dw, 1e-5);
        }
    }
    for (int j = 0; j < H; j++) {
        double db = 0;
        for (int r = 0; r < B; r++)
            db += dh[r][j];
        assert_float_equal(gb1[j], db, 1e-5);
        for (int k = 0; k < I; k++) {
            double dw = 0;
            for (int r = 0; r < B; r++)
                dw += dh[r][j] * x[r * I + k];
            assert_float_equal(gw1[j * I + k], dw, 1e-5);
        }
    }
    pst_model_destroy(&m);
}

/* A second backward overwrites the arena rather than adding to it, and a forward copies its input
 * so the caller may reuse the batch buffer before backward. */
static void backward_overwrites_and_input_is_copied(void **state)
{
    enum { B = 3, I = 4 };
    pst_layer_spec_t spec[] = {DENSE(5), ACT(PST_LAYER_RELU), DENSE(2)};
    pst_model_t *m = random_model(I, spec, 3, B, 2);
    size_t n = pst_model_n_params(m);
    float x[B * I], dout[B * 2] = {0.5f, -1, 0.25f, 2, -0.75f, 1};
    pst_rng_t rng;
    pst_rng_init(&rng, 9);
    fill_uniform(x, B * I, -1, 1, &rng);
    pst_model_forward(m, x, B, false, NULL);
    pst_model_backward(m, dout, B, false);
    float *first = malloc(n * sizeof(float));
    memcpy(first, pst_model_grads(m), n * sizeof(float));
    pst_model_backward(m, dout, B, false);
    assert_memory_equal(first, pst_model_grads(m), n * sizeof(float));
    pst_model_forward(m, x, B, false, NULL);
    memset(x, 0, sizeof(x));
    pst_model_backward(m, dout, B, false);
    assert_memory_equal(first, pst_model_grads(m), n * sizeof(float));
    free(first);
    pst_model_destroy(&m);
}

/* ---- activations ---- */

static void activations_forward_values(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(3), ACT(PST_LAYER_SOFTMAX)};
    pst_model_t *m = new_model(1, spec, 2, 2);
    float *p = pst_model_params(m);
    /* W = (1, 2, -1000), b = (0, 0, 1000): logits (x, 2x, 1000 - 1000x). */
    p[0] = 1, p[1] = 2, p[2] = -1000, p[3] = 0, p[4] = 0, p[5] = 1000;
    float x[2] = {0.0f, 1.0f};
    const float *y = pst_model_forward(m, x, 2, false, NULL);
    /* Row 0: logits (0, 0, 1000) -> (0, 0, 1) without overflow. Row 1: (1, 2, 0). */
    assert_float_equal(y[0], 0.0f, 1e-30);
    assert_float_equal(y[2], 1.0f, 1e-7);
    double z = exp(1.0) + exp(2.0) + 1.0;
    assert_float_equal(y[3], exp(1.0) / z, 1e-6);
    assert_float_equal(y[4], exp(2.0) / z, 1e-6);
    assert_float_equal(y[5], 1.0 / z, 1e-6);
    const float *logits = pst_model_pre_output(m);
    assert_float_equal(logits[2], 1000.0f, 1e-3);
    assert_float_equal(logits[4], 2.0f, 1e-6);
    pst_model_destroy(&m);

    pst_layer_spec_t acts[][2] = {{DENSE(1), ACT(PST_LAYER_SIGMOID)},
                                  {DENSE(1), ACT(PST_LAYER_TANH)},
                                  {DENSE(1), ACT(PST_LAYER_RELU)}};
    float xs[5] = {-200.0f, -1.5f, 0.0f, 0.7f, 200.0f};
    for (int a = 0; a < 3; a++) {
        m = new_model(1, acts[a], 2, 5);
        pst_model_params(m)[0] = 1.0f;
        y = pst_model_forward(m, xs, 5, false, NULL);
        for (int i = 0; i < 5; i++) {
            double v = xs[i];
            double want = a == 0 ? 1.0 / (1.0 + exp(-v)) : a == 1 ? tanh(v) : (v > 0 ? v : 0);
            assert_float_equal(y[i], want, 1e-6 * (1 + fabs(want)));
        }
        pst_model_destroy(&m);
    }
}

/* Eval mode is the identity; training zeroes about rate of the units and scales the rest. */
static void dropout_masks_and_scales(void **state)
{
    enum { B = 50, W = 200 };
    pst_layer_spec_t spec[] = {DENSE(W), DROPOUT(0.3f)};
    pst_model_t *m = random_model(3, spec, 2, B, 4);
    float x[B * 3];
    pst_rng_t rng;
    pst_rng_init(&rng, 8);
    fill_uniform(x, B * 3, 0.5f, 1.0f, &rng);
    float *eval = malloc(sizeof(float) * B * W);
    memcpy(eval, pst_model_forward(m, x, B, false, NULL), sizeof(float) * B * W);
    const float *y = pst_model_forward(m, x, B, true, &rng);
    int zeros = 0;
    for (int i = 0; i < B * W; i++) {
        if (y[i] == 0.0f && eval[i] != 0.0f)
            zeros++;
        else
            assert_float_equal(y[i], eval[i] / 0.7f, 1e-5 * (1 + fabsf(eval[i])));
    }
    double frac = (double)zeros / (B * W);
    assert_true(frac > 0.28 && frac < 0.32);
    /* The gradient flows only through kept units: db = column sums of dout * mask. */
    float *dout = malloc(sizeof(float) * B * W);
    for (int i = 0; i < B * W; i++)
        dout[i] = 1.0f;
    pst_model_backward(m, dout, B, false);
    const float *db = pst_model_grads(m) + 3 * W;
    for (int j = 0; j < W; j++) {
        double want = 0;
        for (int r = 0; r < B; r++)
            want += (y[r * W + j] != 0.0f) / 0.7;
        assert_float_equal(db[j], want, 1e-3);
    }
    free(dout);
    free(eval);
    pst_model_destroy(&m);
}

/* ---- initialisation ---- */

static void weight_stats(const float *w, size_t n, double *mean, double *std, float *max_abs)
{
    double s = 0, s2 = 0;
    *max_abs = 0;
    for (size_t i = 0; i < n; i++) {
        s += w[i];
        s2 += (double)w[i] * w[i];
        *max_abs = fabsf(w[i]) > *max_abs ? fabsf(w[i]) : *max_abs;
    }
    *mean = s / n;
    *std = sqrt(s2 / n - *mean * *mean);
}

static void init_statistics(void **state)
{
    /* Layer 0 is followed by ReLU: He-normal. Layer 2 is followed by tanh: Glorot-uniform. */
    pst_layer_spec_t spec[] = {DENSE(512), ACT(PST_LAYER_RELU), DENSE(512), ACT(PST_LAYER_TANH)};
    pst_model_t *m = new_model(512, spec, 4, 1);
    pst_rng_t rng;
    pst_rng_init(&rng, 1234);
    float *p = pst_model_params(m);
    for (size_t i = 0; i < pst_model_n_params(m); i++)
        p[i] = 7.0f;
    pst_model_init_params(m, &rng);
    double mean, std;
    float max_abs;
    const pst_tensor_info_t *he = pst_model_tensor(m, 0), *glorot = pst_model_tensor(m, 2);
    weight_stats(p + he->offset, he->size, &mean, &std, &max_abs);
    double he_std = sqrt(2.0 / 512);
    assert_true(fabs(std - he_std) < 0.02 * he_std);
    assert_true(fabs(mean) < 0.01 * he_std);
    assert_true(max_abs > 4 * he_std); /* normal tails, not a uniform */
    weight_stats(p + glorot->offset, glorot->size, &mean, &std, &max_abs);
    double limit = sqrt(6.0 / 1024), glorot_std = limit / sqrt(3.0);
    assert_true(fabs(std - glorot_std) < 0.02 * glorot_std);
    assert_true(fabs(mean) < 0.01 * glorot_std);
    assert_true(max_abs <= limit && max_abs > 0.999 * limit);
    for (int t = 1; t < 4; t += 2) {
        const pst_tensor_info_t *b = pst_model_tensor(m, t);
        for (size_t i = 0; i < b->size; i++)
            assert_true(p[b->offset + i] == 0.0f);
    }
    pst_model_destroy(&m);
}

/* Each named initialisation: a 400 -> 300 dense layer's weights have the std of its normal law
 * (within 3%) or fill the uniform law's [-limit, limit] (max within 1% of the limit). */
static void init_kinds_follow_their_laws(void **state)
{
    (void)state;
    const struct {
        pst_init_kind_t kind;
        double scale; /* std for normal, limit for uniform */
        bool normal;
    } laws[] = {
        {PST_INIT_HE_NORMAL, sqrt(2.0 / 400), true},
        {PST_INIT_HE_UNIFORM, sqrt(6.0 / 400), false},
        {PST_INIT_GLOROT_NORMAL, sqrt(2.0 / 700), true},
        {PST_INIT_GLOROT_UNIFORM, sqrt(6.0 / 700), false},
        {PST_INIT_LECUN_NORMAL, sqrt(1.0 / 400), true},
        {PST_INIT_LECUN_UNIFORM, sqrt(3.0 / 400), false},
    };
    for (int i = 0; i < N_OF(laws); i++) {
        pst_layer_spec_t spec[] = {{.kind = PST_LAYER_DENSE, .units = 300, .init = laws[i].kind}};
        pst_model_t *m = new_model(400, spec, 1, 1);
        pst_rng_t rng;
        pst_rng_init(&rng, 90 + (uint64_t)i);
        pst_model_init_params(m, &rng);
        const pst_tensor_info_t *w = pst_model_tensor(m, 0);
        double mean, std;
        float max_abs;
        weight_stats(pst_model_params(m) + w->offset, w->size, &mean, &std, &max_abs);
        if (laws[i].normal) {
            assert_true(fabs(std / laws[i].scale - 1.0) < 0.03);
        } else {
            assert_true(max_abs <= laws[i].scale);
            assert_true(max_abs > 0.99 * laws[i].scale);
            assert_true(fabs(std / (laws[i].scale / sqrt(3.0)) - 1.0) < 0.03);
        }
        pst_init_kind_t parsed;
        assert_int_equal(pst_init_kind_parse(pst_init_kind_name(laws[i].kind), &parsed), PST_OK);
        assert_int_equal(parsed, laws[i].kind);
        pst_model_destroy(&m);
    }
    pst_init_kind_t parsed;
    assert_int_equal(pst_init_kind_parse("identity", &parsed), PST_EINVAL);
}

static void init_is_deterministic_per_seed(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(20), ACT(PST_LAYER_RELU), DENSE(7), ACT(PST_LAYER_SOFTMAX)};
    pst_model_t *a = new_model(9, spec, 4, 2), *b = new_model(9, spec, 4, 64);
    pst_rng_t ra, rb;
    pst_rng_init(&ra, 77);
    pst_rng_init(&rb, 77);
    pst_model_init_params(a, &ra);
    pst_model_init_params(b, &rb);
    size_t bytes = pst_model_n_params(a) * sizeof(float);
    assert_memory_equal(pst_model_params(a), pst_model_params(b), bytes);
    pst_rng_init(&rb, 78);
    pst_model_init_params(b, &rb);
    assert_memory_not_equal(pst_model_params(a), pst_model_params(b), bytes);
    pst_model_destroy(&a);
    pst_model_destroy(&b);
}

/* ---- finite-difference gradient checks ---- */

/* What is differentiated: either sum(out * proj) or a loss (plus the L1/L2 penalty). */
typedef struct objective {
    const float *proj; // (batch, n_out) or NULL for a loss
    pst_loss_kind_t loss;
    const float *y; // (batch)
    float huber_delta;
    bool fused;
    float l1, l2;
    bool training; /* dropout on, mask drawn from a generator re-seeded at every forward */
    uint64_t mask_seed;
} objective_t;

static const float *run_forward(pst_model_t *m, const float *x, int batch, const objective_t *o)
{
    pst_rng_t rng;
    pst_rng_init(&rng, o->mask_seed);
    return pst_model_forward(m, x, batch, o->training, &rng);
}

/* Objective value at the current parameters; dout (if non-NULL) receives d/d(out or logits). */
static double objective_value(pst_model_t *m, const float *x, int batch, const objective_t *o,
                              float *dout)
{
    const float *out = run_forward(m, x, batch, o);
    int n_out = pst_model_n_outputs(m);
    double value = 0;
    if (o->proj != NULL) {
        for (int i = 0; i < batch * n_out; i++)
            value += (double)out[i] * o->proj[i];
        if (dout != NULL)
            memcpy(dout, o->proj, sizeof(float) * batch * n_out);
    } else {
        value = pst_loss_eval(o->loss, out, o->y, batch, n_out, o->huber_delta, o->fused, dout);
    }
    return value + pst_loss_penalty(m, o->l1, o->l2, false);
}

/* Analytic gradient: backward from the objective's dout, plus the penalty. Caller frees. */
static float *analytic_gradient(pst_model_t *m, const float *x, int batch, const objective_t *o)
{
    size_t n = pst_model_n_params(m);
    float *dout = malloc(sizeof(float) * batch * pst_model_n_outputs(m));
    float *analytic = malloc(sizeof(float) * n);
    objective_value(m, x, batch, o, dout);
    pst_model_backward(m, dout, batch, o->fused);
    pst_loss_penalty(m, o->l1, o->l2, true);
    memcpy(analytic, pst_model_grads(m), sizeof(float) * n);
    free(dout);
    return analytic;
}

/* Central differences of o for every parameter against analytic. Returns the worst violation of
 * |a - n| <= 1e-2 max(|a|, |n|) + 1e-4, as a multiple of that bound (<= 1 passes; a NaN anywhere
 * counts as infinitely wrong). */
static double worst_violation(pst_model_t *m, const float *x, int batch, const objective_t *o,
                              const float *analytic)
{
    const float eps = 1e-3f;
    float *p = pst_model_params(m);
    double worst = 0;
    for (size_t i = 0; i < pst_model_n_params(m); i++) {
        float saved = p[i];
        p[i] = saved + eps;
        double plus = objective_value(m, x, batch, o, NULL);
        p[i] = saved - eps;
        double minus = objective_value(m, x, batch, o, NULL);
        p[i] = saved;
        double numeric = (plus - minus) / (2.0 * eps), a = analytic[i];
        double bound = 1e-2 * fmax(fabs(a), fabs(numeric)) + 1e-4;
        double violation = fabs(a - numeric) / bound;
        worst = isfinite(violation) ? fmax(worst, violation) : INFINITY;
    }
    return worst;
}

static double gradient_check(pst_model_t *m, const float *x, int batch, const objective_t *o)
{
    float *analytic = analytic_gradient(m, x, batch, o);
    double worst = worst_violation(m, x, batch, o, analytic);
    free(analytic);
    return worst;
}

static void check_model_gradient(const pst_layer_spec_t *spec, int n_layers, int n_inputs,
                                 int batch, objective_t *o, uint64_t seed)
{
    pst_model_t *m = random_model(n_inputs, spec, n_layers, batch, seed);
    pst_rng_t rng;
    pst_rng_init(&rng, seed + 100);
    int n_out = pst_model_n_outputs(m);
    float *x = malloc(sizeof(float) * batch * n_inputs);
    float *proj = malloc(sizeof(float) * batch * n_out);
    fill_uniform(x, (size_t)batch * n_inputs, -1.5f, 1.5f, &rng);
    fill_uniform(proj, (size_t)batch * n_out, -1.0f, 1.0f, &rng);
    objective_t objective = *o;
    if (o->y == NULL)
        objective.proj = proj;
    double worst = gradient_check(m, x, batch, &objective);
    assert_true(isfinite(objective_value(m, x, batch, &objective, NULL)));
    if (!(worst <= 1.0))
        fail_msg("gradient check failed: worst error %.3f x tolerance", worst);
    free(proj);
    free(x);
    pst_model_destroy(&m);
}

/* pst_model_backward_input: d(objective)/d(x) against central differences in x, with dropout
 * in front of the first dense layer (its mask must be applied on the way down). */
static void gradcheck_input_gradient(void **state)
{
    enum { BATCH = 4, IN = 5 };
    pst_layer_spec_t spec[] = {DROPOUT(0.3f), DENSE(6), ACT(PST_LAYER_TANH), DENSE(2)};
    pst_model_t *m = random_model(IN, spec, N_OF(spec), BATCH, 61);
    pst_rng_t rng;
    pst_rng_init(&rng, 62);
    float x[BATCH * IN], proj[BATCH * 2], dx[BATCH * IN];
    fill_uniform(x, BATCH * IN, -1.5f, 1.5f, &rng);
    fill_uniform(proj, BATCH * 2, -1.0f, 1.0f, &rng);
    objective_t o = {.proj = proj, .training = true, .mask_seed = 63};
    objective_value(m, x, BATCH, &o, NULL);
    memcpy(dx, pst_model_backward_input(m, proj, BATCH, false), sizeof dx);
    int zeroed = 0;
    for (int i = 0; i < BATCH * IN; i++) {
        float saved = x[i];
        x[i] = saved + 1e-3f;
        double plus = objective_value(m, x, BATCH, &o, NULL);
        x[i] = saved - 1e-3f;
        double minus = objective_value(m, x, BATCH, &o, NULL);
        x[i] = saved;
        double numeric = (plus - minus) / 2e-3;
        assert_true(fabs(dx[i] - numeric) <= 1e-2 * fmax(fabs(dx[i]), fabs(numeric)) + 1e-4);
        zeroed += dx[i] == 0.0f;
    }
    assert_true(zeroed > 0 && zeroed < BATCH * IN); /* the mask dropped some inputs, not all */
    pst_model_destroy(&m);
}

static void gradcheck_hidden_activations(void **state)
{
    pst_layer_kind_t kinds[] = {PST_LAYER_TANH, PST_LAYER_SIGMOID, PST_LAYER_RELU};
    for (int k = 0; k < 3; k++) {
        pst_layer_spec_t spec[] = {DENSE(6), ACT(kinds[k]), DENSE(5), ACT(kinds[k]), DENSE(3)};
        objective_t o = {0};
        check_model_gradient(spec, N_OF(spec), 4, 5, &o, 20 + (uint64_t)k);
    }
}

static void gradcheck_softmax_layer(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(6), ACT(PST_LAYER_TANH), DENSE(4), ACT(PST_LAYER_SOFTMAX)};
    objective_t o = {0};
    check_model_gradient(spec, N_OF(spec), 3, 4, &o, 31);
}

static void gradcheck_dropout_fixed_mask(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(12), ACT(PST_LAYER_TANH), DROPOUT(0.4f), DENSE(3)};
    objective_t o = {.training = true, .mask_seed = 99};
    check_model_gradient(spec, N_OF(spec), 4, 5, &o, 41);
    /* Dropout in front of the first dense layer, and relu + dropout on the way. */
    pst_layer_spec_t front[] = {DROPOUT(0.25f), DENSE(8), ACT(PST_LAYER_RELU), DROPOUT(0.5f),
                                DENSE(2)};
    check_model_gradient(front, N_OF(front), 5, 6, &o, 42);
}

static const float CLASS_LABELS[6] = {0, 2, 1, 3, 2, 0};

static void gradcheck_softmax_cross_entropy(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(7), ACT(PST_LAYER_TANH), DENSE(4), ACT(PST_LAYER_SOFTMAX)};
    for (int fused = 0; fused < 2; fused++) {
        objective_t o = {.loss = PST_LOSS_SOFTMAX_CE, .y = CLASS_LABELS, .fused = fused};
        check_model_gradient(spec, N_OF(spec), 3, 6, &o, 51);
    }
}

static const float BINARY_LABELS[6] = {1, 0, 0, 1, 1, 0};

static void gradcheck_binary_cross_entropy(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(5), ACT(PST_LAYER_RELU), DENSE(1), ACT(PST_LAYER_SIGMOID)};
    for (int fused = 0; fused < 2; fused++) {
        objective_t o = {.loss = PST_LOSS_BCE, .y = BINARY_LABELS, .fused = fused};
        check_model_gradient(spec, N_OF(spec), 3, 6, &o, 61);
    }
}

static const float TARGETS[6] = {0.5f, -1.2f, 2.0f, 0.1f, -0.4f, 1.1f};

static void gradcheck_regression_losses(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(6), ACT(PST_LAYER_TANH), DENSE(1)};
    pst_loss_kind_t kinds[] = {PST_LOSS_MSE, PST_LOSS_MAE, PST_LOSS_HUBER};
    for (int k = 0; k < 3; k++) {
        /* delta 0.5 puts some residuals in the quadratic zone and some in the linear one. */
        objective_t o = {.loss = kinds[k], .y = TARGETS, .huber_delta = 0.5f};
        check_model_gradient(spec, N_OF(spec), 4, 6, &o, 71 + (uint64_t)k);
    }
}

static void gradcheck_penalty(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(5), ACT(PST_LAYER_SIGMOID), DENSE(4), ACT(PST_LAYER_SOFTMAX)};
    objective_t o = {
        .loss = PST_LOSS_SOFTMAX_CE, .y = CLASS_LABELS, .fused = true, .l1 = 0.03f, .l2 = 0.2f};
    check_model_gradient(spec, N_OF(spec), 4, 6, &o, 81);
    o.l1 = 0.0f;
    check_model_gradient(spec, N_OF(spec), 4, 6, &o, 82);
    o.l1 = 0.05f, o.l2 = 0.0f;
    check_model_gradient(spec, N_OF(spec), 4, 6, &o, 83);
}

/* The check itself must catch a wrong gradient: dout scaled by 1.05, or the softmax Jacobian
 * skipped (fused claimed while dout is not p - y). */
static void gradcheck_detects_wrong_gradients(void **state)
{
    pst_layer_spec_t spec[] = {DENSE(5), ACT(PST_LAYER_TANH), DENSE(3), ACT(PST_LAYER_SOFTMAX)};
    pst_model_t *m = random_model(4, spec, N_OF(spec), 6, 91);
    pst_rng_t rng;
    pst_rng_init(&rng, 92);
    float x[6 * 4], proj[6 * 3], scaled[6 * 3];
    fill_uniform(x, 24, -1, 1, &rng);
    fill_uniform(proj, 18, -1, 1, &rng);
    for (int i = 0; i < 18; i++)
        scaled[i] = 1.05f * proj[i];
    objective_t right = {.proj = proj}, wrong_scale = {.proj = scaled},
                wrong_fused = {.proj = proj, .fused = true};
    assert_true(gradient_check(m, x, 6, &right) <= 1.0);
    float *analytic = analytic_gradient(m, x, 6, &wrong_scale);
    assert_true(worst_violation(m, x, 6, &right, analytic) > 1.0);
    free(analytic);
    analytic = analytic_gradient(m, x, 6, &wrong_fused);
    assert_true(worst_violation(m, x, 6, &right, analytic) > 1.0);
    free(analytic);
    pst_model_destroy(&m);
}

/* ---- end to end: a small network learns iris ---- */

static int read_iris(float *x, float *y, int max_rows)
{
    FILE *f = fopen(PST_TEST_DATA "/iris.csv", "r");
    assert_non_null(f);
    char header[256];
    assert_non_null(fgets(header, sizeof(header), f));
    int n = 0;
    while (n < max_rows && fscanf(f, "%f,%f,%f,%f,%f", &x[4 * n], &x[4 * n + 1], &x[4 * n + 2],
                                  &x[4 * n + 3], &y[n]) == 5)
        n++;
    fclose(f);
    return n;
}

static void standardise(float *x, int rows, int cols)
{
    for (int c = 0; c < cols; c++) {
        double s = 0, s2 = 0;
        for (int r = 0; r < rows; r++) {
            s += x[r * cols + c];
            s2 += (double)x[r * cols + c] * x[r * cols + c];
        }
        double mean = s / rows, std = sqrt(s2 / rows - mean * mean);
        for (int r = 0; r < rows; r++)
            x[r * cols + c] = (float)((x[r * cols + c] - mean) / std);
    }
}

static double accuracy(pst_model_t *m, const float *x, const float *y, int n)
{
    const float *p = pst_model_forward(m, x, n, false, NULL);
    int correct = 0;
    for (int r = 0; r < n; r++) {
        int best = 0;
        for (int c = 1; c < 3; c++)
            best = p[r * 3 + c] > p[r * 3 + best] ? c : best;
        correct += best == (int)y[r];
    }
    return (double)correct / n;
}

static void mlp_learns_iris(void **state)
{
    enum { N = 150, BATCH = 16, EPOCHS = 60 };
    float x[N * 4], y[N], xb[BATCH * 4], yb[BATCH], dout[BATCH * 3];
    assert_int_equal(read_iris(x, y, N), N);
    standardise(x, N, 4);
    pst_layer_spec_t spec[] = {DENSE(16), ACT(PST_LAYER_RELU), DROPOUT(0.1f), DENSE(3),
                               ACT(PST_LAYER_SOFTMAX)};
    pst_model_t *m = new_model(4, spec, N_OF(spec), N);
    pst_rng_t rng;
    pst_rng_init(&rng, 2024);
    pst_model_init_params(m, &rng);
    assert_true(accuracy(m, x, y, N) < 0.8);
    size_t order[N];
    for (size_t i = 0; i < N; i++)
        order[i] = i;
    float *p = pst_model_params(m), *g = pst_model_grads(m);
    double first_loss = 0, last_loss = 0;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        pst_rng_shuffle(&rng, order, N);
        double epoch_loss = 0;
        for (int start = 0; start < N; start += BATCH) {
            int n = N - start < BATCH ? N - start : BATCH;
            for (int r = 0; r < n; r++) {
                memcpy(xb + 4 * r, x + 4 * order[start + r], 4 * sizeof(float));
                yb[r] = y[order[start + r]];
            }
            const float *out = pst_model_forward(m, xb, n, true, &rng);
            epoch_loss += n * pst_loss_eval(PST_LOSS_SOFTMAX_CE, out, yb, n, 3, 0, true, dout);
            pst_model_backward(m, dout, n, true);
            for (size_t i = 0; i < pst_model_n_params(m); i++)
                p[i] -= 0.1f * g[i];
        }
        if (epoch == 0)
            first_loss = epoch_loss / N;
        last_loss = epoch_loss / N;
    }
    assert_true(last_loss < 0.5 * first_loss);
    double acc = accuracy(m, x, y, N);
    if (acc < 0.9)
        fail_msg("training accuracy %.3f < 0.9", acc);
    pst_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layer_names_round_trip),
        cmocka_unit_test(spec_validation_errors),
        cmocka_unit_test(tensor_table_layout),
        cmocka_unit_test(forward_rejects_bad_batch),
        cmocka_unit_test(dense_matches_naive_loops),
        cmocka_unit_test(backward_overwrites_and_input_is_copied),
        cmocka_unit_test(activations_forward_values),
        cmocka_unit_test(dropout_masks_and_scales),
        cmocka_unit_test(init_statistics),
        cmocka_unit_test(init_is_deterministic_per_seed),
        cmocka_unit_test(init_kinds_follow_their_laws),
        cmocka_unit_test(gradcheck_hidden_activations),
        cmocka_unit_test(gradcheck_softmax_layer),
        cmocka_unit_test(gradcheck_dropout_fixed_mask),
        cmocka_unit_test(gradcheck_input_gradient),
        cmocka_unit_test(gradcheck_softmax_cross_entropy),
        cmocka_unit_test(gradcheck_binary_cross_entropy),
        cmocka_unit_test(gradcheck_regression_losses),
        cmocka_unit_test(gradcheck_penalty),
        cmocka_unit_test(gradcheck_detects_wrong_gradients),
        cmocka_unit_test(mlp_learns_iris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
