/* Fuzz target: a live parameter server fed a sequence of well-framed but hostile requests (wrong
 * ranges, unknown tensors, odd row widths, clocks out of order, senders that are no workers...).
 * Input: a setup byte, then messages of a 32-byte descriptor followed by value bytes (see
 * next_message). Afterwards the server must still answer STATS: it may refuse requests, never
 * crash or stop serving. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "fuzz/fuzz.h"
#include "ps/server.h"

enum { DESCRIPTOR = 32, MAX_MESSAGES = 64, N_WORKERS = 2, MAX_VALUES = 1 << 16 };

static const pst_optim_kind_t KINDS[] = {PST_OPT_SGD, PST_OPT_ADAM, PST_OPT_ADAGRAD, PST_OPT_FTRL};

typedef struct served {
    pst_server_t *srv;
    pthread_t thread;
    atomic_int finished;
} served_t;

typedef struct request {
    Pst__Header hdr;
    uint64_t keys[256];
    float *values; // (MAX_VALUES)
} request_t;

/* The request buffer, allocated once: every input rewrites what it sends. */
static request_t *requests(void)
{
    static request_t *r;
    if (r == NULL) {
        r = malloc(sizeof *r);
        pst_fuzz_check(r && (r->values = malloc(MAX_VALUES * sizeof(float))), "allocation");
    }
    return r;
}

static void *zmq_context(void)
{
    static void *ctx;
    if (ctx == NULL)
        ctx = zmq_ctx_new();
    pst_fuzz_check(ctx != NULL, "zmq context");
    return ctx;
}

static void *serve(void *arg)
{
    served_t *s = arg;
    pst_err_t err = {0};
    (void)pst_server_run(s->srv, &err);
    atomic_store(&s->finished, 1);
    return NULL;
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Decodes the descriptor at data into r->hdr; the values (dense: count floats; sparse: one row
 * per key) come from the bytes after it, zero-padded. Returns the bytes used. */
static size_t next_message(const uint8_t *data, size_t size, request_t *r, size_t *n_values)
{
    const uint8_t *d = data;
    pst__header__init(&r->hdr);
    Pst__Header *h = &r->hdr;
    int op = d[0] % PST_FUZZ_SERVER_OPS;
    h->op = (Pst__Op)(op == PST_FUZZ_SERVER_OP_DROP ? PST__OP__OP_DROP : op);
    h->sparse = d[1] & 1;
    h->codec = (Pst__Codec)((d[1] >> 1) & 7) % 5;
    h->flags = (d[1] & 0x10) ? 2u : 0u; /* KEYS_CACHED */
    h->sender = (d[1] >> 5) & 3;
    h->model_id = d[2] % 4;
    h->tensor_id = d[3] % 4;
    h->row_width = (uint32_t)(get_le(d + 4, 2) % 17);
    h->count = get_le(d + 6, 2);
    h->offset = get_le(d + 8, 8);
    h->total_size = get_le(d + 16, 8);
    h->clock = get_le(d + 24, 4);
    h->seq = get_le(d + 28, 2);
    h->lr = d[30] == 255 ? 1e30f : (float)d[30] / 64.0f;
    h->init_scale = (float)(d[31] & 15) / 8.0f;
    h->seed = d[31];
    size_t n = (size_t)h->count;
    if (h->sparse) {
        n = (size_t)(h->count % 257);
        h->count = n;
        uint64_t key = d[8];
        for (size_t i = 0; i < n && i < 256; i++)
            r->keys[i] = key += 1 + d[(i % 24) + 8];
        n *= h->row_width;
    }
    if (n > MAX_VALUES)
        n = MAX_VALUES, h->count = h->sparse ? h->count : MAX_VALUES;
    size_t avail = (size - DESCRIPTOR) / sizeof(float), take = avail < n ? avail : n;
    memset(r->values, 0, n * sizeof(float));
    memcpy(r->values, data + DESCRIPTOR, take * sizeof(float));
    *n_values = n;
    return DESCRIPTOR + take * sizeof(float);
}

static void send_request(pst_wire_t *wire, void *sock, request_t *r)
{
    if (r->hdr.sparse && (r->hdr.flags & 2u))
        r->hdr.key_signature = r->keys[0] * 0x9e3779b97f4a7c15ull;
    pst_wire_payload_t payload = {.keys = r->keys, .values = r->values};
    (void)pst_wire_send(wire, sock, NULL, 0, &r->hdr, &payload, NULL);
}

/* Sends STATS and reads replies until its answer arrives. Served in this thread (s == NULL),
 * every answer is waiting already when the server has handled its requests. */
static void expect_alive(pst_wire_t *wire, void *sock, pst_server_t *srv, const served_t *s)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_STATS;
    h.seq = 1u << 20;
    if (pst_wire_send(wire, sock, NULL, 0, &h, NULL, NULL) != PST_OK)
        return;
    if (s == NULL)
        pst_fuzz_check(pst_server_serve_waiting(srv, NULL) == PST_OK, "the server receives");
    for (;;) {
        pst_wire_msg_t msg;
        int rc = pst_wire_recv(wire, sock, &msg, s == NULL ? ZMQ_DONTWAIT : 0, NULL);
        if (rc == PST_ETIMEOUT && s != NULL && atomic_load(&s->finished))
            return; /* every worker shut down: the server ended as it should */
        pst_fuzz_check(rc == PST_OK, "the server still answers");
        bool done = msg.hdr->op == PST__OP__OP_STATS && msg.hdr->seq == (1u << 20);
        pst_wire_msg_close(&msg);
        if (done)
            return;
    }
}

