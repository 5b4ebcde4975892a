/* Tests for common/codec: round trips, fp16 rounding, int8 and int8lz4 bounds and error feedback,
 * compression ratios, hostile payloads, and the checksum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "common/net/codec.h"
#include "common/net/codec_internal.h"
#include "common/rng.h"

static const size_t test_sizes[] = {0, 1, 3, 255, 256, 257, 1000003};
#define N_SIZES (sizeof test_sizes / sizeof test_sizes[0])

static const pst_codec_t all_codecs[] = {PST_CODEC_RAW,  PST_CODEC_LZ4,  PST_CODEC_LZ4_SHUFFLE,
                                         PST_CODEC_FP16, PST_CODEC_INT8, PST_CODEC_INT8_LZ4};
#define N_CODECS (sizeof all_codecs / sizeof all_codecs[0])

/* ---- helpers ---- */

static float *normal_floats(size_t n, uint64_t seed, double sigma)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(sigma * pst_rng_normal(&rng));
    return x;
}

/* Normal values at the given density, zeros elsewhere. */
static float *sparse_floats(size_t n, uint64_t seed, double density)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = pst_rng_uniform(&rng) < density ? (float)pst_rng_normal(&rng) : 0.0f;
    return x;
}

/* Encodes into a buffer of exactly pst_codec_bound bytes (so the sanitizer sees overruns). */
static uint8_t *encode_ok(pst_codec_t codec, const float *src, size_t n, float *residual,
                          size_t *len, pst_codec_t *used)
{
    size_t cap = pst_codec_bound(codec, n);
    uint8_t *dst = malloc(cap ? cap : 1);
    assert_non_null(dst);
    pst_err_t err = {0};
    assert_int_equal(pst_codec_encode(codec, src, n, residual, dst, cap, len, used, &err), PST_OK);
    assert_true(*len <= cap);
    return dst;
}

/* Decodes into a fresh buffer of exactly n floats; returns the code and the buffer in *out. */
static int decode_into_new(pst_codec_t codec, const uint8_t *src, size_t len, size_t n, float **out)
{
    *out = malloc((n ? n : 1) * sizeof **out);
    assert_non_null(*out);
    pst_err_t err = {0};
    return pst_codec_decode(codec, src, len, *out, n, &err);
}

static uint16_t half_of(float value)
{
    uint8_t b[2];
    size_t len;
    pst_codec_t used;
    assert_int_equal(
        pst_codec_encode(PST_CODEC_FP16, &value, 1, NULL, b, sizeof b, &len, &used, NULL), PST_OK);
    assert_int_equal(len, 2);
    return (uint16_t)(b[0] | b[1] << 8);
}

static float float_of_half(uint16_t half)
{
    uint8_t b[2] = {(uint8_t)half, (uint8_t)(half >> 8)};
    float value;
    assert_int_equal(pst_codec_decode(PST_CODEC_FP16, b, 2, &value, 1, NULL), PST_OK);
    return value;
}

/* Every decoded value is within half a quantisation step of its input: the step is the block's
 * max |x| / 127, with slack for the float rounding of x / scale and q * scale (127 * 2^-24 each).
 */
static void assert_within_int8_error(const float *x, const float *dec, size_t n)
{
    for (size_t start = 0; start < n; start += PST_CODEC_INT8_BLOCK) {
        size_t count = n - start < PST_CODEC_INT8_BLOCK ? n - start : PST_CODEC_INT8_BLOCK;
        float max_abs = 0;
        for (size_t j = 0; j < count; j++)
            max_abs = fmaxf(max_abs, fabsf(x[start + j]));
        float scale = max_abs / 127.0f;
        for (size_t j = 0; j < count; j++)
            assert_true(fabsf(dec[start + j] - x[start + j]) <= scale * (0.5f + 2e-5f));
    }
}

/* ---- names and sizes ---- */

static void names_and_bounds(void **state)
{
    for (size_t i = 0; i < N_CODECS; i++) {
        pst_codec_t parsed;
        assert_int_equal(pst_codec_parse(pst_codec_name(all_codecs[i]), &parsed), PST_OK);
        assert_int_equal(parsed, all_codecs[i]);
    }
    pst_codec_t parsed;
    assert_string_equal(pst_codec_name(PST_CODEC_LZ4_SHUFFLE), "lz4shuffle");
    assert_string_equal(pst_codec_name(PST_CODEC_INT8_LZ4), "int8lz4");
    assert_int_equal(pst_codec_parse("zstd", &parsed), PST_EINVAL);
    for (int codec = -2; codec < 10; codec++) {
        bool known = codec >= PST_CODEC_RAW && codec <= PST_CODEC_INT8_LZ4;
        assert_int_equal(pst_codec_known(codec), known);
        bool lossy =
            codec == PST_CODEC_FP16 || codec == PST_CODEC_INT8 || codec == PST_CODEC_INT8_LZ4;
        assert_int_equal(pst_codec_lossy((pst_codec_t)codec), lossy);
    }
    assert_int_equal(pst_codec_bound(PST_CODEC_RAW, 10), 40);
    assert_int_equal(pst_codec_bound(PST_CODEC_LZ4, 10), 40);
    assert_int_equal(pst_codec_bound(PST_CODEC_FP16, 10), 20);
    assert_int_equal(pst_codec_bound(PST_CODEC_INT8, 0), 0);
    assert_int_equal(pst_codec_bound(PST_CODEC_INT8, 256), 260);
    assert_int_equal(pst_codec_bound(PST_CODEC_INT8, 257), 265); /* 257 + 2 scales */
    assert_int_equal(pst_codec_bound(PST_CODEC_INT8, 1000003), 1000003 + 4 * 3907);
    for (size_t s = 0; s < N_SIZES; s++) /* LZ4 is kept only when it shrinks the int8 layout */
        assert_int_equal(pst_codec_bound(PST_CODEC_INT8_LZ4, test_sizes[s]),
                         pst_codec_bound(PST_CODEC_INT8, test_sizes[s]));
    assert_int_equal(pst_codec_bound((pst_codec_t)9, 10), SIZE_MAX);
    assert_int_equal(pst_codec_bound(PST_CODEC_RAW, SIZE_MAX / 2), SIZE_MAX);
}

