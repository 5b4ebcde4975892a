/* `pstrain embed`: a layer's activations for every row of a data file, written as TensorBoard
 * projector files (tensors.tsv, metadata.tsv, projector_config.pbtxt). */
#ifndef PST_APP_EMBED_H
#define PST_APP_EMBED_H

#include "app/mpi/cluster.h"

typedef struct pst_embed_opts {
    const char *model; /* model.pst of a layer stack */
    const char *data;  /* read as the model's training data was */
    int layer;         /* 0-based index in the stack; its output is the embedding */
    const char *out;   /* directory (default: MODEL's directory + /projector) */
    const char *sets[PST_MAX_SETS];
    int n_sets;
} pst_embed_opts_t;

/* Writes the three files atomically into opts->out; prints what it wrote, errors on stderr.
 * Returns the exit status: 0 success, 1 failure. */
int pst_embed_run(const pst_embed_opts_t *opts);

#endif
