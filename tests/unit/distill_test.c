/* Tests for worker/train/distill: the loss's gradient against finite differences and its limits
 * (alpha 0 is cross-entropy, a teacher equal to the student costs nothing), the teacher's
 * probabilities from a model file and from bagging and stacking ensemble files equal to what the
 * ensemble gives on raw rows (the student's preprocessing mapped to the teacher's), and teachers
 * that do not fit refused; the loss and its gradient against the textbook formula (Hinton et al.
 * 2015) computed independently in double from the teacher's logits, and a single-network teacher's
 * scores equal to its logits even where its probabilities round to zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "scratch.h"
#include "worker/model/ensemble.h"
#include "worker/train/distill.h"
#include "worker/train/train.h"

#define N_IN 3
#define K 3
#define N_ROWS 6

static void loss_gradient_matches_finite_differences(void **state)
{
    (void)state;
    float teacher[2 * 4] = {0.7f, 0.1f, 0.15f, 0.05f, 0.02f, 0.5f, 0.08f, 0.4f};
    float z[2 * 4] = {0.3f, -1.2f, 0.8f, 0.1f, 2.0f, -0.4f, 0.0f, 1.1f}, y[2] = {2, 1};
    float g[8];
    double t = 3.0, alpha = 0.7;
    pst_distill_loss_probs(t, alpha, teacher, z, y, 2, 4, g);
    for (int i = 0; i < 8; i++) {
        float save = z[i], h = 1e-2f;
        z[i] = save + h;
        double up = pst_distill_loss_probs(t, alpha, teacher, z, y, 2, 4, NULL);
        z[i] = save - h;
        double down = pst_distill_loss_probs(t, alpha, teacher, z, y, 2, 4, NULL);
        z[i] = save;
        double numeric = (up - down) / (2 * h);
        assert_true(fabs(numeric - g[i]) < 1e-4 + 1e-3 * fabs(numeric));
    }
    /* alpha 0: the mean cross-entropy of softmax(z) */
    double ce = 0;
    for (int r = 0; r < 2; r++) {
        double sum = 0;
        for (int j = 0; j < 4; j++)
            sum += exp(z[r * 4 + j]);
        ce += -(z[r * 4 + (int)y[r]] - log(sum)) / 2;
    }
    assert_true(fabs(pst_distill_loss_probs(t, 0.0, teacher, z, y, 2, 4, NULL) - ce) < 1e-9);
    /* alpha 1 and a teacher that is the student: no loss, no gradient */
    float self[8];
    for (int r = 0; r < 2; r++) {
        double sum = 0;
        for (int j = 0; j < 4; j++)
            sum += exp(z[r * 4 + j]);
        for (int j = 0; j < 4; j++)
            self[r * 4 + j] = (float)(exp(z[r * 4 + j]) / sum);
    }
    assert_true(fabs(pst_distill_loss_probs(t, 1.0, self, z, y, 2, 4, g)) < 1e-6);
    for (int i = 0; i < 8; i++)
        assert_true(fabsf(g[i]) < 1e-6f);
}

/* log sum_j exp(v_j / t), stable. */
static double ref_logsumexp(const double *v, int k, double t)
{
    double top = v[0] / t, sum = 0;
    for (int j = 1; j < k; j++)
        top = v[j] / t > top ? v[j] / t : top;
    for (int j = 0; j < k; j++)
        sum += exp(v[j] / t - top);
    return top + log(sum);
}

/* The textbook loss of one row: alpha T^2 KL(softmax(tz/T) || softmax(z/T)) + (1 - alpha)
 * CE(label, softmax(z)), written from the definitions and nothing of distill.c. */
static double ref_row_loss(const double *tz, const double *z, int k, int label, double t,
                           double alpha)
{
    double lt = ref_logsumexp(tz, k, t), ls = ref_logsumexp(z, k, t), kl = 0;
    for (int j = 0; j < k; j++) {
        double log_q = tz[j] / t - lt, log_p = z[j] / t - ls;
        kl += exp(log_q) * (log_q - log_p);
    }
    double ce = -(z[label] - ref_logsumexp(z, k, 1.0));
    return alpha * t * t * kl + (1.0 - alpha) * ce;
}

