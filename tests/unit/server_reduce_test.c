/* Tests for ps/server_reduce (through worker/psclient_reduce): reductions sum every live
 * worker's values, a worker declared dead is left out, one that comes back gets the completed
 * result flagged late with its drop's clocks (or, for one long forgotten, the clock to rejoin
 * at), and a stale push tells it the servers' clock, acknowledged or not; a sparse shard's BSP
 * clocks leave a dead worker out and take it back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/net/reduce_layout.h"
#include "ps/server.h"
#include "worker/psclient.h"

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

static server_run_t *start_server(int heartbeat_timeout_ms)
{
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.n_workers = 2;
    cfg.heartbeat_timeout_ms = heartbeat_timeout_ms;
    server_run_t *r = calloc(1, sizeof *r);
    pst_err_t err = {0};
    r->srv = pst_server_new(&cfg, &err);
    assert_non_null(r->srv);
    assert_int_equal(
        pst_server_bind(r->srv, "tcp://127.0.0.1:*", r->endpoint, sizeof r->endpoint, &err),
        PST_OK);
    assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
    return r;
}

static void finish_server(server_run_t *r)
{
    assert_int_equal(pthread_join(r->thread, NULL), 0);
    assert_int_equal(r->rc, PST_OK);
    pst_server_destroy(&r->srv);
    free(r);
}

static pst_psclient_t *connect_client_acks(server_run_t *srv, uint32_t id, int heartbeat_ms,
                                           bool push_acks)
{
    const char *endpoints[1] = {srv->endpoint};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = 1;
    cfg.worker_id = id;
    cfg.heartbeat_ms = heartbeat_ms;
    cfg.timeout_ms = 5000;
    cfg.push_codec = cfg.pull_codec = PST_CODEC_RAW;
    cfg.push_acks = push_acks;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    if (c == NULL)
        fail_msg("client: %s", err.msg);
    return c;
}

static pst_psclient_t *connect_client(server_run_t *srv, uint32_t id, int heartbeat_ms)
{
    return connect_client_acks(srv, id, heartbeat_ms, true);
}

static void ok(int rc, const pst_err_t *err)
{
    if (rc != PST_OK)
        fail_msg("rc %d: %s", rc, err->msg);
}

enum { N_VALUES = 2, RESULT = N_VALUES + 2 * PST_REDUCE_WORKER_FIELDS };

/* One worker's reduction in a thread, as the other blocks in its own. */
typedef struct reduce_arg {
    pst_psclient_t *c;
    double vals[N_VALUES], out[RESULT];
    size_t got;
    bool late;
    int rc;
} reduce_arg_t;

/* Registers the one 3-float tensor every test shares, and INITs it to (1, 2, 3); its handle. */
static int share_tensor(pst_psclient_t *c)
{
    pst_err_t err = {0};
    const float w0[3] = {1, 2, 3};
    int t = pst_psclient_register_dense(c, 0, 0, 3, &err);
    ok(pst_psclient_init_on_servers(c, t, w0, NULL, &err), &err);
    return t;
}

static void *reduce_main(void *p)
{
    reduce_arg_t *a = p;
    a->rc = pst_psclient_reduce(a->c, 7, 1, a->vals, N_VALUES, a->out, RESULT, &a->got, &a->late,
                                5000, NULL);
    return NULL;
}

static const double *fields(const double *out, int w)
{
    return out + N_VALUES + w * PST_REDUCE_WORKER_FIELDS;
}

