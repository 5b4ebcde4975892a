/* A run directory as the report reads it: report.json, metrics.jsonl, sweep_results.json. */
#ifndef PST_APP_REPORT_REPORT_RUN_H
#define PST_APP_REPORT_REPORT_RUN_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/err.h"

typedef struct pst_report_run {
    char dir[1024];
    char name[128]; /* report.json's name, else the directory's last component */
    cJSON *report;  /* report.json or NULL */
    cJSON *lines;   /* array of metrics.jsonl's lines (possibly empty) */
    cJSON *sweep;   /* sweep_results.json or NULL */
} pst_report_run_t;

int pst_report_run_load(pst_report_run_t *run, const char *dir, pst_err_t *err);
void pst_report_run_fini(pst_report_run_t *run);

/* The run's curve axis: "epoch" (training) or "round" (federated); NULL without curves. */
const char *pst_report_run_axis(const pst_report_run_t *run);

/* The (axis, key) points of the run's curve lines (no "task", no "step"); caller frees *x and
 * *y (both NULL when there are none). Returns the count. */
int pst_report_run_series(const pst_report_run_t *run, const char *key, double **x, double **y);

/* A number at a path of object keys ("test", "accuracy", NULL), or NaN. */
double pst_report_num(const cJSON *obj, ...);

#endif
