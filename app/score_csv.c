/* Scoring a CSV file by column name: chunks of rows, encoded, preprocessed and predicted. */
#include "app/score_csv.h"

#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/data/rowreader.h"
#include "common/log.h"
#include "worker/train/train.h"

enum { CHUNK_ROWS = 4096, MODEL_BATCH = 256 };

const pst_encoder_t *pst_score_inputs(const pst_modelfile_t *mf, pst_encoder_t **owned)
{
    *owned = NULL;
    if (mf->encoder)
        return mf->encoder;
    if (!mf->feature_names || !(*owned = pst_encoder_new((size_t)mf->n_inputs)))
        return NULL;
    for (int j = 0; j < mf->n_inputs; j++)
        if (!((*owned)->inputs[j].name = strdup(mf->feature_names[j]))) {
            pst_encoder_destroy(owned);
            return NULL;
        }
    pst_encoder_layout(*owned);
    return *owned;
}

/* Writes s as one CSV field, quoted when it holds a comma, a quote or a line end. */
static void write_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void pst_score_write_label(FILE *f, const pst_modelfile_t *mf, int k)
{
    if (mf->class_names)
        write_field(f, mf->class_names[k]);
    else if (mf->class_values)
        fprintf(f, "%.17g", mf->class_values[k]);
    else
        fprintf(f, "%d", k);
}

/* A pass over the file: each chunk's outputs go to on_chunk. */
typedef int (*chunk_fn)(void *ctx, const float *out, int n_out, const float *y, char **ids,
                        size_t n, pst_err_t *err);

typedef struct pass {
    const pst_score_csv_t *s;
    pst_rowreader_t *reader;
    pst_model_t *model;
    pst_dataset_t *chunk;
    float *out;
    char **ids;
} pass_t;

static void pass_fini(pass_t *p)
{
    pst_rowreader_destroy(&p->reader);
    pst_model_destroy(&p->model);
    pst_dataset_destroy(&p->chunk);
    free(p->out);
    free(p->ids);
}

static int pass_open(pass_t *p, const pst_encoder_t *enc, bool need_target, pst_err_t *err)
{
    const pst_modelfile_t *mf = p->s->mf;
    pst_rowreader_opts_t ro = {
        .encoder = enc,
        .target = p->s->target,
        .need_target = need_target,
        .task = mf->task,
        .n_classes = mf->n_classes,
        .class_values = mf->class_values,
        .class_names = (const char *const *)mf->class_names,
        .id_column = p->s->id_column,
    };
    if (!(p->reader = pst_rowreader_open(p->s->data, &ro, err)))
        return pst_err_code(err, PST_EFORMAT);
    const char *ignored = pst_rowreader_ignored(p->reader);
    if (ignored)
        pst_warn("%s: columns not used by the model, ignored: %s", p->s->data, ignored);
    if (!(p->model = pst_modelfile_build(mf, MODEL_BATCH, err)))
        return pst_err_code(err, PST_EFORMAT);
    int n_out = pst_model_n_outputs(p->model);
    p->chunk = pst_dataset_new(CHUNK_ROWS, enc->n_features, mf->task);
    p->out = malloc((size_t)CHUNK_ROWS * (size_t)n_out * sizeof(float));
    p->ids = calloc(CHUNK_ROWS, sizeof(char *));
    if (!p->chunk || !p->out || !p->ids)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    return PST_OK;
}

static int run_pass(const pst_score_csv_t *s, bool need_target, chunk_fn fn, void *ctx,
                    pst_err_t *err)
{
    pst_encoder_t *owned;
    const pst_encoder_t *enc = pst_score_inputs(s->mf, &owned);
    if (enc == NULL)
        return pst_err_set(err, PST_EINVAL, "the model has no named inputs");
    pass_t p = {.s = s};
    int rc = pass_open(&p, enc, need_target, err);
    size_t first_row = 0;
    while (rc == PST_OK) {
        size_t n = 0;
        p.chunk->n_features = enc->n_features;
        if ((rc = pst_rowreader_next(p.reader, CHUNK_ROWS, p.chunk->x, p.chunk->y,
                                     s->id_column && s->id_column[0] ? p.ids : NULL, &n, err)) ||
            n == 0)
            break;
        p.chunk->n_rows = n;
        if ((rc = pst_modelfile_preprocess(s->mf, p.chunk, err)) != PST_OK) {
            pst_err_prefix(err, rc, "%s: rows %zu..%zu: ", s->data, first_row + 1, first_row + n);
            break;
        }
        if ((rc = pst_predict(p.model, p.chunk, MODEL_BATCH, p.out, err)) == PST_OK)
            rc = fn(ctx, p.out, pst_model_n_outputs(p.model), p.chunk->y, p.ids, n, err);
        for (size_t i = 0; i < n; i++) {
            free(p.ids[i]);
            p.ids[i] = NULL;
        }
        first_row += n;
    }
    pass_fini(&p);
    pst_encoder_destroy(&owned);
    return rc;
}