#define RB 3
#define RK 5

static double ref_batch_loss(const double *tz, const double *z, const float *y, double t,
                             double alpha)
{
    double total = 0;
    for (int i = 0; i < RB; i++)
        total += ref_row_loss(tz + i * RK, z + i * RK, RK, (int)y[i], t, alpha);
    return total / RB;
}

static void loss_and_gradient_match_the_textbook(void **state)
{
    (void)state;
    /* row 2's teacher is sure of itself: a logit gap of 60, whose probabilities underflow float */
    const float tzf[RB * RK] = {1.5f, -0.5f, 0.2f,  3.0f, -2.0f, 0.0f, 0.1f, -0.1f,
                                0.3f, 0.2f,  60.0f, 0.0f, -3.0f, 1.0f, 2.0f};
    const float zf[RB * RK] = {0.3f, -1.2f, 0.8f, 0.1f, 2.0f,  -0.4f, 0.0f, 1.1f,
                               0.5f, -0.7f, 1.0f, 2.5f, -1.5f, 0.2f,  0.9f};
    const float y[RB] = {3, 0, 1};
    double tz[RB * RK], z[RB * RK];
    for (int i = 0; i < RB * RK; i++)
        tz[i] = tzf[i], z[i] = zf[i];
    const double temps[3] = {1.0, 2.0, 4.0}, alphas[3] = {0.0, 0.5, 1.0};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double t = temps[a], alpha = alphas[b];
            float g[RB * RK];
            double got = pst_distill_loss_scores(t, alpha, tzf, zf, y, RB, RK, g);
            double want = ref_batch_loss(tz, z, y, t, alpha);
            assert_true(fabs(got - want) <= 1e-9 * (1 + fabs(want)));
            for (int i = 0; i < RB * RK; i++) { /* central differences of the reference */
                double h = 1e-5, save = z[i];
                z[i] = save + h;
                double up = ref_batch_loss(tz, z, y, t, alpha);
                z[i] = save - h;
                double down = ref_batch_loss(tz, z, y, t, alpha);
                z[i] = save;
                double numeric = (up - down) / (2 * h);
                if (fabs(numeric - g[i]) > 1e-6 + 1e-5 * fabs(numeric))
                    fail_msg("T %g alpha %g logit %d: gradient %.9g, reference %.9g", t, alpha, i,
                             g[i], numeric);
            }
        }
}

/* A softmax regression model file on the given columns with its own preprocessing. */
typedef struct member {
    pst_layer_spec_t layers[2];
    float params[32], shift[N_IN], scale[N_IN], fill[N_IN];
    size_t cols[N_IN];
    pst_modelfile_t mf;
} member_t;

static void make_member(member_t *m, int n_inputs, const size_t *cols, int n_cols, float w0,
                        const float *shift, const float *scale)
{
    memset(m, 0, sizeof *m);
    int width = cols ? n_cols : n_inputs;
    m->layers[0] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = K};
    m->layers[1] = (pst_layer_spec_t){.kind = PST_LAYER_SOFTMAX};
    size_t n = (size_t)(K * width + K);
    for (size_t i = 0; i < n; i++)
        m->params[i] = w0 * (float)((i * 7) % 5) - 0.8f * (float)(i % 3);
    m->mf = (pst_modelfile_t){.n_inputs = n_inputs,
                              .n_layers = 2,
                              .layers = m->layers,
                              .loss = PST_LOSS_SOFTMAX_CE,
                              .task = PST_TASK_CLASSIFICATION,
                              .n_classes = K,
                              .params = m->params,
                              .n_params = n};
    if (shift) {
        memcpy(m->shift, shift, sizeof m->shift);
        memcpy(m->scale, scale, sizeof m->scale);
        m->mf.shift = m->shift, m->mf.scale = m->scale, m->mf.fill = m->fill;
        m->mf.pixel_scale = 1;
    }
    if (cols) {
        memcpy(m->cols, cols, (size_t)n_cols * sizeof *cols);
        m->mf.columns = m->cols;
        m->mf.n_columns = n_cols;
    }
}

