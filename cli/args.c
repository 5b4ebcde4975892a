/* The shared argv loop: help, the common options, the command's option table, positionals. */
#include "cli/args.h"

#include <stdio.h>
#include <string.h>

#include "app/console.h"

bool pst_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static const pst_args_opt_t *find_opt(const pst_args_spec_t *spec, const char *arg)
{
    for (const pst_args_opt_t *o = spec->opts; o && o->name; o++)
        if (strcmp(arg, o->name) == 0)
            return o;
    return NULL;
}

static int add_set(pst_args_t *a, const char *value)
{
    if (a->n_sets >= PST_MAX_SETS) {
        pst_app_error("too many --set options (at most %d)", PST_MAX_SETS);
        return 2;
    }
    a->sets[a->n_sets++] = value;
    return 0;
}

/* --progress MODE: the per-epoch output, as the override train.progress=MODE. */
static int progress_opt(pst_args_t *a, const char *mode)
{
    const char *modes[] = {"none", "lines", "bar", "auto"};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        if (strcmp(mode, modes[m]) == 0) {
            snprintf(a->progress_set, sizeof a->progress_set, "train.progress=%s", mode);
            return add_set(a, a->progress_set);
        }
    }
    pst_app_error("--progress: '%s' is not one of none, lines, bar, auto", mode);
    return 2;
}

/* A common option at argv[*i] (advancing *i past its value): 0 taken, 2 an error, -1 not one. */
static int common_opt(pst_args_t *a, unsigned common, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    bool has_value = *i + 1 < argc;
    if ((common & PST_ARGS_SET) && strcmp(arg, "--set") == 0 && has_value)
        return add_set(a, argv[++*i]);
    if ((common & PST_ARGS_SET) && strncmp(arg, "--set=", 6) == 0)
        return add_set(a, arg + 6);
    if ((common & PST_ARGS_OUT) && strcmp(arg, "--out") == 0 && has_value)
        return a->out = argv[++*i], 0;
    if ((common & PST_ARGS_OUT) && strcmp(arg, "--force") == 0)
        return a->force = true, 0;
    if ((common & PST_ARGS_QUIET) && (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0))
        return a->verbose = true, 0;
    if ((common & PST_ARGS_QUIET) && strcmp(arg, "--progress") == 0 && has_value)
        return progress_opt(a, argv[++*i]);
    if ((common & PST_ARGS_RESUME) && strcmp(arg, "--resume") == 0 && has_value)
        return a->resume = argv[++*i], 0;
    if ((common & PST_ARGS_QUIET) && (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0))
        return a->quiet = true, 0;
    return -1;
}

/* One of the command's own options at argv[*i]: 0 taken, 2 an error, -1 not one. */
static int table_opt(const pst_args_spec_t *spec, int argc, char **argv, int *i)
{
    const pst_args_opt_t *o = find_opt(spec, argv[*i]);
    if (!o)
        return -1;
    if (o->flag) {
        *o->flag = true;
        return 0;
    }
    if (*i + 1 >= argc)
        return -1;
    const char *value = argv[++*i];
    if (o->text)
        *o->text = value;
    return o->parse ? o->parse(spec->ctx, o->name, value) : 0;
}

static int positional(pst_args_t *a, const pst_args_spec_t *spec, const char *arg)
{
    if (arg[0] == '-') {
        pst_app_error(spec->unknown, arg);
        return 2;
    }
    if (a->n_positional >= spec->max_positional || a->n_positional >= PST_ARGS_MAX_POSITIONAL) {
        pst_app_error(spec->unexpected ? spec->unexpected : spec->unknown, arg);
        return 2;
    }
    a->positional[a->n_positional++] = arg;
    return 0;
}

/* An "--option value" pair at argv[*i] (the pairs mode): 0 taken, else 2 after the error. */
static int pair_opt(const pst_args_spec_t *spec, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char *fmt = arg[0] != '-' || arg[1] != '-' ? spec->unexpected
                      : *i + 1 >= argc               ? spec->missing_value
                      : !find_opt(spec, arg)         ? spec->unknown
                                                     : NULL;
    if (!fmt)
        return table_opt(spec, argc, argv, i);
    pst_app_error(fmt, arg);
    return 2;
}

int pst_args_parse(pst_args_t *a, const pst_args_spec_t *spec, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    for (int i = spec->first; i < argc; i++) {
        if (pst_is_help(argv[i])) {
            spec->usage(stdout);
            return PST_ARGS_HELP;
        }
        int rc = spec->pairs ? pair_opt(spec, argc, argv, &i)
                             : common_opt(a, spec->common, argc, argv, &i);
        if (rc < 0)
            rc = table_opt(spec, argc, argv, &i);
        if (rc < 0)
            rc = positional(a, spec, argv[i]);
        if (rc != 0)
            return rc;
    }
    return PST_ARGS_RUN;
}

int pst_args_to_plan(const pst_args_t *a, pst_plan_args_t *plan, const char *no_config)
{
    memset(plan, 0, sizeof *plan);
    plan->config = a->positional[0];
    memcpy(plan->sets, a->sets, (size_t)a->n_sets * sizeof a->sets[0]);
    plan->n_sets = a->n_sets;
    plan->out = a->out;
    plan->quiet = a->quiet;
    plan->force = a->force;
    if (plan->config || !no_config)
        return PST_ARGS_RUN;
    pst_app_error("%s", no_config);
    return 2;
}
