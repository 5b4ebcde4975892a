/* The ranks of an mpirun job: roles (servers first, then workers), the one-time exchange of
 * server endpoints and readiness, and starting a parameter server from the configuration. */
#ifndef PST_APP_MPI_RANKS_H
#define PST_APP_MPI_RANKS_H

#include <mpi.h>
#include <stdbool.h>

#include "common/config.h"
#include "common/fed/fedkeys.h"
#include "ps/server.h"

#define PST_ENDPOINT_LEN 256

/* What every rank tells every other rank once, at start-up. */
typedef struct pst_hello {
    int32_t ok;
    char endpoint[PST_ENDPOINT_LEN]; /* servers: where to connect */
} pst_hello_t;

typedef struct pst_ranks {
    int rank, size, n_servers, n_workers;
    int worker;          /* index among workers, or -1 on a server rank */
    MPI_Comm role;       /* the ranks of this rank's role (servers or workers) */
    bool one_host;       /* every rank runs on this host */
    pst_hello_t *hellos; /* (size) after pst_ranks_exchange */
    /* cluster.security=curve: this rank's CURVE key pair, made in memory for this job only, and
     * every rank's public key (rank order), shared over MPI before any server binds.
     * token (auto on one host's loopback): the same, but every rank's secret key is shared and
     * used as its token in a PLAIN handshake (authenticated, not encrypted). */
    bool curve, token;
    pst_fedkey_pair_t key;
    char (*public_keys)[PST_FEDKEY_Z85 + 1]; /* (size) when curve; the tokens when token */
} pst_ranks_t;

/* Reads rank and size, assigns roles from cluster.servers, splits the role communicator, and
 * with cluster.security curve, token or auto makes and shares the job's keys. Collective. Fails (on
 * every rank alike) when there would be no worker. */
int pst_ranks_init(pst_ranks_t *r, const pst_config_t *cfg, pst_err_t *err);
void pst_ranks_fini(pst_ranks_t *r);

/* The public keys of the servers, in server order (when r->curve). */
void pst_ranks_server_keys(const pst_ranks_t *r, const char **keys);

/* Every rank shares its hello; true when every rank is ok. Collective. */
bool pst_ranks_exchange(pst_ranks_t *r, const pst_hello_t *mine);
/* The endpoints of the servers, in server order (after the exchange). */
void pst_ranks_endpoints(const pst_ranks_t *r, const char **endpoints);

/* Waiting ranks sleep between polls: Open MPI completes blocking calls by spinning, which would
 * hold a core the working ranks need. pst_ranks_nap sleeps a millisecond; pst_ranks_wait
 * completes a nonblocking request that way. */
void pst_ranks_nap(void);
void pst_ranks_wait(MPI_Request *req);

/* Creates and binds this server rank's server. ckpt_dir: checkpoint directory or NULL; resume:
 * restore from it. hello->endpoint receives the bound endpoint. */
int pst_ranks_open_server(const pst_ranks_t *r, const pst_config_t *cfg, const char *ckpt_dir,
                          bool resume, pst_server_t **srv, pst_hello_t *hello, pst_err_t *err);

#endif
