/* Federated coordinator: the global model and what a round does to it. Sites register and are
 * sampled (ps/fed/fedround), their updates are collected, combined (common/fed/fedagg) and, with
 * differential privacy, accounted (common/fed/dpacct). No I/O and no clock: the caller passes the
 * time and moves the bytes, so a simulation in one process, a simulation under mpirun and a
 * deployment over the network run the very same rounds. */
#ifndef PST_PS_FED_FEDCOORD_H
#define PST_PS_FED_FEDCOORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/fed/fedagg.h"
#include "ps/fed/fedround.h"
#include "ps/fed/fedweight.h"

typedef struct pst_fedcoord_cfg {
    pst_fedround_cfg_t round;  /* sampling and when a round closes */
    pst_fedagg_cfg_t agg;      /* aggregation; agg.dp_clip > 0 turns on privacy accounting */
    uint64_t rounds;           /* rounds to run, >= 1 */
    double dp_delta;           /* epsilon is reported at this delta */
    double dp_budget;          /* > 0: no round starts that would spend more epsilon */
    pst_fedweight_t weighting; /* the answered updates' weights in the mean (fed.weighting) */
} pst_fedcoord_cfg_t;

/* What one finished round did. */
typedef struct pst_fedcoord_round {
    uint64_t round;
    int asked, answered;
    int refused;     /* updates offered while the round was open that did not count (late for an
                      * earlier round, unasked, duplicate) */
    bool aggregated; /* false: no usable update (none arrived, or the rule could not combine the
                      * ones that did: global weights unchanged; why is in the end() error) */
    pst_fedround_close_t closed_by;
    double samples;       /* rows behind the answered updates */
    double train_loss;    /* the answered sites' mean training loss, weighted by their rows; NaN if
                           * none answered */
    double update_norm;   /* L2 norm of the combined update (after DP noise) */
    int n_skipped;        /* updates left out for NaN or infinite values */
    int capped;           /* claims lowered by fed.weighting=capped */
    double sampling_rate; /* sites asked / sites eligible when the round started */
    double epsilon;       /* spent after this round at dp_delta; 0 without DP */
} pst_fedcoord_round_t;

typedef struct pst_fedcoord pst_fedcoord_t;

/* A coordinator for a model of n floats starting from init (copied). Checks cfg. Caller owns the
 * result. */
pst_fedcoord_t *pst_fedcoord_new(const pst_fedcoord_cfg_t *cfg, const float *init, size_t n,
                                 pst_err_t *err);
void pst_fedcoord_destroy(pst_fedcoord_t **self_p);

/* The registry of sites: register, find, mark seen (see ps/fed/fedround.h). */
pst_fedround_t *pst_fedcoord_sites(pst_fedcoord_t *c);
/* The global weights (n floats), updated by every aggregated round. */
float *pst_fedcoord_global(pst_fedcoord_t *c);
size_t pst_fedcoord_n_params(const pst_fedcoord_t *c);
/* Rounds started so far (the open round's number while one is open). */
uint64_t pst_fedcoord_round(const pst_fedcoord_t *c);
/* True once no round is left: all rounds ran, or the privacy budget stopped the run. */
bool pst_fedcoord_finished(const pst_fedcoord_t *c);
bool pst_fedcoord_budget_stopped(const pst_fedcoord_t *c);
/* Epsilon spent so far at dp_delta (0 without DP). */
double pst_fedcoord_epsilon(const pst_fedcoord_t *c);

/* Checkpoint support: the aggregator (its optimizer state, rounds and noise stream), and the
 * round the coordinator resumes after (its registry restored): the run is finished when no round
 * is left. PST_EINVAL with differential privacy on (its accountant is not checkpointed). */
pst_fedagg_t *pst_fedcoord_agg(pst_fedcoord_t *c);
int pst_fedcoord_resume_after(pst_fedcoord_t *c, uint64_t round, pst_err_t *err);

/* Starts the next round at time now. PST_OK: *asked (valid until the next begin) holds the
 * n_asked site indices asked, in sampling order. PST_ENOTFOUND: fewer than min_sites sites are
 * eligible; nothing started, try again later. PST_ESTATE: a round is open, or the run is finished
 * (the budget check happens here: when the next round would spend more than dp_budget, the run
 * finishes instead). */
int pst_fedcoord_begin(pst_fedcoord_t *c, double now, const int **asked, int *n_asked,
                       pst_err_t *err);

/* Offers site index's update for round: delta (n floats, the site's weights minus the global
 * weights of that round), the rows behind it and its mean training loss. Only an ACCEPTED update
 * is kept (copied); any offer marks the site as seen. */
pst_fedround_verdict_t pst_fedcoord_offer(pst_fedcoord_t *c, int index, uint64_t round,
                                          const float *delta, double samples, double loss,
                                          double now);
/* The open round stops waiting for a site (it disconnected, went silent or declined). */
bool pst_fedcoord_drop(pst_fedcoord_t *c, int index);

/* Whether the open round has closed at now; *deadline (may be NULL) gets when it will close. */
pst_fedround_close_t pst_fedcoord_poll(const pst_fedcoord_t *c, double now, double *deadline);

/* Ends the open round: combines the accepted updates, taken in the order the sites were asked (so
 * the result does not depend on the order they arrived in), applies them to the global weights
 * and accounts the privacy spent. out is always filled. PST_OK when the round aggregated or
 * nobody answered (out->aggregated false); otherwise the aggregator's error (for example Krum
 * with too few updates), with the global weights unchanged and the round still over. */
int pst_fedcoord_end(pst_fedcoord_t *c, double now, pst_fedcoord_round_t *out, pst_err_t *err);

/* The seed of a site's local training in a round: a function of the run's seed, the round and
 * the site's id only, so a site trains alike whichever process plays it and whenever it
 * registered. */
uint64_t pst_fedcoord_task_seed(uint64_t run_seed, uint64_t round, const char *site);

#endif
