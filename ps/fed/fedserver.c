/* Federated server: the socket loop, the site protocol (register, heartbeat, update), starting
 * and closing rounds, and the final weights. */
#include "ps/fed/fedserver.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/fed/fedauth.h"
#include "common/log.h"
#include "common/net/wire.h"
#include "ps/fed/fedserver_internal.h"
#include "ps/fed/fedtrust.h"

#define POLL_MS 50
#define BATCH 64               /* messages handled between two looks at the round */
#define CLOSE_LINGER_MS 2000   /* last words to sites that did not ack DONE (see feddone.c) */
#define ZMTP_HEARTBEAT_MS 2000 /* connection-level pings, so dead TCP peers are noticed */
#define LOG_BAD 10             /* malformed messages logged one by one; then one in 100 */

/* ---- lifecycle ---- */

static int check_cfg(const pst_fedserver_cfg_t *cfg, pst_err_t *err)
{
    if (cfg->endpoint == NULL || cfg->contract == NULL || cfg->contract_len == 0)
        return pst_err_set(err, PST_EINVAL, "fed server: needs an endpoint and a model contract");
    if (!pst_codec_known((int)cfg->down_codec) || pst_codec_lossy(cfg->down_codec))
        return pst_err_set(err, PST_EINVAL,
                           "fed server: global weights travel losslessly (raw, lz4, lz4shuffle), "
                           "not %s",
                           pst_codec_name(cfg->down_codec));
    if (cfg->key != NULL && (cfg->allowed == NULL || cfg->allowed->n == 0))
        return pst_err_set(err, PST_EINVAL, "fed server: CURVE needs a list of allowed site keys");
    if (!(cfg->heartbeat_timeout > 0) || !(cfg->start_timeout >= 0))
        return pst_err_set(err, PST_EINVAL, "fed server: heartbeat and start timeouts");
    return PST_OK;
}

