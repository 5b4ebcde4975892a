/* Distributed runs under mpirun: which ranks serve, which train, and how they meet. */
#include "cli/cluster.h"

#include <stdlib.h>

#include "cli/cli.h"

static int env_int(const char *name)
{
    const char *v = getenv(name);
    return v ? atoi(v) : 0;
}

bool pst_cluster_launched(void)
{
    return env_int("OMPI_COMM_WORLD_SIZE") > 1 || env_int("PMI_SIZE") > 1 ||
           env_int("PMIX_SIZE") > 1;
}

int pst_cluster_abort_early(int status)
{
    return status;
}

int pst_cluster_train(const pst_config_t *cfg, const pst_train_args_t *args)
{
    pst_cli_error("distributed training is not available in this build");
    return 1;
}
