/* Tests for common/drift/profile_pack: the packed drift profile reads back bit for bit (integer,
 * fractional, negative, constant and empty numeric inputs, categorical inputs, names), integer
 * data packs to a fraction of the plain form, and corrupt packed fields are refused naming the
 * file and the feature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/drift/profile_pack.h"
#include "common/drift/profile_proto.h"
#include "common/log.h"

enum { ROWS = 500 };

/* Feature j of row i: each column a different kind of number. */
static float value_at(size_t i, size_t j)
{
    switch (j) {
    case 0:
        return (float)(i % 256); /* pixel-like integers */
    case 1:
        return (float)((i * 7) % 13) * 0.1f - 0.55f; /* fractions, negative */
    case 2:
        return 3.0f; /* constant */
    case 3:
        return NAN; /* never present: no edges */
    case 4:
        return i % 2 ? 1e30f : 1e-30f; /* too far apart for one grid */
    case 5:
        return i % 5 == 0 ? NAN : (float)(i % 3) * 1024.0f; /* missing cells, coarse */
    default:
        return (float)((i * 31) % 256) * (i % 4 == 0); /* mostly zero */
    }
}

static pst_drift_profile_t *profile_of(size_t n_features, bool named)
{
    pst_dataset_t *ds = pst_dataset_new(ROWS, n_features, PST_TASK_CLASSIFICATION);
    assert_non_null(ds);
    ds->n_classes = 2;
    for (size_t i = 0; i < ROWS; i++) {
        for (size_t j = 0; j < n_features; j++)
            ds->x[i * n_features + j] = value_at(i, j);
        ds->y[i] = (float)(i % 3 == 0);
    }
    if (named) {
        ds->feature_names = calloc(n_features, sizeof *ds->feature_names);
        for (size_t j = 0; j < n_features; j++)
            ds->feature_names[j] = strdup(j == 1 ? "f7" : j == 2 ? "width" : "f1");
        free(ds->feature_names[0]);
        ds->feature_names[0] = strdup("f0");
    }
    pst_drift_profile_t *p = NULL;
    assert_int_equal(pst_drift_profile_fit_features(ds, &p, NULL), PST_OK);
    assert_int_equal(pst_drift_profile_fit_labels(p, ds, NULL), PST_OK);
    pst_dataset_destroy(&ds);
    return p;
}

/* p packed to bytes; *len gets their size. Caller frees. */
static uint8_t *pack(const pst_drift_profile_t *p, size_t *len)
{
    Pst__DriftProfilePacked msg = PST__DRIFT_PROFILE_PACKED__INIT;
    assert_int_equal(pst_drift_to_packed(p, &msg, NULL), PST_OK);
    *len = pst__drift_profile_packed__get_packed_size(&msg);
    uint8_t *buf = malloc(*len ? *len : 1);
    pst__drift_profile_packed__pack(&msg, buf);
    pst_drift_packed_free(&msg);
    return buf;
}

static size_t plain_size(const pst_drift_profile_t *p)
{
    Pst__DriftProfile msg = PST__DRIFT_PROFILE__INIT;
    assert_int_equal(pst_drift_to_proto(p, &msg, NULL), PST_OK);
    size_t len = pst__drift_profile__get_packed_size(&msg);
    pst_drift_proto_free(&msg);
    return len;
}

/* p through the packed bytes, corrupt (if given) applied to the unpacked message. */
static int round_trip(const pst_drift_profile_t *p, void (*corrupt)(Pst__DriftProfilePacked *),
                      pst_drift_profile_t **out, pst_err_t *err)
{
    size_t len;
    uint8_t *buf = pack(p, &len);
    Pst__DriftProfilePacked *back = pst__drift_profile_packed__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);
    if (corrupt)
        corrupt(back);
    int rc = pst_drift_from_packed(back, p->n_inputs, "m.pst", out, err);
    pst__drift_profile_packed__free_unpacked(back, NULL);
    return rc;
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
    assert_int_equal(a->n_categories, b->n_categories);
    for (size_t k = 0; k < a->n_categories; k++)
        assert_string_equal(a->categories[k], b->categories[k]);
}

static void assert_same_profile(const pst_drift_profile_t *p, const pst_drift_profile_t *q)
{
    assert_int_equal(q->n_features, p->n_features);
    assert_int_equal(q->n_inputs, p->n_inputs);
    for (size_t j = 0; j < p->n_features; j++)
        assert_same_dist(&p->features[j], &q->features[j]);
    assert_int_equal(q->has_label, p->has_label);
    if (p->has_label)
        assert_same_dist(&p->label, &q->label);
}

