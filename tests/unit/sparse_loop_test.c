/* Tests for worker/train/sparse_loop: epochs of windows and shuffled copies through a trainer's
 * hooks (the look-ahead of prepare too), training the local model on synthetic clicks until it
 * ranks like the true weights, and the steps a resumed run passes over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataset.h"
#include "common/eval/metrics.h"
#include "common/rng.h"
#include "worker/model/sparse_model.h"
#include "worker/train/sparse_loop.h"

static void assert_near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

/* ---- synthetic click sets ---- */

/* epochs passes of the sparse loop over train in batches of batch rows, the local model
 * stepping; *loss (may be NULL) = the last epoch's mean batch loss. */
static int train_model(pst_sparse_model_t *m, const pst_dataset_t *train, int epochs, size_t batch,
                       bool shuffle, double *loss, pst_err_t *err)
{
    pst_sparse_loop_opts_t o = {.batch_size = batch, .shuffle = shuffle, .seed = 0};
    pst_sparse_loop_t loop;
    pst_sparse_loop_init(&loop, pst_sparse_trainer_local(m), &o);
    pst_sparse_epoch_t e = {0};
    int rc = PST_OK;
    for (int epoch = 1; epoch <= epochs && rc == PST_OK; epoch++)
        rc = pst_sparse_loop_epoch(&loop, train, epoch, &e, err);
    pst_sparse_loop_fini(&loop);
    if (rc == PST_OK && loss != NULL)
        *loss = e.loss;
    return rc;
}

/* The model's log-loss and ROC-AUC on d (either may be NULL). */
static int evaluate_model(pst_sparse_model_t *m, const pst_dataset_t *d, double *log_loss,
                          double *auc, pst_err_t *err)
{
    pst_sparse_trainer_t t = pst_sparse_trainer_local(m);
    pst_binary_metrics_t metrics;
    int rc = pst_sparse_evaluate(&t, d, &metrics, err);
    if (log_loss != NULL)
        *log_loss = metrics.log_loss;
    if (auc != NULL)
        *auc = metrics.roc_auc;
    return rc;
}

/* A CSR classification set of n_rows rows with nnz entries each, columns and values to be filled.
 */
static pst_dataset_t *csr_new(size_t n_rows, size_t nnz, size_t n_features)
{
    pst_dataset_t *d = pst_dataset_new(n_rows, 0, PST_TASK_CLASSIFICATION);
    assert_non_null(d);
    free(d->x);
    d->x = NULL;
    d->n_features = n_features;
    d->n_classes = 2;
    d->row_ptr = malloc((n_rows + 1) * sizeof(size_t));
    d->col_idx = malloc(n_rows * nnz * sizeof(uint32_t));
    d->val = malloc(n_rows * nnz * sizeof(float));
    assert_true(d->row_ptr && d->col_idx && d->val);
    for (size_t i = 0; i <= n_rows; i++)
        d->row_ptr[i] = i * nnz;
    for (size_t k = 0; k < n_rows * nnz; k++)
        d->val[k] = 1.0f;
    return d;
}

static double sigmoid(double m)
{
    return 1.0 / (1.0 + exp(-m));
}

/* Rows of `nnz` distinct features out of n_features, one-hot; label ~ Bernoulli(sigmoid(bias +
 * sum of the true weights)); margin (n_rows) receives the true margins. */
static pst_dataset_t *logistic_set(size_t n_rows, size_t nnz, uint32_t n_features,
                                   const float *true_w, float true_bias, pst_rng_t *rng,
                                   float *margin)
{
    pst_dataset_t *d = csr_new(n_rows, nnz, n_features);
    for (size_t i = 0; i < n_rows; i++) {
        uint32_t *cols = d->col_idx + i * nnz;
        double m = true_bias;
        for (size_t j = 0; j < nnz; j++) {
            bool fresh;
            do {
                cols[j] = (uint32_t)pst_rng_below(rng, n_features);
                fresh = true;
                for (size_t l = 0; l < j; l++)
                    fresh = fresh && cols[l] != cols[j];
            } while (!fresh);
            m += true_w[cols[j]];
        }
        margin[i] = (float)m;
        d->y[i] = pst_rng_uniform(rng) < sigmoid(m) ? 1.0f : 0.0f;
    }
    return d;
}

