/* Tests for worker/train's handling of what is not plain trained weights: the batchnorm running
 * moments (early stopping restores the best epoch's with its weights) and frozen layers
 * (train.freeze: no update under any optimizer or penalty, no gradient sent through the hooks,
 * and the configuration's indices and kind names). */
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
#include "worker/model/modelspec.h"
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

/* Counts the per-layer pushes of a distributed step; pulls leave the weights as they are. */
typedef struct push_counter {
    int pushes[8];
} push_counter_t;

static int keep_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    (void)ctx, (void)params, (void)clock, (void)err;
    return PST_OK;
}

static int keep_wait(void *ctx, int k, pst_err_t *err)
{
    (void)ctx, (void)k, (void)err;
    return PST_OK;
}

static int count_push_layer(void *ctx, int k, const float *g, uint64_t clock, float lr,
                            pst_err_t *err)
{
    (void)g, (void)clock, (void)lr, (void)err;
    ((push_counter_t *)ctx)->pushes[k]++;
    return PST_OK;
}

static int count_push(void *ctx, const float *g, uint64_t clock, float lr, pst_err_t *err)
{
    (void)ctx, (void)g, (void)clock, (void)lr, (void)err;
    return PST_OK;
}

static pst_model_t *frozen_mlp(bool freeze_first)
{
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 8, .frozen = freeze_first},
                                 {.kind = PST_LAYER_TANH},
                                 {.kind = PST_LAYER_DENSE, .units = 8},
                                 {.kind = PST_LAYER_TANH},
                                 {.kind = PST_LAYER_DENSE, .units = 2},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *m = pst_model_new(4, layers, 6, 16, NULL);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    return m;
}

static void frozen_layer_never_changes(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(128, 3);
    pst_model_t *m = frozen_mlp(true), *free_model = frozen_mlp(false);
    const pst_tensor_info_t *w0 = pst_model_tensor(m, 0), *b0 = pst_model_tensor(m, 1);
    assert_true(w0->frozen && b0->frozen && !pst_model_tensor(m, 2)->frozen);
    size_t n0 = w0->size + b0->size;
    float *start = malloc(pst_model_n_params(m) * sizeof(float));
    memcpy(start, pst_model_params(m), pst_model_n_params(m) * sizeof(float));
    /* the same weights at the start, frozen or not */
    assert_memory_equal(pst_model_params(free_model), start, pst_model_n_params(m) * sizeof(float));
    pst_train_opts_t o;
    pst_train_opts_defaults(&o);
    o.epochs = 3;
    o.batch_size = 16;
    o.seed = 9;
    o.l1 = 1e-3f;
    o.l2 = 1e-2f;
    pst_optim_cfg_defaults(&o.optim, PST_OPT_ADAMW); /* decoupled decay moves any weight */
    o.optim.weight_decay = 0.1f;
    o.sched.base_lr = 0.05f;
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(m, train, NULL, &o, NULL, &r, &err), PST_OK);
    assert_int_equal(pst_train_run(free_model, train, NULL, &o, NULL, &r, &err), PST_OK);
    assert_memory_equal(pst_model_params(m), start, n0 * sizeof(float));
    /* the trained layers did move, and the unfrozen twin's first layer too */
    assert_memory_not_equal(pst_model_params(m) + n0, start + n0,
                            (pst_model_n_params(m) - n0) * sizeof(float));
    assert_memory_not_equal(pst_model_params(free_model), start, n0 * sizeof(float));
    /* backward leaves the frozen gradient 0 */
    float dout[2 * 2] = {0.5f, -0.5f, -0.25f, 0.25f};
    pst_model_forward(m, train->x, 2, true, NULL);
    pst_model_backward(m, dout, 2, true);
    for (size_t i = 0; i < n0; i++)
        assert_true(pst_model_grads(m)[i] == 0.0f);
    free(start);
    pst_model_destroy(&m);
    pst_model_destroy(&free_model);
    pst_dataset_destroy(&train);
}

static void frozen_layer_sends_no_gradient(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(64, 3);
    pst_model_t *m = frozen_mlp(true);
    push_counter_t counter = {{0}};
    pst_train_hooks_t hooks = {.ctx = &counter,
                               .pull = keep_pull,
                               .push = count_push,
                               .pull_start = keep_pull,
                               .pull_wait = keep_wait,
                               .push_layer = count_push_layer};
    pst_train_opts_t o;
    pst_train_opts_defaults(&o);
    o.epochs = 2;
    o.batch_size = 16;
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(m, train, NULL, &o, &hooks, &r, &err), PST_OK);
    assert_int_equal(counter.pushes[0], 0);
    assert_int_equal(counter.pushes[1], 8);
    assert_int_equal(counter.pushes[2], 8);
    pst_model_destroy(&m);
    pst_dataset_destroy(&train);
}

static int spec_with(const char *yaml, pst_modelspec_t *spec, pst_err_t *err)
{
    pst_config_t cfg;
    pst_config_init(&cfg);
    int rc = pst_config_load_string(&cfg, yaml, "test", err);
    if (rc == PST_OK)
        rc = pst_modelspec_build(spec, &cfg, PST_TASK_CLASSIFICATION, 2, err);
    pst_config_fini(&cfg);
    return rc;
}

static void freeze_names_and_indices(void **state)
{
    (void)state;
    pst_modelspec_t spec;
    pst_err_t err = {0};
    const char *layers = "model:\n  layers: [conv2d:4:3, relu, flatten, dense:8, relu, dense:2, "
                         "softmax]\ndata:\n  image_shape: [1, 6, 6]\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%strain:\n  freeze: [conv2d, 3]\n", layers);
    assert_int_equal(spec_with(yaml, &spec, &err), PST_OK);
    /* an input layer went in front: model.layers[0] is spec.layers[1] */
    assert_int_equal(spec.layers[0].kind, PST_LAYER_INPUT);
    assert_true(spec.layers[1].frozen);
    assert_true(spec.layers[4].frozen);
    assert_false(spec.layers[6].frozen);
    const char *bad[][2] = {
        {"[1]", "train.freeze: layer 1 (relu) has no weights"},
        {"[9]", "train.freeze: no layer 9 (the model has 7)"},
        {"[lstm]", "'lstm' is neither a layer index nor the kind of a layer"},
        {"[conv2d, dense]", "every layer with weights is frozen"},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(yaml, sizeof yaml, "%strain:\n  freeze: %s\n", layers, bad[i][0]);
        assert_int_equal(spec_with(yaml, &spec, &err), PST_EINVAL);
        if (strstr(err.msg, bad[i][1]) == NULL)
            fail_msg("%s: expected '%s' in '%s'", bad[i][0], bad[i][1], err.msg);
    }
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(early_stopping_restores_running_moments),
        cmocka_unit_test(frozen_layer_never_changes),
        cmocka_unit_test(frozen_layer_sends_no_gradient),
        cmocka_unit_test(freeze_names_and_indices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
