/* Federated learning simulated over one dataset: the training rows are split into sites, and the
 * rounds run through the same coordinator as a deployment, in this process (pst_fedsim_run) or
 * under mpirun with sites played by worker ranks over ZeroMQ (app/fed/fedsim_mpi). */
#ifndef PST_APP_FED_FEDSIM_H
#define PST_APP_FED_FEDSIM_H

#include <cjson/cJSON.h>

#include "app/session.h"
#include "common/err.h"
#include "common/sample/fedsplit.h"

#define PST_FEDSIM_ID_LEN 32

/* The simulated sites: their rows of the training split and their ids ("site-07"). */
typedef struct pst_fedsim_sites {
    pst_fedsplit_t split;
    int n;
    char (*ids)[PST_FEDSIM_ID_LEN]; /* (n) */
} pst_fedsim_sites_t;

/* Splits the session's training rows into fed.sites sites (fed.split, seeded). */
int pst_fedsim_sites_init(pst_fedsim_sites_t *sites, const pst_session_t *s, pst_err_t *err);
void pst_fedsim_sites_fini(pst_fedsim_sites_t *sites);
/* Site i's training rows, a view over the session's training split. */
pst_rows_t pst_fedsim_site_rows(const pst_fedsim_sites_t *sites, const pst_session_t *s, int i);
/* Adds the split's settings and sizes to a report's fed section. */
void pst_fedsim_describe(const pst_fedsim_sites_t *sites, const pst_config_t *cfg, cJSON *fed);

/* Checks the fed.* keys (app/fed/fedconf) and that the training rows can feed the sites. */
int pst_fedsim_check_config(const pst_config_t *cfg, const pst_dataset_t *train, pst_err_t *err);

/* Runs every round in this process on a prepared session (data loaded, model initialised, run
 * directory open): s->model ends holding the global weights, metrics.jsonl a line per round and
 * s->extra a "fed" report section. */
int pst_fedsim_run(pst_session_t *s, pst_err_t *err);

#endif
