/* The 2x2, stride-2 maxpool of one plane, forward and (fused with the ReLU below it) backward,
 * four outputs at a time with SSE2 compares and selects. */
#include "worker/model/model_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Why: written as scalar code, the window's three compares become branches that mispredict on
 * every other window (a quarter of the inputs of a CNN's first pool are the maximum of theirs),
 * and the pools took a fifth of a training step. The vector code makes the same comparisons in
 * the same order (strictly greater replaces, so the first maximum in row order wins, and a NaN
 * never does), so values and argmax offsets are those of the general loop in spatial.c. A row
 * whose length is not a multiple of 4 ends with its last four outputs, some of them computed
 * (and written, with the same values) twice: scalar leftovers would bring the branches back. */

/* Outputs [ox0, ow) of output row oy, one at a time. */
static void forward_scalar(const pst_spatial_geom_t *g, const float *xc, float *y, int32_t *arg,
                           int oy, int ox0)
{
    for (int ox = ox0; ox < g->ow; ox++) {
        int at = 2 * oy * g->w + 2 * ox, best = at;
        best = xc[at + 1] > xc[best] ? at + 1 : best;
        best = xc[at + g->w] > xc[best] ? at + g->w : best;
        best = xc[at + g->w + 1] > xc[best] ? at + g->w + 1 : best;
        y[oy * g->ow + ox] = xc[best];
        arg[oy * g->ow + ox] = best;
    }
}

#if defined(__SSE2__)
/* Replaces (best, idx) by (v, at) where v > best. */
static void take_greater(__m128 *best, __m128i *idx, __m128 v, __m128i at)
{
    __m128 gt = _mm_cmpgt_ps(v, *best);
    __m128i gti = _mm_castps_si128(gt);
    *best = _mm_or_ps(_mm_and_ps(gt, v), _mm_andnot_ps(gt, *best));
    *idx = _mm_or_si128(_mm_and_si128(gti, at), _mm_andnot_si128(gti, *idx));
}
#endif

void pst_maxpool2x2_forward_plane(const pst_spatial_geom_t *g, const float *xc, float *y,
                                  int32_t *arg)
{
    for (int oy = 0; oy < g->oh; oy++) {
        int ox = 0;
#if defined(__SSE2__)
        const float *r0 = xc + (size_t)2 * oy * g->w, *r1 = r0 + g->w;
        __m128i step = _mm_set_epi32(6, 4, 2, 0), one = _mm_set1_epi32(1);
        __m128i down = _mm_set1_epi32(g->w);
        for (int next = 0; g->ow >= 4 && next < g->ow; next += 4) {
            ox = next + 4 <= g->ow ? next : g->ow - 4; /* a short last group: the row's last four */
            __m128 t0 = _mm_loadu_ps(r0 + 2 * ox), t1 = _mm_loadu_ps(r0 + 2 * ox + 4);
            __m128 u0 = _mm_loadu_ps(r1 + 2 * ox), u1 = _mm_loadu_ps(r1 + 2 * ox + 4);
            __m128i at = _mm_add_epi32(_mm_set1_epi32(2 * oy * g->w + 2 * ox), step);
            __m128 best = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));
            __m128i idx = at;
            take_greater(&best, &idx, _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)),
                         _mm_add_epi32(at, one));
            __m128i below = _mm_add_epi32(at, down);
            take_greater(&best, &idx, _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)), below);
            take_greater(&best, &idx, _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)),
                         _mm_add_epi32(below, one));
            _mm_storeu_ps(y + oy * g->ow + ox, best);
            _mm_storeu_si128((__m128i *)(arg + oy * g->ow + ox), idx);
        }
        ox = g->ow >= 4 ? g->ow : 0;
#endif
        forward_scalar(g, xc, y, arg, oy, ox);
    }
}

/* The gradient an argmax input receives: the pool's gradient where the pooled value (the ReLU's
 * output there) is positive, else 0; 0 + g turns a -0 into the +0 the separate passes produce. */
static float masked(float pooled, float g)
{
    return pooled > 0.0f ? 0.0f + g : 0.0f;
}

static void backward_scalar(const pst_spatial_geom_t *g, const float *d, const float *y,
                            const int32_t *arg, float *xc, int oy, int ox0)
{
    for (int ox = ox0; ox < g->ow; ox++) {
        int o = oy * g->ow + ox, at = 2 * oy * g->w + 2 * ox, best = arg[o];
        float v = masked(y[o], d[o]);
        xc[at] = best == at ? v : 0.0f;
        xc[at + 1] = best == at + 1 ? v : 0.0f;
        xc[at + g->w] = best == at + g->w ? v : 0.0f;
        xc[at + g->w + 1] = best == at + g->w + 1 ? v : 0.0f;
    }
}

void pst_maxpool2x2_relu_backward_plane(const pst_spatial_geom_t *g, const float *d, const float *y,
                                        const int32_t *arg, float *xc)
{
    for (int oy = 0; oy < g->oh; oy++) {
        int ox = 0;
#if defined(__SSE2__)
        float *r0 = xc + (size_t)2 * oy * g->w, *r1 = r0 + g->w;
        __m128i step = _mm_set_epi32(6, 4, 2, 0), one = _mm_set1_epi32(1);
        __m128i down = _mm_set1_epi32(g->w);
        __m128 zero = _mm_setzero_ps();
        for (int next = 0; g->ow >= 4 && next < g->ow; next += 4) {
            ox = next + 4 <= g->ow ? next : g->ow - 4; /* a short last group: the row's last four */
            int o = oy * g->ow + ox;
            __m128 positive = _mm_cmpgt_ps(_mm_loadu_ps(y + o), zero);
            __m128 v = _mm_and_ps(positive, _mm_add_ps(zero, _mm_loadu_ps(d + o)));
            __m128i best = _mm_loadu_si128((const __m128i *)(arg + o));
            __m128i at = _mm_add_epi32(_mm_set1_epi32(2 * oy * g->w + 2 * ox), step);
            __m128i below = _mm_add_epi32(at, down);
            __m128 a = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(best, at)), v);
            __m128 b =
                _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(best, _mm_add_epi32(at, one))), v);
            __m128 c = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(best, below)), v);
            __m128 e =
                _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(best, _mm_add_epi32(below, one))), v);
            /* (a0 b0 a1 b1 | a2 b2 a3 b3) is the top row of the four windows, (c, e) the bottom */
            _mm_storeu_ps(r0 + 2 * ox, _mm_unpacklo_ps(a, b));
            _mm_storeu_ps(r0 + 2 * ox + 4, _mm_unpackhi_ps(a, b));
            _mm_storeu_ps(r1 + 2 * ox, _mm_unpacklo_ps(c, e));
            _mm_storeu_ps(r1 + 2 * ox + 4, _mm_unpackhi_ps(c, e));
        }
        ox = g->ow >= 4 ? g->ow : 0;
#endif
        backward_scalar(g, d, y, arg, xc, oy, ox);
    }
}
