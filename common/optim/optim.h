/* Optimizers over flat float32 slices: the same code runs on a whole local model or on a
 * parameter server's shard, with the optimizer state stored beside the slice it updates. */
#ifndef PST_COMMON_OPTIM_OPTIM_H
#define PST_COMMON_OPTIM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum {
    PST_OPT_SGD = 0,
    PST_OPT_MOMENTUM,
    PST_OPT_NESTEROV,
    PST_OPT_ADAM,
    PST_OPT_ADAMW,
    PST_OPT_RADAM,
    PST_OPT_ADABELIEF,
    PST_OPT_ADAGRAD,
    PST_OPT_FTRL, /* FTRL-Proximal (common/optim/ftrl.h) with alpha = the step's lr */
} pst_optim_kind_t;

typedef struct pst_optim_cfg {
    pst_optim_kind_t kind;
    float momentum;         /* momentum, nesterov (default 0.9) */
    float beta1, beta2;     /* adam family (0.9, 0.999) */
    float eps;              /* adam family, adagrad (1e-8; adagrad 1e-10) */
    float weight_decay;     /* adamw: decoupled; others: added to the gradient as wd * w (L2) */
    int lookahead_k;        /* 0 = no lookahead; else sync slow weights every k steps */
    float lookahead_alpha;  /* slow-weight step size (0.5) */
    float ftrl_beta;        /* ftrl (1); ftrl takes no weight_decay or lookahead */
    float ftrl_l1, ftrl_l2; /* ftrl (0, 0) */
} pst_optim_cfg_t;

typedef struct pst_optim pst_optim_t;

/* Fills cfg with the documented defaults for kind. */
void pst_optim_cfg_defaults(pst_optim_cfg_t *cfg, pst_optim_kind_t kind);
/* Parses "sgd", "momentum", "nesterov", "adam", "adamw", "radam", "adabelief", "adagrad" and
 * "ftrl". */
int pst_optim_kind_parse(const char *name, pst_optim_kind_t *kind);
const char *pst_optim_kind_name(pst_optim_kind_t kind);

/* An optimizer for a slice of n parameters. Caller owns the result. */
pst_optim_t *pst_optim_new(const pst_optim_cfg_t *cfg, size_t n, pst_err_t *err);
void pst_optim_destroy(pst_optim_t **self_p);

/* One update: w[i] -= f(g[i], state) with learning rate lr. The first call captures w as the
 * lookahead slow weights when lookahead is on. FTRL: state rows [z | n], alpha = lr, and w holds
 * the weights computed from (z, n) afterwards; a step with lr <= 0 changes nothing. */
void pst_optim_step(pst_optim_t *self, float *w, const float *g, float lr);

/* The same update on state kept elsewhere: state holds n_state floats laid out as this
 * optimizer's own (zeros before the first step) and *steps counts the steps taken with it. self
 * gives the configuration and the parameter count; its own state and counter are not used.
 * Lets a store keep the state of many small parameter blocks in one array. */
void pst_optim_step_external(const pst_optim_t *self, float *w, const float *g, float lr,
                             float *state, uint64_t *steps);

/* Checkpoint support: the state is n_state floats plus the step counter. */
float *pst_optim_state(pst_optim_t *self, size_t *n_state);
uint64_t pst_optim_steps(const pst_optim_t *self);
void pst_optim_set_steps(pst_optim_t *self, uint64_t steps);

/* Gradient clipping. Both return the global L2 norm of g before clipping. */
double pst_clip_global_norm(float *g, size_t n, double max_norm);
void pst_clip_value(float *g, size_t n, float limit);

#endif
