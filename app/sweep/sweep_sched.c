/* Sweep scheduling: trials sampled or expanded from the space, then grid/random runs or
 * asynchronous successive halving (ASHA) over rungs of growing epochs. */
#include "app/sweep/sweep_sched.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/numparse.h"
#include "common/rng.h"

typedef struct trial_rec {
    int rungs_done;   /* rungs with a recorded result */
    int running_rung; /* -1: idle */
    long epochs;      /* epochs trained so far */
    long run_epochs;  /* grid, random: the length of its one run */
    double metric[PST_SWEEP_MAX_RUNGS];
} trial_rec_t;

/* A result at one rung, as a sort key: smaller is better, failures last, then by id. */
typedef struct ranked {
    double key;
    int id;
} ranked_t;

struct pst_sweep_sched {
    const pst_sweep_space_t *space;
    pst_sweep_trials_t trials;
    trial_rec_t *rec; /* (trials.n) */
    ranked_t *ranked; /* (trials.n) scratch */
    int n_rungs;
    long rung_epochs[PST_SWEEP_MAX_RUNGS];
    long epochs_spent;
};

static const char *const state_names[] = {"pending",  "running",   "stopped",
                                          "promoted", "completed", "failed"};

/* ---- trials ---- */

static int trial_from_values(const pst_sweep_space_t *sp, int id, const char *const *values,
                             pst_sweep_trial_t *out)
{
    memset(out, 0, sizeof *out);
    out->id = id;
    if (!(out->overrides = calloc((size_t)sp->n_params + 1, sizeof *out->overrides)))
        return PST_ENOMEM;
    for (int p = 0; p < sp->n_params; p++) {
        if (!values[p])
            continue;
        pst_sweep_override_t *o = &out->overrides[out->n_overrides++];
        o->key = strdup(sp->params[p].key);
        o->value = strdup(values[p]);
        if (!o->key || !o->value) {
            pst_sweep_trial_fini(out);
            return PST_ENOMEM;
        }
    }
    return PST_OK;
}

/* One draw for a parameter into text (choices point at their own text). */
static const char *draw(const pst_sweep_param_t *param, pst_rng_t *rng,
                        char text[PST_SWEEP_VALUE_MAX])
{
    double u = pst_rng_uniform(rng), v;
    switch (param->dist) {
    case PST_SWEEP_UNIFORM:
        v = param->lo + (param->hi - param->lo) * u;
        break;
    case PST_SWEEP_LOG_UNIFORM:
        v = exp(log(param->lo) + (log(param->hi) - log(param->lo)) * u);
        v = fmin(fmax(v, param->lo), param->hi);
        break;
    case PST_SWEEP_INT:
        v = param->lo + (double)pst_rng_below(rng, (uint64_t)(param->hi - param->lo) + 1);
        break;
    default:
        return param->values[pst_rng_below(rng, (uint64_t)param->n_values)];
    }
    pst_sweep_param_format(param, v, text);
    return text;
}

int pst_sweep_sample(const pst_sweep_space_t *space, int id, pst_sweep_trial_t *out)
{
    int n = space->n_params;
    const char **values = calloc((size_t)n + 1, sizeof *values);
    char(*texts)[PST_SWEEP_VALUE_MAX] = calloc((size_t)n + 1, sizeof *texts);
    int rc = PST_ENOMEM;
    if (values && texts) {
        uint64_t trial_seed = pst_rng_derive(space->seed, (uint64_t)id);
        for (int i = 0; i < n; i++) {
            int p = space->order[i];
            pst_rng_t rng;
            pst_rng_init(&rng, pst_rng_derive(trial_seed, (uint64_t)p));
            const char *v = draw(&space->params[p], &rng, texts[p]);
            values[p] = pst_sweep_space_active(space, p, values) ? v : NULL;
        }
        rc = trial_from_values(space, id, values, out);
    }
    free(values);
    free(texts);
    return rc;
}

typedef struct grid_walk {
    const pst_sweep_space_t *space;
    const char **values;     /* (n_params) current point */
    pst_sweep_trials_t *out; /* NULL: count only */
    int cap;
    long count;
} grid_walk_t;

