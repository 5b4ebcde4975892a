/* The checksum carried in the wire header: a multiply-rotate hash over little-endian words. */
#include "common/net/codec_internal.h"

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

uint32_t pst_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t n_stripes = len / CHECKSUM_STRIPE;
    lanes_t l;
    lanes_init(&l);
    lanes_mix(&l, p, n_stripes);
    uint64_t h = lanes_fold(&l, (uint64_t)len * MIX_K3);
    h = mix_tail(h, p + n_stripes * CHECKSUM_STRIPE, len % CHECKSUM_STRIPE);
    return finish(h);
}

/* Stripes per block: a block is copied, then hashed while it is still in L1. */
#define COPY_BLOCK_STRIPES 64

uint32_t pst_checksum_copy(void *dst, const void *src, size_t len)
{
    const uint8_t *p = src;
    uint8_t *q = dst;
    size_t n_stripes = len / CHECKSUM_STRIPE;
    lanes_t l;
    lanes_init(&l);
    for (size_t done = 0; done < n_stripes;) {
        size_t block =
            n_stripes - done < COPY_BLOCK_STRIPES ? n_stripes - done : COPY_BLOCK_STRIPES;
        size_t bytes = block * CHECKSUM_STRIPE;
        memcpy(q, p, bytes);
        lanes_mix(&l, p, block);
        p += bytes;
        q += bytes;
        done += block;
    }
    size_t tail = len % CHECKSUM_STRIPE;
    memcpy(q, p, tail);
    uint64_t h = lanes_fold(&l, (uint64_t)len * MIX_K3);
    return finish(mix_tail(h, p, tail));
}
