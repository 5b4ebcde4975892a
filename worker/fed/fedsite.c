/* Federated site: connection and its monitor, the site side of the protocol, the serving loop. */
#include "worker/fed/fedsite.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/fed/fedauth.h"
#include "common/log.h"
#include "common/net/wire.h"

#define POLL_MS 100
/* Connection-level pings, so a dead server connection is noticed. */
#define ZMTP_HEARTBEAT_MS 2000
#define CLOSE_LINGER_MS 2000
#define HANDSHAKE_FAILURES_FATAL 3 /* failed handshakes in a row, with no success, that end it */

struct pst_fedsite {
    pst_fedsite_cfg_t cfg;
    char site[PST_FEDKEY_NAME_MAX + 1];
    char endpoint[512];
    pst_fedsite_hooks_t hooks;
    void *ctx, *sock, *monitor;
    bool own_ctx;
    pst_wire_t *wire;
    bool welcomed, done, ever_connected;
    int handshake_failures;
    size_t n;               /* floats of the model, from the welcome */
    int up_codec;           /* codec the server asked for */
    float *global;          /* (n) the task's weights */
    float *delta;           /* (n) */
    float *residual;        /* (n) error feedback of a lossy codec; zero at first */
    float *residual_before; /* (n) the residual before the last update was encoded */
    uint64_t last_round;    /* the last round trained (a task sent again is not trained twice) */
    double last_samples, last_loss;
    uint64_t seq;
    double last_sent, last_heard;
    pst_fedsite_stats_t stats;
    pst_err_t fatal; /* why the site stopped, when it failed */
};

/* ---- connection ---- */

static int open_monitor(pst_fedsite_t *s, pst_err_t *err)
{
    char addr[96];
    snprintf(addr, sizeof addr, "inproc://pst-fedsite-monitor-%p", (void *)s);
    int events = ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    if (zmq_socket_monitor(s->sock, addr, events) != 0)
        return pst_err_set(err, PST_EIO, "fed site: monitor: %s", zmq_strerror(errno));
    s->monitor = zmq_socket(s->ctx, ZMQ_PAIR);
    if (s->monitor == NULL || zmq_connect(s->monitor, addr) != 0)
        return pst_err_set(err, PST_EIO, "fed site: monitor socket: %s", zmq_strerror(errno));
    return PST_OK;
}

static int open_socket(pst_fedsite_t *s, pst_err_t *err)
{
    s->own_ctx = s->cfg.zmq_ctx == NULL;
    s->ctx = s->own_ctx ? zmq_ctx_new() : s->cfg.zmq_ctx;
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_DEALER) : NULL;
    if (s->sock == NULL)
        return pst_err_set(err, PST_EIO, "fed site: DEALER socket: %s", zmq_strerror(errno));
    int ping = ZMTP_HEARTBEAT_MS, ping_timeout = 3 * ZMTP_HEARTBEAT_MS, unlimited = 0;
    zmq_setsockopt(s->sock, ZMQ_HEARTBEAT_IVL, &ping, sizeof ping);
    zmq_setsockopt(s->sock, ZMQ_HEARTBEAT_TIMEOUT, &ping_timeout, sizeof ping_timeout);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    int rc = pst_wire_prepare_socket(s->wire, s->sock, err);
    if (rc == PST_OK && s->cfg.key != NULL)
        rc = pst_fedauth_client_socket(s->sock, s->cfg.key, s->cfg.server_public, err);
    if (rc == PST_OK)
        rc = open_monitor(s, err);
    if (rc != PST_OK)
        return rc;
    if (zmq_connect(s->sock, s->endpoint) != 0)
        return pst_err_set(err, PST_EINVAL, "fed site: connect %s: %s", s->endpoint,
                           zmq_strerror(errno));
    return PST_OK;
}

static Pst__Header header(pst_fedsite_t *s, int op)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = (Pst__Op)op;
    h.site = s->site;
    h.seq = ++s->seq;
    return h;
}

static int send_msg(pst_fedsite_t *s, Pst__Header *h, const pst_wire_payload_t *p, pst_err_t *err)
{
    int rc = pst_wire_send(s->wire, s->sock, NULL, 0, h, p, err);
    if (rc == PST_OK)
        s->last_sent = pst_clock_seconds();
    return rc;
}