/* ---- predict ---- */

typedef struct predict_ctx {
    const pst_score_csv_t *s;
    pst_atomic_writer_t *w; /* NULL: stdout */
    bool header_done;
} predict_ctx_t;

static void write_header(FILE *f, const pst_score_csv_t *s)
{
    const pst_modelfile_t *mf = s->mf;
    if (s->id_column && s->id_column[0]) {
        write_field(f, s->id_column);
        fputc(',', f);
    }
    fputs("prediction", f);
    for (int k = 0; mf->task == PST_TASK_CLASSIFICATION && k < mf->n_classes; k++) {
        fputs(",p_", f);
        pst_score_write_label(f, mf, k);
    }
    fputc('\n', f);
}

static void write_rows(FILE *f, const pst_modelfile_t *mf, const float *out, int n_out, char **ids,
                       size_t n, bool with_ids)
{
    for (size_t i = 0; i < n; i++) {
        const float *row = out + i * (size_t)n_out;
        if (with_ids) {
            write_field(f, ids[i]);
            fputc(',', f);
        }
        if (mf->task != PST_TASK_CLASSIFICATION) {
            fprintf(f, "%.9g\n", row[0]);
            continue;
        }
        pst_score_write_label(f, mf, pst_predicted_class(row, n_out));
        for (int k = 0; k < mf->n_classes; k++)
            fprintf(f, ",%.6g", n_out == 1 ? (k ? row[0] : 1.0f - row[0]) : row[k]);
        fputc('\n', f);
    }
}

static int predict_chunk(void *ctx, const float *out, int n_out, const float *y, char **ids,
                         size_t n, pst_err_t *err)
{
    (void)y;
    predict_ctx_t *c = ctx;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (mem == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    if (!c->header_done)
        write_header(mem, c->s);
    c->header_done = true;
    write_rows(mem, c->s->mf, out, n_out, ids, n, c->s->id_column && c->s->id_column[0]);
    fclose(mem);
    int rc = PST_OK;
    if (c->w)
        rc = pst_atomic_writer_write(c->w, buf, len, err);
    else if (fwrite(buf, 1, len, stdout) != len)
        rc = pst_err_set(err, PST_EIO, "standard output: write failed");
    free(buf);
    return rc;
}

int pst_score_csv_predict(const pst_score_csv_t *s, pst_err_t *err)
{
    predict_ctx_t c = {.s = s};
    int rc = s->out ? pst_atomic_writer_open(s->out, 0, &c.w, err) : PST_OK;
    if (rc == PST_OK)
        rc = run_pass(s, false, predict_chunk, &c, err);
    if (rc == PST_OK && !c.header_done)
        rc = predict_chunk(&c, NULL, 1, NULL, NULL, 0, err);
    if (rc == PST_OK && c.w)
        rc = pst_atomic_writer_commit(&c.w, err);
    pst_atomic_writer_destroy(&c.w);
    return rc;
}

/* ---- eval ---- */

typedef struct collect_ctx {
    float *out, *y;
    int n_out;
    size_t n, cap;
} collect_ctx_t;

static int collect_chunk(void *ctx, const float *out, int n_out, const float *y, char **ids,
                         size_t n, pst_err_t *err)
{
    (void)ids;
    collect_ctx_t *c = ctx;
    c->n_out = n_out;
    if (c->n + n > c->cap) {
        size_t cap = 2 * (c->n + n);
        float *o = realloc(c->out, cap * (size_t)n_out * sizeof(float));
        if (o)
            c->out = o;
        float *yy = o ? realloc(c->y, cap * sizeof(float)) : NULL;
        if (!yy)
            return pst_err_set(err, PST_ENOMEM, "out of memory after %zu rows", c->n);
        c->y = yy;
        c->cap = cap;
    }
    memcpy(c->out + c->n * (size_t)n_out, out, n * (size_t)n_out * sizeof(float));
    memcpy(c->y + c->n, y, n * sizeof(float));
    c->n += n;
    return PST_OK;
}

int pst_score_csv_collect(const pst_score_csv_t *s, float **out, int *n_out, float **y, size_t *n,
                          pst_err_t *err)
{
    collect_ctx_t c = {0};
    int rc = run_pass(s, true, collect_chunk, &c, err);
    if (rc == PST_OK && c.n == 0)
        rc = pst_err_set(err, PST_EFORMAT, "%s: no data rows after the header", s->data);
    if (rc != PST_OK) {
        free(c.out);
        free(c.y);
        return rc;
    }
    *out = c.out;
    *y = c.y;
    *n_out = c.n_out;
    *n = c.n;
    return PST_OK;
}
