/* Tests for common/sched: each schedule at chosen epochs, warm-up, and reduce-on-plateau. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common/optim/sched.h"

/* cmocka's assert_float_equal compares in float; rates are checked in double. */
#define assert_near(got, want, tol) assert_near_at((got), (want), (tol), __LINE__)

static void assert_near_at(double got, double want, double tol, int line)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("line %d: got %.10g, want %.10g", line, got, want);
}

static pst_sched_cfg_t cfg_of(pst_sched_kind_t kind, float base_lr)
{
    pst_sched_cfg_t c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.base_lr = base_lr;
    return c;
}

static float lr_at(const pst_sched_cfg_t *c, int epoch, long step)
{
    pst_sched_t s;
    pst_sched_init(&s, c);
    return pst_sched_lr(&s, epoch, step);
}

static void names_round_trip(void **state)
{
    const char *names[] = {"constant", "step", "exponential", "cosine", "plateau", "one_cycle"};
    for (int i = 0; i < 6; i++) {
        pst_sched_kind_t k = PST_SCHED_CONSTANT;
        assert_int_equal(pst_sched_kind_parse(names[i], &k), PST_OK);
        assert_int_equal(k, i);
        assert_string_equal(pst_sched_kind_name(k), names[i]);
    }
    pst_sched_kind_t k = PST_SCHED_COSINE;
    assert_int_equal(pst_sched_kind_parse("linear", &k), PST_EINVAL);
    assert_int_equal(pst_sched_kind_parse(NULL, &k), PST_EINVAL);
    assert_int_equal(k, PST_SCHED_COSINE);
    assert_string_equal(pst_sched_kind_name((pst_sched_kind_t)-1), "unknown");
}

/* one_cycle over 4 epochs of 10 steps (40 steps): 0.004 at step 0, the peak 0.1 at step 12 (30%),
 * half way down at step 26, 0.1/25e4 at the end and after it; cosine shapes in between (values
 * computed by hand from the closed form). Without a step count the cycle advances per epoch. */
static void one_cycle_rises_then_anneals(void **state)
{
    (void)state;
    pst_sched_cfg_t c = cfg_of(PST_SCHED_ONE_CYCLE, 0.1f);
    c.total_epochs = 4;
    c.steps_per_epoch = 10;
    assert_near(lr_at(&c, 0, 0), 0.004, 1e-9);
    assert_near(lr_at(&c, 0, 6), 0.004 + 0.096 * 0.5, 1e-8); /* half of the rise */
    assert_near(lr_at(&c, 1, 12), 0.1, 1e-8);
    assert_near(lr_at(&c, 2, 26), 4e-7 + (0.1 - 4e-7) * 0.5, 1e-8);
    assert_near(lr_at(&c, 3, 40), 4e-7, 1e-12);
    assert_near(lr_at(&c, 9, 400), 4e-7, 1e-12);
    double prev = 0;
    for (long s = 0; s <= 12; s++) { /* rising, then falling */
        double lr = lr_at(&c, (int)(s / 10), s);
        assert_true(lr > prev);
        prev = lr;
    }
    for (long s = 13; s <= 40; s++) {
        double lr = lr_at(&c, (int)(s / 10), s);
        assert_true(lr < prev);
        prev = lr;
    }
    c.steps_per_epoch = 0;
    assert_near(lr_at(&c, 2, 999), 4e-7 + (0.1 - 4e-7) * 0.5 * (1 + cos(M_PI * (0.5 - 0.3) / 0.7)),
                1e-8);
}

static void constant_step_exponential(void **state)
{
    pst_sched_cfg_t c = cfg_of(PST_SCHED_CONSTANT, 0.1f);
    assert_near(lr_at(&c, 0, 0), 0.1f, 0); /* exactly base_lr */
    assert_near(lr_at(&c, 99, 12345), 0.1f, 0);

    c = cfg_of(PST_SCHED_STEP, 0.1f);
    c.gamma = 0.5f;
    c.step_size = 3;
    assert_near(lr_at(&c, 0, 0), 0.1, 1e-8);
    assert_near(lr_at(&c, 2, 50), 0.1, 1e-8);
    assert_near(lr_at(&c, 3, 60), 0.05, 1e-8);
    assert_near(lr_at(&c, 7, 70), 0.025, 1e-8);
    assert_near(lr_at(&c, 9, 80), 0.0125, 1e-8);
    c.step_size = 0; /* no decay points */
    assert_near(lr_at(&c, 9, 80), 0.1, 1e-8);

    c = cfg_of(PST_SCHED_EXPONENTIAL, 0.2f);
    c.gamma = 0.9f;
    assert_near(lr_at(&c, 0, 0), 0.2, 1e-8);
    assert_near(lr_at(&c, 1, 0), 0.18, 1e-8);
    assert_near(lr_at(&c, 3, 0), 0.1458, 1e-8); /* 0.2 * 0.9^3 */
}

