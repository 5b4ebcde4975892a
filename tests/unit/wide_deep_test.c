/* Tests for worker/wide_deep: gradients against central differences, pooling, field rules,
 * chunked prediction, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/eval/metrics.h"
#include "worker/model/wide_deep.h"
#include "worker/train/wide_deep_local.h"

enum { SHIFT = 4, DIM = 3, N_FIELDS = 3 };

#define KEY(field, bucket) (((uint64_t)(field) << SHIFT) | (bucket))

/* Four rows: two features of field 1 in row 0, a missing field in row 1, a key twice in row 2,
 * values other than 1 (field 0 is the raw numeric field). */
static const size_t ROW_PTR[] = {0, 4, 6, 8, 9};
static const uint64_t COLS[] = {KEY(0, 1), KEY(1, 3), KEY(1, 7), KEY(2, 5), KEY(0, 1),
                                KEY(2, 5), KEY(1, 3), KEY(1, 3), KEY(2, 9)};
static const float VALS[] = {2.0f, 1.0f, 1.0f, 1.0f, -1.5f, 1.0f, 1.0f, 0.5f, 1.0f};
static const float LABELS[] = {1, 0, 1, 0};

typedef struct fixture {
    pst_wide_deep_t *m;
    pst_sparse_batch_t b;
    uint64_t keys[9];
    uint32_t slot[9];
    size_t n_keys;
    float *rows, *grad; // (n_keys, 1 + DIM)
    bool dropout;
} fixture_t;

static void fill_uniform(float *v, size_t n, float scale, pst_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((2.0 * pst_rng_uniform(rng) - 1.0) * scale);
}

static void fixture_init(fixture_t *fx, pst_wd_pooling_t pooling, uint32_t shift,
                         const uint64_t *cols, bool dropout)
{
    memset(fx, 0, sizeof *fx);
    pst_layer_spec_t hidden[] = {{.kind = PST_LAYER_DENSE, .units = 5},
                                 {.kind = PST_LAYER_TANH},
                                 {.kind = PST_LAYER_DROPOUT, .rate = 0.3f}};
    pst_wide_deep_spec_t spec = {.n_fields = N_FIELDS,
                                 .field_shift = shift,
                                 .n_raw = 1,
                                 .dim = DIM,
                                 .pooling = pooling,
                                 .hidden = hidden,
                                 .n_hidden = dropout ? 3 : 2,
                                 .max_batch = 8};
    pst_err_t err;
    fx->m = pst_wide_deep_new(&spec, &err);
    assert_non_null(fx->m);
    assert_int_equal(pst_wide_deep_row_width(fx->m), 1 + DIM);
    assert_int_equal(pst_wide_deep_input_width(fx->m), N_FIELDS * DIM + 1);
    pst_wide_deep_init_dense(fx->m, 5);
    fx->b = (pst_sparse_batch_t){
        .n_rows = 4, .row_ptr = ROW_PTR, .col64 = cols, .val = VALS, .y = LABELS};
    assert_int_equal(pst_sparse_batch_keys(&fx->b, fx->keys, &fx->n_keys, fx->slot, &err), PST_OK);
    assert_int_equal(fx->n_keys, 5);
    size_t n = fx->n_keys * (1 + DIM);
    fx->rows = malloc(n * sizeof(float));
    fx->grad = malloc(n * sizeof(float));
    pst_rng_t rng;
    pst_rng_init(&rng, 9);
    fill_uniform(fx->rows, n, 0.5f, &rng);
    fx->dropout = dropout;
}

static void fixture_fini(fixture_t *fx)
{
    pst_wide_deep_destroy(&fx->m);
    free(fx->rows);
    free(fx->grad);
}

/* The mean log-loss at the current rows and MLP weights; with dropout, the same mask every time.
 * grad_rows (may be NULL: scratch) receives the analytic gradient. */
