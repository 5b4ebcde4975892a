/* Federated rounds over simulated sites in one process: split, then each round the coordinator
 * samples sites, each trains from the global model and offers its update, and the coordinator
 * aggregates them. */
#include "app/fed/fedsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/fed/fedconf.h"
#include "app/fed/fedreport.h"
#include "worker/fed/fedtrain.h"
#include "app/rundir.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/rng.h"

enum { STREAM_SPLIT = 300, STREAM_ATTACK = 301 };

int pst_fedsim_sites_init(pst_fedsim_sites_t *sites, const pst_session_t *s, pst_err_t *err)
{
    memset(sites, 0, sizeof *sites);
    const pst_config_t *cfg = s->cfg;
    const pst_dataset_t *tr = s->data.train;
    int n = (int)cfg->fed.sites, rc;
    uint64_t seed = pst_rng_derive((uint64_t)cfg->seed, STREAM_SPLIT);
    sites->ids = calloc((size_t)n, sizeof *sites->ids);
    if (!sites->ids)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %d sites", n);
    sites->n = n;
    int width = snprintf(NULL, 0, "%d", n - 1);
    for (int i = 0; i < n; i++)
        snprintf(sites->ids[i], PST_FEDSIM_ID_LEN, "site-%0*d", width, i);
    if (strcmp(cfg->fed.split, "iid") == 0)
        return pst_fedsplit_iid(&sites->split, tr->n_rows, n, seed, err);
    int *labels = malloc(tr->n_rows * sizeof *labels);
    if (!labels)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; i < tr->n_rows; i++)
        labels[i] = (int)tr->y[i];
    rc = pst_fedsplit_dirichlet(&sites->split, labels, tr->n_rows, tr->n_classes, n, cfg->fed.alpha,
                                seed, err);
    free(labels);
    return rc;
}

void pst_fedsim_sites_fini(pst_fedsim_sites_t *sites)
{
    pst_fedsplit_fini(&sites->split);
    free(sites->ids);
    sites->ids = NULL;
}

pst_rows_t pst_fedsim_site_rows(const pst_fedsim_sites_t *sites, const pst_session_t *s, int i)
{
    pst_rows_t rows = pst_rows_all(s->data.train);
    rows.idx = sites->split.rows + sites->split.start[i];
    rows.n = pst_fedsplit_size(&sites->split, i);
    return rows;
}

void pst_fedsim_describe(const pst_fedsim_sites_t *sites, const pst_config_t *cfg, cJSON *fed)
{
    cJSON_AddStringToObject(fed, "split", cfg->fed.split);
    if (strcmp(cfg->fed.split, "dirichlet") == 0)
        pst_json_add_number(fed, "alpha", cfg->fed.alpha);
    pst_json_add_number(fed, "sites", sites->n);
    pst_json_add_number(
        fed, "sites_per_round",
        pst_fedround_sample_count(cfg->fed.fraction, (int)cfg->fed.min_sites, sites->n));
    cJSON *sizes = cJSON_AddArrayToObject(fed, "site_rows");
    for (int i = 0; i < sites->n; i++)
        cJSON_AddItemToArray(sizes,
                             cJSON_CreateNumber((double)pst_fedsplit_size(&sites->split, i)));
}

int pst_fedsim_check_config(const pst_config_t *cfg, const pst_dataset_t *train, pst_err_t *err)
{
    int rc = pst_fedconf_check(cfg, train, err);
    if (rc == PST_OK && train && train->n_rows < (size_t)cfg->fed.sites)
        rc = pst_err_set(err, PST_EINVAL, "fed.sites: %ld sites but only %zu training rows",
                         cfg->fed.sites, train->n_rows);
    bool attack = strcmp(cfg->fed.attack, "none") != 0;
    if (rc == PST_OK && attack && cfg->fed.attack_sites < 1)
        rc = pst_err_set(err, PST_EINVAL, "fed.attack: %s needs fed.attack_sites >= 1",
                         cfg->fed.attack);
    if (rc == PST_OK && !attack && cfg->fed.attack_sites > 0)
        rc = pst_err_set(err, PST_EINVAL, "fed.attack_sites: %ld attacking sites need fed.attack",
                         cfg->fed.attack_sites);
    if (rc == PST_OK && attack && cfg->fed.attack_sites >= cfg->fed.sites)
        rc = pst_err_set(err, PST_EINVAL,
                         "fed.attack_sites: %ld of %ld sites attack; at least one must be honest",
                         cfg->fed.attack_sites, cfg->fed.sites);
    return rc;
}

/* ---- the rounds in this process ---- */

