/* `pstrain fed join CONFIG --server tcp://HOST:PORT`: one site of a federated deployment. The
 * server's contract fixes the model, its preprocessing and the training settings; the site's own
 * configuration names its data (data.*) and how to reach the server (fed.server, fed.site,
 * fed.key, fed.server_key). The site's rows never leave it: only updates travel. A site that is
 * an mpirun job (app/fed/fedjoin_mpi.h) runs the same join on the rank that holds the connection,
 * extended by pst_fedjoin_ext_t. */
#ifndef PST_APP_FED_FEDJOIN_H
#define PST_APP_FED_FEDJOIN_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "worker/fed/fedtrain.h"
#include "worker/model/modelspec.h"
#include "common/config.h"
#include "common/data/dataset.h"
#include "worker/fed/fedsite.h"
#include "worker/model/modelfile.h"

typedef struct pst_fedjoin_args {
    const char *server; /* overrides fed.server */
    const char *site;   /* overrides fed.site */
    const char *out;    /* run directory, or NULL for runs/NAME-STAMP */
} pst_fedjoin_args_t;

/* Runs the site until the server ends the run; returns the exit status. */
int pst_fedjoin_run(const pst_config_t *cfg, const pst_fedjoin_args_t *args);

/* What a site sets up from the server's contract: the model file, the configuration it trains
 * with, its rows under the contract's classes and preprocessing, and the local trainer. A site
 * of one process and every rank of an mpirun site (app/fed/fedjoin_mpi.c) set it up alike. */
typedef struct pst_fedjoin_model {
    pst_config_t run_cfg; /* the server's configuration with the site's data.* keys */
    pst_modelfile_t mf;
    pst_modelspec_t spec;
    pst_dataset_t *data; /* the site's rows, preprocessed as the contract says */
    pst_fedtrainer_t trainer;
} pst_fedjoin_model_t;

/* Unpacks the contract (len bytes) and builds run_cfg from it and cfg's data.* keys: all that a
 * parameter server of the site needs. m starts zeroed. */
int pst_fedjoin_model_open(pst_fedjoin_model_t *m, const pst_config_t *cfg, const uint8_t *contract,
                           size_t len, pst_err_t *err);
/* After open: the layer stack, the site's rows (cfg->data.*) and the trainer, for a model the
 * server announced with n_params floats. */
int pst_fedjoin_model_load(pst_fedjoin_model_t *m, const pst_config_t *cfg, size_t n_params,
                           pst_err_t *err);
/* Safe on a zeroed or partly set up m. */
void pst_fedjoin_model_fini(pst_fedjoin_model_t *m);

/* How an mpirun site (app/fed/fedjoin_mpi.c) extends the run of the rank that holds the connection
 * to the federated server: the other ranks set up the contract too and train every round with
 * it, and report.json shows them. */
typedef struct pst_fedjoin_ext {
    void *ctx;
    /* Sets the contract up on every rank, this one's m included (open and load); fails when any
     * rank failed, with one message for them all. */
    int (*contract)(void *ctx, pst_fedjoin_model_t *m, const uint8_t *contract, size_t len,
                    size_t n_params, pst_err_t *err);
    /* Trains a task on every rank, as the train hook of worker/fed/fedsite does (PST_ENUMERIC
     * declines the round); adds this site's rows and seconds to play. */
    int (*train)(void *ctx, pst_fedtrain_site_t *play, const pst_fedsite_task_t *task, float *delta,
                 double *samples, double *loss, pst_err_t *err);
    /* Adds its sections to report.json. */
    void (*report)(void *ctx, cJSON *doc);
} pst_fedjoin_ext_t;

/* pst_fedjoin_run with ext (NULL: the one-process site). */
int pst_fedjoin_run_ext(const pst_config_t *cfg, const pst_fedjoin_args_t *args,
                        const pst_fedjoin_ext_t *ext);

#endif
