/* Sparse key routing: keys split by owning server for pushes and pulls, and pulled rows put
 * back in the caller's key order. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/psclient_internal.h"

/* ---- requests ---- */

static int grow_split(pst_psclient_split_t *sp, size_t n_keys)
{
    if (n_keys > sp->keys_cap) {
        uint64_t *k = realloc(sp->keys, n_keys * sizeof(uint64_t));
        if (k == NULL)
            return PST_ENOMEM;
        sp->keys = k;
        sp->keys_cap = n_keys;
    }
    return PST_OK;
}

/* Finds the owning server of sorted unique keys; op->n_sent[s] receives each server's count. */
static int count_owners(pst_psclient_t *c, pst_psclient_op_t *op, const uint64_t *keys, size_t n,
                        pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    for (size_t i = 1; i < n; i++) {
        if (keys[i] <= keys[i - 1])
            return pst_err_set(err, PST_EINVAL, "client: keys not sorted and unique at %zu", i);
    }
    if (S == 1) {
        /* one server owns every key: the caller's list travels as it is */
        op->n_sent[0] = n;
        return PST_OK;
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
        if (grow_split(&c->split[s], op->n_sent[s]) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "client: out of memory");
    }
    return PST_OK;
}

/* Splits the keys by owner into c->split, and their rows (when values != NULL) into rows[s], the
 * frame of server s; server_keys[s] is then server s's list (with one server, the caller's). */
static void split_keys(pst_psclient_t *c, const uint64_t *keys, size_t n, const float *values,
                       size_t w, float *const *rows, const uint64_t **server_keys)
{
    if (c->cfg.n_servers == 1) {
        server_keys[0] = keys;
        return;
    }
    for (uint32_t s = 0; s < c->cfg.n_servers; s++)
        server_keys[s] = c->split[s].keys;
    memset(c->fill, 0, c->cfg.n_servers * sizeof *c->fill);
    for (size_t i = 0; i < n; i++) {
        uint32_t s = c->owner[i];
        size_t j = c->fill[s]++;
        c->split[s].keys[j] = keys[i];
        if (values != NULL)
            memcpy(rows[s] + j * w, values + i * w, w * sizeof(float));
    }
}

/* The payloads of a sparse push: with one server the caller's rows are lent as they are; with
 * several, each server's rows are gathered into a frame of its wire's pool, sent without another
 * copy. */
static int push_payloads(pst_psclient_t *c, pst_psclient_op_t *op, const float *grad, size_t w,
                         pst_wire_payload_t *outs, float **rows, pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    memset(outs, 0, S * sizeof *outs);
    if (S == 1) {
        if (op->n_sent[0] > 0)
            pst_psclient_op_lend(op, &outs[0], grad);
        return PST_OK;
    }
    for (uint32_t s = 0; s < S; s++) {
        rows[s] = NULL;
        if (op->n_sent[s] == 0)
            continue;
        rows[s] = pst_wire_values_frame(c->wires[s], op->n_sent[s] * w, &outs[s], err);
        if (rows[s] == NULL) {
            for (uint32_t k = 0; k < s; k++) {
                if (outs[k].release != NULL)
                    outs[k].release((void *)outs[k].values, outs[k].hint);
            }
            return PST_ENOMEM;
        }
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
    bool push = kind == PST__OP__OP_PUSH;
    uint32_t S = c->cfg.n_servers;
    pst_wire_payload_t outs[S];
    float *rows[S];
    int rc = count_owners(c, op, keys, n_keys, err);
    if (rc == PST_OK && push)
        rc = push_payloads(c, op, grad, t->row_width, outs, rows, err);
    if (rc != PST_OK) {
        pst_psclient_op_release(op);
        return rc;
    }
    const uint64_t *server_keys[S];
    split_keys(c, keys, n_keys, push && S > 1 ? grad : NULL, t->row_width, rows, server_keys);
    op->dst = dst;
    op->keys = kind == PST__OP__OP_PULL ? keys : NULL;
    op->n_keys = n_keys;
    for (uint32_t s = 0; s < S; s++) {
        Pst__Header h = pst_psclient_request_header(t, kind, clock);
        h.count = op->n_sent[s];
        h.codec = (Pst__Codec)(push ? c->cfg.push_codec : c->cfg.pull_codec);
        h.lr = lr;
        pst_keycodec_list_t *mine = &t->sent[(size_t)s * PST_WIRE_KEY_LISTS];
        bool cached = use_cached_keys(mine, &h, server_keys[s]);
        pst_wire_payload_t out = push ? outs[s] : (pst_wire_payload_t){0};
        out.keys = server_keys[s];
        rc = pst_psclient_send_to(c, s, op, &h, &out, err);
        if (rc != PST_OK) {
            /* The failed send released its own payload; the later ones never left. */
            for (uint32_t k = s + 1; push && k < S; k++) {
                if (outs[k].release != NULL)
                    outs[k].release((void *)outs[k].values, outs[k].hint);
            }
            return rc;
        }
        if (!cached && h.count > 0)
            remember_keys(mine, &t->sent_newest[s], &h, server_keys[s]);
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
    /* Raw rows are read where ZeroMQ received them; other codecs decode into the wire's view. */
    const float *rows = NULL;
    pst_err_t err = {0};
    if (pst_wire_view(c->wires[s], msg, &rows, &err) != PST_OK) {
        pst_psclient_op_fail(op, PST_EPROTO, s, "%s", err.msg);
        return;
    }
    if (c->cfg.n_servers == 1) { /* every key's row, in the caller's order */
        memcpy(op->dst, rows, (size_t)h->count * w * sizeof(float));
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < op->n_keys && j < h->count; i++) {
        if (pst_wire_key_server(op->keys[i], c->cfg.n_servers) == s)
            memcpy(op->dst + i * w, rows + (j++) * w, w * sizeof(float));
    }
}
