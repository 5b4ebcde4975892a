/* Sweep file checks: values tried on the config, grids, conditions, dependency order, methods. */
#include "app/sweep/sweep_space_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const pst_config_key_t *config_key(const char *name)
{
    for (const pst_config_key_t *k = pst_config_keys(); k->key; k++)
        if (strcmp(k->key, name) == 0)
            return k;
    return NULL;
}

/* Tries value on the scratch configuration, so a bad value fails at load with its line. */
static int try_value(pst_sweep_parse_ctx_t *ctx, const pst_sweep_param_t *param, const char *value)
{
    char assignment[1024];
    pst_err_t inner = {0};
    snprintf(assignment, sizeof assignment, "%s=%s", param->key, value);
    if (pst_config_set(&ctx->scratch, assignment, &inner) == PST_OK)
        return PST_OK;
    return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: value '%s' is refused (%s)",
                       ctx->sp->origin, param->line, param->key, value, inner.msg);
}

/* The `grid` points of a range: evenly spaced (log-spaced for log_uniform); ints deduplicated. */
static int make_grid_values(pst_sweep_param_t *param)
{
    if (!(param->values = calloc((size_t)param->grid, sizeof *param->values)))
        return PST_ENOMEM;
    bool log_space = param->dist == PST_SWEEP_LOG_UNIFORM;
    double lo = log_space ? log(param->lo) : param->lo;
    double hi = log_space ? log(param->hi) : param->hi;
    for (int i = 0; i < param->grid; i++) {
        double t = (double)i / (param->grid - 1);
        double v = i == 0 ? param->lo : i == param->grid - 1 ? param->hi : lo + (hi - lo) * t;
        if (log_space && i > 0 && i < param->grid - 1)
            v = exp(v);
        if (param->dist == PST_SWEEP_INT)
            v = floor(v + 0.5);
        char buf[PST_SWEEP_VALUE_MAX];
        pst_sweep_param_format(param, v, buf);
        if (param->n_values > 0 && strcmp(param->values[param->n_values - 1], buf) == 0)
            continue;
        if (!(param->values[param->n_values] = strdup(buf)))
            return PST_ENOMEM;
        param->n_values++;
    }
    return PST_OK;
}

static int check_bounds(pst_sweep_parse_ctx_t *ctx, const pst_sweep_param_t *param)
{
    const char *origin = ctx->sp->origin, *name = pst_sweep_dist_name(param->dist);
    if (param->dist == PST_SWEEP_LOG_UNIFORM && !(param->lo > 0))
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: log_uniform needs bounds above 0",
                           origin, param->line, param->key);
    if (param->dist == PST_SWEEP_INT &&
        (param->lo != floor(param->lo) || param->hi != floor(param->hi) || fabs(param->lo) > 1e15 ||
         fabs(param->hi) > 1e15))
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: int needs integer bounds", origin,
                           param->line, param->key);
    bool ordered = param->dist == PST_SWEEP_INT ? param->lo <= param->hi : param->lo < param->hi;
    if (!ordered)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: %s needs low %s high", origin,
                           param->line, param->key, name,
                           param->dist == PST_SWEEP_INT ? "<=" : "<");
    return PST_OK;
}

