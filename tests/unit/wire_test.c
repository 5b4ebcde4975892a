/* Tests for common/wire: round trips of every op and codec, and rejection of hostile messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "common/net/keycodec.h"
#include "common/rng.h"
#include "common/net/wire.h"

typedef struct fixture {
    void *ctx, *router, *dealer, *raw; /* raw: a plain DEALER that sends hand-made frames */
    pst_wire_t *rw, *dw;               /* wires of the router and the dealer */
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

static fixture_t *fixture_new(uint64_t max_bytes)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(f->router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof linger);
    f->rw = pst_wire_new(PST_WIRE_ROUTER, max_bytes, NULL);
    f->dw = pst_wire_new(PST_WIRE_DEALER, max_bytes, NULL);
    assert_int_equal(pst_wire_prepare_socket(f->rw, f->router, NULL), PST_OK);
    assert_int_equal(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    assert_int_equal(pst_wire_last_endpoint(f->router, endpoint, sizeof endpoint, NULL), PST_OK);
    assert_non_null(strstr(endpoint, "tcp://127.0.0.1:"));
    f->dealer = connected_dealer(f->ctx, endpoint);
    f->raw = connected_dealer(f->ctx, endpoint);
    return f;
}

static void fixture_destroy(fixture_t *f)
{
    zmq_close(f->raw);
    zmq_close(f->dealer);
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
    pst_wire_destroy(&f->rw);
    pst_wire_destroy(&f->dw);
    pst_wire_destroy(&f->dw);
    free(f);
}

static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = scale * sinf(0.37f * (float)i + 0.1f);
}

/* Largest error a codec may introduce on values of magnitude <= scale. */
static float codec_tolerance(pst_codec_t codec, float scale)
{
    switch (codec) {
    case PST_CODEC_FP16:
        return scale * 1e-3f;
    case PST_CODEC_INT8:
    case PST_CODEC_INT8_LZ4:
        return scale / 127.0f * 0.51f;
    default:
        return 0.0f;
    }
}

static void assert_close(const float *a, const float *b, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++) {
        if (fabsf(a[i] - b[i]) > tol)
            fail_msg("value %zu: %g vs %g (tolerance %g)", i, a[i], b[i], tol);
    }
}

/* Sends hdr from the dealer, receives it at the router, and checks every field survived. */
static void round_trip_one(fixture_t *f, int op, pst_codec_t codec, bool sparse)
{
    enum { N_KEYS = 5, WIDTH = 3, N_DENSE = 1000 };
    uint64_t keys[N_KEYS] = {0, 7, 19, 1u << 20, UINT64_MAX};
    float values[N_DENSE], got[N_DENSE];
    fill(values, N_DENSE, 2.0f);
    Pst__Header h = PST__HEADER__INIT;
    h.op = (Pst__Op)op;
    h.model_id = 3;
    h.tensor_id = 4;
    h.offset = sparse ? 0 : 17;
    h.count = sparse ? N_KEYS : N_DENSE;
    h.clock = 99;
    h.sender = 2;
    h.seq = 123456789;
    h.codec = (Pst__Codec)codec;
    h.sparse = sparse;
    h.row_width = sparse ? WIDTH : 0;
    h.lr = 0.25f;
    h.flags = 1;
    h.error = op == PST__OP__OP_ERROR ? "unknown tensor" : "";
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h,
                                   &(pst_wire_payload_t){.keys = keys, .values = values}, NULL),
                     PST_OK);
    pst_wire_msg_t m;
    pst_err_t err = {0};
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, &err), PST_OK);
    const Pst__Header *r = m.hdr;
    assert_int_equal(r->op, op);
    assert_int_equal(r->model_id, 3);
    assert_int_equal(r->tensor_id, 4);
    assert_int_equal(r->offset, h.offset);
    assert_int_equal(r->count, h.count);
    assert_int_equal(r->clock, 99);
    assert_int_equal(r->sender, 2);
    assert_int_equal(r->seq, 123456789);
    assert_int_equal(r->sparse, sparse);
    assert_int_equal(r->flags, 1);
    assert_true(r->lr == 0.25f);
    assert_string_equal(r->error, h.error);
    assert_non_null(m.route);
    size_t n_values = (size_t)pst_wire_value_count(r);
    assert_int_equal(m.n_values, n_values);
    bool with_keys = sparse && (op == PST__OP__OP_PUSH || op == PST__OP__OP_PULL);
    assert_int_equal(m.n_keys, with_keys ? N_KEYS : 0);
    if (with_keys)
        assert_memory_equal(m.keys, keys, sizeof keys);
    if (n_values > 0) {
        assert_int_equal(pst_wire_decode(f->rw, &m, got, &err), PST_OK);
        assert_close(got, values, n_values, codec_tolerance(codec, 2.0f));
        if (codec == PST_CODEC_RAW)
            assert_int_equal(r->wire_size, n_values * sizeof(float));
        if (codec == PST_CODEC_FP16)
            assert_int_equal(r->wire_size, n_values * 2);
    } else {
        assert_int_equal(r->raw_size, 0);
    }
    pst_wire_msg_close(&m);
    pst_wire_msg_close(&m);
}