static int open_socket(pst_fedserver_t *srv, char *actual, size_t actual_len, pst_err_t *err)
{
    srv->own_ctx = srv->cfg.zmq_ctx == NULL;
    srv->ctx = srv->own_ctx ? zmq_ctx_new() : srv->cfg.zmq_ctx;
    if (srv->ctx == NULL)
        return pst_err_set(err, PST_EIO, "fed server: ZeroMQ context: %s", zmq_strerror(errno));
    if (srv->cfg.key != NULL) {
        srv->auth = pst_fedauth_start(srv->ctx, srv->cfg.allowed, err);
        if (srv->auth == NULL)
            return pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "fed server: ");
    }
    srv->sock = zmq_socket(srv->ctx, ZMQ_ROUTER);
    if (srv->sock == NULL)
        return pst_err_set(err, PST_EIO, "fed server: ROUTER socket: %s", zmq_strerror(errno));
    int one = 1, unlimited = 0, ping = ZMTP_HEARTBEAT_MS, ping_timeout = 3 * ZMTP_HEARTBEAT_MS;
    /* Sending to a site whose connection is gone fails at once instead of vanishing. */
    zmq_setsockopt(srv->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(srv->sock, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    zmq_setsockopt(srv->sock, ZMQ_HEARTBEAT_IVL, &ping, sizeof ping);
    zmq_setsockopt(srv->sock, ZMQ_HEARTBEAT_TIMEOUT, &ping_timeout, sizeof ping_timeout);
    int rc = pst_wire_prepare_socket(srv->wire, srv->sock, err);
    if (rc == PST_OK && srv->cfg.key != NULL)
        rc = pst_fedauth_server_socket(srv->sock, srv->cfg.key, err);
    if (rc != PST_OK)
        return rc;
    if (zmq_bind(srv->sock, srv->cfg.endpoint) != 0)
        return pst_err_set(err, PST_EIO, "fed server: bind %s: %s", srv->cfg.endpoint,
                           zmq_strerror(errno));
    if (actual != NULL)
        return pst_wire_last_endpoint(srv->sock, actual, actual_len, err);
    return PST_OK;
}

pst_fedserver_t *pst_fedserver_new(const pst_fedserver_cfg_t *cfg, pst_fedcoord_t *coord,
                                   char *actual, size_t actual_len, pst_err_t *err)
{
    if (check_cfg(cfg, err) != PST_OK)
        return NULL;
    pst_fedserver_t *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        pst_err_set(err, PST_ENOMEM, "fed server: out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    srv->coord = coord;
    srv->n = pst_fedcoord_n_params(coord);
    atomic_init(&srv->stop, 0);
    srv->contract = malloc(cfg->contract_len);
    srv->scratch = malloc(srv->n * sizeof *srv->scratch);
    /* An update is n floats; nothing larger is ever accepted from a site. */
    srv->wire = pst_wire_new(PST_WIRE_ROUTER, 4 * (uint64_t)srv->n + 65536, err);
    int rc = PST_OK;
    srv->trust = pst_fedtrust_new(cfg->key != NULL ? cfg->allowed : NULL,
                                  cfg->max_sites > 0 ? cfg->max_sites : INT_MAX, err);
    if (srv->contract == NULL || srv->scratch == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "fed server: out of memory");
    else if (srv->trust == NULL)
        rc = PST_ENOMEM;
    else if (srv->wire == NULL)
        rc = PST_ENOMEM;
    else
        rc = open_socket(srv, actual, actual_len, err);
    if (rc != PST_OK) {
        pst_fedserver_destroy(&srv);
        return NULL;
    }
    memcpy(srv->contract, cfg->contract, cfg->contract_len);
    srv->cfg.contract = srv->contract;
    return srv;
}

void pst_fedserver_destroy(pst_fedserver_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_fedserver_t *srv = *self_p;
    if (srv->sock != NULL) {
        int linger = CLOSE_LINGER_MS;
        zmq_setsockopt(srv->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(srv->sock);
    }
    pst_fedauth_stop(&srv->auth);
    if (srv->own_ctx && srv->ctx != NULL)
        zmq_ctx_term(srv->ctx);
    pst_wire_destroy(&srv->wire);
    free(srv->contract);
    pst_fedtrust_destroy(&srv->trust);
    free(srv->links);
    free(srv->scratch);
    free(srv);
    *self_p = NULL;
}

void pst_fedserver_stop(pst_fedserver_t *self)
{
    atomic_store(&self->stop, 1);
}

void pst_fedserver_stats(const pst_fedserver_t *self, pst_fedserver_stats_t *out)
{
    *out = self->stats;
    pst_wire_stats_t ws;
    pst_wire_stats(self->wire, &ws);
    out->bad_frames = ws.bad_frames;
    if (self->auth != NULL) {
        out->auth_admitted = pst_fedauth_admitted(self->auth);
        out->auth_refused = pst_fedauth_refused(self->auth);
    }
}

pst_fedtrust_t *pst_fedserver_trust(pst_fedserver_t *self)
{
    return self->trust;
}

void pst_fedserver_expect_sites(pst_fedserver_t *self, int n_sites)
{
    self->cfg.expected_sites = n_sites;
}

/* ---- sending ---- */

site_link_t *pst_fedserver_link(pst_fedserver_t *srv, int index)
{
    if (index >= srv->links_cap) {
        int cap = srv->links_cap ? srv->links_cap : 16;
        while (cap <= index)
            cap *= 2;
        site_link_t *links = realloc(srv->links, (size_t)cap * sizeof *links);
        if (links == NULL)
            return NULL;
        memset(links + srv->links_cap, 0, (size_t)(cap - srv->links_cap) * sizeof *links);
        srv->links = links;
        srv->links_cap = cap;
    }
    return &srv->links[index];
}

const char *pst_fedserver_site_name(pst_fedserver_t *srv, int index)
{
    return pst_fedround_site(pst_fedcoord_sites(srv->coord), index);
}

static double wire_bytes_sent(const pst_fedserver_t *srv)
{
    pst_wire_stats_t ws;
    pst_wire_stats(srv->wire, &ws);
    return (double)ws.bytes_wire_sent;
}

/* Sends to a route; a route whose connection is gone (ROUTER_MANDATORY) counts as unreachable
 * and sets *gone. */
static int send_route(pst_fedserver_t *srv, const uint8_t *route, size_t route_len, Pst__Header *h,
                      const pst_wire_payload_t *payload, bool *gone, pst_err_t *err)
{
    int rc = pst_wire_send(srv->wire, srv->sock, route, route_len, h, payload, err);
    bool unreachable = rc != PST_OK && errno == EHOSTUNREACH;
    srv->stats.unreachable += unreachable;
    if (gone != NULL)
        *gone = unreachable;
    return rc;
}

int pst_fedserver_send_site(pst_fedserver_t *srv, int index, Pst__Header *h,
                            const pst_wire_payload_t *payload, pst_err_t *err)
{
    site_link_t *l = pst_fedserver_link(srv, index);
    if (l == NULL || l->route_len == 0)
        return pst_err_set(err, PST_EIO, "no connection to %s",
                           pst_fedserver_site_name(srv, index));
    bool gone = false;
    int rc = send_route(srv, l->route, l->route_len, h, payload, &gone, err);
    if (gone)
        l->route_len = 0;
    return rc;
}

Pst__Header pst_fedserver_header(int op, const char *site)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = (Pst__Op)op;
    h.site = (char *)(site ? site : "");
    return h;
}

static void reply_ack(pst_fedserver_t *srv, const pst_wire_msg_t *msg, uint32_t flags)
{
    Pst__Header h = pst_fedserver_header(PST__OP__OP_ACK, msg->hdr->site);
    h.seq = msg->hdr->seq;
    h.clock = pst_fedcoord_round(srv->coord);
    h.flags = flags;
    send_route(srv, msg->route, msg->route_len, &h, NULL, NULL, NULL);
}

static void reply_error(pst_fedserver_t *srv, const pst_wire_msg_t *msg, int code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
static void reply_error(pst_fedserver_t *srv, const pst_wire_msg_t *msg, int code, const char *fmt,
                        ...)
{
    char text[PST_WIRE_MAX_ERROR_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pst_warn("fed server: %s (%s from '%.64s')", text, pst_wire_op_name(msg->hdr->op),
             msg->hdr->site);
    Pst__Header h = pst_fedserver_header(PST__OP__OP_ERROR, msg->hdr->site);
    h.seq = msg->hdr->seq;
    h.error = text;
    h.flags = (uint32_t)(-code);
    send_route(srv, msg->route, msg->route_len, &h, NULL, NULL, NULL);
}

/* The open round's task for a site: the global weights. */
static int send_task(pst_fedserver_t *srv, int index, pst_err_t *err)
{
    uint64_t round = pst_fedcoord_round(srv->coord);
    const char *site = pst_fedserver_site_name(srv, index);
    Pst__Header h = pst_fedserver_header(PST__OP__OP_FED_TASK, site);
    h.clock = round;
    h.seed = pst_fedcoord_task_seed(srv->cfg.seed, round, site);
    h.count = srv->n;
    h.codec = (Pst__Codec)srv->cfg.down_codec;
    pst_wire_payload_t p = {.values = pst_fedcoord_global(srv->coord)};
    double before = wire_bytes_sent(srv);
    int rc = pst_fedserver_send_site(srv, index, &h, &p, err);
    if (rc == PST_OK) {
        srv->traffic.down_raw += 4.0 * (double)srv->n;
        srv->traffic.down_wire += wire_bytes_sent(srv) - before;
    }
    return rc;
}

/* ---- requests from sites ---- */

/* Records the connection a site's message came over; a site the round waits for that arrives
 * over a new connection (it reconnected) is sent its task again, since the first may be lost. */
static void site_seen(pst_fedserver_t *srv, int index, const pst_wire_msg_t *msg, double now)
{
    site_link_t *l = pst_fedserver_link(srv, index);
    if (l == NULL || msg->route_len > sizeof l->route)
        return;
    bool moved = l->route_len != msg->route_len || memcmp(l->route, msg->route, msg->route_len);
    memcpy(l->route, msg->route, msg->route_len);
    l->route_len = msg->route_len;
    l->last_seen = now;
    if (msg->hdr->op == PST__OP__OP_HEARTBEAT || msg->hdr->op == PST__OP__OP_FED_UPDATE)
        l->ready = true;
    if (moved && l->told && !l->acked) /* the DONE may have been lost with the old connection */
        pst_fedserver_done_again(srv, index);
    if (l->ready)
        pst_fedround_seen(pst_fedcoord_sites(srv->coord), index);
    if (moved && srv->round_open &&
        pst_fedround_waiting_for(pst_fedcoord_sites(srv->coord), index) &&
        msg->hdr->op != PST__OP__OP_FED_UPDATE) {
        pst_err_t err = {0};
        if (send_task(srv, index, &err) == PST_OK)
            pst_info("fed server: %s reconnected; its round %llu task sent again",
                     pst_fedserver_site_name(srv, index),
                     (unsigned long long)pst_fedcoord_round(srv->coord));
    }
}

/* With CURVE every message must come through the ZAP handler, and a key may only speak as the
 * site it is bound to (by the allowed list, or by its first registration). *peer: the ZAP User-Id
 * (NULL without CURVE). False after dropping or refusing the message. */
static bool identity_allowed(pst_fedserver_t *srv, pst_wire_msg_t *msg, const char **peer)
{
    *peer = NULL;
    if (srv->auth == NULL)
        return true;
    /* The header frame: a ROUTER's routing-id frame does not always carry the peer's metadata. */
    *peer = pst_fedauth_peer_site(&msg->frames[1]);
    if (*peer == NULL) { /* not admitted through ZAP at all: no answer */
        srv->stats.impostors++;
        return false;
    }
    pst_err_t err = {0};
    bool registering = msg->hdr->op == PST__OP__OP_FED_REGISTER;
    if (pst_fedtrust_admit(srv->trust, *peer, msg->hdr->site, registering, &err) == PST_OK)
        return true;
    srv->stats.impostors++;
    if (registering)
        srv->stats.refused_registrations++;
    reply_error(srv, msg, PST_EINVAL, "%s", err.msg);
    return false;
}

static void on_register(pst_fedserver_t *srv, pst_wire_msg_t *msg, const char *peer, double now)
{
    pst_fedround_t *sites = pst_fedcoord_sites(srv->coord);
    bool known = pst_fedround_find(sites, msg->hdr->site) >= 0;
    pst_err_t err = {0};
    int index = pst_fedtrust_may_register(srv->trust, pst_fedround_n_sites(sites), known, &err);
    if (index == PST_OK)
        index = pst_fedround_register(sites, msg->hdr->site, &err);
    /* the rows a site registers with (0: none declared) bound every later claim of it */
    if (index >= 0 && (pst_fedtrust_bind(srv->trust, peer, msg->hdr->site, &err) != PST_OK ||
                       pst_fedtrust_set_rows(srv->trust, index, msg->hdr->samples, &err) != PST_OK))
        index = PST_EINVAL;
    if (index < 0 || pst_fedserver_link(srv, index) == NULL) {
        srv->stats.refused_registrations++;
        reply_error(srv, msg, index < 0 ? index : PST_ENOMEM, "registration refused: %s", err.msg);
        return;
    }
    known ? srv->stats.rejoins++ : srv->stats.registrations++;
    pst_info("fed server: %s %s (%d registered)", msg->hdr->site, known ? "rejoined" : "joined",
             pst_fedround_n_sites(sites));
    Pst__Header h = pst_fedserver_header(PST__OP__OP_FED_WELCOME, msg->hdr->site);
    h.seq = msg->hdr->seq;
    h.count = srv->n;
    h.clock = pst_fedcoord_round(srv->coord);
    h.codec = (Pst__Codec)srv->cfg.up_codec;
    pst_wire_payload_t p = {.blob = srv->contract, .blob_len = srv->cfg.contract_len};
    site_link_t *l = pst_fedserver_link(srv, index);
    l->route_len = 0; /* a (re)registration always gets its task again below if one is due */
    /* Not asked until it says it is ready: setting up from the contract may take a while. */
    l->ready = false;
    pst_fedround_hold(sites, index);
    if (send_route(srv, msg->route, msg->route_len, &h, &p, NULL, &err) != PST_OK)
        return;
    site_seen(srv, index, msg, now);
}

static void on_heartbeat(pst_fedserver_t *srv, pst_wire_msg_t *msg, double now)
{
    int index = pst_fedround_find(pst_fedcoord_sites(srv->coord), msg->hdr->site);
    if (index < 0) {
        reply_error(srv, msg, PST_ENOTFOUND, "site '%.64s' is not registered", msg->hdr->site);
        return;
    }
    site_seen(srv, index, msg, now);
    reply_ack(srv, msg, 0);
}

/* The round stops waiting for a site that answered without a usable update. */
static void drop_from_round(pst_fedserver_t *srv, int index, uint64_t round)
{
    if (srv->round_open && round == pst_fedcoord_round(srv->coord))
        pst_fedcoord_drop(srv->coord, index);
}

static void on_update(pst_fedserver_t *srv, pst_wire_msg_t *msg, double wire_bytes, double now)
{
    const Pst__Header *h = msg->hdr;
    int index = pst_fedround_find(pst_fedcoord_sites(srv->coord), h->site);
    if (index < 0) {
        reply_error(srv, msg, PST_ENOTFOUND, "site '%.64s' is not registered", h->site);
        return;
    }
    site_seen(srv, index, msg, now);
    if (h->flags & PST_WIRE_FLAG_DECLINED) {
        srv->stats.declined++;
        pst_warn("fed server: %s declined round %llu: %.200s", h->site,
                 (unsigned long long)h->clock, h->error);
        drop_from_round(srv, index, h->clock);
        reply_ack(srv, msg, 0);
        return;
    }
    pst_err_t err = {0};
    int rc = h->count == srv->n && msg->n_values == srv->n
                 ? pst_wire_decode(srv->wire, msg, srv->scratch, &err)
                 : pst_err_set(&err, PST_EPROTO, "%llu values for a model of %zu",
                               (unsigned long long)h->count, srv->n);
    if (rc == PST_OK && !(h->samples > 0))
        rc = pst_err_set(&err, PST_EPROTO, "an update must come from at least one row");
    if (rc != PST_OK) {
        srv->stats.bad_updates++;
        drop_from_round(srv, index, h->clock);
        reply_error(srv, msg, rc, "update for round %llu dropped: %s", (unsigned long long)h->clock,
                    err.msg);
        return;
    }
    bool lowered = false;
    double rows = pst_fedtrust_claim(srv->trust, index, (double)h->samples, &lowered);
    if (lowered) {
        srv->stats.lowered_claims++;
        pst_warn("fed server: %s claims %llu rows for round %llu; it counts for the %.0f it "
                 "registered with",
                 h->site, (unsigned long long)h->samples, (unsigned long long)h->clock, rows);
    }
    pst_fedround_verdict_t v =
        pst_fedcoord_offer(srv->coord, index, h->clock, srv->scratch, rows, h->loss, now);
    if (v == PST_FEDROUND_ACCEPTED) {
        srv->traffic.up_raw += 4.0 * (double)srv->n;
        srv->traffic.up_wire += wire_bytes;
    } else {
        pst_info("fed server: update of %s for round %llu dropped: %s", h->site,
                 (unsigned long long)h->clock, pst_fedround_verdict_name(v));
    }
    reply_ack(srv, msg, v == PST_FEDROUND_ACCEPTED ? 0 : PST_WIRE_FLAG_STALE);
}

static void handle(pst_fedserver_t *srv, pst_wire_msg_t *msg, double wire_bytes, double now)
{
    const char *peer = NULL;
    if (!identity_allowed(srv, msg, &peer))
        return;
    switch (msg->hdr->op) {
    case PST__OP__OP_FED_REGISTER:
        on_register(srv, msg, peer, now);
        break;
    case PST__OP__OP_HEARTBEAT:
        on_heartbeat(srv, msg, now);
        break;
    case PST__OP__OP_FED_UPDATE:
        on_update(srv, msg, wire_bytes, now);
        break;
    case PST__OP__OP_ACK: /* a site has its DONE */
        pst_fedserver_on_done_ack(srv, msg);
        break;
    default:
        reply_error(srv, msg, PST_EPROTO, "%s is not a request of the federated protocol",
                    pst_wire_op_name(msg->hdr->op));
    }
}

/* Receives and handles what is waiting, at most BATCH messages, as if at now (< 0: the clock's
 * time when each arrives). */
int pst_fedserver_drain(pst_fedserver_t *srv, double now)
{
    for (int i = 0; i < BATCH; i++) {
        pst_wire_msg_t msg;
        pst_err_t err = {0};
        pst_wire_stats_t before, after;
        pst_wire_stats(srv->wire, &before);
        int rc = pst_wire_recv(srv->wire, srv->sock, &msg, ZMQ_DONTWAIT, &err);
        if (rc == PST_ETIMEOUT)
            return PST_OK;
        if (rc == PST_EPROTO) {
            uint64_t bad = before.bad_frames + 1;
            if (bad <= LOG_BAD || bad % 100 == 0)
                pst_warn("fed server: malformed message dropped (%llu so far): %s",
                         (unsigned long long)bad, err.msg);
            continue;
        }
        if (rc != PST_OK)
            return rc;
        pst_wire_stats(srv->wire, &after);
        handle(srv, &msg, (double)(after.bytes_wire_received - before.bytes_wire_received),
               now < 0 ? pst_clock_seconds() : now);
        pst_wire_msg_close(&msg);
    }
    return PST_OK;
}

/* ---- rounds ---- */

/* The first round this server starts (round 1, or the first after a restart) waits for the
 * expected sites (or the start timeout); later rounds start at once. */
static bool ready_to_start(pst_fedserver_t *srv, double now)
{
    if (srv->started_any)
        return true;
    int ready = 0;
    for (int i = 0; i < pst_fedround_n_sites(pst_fedcoord_sites(srv->coord)); i++) {
        const site_link_t *l = pst_fedserver_link(srv, i);
        ready += l != NULL && l->ready;
    }
    return ready >= srv->cfg.expected_sites || now - srv->run_started >= srv->cfg.start_timeout;
}

static int start_round(pst_fedserver_t *srv, double now, pst_err_t *err)
{
    if (!ready_to_start(srv, now))
        return PST_OK;
    const int *asked;
    int k;
    pst_err_t why = {0};
    int rc = pst_fedcoord_begin(srv->coord, now, &asked, &k, &why);
    if (rc == PST_ENOTFOUND) {
        if (!srv->waiting_logged)
            pst_info("fed server: waiting for sites: %s", why.msg);
        srv->waiting_logged = true;
        return PST_OK;
    }
    if (rc == PST_ESTATE && pst_fedcoord_finished(srv->coord)) {
        if (pst_fedcoord_budget_stopped(srv->coord))
            pst_info("fed server: stopping: %s", why.msg);
        return PST_OK;
    }
    if (rc != PST_OK) {
        if (err != NULL)
            *err = why;
        return rc;
    }
    srv->waiting_logged = false;
    srv->started_any = true;
    srv->round_open = true;
    srv->round_started = now;
    memset(&srv->traffic, 0, sizeof srv->traffic);
    pst_debug("fed server: round %llu asks %d sites",
              (unsigned long long)pst_fedcoord_round(srv->coord), k);
    for (int i = 0; i < k; i++) {
        pst_err_t send_err = {0};
        if (send_task(srv, asked[i], &send_err) != PST_OK) {
            pst_warn("fed server: round %llu: %s left out: %s",
                     (unsigned long long)pst_fedcoord_round(srv->coord),
                     pst_fedserver_site_name(srv, asked[i]), send_err.msg);
            pst_fedcoord_drop(srv->coord, asked[i]);
        }
    }
    return PST_OK;
}

/* Asked sites silent for longer than the heartbeat timeout no longer hold the round. */
static void drop_silent(pst_fedserver_t *srv, double now)
{
    pst_fedround_t *sites = pst_fedcoord_sites(srv->coord);
    for (int i = 0; i < pst_fedround_n_sites(sites); i++) {
        if (!pst_fedround_waiting_for(sites, i))
            continue;
        site_link_t *l = pst_fedserver_link(srv, i);
        if (l == NULL || now - l->last_seen <= srv->cfg.heartbeat_timeout)
            continue;
        srv->stats.heartbeat_drops++;
        pst_warn("fed server: round %llu goes on without %s (silent for %.1f s)",
                 (unsigned long long)pst_fedcoord_round(srv->coord),
                 pst_fedserver_site_name(srv, i), now - l->last_seen);
        pst_fedcoord_drop(srv->coord, i);
    }
}

static int end_round(pst_fedserver_t *srv, double now, const pst_fedserver_hooks_t *hooks,
                     pst_err_t *err)
{
    pst_fedcoord_round_t r;
    pst_err_t agg = {0};
    if (pst_fedcoord_end(srv->coord, now, &r, &agg) != PST_OK)
        pst_warn("fed server: round %llu leaves the weights unchanged: %s",
                 (unsigned long long)r.round, agg.msg);
    srv->round_open = false;
    if (hooks == NULL || hooks->on_round == NULL)
        return PST_OK;
    return hooks->on_round(hooks->ctx, &r, &srv->traffic, now - srv->round_started, err);
}

int pst_fedserver_wait_input(pst_fedserver_t *srv, double now)
{
    long ms = POLL_MS;
    double deadline;
    if (srv->round_open && pst_fedcoord_poll(srv->coord, now, &deadline) == PST_FEDROUND_OPEN &&
        isfinite(deadline)) {
        double left = (deadline - now) * 1000.0 + 1;
        ms = left < ms ? (left > 0 ? (long)left : 0) : ms;
    }
    zmq_pollitem_t item = {srv->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, ms) < 0 && errno != EINTR)
        return PST_EIO;
    return PST_OK;
}

/* One turn of the loop at now: a round started or ended when due, then (after waiting for input
 * up to a poll tick or the round's deadline, with wait) the messages waiting handled. *over:
 * nothing more to serve (the coordinator finished, or an error). */
static int turn(pst_fedserver_t *srv, const pst_fedserver_hooks_t *hooks, double now, bool wait,
                bool *over, pst_err_t *err)
{
    int rc = PST_OK;
    *over = false;
    if (!srv->round_open && !pst_fedcoord_finished(srv->coord))
        rc = start_round(srv, now, err);
    if (rc == PST_OK && srv->round_open) {
        drop_silent(srv, now);
        if (pst_fedcoord_poll(srv->coord, now, NULL) != PST_FEDROUND_OPEN) {
            rc = end_round(srv, now, hooks, err);
            if (rc == PST_OK && !pst_fedcoord_finished(srv->coord))
                return PST_OK; /* the next round starts at once */
        }
    }
    if ((*over = rc != PST_OK || (!srv->round_open && pst_fedcoord_finished(srv->coord))))
        return rc;
    if (wait && pst_fedserver_wait_input(srv, now) != PST_OK)
        rc = pst_err_set(err, PST_EIO, "fed server: poll: %s", zmq_strerror(errno));
    else
        rc = pst_fedserver_drain(srv, wait ? -1.0 : now);
    if (rc != PST_OK && err != NULL && err->msg[0] == '\0')
        pst_err_set(err, rc, "fed server: receiving: %s", zmq_strerror(errno));
    return rc;
}

int pst_fedserver_step(pst_fedserver_t *self, const pst_fedserver_hooks_t *hooks, double now,
                       pst_err_t *err)
{
    if (!self->stepping) {
        self->stepping = true;
        self->run_started = now;
    }
    bool over;
    return turn(self, hooks, now, false, &over, err);
}

int pst_fedserver_run(pst_fedserver_t *self, const pst_fedserver_hooks_t *hooks, pst_err_t *err)
{
    pst_fedserver_t *srv = self;
    srv->run_started = pst_clock_seconds();
    if (pst_fedcoord_finished(srv->coord))
        return pst_fedserver_hand_over(srv, err);
    int rc = PST_OK;
    bool over = false;
    while (rc == PST_OK && !over && !atomic_load(&srv->stop))
        rc = turn(srv, hooks, pst_clock_seconds(), true, &over, err);
    bool stopped = atomic_load(&srv->stop) && !pst_fedcoord_finished(srv->coord);
    srv->final_weights = rc == PST_OK && !stopped;
    pst_fedserver_send_done(srv, false);
    if (srv->final_weights)
        rc = pst_fedserver_await_acks(srv, err);
    if (rc == PST_OK && stopped)
        rc = pst_err_set(err, PST_ESTATE, "fed server: stopped after round %llu",
                         (unsigned long long)pst_fedcoord_round(srv->coord));
    return rc;
}
