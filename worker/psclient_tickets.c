/* Tickets: the requests in flight, servers' replies matched to them by sequence number and
 * absorbed, and waiting on them. */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "common/log.h"
#include "worker/psclient_internal.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- requests in flight ---- */

pst_psclient_op_t *pst_psclient_op_start(pst_psclient_t *c, Pst__Op kind, int tensor,
                                         pst_err_t *err)
{
    uint64_t seq = ++c->next_seq;
    pst_psclient_op_t *op = &c->ops[seq % PST_PSCLIENT_MAX_OPS];
    if (op->active) {
        pst_err_set(err, PST_ESTATE, "client: %d requests outstanding; wait on some first",
                    PST_PSCLIENT_MAX_OPS);
        return NULL;
    }
    if (atomic_load_explicit(&op->lent, memory_order_acquire) > 0) {
        /* Only after a failed request: its buffer is still queued for a server that never
         * answered. */
        pst_err_set(err, PST_ESTATE,
                    "client: the buffer of failed request %llu is still held by ZeroMQ",
                    (unsigned long long)op->seq);
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
    op->sums = NULL;
    op->sums_cap = op->sums_got = 0;
    op->late = false;
    memset(op->replied, 0, c->cfg.n_servers);
    memset(op->n_sent, 0, c->cfg.n_servers * sizeof(uint64_t));
    op->n_waiting = c->cfg.n_servers;
    op->unasked = false;
    op->clock = UINT64_MAX;
    op->rc = PST_OK;
    op->error[0] = '\0';
    op->start_ns = now_ns();
    return op;
}

void pst_psclient_op_release(pst_psclient_op_t *op)
{
    op->active = false;
}

void pst_psclient_op_unasked(pst_psclient_op_t *op, uint32_t s)
{
    op->unasked = true;
    op->replied[s] = 1;
    if (--op->n_waiting == 0) {
        op->done = true;
        op->end_ns = now_ns();
    }
}

/* Called by ZeroMQ, possibly on its I/O thread, once it no longer reads a lent frame. */
static void lent_release(void *data, void *hint)
{
    (void)data;
    pst_psclient_op_t *op = hint;
    atomic_fetch_sub_explicit(&op->lent, 1, memory_order_release);
}

void pst_psclient_op_lend(pst_psclient_op_t *op, pst_wire_payload_t *out, const float *values)
{
    atomic_fetch_add_explicit(&op->lent, 1, memory_order_relaxed);
    out->values = values;
    out->lend = true;
    out->release = lent_release;
    out->hint = op;
}

/* ---- replies ---- */

void pst_psclient_op_fail(pst_psclient_op_t *op, int code, uint32_t s, const char *fmt, ...)
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

static void absorb_dense_pull(pst_psclient_t *c, uint32_t s, pst_psclient_op_t *op,
                              const pst_wire_msg_t *msg)
{
    const pst_psclient_tensor_t *t = &c->tensors[op->tensor];
    const Pst__Header *h = msg->hdr;
    if (h->sparse || h->offset != t->off[s] || h->count != t->len[s]) {
        pst_psclient_op_fail(op, PST_EPROTO, s, "reply for [%llu, +%llu), asked [%llu, +%llu)",
                             (unsigned long long)h->offset, (unsigned long long)h->count,
                             (unsigned long long)t->off[s], (unsigned long long)t->len[s]);
        return;
    }
    pst_err_t err = {0};
    if (pst_wire_decode(c->wires[s], msg, op->dst + t->off[s], &err) != PST_OK)
        pst_psclient_op_fail(op, PST_EPROTO, s, "%s", err.msg);
}

static void copy_counters(uint64_t *out, const Pst__Header *h)
{
    for (size_t i = 0; i < PST_STAT_COUNT; i++)
        out[i] = i < h->n_counters ? h->counters[i] : 0;
}

/* The clock the servers went on to without this worker (declared dead while away): the least
 * told since the last pst_psclient_take_stale_clock. */
static void note_servers_clock(pst_psclient_t *c, uint64_t clock)
{
    if (c->stale_clock == 0 || clock < c->stale_clock)
        c->stale_clock = clock;
}

/* A reduction's result: the doubles of the blob (copied: a frame need not be aligned). Flagged
 * stale without any, it is gone: the servers went on, and its clock is the one to rejoin at. */
static void absorb_sums(pst_psclient_t *c, pst_psclient_op_t *op, uint32_t s,
                        const pst_wire_msg_t *msg)
{
    size_t n = msg->blob_len / sizeof(double);
    if (msg->blob_len % sizeof(double) != 0 || n > op->sums_cap) {
        pst_psclient_op_fail(op, PST_EPROTO, s, "reduction result of %zu bytes, room for %zu",
                             msg->blob_len, op->sums_cap * sizeof(double));
        return;
    }
    memcpy(op->sums, msg->blob, msg->blob_len);
    op->sums_got = n;
    op->late = (msg->hdr->flags & PST_WIRE_FLAG_STALE) != 0;
    if (op->late && n == 0)
        note_servers_clock(c, msg->hdr->clock);
}

/* A stale push's acknowledgement carries the clock the server is at: a worker that was away
 * (declared dead) carries on from there. */
static void note_stale(pst_psclient_t *c, const Pst__Header *h)
{
    c->stale++;
    note_servers_clock(c, h->clock);
}

static void absorb(pst_psclient_t *c, uint32_t s, pst_psclient_op_t *op, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    if (h->op == PST__OP__OP_ERROR) {
        /* Whatever went wrong, the server may not hold the key lists this worker last sent
         * (an unknown signature, a restart): the next request sends it in full. */
        for (int i = 0;
             op->tensor >= 0 && c->tensors[op->tensor].sent != NULL && i < PST_WIRE_KEY_LISTS; i++)
            c->tensors[op->tensor].sent[(size_t)s * PST_WIRE_KEY_LISTS + i].valid = false;
        int code = -(int)h->flags;
        pst_psclient_op_fail(op, code < 0 && code >= PST_ENUMERIC ? code : PST_EPROTO, s, "%s",
                             h->error);
        return;
    }
    if (h->op != expected_reply(op->kind)) {
        pst_psclient_op_fail(op, PST_EPROTO, s, "answered %s with %s", pst_wire_op_name(op->kind),
                             pst_wire_op_name(h->op));
        return;
    }
    if (op->kind == PST__OP__OP_PULL && op->keys == NULL)
        absorb_dense_pull(c, s, op, msg);
    else if (op->kind == PST__OP__OP_PULL)
        pst_psclient_absorb_sparse_pull(c, s, op, msg);
    else if (op->kind == PST__OP__OP_PUSH && (h->flags & PST_WIRE_FLAG_STALE))
        note_stale(c, h);
    else if (op->kind == PST__OP__OP_BARRIER && op->sums != NULL)
        absorb_sums(c, op, s, msg);
    else if (op->kind == PST__OP__OP_INIT && h->clock < op->clock)
        op->clock = h->clock;
    else if (op->kind == PST__OP__OP_STATS && op->counters != NULL)
        copy_counters(op->counters, h);
}

/* An answer to an unacknowledged push: a stale drop is counted; a refusal fails the push's ticket
 * while it is open, else it is kept for the next wait (the first one kept wins). */
static void on_unasked_reply(pst_psclient_t *c, uint32_t s, pst_psclient_op_t *op,
                             const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    if (h->op == PST__OP__OP_ACK && (h->flags & PST_WIRE_FLAG_STALE)) {
        note_stale(c, h); /* the only word a worker that was away gets of the servers' clock */
        return;
    }
    if (h->op != PST__OP__OP_ERROR)
        return;
    if (op->active) {
        absorb(c, s, op, msg);
        return;
    }
    if (c->deferred_rc != PST_OK)
        return;
    int code = -(int)h->flags;
    c->deferred_rc = code < 0 && code >= PST_ENUMERIC ? code : PST_EPROTO;
    snprintf(c->deferred_error, sizeof c->deferred_error, "push %llu, server %u: %s",
             (unsigned long long)h->seq, s, h->error);
}

static void on_reply(pst_psclient_t *c, uint32_t s, const pst_wire_msg_t *msg)
{
    pst_psclient_op_t *op = &c->ops[msg->hdr->seq % PST_PSCLIENT_MAX_OPS];
    if (op->seq == msg->hdr->seq && op->unasked) {
        on_unasked_reply(c, s, op, msg);
        return;
    }
    if (!op->active || op->seq != msg->hdr->seq || op->replied[s]) {
        if (msg->hdr->op == PST__OP__OP_ACK && (msg->hdr->flags & PST_WIRE_FLAG_STALE))
            note_stale(c, msg->hdr); /* its request is gone, but the clock it tells still holds */
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

/* Hands coalesced requests to ZeroMQ: before any wait, since what is awaited (an answer, the
 * release of lent values) may depend on them. */
static int flush_all(pst_psclient_t *c, pst_err_t *err)
{
    for (uint32_t s = 0; s < c->cfg.n_servers; s++) {
        int rc = pst_wire_flush(c->wires[s], c->socks[s], err);
        if (rc != PST_OK)
            return pst_err_prefix(err, rc, "client: server %u: ", s);
    }
    return PST_OK;
}

int pst_psclient_flush(pst_psclient_t *self, pst_err_t *err)
{
    return flush_all(self, err);
}

/* Reads server s's replies: the first with first_flags (0: blocking up to the socket's receive
 * timeout), the rest while they are waiting. */
static int read_replies(pst_psclient_t *c, uint32_t s, int first_flags, pst_err_t *err)
{
    for (int flags = first_flags;; flags = ZMQ_DONTWAIT) {
        pst_wire_msg_t msg;
        pst_err_t why = {0};
        int rc = pst_wire_recv(c->wires[s], c->socks[s], &msg, flags, &why);
        if (rc == PST_ETIMEOUT)
            return PST_OK;
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

/* Receives whatever arrives within timeout_ms and matches it to requests. With one server a
 * blocking receive waits (one wait in the kernel); with several, zmq_poll watches them all. */
static int pump(pst_psclient_t *c, int timeout_ms, pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    int flushed = flush_all(c, err);
    if (flushed != PST_OK)
        return flushed;
    if (S == 1) {
        zmq_setsockopt(c->socks[0], ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
        return read_replies(c, 0, 0, err);
    }
    int n = zmq_poll(c->items, (int)S, timeout_ms);
    if (n < 0)
        return errno == EINTR ? PST_OK
                              : pst_err_set(err, PST_EIO, "client: poll: %s", zmq_strerror(errno));
    for (uint32_t s = 0; n > 0 && s < S; s++) {
        if (!(c->items[s].revents & ZMQ_POLLIN))
            continue;
        int rc = read_replies(c, s, ZMQ_DONTWAIT, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

/* ---- waiting ---- */

static pst_psclient_op_t *find_op(pst_psclient_t *c, pst_ticket_t ticket, pst_err_t *err)
{
    pst_psclient_op_t *op = &c->ops[ticket % PST_PSCLIENT_MAX_OPS];
    if (!op->active || op->seq != ticket) {
        pst_err_set(err, PST_EINVAL, "client: ticket %llu is unknown or spent",
                    (unsigned long long)ticket);
        return NULL;
    }
    return op;
}

/* Waits until ZeroMQ released every lent frame of op. Every server answered, so each frame was
 * read in full: this is the short moment between ZeroMQ's last write and its release, which its
 * I/O thread makes on its next turn. That thread often shares this core (ranks bound to one
 * core each), so the wait yields the core to it first: a sleep, however short, lasts a timer
 * tick and its slack (50-250 us measured), longer than the step's own exchange. Naps follow only
 * if the release is late after YIELD_NS. */
#define YIELD_NS 2000000
static int wait_released(const pst_psclient_op_t *op, int64_t deadline)
{
    int64_t nap_after = now_ns() + YIELD_NS;
    while (atomic_load_explicit(&op->lent, memory_order_acquire) > 0) {
        int64_t now = now_ns();
        if (now >= deadline)
            return PST_ETIMEOUT;
        if (now < nap_after)
            sched_yield();
        else
            nanosleep(&(struct timespec){0, 20000}, NULL);
    }
    return PST_OK;
}

/* Polls wait at most this long, so that time this process spent stopped is noticed. */
#define POLL_SLICE_MS 200
#define STOPPED_NS 1000000000LL

/* Pumps until op is done and its lent frames released, or timeout_ms passed (PST_ETIMEOUT, op
 * still open). */
static int pump_until_done(pst_psclient_t *c, pst_psclient_op_t *op, int timeout_ms, pst_err_t *err)
{
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    /* A request already settled (an unacknowledged push ZeroMQ let go of) leaves the coalesced
     * requests open: they wait for the next request that needs them sent. */
    bool settled = op->done && atomic_load_explicit(&op->lent, memory_order_acquire) == 0;
    int flushed = settled ? PST_OK : flush_all(c, err);
    if (flushed != PST_OK)
        return flushed;
    while (!op->done) {
        int64_t before = now_ns(), left_ms = (deadline - before) / 1000000;
        if (left_ms <= 0 && before >= deadline)
            return PST_ETIMEOUT;
        int wait_ms = left_ms > 0 ? (int)(left_ms < POLL_SLICE_MS ? left_ms : POLL_SLICE_MS) : 1;
        int rc = pump(c, wait_ms, err);
        if (rc != PST_OK)
            return rc;
        /* A poll that returned much later than it could have: this process was not running
         * (stopped, SIGSTOP then SIGCONT); that time is not the servers' silence. */
        int64_t overslept = now_ns() - before - (int64_t)wait_ms * 1000000;
        if (overslept > (int64_t)STOPPED_NS)
            deadline += overslept;
    }
    return wait_released(op, deadline);
}

/* pump_until_done, adding the time the caller was blocked to the op kind's wait sum: the part
 * of a request's latency that the caller's own work did not hide. */
static int op_wait(pst_psclient_t *c, pst_psclient_op_t *op, int timeout_ms, pst_err_t *err)
{
    int64_t t0 = now_ns();
    int rc = pump_until_done(c, op, timeout_ms, err);
    double ms = (double)(now_ns() - t0) / 1e6;
    if (op->kind == PST__OP__OP_PUSH)
        c->push_wait_ms += ms;
    else if (op->kind == PST__OP__OP_PULL)
        c->pull_wait_ms += ms;
    return rc;
}

static void timeout_error(pst_psclient_t *c, const pst_psclient_op_t *op, int timeout_ms,
                          pst_err_t *err)
{
    char who[256] = "";
    size_t at = 0;
    for (uint32_t s = 0; s < c->cfg.n_servers && at < sizeof who; s++) {
        if (!op->replied[s])
            at += (size_t)snprintf(who + at, sizeof who - at, "%sserver %u (%s)", at ? ", " : "", s,
                                   c->endpoints[s]);
    }
    pst_err_set(err, PST_ETIMEOUT, "client: %s: no reply from %s within %d ms",
                pst_wire_op_name(op->kind), who, timeout_ms);
}

/* Accounts a finished request, releases it and returns its outcome. */
static int op_finish(pst_psclient_t *c, pst_psclient_op_t *op, pst_err_t *err)
{
    double ms = (double)(op->end_ns - op->start_ns) / 1e6;
    int rc = op->rc;
    if (rc == PST_OK && c->deferred_rc != PST_OK) {
        c->errors++;
        rc = pst_err_set(err, c->deferred_rc, "client: %s", c->deferred_error);
        c->deferred_rc = PST_OK;
        pst_psclient_op_release(op);
        return rc;
    }
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
    pst_psclient_op_release(op);
    return rc;
}

int pst_psclient_test(pst_psclient_t *self, pst_ticket_t ticket, int timeout_ms, pst_err_t *err)
{
    pst_psclient_op_t *op = find_op(self, ticket, err);
    if (op == NULL)
        return PST_EINVAL;
    int rc = op_wait(self, op, timeout_ms, err);
    if (rc == PST_ETIMEOUT)
        return pst_err_set(err, rc, "client: %s still waiting", pst_wire_op_name(op->kind));
    return rc == PST_OK ? op_finish(self, op, err) : rc;
}

int pst_psclient_wait(pst_psclient_t *self, pst_ticket_t ticket, pst_err_t *err)
{
    return pst_psclient_wait_for(self, ticket, self->cfg.timeout_ms, err);
}

int pst_psclient_wait_for(pst_psclient_t *self, pst_ticket_t ticket, int timeout_ms, pst_err_t *err)
{
    pst_psclient_op_t *op = find_op(self, ticket, err);
    if (op == NULL)
        return PST_EINVAL;
    int rc = op_wait(self, op, timeout_ms, err);
    if (rc == PST_OK)
        return op_finish(self, op, err);
    if (rc == PST_ETIMEOUT)
        timeout_error(self, op, timeout_ms, err);
    self->errors++;
    pst_psclient_op_release(op);
    return rc;
}