static void encode_rejects_small_buffer(void **state)
{
    float x[4] = {1, 2, 3, 4};
    uint8_t dst[16];
    size_t len;
    pst_codec_t used;
    pst_err_t err = {0};
    assert_int_equal(pst_codec_encode(PST_CODEC_RAW, x, 4, NULL, dst, 15, &len, &used, &err),
                     PST_EINVAL);
    assert_int_equal(pst_codec_encode(PST_CODEC_INT8, x, 4, NULL, dst, 7, &len, &used, &err),
                     PST_EINVAL);
    assert_int_equal(
        pst_codec_encode((pst_codec_t)7, x, 4, NULL, dst, sizeof dst, &len, &used, &err),
        PST_EINVAL);
}

/* ---- lossless codecs ---- */

static void raw_layout_is_little_endian_float32(void **state)
{
    float x[2] = {1.0f, -2.5f};
    const uint8_t expected[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0};
    size_t len;
    pst_codec_t used;
    uint8_t *dst = encode_ok(PST_CODEC_RAW, x, 2, NULL, &len, &used);
    assert_int_equal(used, PST_CODEC_RAW);
    assert_int_equal(len, 8);
    assert_memory_equal(dst, expected, 8);
    free(dst);
}

static void check_lossless(pst_codec_t codec, const float *x, size_t n)
{
    size_t len;
    pst_codec_t used;
    uint8_t *enc = encode_ok(codec, x, n, NULL, &len, &used);
    assert_true(used == codec || used == PST_CODEC_RAW);
    if (used == PST_CODEC_RAW)
        assert_int_equal(len, n * 4);
    else
        assert_true(len < n * 4);
    float *dec;
    assert_int_equal(decode_into_new(used, enc, len, n, &dec), PST_OK);
    if (n > 0)
        assert_memory_equal(dec, x, n * sizeof(float));
    free(dec);
    free(enc);
}

static void lossless_round_trips(void **state)
{
    const pst_codec_t codecs[] = {PST_CODEC_RAW, PST_CODEC_LZ4, PST_CODEC_LZ4_SHUFFLE};
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = test_sizes[s];
        float *dense = normal_floats(n, 11 + s, 1.0);
        float *sparse = sparse_floats(n, 21 + s, 0.05);
        for (size_t c = 0; c < 3; c++) {
            check_lossless(codecs[c], dense, n);
            check_lossless(codecs[c], sparse, n);
        }
        free(dense);
        free(sparse);
    }
}

/* The shuffle layout is 4 planes of bytes; checked against planes built here and a plain LZ4
 * block made by the library directly. */
static void shuffle_layout_is_byte_planes(void **state)
{
    size_t n = 1000;
    float *x = sparse_floats(n, 5, 0.1);
    uint8_t *planes = malloc(4 * n);
    for (size_t i = 0; i < n; i++) {
        uint8_t b[4];
        memcpy(b, &x[i], 4); /* the test host is little-endian (x86-64) */
        for (int k = 0; k < 4; k++)
            planes[k * n + i] = b[k];
    }
    int cap = LZ4_compressBound((int)(4 * n));
    uint8_t *packed = malloc((size_t)cap);
    int packed_len = LZ4_compress_default((char *)planes, (char *)packed, (int)(4 * n), cap);
    assert_true(packed_len > 0);
    float *dec;
    assert_int_equal(decode_into_new(PST_CODEC_LZ4_SHUFFLE, packed, (size_t)packed_len, n, &dec),
                     PST_OK);
    assert_memory_equal(dec, x, 4 * n);

    size_t len;
    pst_codec_t used;
    uint8_t *enc = encode_ok(PST_CODEC_LZ4_SHUFFLE, x, n, NULL, &len, &used);
    assert_int_equal(used, PST_CODEC_LZ4_SHUFFLE);
    uint8_t *unpacked = malloc(4 * n);
    assert_int_equal(LZ4_decompress_safe((char *)enc, (char *)unpacked, (int)len, (int)(4 * n)),
                     (int)(4 * n));
    assert_memory_equal(unpacked, planes, 4 * n);
    free(unpacked);
    free(enc);
    free(dec);
    free(packed);
    free(planes);
    free(x);
}

/* 95% zeros: both LZ4 codecs shrink the payload >= 3x. Normal floats: plain LZ4 cannot shrink
 * them and sends raw; the shuffle gains a little from the low-entropy sign/exponent plane. Random
 * bit patterns: both fall back to raw. */
static void lz4_shrinks_sparse_and_skips_dense(void **state)
{
    size_t n = 1000000, len;
    pst_codec_t used;
    float *sparse = sparse_floats(n, 77, 0.05);
    float *dense = normal_floats(n, 78, 1.0);
    float *noise = malloc(n * sizeof *noise);
    pst_rng_t rng;
    pst_rng_init(&rng, 79);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)pst_rng_next(&rng) & 0xbfffffffu; /* finite, |x| < 2 */
        memcpy(&noise[i], &bits, 4);
    }
    const pst_codec_t codecs[] = {PST_CODEC_LZ4, PST_CODEC_LZ4_SHUFFLE};
    for (size_t c = 0; c < 2; c++) {
        uint8_t *enc = encode_ok(codecs[c], sparse, n, NULL, &len, &used);
        assert_int_equal(used, codecs[c]);
        assert_true(3 * len <= 4 * n);
        free(enc);
        enc = encode_ok(codecs[c], noise, n, NULL, &len, &used);
        assert_int_equal(used, PST_CODEC_RAW);
        assert_int_equal(len, 4 * n);
        assert_memory_equal(enc, noise, 4 * n);
        free(enc);
    }
    uint8_t *enc = encode_ok(PST_CODEC_LZ4, dense, n, NULL, &len, &used);
    assert_int_equal(used, PST_CODEC_RAW);
    assert_int_equal(len, 4 * n);
    assert_memory_equal(enc, dense, 4 * n);
    free(enc);
    enc = encode_ok(PST_CODEC_LZ4_SHUFFLE, dense, n, NULL, &len, &used);
    assert_int_equal(used, PST_CODEC_LZ4_SHUFFLE);
    assert_true(len < 4 * n && 4 * n < 1.2 * (double)len);
    free(enc);
    free(noise);
    free(sparse);
    free(dense);
}

