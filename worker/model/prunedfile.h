/* Pruned models in the model file (pst.Model field pruned): weight tensors with many exact
 * zeros are stored as a keep-bitmap and the kept values, the rest of the arena as usual. The
 * round trip is bit-exact (a stored -0.0 stays -0.0). */
#ifndef PST_WORKER_MODEL_PRUNEDFILE_H
#define PST_WORKER_MODEL_PRUNEDFILE_H

#include <stddef.h>

#include "common/err.h"
#include "pstrain.pb-c.h"
#include "worker/model/modelfile.h"

/* What one pack of a pruned model holds until the message is serialised. */
typedef struct pst_prunedfile_pack {
    Pst__PrunedParams msg;
    Pst__PrunedTensor *tensors; // (msg.n_tensors)
    Pst__PrunedTensor **ptrs;
    float *rest;  // params without the compacted tensors
    uint8_t *raw; /* one block: every tensor's values, then every tensor's bitmap */
} pst_prunedfile_pack_t;

/* Points m->params and m->pruned at the compact form of mf's parameters when some weight
 * tensor of a dense or conv2d layer is at least 1/16 exact zeros (the bitmap costs 1/32 of the
 * dense bytes); otherwise leaves m alone. pk holds the buffers: pst_prunedfile_pack_fini after
 * serialising. */
int pst_prunedfile_pack(const pst_modelfile_t *mf, Pst__Model *m, pst_prunedfile_pack_t *pk,
                        pst_err_t *err);
void pst_prunedfile_pack_fini(pst_prunedfile_pack_t *pk);

/* The number of floats m's arena holds with its pruned tensors expanded, after checking every
 * bound of m->pruned (order, overlap, bitmap and value lengths): nothing is allocated for a
 * corrupt file. path names the file in errors. */
int pst_prunedfile_count(const Pst__Model *m, const char *path, size_t *n_params, pst_err_t *err);
/* Expands m's arena into params (n_params floats from pst_prunedfile_count). */
void pst_prunedfile_expand(const Pst__Model *m, float *params, size_t n_params);

#endif
