/* Tests for worker/fed/fedsite: a live site in a thread against a server scripted by hand over a
 * raw ROUTER socket on loopback TCP: registration and welcome, heartbeats (idle and while
 * training), tasks and updates, declined rounds, a reconnect and a lost registration, malformed
 * and ill-fitting frames, a refused registration and a silent server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/net/codec.h"
#include "common/net/wire.h"
#include "worker/fed/fedsite.h"

#define N 6          /* floats of the model */
#define RECV_MS 5000 /* the longest wait for an expected message */
#define MAX_CALLS 8
#define SITE "site-a"

static const char CONTRACT[] = "inputs 6, dense 1, loss squared";

/* What the training callback does on its k-th call. */
typedef enum { TRAIN_OK, TRAIN_DIVERGE, TRAIN_NO_ROWS, TRAIN_FAIL } train_action_t;

/* The site's callbacks: what they are told to do and what they saw (read after the join). */
typedef struct script {
    train_action_t actions[MAX_CALLS];
    int train_ms; /* how long each training takes, calling keepalive meanwhile */
    int n_train;
    uint64_t rounds[MAX_CALLS], seeds[MAX_CALLS];
    float first_global[N];
    int n_welcome;
    size_t welcome_params;
    char contract[64];
    bool done_called, done_final;
    float final[N];
    uint64_t done_rounds;
} script_t;

/* The server's side: a ROUTER, the site's last route, and the site running in a thread. */
typedef struct server {
    void *ctx, *sock;
    pst_wire_t *wire;
    char endpoint[128];
    uint8_t route[256];
    size_t route_len;
    pst_fedsite_t *site;
    pthread_t thread;
    int rc;
    pst_err_t err;
    script_t script;
} server_t;

/* A message from the site, as the server received it. */
typedef struct received {
    int op;
    char site[64];
    uint64_t seq, clock, count, samples;
    uint32_t flags;
    double loss;
    char error[256];
    float values[N];
} received_t;

/* ---- the site's callbacks ---- */

static int on_welcome(void *ctx, pst_fedsite_t *site, const uint8_t *contract, size_t len,
                      size_t n_params, pst_err_t *err)
{
    (void)site, (void)err;
    script_t *s = ctx;
    s->n_welcome++;
    s->welcome_params = n_params;
    snprintf(s->contract, sizeof s->contract, "%.*s", (int)len, (const char *)contract);
    return PST_OK;
}

