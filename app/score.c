/* Applying a saved model to a data file: metrics, CSV predictions, and the file's description. */
#include "app/score.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/drift/driftcheck.h"
#include "app/drift/driftwarn.h"
#include "app/cost.h"
#include "app/pipeline.h"
#include "app/rundir.h"
#include "app/score_csv.h"
#include "app/score_info.h"
#include "app/sparse/sparse_score.h"
#include "common/atomicfile.h"
#include "common/data/dataload.h"
#include "common/eval/metrics.h"
#include "common/net/codec.h"
#include "worker/model/ensemble.h"
#include "worker/model/modelfile.h"
#include "worker/model/modelspec.h"
#include "worker/model/sparsefile.h"
#include "worker/train/train.h"

#define APPLY_CHUNK 256

/* Everything eval and predict share: the model (or ensemble), and DATA loaded and preprocessed
 * like training. */
typedef struct applied {
    pst_modelfile_t mf;
    pst_ensemble_t ens;
    bool ensemble;              /* MODEL is an ensemble file: ens, else mf */
    const pst_modelfile_t *ref; /* task, classes and data configuration: mf or ens member 1 */
    pst_model_t *model;
    pst_dataset_t *data;
    float *out; // (n_rows, n_out)
    int n_out;
    float *labels; /* (n_rows) of the rows scored, data->y or read by column name */
    size_t n_rows;
} applied_t;

static void applied_fini(applied_t *ap)
{
    free(ap->out);
    if (ap->data == NULL)
        free(ap->labels);
    pst_dataset_destroy(&ap->data);
    pst_model_destroy(&ap->model);
    pst_modelfile_fini(&ap->mf);
    pst_ensemble_fini(&ap->ens);
}

static int load_model(applied_t *ap, const char *path, pst_err_t *err)
{
    int rc = pst_ensemble_probe(path, &ap->ensemble, err);
    if (rc == PST_OK)
        rc = ap->ensemble ? pst_ensemble_load(&ap->ens, path, err)
                          : pst_modelfile_load(&ap->mf, path, err);
    if (rc == PST_OK)
        ap->ref = ap->ensemble ? &ap->ens.members[0] : &ap->mf;
    return rc;
}

/* Outputs of the ensemble, or of the single model after its preprocessing, for every row. */
static int predict_all(applied_t *ap, pst_err_t *err)
{
    size_t n = ap->data->n_rows ? ap->data->n_rows : 1;
    if (ap->ensemble) {
        ap->n_out = pst_ensemble_width(ap->ref->task, ap->ref->n_classes);
        if (!(ap->out = malloc(n * (size_t)ap->n_out * sizeof(float))))
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        return pst_ensemble_apply(&ap->ens, ap->data, ap->out, err);
    }
    int rc = pst_modelfile_preprocess(&ap->mf, ap->data, err);
    if (rc != PST_OK)
        return rc;
    if (!(ap->model = pst_modelfile_build(&ap->mf, APPLY_CHUNK, err)))
        return err ? err->code : PST_EFORMAT;
    ap->n_out = pst_model_n_outputs(ap->model);
    if (!(ap->out = malloc(n * (size_t)ap->n_out * sizeof(float))))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    return pst_predict(ap->model, ap->data, APPLY_CHUNK, ap->out, err);
}

/* The model's stored configuration with the --set overrides. */
static int model_config(const applied_t *ap, const pst_score_opts_t *a, pst_config_t *cfg,
                        pst_err_t *err)
{
    pst_config_init(cfg);
    int rc = PST_OK;
    if (ap->ref->config_yaml)
        rc = pst_config_load_string(cfg, ap->ref->config_yaml, a->model, err);
    for (int i = 0; i < a->n_sets && rc == PST_OK; i++)
        rc = pst_config_set(cfg, a->sets[i], err);
    return rc;
}

