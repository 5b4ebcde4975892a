/* Tests for common/keymap: inserts and finds, growth, colliding probes, many keys, prefetch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "common/err.h"
#include "common/keymap.h"
#include "common/rng.h"

static void empty_map_finds_nothing(void **state)
{
    pst_keymap_t m;
    pst_keymap_init(&m);
    assert_int_equal(pst_keymap_find(&m, 0), -1);
    assert_int_equal(pst_keymap_find(&m, 5), -1);
    assert_int_equal(pst_keymap_find(&m, UINT64_MAX), -1);
    assert_int_equal(pst_keymap_bytes(&m), 0);
    pst_keymap_fini(&m);
    pst_keymap_fini(&m); /* safe twice */
}

/* Small keys go to the direct array, large ones and those the array would stretch too far for
 * to the table; both find their rows. */
static void insert_then_find(void **state)
{
    const uint64_t keys[] = {0,
                             1,
                             1023,
                             1024,
                             PST_KEYMAP_DIRECT_MAX - 1,
                             PST_KEYMAP_DIRECT_MAX,
                             (uint64_t)1 << 40,
                             UINT64_MAX};
    enum { N = sizeof keys / sizeof keys[0] };
    pst_keymap_t m;
    pst_keymap_init(&m);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(pst_keymap_insert(&m, keys[i], i), PST_OK);
    assert_int_equal(m.n, N);
    assert_int_equal(m.direct_cap, PST_KEYMAP_DIRECT_MIN);
    assert_int_equal(m.n_hashed, 4); /* 8 refs per key allow no larger array */
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(pst_keymap_find(&m, keys[i]), i);
    assert_int_equal(pst_keymap_find(&m, 2), -1);
    assert_int_equal(pst_keymap_find(&m, ((uint64_t)1 << 40) + 1), -1);
    assert_int_equal(pst_keymap_insert(&m, keys[3], 99), PST_ESTATE);
    assert_int_equal(pst_keymap_insert(&m, 7, PST_KEYMAP_MAX_ROWS), PST_ERANGE);
    assert_true(pst_keymap_bytes(&m) > 0);
    pst_keymap_fini(&m);
}

/* A key the direct array did not cover moves into it when, with enough keys held, a new key
 * makes it grow; its row and tag intact. */
static void direct_array_grows_over_table_keys(void **state)
{
    enum { FAR = 100000, FARTHER = 110000, NEAR = 20000 };
    pst_keymap_t m;
    pst_keymap_init(&m);
    assert_int_equal(pst_keymap_insert(&m, FAR, 0), PST_OK);
    assert_int_equal(m.n_hashed, 1);
    pst_keymap_ref(&m, FAR)->tag = 42;
    for (uint32_t k = 0; k < NEAR; k++)
        assert_int_equal(pst_keymap_insert(&m, k, k + 1), PST_OK);
    assert_int_equal(m.n_hashed, 1);
    assert_int_equal(pst_keymap_insert(&m, FARTHER, NEAR + 1), PST_OK); /* grows the array */
    assert_true(m.direct_cap > FARTHER);
    assert_int_equal(m.n_hashed, 0);
    assert_int_equal(pst_keymap_find(&m, FAR), 0);
    assert_int_equal(pst_keymap_ref(&m, FAR)->tag, 42);
    assert_int_equal(pst_keymap_find(&m, FARTHER), NEAR + 1);
    for (uint32_t k = 0; k < NEAR; k++)
        assert_int_equal(pst_keymap_find(&m, k), k + 1);
    pst_keymap_fini(&m);
}

/* A ref handed out empty and not claimed leaves the key absent. */
static void unclaimed_ref_stays_empty(void **state)
{
    pst_keymap_t m;
    pst_keymap_init(&m);
    uint64_t big = (uint64_t)1 << 50;
    pst_keymap_ref_t *ref = pst_keymap_ref(&m, big);
    assert_non_null(ref);
    assert_int_equal(ref->row1, 0);
    assert_int_equal(pst_keymap_find(&m, big), -1);
    ref = pst_keymap_ref(&m, 12);
    assert_non_null(ref);
    assert_int_equal(ref->row1, 0);
    assert_int_equal(pst_keymap_find(&m, 12), -1);
    assert_int_equal(m.n, 0);
    pst_keymap_claim(&m, 12, ref, 4);
    assert_int_equal(pst_keymap_find(&m, 12), 4);
    pst_keymap_fini(&m);
}

