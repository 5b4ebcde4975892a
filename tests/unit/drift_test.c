/* Tests for common/drift (profile, driftstat, profile_proto): PSI, binned KS and chi-square and
 * their p-values against hand-computed and scipy values, the size bounds of numeric and
 * categorical distributions whatever the row count, the profile of a raw CSV table, and the
 * model-file message round trip with corrupt fields refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/csv.h"
#include "common/data/table.h"
#include "common/drift/driftstat.h"
#include "common/drift/profile.h"
#include "common/drift/profile_proto.h"
#include "common/log.h"
#include "scratch.h"

static void psi_matches_hand_computation(void **state)
{
    (void)state;
    uint64_t ref[2] = {50, 50}, cur[2] = {25, 75};
    /* (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5) */
    assert_float_equal(pst_drift_psi(ref, cur, 2, 0), 0.2746530721670274, 1e-12);
    assert_float_equal(pst_drift_psi(ref, ref, 2, 0), 0.0, 0);
    /* Merging four bins into two groups gives the two-bin figure. */
    uint64_t ref4[4] = {25, 25, 25, 25}, cur4[4] = {10, 15, 40, 35};
    assert_float_equal(pst_drift_psi(ref4, cur4, 4, 2), 0.2746530721670274, 1e-12);
    /* An empty bin counts as PST_DRIFT_PSI_FLOOR: (1e-4 - 0.5) ln(1e-4 / 0.5) + (1 - 0.5) ln 2 */
    uint64_t all_one[2] = {0, 10};
    double want = (1e-4 - 0.5) * log(1e-4 / 0.5) + 0.5 * log(2.0);
    assert_float_equal(pst_drift_psi(ref, all_one, 2, 0), want, 1e-12);
    assert_int_equal(pst_drift_severity(0.09), PST_DRIFT_STABLE);
    assert_int_equal(pst_drift_severity(0.1), PST_DRIFT_MODERATE);
    assert_int_equal(pst_drift_severity(0.25), PST_DRIFT_MODERATE);
    assert_int_equal(pst_drift_severity(0.2501), PST_DRIFT_MAJOR);
    assert_int_equal(pst_drift_severity_parse("major"), PST_DRIFT_MAJOR);
    assert_int_equal(pst_drift_severity_parse("huge"), -1);
}

static void ks_is_the_largest_gap_at_the_edges(void **state)
{
    (void)state;
    uint64_t ref[4] = {10, 20, 30, 40}, cur[4] = {40, 30, 20, 10};
    double upper;
    /* cumulative .1 .3 .6 1 against .4 .7 .9 1 */
    assert_float_equal(pst_drift_ks(ref, cur, 4, &upper), 0.4, 1e-12);
    assert_float_equal(upper, 0.8, 1e-12);
    /* scipy.stats.kstwobign.sf(0.4 * sqrt(100 * 100 / 200)) */
    assert_float_equal(pst_drift_ks_pvalue(0.4, 100, 100), 2.2507034943851744e-07, 1e-15);
    assert_float_equal(pst_drift_ks_pvalue(0.1, 200, 300), 0.18130044993812258, 1e-9);
    assert_float_equal(pst_drift_ks_pvalue(0.0, 200, 300), 1.0, 0);
}

static void chi_square_and_its_p_value(void **state)
{
    (void)state;
    uint64_t ref[3] = {30, 70, 0}, cur[3] = {50, 50, 0};
    int df;
    /* expected 40 and 60 on both sides: 2 x (100/40 + 100/60); the empty bin is left out */
    assert_float_equal(pst_drift_chi2(ref, cur, 3, &df), 25.0 / 3.0, 1e-12);
    assert_int_equal(df, 1);
    /* scipy.stats.chi2.sf */
    assert_float_equal(pst_drift_chi2_pvalue(25.0 / 3.0, 1), 0.003892417122778637, 1e-12);
    assert_float_equal(pst_drift_chi2_pvalue(7.97, 4), 0.09268333494884787, 1e-12);
    assert_float_equal(pst_drift_chi2_pvalue(150.0, 30) / 6.706952523937869e-18, 1.0, 1e-9);
    assert_float_equal(pst_drift_chi2_pvalue(0.5, 3), 0.9188914116546758, 1e-12);
}

