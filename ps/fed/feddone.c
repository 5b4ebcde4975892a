/* The end of a federated run: DONE messages (the final weights) and their acknowledgements.
 *
 * A DONE of a large model may still sit in the socket's queue when the server is finished; closing
 * the socket with a fixed linger dropped it for a site that was descheduled (or stopped) for longer
 * than that, and the site then waited for its fed.server_timeout. So each site answers DONE with an
 * ACK, and the server stays until every told site acknowledged, sending DONE again to a site that
 * reconnects meanwhile, for at most fed.heartbeat_timeout: the time after which a round gives up on
 * a silent site too. Sites that never acknowledge (older ones) cost that bounded wait only. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "ps/fed/fedserver_internal.h"

#define UNACKED_NAMES 512 /* bytes of site names in the log line of the sites that did not ack */

static int send_done_to(pst_fedserver_t *srv, int index)
{
    Pst__Header h = pst_fedserver_header(PST__OP__OP_FED_DONE, pst_fedserver_site_name(srv, index));
    h.clock = pst_fedcoord_round(srv->coord);
    h.count = srv->final_weights ? srv->n : 0;
    h.codec = (Pst__Codec)srv->cfg.down_codec;
    pst_wire_payload_t p = {.values = pst_fedcoord_global(srv->coord)};
    return pst_fedserver_send_site(srv, index, &h, srv->final_weights ? &p : NULL, NULL);
}

int pst_fedserver_send_done(pst_fedserver_t *srv, bool only_new)
{
    pst_fedround_t *sites = pst_fedcoord_sites(srv->coord);
    int told = 0;
    for (int i = 0; i < pst_fedround_n_sites(sites); i++) {
        site_link_t *l = pst_fedserver_link(srv, i);
        if (only_new && (l == NULL || !l->ready || l->told))
            continue;
        if (send_done_to(srv, i) == PST_OK && l != NULL)
            told += (l->told = true);
    }
    return told;
}

void pst_fedserver_done_again(pst_fedserver_t *srv, int index)
{
    if (send_done_to(srv, index) == PST_OK)
        pst_info("fed server: %s reconnected before acknowledging the end of the run; DONE sent "
                 "again",
                 pst_fedserver_site_name(srv, index));
}

void pst_fedserver_on_done_ack(pst_fedserver_t *srv, const pst_wire_msg_t *msg)
{
    int index = pst_fedround_find(pst_fedcoord_sites(srv->coord), msg->hdr->site);
    site_link_t *l = index >= 0 ? pst_fedserver_link(srv, index) : NULL;
    /* Only the ACK of a DONE counts; a stray one is ignored rather than answered, as an answer to
     * an answer could loop. */
    if (l == NULL || !l->told || l->acked || msg->hdr->clock != pst_fedcoord_round(srv->coord))
        return;
    l->acked = true;
    srv->stats.done_acked++;
    pst_debug("fed server: %s has the end of the run", msg->hdr->site);
}

/* Told sites that have not acknowledged; their names go to names (may be cut short). */
static int unacked(pst_fedserver_t *srv, char *names, size_t cap)
{
    int k = 0;
    size_t used = 0;
    names[0] = '\0';
    for (int i = 0; i < pst_fedround_n_sites(pst_fedcoord_sites(srv->coord)); i++) {
        const site_link_t *l = pst_fedserver_link(srv, i);
        if (l == NULL || !l->told || l->acked)
            continue;
        if (used < cap) {
            int w = snprintf(names + used, cap - used, "%s%s", k ? ", " : "",
                             pst_fedserver_site_name(srv, i));
            used += w > 0 ? (size_t)w : 0;
        }
        k++;
    }
    return k;
}

int pst_fedserver_await_acks(pst_fedserver_t *srv, pst_err_t *err)
{
    double started = pst_clock_seconds();
    char names[UNACKED_NAMES];
    int left;
    while ((left = unacked(srv, names, sizeof names)) > 0 && !atomic_load(&srv->stop)) {
        double now = pst_clock_seconds();
        if (now - started >= srv->cfg.heartbeat_timeout)
            break;
        if (pst_fedserver_wait_input(srv, now) != PST_OK)
            return pst_err_set(err, PST_EIO, "fed server: poll: %s", zmq_strerror(errno));
        int rc = pst_fedserver_drain(srv, -1.0);
        if (rc != PST_OK)
            return pst_err_set(err, rc, "fed server: receiving: %s", zmq_strerror(errno));
    }
    srv->stats.done_unacked = (uint64_t)left;
    if (left > 0)
        pst_warn("fed server: %d site(s) did not acknowledge the end of the run within %.1f s "
                 "(fed.heartbeat_timeout): %s",
                 left, pst_clock_seconds() - started, names);
    return PST_OK;
}

int pst_fedserver_hand_over(pst_fedserver_t *srv, pst_err_t *err)
{
    int told = 0, want = srv->cfg.expected_sites;
    srv->final_weights = true;
    while (told < want && !atomic_load(&srv->stop)) {
        double now = pst_clock_seconds();
        if (now - srv->run_started >= srv->cfg.start_timeout) {
            pst_warn("fed server: %d of %d sites did not come back for the final weights",
                     want - told, want);
            break;
        }
        if (pst_fedserver_wait_input(srv, now) != PST_OK)
            return pst_err_set(err, PST_EIO, "fed server: poll: %s", zmq_strerror(errno));
        int rc = pst_fedserver_drain(srv, -1.0);
        if (rc != PST_OK)
            return pst_err_set(err, rc, "fed server: receiving: %s", zmq_strerror(errno));
        told += pst_fedserver_send_done(srv, true);
    }
    return pst_fedserver_await_acks(srv, err);
}
