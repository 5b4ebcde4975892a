/* Tests for worker/train/distill with a convolutional teacher: a CNN model file (conv2d, relu,
 * maxpool, flatten, dense, softmax on flat 4x4 image rows, as IDX images reach it) gives the
 * student the probabilities the model gives on the raw rows, whatever the student's own pixel
 * scaling and standardisation, and its logits as scores; the teacher runs once per distinct row
 * (distill_cache): a batch seen before costs no teacher run and gives the same loss and gradient
 * bit for bit, a batch half new runs it on the new half only; the cache's own contract (a row
 * found only by its content, a full cache keeps no more). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "scratch.h"
#include "worker/model/ensemble.h"
#include "worker/train/distill.h"
#include "worker/train/distill_cache.h"

#define SIDE 4
#define N_IN (SIDE * SIDE)
#define K 3
#define N_ROWS 5
#define N_LAYERS 7

static pst_layer_spec_t layers[N_LAYERS] = {
    {.kind = PST_LAYER_INPUT, .channels = 1, .height = SIDE, .width = SIDE},
    {.kind = PST_LAYER_CONV2D, .channels = 2, .kernel = 3, .pad = 1},
    {.kind = PST_LAYER_RELU},
    {.kind = PST_LAYER_MAXPOOL2D, .kernel = 2},
    {.kind = PST_LAYER_FLATTEN},
    {.kind = PST_LAYER_DENSE, .units = K},
    {.kind = PST_LAYER_SOFTMAX},
};

static void conv_teacher_matches_the_model_on_raw_rows(void **state)
{
    (void)state;
    pst_err_t err = {0};
    pst_model_t *shape = pst_model_new(N_IN, layers, N_LAYERS, 1, &err);
    if (shape == NULL)
        fail_msg("%s", err.msg);
    size_t n_params = pst_model_n_params(shape);
    pst_model_destroy(&shape);
    assert_int_equal(n_params, 2 * 9 + 2 + K * 2 * 2 * 2 + K);
    float *params = malloc(n_params * sizeof *params);
    for (size_t i = 0; i < n_params; i++)
        params[i] = 0.3f * (float)((i * 7) % 5) - 0.5f * (float)(i % 3);
    float shift[N_IN], scale[N_IN], fill[N_IN] = {0};
    for (int j = 0; j < N_IN; j++) {
        shift[j] = 0.02f * (float)j;
        scale[j] = 1.0f + 0.1f * (float)(j % 4);
    }
    pst_modelfile_t mf = {.n_inputs = N_IN,
                          .n_layers = N_LAYERS,
                          .layers = layers,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = K,
                          .params = params,
                          .n_params = n_params,
                          .shift = shift,
                          .scale = scale,
                          .fill = fill,
                          .pixel_scale = 1.0f / 255.0f};
    char path[256];
    assert_int_equal(pst_modelfile_save(&mf, pst_scratch_path(path, "cnn.pst"), &err), PST_OK);

    /* raw pixels, and the same rows as a student with its own scaling sees them */
    pst_dataset_t *raw = pst_dataset_new(N_ROWS, N_IN, PST_TASK_CLASSIFICATION);
    pst_preproc_t *pp = pst_preproc_new(N_IN);
    pp->pixel_scale = 1.0f / 255.0f;
    float student[N_ROWS * N_IN], want[N_ROWS * K];
    for (int j = 0; j < N_IN; j++) {
        pp->shift[j] = 0.4f - 0.01f * (float)j;
        pp->scale[j] = 2.5f;
    }
    for (int i = 0; i < N_ROWS * N_IN; i++) {
        raw->x[i] = (float)((i * 97) % 256);
        student[i] = (raw->x[i] * pp->pixel_scale - pp->shift[i % N_IN]) * pp->scale[i % N_IN];
    }
    pst_ensemble_t one = {.method = PST_ENSEMBLE_VOTING, .n_members = 1, .members = &mf};
    assert_int_equal(pst_ensemble_apply(&one, raw, want, &err), PST_OK);

    pst_distill_student_t s = {N_IN, K, pp};
    pst_distill_t *d = pst_distill_new(path, &s, 4.0, 0.9, 8, &err);
    if (d == NULL)
        fail_msg("%s", err.msg);
    const float *got = pst_distill_teacher_probs(d, student, N_ROWS);
    double spread = 0;
    for (int i = 0; i < N_ROWS * K; i++) {
        assert_true(fabsf(got[i] - want[i]) < 1e-5f);
        spread = fmax(spread, fabs(got[i] - got[i % K]));
    }
    assert_true(spread > 1e-2); /* the rows' probabilities differ: the image matters */
    /* a single softmax network: the scores are its logits, log p up to a constant per row */
    float scores[N_ROWS * K];
    memcpy(scores, pst_distill_teacher_scores(d, student, N_ROWS), sizeof scores);
    for (int i = 0; i < N_ROWS; i++)
        for (int c = 1; c < K; c++)
            assert_true(fabs((scores[i * K + c] - scores[i * K]) -
                             (log(want[i * K + c]) - log(want[i * K]))) < 1e-3);
    /* the loss through the cache: the teacher once per distinct row */
    float y[N_ROWS], logits[N_ROWS * K], g1[N_ROWS * K], g2[N_ROWS * K], g0[N_ROWS * K];
    for (int i = 0; i < N_ROWS * K; i++)
        logits[i] = 0.1f * (float)(i % 7) - 0.3f;
    for (int i = 0; i < N_ROWS; i++)
        y[i] = (float)(i % K);
    size_t ran = pst_distill_teacher_rows(d);
    double l1 = pst_distill_loss(d, student, logits, y, N_ROWS, g1);
    assert_int_equal(pst_distill_teacher_rows(d), ran + N_ROWS);
    double l2 = pst_distill_loss(d, student, logits, y, N_ROWS, g2);
    assert_int_equal(pst_distill_teacher_rows(d), ran + N_ROWS); /* all cached */
    double l0 = pst_distill_loss_scores(4.0, 0.9, scores, logits, y, N_ROWS, K, g0);
    assert_memory_equal(&l1, &l0, sizeof l0);
    assert_memory_equal(&l2, &l0, sizeof l0);
    assert_memory_equal(g1, g0, sizeof g0);
    assert_memory_equal(g2, g0, sizeof g0);
    /* rows 0..1 seen, 2..3 new (row 2 changed by one pixel): the teacher runs on two rows */
    float mixed[4 * N_IN];
    memcpy(mixed, student, sizeof mixed);
    mixed[2 * N_IN + 5] += 0.5f;
    for (int j = 0; j < N_IN; j++)
        mixed[3 * N_IN + j] = -student[j];
    const float *cached = pst_distill_cached_scores(d, mixed, 4);
    assert_int_equal(pst_distill_teacher_rows(d), ran + N_ROWS + 2);
    float want_mixed[4 * K];
    memcpy(want_mixed, cached, sizeof want_mixed);
    const float *fresh = pst_distill_teacher_scores(d, mixed, 4);
    assert_memory_equal(want_mixed, fresh, sizeof want_mixed);
    assert_true(fabsf(want_mixed[2 * K] - scores[2 * K]) > 1e-6f ||
                fabsf(want_mixed[2 * K + 1] - scores[2 * K + 1]) > 1e-6f);
    pst_distill_destroy(&d);
    pst_dataset_destroy(&raw);
    pst_preproc_destroy(&pp);
    free(params);
}

