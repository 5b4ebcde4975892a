/* Command-line parsing every pstrain command shares: positionals (CONFIG, MODEL, ...), --set,
 * --out, --resume, -q and --help, and a small table of each command's own options. */
#ifndef PST_CLI_ARGS_H
#define PST_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "app/plan/plan.h"

#define PST_ARGS_MAX_POSITIONAL 2

/* The options a command takes besides its own table. */
enum {
    PST_ARGS_SET = 1 << 0,    /* --set KEY=VALUE and --set=KEY=VALUE, repeatable */
    PST_ARGS_OUT = 1 << 1,    /* --out DIR */
    PST_ARGS_RESUME = 1 << 2, /* --resume DIR */
    PST_ARGS_QUIET = 1 << 3,  /* -q, --quiet; with it -v, --verbose and --progress MODE */
};

/* pst_args_parse's results besides an exit status of 2 (usage error). */
enum { PST_ARGS_RUN = 0, PST_ARGS_HELP = -1 };

/* One option of a command's own: a flag (sets *flag), or an option with a value kept as text
 * (*text) or converted at once by parse(ctx, name, value), which returns 0 or, after printing
 * the error, the exit status 2. Tables end with an entry whose name is NULL. */
typedef struct pst_args_opt {
    const char *name;
    bool *flag;
    const char **text;
    int (*parse)(void *ctx, const char *name, const char *value);
} pst_args_opt_t;

typedef struct pst_args_spec {
    void (*usage)(FILE *out); /* printed on stdout for -h and --help */
    unsigned common;          /* PST_ARGS_* */
    const pst_args_opt_t *opts;
    void *ctx;          /* passed to the table's parse functions */
    int first;          /* argv index of the first argument to parse (argv[0] is the command) */
    int max_positional; /* at most PST_ARGS_MAX_POSITIONAL */
    /* Messages: printf formats taking the offending argument. */
    const char *unknown;    /* an unknown option, or one missing its value */
    const char *unexpected; /* a positional beyond max_positional; NULL: unknown */
    /* pairs: every argument is an --option of the table followed by its value; an argument
     * that does not start with "--" is unexpected, one without a value takes missing_value. */
    bool pairs;
    const char *missing_value;
} pst_args_spec_t;

typedef struct pst_args {
    const char *positional[PST_ARGS_MAX_POSITIONAL];
    int n_positional;
    const char *sets[PST_MAX_SETS];
    int n_sets;
    const char *out, *resume;
    bool quiet, verbose;
    bool force;            /* --force (with --out): write into an existing non-empty DIR */
    char progress_set[64]; /* --progress MODE as the override train.progress=MODE */
} pst_args_t;

/* Parses argv[spec->first..argc) into *a (zeroed first) and the table's targets. Returns
 * PST_ARGS_RUN, PST_ARGS_HELP after printing the usage, or 2 after printing the error. */
int pst_args_parse(pst_args_t *a, const pst_args_spec_t *spec, int argc, char **argv);

/* The exit status of a pst_args_parse result other than PST_ARGS_RUN. */
static inline int pst_args_status(int parsed)
{
    return parsed == PST_ARGS_HELP ? 0 : parsed;
}

/* The plan options (CONFIG = the first positional, --set, --out, -q) of parsed arguments.
 * Without a CONFIG, when no_config is given, prints it as the error and returns 2; else 0. */
int pst_args_to_plan(const pst_args_t *a, pst_plan_args_t *plan, const char *no_config);

/* True when arg is -h or --help. */
bool pst_is_help(const char *arg);

#endif
