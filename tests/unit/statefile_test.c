/* Tests for worker/train/statefile.c: a worker's running statistics round-trip at their clock, a
 * file of another clock is "not found" (so the caller can fall back), and a damaged, truncated
 * or other-sized file is refused naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "tests/unit/scratch.h"
#include "worker/train/statefile.h"

static void round_trip_at_its_clock(void **state)
{
    (void)state;
    char path[512];
    pst_statefile_path(path, sizeof path, pst_scratch_dir(), 3);
    assert_non_null(strstr(path, "/worker-3.state"));
    float stats[5] = {0.5f, -1.25f, 3.0f, 1e-7f, 42.0f}, back[5] = {0};
    pst_err_t err = {0};
    assert_int_equal(pst_statefile_save(path, 96, stats, 5, &err), PST_OK);
    uint64_t clock = 0;
    assert_int_equal(pst_statefile_load(path, 96, back, 5, &clock, &err), PST_OK);
    assert_int_equal(clock, 96);
    assert_memory_equal(back, stats, sizeof stats);
    /* another clock: not found, and the buffer untouched */
    float untouched[5] = {9, 9, 9, 9, 9};
    assert_int_equal(pst_statefile_load(path, 48, untouched, 5, &clock, &err), PST_ENOTFOUND);
    assert_int_equal(clock, 96);
    assert_true(untouched[0] == 9.0f && untouched[4] == 9.0f);
    assert_non_null(strstr(err.msg, "statistics of clock 96, not 48"));
    char missing[512];
    pst_statefile_path(missing, sizeof missing, pst_scratch_dir(), 7);
    assert_int_equal(pst_statefile_load(missing, 96, back, 5, &clock, &err), PST_ENOTFOUND);
}

static void damaged_files_are_refused(void **state)
{
    (void)state;
    char path[512];
    pst_statefile_path(path, sizeof path, pst_scratch_dir(), 4);
    float stats[4] = {1, 2, 3, 4}, back[4];
    pst_err_t err = {0};
    uint64_t clock;
    assert_int_equal(pst_statefile_save(path, 12, stats, 4, &err), PST_OK);
    /* another model's count */
    assert_int_equal(pst_statefile_load(path, 12, back, 3, &clock, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "worker-4.state: not the running statistics of this model"));
    /* one flipped bit in a value */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 24 + 5, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 24 + 5, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
    assert_int_equal(pst_statefile_load(path, 12, back, 4, &clock, &err), PST_EFORMAT);
    /* truncated */
    f = fopen(path, "wb");
    fputs("PSTSTAT1", f);
    fclose(f);
    assert_int_equal(pst_statefile_load(path, 12, back, 4, &clock, &err), PST_EFORMAT);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_at_its_clock),
        cmocka_unit_test(damaged_files_are_refused),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