/* Floats with their two low bytes cleared: plain LZ4 finds few 4-byte matches, while the two
 * zero planes of the shuffled image collapse. */
static void shuffle_beats_plain_lz4_on_truncated_mantissas(void **state)
{
    size_t n = 100000;
    float *x = normal_floats(n, 9, 1.0);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        bits &= 0xffff0000u;
        memcpy(&x[i], &bits, 4);
    }
    size_t lz4_len, shuffle_len;
    pst_codec_t used;
    uint8_t *a = encode_ok(PST_CODEC_LZ4, x, n, NULL, &lz4_len, &used);
    uint8_t *b = encode_ok(PST_CODEC_LZ4_SHUFFLE, x, n, NULL, &shuffle_len, &used);
    assert_int_equal(used, PST_CODEC_LZ4_SHUFFLE);
    assert_true(shuffle_len < 4 * n * 55 / 100);
    assert_true(shuffle_len < lz4_len);
    free(a);
    free(b);
    free(x);
}

/* ---- fp16 ---- */

static void fp16_exact_values(void **state)
{
    const struct {
        float value;
        uint16_t half;
    } cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3c00},
        {0.5f, 0x3800},
        {-2.0f, 0xc000},
        {65504.0f, 0x7bff},
        {0x1p-24f, 0x0001},          /* smallest subnormal */
        {0x1p-14f, 0x0400},          /* smallest normal */
        {0x1p-25f, 0x0000},          /* half of the smallest subnormal: tie to even zero */
        {0x1.8p-24f, 0x0002},        /* 1.5 units: tie to even 2 */
        {0x1.4p-24f, 0x0001},        /* 1.25 units */
        {1.0f + 0x1p-11f, 0x3c00},   /* tie between 0x3c00 and 0x3c01: even */
        {1.0f + 0x1.8p-10f, 0x3c02}, /* tie between 0x3c01 and 0x3c02: even */
        {0x1.ffcp-15f, 0x0400},      /* largest subnormal + half a unit: carries into the normals */
        {65519.0f, 0x7bff},
        {65520.0f, 0x7c00}, /* overflows to infinity */
        {1e6f, 0x7c00},
        {-1e6f, 0xfc00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {1e-30f, 0x0000},
        {-0x1p-149f, 0x8000}, /* float subnormal */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(half_of(cases[i].value), cases[i].half);
    assert_true(float_of_half(0x7bff) == 65504.0f);
    assert_true(float_of_half(0x3555) == 0x1.554p-2f); /* 0.333251953125 */
    assert_true(float_of_half(0x0001) == 0x1p-24f);
    assert_true(float_of_half(0x83ff) == -0x1.ff8p-15f);
    assert_true(float_of_half(0xfc00) == -INFINITY);
    uint16_t nan_half = half_of(NAN);
    assert_int_equal(nan_half & 0x7c00, 0x7c00);
    assert_int_not_equal(nan_half & 0x03ff, 0);
    assert_true(isnan(float_of_half(nan_half)));
    assert_true(isnan(float_of_half(0xfe00)));
    /* a NaN whose payload sits only in bits a half cannot hold must not become infinity */
    uint32_t low_payload_nan = 0xff800001u;
    float nan_value;
    memcpy(&nan_value, &low_payload_nan, 4);
    nan_half = half_of(nan_value);
    assert_int_equal(nan_half & 0xfc00, 0xfc00);
    assert_int_not_equal(nan_half & 0x03ff, 0);
}

/* All 65536 halves: each finite one survives a round trip, and values between two neighbours
 * round to the nearer one, ties to the even one. */
static void fp16_exhaustive_rounding(void **state)
{
    size_t n_halves = 65536;
    uint16_t *halves = malloc(n_halves * 2);
    for (size_t h = 0; h < n_halves; h++)
        halves[h] = (uint16_t)h;
    float *values;
    assert_int_equal(
        decode_into_new(PST_CODEC_FP16, (uint8_t *)halves, 2 * n_halves, n_halves, &values),
        PST_OK);
    for (size_t h = 0; h < n_halves; h++) {
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
        assert_int_equal(isnan(values[h]) != 0, is_nan);
        if (!is_nan)
            assert_int_equal(half_of(values[h]), h);
    }
    for (uint16_t h = 0; h < 0x7c00; h++) { /* h and h + 1 are neighbours, h + 1 up to inf */
        for (int sign = 0; sign < 2; sign++) {
            uint16_t lo = (uint16_t)(h | sign << 15), hi = (uint16_t)((h + 1) | sign << 15);
            float mid =
                (values[lo] + (h + 1 == 0x7c00 ? (sign ? -65536.0f : 65536.0f) : values[hi])) / 2;
            assert_int_equal(half_of(mid), (h & 1) ? hi : lo);
            assert_int_equal(half_of(nextafterf(mid, 0.0f)), lo);
            assert_int_equal(half_of(nextafterf(mid, sign ? -INFINITY : INFINITY)), hi);
        }
    }
    free(values);
    free(halves);
}

static void fp16_round_trips(void **state)
{
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = test_sizes[s];
        float *x = normal_floats(n, 31 + s, 100.0);
        size_t len;
        pst_codec_t used;
        uint8_t *enc = encode_ok(PST_CODEC_FP16, x, n, NULL, &len, &used);
        assert_int_equal(used, PST_CODEC_FP16);
        assert_int_equal(len, 2 * n);
        float *dec;
        assert_int_equal(decode_into_new(PST_CODEC_FP16, enc, len, n, &dec), PST_OK);
        for (size_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            if (a >= 0x1p-14f) /* normal half range: half a unit in the last place */
                assert_true(fabsf(dec[i] - x[i]) <= a * 0x1p-11f);
            else
                assert_true(fabsf(dec[i] - x[i]) <= 0x1p-25f);
        }
        free(dec);
        free(enc);
        free(x);
    }
}