typedef struct sim {
    pst_session_t *s;
    pst_fedsim_sites_t sites;
    pst_fedcoord_t *coord;
    pst_fedtrainer_t trainer;
    pst_fedreport_t report;
    float *delta;         /* (n_params) */
    pst_optim_t **kept;   /* (sites) each site's optimizer across rounds (fed.local_state keep) */
    pst_codec_t up, down; /* fed.codec, fed.down_codec */
    float *residuals;     /* (sites, n_params) error feedback of a lossy fed.codec, or NULL */
    uint8_t *payload;     /* an encoded update or global model */
    size_t payload_cap;
} sim_t;

static int sim_init(sim_t *sim, pst_session_t *s, pst_err_t *err)
{
    memset(sim, 0, sizeof *sim);
    sim->s = s;
    size_t n = pst_model_n_params(s->model);
    pst_fedcoord_cfg_t cc;
    pst_fedconf_coord(s->cfg, &cc);
    int rc = pst_fedsim_sites_init(&sim->sites, s, err);
    if (rc != PST_OK)
        return rc;
    sim->coord = pst_fedcoord_new(&cc, pst_model_params(s->model), n, err);
    if (!sim->coord)
        return pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "fed: ");
    for (int i = 0; i < sim->sites.n; i++)
        if ((rc = pst_fedround_register(pst_fedcoord_sites(sim->coord), sim->sites.ids[i], err)) <
            0)
            return rc;
    rc = pst_fedtrainer_init(&sim->trainer, &s->spec, pst_model_n_inputs(s->model), &s->opts,
                             s->cfg, err);
    if (rc != PST_OK)
        return rc;
    sim->up = pst_fedconf_up_codec(s->cfg);
    sim->down = pst_fedconf_down_codec(s->cfg);
    sim->delta = malloc(n * sizeof *sim->delta);
    sim->kept = calloc((size_t)sim->sites.n, sizeof *sim->kept);
    sim->payload_cap = pst_codec_bound(sim->up, n) > pst_codec_bound(sim->down, n)
                           ? pst_codec_bound(sim->up, n)
                           : pst_codec_bound(sim->down, n);
    sim->payload = malloc(sim->payload_cap);
    bool lossy = pst_codec_lossy(sim->up);
    if (lossy)
        sim->residuals = calloc((size_t)sim->sites.n * n, sizeof *sim->residuals);
    if (!sim->delta || !sim->kept || !sim->payload || (lossy && !sim->residuals))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    pst_fedreport_init(&sim->report, s, s->cfg->fed.dp.clip > 0);
    return PST_OK;
}

static void sim_fini(sim_t *sim)
{
    for (int i = 0; sim->kept && i < sim->sites.n; i++)
        pst_optim_destroy(&sim->kept[i]);
    free(sim->kept);
    pst_fedsim_sites_fini(&sim->sites);
    pst_fedcoord_destroy(&sim->coord);
    pst_fedtrainer_fini(&sim->trainer);
    free(sim->delta);
    free(sim->payload);
    free(sim->residuals);
}

/* What a network would carry: values encoded with codec, and *bytes the encoded size. A lossy
 * codec keeps the site's error feedback in residual, and values become what the receiver would
 * decode; a lossless one leaves them as they are. */
static int through_codec(sim_t *sim, pst_codec_t codec, const float *values, float *decoded,
                         float *residual, double *bytes, pst_err_t *err)
{
    size_t n = sim->trainer.n_params, len = 0;
    pst_codec_t used = codec;
    int rc = pst_codec_encode(codec, values, n, residual, sim->payload, sim->payload_cap, &len,
                              &used, err);
    if (rc == PST_OK && pst_codec_lossy(used))
        rc = pst_codec_decode(used, sim->payload, len, decoded, n, err);
    *bytes = (double)len;
    return rc;
}

/* An attacking site's update in place of its honest one, delta (n): minus scale times it
 * (sign_flip), or Gaussian noise of scale times its root mean square (noise), drawn from seed. */
static void attack_update(const pst_config_t *cfg, uint64_t seed, float *delta, size_t n)
{
    double scale = cfg->fed.attack_scale;
    if (strcmp(cfg->fed.attack, "sign_flip") == 0) {
        for (size_t i = 0; i < n; i++)
            delta[i] = (float)(-scale * delta[i]);
        return;
    }
    double sum_sq = 0;
    for (size_t i = 0; i < n; i++)
        sum_sq += (double)delta[i] * delta[i];
    double sd = scale * sqrt(sum_sq / (double)(n > 0 ? n : 1));
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(seed, STREAM_ATTACK));
    for (size_t i = 0; i < n; i++)
        delta[i] = (float)(sd * pst_rng_normal(&rng));
}

/* Site `site` (its registry index is its number) trains for the open round and offers its update;
 * a site whose training diverged is dropped from the round. */
