/* Push/pull client: lifecycle, connections, tensor registration, and the dense and control
 * requests split across the servers' ranges. */
#include "worker/psclient.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/fed/fedauth.h"
#include "worker/psclient_internal.h"

void pst_psclient_cfg_defaults(pst_psclient_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->push_codec = PST_CODEC_RAW;
    cfg->pull_codec = PST_CODEC_RAW;
    cfg->timeout_ms = 120000;
    cfg->heartbeat_ms = 1000;
    cfg->push_acks = true;
}

/* ---- connections ---- */

void *pst_psclient_connect_dealer(pst_psclient_t *c, uint32_t s, int send_timeout_ms,
                                  pst_err_t *err)
{
    const char *endpoint = c->endpoints[s];
    void *sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (sock == NULL) {
        pst_err_set(err, PST_EIO, "client: DEALER socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &send_timeout_ms, sizeof send_timeout_ms);
    char user[16];
    snprintf(user, sizeof user, "%u", c->cfg.worker_id);
    if ((c->curve && pst_fedauth_client_socket(sock, &c->curve_key, c->server_keys[s], err) != 0) ||
        (c->plain &&
         pst_fedauth_plain_client_socket(sock, user, c->curve_key.secret_key, err) != 0)) {
        zmq_close(sock);
        return NULL;
    }
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
        c->socks[s] = pst_psclient_connect_dealer(c, s, c->cfg.timeout_ms, err);
        if (c->socks[s] == NULL)
            return err ? err->code : PST_EIO;
        pst_wire_set_coalesce(c->wires[s], c->cfg.coalesce);
        int rc = pst_wire_prepare_socket(c->wires[s], c->socks[s], err);
        if (rc != PST_OK)
            return rc;
        c->items[s] = (zmq_pollitem_t){c->socks[s], 0, ZMQ_POLLIN, 0};
    }
    return PST_OK;
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
    if ((!pst_codec_known((int)cfg->push_codec) && cfg->push_codec != PST_CODEC_AUTO) ||
        (!pst_codec_known((int)cfg->pull_codec) && cfg->pull_codec != PST_CODEC_AUTO))
        return pst_err_set(err, PST_EINVAL, "client: unknown codec");
    return PST_OK;
}

/* Keeps the worker's key pair and the servers' public keys, or its token (the caller's copies may
 * go). */
static int copy_curve(pst_psclient_t *c, const pst_psclient_cfg_t *cfg, pst_err_t *err)
{
    c->cfg.curve_key = NULL;
    c->cfg.server_keys = NULL;
    c->cfg.token = NULL;
    if (cfg->curve_key == NULL && cfg->token != NULL) {
        if (strlen(cfg->token) != PST_FEDKEY_Z85)
            return pst_err_set(err, PST_EINVAL, "client: the job's token is not 40 characters");
        memcpy(c->curve_key.secret_key, cfg->token, PST_FEDKEY_Z85 + 1);
        c->plain = true;
        return PST_OK;
    }
    if (cfg->curve_key == NULL)
        return PST_OK;
    if (cfg->server_keys == NULL)
        return pst_err_set(err, PST_EINVAL, "client: CURVE without the servers' public keys");
    c->server_keys = calloc(cfg->n_servers, sizeof *c->server_keys);
    if (c->server_keys == NULL)
        return pst_err_set(err, PST_ENOMEM, "client: out of memory");
    for (uint32_t s = 0; s < cfg->n_servers; s++) {
        if (cfg->server_keys[s] == NULL || !pst_fedkey_valid(cfg->server_keys[s]))
            return pst_err_set(err, PST_EINVAL, "client: server %u's public key is not Z85", s);
        memcpy(c->server_keys[s], cfg->server_keys[s], PST_FEDKEY_Z85 + 1);
    }
    c->curve_key = *cfg->curve_key;
    c->curve = true;
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
    c->replied_block = calloc((size_t)PST_PSCLIENT_MAX_OPS * S, 1);
    c->sent_block = calloc((size_t)PST_PSCLIENT_MAX_OPS * S, sizeof(uint64_t));
    if (!c->endpoints || !c->socks || !c->wires || !c->items || !c->split || !c->fill ||
        !c->replied_block || !c->sent_block)
        return PST_ENOMEM;
    for (int i = 0; i < PST_PSCLIENT_MAX_OPS; i++) {
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
    } else if ((rc = copy_curve(c, cfg, err)) == PST_OK) {
        c->own_ctx = cfg->zmq_ctx == NULL;
        c->ctx = c->own_ctx ? zmq_ctx_new() : cfg->zmq_ctx;
        rc = c->ctx ? open_connections(c, cfg->endpoints, err)
                    : pst_err_set(err, PST_EIO, "client: no ZeroMQ context");
    }
    if (rc == PST_OK && cfg->heartbeat_ms > 0)
        rc = pst_psclient_start_heartbeats(c, err);
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

static void tensor_free(pst_psclient_tensor_t *t, uint32_t n_servers)
{
    free(t->off);
    free(t->len);
    free(t->residual);
    for (uint32_t s = 0; t->sent != NULL && s < n_servers * PST_WIRE_KEY_LISTS; s++)
        pst_keycodec_list_fini(&t->sent[s]);
    free(t->sent);
    free(t->sent_newest);
    memset(t, 0, sizeof *t);
}

void pst_psclient_destroy(pst_psclient_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_psclient_t *c = *self_p;
    uint32_t S = c->cfg.n_servers;
    pst_psclient_stop_heartbeats(c);
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
        }
    }
    for (size_t i = 0; i < c->n_tensors; i++)
        tensor_free(&c->tensors[i], S);
    free(c->server_keys);
    memset(&c->curve_key, 0, sizeof c->curve_key); /* the secret key leaves no copy behind */
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
    free(c);
    *self_p = NULL;
}

