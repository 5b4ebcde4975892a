/* Parameter server: request dispatch, consistency clocks, queued pulls, barriers and heartbeats. */
#include "ps/server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/log.h"
#include "ps/checkpoint.h"
#include "ps/shard.h"

#define POLL_MS 20        /* loop tick: heartbeat checks and stop requests */
#define BATCH 256         /* messages handled between two ticks at most */
#define MAX_ROUTE 256     /* ZeroMQ identities are at most 255 bytes */
#define LOG_BAD_FRAMES 10 /* malformed frames logged one by one; after that one line per 1000 */
#define CLOSE_LINGER_MS 1000

typedef struct route {
    uint8_t id[MAX_ROUTE];
    size_t len;
} route_t;

typedef struct worker {
    int64_t last_seen_ms;
    bool alive; /* heard from within the heartbeat timeout */
    bool done;  /* sent SHUTDOWN */
    bool at_barrier;
    route_t barrier_route;
    uint64_t barrier_seq;
} worker_t;

/* A pull that waits for its clock. */
typedef struct pending {
    route_t route;
    uint32_t sender;
    uint64_t seq, clock, offset, count;
    Pst__Codec codec;
    uint64_t *keys; /* sparse: count keys; (keys_cap) */
    size_t keys_cap;
} pending_t;

/* Consistency state beside slice i of the shard (same index). */
typedef struct tensor {
    uint8_t *participant; /* (n_workers) sent INIT for this tensor */
    uint64_t *pushed;     /* (n_workers) clocks pushed: last pushed clock + 1 */
    uint8_t *contributed; /* (n_workers) BSP: pushed the open clock */
    uint32_t n_participants, n_contributed;
    float lr; /* BSP: learning rate of the open clock */
    pending_t *pending;
    size_t n_pending, pending_cap;
    uint64_t ckpt_mark; /* clock of the last checkpoint written for this tensor's model */
} tensor_t;

