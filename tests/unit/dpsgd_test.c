/* Tests for worker/train/dpsgd and DP-SGD in the dense loop: per-example clipping (clipped norms
 * at the bound, smaller gradients untouched), Poisson sampling, noise statistics, the per-worker
 * noise shares adding up to the full variance, a step's gradient against an independent
 * computation, epsilon per epoch equal to the accountant's, the budget stop, calibration and the
 * errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/fed/dpacct.h"
#include "common/log.h"
#include "worker/model/loss.h"
#include "worker/train/dpsgd.h"
#include "worker/train/train.h"

/* Gaussian blobs, one per class, in 4 dimensions. */
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
            d->x[i * 4 + j] = (float)(pst_rng_normal(&rng) * 0.8 + (j == c ? 1.5 : 0.0));
    }
    return d;
}

static pst_model_t *mlp(int n_classes, int batch, bool batchnorm)
{
    pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 8},
                                 {.kind = batchnorm ? PST_LAYER_BATCHNORM : PST_LAYER_TANH},
                                 {.kind = PST_LAYER_DENSE, .units = n_classes},
                                 {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *m = pst_model_new(4, layers, 4, batch, NULL);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    return m;
}

static double norm2(const float *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return sqrt(s);
}

static void clipping_bounds_large_and_keeps_small(void **state)
{
    (void)state;
    float big[4] = {3, -4, 0, 12}, small[4] = {0.1f, -0.2f, 0.3f, 0.05f};
    float small_copy[4], sum[4] = {0};
    memcpy(small_copy, small, sizeof small);
    assert_true(pst_dpsgd_clip_add(sum, big, 4, 2.0) == 13.0);
    assert_true(fabs(norm2(big, 4) - 2.0) < 1e-6);
    /* Scaled, not reshaped: the direction is kept. */
    assert_true(fabs(big[0] / big[1] - (3.0 / -4.0)) < 1e-6 && big[2] == 0.0f);
    double n_small = pst_dpsgd_clip_add(sum, small, 4, 2.0);
    assert_true(n_small < 2.0);
    assert_memory_equal(small, small_copy, sizeof small);
    for (int i = 0; i < 4; i++)
        assert_true(sum[i] == big[i] + small[i]);
}

static void poisson_sample_rate_and_order(void **state)
{
    (void)state;
    enum { N = 1000, ROUNDS = 400 };
    size_t *idx = malloc(N * sizeof *idx);
    int *hits = calloc(N, sizeof *hits);
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    double total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        size_t m = pst_dpsgd_poisson_sample(&rng, 0.05, N, idx);
        for (size_t i = 0; i < m; i++) {
            assert_true(idx[i] < N);
            assert_true(i == 0 || idx[i] > idx[i - 1]);
            hits[idx[i]]++;
        }
        total += (double)m;
    }
    /* Batch size is Binomial(N, q): mean q N = 50, sd sqrt(N q (1 - q)) = 6.9 per round. */
    double mean = total / ROUNDS;
    assert_true(fabs(mean - 50.0) < 4 * 6.9 / sqrt(ROUNDS));
    /* Every row is eligible: the first and the last half are hit alike (each ~ 10000 +- 100). */
    long first = 0, last = 0;
    for (int i = 0; i < N / 2; i++)
        first += hits[i], last += hits[N / 2 + i];
    assert_true(labs(first - last) < 600);
    assert_int_equal(pst_dpsgd_poisson_sample(&rng, 0.0, N, idx), 0);
    assert_int_equal(pst_dpsgd_poisson_sample(&rng, 1.0, N, idx), N);
    free(idx);
    free(hits);
}

static void noise_has_the_stated_moments(void **state)
{
    (void)state;
    enum { N = 40000 };
    float *sum = malloc(N * sizeof *sum), *g = malloc(N * sizeof *g);
    for (int i = 0; i < N; i++)
        sum[i] = (float)(i % 7);
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    pst_dpsgd_noise_mean(g, sum, N, 1.5, 4.0, &rng);
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) {
        double z = g[i] * 4.0 - sum[i]; /* the noise alone */
        m += z;
        v += z * z;
    }
    m /= N;
    v = v / N - m * m;
    /* z ~ N(0, 2.25): mean's sd 1.5 / 200; variance's relative sd sqrt(2 / N) = 0.7%. */
    assert_true(fabs(m) < 4 * 1.5 / sqrt(N));
    assert_true(fabs(v / 2.25 - 1.0) < 4 * sqrt(2.0 / N));
    free(sum);
    free(g);
}