static double loss_at(fixture_t *fx, float *grad_rows)
{
    pst_rng_t mask;
    pst_rng_init(&mask, 77);
    float *scratch = grad_rows ? grad_rows : malloc(fx->n_keys * (1 + DIM) * sizeof(float));
    double loss = NAN;
    pst_err_t err;
    int rc = pst_wide_deep_step(fx->m, &fx->b, fx->slot, fx->rows, fx->n_keys,
                                fx->dropout ? &mask : NULL, scratch, &loss, &err);
    assert_int_equal(rc, PST_OK);
    if (scratch != grad_rows)
        free(scratch);
    return loss;
}

/* |analytic - numeric| <= 1e-2 max(|a|, |n|) + 1e-4 for the parameter at p. */
static void check_one(fixture_t *fx, float *p, float analytic, const char *what, size_t index)
{
    const float eps = 1e-3f;
    float saved = *p;
    *p = saved + eps;
    double plus = loss_at(fx, NULL);
    *p = saved - eps;
    double minus = loss_at(fx, NULL);
    *p = saved;
    double numeric = (plus - minus) / (2.0 * eps);
    double bound = 1e-2 * fmax(fabs(analytic), fabs(numeric)) + 1e-4;
    if (!(fabs(analytic - numeric) <= bound))
        fail_msg("%s %zu: analytic %.6g, numeric %.6g", what, index, analytic, numeric);
}

/* Every row value and every MLP parameter; returns how many gradients are non-zero. */
static size_t check_all(fixture_t *fx)
{
    loss_at(fx, fx->grad);
    pst_model_t *mlp = pst_wide_deep_mlp(fx->m);
    size_t n_params = pst_model_n_params(mlp), n_rows = fx->n_keys * (1 + DIM), nonzero = 0;
    float *dense = malloc(n_params * sizeof(float));
    memcpy(dense, pst_model_grads(mlp), n_params * sizeof(float));
    for (size_t i = 0; i < n_rows; i++) {
        check_one(fx, &fx->rows[i], fx->grad[i], "row value", i);
        nonzero += fx->grad[i] != 0.0f;
    }
    for (size_t i = 0; i < n_params; i++) {
        check_one(fx, &pst_model_params(mlp)[i], dense[i], "MLP parameter", i);
        nonzero += dense[i] != 0.0f;
    }
    free(dense);
    return nonzero;
}

static void gradcheck_sum_pooling(void **state)
{
    fixture_t fx;
    fixture_init(&fx, PST_WD_POOL_SUM, SHIFT, COLS, false);
    assert_true(check_all(&fx) > 20);
    fixture_fini(&fx);
}

static void gradcheck_mean_pooling(void **state)
{
    fixture_t fx;
    fixture_init(&fx, PST_WD_POOL_MEAN, SHIFT, COLS, false);
    assert_true(check_all(&fx) > 20);
    fixture_fini(&fx);
}

static void gradcheck_with_dropout(void **state)
{
    fixture_t fx;
    fixture_init(&fx, PST_WD_POOL_SUM, SHIFT, COLS, true);
    assert_true(check_all(&fx) > 10);
    fixture_fini(&fx);
}

/* Field rule key mod F (LIBSVM ids): keys 3k + f are in field f. */
static void gradcheck_modulo_fields(void **state)
{
    uint64_t cols[9];
    for (size_t k = 0; k < 9; k++)
        cols[k] = 3 * (COLS[k] & 15) + (COLS[k] >> SHIFT);
    fixture_t fx;
    fixture_init(&fx, PST_WD_POOL_MEAN, 0, cols, false);
    assert_true(check_all(&fx) > 20);
    fixture_fini(&fx);
}

/* With an all-zero MLP, p is the wide part alone: sigmoid(sum w x), and the embeddings get no
 * gradient while the wide weights get (p - y) x / n. */