struct pst_server {
    pst_server_cfg_t cfg;
    char *ckpt_dir;
    void *ctx;
    bool own_ctx, bound;
    void *sock;
    pst_wire_t *wire;
    pst_shard_t *shard;
    tensor_t *tensors; /* (tensors_cap), the first pst_shard_count(shard) in use */
    size_t tensors_cap;
    worker_t *workers; /* (n_workers) */
    uint64_t counters[PST_STAT_COUNT];
    float *scratch; /* decoded values; (scratch_cap) */
    size_t scratch_cap;
    uint32_t *rows; /* sparse row indices; (rows_cap) */
    size_t rows_cap;
    atomic_int stop;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- configuration and lifecycle ---- */

static const char *const consistency_names[] = {"bsp", "ssp", "asp"};

int pst_consistency_parse(const char *name, pst_consistency_t *out)
{
    for (int i = 0; name != NULL && i < 3; i++) {
        if (strcmp(name, consistency_names[i]) == 0) {
            *out = (pst_consistency_t)i;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

const char *pst_consistency_name(pst_consistency_t c)
{
    return c >= PST_CONSISTENCY_BSP && c <= PST_CONSISTENCY_ASP ? consistency_names[c] : "unknown";
}

void pst_server_cfg_defaults(pst_server_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->n_servers = 1;
    cfg->n_workers = 1;
    cfg->consistency = PST_CONSISTENCY_BSP;
    cfg->heartbeat_timeout_ms = 30000;
    pst_optim_cfg_defaults(&cfg->optim, PST_OPT_SGD);
}

static int check_cfg(const pst_server_cfg_t *cfg, pst_err_t *err)
{
    if (cfg->n_servers == 0 || cfg->server_index >= cfg->n_servers)
        return pst_err_set(err, PST_EINVAL, "server: index %u of %u servers", cfg->server_index,
                           cfg->n_servers);
    if (cfg->n_workers == 0)
        return pst_err_set(err, PST_EINVAL, "server: no workers");
    if (cfg->consistency > PST_CONSISTENCY_ASP)
        return pst_err_set(err, PST_EINVAL, "server: consistency %d", (int)cfg->consistency);
    if (cfg->heartbeat_timeout_ms <= 0)
        return pst_err_set(err, PST_EINVAL, "server: heartbeat timeout %d ms",
                           cfg->heartbeat_timeout_ms);
    return PST_OK;
}

static int open_socket(pst_server_t *srv, pst_err_t *err)
{
    srv->own_ctx = srv->cfg.zmq_ctx == NULL;
    srv->ctx = srv->own_ctx ? zmq_ctx_new() : srv->cfg.zmq_ctx;
    srv->sock = srv->ctx ? zmq_socket(srv->ctx, ZMQ_ROUTER) : NULL;
    if (srv->sock == NULL)
        return pst_err_set(err, PST_EIO, "server: ROUTER socket: %s", zmq_strerror(errno));
    int unlimited = 0;
    /* Replies are never dropped for a slow worker; workers always read them. */
    zmq_setsockopt(srv->sock, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    return pst_wire_prepare_socket(srv->wire, srv->sock, err);
}

pst_server_t *pst_server_new(const pst_server_cfg_t *cfg, pst_err_t *err)
{
    if (check_cfg(cfg, err) != PST_OK)
        return NULL;
    pst_server_t *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        pst_err_set(err, PST_ENOMEM, "server: out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    srv->cfg.checkpoint_dir = NULL;
    atomic_init(&srv->stop, 0);
    srv->workers = calloc(cfg->n_workers, sizeof *srv->workers);
    srv->ckpt_dir = cfg->checkpoint_dir ? strdup(cfg->checkpoint_dir) : NULL;
    srv->wire = pst_wire_new(PST_WIRE_ROUTER, cfg->max_message_bytes, err);
    srv->shard = pst_shard_new(cfg->server_index, cfg->n_servers, &cfg->optim, err);
    int rc = PST_OK;
    if (srv->workers == NULL || (cfg->checkpoint_dir && srv->ckpt_dir == NULL))
        rc = pst_err_set(err, PST_ENOMEM, "server: out of memory");
    else if (srv->wire == NULL || srv->shard == NULL)
        rc = PST_ENOMEM;
    else
        rc = open_socket(srv, err);
    if (rc != PST_OK) {
        pst_server_destroy(&srv);
        return NULL;
    }
    for (uint32_t w = 0; w < cfg->n_workers; w++)
        srv->workers[w].alive = true;
    return srv;
}

static void tensor_fini(tensor_t *t)
{
    free(t->participant);
    free(t->pushed);
    free(t->contributed);
    for (size_t i = 0; i < t->pending_cap; i++)
        free(t->pending[i].keys);
    free(t->pending);
    memset(t, 0, sizeof *t);
}

void pst_server_destroy(pst_server_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_server_t *srv = *self_p;
    if (srv->sock != NULL) {
        int linger = CLOSE_LINGER_MS;
        zmq_setsockopt(srv->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(srv->sock);
    }
    if (srv->own_ctx && srv->ctx != NULL)
        zmq_ctx_term(srv->ctx);
    pst_wire_destroy(&srv->wire);
    size_t n = srv->shard ? pst_shard_count(srv->shard) : 0;
    for (size_t i = 0; i < n; i++)
        tensor_fini(&srv->tensors[i]);
    free(srv->tensors);
    pst_shard_destroy(&srv->shard);
    free(srv->workers);
    free(srv->ckpt_dir);
    free(srv->scratch);
    free(srv->rows);
    free(srv);
    *self_p = NULL;
}

int pst_server_bind(pst_server_t *self, const char *endpoint, char *actual, size_t actual_len,
                    pst_err_t *err)
{
    if (zmq_bind(self->sock, endpoint) != 0)
        return pst_err_set(err, PST_EIO, "server %u: bind %s: %s", self->cfg.server_index, endpoint,
                           zmq_strerror(errno));
    self->bound = true;
    if (actual == NULL)
        return PST_OK;
    return pst_wire_last_endpoint(self->sock, actual, actual_len, err);
}

void pst_server_stop(pst_server_t *self)
{
    atomic_store(&self->stop, 1);
}

void pst_server_stats(const pst_server_t *self, uint64_t counters[PST_STAT_COUNT])
{
    pst_wire_stats_t ws;
    pst_wire_stats(self->wire, &ws);
    memcpy(counters, self->counters, sizeof self->counters);
    counters[PST_STAT_MESSAGES] = ws.messages_received;
    counters[PST_STAT_BAD_FRAMES] = ws.bad_frames;
    counters[PST_STAT_BYTES_RAW_IN] = ws.bytes_raw_received;
    counters[PST_STAT_BYTES_WIRE_IN] = ws.bytes_wire_received;
    counters[PST_STAT_BYTES_RAW_OUT] = ws.bytes_raw_sent;
    counters[PST_STAT_BYTES_WIRE_OUT] = ws.bytes_wire_sent;
    counters[PST_STAT_TENSORS] = pst_shard_count(self->shard);
}

/* ---- scratch buffers ---- */

static float *scratch_floats(pst_server_t *srv, size_t n)
{
    if (n > srv->scratch_cap) {
        float *grown = realloc(srv->scratch, n * sizeof(float));
        if (grown == NULL)
            return NULL;
        srv->scratch = grown;
        srv->scratch_cap = n;
    }
    return srv->scratch;
}

static uint32_t *scratch_rows(pst_server_t *srv, size_t n)
{
    if (n > srv->rows_cap) {
        uint32_t *grown = realloc(srv->rows, n * sizeof(uint32_t));
        if (grown == NULL)
            return NULL;
        srv->rows = grown;
        srv->rows_cap = n;
    }
    return srv->rows;
}

/* ---- replies ---- */

static Pst__Header reply_header(const Pst__Header *req, Pst__Op op)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = op;
    h.model_id = req->model_id;
    h.tensor_id = req->tensor_id;
    h.sender = req->sender;
    h.seq = req->seq;
    h.clock = req->clock;
    return h;
}

static void send_reply(pst_server_t *srv, const uint8_t *route, size_t route_len, Pst__Header *h,
                       const pst_wire_payload_t *payload)
{
    pst_err_t err = {0};
    if (pst_wire_send(srv->wire, srv->sock, route, route_len, h, payload, &err) != PST_OK)
        pst_warn("server %u: %s to worker %u: %s", srv->cfg.server_index, pst_wire_op_name(h->op),
                 h->sender, err.msg);
}

static void reply_ack(pst_server_t *srv, const pst_wire_msg_t *msg, uint64_t clock, uint32_t flags)
{
    Pst__Header h = reply_header(msg->hdr, PST__OP__OP_ACK);
    h.clock = clock;
    h.flags = flags;
    send_reply(srv, msg->route, msg->route_len, &h, NULL);
}

static void reply_error(pst_server_t *srv, const pst_wire_msg_t *msg, int code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static void reply_error(pst_server_t *srv, const pst_wire_msg_t *msg, int code, const char *fmt,
                        ...)
{
    char text[PST_WIRE_MAX_ERROR_TEXT];
    int at = snprintf(text, sizeof text, "server %u: ", srv->cfg.server_index);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + at, sizeof text - (size_t)at, fmt, ap);
    va_end(ap);
    srv->counters[PST_STAT_ERRORS]++;
    pst_warn("%s (%s from worker %u)", text, pst_wire_op_name(msg->hdr->op), msg->hdr->sender);
    Pst__Header h = reply_header(msg->hdr, PST__OP__OP_ERROR);
    h.error = text;
    h.flags = (uint32_t)(-code);
    send_reply(srv, msg->route, msg->route_len, &h, NULL);
}

/* ---- workers ---- */

static bool worker_live(const worker_t *w)
{
    return w->alive && !w->done;
}

static bool all_workers_gone(const pst_server_t *srv)
{
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (worker_live(&srv->workers[w]))
            return false;
    }
    return true;
}

/* ---- checkpoints ---- */

static void write_checkpoint(pst_server_t *srv, uint64_t clock)
{
    pst_err_t err = {0};
    if (pst_checkpoint_write(srv->ckpt_dir, srv->shard, clock, &err) != PST_OK) {
        pst_error("server %u: checkpoint at clock %llu failed: %s", srv->cfg.server_index,
                  (unsigned long long)clock, err.msg);
        return;
    }
    srv->counters[PST_STAT_CHECKPOINTS]++;
    pst_info("server %u: checkpoint at clock %llu written to %s", srv->cfg.server_index,
             (unsigned long long)clock, srv->ckpt_dir);
}

/* Writes a checkpoint when slice idx completed clock c, a multiple of checkpoint_every, and it was
 * the last slice of its model to get there. */
static void maybe_checkpoint(pst_server_t *srv, size_t idx)
{
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    uint64_t c = s->clock, every = srv->cfg.checkpoint_every;
    if (srv->ckpt_dir == NULL || every == 0 || c == 0 || c % every != 0 ||
        c <= srv->tensors[idx].ckpt_mark)
        return;
    size_t n = pst_shard_count(srv->shard);
    for (size_t j = 0; j < n; j++) {
        pst_slice_t *o = pst_shard_slice(srv->shard, j);
        if (o->model_id == s->model_id && o->clock < c)
            return;
    }
    write_checkpoint(srv, c);
    for (size_t j = 0; j < n; j++) {
        if (pst_shard_slice(srv->shard, j)->model_id == s->model_id)
            srv->tensors[j].ckpt_mark = c;
    }
}

/* ---- pulls ---- */

static bool pull_ready(const pst_server_t *srv, size_t idx, uint64_t clock)
{
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    const tensor_t *t = &srv->tensors[idx];
    switch (srv->cfg.consistency) {
    case PST_CONSISTENCY_BSP:
        return s->clock >= clock;
    case PST_CONSISTENCY_SSP:
        if (clock <= srv->cfg.staleness)
            return true;
        for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
            if (t->participant[w] && worker_live(&srv->workers[w]) &&
                t->pushed[w] < clock - srv->cfg.staleness)
                return false;
        }
        return true;
    default:
        return true;
    }
}

/* Answers a pull with the slice's current values: a dense range, or the given rows. */
static void send_pull_reply(pst_server_t *srv, size_t idx, const uint8_t *route, size_t route_len,
                            const Pst__Header *req, const uint32_t *rows)
{
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    Pst__Header h = reply_header(req, PST__OP__OP_PULL_REPLY);
    h.clock = s->clock;
    h.offset = req->offset;
    h.count = req->count;
    h.codec = req->codec;
    pst_wire_payload_t out = {0};
    if (!s->sparse) {
        /* Lent, not copied: a later update moves the slice to a fresh block if still in flight. */
        out.values = pst_slice_lend(s, &out.release, &out.hint) + (req->offset - s->offset);
        out.lend = true;
    } else {
        h.sparse = 1;
        h.row_width = s->row_width;
        float *gathered = scratch_floats(srv, req->count * s->row_width);
        if (req->count > 0 && gathered == NULL) {
            pst_error("server %u: no memory to answer a pull", srv->cfg.server_index);
            return;
        }
        pst_slice_gather(s, rows, req->count, gathered);
        out.values = gathered;
    }
    srv->counters[PST_STAT_PULLS]++;
    send_reply(srv, route, route_len, &h, &out);
}

/* Resolves sparse keys to rows (creating them on first touch), then answers. */
static int reply_pull(pst_server_t *srv, size_t idx, const uint8_t *route, size_t route_len,
                      const Pst__Header *req, const uint64_t *keys, pst_err_t *err)
{
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    uint32_t *rows = NULL;
    if (s->sparse && req->count > 0) {
        rows = scratch_rows(srv, req->count);
        if (rows == NULL)
            return pst_err_set(err, PST_ENOMEM, "no memory for %llu rows",
                               (unsigned long long)req->count);
        int rc = pst_slice_rows(s, keys, req->count, rows, err);
        if (rc != PST_OK)
            return rc;
    }
    send_pull_reply(srv, idx, route, route_len, req, rows);
    return PST_OK;
}

static int queue_pull(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg)
{
    tensor_t *t = &srv->tensors[idx];
    if (t->n_pending == t->pending_cap) {
        size_t cap = t->pending_cap ? 2 * t->pending_cap : 8;
        pending_t *grown = realloc(t->pending, cap * sizeof *grown);
        if (grown == NULL)
            return PST_ENOMEM;
        memset(grown + t->pending_cap, 0, (cap - t->pending_cap) * sizeof *grown);
        t->pending = grown;
        t->pending_cap = cap;
    }
    pending_t *p = &t->pending[t->n_pending];
    const Pst__Header *h = msg->hdr;
    if (msg->n_keys > p->keys_cap) {
        uint64_t *keys = realloc(p->keys, msg->n_keys * sizeof(uint64_t));
        if (keys == NULL)
            return PST_ENOMEM;
        p->keys = keys;
        p->keys_cap = msg->n_keys;
    }
    if (msg->n_keys > 0)
        memcpy(p->keys, msg->keys, msg->n_keys * sizeof(uint64_t));
    memcpy(p->route.id, msg->route, msg->route_len);
    p->route.len = msg->route_len;
    p->sender = h->sender;
    p->seq = h->seq;
    p->clock = h->clock;
    p->offset = h->offset;
    p->count = h->count;
    p->codec = h->codec;
    t->n_pending++;
    return PST_OK;
}

static void serve_pending(pst_server_t *srv, size_t idx)
{
    tensor_t *t = &srv->tensors[idx];
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    for (size_t i = 0; i < t->n_pending;) {
        pending_t *p = &t->pending[i];
        if (!pull_ready(srv, idx, p->clock)) {
            i++;
            continue;
        }
        Pst__Header req = PST__HEADER__INIT;
        req.model_id = s->model_id;
        req.tensor_id = s->tensor_id;
        req.sender = p->sender;
        req.seq = p->seq;
        req.clock = p->clock;
        req.offset = p->offset;
        req.count = p->count;
        req.codec = p->codec;
        pst_err_t err = {0};
        if (reply_pull(srv, idx, p->route.id, p->route.len, &req, p->keys, &err) != PST_OK)
            pst_error("server %u: queued pull: %s", srv->cfg.server_index, err.msg);
        /* Swap the last entry in (its key buffer travels with it). */
        pending_t done = *p;
        *p = t->pending[--t->n_pending];
        t->pending[t->n_pending] = done;
    }
}

/* ---- consistency ---- */

/* BSP: once every live participant pushed the open clock, one averaged step. */
static void bsp_try_complete(pst_server_t *srv, size_t idx)
{
    tensor_t *t = &srv->tensors[idx];
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    if (t->n_contributed == 0)
        return;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (t->participant[w] && worker_live(&srv->workers[w]) && !t->contributed[w])
            return;
    }
    float scale = 1.0f / (float)t->n_contributed;
    pst_err_t err = {0};
    int rc = s->sparse ? pst_slice_sparse_apply(s, scale, t->lr, &err)
                       : pst_slice_dense_apply(s, scale, t->lr, &err);
    if (rc != PST_OK)
        pst_error("server %u: tensor %u/%u: %s", srv->cfg.server_index, s->model_id, s->tensor_id,
                  err.msg);
    memset(t->contributed, 0, srv->cfg.n_workers);
    t->n_contributed = 0;
    s->clock++;
    srv->counters[PST_STAT_UPDATES]++;
    serve_pending(srv, idx);
    maybe_checkpoint(srv, idx);
}

/* SSP/ASP: the slice's clock is the slowest live participant's; queued pulls may now go. */
static void async_advance(pst_server_t *srv, size_t idx)
{
    tensor_t *t = &srv->tensors[idx];
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    uint64_t slowest = UINT64_MAX;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (t->participant[w] && worker_live(&srv->workers[w]) && t->pushed[w] < slowest)
            slowest = t->pushed[w];
    }
    serve_pending(srv, idx);
    if (slowest != UINT64_MAX && slowest > s->clock) {
        s->clock = slowest;
        maybe_checkpoint(srv, idx);
    }
}

static void progress(pst_server_t *srv, size_t idx)
{
    if (srv->cfg.consistency == PST_CONSISTENCY_BSP)
        bsp_try_complete(srv, idx);
    else
        async_advance(srv, idx);
}

static void check_barrier(pst_server_t *srv)
{
    bool any = false;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        const worker_t *wk = &srv->workers[w];
        if (wk->at_barrier)
            any = true;
        else if (worker_live(wk))
            return;
    }
    if (!any)
        return;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        worker_t *wk = &srv->workers[w];
        if (!wk->at_barrier)
            continue;
        Pst__Header h = PST__HEADER__INIT;
        h.op = PST__OP__OP_BARRIER;
        h.sender = w;
        h.seq = wk->barrier_seq;
        send_reply(srv, wk->barrier_route.id, wk->barrier_route.len, &h, NULL);
        wk->at_barrier = false;
    }
}

