/* Wire side of the automatic codec choice: a table of choices per tensor and direction, probes of
 * the compressors on a sample of the payload, and the link speed from timed frame releases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/net/wire_internal.h"

#define MIN_TIMED_BYTES (64 * 1024) /* smaller frames leave at once into socket buffers */

static long long now_ns(void)
{
    /* +1: 0 marks a frame not yet released. */
    return (long long)(pst_clock_seconds() * 1e9) + 1;
}

/* ---- the table ---- */

static size_t find_entry(pst_wire_t *w, const Pst__Header *h)
{
    for (size_t i = 0; i < w->n_autos; i++) {
        const pst_wire_auto_entry_t *e = &w->autos[i];
        if (e->model_id == h->model_id && e->tensor_id == h->tensor_id && e->op == (int)h->op)
            return i;
    }
    if (w->n_autos == w->autos_cap) {
        size_t cap = w->autos_cap ? 2 * w->autos_cap : 8;
        pst_wire_auto_entry_t *grown = realloc(w->autos, cap * sizeof *grown);
        if (grown == NULL)
            return SIZE_MAX;
        w->autos = grown;
        w->autos_cap = cap;
    }
    pst_wire_auto_entry_t *e = &w->autos[w->n_autos];
    memset(e, 0, sizeof *e);
    e->model_id = h->model_id;
    e->tensor_id = h->tensor_id;
    e->op = (int)h->op;
    pst_codec_auto_init(&e->choice);
    return w->n_autos++;
}

/* ---- probes ---- */

static int probe_buffers(pst_wire_t *w)
{
    size_t need = pst_codec_bound(PST_CODEC_LZ4, PST_WIRE_AUTO_SAMPLE);
    size_t shuffled = pst_codec_bound(PST_CODEC_LZ4_SHUFFLE, PST_WIRE_AUTO_SAMPLE);
    need = shuffled > need ? shuffled : need;
    if (w->probe_enc_cap < need) {
        uint8_t *grown = realloc(w->probe_enc, need);
        if (grown == NULL)
            return PST_ENOMEM;
        w->probe_enc = grown;
        w->probe_enc_cap = need;
    }
    if (w->probe_back == NULL)
        w->probe_back = malloc(PST_WIRE_AUTO_SAMPLE * sizeof(float));
    return w->probe_back != NULL ? PST_OK : PST_ENOMEM;
}

/* Encodes and decodes a sample of the values with each compressor, timing both. The sample moves
 * along the payload from one probe to the next, so a tensor whose parts differ is seen whole. */
static void probe(pst_wire_t *w, pst_wire_auto_entry_t *e, const float *values, size_t n)
{
    if (probe_buffers(w) != PST_OK)
        return;
    size_t m = n < PST_WIRE_AUTO_SAMPLE ? n : PST_WIRE_AUTO_SAMPLE;
    size_t at = e->sample_at + m <= n ? e->sample_at : 0;
    e->sample_at = at + m < n ? at + m : 0;
    double raw = (double)(m * sizeof(float));
    for (int k = 0; k < PST_CODEC_AUTO_N_CANDIDATES; k++) {
        pst_codec_t codec = e->choice.est[k].codec, used = codec;
        size_t len = 0;
        double t0 = pst_clock_seconds();
        if (pst_codec_encode(codec, values + at, m, NULL, w->probe_enc, w->probe_enc_cap, &len,
                             &used, NULL) != PST_OK)
            continue;
        double t1 = pst_clock_seconds();
        if (pst_codec_decode(used, w->probe_enc, len, w->probe_back, m, NULL) != PST_OK)
            continue;
        double t2 = pst_clock_seconds();
        /* A clock tick is the floor of a duration, so tiny samples do not read as infinitely
         * fast. */
        double enc = fmax(t1 - t0, 1e-7), dec = fmax(t2 - t1, 1e-7);
        pst_codec_auto_observe_codec(&e->choice, codec, (double)len / raw, raw / enc, raw / dec);
    }
}

/* ---- timed frames ---- */

static void track_unref(pst_wire_track_t *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        free(t);
}

/* Called by ZeroMQ, possibly on its I/O thread. */
static void track_release(void *data, void *hint)
{
    pst_wire_track_rec_t *r = hint;
    pst_wire_track_t *ring = r->ring;
    if (r->release != NULL)
        r->release(data, r->hint);
    atomic_store_explicit(&r->done_ns, now_ns(), memory_order_release);
    track_unref(ring);
}

/* Feeds the link time of every released frame, oldest first, to its entry. A frame is busy on the
 * link from its send or its predecessor's release, whichever is later, to its own release. */
