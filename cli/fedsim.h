/* Federated learning simulated in one process: the sites are parts of one training set, each
 * round sampled sites train from the global model and the server aggregates their updates. */
#ifndef PST_FEDSIM_H
#define PST_FEDSIM_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "cli/session.h"
#include "common/err.h"

typedef struct pst_fedsim_result {
    int rounds_run;
    bool budget_stopped;   /* the next round would have spent more than fed.dp.epsilon_budget */
    double epsilon;        /* spent at fed.dp.delta; 0 without DP */
    double bytes_down;     /* global weights sent to sites: floats x 4 per model */
    double bytes_up;       /* site updates received */
    long sites_asked;      /* summed over rounds */
    long sites_answered;   /* sites whose local training finished with finite weights */
    double final_val_loss; /* after the last round; NaN without validation rows */
    double final_val_metric;
} pst_fedsim_result_t;

/* Checks the fed.* keys against each other and the data task (NULL data skips the task check). */
int pst_fedsim_check_config(const pst_config_t *cfg, const pst_dataset_t *train, pst_err_t *err);

/* Runs the rounds on a prepared session (data loaded, model initialised, run directory open):
 * s->model ends holding the global weights, s->result the totals, metrics.jsonl a line per round
 * and s->extra a "fed" report section. Prints a line per round. */
int pst_fedsim_run(pst_session_t *s, pst_fedsim_result_t *res, pst_err_t *err);

#endif
