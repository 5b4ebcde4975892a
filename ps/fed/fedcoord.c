/* Federated coordinator: rounds over the registry, update slots, aggregation, privacy budget. */
#include "ps/fed/fedcoord.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fed/dpacct.h"
#include "common/rng.h"

/* Seed stream of the sites' local training, apart from the other streams of a run. */
#define STREAM_SITE 0x5349544555ull

/* An asked site's answer in the open round. */
typedef struct slot {
    bool answered;
    double samples, loss;
} slot_t;

struct pst_fedcoord {
    pst_fedcoord_cfg_t cfg;
    size_t n;
    float *global; /* (n) */
    pst_fedround_t *sites;
    pst_fedagg_t *agg;
    pst_dpacct_t *acct; /* NULL without DP */
    float *slots;       /* (slot_cap, n): the update of the i-th asked site */
    slot_t *meta;       /* (slot_cap) what came with it */
    int slot_cap;
    const int *asked; /* (n_asked) of the open round, owned by sites */
    int n_asked;
    const float **ptrs; /* (slot_cap) scratch for the aggregator */
    double *counts;     /* (slot_cap) */
    int refused;        /* offers of the open round that did not count */
    double q;           /* sampling rate of the open round */
    bool finished, budget_stopped;
};

static bool dp_on(const pst_fedcoord_t *c)
{
    return c->cfg.agg.dp_clip > 0;
}