/* The live set changed: clocks, queued pulls and the barrier may move. */
static void recheck_all(pst_server_t *srv)
{
    for (size_t i = 0; i < pst_shard_count(srv->shard); i++)
        progress(srv, i);
    check_barrier(srv);
}

static void check_heartbeats(pst_server_t *srv)
{
    int64_t now = now_ms();
    bool changed = false;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        worker_t *wk = &srv->workers[w];
        int64_t silent = now - wk->last_seen_ms;
        if (!worker_live(wk) || silent <= srv->cfg.heartbeat_timeout_ms)
            continue;
        wk->alive = false;
        changed = true;
        srv->counters[PST_STAT_DEAD_WORKERS]++;
        pst_warn("server %u: worker %u silent for %lld ms: declared dead", srv->cfg.server_index, w,
                 (long long)silent);
    }
    if (changed)
        recheck_all(srv);
}

/* ---- requests ---- */

static int new_tensor_state(pst_server_t *srv, size_t idx, uint64_t clock)
{
    if (idx >= srv->tensors_cap) {
        size_t cap = srv->tensors_cap ? 2 * srv->tensors_cap : 8;
        tensor_t *grown = realloc(srv->tensors, cap * sizeof *grown);
        if (grown == NULL)
            return PST_ENOMEM;
        memset(grown + srv->tensors_cap, 0, (cap - srv->tensors_cap) * sizeof *grown);
        srv->tensors = grown;
        srv->tensors_cap = cap;
    }
    tensor_t *t = &srv->tensors[idx];
    uint32_t n = srv->cfg.n_workers;
    t->participant = calloc(n, 1);
    t->contributed = calloc(n, 1);
    t->pushed = malloc(n * sizeof(uint64_t));
    if (t->participant == NULL || t->contributed == NULL || t->pushed == NULL) {
        tensor_fini(t);
        return PST_ENOMEM;
    }
    for (uint32_t w = 0; w < n; w++)
        t->pushed[w] = clock;
    t->ckpt_mark = clock;
    return PST_OK;
}

