/* Tests for worker/train/wide_deep_remote against a live parameter server on loopback: under BSP
 * with one worker, training through one or two servers equals the local trainer bit for bit
 * (losses, validation scores, every row, the deep stack), FTRL and AdaGrad, with dropout; the model
 * pulled back predicts as the local one; bad shapes and a missing key set are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rng.h"
#include "ps/server.h"
#include "worker/psclient.h"
#include "worker/train/sparse_loop.h"
#include "worker/train/wide_deep_local.h"
#include "worker/train/wide_deep_remote.h"

/* Batches of a power of two: the worker's gradient times B and the local constants divided by B
 * are exact in float, and both optimizers are invariant under scaling the gradient and their
 * constants alike (common/optim/ftrl.h), so the two sides compute the same bits. TRAIN is a
 * multiple of BATCH: a partial batch would step locally with constants / BATCH, not / its rows. */
enum { FIELDS = 3, TOKENS = 20, DIM = 4, BATCH = 32, TRAIN = 384, VAL = 96, EPOCHS = 3 };

static const float LR = 0.2f, BETA = 1.0f, L1 = 0.05f, L2 = 0.1f, EPS = 0.1f, DECAY = 0.01f;

typedef struct server_run {
    pst_server_t *srv;
    pthread_t thread;
    int rc;
    char endpoint[256];
} server_run_t;

static void *run_main(void *arg)
{
    server_run_t *r = arg;
    r->rc = pst_server_run(r->srv, NULL);
    return NULL;
}

/* Server `index` of n_servers. */
static void start_server(server_run_t *r, uint32_t index, uint32_t n_servers,
                         const pst_optim_cfg_t *optim)
{
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.server_index = index;
    cfg.n_servers = n_servers;
    cfg.n_workers = 1;
    cfg.consistency = PST_CONSISTENCY_BSP;
    cfg.optim = *optim;
    pst_err_t err = {0};
    memset(r, 0, sizeof *r);
    r->srv = pst_server_new(&cfg, &err);
    if (r->srv == NULL)
        fail_msg("server: %s", err.msg);
    assert_int_equal(
        pst_server_bind(r->srv, "tcp://127.0.0.1:*", r->endpoint, sizeof r->endpoint, &err),
        PST_OK);
    assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
}

static void finish_server(server_run_t *r)
{
    assert_int_equal(pthread_join(r->thread, NULL), 0);
    assert_int_equal(r->rc, PST_OK);
    pst_server_destroy(&r->srv);
}

static pst_psclient_t *connect_client(const server_run_t *r, uint32_t n_servers)
{
    const char *endpoints[2] = {r[0].endpoint, n_servers > 1 ? r[1].endpoint : NULL};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = n_servers;
    cfg.worker_id = 0;
    cfg.timeout_ms = 10000;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    if (c == NULL)
        fail_msg("client: %s", err.msg);
    return c;
}

static void ok(int rc, const pst_err_t *err)
{
    if (rc != PST_OK)
        fail_msg("rc %d: %s", rc, err->msg);
}

/* ---- data ---- */

/* A CSR set of n rows with one token per field (key = FIELDS token + field: field = key mod
 * FIELDS), values in [0.5, 1.5), labels from the product of two fields' signs. Tokens from
 * `first` on occur only here: a set made with first = TOKENS holds keys never trained. */
static void make_rows(pst_dataset_t *d, size_t n, uint64_t seed, uint32_t first)
{
    memset(d, 0, sizeof *d);
    d->n_rows = n;
    d->n_features = (size_t)FIELDS * (first + TOKENS);
    d->row_ptr = malloc((n + 1) * sizeof *d->row_ptr);
    d->col_idx = malloc(n * FIELDS * sizeof *d->col_idx);
    d->val = malloc(n * FIELDS * sizeof *d->val);
    d->y = malloc(n * sizeof *d->y);
    assert_true(d->row_ptr && d->col_idx && d->val && d->y);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    d->row_ptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t tok[FIELDS];
        for (uint32_t f = 0; f < FIELDS; f++) {
            tok[f] = first / 2 + (uint32_t)pst_rng_below(&rng, TOKENS);
            d->col_idx[i * FIELDS + f] = tok[f] * FIELDS + f;
            d->val[i * FIELDS + f] = (float)(0.5 + pst_rng_uniform(&rng));
        }
        double z = 2.0 * (tok[0] % 2 ? 1 : -1) * (tok[1] < first / 2 + TOKENS / 2 ? 1 : -1);
        d->y[i] = pst_rng_uniform(&rng) < 1.0 / (1.0 + exp(-z)) ? 1.0f : 0.0f;
        d->row_ptr[i + 1] = (i + 1) * FIELDS;
    }
}

