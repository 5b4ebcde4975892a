/* Tests for early stopping of sparse runs: worker/train/early_stop (patience, min_delta),
 * app/sparse/sparse_run's epochs stopping at the best validation epoch and restoring its weights,
 * worker/train/sparse_best for wide & deep, and the snapshots of worker/model/sparse_model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "app/sparse/sparse_run.h"
#include "common/config.h"
#include "common/log.h"
#include "worker/model/sparse_model.h"
#include "worker/train/early_stop.h"
#include "worker/train/sparse_best.h"
#include "worker/train/wide_deep_local.h"

/* ---- the early-stopping rule ---- */

static void early_stop_waits_patience_epochs_after_the_best(void **state)
{
    (void)state;
    const double loss[] = {0.50, 0.40, 0.45, 0.41, 0.46, 0.30};
    pst_early_stop_t es;
    pst_early_stop_init(&es, 2, 0.0);
    bool improved = false;
    assert_false(pst_early_stop_observe(&es, 1, loss[0], &improved));
    assert_true(improved);
    assert_false(pst_early_stop_observe(&es, 2, loss[1], &improved));
    assert_true(improved);
    assert_false(pst_early_stop_observe(&es, 3, loss[2], &improved));
    assert_false(improved);
    assert_true(pst_early_stop_observe(&es, 4, loss[3], &improved)); /* 2 epochs without */
    assert_false(improved);
    assert_int_equal(es.best_epoch, 2);
    assert_true(es.best_loss == 0.40);
    assert_true(es.stopped);
}

static void early_stop_counts_only_improvements_above_min_delta(void **state)
{
    (void)state;
    pst_early_stop_t es;
    pst_early_stop_init(&es, 2, 0.01);
    bool improved = false;
    assert_false(pst_early_stop_observe(&es, 1, 0.500, &improved));
    assert_false(pst_early_stop_observe(&es, 2, 0.495, &improved)); /* lower, by less than 0.01 */
    assert_false(improved);
    assert_false(pst_early_stop_observe(&es, 3, NAN, &improved)); /* no validation: not counted */
    assert_false(improved);
    assert_true(pst_early_stop_observe(&es, 4, 0.492, &improved));
    assert_int_equal(es.best_epoch, 1);
    assert_true(es.best_loss == 0.500);

    pst_early_stop_init(&es, 0, 0.0); /* patience 0: tracks the best, never stops */
    for (int e = 1; e <= 5; e++)
        assert_false(pst_early_stop_observe(&es, e, 1.0 + e, NULL));
    assert_int_equal(es.best_epoch, 1);
}

/* ---- a constructed run whose validation loss falls, then rises ---- */

/* Every row holds feature 0 and one of features 1..20; train has 90% clicks, validation 70%.
 * Training moves the predicted rate from 0.5 towards 0.9, so the validation log-loss falls
 * until the prediction passes 0.7 and rises after. */
enum { TRAIN_ROWS = 2000, VAL_ROWS = 500, GROUPS = 20 };

static pst_dataset_t *click_rows(size_t n, int clicks_in_10)
{
    pst_dataset_t *d = pst_dataset_new(n, 0, PST_TASK_CLASSIFICATION);
    assert_non_null(d);
    free(d->x);
    d->x = NULL;
    d->n_features = 1 + GROUPS;
    d->n_classes = 2;
    d->row_ptr = malloc((n + 1) * sizeof(size_t));
    d->col_idx = malloc(2 * n * sizeof(uint32_t));
    d->val = malloc(2 * n * sizeof(float));
    assert_true(d->row_ptr && d->col_idx && d->val);
    for (size_t i = 0; i < n; i++) {
        d->row_ptr[i] = 2 * i;
        d->col_idx[2 * i] = 0;
        d->col_idx[2 * i + 1] = 1 + (uint32_t)(i % GROUPS);
        d->val[2 * i] = d->val[2 * i + 1] = 1.0f;
        d->y[i] = (int)((i * 7) % 10) < clicks_in_10 ? 1.0f : 0.0f;
    }
    d->row_ptr[n] = 2 * n;
    return d;
}

typedef struct fixture {
    pst_config_t cfg;
    pst_sparse_run_t run;
    pst_sparse_model_t *model;
    pst_sparse_best_t best;
} fixture_t;

