/* The parts of a report page, each written into the page's stream. */
#ifndef PST_APP_REPORT_REPORT_PARTS_H
#define PST_APP_REPORT_REPORT_PARTS_H

#include <stdio.h>

#include "app/report/report_run.h"

/* Final metrics, timings, the confusion matrix as a heat map and the per-class table. */
void pst_report_final(FILE *out, const pst_report_run_t *run);
/* ROC and precision-recall curves (each class against the rest, with their macro average) and
 * the reliability plot with the Brier score and ECE, of the test part (else validation). */
void pst_report_curves(FILE *out, const pst_report_run_t *run);
/* Refuses curves in report.json whose points are not arrays of numbers of matching lengths,
 * naming DIR/report.json and the key (PST_EFORMAT). */
int pst_report_curves_check(const pst_report_run_t *run, pst_err_t *err);
/* A distributed run's communication figures; a federated run's totals. */
void pst_report_comm_fed(FILE *out, const pst_report_run_t *run);
/* cv: the per-fold table and spread; bag: members against the ensemble; stack: the base
 * models; sweep: the trials sorted by the objective, and the objective against each parameter. */
void pst_report_plan(FILE *out, const pst_report_run_t *run);
/* The run directory's importance.csv (pstrain explain), if it has one: a table and a plot. */
void pst_report_importance(FILE *out, const pst_report_run_t *run);

/* cv: each figure of the folds' epochs (a line per fold, their mean thick) from the tasks'
 * history. */
void pst_report_fold_curves(FILE *out, const cJSON *tasks);
/* cv: every fold's ROC and precision-recall curve of its out-of-fold rows, with their mean. */
void pst_report_fold_roc(FILE *out, const cJSON *tasks);

/* A table cell holding a number (4 significant digits) or an empty cell for NaN. */
void pst_report_cell(FILE *out, double v);

#endif
