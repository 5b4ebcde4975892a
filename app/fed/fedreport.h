/* What the federated server side reports: per round, the global model's validation metrics, the
 * sites asked and answered, bytes each way and the privacy spent (a printed line and a
 * metrics.jsonl line); at the end, the "fed" section of report.json. Shared by the simulation and
 * the deployment. */
#ifndef PST_APP_FED_FEDREPORT_H
#define PST_APP_FED_FEDREPORT_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "app/session.h"
#include "ps/fed/fedcoord.h"
#include "ps/fed/fedserver.h"

typedef struct pst_fedreport {
    pst_session_t *s; /* the lead session: its model receives the global weights */
    bool dp;
    int rounds_run;
    long sites_asked, sites_answered, updates_refused;
    pst_fedtraffic_t total;
    double epsilon;
    double final_val_loss, final_val_metric; /* NaN without validation rows */
} pst_fedreport_t;

void pst_fedreport_init(pst_fedreport_t *rep, pst_session_t *s, bool dp);

/* Reports a finished round: copies global into the session's model, evaluates it on the
 * validation rows, prints a line (lead) and appends to metrics.jsonl. */
int pst_fedreport_round(pst_fedreport_t *rep, const pst_fedcoord_round_t *r, const float *global,
                        const pst_fedtraffic_t *traffic, double seconds, pst_err_t *err);

/* The "fed" section of report.json: settings, totals and privacy. Caller owns the result. */
cJSON *pst_fedreport_section(const pst_fedreport_t *rep, const pst_config_t *cfg,
                             const pst_fedcoord_t *coord);

#endif