/* A local sparse_lr run of the constructed sets, set up as a run's prepare would. */
static void fixture_setup(fixture_t *f, int epochs, int patience, bool restore_best)
{
    assert_int_equal(pst_config_init(&f->cfg), PST_OK);
    const char *settings[] = {"model.type=sparse_lr", "optimizer.name=ftrl", "optimizer.lr=0.02",
                              "optimizer.ftrl_beta=1", "train.shuffle=false"};
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++)
        assert_int_equal(pst_config_set(&f->cfg, settings[i], NULL), PST_OK);
    pst_sparse_run_t *run = &f->run;
    pst_sparse_run_init(run, &f->cfg, true);
    assert_int_equal(pst_sparse_job_from_config(&f->cfg, &run->job, NULL), PST_OK);
    run->job.epochs = epochs;
    run->job.batch = 50;
    run->job.patience = patience;
    run->job.restore_best = restore_best;
    run->data.train = click_rows(TRAIN_ROWS, 9);
    run->data.val = click_rows(VAL_ROWS, 7);
    run->data.test = pst_dataset_take_rows(run->data.val, NULL, 0);
    assert_non_null(run->data.test);
    run->n_train_rows = TRAIN_ROWS;
    run->steps_per_epoch = TRAIN_ROWS / 50;
    pst_early_stop_init(&run->stop, patience, 0.0);
    pst_sparse_train_opts_t opts;
    pst_sparse_job_local_opts(&run->job, &opts);
    f->model = pst_sparse_model_new(&opts, NULL);
    assert_non_null(f->model);
    run->trainer = pst_sparse_trainer_local(f->model);
    pst_sparse_best_init_local(&f->best, f->model);
    run->best = pst_sparse_run_wants_best(run) ? &f->best : NULL;
}

static void fixture_teardown(fixture_t *f)
{
    f->run.best = NULL;
    pst_sparse_best_fini(&f->best);
    pst_sparse_model_destroy(&f->model);
    pst_sparse_run_fini(&f->run);
    pst_config_fini(&f->cfg);
}

/* The validation losses of every epoch of a run without early stopping. */
static int validation_curve(int epochs, double *loss)
{
    fixture_t f;
    fixture_setup(&f, epochs, 0, false);
    assert_int_equal(pst_sparse_run_train(&f.run, NULL), PST_OK);
    const cJSON *item;
    int n = 0;
    cJSON_ArrayForEach(item, f.run.epochs_json)
    {
        loss[n++] = cJSON_GetObjectItem(item, "val_loss")->valuedouble;
    }
    fixture_teardown(&f);
    return n;
}

/* Asserts the rows and bias of a and b are the same bits, keys in the same order. */
static void assert_same_weights(const pst_sparse_model_t *a, const pst_sparse_model_t *b)
{
    size_t n = pst_sparse_model_n_keys(a), w = pst_sparse_model_row_width(a);
    assert_int_equal(n, pst_sparse_model_n_keys(b));
    assert_int_equal(w, pst_sparse_model_row_width(b));
    for (size_t i = 0; i < n; i++) {
        uint64_t ka = 0, kb = 0;
        const float *ra = pst_sparse_model_entry(a, i, &ka),
                    *rb = pst_sparse_model_entry(b, i, &kb);
        assert_int_equal(ka, kb);
        assert_memory_equal(ra, rb, w * sizeof(float));
    }
    float ba = pst_sparse_model_bias(a), bb = pst_sparse_model_bias(b);
    assert_memory_equal(&ba, &bb, sizeof(float));
}

static void run_stops_at_the_best_epoch_and_restores_it(void **state)
{
    (void)state;
    enum { EPOCHS = 30, PATIENCE = 2 };
    double curve[EPOCHS];
    assert_int_equal(validation_curve(EPOCHS, curve), EPOCHS);
    int best = 1;
    for (int e = 2; e <= EPOCHS; e++)
        if (curve[e - 1] < curve[best - 1])
            best = e;
    /* the constructed case: the loss falls for a few epochs, then rises for good */
    assert_true(best >= 3 && best + PATIENCE < EPOCHS);
    assert_true(curve[best] > curve[best - 1] && curve[best + 1] > curve[best]);

    fixture_t f;
    fixture_setup(&f, EPOCHS, PATIENCE, true);
    assert_non_null(f.run.best);
    assert_int_equal(pst_sparse_run_train(&f.run, NULL), PST_OK);
    assert_int_equal(f.run.stop.best_epoch, best);
    assert_int_equal(f.run.epochs_run, best + PATIENCE);
    assert_true(f.run.stopped_early);
    assert_true(f.run.restored);
    assert_true(f.run.val.log_loss == curve[best - 1]); /* the validation figures are the best's */

    /* the restored weights are the snapshot's, bit for bit */
    const pst_sparse_snapshot_t *snap = &f.best.snap;
    assert_int_equal(f.best.epoch, best);
    assert_int_equal(snap->n_keys, pst_sparse_model_n_keys(f.model));
    for (size_t i = 0; i < snap->n_keys; i++) {
        uint64_t key = 0;
        const float *row = pst_sparse_model_entry(f.model, i, &key);
        assert_int_equal(key, snap->keys[i]);
        assert_memory_equal(row, snap->weights + i, sizeof(float));
    }
    float bias = pst_sparse_model_bias(f.model);
    assert_memory_equal(&bias, &snap->bias, sizeof(float));

    /* and those of a run that trained the best epoch's number of epochs and no more */
    fixture_t ref;
    fixture_setup(&ref, best, 0, true);
    assert_int_equal(pst_sparse_run_train(&ref.run, NULL), PST_OK);
    assert_false(ref.run.stopped_early);
    assert_same_weights(f.model, ref.model);
    assert_true(f.run.val.log_loss == ref.run.val.log_loss);
    fixture_teardown(&ref);
    fixture_teardown(&f);
}

