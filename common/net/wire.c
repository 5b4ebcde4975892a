/* Wire framing: lifecycle, pooled zero-copy payload frames, placement and sending. */
#include "common/net/wire.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/net/keycodec.h"
#include "common/net/wire_internal.h"
#include "common/rng.h"

/* ---- header arena ---- */

static void *arena_alloc(void *data, size_t size)
{
    pst_wire_t *w = data;
    size_t at = (w->arena_used + 15u) & ~(size_t)15u;
    if (at > ARENA_BYTES || size > ARENA_BYTES - at)
        return NULL;
    w->arena_used = at + size;
    return w->arena + at;
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

/* ---- payload pool ---- */

static pst_wire_pool_buf_t *buf_new(size_t cap)
{
    pst_wire_pool_buf_t *b = malloc(sizeof *b);
    uint8_t *data = malloc(cap > 0 ? cap : 1);
    if (b == NULL || data == NULL) {
        free(b);
        free(data);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->cap = cap;
    b->data = data;
    return b;
}

static void buf_unref(pst_wire_pool_buf_t *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        free(b->data);
        free(b);
    }
}

/* Called by ZeroMQ (possibly from its I/O thread) once a message no longer needs its data. */
static void buf_release(void *data, void *hint)
{
    (void)data;
    buf_unref(hint);
}

static bool buf_idle(pst_wire_pool_buf_t *b)
{
    return atomic_load_explicit(&b->refs, memory_order_acquire) == 1;
}

/* The smallest idle pooled buffer of at least need bytes, with a reference taken for the
 * message; else a new buffer, pooled when a slot is free or holds an idle buffer that is too
 * small, and owned by the message alone otherwise. */
static pst_wire_pool_buf_t *pool_acquire(pst_wire_t *w, size_t need)
{
    int best = -1, empty = -1, small = -1;
    for (int i = 0; i < POOL_SIZE; i++) {
        pst_wire_pool_buf_t *b = w->pool[i];
        if (b == NULL) {
            if (empty < 0)
                empty = i;
        } else if (buf_idle(b) && b->cap >= need) {
            if (best < 0 || b->cap < w->pool[best]->cap)
                best = i;
        } else if (buf_idle(b) && small < 0) {
            small = i;
        }
    }
    if (best >= 0) {
        atomic_fetch_add_explicit(&w->pool[best]->refs, 1, memory_order_relaxed);
        return w->pool[best];
    }
    int slot = empty >= 0 ? empty : small;
    pst_wire_pool_buf_t *b = buf_new(need);
    if (b == NULL || slot < 0)
        return b;
    if (w->pool[slot] != NULL)
        buf_unref(w->pool[slot]);
    w->pool[slot] = b;
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

/* Hands len bytes of b to a ZeroMQ message; the message's reference is dropped when ZeroMQ is
 * done with it (or here, on failure). entry: the auto entry timing the frame, or SIZE_MAX. */
static int attach(pst_wire_t *w, size_t entry, zmq_msg_t *msg, pst_wire_pool_buf_t *b, size_t len,
                  pst_err_t *err)
{
    return pst_wire_auto_wrap(w, entry, msg, b->data, len, buf_release, b, err);
}

float *pst_wire_values_frame(pst_wire_t *self, size_t n, pst_wire_payload_t *payload,
                             pst_err_t *err)
{
    size_t bytes = n * sizeof(float);
    pst_wire_pool_buf_t *b = n <= SIZE_MAX / sizeof(float) ? pool_acquire(self, bytes) : NULL;
    if (b == NULL) {
        pst_err_set(err, PST_ENOMEM, "wire: no memory for a %zu-float frame", n);
        return NULL;
    }
    payload->values = (const float *)(const void *)b->data;
    payload->lend = true;
    payload->release = buf_release;
    payload->hint = b;
    return (float *)(void *)b->data;
}

int pst_wire_ensure_floats(float **buf, size_t *cap, size_t n)
{
    if (*cap >= n)
        return PST_OK;
    float *grown = realloc(*buf, n * sizeof(float));
    if (grown == NULL)
        return PST_ENOMEM;
    *buf = grown;
    *cap = n;
    return PST_OK;
}

/* ---- lifecycle ---- */

pst_wire_t *pst_wire_new(pst_wire_role_t role, uint64_t max_bytes, pst_err_t *err)
{
    pst_wire_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        pst_err_set(err, PST_ENOMEM, "wire: out of memory");
        return NULL;
    }
    w->kc = pst_keycodec_new(err);
    if (w->kc == NULL) {
        free(w);
        return NULL;
    }
    w->role = role;
    w->max_bytes = max_bytes > 0 ? max_bytes : PST_WIRE_MAX_BYTES_DEFAULT;
    w->alloc.alloc = arena_alloc;
    w->alloc.free = arena_free;
    w->alloc.allocator_data = w;
    return w;
}

void pst_wire_destroy(pst_wire_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_wire_t *w = *self_p;
    for (int i = 0; i < POOL_SIZE; i++) {
        if (w->pool[i] != NULL)
            buf_unref(w->pool[i]);
    }
    if (w->in_route_kept)
        zmq_msg_close(&w->in_route);
    if (w->in_open)
        zmq_msg_close(&w->in_next);
    pst_wire_auto_fini(w);
    pst_keycodec_destroy(&w->kc);
    free(w->keys);
    free(w->scratch);
    free(w->view);
    free(w);
    *self_p = NULL;
}

int pst_wire_prepare_socket(pst_wire_t *self, void *sock, pst_err_t *err)
{
    int64_t limit = (int64_t)self->max_bytes + PST_WIRE_MAX_HEADER;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &limit, sizeof limit) != 0)
        return pst_err_set(err, PST_EIO, "wire: ZMQ_MAXMSGSIZE: %s", zmq_strerror(errno));
    return PST_OK;
}

