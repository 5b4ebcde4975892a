/* Tests for the drift profile in worker/model/modelfile (packed, field 22): a profile saved with a
 * model reads back bit for bit; a file with the plain profile of field 21 (as written before the
 * packed form) still loads it; a file without one (as written before profiles) loads with none
 * and the same parameters; a profile that does not fit the model's inputs is refused naming the
 * file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/drift/profile.h"
#include "common/drift/profile_proto.h"
#include "common/log.h"
#include "scratch.h"
#include "worker/model/modelfile.h"

static pst_layer_spec_t layers[2] = {{.kind = PST_LAYER_DENSE, .units = 2},
                                     {.kind = PST_LAYER_SOFTMAX, .units = 0}};
static double classes[2] = {0, 1};
static float params[4 * 2 + 2];

/* A 4-input softmax regression; with profile given, a profile of 300 rows too. */
static void small_model(pst_modelfile_t *mf, pst_drift_profile_t **profile)
{
    memset(mf, 0, sizeof *mf);
    mf->n_inputs = 4;
    mf->n_layers = 2;
    mf->layers = layers;
    mf->loss = PST_LOSS_SOFTMAX_CE;
    mf->task = PST_TASK_CLASSIFICATION;
    mf->n_classes = 2;
    mf->class_values = classes;
    mf->n_params = 10;
    for (size_t i = 0; i < mf->n_params; i++)
        params[i] = 0.1f * (float)i - 0.3f;
    mf->params = params;
    if (profile == NULL)
        return;
    pst_dataset_t *ds = pst_dataset_new(300, 4, PST_TASK_CLASSIFICATION);
    assert_non_null(ds);
    ds->n_classes = 2;
    for (size_t i = 0; i < 300; i++) {
        for (size_t j = 0; j < 4; j++)
            ds->x[i * 4 + j] = (float)((i * (j + 3)) % 97) / (float)(j + 1);
        ds->x[i * 4 + 3] = i % 10 == 0 ? NAN : ds->x[i * 4 + 3];
        ds->y[i] = (float)(i % 3 == 0);
    }
    assert_int_equal(pst_drift_profile_fit_features(ds, profile, NULL), PST_OK);
    assert_int_equal(pst_drift_profile_fit_labels(*profile, ds, NULL), PST_OK);
    pst_dataset_destroy(&ds);
    mf->drift = *profile;
}

static void assert_same_dist(const pst_drift_dist_t *a, const pst_drift_dist_t *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->n_edges, b->n_edges);
    assert_int_equal(a->n_bins, b->n_bins);
    if (a->n_edges)
        assert_memory_equal(a->edges, b->edges, a->n_edges * sizeof *a->edges);
    assert_memory_equal(a->counts, b->counts, a->n_bins * sizeof *a->counts);
    assert_int_equal(a->n_missing, b->n_missing);
    assert_memory_equal(&a->min, &b->min, sizeof a->min);
    assert_memory_equal(&a->max, &b->max, sizeof a->max);
}

static void profile_reads_back_bit_for_bit(void **state)
{
    (void)state;
    pst_modelfile_t mf, back;
    pst_drift_profile_t *p = NULL;
    small_model(&mf, &p);
    char path[256];
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_save(&mf, pst_scratch_path(path, "drift.pst"), &err), PST_OK);
    assert_int_equal(pst_modelfile_load(&back, path, &err), PST_OK);
    assert_non_null(back.drift);
    assert_int_equal(back.drift->n_features, 4);
    assert_int_equal(back.drift->n_inputs, 4);
    for (size_t j = 0; j < 4; j++)
        assert_same_dist(&p->features[j], &back.drift->features[j]);
    assert_int_equal(back.drift->features[3].n_missing, 30);
    assert_true(back.drift->has_label);
    assert_same_dist(&p->label, &back.drift->label);
    assert_false(back.drift->has_prediction);
    assert_memory_equal(back.params, params, sizeof params);
    pst_modelfile_fini(&back);
    pst_drift_profile_destroy(&p);
}

/* A file as written before the packed form: the plain profile in field 21, none in 22. */
static void a_plain_profile_still_loads(void **state)
{
    (void)state;
    pst_modelfile_t mf, back;
    pst_drift_profile_t *p = NULL;
    small_model(&mf, &p);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(pst_modelfile_pack(&mf, &buf, &len, NULL), PST_OK);
    Pst__Model *m = pst__model__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(m);
    assert_non_null(m->drift_packed); /* what files write now */
    assert_null(m->drift);
    Pst__DriftProfilePacked *packed = m->drift_packed;
    Pst__DriftProfile plain = PST__DRIFT_PROFILE__INIT;
    assert_int_equal(pst_drift_to_proto(p, &plain, NULL), PST_OK);
    m->drift_packed = NULL;
    m->drift = &plain;
    len = pst__model__get_packed_size(m);
    buf = malloc(len);
    pst__model__pack(m, buf);
    m->drift = NULL;
    m->drift_packed = packed;
    pst__model__free_unpacked(m, NULL);
    pst_drift_proto_free(&plain);
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_unpack(&back, buf, len, "old.pst", &err), PST_OK);
    free(buf);
    assert_non_null(back.drift);
    assert_int_equal(back.drift->n_features, p->n_features);
    for (size_t j = 0; j < p->n_features; j++)
        assert_same_dist(&p->features[j], &back.drift->features[j]);
    assert_same_dist(&p->label, &back.drift->label);
    pst_modelfile_fini(&back);
    pst_drift_profile_destroy(&p);
}

static void a_file_without_profile_loads_without_one(void **state)
{
    (void)state;
    pst_modelfile_t mf, back;
    small_model(&mf, NULL);
    char path[256];
    assert_int_equal(pst_modelfile_save(&mf, pst_scratch_path(path, "old.pst"), NULL), PST_OK);
    assert_int_equal(pst_modelfile_load(&back, path, NULL), PST_OK);
    assert_null(back.drift);
    assert_memory_equal(back.params, params, sizeof params);
    pst_modelfile_fini(&back);
}

static void a_profile_of_other_inputs_is_refused(void **state)
{
    (void)state;
    pst_modelfile_t mf, back;
    pst_drift_profile_t *p = NULL;
    small_model(&mf, &p);
    p->n_inputs = 5; /* claims an input the model does not take */
    char path[256];
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_save(&mf, pst_scratch_path(path, "bad.pst"), &err), PST_OK);
    assert_int_equal(pst_modelfile_load(&back, path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "bad.pst: drift profile: 4 features of 5 inputs"));
    assert_null(back.drift);
    pst_drift_profile_destroy(&p);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(profile_reads_back_bit_for_bit),
        cmocka_unit_test(a_plain_profile_still_loads),
        cmocka_unit_test(a_file_without_profile_loads_without_one),
        cmocka_unit_test(a_profile_of_other_inputs_is_refused),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
