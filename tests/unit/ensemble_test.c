/* Tests for worker/ensemble: file round trip, model and ensemble files told apart, damaged files
 * refused, soft and hard voting on hand-made outputs, and an applied ensemble against hand-computed
 * softmax regressions with preprocessing and feature subsets. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/atomicfile.h"
#include "common/filesum.h"
#include "pstrain.pb-c.h"
#include "worker/model/ensemble.h"
#include "worker/train/train.h"

#define N_IN 3
#define N_CLASSES 3

/* A softmax regression as a model file: logits = W z + b on its columns of the preprocessed row
 * z = (x - shift) * scale. */
typedef struct member {
    pst_layer_spec_t layers[2];
    float params[64];
    float shift[N_IN], scale[N_IN], fill[N_IN];
    size_t cols[N_IN];
    float w[N_CLASSES * 8], b[N_CLASSES]; // w: (N_CLASSES, width) as set
    pst_modelfile_t mf;
} member_t;

static void make_member(member_t *m, int n_inputs, const size_t *cols, int n_cols, const float *w,
                        const float *b, const float *shift, const float *scale)
{
    memset(m, 0, sizeof *m);
    int width = cols ? n_cols : n_inputs;
    m->layers[0] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = N_CLASSES, .rate = 0};
    m->layers[1] = (pst_layer_spec_t){.kind = PST_LAYER_SOFTMAX, .units = 0, .rate = 0};
    memcpy(m->w, w, (size_t)(N_CLASSES * width) * sizeof(float));
    memcpy(m->b, b, N_CLASSES * sizeof(float));
    /* Place W and b where the model's own tensor table says they live. */
    pst_err_t err;
    pst_model_t *model = pst_model_new(width, m->layers, 2, 4, &err);
    assert_non_null(model);
    for (int t = 0; t < pst_model_n_tensors(model); t++) {
        const pst_tensor_info_t *ti = pst_model_tensor(model, t);
        memcpy(m->params + ti->offset, ti->is_bias ? b : w, ti->size * sizeof(float));
    }
    m->mf = (pst_modelfile_t){.n_inputs = n_inputs,
                              .n_layers = 2,
                              .layers = m->layers,
                              .loss = PST_LOSS_SOFTMAX_CE,
                              .task = PST_TASK_CLASSIFICATION,
                              .n_classes = N_CLASSES,
                              .params = m->params,
                              .n_params = pst_model_n_params(model),
                              .config_yaml = "seed: 5\n"};
    pst_model_destroy(&model);
    if (shift) {
        memcpy(m->shift, shift, sizeof m->shift);
        memcpy(m->scale, scale, sizeof m->scale);
        m->mf.shift = m->shift;
        m->mf.scale = m->scale;
        m->mf.fill = m->fill;
        m->mf.pixel_scale = 1;
    }
    if (cols) {
        memcpy(m->cols, cols, (size_t)n_cols * sizeof(size_t));
        m->mf.columns = m->cols;
        m->mf.n_columns = n_cols;
    }
}

/* The member's probabilities for one raw row, by hand. */
static void member_by_hand(const member_t *m, const float *x, double *p)
{
    const pst_modelfile_t *mf = &m->mf;
    int width = mf->n_columns ? mf->n_columns : mf->n_inputs;
    double z[8], logit[N_CLASSES], max = -INFINITY, sum = 0;
    for (int j = 0; j < width; j++) {
        size_t c = mf->n_columns ? mf->columns[j] : (size_t)j;
        z[j] = mf->shift ? ((double)x[c] - mf->shift[c]) * mf->scale[c] : x[c];
    }
    for (int k = 0; k < N_CLASSES; k++) {
        logit[k] = m->b[k];
        for (int j = 0; j < width; j++)
            logit[k] += (double)m->w[k * width + j] * z[j];
        max = fmax(max, logit[k]);
    }
    for (int k = 0; k < N_CLASSES; k++)
        sum += (p[k] = exp(logit[k] - max));
    for (int k = 0; k < N_CLASSES; k++)
        p[k] /= sum;
}

