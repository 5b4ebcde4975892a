/* Tests for ps/fedserver: a live server in a thread, driven by sites played by hand over raw
 * DEALER sockets on loopback TCP: a whole run checked against hand-computed FedAvg, malformed and
 * hostile messages, silent and reconnecting sites, the start of round 1, CURVE sites that speak
 * for another site, a key without a site id bound to the first id it registers, the limit on
 * registered sites, rows claims held to what a site registered with, a ZeroMQ context shut
 * down under the server, a server started again after its last round handing over the final
 * weights, and the end of a run waiting for each site to acknowledge its DONE. */
#define _GNU_SOURCE /* pthread_tryjoin_np */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/net/codec.h"
#include "common/fed/fedauth.h"
#include "common/log.h"
#include "common/net/wire.h"
#include "ps/fed/fedserver.h"

#define N 8          /* floats of the model */
#define RECV_MS 3000 /* the longest wait for an expected message */
#define QUIET_MS 300 /* how long "nothing arrives" is watched */
#define SEED 77      /* the run seed */
#define MAX_ROUNDS 4
#define MAX_SITES 8
#define INBOX 16

static const float INIT[N] = {0.5f, -1.0f, 2.0f, 0.0f, 1.5f, -0.25f, 3.0f, -2.0f};
static const char CONTRACT[] = "inputs 8, dense 1, loss squared";

typedef struct site site_t;

/* A server running in a thread, and the rounds its hook saw. */
typedef struct fed {
    pst_fedcoord_t *coord;
    pst_fedserver_t *srv;
    pthread_t thread;
    int rc;
    pst_err_t err;
    char endpoint[128];
    void *ctx; /* the sites' sockets */
    site_t *sites[MAX_SITES];
    int n_sites;
    pst_fedcoord_round_t rounds[MAX_ROUNDS]; /* read after the thread is joined */
    int n_rounds;
} fed_t;

/* A message from the server, as a site received it. */
typedef struct reply {
    int op;
    uint64_t seq, clock, seed, count;
    uint32_t flags;
    int codec;
    char error[256];
    float values[N];
    char blob[64];
    size_t blob_len;
} reply_t;

/* A site played by hand. */
struct site {
    const char *id;
    void *sock;
    pst_wire_t *wire;
    uint64_t seq;
    reply_t inbox[INBOX]; /* received, not taken yet */
    int n_inbox;
};

/* ---- the server ---- */

static int record_round(void *ctx, const pst_fedcoord_round_t *r, const pst_fedtraffic_t *traffic,
                        double seconds, pst_err_t *err)
{
    (void)traffic, (void)seconds, (void)err;
    fed_t *f = ctx;
    if (f->n_rounds < MAX_ROUNDS)
        f->rounds[f->n_rounds++] = *r;
    return PST_OK;
}

static void *serve(void *arg)
{
    fed_t *f = arg;
    pst_fedserver_hooks_t hooks = {.ctx = f, .on_round = record_round};
    f->rc = pst_fedserver_run(f->srv, &hooks, &f->err);
    return NULL;
}

static pst_fedserver_cfg_t server_cfg(int expected_sites)
{
    pst_fedserver_cfg_t cfg = {
        .endpoint = "tcp://127.0.0.1:*",
        .down_codec = PST_CODEC_LZ4,
        .up_codec = PST_CODEC_RAW,
        .contract = (const uint8_t *)CONTRACT,
        .contract_len = sizeof CONTRACT - 1,
        .seed = SEED,
        .expected_sites = expected_sites,
        .start_timeout = 30,
        .heartbeat_timeout = 30,
    };
    return cfg;
}

/* run() without an error buffer, which is optional. */
static void *serve_without_err(void *arg)
{
    fed_t *f = arg;
    f->rc = pst_fedserver_run(f->srv, NULL, NULL);
    return NULL;
}

/* FedAvg (plain mean weighted by rows, server lr 1) over every site, for `rounds` rounds, run by
 * serve_fn in a thread. */
/* When set, fed_launch calls it on the new server before its thread starts (a restored state). */
static void (*fed_before_run)(fed_t *f);

static fed_t *fed_launch(const pst_fedserver_cfg_t *cfg, uint64_t rounds, void *(*serve_fn)(void *))
{
    fed_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pst_fedcoord_cfg_t cc;
    memset(&cc, 0, sizeof cc);
    cc.round = (pst_fedround_cfg_t){.fraction = 1.0,
                                    .min_sites = 1,
                                    .min_responses = 1000,
                                    .wait_after_min = 0,
                                    .round_timeout = 30,
                                    .seed = 5};
    pst_fedagg_cfg_defaults(&cc.agg, PST_FEDOPT_SGD);
    cc.agg.skip_nonfinite = 1;
    cc.rounds = rounds;
    pst_err_t err = {0};
    f->coord = pst_fedcoord_new(&cc, INIT, N, &err);
    assert_non_null(f->coord);
    f->srv = pst_fedserver_new(cfg, f->coord, f->endpoint, sizeof f->endpoint, &err);
    if (f->srv == NULL)
        fail_msg("fed server: %s", err.msg);
    f->ctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    if (fed_before_run != NULL)
        fed_before_run(f);
    assert_int_equal(pthread_create(&f->thread, NULL, serve_fn, f), 0);
    return f;
}

static fed_t *fed_start(const pst_fedserver_cfg_t *cfg, uint64_t rounds)
{
    return fed_launch(cfg, rounds, serve);
}

/* Waits for run() to return (after stopping it when stop is set); returns its result and the
 * server's counters. */
static int fed_join(fed_t *f, bool stop, pst_fedserver_stats_t *stats)
{
    if (stop)
        pst_fedserver_stop(f->srv);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    pst_fedserver_stats(f->srv, stats);
    return f->rc;
}

static void site_close(site_t *s)
{
    if (s->sock != NULL)
        zmq_close(s->sock);
    s->sock = NULL;
}

static void fed_free(fed_t *f)
{
    for (int i = 0; i < f->n_sites; i++) {
        site_close(f->sites[i]);
        pst_wire_destroy(&f->sites[i]->wire);
        free(f->sites[i]);
    }
    pst_fedserver_destroy(&f->srv);
    zmq_ctx_term(f->ctx);
    pst_fedcoord_destroy(&f->coord);
    free(f);
}