static void round_trip_every_op_and_codec(void **state)
{
    fixture_t *f = fixture_new(0);
    for (int op = PST__OP__OP_PUSH; op <= PST__OP__OP_DROP; op++) {
        for (int codec = PST_CODEC_RAW; pst_codec_known(codec); codec++) {
            round_trip_one(f, op, (pst_codec_t)codec, false);
            round_trip_one(f, op, (pst_codec_t)codec, true);
        }
    }
    pst_wire_stats_t st;
    pst_wire_stats(f->rw, &st);
    assert_int_equal(st.messages_received, 17 * 6 * 2);
    assert_int_equal(st.bad_frames, 0);
    assert_string_equal(pst_wire_op_name(PST__OP__OP_DROP), "drop");
    assert_string_equal(pst_wire_op_name(PST__OP__OP_DROP + 1), "unknown");
    fixture_destroy(f);
}

/* A reply goes back through the router's identity frame to the dealer that asked. */
static void reply_reaches_the_sender(void **state)
{
    fixture_t *f = fixture_new(0);
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_PULL;
    h.count = 8;
    h.seq = 5;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, NULL, NULL), PST_OK);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    uint8_t route[256];
    size_t route_len = m.route_len;
    memcpy(route, m.route, route_len);
    pst_wire_msg_close(&m);

    float values[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
    Pst__Header r = PST__HEADER__INIT;
    r.op = PST__OP__OP_PULL_REPLY;
    r.count = 8;
    r.seq = 5;
    r.codec = PST__CODEC__CODEC_RAW;
    assert_int_equal(pst_wire_send(f->rw, f->router, route, route_len, &r,
                                   &(pst_wire_payload_t){.values = values, .lend = true}, NULL),
                     PST_OK);
    assert_int_equal(pst_wire_recv(f->dw, f->dealer, &m, 0, NULL), PST_OK);
    assert_null(m.route);
    assert_int_equal(m.hdr->seq, 5);
    assert_int_equal(pst_wire_decode(f->dw, &m, got, NULL), PST_OK);
    assert_memory_equal(got, values, sizeof values);
    pst_wire_msg_close(&m);

    /* Byte counters: 32 raw value bytes each way, plus the headers on the wire. */
    pst_wire_stats_t sent, received;
    pst_wire_stats(f->rw, &sent);
    pst_wire_stats(f->dw, &received);
    assert_int_equal(sent.bytes_raw_sent, 32);
    assert_int_equal(received.bytes_raw_received, 32);
    assert_int_equal(received.bytes_wire_received, sent.bytes_wire_sent);
    assert_true(sent.bytes_wire_sent > 32);
    fixture_destroy(f);
}

/* Error feedback: int8 with a residual keeps what quantisation lost, and the sum of what was
 * sent over many rounds tracks the sum of the true values. */
static void int8_residual_feeds_back(void **state)
{
    fixture_t *f = fixture_new(0);
    enum { N = 300 };
    float values[N], residual[N] = {0}, got[N];
    double sent_sum[N] = {0}, true_sum[N] = {0};
    fill(values, N, 1.0f);
    values[0] = 100.0f; /* a large value makes the block's scale coarse */
    for (int round = 0; round < 50; round++) {
        Pst__Header h = PST__HEADER__INIT;
        h.op = PST__OP__OP_PUSH;
        h.count = N;
        h.codec = PST__CODEC__CODEC_INT8;
        assert_int_equal(
            pst_wire_send(f->dw, f->dealer, NULL, 0, &h,
                          &(pst_wire_payload_t){.values = values, .residual = residual}, NULL),
            PST_OK);
        pst_wire_msg_t m;
        assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
        assert_int_equal(m.hdr->codec, PST__CODEC__CODEC_INT8);
        assert_int_equal(pst_wire_decode(f->rw, &m, got, NULL), PST_OK);
        pst_wire_msg_close(&m);
        for (int i = 0; i < N; i++) {
            sent_sum[i] += got[i];
            true_sum[i] += values[i];
        }
    }
    double worst = 0;
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(sent_sum[i] - true_sum[i]));
    /* Without feedback the error grows with the rounds (up to 50 * 0.39); with it, it stays
     * within one quantisation step. */
    assert_true(worst < 100.0 / 127.0);
    fixture_destroy(f);
}

/* int8lz4 over a socket pair: a PUSH of values with 90% zeros travels as one LZ4 block well under
 * int8's size; the receiver decodes exactly the floats plain int8 gives for the same values and
 * residual, the header's checksum is theirs, and the sender's residual is int8's. Uniform random
 * values fall back to int8 on the wire. */