static void every_kind_of_input_reads_back_bit_for_bit(void **state)
{
    (void)state;
    for (int named = 0; named < 2; named++) {
        pst_drift_profile_t *p = profile_of(7, named), *q = NULL;
        /* the columns are what they claim to be */
        assert_true(p->features[0].n_edges >= 15);
        assert_int_equal(p->features[2].n_edges, 1);
        assert_int_equal(p->features[3].n_edges, 0);
        assert_true(p->features[5].n_missing == ROWS / 5);
        assert_true(p->features[1].edges[0] < 0 &&
                    p->features[1].edges[0] != floor(p->features[1].edges[0]));
        pst_err_t err = {0};
        assert_int_equal(round_trip(p, NULL, &q, &err), PST_OK);
        assert_same_profile(p, q);
        pst_drift_profile_destroy(&q);
        pst_drift_profile_destroy(&p);
    }
}

/* Integers on the unit grid as steps, fractions on a finer one, a constant as one edge; no edges
 * or magnitudes too far apart for one grid stay plain; default names are left out. */
static void each_input_takes_its_form(void **state)
{
    (void)state;
    pst_drift_profile_t *p = profile_of(7, false);
    Pst__DriftProfilePacked msg = PST__DRIFT_PROFILE_PACKED__INIT;
    assert_int_equal(pst_drift_to_packed(p, &msg, NULL), PST_OK);
    Pst__DriftPackedDist **f = msg.features;
    assert_null(f[0]->plain);
    assert_int_equal(f[0]->grid_exp, 0);
    assert_string_equal(f[0]->name, "");
    assert_int_equal(f[0]->edges[0], 12);
    for (size_t k = 1; k < f[0]->n_edges; k++)
        assert_int_equal(f[0]->edges[k],
                         (int64_t)(p->features[0].edges[k] - p->features[0].edges[k - 1]));
    assert_int_equal(f[0]->below, 12);
    assert_int_equal(f[0]->above, 18);
    assert_null(f[1]->plain);
    assert_true(f[1]->grid_exp < 0);
    assert_null(f[2]->plain);
    assert_int_equal(f[2]->n_edges, 1);
    assert_int_equal(f[2]->edges[0], 3);
    assert_int_equal(f[2]->below + f[2]->above, 0);
    assert_non_null(f[3]->plain);
    assert_non_null(f[4]->plain);
    assert_null(f[5]->plain);
    assert_int_equal(f[5]->grid_exp, 10); /* multiples of 1024 */
    assert_int_equal(f[5]->n_missing, ROWS / 5);
    pst_drift_packed_free(&msg);
    pst_drift_packed_free(&msg); /* safe twice */
    pst_drift_profile_destroy(&p);
}

static void a_categorical_input_reads_back(void **state)
{
    (void)state;
    pst_drift_profile_t *p = profile_of(2, false), *q = NULL;
    const char *colors[3] = {"red", "green", ""};
    uint64_t counts[3] = {5, 3, 2};
    pst_drift_dist_fini(&p->features[1]);
    assert_int_equal(pst_drift_dist_fit_counts(&p->features[1], "color", colors, counts, 3, NULL),
                     PST_OK);
    assert_int_equal(round_trip(p, NULL, &q, NULL), PST_OK);
    assert_same_profile(p, q);
    assert_string_equal(q->features[1].categories[0], "red");
    pst_drift_profile_destroy(&q);
    pst_drift_profile_destroy(&p);
}

/* 784 pixel-like columns (the reference MLP's inputs): the packed form is at most a third of
 * the plain one, because integer edges cost a byte or two instead of eight. */
