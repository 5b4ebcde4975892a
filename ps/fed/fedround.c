/* Federated round bookkeeping: registry, seeded sampling, close conditions, late updates. */
#include "ps/fed/fedround.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

typedef struct site {
    char id[PST_FEDROUND_SITE_MAX + 1];
    bool silent;   /* missed a round and has not been seen since */
    bool asked;    /* asked in the open (or last) round */
    bool answered; /* answered the open (or last) round */
    bool dropped;  /* asked in the open round, and will not answer it */
} site_t;

struct pst_fedround {
    pst_fedround_cfg_t cfg;
    site_t *sites; /* (n_sites) */
    int n_sites, cap;
    int *asked;    /* (cap) indices asked in the current round */
    int *by_id;    /* (n_sites) site indices in the order of their ids */
    size_t *order; /* (cap) sampling scratch */
    int n_asked, n_answered, n_dropped, needed;
    bool open;
    uint64_t round;
    double started, min_reached; /* times; min_reached < 0 until `needed` answers arrived */
    pst_rng_t rng;
};

int pst_fedround_sample_count(double fraction, int min_sites, int n_eligible)
{
    int k = (int)ceil(fraction * (double)n_eligible - 1e-9);
    if (k < min_sites)
        k = min_sites;
    return k > n_eligible ? n_eligible : k;
}