static int no_rows(void *ctx, const size_t *pos, size_t n, float *x, float *y, pst_err_t *err)
{
    (void)ctx, (void)pos, (void)n, (void)x, (void)y, (void)err;
    fail_msg("an empty sample gathers nothing");
    return PST_EINVAL;
}

/* Under mpirun each of W workers adds N(0, sigma^2 C^2 / W) and the server averages the pushes:
 * the applied noise, times the global batch W b, has variance sigma^2 C^2; the shares are
 * independent; and one worker adds what the local run adds. */
static void worker_noise_shares_add_to_the_full_variance(void **state)
{
    (void)state;
    /* q = W / 1e9: the samples are empty (checked), so a step's gradient is its noise alone. */
    enum { W = 4, STEPS = 60 };
    const double sigma = 1.3, clip = 0.7;
    pst_model_t *model = mlp(3, 1, false);
    size_t n_params = pst_model_n_params(model);
    pst_dpsgd_t *dp[W];
    for (int w = 0; w < W; w++) {
        pst_dp_opts_t o = {clip, sigma, 1e-5, 0, w};
        pst_dpsgd_setup_t s = {n_params, 10, 1000000000, W, 1, 1, 1, 77};
        assert_non_null(dp[w] = pst_dpsgd_new(&o, &s, NULL));
        assert_true(fabs(pst_dpsgd_noise_std(dp[w]) - sigma * clip / 2.0) < 1e-12);
    }
    pst_dp_opts_t o1 = {clip, sigma, 1e-5, 0, 0};
    pst_dpsgd_setup_t s1 = {n_params, 10, 1000000000, 1, 1, 1, 1, 77};
    pst_dpsgd_t *local = pst_dpsgd_new(&o1, &s1, NULL);
    float *share = malloc(W * n_params * sizeof *share), xb[4], yb[1];
    double v_total = 0, v_share = 0, cross = 0, count = 0;
    for (uint64_t clock = 0; clock < STEPS; clock++) {
        for (int w = 0; w < W; w++) {
            double loss;
            size_t m;
            assert_int_equal(pst_dpsgd_gradient(dp[w], model, &(pst_dpsgd_loss_t){0, true, 1, NULL},
                                                clock, no_rows, NULL, xb, yb, 1, NULL, &loss, &m,
                                                NULL),
                             PST_OK);
            assert_int_equal(m, 0);
            memcpy(share + w * n_params, pst_model_grads(model), n_params * sizeof(float));
        }
        for (size_t i = 0; i < n_params; i++) {
            double mean = 0; /* what the BSP server applies, times W b = W */
            for (int w = 0; w < W; w++)
                mean += share[w * n_params + i] / (double)W;
            v_total += (mean * W) * (mean * W);
            v_share += (double)share[i] * share[i];
            cross += (double)share[i] * share[n_params + i];
            count++;
        }
        /* Worker 0 of one is the local run, draw for draw. */
        double loss;
        size_t m;
        pst_dpsgd_gradient(local, model, &(pst_dpsgd_loss_t){0, true, 1, NULL}, clock, no_rows,
                           NULL, xb, yb, 1, NULL, &loss, &m, NULL);
        for (size_t i = 0; i < n_params; i++)
            assert_true(pst_model_grads(model)[i] == (float)(share[i] * 2.0));
    }
    double full = sigma * sigma * clip * clip, tol = 4 * sqrt(2.0 / count);
    assert_true(count > 3000);
    assert_true(fabs(v_total / count / full - 1.0) < tol);
    assert_true(fabs(v_share / count / (full / W) - 1.0) < tol);
    assert_true(fabs(cross / count) / (full / W) < 4 / sqrt(count));
    for (int w = 0; w < W; w++)
        pst_dpsgd_destroy(&dp[w]);
    pst_dpsgd_destroy(&local);
    pst_dpsgd_destroy(&local); /* safe twice */
    free(share);
    pst_model_destroy(&model);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct recorder {
    const pst_dataset_t *ds;
    size_t rows[4096];
    size_t n;
} recorder_t;

static int record_rows(void *ctx, const size_t *pos, size_t n, float *x, float *y, pst_err_t *err)
{
    (void)err;
    recorder_t *r = ctx;
    for (size_t i = 0; i < n; i++) {
        memcpy(x + i * 4, r->ds->x + pos[i] * 4, 4 * sizeof(float));
        y[i] = r->ds->y[pos[i]];
        r->rows[r->n++] = pos[i];
    }
    return PST_OK;
}

/* One step's gradient equals the clipped per-example gradients of the sampled rows, summed and
 * divided by the batch size, when the noise is negligible; and some rows were clipped, some not. */
static void step_gradient_is_the_clipped_sum(void **state)
{
    (void)state;
    pst_dataset_t *ds = blobs(200, 3, 1);
    pst_model_t *model = mlp(3, 8, false);
    size_t n_params = pst_model_n_params(model);
    /* The bound: the median per-example norm, so that about half the sample is clipped. */
    double norms[200], clip;
    float dout[3];
    for (size_t i = 0; i < 200; i++) {
        const float *out = pst_model_forward(model, ds->x + i * 4, 1, true, NULL);
        pst_loss_eval(PST_LOSS_SOFTMAX_CE, out, ds->y + i, 1, 3, 1, true, dout);
        pst_model_backward(model, dout, 1, true);
        norms[i] = norm2(pst_model_grads(model), n_params);
    }
    qsort(norms, 200, sizeof *norms, cmp_double);
    clip = norms[100];
    pst_dp_opts_t o = {clip, 1e-30, 1e-5, 0, 0};
    pst_dpsgd_setup_t s = {n_params, 200, 200, 1, 20, 10, 1, 5};
    pst_dpsgd_t *dp = pst_dpsgd_new(&o, &s, NULL);
    assert_true(pst_dpsgd_q(dp) == 0.1);
    recorder_t *rec = calloc(1, sizeof *rec);
    rec->ds = ds;
    float xb[8 * 4], yb[8];
    pst_dpsgd_loss_t loss = {PST_LOSS_SOFTMAX_CE, true, 1, NULL};
    double mean_loss;
    size_t m;
    assert_int_equal(pst_dpsgd_gradient(dp, model, &loss, 3, record_rows, rec, xb, yb, 8, NULL,
                                        &mean_loss, &m, NULL),
                     PST_OK);
    assert_int_equal(m, rec->n);
    assert_true(m > 5 && m < 40);
    float *got = malloc(n_params * sizeof *got), *want = calloc(n_params, sizeof *want);
    float *raw = malloc(n_params * sizeof *raw);
    memcpy(got, pst_model_grads(model), n_params * sizeof *got);
    int clipped = 0, kept = 0;
    for (size_t i = 0; i < m; i++) {
        const float *out = pst_model_forward(model, ds->x + rec->rows[i] * 4, 1, true, NULL);
        pst_loss_eval(PST_LOSS_SOFTMAX_CE, out, ds->y + rec->rows[i], 1, 3, 1, true, dout);
        pst_model_backward(model, dout, 1, true);
        memcpy(raw, pst_model_grads(model), n_params * sizeof *raw);
        double before = pst_dpsgd_clip_add(want, pst_model_grads(model), n_params, clip);
        double after = norm2(pst_model_grads(model), n_params);
        assert_true(fabs(before - norm2(raw, n_params)) < 1e-9 * before);
        assert_true(after <= clip * (1 + 1e-6));
        if (before > clip) {
            clipped++;
        } else {
            kept++;
            assert_memory_equal(raw, pst_model_grads(model), n_params * sizeof *raw);
        }
    }
    assert_true(clipped > 0 && kept > 0);
    for (size_t i = 0; i < n_params; i++)
        assert_true(fabs(got[i] - want[i] / 20.0) < 1e-7);
    free(got);
    free(want);
    free(raw);
    free(rec);
    pst_dpsgd_destroy(&dp);
    pst_model_destroy(&model);
    pst_dataset_destroy(&ds);
}

typedef struct epochs_seen {
    double eps[32];
    int n;
} epochs_seen_t;

static void on_epoch(void *ctx, const pst_epoch_stats_t *es)
{
    epochs_seen_t *e = ctx;
    e->eps[e->n++] = es->epsilon;
}

static void dp_opts(pst_train_opts_t *o, int epochs, double noise, double budget)
{
    pst_train_opts_defaults(o);
    o->epochs = epochs;
    o->batch_size = 20;
    o->seed = 9;
    o->sched.base_lr = 0.05f;
    o->dp = (pst_dp_opts_t){1.0, noise, 1e-5, budget, 0};
}

/* Epsilon per epoch is the accountant's: n steps of (q = 20/300, sigma) composed per epoch. */
static void epsilon_per_epoch_is_the_accountants(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(300, 3, 1), *val = blobs(90, 3, 2);
    pst_model_t *model = mlp(3, 20, false);
    pst_train_opts_t o;
    dp_opts(&o, 4, 1.1, 0);
    epochs_seen_t seen = {{0}, 0};
    pst_train_hooks_t hooks = {.ctx = &seen, .on_epoch = on_epoch};
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(model, train, val, &o, &hooks, &r, &err), PST_OK);
    assert_int_equal(seen.n, 4);
    assert_true(r.dp_q == 20.0 / 300.0 && r.dp_sigma == 1.1);
    pst_dpacct_t *acct = pst_dpacct_new(20.0 / 300.0, 1.1, NULL);
    for (int e = 0; e < 4; e++) {
        pst_dpacct_step_n(acct, 15); /* ceil(300 / 20) steps per epoch */
        double eps;
        pst_dpacct_epsilon(acct, 1e-5, &eps, NULL);
        assert_true(seen.eps[e] == eps);
        assert_true(e == 0 || seen.eps[e] > seen.eps[e - 1]);
    }
    assert_true(r.epsilon == seen.eps[3] && !r.stopped_at_budget);
    assert_int_equal(r.clock, 60);
    /* Private training still learns the blobs. */
    pst_eval_sums_t s;
    assert_int_equal(pst_eval_sums(model, val, 20, PST_LOSS_SOFTMAX_CE, 1, &s, &err), PST_OK);
    assert_true(s.correct / s.n > 0.75);
    pst_dpacct_destroy(&acct);
    pst_model_destroy(&model);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

/* With a budget between the second and the third epoch's epsilon, the run stops after two. */
static void stops_before_the_epoch_that_passes_the_budget(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(300, 3, 1);
    pst_dpacct_t *acct = pst_dpacct_new(20.0 / 300.0, 0.9, NULL);
    double eps2, eps3;
    pst_dpacct_step_n(acct, 30);
    pst_dpacct_epsilon(acct, 1e-5, &eps2, NULL);
    pst_dpacct_step_n(acct, 15);
    pst_dpacct_epsilon(acct, 1e-5, &eps3, NULL);
    pst_model_t *model = mlp(3, 20, false);
    pst_train_opts_t o;
    dp_opts(&o, 10, 0.9, 0.5 * (eps2 + eps3));
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(model, train, NULL, &o, NULL, &r, &err), PST_OK);
    assert_int_equal(r.epochs_run, 2);
    assert_int_equal(r.clock, 30);
    assert_true(r.stopped_at_budget);
    assert_true(r.epsilon == eps2 && r.epsilon_next == eps3);
    /* A budget below one epoch's epsilon is an error, not an untrained model. */
    dp_opts(&o, 10, 0.9, 0.01);
    assert_int_equal(pst_train_run(model, train, NULL, &o, NULL, &r, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.dp.epsilon_budget"));
    pst_dpacct_destroy(&acct);
    pst_model_destroy(&model);
    pst_dataset_destroy(&train);
}

/* A run resumed at clock 15 (one epoch done) first composes those 15 steps: its second epoch ends
 * at the uninterrupted run's epsilon, and the budget counts them. */
static void resumed_run_counts_the_steps_already_taken(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(300, 3, 1);
    pst_model_t *model = mlp(3, 20, false);
    pst_train_opts_t o;
    dp_opts(&o, 2, 1.1, 0);
    o.start_clock = 15;
    epochs_seen_t seen = {{0}, 0};
    pst_train_hooks_t hooks = {.ctx = &seen, .on_epoch = on_epoch};
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(model, train, NULL, &o, &hooks, &r, &err), PST_OK);
    assert_int_equal(seen.n, 1);
    pst_dpacct_t *acct = pst_dpacct_new(20.0 / 300.0, 1.1, NULL);
    double eps1, eps2;
    pst_dpacct_step_n(acct, 15);
    pst_dpacct_epsilon(acct, 1e-5, &eps1, NULL);
    pst_dpacct_step_n(acct, 15);
    pst_dpacct_epsilon(acct, 1e-5, &eps2, NULL);
    assert_true(seen.eps[0] == eps2 && r.epsilon == eps2);
    /* A budget between one and two epochs: the resumed run may not train its second. */
    dp_opts(&o, 2, 1.1, 0.5 * (eps1 + eps2));
    o.start_clock = 15;
    assert_int_equal(pst_train_run(model, train, NULL, &o, NULL, &r, &err), PST_OK);
    assert_int_equal(r.epochs_run, 0);
    assert_true(r.stopped_at_budget && r.epsilon == eps1 && r.clock == 15);
    pst_dpacct_destroy(&acct);
    pst_model_destroy(&model);
    pst_dataset_destroy(&train);
}

/* noise 0 with a budget: the smallest sigma that spends the budget in the run's epochs. */
static void calibrated_noise_spends_the_budget(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(300, 3, 1);
    pst_model_t *model = mlp(3, 20, false);
    pst_train_opts_t o;
    dp_opts(&o, 3, 0, 2.0);
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(model, train, NULL, &o, NULL, &r, &err), PST_OK);
    assert_int_equal(r.epochs_run, 3);
    assert_false(r.stopped_at_budget);
    assert_true(r.epsilon <= 2.0 && r.epsilon > 2.0 * (1 - 1e-4));
    double sigma;
    pst_dpacct_calibrate_sigma(20.0 / 300.0, 45, 2.0, 1e-5, PST_DPACCT_STANDARD, &sigma, NULL);
    assert_true(r.dp_sigma == sigma);
    pst_model_destroy(&model);
    pst_dataset_destroy(&train);
}

