/* Tests for worker/train/prune and pruning in the training loop: the cubic schedule's values,
 * masks of exactly the target size over the smallest weights (global and per layer), pruned
 * weights staying pruned, exact zeros after training, and training through parameter-server
 * hooks equal to local training bit for bit with pruning on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/optim/optim.h"
#include "worker/train/prune.h"
#include "worker/train/train.h"

#define assert_near(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

static pst_model_t *mlp(int batch)
{
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 16},
                                 {.kind = PST_LAYER_TANH},
                                 {.kind = PST_LAYER_DENSE, .units = 3},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *m = pst_model_new(4, layers, 4, batch, NULL);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    return m;
}

/* Two Gaussian blobs per class in 4 dimensions. */
static pst_dataset_t *blobs(size_t n, uint64_t seed)
{
    pst_dataset_t *d = pst_dataset_new(n, 4, PST_TASK_CLASSIFICATION);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    d->n_classes = 3;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        d->y[i] = (float)c;
        for (int j = 0; j < 4; j++)
            d->x[i * 4 + j] = (float)(pst_rng_normal(&rng) * 0.6 + (j == c ? 2.0 : 0.0));
    }
    return d;
}

static void schedule_is_cubic(void **state)
{
    (void)state;
    pst_prune_opts_t o = {0.8, 2, 5, PST_PRUNE_GLOBAL};
    assert_true(pst_prune_target(&o, 1) == 0.0);
    assert_near(pst_prune_target(&o, 2), 0.8 * (1 - 0.75 * 0.75 * 0.75), 1e-12);
    assert_near(pst_prune_target(&o, 3), 0.8 * (1 - 0.125), 1e-12);
    assert_near(pst_prune_target(&o, 4), 0.8 * (1 - 0.25 * 0.25 * 0.25), 1e-12);
    assert_true(pst_prune_target(&o, 5) == 0.8);
    assert_true(pst_prune_target(&o, 9) == 0.8);
    pst_prune_opts_t once = {0.5, 3, 3, PST_PRUNE_LAYER};
    assert_true(pst_prune_target(&once, 2) == 0.0);
    assert_true(pst_prune_target(&once, 3) == 0.5);
    pst_prune_scope_t scope;
    assert_int_equal(pst_prune_scope_parse("layer", &scope), PST_OK);
    assert_int_equal(scope, PST_PRUNE_LAYER);
    assert_int_not_equal(pst_prune_scope_parse("row", &scope), PST_OK);
}

/* Zeros among [offset, offset + size) of params, and whether every zeroed weight of the range
 * had |w| at most every kept one in orig. */
static size_t zeros_in(const float *params, const float *orig, size_t offset, size_t size,
                       bool *smallest)
{
    size_t z = 0;
    float max_pruned = 0, min_kept = INFINITY;
    for (size_t i = offset; i < offset + size; i++) {
        if (params[i] == 0.0f) {
            z++;
            max_pruned = fmaxf(max_pruned, fabsf(orig[i]));
        } else {
            min_kept = fminf(min_kept, fabsf(orig[i]));
        }
    }
    *smallest = max_pruned <= min_kept;
    return z;
}

