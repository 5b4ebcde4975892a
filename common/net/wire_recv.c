/* Wire receiving: reading a message's frames and validating its header, keys, blob and values. */
#include "common/net/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/net/codec.h"
#include "common/net/wire_internal.h"

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

static const uint8_t *frame_data(const pst_wire_msg_t *msg, int i)
{
    return zmq_msg_data((zmq_msg_t *)&msg->frames[i]);
}

static size_t frame_size(const pst_wire_msg_t *msg, int i)
{
    return zmq_msg_size((zmq_msg_t *)&msg->frames[i]);
}

static int unpack_header(pst_wire_t *w, pst_wire_msg_t *msg, int at, pst_err_t *err);

/* Frames a message with this header has after its header frame. */
static int frames_after_header(const Pst__Header *h)
{
    return (pst_wire_has_keys_frame(h) ? 1 : 0) + (pst_wire_value_count(h) > 0 ? 1 : 0) +
           (pst_wire_has_blob_frame(h) ? 1 : 0);
}

/* The frames of one message so far end where a header announcing PST_WIRE_FLAG_MORE says this
 * message ends (the next frames are the next message's); its header is unpacked here then. */
static bool coalesced_end(pst_wire_t *w, pst_wire_msg_t *msg, int at)
{
    if (msg->n_frames <= at)
        return false;
    if (msg->hdr == NULL && (frame_size(msg, at) == 0 || unpack_header(w, msg, at, NULL) != PST_OK))
        return false;
    return (msg->hdr->flags & PST_WIRE_FLAG_MORE) &&
           msg->n_frames == at + 1 + frames_after_header(msg->hdr);
}

/* After a message announcing PST_WIRE_FLAG_MORE: the next frame, already arrived, is either the
 * empty frame that ends the ZeroMQ message (read and dropped) or the next message's header,
 * kept for it; in_open says which. */
static int read_ahead(pst_wire_t *w, void *sock, pst_err_t *err)
{
    if (recv_part(&w->in_next, sock, 0) != 0)
        return pst_err_set(err, PST_EIO, "wire: receiving: %s", zmq_strerror(errno));
    if (zmq_msg_size(&w->in_next) == 0 && !zmq_msg_more(&w->in_next)) {
        zmq_msg_close(&w->in_next);
        return PST_OK;
    }
    w->in_open = true;
    return PST_OK;
}

/* A coalesced message's first frames: the routing frame of the ZeroMQ message it travels in
 * (ROUTER) and the header frame read ahead. */
static void continue_message(pst_wire_t *w, pst_wire_msg_t *msg, int at)
{
    if (at == 1) {
        zmq_msg_init(&msg->frames[0]);
        zmq_msg_copy(&msg->frames[0], &w->in_route);
    }
    zmq_msg_init(&msg->frames[at]);
    zmq_msg_move(&msg->frames[at], &w->in_next);
    zmq_msg_close(&w->in_next);
    msg->n_frames = at + 1;
}

/* Reads the parts of one message: a whole ZeroMQ message, or one of the messages coalesced in it.
 * Parts past PST_WIRE_MAX_FRAMES are counted and dropped. */