/* 1 + 2^-12 is not a half: alone it always rounds to 1, so the running sum drifts by 2^-12 a
 * step; with feedback the lost part is carried and the sums stay within half a unit (2^-11). */
static void fp16_error_feedback_tracks_sum(void **state)
{
    size_t n = 8;
    float x[8], residual[8] = {0}, dec[8];
    for (size_t i = 0; i < n; i++)
        x[i] = (1.0f + 0x1p-12f) * (i % 2 ? -1.0f : 1.0f);
    double sum_in[8] = {0}, sum_fb[8] = {0}, sum_plain[8] = {0};
    uint8_t buf[16];
    size_t len;
    pst_codec_t used;
    for (int step = 0; step < 1000; step++) {
        assert_int_equal(
            pst_codec_encode(PST_CODEC_FP16, x, n, residual, buf, 16, &len, &used, NULL), PST_OK);
        assert_int_equal(pst_codec_decode(PST_CODEC_FP16, buf, len, dec, n, NULL), PST_OK);
        for (size_t i = 0; i < n; i++) {
            sum_in[i] += x[i];
            sum_fb[i] += dec[i];
            assert_true(fabs(sum_in[i] - sum_fb[i]) <= 0x1p-11 + 1e-9);
        }
        assert_int_equal(pst_codec_encode(PST_CODEC_FP16, x, n, NULL, buf, 16, &len, &used, NULL),
                         PST_OK);
        assert_int_equal(pst_codec_decode(PST_CODEC_FP16, buf, len, dec, n, NULL), PST_OK);
        for (size_t i = 0; i < n; i++)
            sum_plain[i] += dec[i];
    }
    assert_true(fabs(sum_in[0] - sum_plain[0] - 1000 * 0x1p-12) < 1e-9);

    /* Feedback refuses values it cannot carry, and leaves the residual untouched. */
    float bad[2] = {1.0f, 70000.0f}, res[2] = {0.25f, 0.5f};
    assert_int_equal(pst_codec_encode(PST_CODEC_FP16, bad, 2, res, buf, 16, &len, &used, NULL),
                     PST_ENUMERIC);
    bad[1] = NAN;
    assert_int_equal(pst_codec_encode(PST_CODEC_FP16, bad, 2, res, buf, 16, &len, &used, NULL),
                     PST_ENUMERIC);
    assert_true(res[0] == 0.25f && res[1] == 0.5f);
}

/* ---- int8 ---- */

static void int8_hand_computed_block(void **state)
{
    /* max |x| = 127 gives scale 1; halves round to even */
    float x[7] = {127.0f, -63.5f, 0.0f, 1.0f, 2.5f, 0.5f, 1.5f};
    const uint8_t expected[11] = {0x00, 0x00, 0x80, 0x3f, 127, (uint8_t)-64, 0, 1, 2, 0, 2};
    size_t len;
    pst_codec_t used;
    uint8_t *enc = encode_ok(PST_CODEC_INT8, x, 7, NULL, &len, &used);
    assert_int_equal(len, 11);
    assert_memory_equal(enc, expected, 11);
    float *dec;
    assert_int_equal(decode_into_new(PST_CODEC_INT8, enc, len, 7, &dec), PST_OK);
    const float want[7] = {127.0f, -64.0f, 0.0f, 1.0f, 2.0f, 0.0f, 2.0f};
    assert_memory_equal(dec, want, sizeof want);
    free(dec);
    free(enc);

    /* subnormal inputs: max 686 units of 2^-149 gives a scale of round(686 / 127) = 5 units, so
     * 686 / 5 = 137.2 must clamp to 127 */
    float tiny[2] = {686 * 0x1p-149f, -5 * 0x1p-149f};
    enc = encode_ok(PST_CODEC_INT8, tiny, 2, NULL, &len, &used);
    const uint8_t tiny_bytes[6] = {5, 0, 0, 0, 127, (uint8_t)-1};
    assert_memory_equal(enc, tiny_bytes, 6);
    free(enc);

    /* all zeros: scale 0, values 0 */
    float zeros[3] = {0};
    enc = encode_ok(PST_CODEC_INT8, zeros, 3, NULL, &len, &used);
    const uint8_t zero_bytes[7] = {0};
    assert_memory_equal(enc, zero_bytes, 7);
    free(enc);
}

static void int8_error_within_half_scale(void **state)
{
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = test_sizes[s];
        float *x = normal_floats(n, 41 + s, 1.0);
        for (size_t i = 0; i < n; i++) /* blocks of very different magnitudes */
            x[i] *= powf(10.0f, (float)((i / PST_CODEC_INT8_BLOCK) % 7) - 3.0f);
        size_t len;
        pst_codec_t used;
        uint8_t *enc = encode_ok(PST_CODEC_INT8, x, n, NULL, &len, &used);
        assert_int_equal(len, pst_codec_bound(PST_CODEC_INT8, n));
        float *dec;
        assert_int_equal(decode_into_new(PST_CODEC_INT8, enc, len, n, &dec), PST_OK);
        for (size_t start = 0; start < n; start += PST_CODEC_INT8_BLOCK) {
            size_t count = n - start < 256 ? n - start : 256;
            float max_abs = 0;
            for (size_t j = 0; j < count; j++)
                max_abs = fmaxf(max_abs, fabsf(x[start + j]));
            float stored;
            memcpy(&stored, enc + start + 4 * (start / 256), 4);
            assert_true(stored == max_abs / 127.0f);
        }
        assert_within_int8_error(x, dec, n);
        free(dec);
        free(enc);
        free(x);
    }
}

/* One large value fixes the block scale at 1; the small ones (0.3 or -0.2 give or take) round to
 * 0 on their own, so without feedback their running sums drift by ~0.3 a step. With feedback
 * the difference of running sums is the residual, within half a scale at every step. */