static void int8lz4_push_travels_compressed(void **state)
{
    fixture_t *f = fixture_new(0);
    enum { N = 4096 };
    static float values[N], residual[N], int8_residual[N], got[N], want[N];
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    for (int i = 0; i < N; i++)
        values[i] = pst_rng_uniform(&rng) < 0.1 ? 2.0f * sinf(0.37f * (float)i + 0.1f) : 0.0f;
    size_t int8_cap = pst_codec_bound(PST_CODEC_INT8, N), int8_len;
    uint8_t *int8_buf = malloc(int8_cap);
    pst_codec_t used;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(pst_codec_encode(PST_CODEC_INT8, values, N, int8_residual, int8_buf,
                                          int8_cap, &int8_len, &used, NULL),
                         PST_OK);
        assert_int_equal(pst_codec_decode(PST_CODEC_INT8, int8_buf, int8_len, want, N, NULL),
                         PST_OK);
        Pst__Header h = PST__HEADER__INIT;
        h.op = PST__OP__OP_PUSH;
        h.count = N;
        h.codec = PST__CODEC__CODEC_INT8_LZ4;
        h.seq = (uint64_t)round;
        assert_int_equal(
            pst_wire_send(f->dw, f->dealer, NULL, 0, &h,
                          &(pst_wire_payload_t){.values = values, .residual = residual}, NULL),
            PST_OK);
        assert_int_equal(h.codec, PST__CODEC__CODEC_INT8_LZ4);
        pst_wire_msg_t m;
        pst_err_t err = {0};
        assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, &err), PST_OK);
        assert_int_equal(m.hdr->codec, PST__CODEC__CODEC_INT8_LZ4);
        assert_int_equal(m.hdr->seq, round);
        assert_int_equal(zmq_msg_size(&m.frames[m.values_frame]), m.hdr->wire_size);
        if (m.hdr->wire_size * 100 > int8_len * 45)
            fail_msg("int8lz4 frame of %llu bytes, int8 %zu", (unsigned long long)m.hdr->wire_size,
                     int8_len);
        assert_int_equal(pst_wire_decode(f->rw, &m, got, &err), PST_OK); /* checksum verified */
        assert_int_equal(pst_checksum(got, sizeof got), m.hdr->checksum);
        assert_memory_equal(got, want, sizeof got);
        assert_memory_equal(residual, int8_residual, sizeof residual);
        if (round == 0) /* no residual yet: within half a step of the values */
            assert_close(got, values, N, codec_tolerance(PST_CODEC_INT8_LZ4, 2.0f));
        pst_wire_msg_close(&m);
    }
    free(int8_buf);

    for (int i = 0; i < N; i++) /* random, unlike a sine, leaves LZ4 nothing to match */
        values[i] = (float)(2.0 * pst_rng_uniform(&rng) - 1.0);
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_PUSH;
    h.count = N;
    h.codec = PST__CODEC__CODEC_INT8_LZ4;
    assert_int_equal(
        pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &(pst_wire_payload_t){.values = values}, NULL),
        PST_OK);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(m.hdr->codec, PST__CODEC__CODEC_INT8);
    assert_int_equal(m.hdr->wire_size, int8_cap);
    assert_int_equal(pst_wire_decode(f->rw, &m, got, NULL), PST_OK);
    assert_close(got, values, N, codec_tolerance(PST_CODEC_INT8, 1.0f));
    pst_wire_msg_close(&m);
    pst_wire_stats_t st;
    pst_wire_stats(f->rw, &st);
    assert_int_equal(st.bad_frames, 0);
    fixture_destroy(f);
}

/* ---- hostile messages ---- */

static size_t pack(const Pst__Header *h, uint8_t *buf)
{
    return pst__header__pack(h, buf);
}

static void send_frames(void *sock, int n, const void *const *data, const size_t *len)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(sock, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

static Pst__Header good_push(uint64_t count)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_PUSH;
    h.count = count;
    h.raw_size = count * sizeof(float);
    h.wire_size = count * sizeof(float);
    return h;
}

/* Sends a header and optional keys/values frames from the raw socket. */
static void send_crafted(fixture_t *f, Pst__Header *h, const void *keys, size_t keys_len,
                         const float *values, size_t values_len)
{
    uint8_t buf[PST_WIRE_MAX_HEADER];
    const void *data[3] = {buf};
    size_t len[3] = {pack(h, buf)};
    int n = 1;
    if (keys != NULL) {
        data[n] = keys;
        len[n++] = keys_len;
    }
    if (values != NULL) {
        data[n] = values;
        len[n++] = values_len;
    }
    send_frames(f->raw, n, data, len);
}

