/* Tests for ps/fedround: sampling counts, seeded sampling, the three ways a round closes, late,
 * duplicate and unasked updates, silent sites and their return. Time is passed in, never read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ps/fed/fedround.h"

static pst_fedround_t *make(double fraction, int min_sites, int min_responses, double wait,
                            double timeout, int n_sites)
{
    pst_fedround_cfg_t cfg = {fraction, min_sites, min_responses, wait, timeout, 42};
    pst_fedround_t *r = pst_fedround_new(&cfg, NULL);
    assert_non_null(r);
    for (int i = 0; i < n_sites; i++) {
        char id[16];
        snprintf(id, sizeof id, "site-%d", i);
        assert_int_equal(pst_fedround_register(r, id, NULL), i);
    }
    return r;
}

static void sample_count_rule(void **state)
{
    (void)state;
    assert_int_equal(pst_fedround_sample_count(0.25, 1, 10), 3);
    assert_int_equal(pst_fedround_sample_count(0.25, 5, 10), 5);
    assert_int_equal(pst_fedround_sample_count(1.0, 1, 7), 7);
    assert_int_equal(pst_fedround_sample_count(0.3, 1, 10), 3); /* 0.3 * 10 is 3, not 4 */
    assert_int_equal(pst_fedround_sample_count(0.5, 4, 3), 3);
}

static void sampling_is_seeded_and_varies(void **state)
{
    (void)state;
    pst_fedround_t *a = make(0.3, 1, 1, 0, 10, 10), *b = make(0.3, 1, 1, 0, 10, 10);
    bool differs = false;
    int first[3];
    for (uint64_t round = 1; round <= 5; round++) {
        const int *sa, *sb;
        int na, nb;
        assert_int_equal(pst_fedround_start(a, round, 0, &sa, &na, NULL), PST_OK);
        assert_int_equal(pst_fedround_start(b, round, 0, &sb, &nb, NULL), PST_OK);
        assert_int_equal(na, 3);
        assert_int_equal(nb, 3);
        assert_memory_equal(sa, sb, 3 * sizeof *sa);
        assert_true(sa[0] != sa[1] && sa[1] != sa[2] && sa[0] != sa[2]);
        if (round == 1)
            memcpy(first, sa, sizeof first);
        else if (memcmp(first, sa, sizeof first) != 0)
            differs = true;
        for (int i = 0; i < na; i++) {
            assert_int_equal(pst_fedround_offer(a, sa[i], round, 1), PST_FEDROUND_ACCEPTED);
            assert_int_equal(pst_fedround_offer(b, sb[i], round, 1), PST_FEDROUND_ACCEPTED);
        }
        assert_int_equal(pst_fedround_finish(a), 3);
        assert_int_equal(pst_fedround_finish(b), 3);
    }
    assert_true(differs);
    pst_fedround_destroy(&a);
    pst_fedround_destroy(&b);
    pst_fedround_destroy(&b); /* safe twice */
}

static void closes_when_all_answered(void **state)
{
    (void)state;
    pst_fedround_t *r = make(1.0, 3, 1, 100, 1000, 3);
    const int *asked;
    int n;
    assert_int_equal(pst_fedround_start(r, 1, 10, &asked, &n, NULL), PST_OK);
    assert_int_equal(n, 3);
    double deadline;
    assert_int_equal(pst_fedround_poll(r, 10, &deadline), PST_FEDROUND_OPEN);
    assert_true(deadline == 1010);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pst_fedround_poll(r, 11, NULL), PST_FEDROUND_OPEN);
        assert_int_equal(pst_fedround_offer(r, asked[i], 1, 11), PST_FEDROUND_ACCEPTED);
        if (i == 0) { /* min_responses 1 reached: wait_after_min counts from here */
            assert_int_equal(pst_fedround_poll(r, 11, &deadline), PST_FEDROUND_OPEN);
            assert_true(deadline == 111);
        }
    }
    assert_int_equal(pst_fedround_poll(r, 11, NULL), PST_FEDROUND_ALL);
    pst_fedround_destroy(&r);
}

