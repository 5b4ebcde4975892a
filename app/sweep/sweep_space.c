/* Sweep files: YAML parsing of the search space, loading, and queries on parameters. */
#include "app/sweep/sweep_space.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "app/sweep/sweep_space_internal.h"
#include "common/atomicfile.h"
#include "common/numparse.h"

static const char *const dist_names[] = {"uniform", "log_uniform", "int", "choice"};
static const char *const method_names[] = {"grid", "random", "hyperband", "tpe"};
static const char *const pruner_names[] = {"asha", "median"};

const char *pst_sweep_method_name(pst_sweep_method_t method)
{
    return method_names[method];
}

const char *pst_sweep_dist_name(pst_sweep_dist_t dist)
{
    return dist_names[dist];
}

static size_t line_of(const yaml_node_t *node)
{
    return node->start_mark.line + 1;
}

static const char *scalar_of(const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static int n_items(const yaml_node_t *seq)
{
    return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *item_of(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *seq, int i)
{
    return yaml_document_get_node(ctx->doc, seq->data.sequence.items.start[i]);
}

/* Parses a whole-text real number. */
static bool parse_real(const char *text, double *out)
{
    return pst_parse_double(text, PST_NUM_FINITE | PST_NUM_TRAILING_SPACE, out) == PST_OK;
}

bool pst_sweep_same_value(const char *a, const char *b)
{
    double x, y;
    return strcmp(a, b) == 0 || (parse_real(a, &x) && parse_real(b, &y) && x == y);
}

static int parse_long_node(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *node, const char *name,
                           long min, long max, long *out)
{
    const char *text = scalar_of(node);
    if (!text || pst_parse_long(text, min, max, out) != PST_OK)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: expected an integer in [%ld, %ld]",
                           ctx->sp->origin, line_of(node), name, min, max);
    return PST_OK;
}

static int set_string(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *node, const char *name,
                      char **out)
{
    const char *text = scalar_of(node);
    if (!text || !text[0])
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: expected a non-empty value",
                           ctx->sp->origin, line_of(node), name);
    free(*out);
    *out = strdup(text);
    return *out ? PST_OK : PST_ENOMEM;
}

static int parse_method(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *node)
{
    const char *text = scalar_of(node);
    for (int m = 0; text && m < 4; m++) {
        if (strcmp(text, method_names[m]) == 0) {
            ctx->sp->method = (pst_sweep_method_t)m;
            ctx->has_method = true;
            return PST_OK;
        }
    }
    return pst_err_set(ctx->err, PST_EINVAL,
                       "%s:%zu: method: expected grid, random, hyperband or tpe", ctx->sp->origin,
                       line_of(node));
}

static int parse_mode(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *node)
{
    const char *text = scalar_of(node);
    if (!text || (strcmp(text, "max") != 0 && strcmp(text, "min") != 0))
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: mode: expected max or min",
                           ctx->sp->origin, line_of(node));
    ctx->sp->maximize = strcmp(text, "max") == 0;
    ctx->has_mode = true;
    return PST_OK;
}

/* The rungs: `hyperband:` or `rungs:` (the same block under either name). */
static int parse_rungs(pst_sweep_parse_ctx_t *ctx, const char *block, const yaml_node_t *map)
{
    pst_sweep_space_t *sp = ctx->sp;
    if (map->type != YAML_MAPPING_NODE)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: %s: expected {min_epochs: A, max_epochs: B, eta: C}",
                           sp->origin, line_of(map), block);
    if (ctx->has_hyperband)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: the rungs are set twice", sp->origin,
                           line_of(map), block);
    ctx->has_hyperband = true;
    ctx->hyperband_line = line_of(map);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
        const char *name = scalar_of(k) ? scalar_of(k) : "";
        char label[64];
        snprintf(label, sizeof label, "%s.%s", block, name);
        int rc;
        if (strcmp(name, "min_epochs") == 0)
            rc = parse_long_node(ctx, v, label, 1, PST_SWEEP_MAX_EPOCHS, &sp->min_epochs);
        else if (strcmp(name, "max_epochs") == 0)
            rc = parse_long_node(ctx, v, label, 1, PST_SWEEP_MAX_EPOCHS, &sp->max_epochs);
        else if (strcmp(name, "eta") == 0)
            rc = parse_long_node(ctx, v, label, 2, 1000, &sp->eta);
        else
            rc = pst_err_set(ctx->err, PST_EINVAL,
                             "%s:%zu: unknown key '%s' (expected min_epochs, max_epochs, eta)",
                             sp->origin, line_of(k), label);
        if (rc != PST_OK)
            return rc;
        ctx->has_max_epochs |= strcmp(name, "max_epochs") == 0;
    }
    sp->rungs = true;
    return PST_OK;
}