static void sums_over_every_live_worker(void **state)
{
    server_run_t *srv = start_server(30000);
    reduce_arg_t a = {.c = connect_client(srv, 0, 100), .vals = {1.5, -2}};
    reduce_arg_t b = {.c = connect_client(srv, 1, 100), .vals = {0.25, 8}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reduce_main, &a), 0);
    reduce_main(&b);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (reduce_arg_t *x = &a; x != NULL; x = x == &a ? &b : NULL) {
        assert_int_equal(x->rc, PST_OK);
        assert_int_equal(x->got, RESULT);
        assert_false(x->late);
        assert_true(x->out[0] == 1.75 && x->out[1] == 6);
        for (int w = 0; w < 2; w++) {
            assert_true(fields(x->out, w)[PST_REDUCE_CONTRIBUTED] == 1);
            assert_true(fields(x->out, w)[PST_REDUCE_N_DROPS] == 0);
        }
    }
    pst_err_t err = {0};
    ok(pst_psclient_shutdown(a.c, &err), &err);
    ok(pst_psclient_shutdown(b.c, &err), &err);
    pst_psclient_destroy(&a.c);
    pst_psclient_destroy(&b.c);
    finish_server(srv);
}

/* Worker 1 never heartbeats: declared dead after 500 ms, the reduction completes with worker 0's
 * values and clock 0 with its push; when worker 1 speaks again it is back: its push of clock 0 is
 * stale (the server is at 1) and its reduction gets the completed result, flagged late, naming
 * its drop at clock 0 and its return at clock 1. */
static void a_dead_worker_is_left_out_and_rejoins(void **state)
{
    server_run_t *srv = start_server(500);
    pst_psclient_t *live = connect_client(srv, 0, 100);
    pst_psclient_t *away = connect_client(srv, 1, 0);
    pst_err_t err = {0};
    float g[3] = {0.5f, 0.5f, 0.5f}, w[3];
    int tl = share_tensor(live), ta = share_tensor(away);
    pst_ticket_t t;
    ok(pst_psclient_push(live, tl, g, 0, 1.0f, &t, &err), &err);
    ok(pst_psclient_wait(live, t, &err), &err);

    reduce_arg_t a = {.c = live, .vals = {3, 4}};
    reduce_main(&a); /* returns once worker 1 is declared dead */
    assert_int_equal(a.rc, PST_OK);
    assert_false(a.late);
    assert_true(a.out[0] == 3 && a.out[1] == 4);
    assert_true(fields(a.out, 0)[PST_REDUCE_CONTRIBUTED] == 1);
    assert_true(fields(a.out, 1)[PST_REDUCE_CONTRIBUTED] == 0);
    assert_true(fields(a.out, 1)[PST_REDUCE_N_DROPS] == 1);
    assert_true(fields(a.out, 1)[PST_REDUCE_DROPS] == 0);
    assert_true(fields(a.out, 1)[PST_REDUCE_DROPS + 1] == -1); /* not back */

    ok(pst_psclient_pull(live, tl, w, 1, &t, &err), &err);
    ok(pst_psclient_wait(live, t, &err), &err);
    assert_true(w[0] == 0.5f); /* clock 0 went on with worker 0's gradient alone */

    ok(pst_psclient_push(away, ta, g, 0, 1.0f, &t, &err), &err);
    ok(pst_psclient_wait(away, t, &err), &err);
    assert_int_equal(pst_psclient_take_stale_clock(away), 1);
    assert_int_equal(pst_psclient_take_stale_clock(away), 0); /* taken */
    reduce_arg_t b = {.c = away, .vals = {100, 100}};
    reduce_main(&b);
    assert_int_equal(b.rc, PST_OK);
    assert_true(b.late);
    assert_true(b.out[0] == 3 && b.out[1] == 4); /* the others' figures */
    assert_true(fields(b.out, 1)[PST_REDUCE_DROPS] == 0);
    assert_true(fields(b.out, 1)[PST_REDUCE_DROPS + 1] == 1); /* back at clock 1 */

    ok(pst_psclient_shutdown(live, &err), &err);
    ok(pst_psclient_shutdown(away, &err), &err);
    pst_psclient_destroy(&live);
    pst_psclient_destroy(&away);
    finish_server(srv);
}

/* Worker 1 never heartbeats and pushes without acknowledgements (transport.push_acks false):
 * declared dead, its push of clock 0 is dropped as stale and answered anyway, since that answer
 * is all it learns of the servers' clock; it is read by the time the next pull's answer is. */
