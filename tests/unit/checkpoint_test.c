/* Tests for ps/checkpoint: round trip of every slice kind, rejection of torn or corrupt files, the
 * old checkpoint surviving a failed write, and the history cluster.keep_checkpoints keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps/checkpoint.h"

static pst_optim_cfg_t adam(void)
{
    pst_optim_cfg_t cfg;
    pst_optim_cfg_defaults(&cfg, PST_OPT_ADAM);
    return cfg;
}

/* Server 1 of 2 holding a dense tensor (11 elements, so 5 here), a sparse one with a few rows
 * stepped and one only read, and a second model namespace; every optimizer has stepped. */
static pst_shard_t *sample_shard(void)
{
    pst_optim_cfg_t cfg = adam();
    pst_shard_t *sh = pst_shard_new(1, 2, &cfg, NULL);
    float init[5] = {1, 2, 3, 4, 5};
    pst_slice_t *d = pst_shard_slice(sh, pst_shard_add_dense(sh, 1, 0, 11, init, NULL));
    pst_slice_t *sp = pst_shard_slice(sh, pst_shard_add_sparse(sh, 1, 1, 3, 0.05f, 9, NULL));
    pst_slice_t *d2 = pst_shard_slice(sh, pst_shard_add_dense(sh, 2, 0, 4, NULL, NULL));
    for (int t = 0; t < 3; t++) {
        float g[5] = {0.1f * t, -1, 2, 0.5f, 3};
        pst_slice_dense_step(d, g, 0.01f, NULL);
        float g2[2] = {1, t};
        pst_slice_dense_step(d2, g2, 0.1f, NULL);
    }
    uint64_t keys[3] = {5, 77, 1ull << 50}, read_only = 12;
    uint32_t rows[3], ro;
    assert_int_equal(pst_slice_rows(sp, keys, 3, rows, NULL), PST_OK);
    assert_int_equal(pst_slice_rows(sp, &read_only, 1, &ro, NULL), PST_OK);
    float g[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(pst_slice_sparse_step(sp, rows, 3, g, 0.01f, NULL), PST_OK);
    d->clock = 6;
    sp->clock = 6;
    d2->clock = 2;
    return sh;
}

static void assert_optim_equal(pst_optim_t *a, pst_optim_t *b)
{
    size_t na, nb;
    float *sa = pst_optim_state(a, &na), *sb = pst_optim_state(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(sa, sb, na * sizeof(float));
    assert_int_equal(pst_optim_steps(a), pst_optim_steps(b));
}

static void assert_slices_equal(pst_slice_t *a, pst_slice_t *b)
{
    assert_int_equal(a->model_id, b->model_id);
    assert_int_equal(a->tensor_id, b->tensor_id);
    assert_int_equal(a->sparse, b->sparse);
    assert_int_equal(a->clock, b->clock);
    assert_optim_equal(a->optim, b->optim);
    if (!a->sparse) {
        assert_int_equal(a->total, b->total);
        assert_int_equal(a->offset, b->offset);
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->values, b->values, a->len * sizeof(float));
        return;
    }
    assert_int_equal(a->row_width, b->row_width);
    assert_true(a->init_scale == b->init_scale);
    assert_int_equal(a->seed, b->seed);
    assert_int_equal(a->n_rows, b->n_rows);
    assert_memory_equal(a->row_keys, b->row_keys, a->n_rows * sizeof(uint64_t));
    assert_memory_equal(a->rows, b->rows, a->n_rows * a->row_width * sizeof(float));
    for (size_t r = 0; r < a->n_rows; r++) {
        size_t na = 0, nb = 0;
        uint64_t ta = 0, tb = 0;
        const float *sa = pst_slice_row_state(a, r, &na, &ta);
        const float *sb = pst_slice_row_state(b, r, &nb, &tb);
        assert_int_equal(sa == NULL, sb == NULL);
        assert_int_equal(na, nb);
        assert_int_equal(ta, tb);
        if (sa != NULL)
            assert_memory_equal(sa, sb, na * sizeof(float));
    }
}

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/pst_ckpt_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    free(dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void write_then_load_is_identical(void **state)
{
    char *dir = temp_dir();
    pst_shard_t *sh = sample_shard();
    pst_err_t err = {0};
    assert_int_equal(pst_checkpoint_write(dir, sh, 6, &err), PST_OK);
    char path[4096];
    assert_int_equal(pst_checkpoint_path(dir, 1, path, sizeof path, NULL), PST_OK);
    assert_non_null(strstr(path, "/server-1.ckpt"));
    assert_int_equal(count_entries(dir), 1);

    pst_optim_cfg_t cfg = adam();
    uint64_t clock = 0;
    pst_shard_t *back = pst_checkpoint_load(path, &cfg, &clock, &err);
    assert_non_null(back);
    assert_int_equal(clock, 6);
    assert_int_equal(pst_shard_server(back), 1);
    assert_int_equal(pst_shard_n_servers(back), 2);
    assert_int_equal(pst_shard_count(back), 3);
    for (size_t i = 0; i < 3; i++)
        assert_slices_equal(pst_shard_slice(sh, i), pst_shard_slice(back, i));

    /* Training continues identically from the restored state (Adam's moments and steps). */
    float g1[5] = {1, 1, 1, 1, 1}, g2[5] = {1, 1, 1, 1, 1};
    pst_slice_dense_step(pst_shard_slice(sh, 0), g1, 0.01f, NULL);
    pst_slice_dense_step(pst_shard_slice(back, 0), g2, 0.01f, NULL);
    assert_memory_equal(pst_shard_slice(sh, 0)->values, pst_shard_slice(back, 0)->values,
                        5 * sizeof(float));
    /* Restored rows keep their place: key 12 is still row 3, found without a new row. */
    uint64_t key = 12;
    uint32_t row;
    assert_int_equal(pst_slice_rows(pst_shard_slice(back, 1), &key, 1, &row, NULL), PST_OK);
    assert_int_equal(row, 3);
    assert_int_equal(pst_shard_slice(back, 1)->n_rows, 4);

    /* Another optimizer kind cannot take this state. */
    pst_optim_cfg_t sgd;
    pst_optim_cfg_defaults(&sgd, PST_OPT_SGD);
    assert_null(pst_checkpoint_load(path, &sgd, &clock, &err));
    assert_int_equal(err.code, PST_EFORMAT);
    assert_non_null(strstr(err.msg, "optimizer"));

    pst_shard_destroy(&back);
    pst_shard_destroy(&sh);
    remove_dir(dir);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*len);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void expect_refused(const char *path, const char *needle)
{
    pst_optim_cfg_t cfg = adam();
    pst_err_t err = {0};
    uint64_t clock = 99;
    assert_null(pst_checkpoint_load(path, &cfg, &clock, &err));
    assert_int_equal(err.code, PST_EFORMAT);
    assert_int_equal(clock, 99);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("expected '%s' in: %s", needle, err.msg);
}

static void torn_or_corrupt_files_are_refused(void **state)
{
    char *dir = temp_dir();
    pst_shard_t *sh = sample_shard();
    assert_int_equal(pst_checkpoint_write(dir, sh, 6, NULL), PST_OK);
    char path[4096], bad[4200];
    pst_checkpoint_path(dir, 1, path, sizeof path, NULL);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    size_t len;
    unsigned char *good = read_all(path, &len);

    /* Torn at every kind of place: inside the header, the body, just before the CRC. */
    const size_t cuts[] = {0, 10, 39, 41, len / 2, len - 5, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(bad, good, cuts[i]);
        expect_refused(bad, cuts[i] < 44 ? "checkpoint" : "truncated");
    }
    /* A flipped bit anywhere in the body or the CRC. */
    const size_t flips[] = {48, len / 3, len / 2, len - 6, len - 1};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, good, len);
        copy[flips[i]] ^= 0x10;
        write_all(bad, copy, len);
        expect_refused(bad, "checksum mismatch");
        free(copy);
    }
    /* Foreign files: wrong magic, a newer version, extra bytes. */
    unsigned char *copy = malloc(len + 4);
    memcpy(copy, good, len);
    copy[0] = 'X';
    write_all(bad, copy, len);
    expect_refused(bad, "not a pstrain checkpoint");
    memcpy(copy, good, len);
    copy[8] = 2;
    write_all(bad, copy, len);
    expect_refused(bad, "version 2");
    memcpy(copy, good, len);
    memset(copy + len, 0, 4);
    write_all(bad, copy, len + 4);
    expect_refused(bad, "truncated");
    free(copy);

    /* The good file still loads. */
    pst_optim_cfg_t cfg = adam();
    uint64_t clock;
    pst_shard_t *back = pst_checkpoint_load(path, &cfg, &clock, NULL);
    assert_non_null(back);
    pst_shard_destroy(&back);
    pst_err_t err = {0};
    assert_null(pst_checkpoint_load("/nonexistent/server-0.ckpt", &cfg, &clock, &err));
    assert_int_equal(err.code, PST_EIO);
    free(good);
    pst_shard_destroy(&sh);
    remove_dir(dir);
}

