/* Tests for ps/shard: range balance, key placement, first-touch rows and optimizer steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/net/codec.h"
#include "ps/shard.h"

static pst_optim_cfg_t optim_cfg(pst_optim_kind_t kind)
{
    pst_optim_cfg_t cfg;
    pst_optim_cfg_defaults(&cfg, kind);
    return cfg;
}

static void ranges_are_balanced_and_contiguous(void **state)
{
    const uint64_t sizes[] = {0, 1, 2, 3, 7, 10, 99, 100, 101, 1000003, 1ull << 40};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t n = sizes[k];
        for (uint32_t S = 1; S <= 17; S++) {
            uint64_t next = 0, lo = n / S, hi = (n + S - 1) / S;
            for (uint32_t s = 0; s < S; s++) {
                uint64_t off, len;
                pst_wire_shard_range(n, S, s, &off, &len);
                assert_int_equal(off, next);
                assert_true(len == lo || len == hi);
                /* The larger ranges come first. */
                assert_int_equal(len, s < n % S ? hi : lo);
                next = off + len;
            }
            assert_int_equal(next, n);
        }
    }
}

static void every_element_has_one_owner(void **state)
{
    for (uint64_t n = 0; n < 60; n++) {
        for (uint32_t S = 1; S <= 9; S++) {
            int owners[60] = {0};
            for (uint32_t s = 0; s < S; s++) {
                uint64_t off, len;
                pst_wire_shard_range(n, S, s, &off, &len);
                for (uint64_t i = off; i < off + len; i++)
                    owners[i]++;
            }
            for (uint64_t i = 0; i < n; i++)
                assert_int_equal(owners[i], 1);
        }
    }
}

static void key_placement_is_fixed_and_spread(void **state)
{
    /* Golden values of the seeded mix (splitmix64 finalizer over key ^ "PSTSHARD"), computed
     * independently in Python: clients and checkpoints depend on them never changing. */
    assert_int_equal(pst_wire_key_hash(0), 0x7994114f24120e15ull);
    assert_int_equal(pst_wire_key_hash(42), 0x61e73546071f8db0ull);
    assert_int_equal(pst_wire_key_hash(UINT64_MAX), 0xf5ddb2902afaf729ull);
    assert_int_equal(pst_wire_key_server(0, 7), 4);
    assert_int_equal(pst_wire_key_server(42, 7), 1);
    assert_int_equal(pst_wire_key_server(1ull << 63, 7), 2);

    /* Sequential keys (hashed feature ids) and strided keys spread evenly. */
    enum { N = 140000, S = 7 };
    int seq[S] = {0}, strided[S] = {0};
    for (uint64_t k = 0; k < N; k++) {
        seq[pst_wire_key_server(k, S)]++;
        strided[pst_wire_key_server(k << 20, S)]++;
    }
    for (int s = 0; s < S; s++) {
        assert_true(abs(seq[s] - N / S) < N / S / 20);
        assert_true(abs(strided[s] - N / S) < N / S / 20);
    }
    for (uint64_t k = 0; k < 1000; k++)
        assert_int_equal(pst_wire_key_server(k, 1), 0);
}

