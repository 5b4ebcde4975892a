/* Fuzz target: a live federated server (ps/fedserver) fed well-framed but hostile messages from a
 * few site connections: registrations with odd ids, heartbeats, updates for any round with any
 * count, values (NaN and infinities included), rows and loss, declines, corrupt checksums,
 * reconnections and requests of other protocols. Input: a setup byte, then messages of a 16-byte
 * descriptor followed by value bytes (see next_message). Every request must get one answer of the
 * kind its op calls for; afterwards a new site must still be welcomed, and the global weights
 * (and every task) must be finite whatever the updates held: common/fedagg skips non-finite
 * updates and refuses a step that would overflow.
 *
 * The server is driven in this thread (pst_fedserver_step) at a clock of the target's own, which
 * moves on by TICK seconds with every message: rounds time out and silent sites are dropped at
 * the same points of an input on every run, and no server thread is started or woken per input.
 * One input in THREADED_ONE_IN (pst_fuzz_one_in) meets a server thread (pst_fedserver_run)
 * on the real clock instead, as sites do. */
#include <float.h>
#include <math.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/net/codec.h"
#include "common/log.h"
#include "common/net/wire.h"
#include "fuzz/fuzz.h"
#include "ps/fed/fedserver.h"

enum {
    DESCRIPTOR = 16,
    MAX_MESSAGES = 64,
    N_PARAMS = 8,
    N_CONNS = 3,
    MAX_VALUES = 64,              /* count up to 2 * N_PARAMS, sparse rows up to 3 wide */
    MAX_KNOWN = MAX_MESSAGES + 1, /* site ids remembered as registered */
    SITE_LEN = PST_FEDROUND_SITE_MAX + 2,
};

#define ANSWER_MS 5000
#define TICK 0.02 /* seconds of the server's clock per message */
/* Turns the server may take before it answers a request: a turn that ends a round returns before
 * reading, and rounds can follow one another at once only while each silences an asked site that
 * did not answer, at most one round per site known. */
enum { THREADED_ONE_IN = 1000, MAX_TURNS = 2 * (MAX_MESSAGES + 2) };

static const char CONTRACT[] = "fuzz model: 8 floats";

/* What a message descriptor asks for. */
typedef enum {
    SEND_REGISTER,
    SEND_HEARTBEAT,
    SEND_UPDATE,
    SEND_DECLINE,
    SEND_CORRUPT, /* an update whose checksum does not match its values */
    SEND_OTHER,   /* any other op */
    RECONNECT,    /* the connection is replaced by a new one (a new routing id); nothing sent */
} kind_t;

typedef struct message {
    kind_t kind;
    int conn;
    Pst__Header hdr;
    char site[SITE_LEN];
    bool known_valid; /* an id that must be welcomed */
    float values[MAX_VALUES];
    size_t n_values;
} message_t;

typedef struct served {
    pst_fedcoord_t *coord;
    pst_fedserver_t *srv;
    pthread_t thread;
    bool threaded; /* pst_fedserver_run on a thread of its own; else stepped here */
    double now;    /* stepped: the server's clock */
    int rc;
    atomic_int finished;
    char endpoint[64];
} served_t;

typedef struct session {
    void *conns[N_CONNS];
    pst_wire_t *wires[N_CONNS];
    uint64_t seq;
    char known[MAX_KNOWN][SITE_LEN]; /* ids welcomed so far */
    int n_known;
} session_t;

typedef struct answer {
    int op;
    uint32_t flags;
    uint64_t count;
    bool contract; /* a WELCOME carrying the contract */
} answer_t;

