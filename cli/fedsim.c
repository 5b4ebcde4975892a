/* Federated rounds over simulated sites: split, sample, local training, aggregation, privacy
 * accounting, per-round validation. */
#include "cli/fedsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dpacct.h"
#include "common/fedagg.h"
#include "common/fedsplit.h"
#include "common/log.h"
#include "common/optim.h"

/* Seed streams of the simulation, derived from the configuration's seed. */
enum { STREAM_SPLIT = 300, STREAM_DP_NOISE, STREAM_SAMPLE, STREAM_SITE };

/* What a round needs besides the session. */
typedef struct fed_state {
    pst_session_t *s;
    pst_fedsplit_t split;
    pst_fedagg_t *agg;
    pst_dpacct_t *acct, *acct_ahead; /* DP: rounds so far, and one round more */
    pst_model_t *local;              /* a site's copy of the model */
    float *deltas;                   /* (n_sites, n_params) updates of the round's sites */
    const float **delta_ptrs;        /* (n_sites) */
    double *counts;                  /* (n_sites) rows of each answering site */
    size_t *site_order;              /* (n_sites) sampling permutation */
    pst_rng_t sample_rng;
    size_t n_params;
    int n_sampled; /* sites asked per round */
    float mu;      /* FedProx proximal weight; 0 for the other aggregators */
} fed_state_t;

/* Transport hooks that keep the site's training in this process: pull leaves the weights where
 * they are, push takes one local optimizer step on the gradient plus mu (w - w_global), which is
 * FedProx's local objective, loss + (mu / 2) |w - w_global|^2, exactly. */
typedef struct site_ctx {
    pst_model_t *model;
    const float *w_global;
    pst_optim_t *optim;
    float mu;
    size_t n;
} site_ctx_t;

static int site_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    (void)ctx, (void)params, (void)clock, (void)err;
    return PST_OK;
}

static int site_push(void *ctx, const float *grads, uint64_t clock, float lr, pst_err_t *err)
{
    (void)clock, (void)err;
    site_ctx_t *c = ctx;
    float *w = pst_model_params(c->model), *g = (float *)grads; /* the model's gradient arena */
    if (c->mu > 0)
        pst_fedprox_grad_add(g, w, c->w_global, c->n, c->mu);
    pst_optim_step(c->optim, w, g, lr);
    return PST_OK;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The aggregator's rule and server optimizer for a fed.aggregator name. */
static int parse_aggregator(const char *name, pst_fedagg_rule_t *rule, pst_fedopt_t *opt)
{
    *rule = PST_FEDAGG_MEAN;
    *opt = PST_FEDOPT_SGD;
    if (strncmp(name, "fedadam", 8) == 0 || strcmp(name, "fedyogi") == 0 ||
        strcmp(name, "fedadagrad") == 0)
        return pst_fedagg_opt_parse(name, opt);
    return pst_fedagg_rule_parse(name, rule);
}

int pst_fedsim_check_config(const pst_config_t *cfg, const pst_dataset_t *train, pst_err_t *err)
{
    pst_fedagg_rule_t rule;
    pst_fedopt_t opt;
    if (parse_aggregator(cfg->fed.aggregator, &rule, &opt) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "fed.aggregator: unknown rule '%s'",
                           cfg->fed.aggregator);
    if (cfg->fed.min_sites > cfg->fed.sites)
        return pst_err_set(err, PST_EINVAL, "fed.min_sites (%ld) exceeds fed.sites (%ld)",
                           cfg->fed.min_sites, cfg->fed.sites);
    if (cfg->fed.dp.clip > 0 && rule != PST_FEDAGG_MEAN)
        return pst_err_set(err, PST_EINVAL,
                           "fed.dp.clip: DP-FedAvg needs a mean aggregator (fedavg, fedprox, "
                           "fedadam, fedyogi, fedadagrad), not %s",
                           cfg->fed.aggregator);
    if (cfg->fed.dp.epsilon_budget > 0 && !(cfg->fed.dp.clip > 0))
        return pst_err_set(err, PST_EINVAL, "fed.dp.epsilon_budget needs fed.dp.clip > 0");
    if (train && strcmp(cfg->fed.split, "dirichlet") == 0 && train->task != PST_TASK_CLASSIFICATION)
        return pst_err_set(err, PST_EINVAL, "fed.split: dirichlet needs a classification task");
    if (train && train->n_rows < (size_t)cfg->fed.sites)
        return pst_err_set(err, PST_EINVAL, "fed.sites: %ld sites but only %zu training rows",
                           cfg->fed.sites, train->n_rows);
    return PST_OK;
}

static int make_split(fed_state_t *st, pst_err_t *err)
{
    const pst_config_t *cfg = st->s->cfg;
    const pst_dataset_t *tr = st->s->data.train;
    uint64_t seed = pst_rng_derive((uint64_t)cfg->seed, STREAM_SPLIT);
    int sites = (int)cfg->fed.sites;
    if (strcmp(cfg->fed.split, "iid") == 0)
        return pst_fedsplit_iid(&st->split, tr->n_rows, sites, seed, err);
    int *labels = malloc(tr->n_rows * sizeof *labels);
    if (!labels)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; i < tr->n_rows; i++)
        labels[i] = (int)tr->y[i];
    int rc = pst_fedsplit_dirichlet(&st->split, labels, tr->n_rows, tr->n_classes, sites,
                                    cfg->fed.alpha, seed, err);
    free(labels);
    return rc;
}

