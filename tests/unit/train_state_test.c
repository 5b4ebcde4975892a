/* Tests for worker/train's handling of the statistics kept beside the weights (batchnorm running
 * moments): early stopping restores the best epoch's moments with its weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/train/train.h"

static pst_dataset_t *blobs(size_t n, uint64_t seed)
{
    pst_dataset_t *d = pst_dataset_new(n, 4, PST_TASK_CLASSIFICATION);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    d->n_classes = 2;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 2);
        d->y[i] = (float)c;
        for (int j = 0; j < 4; j++)
            d->x[i * 4 + j] = (float)(pst_rng_normal(&rng) * 0.6 + (j == c ? 2.0 : 0.0));
    }
    return d;
}

/* What the model held at the end of each improving epoch. */
typedef struct snapshot {
    pst_model_t *model;
    float *params, *state;
    int epoch;
} snapshot_t;

static void on_epoch(void *ctx, const pst_epoch_stats_t *es)
{
    snapshot_t *s = ctx;
    if (!es->improved)
        return;
    s->epoch = es->epoch;
    memcpy(s->params, pst_model_params(s->model), pst_model_n_params(s->model) * sizeof(float));
    memcpy(s->state, pst_model_state(s->model), pst_model_n_state(s->model) * sizeof(float));
}

static void early_stopping_restores_running_moments(void **state)
{
    (void)state;
    /* Noise labels: validation loss soon rises and training goes on for `patience` epochs, which
     * move the running moments away from the best epoch's. */
    pst_dataset_t *train = blobs(200, 3), *val = blobs(200, 4);
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (size_t i = 0; i < train->n_rows; i++)
        train->y[i] = (float)pst_rng_below(&rng, 2);
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 16},
                                 {.kind = PST_LAYER_BATCHNORM},
                                 {.kind = PST_LAYER_TANH},
                                 {.kind = PST_LAYER_DENSE, .units = 2},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(4, layers, 5, 16, &err);
    assert_non_null(m);
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    snapshot_t snap = {m, malloc(pst_model_n_params(m) * sizeof(float)),
                       malloc(pst_model_n_state(m) * sizeof(float)), 0};
    pst_train_opts_t o;
    pst_train_opts_defaults(&o);
    o.epochs = 60;
    o.batch_size = 16;
    o.seed = 9;
    o.sched.base_lr = 0.05f;
    o.patience = 3;
    pst_train_hooks_t hooks = {.ctx = &snap, .on_epoch = on_epoch};
    pst_train_result_t r;
    assert_int_equal(pst_train_run(m, train, val, &o, &hooks, &r, &err), PST_OK);
    assert_true(r.stopped_early);
    assert_int_equal(snap.epoch, r.best_epoch);
    assert_int_equal(r.epochs_run, r.best_epoch + 3);
    assert_memory_equal(pst_model_params(m), snap.params, pst_model_n_params(m) * sizeof(float));
    assert_memory_equal(pst_model_state(m), snap.state, pst_model_n_state(m) * sizeof(float));
    /* and so evaluation gives back exactly the best epoch's validation loss */
    pst_eval_sums_t s;
    assert_int_equal(pst_eval_sums(m, val, 16, PST_LOSS_SOFTMAX_CE, 1, &s, &err), PST_OK);
    assert_true(s.loss_sum / s.n == r.best_val_loss);
    free(snap.params);
    free(snap.state);
    pst_model_destroy(&m);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(early_stopping_restores_running_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
