/* Tests for common/keycodec: hand-computed layouts, round trips, LZ4 on dense runs, signatures,
 * remembered lists, and hostile encodings refused without crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/net/keycodec.h"
#include "common/rng.h"

typedef struct fixture {
    pst_keycodec_t *kc;
    uint8_t *buf;
    uint64_t *out;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->kc = pst_keycodec_new(NULL);
    *state = f;
    return f->kc == NULL;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pst_keycodec_destroy(&f->kc);
    pst_keycodec_destroy(&f->kc);
    free(f->buf);
    free(f->out);
    free(f);
    return 0;
}

/* Encodes keys, decodes them back, and checks keys, signatures and the returned length. */
static size_t round_trip(fixture_t *f, const uint64_t *keys, size_t n)
{
    size_t cap = pst_keycodec_bound(n), len = 0;
    f->buf = realloc(f->buf, cap);
    f->out = realloc(f->out, (n > 0 ? n : 1) * sizeof(uint64_t));
    uint64_t sig_enc = 1, sig_dec = 2;
    pst_err_t err = {0};
    assert_int_equal(pst_keycodec_encode(f->kc, keys, n, f->buf, cap, &len, &sig_enc, &err),
                     PST_OK);
    assert_true(len >= 1 && len <= cap);
    assert_int_equal(pst_keycodec_decode(f->kc, f->buf, len, f->out, n, &sig_dec, &err), PST_OK);
    if (n > 0)
        assert_memory_equal(f->out, keys, n * sizeof(uint64_t));
    assert_true(sig_enc == sig_dec);
    assert_true(sig_enc == pst_keycodec_signature(keys, n));
    return len;
}

static void hand_computed_layout(void **state)
{
    fixture_t *f = *state;
    const uint64_t keys[] = {1, 300, 301};
    /* deltas 1, 299, 1 -> 01, AB 02, 01 */
    const uint8_t want[] = {PST_KEYCODEC_VARINT, 0x01, 0xab, 0x02, 0x01};
    assert_int_equal(round_trip(f, keys, 3), sizeof want);
    assert_memory_equal(f->buf, want, sizeof want);
}

static void empty_and_single(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(round_trip(f, NULL, 0), 1);
    const uint64_t zero = 0, top = UINT64_MAX;
    assert_int_equal(round_trip(f, &zero, 1), 2);
    assert_int_equal(round_trip(f, &top, 1), 1 + 10); /* 64 bits need ten 7-bit groups */
    assert_int_equal(f->buf[10], 0x01);
}

static void huge_gaps(void **state)
{
    fixture_t *f = *state;
    const uint64_t keys[] = {0, 1ull << 63, (1ull << 63) + 1, UINT64_MAX};
    /* 1 + 1 (0) + 10 (2^63) + 1 (1) + 9 (2^63 - 2) */
    assert_int_equal(round_trip(f, keys, 4), 22);
}

static void dense_run_takes_lz4(void **state)
{
    fixture_t *f = *state;
    size_t n = 100000;
    uint64_t *keys = malloc(n * sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = 1000000 + i; /* deltas all 1 after the first: LZ4 squeezes the run */
    size_t len = round_trip(f, keys, n);
    assert_int_equal(f->buf[0], PST_KEYCODEC_LZ4);
    assert_true(len < n / 100);
    free(keys);
}

static void random_keys_round_trip(void **state)
{
    fixture_t *f = *state;
    pst_rng_t rng;
    pst_rng_init(&rng, 42);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = (size_t)pst_rng_below(&rng, 3000);
        uint64_t *keys = malloc((n + 1) * sizeof *keys);
        uint64_t span = trial % 3 == 0 ? 16 : trial % 3 == 1 ? 1u << 20 : UINT64_MAX / (n + 1);
        uint64_t k = pst_rng_below(&rng, span);
        for (size_t i = 0; i < n; i++) {
            keys[i] = k;
            k += 1 + pst_rng_below(&rng, span);
        }
        size_t len = round_trip(f, keys, n);
        assert_true(len <= 1 + n * 10);
        if (trial % 3 == 0 && n > 200) /* small gaps: about one byte a key, well under 8 */
            assert_true(len < n * 2);
        free(keys);
    }
}

