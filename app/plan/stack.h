/* Stacking, blending and voting ensembles of base models given as configuration overrides: the
 * bases' fits as a plan, the meta model (trained in this process) or the vote on top, saved as
 * an ensemble file. */
#ifndef PST_APP_PLAN_STACK_H
#define PST_APP_PLAN_STACK_H

#include "app/plan/plan.h"

#define PST_STACK_MAX_BASES 32

typedef enum {
    PST_STACK_STACKING,
    PST_STACK_BLENDING,
    PST_STACK_SOFT_VOTE,
    PST_STACK_HARD_VOTE
} pst_stack_method_t;

typedef struct pst_stack_opts {
    pst_plan_args_t plan;
    pst_stack_method_t method;
    int folds;      /* stacking folds, at least 2 */
    double holdout; /* blending: held-out share of the training rows, in (0, 1) */
    const char *base[PST_STACK_MAX_BASES]; /* each base's "KEY=VALUE;..." overrides */
    int n_bases;                           /* at least 2 */
    const char *meta;                      /* the meta model's overrides, or NULL */
} pst_stack_opts_t;

/* The method named name (stacking, blending, soft_vote, hard_vote): PST_OK or PST_EINVAL. */
int pst_stack_method_parse(const char *name, pst_stack_method_t *out);

/* Loads every model's configuration (a bad override is a usage error), runs the bases' fits and
 * the combination, and writes the run directory (report.json, metrics.jsonl,
 * test_predictions.csv, model.pst); prints the bases and the ensemble, and errors on stderr.
 * Under mpirun every rank calls it. Returns the process exit status: 0 success, 1 failure, 2 a
 * configuration or override that does not load. */
int pst_stack_run(const pst_stack_opts_t *opts);

#endif