static void zero_mlp_is_logistic_regression(void **state)
{
    fixture_t fx;
    fixture_init(&fx, PST_WD_POOL_SUM, SHIFT, COLS, false);
    pst_model_t *mlp = pst_wide_deep_mlp(fx.m);
    memset(pst_model_params(mlp), 0, pst_model_n_params(mlp) * sizeof(float));
    float prob[4], expect_grad[5] = {0};
    pst_err_t err;
    assert_int_equal(pst_wide_deep_predict(fx.m, &fx.b, fx.slot, fx.rows, fx.n_keys, prob, &err),
                     PST_OK);
    for (size_t i = 0; i < 4; i++) {
        double z = 0;
        for (size_t k = ROW_PTR[i]; k < ROW_PTR[i + 1]; k++)
            z += VALS[k] * fx.rows[fx.slot[k] * (1 + DIM)];
        double p = 1.0 / (1.0 + exp(-z));
        assert_float_equal(prob[i], p, 1e-6);
        for (size_t k = ROW_PTR[i]; k < ROW_PTR[i + 1]; k++)
            expect_grad[fx.slot[k]] += (float)((p - LABELS[i]) * VALS[k] / 4.0);
    }
    loss_at(&fx, fx.grad);
    for (size_t s = 0; s < fx.n_keys; s++) {
        assert_float_equal(fx.grad[s * (1 + DIM)], expect_grad[s], 1e-6);
        for (int t = 1; t <= DIM; t++)
            assert_float_equal(fx.grad[s * (1 + DIM) + t], 0.0f, 0.0f);
    }
    fixture_fini(&fx);
}

/* A batch larger than the internal chunk predicts row for row what single rows predict. */
static void chunked_prediction_matches_rows(void **state)
{
    enum { ROWS = 1100 };
    fixture_t fx;
    fixture_init(&fx, PST_WD_POOL_MEAN, SHIFT, COLS, false);
    size_t *row_ptr = malloc((ROWS + 1) * sizeof *row_ptr);
    uint32_t *slot = malloc(ROWS * 4 * sizeof *slot);
    uint64_t *cols = malloc(ROWS * 4 * sizeof *cols);
    float *prob = malloc(ROWS * sizeof *prob);
    row_ptr[0] = 0;
    for (size_t i = 0; i < ROWS; i++) { /* row i is fixture row i mod 4 */
        size_t r = i % 4, at = row_ptr[i];
        for (size_t k = ROW_PTR[r]; k < ROW_PTR[r + 1]; k++, at++) {
            cols[at] = COLS[k];
            slot[at] = fx.slot[k];
        }
        row_ptr[i + 1] = at;
    }
    float *vals = malloc(row_ptr[ROWS] * sizeof *vals);
    for (size_t i = 0, at = 0; i < ROWS; i++)
        for (size_t k = ROW_PTR[i % 4]; k < ROW_PTR[i % 4 + 1]; k++)
            vals[at++] = VALS[k];
    pst_sparse_batch_t big = {.n_rows = ROWS, .row_ptr = row_ptr, .col64 = cols, .val = vals};
    pst_err_t err;
    float four[4];
    assert_int_equal(pst_wide_deep_predict(fx.m, &fx.b, fx.slot, fx.rows, fx.n_keys, four, &err),
                     PST_OK);
    assert_int_equal(pst_wide_deep_predict(fx.m, &big, slot, fx.rows, fx.n_keys, prob, &err),
                     PST_OK);
    for (size_t i = 0; i < ROWS; i++)
        assert_float_equal(prob[i], four[i % 4], 1e-6);
    free(row_ptr);
    free(slot);
    free(cols);
    free(vals);
    free(prob);
    fixture_fini(&fx);
}

