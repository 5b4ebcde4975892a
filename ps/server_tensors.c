/* Tensor requests: INIT registers slices, PUSH accumulates or applies gradients, PULL answers with
 * a dense range or sparse rows (or queues until the clock is ready), DROP forgets a model. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "ps/server_internal.h"

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

/* What one value may cost the store: itself, a BSP accumulator and up to two floats of optimizer
 * state. The quota counts in these units before anything is allocated. */
#define STORE_BYTES_PER_VALUE 16

/* PST_ERANGE when growing the store by n_values more values would pass cfg.max_store_bytes. */
static int store_check(const pst_server_t *srv, uint64_t n_values, pst_err_t *err)
{
    uint64_t limit = srv->cfg.max_store_bytes, held = pst_shard_bytes(srv->shard);
    uint64_t more =
        n_values <= limit / STORE_BYTES_PER_VALUE ? n_values * STORE_BYTES_PER_VALUE : UINT64_MAX;
    if (limit == 0 || (more <= limit && held <= limit - more))
        return PST_OK;
    return pst_err_set(err, PST_ERANGE,
                       "%llu more values would pass this server's store limit of %llu MiB "
                       "(cluster.server_memory; %llu MiB held)",
                       (unsigned long long)n_values, (unsigned long long)(limit >> 20),
                       (unsigned long long)(held >> 20));
}

/* A sparse slice's keys must lie below the bound the model contract declares: a key outside it
 * would create a row the job never uses (the bound caps the rows a slice may hold). */
static int keys_in_bound(pst_server_t *srv, const pst_slice_t *s, const uint64_t *keys, size_t n,
                         pst_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] >= s->key_bound) {
            srv->counters[PST_STAT_CONTRACT]++;
            return pst_err_set(err, PST_ERANGE,
                               "tensor %u/%u: key %llu is outside the job's model contract "
                               "(keys below %llu)",
                               s->model_id, s->tensor_id, (unsigned long long)keys[i],
                               (unsigned long long)s->key_bound);
        }
    return PST_OK;
}

/* *rows = the rows of keys[0..n) in slice s, created on first touch: list's when it knows them,
 * else looked up (and kept in list, when given and there is memory). */