static void free_rows(pst_dataset_t *d)
{
    free(d->row_ptr);
    free(d->col_idx);
    free(d->val);
    free(d->y);
}

/* ---- the two trainers ---- */

static const pst_layer_spec_t HIDDEN[] = {{.kind = PST_LAYER_DENSE, .units = 8},
                                          {.kind = PST_LAYER_RELU},
                                          {.kind = PST_LAYER_DROPOUT, .rate = 0.25f}};

static pst_wide_deep_spec_t wd_spec(void)
{
    return (pst_wide_deep_spec_t){.n_fields = FIELDS,
                                  .n_raw = 1,
                                  .dim = DIM,
                                  .pooling = PST_WD_POOL_MEAN,
                                  .hidden = HIDDEN,
                                  .n_hidden = 3,
                                  .max_batch = BATCH};
}

/* The servers' optimizer: per-example constants. */
static pst_optim_cfg_t server_optim(pst_optim_kind_t kind)
{
    pst_optim_cfg_t o;
    pst_optim_cfg_defaults(&o, kind);
    if (kind == PST_OPT_FTRL) {
        o.ftrl_beta = BETA;
        o.ftrl_l1 = L1;
        o.ftrl_l2 = L2;
    } else {
        o.eps = EPS;
        o.weight_decay = DECAY;
    }
    return o;
}

/* The local trainer of the same model: constants per batch mean (divided by BATCH). */
static pst_wd_local_t *local_trainer(pst_optim_kind_t kind)
{
    const float per_row = 1.0f / BATCH;
    pst_wd_local_opts_t o = {.dense_lr = LR, .dense_seed = 11, .dropout_seed = 12};
    pst_sparse_train_opts_defaults(&o.rows, PST_SPARSE_FM);
    o.rows.spec.n_factors = DIM;
    o.rows.init_scale = 0.05f;
    o.rows.init_seed = 13;
    o.dense = server_optim(kind);
    if (kind == PST_OPT_FTRL) {
        o.rows.optimizer = PST_SPARSE_OPT_FTRL;
        o.rows.ftrl = (pst_ftrl_cfg_t){
            .alpha = LR, .beta = BETA * per_row, .l1 = L1 * per_row, .l2 = L2 * per_row};
        o.dense.ftrl_beta *= per_row;
        o.dense.ftrl_l1 *= per_row;
        o.dense.ftrl_l2 *= per_row;
    } else {
        o.rows.optimizer = PST_SPARSE_OPT_ADAGRAD;
        o.rows.adagrad =
            (pst_ftrl_adagrad_cfg_t){.lr = LR, .eps = EPS * per_row, .l2 = DECAY * per_row};
        o.dense.eps *= per_row;
        o.dense.weight_decay *= per_row;
    }
    pst_wide_deep_spec_t spec = wd_spec();
    pst_err_t err = {0};
    pst_wd_local_t *wd = pst_wd_local_new(&spec, &o, &err);
    if (wd == NULL)
        fail_msg("local: %s", err.msg);
    return wd;
}

static pst_wd_remote_t *remote_trainer(void)
{
    pst_wd_remote_opts_t o = {.lr = LR,
                              .init_scale = 0.05f,
                              .init_seed = 13,
                              .dense_seed = 11,
                              .dropout_seed = 12,
                              .n_workers = 1,
                              .worker = 0};
    pst_wide_deep_spec_t spec = wd_spec();
    pst_err_t err = {0};
    pst_wd_remote_t *r = pst_wd_remote_new(&spec, &o, &err);
    if (r == NULL)
        fail_msg("remote: %s", err.msg);
    return r;
}

static int local_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    return pst_wd_local_update(ctx, b, loss, err);
}