/* After a rejected message the same socket still delivers a good one. */
static void expect_good_message_next(fixture_t *f)
{
    float values[4] = {1, 2, 3, 4}, got[4];
    Pst__Header h = good_push(4);
    h.codec = PST__CODEC__CODEC_RAW;
    h.seq = 777;
    assert_int_equal(
        pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &(pst_wire_payload_t){.values = values}, NULL),
        PST_OK);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(m.hdr->seq, 777);
    assert_int_equal(pst_wire_decode(f->rw, &m, got, NULL), PST_OK);
    assert_memory_equal(got, values, sizeof values);
    pst_wire_msg_close(&m);
}

static void expect_rejected(fixture_t *f, const char *what)
{
    pst_wire_stats_t before, after;
    pst_wire_stats(f->rw, &before);
    pst_wire_msg_t m;
    pst_err_t err = {0};
    int rc = pst_wire_recv(f->rw, f->router, &m, 0, &err);
    if (rc == PST_OK) {
        /* Structure fine: the values must then fail to decode. */
        float *dst = malloc((m.n_values + 1) * sizeof(float));
        rc = pst_wire_decode(f->rw, &m, dst, &err);
        free(dst);
        pst_wire_msg_close(&m);
    }
    if (rc != PST_EPROTO)
        fail_msg("%s: expected PST_EPROTO, got %d", what, rc);
    assert_true(strlen(err.msg) > 0);
    pst_wire_stats(f->rw, &after);
    assert_int_equal(after.bad_frames, before.bad_frames + 1);
    expect_good_message_next(f);
}

static void rejects_bad_headers(void **state)
{
    fixture_t *f = fixture_new(0);
    float values[4] = {1, 2, 3, 4};
    uint8_t buf[PST_WIRE_MAX_HEADER];

    /* Garbage bytes where the header belongs. */
    uint8_t garbage[16];
    memset(garbage, 0xff, sizeof garbage);
    send_frames(f->raw, 1, (const void *[]){garbage}, (size_t[]){sizeof garbage});
    expect_rejected(f, "garbage header");

    /* A truncated header: the last byte is the middle of the lr float. */
    Pst__Header h = good_push(4);
    h.lr = 0.5f;
    size_t len = pack(&h, buf);
    send_frames(f->raw, 2, (const void *[]){buf, values}, (size_t[]){len - 1, sizeof values});
    expect_rejected(f, "truncated header");

    /* An empty header frame, and a header frame above the size limit. */
    send_frames(f->raw, 1, (const void *[]){buf}, (size_t[]){0});
    expect_rejected(f, "empty header");
    uint8_t *big = calloc(PST_WIRE_MAX_HEADER + 10, 1);
    send_frames(f->raw, 1, (const void *[]){big}, (size_t[]){PST_WIRE_MAX_HEADER + 10});
    free(big);
    expect_rejected(f, "oversized header");

    /* Unknown op, op NONE, unknown codec. */
    h = good_push(4);
    h.op = (Pst__Op)42;
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "unknown op");
    h = good_push(0);
    h.op = PST__OP__OP_NONE;
    send_crafted(f, &h, NULL, 0, NULL, 0);
    expect_rejected(f, "op none");
    h = good_push(4);
    h.codec = (Pst__Codec)9;
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "unknown codec");
    /* DROP names a model and carries nothing else. */
    h = good_push(4);
    h.op = PST__OP__OP_DROP;
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "a drop with a values frame");
    fixture_destroy(f);
}

static void rejects_bad_frames_and_sizes(void **state)
{
    fixture_t *f = fixture_new(1 << 20);
    float values[4] = {1, 2, 3, 4};

    /* Missing values frame. */
    Pst__Header h = good_push(4);
    send_crafted(f, &h, NULL, 0, NULL, 0);
    expect_rejected(f, "missing frame");

    /* One extra frame, and many extra frames. */
    uint8_t buf[PST_WIRE_MAX_HEADER];
    size_t len = pack(&h, buf);
    send_frames(f->raw, 3, (const void *[]){buf, values, values},
                (size_t[]){len, sizeof values, sizeof values});
    expect_rejected(f, "extra frame");
    send_frames(f->raw, 8,
                (const void *[]){buf, values, values, values, values, values, values, values},
                (size_t[]){len, 16, 16, 16, 16, 16, 16, 16});
    expect_rejected(f, "many extra frames");

    /* A header op that carries nothing, followed by a values frame. */
    Pst__Header hb = PST__HEADER__INIT;
    hb.op = PST__OP__OP_BARRIER;
    send_crafted(f, &hb, NULL, 0, values, sizeof values);
    expect_rejected(f, "values on a barrier");

    /* raw_size disagreeing with count. */
    h = good_push(4);
    h.raw_size = 20;
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "wrong raw_size");

    /* wire_size disagreeing with the frame. */
    h = good_push(4);
    h.wire_size = 12;
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "wrong wire_size");

    /* Declared sizes above the limit (1 MiB here), consistent or not. */
    h = good_push(1ull << 40);
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "huge count");
    h = good_push(4);
    h.wire_size = 1ull << 33;
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "huge wire_size");
    size_t n_big = (1 << 20) / sizeof(float) + 1;
    float *big = calloc(n_big, sizeof(float));
    h = good_push(n_big);
    send_crafted(f, &h, NULL, 0, big, n_big * sizeof(float));
    free(big);
    expect_rejected(f, "payload above the limit");

    /* A sparse row width of zero. */
    h = good_push(0);
    h.sparse = 1;
    send_crafted(f, &h, NULL, 0, NULL, 0);
    expect_rejected(f, "zero row width");
    fixture_destroy(f);
}