/* ---- sites ---- */

static void *dealer(fed_t *f, const pst_fedkey_pair_t *key, const char *server_public)
{
    void *sock = zmq_socket(f->ctx, ZMQ_DEALER);
    assert_non_null(sock);
    int timeout = RECV_MS, linger = 0;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (key != NULL)
        assert_int_equal(pst_fedauth_client_socket(sock, key, server_public, NULL), PST_OK);
    assert_int_equal(zmq_connect(sock, f->endpoint), 0);
    return sock;
}

static site_t *site_open_curve(fed_t *f, const char *id, const pst_fedkey_pair_t *key,
                               const char *server_public)
{
    assert_true(f->n_sites < MAX_SITES);
    site_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->id = id;
    s->sock = dealer(f, key, server_public);
    s->wire = pst_wire_new(PST_WIRE_DEALER, 0, NULL);
    assert_non_null(s->wire);
    f->sites[f->n_sites++] = s;
    return s;
}

static site_t *site_open(fed_t *f, const char *id)
{
    return site_open_curve(f, id, NULL, NULL);
}

/* The site comes back over a new connection (a new routing id); what the old one held is gone. */
static void site_reconnect(fed_t *f, site_t *s)
{
    site_close(s);
    s->n_inbox = 0;
    s->sock = dealer(f, NULL, NULL);
}

/* Receives the next message; fails the test when none comes within RECV_MS. */
static void recv_reply(site_t *s, reply_t *r)
{
    pst_wire_msg_t msg;
    pst_err_t err = {0};
    int rc = pst_wire_recv(s->wire, s->sock, &msg, 0, &err);
    if (rc != PST_OK)
        fail_msg("site %s: no message from the server: %s", s->id, pst_strerror(rc));
    const Pst__Header *h = msg.hdr;
    memset(r, 0, sizeof *r);
    r->op = h->op;
    r->seq = h->seq;
    r->clock = h->clock;
    r->seed = h->seed;
    r->count = h->count;
    r->flags = h->flags;
    r->codec = h->codec;
    snprintf(r->error, sizeof r->error, "%s", h->error);
    if (msg.n_values > 0) {
        assert_int_equal(msg.n_values, N);
        assert_int_equal(pst_wire_decode(s->wire, &msg, r->values, NULL), PST_OK);
    }
    assert_true(msg.blob_len <= sizeof r->blob);
    if (msg.blob_len > 0)
        memcpy(r->blob, msg.blob, msg.blob_len);
    r->blob_len = msg.blob_len;
    pst_wire_msg_close(&msg);
}

/* Takes the first message with op (any op when < 0) and seq (any when 0), receiving more as
 * needed; the others wait in the inbox in the order they came. */
static void take(site_t *s, int op, uint64_t seq, reply_t *out)
{
    for (;;) {
        for (int i = 0; i < s->n_inbox; i++) {
            reply_t *r = &s->inbox[i];
            if ((op < 0 || r->op == op) && (seq == 0 || r->seq == seq)) {
                *out = *r;
                memmove(r, r + 1, (size_t)(s->n_inbox - i - 1) * sizeof *r);
                s->n_inbox--;
                return;
            }
        }
        assert_true(s->n_inbox < INBOX);
        recv_reply(s, &s->inbox[s->n_inbox++]);
    }
}

/* Asserts that nothing arrives for QUIET_MS. */
static void quiet(site_t *s)
{
    assert_int_equal(s->n_inbox, 0);
    zmq_pollitem_t item = {s->sock, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, QUIET_MS), 0);
}

static Pst__Header header(site_t *s, int op)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = (Pst__Op)op;
    h.site = (char *)s->id;
    h.seq = ++s->seq;
    return h;
}

static void send_msg(site_t *s, Pst__Header *h, const float *values)
{
    pst_wire_payload_t p = {.values = values};
    assert_int_equal(pst_wire_send(s->wire, s->sock, NULL, 0, h, &p, NULL), PST_OK);
}

/* Sends h (with h->count values, or none) and takes the server's answer to it. */
static void request(site_t *s, Pst__Header *h, const float *values, reply_t *answer)
{
    send_msg(s, h, values);
    take(s, -1, h->seq, answer);
}

static void expect_error(const reply_t *r, int code)
{
    assert_int_equal(r->op, PST__OP__OP_ERROR);
    assert_int_equal(-(int)r->flags, code);
    assert_true(r->error[0] != '\0');
}

static void expect_ack(const reply_t *r, uint32_t flags)
{
    assert_int_equal(r->op, PST__OP__OP_ACK);
    assert_int_equal(r->flags, flags);
}

/* REGISTER, answered by a WELCOME with the contract, the model size and the codec of updates. */
static void site_register(site_t *s)
{
    Pst__Header h = header(s, PST__OP__OP_FED_REGISTER);
    reply_t r;
    request(s, &h, NULL, &r);
    assert_int_equal(r.op, PST__OP__OP_FED_WELCOME);
    assert_int_equal(r.count, N);
    assert_int_equal(r.codec, PST_CODEC_RAW);
    assert_int_equal(r.blob_len, sizeof CONTRACT - 1);
    assert_memory_equal(r.blob, CONTRACT, sizeof CONTRACT - 1);
}

static void heartbeat(site_t *s, reply_t *r)
{
    Pst__Header h = header(s, PST__OP__OP_HEARTBEAT);
    request(s, &h, NULL, r);
}

/* Registers, then says it is ready with a heartbeat. */
static void site_join(site_t *s)
{
    site_register(s);
    reply_t r;
    heartbeat(s, &r);
    expect_ack(&r, 0);
}

static void update(site_t *s, uint64_t round, const float *delta, uint64_t samples, reply_t *r)
{
    Pst__Header h = header(s, PST__OP__OP_FED_UPDATE);
    h.clock = round;
    h.count = N;
    h.samples = samples;
    h.loss = 0.5;
    request(s, &h, delta, r);
}

static void assert_weights(const float *got, const float *want)
{
    for (int j = 0; j < N; j++)
        assert_float_equal(got[j], want[j], 1e-5);
}

