/* Tests for worker/train and worker/modelfile: learning, determinism, early stopping with
 * restore-best, distributed hooks equal to local steps, and the model file round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/optim/optim.h"
#include "worker/model/modelfile.h"
#include "worker/train/train.h"

/* Two Gaussian blobs per class in 4 dimensions: separable with a little noise. */
static pst_dataset_t *blobs(size_t n, int n_classes, uint64_t seed)
{
    pst_dataset_t *d = pst_dataset_new(n, 4, PST_TASK_CLASSIFICATION);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    d->n_classes = n_classes;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)n_classes);
        d->y[i] = (float)c;
        for (int j = 0; j < 4; j++)
            d->x[i * 4 + j] = (float)(pst_rng_normal(&rng) * 0.6 + (j == c % 4 ? 2.0 : 0.0));
    }
    return d;
}

static pst_model_t *mlp(int n_classes, int batch)
{
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 16},
                                 {.kind = PST_LAYER_TANH, .units = 0},
                                 {.kind = PST_LAYER_DENSE, .units = n_classes},
                                 {.kind = PST_LAYER_SOFTMAX, .units = 0}};
    pst_model_t *m = pst_model_new(4, layers, 4, batch, NULL);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    return m;
}

static void opts_for(pst_train_opts_t *o, int epochs)
{
    pst_train_opts_defaults(o);
    o->epochs = epochs;
    o->batch_size = 16;
    o->seed = 9;
    o->sched.base_lr = 0.01f;
}

