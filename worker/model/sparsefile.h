/* Sparse model files: a sparse_lr, fm or wide_deep model as a pst.Model of version 2 (the same
 * magic, protobuf and atomic write as dense model files) holding the hashing that turns input rows
 * into keys, the nonzero rows of the touched keys, the bias and wide & deep's deep stack. */
#ifndef PST_WORKER_MODEL_SPARSEFILE_H
#define PST_WORKER_MODEL_SPARSEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/data/hashing.h"
#include "common/data/sparsestream.h"
#include "common/err.h"
#include "worker/model/model.h"
#include "worker/model/sparse_model.h"
#include "worker/model/wide_deep.h"

/* Model files of version 2 are sparse; dense readers refuse them by name. */
#define PST_MODELFILE_VERSION_SPARSE 2u

/* Most rows and row width a file may declare: bounds every allocation a reader makes. */
#define PST_SPARSEFILE_MAX_ROWS ((uint64_t)1 << 32)

typedef enum {
    PST_SPARSEFILE_LR = 0,
    PST_SPARSEFILE_FM = 1,
    PST_SPARSEFILE_WIDE_DEEP = 2
} pst_sparsefile_type_t;

/* Everything needed to score raw rows; arrays are owned by the struct. */
typedef struct pst_sparsefile {
    pst_sparsefile_type_t type;
    pst_sparse_spec_t spec;     /* the rows' layout (wide_deep: FM of dim factors) */
    pst_sparse_format_t format; /* libsvm or hashed TSV */
    pst_hash_spec_t hash;       /* hashed TSV only */
    size_t n_rows;
    uint64_t *keys; // (n_rows) strictly ascending
    float *rows;    // (n_rows, row_width)
    float bias;     /* sparse_lr, fm */
    /* wide_deep: spec.hidden points at hidden, spec.max_batch is 0 (set it to build) */
    pst_wide_deep_spec_t wd;
    pst_layer_spec_t *hidden; // (wd.n_hidden)
    float *dense;             // (n_dense) the deep stack's parameter arena
    size_t n_dense;
    char *config_yaml; /* the training configuration, or NULL */
} pst_sparsefile_t;

/* "sparse_lr", "fm", "wide_deep"; parse returns PST_EINVAL for other names. */
const char *pst_sparsefile_type_name(pst_sparsefile_type_t type);
int pst_sparsefile_type_parse(const char *name, pst_sparsefile_type_t *out);

void pst_sparsefile_fini(pst_sparsefile_t *sf);

/* Fills sf's rows from a trained local model: the keys whose row is not all zeros (FTRL's L1
 * leaves many at zero; a missing key reads as a zero row), sorted by key. sf's type and spec
 * must be set; the model's row width must be the spec's. */
int pst_sparsefile_take_rows(pst_sparsefile_t *sf, const pst_sparse_model_t *model, pst_err_t *err);

/* Copies wide & deep's spec, hidden stack and deep parameters into sf (type wide_deep). */
int pst_sparsefile_take_wide_deep(pst_sparsefile_t *sf, pst_wide_deep_t *model, pst_err_t *err);

/* The serialised pst.Model of sf in *buf (caller frees). */
int pst_sparsefile_pack(const pst_sparsefile_t *sf, uint8_t **buf, size_t *len, pst_err_t *err);
/* Decodes and validates (counts, sizes, key order, checksum, spec) a serialised sparse model;
 * origin names it in errors. sf is owned by the caller. */
int pst_sparsefile_unpack(pst_sparsefile_t *sf, const uint8_t *buf, size_t len, const char *origin,
                          pst_err_t *err);

/* Writes sf atomically (temporary file, fsync, rename); *bytes (may be NULL) = the file's size. */
int pst_sparsefile_save(const pst_sparsefile_t *sf, const char *path, size_t *bytes,
                        pst_err_t *err);
int pst_sparsefile_load(pst_sparsefile_t *sf, const char *path, pst_err_t *err);

/* Reads the magic and version at the head of a model file without loading it: *is_sparse is
 * true for a model file of version PST_MODELFILE_VERSION_SPARSE (false for anything else,
 * including files that are not model files: their loader reports those). Defined in modelfile.c. */
int pst_sparsefile_probe(const char *path, bool *is_sparse, pst_err_t *err);

#endif