static int make_aggregator(fed_state_t *st, pst_err_t *err)
{
    const pst_config_t *cfg = st->s->cfg;
    pst_fedagg_rule_t rule;
    pst_fedopt_t opt;
    parse_aggregator(cfg->fed.aggregator, &rule, &opt); /* checked before */
    pst_fedagg_cfg_t ac;
    pst_fedagg_cfg_defaults(&ac, opt);
    ac.rule = rule;
    if (cfg->fed.server_lr > 0)
        ac.server_lr = cfg->fed.server_lr;
    ac.dp_clip = cfg->fed.dp.clip;
    ac.dp_noise = cfg->fed.dp.clip > 0 ? cfg->fed.dp.noise : 0;
    ac.skip_nonfinite = 1;
    ac.seed = pst_rng_derive((uint64_t)cfg->seed, STREAM_DP_NOISE);
    st->agg = pst_fedagg_new(&ac, st->n_params, err);
    st->mu = strcmp(cfg->fed.aggregator, "fedprox") == 0 ? (float)cfg->fed.mu : 0.0f;
    return st->agg ? PST_OK : pst_err_prefix(err, "fed.aggregator: ");
}

/* DP accounting treats each round as the sampled Gaussian mechanism with q = sites asked /
 * sites; the simulation samples a fixed number of sites rather than Poisson sampling, the usual
 * approximation in DP-FedAvg (McMahan et al. 2018). */
static int make_accountant(fed_state_t *st, pst_err_t *err)
{
    const pst_config_t *cfg = st->s->cfg;
    if (!(cfg->fed.dp.clip > 0))
        return PST_OK;
    double q = (double)st->n_sampled / (double)cfg->fed.sites;
    st->acct = pst_dpacct_new(q, cfg->fed.dp.noise, err);
    st->acct_ahead = st->acct ? pst_dpacct_new(q, cfg->fed.dp.noise, err) : NULL;
    if (!st->acct_ahead)
        return PST_EINVAL;
    pst_dpacct_step(st->acct_ahead);
    return PST_OK;
}

static int sampled_per_round(const pst_config_t *cfg)
{
    int k = (int)ceil(cfg->fed.fraction * (double)cfg->fed.sites - 1e-9);
    if (k < cfg->fed.min_sites)
        k = (int)cfg->fed.min_sites;
    return k > cfg->fed.sites ? (int)cfg->fed.sites : k;
}

static int state_init(fed_state_t *st, pst_session_t *s, pst_err_t *err)
{
    memset(st, 0, sizeof *st);
    st->s = s;
    st->n_params = pst_model_n_params(s->model);
    st->n_sampled = sampled_per_round(s->cfg);
    size_t sites = (size_t)s->cfg->fed.sites;
    pst_rng_init(&st->sample_rng, pst_rng_derive((uint64_t)s->cfg->seed, STREAM_SAMPLE));
    st->local = pst_model_new(pst_model_n_inputs(s->model), s->spec.layers, s->spec.n_layers,
                              s->opts.batch_size, err);
    if (!st->local)
        return pst_err_prefix(err, "model: ");
    st->deltas = malloc((size_t)st->n_sampled * st->n_params * sizeof *st->deltas);
    st->delta_ptrs = malloc(sites * sizeof *st->delta_ptrs);
    st->counts = malloc(sites * sizeof *st->counts);
    st->site_order = malloc(sites * sizeof *st->site_order);
    if (!st->deltas || !st->delta_ptrs || !st->counts || !st->site_order)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %d site updates", st->n_sampled);
    for (size_t i = 0; i < sites; i++)
        st->site_order[i] = i;
    int rc = make_split(st, err);
    if (rc == PST_OK)
        rc = make_aggregator(st, err);
    return rc == PST_OK ? make_accountant(st, err) : rc;
}

