/* Fuzz target: one wire message as frames (pst_fuzz_split_frames), received through pst_wire_recv
 * and decoded. Whatever the wire accepts must be self-consistent: keys sorted, value counts as the
 * header declares, decoding within bounds. */
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/net/wire.h"
#include "fuzz/fuzz.h"

enum { MAX_FRAMES = 6, MAX_BYTES = 1 << 20 };

typedef struct pipe_pair {
    void *ctx, *tx, *rx;
    pst_wire_t *wire;
} pipe_pair_t;

static pipe_pair_t *pipes(void)
{
    static pipe_pair_t p;
    if (p.ctx != NULL)
        return &p;
    p.ctx = zmq_ctx_new();
    p.tx = zmq_socket(p.ctx, ZMQ_PAIR);
    p.rx = zmq_socket(p.ctx, ZMQ_PAIR);
    pst_fuzz_check(p.ctx && p.tx && p.rx, "sockets");
    int timeout = 2000;
    zmq_setsockopt(p.rx, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    p.wire = pst_wire_new(PST_WIRE_DEALER, MAX_BYTES, NULL);
    pst_fuzz_check(p.wire != NULL, "wire");
    pst_fuzz_check(zmq_bind(p.rx, "inproc://fuzz-wire") == 0, "bind");
    pst_fuzz_check(zmq_connect(p.tx, "inproc://fuzz-wire") == 0, "connect");
    return &p;
}

static void check_accepted(pipe_pair_t *p, pst_wire_msg_t *msg)
{
    const Pst__Header *h = msg->hdr;
    pst_fuzz_check(h != NULL, "an accepted message has a header");
    pst_fuzz_check(msg->n_values == pst_wire_value_count(h), "value count as declared");
    pst_fuzz_check(msg->n_values * sizeof(float) <= MAX_BYTES, "values within the wire's limit");
    if (msg->keys != NULL) {
        pst_fuzz_check(msg->n_keys == h->count, "key count as declared");
        for (size_t i = 1; i < msg->n_keys; i++)
            pst_fuzz_check(msg->keys[i] > msg->keys[i - 1], "keys strictly increase");
    }
    if (msg->n_values == 0)
        return;
    float *dst = malloc(msg->n_values * sizeof *dst);
    pst_fuzz_check(dst != NULL, "allocation");
    int rc = pst_wire_decode(p->wire, msg, dst, NULL);
    pst_fuzz_check(rc == PST_OK || rc == PST_EPROTO, "decode fails only with PST_EPROTO");
    const float *view = NULL;
    int rc_view = pst_wire_view(p->wire, msg, &view, NULL);
    pst_fuzz_check(rc_view == rc, "view and decode agree");
    if (rc == PST_OK)
        pst_fuzz_check(memcmp(view, dst, msg->n_values * sizeof *dst) == 0, "view equals decode");
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pst_fuzz_frame_t frames[MAX_FRAMES];
    int n = pst_fuzz_split_frames(data, size, frames, MAX_FRAMES, NULL);
    if (n == 0)
        return 0;
    pipe_pair_t *p = pipes();
    for (int i = 0; i < n; i++) {
        int more = i + 1 < n ? ZMQ_SNDMORE : 0;
        pst_fuzz_check(pst_fuzz_zmq_send(p->tx, frames[i].data, frames[i].len, more) ==
                           (int)frames[i].len,
                       "send frame");
    }
    pst_wire_msg_t msg;
    pst_err_t err = {0};
    int rc = pst_wire_recv(p->wire, p->rx, &msg, 0, &err);
    pst_fuzz_check(rc == PST_OK || rc == PST_EPROTO, "recv fails only with PST_EPROTO");
    if (rc == PST_OK) {
        check_accepted(p, &msg);
        pst_wire_msg_close(&msg);
    }
    return 0;
}