/* Rows of 10 one-hot features out of 5,000 with true weights N(0, 0.7^2) and bias -0.5. Sparse LR
 * trained with FTRL ranks 20,000 held-out rows within 0.02 AUC of the true weights. It gets
 * 200,000 training rows (400 per feature): with 16,000 (32 per feature) even the best
 * L2-regularised fit by L-BFGS in PyTorch stays 0.09 below the true weights' AUC. */
static void lr_ftrl_learns_true_weights(void **state)
{
    enum { N_FEATURES = 5000, NNZ = 10, N_TRAIN = 200000, N_TEST = 20000 };
    pst_rng_t rng;
    pst_rng_init(&rng, 2024);
    float *true_w = malloc(N_FEATURES * sizeof(float));
    for (int j = 0; j < N_FEATURES; j++)
        true_w[j] = (float)(0.7 * pst_rng_normal(&rng));
    float *margin = malloc(N_TRAIN * sizeof(float));
    pst_dataset_t *train = logistic_set(N_TRAIN, NNZ, N_FEATURES, true_w, -0.5f, &rng, margin);
    pst_dataset_t *test = logistic_set(N_TEST, NNZ, N_FEATURES, true_w, -0.5f, &rng, margin);
    double true_auc = pst_roc_auc(margin, test->y, N_TEST);

    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_LR);
    /* beta, l1 and l2 act on mean-over-batch gradients: the per-example 1, 0.5, 1 divided by 32 */
    opts.ftrl = (pst_ftrl_cfg_t){.alpha = 0.1f, .beta = 0.03f, .l1 = 0.015f, .l2 = 0.03f};
    pst_err_t err = {0};
    pst_sparse_model_t *model = pst_sparse_model_new(&opts, &err);
    assert_non_null(model);
    double train_loss = 0.0, test_loss = 0.0, auc = 0.0;
    assert_int_equal(train_model(model, train, 2, 32, true, &train_loss, &err), PST_OK);
    assert_int_equal(evaluate_model(model, test, &test_loss, &auc, &err), PST_OK);
    print_message("LR FTRL: true AUC %.4f, model AUC %.4f, train loss %.4f, test loss %.4f, "
                  "%zu keys\n",
                  true_auc, auc, train_loss, test_loss, pst_sparse_model_n_keys(model));
    assert_true(true_auc > 0.85);
    assert_true(auc > true_auc - 0.02);
    assert_true(test_loss < 0.5); /* an untrained model scores log 2 = 0.693 */
    assert_int_equal(pst_sparse_model_n_keys(model), N_FEATURES);

    pst_sparse_model_destroy(&model);
    pst_sparse_model_destroy(&model);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&test);
    free(true_w);
    free(margin);
}

/* Two categorical fields A and B of 50 values each whose label depends only on their pairwise
 * interaction 1.5 <u_a, u_b> (u in R^2, N(0, 1)), plus 4 one-hot noise features. LR sees no
 * signal in either field alone; an FM (k = 4) learns the interaction. */
static pst_dataset_t *interaction_set(size_t n_rows, const float *u, pst_rng_t *rng, float *margin)
{
    enum { N_VALUES = 50, NNZ = 6, N_NOISE = 1000 };
    pst_dataset_t *d = csr_new(n_rows, NNZ, 2 * N_VALUES + N_NOISE);
    for (size_t i = 0; i < n_rows; i++) {
        uint32_t *cols = d->col_idx + i * NNZ;
        uint32_t a = (uint32_t)pst_rng_below(rng, N_VALUES);
        uint32_t b = (uint32_t)pst_rng_below(rng, N_VALUES);
        cols[0] = a;
        cols[1] = N_VALUES + b;
        for (int j = 2; j < NNZ; j++)
            cols[j] = 2 * N_VALUES + (uint32_t)pst_rng_below(rng, N_NOISE);
        double m =
            1.5 * (u[2 * a] * u[2 * (N_VALUES + b)] + u[2 * a + 1] * u[2 * (N_VALUES + b) + 1]);
        margin[i] = (float)m;
        d->y[i] = pst_rng_uniform(rng) < sigmoid(m) ? 1.0f : 0.0f;
    }
    return d;
}

