/* Tests for coalesced messages in common/net/wire: several messages in one ZeroMQ message, read
 * back one at a time with their own values; a ROUTER's replies grouped per peer; a bad message
 * inside a coalesced group drops the rest of the group and leaves the socket clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/net/wire.h"

typedef struct fixture {
    void *ctx, *router, *dealer, *raw; /* raw: a second DEALER, for hand-made frames */
    pst_wire_t *rw, *dw, *xw;          /* wires of the router, the dealer and raw */
} fixture_t;

static void *connected_dealer(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    return s;
}

static int setup(void **state)
{
    pst_log_set_level(PST_LOG_ERROR);
    fixture_t *f = calloc(1, sizeof *f);
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(f->router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof linger);
    f->rw = pst_wire_new(PST_WIRE_ROUTER, 0, NULL);
    f->dw = pst_wire_new(PST_WIRE_DEALER, 0, NULL);
    f->xw = pst_wire_new(PST_WIRE_DEALER, 0, NULL);
    assert_int_equal(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    assert_int_equal(pst_wire_last_endpoint(f->router, endpoint, sizeof endpoint, NULL), PST_OK);
    f->dealer = connected_dealer(f->ctx, endpoint);
    f->raw = connected_dealer(f->ctx, endpoint);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zmq_close(f->raw);
    zmq_close(f->dealer);
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
    pst_wire_destroy(&f->rw);
    pst_wire_destroy(&f->dw);
    pst_wire_destroy(&f->xw);
    free(f);
    return 0;
}

static Pst__Header header(int op, uint64_t seq)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = (Pst__Op)op;
    h.model_id = 1;
    h.tensor_id = 2;
    h.sender = 3;
    h.seq = seq;
    h.clock = 40 + seq;
    return h;
}

/* Receives one message at the router and checks its op, seq and route; returns it open. */
static void expect_message(fixture_t *f, pst_wire_msg_t *m, int op, uint64_t seq,
                           const uint8_t *route, size_t route_len)
{
    pst_err_t err = {0};
    int rc = pst_wire_recv(f->rw, f->router, m, ZMQ_DONTWAIT, &err);
    if (rc != PST_OK)
        fail_msg("seq %llu: %d %s", (unsigned long long)seq, rc, err.msg);
    assert_int_equal(m->hdr->op, op);
    assert_int_equal(m->hdr->seq, seq);
    assert_int_equal(m->hdr->clock, 40 + seq);
    assert_int_equal(m->hdr->flags & PST_WIRE_FLAG_MORE, 0); /* the wire's own, taken off */
    if (route != NULL) {
        assert_int_equal(m->route_len, route_len);
        assert_memory_equal(m->route, route, route_len);
    }
}

/* Waits (up to the socket's timeout) until something is readable at the router. */
static void await_router(fixture_t *f)
{
    zmq_pollitem_t item = {f->router, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, 3000), 1);
}