/* The server, its client socket and wire: made once and reused by every input, the server
 * reset to the input's setup (pst_server_reset) instead of a socket, a wire and a server thread
 * made and ended per input. */
typedef struct harness {
    pst_server_t *srv;
    void *sock;
    pst_wire_t *wire;
} harness_t;

static harness_t *harness(void)
{
    static harness_t h;
    if (h.srv != NULL)
        return &h;
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.n_workers = N_WORKERS;
    cfg.staleness = 1;
    cfg.zmq_ctx = zmq_context();
    cfg.max_message_bytes = 1 << 20;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/pst-fuzz-ckpt-%ld", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (long)getpid());
    cfg.checkpoint_dir = dir;
    h.srv = pst_server_new(&cfg, NULL);
    pst_fuzz_check(h.srv != NULL, "server starts");
    const char *endpoint = "inproc://fuzz-server";
    pst_fuzz_check(pst_server_bind(h.srv, endpoint, NULL, 0, NULL) == PST_OK, "server binds");
    h.sock = zmq_socket(zmq_context(), ZMQ_DEALER);
    int timeout = 5000, linger = 0;
    zmq_setsockopt(h.sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(h.sock, ZMQ_LINGER, &linger, sizeof linger);
    pst_fuzz_check(zmq_connect(h.sock, endpoint) == 0, "connect");
    h.wire = pst_wire_new(PST_WIRE_DEALER, 1 << 20, NULL);
    pst_fuzz_check(h.wire != NULL, "allocation");
    return &h;
}

/* Nothing of the last input left: requests the server did not take (it ended when every worker
 * shut down) are handled, their answers read and dropped; then the server starts afresh with the
 * consistency and optimizer of setup. */
static void reset(harness_t *h, uint8_t setup)
{
    pst_fuzz_check(pst_server_serve_waiting(h->srv, NULL) == PST_OK, "the server receives");
    pst_wire_msg_t msg;
    while (pst_wire_recv(h->wire, h->sock, &msg, ZMQ_DONTWAIT, NULL) == PST_OK)
        pst_wire_msg_close(&msg);
    pst_optim_cfg_t optim;
    pst_optim_cfg_defaults(&optim, KINDS[(setup >> 2) % 4]);
    pst_fuzz_check(pst_server_reset(h->srv, (pst_consistency_t)(setup % 3), &optim, NULL) == PST_OK,
                   "server reset");
}

/* One input in THREADED_ONE_IN (pst_fuzz_one_in) meets
 * the server as workers do: pst_server_run on a thread of its own, its loop, ticks and stop. The
 * others are served in this thread (pst_server_serve_waiting): the same receive and dispatch
 * without a thread start and the wake-ups of every request, many times faster. */
enum { THREADED_ONE_IN = 1000 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 + DESCRIPTOR)
        return 0;
    harness_t *h = harness();
    reset(h, data[0]);
    served_t s = {.srv = h->srv};
    bool own_thread = pst_fuzz_one_in(data, size, THREADED_ONE_IN);
    if (own_thread)
        pst_fuzz_check(pthread_create(&s.thread, NULL, serve, &s) == 0, "server thread");
    request_t *r = requests();
    size_t at = 1;
    for (int m = 0; m < MAX_MESSAGES && size - at >= DESCRIPTOR; m++) {
        size_t n_values;
        at += next_message(data + at, size - at, r, &n_values);
        send_request(h->wire, h->sock, r);
    }
    expect_alive(h->wire, h->sock, h->srv, own_thread ? &s : NULL);
    if (own_thread) {
        pst_server_stop(s.srv);
        Pst__Header wake = PST__HEADER__INIT; /* ends the server's poll wait at once */
        wake.op = PST__OP__OP_HEARTBEAT;
        (void)pst_wire_send(h->wire, h->sock, NULL, 0, &wake, NULL, NULL);
        pthread_join(s.thread, NULL);
    }
    /* What this input made is freed before it ends: libFuzzer takes more allocations than frees
     * in one input for a leak and runs it again under LeakSanitizer. */
    reset(h, 0);
    return 0;
}
