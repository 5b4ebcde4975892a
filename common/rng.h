/* Seeded pseudo-random numbers (xoshiro256**), identical on every platform for the same seed. */
#ifndef PST_RNG_H
#define PST_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct pst_rng {
    uint64_t s[4];
} pst_rng_t;

void pst_rng_init(pst_rng_t *rng, uint64_t seed);
uint64_t pst_rng_next(pst_rng_t *rng);
/* Uniform in [0, 1). */
double pst_rng_uniform(pst_rng_t *rng);
/* Uniform integer in [0, n); n > 0. Unbiased. */
uint64_t pst_rng_below(pst_rng_t *rng, uint64_t n);
/* Standard normal (Box-Muller). */
double pst_rng_normal(pst_rng_t *rng);
/* Fisher-Yates shuffle of idx[0..n). */
void pst_rng_shuffle(pst_rng_t *rng, size_t *idx, size_t n);
/* The splitmix64 finalizer: a bijection of 64-bit words whose every output bit depends on every
 * input bit. Seeds the generator, hashes keys onto servers and signs key lists. */
static inline uint64_t pst_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* A seed derived from a parent seed and a stream number (for per-rank, per-fold streams). */
uint64_t pst_rng_derive(uint64_t seed, uint64_t stream);

#endif