static void registration_and_lookup(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_err_t err = {0};
    assert_null(pst_shard_new(3, 3, &cfg, &err));
    assert_int_equal(err.code, PST_EINVAL);
    pst_shard_t *sh = pst_shard_new(1, 3, &cfg, NULL);
    float init[4] = {1, 2, 3, 4};
    assert_int_equal(pst_shard_add_dense(sh, 7, 0, 11, init, NULL), 0);
    assert_int_equal(pst_shard_add_sparse(sh, 7, 1, 4, 0.0f, 1, NULL), 1);
    assert_int_equal(pst_shard_add_dense(sh, 8, 0, 2, NULL, NULL), 2);
    assert_int_equal(pst_shard_add_dense(sh, 7, 0, 11, init, &err), PST_ESTATE);
    assert_int_equal(pst_shard_find(sh, 7, 1), 1);
    assert_int_equal(pst_shard_find(sh, 9, 0), -1);
    assert_int_equal(pst_shard_count(sh), 3);
    /* 11 over 3 servers: 4, 4, 3; server 1 owns [4, 8). */
    pst_slice_t *s = pst_shard_slice(sh, 0);
    assert_int_equal(s->offset, 4);
    assert_int_equal(s->len, 4);
    assert_memory_equal(s->values, init, sizeof init);
    /* 2 over 3 servers: server 1 owns [1, 2), server 2 nothing. */
    s = pst_shard_slice(sh, 2);
    assert_int_equal(s->offset, 1);
    assert_int_equal(s->len, 1);
    assert_true(s->values[0] == 0.0f);
    assert_null(pst_shard_slice(sh, 3));
    pst_shard_destroy(&sh);
    pst_shard_destroy(&sh);
}

/* Dropping a model removes its slices, dense and sparse, keeps the others in order, and frees
 * values still lent to a message only once the message lets go. */
static void drop_model_keeps_the_other_slices_in_order(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_ADAM);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    float init[2] = {1, 2};
    uint64_t key = 5;
    uint32_t row;
    assert_int_equal(pst_shard_add_dense(sh, 1, 0, 2, init, NULL), 0);
    assert_int_equal(pst_shard_add_dense(sh, 2, 0, 2, init, NULL), 1);
    assert_int_equal(pst_shard_add_sparse(sh, 1, 1, 3, 0.5f, 1, NULL), 2);
    assert_int_equal(pst_shard_add_sparse(sh, 3, 0, 3, 0.5f, 1, NULL), 3);
    assert_int_equal(pst_slice_rows(pst_shard_slice(sh, 2), &key, 1, &row, NULL), PST_OK);
    void (*release)(void *, void *);
    void *hint;
    const float *lent = pst_slice_lend(pst_shard_slice(sh, 0), &release, &hint);
    assert_int_equal(pst_shard_drop_model(sh, 1), 2);
    assert_int_equal(pst_shard_count(sh), 2);
    assert_int_equal(pst_shard_find(sh, 2, 0), 0);
    assert_int_equal(pst_shard_find(sh, 3, 0), 1);
    assert_int_equal(pst_shard_find(sh, 1, 0), -1);
    assert_int_equal(pst_shard_find(sh, 1, 1), -1);
    assert_true(lent[0] == 1.0f && lent[1] == 2.0f);
    release((void *)lent, hint);
    assert_int_equal(pst_shard_drop_model(sh, 1), 0);
    /* Registered again, the model starts from its new values. */
    float again[2] = {7, 8};
    assert_int_equal(pst_shard_add_dense(sh, 1, 0, 2, again, NULL), 2);
    assert_memory_equal(pst_shard_slice(sh, 2)->values, again, sizeof again);
    assert_int_equal(pst_shard_drop_model(sh, 2), 1);
    assert_int_equal(pst_shard_drop_model(sh, 3), 1);
    assert_int_equal(pst_shard_find(sh, 1, 0), 0);
    pst_shard_destroy(&sh);
}

