/* Distributed runs under mpirun: rank roles, endpoint exchange, servers and worker hooks. */
#ifndef PST_APP_MPI_CLUSTER_H
#define PST_APP_MPI_CLUSTER_H

#include <stdbool.h>

#include "common/config.h"

#define PST_MAX_SETS 64
/* --resume auto --out DIR: resume DIR's run when it has a checkpoint, else start it there. */
#define PST_RESUME_AUTO "auto"

typedef struct pst_train_args {
    const char *config;
    const char *sets[PST_MAX_SETS];
    int n_sets;
    const char *out;
    const char *resume;
    bool quiet, verbose;
    bool force; /* --out may name an existing non-empty directory */
} pst_train_args_t;

/* True when this process was started by mpirun (or srun) with more than one rank. */
bool pst_cluster_launched(void);
/* Runs this rank's role in a distributed training run; returns the exit status. */
int pst_cluster_train(const pst_config_t *cfg, const pst_train_args_t *args);
/* False on every rank but the first of an mpirun job, so a configuration error that every rank
 * meets is printed once. */
bool pst_cluster_is_first_rank(void);

#endif