/* A write that fails half-way (the file size limit stops it) leaves the previous checkpoint
 * intact and no temporary file behind. */
static void failed_write_keeps_the_old_checkpoint(void **state)
{
    char *dir = temp_dir();
    pst_shard_t *sh = sample_shard();
    assert_int_equal(pst_checkpoint_write(dir, sh, 6, NULL), PST_OK);
    char path[4096];
    pst_checkpoint_path(dir, 1, path, sizeof path, NULL);
    size_t len;
    unsigned char *before = read_all(path, &len);

    /* A bigger model that cannot be written in full. */
    pst_slice_t *d = pst_shard_slice(sh, 0);
    for (uint64_t i = 0; i < d->len; i++)
        d->values[i] = -1.0f;
    pst_slice_t *sp = pst_shard_slice(sh, 1);
    for (uint64_t k = 1000; k < 3000; k++) {
        uint32_t row;
        assert_int_equal(pst_slice_rows(sp, &k, 1, &row, NULL), PST_OK);
    }
    struct rlimit old, limited;
    getrlimit(RLIMIT_FSIZE, &old);
    limited = old;
    limited.rlim_cur = len + 100;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limited), 0);
    pst_err_t err = {0};
    int rc = pst_checkpoint_write(dir, sh, 9, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, PST_EIO);
    assert_true(strlen(err.msg) > 0);

    size_t len_after;
    unsigned char *after = read_all(path, &len_after);
    assert_int_equal(len_after, len);
    assert_memory_equal(after, before, len);
    assert_int_equal(count_entries(dir), 1);
    pst_optim_cfg_t cfg = adam();
    uint64_t clock;
    pst_shard_t *back = pst_checkpoint_load(path, &cfg, &clock, NULL);
    assert_non_null(back);
    assert_int_equal(clock, 6);
    assert_true(pst_shard_slice(back, 0)->values[0] != -1.0f);

    /* With room again the new checkpoint replaces the old one. */
    assert_int_equal(pst_checkpoint_write(dir, sh, 9, NULL), PST_OK);
    pst_shard_destroy(&back);
    back = pst_checkpoint_load(path, &cfg, &clock, NULL);
    assert_non_null(back);
    assert_int_equal(clock, 9);
    assert_true(pst_shard_slice(back, 0)->values[0] == -1.0f);
    assert_int_equal(pst_shard_slice(back, 1)->n_rows, 2004);
    pst_shard_destroy(&back);
    free(before);
    free(after);
    pst_shard_destroy(&sh);
    remove_dir(dir);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static bool history_exists(const char *dir, uint64_t clock)
{
    char path[4200];
    assert_int_equal(pst_checkpoint_history_path(dir, 1, clock, path, sizeof path, NULL), PST_OK);
    return exists(path);
}