static void state_fini(fed_state_t *st)
{
    pst_fedsplit_fini(&st->split);
    pst_fedagg_destroy(&st->agg);
    pst_dpacct_destroy(&st->acct);
    pst_dpacct_destroy(&st->acct_ahead);
    pst_model_destroy(&st->local);
    free(st->deltas);
    free(st->delta_ptrs);
    free(st->counts);
    free(st->site_order);
}

/* Trains site from the global weights into the local model; delta (n) = local - global.
 * *answered is false when the site's training diverged (its update is left out). */
static int train_site(fed_state_t *st, int round, int site, float *delta, bool *answered,
                      double *rows, pst_err_t *err)
{
    pst_session_t *s = st->s;
    const float *global = pst_model_params(s->model);
    float *w = pst_model_params(st->local);
    memcpy(w, global, st->n_params * sizeof *w);
    pst_train_opts_t o = s->opts;
    o.epochs = (int)s->cfg->fed.local_epochs;
    o.sched.total_epochs = o.epochs;
    o.patience = 0;
    o.restore_best = false;
    o.start_clock = 0;
    o.seed =
        pst_rng_derive(pst_rng_derive(s->opts.seed, STREAM_SITE + (uint64_t)round), (uint64_t)site);
    site_ctx_t ctx = {st->local, global, pst_optim_new(&o.optim, st->n_params, err), st->mu,
                      st->n_params};
    if (!ctx.optim)
        return pst_err_prefix(err, "optimizer: ");
    pst_train_hooks_t hooks = {.ctx = &ctx, .pull = site_pull, .push = site_push};
    pst_rows_t train = pst_rows_all(s->data.train);
    train.idx = st->split.rows + st->split.start[site];
    train.n = pst_fedsplit_size(&st->split, site);
    pst_train_result_t r;
    pst_err_t site_err = {0};
    int rc = pst_train_rows(st->local, &train, NULL, &o, &hooks, &r, &site_err);
    pst_optim_destroy(&ctx.optim);
    *rows = (double)train.n;
    *answered = rc == PST_OK;
    if (rc == PST_ENUMERIC) {
        pst_warn("round %d: site %d left out: %s", round, site, site_err.msg);
        return PST_OK;
    }
    if (rc != PST_OK)
        return *err = site_err, rc;
    for (size_t i = 0; i < st->n_params; i++)
        delta[i] = w[i] - global[i];
    s->result.rows_trained += r.rows_trained;
    s->result.seconds += r.seconds;
    return PST_OK;
}

/* The round's k sites: the first k of a fresh seeded permutation. */
static void sample_sites(fed_state_t *st)
{
    pst_rng_shuffle(&st->sample_rng, st->site_order, (size_t)st->s->cfg->fed.sites);
}

typedef struct round_stats {
    int round, asked, answered;
    double val_loss, val_metric, bytes_down, bytes_up, epsilon, seconds, update_norm;
} round_stats_t;

static int validate_global(fed_state_t *st, round_stats_t *rs, pst_err_t *err)
{
    pst_session_t *s = st->s;
    pst_rows_t val = pst_rows_all(s->data.val);
    pst_eval_sums_t sums;
    int rc = pst_eval_sums_rows(s->model, &val, s->opts.batch_size, s->opts.loss,
                                s->opts.huber_delta, &sums, err);
    bool classify = s->data.train->task == PST_TASK_CLASSIFICATION;
    rs->val_loss = sums.n > 0 ? sums.loss_sum / sums.n : NAN;
    rs->val_metric = sums.n > 0 ? (classify ? sums.correct : sums.sq_err_sum) / sums.n : NAN;
    return rc;
}