/* Two members (one with preprocessing, one on columns 2 and 0) and a meta model on their 6
 * stacked probabilities. */
typedef struct fixture {
    member_t a, b, meta;
    pst_modelfile_t members[2];
    float weights[2];
    pst_ensemble_t e;
    char path[64];
} fixture_t;

static void make_fixture(fixture_t *f, pst_ensemble_method_t method)
{
    static const float wa[] = {1.0f, -0.5f, 0.25f, -1.0f, 0.5f, 2.0f, 0.0f, 1.5f, -2.0f};
    static const float ba[] = {0.1f, -0.2f, 0.3f};
    static const float shift[] = {1.0f, -2.0f, 0.5f}, scale[] = {0.5f, 2.0f, 1.0f};
    static const float wb[] = {0.75f, -1.0f, -0.5f, 1.25f, 2.0f, 0.0f};
    static const float bb[] = {0.0f, 0.5f, -0.5f};
    static const size_t cols[] = {2, 0};
    static const float wm[] = {2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1};
    static const float bm[] = {0.0f, 0.1f, -0.1f};
    memset(f, 0, sizeof *f);
    make_member(&f->a, N_IN, NULL, 0, wa, ba, shift, scale);
    make_member(&f->b, N_IN, cols, 2, wb, bb, NULL, NULL);
    make_member(&f->meta, 2 * N_CLASSES, NULL, 0, wm, bm, NULL, NULL);
    f->members[0] = f->a.mf;
    f->members[1] = f->b.mf;
    f->weights[0] = 2;
    f->weights[1] = 1;
    bool meta = method == PST_ENSEMBLE_STACKING || method == PST_ENSEMBLE_BLENDING;
    f->e = (pst_ensemble_t){.method = method,
                            .voting = PST_VOTE_SOFT,
                            .n_members = 2,
                            .members = f->members,
                            .weights = meta ? NULL : f->weights,
                            .meta = meta ? &f->meta.mf : NULL};
    strcpy(f->path, "/tmp/pst_ensemble_XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
}

static void file_round_trip(void **state)
{
    (void)state;
    fixture_t f;
    make_fixture(&f, PST_ENSEMBLE_BAGGING);
    f.e.voting = PST_VOTE_HARD;
    pst_err_t err;
    assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_OK);
    pst_ensemble_t back;
    assert_int_equal(pst_ensemble_load(&back, f.path, &err), PST_OK);
    assert_int_equal(back.method, PST_ENSEMBLE_BAGGING);
    assert_int_equal(back.voting, PST_VOTE_HARD);
    assert_int_equal(back.n_members, 2);
    assert_true(back.weights[0] == 2 && back.weights[1] == 1);
    assert_null(back.meta);
    assert_int_equal(back.members[0].n_columns, 0);
    assert_non_null(back.members[0].shift);
    assert_memory_equal(back.members[0].scale, f.a.scale, sizeof f.a.scale);
    assert_int_equal(back.members[1].n_columns, 2);
    assert_true(back.members[1].columns[0] == 2 && back.members[1].columns[1] == 0);
    assert_null(back.members[1].shift);
    assert_int_equal(back.members[1].n_params, f.b.mf.n_params);
    assert_memory_equal(back.members[1].params, f.b.params, f.b.mf.n_params * sizeof(float));
    assert_string_equal(back.members[1].config_yaml, "seed: 5\n");
    pst_ensemble_fini(&back);
    pst_ensemble_fini(&back); /* safe twice */

    make_fixture(&f, PST_ENSEMBLE_STACKING);
    assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_OK);
    assert_int_equal(pst_ensemble_load(&back, f.path, &err), PST_OK);
    assert_int_equal(back.method, PST_ENSEMBLE_STACKING);
    assert_null(back.weights);
    assert_non_null(back.meta);
    assert_int_equal(back.meta->n_inputs, 6);
    assert_memory_equal(back.meta->params, f.meta.params, f.meta.mf.n_params * sizeof(float));
    pst_ensemble_fini(&back);
    unlink(f.path);
}

