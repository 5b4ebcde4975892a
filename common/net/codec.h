/* Payload codecs for float32 tensors on the wire: raw, LZ4, LZ4 over byte-shuffled floats, fp16,
 * int8 with per-block scales, and LZ4 over int8. Every decoder bounds-checks its input. */
#ifndef PST_COMMON_NET_CODEC_H
#define PST_COMMON_NET_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Values match pst.Codec in proto/pstrain.proto. */
typedef enum {
    PST_CODEC_RAW = 0,
    PST_CODEC_LZ4 = 1,
    PST_CODEC_LZ4_SHUFFLE = 2,
    PST_CODEC_FP16 = 3,
    PST_CODEC_INT8 = 4,
    PST_CODEC_INT8_LZ4 = 5,
    /* Not a layout: asks the sender to pick raw or a lossless compressor per tensor
     * (common/net/codec_auto.h). Valid in a send request and in a PULL's header (the server
     * then picks for its reply); never in a values frame, so pst_codec_known refuses it. */
    PST_CODEC_AUTO = 6,
} pst_codec_t;

#define PST_CODEC_INT8_BLOCK 256 /* floats per int8 scale block */

/* Names: raw, lz4, lz4shuffle, fp16, int8, int8lz4, and auto (PST_CODEC_AUTO). */
int pst_codec_parse(const char *name, pst_codec_t *codec);
const char *pst_codec_name(pst_codec_t codec);

/* Whether codec (a value off the wire, say) is one of the codecs above. */
bool pst_codec_known(int codec);

/* Whether decoding may give other floats than were encoded (fp16, int8, int8lz4). */
bool pst_codec_lossy(pst_codec_t codec);

/* Upper bound on the encoded size of n floats. */
size_t pst_codec_bound(pst_codec_t codec, size_t n);

/* Encodes src (n floats) into dst (capacity dst_cap >= pst_codec_bound). *used receives the codec
 * actually applied: LZ4 and LZ4-shuffle fall back to PST_CODEC_RAW, and int8lz4 to
 * PST_CODEC_INT8, when compression does not shrink the payload. For lossy codecs, residual (n
 * floats, or NULL) carries error feedback: src + residual is encoded and residual is set to what
 * the quantisation lost. */
int pst_codec_encode(pst_codec_t codec, const float *src, size_t n, float *residual, uint8_t *dst,
                     size_t dst_cap, size_t *dst_len, pst_codec_t *used, pst_err_t *err);

/* Decodes exactly n floats from src_len bytes into dst. Fails with PST_EPROTO (never crashes)
 * when the input is truncated, oversized, corrupt, or decodes to other than n floats. */
int pst_codec_decode(pst_codec_t codec, const uint8_t *src, size_t src_len, float *dst, size_t n,
                     pst_err_t *err);

/* Checksum of a byte buffer, carried in the wire header. */
uint32_t pst_checksum(const void *data, size_t len);

/* Copies len bytes from src to dst (not overlapping) and returns pst_checksum of them, reading
 * src once: a received raw payload is checked on its way to the caller's array. */
uint32_t pst_checksum_copy(void *dst, const void *src, size_t len);

#endif