static void spend(const pst_fedsite_task_t *task, int ms)
{
    double until = pst_clock_seconds() + ms / 1000.0;
    while (pst_clock_seconds() < until) {
        task->keepalive(task->keepalive_ctx);
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
}

/* delta = global / 2 + round, from 10 * round rows with loss round / 4; or the scripted failure. */
static int on_train(void *ctx, pst_fedsite_t *site, const pst_fedsite_task_t *task, float *delta,
                    double *samples, double *loss, pst_err_t *err)
{
    (void)site;
    script_t *s = ctx;
    if (s->n_train >= MAX_CALLS) /* cmocka's asserts belong to the test's own thread */
        return pst_err_set(err, PST_ERANGE, "more trainings than the script holds");
    int k = s->n_train++;
    s->rounds[k] = task->round;
    s->seeds[k] = task->seed;
    if (k == 0)
        memcpy(s->first_global, task->global, sizeof s->first_global);
    spend(task, s->train_ms);
    switch (s->actions[k]) {
    case TRAIN_DIVERGE:
        return pst_err_set(err, PST_ENUMERIC, "training loss is NaN");
    case TRAIN_FAIL:
        return pst_err_set(err, PST_EIO, "data file vanished");
    case TRAIN_NO_ROWS:
        *samples = 0;
        return PST_OK;
    case TRAIN_OK:
        break;
    }
    for (size_t i = 0; i < task->n; i++)
        delta[i] = task->global[i] / 2 + (float)task->round;
    *samples = 10.0 * (double)task->round;
    *loss = (double)task->round / 4;
    return PST_OK;
}

static int on_done(void *ctx, pst_fedsite_t *site, const float *final, size_t n, uint64_t rounds,
                   pst_err_t *err)
{
    (void)site, (void)err;
    script_t *s = ctx;
    s->done_called = true;
    s->done_final = final != NULL;
    if (final != NULL && n == N)
        memcpy(s->final, final, sizeof s->final);
    s->done_rounds = rounds;
    return PST_OK;
}

/* ---- the server ---- */

static void bind_router(server_t *srv, const char *endpoint)
{
    srv->sock = zmq_socket(srv->ctx, ZMQ_ROUTER);
    assert_non_null(srv->sock);
    int timeout = RECV_MS, linger = 0;
    zmq_setsockopt(srv->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(srv->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* The same port again after a close: the old listener may take a moment to let go. */
    for (int tries = 0; zmq_bind(srv->sock, endpoint) != 0; tries++) {
        assert_true(tries < 100);
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    assert_int_equal(pst_wire_last_endpoint(srv->sock, srv->endpoint, sizeof srv->endpoint, NULL),
                     PST_OK);
}

static server_t *server_new(void)
{
    server_t *srv = calloc(1, sizeof *srv);
    assert_non_null(srv);
    srv->ctx = zmq_ctx_new();
    assert_non_null(srv->ctx);
    srv->wire = pst_wire_new(PST_WIRE_ROUTER, 0, NULL);
    assert_non_null(srv->wire);
    bind_router(srv, "tcp://127.0.0.1:*");
    return srv;
}

static pst_fedsite_cfg_t site_cfg(const server_t *srv, double server_timeout)
{
    return (pst_fedsite_cfg_t){.site = SITE,
                               .endpoint = srv->endpoint,
                               .heartbeat = 0.1,
                               .server_timeout = server_timeout};
}

static void *run_site(void *arg)
{
    server_t *srv = arg;
    srv->rc = pst_fedsite_run(&srv->site, 1, &srv->err);
    return NULL;
}

/* Creates the site (it connects and registers) and serves it in a thread. */
static void site_start(server_t *srv, double server_timeout)
{
    pst_fedsite_cfg_t cfg = site_cfg(srv, server_timeout);
    pst_fedsite_hooks_t hooks = {&srv->script, on_welcome, on_train, on_done};
    pst_err_t err = {0};
    srv->site = pst_fedsite_new(&cfg, &hooks, &err);
    if (srv->site == NULL)
        fail_msg("fed site: %s", err.msg);
    assert_int_equal(pthread_create(&srv->thread, NULL, run_site, srv), 0);
}

/* Waits for pst_fedsite_run to return; returns its result. */
static int site_join(server_t *srv)
{
    assert_int_equal(pthread_join(srv->thread, NULL), 0);
    return srv->rc;
}

static void server_free(server_t *srv)
{
    pst_fedsite_destroy(&srv->site);
    zmq_close(srv->sock);
    pst_wire_destroy(&srv->wire);
    zmq_ctx_term(srv->ctx);
    free(srv);
}

/* Receives the next message; fails the test when none comes within RECV_MS. */
static void recv_one(server_t *srv, received_t *r)
{
    pst_wire_msg_t msg;
    pst_err_t err = {0};
    int rc = pst_wire_recv(srv->wire, srv->sock, &msg, 0, &err);
    if (rc != PST_OK)
        fail_msg("server: no message from the site: %s %s", pst_strerror(rc), err.msg);
    const Pst__Header *h = msg.hdr;
    memset(r, 0, sizeof *r);
    r->op = h->op;
    snprintf(r->site, sizeof r->site, "%s", h->site);
    r->seq = h->seq;
    r->clock = h->clock;
    r->count = h->count;
    r->samples = h->samples;
    r->flags = h->flags;
    r->loss = h->loss;
    snprintf(r->error, sizeof r->error, "%s", h->error);
    if (msg.n_values > 0) {
        assert_int_equal(msg.n_values, N);
        assert_int_equal(pst_wire_decode(srv->wire, &msg, r->values, NULL), PST_OK);
    }
    assert_true(msg.route_len <= sizeof srv->route);
    memcpy(srv->route, msg.route, msg.route_len);
    srv->route_len = msg.route_len;
    pst_wire_msg_close(&msg);
}

/* Takes the next message with op, skipping heartbeats (unless op is HEARTBEAT); returns how many
 * heartbeats it skipped. */
static int take(server_t *srv, int op, received_t *out)
{
    int heartbeats = 0;
    for (;;) {
        recv_one(srv, out);
        assert_string_equal(out->site, SITE);
        if (out->op == op)
            return heartbeats;
        if (out->op != PST__OP__OP_HEARTBEAT)
            fail_msg("server: expected %s, got %s", pst_wire_op_name(op),
                     pst_wire_op_name(out->op));
        heartbeats++;
    }
}

static void send_to_site(server_t *srv, Pst__Header *h, const pst_wire_payload_t *p)
{
    h->site = SITE;
    assert_int_equal(pst_wire_send(srv->wire, srv->sock, srv->route, srv->route_len, h, p, NULL),
                     PST_OK);
}

static void send_welcome(server_t *srv, uint64_t n)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_FED_WELCOME;
    h.count = n;
    h.codec = PST__CODEC__CODEC_RAW;
    pst_wire_payload_t p = {.blob = (const uint8_t *)CONTRACT, .blob_len = sizeof CONTRACT - 1};
    send_to_site(srv, &h, &p);
}

static void send_task(server_t *srv, uint64_t round, const float *global, uint64_t n, int codec)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_FED_TASK;
    h.clock = round;
    h.seed = 1000 + round;
    h.count = n;
    h.codec = (Pst__Codec)codec;
    pst_wire_payload_t p = {.values = global};
    send_to_site(srv, &h, &p);
}

static void send_done(server_t *srv, uint64_t rounds, const float *final)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_FED_DONE;
    h.clock = rounds;
    h.count = final ? N : 0;
    h.codec = PST__CODEC__CODEC_LZ4;
    pst_wire_payload_t p = {.values = final};
    send_to_site(srv, &h, final ? &p : NULL);
}

static void send_error(server_t *srv, int code, const char *text)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_ERROR;
    h.flags = (uint32_t)(-code);
    h.error = (char *)text;
    send_to_site(srv, &h, NULL);
}

