/* Lossy codecs: fp16 and int8 with per-block scales, both with error feedback. */
#include "common/net/codec_internal.h"

#include <float.h>
#include <math.h>

#define INT8_MAX_Q 127.0f
#define FP16_OVERFLOW 65520.0f /* smallest magnitude that rounds to infinity in binary16 */

/* Branch-free, so random rounding directions cost no mispredictions. Relies on the default
 * round-to-nearest-even mode of float addition for the subnormal case. */
static inline uint16_t half_from_float(float value)
{
    uint32_t bits = pst_codec_float_bits(value);
    uint32_t sign = (bits >> 16) & 0x8000u;
    uint32_t magnitude = bits & 0x7fffffffu;
    /* Normal halves: rebias the exponent by 127 - 15 and drop 13 mantissa bits, adding just under
     * half a unit plus the kept lowest bit so that ties go to even; a carry rolls into the
     * exponent, up to infinity (0x7c00). Wraps harmlessly when magnitude is below the range. */
    uint32_t normal = (magnitude - 0x38000000u + 0xfffu + ((magnitude >> 13) & 1u)) >> 13;
    normal = normal > 0x7c00u ? 0x7c00u : normal;
    /* Subnormal halves (|value| < 2^-14): adding 0.5, whose float unit is 2^-24, makes the
     * hardware round the value to a multiple of 2^-24 and leaves the count in the low bits. */
    uint32_t subnormal = pst_codec_float_bits(pst_codec_bits_float(magnitude) + 0.5f) - 0x3f000000u;
    uint32_t half = magnitude < 0x38800000u ? subnormal : normal;
    /* NaN stays a quiet NaN with the top of its payload; infinity fell out of `normal` above. */
    uint32_t nan = 0x7e00u | ((magnitude >> 13) & 0x3ffu);
    return (uint16_t)(sign | (magnitude > 0x7f800000u ? nan : half));
}

static inline float float_from_half(uint16_t half)
{
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t magnitude = half & 0x7fffu;
    /* Infinity or NaN: widen the exponent to all ones and keep the payload. */
    float special = pst_codec_bits_float(sign | 0x7f800000u | (magnitude & 0x3ffu) << 13);
    /* Normal and subnormal halves alike: the bits placed in a float read as the value times
     * 2^-112, which one exact multiplication undoes. */
    float finite = pst_codec_bits_float(sign | magnitude << 13) * 0x1p112f;
    return magnitude >= 0x7c00u ? special : finite;
}

/* Error feedback needs every src + residual to be finite and to stay finite in binary16. */
static bool fp16_feedback_in_range(const float *src, const float *residual, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok &= fabsf(src[i] + residual[i]) < FP16_OVERFLOW;
    return ok;
}

int pst_codec_fp16_encode(const float *src, size_t n, float *residual, uint8_t *dst)
{
    if (residual == NULL) {
        for (size_t i = 0; i < n; i++)
            pst_codec_store_le16(dst + 2 * i, half_from_float(src[i]));
        return PST_OK;
    }
    if (!fp16_feedback_in_range(src, residual, n))
        return PST_ENUMERIC;
    for (size_t i = 0; i < n; i++) {
        float value = src[i] + residual[i];
        uint16_t half = half_from_float(value);
        pst_codec_store_le16(dst + 2 * i, half);
        residual[i] = value - float_from_half(half);
    }
    return PST_OK;
}

void pst_codec_fp16_decode(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_from_half(pst_codec_load_le16(src + 2 * i));
}

/* ---- int8 ---- */

static bool int8_input_finite(const float *src, const float *residual, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok &= fabsf(residual ? src[i] + residual[i] : src[i]) <= FLT_MAX;
    return ok;
}

/* Rounds r to the nearest integer in [-127, 127], ties to even. Adding and removing 1.5 * 2^23
 * does the rounding in the FPU's default mode without a libm call. */
static inline int8_t int8_round(float r)
{
    const float round_magic = 0x1.8p23f;
    r = r > INT8_MAX_Q ? INT8_MAX_Q : (r < -INT8_MAX_Q ? -INT8_MAX_Q : r);
    return (int8_t)((r + round_magic) - round_magic);
}

/* Quantises count finite values into out (scale, then count int8) and returns the scale. */
static float int8_quantise_block(const float *v, size_t count, uint8_t *out)
{
    float max_abs = 0.0f;
    for (size_t j = 0; j < count; j++) {
        float a = fabsf(v[j]);
        max_abs = a > max_abs ? a : max_abs;
    }
    float scale = max_abs / INT8_MAX_Q;
    pst_codec_store_le32(out, pst_codec_float_bits(scale));
    int8_t *q = (int8_t *)(out + sizeof(float));
    if (scale >= FLT_MIN) { /* the usual case: a reciprocal replaces the division */
        float inverse = 1.0f / scale;
        for (size_t j = 0; j < count; j++)
            q[j] = int8_round(v[j] * inverse);
    } else if (scale > 0.0f) { /* subnormal scale: the reciprocal could overflow */
        for (size_t j = 0; j < count; j++)
            q[j] = int8_round(v[j] / scale);
    } else { /* all zero, or too small for a nonzero float scale */
        memset(q, 0, count);
    }
    return scale;
}

int pst_codec_int8_encode(const float *src, size_t n, float *residual, uint8_t *dst)
{
    if (!int8_input_finite(src, residual, n))
        return PST_ENUMERIC;
    float sum[PST_CODEC_INT8_BLOCK];
    for (size_t start = 0; start < n; start += PST_CODEC_INT8_BLOCK) {
        size_t count = n - start < PST_CODEC_INT8_BLOCK ? n - start : PST_CODEC_INT8_BLOCK;
        const float *v = src + start;
        if (residual != NULL) {
            for (size_t j = 0; j < count; j++)
                sum[j] = src[start + j] + residual[start + j];
            v = sum;
        }
        float scale = int8_quantise_block(v, count, dst);
        const int8_t *q = (const int8_t *)(dst + sizeof(float));
        if (residual != NULL) {
            for (size_t j = 0; j < count; j++)
                residual[start + j] = v[j] - (float)q[j] * scale;
        }
        dst += sizeof(float) + count;
    }
    return PST_OK;
}

int pst_codec_int8_decode(const uint8_t *src, float *dst, size_t n, pst_err_t *err)
{
    for (size_t start = 0; start < n; start += PST_CODEC_INT8_BLOCK) {
        size_t count = n - start < PST_CODEC_INT8_BLOCK ? n - start : PST_CODEC_INT8_BLOCK;
        float scale = pst_codec_bits_float(pst_codec_load_le32(src));
        if (!(scale >= 0.0f && scale <= FLT_MAX))
            return pst_err_set(err, PST_EPROTO, "int8 block at float %zu: bad scale %g", start,
                               (double)scale);
        const int8_t *q = (const int8_t *)(src + sizeof(float));
        for (size_t j = 0; j < count; j++)
            dst[start + j] = (float)q[j] * scale;
        src += sizeof(float) + count;
    }
    return PST_OK;
}
