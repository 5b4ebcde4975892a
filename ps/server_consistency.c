/* Consistency clocks: BSP steps, SSP/ASP clock advance, queued pulls, barriers, dead workers and
 * the periodic checkpoints that follow completed clocks. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ps/checkpoint.h"
#include "ps/server_internal.h"

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

/* ---- per-tensor state ---- */

int pst_server_new_tensor_state(pst_server_t *srv, size_t idx, uint64_t clock)
{
    if (idx >= srv->tensors_cap) {
        size_t cap = srv->tensors_cap ? 2 * srv->tensors_cap : 8;
        pst_server_tensor_t *grown = realloc(srv->tensors, cap * sizeof *grown);
        if (grown == NULL)
            return PST_ENOMEM;
        memset(grown + srv->tensors_cap, 0, (cap - srv->tensors_cap) * sizeof *grown);
        srv->tensors = grown;
        srv->tensors_cap = cap;
    }
    pst_server_tensor_t *t = &srv->tensors[idx];
    uint32_t n = srv->cfg.n_workers;
    t->participant = calloc(n, 1);
    t->contributed = calloc(n, 1);
    t->pushed = malloc(n * sizeof(uint64_t));
    t->keylists = calloc((size_t)n * PST_WIRE_KEY_LISTS, sizeof *t->keylists);
    t->keylist_newest = calloc(n, 1);
    t->n_keylists = t->keylists != NULL ? n : 0;
    if (t->participant == NULL || t->contributed == NULL || t->pushed == NULL ||
        t->keylists == NULL || t->keylist_newest == NULL) {
        pst_server_tensor_fini(t);
        return PST_ENOMEM;
    }
    for (uint32_t w = 0; w < n; w++)
        t->pushed[w] = clock;
    t->ckpt_mark = clock;
    return PST_OK;
}

void pst_server_tensor_fini(pst_server_tensor_t *t)
{
    free(t->participant);
    free(t->pushed);
    free(t->contributed);
    for (size_t i = 0; t->keylists != NULL && i < (size_t)t->n_keylists * PST_WIRE_KEY_LISTS; i++) {
        pst_keycodec_list_fini(&t->keylists[i].keys);
        free(t->keylists[i].rows);
    }
    free(t->keylists);
    free(t->keylist_newest);
    for (size_t i = 0; i < t->pending_cap; i++)
        free(t->pending[i].keys);
    free(t->pending);
    memset(t, 0, sizeof *t);
}

/* ---- checkpoints ---- */