/* First INIT of a tensor: creates the slice from the message. Returns its index or -1. */
static int register_tensor(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    size_t idx = pst_shard_count(srv->shard);
    if (new_tensor_state(srv, idx, 0) != PST_OK) {
        reply_error(srv, msg, PST_ENOMEM, "no memory for tensor %u/%u", h->model_id, h->tensor_id);
        return -1;
    }
    pst_err_t err = {0};
    int rc;
    if (h->sparse) {
        rc = pst_shard_add_sparse(srv->shard, h->model_id, h->tensor_id, h->row_width,
                                  h->init_scale, h->seed, &err);
    } else {
        const float *init = NULL;
        rc = pst_wire_view(srv->wire, msg, &init, &err);
        if (rc == PST_OK)
            rc = pst_shard_add_dense(srv->shard, h->model_id, h->tensor_id, h->total_size, init,
                                     &err);
    }
    if (rc < 0) {
        tensor_fini(&srv->tensors[idx]);
        reply_error(srv, msg, rc, "INIT of tensor %u/%u: %s", h->model_id, h->tensor_id, err.msg);
        return -1;
    }
    pst_info("server %u: tensor %u/%u registered (%s)", srv->cfg.server_index, h->model_id,
             h->tensor_id, h->sparse ? "sparse" : "dense");
    return rc;
}