static int run_round(fed_state_t *st, round_stats_t *rs, pst_err_t *err)
{
    double t0 = wall_seconds();
    sample_sites(st);
    int k = st->n_sampled, answered = 0;
    for (int i = 0; i < k; i++) {
        int site = (int)st->site_order[i];
        float *delta = st->deltas + (size_t)answered * st->n_params;
        bool ok = false;
        double rows = 0;
        int rc = train_site(st, rs->round, site, delta, &ok, &rows, err);
        if (rc != PST_OK)
            return pst_err_prefix(err, "site training: ");
        if (ok) {
            st->delta_ptrs[answered] = delta;
            st->counts[answered++] = rows;
        }
    }
    double model_bytes = 4.0 * (double)st->n_params;
    rs->asked = k;
    rs->answered = answered;
    rs->bytes_down = model_bytes * k;
    rs->bytes_up = model_bytes * answered;
    if (answered == 0)
        return pst_err_set(err, PST_ENUMERIC, "round %d: no site finished its local training",
                           rs->round);
    int rc = pst_fedagg_round(st->agg, pst_model_params(st->s->model), st->delta_ptrs, st->counts,
                              answered, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, "round %d: aggregation: ", rs->round);
    rs->update_norm = pst_fedagg_last(st->agg)->agg_norm;
    rc = validate_global(st, rs, err);
    rs->seconds = wall_seconds() - t0;
    return rc;
}

static void log_round(pst_session_t *s, const round_stats_t *rs, bool dp)
{
    bool classify = s->data.train->task == PST_TASK_CLASSIFICATION;
    const char *metric = classify ? "val_accuracy" : "val_mse";
    printf("round %3d  sites %d/%d", rs->round, rs->answered, rs->asked);
    if (isfinite(rs->val_loss))
        printf("  val_loss %.4f  %s %.4f", rs->val_loss, metric, rs->val_metric);
    if (dp)
        printf("  epsilon %.3f", rs->epsilon);
    printf("  up %.0f KB  %.1fs\n", rs->bytes_up / 1024, rs->seconds);
    fflush(stdout);
    if (!s->rundir.metrics)
        return;
    cJSON *line = cJSON_CreateObject();
    pst_json_add_number(line, "round", rs->round);
    pst_json_add_number(line, "sites_asked", rs->asked);
    pst_json_add_number(line, "sites_answered", rs->answered);
    pst_json_add_number(line, "val_loss", rs->val_loss);
    pst_json_add_number(line, metric, rs->val_metric);
    pst_json_add_number(line, "bytes_down", rs->bytes_down);
    pst_json_add_number(line, "bytes_up", rs->bytes_up);
    pst_json_add_number(line, "update_norm", rs->update_norm);
    if (dp)
        pst_json_add_number(line, "epsilon", rs->epsilon);
    pst_json_add_number(line, "seconds", rs->seconds);
    char *text = cJSON_PrintUnformatted(line);
    if (text)
        fprintf(s->rundir.metrics, "%s\n", text);
    fflush(s->rundir.metrics);
    free(text);
    cJSON_Delete(line);
}

/* DP: the epsilon after one more round, and whether it stays within the budget. */
static int budget_allows(fed_state_t *st, bool *allowed, pst_err_t *err)
{
    *allowed = true;
    double budget = st->s->cfg->fed.dp.epsilon_budget, eps;
    if (!st->acct || !(budget > 0))
        return PST_OK;
    int rc = pst_dpacct_epsilon(st->acct_ahead, st->s->cfg->fed.dp.delta, &eps, err);
    *allowed = rc == PST_OK && eps <= budget;
    return rc;
}

static int account_round(fed_state_t *st, round_stats_t *rs, pst_err_t *err)
{
    rs->epsilon = 0;
    if (!st->acct)
        return PST_OK;
    pst_dpacct_step(st->acct);
    pst_dpacct_step(st->acct_ahead);
    return pst_dpacct_epsilon(st->acct, st->s->cfg->fed.dp.delta, &rs->epsilon, err);
}

