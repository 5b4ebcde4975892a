/* Sweep trials: random samples of the space, every grid point, and applying a trial. */
#include "app/sweep/sweep_sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

int pst_sweep_trial_from_values(const pst_sweep_space_t *sp, int id, const char *const *values,
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
        rc = pst_sweep_trial_from_values(space, id, values, out);
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
    int rc = pst_sweep_trial_from_values(w->space, w->out->n, w->values, &w->out->items[w->out->n]);
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
