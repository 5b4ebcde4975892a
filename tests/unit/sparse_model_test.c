/* Tests for worker/model/sparse_batch, sparse_fm and sparse_model: batch keys, LR and FM gradients
 * (by hand, by PyTorch, by finite differences), the local model's rows, and the distributed step
 * equal to the local one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/eval/metrics.h"
#include "common/rng.h"
#include "ps/shard.h"
#include "worker/model/sparse_model.h"

static void assert_near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

/* ---- batch keys ---- */

/* A window of three rows starting at offset 2 of the column arrays:
 * row 0 = {7, 2^50, 7}, row 1 = {3, 42}, row 2 = {2^50, 0, 3}. */
static const size_t WINDOW_ROW_PTR[4] = {2, 5, 7, 10};
static const uint64_t WINDOW_KEYS[10] = {999, 999, 7, 1ull << 50, 7, 3, 42, 1ull << 50, 0, 3};

static void check_window_keys(const pst_sparse_batch_t *b)
{
    uint64_t keys[8];
    uint32_t slot[8];
    size_t n_keys = 99;
    assert_int_equal(pst_sparse_batch_nnz(b), 8);
    assert_int_equal(pst_sparse_batch_keys(b, keys, &n_keys, slot, NULL), PST_OK);
    const uint64_t want_keys[5] = {0, 3, 7, 42, 1ull << 50};
    const uint32_t want_slot[8] = {2, 4, 2, 1, 3, 4, 0, 1};
    assert_int_equal(n_keys, 5);
    for (size_t i = 0; i < 5; i++)
        assert_true(keys[i] == want_keys[i]);
    for (size_t k = 0; k < 8; k++) {
        assert_int_equal(slot[k], want_slot[k]);
        assert_true(keys[slot[k]] == WINDOW_KEYS[2 + k]);
    }
}

static void batch_keys_are_sorted_unique_with_slots(void **state)
{
    pst_sparse_batch_t b = {.n_rows = 3, .row_ptr = WINDOW_ROW_PTR, .col64 = WINDOW_KEYS};
    check_window_keys(&b);

    /* the same with 32-bit feature ids (2^50 becomes id 50, still the largest) */
    uint32_t ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = WINDOW_KEYS[i] == 1ull << 50 ? 50u : (uint32_t)WINDOW_KEYS[i];
    pst_sparse_batch_t b32 = {.n_rows = 3, .row_ptr = WINDOW_ROW_PTR, .col32 = ids};
    uint64_t keys[8];
    uint32_t slot[8];
    size_t n_keys = 0;
    assert_int_equal(pst_sparse_batch_keys(&b32, keys, &n_keys, slot, NULL), PST_OK);
    assert_int_equal(n_keys, 5);
    assert_true(keys[4] == 50);
    for (size_t k = 0; k < 8; k++)
        assert_true(keys[slot[k]] == ids[2 + k]);

    pst_sparse_batch_t empty = {.n_rows = 0, .row_ptr = WINDOW_ROW_PTR, .col64 = WINDOW_KEYS};
    assert_int_equal(pst_sparse_batch_keys(&empty, keys, &n_keys, slot, NULL), PST_OK);
    assert_int_equal(n_keys, 0);
}

/* ---- batch keys against a plain reference on random batches ---- */

static int ref_key_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The batch keys by qsort, unique and bsearch per entry. */
static size_t ref_batch_keys(const uint64_t *col, size_t nnz, uint64_t *keys, uint32_t *slot)
{
    memcpy(keys, col, nnz * sizeof *keys);
    qsort(keys, nnz, sizeof *keys, ref_key_cmp);
    size_t n = 0;
    for (size_t k = 0; k < nnz; k++) {
        if (n == 0 || keys[k] != keys[n - 1])
            keys[n++] = keys[k];
    }
    for (size_t k = 0; k < nnz; k++) {
        const uint64_t *found = bsearch(&col[k], keys, n, sizeof *keys, ref_key_cmp);
        assert_non_null(found);
        slot[k] = (uint32_t)(found - keys);
    }
    return n;
}