static void *zmq_context(void)
{
    static void *ctx;
    if (ctx == NULL) {
        ctx = zmq_ctx_new();
        pst_log_set_level(PST_LOG_ERROR); /* hostile input is logged as warnings */
    }
    pst_fuzz_check(ctx != NULL, "zmq context");
    return ctx;
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- the server ---- */

static void *serve(void *arg)
{
    served_t *s = arg;
    pst_err_t err = {0};
    s->rc = pst_fedserver_run(s->srv, NULL, &err);
    atomic_store(&s->finished, 1);
    return NULL;
}

/* setup: bits 0-1 expected sites, 2 fraction, 3-4 min_responses, 5-6 aggregation, 7 start
 * timeout. */
static void start_server(uint8_t setup, served_t *s)
{
    static const pst_fedagg_rule_t rules[4] = {PST_FEDAGG_MEAN, PST_FEDAGG_MEAN, PST_FEDAGG_MEDIAN,
                                               PST_FEDAGG_KRUM};
    static const pst_fedopt_t opts[4] = {PST_FEDOPT_SGD, PST_FEDOPT_YOGI, PST_FEDOPT_SGD,
                                         PST_FEDOPT_ADAM};
    static unsigned instance;
    pst_fedcoord_cfg_t cc;
    memset(&cc, 0, sizeof cc);
    cc.round = (pst_fedround_cfg_t){.fraction = setup & 4 ? 0.5 : 1.0,
                                    .min_sites = 1,
                                    .min_responses = 1 + (setup >> 3) % 4,
                                    .wait_after_min = 0.005,
                                    .round_timeout = 0.1,
                                    .seed = setup};
    int agg = (setup >> 5) % 4;
    pst_fedagg_cfg_defaults(&cc.agg, opts[agg]);
    cc.agg.rule = rules[agg];
    cc.agg.skip_nonfinite = 1;
    cc.rounds = 1000; /* never reached: the run ends when stopped */
    float init[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++)
        init[i] = 0.25f * (float)(i - 3);
    s->coord = pst_fedcoord_new(&cc, init, N_PARAMS, NULL);
    pst_fuzz_check(s->coord != NULL, "coordinator starts");
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://fuzz-fedserver-%u", instance++);
    pst_fedserver_cfg_t cfg = {.endpoint = endpoint,
                               .down_codec = setup & 1 ? PST_CODEC_LZ4 : PST_CODEC_RAW,
                               .up_codec = PST_CODEC_RAW,
                               .contract = (const uint8_t *)CONTRACT,
                               .contract_len = sizeof CONTRACT - 1,
                               .seed = 7,
                               .expected_sites = setup & 3,
                               .start_timeout = setup & 0x80 ? 5 : 0,
                               .heartbeat_timeout = 0.05,
                               .zmq_ctx = zmq_context()};
    pst_err_t err = {0};
    s->srv = pst_fedserver_new(&cfg, s->coord, s->endpoint, sizeof s->endpoint, &err);
    if (s->srv == NULL) /* say why: a resource the earlier inputs did not give back, say */
        fprintf(stderr, "fuzz: fed server %u: %s (errno %d)\n", instance, err.msg, errno);
    pst_fuzz_check(s->srv != NULL, "server starts");
    atomic_init(&s->finished, 0);
    s->now = 1000.0;
    if (s->threaded)
        pst_fuzz_check(pthread_create(&s->thread, NULL, serve, s) == 0, "server thread");
}

/* Stepped: the clock moves on and the server takes a turn. */
static void step(served_t *s)
{
    if (s->threaded)
        return;
    s->now += TICK;
    pst_err_t err = {0};
    pst_fuzz_check(pst_fedserver_step(s->srv, NULL, s->now, &err) == PST_OK, "the server steps");
}

/* ---- the sites ---- */

static void *connect_site(const served_t *s)
{
    void *sock = zmq_socket(zmq_context(), ZMQ_DEALER);
    int timeout = ANSWER_MS, linger = 0;
    pst_fuzz_check(sock != NULL, "socket");
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    pst_fuzz_check(zmq_connect(sock, s->endpoint) == 0, "connect");
    return sock;
}

static bool known(const session_t *ss, const char *site)
{
    for (int i = 0; i < ss->n_known; i++)
        if (strcmp(ss->known[i], site) == 0)
            return true;
    return false;
}

static bool within(const float *v, size_t n, float bound)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(v[i]) <= bound))
            return false;
    return true;
}

/* The site id of a descriptor: well-formed ones, odd ones, or bytes of the input. */
static void site_of(const uint8_t *d, message_t *m)
{
    static const char *ids[] = {"s0", "s1", "site-2", "S_3.x", "", "bad id", "*"};
    int pick = (d[1] >> 2) % 10;
    m->known_valid = pick < 4;
    if (pick < 7) {
        snprintf(m->site, sizeof m->site, "%s", ids[pick]);
    } else if (pick == 7) { /* one character too long */
        memset(m->site, 'x', PST_FEDROUND_SITE_MAX + 1);
        m->site[PST_FEDROUND_SITE_MAX + 1] = '\0';
    } else {
        memcpy(m->site, d + 9, 7);
        m->site[7] = '\0';
    }
}