static void bad_input_is_refused(void **state)
{
    fixture_t fx;
    fixture_init(&fx, PST_WD_POOL_SUM, SHIFT, COLS, false);
    pst_err_t err;
    double loss;
    uint64_t cols[9];
    memcpy(cols, COLS, sizeof cols);
    cols[3] = KEY(3, 5); /* field 3 of a 3-field model */
    pst_sparse_batch_t b = fx.b;
    b.col64 = cols;
    assert_int_equal(
        pst_wide_deep_step(fx.m, &b, fx.slot, fx.rows, fx.n_keys, NULL, fx.grad, &loss, &err),
        PST_ERANGE);
    assert_non_null(strstr(err.msg, "field 3"));
    assert_int_equal(
        pst_wide_deep_step(fx.m, &fx.b, fx.slot, fx.rows, 2, NULL, fx.grad, &loss, &err),
        PST_ERANGE);
    b = fx.b;
    b.y = NULL;
    assert_int_equal(
        pst_wide_deep_step(fx.m, &b, fx.slot, fx.rows, fx.n_keys, NULL, fx.grad, &loss, &err),
        PST_EINVAL);
    fx.rows[0] = INFINITY;
    assert_int_equal(
        pst_wide_deep_step(fx.m, &fx.b, fx.slot, fx.rows, fx.n_keys, NULL, fx.grad, &loss, &err),
        PST_ENUMERIC);
    fixture_fini(&fx);

    pst_wide_deep_spec_t spec = {.n_fields = 0, .dim = 4, .max_batch = 8};
    assert_null(pst_wide_deep_new(&spec, &err));
    spec.n_fields = 2;
    spec.dim = 0;
    assert_null(pst_wide_deep_new(&spec, &err));
    spec.dim = 4;
    spec.n_raw = 3;
    assert_null(pst_wide_deep_new(&spec, &err));
    assert_non_null(strstr(err.msg, "raw"));
    pst_wd_pooling_t pool;
    assert_int_equal(pst_wd_pooling_parse("mean", &pool), PST_OK);
    assert_int_equal(pool, PST_WD_POOL_MEAN);
    assert_int_equal(pst_wd_pooling_parse("max", &pool), PST_EINVAL);
}

/* Rows of two fields of 8 tokens each whose click odds depend only on the pair: z = 2.5 sA sB
 * with signs sA, sB of the tokens, so each token alone carries no information. */
static void interaction_rows(size_t n, uint64_t seed, size_t *row_ptr, uint64_t *cols, float *y)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    row_ptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = pst_rng_below(&rng, 8), b = pst_rng_below(&rng, 8);
        double z = 2.5 * (a < 4 ? 1 : -1) * (b % 2 ? 1 : -1);
        cols[2 * i] = KEY(0, a);
        cols[2 * i + 1] = KEY(1, b);
        y[i] = pst_rng_uniform(&rng) < 1.0 / (1.0 + exp(-z)) ? 1.0f : 0.0f;
        row_ptr[i + 1] = 2 * i + 2;
    }
}

/* Test AUC of a sparse logistic regression (the wide-only model) trained like wide & deep. */
static double wide_only_auc(const size_t *row_ptr, const uint64_t *cols, const float *y,
                            size_t train, size_t test, size_t batch, float *prob)
{
    pst_sparse_train_opts_t o;
    pst_sparse_train_opts_defaults(&o, PST_SPARSE_LR);
    pst_err_t err;
    pst_sparse_model_t *lr = pst_sparse_model_new(&o, &err);
    assert_non_null(lr);
    for (int epoch = 0; epoch < 3; epoch++) {
        for (size_t start = 0; start < train; start += batch) {
            pst_sparse_batch_t b = {
                .n_rows = batch, .row_ptr = row_ptr + start, .col64 = cols, .y = y + start};
            assert_int_equal(pst_sparse_model_update(lr, &b, NULL, &err), PST_OK);
        }
    }
    pst_sparse_batch_t b = {.n_rows = test, .row_ptr = row_ptr + train, .col64 = cols};
    assert_int_equal(pst_sparse_model_predict(lr, &b, prob, &err), PST_OK);
    pst_sparse_model_destroy(&lr);
    return pst_roc_auc(prob, y + train, test);
}

/* On pure pairwise interactions (Bayes AUC 0.924: p is sigmoid(2.5) or sigmoid(-2.5)), wide &
 * deep trained locally comes near the Bayes AUC and its training loss falls, while a logistic
 * regression on the same keys, trained the same way, cannot beat chance. The Bayes log-loss is
 * 0.269 and the first batch's is about ln 2. */