/* ---- tensors ---- */

static int add_tensor(pst_psclient_t *c, pst_psclient_tensor_t *t, pst_err_t *err)
{
    for (size_t i = 0; i < c->n_tensors; i++) {
        if (c->tensors[i].dropped) {
            c->tensors[i] = *t;
            return (int)i;
        }
    }
    if (c->n_tensors == c->tensors_cap) {
        size_t cap = c->tensors_cap ? 2 * c->tensors_cap : 8;
        pst_psclient_tensor_t *grown = realloc(c->tensors, cap * sizeof *grown);
        if (grown == NULL)
            return pst_err_set(err, PST_ENOMEM, "client: out of memory");
        c->tensors = grown;
        c->tensors_cap = cap;
    }
    c->tensors[c->n_tensors] = *t;
    return (int)c->n_tensors++;
}

int pst_psclient_register_dense(pst_psclient_t *self, uint32_t model_id, uint32_t tensor_id,
                                uint64_t n, pst_err_t *err)
{
    uint32_t S = self->cfg.n_servers;
    if (n == 0)
        return pst_err_set(err, PST_EINVAL, "client: tensor %u/%u has no elements", model_id,
                           tensor_id);
    pst_psclient_tensor_t t = {.model_id = model_id, .tensor_id = tensor_id, .n = n};
    t.off = malloc(S * sizeof(uint64_t));
    t.len = malloc(S * sizeof(uint64_t));
    if (pst_codec_lossy(self->cfg.push_codec))
        t.residual = calloc(n, sizeof(float));
    int rc = PST_OK;
    if (t.off == NULL || t.len == NULL ||
        (pst_codec_lossy(self->cfg.push_codec) && t.residual == NULL))
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
    pst_psclient_tensor_t t = {.model_id = model_id,
                               .tensor_id = tensor_id,
                               .sparse = true,
                               .row_width = row_width,
                               .init_scale = init_scale,
                               .seed = seed};
    t.sent = calloc((size_t)self->cfg.n_servers * PST_WIRE_KEY_LISTS, sizeof *t.sent);
    t.sent_newest = calloc(self->cfg.n_servers, 1);
    int rc = t.sent != NULL && t.sent_newest != NULL
                 ? add_tensor(self, &t, err)
                 : pst_err_set(err, PST_ENOMEM, "client: no memory for tensor %u/%u", model_id,
                               tensor_id);
    if (rc < 0) {
        free(t.sent);
        free(t.sent_newest);
    }
    return rc;
}

pst_psclient_tensor_t *pst_psclient_get_tensor(pst_psclient_t *c, int tensor, bool sparse,
                                               pst_err_t *err)
{
    if (tensor < 0 || (size_t)tensor >= c->n_tensors) {
        pst_err_set(err, PST_EINVAL, "client: no tensor handle %d", tensor);
        return NULL;
    }
    pst_psclient_tensor_t *t = &c->tensors[tensor];
    if (t->dropped) {
        pst_err_set(err, PST_EINVAL, "client: tensor handle %d was dropped", tensor);
        return NULL;
    }
    if (t->sparse != sparse) {
        pst_err_set(err, PST_EINVAL, "client: tensor %u/%u is %s", t->model_id, t->tensor_id,
                    t->sparse ? "sparse" : "dense");
        return NULL;
    }
    return t;
}