/* Values: the input's bytes as floats, or small ones with a NaN, an infinity or a huge value. */
static size_t values_of(const uint8_t *d, const uint8_t *rest, size_t avail, message_t *m)
{
    size_t n = m->n_values, take = 0;
    for (size_t i = 0; i < n; i++)
        m->values[i] = 0.125f * (float)((int)(i % 7) - 3);
    switch (d[4] % 6) {
    case 0:
    case 1:
        take = avail / sizeof(float) < n ? avail / sizeof(float) : n;
        memcpy(m->values, rest, take * sizeof(float));
        break;
    case 3:
        if (n > 0)
            m->values[d[4] % n] = NAN;
        break;
    case 4:
        if (n > 0)
            m->values[d[4] % n] = (d[4] & 0x80) ? -INFINITY : INFINITY;
        break;
    case 5:
        if (n > 0)
            m->values[d[4] % n] = 3e38f;
        break;
    default:
        break;
    }
    return take * sizeof(float);
}

/* Decodes the descriptor at data into m; returns the bytes used. Layout: d[0] kind (and op),
 * d[1] connection and site id, d[2] round, d[3] count, sparse and row width, d[4] values, d[5]
 * codec, d[6..7] rows, d[8] loss, d[9..15] the bytes of a site id. */
static size_t next_message(const uint8_t *data, size_t size, message_t *m)
{
    static const kind_t kinds[16] = {SEND_UPDATE,   SEND_UPDATE,    SEND_UPDATE,    SEND_UPDATE,
                                     SEND_DECLINE,  SEND_HEARTBEAT, SEND_HEARTBEAT, SEND_REGISTER,
                                     SEND_REGISTER, SEND_CORRUPT,   RECONNECT,      SEND_OTHER,
                                     SEND_OTHER,    SEND_OTHER,     SEND_OTHER,     SEND_OTHER};
    static const Pst__Op ops[] = {[SEND_REGISTER] = PST__OP__OP_FED_REGISTER,
                                  [SEND_HEARTBEAT] = PST__OP__OP_HEARTBEAT,
                                  [SEND_UPDATE] = PST__OP__OP_FED_UPDATE,
                                  [SEND_DECLINE] = PST__OP__OP_FED_UPDATE,
                                  [SEND_CORRUPT] = PST__OP__OP_FED_UPDATE};
    static const uint64_t counts[8] = {N_PARAMS, N_PARAMS,     N_PARAMS,     N_PARAMS,
                                       0,        N_PARAMS - 1, N_PARAMS + 1, 2 * N_PARAMS};
    static const pst_codec_t codecs[3] = {PST_CODEC_RAW, PST_CODEC_LZ4, PST_CODEC_LZ4_SHUFFLE};
    const uint8_t *d = data;
    memset(m, 0, sizeof *m);
    m->kind = kinds[d[0] % 16];
    m->conn = (d[1] & 3) % N_CONNS; /* the low two bits; the rest picks the site id */
    site_of(d, m);
    Pst__Header *h = &m->hdr;
    pst__header__init(h);
    h->op = m->kind == SEND_OTHER ? (Pst__Op)(1 + (d[0] >> 4) % PST__OP__OP_FED_DONE)
                                  : (m->kind == RECONNECT ? PST__OP__OP_HEARTBEAT : ops[m->kind]);
    h->site = m->site;
    h->clock = d[2] == 255 ? UINT64_MAX : d[2] % 6;
    h->codec = (Pst__Codec)codecs[d[5] % 3];
    uint64_t rows = get_le(d + 6, 2);
    h->samples = rows == 0xffff ? UINT64_MAX : rows;
    h->loss = d[8] == 0 ? NAN : d[8] == 1 ? INFINITY : (double)d[8] / 16.0;
    if (m->kind == SEND_DECLINE) {
        h->flags = PST_WIRE_FLAG_DECLINED;
        h->error = (char *)"declined";
    } else if (h->op == PST__OP__OP_FED_UPDATE || m->kind == SEND_OTHER) {
        h->count = counts[d[3] % 8];
        /* Sparse updates only: a sparse PUSH or PULL would need keys. */
        h->sparse = h->op == PST__OP__OP_FED_UPDATE && (d[3] & 8);
        h->row_width = h->sparse ? 1 + (d[3] >> 4) % 3 : 0;
    }
    m->n_values = (size_t)pst_wire_value_count(h);
    return DESCRIPTOR + values_of(d, data + DESCRIPTOR, size - DESCRIPTOR, m);
}