/* A single model with named inputs scoring a CSV file goes by column name (app/score_csv). */
static bool by_name(const applied_t *ap, const pst_config_t *cfg, const char *data)
{
    if (ap->ensemble || (!ap->mf.encoder && !ap->mf.feature_names))
        return false;
    pst_data_spec_t spec = {.path = data,
                            .format = strcmp(cfg->data.format, "auto") ? cfg->data.format : NULL};
    const char *format;
    return pst_data_infer_format(&spec, &format, NULL) == PST_OK && strcmp(format, "csv") == 0;
}

static int load_and_apply(applied_t *ap, const pst_score_opts_t *a, bool need_target,
                          pst_err_t *err)
{
    memset(ap, 0, sizeof *ap);
    int rc = load_model(ap, a->model, err);
    if (rc != PST_OK)
        return rc;
    const pst_modelfile_t *ref = ap->ref;
    pst_config_t cfg;
    rc = model_config(ap, a, &cfg, err);
    if (rc == PST_OK && by_name(ap, &cfg, a->data)) {
        pst_score_csv_t sc = {.mf = &ap->mf, .data = a->data, .target = cfg.data.target};
        rc = pst_score_csv_collect(&sc, &ap->out, &ap->n_out, &ap->labels, &ap->n_rows, err);
        pst_config_fini(&cfg);
        return rc;
    }
    if (rc == PST_OK)
        rc = pst_pipeline_load_for(&cfg, a->data, cfg.data.test_labels, ref, need_target, &ap->data,
                                   err);
    pst_config_fini(&cfg);
    if (rc == PST_OK && (rc = pst_dataset_densify(ap->data, (size_t)ref->n_inputs, err)))
        pst_err_prefix(err, rc, "%s: ", a->data);
    if (rc == PST_OK && (rc = predict_all(ap, err)))
        pst_err_prefix(err, rc, "%s: ", a->data);
    if (rc == PST_OK) {
        ap->labels = ap->data->y;
        ap->n_rows = ap->data->n_rows;
    }
    return rc;
}

/* Text class labels name the rows and columns of the confusion matrix in the JSON too. */
static void add_class_names(cJSON *doc, const pst_modelfile_t *mf)
{
    if (!mf->class_names)
        return;
    cJSON *names = cJSON_AddArrayToObject(doc, "classes");
    for (int k = 0; names && k < mf->n_classes; k++)
        cJSON_AddItemToArray(names, cJSON_CreateString(mf->class_names[k]));
}

static int class_metrics(applied_t *ap, cJSON *doc, pst_err_t *err)
{
    size_t n = ap->n_rows;
    pst_class_metrics_t m;
    int rc = pst_class_metrics_from_outputs(&m, ap->ref->n_classes, n, ap->out, ap->n_out,
                                            ap->labels, err);
    if (rc == PST_OK) {
        pst_json_add_class_metrics(doc, &m);
        printf("rows %zu  accuracy %.4f  f1_macro %.4f  precision_macro %.4f  recall_macro %.4f  "
               "specificity_macro %.4f  log_loss %.4f\n",
               n, m.accuracy, m.f1_macro, m.precision_macro, m.recall_macro, m.specificity_macro,
               m.log_loss);
        printf("confusion (rows: true class, columns: predicted):\n");
        if (ap->ref->class_names) {
            printf("  %-12s", "");
            for (int j = 0; j < m.n_classes; j++)
                printf(" %12.12s", ap->ref->class_names[j]);
            printf("\n");
        }
        for (int i = 0; i < m.n_classes; i++) {
            if (ap->ref->class_names)
                printf("  %-12.12s", ap->ref->class_names[i]);
            int width = ap->ref->class_names ? 12 : 6;
            for (int j = 0; j < m.n_classes; j++)
                printf("%s%*ld", ap->ref->class_names || j ? " " : "  ", width,
                       m.confusion[i * m.n_classes + j]);
            printf("\n");
        }
        add_class_names(doc, ap->ref);
    }
    pst_class_metrics_fini(&m);
    return rc;
}

