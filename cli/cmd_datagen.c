/* pstrain datagen clicks | criteo: argv of the synthetic data generators, run by app/datagen. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/datagen.h"
#include "cli/args.h"
#include "cli/datagen.h"
#include "common/numparse.h"

void pst_usage_datagen(FILE *out)
{
    fprintf(out,
            "usage: pstrain datagen clicks --rows N --features F --nnz K --out FILE\n"
            "                              [--seed S] [--click-rate R] [--sigma X] [--zipf A]\n"
            "                              [--truth FILE] [--truth-weights FILE]\n\n"
            "Writes N rows of synthetic click data as LIBSVM lines \"label id:1 id:1 ...\"\n"
            "(label 0/1, ids 1-based and increasing). Each row holds K distinct features\n"
            "drawn with popularity proportional to rank^-A over F features; its click\n"
            "probability is sigmoid(bias + sum of true weights), weights ~ N(0, X), the\n"
            "bias chosen so that the mean click probability is R. The same arguments give\n"
            "the same bytes. Every file is written atomically.\n\n"
            "options:\n"
            "  --rows N              rows to write (required)\n"
            "  --features F          number of features, 2..2^28 (required)\n"
            "  --nnz K               features per row, 1..F/2 (required)\n"
            "  --out FILE            the LIBSVM file (required)\n"
            "  --seed S              random seed (default 1)\n"
            "  --click-rate R        target mean click probability in (0, 1) (default 0.03)\n"
            "  --sigma X             standard deviation of the true weights (default 0.25)\n"
            "  --zipf A              popularity exponent (default 1.1)\n"
            "  --truth FILE          JSON: bias, seed, sigma, realised click rate, and the\n"
            "                        Bayes-optimal AUC and log-loss of the rows written\n"
            "  --truth-weights FILE  the F true weights as little-endian float32\n\n"
            "example:\n"
            "  pstrain datagen clicks --rows 2000000 --features 1000000 --nnz 30 --seed 7 \\\n"
            "      --out clicks.svm --truth clicks.truth.json\n\n"
            "usage: pstrain datagen criteo --rows N --out FILE [--numeric I] [--categorical C]\n"
            "                              [--vocab V] [--seed S] [--click-rate R] [--sigma X]\n"
            "                              [--interaction Y] [--missing M] [--zipf A]\n"
            "                              [--truth FILE] [--truth-main FILE]\n\n"
            "Writes N Criteo-style TSV lines \"label<TAB>I counts<TAB>C tokens\" (tokens of\n"
            "8 hex digits; a cell is empty with probability M). Token t of a field is drawn\n"
            "with popularity (t+1)^-A among V; the logit sums per-token weights ~ N(0, X),\n"
            "weights ~ N(0, X) on ln(1 + count), and pairwise interactions between fields\n"
            "(dot products of rank-4 token factors) with standard deviation Y, so a model\n"
            "of main effects alone cannot reach the Bayes AUC. The same arguments give the\n"
            "same bytes.\n\n"
            "options (defaults): --numeric 13, --categorical 26, --vocab 1000, --seed 1,\n"
            "  --click-rate 0.25, --sigma 0.5, --interaction 1, --missing 0.05, --zipf 1.1\n"
            "  --truth FILE          JSON: the configuration, the realised click rate, the\n"
            "                        Bayes AUC and log-loss, and main_effects_auc (the AUC of\n"
            "                        the true logit without its interactions)\n"
            "  --truth-main FILE     each row's true click probability without the\n"
            "                        interactions, as little-endian float32\n\n"
            "example:\n"
            "  pstrain datagen criteo --rows 100000 --numeric 4 --categorical 8 --vocab 200 \\\n"
            "      --out clicks.tsv --truth clicks.truth.json\n");
}

typedef struct datagen_args {
    pst_clickgen_t cfg;
    pst_clickgen_files_t files;
    bool has_rows, has_features, has_nnz;
} datagen_args_t;

/* A whole decimal in [lo, hi]. */
static bool parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
    uint64_t x;
    if (pst_parse_u64(s, &x) != PST_OK || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

static bool parse_real(const char *s, double *v)
{
    return pst_parse_double(s, PST_NUM_FINITE, v) == PST_OK;
}

static int bad_value(const char *gen, const char *opt, const char *value, const char *want)
{
    pst_app_error("datagen %s: %s '%s': expected %s", gen, opt, value, want);
    return 2;
}

/* Applies option opt = value of the table; 0 on success, else the exit status. */
static int apply_option(void *args, const char *opt, const char *value)
{
    datagen_args_t *a = args;
    uint64_t u;
    double d;
    if (strcmp(opt, "--rows") == 0) {
        if (!parse_uint(value, 1, UINT64_MAX, &u))
            return bad_value("clicks", opt, value, "a whole number >= 1");
        a->cfg.rows = u;
        a->has_rows = true;
    } else if (strcmp(opt, "--features") == 0) {
        if (!parse_uint(value, 2, 1u << 28, &u))
            return bad_value("clicks", opt, value, "a whole number in [2, 268435456]");
        a->cfg.n_features = (uint32_t)u;
        a->has_features = true;
    } else if (strcmp(opt, "--nnz") == 0) {
        if (!parse_uint(value, 1, UINT32_MAX, &u))
            return bad_value("clicks", opt, value, "a whole number >= 1");
        a->cfg.nnz = (uint32_t)u;
        a->has_nnz = true;
    } else if (strcmp(opt, "--seed") == 0) {
        if (!parse_uint(value, 0, UINT64_MAX, &u))
            return bad_value("clicks", opt, value, "a whole number >= 0");
        a->cfg.seed = u;
    } else if (strcmp(opt, "--click-rate") == 0 || strcmp(opt, "--sigma") == 0 ||
               strcmp(opt, "--zipf") == 0) {
        if (!parse_real(value, &d))
            return bad_value("clicks", opt, value, "a number");
        double *field = opt[2] == 'c'   ? &a->cfg.click_rate
                        : opt[2] == 's' ? &a->cfg.sigma
                                        : &a->cfg.zipf_exponent;
        *field = d;
    } else if (strcmp(opt, "--out") == 0) {
        a->files.data = value;
    } else if (strcmp(opt, "--truth") == 0) {
        a->files.truth_json = value;
    } else if (strcmp(opt, "--truth-weights") == 0) {
        a->files.truth_weights = value;
    }
    return 0;
}

static int check_required(const datagen_args_t *a)
{
    const char *missing = !a->has_rows       ? "--rows"
                          : !a->has_features ? "--features"
                          : !a->has_nnz      ? "--nnz"
                          : !a->files.data   ? "--out"
                                             : NULL;
    if (missing != NULL) {
        pst_app_error("datagen clicks: %s is required (try 'pstrain datagen --help')", missing);
        return 2;
    }
    pst_err_t err;
    if (pst_clickgen_check(&a->cfg, &err) != PST_OK) {
        pst_app_error("datagen clicks: %s", err.msg);
        return 2;
    }
    return 0;
}

/* The "--opt value" pairs of argv[1..argc) (argv[0] is the generator), each applied by parse.
 * Returns PST_ARGS_RUN, PST_ARGS_HELP or 2. */
static int parse_pairs(const char *const *names, int (*parse)(void *, const char *, const char *),
                       void *ctx, int argc, char **argv)
{
    pst_args_opt_t opts[16] = {{NULL}};
    for (int i = 0; names[i] && i < 15; i++)
        opts[i] = (pst_args_opt_t){names[i], .parse = parse};
    char unknown[128], unexpected[128], missing[128];
    snprintf(unknown, sizeof unknown,
             "datagen %s: unknown option '%%s' (try 'pstrain datagen --help')", argv[0]);
    snprintf(unexpected, sizeof unexpected, "datagen %s: unexpected argument '%%s'", argv[0]);
    snprintf(missing, sizeof missing, "datagen %s: %%s needs a value", argv[0]);
    pst_args_spec_t spec = {.usage = pst_usage_datagen,
                            .opts = opts,
                            .ctx = ctx,
                            .first = 1,
                            .unknown = unknown,
                            .unexpected = unexpected,
                            .pairs = true,
                            .missing_value = missing};
    pst_args_t a;
    return pst_args_parse(&a, &spec, argc, argv);
}

static int run_clicks(int argc, char **argv)
{
    static const char *const names[] = {"--rows",       "--features",      "--nnz",  "--seed",
                                        "--click-rate", "--sigma",         "--zipf", "--out",
                                        "--truth",      "--truth-weights", NULL};
    datagen_args_t a = {0};
    pst_clickgen_defaults(&a.cfg);
    int parsed = parse_pairs(names, apply_option, &a, argc, argv);
    if (parsed == PST_ARGS_RUN)
        parsed = check_required(&a);
    return parsed == PST_ARGS_RUN ? pst_datagen_clicks(&a.cfg, &a.files) : pst_args_status(parsed);
}

/* ---- datagen criteo ---- */

typedef struct criteo_args {
    pst_criteogen_t cfg;
    const char *out, *truth;
    bool has_rows;
} criteo_args_t;

/* Sets *field from a whole number in [lo, hi]; 0 on success, else the exit status. */
static int set_u32(uint32_t *field, const char *opt, const char *value, uint64_t lo, uint64_t hi)
{
    uint64_t u;
    char want[64];
    snprintf(want, sizeof want, "a whole number in [%llu, %llu]", (unsigned long long)lo,
             (unsigned long long)hi);
    if (!parse_uint(value, lo, hi, &u))
        return bad_value("criteo", opt, value, want);
    *field = (uint32_t)u;
    return 0;
}

static double *criteo_real_field(pst_criteogen_t *c, const char *opt)
{
    static const char *names[] = {"--click-rate", "--sigma", "--interaction", "--missing",
                                  "--zipf"};
    double *fields[] = {&c->click_rate, &c->sigma, &c->interaction, &c->missing, &c->zipf_exponent};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(opt, names[i]) == 0)
            return fields[i];
    return NULL;
}