static cJSON *fed_section(const pst_config_t *cfg, const fed_state_t *st,
                          const pst_fedsim_result_t *res)
{
    cJSON *fed = cJSON_CreateObject();
    cJSON_AddStringToObject(fed, "split", cfg->fed.split);
    if (strcmp(cfg->fed.split, "dirichlet") == 0)
        pst_json_add_number(fed, "alpha", cfg->fed.alpha);
    cJSON_AddStringToObject(fed, "aggregator", cfg->fed.aggregator);
    if (st->mu > 0)
        pst_json_add_number(fed, "mu", st->mu);
    pst_json_add_number(fed, "sites", (double)cfg->fed.sites);
    pst_json_add_number(fed, "sites_per_round", st->n_sampled);
    pst_json_add_number(fed, "local_epochs", (double)cfg->fed.local_epochs);
    pst_json_add_number(fed, "rounds", res->rounds_run);
    pst_json_add_number(fed, "rounds_planned", (double)cfg->fed.rounds);
    pst_json_add_number(fed, "sites_asked", (double)res->sites_asked);
    pst_json_add_number(fed, "sites_answered", (double)res->sites_answered);
    pst_json_add_number(fed, "bytes_down", res->bytes_down);
    pst_json_add_number(fed, "bytes_up", res->bytes_up);
    pst_json_add_number(fed, "model_bytes", 4.0 * (double)st->n_params);
    cJSON *sizes = cJSON_AddArrayToObject(fed, "site_rows");
    for (int i = 0; i < st->split.n_sites; i++)
        cJSON_AddItemToArray(sizes, cJSON_CreateNumber((double)pst_fedsplit_size(&st->split, i)));
    if (cfg->fed.dp.clip > 0) {
        cJSON *dp = cJSON_AddObjectToObject(fed, "dp");
        pst_json_add_number(dp, "clip", cfg->fed.dp.clip);
        pst_json_add_number(dp, "noise", cfg->fed.dp.noise);
        pst_json_add_number(dp, "delta", cfg->fed.dp.delta);
        pst_json_add_number(dp, "epsilon", res->epsilon);
        pst_json_add_number(dp, "epsilon_budget", cfg->fed.dp.epsilon_budget);
        cJSON_AddBoolToObject(dp, "budget_stopped", res->budget_stopped);
    }
    return fed;
}

static int run_rounds(fed_state_t *st, pst_fedsim_result_t *res, pst_err_t *err)
{
    const pst_config_t *cfg = st->s->cfg;
    int rc = PST_OK;
    for (int round = 1; round <= cfg->fed.rounds && rc == PST_OK; round++) {
        bool allowed;
        if ((rc = budget_allows(st, &allowed, err)) != PST_OK)
            break;
        if (!allowed) {
            res->budget_stopped = true;
            pst_info("fed: stopping before round %d: it would spend more than epsilon %g", round,
                     cfg->fed.dp.epsilon_budget);
            break;
        }
        round_stats_t rs = {.round = round};
        if ((rc = run_round(st, &rs, err)) == PST_OK)
            rc = account_round(st, &rs, err);
        if (rc != PST_OK)
            break;
        res->rounds_run = round;
        res->sites_asked += rs.asked;
        res->sites_answered += rs.answered;
        res->bytes_down += rs.bytes_down;
        res->bytes_up += rs.bytes_up;
        res->epsilon = rs.epsilon;
        res->final_val_loss = rs.val_loss;
        res->final_val_metric = rs.val_metric;
        log_round(st->s, &rs, st->acct != NULL);
    }
    return rc;
}

int pst_fedsim_run(pst_session_t *s, pst_fedsim_result_t *res, pst_err_t *err)
{
    memset(res, 0, sizeof *res);
    res->final_val_loss = res->final_val_metric = NAN;
    int rc = pst_fedsim_check_config(s->cfg, s->data.train, err);
    if (rc != PST_OK)
        return rc;
    fed_state_t st;
    rc = state_init(&st, s, err);
    if (rc == PST_OK) {
        pst_info("fed: %ld sites (%s), %d asked per round, %s, model %zu parameters (%zu bytes)",
                 s->cfg->fed.sites, s->cfg->fed.split, st.n_sampled, s->cfg->fed.aggregator,
                 st.n_params, 4 * st.n_params);
        rc = run_rounds(&st, res, err);
    }
    s->result.epochs_run = res->rounds_run;
    s->result.clock = (uint64_t)res->rounds_run;
    s->result.samples_per_s =
        s->result.seconds > 0 ? (double)s->result.rows_trained / s->result.seconds : 0;
    if (rc == PST_OK) {
        if (!s->extra)
            s->extra = cJSON_CreateObject();
        cJSON_AddItemToObject(s->extra, "fed", fed_section(s->cfg, &st, res));
    }
    state_fini(&st);
    return rc;
}
