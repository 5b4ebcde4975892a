/* Reductions among the workers through server 0, and the clocks of dropped workers: a worker
 * declared dead is left out of the sums instead of holding every other worker at an MPI
 * collective, and a worker that comes back after a reduction completed gets its result, or, when
 * that one is forgotten, the clock to rejoin at. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ps/server_internal.h"

/* Reductions remembered: the open ones and the latest completed, whose results a worker that was
 * away may still ask for. */
#define SLOTS 16

typedef struct slot {
    bool used, open;
    uint64_t clock, index, age;
    uint32_t n;
    double *sums;               /* (n) */
    uint8_t *contributed;       /* (n_workers) */
    pst_server_route_t *routes; /* (n_workers) where each contributor waits */
    uint64_t *seqs;             /* (n_workers) */
} slot_t;

struct pst_server_reductions {
    slot_t slots[SLOTS];
    uint64_t next_age;
    bool forgot_any; /* a completed reduction was evicted: older tags are unknown now */
    uint64_t forgot_clock, forgot_index; /* the newest evicted tag */
};

static bool tag_le(uint64_t c1, uint64_t i1, uint64_t c2, uint64_t i2)
{
    return c1 < c2 || (c1 == c2 && i1 <= i2);
}

static void slot_fini(slot_t *s)
{
    free(s->sums);
    free(s->contributed);
    free(s->routes);
    free(s->seqs);
    memset(s, 0, sizeof *s);
}

void pst_server_reductions_free(pst_server_t *srv)
{
    if (srv->reductions == NULL)
        return;
    for (int i = 0; i < SLOTS; i++)
        slot_fini(&srv->reductions->slots[i]);
    free(srv->reductions);
    srv->reductions = NULL;
}

/* The slot of a reduction, or NULL. */
static slot_t *find(struct pst_server_reductions *r, uint64_t clock, uint64_t index)
{
    for (int i = 0; i < SLOTS; i++) {
        slot_t *s = &r->slots[i];
        if (s->used && s->clock == clock && s->index == index)
            return s;
    }
    return NULL;
}

/* A free slot, else the oldest completed one (its tag remembered as forgotten); NULL when all are
 * open. */
static slot_t *take(struct pst_server_reductions *r)
{
    slot_t *oldest = NULL;
    for (int i = 0; i < SLOTS; i++) {
        slot_t *s = &r->slots[i];
        if (!s->used)
            return s;
        if (!s->open && (oldest == NULL || s->age < oldest->age))
            oldest = s;
    }
    if (oldest != NULL) {
        if (!r->forgot_any ||
            tag_le(r->forgot_clock, r->forgot_index, oldest->clock, oldest->index)) {
            r->forgot_clock = oldest->clock;
            r->forgot_index = oldest->index;
        }
        r->forgot_any = true;
        slot_fini(oldest);
    }
    return oldest;
}

static int slot_open(slot_t *s, uint32_t n_workers, uint64_t clock, uint64_t index, uint32_t n)
{
    s->sums = calloc(n ? n : 1, sizeof *s->sums);
    s->contributed = calloc(n_workers, 1);
    s->routes = calloc(n_workers, sizeof *s->routes);
    s->seqs = calloc(n_workers, sizeof *s->seqs);
    if (!s->sums || !s->contributed || !s->routes || !s->seqs) {
        slot_fini(s);
        return PST_ENOMEM;
    }
    s->used = s->open = true;
    s->clock = clock;
    s->index = index;
    s->n = n;
    return PST_OK;
}