static void run_without_restore_keeps_the_last_weights(void **state)
{
    (void)state;
    fixture_t f;
    fixture_setup(&f, 30, 2, false);
    assert_null(f.run.best);
    assert_int_equal(pst_sparse_run_train(&f.run, NULL), PST_OK);
    assert_true(f.run.stopped_early);
    assert_false(f.run.restored);
    int last = f.run.epochs_run;
    assert_int_equal(last, f.run.stop.best_epoch + 2);

    fixture_t ref;
    fixture_setup(&ref, last, 0, false);
    assert_int_equal(pst_sparse_run_train(&ref.run, NULL), PST_OK);
    assert_same_weights(f.model, ref.model);
    fixture_teardown(&ref);
    fixture_teardown(&f);
}

/* ---- snapshots ---- */

static pst_sparse_batch_t batch_of(const size_t *row_ptr, const uint64_t *keys, const float *y,
                                   size_t n_rows)
{
    return (pst_sparse_batch_t){.n_rows = n_rows, .row_ptr = row_ptr, .col64 = keys, .y = y};
}

static void restore_drops_rows_created_after_the_snapshot(void **state)
{
    (void)state;
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_FM);
    opts.spec.n_factors = 3;
    opts.init_scale = 0.1f;
    pst_sparse_model_t *m = pst_sparse_model_new(&opts, NULL);
    assert_non_null(m);
    const size_t row_ptr[3] = {0, 2, 4};
    const uint64_t first[4] = {5, 1ull << 40, 5, 9}, later[4] = {5, 77, 1ull << 50, 9};
    const float y[2] = {1.0f, 0.0f};
    pst_sparse_batch_t b1 = batch_of(row_ptr, first, y, 2), b2 = batch_of(row_ptr, later, y, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pst_sparse_model_update(m, &b1, NULL, NULL), PST_OK);
    pst_sparse_snapshot_t snap = {0};
    assert_int_equal(pst_sparse_model_snapshot(m, &snap, NULL), PST_OK);
    assert_int_equal(snap.n_keys, 3);
    float before[3][4], prob_before[2], prob_after[2];
    for (size_t i = 0; i < 3; i++)
        memcpy(before[i], pst_sparse_model_entry(m, i, NULL), sizeof before[i]);
    float bias_before = pst_sparse_model_bias(m);
    assert_int_equal(pst_sparse_model_predict(m, &b2, prob_before, NULL), PST_OK);

    for (int i = 0; i < 3; i++)
        assert_int_equal(pst_sparse_model_update(m, &b2, NULL, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_n_keys(m), 5);
    assert_true(memcmp(before[0], pst_sparse_model_entry(m, 0, NULL), sizeof before[0]) != 0);

    assert_int_equal(pst_sparse_model_restore(m, &snap, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_n_keys(m), 3);
    assert_null(pst_sparse_model_row(m, 77));
    assert_null(pst_sparse_model_row(m, 1ull << 50));
    for (size_t i = 0; i < 3; i++) {
        uint64_t key = 0;
        assert_memory_equal(before[i], pst_sparse_model_entry(m, i, &key), sizeof before[i]);
        assert_ptr_equal(pst_sparse_model_row(m, key), pst_sparse_model_entry(m, i, NULL));
    }
    float bias = pst_sparse_model_bias(m);
    assert_memory_equal(&bias, &bias_before, sizeof bias);
    assert_int_equal(pst_sparse_model_predict(m, &b2, prob_after, NULL), PST_OK);
    assert_memory_equal(prob_before, prob_after, sizeof prob_after);
    /* the model trains on after a restore, creating the dropped keys again */
    assert_int_equal(pst_sparse_model_update(m, &b2, NULL, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_n_keys(m), 5);
    assert_non_null(pst_sparse_model_row(m, 77));
    pst_sparse_snapshot_fini(&snap);
    pst_sparse_model_destroy(&m);
}

static void restore_refuses_another_models_snapshot(void **state)
{
    (void)state;
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_LR);
    pst_sparse_model_t *a = pst_sparse_model_new(&opts, NULL),
                       *b = pst_sparse_model_new(&opts, NULL);
    assert_true(a != NULL && b != NULL);
    const size_t row_ptr[2] = {0, 2};
    const uint64_t ka[2] = {1, 2}, kb[2] = {2, 1};
    const float y[1] = {1.0f};
    pst_sparse_batch_t ba = batch_of(row_ptr, ka, y, 1), bb = batch_of(row_ptr, kb, y, 1);
    assert_int_equal(pst_sparse_model_update(a, &ba, NULL, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_update(b, &bb, NULL, NULL), PST_OK);
    pst_sparse_snapshot_t snap = {0};
    assert_int_equal(pst_sparse_model_snapshot(a, &snap, NULL), PST_OK);
    pst_err_t err = {0};
    assert_int_equal(pst_sparse_model_restore(b, &snap, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "row 0 is key 1, not 2"));
    pst_sparse_snapshot_fini(&snap);
    pst_sparse_model_destroy(&a);
    pst_sparse_model_destroy(&b);
}

/* Wide & deep: the rows and the dense stack kept at one step come back bit for bit. */
static void wide_deep_best_restores_rows_and_dense_stack(void **state)
{
    (void)state;
    const pst_layer_spec_t hidden[2] = {{.kind = PST_LAYER_DENSE, .units = 4},
                                        {.kind = PST_LAYER_RELU}};
    pst_wide_deep_spec_t spec = {
        .n_fields = 2, .dim = 2, .hidden = hidden, .n_hidden = 2, .max_batch = 2};
    pst_wd_local_opts_t o = {.dense_lr = 0.05f, .dense_seed = 3, .dropout_seed = 4};
    pst_sparse_train_opts_defaults(&o.rows, PST_SPARSE_FM);
    o.rows.spec.n_factors = 2;
    pst_optim_cfg_defaults(&o.dense, PST_OPT_ADAGRAD);
    pst_wd_local_t *wd = pst_wd_local_new(&spec, &o, NULL);
    assert_non_null(wd);
    const size_t row_ptr[3] = {0, 2, 4};
    const uint64_t first[4] = {0, 1, 2, 3}, later[4] = {0, 5, 2, 7};
    const float y[2] = {1.0f, 0.0f};
    pst_sparse_batch_t b1 = batch_of(row_ptr, first, y, 2), b2 = batch_of(row_ptr, later, y, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pst_wd_local_update(wd, &b1, NULL, NULL), PST_OK);
    pst_sparse_best_t best;
    pst_sparse_best_init_wd(&best, wd);
    assert_int_equal(pst_sparse_best_save(&best, 1, NULL), PST_OK);
    pst_model_t *mlp = pst_wide_deep_mlp(pst_wd_local_model(wd));
    size_t n_dense = pst_model_n_params(mlp);
    float *dense = malloc(n_dense * sizeof(float));
    assert_non_null(dense);
    memcpy(dense, pst_model_params(mlp), n_dense * sizeof(float));
    float prob_before[2], prob_after[2];
    assert_int_equal(pst_wd_local_predict(wd, &b2, prob_before, NULL), PST_OK);

    for (int i = 0; i < 3; i++)
        assert_int_equal(pst_wd_local_update(wd, &b2, NULL, NULL), PST_OK);
    assert_true(memcmp(dense, pst_model_params(mlp), n_dense * sizeof(float)) != 0);
    pst_sparse_trainer_t trainer = {wd, NULL, NULL, NULL, NULL};
    assert_int_equal(pst_sparse_best_restore(&best, &trainer, NULL), PST_OK);
    assert_ptr_equal(trainer.ctx, wd);
    assert_memory_equal(dense, pst_model_params(mlp), n_dense * sizeof(float));
    assert_int_equal(pst_sparse_model_n_keys(pst_wd_local_rows(wd)), 4);
    assert_int_equal(pst_wd_local_predict(wd, &b2, prob_after, NULL), PST_OK);
    assert_memory_equal(prob_before, prob_after, sizeof prob_after);
    free(dense);
    pst_sparse_best_fini(&best);
    pst_wd_local_destroy(&wd);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(early_stop_waits_patience_epochs_after_the_best),
        cmocka_unit_test(early_stop_counts_only_improvements_above_min_delta),
        cmocka_unit_test(run_stops_at_the_best_epoch_and_restores_it),
        cmocka_unit_test(run_without_restore_keeps_the_last_weights),
        cmocka_unit_test(restore_drops_rows_created_after_the_snapshot),
        cmocka_unit_test(restore_refuses_another_models_snapshot),
        cmocka_unit_test(wide_deep_best_restores_rows_and_dense_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