/* The round's TASK: its number, the site's seed and the global weights want. */
static void expect_task(site_t *s, uint64_t round, const float *want)
{
    reply_t r;
    take(s, PST__OP__OP_FED_TASK, 0, &r);
    assert_int_equal(r.clock, round);
    assert_int_equal(r.seed, pst_fedcoord_task_seed(SEED, round, s->id));
    assert_int_equal(r.count, N);
    assert_weights(r.values, want);
}

/* Acknowledges the DONE of round clock, as a site does. */
static void ack_done(site_t *s, uint64_t clock)
{
    Pst__Header h = header(s, PST__OP__OP_ACK);
    h.clock = clock;
    send_msg(s, &h, NULL);
}

/* The end of the run: the final weights want, or none (want NULL: stopped early); acknowledged
 * when ack is set. */
static void take_done(site_t *s, const float *want, bool ack)
{
    reply_t r;
    take(s, PST__OP__OP_FED_DONE, 0, &r);
    assert_int_equal(r.count, want != NULL ? N : 0);
    if (want != NULL)
        assert_weights(r.values, want);
    if (ack)
        ack_done(s, r.clock);
}

static void expect_done(site_t *s, const float *want)
{
    take_done(s, want, true);
}

/* Sends frames as they are, as one multipart message. */
static void send_raw(site_t *s, const void *const *frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(s->sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

static size_t pack(const Pst__Header *h, uint8_t *buf, size_t cap)
{
    assert_true(pst__header__get_packed_size(h) <= cap);
    return pst__header__pack(h, buf);
}

/* ---- expected weights ---- */

/* Site k's update in a round: distinct values, exact in binary. */
static void delta_of(int k, uint64_t round, float d[N])
{
    for (int j = 0; j < N; j++)
        d[j] = (float)(k + 1) * (j % 2 ? -0.25f : 0.5f) + 0.125f * (float)(round * (uint64_t)j);
}

/* w += the mean of the k deltas weighted by their rows (FedAvg with server lr 1). */
static void fedavg(float w[N], const float (*deltas)[N], const double *rows, int k)
{
    double total = 0;
    for (int i = 0; i < k; i++)
        total += rows[i];
    for (int j = 0; j < N; j++) {
        double sum = 0;
        for (int i = 0; i < k; i++)
            sum += rows[i] * deltas[i][j];
        w[j] += (float)(sum / total);
    }
}

/* ---- tests ---- */

/* Two sites, two rounds: WELCOME, TASKs with the right seeds and weights, FedAvg by hand, DONE. */
static void well_behaved_sites_run_to_the_end(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    fed_t *f = fed_start(&cfg, 2);
    site_t *a = site_open(f, "site-a"), *b = site_open(f, "site-b");
    site_join(a);
    site_join(b);
    float w[N], d[2][N];
    const double rows[2] = {10, 30};
    memcpy(w, INIT, sizeof w);
    for (uint64_t round = 1; round <= 2; round++) {
        expect_task(a, round, w);
        expect_task(b, round, w);
        delta_of(0, round, d[0]);
        delta_of(1, round, d[1]);
        reply_t r;
        update(a, round, d[0], 10, &r);
        expect_ack(&r, 0);
        assert_int_equal(r.clock, round);
        update(b, round, d[1], 30, &r);
        expect_ack(&r, 0);
        fedavg(w, d, rows, 2);
    }
    expect_done(a, w);
    expect_done(b, w);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_weights(pst_fedcoord_global(f->coord), w);
    assert_int_equal(f->n_rounds, 2);
    for (int i = 0; i < 2; i++) {
        const pst_fedcoord_round_t *r = &f->rounds[i];
        assert_int_equal(r->round, i + 1);
        assert_int_equal(r->asked, 2);
        assert_int_equal(r->answered, 2);
        assert_int_equal(r->refused, 0);
        assert_true(r->aggregated);
        assert_int_equal(r->closed_by, PST_FEDROUND_ALL);
        assert_float_equal(r->samples, 40, 0);
        assert_float_equal(r->train_loss, 0.5, 1e-12);
    }
    assert_int_equal(st.registrations, 2);
    assert_int_equal(st.rejoins + st.refused_registrations + st.impostors + st.bad_frames +
                         st.bad_updates + st.declined + st.heartbeat_drops,
                     0);
    fed_free(f);
}

/* Waits up to RECV_MS for a disconnect event on a monitor socket. */
static bool disconnected(void *monitor)
{
    for (double end = pst_clock_seconds() + RECV_MS / 1000.0; pst_clock_seconds() < end;) {
        zmq_msg_t event;
        zmq_msg_init(&event);
        if (zmq_msg_recv(&event, monitor, 0) < 0) {
            zmq_msg_close(&event);
            continue;
        }
        uint16_t id = 0;
        if (zmq_msg_size(&event) >= 2)
            memcpy(&id, zmq_msg_data(&event), 2);
        zmq_msg_close(&event);
        char address[256];
        assert_true(zmq_recv(monitor, address, sizeof address, 0) >= 0);
        if (id == ZMQ_EVENT_DISCONNECTED)
            return true;
    }
    return false;
}

/* Garbage, truncated and oversized headers and frames that do not match their header are
 * counted and dropped without an answer; a message beyond the size limit makes the server hang
 * up on its sender; the server goes on serving. */
static void malformed_messages_are_dropped_and_counted(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(1);
    fed_t *f = fed_start(&cfg, 1);
    site_t *s = site_open(f, "site-a");
    uint8_t garbage[8], big[5000], reg[128], upd[128], unknown[128];
    memset(garbage, 0xff, sizeof garbage);
    memset(big, 0, sizeof big);
    Pst__Header h = header(s, PST__OP__OP_FED_REGISTER);
    size_t reg_len = pack(&h, reg, sizeof reg);
    h = header(s, PST__OP__OP_FED_UPDATE);
    h.clock = 1;
    h.count = N;
    h.raw_size = h.wire_size = N * sizeof(float);
    h.samples = 3;
    size_t upd_len = pack(&h, upd, sizeof upd);
    h = header(s, PST__OP__OP_FED_REGISTER);
    h.op = (Pst__Op)99;
    size_t unknown_len = pack(&h, unknown, sizeof unknown);
    float values[N] = {0};
    struct {
        const void *frames[3];
        size_t lens[3];
        int n;
    } bad[] = {
        {{""}, {0}, 1},                                      /* empty header frame */
        {{garbage}, {sizeof garbage}, 1},                    /* does not parse */
        {{big}, {sizeof big}, 1},                            /* header over the limit */
        {{reg}, {reg_len - 1}, 1},                           /* truncated */
        {{reg, values}, {reg_len, sizeof values}, 2},        /* a frame REGISTER has not */
        {{upd}, {upd_len}, 1},                               /* UPDATE without its values */
        {{upd, values}, {upd_len, sizeof values - 4}, 2},    /* values shorter than declared */
        {{unknown}, {unknown_len}, 1},                       /* unknown op */
        {{upd, values, reg}, {upd_len, sizeof values, 4}, 3} /* one frame too many */
    };
    int n_bad = (int)(sizeof bad / sizeof bad[0]);
    for (int i = 0; i < n_bad; i++)
        send_raw(s, bad[i].frames, bad[i].lens, bad[i].n);

    /* Far past ZMQ_MAXMSGSIZE of a server for 8 floats: the connection is cut unparsed. */
    site_t *huge = site_open(f, "site-huge");
    assert_int_equal(
        zmq_socket_monitor(huge->sock, "inproc://fedserver-test-huge", ZMQ_EVENT_DISCONNECTED), 0);
    void *monitor = zmq_socket(f->ctx, ZMQ_PAIR);
    int timeout = 100, linger = 0;
    zmq_setsockopt(monitor, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(monitor, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(monitor, "inproc://fedserver-test-huge"), 0);
    size_t huge_len = 1 << 20;
    uint8_t *huge_frame = calloc(1, huge_len);
    assert_non_null(huge_frame);
    send_raw(huge, (const void *const[]){huge_frame}, &huge_len, 1);
    assert_true(disconnected(monitor));
    zmq_socket_monitor(huge->sock, NULL, 0);
    zmq_close(monitor);
    free(huge_frame);

    /* Messages of one connection are handled in order: the bad ones were all seen first, and
     * none was answered. */
    site_register(s);
    assert_int_equal(s->n_inbox, 0);
    reply_t r;
    heartbeat(s, &r);
    expect_ack(&r, 0);
    expect_task(s, 1, INIT);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, true, &st), PST_ESTATE);
    assert_int_equal(st.bad_frames, n_bad);
    assert_int_equal(st.registrations, 1);
    assert_int_equal(st.bad_updates, 0);
    fed_free(f);
}

/* An UPDATE of the wrong size, one with a corrupt checksum and one from no rows are refused with
 * an ERROR; their sites leave the round, which closes with the one good update. */
static void bad_updates_are_refused_and_the_round_closes_without_them(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(4);
    fed_t *f = fed_start(&cfg, 2);
    site_t *wrong_size = site_open(f, "a-wrong-size"), *corrupt = site_open(f, "b-corrupt"),
           *no_rows = site_open(f, "c-no-rows"), *good = site_open(f, "d-good");
    site_t *all[4] = {wrong_size, corrupt, no_rows, good};
    for (int i = 0; i < 4; i++)
        site_join(all[i]);
    for (int i = 0; i < 4; i++)
        expect_task(all[i], 1, INIT);
    float d[N], w[N];
    delta_of(0, 1, d);
    reply_t r;

    Pst__Header h = header(wrong_size, PST__OP__OP_FED_UPDATE);
    h.clock = 1;
    h.count = N - 3;
    h.samples = 5;
    request(wrong_size, &h, d, &r);
    expect_error(&r, PST_EPROTO);

    h = header(corrupt, PST__OP__OP_FED_UPDATE);
    h.clock = 1;
    h.count = N;
    h.raw_size = h.wire_size = sizeof d;
    h.checksum = pst_checksum(d, sizeof d) ^ 1u;
    h.samples = 5;
    uint8_t packed[256];
    size_t len = pack(&h, packed, sizeof packed);
    send_raw(corrupt, (const void *const[]){packed, d}, (const size_t[]){len, sizeof d}, 2);
    take(corrupt, -1, h.seq, &r);
    expect_error(&r, PST_EPROTO);

    update(no_rows, 1, d, 0, &r);
    expect_error(&r, PST_EPROTO);

    update(good, 1, d, 7, &r);
    expect_ack(&r, 0);
    memcpy(w, INIT, sizeof w);
    fedavg(w, (const float(*)[N])d, (const double[]){7}, 1);
    /* The three refused sites did not answer round 1, so round 2 asks only the good one. */
    expect_task(good, 2, w);
    delta_of(1, 2, d);
    update(good, 2, d, 7, &r);
    expect_ack(&r, 0);
    fedavg(w, (const float(*)[N])d, (const double[]){7}, 1);
    expect_done(good, w);
    for (int i = 0; i < 3; i++) /* told too; the run ends at their acknowledgements */
        ack_done(all[i], 2);

    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_weights(pst_fedcoord_global(f->coord), w);
    assert_int_equal(st.bad_updates, 3);
    assert_int_equal(st.bad_frames, 1); /* the checksum */
    assert_int_equal(f->n_rounds, 2);
    assert_int_equal(f->rounds[0].asked, 4);
    assert_int_equal(f->rounds[0].answered, 1);
    assert_int_equal(f->rounds[0].closed_by, PST_FEDROUND_ALL);
    assert_true(f->rounds[0].aggregated);
    assert_int_equal(f->rounds[1].asked, 1);
    assert_int_equal(f->rounds[1].answered, 1);
    fed_free(f);
}

/* Updates for a future round, a round already closed, and a second update for the same round
 * are acknowledged as stale and left out of the aggregate. */
static void stale_future_and_duplicate_updates_do_not_count(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    fed_t *f = fed_start(&cfg, 2);
    site_t *a = site_open(f, "site-a"), *b = site_open(f, "site-b");
    site_join(a);
    site_join(b);
    float w[N], d[2][N], poison[N];
    for (int j = 0; j < N; j++)
        poison[j] = 1000.0f;
    const double rows[2] = {10, 30};
    memcpy(w, INIT, sizeof w);
    reply_t r;
    for (uint64_t round = 1; round <= 2; round++) {
        expect_task(a, round, w);
        expect_task(b, round, w);
        delta_of(0, round, d[0]);
        delta_of(1, round, d[1]);
        if (round == 1) {
            update(a, 5, poison, 10, &r); /* future */
            expect_ack(&r, PST_WIRE_FLAG_STALE);
        } else {
            update(b, 1, poison, 30, &r); /* late */
            expect_ack(&r, PST_WIRE_FLAG_STALE);
        }
        update(a, round, d[0], 10, &r);
        expect_ack(&r, 0);
        if (round == 1) {
            update(a, round, poison, 10, &r); /* duplicate */
            expect_ack(&r, PST_WIRE_FLAG_STALE);
        }
        update(b, round, d[1], 30, &r);
        expect_ack(&r, 0);
        fedavg(w, d, rows, 2);
    }
    expect_done(a, w);
    expect_done(b, w);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_weights(pst_fedcoord_global(f->coord), w);
    assert_int_equal(f->n_rounds, 2);
    assert_int_equal(f->rounds[0].refused, 2);
    assert_int_equal(f->rounds[0].answered, 2);
    assert_int_equal(f->rounds[1].refused, 1);
    assert_int_equal(f->rounds[1].answered, 2);
    assert_int_equal(st.bad_updates + st.bad_frames, 0);
    fed_free(f);
}

/* Unregistered sites, invalid site ids and requests of other protocols get an ERROR with the
 * right code and change nothing. */
static void unknown_sites_bad_ids_and_other_ops_get_errors(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(1);
    fed_t *f = fed_start(&cfg, 1);
    site_t *ghost = site_open(f, "ghost"), *a = site_open(f, "site-a");
    reply_t r;
    heartbeat(ghost, &r);
    expect_error(&r, PST_ENOTFOUND);
    float d[N];
    delta_of(0, 1, d);
    update(ghost, 1, d, 5, &r);
    expect_error(&r, PST_ENOTFOUND);

    char too_long[PST_FEDROUND_SITE_MAX + 2];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    const char *bad_ids[] = {"bad id!", PST_FEDAUTH_ANY_SITE, "", too_long, "a/../b"};
    int n_bad = (int)(sizeof bad_ids / sizeof bad_ids[0]);
    for (int i = 0; i < n_bad; i++) {
        Pst__Header h = header(ghost, PST__OP__OP_FED_REGISTER);
        h.site = (char *)bad_ids[i];
        request(ghost, &h, NULL, &r);
        expect_error(&r, PST_EINVAL);
    }

    site_register(a);
    Pst__Header h = header(a, PST__OP__OP_PUSH);
    h.count = N;
    request(a, &h, d, &r);
    expect_error(&r, PST_EPROTO);
    h = header(a, PST__OP__OP_FED_TASK);
    h.clock = 1;
    h.count = N;
    request(a, &h, d, &r);
    expect_error(&r, PST_EPROTO);
    h = header(a, PST__OP__OP_STATS);
    request(a, &h, NULL, &r);
    expect_error(&r, PST_EPROTO);

    heartbeat(a, &r);
    expect_ack(&r, 0);
    expect_task(a, 1, INIT);
    update(a, 1, d, 5, &r);
    expect_ack(&r, 0);
    float w[N];
    memcpy(w, INIT, sizeof w);
    fedavg(w, (const float(*)[N])d, (const double[]){5}, 1);
    expect_done(a, w);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(st.refused_registrations, n_bad);
    assert_int_equal(st.registrations, 1);
    assert_int_equal(st.bad_frames + st.bad_updates, 0);
    assert_int_equal(f->rounds[0].asked, 1);
    assert_weights(pst_fedcoord_global(f->coord), w);
    fed_free(f);
}

/* A site that declines (no update) leaves the round, which closes with the others. */
static void a_declining_site_leaves_the_round(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    fed_t *f = fed_start(&cfg, 1);
    site_t *a = site_open(f, "site-a"), *b = site_open(f, "site-b");
    site_join(a);
    site_join(b);
    expect_task(a, 1, INIT);
    expect_task(b, 1, INIT);
    Pst__Header h = header(a, PST__OP__OP_FED_UPDATE);
    h.clock = 1;
    h.flags = PST_WIRE_FLAG_DECLINED;
    h.error = "training diverged";
    reply_t r;
    request(a, &h, NULL, &r);
    expect_ack(&r, 0);
    float d[N], w[N];
    delta_of(1, 1, d);
    update(b, 1, d, 4, &r);
    expect_ack(&r, 0);
    memcpy(w, INIT, sizeof w);
    fedavg(w, (const float(*)[N])d, (const double[]){4}, 1);
    expect_done(a, w);
    expect_done(b, w);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(st.declined, 1);
    assert_int_equal(f->rounds[0].asked, 2);
    assert_int_equal(f->rounds[0].answered, 1);
    assert_int_equal(f->rounds[0].closed_by, PST_FEDROUND_ALL);
    assert_weights(pst_fedcoord_global(f->coord), w);
    fed_free(f);
}

/* Of three asked sites one answers, one comes back over a new connection and is sent its task
 * again, and one goes silent: after heartbeat_timeout the round goes on without it. */
static void silent_sites_are_dropped_and_reconnected_ones_get_their_task_again(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(3);
    cfg.heartbeat_timeout = 1.5;
    fed_t *f = fed_start(&cfg, 1);
    site_t *a = site_open(f, "site-a"), *b = site_open(f, "site-b"), *c = site_open(f, "site-c");
    site_t *all[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        site_register(all[i]);
    /* Ready together, so that none is already silent when the round starts. */
    double ready_at = pst_clock_seconds();
    Pst__Header hb[3];
    for (int i = 0; i < 3; i++) {
        hb[i] = header(all[i], PST__OP__OP_HEARTBEAT);
        send_msg(all[i], &hb[i], NULL);
    }
    reply_t r;
    for (int i = 0; i < 3; i++) {
        take(all[i], -1, hb[i].seq, &r);
        expect_ack(&r, 0);
        expect_task(all[i], 1, INIT);
    }
    site_reconnect(f, b);
    heartbeat(b, &r);
    expect_ack(&r, 0);
    expect_task(b, 1, INIT);
    float d[2][N], w[N];
    delta_of(0, 1, d[0]);
    delta_of(1, 1, d[1]);
    update(a, 1, d[0], 3, &r);
    expect_ack(&r, 0);
    update(b, 1, d[1], 1, &r);
    expect_ack(&r, 0);
    memcpy(w, INIT, sizeof w);
    fedavg(w, d, (const double[]){3, 1}, 2);
    expect_done(a, w);
    expect_done(b, w);
    assert_true(pst_clock_seconds() - ready_at >= cfg.heartbeat_timeout);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(st.heartbeat_drops, 1);
    assert_int_equal(st.registrations, 3);
    assert_int_equal(f->rounds[0].asked, 3);
    assert_int_equal(f->rounds[0].answered, 2);
    assert_int_equal(f->rounds[0].closed_by, PST_FEDROUND_ALL);
    assert_weights(pst_fedcoord_global(f->coord), w);
    fed_free(f);
}

/* Round 1 waits for expected_sites ready sites: registered is not ready. Stopped, the server tells
 * the sites the run is over without weights. */
static void round_one_waits_for_the_expected_sites(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    fed_t *f = fed_start(&cfg, 3);
    site_t *a = site_open(f, "site-a"), *b = site_open(f, "site-b");
    site_join(a);
    site_register(b);
    quiet(a);
    reply_t r;
    heartbeat(a, &r);
    expect_ack(&r, 0);
    assert_int_equal(r.clock, 0); /* no round started */
    heartbeat(b, &r);
    expect_ack(&r, 0);
    expect_task(a, 1, INIT);
    expect_task(b, 1, INIT);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, true, &st), PST_ESTATE);
    expect_done(a, NULL);
    expect_done(b, NULL);
    assert_int_equal(f->n_rounds, 0);
    fed_free(f);
}