pst_fedcoord_t *pst_fedcoord_new(const pst_fedcoord_cfg_t *cfg, const float *init, size_t n,
                                 pst_err_t *err)
{
    if (cfg->rounds < 1 || n == 0 || init == NULL) {
        pst_err_set(err, PST_EINVAL, "fed: need at least one round and a model");
        return NULL;
    }
    if (cfg->agg.dp_clip > 0 && !(cfg->dp_delta > 0 && cfg->dp_delta < 1)) {
        pst_err_set(err, PST_EINVAL, "fed.dp.delta: %g not in (0, 1)", cfg->dp_delta);
        return NULL;
    }
    pst_fedcoord_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        pst_err_set(err, PST_ENOMEM, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->n = n;
    c->global = malloc(n * sizeof *c->global);
    c->sites = pst_fedround_new(&cfg->round, err);
    c->agg = c->sites ? pst_fedagg_new(&cfg->agg, n, err) : NULL;
    if (c->agg && dp_on(c))
        c->acct = pst_dpacct_new(0, cfg->agg.dp_noise, err);
    if (c->global == NULL) {
        pst_err_set(err, PST_ENOMEM, "out of memory for a model of %zu floats", n);
        pst_fedcoord_destroy(&c);
        return NULL;
    }
    if (c->agg == NULL || (dp_on(c) && c->acct == NULL)) {
        pst_fedcoord_destroy(&c);
        return NULL;
    }
    memcpy(c->global, init, n * sizeof *c->global);
    return c;
}

void pst_fedcoord_destroy(pst_fedcoord_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_fedcoord_t *c = *self_p;
    free(c->global);
    pst_fedround_destroy(&c->sites);
    pst_fedagg_destroy(&c->agg);
    pst_dpacct_destroy(&c->acct);
    free(c->slots);
    free(c->meta);
    free(c->ptrs);
    free(c->counts);
    free(c);
    *self_p = NULL;
}

pst_fedround_t *pst_fedcoord_sites(pst_fedcoord_t *c)
{
    return c->sites;
}

float *pst_fedcoord_global(pst_fedcoord_t *c)
{
    return c->global;
}

size_t pst_fedcoord_n_params(const pst_fedcoord_t *c)
{
    return c->n;
}

uint64_t pst_fedcoord_round(const pst_fedcoord_t *c)
{
    return pst_fedround_current(c->sites);
}

bool pst_fedcoord_finished(const pst_fedcoord_t *c)
{
    return c->finished;
}

bool pst_fedcoord_budget_stopped(const pst_fedcoord_t *c)
{
    return c->budget_stopped;
}

double pst_fedcoord_epsilon(const pst_fedcoord_t *c)
{
    double eps = 0;
    if (c->acct)
        pst_dpacct_epsilon(c->acct, c->cfg.dp_delta, &eps, NULL);
    return eps;
}

/* Room for k updates of n floats. */
static int reserve_slots(pst_fedcoord_t *c, int k, pst_err_t *err)
{
    if (k <= c->slot_cap)
        return PST_OK;
    float *slots = realloc(c->slots, (size_t)k * c->n * sizeof *slots);
    if (slots)
        c->slots = slots;
    slot_t *meta = realloc(c->meta, (size_t)k * sizeof *meta);
    if (meta)
        c->meta = meta;
    const float **ptrs = realloc(c->ptrs, (size_t)k * sizeof *ptrs);
    if (ptrs)
        c->ptrs = ptrs;
    double *counts = realloc(c->counts, (size_t)k * sizeof *counts);
    if (counts)
        c->counts = counts;
    if (!slots || !meta || !ptrs || !counts)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %d updates of %zu floats", k, c->n);
    c->slot_cap = k;
    return PST_OK;
}

/* DP: whether one more round at sampling rate q keeps the spent epsilon within the budget. */
static int budget_allows(const pst_fedcoord_t *c, double q, bool *allowed, pst_err_t *err)
{
    *allowed = true;
    if (c->acct == NULL || !(c->cfg.dp_budget > 0))
        return PST_OK;
    double eps;
    int rc =
        pst_dpacct_epsilon_after(c->acct, q, c->cfg.agg.dp_noise, 1, c->cfg.dp_delta, &eps, err);
    *allowed = rc == PST_OK && eps <= c->cfg.dp_budget;
    return rc;
}

int pst_fedcoord_begin(pst_fedcoord_t *c, double now, const int **asked, int *n_asked,
                       pst_err_t *err)
{
    if (c->finished)
        return pst_err_set(err, PST_ESTATE, "fed: the run is finished");
    if (pst_fedround_is_open(c->sites))
        return pst_err_set(err, PST_ESTATE, "fed: round %llu is still open",
                           (unsigned long long)pst_fedround_current(c->sites));
    int eligible = pst_fedround_n_eligible(c->sites);
    if (eligible < c->cfg.round.min_sites)
        return pst_err_set(err, PST_ENOTFOUND, "fed: %d of the %d sites needed are here", eligible,
                           c->cfg.round.min_sites);
    int k = pst_fedround_sample_count(c->cfg.round.fraction, c->cfg.round.min_sites, eligible);
    double q = (double)k / (double)eligible;
    bool allowed;
    int rc = budget_allows(c, q, &allowed, err);
    if (rc != PST_OK)
        return rc;
    if (!allowed) {
        c->finished = c->budget_stopped = true;
        return pst_err_set(
            err, PST_ESTATE, "fed: round %llu would spend more than the epsilon budget %g",
            (unsigned long long)pst_fedround_current(c->sites) + 1, c->cfg.dp_budget);
    }
    if ((rc = reserve_slots(c, k, err)) != PST_OK)
        return rc;
    uint64_t round = pst_fedround_current(c->sites) + 1;
    rc = pst_fedround_start(c->sites, round, now, &c->asked, &c->n_asked, err);
    if (rc != PST_OK)
        return rc;
    memset(c->meta, 0, (size_t)c->n_asked * sizeof *c->meta);
    c->refused = 0;
    c->q = q;
    pst_fedagg_set_dp_sites(c->agg, c->n_asked);
    *asked = c->asked;
    *n_asked = c->n_asked;
    return PST_OK;
}

static int slot_of(const pst_fedcoord_t *c, int index)
{
    for (int i = 0; i < c->n_asked; i++)
        if (c->asked[i] == index)
            return i;
    return -1;
}

pst_fedround_verdict_t pst_fedcoord_offer(pst_fedcoord_t *c, int index, uint64_t round,
                                          const float *delta, double samples, double loss,
                                          double now)
{
    pst_fedround_verdict_t v = pst_fedround_offer(c->sites, index, round, now);
    if (v != PST_FEDROUND_ACCEPTED) {
        c->refused += pst_fedround_is_open(c->sites);
        return v;
    }
    int slot = slot_of(c, index); /* asked, so found */
    memcpy(c->slots + (size_t)slot * c->n, delta, c->n * sizeof *delta);
    c->meta[slot] = (slot_t){true, samples, loss};
    return v;
}

bool pst_fedcoord_drop(pst_fedcoord_t *c, int index)
{
    return pst_fedround_drop(c->sites, index);
}

pst_fedround_close_t pst_fedcoord_poll(const pst_fedcoord_t *c, double now, double *deadline)
{
    return pst_fedround_poll(c->sites, now, deadline);
}

/* Gathers the answered slots in asking order; fills the row and loss figures of out. */
static int gather(pst_fedcoord_t *c, pst_fedcoord_round_t *out)
{
    int k = 0;
    double loss_sum = 0;
    for (int i = 0; i < c->n_asked; i++) {
        const slot_t *m = &c->meta[i];
        if (!m->answered)
            continue;
        c->ptrs[k] = c->slots + (size_t)i * c->n;
        c->counts[k++] = m->samples;
        out->samples += m->samples;
        loss_sum += m->samples * m->loss;
    }
    out->train_loss = out->samples > 0 ? loss_sum / out->samples : NAN;
    return k;
}

int pst_fedcoord_end(pst_fedcoord_t *c, double now, pst_fedcoord_round_t *out, pst_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->round = pst_fedround_current(c->sites);
    out->train_loss = NAN;
    if (!pst_fedround_is_open(c->sites))
        return pst_err_set(err, PST_ESTATE, "fed: no round is open");
    out->closed_by = pst_fedround_poll(c->sites, now, NULL);
    pst_fedround_finish(c->sites);
    out->asked = c->n_asked;
    out->refused = c->refused;
    out->sampling_rate = c->q;
    int k = gather(c, out);
    out->answered = k;
    int rc = PST_OK;
    /* the server's policy on the claimed rows, after out->samples recorded the claims */
    out->capped = pst_fedweight_apply(c->cfg.weighting, c->counts, k);
    if (k > 0)
        rc = pst_fedagg_round(c->agg, c->global, c->ptrs, c->counts, k, err);
    if (k > 0 && rc == PST_OK) {
        const pst_fedagg_info_t *info = pst_fedagg_last(c->agg);
        out->aggregated = true;
        out->update_norm = info->agg_norm;
        out->n_skipped = info->n_skipped;
        /* Privacy is spent only when a noised aggregate was released. */
        if (c->acct)
            rc = pst_dpacct_compose(c->acct, c->q, c->cfg.agg.dp_noise, 1, err);
    }
    out->epsilon = pst_fedcoord_epsilon(c);
    if (out->round >= c->cfg.rounds)
        c->finished = true;
    return rc;
}

uint64_t pst_fedcoord_task_seed(uint64_t run_seed, uint64_t round, const char *site)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the site id */
    for (const unsigned char *p = (const unsigned char *)site; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return pst_rng_derive(pst_rng_derive(pst_rng_derive(run_seed, STREAM_SITE), round), h);
}

pst_fedagg_t *pst_fedcoord_agg(pst_fedcoord_t *c)
{
    return c->agg;
}

int pst_fedcoord_resume_after(pst_fedcoord_t *c, uint64_t round, pst_err_t *err)
{
    if (c->acct != NULL)
        return pst_err_set(err, PST_EINVAL,
                           "fed: a run with differential privacy (fed.dp.clip) cannot resume: its "
                           "privacy accounting is not checkpointed");
    if (round > c->cfg.rounds)
        return pst_err_set(err, PST_EINVAL, "fed: resuming after round %llu of %llu",
                           (unsigned long long)round, (unsigned long long)c->cfg.rounds);
    int rc = pst_fedround_set_round(c->sites, round, err);
    c->finished = rc == PST_OK && round >= c->cfg.rounds;
    return rc;
}
