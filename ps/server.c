/* Parameter server: lifecycle, the socket loop, request dispatch, replies and control requests. */
#include "ps/server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/log.h"
#include "common/numparse.h"
#include "ps/checkpoint.h"
#include "ps/server_internal.h"
#include "ps/shard.h"

#define POLL_MS 20        /* loop tick: heartbeat checks and stop requests */
#define BATCH 256         /* messages handled between two ticks at most */
#define LOG_BAD_FRAMES 10 /* malformed frames logged one by one; after that one line per 1000 */
#define CLOSE_LINGER_MS 1000

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
    return now_us() / 1000;
}

/* ---- configuration and lifecycle ---- */

void pst_server_cfg_defaults(pst_server_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->n_servers = 1;
    cfg->n_workers = 1;
    cfg->consistency = PST_CONSISTENCY_BSP;
    cfg->heartbeat_timeout_ms = 30000;
    cfg->keep_checkpoints = 3;
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
    int unlimited = 0, tick = POLL_MS;
    /* Replies are never dropped for a slow worker; workers always read them. */
    zmq_setsockopt(srv->sock, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    zmq_setsockopt(srv->sock, ZMQ_RCVTIMEO, &tick, sizeof tick);
    int rc = pst_wire_prepare_socket(srv->wire, srv->sock, err);
    if (rc != PST_OK || (srv->cfg.curve_key == NULL && !srv->cfg.plain_tokens))
        return rc;
    /* The handler runs before the socket can bind, so no handshake is ever admitted unasked. */
    if (srv->cfg.worker_keys == NULL || srv->cfg.worker_keys->n != srv->cfg.n_workers)
        return pst_err_set(err, PST_EINVAL, "server: authentication needs one key per worker");
    char owner[32];
    snprintf(owner, sizeof owner, "server %u", (unsigned)srv->cfg.server_index);
    srv->auth =
        pst_fedauth_start_named(srv->ctx, srv->cfg.worker_keys, srv->cfg.plain_tokens, owner, err);
    if (srv->auth == NULL)
        return err ? err->code : PST_EIO;
    return srv->cfg.plain_tokens ? pst_fedauth_plain_server_socket(srv->sock, err)
                                 : pst_fedauth_server_socket(srv->sock, srv->cfg.curve_key, err);
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
    srv->cfg.curve_key = NULL; /* used by open_socket only, while the caller's copy lives */
    srv->cfg.worker_keys = NULL;
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
    else {
        srv->cfg.curve_key = cfg->curve_key;
        srv->cfg.worker_keys = cfg->worker_keys;
        rc = open_socket(srv, err);
        srv->cfg.curve_key = NULL;
        srv->cfg.worker_keys = NULL;
    }
    if (rc != PST_OK) {
        pst_server_destroy(&srv);
        return NULL;
    }
    for (uint32_t w = 0; w < cfg->n_workers; w++)
        srv->workers[w].alive = true;
    return srv;
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
    /* After the CURVE socket closed, before the context ends (it would wait for the handler). */
    pst_fedauth_stop(&srv->auth);
    if (srv->own_ctx && srv->ctx != NULL)
        zmq_ctx_term(srv->ctx);
    pst_wire_destroy(&srv->wire);
    size_t n = srv->shard ? pst_shard_count(srv->shard) : 0;
    for (size_t i = 0; i < n; i++)
        pst_server_tensor_fini(&srv->tensors[i]);
    free(srv->tensors);
    pst_server_reductions_free(srv);
    pst_shard_destroy(&srv->shard);
    pst_contract_fini(&srv->contract);
    pst_server_namespaces_free(srv);
    free(srv->workers);
    free(srv->ckpt_dir);
    free(srv->scratch);
    free(srv->rows);
    free(srv);
    *self_p = NULL;
}

int pst_server_reset(pst_server_t *self, pst_consistency_t consistency,
                     const pst_optim_cfg_t *optim, pst_err_t *err)
{
    if (consistency > PST_CONSISTENCY_ASP)
        return pst_err_set(err, PST_EINVAL, "server: consistency %d", (int)consistency);
    pst_shard_t *shard = pst_shard_new(self->cfg.server_index, self->cfg.n_servers, optim, err);
    if (shard == NULL)
        return PST_ENOMEM;
    for (size_t i = 0; i < pst_shard_count(self->shard); i++)
        pst_server_tensor_fini(&self->tensors[i]);
    pst_server_reductions_free(self);
    pst_shard_destroy(&self->shard);
    self->shard = shard;
    pst_contract_fini(&self->contract);
    self->has_contract = false;
    self->cfg.consistency = consistency;
    self->cfg.optim = *optim;
    memset(self->workers, 0, self->cfg.n_workers * sizeof *self->workers);
    for (uint32_t w = 0; w < self->cfg.n_workers; w++)
        self->workers[w].alive = true;
    memset(self->counters, 0, sizeof self->counters);
    self->msg_list = NULL;
    atomic_store(&self->stop, 0);
    return PST_OK;
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

int pst_server_set_contract(pst_server_t *self, const pst_contract_t *contract, pst_err_t *err)
{
    if (self->namespaces != NULL)
        return pst_err_set(err, PST_ESTATE, "server %u: its namespaces are declared as it runs",
                           self->cfg.server_index);
    int rc = pst_contract_copy(&self->contract, contract, err);
    self->has_contract = rc == PST_OK;
    return rc;
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
    counters[PST_STAT_SPARSE_ROWS] = pst_shard_sparse_rows(self->shard);
    counters[PST_STAT_STORE_BYTES] = pst_shard_bytes(self->shard);
    struct rusage ru;
    /* Linux reports ru_maxrss in KiB. */
    counters[PST_STAT_PEAK_RSS] =
        getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0;
}

/* ---- replies ---- */

Pst__Header pst_server_reply_header(const Pst__Header *req, Pst__Op op)
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

void pst_server_send_reply(pst_server_t *srv, const uint8_t *route, size_t route_len,
                           Pst__Header *h, const pst_wire_payload_t *payload)
{
    pst_err_t err = {0};
    if (pst_wire_send(srv->wire, srv->sock, route, route_len, h, payload, &err) != PST_OK)
        pst_warn("server %u: %s to worker %u: %s", srv->cfg.server_index, pst_wire_op_name(h->op),
                 h->sender, err.msg);
}

void pst_server_reply_ack(pst_server_t *srv, const pst_wire_msg_t *msg, uint64_t clock,
                          uint32_t flags)
{
    Pst__Header h = pst_server_reply_header(msg->hdr, PST__OP__OP_ACK);
    h.clock = clock;
    h.flags = flags;
    pst_server_send_reply(srv, msg->route, msg->route_len, &h, NULL);
}

void pst_server_reply_error(pst_server_t *srv, const pst_wire_msg_t *msg, int code, const char *fmt,
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
    Pst__Header h = pst_server_reply_header(msg->hdr, PST__OP__OP_ERROR);
    h.error = text;
    h.flags = (uint32_t)(-code);
    pst_server_send_reply(srv, msg->route, msg->route_len, &h, NULL);
}

/* ---- control requests ---- */

static void on_barrier(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    pst_server_worker_t *wk = &srv->workers[msg->hdr->sender];
    wk->at_barrier = true;
    wk->barrier_seq = msg->hdr->seq;
    memcpy(wk->barrier_route.id, msg->route, msg->route_len);
    wk->barrier_route.len = msg->route_len;
    pst_server_check_barrier(srv);
}

static void on_stats(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    uint64_t counters[PST_STAT_COUNT];
    pst_server_stats(srv, counters);
    Pst__Header h = pst_server_reply_header(msg->hdr, PST__OP__OP_STATS);
    h.n_counters = PST_STAT_COUNT;
    h.counters = counters;
    pst_server_send_reply(srv, msg->route, msg->route_len, &h, NULL);
}

static void on_checkpoint(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    if (srv->ckpt_dir == NULL) {
        pst_server_reply_error(srv, msg, PST_ESTATE, "no checkpoint directory configured");
        return;
    }
    uint64_t clock = UINT64_MAX;
    for (size_t i = 0; i < pst_shard_count(srv->shard); i++) {
        uint64_t c = pst_shard_slice(srv->shard, i)->clock;
        clock = c < clock ? c : clock;
    }
    clock = clock == UINT64_MAX ? 0 : clock;
    pst_err_t err = {0};
    if (pst_checkpoint_write_kept(srv->ckpt_dir, srv->shard, clock, srv->cfg.keep_checkpoints,
                                  &err) != PST_OK) {
        pst_server_reply_error(srv, msg, err.code, "checkpoint: %s", err.msg);
        return;
    }
    srv->counters[PST_STAT_CHECKPOINTS]++;
    pst_server_reply_ack(srv, msg, clock, 0);
}

static void on_shutdown(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    pst_server_worker_t *wk = &srv->workers[msg->hdr->sender];
    bool was_live = pst_server_worker_live(wk);
    wk->done = true;
    pst_server_reply_ack(srv, msg, msg->hdr->clock, 0);
    pst_info("server %u: worker %u shut down", srv->cfg.server_index, msg->hdr->sender);
    if (was_live)
        pst_server_recheck_all(srv);
}

/* With CURVE or tokens, the worker a request speaks for is the key it was admitted with: a header
 * naming another worker is refused, so no worker can push, pull or shut down in another's name. */
static bool sender_authentic(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    if (srv->auth == NULL)
        return true;
    const char *who = pst_fedauth_peer_site(&msg->frames[1]);
    long id = -1;
    if (who != NULL && pst_parse_decimal(who, &id) == PST_OK && id == (long)msg->hdr->sender)
        return true;
    srv->counters[PST_STAT_SPOOFED]++;
    pst_server_reply_error(srv, msg, PST_EPROTO, "a request as worker %u from %s%s",
                           msg->hdr->sender, who ? "worker " : "an unauthenticated peer",
                           who ? who : "");
    return false;
}

static void handle(pst_server_t *srv, pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    if (!sender_authentic(srv, msg))
        return;
    if (h->sender >= srv->cfg.n_workers) {
        pst_server_reply_error(srv, msg, PST_EINVAL, "sender %u is not a worker id (%u workers)",
                               h->sender, srv->cfg.n_workers);
        return;
    }
    pst_server_worker_t *wk = &srv->workers[h->sender];
    if (wk->done) {
        if (h->op == PST__OP__OP_SHUTDOWN)
            pst_server_reply_ack(srv, msg, h->clock, 0);
        else if (h->op == PST__OP__OP_STATS)
            on_stats(srv, msg);
        else if (h->op != PST__OP__OP_HEARTBEAT)
            pst_server_reply_error(srv, msg, PST_ESTATE, "worker %u has shut down", h->sender);
        return;
    }
    wk->last_seen_ms = now_ms();
    if (!wk->alive) {
        wk->alive = true;
        pst_server_note_rejoin(srv, h->sender);
        pst_warn(
            "server %u: worker %u is back after being declared dead; it rejoins at clock "
            "%llu",
            srv->cfg.server_index, h->sender,
            (unsigned long long)wk->rejoined_at
                [(wk->n_drops < PST_REDUCE_MAX_DROPS ? wk->n_drops : PST_REDUCE_MAX_DROPS) - 1]);
    }
    switch (h->op) {
    case PST__OP__OP_INIT:
        pst_server_on_init(srv, msg);
        break;
    case PST__OP__OP_PUSH:
        if (pst_server_resolve_keys(srv, msg))
            pst_server_on_push(srv, msg);
        break;
    case PST__OP__OP_PULL:
        if (pst_server_resolve_keys(srv, msg))
            pst_server_on_pull(srv, msg);
        break;
    case PST__OP__OP_BARRIER:
        if (h->count > 0 || msg->blob_len > 0)
            pst_server_on_reduce(srv, msg);
        else
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
    case PST__OP__OP_DROP:
        pst_server_on_drop(srv, msg);
        break;
    case PST__OP__OP_SHUTDOWN:
        on_shutdown(srv, msg);
        break;
    default:
        pst_server_reply_error(srv, msg, PST_EINVAL, "a server does not take %s messages",
                               pst_wire_op_name(h->op));
    }
}

/* ---- the loop ---- */

static bool all_workers_gone(const pst_server_t *srv)
{
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (pst_server_worker_live(&srv->workers[w]))
            return false;
    }
    return true;
}

static void log_bad_frame(pst_server_t *srv, const pst_err_t *err)
{
    pst_wire_stats_t ws;
    pst_wire_stats(srv->wire, &ws);
    if (ws.bad_frames <= LOG_BAD_FRAMES || ws.bad_frames % 1000 == 0)
        pst_warn("server %u: dropped malformed message (%llu so far): %s", srv->cfg.server_index,
                 (unsigned long long)ws.bad_frames, err->msg);
}

/* The time a push or pull took from its receipt to its reply: what a server spends per request,
 * the figure that decides how many workers one server can feed. A BSP push that completes a
 * clock includes the optimizer step and the replies to the pulls that waited for it. */
static void account_time(pst_server_t *srv, int op, int64_t us)
{
    if (op == PST__OP__OP_PUSH)
        srv->counters[PST_STAT_PUSH_US] += (uint64_t)us;
    else if (op == PST__OP__OP_PULL)
        srv->counters[PST_STAT_PULL_US] += (uint64_t)us;
}

/* Handles the messages that arrive within POLL_MS (wait) or are waiting already, at most BATCH. */
static int drain(pst_server_t *srv, bool wait, pst_err_t *err)
{
    for (int i = 0; i < BATCH; i++) {
        pst_wire_msg_t msg;
        pst_err_t why = {0};
        /* The first receive blocks (up to the socket's POLL_MS timeout): one wait in the kernel,
         * where zmq_poll and a receive after it cost two or three system calls more a message. */
        int64_t t0 = now_us();
        int rc = pst_wire_recv(srv->wire, srv->sock, &msg, i == 0 && wait ? 0 : ZMQ_DONTWAIT, &why);
        if (i == 0)
            t0 = now_us();
        if (rc == PST_ETIMEOUT)
            return PST_OK;
        if (rc == PST_EPROTO) {
            log_bad_frame(srv, &why);
            continue;
        }
        if (rc != PST_OK)
            return pst_err_set(err, rc, "server %u: %s", srv->cfg.server_index, why.msg);
        /* Answers to requests coalesced in one ZeroMQ message travel back in one; the last
         * answer (or the flush after a request that has none) ends it. */
        bool more = pst_wire_in_open(srv->wire);
        pst_wire_set_coalesce(srv->wire, more);
        int op = msg.hdr->op;
        handle(srv, &msg);
        pst_wire_msg_close(&msg);
        if (!more)
            pst_wire_flush(srv->wire, srv->sock, NULL);
        account_time(srv, op, now_us() - t0);
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
        /* a reply left open (the loop stopped inside coalesced requests) goes before any wait */
        pst_wire_set_coalesce(self->wire, false);
        pst_wire_flush(self->wire, self->sock, NULL);
        int rc = drain(self, true, err);
        if (rc != PST_OK)
            return rc;
        pst_server_check_heartbeats(self, now_ms());
    }
    pst_wire_flush(self->wire, self->sock, NULL);
    return PST_OK;
}

int pst_server_serve_waiting(pst_server_t *self, pst_err_t *err)
{
    if (!self->bound)
        return pst_err_set(err, PST_ESTATE, "server %u: serve before bind", self->cfg.server_index);
    int rc = drain(self, false, err);
    pst_wire_set_coalesce(self->wire, false);
    pst_wire_flush(self->wire, self->sock, NULL);
    return rc;
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
        if (pst_server_new_tensor_state(self, i, pst_shard_slice(loaded, i)->clock) != PST_OK) {
            for (size_t j = 0; j < i; j++)
                pst_server_tensor_fini(&self->tensors[j]);
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