static int recv_frames(pst_wire_t *w, pst_wire_msg_t *msg, void *sock, int flags, int *extra,
                       pst_err_t *err)
{
    int at = w->role == PST_WIRE_ROUTER ? 1 : 0;
    *extra = 0;
    if (w->in_open) {
        w->in_open = false;
        continue_message(w, msg, at);
        if (!zmq_msg_more(&msg->frames[at]))
            return PST_OK;
        if (coalesced_end(w, msg, at))
            return read_ahead(w, sock, err);
    }
    for (;;) {
        zmq_msg_t overflow,
            *part = msg->n_frames < PST_WIRE_MAX_FRAMES ? &msg->frames[msg->n_frames] : &overflow;
        bool first = msg->n_frames == 0 && *extra == 0;
        if (recv_part(part, sock, first ? flags : 0) != 0) {
            bool nothing = errno == EAGAIN && first;
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
        if (more && *extra == 0 && coalesced_end(w, msg, at))
            return read_ahead(w, sock, err);
        if (!more)
            return PST_OK;
    }
}

/* ROUTER: the routing frame of a ZeroMQ message whose next coalesced message is still to read. */
static void keep_route(pst_wire_t *w, const pst_wire_msg_t *msg)
{
    if (w->in_route_kept)
        zmq_msg_close(&w->in_route);
    zmq_msg_init(&w->in_route);
    zmq_msg_copy(&w->in_route, (zmq_msg_t *)&msg->frames[0]);
    w->in_route_kept = true;
}

/* Reads and drops the rest of a ZeroMQ message whose coalesced messages can no longer be trusted.
 */
static void drain_rest(pst_wire_t *w, void *sock)
{
    int more = w->in_open && zmq_msg_more(&w->in_next);
    if (w->in_open)
        zmq_msg_close(&w->in_next);
    w->in_open = false;
    while (more) {
        zmq_msg_t part;
        if (recv_part(&part, sock, 0) != 0)
            return;
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
    }
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
    if (!pst_wire_op_known(h->op))
        return pst_err_set(err, PST_EPROTO, "wire: unknown op %d", (int)h->op);
    /* auto names no layout: only a PULL may carry it, asking the server to choose. */
    if (!pst_codec_known((int)h->codec) &&
        !((int)h->codec == PST_CODEC_AUTO && h->op == PST__OP__OP_PULL))
        return pst_err_set(err, PST_EPROTO, "wire: unknown codec %d", (int)h->codec);
    if (h->sparse && (h->row_width == 0 || h->row_width > PST_WIRE_MAX_ROW_WIDTH))
        return pst_err_set(err, PST_EPROTO, "wire: sparse row width %u", h->row_width);
    if (!pst_wire_count_fits(w, h))
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
    if (h->blob_size > w->max_bytes || (h->blob_size > 0 && !pst_wire_op_carries_blob(h->op)))
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

/* A keys frame in common/net/keycodec's layout, decoded into the wire's keys; its signature must be
 * the one the header declares, since receivers remember lists by it. */
static int decode_keys(pst_wire_t *w, pst_wire_msg_t *msg, int at, pst_err_t *err)
{
    uint64_t n = msg->hdr->count, signature = 0;
    /* Before the keys are allocated: the frame must be able to hold the count declared. */
    if (n > pst_keycodec_max_keys(frame_data(msg, at), frame_size(msg, at)))
        return pst_err_set(err, PST_EPROTO, "wire: %llu keys declared in a keys frame of %zu bytes",
                           (unsigned long long)n, frame_size(msg, at));
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
    int rc = msg->hdr != NULL ? PST_OK : unpack_header(w, msg, at, err);
    if (rc == PST_OK)
        rc = check_header(w, msg->hdr, err);
    if (rc != PST_OK)
        return rc;
    bool has_keys = pst_wire_has_keys_frame(msg->hdr), has_blob = pst_wire_has_blob_frame(msg->hdr);
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
    uint64_t keys_raw = pst_wire_carries_keys(msg->hdr) ? msg->hdr->count * sizeof(uint64_t) : 0;
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
    int extra = 0, at = self->role == PST_WIRE_ROUTER ? 1 : 0;
    int rc = recv_frames(self, msg, sock, flags, &extra, err);
    if (rc != PST_OK) {
        pst_wire_msg_close(msg);
        drain_rest(self, sock);
        return rc;
    }
    rc = validate(self, msg, extra, err);
    if (rc != PST_OK) {
        self->stats.bad_frames++;
        pst_wire_msg_close(msg);
        drain_rest(self, sock);
        return rc;
    }
    if (self->in_open && at == 1)
        keep_route(self, msg);
    msg->hdr->flags &= ~PST_WIRE_FLAG_MORE; /* the wire's own */
    count_received(self, msg);
    return PST_OK;
}

bool pst_wire_in_open(const pst_wire_t *self)
{
    return self->in_open;
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

/* A raw values frame is copied and checksummed in one pass. */
static int decode_raw(pst_wire_t *w, const pst_wire_msg_t *msg, float *dst, pst_err_t *err)
{
    const Pst__Header *h = msg->hdr;
    size_t len = frame_size(msg, msg->values_frame);
    if (len != h->raw_size) {
        w->stats.bad_frames++;
        return pst_err_set(err, PST_EPROTO,
                           "wire: %s values: raw payload of %zu bytes, expected %llu",
                           pst_wire_op_name(h->op), len, (unsigned long long)h->raw_size);
    }
    uint32_t sum = pst_checksum_copy(dst, frame_data(msg, msg->values_frame), len);
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
    if (h->codec == PST__CODEC__CODEC_RAW)
        return decode_raw(self, msg, dst, err);
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
    if (pst_wire_ensure_floats(&self->view, &self->view_cap, msg->n_values) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "wire: no memory for %zu values", msg->n_values);
    int rc = pst_wire_decode(self, msg, self->view, err);
    *values = self->view;
    return rc;
}
