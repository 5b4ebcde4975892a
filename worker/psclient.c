/* Push/pull client: request splitting across servers, reply matching by sequence number, tickets,
 * and a background heartbeat thread. */
#include "worker/psclient.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "common/log.h"

#define MAX_OPS 64 /* requests outstanding at once */

typedef struct tensor {
    uint32_t model_id, tensor_id;
    bool sparse;
    uint64_t n; /* dense: floats */
    uint32_t row_width;
    float init_scale;
    uint64_t seed;
    uint64_t *off, *len; /* dense: (n_servers) each server's range */
    float *residual;     /* dense with a lossy push codec: (n) error feedback */
} tensor_t;

/* One request in flight, addressed to some or all servers. */
typedef struct op {
    bool active, done;
    uint64_t seq;
    Pst__Op kind;
    int tensor;
    float *dst;           /* PULL: where values go */
    const uint64_t *keys; /* sparse PULL: the caller's keys, for scattering the replies */
    size_t n_keys;
    uint64_t *counters; /* STATS: (PST_STAT_COUNT) */
    uint8_t *replied;   /* (n_servers) 1 once answered, or when not asked */
    uint64_t *n_sent;   /* (n_servers) sparse: keys sent to each server */
    uint32_t n_waiting;
    uint64_t clock; /* INIT: least clock the servers reported */
    int64_t start_ns, end_ns;
    int rc;
    char error[512];
} op_t;

/* Per-server buffers of a sparse request split by key owner. */
typedef struct split {
    uint64_t *keys;
    float *values;
    size_t keys_cap, values_cap;
} split_t;