static double train_and_score(const pst_sparse_train_opts_t *opts, const pst_dataset_t *train,
                              const pst_dataset_t *test)
{
    enum { EPOCHS = 4, BATCH = 32 };
    pst_err_t err = {0};
    pst_sparse_model_t *model = pst_sparse_model_new(opts, &err);
    assert_non_null(model);
    double auc = 0.0;
    assert_int_equal(train_model(model, train, EPOCHS, BATCH, true, NULL, &err), PST_OK);
    assert_int_equal(evaluate_model(model, test, NULL, &auc, &err), PST_OK);
    pst_sparse_model_destroy(&model);
    return auc;
}

static void fm_beats_lr_on_interactions(void **state)
{
    enum { N_TRAIN = 16000, N_TEST = 4000 };
    pst_rng_t rng;
    pst_rng_init(&rng, 77);
    float u[2 * 100];
    for (int i = 0; i < 200; i++)
        u[i] = (float)pst_rng_normal(&rng);
    float *margin = malloc(N_TRAIN * sizeof(float));
    pst_dataset_t *train = interaction_set(N_TRAIN, u, &rng, margin);
    pst_dataset_t *test = interaction_set(N_TEST, u, &rng, margin);
    double true_auc = pst_roc_auc(margin, test->y, N_TEST);

    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_LR);
    opts.ftrl = (pst_ftrl_cfg_t){.alpha = 0.1f, .beta = 0.03f, .l1 = 0.0f, .l2 = 0.1f};
    double lr_auc = train_and_score(&opts, train, test);

    opts.spec = (pst_sparse_spec_t){.kind = PST_SPARSE_FM, .n_factors = 4};
    opts.init_scale = 0.1f;
    double fm_auc = train_and_score(&opts, train, test);

    opts.optimizer = PST_SPARSE_OPT_ADAGRAD;
    opts.adagrad = (pst_ftrl_adagrad_cfg_t){.lr = 0.1f, .eps = 1e-10f, .l2 = 0.0f};
    double fm_adagrad_auc = train_and_score(&opts, train, test);
    print_message("interactions: true AUC %.4f, LR %.4f, FM FTRL %.4f, FM AdaGrad %.4f\n", true_auc,
                  lr_auc, fm_auc, fm_adagrad_auc);
    assert_true(lr_auc < 0.6);
    assert_true(fm_auc > lr_auc + 0.15);
    assert_true(fm_auc > true_auc - 0.06);
    assert_true(fm_adagrad_auc > lr_auc + 0.1);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&test);
    free(margin);
}

/* Unshuffled training reads the dataset in place, one window of rows per step (the last one
 * short), and ends where explicit updates on hand-built batches of the same rows end. */