static void signature_tells_lists_apart(void **state)
{
    (void)state;
    const uint64_t a[] = {5, 9, 12}, b[] = {5, 9, 13}, c[] = {5, 9};
    uint64_t sa = pst_keycodec_signature(a, 3);
    assert_true(sa != pst_keycodec_signature(b, 3));
    assert_true(sa != pst_keycodec_signature(c, 2));
    assert_true(pst_keycodec_signature(NULL, 0) != pst_keycodec_signature(a, 1));
    assert_true(sa == pst_keycodec_signature(a, 3));
}

static void unsorted_input_is_refused(void **state)
{
    fixture_t *f = *state;
    const uint64_t keys[] = {3, 3, 4};
    uint8_t buf[64];
    size_t len = 0;
    pst_err_t err = {0};
    assert_int_equal(pst_keycodec_encode(f->kc, keys, 3, buf, sizeof buf, &len, NULL, &err),
                     PST_EINVAL);
    assert_int_equal(pst_keycodec_encode(f->kc, keys, 3, buf, 4, &len, NULL, &err), PST_EINVAL);
}

static int decode_bytes(fixture_t *f, const uint8_t *in, size_t len, size_t n)
{
    uint64_t keys[16];
    pst_err_t err = {0};
    assert_true(n <= 16);
    int rc = pst_keycodec_decode(f->kc, in, len, keys, n, NULL, &err);
    if (rc != PST_OK)
        assert_true(err.msg[0] != '\0');
    return rc;
}

static void hostile_encodings_are_refused(void **state)
{
    fixture_t *f = *state;
    const uint8_t ok[] = {0, 0x01, 0xab, 0x02, 0x01};
    assert_int_equal(decode_bytes(f, ok, sizeof ok, 3), PST_OK);
    assert_int_equal(decode_bytes(f, ok, 0, 0), PST_EPROTO);         /* nothing */
    assert_int_equal(decode_bytes(f, ok, sizeof ok, 2), PST_EPROTO); /* bytes left over */
    assert_int_equal(decode_bytes(f, ok, sizeof ok, 4), PST_EPROTO); /* fewer keys than n */
    assert_int_equal(decode_bytes(f, ok, 3, 3), PST_EPROTO);         /* truncated varint */
    const uint8_t bad_tag[] = {7, 1};
    assert_int_equal(decode_bytes(f, bad_tag, 2, 1), PST_EPROTO);
    const uint8_t repeat[] = {0, 5, 0};
    assert_int_equal(decode_bytes(f, repeat, 3, 2), PST_EPROTO); /* delta 0: not increasing */
    const uint8_t overlong[] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(decode_bytes(f, overlong, sizeof overlong, 1), PST_EPROTO);
    const uint8_t eleven[] = {0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0};
    assert_int_equal(decode_bytes(f, eleven, sizeof eleven, 1), PST_EPROTO);
    const uint8_t not_minimal[] = {0, 0x81, 0x00};
    assert_int_equal(decode_bytes(f, not_minimal, 3, 1), PST_EPROTO);
    /* 2^64 - 1, then + 1 overflows */
    const uint8_t overflow[] = {0,    0xff, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0x01, 0x01};
    assert_int_equal(decode_bytes(f, overflow, sizeof overflow, 1), PST_EPROTO);
    assert_int_equal(decode_bytes(f, overflow, sizeof overflow - 1, 1), PST_OK);
    assert_int_equal(decode_bytes(f, overflow, sizeof overflow, 2), PST_EPROTO);
    const uint8_t lz4_short[] = {1, 0x03, 0x00};
    assert_int_equal(decode_bytes(f, lz4_short, 3, 1), PST_EPROTO); /* bad block */
    const uint8_t lz4_len_lies[] = {1, 0x7f, 0x10, 1, 2};
    assert_int_equal(decode_bytes(f, lz4_len_lies, sizeof lz4_len_lies, 2), PST_EPROTO);
}