static void closes_after_wait_once_min_responses_arrived(void **state)
{
    (void)state;
    pst_fedround_t *r = make(1.0, 1, 2, 5, 1000, 4);
    const int *asked;
    int n;
    assert_int_equal(pst_fedround_start(r, 1, 0, &asked, &n, NULL), PST_OK);
    assert_int_equal(pst_fedround_offer(r, asked[0], 1, 1), PST_FEDROUND_ACCEPTED);
    /* one response is not two: the wait has not started, only the timeout closes */
    assert_int_equal(pst_fedround_poll(r, 500, NULL), PST_FEDROUND_OPEN);
    assert_int_equal(pst_fedround_offer(r, asked[1], 1, 600), PST_FEDROUND_ACCEPTED);
    double deadline;
    assert_int_equal(pst_fedround_poll(r, 604.9, &deadline), PST_FEDROUND_OPEN);
    assert_true(deadline == 605);
    /* a third answer inside the wait still counts; the wait does not restart */
    assert_int_equal(pst_fedround_offer(r, asked[2], 1, 603), PST_FEDROUND_ACCEPTED);
    assert_int_equal(pst_fedround_poll(r, 605, NULL), PST_FEDROUND_MIN_WAIT);
    assert_int_equal(pst_fedround_finish(r), 3);
    /* the site that did not answer is silent: the next round asks the other three */
    assert_int_equal(pst_fedround_n_eligible(r), 3);
    int silent = asked[3];
    assert_int_equal(pst_fedround_start(r, 2, 700, &asked, &n, NULL), PST_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++)
        assert_int_not_equal(asked[i], silent);
    pst_fedround_destroy(&r);
}

static void timeout_closes_a_round_nobody_answers(void **state)
{
    (void)state;
    pst_fedround_t *r = make(1.0, 1, 1, 0, 30, 2);
    const int *asked;
    int n;
    assert_int_equal(pst_fedround_start(r, 1, 100, &asked, &n, NULL), PST_OK);
    double deadline;
    assert_int_equal(pst_fedround_poll(r, 129.99, &deadline), PST_FEDROUND_OPEN);
    assert_true(deadline == 130);
    assert_int_equal(pst_fedround_poll(r, 130, NULL), PST_FEDROUND_TIMEOUT);
    assert_int_equal(pst_fedround_finish(r), 0);
    assert_int_equal(pst_fedround_n_eligible(r), 0);
    pst_err_t err = {0};
    assert_int_equal(pst_fedround_start(r, 2, 200, &asked, &n, &err), PST_ENOTFOUND);
    assert_false(pst_fedround_is_open(r));
    pst_fedround_destroy(&r);
}

static void late_duplicate_unasked_and_future_updates_are_dropped(void **state)
{
    (void)state;
    pst_fedround_t *r = make(0.5, 1, 1, 0, 10, 4); /* two of four asked */
    const int *asked;
    int n;
    assert_int_equal(pst_fedround_start(r, 1, 0, &asked, &n, NULL), PST_OK);
    assert_int_equal(n, 2);
    int a = asked[0], b = asked[1], other = -1;
    for (int i = 0; i < 4 && other < 0; i++)
        if (i != a && i != b)
            other = i;
    assert_int_equal(pst_fedround_offer(r, other, 1, 1), PST_FEDROUND_UNASKED);
    assert_int_equal(pst_fedround_offer(r, a, 2, 1), PST_FEDROUND_FUTURE);
    assert_int_equal(pst_fedround_offer(r, a, 1, 1), PST_FEDROUND_ACCEPTED);
    assert_int_equal(pst_fedround_offer(r, a, 1, 2), PST_FEDROUND_DUPLICATE);
    assert_int_equal(pst_fedround_n_answered(r), 1);
    assert_int_equal(pst_fedround_poll(r, 10, NULL), PST_FEDROUND_MIN_WAIT);
    pst_fedround_finish(r);
    /* b missed round 1: silent; its update arriving now is late, dropped, and brings it back */
    assert_int_equal(pst_fedround_n_eligible(r), 3);
    assert_int_equal(pst_fedround_offer(r, b, 1, 11), PST_FEDROUND_LATE);
    assert_int_equal(pst_fedround_n_eligible(r), 4);
    assert_false(pst_fedround_answered(r, b));
    assert_int_equal(pst_fedround_start(r, 2, 12, &asked, &n, NULL), PST_OK);
    assert_int_equal(pst_fedround_offer(r, asked[0], 1, 13), PST_FEDROUND_LATE);
    assert_int_equal(pst_fedround_n_answered(r), 0);
    pst_fedround_destroy(&r);
}

