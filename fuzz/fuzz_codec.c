/* Fuzz target: payload codecs. Input: codec byte, 2-byte float count, then the encoded payload.
 * Whatever decodes must re-encode and decode to the same bits (lossless codecs). */
#include <stdlib.h>
#include <string.h>

#include "common/net/codec.h"
#include "fuzz/fuzz.h"

enum { MAX_FLOATS = 4096 };

static void check_round_trip(pst_codec_t codec, const float *v, size_t n)
{
    size_t cap = pst_codec_bound(codec, n), len = 0;
    uint8_t *enc = malloc(cap ? cap : 1);
    float *back = malloc((n ? n : 1) * sizeof *back);
    pst_fuzz_check(enc && back, "allocation");
    pst_codec_t used;
    pst_fuzz_check(pst_codec_encode(codec, v, n, NULL, enc, cap, &len, &used, NULL) == PST_OK,
                   "decoded values encode again");
    pst_fuzz_check(pst_codec_decode(used, enc, len, back, n, NULL) == PST_OK,
                   "own encoding decodes");
    pst_fuzz_check(memcmp(v, back, n * sizeof *v) == 0, "lossless round trip keeps every bit");
    free(enc);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    pst_codec_t codec = (pst_codec_t)(data[0] % (PST_CODEC_INT8_LZ4 + 1));
    size_t n = ((size_t)data[1] | (size_t)data[2] << 8) % (MAX_FLOATS + 1);
    float *dst = malloc((n ? n : 1) * sizeof *dst);
    pst_fuzz_check(dst != NULL, "allocation");
    pst_err_t err = {0};
    int rc = pst_codec_decode(codec, data + 3, size - 3, dst, n, &err);
    pst_fuzz_check(rc == PST_OK || rc == PST_EPROTO, "decode fails only with PST_EPROTO");
    pst_fuzz_check(rc == PST_OK || err.msg[0] != '\0', "a refusal says why");
    if (rc == PST_OK &&
        (codec == PST_CODEC_RAW || codec == PST_CODEC_LZ4 || codec == PST_CODEC_LZ4_SHUFFLE))
        check_round_trip(codec, dst, n);
    free(dst);
    return 0;
}
