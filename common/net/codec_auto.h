/* Automatic codec choice: per tensor, compress a payload only when the link time it saves exceeds
 * the encoding and decoding time it costs, from measured ratios, codec speeds and link speed. */
#ifndef PST_COMMON_NET_CODEC_AUTO_H
#define PST_COMMON_NET_CODEC_AUTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net/codec.h"

#define PST_CODEC_AUTO_N_CANDIDATES                                                                \
    2                                 /* lossless compressors tried against raw: lz4, lz4shuffle   \
                                       */
#define PST_CODEC_AUTO_WARMUP 3       /* payloads probed after a (re)start */
#define PST_CODEC_AUTO_RECHECK 32     /* then one payload in this many */
#define PST_CODEC_AUTO_DRIFT 0.25     /* a probe whose ratio moves this much (relative) restarts */
#define PST_CODEC_AUTO_MARGIN 0.10    /* compress only when it saves this share of the raw time */
#define PST_CODEC_AUTO_MIN_BYTES 4096 /* smaller payloads always travel raw */

/* Why the current choice was made. */
typedef enum {
    PST_CODEC_AUTO_WHY_WARMUP = 0, /* no measurement yet: raw */
    PST_CODEC_AUTO_WHY_NO_LINK,    /* codec measured, link speed not yet: raw */
    PST_CODEC_AUTO_WHY_PAYS,       /* the compressor saves more link time than it costs */
    PST_CODEC_AUTO_WHY_NO_GAIN,    /* no compressor saves enough: raw */
    PST_CODEC_AUTO_WHY_SMALL,      /* payloads under PST_CODEC_AUTO_MIN_BYTES: raw */
} pst_codec_auto_why_t;

/* What is known of one compressor on this tensor's payloads. */
typedef struct pst_codec_auto_est {
    pst_codec_t codec;
    bool measured;
    double ratio;      /* encoded bytes / raw bytes */
    double encode_bps; /* raw bytes encoded per second */
    double decode_bps; /* raw bytes decoded per second */
} pst_codec_auto_est_t;

/* The choice for one tensor in one direction. Embedded by value; no allocation. */
typedef struct pst_codec_auto {
    pst_codec_t chosen;
    pst_codec_auto_why_t why;
    uint64_t payloads;   /* payloads seen */
    bool small;          /* the last payload was under PST_CODEC_AUTO_MIN_BYTES */
    uint64_t probes;     /* probes since the last (re)start */
    uint64_t next_probe; /* payload number of the next probe after warm-up */
    uint64_t restarts;   /* warm-ups started again because a ratio drifted */
    uint64_t decisions;  /* times the choice changed */
    double link_bps;     /* bytes per second the link carries; 0 until measured */
    pst_codec_auto_est_t est[PST_CODEC_AUTO_N_CANDIDATES];
} pst_codec_auto_t;

void pst_codec_auto_init(pst_codec_auto_t *a);

/* Called once per payload before it is sent: whether to measure the compressors on it (warm-up,
 * then every PST_CODEC_AUTO_RECHECK payloads). raw_bytes: the payload's size. */
bool pst_codec_auto_begin(pst_codec_auto_t *a, size_t raw_bytes);

/* A measurement of one compressor (encode and decode of some payload bytes). A ratio that drifted
 * by more than PST_CODEC_AUTO_DRIFT from the estimate restarts the warm-up. */
void pst_codec_auto_observe_codec(pst_codec_auto_t *a, pst_codec_t codec, double ratio,
                                  double encode_bps, double decode_bps);

/* A measurement of the link: bytes per second a send moved. */
void pst_codec_auto_observe_link(pst_codec_auto_t *a, double bps);

/* Re-decides from what is known and returns the codec the payload should travel in. */
pst_codec_t pst_codec_auto_decide(pst_codec_auto_t *a);

/* The estimate behind the current choice: the chosen compressor's, or the best rejected one's
 * (NULL when none is measured). */
const pst_codec_auto_est_t *pst_codec_auto_best(const pst_codec_auto_t *a);

/* Seconds per raw byte of sending through codec c: link time of its bytes plus its encode and
 * decode time (raw: link time alone). Infinite when c is unmeasured or the link unknown. */
double pst_codec_auto_cost(const pst_codec_auto_t *a, pst_codec_t c);

const char *pst_codec_auto_why_name(pst_codec_auto_why_t why);

#endif
