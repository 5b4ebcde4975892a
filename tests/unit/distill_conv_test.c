/* Tests for worker/train/distill with a convolutional teacher: a CNN model file (conv2d, relu,
 * maxpool, flatten, dense, softmax on flat 4x4 image rows, as IDX images reach it) gives the
 * student the probabilities the model gives on the raw rows, whatever the student's own pixel
 * scaling and standardisation, and its logits as scores. */
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
    const float *scores = pst_distill_teacher_scores(d, student, N_ROWS);
    for (int i = 0; i < N_ROWS; i++)
        for (int c = 1; c < K; c++)
            assert_true(fabs((scores[i * K + c] - scores[i * K]) -
                             (log(want[i * K + c]) - log(want[i * K]))) < 1e-3);
    pst_distill_destroy(&d);
    pst_dataset_destroy(&raw);
    pst_preproc_destroy(&pp);
    free(params);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_teacher_matches_the_model_on_raw_rows),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