/* A count a few bytes cannot hold is refused before anything is allocated for it. */
static void declared_counts_are_checked_against_the_bytes(void **state)
{
    fixture_t *f = *state;
    const uint8_t varint[] = {0, 0x01, 0xab, 0x02, 0x01};
    const uint8_t lz4[] = {1, 0x7f, 0x10, 1, 2};
    assert_int_equal(pst_keycodec_max_keys(varint, sizeof varint), 4);
    assert_int_equal(pst_keycodec_max_keys(lz4, sizeof lz4), 4 * PST_KEYCODEC_LZ4_MAX_RATIO);
    assert_int_equal(pst_keycodec_max_keys(varint, 0), 0);
    uint64_t keys[4];
    pst_err_t err = {0};
    assert_int_equal(
        pst_keycodec_decode(f->kc, varint, sizeof varint, keys, (size_t)1 << 27, NULL, &err),
        PST_EPROTO);
    assert_non_null(strstr(err.msg, "134217728 keys cannot fit in 5 bytes"));
    assert_int_equal(pst_keycodec_decode(f->kc, lz4, sizeof lz4, keys, 4 * 256 + 1, NULL, &err),
                     PST_EPROTO);
    assert_non_null(strstr(err.msg, "cannot fit"));
}

static void truncations_and_random_bytes_never_crash(void **state)
{
    fixture_t *f = *state;
    size_t n = 5000;
    uint64_t *keys = malloc(n * sizeof *keys), *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        keys[i] = 7 * i + (i % 3); /* regular enough for LZ4 */
    size_t cap = pst_keycodec_bound(n), len = 0;
    uint8_t *buf = malloc(cap);
    pst_err_t err = {0};
    assert_int_equal(pst_keycodec_encode(f->kc, keys, n, buf, cap, &len, NULL, &err), PST_OK);
    assert_int_equal(buf[0], PST_KEYCODEC_LZ4);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(pst_keycodec_decode(f->kc, buf, cut, out, n, NULL, &err), PST_EPROTO);
    pst_rng_t rng;
    pst_rng_init(&rng, 7);
    int accepted = 0;
    for (int trial = 0; trial < 20000; trial++) {
        size_t blen = 1 + (size_t)pst_rng_below(&rng, 64), want = (size_t)pst_rng_below(&rng, 12);
        for (size_t i = 0; i < blen; i++)
            buf[i] = (uint8_t)pst_rng_next(&rng);
        buf[0] = (uint8_t)pst_rng_below(&rng, 3);
        if (pst_keycodec_decode(f->kc, buf, blen, out, want, NULL, &err) == PST_OK) {
            accepted++;
            for (size_t i = 1; i < want; i++)
                assert_true(out[i] > out[i - 1]);
        }
    }
    /* Bit flips inside a valid LZ4 encoding: refused or decoded to increasing keys. */
    assert_int_equal(pst_keycodec_encode(f->kc, keys, n, buf, cap, &len, NULL, &err), PST_OK);
    for (int trial = 0; trial < 2000; trial++) {
        size_t at = 1 + (size_t)pst_rng_below(&rng, len - 1);
        uint8_t flip = (uint8_t)(1u << pst_rng_below(&rng, 8));
        buf[at] ^= flip;
        if (pst_keycodec_decode(f->kc, buf, len, out, n, NULL, &err) == PST_OK) {
            for (size_t i = 1; i < n; i++)
                assert_true(out[i] > out[i - 1]);
        }
        buf[at] ^= flip;
    }
    (void)accepted;
    free(keys);
    free(out);
    free(buf);
}

static void remembered_lists(void **state)
{
    (void)state;
    pst_keycodec_list_t list = {0};
    const uint64_t a[] = {1, 2, 3}, b[] = {1, 2, 4};
    assert_false(pst_keycodec_list_same(&list, NULL, 0)); /* nothing stored yet */
    assert_int_equal(pst_keycodec_list_store(&list, a, 3, 99), PST_OK);
    assert_true(pst_keycodec_list_same(&list, a, 3));
    assert_false(pst_keycodec_list_same(&list, b, 3));
    assert_false(pst_keycodec_list_same(&list, a, 2));
    assert_true(list.signature == 99);
    pst_keycodec_list_fini(&list);
    pst_keycodec_list_fini(&list);
    assert_false(pst_keycodec_list_same(&list, a, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hand_computed_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_and_single, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(dense_run_takes_lz4, setup, teardown),
        cmocka_unit_test_setup_teardown(random_keys_round_trip, setup, teardown),
        cmocka_unit_test(signature_tells_lists_apart),
        cmocka_unit_test_setup_teardown(unsorted_input_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_encodings_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(truncations_and_random_bytes_never_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(declared_counts_are_checked_against_the_bytes, setup,
                                        teardown),
        cmocka_unit_test(remembered_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