struct pst_psclient {
    pst_psclient_cfg_t cfg;
    char **endpoints; /* (n_servers) copies */
    void *ctx;
    bool own_ctx;
    void **socks;       /* (n_servers) DEALERs */
    pst_wire_t **wires; /* (n_servers) */
    zmq_pollitem_t *items;
    tensor_t *tensors;
    size_t n_tensors, tensors_cap;
    op_t ops[MAX_OPS];
    uint8_t *replied_block; /* (MAX_OPS, n_servers) */
    uint64_t *sent_block;   /* (MAX_OPS, n_servers) */
    uint64_t next_seq;
    split_t *split;  /* (n_servers) */
    uint32_t *owner; /* sparse: server of each key; (owner_cap) */
    size_t *fill;    /* (n_servers) split cursor */
    size_t owner_cap;
    float *scratch; /* sparse pull replies; (scratch_cap) */
    size_t scratch_cap;
    uint64_t pushes, pulls, stale, errors;
    double push_ms, pull_ms; /* sums */
    /* heartbeats */
    bool hb_running, hb_stop;
    pthread_t hb_thread;
    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cv;
    void **hb_socks; /* (n_servers) used by the heartbeat thread only */
    pst_wire_t *hb_wire;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pst_psclient_cfg_defaults(pst_psclient_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->push_codec = PST_CODEC_RAW;
    cfg->pull_codec = PST_CODEC_RAW;
    cfg->timeout_ms = 120000;
    cfg->heartbeat_ms = 1000;
}

/* ---- connections ---- */

static void *connect_dealer(pst_psclient_t *c, const char *endpoint, int send_timeout_ms,
                            pst_err_t *err)
{
    void *sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (sock == NULL) {
        pst_err_set(err, PST_EIO, "client: DEALER socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &send_timeout_ms, sizeof send_timeout_ms);
    if (zmq_connect(sock, endpoint) != 0) {
        pst_err_set(err, PST_EIO, "client: connect %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

static int open_connections(pst_psclient_t *c, const char *const *endpoints, pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    for (uint32_t s = 0; s < S; s++) {
        c->endpoints[s] = strdup(endpoints[s]);
        c->wires[s] = pst_wire_new(PST_WIRE_DEALER, c->cfg.max_message_bytes, err);
        if (c->endpoints[s] == NULL || c->wires[s] == NULL)
            return pst_err_set(err, PST_ENOMEM, "client: out of memory");
        c->socks[s] = connect_dealer(c, c->endpoints[s], c->cfg.timeout_ms, err);
        if (c->socks[s] == NULL)
            return err ? err->code : PST_EIO;
        int rc = pst_wire_prepare_socket(c->wires[s], c->socks[s], err);
        if (rc != PST_OK)
            return rc;
        c->items[s] = (zmq_pollitem_t){c->socks[s], 0, ZMQ_POLLIN, 0};
    }
    return PST_OK;
}

/* ---- heartbeats ---- */

static void send_heartbeats(pst_psclient_t *c)
{
    for (uint32_t s = 0; s < c->cfg.n_servers; s++) {
        Pst__Header h = PST__HEADER__INIT;
        h.op = PST__OP__OP_HEARTBEAT;
        h.sender = c->cfg.worker_id;
        /* A full queue (server gone) just skips this beat. */
        pst_wire_send(c->hb_wire, c->hb_socks[s], NULL, 0, &h, NULL, NULL);
    }
}

static void *heartbeat_main(void *arg)
{
    pst_psclient_t *c = arg;
    pthread_mutex_lock(&c->hb_mu);
    while (!c->hb_stop) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        int64_t ns = at.tv_nsec + (int64_t)c->cfg.heartbeat_ms * 1000000;
        at.tv_sec += ns / 1000000000;
        at.tv_nsec = ns % 1000000000;
        while (!c->hb_stop && pthread_cond_timedwait(&c->hb_cv, &c->hb_mu, &at) != ETIMEDOUT) {
        }
        if (c->hb_stop)
            break;
        pthread_mutex_unlock(&c->hb_mu);
        send_heartbeats(c);
        pthread_mutex_lock(&c->hb_mu);
    }
    pthread_mutex_unlock(&c->hb_mu);
    return NULL;
}

static int start_heartbeats(pst_psclient_t *c, pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    c->hb_socks = calloc(S, sizeof *c->hb_socks);
    c->hb_wire = pst_wire_new(PST_WIRE_DEALER, 0, err);
    if (c->hb_socks == NULL || c->hb_wire == NULL)
        return pst_err_set(err, PST_ENOMEM, "client: out of memory");
    for (uint32_t s = 0; s < S; s++) {
        if ((c->hb_socks[s] = connect_dealer(c, c->endpoints[s], 0, err)) == NULL)
            return err ? err->code : PST_EIO;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->hb_mu, NULL);
    pthread_cond_init(&c->hb_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&c->hb_thread, NULL, heartbeat_main, c) != 0) {
        pthread_cond_destroy(&c->hb_cv);
        pthread_mutex_destroy(&c->hb_mu);
        return pst_err_set(err, PST_EIO, "client: cannot start the heartbeat thread");
    }
    c->hb_running = true;
    return PST_OK;
}

static void stop_heartbeats(pst_psclient_t *c)
{
    if (!c->hb_running)
        return;
    pthread_mutex_lock(&c->hb_mu);
    c->hb_stop = true;
    pthread_cond_signal(&c->hb_cv);
    pthread_mutex_unlock(&c->hb_mu);
    pthread_join(c->hb_thread, NULL);
    pthread_cond_destroy(&c->hb_cv);
    pthread_mutex_destroy(&c->hb_mu);
    c->hb_running = false;
}

/* ---- lifecycle ---- */

static int check_cfg(const pst_psclient_cfg_t *cfg, pst_err_t *err)
{
    if (cfg->n_servers == 0 || cfg->endpoints == NULL)
        return pst_err_set(err, PST_EINVAL, "client: no servers");
    for (uint32_t s = 0; s < cfg->n_servers; s++) {
        if (cfg->endpoints[s] == NULL)
            return pst_err_set(err, PST_EINVAL, "client: no endpoint for server %u", s);
    }
    if (cfg->timeout_ms <= 0 || cfg->heartbeat_ms < 0)
        return pst_err_set(err, PST_EINVAL, "client: timeout %d ms, heartbeat %d ms",
                           cfg->timeout_ms, cfg->heartbeat_ms);
    if (cfg->push_codec > PST_CODEC_INT8 || cfg->pull_codec > PST_CODEC_INT8)
        return pst_err_set(err, PST_EINVAL, "client: unknown codec");
    return PST_OK;
}

static int alloc_arrays(pst_psclient_t *c)
{
    uint32_t S = c->cfg.n_servers;
    c->endpoints = calloc(S, sizeof *c->endpoints);
    c->socks = calloc(S, sizeof *c->socks);
    c->wires = calloc(S, sizeof *c->wires);
    c->items = calloc(S, sizeof *c->items);
    c->split = calloc(S, sizeof *c->split);
    c->fill = calloc(S, sizeof *c->fill);
    c->replied_block = calloc((size_t)MAX_OPS * S, 1);
    c->sent_block = calloc((size_t)MAX_OPS * S, sizeof(uint64_t));
    if (!c->endpoints || !c->socks || !c->wires || !c->items || !c->split || !c->fill ||
        !c->replied_block || !c->sent_block)
        return PST_ENOMEM;
    for (int i = 0; i < MAX_OPS; i++) {
        c->ops[i].replied = c->replied_block + (size_t)i * S;
        c->ops[i].n_sent = c->sent_block + (size_t)i * S;
    }
    return PST_OK;
}

pst_psclient_t *pst_psclient_new(const pst_psclient_cfg_t *cfg, pst_err_t *err)
{
    if (check_cfg(cfg, err) != PST_OK)
        return NULL;
    pst_psclient_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        pst_err_set(err, PST_ENOMEM, "client: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    int rc = alloc_arrays(c);
    c->cfg.endpoints = (const char *const *)c->endpoints;
    if (rc != PST_OK) {
        pst_err_set(err, rc, "client: out of memory");
    } else {
        c->own_ctx = cfg->zmq_ctx == NULL;
        c->ctx = c->own_ctx ? zmq_ctx_new() : cfg->zmq_ctx;
        rc = c->ctx ? open_connections(c, cfg->endpoints, err)
                    : pst_err_set(err, PST_EIO, "client: no ZeroMQ context");
    }
    if (rc == PST_OK && cfg->heartbeat_ms > 0)
        rc = start_heartbeats(c, err);
    if (rc != PST_OK) {
        pst_psclient_destroy(&c);
        return NULL;
    }
    return c;
}

static void close_all(void **socks, uint32_t n)
{
    for (uint32_t s = 0; socks != NULL && s < n; s++) {
        if (socks[s] != NULL)
            zmq_close(socks[s]);
    }
}

void pst_psclient_destroy(pst_psclient_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_psclient_t *c = *self_p;
    uint32_t S = c->cfg.n_servers;
    stop_heartbeats(c);
    close_all(c->hb_socks, S);
    close_all(c->socks, S);
    if (c->own_ctx && c->ctx != NULL)
        zmq_ctx_term(c->ctx);
    for (uint32_t s = 0; s < S; s++) {
        if (c->wires != NULL)
            pst_wire_destroy(&c->wires[s]);
        if (c->endpoints != NULL)
            free(c->endpoints[s]);
        if (c->split != NULL) {
            free(c->split[s].keys);
            free(c->split[s].values);
        }
    }
    for (size_t i = 0; i < c->n_tensors; i++) {
        free(c->tensors[i].off);
        free(c->tensors[i].len);
        free(c->tensors[i].residual);
    }
    pst_wire_destroy(&c->hb_wire);
    free(c->hb_socks);
    free(c->tensors);
    free(c->endpoints);
    free(c->socks);
    free(c->wires);
    free(c->items);
    free(c->split);
    free(c->replied_block);
    free(c->sent_block);
    free(c->owner);
    free(c->fill);
    free(c->scratch);
    free(c);
    *self_p = NULL;
}

/* ---- tensors ---- */

static int add_tensor(pst_psclient_t *c, tensor_t *t, pst_err_t *err)
{
    if (c->n_tensors == c->tensors_cap) {
        size_t cap = c->tensors_cap ? 2 * c->tensors_cap : 8;
        tensor_t *grown = realloc(c->tensors, cap * sizeof *grown);
        if (grown == NULL)
            return pst_err_set(err, PST_ENOMEM, "client: out of memory");
        c->tensors = grown;
        c->tensors_cap = cap;
    }
    c->tensors[c->n_tensors] = *t;
    return (int)c->n_tensors++;
}

static bool lossy(pst_codec_t codec)
{
    return codec == PST_CODEC_FP16 || codec == PST_CODEC_INT8;
}

int pst_psclient_register_dense(pst_psclient_t *self, uint32_t model_id, uint32_t tensor_id,
                                uint64_t n, pst_err_t *err)
{
    uint32_t S = self->cfg.n_servers;
    if (n == 0)
        return pst_err_set(err, PST_EINVAL, "client: tensor %u/%u has no elements", model_id,
                           tensor_id);
    tensor_t t = {.model_id = model_id, .tensor_id = tensor_id, .n = n};
    t.off = malloc(S * sizeof(uint64_t));
    t.len = malloc(S * sizeof(uint64_t));
    if (lossy(self->cfg.push_codec))
        t.residual = calloc(n, sizeof(float));
    int rc = PST_OK;
    if (t.off == NULL || t.len == NULL || (lossy(self->cfg.push_codec) && t.residual == NULL))
        rc =
            pst_err_set(err, PST_ENOMEM, "client: no memory for tensor %u/%u", model_id, tensor_id);
    else
        rc = add_tensor(self, &t, err);
    if (rc < 0) {
        free(t.off);
        free(t.len);
        free(t.residual);
        return rc;
    }
    for (uint32_t s = 0; s < S; s++)
        pst_wire_shard_range(n, S, s, &t.off[s], &t.len[s]);
    return rc;
}

int pst_psclient_register_sparse(pst_psclient_t *self, uint32_t model_id, uint32_t tensor_id,
                                 uint32_t row_width, float init_scale, uint64_t seed,
                                 pst_err_t *err)
{
    if (row_width == 0 || row_width > PST_WIRE_MAX_ROW_WIDTH)
        return pst_err_set(err, PST_EINVAL, "client: sparse row width %u", row_width);
    tensor_t t = {.model_id = model_id,
                  .tensor_id = tensor_id,
                  .sparse = true,
                  .row_width = row_width,
                  .init_scale = init_scale,
                  .seed = seed};
    return add_tensor(self, &t, err);
}

static tensor_t *get_tensor(pst_psclient_t *c, int tensor, bool sparse, pst_err_t *err)
{
    if (tensor < 0 || (size_t)tensor >= c->n_tensors) {
        pst_err_set(err, PST_EINVAL, "client: no tensor handle %d", tensor);
        return NULL;
    }
    tensor_t *t = &c->tensors[tensor];
    if (t->sparse != sparse) {
        pst_err_set(err, PST_EINVAL, "client: tensor %u/%u is %s", t->model_id, t->tensor_id,
                    t->sparse ? "sparse" : "dense");
        return NULL;
    }
    return t;
}

/* ---- requests ---- */

static op_t *op_start(pst_psclient_t *c, Pst__Op kind, int tensor, pst_err_t *err)
{
    uint64_t seq = ++c->next_seq;
    op_t *op = &c->ops[seq % MAX_OPS];
    if (op->active) {
        pst_err_set(err, PST_ESTATE, "client: %d requests outstanding; wait on some first",
                    MAX_OPS);
        return NULL;
    }
    op->active = true;
    op->done = false;
    op->seq = seq;
    op->kind = kind;
    op->tensor = tensor;
    op->dst = NULL;
    op->keys = NULL;
    op->n_keys = 0;
    op->counters = NULL;
    memset(op->replied, 0, c->cfg.n_servers);
    memset(op->n_sent, 0, c->cfg.n_servers * sizeof(uint64_t));
    op->n_waiting = c->cfg.n_servers;
    op->clock = UINT64_MAX;
    op->rc = PST_OK;
    op->error[0] = '\0';
    op->start_ns = now_ns();
    return op;
}

static void op_release(op_t *op)
{
    op->active = false;
}

static int send_to(pst_psclient_t *c, uint32_t s, op_t *op, Pst__Header *h,
                   const pst_wire_payload_t *payload, pst_err_t *err)
{
    h->sender = c->cfg.worker_id;
    h->seq = op->seq;
    int rc = pst_wire_send(c->wires[s], c->socks[s], NULL, 0, h, payload, err);
    if (rc != PST_OK) {
        if (err != NULL)
            pst_err_prefix(err, "server %u (%s): ", s, c->endpoints[s]);
        op_release(op);
        c->errors++;
    }
    return rc;
}

static Pst__Header request_header(const tensor_t *t, Pst__Op op, uint64_t clock)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = op;
    h.clock = clock;
    if (t != NULL) {
        h.model_id = t->model_id;
        h.tensor_id = t->tensor_id;
        h.sparse = t->sparse;
        h.row_width = t->sparse ? t->row_width : 0;
    }
    return h;
}

/* ---- replies ---- */

static void op_fail(op_t *op, int code, uint32_t s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void op_fail(op_t *op, int code, uint32_t s, const char *fmt, ...)
{
    if (op->rc != PST_OK)
        return;
    op->rc = code;
    int at = snprintf(op->error, sizeof op->error, "server %u: ", s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->error + at, sizeof op->error - (size_t)at, fmt, ap);
    va_end(ap);
}

static Pst__Op expected_reply(Pst__Op kind)
{
    switch (kind) {
    case PST__OP__OP_PULL:
        return PST__OP__OP_PULL_REPLY;
    case PST__OP__OP_BARRIER:
        return PST__OP__OP_BARRIER;
    case PST__OP__OP_STATS:
        return PST__OP__OP_STATS;
    default:
        return PST__OP__OP_ACK;
    }
}

static float *client_scratch(pst_psclient_t *c, size_t n)
{
    if (n > c->scratch_cap) {
        float *grown = realloc(c->scratch, n * sizeof(float));
        if (grown == NULL)
            return NULL;
        c->scratch = grown;
        c->scratch_cap = n;
    }
    return c->scratch;
}

static void absorb_dense_pull(pst_psclient_t *c, uint32_t s, op_t *op, const pst_wire_msg_t *msg)
{
    const tensor_t *t = &c->tensors[op->tensor];
    const Pst__Header *h = msg->hdr;
    if (h->sparse || h->offset != t->off[s] || h->count != t->len[s]) {
        op_fail(op, PST_EPROTO, s, "reply for [%llu, +%llu), asked [%llu, +%llu)",
                (unsigned long long)h->offset, (unsigned long long)h->count,
                (unsigned long long)t->off[s], (unsigned long long)t->len[s]);
        return;
    }
    pst_err_t err = {0};
    if (pst_wire_decode(c->wires[s], msg, op->dst + t->off[s], &err) != PST_OK)
        op_fail(op, PST_EPROTO, s, "%s", err.msg);
}

/* Decodes a server's rows and puts each where its key sits in the caller's key list. */
static void absorb_sparse_pull(pst_psclient_t *c, uint32_t s, op_t *op, const pst_wire_msg_t *msg)
{
    const tensor_t *t = &c->tensors[op->tensor];
    const Pst__Header *h = msg->hdr;
    size_t w = t->row_width;
    if (!h->sparse || h->row_width != w || h->count != op->n_sent[s]) {
        op_fail(op, PST_EPROTO, s, "reply of %llu rows of %u, asked %llu of %zu",
                (unsigned long long)h->count, h->row_width, (unsigned long long)op->n_sent[s], w);
        return;
    }
    float *rows = client_scratch(c, msg->n_values);
    pst_err_t err = {0};
    if (msg->n_values > 0 && rows == NULL) {
        op_fail(op, PST_ENOMEM, s, "no memory for the reply");
        return;
    }
    if (pst_wire_decode(c->wires[s], msg, rows, &err) != PST_OK) {
        op_fail(op, PST_EPROTO, s, "%s", err.msg);
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < op->n_keys && j < h->count; i++) {
        if (pst_wire_key_server(op->keys[i], c->cfg.n_servers) == s)
            memcpy(op->dst + i * w, rows + (j++) * w, w * sizeof(float));
    }
}

static void copy_counters(uint64_t *out, const Pst__Header *h)
{
    for (size_t i = 0; i < PST_STAT_COUNT; i++)
        out[i] = i < h->n_counters ? h->counters[i] : 0;
}

static void absorb(pst_psclient_t *c, uint32_t s, op_t *op, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    if (h->op == PST__OP__OP_ERROR) {
        int code = -(int)h->flags;
        op_fail(op, code < 0 && code >= PST_ENUMERIC ? code : PST_EPROTO, s, "%s", h->error);
        return;
    }
    if (h->op != expected_reply(op->kind)) {
        op_fail(op, PST_EPROTO, s, "answered %s with %s", pst_wire_op_name(op->kind),
                pst_wire_op_name(h->op));
        return;
    }
    if (op->kind == PST__OP__OP_PULL && op->keys == NULL)
        absorb_dense_pull(c, s, op, msg);
    else if (op->kind == PST__OP__OP_PULL)
        absorb_sparse_pull(c, s, op, msg);
    else if (op->kind == PST__OP__OP_PUSH && (h->flags & PST_WIRE_FLAG_STALE))
        c->stale++;
    else if (op->kind == PST__OP__OP_INIT && h->clock < op->clock)
        op->clock = h->clock;
    else if (op->kind == PST__OP__OP_STATS && op->counters != NULL)
        copy_counters(op->counters, h);
}

static void on_reply(pst_psclient_t *c, uint32_t s, const pst_wire_msg_t *msg)
{
    op_t *op = &c->ops[msg->hdr->seq % MAX_OPS];
    if (!op->active || op->seq != msg->hdr->seq || op->replied[s]) {
        pst_debug("client: late reply %s seq %llu from server %u dropped",
                  pst_wire_op_name(msg->hdr->op), (unsigned long long)msg->hdr->seq, s);
        return;
    }
    absorb(c, s, op, msg);
    op->replied[s] = 1;
    if (--op->n_waiting == 0) {
        op->done = true;
        op->end_ns = now_ns();
    }
}

/* Receives whatever arrives within timeout_ms and matches it to requests. */
static int pump(pst_psclient_t *c, int timeout_ms, pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    int n = zmq_poll(c->items, (int)S, timeout_ms);
    if (n < 0)
        return errno == EINTR ? PST_OK
                              : pst_err_set(err, PST_EIO, "client: poll: %s", zmq_strerror(errno));
    for (uint32_t s = 0; n > 0 && s < S; s++) {
        if (!(c->items[s].revents & ZMQ_POLLIN))
            continue;
        for (;;) {
            pst_wire_msg_t msg;
            pst_err_t why = {0};
            int rc = pst_wire_recv(c->wires[s], c->socks[s], &msg, ZMQ_DONTWAIT, &why);
            if (rc == PST_ETIMEOUT)
                break;
            if (rc == PST_EPROTO) {
                pst_warn("client: malformed reply from server %u dropped: %s", s, why.msg);
                continue;
            }
            if (rc != PST_OK)
                return pst_err_set(err, rc, "client: server %u: %s", s, why.msg);
            on_reply(c, s, &msg);
            pst_wire_msg_close(&msg);
        }
    }
    return PST_OK;
}

/* ---- waiting ---- */

static op_t *find_op(pst_psclient_t *c, pst_ticket_t ticket, pst_err_t *err)
{
    op_t *op = &c->ops[ticket % MAX_OPS];
    if (!op->active || op->seq != ticket) {
        pst_err_set(err, PST_EINVAL, "client: ticket %llu is unknown or spent",
                    (unsigned long long)ticket);
        return NULL;
    }
    return op;
}

/* Pumps until op is done or timeout_ms passed (PST_ETIMEOUT, op still open). */
static int op_wait(pst_psclient_t *c, op_t *op, int timeout_ms, pst_err_t *err)
{
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    while (!op->done) {
        int64_t left_ms = (deadline - now_ns()) / 1000000;
        if (left_ms <= 0 && now_ns() >= deadline)
            return PST_ETIMEOUT;
        int rc = pump(c, left_ms > 0 ? (int)left_ms : 1, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static void timeout_error(pst_psclient_t *c, const op_t *op, pst_err_t *err)
{
    char who[256] = "";
    size_t at = 0;
    for (uint32_t s = 0; s < c->cfg.n_servers && at < sizeof who; s++) {
        if (!op->replied[s])
            at += (size_t)snprintf(who + at, sizeof who - at, "%sserver %u (%s)", at ? ", " : "", s,
                                   c->endpoints[s]);
    }
    pst_err_set(err, PST_ETIMEOUT, "client: %s: no reply from %s within %d ms",
                pst_wire_op_name(op->kind), who, c->cfg.timeout_ms);
}

/* Accounts a finished request, releases it and returns its outcome. */
static int op_finish(pst_psclient_t *c, op_t *op, pst_err_t *err)
{
    double ms = (double)(op->end_ns - op->start_ns) / 1e6;
    int rc = op->rc;
    if (rc != PST_OK) {
        c->errors++;
        pst_err_set(err, rc, "client: %s: %s", pst_wire_op_name(op->kind), op->error);
    } else if (op->kind == PST__OP__OP_PUSH) {
        c->pushes++;
        c->push_ms += ms;
    } else if (op->kind == PST__OP__OP_PULL) {
        c->pulls++;
        c->pull_ms += ms;
    }
    op_release(op);
    return rc;
}

int pst_psclient_test(pst_psclient_t *self, pst_ticket_t ticket, int timeout_ms, pst_err_t *err)
{
    op_t *op = find_op(self, ticket, err);
    if (op == NULL)
        return PST_EINVAL;
    int rc = op_wait(self, op, timeout_ms, err);
    if (rc == PST_ETIMEOUT)
        return pst_err_set(err, rc, "client: %s still waiting", pst_wire_op_name(op->kind));
    return rc == PST_OK ? op_finish(self, op, err) : rc;
}

int pst_psclient_wait(pst_psclient_t *self, pst_ticket_t ticket, pst_err_t *err)
{
    op_t *op = find_op(self, ticket, err);
    if (op == NULL)
        return PST_EINVAL;
    int rc = op_wait(self, op, self->cfg.timeout_ms, err);
    if (rc == PST_OK)
        return op_finish(self, op, err);
    if (rc == PST_ETIMEOUT)
        timeout_error(self, op, err);
    self->errors++;
    op_release(op);
    return rc;
}

/* Sends a header-only request of kind to every server (or one, when only >= 0) and waits. */
static int round_trip(pst_psclient_t *c, Pst__Op kind, int only, uint64_t *counters, pst_err_t *err)
{
    op_t *op = op_start(c, kind, -1, err);
    if (op == NULL)
        return PST_ESTATE;
    op->counters = counters;
    for (uint32_t s = 0; s < c->cfg.n_servers; s++) {
        if (only >= 0 && s != (uint32_t)only) {
            op->replied[s] = 1;
            op->n_waiting--;
            continue;
        }
        Pst__Header h = request_header(NULL, kind, 0);
        int rc = send_to(c, s, op, &h, NULL, err);
        if (rc != PST_OK)
            return rc;
    }
    return pst_psclient_wait(c, op->seq, err);
}

/* ---- public requests ---- */

int pst_psclient_init(pst_psclient_t *self, int tensor, const float *values, uint64_t *clock,
                      pst_err_t *err)
{
    if (tensor < 0 || (size_t)tensor >= self->n_tensors)
        return pst_err_set(err, PST_EINVAL, "client: no tensor handle %d", tensor);
    const tensor_t *t = &self->tensors[tensor];
    if (t->sparse != (values == NULL))
        return pst_err_set(
            err, PST_EINVAL, "client: INIT of tensor %u/%u: %s", t->model_id, t->tensor_id,
            t->sparse ? "sparse rows start from init_scale" : "dense values required");
    op_t *op = op_start(self, PST__OP__OP_INIT, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        Pst__Header h = request_header(t, PST__OP__OP_INIT, 0);
        h.init_scale = t->init_scale;
        h.seed = t->seed;
        if (!t->sparse) {
            h.total_size = t->n;
            h.offset = t->off[s];
            h.count = t->len[s];
        }
        /* The values outlive the send: this call waits for the answers. */
        pst_wire_payload_t out = {.values = t->sparse ? NULL : values + t->off[s], .lend = true};
        int rc = send_to(self, s, op, &h, &out, err);
        if (rc != PST_OK)
            return rc;
    }
    int rc = op_wait(self, op, self->cfg.timeout_ms, err);
    if (rc == PST_OK) {
        if (clock != NULL && op->rc == PST_OK)
            *clock = op->clock;
        return op_finish(self, op, err);
    }
    if (rc == PST_ETIMEOUT)
        timeout_error(self, op, err);
    self->errors++;
    op_release(op);
    return rc;
}

int pst_psclient_push(pst_psclient_t *self, int tensor, const float *grad, uint64_t clock, float lr,
                      pst_ticket_t *ticket, pst_err_t *err)
{
    tensor_t *t = get_tensor(self, tensor, false, err);
    if (t == NULL)
        return PST_EINVAL;
    op_t *op = op_start(self, PST__OP__OP_PUSH, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        Pst__Header h = request_header(t, PST__OP__OP_PUSH, clock);
        h.offset = t->off[s];
        h.count = t->len[s];
        h.codec = (Pst__Codec)self->cfg.push_codec;
        h.lr = lr;
        /* Lent: the caller keeps grad unchanged until the ticket is waited on. */
        pst_wire_payload_t out = {.values = grad + t->off[s], .lend = true};
        out.residual = t->residual ? t->residual + t->off[s] : NULL;
        int rc = send_to(self, s, op, &h, &out, err);
        if (rc != PST_OK)
            return rc;
    }
    *ticket = op->seq;
    return PST_OK;
}

int pst_psclient_pull(pst_psclient_t *self, int tensor, float *dst, uint64_t clock,
                      pst_ticket_t *ticket, pst_err_t *err)
{
    tensor_t *t = get_tensor(self, tensor, false, err);
    if (t == NULL)
        return PST_EINVAL;
    op_t *op = op_start(self, PST__OP__OP_PULL, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    op->dst = dst;
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        Pst__Header h = request_header(t, PST__OP__OP_PULL, clock);
        h.offset = t->off[s];
        h.count = t->len[s];
        h.codec = (Pst__Codec)self->cfg.pull_codec;
        int rc = send_to(self, s, op, &h, NULL, err);
        if (rc != PST_OK)
            return rc;
    }
    *ticket = op->seq;
    return PST_OK;
}

static int grow_split(split_t *sp, size_t n_keys, size_t n_values)
{
    if (n_keys > sp->keys_cap) {
        uint64_t *k = realloc(sp->keys, n_keys * sizeof(uint64_t));
        if (k == NULL)
            return PST_ENOMEM;
        sp->keys = k;
        sp->keys_cap = n_keys;
    }
    if (n_values > sp->values_cap) {
        float *v = realloc(sp->values, n_values * sizeof(float));
        if (v == NULL)
            return PST_ENOMEM;
        sp->values = v;
        sp->values_cap = n_values;
    }
    return PST_OK;
}

/* Splits sorted unique keys (and their rows, when values != NULL) by owning server into
 * c->split; op->n_sent[s] receives each server's count. */
static int split_keys(pst_psclient_t *c, op_t *op, const uint64_t *keys, size_t n,
                      const float *values, size_t w, pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    for (size_t i = 1; i < n; i++) {
        if (keys[i] <= keys[i - 1])
            return pst_err_set(err, PST_EINVAL, "client: keys not sorted and unique at %zu", i);
    }
    if (n > c->owner_cap) {
        uint32_t *grown = realloc(c->owner, n * sizeof(uint32_t));
        if (grown == NULL)
            return pst_err_set(err, PST_ENOMEM, "client: out of memory");
        c->owner = grown;
        c->owner_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        op->n_sent[c->owner[i] = pst_wire_key_server(keys[i], S)]++;
    for (uint32_t s = 0; s < S; s++) {
        if (grow_split(&c->split[s], op->n_sent[s], values ? op->n_sent[s] * w : 0) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "client: out of memory");
    }
    memset(c->fill, 0, S * sizeof *c->fill);
    for (size_t i = 0; i < n; i++) {
        split_t *sp = &c->split[c->owner[i]];
        size_t j = c->fill[c->owner[i]]++;
        sp->keys[j] = keys[i];
        if (values != NULL)
            memcpy(sp->values + j * w, values + i * w, w * sizeof(float));
    }
    return PST_OK;
}

static int send_sparse(pst_psclient_t *c, int tensor, Pst__Op kind, const uint64_t *keys,
                       size_t n_keys, const float *grad, float *dst, uint64_t clock, float lr,
                       pst_ticket_t *ticket, pst_err_t *err)
{
    tensor_t *t = get_tensor(c, tensor, true, err);
    if (t == NULL)
        return PST_EINVAL;
    op_t *op = op_start(c, kind, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    int rc = split_keys(c, op, keys, n_keys, grad, t->row_width, err);
    if (rc != PST_OK) {
        op_release(op);
        return rc;
    }
    op->dst = dst;
    op->keys = kind == PST__OP__OP_PULL ? keys : NULL;
    op->n_keys = n_keys;
    bool push = kind == PST__OP__OP_PUSH;
    for (uint32_t s = 0; s < c->cfg.n_servers; s++) {
        Pst__Header h = request_header(t, kind, clock);
        h.count = op->n_sent[s];
        h.codec = (Pst__Codec)(push ? c->cfg.push_codec : c->cfg.pull_codec);
        h.lr = lr;
        pst_wire_payload_t out = {.keys = c->split[s].keys,
                                  .values = push ? c->split[s].values : NULL};
        rc = send_to(c, s, op, &h, &out, err);
        if (rc != PST_OK)
            return rc;
    }
    *ticket = op->seq;
    return PST_OK;
}

int pst_psclient_push_sparse(pst_psclient_t *self, int tensor, const uint64_t *keys, size_t n_keys,
                             const float *grad, uint64_t clock, float lr, pst_ticket_t *ticket,
                             pst_err_t *err)
{
    return send_sparse(self, tensor, PST__OP__OP_PUSH, keys, n_keys, grad, NULL, clock, lr, ticket,
                       err);
}

int pst_psclient_pull_sparse(pst_psclient_t *self, int tensor, const uint64_t *keys, size_t n_keys,
                             float *dst, uint64_t clock, pst_ticket_t *ticket, pst_err_t *err)
{
    if (n_keys > 0 && (keys == NULL || dst == NULL))
        return pst_err_set(err, PST_EINVAL, "client: sparse pull without keys or destination");
    return send_sparse(self, tensor, PST__OP__OP_PULL, keys, n_keys, NULL, dst, clock, 0.0f, ticket,
                       err);
}

int pst_psclient_barrier(pst_psclient_t *self, pst_err_t *err)
{
    return round_trip(self, PST__OP__OP_BARRIER, -1, NULL, err);
}

int pst_psclient_checkpoint(pst_psclient_t *self, pst_err_t *err)
{
    return round_trip(self, PST__OP__OP_CHECKPOINT, -1, NULL, err);
}

int pst_psclient_shutdown(pst_psclient_t *self, pst_err_t *err)
{
    stop_heartbeats(self);
    return round_trip(self, PST__OP__OP_SHUTDOWN, -1, NULL, err);
}

int pst_psclient_server_stats(pst_psclient_t *self, uint32_t server,
                              uint64_t counters[PST_STAT_COUNT], pst_err_t *err)
{
    if (server >= self->cfg.n_servers)
        return pst_err_set(err, PST_EINVAL, "client: no server %u", server);
    return round_trip(self, PST__OP__OP_STATS, (int)server, counters, err);
}

void pst_psclient_stats(const pst_psclient_t *self, pst_psclient_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        pst_wire_stats_t ws;
        pst_wire_stats(self->wires[s], &ws);
        out->bytes_raw_sent += ws.bytes_raw_sent;
        out->bytes_wire_sent += ws.bytes_wire_sent;
        out->bytes_raw_received += ws.bytes_raw_received;
        out->bytes_wire_received += ws.bytes_wire_received;
    }
    out->bytes_raw = out->bytes_raw_sent + out->bytes_raw_received;
    out->bytes_wire = out->bytes_wire_sent + out->bytes_wire_received;
    out->pushes = self->pushes;
    out->pulls = self->pulls;
    out->push_latency_ms = self->pushes ? self->push_ms / (double)self->pushes : 0.0;
    out->pull_latency_ms = self->pulls ? self->pull_ms / (double)self->pulls : 0.0;
    out->stale_pushes = self->stale;
    out->errors = self->errors;
}
