/* Payload codecs for float32 tensors on the wire, and the checksum carried in the wire header. */
#include "common/net/codec.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

/* Wire layouts; every multi-byte value is little-endian.
 *   raw         n float32
 *   lz4         one LZ4 block holding the raw layout
 *   lz4shuffle  one LZ4 block holding 4 planes of n bytes: plane k is byte k of every float32
 *   fp16        n IEEE binary16
 *   int8        per block of up to PST_CODEC_INT8_BLOCK floats: float32 scale = max|x| / 127, then
 *               one int8 q per float; the value is q * scale
 *   int8lz4     one LZ4 block holding the int8 layout (zero-heavy payloads quantise to runs of
 *               zero bytes, which LZ4 collapses)
 * Every layout's size is exact given n, except those of LZ4 blocks, which must decode to exactly
 * the size of the layout they hold (4n bytes, or the int8 layout's size). */

#define INT8_MAX_Q 127.0f
#define FP16_OVERFLOW 65520.0f /* smallest magnitude that rounds to infinity in binary16 */

static const struct {
    pst_codec_t codec;
    const char *name;
    bool lossy;
} codec_table[] = {
    {PST_CODEC_RAW, "raw", false},
    {PST_CODEC_LZ4, "lz4", false},
    {PST_CODEC_LZ4_SHUFFLE, "lz4shuffle", false},
    {PST_CODEC_FP16, "fp16", true},
    {PST_CODEC_INT8, "int8", true},
    {PST_CODEC_INT8_LZ4, "int8lz4", true},
};
#define N_CODECS (sizeof codec_table / sizeof codec_table[0])