/* Raw rows, and the same rows as a student standardised by pp sees them. */
static pst_dataset_t *raw_rows(const pst_preproc_t *pp, float *student)
{
    pst_dataset_t *raw = pst_dataset_new(N_ROWS, N_IN, PST_TASK_CLASSIFICATION);
    for (int i = 0; i < N_ROWS * N_IN; i++) {
        raw->x[i] = (float)((i * 37) % 11) * 0.4f - 2.0f;
        student[i] = (raw->x[i] - pp->shift[i % N_IN]) * pp->scale[i % N_IN];
    }
    return raw;
}

static void expect_teacher_matches(const char *path, const pst_ensemble_t *e)
{
    pst_preproc_t *pp = pst_preproc_new(N_IN);
    const float shift[N_IN] = {0.5f, -1.0f, 2.0f}, scale[N_IN] = {2.0f, 0.25f, 1.5f};
    memcpy(pp->shift, shift, sizeof shift);
    memcpy(pp->scale, scale, sizeof scale);
    float student[N_ROWS * N_IN], want[N_ROWS * K];
    pst_dataset_t *raw = raw_rows(pp, student);
    pst_err_t err;
    assert_int_equal(pst_ensemble_apply(e, raw, want, &err), PST_OK);
    pst_distill_student_t s = {N_IN, K, pp};
    pst_distill_t *d = pst_distill_new(path, &s, 2.0, 0.5, 8, &err);
    if (!d)
        fail_msg("%s", err.msg);
    const float *got = pst_distill_teacher_probs(d, student, N_ROWS);
    for (int i = 0; i < N_ROWS * K; i++)
        assert_true(fabsf(got[i] - want[i]) < 1e-5f);
    /* the teacher is not a constant: rows differ */
    assert_true(fabsf(got[0] - got[K]) > 1e-3f || fabsf(got[1] - got[K + 1]) > 1e-3f);
    pst_distill_destroy(&d);
    pst_distill_destroy(&d);
    pst_dataset_destroy(&raw);
    pst_preproc_destroy(&pp);
}

static const float shift_a[N_IN] = {1.0f, -2.0f, 0.5f}, scale_a[N_IN] = {0.5f, 2.0f, 1.0f};
static const size_t cols_b[] = {2, 0};

static void teacher_from_a_model_file(void **state)
{
    (void)state;
    member_t a;
    make_member(&a, N_IN, NULL, 0, 0.6f, shift_a, scale_a);
    char path[256];
    pst_err_t err;
    assert_int_equal(pst_modelfile_save(&a.mf, pst_scratch_path(path, "one.pst"), &err), PST_OK);
    pst_ensemble_t one = {.method = PST_ENSEMBLE_VOTING, .n_members = 1, .members = &a.mf};
    expect_teacher_matches(path, &one);
}

static void teacher_scores_are_a_single_models_logits(void **state)
{
    (void)state;
    member_t a;
    make_member(&a, N_IN, NULL, 0, 9.0f, NULL, NULL); /* large weights: saturated softmax */
    char path[256];
    pst_err_t err;
    assert_int_equal(pst_modelfile_save(&a.mf, pst_scratch_path(path, "sure.pst"), &err), PST_OK);
    pst_distill_student_t s = {N_IN, K, NULL};
    pst_distill_t *d = pst_distill_new(path, &s, 2.0, 0.5, 8, &err);
    if (!d)
        fail_msg("%s", err.msg);
    float x[N_ROWS * N_IN];
    for (int i = 0; i < N_ROWS * N_IN; i++)
        x[i] = (float)((i * 37) % 11) * 0.4f - 2.0f;
    const float *got = pst_distill_teacher_scores(d, x, N_ROWS);
    double widest = 0;
    for (int r = 0; r < N_ROWS; r++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int c = 0; c < K; c++) {
            double want = a.params[K * N_IN + c]; /* W (K, N_IN) then b (K) */
            for (int j = 0; j < N_IN; j++)
                want += (double)a.params[c * N_IN + j] * x[r * N_IN + j];
            assert_true(fabs(got[r * K + c] - want) <= 1e-4 * (1 + fabs(want)));
            lo = want < lo ? want : lo;
            hi = want > hi ? want : hi;
        }
        widest = hi - lo > widest ? hi - lo : widest;
    }
    assert_true(widest > 104); /* some row's smallest probability is below float's range */
    pst_distill_destroy(&d);
}