static void model_and_ensemble_files_told_apart(void **state)
{
    (void)state;
    fixture_t f;
    make_fixture(&f, PST_ENSEMBLE_VOTING);
    pst_err_t err;
    bool is_ensemble = true;
    /* A model file: probe says no, and the ensemble reader says what it is. */
    assert_int_equal(pst_modelfile_save(&f.a.mf, f.path, &err), PST_OK);
    assert_int_equal(pst_ensemble_probe(f.path, &is_ensemble, &err), PST_OK);
    assert_false(is_ensemble);
    pst_ensemble_t e;
    assert_int_equal(pst_ensemble_load(&e, f.path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "a model file, not an ensemble"));
    /* An ensemble file: probe says yes, and the model reader refuses its magic. */
    assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_OK);
    assert_int_equal(pst_ensemble_probe(f.path, &is_ensemble, &err), PST_OK);
    assert_true(is_ensemble);
    pst_modelfile_t mf;
    assert_int_equal(pst_modelfile_load(&mf, f.path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "bad magic"));
    /* Something else altogether is neither. */
    FILE *text = fopen(f.path, "w");
    fputs("a,b,target\n1,2,3\n", text);
    fclose(text);
    assert_int_equal(pst_ensemble_probe(f.path, &is_ensemble, &err), PST_OK);
    assert_false(is_ensemble);
    assert_int_equal(pst_ensemble_load(&e, f.path, &err), PST_EFORMAT);
    assert_int_equal(pst_ensemble_probe("/nonexistent/model.pst", &is_ensemble, &err), PST_EIO);
    unlink(f.path);
}

/* Packs msg to path. */
static void write_message(const Pst__Ensemble *msg, const char *path)
{
    size_t len = pst__ensemble__get_packed_size(msg);
    uint8_t *buf = malloc(len);
    pst__ensemble__pack(msg, buf);
    assert_int_equal(pst_filesum_write(path, buf, len, NULL), PST_OK);
    free(buf);
}

/* Loads path expecting PST_EFORMAT with text in the message. */
static void expect_refused(const char *path, const char *text)
{
    pst_ensemble_t e;
    pst_err_t err;
    assert_int_equal(pst_ensemble_load(&e, path, &err), PST_EFORMAT);
    if (!strstr(err.msg, text))
        fail_msg("'%s' lacks '%s'", err.msg, text);
    assert_null(e.members);
}

static void damaged_files_refused(void **state)
{
    (void)state;
    fixture_t f;
    make_fixture(&f, PST_ENSEMBLE_STACKING);
    pst_err_t err;
    assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_OK);
    unsigned char *bytes;
    size_t len;
    assert_int_equal(pst_read_file(f.path, 1 << 20, &bytes, &len, &err), PST_OK);
    /* The message, without the file's checksum trailer. */
    Pst__Ensemble *msg = pst__ensemble__unpack(NULL, len - PST_FILESUM_TRAILER, bytes);
    assert_non_null(msg);

    /* Truncated anywhere past the magic: refused, never a crash. */
    for (size_t cut = 8; cut < len; cut += len / 7) {
        FILE *out = fopen(f.path, "wb");
        assert_int_equal(fwrite(bytes, 1, cut, out), cut);
        fclose(out);
        pst_ensemble_t e;
        assert_int_not_equal(pst_ensemble_load(&e, f.path, &err), PST_OK);
    }
    msg->version = 2;
    write_message(msg, f.path);
    expect_refused(f.path, "version 2");
    msg->version = PST_ENSEMBLE_VERSION;
    msg->magic = PST_MODELFILE_MAGIC;
    write_message(msg, f.path);
    expect_refused(f.path, "a model file");
    msg->magic = PST_ENSEMBLE_MAGIC;
    char *method = msg->method;
    msg->method = "boosting";
    write_message(msg, f.path);
    expect_refused(f.path, "unknown ensemble method");
    msg->method = method;
    float one = 1;
    msg->n_weights = 1;
    msg->weights = &one;
    write_message(msg, f.path);
    expect_refused(f.path, "1 weights for 2 members");
    msg->n_weights = 0;
    msg->weights = NULL;
    Pst__Model *meta = msg->meta;
    msg->meta = NULL;
    write_message(msg, f.path);
    expect_refused(f.path, "without a meta model");
    msg->meta = meta;
    uint32_t bad_cols[] = {1, 7};
    uint32_t *cols = msg->members[1]->columns;
    msg->members[1]->columns = bad_cols;
    write_message(msg, f.path);
    expect_refused(f.path, "member 2: column 7 of 3 inputs");
    msg->members[1]->columns = cols;
    write_message(msg, f.path);
    pst_ensemble_t e;
    assert_int_equal(pst_ensemble_load(&e, f.path, &err), PST_OK);
    pst_ensemble_fini(&e);
    pst__ensemble__free_unpacked(msg, NULL);
    free(bytes);

    /* Inconsistent ensembles are not written either. */
    f.e.meta = &f.a.mf; /* 3 inputs, but two 3-class members give 6 */
    assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "meta model takes 3 inputs"));
    make_fixture(&f, PST_ENSEMBLE_VOTING);
    f.weights[0] = -1;
    assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_EFORMAT);
    f.weights[0] = 0;
    f.weights[1] = 0;
    assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_EFORMAT);
    unlink(f.path);
}

