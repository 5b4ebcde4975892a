/* Key lists on the wire: delta LEB128 varints of sorted unique keys, LZ4 when it shrinks them. */
#include "common/net/keycodec.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "common/rng.h"

#define LZ4_MIN_STREAM 64              /* shorter varint streams are never worth an LZ4 attempt */
#define SIG_SEED 0x50535445594c4953ull /* "PSTEYLIS" */

struct pst_keycodec {
    uint8_t *scratch; /* the varint stream; (scratch_cap) bytes */
    size_t scratch_cap;
};

/* ---- lifecycle ---- */

pst_keycodec_t *pst_keycodec_new(pst_err_t *err)
{
    pst_keycodec_t *kc = calloc(1, sizeof *kc);
    if (kc == NULL)
        pst_err_set(err, PST_ENOMEM, "keycodec: out of memory");
    return kc;
}

void pst_keycodec_destroy(pst_keycodec_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->scratch);
    free(*self_p);
    *self_p = NULL;
}

static int grow_scratch(pst_keycodec_t *kc, size_t need)
{
    if (need <= kc->scratch_cap)
        return PST_OK;
    uint8_t *grown = realloc(kc->scratch, need > 0 ? need : 1);
    if (grown == NULL)
        return PST_ENOMEM;
    kc->scratch = grown;
    kc->scratch_cap = need;
    return PST_OK;
}

/* ---- signature ---- */

static uint64_t sig_start(size_t n)
{
    return SIG_SEED ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull);
}

static uint64_t sig_step(uint64_t h, uint64_t delta)
{
    h ^= pst_mix64(delta + 0x632be59bd9b4e019ull);
    h = (h << 23) | (h >> 41);
    return h * 0x9fb21c651e98df25ull;
}

static uint64_t sig_end(uint64_t h, size_t n)
{
    return pst_mix64(h ^ (uint64_t)n);
}

uint64_t pst_keycodec_signature(const uint64_t *keys, size_t n)
{
    uint64_t h = sig_start(n), prev = 0;
    for (size_t i = 0; i < n; i++) {
        h = sig_step(h, keys[i] - prev);
        prev = keys[i];
    }
    return sig_end(h, n);
}

/* ---- varints ---- */

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        out[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[i++] = (uint8_t)v;
    return i;
}

typedef enum { VARINT_OK, VARINT_TRUNCATED, VARINT_OVERLONG, VARINT_NOT_MINIMAL } varint_rc_t;

/* Reads one strict varint from [*p, end) and advances *p. */
static varint_rc_t get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < PST_KEYCODEC_MAX_VARINT; i++) {
        if (*p + i >= end)
            return VARINT_TRUNCATED;
        uint8_t b = (*p)[i];
        if (i == PST_KEYCODEC_MAX_VARINT - 1 && b > 1)
            return VARINT_OVERLONG; /* a 10th byte holds bit 63 only, and ends the varint */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0)
                return VARINT_NOT_MINIMAL;
            *p += i + 1;
            *v = x;
            return VARINT_OK;
        }
    }
    return VARINT_OVERLONG;
}

static const char *varint_problem(varint_rc_t rc)
{
    return rc == VARINT_TRUNCATED  ? "truncated"
           : rc == VARINT_OVERLONG ? "overlong"
                                   : "not minimal";
}

/* ---- encoding ---- */

size_t pst_keycodec_bound(size_t n)
{
    return 1 + n * PST_KEYCODEC_MAX_VARINT;
}