static int train_site(sim_t *sim, int site, pst_fedtraffic_t *traffic, pst_err_t *err)
{
    pst_session_t *s = sim->s;
    uint64_t round = pst_fedcoord_round(sim->coord);
    const float *global = pst_fedcoord_global(sim->coord);
    pst_rows_t rows = pst_fedsim_site_rows(&sim->sites, s, site);
    uint64_t seed = pst_fedcoord_task_seed((uint64_t)s->cfg->seed, round, sim->sites.ids[site]);
    pst_fedtrain_result_t res;
    pst_err_t site_err = {0};
    pst_optim_t **kept = sim->trainer.keep_state ? &sim->kept[site] : NULL;
    int rc = pst_fedtrainer_run_kept(&sim->trainer, &rows, global, round, seed, kept, sim->delta,
                                     &res, &site_err);
    if (rc != PST_OK) {
        *err = site_err;
        return pst_err_prefix(err, rc, "%s: ", sim->sites.ids[site]);
    }
    if (!res.ok) {
        pst_warn("round %llu: %s left out: %s", (unsigned long long)round, sim->sites.ids[site],
                 site_err.msg);
        pst_fedcoord_drop(sim->coord, site);
        return PST_OK;
    }
    size_t n = sim->trainer.n_params;
    if (site < s->cfg->fed.attack_sites)
        attack_update(s->cfg, seed, sim->delta, n);
    double wire = 0;
    float *residual = sim->residuals ? sim->residuals + (size_t)site * n : NULL;
    if ((rc = through_codec(sim, sim->up, sim->delta, sim->delta, residual, &wire, err)) != PST_OK)
        return rc;
    traffic->up_raw += 4.0 * (double)n;
    traffic->up_wire += wire;
    pst_fedcoord_offer(sim->coord, site, round, sim->delta, res.rows, res.loss,
                       pst_clock_seconds());
    s->result.rows_trained += res.rows_trained;
    s->result.seconds += res.seconds;
    return PST_OK;
}

/* One round; *more is false when no round is left. */
static int run_round(sim_t *sim, bool *more, pst_err_t *err)
{
    double t0 = pst_clock_seconds();
    const int *asked;
    int k;
    int rc = pst_fedcoord_begin(sim->coord, t0, &asked, &k, err);
    if (rc == PST_ESTATE && pst_fedcoord_finished(sim->coord)) {
        if (pst_fedcoord_budget_stopped(sim->coord))
            pst_info("fed: stopping: %s", err->msg);
        *more = false;
        return PST_OK;
    }
    if (rc != PST_OK)
        return rc;
    /* The size of the global weights as the sites would receive them (down codecs are
     * lossless: the weights stay as they are). */
    double bytes = 4.0 * (double)sim->trainer.n_params, wire = 0;
    rc = through_codec(sim, sim->down, pst_fedcoord_global(sim->coord), NULL, NULL, &wire, err);
    if (rc != PST_OK)
        return rc;
    pst_fedtraffic_t traffic = {bytes * k, wire * k, 0, 0};
    for (int i = 0; i < k && rc == PST_OK; i++)
        rc = train_site(sim, asked[i], &traffic, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "site training: ");
    pst_fedcoord_round_t r;
    pst_err_t agg_err = {0};
    if (pst_fedcoord_end(sim->coord, pst_clock_seconds(), &r, &agg_err) != PST_OK)
        pst_warn("round %llu: weights unchanged: %s", (unsigned long long)r.round, agg_err.msg);
    rc = pst_fedreport_round(&sim->report, &r, pst_fedcoord_global(sim->coord), &traffic,
                             pst_clock_seconds() - t0, err);
    *more = rc == PST_OK;
    return rc;
}

int pst_fedsim_run(pst_session_t *s, pst_err_t *err)
{
    int rc = pst_fedsim_check_config(s->cfg, s->data.train, err);
    if (rc != PST_OK)
        return rc;
    sim_t sim;
    rc = sim_init(&sim, s, err);
    if (rc == PST_OK) {
        pst_info("fed: %d sites (%s), %s, model %zu parameters (%zu bytes)", sim.sites.n,
                 s->cfg->fed.split, s->cfg->fed.aggregator, sim.trainer.n_params,
                 4 * sim.trainer.n_params);
        for (bool more = true; more && rc == PST_OK;)
            rc = run_round(&sim, &more, err);
    }
    s->result.epochs_run = sim.report.rounds_run;
    s->result.clock = (uint64_t)sim.report.rounds_run;
    s->result.samples_per_s =
        s->result.seconds > 0 ? (double)s->result.rows_trained / s->result.seconds : 0;
    if (rc == PST_OK) {
        if (!s->extra)
            s->extra = cJSON_CreateObject();
        cJSON *fed = pst_fedreport_section(&sim.report, s->cfg, sim.coord);
        pst_fedsim_describe(&sim.sites, s->cfg, fed);
        cJSON_AddItemToObject(s->extra, "fed", fed);
    }
    sim_fini(&sim);
    return rc;
}