/* A random key of a kind: 0 few small ids (many repeats), 1 ids below 2^20, 2 small ids and
 * multiples of 2^50, 3 any 64 bits with 0 and 2^64 - 1 frequent, 4 always 2^50 + 5. */
static uint64_t random_key(pst_rng_t *rng, int kind)
{
    switch (kind) {
    case 0:
        return pst_rng_below(rng, 40);
    case 1:
        return pst_rng_below(rng, 1u << 20);
    case 2:
        return pst_rng_below(rng, 2) ? pst_rng_below(rng, 8) << 50 : pst_rng_below(rng, 1000);
    case 3: {
        uint64_t r = pst_rng_below(rng, 10);
        return r == 0 ? 0 : r == 1 ? UINT64_MAX : pst_rng_next(rng);
    }
    default:
        return (1ull << 50) + 5;
    }
}

typedef struct random_batch {
    size_t n_rows, base;
    size_t *row_ptr; // (n_rows + 1), starting at base
    uint64_t *col;   // (base + nnz)
    uint32_t *col32; // (base + nnz) the keys cut to 32 bits
    float *y;        // (n_rows)
} random_batch_t;

/* Rows of 0..max_len keys (a fifth of them empty) after base unused entries. */
static void random_batch_fill(random_batch_t *r, pst_rng_t *rng, size_t n_rows, size_t max_len,
                              int kind)
{
    r->n_rows = n_rows;
    r->base = pst_rng_below(rng, 4);
    r->row_ptr = malloc((n_rows + 1) * sizeof *r->row_ptr);
    r->y = malloc((n_rows + 1) * sizeof *r->y);
    assert_non_null(r->row_ptr);
    r->row_ptr[0] = r->base;
    for (size_t i = 0; i < n_rows; i++) {
        size_t len = pst_rng_below(rng, 5) == 0 ? 0 : pst_rng_below(rng, max_len + 1);
        r->row_ptr[i + 1] = r->row_ptr[i] + len;
        r->y[i] = (float)pst_rng_below(rng, 2);
    }
    size_t total = r->row_ptr[n_rows];
    r->col = malloc((total + 1) * sizeof *r->col);
    r->col32 = malloc((total + 1) * sizeof *r->col32);
    assert_non_null(r->col);
    for (size_t at = 0; at < total; at++) {
        r->col[at] = at < r->base ? 12345 : random_key(rng, kind);
        r->col32[at] = (uint32_t)r->col[at];
    }
}

static void random_batch_free(random_batch_t *r)
{
    free(r->row_ptr);
    free(r->y);
    free(r->col);
    free(r->col32);
}

/* pst_sparse_batch_keys of b equals the reference on the keys col[base..). */
static void check_against_reference(const pst_sparse_batch_t *b, const uint64_t *col, size_t base)
{
    size_t nnz = pst_sparse_batch_nnz(b), cap = nnz > 0 ? nnz : 1;
    uint64_t *keys = malloc(cap * sizeof *keys), *want_keys = malloc(cap * sizeof *want_keys);
    uint32_t *slot = malloc(cap * sizeof *slot), *want_slot = malloc(cap * sizeof *want_slot);
    assert_true(keys && want_keys && slot && want_slot);
    size_t n_keys = 99, want = ref_batch_keys(col + base, nnz, want_keys, want_slot);
    assert_int_equal(pst_sparse_batch_keys(b, keys, &n_keys, slot, NULL), PST_OK);
    assert_int_equal(n_keys, want);
    assert_memory_equal(keys, want_keys, want * sizeof *keys);
    assert_memory_equal(slot, want_slot, nnz * sizeof *slot);
    free(keys);
    free(want_keys);
    free(slot);
    free(want_slot);
}