/* Without the expected sites, round 1 starts at start_timeout with the ready ones. */
static void round_one_starts_at_start_timeout_with_the_ready_sites(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(3);
    cfg.start_timeout = 0.3;
    double started = pst_clock_seconds();
    fed_t *f = fed_start(&cfg, 1);
    site_t *a = site_open(f, "site-a"), *late = site_open(f, "site-late");
    site_join(a);
    site_register(late); /* registered, never ready: not asked */
    expect_task(a, 1, INIT);
    assert_true(pst_clock_seconds() - started >= cfg.start_timeout);
    float d[N], w[N];
    delta_of(0, 1, d);
    reply_t r;
    update(a, 1, d, 2, &r);
    expect_ack(&r, 0);
    memcpy(w, INIT, sizeof w);
    fedavg(w, (const float(*)[N])d, (const double[]){2}, 1);
    expect_done(a, w);
    ack_done(late, 1); /* told too, though never asked */
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(f->rounds[0].asked, 1);
    assert_int_equal(f->rounds[0].answered, 1);
    fed_free(f);
}

/* With CURVE, a key bound to site-a may not speak as site-b; as site-a it runs normally. */
static void curve_keys_speak_only_for_their_bound_site(void **state)
{
    (void)state;
    pst_fedkey_pair_t server, key_a;
    pst_fedkey_list_t allowed = {0};
    assert_int_equal(pst_fedkey_generate(&server, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&key_a, NULL), PST_OK);
    assert_int_equal(pst_fedkey_list_add(&allowed, key_a.public_key, "site-a", NULL), PST_OK);
    pst_fedserver_cfg_t cfg = server_cfg(1);
    cfg.key = &server;
    cfg.allowed = &allowed;
    fed_t *f = fed_start(&cfg, 1);
    site_t *a = site_open_curve(f, "site-a", &key_a, server.public_key);

    reply_t r;
    Pst__Header h = header(a, PST__OP__OP_FED_REGISTER);
    h.site = "site-b";
    request(a, &h, NULL, &r);
    expect_error(&r, PST_EINVAL);
    assert_non_null(strstr(r.error, "site-a"));
    h = header(a, PST__OP__OP_HEARTBEAT);
    h.site = "site-b";
    request(a, &h, NULL, &r);
    expect_error(&r, PST_EINVAL);

    site_join(a);
    expect_task(a, 1, INIT);
    float d[N], w[N];
    delta_of(0, 1, d);
    update(a, 1, d, 6, &r);
    expect_ack(&r, 0);
    memcpy(w, INIT, sizeof w);
    fedavg(w, (const float(*)[N])d, (const double[]){6}, 1);
    expect_done(a, w);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(st.impostors, 2);
    assert_int_equal(st.registrations, 1);
    assert_int_equal(st.auth_admitted, 1);
    assert_int_equal(st.auth_refused, 0);
    assert_weights(pst_fedcoord_global(f->coord), w);
    fed_free(f);
    pst_fedkey_list_fini(&allowed);
}