static void unshuffled_training_steps_through_windows(void **state)
{
    enum { N_ROWS = 10, NNZ = 3, BATCH = 4 };
    pst_rng_t rng;
    pst_rng_init(&rng, 8);
    pst_dataset_t *d = csr_new(N_ROWS, NNZ, 6);
    for (size_t k = 0; k < N_ROWS * NNZ; k++) {
        d->col_idx[k] = (uint32_t)pst_rng_below(&rng, 6);
        d->val[k] = (float)pst_rng_uniform(&rng);
    }
    for (size_t i = 0; i < N_ROWS; i++)
        d->y[i] = (float)(i % 3 == 0);
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_FM);
    opts.spec.n_factors = 2;
    opts.optimizer = PST_SPARSE_OPT_ADAGRAD;
    pst_sparse_model_t *trained = pst_sparse_model_new(&opts, NULL);
    pst_sparse_model_t *stepped = pst_sparse_model_new(&opts, NULL);
    assert_non_null(trained);
    assert_non_null(stepped);
    double loss = 0.0, sum = 0.0, batch_loss = 0.0;
    assert_int_equal(train_model(trained, d, 1, BATCH, false, &loss, NULL), PST_OK);

    for (size_t start = 0; start < N_ROWS; start += BATCH) {
        size_t len = N_ROWS - start < BATCH ? N_ROWS - start : BATCH;
        size_t row_ptr[BATCH + 1];
        uint64_t col[BATCH * NNZ];
        for (size_t i = 0; i <= len; i++)
            row_ptr[i] = i * NNZ;
        for (size_t k = 0; k < len * NNZ; k++)
            col[k] = d->col_idx[start * NNZ + k];
        pst_sparse_batch_t b = {.n_rows = len,
                                .row_ptr = row_ptr,
                                .col64 = col,
                                .val = d->val + start * NNZ,
                                .y = d->y + start};
        assert_int_equal(pst_sparse_model_update(stepped, &b, &batch_loss, NULL), PST_OK);
        sum += batch_loss;
    }
    assert_near(loss, sum / 3.0, 1e-9);
    assert_int_equal(pst_sparse_model_n_keys(trained), pst_sparse_model_n_keys(stepped));
    for (size_t i = 0; i < pst_sparse_model_n_keys(trained); i++) {
        uint64_t key = 0;
        const float *a = pst_sparse_model_entry(trained, i, &key);
        const float *b = pst_sparse_model_row(stepped, key);
        assert_non_null(b);
        for (int j = 0; j < 3; j++)
            assert_true(a[j] == b[j]);
    }
    assert_true(pst_sparse_model_bias(trained) == pst_sparse_model_bias(stepped));
    pst_sparse_model_destroy(&trained);
    pst_sparse_model_destroy(&stepped);
    pst_dataset_destroy(&d);
}

/* The first epoch reads the rows as stored even when shuffling (the same steps as without), later
 * epochs copy the rows in a shuffled order, and steps_per_epoch caps an epoch's steps. */
static void shuffling_starts_with_the_second_epoch(void **state)
{
    enum { N_ROWS = 50, NNZ = 4, BATCH = 8 };
    pst_rng_t rng;
    pst_rng_init(&rng, 12);
    pst_dataset_t *d = csr_new(N_ROWS, NNZ, 30);
    for (size_t k = 0; k < N_ROWS * NNZ; k++)
        d->col_idx[k] = (uint32_t)pst_rng_below(&rng, 30);
    for (size_t i = 0; i < N_ROWS; i++)
        d->y[i] = (float)(i % 4 == 1);
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_LR);
    pst_sparse_model_t *m[3];
    pst_sparse_loop_t loop[3];
    const bool shuffle[3] = {false, true, true};
    const long steps[3] = {0, 0, 2};
    pst_sparse_epoch_t e[3];
    for (int i = 0; i < 3; i++) {
        m[i] = pst_sparse_model_new(&opts, NULL);
        assert_non_null(m[i]);
        pst_sparse_loop_opts_t o = {
            .batch_size = BATCH, .shuffle = shuffle[i], .seed = 3, .steps_per_epoch = steps[i]};
        pst_sparse_loop_init(&loop[i], pst_sparse_trainer_local(m[i]), &o);
        assert_int_equal(pst_sparse_loop_epoch(&loop[i], d, 1, &e[i], NULL), PST_OK);
    }
    assert_int_equal(e[0].steps, 7);
    assert_int_equal(e[0].rows, N_ROWS);
    assert_int_equal(e[0].nnz, N_ROWS * NNZ);
    assert_true(e[0].loss == e[1].loss);
    assert_true(pst_sparse_model_bias(m[0]) == pst_sparse_model_bias(m[1]));
    assert_null(loop[1].order);
    assert_int_equal(e[2].steps, 2);
    assert_int_equal(e[2].rows, 2 * BATCH);

    assert_int_equal(pst_sparse_loop_epoch(&loop[0], d, 2, &e[0], NULL), PST_OK);
    assert_int_equal(pst_sparse_loop_epoch(&loop[1], d, 2, &e[1], NULL), PST_OK);
    assert_non_null(loop[1].order);
    bool moved = false;
    for (size_t i = 0; i < N_ROWS; i++)
        moved = moved || loop[1].order[i] != i;
    assert_true(moved);
    assert_int_equal(e[1].rows, N_ROWS);
    assert_true(e[0].loss != e[1].loss);
    for (int i = 0; i < 3; i++) {
        pst_sparse_loop_fini(&loop[i]);
        pst_sparse_model_destroy(&m[i]);
    }
    pst_dataset_destroy(&d);
}

