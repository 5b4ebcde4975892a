/* The federated jobs as the program starts them: simulate (in this process or under mpirun),
 * serve, join (one process or an mpirun site), and keygen. */
#ifndef PST_APP_FED_FEDCMD_H
#define PST_APP_FED_FEDCMD_H

#include "app/plan/plan.h"

typedef enum { PST_FEDCMD_SIMULATE, PST_FEDCMD_SERVE, PST_FEDCMD_JOIN } pst_fedcmd_kind_t;

typedef struct pst_fedcmd_opts {
    pst_fedcmd_kind_t kind;
    pst_plan_args_t plan; /* CONFIG, --set, --out, -q */
    const char *server;   /* join: overrides fed.server, or NULL */
    const char *site;     /* join: overrides fed.site, or NULL */
} pst_fedcmd_opts_t;

/* Loads and checks the configuration, then runs the job (under mpirun: this rank's part). Serve
 * stops cleanly on SIGINT and SIGTERM, writing its outputs. Errors go to stderr. Returns the
 * process exit status: 0 success, 1 failure, 2 serve under mpirun. */
int pst_fedcmd_run(const pst_fedcmd_opts_t *opts);

/* Writes a CURVE key pair as PREFIX.key (mode 0600) and PREFIX.pub, never overwriting, and
 * prints the public key. Returns the process exit status: 0 success, 1 failure. */
int pst_fedcmd_keygen(const char *prefix);

#endif