/* A key allowed without a site id binds to the first site id it registers: it may not register
 * or speak as another, and no other key may take that id (nor an id bound to a key). */
static void an_unbound_key_binds_to_its_first_site_id(void **state)
{
    (void)state;
    pst_fedkey_pair_t server, key_a, key_u, key_v;
    pst_fedkey_list_t allowed = {0};
    assert_int_equal(pst_fedkey_generate(&server, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&key_a, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&key_u, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&key_v, NULL), PST_OK);
    assert_int_equal(pst_fedkey_list_add(&allowed, key_a.public_key, "site-a", NULL), PST_OK);
    assert_int_equal(pst_fedkey_list_add(&allowed, key_u.public_key, NULL, NULL), PST_OK);
    assert_int_equal(pst_fedkey_list_add(&allowed, key_v.public_key, NULL, NULL), PST_OK);
    pst_fedserver_cfg_t cfg = server_cfg(1);
    cfg.key = &server;
    cfg.allowed = &allowed;
    fed_t *f = fed_start(&cfg, 1);
    site_t *u = site_open_curve(f, "site-u", &key_u, server.public_key);
    site_t *v = site_open_curve(f, "site-v", &key_v, server.public_key);
    reply_t r;
    /* before registering, an unbound key speaks for no site */
    heartbeat(v, &r);
    expect_error(&r, PST_EINVAL);
    assert_non_null(strstr(r.error, "this key has registered no site yet"));

    site_register(u); /* binds key_u to site-u */
    const char *others[] = {"site-x", "site-a"};
    for (int i = 0; i < 2; i++) {
        Pst__Header h = header(u, PST__OP__OP_FED_REGISTER);
        h.site = (char *)others[i];
        request(u, &h, NULL, &r);
        expect_error(&r, PST_EINVAL);
        assert_non_null(strstr(r.error, "this key registered as 'site-u'"));
    }
    Pst__Header h = header(u, PST__OP__OP_HEARTBEAT);
    h.site = "site-a";
    request(u, &h, NULL, &r);
    expect_error(&r, PST_EINVAL);
    /* another unbound key cannot take site-u's id, nor the id bound to key_a */
    const char *taken[] = {"site-u", "site-a"};
    for (int i = 0; i < 2; i++) {
        h = header(v, PST__OP__OP_FED_REGISTER);
        h.site = (char *)taken[i];
        request(v, &h, NULL, &r);
        expect_error(&r, PST_EINVAL);
        assert_non_null(strstr(r.error, "belongs to another key"));
    }

    heartbeat(u, &r); /* ready: round 1 asks site-u only */
    expect_ack(&r, 0);
    expect_task(u, 1, INIT);
    float d[N], w[N];
    delta_of(0, 1, d);
    update(u, 1, d, 4, &r);
    expect_ack(&r, 0);
    memcpy(w, INIT, sizeof w);
    fedavg(w, (const float(*)[N])d, (const double[]){4}, 1);
    expect_done(u, w);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(st.impostors, 6);
    assert_int_equal(st.refused_registrations, 4);
    assert_int_equal(st.registrations, 1);
    assert_weights(pst_fedcoord_global(f->coord), w);
    fed_free(f);
    pst_fedkey_list_fini(&allowed);
}