static void refuses_what_it_cannot_make_private(void **state)
{
    (void)state;
    pst_dataset_t *train = blobs(100, 3, 1);
    pst_train_opts_t o;
    pst_train_result_t r;
    pst_err_t err = {0};
    pst_model_t *bn = mlp(3, 20, true);
    dp_opts(&o, 1, 1.0, 0);
    assert_int_equal(pst_train_run(bn, train, NULL, &o, NULL, &r, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "batchnorm"));
    pst_model_t *model = mlp(3, 20, false);
    o.clip_norm = 1.0;
    assert_int_equal(pst_train_run(model, train, NULL, &o, NULL, &r, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.clip_norm"));
    dp_opts(&o, 1, 0, 0);
    assert_int_equal(pst_train_run(model, train, NULL, &o, NULL, &r, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.dp.noise"));
    dp_opts(&o, 1, 1.0, 0);
    o.dp.delta = 1.0;
    assert_int_equal(pst_train_run(model, train, NULL, &o, NULL, &r, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.dp.delta"));
    pst_dp_opts_t d = {1.0, 1.0, 1e-5, 0, 0};
    pst_dpsgd_setup_t s = {10, 50, 100, 4, 30, 1, 1, 1}; /* 4 x 30 > 100 rows */
    assert_null(pst_dpsgd_new(&d, &s, &err));
    assert_non_null(strstr(err.msg, "exceeds"));
    pst_model_destroy(&bn);
    pst_model_destroy(&model);
    pst_dataset_destroy(&train);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clipping_bounds_large_and_keeps_small),
        cmocka_unit_test(poisson_sample_rate_and_order),
        cmocka_unit_test(noise_has_the_stated_moments),
        cmocka_unit_test(worker_noise_shares_add_to_the_full_variance),
        cmocka_unit_test(step_gradient_is_the_clipped_sum),
        cmocka_unit_test(epsilon_per_epoch_is_the_accountants),
        cmocka_unit_test(stops_before_the_epoch_that_passes_the_budget),
        cmocka_unit_test(resumed_run_counts_the_steps_already_taken),
        cmocka_unit_test(calibrated_noise_spends_the_budget),
        cmocka_unit_test(refuses_what_it_cannot_make_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