static void write_checkpoint(pst_server_t *srv, uint64_t clock)
{
    pst_err_t err = {0};
    if (pst_checkpoint_write_kept(srv->ckpt_dir, srv->shard, clock, srv->cfg.keep_checkpoints,
                                  &err) != PST_OK) {
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

bool pst_server_pull_ready(const pst_server_t *srv, size_t idx, uint64_t clock)
{
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    const pst_server_tensor_t *t = &srv->tensors[idx];
    switch (srv->cfg.consistency) {
    case PST_CONSISTENCY_BSP:
        return s->clock >= clock;
    case PST_CONSISTENCY_SSP:
        if (clock <= srv->cfg.staleness)
            return true;
        for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
            if (t->participant[w] && pst_server_worker_live(&srv->workers[w]) &&
                t->pushed[w] < clock - srv->cfg.staleness)
                return false;
        }
        return true;
    default:
        return true;
    }
}

int pst_server_queue_pull(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg)
{
    pst_server_tensor_t *t = &srv->tensors[idx];
    if (t->n_pending == t->pending_cap) {
        size_t cap = t->pending_cap ? 2 * t->pending_cap : 8;
        pst_server_pending_t *grown = realloc(t->pending, cap * sizeof *grown);
        if (grown == NULL)
            return PST_ENOMEM;
        memset(grown + t->pending_cap, 0, (cap - t->pending_cap) * sizeof *grown);
        t->pending = grown;
        t->pending_cap = cap;
    }
    pst_server_pending_t *p = &t->pending[t->n_pending];
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
    p->list = srv->msg_list;
    p->list_signature = p->list != NULL ? p->list->keys.signature : 0;
    t->n_pending++;
    return PST_OK;
}

Pst__Header pst_server_pending_request(const pst_server_t *srv, size_t idx,
                                       const pst_server_pending_t *p)
{
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    Pst__Header req = PST__HEADER__INIT;
    req.model_id = s->model_id;
    req.tensor_id = s->tensor_id;
    req.sender = p->sender;
    req.seq = p->seq;
    req.clock = p->clock;
    req.offset = p->offset;
    req.count = p->count;
    req.codec = p->codec;
    return req;
}

static void serve_pending(pst_server_t *srv, size_t idx)
{
    pst_server_tensor_t *t = &srv->tensors[idx];
    for (size_t i = 0; i < t->n_pending;) {
        pst_server_pending_t *p = &t->pending[i];
        if (!pst_server_pull_ready(srv, idx, p->clock)) {
            i++;
            continue;
        }
        Pst__Header req = pst_server_pending_request(srv, idx, p);
        pst_err_t err = {0};
        /* The list the keys came from, if it still holds them, knows or learns their rows. */
        pst_server_keylist_t *list = p->list;
        if (list != NULL && (!list->keys.valid || list->keys.signature != p->list_signature ||
                             list->keys.n != p->count))
            list = NULL;
        if (pst_server_reply_pull(srv, idx, p->route.id, p->route.len, &req, p->keys, list, &err) !=
            PST_OK)
            pst_error("server %u: queued pull: %s", srv->cfg.server_index, err.msg);
        /* Swap the last entry in (its key buffer travels with it). */
        pst_server_pending_t done = *p;
        *p = t->pending[--t->n_pending];
        t->pending[t->n_pending] = done;
    }
}

/* ---- clocks ---- */

bool pst_server_bsp_admit(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    if (h->clock < s->clock) {
        srv->counters[PST_STAT_STALE_PUSHES]++;
        pst_debug("server %u: stale push for clock %llu from worker %u dropped",
                  srv->cfg.server_index, (unsigned long long)h->clock, h->sender);
        pst_server_reply_ack(srv, msg, s->clock, PST_WIRE_FLAG_STALE);
        return false;
    }
    if (h->clock > s->clock) {
        pst_server_reply_error(srv, msg, PST_ESTATE,
                               "push of tensor %u/%u for clock %llu while clock %llu "
                               "is open",
                               h->model_id, h->tensor_id, (unsigned long long)h->clock,
                               (unsigned long long)s->clock);
        return false;
    }
    if (srv->tensors[idx].contributed[h->sender]) {
        pst_server_reply_error(srv, msg, PST_ESTATE, "second push of tensor %u/%u for clock %llu",
                               h->model_id, h->tensor_id, (unsigned long long)h->clock);
        return false;
    }
    return true;
}

/* BSP: once every live participant pushed the open clock, one averaged step. */
static void bsp_try_complete(pst_server_t *srv, size_t idx)
{
    pst_server_tensor_t *t = &srv->tensors[idx];
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    if (t->n_contributed == 0)
        return;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (t->participant[w] && pst_server_worker_live(&srv->workers[w]) && !t->contributed[w])
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
    pst_server_tensor_t *t = &srv->tensors[idx];
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    uint64_t slowest = UINT64_MAX;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        if (t->participant[w] && pst_server_worker_live(&srv->workers[w]) && t->pushed[w] < slowest)
            slowest = t->pushed[w];
    }
    serve_pending(srv, idx);
    if (slowest != UINT64_MAX && slowest > s->clock) {
        s->clock = slowest;
        maybe_checkpoint(srv, idx);
    }
}

void pst_server_progress(pst_server_t *srv, size_t idx)
{
    if (srv->cfg.consistency == PST_CONSISTENCY_BSP)
        bsp_try_complete(srv, idx);
    else
        async_advance(srv, idx);
}

/* ---- barrier and dead workers ---- */

void pst_server_check_barrier(pst_server_t *srv)
{
    bool any = false;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        const pst_server_worker_t *wk = &srv->workers[w];
        if (wk->at_barrier)
            any = true;
        else if (pst_server_worker_live(wk))
            return;
    }
    if (!any)
        return;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        pst_server_worker_t *wk = &srv->workers[w];
        if (!wk->at_barrier)
            continue;
        Pst__Header h = PST__HEADER__INIT;
        h.op = PST__OP__OP_BARRIER;
        h.sender = w;
        h.seq = wk->barrier_seq;
        pst_server_send_reply(srv, wk->barrier_route.id, wk->barrier_route.len, &h, NULL);
        wk->at_barrier = false;
    }
}

void pst_server_recheck_all(pst_server_t *srv)
{
    for (size_t i = 0; i < pst_shard_count(srv->shard); i++)
        pst_server_progress(srv, i);
    pst_server_check_barrier(srv);
    pst_server_reduce_progress(srv);
}

void pst_server_check_heartbeats(pst_server_t *srv, int64_t now)
{
    bool changed = false;
    for (uint32_t w = 0; w < srv->cfg.n_workers; w++) {
        pst_server_worker_t *wk = &srv->workers[w];
        int64_t silent = now - wk->last_seen_ms;
        if (!pst_server_worker_live(wk) || silent <= srv->cfg.heartbeat_timeout_ms)
            continue;
        wk->alive = false;
        changed = true;
        srv->counters[PST_STAT_DEAD_WORKERS]++;
        pst_server_note_drop(srv, w);
        pst_warn(
            "server %u: worker %u silent for %lld ms: declared dead; the others go on from "
            "clock %llu without it",
            srv->cfg.server_index, w, (long long)silent,
            (unsigned long long)wk->dropped_at
                [(wk->n_drops < PST_REDUCE_MAX_DROPS ? wk->n_drops : PST_REDUCE_MAX_DROPS) - 1]);
    }
    if (changed)
        pst_server_recheck_all(srv);
}
