/* Sweep scheduling: trials sampled, expanded from the space or proposed by TPE, run once or over
 * rungs of growing epochs, pruned by asynchronous successive halving (ASHA) or the median. */
#include "app/sweep/sweep_sched.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/numparse.h"
#include "common/rng.h"
#include "app/sweep/sweep_tpe.h"

typedef struct trial_rec {
    int rungs_done;   /* rungs with a recorded result */
    int running_rung; /* -1: idle */
    long epochs;      /* epochs trained so far */
    long run_epochs;  /* without rungs: the length of its one run */
    int verdict;      /* median pruner, on its last rung's result: 1 go on, -1 pruned, 0 none */
    double metric[PST_SWEEP_MAX_RUNGS];
} trial_rec_t;

/* A result at one rung, as a sort key: smaller is better, failures last, then by id. */
typedef struct ranked {
    double key;
    int id;
} ranked_t;

struct pst_sweep_sched {
    const pst_sweep_space_t *space;
    pst_sweep_trials_t trials; /* the trials so far (tpe: created as they are started) */
    int n_budget;              /* trials the sweep will have */
    long base_epochs;
    trial_rec_t *rec;     /* (n_budget) */
    ranked_t *ranked;     /* (n_budget) scratch */
    pst_sweep_obs_t *obs; /* (n_budget) tpe scratch */
    int n_rungs;
    long rung_epochs[PST_SWEEP_MAX_RUNGS];
    long epochs_spent;
};

static const char *const state_names[] = {"pending",  "running",   "stopped",
                                          "promoted", "completed", "failed"};

/* ---- scheduler ---- */

static void make_rungs(pst_sweep_sched_t *s, long base_epochs)
{
    const pst_sweep_space_t *sp = s->space;
    if (!sp->rungs) {
        s->rung_epochs[s->n_rungs++] = base_epochs;
        return;
    }
    for (long r = sp->min_epochs; r < sp->max_epochs && s->n_rungs < PST_SWEEP_MAX_RUNGS - 1;
         r *= sp->eta)
        s->rung_epochs[s->n_rungs++] = r;
    s->rung_epochs[s->n_rungs++] = sp->max_epochs;
}

/* Without rungs: a trial that searches train.epochs runs that long, the others base_epochs. */
static int set_run_epochs(pst_sweep_sched_t *s, int i, pst_err_t *err)
{
    const char *text = pst_sweep_trial_value(&s->trials.items[i], "train.epochs");
    long epochs = s->base_epochs;
    if (text != NULL && pst_parse_long(text, LONG_MIN, LONG_MAX, &epochs) != PST_OK)
        epochs = 0; /* not a whole number: refused below, as the config refuses it */
    s->rec[i].run_epochs = epochs;
    if (s->rec[i].run_epochs < 1)
        return pst_err_set(err, PST_EINVAL, "sweep: trial %d would train %ld epochs", i,
                           s->rec[i].run_epochs);
    return PST_OK;
}

/* Appends trial (taken on success) as trial s->trials.n. */
static int add_trial(pst_sweep_sched_t *s, pst_sweep_trial_t *trial, pst_err_t *err)
{
    int i = s->trials.n;
    s->trials.items[i] = *trial;
    s->trials.n++;
    int rc = s->space->rungs ? PST_OK : set_run_epochs(s, i, err);
    if (rc != PST_OK) {
        s->trials.n--;
        memset(&s->trials.items[i], 0, sizeof s->trials.items[i]);
    }
    return rc;
}

static int make_trials(pst_sweep_sched_t *s, pst_err_t *err)
{
    const pst_sweep_space_t *space = s->space;
    if (space->method == PST_SWEEP_TPE) {
        s->n_budget = (int)space->trials;
        s->trials.items = calloc((size_t)s->n_budget + 1, sizeof *s->trials.items);
        if (!s->trials.items)
            return pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
        return PST_OK;
    }
    int rc = pst_sweep_trials(space, &s->trials, err);
    s->n_budget = s->trials.n;
    return rc;
}

pst_sweep_sched_t *pst_sweep_sched_new(const pst_sweep_space_t *space, long base_epochs,
                                       pst_err_t *err)
{
    pst_sweep_sched_t *s = calloc(1, sizeof *s);
    if (!s) {
        pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
        return NULL;
    }
    s->space = space;
    s->base_epochs = base_epochs;
    make_rungs(s, base_epochs);
    int rc = make_trials(s, err);
    if (rc == PST_OK) {
        s->rec = calloc((size_t)s->n_budget + 1, sizeof *s->rec);
        s->ranked = calloc((size_t)s->n_budget + 1, sizeof *s->ranked);
        s->obs = calloc((size_t)s->n_budget + 1, sizeof *s->obs);
        rc = s->rec && s->ranked && s->obs ? PST_OK
                                           : pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
    }
    for (int i = 0; rc == PST_OK && i < s->n_budget; i++)
        s->rec[i].running_rung = -1;
    for (int i = 0; rc == PST_OK && !space->rungs && i < s->trials.n; i++)
        rc = set_run_epochs(s, i, err);
    if (rc != PST_OK)
        pst_sweep_sched_destroy(&s);
    return s;
}