static void dense_step_and_accumulation(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    float init[3] = {1, 2, 3};
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_dense(sh, 0, 0, 3, init, NULL));
    float g[3] = {1, -2, 4};
    assert_int_equal(pst_slice_dense_step(s, g, 0.05f, NULL), PST_OK); /* w -= 0.05 g */
    assert_float_equal(s->values[0], 0.95, 1e-6);
    assert_float_equal(s->values[1], 2.1, 1e-6);
    assert_float_equal(s->values[2], 2.8, 1e-6);

    /* Two contributions, the first held in place until the second arrives. */
    float g1[3] = {2, 0, -2}, g2[3] = {4, 2, 0};
    assert_int_equal(pst_slice_dense_acc_add(s, g1, true, NULL), PST_OK);
    assert_ptr_equal(s->acc_held, g1);
    assert_int_equal(pst_slice_dense_acc_add(s, g2, true, NULL), PST_OK);
    assert_null(s->acc_held);
    g1[0] = 1000; /* the held contribution was copied when the second one came */
    assert_int_equal(pst_slice_dense_apply(s, 0.5f, 1.0f, NULL), PST_OK); /* w -= {3, 1, -1} */
    assert_float_equal(s->values[0], -2.05, 1e-6);
    assert_float_equal(s->values[1], 1.1, 1e-6);
    assert_float_equal(s->values[2], 3.8, 1e-6);
    /* Empty again: applying twice changes nothing. */
    assert_int_equal(pst_slice_dense_apply(s, 0.5f, 1.0f, NULL), PST_OK);
    assert_float_equal(s->values[0], -2.05, 1e-6);

    /* A single held contribution applied directly, and one settled before its buffer goes. */
    assert_int_equal(pst_slice_dense_acc_add(s, g2, true, NULL), PST_OK);
    assert_int_equal(pst_slice_dense_apply(s, 1.0f, 1.0f, NULL), PST_OK);
    assert_float_equal(s->values[0], -6.05, 1e-6);
    float tmp[3] = {1, 1, 1};
    assert_int_equal(pst_slice_dense_acc_add(s, tmp, true, NULL), PST_OK);
    assert_int_equal(pst_slice_dense_acc_settle(s, NULL), PST_OK);
    tmp[0] = 1000;
    assert_int_equal(pst_slice_dense_apply(s, 0.5f, 1.0f, NULL), PST_OK);
    assert_float_equal(s->values[0], -6.55, 1e-6);
    pst_shard_destroy(&sh);
}

/* Lent values never change under the borrower: an update moves the slice to a fresh copy. */
static void lent_values_stay_unchanged(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    float init[2] = {1, 2}, g[2] = {1, 1};
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_dense(sh, 0, 0, 2, init, NULL));
    void (*release)(void *, void *);
    void *hint;
    const float *lent = pst_slice_lend(s, &release, &hint);
    assert_ptr_equal(lent, s->values);
    assert_int_equal(pst_slice_dense_step(s, g, 1.0f, NULL), PST_OK);
    assert_true(s->values != lent);
    assert_true(lent[0] == 1.0f && lent[1] == 2.0f);
    assert_true(s->values[0] == 0.0f && s->values[1] == 1.0f);
    release((void *)lent, hint);
    /* Not lent any more: updates happen in place. */
    const float *before = s->values;
    assert_int_equal(pst_slice_dense_step(s, g, 1.0f, NULL), PST_OK);
    assert_ptr_equal(s->values, before);
    /* The slice can go while a message still holds the values. */
    lent = pst_slice_lend(s, &release, &hint);
    pst_shard_destroy(&sh);
    assert_true(lent[0] == -1.0f);
    release((void *)lent, hint);
}

/* The slice's checksum is computed once per version of its values and follows every step, in
 * place or on a private copy. */
static void slice_checksum_follows_the_values(void **state)
{
    (void)state;
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    float init[300], g[300];
    for (int i = 0; i < 300; i++) {
        init[i] = (float)i * 0.25f;
        g[i] = 1.0f;
    }
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_dense(sh, 0, 0, 300, init, NULL));
    uint32_t first = pst_slice_checksum(s);
    assert_int_equal(first, pst_checksum(init, sizeof init));
    assert_int_equal(pst_slice_checksum(s), first);
    assert_int_equal(pst_slice_dense_step(s, g, 1.0f, NULL), PST_OK);
    assert_int_not_equal(pst_slice_checksum(s), first);
    assert_int_equal(pst_slice_checksum(s), pst_checksum(s->values, sizeof init));
    /* Stepped while lent: the copy's sum is the new values'. */
    void (*release)(void *, void *);
    void *hint;
    const float *lent = pst_slice_lend(s, &release, &hint);
    uint32_t lent_sum = pst_slice_checksum(s);
    assert_int_equal(pst_slice_dense_step(s, g, 1.0f, NULL), PST_OK);
    assert_int_equal(pst_checksum(lent, sizeof init), lent_sum);
    assert_int_equal(pst_slice_checksum(s), pst_checksum(s->values, sizeof init));
    assert_int_not_equal(pst_slice_checksum(s), lent_sum);
    release((void *)lent, hint);
    /* A write outside the step says so. */
    s->values[7] = 123.0f;
    pst_slice_values_changed(s);
    assert_int_equal(pst_slice_checksum(s), pst_checksum(s->values, sizeof init));
    pst_shard_destroy(&sh);
}