static void batch_keys_equal_a_plain_reference(void **state)
{
    (void)state;
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (int trial = 0; trial < 300; trial++) {
        int kind = trial % 5;
        /* mostly small batches; a few of ~48k entries need 16 index bits (they pack with ids below
         * 2^20 into one word, but not with 2^50 keys) */
        bool large = trial % 50 == 6 || trial % 50 == 7;
        size_t n_rows = large ? 3000 : pst_rng_below(&rng, 60);
        size_t max_len = trial % 13 == 0 ? 1 : 40;
        random_batch_t r;
        random_batch_fill(&r, &rng, n_rows, max_len, kind);
        pst_sparse_batch_t b64 = {.n_rows = n_rows, .row_ptr = r.row_ptr, .col64 = r.col};
        check_against_reference(&b64, r.col, r.base);
        pst_sparse_batch_t b32 = {.n_rows = n_rows, .row_ptr = r.row_ptr, .col32 = r.col32};
        uint64_t *wide = malloc((r.row_ptr[n_rows] + 1) * sizeof *wide);
        assert_non_null(wide);
        for (size_t at = 0; at < r.row_ptr[n_rows]; at++)
            wide[at] = r.col32[at];
        check_against_reference(&b32, wide, r.base);
        free(wide);
        random_batch_free(&r);
    }
}

/* A model's steps reuse their key workspace: the rows a step creates are the batch's new keys in
 * order of first occurrence, each once. */
static void model_steps_create_rows_of_new_keys(void **state)
{
    (void)state;
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_LR);
    pst_sparse_model_t *m = pst_sparse_model_new(&opts, NULL);
    assert_non_null(m);
    pst_rng_t rng;
    pst_rng_init(&rng, 12);
    for (int trial = 0; trial < 60; trial++) {
        size_t n_rows = trial % 20 == 3 ? 1500 : pst_rng_below(&rng, 50);
        random_batch_t r;
        random_batch_fill(&r, &rng, n_rows, 30, trial % 5);
        size_t nnz = r.row_ptr[n_rows] - r.base, cap = nnz > 0 ? nnz : 1;
        uint64_t *want_keys = malloc(cap * sizeof *want_keys);
        assert_non_null(want_keys);
        /* the batch's keys the model has not seen, in order of first occurrence in the batch */
        size_t n_new = 0;
        for (size_t k = 0; k < nnz; k++) {
            uint64_t key = r.col[r.base + k];
            bool seen = pst_sparse_model_row(m, key) != NULL;
            for (size_t i = 0; i < n_new && !seen; i++)
                seen = want_keys[i] == key;
            if (!seen)
                want_keys[n_new++] = key;
        }
        size_t before = pst_sparse_model_n_keys(m);
        pst_sparse_batch_t b = {.n_rows = n_rows, .row_ptr = r.row_ptr, .col64 = r.col, .y = r.y};
        assert_int_equal(pst_sparse_model_update(m, &b, NULL, NULL), PST_OK);
        assert_int_equal(pst_sparse_model_n_keys(m), before + n_new);
        for (size_t i = 0; i < n_new; i++) {
            uint64_t key = 0;
            assert_non_null(pst_sparse_model_entry(m, before + i, &key));
            assert_true(key == want_keys[i]);
        }
        free(want_keys);
        random_batch_free(&r);
    }
    pst_sparse_model_destroy(&m);
}

static void batch_keys_reject_bad_batches(void **state)
{
    uint64_t keys[8];
    uint32_t slot[8];
    size_t n_keys = 0;
    pst_err_t err = {0};
    uint32_t ids[10] = {0};
    pst_sparse_batch_t none = {.n_rows = 3, .row_ptr = WINDOW_ROW_PTR};
    assert_int_equal(pst_sparse_batch_keys(&none, keys, &n_keys, slot, &err), PST_EINVAL);
    pst_sparse_batch_t both = none;
    both.col64 = WINDOW_KEYS;
    both.col32 = ids;
    assert_int_equal(pst_sparse_batch_keys(&both, keys, &n_keys, slot, &err), PST_EINVAL);
    const size_t backwards[3] = {0, 4, 2};
    pst_sparse_batch_t bad = {.n_rows = 2, .row_ptr = backwards, .col64 = WINDOW_KEYS};
    assert_int_equal(pst_sparse_batch_keys(&bad, keys, &n_keys, slot, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "row_ptr"));
}

/* ---- gradients ---- */

