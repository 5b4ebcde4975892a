/* pstrain info for tabular models: classes, inputs, preprocessing, configuration, metrics. */
#include "app/score_info.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"

static const char *kind_text(pst_enc_kind_t kind)
{
    static const char *names[] = {"value", "date parts (year, month, day of week, day of year)",
                                  "one-hot", "hashed", "ordinal"};
    return (unsigned)kind < 5 ? names[kind] : "?";
}

static void print_classes(const pst_modelfile_t *mf, const char *indent)
{
    if (mf->task != PST_TASK_CLASSIFICATION || (!mf->class_names && !mf->class_values))
        return;
    printf("%sclass labels:", indent);
    for (int k = 0; k < mf->n_classes; k++) {
        if (mf->class_names)
            printf("%s'%s'", k ? ", " : " ", mf->class_names[k]);
        else
            printf("%s%g", k ? ", " : " ", mf->class_values[k]);
    }
    printf("\n");
}

static void print_input(const pst_enc_input_t *in, const char *indent)
{
    printf("%s  %s: %s, %s", indent, in->name, pst_col_type_name(in->type), kind_text(in->kind));
    if (in->kind == PST_ENC_ONEHOT || in->kind == PST_ENC_ORDINAL) {
        printf(", %zu values:", in->n_vocab);
        for (size_t k = 0; k < in->n_vocab && k < 12; k++)
            printf(in->vocab[k][0] ? "%s'%s'" : "%s%s", k ? ", " : " ",
                   in->vocab[k][0] ? in->vocab[k] : "<missing>");
        if (in->n_vocab > 12)
            printf(", ...");
        if (in->kind == PST_ENC_ONEHOT)
            printf(" (+ other)");
    } else if (in->kind == PST_ENC_HASH) {
        printf(", %zu slots", in->n_slots);
    }
    if (isfinite(in->clip_lo) || isfinite(in->clip_hi))
        printf(", clipped to [%g, %g]", in->clip_lo, in->clip_hi);
    printf(" -> features %zu..%zu\n", in->offset + 1, in->offset + in->width);
}

void pst_info_print_inputs(const pst_modelfile_t *mf, const char *indent)
{
    print_classes(mf, indent);
    if (mf->target_name)
        printf("%starget column: %s\n", indent, mf->target_name);
    if (mf->encoder) {
        printf("%sinput columns: %zu (%zu features)\n", indent, mf->encoder->n_inputs,
               mf->encoder->n_features);
        for (size_t j = 0; j < mf->encoder->n_inputs; j++)
            print_input(&mf->encoder->inputs[j], indent);
    } else if (mf->feature_names) {
        printf("%sinput columns: %d, numeric:", indent, mf->n_inputs);
        for (int j = 0; j < mf->n_inputs; j++)
            printf("%s%s", j ? ", " : " ", mf->feature_names[j]);
        printf("\n");
    }
    if (!mf->shift) {
        printf("%spreprocessing: none\n", indent);
        return;
    }
    size_t scaled = 0;
    for (int j = 0; j < mf->n_inputs; j++)
        scaled += mf->shift[j] != 0 || mf->scale[j] != 1;
    printf("%spreprocessing: missing values filled, then (x - shift) * scale on %zu of %d "
           "features%s\n",
           indent, scaled, mf->n_inputs,
           mf->pixel_scale != 0 && mf->pixel_scale != 1 ? ", pixels scaled first" : "");
}

void pst_info_print_training(const pst_modelfile_t *mf, const char *indent)
{
    static const char *prefixes[] = {"data.target",
                                     "data.scaler",
                                     "data.impute",
                                     "data.dates",
                                     "data.max_categories",
                                     "data.outliers",
                                     "data.high_cardinality",
                                     "model.type",
                                     "model.hidden",
                                     "model.layers",
                                     "model.activation",
                                     "model.output",
                                     "model.loss",
                                     "optimizer.name",
                                     "optimizer.lr",
                                     "optimizer.weight_decay",
                                     "train.epochs",
                                     "train.batch_size",
                                     "train.l2",
                                     "train.patience",
                                     "train.imbalance"};
    if (!mf->config_yaml)
        return;
    printf("%straining configuration:\n", indent);
    /* The stored YAML is "section:\n  key: value" lines: print the keys with their section. */
    char section[64] = "";
    const char *line = mf->config_yaml;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char text[512];
        snprintf(text, sizeof text, "%.*s", (int)(len < 511 ? len : 511), line);
        if (text[0] != ' ' && strchr(text, ':') && text[strlen(text) - 1] == ':') {
            snprintf(section, sizeof section, "%.*s", (int)(strlen(text) - 1), text);
        } else if (text[0] == ' ') {
            char full[600];
            const char *key = text + strspn(text, " ");
            snprintf(full, sizeof full, "%s.%s", section, key);
            for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++)
                if (strncmp(full, prefixes[p], strlen(prefixes[p])) == 0 &&
                    full[strlen(prefixes[p])] == ':') {
                    printf("%s  %s\n", indent, full);
                    break;
                }
        }
        line += len + (end ? 1 : 0);
    }
}

void pst_info_print_metrics(const char *model_path)
{
    char path[4096];
    const char *slash = strrchr(model_path, '/');
    snprintf(path, sizeof path, "%.*sreport.json", slash ? (int)(slash - model_path + 1) : 0,
             model_path);
    unsigned char *text = NULL;
    size_t len;
    if (pst_read_file(path, 64u << 20, &text, &len, NULL) != PST_OK)
        return;
    cJSON *doc = cJSON_Parse((const char *)text);
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(doc, "test");
    static const char *keys[] = {"n",        "accuracy", "f1_macro", "roc_auc",
                                 "log_loss", "mse",      "mae",      "r2"};
    if (cJSON_IsObject(test)) {
        printf("test metrics (%s):", path);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(test, keys[k]);
            if (cJSON_IsNumber(v))
                printf("  %s %.4g", strcmp(keys[k], "n") ? keys[k] : "rows", v->valuedouble);
        }
        printf("\n");
    }
    cJSON_Delete(doc);
    free(text);
}