static void reregistration_keeps_the_index_and_makes_a_site_eligible(void **state)
{
    (void)state;
    pst_fedround_t *r = make(1.0, 2, 2, 0, 10, 2);
    const int *asked;
    int n;
    assert_int_equal(pst_fedround_start(r, 1, 0, &asked, &n, NULL), PST_OK);
    assert_int_equal(pst_fedround_offer(r, 0, 1, 1), PST_FEDROUND_ACCEPTED);
    assert_int_equal(pst_fedround_poll(r, 10, NULL), PST_FEDROUND_TIMEOUT);
    pst_fedround_finish(r);
    /* site-1 is silent: with min_sites 2 the next round waits for it */
    pst_err_t err = {0};
    assert_int_equal(pst_fedround_start(r, 2, 11, &asked, &n, &err), PST_ENOTFOUND);
    assert_int_equal(pst_fedround_register(r, "site-1", NULL), 1); /* it restarted */
    assert_int_equal(pst_fedround_n_sites(r), 2);
    assert_int_equal(pst_fedround_start(r, 2, 12, &asked, &n, NULL), PST_OK);
    assert_int_equal(n, 2);
    /* a round cannot start twice or go back */
    assert_int_equal(pst_fedround_start(r, 3, 13, &asked, &n, NULL), PST_ESTATE);
    pst_fedround_finish(r);
    assert_int_equal(pst_fedround_start(r, 2, 14, &asked, &n, NULL), PST_ESTATE);
    assert_int_equal(pst_fedround_find(r, "site-0"), 0);
    assert_int_equal(pst_fedround_find(r, "nobody"), -1);
    pst_fedround_destroy(&r);
}