/* FM, k = 2: row 0 = {a: 1, b: 2}, label 1; row 1 = {a: 3}, label 0; key a = 5, b = 9.
 * rows a = [0.1, 0.2, -0.3], b = [-0.4, 0.5, 0.6], bias 0.05.
 *   margin 0 = 0.05 + 0.1 * 1 - 0.4 * 2 + (0.2 * 0.5 - 0.3 * 0.6) * 1 * 2 = -0.81
 *   margin 1 = 0.05 + 0.1 * 3 = 0.35 (one feature: no pairs)
 *   p = sigmoid: 0.307890496, 0.586617579; loss = (-log 0.307890496 - log 0.413382421) / 2
 *     = 1.030696624
 * Gradients from torch.autograd (float64, binary_cross_entropy_with_logits, mean):
 *   a [0.533871616, -0.346054752, -0.415265703], b [-0.692109504, -0.138421901, 0.207632851],
 *   bias -0.052745963. */
static void fm_gradient_by_hand(void **state)
{
    const size_t row_ptr[3] = {0, 2, 3};
    const uint64_t col[3] = {5, 9, 5};
    const float val[3] = {1.0f, 2.0f, 3.0f}, y[2] = {1.0f, 0.0f};
    pst_sparse_batch_t b = {.n_rows = 2, .row_ptr = row_ptr, .col64 = col, .val = val, .y = y};
    uint64_t keys[3];
    uint32_t slot[3];
    size_t n_keys = 0;
    assert_int_equal(pst_sparse_batch_keys(&b, keys, &n_keys, slot, NULL), PST_OK);
    assert_int_equal(n_keys, 2);
    const float rows[6] = {0.1f, 0.2f, -0.3f, -0.4f, 0.5f, 0.6f};
    pst_sparse_weights_t w = {.rows = rows, .n_keys = 2, .bias = 0.05f};
    float grad_rows[6];
    pst_sparse_grad_t g = {.rows = grad_rows};
    pst_sparse_spec_t fm = {.kind = PST_SPARSE_FM, .n_factors = 2};
    assert_int_equal(pst_sparse_row_width(&fm), 3);
    assert_int_equal(pst_sparse_step(&fm, &b, slot, &w, &g, NULL), PST_OK);

    const double want[6] = {0.533871616,  -0.346054752, -0.415265703,
                            -0.692109504, -0.138421901, 0.207632851};
    for (int i = 0; i < 6; i++)
        assert_near(grad_rows[i], want[i], 1e-6);
    assert_near(g.bias, -0.052745963, 1e-7);
    assert_near(g.loss, 1.030696624, 1e-6);

    float prob[2];
    assert_int_equal(pst_sparse_predict(&fm, &b, slot, &w, prob, NULL), PST_OK);
    assert_near(prob[0], 0.307890496, 1e-6);
    assert_near(prob[1], 0.586617579, 1e-6);
}

/* LR on the same batch, rows a = [0.1], b = [-0.4]: margins -0.65 and 0.35;
 * p = 0.342989537, 0.586617579; with d_i = (p_i - y_i) / 2 = -0.328505231, 0.293308789:
 *   g_a = d_0 * 1 + d_1 * 3 = 0.551421137; g_b = d_0 * 2 = -0.657010463; bias = -0.035196442
 *   loss = (-log 0.342989537 - log 0.413382421) / 2 = 0.976718746 */
static void lr_gradient_by_hand(void **state)
{
    const size_t row_ptr[3] = {0, 2, 3};
    const uint32_t col[3] = {5, 9, 5};
    const float val[3] = {1.0f, 2.0f, 3.0f}, y[2] = {1.0f, 0.0f};
    pst_sparse_batch_t b = {.n_rows = 2, .row_ptr = row_ptr, .col32 = col, .val = val, .y = y};
    const uint32_t slot[3] = {0, 1, 0};
    const float rows[2] = {0.1f, -0.4f};
    pst_sparse_weights_t w = {.rows = rows, .n_keys = 2, .bias = 0.05f};
    float grad_rows[2];
    pst_sparse_grad_t g = {.rows = grad_rows};
    assert_int_equal(pst_sparse_lr_step(&b, slot, &w, &g, NULL), PST_OK);
    assert_near(grad_rows[0], 0.551421137, 1e-6);
    assert_near(grad_rows[1], -0.657010463, 1e-6);
    assert_near(g.bias, -0.035196442, 1e-7);
    assert_near(g.loss, 0.976718746, 1e-6);
}