/* With max_sites 2 a third site id is refused; the registered ones may still rejoin. */
static void registrations_past_max_sites_are_refused(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(3);
    cfg.max_sites = 2;
    fed_t *f = fed_start(&cfg, 1);
    site_t *a = site_open(f, "site-a"), *b = site_open(f, "site-b"), *c = site_open(f, "site-c");
    site_register(a);
    site_register(b);
    reply_t r;
    Pst__Header h = header(c, PST__OP__OP_FED_REGISTER);
    request(c, &h, NULL, &r);
    expect_error(&r, PST_ERANGE);
    assert_non_null(strstr(r.error, "2 sites are registered already (fed.max_sites)"));
    site_register(a); /* a rejoin is no new id */
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, true, &st), PST_ESTATE);
    assert_int_equal(st.registrations, 2);
    assert_int_equal(st.rejoins, 1);
    assert_int_equal(st.refused_registrations, 1);
    fed_free(f);
}

/* A site that registered with 10 rows counts for 10 whatever it claims; one that registered with
 * none is held to its first accepted claim (30). FedAvg by hand with those rows. */
static void claims_count_for_no_more_than_the_site_registered_with(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    fed_t *f = fed_start(&cfg, 2);
    site_t *a = site_open(f, "site-a"), *b = site_open(f, "site-b");
    reply_t r;
    Pst__Header h = header(a, PST__OP__OP_FED_REGISTER);
    h.samples = 10;
    request(a, &h, NULL, &r);
    assert_int_equal(r.op, PST__OP__OP_FED_WELCOME);
    heartbeat(a, &r);
    expect_ack(&r, 0);
    site_join(b);
    const uint64_t claims[2][2] = {{1000000, 30}, {10, 3000}}; /* [round - 1][site] */
    const double rows[2] = {10, 30};
    float w[N], d[2][N];
    memcpy(w, INIT, sizeof w);
    for (uint64_t round = 1; round <= 2; round++) {
        expect_task(a, round, w);
        expect_task(b, round, w);
        delta_of(0, round, d[0]);
        delta_of(1, round, d[1]);
        update(a, round, d[0], claims[round - 1][0], &r);
        expect_ack(&r, 0);
        update(b, round, d[1], claims[round - 1][1], &r);
        expect_ack(&r, 0);
        fedavg(w, d, rows, 2);
    }
    expect_done(a, w);
    expect_done(b, w);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(st.lowered_claims, 2);
    assert_float_equal(f->rounds[0].samples, 40, 0);
    assert_float_equal(f->rounds[1].samples, 40, 0);
    assert_weights(pst_fedcoord_global(f->coord), w);
    fed_free(f);
}