static int local_predict(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    return pst_wd_local_predict(ctx, b, prob, err);
}

/* What a run gives, epoch by epoch. */
typedef struct outcome {
    double loss[EPOCHS];
    pst_binary_metrics_t val[EPOCHS];
} outcome_t;

static void train(pst_sparse_trainer_t trainer, const pst_dataset_t *tr, const pst_dataset_t *val,
                  outcome_t *out)
{
    pst_sparse_loop_opts_t lo = {.batch_size = BATCH, .shuffle = true, .seed = 21};
    pst_sparse_loop_t loop;
    pst_sparse_loop_init(&loop, trainer, &lo);
    for (int e = 0; e < EPOCHS; e++) {
        pst_sparse_epoch_t ep;
        pst_err_t err = {0};
        ok(pst_sparse_loop_epoch(&loop, tr, e + 1, &ep, &err), &err);
        assert_int_equal(ep.steps, TRAIN / BATCH);
        out->loss[e] = ep.loss;
        ok(pst_sparse_evaluate(&trainer, val, &out->val[e], &err), &err);
    }
    pst_sparse_loop_fini(&loop);
}

static void assert_same_bits(const void *a, const void *b, size_t n, const char *what)
{
    if (memcmp(a, b, n) != 0)
        fail_msg("%s differ", what);
}

/* Every row of the local store equals the pulled copy's, bit for bit; the counts match. */
static void assert_same_rows(pst_wd_local_t *local, pst_wd_local_t *pulled, size_t n_trained)
{
    const pst_sparse_model_t *a = pst_wd_local_rows(local), *b = pst_wd_local_rows(pulled);
    assert_int_equal(pst_sparse_model_n_keys(a), n_trained);
    assert_int_equal(pst_sparse_model_n_keys(b), n_trained);
    for (size_t i = 0; i < n_trained; i++) {
        uint64_t key = 0;
        const float *row = pst_sparse_model_entry(a, i, &key);
        const float *copy = pst_sparse_model_row(b, key);
        assert_non_null(copy);
        if (memcmp(row, copy, (1 + DIM) * sizeof(float)) != 0)
            fail_msg("row of key %llu: local %g %g, servers %g %g", (unsigned long long)key,
                     (double)row[0], (double)row[1], (double)copy[0], (double)copy[1]);
    }
}

static void equals_local(pst_optim_kind_t kind, uint32_t n_servers)
{
    pst_log_set_level(PST_LOG_ERROR);
    pst_dataset_t tr, val;
    make_rows(&tr, TRAIN, 1, 0);
    make_rows(&val, VAL, 2, TOKENS); /* half of its tokens never trained */

    pst_wd_local_t *local = local_trainer(kind);
    outcome_t want, got;
    train((pst_sparse_trainer_t){local, local_step, local_predict, NULL, NULL}, &tr, &val, &want);

    pst_optim_cfg_t optim = server_optim(kind);
    server_run_t srv[2];
    for (uint32_t i = 0; i < n_servers; i++)
        start_server(&srv[i], i, n_servers, &optim);
    pst_psclient_t *client = connect_client(srv, n_servers);
    pst_wd_remote_t *remote = remote_trainer();
    pst_err_t err = {0};
    size_t n_trained = 0;
    ok(pst_wd_remote_register(remote, client, &err), &err);
    ok(pst_wd_remote_mark_trained(remote, &tr, &n_trained, &err), &err);
    assert_int_equal(n_trained, FIELDS * TOKENS);
    train(pst_wd_remote_trainer(remote), &tr, &val, &got);

    for (int e = 0; e < EPOCHS; e++) {
        assert_same_bits(&want.loss[e], &got.loss[e], sizeof(double), "epoch losses");
        assert_same_bits(&want.val[e].log_loss, &got.val[e].log_loss, sizeof(double),
                         "validation log-losses");
        assert_same_bits(&want.val[e].roc_auc, &got.val[e].roc_auc, sizeof(double),
                         "validation AUCs");
    }
    if (!(want.loss[EPOCHS - 1] < want.loss[0] - 0.05)) /* it learned something */
        fail_msg("epoch losses %.4f .. %.4f did not fall by 0.05", want.loss[0],
                 want.loss[EPOCHS - 1]);

    pst_wd_local_t *pulled = local_trainer(kind);
    ok(pst_wd_remote_pull_model(remote, pulled, &err), &err);
    pst_model_t *mlp = pst_wide_deep_mlp(pst_wd_local_model(local));
    pst_model_t *pulled_mlp = pst_wide_deep_mlp(pst_wd_local_model(pulled));
    assert_same_bits(pst_model_params(mlp), pst_model_params(pulled_mlp),
                     pst_model_n_params(mlp) * sizeof(float), "deep weights");
    assert_same_rows(local, pulled, n_trained);
    /* the pulled model scores the validation rows as the local one */
    pst_binary_metrics_t again;
    ok(pst_sparse_evaluate(&(pst_sparse_trainer_t){pulled, local_step, local_predict, NULL, NULL},
                           &val, &again, &err),
       &err);
    assert_same_bits(&want.val[EPOCHS - 1].log_loss, &again.log_loss, sizeof(double),
                     "pulled model's log-loss");

    pst_wd_remote_stats_t st;
    pst_wd_remote_stats(remote, &st);
    assert_int_equal(st.steps, EPOCHS * TRAIN / BATCH);
    assert_true(st.keys_pushed >= st.steps && st.eval_wire > 0);
    ok(pst_psclient_shutdown(client, &err), &err);
    pst_psclient_destroy(&client);
    for (uint32_t i = 0; i < n_servers; i++)
        finish_server(&srv[i]);
    pst_wd_remote_destroy(&remote);
    pst_wd_local_destroy(&pulled);
    pst_wd_local_destroy(&local);
    free_rows(&tr);
    free_rows(&val);
}