static void numeric_bins_are_bounded_and_counts_exact(void **state)
{
    (void)state;
    size_t n = 200000;
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((i * 7919) % n); /* every value once, shuffled */
    v[5] = NAN;
    pst_drift_dist_t d;
    assert_int_equal(pst_drift_dist_fit_numeric(&d, "x", v, 1, n, NULL), PST_OK);
    assert_int_equal(d.n_bins, PST_DRIFT_BINS);
    assert_int_equal(d.n_edges, PST_DRIFT_BINS - 1);
    assert_int_equal(d.n_missing, 1);
    assert_int_equal(pst_drift_dist_total(&d), n - 1);
    for (size_t k = 0; k < d.n_bins; k++) /* equal shares, edges from a 1-in-10 sample */
        assert_true(llabs((long long)d.counts[k] - (long long)(n / PST_DRIFT_BINS)) < 200);
    for (size_t k = 1; k < d.n_edges; k++)
        assert_true(d.edges[k] > d.edges[k - 1]);
    assert_float_equal(d.min, 0.0, 0);
    assert_float_equal(d.max, (double)(n - 1), 0);
    assert_int_equal(pst_drift_dist_bin(&d, -1.0), 0);
    assert_int_equal(pst_drift_dist_bin(&d, d.edges[0]), 0);
    assert_int_equal(pst_drift_dist_bin(&d, 1e12), d.n_edges);
    pst_drift_dist_fini(&d);
    /* Ties merge edges: a column of zeros and a few ones keeps two bins, counts exact. */
    for (size_t i = 0; i < n; i++)
        v[i] = i % 1000 == 0 ? 1.0f : 0.0f;
    assert_int_equal(pst_drift_dist_fit_numeric(&d, "x", v, 1, n, NULL), PST_OK);
    assert_int_equal(d.n_edges, 1);
    assert_float_equal(d.edges[0], 0.0, 0);
    assert_int_equal(d.counts[0], n - n / 1000);
    assert_int_equal(d.counts[1], n / 1000);
    pst_drift_dist_fini(&d);
    free(v);
}

static void categories_are_capped_with_other(void **state)
{
    (void)state;
    enum { N = 50 };
    char names[N][8];
    const char *values[N];
    uint64_t counts[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "c%02d", i);
        values[i] = names[i];
        counts[i] = (uint64_t)(i + 1); /* c49 most frequent */
    }
    pst_drift_dist_t d;
    assert_int_equal(pst_drift_dist_fit_counts(&d, "col", values, counts, N, NULL), PST_OK);
    assert_int_equal(d.n_categories, PST_DRIFT_MAX_CATEGORIES);
    assert_int_equal(d.n_bins, PST_DRIFT_MAX_CATEGORIES + 1);
    assert_string_equal(d.categories[0], "c49");
    assert_int_equal(d.counts[0], 50);
    /* other: the 18 least frequent, counts 1..18 */
    assert_int_equal(d.counts[PST_DRIFT_MAX_CATEGORIES], 18 * 19 / 2);
    assert_int_equal(pst_drift_dist_category(&d, "c00"), PST_DRIFT_MAX_CATEGORIES);
    assert_int_equal(pst_drift_dist_category(&d, "c49"), 0);
    pst_drift_dist_fini(&d);
}

static pst_drift_profile_t *profile_of_csv(void)
{
    const char *text = "age,color,y\n"
                       "30,red,0\n40,blue,1\n50,red,0\n,green,1\n60,red,1\n";
    pst_table_opts_t opts = {0};
    pst_data_spec_t spec = {.path = pst_scratch_file(".csv", text), .target = "y", .table = &opts};
    pst_dataset_t *ds = NULL;
    pst_err_t err = {0};
    if (pst_csv_read(&spec, &ds, &err) != PST_OK)
        fail_msg("%s", err.msg);
    pst_drift_profile_t *p = NULL;
    assert_int_equal(pst_drift_profile_fit_features(ds, &p, &err), PST_OK);
    assert_int_equal(pst_drift_profile_fit_labels(p, ds, &err), PST_OK);
    pst_dataset_destroy(&ds);
    return p;
}

static void raw_table_profile_reads_columns_by_type(void **state)
{
    (void)state;
    pst_drift_profile_t *p = profile_of_csv();
    assert_int_equal(p->n_features, 2);
    assert_int_equal(p->n_inputs, 2);
    const pst_drift_dist_t *age = &p->features[0], *color = &p->features[1];
    assert_string_equal(age->name, "age");
    assert_int_equal(age->kind, PST_DRIFT_NUMERIC);
    assert_int_equal(age->n_missing, 1);
    assert_int_equal(pst_drift_dist_total(age), 4);
    assert_float_equal(age->min, 30, 0);
    assert_float_equal(age->max, 60, 0);
    assert_string_equal(color->name, "color");
    assert_int_equal(color->kind, PST_DRIFT_CATEGORICAL);
    assert_int_equal(color->n_categories, 3);
    assert_string_equal(color->categories[0], "red");
    assert_int_equal(color->counts[0], 3);
    assert_true(p->has_label);
    assert_int_equal(p->label.kind, PST_DRIFT_CATEGORICAL);
    assert_int_equal(p->label.counts[pst_drift_dist_category(&p->label, "1")], 3);
    pst_drift_profile_destroy(&p);
    pst_drift_profile_destroy(&p); /* safe twice */
}