static int grid_emit(grid_walk_t *w)
{
    if (++w->count > PST_SWEEP_MAX_GRID)
        return PST_ERANGE;
    if (!w->out)
        return PST_OK;
    if (w->out->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        pst_sweep_trial_t *items = realloc(w->out->items, (size_t)cap * sizeof *items);
        if (!items)
            return PST_ENOMEM;
        w->out->items = items;
        w->cap = cap;
    }
    int rc = trial_from_values(w->space, w->out->n, w->values, &w->out->items[w->out->n]);
    w->out->n += rc == PST_OK;
    return rc;
}

/* Expands parameters in condition order from position pos; an unset parameter is one branch. */
static int grid_walk(grid_walk_t *w, int pos)
{
    const pst_sweep_space_t *sp = w->space;
    if (pos == sp->n_params)
        return grid_emit(w);
    int p = sp->order[pos];
    if (!pst_sweep_space_active(sp, p, w->values)) {
        w->values[p] = NULL;
        return grid_walk(w, pos + 1);
    }
    for (int v = 0; v < sp->params[p].n_values; v++) {
        w->values[p] = sp->params[p].values[v];
        int rc = grid_walk(w, pos + 1);
        if (rc != PST_OK)
            return rc;
    }
    w->values[p] = NULL;
    return PST_OK;
}

static int run_grid(const pst_sweep_space_t *space, pst_sweep_trials_t *out, long *count,
                    pst_err_t *err)
{
    for (int p = 0; p < space->n_params; p++) {
        const pst_sweep_param_t *param = &space->params[p];
        if (param->n_values == 0)
            return pst_err_set(err, PST_EINVAL, "%s:%zu: %s: a grid needs grid: N points for a %s",
                               space->origin, param->line, param->key,
                               pst_sweep_dist_name(param->dist));
    }
    grid_walk_t w = {.space = space, .out = out};
    if (!(w.values = calloc((size_t)space->n_params + 1, sizeof *w.values)))
        return pst_err_set(err, PST_ENOMEM, "grid: out of memory");
    int rc = grid_walk(&w, 0);
    free(w.values);
    *count = w.count;
    if (rc == PST_ERANGE)
        return pst_err_set(err, rc, "%s: the grid has more than %d points", space->origin,
                           PST_SWEEP_MAX_GRID);
    return rc == PST_ENOMEM ? pst_err_set(err, rc, "grid: out of memory") : rc;
}

int pst_sweep_grid(const pst_sweep_space_t *space, pst_sweep_trials_t *out, pst_err_t *err)
{
    long count;
    memset(out, 0, sizeof *out);
    int rc = run_grid(space, out, &count, err);
    if (rc != PST_OK)
        pst_sweep_trials_fini(out);
    return rc;
}

int pst_sweep_grid_size(const pst_sweep_space_t *space, long *n, pst_err_t *err)
{
    return run_grid(space, NULL, n, err);
}

int pst_sweep_trials(const pst_sweep_space_t *space, pst_sweep_trials_t *out, pst_err_t *err)
{
    if (space->method == PST_SWEEP_GRID)
        return pst_sweep_grid(space, out, err);
    memset(out, 0, sizeof *out);
    if (!(out->items = calloc((size_t)space->trials, sizeof *out->items)))
        return pst_err_set(err, PST_ENOMEM, "trials: out of memory");
    for (; out->n < space->trials; out->n++) {
        if (pst_sweep_sample(space, out->n, &out->items[out->n]) != PST_OK) {
            pst_sweep_trials_fini(out);
            return pst_err_set(err, PST_ENOMEM, "trials: out of memory");
        }
    }
    return PST_OK;
}

void pst_sweep_trial_fini(pst_sweep_trial_t *trial)
{
    for (int i = 0; i < trial->n_overrides; i++) {
        free(trial->overrides[i].key);
        free(trial->overrides[i].value);
    }
    free(trial->overrides);
    trial->overrides = NULL;
    trial->n_overrides = 0;
}

void pst_sweep_trials_fini(pst_sweep_trials_t *trials)
{
    for (int i = 0; i < trials->n; i++)
        pst_sweep_trial_fini(&trials->items[i]);
    free(trials->items);
    trials->items = NULL;
    trials->n = 0;
}

const char *pst_sweep_trial_value(const pst_sweep_trial_t *trial, const char *key)
{
    for (int i = 0; i < trial->n_overrides; i++)
        if (strcmp(trial->overrides[i].key, key) == 0)
            return trial->overrides[i].value;
    return NULL;
}