/* An INIT must describe the tensor the way this server holds (or would hold) it. */
static bool init_matches(pst_server_t *srv, const pst_wire_msg_t *msg, int idx)
{
    const Pst__Header *h = msg->hdr;
    if (h->sparse) {
        if (h->count != 0) {
            reply_error(srv, msg, PST_EINVAL, "sparse INIT carries no rows");
            return false;
        }
        if (idx >= 0 && (!pst_shard_slice(srv->shard, (size_t)idx)->sparse ||
                         pst_shard_slice(srv->shard, (size_t)idx)->row_width != h->row_width)) {
            reply_error(srv, msg, PST_EINVAL, "tensor %u/%u is not sparse with rows of %u",
                        h->model_id, h->tensor_id, h->row_width);
            return false;
        }
        return true;
    }
    uint64_t off, len;
    pst_wire_shard_range(h->total_size, srv->cfg.n_servers, srv->cfg.server_index, &off, &len);
    if (h->total_size == 0 || h->offset != off || h->count != len) {
        reply_error(srv, msg, PST_ERANGE,
                    "server %u of %u owns [%llu, %llu) of %llu elements; INIT sent [%llu, %llu)",
                    srv->cfg.server_index, srv->cfg.n_servers, (unsigned long long)off,
                    (unsigned long long)(off + len), (unsigned long long)h->total_size,
                    (unsigned long long)h->offset, (unsigned long long)(h->offset + h->count));
        return false;
    }
    if (idx >= 0 && (pst_shard_slice(srv->shard, (size_t)idx)->sparse ||
                     pst_shard_slice(srv->shard, (size_t)idx)->total != h->total_size)) {
        reply_error(srv, msg, PST_EINVAL, "tensor %u/%u is registered with another shape",
                    h->model_id, h->tensor_id);
        return false;
    }
    return true;
}