/* ---- requests ---- */

int pst_psclient_send_to(pst_psclient_t *c, uint32_t s, pst_psclient_op_t *op, Pst__Header *h,
                         const pst_wire_payload_t *payload, pst_err_t *err)
{
    h->sender = c->cfg.worker_id;
    h->seq = op->seq;
    bool unasked = op->kind == PST__OP__OP_PUSH && !c->cfg.push_acks;
    if (unasked)
        h->flags |= PST_WIRE_FLAG_NO_ACK;
    int rc = pst_wire_send(c->wires[s], c->socks[s], NULL, 0, h, payload, err);
    if (rc != PST_OK) {
        if (err != NULL)
            pst_err_prefix(err, rc, "server %u (%s): ", s, c->endpoints[s]);
        pst_psclient_op_release(op);
        c->errors++;
    } else if (unasked) {
        pst_psclient_op_unasked(op, s);
    }
    return rc;
}

Pst__Header pst_psclient_request_header(const pst_psclient_tensor_t *t, Pst__Op op, uint64_t clock)
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

/* Sends a header-only request of kind about model_id to every server (or one, when only >= 0)
 * and waits. */
static int round_trip(pst_psclient_t *c, Pst__Op kind, uint32_t model_id, int only,
                      uint64_t *counters, pst_err_t *err)
{
    pst_psclient_op_t *op = pst_psclient_op_start(c, kind, -1, err);
    if (op == NULL)
        return PST_ESTATE;
    op->counters = counters;
    for (uint32_t s = 0; s < c->cfg.n_servers; s++) {
        if (only >= 0 && s != (uint32_t)only) {
            op->replied[s] = 1;
            op->n_waiting--;
            continue;
        }
        Pst__Header h = pst_psclient_request_header(NULL, kind, 0);
        h.model_id = model_id;
        int rc = pst_psclient_send_to(c, s, op, &h, NULL, err);
        if (rc != PST_OK)
            return rc;
    }
    return pst_psclient_wait(c, op->seq, err);
}

/* ---- public requests ---- */

int pst_psclient_init_on_servers(pst_psclient_t *self, int tensor, const float *values,
                                 uint64_t *clock, pst_err_t *err)
{
    if (tensor < 0 || (size_t)tensor >= self->n_tensors || self->tensors[tensor].dropped)
        return pst_err_set(err, PST_EINVAL, "client: no tensor handle %d", tensor);
    const pst_psclient_tensor_t *t = &self->tensors[tensor];
    if (t->sparse != (values == NULL))
        return pst_err_set(
            err, PST_EINVAL, "client: INIT of tensor %u/%u: %s", t->model_id, t->tensor_id,
            t->sparse ? "sparse rows start from init_scale" : "dense values required");
    pst_psclient_op_t *op = pst_psclient_op_start(self, PST__OP__OP_INIT, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        Pst__Header h = pst_psclient_request_header(t, PST__OP__OP_INIT, 0);
        h.init_scale = t->init_scale;
        h.seed = t->seed;
        if (!t->sparse) {
            h.total_size = t->n;
            h.offset = t->off[s];
            h.count = t->len[s];
        }
        /* The values outlive the send: this call waits for the answers and the release. */
        pst_wire_payload_t out = {0};
        if (!t->sparse)
            pst_psclient_op_lend(op, &out, values + t->off[s]);
        int rc = pst_psclient_send_to(self, s, op, &h, &out, err);
        if (rc != PST_OK)
            return rc;
    }
    int rc = pst_psclient_wait(self, op->seq, err);
    /* A spent ticket's slot keeps its fields until the next request starts. */
    if (rc == PST_OK && clock != NULL)
        *clock = op->clock;
    return rc;
}