static void rows_are_created_on_first_touch(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_shard_t *a = pst_shard_new(0, 1, &cfg, NULL), *b = pst_shard_new(0, 1, &cfg, NULL);
    pst_slice_t *zeros = pst_shard_slice(a, pst_shard_add_sparse(a, 0, 0, 3, 0.0f, 5, NULL));
    pst_slice_t *ra = pst_shard_slice(a, pst_shard_add_sparse(a, 0, 1, 3, 0.1f, 5, NULL));
    pst_slice_t *rb = pst_shard_slice(b, pst_shard_add_sparse(b, 0, 1, 3, 0.1f, 5, NULL));

    uint64_t keys[3] = {10, 20, UINT64_MAX}, reversed[3] = {UINT64_MAX, 20, 10};
    uint32_t rows[3], rows_b[3];
    float out[9], out_b[9];
    assert_int_equal(pst_slice_rows(zeros, keys, 3, rows, NULL), PST_OK);
    assert_int_equal(zeros->n_rows, 3);
    pst_slice_gather(zeros, rows, 3, out);
    for (int i = 0; i < 9; i++)
        assert_true(out[i] == 0.0f);

    /* Random init depends on (seed, key, column) only, not on the order of touch. */
    assert_int_equal(pst_slice_rows(ra, keys, 3, rows, NULL), PST_OK);
    assert_int_equal(pst_slice_rows(rb, reversed, 3, rows_b, NULL), PST_OK);
    assert_int_equal(rows[0], 0);
    assert_int_equal(rows_b[2], 2);
    pst_slice_gather(ra, rows, 3, out);
    pst_slice_gather(rb, (uint32_t[]){rows_b[2], rows_b[1], rows_b[0]}, 3, out_b);
    assert_memory_equal(out, out_b, sizeof out);
    for (int i = 0; i < 9; i++)
        assert_true(out[i] >= -0.1f && out[i] <= 0.1f && out[i] != 0.0f);
    assert_true(out[0] != out[1] && out[0] != out[3]);

    /* Touching again finds the same rows. */
    uint32_t again[3];
    assert_int_equal(pst_slice_rows(ra, keys, 3, again, NULL), PST_OK);
    assert_memory_equal(again, rows, sizeof rows);
    assert_int_equal(ra->n_rows, 3);
    pst_shard_destroy(&a);
    pst_shard_destroy(&b);
}

static void many_rows_survive_growth(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_sparse(sh, 0, 0, 2, 0.0f, 0, NULL));
    enum { N = 20000 };
    for (uint64_t k = 0; k < N; k++) {
        uint64_t key = k * 7919;
        uint32_t row;
        assert_int_equal(pst_slice_rows(s, &key, 1, &row, NULL), PST_OK);
        assert_int_equal(row, k);
        float g[2] = {-(float)k, 1.0f};
        assert_int_equal(pst_slice_sparse_step(s, &row, 1, g, 1.0f, NULL), PST_OK);
    }
    assert_int_equal(s->n_rows, N);
    for (uint64_t k = 0; k < N; k++) {
        uint64_t key = k * 7919;
        uint32_t row;
        assert_int_equal(pst_slice_rows(s, &key, 1, &row, NULL), PST_OK);
        assert_int_equal(row, k);
        assert_true(s->rows[2 * row] == (float)k);
        assert_true(s->rows[2 * row + 1] == -1.0f);
    }
    assert_int_equal(s->n_rows, N);
    pst_shard_destroy(&sh);
}

