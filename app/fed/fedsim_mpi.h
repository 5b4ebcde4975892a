/* `mpirun -np N pstrain fed simulate`: rank 0 runs the federated server, ranks 1..N-1 play the
 * simulated sites (site i on rank 1 + i mod (N-1)) over ZeroMQ, through the same server, site
 * and coordinator code as a deployment. */
#ifndef PST_APP_FED_FEDSIM_MPI_H
#define PST_APP_FED_FEDSIM_MPI_H

#include "app/mpi/cluster.h"
#include "common/config.h"

/* Runs this rank's part; returns the exit status (the worst of all ranks). */
int pst_fedsim_mpi(const pst_config_t *cfg, const pst_train_args_t *args);

#endif
