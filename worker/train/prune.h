/* Gradual magnitude pruning: a keep-mask over the weights of the dense and conv2d layers, grown
 * on a cubic schedule from epoch start to epoch end, that holds pruned weights at zero while
 * training goes on. */
#ifndef PST_WORKER_TRAIN_PRUNE_H
#define PST_WORKER_TRAIN_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "worker/model/model.h"

typedef enum { PST_PRUNE_GLOBAL = 0, PST_PRUNE_LAYER = 1 } pst_prune_scope_t;

typedef struct pst_prune_opts {
    double sparsity; /* final share of prunable weights at zero, in [0, 1) */
    int start, end;  /* 1-based epochs: the mask grows at the end of each of start..end */
    pst_prune_scope_t scope;
} pst_prune_opts_t;

typedef struct pst_prune pst_prune_t;

int pst_prune_scope_parse(const char *name, pst_prune_scope_t *scope);

/* The target sparsity once epoch (1-based) has ended: 0 before start, then
 * s (1 - (1 - f)^3) with f = (epoch - start + 1) / (end - start + 1), s from end on. */
double pst_prune_target(const pst_prune_opts_t *opts, int epoch);

/* A mask keeping every weight of model's dense and conv2d layers (biases and batchnorm are never
 * pruned). Caller owns the result. */
pst_prune_t *pst_prune_new(const pst_model_t *model, const pst_prune_opts_t *opts, pst_err_t *err);
void pst_prune_destroy(pst_prune_t **self_p);

/* Recomputes the mask so that exactly round(sparsity * n) weights of each scope (all prunable
 * weights, or each layer's) are pruned: the smallest |w| of params with the current mask
 * applied, so a pruned weight stays pruned; ties go to the lower index; a scope always keeps one
 * weight. Deterministic: the same params give the same mask on every worker. */
int pst_prune_update(pst_prune_t *self, const float *params, double sparsity, pst_err_t *err);

/* The end of epoch: updates the mask to pst_prune_target when epoch is in start..end. Returns
 * whether the mask changed. */
int pst_prune_epoch_end(pst_prune_t *self, const float *params, int epoch, bool *changed,
                        pst_err_t *err);

/* Zeroes the pruned entries of an arena-shaped array (weights or their gradients). */
void pst_prune_apply(const pst_prune_t *self, float *arena);
/* The same for layer k's weights only (k counts the layers with parameters, as the model's layer
 * hooks do). */
void pst_prune_apply_layer(const pst_prune_t *self, float *arena, int k);

/* The sparsity the mask holds now, and the options it was made with. */
double pst_prune_mask_sparsity(const pst_prune_t *self);
const pst_prune_opts_t *pst_prune_opts(const pst_prune_t *self);
/* Share of exactly-zero entries among the prunable weights of params. */
double pst_prune_zero_share(const pst_prune_t *self, const float *params);

#endif