static void learns_and_is_deterministic(void **state)
{
    pst_dataset_t *train = blobs(400, 3, 1), *val = blobs(200, 3, 2);
    pst_model_t *a = mlp(3, 16), *b = mlp(3, 16);
    pst_train_opts_t o;
    opts_for(&o, 8);
    pst_train_result_t ra, rb;
    pst_err_t err;
    assert_int_equal(pst_train_run(a, train, val, &o, NULL, &ra, &err), PST_OK);
    assert_int_equal(pst_train_run(b, train, val, &o, NULL, &rb, &err), PST_OK);
    assert_int_equal(ra.epochs_run, 8);
    assert_int_equal(ra.clock, 8 * 25);
    assert_memory_equal(pst_model_params(a), pst_model_params(b),
                        pst_model_n_params(a) * sizeof(float));
    pst_eval_sums_t s;
    assert_int_equal(pst_eval_sums(a, val, 16, PST_LOSS_SOFTMAX_CE, 1, &s, &err), PST_OK);
    assert_true(s.n == 200);
    assert_true(s.correct / s.n > 0.9);
    pst_model_destroy(&a);
    pst_model_destroy(&b);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

typedef struct record {
    int epochs;
    double val_loss[64];
} record_t;

static void record_epoch(void *ctx, const pst_epoch_stats_t *es)
{
    record_t *r = ctx;
    r->val_loss[r->epochs++] = es->val_loss;
}

static void early_stopping_restores_best(void **state)
{
    /* Training labels are noise, so validation loss soon rises: early stopping must trigger,
     * and the final weights must give exactly the best epoch's validation loss. */
    pst_dataset_t *train = blobs(200, 2, 3), *val = blobs(200, 2, 4);
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (size_t i = 0; i < train->n_rows; i++)
        train->y[i] = (float)pst_rng_below(&rng, 2);
    pst_model_t *m = mlp(2, 16);
    pst_train_opts_t o;
    opts_for(&o, 60);
    o.sched.base_lr = 0.05f;
    o.patience = 3;
    record_t rec = {0};
    pst_train_hooks_t hooks = {.ctx = &rec, .on_epoch = record_epoch};
    pst_train_result_t r;
    pst_err_t err;
    assert_int_equal(pst_train_run(m, train, val, &o, &hooks, &r, &err), PST_OK);
    assert_true(r.stopped_early);
    assert_int_equal(r.epochs_run, r.best_epoch + 3);
    assert_int_equal(rec.epochs, r.epochs_run);
    double best = INFINITY;
    for (int i = 0; i < rec.epochs; i++)
        best = fmin(best, rec.val_loss[i]);
    assert_true(best == r.best_val_loss);
    pst_eval_sums_t s;
    pst_eval_sums(m, val, 16, PST_LOSS_SOFTMAX_CE, 1, &s, &err);
    assert_float_equal(s.loss_sum / s.n, r.best_val_loss, 1e-9);
    pst_model_destroy(&m);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

/* A fake parameter server in the hooks: pull copies its weights, push applies the same
 * optimizer. Training through it must equal local training bit for bit. */
typedef struct fake_server {
    float *w;
    pst_optim_t *opt;
    size_t n;
    uint64_t expect_clock;
    int clock_errors;
    uint64_t fail_at; /* push of this clock fails (a crash); 0 = never */
} fake_server_t;

static int fake_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    fake_server_t *s = ctx;
    s->clock_errors += clock != s->expect_clock;
    memcpy(params, s->w, s->n * sizeof(float));
    return PST_OK;
}

static int fake_push(void *ctx, const float *g, uint64_t clock, float lr, pst_err_t *err)
{
    fake_server_t *s = ctx;
    if (s->fail_at && clock == s->fail_at)
        return pst_err_set(err, PST_EIO, "server gone");
    s->clock_errors += clock != s->expect_clock;
    pst_optim_step(s->opt, s->w, g, lr);
    s->expect_clock++;
    return PST_OK;
}

static void hooks_match_local_steps(void **state)
{
    pst_dataset_t *train = blobs(300, 3, 5), *val = blobs(60, 3, 6);
    pst_model_t *local = mlp(3, 16), *remote = mlp(3, 16);
    pst_train_opts_t o;
    opts_for(&o, 3);
    o.optim.kind = PST_OPT_ADAM;
    fake_server_t fs = {malloc(pst_model_n_params(remote) * sizeof(float)),
                        NULL,
                        pst_model_n_params(remote),
                        0,
                        0,
                        0};
    memcpy(fs.w, pst_model_params(remote), fs.n * sizeof(float));
    fs.opt = pst_optim_new(&o.optim, fs.n, NULL);
    pst_train_hooks_t hooks = {.ctx = &fs, .pull = fake_pull, .push = fake_push};
    pst_train_result_t r1, r2;
    pst_err_t err;
    assert_int_equal(pst_train_run(local, train, val, &o, NULL, &r1, &err), PST_OK);
    assert_int_equal(pst_train_run(remote, train, val, &o, &hooks, &r2, &err), PST_OK);
    assert_int_equal(fs.clock_errors, 0);
    assert_int_equal(fs.expect_clock, r1.clock);
    assert_memory_equal(pst_model_params(local), fs.w, fs.n * sizeof(float));
    assert_memory_equal(pst_model_params(local), pst_model_params(remote), fs.n * sizeof(float));
    free(fs.w);
    pst_optim_destroy(&fs.opt);
    pst_model_destroy(&local);
    pst_model_destroy(&remote);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

static void resume_mid_epoch_matches_uninterrupted(void **state)
{
    /* Dropout and shuffling on: a run that crashes at clock 30 (mid-epoch 2) and resumes from
     * there with the server's state must end with the uninterrupted run's weights. */
    pst_dataset_t *train = blobs(300, 3, 8);
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 16},
                                 {.kind = PST_LAYER_RELU, .units = 0},
                                 {.kind = PST_LAYER_DROPOUT, .units = 0, .rate = 0.3f},
                                 {.kind = PST_LAYER_DENSE, .units = 3},
                                 {.kind = PST_LAYER_SOFTMAX, .units = 0}};
    pst_model_t *m = pst_model_new(4, layers, 5, 16, NULL);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    size_t n = pst_model_n_params(m);
    float *w0 = malloc(n * sizeof(float));
    memcpy(w0, pst_model_params(m), n * sizeof(float));
    pst_train_opts_t o;
    opts_for(&o, 3);
    fake_server_t whole = {malloc(n * sizeof(float)), pst_optim_new(&o.optim, n, NULL), n, 0, 0, 0};
    fake_server_t part = {malloc(n * sizeof(float)), pst_optim_new(&o.optim, n, NULL), n, 0, 0, 30};
    memcpy(whole.w, w0, n * sizeof(float));
    memcpy(part.w, w0, n * sizeof(float));
    pst_train_hooks_t hw = {.ctx = &whole, .pull = fake_pull, .push = fake_push};
    pst_train_hooks_t hp = {.ctx = &part, .pull = fake_pull, .push = fake_push};
    pst_train_result_t r;
    pst_err_t err;
    assert_int_equal(pst_train_run(m, train, NULL, &o, &hw, &r, &err), PST_OK);
    assert_int_equal(pst_train_run(m, train, NULL, &o, &hp, &r, &err), PST_EIO);
    assert_int_equal(part.expect_clock, 30);
    part.fail_at = 0;
    o.start_clock = 30;
    assert_int_equal(pst_train_run(m, train, NULL, &o, &hp, &r, &err), PST_OK);
    assert_int_equal(r.clock, 3 * 19);
    assert_int_equal(part.clock_errors + whole.clock_errors, 0);
    assert_memory_equal(whole.w, part.w, n * sizeof(float));
    free(w0);
    free(whole.w);
    free(part.w);
    pst_optim_destroy(&whole.opt);
    pst_optim_destroy(&part.opt);
    pst_model_destroy(&m);
    pst_dataset_destroy(&train);
}

