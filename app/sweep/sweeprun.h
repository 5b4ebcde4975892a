/* A hyperparameter sweep as a plan of fits that grows as results come in: trials scored on the
 * base config's validation split, results kept current on disk, the best configuration written. */
#ifndef PST_APP_SWEEP_SWEEPRUN_H
#define PST_APP_SWEEP_SWEEPRUN_H

#include "app/plan/plan.h"

typedef struct pst_sweeprun_opts {
    pst_plan_args_t plan;   /* plan.config is ignored: SWEEP.yaml names the base config */
    const char *sweep_path; /* SWEEP.yaml */
    const char *resume;     /* continue the sweep whose run directory this is (= plan.out), or
                               NULL */
} pst_sweeprun_opts_t;

/* Runs the sweep and writes its run directory (sweep_results.csv and .json, best_config.yaml,
 * report.json); prints the trials and the best one, and errors on stderr. Under mpirun every
 * rank calls it. Returns the process exit status: 0 success, 1 failure. */
int pst_sweeprun_run(const pst_sweeprun_opts_t *opts);

#endif