static void int8_error_feedback_tracks_sum(void **state)
{
    size_t n = 300, steps = 200;
    pst_rng_t rng;
    pst_rng_init(&rng, 99);
    float *x = malloc(n * sizeof *x), *residual = calloc(n, sizeof *residual);
    float *dec = malloc(n * sizeof *dec);
    double *sum_in = calloc(n, sizeof *sum_in), *sum_fb = calloc(n, sizeof *sum_fb);
    double *sum_plain = calloc(n, sizeof *sum_plain);
    size_t cap = pst_codec_bound(PST_CODEC_INT8, n), len;
    uint8_t *buf = malloc(cap);
    pst_codec_t used;
    for (size_t step = 0; step < steps; step++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (i % 2 ? -0.2f : 0.3f) + 0.05f * (float)pst_rng_uniform(&rng);
        x[0] = 127.0f;
        x[256] = -127.0f;
        assert_int_equal(
            pst_codec_encode(PST_CODEC_INT8, x, n, residual, buf, cap, &len, &used, NULL), PST_OK);
        assert_int_equal(pst_codec_decode(PST_CODEC_INT8, buf, len, dec, n, NULL), PST_OK);
        for (size_t i = 0; i < n; i++) {
            sum_in[i] += x[i];
            sum_fb[i] += dec[i];
            assert_true(fabs(sum_in[i] - sum_fb[i]) <= 0.5 + 1e-4);
            assert_true(fabs(sum_in[i] - sum_fb[i] - residual[i]) < 1e-4);
        }
        assert_int_equal(pst_codec_encode(PST_CODEC_INT8, x, n, NULL, buf, cap, &len, &used, NULL),
                         PST_OK);
        assert_int_equal(pst_codec_decode(PST_CODEC_INT8, buf, len, dec, n, NULL), PST_OK);
        for (size_t i = 0; i < n; i++)
            sum_plain[i] += dec[i];
    }
    double worst_plain = 0;
    for (size_t i = 1; i < n; i++)
        worst_plain = fmax(worst_plain, fabs(sum_in[i] - sum_plain[i]));
    assert_true(worst_plain > 0.2 * steps);
    free(buf);
    free(sum_plain);
    free(sum_fb);
    free(sum_in);
    free(dec);
    free(residual);
    free(x);
}

static void int8_rejects_non_finite(void **state)
{
    float x[300] = {0}, residual[300] = {0}, saved[300];
    for (size_t i = 0; i < 300; i++)
        residual[i] = 0.001f * (float)i;
    memcpy(saved, residual, sizeof saved);
    uint8_t buf[308];
    size_t len;
    pst_codec_t used;
    x[280] = NAN;
    assert_int_equal(
        pst_codec_encode(PST_CODEC_INT8, x, 300, residual, buf, sizeof buf, &len, &used, NULL),
        PST_ENUMERIC);
    assert_memory_equal(residual, saved, sizeof saved);
    x[280] = -INFINITY;
    assert_int_equal(
        pst_codec_encode(PST_CODEC_INT8, x, 300, NULL, buf, sizeof buf, &len, &used, NULL),
        PST_ENUMERIC);
    x[280] = FLT_MAX; /* finite, but the sum with the residual is not */
    residual[280] = FLT_MAX;
    assert_int_equal(
        pst_codec_encode(PST_CODEC_INT8, x, 300, residual, buf, sizeof buf, &len, &used, NULL),
        PST_ENUMERIC);
}

/* ---- hostile payloads ---- */

/* A valid payload of every codec for n floats (sparse, so LZ4 really compresses). */
static uint8_t *valid_payload(pst_codec_t codec, size_t n, size_t *len)
{
    float *x = sparse_floats(n, 1234, 0.05);
    pst_codec_t used;
    uint8_t *enc = encode_ok(codec, x, n, NULL, len, &used);
    assert_int_equal(used, codec);
    free(x);
    return enc;
}

static void expect_decode(pst_codec_t codec, const uint8_t *src, size_t len, size_t n, int want)
{
    float *dec;
    assert_int_equal(decode_into_new(codec, src, len, n, &dec), want);
    free(dec);
}

static void decoders_reject_wrong_sizes(void **state)
{
    size_t n = 1000;
    for (size_t c = 0; c < N_CODECS; c++) {
        size_t len;
        uint8_t *enc = valid_payload(all_codecs[c], n, &len);
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, enc, len);
        longer[len] = 0;
        expect_decode(all_codecs[c], enc, len, n, PST_OK);
        expect_decode(all_codecs[c], enc, len - 1, n, PST_EPROTO);
        expect_decode(all_codecs[c], longer, len + 1, n, PST_EPROTO);
        expect_decode(all_codecs[c], enc, len, n - 1, PST_EPROTO);
        expect_decode(all_codecs[c], enc, len, n + 1, PST_EPROTO);
        expect_decode(all_codecs[c], enc, len, 0, PST_EPROTO);
        expect_decode(all_codecs[c], enc, 0, n, PST_EPROTO);
        for (size_t cut = 0; cut < len; cut++) { /* every truncation */
            float *dec;
            int rc = decode_into_new(all_codecs[c], enc, cut, n, &dec);
            free(dec);
            if (rc != PST_EPROTO)
                fail_msg("%s truncated to %zu of %zu bytes: rc %d", pst_codec_name(all_codecs[c]),
                         cut, len, rc);
        }
        free(longer);
        free(enc);
    }
    float out;
    uint8_t byte = 0;
    assert_int_equal(pst_codec_decode((pst_codec_t)9, &byte, 1, &out, 1, NULL), PST_EPROTO);
    assert_int_equal(pst_codec_decode(PST_CODEC_RAW, NULL, 0, NULL, 0, NULL), PST_OK);
    assert_int_equal(pst_codec_decode(PST_CODEC_INT8, NULL, 0, NULL, 0, NULL), PST_OK);
    assert_int_equal(pst_codec_decode(PST_CODEC_RAW, NULL, 4, &out, 1, NULL), PST_EINVAL);
}

static void int8_rejects_bad_scales(void **state)
{
    size_t len;
    uint8_t *enc = valid_payload(PST_CODEC_INT8, 300, &len);
    const float bad_scales[] = {NAN, INFINITY, -1.0f};
    for (size_t b = 0; b < 3; b++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, enc, len);
        memcpy(copy + 260, &bad_scales[b], 4); /* the second block's scale */
        expect_decode(PST_CODEC_INT8, copy, len, 300, PST_EPROTO);
        free(copy);
    }
    free(enc);
}