static int parse_bool_node(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *node, const char *name,
                           bool *out)
{
    const char *text = scalar_of(node);
    if (text && (strcmp(text, "true") == 0 || strcmp(text, "false") == 0))
        return *out = text[0] == 't', PST_OK;
    return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: expected true or false", ctx->sp->origin,
                       line_of(node), name);
}

static int parse_tpe_key(pst_sweep_parse_ctx_t *ctx, const char *name, const yaml_node_t *k,
                         const yaml_node_t *v)
{
    pst_sweep_space_t *sp = ctx->sp;
    char label[64];
    snprintf(label, sizeof label, "tpe.%s", name);
    if (strcmp(name, "startup_trials") == 0)
        return parse_long_node(ctx, v, label, 0, PST_SWEEP_MAX_GRID, &sp->tpe_startup);
    if (strcmp(name, "candidates") == 0)
        return parse_long_node(ctx, v, label, 1, 10000, &sp->tpe_candidates);
    if (strcmp(name, "multivariate") == 0)
        return parse_bool_node(ctx, v, label, &sp->tpe_multivariate);
    if (strcmp(name, "gamma") == 0) {
        const char *text = scalar_of(v);
        if (text && parse_real(text, &sp->tpe_gamma) && sp->tpe_gamma > 0 && sp->tpe_gamma < 1)
            return PST_OK;
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: expected a number in (0, 1)",
                           sp->origin, line_of(v), label);
    }
    return pst_err_set(ctx->err, PST_EINVAL,
                       "%s:%zu: unknown key '%s' (expected startup_trials, candidates, "
                       "multivariate, gamma)",
                       sp->origin, line_of(k), label);
}

/* tpe: {startup_trials: N, candidates: N, multivariate: BOOL, gamma: X} */
static int parse_tpe(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *map)
{
    if (map->type != YAML_MAPPING_NODE)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: tpe: expected {startup_trials: N, candidates: N, "
                           "multivariate: true|false, gamma: X}",
                           ctx->sp->origin, line_of(map));
    ctx->has_tpe = true;
    ctx->tpe_line = line_of(map);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        int rc = parse_tpe_key(ctx, scalar_of(k) ? scalar_of(k) : "", k,
                               yaml_document_get_node(ctx->doc, p->value));
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int parse_pruner_rule(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *node)
{
    const char *text = scalar_of(node);
    for (int r = 0; text && r < 2; r++)
        if (strcmp(text, pruner_names[r]) == 0)
            return ctx->sp->pruner = (pst_sweep_pruner_t)r, PST_OK;
    return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: pruner: expected asha or median",
                       ctx->sp->origin, line_of(node));
}

/* pruner: asha | median | {rule: asha|median, startup_trials: N} */
static int parse_pruner(pst_sweep_parse_ctx_t *ctx, const yaml_node_t *node)
{
    ctx->has_pruner = true;
    ctx->pruner_line = line_of(node);
    if (node->type != YAML_MAPPING_NODE)
        return parse_pruner_rule(ctx, node);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
        const char *name = scalar_of(k) ? scalar_of(k) : "";
        int rc;
        if (strcmp(name, "rule") == 0)
            rc = parse_pruner_rule(ctx, v);
        else if (strcmp(name, "startup_trials") == 0)
            rc = parse_long_node(ctx, v, "pruner.startup_trials", 0, PST_SWEEP_MAX_GRID,
                                 &ctx->sp->prune_startup);
        else
            rc = pst_err_set(ctx->err, PST_EINVAL,
                             "%s:%zu: unknown key 'pruner.%s' (expected rule, startup_trials)",
                             ctx->sp->origin, line_of(k), name);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

/* The text of a choice item: a scalar as written, a list of scalars as "[a, b]". */
static int choice_text(pst_sweep_parse_ctx_t *ctx, const pst_sweep_param_t *param,
                       yaml_node_t *item, char **out)
{
    if (scalar_of(item))
        return (*out = strdup(scalar_of(item))) ? PST_OK : PST_ENOMEM;
    if (item->type != YAML_SEQUENCE_NODE)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: a choice is a value or a list",
                           ctx->sp->origin, line_of(item), param->key);
    size_t len = 3;
    for (int i = 0; i < n_items(item); i++) {
        const char *text = scalar_of(item_of(ctx, item, i));
        if (!text)
            return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: a list choice holds values",
                               ctx->sp->origin, line_of(item), param->key);
        len += strlen(text) + 2;
    }
    char *buf = malloc(len);
    if (!buf)
        return PST_ENOMEM;
    strcpy(buf, "[");
    for (int i = 0; i < n_items(item); i++) {
        strcat(buf, i ? ", " : "");
        strcat(buf, scalar_of(item_of(ctx, item, i)));
    }
    strcat(buf, "]");
    *out = buf;
    return PST_OK;
}