int pst_psclient_push(pst_psclient_t *self, int tensor, const float *grad, uint64_t clock, float lr,
                      pst_ticket_t *ticket, pst_err_t *err)
{
    pst_psclient_tensor_t *t = pst_psclient_get_tensor(self, tensor, false, err);
    if (t == NULL)
        return PST_EINVAL;
    pst_psclient_op_t *op = pst_psclient_op_start(self, PST__OP__OP_PUSH, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        Pst__Header h = pst_psclient_request_header(t, PST__OP__OP_PUSH, clock);
        h.offset = t->off[s];
        h.count = t->len[s];
        h.codec = (Pst__Codec)self->cfg.push_codec;
        h.lr = lr;
        /* Lent to ZeroMQ for the ticket: see pst_psclient_push. */
        pst_wire_payload_t out = {0};
        pst_psclient_op_lend(op, &out, grad + t->off[s]);
        out.residual = t->residual ? t->residual + t->off[s] : NULL;
        int rc = pst_psclient_send_to(self, s, op, &h, &out, err);
        if (rc != PST_OK)
            return rc;
    }
    *ticket = op->seq;
    return PST_OK;
}

int pst_psclient_pull(pst_psclient_t *self, int tensor, float *dst, uint64_t clock,
                      pst_ticket_t *ticket, pst_err_t *err)
{
    pst_psclient_tensor_t *t = pst_psclient_get_tensor(self, tensor, false, err);
    if (t == NULL)
        return PST_EINVAL;
    pst_psclient_op_t *op = pst_psclient_op_start(self, PST__OP__OP_PULL, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    op->dst = dst;
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        Pst__Header h = pst_psclient_request_header(t, PST__OP__OP_PULL, clock);
        h.offset = t->off[s];
        h.count = t->len[s];
        h.codec = (Pst__Codec)self->cfg.pull_codec;
        int rc = pst_psclient_send_to(self, s, op, &h, NULL, err);
        if (rc != PST_OK)
            return rc;
    }
    *ticket = op->seq;
    return PST_OK;
}

int pst_psclient_drop(pst_psclient_t *self, uint32_t model_id, pst_err_t *err)
{
    for (int i = 0; i < PST_PSCLIENT_MAX_OPS; i++) {
        const pst_psclient_op_t *op = &self->ops[i];
        if (op->active && op->tensor >= 0 && self->tensors[op->tensor].model_id == model_id &&
            !self->tensors[op->tensor].dropped)
            return pst_err_set(err, PST_ESTATE,
                               "client: model %u still has requests outstanding; wait on them "
                               "before dropping it",
                               model_id);
    }
    int rc = round_trip(self, PST__OP__OP_DROP, model_id, -1, NULL, err);
    for (size_t i = 0; i < self->n_tensors; i++) {
        pst_psclient_tensor_t *t = &self->tensors[i];
        if (!t->dropped && t->model_id == model_id) {
            tensor_free(t, self->cfg.n_servers);
            t->dropped = true;
        }
    }
    return rc;
}

int pst_psclient_barrier(pst_psclient_t *self, pst_err_t *err)
{
    return round_trip(self, PST__OP__OP_BARRIER, 0, -1, NULL, err);
}

int pst_psclient_checkpoint(pst_psclient_t *self, pst_err_t *err)
{
    return round_trip(self, PST__OP__OP_CHECKPOINT, 0, -1, NULL, err);
}

int pst_psclient_shutdown(pst_psclient_t *self, pst_err_t *err)
{
    pst_psclient_stop_heartbeats(self);
    return round_trip(self, PST__OP__OP_SHUTDOWN, 0, -1, NULL, err);
}

int pst_psclient_server_stats(pst_psclient_t *self, uint32_t server,
                              uint64_t counters[PST_STAT_COUNT], pst_err_t *err)
{
    if (server >= self->cfg.n_servers)
        return pst_err_set(err, PST_EINVAL, "client: no server %u", server);
    return round_trip(self, PST__OP__OP_STATS, 0, (int)server, counters, err);
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
    out->push_wait_ms = self->push_wait_ms;
    out->pull_wait_ms = self->pull_wait_ms;
    out->stale_pushes = self->stale;
    out->errors = self->errors;
}

size_t pst_psclient_codec_choices(const pst_psclient_t *self, pst_psclient_codec_choice_t *out,
                                  size_t cap)
{
    size_t total = 0;
    for (uint32_t s = 0; s < self->cfg.n_servers; s++) {
        size_t n = pst_wire_auto_choices(self->wires[s], NULL, 0);
        for (size_t i = 0; i < n && total + i < cap; i++) {
            out[total + i].server = s;
            pst_wire_auto_choices_at(self->wires[s], i, &out[total + i].choice);
        }
        total += n;
    }
    return total;
}