static void bad_ids_and_settings_are_refused(void **state)
{
    (void)state;
    pst_fedround_t *r = make(1.0, 1, 1, 0, 10, 0);
    pst_err_t err = {0};
    assert_int_equal(pst_fedround_register(r, "", &err), PST_EINVAL);
    assert_int_equal(pst_fedround_register(r, "a/b", &err), PST_EINVAL);
    char long_id[PST_FEDROUND_SITE_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(pst_fedround_register(r, long_id, &err), PST_EINVAL);
    for (int i = 0; i < 100; i++) { /* grows past its first allocation */
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        assert_int_equal(pst_fedround_register(r, id, NULL), i);
    }
    pst_fedround_destroy(&r);
    pst_fedround_cfg_t bad = {1.0, 1, 1, 0, 0, 1};
    assert_null(pst_fedround_new(&bad, &err));
    bad.round_timeout = 1, bad.fraction = 0;
    assert_null(pst_fedround_new(&bad, &err));
    bad.fraction = 1, bad.wait_after_min = NAN;
    assert_null(pst_fedround_new(&bad, &err));
}

/* Two registries holding the same sites registered in opposite orders ask the same site ids. */
static void sampling_ignores_registration_order(void **state)
{
    (void)state;
    pst_fedround_cfg_t cfg = {0.4, 1, 1, 0, 10, 7};
    pst_fedround_t *a = pst_fedround_new(&cfg, NULL), *b = pst_fedround_new(&cfg, NULL);
    for (int i = 0; i < 10; i++) {
        char ia[16], ib[16];
        snprintf(ia, sizeof ia, "site-%d", i);
        snprintf(ib, sizeof ib, "site-%d", 9 - i);
        assert_true(pst_fedround_register(a, ia, NULL) >= 0);
        assert_true(pst_fedround_register(b, ib, NULL) >= 0);
    }
    for (uint64_t round = 1; round <= 4; round++) {
        const int *sa, *sb;
        int na, nb;
        assert_int_equal(pst_fedround_start(a, round, 0, &sa, &na, NULL), PST_OK);
        assert_int_equal(pst_fedround_start(b, round, 0, &sb, &nb, NULL), PST_OK);
        assert_int_equal(na, 4);
        assert_int_equal(nb, 4);
        for (int i = 0; i < na; i++) {
            assert_string_equal(pst_fedround_site(a, sa[i]), pst_fedround_site(b, sb[i]));
            pst_fedround_offer(a, sa[i], round, 1);
            pst_fedround_offer(b, sb[i], round, 1);
        }
        pst_fedround_finish(a);
        pst_fedround_finish(b);
    }
    pst_fedround_destroy(&a);
    pst_fedround_destroy(&b);
}

/* A dropped site no longer holds the round open; dropping twice or an unasked site does nothing;
 * the dropped site may still answer while the round is open, and is silent afterwards if not. */
static void dropped_sites_close_the_round(void **state)
{
    (void)state;
    pst_fedround_t *r = make(1.0, 1, 3, 1000, 1000, 3);
    const int *asked;
    int n;
    assert_int_equal(pst_fedround_start(r, 1, 0, &asked, &n, NULL), PST_OK);
    assert_int_equal(n, 3);
    assert_true(pst_fedround_waiting_for(r, 0));
    assert_int_equal(pst_fedround_offer(r, 0, 1, 1), PST_FEDROUND_ACCEPTED);
    assert_false(pst_fedround_waiting_for(r, 0));
    assert_false(pst_fedround_drop(r, 0)); /* it answered */
    assert_true(pst_fedround_drop(r, 1));
    assert_false(pst_fedround_drop(r, 1));
    assert_false(pst_fedround_waiting_for(r, 1));
    assert_int_equal(pst_fedround_poll(r, 2, NULL), PST_FEDROUND_OPEN); /* site 2 still due */
    assert_true(pst_fedround_drop(r, 2));
    assert_int_equal(pst_fedround_poll(r, 3, NULL), PST_FEDROUND_ALL);
    /* site 2 comes back before the round is finished: its update counts */
    assert_int_equal(pst_fedround_offer(r, 2, 1, 4), PST_FEDROUND_ACCEPTED);
    assert_int_equal(pst_fedround_poll(r, 4, NULL), PST_FEDROUND_ALL);
    assert_int_equal(pst_fedround_finish(r), 2);
    assert_int_equal(pst_fedround_n_eligible(r), 2); /* site 1 is silent */
    assert_false(pst_fedround_drop(r, 2));           /* no round open */
    pst_fedround_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sample_count_rule),
        cmocka_unit_test(sampling_is_seeded_and_varies),
        cmocka_unit_test(closes_when_all_answered),
        cmocka_unit_test(closes_after_wait_once_min_responses_arrived),
        cmocka_unit_test(timeout_closes_a_round_nobody_answers),
        cmocka_unit_test(late_duplicate_unasked_and_future_updates_are_dropped),
        cmocka_unit_test(reregistration_keeps_the_index_and_makes_a_site_eligible),
        cmocka_unit_test(bad_ids_and_settings_are_refused),
        cmocka_unit_test(sampling_ignores_registration_order),
        cmocka_unit_test(dropped_sites_close_the_round),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
