/* Tests for worker/fed/fedtrain.c: the sites' learning rate decayed across rounds (fed.lr_decay).
 * Round r with decay d trains exactly as round 1 with the learning rate times d^(r-1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/rng.h"
#include "worker/fed/fedtrain.h"

#define N_ROWS 96

static pst_dataset_t *blobs(void)
{
    pst_dataset_t *d = pst_dataset_new(N_ROWS, 4, PST_TASK_CLASSIFICATION);
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    d->n_classes = 3;
    for (size_t i = 0; i < N_ROWS; i++) {
        int c = (int)(i % 3);
        d->y[i] = (float)c;
        for (int j = 0; j < 4; j++)
            d->x[i * 4 + j] = (float)(pst_rng_normal(&rng) * 0.6 + (j == c ? 2.0 : 0.0));
    }
    return d;
}

/* A trainer for a 4-8-3 MLP with the given learning rate and fed.lr_decay. */
static void trainer(pst_fedtrainer_t *t, const pst_modelspec_t *spec, float lr, double decay)
{
    pst_config_t cfg;
    pst_config_init(&cfg);
    cfg.fed.lr_decay = decay;
    pst_train_opts_t base;
    pst_train_opts_defaults(&base);
    base.batch_size = 16;
    base.sched.base_lr = lr;
    base.loss = spec->loss;
    base.fused_output = spec->fused_output;
    pst_err_t err = {0};
    assert_int_equal(pst_fedtrainer_init(t, spec, 4, &base, &cfg, &err), PST_OK);
    pst_config_fini(&cfg);
}

static void lr_decays_once_per_round(void **state)
{
    (void)state;
    pst_dataset_t *d = blobs();
    pst_modelspec_t spec = {.layers = {{PST_LAYER_DENSE, 8, 0},
                                       {PST_LAYER_TANH, 0, 0},
                                       {PST_LAYER_DENSE, 3, 0},
                                       {PST_LAYER_SOFTMAX, 0, 0}},
                            .n_layers = 4,
                            .loss = PST_LOSS_SOFTMAX_CE,
                            .fused_output = true};
    pst_fedtrainer_t decayed, scaled, constant;
    trainer(&decayed, &spec, 0.01f, 0.5);
    trainer(&scaled, &spec, 0.01f * 0.25f, 1.0);
    trainer(&constant, &spec, 0.01f, 0.5);
    size_t n = decayed.n_params;
    float *global = calloc(n, sizeof *global), *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b),
          *c = calloc(n, sizeof *c);
    pst_rng_t rng;
    pst_rng_init(&rng, 9);
    for (size_t i = 0; i < n; i++)
        global[i] = (float)(0.3 * pst_rng_normal(&rng));
    pst_rows_t rows = pst_rows_all(d);
    pst_fedtrain_result_t res;
    pst_err_t err = {0};
    /* round 3 with decay 0.5 is round 1 at lr 0.01 * 0.25, to the bit */
    assert_int_equal(pst_fedtrainer_run(&decayed, &rows, global, 3, 77, NULL, a, &res, &err),
                     PST_OK);
    assert_true(res.ok);
    assert_int_equal(pst_fedtrainer_run(&scaled, &rows, global, 1, 77, NULL, b, &res, &err),
                     PST_OK);
    assert_memory_equal(a, b, n * sizeof *a);
    /* round 1 is not decayed, and round 3's step is smaller than round 1's */
    assert_int_equal(pst_fedtrainer_run(&constant, &rows, global, 1, 77, NULL, c, &res, &err),
                     PST_OK);
    double norm_a = 0, norm_c = 0;
    for (size_t i = 0; i < n; i++)
        norm_a += (double)a[i] * a[i], norm_c += (double)c[i] * c[i];
    assert_true(norm_a > 0 && norm_a < norm_c);
    pst_fedtrainer_fini(&decayed);
    pst_fedtrainer_fini(&scaled);
    pst_fedtrainer_fini(&constant);
    free(global), free(a), free(b), free(c);
    pst_dataset_destroy(&d);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lr_decays_once_per_round),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
