/* pstrain export: a model file loaded, checked to be a dense model, emitted as an ONNX graph and
 * written atomically. */
#include "app/export.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/atomicfile.h"
#include "common/onnx/onnxgraph.h"
#include "worker/model/ensemble.h"
#include "worker/model/modelfile.h"
#include "worker/model/onnxensemble.h"
#include "worker/model/onnxmodel.h"
#include "worker/model/sparsefile.h"

#define PRODUCER_VERSION "0.1.0"

/* A sparse model has no ONNX form here: say so and why. */
static int refuse_sparse(const char *path, pst_err_t *err)
{
    bool sparse = false;
    int rc = pst_sparsefile_probe(path, &sparse, err);
    if (rc == PST_OK && sparse)
        return pst_err_set(err, PST_EINVAL,
                           "%s: a sparse model (model.type sparse_lr, fm or wide_deep) cannot be "
                           "exported to ONNX: its hashed input keys have no ONNX form; export "
                           "takes the dense models (linear, logistic, softmax, MLP, CNN, RNN) and "
                           "their ensembles",
                           path);
    return rc;
}

/* The model file or the ensemble file, loaded; exactly one of the two is set. */
typedef struct exported {
    pst_modelfile_t mf;
    pst_ensemble_t ens;
    bool ensemble;
} exported_t;

static int write_graph(const exported_t *x, const char *out, pst_err_t *err)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("pstrain", err);
    if (!g)
        return pst_err_code(err, PST_ENOMEM);
    int rc = pst_onnx_graph_describe(g, "pstrain", PRODUCER_VERSION,
                                     "raw rows in, the fitted preprocessing and the model, "
                                     "predictions out");
    if (rc != PST_OK)
        rc = pst_err_set(err, rc, "out of memory");
    if (rc == PST_OK)
        rc = x->ensemble ? pst_onnx_emit_ensemble(g, &x->ens, err)
                         : pst_onnx_emit_model(g, &x->mf, err);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rc == PST_OK)
        rc = pst_onnx_graph_pack(g, &buf, &len, err);
    if (rc == PST_OK)
        rc = pst_write_file_atomic(out, buf, len, err);
    free(buf);
    pst_onnx_graph_destroy(&g);
    return rc;
}

int pst_export_onnx(const pst_export_opts_t *opts, pst_err_t *err)
{
    exported_t x = {0};
    int rc = refuse_sparse(opts->model, err);
    if (rc == PST_OK)
        rc = pst_ensemble_probe(opts->model, &x.ensemble, err);
    if (rc == PST_OK)
        rc = x.ensemble ? pst_ensemble_load(&x.ens, opts->model, err)
                        : pst_modelfile_load(&x.mf, opts->model, err);
    if (rc == PST_OK && x.mf.quant)
        rc = pst_err_set(err, PST_EINVAL,
                         "%s: an int8 model (pstrain quantize); ONNX export takes the float model "
                         "it was quantised from",
                         opts->model);
    if (rc == PST_OK && (rc = write_graph(&x, opts->out, err)) != PST_OK)
        pst_err_prefix(err, rc, "exporting %s: ", opts->model);
    pst_modelfile_fini(&x.mf);
    pst_ensemble_fini(&x.ens);
    return rc;
}