/* When its ZeroMQ context is shut down under it, run() ends with PST_EIO, with or without an
 * error buffer. */
static void a_terminated_context_ends_the_run(void **state)
{
    (void)state;
    for (int with_err = 0; with_err < 2; with_err++) {
        void *ctx = zmq_ctx_new();
        assert_non_null(ctx);
        pst_fedserver_cfg_t cfg = server_cfg(1);
        cfg.zmq_ctx = ctx;
        fed_t *f = fed_launch(&cfg, 1, with_err ? serve : serve_without_err);
        site_t *a = site_open(f, "site-a");
        site_register(a); /* the server runs */
        zmq_ctx_shutdown(ctx);
        pst_fedserver_stats_t st;
        assert_int_equal(fed_join(f, false, &st), PST_EIO);
        if (with_err)
            assert_non_null(strstr(f->err.msg, "fed server"));
        fed_free(f);
        zmq_ctx_term(ctx);
    }
}

/* ---- a server started again after its last round ---- */

/* The state a checkpoint of the last of 2 rounds restores: sites a and b registered. */
static void restore_after_last_round(fed_t *f)
{
    pst_fedround_t *reg = pst_fedcoord_sites(f->coord);
    assert_int_equal(pst_fedround_register(reg, "a", NULL), 0);
    assert_int_equal(pst_fedround_register(reg, "b", NULL), 1);
    assert_int_equal(pst_fedcoord_resume_after(f->coord, 2, NULL), PST_OK);
    assert_true(pst_fedcoord_finished(f->coord));
    pst_fedserver_expect_sites(f->srv, 2);
}