/* ---- what each op carries ---- */

bool pst_wire_op_known(int op)
{
    return op >= PST__OP__OP_PUSH && op <= PST__OP__OP_DROP;
}

static bool op_carries_values(int op)
{
    return op == PST__OP__OP_PUSH || op == PST__OP__OP_PULL_REPLY || op == PST__OP__OP_INIT ||
           op == PST__OP__OP_FED_TASK || op == PST__OP__OP_FED_UPDATE || op == PST__OP__OP_FED_DONE;
}

bool pst_wire_op_carries_blob(int op)
{
    return op == PST__OP__OP_FED_WELCOME || op == PST__OP__OP_BARRIER;
}

/* Whether a message with this header has a blob frame. */
bool pst_wire_has_blob_frame(const Pst__Header *h)
{
    return pst_wire_op_carries_blob(h->op) && h->blob_size > 0;
}

bool pst_wire_carries_keys(const Pst__Header *h)
{
    return h->sparse && h->count > 0 && (h->op == PST__OP__OP_PUSH || h->op == PST__OP__OP_PULL);
}

bool pst_wire_keys_cached(const Pst__Header *hdr)
{
    return pst_wire_carries_keys(hdr) && (hdr->flags & PST_WIRE_FLAG_KEYS_CACHED);
}

/* Whether a message with this header has a keys frame. */
bool pst_wire_has_keys_frame(const Pst__Header *h)
{
    return pst_wire_carries_keys(h) && !(h->flags & PST_WIRE_FLAG_KEYS_CACHED);
}

uint64_t pst_wire_value_count(const Pst__Header *hdr)
{
    if (!op_carries_values(hdr->op))
        return 0;
    return hdr->sparse ? hdr->count * hdr->row_width : hdr->count;
}

