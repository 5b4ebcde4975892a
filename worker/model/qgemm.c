/* int8 x int8 -> int32 matrix products for the quantised inference path: AVX-VNNI or AVX2 kernels
 * chosen at run time, and a plain loop (which the compiler vectorises where it can) elsewhere. */
#include <stdint.h>

#include "worker/model/quant.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86_KERNEL 1
#endif

static int32_t dot_plain(const int8_t *restrict a, const int8_t *restrict b, int k)
{
    int32_t sum = 0;
    for (int i = 0; i < k; i++)
        sum += (int16_t)a[i] * (int16_t)b[i];
    return sum;
}

static void qgemm_plain(const int8_t *a, const int8_t *b, int32_t *c, int m, int n, int k)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[(size_t)i * n + j] = dot_plain(a + (size_t)i * k, b + (size_t)j * k, k);
}

#ifdef HAVE_X86_KERNEL
/* a * b for 32 pairs summed into 8 int32 lanes. maddubs wants an unsigned operand: |a| times b
 * with a's sign moved onto b gives the same products, and with both in [-127, 127] each pair sum
 * (at most 2 * 127^2 = 32258) stays inside int16, so nothing saturates and the sum is exact. */
__attribute__((target("avx2"))) static inline __m256i madd32(__m256i abs_a, __m256i a, __m256i b)
{
    __m256i pairs = _mm256_maddubs_epi16(abs_a, _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* The four lane sums of a0..a3 as one vector. */
__attribute__((target("avx2"))) static inline __m128i sum4(__m256i a0, __m256i a1, __m256i a2,
                                                           __m256i a3)
{
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* AVX-VNNI: vpdpbusd sums four u8 x s8 products straight into each int32 lane, one instruction
 * for maddubs + madd + add; the same |a| and sign-moved b, so the same exact sums. */
__attribute__((target("avx2,avxvnni"))) static inline __m256i dpbusd32(__m256i acc, __m256i abs_a,
                                                                       __m256i a, __m256i b)
{
    return _mm256_dpbusd_avx_epi32(acc, abs_a, _mm256_sign_epi8(b, a));
}

__attribute__((target("avx2"))) static inline __m256i madd_acc(__m256i acc, __m256i abs_a,
                                                               __m256i a, __m256i b)
{
    return _mm256_add_epi32(acc, madd32(abs_a, a, b));
}

/* c[0..3] = a . b[j] for the four rows b, b + k, b + 2k, b + 3k, with STEP accumulating 32
 * products of a and one row into 8 int32 lanes. */
#define DEFINE_DOT4(NAME, TARGET, STEP)                                                            \
    __attribute__((target(TARGET))) static void NAME(const int8_t *a, const int8_t *b, int k,      \
                                                     int32_t *c)                                   \
    {                                                                                              \
        const int8_t *b1 = b + k, *b2 = b1 + k, *b3 = b2 + k;                                      \
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;                            \
        int i = 0;                                                                                 \
        for (; i + 32 <= k; i += 32) {                                                             \
            __m256i va = _mm256_loadu_si256((const __m256i *)(a + i));                             \
            __m256i abs_a = _mm256_abs_epi8(va);                                                   \
            s0 = STEP(s0, abs_a, va, _mm256_loadu_si256((const __m256i *)(b + i)));                \
            s1 = STEP(s1, abs_a, va, _mm256_loadu_si256((const __m256i *)(b1 + i)));               \
            s2 = STEP(s2, abs_a, va, _mm256_loadu_si256((const __m256i *)(b2 + i)));               \
            s3 = STEP(s3, abs_a, va, _mm256_loadu_si256((const __m256i *)(b3 + i)));               \
        }                                                                                          \
        _mm_storeu_si128((__m128i *)c, sum4(s0, s1, s2, s3));                                      \
        if (i < k) {                                                                               \
            c[0] += dot_plain(a + i, b + i, k - i);                                                \
            c[1] += dot_plain(a + i, b1 + i, k - i);                                               \
            c[2] += dot_plain(a + i, b2 + i, k - i);                                               \
            c[3] += dot_plain(a + i, b3 + i, k - i);                                               \
        }                                                                                          \
    }

DEFINE_DOT4(dot4_avx2, "avx2", madd_acc)
DEFINE_DOT4(dot4_vnni, "avx2,avxvnni", dpbusd32)

typedef void dot4_fn(const int8_t *a, const int8_t *b, int k, int32_t *c);

/* b rows are taken in blocks that stay in cache while every a row passes over them: a conv2d's
 * lowered input is megabytes, and would otherwise be read from memory once per output channel. */
#define B_BLOCK_BYTES (32 * 1024)

static void qgemm_blocked(dot4_fn *dot4, const int8_t *a, const int8_t *b, int32_t *c, int m, int n,
                          int k)
{
    int block = (int)(B_BLOCK_BYTES / (size_t)k) & ~3;
    block = block < 4 ? 4 : block;
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = n - j0 < block ? n : j0 + block;
        for (int i = 0; i < m; i++) {
            const int8_t *ai = a + (size_t)i * k;
            int32_t *ci = c + (size_t)i * n;
            int j = j0;
            for (; j + 4 <= j1; j += 4)
                dot4(ai, b + (size_t)j * k, k, ci + j);
            for (; j < j1; j++)
                ci[j] = dot_plain(ai, b + (size_t)j * k, k);
        }
    }
}
#endif

#ifdef HAVE_X86_KERNEL
/* AVX-VNNI is CPUID leaf 7 subleaf 1, EAX bit 4, read directly: clang 14's
 * __builtin_cpu_supports does not know the "avxvnni" name. */
static bool has_avxvnni(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1u);
}
#endif

bool pst_qgemm_has(pst_qgemm_kernel_t kernel)
{
    switch (kernel) {
    case PST_QGEMM_PLAIN:
        return true;
#ifdef HAVE_X86_KERNEL
    case PST_QGEMM_AVX2:
        return __builtin_cpu_supports("avx2");
    case PST_QGEMM_VNNI:
        return __builtin_cpu_supports("avx2") && has_avxvnni();
#endif
    default:
        return false;
    }
}

void pst_qgemm_with(pst_qgemm_kernel_t kernel, const int8_t *a, const int8_t *b, int32_t *c, int m,
                    int n, int k)
{
#ifdef HAVE_X86_KERNEL
    if (kernel == PST_QGEMM_VNNI) {
        qgemm_blocked(dot4_vnni, a, b, c, m, n, k);
        return;
    }
    if (kernel == PST_QGEMM_AVX2) {
        qgemm_blocked(dot4_avx2, a, b, c, m, n, k);
        return;
    }
#endif
    qgemm_plain(a, b, c, m, n, k);
}

void pst_qgemm(const int8_t *a, const int8_t *b, int32_t *c, int m, int n, int k)
{
    pst_qgemm_kernel_t kernel = pst_qgemm_has(PST_QGEMM_VNNI)   ? PST_QGEMM_VNNI
                                : pst_qgemm_has(PST_QGEMM_AVX2) ? PST_QGEMM_AVX2
                                                                : PST_QGEMM_PLAIN;
    pst_qgemm_with(kernel, a, b, c, m, n, k);
}
