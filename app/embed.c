/* Projector files: the stack cut after the chosen layer, applied to every row. */
#include "app/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/pipeline.h"
#include "common/atomicfile.h"
#include "worker/model/modelfile.h"
#include "worker/train/train.h"

#define CHUNK 256

/* The layers 0..layer of mf as a model of their own: the stack's arena lays tensors out layer
 * by layer, so its parameters are the first ones of the whole model's. */
static pst_model_t *cut_model(const pst_modelfile_t *mf, int layer, pst_err_t *err)
{
    pst_model_t *m = pst_model_new(pst_modelfile_width(mf), mf->layers, layer + 1, CHUNK, err);
    if (m && pst_model_n_params(m) > mf->n_params) {
        pst_err_set(err, PST_EFORMAT, "model file holds fewer parameters than its layers need");
        pst_model_destroy(&m);
    }
    if (m)
        memcpy(pst_model_params(m), mf->params, pst_model_n_params(m) * sizeof(float));
    return m;
}

static int load_data(const pst_embed_opts_t *o, const pst_modelfile_t *mf, pst_dataset_t **ds,
                     pst_err_t *err)
{
    pst_config_t cfg;
    pst_config_init(&cfg);
    int rc = mf->config_yaml ? pst_config_load_string(&cfg, mf->config_yaml, o->model, err) : 0;
    for (int i = 0; i < o->n_sets && rc == PST_OK; i++)
        rc = pst_config_set(&cfg, o->sets[i], err);
    bool classify = mf->task == PST_TASK_CLASSIFICATION;
    if (rc == PST_OK)
        rc = pst_pipeline_load_file(&cfg, o->data, cfg.data.test_labels,
                                    classify ? mf->class_values : NULL,
                                    classify ? mf->n_classes : 0, ds, err);
    pst_config_fini(&cfg);
    if (rc == PST_OK)
        rc = pst_dataset_densify(*ds, (size_t)mf->n_inputs, err);
    if (rc == PST_OK)
        rc = pst_modelfile_preprocess(mf, *ds, err);
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", o->data);
}

/* Formats the text of one file into a memory stream and writes it atomically to dir/name. */
typedef void (*writer_fn)(FILE *f, const void *ctx);

static int write_text(const char *dir, const char *name, writer_fn fn, const void *ctx,
                      pst_err_t *err)
{
    char *buf = NULL, path[1200];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    fn(f, ctx);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = pst_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

typedef struct embedded {
    const pst_dataset_t *ds;
    const pst_modelfile_t *mf;
    const float *emb; // (rows, dim)
    const float *out; // (rows, n_out) the whole model's outputs
    int dim, n_out, layer;
} embedded_t;

static void write_tensors(FILE *f, const void *ctx)
{
    const embedded_t *e = ctx;
    for (size_t r = 0; r < e->ds->n_rows; r++)
        for (int j = 0; j < e->dim; j++)
            fprintf(f, "%.7g%c", e->emb[r * (size_t)e->dim + j], j + 1 < e->dim ? '\t' : '\n');
}

static void write_metadata(FILE *f, const void *ctx)
{
    const embedded_t *e = ctx;
    bool classify = e->mf->task == PST_TASK_CLASSIFICATION;
    fputs(classify ? "label\tpredicted\n" : "target\tprediction\n", f);
    for (size_t r = 0; r < e->ds->n_rows; r++) {
        const float *o = e->out + r * (size_t)e->n_out;
        if (classify)
            fprintf(f, "%.10g\t%.10g\n", e->mf->class_values[(int)e->ds->y[r]],
                    e->mf->class_values[pst_predicted_class(o, e->n_out)]);
        else
            fprintf(f, "%.7g\t%.7g\n", e->ds->y[r], o[0]);
    }
}

static void write_config(FILE *f, const void *ctx)
{
    const embedded_t *e = ctx;
    fprintf(f,
            "embeddings {\n  tensor_name: \"layer%d\"\n  tensor_shape: %zu\n  tensor_shape: %d\n"
            "  tensor_path: \"tensors.tsv\"\n  metadata_path: \"metadata.tsv\"\n}\n",
            e->layer, e->ds->n_rows, e->dim);
}

static int embed(const pst_embed_opts_t *o, const char *dir, pst_err_t *err)
{
    pst_modelfile_t mf = {0};
    pst_dataset_t *ds = NULL;
    pst_model_t *cut = NULL, *whole = NULL;
    float *emb = NULL, *out = NULL;
    int rc = pst_modelfile_load(&mf, o->model, err);
    if (rc == PST_OK && (o->layer < 0 || o->layer >= mf.n_layers))
        rc = pst_err_set(err, PST_ERANGE, "--layer %d: %s has layers 0 to %d", o->layer, o->model,
                         mf.n_layers - 1);
    if (rc == PST_OK)
        rc = load_data(o, &mf, &ds, err);
    if (rc == PST_OK &&
        (!(cut = cut_model(&mf, o->layer, err)) || !(whole = pst_modelfile_build(&mf, CHUNK, err))))
        rc = pst_err_code(err, PST_EFORMAT);
    embedded_t e = {.ds = ds, .mf = &mf, .layer = o->layer};
    if (rc == PST_OK) {
        e.dim = pst_model_n_outputs(cut);
        e.n_out = pst_model_n_outputs(whole);
        size_t n = ds->n_rows ? ds->n_rows : 1;
        emb = malloc(n * (size_t)e.dim * sizeof *emb);
        out = malloc(n * (size_t)e.n_out * sizeof *out);
        rc = emb && out ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    if (rc == PST_OK && (rc = pst_predict(cut, ds, CHUNK, emb, err)) == PST_OK)
        rc = pst_predict(whole, ds, CHUNK, out, err);
    e.emb = emb;
    e.out = out;
    if (rc == PST_OK)
        rc = pst_mkdir_p(dir, err);
    if (rc == PST_OK)
        rc = write_text(dir, "tensors.tsv", write_tensors, &e, err);
    if (rc == PST_OK)
        rc = write_text(dir, "metadata.tsv", write_metadata, &e, err);
    if (rc == PST_OK)
        rc = write_text(dir, "projector_config.pbtxt", write_config, &e, err);
    if (rc == PST_OK)
        printf("layer %d: %zu rows x %d values in %s/tensors.tsv, labels in metadata.tsv\n",
               o->layer, ds->n_rows, e.dim, dir);
    free(emb);
    free(out);
    pst_model_destroy(&cut);
    pst_model_destroy(&whole);
    pst_dataset_destroy(&ds);
    pst_modelfile_fini(&mf);
    return rc;
}

int pst_embed_run(const pst_embed_opts_t *o)
{
    char dir[1024];
    if (o->out) {
        snprintf(dir, sizeof dir, "%s", o->out);
    } else {
        const char *slash = strrchr(o->model, '/');
        int len = slash ? (int)(slash - o->model) : 1;
        snprintf(dir, sizeof dir, "%.*s/projector", len, slash ? o->model : ".");
    }
    pst_err_t err = {0};
    int rc = embed(o, dir, &err);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    return rc == PST_OK ? 0 : 1;
}