const char *pst_wire_op_name(int op)
{
    static const char *names[] = {
        "none",         "push",        "pull",     "pull-reply", "ack",      "barrier",
        "heartbeat",    "stats",       "shutdown", "error",      "init",     "checkpoint",
        "fed-register", "fed-welcome", "fed-task", "fed-update", "fed-done", "drop"};
    if (op < 0 || op > PST__OP__OP_DROP)
        return "unknown";
    return names[op];
}

/* ---- placement ---- */

#define KEY_SEED 0x5053545348415244ull /* "PSTSHARD" */

void pst_wire_shard_range(uint64_t n, uint32_t n_servers, uint32_t server, uint64_t *offset,
                          uint64_t *len)
{
    uint64_t base = n / n_servers, extra = n % n_servers;
    *len = base + (server < extra ? 1 : 0);
    *offset = server * base + (server < extra ? server : extra);
}

uint64_t pst_wire_key_hash(uint64_t key)
{
    return pst_mix64(key ^ KEY_SEED);
}

uint32_t pst_wire_key_server(uint64_t key, uint32_t n_servers)
{
    return (uint32_t)(pst_wire_key_hash(key) % n_servers);
}

/* ---- sending ---- */

/* Whether the keys and values a header declares stay within the size limit (row_width already
 * checked for sparse headers). */
bool pst_wire_count_fits(const pst_wire_t *w, const Pst__Header *h)
{
    if (!h->sparse)
        return h->count <= w->max_bytes / sizeof(float);
    return h->count <= w->max_bytes / sizeof(uint64_t) &&
           h->count <= w->max_bytes / ((uint64_t)h->row_width * sizeof(float));
}

/* Fills codec, raw_size, wire_size and checksum of hdr and wraps the encoded values in msg.
 * entry: the auto entry that chose hdr->codec, or SIZE_MAX. */
static int prepare_values(pst_wire_t *w, Pst__Header *hdr, const pst_wire_payload_t *p, size_t n,
                          size_t entry, zmq_msg_t *msg, pst_err_t *err)
{
    size_t raw = n * sizeof(float);
    const float *values = p->values;
    float *residual = p->residual;
    hdr->raw_size = raw;
    /* A sum the caller already holds (values sent to many peers) is not computed again. */
    uint32_t sum = p->checksum_known ? p->checksum : 0;
    if (hdr->codec == PST__CODEC__CODEC_RAW) {
        hdr->wire_size = raw;
        hdr->checksum = p->checksum_known ? sum : pst_checksum(values, raw);
        /* Lent values travel as they are; the lender's release runs when ZeroMQ lets go. */
        if (p->lend)
            return pst_wire_auto_wrap(w, entry, msg, (void *)values, raw, p->release, p->hint, err);
        pst_wire_pool_buf_t *b = pool_acquire(w, raw);
        if (b == NULL)
            return pst_err_set(err, PST_ENOMEM, "wire: no memory for a %zu-byte frame", raw);
        memcpy(b->data, values, raw);
        return attach(w, entry, msg, b, raw, err);
    }
    pst_codec_t codec = (pst_codec_t)hdr->codec, used = codec;
    size_t cap = pst_codec_bound(codec, n), len = 0;
    pst_wire_pool_buf_t *b = pool_acquire(w, cap);
    if (b == NULL)
        return pst_err_set(err, PST_ENOMEM, "wire: no memory for a %zu-byte frame", cap);
    int rc = pst_codec_encode(codec, values, n, residual, b->data, cap, &len, &used, err);
    if (rc == PST_OK && pst_codec_lossy(used)) {
        /* The checksum covers what the receiver will decode, not what was given. */
        rc = pst_wire_ensure_floats(&w->scratch, &w->scratch_cap, n);
        if (rc == PST_OK)
            rc = pst_codec_decode(used, b->data, len, w->scratch, n, err);
        hdr->checksum = pst_checksum(w->scratch, raw);
    } else if (rc == PST_OK) {
        hdr->checksum = p->checksum_known ? sum : pst_checksum(values, raw);
    }
    if (rc != PST_OK) {
        buf_unref(b);
        return rc == PST_ENOMEM ? pst_err_set(err, rc, "wire: out of memory") : rc;
    }
    hdr->codec = (Pst__Codec)used;
    hdr->wire_size = len;
    return attach(w, entry, msg, b, len, err);
}

