/* Wire framing: header packing, pooled zero-copy payload frames and validation of what arrives. */
#include "common/net/wire.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/net/keycodec.h"

#define POOL_SIZE 32            /* payload buffers kept for reuse per wire */
#define ARENA_BYTES (64 * 1024) /* header unpacking; a header that needs more is rejected */

/* A payload buffer. The pool holds one reference while the buffer sits in the pool; every
 * message ZeroMQ has not yet released holds one more. */
typedef struct pool_buf {
    atomic_int refs;
    size_t cap;
    uint8_t *data;
} pool_buf_t;

struct pst_wire {
    pst_wire_role_t role;
    uint64_t max_bytes;
    pst_wire_stats_t stats;
    ProtobufCAllocator alloc; /* bump allocator over arena, reset for every header */
    size_t arena_used;
    pst_keycodec_t *kc;
    uint64_t *keys; /* decoded keys, or an aligned copy of a raw keys frame that arrived
                     * misaligned; (keys_cap) */
    size_t keys_cap;
    float *scratch; /* the receiver's view of a lossy payload, for the sender's checksum */
    size_t scratch_cap;
    float *view; /* decoded values handed out by pst_wire_view */
    size_t view_cap;
    pool_buf_t *pool[POOL_SIZE];
    _Alignas(16) uint8_t arena[ARENA_BYTES];
};

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

