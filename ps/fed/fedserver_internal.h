/* The federated server's state, shared by the files of its server (fedserver.c) only. */
#ifndef PST_PS_FED_FEDSERVER_INTERNAL_H
#define PST_PS_FED_FEDSERVER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fed/fedauth.h"
#include "common/net/wire.h"
#include "ps/fed/fedserver.h"
#include "ps/fed/fedtrust.h"

/* Where a registered site is reached: the routing id of its latest connection. */
typedef struct site_link {
    uint8_t route[256];
    size_t route_len; /* 0: no connection known */
    double last_seen;
    bool ready; /* said it is ready to train (a heartbeat or an update after its welcome) */
    bool told;  /* was sent DONE by hand_over */
} site_link_t;

struct pst_fedserver {
    pst_fedserver_cfg_t cfg;
    uint8_t *contract; /* (cfg.contract_len) own copy */
    pst_fedcoord_t *coord;
    size_t n;
    void *ctx, *sock;
    bool own_ctx;
    pst_wire_t *wire;
    pst_fedauth_t *auth;
    site_link_t *links; /* (links_cap) by registry index */
    int links_cap;
    float *scratch; /* (n) a decoded update */
    atomic_int stop;
    pst_fedtrust_t *trust; /* key bindings, the registry's size, rows claims */
    pst_fedserver_stats_t stats;
    bool round_open, waiting_logged;
    bool started_any; /* this server started a round (the first waits for the expected sites) */
    double run_started, round_started;
    bool stepping; /* driven by pst_fedserver_step: the run's clock has started */
    pst_fedtraffic_t traffic;
};

#endif
