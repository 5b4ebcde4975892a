/* Federated settings: aggregator names, cross-key checks, coordinator settings. */
#include "app/fed/fedconf.h"

#include <limits.h>
#include <string.h>

#include "common/fed/fedagg.h"
#include "common/rng.h"

/* Seed streams of a federated run, derived from the configuration's seed. */
enum { STREAM_DP_NOISE = 301, STREAM_SAMPLE = 302 };

/* The aggregator's rule and server optimizer for a fed.aggregator name. */
static int parse_aggregator(const char *name, pst_fedagg_rule_t *rule, pst_fedopt_t *opt)
{
    *rule = PST_FEDAGG_MEAN;
    *opt = PST_FEDOPT_SGD;
    if (strcmp(name, "fedadam") == 0 || strcmp(name, "fedyogi") == 0 ||
        strcmp(name, "fedadagrad") == 0)
        return pst_fedagg_opt_parse(name, opt);
    return pst_fedagg_rule_parse(name, rule);
}

/* Krum scores each update against its n - f - 2 nearest: it needs more than 2f + 2 of them. */
static int check_krum(const pst_config_t *cfg, pst_fedagg_rule_t rule, pst_err_t *err)
{
    if (rule != PST_FEDAGG_KRUM && rule != PST_FEDAGG_MULTI_KRUM)
        return PST_OK;
    pst_fedagg_cfg_t ac;
    pst_fedagg_cfg_defaults(&ac, PST_FEDOPT_SGD);
    int asked =
        pst_fedround_sample_count(cfg->fed.fraction, (int)cfg->fed.min_sites, (int)cfg->fed.sites);
    if (asked <= 2 * ac.krum_f + 2)
        return pst_err_set(err, PST_EINVAL,
                           "fed.aggregator: %s needs more than %d updates a round, but fed.sites "
                           "%ld with fed.fraction %g asks %d",
                           cfg->fed.aggregator, 2 * ac.krum_f + 2, cfg->fed.sites,
                           cfg->fed.fraction, asked);
    return PST_OK;
}

int pst_fedconf_check(const pst_config_t *cfg, const pst_dataset_t *train, pst_err_t *err)
{
    pst_fedagg_rule_t rule;
    pst_fedopt_t opt;
    if (parse_aggregator(cfg->fed.aggregator, &rule, &opt) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "fed.aggregator: unknown rule '%s'",
                           cfg->fed.aggregator);
    if (strcmp(cfg->train.imbalance, "none") != 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.imbalance: federated training does not apply %s (each site "
                           "trains on its own rows, which no site resamples or reweights); set "
                           "train.imbalance: none",
                           cfg->train.imbalance);
    if (cfg->fed.server_momentum > 0 && opt != PST_FEDOPT_SGD)
        return pst_err_set(err, PST_EINVAL,
                           "fed.server_momentum: %s keeps its own first moment; server momentum "
                           "is for fedavg, fedprox and the robust rules",
                           cfg->fed.aggregator);
    if (cfg->fed.server_nesterov && !(cfg->fed.server_momentum > 0))
        return pst_err_set(err, PST_EINVAL,
                           "fed.server_nesterov: needs fed.server_momentum > 0 (it is %g)",
                           cfg->fed.server_momentum);
    if (strcmp(cfg->fed.local_state, "keep") == 0 && cfg->optimizer.lookahead_k > 0)
        return pst_err_set(err, PST_EINVAL,
                           "fed.local_state: keep does not carry optimizer.lookahead_k's slow "
                           "weights across rounds; set fed.local_state: reset or lookahead_k: 0");
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
    if (cfg->train.dp.clip > 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.dp.clip: federated runs protect sites with fed.dp.* instead");
    int rc = check_krum(cfg, rule, err);
    if (rc != PST_OK)
        return rc;
    if (train && strcmp(cfg->fed.split, "dirichlet") == 0 && train->task != PST_TASK_CLASSIFICATION)
        return pst_err_set(err, PST_EINVAL, "fed.split: dirichlet needs a classification task");
    return PST_OK;
}

void pst_fedconf_coord(const pst_config_t *cfg, pst_fedcoord_cfg_t *out)
{
    memset(out, 0, sizeof *out);
    pst_fedagg_rule_t rule;
    pst_fedopt_t opt;
    parse_aggregator(cfg->fed.aggregator, &rule, &opt); /* checked before */
    pst_fedagg_cfg_defaults(&out->agg, opt);
    out->agg.rule = rule;
    if (cfg->fed.server_lr > 0)
        out->agg.server_lr = cfg->fed.server_lr;
    out->agg.server_momentum = cfg->fed.server_momentum;
    out->agg.server_nesterov = cfg->fed.server_nesterov;
    out->agg.dp_clip = cfg->fed.dp.clip;
    out->agg.dp_noise = cfg->fed.dp.clip > 0 ? cfg->fed.dp.noise : 0;
    out->agg.skip_nonfinite = 1;
    out->agg.seed = pst_rng_derive((uint64_t)cfg->seed, STREAM_DP_NOISE);
    out->round.fraction = cfg->fed.fraction;
    out->round.min_sites = (int)cfg->fed.min_sites;
    out->round.min_responses = cfg->fed.min_responses > 0 ? (int)cfg->fed.min_responses : INT_MAX;
    out->round.wait_after_min = cfg->fed.wait_after_min;
    out->round.round_timeout = cfg->fed.round_timeout;
    out->round.seed = pst_rng_derive((uint64_t)cfg->seed, STREAM_SAMPLE);
    out->rounds = (uint64_t)cfg->fed.rounds;
    out->dp_delta = cfg->fed.dp.delta;
    out->dp_budget = cfg->fed.dp.epsilon_budget;
    pst_fedweight_parse(cfg->fed.weighting, &out->weighting); /* the key table allows no other */
}

/* A codec key's value; the configuration's choices admit only known names. */
static pst_codec_t codec_of(const char *name)
{
    pst_codec_t c = PST_CODEC_RAW;
    pst_codec_parse(name, &c);
    return c;
}

pst_codec_t pst_fedconf_up_codec(const pst_config_t *cfg)
{
    return codec_of(cfg->fed.codec);
}

pst_codec_t pst_fedconf_down_codec(const pst_config_t *cfg)
{
    return codec_of(cfg->fed.down_codec);
}
