/* predict.drift_warn: one warning from pstrain predict when the rows it scored have drifted
 * from the model's training distributions. */
#ifndef PST_APP_DRIFT_DRIFTWARN_H
#define PST_APP_DRIFT_DRIFTWARN_H

#include <stdbool.h>

/* Compares data with the profile of the model file at path (configuration: its stored one with
 * the n_sets overrides sets) and logs one warning naming the worst inputs when an input's PSI
 * is above predict.drift_warn. Models without a profile, ensembles, sparse models and a
 * threshold of 0 are not checked. Returns whether it warned; a failure of the check itself is
 * logged at debug level only (the predictions are already written). */
bool pst_drift_warn_predict(const char *path, const char *data, const char *const *sets,
                            int n_sets);

#endif
