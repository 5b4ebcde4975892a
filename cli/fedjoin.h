/* `pstrain fed join CONFIG --server tcp://HOST:PORT`: one site of a federated deployment. The
 * server's contract fixes the model, its preprocessing and the training settings; the site's own
 * configuration names its data (data.*) and how to reach the server (fed.server, fed.site,
 * fed.key, fed.server_key). The site's rows never leave it: only updates travel. */
#ifndef PST_FEDJOIN_H
#define PST_FEDJOIN_H

#include "common/config.h"

typedef struct pst_fedjoin_args {
    const char *server; /* overrides fed.server */
    const char *site;   /* overrides fed.site */
    const char *out;    /* run directory, or NULL for runs/NAME-STAMP */
} pst_fedjoin_args_t;

/* Runs the site until the server ends the run; returns the exit status. */
int pst_fedjoin_run(const pst_config_t *cfg, const pst_fedjoin_args_t *args);

/* The site id a configuration gives (fed.site, else the host name made a valid id) into buf. */
int pst_fedjoin_site_id(const pst_config_t *cfg, const char *override, char *buf, size_t cap,
                        pst_err_t *err);

#endif