/* Sends an update with a corrupt checksum as raw frames (pst_wire_send would compute it). */
static void send_corrupt(session_t *ss, message_t *m)
{
    Pst__Header *h = &m->hdr;
    h->codec = PST__CODEC__CODEC_RAW;
    h->raw_size = h->wire_size = m->n_values * sizeof(float);
    h->checksum = pst_checksum(m->values, h->raw_size) ^ 0x5a5a5a5au;
    uint8_t packed[PST_WIRE_MAX_HEADER];
    size_t len = pst__header__get_packed_size(h);
    pst_fuzz_check(len <= sizeof packed, "header fits");
    pst__header__pack(h, packed);
    void *sock = ss->conns[m->conn];
    bool more = m->n_values > 0;
    pst_fuzz_check(pst_fuzz_zmq_send(sock, packed, len, more ? ZMQ_SNDMORE : 0) >= 0, "send");
    if (more)
        pst_fuzz_check(pst_fuzz_zmq_send(sock, m->values, h->raw_size, 0) >= 0, "send");
}

/* Reads until the answer to seq arrives (stepped: the server takes turns until it has answered).
 * Tasks and final weights on the way must be finite. */
static void await_answer(session_t *ss, served_t *s, int conn, uint64_t seq, answer_t *a)
{
    for (int turns = 0;;) {
        pst_wire_msg_t msg;
        int rc = pst_wire_recv(ss->wires[conn], ss->conns[conn], &msg,
                               s->threaded ? 0 : ZMQ_DONTWAIT, NULL);
        if (rc == PST_ETIMEOUT && !s->threaded && turns++ < MAX_TURNS) {
            step(s);
            continue;
        }
        if (rc != PST_OK && !s->threaded)
            fprintf(stderr, "fuzz: no answer to request %llu on connection %d after %d turns\n",
                    (unsigned long long)seq, conn, turns);
        pst_fuzz_check(rc == PST_OK, "every request is answered");
        const Pst__Header *h = msg.hdr;
        if (h->op == PST__OP__OP_FED_TASK || (h->op == PST__OP__OP_FED_DONE && h->count > 0)) {
            float w[N_PARAMS];
            pst_fuzz_check(msg.n_values == N_PARAMS, "tasks carry the model");
            pst_fuzz_check(pst_wire_decode(ss->wires[conn], &msg, w, NULL) == PST_OK,
                           "tasks decode");
            pst_fuzz_check(within(w, N_PARAMS, FLT_MAX), "tasks carry finite weights");
        }
        bool reply = h->op == PST__OP__OP_ACK || h->op == PST__OP__OP_ERROR ||
                     h->op == PST__OP__OP_FED_WELCOME;
        if (reply && h->seq == seq) {
            a->op = h->op;
            a->flags = h->flags;
            a->count = h->count;
            a->contract = msg.blob_len == sizeof CONTRACT - 1 &&
                          memcmp(msg.blob, CONTRACT, sizeof CONTRACT - 1) == 0;
        }
        pst_wire_msg_close(&msg);
        if (reply && h->seq == seq)
            return;
    }
}

static bool is_error(const answer_t *a, int code)
{
    return a->op == PST__OP__OP_ERROR && -(int)a->flags == code;
}

/* The answer fits the request: welcomes for good ids, ACKs only for registered sites and for
 * updates of the model's size from at least one row, errors for everything else. */
static void check_answer(session_t *ss, const message_t *m, const answer_t *a)
{
    const Pst__Header *h = &m->hdr;
    bool registered = known(ss, m->site);
    switch (h->op) {
    case PST__OP__OP_FED_REGISTER:
        pst_fuzz_check(a->op == PST__OP__OP_FED_WELCOME || is_error(a, PST_EINVAL),
                       "a registration is welcomed or refused");
        pst_fuzz_check(!m->known_valid || a->op == PST__OP__OP_FED_WELCOME,
                       "good ids are welcomed");
        if (a->op == PST__OP__OP_FED_WELCOME) {
            pst_fuzz_check(a->count == N_PARAMS && a->contract, "the welcome carries the contract");
            if (!registered && ss->n_known < MAX_KNOWN)
                snprintf(ss->known[ss->n_known++], SITE_LEN, "%s", m->site);
        }
        return;
    case PST__OP__OP_HEARTBEAT:
        pst_fuzz_check(registered ? a->op == PST__OP__OP_ACK && a->flags == 0
                                  : is_error(a, PST_ENOTFOUND),
                       "heartbeats: ACK from registered sites only");
        return;
    case PST__OP__OP_FED_UPDATE:
        break;
    default:
        pst_fuzz_check(is_error(a, PST_EPROTO), "other protocols' requests are refused");
        return;
    }
    if (!registered) {
        pst_fuzz_check(is_error(a, PST_ENOTFOUND), "updates from unregistered sites are refused");
        return;
    }
    if (m->kind == SEND_DECLINE) {
        pst_fuzz_check(a->op == PST__OP__OP_ACK && a->flags == 0, "declines are acknowledged");
        return;
    }
    bool fits = h->count == N_PARAMS && m->n_values == N_PARAMS && h->samples > 0 &&
                m->kind != SEND_CORRUPT;
    pst_fuzz_check(fits ? a->op == PST__OP__OP_ACK : is_error(a, PST_EPROTO),
                   "updates are acknowledged exactly when they fit");
}

