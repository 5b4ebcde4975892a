/* Ensemble files: pst.Ensemble with magic PSTE, checked on read; voting and stacking arithmetic. */
#include "worker/model/ensemble.h"

#include "common/data/table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/filesum.h"
#include "pstrain.pb-c.h"
#include "worker/train/train.h"

#define ENSEMBLE_MAX_BYTES ((size_t)4 << 30)
#define ENSEMBLE_MAX_MEMBERS 100000
#define APPLY_CHUNK 256

static const char *const method_names[] = {"bagging", "voting", "stacking", "blending"};
static const char *const voting_names[] = {"soft", "hard"};

const char *pst_ensemble_method_name(pst_ensemble_method_t method)
{
    return (unsigned)method < 4 ? method_names[method] : "?";
}

int pst_ensemble_method_parse(const char *name, pst_ensemble_method_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (pst_ensemble_method_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

const char *pst_voting_name(pst_voting_t voting)
{
    return (unsigned)voting < 2 ? voting_names[voting] : "?";
}

int pst_voting_parse(const char *name, pst_voting_t *out)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(name, voting_names[i]) == 0) {
            *out = (pst_voting_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

void pst_ensemble_fini(pst_ensemble_t *e)
{
    for (int i = 0; e->members && i < e->n_members; i++)
        pst_modelfile_fini(&e->members[i]);
    free(e->members);
    free(e->weights);
    if (e->meta)
        pst_modelfile_fini(e->meta);
    free(e->meta);
    memset(e, 0, sizeof *e);
}

int pst_ensemble_width(pst_task_t task, int n_classes)
{
    return task == PST_TASK_CLASSIFICATION ? n_classes : 1;
}

static bool uses_meta(pst_ensemble_method_t m)
{
    return m == PST_ENSEMBLE_STACKING || m == PST_ENSEMBLE_BLENDING;
}

/* ---- checks ------------------------------------------------------------------------------ */

static int check_weights(const pst_ensemble_t *e, const char *origin, pst_err_t *err)
{
    if (!e->weights)
        return PST_OK;
    double sum = 0;
    for (int i = 0; i < e->n_members; i++) {
        if (!isfinite(e->weights[i]) || e->weights[i] < 0)
            return pst_err_set(err, PST_EFORMAT, "%s: member %d has weight %g", origin, i + 1,
                               e->weights[i]);
        sum += e->weights[i];
    }
    return sum > 0 ? PST_OK : pst_err_set(err, PST_EFORMAT, "%s: the weights sum to 0", origin);
}

static int check_meta(const pst_ensemble_t *e, const char *origin, pst_err_t *err)
{
    const pst_modelfile_t *first = &e->members[0], *meta = e->meta;
    if (!uses_meta(e->method))
        return meta ? pst_err_set(err, PST_EFORMAT, "%s: a %s ensemble has a meta model", origin,
                                  pst_ensemble_method_name(e->method))
                    : PST_OK;
    if (!meta)
        return pst_err_set(err, PST_EFORMAT, "%s: %s ensemble without a meta model", origin,
                           pst_ensemble_method_name(e->method));
    int width = pst_ensemble_width(first->task, first->n_classes);
    if (meta->n_inputs != e->n_members * width)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: the meta model takes %d inputs, %d members give %d", origin,
                           meta->n_inputs, e->n_members, e->n_members * width);
    if (meta->task != first->task || meta->n_classes != first->n_classes)
        return pst_err_set(err, PST_EFORMAT, "%s: the meta model's task or classes differ", origin);
    return PST_OK;
}

int pst_ensemble_check(const pst_ensemble_t *e, const char *origin, pst_err_t *err)
{
    if (e->n_members < 1 || e->n_members > ENSEMBLE_MAX_MEMBERS || !e->members)
        return pst_err_set(err, PST_EFORMAT, "%s: %d members", origin, e->n_members);
    const pst_modelfile_t *first = &e->members[0];
    if (first->task == PST_TASK_CLASSIFICATION && first->n_classes < 2)
        return pst_err_set(err, PST_EFORMAT, "%s: %d classes", origin, first->n_classes);
    for (int i = 1; i < e->n_members; i++) {
        const pst_modelfile_t *m = &e->members[i];
        if (m->n_inputs != first->n_inputs || m->task != first->task ||
            m->n_classes != first->n_classes)
            return pst_err_set(err, PST_EFORMAT,
                               "%s: member %d differs from member 1 in inputs, task or classes",
                               origin, i + 1);
    }
    if (e->voting == PST_VOTE_HARD && first->task != PST_TASK_CLASSIFICATION &&
        !uses_meta(e->method))
        return pst_err_set(err, PST_EFORMAT, "%s: hard voting needs a classification task", origin);
    int rc = check_weights(e, origin, err);
    return rc == PST_OK ? check_meta(e, origin, err) : rc;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* A modelfile as the decoded message an Ensemble embeds (free with pst__model__free_unpacked). */
static Pst__Model *model_message(const pst_modelfile_t *mf, pst_err_t *err)
{
    uint8_t *buf;
    size_t len;
    if (pst_modelfile_pack(mf, &buf, &len, err) != PST_OK)
        return NULL;
    Pst__Model *m = pst__model__unpack(NULL, len, buf);
    free(buf);
    if (!m)
        pst_err_set(err, PST_ENOMEM, "ensemble: out of memory");
    return m;
}

static void free_messages(Pst__Model **members, int n, Pst__Model *meta)
{
    for (int i = 0; members && i < n; i++)
        if (members[i])
            pst__model__free_unpacked(members[i], NULL);
    free(members);
    if (meta)
        pst__model__free_unpacked(meta, NULL);
}

int pst_ensemble_save(const pst_ensemble_t *e, const char *path, pst_err_t *err)
{
    int rc = pst_ensemble_check(e, path, err);
    if (rc != PST_OK)
        return rc;
    Pst__Ensemble msg = PST__ENSEMBLE__INIT;
    Pst__Model **members = calloc((size_t)e->n_members, sizeof *members);
    Pst__Model *meta = NULL;
    if (!members)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < e->n_members && rc == PST_OK; i++)
        if (!(members[i] = model_message(&e->members[i], err)))
            rc = err ? err->code : PST_ENOMEM;
    if (rc == PST_OK && e->meta && !(meta = model_message(e->meta, err)))
        rc = err ? err->code : PST_ENOMEM;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rc == PST_OK) {
        msg.magic = PST_ENSEMBLE_MAGIC;
        msg.version = PST_ENSEMBLE_VERSION;
        msg.method = (char *)pst_ensemble_method_name(e->method);
        msg.voting = (char *)pst_voting_name(e->voting);
        msg.n_weights = e->weights ? (size_t)e->n_members : 0;
        msg.weights = e->weights;
        msg.n_members = (size_t)e->n_members;
        msg.members = members;
        msg.meta = meta;
        len = pst__ensemble__get_packed_size(&msg);
        if (!(buf = malloc(len ? len : 1)))
            rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    if (rc == PST_OK) {
        pst__ensemble__pack(&msg, buf);
        rc = pst_filesum_write(path, buf, len, err);
    }
    free(buf);
    free_messages(members, e->n_members, meta);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Decodes one embedded Model through the model file's own checks. */
static int read_member(pst_modelfile_t *mf, const Pst__Model *m, const char *origin,
                       const char *what, pst_err_t *err)
{
    size_t len = pst__model__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    pst__model__pack(m, buf);
    char name[1200];
    snprintf(name, sizeof name, "%s: %s", origin, what);
    int rc = pst_modelfile_unpack(mf, buf, len, name, err);
    free(buf);
    return rc;
}

static int read_header(pst_ensemble_t *e, const Pst__Ensemble *msg, const char *origin,
                       pst_err_t *err)
{
    if (msg->magic == PST_MODELFILE_MAGIC)
        return pst_err_set(err, PST_EFORMAT, "%s: a model file, not an ensemble", origin);
    if (msg->magic != PST_ENSEMBLE_MAGIC)
        return pst_err_set(err, PST_EFORMAT, "%s: not a pstrain ensemble file (bad magic)", origin);
    if (msg->version != PST_ENSEMBLE_VERSION)
        return pst_err_set(err, PST_EFORMAT, "%s: ensemble file version %u, this pstrain reads %u",
                           origin, msg->version, PST_ENSEMBLE_VERSION);
    if (pst_ensemble_method_parse(msg->method, &e->method) != PST_OK)
        return pst_err_set(err, PST_EFORMAT, "%s: unknown ensemble method '%s'", origin,
                           msg->method);
    if (pst_voting_parse(msg->voting, &e->voting) != PST_OK)
        return pst_err_set(err, PST_EFORMAT, "%s: unknown voting '%s'", origin, msg->voting);
    if (msg->n_members == 0 || msg->n_members > ENSEMBLE_MAX_MEMBERS)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu members", origin, msg->n_members);
    if (msg->n_weights != 0 && msg->n_weights != msg->n_members)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu weights for %zu members", origin,
                           msg->n_weights, msg->n_members);
    return PST_OK;
}

static int read_ensemble(pst_ensemble_t *e, const Pst__Ensemble *msg, const char *origin,
                         pst_err_t *err)
{
    int rc = read_header(e, msg, origin, err);
    if (rc != PST_OK)
        return rc;
    if (!(e->members = calloc(msg->n_members, sizeof *e->members)))
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    for (size_t i = 0; i < msg->n_members && rc == PST_OK; i++) {
        char what[32];
        snprintf(what, sizeof what, "member %zu", i + 1);
        if ((rc = read_member(&e->members[i], msg->members[i], origin, what, err)) == PST_OK)
            e->n_members++;
    }
    if (rc == PST_OK && msg->n_weights) {
        if (!(e->weights = malloc(msg->n_weights * sizeof(float))))
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
        memcpy(e->weights, msg->weights, msg->n_weights * sizeof(float));
    }
    if (rc == PST_OK && msg->meta) {
        if (!(e->meta = calloc(1, sizeof *e->meta)))
            return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
        rc = read_member(e->meta, msg->meta, origin, "meta model", err);
    }
    return rc == PST_OK ? pst_ensemble_check(e, origin, err) : rc;
}

int pst_ensemble_unpack(pst_ensemble_t *e, const unsigned char *buf, size_t len, const char *origin,
                        pst_err_t *err)
{
    memset(e, 0, sizeof *e);
    Pst__Ensemble *msg = pst__ensemble__unpack(NULL, len, buf);
    if (!msg)
        return pst_err_set(err, PST_EFORMAT, "%s: not a pstrain ensemble file (cannot decode)",
                           origin);
    int rc = read_ensemble(e, msg, origin, err);
    pst__ensemble__free_unpacked(msg, NULL);
    if (rc != PST_OK)
        pst_ensemble_fini(e);
    return rc;
}

int pst_ensemble_load(pst_ensemble_t *e, const char *path, pst_err_t *err)
{
    memset(e, 0, sizeof *e);
    unsigned char *buf;
    size_t len;
    int rc = pst_filesum_read(path, ENSEMBLE_MAX_BYTES, &buf, &len, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_ensemble_unpack(e, buf, len, path, err);
    free(buf);
    return rc;
}

int pst_ensemble_probe(const char *path, bool *is_ensemble, pst_err_t *err)
{
    *is_ensemble = false;
    unsigned char *buf;
    size_t len, content = 0;
    int rc = pst_read_file(path, ENSEMBLE_MAX_BYTES + PST_FILESUM_TRAILER, &buf, &len, err);
    if (rc != PST_OK)
        return rc;
    /* A file that fails its checksum is no ensemble; its reader then says what is wrong. */
    Pst__Ensemble *msg = pst_filesum_check(buf, len, path, &content, NULL) == PST_OK
                             ? pst__ensemble__unpack(NULL, content, buf)
                             : NULL;
    free(buf);
    *is_ensemble = msg && msg->magic == PST_ENSEMBLE_MAGIC;
    if (msg)
        pst__ensemble__free_unpacked(msg, NULL);
    return PST_OK;
}

/* ---- combining outputs ------------------------------------------------------------------- */

void pst_ensemble_outputs_to_probs(const float *out, size_t n, int n_out, int width, float *probs)
{
    for (size_t i = 0; i < n; i++) {
        if (n_out == 1 && width == 2) {
            probs[i * 2] = 1.0f - out[i];
            probs[i * 2 + 1] = out[i];
        } else {
            memcpy(probs + i * (size_t)width, out + i * (size_t)n_out,
                   (size_t)width * sizeof(float));
        }
    }
}

int pst_ensemble_vote(pst_voting_t voting, bool classify, const float *const *member,
                      const float *weights, int n_members, size_t n, int width, float *out,
                      pst_err_t *err)
{
    if (voting == PST_VOTE_HARD && !classify)
        return pst_err_set(err, PST_EINVAL, "hard voting needs a classification task");
    double total = 0;
    for (int m = 0; m < n_members; m++)
        total += weights ? weights[m] : 1.0;
    if (n_members < 1 || !(total > 0))
        return pst_err_set(err, PST_EINVAL, "voting needs members with a positive total weight");
    memset(out, 0, n * (size_t)width * sizeof(float));
    for (int m = 0; m < n_members; m++) {
        float share = (float)((weights ? weights[m] : 1.0) / total);
        for (size_t i = 0; i < n; i++) {
            const float *row = member[m] + i * (size_t)width;
            float *dst = out + i * (size_t)width;
            if (voting == PST_VOTE_HARD)
                dst[pst_predicted_class(row, width)] += share;
            else
                for (int k = 0; k < width; k++)
                    dst[k] += share * row[k];
        }
    }
    return PST_OK;
}

void pst_ensemble_stack_features(const float *const *member, int n_members, size_t n, int width,
                                 float *features)
{
    size_t w = (size_t)width, row_width = (size_t)n_members * w;
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < n_members; m++)
            memcpy(features + i * row_width + (size_t)m * w, member[m] + i * w, w * sizeof(float));
}

/* ---- applying a loaded ensemble ---------------------------------------------------------- */

/* One model's (n, width) rows for a copy of ds's features, after its own preprocessing. */
static int model_probs(const pst_modelfile_t *mf, const pst_dataset_t *ds, int width, float *probs,
                       pst_err_t *err)
{
    size_t n = ds->n_rows;
    pst_dataset_t *copy = pst_dataset_new(n, ds->n_features, ds->task);
    pst_model_t *model = NULL;
    float *out = NULL;
    int rc = copy ? PST_OK : pst_err_set(err, PST_ENOMEM, "ensemble: out of memory");
    if (rc == PST_OK) {
        memcpy(copy->x, ds->x, n * ds->n_features * sizeof(float));
        /* raw CSV columns: each member encodes them with its own encoder */
        copy->table = ds->table ? pst_table_ref(ds->table) : NULL;
        rc = pst_modelfile_preprocess(mf, copy, err);
    }
    if (rc == PST_OK && !(model = pst_modelfile_build(mf, APPLY_CHUNK, err)))
        rc = err ? err->code : PST_EFORMAT;
    int n_out = model ? pst_model_n_outputs(model) : 0;
    if (rc == PST_OK && n_out != width && !(n_out == 1 && width == 2))
        rc = pst_err_set(err, PST_EFORMAT, "a model gives %d outputs, the ensemble needs %d", n_out,
                         width);
    if (rc == PST_OK && !(out = malloc((n ? n : 1) * (size_t)n_out * sizeof(float))))
        rc = pst_err_set(err, PST_ENOMEM, "ensemble: out of memory");
    if (rc == PST_OK)
        rc = pst_predict(model, copy, APPLY_CHUNK, out, err);
    if (rc == PST_OK)
        pst_ensemble_outputs_to_probs(out, n, n_out, width, probs);
    free(out);
    pst_model_destroy(&model);
    pst_dataset_destroy(&copy);
    return rc;
}

/* The meta model's rows for the members' stacked outputs. */
static int meta_probs(const pst_ensemble_t *e, const float *const *member, size_t n, int width,
                      float *out, pst_err_t *err)
{
    size_t d = (size_t)e->n_members * (size_t)width;
    pst_dataset_t *features = pst_dataset_new(n, d, e->members[0].task);
    if (!features)
        return pst_err_set(err, PST_ENOMEM, "ensemble: out of memory");
    pst_ensemble_stack_features(member, e->n_members, n, width, features->x);
    int rc = model_probs(e->meta, features, width, out, err);
    pst_dataset_destroy(&features);
    return rc;
}

int pst_ensemble_apply(const pst_ensemble_t *e, const pst_dataset_t *raw, float *out,
                       pst_err_t *err)
{
    const pst_modelfile_t *first = &e->members[0];
    int width = pst_ensemble_width(first->task, first->n_classes);
    size_t n = raw->n_rows, block = (n ? n : 1) * (size_t)width;
    float *all = malloc((size_t)e->n_members * block * sizeof(float));
    float **member = malloc((size_t)e->n_members * sizeof *member);
    int rc = all && member ? PST_OK : pst_err_set(err, PST_ENOMEM, "ensemble: out of memory");
    for (int m = 0; m < e->n_members && rc == PST_OK; m++) {
        member[m] = all + (size_t)m * block;
        if ((rc = model_probs(&e->members[m], raw, width, member[m], err)) != PST_OK)
            pst_err_prefix(err, rc, "member %d: ", m + 1);
    }
    if (rc == PST_OK && e->meta &&
        (rc = meta_probs(e, (const float *const *)member, n, width, out, err)) != PST_OK)
        pst_err_prefix(err, rc, "meta model: ");
    if (rc == PST_OK && !e->meta)
        rc = pst_ensemble_vote(e->voting, first->task == PST_TASK_CLASSIFICATION,
                               (const float *const *)member, e->weights, e->n_members, n, width,
                               out, err);
    free(member);
    free(all);
    return rc;
}