/* A tiny batch with a repeated key inside a row, non-unit values and a soft label. */
enum { FD_ROWS = 4, FD_NNZ = 11 };
static const size_t FD_ROW_PTR[FD_ROWS + 1] = {0, 3, 6, 8, 11};
static const uint64_t FD_COL[FD_NNZ] = {10, 20, 10, 30, 40, 20, 50, 10, 40, 30, 60};
static const float FD_VAL[FD_NNZ] = {1.0f, 0.5f, -1.5f, 2.0f,  1.0f, -0.7f,
                                     1.2f, 0.3f, 1.0f,  -0.4f, 0.8f};
static const float FD_Y[FD_ROWS] = {1.0f, 0.0f, 0.25f, 1.0f};

static double loss_at(const pst_sparse_spec_t *spec, const pst_sparse_batch_t *b,
                      const uint32_t *slot, const float *rows, size_t n_keys, float bias,
                      float *scratch)
{
    pst_sparse_weights_t w = {.rows = rows, .n_keys = n_keys, .bias = bias};
    pst_sparse_grad_t g = {.rows = scratch};
    assert_int_equal(pst_sparse_step(spec, b, slot, &w, &g, NULL), PST_OK);
    return g.loss;
}

/* Central differences of the loss against every gradient entry and the bias gradient. */
static void check_finite_differences(const pst_sparse_spec_t *spec)
{
    pst_sparse_batch_t b = {
        .n_rows = FD_ROWS, .row_ptr = FD_ROW_PTR, .col64 = FD_COL, .val = FD_VAL, .y = FD_Y};
    uint64_t keys[FD_NNZ];
    uint32_t slot[FD_NNZ];
    size_t n_keys = 0;
    assert_int_equal(pst_sparse_batch_keys(&b, keys, &n_keys, slot, NULL), PST_OK);
    assert_int_equal(n_keys, 6);
    size_t n = n_keys * pst_sparse_row_width(spec);
    float *rows = malloc(n * sizeof(float)), *grad = malloc(n * sizeof(float));
    float *scratch = malloc(n * sizeof(float));
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (size_t i = 0; i < n; i++)
        rows[i] = (float)(pst_rng_uniform(&rng) - 0.5);
    float bias = 0.2f;
    pst_sparse_weights_t w = {.rows = rows, .n_keys = n_keys, .bias = bias};
    pst_sparse_grad_t g = {.rows = grad};
    assert_int_equal(pst_sparse_step(spec, &b, slot, &w, &g, NULL), PST_OK);

    const float h = 1e-2f;
    for (size_t i = 0; i <= n; i++) {
        float *p = i < n ? &rows[i] : &bias, orig = *p;
        *p = orig + h;
        float up = *p;
        double lu = loss_at(spec, &b, slot, rows, n_keys, bias, scratch);
        *p = orig - h;
        float down = *p;
        double ld = loss_at(spec, &b, slot, rows, n_keys, bias, scratch);
        *p = orig;
        double fd = (lu - ld) / ((double)up - down);
        double analytic = i < n ? grad[i] : g.bias;
        if (fabs(fd - analytic) > 2e-4 + 1e-3 * fabs(fd))
            fail_msg("parameter %zu: finite difference %.7g, gradient %.7g", i, fd, analytic);
    }
    free(rows);
    free(grad);
    free(scratch);
}

static void lr_gradient_matches_finite_differences(void **state)
{
    pst_sparse_spec_t lr = {.kind = PST_SPARSE_LR};
    check_finite_differences(&lr);
}

static void fm_gradient_matches_finite_differences(void **state)
{
    pst_sparse_spec_t fm = {.kind = PST_SPARSE_FM, .n_factors = 3};
    check_finite_differences(&fm);
}

