/* Sweep file internals shared by the YAML parser (sweep_space.c) and the checks (sweep_check.c). */
#ifndef PST_APP_SWEEP_SWEEP_SPACE_INTERNAL_H
#define PST_APP_SWEEP_SWEEP_SPACE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "app/sweep/sweep_space.h"
#include "common/config.h"
#include "common/err.h"

/* The state of one sweep file being parsed and checked. */
typedef struct pst_sweep_parse_ctx {
    yaml_document_t *doc;
    pst_sweep_space_t *sp;
    pst_config_t scratch; /* defaults; every value text is tried on it */
    pst_err_t *err;
    bool has_method, has_metric, has_mode, has_trials, has_hyperband, has_max_epochs;
    bool has_tpe, has_pruner;
    size_t root_line, hyperband_line, tpe_line, pruner_line;
} pst_sweep_parse_ctx_t;

/* Whether two value texts are the same value: equal text, or equal numbers (1e-3, 0.001). */
bool pst_sweep_same_value(const char *a, const char *b);

/* Checks a parameter against the configuration key it sets, and builds its grid values. */
int pst_sweep_check_param(pst_sweep_parse_ctx_t *ctx, pst_sweep_param_t *param);

/* Checks the whole space once parsed: conditions, dependency order, metric mode, method. */
int pst_sweep_check_space(pst_sweep_parse_ctx_t *ctx);

#endif