static int apply_criteo_option(void *args, const char *opt, const char *value)
{
    criteo_args_t *a = args;
    uint64_t u;
    double *real = criteo_real_field(&a->cfg, opt);
    if (real != NULL) {
        if (!parse_real(value, real))
            return bad_value("criteo", opt, value, "a number");
    } else if (strcmp(opt, "--rows") == 0) {
        if (!parse_uint(value, 1, UINT64_MAX, &u))
            return bad_value("criteo", opt, value, "a whole number >= 1");
        a->cfg.rows = u;
        a->has_rows = true;
    } else if (strcmp(opt, "--seed") == 0) {
        if (!parse_uint(value, 0, UINT64_MAX, &u))
            return bad_value("criteo", opt, value, "a whole number >= 0");
        a->cfg.seed = u;
    } else if (strcmp(opt, "--numeric") == 0) {
        return set_u32(&a->cfg.n_numeric, opt, value, 0, PST_CRITEOGEN_MAX_FIELDS);
    } else if (strcmp(opt, "--categorical") == 0) {
        return set_u32(&a->cfg.n_categorical, opt, value, 1, PST_CRITEOGEN_MAX_FIELDS);
    } else if (strcmp(opt, "--vocab") == 0) {
        return set_u32(&a->cfg.vocab, opt, value, 2, 1u << 24);
    } else if (strcmp(opt, "--out") == 0) {
        a->out = value;
    } else if (strcmp(opt, "--truth") == 0) {
        a->truth = value;
    } else if (strcmp(opt, "--truth-main") == 0) {
        a->cfg.main_probs = value;
    }
    return 0;
}

