/* Tests for worker/train's pull_ahead hook: a distributed step whose weights travel per dense
 * layer asks for the next step's weights right after its last push, with the next clock, only
 * when a step of the same epoch follows (never before an epoch's end, where evaluation reads the
 * weights), and the next step's pull_start is for that same clock; the weights the hooks deliver
 * are the ones trained on, so a mock server applying plain SGD ends where local training ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/train/train.h"

#define MAX_EVENTS 512

typedef enum { EV_START, EV_WAIT, EV_PUSH, EV_AHEAD } event_kind_t;

typedef struct event {
    event_kind_t kind;
    int layer;      /* EV_WAIT, EV_PUSH */
    uint64_t clock; /* EV_START, EV_PUSH, EV_AHEAD */
} event_t;

/* A server of one worker applying SGD to its own copy of the weights, and the hooks' log. */
typedef struct mock_server {
    event_t events[MAX_EVENTS];
    int n_events;
    float *weights; // (n_params) the server's copy
    float *dst;     /* where the pending pull delivers */
    size_t n_params;
    const size_t *layer_off, *layer_len; // (n_layers) each layer's range of the arena
    int n_layers;
    uint64_t pulled_clock; /* the clock the pending pull was sent for */
} mock_server_t;

static void log_event(mock_server_t *m, event_kind_t kind, int layer, uint64_t clock)
{
    assert_true(m->n_events < MAX_EVENTS);
    m->events[m->n_events++] = (event_t){kind, layer, clock};
}

static int mock_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    (void)err;
    mock_server_t *m = ctx;
    memcpy(params, m->weights, m->n_params * sizeof(float));
    m->pulled_clock = clock;
    return PST_OK;
}

static int mock_push(void *ctx, const float *g, uint64_t clock, float lr, pst_err_t *err)
{
    (void)ctx, (void)g, (void)clock, (void)lr, (void)err;
    fail_msg("a layered run pushes layer by layer");
    return PST_EINVAL;
}

/* Sends the pulls: the weights are copied at pull_wait, as a reply is absorbed when waited on. */
static int mock_pull_start(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    (void)err;
    mock_server_t *m = ctx;
    log_event(m, EV_START, -1, clock);
    m->dst = params;
    m->pulled_clock = clock;
    return PST_OK;
}

static int mock_pull_ahead(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    (void)err;
    mock_server_t *m = ctx;
    log_event(m, EV_AHEAD, -1, clock);
    m->dst = params;
    m->pulled_clock = clock;
    return PST_OK;
}

static int mock_pull_wait(void *ctx, int k, pst_err_t *err)
{
    (void)err;
    mock_server_t *m = ctx;
    log_event(m, EV_WAIT, k, m->pulled_clock);
    memcpy(m->dst + m->layer_off[k], m->weights + m->layer_off[k], m->layer_len[k] * sizeof(float));
    return PST_OK;
}

static int mock_push_layer(void *ctx, int k, const float *g, uint64_t clock, float lr,
                           pst_err_t *err)
{
    (void)err;
    mock_server_t *m = ctx;
    log_event(m, EV_PUSH, k, clock);
    for (size_t i = m->layer_off[k]; i < m->layer_off[k] + m->layer_len[k]; i++)
        m->weights[i] -= lr * g[i];
    return PST_OK;
}

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