/* The reply blob: the sums, then every worker's contribution and drops. Caller frees. */
static double *result_blob(const pst_server_t *srv, const slot_t *s, size_t *n_doubles)
{
    uint32_t W = srv->cfg.n_workers;
    size_t n = (size_t)s->n + (size_t)W * PST_REDUCE_WORKER_FIELDS;
    double *out = calloc(n, sizeof *out);
    if (out == NULL)
        return NULL;
    memcpy(out, s->sums, s->n * sizeof *out);
    for (uint32_t w = 0; w < W; w++) {
        const pst_server_worker_t *wk = &srv->workers[w];
        double *f = out + s->n + (size_t)w * PST_REDUCE_WORKER_FIELDS;
        f[PST_REDUCE_CONTRIBUTED] = s->contributed[w];
        f[PST_REDUCE_N_DROPS] = wk->n_drops;
        uint32_t kept = wk->n_drops < PST_REDUCE_MAX_DROPS ? wk->n_drops : PST_REDUCE_MAX_DROPS;
        for (uint32_t d = 0; d < kept; d++) {
            f[PST_REDUCE_DROPS + 2 * d] = (double)wk->dropped_at[d];
            f[PST_REDUCE_DROPS + 2 * d + 1] =
                wk->rejoined_at[d] == UINT64_MAX ? -1.0 : (double)wk->rejoined_at[d];
        }
    }
    *n_doubles = n;
    return out;
}

static void send_result(pst_server_t *srv, const slot_t *s, const uint8_t *route, size_t route_len,
                        uint32_t w, uint64_t seq, bool late)
{
    size_t n = 0;
    double *blob = result_blob(srv, s, &n);
    if (blob == NULL) {
        pst_error("server %u: out of memory for a reduction's result", srv->cfg.server_index);
        return;
    }
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_BARRIER;
    h.sender = w;
    h.seq = seq;
    h.clock = s->clock;
    h.offset = s->index;
    h.count = s->n;
    h.flags = late ? PST_WIRE_FLAG_STALE : 0;
    pst_wire_payload_t p = {0};
    p.blob = (const uint8_t *)blob;
    p.blob_len = n * sizeof *blob;
    pst_server_send_reply(srv, route, route_len, &h, &p);
    free(blob);
}

static uint64_t worker_clock(const pst_server_t *srv, uint32_t w);

/* The answer to a reduction forgotten long ago, asked for by a worker that was away: no sums, but
 * the clock it goes on from (flagged stale, like a stale push's acknowledgement), past that
 * reduction; its own epoch's reduction there is the one to join. */
static void send_skip(pst_server_t *srv, const pst_wire_msg_t *msg, uint32_t w, uint64_t clock)
{
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_BARRIER;
    h.sender = w;
    h.seq = msg->hdr->seq;
    h.clock = clock;
    h.offset = msg->hdr->offset;
    h.count = 0;
    h.flags = PST_WIRE_FLAG_STALE;
    pst_wire_payload_t p = {0};
    pst_server_send_reply(srv, msg->route, msg->route_len, &h, &p);
}

static void try_complete(pst_server_t *srv, slot_t *s)
{
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (!s->contributed[w] && pst_server_worker_live(&srv->workers[w]))
            return;
    }
    s->open = false;
    s->age = ++srv->reductions->next_age;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (s->contributed[w])
            send_result(srv, s, s->routes[w].id, s->routes[w].len, w, s->seqs[w], false);
    }
}

void pst_server_reduce_progress(pst_server_t *srv)
{
    for (int i = 0; srv->reductions != NULL && i < SLOTS; i++) {
        slot_t *s = &srv->reductions->slots[i];
        if (s->used && s->open)
            try_complete(srv, s);
    }
}

