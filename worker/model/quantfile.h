/* A quantised model in the model file (pst.QuantModel, Model field 19): int8 weights and their
 * scales, and the arena's other floats, checked on read before anything is allocated. */
#ifndef PST_WORKER_MODEL_QUANTFILE_H
#define PST_WORKER_MODEL_QUANTFILE_H

#include <stddef.h>

#include "common/err.h"
#include "pstrain.pb-c.h"
#include "worker/model/quant.h"

/* Fills msg (initialised here) from q and the float arena params (n_params): the arena's values
 * outside q's weights go to msg->rest. msg points into q; what it allocates is freed by
 * pst_quantfile_msg_fini. */
int pst_quantfile_to_msg(const pst_quant_t *q, const float *params, size_t n_params,
                         Pst__QuantModel *msg, pst_err_t *err);
void pst_quantfile_msg_fini(Pst__QuantModel *msg);

/* Reads msg (origin names it in errors) into *q and the rebuilt float arena *params (n_params):
 * the quantised weights dequantised, the rest copied. Caller owns both. */
int pst_quantfile_from_msg(const Pst__QuantModel *msg, const char *origin, pst_quant_t **q,
                           float **params, size_t *n_params, pst_err_t *err);

#endif
