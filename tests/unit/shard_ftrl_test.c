/* Tests for ps/shard_ftrl: FTRL rows stepped in blocks equal rows stepped one by one, bit for bit
 * (weights, z, n and step counts), in the ASP step and the BSP accumulate-and-apply; an alpha
 * that changes and rows restored with other weights make the slice step row by row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ps/shard.h"
#include "ps/shard_ftrl.h"

enum { MAX_KEYS = 64 };

typedef struct pair {
    pst_shard_t *sh[2]; /* [0] block steps, [1] one row at a time */
    pst_slice_t *s[2];
    uint64_t rng;
} pair_t;

static void pair_init(pair_t *p, uint32_t width, float init_scale)
{
    pst_optim_cfg_t o;
    pst_optim_cfg_defaults(&o, PST_OPT_FTRL);
    o.ftrl_l1 = 0.02f;
    o.ftrl_l2 = 0.5f;
    for (int k = 0; k < 2; k++) {
        p->sh[k] = pst_shard_new(0, 1, &o, NULL);
        assert_non_null(p->sh[k]);
        int idx = pst_shard_add_sparse(p->sh[k], 0, 0, width, init_scale, 7, NULL);
        assert_true(idx >= 0);
        p->s[k] = pst_shard_slice(p->sh[k], (size_t)idx);
    }
    p->s[1]->ftrl.mixed = true; /* the reference never takes the block step */
    p->rng = 88172645463325252ull;
}

static void pair_fini(pair_t *p)
{
    pst_shard_destroy(&p->sh[0]);
    pst_shard_destroy(&p->sh[1]);
}

static uint64_t next(pair_t *p)
{
    p->rng ^= p->rng << 13, p->rng ^= p->rng >> 7, p->rng ^= p->rng << 17;
    return p->rng;
}

/* A batch's sorted unique keys (some beyond the direct map) and their rows in both slices. */
static size_t draw_rows(pair_t *p, uint32_t rows[2][MAX_KEYS])
{
    uint64_t keys[MAX_KEYS];
    size_t n = 0;
    for (uint64_t key = 0; key < 300 && n < MAX_KEYS; key++) {
        if (next(p) % 6 == 0)
            keys[n++] = key < 290 ? key : key << 40;
    }
    for (int k = 0; k < 2; k++)
        assert_int_equal(pst_slice_rows(p->s[k], keys, n, rows[k], NULL), PST_OK);
    assert_memory_equal(rows[0], rows[1], n * sizeof(uint32_t));
    return n;
}

/* Gradients in (-1, 1), some scaled into the L1 band, one in five zero. */
static void draw_grad(pair_t *p, float *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = next(p);
        float u = (float)(r >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
        g[i] = (r & 7) < 2 ? 0.0f : u * ((r >> 3 & 1) ? 1.0f : 0.05f);
    }
}

static void assert_same_slices(const pair_t *p)
{
    const pst_slice_t *a = p->s[0], *b = p->s[1];
    assert_int_equal(a->n_rows, b->n_rows);
    assert_memory_equal(a->rows, b->rows, a->n_rows * a->row_width * sizeof(float));
    assert_memory_equal(a->row_state, b->row_state, a->n_rows * a->state_width * sizeof(float));
    assert_memory_equal(a->row_steps, b->row_steps, a->n_rows * sizeof(uint64_t));
}

static void asp_steps(pair_t *p, uint32_t width, int steps, float lr)
{
    uint32_t rows[2][MAX_KEYS];
    float g[MAX_KEYS * 3];
    for (int t = 0; t < steps; t++) {
        size_t n = draw_rows(p, rows);
        draw_grad(p, g, n * width);
        for (int k = 0; k < 2; k++)
            assert_int_equal(pst_slice_sparse_step(p->s[k], rows[k], n, g, lr, NULL), PST_OK);
        assert_same_slices(p);
    }
}

