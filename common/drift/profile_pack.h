/* Drift profile <-> pst.DriftProfilePacked (proto/pstrain.proto): the compact form model files
 * write. Lossless: a profile read back has the same edges, counts, range and names, bit for bit
 * (a -0.0 reads back as 0.0, as in the plain form).
 *
 * A numeric input's edges and range go on the coarsest power-of-two grid that holds them
 * exactly (step 1 for integer data such as pixels), each edge as its step from the one before
 * (a byte or two where a double took eight); counts stay exact varints. Names of the form
 * f<index> (plain features) are left out. Categorical inputs, and numeric ones the grid cannot
 * hold, are stored as plain pst.DriftDist messages. */
#ifndef PST_COMMON_DRIFT_PROFILE_PACK_H
#define PST_COMMON_DRIFT_PROFILE_PACK_H

#include "common/drift/profile.h"
#include "pstrain.pb-c.h"

/* Fills msg (initialised by the caller) from p; what it allocates is released by
 * pst_drift_packed_free (msg may view p's arrays: keep p alive until then). */
int pst_drift_to_packed(const pst_drift_profile_t *p, Pst__DriftProfilePacked *msg, pst_err_t *err);
void pst_drift_packed_free(Pst__DriftProfilePacked *msg);

/* A new profile from msg, checked as pst_drift_from_proto checks the plain form (and every grid
 * value bounded, every step positive); n_inputs and origin as there. Caller owns *out. */
int pst_drift_from_packed(const Pst__DriftProfilePacked *msg, size_t n_inputs, const char *origin,
                          pst_drift_profile_t **out, pst_err_t *err);

#endif
