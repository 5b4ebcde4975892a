/* Tests for ps/fed/fedweight: the server-side weights of the sites' updates (fed.weighting), each
 * rule on hand-picked claims: samples keeps them, equal makes them alike, capped lowers every claim
 * above twice the round's lower median; and the coordinator aggregates with those weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/log.h"
#include "ps/fed/fedcoord.h"
#include "ps/fed/fedweight.h"

static void names_round_trip(void **state)
{
    (void)state;
    const char *names[] = {"samples", "equal", "capped"};
    for (int i = 0; i < 3; i++) {
        pst_fedweight_t w;
        assert_int_equal(pst_fedweight_parse(names[i], &w), PST_OK);
        assert_int_equal(w, i);
        assert_string_equal(pst_fedweight_name(w), names[i]);
    }
    pst_fedweight_t w;
    assert_int_equal(pst_fedweight_parse("median", &w), PST_EINVAL);
    assert_int_equal(pst_fedweight_parse(NULL, &w), PST_EINVAL);
}

static void samples_keeps_the_claims_and_equal_makes_them_alike(void **state)
{
    (void)state;
    double c[3] = {10, 30, 1e9};
    assert_int_equal(pst_fedweight_apply(PST_FEDWEIGHT_SAMPLES, c, 3), 0);
    assert_true(c[0] == 10 && c[1] == 30 && c[2] == 1e9);
    assert_int_equal(pst_fedweight_apply(PST_FEDWEIGHT_EQUAL, c, 3), 0);
    assert_true(c[0] == 1 && c[1] == 1 && c[2] == 1);
}

static void capped_lowers_claims_above_twice_the_lower_median(void **state)
{
    (void)state;
    /* three sites: median 30, cap 60 */
    double c[3] = {1e9, 10, 30};
    assert_int_equal(pst_fedweight_apply(PST_FEDWEIGHT_CAPPED, c, 3), 1);
    assert_true(c[0] == 60 && c[1] == 10 && c[2] == 30);
    /* two sites: the lower median is the smaller claim, so the liar gets at most twice it */
    double two[2] = {100, 1e6};
    assert_int_equal(pst_fedweight_apply(PST_FEDWEIGHT_CAPPED, two, 2), 1);
    assert_true(two[0] == 100 && two[1] == 200);
    /* four sites: lower median 20 (of 10 20 40 50), cap 40: only 50 is lowered */
    double four[4] = {50, 10, 40, 20};
    assert_int_equal(pst_fedweight_apply(PST_FEDWEIGHT_CAPPED, four, 4), 1);
    assert_true(four[0] == 40 && four[1] == 10 && four[2] == 40 && four[3] == 20);
    /* one site is its own median */
    double one[1] = {7};
    assert_int_equal(pst_fedweight_apply(PST_FEDWEIGHT_CAPPED, one, 1), 0);
    assert_true(one[0] == 7);
}

/* One round of two sites through the coordinator: the global weights move by the mean weighted as
 * fed.weighting says. Deltas 1 and 4 (every element), claims 1 and 1000. */
static float one_round(pst_fedweight_t weighting)
{
    enum { N = 3 };
    const float init[N] = {0, 0, 0}, d0[N] = {1, 1, 1}, d1[N] = {4, 4, 4};
    pst_fedcoord_cfg_t cc;
    memset(&cc, 0, sizeof cc);
    cc.round = (pst_fedround_cfg_t){
        .fraction = 1.0, .min_sites = 2, .min_responses = 1000, .round_timeout = 30, .seed = 1};
    pst_fedagg_cfg_defaults(&cc.agg, PST_FEDOPT_SGD);
    cc.rounds = 1;
    cc.weighting = weighting;
    pst_err_t err = {0};
    pst_fedcoord_t *c = pst_fedcoord_new(&cc, init, N, &err);
    assert_non_null(c);
    pst_fedround_t *sites = pst_fedcoord_sites(c);
    assert_true(pst_fedround_register(sites, "a", &err) >= 0);
    assert_true(pst_fedround_register(sites, "b", &err) >= 0);
    const int *asked;
    int n_asked;
    assert_int_equal(pst_fedcoord_begin(c, 0.0, &asked, &n_asked, &err), PST_OK);
    assert_int_equal(n_asked, 2);
    assert_int_equal(pst_fedcoord_offer(c, 0, 1, d0, 1, 0.5, 0.0), PST_FEDROUND_ACCEPTED);
    assert_int_equal(pst_fedcoord_offer(c, 1, 1, d1, 1000, 0.5, 0.0), PST_FEDROUND_ACCEPTED);
    pst_fedcoord_round_t r;
    assert_int_equal(pst_fedcoord_end(c, 1.0, &r, &err), PST_OK);
    assert_int_equal(r.capped, weighting == PST_FEDWEIGHT_CAPPED ? 1 : 0);
    float got = pst_fedcoord_global(c)[1];
    pst_fedcoord_destroy(&c);
    return got;
}

static void the_coordinator_aggregates_with_the_weights(void **state)
{
    (void)state;
    /* samples: (1*1 + 1000*4) / 1001; equal: (1 + 4) / 2; capped: 1000 -> 2, (1 + 2*4) / 3 */
    assert_float_equal(one_round(PST_FEDWEIGHT_SAMPLES), (float)(4001.0 / 1001.0), 1e-6);
    assert_float_equal(one_round(PST_FEDWEIGHT_EQUAL), 2.5f, 1e-6);
    assert_float_equal(one_round(PST_FEDWEIGHT_CAPPED), 3.0f, 1e-6);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_round_trip),
        cmocka_unit_test(samples_keeps_the_claims_and_equal_makes_them_alike),
        cmocka_unit_test(capped_lowers_claims_above_twice_the_lower_median),
        cmocka_unit_test(the_coordinator_aggregates_with_the_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
