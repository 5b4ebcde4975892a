/* Image augmentation on the fly: random shifts (a crop of the zero-padded image), horizontal
 * flips, small rotations and cutout, drawn from a caller-given seeded stream. */
#ifndef PST_COMMON_DATA_AUGMENT_H
#define PST_COMMON_DATA_AUGMENT_H

#include "common/err.h"
#include "common/rng.h"

#define PST_AUGMENT_MAX_OPS 8

typedef enum {
    PST_AUG_SHIFT = 0, /* shift:N  move by dx, dy uniform in [-N, N] pixels, 0 fills */
    PST_AUG_FLIP,      /* flip     mirror left-right with probability 1/2 */
    PST_AUG_ROTATE,    /* rotate:D turn by an angle uniform in [-D, D] degrees, bilinear */
    PST_AUG_CUTOUT,    /* cutout:N zero an N x N square centred anywhere on the image */
} pst_aug_kind_t;

typedef struct pst_aug_op {
    pst_aug_kind_t kind;
    float arg;
} pst_aug_op_t;

typedef struct pst_augment {
    int n_ops; /* 0: no augmentation */
    pst_aug_op_t ops[PST_AUGMENT_MAX_OPS];
    int channels, height, width; /* of every row */
} pst_augment_t;

/* Parses the entries of data.augment ("shift:2", "flip", "rotate:10", "cutout:8"); errors name
 * the entry. The image shape is set separately. */
int pst_augment_parse(pst_augment_t *aug, char *const *items, int n_items, pst_err_t *err);

/* Applies the ops in order to each of the n rows of x (n, C*H*W), in place; scratch holds
 * C*H*W floats. The draws come from rng alone, row after row. */
void pst_augment_apply(const pst_augment_t *aug, float *x, int n, pst_rng_t *rng, float *scratch);

#endif