static void ftrl_through_the_servers_equals_local_training(void **state)
{
    equals_local(PST_OPT_FTRL, 1);
}

/* The deep stack split into two ranges and the rows placed by hash over two servers: both
 * optimizers step coordinate by coordinate, so the split changes no bit. */
static void two_servers_equal_local_training(void **state)
{
    equals_local(PST_OPT_FTRL, 2);
}

static void adagrad_through_the_servers_equals_local_training(void **state)
{
    equals_local(PST_OPT_ADAGRAD, 1);
}

/* A local model of another shape, a pull before any key set is marked, and a worker index out
 * of range are refused with messages. */
static void bad_use_is_refused(void **state)
{
    pst_log_set_level(PST_LOG_ERROR);
    pst_wd_remote_opts_t o = {.lr = LR, .n_workers = 2, .worker = 2};
    pst_wide_deep_spec_t spec = wd_spec();
    pst_err_t err = {0};
    assert_null(pst_wd_remote_new(&spec, &o, &err));
    assert_non_null(strstr(err.msg, "worker 2 of 2"));

    pst_wd_remote_t *remote = remote_trainer();
    pst_wd_local_t *local = local_trainer(PST_OPT_FTRL);
    assert_int_equal(pst_wd_remote_pull_model(remote, local, &err), PST_ESTATE);
    assert_non_null(strstr(err.msg, "no trained keys"));

    pst_layer_spec_t wide[] = {{.kind = PST_LAYER_DENSE, .units = 9}};
    spec.hidden = wide;
    spec.n_hidden = 1;
    pst_wd_local_opts_t lo = {.dense_lr = LR};
    pst_sparse_train_opts_defaults(&lo.rows, PST_SPARSE_FM);
    lo.rows.spec.n_factors = DIM;
    pst_optim_cfg_defaults(&lo.dense, PST_OPT_FTRL);
    pst_wd_local_t *other = pst_wd_local_new(&spec, &lo, &err);
    assert_non_null(other);
    assert_int_equal(pst_wd_remote_pull_model(remote, other, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "deep parameters"));
    pst_wd_local_destroy(&other);
    pst_wd_local_destroy(&local);
    pst_wd_remote_destroy(&remote);
    pst_wd_remote_destroy(&remote); /* safe twice */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ftrl_through_the_servers_equals_local_training),
        cmocka_unit_test(adagrad_through_the_servers_equals_local_training),
        cmocka_unit_test(two_servers_equal_local_training),
        cmocka_unit_test(bad_use_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
