/* The run directory: resolved config, metrics.jsonl, report.json and the model file. */
#ifndef PST_APP_RUNDIR_H
#define PST_APP_RUNDIR_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"
#include "common/err.h"
#include "app/rundir_tb.h"
#include "common/eval/metrics.h"
#include "worker/train/train.h"

typedef struct pst_rundir {
    char path[1024];
    FILE *metrics;      /* metrics.jsonl, a line per epoch, flushed as written */
    bool append;        /* resuming: metrics.jsonl keeps the lines of the interrupted run */
    pst_rundir_tb_t tb; /* event files (output.tensorboard); tb.root NULL when off */
} pst_rundir_t;

/* Creates DIR (out, or runs/NAME-YYYYMMDD-HHMMSS, suffixed -2, -3... if taken), writes
 * config.yaml, opens metrics.jsonl and (output.tensorboard) a TensorBoard event file. */
int pst_rundir_open(pst_rundir_t *rd, const pst_config_t *cfg, const char *out, pst_err_t *err);
/* Refuses out when it names an existing directory that holds anything (a run directory would be
 * overwritten) unless force; PST_ESTATE with a message naming it. NULL or "" passes. */
int pst_rundir_check_new(const char *out, bool force, pst_err_t *err);

/* The directory pst_rundir_open would use (out, or a new runs/NAME-STAMP), without creating it. */
int pst_rundir_choose(const pst_config_t *cfg, const char *out, char *path, size_t cap,
                      pst_err_t *err);
void pst_rundir_close(pst_rundir_t *rd);

/* Joins the run directory and a file name into buf. */
const char *pst_rundir_file(const pst_rundir_t *rd, const char *name, char *buf, size_t cap);

/* Appends line to metrics.jsonl and mirrors its numbers to the event files (see rundir_tb.h). */
void pst_rundir_log_line(pst_rundir_t *rd, const cJSON *line);

/* A resumed run replays from the start of epoch first_epoch (1-based): drops the lines of that
 * epoch and later ones that the interrupted run wrote, so metrics.jsonl holds each epoch once.
 * Lines without an epoch stay. The file is rewritten atomically. */
int pst_rundir_keep_epochs_before(pst_rundir_t *rd, long first_epoch, pst_err_t *err);

/* The run directory --resume names, checked before anything is written: it must exist and hold
 * the servers' checkpoints directory (--resume never creates a directory). */
int pst_rundir_check_resume(const char *dir, pst_err_t *err);

/* Appends one epoch's line to metrics.jsonl. */
void pst_rundir_log_epoch(pst_rundir_t *rd, const pst_epoch_stats_t *es);

/* Appends a task's metrics to metrics.jsonl as one line, with "task": label. */
void pst_rundir_log_task(pst_rundir_t *rd, const char *label, const cJSON *metrics);

/* Writes a JSON document atomically to DIR/name. */
int pst_rundir_write_json(const pst_rundir_t *rd, const char *name, const cJSON *doc,
                          pst_err_t *err);

/* Adds classification metrics to obj: accuracy, precision/recall/f1/specificity (macro, micro,
 * per class), log_loss, roc_auc (binary), confusion. */
void pst_json_add_class_metrics(cJSON *obj, const pst_class_metrics_t *m);
void pst_json_add_reg_metrics(cJSON *obj, const pst_reg_metrics_t *m);
/* Adds a number, or null when it is not finite (JSON has no NaN). */
void pst_json_add_number(cJSON *obj, const char *name, double v);

#endif