void pst_sweep_sched_destroy(pst_sweep_sched_t **sched_p)
{
    pst_sweep_sched_t *s = *sched_p;
    if (!s)
        return;
    pst_sweep_trials_fini(&s->trials);
    free(s->rec);
    free(s->ranked);
    free(s->obs);
    free(s);
    *sched_p = NULL;
}

static int compare_ranked(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Sorts the results recorded at rung k, best first, into s->ranked. Returns their count. */
static int rank_rung(const pst_sweep_sched_t *s, int k)
{
    int n = 0;
    for (int i = 0; i < s->trials.n; i++) {
        if (s->rec[i].rungs_done <= k)
            continue;
        double m = s->rec[i].metric[k];
        s->ranked[n].key = !isfinite(m) ? INFINITY : s->space->maximize ? -m : m;
        s->ranked[n++].id = i;
    }
    qsort(s->ranked, (size_t)n, sizeof *s->ranked, compare_ranked);
    return n;
}

/* Whether a trial that finished rung k waits for promotion to rung k + 1. */
static bool awaits_promotion(const trial_rec_t *r, int k)
{
    return r->running_rung < 0 && r->rungs_done == k + 1 && isfinite(r->metric[k]);
}

static void start_job(pst_sweep_sched_t *s, int trial, int rung, pst_sweep_job_t *job)
{
    job->trial = trial;
    job->rung = rung;
    job->epochs = s->space->rungs ? s->rung_epochs[rung] : s->rec[trial].run_epochs;
    job->from_epochs = rung > 0 ? s->rung_epochs[rung - 1] : 0;
    s->rec[trial].running_rung = rung;
}

/* ASHA: the best trial in the top floor(n_k / eta) of rung k that is not promoted yet; median:
 * the lowest trial the pruner let go on from rung k; or -1. */
static int promotable(const pst_sweep_sched_t *s, int k)
{
    if (s->space->pruner == PST_SWEEP_PRUNE_MEDIAN) {
        for (int i = 0; i < s->trials.n; i++)
            if (s->rec[i].verdict > 0 && awaits_promotion(&s->rec[i], k))
                return i;
        return -1;
    }
    int n = rank_rung(s, k);
    int top = n / (int)s->space->eta;
    for (int i = 0; i < top; i++)
        if (awaits_promotion(&s->rec[s->ranked[i].id], k))
            return s->ranked[i].id;
    return -1;
}

/* The rung TPE learns from: the highest one with enough finite results to fit a model (one
 * more than the parameters, as BOHB asks), else the first. Fills s->obs; returns their count. */
static int gather_observations(pst_sweep_sched_t *s)
{
    int want = s->space->n_params + 1;
    for (int k = s->n_rungs - 1; k >= 0; k--) {
        int n = 0;
        for (int i = 0; i < s->trials.n; i++) {
            const trial_rec_t *r = &s->rec[i];
            if (r->rungs_done > k && isfinite(r->metric[k]))
                s->obs[n++] = (pst_sweep_obs_t){&s->trials.items[i],
                                                s->space->maximize ? -r->metric[k] : r->metric[k]};
        }
        if (n >= want || k == 0)
            return n;
    }
    return 0;
}

/* TPE: creates the next trial from the results so far. */
static int propose_trial(pst_sweep_sched_t *s)
{
    pst_sweep_trial_t trial;
    int n_obs = gather_observations(s);
    int rc = pst_sweep_tpe_propose(s->space, s->trials.n, s->obs, n_obs, &trial);
    if (rc == PST_OK && (rc = add_trial(s, &trial, NULL)) != PST_OK)
        pst_sweep_trial_fini(&trial);
    return rc;
}

/* Median pruner: a trial goes on from rung k when its result there is at least as good as the
 * median of the results recorded at rung k (its own included), or while fewer than
 * prune_startup trials have reported there. */
static int median_verdict(const pst_sweep_sched_t *s, int trial, int k)
{
    const trial_rec_t *r = &s->rec[trial];
    if (!isfinite(r->metric[k]))
        return -1;
    if (k + 1 >= s->n_rungs)
        return 0;
    int n = rank_rung(s, k);
    if (n < s->space->prune_startup)
        return 1;
    double lo = s->ranked[(n - 1) / 2].key, hi = s->ranked[n / 2].key;
    double median = 0.5 * (lo + hi);
    double key = s->space->maximize ? -r->metric[k] : r->metric[k];
    return key <= median ? 1 : -1;
}

pst_sweep_action_t pst_sweep_next(pst_sweep_sched_t *s, pst_sweep_job_t *job)
{
    memset(job, 0, sizeof *job);
    job->trial = -1;
    for (int k = s->n_rungs - 2; k >= 0; k--) {
        int id = promotable(s, k);
        if (id >= 0) {
            start_job(s, id, k + 1, job);
            return PST_SWEEP_RUN;
        }
    }
    bool running = false;
    for (int i = 0; i < s->trials.n; i++) {
        if (s->rec[i].rungs_done == 0 && s->rec[i].running_rung < 0) {
            start_job(s, i, 0, job);
            return PST_SWEEP_RUN;
        }
        running |= s->rec[i].running_rung >= 0;
    }
    if (s->trials.n < s->n_budget && propose_trial(s) == PST_OK) {
        start_job(s, s->trials.n - 1, 0, job);
        return PST_SWEEP_RUN;
    }
    return running ? PST_SWEEP_WAIT : PST_SWEEP_DONE;
}

int pst_sweep_report(pst_sweep_sched_t *s, int trial, int rung, double metric, long epochs_spent,
                     pst_err_t *err)
{
    if (trial < 0 || trial >= s->trials.n || rung < 0 || rung >= s->n_rungs)
        return pst_err_set(err, PST_ERANGE, "sweep: no trial %d rung %d", trial, rung);
    trial_rec_t *r = &s->rec[trial];
    if (r->running_rung != rung)
        return pst_err_set(err, PST_ESTATE, "sweep: trial %d has no job running at rung %d", trial,
                           rung);
    if (epochs_spent < 0)
        return pst_err_set(err, PST_EINVAL, "sweep: trial %d: negative epochs", trial);
    r->metric[rung] = isfinite(metric) ? metric : NAN;
    r->rungs_done = rung + 1;
    r->running_rung = -1;
    if (s->space->pruner == PST_SWEEP_PRUNE_MEDIAN)
        r->verdict = median_verdict(s, trial, rung);
    r->epochs += epochs_spent;
    s->epochs_spent += epochs_spent;
    return PST_OK;
}

int pst_sweep_best(const pst_sweep_sched_t *s, int *trial, double *metric)
{
    for (int k = s->n_rungs - 1; k >= 0; k--) {
        int n = rank_rung(s, k);
        if (n > 0 && isfinite(s->ranked[0].key)) {
            *trial = s->ranked[0].id;
            *metric = s->rec[*trial].metric[k];
            return PST_OK;
        }
    }
    return PST_ENOTFOUND;
}

int pst_sweep_job_apply(const pst_sweep_sched_t *s, const pst_sweep_job_t *job, pst_config_t *cfg,
                        pst_err_t *err)
{
    if (job->trial < 0 || job->trial >= s->trials.n)
        return pst_err_set(err, PST_ERANGE, "sweep: no trial %d", job->trial);
    int rc = pst_sweep_trial_apply(&s->trials.items[job->trial], cfg, err);
    char assignment[64];
    snprintf(assignment, sizeof assignment, "train.epochs=%ld", job->epochs);
    return rc == PST_OK ? pst_config_set(cfg, assignment, err) : rc;
}

const pst_sweep_space_t *pst_sweep_sched_space(const pst_sweep_sched_t *s)
{
    return s->space;
}

int pst_sweep_n_trials(const pst_sweep_sched_t *s)
{
    return s->n_budget;
}

int pst_sweep_n_created(const pst_sweep_sched_t *s)
{
    return s->trials.n;
}

const pst_sweep_trial_t *pst_sweep_get_trial(const pst_sweep_sched_t *s, int trial)
{
    return trial >= 0 && trial < s->trials.n ? &s->trials.items[trial] : NULL;
}

int pst_sweep_n_rungs(const pst_sweep_sched_t *s)
{
    return s->n_rungs;
}

long pst_sweep_rung_epochs(const pst_sweep_sched_t *s, int rung)
{
    return rung >= 0 && rung < s->n_rungs ? s->rung_epochs[rung] : 0;
}

pst_sweep_state_t pst_sweep_trial_state(const pst_sweep_sched_t *s, int trial)
{
    const trial_rec_t *r = &s->rec[trial];
    if (r->running_rung >= 0)
        return PST_SWEEP_RUNNING;
    if (r->rungs_done == 0)
        return PST_SWEEP_PENDING;
    int k = r->rungs_done - 1;
    if (!isfinite(r->metric[k]))
        return PST_SWEEP_FAILED;
    if (r->rungs_done == s->n_rungs)
        return PST_SWEEP_COMPLETED;
    if (s->space->pruner == PST_SWEEP_PRUNE_MEDIAN)
        return r->verdict > 0 ? PST_SWEEP_PROMOTED : PST_SWEEP_STOPPED;
    int n = rank_rung(s, k), top = n / (int)s->space->eta;
    for (int i = 0; i < top; i++)
        if (s->ranked[i].id == trial)
            return PST_SWEEP_PROMOTED;
    return PST_SWEEP_STOPPED;
}

const char *pst_sweep_state_name(pst_sweep_state_t state)
{
    return state_names[state];
}

int pst_sweep_trial_rungs_done(const pst_sweep_sched_t *s, int trial)
{
    return s->rec[trial].rungs_done;
}

double pst_sweep_trial_metric(const pst_sweep_sched_t *s, int trial, int rung)
{
    const trial_rec_t *r = &s->rec[trial];
    return rung >= 0 && rung < r->rungs_done ? r->metric[rung] : NAN;
}

long pst_sweep_trial_epochs(const pst_sweep_sched_t *s, int trial)
{
    return s->rec[trial].epochs;
}

long pst_sweep_epochs_spent(const pst_sweep_sched_t *s)
{
    return s->epochs_spent;
}

long pst_sweep_full_epochs(const pst_sweep_sched_t *s)
{
    if (s->space->rungs)
        return (long)s->n_budget * s->rung_epochs[s->n_rungs - 1];
    long total = 0;
    for (int i = 0; i < s->trials.n; i++)
        total += s->rec[i].run_epochs;
    return total;
}

int pst_sweep_restore(pst_sweep_sched_t *s, int trial, int rungs_done, const double *metrics,
                      long epochs_spent, pst_err_t *err)
{
    if (trial < 0 || trial >= s->trials.n)
        return pst_err_set(err, PST_ERANGE, "sweep: no trial %d", trial);
    trial_rec_t *r = &s->rec[trial];
    if (r->rungs_done != 0 || r->running_rung >= 0 || r->epochs != 0)
        return pst_err_set(err, PST_ESTATE, "sweep: trial %d is already under way", trial);
    if (rungs_done < 0 || rungs_done > s->n_rungs || epochs_spent < 0)
        return pst_err_set(err, PST_ERANGE, "sweep: trial %d: %d rungs, %ld epochs", trial,
                           rungs_done, epochs_spent);
    for (int k = 0; k + 1 < rungs_done; k++)
        if (!isfinite(metrics[k]))
            return pst_err_set(err, PST_EINVAL,
                               "sweep: trial %d failed at rung %d, below its "
                               "last",
                               trial, k);
    for (int k = 0; k < rungs_done; k++) {
        r->metric[k] = isfinite(metrics[k]) ? metrics[k] : NAN;
        r->rungs_done = k + 1; /* the median's verdict as it was, from the rungs before */
        if (s->space->pruner == PST_SWEEP_PRUNE_MEDIAN)
            r->verdict = median_verdict(s, trial, k);
    }
    r->rungs_done = rungs_done;
    r->epochs = epochs_spent;
    s->epochs_spent += epochs_spent;
    return PST_OK;
}

int pst_sweep_adopt(pst_sweep_sched_t *s, int trial, const char *const *values, pst_err_t *err)
{
    if (s->space->method != PST_SWEEP_TPE || trial < s->trials.n)
        return PST_OK;
    if (trial != s->trials.n || trial >= s->n_budget)
        return pst_err_set(err, PST_ERANGE, "sweep: trial %d comes after %d trials of %d", trial,
                           s->trials.n, s->n_budget);
    pst_sweep_trial_t t;
    if (pst_sweep_trial_from_values(s->space, trial, values, &t) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
    int rc = add_trial(s, &t, err);
    if (rc != PST_OK)
        pst_sweep_trial_fini(&t);
    return rc;
}

typedef struct ranked_trial {
    int rungs, id;
    double key;
} ranked_trial_t;

static int compare_trials(const void *a, const void *b)
{
    const ranked_trial_t *x = a, *y = b;
    if (x->rungs != y->rungs)
        return y->rungs - x->rungs;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int pst_sweep_ranking(const pst_sweep_sched_t *s, int *ids, int cap)
{
    ranked_trial_t *all = calloc((size_t)s->trials.n + 1, sizeof *all);
    if (!all)
        return 0;
    int n = 0;
    for (int i = 0; i < s->trials.n; i++) {
        const trial_rec_t *r = &s->rec[i];
        double m = r->rungs_done > 0 ? r->metric[r->rungs_done - 1] : NAN;
        if (isfinite(m))
            all[n++] = (ranked_trial_t){r->rungs_done, i, s->space->maximize ? -m : m};
    }
    qsort(all, (size_t)n, sizeof *all, compare_trials);
    int k = n < cap ? n : cap;
    for (int i = 0; i < k; i++)
        ids[i] = all[i].id;
    free(all);
    return k;
}
