/* Fuzz target: key lists. Input: 2-byte key count, then the encoded list. A list that decodes
 * must be strictly increasing, and must encode and decode back to itself with one signature. */
#include <stdlib.h>
#include <string.h>

#include "common/net/keycodec.h"
#include "fuzz/fuzz.h"

enum { MAX_KEYS = 8192 };

static pst_keycodec_t *codec(void)
{
    static pst_keycodec_t *kc;
    if (kc == NULL)
        kc = pst_keycodec_new(NULL);
    pst_fuzz_check(kc != NULL, "keycodec allocation");
    return kc;
}

static void check_round_trip(const uint64_t *keys, size_t n, uint64_t signature)
{
    size_t cap = pst_keycodec_bound(n), len = 0;
    uint8_t *enc = malloc(cap);
    uint64_t *back = malloc((n ? n : 1) * sizeof *back);
    pst_fuzz_check(enc && back, "allocation");
    uint64_t sig_enc = 0, sig_dec = 0;
    pst_fuzz_check(pst_keycodec_encode(codec(), keys, n, enc, cap, &len, &sig_enc, NULL) == PST_OK,
                   "decoded keys encode again");
    pst_fuzz_check(pst_keycodec_decode(codec(), enc, len, back, n, &sig_dec, NULL) == PST_OK,
                   "own encoding decodes");
    pst_fuzz_check(memcmp(keys, back, n * sizeof *keys) == 0, "round trip keeps the keys");
    pst_fuzz_check(sig_enc == signature && sig_dec == signature, "one signature per list");
    pst_fuzz_check(pst_keycodec_signature(keys, n) == signature, "signature of the list itself");
    free(enc);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t n = ((size_t)data[0] | (size_t)data[1] << 8) % (MAX_KEYS + 1);
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    pst_fuzz_check(keys != NULL, "allocation");
    uint64_t signature = 0;
    pst_err_t err = {0};
    int rc = pst_keycodec_decode(codec(), data + 2, size - 2, keys, n, &signature, &err);
    pst_fuzz_check(rc == PST_OK || rc == PST_EPROTO, "decode fails only with PST_EPROTO");
    if (rc == PST_OK) {
        for (size_t i = 1; i < n; i++)
            pst_fuzz_check(keys[i] > keys[i - 1], "decoded keys strictly increase");
        check_round_trip(keys, n, signature);
    }
    free(keys);
    return 0;
}
