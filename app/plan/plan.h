/* What the plan commands (cv, bag, stack, sweep) share: the one loaded dataset, scoring of
 * predictions into JSON, and mean/std summaries over tasks. */
#ifndef PST_APP_PLAN_PLAN_H
#define PST_APP_PLAN_PLAN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/mpi/cluster.h"
#include "common/config.h"
#include "common/data/dataset.h"

/* Loads data.train once, dense and raw (preprocessing is fitted per task). With group_column,
 * that feature column is taken out of the features into *groups (caller frees). */
int pst_plan_load(const pst_config_t *cfg, const char *group_column, pst_dataset_t **out,
                  int64_t **groups, const char **format, pst_err_t *err);

/* Scores outputs (n, n_out) of rows idx[0..n) of ds into obj: classification or regression
 * metrics as report.json writes them. */
int pst_plan_score(const pst_dataset_t *ds, const size_t *idx, size_t n, const float *out,
                   int n_out, cJSON *obj, pst_err_t *err);

/* For every number under each tasks[i] object (same keys in each), adds to summary a
 * {"mean", "std", "values"} object under the same key (population standard deviation). */
void pst_plan_summarise(cJSON *const *tasks, int n_tasks, cJSON *summary);

/* Appends one CSV line per row: row number, then extra text, then the label, the prediction
 * (label values) and per-class probabilities, or the predicted value. Header when row0. */
void pst_plan_write_predictions(FILE *f, const pst_dataset_t *ds, const size_t *idx, size_t n,
                                const float *out, int n_out, const char *extra_header,
                                const char *const *extra, bool header);

/* What every plan command takes: CONFIG, its --set KEY=VALUE overrides, the run directory
 * (NULL: runs/NAME-STAMP) and quiet (only errors on stderr). */
typedef struct pst_plan_args {
    const char *config;
    const char *sets[PST_MAX_SETS];
    int n_sets;
    const char *out;
    bool quiet;
    bool force; /* --out may name an existing non-empty directory (or resume it) */
} pst_plan_args_t;

/* Loads CONFIG with the --set overrides and validates it; sets the log level from log_level, or
 * to errors only when a->quiet. */
int pst_plan_config(pst_config_t *cfg, const pst_plan_args_t *a, pst_err_t *err);

#endif
