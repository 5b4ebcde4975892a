/* Tests for common/net/codec_auto: the cost rule (raw when compression does not pay, the cheaper
 * compressor when it does, a margin against noise), the schedule of probes, and re-decisions when
 * the data or the link change. Measurements are synthetic: no clock, no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "common/net/codec_auto.h"

#define MB 1e6
#define GB 1e9
#define BIG (4u << 20) /* a 1M-float payload, in bytes */

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.17g, want %.17g (within %g)", got, want, tol);
}

/* One payload through the schedule: whether it was probed, then the choice. */
static pst_codec_t step(pst_codec_auto_t *a, bool *probed)
{
    bool p = pst_codec_auto_begin(a, BIG);
    if (probed != NULL)
        *probed = p;
    return pst_codec_auto_decide(a);
}

/* Both compressors measured as given (same speeds), the link as given. */
static void measure(pst_codec_auto_t *a, double lz4_ratio, double shuffle_ratio, double enc,
                    double dec, double link)
{
    pst_codec_auto_observe_codec(a, PST_CODEC_LZ4, lz4_ratio, enc, dec);
    pst_codec_auto_observe_codec(a, PST_CODEC_LZ4_SHUFFLE, shuffle_ratio, enc, dec);
    pst_codec_auto_observe_link(a, link);
}

static void raw_until_measured(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    assert_int_equal(step(&a, NULL), PST_CODEC_RAW);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_WARMUP);
    /* A compressor that would pay on any link, but the link is unknown: still raw. */
    pst_codec_auto_observe_codec(&a, PST_CODEC_LZ4, 0.01, 10 * GB, 10 * GB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_RAW);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_NO_LINK);
    assert_true(isinf(pst_codec_auto_cost(&a, PST_CODEC_RAW)));
}

/* Dense float32 gradients: LZ4 saves ~10% of the bytes at ~0.8 GB/s; on a 2 GB/s link that costs
 * 0.45 + 1.25 + 0.33 ns per byte against 0.5 for raw. */
static void raw_when_compression_does_not_pay(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    measure(&a, 0.90, 0.88, 0.8 * GB, 3 * GB, 2 * GB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_RAW);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_NO_GAIN);
    assert_close(pst_codec_auto_cost(&a, PST_CODEC_RAW), 0.5e-9, 1e-15);
    assert_close(pst_codec_auto_cost(&a, PST_CODEC_LZ4), (0.45 + 1.25 + 1.0 / 3) * 1e-9, 1e-15);
    /* The best rejected compressor is the one reported. */
    assert_int_equal(pst_codec_auto_best(&a)->codec, PST_CODEC_LZ4_SHUFFLE);
}

/* Quantised or sparse payloads on a slow link: 4x smaller saves 7.5 ns per byte at 100 MB/s and
 * costs 0.75. The compressor with the lower total cost wins. */
static void compresses_when_it_pays(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    measure(&a, 0.25, 0.20, 2 * GB, 4 * GB, 100 * MB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_LZ4_SHUFFLE);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_PAYS);
    /* Same ratios but the shuffle is slow: plain LZ4 is cheaper overall. */
    pst_codec_auto_init(&a);
    pst_codec_auto_observe_codec(&a, PST_CODEC_LZ4, 0.25, 2 * GB, 4 * GB);
    pst_codec_auto_observe_codec(&a, PST_CODEC_LZ4_SHUFFLE, 0.20, 0.05 * GB, 0.05 * GB);
    pst_codec_auto_observe_link(&a, 100 * MB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_LZ4);
}

/* A compressor that saves under PST_CODEC_AUTO_MARGIN of the raw time is not worth the risk. */
static void margin_keeps_raw_on_thin_gains(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    /* raw 10 ns/B; lz4 0.9 * 10 + 0.25 + 0.25 = 9.5 ns/B: 5% saved. */
    measure(&a, 0.90, 0.95, 4 * GB, 4 * GB, 100 * MB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_RAW);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_NO_GAIN);
    /* 0.5 * 10 + 0.5 = 5.5 ns/B: 45% saved. */
    measure(&a, 0.50, 0.95, 4 * GB, 4 * GB, 100 * MB);
    /* 0.9 -> 0.5 is a drift: the estimate restarts at the new ratio. */
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_LZ4);
}

static void small_payloads_stay_raw_unprobed(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    for (int i = 0; i < 10; i++)
        assert_false(pst_codec_auto_begin(&a, PST_CODEC_AUTO_MIN_BYTES - 1));
    measure(&a, 0.01, 0.01, 10 * GB, 10 * GB, 1 * MB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_RAW);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_SMALL);
    assert_true(pst_codec_auto_begin(&a, PST_CODEC_AUTO_MIN_BYTES));
}