/* A stateful optimizer keeps state per row: a row stepped through the sparse slice ends where a
 * dense optimizer over one row ends, and untouched rows do not move. */
static void sparse_rows_keep_their_own_optimizer_state(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_ADAM);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_sparse(sh, 0, 0, 2, 0.0f, 0, NULL));
    assert_true(pst_slice_stateful(s));
    pst_optim_t *ref = pst_optim_new(&cfg, 2, NULL);
    float w_ref[2] = {0, 0};
    uint64_t keys[2] = {3, 4};
    uint32_t rows[2];
    assert_int_equal(pst_slice_rows(s, keys, 2, rows, NULL), PST_OK);
    for (int t = 0; t < 5; t++) {
        float g[2] = {1.0f + t, -0.5f * t};
        float g_ref[2] = {g[0], g[1]};
        assert_int_equal(pst_slice_sparse_step(s, &rows[0], 1, g, 0.01f, NULL), PST_OK);
        pst_optim_step(ref, w_ref, g_ref, 0.01f);
    }
    assert_float_equal(s->rows[0], w_ref[0], 1e-7);
    assert_float_equal(s->rows[1], w_ref[1], 1e-7);
    assert_true(s->rows[2] == 0.0f && s->rows[3] == 0.0f);
    size_t n_state = 0;
    uint64_t steps = 0;
    const float *st = pst_slice_row_state(s, rows[0], &n_state, &steps);
    assert_non_null(st);
    assert_int_equal(n_state, 4); /* Adam: m and v of both coordinates */
    assert_int_equal(steps, 5);
    size_t n_ref = 0;
    assert_memory_equal(st, pst_optim_state(ref, &n_ref), 4 * sizeof(float));
    assert_null(pst_slice_row_state(s, rows[1], &n_state, &steps));
    pst_optim_destroy(&ref);
    pst_shard_destroy(&sh);
}

static void sparse_accumulation_averages_touched_rows(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_sparse(sh, 0, 0, 2, 0.0f, 0, NULL));
    uint64_t k1[2] = {1, 2}, k2[2] = {2, 3}, k_idle = 9;
    uint32_t r1[2], r2[2], r_idle;
    assert_int_equal(pst_slice_rows(s, &k_idle, 1, &r_idle, NULL), PST_OK);
    assert_int_equal(pst_slice_rows(s, k1, 2, r1, NULL), PST_OK);
    float g1[4] = {1, 1, 2, 2};
    assert_int_equal(pst_slice_sparse_acc_add(s, r1, 2, g1, NULL), PST_OK);
    /* New rows touched after the accumulator exists grow it too. */
    assert_int_equal(pst_slice_rows(s, k2, 2, r2, NULL), PST_OK);
    float g2[4] = {4, 4, 6, 6};
    assert_int_equal(pst_slice_sparse_acc_add(s, r2, 2, g2, NULL), PST_OK);
    assert_int_equal(pst_slice_sparse_apply(s, 0.5f, 1.0f, NULL), PST_OK);
    /* Two contributors: key 1 -> -0.5, key 2 -> -(2 + 4) / 2 = -3, key 3 -> -3. */
    assert_float_equal(s->rows[2 * r1[0]], -0.5, 1e-7);
    assert_float_equal(s->rows[2 * r1[1] + 1], -3.0, 1e-7);
    assert_float_equal(s->rows[2 * r2[1]], -3.0, 1e-7);
    assert_true(s->rows[2 * r_idle] == 0.0f);
    /* The accumulator is empty afterwards. */
    assert_int_equal(pst_slice_sparse_apply(s, 0.5f, 1.0f, NULL), PST_OK);
    assert_float_equal(s->rows[2 * r1[0]], -0.5, 1e-7);
    pst_shard_destroy(&sh);
}

/* Each clock steps the rows touched in that clock: a row touched again after an apply is stepped
 * again by its new gradient alone, and a row touched only before is not stepped. */