static int send_register(pst_fedsite_t *s, pst_err_t *err)
{
    Pst__Header h = header(s, PST__OP__OP_FED_REGISTER);
    return send_msg(s, &h, NULL, err);
}

static void send_heartbeat(pst_fedsite_t *s)
{
    Pst__Header h = header(s, PST__OP__OP_HEARTBEAT);
    send_msg(s, &h, NULL, NULL);
}

pst_fedsite_t *pst_fedsite_new(const pst_fedsite_cfg_t *cfg, const pst_fedsite_hooks_t *hooks,
                               pst_err_t *err)
{
    if (cfg->site == NULL || cfg->endpoint == NULL || cfg->site[0] == '\0' ||
        strlen(cfg->site) > PST_FEDKEY_NAME_MAX || strlen(cfg->endpoint) >= 512 ||
        (cfg->key != NULL && cfg->server_public == NULL) || !(cfg->heartbeat > 0) ||
        !(cfg->server_timeout > 0) || hooks == NULL || hooks->train == NULL) {
        pst_err_set(err, PST_EINVAL,
                    "fed site: needs a site id, a server, timeouts, a trainer "
                    "(and the server's public key with a key pair)");
        return NULL;
    }
    pst_fedsite_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        pst_err_set(err, PST_ENOMEM, "fed site: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->hooks = *hooks;
    snprintf(s->site, sizeof s->site, "%s", cfg->site);
    snprintf(s->endpoint, sizeof s->endpoint, "%s", cfg->endpoint);
    s->cfg.site = s->site;
    s->cfg.endpoint = s->endpoint;
    s->wire = pst_wire_new(PST_WIRE_DEALER, 0, err);
    int rc = s->wire ? open_socket(s, err) : PST_ENOMEM;
    if (rc == PST_OK)
        rc = send_register(s, err);
    if (rc != PST_OK) {
        pst_fedsite_destroy(&s);
        return NULL;
    }
    s->last_heard = pst_clock_seconds();
    return s;
}

void pst_fedsite_destroy(pst_fedsite_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_fedsite_t *s = *self_p;
    if (s->sock != NULL) {
        zmq_socket_monitor(s->sock, NULL, 0);
        int linger = CLOSE_LINGER_MS;
        zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(s->sock);
    }
    if (s->monitor != NULL) {
        int zero = 0;
        zmq_setsockopt(s->monitor, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(s->monitor);
    }
    if (s->own_ctx && s->ctx != NULL)
        zmq_ctx_term(s->ctx);
    pst_wire_destroy(&s->wire);
    free(s->global);
    free(s->delta);
    free(s->residual);
    free(s->residual_before);
    free(s);
    *self_p = NULL;
}

const char *pst_fedsite_id(const pst_fedsite_t *site)
{
    return site->site;
}

void pst_fedsite_stats(const pst_fedsite_t *site, pst_fedsite_stats_t *out)
{
    *out = site->stats;
}

/* ---- connection events ---- */

static int fail(pst_fedsite_t *s, int code, const char *fmt, const char *arg)
{
    pst_err_set(&s->fatal, code, fmt, s->site, arg);
    return code;
}

/* One monitor event: handshake failures that will not heal end the site; a new connection after
 * a drop announces itself at once, so the server learns the route. */
static int on_event(pst_fedsite_t *s, uint16_t event, uint32_t value)
{
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        s->handshake_failures = 0;
        if (s->ever_connected) {
            s->stats.reconnects++;
            pst_info("fed site %s: reconnected to %s", s->site, s->endpoint);
            if (s->welcomed)
                send_heartbeat(s);
        }
        s->ever_connected = true;
        return PST_OK;
    case ZMQ_EVENT_DISCONNECTED:
        if (!s->done)
            pst_warn("fed site %s: connection to %s lost; reconnecting", s->site, s->endpoint);
        return PST_OK;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        return fail(s, PST_EINVAL,
                    "fed site %s: the server at %s refused this site's key (is its public key "
                    "in the server's fed.allowed_keys?)",
                    s->endpoint);
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return fail(s, PST_EINVAL,
                    "fed site %s: the server at %s speaks another security mechanism (CURVE on "
                    "one side, fed.insecure on the other?)",
                    s->endpoint);
    default: /* HANDSHAKE_FAILED_NO_DETAIL: the server hung up during the handshake */
        (void)value;
        if (++s->handshake_failures >= HANDSHAKE_FAILURES_FATAL && !s->ever_connected)
            return fail(s, PST_EINVAL,
                        "fed site %s: every handshake with %s fails (is fed.server_key the "
                        "server's public key, and does the server use CURVE?)",
                        s->endpoint);
        return PST_OK;
    }
}

static int drain_monitor(pst_fedsite_t *s)
{
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, s->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return PST_OK;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&frame) >= 6) {
            const uint8_t *d = zmq_msg_data(&frame);
            memcpy(&event, d, 2);
            memcpy(&value, d + 2, 4);
        }
        bool more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&frame);
            more = zmq_msg_recv(&frame, s->monitor, 0) >= 0 && zmq_msg_more(&frame);
            zmq_msg_close(&frame);
        }
        int rc = on_event(s, event, value);
        if (rc != PST_OK)
            return rc;
    }
}