static void local_training_learns_an_interaction(void **state)
{
    enum { TRAIN = 6000, TEST = 2000, BATCH = 32 };
    size_t *row_ptr = malloc((TRAIN + TEST + 1) * sizeof *row_ptr);
    uint64_t *cols = malloc(2 * (TRAIN + TEST) * sizeof *cols);
    float *y = malloc((TRAIN + TEST) * sizeof *y), *prob = malloc(TEST * sizeof *prob);
    interaction_rows(TRAIN + TEST, 3, row_ptr, cols, y);
    pst_layer_spec_t hidden[] = {{.kind = PST_LAYER_DENSE, .units = 16}, {.kind = PST_LAYER_RELU}};
    pst_wide_deep_spec_t spec = {.n_fields = 2,
                                 .field_shift = SHIFT,
                                 .dim = 4,
                                 .hidden = hidden,
                                 .n_hidden = 2,
                                 .max_batch = BATCH};
    pst_wd_local_opts_t o = {.dense_lr = 0.01f, .dense_seed = 1, .dropout_seed = 2};
    pst_sparse_train_opts_defaults(&o.rows, PST_SPARSE_FM);
    o.rows.spec.n_factors = 4;
    o.rows.optimizer = PST_SPARSE_OPT_ADAGRAD;
    o.rows.adagrad.lr = 0.1f;
    o.rows.init_scale = 0.1f;
    pst_optim_cfg_defaults(&o.dense, PST_OPT_ADAM);
    pst_err_t err;
    pst_wd_local_t *wd = pst_wd_local_new(&spec, &o, &err);
    assert_non_null(wd);
    double epoch_loss[3], first_loss = NAN;
    for (int epoch = 0; epoch < 3; epoch++) {
        double sum = 0.0, loss;
        for (size_t start = 0; start < TRAIN; start += BATCH) {
            pst_sparse_batch_t b = {
                .n_rows = BATCH, .row_ptr = row_ptr + start, .col64 = cols, .y = y + start};
            assert_int_equal(pst_wd_local_update(wd, &b, &loss, &err), PST_OK);
            sum += loss;
            if (epoch == 0 && start == 0)
                first_loss = loss;
        }
        epoch_loss[epoch] = sum / (TRAIN / BATCH);
    }
    pst_sparse_batch_t test = {.n_rows = TEST, .row_ptr = row_ptr + TRAIN, .col64 = cols};
    assert_int_equal(pst_wd_local_predict(wd, &test, prob, &err), PST_OK);
    double auc = pst_roc_auc(prob, y + TRAIN, TEST);
    double lr_auc = wide_only_auc(row_ptr, cols, y, TRAIN, TEST, BATCH, prob);
    print_message("wide & deep AUC %.4f, logistic regression AUC %.4f, loss %.4f -> %.4f\n", auc,
                  lr_auc, first_loss, epoch_loss[2]);
    if (!(auc > 0.90 && lr_auc < 0.6 && epoch_loss[2] < first_loss - 0.3))
        fail_msg("wide & deep AUC %.4f (want > 0.90), logistic regression %.4f (want < 0.6), "
                 "first batch loss %.4f, epoch losses %.4f %.4f %.4f (want a fall of 0.3)",
                 auc, lr_auc, first_loss, epoch_loss[0], epoch_loss[1], epoch_loss[2]);
    pst_wd_local_destroy(&wd);
    free(row_ptr);
    free(cols);
    free(y);
    free(prob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradcheck_sum_pooling),
        cmocka_unit_test(gradcheck_mean_pooling),
        cmocka_unit_test(gradcheck_with_dropout),
        cmocka_unit_test(gradcheck_modulo_fields),
        cmocka_unit_test(zero_mlp_is_logistic_regression),
        cmocka_unit_test(chunked_prediction_matches_rows),
        cmocka_unit_test(bad_input_is_refused),
        cmocka_unit_test(local_training_learns_an_interaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