static void rejects_bad_payloads(void **state)
{
    fixture_t *f = fixture_new(0);
    float values[4] = {1, 2, 3, 4};

    /* Checksum mismatch. */
    Pst__Header h = good_push(4);
    h.checksum = pst_checksum(values, sizeof values) ^ 1u;
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "checksum mismatch");

    /* A correct checksum over values that then change in flight. */
    h.checksum = pst_checksum(values, sizeof values);
    float flipped[4] = {1, 2, 3, 4.0000005f};
    send_crafted(f, &h, NULL, 0, flipped, sizeof flipped);
    expect_rejected(f, "one flipped bit");

    /* LZ4 payload that is not LZ4. */
    h = good_push(4);
    h.codec = PST__CODEC__CODEC_LZ4;
    h.wire_size = 12;
    uint8_t junk[12];
    memset(junk, 0xee, sizeof junk);
    uint8_t buf[PST_WIRE_MAX_HEADER];
    size_t len = pack(&h, buf);
    send_frames(f->raw, 2, (const void *[]){buf, junk}, (size_t[]){len, sizeof junk});
    expect_rejected(f, "corrupt lz4");

    /* int8 payload one byte short of its layout. */
    h = good_push(4);
    h.codec = PST__CODEC__CODEC_INT8;
    h.wire_size = 7;
    len = pack(&h, buf);
    send_frames(f->raw, 2, (const void *[]){buf, junk}, (size_t[]){len, 7});
    expect_rejected(f, "short int8");

    /* int8lz4 payload that is not LZ4. */
    h = good_push(4);
    h.codec = PST__CODEC__CODEC_INT8_LZ4;
    h.wire_size = sizeof junk;
    len = pack(&h, buf);
    send_frames(f->raw, 2, (const void *[]){buf, junk}, (size_t[]){len, sizeof junk});
    expect_rejected(f, "corrupt int8lz4");
    fixture_destroy(f);
}

static void rejects_bad_keys(void **state)
{
    fixture_t *f = fixture_new(0);
    float values[6] = {1, 2, 3, 4, 5, 6};
    Pst__Header h = good_push(3);
    h.sparse = 1;
    h.row_width = 2;
    h.raw_size = h.wire_size = sizeof values;
    h.checksum = pst_checksum(values, sizeof values);

    uint64_t unsorted[3] = {5, 3, 9}, duplicate[3] = {1, 4, 4}, sorted[3] = {1, 4, 9};
    send_crafted(f, &h, unsorted, sizeof unsorted, values, sizeof values);
    expect_rejected(f, "unsorted keys");
    send_crafted(f, &h, duplicate, sizeof duplicate, values, sizeof values);
    expect_rejected(f, "duplicate keys");
    send_crafted(f, &h, sorted, 16, values, sizeof values);
    expect_rejected(f, "short keys frame");
    send_crafted(f, &h, NULL, 0, values, sizeof values);
    expect_rejected(f, "missing keys frame");

    /* The same message with sorted keys is accepted. */
    send_crafted(f, &h, sorted, sizeof sorted, values, sizeof values);
    pst_wire_msg_t m;
    float got[6];
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(m.n_keys, 3);
    assert_int_equal(m.keys[2], 9);
    assert_int_equal(pst_wire_decode(f->rw, &m, got, NULL), PST_OK);
    assert_memory_equal(got, values, sizeof values);
    pst_wire_msg_close(&m);
    fixture_destroy(f);
}

/* ---- key encodings ---- */

static void keys_travel_delta_encoded(void **state)
{
    enum { NK = 1000 };
    fixture_t *f = fixture_new(0);
    static uint64_t keys[NK];
    for (int i = 0; i < NK; i++)
        keys[i] = (1ull << 40) + 3 * (uint64_t)i; /* a regular run: LZ4 takes it */
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_PULL;
    h.count = NK;
    h.sparse = 1;
    h.row_width = 2;
    assert_int_equal(
        pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &(pst_wire_payload_t){.keys = keys}, NULL),
        PST_OK);
    assert_int_equal(h.key_encoding, PST_WIRE_KEYS_DELTA);
    assert_true(h.key_signature == pst_keycodec_signature(keys, NK));
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(m.n_keys, NK);
    assert_memory_equal(m.keys, keys, sizeof keys);
    assert_true(m.hdr->key_signature == h.key_signature);
    size_t keys_frame = zmq_msg_size(&m.frames[2]);
    assert_true(keys_frame < NK / 10); /* 8000 bytes raw */
    pst_wire_msg_close(&m);
    pst_wire_stats_t sent, got;
    pst_wire_stats(f->dw, &sent);
    pst_wire_stats(f->rw, &got);
    assert_int_equal(sent.bytes_raw_sent, NK * 8);
    assert_int_equal(got.bytes_raw_received, NK * 8);
    assert_int_equal(sent.bytes_wire_sent, got.bytes_wire_received);
    assert_true(sent.bytes_wire_sent > keys_frame && sent.bytes_wire_sent < keys_frame + 64);
    fixture_destroy(f);
}