/* REGISTER, answered with a WELCOME; the site says it is ready with a heartbeat. */
static void welcome_site(server_t *srv)
{
    received_t r;
    take(srv, PST__OP__OP_FED_REGISTER, &r);
    send_welcome(srv, N);
    take(srv, PST__OP__OP_HEARTBEAT, &r);
}

/* A site that is registered and ready, with a server timeout the tests never reach. */
static server_t *welcomed_site(void)
{
    server_t *srv = server_new();
    site_start(srv, 30);
    welcome_site(srv);
    return srv;
}

static void expect_rounds(const server_t *srv, uint64_t trained, uint64_t declined)
{
    pst_fedsite_stats_t st;
    pst_fedsite_stats(srv->site, &st);
    assert_int_equal(st.rounds_trained, trained);
    assert_int_equal(st.rounds_declined, declined);
}

static void global_of(uint64_t round, float *w)
{
    for (int i = 0; i < N; i++)
        w[i] = (float)(i + 1) * (i % 2 ? -0.5f : 0.25f) + (float)round;
}

/* The update on_train computes for a task. */
static void expect_update(const received_t *r, uint64_t round, const float *global)
{
    assert_int_equal(r->op, PST__OP__OP_FED_UPDATE);
    assert_int_equal(r->clock, round);
    assert_int_equal(r->flags, 0);
    assert_int_equal(r->count, N);
    assert_int_equal(r->samples, 10 * round);
    assert_true(r->loss == (double)round / 4);
    for (int i = 0; i < N; i++)
        assert_true(r->values[i] == global[i] / 2 + (float)round);
}