static void sparse_rows_are_stepped_again_in_later_clocks(void **state)
{
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_SGD);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_sparse(sh, 0, 0, 1, 0.0f, 0, NULL));
    uint64_t keys[2] = {4, 5};
    uint32_t rows[2];
    assert_int_equal(pst_slice_rows(s, keys, 2, rows, NULL), PST_OK);
    float g1[2] = {1, 2};
    assert_int_equal(pst_slice_sparse_acc_add(s, rows, 2, g1, NULL), PST_OK);
    assert_int_equal(pst_slice_sparse_apply(s, 1.0f, 1.0f, NULL), PST_OK);
    assert_true(s->rows[rows[0]] == -1.0f && s->rows[rows[1]] == -2.0f);
    for (int clock = 1; clock <= 3; clock++) {
        float g = 4.0f;
        assert_int_equal(pst_slice_sparse_acc_add(s, &rows[0], 1, &g, NULL), PST_OK);
        assert_int_equal(pst_slice_sparse_apply(s, 0.5f, 1.0f, NULL), PST_OK);
        assert_true(s->rows[rows[0]] == -1.0f - 2.0f * (float)clock);
        assert_true(s->rows[rows[1]] == -2.0f);
    }
    pst_shard_destroy(&sh);
}

/* Memory is counted from what the store allocated: with FTRL a row of width 1 needs its key (8),
 * weight (4), [z | n] (8) and step counter (8), plus its share of a keymap table at most half
 * full (cells of 16 bytes: the key beside the row). Capacities double, so the total lies between
 * the need and a small multiple of it. */
static void store_bytes_follow_the_rows(void **state)
{
    (void)state;
    pst_optim_cfg_t cfg = optim_cfg(PST_OPT_FTRL);
    pst_shard_t *sh = pst_shard_new(0, 1, &cfg, NULL);
    pst_slice_t *s = pst_shard_slice(sh, pst_shard_add_sparse(sh, 0, 0, 1, 0.0f, 0, NULL));
    uint64_t empty = pst_shard_bytes(sh);
    enum { N = 10000 };
    static uint64_t keys[N];
    static uint32_t rows[N];
    static float g[N];
    for (int i = 0; i < N; i++) {
        keys[i] = 1000003ull * (uint64_t)i + 17;
        g[i] = 0.5f;
    }
    assert_int_equal(pst_slice_rows(s, keys, N, rows, NULL), PST_OK);
    assert_int_equal(pst_slice_sparse_step(s, rows, N, g, 0.1f, NULL), PST_OK);
    assert_int_equal(pst_shard_sparse_rows(sh), N);
    uint64_t need = (uint64_t)N * (8 + 4 + 8 + 8 + 2 * sizeof(pst_keymap_cell_t));
    uint64_t held = pst_shard_bytes(sh) - empty;
    assert_true(held >= need);
    assert_true(held <= 3 * need);
    assert_int_equal(pst_shard_bytes(sh), pst_slice_bytes(s));
    pst_shard_destroy(&sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges_are_balanced_and_contiguous),
        cmocka_unit_test(every_element_has_one_owner),
        cmocka_unit_test(key_placement_is_fixed_and_spread),
        cmocka_unit_test(registration_and_lookup),
        cmocka_unit_test(drop_model_keeps_the_other_slices_in_order),
        cmocka_unit_test(dense_step_and_accumulation),
        cmocka_unit_test(lent_values_stay_unchanged),
        cmocka_unit_test(slice_checksum_follows_the_values),
        cmocka_unit_test(rows_are_created_on_first_touch),
        cmocka_unit_test(many_rows_survive_growth),
        cmocka_unit_test(sparse_rows_keep_their_own_optimizer_state),
        cmocka_unit_test(sparse_accumulation_averages_touched_rows),
        cmocka_unit_test(sparse_rows_are_stepped_again_in_later_clocks),
        cmocka_unit_test(store_bytes_follow_the_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
