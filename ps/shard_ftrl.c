/* The block FTRL step of sparse slices (see shard_ftrl.h). */
#include "ps/shard_ftrl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/optim/ftrl.h"

/* Rows ahead of the one gathered whose scattered lines are loaded early. */
#define GATHER_AHEAD 16

void pst_slice_ftrl_fini(pst_slice_ftrl_t *f)
{
    free(f->block);
    memset(f, 0, sizeof *f);
}

void pst_slice_ftrl_forget(pst_slice_ftrl_t *f)
{
    f->alpha = 0.0f;
}

static pst_ftrl_cfg_t cfg_of(const pst_slice_t *s, float lr)
{
    return (pst_ftrl_cfg_t){.alpha = lr,
                            .beta = s->optim_cfg.ftrl_beta,
                            .l1 = s->optim_cfg.ftrl_l1,
                            .l2 = s->optim_cfg.ftrl_l2};
}

/* Whether every stepped coordinate's weight is weight(z, n) under cfg, bit for bit, as
 * pst_ftrl_update_kept assumes (coordinates with n = 0 start from their weight either way). */
static bool weights_kept(const pst_slice_t *s, const pst_ftrl_cfg_t *cfg)
{
    size_t w = s->row_width;
    for (size_t r = 0; r < s->n_rows; r++) {
        const float *z = s->row_state + r * s->state_width, *n_sq = z + w;
        const float *v = s->rows + r * w;
        for (size_t j = 0; j < w; j++) {
            if (n_sq[j] == 0.0f)
                continue;
            float want = pst_ftrl_weight_of_root(cfg, z[j], sqrtf(n_sq[j]));
            if (memcmp(&want, &v[j], sizeof want) != 0)
                return false;
        }
    }
    return true;
}

/* Whether the block step may run with alpha lr; learns lr on first use. */
static bool block_applies(pst_slice_t *s, float lr)
{
    pst_slice_ftrl_t *f = &s->ftrl;
    if (s->optim_cfg.kind != PST_OPT_FTRL || s->optim_cfg.lookahead_k != 0 || !(lr > 0.0f) ||
        s->state_width != 2 * s->row_width || f->mixed)
        return false;
    if (f->alpha == lr)
        return true;
    pst_ftrl_cfg_t cfg = cfg_of(s, lr);
    if (f->alpha != 0.0f || !weights_kept(s, &cfg)) {
        f->mixed = true; /* stays: rows stepped under two alphas are never all kept again */
        return false;
    }
    f->alpha = lr;
    return true;
}

static bool reserve(pst_slice_ftrl_t *f, size_t n)
{
    if (n <= f->cap)
        return true;
    float *grown = realloc(f->block, n * 4 * sizeof(float));
    if (grown == NULL)
        return false;
    f->block = grown;
    f->cap = n;
    return true;
}

static void prefetch_row(const pst_slice_t *s, uint32_t r, bool acc)
{
    __builtin_prefetch(s->rows + (size_t)r * s->row_width, 1);
    __builtin_prefetch(s->row_state + (size_t)r * s->state_width, 1);
    __builtin_prefetch(&s->row_steps[r], 1);
    if (acc)
        __builtin_prefetch(s->acc + (size_t)r * s->row_width);
}

/* The rows' weights, z, n and scaled gradients into the four parts of the block. Rows are a few
 * floats wide (one for LR): element loops, as a memcpy call per row would cost more than the copy.
 */
static void gather(pst_slice_t *s, const uint32_t *rows, size_t n, const float *g, bool acc,
                   float scale, float *bw, float *bz, float *bn, float *bg)
{
    size_t w = s->row_width, sw = s->state_width;
    for (size_t i = 0; i < n; i++) {
        if (i + GATHER_AHEAD < n)
            prefetch_row(s, rows[i + GATHER_AHEAD], acc);
        size_t r = rows[i];
        const float *v = s->rows + r * w, *z = s->row_state + r * sw, *n_sq = z + w;
        const float *gi = acc ? s->acc + r * w : g + i * w;
        for (size_t j = 0; j < w; j++) {
            bw[i * w + j] = v[j];
            bz[i * w + j] = z[j];
            bn[i * w + j] = n_sq[j];
            /* as scale_floats does it: untouched when 1 */
            bg[i * w + j] = scale == 1.0f ? gi[j] : gi[j] * scale;
        }
    }
}

static void scatter(pst_slice_t *s, const uint32_t *rows, size_t n, const float *bw,
                    const float *bz, const float *bn)
{
    size_t w = s->row_width, sw = s->state_width;
    for (size_t i = 0; i < n; i++) {
        size_t r = rows[i];
        float *v = s->rows + r * w, *z = s->row_state + r * sw, *n_sq = z + w;
        for (size_t j = 0; j < w; j++) {
            v[j] = bw[i * w + j];
            z[j] = bz[i * w + j];
            n_sq[j] = bn[i * w + j];
        }
        s->row_steps[r]++;
    }
}

bool pst_slice_ftrl_block_step(pst_slice_t *s, const uint32_t *rows, size_t n, const float *g,
                               bool acc, float scale, float lr)
{
    size_t len = n * s->row_width;
    if (!block_applies(s, lr) || !reserve(&s->ftrl, len))
        return false;
    float *bw = s->ftrl.block, *bz = bw + len, *bn = bz + len, *bg = bn + len;
    gather(s, rows, n, g, acc, scale, bw, bz, bn, bg);
    pst_ftrl_cfg_t cfg = cfg_of(s, lr);
    pst_ftrl_update_kept(&cfg, bw, bz, bn, bg, len);
    scatter(s, rows, n, bw, bz, bn);
    return true;
}
