/* Wire framing: one request is one multipart ZeroMQ message, validated in full on receipt. */
#ifndef PST_COMMON_NET_WIRE_H
#define PST_COMMON_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "common/net/codec.h"
#include "common/net/codec_auto.h"
#include "common/err.h"
#include "pstrain.pb-c.h"

/* A message on the wire, after the routing frame a ROUTER adds or strips:
 *   frame 0  pst.Header, protobuf-packed (at most PST_WIRE_MAX_HEADER bytes)
 *   frame 1  keys: header.count strictly increasing uint64 keys in header.key_encoding:
 *            PST_WIRE_KEYS_RAW (uint64 little-endian) or PST_WIRE_KEYS_DELTA (common/net/keycodec,
 *            what pst_wire_send writes; header.key_signature is then the list's signature)
 *            (only for sparse PUSH and PULL with count > 0, and absent when header.flags has
 *            PST_WIRE_FLAG_KEYS_CACHED: header.key_signature then names one of the
 *            PST_WIRE_KEY_LISTS lists the sender last sent in full for that tensor, which the
 *            receiver resolves itself)
 *   frame 2  values: header.wire_size bytes in header.codec, decoding to header.raw_size bytes
 *            = count floats (dense) or count * row_width floats (sparse), whose checksum is
 *            header.checksum (only for PUSH, PULL_REPLY, INIT, FED_TASK, FED_UPDATE and FED_DONE
 *            with count > 0)
 *   frame 3  blob: header.blob_size opaque bytes whose checksum is header.blob_checksum (only
 *            FED_WELCOME with blob_size > 0: the federated model contract; BARRIER with
 *            blob_size > 0: a reduction's doubles, common/net/reduce_layout.h)
 * Frames that do not apply are absent, not empty. No other frame may follow, except when
 * header.flags has PST_WIRE_FLAG_MORE: then the ZeroMQ message goes on with the header frame of
 * another message to or from the same peer (no routing frame again), or with one empty frame that
 * ends it. Coalesced so, several requests (or replies) cost the sockets and their I/O threads one
 * message: one wake-up and one write instead of one each. */

#define PST_WIRE_MAX_BYTES_DEFAULT (1ull << 30) /* largest values or keys frame accepted */
#define PST_WIRE_MAX_HEADER 4096                /* largest packed header */
#define PST_WIRE_MAX_ROW_WIDTH (1u << 20)       /* largest sparse row, in floats */
#define PST_WIRE_MAX_ERROR_TEXT 1024            /* error texts are cut to this many bytes */
#define PST_WIRE_MAX_FRAMES 6 /* routing + header + keys + values + blob + 1 extra */

/* header.flags */
#define PST_WIRE_FLAG_STALE 1u /* ACK: the push was for a clock already applied; it was dropped */
#define PST_WIRE_FLAG_KEYS_CACHED 2u /* sparse PUSH/PULL: no keys frame; see key_signature */
#define PST_WIRE_FLAG_DECLINED 4u    /* FED_UPDATE: no update (count 0); the reason is in error */
/* PUSH: answer only a refusal (ERROR) or a stale push (ACK with FLAG_STALE); an applied push gets
 * no ACK. Requests of one worker are handled in the order sent, so anything the worker sends later
 * still sees the push applied. */
#define PST_WIRE_FLAG_NO_ACK 8u
/* Set by a coalescing wire: another message follows in the same ZeroMQ message (see
 * pst_wire_set_coalesce). */
#define PST_WIRE_FLAG_MORE 16u

/* Key lists a receiver remembers per sender and tensor: the last ones sent in full, each new one
 * replacing the oldest. Four, so that a worker prefetching up to three batches' pulls (new lists)
 * before pushing the current batch (the list before them) still names the push's keys. */
#define PST_WIRE_KEY_LISTS 4

/* header.key_encoding */
#define PST_WIRE_KEYS_RAW 0u   /* uint64 little-endian */
#define PST_WIRE_KEYS_DELTA 1u /* common/net/keycodec: delta varints, LZ4 when it shrinks them */

