/* An ensemble file (bagging, voting, stacking, blending) as one ONNX graph: every member's own
 * preprocessing and layers over the shared raw input, then the vote or the meta model, as
 * pst_ensemble_apply computes it. */
#ifndef PST_WORKER_MODEL_ONNXENSEMBLE_H
#define PST_WORKER_MODEL_ONNXENSEMBLE_H

#include "common/err.h"
#include "common/onnx/onnxgraph.h"
#include "worker/model/ensemble.h"

/* Emits e into g, an empty graph, with the interface of worker/model/onnxmodel.h (the input and
 * classes of member 1). Soft voting is the weighted mean of the members' rows, hard voting the
 * weighted share of the members' predicted classes (ArgMax, OneHot), stacking and blending the
 * meta model on the members' rows side by side. */
int pst_onnx_emit_ensemble(pst_onnx_graph_t *g, const pst_ensemble_t *e, pst_err_t *err);

#endif
