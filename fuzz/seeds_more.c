/* Seeds of the targets added after seeds.c: the state file, the federated contract and the
 * libpstrain row reader. Each writes valid inputs into ROOT/TARGET/. */
#include "fuzz/seeds_more.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/config.h"
#include "common/data/csv.h"
#include "common/data/encoder.h"
#include "worker/model/model.h"
#include "worker/model/modelfile.h"
#include "worker/train/statefile.h"

static void die(const char *what)
{
    fprintf(stderr, "fuzz_seeds: %s\n", what);
    exit(1);
}

static void save(const char *root, const char *target, const char *name, const uint8_t *head,
                 size_t head_len, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot create a corpus directory");
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(head, 1, head_len, f) != head_len ||
        (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        die("cannot write a seed");
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0)
        die("cannot read back a file");
    long n = ftell(f);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    rewind(f);
    if (b == NULL || n < 0 || fread(b, 1, (size_t)n, f) != (size_t)n)
        die("cannot read back a file");
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void statefile_seeds(const char *root)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seed.state", root);
    float state[5] = {1.5f, -2.0f, 0.0f, 1e-3f, 7.0f};
    if (pst_statefile_save(path, 7, state, 5, NULL) != PST_OK)
        die("state file save");
    size_t len;
    uint8_t *b = slurp(path, &len);
    remove(path);
    save(root, "statefile", "clock7", (const uint8_t[]){5}, 1, b, len);
    save(root, "statefile", "own-clock-sealed", (const uint8_t[]){0xc5}, 1, b, len);
    save(root, "statefile", "other-count", (const uint8_t[]){4}, 1, b, len);
    free(b);
}

/* Two 2-byte little-endian length frames after a control byte (fuzz.h's framing). */
static void save_frames(const char *root, const char *name, uint8_t control, const uint8_t *a,
                        size_t a_len, const char *text)
{
    size_t t_len = strlen(text), len = 1 + 2 + a_len + 2 + t_len;
    uint8_t *b = malloc(len);
    if (b == NULL || a_len > 0xffff)
        die("libpstrain seed");
    b[0] = control;
    b[1] = (uint8_t)a_len, b[2] = (uint8_t)(a_len >> 8);
    memcpy(b + 3, a, a_len);
    b[3 + a_len] = (uint8_t)t_len, b[4 + a_len] = (uint8_t)(t_len >> 8);
    memcpy(b + 5 + a_len, text, t_len);
    save(root, "libpstrain", name, b, len, NULL, 0);
    free(b);
}

/* A small MLP over n_inputs features with the given encoder (or none), saved to path. */
static void save_mlp(const char *path, int n_inputs, pst_encoder_t *enc, char **class_names,
                     char *config_yaml, uint8_t **packed, size_t *packed_len)
{
    pst_layer_spec_t layers[4] = {{.kind = PST_LAYER_DENSE, .units = 3},
                                  {.kind = PST_LAYER_RELU},
                                  {.kind = PST_LAYER_DENSE, .units = 2},
                                  {.kind = PST_LAYER_SOFTMAX}};
    size_t n_params = (size_t)n_inputs * 3 + 3 + 3 * 2 + 2;
    float *params = malloc(n_params * sizeof *params);
    float *pre = malloc(3 * (size_t)n_inputs * sizeof *pre);
    if (params == NULL || pre == NULL)
        die("out of memory");
    for (size_t i = 0; i < n_params; i++)
        params[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < n_inputs; i++)
        pre[i] = 0.5f, pre[n_inputs + i] = 2.0f, pre[2 * n_inputs + i] = 0.25f;
    static double classes[2] = {0, 1};
    pst_modelfile_t mf = {.n_inputs = n_inputs,
                          .n_layers = 4,
                          .layers = layers,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = 2,
                          .class_values = classes,
                          .class_names = class_names,
                          .shift = pre,
                          .scale = pre + n_inputs,
                          .fill = pre + 2 * n_inputs,
                          .pixel_scale = 1,
                          .params = params,
                          .n_params = n_params,
                          .encoder = enc,
                          .config_yaml = config_yaml};
    if (path != NULL && pst_modelfile_save(&mf, path, NULL) != PST_OK)
        die("model save");
    if (packed != NULL && pst_modelfile_pack(&mf, packed, packed_len, NULL) != PST_OK)
        die("model pack");
    free(params);
    free(pre);
}

/* A model with an encoder fitted on a CSV file of every column type, and one without. */
static void libpstrain_seeds(const char *root)
{
    char csv[4096], model[4096];
    snprintf(csv, sizeof csv, "%s/seed.csv", root);
    snprintf(model, sizeof model, "%s/seed.pst", root);
    FILE *f = fopen(csv, "w");
    if (f == NULL ||
        fputs("x,color,flag,day,y\n1.5,red,true,2024-01-02,yes\n-2,blue,false,"
              "2024-03-04,no\n0.25,red,true,2023-12-31,no\n3,green,false,"
              "2024-02-29,yes\n",
              f) < 0 ||
        fclose(f) != 0)
        die("seed csv");
    pst_dataset_t *raw = NULL;
    pst_err_t err = {0};
    if (pst_csv_read(&(pst_data_spec_t){.path = csv, .target = "y"}, &raw, &err) != PST_OK)
        die(err.msg);
    pst_encoder_opts_t eo = {.max_categories = 8, .beyond = PST_ENC_ONEHOT, .hash_slots = 4};
    pst_encoder_t *enc = NULL;
    if (pst_encoder_fit(raw, NULL, raw->n_rows, &eo, &enc, &err) != PST_OK)
        die(err.msg);
    save_mlp(model, (int)enc->n_features, enc, raw->class_names, NULL, NULL, NULL);
    size_t len;
    uint8_t *b = slurp(model, &len);
    save_frames(root, "encoder-strings", 0, b, len, "1.5,red,true,2024-01-02,NA,purple,0,?,-3");
    save_frames(root, "encoder-numbers", 1, b, len, "1.5,2,1,19000,nan");
    save_frames(root, "encoder-missing-column", 2, b, len, "1,red,true,2024-01-02");
    free(b);
    save_mlp(model, 4, NULL, NULL, NULL, NULL, NULL);
    b = slurp(model, &len);
    save_frames(root, "plain-strings", 0, b, len, "1,2.5,NA,-4,1e3,?,0");
    save_frames(root, "plain-numbers", 1, b, len, "1,2,3,4");
    free(b);
    remove(model);
    remove(csv);
    pst_encoder_destroy(&enc);
    pst_dataset_destroy(&raw);
}

/* The contract as a federated server packs it: the model with its configuration. */
static void fedcontract_seeds(const char *root)
{
    pst_config_t cfg;
    pst_err_t err = {0};
    if (pst_config_init(&cfg) != PST_OK ||
        pst_config_load_string(&cfg, "model:\n  layers: [dense:3, relu]\n", "seed", &err))
        die("contract configuration");
    char *yaml = pst_config_to_string(&cfg);
    uint8_t *packed;
    size_t len;
    save_mlp(NULL, 4, NULL, NULL, yaml, &packed, &len);
    save(root, "fedcontract", "mlp", packed, len, NULL, 0);
    free(packed);
    save_mlp(NULL, 4, NULL, NULL, NULL, &packed, &len);
    save(root, "fedcontract", "no-configuration", packed, len, NULL, 0);
    free(packed);
    free(yaml);
    pst_config_fini(&cfg);
}

void pst_fuzz_more_seeds(const char *root)
{
    statefile_seeds(root);
    libpstrain_seeds(root);
    fedcontract_seeds(root);
}