/* min + (base - min) (1 + cos(pi e / T)) / 2 with base 0.1, min 0.01, T 10. */
static void cosine(void **state)
{
    pst_sched_cfg_t c = cfg_of(PST_SCHED_COSINE, 0.1f);
    c.min_lr = 0.01f;
    c.total_epochs = 10;
    assert_near(lr_at(&c, 0, 0), 0.1, 1e-8);
    assert_near(lr_at(&c, 2, 0), 0.0914057647, 1e-8); /* 0.01 + 0.045 (1 + cos(0.2 pi)) */
    assert_near(lr_at(&c, 5, 0), 0.055, 1e-8);
    assert_near(lr_at(&c, 8, 0), 0.0185942353, 1e-8); /* 0.01 + 0.045 (1 + cos(0.8 pi)) */
    assert_near(lr_at(&c, 10, 0), 0.01, 1e-8);
    assert_near(lr_at(&c, 25, 0), 0.01, 1e-8); /* held at the floor */
}

/* Warm-up multiplies any schedule by (step + 1) / warmup_steps while step < warmup_steps. */
static void warmup_on_top(void **state)
{
    pst_sched_cfg_t c = cfg_of(PST_SCHED_CONSTANT, 0.1f);
    c.warmup_steps = 4;
    assert_near(lr_at(&c, 0, 0), 0.025, 1e-8);
    assert_near(lr_at(&c, 0, 1), 0.05, 1e-8);
    assert_near(lr_at(&c, 0, 2), 0.075, 1e-8);
    assert_near(lr_at(&c, 0, 3), 0.1, 1e-8);
    assert_near(lr_at(&c, 1, 4), 0.1, 1e-8);
    assert_near(lr_at(&c, 5, 1000), 0.1, 1e-8);

    c = cfg_of(PST_SCHED_STEP, 0.1f);
    c.gamma = 0.5f;
    c.step_size = 1;
    c.warmup_steps = 10;
    assert_near(lr_at(&c, 2, 4), 0.0125, 1e-8); /* 0.1 * 0.5^2 * 5/10 */
    assert_near(lr_at(&c, 2, 10), 0.025, 1e-8);
}

/* The rates torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min", factor=0.5, patience=2,
 * threshold=0.1, threshold_mode="rel", min_lr=0.02) gives after each of these losses. */
static void plateau_matches_torch(void **state)
{
    static const double losses[] = {1.0, 0.95, 0.89, 0.88, 0.87, 0.86, 0.9, 0.9,
                                    0.9, 0.9,  0.9,  0.9,  0.5,  NAN,  0.5, 0.5};
    static const double want[] = {0.1,   0.1,   0.1,   0.1,  0.1,  0.05, 0.05, 0.05,
                                  0.025, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02, 0.02};
    pst_sched_cfg_t c = cfg_of(PST_SCHED_PLATEAU, 0.1f);
    c.factor = 0.5f;
    c.patience = 2;
    c.threshold = 0.1f;
    c.min_lr = 0.02f;
    pst_sched_t s;
    pst_sched_init(&s, &c);
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
        pst_sched_observe(&s, losses[i]);
        float lr = pst_sched_lr(&s, (int)i + 1, 0);
        if (fabs(lr - want[i]) > 1e-8)
            fail_msg("after loss %zu: lr %.9g, want %.9g", i, lr, want[i]);
    }
}

static void plateau_with_warmup_and_others_ignore_observe(void **state)
{
    pst_sched_cfg_t c = cfg_of(PST_SCHED_PLATEAU, 0.1f);
    c.factor = 0.1f;
    c.patience = 0;
    c.warmup_steps = 2;
    pst_sched_t s;
    pst_sched_init(&s, &c);
    pst_sched_observe(&s, 1.0);
    pst_sched_observe(&s, 1.0); /* patience 0: the first bad epoch decays */
    assert_near(pst_sched_lr(&s, 2, 0), 0.005, 1e-8);
    assert_near(pst_sched_lr(&s, 2, 2), 0.01, 1e-8);

    c = cfg_of(PST_SCHED_COSINE, 0.1f);
    c.total_epochs = 4;
    pst_sched_init(&s, &c);
    for (int i = 0; i < 10; i++)
        pst_sched_observe(&s, 1.0);
    assert_near(pst_sched_lr(&s, 2, 0), 0.05, 1e-8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_round_trip),
        cmocka_unit_test(one_cycle_rises_then_anneals),
        cmocka_unit_test(constant_step_exponential),
        cmocka_unit_test(cosine),
        cmocka_unit_test(warmup_on_top),
        cmocka_unit_test(plateau_matches_torch),
        cmocka_unit_test(plateau_with_warmup_and_others_ignore_observe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