/* The profile packed as a file holds it, and read back. */
static int round_trip(const pst_drift_profile_t *p, size_t n_inputs,
                      void (*corrupt)(Pst__DriftProfile *), pst_drift_profile_t **out,
                      pst_err_t *err)
{
    Pst__DriftProfile msg = PST__DRIFT_PROFILE__INIT;
    assert_int_equal(pst_drift_to_proto(p, &msg, NULL), PST_OK);
    size_t len = pst__drift_profile__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    pst__drift_profile__pack(&msg, buf);
    pst_drift_proto_free(&msg);
    Pst__DriftProfile *back = pst__drift_profile__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);
    if (corrupt)
        corrupt(back);
    int rc = pst_drift_from_proto(back, n_inputs, "m.pst", out, err);
    pst__drift_profile__free_unpacked(back, NULL);
    return rc;
}

static void proto_round_trip_is_exact(void **state)
{
    (void)state;
    pst_drift_profile_t *p = profile_of_csv(), *q = NULL;
    assert_int_equal(round_trip(p, 2, NULL, &q, NULL), PST_OK);
    assert_int_equal(q->n_features, p->n_features);
    for (size_t j = 0; j < p->n_features; j++) {
        const pst_drift_dist_t *a = &p->features[j], *b = &q->features[j];
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->kind, b->kind);
        assert_int_equal(a->n_bins, b->n_bins);
        assert_memory_equal(a->counts, b->counts, a->n_bins * sizeof *a->counts);
        assert_int_equal(a->n_edges, b->n_edges);
        if (a->n_edges)
            assert_memory_equal(a->edges, b->edges, a->n_edges * sizeof *a->edges);
        for (size_t k = 0; k < a->n_categories; k++)
            assert_string_equal(a->categories[k], b->categories[k]);
        assert_int_equal(a->n_missing, b->n_missing);
    }
    assert_true(q->has_label);
    assert_false(q->has_prediction);
    assert_memory_equal(p->label.counts, q->label.counts, p->label.n_bins * sizeof(uint64_t));
    pst_drift_profile_destroy(&q);
    pst_drift_profile_destroy(&p);
}

static void edges_descending(Pst__DriftProfile *m)
{
    m->features[0]->edges[0] = m->features[0]->edges[m->features[0]->n_edges - 1] + 1;
}
static void edge_nan(Pst__DriftProfile *m)
{
    m->features[0]->edges[0] = NAN;
}
static void counts_short(Pst__DriftProfile *m)
{
    m->features[1]->n_counts--;
}
static void kind_unknown(Pst__DriftProfile *m)
{
    strcpy(m->features[1]->kind, "ordinal"); /* in place: the message owns it */
}
static void name_empty(Pst__DriftProfile *m)
{
    m->features[0]->name[0] = '\0';
}
static void count_huge(Pst__DriftProfile *m)
{
    m->label->counts[0] = UINT64_MAX;
}

static void corrupt_fields_are_refused(void **state)
{
    (void)state;
    struct {
        void (*corrupt)(Pst__DriftProfile *);
        const char *says;
    } cases[] = {{edges_descending, "edge 1 (40) is not finite and above"},
                 {edge_nan, "is not finite"},
                 {counts_short, "counts for"},
                 {kind_unknown, "unknown kind 'ordinal'"},
                 {name_empty, "has no name"},
                 {count_huge, "label 'y': count 0"}};
    pst_drift_profile_t *p = profile_of_csv();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pst_drift_profile_t *q = NULL;
        pst_err_t err = {0};
        assert_int_equal(round_trip(p, 2, cases[i].corrupt, &q, &err), PST_EFORMAT);
        assert_null(q);
        if (!strstr(err.msg, cases[i].says) || !strstr(err.msg, "m.pst: drift profile"))
            fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, cases[i].says);
    }
    /* A profile of another input count does not belong to the model. */
    pst_drift_profile_t *q = NULL;
    pst_err_t err = {0};
    assert_int_equal(round_trip(p, 3, NULL, &q, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "the model takes 3 inputs"));
    pst_drift_profile_destroy(&p);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(psi_matches_hand_computation),
        cmocka_unit_test(ks_is_the_largest_gap_at_the_edges),
        cmocka_unit_test(chi_square_and_its_p_value),
        cmocka_unit_test(numeric_bins_are_bounded_and_counts_exact),
        cmocka_unit_test(categories_are_capped_with_other),
        cmocka_unit_test(raw_table_profile_reads_columns_by_type),
        cmocka_unit_test(proto_round_trip_is_exact),
        cmocka_unit_test(corrupt_fields_are_refused),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
