/* predict.drift_warn: the drift comparison behind predict's single warning. */
#include "app/drift/driftwarn.h"

#include <stdio.h>
#include <string.h>

#include "app/drift/driftcheck.h"
#include "common/log.h"
#include "worker/model/ensemble.h"
#include "worker/model/sparsefile.h"

/* Inputs named in the warning, worst first. */
#define WARN_NAMES 3

static void warn(const pst_drift_result_t *r, const char *path, const char *data)
{
    char names[512] = "";
    size_t used = 0;
    for (size_t j = 0; j < r->n_inputs && j < WARN_NAMES && r->inputs[j].flagged; j++) {
        int n = snprintf(names + used, sizeof names - used, "%s%s (PSI %.2f)", j ? ", " : "",
                         r->inputs[j].name, r->inputs[j].psi);
        if (n < 0 || (size_t)n >= sizeof names - used)
            break;
        used += (size_t)n;
    }
    char pred[64] = "";
    if (r->has_prediction)
        snprintf(pred, sizeof pred, "; prediction PSI %.2f", r->prediction.psi);
    pst_warn("%s: drift from the training data of %s: %zu of %zu inputs have a PSI above %g "
             "(predict.drift_warn), worst: %s%s; 'pstrain drift %s %s' shows them all",
             data, path, r->n_flagged, r->n_inputs, r->threshold, names, pred, path, data);
}

static bool profiled(const char *path)
{
    bool sparse = false, ensemble = false;
    return pst_sparsefile_probe(path, &sparse, NULL) == PST_OK && !sparse &&
           pst_ensemble_probe(path, &ensemble, NULL) == PST_OK && !ensemble;
}

bool pst_drift_warn_predict(const char *path, const char *data, const char *const *sets, int n_sets)
{
    pst_modelfile_t mf;
    pst_err_t err = {0};
    if (!profiled(path) || pst_modelfile_load(&mf, path, &err) != PST_OK)
        return false;
    pst_config_t cfg;
    pst_config_init(&cfg);
    int rc = mf.config_yaml ? pst_config_load_string(&cfg, mf.config_yaml, path, &err) : PST_OK;
    for (int i = 0; i < n_sets && rc == PST_OK; i++)
        rc = pst_config_set(&cfg, sets[i], &err);
    bool warned = false;
    if (rc == PST_OK && mf.drift && cfg.drift.warn > 0) {
        pst_drift_result_t r;
        rc = pst_drift_compare(&mf, &cfg, data, cfg.drift.warn, &r, &err);
        if (rc == PST_OK && r.n_flagged > 0) {
            warn(&r, path, data);
            warned = true;
        }
        pst_drift_result_fini(&r);
    }
    if (rc != PST_OK)
        pst_debug("drift check skipped: %s", err.msg);
    pst_config_fini(&cfg);
    pst_modelfile_fini(&mf);
    return warned;
}