/* ---- int8lz4 ---- */

/* int8lz4 sends one LZ4 block holding the int8 layout, or the int8 layout itself (reported as
 * int8) when LZ4 does not shrink it; either way the receiver decodes int8's floats. */
static void check_int8lz4_as_int8(const float *x, size_t n, pst_codec_t want_used)
{
    size_t len, int8_len;
    pst_codec_t used, int8_used;
    uint8_t *enc = encode_ok(PST_CODEC_INT8_LZ4, x, n, NULL, &len, &used);
    uint8_t *plain = encode_ok(PST_CODEC_INT8, x, n, NULL, &int8_len, &int8_used);
    assert_int_equal(used, want_used);
    if (used == PST_CODEC_INT8) {
        assert_int_equal(len, int8_len);
        assert_memory_equal(enc, plain, len);
    } else {
        assert_true(len < int8_len);
        uint8_t *unpacked = malloc(int8_len);
        assert_int_equal(
            LZ4_decompress_safe((char *)enc, (char *)unpacked, (int)len, (int)int8_len),
            (int)int8_len);
        assert_memory_equal(unpacked, plain, int8_len);
        free(unpacked);
    }
    float *dec, *want;
    assert_int_equal(decode_into_new(used, enc, len, n, &dec), PST_OK);
    assert_int_equal(decode_into_new(PST_CODEC_INT8, plain, int8_len, n, &want), PST_OK);
    if (n > 0)
        assert_memory_equal(dec, want, n * sizeof(float));
    assert_within_int8_error(x, dec, n);
    free(want);
    free(dec);
    free(plain);
    free(enc);
}

static void int8lz4_decodes_to_int8_values(void **state)
{
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = test_sizes[s];
        float *dense = normal_floats(n, 51 + s, 1.0);
        float *sparse = sparse_floats(n, 61 + s, 0.1);
        /* A handful of bytes never shrinks; normal values leave LZ4 no repeats in the int8
         * bytes; 90% zeros do. */
        bool tiny = n < 100;
        check_int8lz4_as_int8(dense, n, PST_CODEC_INT8);
        check_int8lz4_as_int8(sparse, n, tiny ? PST_CODEC_INT8 : PST_CODEC_INT8_LZ4);
        free(dense);
        free(sparse);
    }
}

/* Error feedback is int8's: coordinates of ~0.3 beside a value of 127 fix the scale at 1 and round
 * to 0 on their own, so only the residual carries them. Step after step int8lz4 and int8 give the
 * same decoded floats and residuals bit for bit, and the running sums of what was decoded track
 * those of the inputs within half a step. */
static void int8lz4_error_feedback_same_as_int8(void **state)
{
    size_t n = 3000, steps = 200;
    pst_rng_t rng;
    pst_rng_init(&rng, 101);
    float *x = calloc(n, sizeof *x), *res_int8 = calloc(n, sizeof(float));
    float *res_lz4 = calloc(n, sizeof(float)), *dec_int8 = malloc(n * sizeof(float));
    float *dec_lz4 = malloc(n * sizeof(float));
    double *sum_in = calloc(n, sizeof(double)), *sum_out = calloc(n, sizeof(double));
    size_t cap = pst_codec_bound(PST_CODEC_INT8_LZ4, n), len_int8, len_lz4;
    uint8_t *buf_int8 = malloc(cap), *buf_lz4 = malloc(cap);
    pst_codec_t used_int8, used_lz4;
    for (size_t step = 0; step < steps; step++) {
        for (size_t i = 0; i < n; i += 10) /* 90% zeros */
            x[i] = (i % 20 ? -0.2f : 0.3f) + 0.05f * (float)pst_rng_uniform(&rng);
        for (size_t start = 0; start < n; start += PST_CODEC_INT8_BLOCK)
            x[start] = start % 512 ? -127.0f : 127.0f;
        assert_int_equal(pst_codec_encode(PST_CODEC_INT8, x, n, res_int8, buf_int8, cap, &len_int8,
                                          &used_int8, NULL),
                         PST_OK);
        assert_int_equal(pst_codec_encode(PST_CODEC_INT8_LZ4, x, n, res_lz4, buf_lz4, cap, &len_lz4,
                                          &used_lz4, NULL),
                         PST_OK);
        assert_int_equal(used_lz4, PST_CODEC_INT8_LZ4);
        assert_true(len_lz4 < len_int8);
        assert_int_equal(pst_codec_decode(used_int8, buf_int8, len_int8, dec_int8, n, NULL),
                         PST_OK);
        assert_int_equal(pst_codec_decode(used_lz4, buf_lz4, len_lz4, dec_lz4, n, NULL), PST_OK);
        assert_memory_equal(dec_lz4, dec_int8, n * sizeof(float));
        assert_memory_equal(res_lz4, res_int8, n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            sum_in[i] += x[i];
            sum_out[i] += dec_lz4[i];
            assert_true(fabs(sum_in[i] - sum_out[i]) <= 0.5 + 1e-4);
            assert_true(fabs(sum_in[i] - sum_out[i] - res_lz4[i]) < 1e-4);
        }
    }
    assert_true(sum_out[20] > 0.3 * steps && sum_out[10] < -0.15 * steps); /* they got through */
    free(buf_lz4);
    free(buf_int8);
    free(sum_out);
    free(sum_in);
    free(dec_lz4);
    free(dec_int8);
    free(res_lz4);
    free(res_int8);
    free(x);
}

/* Sizes of int8lz4 relative to int8 for a million floats, measured with these seeds: 90% zeros
 * 34.7%, 99% zeros 8.4%. Dense normal values fall back to int8 byte for byte, error feedback
 * included. */
