/* Key lists on the wire: sorted unique uint64 keys as delta varints, LZ4 when it pays. */
#ifndef PST_COMMON_NET_KEYCODEC_H
#define PST_COMMON_NET_KEYCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Encoded layout (n, the number of keys, travels beside it, e.g. in header.count):
 *   byte 0   PST_KEYCODEC_VARINT: the varint stream follows, up to the end
 *            PST_KEYCODEC_LZ4: a LEB128 varint L (bytes of the varint stream), then one LZ4
 *            block that decompresses to exactly L bytes
 *   stream   n LEB128 varints: keys[0], then keys[i] - keys[i - 1] (>= 1) for i >= 1; each
 *            varint minimal (no trailing 0x00 group) and at most 10 bytes */
#define PST_KEYCODEC_VARINT 0
#define PST_KEYCODEC_LZ4 1
#define PST_KEYCODEC_MAX_VARINT 10 /* bytes of the longest uint64 LEB128 varint */

typedef struct pst_keycodec pst_keycodec_t;

/* A key list one side remembers with its signature (see pst_keycodec_signature). */
typedef struct pst_keycodec_list {
    uint64_t *keys; /* (cap), the first n in use */
    size_t n, cap;
    uint64_t signature;
    bool valid;
} pst_keycodec_list_t;

/* A codec with its own scratch; one per thread. Caller owns the result. */
pst_keycodec_t *pst_keycodec_new(pst_err_t *err);
void pst_keycodec_destroy(pst_keycodec_t **self_p);

/* Largest encoding of n keys. */
size_t pst_keycodec_bound(size_t n);

/* Encodes n sorted unique keys into out (cap >= pst_keycodec_bound(n)); *len receives the
 * bytes written, *signature (may be NULL) the list's signature. Keys that are not strictly
 * increasing are PST_EINVAL. */
int pst_keycodec_encode(pst_keycodec_t *self, const uint64_t *keys, size_t n, uint8_t *out,
                        size_t cap, size_t *len, uint64_t *signature, pst_err_t *err);

/* The most keys an encoding of len bytes can hold (each key takes at least one byte of the varint
 * stream, and an LZ4 block expands at most PST_KEYCODEC_LZ4_MAX_RATIO times): a receiver checks a
 * declared key count against it before allocating for the keys. 0 for an unknown layout. */
#define PST_KEYCODEC_LZ4_MAX_RATIO 256
size_t pst_keycodec_max_keys(const uint8_t *in, size_t len);

/* Decodes exactly n keys from in (len bytes) into keys; *signature (may be NULL) receives the
 * list's signature. Anything malformed (truncated, overlong or non-minimal varint, a sum past
 * 2^64 - 1, a key not above the previous one, bytes left over, fewer keys than n, a bad LZ4
 * block) is PST_EPROTO; nothing is read outside in or written outside keys[0..n). */
int pst_keycodec_decode(pst_keycodec_t *self, const uint8_t *in, size_t len, uint64_t *keys,
                        size_t n, uint64_t *signature, pst_err_t *err);

/* The 64-bit signature of a key list: a seeded hash over n and the deltas of the varint
 * stream, the same whichever side computes it. */
uint64_t pst_keycodec_signature(const uint64_t *keys, size_t n);

/* Remembers a copy of keys (n) with its signature; on failure the list is left invalid. */
int pst_keycodec_list_store(pst_keycodec_list_t *list, const uint64_t *keys, size_t n,
                            uint64_t signature);
/* Whether list is valid and holds exactly these n keys. */
bool pst_keycodec_list_same(const pst_keycodec_list_t *list, const uint64_t *keys, size_t n);
/* Frees the list's keys; safe twice. */
void pst_keycodec_list_fini(pst_keycodec_list_t *list);

#endif