static void integer_data_packs_to_a_third(void **state)
{
    (void)state;
    enum { N = 784 };
    pst_dataset_t *ds = pst_dataset_new(2000, N, PST_TASK_CLASSIFICATION);
    assert_non_null(ds);
    for (size_t i = 0; i < 2000; i++)
        for (size_t j = 0; j < N; j++)
            ds->x[i * N + j] =
                (float)(((i * 2654435761u + j * 40503u) >> 7) % 256) * (float)(j % 4 != 0);
    pst_drift_profile_t *p = NULL, *q = NULL;
    assert_int_equal(pst_drift_profile_fit_features(ds, &p, NULL), PST_OK);
    pst_dataset_destroy(&ds);
    size_t len;
    free(pack(p, &len));
    size_t plain = plain_size(p);
    print_message("packed %zu bytes, plain %zu bytes\n", len, plain);
    assert_true(len * 3 <= plain);
    assert_int_equal(round_trip(p, NULL, &q, NULL), PST_OK);
    assert_same_profile(p, q);
    pst_drift_profile_destroy(&q);
    pst_drift_profile_destroy(&p);
}

static void step_zero(Pst__DriftProfilePacked *m)
{
    m->features[0]->edges[1] = 0;
}
static void step_negative(Pst__DriftProfilePacked *m)
{
    m->features[0]->edges[2] = -4;
}
static void step_huge(Pst__DriftProfilePacked *m)
{
    m->features[0]->edges[1] = INT64_MAX;
}
static void first_huge(Pst__DriftProfilePacked *m)
{
    m->features[0]->edges[0] = INT64_MIN;
}
static void grid_exp_huge(Pst__DriftProfilePacked *m)
{
    m->features[0]->grid_exp = 5000;
}
static void grid_exp_overflows(Pst__DriftProfilePacked *m)
{
    m->features[0]->grid_exp = 1020;
}
static void below_huge(Pst__DriftProfilePacked *m)
{
    m->features[0]->below = INT64_MIN;
}
static void above_huge(Pst__DriftProfilePacked *m)
{
    m->features[0]->above = INT64_MAX;
}
static void counts_short(Pst__DriftProfilePacked *m)
{
    m->features[0]->n_counts--;
}
static void no_edges(Pst__DriftProfilePacked *m)
{
    m->features[0]->n_edges = 0;
}
/* feature 3 has no values, so it is stored plain: give it a packed field too */
static void both_forms(Pst__DriftProfilePacked *m)
{
    assert_non_null(m->features[3]->plain);
    m->features[3]->grid_exp = 1;
}
static void one_feature_short(Pst__DriftProfilePacked *m)
{
    m->n_features--;
}

static void corrupt_packed_fields_are_refused(void **state)
{
    (void)state;
    struct {
        void (*corrupt)(Pst__DriftProfilePacked *);
        const char *msg;
    } cases[] = {
        {step_zero, "m.pst: drift profile: feature 'f0': edge 1: step 0 is not positive"},
        {step_negative, "edge 2: step -4 is not positive"},
        {step_huge, "edge 1: step 9223372036854775807 is not positive or leaves the grid"},
        {first_huge, "'f0': edge 0: step -9223372036854775808"},
        {grid_exp_huge, "'f0': 19 packed edges on a grid of 2^5000"},
        {grid_exp_overflows, "feature 'f0': range 12 below and 18 above the edges leaves the grid"},
        {below_huge, "'f0': range -9223372036854775808 below and 18 above the edges leaves"},
        {above_huge, "range 12 below and 9223372036854775807 above"},
        {counts_short, "m.pst: drift profile: feature 'f0': 19 counts for 20 bins"},
        {no_edges, "'f0': 0 packed edges"},
        {both_forms, "m.pst: drift profile: feature 3 is stored both plain and packed"},
        {one_feature_short, "m.pst: drift profile: 6 features of 7 inputs"},
    };
    pst_drift_profile_t *p = profile_of(7, false);
    /* pixels 0..255: 19 edges from 12 to 237, the range 0..255 */
    assert_int_equal(p->features[0].n_edges, 19);
    assert_true(p->features[0].edges[0] == 12 && p->features[0].edges[18] == 237);
    assert_true(p->features[0].min == 0 && p->features[0].max == 255);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        pst_drift_profile_t *q = p;
        pst_err_t err = {0};
        assert_int_equal(round_trip(p, cases[c].corrupt, &q, &err), PST_EFORMAT);
        if (strstr(err.msg, cases[c].msg) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", c, err.msg, cases[c].msg);
        assert_null(q);
    }
    pst_drift_profile_destroy(&p);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_kind_of_input_reads_back_bit_for_bit),
        cmocka_unit_test(each_input_takes_its_form),
        cmocka_unit_test(a_categorical_input_reads_back),
        cmocka_unit_test(integer_data_packs_to_a_third),
        cmocka_unit_test(corrupt_packed_fields_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
