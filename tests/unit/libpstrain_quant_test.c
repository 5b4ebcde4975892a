/* Tests that libpstrain runs an int8 model file in int8: its predictions equal, bit for bit,
 * those of the same quantisation attached to the model in memory, and differ from the float
 * model's. Linked against the shared library, as a program using it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rng.h"
#include "pstrain.h"
#include "scratch.h"
#include "worker/model/modelfile.h"
#include "worker/model/quant.h"

#define N_IN 12
#define N_ROWS 40
#define N_OUT 4

static const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 16},
                                          {.kind = PST_LAYER_TANH},
                                          {.kind = PST_LAYER_DENSE, .units = N_OUT},
                                          {.kind = PST_LAYER_SOFTMAX}};

static void test_library_predicts_in_int8(void **state)
{
    (void)state;
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(N_IN, layers, 4, N_ROWS, &err);
    assert_non_null(m);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    float x[N_ROWS * N_IN];
    double cols[N_IN][N_ROWS];
    for (int r = 0; r < N_ROWS; r++)
        for (int j = 0; j < N_IN; j++)
            cols[j][r] = x[r * N_IN + j] = (float)(pst_rng_normal(&rng) * 1.5);
    float want_float[N_ROWS * N_OUT], want_int8[N_ROWS * N_OUT];
    memcpy(want_float, pst_model_forward(m, x, N_ROWS, false, NULL), sizeof want_float);
    pst_quant_t *q = pst_quant_new(m, x, N_ROWS, 100.0, &err);
    assert_non_null(q);
    pst_modelfile_t mf = {.n_inputs = N_IN,
                          .n_layers = 4,
                          .layers = (pst_layer_spec_t *)layers,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = N_OUT,
                          .params = pst_model_params(m),
                          .n_params = pst_model_n_params(m),
                          .quant = q};
    char path[256];
    assert_int_equal(pst_modelfile_save(&mf, pst_scratch_path(path, "int8.pst"), &err), PST_OK);
    assert_int_equal(pst_model_attach_quant(m, q, &err), PST_OK);
    memcpy(want_int8, pst_model_forward(m, x, N_ROWS, false, NULL), sizeof want_int8);

    pstrain_model *lib;
    pstrain_error lerr;
    assert_int_equal(pstrain_model_load(path, &lib, &lerr), PSTRAIN_OK);
    pstrain_column columns[N_IN];
    char names[N_IN][8];
    for (int j = 0; j < N_IN; j++) {
        snprintf(names[j], sizeof names[j], "x%d", j);
        columns[j] = (pstrain_column){names[j], cols[j], NULL};
    }
    double out[N_ROWS * N_OUT];
    assert_int_equal(pstrain_predict(lib, columns, N_IN, N_ROWS, out, NULL, &lerr), PSTRAIN_OK);
    int differ = 0;
    for (int i = 0; i < N_ROWS * N_OUT; i++) {
        assert_true(out[i] == (double)want_int8[i]);
        differ += want_int8[i] != want_float[i];
    }
    assert_true(differ > 0);
    pstrain_model_free(lib);
    pst_quant_destroy(&q);
    pst_model_destroy(&m);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_library_predicts_in_int8)};
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
