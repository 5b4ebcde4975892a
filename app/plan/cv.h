/* k-fold cross-validation (repeated, stratified or grouped) as a plan of fits: one fit per fold,
 * scored on its held-out rows, summarised over folds. */
#ifndef PST_APP_PLAN_CV_H
#define PST_APP_PLAN_CV_H

#include <stdbool.h>

#include "app/plan/plan.h"

typedef struct pst_cv_opts {
    pst_plan_args_t plan;
    int folds;                /* per repeat, at least 2 */
    int repeats;              /* at least 1 */
    bool stratified;          /* keep each class's share in every fold */
    const char *group_column; /* rows sharing this feature column's value share a fold, or NULL */
} pst_cv_opts_t;

/* Runs the cross-validation and writes its run directory (report.json, metrics.jsonl,
 * oof_predictions.csv); prints the folds and a summary, and errors on stderr. Under mpirun every
 * rank calls it. Returns the process exit status: 0 success, 1 failure. */
int pst_cv_run(const pst_cv_opts_t *opts);

#endif
