/* Pruning, distillation and quantisation-aware training set-up for a training session (see
 * session_compress.h). */
#include "app/session_compress.h"

#include "common/log.h"

static int setup_prune(pst_session_t *s, pst_err_t *err)
{
    const pst_config_t *cfg = s->cfg;
    pst_prune_opts_t po = {cfg->train.prune.sparsity, (int)cfg->train.prune.start,
                           (int)cfg->train.prune.end, PST_PRUNE_GLOBAL};
    pst_prune_scope_parse(cfg->train.prune.scope, &po.scope); /* the key table checked it */
    s->opts.prune = pst_prune_new(s->model, &po, err);
    if (!s->opts.prune)
        return pst_err_code(err, PST_ENOMEM);
    if (s->lead)
        pst_info("prune: %.1f%% of the weights (%s), epochs %d..%d, then fine-tuning",
                 100 * po.sparsity, cfg->train.prune.scope, po.start, po.end);
    return PST_OK;
}

static int setup_distill(pst_session_t *s, pst_err_t *err)
{
    const pst_config_t *cfg = s->cfg;
    int n_out = pst_model_n_outputs(s->model);
    if (cfg->train.dp.clip > 0) /* DP-SGD's per-example passes compute their own loss */
        return pst_err_set(err, PST_EINVAL, "train.teacher does not combine with train.dp.clip");
    if (s->spec.loss != PST_LOSS_SOFTMAX_CE || !s->spec.fused_output || n_out < 2)
        return pst_err_set(err, PST_EINVAL,
                           "train.teacher: distillation needs a classifier with a softmax output "
                           "(model.output softmax, model.loss softmax_ce)");
    pst_distill_student_t student = {(int)s->data.train->n_features, n_out, s->data.preproc};
    s->opts.distill = pst_distill_new(cfg->train.teacher, &student, cfg->train.distill_temperature,
                                      cfg->train.distill_alpha, (int)cfg->train.batch_size, err);
    if (!s->opts.distill)
        return pst_err_code(err, PST_EINVAL);
    if (s->lead)
        pst_info("distill: teacher %s, temperature %g, alpha %g", cfg->train.teacher,
                 cfg->train.distill_temperature, cfg->train.distill_alpha);
    return PST_OK;
}

static int setup_qat(pst_session_t *s, pst_err_t *err)
{
    if (s->cfg->train.dp.clip > 0) /* DP-SGD's per-example passes do not run the step's hooks */
        return pst_err_set(err, PST_EINVAL, "train.qat does not combine with train.dp.clip");
    s->opts.qat = pst_fakequant_new(s->model, err);
    if (!s->opts.qat)
        return pst_err_code(err, PST_EINVAL);
    if (s->lead)
        pst_info("qat: %d layers trained fake-quantised to int8",
                 pst_fakequant_n_layers(s->opts.qat));
    return PST_OK;
}

int pst_session_compress_setup(pst_session_t *s, pst_err_t *err)
{
    int rc = PST_OK;
    if (s->cfg->train.prune.sparsity > 0)
        rc = setup_prune(s, err);
    if (rc == PST_OK && s->cfg->train.teacher[0])
        rc = setup_distill(s, err);
    if (rc == PST_OK && s->cfg->train.qat)
        rc = setup_qat(s, err);
    return rc;
}

void pst_session_compress_report(const pst_session_t *s, cJSON *report)
{
    const pst_config_t *cfg = s->cfg;
    if (s->opts.prune) {
        cJSON *p = cJSON_AddObjectToObject(report, "prune");
        cJSON_AddNumberToObject(p, "target_sparsity", cfg->train.prune.sparsity);
        cJSON_AddNumberToObject(p, "mask_sparsity", pst_prune_mask_sparsity(s->opts.prune));
        cJSON_AddNumberToObject(p, "zero_share",
                                pst_prune_zero_share(s->opts.prune, pst_model_params(s->model)));
        cJSON_AddStringToObject(p, "scope", cfg->train.prune.scope);
    }
    if (s->opts.distill) {
        cJSON *d = cJSON_AddObjectToObject(report, "distill");
        cJSON_AddStringToObject(d, "teacher", cfg->train.teacher);
        cJSON_AddNumberToObject(d, "temperature", cfg->train.distill_temperature);
        cJSON_AddNumberToObject(d, "alpha", cfg->train.distill_alpha);
    }
    if (s->opts.qat) {
        cJSON *q = cJSON_AddObjectToObject(report, "qat");
        cJSON *maxes = cJSON_AddArrayToObject(q, "input_max");
        for (int j = 0; j < pst_fakequant_n_layers(s->opts.qat); j++)
            cJSON_AddItemToArray(maxes,
                                 cJSON_CreateNumber(pst_fakequant_input_max(s->opts.qat, j)));
    }
}

void pst_session_compress_fini(pst_session_t *s)
{
    pst_prune_destroy(&s->opts.prune);
    pst_distill_destroy(&s->opts.distill);
    pst_fakequant_destroy(&s->opts.qat);
}
