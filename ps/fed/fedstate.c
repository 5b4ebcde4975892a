/* The federated server's checkpoint bytes: written field by field, read back with every size
 * checked first. */
#include "ps/fed/fedstate.h"

#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/crc32c.h"
#include "common/fed/fedkeys.h"
#include "common/fed/fedagg.h"

static const char MAGIC[8] = {'P', 'S', 'T', 'F', 'E', 'D', 'S', 1};

/* ---- writing ---- */

typedef struct out {
    uint8_t *buf;
    size_t len, cap;
    bool failed;
} out_t;

static void put(out_t *o, const void *data, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        uint8_t *grown = realloc(o->buf, cap);
        if (grown == NULL) {
            o->failed = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
}

static void put_u64(out_t *o, uint64_t v)
{
    put(o, &v, sizeof v);
}

static void put_rng(out_t *o, const pst_rng_t *rng)
{
    for (int i = 0; i < 4; i++)
        put_u64(o, rng->s[i]);
}

static void put_text(out_t *o, const char *text)
{
    put_u64(o, text != NULL ? strlen(text) : 0);
    if (text != NULL)
        put(o, text, strlen(text));
}

int pst_fedstate_save(pst_fedcoord_t *c, const pst_fedtrust_t *t, uint8_t **buf, size_t *len,
                      pst_err_t *err)
{
    out_t o = {0};
    pst_fedagg_t *agg = pst_fedcoord_agg(c);
    pst_fedround_t *sites = pst_fedcoord_sites(c);
    size_t n = pst_fedcoord_n_params(c), n_state = 0;
    const float *state = pst_fedagg_state(agg, &n_state);
    put(&o, MAGIC, sizeof MAGIC);
    put_u64(&o, pst_fedcoord_round(c));
    put_u64(&o, n);
    put(&o, pst_fedcoord_global(c), n * sizeof(float));
    put_u64(&o, pst_fedagg_rounds(agg));
    put_rng(&o, pst_fedagg_rng(agg));
    put_u64(&o, n_state);
    if (n_state > 0)
        put(&o, state, n_state * sizeof(float));
    put_rng(&o, pst_fedround_rng(sites));
    put_u64(&o, (uint64_t)pst_fedround_n_sites(sites));
    for (int i = 0; i < pst_fedround_n_sites(sites); i++) {
        const char *site = pst_fedround_site(sites, i);
        double rows = pst_fedtrust_rows(t, i);
        put_text(&o, site);
        put(&o, &rows, sizeof rows);
        put_text(&o, pst_fedtrust_bound_key(t, site));
    }
    uint32_t crc = pst_crc32c(0, o.buf, o.len);
    put(&o, &crc, sizeof crc);
    if (o.failed) {
        free(o.buf);
        return pst_err_set(err, PST_ENOMEM, "fed checkpoint: out of memory");
    }
    *buf = o.buf;
    *len = o.len;
    return PST_OK;
}

/* ---- reading ---- */

typedef struct in {
    const uint8_t *at;
    size_t left;
} in_t;

static bool get(in_t *in, void *data, size_t n)
{
    if (n > in->left)
        return false;
    if (n == 0)
        return true;
    memcpy(data, in->at, n);
    in->at += n;
    in->left -= n;
    return true;
}

static bool get_u64(in_t *in, uint64_t *v)
{
    return get(in, v, sizeof *v);
}

static bool get_rng(in_t *in, pst_rng_t *rng)
{
    for (int i = 0; i < 4; i++)
        if (!get_u64(in, &rng->s[i]))
            return false;
    return true;
}

/* A text of at most max bytes into text (max + 1 bytes). */
static bool get_text(in_t *in, char *text, size_t max)
{
    uint64_t n;
    if (!get_u64(in, &n) || n > max || !get(in, text, (size_t)n))
        return false;
    text[n] = '\0';
    return true;
}

/* Floats of a block whose count the buffer declared: compared with the count expected first. */
static bool get_floats(in_t *in, float *dst, size_t expected)
{
    uint64_t n;
    return get_u64(in, &n) && n == expected && get(in, dst, expected * sizeof(float));
}

/* Registers the saved sites again, in their order (their indices), held until seen. */
static int load_sites(pst_fedcoord_t *c, pst_fedtrust_t *t, in_t *in, const char *origin,
                      pst_err_t *err)
{
    pst_fedround_t *sites = pst_fedcoord_sites(c);
    uint64_t n_sites;
    if (!get_u64(in, &n_sites) || n_sites > in->left / 24)
        return pst_err_set(err, PST_EFORMAT, "%s: a damaged registry", origin);
    for (uint64_t i = 0; i < n_sites; i++) {
        char site[PST_FEDKEY_NAME_MAX + 1], key[PST_FEDKEY_Z85 + 1];
        double rows;
        if (!get_text(in, site, PST_FEDKEY_NAME_MAX) || !get(in, &rows, sizeof rows) ||
            !get_text(in, key, PST_FEDKEY_Z85))
            return pst_err_set(err, PST_EFORMAT, "%s: a damaged registry entry %llu", origin,
                               (unsigned long long)i);
        int index = pst_fedround_register(sites, site, err);
        if (index != (int)i)
            return pst_err_set(err, PST_EFORMAT, "%s: site '%.64s' cannot be registered again",
                               origin, site);
        pst_fedround_hold(sites, index);
        int rc = pst_fedtrust_restore_rows(t, index, rows, err);
        if (rc == PST_OK && key[0] != '\0')
            rc = pst_fedtrust_restore_binding(t, key, site, err);
        if (rc != PST_OK)
            return pst_err_prefix(err, rc, "%s: ", origin);
    }
    return PST_OK;
}

int pst_fedstate_load(pst_fedcoord_t *c, pst_fedtrust_t *t, const uint8_t *buf, size_t len,
                      const char *origin, pst_err_t *err)
{
    uint32_t crc;
    if (len < sizeof MAGIC + sizeof crc || memcmp(buf, MAGIC, sizeof MAGIC) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: not a federated server checkpoint", origin);
    memcpy(&crc, buf + len - sizeof crc, sizeof crc);
    if (pst_crc32c(0, buf, len - sizeof crc) != crc)
        return pst_err_set(err, PST_EFORMAT, "%s: checksum mismatch (a damaged checkpoint)",
                           origin);
    in_t in = {buf + sizeof MAGIC, len - sizeof MAGIC - sizeof crc};
    pst_fedagg_t *agg = pst_fedcoord_agg(c);
    size_t n = pst_fedcoord_n_params(c), n_state = 0;
    float *state = pst_fedagg_state(agg, &n_state);
    uint64_t round, agg_rounds;
    if (!get_u64(&in, &round))
        return pst_err_set(err, PST_EFORMAT, "%s: truncated", origin);
    if (!get_floats(&in, pst_fedcoord_global(c), n))
        return pst_err_set(err, PST_EINVAL, "%s: the weights are not those of this model (%zu)",
                           origin, n);
    pst_rng_t noise, sampling;
    if (!get_u64(&in, &agg_rounds) || !get_rng(&in, &noise))
        return pst_err_set(err, PST_EFORMAT, "%s: truncated", origin);
    if (!get_floats(&in, state, n_state))
        return pst_err_set(err, PST_EINVAL,
                           "%s: the server optimizer's state is not that of fed.aggregator "
                           "(%zu floats)",
                           origin, n_state);
    if (!get_rng(&in, &sampling))
        return pst_err_set(err, PST_EFORMAT, "%s: truncated", origin);
    pst_fedagg_set_rounds(agg, agg_rounds);
    *pst_fedagg_rng(agg) = noise;
    *pst_fedround_rng(pst_fedcoord_sites(c)) = sampling;
    int rc = load_sites(c, t, &in, origin, err);
    if (rc == PST_OK && in.left != 0)
        rc = pst_err_set(err, PST_EFORMAT, "%s: %zu bytes past the registry", origin, in.left);
    return rc == PST_OK ? pst_fedcoord_resume_after(c, round, err) : rc;
}

/* A checkpoint is the registry and the weights: far below this. */
#define MAX_FILE_BYTES ((size_t)1 << 34)

int pst_fedstate_write(pst_fedcoord_t *c, const pst_fedtrust_t *t, const char *path, pst_err_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = pst_fedstate_save(c, t, &buf, &len, err);
    if (rc == PST_OK)
        rc = pst_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

int pst_fedstate_read(pst_fedcoord_t *c, pst_fedtrust_t *t, const char *path, pst_err_t *err)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = pst_read_file(path, MAX_FILE_BYTES, &buf, &len, err);
    if (rc == PST_OK)
        rc = pst_fedstate_load(c, t, buf, len, path, err);
    free(buf);
    return rc;
}
