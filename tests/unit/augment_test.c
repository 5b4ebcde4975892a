/* Tests for common/data/augment: parsing and its errors, each op's effect on a known image
 * (shift moves and zero-fills, flip mirrors, rotate by 90 degrees turns, cutout zeroes a square),
 * and determinism: the same seed gives the same batch, another seed another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/augment.h"

static pst_augment_t parse(const char *a, const char *b)
{
    char *items[2] = {(char *)a, (char *)b};
    pst_augment_t aug;
    pst_err_t err = {0};
    if (pst_augment_parse(&aug, items, b ? 2 : 1, &err) != PST_OK)
        fail_msg("parse: %s", err.msg);
    aug.channels = 1;
    aug.height = 4;
    aug.width = 5;
    return aug;
}

static void parse_errors_name_the_entry(void **state)
{
    (void)state;
    const char *bad[][2] = {{"shift", "data.augment[0]: 'shift': shift needs a positive size"},
                            {"flip:1", "flip takes no argument"},
                            {"rotate:-5", "rotate needs a positive size"},
                            {"zoom:2", "unknown augmentation 'zoom:2'"}};
    for (int i = 0; i < 4; i++) {
        char *items[1] = {(char *)bad[i][0]};
        pst_augment_t aug;
        pst_err_t err = {0};
        assert_int_equal(pst_augment_parse(&aug, items, 1, &err), PST_EINVAL);
        if (strstr(err.msg, bad[i][1]) == NULL)
            fail_msg("'%s': expected '%s' in '%s'", bad[i][0], bad[i][1], err.msg);
    }
    pst_augment_t aug = parse("shift:2", "cutout:3");
    assert_int_equal(aug.n_ops, 2);
    assert_int_equal(aug.ops[0].kind, PST_AUG_SHIFT);
    assert_float_equal(aug.ops[1].arg, 3.0f, 0);
}

/* A 4x5 image holding 1..20, so each value names the pixel it started at. */
static void fill_image(float *img)
{
    for (int i = 0; i < 20; i++)
        img[i] = (float)(i + 1);
}

static void shift_moves_and_zero_fills(void **state)
{
    (void)state;
    pst_augment_t aug = parse("shift:1", NULL);
    float img[20], scratch[20];
    int seen_moved = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        fill_image(img);
        pst_rng_t rng;
        pst_rng_init(&rng, seed);
        pst_augment_apply(&aug, img, 1, &rng, scratch);
        /* find the shift: the pixel holding v came from (v-1)/5, (v-1)%5 */
        int dx = 99, dy = 99;
        for (int i = 0; i < 20 && dx == 99; i++)
            if (img[i] != 0) {
                int v = (int)img[i] - 1;
                dy = i / 5 - v / 5;
                dx = i % 5 - v % 5;
            }
        assert_true(abs(dx) <= 1 && abs(dy) <= 1);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) {
                int sy = y - dy, sx = x - dx;
                float want = sy >= 0 && sy < 4 && sx >= 0 && sx < 5 ? (float)(sy * 5 + sx + 1) : 0;
                assert_float_equal(img[y * 5 + x], want, 0);
            }
        seen_moved += dx != 0 || dy != 0;
    }
    assert_true(seen_moved > 20); /* 8 of 9 draws move */
}

static void flip_mirrors_about_half_the_time(void **state)
{
    (void)state;
    pst_augment_t aug = parse("flip", NULL);
    float img[20], scratch[20];
    int flipped = 0;
    pst_rng_t rng;
    pst_rng_init(&rng, 7);
    for (int t = 0; t < 200; t++) {
        fill_image(img);
        pst_augment_apply(&aug, img, 1, &rng, scratch);
        bool mirror = img[0] == 5.0f;
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++)
                assert_float_equal(img[y * 5 + x], (float)(y * 5 + (mirror ? 4 - x : x) + 1), 0);
        flipped += mirror;
    }
    assert_true(flipped > 70 && flipped < 130);
}

static void rotate_and_cutout(void **state)
{
    (void)state;
    /* a turn about the centre of an odd image keeps the centre pixel where it is */
    pst_augment_t aug = parse("rotate:15", NULL);
    aug.height = aug.width = 5;
    float img[25], scratch[25];
    for (int i = 0; i < 25; i++)
        img[i] = i == 12 ? 9.0f : 0.0f;
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    pst_augment_apply(&aug, img, 1, &rng, scratch);
    assert_float_equal(img[12], 9.0f, 1e-5); /* the centre is the fixed point */
    /* a constant image stays constant wherever the source lies inside it: the inner 3x3 pixels
     * of a 5x5 image under a turn of at most 15 degrees; the zero fill reaches only the rim */
    for (int i = 0; i < 25; i++)
        img[i] = 2.0f;
    pst_augment_apply(&aug, img, 1, &rng, scratch);
    for (int y = 1; y < 4; y++)
        for (int x = 1; x < 4; x++)
            assert_float_equal(img[y * 5 + x], 2.0f, 1e-5);
    double rim = 0;
    for (int i = 0; i < 25; i++)
        rim += img[i];
    assert_true(rim < 50.0 - 1e-3); /* some corner took in the zero fill */

    aug = parse("cutout:2", NULL);
    float im[20];
    fill_image(im);
    pst_rng_init(&rng, 11);
    pst_augment_apply(&aug, im, 1, &rng, scratch);
    int zeros = 0;
    for (int i = 0; i < 20; i++)
        zeros += im[i] == 0;
    assert_true(zeros >= 1 && zeros <= 4);
}

static void same_seed_same_batch(void **state)
{
    (void)state;
    pst_augment_t aug = parse("shift:2", "rotate:10");
    aug.channels = 2;
    float a[3 * 40], b[3 * 40], c[3 * 40], scratch[40];
    for (int i = 0; i < 120; i++)
        a[i] = b[i] = c[i] = (float)((i * 13) % 17);
    pst_rng_t r1, r2, r3;
    pst_rng_init(&r1, 5);
    pst_rng_init(&r2, 5);
    pst_rng_init(&r3, 6);
    pst_augment_apply(&aug, a, 3, &r1, scratch);
    pst_augment_apply(&aug, b, 3, &r2, scratch);
    pst_augment_apply(&aug, c, 3, &r3, scratch);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_errors_name_the_entry),
        cmocka_unit_test(shift_moves_and_zero_fills),
        cmocka_unit_test(flip_mirrors_about_half_the_time),
        cmocka_unit_test(rotate_and_cutout),
        cmocka_unit_test(same_seed_same_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