static void steps_reject_bad_input(void **state)
{
    pst_err_t err = {0};
    const size_t row_ptr[2] = {0, 2};
    const uint64_t col[2] = {1, 2};
    float val[2] = {1.0f, 1.0f}, y[1] = {2.0f};
    pst_sparse_batch_t b = {.n_rows = 1, .row_ptr = row_ptr, .col64 = col, .val = val, .y = y};
    uint32_t slot[2] = {0, 1};
    float rows[2] = {0.1f, 0.2f}, grad[2];
    pst_sparse_weights_t w = {.rows = rows, .n_keys = 2};
    pst_sparse_grad_t g = {.rows = grad};
    pst_sparse_spec_t lr = {.kind = PST_SPARSE_LR};
    assert_int_equal(pst_sparse_step(&lr, &b, slot, &w, &g, &err), PST_EINVAL); /* label 2 */
    y[0] = 1.0f;
    slot[1] = 2;
    assert_int_equal(pst_sparse_step(&lr, &b, slot, &w, &g, &err), PST_ERANGE);
    slot[1] = 1;
    val[0] = NAN;
    assert_int_equal(pst_sparse_step(&lr, &b, slot, &w, &g, &err), PST_ENUMERIC);
    val[0] = 1.0f;
    b.y = NULL;
    assert_int_equal(pst_sparse_step(&lr, &b, slot, &w, &g, &err), PST_EINVAL);
    float prob;
    assert_int_equal(pst_sparse_predict(&lr, &b, slot, &w, &prob, &err), PST_OK);
    assert_near(prob, 1.0 / (1.0 + exp(-0.3)), 1e-7);
    pst_sparse_spec_t fm0 = {.kind = PST_SPARSE_FM, .n_factors = 0};
    assert_int_equal(pst_sparse_spec_check(&fm0, &err), PST_EINVAL);
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_FM);
    opts.ftrl.alpha = 0.0f;
    assert_null(pst_sparse_model_new(&opts, &err));
}

/* ---- the distributed step ---- */

/* A random batch of n_rows rows of nnz keys from a pool of 12 keys, some beyond 32 bits. */
static pst_sparse_batch_t random_batch(pst_rng_t *rng, size_t n_rows, size_t nnz, size_t *row_ptr,
                                       uint64_t *col, float *val, float *y)
{
    for (size_t i = 0; i <= n_rows; i++)
        row_ptr[i] = i * nnz;
    for (size_t k = 0; k < n_rows * nnz; k++) {
        uint64_t id = pst_rng_below(rng, 12);
        col[k] = id % 3 == 0 ? id << 40 : id;
        val[k] = (float)(0.5 + pst_rng_uniform(rng));
    }
    for (size_t i = 0; i < n_rows; i++)
        y[i] = pst_rng_uniform(rng) < 0.4 ? 1.0f : 0.0f;
    return (pst_sparse_batch_t){
        .n_rows = n_rows, .row_ptr = row_ptr, .col64 = col, .val = val, .y = y};
}

/* What a worker and a server do for one BSP clock with one worker, in process: collect the
 * batch's keys, pull their rows (created on first touch with the server's init), compute the
 * gradient, push it; the server steps each row with PST_OPT_FTRL and the bias, a dense tensor of
 * one float, likewise. The rows and bias end where the local model's do, batch after batch. */
