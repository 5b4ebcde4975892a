/* Sweep trials as HParams sessions: overrides typed as numbers, booleans or strings. */
#include "app/sweep/sweep_tb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/numparse.h"
#include "common/tb/tbhparams.h"

/* An override's value as a typed hyperparameter: "0.01" a number, "true" a bool, else text. */
static pst_tb_hparam_t typed(const pst_sweep_override_t *o)
{
    pst_tb_hparam_t hp = {.name = o->key, .kind = PST_TB_HPARAM_STRING, .string = o->value};
    double v;
    if (pst_parse_double(o->value, PST_NUM_FINITE | PST_NUM_TRAILING_SPACE, &v) == PST_OK) {
        hp.kind = PST_TB_HPARAM_NUMBER;
        hp.number = v;
    } else if (strcmp(o->value, "true") == 0 || strcmp(o->value, "false") == 0) {
        hp.kind = PST_TB_HPARAM_BOOL;
        hp.boolean = o->value[0] == 't';
    }
    return hp;
}

static pst_tbwriter_t *trial_writer(pst_rundir_t *rd, int id)
{
    char name[32];
    snprintf(name, sizeof name, "trial_%d", id);
    pst_err_t err = {0};
    pst_tbwriter_t *w = pst_rundir_tb_run(&rd->tb, name, &err);
    if (!w)
        pst_warn("TensorBoard events: %s", err.msg);
    return w;
}

void pst_sweep_tb_trial(pst_rundir_t *rd, const pst_sweep_trial_t *t, bool *started)
{
    if (!rd->tb.root || *started)
        return;
    pst_tbwriter_t *w = trial_writer(rd, t->id);
    pst_tb_hparam_t *hp = calloc((size_t)t->n_overrides + 1, sizeof *hp);
    if (!w || !hp) {
        free(hp);
        return;
    }
    for (int i = 0; i < t->n_overrides; i++)
        hp[i] = typed(&t->overrides[i]);
    pst_err_t err = {0};
    if (pst_tbhparams_session_start(w, hp, t->n_overrides, &err) != PST_OK)
        pst_warn("TensorBoard events: %s", err.msg);
    *started = true;
    free(hp);
}

void pst_sweep_tb_finish(pst_rundir_t *rd, const pst_sweep_sched_t *sched, const bool *started,
                         const char *metric_tag)
{
    int n = pst_sweep_n_trials(sched);
    if (!rd->tb.root || n == 0)
        return;
    const pst_sweep_trial_t *t0 = pst_sweep_get_trial(sched, 0);
    pst_tb_hparam_t *hp = calloc((size_t)t0->n_overrides + 1, sizeof *hp);
    if (!hp)
        return;
    for (int i = 0; i < t0->n_overrides; i++)
        hp[i] = typed(&t0->overrides[i]);
    pst_err_t err = {0};
    int rc = pst_tbhparams_experiment(rd->tb.root, hp, t0->n_overrides, &metric_tag, 1, &err);
    for (int i = 0; rc == PST_OK && i < n; i++) {
        pst_tbwriter_t *w = started[i] ? trial_writer(rd, i) : NULL;
        if (w)
            rc = pst_tbhparams_session_end(w, pst_sweep_trial_state(sched, i) != PST_SWEEP_FAILED,
                                           &err);
    }
    if (rc != PST_OK)
        pst_warn("TensorBoard events: %s", err.msg);
    free(hp);
}