/* A trainer that records a fingerprint of every batch it is asked to step. */
typedef struct skip_recorder {
    double seen[64];
    int n;
} skip_recorder_t;

static double batch_print(const pst_sparse_batch_t *b)
{
    double f = (double)b->n_rows;
    for (size_t k = b->row_ptr[0]; k < b->row_ptr[b->n_rows]; k++)
        f += (double)(b->col32 ? b->col32[k] : b->col64[k]) * (double)(k - b->row_ptr[0] + 1);
    return f;
}

static int skip_record_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    (void)err;
    skip_recorder_t *r = ctx;
    assert_true(r->n < 64);
    r->seen[r->n++] = batch_print(b);
    *loss = 0.5;
    return PST_OK;
}

/* n_rows rows of nnz keys below 40, drawn from a fixed seed. */
static pst_dataset_t *random_csr(size_t n_rows, size_t nnz)
{
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_dataset_t *d = csr_new(n_rows, nnz, 40);
    for (size_t k = 0; k < n_rows * nnz; k++)
        d->col_idx[k] = (uint32_t)pst_rng_below(&rng, 40);
    return d;
}

/* A resumed run's loop passes over skip_steps batches, across epochs, and then steps exactly the
 * batches an uninterrupted loop steps after them (the skipped epochs' shuffles still drawn). */
static void skipped_steps_resume_where_the_run_was(void **state)
{
    (void)state;
    enum { N_ROWS = 50, NNZ = 3, BATCH = 8, EPOCHS = 3, SKIP = 10 };
    pst_dataset_t *d = random_csr(N_ROWS, NNZ);
    skip_recorder_t whole = {0}, resumed = {0};
    pst_sparse_epoch_t e[EPOCHS];
    for (int run = 0; run < 2; run++) {
        skip_recorder_t *r = run == 0 ? &whole : &resumed;
        pst_sparse_loop_opts_t o = {
            .batch_size = BATCH, .shuffle = true, .seed = 9, .skip_steps = run == 0 ? 0 : SKIP};
        pst_sparse_loop_t loop;
        pst_sparse_loop_init(&loop, (pst_sparse_trainer_t){r, skip_record_step, NULL, NULL, NULL},
                             &o);
        for (int epoch = 1; epoch <= EPOCHS; epoch++)
            assert_int_equal(pst_sparse_loop_epoch(&loop, d, epoch, &e[epoch - 1], NULL), PST_OK);
        pst_sparse_loop_fini(&loop);
    }
    assert_int_equal(whole.n, 7 * EPOCHS);
    assert_int_equal(resumed.n, 7 * EPOCHS - SKIP);
    for (int i = 0; i < resumed.n; i++)
        assert_true(resumed.seen[i] == whole.seen[SKIP + i]);
    /* epoch 1 wholly passed over, epoch 2 from its fourth batch, epoch 3 whole */
    assert_int_equal(e[0].steps, 0);
    assert_int_equal(e[0].rows, 0);
    assert_true(isnan(e[0].loss));
    assert_int_equal(e[1].steps, 4);
    assert_int_equal(e[1].rows, N_ROWS - 3 * BATCH);
    assert_int_equal(e[2].steps, 7);
    pst_dataset_destroy(&d);
}

