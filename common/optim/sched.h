/* Learning-rate schedules: a pure function of epoch and step, plus reduce-on-plateau state. */
#ifndef PST_COMMON_OPTIM_SCHED_H
#define PST_COMMON_OPTIM_SCHED_H

#include "common/err.h"

typedef enum {
    PST_SCHED_CONSTANT = 0,
    PST_SCHED_STEP,        /* lr * gamma^(floor(epoch / step_size)) */
    PST_SCHED_EXPONENTIAL, /* lr * gamma^epoch */
    PST_SCHED_COSINE,      /* min_lr + (lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2 */
    PST_SCHED_PLATEAU,   /* lr * factor each time val loss fails to improve for `patience` epochs */
    PST_SCHED_ONE_CYCLE, /* per step: cosine up from lr/25 to lr over the first 30% of the run,
                            cosine down to lr/25e4 over the rest (PyTorch OneCycleLR's defaults) */
} pst_sched_kind_t;

typedef struct pst_sched_cfg {
    pst_sched_kind_t kind;
    float base_lr;
    float gamma;          /* step, exponential (0.1 step / 0.95 exponential) */
    int step_size;        /* step: epochs per decay (10) */
    int total_epochs;     /* cosine, one_cycle */
    long steps_per_epoch; /* one_cycle: steps in an epoch (0: the cycle advances per epoch) */
    float min_lr;         /* cosine floor, plateau floor (0) */
    long warmup_steps;    /* linear warm-up from 0 to the scheduled lr over this many steps (0) */
    float factor;         /* plateau (0.1) */
    int patience;         /* plateau (5) */
    float threshold;      /* plateau: relative improvement that counts (1e-4) */
} pst_sched_cfg_t;

typedef struct pst_sched {
    pst_sched_cfg_t cfg;
    float plateau_lr;
    double best;
    int bad_epochs;
} pst_sched_t;

int pst_sched_kind_parse(const char *name, pst_sched_kind_t *kind);
const char *pst_sched_kind_name(pst_sched_kind_t kind);
void pst_sched_init(pst_sched_t *self, const pst_sched_cfg_t *cfg);
/* The learning rate for a step taken during `epoch` (0-based) at global step `step` (0-based). */
float pst_sched_lr(const pst_sched_t *self, int epoch, long step);
/* Reports an epoch's validation loss; only the plateau schedule reacts. */
void pst_sched_observe(pst_sched_t *self, double val_loss);

#endif
