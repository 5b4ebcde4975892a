/* Sparse key routing: keys split by owning server for pushes and pulls, and pulled rows put
 * back in the caller's key order. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/psclient_internal.h"

/* ---- requests ---- */

static int grow_split(pst_psclient_split_t *sp, size_t n_keys, size_t n_values)
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
static int split_keys(pst_psclient_t *c, pst_psclient_op_t *op, const uint64_t *keys, size_t n,
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
        pst_psclient_split_t *sp = &c->split[c->owner[i]];
        size_t j = c->fill[c->owner[i]]++;
        sp->keys[j] = keys[i];
        if (values != NULL)
            memcpy(sp->values + j * w, values + i * w, w * sizeof(float));
    }
    return PST_OK;
}

/* The server remembers the last PST_WIRE_KEY_LISTS lists sent in full (mine: this client's
 * copies, for one server); one of them again travels as its signature alone. */
static bool use_cached_keys(const pst_keycodec_list_t *mine, Pst__Header *h, const uint64_t *keys)
{
    for (int i = 0; h->count > 0 && i < PST_WIRE_KEY_LISTS; i++) {
        if (pst_keycodec_list_same(&mine[i], keys, (size_t)h->count)) {
            h->flags |= PST_WIRE_FLAG_KEYS_CACHED;
            h->key_signature = mine[i].signature;
            return true;
        }
    }
    return false;
}

/* After a full list went out: the server now holds it under the signature the wire computed, in
 * place of the older of its two; *newest tracks which slot that is, as on the server. */
static void remember_keys(pst_keycodec_list_t *mine, uint8_t *newest, const Pst__Header *h,
                          const uint64_t *keys)
{
    *newest = (uint8_t)((*newest + 1) % PST_WIRE_KEY_LISTS);
    if (pst_keycodec_list_store(&mine[*newest], keys, (size_t)h->count, h->key_signature) != PST_OK)
        pst_warn("client: no memory to remember a key list; the next request sends it in full");
}

static int send_sparse(pst_psclient_t *c, int tensor, Pst__Op kind, const uint64_t *keys,
                       size_t n_keys, const float *grad, float *dst, uint64_t clock, float lr,
                       pst_ticket_t *ticket, pst_err_t *err)
{
    pst_psclient_tensor_t *t = pst_psclient_get_tensor(c, tensor, true, err);
    if (t == NULL)
        return PST_EINVAL;
    pst_psclient_op_t *op = pst_psclient_op_start(c, kind, tensor, err);
    if (op == NULL)
        return PST_ESTATE;
    int rc = split_keys(c, op, keys, n_keys, grad, t->row_width, err);
    if (rc != PST_OK) {
        pst_psclient_op_release(op);
        return rc;
    }
    op->dst = dst;
    op->keys = kind == PST__OP__OP_PULL ? keys : NULL;
    op->n_keys = n_keys;
    bool push = kind == PST__OP__OP_PUSH;
    for (uint32_t s = 0; s < c->cfg.n_servers; s++) {
        Pst__Header h = pst_psclient_request_header(t, kind, clock);
        h.count = op->n_sent[s];
        h.codec = (Pst__Codec)(push ? c->cfg.push_codec : c->cfg.pull_codec);
        h.lr = lr;
        pst_keycodec_list_t *mine = &t->sent[(size_t)s * PST_WIRE_KEY_LISTS];
        bool cached = use_cached_keys(mine, &h, c->split[s].keys);
        pst_wire_payload_t out = {.keys = c->split[s].keys,
                                  .values = push ? c->split[s].values : NULL};
        rc = pst_psclient_send_to(c, s, op, &h, &out, err);
        if (rc != PST_OK)
            return rc;
        if (!cached && h.count > 0)
            remember_keys(mine, &t->sent_newest[s], &h, c->split[s].keys);
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

/* ---- replies ---- */

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

void pst_psclient_absorb_sparse_pull(pst_psclient_t *c, uint32_t s, pst_psclient_op_t *op,
                                     const pst_wire_msg_t *msg)
{
    const pst_psclient_tensor_t *t = &c->tensors[op->tensor];
    const Pst__Header *h = msg->hdr;
    size_t w = t->row_width;
    if (!h->sparse || h->row_width != w || h->count != op->n_sent[s]) {
        pst_psclient_op_fail(op, PST_EPROTO, s, "reply of %llu rows of %u, asked %llu of %zu",
                             (unsigned long long)h->count, h->row_width,
                             (unsigned long long)op->n_sent[s], w);
        return;
    }
    float *rows = client_scratch(c, msg->n_values);
    pst_err_t err = {0};
    if (msg->n_values > 0 && rows == NULL) {
        pst_psclient_op_fail(op, PST_ENOMEM, s, "no memory for the reply");
        return;
    }
    if (pst_wire_decode(c->wires[s], msg, rows, &err) != PST_OK) {
        pst_psclient_op_fail(op, PST_EPROTO, s, "%s", err.msg);
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < op->n_keys && j < h->count; i++) {
        if (pst_wire_key_server(op->keys[i], c->cfg.n_servers) == s)
            memcpy(op->dst + i * w, rows + (j++) * w, w * sizeof(float));
    }
}