/* Writes the varint stream of keys into the codec's scratch; *len receives its size. */
static int encode_stream(pst_keycodec_t *kc, const uint64_t *keys, size_t n, size_t *len,
                         uint64_t *signature, pst_err_t *err)
{
    if (grow_scratch(kc, n * PST_KEYCODEC_MAX_VARINT) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "keycodec: no memory for %zu keys", n);
    uint64_t h = sig_start(n), prev = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && keys[i] <= prev)
            return pst_err_set(err, PST_EINVAL, "keycodec: keys not sorted and unique at %zu", i);
        uint64_t delta = keys[i] - prev;
        h = sig_step(h, delta);
        at += put_varint(kc->scratch + at, delta);
        prev = keys[i];
    }
    *len = at;
    if (signature != NULL)
        *signature = sig_end(h, n);
    return PST_OK;
}

/* The LZ4 layout in out when it is shorter than the plain one (1 + stream bytes); else 0. */
static size_t try_lz4(const uint8_t *stream, size_t stream_len, uint8_t *out, size_t cap)
{
    if (stream_len < LZ4_MIN_STREAM || stream_len > LZ4_MAX_INPUT_SIZE)
        return 0;
    size_t head = 1 + put_varint(out + 1, stream_len);
    size_t room = stream_len - head; /* so that head + packed < 1 + stream_len */
    if (head >= stream_len || cap < head + room)
        return 0;
    if (room > INT_MAX)
        room = INT_MAX;
    int packed =
        LZ4_compress_default((const char *)stream, (char *)out + head, (int)stream_len, (int)room);
    if (packed <= 0)
        return 0;
    out[0] = PST_KEYCODEC_LZ4;
    return head + (size_t)packed;
}

int pst_keycodec_encode(pst_keycodec_t *self, const uint64_t *keys, size_t n, uint8_t *out,
                        size_t cap, size_t *len, uint64_t *signature, pst_err_t *err)
{
    size_t stream_len = 0;
    if (cap < pst_keycodec_bound(n))
        return pst_err_set(err, PST_EINVAL, "keycodec: %zu bytes of room for %zu keys", cap, n);
    int rc = encode_stream(self, keys, n, &stream_len, signature, err);
    if (rc != PST_OK)
        return rc;
    size_t packed = try_lz4(self->scratch, stream_len, out, cap);
    if (packed > 0) {
        *len = packed;
        return PST_OK;
    }
    out[0] = PST_KEYCODEC_VARINT;
    if (stream_len > 0)
        memcpy(out + 1, self->scratch, stream_len);
    *len = 1 + stream_len;
    return PST_OK;
}

/* ---- decoding ---- */

static int decode_stream(const uint8_t *p, size_t len, uint64_t *keys, size_t n,
                         uint64_t *signature, pst_err_t *err)
{
    const uint8_t *end = p + len;
    uint64_t h = sig_start(n), prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t delta = 0;
        varint_rc_t vr = get_varint(&p, end, &delta);
        if (vr != VARINT_OK)
            return pst_err_set(err, PST_EPROTO, "keycodec: key %zu of %zu: varint %s", i, n,
                               varint_problem(vr));
        if (i > 0 && delta == 0)
            return pst_err_set(err, PST_EPROTO, "keycodec: key %zu repeats the one before", i);
        if (delta > UINT64_MAX - prev)
            return pst_err_set(err, PST_EPROTO, "keycodec: key %zu overflows 64 bits", i);
        h = sig_step(h, delta);
        prev += delta;
        keys[i] = prev;
    }
    if (p != end)
        return pst_err_set(err, PST_EPROTO, "keycodec: %zu bytes left after %zu keys",
                           (size_t)(end - p), n);
    if (signature != NULL)
        *signature = sig_end(h, n);
    return PST_OK;
}