/* ---- messages from the server ---- */

static int on_welcome(pst_fedsite_t *s, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    size_t n = (size_t)h->count;
    if (n == 0 || (s->welcomed && n != s->n))
        return fail(s, PST_EPROTO, "fed site %s: the server's model changed size%s", "");
    if (!s->welcomed) {
        s->global = malloc(n * sizeof *s->global);
        s->delta = malloc(n * sizeof *s->delta);
        s->residual = calloc(n, sizeof *s->residual);
        s->residual_before = calloc(n, sizeof *s->residual_before);
        if (!s->global || !s->delta || !s->residual || !s->residual_before)
            return fail(s, PST_ENOMEM, "fed site %s: out of memory%s", "");
    }
    s->n = n;
    s->up_codec = h->codec;
    if (s->hooks.welcome) {
        pst_err_t err = {0};
        int rc = s->hooks.welcome(s->hooks.ctx, s, msg->blob, msg->blob_len, n, &err);
        if (rc != PST_OK) {
            s->fatal = err;
            return rc;
        }
    }
    if (!s->welcomed)
        pst_info("fed site %s: registered with %s (model of %zu floats)", s->site, s->endpoint, n);
    s->welcomed = true;
    send_heartbeat(s); /* ready to train */
    return PST_OK;
}

/* Sends every due heartbeat of a run's sites; the keepalive of a training task. */
typedef struct site_group {
    pst_fedsite_t *const *sites;
    int n;
} site_group_t;

static void heartbeat_due(pst_fedsite_t *s, double now)
{
    if (s->welcomed && !s->done && now - s->last_sent >= s->cfg.heartbeat)
        send_heartbeat(s);
}

static void keepalive(void *ctx)
{
    site_group_t *g = ctx;
    double now = pst_clock_seconds();
    for (int i = 0; i < g->n; i++)
        heartbeat_due(g->sites[i], now);
}

/* Sends the update in s->delta. The residual it starts from is kept, so the very same message can
 * be sent again (see on_task). */
static int send_update(pst_fedsite_t *s, uint64_t round, double samples, double loss)
{
    memcpy(s->residual_before, s->residual, s->n * sizeof *s->residual);
    s->last_samples = samples;
    s->last_loss = loss;
    Pst__Header h = header(s, PST__OP__OP_FED_UPDATE);
    h.clock = round;
    h.count = s->n;
    h.codec = (Pst__Codec)s->up_codec;
    h.samples = (uint64_t)samples;
    h.loss = loss;
    pst_wire_payload_t p = {.values = s->delta, .residual = s->residual};
    pst_wire_stats_t before, after;
    pst_wire_stats(s->wire, &before);
    pst_err_t err = {0};
    int rc = send_msg(s, &h, &p, &err);
    if (rc != PST_OK) {
        s->fatal = err;
        return rc;
    }
    pst_wire_stats(s->wire, &after);
    s->stats.bytes_up_raw += after.bytes_raw_sent - before.bytes_raw_sent;
    s->stats.bytes_up_wire += after.bytes_wire_sent - before.bytes_wire_sent;
    return PST_OK;
}

