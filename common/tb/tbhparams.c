/* HParams plugin data: HParamsPluginData messages, version 0, under the plugin name "hparams". */
#include "common/tb/tbhparams.h"

#include <stdlib.h>
#include <sys/time.h>

#include "tensorboard_hparams.pb-c.h"

#define PLUGIN "hparams"

static double now_secs(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Packs data and writes it as the summary tag at step 0. */
static int write_plugin_data(pst_tbwriter_t *w, const char *tag,
                             const Tensorboard__Hparams__HParamsPluginData *data, pst_err_t *err)
{
    size_t len = tensorboard__hparams__hparams_plugin_data__get_packed_size(data);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    tensorboard__hparams__hparams_plugin_data__pack(data, buf);
    int rc = pst_tbwriter_plugin(w, tag, 0, PLUGIN, buf, len, err);
    free(buf);
    return rc;
}

static Tensorboard__Hparams__DataType data_type(pst_tb_hparam_kind_t kind)
{
    switch (kind) {
    case PST_TB_HPARAM_STRING:
        return TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_STRING;
    case PST_TB_HPARAM_BOOL:
        return TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_BOOL;
    default:
        return TENSORBOARD__HPARAMS__DATA_TYPE__DATA_TYPE_FLOAT64;
    }
}

int pst_tbhparams_experiment(pst_tbwriter_t *w, const pst_tb_hparam_t *hp, int n_hp,
                             const char *const *metric_tags, int n_metrics, pst_err_t *err)
{
    Tensorboard__Hparams__HParamInfo *infos = calloc((size_t)n_hp + 1, sizeof *infos);
    Tensorboard__Hparams__HParamInfo **info_p = calloc((size_t)n_hp + 1, sizeof *info_p);
    Tensorboard__Hparams__MetricName *names = calloc((size_t)n_metrics + 1, sizeof *names);
    Tensorboard__Hparams__MetricInfo *minfos = calloc((size_t)n_metrics + 1, sizeof *minfos);
    Tensorboard__Hparams__MetricInfo **minfo_p = calloc((size_t)n_metrics + 1, sizeof *minfo_p);
    int rc = PST_OK;
    if (!infos || !info_p || !names || !minfos || !minfo_p)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int i = 0; rc == PST_OK && i < n_hp; i++) {
        Tensorboard__Hparams__HParamInfo hi = TENSORBOARD__HPARAMS__HPARAM_INFO__INIT;
        hi.name = (char *)hp[i].name;
        hi.type = data_type(hp[i].kind);
        infos[i] = hi;
        info_p[i] = &infos[i];
    }
    for (int i = 0; rc == PST_OK && i < n_metrics; i++) {
        Tensorboard__Hparams__MetricName mn = TENSORBOARD__HPARAMS__METRIC_NAME__INIT;
        mn.tag = (char *)metric_tags[i];
        names[i] = mn;
        Tensorboard__Hparams__MetricInfo mi = TENSORBOARD__HPARAMS__METRIC_INFO__INIT;
        mi.name = &names[i];
        minfos[i] = mi;
        minfo_p[i] = &minfos[i];
    }
    if (rc == PST_OK) {
        Tensorboard__Hparams__Experiment ex = TENSORBOARD__HPARAMS__EXPERIMENT__INIT;
        ex.time_created_secs = now_secs();
        ex.n_hparam_infos = (size_t)n_hp;
        ex.hparam_infos = info_p;
        ex.n_metric_infos = (size_t)n_metrics;
        ex.metric_infos = minfo_p;
        Tensorboard__Hparams__HParamsPluginData data =
            TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__INIT;
        data.data_case = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_EXPERIMENT;
        data.experiment = &ex;
        rc = write_plugin_data(w, "_hparams_/experiment", &data, err);
    }
    free(infos);
    free(info_p);
    free(names);
    free(minfos);
    free(minfo_p);
    return rc;
}

static void set_value(Tensorboard__Hparams__Value *v, const pst_tb_hparam_t *hp)
{
    Tensorboard__Hparams__Value init = TENSORBOARD__HPARAMS__VALUE__INIT;
    *v = init;
    if (hp->kind == PST_TB_HPARAM_STRING) {
        v->kind_case = TENSORBOARD__HPARAMS__VALUE__KIND_STRING_VALUE;
        v->string_value = (char *)hp->string;
    } else if (hp->kind == PST_TB_HPARAM_BOOL) {
        v->kind_case = TENSORBOARD__HPARAMS__VALUE__KIND_BOOL_VALUE;
        v->bool_value = hp->boolean;
    } else {
        v->kind_case = TENSORBOARD__HPARAMS__VALUE__KIND_NUMBER_VALUE;
        v->number_value = hp->number;
    }
}

int pst_tbhparams_session_start(pst_tbwriter_t *w, const pst_tb_hparam_t *hp, int n_hp,
                                pst_err_t *err)
{
    Tensorboard__Hparams__Value *vals = calloc((size_t)n_hp + 1, sizeof *vals);
    Tensorboard__Hparams__SessionStartInfo__HparamsEntry *ents =
        calloc((size_t)n_hp + 1, sizeof *ents);
    Tensorboard__Hparams__SessionStartInfo__HparamsEntry **ent_p =
        calloc((size_t)n_hp + 1, sizeof *ent_p);
    int rc = PST_OK;
    if (!vals || !ents || !ent_p)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int i = 0; rc == PST_OK && i < n_hp; i++) {
        Tensorboard__Hparams__SessionStartInfo__HparamsEntry e =
            TENSORBOARD__HPARAMS__SESSION_START_INFO__HPARAMS_ENTRY__INIT;
        set_value(&vals[i], &hp[i]);
        e.key = (char *)hp[i].name;
        e.value = &vals[i];
        ents[i] = e;
        ent_p[i] = &ents[i];
    }
    if (rc == PST_OK) {
        Tensorboard__Hparams__SessionStartInfo start =
            TENSORBOARD__HPARAMS__SESSION_START_INFO__INIT;
        start.n_hparams = (size_t)n_hp;
        start.hparams = ent_p;
        start.start_time_secs = now_secs();
        Tensorboard__Hparams__HParamsPluginData data =
            TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__INIT;
        data.data_case = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_START_INFO;
        data.session_start_info = &start;
        rc = write_plugin_data(w, "_hparams_/session_start_info", &data, err);
    }
    free(vals);
    free(ents);
    free(ent_p);
    return rc;
}

int pst_tbhparams_session_end(pst_tbwriter_t *w, bool success, pst_err_t *err)
{
    Tensorboard__Hparams__SessionEndInfo end = TENSORBOARD__HPARAMS__SESSION_END_INFO__INIT;
    end.status = success ? TENSORBOARD__HPARAMS__STATUS__STATUS_SUCCESS
                         : TENSORBOARD__HPARAMS__STATUS__STATUS_FAILURE;
    end.end_time_secs = now_secs();
    Tensorboard__Hparams__HParamsPluginData data = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__INIT;
    data.data_case = TENSORBOARD__HPARAMS__HPARAMS_PLUGIN_DATA__DATA_SESSION_END_INFO;
    data.session_end_info = &end;
    return write_plugin_data(w, "_hparams_/session_end_info", &data, err);
}