static int parse_choices(pst_sweep_parse_ctx_t *ctx, pst_sweep_param_t *param, yaml_node_t *seq)
{
    if (seq->type != YAML_SEQUENCE_NODE || n_items(seq) == 0)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: choice expects a non-empty list",
                           ctx->sp->origin, line_of(seq), param->key);
    param->values = calloc((size_t)n_items(seq), sizeof *param->values);
    if (!param->values)
        return PST_ENOMEM;
    for (int i = 0; i < n_items(seq); i++) {
        int rc = choice_text(ctx, param, item_of(ctx, seq, i), &param->values[i]);
        if (rc != PST_OK)
            return rc;
        param->n_values = i + 1;
    }
    return PST_OK;
}

static int parse_range(pst_sweep_parse_ctx_t *ctx, pst_sweep_param_t *param, yaml_node_t *seq)
{
    const char *name = dist_names[param->dist];
    if (seq->type != YAML_SEQUENCE_NODE || n_items(seq) != 2 || !scalar_of(item_of(ctx, seq, 0)) ||
        !scalar_of(item_of(ctx, seq, 1)) ||
        !parse_real(scalar_of(item_of(ctx, seq, 0)), &param->lo) ||
        !parse_real(scalar_of(item_of(ctx, seq, 1)), &param->hi))
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: %s expects [low, high] numbers",
                           ctx->sp->origin, line_of(seq), param->key, name);
    return PST_OK;
}

static int parse_cond(pst_sweep_parse_ctx_t *ctx, pst_sweep_cond_t *cond, yaml_node_t *key,
                      yaml_node_t *v)
{
    const char *origin = ctx->sp->origin;
    if (!scalar_of(key))
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: when: keys are names", origin,
                           line_of(key));
    if (!(cond->key = strdup(scalar_of(key))))
        return PST_ENOMEM;
    int n = scalar_of(v) ? 1 : v->type == YAML_SEQUENCE_NODE ? n_items(v) : 0;
    if (n == 0)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: when: %s expects a value or a list",
                           origin, line_of(v), cond->key);
    if (!(cond->values = calloc((size_t)n, sizeof *cond->values)))
        return PST_ENOMEM;
    for (int i = 0; i < n; i++) {
        const char *text = scalar_of(v) ? scalar_of(v) : scalar_of(item_of(ctx, v, i));
        if (!text)
            return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: when: %s: values must be plain",
                               origin, line_of(v), cond->key);
        if (!(cond->values[i] = strdup(text)))
            return PST_ENOMEM;
        cond->n_values = i + 1;
    }
    return PST_OK;
}

static int parse_when(pst_sweep_parse_ctx_t *ctx, pst_sweep_param_t *param, yaml_node_t *map)
{
    if (map->type != YAML_MAPPING_NODE ||
        map->data.mapping.pairs.top == map->data.mapping.pairs.start)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: %s: when expects a mapping {parameter: [values]}",
                           ctx->sp->origin, line_of(map), param->key);
    int n = (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (!(param->conds = calloc((size_t)n, sizeof *param->conds)))
        return PST_ENOMEM;
    for (int i = 0; i < n; i++) {
        yaml_node_pair_t *p = map->data.mapping.pairs.start + i;
        param->n_conds = i + 1;
        int rc = parse_cond(ctx, &param->conds[i], yaml_document_get_node(ctx->doc, p->key),
                            yaml_document_get_node(ctx->doc, p->value));
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int parse_dist_key(pst_sweep_parse_ctx_t *ctx, pst_sweep_param_t *param, const char *name,
                          yaml_node_t *name_node, yaml_node_t *v, bool *has_dist)
{
    for (int d = 0; d < 4; d++) {
        if (strcmp(name, dist_names[d]) != 0)
            continue;
        if (*has_dist)
            return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: %s: more than one distribution",
                               ctx->sp->origin, line_of(name_node), param->key);
        *has_dist = true;
        param->dist = (pst_sweep_dist_t)d;
        return d == PST_SWEEP_CHOICE ? parse_choices(ctx, param, v) : parse_range(ctx, param, v);
    }
    if (strcmp(name, "grid") == 0) {
        char label[300];
        long n = 0;
        snprintf(label, sizeof label, "%s: grid", param->key);
        int rc = parse_long_node(ctx, v, label, 2, PST_SWEEP_MAX_GRID, &n);
        param->grid = (int)n;
        return rc;
    }
    if (strcmp(name, "when") == 0)
        return parse_when(ctx, param, v);
    return pst_err_set(ctx->err, PST_EINVAL,
                       "%s:%zu: %s: unknown distribution '%s' (expected uniform, log_uniform, int "
                       "or choice, with optional grid and when)",
                       ctx->sp->origin, line_of(name_node), param->key, name);
}

static int parse_param(pst_sweep_parse_ctx_t *ctx, pst_sweep_param_t *param, yaml_node_t *map)
{
    if (map->type != YAML_MAPPING_NODE)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: %s: expected a distribution such as {choice: [a, b]}",
                           ctx->sp->origin, line_of(map), param->key);
    bool has_dist = false;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        const char *name = scalar_of(k) ? scalar_of(k) : "";
        int rc = parse_dist_key(ctx, param, name, k, yaml_document_get_node(ctx->doc, p->value),
                                &has_dist);
        if (rc != PST_OK)
            return rc;
    }
    if (!has_dist)
        return pst_err_set(ctx->err, PST_EINVAL,
                           "%s:%zu: %s: no distribution (uniform, log_uniform, int or choice)",
                           ctx->sp->origin, param->line, param->key);
    return PST_OK;
}

