/* A saved model (or ensemble file) applied to a data file: its metrics (eval), its predictions
 * as CSV (predict), and a description of the file itself (info). */
#ifndef PST_APP_SCORE_H
#define PST_APP_SCORE_H

#include <stdbool.h>

#include "app/mpi/cluster.h"

typedef struct pst_score_opts {
    const char *model; /* model.pst or an ensemble file */
    const char *data;  /* read as the model's training data was (its stored data.* keys) */
    const char *sets[PST_MAX_SETS]; /* data.* overrides for reading data */
    int n_sets;
    const char *json; /* eval: also write the metrics as JSON here, or NULL */
    const char *out;  /* predict: write the CSV here atomically, or NULL: standard output */
    const char *id;   /* predict: id column copied to the output; NULL: data.id_column */
} pst_score_opts_t;

/* Prints the model's metrics on the labelled rows of data (and writes opts->json). Errors go to
 * stderr. Returns the process exit status: 0 success, 1 failure. */
int pst_score_eval(const pst_score_opts_t *opts);
/* Writes the model's prediction for every row of data as CSV; status as pst_score_eval. */
int pst_score_predict(const pst_score_opts_t *opts);
/* Prints a description of the model file at path (every parameter too with params); status as
 * pst_score_eval. */
int pst_score_info(const char *path, bool params);

#endif
