/* The server side of federated training as the program runs it: the session's model becomes the
 * contract every site receives, the coordinator and the network server run the rounds, each
 * round is scored on the session's validation rows and reported, and the final model is the
 * session's. Used by `pstrain fed serve` and by rank 0 of `mpirun pstrain fed simulate`. */
#ifndef PST_APP_FED_FEDSERVE_H
#define PST_APP_FED_FEDSERVE_H

#include <stdint.h>

#include "app/fed/fedreport.h"
#include "app/session.h"
#include "common/fed/fedkeys.h"
#include "ps/fed/fedcoord.h"
#include "ps/fed/fedserver.h"

typedef struct pst_fedserve_net {
    const char *endpoint;             /* to bind */
    const pst_fedkey_pair_t *key;     /* CURVE server pair, or NULL for plaintext */
    const pst_fedkey_list_t *allowed; /* with key */
    int expected_sites;               /* round 1 waits for them (fed.start_timeout at most) */
} pst_fedserve_net_t;

typedef struct pst_fedserve {
    pst_session_t *s;
    pst_fedcoord_t *coord;
    pst_fedserver_t *srv;
    pst_fedreport_t report;
    char endpoint[256]; /* bound */
    bool checkpoint;    /* fed serve: the state is checkpointed after every round (fedresume) */
} pst_fedserve_t;

/* Builds the coordinator from the session's model and fed.* keys and binds the server. */
int pst_fedserve_open(pst_fedserve_t *fs, pst_session_t *s, const pst_fedserve_net_t *net,
                      pst_err_t *err);
/* Runs every round; afterwards the session's model holds the final weights and s->extra the
 * "fed" report section. PST_ESTATE when stopped early (the report covers the rounds run). */
int pst_fedserve_run(pst_fedserve_t *fs, pst_err_t *err);
/* Stops a running server from a signal handler. */
void pst_fedserve_stop(pst_fedserve_t *fs);
void pst_fedserve_close(pst_fedserve_t *fs);

#endif