static void cache_finds_rows_by_content_and_stops_when_full(void **state)
{
    (void)state;
    pst_distill_cache_t *c = pst_distill_cache_new(N_IN, K, 3);
    assert_non_null(c);
    float rows[4][N_IN], scores[4][K];
    for (int r = 0; r < 4; r++) {
        for (int j = 0; j < N_IN; j++)
            rows[r][j] = (float)(r * N_IN + j);
        for (int k = 0; k < K; k++)
            scores[r][k] = (float)(10 * r + k);
    }
    assert_null(pst_distill_cache_find(c, rows[0]));
    for (int r = 0; r < 3; r++)
        assert_true(pst_distill_cache_put(c, rows[r], scores[r]));
    assert_false(pst_distill_cache_put(c, rows[3], scores[3])); /* full at 3 */
    assert_false(pst_distill_cache_put(c, rows[1], scores[0])); /* kept already */
    assert_int_equal(pst_distill_cache_size(c), 3);
    for (int r = 0; r < 3; r++) {
        float copy[N_IN];
        memcpy(copy, rows[r], sizeof copy); /* found by content, not by address */
        const float *got = pst_distill_cache_find(c, copy);
        assert_non_null(got);
        assert_memory_equal(got, scores[r], sizeof scores[r]);
    }
    assert_null(pst_distill_cache_find(c, rows[3]));
    rows[0][N_IN - 1] = 15.5f; /* one value differs from the kept row's */
    assert_null(pst_distill_cache_find(c, rows[0]));
    pst_distill_cache_destroy(&c);
    pst_distill_cache_destroy(&c); /* safe twice */
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_teacher_matches_the_model_on_raw_rows),
        cmocka_unit_test(cache_finds_rows_by_content_and_stops_when_full),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
