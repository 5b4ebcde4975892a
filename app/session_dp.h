/* DP-SGD at the job level: which configurations may train privately, and what a private run
 * reports (the console summary and report.json's train.dp). */
#ifndef PST_APP_SESSION_DP_H
#define PST_APP_SESSION_DP_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "app/session.h"
#include "common/config.h"

/* Refuses train.dp.* settings that contradict each other or the job: noise or a budget without
 * train.dp.clip, clip without noise or budget, a sparse model, row oversampling (a row twice in
 * the data breaks the per-example bound), gradient clipping of the whole batch, and under mpirun
 * (distributed) any consistency but bsp or a lossy push codec. Each error names the key. */
int pst_session_dp_check(const pst_config_t *cfg, bool distributed, pst_err_t *err);

/* The summary lines of a private run (lead; nothing when DP-SGD is off). */
void pst_session_print_dp(const pst_session_t *s);

/* train.dp in report.json: clip, noise multiplier, delta, budget, sampling rate and method,
 * epsilon spent, and whether the budget stopped the run. Nothing when off. */
void pst_session_dp_json(const pst_session_t *s, cJSON *train);

#endif