static void send_declined(pst_fedsite_t *s, uint64_t round, const char *why)
{
    Pst__Header h = header(s, PST__OP__OP_FED_UPDATE);
    h.clock = round;
    h.flags = PST_WIRE_FLAG_DECLINED;
    h.error = (char *)why;
    send_msg(s, &h, NULL, NULL);
    s->stats.rounds_declined++;
}

static int on_task(pst_fedsite_t *s, const pst_wire_msg_t *msg, site_group_t *group)
{
    const Pst__Header *h = msg->hdr;
    if (!s->welcomed || h->count != s->n || msg->n_values != s->n)
        return fail(s, PST_EPROTO, "fed site %s: a task that does not fit the model%s", "");
    if (h->clock < s->last_round) /* an old round's task, sent again: nothing to do */
        return PST_OK;
    if (h->clock == s->last_round) {
        /* The server asks again (we reconnected): the update may have been lost on the way.
         * Send the same message again rather than train twice. */
        if (s->last_samples < 1)
            return PST_OK; /* the round was declined */
        pst_info("fed site %s: sending the round %llu update again", s->site,
                 (unsigned long long)h->clock);
        memcpy(s->residual, s->residual_before, s->n * sizeof *s->residual);
        return send_update(s, h->clock, s->last_samples, s->last_loss);
    }
    pst_err_t err = {0};
    if (pst_wire_decode(s->wire, msg, s->global, &err) != PST_OK) {
        pst_warn("fed site %s: round %llu task dropped: %s", s->site, (unsigned long long)h->clock,
                 err.msg);
        return PST_OK;
    }
    s->last_round = h->clock;
    pst_debug("fed site %s: training round %llu", s->site, (unsigned long long)h->clock);
    pst_fedsite_task_t task = {h->clock, h->seed, s->global, s->n, keepalive, group};
    double samples = 0, loss = NAN;
    int rc = s->hooks.train(s->hooks.ctx, s, &task, s->delta, &samples, &loss, &err);
    s->last_samples = 0;
    if (rc == PST_ENUMERIC || (rc == PST_OK && !(samples >= 1))) {
        pst_warn("fed site %s: declining round %llu: %s", s->site, (unsigned long long)h->clock,
                 rc == PST_OK ? "no training rows" : err.msg);
        send_declined(s, h->clock, rc == PST_OK ? "no training rows" : err.msg);
        return PST_OK;
    }
    if (rc != PST_OK) {
        s->fatal = err;
        return rc;
    }
    s->stats.rounds_trained++;
    return send_update(s, h->clock, samples, loss);
}

static int on_done(pst_fedsite_t *s, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    const float *final = NULL;
    pst_err_t err = {0};
    if (h->count > 0) {
        if (!s->welcomed || h->count != s->n)
            return fail(s, PST_EPROTO, "fed site %s: final weights that do not fit the model%s",
                        "");
        if (pst_wire_decode(s->wire, msg, s->global, &err) != PST_OK) {
            s->fatal = err;
            return PST_EPROTO;
        }
        final = s->global;
    }
    s->done = true;
    /* The server waits for this before it closes: the DONE of a large model may still have been
     * on its way. */
    Pst__Header ack = header(s, PST__OP__OP_ACK);
    ack.clock = h->clock;
    send_msg(s, &ack, NULL, NULL);
    pst_info("fed site %s: the run ended after round %llu%s", s->site, (unsigned long long)h->clock,
             final ? "" : " (stopped early, no final weights)");
    if (s->hooks.done == NULL)
        return PST_OK;
    int rc = s->hooks.done(s->hooks.ctx, s, final, s->n, h->clock, &err);
    if (rc != PST_OK)
        s->fatal = err;
    return rc;
}

static int on_error(pst_fedsite_t *s, const pst_wire_msg_t *msg)
{
    int code = -(int)msg->hdr->flags;
    if (code == PST_ENOTFOUND) { /* the server does not know us (it restarted): register again */
        pst_warn("fed site %s: the server lost this site's registration; registering again",
                 s->site);
        return send_register(s, &s->fatal);
    }
    if (!s->welcomed)
        return fail(s, PST_EINVAL, "fed site %s: registration refused: %.300s", msg->hdr->error);
    pst_warn("fed site %s: the server says: %.300s", s->site, msg->hdr->error);
    return PST_OK;
}

