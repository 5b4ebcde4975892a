/* Codec internals shared by the codec's files: byte order, the int8 layout size, quantisers. */
#ifndef PST_COMMON_NET_CODEC_INTERNAL_H
#define PST_COMMON_NET_CODEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/net/codec.h"

/* ---- byte order: every multi-byte value on the wire is little-endian ---- */
static inline bool pst_codec_host_is_le(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static inline uint32_t pst_codec_float_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline float pst_codec_bits_float(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline void pst_codec_store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t pst_codec_load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline void pst_codec_store_le32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static inline uint32_t pst_codec_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t pst_codec_load_le64(const uint8_t *p)
{
    uint64_t v;
    if (pst_codec_host_is_le()) {
        memcpy(&v, p, sizeof v);
        return v;
    }
    v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* Size of the int8 layout of n floats: a float32 scale per block, then one byte per float. */
static inline size_t pst_codec_int8_size(size_t n)
{
    return n + sizeof(float) * ((n + PST_CODEC_INT8_BLOCK - 1) / PST_CODEC_INT8_BLOCK);
}

/* pst_checksum by the portable loop alone, whatever the CPU offers: the reference the
 * vectorised loop must match bit for bit. */
uint32_t pst_checksum_portable(const void *data, size_t len);

/* ---- quantisers (codec_quant.c). Encoders quantise src + residual (residual may be NULL) and
 * leave in residual what the quantisation lost; they fail with PST_ENUMERIC when a value is not
 * finite (or, for fp16 with feedback, would not stay finite). ---- */
int pst_codec_fp16_encode(const float *src, size_t n, float *residual, uint8_t *dst);
void pst_codec_fp16_decode(const uint8_t *src, size_t n, float *dst);
int pst_codec_int8_encode(const float *src, size_t n, float *residual, uint8_t *dst);
int pst_codec_int8_decode(const uint8_t *src, float *dst, size_t n, pst_err_t *err);

#endif
