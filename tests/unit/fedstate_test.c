/* Tests for ps/fed/fedstate, the federated server's checkpoint: a coordinator restored from the
 * bytes of another after round 1 (FedAvgM momentum, sampling a fraction of the sites, a rows
 * claim and a key binding) runs round 2 to the same bits as the one that never stopped; a flipped
 * byte, a truncated buffer and another model's checkpoint are refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fed/fedkeys.h"
#include "common/log.h"
#include "ps/fed/fedstate.h"

enum { N = 5, SITES = 4 };
static const float INIT[N] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f};
static const char *const IDS[SITES] = {"s0", "s1", "s2", "s3"};

typedef struct server {
    pst_fedcoord_t *c;
    pst_fedtrust_t *t;
    pst_fedkey_list_t allowed;
} server_t;

static void server_new(server_t *s, size_t n, const char *unbound_key)
{
    pst_fedcoord_cfg_t cc;
    memset(&cc, 0, sizeof cc);
    cc.round = (pst_fedround_cfg_t){
        .fraction = 0.5, .min_sites = 1, .min_responses = 1000, .round_timeout = 30, .seed = 9};
    pst_fedagg_cfg_defaults(&cc.agg, PST_FEDOPT_SGD);
    cc.agg.server_momentum = 0.9;
    cc.rounds = 3;
    pst_err_t err = {0};
    float init[N + 1] = {0};
    memcpy(init, INIT, sizeof INIT);
    s->c = pst_fedcoord_new(&cc, init, n, &err);
    assert_non_null(s->c);
    memset(&s->allowed, 0, sizeof s->allowed);
    assert_int_equal(pst_fedkey_list_add(&s->allowed, unbound_key, NULL, &err), PST_OK);
    s->t = pst_fedtrust_new(&s->allowed, 100, &err);
    assert_non_null(s->t);
}

static void server_free(server_t *s)
{
    pst_fedcoord_destroy(&s->c);
    pst_fedtrust_destroy(&s->t);
    pst_fedkey_list_fini(&s->allowed);
}

/* One round: every asked site offers a delta of its own (exact in binary) and claims rows. */
static void run_round(server_t *s)
{
    const int *asked;
    int k;
    pst_err_t err = {0};
    assert_int_equal(pst_fedcoord_begin(s->c, 0.0, &asked, &k, &err), PST_OK);
    assert_int_equal(k, 2);
    uint64_t round = pst_fedcoord_round(s->c);
    for (int i = 0; i < k; i++) {
        float d[N];
        for (int j = 0; j < N; j++)
            d[j] = 0.125f * (float)(asked[i] + 1) - 0.0625f * (float)(j * (int)round);
        bool lowered;
        double rows = pst_fedtrust_claim(s->t, asked[i], 10.0 * (asked[i] + 1), &lowered);
        assert_int_equal(pst_fedcoord_offer(s->c, asked[i], round, d, rows, 0.5, 0.0),
                         PST_FEDROUND_ACCEPTED);
    }
    pst_fedcoord_round_t r;
    assert_int_equal(pst_fedcoord_end(s->c, 1.0, &r, &err), PST_OK);
    assert_true(r.aggregated);
}

static void a_restored_server_goes_on_to_the_same_bits(void **state)
{
    (void)state;
    pst_fedkey_pair_t key;
    assert_int_equal(pst_fedkey_generate(&key, NULL), PST_OK);
    char peer[64];
    snprintf(peer, sizeof peer, "*%s", key.public_key);
    server_t a;
    server_new(&a, N, key.public_key);
    pst_err_t err = {0};
    for (int i = 0; i < SITES; i++) {
        assert_int_equal(pst_fedround_register(pst_fedcoord_sites(a.c), IDS[i], &err), i);
        assert_int_equal(pst_fedtrust_set_rows(a.t, i, 0, &err), PST_OK);
    }
    assert_int_equal(pst_fedtrust_bind(a.t, peer, "s2", &err), PST_OK);
    run_round(&a);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(pst_fedstate_save(a.c, a.t, &buf, &len, &err), PST_OK);

    server_t b;
    server_new(&b, N, key.public_key);
    assert_int_equal(pst_fedstate_load(b.c, b.t, buf, len, "ckpt", &err), PST_OK);
    assert_int_equal(pst_fedcoord_round(b.c), 1);
    assert_memory_equal(pst_fedcoord_global(b.c), pst_fedcoord_global(a.c), N * sizeof(float));
    assert_int_equal(pst_fedround_n_sites(pst_fedcoord_sites(b.c)), SITES);
    assert_string_equal(pst_fedround_site(pst_fedcoord_sites(b.c), 3), "s3");
    assert_string_equal(pst_fedtrust_bound_key(b.t, "s2"), key.public_key);
    assert_int_equal(pst_fedtrust_admit(b.t, peer, "s1", false, &err), PST_EINVAL);
    for (int i = 0; i < SITES; i++)
        assert_true(pst_fedtrust_rows(b.t, i) == pst_fedtrust_rows(a.t, i));
    /* the restored sites wait until they are seen: then round 2 asks the same sites */
    for (int i = 0; i < SITES; i++)
        pst_fedround_seen(pst_fedcoord_sites(b.c), i);
    run_round(&a);
    run_round(&b);
    assert_memory_equal(pst_fedcoord_global(b.c), pst_fedcoord_global(a.c), N * sizeof(float));
    size_t na, nb;
    const float *ma = pst_fedagg_state(pst_fedcoord_agg(a.c), &na);
    const float *mb = pst_fedagg_state(pst_fedcoord_agg(b.c), &nb);
    assert_int_equal(na, 2 * N);
    assert_int_equal(nb, 2 * N);
    assert_memory_equal(ma, mb, na * sizeof(float));
    free(buf);
    server_free(&a);
    server_free(&b);
}

static void damaged_and_foreign_checkpoints_are_refused(void **state)
{
    (void)state;
    pst_fedkey_pair_t key;
    assert_int_equal(pst_fedkey_generate(&key, NULL), PST_OK);
    server_t a;
    server_new(&a, N, key.public_key);
    pst_err_t err = {0};
    for (int i = 0; i < SITES; i++)
        assert_int_equal(pst_fedround_register(pst_fedcoord_sites(a.c), IDS[i], &err), i);
    run_round(&a);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(pst_fedstate_save(a.c, a.t, &buf, &len, &err), PST_OK);
    server_t b;
    server_new(&b, N, key.public_key);
    buf[len / 2] ^= 0x10;
    assert_int_equal(pst_fedstate_load(b.c, b.t, buf, len, "f.ckpt", &err), PST_EFORMAT);
    assert_string_equal(err.msg, "f.ckpt: checksum mismatch (a damaged checkpoint)");
    buf[len / 2] ^= 0x10;
    assert_int_equal(pst_fedstate_load(b.c, b.t, buf, len - 9, "f.ckpt", &err), PST_EFORMAT);
    assert_int_equal(pst_fedstate_load(b.c, b.t, buf, 3, "f.ckpt", &err), PST_EFORMAT);
    assert_int_equal(pst_fedround_n_sites(pst_fedcoord_sites(b.c)), 0);
    server_free(&b);
    /* a model of N + 1 floats is not this checkpoint's */
    server_new(&b, N + 1, key.public_key);
    assert_int_equal(pst_fedstate_load(b.c, b.t, buf, len, "f.ckpt", &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "the weights are not those of this model"));
    server_free(&b);
    free(buf);
    server_free(&a);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_restored_server_goes_on_to_the_same_bits),
        cmocka_unit_test(damaged_and_foreign_checkpoints_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