static int on_message(pst_fedsite_t *s, const pst_wire_msg_t *msg, site_group_t *group)
{
    s->last_heard = pst_clock_seconds();
    switch (msg->hdr->op) {
    case PST__OP__OP_FED_WELCOME:
        return on_welcome(s, msg);
    case PST__OP__OP_FED_TASK:
        return on_task(s, msg, group);
    case PST__OP__OP_FED_DONE:
        return on_done(s, msg);
    case PST__OP__OP_ERROR:
        return on_error(s, msg);
    case PST__OP__OP_ACK:
        if (msg->hdr->flags & PST_WIRE_FLAG_STALE)
            pst_info("fed site %s: the server dropped an update (the round had closed)", s->site);
        return PST_OK;
    default:
        pst_warn("fed site %s: unexpected %s from the server", s->site,
                 pst_wire_op_name(msg->hdr->op));
        return PST_OK;
    }
}

/* Handles whatever is waiting on a site's socket and monitor. */
static int service(pst_fedsite_t *s, site_group_t *group)
{
    int rc = drain_monitor(s);
    while (rc == PST_OK && !s->done) {
        pst_wire_msg_t msg;
        pst_err_t err = {0};
        pst_wire_stats_t before, after;
        pst_wire_stats(s->wire, &before);
        rc = pst_wire_recv(s->wire, s->sock, &msg, ZMQ_DONTWAIT, &err);
        if (rc == PST_ETIMEOUT)
            return PST_OK;
        if (rc == PST_EPROTO) {
            pst_warn("fed site %s: malformed message from the server dropped: %s", s->site,
                     err.msg);
            rc = PST_OK;
            continue;
        }
        if (rc != PST_OK) {
            s->fatal = err;
            return rc;
        }
        pst_wire_stats(s->wire, &after);
        s->stats.bytes_down_raw += after.bytes_raw_received - before.bytes_raw_received;
        s->stats.bytes_down_wire += after.bytes_wire_received - before.bytes_wire_received;
        rc = on_message(s, &msg, group);
        pst_wire_msg_close(&msg);
    }
    return rc;
}

static int check_silence(pst_fedsite_t *s, double now)
{
    if (s->done || now - s->last_heard <= s->cfg.server_timeout)
        return PST_OK;
    pst_err_set(&s->fatal, PST_ETIMEOUT,
                "fed site %s: nothing from the server at %s for %.0f s (fed.server_timeout)%s",
                s->site, s->endpoint, now - s->last_heard,
                s->welcomed ? "" : "; is it running, and is this site's key allowed?");
    return PST_ETIMEOUT;
}

int pst_fedsite_run(pst_fedsite_t *const *sites, int n, pst_err_t *err)
{
    site_group_t group = {sites, n};
    zmq_pollitem_t *items = calloc((size_t)(2 * n), sizeof *items);
    if (items == NULL)
        return pst_err_set(err, PST_ENOMEM, "fed site: out of memory");
    int rc = PST_OK, left = n;
    pst_fedsite_t *failed = NULL;
    while (rc == PST_OK && left > 0) {
        for (int i = 0; i < n; i++) {
            items[2 * i] = (zmq_pollitem_t){sites[i]->sock, 0, ZMQ_POLLIN, 0};
            items[2 * i + 1] = (zmq_pollitem_t){sites[i]->monitor, 0, ZMQ_POLLIN, 0};
        }
        if (zmq_poll(items, 2 * n, POLL_MS) < 0 && errno != EINTR) {
            rc = pst_err_set(err, PST_EIO, "fed site: poll: %s", zmq_strerror(errno));
            break;
        }
        double now = pst_clock_seconds();
        left = 0;
        for (int i = 0; i < n && rc == PST_OK; i++) {
            pst_fedsite_t *s = sites[i];
            if (!s->done && (items[2 * i].revents || items[2 * i + 1].revents))
                rc = service(s, &group);
            if (rc == PST_OK)
                rc = check_silence(s, pst_clock_seconds());
            heartbeat_due(s, now);
            left += !s->done;
            if (rc != PST_OK)
                failed = s;
        }
    }
    free(items);
    if (failed != NULL && err != NULL)
        *err = failed->fatal;
    return rc;
}