static void cached_keys_send_no_keys_frame(void **state)
{
    fixture_t *f = fixture_new(0);
    float values[6] = {1, 2, 3, 4, 5, 6}, got_values[6];
    Pst__Header h = good_push(3);
    h.sparse = 1;
    h.row_width = 2;
    h.codec = PST__CODEC__CODEC_RAW;
    h.flags = PST_WIRE_FLAG_KEYS_CACHED;
    h.key_signature = 0xfeedfacecafebeefull;
    assert_int_equal(
        pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &(pst_wire_payload_t){.values = values}, NULL),
        PST_OK);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_true(pst_wire_keys_cached(m.hdr));
    assert_true(m.hdr->key_signature == 0xfeedfacecafebeefull);
    assert_int_equal(m.n_frames, 3); /* route, header, values */
    assert_null(m.keys);
    assert_int_equal(m.n_keys, 0);
    assert_int_equal(pst_wire_decode(f->rw, &m, got_values, NULL), PST_OK);
    assert_memory_equal(got_values, values, sizeof values);
    size_t header = zmq_msg_size(&m.frames[1]);
    pst_wire_msg_close(&m);
    pst_wire_stats_t sent, got;
    pst_wire_stats(f->dw, &sent);
    pst_wire_stats(f->rw, &got);
    /* Raw counts the three keys the signature stands for; the wire only what travelled. */
    assert_int_equal(sent.bytes_raw_sent, 3 * 8 + sizeof values);
    assert_int_equal(got.bytes_raw_received, 3 * 8 + sizeof values);
    assert_int_equal(sent.bytes_wire_sent, header + sizeof values);
    assert_int_equal(got.bytes_wire_received, header + sizeof values);

    /* A keys frame beside the cached flag is one frame too many. */
    uint64_t keys[3] = {1, 2, 3};
    h.checksum = pst_checksum(values, sizeof values);
    send_crafted(f, &h, keys, sizeof keys, values, sizeof values);
    expect_rejected(f, "keys frame with the cached flag");
    fixture_destroy(f);
}

static void rejects_bad_encoded_keys(void **state)
{
    fixture_t *f = fixture_new(0);
    float values[6] = {1, 2, 3, 4, 5, 6};
    Pst__Header h = good_push(3);
    h.sparse = 1;
    h.row_width = 2;
    h.raw_size = h.wire_size = sizeof values;
    h.checksum = pst_checksum(values, sizeof values);
    h.key_encoding = PST_WIRE_KEYS_DELTA;
    const uint64_t sorted[3] = {1, 4, 9};
    h.key_signature = pst_keycodec_signature(sorted, 3);
    const uint8_t good[] = {PST_KEYCODEC_VARINT, 1, 3, 5},
                  repeat[] = {PST_KEYCODEC_VARINT, 1, 0, 5},
                  lz4_junk[] = {PST_KEYCODEC_LZ4, 4, 0xff, 0xff};

    send_crafted(f, &h, good, 3, values, sizeof values);
    expect_rejected(f, "truncated key encoding");
    send_crafted(f, &h, repeat, sizeof repeat, values, sizeof values);
    expect_rejected(f, "a repeated key");
    send_crafted(f, &h, lz4_junk, sizeof lz4_junk, values, sizeof values);
    expect_rejected(f, "a bad LZ4 block");
    h.key_signature ^= 1;
    send_crafted(f, &h, good, sizeof good, values, sizeof values);
    expect_rejected(f, "a signature that is not the list's");
    h.key_signature ^= 1;
    h.key_encoding = 7;
    send_crafted(f, &h, good, sizeof good, values, sizeof values);
    expect_rejected(f, "an unknown key encoding");
    h.key_encoding = PST_WIRE_KEYS_DELTA;

    send_crafted(f, &h, good, sizeof good, values, sizeof values);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(m.n_keys, 3);
    assert_memory_equal(m.keys, sorted, sizeof sorted);
    pst_wire_msg_close(&m);
    fixture_destroy(f);
}

static atomic_int releases;

static void count_release(void *data, void *hint)
{
    assert_ptr_equal(hint, &releases);
    (void)data;
    atomic_fetch_add(&releases, 1);
}

/* Lent values travel without a copy and are handed back exactly once: by ZeroMQ after sending, or
 * at once when another codec copied them. Views read raw frames in place. */