static void teacher_from_ensemble_files(void **state)
{
    (void)state;
    member_t a, b, meta;
    make_member(&a, N_IN, NULL, 0, 0.6f, shift_a, scale_a);
    make_member(&b, N_IN, cols_b, 2, -0.4f, NULL, NULL);
    make_member(&meta, 2 * K, NULL, 0, 0.3f, NULL, NULL);
    pst_modelfile_t members[2] = {a.mf, b.mf};
    float weights[2] = {2, 1};
    pst_ensemble_t bag = {.method = PST_ENSEMBLE_BAGGING,
                          .voting = PST_VOTE_SOFT,
                          .n_members = 2,
                          .members = members,
                          .weights = weights};
    char path[256];
    pst_err_t err;
    assert_int_equal(pst_ensemble_save(&bag, pst_scratch_path(path, "bag.pst"), &err), PST_OK);
    expect_teacher_matches(path, &bag);
    pst_ensemble_t stack = {
        .method = PST_ENSEMBLE_STACKING, .n_members = 2, .members = members, .meta = &meta.mf};
    assert_int_equal(pst_ensemble_save(&stack, pst_scratch_path(path, "stack.pst"), &err), PST_OK);
    expect_teacher_matches(path, &stack);
}

static void expect_refused(const char *path, int n_inputs, int n_classes, const char *text)
{
    pst_distill_student_t s = {n_inputs, n_classes, NULL};
    pst_err_t err;
    memset(&err, 0, sizeof err);
    pst_distill_t *d = pst_distill_new(path, &s, 2.0, 0.5, 8, &err);
    assert_null(d);
    if (!strstr(err.msg, text) || !strstr(err.msg, "train.teacher: ") || !strstr(err.msg, path))
        fail_msg("message '%s' lacks '%s'", err.msg, text);
}

static void mismatched_teachers_refused(void **state)
{
    (void)state;
    member_t a;
    make_member(&a, N_IN, NULL, 0, 0.6f, NULL, NULL);
    char path[256], reg[256];
    pst_err_t err;
    assert_int_equal(pst_modelfile_save(&a.mf, pst_scratch_path(path, "t.pst"), &err), PST_OK);
    expect_refused(path, N_IN, 4, "the teacher has 3 classes, the model 4 outputs");
    expect_refused(path, 5, K, "the teacher takes 3 input features, the training data has 5");
    a.mf.task = PST_TASK_REGRESSION;
    a.mf.loss = PST_LOSS_MSE;
    assert_int_equal(pst_modelfile_save(&a.mf, pst_scratch_path(reg, "reg.pst"), &err), PST_OK);
    expect_refused(reg, N_IN, K, "not a classifier");
    expect_refused(pst_scratch_path(reg, "missing.pst"), N_IN, K, "missing.pst");
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_gradient_matches_finite_differences),
        cmocka_unit_test(loss_and_gradient_match_the_textbook),
        cmocka_unit_test(teacher_scores_are_a_single_models_logits),
        cmocka_unit_test(teacher_from_a_model_file),
        cmocka_unit_test(teacher_from_ensemble_files),
        cmocka_unit_test(mismatched_teachers_refused),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