typedef enum { PST_WIRE_DEALER = 0, PST_WIRE_ROUTER = 1 } pst_wire_role_t;

/* Counters of one wire. "raw" counts keys (8 bytes each, whether their frame travelled or a
 * signature stood for it) plus decoded values; "wire" counts every byte of the header, keys and
 * values frames as they travel. */
typedef struct pst_wire_stats {
    uint64_t messages_sent, messages_received;
    uint64_t bytes_raw_sent, bytes_wire_sent;
    uint64_t bytes_raw_received, bytes_wire_received;
    uint64_t bad_frames; /* messages rejected with PST_EPROTO */
} pst_wire_stats_t;

typedef struct pst_wire pst_wire_t;

/* One received message. hdr and keys live in the wire's own buffers and stay valid until the next
 * pst_wire_recv on the same wire; the frames stay valid until pst_wire_msg_close. */
typedef struct pst_wire_msg {
    Pst__Header *hdr;
    const uint8_t *route; /* ROUTER: the sender's identity; NULL on a DEALER */
    size_t route_len;
    const uint64_t *keys; /* sparse PUSH/PULL: hdr->count sorted unique keys; else NULL, and
                           * NULL with n_keys 0 when pst_wire_keys_cached(hdr): the receiver
                           * points keys at its remembered list */
    size_t n_keys;
    size_t n_values; /* floats in the values frame once decoded; 0 when there is none */
    zmq_msg_t frames[PST_WIRE_MAX_FRAMES];
    int n_frames;
    int values_frame;    /* index in frames, or -1 */
    const uint8_t *blob; /* FED_WELCOME: the blob frame (checksum verified), else NULL */
    size_t blob_len;
} pst_wire_msg_t;

/* A wire serves one socket from one thread. max_bytes = 0 means PST_WIRE_MAX_BYTES_DEFAULT.
 * Caller owns the result. Destroy it after the socket is closed or after every message sent
 * through it has left (pool buffers still held by ZeroMQ are freed when ZeroMQ lets go). */
pst_wire_t *pst_wire_new(pst_wire_role_t role, uint64_t max_bytes, pst_err_t *err);
void pst_wire_destroy(pst_wire_t **self_p);

/* Applies the wire's limits to a socket (ZMQ_MAXMSGSIZE), so hostile peers cannot make ZeroMQ
 * buffer oversized frames. */
int pst_wire_prepare_socket(pst_wire_t *self, void *sock, pst_err_t *err);

/* What a message carries besides its header. keys: sparse PUSH/PULL, hdr->count keys. values:
 * PUSH, PULL_REPLY, INIT, count (dense) or count * row_width (sparse) floats. residual: error
 * feedback for lossy codecs (same length as values) or NULL.
 * lend: with the raw codec the values are sent without a copy. release(values, hint) is then
 * called exactly once: by ZeroMQ, possibly on its I/O thread, when it no longer reads them, or
 * right away when the values were not sent as they are (another codec, a failed send). A NULL
 * release means the caller knows the values outlive the send (for example until the peer's
 * answer) and stay unchanged until then. Without lend, values are copied into a pooled buffer. */
typedef struct pst_wire_payload {
    const uint64_t *keys;
    const float *values;
    float *residual;
    bool lend;
    void (*release)(void *data, void *hint);
    void *hint;
    bool checksum_known; /* checksum is pst_checksum of the values, already computed */
    uint32_t checksum;
    const uint8_t *blob; /* FED_WELCOME: opaque bytes sent as they are (copied by ZeroMQ) */
    size_t blob_len;
} pst_wire_payload_t;

/* A frame of n floats from the wire's pool, for the values of one message sent through this
 * wire: written in place (gathered rows, say) and sent without a copy. Sets payload->values,
 * lend, release and hint; pst_wire_send hands the frame back to the pool once ZeroMQ is done with
 * it (at once when another codec encodes it). A payload never given to pst_wire_send must be given
 * back with payload->release(payload->values, payload->hint). NULL (err set) when out of memory. */