static void expect_declined(const received_t *r, uint64_t round, const char *why)
{
    assert_int_equal(r->op, PST__OP__OP_FED_UPDATE);
    assert_int_equal(r->clock, round);
    assert_int_equal(r->flags, PST_WIRE_FLAG_DECLINED);
    assert_int_equal(r->count, 0);
    assert_non_null(strstr(r->error, why));
}

/* ---- tests ---- */

static void a_whole_run_registers_trains_and_gets_the_final_weights(void **state)
{
    (void)state;
    server_t *srv = server_new();
    site_start(srv, 30);
    received_t r;
    take(srv, PST__OP__OP_FED_REGISTER, &r);
    assert_int_equal(r.count, 0);
    send_welcome(srv, N);
    take(srv, PST__OP__OP_HEARTBEAT, &r); /* ready to train */

    float g1[N], g2[N], final[N];
    global_of(1, g1);
    global_of(2, g2);
    global_of(7, final);
    send_task(srv, 1, g1, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    expect_update(&r, 1, g1);
    send_task(srv, 2, g2, N, PST__CODEC__CODEC_LZ4);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    expect_update(&r, 2, g2);
    send_done(srv, 2, final);
    take(srv, PST__OP__OP_ACK, &r); /* the site acknowledges the final weights */
    assert_int_equal(r.clock, 2);
    assert_int_equal(site_join(srv), PST_OK);

    script_t *s = &srv->script;
    assert_int_equal(s->n_welcome, 1);
    assert_int_equal(s->welcome_params, N);
    assert_string_equal(s->contract, CONTRACT);
    assert_int_equal(s->n_train, 2);
    assert_int_equal(s->rounds[0], 1);
    assert_int_equal(s->rounds[1], 2);
    assert_int_equal(s->seeds[0], 1001);
    assert_int_equal(s->seeds[1], 1002);
    assert_memory_equal(s->first_global, g1, sizeof g1);
    assert_true(s->done_called && s->done_final);
    assert_memory_equal(s->final, final, sizeof final);
    assert_int_equal(s->done_rounds, 2);
    pst_fedsite_stats_t st;
    pst_fedsite_stats(srv->site, &st);
    expect_rounds(srv, 2, 0);
    assert_int_equal(st.bytes_up_raw, 2 * N * sizeof(float));
    assert_true(st.bytes_up_wire > 0);
    assert_true(st.bytes_down_raw >= 3 * N * sizeof(float));
    assert_int_equal(st.reconnects, 0);
    assert_string_equal(pst_fedsite_id(srv->site), SITE);
    server_free(srv);
}

/* Heartbeats come every cfg.heartbeat once welcomed: while idle, and from the keepalive while a
 * long training runs. */
static void heartbeats_come_while_idle_and_while_training(void **state)
{
    (void)state;
    server_t *srv = server_new();
    srv->script.train_ms = 800;
    site_start(srv, 30);
    welcome_site(srv);
    received_t r;
    int idle = 0;
    double until = pst_clock_seconds() + 0.8;
    while (pst_clock_seconds() < until) {
        recv_one(srv, &r);
        assert_int_equal(r.op, PST__OP__OP_HEARTBEAT);
        idle++;
    }
    assert_true(idle >= 2);

    float g[N];
    global_of(1, g);
    send_task(srv, 1, g, N, PST__CODEC__CODEC_RAW);
    assert_true(take(srv, PST__OP__OP_FED_UPDATE, &r) >= 2);
    expect_update(&r, 1, g);
    send_done(srv, 1, g);
    assert_int_equal(site_join(srv), PST_OK);
    server_free(srv);
}

/* A diverged training or one without rows declines its round with the reason; the next round
 * trains; a trainer's other error ends the site with that error. */
static void declined_rounds_say_why_and_other_failures_end_the_site(void **state)
{
    (void)state;
    server_t *srv = server_new();
    memcpy(srv->script.actions,
           (train_action_t[]){TRAIN_DIVERGE, TRAIN_NO_ROWS, TRAIN_OK, TRAIN_FAIL},
           4 * sizeof(train_action_t));
    site_start(srv, 30);
    welcome_site(srv);
    received_t r;
    float g[N];
    global_of(1, g);
    send_task(srv, 1, g, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    expect_declined(&r, 1, "training loss is NaN");
    send_task(srv, 2, g, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    expect_declined(&r, 2, "no training rows");
    /* A declined round sent again is not trained again, and gets no answer. */
    send_task(srv, 2, g, N, PST__CODEC__CODEC_RAW);
    send_task(srv, 3, g, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    expect_update(&r, 3, g);
    send_task(srv, 4, g, N, PST__CODEC__CODEC_RAW);
    assert_int_equal(site_join(srv), PST_EIO);
    assert_string_equal(srv->err.msg, "data file vanished");
    assert_int_equal(srv->script.n_train, 4);
    expect_rounds(srv, 1, 2);
    server_free(srv);
}

/* After the server comes back on the same endpoint, the site announces itself on the new
 * connection; the task of a round it already trained gets the very same update again (no second
 * training); an older round's task gets nothing; a lost registration is made again. */
static void a_reconnected_site_sends_the_same_update_and_registers_again(void **state)
{
    (void)state;
    server_t *srv = welcomed_site();
    received_t first, r;
    float g1[N], g2[N];
    global_of(1, g1);
    global_of(2, g2);
    send_task(srv, 1, g1, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    send_task(srv, 2, g2, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &first);
    expect_update(&first, 2, g2);

    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "%s", srv->endpoint);
    zmq_close(srv->sock);
    bind_router(srv, endpoint);
    take(srv, PST__OP__OP_HEARTBEAT, &r); /* from the new connection */
    send_task(srv, 1, g1, N, PST__CODEC__CODEC_RAW);
    send_task(srv, 2, g2, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    expect_update(&r, 2, g2);
    assert_memory_equal(r.values, first.values, sizeof r.values);

    send_error(srv, PST_ENOTFOUND, "unknown site");
    take(srv, PST__OP__OP_FED_REGISTER, &r);
    send_welcome(srv, N);
    take(srv, PST__OP__OP_HEARTBEAT, &r);
    send_done(srv, 2, NULL);
    assert_int_equal(site_join(srv), PST_OK);

    script_t *s = &srv->script;
    assert_int_equal(s->n_train, 2);
    assert_int_equal(s->n_welcome, 2);
    assert_true(s->done_called && !s->done_final);
    assert_int_equal(s->done_rounds, 2);
    expect_rounds(srv, 2, 0);
    pst_fedsite_stats_t st;
    pst_fedsite_stats(srv->site, &st);
    assert_int_equal(st.reconnects, 1);
    server_free(srv);
}

/* Frames that are not a message, or a task whose values fail their checksum, are dropped and the
 * site goes on; a task that does not fit the model ends the site with an error that says so. */
static void bad_frames_are_dropped_and_misfits_refused_with_a_clear_error(void **state)
{
    (void)state;
    server_t *srv = welcomed_site();
    float g[N];
    global_of(1, g);

    assert_true(zmq_send(srv->sock, srv->route, srv->route_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(srv->sock, "junk", 4, 0) == 4);

    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_FED_TASK;
    h.site = SITE;
    h.clock = 1;
    h.count = N;
    h.codec = PST__CODEC__CODEC_RAW;
    h.raw_size = h.wire_size = sizeof g;
    h.checksum = pst_checksum(g, sizeof g) + 1;
    uint8_t packed[PST_WIRE_MAX_HEADER];
    size_t len = pst__header__pack(&h, packed);
    assert_true(zmq_send(srv->sock, srv->route, srv->route_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(srv->sock, packed, len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(srv->sock, g, sizeof g, 0) >= 0);

    received_t r;
    send_task(srv, 1, g, N, PST__CODEC__CODEC_RAW);
    take(srv, PST__OP__OP_FED_UPDATE, &r);
    expect_update(&r, 1, g);
    send_task(srv, 2, g, N - 1, PST__CODEC__CODEC_RAW);
    assert_int_equal(site_join(srv), PST_EPROTO);
    assert_string_equal(srv->err.msg, "fed site " SITE ": a task that does not fit the model");
    assert_int_equal(srv->script.n_train, 1);
    server_free(srv);
}

/* Before the welcome, an ERROR ends the site with the server's reason; a welcome without a model
 * is refused. */
static void a_refused_registration_or_an_empty_model_ends_the_site(void **state)
{
    (void)state;
    server_t *srv = server_new();
    site_start(srv, 30);
    received_t r;
    take(srv, PST__OP__OP_FED_REGISTER, &r);
    send_error(srv, PST_EINVAL, "site id 'site-a' is not in fed.sites");
    assert_int_equal(site_join(srv), PST_EINVAL);
    assert_string_equal(srv->err.msg,
                        "fed site " SITE ": registration refused: site id 'site-a' is not in "
                        "fed.sites");
    server_free(srv);

    srv = server_new();
    site_start(srv, 30);
    take(srv, PST__OP__OP_FED_REGISTER, &r);
    send_welcome(srv, 0);
    assert_int_equal(site_join(srv), PST_EPROTO);
    assert_string_equal(srv->err.msg, "fed site " SITE ": the server's model changed size");
    assert_int_equal(srv->script.n_welcome, 0);
    server_free(srv);
}

/* A server that never answers: the site gives up after server_timeout and says where to look. */
static void a_silent_server_ends_the_site(void **state)
{
    (void)state;
    server_t *srv = server_new();
    site_start(srv, 0.5);
    received_t r;
    take(srv, PST__OP__OP_FED_REGISTER, &r);
    assert_int_equal(site_join(srv), PST_ETIMEOUT);
    assert_non_null(strstr(srv->err.msg, "nothing from the server at tcp://127.0.0.1:"));
    assert_non_null(strstr(srv->err.msg, "is this site's key allowed?"));
    server_free(srv);
}

static void incomplete_configurations_are_refused(void **state)
{
    (void)state;
    pst_fedsite_hooks_t hooks = {NULL, NULL, on_train, NULL};
    pst_fedsite_cfg_t ok = {
        .site = SITE, .endpoint = "tcp://127.0.0.1:1", .heartbeat = 1, .server_timeout = 1};
    pst_fedsite_cfg_t bad[4] = {ok, ok, ok, ok};
    bad[0].site = "";
    bad[1].endpoint = NULL;
    bad[2].heartbeat = 0;
    bad[3].server_timeout = NAN;
    for (int i = 0; i < 4; i++) {
        pst_err_t err = {0};
        assert_null(pst_fedsite_new(&bad[i], &hooks, &err));
        assert_int_equal(err.code, PST_EINVAL);
        assert_non_null(strstr(err.msg, "fed site: needs a site id"));
    }
    pst_fedsite_hooks_t no_trainer = {0};
    assert_null(pst_fedsite_new(&ok, &no_trainer, NULL));
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_whole_run_registers_trains_and_gets_the_final_weights),
        cmocka_unit_test(heartbeats_come_while_idle_and_while_training),
        cmocka_unit_test(declined_rounds_say_why_and_other_failures_end_the_site),
        cmocka_unit_test(a_reconnected_site_sends_the_same_update_and_registers_again),
        cmocka_unit_test(bad_frames_are_dropped_and_misfits_refused_with_a_clear_error),
        cmocka_unit_test(a_refused_registration_or_an_empty_model_ends_the_site),
        cmocka_unit_test(a_silent_server_ends_the_site),
        cmocka_unit_test(incomplete_configurations_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