static void on_init(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int idx = pst_shard_find(srv->shard, h->model_id, h->tensor_id);
    if (!init_matches(srv, msg, idx))
        return;
    if (idx < 0 && (idx = register_tensor(srv, msg)) < 0)
        return;
    tensor_t *t = &srv->tensors[idx];
    if (!t->participant[h->sender]) {
        t->participant[h->sender] = 1;
        t->n_participants++;
    }
    reply_ack(srv, msg, pst_shard_slice(srv->shard, (size_t)idx)->clock, 0);
}

/* The slice a PUSH or PULL addresses, or -1 after an ERROR reply. */
static int find_slice(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int idx = pst_shard_find(srv->shard, h->model_id, h->tensor_id);
    if (idx < 0) {
        reply_error(srv, msg, PST_ENOTFOUND, "tensor %u/%u is not registered (send INIT first)",
                    h->model_id, h->tensor_id);
        return -1;
    }
    const pst_slice_t *s = pst_shard_slice(srv->shard, (size_t)idx);
    if (s->sparse != (bool)h->sparse || (s->sparse && s->row_width != h->row_width)) {
        reply_error(srv, msg, PST_EINVAL, "tensor %u/%u is %s (rows of %u)", h->model_id,
                    h->tensor_id, s->sparse ? "sparse" : "dense", s->row_width);
        return -1;
    }
    return idx;
}

/* Adds a push to the BSP accumulator. A dense first contribution is held in place (see
 * pst_slice_dense_acc_add); on_push settles it before the message goes. */