static void heartbeat_acked(site_t *s)
{
    Pst__Header h = header(s, PST__OP__OP_HEARTBEAT);
    reply_t r;
    request(s, &h, NULL, &r);
    expect_ack(&r, 0);
}

static void expect_final(site_t *s)
{
    reply_t r;
    take(s, PST__OP__OP_FED_DONE, 0, &r);
    assert_int_equal(r.clock, 2);
    assert_int_equal(r.count, N);
    assert_memory_equal(r.values, INIT, sizeof INIT);
    ack_done(s, r.clock);
}

/* Killed after its last round, before the sites had the final weights: started again, it runs no
 * round, and each registered site that comes back gets DONE with the final weights, once; the
 * run ends when both had them. */
static void a_restart_after_the_last_round_hands_over_the_final_weights(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    fed_before_run = restore_after_last_round;
    fed_t *f = fed_start(&cfg, 2);
    fed_before_run = NULL;
    site_t *a = site_open(f, "a"), *b = site_open(f, "b");
    heartbeat_acked(a);
    expect_final(a);
    heartbeat_acked(a); /* already told: only the ack */
    quiet(a);
    heartbeat_acked(b);
    expect_final(b);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_int_equal(f->n_rounds, 0);
    fed_free(f);
}

/* A site that never comes back holds the end of such a run for the start timeout only. */
static void a_site_that_does_not_come_back_is_given_up_at_the_start_timeout(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    cfg.start_timeout = 0.5;
    fed_before_run = restore_after_last_round;
    double t0 = pst_clock_seconds();
    fed_t *f = fed_start(&cfg, 2);
    fed_before_run = NULL;
    site_t *a = site_open(f, "a");
    heartbeat_acked(a);
    expect_final(a);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    double took = pst_clock_seconds() - t0;
    assert_true(took >= 0.5 && took < 5.0);
    fed_free(f);
}

/* ---- the end of the run: DONE is acknowledged ---- */

/* One round of two sites, up to the DONE messages (not taken yet). */
static void one_round(fed_t *f, site_t *a, site_t *b, float w[N])
{
    site_join(a);
    site_join(b);
    float d[2][N];
    const double rows[2] = {10, 30};
    memcpy(w, INIT, N * sizeof *w);
    expect_task(a, 1, w);
    expect_task(b, 1, w);
    delta_of(0, 1, d[0]);
    delta_of(1, 1, d[1]);
    reply_t r;
    update(a, 1, d[0], 10, &r);
    update(b, 1, d[1], 30, &r);
    fedavg(w, d, rows, 2);
    (void)f;
}

/* The server stays until every site acknowledged DONE: a site whose DONE was lost with its old
 * connection gets it again when it comes back, and the run ends when it acknowledges. */
static void the_server_waits_for_each_site_to_acknowledge_done(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    fed_t *f = fed_start(&cfg, 1);
    site_t *a = site_open(f, "a"), *b = site_open(f, "b");
    float w[N];
    one_round(f, a, b, w);
    expect_done(a, w);
    /* b loses its connection, and with it the DONE queued for it */
    site_reconnect(f, b);
    usleep(3 * QUIET_MS * 1000);
    assert_int_equal(pthread_tryjoin_np(f->thread, NULL), EBUSY); /* still waiting for b */
    reply_t r;
    heartbeat(b, &r);
    take_done(b, w, true);
    double t0 = pst_clock_seconds();
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    assert_true(pst_clock_seconds() - t0 < 5.0); /* at b's ACK, far before the 30 s bound */
    assert_int_equal(st.done_acked, 2);
    assert_int_equal(st.done_unacked, 0);
    fed_free(f);
}

/* A site that never acknowledges (an older site) holds the end for fed.heartbeat_timeout only,
 * and is counted. */
static void a_site_that_never_acknowledges_is_given_up_after_the_heartbeat_timeout(void **state)
{
    (void)state;
    pst_fedserver_cfg_t cfg = server_cfg(2);
    cfg.heartbeat_timeout = 1.5;
    fed_t *f = fed_start(&cfg, 1);
    site_t *a = site_open(f, "a"), *b = site_open(f, "b");
    float w[N];
    one_round(f, a, b, w);
    double t0 = pst_clock_seconds();
    expect_done(a, w);
    take_done(b, w, false);
    pst_fedserver_stats_t st;
    assert_int_equal(fed_join(f, false, &st), PST_OK);
    double took = pst_clock_seconds() - t0;
    assert_true(took >= 1.0 && took < 6.0);
    assert_int_equal(st.done_acked, 1);
    assert_int_equal(st.done_unacked, 1);
    fed_free(f);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_behaved_sites_run_to_the_end),
        cmocka_unit_test(the_server_waits_for_each_site_to_acknowledge_done),
        cmocka_unit_test(a_site_that_never_acknowledges_is_given_up_after_the_heartbeat_timeout),
        cmocka_unit_test(malformed_messages_are_dropped_and_counted),
        cmocka_unit_test(bad_updates_are_refused_and_the_round_closes_without_them),
        cmocka_unit_test(stale_future_and_duplicate_updates_do_not_count),
        cmocka_unit_test(unknown_sites_bad_ids_and_other_ops_get_errors),
        cmocka_unit_test(a_declining_site_leaves_the_round),
        cmocka_unit_test(silent_sites_are_dropped_and_reconnected_ones_get_their_task_again),
        cmocka_unit_test(round_one_waits_for_the_expected_sites),
        cmocka_unit_test(round_one_starts_at_start_timeout_with_the_ready_sites),
        cmocka_unit_test(curve_keys_speak_only_for_their_bound_site),
        cmocka_unit_test(an_unbound_key_binds_to_its_first_site_id),
        cmocka_unit_test(registrations_past_max_sites_are_refused),
        cmocka_unit_test(claims_count_for_no_more_than_the_site_registered_with),
        cmocka_unit_test(a_terminated_context_ends_the_run),
        cmocka_unit_test(a_restart_after_the_last_round_hands_over_the_final_weights),
        cmocka_unit_test(a_site_that_does_not_come_back_is_given_up_at_the_start_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