/* Checks a parameter against the configuration key it sets, and builds its grid values. */
int pst_sweep_check_param(pst_sweep_parse_ctx_t *ctx, pst_sweep_param_t *param)
{
    const pst_config_key_t *k = config_key(param->key);
    const char *origin = ctx->sp->origin;
    if (!k)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: space: unknown configuration key '%s'",
                           origin, param->line, param->key);
    if (param->dist == PST_SWEEP_CHOICE) {
        if (param->grid)
            return pst_err_set(ctx->err, PST_EINVAL,
                               "%s:%zu: %s: grid applies to ranges; a choice expands fully", origin,
                               param->line, param->key);
        for (int i = 0; i < param->n_values; i++) {
            int rc = try_value(ctx, param, param->values[i]);
            if (rc != PST_OK)
                return rc;
        }
        return PST_OK;
    }
    bool numeric = k->type == PST_CFG_FLOAT || k->type == PST_CFG_INT;
    if (!numeric || (k->type == PST_CFG_INT && param->dist != PST_SWEEP_INT))
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: %s does not suit this key (%s)",
                           origin, param->line, param->key, pst_sweep_dist_name(param->dist),
                           numeric ? "an integer key: use int or choice" : "use choice");
    int rc = check_bounds(ctx, param);
    char text[PST_SWEEP_VALUE_MAX];
    for (int end = 0; end < 2 && rc == PST_OK; end++) {
        pst_sweep_param_format(param, end ? param->hi : param->lo, text);
        rc = try_value(ctx, param, text);
    }
    if (rc == PST_OK && param->grid)
        rc = make_grid_values(param);
    return rc;
}
/* Links every condition to the parameter it names and checks the values it expects. */
static int resolve_conds(pst_sweep_parse_ctx_t *ctx)
{
    pst_sweep_space_t *sp = ctx->sp;
    for (int i = 0; i < sp->n_params; i++) {
        pst_sweep_param_t *param = &sp->params[i];
        for (int c = 0; c < param->n_conds; c++) {
            pst_sweep_cond_t *cond = &param->conds[c];
            cond->param = pst_sweep_space_find(sp, cond->key);
            if (cond->param < 0)
                return pst_err_set(ctx->err, PST_EINVAL,
                                   "%s:%zu: %s: when names '%s', which is not a parameter of "
                                   "the space",
                                   sp->origin, param->line, param->key, cond->key);
            const pst_sweep_param_t *target = &sp->params[cond->param];
            for (int v = 0; v < cond->n_values && target->dist == PST_SWEEP_CHOICE; v++) {
                bool known = false;
                for (int j = 0; j < target->n_values; j++)
                    known |= pst_sweep_same_value(cond->values[v], target->values[j]);
                if (!known)
                    return pst_err_set(ctx->err, PST_EINVAL,
                                       "%s:%zu: %s: when %s is '%s', which is not one of its "
                                       "choices",
                                       sp->origin, param->line, param->key, cond->key,
                                       cond->values[v]);
            }
        }
    }
    return PST_OK;
}

/* Depth-first topological sort; a parameter seen again on the current path closes a cycle. */
static int visit(pst_sweep_parse_ctx_t *ctx, int p, int *mark, int *path, int depth, int *n_sorted)
{
    pst_sweep_space_t *sp = ctx->sp;
    if (mark[p] == 2)
        return PST_OK;
    if (mark[p] == 1) {
        char chain[400] = "";
        int start = depth;
        while (start > 0 && path[start - 1] != p)
            start--;
        /* p is on the path (mark 1), so start >= 1 here; the bound keeps that explicit. */
        for (int i = start > 0 ? start - 1 : 0; i < depth; i++) {
            size_t used = strlen(chain);
            snprintf(chain + used, sizeof chain - used, "%s -> ", sp->params[path[i]].key);
        }
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: when conditions form a cycle: %s%s",
                           sp->origin, sp->params[p].line, sp->params[p].key, chain,
                           sp->params[p].key);
    }
    mark[p] = 1;
    path[depth] = p;
    for (int c = 0; c < sp->params[p].n_conds; c++) {
        int rc = visit(ctx, sp->params[p].conds[c].param, mark, path, depth + 1, n_sorted);
        if (rc != PST_OK)
            return rc;
    }
    mark[p] = 2;
    sp->order[(*n_sorted)++] = p;
    return PST_OK;
}

static int sort_params(pst_sweep_parse_ctx_t *ctx)
{
    pst_sweep_space_t *sp = ctx->sp;
    int n = sp->n_params, n_sorted = 0, rc = PST_OK;
    int *mark = calloc((size_t)n + 1, sizeof *mark), *path = calloc((size_t)n + 1, sizeof *path);
    sp->order = calloc((size_t)n + 1, sizeof *sp->order);
    if (!mark || !path || !sp->order)
        rc = PST_ENOMEM;
    for (int p = 0; p < n && rc == PST_OK; p++)
        rc = visit(ctx, p, mark, path, 0, &n_sorted);
    free(mark);
    free(path);
    return rc;
}