static void int8lz4_shrinks_zeros_and_falls_back_on_dense(void **state)
{
    size_t n = 1000000, len, int8_len = pst_codec_bound(PST_CODEC_INT8, n);
    pst_codec_t used;
    const double densities[] = {0.1, 0.01}, most[] = {0.36, 0.09};
    for (size_t d = 0; d < 2; d++) {
        float *x = sparse_floats(n, 88, densities[d]);
        uint8_t *enc = encode_ok(PST_CODEC_INT8_LZ4, x, n, NULL, &len, &used);
        assert_int_equal(used, PST_CODEC_INT8_LZ4);
        if ((double)len > most[d] * (double)int8_len)
            fail_msg("%.0f%% zeros: %zu bytes, %.1f%% of int8", 100 * (1 - densities[d]), len,
                     100.0 * (double)len / (double)int8_len);
        free(enc);
        free(x);
    }
    float *dense = normal_floats(n, 89, 1.0);
    float *res_int8 = calloc(n, sizeof(float)), *res_lz4 = calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++)
        res_int8[i] = res_lz4[i] = 1e-3f * dense[(i * 7919) % n];
    size_t plain_len;
    uint8_t *plain = encode_ok(PST_CODEC_INT8, dense, n, res_int8, &plain_len, &used);
    uint8_t *enc = encode_ok(PST_CODEC_INT8_LZ4, dense, n, res_lz4, &len, &used);
    assert_int_equal(used, PST_CODEC_INT8);
    assert_int_equal(len, int8_len);
    assert_memory_equal(enc, plain, len);
    assert_memory_equal(res_lz4, res_int8, n * sizeof(float));
    free(enc);
    free(plain);
    free(res_lz4);
    free(res_int8);
    free(dense);
}

/* LZ4 blocks that are well formed but hold no valid int8 layout for n: too long, too short, or
 * with a bad scale. (Truncations, extra bytes and wrong counts are in decoders_reject_wrong_sizes,
 * byte flips in corrupt_lz4_streams_are_contained.) */
static void int8lz4_rejects_bad_layouts(void **state)
{
    size_t n = 1000, int8_len;
    pst_codec_t used;
    float *x = sparse_floats(n, 4321, 0.05);
    uint8_t *plain = encode_ok(PST_CODEC_INT8, x, n, NULL, &int8_len, &used);
    uint8_t *image = calloc(int8_len + 100, 1);
    int cap = LZ4_compressBound((int)int8_len + 100);
    uint8_t *packed = malloc((size_t)cap);
    const size_t image_lens[] = {int8_len - 1, int8_len + 1, int8_len + 100, 0};
    for (size_t k = 0; k < 4; k++) {
        memcpy(image, plain, image_lens[k] < int8_len ? image_lens[k] : int8_len);
        int packed_len =
            LZ4_compress_default((char *)image, (char *)packed, (int)image_lens[k], cap);
        assert_true(packed_len > 0);
        expect_decode(PST_CODEC_INT8_LZ4, packed, (size_t)packed_len, n, PST_EPROTO);
    }
    const float bad_scales[] = {NAN, INFINITY, -1.0f};
    for (size_t b = 0; b < 3; b++) {
        memcpy(image, plain, int8_len);
        memcpy(image + 260, &bad_scales[b], 4); /* the second block's scale */
        int packed_len = LZ4_compress_default((char *)image, (char *)packed, (int)int8_len, cap);
        expect_decode(PST_CODEC_INT8_LZ4, packed, (size_t)packed_len, n, PST_EPROTO);
    }
    memcpy(image, plain, int8_len); /* the unaltered layout decodes */
    int packed_len = LZ4_compress_default((char *)image, (char *)packed, (int)int8_len, cap);
    expect_decode(PST_CODEC_INT8_LZ4, packed, (size_t)packed_len, n, PST_OK);
    free(packed);
    free(image);
    free(plain);
    free(x);
}

/* Byte flips in LZ4 streams: the decoder returns an error or exactly n floats, never reads or
 * writes out of bounds (run under the sanitizer build too). */
static void corrupt_lz4_streams_are_contained(void **state)
{
    const pst_codec_t codecs[] = {PST_CODEC_LZ4, PST_CODEC_LZ4_SHUFFLE, PST_CODEC_INT8_LZ4};
    size_t n = 5000;
    pst_rng_t rng;
    pst_rng_init(&rng, 2024);
    for (size_t c = 0; c < 3; c++) {
        size_t len;
        uint8_t *enc = valid_payload(codecs[c], n, &len);
        uint8_t *copy = malloc(len);
        int rejected = 0;
        for (int trial = 0; trial < 1000; trial++) {
            memcpy(copy, enc, len);
            int flips = 1 + (int)pst_rng_below(&rng, 4);
            for (int f = 0; f < flips; f++)
                copy[pst_rng_below(&rng, len)] ^= (uint8_t)(1 + pst_rng_below(&rng, 255));
            float *dec;
            int rc = decode_into_new(codecs[c], copy, len, n, &dec);
            assert_true(rc == PST_OK || rc == PST_EPROTO);
            rejected += rc == PST_EPROTO;
            free(dec);
        }
        assert_true(rejected > 100); /* most corruptions change the decoded length */
        free(copy);
        free(enc);
    }
}

static void random_bytes_are_contained(void **state)
{
    pst_rng_t rng;
    pst_rng_init(&rng, 7);
    size_t max_len = 4096;
    uint8_t *junk = malloc(max_len);
    for (int trial = 0; trial < 2000; trial++) {
        size_t len = pst_rng_below(&rng, max_len);
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)pst_rng_next(&rng);
        if (trial % 2) /* runs of zeros make long LZ4 matches and lengths */
            memset(junk + len / 3, 0, len / 3);
        size_t n = pst_rng_below(&rng, 3000);
        for (size_t c = 0; c < N_CODECS; c++) {
            float *dec;
            int rc = decode_into_new(all_codecs[c], junk, len, n, &dec);
            assert_true(rc == PST_OK || rc == PST_EPROTO);
            free(dec);
        }
    }
    free(junk);
}

/* The shuffle scratch of a thread that exits is freed (a leak here shows under the sanitizer). */
static void *encode_in_thread(void *arg)
{
    (void)arg;
    size_t n = 2000, len;
    float *x = sparse_floats(n, 3, 0.05);
    pst_codec_t used;
    uint8_t *enc = encode_ok(PST_CODEC_LZ4_SHUFFLE, x, n, NULL, &len, &used);
    float *dec;
    int rc = decode_into_new(used, enc, len, n, &dec);
    int same = rc == PST_OK && memcmp(dec, x, n * sizeof(float)) == 0;
    free(dec);
    free(enc);
    free(x);
    return same ? arg : NULL;
}