static int accumulate(pst_server_t *srv, pst_slice_t *s, const pst_wire_msg_t *msg, pst_err_t *err)
{
    const float *g = NULL;
    int rc = pst_wire_view(srv->wire, msg, &g, err);
    if (rc != PST_OK || !s->sparse)
        return rc != PST_OK ? rc : pst_slice_dense_acc_add(s, g, true, err);
    uint32_t *rows = scratch_rows(srv, msg->n_keys);
    if (msg->n_keys > 0 && rows == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    rc = pst_slice_rows(s, msg->keys, msg->n_keys, rows, err);
    if (rc == PST_OK)
        rc = pst_slice_sparse_acc_add(s, rows, msg->n_keys, g, err);
    return rc;
}

/* g * scale in the server's scratch (g itself when scale is 1). */
static const float *scaled(pst_server_t *srv, const float *g, size_t n, float scale)
{
    if (scale == 1.0f || n == 0)
        return g;
    float *out = scratch_floats(srv, n);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = g[i] * scale;
    return out;
}

/* Applies a push at once, scaled by 1 / participants (SSP, ASP). */
static int apply_now(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg, pst_err_t *err)
{
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    float scale = 1.0f / (float)srv->tensors[idx].n_participants, lr = msg->hdr->lr;
    const float *view = NULL;
    int rc = pst_wire_view(srv->wire, msg, &view, err);
    if (rc != PST_OK)
        return rc;
    uint32_t *rows = scratch_rows(srv, msg->n_keys);
    const float *g = scaled(srv, view, msg->n_values, scale);
    if ((msg->n_keys > 0 && rows == NULL) || (msg->n_values > 0 && g == NULL))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    srv->counters[PST_STAT_UPDATES]++;
    if (!s->sparse)
        return pst_slice_dense_step(s, g, lr, err);
    rc = pst_slice_rows(s, msg->keys, msg->n_keys, rows, err);
    if (rc == PST_OK)
        rc = pst_slice_sparse_step(s, rows, msg->n_keys, g, lr, err);
    return rc;
}

/* BSP admission: the push must be for the open clock, once per worker. Returns false after
 * replying (a stale push is acknowledged and dropped). */
static bool bsp_admit(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    if (h->clock < s->clock) {
        srv->counters[PST_STAT_STALE_PUSHES]++;
        pst_debug("server %u: stale push for clock %llu from worker %u dropped",
                  srv->cfg.server_index, (unsigned long long)h->clock, h->sender);
        reply_ack(srv, msg, s->clock, PST_WIRE_FLAG_STALE);
        return false;
    }
    if (h->clock > s->clock) {
        reply_error(srv, msg, PST_ESTATE,
                    "push of tensor %u/%u for clock %llu while clock %llu "
                    "is open",
                    h->model_id, h->tensor_id, (unsigned long long)h->clock,
                    (unsigned long long)s->clock);
        return false;
    }
    if (srv->tensors[idx].contributed[h->sender]) {
        reply_error(srv, msg, PST_ESTATE, "second push of tensor %u/%u for clock %llu", h->model_id,
                    h->tensor_id, (unsigned long long)h->clock);
        return false;
    }
    return true;
}

static void on_push(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int found = find_slice(srv, msg);
    if (found < 0)
        return;
    size_t idx = (size_t)found;
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    tensor_t *t = &srv->tensors[idx];
    if (!t->participant[h->sender]) {
        reply_error(srv, msg, PST_ESTATE, "worker %u pushed tensor %u/%u without INIT", h->sender,
                    h->model_id, h->tensor_id);
        return;
    }
    if (!s->sparse && (h->offset != s->offset || h->count != s->len)) {
        reply_error(srv, msg, PST_ERANGE, "push of [%llu, %llu); this server owns [%llu, %llu)",
                    (unsigned long long)h->offset, (unsigned long long)(h->offset + h->count),
                    (unsigned long long)s->offset, (unsigned long long)(s->offset + s->len));
        return;
    }
    bool bsp = srv->cfg.consistency == PST_CONSISTENCY_BSP;
    if (bsp && !bsp_admit(srv, idx, msg))
        return;
    pst_err_t err = {0};
    int rc = bsp ? accumulate(srv, s, msg, &err) : apply_now(srv, idx, msg, &err);
    if (rc != PST_OK) {
        reply_error(srv, msg, rc, "push of tensor %u/%u: %s", h->model_id, h->tensor_id, err.msg);
        return;
    }
    if (bsp) {
        t->contributed[h->sender] = 1;
        t->n_contributed++;
        t->lr = h->lr;
    } else if (h->clock + 1 > t->pushed[h->sender]) {
        t->pushed[h->sender] = h->clock + 1;
    }
    srv->counters[PST_STAT_PUSHES]++;
    reply_ack(srv, msg, h->clock, 0);
    progress(srv, idx);
    /* A contribution still held in the message's frame is copied before the frame goes. */
    if (bsp && !s->sparse && pst_slice_dense_acc_settle(s, &err) != PST_OK)
        pst_error("server %u: %s", srv->cfg.server_index, err.msg);
}

static void on_pull(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int found = find_slice(srv, msg);
    if (found < 0)
        return;
    size_t idx = (size_t)found;
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    if (!s->sparse && (h->offset < s->offset || h->offset + h->count > s->offset + s->len)) {
        reply_error(srv, msg, PST_ERANGE, "pull of [%llu, %llu); this server owns [%llu, %llu)",
                    (unsigned long long)h->offset, (unsigned long long)(h->offset + h->count),
                    (unsigned long long)s->offset, (unsigned long long)(s->offset + s->len));
        return;
    }
    pst_err_t err = {0};
    int rc = PST_OK;
    if (pull_ready(srv, idx, h->clock))
        rc = reply_pull(srv, idx, msg->route, msg->route_len, h, msg->keys, &err);
    else if ((rc = queue_pull(srv, idx, msg)) != PST_OK)
        pst_err_set(&err, rc, "no memory to queue the pull");
    if (rc != PST_OK)
        reply_error(srv, msg, rc, "pull of tensor %u/%u: %s", h->model_id, h->tensor_id, err.msg);
}

static void on_barrier(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    worker_t *wk = &srv->workers[msg->hdr->sender];
    wk->at_barrier = true;
    wk->barrier_seq = msg->hdr->seq;
    memcpy(wk->barrier_route.id, msg->route, msg->route_len);
    wk->barrier_route.len = msg->route_len;
    check_barrier(srv);
}

static void on_stats(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    uint64_t counters[PST_STAT_COUNT];
    pst_server_stats(srv, counters);
    Pst__Header h = reply_header(msg->hdr, PST__OP__OP_STATS);
    h.n_counters = PST_STAT_COUNT;
    h.counters = counters;
    send_reply(srv, msg->route, msg->route_len, &h, NULL);
}

static void on_checkpoint(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    if (srv->ckpt_dir == NULL) {
        reply_error(srv, msg, PST_ESTATE, "no checkpoint directory configured");
        return;
    }
    uint64_t clock = UINT64_MAX;
    for (size_t i = 0; i < pst_shard_count(srv->shard); i++) {
        uint64_t c = pst_shard_slice(srv->shard, i)->clock;
        clock = c < clock ? c : clock;
    }
    clock = clock == UINT64_MAX ? 0 : clock;
    pst_err_t err = {0};
    if (pst_checkpoint_write(srv->ckpt_dir, srv->shard, clock, &err) != PST_OK) {
        reply_error(srv, msg, err.code, "checkpoint: %s", err.msg);
        return;
    }
    srv->counters[PST_STAT_CHECKPOINTS]++;
    reply_ack(srv, msg, clock, 0);
}

static void on_shutdown(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    worker_t *wk = &srv->workers[msg->hdr->sender];
    bool was_live = worker_live(wk);
    wk->done = true;
    reply_ack(srv, msg, msg->hdr->clock, 0);
    pst_info("server %u: worker %u shut down", srv->cfg.server_index, msg->hdr->sender);
    if (was_live)
        recheck_all(srv);
}

static void handle(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    if (h->sender >= srv->cfg.n_workers) {
        reply_error(srv, msg, PST_EINVAL, "sender %u is not a worker id (%u workers)", h->sender,
                    srv->cfg.n_workers);
        return;
    }
    worker_t *wk = &srv->workers[h->sender];
    if (wk->done) {
        if (h->op == PST__OP__OP_SHUTDOWN)
            reply_ack(srv, msg, h->clock, 0);
        else if (h->op == PST__OP__OP_STATS)
            on_stats(srv, msg);
        else if (h->op != PST__OP__OP_HEARTBEAT)
            reply_error(srv, msg, PST_ESTATE, "worker %u has shut down", h->sender);
        return;
    }
    wk->last_seen_ms = now_ms();
    if (!wk->alive) {
        wk->alive = true;
        pst_warn("server %u: worker %u is back after being declared dead", srv->cfg.server_index,
                 h->sender);
    }
    switch (h->op) {
    case PST__OP__OP_INIT:
        on_init(srv, msg);
        break;
    case PST__OP__OP_PUSH:
        on_push(srv, msg);
        break;
    case PST__OP__OP_PULL:
        on_pull(srv, msg);
        break;
    case PST__OP__OP_BARRIER:
        on_barrier(srv, msg);
        break;
    case PST__OP__OP_HEARTBEAT:
        break;
    case PST__OP__OP_STATS:
        on_stats(srv, msg);
        break;
    case PST__OP__OP_CHECKPOINT:
        on_checkpoint(srv, msg);
        break;
    case PST__OP__OP_SHUTDOWN:
        on_shutdown(srv, msg);
        break;
    default:
        reply_error(srv, msg, PST_EINVAL, "a server does not take %s messages",
                    pst_wire_op_name(h->op));
    }
}

/* ---- the loop ---- */

static void log_bad_frame(pst_server_t *srv, const pst_err_t *err)
{
    pst_wire_stats_t ws;
    pst_wire_stats(srv->wire, &ws);
    if (ws.bad_frames <= LOG_BAD_FRAMES || ws.bad_frames % 1000 == 0)
        pst_warn("server %u: dropped malformed message (%llu so far): %s", srv->cfg.server_index,
                 (unsigned long long)ws.bad_frames, err->msg);
}

/* Handles the messages waiting, at most BATCH of them. */
static int drain(pst_server_t *srv, pst_err_t *err)
{
    for (int i = 0; i < BATCH; i++) {
        pst_wire_msg_t msg;
        pst_err_t why = {0};
        int rc = pst_wire_recv(srv->wire, srv->sock, &msg, ZMQ_DONTWAIT, &why);
        if (rc == PST_ETIMEOUT)
            return PST_OK;
        if (rc == PST_EPROTO) {
            log_bad_frame(srv, &why);
            continue;
        }
        if (rc != PST_OK)
            return pst_err_set(err, rc, "server %u: %s", srv->cfg.server_index, why.msg);
        handle(srv, &msg);
        pst_wire_msg_close(&msg);
    }
    return PST_OK;
}

int pst_server_run(pst_server_t *self, pst_err_t *err)
{
    if (!self->bound)
        return pst_err_set(err, PST_ESTATE, "server %u: run before bind", self->cfg.server_index);
    int64_t start = now_ms();
    for (uint32_t w = 0; w < self->cfg.n_workers; w++)
        self->workers[w].last_seen_ms = start;
    while (!atomic_load(&self->stop) && !all_workers_gone(self)) {
        zmq_pollitem_t item = {self->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, POLL_MS);
        if (n < 0 && errno != EINTR)
            return pst_err_set(err, PST_EIO, "server %u: poll: %s", self->cfg.server_index,
                               zmq_strerror(errno));
        if (n > 0) {
            int rc = drain(self, err);
            if (rc != PST_OK)
                return rc;
        }
        check_heartbeats(self);
    }
    return PST_OK;
}

int pst_server_restore(pst_server_t *self, uint64_t *clock, pst_err_t *err)
{
    if (self->ckpt_dir == NULL)
        return pst_err_set(err, PST_EINVAL, "server %u: no checkpoint directory",
                           self->cfg.server_index);
    if (pst_shard_count(self->shard) > 0)
        return pst_err_set(err, PST_ESTATE, "server %u: restore after tensors were registered",
                           self->cfg.server_index);
    char path[4096];
    int rc = pst_checkpoint_path(self->ckpt_dir, self->cfg.server_index, path, sizeof path, err);
    if (rc != PST_OK)
        return rc;
    if (access(path, F_OK) != 0)
        return pst_err_set(err, PST_ENOTFOUND, "%s: no checkpoint", path);
    uint64_t file_clock = 0;
    pst_shard_t *loaded = pst_checkpoint_load(path, &self->cfg.optim, &file_clock, err);
    if (loaded == NULL)
        return err ? err->code : PST_EFORMAT;
    if (pst_shard_server(loaded) != self->cfg.server_index ||
        pst_shard_n_servers(loaded) != self->cfg.n_servers) {
        rc = pst_err_set(err, PST_EFORMAT, "%s: written by server %u of %u, this is %u of %u", path,
                         pst_shard_server(loaded), pst_shard_n_servers(loaded),
                         self->cfg.server_index, self->cfg.n_servers);
        pst_shard_destroy(&loaded);
        return rc;
    }
    for (size_t i = 0; i < pst_shard_count(loaded); i++) {
        if (new_tensor_state(self, i, pst_shard_slice(loaded, i)->clock) != PST_OK) {
            for (size_t j = 0; j < i; j++)
                tensor_fini(&self->tensors[j]);
            pst_shard_destroy(&loaded);
            return pst_err_set(err, PST_ENOMEM, "server %u: out of memory", self->cfg.server_index);
        }
    }
    pst_shard_destroy(&self->shard);
    self->shard = loaded;
    *clock = file_clock;
    pst_info("server %u: resumed from %s at clock %llu", self->cfg.server_index, path,
             (unsigned long long)file_clock);
    return PST_OK;
}
