/* `pstrain explain`: a saved model (or ensemble) and a data file in, global permutation
 * importance (labelled rows) and per-row attributions out (importance.csv, attributions.csv,
 * explain.html). */
#ifndef PST_APP_EXPLAIN_EXPLAIN_H
#define PST_APP_EXPLAIN_EXPLAIN_H

#include "app/explain/attributions.h"
#include "app/explain/importance.h"
#include "app/mpi/cluster.h"

typedef struct pst_explain_opts {
    const char *model, *data;
    const char *sets[PST_MAX_SETS]; /* data.* overrides for reading data */
    int n_sets;
    const char *out_dir; /* NULL: the directory of the model file */
    const char *id;      /* id column of data copied to attributions.csv; NULL: data.id_column */
    int repeats;         /* permutation importance shuffles per column */
    pst_importance_metric_t metric;
    pst_attr_opts_t attr;
} pst_explain_opts_t;

/* The defaults: 5 repeats, metric auto, method auto, 100 rows, 50 background rows, 50 ig
 * steps, 2048 coalitions, seed 1. */
void pst_explain_opts_defaults(pst_explain_opts_t *o);

/* Runs the explanation, prints the importance table and the completeness check, and writes the
 * files into the output directory. Errors go to stderr. Returns the exit status: 0 or 1. */
int pst_explain_run(const pst_explain_opts_t *o);

#endif