static pool_buf_t *buf_new(size_t cap)
{
    pool_buf_t *b = malloc(sizeof *b);
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

static void buf_unref(pool_buf_t *b)
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

static bool buf_idle(pool_buf_t *b)
{
    return atomic_load_explicit(&b->refs, memory_order_acquire) == 1;
}

/* The smallest idle pooled buffer of at least need bytes, with a reference taken for the
 * message; else a new buffer, pooled when a slot is free or holds an idle buffer that is too
 * small, and owned by the message alone otherwise. */
static pool_buf_t *pool_acquire(pst_wire_t *w, size_t need)
{
    int best = -1, empty = -1, small = -1;
    for (int i = 0; i < POOL_SIZE; i++) {
        pool_buf_t *b = w->pool[i];
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
    pool_buf_t *b = buf_new(need);
    if (b == NULL || slot < 0)
        return b;
    if (w->pool[slot] != NULL)
        buf_unref(w->pool[slot]);
    w->pool[slot] = b;
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

/* Hands len bytes of b to a ZeroMQ message; the message's reference is dropped when ZeroMQ is
 * done with it (or here, on failure). */
static int attach(zmq_msg_t *msg, pool_buf_t *b, size_t len, pst_err_t *err)
{
    if (zmq_msg_init_data(msg, b->data, len, buf_release, b) != 0) {
        buf_unref(b);
        return pst_err_set(err, PST_ENOMEM, "wire: cannot wrap a %zu-byte frame", len);
    }
    return PST_OK;
}

static int ensure_floats(float **buf, size_t *cap, size_t n)
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

static bool op_known(int op)
{
    return op >= PST__OP__OP_PUSH && op <= PST__OP__OP_DROP;
}

static bool op_carries_values(int op)
{
    return op == PST__OP__OP_PUSH || op == PST__OP__OP_PULL_REPLY || op == PST__OP__OP_INIT ||
           op == PST__OP__OP_FED_TASK || op == PST__OP__OP_FED_UPDATE || op == PST__OP__OP_FED_DONE;
}

static bool op_carries_blob(int op)
{
    return op == PST__OP__OP_FED_WELCOME;
}

/* Whether a message with this header has a blob frame. */
static bool has_blob_frame(const Pst__Header *h)
{
    return op_carries_blob(h->op) && h->blob_size > 0;
}

static bool carries_keys(const Pst__Header *h)
{
    return h->sparse && h->count > 0 && (h->op == PST__OP__OP_PUSH || h->op == PST__OP__OP_PULL);
}

bool pst_wire_keys_cached(const Pst__Header *hdr)
{
    return carries_keys(hdr) && (hdr->flags & PST_WIRE_FLAG_KEYS_CACHED);
}

/* Whether a message with this header has a keys frame. */
static bool has_keys_frame(const Pst__Header *h)
{
    return carries_keys(h) && !(h->flags & PST_WIRE_FLAG_KEYS_CACHED);
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
    uint64_t x = key ^ KEY_SEED;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint32_t pst_wire_key_server(uint64_t key, uint32_t n_servers)
{
    return (uint32_t)(pst_wire_key_hash(key) % n_servers);
}

/* ---- sending ---- */

/* Whether the keys and values a header declares stay within the size limit (row_width already
 * checked for sparse headers). */
static bool count_fits(const pst_wire_t *w, const Pst__Header *h)
{
    if (!h->sparse)
        return h->count <= w->max_bytes / sizeof(float);
    return h->count <= w->max_bytes / sizeof(uint64_t) &&
           h->count <= w->max_bytes / ((uint64_t)h->row_width * sizeof(float));
}

/* Wraps lent raw values in msg; the lender's release runs when ZeroMQ lets go. */
static int wrap_lent(const pst_wire_payload_t *p, size_t raw, zmq_msg_t *msg, pst_err_t *err)
{
    if (zmq_msg_init_data(msg, (void *)p->values, raw, p->release, p->hint) != 0) {
        if (p->release != NULL)
            p->release((void *)p->values, p->hint);
        return pst_err_set(err, PST_ENOMEM, "wire: cannot wrap a %zu-byte frame", raw);
    }
    return PST_OK;
}

/* Fills codec, raw_size, wire_size and checksum of hdr and wraps the encoded values in msg. */
static int prepare_values(pst_wire_t *w, Pst__Header *hdr, const pst_wire_payload_t *p, size_t n,
                          zmq_msg_t *msg, pst_err_t *err)
{
    size_t raw = n * sizeof(float);
    const float *values = p->values;
    float *residual = p->residual;
    hdr->raw_size = raw;
    if (hdr->codec == PST__CODEC__CODEC_RAW) {
        hdr->wire_size = raw;
        hdr->checksum = pst_checksum(values, raw);
        if (p->lend)
            return wrap_lent(p, raw, msg, err);
        pool_buf_t *b = pool_acquire(w, raw);
        if (b == NULL)
            return pst_err_set(err, PST_ENOMEM, "wire: no memory for a %zu-byte frame", raw);
        memcpy(b->data, values, raw);
        return attach(msg, b, raw, err);
    }
    pst_codec_t codec = (pst_codec_t)hdr->codec, used = codec;
    size_t cap = pst_codec_bound(codec, n), len = 0;
    pool_buf_t *b = pool_acquire(w, cap);
    if (b == NULL)
        return pst_err_set(err, PST_ENOMEM, "wire: no memory for a %zu-byte frame", cap);
    int rc = pst_codec_encode(codec, values, n, residual, b->data, cap, &len, &used, err);
    if (rc == PST_OK && pst_codec_lossy(used)) {
        /* The checksum covers what the receiver will decode, not what was given. */
        rc = ensure_floats(&w->scratch, &w->scratch_cap, n);
        if (rc == PST_OK)
            rc = pst_codec_decode(used, b->data, len, w->scratch, n, err);
        hdr->checksum = pst_checksum(w->scratch, raw);
    } else if (rc == PST_OK) {
        hdr->checksum = pst_checksum(values, raw);
    }
    if (rc != PST_OK) {
        buf_unref(b);
        return rc == PST_ENOMEM ? pst_err_set(err, rc, "wire: out of memory") : rc;
    }
    hdr->codec = (Pst__Codec)used;
    hdr->wire_size = len;
    return attach(msg, b, len, err);
}

/* Encodes the keys into a pooled frame; sets key_encoding and key_signature of hdr. */
static int prepare_keys(pst_wire_t *w, Pst__Header *hdr, const uint64_t *keys, zmq_msg_t *msg,
                        size_t *len, pst_err_t *err)
{
    size_t n = (size_t)hdr->count, cap = pst_keycodec_bound(n);
    pool_buf_t *b = pool_acquire(w, cap);
    if (b == NULL)
        return pst_err_set(err, PST_ENOMEM, "wire: no memory for a %zu-byte frame", cap);
    int rc = pst_keycodec_encode(w->kc, keys, n, b->data, cap, len, &hdr->key_signature, err);
    if (rc != PST_OK) {
        buf_unref(b);
        return rc;
    }
    hdr->key_encoding = PST_WIRE_KEYS_DELTA;
    return attach(msg, b, *len, err);
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
    if (!op_known(hdr->op) || !pst_codec_known((int)hdr->codec))
        return pst_err_set(err, PST_EINVAL, "wire: op %d or codec %d unknown", hdr->op, hdr->codec);
    if (hdr->sparse && (hdr->row_width == 0 || hdr->row_width > PST_WIRE_MAX_ROW_WIDTH))
        return pst_err_set(err, PST_EINVAL, "wire: sparse row width %u", hdr->row_width);
    if (!count_fits(w, hdr))
        return pst_err_set(err, PST_EINVAL, "wire: %llu entries exceed the %llu-byte limit",
                           (unsigned long long)hdr->count, (unsigned long long)w->max_bytes);
    if (has_keys_frame(hdr) && keys == NULL)
        return pst_err_set(err, PST_EINVAL, "wire: %s needs keys", pst_wire_op_name(hdr->op));
    if (pst_wire_value_count(hdr) > 0 && values == NULL)
        return pst_err_set(err, PST_EINVAL, "wire: %s needs values", pst_wire_op_name(hdr->op));
    size_t blob_len = p ? p->blob_len : 0;
    if (blob_len > 0 && !op_carries_blob(hdr->op))
        return pst_err_set(err, PST_EINVAL, "wire: %s carries no blob", pst_wire_op_name(hdr->op));
    if (blob_len > w->max_bytes || (blob_len > 0 && p->blob == NULL))
        return pst_err_set(err, PST_EINVAL, "wire: blob of %zu bytes", blob_len);
    return PST_OK;
}

/* keys_len: bytes of the keys frame as sent (0 when none travelled). */
static void count_sent(pst_wire_t *w, const Pst__Header *hdr, size_t header_len, size_t keys_len)
{
    uint64_t keys_raw = carries_keys(hdr) ? hdr->count * sizeof(uint64_t) : 0;
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

int pst_wire_send(pst_wire_t *self, void *sock, const uint8_t *route, size_t route_len,
                  Pst__Header *hdr, const pst_wire_payload_t *payload, pst_err_t *err)
{
    int rc = check_outgoing(self, hdr, payload, err);
    size_t n_values = (size_t)pst_wire_value_count(hdr);
    bool has_keys = has_keys_frame(hdr), has_values = n_values > 0;
    if (rc != PST_OK || !has_values || hdr->codec != PST__CODEC__CODEC_RAW)
        release_unsent(payload);
    if (rc != PST_OK)
        return rc;
    zmq_msg_t keys_msg, values_msg;
    size_t keys_len = 0;
    hdr->raw_size = hdr->wire_size = 0;
    hdr->checksum = 0;
    bool has_blob = payload != NULL && payload->blob_len > 0;
    hdr->blob_size = has_blob ? payload->blob_len : 0;
    hdr->blob_checksum = has_blob ? pst_checksum(payload->blob, payload->blob_len) : 0;
    if (has_values) {
        rc = prepare_values(self, hdr, payload, n_values, &values_msg, err);
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
    size_t header_len = pst__header__get_packed_size(hdr);
    if (header_len > sizeof packed) {
        rc = pst_err_set(err, PST_EINVAL, "wire: header of %zu bytes is too large", header_len);
    } else {
        pst__header__pack(hdr, packed);
        if ((route != NULL && send_bytes(sock, route, route_len, 1) != 0) ||
            send_bytes(sock, packed, header_len, has_keys || has_values || has_blob) != 0)
            rc = send_failed(err, "header");
    }
    if (rc != PST_OK) {
        if (has_keys)
            zmq_msg_close(&keys_msg);
        if (has_values)
            zmq_msg_close(&values_msg);
        return rc;
    }
    if (has_keys && send_msg(sock, &keys_msg, has_values || has_blob) != 0) {
        rc = send_failed(err, "keys");
        if (has_values)
            zmq_msg_close(&values_msg);
        return rc;
    }
    if (has_values && send_msg(sock, &values_msg, has_blob) != 0)
        return send_failed(err, "values");
    if (has_blob && send_bytes(sock, payload->blob, payload->blob_len, 0) != 0)
        return send_failed(err, "blob");
    count_sent(self, hdr, header_len, keys_len);
    return PST_OK;
}

/* ---- receiving ---- */

void pst_wire_msg_close(pst_wire_msg_t *msg)
{
    for (int i = 0; i < msg->n_frames; i++)
        zmq_msg_close(&msg->frames[i]);
    msg->n_frames = 0;
    msg->hdr = NULL;
}

static int recv_part(zmq_msg_t *part, void *sock, int flags)
{
    zmq_msg_init(part);
    while (zmq_msg_recv(part, sock, flags) < 0) {
        if (errno != EINTR) {
            int saved = errno;
            zmq_msg_close(part);
            errno = saved;
            return -1;
        }
    }
    return 0;
}

/* Reads every part of one message; parts past PST_WIRE_MAX_FRAMES are counted and dropped. */
static int recv_frames(pst_wire_msg_t *msg, void *sock, int flags, int *extra, pst_err_t *err)
{
    *extra = 0;
    for (;;) {
        zmq_msg_t overflow,
            *part = msg->n_frames < PST_WIRE_MAX_FRAMES ? &msg->frames[msg->n_frames] : &overflow;
        if (recv_part(part, sock, msg->n_frames == 0 && *extra == 0 ? flags : 0) != 0) {
            bool nothing = errno == EAGAIN && msg->n_frames == 0;
            int code = nothing ? PST_ETIMEOUT : PST_EIO;
            if (!nothing)
                pst_err_set(err, code, "wire: receiving: %s", zmq_strerror(errno));
            pst_wire_msg_close(msg);
            return nothing ? PST_ETIMEOUT : code;
        }
        int more = zmq_msg_more(part);
        if (part == &overflow) {
            zmq_msg_close(&overflow);
            (*extra)++;
        } else {
            msg->n_frames++;
        }
        if (!more)
            return PST_OK;
    }
}

static const uint8_t *frame_data(const pst_wire_msg_t *msg, int i)
{
    return zmq_msg_data((zmq_msg_t *)&msg->frames[i]);
}

static size_t frame_size(const pst_wire_msg_t *msg, int i)
{
    return zmq_msg_size((zmq_msg_t *)&msg->frames[i]);
}

static int unpack_header(pst_wire_t *w, pst_wire_msg_t *msg, int at, pst_err_t *err)
{
    size_t len = frame_size(msg, at);
    if (len == 0 || len > PST_WIRE_MAX_HEADER)
        return pst_err_set(err, PST_EPROTO, "wire: header frame of %zu bytes", len);
    w->arena_used = 0;
    msg->hdr = pst__header__unpack(&w->alloc, len, frame_data(msg, at));
    if (msg->hdr == NULL)
        return pst_err_set(err, PST_EPROTO, "wire: header of %zu bytes does not parse", len);
    return PST_OK;
}

/* Checks the header's own fields: op, codec, counts and sizes against the limits. */
static int check_header(const pst_wire_t *w, const Pst__Header *h, pst_err_t *err)
{
    if (!op_known(h->op))
        return pst_err_set(err, PST_EPROTO, "wire: unknown op %d", (int)h->op);
    if (!pst_codec_known((int)h->codec))
        return pst_err_set(err, PST_EPROTO, "wire: unknown codec %d", (int)h->codec);
    if (h->sparse && (h->row_width == 0 || h->row_width > PST_WIRE_MAX_ROW_WIDTH))
        return pst_err_set(err, PST_EPROTO, "wire: sparse row width %u", h->row_width);
    if (!count_fits(w, h))
        return pst_err_set(err, PST_EPROTO, "wire: count %llu exceeds the %llu-byte limit",
                           (unsigned long long)h->count, (unsigned long long)w->max_bytes);
    if (!h->sparse && h->offset + h->count < h->offset)
        return pst_err_set(err, PST_EPROTO, "wire: range %llu+%llu overflows",
                           (unsigned long long)h->offset, (unsigned long long)h->count);
    if (h->raw_size > w->max_bytes || h->wire_size > w->max_bytes)
        return pst_err_set(err, PST_EPROTO, "wire: declared sizes %llu/%llu exceed %llu bytes",
                           (unsigned long long)h->raw_size, (unsigned long long)h->wire_size,
                           (unsigned long long)w->max_bytes);
    uint64_t expect = pst_wire_value_count(h) * sizeof(float);
    if (h->raw_size != expect)
        return pst_err_set(err, PST_EPROTO, "wire: %s raw_size %llu, expected %llu",
                           pst_wire_op_name(h->op), (unsigned long long)h->raw_size,
                           (unsigned long long)expect);
    if (expect == 0 && h->wire_size != 0)
        return pst_err_set(err, PST_EPROTO, "wire: %s declares %llu value bytes but has none",
                           pst_wire_op_name(h->op), (unsigned long long)h->wire_size);
    if (h->blob_size > w->max_bytes || (h->blob_size > 0 && !op_carries_blob(h->op)))
        return pst_err_set(err, PST_EPROTO, "wire: %s declares a blob of %llu bytes",
                           pst_wire_op_name(h->op), (unsigned long long)h->blob_size);
    return PST_OK;
}

static int grow_keys(pst_wire_t *w, uint64_t n, pst_err_t *err)
{
    if (w->keys_cap >= n)
        return PST_OK;
    uint64_t *grown = realloc(w->keys, n * sizeof(uint64_t));
    if (grown == NULL)
        return pst_err_set(err, PST_ENOMEM, "wire: no memory for %llu keys", (unsigned long long)n);
    w->keys = grown;
    w->keys_cap = n;
    return PST_OK;
}

/* A keys frame in common/keycodec's layout, decoded into the wire's keys; its signature must be
 * the one the header declares, since receivers remember lists by it. */
static int decode_keys(pst_wire_t *w, pst_wire_msg_t *msg, int at, pst_err_t *err)
{
    uint64_t n = msg->hdr->count, signature = 0;
    int rc = grow_keys(w, n, err);
    if (rc == PST_OK)
        rc = pst_keycodec_decode(w->kc, frame_data(msg, at), frame_size(msg, at), w->keys,
                                 (size_t)n, &signature, err);
    if (rc != PST_OK)
        return rc == PST_ENOMEM ? rc : PST_EPROTO;
    if (signature != msg->hdr->key_signature)
        return pst_err_set(err, PST_EPROTO, "wire: key list signature %016llx, header says %016llx",
                           (unsigned long long)signature,
                           (unsigned long long)msg->hdr->key_signature);
    msg->keys = w->keys;
    msg->n_keys = (size_t)n;
    return PST_OK;
}

static int check_keys(pst_wire_t *w, pst_wire_msg_t *msg, int at, pst_err_t *err)
{
    if (msg->hdr->key_encoding == PST_WIRE_KEYS_DELTA)
        return decode_keys(w, msg, at, err);
    if (msg->hdr->key_encoding != PST_WIRE_KEYS_RAW)
        return pst_err_set(err, PST_EPROTO, "wire: unknown key encoding %u",
                           msg->hdr->key_encoding);
    uint64_t n = msg->hdr->count;
    size_t len = frame_size(msg, at);
    if (len != n * sizeof(uint64_t))
        return pst_err_set(err, PST_EPROTO, "wire: keys frame of %zu bytes for %llu keys", len,
                           (unsigned long long)n);
    const uint8_t *data = frame_data(msg, at);
    const uint64_t *keys = (const uint64_t *)(const void *)data;
    if ((uintptr_t)data % _Alignof(uint64_t) != 0) {
        int rc = grow_keys(w, n, err);
        if (rc != PST_OK)
            return rc;
        memcpy(w->keys, data, len);
        keys = w->keys;
    }
    for (uint64_t i = 1; i < n; i++) {
        if (keys[i] <= keys[i - 1])
            return pst_err_set(err, PST_EPROTO, "wire: keys not sorted and unique at %llu",
                               (unsigned long long)i);
    }
    msg->keys = keys;
    msg->n_keys = n;
    return PST_OK;
}

/* The blob frame: its declared size and checksum. */
static int check_blob(pst_wire_msg_t *msg, int at, pst_err_t *err)
{
    size_t len = frame_size(msg, at);
    if (len != msg->hdr->blob_size)
        return pst_err_set(err, PST_EPROTO, "wire: blob frame of %zu bytes, declared %llu", len,
                           (unsigned long long)msg->hdr->blob_size);
    uint32_t sum = pst_checksum(frame_data(msg, at), len);
    if (sum != msg->hdr->blob_checksum)
        return pst_err_set(err, PST_EPROTO, "wire: blob checksum %08x, header says %08x", sum,
                           msg->hdr->blob_checksum);
    msg->blob = frame_data(msg, at);
    msg->blob_len = len;
    return PST_OK;
}

static int validate(pst_wire_t *w, pst_wire_msg_t *msg, int extra, pst_err_t *err)
{
    int at = w->role == PST_WIRE_ROUTER ? 1 : 0;
    if (msg->n_frames <= at)
        return pst_err_set(err, PST_EPROTO, "wire: message of %d frames has no header",
                           msg->n_frames);
    if (at == 1) {
        msg->route = frame_data(msg, 0);
        msg->route_len = frame_size(msg, 0);
    }
    int rc = unpack_header(w, msg, at, err);
    if (rc == PST_OK)
        rc = check_header(w, msg->hdr, err);
    if (rc != PST_OK)
        return rc;
    bool has_keys = has_keys_frame(msg->hdr), has_blob = has_blob_frame(msg->hdr);
    msg->n_values = (size_t)pst_wire_value_count(msg->hdr);
    int expect = at + 1 + (has_keys ? 1 : 0) + (msg->n_values > 0 ? 1 : 0) + (has_blob ? 1 : 0);
    if (msg->n_frames + extra != expect)
        return pst_err_set(err, PST_EPROTO, "wire: %s with %d frames, expected %d",
                           pst_wire_op_name(msg->hdr->op), msg->n_frames + extra, expect);
    if (has_keys && (rc = check_keys(w, msg, at + 1, err)) != PST_OK)
        return rc;
    if (msg->n_values > 0) {
        msg->values_frame = expect - 1 - (has_blob ? 1 : 0);
        size_t len = frame_size(msg, msg->values_frame);
        if (len != msg->hdr->wire_size)
            return pst_err_set(err, PST_EPROTO, "wire: values frame of %zu bytes, declared %llu",
                               len, (unsigned long long)msg->hdr->wire_size);
    }
    return has_blob ? check_blob(msg, expect - 1, err) : PST_OK;
}

static void count_received(pst_wire_t *w, const pst_wire_msg_t *msg)
{
    size_t wire = 0;
    for (int i = w->role == PST_WIRE_ROUTER ? 1 : 0; i < msg->n_frames; i++)
        wire += frame_size(msg, i);
    w->stats.messages_received++;
    w->stats.bytes_wire_received += wire;
    uint64_t keys_raw = carries_keys(msg->hdr) ? msg->hdr->count * sizeof(uint64_t) : 0;
    w->stats.bytes_raw_received += keys_raw + msg->hdr->raw_size + msg->hdr->blob_size;
}

int pst_wire_recv(pst_wire_t *self, void *sock, pst_wire_msg_t *msg, int flags, pst_err_t *err)
{
    msg->hdr = NULL;
    msg->route = NULL;
    msg->route_len = 0;
    msg->keys = NULL;
    msg->n_keys = 0;
    msg->n_values = 0;
    msg->n_frames = 0;
    msg->values_frame = -1;
    msg->blob = NULL;
    msg->blob_len = 0;
    int extra = 0;
    int rc = recv_frames(msg, sock, flags, &extra, err);
    if (rc != PST_OK)
        return rc;
    rc = validate(self, msg, extra, err);
    if (rc != PST_OK) {
        self->stats.bad_frames++;
        pst_wire_msg_close(msg);
        return rc;
    }
    count_received(self, msg);
    return PST_OK;
}

static int verify_checksum(pst_wire_t *w, const Pst__Header *h, const void *raw, pst_err_t *err)
{
    uint32_t sum = pst_checksum(raw, h->raw_size);
    if (sum == h->checksum)
        return PST_OK;
    w->stats.bad_frames++;
    return pst_err_set(err, PST_EPROTO, "wire: %s checksum %08x, header says %08x",
                       pst_wire_op_name(h->op), sum, h->checksum);
}

int pst_wire_decode(pst_wire_t *self, const pst_wire_msg_t *msg, float *dst, pst_err_t *err)
{
    if (msg->n_values == 0)
        return PST_OK;
    const Pst__Header *h = msg->hdr;
    int rc = pst_codec_decode((pst_codec_t)h->codec, frame_data(msg, msg->values_frame),
                              frame_size(msg, msg->values_frame), dst, msg->n_values, err);
    if (rc != PST_OK) {
        self->stats.bad_frames++;
        if (err != NULL)
            pst_err_prefix(err, rc, "wire: %s values: ", pst_wire_op_name(h->op));
        return PST_EPROTO;
    }
    return verify_checksum(self, h, dst, err);
}

int pst_wire_view(pst_wire_t *self, const pst_wire_msg_t *msg, const float **values, pst_err_t *err)
{
    *values = NULL;
    if (msg->n_values == 0)
        return PST_OK;
    const uint8_t *data = frame_data(msg, msg->values_frame);
    if (msg->hdr->codec == PST__CODEC__CODEC_RAW &&
        frame_size(msg, msg->values_frame) == msg->hdr->raw_size &&
        (uintptr_t)data % _Alignof(float) == 0) {
        *values = (const float *)(const void *)data;
        return verify_checksum(self, msg->hdr, data, err);
    }
    if (ensure_floats(&self->view, &self->view_cap, msg->n_values) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "wire: no memory for %zu values", msg->n_values);
    int rc = pst_wire_decode(self, msg, self->view, err);
    *values = self->view;
    return rc;
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