static void harvest(pst_wire_t *w)
{
    pst_wire_track_t *t = w->track;
    while (t->tail < t->head) {
        pst_wire_track_rec_t *r = &t->rec[t->tail % PST_WIRE_TRACK_SLOTS];
        long long done = atomic_load_explicit(&r->done_ns, memory_order_acquire);
        if (done == 0)
            return;
        t->tail++;
        if (r->entry >= w->n_autos)
            continue;
        pst_wire_auto_entry_t *e = &w->autos[r->entry];
        long long start = r->sent_ns > e->last_done_ns ? r->sent_ns : e->last_done_ns;
        e->last_done_ns = done;
        if (r->bytes >= MIN_TIMED_BYTES && done > start)
            pst_codec_auto_observe_link(&e->choice,
                                        (double)r->bytes * 1e9 / (double)(done - start));
    }
}

int pst_wire_auto_wrap(pst_wire_t *w, size_t entry, zmq_msg_t *msg, void *data, size_t len,
                       void (*release)(void *data, void *hint), void *hint, pst_err_t *err)
{
    pst_wire_track_t *t = w->track;
    bool timed = entry != SIZE_MAX && t != NULL && t->head - t->tail < PST_WIRE_TRACK_SLOTS;
    int rc;
    if (timed) {
        pst_wire_track_rec_t *r = &t->rec[t->head % PST_WIRE_TRACK_SLOTS];
        atomic_store_explicit(&r->done_ns, 0, memory_order_relaxed);
        r->sent_ns = now_ns();
        r->bytes = len;
        r->entry = entry;
        r->release = release;
        r->hint = hint;
        r->ring = t;
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        rc = zmq_msg_init_data(msg, data, len, track_release, r);
        if (rc == 0) {
            t->head++;
            return PST_OK;
        }
        atomic_fetch_sub_explicit(&t->refs, 1, memory_order_relaxed);
    } else {
        rc = zmq_msg_init_data(msg, data, len, release, hint);
        if (rc == 0)
            return PST_OK;
    }
    if (release != NULL)
        release(data, hint);
    return pst_err_set(err, PST_ENOMEM, "wire: cannot wrap a %zu-byte frame", len);
}

pst_codec_t pst_wire_auto_pick(pst_wire_t *w, const Pst__Header *hdr, const float *values, size_t n,
                               size_t *entry)
{
    *entry = SIZE_MAX;
    if (w->track == NULL) {
        w->track = calloc(1, sizeof *w->track);
        if (w->track == NULL)
            return PST_CODEC_RAW;
        atomic_init(&w->track->refs, 1);
    }
    harvest(w);
    size_t i = find_entry(w, hdr);
    if (i == SIZE_MAX)
        return PST_CODEC_RAW;
    pst_wire_auto_entry_t *e = &w->autos[i];
    if (pst_codec_auto_begin(&e->choice, n * sizeof(float)))
        probe(w, e, values, n);
    *entry = i;
    return pst_codec_auto_decide(&e->choice);
}

void pst_wire_auto_fini(pst_wire_t *w)
{
    free(w->autos);
    free(w->probe_enc);
    free(w->probe_back);
    if (w->track != NULL)
        track_unref(w->track);
    w->autos = NULL;
    w->track = NULL;
}

/* ---- what was chosen ---- */

void pst_wire_auto_choices_at(const pst_wire_t *self, size_t i, pst_wire_auto_choice_t *out)
{
    const pst_wire_auto_entry_t *e = &self->autos[i];
    const pst_codec_auto_est_t *best = pst_codec_auto_best(&e->choice);
    *out = (pst_wire_auto_choice_t){
        .model_id = e->model_id,
        .tensor_id = e->tensor_id,
        .op = e->op,
        .chosen = e->choice.chosen,
        .why = e->choice.why,
        .candidate = best ? best->codec : PST_CODEC_RAW,
        .ratio = best ? best->ratio : NAN,
        .encode_bps = best ? best->encode_bps : NAN,
        .decode_bps = best ? best->decode_bps : NAN,
        .link_bps = e->choice.link_bps > 0 ? e->choice.link_bps : NAN,
        .payloads = e->choice.payloads,
        .decisions = e->choice.decisions,
    };
}

size_t pst_wire_auto_choices(const pst_wire_t *self, pst_wire_auto_choice_t *out, size_t cap)
{
    for (size_t i = 0; i < self->n_autos && i < cap; i++)
        pst_wire_auto_choices_at(self, i, &out[i]);
    return self->n_autos;
}