static void an_unacknowledged_stale_push_tells_the_clock(void **state)
{
    server_run_t *srv = start_server(500);
    pst_psclient_t *live = connect_client(srv, 0, 100);
    pst_psclient_t *away = connect_client_acks(srv, 1, 0, false);
    pst_err_t err = {0};
    float g[3] = {0.5f, 0.5f, 0.5f}, w[3];
    int tl = share_tensor(live), ta = share_tensor(away);
    pst_ticket_t t;
    for (uint64_t clock = 0; clock < 3; clock++) { /* clock 0 goes on once worker 1 is dead */
        ok(pst_psclient_push(live, tl, g, clock, 1.0f, &t, &err), &err);
        ok(pst_psclient_wait(live, t, &err), &err);
        ok(pst_psclient_pull(live, tl, w, clock + 1, &t, &err), &err);
        ok(pst_psclient_wait(live, t, &err), &err);
    }
    ok(pst_psclient_push(away, ta, g, 0, 1.0f, &t, &err), &err);
    ok(pst_psclient_wait(away, t, &err), &err); /* no answer awaited */
    ok(pst_psclient_pull(away, ta, w, 1, &t, &err), &err);
    ok(pst_psclient_wait(away, t, &err), &err);
    assert_true(w[0] == -0.5f); /* the weights of clock 3: three of worker 0's steps */
    assert_int_equal(pst_psclient_take_stale_clock(away), 3);
    assert_int_equal(pst_psclient_take_stale_clock(away), 0);

    ok(pst_psclient_shutdown(live, &err), &err);
    ok(pst_psclient_shutdown(away, &err), &err);
    pst_psclient_destroy(&live);
    pst_psclient_destroy(&away);
    finish_server(srv);
}

static int reduce_at(pst_psclient_t *c, uint64_t clock, uint64_t index, reduce_arg_t *a)
{
    a->c = c;
    a->rc = pst_psclient_reduce(c, clock, index, a->vals, N_VALUES, a->out, RESULT, &a->got,
                                &a->late, 5000, NULL);
    return a->rc;
}

/* Worker 1 is declared dead; worker 0 goes on to clock 3 and through more reductions than the
 * server remembers. Back, worker 1 asks for the first of them, long forgotten: it gets no sums
 * but the clock it rejoins at (3: it pushed nothing since), kept for take_stale_clock; a
 * reduction still remembered is answered with its sums as before. */
static void a_forgotten_reduction_answers_with_the_clock_to_rejoin_at(void **state)
{
    server_run_t *srv = start_server(500);
    pst_psclient_t *live = connect_client(srv, 0, 100);
    pst_psclient_t *away = connect_client(srv, 1, 0);
    pst_err_t err = {0};
    float g[3] = {0.5f, 0.5f, 0.5f}, w[3];
    int tl = share_tensor(live);
    share_tensor(away); /* the same tensor, known to both */
    pst_ticket_t t;
    reduce_arg_t a = {.vals = {1, 2}};
    for (uint64_t clock = 0; clock < 3; clock++) {
        ok(pst_psclient_push(live, tl, g, clock, 1.0f, &t, &err), &err);
        ok(pst_psclient_wait(live, t, &err), &err);
        ok(pst_psclient_pull(live, tl, w, clock + 1, &t, &err), &err);
        ok(pst_psclient_wait(live, t, &err), &err);
    }
    enum { MANY = 40 }; /* more than the server keeps */
    for (uint64_t i = 0; i < MANY; i++) {
        assert_int_equal(reduce_at(live, 1 + i / 2, i % 2, &a), PST_OK);
        assert_false(a.late);
        assert_true(a.out[0] == 1 && a.out[1] == 2);
    }

    reduce_arg_t b = {.vals = {100, 100}};
    assert_int_equal(reduce_at(away, 1, 0, &b), PST_OK);
    assert_true(b.late);
    assert_int_equal(b.got, 0);
    assert_int_equal(pst_psclient_take_stale_clock(away), 3);
    assert_int_equal(reduce_at(away, MANY / 2, 1, &b), PST_OK); /* the latest: remembered */
    assert_true(b.late);
    assert_int_equal(b.got, RESULT);
    assert_true(b.out[0] == 1 && b.out[1] == 2);
    assert_true(fields(b.out, 1)[PST_REDUCE_DROPS + 1] == 3); /* back at clock 3 */
    assert_int_equal(pst_psclient_take_stale_clock(away), 0);

    ok(pst_psclient_shutdown(live, &err), &err);
    ok(pst_psclient_shutdown(away, &err), &err);
    pst_psclient_destroy(&live);
    pst_psclient_destroy(&away);
    finish_server(srv);
}

