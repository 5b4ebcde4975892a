/* `mpirun -np K pstrain fed join CONFIG --server tcp://HOST:PORT`: one site of a federated
 * deployment as an mpirun job. The federated server sees one site: one connection, one id, one
 * update a round. Inside the site the first cluster.servers ranks are parameter servers and the
 * others workers, as in `pstrain train` under mpirun; worker 0 holds the connection and the run
 * directory, and every round the workers train the round's global weights together, each on its
 * rank-strided share of the site's rows, through the servers (BSP: W workers of batch b train
 * like one process of batch W·b). */
#ifndef PST_APP_FED_FEDJOIN_MPI_H
#define PST_APP_FED_FEDJOIN_MPI_H

#include "app/fed/fedjoin.h"
#include "common/config.h"

/* Runs this rank's part of the site; returns the exit status (the worst of all ranks). */
int pst_fedjoin_mpi(const pst_config_t *cfg, const pst_fedjoin_args_t *args);

#endif
