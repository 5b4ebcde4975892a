/* The run directory's TensorBoard event files: every metrics.jsonl line mirrored as scalars, in
 * the directory's own run or, for a plan's task lines, in a sub-run per task (fold_1/,
 * member_2/, trial_3/), so TensorBoard shows one curve per fold, member or trial. */
#ifndef PST_APP_RUNDIR_TB_H
#define PST_APP_RUNDIR_TB_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/tb/tbwriter.h"

typedef struct pst_rundir_tb_run {
    char name[64];
    pst_tbwriter_t *w;
} pst_rundir_tb_run_t;

typedef struct pst_rundir_tb {
    char dir[1024];
    pst_tbwriter_t *root;
    pst_rundir_tb_run_t *runs;
    int n_runs;
    long next_step; /* for lines that carry no epoch, round or step */
    bool warned;    /* a write failed and was reported once */
} pst_rundir_tb_t;

/* Creates dir's event file. */
int pst_rundir_tb_open(pst_rundir_tb_t *tb, const char *dir, pst_err_t *err);
void pst_rundir_tb_close(pst_rundir_tb_t *tb);

/* The writer of the sub-run NAME (created on first use; NULL on failure, reported in err). */
pst_tbwriter_t *pst_rundir_tb_run(pst_rundir_tb_t *tb, const char *name, pst_err_t *err);

/* The sub-run name and step of a task label: "trial 3 @5" is run trial_3 at step 5; "fold 2" is
 * run fold_2 at step `epochs` of its metrics (0 without). */
void pst_rundir_tb_task_run(const char *label, const cJSON *metrics, char *name, size_t cap,
                            long *step);

/* Mirrors one metrics.jsonl line: its numbers as scalars at the line's "step", "epoch" or
 * "round" (in that order), nested objects as "key/sub" tags, and the numbers of a step record
 * (a line with "step") as "step/key". label NULL: the root run. */
void pst_rundir_tb_line(pst_rundir_tb_t *tb, const char *label, const cJSON *line);

#endif