/* Decompresses the LZ4 layout (after the tag byte) into the codec's scratch. */
static int inflate(pst_keycodec_t *kc, const uint8_t *p, size_t len, size_t n, size_t *stream_len,
                   pst_err_t *err)
{
    const uint8_t *end = p + len;
    uint64_t want = 0;
    varint_rc_t vr = get_varint(&p, end, &want);
    if (vr != VARINT_OK)
        return pst_err_set(err, PST_EPROTO, "keycodec: LZ4 stream length: varint %s",
                           varint_problem(vr));
    /* Checked before the scratch grows: a few bytes cannot ask for gigabytes. */
    if (want < n || want > (uint64_t)n * PST_KEYCODEC_MAX_VARINT || want > INT_MAX ||
        end - p > INT_MAX || want > (uint64_t)(end - p) * PST_KEYCODEC_LZ4_MAX_RATIO)
        return pst_err_set(err, PST_EPROTO, "keycodec: LZ4 stream of %llu bytes for %zu keys",
                           (unsigned long long)want, n);
    if (grow_scratch(kc, (size_t)want) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "keycodec: no memory for %zu keys", n);
    int got = LZ4_decompress_safe((const char *)p, (char *)kc->scratch, (int)(end - p), (int)want);
    if (got < 0 || (uint64_t)got != want)
        return pst_err_set(err, PST_EPROTO, "keycodec: LZ4 block does not decode to %llu bytes",
                           (unsigned long long)want);
    *stream_len = (size_t)want;
    return PST_OK;
}

size_t pst_keycodec_max_keys(const uint8_t *in, size_t len)
{
    if (len == 0)
        return 0;
    if (in[0] == PST_KEYCODEC_VARINT)
        return len - 1;
    if (in[0] == PST_KEYCODEC_LZ4)
        return len - 1 <= SIZE_MAX / PST_KEYCODEC_LZ4_MAX_RATIO
                   ? (len - 1) * PST_KEYCODEC_LZ4_MAX_RATIO
                   : SIZE_MAX;
    return 0;
}

int pst_keycodec_decode(pst_keycodec_t *self, const uint8_t *in, size_t len, uint64_t *keys,
                        size_t n, uint64_t *signature, pst_err_t *err)
{
    if (len == 0)
        return pst_err_set(err, PST_EPROTO, "keycodec: empty key list encoding");
    if (n > SIZE_MAX / PST_KEYCODEC_MAX_VARINT)
        return pst_err_set(err, PST_EPROTO, "keycodec: %zu keys", n);
    if (n > pst_keycodec_max_keys(in, len) &&
        (in[0] == PST_KEYCODEC_VARINT || in[0] == PST_KEYCODEC_LZ4))
        return pst_err_set(err, PST_EPROTO, "keycodec: %zu keys cannot fit in %zu bytes", n, len);
    if (in[0] == PST_KEYCODEC_VARINT)
        return decode_stream(in + 1, len - 1, keys, n, signature, err);
    if (in[0] != PST_KEYCODEC_LZ4)
        return pst_err_set(err, PST_EPROTO, "keycodec: unknown key layout %u", in[0]);
    size_t stream_len = 0;
    int rc = inflate(self, in + 1, len - 1, n, &stream_len, err);
    if (rc != PST_OK)
        return rc;
    return decode_stream(self->scratch, stream_len, keys, n, signature, err);
}

/* ---- remembered lists ---- */

int pst_keycodec_list_store(pst_keycodec_list_t *list, const uint64_t *keys, size_t n,
                            uint64_t signature)
{
    list->valid = false;
    if (n > list->cap) {
        uint64_t *grown = realloc(list->keys, n * sizeof(uint64_t));
        if (grown == NULL)
            return PST_ENOMEM;
        list->keys = grown;
        list->cap = n;
    }
    if (n > 0)
        memcpy(list->keys, keys, n * sizeof(uint64_t));
    list->n = n;
    list->signature = signature;
    list->valid = true;
    return PST_OK;
}

bool pst_keycodec_list_same(const pst_keycodec_list_t *list, const uint64_t *keys, size_t n)
{
    return list->valid && list->n == n && (n == 0 || memcmp(list->keys, keys, n * 8) == 0);
}

void pst_keycodec_list_fini(pst_keycodec_list_t *list)
{
    free(list->keys);
    memset(list, 0, sizeof *list);
}
