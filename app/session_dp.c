/* DP-SGD at the job level: configuration checks and the private run's report. */
#include "app/session_dp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app/rundir.h"
#include "app/sparse/sparse_train.h"

/* Checks that hold with or without mpirun. */
static int check_keys(const pst_config_t *cfg, pst_err_t *err)
{
    const double clip = cfg->train.dp.clip;
    if (!(clip > 0)) {
        if (cfg->train.dp.noise > 0)
            return pst_err_set(err, PST_EINVAL, "train.dp.noise needs train.dp.clip > 0");
        if (cfg->train.dp.epsilon_budget > 0)
            return pst_err_set(err, PST_EINVAL, "train.dp.epsilon_budget needs train.dp.clip > 0");
        return PST_OK;
    }
    if (!(cfg->train.dp.noise > 0) && !(cfg->train.dp.epsilon_budget > 0))
        return pst_err_set(err, PST_EINVAL,
                           "train.dp.clip without noise: set train.dp.noise > 0, or "
                           "train.dp.epsilon_budget > 0 to calibrate it");
    if (cfg->train.clip_norm > 0 || cfg->train.clip_value > 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp.clip bounds each example's gradient: set train.clip_norm "
                           "and train.clip_value to 0");
    if (pst_sparse_train_selected(cfg))
        return pst_err_set(err, PST_EINVAL,
                           "train.dp: DP-SGD trains the dense models; model.type %s is not one",
                           cfg->model.type);
    const char *im = cfg->train.imbalance;
    if (strcmp(im, "oversample") == 0 || strcmp(im, "smote") == 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp with train.imbalance %s: repeated or synthetic rows break "
                           "the per-example bound; use class_weight or undersample",
                           im);
    return PST_OK;
}

int pst_session_dp_check(const pst_config_t *cfg, bool distributed, pst_err_t *err)
{
    int rc = check_keys(cfg, err);
    if (rc != PST_OK || !(cfg->train.dp.clip > 0) || !distributed)
        return rc;
    /* SSP and ASP apply each worker's push alone, and a push holds 1/sqrt(workers) of the noise. */
    if (strcmp(cfg->cluster.consistency, "bsp") != 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp under mpirun needs cluster.consistency bsp (got %s): the "
                           "noise is split into one share per worker, and only a BSP step sums "
                           "all the shares before it is applied",
                           cfg->cluster.consistency);
    /* A lossy codec's error feedback works on each worker's share, not on the noisy sum. */
    const char *codec = cfg->transport.codec;
    if (strcmp(codec, "fp16") == 0 || strcmp(codec, "int8") == 0 || strcmp(codec, "int8lz4") == 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp under mpirun needs a lossless transport.codec (got %s)",
                           codec);
    return PST_OK;
}

void pst_session_print_dp(const pst_session_t *s)
{
    const pst_train_result_t *r = &s->result;
    if (!(s->opts.dp.clip > 0) || !isfinite(r->dp_q))
        return;
    printf("dp-sgd: epsilon %.4f at delta %g (Poisson sampling q %.6g, noise multiplier %.6g, "
           "clip %g)\n",
           r->epsilon, s->opts.dp.delta, r->dp_q, r->dp_sigma, s->opts.dp.clip);
    if (r->stopped_at_budget)
        printf("stopped at the privacy budget: another epoch would spend epsilon %.4f > %g\n",
               r->epsilon_next, s->opts.dp.epsilon_budget);
}

void pst_session_dp_json(const pst_session_t *s, cJSON *train)
{
    const pst_train_result_t *r = &s->result;
    if (!(s->opts.dp.clip > 0) || !isfinite(r->dp_q))
        return;
    cJSON *dp = cJSON_AddObjectToObject(train, "dp");
    pst_json_add_number(dp, "clip", s->opts.dp.clip);
    pst_json_add_number(dp, "noise_multiplier", r->dp_sigma);
    pst_json_add_number(dp, "delta", s->opts.dp.delta);
    pst_json_add_number(dp, "epsilon_budget", s->opts.dp.epsilon_budget);
    pst_json_add_number(dp, "sampling_rate", r->dp_q);
    cJSON_AddStringToObject(dp, "sampling", "poisson");
    pst_json_add_number(dp, "epsilon", r->epsilon);
    cJSON_AddBoolToObject(dp, "stopped_at_budget", r->stopped_at_budget);
    if (r->stopped_at_budget)
        pst_json_add_number(dp, "epsilon_next_epoch", r->epsilon_next);
}
