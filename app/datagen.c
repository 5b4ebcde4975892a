/* Synthetic data generators run for the program: write, time, and report the truth. */
#include "app/datagen.h"

#include <stdio.h>

#include "app/console.h"
#include "common/clock.h"

int pst_datagen_clicks(const pst_clickgen_t *cfg, const pst_clickgen_files_t *files)
{
    pst_err_t err;
    pst_clickgen_truth_t t;
    double start = pst_clock_seconds();
    if (pst_clickgen_write(cfg, files, &t, &err) != PST_OK) {
        pst_app_error("datagen clicks: %s", err.msg);
        return 1;
    }
    double seconds = pst_clock_seconds() - start;
    printf("wrote %llu rows to %s in %.2f s (%.0f rows/s): click rate %.4f (target %.4f), "
           "bias %.4f, Bayes AUC %.4f, Bayes log-loss %.4f\n",
           (unsigned long long)cfg->rows, files->data, seconds,
           (double)cfg->rows / (seconds > 0 ? seconds : 1e-9), t.click_rate, cfg->click_rate,
           t.bias, t.bayes_auc, t.bayes_log_loss);
    return 0;
}

int pst_datagen_criteo(const pst_criteogen_t *cfg, const char *out, const char *truth)
{
    pst_err_t err;
    pst_criteogen_truth_t t;
    double start = pst_clock_seconds();
    if (pst_criteogen_write(cfg, out, truth, &t, &err) != PST_OK) {
        pst_app_error("datagen criteo: %s", err.msg);
        return 1;
    }
    printf("wrote %llu rows to %s in %.2f s: click rate %.4f (target %.4f), Bayes AUC %.4f, "
           "Bayes log-loss %.4f, main-effects AUC %.4f\n",
           (unsigned long long)cfg->rows, out, pst_clock_seconds() - start, t.click_rate,
           cfg->click_rate, t.bayes_auc, t.bayes_log_loss, t.main_effects_auc);
    return 0;
}