static void block_steps_equal_row_steps(void **state)
{
    const uint32_t widths[] = {1, 3};
    for (int i = 0; i < 2; i++) {
        pair_t p;
        pair_init(&p, widths[i], i == 0 ? 0.0f : 0.1f);
        asp_steps(&p, widths[i], 40, 0.1f);
        /* the block step ran: it learned the alpha and never fell back */
        assert_false(p.s[0]->ftrl.mixed);
        assert_true(p.s[0]->ftrl.alpha == 0.1f);
        assert_true(p.s[0]->n_rows > 100);
        pair_fini(&p);
    }
}

/* BSP: two workers' gradients summed per row, then one step of the mean. */
static void block_apply_equals_row_apply(void **state)
{
    enum { WIDTH = 3 };
    pair_t p;
    pair_init(&p, WIDTH, 0.1f);
    uint32_t rows[2][MAX_KEYS];
    float g[MAX_KEYS * WIDTH];
    for (int t = 0; t < 30; t++) {
        for (int worker = 0; worker < 2; worker++) {
            size_t n = draw_rows(&p, rows);
            draw_grad(&p, g, n * WIDTH);
            for (int k = 0; k < 2; k++)
                assert_int_equal(pst_slice_sparse_acc_add(p.s[k], rows[k], n, g, NULL), PST_OK);
        }
        for (int k = 0; k < 2; k++) {
            assert_int_equal(pst_slice_sparse_apply(p.s[k], 0.5f, 0.2f, NULL), PST_OK);
            assert_int_equal(p.s[k]->n_touched, 0);
        }
        assert_same_slices(&p);
    }
    assert_false(p.s[0]->ftrl.mixed);
    /* every accumulator row is free for the next clock */
    for (size_t r = 0; r < p.s[0]->n_rows; r++)
        assert_int_equal(p.s[0]->is_touched[r], 0);
    pair_fini(&p);
}

static void changed_alpha_steps_row_by_row(void **state)
{
    pair_t p;
    pair_init(&p, 1, 0.0f);
    asp_steps(&p, 1, 10, 0.1f);
    assert_false(p.s[0]->ftrl.mixed);
    asp_steps(&p, 1, 10, 0.05f); /* a schedule: weights of the old alpha are not kept */
    assert_true(p.s[0]->ftrl.mixed);
    asp_steps(&p, 1, 5, 0.1f);
    assert_true(p.s[0]->ftrl.mixed);
    pair_fini(&p);
}

/* Rows restored from a checkpoint are checked before the next block step. */
static void restored_rows_are_checked(void **state)
{
    pair_t p;
    pair_init(&p, 1, 0.0f);
    asp_steps(&p, 1, 10, 0.1f);
    /* the row of key 0 restored as a checkpoint of the same run holds it: still kept */
    uint32_t row;
    assert_int_equal(pst_slice_rows(p.s[0], (uint64_t[]){0}, 1, &row, NULL), PST_OK);
    float v = p.s[0]->rows[row],
          st[2] = {p.s[0]->row_state[2 * row], p.s[0]->row_state[2 * row + 1]};
    for (int k = 0; k < 2; k++)
        assert_int_equal(pst_slice_restore_row(p.s[k], 0, &v, st, 2, 3, NULL), PST_OK);
    assert_true(p.s[0]->ftrl.alpha == 0.0f);
    asp_steps(&p, 1, 5, 0.1f);
    assert_false(p.s[0]->ftrl.mixed);
    /* a row whose weight is not that of its state (written under another alpha) */
    float odd = v + 0.25f, odd_state[2] = {0.5f, 2.0f};
    for (int k = 0; k < 2; k++)
        assert_int_equal(pst_slice_restore_row(p.s[k], 0, &odd, odd_state, 2, 3, NULL), PST_OK);
    asp_steps(&p, 1, 5, 0.1f);
    assert_true(p.s[0]->ftrl.mixed);
    pair_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(block_steps_equal_row_steps),
        cmocka_unit_test(block_apply_equals_row_apply),
        cmocka_unit_test(changed_alpha_steps_row_by_row),
        cmocka_unit_test(restored_rows_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