static void shuffle_scratch_per_thread(void **state)
{
    static int token;
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, encode_in_thread, &token), 0);
    for (int t = 0; t < 2; t++) {
        void *result;
        assert_int_equal(pthread_join(threads[t], &result), 0);
        assert_ptr_equal(result, &token);
    }
}

/* ---- checksum ---- */

static void checksum_sees_every_single_byte_change(void **state)
{
    size_t len = 4096 + 13;
    uint8_t *buf = malloc(len + 1);
    pst_rng_t rng;
    pst_rng_init(&rng, 17);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)pst_rng_next(&rng);
    uint32_t base = pst_checksum(buf, len);
    const size_t positions[] = {0, 1, 7, 8, 127, 128, 129, 255, 1000, 4095, 4096, 4100, len - 1};
    const uint8_t flips[] = {0x01, 0x80, 0xff, 0x5a};
    for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            buf[positions[p]] ^= flips[f];
            assert_int_not_equal(pst_checksum(buf, len), base);
            buf[positions[p]] ^= flips[f];
        }
    }
    assert_int_equal(pst_checksum(buf, len), base);
    /* every bit of a 300-byte buffer: two 128-byte stripes, five tail words, four tail bytes */
    uint32_t short_base = pst_checksum(buf, 300);
    for (size_t i = 0; i < 300; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(pst_checksum(buf, 300), short_base);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* unaligned data gives the same sum */
    memmove(buf + 1, buf, len);
    assert_int_equal(pst_checksum(buf + 1, len), base);
    free(buf);
}

static void checksum_depends_on_length(void **state)
{
    uint8_t zeros[80] = {0};
    for (size_t len = 0; len < 79; len++)
        assert_int_not_equal(pst_checksum(zeros, len), pst_checksum(zeros, len + 1));
    /* The value is part of the wire format, so it is pinned: these were computed by an
     * independent Python transcription of the algorithm described in common/net/codec_checksum.c.
     */
    uint8_t pattern[771];
    for (size_t i = 0; i < 768; i++)
        pattern[i] = (uint8_t)i;
    memcpy(pattern + 768, "abc", 3);
    assert_int_equal(pst_checksum("123456789", 9), 0x09baeefcu);
    assert_int_equal(pst_checksum(NULL, 0), 0x4beffaa0u);
    assert_int_equal(pst_checksum(pattern, sizeof pattern), 0x0ea0acaeu);
}

/* The vectorised checksum (where the CPU has it) gives the portable loop's bits, at every length
 * and alignment. */
static void checksum_matches_portable_loop(void **state)
{
    (void)state;
    enum { MAX = 20000 };
    uint8_t *buf = malloc(MAX + 64);
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (size_t i = 0; i < MAX + 64; i++)
        buf[i] = (uint8_t)pst_rng_next(&rng);
    for (size_t len = 0; len <= MAX; len += len < 600 ? 1 : 997) {
        for (size_t at = 0; at < 64; at += 13)
            assert_int_equal(pst_checksum(buf + at, len), pst_checksum_portable(buf + at, len));
    }
    free(buf);
}

/* The copying checksum is the checksum, and the copy is exact, for every tail length. */
static void checksum_copy_matches_checksum(void **state)
{
    (void)state;
    enum { MAX = 70000 };
    uint8_t *src = malloc(MAX), *dst = malloc(MAX);
    pst_rng_t rng;
    pst_rng_init(&rng, 9);
    for (size_t i = 0; i < MAX; i++)
        src[i] = (uint8_t)pst_rng_next(&rng);
    const size_t lens[] = {0, 1, 7, 8, 127, 128, 129, 8191, 8192, 8193, 65536, MAX};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        memset(dst, 0xa5, MAX);
        assert_int_equal(pst_checksum_copy(dst, src, lens[k]), pst_checksum(src, lens[k]));
        if (lens[k] > 0)
            assert_memory_equal(dst, src, lens[k]);
        if (lens[k] < MAX)
            assert_int_equal(dst[lens[k]], 0xa5);
    }
    free(src);
    free(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_bounds),
        cmocka_unit_test(encode_rejects_small_buffer),
        cmocka_unit_test(raw_layout_is_little_endian_float32),
        cmocka_unit_test(lossless_round_trips),
        cmocka_unit_test(shuffle_layout_is_byte_planes),
        cmocka_unit_test(lz4_shrinks_sparse_and_skips_dense),
        cmocka_unit_test(shuffle_beats_plain_lz4_on_truncated_mantissas),
        cmocka_unit_test(fp16_exact_values),
        cmocka_unit_test(fp16_exhaustive_rounding),
        cmocka_unit_test(fp16_round_trips),
        cmocka_unit_test(fp16_error_feedback_tracks_sum),
        cmocka_unit_test(int8_hand_computed_block),
        cmocka_unit_test(int8_error_within_half_scale),
        cmocka_unit_test(int8_error_feedback_tracks_sum),
        cmocka_unit_test(int8_rejects_non_finite),
        cmocka_unit_test(decoders_reject_wrong_sizes),
        cmocka_unit_test(int8_rejects_bad_scales),
        cmocka_unit_test(int8lz4_decodes_to_int8_values),
        cmocka_unit_test(int8lz4_error_feedback_same_as_int8),
        cmocka_unit_test(int8lz4_shrinks_zeros_and_falls_back_on_dense),
        cmocka_unit_test(int8lz4_rejects_bad_layouts),
        cmocka_unit_test(corrupt_lz4_streams_are_contained),
        cmocka_unit_test(random_bytes_are_contained),
        cmocka_unit_test(shuffle_scratch_per_thread),
        cmocka_unit_test(checksum_sees_every_single_byte_change),
        cmocka_unit_test(checksum_depends_on_length),
        cmocka_unit_test(checksum_copy_matches_checksum),
        cmocka_unit_test(checksum_matches_portable_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