/* Keys whose probes start in the same cell (equal high hash bits under the first table's mask)
 * are all found, before and after the table grows, and tags survive the growth. */
static void colliding_keys_probe_on(void **state)
{
    enum { WANT = 40 };
    pst_keymap_t m;
    pst_keymap_init(&m);
    assert_int_equal(pst_keymap_insert(&m, PST_KEYMAP_DIRECT_MAX, 0), PST_OK);
    size_t mask = m.table_cap - 1;
    size_t home = pst_keymap_slot(pst_wire_key_hash(PST_KEYMAP_DIRECT_MAX), mask);
    uint64_t keys[WANT];
    size_t n = 0;
    for (uint64_t k = PST_KEYMAP_DIRECT_MAX + 1; n < WANT; k++) {
        if (pst_keymap_slot(pst_wire_key_hash(k), mask) == home)
            keys[n++] = k;
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pst_keymap_insert(&m, keys[i], (uint32_t)i + 1), PST_OK);
        pst_keymap_ref(&m, keys[i])->tag = (uint32_t)i + 7;
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pst_keymap_find(&m, keys[i]), (int64_t)i + 1);
    size_t cap = m.table_cap;
    for (uint64_t k = 1; k <= 2 * cap; k++)
        assert_int_equal(pst_keymap_insert(&m, ((uint64_t)1 << 33) + k * 977, (uint32_t)(n + k)),
                         PST_OK);
    assert_true(m.table_cap > cap);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pst_keymap_find(&m, keys[i]), (int64_t)i + 1);
        assert_int_equal(pst_keymap_ref(&m, keys[i])->tag, i + 7);
    }
    pst_keymap_clear_tags(&m);
    assert_int_equal(pst_keymap_ref(&m, keys[3])->tag, 0);
    pst_keymap_fini(&m);
}

/* A million random keys, small and large, against a sorted reference; the table stays at most
 * half full and the direct array within its bound. */
static void many_keys(void **state)
{
    enum { N = 1000000 };
    uint64_t *keys = malloc(N * sizeof *keys);
    assert_non_null(keys);
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    pst_keymap_t m;
    pst_keymap_init(&m);
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        uint64_t k = i % 4 == 0 ? pst_rng_below(&rng, PST_KEYMAP_DIRECT_MAX) : pst_rng_next(&rng);
        pst_keymap_prefetch(&m, k);
        if (pst_keymap_find(&m, k) >= 0)
            continue;
        assert_int_equal(pst_keymap_insert(&m, k, (uint32_t)n), PST_OK);
        keys[n++] = k;
    }
    assert_int_equal(m.n, n);
    assert_true(2 * m.n_hashed <= m.table_cap);
    assert_true(m.direct_cap <= PST_KEYMAP_DIRECT_MAX);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pst_keymap_find(&m, keys[i]), (int64_t)i);
    for (size_t i = 0; i < 1000; i++) {
        uint64_t k = pst_rng_next(&rng) | ((uint64_t)1 << 63);
        int64_t found = pst_keymap_find(&m, k);
        assert_true(found == -1 || keys[found] == k);
    }
    pst_keymap_fini(&m);
    free(keys);
}

/* Prefetching reads nothing: any key on any map, empty or not, is fine. */
static void prefetch_is_safe(void **state)
{
    pst_keymap_t m;
    pst_keymap_init(&m);
    const uint64_t keys[] = {0, 5, PST_KEYMAP_DIRECT_MAX - 1, PST_KEYMAP_DIRECT_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        pst_keymap_prefetch(&m, keys[i]);
        pst_keymap_prefetch_hashed(&m, pst_wire_key_hash(keys[i]));
    }
    assert_int_equal(pst_keymap_insert(&m, 3, 0), PST_OK);
    assert_int_equal(pst_keymap_insert(&m, UINT64_MAX - 1, 1), PST_OK);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        pst_keymap_prefetch(&m, keys[i]);
        pst_keymap_prefetch_hashed(&m, pst_wire_key_hash(keys[i]));
    }
    pst_keymap_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_map_finds_nothing),
        cmocka_unit_test(insert_then_find),
        cmocka_unit_test(direct_array_grows_over_table_keys),
        cmocka_unit_test(unclaimed_ref_stays_empty),
        cmocka_unit_test(colliding_keys_probe_on),
        cmocka_unit_test(many_keys),
        cmocka_unit_test(prefetch_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