static pst_model_t *mlp(void)
{
    pst_layer_spec_t layers[] = {
        {.kind = PST_LAYER_DENSE, .units = 8}, {.kind = PST_LAYER_TANH},
        {.kind = PST_LAYER_DENSE, .units = 8}, {.kind = PST_LAYER_TANH},
        {.kind = PST_LAYER_DENSE, .units = 2}, {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *m = pst_model_new(4, layers, 6, 16, NULL);
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    pst_model_init_params(m, &rng);
    return m;
}

static void sgd_opts(pst_train_opts_t *o, float l2)
{
    pst_train_opts_defaults(o);
    o->epochs = 2;
    o->batch_size = 16;
    o->seed = 9;
    o->l2 = l2;
    pst_optim_cfg_defaults(&o->optim, PST_OPT_SGD);
    o->sched.base_lr = 0.1f;
}

/* Trains 64 rows in batches of 16 (4 steps an epoch, 2 epochs) through the mock server; returns
 * the model, the log in *m. */
static pst_model_t *train_through(mock_server_t *m, size_t off[3], size_t len[3], float l2)
{
    pst_dataset_t *train = blobs(64, 3);
    pst_model_t *model = mlp();
    memset(m, 0, sizeof *m);
    m->n_params = pst_model_n_params(model);
    m->weights = malloc(m->n_params * sizeof(float));
    memcpy(m->weights, pst_model_params(model), m->n_params * sizeof(float));
    for (int k = 0; k < 3; k++) {
        const pst_tensor_info_t *w = pst_model_tensor(model, 2 * k);
        const pst_tensor_info_t *b = pst_model_tensor(model, 2 * k + 1);
        off[k] = w->offset;
        len[k] = b->offset + b->size - w->offset;
    }
    m->layer_off = off;
    m->layer_len = len;
    m->n_layers = 3;
    pst_train_hooks_t hooks = {.ctx = m,
                               .pull = mock_pull,
                               .push = mock_push,
                               .pull_start = mock_pull_start,
                               .pull_wait = mock_pull_wait,
                               .push_layer = mock_push_layer,
                               .pull_ahead = mock_pull_ahead};
    pst_train_opts_t o;
    sgd_opts(&o, l2);
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(model, train, NULL, &o, &hooks, &r, &err), PST_OK);
    assert_int_equal(r.clock, 8);
    pst_dataset_destroy(&train);
    return model;
}

/* The log step by step: pull_start, three waits (layer 0 first), three pushes (layer 2 first),
 * then pull_ahead of the next clock unless the step ends its epoch. */
static void check_log(const mock_server_t *m)
{
    int at = 0, aheads = 0;
    for (uint64_t clock = 0; clock < 8; clock++) {
        assert_true(at < m->n_events);
        assert_int_equal(m->events[at].kind, EV_START);
        assert_int_equal(m->events[at].clock, clock);
        at++;
        for (int k = 0; k < 3; k++, at++) {
            assert_int_equal(m->events[at].kind, EV_WAIT);
            assert_int_equal(m->events[at].layer, k);
        }
        for (int k = 2; k >= 0; k--, at++) {
            assert_int_equal(m->events[at].kind, EV_PUSH);
            assert_int_equal(m->events[at].layer, k);
            assert_int_equal(m->events[at].clock, clock);
        }
        bool ends_epoch = clock % 4 == 3;
        if (!ends_epoch) {
            assert_int_equal(m->events[at].kind, EV_AHEAD);
            assert_int_equal(m->events[at].clock, clock + 1);
            at++;
            aheads++;
        }
        /* nothing but the next step's pull_start may follow the pull ahead */
        assert_true(at == m->n_events || m->events[at].kind == EV_START);
    }
    assert_int_equal(aheads, 6);
    assert_int_equal(at, m->n_events);
}

static void pull_ahead_follows_the_last_push_within_an_epoch(void **state)
{
    (void)state;
    mock_server_t m;
    size_t off[3], len[3];
    pst_model_t *model = train_through(&m, off, len, 0.0f);
    check_log(&m);
    /* the weights the run ends on are the server's, after its last step */
    assert_memory_equal(pst_model_params(model), m.weights, m.n_params * sizeof(float));
    free(m.weights);
    pst_model_destroy(&model);
}

/* With a penalty the gradients are final only after backward: the pushes and the pull ahead come
 * after it, in the same order. */
static void pull_ahead_after_pushes_made_after_backward(void **state)
{
    (void)state;
    mock_server_t m;
    size_t off[3], len[3];
    pst_model_t *model = train_through(&m, off, len, 1e-3f);
    check_log(&m);
    free(m.weights);
    pst_model_destroy(&model);
}

/* Weights delivered through the pulls sent ahead train exactly as local SGD does. */
static void pulled_ahead_weights_train_as_local(void **state)
{
    (void)state;
    mock_server_t m;
    size_t off[3], len[3];
    pst_model_t *remote = train_through(&m, off, len, 0.0f);
    pst_dataset_t *train = blobs(64, 3);
    pst_model_t *local = mlp();
    pst_train_opts_t o;
    sgd_opts(&o, 0.0f);
    pst_train_result_t r;
    pst_err_t err = {0};
    assert_int_equal(pst_train_run(local, train, NULL, &o, NULL, &r, &err), PST_OK);
    assert_memory_equal(pst_model_params(local), pst_model_params(remote),
                        pst_model_n_params(local) * sizeof(float));
    free(m.weights);
    pst_model_destroy(&remote);
    pst_model_destroy(&local);
    pst_dataset_destroy(&train);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pull_ahead_follows_the_last_push_within_an_epoch),
        cmocka_unit_test(pull_ahead_after_pushes_made_after_backward),
        cmocka_unit_test(pulled_ahead_weights_train_as_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