int pst_codec_parse(const char *name, pst_codec_t *codec)
{
    for (size_t i = 0; name != NULL && i < N_CODECS; i++) {
        if (strcmp(name, codec_table[i].name) == 0) {
            *codec = codec_table[i].codec;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

/* The table row of codec, or -1. */
static int codec_index(int codec)
{
    for (size_t i = 0; i < N_CODECS; i++) {
        if ((int)codec_table[i].codec == codec)
            return (int)i;
    }
    return -1;
}

const char *pst_codec_name(pst_codec_t codec)
{
    int i = codec_index((int)codec);
    return i < 0 ? "unknown" : codec_table[i].name;
}

bool pst_codec_known(int codec)
{
    return codec_index(codec) >= 0;
}

bool pst_codec_lossy(pst_codec_t codec)
{
    int i = codec_index((int)codec);
    return i >= 0 && codec_table[i].lossy;
}

/* ---- byte order ---- */

static bool host_is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static uint32_t float_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static float bits_float(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static void store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    if (host_is_little_endian()) {
        memcpy(&v, p, sizeof v);
        return v;
    }
    v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* ---- sizes ---- */

static size_t int8_encoded_size(size_t n)
{
    return n + sizeof(float) * ((n + PST_CODEC_INT8_BLOCK - 1) / PST_CODEC_INT8_BLOCK);
}

size_t pst_codec_bound(pst_codec_t codec, size_t n)
{
    if (n > SIZE_MAX / sizeof(float))
        return SIZE_MAX;
    switch (codec) {
    case PST_CODEC_RAW:
    case PST_CODEC_LZ4: /* compressed output is kept only when smaller than raw */
    case PST_CODEC_LZ4_SHUFFLE:
        return n * sizeof(float);
    case PST_CODEC_FP16:
        return n * sizeof(uint16_t);
    case PST_CODEC_INT8:
    case PST_CODEC_INT8_LZ4: /* compressed output is kept only when smaller than int8 */
        return int8_encoded_size(n);
    }
    return SIZE_MAX;
}

/* ---- per-thread scratch ---- */

/* The intermediate image of a payload (shuffled planes, the int8 layout) lives in a per-thread
 * buffer that grows on demand and is kept between calls, so steady-state encoding allocates
 * nothing; it is freed when the thread exits. */
typedef struct scratch {
    uint8_t *buf;
    size_t cap;
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_free(void *p)
{
    scratch_t *s = p;
    free(s->buf);
    free(s);
}

static void scratch_key_create(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* A buffer of at least len bytes owned by the calling thread, or NULL when out of memory. */
static uint8_t *scratch_reserve(size_t len)
{
    pthread_once(&scratch_once, scratch_key_create);
    if (!scratch_key_ok)
        return NULL;
    scratch_t *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (len > s->cap) {
        size_t cap = len > s->cap + s->cap / 2 ? len : s->cap + s->cap / 2;
        uint8_t *buf = malloc(cap);
        if (buf == NULL)
            return NULL;
        free(s->buf);
        s->buf = buf;
        s->cap = cap;
    }
    return s->buf;
}

/* ---- raw ---- */

static void raw_encode(const float *src, size_t n, uint8_t *dst)
{
    if (host_is_little_endian()) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        store_le32(dst + 4 * i, float_bits(src[i]));
}

/* In-place safe: dst may alias src. */
static void raw_decode(const uint8_t *src, size_t n, float *dst)
{
    if (host_is_little_endian()) {
        memmove(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = bits_float(load_le32(src + 4 * i));
}

/* ---- byte shuffle ---- */

/* src: n floats → dst: 4 planes of n bytes, plane k holding byte k (little-endian) of each. */
static void shuffle_planes(const float *src, size_t n, uint8_t *dst)
{
    uint8_t *p0 = dst, *p1 = dst + n, *p2 = dst + 2 * n, *p3 = dst + 3 * n;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = float_bits(src[i]);
        p0[i] = (uint8_t)bits;
        p1[i] = (uint8_t)(bits >> 8);
        p2[i] = (uint8_t)(bits >> 16);
        p3[i] = (uint8_t)(bits >> 24);
    }
}

static void unshuffle_planes(const uint8_t *src, size_t n, float *dst)
{
    const uint8_t *p0 = src, *p1 = src + n, *p2 = src + 2 * n, *p3 = src + 3 * n;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits =
            (uint32_t)p0[i] | (uint32_t)p1[i] << 8 | (uint32_t)p2[i] << 16 | (uint32_t)p3[i] << 24;
        dst[i] = bits_float(bits);
    }
}

/* ---- LZ4 ---- */

/* Compresses len bytes into dst when the result is strictly smaller than len; returns the
 * compressed size, or 0 when it does not pay (the caller then sends the uncompressed layout). */
static size_t lz4_compress_smaller(const uint8_t *src, size_t len, uint8_t *dst)
{
    if (len == 0 || len > LZ4_MAX_INPUT_SIZE)
        return 0;
    int packed = LZ4_compress_default((const char *)src, (char *)dst, (int)len, (int)len - 1);
    return packed > 0 ? (size_t)packed : 0;
}

/* Puts into dst the LZ4 block of image (len bytes) when that is smaller, else image itself; sets
 * *dst_len and returns whether it compressed. */
static bool lz4_pack_or_copy(const uint8_t *image, size_t len, uint8_t *dst, size_t *dst_len)
{
    size_t packed = lz4_compress_smaller(image, len, dst);
    *dst_len = packed ? packed : len;
    if (!packed && len > 0)
        memcpy(dst, image, len);
    return packed > 0;
}

/* Whether a block of src_len bytes decoding to len bytes is within what LZ4 handles. */
static int lz4_sizes_ok(size_t src_len, size_t len, pst_err_t *err)
{
    if (src_len > INT_MAX || len > LZ4_MAX_INPUT_SIZE)
        return pst_err_set(err, PST_EPROTO, "lz4 payload of %zu bytes for %zu: too large", src_len,
                           len);
    return PST_OK;
}

/* Decompresses src into exactly len bytes of dst. */
static int lz4_decompress_exact(const uint8_t *src, size_t src_len, uint8_t *dst, size_t len,
                                pst_err_t *err)
{
    int rc = lz4_sizes_ok(src_len, len, err);
    if (rc != PST_OK)
        return rc;
    uint8_t empty;
    int got = LZ4_decompress_safe((const char *)src, (char *)(len ? dst : &empty), (int)src_len,
                                  (int)len);
    if (got < 0 || (size_t)got != len)
        return pst_err_set(err, PST_EPROTO,
                           "lz4 payload of %zu bytes is corrupt or does not "
                           "decode to %zu bytes",
                           src_len, len);
    return PST_OK;
}

static int lz4_encode(const float *src, size_t n, uint8_t *dst, size_t *dst_len, pst_codec_t *used)
{
    size_t len = n * sizeof(float);
    const uint8_t *image = (const uint8_t *)src;
    if (!host_is_little_endian() && len > 0) {
        uint8_t *tmp = scratch_reserve(len);
        if (tmp == NULL)
            return PST_ENOMEM;
        raw_encode(src, n, tmp);
        image = tmp;
    }
    *used = lz4_pack_or_copy(image, len, dst, dst_len) ? PST_CODEC_LZ4 : PST_CODEC_RAW;
    return PST_OK;
}

/* Decompresses src into exactly len bytes of the calling thread's scratch, returned in *image.
 * Sizes LZ4 cannot handle are refused before any scratch is reserved for them. */
static int lz4_decompress_scratch(pst_codec_t codec, const uint8_t *src, size_t src_len, size_t len,
                                  const uint8_t **image, pst_err_t *err)
{
    int rc = lz4_sizes_ok(src_len, len, err);
    if (rc != PST_OK)
        return rc;
    uint8_t *buf = scratch_reserve(len ? len : 1);
    if (buf == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: no scratch for %zu bytes", pst_codec_name(codec),
                           len);
    *image = buf;
    return lz4_decompress_exact(src, src_len, buf, len, err);
}

static int lz4_decode(const uint8_t *src, size_t src_len, float *dst, size_t n, pst_err_t *err)
{
    int rc = lz4_decompress_exact(src, src_len, (uint8_t *)dst, n * sizeof(float), err);
    if (rc == PST_OK && !host_is_little_endian())
        raw_decode((const uint8_t *)dst, n, dst);
    return rc;
}

static int lz4_shuffle_encode(const float *src, size_t n, uint8_t *dst, size_t *dst_len,
                              pst_codec_t *used)
{
    size_t len = n * sizeof(float), packed = 0;
    if (n > 0 && len <= LZ4_MAX_INPUT_SIZE) {
        uint8_t *planes = scratch_reserve(len);
        if (planes == NULL)
            return PST_ENOMEM;
        shuffle_planes(src, n, planes);
        packed = lz4_compress_smaller(planes, len, dst);
    }
    *used = packed ? PST_CODEC_LZ4_SHUFFLE : PST_CODEC_RAW;
    *dst_len = packed ? packed : len;
    if (!packed)
        raw_encode(src, n, dst);
    return PST_OK;
}

static int lz4_shuffle_decode(const uint8_t *src, size_t src_len, float *dst, size_t n,
                              pst_err_t *err)
{
    const uint8_t *planes = NULL;
    int rc = lz4_decompress_scratch(PST_CODEC_LZ4_SHUFFLE, src, src_len, n * sizeof(float), &planes,
                                    err);
    if (rc == PST_OK)
        unshuffle_planes(planes, n, dst);
    return rc;
}

/* ---- fp16 ---- */

/* Branch-free, so random rounding directions cost no mispredictions. Relies on the default
 * round-to-nearest-even mode of float addition for the subnormal case. */
static inline uint16_t half_from_float(float value)
{
    uint32_t bits = float_bits(value);
    uint32_t sign = (bits >> 16) & 0x8000u;
    uint32_t magnitude = bits & 0x7fffffffu;
    /* Normal halves: rebias the exponent by 127 - 15 and drop 13 mantissa bits, adding just under
     * half a unit plus the kept lowest bit so that ties go to even; a carry rolls into the
     * exponent, up to infinity (0x7c00). Wraps harmlessly when magnitude is below the range. */
    uint32_t normal = (magnitude - 0x38000000u + 0xfffu + ((magnitude >> 13) & 1u)) >> 13;
    normal = normal > 0x7c00u ? 0x7c00u : normal;
    /* Subnormal halves (|value| < 2^-14): adding 0.5, whose float unit is 2^-24, makes the
     * hardware round the value to a multiple of 2^-24 and leaves the count in the low bits. */
    uint32_t subnormal = float_bits(bits_float(magnitude) + 0.5f) - 0x3f000000u;
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
    float special = bits_float(sign | 0x7f800000u | (magnitude & 0x3ffu) << 13);
    /* Normal and subnormal halves alike: the bits placed in a float read as the value times
     * 2^-112, which one exact multiplication undoes. */
    float finite = bits_float(sign | magnitude << 13) * 0x1p112f;
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

static int fp16_encode(const float *src, size_t n, float *residual, uint8_t *dst)
{
    if (residual == NULL) {
        for (size_t i = 0; i < n; i++)
            store_le16(dst + 2 * i, half_from_float(src[i]));
        return PST_OK;
    }
    if (!fp16_feedback_in_range(src, residual, n))
        return PST_ENUMERIC;
    for (size_t i = 0; i < n; i++) {
        float value = src[i] + residual[i];
        uint16_t half = half_from_float(value);
        store_le16(dst + 2 * i, half);
        residual[i] = value - float_from_half(half);
    }
    return PST_OK;
}

static void fp16_decode(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_from_half(load_le16(src + 2 * i));
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
    store_le32(out, float_bits(scale));
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

static int int8_encode(const float *src, size_t n, float *residual, uint8_t *dst)
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

static int int8_decode(const uint8_t *src, float *dst, size_t n, pst_err_t *err)
{
    for (size_t start = 0; start < n; start += PST_CODEC_INT8_BLOCK) {
        size_t count = n - start < PST_CODEC_INT8_BLOCK ? n - start : PST_CODEC_INT8_BLOCK;
        float scale = bits_float(load_le32(src));
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

/* ---- int8 + LZ4 ---- */

/* The int8 layout is built in scratch and then compressed into dst; when LZ4 does not shrink it,
 * dst receives the int8 layout itself and *used says PST_CODEC_INT8. Error feedback is int8's. */
static int int8_lz4_encode(const float *src, size_t n, float *residual, uint8_t *dst,
                           size_t *dst_len, pst_codec_t *used)
{
    size_t len = int8_encoded_size(n);
    uint8_t *image = scratch_reserve(len ? len : 1);
    if (image == NULL)
        return PST_ENOMEM;
    int rc = int8_encode(src, n, residual, image);
    if (rc != PST_OK)
        return rc;
    *used = lz4_pack_or_copy(image, len, dst, dst_len) ? PST_CODEC_INT8_LZ4 : PST_CODEC_INT8;
    return PST_OK;
}

static int int8_lz4_decode(const uint8_t *src, size_t src_len, float *dst, size_t n, pst_err_t *err)
{
    const uint8_t *image = NULL;
    int rc =
        lz4_decompress_scratch(PST_CODEC_INT8_LZ4, src, src_len, int8_encoded_size(n), &image, err);
    return rc == PST_OK ? int8_decode(image, dst, n, err) : rc;
}

/* ---- dispatch ---- */

/* Lossless codecs ignore residual. With error feedback, every src + residual must be finite
 * (and, for fp16, inside the binary16 range) or nothing is encoded and residual is untouched:
 * PST_ENUMERIC. Without feedback int8 and int8lz4 still refuse non-finite input, while fp16 maps
 * it to infinity and NaN as IEEE conversion does. */

int pst_codec_encode(pst_codec_t codec, const float *src, size_t n, float *residual, uint8_t *dst,
                     size_t dst_cap, size_t *dst_len, pst_codec_t *used, pst_err_t *err)
{
    size_t bound = pst_codec_bound(codec, n);
    if (bound == SIZE_MAX)
        return pst_err_set(err, PST_EINVAL, "codec %d: unknown codec or %zu floats is too many",
                           (int)codec, n);
    if (dst_len == NULL || used == NULL || (n > 0 && (src == NULL || dst == NULL)))
        return pst_err_set(err, PST_EINVAL, "codec %s: NULL argument", pst_codec_name(codec));
    if (dst_cap < bound)
        return pst_err_set(err, PST_EINVAL, "codec %s: %zu-byte buffer below the %zu-byte bound",
                           pst_codec_name(codec), dst_cap, bound);
    int rc = PST_OK;
    *used = codec;
    *dst_len = bound;
    switch (codec) {
    case PST_CODEC_RAW:
        if (n > 0)
            raw_encode(src, n, dst);
        break;
    case PST_CODEC_LZ4:
        rc = lz4_encode(src, n, dst, dst_len, used);
        break;
    case PST_CODEC_LZ4_SHUFFLE:
        rc = lz4_shuffle_encode(src, n, dst, dst_len, used);
        break;
    case PST_CODEC_FP16:
        rc = fp16_encode(src, n, residual, dst);
        break;
    case PST_CODEC_INT8:
        rc = int8_encode(src, n, residual, dst);
        break;
    case PST_CODEC_INT8_LZ4:
        rc = int8_lz4_encode(src, n, residual, dst, dst_len, used);
        break;
    }
    if (rc == PST_ENOMEM)
        return pst_err_set(err, rc, "codec %s: no scratch for %zu floats", pst_codec_name(codec),
                           n);
    if (rc == PST_ENUMERIC)
        return pst_err_set(err, rc, "codec %s: non-finite or out-of-range value in %zu floats",
                           pst_codec_name(codec), n);
    return rc;
}

/* Checks that a fixed-size layout has exactly the expected length. */
static int expect_len(pst_codec_t codec, size_t src_len, size_t expected, pst_err_t *err)
{
    if (src_len != expected)
        return pst_err_set(err, PST_EPROTO, "%s payload of %zu bytes, expected %zu",
                           pst_codec_name(codec), src_len, expected);
    return PST_OK;
}

int pst_codec_decode(pst_codec_t codec, const uint8_t *src, size_t src_len, float *dst, size_t n,
                     pst_err_t *err)
{
    size_t bound = pst_codec_bound(codec, n);
    if (bound == SIZE_MAX)
        return pst_err_set(err, PST_EPROTO, "codec %d: unknown codec or %zu floats is too many",
                           (int)codec, n);
    if ((src == NULL && src_len > 0) || (dst == NULL && n > 0))
        return pst_err_set(err, PST_EINVAL, "codec %s: NULL buffer", pst_codec_name(codec));
    int rc = PST_OK;
    switch (codec) {
    case PST_CODEC_RAW:
        rc = expect_len(codec, src_len, bound, err);
        if (rc == PST_OK && n > 0)
            raw_decode(src, n, dst);
        return rc;
    case PST_CODEC_LZ4:
        return lz4_decode(src, src_len, dst, n, err);
    case PST_CODEC_LZ4_SHUFFLE:
        return lz4_shuffle_decode(src, src_len, dst, n, err);
    case PST_CODEC_FP16:
        rc = expect_len(codec, src_len, bound, err);
        if (rc == PST_OK)
            fp16_decode(src, n, dst);
        return rc;
    case PST_CODEC_INT8:
        rc = expect_len(codec, src_len, bound, err);
        return rc == PST_OK ? int8_decode(src, dst, n, err) : rc;
    case PST_CODEC_INT8_LZ4:
        return int8_lz4_decode(src, src_len, dst, n, err);
    }
    return PST_EPROTO; /* not reached: pst_codec_bound rejects unknown codecs */
}

/* ---- checksum ---- */

/* A multiply-rotate hash over 64-bit little-endian words. The body runs eight independent lanes
 * over 128-byte stripes, each lane taking two words a step, so the multiplications overlap
 * (~2.5x zlib's crc32 here). Every step is a bijection of the lane state and of each word, so a
 * change confined to one 8-byte word always changes the 64-bit state before the final fold to
 * 32 bits. Not cryptographic: it catches corruption, not forgery. */
#define MIX_K1 0x9e3779b97f4a7c15ull
#define MIX_K2 0xd1b54a32d192ed03ull
#define MIX_K3 0x8cb92ba72f3d8dd7ull
#define CHECKSUM_LANES 8
#define CHECKSUM_STRIPE (CHECKSUM_LANES * 16)

static uint64_t rotl64(uint64_t v, unsigned r)
{
    return v << r | v >> (64 - r);
}

static inline uint64_t mix_word(uint64_t acc, uint64_t word)
{
    return rotl64(acc ^ word, 29) * MIX_K1;
}

static uint64_t mix_stripes(const uint8_t *p, size_t n_stripes, uint64_t h)
{
    uint64_t lane[CHECKSUM_LANES];
    for (int k = 0; k < CHECKSUM_LANES; k++)
        lane[k] = MIX_K2 * (uint64_t)(k + 1);
    for (size_t s = 0; s < n_stripes; s++, p += CHECKSUM_STRIPE) {
        for (int k = 0; k < CHECKSUM_LANES; k++)
            lane[k] = mix_word(lane[k], load_le64(p + 16 * k)) + load_le64(p + 16 * k + 8);
    }
    for (int k = 0; k < CHECKSUM_LANES; k++)
        h = rotl64(h ^ lane[k] * MIX_K2, 31) * MIX_K1;
    return h;
}

static uint64_t mix_tail(uint64_t h, const uint8_t *p, size_t len)
{
    for (; len >= 8; p += 8, len -= 8)
        h = mix_word(h, load_le64(p));
    if (len > 0) {
        uint64_t word = 0;
        for (size_t k = 0; k < len; k++)
            word |= (uint64_t)p[k] << (8 * k);
        h = mix_word(h, word);
    }
    return h;
}

uint32_t pst_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t n_stripes = len / CHECKSUM_STRIPE;
    uint64_t h = mix_stripes(p, n_stripes, (uint64_t)len * MIX_K3);
    h = mix_tail(h, p + n_stripes * CHECKSUM_STRIPE, len % CHECKSUM_STRIPE);
    h ^= h >> 32;
    h *= MIX_K2;
    h ^= h >> 29;
    h *= MIX_K3;
    h ^= h >> 32;
    return (uint32_t)h;
}