/* Which way the metric improves: `mode`, or the metric's name. */
static int infer_mode(pst_sweep_parse_ctx_t *ctx)
{
    static const char *const up[] = {"accuracy",    "precision", "recall", "f1",
                                     "specificity", "roc_auc",   "auc",    "r2"};
    static const char *const down[] = {"loss", "mse", "mae", "rmse", "error"};
    if (ctx->has_mode)
        return PST_OK;
    const char *dot = strrchr(ctx->sp->metric, '.');
    const char *name = dot ? dot + 1 : ctx->sp->metric;
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof down / sizeof down[0]; i++) {
        size_t n = strlen(down[i]);
        if (len >= n && strcmp(name + len - n, down[i]) == 0)
            return ctx->sp->maximize = false, PST_OK;
    }
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++)
        if (strncmp(name, up[i], strlen(up[i])) == 0)
            return ctx->sp->maximize = true, PST_OK;
    return pst_err_set(ctx->err, PST_EINVAL,
                       "%s: metric '%s': add mode: max or mode: min (cannot tell from the name)",
                       ctx->sp->origin, ctx->sp->metric);
}

static int check_grid_ranges(pst_sweep_parse_ctx_t *ctx)
{
    for (int i = 0; i < ctx->sp->n_params; i++) {
        const pst_sweep_param_t *param = &ctx->sp->params[i];
        if (param->dist != PST_SWEEP_CHOICE && !param->grid)
            return pst_err_set(
                ctx->err, PST_EINVAL, "%s:%zu: %s: method grid needs grid: N points for a %s range",
                ctx->sp->origin, param->line, param->key, pst_sweep_dist_name(param->dist));
    }
    return PST_OK;
}

static int check_rungs(pst_sweep_parse_ctx_t *ctx)
{
    pst_sweep_space_t *sp = ctx->sp;
    if (!ctx->has_max_epochs)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: the rungs need max_epochs: N", sp->origin,
                           ctx->hyperband_line);
    if (sp->min_epochs > sp->max_epochs)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: hyperband: min_epochs %ld is above max_epochs %ld", sp->origin,
                           ctx->hyperband_line, sp->min_epochs, sp->max_epochs);
    int epochs = pst_sweep_space_find(sp, "train.epochs");
    if (epochs >= 0)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: train.epochs: the rungs set the epochs of every job; "
                           "remove it from the space",
                           sp->origin, sp->params[epochs].line);
    return PST_OK;
}

static int check_method(pst_sweep_parse_ctx_t *ctx)
{
    pst_sweep_space_t *sp = ctx->sp;
    const char *m = pst_sweep_method_name(sp->method);
    if (sp->method == PST_SWEEP_GRID && ctx->has_trials)
        return pst_err_set(ctx->err, PST_EINVAL, "%s: trials: grid runs every point; remove it",
                           sp->origin);
    if (sp->method != PST_SWEEP_GRID && !ctx->has_trials)
        return pst_err_set(ctx->err, PST_EINVAL, "%s: method %s needs trials: N", sp->origin, m);
    if (sp->method != PST_SWEEP_TPE && ctx->has_tpe)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: tpe: set, but method is %s", sp->origin,
                           ctx->tpe_line, m);
    if (sp->method == PST_SWEEP_HYPERBAND && !ctx->has_hyperband)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s: method hyperband needs "
                           "hyperband: {max_epochs: N}",
                           sp->origin);
    if (ctx->has_pruner && !ctx->has_hyperband)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: pruner: prunes at rungs; add rungs: {min_epochs: A, "
                           "max_epochs: B, eta: C}",
                           sp->origin, ctx->pruner_line);
    int rc = sp->method == PST_SWEEP_GRID ? check_grid_ranges(ctx) : PST_OK;
    return rc == PST_OK && ctx->has_hyperband ? check_rungs(ctx) : rc;
}

int pst_sweep_check_space(pst_sweep_parse_ctx_t *ctx)
{
    pst_sweep_space_t *sp = ctx->sp;
    if (!sp->base)
        return pst_err_set(ctx->err, PST_EINVAL, "%s: base: the training config is missing",
                           sp->origin);
    if (!ctx->has_method)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s: method: missing (grid, random, hyperband, tpe)", sp->origin);
    if (!ctx->has_metric)
        return pst_err_set(ctx->err, PST_EINVAL, "%s: metric: missing (e.g. val.accuracy)",
                           sp->origin);
    if (sp->n_params == 0)
        return pst_err_set(ctx->err, PST_EINVAL, "%s: space: no parameters", sp->origin);
    int rc = infer_mode(ctx);
    if (rc == PST_OK)
        rc = check_method(ctx);
    if (rc == PST_OK)
        rc = resolve_conds(ctx);
    return rc == PST_OK ? sort_params(ctx) : rc;
}