static void play(session_t *ss, served_t *s, message_t *m)
{
    if (m->kind == RECONNECT) {
        zmq_close(ss->conns[m->conn]);
        ss->conns[m->conn] = connect_site(s);
        return;
    }
    m->hdr.seq = ++ss->seq;
    if (m->kind == SEND_CORRUPT) {
        send_corrupt(ss, m);
    } else {
        pst_wire_payload_t p = {.values = m->values};
        pst_fuzz_check(pst_wire_send(ss->wires[m->conn], ss->conns[m->conn], NULL, 0, &m->hdr, &p,
                                     NULL) == PST_OK,
                       "send");
    }
    answer_t a = {0};
    step(s);
    await_answer(ss, s, m->conn, m->hdr.seq, &a);
    check_answer(ss, m, &a);
}

/* A new site that registers the way worker/fedsite does is welcomed. */
static void expect_serving(session_t *ss, served_t *s)
{
    message_t m;
    memset(&m, 0, sizeof m);
    m.kind = SEND_REGISTER;
    m.known_valid = true;
    snprintf(m.site, sizeof m.site, "%s", "late-site");
    pst__header__init(&m.hdr);
    m.hdr.op = PST__OP__OP_FED_REGISTER;
    m.hdr.site = m.site;
    zmq_close(ss->conns[0]);
    ss->conns[0] = connect_site(s);
    pst_fuzz_check(!atomic_load(&s->finished), "the server still runs");
    play(ss, s, &m);
}

/* The sites' wires, made once: a wire holds no state of a connection between messages. */
static pst_wire_t **site_wires(void)
{
    static pst_wire_t *wires[N_CONNS];
    for (int i = 0; i < N_CONNS; i++) {
        if (wires[i] == NULL)
            wires[i] = pst_wire_new(PST_WIRE_DEALER, 0, NULL);
        pst_fuzz_check(wires[i] != NULL, "wire");
    }
    return wires;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 + DESCRIPTOR)
        return 0;
    served_t s;
    memset(&s, 0, sizeof s);
    s.threaded = pst_fuzz_one_in(data, size, THREADED_ONE_IN);
    start_server(data[0], &s);
    session_t *ss = calloc(1, sizeof *ss);
    message_t *m = malloc(sizeof *m);
    pst_fuzz_check(ss != NULL && m != NULL, "allocation");
    pst_wire_t **wires = site_wires();
    for (int i = 0; i < N_CONNS; i++) {
        ss->conns[i] = connect_site(&s);
        ss->wires[i] = wires[i];
    }
    size_t at = 1;
    for (int i = 0; i < MAX_MESSAGES && size - at >= DESCRIPTOR; i++) {
        at += next_message(data + at, size - at, m);
        play(ss, &s, m);
    }
    expect_serving(ss, &s);
    if (s.threaded) {
        pst_fedserver_stop(s.srv);
        Pst__Header wake = PST__HEADER__INIT; /* ends the server's poll wait at once */
        wake.op = PST__OP__OP_HEARTBEAT;
        (void)pst_wire_send(ss->wires[0], ss->conns[0], NULL, 0, &wake, NULL, NULL);
        pthread_join(s.thread, NULL);
        pst_fuzz_check(s.rc == PST_ESTATE, "the run ends only when stopped");
    }
    pst_fuzz_check(within(pst_fedcoord_global(s.coord), N_PARAMS, FLT_MAX),
                   "the global weights stay finite");
    for (int i = 0; i < N_CONNS; i++)
        zmq_close(ss->conns[i]);
    pst_fedserver_destroy(&s.srv);
    pst_fedcoord_destroy(&s.coord);
    free(m);
    free(ss);
    return 0;
}
