/* Bagging: one fit per member on its own bootstrap sample (and feature subset), the members
 * voted, scored out of bag and on the test rows, saved as an ensemble file. */
#ifndef PST_APP_PLAN_BAG_H
#define PST_APP_PLAN_BAG_H

#include "app/plan/plan.h"
#include "worker/model/ensemble.h"

typedef struct pst_bag_opts {
    pst_plan_args_t plan;
    int members;         /* 1..10000 */
    double max_samples;  /* each sample draws round(F * rows) rows, F in (0, 1] */
    double max_features; /* each member sees a share of the feature columns, in (0, 1] */
    pst_voting_t voting;
} pst_bag_opts_t;

/* Runs the bagging plan and writes its run directory (report.json, metrics.jsonl,
 * test_predictions.csv, model.pst); prints the members and the ensemble, and errors on stderr.
 * Under mpirun every rank calls it. Returns the process exit status: 0 success, 1 failure. */
int pst_bag_run(const pst_bag_opts_t *opts);

#endif