static void coalesced_requests_arrive_in_order_after_the_flush(void **state)
{
    fixture_t *f = *state;
    uint64_t keys[3] = {5, 9, 1000};
    float rows[6] = {1, 2, 3, 4, 5, 6}, dense[4] = {-1, 0.5f, 7, 8}, got[6];
    pst_wire_set_coalesce(f->dw, true);
    Pst__Header a = header(PST__OP__OP_PUSH, 1);
    a.sparse = true;
    a.row_width = 2;
    a.count = 3;
    Pst__Header b = header(PST__OP__OP_PULL, 2);
    b.count = 4;
    Pst__Header c = header(PST__OP__OP_PUSH, 3);
    c.count = 4;
    c.flags = PST_WIRE_FLAG_NO_ACK;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &a,
                                   &(pst_wire_payload_t){.keys = keys, .values = rows}, NULL),
                     PST_OK);
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &b, NULL, NULL), PST_OK);
    assert_int_equal(
        pst_wire_send(f->dw, f->dealer, NULL, 0, &c, &(pst_wire_payload_t){.values = dense}, NULL),
        PST_OK);
    assert_int_equal(a.flags & PST_WIRE_FLAG_MORE, 0); /* the caller's header is left alone */
    /* Held back until the flush: nothing has reached the router. */
    zmq_pollitem_t item = {f->router, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, 100), 0);
    assert_int_equal(pst_wire_flush(f->dw, f->dealer, NULL), PST_OK);
    assert_int_equal(pst_wire_flush(f->dw, f->dealer, NULL), PST_OK); /* nothing open: no-op */
    await_router(f);

    pst_wire_msg_t m;
    expect_message(f, &m, PST__OP__OP_PUSH, 1, NULL, 0);
    assert_int_equal(m.n_keys, 3);
    assert_memory_equal(m.keys, keys, sizeof keys);
    assert_int_equal(pst_wire_decode(f->rw, &m, got, NULL), PST_OK);
    assert_memory_equal(got, rows, sizeof rows);
    assert_true(pst_wire_in_open(f->rw));
    uint8_t route[256];
    size_t route_len = m.route_len;
    assert_true(route_len > 0 && route_len <= sizeof route);
    memcpy(route, m.route, route_len);
    pst_wire_msg_close(&m);

    expect_message(f, &m, PST__OP__OP_PULL, 2, route, route_len);
    assert_int_equal(m.hdr->count, 4);
    assert_int_equal(m.n_values, 0);
    assert_true(pst_wire_in_open(f->rw));
    pst_wire_msg_close(&m);

    expect_message(f, &m, PST__OP__OP_PUSH, 3, route, route_len);
    assert_int_equal(m.hdr->flags, PST_WIRE_FLAG_NO_ACK);
    assert_int_equal(pst_wire_decode(f->rw, &m, got, NULL), PST_OK);
    assert_memory_equal(got, dense, sizeof dense);
    /* The empty frame that ended the group was read with the last message. */
    assert_false(pst_wire_in_open(f->rw));
    pst_wire_msg_close(&m);
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, ZMQ_DONTWAIT, NULL), PST_ETIMEOUT);

    pst_wire_stats_t st;
    pst_wire_stats(f->rw, &st);
    assert_int_equal(st.messages_received, 3);
    assert_int_equal(st.bad_frames, 0);
    pst_wire_stats(f->dw, &st);
    assert_int_equal(st.messages_sent, 3);

    /* Coalescing off again: one ZeroMQ message per request, delivered at once. */
    pst_wire_set_coalesce(f->dw, false);
    Pst__Header d = header(PST__OP__OP_BARRIER, 4);
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &d, NULL, NULL), PST_OK);
    await_router(f);
    expect_message(f, &m, PST__OP__OP_BARRIER, 4, route, route_len);
    assert_false(pst_wire_in_open(f->rw));
    pst_wire_msg_close(&m);
}

/* Receives one reply at a dealer; returns its seq. */
static uint64_t dealer_reply(pst_wire_t *w, void *sock, bool *open_after)
{
    pst_wire_msg_t m;
    pst_err_t err = {0};
    int rc = pst_wire_recv(w, sock, &m, 0, &err);
    if (rc != PST_OK)
        fail_msg("reply: %d %s", rc, err.msg);
    uint64_t seq = m.hdr->seq;
    *open_after = pst_wire_in_open(w);
    pst_wire_msg_close(&m);
    return seq;
}