/* A trainer that falls behind the servers: after its after[i]-th step its rejoin hook says
 * behind[i] steps went on without it. With look-ahead, every stepped batch must be the one
 * prepared last (a rejoin forgets the prepared one). */
typedef struct rejoin_recorder {
    skip_recorder_t rec;
    int after[2];
    uint64_t behind[2];
    double prepared[PST_SPARSE_LOOP_MAX_AHEAD + 1]; /* prepared, not yet stepped, oldest first */
    int n_prepared, mismatched;
} rejoin_recorder_t;

static int rejoin_record_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    rejoin_recorder_t *r = ctx;
    if (r->n_prepared > 0) {
        r->mismatched += r->prepared[0] != batch_print(b);
        memmove(r->prepared, r->prepared + 1, (size_t)(r->n_prepared - 1) * sizeof r->prepared[0]);
        r->n_prepared--;
    }
    return skip_record_step(&r->rec, b, loss, err);
}

static int rejoin_record_prepare(void *ctx, const pst_sparse_batch_t *next, pst_err_t *err)
{
    (void)err;
    rejoin_recorder_t *r = ctx;
    assert_true(r->n_prepared <= PST_SPARSE_LOOP_MAX_AHEAD);
    r->prepared[r->n_prepared++] = batch_print(next);
    return PST_OK;
}

static uint64_t rejoin_record_behind(void *ctx)
{
    rejoin_recorder_t *r = ctx;
    for (int i = 0; i < 2; i++) {
        if (r->rec.n == r->after[i]) {
            r->n_prepared = 0; /* the trainer forgets what it prepared */
            return r->behind[i];
        }
    }
    return 0;
}

/* A worker back from being dropped passes over the batches of the steps the servers went on
 * without it, inside an epoch and into the next ones, and then steps exactly the batches of the
 * uninterrupted run's steps; with look-ahead (1 to the most) the batches from the one it rejoins
 * at are prepared again. */
static void rejoining_passes_over_the_steps_missed(void **state)
{
    (void)state;
    enum { N_ROWS = 50, NNZ = 3, BATCH = 8, EPOCHS = 3 };
    pst_dataset_t *d = random_csr(N_ROWS, NNZ);
    pst_sparse_loop_opts_t o = {.batch_size = BATCH, .shuffle = true, .seed = 9};
    skip_recorder_t whole = {0};
    pst_sparse_loop_t loop;
    pst_sparse_epoch_t e[EPOCHS];
    pst_sparse_loop_init(&loop, (pst_sparse_trainer_t){&whole, skip_record_step, NULL, NULL, NULL},
                         &o);
    for (int epoch = 1; epoch <= EPOCHS; epoch++)
        assert_int_equal(pst_sparse_loop_epoch(&loop, d, epoch, &e[epoch - 1], NULL), PST_OK);
    pst_sparse_loop_fini(&loop);
    assert_int_equal(whole.n, 7 * EPOCHS);
    /* after step 1 (epoch 1), 3 steps missed: step 5 next; after step 7 (epoch 2's first), 9
     * missed: epoch 2's end and epoch 3's first three batches passed over */
    const int want[] = {0, 1, 5, 6, 7, 17, 18, 19, 20};
    for (int look_ahead = 0; look_ahead <= PST_SPARSE_LOOP_MAX_AHEAD; look_ahead++) {
        rejoin_recorder_t r = {.after = {2, 5}, .behind = {3, 9}};
        pst_sparse_trainer_t t = {&r, rejoin_record_step, NULL,
                                  look_ahead ? rejoin_record_prepare : NULL, rejoin_record_behind};
        pst_sparse_loop_opts_t deep = o;
        deep.ahead = look_ahead;
        pst_sparse_loop_init(&loop, t, &deep);
        for (int epoch = 1; epoch <= EPOCHS; epoch++)
            assert_int_equal(pst_sparse_loop_epoch(&loop, d, epoch, &e[epoch - 1], NULL), PST_OK);
        pst_sparse_loop_fini(&loop);
        assert_int_equal(r.rec.n, 9);
        for (int i = 0; i < r.rec.n; i++)
            assert_true(r.rec.seen[i] == whole.seen[want[i]]);
        assert_int_equal(r.mismatched, 0);
        assert_int_equal(r.n_prepared, 0);
        assert_int_equal(e[0].steps, 4);
        assert_int_equal(e[1].steps, 1);
        assert_int_equal(e[1].rows, BATCH);
        assert_int_equal(e[2].steps, 4);
        assert_int_equal(e[2].rows, N_ROWS - 3 * BATCH);
    }
    pst_dataset_destroy(&d);
}