static int parse_space(pst_sweep_parse_ctx_t *ctx, yaml_node_t *map)
{
    pst_sweep_space_t *sp = ctx->sp;
    if (map->type != YAML_MAPPING_NODE)
        return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: space: expected a mapping of keys",
                           sp->origin, line_of(map));
    int n = (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (!(sp->params = calloc((size_t)n + 1, sizeof *sp->params)))
        return PST_ENOMEM;
    for (int i = 0; i < n; i++) {
        yaml_node_pair_t *p = map->data.mapping.pairs.start + i;
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        const char *key = scalar_of(k);
        if (!key)
            return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: space: keys must be plain names",
                               sp->origin, line_of(k));
        if (pst_sweep_space_find(sp, key) >= 0)
            return pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: space: '%s' appears twice",
                               sp->origin, line_of(k), key);
        pst_sweep_param_t *param = &sp->params[sp->n_params++];
        param->line = line_of(k);
        if (!(param->key = strdup(key)))
            return PST_ENOMEM;
        int rc = parse_param(ctx, param, yaml_document_get_node(ctx->doc, p->value));
        if (rc == PST_OK)
            rc = pst_sweep_check_param(ctx, param);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int parse_top_key(pst_sweep_parse_ctx_t *ctx, yaml_node_t *k, yaml_node_t *v)
{
    pst_sweep_space_t *sp = ctx->sp;
    const char *name = scalar_of(k) ? scalar_of(k) : "";
    long seed;
    int rc;
    if (strcmp(name, "base") == 0)
        return set_string(ctx, v, "base", &sp->base);
    if (strcmp(name, "method") == 0)
        return parse_method(ctx, v);
    if (strcmp(name, "metric") == 0)
        return ctx->has_metric = true, set_string(ctx, v, "metric", &sp->metric);
    if (strcmp(name, "mode") == 0)
        return parse_mode(ctx, v);
    if (strcmp(name, "keep_models") == 0)
        return parse_long_node(ctx, v, "keep_models", 1, 100, &sp->keep_models);
    if (strcmp(name, "trials") == 0)
        return ctx->has_trials = true,
               parse_long_node(ctx, v, "trials", 1, PST_SWEEP_MAX_GRID, &sp->trials);
    if (strcmp(name, "seed") == 0) {
        rc = parse_long_node(ctx, v, "seed", 0, 4294967295L, &seed);
        sp->seed = (uint64_t)seed;
        return rc;
    }
    if (strcmp(name, "hyperband") == 0 || strcmp(name, "rungs") == 0)
        return parse_rungs(ctx, name, v);
    if (strcmp(name, "tpe") == 0)
        return parse_tpe(ctx, v);
    if (strcmp(name, "pruner") == 0)
        return parse_pruner(ctx, v);
    if (strcmp(name, "space") == 0)
        return sp->params ? pst_err_set(ctx->err, PST_EINVAL, "%s:%zu: space appears twice",
                                        sp->origin, line_of(k))
                          : parse_space(ctx, v);
    return pst_err_set(ctx->err, PST_EINVAL,
                       "%s:%zu: unknown sweep key '%s' (expected base, method, metric, mode, "
                       "trials, seed, hyperband, rungs, pruner, tpe, keep_models, space)",
                       sp->origin, line_of(k), name);
}