float *pst_wire_values_frame(pst_wire_t *self, size_t n, pst_wire_payload_t *payload,
                             pst_err_t *err);

/* Sends one message. The caller fills hdr (op, ids, offset, count, clock, sender, seq, sparse,
 * row_width, lr, ...) and sets hdr->codec to the codec wanted for the values; the wire sets
 * codec (the one applied), raw_size, wire_size and checksum. payload may be NULL when the op
 * carries nothing. route: the peer's identity on a ROUTER, NULL on a DEALER.
 * Keys: with PST_WIRE_FLAG_KEYS_CACHED in hdr->flags the caller sets hdr->key_signature and no
 * keys travel (payload->keys may be NULL); else the wire encodes payload->keys with
 * common/net/keycodec and sets key_encoding and key_signature.
 * Payload buffers come from a pool that ZeroMQ hands back after sending: no allocation once the
 * pool has grown to the number of messages in flight. */
int pst_wire_send(pst_wire_t *self, void *sock, const uint8_t *route, size_t route_len,
                  Pst__Header *hdr, const pst_wire_payload_t *payload, pst_err_t *err);

/* Receives one whole message and validates its structure: frame count, header, op, codec, sizes
 * and keys. flags: 0 (block) or ZMQ_DONTWAIT (PST_ETIMEOUT when nothing is waiting). A malformed
 * message is drained, counted in bad_frames and answered with PST_EPROTO and a message; the
 * socket is ready for the next one. On PST_OK call pst_wire_decode (if n_values > 0) and then
 * pst_wire_msg_close. */
int pst_wire_recv(pst_wire_t *self, void *sock, pst_wire_msg_t *msg, int flags, pst_err_t *err);

/* Decodes the values frame into dst (msg->n_values floats) and checks the checksum. A codec
 * failure or checksum mismatch counts as a bad frame and returns PST_EPROTO (dst then holds
 * garbage). */
int pst_wire_decode(pst_wire_t *self, const pst_wire_msg_t *msg, float *dst, pst_err_t *err);

/* Like pst_wire_decode, but *values points at the raw frame itself when it needs no decoding
 * (raw codec, aligned), else at the wire's own scratch; valid until pst_wire_msg_close or the next
 * view on this wire. */
int pst_wire_view(pst_wire_t *self, const pst_wire_msg_t *msg, const float **values,
                  pst_err_t *err);

/* Releases the frames of msg. Safe twice. */
void pst_wire_msg_close(pst_wire_msg_t *msg);

void pst_wire_stats(const pst_wire_t *self, pst_wire_stats_t *out);

/* Coalescing: while on, pst_wire_send leaves the ZeroMQ message open (PST_WIRE_FLAG_MORE), so that
 * the next messages to the same peer travel in it; pst_wire_flush ends it and hands it to ZeroMQ's
 * I/O thread. A ROUTER ends it by itself before a message to another peer. The caller must flush
 * before it waits for anything the messages held back cause (an answer, a release of lent
 * values). Receiving needs no switch: every wire reads coalesced messages one at a time. */
void pst_wire_set_coalesce(pst_wire_t *self, bool on);
/* Ends the open ZeroMQ message, if any (one empty frame). */
int pst_wire_flush(pst_wire_t *self, void *sock, pst_err_t *err);
/* Whether the last message received has another after it in the same ZeroMQ message (already
 * arrived: reading it does not block). */
bool pst_wire_in_open(const pst_wire_t *self);

/* ---- automatic codec choice: a header with codec PST_CODEC_AUTO has its values sent raw or
 * compressed as the tensor's measurements decide (common/net/codec_auto.h) ---- */