static void lent_values_are_released_once(void **state)
{
    fixture_t *f = fixture_new(0);
    enum { M = 4096 };
    float *values = malloc(M * sizeof(float));
    fill(values, M, 1.0f);
    atomic_store(&releases, 0);
    pst_wire_payload_t lent = {
        .values = values, .lend = true, .release = count_release, .hint = &releases};
    Pst__Header h = good_push(M);
    h.codec = PST__CODEC__CODEC_RAW;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &lent, NULL), PST_OK);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    const float *view = NULL;
    assert_int_equal(pst_wire_view(f->rw, &m, &view, NULL), PST_OK);
    assert_memory_equal(view, values, M * sizeof(float));
    pst_wire_msg_close(&m);
    for (int i = 0; i < 200 && atomic_load(&releases) == 0; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&releases), 1);

    /* fp16 copies while encoding: released before send returns; the view decodes. */
    h = good_push(M);
    h.codec = PST__CODEC__CODEC_FP16;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &lent, NULL), PST_OK);
    assert_int_equal(atomic_load(&releases), 2);
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(pst_wire_view(f->rw, &m, &view, NULL), PST_OK);
    assert_close(view, values, M, codec_tolerance(PST_CODEC_FP16, 1.0f));
    pst_wire_msg_close(&m);

    /* A checksum the sender already holds is sent as it is, not computed again: a wrong one
     * given reaches the receiver, which refuses the values. */
    h = good_push(M);
    h.codec = PST__CODEC__CODEC_RAW;
    pst_wire_payload_t known = {.values = values,
                                .checksum_known = true,
                                .checksum = pst_checksum(values, M * sizeof(float))};
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &known, NULL), PST_OK);
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(pst_wire_view(f->rw, &m, &view, NULL), PST_OK);
    pst_wire_msg_close(&m);
    known.checksum ^= 1;
    h = good_push(M);
    h.codec = PST__CODEC__CODEC_RAW;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &known, NULL), PST_OK);
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(pst_wire_view(f->rw, &m, &view, NULL), PST_EPROTO);
    pst_wire_msg_close(&m);

    /* A refused send releases too. */
    h.op = (Pst__Op)99;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &lent, NULL), PST_EINVAL);
    assert_int_equal(atomic_load(&releases), 3);

    /* A view checks the checksum like a decode. */
    h = good_push(4);
    h.checksum = 12345;
    send_crafted(f, &h, NULL, 0, values, 4 * sizeof(float));
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(pst_wire_view(f->rw, &m, &view, NULL), PST_EPROTO);
    pst_wire_msg_close(&m);
    free(values);
    fixture_destroy(f);
}

/* A header asking for PST_CODEC_AUTO gets its values sent raw or losslessly compressed, chosen
 * per tensor: every payload arrives bit for bit, lent values are released once each, and the
 * wire reports what it chose from measured ratios and link speed. */
static void auto_codec_is_lossless_and_reported(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(0);
    enum { M = 65536, SENDS = 40 };
    float *dense = malloc(M * sizeof(float)), *zeros = calloc(M, sizeof(float));
    float *got = malloc(M * sizeof(float));
    fill(dense, M, 1.0f);
    atomic_store(&releases, 0);
    for (int i = 0; i < SENDS; i++) {
        const float *values = i % 2 ? zeros : dense;
        pst_wire_payload_t lent = {
            .values = values, .lend = true, .release = count_release, .hint = &releases};
        Pst__Header h = good_push(M);
        h.tensor_id = (uint32_t)(i % 2);
        h.codec = (Pst__Codec)PST_CODEC_AUTO;
        assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &lent, NULL), PST_OK);
        pst_wire_msg_t m;
        assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
        int codec = (int)m.hdr->codec;
        assert_true(codec == PST_CODEC_RAW || codec == PST_CODEC_LZ4 ||
                    codec == PST_CODEC_LZ4_SHUFFLE);
        assert_int_equal(pst_wire_decode(f->rw, &m, got, NULL), PST_OK);
        assert_memory_equal(got, values, M * sizeof(float));
        pst_wire_msg_close(&m);
    }
    for (int i = 0; i < 200 && atomic_load(&releases) < SENDS; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&releases), SENDS);

    pst_wire_auto_choice_t c[4];
    assert_int_equal(pst_wire_auto_choices(f->dw, c, 4), 2);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(c[t].tensor_id, (uint32_t)t);
        assert_int_equal(c[t].op, PST__OP__OP_PUSH);
        assert_int_equal(c[t].payloads, SENDS / 2);
        assert_true(c[t].encode_bps > 0 && c[t].decode_bps > 0);
        /* Raw frames of 256 KiB were timed from send to release. */
        assert_true(c[t].link_bps > 0);
        assert_true(c[t].chosen == PST_CODEC_RAW ? c[t].why == PST_CODEC_AUTO_WHY_NO_GAIN
                                                 : c[t].why == PST_CODEC_AUTO_WHY_PAYS);
    }
    /* Smooth floats barely shrink; zeros collapse. */
    assert_true(c[0].ratio > 0.5);
    assert_true(c[1].ratio < 0.05);
    assert_int_equal(pst_wire_auto_choices(f->rw, c, 4), 0);

    /* A PULL may carry auto (the server chooses for its reply); a values frame may not. */
    Pst__Header pull = PST__HEADER__INIT;
    pull.op = PST__OP__OP_PULL;
    pull.count = M;
    pull.codec = (Pst__Codec)PST_CODEC_AUTO;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &pull, NULL, NULL), PST_OK);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal((int)m.hdr->codec, PST_CODEC_AUTO);
    pst_wire_msg_close(&m);
    Pst__Header forged = good_push(4);
    forged.codec = (Pst__Codec)PST_CODEC_AUTO;
    send_crafted(f, &forged, NULL, 0, dense, 4 * sizeof(float));
    expect_rejected(f, "a values frame in codec auto");
    free(dense);
    free(zeros);
    free(got);
    fixture_destroy(f);
}

