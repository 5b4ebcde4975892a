/* Step records and histograms of a training session. */
#include "app/session_tb.h"

#include <math.h>
#include <stdio.h>

#include "common/log.h"
#include "common/tb/tbwriter.h"

static double l2_norm(const float *v, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i] * v[i];
    return sqrt(sum);
}

void pst_session_log_step(pst_session_t *s, const pst_step_progress_t *p)
{
    if (!s->lead || !s->rundir.metrics)
        return;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddNumberToObject(line, "step", (double)((long)(p->epoch - 1) * p->steps + p->step));
    cJSON_AddNumberToObject(line, "epoch", p->epoch);
    pst_json_add_number(line, "train_loss", p->loss);
    pst_json_add_number(line, "samples_per_s", p->samples_per_s);
    pst_json_add_number(line, "grad_norm",
                        l2_norm(pst_model_grads(s->model), pst_model_n_params(s->model)));
    pst_rundir_log_line(&s->rundir, line);
    cJSON_Delete(line);
}

/* The tensor's layer: tensors come in (weight, bias) pairs per parameterised layer. */
static void tensor_tag(const pst_tensor_info_t *t, int i, const char *kind, char *tag, size_t cap)
{
    snprintf(tag, cap, "%s/layer%d/%s", kind, i / 2, t->is_bias ? "bias" : "kernel");
}

void pst_session_log_histograms(pst_session_t *s, int epoch)
{
    pst_tbwriter_t *w = s->rundir.tb.root;
    if (!s->lead || !w || !s->cfg->output.histograms)
        return;
    const float *params = pst_model_params(s->model), *grads = pst_model_grads(s->model);
    pst_err_t err = {0};
    int rc = PST_OK;
    for (int i = 0; rc == PST_OK && i < pst_model_n_tensors(s->model); i++) {
        const pst_tensor_info_t *t = pst_model_tensor(s->model, i);
        char tag[96];
        tensor_tag(t, i, "weights", tag, sizeof tag);
        rc = pst_tbwriter_histogram(w, tag, epoch, params + t->offset, t->size, 0, &err);
        tensor_tag(t, i, "gradients", tag, sizeof tag);
        if (rc == PST_OK)
            rc = pst_tbwriter_histogram(w, tag, epoch, grads + t->offset, t->size, 0, &err);
    }
    if (rc != PST_OK)
        pst_warn("TensorBoard histograms: %s", err.msg);
}

void pst_session_log_comm(pst_session_t *s)
{
    const cJSON *comm = s->extra ? cJSON_GetObjectItem(s->extra, "comm") : NULL;
    if (!s->lead || !comm)
        return;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddNumberToObject(line, "epoch", s->result.epochs_run);
    cJSON_AddItemReferenceToObject(line, "comm", (cJSON *)comm);
    pst_rundir_tb_line(&s->rundir.tb, NULL, line);
    cJSON_Delete(line);
}