/* One tensor's choice in one direction (op: PUSH, PULL_REPLY, ...) on this wire, and why. */
typedef struct pst_wire_auto_choice {
    uint32_t model_id, tensor_id;
    int op;
    pst_codec_t chosen;
    pst_codec_auto_why_t why;
    pst_codec_t candidate;         /* the best compressor measured (raw when none) */
    double ratio;                  /* its encoded / raw bytes; NaN when not measured */
    double encode_bps, decode_bps; /* its speeds, raw bytes per second; NaN when not measured */
    double link_bps;               /* the link, bytes per second; NaN when not measured */
    uint64_t payloads;             /* payloads sent under auto */
    uint64_t decisions;            /* times the choice changed */
} pst_wire_auto_choice_t;

/* Copies up to cap choices into out and returns how many the wire holds. */
size_t pst_wire_auto_choices(const pst_wire_t *self, pst_wire_auto_choice_t *out, size_t cap);
/* Choice i (< pst_wire_auto_choices(self, NULL, 0)). */
void pst_wire_auto_choices_at(const pst_wire_t *self, size_t i, pst_wire_auto_choice_t *out);

/* ---- placement: which server holds what; both sides call these same pure functions ---- */

/* The contiguous range of a dense tensor of n elements that server s of n_servers owns: the first
 * n % S servers hold ceil(n / S) elements, the others floor(n / S); ranges are in server order. */
void pst_wire_shard_range(uint64_t n, uint32_t n_servers, uint32_t server, uint64_t *offset,
                          uint64_t *len);
/* A fixed, seeded 64-bit mix (a bijection): the hash of sparse keys. */
uint64_t pst_wire_key_hash(uint64_t key);
/* The server that owns a sparse key: hash(key) % n_servers. */
uint32_t pst_wire_key_server(uint64_t key, uint32_t n_servers);

/* ---- STATS: a server's counters travel in header.counters in this order ---- */
enum {
    PST_STAT_MESSAGES,       /* messages received */
    PST_STAT_BAD_FRAMES,     /* messages dropped as malformed */
    PST_STAT_BYTES_RAW_IN,   /* keys and decoded values received */
    PST_STAT_BYTES_WIRE_IN,  /* bytes of header, keys and values frames received */
    PST_STAT_BYTES_RAW_OUT,  /* the same, sent */
    PST_STAT_BYTES_WIRE_OUT, /* */
    PST_STAT_PUSHES,         /* pushes accepted */
    PST_STAT_PULLS,          /* pulls answered */
    PST_STAT_UPDATES,        /* optimizer steps applied (per tensor slice) */
    PST_STAT_ERRORS,         /* requests refused with an ERROR reply */
    PST_STAT_STALE_PUSHES,   /* BSP pushes for a clock already applied, dropped */
    PST_STAT_DEAD_WORKERS,   /* workers declared dead */
    PST_STAT_CHECKPOINTS,    /* checkpoints written */
    PST_STAT_TENSORS,        /* tensor slices held */
    PST_STAT_SPARSE_ROWS,    /* sparse rows held */
    PST_STAT_STORE_BYTES,    /* bytes the store allocated: values, optimizer state, keys, tables */
    PST_STAT_PEAK_RSS,       /* the server process's peak resident set size, bytes */
    PST_STAT_PUSH_US,        /* microseconds spent on pushes: receive, decode, apply, reply */
    PST_STAT_PULL_US,        /* microseconds spent on pulls: receive, gather, encode, reply */
    PST_STAT_NONFINITE,      /* pushes refused for a NaN or infinite value */
    PST_STAT_SPOOFED,        /* requests naming another worker than the authenticated one */
    PST_STAT_CONTRACT,       /* INITs refused: outside the model contract, or a changed shape */
    PST_STAT_COUNT
};

/* Whether a message with this header names its keys by signature instead of a keys frame. */
bool pst_wire_keys_cached(const Pst__Header *hdr);

/* Floats the values frame of a message with this header carries (0 when the op carries none). */
uint64_t pst_wire_value_count(const Pst__Header *hdr);
const char *pst_wire_op_name(int op);

/* The endpoint a socket is bound to (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:41234". */
int pst_wire_last_endpoint(void *sock, char *buf, size_t len, pst_err_t *err);

#endif
