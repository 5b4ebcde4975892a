/* The train command's job: configuration, then a local, sparse or distributed run. */
#include "app/trainjob.h"

#include <string.h>

#include "app/console.h"
#include "app/rundir.h"
#include "app/session.h"
#include "app/session_dp.h"
#include "app/sparse/sparse_train.h"
#include "common/log.h"

static int train_local(const pst_config_t *cfg, const pst_train_args_t *a)
{
    if (pst_shardload_is_pattern(cfg->data.train)) {
        pst_app_error("data.train names one file per worker (%s); run under mpirun",
                      PST_WORKER_PATTERN);
        return 2;
    }
    if (a->resume) {
        pst_app_error("--resume restarts a distributed run from its servers' checkpoints; run "
                      "it under mpirun");
        return 2;
    }
    pst_session_t s;
    pst_err_t err = {0};
    pst_train_hooks_t hooks = {0};
    int rc = pst_session_prepare(&s, cfg, true, &err);
    if (rc == PST_OK)
        rc = pst_session_open_rundir(&s, a->out, &err);
    if (rc == PST_OK) {
        pst_session_hooks(&s, &hooks);
        rc = pst_session_train(&s, &hooks, &err);
    }
    return pst_session_end(&s, rc, &err);
}

int pst_trainjob_run(const pst_train_args_t *a)
{
    if (a->quiet)
        pst_log_set_level(PST_LOG_ERROR);
    pst_config_t cfg;
    pst_err_t err = {0};
    int rc = pst_load_config(&cfg, a->config, a->sets, a->n_sets, &err);
    if (rc == PST_OK)
        rc = pst_config_validate(&cfg, &err);
    if (rc == PST_OK && !pst_cluster_launched()) /* under mpirun: once the ranks agree */
        rc = pst_session_dp_check(&cfg, false, &err);
    if (a->quiet) /* -q: errors and the final summary only */
        pst_log_set_level(PST_LOG_ERROR);
    else if (!a->verbose && rc == PST_OK && strcmp(cfg.log_level, "info") == 0)
        pst_log_set_level(PST_LOG_WARN); /* setup and server messages need -v */
    if (rc == PST_OK && !a->resume)
        rc = pst_rundir_check_new(a->out, a->force, &err);
    if (rc == PST_OK && a->quiet)
        rc = pst_config_set(&cfg, "train.progress=none", &err);
    if (rc != PST_OK) {
        if (pst_cluster_is_first_rank())
            pst_app_error("%s", err.msg);
        pst_config_fini(&cfg);
        return 1;
    }
    int status = pst_cluster_launched()            ? pst_cluster_train(&cfg, a)
                 : pst_sparse_train_selected(&cfg) ? pst_sparse_train_local(&cfg, a->out, a->resume)
                                                   : train_local(&cfg, a);
    pst_config_fini(&cfg);
    return status;
}