/* Registers a sparse tensor of one-float rows starting at 0 and INITs it; its handle. */
static int share_rows(pst_psclient_t *c)
{
    pst_err_t err = {0};
    int t = pst_psclient_register_sparse(c, 0, 0, 1, 0.0f, 1, &err);
    ok(pst_psclient_init_on_servers(c, t, NULL, NULL, &err), &err);
    return t;
}

/* Pushes grad for keys at clock and waits for the acknowledgement. */
static void push_rows(pst_psclient_t *c, int t, const uint64_t keys[2], const float grad[2],
                      uint64_t clock)
{
    pst_err_t err = {0};
    pst_ticket_t ticket;
    ok(pst_psclient_push_sparse(c, t, keys, 2, grad, clock, 1.0f, &ticket, &err), &err);
    ok(pst_psclient_wait(c, ticket, &err), &err);
}

/* Pulls the rows of keys at clock (waiting for it, under BSP) into rows. */
static void pull_rows(pst_psclient_t *c, int t, const uint64_t keys[2], float rows[2],
                      uint64_t clock)
{
    pst_err_t err = {0};
    pst_ticket_t ticket;
    ok(pst_psclient_pull_sparse(c, t, keys, 2, rows, clock, &ticket, &err), &err);
    ok(pst_psclient_wait(c, ticket, &err), &err);
}

/* The same on a sparse shard: worker 1 never heartbeats, so clock 0 of the rows goes on with
 * worker 0's push alone once it is declared dead; back, its push of clock 0 is stale and tells it
 * clock 1, and from there the clocks wait for both workers again and average both pushes. */
static void sparse_rows_go_on_without_a_dead_worker(void **state)
{
    (void)state;
    server_run_t *srv = start_server(500);
    pst_psclient_t *live = connect_client(srv, 0, 100);
    pst_psclient_t *away = connect_client(srv, 1, 0);
    int tl = share_rows(live), ta = share_rows(away);
    const uint64_t keys[2] = {3, 70};
    const float g[2] = {0.5f, -1.0f}, g_away[2] = {1.5f, 1.0f};
    float w[2];
    push_rows(live, tl, keys, g, 0);
    pull_rows(live, tl, keys, w, 1); /* answered once worker 1 is declared dead */
    assert_true(w[0] == -0.5f && w[1] == 1.0f);

    push_rows(away, ta, keys, g, 0);
    assert_int_equal(pst_psclient_take_stale_clock(away), 1);
    pull_rows(away, ta, keys, w, 1);
    assert_true(w[0] == -0.5f && w[1] == 1.0f); /* the rows of clock 1: its push not applied */
    push_rows(away, ta, keys, g_away, 1);
    push_rows(live, tl, keys, g, 1);
    pull_rows(live, tl, keys, w, 2);
    assert_true(w[0] == -1.5f && w[1] == 1.0f); /* the mean of both pushes of clock 1 */

    pst_err_t err = {0};
    ok(pst_psclient_shutdown(live, &err), &err);
    ok(pst_psclient_shutdown(away, &err), &err);
    pst_psclient_destroy(&live);
    pst_psclient_destroy(&away);
    finish_server(srv);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sums_over_every_live_worker),
        cmocka_unit_test(a_dead_worker_is_left_out_and_rejoins),
        cmocka_unit_test(an_unacknowledged_stale_push_tells_the_clock),
        cmocka_unit_test(a_forgotten_reduction_answers_with_the_clock_to_rejoin_at),
        cmocka_unit_test(sparse_rows_go_on_without_a_dead_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
