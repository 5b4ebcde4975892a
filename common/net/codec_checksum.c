/* The checksum carried in the wire header: a multiply-rotate hash over little-endian words. */
#include "common/net/codec_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* A multiply-rotate hash over 64-bit little-endian words. The body runs eight independent lanes
 * over 128-byte stripes, each lane taking two words a step, so the multiplications overlap
 * (~2.5x zlib's crc32 here). Every step is a bijection of the lane state and of each word, so a
 * change confined to one 8-byte word always changes the 64-bit state before the final fold to
 * 32 bits. Not cryptographic: it catches corruption, not forgery. On CPUs with AVX-512 the eight
 * lanes step together in one vector register (about 2-3x faster on a payload in cache), giving
 * the same bits. */
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

typedef struct lanes {
    uint64_t v[CHECKSUM_LANES];
} lanes_t;

static void lanes_init(lanes_t *l)
{
    for (int k = 0; k < CHECKSUM_LANES; k++)
        l->v[k] = MIX_K2 * (uint64_t)(k + 1);
}

static void lanes_mix(lanes_t *l, const uint8_t *p, size_t n_stripes)
{
    for (size_t s = 0; s < n_stripes; s++, p += CHECKSUM_STRIPE) {
        for (int k = 0; k < CHECKSUM_LANES; k++)
            l->v[k] = mix_word(l->v[k], pst_codec_load_le64(p + 16 * k)) +
                      pst_codec_load_le64(p + 16 * k + 8);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)

/* lanes_mix with AVX-512: the eight lanes in one register; the even words of a stripe are the
 * mixed ones and the odd words the added ones, as in the portable loop (x86 is little-endian, so
 * plain loads are the little-endian words). Same arithmetic, same result. */
__attribute__((target("avx512f,avx512dq"))) static void
lanes_mix_avx512(lanes_t *l, const uint8_t *p, size_t n_stripes)
{
    __m512i v = _mm512_loadu_si512(l->v);
    const __m512i k1 = _mm512_set1_epi64((long long)MIX_K1);
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    for (size_t s = 0; s < n_stripes; s++, p += CHECKSUM_STRIPE) {
        __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 64);
        __m512i mixed = _mm512_permutex2var_epi64(a, even, b);
        __m512i added = _mm512_permutex2var_epi64(a, odd, b);
        v = _mm512_rol_epi64(_mm512_xor_si512(v, mixed), 29);
        v = _mm512_add_epi64(_mm512_mullo_epi64(v, k1), added);
    }
    _mm512_storeu_si512(l->v, v);
}

static bool have_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}
#else
static void lanes_mix_avx512(lanes_t *l, const uint8_t *p, size_t n_stripes)
{
    lanes_mix(l, p, n_stripes);
}

static bool have_avx512(void)
{
    return false;
}
#endif

static uint64_t lanes_fold(const lanes_t *l, uint64_t h)
{
    for (int k = 0; k < CHECKSUM_LANES; k++)
        h = rotl64(h ^ l->v[k] * MIX_K2, 31) * MIX_K1;
    return h;
}

static uint64_t mix_tail(uint64_t h, const uint8_t *p, size_t len)
{
    for (; len >= 8; p += 8, len -= 8)
        h = mix_word(h, pst_codec_load_le64(p));
    if (len > 0) {
        uint64_t word = 0;
        for (size_t k = 0; k < len; k++)
            word |= (uint64_t)p[k] << (8 * k);
        h = mix_word(h, word);
    }
    return h;
}

static uint32_t finish(uint64_t h)
{
    h ^= h >> 32;
    h *= MIX_K2;
    h ^= h >> 29;
    h *= MIX_K3;
    h ^= h >> 32;
    return (uint32_t)h;
}

static uint32_t checksum_with(void (*mix)(lanes_t *, const uint8_t *, size_t), const void *data,
                              size_t len)
{
    const uint8_t *p = data;
    size_t n_stripes = len / CHECKSUM_STRIPE;
    lanes_t l;
    lanes_init(&l);
    mix(&l, p, n_stripes);
    uint64_t h = lanes_fold(&l, (uint64_t)len * MIX_K3);
    /* no arithmetic on the NULL of an empty block (undefined, even adding 0) */
    h = mix_tail(h, len ? p + n_stripes * CHECKSUM_STRIPE : p, len % CHECKSUM_STRIPE);
    return finish(h);
}

/* The stripe loop this CPU runs fastest; every choice gives the same bits. */
static void (*best_mix(void))(lanes_t *, const uint8_t *, size_t)
{
    return have_avx512() ? lanes_mix_avx512 : lanes_mix;
}

uint32_t pst_checksum(const void *data, size_t len)
{
    return checksum_with(best_mix(), data, len);
}

uint32_t pst_checksum_portable(const void *data, size_t len)
{
    return checksum_with(lanes_mix, data, len);
}

/* Stripes per block: a block is copied, then hashed while it is still in L1. */
#define COPY_BLOCK_STRIPES 64

uint32_t pst_checksum_copy(void *dst, const void *src, size_t len)
{
    const uint8_t *p = src;
    uint8_t *q = dst;
    size_t n_stripes = len / CHECKSUM_STRIPE;
    void (*mix)(lanes_t *, const uint8_t *, size_t) = best_mix();
    lanes_t l;
    lanes_init(&l);
    for (size_t done = 0; done < n_stripes;) {
        size_t block =
            n_stripes - done < COPY_BLOCK_STRIPES ? n_stripes - done : COPY_BLOCK_STRIPES;
        size_t bytes = block * CHECKSUM_STRIPE;
        memcpy(q, p, bytes);
        mix(&l, p, block);
        p += bytes;
        q += bytes;
        done += block;
    }
    size_t tail = len % CHECKSUM_STRIPE;
    memcpy(q, p, tail);
    uint64_t h = lanes_fold(&l, (uint64_t)len * MIX_K3);
    return finish(mix_tail(h, p, tail));
}