int pst_sweep_trial_apply(const pst_sweep_trial_t *trial, pst_config_t *cfg, pst_err_t *err)
{
    for (int i = 0; i < trial->n_overrides; i++) {
        const pst_sweep_override_t *o = &trial->overrides[i];
        size_t len = strlen(o->key) + strlen(o->value) + 2;
        char *assignment = malloc(len);
        if (!assignment)
            return pst_err_set(err, PST_ENOMEM, "trial %d: out of memory", trial->id);
        snprintf(assignment, len, "%s=%s", o->key, o->value);
        int rc = pst_config_set(cfg, assignment, err);
        free(assignment);
        if (rc != PST_OK)
            return pst_err_prefix(err, rc, "trial %d: ", trial->id);
    }
    return PST_OK;
}

/* ---- scheduler ---- */

static void make_rungs(pst_sweep_sched_t *s, long base_epochs)
{
    const pst_sweep_space_t *sp = s->space;
    if (sp->method != PST_SWEEP_HYPERBAND) {
        s->rung_epochs[s->n_rungs++] = base_epochs;
        return;
    }
    for (long r = sp->min_epochs; r < sp->max_epochs && s->n_rungs < PST_SWEEP_MAX_RUNGS - 1;
         r *= sp->eta)
        s->rung_epochs[s->n_rungs++] = r;
    s->rung_epochs[s->n_rungs++] = sp->max_epochs;
}

/* Grid, random: a trial that searches train.epochs runs that long, the others base_epochs. */
static int set_run_epochs(pst_sweep_sched_t *s, long base_epochs, pst_err_t *err)
{
    for (int i = 0; i < s->trials.n; i++) {
        const char *text = pst_sweep_trial_value(&s->trials.items[i], "train.epochs");
        long epochs = base_epochs;
        if (text != NULL && pst_parse_long(text, LONG_MIN, LONG_MAX, &epochs) != PST_OK)
            epochs = 0; /* not a whole number: refused below, as the config refuses it */
        s->rec[i].run_epochs = epochs;
        if (s->rec[i].run_epochs < 1)
            return pst_err_set(err, PST_EINVAL, "sweep: trial %d would train %ld epochs", i,
                               s->rec[i].run_epochs);
    }
    return PST_OK;
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
    make_rungs(s, base_epochs);
    int rc = pst_sweep_trials(space, &s->trials, err);
    if (rc == PST_OK) {
        s->rec = calloc((size_t)s->trials.n + 1, sizeof *s->rec);
        s->ranked = calloc((size_t)s->trials.n + 1, sizeof *s->ranked);
        rc = s->rec && s->ranked ? PST_OK : pst_err_set(err, PST_ENOMEM, "sweep: out of memory");
    }
    for (int i = 0; rc == PST_OK && i < s->trials.n; i++)
        s->rec[i].running_rung = -1;
    if (rc == PST_OK && space->method != PST_SWEEP_HYPERBAND)
        rc = set_run_epochs(s, base_epochs, err);
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
    bool hyperband = s->space->method == PST_SWEEP_HYPERBAND;
    job->trial = trial;
    job->rung = rung;
    job->epochs = hyperband ? s->rung_epochs[rung] : s->rec[trial].run_epochs;
    job->from_epochs = rung > 0 ? s->rung_epochs[rung - 1] : 0;
    s->rec[trial].running_rung = rung;
}

/* The best trial in the top floor(n_k / eta) of rung k that is not promoted yet, or -1. */
static int promotable(const pst_sweep_sched_t *s, int k)
{
    int n = rank_rung(s, k);
    int top = n / (int)s->space->eta;
    for (int i = 0; i < top; i++)
        if (awaits_promotion(&s->rec[s->ranked[i].id], k))
            return s->ranked[i].id;
    return -1;
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
    if (s->space->method == PST_SWEEP_HYPERBAND)
        return (long)s->trials.n * s->rung_epochs[s->n_rungs - 1];
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
    for (int k = 0; k < rungs_done; k++)
        r->metric[k] = isfinite(metrics[k]) ? metrics[k] : NAN;
    r->rungs_done = rungs_done;
    r->epochs = epochs_spent;
    s->epochs_spent += epochs_spent;
    return PST_OK;
}
