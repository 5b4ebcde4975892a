/* Automatic codec choice: the cost model and the schedule of measurements (no I/O, no clocks). */
#include "common/net/codec_auto.h"

#include <math.h>
#include <string.h>

#define LINK_WEIGHT 0.25 /* weight of a new link measurement in the running estimate */
#define CODEC_WEIGHT 0.5 /* the same for a codec measurement that did not drift */

static const pst_codec_t candidates[PST_CODEC_AUTO_N_CANDIDATES] = {PST_CODEC_LZ4,
                                                                    PST_CODEC_LZ4_SHUFFLE};

void pst_codec_auto_init(pst_codec_auto_t *a)
{
    memset(a, 0, sizeof *a);
    a->chosen = PST_CODEC_RAW;
    a->why = PST_CODEC_AUTO_WHY_WARMUP;
    for (int k = 0; k < PST_CODEC_AUTO_N_CANDIDATES; k++)
        a->est[k].codec = candidates[k];
}

bool pst_codec_auto_begin(pst_codec_auto_t *a, size_t raw_bytes)
{
    a->payloads++;
    a->small = raw_bytes < PST_CODEC_AUTO_MIN_BYTES;
    if (a->small)
        return false;
    if (a->probes < PST_CODEC_AUTO_WARMUP || a->payloads >= a->next_probe) {
        a->probes++;
        a->next_probe = a->payloads + PST_CODEC_AUTO_RECHECK;
        return true;
    }
    return false;
}

static pst_codec_auto_est_t *find_est(pst_codec_auto_t *a, pst_codec_t codec)
{
    for (int k = 0; k < PST_CODEC_AUTO_N_CANDIDATES; k++) {
        if (a->est[k].codec == codec)
            return &a->est[k];
    }
    return NULL;
}

static double blend(double old, double new, double weight)
{
    return old + weight * (new - old);
}

/* The data changed: forget every compressor's estimate and measure the next payloads again. */
static void restart(pst_codec_auto_t *a)
{
    for (int k = 0; k < PST_CODEC_AUTO_N_CANDIDATES; k++)
        a->est[k].measured = false;
    a->probes = 0;
    a->restarts++;
}

void pst_codec_auto_observe_codec(pst_codec_auto_t *a, pst_codec_t codec, double ratio,
                                  double encode_bps, double decode_bps)
{
    pst_codec_auto_est_t *e = find_est(a, codec);
    if (e == NULL || !(ratio >= 0) || !(encode_bps > 0) || !(decode_bps > 0))
        return;
    if (e->measured && fabs(ratio - e->ratio) > PST_CODEC_AUTO_DRIFT * e->ratio) {
        restart(a);
        /* This probe already counts as the first of the new warm-up. */
        a->probes = 1;
    }
    if (!e->measured) {
        *e = (pst_codec_auto_est_t){codec, true, ratio, encode_bps, decode_bps};
        return;
    }
    e->ratio = blend(e->ratio, ratio, CODEC_WEIGHT);
    e->encode_bps = blend(e->encode_bps, encode_bps, CODEC_WEIGHT);
    e->decode_bps = blend(e->decode_bps, decode_bps, CODEC_WEIGHT);
}

void pst_codec_auto_observe_link(pst_codec_auto_t *a, double bps)
{
    if (!(bps > 0) || isinf(bps))
        return;
    a->link_bps = a->link_bps > 0 ? blend(a->link_bps, bps, LINK_WEIGHT) : bps;
}

double pst_codec_auto_cost(const pst_codec_auto_t *a, pst_codec_t c)
{
    if (!(a->link_bps > 0))
        return INFINITY;
    if (c == PST_CODEC_RAW)
        return 1.0 / a->link_bps;
    for (int k = 0; k < PST_CODEC_AUTO_N_CANDIDATES; k++) {
        const pst_codec_auto_est_t *e = &a->est[k];
        if (e->codec == c && e->measured)
            return e->ratio / a->link_bps + 1.0 / e->encode_bps + 1.0 / e->decode_bps;
    }
    return INFINITY;
}

const pst_codec_auto_est_t *pst_codec_auto_best(const pst_codec_auto_t *a)
{
    const pst_codec_auto_est_t *best = NULL;
    for (int k = 0; k < PST_CODEC_AUTO_N_CANDIDATES; k++) {
        const pst_codec_auto_est_t *e = &a->est[k];
        if (!e->measured)
            continue;
        if (best == NULL || (a->link_bps > 0 ? pst_codec_auto_cost(a, e->codec) <
                                                   pst_codec_auto_cost(a, best->codec)
                                             : e->ratio < best->ratio))
            best = e;
    }
    return best;
}

static pst_codec_auto_why_t choose(const pst_codec_auto_t *a, pst_codec_t *codec)
{
    *codec = PST_CODEC_RAW;
    if (a->small)
        return PST_CODEC_AUTO_WHY_SMALL;
    const pst_codec_auto_est_t *best = pst_codec_auto_best(a);
    if (best == NULL)
        return PST_CODEC_AUTO_WHY_WARMUP;
    if (!(a->link_bps > 0))
        return PST_CODEC_AUTO_WHY_NO_LINK;
    double raw = pst_codec_auto_cost(a, PST_CODEC_RAW);
    if (pst_codec_auto_cost(a, best->codec) >= (1.0 - PST_CODEC_AUTO_MARGIN) * raw)
        return PST_CODEC_AUTO_WHY_NO_GAIN;
    *codec = best->codec;
    return PST_CODEC_AUTO_WHY_PAYS;
}

pst_codec_t pst_codec_auto_decide(pst_codec_auto_t *a)
{
    pst_codec_t codec;
    a->why = choose(a, &codec);
    if (codec != a->chosen)
        a->decisions++;
    a->chosen = codec;
    return codec;
}

const char *pst_codec_auto_why_name(pst_codec_auto_why_t why)
{
    switch (why) {
    case PST_CODEC_AUTO_WHY_WARMUP:
        return "not measured yet";
    case PST_CODEC_AUTO_WHY_NO_LINK:
        return "link speed not measured yet";
    case PST_CODEC_AUTO_WHY_PAYS:
        return "compression saves more link time than it costs";
    case PST_CODEC_AUTO_WHY_NO_GAIN:
        return "compression costs more time than it saves";
    case PST_CODEC_AUTO_WHY_SMALL:
        return "payloads too small to gain";
    }
    return "unknown";
}
