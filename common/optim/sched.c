/* Learning-rate schedules: closed forms of epoch and step, warm-up, and reduce-on-plateau state. */
#include "common/optim/sched.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[] = {"constant", "step",    "exponential",
                                         "cosine",   "plateau", "one_cycle"};
enum { N_KINDS = sizeof kind_names / sizeof kind_names[0] };

int pst_sched_kind_parse(const char *name, pst_sched_kind_t *kind)
{
    for (int i = 0; name != NULL && i < N_KINDS; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (pst_sched_kind_t)i;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

const char *pst_sched_kind_name(pst_sched_kind_t kind)
{
    if ((int)kind < 0 || (int)kind >= N_KINDS)
        return "unknown";
    return kind_names[kind];
}

void pst_sched_init(pst_sched_t *self, const pst_sched_cfg_t *cfg)
{
    self->cfg = *cfg;
    self->plateau_lr = cfg->base_lr;
    self->best = INFINITY;
    self->bad_epochs = 0;
}

/* min_lr + (base - min_lr) (1 + cos(pi e / T)) / 2, held at min_lr from epoch T on. A schedule
 * without a length (T <= 0) stays at base. */
static double cosine_lr(const pst_sched_cfg_t *c, int epoch)
{
    if (c->total_epochs <= 0)
        return c->base_lr;
    double e = epoch < c->total_epochs ? epoch : c->total_epochs;
    double base = c->base_lr, floor_lr = c->min_lr;
    return floor_lr + (base - floor_lr) * 0.5 * (1.0 + cos(M_PI * e / c->total_epochs));
}

/* One-cycle policy: the fraction t of the run done (by step, or by epoch without a step count)
 * rises from base/25 to base over t < 0.3 and falls to base/25e4 at t = 1, on half cosines. */
#define ONE_CYCLE_RISE 0.3
#define ONE_CYCLE_DIV 25.0
#define ONE_CYCLE_FINAL_DIV 1e4

static double one_cycle_lr(const pst_sched_cfg_t *c, int epoch, long step)
{
    double t;
    if (c->total_epochs <= 0)
        return c->base_lr;
    if (c->steps_per_epoch > 0)
        t = (double)(step < 0 ? 0 : step) / ((double)c->steps_per_epoch * c->total_epochs);
    else
        t = (double)(epoch < 0 ? 0 : epoch) / c->total_epochs;
    t = t > 1.0 ? 1.0 : t;
    double peak = c->base_lr, start = peak / ONE_CYCLE_DIV, end = start / ONE_CYCLE_FINAL_DIV;
    if (t < ONE_CYCLE_RISE)
        return start + (peak - start) * 0.5 * (1.0 - cos(M_PI * t / ONE_CYCLE_RISE));
    double u = (t - ONE_CYCLE_RISE) / (1.0 - ONE_CYCLE_RISE);
    return end + (peak - end) * 0.5 * (1.0 + cos(M_PI * u));
}

/* The schedule's value for an epoch, before warm-up. Negative epochs count as epoch 0. */
static double scheduled_lr(const pst_sched_t *self, int epoch)
{
    const pst_sched_cfg_t *c = &self->cfg;
    if (epoch < 0)
        epoch = 0;
    switch (c->kind) {
    case PST_SCHED_STEP:
        /* step_size <= 0 has no decay points: the rate stays at base. */
        if (c->step_size <= 0)
            return c->base_lr;
        return c->base_lr * pow(c->gamma, epoch / c->step_size);
    case PST_SCHED_EXPONENTIAL:
        return c->base_lr * pow(c->gamma, epoch);
    case PST_SCHED_COSINE:
        return cosine_lr(c, epoch);
    case PST_SCHED_PLATEAU:
        return self->plateau_lr;
    case PST_SCHED_ONE_CYCLE: /* stepped in pst_sched_lr */
    case PST_SCHED_CONSTANT:
    default:
        return c->base_lr;
    }
}

float pst_sched_lr(const pst_sched_t *self, int epoch, long step)
{
    double lr = self->cfg.kind == PST_SCHED_ONE_CYCLE ? one_cycle_lr(&self->cfg, epoch, step)
                                                      : scheduled_lr(self, epoch);
    long warmup = self->cfg.warmup_steps;
    if (warmup > 0 && step < warmup)
        lr *= (double)(step < 0 ? 1 : step + 1) / (double)warmup;
    return (float)lr;
}

/* As torch.optim.lr_scheduler.ReduceLROnPlateau (mode "min", relative threshold, no cooldown): an
 * epoch improves when val_loss < best * (1 - threshold); once more than `patience` epochs in a row
 * have not, the rate is multiplied by factor (floored at min_lr) and the count starts again. NaN
 * never improves. */
void pst_sched_observe(pst_sched_t *self, double val_loss)
{
    const pst_sched_cfg_t *c = &self->cfg;
    if (c->kind != PST_SCHED_PLATEAU)
        return;
    if (val_loss < self->best * (1.0 - (double)c->threshold)) {
        self->best = val_loss;
        self->bad_epochs = 0;
        return;
    }
    self->bad_epochs++;
    if (self->bad_epochs > c->patience) {
        float lr = self->plateau_lr * c->factor;
        self->plateau_lr = lr > c->min_lr ? lr : c->min_lr;
        self->bad_epochs = 0;
    }
}