static void router_groups_replies_by_peer(void **state)
{
    fixture_t *f = *state;
    /* Each dealer introduces itself so that the router learns its route. */
    uint8_t routes[2][256];
    size_t lens[2];
    void *socks[2] = {f->dealer, f->raw};
    pst_wire_t *wires[2] = {f->dw, f->xw};
    for (int i = 0; i < 2; i++) {
        Pst__Header h = header(PST__OP__OP_HEARTBEAT, 10 + (uint64_t)i);
        assert_int_equal(pst_wire_send(wires[i], socks[i], NULL, 0, &h, NULL, NULL), PST_OK);
        await_router(f);
        pst_wire_msg_t m;
        expect_message(f, &m, PST__OP__OP_HEARTBEAT, 10 + (uint64_t)i, NULL, 0);
        lens[i] = m.route_len;
        memcpy(routes[i], m.route, m.route_len);
        pst_wire_msg_close(&m);
    }
    pst_wire_set_coalesce(f->rw, true);
    float w[2] = {0.25f, -4};
    uint64_t order[] = {0, 0, 1, 0}; /* peer of replies 20, 21, 22, 23 */
    for (int i = 0; i < 4; i++) {
        Pst__Header h = header(PST__OP__OP_PULL_REPLY, 20 + (uint64_t)i);
        h.count = 2;
        assert_int_equal(pst_wire_send(f->rw, f->router, routes[order[i]], lens[order[i]], &h,
                                       &(pst_wire_payload_t){.values = w}, NULL),
                         PST_OK);
    }
    assert_int_equal(pst_wire_flush(f->rw, f->router, NULL), PST_OK);
    bool open = false;
    /* dealer 0: 20 and 21 together (ended when the router turned to dealer 1), then 23 alone */
    assert_int_equal(dealer_reply(f->dw, f->dealer, &open), 20);
    assert_true(open);
    assert_int_equal(dealer_reply(f->dw, f->dealer, &open), 21);
    assert_false(open);
    assert_int_equal(dealer_reply(f->dw, f->dealer, &open), 23);
    assert_false(open);
    assert_int_equal(dealer_reply(f->xw, f->raw, &open), 22);
    assert_false(open);
    pst_wire_stats_t st;
    pst_wire_stats(f->dw, &st);
    assert_int_equal(st.bad_frames, 0);
}

static void send_raw(void *sock, int n, const void *const *data, const size_t *len)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(sock, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

static void bad_message_drops_the_rest_of_its_group(void **state)
{
    fixture_t *f = *state;
    uint8_t first[64], third[64], garbage[] = {0xff, 0xff, 0xff, 0xff};
    Pst__Header a = header(PST__OP__OP_PULL, 30);
    a.count = 2;
    a.flags = PST_WIRE_FLAG_MORE;
    size_t la = pst__header__pack(&a, first);
    Pst__Header c = header(PST__OP__OP_PULL, 32);
    c.count = 2;
    size_t lc = pst__header__pack(&c, third);
    /* a good message, a header that does not parse, a good message: one ZeroMQ message */
    send_raw(f->raw, 3, (const void *[]){first, garbage, third},
             (size_t[]){la, sizeof garbage, lc});
    await_router(f);
    pst_wire_msg_t m;
    expect_message(f, &m, PST__OP__OP_PULL, 30, NULL, 0);
    pst_wire_msg_close(&m);
    pst_err_t err = {0};
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, ZMQ_DONTWAIT, &err), PST_EPROTO);
    assert_non_null(strstr(err.msg, "does not parse"));
    assert_false(pst_wire_in_open(f->rw));
    /* the third message went with the group */
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, ZMQ_DONTWAIT, NULL), PST_ETIMEOUT);

    /* A group whose announced next message never comes: the last one is whole, nothing more. */
    send_raw(f->raw, 1, (const void *[]){first}, (size_t[]){la});
    await_router(f);
    expect_message(f, &m, PST__OP__OP_PULL, 30, NULL, 0);
    assert_false(pst_wire_in_open(f->rw));
    pst_wire_msg_close(&m);

    /* A message that announces no other keeps the old rule: an extra frame is refused. */
    send_raw(f->raw, 2, (const void *[]){third, third}, (size_t[]){lc, lc});
    await_router(f);
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, ZMQ_DONTWAIT, &err), PST_EPROTO);
    assert_non_null(strstr(err.msg, "frames, expected"));

    /* The socket is clean: the next message is read as usual. */
    send_raw(f->raw, 1, (const void *[]){third}, (size_t[]){lc});
    await_router(f);
    expect_message(f, &m, PST__OP__OP_PULL, 32, NULL, 0);
    pst_wire_msg_close(&m);
    pst_wire_stats_t st;
    pst_wire_stats(f->rw, &st);
    assert_int_equal(st.bad_frames, 2);

    /* The sender's own flag is refused from callers. */
    Pst__Header bad = header(PST__OP__OP_PULL, 33);
    bad.flags = PST_WIRE_FLAG_MORE;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &bad, NULL, NULL), PST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(coalesced_requests_arrive_in_order_after_the_flush, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(router_groups_replies_by_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_message_drops_the_rest_of_its_group, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
