/* pstrain supervise: argv of app/supervise, which reruns a failed job with its restarts logged. */
#include <string.h>

#include "app/console.h"
#include "app/supervise.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/numparse.h"

void pst_usage_supervise(FILE *out)
{
    fprintf(out, "usage: pstrain supervise [--restarts N] [--delay SECONDS] -- COMMAND [ARG]...\n\n"
                 "Runs COMMAND, and runs it again each time it fails (a non-zero exit status or a\n"
                 "signal), at most N more times, logging every restart. Meant for a distributed\n"
                 "training job that resumes from its last checkpoint when rerun:\n"
                 "  pstrain supervise --restarts 3 -- mpirun -np 4 pstrain train CONFIG \\\n"
                 "      --set cluster.checkpoint_every=100 --resume auto --out runs/job\n"
                 "Exits with 0 once an attempt succeeds, else with the last attempt's status.\n\n"
                 "options:\n"
                 "  --restarts N     reruns after the first attempt (default 3)\n"
                 "  --delay SECONDS  pause before each rerun (default 1)\n");
}

int pst_cmd_supervise(int argc, char **argv)
{
    pst_supervise_opts_t o = {.restarts = 3, .delay_s = 1};
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        long n;
        double d;
        if (pst_is_help(argv[i])) {
            pst_usage_supervise(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--restarts") == 0 && i + 1 < argc &&
            pst_parse_decimal(argv[i + 1], &n) == PST_OK && n >= 0 && n <= 1000) {
            o.restarts = (int)n;
            i++;
        } else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc &&
                   pst_parse_double(argv[i + 1], PST_NUM_FINITE, &d) == PST_OK && d >= 0 &&
                   d <= 3600) {
            o.delay_s = d;
            i++;
        } else {
            pst_app_error("supervise: bad option '%s' (see pstrain supervise --help)", argv[i]);
            return 2;
        }
    }
    if (i + 1 >= argc) {
        pst_app_error("supervise: no command after '--' (see pstrain supervise --help)");
        return 2;
    }
    o.argv = argv + i + 1;
    int status = 1;
    pst_err_t err = {0};
    if (pst_supervise_run(&o, &status, &err) == PST_OK)
        return 0;
    pst_app_error("%s", err.msg);
    return status != 0 ? status : 1;
}