/* ---- look-ahead ---- */

/* A local model behind hooks that record the batches: a fingerprint of each prepared batch, and
 * of each stepped one, which must be the oldest prepared one (same contents, still intact). */
typedef struct recorder {
    pst_sparse_model_t *model;
    uint64_t queue[PST_SPARSE_LOOP_MAX_AHEAD + 1]; /* fingerprints of the prepared batches not
                                                    * yet stepped, oldest first */
    size_t queued, limit, max_queued;              /* limit: the look-ahead + 1 */
    size_t n_prepared, n_steps, n_matched;
    uint64_t trail; /* fingerprints of every stepped batch, folded */
} recorder_t;

static uint64_t fingerprint(const pst_sparse_batch_t *b)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ b->n_rows;
    for (size_t i = 0; i < b->n_rows; i++) {
        h = h * 1099511628211ull + (uint64_t)(b->y[i] * 7.0f);
        for (size_t k = b->row_ptr[i]; k < b->row_ptr[i + 1]; k++)
            h = h * 1099511628211ull + b->col32[k] + 1;
    }
    return h;
}

static int recorder_prepare(void *ctx, const pst_sparse_batch_t *next, pst_err_t *err)
{
    recorder_t *r = ctx;
    if (r->queued == r->limit)
        return pst_err_set(err, PST_ESTATE, "batch %zu prepared before a step", r->limit + 1);
    r->queue[r->queued++] = fingerprint(next);
    r->max_queued = r->queued > r->max_queued ? r->queued : r->max_queued;
    r->n_prepared++;
    return PST_OK;
}

static int recorder_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    recorder_t *r = ctx;
    uint64_t f = fingerprint(b);
    if (r->queued > 0) {
        r->n_matched += r->queue[0] == f;
        memmove(r->queue, r->queue + 1, (r->queued - 1) * sizeof r->queue[0]);
        r->queued--;
    }
    r->n_steps++;
    r->trail = r->trail * 31 + f;
    return pst_sparse_model_update(r->model, b, loss, err);
}

static int recorder_predict(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    return pst_sparse_model_predict(((recorder_t *)ctx)->model, b, prob, err);
}

/* With a prepare hook the loop hands over an epoch's first batch (first `ahead` batches), then
 * batch k + ahead before step k, every one intact until its own step (windows in the first epoch,
 * shuffled copies in later ones, a capped epoch), and trains exactly as without it: the same
 * batches, the same losses, bit-identical weights. Look-ahead 1, 2 and 3. */
