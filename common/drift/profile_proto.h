/* Drift profile <-> pst.DriftProfile (proto/pstrain.proto), as model files store it. */
#ifndef PST_COMMON_DRIFT_PROFILE_PROTO_H
#define PST_COMMON_DRIFT_PROFILE_PROTO_H

#include "common/drift/profile.h"
#include "pstrain.pb-c.h"

/* Fills msg (initialised by the caller) with views of p's arrays; the messages it allocates are
 * released by pst_drift_proto_free. */
int pst_drift_to_proto(const pst_drift_profile_t *p, Pst__DriftProfile *msg, pst_err_t *err);
void pst_drift_proto_free(Pst__DriftProfile *msg);

/* A new message viewing d's arrays (caller frees the message only), or NULL without memory. */
Pst__DriftDist *pst_drift_dist_to_proto(const pst_drift_dist_t *d);
/* d from m with every field checked; what names the distribution in errors ("feature"). */
int pst_drift_dist_from_proto(const Pst__DriftDist *m, pst_drift_dist_t *d, const char *origin,
                              const char *what, pst_err_t *err);

/* A new profile from msg with every field checked (kinds, ascending finite edges, bin counts,
 * sizes within the caps); n_inputs is what the model takes (its named columns or features);
 * origin names the file in errors. Caller owns *out. */
int pst_drift_from_proto(const Pst__DriftProfile *msg, size_t n_inputs, const char *origin,
                         pst_drift_profile_t **out, pst_err_t *err);

#endif
