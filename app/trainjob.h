/* `pstrain train` as a job: load and check the configuration, then train in this process (dense
 * or sparse) or, under mpirun, as this rank's part of a distributed run. */
#ifndef PST_APP_TRAINJOB_H
#define PST_APP_TRAINJOB_H

#include "app/mpi/cluster.h"

/* Runs the training args describe (CONFIG, --set overrides, --out, --resume, quiet) and writes
 * its run directory; prints epochs and results, and errors on stderr (a configuration error once
 * per mpirun job). Returns the process exit status: 0 success, 1 failure, 2 a run that needs
 * mpirun (data.train per worker, --resume) started without it. */
int pst_trainjob_run(const pst_train_args_t *args);

#endif
