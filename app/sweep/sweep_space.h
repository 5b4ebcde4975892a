/* Sweep files: the search space of a hyperparameter sweep, and the trials drawn from it. */
#ifndef PST_APP_SWEEP_SWEEP_SPACE_H
#define PST_APP_SWEEP_SWEEP_SPACE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"

#define PST_SWEEP_MAX_RUNGS 32     /* rungs of successive halving */
#define PST_SWEEP_MAX_GRID 1000000 /* most grid points a sweep may expand to */
#define PST_SWEEP_MAX_EPOCHS 1000000
#define PST_SWEEP_VALUE_MAX 40 /* room for a value text formatted from a number */

typedef enum {
    PST_SWEEP_GRID,
    PST_SWEEP_RANDOM,
    PST_SWEEP_HYPERBAND, /* random trials, successive halving over rungs */
    PST_SWEEP_TPE        /* trials proposed from the results so far; rungs optional */
} pst_sweep_method_t;

/* What decides, at the end of a rung, whether a trial goes on to the next. */
typedef enum {
    PST_SWEEP_PRUNE_ASHA,  /* the top 1/eta of the results at the rung so far (may come later) */
    PST_SWEEP_PRUNE_MEDIAN /* at least as good as the median at the rung, decided at once */
} pst_sweep_pruner_t;

typedef enum {
    PST_SWEEP_UNIFORM,     /* real, uniform in [lo, hi] */
    PST_SWEEP_LOG_UNIFORM, /* real, log uniform in [lo, hi], 0 < lo */
    PST_SWEEP_INT,         /* integer, uniform in [lo, hi] inclusive */
    PST_SWEEP_CHOICE       /* one of a list of value texts */
} pst_sweep_dist_t;

/* A parameter is set only when every condition holds: the named parameter is itself set and its
 * value is one of `values` (texts compared as written, or as numbers when both are numbers). */
typedef struct pst_sweep_cond {
    char *key;
    int param; /* index of the named parameter in space->params */
    int n_values;
    char **values;
} pst_sweep_cond_t;

typedef struct pst_sweep_param {
    char *key; /* configuration key, e.g. "optimizer.lr" */
    pst_sweep_dist_t dist;
    double lo, hi; /* bounds of uniform, log_uniform and int */
    int grid;      /* grid points asked for a range (0: none) */
    int n_values;  /* grid values: the choices, or the `grid` points of a range */
    char **values;
    int n_conds;
    pst_sweep_cond_t *conds;
    size_t line; /* line of the parameter in the sweep file, for messages */
} pst_sweep_param_t;

typedef struct pst_sweep_space {
    char *origin; /* file name (or the name given to a string), for messages */
    char *base;   /* the training config every trial starts from, as written */
    pst_sweep_method_t method;
    char *metric;  /* e.g. "val.accuracy" */
    bool maximize; /* from `mode`, or inferred from the metric name */
    long trials;   /* random, hyperband: configurations sampled */
    uint64_t seed;
    long min_epochs, max_epochs, eta; /* rungs: hyperband, or any method with `rungs:` */
    bool rungs;                       /* jobs run in rungs of growing epochs */
    pst_sweep_pruner_t pruner;
    long prune_startup; /* median: results at a rung before anything is pruned there */
    long tpe_startup;   /* tpe: random trials before the estimator is used */
    long tpe_candidates;
    double tpe_gamma; /* tpe: fraction of the results in the good group */
    bool tpe_multivariate;
    long keep_models; /* the best jobs whose models are kept in top_models/ (1: best_model.pst) */
    int n_params;
    pst_sweep_param_t *params; /* in declaration order */
    int *order; /* (n_params) parameter indices, each after those its conditions name */
} pst_sweep_space_t;

/* Loads a sweep file. Unknown keys, unknown distributions, bad bounds, values the configuration
 * refuses, unknown condition references and condition cycles are errors naming the key and the
 * file:line. Caller owns *out (pst_sweep_space_destroy). */
int pst_sweep_space_load_file(const char *path, pst_sweep_space_t **out, pst_err_t *err);
/* The same from YAML text; origin names it in messages. */
int pst_sweep_space_load_string(const char *yaml, const char *origin, pst_sweep_space_t **out,
                                pst_err_t *err);
void pst_sweep_space_destroy(pst_sweep_space_t **space_p);

const char *pst_sweep_method_name(pst_sweep_method_t method);
const char *pst_sweep_dist_name(pst_sweep_dist_t dist);
/* Index of the parameter setting key, or -1. */
int pst_sweep_space_find(const pst_sweep_space_t *space, const char *key);
/* Whether parameter p is set, given the value texts of the others (values[i] NULL: i unset). */
bool pst_sweep_space_active(const pst_sweep_space_t *space, int p, const char *const *values);
/* The value text of number v for param: "%ld" for int, "%.9g" otherwise (round-trips). */
void pst_sweep_param_format(const pst_sweep_param_t *param, double v,
                            char text[PST_SWEEP_VALUE_MAX]);

#endif
