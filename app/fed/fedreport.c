/* Federated round reports: validation of the global model, printed lines, metrics.jsonl, totals. */
#include "app/fed/fedreport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/rundir.h"
#include "common/clock.h"

void pst_fedreport_init(pst_fedreport_t *rep, pst_session_t *s, bool dp)
{
    memset(rep, 0, sizeof *rep);
    rep->s = s;
    rep->dp = dp;
    rep->final_val_loss = rep->final_val_metric = NAN;
}

static bool classifies(const pst_session_t *s)
{
    return s->data.train->task == PST_TASK_CLASSIFICATION;
}

static int validate(pst_session_t *s, double *loss, double *metric, pst_err_t *err)
{
    pst_rows_t val = pst_rows_all(s->data.val);
    pst_eval_sums_t sums;
    int rc = pst_eval_sums_rows(s->model, &val, s->opts.batch_size, s->opts.loss,
                                s->opts.huber_delta, &sums, err);
    *loss = sums.n > 0 ? sums.loss_sum / sums.n : NAN;
    *metric = sums.n > 0 ? (classifies(s) ? sums.correct : sums.sq_err_sum) / sums.n : NAN;
    return rc;
}

static void print_round(const pst_fedreport_t *rep, const pst_fedcoord_round_t *r,
                        const pst_fedtraffic_t *t, double val_loss, double val_metric,
                        double seconds)
{
    if (!rep->s->lead)
        return;
    printf("round %3llu  sites %d/%d", (unsigned long long)r->round, r->answered, r->asked);
    if (isfinite(val_loss))
        printf("  val_loss %.4f  %s %.4f", val_loss,
               classifies(rep->s) ? "val_accuracy" : "val_mse", val_metric);
    if (rep->dp)
        printf("  epsilon %.3f", r->epsilon);
    printf("  up %.0f KB  %.1fs%s\n", t->up_wire / 1024, seconds,
           r->aggregated ? "" : "  (no update applied)");
    fflush(stdout);
}

static void log_round(const pst_fedreport_t *rep, const pst_fedcoord_round_t *r,
                      const pst_fedtraffic_t *t, double val_loss, double val_metric, double seconds)
{
    if (!rep->s->rundir.metrics)
        return;
    cJSON *line = cJSON_CreateObject();
    pst_json_add_number(line, "round", (double)r->round);
    pst_json_add_number(line, "sites_asked", r->asked);
    pst_json_add_number(line, "sites_answered", r->answered);
    pst_json_add_number(line, "updates_refused", r->refused);
    cJSON_AddStringToObject(line, "closed_by", pst_fedround_close_name(r->closed_by));
    cJSON_AddBoolToObject(line, "aggregated", r->aggregated);
    pst_json_add_number(line, "train_loss", r->train_loss);
    pst_json_add_number(line, "val_loss", val_loss);
    pst_json_add_number(line, classifies(rep->s) ? "val_accuracy" : "val_mse", val_metric);
    pst_json_add_number(line, "bytes_down", t->down_wire);
    pst_json_add_number(line, "bytes_up", t->up_wire);
    pst_json_add_number(line, "bytes_down_raw", t->down_raw);
    pst_json_add_number(line, "bytes_up_raw", t->up_raw);
    pst_json_add_number(line, "update_norm", r->update_norm);
    if (rep->dp)
        pst_json_add_number(line, "epsilon", r->epsilon);
    pst_json_add_number(line, "seconds", seconds);
    pst_rundir_log_line(&rep->s->rundir, line);
    cJSON_Delete(line);
}

int pst_fedreport_round(pst_fedreport_t *rep, const pst_fedcoord_round_t *r, const float *global,
                        const pst_fedtraffic_t *traffic, double seconds, pst_err_t *err)
{
    pst_session_t *s = rep->s;
    memcpy(pst_model_params(s->model), global, pst_model_n_params(s->model) * sizeof *global);
    double val_loss, val_metric;
    int rc = validate(s, &val_loss, &val_metric, err);
    if (rc != PST_OK)
        return rc;
    rep->rounds_run++;
    rep->sites_asked += r->asked;
    rep->sites_answered += r->answered;
    rep->updates_refused += r->refused;
    rep->total.down_raw += traffic->down_raw;
    rep->total.down_wire += traffic->down_wire;
    rep->total.up_raw += traffic->up_raw;
    rep->total.up_wire += traffic->up_wire;
    rep->epsilon = r->epsilon;
    rep->final_val_loss = val_loss;
    rep->final_val_metric = val_metric;
    print_round(rep, r, traffic, val_loss, val_metric, seconds);
    log_round(rep, r, traffic, val_loss, val_metric, seconds);
    return PST_OK;
}

static void add_privacy(cJSON *fed, const pst_fedreport_t *rep, const pst_config_t *cfg,
                        const pst_fedcoord_t *coord)
{
    cJSON *dp = cJSON_AddObjectToObject(fed, "dp");
    pst_json_add_number(dp, "clip", cfg->fed.dp.clip);
    pst_json_add_number(dp, "noise", cfg->fed.dp.noise);
    pst_json_add_number(dp, "delta", cfg->fed.dp.delta);
    pst_json_add_number(dp, "epsilon", rep->epsilon);
    pst_json_add_number(dp, "epsilon_budget", cfg->fed.dp.epsilon_budget);
    cJSON_AddBoolToObject(dp, "budget_stopped", pst_fedcoord_budget_stopped(coord));
}

cJSON *pst_fedreport_section(const pst_fedreport_t *rep, const pst_config_t *cfg,
                             const pst_fedcoord_t *coord)
{
    cJSON *fed = cJSON_CreateObject();
    cJSON_AddStringToObject(fed, "aggregator", cfg->fed.aggregator);
    if (strcmp(cfg->fed.aggregator, "fedprox") == 0)
        pst_json_add_number(fed, "mu", cfg->fed.mu);
    pst_json_add_number(fed, "local_epochs", (double)cfg->fed.local_epochs);
    pst_json_add_number(fed, "rounds", rep->rounds_run);
    pst_json_add_number(fed, "rounds_planned", (double)cfg->fed.rounds);
    pst_json_add_number(fed, "sites_asked", (double)rep->sites_asked);
    pst_json_add_number(fed, "sites_answered", (double)rep->sites_answered);
    pst_json_add_number(fed, "updates_refused", (double)rep->updates_refused);
    pst_json_add_number(fed, "bytes_down", rep->total.down_wire);
    pst_json_add_number(fed, "bytes_up", rep->total.up_wire);
    pst_json_add_number(fed, "bytes_down_raw", rep->total.down_raw);
    pst_json_add_number(fed, "bytes_up_raw", rep->total.up_raw);
    pst_json_add_number(fed, "model_bytes", 4.0 * (double)pst_fedcoord_n_params(coord));
    pst_json_add_number(fed, "final_val_loss", rep->final_val_loss);
    if (cfg->fed.dp.clip > 0)
        add_privacy(fed, rep, cfg, coord);
    return fed;
}