/* Warm-up probes the first payloads, then one in PST_CODEC_AUTO_RECHECK. */
static void probes_warm_up_then_recheck(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    int probed_at[8], n_probed = 0;
    for (int i = 0; i < 3 + 2 * PST_CODEC_AUTO_RECHECK; i++) {
        bool probed;
        step(&a, &probed);
        if (probed && n_probed < 8)
            probed_at[n_probed++] = i;
    }
    assert_int_equal(n_probed, PST_CODEC_AUTO_WARMUP + 2);
    assert_int_equal(probed_at[0], 0);
    assert_int_equal(probed_at[1], 1);
    assert_int_equal(probed_at[2], 2);
    assert_int_equal(probed_at[3], 2 + PST_CODEC_AUTO_RECHECK);
    assert_int_equal(probed_at[4], 2 + 2 * PST_CODEC_AUTO_RECHECK);
}

/* The data changes under a settled choice: a probe's ratio drifts, the warm-up starts again, and
 * the choice follows the new data, both ways. */
static void redecides_when_the_data_changes(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    pst_codec_auto_observe_link(&a, 100 * MB);
    for (int i = 0; i < PST_CODEC_AUTO_WARMUP; i++) {
        bool probed;
        step(&a, &probed);
        assert_true(probed);
        measure(&a, 0.25, 0.30, 2 * GB, 4 * GB, 100 * MB);
    }
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_LZ4);
    uint64_t decisions = a.decisions;
    /* Payloads until the next probe keep the choice without measuring. */
    bool probed = false;
    while (!probed)
        assert_int_equal(step(&a, &probed), PST_CODEC_LZ4);
    /* The tensor turned dense: the probe finds ~no compression. */
    measure(&a, 0.97, 0.95, 1 * GB, 3 * GB, 100 * MB);
    assert_int_equal(a.restarts, 1);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_RAW);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_NO_GAIN);
    assert_int_equal(a.decisions, decisions + 1);
    /* The warm-up runs again on the next payloads. */
    step(&a, &probed);
    assert_true(probed);
    step(&a, &probed);
    assert_true(probed);
    step(&a, &probed);
    assert_false(probed);
    /* And back: zero-heavy again. */
    while (!probed)
        step(&a, &probed);
    measure(&a, 0.20, 0.15, 2 * GB, 4 * GB, 100 * MB);
    assert_int_equal(a.restarts, 2);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_LZ4_SHUFFLE);
    assert_int_equal(a.why, PST_CODEC_AUTO_WHY_PAYS);
}

/* Small ratio noise blends in without a restart. */
static void steady_ratios_blend(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    pst_codec_auto_observe_codec(&a, PST_CODEC_LZ4, 0.40, 2 * GB, 4 * GB);
    pst_codec_auto_observe_codec(&a, PST_CODEC_LZ4, 0.44, 2 * GB, 4 * GB);
    assert_int_equal(a.restarts, 0);
    assert_close(a.est[0].ratio, 0.42, 1e-12);
    /* Nonsense measurements are ignored. */
    pst_codec_auto_observe_codec(&a, PST_CODEC_LZ4, NAN, 2 * GB, 4 * GB);
    pst_codec_auto_observe_codec(&a, PST_CODEC_LZ4, 0.4, 0, 4 * GB);
    pst_codec_auto_observe_link(&a, -1);
    pst_codec_auto_observe_link(&a, INFINITY);
    assert_close(a.est[0].ratio, 0.42, 1e-12);
    assert_true(a.link_bps == 0);
}

/* The link slows down (or speeds up) with the data unchanged: the choice follows at once. */
static void redecides_when_the_link_changes(void **state)
{
    (void)state;
    pst_codec_auto_t a;
    pst_codec_auto_init(&a);
    measure(&a, 0.50, 0.45, 1 * GB, 2 * GB, 2 * GB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_RAW);
    /* Link measurements are blended: a few at 20 MB/s bring the estimate down. */
    for (int i = 0; i < 30; i++)
        pst_codec_auto_observe_link(&a, 20 * MB);
    assert_true(a.link_bps < 25 * MB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_LZ4_SHUFFLE);
    for (int i = 0; i < 40; i++)
        pst_codec_auto_observe_link(&a, 5 * GB);
    assert_int_equal(pst_codec_auto_decide(&a), PST_CODEC_RAW);
    assert_int_equal(a.decisions, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raw_until_measured),
        cmocka_unit_test(raw_when_compression_does_not_pay),
        cmocka_unit_test(compresses_when_it_pays),
        cmocka_unit_test(margin_keeps_raw_on_thin_gains),
        cmocka_unit_test(small_payloads_stay_raw_unprobed),
        cmocka_unit_test(probes_warm_up_then_recheck),
        cmocka_unit_test(redecides_when_the_data_changes),
        cmocka_unit_test(steady_ratios_blend),
        cmocka_unit_test(redecides_when_the_link_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