static int check_criteo(const criteo_args_t *a)
{
    if (!a->has_rows || a->out == NULL) {
        pst_app_error("datagen criteo: %s is required (try 'pstrain datagen --help')",
                      a->has_rows ? "--out" : "--rows");
        return 2;
    }
    pst_err_t err;
    if (pst_criteogen_check(&a->cfg, &err) != PST_OK) {
        pst_app_error("datagen criteo: %s", err.msg);
        return 2;
    }
    return PST_ARGS_RUN;
}

static int run_criteo(int argc, char **argv)
{
    static const char *const names[] = {"--rows",       "--seed",
                                        "--numeric",    "--categorical",
                                        "--vocab",      "--click-rate",
                                        "--sigma",      "--interaction",
                                        "--missing",    "--zipf",
                                        "--out",        "--truth",
                                        "--truth-main", NULL};
    criteo_args_t a = {0};
    pst_criteogen_defaults(&a.cfg);
    int parsed = parse_pairs(names, apply_criteo_option, &a, argc, argv);
    if (parsed == PST_ARGS_RUN)
        parsed = check_criteo(&a);
    return parsed == PST_ARGS_RUN ? pst_datagen_criteo(&a.cfg, a.out, a.truth)
                                  : pst_args_status(parsed);
}

int pst_cmd_datagen(int argc, char **argv)
{
    if (argc < 2) {
        pst_usage_datagen(stderr);
        return 2;
    }
    if (pst_is_help(argv[1])) {
        pst_usage_datagen(stdout);
        return 0;
    }
    if (strcmp(argv[1], "clicks") == 0)
        return run_clicks(argc - 1, argv + 1);
    if (strcmp(argv[1], "criteo") == 0)
        return run_criteo(argc - 1, argv + 1);
    pst_app_error("datagen: unknown generator '%s' (known: clicks, criteo)", argv[1]);
    return 2;
}
