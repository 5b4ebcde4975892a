/* Encoder <-> pst.Encoder (proto/pstrain.proto), as model files store it. */
#ifndef PST_COMMON_DATA_ENCODER_PROTO_H
#define PST_COMMON_DATA_ENCODER_PROTO_H

#include "common/data/encoder.h"
#include "pstrain.pb-c.h"

/* Fills msg (initialised by the caller) with views of e's strings; *inputs (caller frees with
 * pst_encoder_proto_free) holds the per-input messages. */
int pst_encoder_to_proto(const pst_encoder_t *e, Pst__Encoder *msg, pst_err_t *err);
void pst_encoder_proto_free(Pst__Encoder *msg);

/* A new encoder from msg, every field checked (kinds, types, sorted vocab, widths, n_features);
 * origin names the file in errors. Caller owns *out. */
int pst_encoder_from_proto(const Pst__Encoder *msg, const char *origin, pst_encoder_t **out,
                           pst_err_t *err);

#endif
