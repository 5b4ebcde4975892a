/* Feature hashing: seeded 64-bit hash, per-field buckets, hashed Criteo-style TSV reader. */
#ifndef PST_COMMON_DATA_HASHING_H
#define PST_COMMON_DATA_HASHING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"

/* Most hash bits a bucket may have (buckets are uint32 column indices). */
#define PST_HASH_MAX_BITS 32

/* pst_hash64: a seeded hash of len bytes, written for this project and identical on every
 * platform. With P1 = 0x9E3779B97F4A7C15, P2 = 0xC2B2AE3D27D4EB4F, P3 = 0x165667B19E3779F9,
 * P4 = 0x27D4EB2F165667C5, all arithmetic modulo 2^64:
 *   h = seed + P1 + len * P2
 *   for each 8-byte little-endian word w of the input (the last one zero-padded if short):
 *       h ^= rotl(w * P2, 31) * P1;  h = rotl(h, 27) * P1 + P4
 *   return fmix(h ^ len), fmix(z) = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
 *                                    z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31.
 * An empty input has no word. */
uint64_t pst_hash64(uint64_t seed, const void *data, size_t len);

/* The seed of field field_index's namespace: fmix(seed + (field_index + 1) * P3). The same
 * token in two fields hashes independently. */
uint64_t pst_hash_field_seed(uint64_t seed, uint32_t field_index);

/* Bucket of token[0..len) in field field_index: the top `bits` bits of
 * pst_hash64(pst_hash_field_seed(seed, field_index), token, len), in [0, 2^bits).
 * bits is in [1, PST_HASH_MAX_BITS] (asserted: validate user input before calling). */
uint32_t pst_hash_feature(uint64_t seed, uint32_t field_index, const char *token, size_t len,
                          int bits);

/* How numeric columns become features. PST_NUMERIC_VALUE = 0 and PST_NUMERIC_BUCKET = 1, so a
 * "bucketise" flag converts directly. */
typedef enum {
    /* One bucket per column (the hash of the empty token in that field); the feature value is
     * the number itself. Zero cells add no entry. */
    PST_NUMERIC_VALUE = 0,
    /* The number selects a bucket; the feature value is 1. The bucket code is
     * pst_hash_numeric_code(v), hashed as its 4-byte little-endian two's complement. */
    PST_NUMERIC_BUCKET = 1,
    /* As PST_NUMERIC_VALUE with value sign(v) * ln(1 + |v|), which tames counts. */
    PST_NUMERIC_LOG = 2
} pst_numeric_mode_t;

/* log2-style bucket code of v: 0 when |v| < 1, else sign(v) * (1 + floor(log2 |v|)):
 * 0.5 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3, -1 -> -1, -3 -> -2. v must be finite. */
int32_t pst_hash_numeric_code(double v);

/* Layout and hashing of a TSV file: label \t n_numeric numbers \t n_categorical strings.
 * Field indices: numeric column i is field i, categorical column j is field n_numeric + j. */
typedef struct pst_hash_spec {
    size_t n_numeric;
    size_t n_categorical;
    int bits;                   /* buckets = 2^bits, 1..PST_HASH_MAX_BITS */
    uint64_t seed;              /* hash seed */
    pst_numeric_mode_t numeric; /* numeric columns: value, bucket or log value */
    /* false: every field hashes into one shared space of 2^bits buckets (fields differ by seed);
     * true: a table of 2^bits buckets per field, feature index = field << bits | bucket, so the
     * field is index >> bits (needs bits + bits of the field count <= 32). */
    bool field_keys;
} pst_hash_spec_t;

/* PST_OK, or PST_EINVAL naming the bad field (bits, no columns, unknown mode, field keys that
 * do not fit 32 bits). */
int pst_hash_spec_check(const pst_hash_spec_t *spec, pst_err_t *err);

/* Size of the feature index space: 2^bits, or (n_numeric + n_categorical) << bits with
 * field_keys. spec must pass pst_hash_spec_check. */
size_t pst_hash_spec_n_features(const pst_hash_spec_t *spec);

/* A 64-bit digest of every field of spec (caches built with another spec are stale). */
uint64_t pst_hash_spec_digest(const pst_hash_spec_t *spec);

/* Parses one TSV line s[0..len) (no newline; a trailing '\r' is ignored; s[len] must be a byte
 * that does not continue a number, e.g. '\n' or NUL). The label must be 0 or 1. Empty cells are
 * missing and add no entry. Writes *label and the row's entries sorted by bucket, colliding
 * buckets summed, into idx/val, each of capacity n_numeric + n_categorical; *nnz is the count.
 * Errors name path:line_no and the column (1-based): missing or extra columns, bad number. */
int pst_tsv_hashed_parse_line(const pst_hash_spec_t *spec, const char *s, size_t len, float *label,
                              uint32_t *idx, float *val, size_t *nnz, const char *path,
                              size_t line_no, pst_err_t *err);

/* The seed of each of spec's n_numeric + n_categorical fields (pst_hash_field_seed) into seeds,
 * which a reader computes once per file for pst_tsv_hashed_parse_seeded. */
void pst_hash_spec_field_seeds(const pst_hash_spec_t *spec, uint64_t *seeds);

/* pst_tsv_hashed_parse_line with the field seeds of pst_hash_spec_field_seeds (or NULL: derived
 * per cell): the same rows and messages, faster. */
int pst_tsv_hashed_parse_seeded(const pst_hash_spec_t *spec, const uint64_t *seeds, const char *s,
                                size_t len, float *label, uint32_t *idx, float *val, size_t *nnz,
                                const char *path, size_t line_no, pst_err_t *err);

/* Reads a whole TSV file (plain or gzip) into a new CSR dataset (caller owns *out): x NULL,
 * n_features = 2^bits, classification with classes {0, 1} and y the label. Blank lines are
 * skipped; an empty file is an error. For files larger than memory use common/data/sparsestream. */
int pst_tsv_hashed_read(const char *path, size_t n_numeric, size_t n_categorical, int bits,
                        uint64_t seed, pst_numeric_mode_t numeric, pst_dataset_t **out,
                        pst_err_t *err);

#endif