/* A sparse model file (model.type sparse_lr, fm, wide_deep) is scored by app/sparse: *status is
 * then the exit status and the result true. */
static bool sparse_model(const pst_score_opts_t *a, bool predict, int *status)
{
    pst_err_t err = {0};
    bool sparse = false;
    if (pst_sparsefile_probe(a->model, &sparse, &err) != PST_OK || !sparse)
        return false;
    int rc = PST_OK;
    if (a->n_sets > 0)
        rc = pst_err_set(&err, PST_EINVAL,
                         "--set %s: a sparse model reads DATA with the format and hashing stored "
                         "in %s; data.* overrides do not apply",
                         a->sets[0], a->model);
    else if (predict)
        rc = pst_sparse_score_predict(a->model, a->data, a->out, &err);
    else
        rc = pst_sparse_score_eval(a->model, a->data, a->json, &err);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    *status = rc == PST_OK ? 0 : 1;
    return true;
}

int pst_score_eval(const pst_score_opts_t *a)
{
    int status;
    if (sparse_model(a, false, &status))
        return status;
    applied_t ap;
    pst_err_t err = {0};
    int rc = load_and_apply(&ap, a, true, &err);
    cJSON *doc = cJSON_CreateObject();
    if (rc == PST_OK && ap.ref->task == PST_TASK_CLASSIFICATION) {
        rc = class_metrics(&ap, doc, &err);
    } else if (rc == PST_OK) {
        pst_reg_metrics_t m;
        pst_reg_metrics_compute(&m, ap.n_rows, ap.out, ap.labels);
        pst_json_add_reg_metrics(doc, &m);
        printf("rows %zu  mse %.6g  mae %.6g  r2 %.4f\n", m.n, m.mse, m.mae, m.r2);
    }
    if (rc == PST_OK && a->json) {
        char *text = cJSON_Print(doc);
        rc = text ? pst_write_file_atomic(a->json, text, strlen(text), &err) : PST_ENOMEM;
        free(text);
    }
    cJSON_Delete(doc);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    applied_fini(&ap);
    return rc == PST_OK ? 0 : 1;
}

static void write_predictions(FILE *f, const applied_t *ap)
{
    const pst_modelfile_t *mf = ap->ref;
    int n_out = ap->n_out;
    bool classify = mf->task == PST_TASK_CLASSIFICATION;
    fputs("prediction", f);
    for (int k = 0; classify && k < mf->n_classes; k++) {
        fputs(",p_", f);
        pst_score_write_label(f, mf, k);
    }
    fputc('\n', f);
    for (size_t i = 0; i < ap->data->n_rows; i++) {
        const float *row = ap->out + i * (size_t)n_out;
        if (!classify) {
            fprintf(f, "%.9g\n", row[0]);
            continue;
        }
        pst_score_write_label(f, mf, pst_predicted_class(row, n_out));
        for (int k = 0; k < mf->n_classes; k++)
            fprintf(f, ",%.6g", n_out == 1 ? (k ? row[0] : 1.0f - row[0]) : row[k]);
        fputc('\n', f);
    }
}

/* A single model on a CSV file predicts by column name, streamed: *streamed says it ran. */
static int predict_by_name(applied_t *ap, const pst_score_opts_t *a, bool *streamed, pst_err_t *err)
{
    memset(ap, 0, sizeof *ap);
    int rc = load_model(ap, a->model, err);
    pst_config_t cfg;
    if (rc == PST_OK)
        rc = model_config(ap, a, &cfg, err);
    else
        return rc;
    if (rc == PST_OK && by_name(ap, &cfg, a->data)) {
        *streamed = true;
        pst_score_csv_t sc = {.mf = &ap->mf,
                              .data = a->data,
                              .target = cfg.data.target,
                              .id_column = a->id ? a->id : cfg.data.id_column,
                              .out = a->out};
        rc = pst_score_csv_predict(&sc, err);
    }
    pst_config_fini(&cfg);
    if (!*streamed)
        applied_fini(ap);
    return rc;
}