static int rows_of_keys(pst_server_t *srv, pst_slice_t *s, const uint64_t *keys, size_t n,
                        pst_server_keylist_t *list, const uint32_t **rows, pst_err_t *err)
{
    if (list != NULL && list->rows_known && list->keys.n == n) {
        *rows = list->rows;
        return PST_OK;
    }
    /* Rows are created on first touch: the keys may all be new. */
    int rc = s->key_bound > 0 ? keys_in_bound(srv, s, keys, n, err) : PST_OK;
    if (rc == PST_OK)
        rc = store_check(srv, (uint64_t)n * s->row_width, err);
    if (rc != PST_OK)
        return rc;
    if (list != NULL && n > list->rows_cap &&
        pst_array_resize((void **)&list->rows, n, sizeof(uint32_t)) == PST_OK)
        list->rows_cap = n;
    if (list != NULL && n > list->rows_cap)
        list = NULL;
    uint32_t *out = list != NULL ? list->rows : scratch_rows(srv, n);
    if (n > 0 && out == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %zu rows", n);
    rc = pst_slice_rows(s, keys, n, out, err);
    if (rc == PST_OK && list != NULL)
        list->rows_known = true;
    *rows = out;
    return rc;
}

/* ---- INIT ---- */

/* First INIT of a tensor: creates the slice from the message. Returns its index or -1. */
static int register_tensor(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    size_t idx = pst_shard_count(srv->shard);
    if (pst_server_new_tensor_state(srv, idx, 0) != PST_OK) {
        pst_server_reply_error(srv, msg, PST_ENOMEM, "no memory for tensor %u/%u", h->model_id,
                               h->tensor_id);
        return -1;
    }
    pst_err_t err = {0};
    const float *init = NULL;
    int rc;
    if (h->sparse)
        rc = pst_shard_add_sparse(srv->shard, h->model_id, h->tensor_id, h->row_width,
                                  h->init_scale, h->seed, &err);
    else if ((rc = store_check(srv, h->count, &err)) == PST_OK &&
             (rc = pst_wire_view(srv->wire, msg, &init, &err)) == PST_OK)
        rc = pst_shard_add_dense(srv->shard, h->model_id, h->tensor_id, h->total_size, init, &err);
    if (rc < 0) {
        pst_server_tensor_fini(&srv->tensors[idx]);
        pst_server_reply_error(srv, msg, rc, "INIT of tensor %u/%u: %s", h->model_id, h->tensor_id,
                               err.msg);
        return -1;
    }
    pst_info("server %u: tensor %u/%u registered (%s)", srv->cfg.server_index, h->model_id,
             h->tensor_id, h->sparse ? "sparse" : "dense");
    return rc;
}

/* An INIT refused for its shape: counted apart from other errors, it is a bug or a hostile peer. */
static bool refuse_shape(pst_server_t *srv, const pst_wire_msg_t *msg, const char *why)
{
    srv->counters[PST_STAT_CONTRACT]++;
    pst_server_reply_error(srv, msg, PST_EINVAL, "worker %u: %s", msg->hdr->sender, why);
    return false;
}

/* With a contract, an INIT must be for a declared tensor with its declared shape. */
static bool init_in_contract(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    pst_err_t err = {0};
    if (pst_server_contract_admit(srv, h, &err) == PST_OK)
        return true;
    return refuse_shape(srv, msg, err.msg);
}

/* An INIT must describe the tensor the way this server holds (or would hold) it. */
static bool init_matches(pst_server_t *srv, const pst_wire_msg_t *msg, int idx)
{
    const Pst__Header *h = msg->hdr;
    char why[160];
    if (!init_in_contract(srv, msg))
        return false;
    if (h->sparse) {
        if (h->count != 0) {
            pst_server_reply_error(srv, msg, PST_EINVAL, "sparse INIT carries no rows");
            return false;
        }
        if (idx >= 0 && (!pst_shard_slice(srv->shard, (size_t)idx)->sparse ||
                         pst_shard_slice(srv->shard, (size_t)idx)->row_width != h->row_width)) {
            snprintf(why, sizeof why, "tensor %u/%u is not sparse with rows of %u", h->model_id,
                     h->tensor_id, h->row_width);
            return refuse_shape(srv, msg, why);
        }
        return true;
    }
    uint64_t off, len;
    pst_wire_shard_range(h->total_size, srv->cfg.n_servers, srv->cfg.server_index, &off, &len);
    if (h->total_size == 0 || h->offset != off || h->count != len) {
        pst_server_reply_error(
            srv, msg, PST_ERANGE,
            "server %u of %u owns [%llu, %llu) of %llu elements; INIT sent [%llu, %llu)",
            srv->cfg.server_index, srv->cfg.n_servers, (unsigned long long)off,
            (unsigned long long)(off + len), (unsigned long long)h->total_size,
            (unsigned long long)h->offset, (unsigned long long)(h->offset + h->count));
        return false;
    }
    if (idx >= 0 && (pst_shard_slice(srv->shard, (size_t)idx)->sparse ||
                     pst_shard_slice(srv->shard, (size_t)idx)->total != h->total_size)) {
        snprintf(why, sizeof why, "tensor %u/%u is registered with another shape", h->model_id,
                 h->tensor_id);
        return refuse_shape(srv, msg, why);
    }
    return true;
}

void pst_server_on_init(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int idx = pst_shard_find(srv->shard, h->model_id, h->tensor_id);
    if (!init_matches(srv, msg, idx))
        return;
    if (idx < 0 && (idx = register_tensor(srv, msg)) < 0)
        return;
    if (h->sparse)
        pst_shard_slice(srv->shard, (size_t)idx)->key_bound = pst_server_contract_key_bound(srv, h);
    pst_server_tensor_t *t = &srv->tensors[idx];
    if (!t->participant[h->sender]) {
        t->participant[h->sender] = 1;
        t->n_participants++;
    }
    pst_server_reply_ack(srv, msg, pst_shard_slice(srv->shard, (size_t)idx)->clock, 0);
}

/* ---- PUSH ---- */

/* The slice a PUSH or PULL addresses, or -1 after an ERROR reply. */
static int find_slice(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int idx = pst_shard_find(srv->shard, h->model_id, h->tensor_id);
    if (idx < 0) {
        pst_server_reply_error(srv, msg, PST_ENOTFOUND,
                               "tensor %u/%u is not registered (send INIT first)", h->model_id,
                               h->tensor_id);
        return -1;
    }
    const pst_slice_t *s = pst_shard_slice(srv->shard, (size_t)idx);
    if (s->sparse != (bool)h->sparse || (s->sparse && s->row_width != h->row_width)) {
        pst_server_reply_error(srv, msg, PST_EINVAL, "tensor %u/%u is %s (rows of %u)", h->model_id,
                               h->tensor_id, s->sparse ? "sparse" : "dense", s->row_width);
        return -1;
    }
    return idx;
}

/* Adds a push's values g to the BSP accumulator. A dense first contribution is held in place (see
 * pst_slice_dense_acc_add); pst_server_on_push settles it before the message goes. */
static int accumulate(pst_server_t *srv, pst_slice_t *s, const pst_wire_msg_t *msg, const float *g,
                      pst_err_t *err)
{
    if (!s->sparse)
        return pst_slice_dense_acc_add(s, g, true, err);
    const uint32_t *rows = NULL;
    int rc = rows_of_keys(srv, s, msg->keys, msg->n_keys, srv->msg_list, &rows, err);
    return rc == PST_OK ? pst_slice_sparse_acc_add(s, rows, msg->n_keys, g, err) : rc;
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

/* Applies a push's values at once, scaled by 1 / participants (SSP, ASP). */
static int apply_now(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg, const float *view,
                     pst_err_t *err)
{
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    float scale = 1.0f / (float)srv->tensors[idx].n_participants, lr = msg->hdr->lr;
    int rc;
    const float *g = scaled(srv, view, msg->n_values, scale);
    if (msg->n_values > 0 && g == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    srv->counters[PST_STAT_UPDATES]++;
    if (!s->sparse)
        return pst_slice_dense_step(s, g, lr, err);
    const uint32_t *rows = NULL;
    rc = rows_of_keys(srv, s, msg->keys, msg->n_keys, srv->msg_list, &rows, err);
    return rc == PST_OK ? pst_slice_sparse_step(s, rows, msg->n_keys, g, lr, err) : rc;
}

/* The index of the first NaN or infinity in g[0..n), or n. */
static size_t first_nonfinite(const float *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(g[i]))
            return i;
    }
    return n;
}

/* *g = the decoded values of a push; false after an ERROR reply: a corrupt frame, or a NaN or an
 * infinity, which one step would spread to every weight it touches. Refused pushes change
 * nothing (nor the BSP clock: the worker is told and fails). */
static bool push_values(pst_server_t *srv, const pst_wire_msg_t *msg, const float **values)
{
    const Pst__Header *h = msg->hdr;
    const float *g = NULL;
    pst_err_t err = {0};
    if (pst_wire_view(srv->wire, msg, &g, &err) != PST_OK) {
        pst_server_reply_error(srv, msg, err.code, "push of tensor %u/%u: %s", h->model_id,
                               h->tensor_id, err.msg);
        return false;
    }
    size_t bad = first_nonfinite(g, msg->n_values);
    if (bad < msg->n_values) {
        srv->counters[PST_STAT_NONFINITE]++;
        pst_server_reply_error(srv, msg, PST_ENUMERIC,
                               "push of tensor %u/%u refused: value %zu of %zu is %g", h->model_id,
                               h->tensor_id, bad, msg->n_values, (double)g[bad]);
        return false;
    }
    *values = g;
    return true;
}

void pst_server_on_push(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int found = find_slice(srv, msg);
    if (found < 0)
        return;
    size_t idx = (size_t)found;
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    pst_server_tensor_t *t = &srv->tensors[idx];
    if (!t->participant[h->sender]) {
        pst_server_reply_error(srv, msg, PST_ESTATE, "worker %u pushed tensor %u/%u without INIT",
                               h->sender, h->model_id, h->tensor_id);
        return;
    }
    if (!s->sparse && (h->offset != s->offset || h->count != s->len)) {
        pst_server_reply_error(
            srv, msg, PST_ERANGE, "push of [%llu, %llu); this server owns [%llu, %llu)",
            (unsigned long long)h->offset, (unsigned long long)(h->offset + h->count),
            (unsigned long long)s->offset, (unsigned long long)(s->offset + s->len));
        return;
    }
    const float *g = NULL;
    if (!push_values(srv, msg, &g))
        return;
    bool bsp = srv->cfg.consistency == PST_CONSISTENCY_BSP;
    if (bsp && !pst_server_bsp_admit(srv, idx, msg))
        return;
    pst_err_t err = {0};
    int rc = bsp ? accumulate(srv, s, msg, g, &err) : apply_now(srv, idx, msg, g, &err);
    if (rc != PST_OK) {
        pst_server_reply_error(srv, msg, rc, "push of tensor %u/%u: %s", h->model_id, h->tensor_id,
                               err.msg);
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
    if (!(h->flags & PST_WIRE_FLAG_NO_ACK))
        pst_server_reply_ack(srv, msg, h->clock, 0);
    pst_server_progress(srv, idx);
    /* A contribution still held in the message's frame is copied before the frame goes. */
    if (bsp && !s->sparse && pst_slice_dense_acc_settle(s, &err) != PST_OK)
        pst_error("server %u: %s", srv->cfg.server_index, err.msg);
}

/* ---- keys remembered per worker ---- */

bool pst_server_resolve_keys(pst_server_t *srv, pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    srv->msg_list = NULL;
    bool keyed =
        h->sparse && h->count > 0 && (h->op == PST__OP__OP_PUSH || h->op == PST__OP__OP_PULL);
    int idx = keyed ? pst_shard_find(srv->shard, h->model_id, h->tensor_id) : -1;
    if (idx < 0 || h->sender >= srv->tensors[idx].n_keylists)
        return true;
    pst_server_tensor_t *t = &srv->tensors[idx];
    pst_server_keylist_t *lists = &t->keylists[(size_t)h->sender * PST_WIRE_KEY_LISTS];
    if (!pst_wire_keys_cached(h)) {
        /* A full list replaces the worker's older one, as on the worker's side; only lists sent
         * with a signature can be named by one later. */
        uint8_t *newest = &t->keylist_newest[h->sender];
        *newest = (uint8_t)((*newest + 1) % PST_WIRE_KEY_LISTS);
        pst_server_keylist_t *list = &lists[*newest];
        list->rows_known = false;
        if (h->key_encoding != PST_WIRE_KEYS_DELTA)
            list->keys.valid = false;
        else if (pst_keycodec_list_store(&list->keys, msg->keys, msg->n_keys, h->key_signature) !=
                 PST_OK)
            pst_warn("server %u: no memory to remember worker %u's keys", srv->cfg.server_index,
                     h->sender);
        srv->msg_list = list->keys.valid ? list : NULL;
        return true;
    }
    for (int i = 0; i < PST_WIRE_KEY_LISTS; i++) {
        pst_server_keylist_t *list = &lists[i];
        if (list->keys.valid && list->keys.signature == h->key_signature &&
            list->keys.n == h->count) {
            msg->keys = list->keys.keys;
            msg->n_keys = list->keys.n;
            srv->msg_list = list;
            return true;
        }
    }
    pst_server_reply_error(srv, msg, PST_ENOTFOUND,
                           "unknown key signature %016llx for tensor %u/%u (%llu keys)",
                           (unsigned long long)h->key_signature, h->model_id, h->tensor_id,
                           (unsigned long long)h->count);
    return false;
}

/* ---- PULL ---- */

/* Answers a pull with the slice's current values: a dense range, or the given rows. */
static void send_pull_reply(pst_server_t *srv, size_t idx, const uint8_t *route, size_t route_len,
                            const Pst__Header *req, const uint32_t *rows)
{
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    Pst__Header h = pst_server_reply_header(req, PST__OP__OP_PULL_REPLY);
    h.clock = s->clock;
    h.offset = req->offset;
    h.count = req->count;
    h.codec = req->codec;
    pst_wire_payload_t out = {0};
    if (!s->sparse) {
        /* Lent, not copied: a later update moves the slice to a fresh block if still in flight. */
        out.values = pst_slice_lend(s, &out.release, &out.hint) + (req->offset - s->offset);
        out.lend = true;
        /* The usual pull asks for the whole slice: its sum is shared by every worker's reply. */
        out.checksum_known = req->offset == s->offset && req->count == s->len;
        out.checksum = out.checksum_known ? pst_slice_checksum(s) : 0;
    } else {
        h.sparse = 1;
        h.row_width = s->row_width;
        /* Gathered straight into the frame that travels. */
        float *gathered = NULL;
        if (req->count > 0 &&
            !(gathered = pst_wire_values_frame(srv->wire, req->count * s->row_width, &out, NULL))) {
            pst_error("server %u: no memory to answer a pull", srv->cfg.server_index);
            return;
        }
        pst_slice_gather(s, rows, req->count, gathered);
    }
    srv->counters[PST_STAT_PULLS]++;
    pst_server_send_reply(srv, route, route_len, &h, &out);
}

int pst_server_reply_pull(pst_server_t *srv, size_t idx, const uint8_t *route, size_t route_len,
                          const Pst__Header *req, const uint64_t *keys, pst_server_keylist_t *list,
                          pst_err_t *err)
{
    pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    const uint32_t *rows = NULL;
    int rc = s->sparse && req->count > 0 ? rows_of_keys(srv, s, keys, req->count, list, &rows, err)
                                         : PST_OK;
    if (rc != PST_OK)
        return rc;
    send_pull_reply(srv, idx, route, route_len, req, rows);
    return PST_OK;
}

/* Whether a pull that must wait may be queued; false after an ERROR reply. */
static bool may_queue(pst_server_t *srv, size_t idx, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    const pst_server_tensor_t *t = &srv->tensors[idx];
    uint64_t now = pst_shard_slice(srv->shard, idx)->clock,
             limit = now + srv->cfg.staleness + PST_SERVER_MAX_CLOCKS_AHEAD;
    if (h->clock > limit) {
        pst_server_reply_error(srv, msg, PST_ERANGE,
                               "pull of tensor %u/%u for clock %llu; the slice is at clock %llu "
                               "and answers at most %llu ahead",
                               h->model_id, h->tensor_id, (unsigned long long)h->clock,
                               (unsigned long long)now, (unsigned long long)(limit - now));
        return false;
    }
    size_t queued = 0;
    for (size_t i = 0; i < t->n_pending; i++)
        queued += t->pending[i].sender == h->sender;
    if (queued >= PST_SERVER_MAX_QUEUED_PULLS) {
        pst_server_reply_error(
            srv, msg, PST_ERANGE,
            "worker %u has %zu pulls of tensor %u/%u waiting already (at most %d)", h->sender,
            queued, h->model_id, h->tensor_id, PST_SERVER_MAX_QUEUED_PULLS);
        return false;
    }
    return true;
}

void pst_server_on_pull(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    int found = find_slice(srv, msg);
    if (found < 0)
        return;
    size_t idx = (size_t)found;
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    if (!s->sparse && (h->offset < s->offset || h->offset + h->count > s->offset + s->len)) {
        pst_server_reply_error(
            srv, msg, PST_ERANGE, "pull of [%llu, %llu); this server owns [%llu, %llu)",
            (unsigned long long)h->offset, (unsigned long long)(h->offset + h->count),
            (unsigned long long)s->offset, (unsigned long long)(s->offset + s->len));
        return;
    }
    pst_err_t err = {0};
    int rc = PST_OK;
    if (pst_server_pull_ready(srv, idx, h->clock))
        rc = pst_server_reply_pull(srv, idx, msg->route, msg->route_len, h, msg->keys,
                                   srv->msg_list, &err);
    else if (!may_queue(srv, idx, msg))
        return;
    else if ((rc = pst_server_queue_pull(srv, idx, msg)) != PST_OK)
        pst_err_set(&err, rc, "no memory to queue the pull");
    if (rc != PST_OK)
        pst_server_reply_error(srv, msg, rc, "pull of tensor %u/%u: %s", h->model_id, h->tensor_id,
                               err.msg);
}

/* ---- DROP ---- */

/* Answers the pulls still queued on slice idx with an ERROR: their tensor is going away, and a
 * worker waiting on one must not wait for its timeout. */
static void refuse_queued_pulls(pst_server_t *srv, size_t idx)
{
    pst_server_tensor_t *t = &srv->tensors[idx];
    const pst_slice_t *s = pst_shard_slice(srv->shard, idx);
    char text[128];
    snprintf(text, sizeof text, "server %u: tensor %u/%u was dropped", srv->cfg.server_index,
             s->model_id, s->tensor_id);
    for (size_t i = 0; i < t->n_pending; i++) {
        const pst_server_pending_t *p = &t->pending[i];
        Pst__Header req = pst_server_pending_request(srv, idx, p);
        Pst__Header h = pst_server_reply_header(&req, PST__OP__OP_ERROR);
        h.flags = (uint32_t)(-PST_ESTATE);
        h.error = text;
        srv->counters[PST_STAT_ERRORS]++;
        pst_server_send_reply(srv, p->route.id, p->route.len, &h, NULL);
    }
    t->n_pending = 0;
}

void pst_server_on_drop(pst_server_t *srv, const pst_wire_msg_t *msg)
{
    uint32_t model = msg->hdr->model_id;
    size_t n = pst_shard_count(srv->shard), kept = 0;
    /* The consistency states sit beside the slices at the same indices: compact them in the
     * order pst_shard_drop_model keeps, and leave the freed tail zeroed for reuse. */
    for (size_t i = 0; i < n; i++) {
        if (pst_shard_slice(srv->shard, i)->model_id != model) {
            srv->tensors[kept++] = srv->tensors[i];
            continue;
        }
        refuse_queued_pulls(srv, i);
        pst_server_tensor_fini(&srv->tensors[i]);
    }
    if (kept < n)
        memset(srv->tensors + kept, 0, (n - kept) * sizeof *srv->tensors);
    size_t dropped = pst_shard_drop_model(srv->shard, model);
    pst_server_forget_namespace(srv, model);
    if (dropped > 0)
        pst_info("server %u: model %u dropped (%zu tensor slices)", srv->cfg.server_index, model,
                 dropped);
    Pst__Header h = pst_server_reply_header(msg->hdr, PST__OP__OP_ACK);
    h.count = dropped;
    pst_server_send_reply(srv, msg->route, msg->route_len, &h, NULL);
}