void pst_server_on_reduce(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    uint32_t w = h->sender;
    if (h->count > PST_REDUCE_MAX_VALUES || msg->blob_len != h->count * sizeof(double)) {
        pst_server_reply_error(srv, msg, PST_EPROTO,
                               "reduction of %llu values with a blob of %zu bytes",
                               (unsigned long long)h->count, msg->blob_len);
        return;
    }
    if (srv->reductions == NULL && !(srv->reductions = calloc(1, sizeof *srv->reductions))) {
        pst_server_reply_error(srv, msg, PST_ENOMEM, "out of memory for a reduction");
        return;
    }
    struct pst_server_reductions *r = srv->reductions;
    slot_t *s = find(r, h->clock, h->offset);
    if (s != NULL && !s->open) { /* completed while this worker was away */
        send_result(srv, s, msg->route, msg->route_len, w, h->seq, true);
        return;
    }
    if (s == NULL && r->forgot_any &&
        tag_le(h->clock, h->offset, r->forgot_clock, r->forgot_index)) {
        uint64_t now = worker_clock(srv, w);
        if (now > h->clock) { /* a worker back from its absence: the servers went on */
            send_skip(srv, msg, w, now);
            return;
        }
        pst_server_reply_error(srv, msg, PST_ESTATE,
                               "the reduction at clock %llu (#%llu) ended too long ago",
                               (unsigned long long)h->clock, (unsigned long long)h->offset);
        return;
    }
    if (s == NULL && ((s = take(r)) == NULL ||
                      slot_open(s, srv->cfg.n_workers, h->clock, h->offset, (uint32_t)h->count))) {
        pst_server_reply_error(srv, msg, PST_ENOMEM, "no room for another reduction");
        return;
    }
    if (s->n != h->count || s->contributed[w]) {
        pst_server_reply_error(srv, msg, PST_ESTATE,
                               s->contributed[w] ? "second values for the reduction at clock %llu"
                                                 : "reduction at clock %llu: %llu values, others "
                                                   "sent %u",
                               (unsigned long long)h->clock, (unsigned long long)h->count, s->n);
        return;
    }
    for (uint32_t i = 0; i < s->n; i++) { /* a frame need not be aligned for doubles */
        double v;
        memcpy(&v, msg->blob + (size_t)i * sizeof v, sizeof v);
        s->sums[i] += v;
    }
    s->contributed[w] = 1;
    memcpy(s->routes[w].id, msg->route, msg->route_len);
    s->routes[w].len = msg->route_len;
    s->seqs[w] = h->seq;
    try_complete(srv, s);
}

/* The first clock worker w has not pushed on every slice: where it stopped, or where it must
 * start again (the open clock, or the one after when it already pushed that). */
static uint64_t worker_clock(const pst_server_t *srv, uint32_t w)
{
    uint64_t least = UINT64_MAX;
    for (size_t i = 0; i < pst_shard_count(srv->shard); i++) {
        const pst_slice_t *sl = pst_shard_slice(srv->shard, i);
        const pst_server_tensor_t *t = &srv->tensors[i];
        uint64_t c = sl->clock + (t->contributed[w] ? 1 : 0);
        least = c < least ? c : least;
    }
    return least == UINT64_MAX ? 0 : least;
}

void pst_server_note_drop(pst_server_t *srv, uint32_t w)
{
    pst_server_worker_t *wk = &srv->workers[w];
    uint32_t d = wk->n_drops % PST_REDUCE_MAX_DROPS;
    /* the oldest drops give way: the latest are the ones a report names */
    if (wk->n_drops >= PST_REDUCE_MAX_DROPS) {
        memmove(wk->dropped_at, wk->dropped_at + 1,
                (PST_REDUCE_MAX_DROPS - 1) * sizeof *wk->dropped_at);
        memmove(wk->rejoined_at, wk->rejoined_at + 1,
                (PST_REDUCE_MAX_DROPS - 1) * sizeof *wk->rejoined_at);
        d = PST_REDUCE_MAX_DROPS - 1;
    }
    wk->dropped_at[d] = worker_clock(srv, w);
    wk->rejoined_at[d] = UINT64_MAX;
    wk->n_drops++;
}

void pst_server_note_rejoin(pst_server_t *srv, uint32_t w)
{
    pst_server_worker_t *wk = &srv->workers[w];
    if (wk->n_drops == 0)
        return;
    uint32_t d = (wk->n_drops < PST_REDUCE_MAX_DROPS ? wk->n_drops : PST_REDUCE_MAX_DROPS) - 1;
    wk->rejoined_at[d] = worker_clock(srv, w);
}

uint32_t pst_server_workers_missing(const pst_server_t *self)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < self->cfg.n_workers; w++)
        n += !self->workers[w].done && !self->workers[w].alive;
    return n;
}
