/* Federated round bookkeeping: the registered sites, seeded sampling, when a round closes and
 * which updates count. Pure state: the caller passes the time and does all I/O, so a simulation
 * and a deployment run the same rounds. */
#ifndef PST_PS_FED_FEDROUND_H
#define PST_PS_FED_FEDROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/rng.h"

#include "common/fed/fedkeys.h"

#define PST_FEDROUND_SITE_MAX PST_FEDKEY_NAME_MAX /* longest site id */

typedef struct pst_fedround_cfg {
    double fraction;       /* share of eligible sites asked, in (0, 1] */
    int min_sites;         /* fewest sites asked; a round waits until this many are eligible */
    int min_responses;     /* updates after which wait_after_min starts (capped at the asked) */
    double wait_after_min; /* seconds a round stays open after min_responses arrived */
    double round_timeout;  /* seconds after which a round closes whatever arrived */
    uint64_t seed;         /* sampling stream */
} pst_fedround_cfg_t;

/* Why a round closed. */
typedef enum {
    PST_FEDROUND_OPEN = 0, /* not closed (yet) */
    PST_FEDROUND_ALL,      /* every asked site answered (or was dropped) */
    PST_FEDROUND_MIN_WAIT, /* min_responses arrived and wait_after_min passed */
    PST_FEDROUND_TIMEOUT,  /* round_timeout passed */
} pst_fedround_close_t;

/* What happens to an update offered for (site, round). */
typedef enum {
    PST_FEDROUND_ACCEPTED = 0,
    PST_FEDROUND_LATE,      /* for a round that already closed: dropped */
    PST_FEDROUND_UNASKED,   /* the site was not asked in this round: dropped */
    PST_FEDROUND_DUPLICATE, /* the site already answered this round: dropped */
    PST_FEDROUND_FUTURE,    /* for a round that has not started: dropped */
} pst_fedround_verdict_t;

typedef struct pst_fedround pst_fedround_t;

/* Sites asked among n eligible: ceil(fraction * n), at least min_sites, at most n. */
int pst_fedround_sample_count(double fraction, int min_sites, int n_eligible);

/* Checks cfg. Caller owns the result. */
pst_fedround_t *pst_fedround_new(const pst_fedround_cfg_t *cfg, pst_err_t *err);
void pst_fedround_destroy(pst_fedround_t **self_p);

/* Registers a site id (1..PST_FEDROUND_SITE_MAX of letters, digits, '-', '_', '.'): a new site,
 * or a known one again (after a reconnect or a restart). Either way the site is eligible from the
 * next round that starts. Returns its index (>= 0, stable for the run) or a negative error. */
int pst_fedround_register(pst_fedround_t *r, const char *site, pst_err_t *err);
/* The index of a registered site id, or -1. */
int pst_fedround_find(const pst_fedround_t *r, const char *site);
const char *pst_fedround_site(const pst_fedround_t *r, int index);
int pst_fedround_n_sites(const pst_fedround_t *r);
/* Sites that may be asked: registered, and not silent since they last missed a round. */
int pst_fedround_n_eligible(const pst_fedround_t *r);
/* Any message from the site: one that missed a round is eligible again from the next round. */
void pst_fedround_seen(pst_fedround_t *r, int index);
/* The site is not eligible until it is seen (for example: registered, but not ready to train). */
void pst_fedround_hold(pst_fedround_t *r, int index);

/* Starts round `round` (> every earlier one) at time now: samples the asked sites among the
 * eligible ones, taken in order of their ids (so the sample does not depend on the order in which
 * sites registered). PST_ENOTFOUND (and nothing starts) while fewer than min_sites are
 * eligible; PST_ESTATE when a round is still open or round is not past the last one. *asked points
 * at the asked indices (valid until the next start), in sampling order. */
int pst_fedround_start(pst_fedround_t *r, uint64_t round, double now, const int **asked,
                       int *n_asked, pst_err_t *err);
/* Checkpoint support: the sampling stream (read or overwrite in place), and the number of the last
 * round run, set on a registry restored between rounds so that the next round is round + 1.
 * PST_ESTATE while a round is open. */
pst_rng_t *pst_fedround_rng(pst_fedround_t *r);
int pst_fedround_set_round(pst_fedround_t *r, uint64_t round, pst_err_t *err);

/* Whether a round is open, and its number (0 before the first). */
bool pst_fedround_is_open(const pst_fedround_t *r);
uint64_t pst_fedround_current(const pst_fedround_t *r);

/* Judges an update of site for round at time now; only ACCEPTED counts it as an answer. A late
 * update still proves the site alive (see pst_fedround_seen). */
pst_fedround_verdict_t pst_fedround_offer(pst_fedround_t *r, int index, uint64_t round, double now);
const char *pst_fedround_verdict_name(pst_fedround_verdict_t v);

/* Whether the open round is closed at now. *deadline (may be NULL) receives the time at which it
 * will close if nothing more arrives (+infinity for none). OPEN when no round is open. */
pst_fedround_close_t pst_fedround_poll(const pst_fedround_t *r, double now, double *deadline);
const char *pst_fedround_close_name(pst_fedround_close_t c);

/* The open round stops waiting for an asked site that has not answered (it disconnected, or went
 * silent): once every asked site answered or was dropped the round closes as ALL. An update the
 * site sends later in the round is still accepted. False when the site was not waited for. */
bool pst_fedround_drop(pst_fedround_t *r, int index);
/* Whether the open round still waits for the site: asked, not answered, not dropped. */
bool pst_fedround_waiting_for(const pst_fedround_t *r, int index);

/* Ends the open round: asked sites that did not answer are no longer eligible until they are
 * seen again. Returns how many answered. */
int pst_fedround_finish(pst_fedround_t *r);
int pst_fedround_n_answered(const pst_fedround_t *r);
/* Whether site answered the open (or just finished) round. */
bool pst_fedround_answered(const pst_fedround_t *r, int index);

#endif