int pst_score_predict(const pst_score_opts_t *a)
{
    int status;
    if (sparse_model(a, true, &status))
        return status;
    applied_t ap;
    pst_err_t err = {0};
    bool streamed = false;
    int rc = predict_by_name(&ap, a, &streamed, &err);
    if (rc == PST_OK && !streamed)
        rc = load_and_apply(&ap, a, false, &err);
    if (streamed) {
    } else if (rc == PST_OK && !a->out) {
        write_predictions(stdout, &ap);
    } else if (rc == PST_OK) {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (!mem) {
            rc = pst_err_set(&err, PST_ENOMEM, "out of memory");
        } else {
            write_predictions(mem, &ap);
            fclose(mem);
            rc = pst_write_file_atomic(a->out, buf, len, &err);
        }
        free(buf);
    }
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    applied_fini(&ap);
    if (rc == PST_OK)
        pst_drift_warn_predict(a->model, a->data, a->sets, a->n_sets);
    return rc == PST_OK ? 0 : 1;
}

/* One model's description; indent prefixes every line (ensemble members). */
static void print_model(const pst_modelfile_t *mf, const char *indent, bool params)
{
    printf("%stask: %s\n%sclasses: %d\n%sinputs: %d\n", indent,
           mf->task == PST_TASK_REGRESSION ? "regression" : "classification", indent, mf->n_classes,
           indent, mf->n_inputs);
    if (mf->n_columns > 0) {
        printf("%scolumns:", indent);
        for (int i = 0; i < mf->n_columns; i++)
            printf(" %zu", mf->columns[i]);
        printf("\n");
    }
    printf("%sloss: %s\n%slayers:", indent, pst_loss_kind_name(mf->loss), indent);
    for (int i = 0; i < mf->n_layers; i++) {
        char text[64];
        printf(" %s", pst_layer_spec_format(&mf->layers[i], text, sizeof text));
    }
    printf("\n%sparameters: %zu\n%schecksum: %08x\n", indent, mf->n_params, indent,
           pst_checksum(mf->params, mf->n_params * sizeof(float)));
    /* --params output is the parameters after the fixed header lines (tests diff it). */
    if (!params)
        pst_cost_print_quant(mf, indent, stdout);
    if (!params)
        pst_info_print_inputs(mf, indent);
    if (!params && !indent[0])
        pst_drift_describe(mf, indent);
    if (!params && !indent[0])
        pst_info_print_training(mf, indent);
    for (size_t i = 0; params && i < mf->n_params; i++)
        printf("%.9g\n", mf->params[i]);
}

static void print_ensemble(const pst_ensemble_t *e, bool params)
{
    printf("ensemble: %s\nmembers: %d\n", pst_ensemble_method_name(e->method), e->n_members);
    if (!e->meta)
        printf("voting: %s\n", pst_voting_name(e->voting));
    for (int m = 0; m < e->n_members; m++) {
        printf("member %d:", m + 1);
        if (e->weights)
            printf(" weight %g", e->weights[m]);
        printf("\n");
        print_model(&e->members[m], "  ", params);
    }
    if (e->meta) {
        printf("meta model:\n");
        print_model(e->meta, "  ", params);
    }
}

int pst_score_info(const char *path, bool params)
{
    applied_t ap = {0};
    pst_err_t err = {0};
    bool sparse = false;
    if (pst_sparsefile_probe(path, &sparse, &err) == PST_OK && sparse) {
        int rc = pst_sparse_score_info(path, params, &err);
        if (rc != PST_OK)
            pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
        return rc == PST_OK ? 0 : 1;
    }
    if (load_model(&ap, path, &err) != PST_OK) {
        pst_app_error("%s", err.msg);
        applied_fini(&ap);
        return 1;
    }
    if (ap.ensemble)
        print_ensemble(&ap.ens, params);
    else
        print_model(&ap.mf, "", params);
    if (!params)
        pst_info_print_metrics(path);
    applied_fini(&ap);
    return 0;
}