static void mask_prunes_exactly_the_smallest(void **state)
{
    (void)state;
    pst_model_t *m = mlp(4);
    size_t n = pst_model_n_params(m);
    float *orig = malloc(n * sizeof(float)), *w = malloc(n * sizeof(float));
    memcpy(orig, pst_model_params(m), n * sizeof(float));
    const pst_tensor_info_t *w0 = pst_model_tensor(m, 0), *w1 = pst_model_tensor(m, 2);
    size_t n_weights = w0->size + w1->size; /* 64 + 48 */
    pst_err_t err;
    /* global: round(0.7 * 112) = 78 of both layers together */
    pst_prune_opts_t o = {0.7, 1, 1, PST_PRUNE_GLOBAL};
    pst_prune_t *p = pst_prune_new(m, &o, &err);
    assert_non_null(p);
    assert_int_equal(pst_prune_update(p, orig, 0.7, &err), PST_OK);
    memcpy(w, orig, n * sizeof(float));
    pst_prune_apply(p, w);
    bool s0, s1;
    size_t z =
        zeros_in(w, orig, w0->offset, w0->size, &s0) + zeros_in(w, orig, w1->offset, w1->size, &s1);
    assert_int_equal(z, 78);
    assert_near(pst_prune_mask_sparsity(p), 78.0 / (double)n_weights, 1e-12);
    assert_near(pst_prune_zero_share(p, w), 78.0 / (double)n_weights, 1e-12);
    /* the biases are untouched */
    const pst_tensor_info_t *b0 = pst_model_tensor(m, 1);
    assert_memory_equal(w + b0->offset, orig + b0->offset, b0->size * sizeof(float));
    pst_prune_destroy(&p);
    /* per layer: round(0.5 * 64) = 32 and round(0.5 * 48) = 24, each of its smallest */
    o.scope = PST_PRUNE_LAYER;
    p = pst_prune_new(m, &o, &err);
    assert_int_equal(pst_prune_update(p, orig, 0.5, &err), PST_OK);
    memcpy(w, orig, n * sizeof(float));
    pst_prune_apply(p, w);
    assert_int_equal(zeros_in(w, orig, w0->offset, w0->size, &s0), 32);
    assert_int_equal(zeros_in(w, orig, w1->offset, w1->size, &s1), 24);
    assert_true(s0 && s1);
    /* growing the mask never revives a pruned weight, even one that grew large meanwhile */
    float *big = malloc(n * sizeof(float));
    memcpy(big, orig, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        if (w[i] == 0.0f)
            big[i] = 100.0f;
    assert_int_equal(pst_prune_update(p, big, 0.75, &err), PST_OK);
    float *w2 = malloc(n * sizeof(float));
    memcpy(w2, orig, n * sizeof(float));
    pst_prune_apply(p, w2);
    for (size_t i = 0; i < n; i++)
        if (w[i] == 0.0f)
            assert_true(w2[i] == 0.0f);
    assert_int_equal(zeros_in(w2, orig, w0->offset, w0->size, &s0), 48);
    assert_int_equal(pst_prune_update(p, orig, 1.0, &err), PST_EINVAL);
    pst_prune_destroy(&p);
    pst_prune_destroy(&p); /* safe twice */
    free(big);
    free(w2);
    free(orig);
    free(w);
    pst_model_destroy(&m);
}

static void conv_weights_are_pruned_batchnorm_is_not(void **state)
{
    (void)state;
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_INPUT, .channels = 1, .height = 6, .width = 6},
                                 {.kind = PST_LAYER_CONV2D, .channels = 4, .kernel = 3},
                                 {.kind = PST_LAYER_BATCHNORM},
                                 {.kind = PST_LAYER_FLATTEN},
                                 {.kind = PST_LAYER_DENSE, .units = 3},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_err_t err;
    pst_model_t *m = pst_model_new(36, layers, 6, 2, &err);
    assert_non_null(m);
    pst_rng_t rng;
    pst_rng_init(&rng, 2);
    pst_model_init_params(m, &rng);
    float *w = pst_model_params(m);
    const pst_tensor_info_t *conv = pst_model_tensor(m, 0), *gamma = pst_model_tensor(m, 2),
                            *dense = pst_model_tensor(m, 4);
    assert_int_equal(conv->size, 4 * 9);
    pst_prune_opts_t o = {0.5, 1, 1, PST_PRUNE_LAYER};
    pst_prune_t *p = pst_prune_new(m, &o, &err);
    assert_int_equal(pst_prune_update(p, w, 0.5, &err), PST_OK);
    pst_prune_apply(p, w);
    bool smallest;
    assert_int_equal(zeros_in(w, w, conv->offset, conv->size, &smallest), 18);
    assert_int_equal(zeros_in(w, w, dense->offset, dense->size, &smallest), dense->size / 2);
    assert_int_equal(zeros_in(w, w, gamma->offset, gamma->size, &smallest), 0); /* gamma = 1 */
    pst_prune_destroy(&p);
    pst_model_destroy(&m);
}

static void opts_for(pst_train_opts_t *o, int epochs)
{
    pst_train_opts_defaults(o);
    o->epochs = epochs;
    o->batch_size = 16;
    o->seed = 9;
    o->sched.base_lr = 0.01f;
}

