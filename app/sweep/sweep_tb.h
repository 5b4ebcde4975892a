/* A sweep in TensorBoard's HParams view: each trial's overrides as its session's hyperparameters
 * (in the trial's run, trial_N/), and the experiment (parameters and the objective) at the top. */
#ifndef PST_APP_SWEEP_SWEEP_TB_H
#define PST_APP_SWEEP_SWEEP_TB_H

#include "app/rundir.h"
#include "app/sweep/sweep_sched.h"

/* The trial's session start, once (later rungs of the trial write nothing). */
void pst_sweep_tb_trial(pst_rundir_t *rd, const pst_sweep_trial_t *t, bool *started);

/* The experiment summary (hyperparameters from trial 0's keys, metric_tag the objective's
 * scalar tag in the trial runs) and every started trial's session end. */
void pst_sweep_tb_finish(pst_rundir_t *rd, const pst_sweep_sched_t *sched, const bool *started,
                         const char *metric_tag);

#endif