static void look_ahead_prepares_every_next_batch(void **state)
{
    enum { N_ROWS = 61, NNZ = 5, BATCH = 8, EPOCHS = 3 };
    pst_rng_t rng;
    pst_rng_init(&rng, 21);
    pst_dataset_t *d = csr_new(N_ROWS, NNZ, 40);
    for (size_t k = 0; k < N_ROWS * NNZ; k++)
        d->col_idx[k] = (uint32_t)pst_rng_below(&rng, 40);
    for (size_t i = 0; i < N_ROWS; i++)
        d->y[i] = (float)(pst_rng_uniform(&rng) < 0.3);
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_FM);
    opts.spec.n_factors = 2;
    const long caps[2] = {0, 5};
    for (int run = 0; run < 2 * PST_SPARSE_LOOP_MAX_AHEAD; run++) {
        int c = run % 2, ahead = 1 + run / 2;
        recorder_t rec[2];
        pst_sparse_loop_t loop[2];
        pst_sparse_epoch_t e[2][EPOCHS];
        for (int i = 0; i < 2; i++) {
            memset(&rec[i], 0, sizeof rec[i]);
            rec[i].model = pst_sparse_model_new(&opts, NULL);
            rec[i].limit = (size_t)ahead + 1;
            assert_non_null(rec[i].model);
            pst_sparse_trainer_t t = {&rec[i], recorder_step, recorder_predict,
                                      i == 1 ? recorder_prepare : NULL, NULL};
            pst_sparse_loop_opts_t o = {.batch_size = BATCH,
                                        .shuffle = true,
                                        .seed = 5,
                                        .steps_per_epoch = caps[c],
                                        .ahead = ahead};
            pst_sparse_loop_init(&loop[i], t, &o);
            for (int epoch = 1; epoch <= EPOCHS; epoch++)
                assert_int_equal(pst_sparse_loop_epoch(&loop[i], d, epoch, &e[i][epoch - 1], NULL),
                                 PST_OK);
        }
        size_t steps = caps[c] > 0 ? (size_t)caps[c] : (N_ROWS + BATCH - 1) / BATCH;
        assert_int_equal(rec[0].n_prepared, 0);
        assert_int_equal(rec[1].n_steps, EPOCHS * steps);
        /* every batch prepared before its step, none past an epoch's end */
        assert_int_equal(rec[1].n_prepared, EPOCHS * steps);
        assert_int_equal(rec[1].n_matched, EPOCHS * steps);
        assert_int_equal(rec[1].queued, 0);
        /* the look-ahead asked for: ahead batches beyond the one about to step */
        assert_int_equal(rec[1].max_queued, (size_t)ahead + 1);
        assert_true(rec[0].trail == rec[1].trail);
        for (int epoch = 0; epoch < EPOCHS; epoch++) {
            assert_true(e[0][epoch].loss == e[1][epoch].loss);
            assert_int_equal(e[0][epoch].rows, e[1][epoch].rows);
            assert_int_equal(e[0][epoch].nnz, e[1][epoch].nnz);
        }
        size_t n_keys = pst_sparse_model_n_keys(rec[0].model);
        assert_int_equal(n_keys, pst_sparse_model_n_keys(rec[1].model));
        for (size_t i = 0; i < n_keys; i++) {
            uint64_t key = 0;
            const float *a = pst_sparse_model_entry(rec[0].model, i, &key);
            const float *b = pst_sparse_model_row(rec[1].model, key);
            assert_non_null(b);
            assert_memory_equal(a, b, 3 * sizeof(float));
        }
        assert_true(pst_sparse_model_bias(rec[0].model) == pst_sparse_model_bias(rec[1].model));
        for (int i = 0; i < 2; i++) {
            pst_sparse_loop_fini(&loop[i]);
            pst_sparse_model_destroy(&rec[i].model);
        }
    }
    pst_dataset_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lr_ftrl_learns_true_weights),
        cmocka_unit_test(fm_beats_lr_on_interactions),
        cmocka_unit_test(unshuffled_training_steps_through_windows),
        cmocka_unit_test(shuffling_starts_with_the_second_epoch),
        cmocka_unit_test(skipped_steps_resume_where_the_run_was),
        cmocka_unit_test(rejoining_passes_over_the_steps_missed),
        cmocka_unit_test(look_ahead_prepares_every_next_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
