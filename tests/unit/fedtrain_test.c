/* Tests for worker/fed/fedtrain.c: the sites' learning rate decayed across rounds (fed.lr_decay):
 * round r with decay d trains exactly as round 1 with the learning rate times d^(r-1); and a
 * site's optimizer kept across rounds (fed.local_state keep): a lone site's rounds are one
 * continuous training, to the bit. */
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

/* An unshuffled Adam trainer of local_epochs epochs a round, keeping the site's optimizer or not.
 */
static void adam_trainer(pst_fedtrainer_t *t, const pst_modelspec_t *spec, long local_epochs,
                         bool keep)
{
    pst_config_t cfg;
    pst_config_init(&cfg);
    cfg.fed.local_epochs = local_epochs;
    free(cfg.fed.local_state);
    cfg.fed.local_state = strdup(keep ? "keep" : "reset");
    pst_train_opts_t base;
    pst_train_opts_defaults(&base);
    base.batch_size = 16;
    base.shuffle = false;
    pst_optim_cfg_defaults(&base.optim, PST_OPT_ADAM);
    base.sched.base_lr = 0.01f;
    base.loss = spec->loss;
    base.fused_output = spec->fused_output;
    pst_err_t err = {0};
    assert_int_equal(pst_fedtrainer_init(t, spec, 4, &base, &cfg, &err), PST_OK);
    assert_true(t->keep_state == keep);
    pst_config_fini(&cfg);
}

/* Two rounds of a lone site, the second from the weights the first ended with: with the optimizer
 * kept they are bit for bit one training of two epochs (Adam's moments and step count carry on);
 * with a fresh optimizer each round they are not. The kept optimizer has taken 2 x 96/16 steps. */
static void kept_state_continues_one_training(void **state)
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
    pst_fedtrainer_t two, kept, reset;
    adam_trainer(&two, &spec, 2, false);
    adam_trainer(&kept, &spec, 1, true);
    adam_trainer(&reset, &spec, 1, false);
    size_t n = two.n_params;
    float *global = calloc(n, sizeof *global), *mid = calloc(n, sizeof *mid),
          *delta = calloc(n, sizeof *delta);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    for (size_t i = 0; i < n; i++)
        global[i] = (float)(0.3 * pst_rng_normal(&rng));
    pst_rows_t rows = pst_rows_all(d);
    pst_fedtrain_result_t res;
    pst_err_t err = {0};
    assert_int_equal(pst_fedtrainer_run(&two, &rows, global, 1, 7, NULL, delta, &res, &err),
                     PST_OK);
    assert_true(res.ok);
    const float *want = pst_model_params(two.local);

    pst_optim_t *opt = NULL;
    assert_int_equal(pst_fedtrainer_run_kept(&kept, &rows, global, 1, 7, &opt, delta, &res, &err),
                     PST_OK);
    assert_true(res.ok);
    assert_non_null(opt);
    assert_int_equal(pst_optim_steps(opt), N_ROWS / 16);
    memcpy(mid, pst_model_params(kept.local), n * sizeof *mid);
    assert_int_equal(pst_fedtrainer_run_kept(&kept, &rows, mid, 2, 7, &opt, delta, &res, &err),
                     PST_OK);
    assert_int_equal(pst_optim_steps(opt), 2 * N_ROWS / 16);
    assert_memory_equal(pst_model_params(kept.local), want, n * sizeof *want);

    assert_int_equal(pst_fedtrainer_run_kept(&reset, &rows, global, 1, 7, NULL, delta, &res, &err),
                     PST_OK);
    assert_memory_equal(pst_model_params(reset.local), mid, n * sizeof *mid);
    assert_int_equal(pst_fedtrainer_run_kept(&reset, &rows, mid, 2, 7, NULL, delta, &res, &err),
                     PST_OK);
    assert_true(memcmp(pst_model_params(reset.local), want, n * sizeof *want) != 0);

    pst_optim_destroy(&opt);
    pst_fedtrainer_fini(&two);
    pst_fedtrainer_fini(&kept);
    pst_fedtrainer_fini(&reset);
    free(global), free(mid), free(delta);
    pst_dataset_destroy(&d);
}

/* A round that diverges (NaN loss) drops the kept optimizer: the site's next round starts fresh
 * rather than from NaN moments. */
static void diverged_round_drops_the_kept_state(void **state)
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
    pst_fedtrainer_t kept;
    adam_trainer(&kept, &spec, 1, true);
    size_t n = kept.n_params;
    float *global = calloc(n, sizeof *global), *delta = calloc(n, sizeof *delta);
    pst_rows_t rows = pst_rows_all(d);
    pst_fedtrain_result_t res;
    pst_err_t err = {0};
    pst_optim_t *opt = NULL;
    assert_int_equal(pst_fedtrainer_run_kept(&kept, &rows, global, 1, 7, &opt, delta, &res, &err),
                     PST_OK);
    assert_true(res.ok);
    assert_non_null(opt);
    global[0] = NAN;
    assert_int_equal(pst_fedtrainer_run_kept(&kept, &rows, global, 2, 7, &opt, delta, &res, &err),
                     PST_OK);
    assert_false(res.ok);
    assert_null(opt);
    pst_fedtrainer_fini(&kept);
    free(global), free(delta);
    pst_dataset_destroy(&d);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lr_decays_once_per_round),
        cmocka_unit_test(kept_state_continues_one_training),
        cmocka_unit_test(diverged_round_drops_the_kept_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