static int parse_root(pst_sweep_parse_ctx_t *ctx, yaml_node_t *root)
{
    if (!root || root->type != YAML_MAPPING_NODE)
        return pst_err_set(ctx->err, PST_EFORMAT, "%s: a sweep file is a mapping of keys",
                           ctx->sp->origin);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        int rc = parse_top_key(ctx, yaml_document_get_node(ctx->doc, p->key),
                               yaml_document_get_node(ctx->doc, p->value));
        if (rc != PST_OK)
            return rc;
    }
    return pst_sweep_check_space(ctx);
}

static pst_sweep_space_t *space_new(const char *origin)
{
    pst_sweep_space_t *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->origin = strdup(origin))) {
        free(sp);
        return NULL;
    }
    sp->min_epochs = 1;
    sp->eta = 3;
    sp->prune_startup = 5; /* Optuna's MedianPruner default */
    sp->tpe_startup = 10;  /* Optuna's TPESampler defaults */
    sp->tpe_candidates = 24;
    sp->tpe_gamma = 0.1;
    sp->keep_models = 1;
    return sp;
}

int pst_sweep_space_load_string(const char *yaml, const char *origin, pst_sweep_space_t **out,
                                pst_err_t *err)
{
    *out = NULL;
    pst_sweep_parse_ctx_t ctx = {.err = err};
    if (!(ctx.sp = space_new(origin)))
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        pst_sweep_space_destroy(&ctx.sp);
        return pst_err_set(err, PST_ENOMEM, "%s: cannot start the YAML parser", origin);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = pst_err_set(err, PST_EFORMAT, "%s:%zu: YAML error: %s", origin,
                         parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
    } else {
        ctx.doc = &doc;
        pst_config_init(&ctx.scratch);
        rc = parse_root(&ctx, yaml_document_get_root_node(&doc));
        pst_config_fini(&ctx.scratch);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (rc == PST_ENOMEM)
        pst_err_set(err, rc, "%s: out of memory", origin);
    if (rc != PST_OK)
        pst_sweep_space_destroy(&ctx.sp);
    *out = ctx.sp;
    return rc;
}

int pst_sweep_space_load_file(const char *path, pst_sweep_space_t **out, pst_err_t *err)
{
    unsigned char *data;
    size_t len;
    *out = NULL;
    int rc = pst_read_file(path, 16u << 20, &data, &len, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_sweep_space_load_string((char *)data, path, out, err);
    free(data);
    return rc;
}

static void free_strings(char **items, int n)
{
    for (int i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void param_fini(pst_sweep_param_t *param)
{
    free(param->key);
    free_strings(param->values, param->n_values);
    for (int c = 0; c < param->n_conds; c++) {
        free(param->conds[c].key);
        free_strings(param->conds[c].values, param->conds[c].n_values);
    }
    free(param->conds);
}

void pst_sweep_space_destroy(pst_sweep_space_t **space_p)
{
    pst_sweep_space_t *sp = *space_p;
    if (!sp)
        return;
    for (int i = 0; i < sp->n_params; i++)
        param_fini(&sp->params[i]);
    free(sp->params);
    free(sp->order);
    free(sp->origin);
    free(sp->base);
    free(sp->metric);
    free(sp);
    *space_p = NULL;
}

int pst_sweep_space_find(const pst_sweep_space_t *space, const char *key)
{
    for (int i = 0; i < space->n_params; i++)
        if (strcmp(space->params[i].key, key) == 0)
            return i;
    return -1;
}

bool pst_sweep_space_active(const pst_sweep_space_t *space, int p, const char *const *values)
{
    const pst_sweep_param_t *param = &space->params[p];
    for (int c = 0; c < param->n_conds; c++) {
        const pst_sweep_cond_t *cond = &param->conds[c];
        const char *v = values[cond->param];
        bool holds = false;
        for (int i = 0; v && i < cond->n_values && !holds; i++)
            holds = pst_sweep_same_value(v, cond->values[i]);
        if (!holds)
            return false;
    }
    return true;
}

void pst_sweep_param_format(const pst_sweep_param_t *param, double v,
                            char text[PST_SWEEP_VALUE_MAX])
{
    if (param->dist == PST_SWEEP_INT)
        snprintf(text, PST_SWEEP_VALUE_MAX, "%ld", (long)v);
    else
        snprintf(text, PST_SWEEP_VALUE_MAX, "%.9g", v);
}