static uint64_t latest_clock(const char *dir)
{
    char path[4096];
    pst_checkpoint_path(dir, 1, path, sizeof path, NULL);
    pst_optim_cfg_t cfg = adam();
    uint64_t clock = 0;
    pst_shard_t *back = pst_checkpoint_load(path, &cfg, &clock, NULL);
    assert_non_null(back);
    pst_shard_destroy(&back);
    return clock;
}

/* keep 3: after five checkpoints the clock-named files of the last three remain, and server-S.ckpt
 * is the newest; keep 0 deletes none. */
static void only_the_last_k_checkpoints_are_kept(void **state)
{
    char *dir = temp_dir();
    pst_shard_t *sh = sample_shard();
    for (uint64_t c = 10; c <= 50; c += 10) {
        assert_int_equal(pst_checkpoint_write_kept(dir, sh, c, 3, NULL), PST_OK);
        assert_int_equal(latest_clock(dir), c);
    }
    assert_false(history_exists(dir, 10));
    assert_false(history_exists(dir, 20));
    assert_true(history_exists(dir, 30) && history_exists(dir, 40) && history_exists(dir, 50));
    assert_int_equal(count_entries(dir), 4); /* three clock-named files and server-1.ckpt */
    /* keep 1: only the newest; it is the file a resume reads */
    assert_int_equal(pst_checkpoint_write_kept(dir, sh, 60, 1, NULL), PST_OK);
    assert_int_equal(count_entries(dir), 2);
    assert_true(history_exists(dir, 60));
    assert_int_equal(latest_clock(dir), 60);
    /* keep 0: all of them */
    for (uint64_t c = 70; c <= 90; c += 10)
        assert_int_equal(pst_checkpoint_write_kept(dir, sh, c, 0, NULL), PST_OK);
    assert_int_equal(count_entries(dir), 5);
    assert_true(history_exists(dir, 60) && history_exists(dir, 90));
    pst_shard_destroy(&sh);
    remove_dir(dir);
}

/* A checkpoint that cannot be written deletes nothing: the newest stays, and stays the one a
 * resume reads. The write is made to fail by a directory in the way of its file. */
static void a_failed_write_prunes_nothing(void **state)
{
    char *dir = temp_dir();
    pst_shard_t *sh = sample_shard();
    assert_int_equal(pst_checkpoint_write_kept(dir, sh, 10, 1, NULL), PST_OK);
    char blocked[4200];
    pst_checkpoint_history_path(dir, 1, 20, blocked, sizeof blocked, NULL);
    assert_int_equal(mkdir(blocked, 0700), 0);
    pst_err_t err = {0};
    assert_int_not_equal(pst_checkpoint_write_kept(dir, sh, 20, 1, &err), PST_OK);
    assert_true(strlen(err.msg) > 0);
    assert_true(history_exists(dir, 10));
    assert_int_equal(latest_clock(dir), 10);
    rmdir(blocked);
    pst_shard_destroy(&sh);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_then_load_is_identical),
        cmocka_unit_test(torn_or_corrupt_files_are_refused),
        cmocka_unit_test(failed_write_keeps_the_old_checkpoint),
        cmocka_unit_test(only_the_last_k_checkpoints_are_kept),
        cmocka_unit_test(a_failed_write_prunes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