static void rejects_wrong_width_and_nonfinite_loss(void **state)
{
    pst_dataset_t *train = blobs(50, 2, 7);
    pst_model_t *m = mlp(2, 16);
    pst_train_opts_t o;
    opts_for(&o, 1);
    pst_train_result_t r;
    pst_err_t err;
    train->n_features = 3;
    assert_int_equal(pst_train_run(m, train, NULL, &o, NULL, &r, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "features"));
    train->n_features = 4;
    train->x[7] = NAN;
    assert_int_equal(pst_train_run(m, train, NULL, &o, NULL, &r, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "not finite"));
    pst_model_destroy(&m);
    pst_dataset_destroy(&train);
}

static void modelfile_round_trip_and_corruption(void **state)
{
    pst_model_t *m = mlp(3, 16);
    pst_layer_spec_t layers[4];
    for (int i = 0; i < 4; i++)
        layers[i] = *pst_model_layer(m, i);
    float shift[4] = {1, 2, 3, 4}, scale[4] = {0.5f, 0.25f, 1, 2}, fill[4] = {0, 1, 0, 1};
    double classes[3] = {-1, 0, 7};
    pst_modelfile_t mf = {.n_inputs = 4,
                          .n_layers = 4,
                          .layers = layers,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = 3,
                          .class_values = classes,
                          .shift = shift,
                          .scale = scale,
                          .fill = fill,
                          .pixel_scale = 1,
                          .params = pst_model_params(m),
                          .n_params = pst_model_n_params(m),
                          .config_yaml = "seed: 3\n"};
    char path[] = "/tmp/pst_modelfile_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    pst_err_t err;
    assert_int_equal(pst_modelfile_save(&mf, path, &err), PST_OK);
    pst_modelfile_t back;
    assert_int_equal(pst_modelfile_load(&back, path, &err), PST_OK);
    assert_int_equal(back.n_layers, 4);
    assert_int_equal(back.layers[2].units, 3);
    assert_int_equal(back.n_classes, 3);
    assert_true(back.class_values[2] == 7);
    assert_memory_equal(back.scale, scale, sizeof scale);
    assert_string_equal(back.config_yaml, "seed: 3\n");
    pst_model_t *built = pst_modelfile_build(&back, 8, &err);
    assert_non_null(built);
    assert_memory_equal(pst_model_params(built), pst_model_params(m),
                        pst_model_n_params(m) * sizeof(float));
    pst_model_destroy(&built);
    pst_modelfile_fini(&back);

    /* Truncation and a foreign file are errors, not crashes. */
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, size / 2), 0);
    assert_int_not_equal(pst_modelfile_load(&back, path, &err), PST_OK);
    f = fopen(path, "wb");
    fputs("a,b,target\n1,2,3\n", f);
    fclose(f);
    assert_int_equal(pst_modelfile_load(&back, path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    pst_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(learns_and_is_deterministic),
        cmocka_unit_test(early_stopping_restores_best),
        cmocka_unit_test(hooks_match_local_steps),
        cmocka_unit_test(resume_mid_epoch_matches_uninterrupted),
        cmocka_unit_test(rejects_wrong_width_and_nonfinite_loss),
        cmocka_unit_test(modelfile_round_trip_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
