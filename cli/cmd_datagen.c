/* pstrain datagen clicks: writes synthetic click data in LIBSVM form and the truth behind it. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/datagen.h"
#include "common/clickgen.h"

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
            "      --out clicks.svm --truth clicks.truth.json\n");
}

typedef struct datagen_args {
    pst_clickgen_t cfg;
    pst_clickgen_files_t files;
    bool has_rows, has_features, has_nnz;
} datagen_args_t;

/* A whole decimal in [lo, hi]. */
static bool parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
    if (s[0] < '0' || s[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

static bool parse_real(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return s[0] != '\0' && *end == '\0' && errno == 0 && isfinite(*v);
}

static int bad_value(const char *opt, const char *value, const char *want)
{
    pst_cli_error("datagen clicks: %s '%s': expected %s", opt, value, want);
    return 2;
}

/* Applies option opt = value; 0 on success, else the exit status. */
static int apply_option(datagen_args_t *a, const char *opt, const char *value)
{
    uint64_t u;
    double d;
    if (strcmp(opt, "--rows") == 0) {
        if (!parse_uint(value, 1, UINT64_MAX, &u))
            return bad_value(opt, value, "a whole number >= 1");
        a->cfg.rows = u;
        a->has_rows = true;
    } else if (strcmp(opt, "--features") == 0) {
        if (!parse_uint(value, 2, 1u << 28, &u))
            return bad_value(opt, value, "a whole number in [2, 268435456]");
        a->cfg.n_features = (uint32_t)u;
        a->has_features = true;
    } else if (strcmp(opt, "--nnz") == 0) {
        if (!parse_uint(value, 1, UINT32_MAX, &u))
            return bad_value(opt, value, "a whole number >= 1");
        a->cfg.nnz = (uint32_t)u;
        a->has_nnz = true;
    } else if (strcmp(opt, "--seed") == 0) {
        if (!parse_uint(value, 0, UINT64_MAX, &u))
            return bad_value(opt, value, "a whole number >= 0");
        a->cfg.seed = u;
    } else if (strcmp(opt, "--click-rate") == 0 || strcmp(opt, "--sigma") == 0 ||
               strcmp(opt, "--zipf") == 0) {
        if (!parse_real(value, &d))
            return bad_value(opt, value, "a number");
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
    } else {
        pst_cli_error("datagen clicks: unknown option '%s' (try 'pstrain datagen --help')", opt);
        return 2;
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
        pst_cli_error("datagen clicks: %s is required (try 'pstrain datagen --help')", missing);
        return 2;
    }
    pst_err_t err;
    if (pst_clickgen_check(&a->cfg, &err) != PST_OK) {
        pst_cli_error("datagen clicks: %s", err.msg);
        return 2;
    }
    return 0;
}

/* argv[0] is "clicks". Returns -1 when --help was printed, else the usage status (0 = ok). */
static int parse_clicks_args(datagen_args_t *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    pst_clickgen_defaults(&a->cfg);
    for (int i = 1; i < argc; i++) {
        if (pst_is_help(argv[i])) {
            pst_usage_datagen(stdout);
            return -1;
        }
        if (argv[i][0] != '-' || argv[i][1] != '-') {
            pst_cli_error("datagen clicks: unexpected argument '%s'", argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            pst_cli_error("datagen clicks: %s needs a value", argv[i]);
            return 2;
        }
        int status = apply_option(a, argv[i], argv[i + 1]);
        if (status != 0)
            return status;
        i++;
    }
    return check_required(a);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_clicks(int argc, char **argv)
{
    datagen_args_t a;
    int status = parse_clicks_args(&a, argc, argv);
    if (status != 0)
        return status < 0 ? 0 : status;
    pst_err_t err;
    pst_clickgen_truth_t t;
    double start = now_seconds();
    if (pst_clickgen_write(&a.cfg, &a.files, &t, &err) != PST_OK) {
        pst_cli_error("datagen clicks: %s", err.msg);
        return 1;
    }
    double seconds = now_seconds() - start;
    printf("wrote %llu rows to %s in %.2f s (%.0f rows/s): click rate %.4f (target %.4f), "
           "bias %.4f, Bayes AUC %.4f, Bayes log-loss %.4f\n",
           (unsigned long long)a.cfg.rows, a.files.data, seconds,
           (double)a.cfg.rows / (seconds > 0 ? seconds : 1e-9), t.click_rate, a.cfg.click_rate,
           t.bias, t.bayes_auc, t.bayes_log_loss);
    return 0;
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
    pst_cli_error("datagen: unknown generator '%s' (known: clicks)", argv[1]);
    return 2;
}
