/* fed serve across restarts: after every round the server's state (ps/fed/fedstate) is written
 * atomically to RUN/checkpoints/fed-server.ckpt; a server started again with the same --out
 * carries on after the checkpoint's round, and the sites, which keep running and reconnect on
 * their own, are asked the next round as soon as they are heard from again. */
#ifndef PST_APP_FED_FEDRESUME_H
#define PST_APP_FED_FEDRESUME_H

#include <stdbool.h>
#include <stddef.h>

#include "app/fed/fedserve.h"

/* Whether the run directory out (NULL: none given) holds a server checkpoint. */
bool pst_fedresume_found(const char *out);

/* Writes the state of a server between rounds (fs->s's run directory). */
int pst_fedresume_save(pst_fedserve_t *fs, pst_err_t *err);

/* After pst_fedserve_open with the run directory opened for appending: restores the checkpoint,
 * keeps metrics.jsonl's lines of the rounds it holds (dropping any later, replayed ones) and makes
 * the first round wait for every restored site (fed.start_timeout at most). *round: the round
 * the run resumes after. */
int pst_fedresume_restore(pst_fedserve_t *fs, uint64_t *round, pst_err_t *err);

#endif
