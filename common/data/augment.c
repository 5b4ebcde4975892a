/* Image augmentation: each op transforms one (C, H, W) image in place, with its draws taken from
 * the stream the caller seeded (so a run's augmented batches depend on its seed alone). */
#include "common/data/augment.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/numparse.h"

static const struct {
    const char *name;
    bool takes_arg;
    double max_arg;
} OPS[] = {
    [PST_AUG_SHIFT] = {"shift", true, 64},
    [PST_AUG_FLIP] = {"flip", false, 0},
    [PST_AUG_ROTATE] = {"rotate", true, 180},
    [PST_AUG_CUTOUT] = {"cutout", true, 1024},
};
#define N_OPS ((int)(sizeof OPS / sizeof OPS[0]))

static int parse_one(pst_aug_op_t *op, const char *text, int index, pst_err_t *err)
{
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    for (int k = 0; k < N_OPS; k++) {
        if (strlen(OPS[k].name) != len || strncmp(OPS[k].name, text, len) != 0)
            continue;
        double v = 0;
        if (OPS[k].takes_arg != (colon != NULL) ||
            (colon &&
             (pst_parse_double(colon + 1, 0, &v) != PST_OK || !(v > 0) || v > OPS[k].max_arg)))
            return pst_err_set(err, PST_EINVAL, "data.augment[%d]: '%s': %s%s", index, text,
                               OPS[k].name,
                               OPS[k].takes_arg ? " needs a positive size, e.g. shift:2, "
                                                  "rotate:10, cutout:8"
                                                : " takes no argument");
        op->kind = (pst_aug_kind_t)k;
        op->arg = (float)v;
        return PST_OK;
    }
    return pst_err_set(err, PST_EINVAL,
                       "data.augment[%d]: unknown augmentation '%s' (shift:N, flip, rotate:DEG, "
                       "cutout:N)",
                       index, text);
}

int pst_augment_parse(pst_augment_t *aug, char *const *items, int n_items, pst_err_t *err)
{
    memset(aug, 0, sizeof *aug);
    if (n_items > PST_AUGMENT_MAX_OPS)
        return pst_err_set(err, PST_EINVAL, "data.augment: more than %d entries",
                           PST_AUGMENT_MAX_OPS);
    for (int i = 0; i < n_items; i++) {
        int rc = parse_one(&aug->ops[i], items[i], i, err);
        if (rc != PST_OK)
            return rc;
    }
    aug->n_ops = n_items;
    return PST_OK;
}

/* A uniform integer in [-n, n]. */
static int uniform_int(pst_rng_t *rng, int n)
{
    int v = (int)(pst_rng_uniform(rng) * (2 * n + 1)) - n;
    return v > n ? n : v;
}

static void shift_image(const pst_augment_t *a, float *img, int dx, int dy, float *scratch)
{
    int h = a->height, w = a->width;
    for (int c = 0; c < a->channels; c++) {
        float *plane = img + (size_t)c * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sy = y - dy, sx = x - dx;
                scratch[y * w + x] =
                    sy >= 0 && sy < h && sx >= 0 && sx < w ? plane[sy * w + sx] : 0.0f;
            }
        memcpy(plane, scratch, (size_t)h * w * sizeof(float));
    }
}

static void flip_image(const pst_augment_t *a, float *img)
{
    int w = a->width;
    for (int r = 0; r < a->channels * a->height; r++) {
        float *row = img + (size_t)r * w;
        for (int x = 0; x < w / 2; x++) {
            float t = row[x];
            row[x] = row[w - 1 - x];
            row[w - 1 - x] = t;
        }
    }
}

/* Bilinear sample of plane at (y, x), 0 outside. */
static float sample(const float *plane, int h, int w, double y, double x)
{
    int y0 = (int)floor(y), x0 = (int)floor(x);
    double fy = y - y0, fx = x - x0, v = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int yy = y0 + dy, xx = x0 + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                continue;
            v += (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx) * plane[yy * w + xx];
        }
    return (float)v;
}

static void rotate_image(const pst_augment_t *a, float *img, double degrees, float *scratch)
{
    int h = a->height, w = a->width;
    double t = degrees * M_PI / 180.0, cs = cos(t), sn = sin(t);
    double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
    for (int c = 0; c < a->channels; c++) {
        float *plane = img + (size_t)c * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) { /* the source of (y, x) under the inverse turn */
                double sy = cy + (y - cy) * cs - (x - cx) * sn;
                double sx = cx + (y - cy) * sn + (x - cx) * cs;
                scratch[y * w + x] = sample(plane, h, w, sy, sx);
            }
        memcpy(plane, scratch, (size_t)h * w * sizeof(float));
    }
}

static void cutout_image(const pst_augment_t *a, float *img, int size, int cy, int cx)
{
    int h = a->height, w = a->width, y0 = cy - size / 2, x0 = cx - size / 2;
    for (int c = 0; c < a->channels; c++)
        for (int y = y0 < 0 ? 0 : y0; y < y0 + size && y < h; y++)
            for (int x = x0 < 0 ? 0 : x0; x < x0 + size && x < w; x++)
                img[((size_t)c * h + y) * w + x] = 0.0f;
}

static void apply_op(const pst_augment_t *a, const pst_aug_op_t *op, float *img, pst_rng_t *rng,
                     float *scratch)
{
    switch (op->kind) {
    case PST_AUG_SHIFT: {
        int dx = uniform_int(rng, (int)op->arg), dy = uniform_int(rng, (int)op->arg);
        shift_image(a, img, dx, dy, scratch);
        break;
    }
    case PST_AUG_FLIP:
        if (pst_rng_uniform(rng) < 0.5)
            flip_image(a, img);
        break;
    case PST_AUG_ROTATE:
        rotate_image(a, img, (2.0 * pst_rng_uniform(rng) - 1.0) * op->arg, scratch);
        break;
    case PST_AUG_CUTOUT: {
        int cy = (int)(pst_rng_uniform(rng) * a->height);
        int cx = (int)(pst_rng_uniform(rng) * a->width);
        cutout_image(a, img, (int)op->arg, cy, cx);
        break;
    }
    }
}

void pst_augment_apply(const pst_augment_t *aug, float *x, int n, pst_rng_t *rng, float *scratch)
{
    size_t size = (size_t)aug->channels * aug->height * aug->width;
    for (int r = 0; r < n; r++)
        for (int k = 0; k < aug->n_ops; k++)
            apply_op(aug, &aug->ops[k], x + (size_t)r * size, rng, scratch);
}