/* Encodes the keys into a pooled frame; sets key_encoding and key_signature of hdr. */
static int prepare_keys(pst_wire_t *w, Pst__Header *hdr, const uint64_t *keys, zmq_msg_t *msg,
                        size_t *len, pst_err_t *err)
{
    size_t n = (size_t)hdr->count, cap = pst_keycodec_bound(n);
    pst_wire_pool_buf_t *b = pool_acquire(w, cap);
    if (b == NULL)
        return pst_err_set(err, PST_ENOMEM, "wire: no memory for a %zu-byte frame", cap);
    int rc = pst_keycodec_encode(w->kc, keys, n, b->data, cap, len, &hdr->key_signature, err);
    if (rc != PST_OK) {
        buf_unref(b);
        return rc;
    }
    hdr->key_encoding = PST_WIRE_KEYS_DELTA;
    return attach(w, SIZE_MAX, msg, b, *len, err);
}

static int send_bytes(void *sock, const void *data, size_t len, int more)
{
    while (zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* Sends msg; ZeroMQ owns it on success, and it is closed here on failure. */
static int send_msg(void *sock, zmq_msg_t *msg, int more)
{
    while (zmq_msg_send(msg, sock, more ? ZMQ_SNDMORE : 0) < 0) {
        if (errno != EINTR) {
            int saved = errno;
            zmq_msg_close(msg);
            errno = saved;
            return -1;
        }
    }
    return 0;
}

static int send_failed(pst_err_t *err, const char *what)
{
    int code = errno == EAGAIN ? PST_ETIMEOUT : PST_EIO;
    return pst_err_set(err, code, "wire: sending %s: %s", what, zmq_strerror(errno));
}

static int check_outgoing(const pst_wire_t *w, const Pst__Header *hdr, const pst_wire_payload_t *p,
                          pst_err_t *err)
{
    const uint64_t *keys = p ? p->keys : NULL;
    const float *values = p ? p->values : NULL;
    if (!pst_wire_op_known(hdr->op) ||
        (!pst_codec_known((int)hdr->codec) && (int)hdr->codec != PST_CODEC_AUTO))
        return pst_err_set(err, PST_EINVAL, "wire: op %d or codec %d unknown", hdr->op, hdr->codec);
    if (hdr->sparse && (hdr->row_width == 0 || hdr->row_width > PST_WIRE_MAX_ROW_WIDTH))
        return pst_err_set(err, PST_EINVAL, "wire: sparse row width %u", hdr->row_width);
    if (!pst_wire_count_fits(w, hdr))
        return pst_err_set(err, PST_EINVAL, "wire: %llu entries exceed the %llu-byte limit",
                           (unsigned long long)hdr->count, (unsigned long long)w->max_bytes);
    if (pst_wire_has_keys_frame(hdr) && keys == NULL)
        return pst_err_set(err, PST_EINVAL, "wire: %s needs keys", pst_wire_op_name(hdr->op));
    if (pst_wire_value_count(hdr) > 0 && values == NULL)
        return pst_err_set(err, PST_EINVAL, "wire: %s needs values", pst_wire_op_name(hdr->op));
    size_t blob_len = p ? p->blob_len : 0;
    if (blob_len > 0 && !pst_wire_op_carries_blob(hdr->op))
        return pst_err_set(err, PST_EINVAL, "wire: %s carries no blob", pst_wire_op_name(hdr->op));
    if (blob_len > w->max_bytes || (blob_len > 0 && p->blob == NULL))
        return pst_err_set(err, PST_EINVAL, "wire: blob of %zu bytes", blob_len);
    return PST_OK;
}

/* keys_len: bytes of the keys frame as sent (0 when none travelled). */
static void count_sent(pst_wire_t *w, const Pst__Header *hdr, size_t header_len, size_t keys_len)
{
    uint64_t keys_raw = pst_wire_carries_keys(hdr) ? hdr->count * sizeof(uint64_t) : 0;
    w->stats.messages_sent++;
    w->stats.bytes_raw_sent += keys_raw + hdr->raw_size + hdr->blob_size;
    w->stats.bytes_wire_sent += header_len + keys_len + hdr->wire_size + hdr->blob_size;
}

/* Releases lent values that will not travel as they are. */
static void release_unsent(const pst_wire_payload_t *p)
{
    if (p != NULL && p->lend && p->release != NULL)
        p->release((void *)p->values, p->hint);
}

/* Replaces PST_CODEC_AUTO in hdr by the codec the tensor's values travel in. A PULL keeps it:
 * there it asks the server to choose for its reply. */
static void resolve_auto(pst_wire_t *w, Pst__Header *hdr, const pst_wire_payload_t *p,
                         size_t n_values, size_t *entry)
{
    if ((int)hdr->codec != PST_CODEC_AUTO || hdr->op == PST__OP__OP_PULL)
        return;
    pst_codec_t codec = PST_CODEC_RAW;
    if (n_values > 0)
        codec = pst_wire_auto_pick(w, hdr, p->values, n_values, entry);
    hdr->codec = (Pst__Codec)codec;
}

/* Whether a message to route continues the ZeroMQ message being sent; when it goes to another
 * peer, that message is ended first. */
static bool continues_open(pst_wire_t *w, void *sock, const uint8_t *route, size_t route_len)
{
    if (!w->out_open)
        return false;
    if (w->role == PST_WIRE_DEALER ||
        (route_len == w->out_route_len && memcmp(route, w->out_route, route_len) == 0))
        return true;
    pst_wire_flush(w, sock, NULL);
    return false;
}

/* The header packed, with PST_WIRE_FLAG_MORE when coalescing (hdr itself unchanged). */
static size_t pack_header(const pst_wire_t *w, Pst__Header *hdr, uint8_t *packed)
{
    uint32_t flags = hdr->flags;
    if (w->coalesce)
        hdr->flags |= PST_WIRE_FLAG_MORE;
    size_t len = pst__header__get_packed_size(hdr);
    if (len <= PST_WIRE_MAX_HEADER)
        pst__header__pack(hdr, packed);
    hdr->flags = flags;
    return len;
}

static void open_message(pst_wire_t *w, const uint8_t *route, size_t route_len)
{
    w->out_open = true;
    if (w->role == PST_WIRE_ROUTER) {
        memcpy(w->out_route, route, route_len);
        w->out_route_len = route_len;
    }
}

int pst_wire_send(pst_wire_t *self, void *sock, const uint8_t *route, size_t route_len,
                  Pst__Header *hdr, const pst_wire_payload_t *payload, pst_err_t *err)
{
    int rc = check_outgoing(self, hdr, payload, err);
    if (rc == PST_OK && (hdr->flags & PST_WIRE_FLAG_MORE))
        rc = pst_err_set(err, PST_EINVAL, "wire: PST_WIRE_FLAG_MORE is the wire's own");
    if (rc == PST_OK && self->role == PST_WIRE_ROUTER &&
        (route == NULL || route_len == 0 || route_len > sizeof self->out_route))
        rc = pst_err_set(err, PST_EINVAL, "wire: a route of %zu bytes", route_len);
    size_t n_values = (size_t)pst_wire_value_count(hdr);
    bool has_keys = pst_wire_has_keys_frame(hdr), has_values = n_values > 0;
    size_t entry = SIZE_MAX;
    if (rc == PST_OK)
        resolve_auto(self, hdr, payload, n_values, &entry);
    if (rc != PST_OK || !has_values)
        release_unsent(payload);
    if (rc != PST_OK)
        return rc;
    /* Encoded values travel in a copy: the lent ones are handed back once encoded (not before:
     * a pool frame released early could become the encoder's own output). */
    bool encoded = has_values && hdr->codec != PST__CODEC__CODEC_RAW;
    zmq_msg_t keys_msg, values_msg;
    size_t keys_len = 0;
    hdr->raw_size = hdr->wire_size = 0;
    hdr->checksum = 0;
    bool has_blob = payload != NULL && payload->blob_len > 0;
    hdr->blob_size = has_blob ? payload->blob_len : 0;
    hdr->blob_checksum = has_blob ? pst_checksum(payload->blob, payload->blob_len) : 0;
    if (has_values) {
        rc = prepare_values(self, hdr, payload, n_values, entry, &values_msg, err);
        if (encoded)
            release_unsent(payload);
        if (rc != PST_OK)
            return rc;
    }
    if (has_keys &&
        (rc = prepare_keys(self, hdr, payload->keys, &keys_msg, &keys_len, err)) != PST_OK) {
        if (has_values)
            zmq_msg_close(&values_msg);
        return rc;
    }
    uint8_t packed[PST_WIRE_MAX_HEADER];
    size_t header_len = pack_header(self, hdr, packed);
    /* coalescing: every frame goes with SNDMORE, the ZeroMQ message ends at pst_wire_flush */
    int last_more = self->coalesce ? 1 : 0;
    if (header_len > sizeof packed) {
        rc = pst_err_set(err, PST_EINVAL, "wire: header of %zu bytes is too large", header_len);
    } else {
        bool cont = continues_open(self, sock, route, route_len);
        if (!cont && route != NULL && send_bytes(sock, route, route_len, 1) != 0)
            rc = send_failed(err, "header");
        else if (!cont && route != NULL)
            open_message(self, route, route_len); /* the route went: the message must end */
        if (rc == PST_OK &&
            send_bytes(sock, packed, header_len, has_keys || has_values || has_blob || last_more))
            rc = send_failed(err, "header");
        else if (rc == PST_OK && (has_keys || has_values || has_blob || last_more))
            open_message(self, route, route_len);
    }
    if (rc != PST_OK) {
        if (has_keys)
            zmq_msg_close(&keys_msg);
        if (has_values)
            zmq_msg_close(&values_msg);
        return rc;
    }
    if (has_keys && send_msg(sock, &keys_msg, has_values || has_blob || last_more) != 0) {
        rc = send_failed(err, "keys");
        if (has_values)
            zmq_msg_close(&values_msg);
        return rc;
    }
    if (has_values && send_msg(sock, &values_msg, has_blob || last_more) != 0)
        return send_failed(err, "values");
    if (has_blob && send_bytes(sock, payload->blob, payload->blob_len, last_more) != 0)
        return send_failed(err, "blob");
    self->out_open = self->coalesce;
    count_sent(self, hdr, header_len, keys_len);
    return PST_OK;
}

void pst_wire_stats(const pst_wire_t *self, pst_wire_stats_t *out)
{
    *out = self->stats;
}

int pst_wire_last_endpoint(void *sock, char *buf, size_t len, pst_err_t *err)
{
    size_t size = len;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, buf, &size) != 0)
        return pst_err_set(err, PST_EIO, "wire: ZMQ_LAST_ENDPOINT: %s", zmq_strerror(errno));
    return PST_OK;
}

/* ---- coalescing ---- */

void pst_wire_set_coalesce(pst_wire_t *self, bool on)
{
    self->coalesce = on;
}

int pst_wire_flush(pst_wire_t *self, void *sock, pst_err_t *err)
{
    if (!self->out_open)
        return PST_OK;
    self->out_open = false;
    if (send_bytes(sock, "", 0, 0) != 0)
        return send_failed(err, "the end of coalesced messages");
    return PST_OK;
}