/* FED_WELCOME carries the model contract in a blob frame after the header; a blob whose size or
 * checksum disagrees with the header, or a blob on an op that carries none, is dropped. */
static void blob_travels_and_is_checked(void **state)
{
    fixture_t *f = fixture_new(0);
    uint8_t blob[300];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)(i * 7 + 1);
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_FED_WELCOME;
    h.site = "site-a";
    h.clock = 4;
    pst_wire_payload_t p = {.blob = blob, .blob_len = sizeof blob};
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &p, NULL), PST_OK);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_OK);
    assert_int_equal(m.blob_len, sizeof blob);
    assert_memory_equal(m.blob, blob, sizeof blob);
    assert_string_equal(m.hdr->site, "site-a");
    uint32_t checksum = m.hdr->blob_checksum;
    pst_wire_msg_close(&m);

    uint8_t packed[PST_WIRE_MAX_HEADER];
    const void *data[2] = {packed, blob};
    size_t len[2];
    Pst__Header bad = h;
    bad.blob_size = sizeof blob;
    bad.blob_checksum = checksum ^ 1u; /* wrong checksum */
    len[0] = pack(&bad, packed), len[1] = sizeof blob;
    send_frames(f->raw, 2, data, len);
    bad.blob_checksum = checksum;
    bad.blob_size = sizeof blob - 1; /* size disagrees */
    len[0] = pack(&bad, packed);
    send_frames(f->raw, 2, data, len);
    bad.op = PST__OP__OP_HEARTBEAT; /* an op without a blob */
    bad.blob_size = sizeof blob;
    len[0] = pack(&bad, packed);
    send_frames(f->raw, 2, data, len);
    bad.op = PST__OP__OP_FED_WELCOME; /* a declared blob that is missing */
    len[0] = pack(&bad, packed);
    send_frames(f->raw, 1, data, len);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pst_wire_recv(f->rw, f->router, &m, 0, NULL), PST_EPROTO);
    pst_wire_stats_t st;
    pst_wire_stats(f->rw, &st);
    assert_int_equal(st.bad_frames, 4);

    h.op = PST__OP__OP_HEARTBEAT; /* the sender refuses a blob on an op that carries none */
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, &p, NULL), PST_EINVAL);
    fixture_destroy(f);
}

/* The sender refuses what the receiver would reject. */
static void send_checks_its_arguments(void **state)
{
    fixture_t *f = fixture_new(0);
    Pst__Header h = good_push(4);
    pst_err_t err = {0};
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, NULL, &err), PST_EINVAL);
    h.op = (Pst__Op)77;
    assert_int_equal(pst_wire_send(f->dw, f->dealer, NULL, 0, &h, NULL, &err), PST_EINVAL);
    pst_wire_msg_t m;
    assert_int_equal(pst_wire_recv(f->rw, f->router, &m, ZMQ_DONTWAIT, NULL), PST_ETIMEOUT);
    fixture_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_op_and_codec),
        cmocka_unit_test(reply_reaches_the_sender),
        cmocka_unit_test(int8_residual_feeds_back),
        cmocka_unit_test(int8lz4_push_travels_compressed),
        cmocka_unit_test(rejects_bad_headers),
        cmocka_unit_test(rejects_bad_frames_and_sizes),
        cmocka_unit_test(rejects_bad_payloads),
        cmocka_unit_test(rejects_bad_keys),
        cmocka_unit_test(keys_travel_delta_encoded),
        cmocka_unit_test(cached_keys_send_no_keys_frame),
        cmocka_unit_test(rejects_bad_encoded_keys),
        cmocka_unit_test(lent_values_are_released_once),
        cmocka_unit_test(auto_codec_is_lossless_and_reported),
        cmocka_unit_test(send_checks_its_arguments),
        cmocka_unit_test(blob_travels_and_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
