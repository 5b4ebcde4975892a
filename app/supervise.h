/* Reruns a failed command (an mpirun training job with --resume auto) until it succeeds or the
 * restarts are spent: jobs that finish without a person. */
#ifndef PST_APP_SUPERVISE_H
#define PST_APP_SUPERVISE_H

#include "common/err.h"

typedef struct pst_supervise_opts {
    char *const *argv; /* the command and its arguments, NULL-terminated */
    int restarts;      /* reruns after the first attempt (>= 0) */
    double delay_s;    /* pause before each rerun */
} pst_supervise_opts_t;

/* Runs the command, and again after each failure (a non-zero exit or a signal), logging every
 * restart with the failure that caused it. *status: the last attempt's exit status (128 + the
 * signal when it was killed). PST_OK when an attempt succeeded; PST_ESTATE when every attempt
 * failed; PST_EIO when the command cannot be started. */
int pst_supervise_run(const pst_supervise_opts_t *opts, int *status, pst_err_t *err);

#endif