pst_fedround_t *pst_fedround_new(const pst_fedround_cfg_t *cfg, pst_err_t *err)
{
    if (!(cfg->fraction > 0 && cfg->fraction <= 1) || cfg->min_sites < 1 ||
        cfg->min_responses < 1 || !(cfg->wait_after_min >= 0) || !(cfg->round_timeout > 0)) {
        pst_err_set(err, PST_EINVAL,
                    "fed rounds: need 0 < fraction <= 1, min_sites >= 1, min_responses >= 1, "
                    "wait_after_min >= 0, round_timeout > 0");
        return NULL;
    }
    pst_fedround_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        pst_err_set(err, PST_ENOMEM, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    pst_rng_init(&r->rng, cfg->seed);
    return r;
}

void pst_fedround_destroy(pst_fedround_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_fedround_t *r = *self_p;
    free(r->sites);
    free(r->asked);
    free(r->order);
    free(r->by_id);
    free(r);
    *self_p = NULL;
}

static int grow(pst_fedround_t *r, pst_err_t *err)
{
    int cap = r->cap ? 2 * r->cap : 8;
    site_t *sites = realloc(r->sites, (size_t)cap * sizeof *sites);
    if (sites)
        r->sites = sites;
    int *asked = realloc(r->asked, (size_t)cap * sizeof *asked);
    if (asked)
        r->asked = asked;
    size_t *order = realloc(r->order, (size_t)cap * sizeof *order);
    if (order)
        r->order = order;
    int *by_id = realloc(r->by_id, (size_t)cap * sizeof *by_id);
    if (by_id)
        r->by_id = by_id;
    if (!sites || !asked || !order || !by_id)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %d sites", cap);
    r->cap = cap;
    return PST_OK;
}

/* The position in by_id where site is, or would be inserted; *found tells which. */
static int id_position(const pst_fedround_t *r, const char *site, bool *found)
{
    int lo = 0, hi = r->n_sites;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(r->sites[r->by_id[mid]].id, site);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int pst_fedround_register(pst_fedround_t *r, const char *site, pst_err_t *err)
{
    if (site == NULL || !pst_fedkey_site_valid(site))
        return pst_err_set(err, PST_EINVAL,
                           "site id '%.80s': 1 to %d letters, digits, '-', '_' or '.'",
                           site ? site : "", PST_FEDROUND_SITE_MAX);
    bool found;
    int pos = id_position(r, site, &found);
    if (found) {
        r->sites[r->by_id[pos]].silent = false;
        return r->by_id[pos];
    }
    if (r->n_sites == r->cap) {
        int rc = grow(r, err);
        if (rc != PST_OK)
            return rc;
    }
    site_t *s = &r->sites[r->n_sites];
    memset(s, 0, sizeof *s);
    strcpy(s->id, site);
    memmove(r->by_id + pos + 1, r->by_id + pos, (size_t)(r->n_sites - pos) * sizeof *r->by_id);
    r->by_id[pos] = r->n_sites;
    return r->n_sites++;
}

int pst_fedround_find(const pst_fedround_t *r, const char *site)
{
    bool found;
    int pos = id_position(r, site, &found);
    return found ? r->by_id[pos] : -1;
}

const char *pst_fedround_site(const pst_fedround_t *r, int index)
{
    return index >= 0 && index < r->n_sites ? r->sites[index].id : "?";
}

int pst_fedround_n_sites(const pst_fedround_t *r)
{
    return r->n_sites;
}

int pst_fedround_n_eligible(const pst_fedround_t *r)
{
    int n = 0;
    for (int i = 0; i < r->n_sites; i++)
        n += !r->sites[i].silent;
    return n;
}

void pst_fedround_seen(pst_fedround_t *r, int index)
{
    if (index >= 0 && index < r->n_sites)
        r->sites[index].silent = false;
}

void pst_fedround_hold(pst_fedround_t *r, int index)
{
    if (index >= 0 && index < r->n_sites)
        r->sites[index].silent = true;
}

int pst_fedround_start(pst_fedround_t *r, uint64_t round, double now, const int **asked,
                       int *n_asked, pst_err_t *err)
{
    if (r->open || round <= r->round)
        return pst_err_set(err, PST_ESTATE, "fed round %llu: round %llu is %s",
                           (unsigned long long)round, (unsigned long long)r->round,
                           r->open ? "still open" : "not older");
    /* Eligible sites in the order of their ids, so the sample depends on which sites are
     * eligible, not on the order they registered. */
    int n = 0;
    for (int k = 0; k < r->n_sites; k++) {
        site_t *s = &r->sites[r->by_id[k]];
        s->asked = s->answered = s->dropped = false;
        if (!s->silent)
            r->order[n++] = (size_t)r->by_id[k];
    }
    if (n < r->cfg.min_sites)
        return pst_err_set(err, PST_ENOTFOUND, "fed round %llu: %d of %d sites needed are here",
                           (unsigned long long)round, n, r->cfg.min_sites);
    pst_rng_shuffle(&r->rng, r->order, (size_t)n);
    r->n_asked = pst_fedround_sample_count(r->cfg.fraction, r->cfg.min_sites, n);
    for (int i = 0; i < r->n_asked; i++) {
        r->asked[i] = (int)r->order[i];
        r->sites[r->asked[i]].asked = true;
    }
    r->needed = r->cfg.min_responses < r->n_asked ? r->cfg.min_responses : r->n_asked;
    r->n_answered = r->n_dropped = 0;
    r->open = true;
    r->round = round;
    r->started = now;
    r->min_reached = -1;
    *asked = r->asked;
    *n_asked = r->n_asked;
    return PST_OK;
}

bool pst_fedround_is_open(const pst_fedround_t *r)
{
    return r->open;
}

uint64_t pst_fedround_current(const pst_fedround_t *r)
{
    return r->round;
}

pst_fedround_verdict_t pst_fedround_offer(pst_fedround_t *r, int index, uint64_t round, double now)
{
    pst_fedround_seen(r, index);
    if (round < r->round || (round == r->round && !r->open))
        return PST_FEDROUND_LATE;
    if (round > r->round)
        return PST_FEDROUND_FUTURE;
    site_t *s = &r->sites[index];
    if (!s->asked)
        return PST_FEDROUND_UNASKED;
    if (s->answered)
        return PST_FEDROUND_DUPLICATE;
    if (s->dropped) { /* it came back after all */
        s->dropped = false;
        r->n_dropped--;
    }
    s->answered = true;
    if (++r->n_answered == r->needed)
        r->min_reached = now;
    return PST_FEDROUND_ACCEPTED;
}

const char *pst_fedround_verdict_name(pst_fedround_verdict_t v)
{
    static const char *names[] = {"accepted", "late", "not asked", "duplicate", "future round"};
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

pst_fedround_close_t pst_fedround_poll(const pst_fedround_t *r, double now, double *deadline)
{
    double at = INFINITY;
    pst_fedround_close_t c = PST_FEDROUND_OPEN;
    if (r->open) {
        double timeout_at = r->started + r->cfg.round_timeout;
        double wait_at = r->min_reached >= 0 ? r->min_reached + r->cfg.wait_after_min : INFINITY;
        at = wait_at < timeout_at ? wait_at : timeout_at;
        if (r->n_answered + r->n_dropped == r->n_asked)
            c = PST_FEDROUND_ALL;
        else if (now >= wait_at)
            c = PST_FEDROUND_MIN_WAIT;
        else if (now >= timeout_at)
            c = PST_FEDROUND_TIMEOUT;
    }
    if (deadline)
        *deadline = at;
    return c;
}

const char *pst_fedround_close_name(pst_fedround_close_t c)
{
    static const char *names[] = {"open", "all", "min_wait", "timeout"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

int pst_fedround_finish(pst_fedround_t *r)
{
    if (!r->open)
        return r->n_answered;
    r->open = false;
    for (int i = 0; i < r->n_asked; i++) {
        site_t *s = &r->sites[r->asked[i]];
        if (!s->answered)
            s->silent = true;
    }
    return r->n_answered;
}

bool pst_fedround_drop(pst_fedround_t *r, int index)
{
    if (!r->open || index < 0 || index >= r->n_sites)
        return false;
    site_t *s = &r->sites[index];
    if (!s->asked || s->answered || s->dropped)
        return false;
    s->dropped = true;
    r->n_dropped++;
    return true;
}

bool pst_fedround_waiting_for(const pst_fedround_t *r, int index)
{
    if (!r->open || index < 0 || index >= r->n_sites)
        return false;
    const site_t *s = &r->sites[index];
    return s->asked && !s->answered && !s->dropped;
}

int pst_fedround_n_answered(const pst_fedround_t *r)
{
    return r->n_answered;
}

bool pst_fedround_answered(const pst_fedround_t *r, int index)
{
    return index >= 0 && index < r->n_sites && r->sites[index].answered;
}

pst_rng_t *pst_fedround_rng(pst_fedround_t *r)
{
    return &r->rng;
}

int pst_fedround_set_round(pst_fedround_t *r, uint64_t round, pst_err_t *err)
{
    if (r->open)
        return pst_err_set(err, PST_ESTATE, "fed rounds: round %llu is open",
                           (unsigned long long)r->round);
    r->round = round;
    return PST_OK;
}