static void voting_arithmetic(void **state)
{
    (void)state;
    const float a[] = {0.6f, 0.3f, 0.1f, 0.2f, 0.5f, 0.3f};
    const float b[] = {0.1f, 0.8f, 0.1f, 0.3f, 0.3f, 0.4f};
    const float c[] = {0.5f, 0.1f, 0.4f, 0.1f, 0.2f, 0.7f};
    const float *members[] = {a, b, c};
    const float weights[] = {1, 2, 1};
    float out[6];
    pst_err_t err;
    /* soft, weights 1:2:1 — (a + 2b + c) / 4 */
    assert_int_equal(pst_ensemble_vote(PST_VOTE_SOFT, true, members, weights, 3, 2, 3, out, &err),
                     PST_OK);
    const float soft[] = {0.325f, 0.5f, 0.175f, 0.225f, 0.325f, 0.45f};
    for (int i = 0; i < 6; i++)
        assert_float_equal(out[i], soft[i], 1e-6);
    /* hard, weights 1:2:1 — row 0: a, c vote 0 (weight 2 of 4), b votes 1 (2 of 4): a tie, the
     * lower class wins; row 1: a votes 1 (1 of 4), b and c vote 2 (3 of 4). */
    assert_int_equal(pst_ensemble_vote(PST_VOTE_HARD, true, members, weights, 3, 2, 3, out, &err),
                     PST_OK);
    const float hard[] = {0.5f, 0.5f, 0, 0, 0.25f, 0.75f};
    for (int i = 0; i < 6; i++)
        assert_float_equal(out[i], hard[i], 1e-6);
    assert_int_equal(pst_predicted_class(out, 3), 0);
    assert_int_equal(pst_predicted_class(out + 3, 3), 2);
    /* hard, equal weights: row 0 is 2 votes of 3 for class 0 */
    assert_int_equal(pst_ensemble_vote(PST_VOTE_HARD, true, members, NULL, 3, 2, 3, out, &err),
                     PST_OK);
    assert_float_equal(out[0], 2.0f / 3, 1e-6);
    assert_float_equal(out[1], 1.0f / 3, 1e-6);
    assert_float_equal(out[2], 0, 0);
    /* soft on regression outputs is their weighted mean; hard is refused */
    const float r1[] = {1, 3}, r2[] = {3, 5};
    const float *reg[] = {r1, r2};
    const float w13[] = {1, 3};
    assert_int_equal(pst_ensemble_vote(PST_VOTE_SOFT, false, reg, w13, 2, 2, 1, out, &err), PST_OK);
    assert_float_equal(out[0], 2.5f, 1e-6);
    assert_float_equal(out[1], 4.5f, 1e-6);
    assert_int_equal(pst_ensemble_vote(PST_VOTE_HARD, false, reg, NULL, 2, 2, 1, out, &err),
                     PST_EINVAL);
    const float zero[] = {0, 0};
    assert_int_equal(pst_ensemble_vote(PST_VOTE_SOFT, false, reg, zero, 2, 2, 1, out, &err),
                     PST_EINVAL);
    /* a single sigmoid output becomes two class columns */
    const float sig[] = {0.8f, 0.25f};
    pst_ensemble_outputs_to_probs(sig, 2, 1, 2, out);
    assert_float_equal(out[0], 0.2f, 1e-6);
    assert_float_equal(out[1], 0.8f, 1e-6);
    assert_float_equal(out[2], 0.75f, 1e-6);
    /* stacked features: member 0's row, then member 1's */
    const float *two[] = {a, b};
    float feats[12];
    pst_ensemble_stack_features(two, 2, 2, 3, feats);
    const float expect[] = {0.6f, 0.3f, 0.1f, 0.1f, 0.8f, 0.1f, 0.2f, 0.5f, 0.3f, 0.3f, 0.3f, 0.4f};
    assert_memory_equal(feats, expect, sizeof expect);
}