static size_t weight_zeros(pst_model_t *m)
{
    const float *w = pst_model_params(m);
    size_t z = 0;
    for (int t = 0; t < pst_model_n_tensors(m); t += 2) {
        const pst_tensor_info_t *ti = pst_model_tensor(m, t);
        for (size_t i = 0; i < ti->size; i++)
            z += w[ti->offset + i] == 0.0f;
    }
    return z;
}

static void training_keeps_pruned_weights_at_zero(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(300, 1), *val = blobs(150, 2);
    pst_model_t *m = mlp(16);
    pst_train_opts_t o;
    opts_for(&o, 6);
    pst_prune_opts_t po = {0.75, 2, 4, PST_PRUNE_GLOBAL};
    pst_err_t err;
    o.prune = pst_prune_new(m, &po, &err);
    pst_train_result_t r;
    assert_int_equal(pst_train_run(m, train, val, &o, NULL, &r, &err), PST_OK);
    /* Adam's momentum would move them: the mask holds exactly round(0.75 * 112) = 84 at 0 */
    assert_int_equal(weight_zeros(m), 84);
    assert_near(pst_prune_mask_sparsity(o.prune), 84.0 / 112.0, 1e-12);
    pst_eval_sums_t s;
    assert_int_equal(pst_eval_sums(m, val, 16, PST_LOSS_SOFTMAX_CE, 1, &s, &err), PST_OK);
    assert_true(s.correct / s.n > 0.9);
    pst_prune_destroy(&o.prune);
    pst_model_destroy(&m);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

/* A parameter server in the hooks: pull copies its weights, push applies the same optimizer. It
 * knows nothing of the mask: its pruned weights drift, the worker's copy holds them at zero. */
typedef struct fake_server {
    float *w;
    pst_optim_t *opt;
    size_t n;
} fake_server_t;

static int fake_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    (void)clock, (void)err;
    fake_server_t *s = ctx;
    memcpy(params, s->w, s->n * sizeof(float));
    return PST_OK;
}

static int fake_push(void *ctx, const float *g, uint64_t clock, float lr, pst_err_t *err)
{
    (void)clock, (void)err;
    fake_server_t *s = ctx;
    pst_optim_step(s->opt, s->w, g, lr);
    return PST_OK;
}

static void remote_training_with_pruning_equals_local(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(240, 3), *val = blobs(60, 4);
    pst_model_t *local = mlp(16), *remote = mlp(16);
    pst_train_opts_t o;
    opts_for(&o, 5);
    o.clip_norm = 1.0; /* the mask comes before clipping on both sides */
    size_t n = pst_model_n_params(remote);
    fake_server_t fs = {malloc(n * sizeof(float)), pst_optim_new(&o.optim, n, NULL), n};
    memcpy(fs.w, pst_model_params(remote), n * sizeof(float));
    pst_prune_opts_t po = {0.6, 1, 3, PST_PRUNE_LAYER};
    pst_err_t err;
    pst_train_opts_t ol = o, orem = o;
    ol.prune = pst_prune_new(local, &po, &err);
    orem.prune = pst_prune_new(remote, &po, &err);
    pst_train_hooks_t hooks = {.ctx = &fs, .pull = fake_pull, .push = fake_push};
    pst_train_result_t r1, r2;
    assert_int_equal(pst_train_run(local, train, val, &ol, NULL, &r1, &err), PST_OK);
    assert_int_equal(pst_train_run(remote, train, val, &orem, &hooks, &r2, &err), PST_OK);
    assert_memory_equal(pst_model_params(local), pst_model_params(remote), n * sizeof(float));
    /* round(0.6 * 64) + round(0.6 * 48) = 38 + 29 */
    assert_int_equal(weight_zeros(remote), 38 + 29);
    assert_true(weight_zeros(local) == 67);
    free(fs.w);
    pst_optim_destroy(&fs.opt);
    pst_prune_destroy(&ol.prune);
    pst_prune_destroy(&orem.prune);
    pst_model_destroy(&local);
    pst_model_destroy(&remote);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(schedule_is_cubic),
        cmocka_unit_test(mask_prunes_exactly_the_smallest),
        cmocka_unit_test(conv_weights_are_pruned_batchnorm_is_not),
        cmocka_unit_test(training_keeps_pruned_weights_at_zero),
        cmocka_unit_test(remote_training_with_pruning_equals_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
