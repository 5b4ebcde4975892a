/* Payload codecs for float32 tensors on the wire: the table, sizes, LZ4 variants and dispatch. */
#include "common/net/codec.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "common/net/codec_internal.h"

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
    if (name != NULL && strcmp(name, "auto") == 0) {
        *codec = PST_CODEC_AUTO;
        return PST_OK;
    }
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
    if (codec == PST_CODEC_AUTO)
        return "auto";
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

/* ---- sizes ---- */

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
        return pst_codec_int8_size(n);
    case PST_CODEC_AUTO: /* not a layout: the wire resolves it before encoding */
        break;
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
    if (pst_codec_host_is_le()) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        pst_codec_store_le32(dst + 4 * i, pst_codec_float_bits(src[i]));
}

/* In-place safe: dst may alias src. */
static void raw_decode(const uint8_t *src, size_t n, float *dst)
{
    if (pst_codec_host_is_le()) {
        memmove(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = pst_codec_bits_float(pst_codec_load_le32(src + 4 * i));
}

/* ---- byte shuffle ---- */

/* src: n floats → dst: 4 planes of n bytes, plane k holding byte k (little-endian) of each. */
static void shuffle_planes(const float *src, size_t n, uint8_t *dst)
{
    uint8_t *p0 = dst, *p1 = dst + n, *p2 = dst + 2 * n, *p3 = dst + 3 * n;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = pst_codec_float_bits(src[i]);
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
        dst[i] = pst_codec_bits_float(bits);
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
    if (!pst_codec_host_is_le() && len > 0) {
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
    if (rc == PST_OK && !pst_codec_host_is_le())
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

/* ---- int8 + LZ4 ---- */

/* The int8 layout is built in scratch and then compressed into dst; when LZ4 does not shrink it,
 * dst receives the int8 layout itself and *used says PST_CODEC_INT8. Error feedback is int8's. */
static int int8_lz4_encode(const float *src, size_t n, float *residual, uint8_t *dst,
                           size_t *dst_len, pst_codec_t *used)
{
    size_t len = pst_codec_int8_size(n);
    uint8_t *image = scratch_reserve(len ? len : 1);
    if (image == NULL)
        return PST_ENOMEM;
    int rc = pst_codec_int8_encode(src, n, residual, image);
    if (rc != PST_OK)
        return rc;
    *used = lz4_pack_or_copy(image, len, dst, dst_len) ? PST_CODEC_INT8_LZ4 : PST_CODEC_INT8;
    return PST_OK;
}

static int int8_lz4_decode(const uint8_t *src, size_t src_len, float *dst, size_t n, pst_err_t *err)
{
    const uint8_t *image = NULL;
    int rc = lz4_decompress_scratch(PST_CODEC_INT8_LZ4, src, src_len, pst_codec_int8_size(n),
                                    &image, err);
    return rc == PST_OK ? pst_codec_int8_decode(image, dst, n, err) : rc;
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
        rc = pst_codec_fp16_encode(src, n, residual, dst);
        break;
    case PST_CODEC_INT8:
        rc = pst_codec_int8_encode(src, n, residual, dst);
        break;
    case PST_CODEC_INT8_LZ4:
        rc = int8_lz4_encode(src, n, residual, dst, dst_len, used);
        break;
    case PST_CODEC_AUTO: /* bound is SIZE_MAX: refused above */
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
            pst_codec_fp16_decode(src, n, dst);
        return rc;
    case PST_CODEC_INT8:
        rc = expect_len(codec, src_len, bound, err);
        return rc == PST_OK ? pst_codec_int8_decode(src, dst, n, err) : rc;
    case PST_CODEC_INT8_LZ4:
        return int8_lz4_decode(src, src_len, dst, n, err);
    case PST_CODEC_AUTO:
        break;
    }
    return PST_EPROTO; /* not reached: pst_codec_bound rejects unknown codecs */
}