static void server_step_equals_local_step(void **state)
{
    enum { K = 2, WIDTH = 1 + K, ROWS = 8, NNZ = 4 };
    const float alpha = 0.2f;
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_FM);
    opts.spec.n_factors = K;
    opts.ftrl = (pst_ftrl_cfg_t){.alpha = alpha, .beta = 0.05f, .l1 = 0.01f, .l2 = 0.1f};
    opts.init_scale = 0.1f;
    opts.init_seed = 9;
    pst_sparse_model_t *model = pst_sparse_model_new(&opts, NULL);
    assert_non_null(model);

    pst_optim_cfg_t o;
    pst_optim_cfg_defaults(&o, PST_OPT_FTRL);
    o.ftrl_beta = 0.05f;
    o.ftrl_l1 = 0.01f;
    o.ftrl_l2 = 0.1f;
    pst_shard_t *sh = pst_shard_new(0, 1, &o, NULL);
    assert_non_null(sh);
    int sparse_idx = pst_shard_add_sparse(sh, 1, 1, WIDTH, opts.init_scale, opts.init_seed, NULL);
    int bias_idx = pst_shard_add_dense(sh, 1, 2, 1, NULL, NULL);
    assert_true(sparse_idx >= 0 && bias_idx >= 0);
    pst_slice_t *rows_slice = pst_shard_slice(sh, (size_t)sparse_idx);
    pst_slice_t *bias_slice = pst_shard_slice(sh, (size_t)bias_idx);

    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    size_t row_ptr[ROWS + 1], n_keys = 0;
    uint64_t col[ROWS * NNZ], keys[ROWS * NNZ];
    uint32_t slot[ROWS * NNZ], rows[ROWS * NNZ];
    float val[ROWS * NNZ], y[ROWS], pulled[ROWS * NNZ * WIDTH], grad[ROWS * NNZ * WIDTH];
    pst_sparse_spec_t spec = opts.spec;
    for (int step = 0; step < 4; step++) {
        pst_sparse_batch_t b = random_batch(&rng, ROWS, NNZ, row_ptr, col, val, y);
        double local_loss = 0.0;
        assert_int_equal(pst_sparse_model_update(model, &b, &local_loss, NULL), PST_OK);

        assert_int_equal(pst_sparse_batch_keys(&b, keys, &n_keys, slot, NULL), PST_OK);
        assert_int_equal(pst_slice_rows(rows_slice, keys, n_keys, rows, NULL), PST_OK);
        pst_slice_gather(rows_slice, rows, n_keys, pulled);
        pst_sparse_weights_t w = {.rows = pulled, .n_keys = n_keys, .bias = bias_slice->values[0]};
        pst_sparse_grad_t g = {.rows = grad};
        assert_int_equal(pst_sparse_step(&spec, &b, slot, &w, &g, NULL), PST_OK);
        assert_near(g.loss, local_loss, 1e-9);
        assert_int_equal(pst_slice_sparse_step(rows_slice, rows, n_keys, grad, alpha, NULL),
                         PST_OK);
        assert_int_equal(pst_slice_dense_step(bias_slice, &g.bias, alpha, NULL), PST_OK);
    }
    assert_int_equal(pst_sparse_model_n_keys(model), rows_slice->n_rows);
    for (size_t i = 0; i < pst_sparse_model_n_keys(model); i++) {
        uint64_t key = 0;
        const float *local = pst_sparse_model_entry(model, i, &key);
        uint32_t row;
        assert_int_equal(pst_slice_rows(rows_slice, &key, 1, &row, NULL), PST_OK);
        assert_ptr_equal(pst_sparse_model_row(model, key), local);
        for (int j = 0; j < WIDTH; j++)
            assert_near(local[j], rows_slice->rows[(size_t)row * WIDTH + j], 1e-6);
    }
    assert_near(pst_sparse_model_bias(model), bias_slice->values[0], 1e-7);
    assert_true(pst_sparse_model_bias(model) != 0.0f);
    pst_shard_destroy(&sh);
    pst_sparse_model_destroy(&model);
}

/* Prediction neither creates rows nor lets an unseen key change a score (it counts as zeros). */
static void predict_leaves_unseen_keys_out(void **state)
{
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_FM);
    opts.spec.n_factors = 3;
    pst_sparse_model_t *model = pst_sparse_model_new(&opts, NULL);
    assert_non_null(model);
    const size_t row_ptr[2] = {0, 2}, row_ptr3[2] = {0, 3};
    const uint64_t col[3] = {4, 8, 77};
    const float y[1] = {1.0f};
    pst_sparse_batch_t b = {.n_rows = 1, .row_ptr = row_ptr, .col64 = col, .y = y};
    for (int i = 0; i < 3; i++)
        assert_int_equal(pst_sparse_model_update(model, &b, NULL, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_n_keys(model), 2);
    assert_null(pst_sparse_model_row(model, 77));
    assert_null(pst_sparse_model_entry(model, 2, NULL));

    float seen, with_unseen;
    assert_int_equal(pst_sparse_model_predict(model, &b, &seen, NULL), PST_OK);
    pst_sparse_batch_t b3 = {.n_rows = 1, .row_ptr = row_ptr3, .col64 = col};
    assert_int_equal(pst_sparse_model_predict(model, &b3, &with_unseen, NULL), PST_OK);
    assert_true(seen == with_unseen);
    assert_true(seen > 0.5f); /* three steps towards label 1 */
    assert_int_equal(pst_sparse_model_n_keys(model), 2);
    pst_sparse_model_destroy(&model);
}