static pst_dataset_t *raw_rows(void)
{
    const float x[] = {0.5f, 1.0f, -1.0f, 2.0f, -3.0f, 0.25f, -1.5f, 0.0f, 3.0f, 1.0f, 1.0f, 1.0f};
    pst_dataset_t *ds = pst_dataset_new(4, N_IN, PST_TASK_CLASSIFICATION);
    memcpy(ds->x, x, sizeof x);
    ds->n_classes = N_CLASSES;
    return ds;
}

static void applied_matches_hand_computation(void **state)
{
    (void)state;
    pst_dataset_t *ds = raw_rows();
    float before[12];
    memcpy(before, ds->x, sizeof before);
    pst_err_t err;
    for (int pass = 0; pass < 2; pass++) {
        fixture_t f;
        make_fixture(&f, pass == 0 ? PST_ENSEMBLE_VOTING : PST_ENSEMBLE_STACKING);
        /* Through the file, as eval and predict use it. */
        assert_int_equal(pst_ensemble_save(&f.e, f.path, &err), PST_OK);
        pst_ensemble_t e;
        assert_int_equal(pst_ensemble_load(&e, f.path, &err), PST_OK);
        float out[4 * N_CLASSES];
        assert_int_equal(pst_ensemble_apply(&e, ds, out, &err), PST_OK);
        assert_memory_equal(ds->x, before, sizeof before); /* raw rows untouched */
        for (size_t i = 0; i < 4; i++) {
            double pa[N_CLASSES], pb[N_CLASSES], expect[N_CLASSES];
            member_by_hand(&f.a, ds->x + i * N_IN, pa);
            member_by_hand(&f.b, ds->x + i * N_IN, pb);
            if (pass == 0) {
                for (int k = 0; k < N_CLASSES; k++)
                    expect[k] = (2 * pa[k] + pb[k]) / 3;
            } else {
                float stacked[2 * N_CLASSES];
                for (int k = 0; k < N_CLASSES; k++) {
                    stacked[k] = (float)pa[k];
                    stacked[N_CLASSES + k] = (float)pb[k];
                }
                member_by_hand(&f.meta, stacked, expect);
            }
            for (int k = 0; k < N_CLASSES; k++)
                assert_float_equal(out[i * N_CLASSES + k], expect[k], 1e-5);
        }
        pst_ensemble_fini(&e);
        unlink(f.path);
    }
    /* Rows of the wrong width are an error naming the member. */
    fixture_t f;
    make_fixture(&f, PST_ENSEMBLE_VOTING);
    ds->n_features = 2;
    float out[4 * N_CLASSES];
    assert_int_not_equal(pst_ensemble_apply(&f.e, ds, out, &err), PST_OK);
    assert_non_null(strstr(err.msg, "member 1"));
    unlink(f.path);
    pst_dataset_destroy(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_round_trip),
        cmocka_unit_test(model_and_ensemble_files_told_apart),
        cmocka_unit_test(damaged_files_refused),
        cmocka_unit_test(voting_arithmetic),
        cmocka_unit_test(applied_matches_hand_computation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
