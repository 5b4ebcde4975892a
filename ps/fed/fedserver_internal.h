/* Federated server internals shared by fedserver.c (rounds, the site protocol) and feddone.c (the
 * end of a run: DONE messages and their acknowledgements). */
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
    bool told;  /* was sent DONE */
    bool acked; /* acknowledged its DONE */
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
    bool started_any;   /* this server started a round (the first waits for the expected sites) */
    bool final_weights; /* the DONE messages carry the final weights (not stopped early) */
    double run_started, round_started;
    bool stepping; /* driven by pst_fedserver_step: the run's clock has started */
    pst_fedtraffic_t traffic;
};

/* fedserver.c */
site_link_t *pst_fedserver_link(pst_fedserver_t *srv, int index); /* NULL: out of memory */
const char *pst_fedserver_site_name(pst_fedserver_t *srv, int index);
Pst__Header pst_fedserver_header(int op, const char *site);
/* Sends to a registered site over its latest connection. */
int pst_fedserver_send_site(pst_fedserver_t *srv, int index, Pst__Header *h,
                            const pst_wire_payload_t *payload, pst_err_t *err);
/* Waits for a message, at most until the open round's deadline or a poll tick. */
int pst_fedserver_wait_input(pst_fedserver_t *srv, double now);
/* Receives and handles what is waiting, at most a batch of messages, as if at now (< 0: the
 * clock's time when each arrives). */
int pst_fedserver_drain(pst_fedserver_t *srv, double now);

/* feddone.c */
/* Sends DONE (with the final weights when srv->final_weights) to every connected site, or with
 * only_new to the ready sites not told yet. Returns the sites told. */
int pst_fedserver_send_done(pst_fedserver_t *srv, bool only_new);
/* DONE again to a site told but not acked that came back over a new connection. */
void pst_fedserver_done_again(pst_fedserver_t *srv, int index);
/* An ACK of a site: marks its DONE delivered. */
void pst_fedserver_on_done_ack(pst_fedserver_t *srv, const pst_wire_msg_t *msg);
/* Waits until every told site acknowledged its DONE, for up to cfg.heartbeat_timeout; logs the
 * sites that did not. */
int pst_fedserver_await_acks(pst_fedserver_t *srv, pst_err_t *err);
/* After the last round (restored finished): hands the final weights to the expected sites as
 * they come back, for up to the start timeout. */
int pst_fedserver_hand_over(pst_fedserver_t *srv, pst_err_t *err);

#endif