/* A row put from outside (weights trained on servers) is created with zero optimizer state or
 * overwritten: the next FTRL step starts from exactly those weights. */
static void put_creates_or_overwrites_and_training_continues_from_it(void **state)
{
    enum { K = 2, WIDTH = 1 + K };
    pst_sparse_train_opts_t opts;
    pst_sparse_train_opts_defaults(&opts, PST_SPARSE_FM);
    opts.spec.n_factors = K;
    pst_sparse_model_t *model = pst_sparse_model_new(&opts, NULL);
    assert_non_null(model);
    const uint64_t far = (uint64_t)1 << 40;
    const float first[WIDTH] = {0.5f, -0.25f, 0.125f}, second[WIDTH] = {-0.75f, 0.5f, 0.25f};
    assert_int_equal(pst_sparse_model_put(model, (uint64_t[]){5}, 1, first, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_put(model, &far, 1, first, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_put(model, (uint64_t[]){5}, 1, second, NULL), PST_OK);
    assert_int_equal(pst_sparse_model_n_keys(model), 2);
    assert_memory_equal(pst_sparse_model_row(model, 5), second, sizeof second);
    assert_memory_equal(pst_sparse_model_row(model, far), first, sizeof first);

    const size_t row_ptr[2] = {0, 2};
    const uint64_t col[2] = {5, far};
    const float y[1] = {1.0f};
    pst_sparse_batch_t b = {.n_rows = 1, .row_ptr = row_ptr, .col64 = col, .y = y};
    /* the step's gradient at the set weights, and FTRL from them with zero state */
    uint32_t slot[2] = {0, 1};
    float rows[2 * WIDTH], grad[2 * WIDTH], z[2 * WIDTH] = {0}, n[2 * WIDTH] = {0};
    memcpy(rows, second, sizeof second);
    memcpy(rows + WIDTH, first, sizeof first);
    pst_sparse_weights_t w = {.rows = rows, .n_keys = 2, .bias = 0.0f};
    pst_sparse_grad_t g = {.rows = grad};
    assert_int_equal(pst_sparse_step(&opts.spec, &b, slot, &w, &g, NULL), PST_OK);
    pst_ftrl_update(&opts.ftrl, rows, z, n, grad, 2 * WIDTH);
    assert_int_equal(pst_sparse_model_update(model, &b, NULL, NULL), PST_OK);
    assert_memory_equal(pst_sparse_model_row(model, 5), rows, WIDTH * sizeof(float));
    assert_memory_equal(pst_sparse_model_row(model, far), rows + WIDTH, WIDTH * sizeof(float));
    assert_true(memcmp(rows, second, sizeof second) != 0); /* the step moved them */
    pst_sparse_model_destroy(&model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_keys_are_sorted_unique_with_slots),
        cmocka_unit_test(batch_keys_equal_a_plain_reference),
        cmocka_unit_test(model_steps_create_rows_of_new_keys),
        cmocka_unit_test(batch_keys_reject_bad_batches),
        cmocka_unit_test(fm_gradient_by_hand),
        cmocka_unit_test(lr_gradient_by_hand),
        cmocka_unit_test(lr_gradient_matches_finite_differences),
        cmocka_unit_test(fm_gradient_matches_finite_differences),
        cmocka_unit_test(steps_reject_bad_input),
        cmocka_unit_test(server_step_equals_local_step),
        cmocka_unit_test(predict_leaves_unseen_keys_out),
        cmocka_unit_test(put_creates_or_overwrites_and_training_continues_from_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
