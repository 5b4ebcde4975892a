/* Sparse model files: pack and unpack pst.Model version 2, with every count and size checked
 * against the bytes before anything is allocated. */
#include "worker/model/sparsefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/filesum.h"
#include "common/net/codec.h"
#include "worker/model/modelfile.h"
#include "pstrain.pb-c.h"

#define SPARSEFILE_MAX_BYTES ((size_t)8 << 30)
#define MAX_DENSE_UNITS (1 << 20)

static const char *const TYPE_NAMES[] = {"sparse_lr", "fm", "wide_deep"};
static const char *const NUMERIC_NAMES[] = {"value", "bucket", "log"};

const char *pst_sparsefile_type_name(pst_sparsefile_type_t type)
{
    return (unsigned)type < 3 ? TYPE_NAMES[type] : "unknown";
}

int pst_sparsefile_type_parse(const char *name, pst_sparsefile_type_t *out)
{
    for (int i = 0; i < 3; i++)
        if (name != NULL && strcmp(name, TYPE_NAMES[i]) == 0) {
            *out = (pst_sparsefile_type_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

void pst_sparsefile_fini(pst_sparsefile_t *sf)
{
    free(sf->keys);
    free(sf->rows);
    free(sf->hidden);
    free(sf->dense);
    free(sf->config_yaml);
    memset(sf, 0, sizeof *sf);
}

/* ---- from a trained model ---- */

static bool all_zero(const float *row, uint32_t width)
{
    for (uint32_t j = 0; j < width; j++)
        if (row[j] != 0.0f)
            return false;
    return true;
}

typedef struct keyed {
    uint64_t key;
    size_t index;
} keyed_t;

static int by_key(const void *a, const void *b)
{
    uint64_t x = ((const keyed_t *)a)->key, y = ((const keyed_t *)b)->key;
    return x < y ? -1 : x > y;
}

int pst_sparsefile_take_rows(pst_sparsefile_t *sf, const pst_sparse_model_t *model, pst_err_t *err)
{
    uint32_t w = pst_sparse_row_width(&sf->spec);
    size_t n = pst_sparse_model_n_keys(model), kept = 0;
    keyed_t *order = malloc((n ? n : 1) * sizeof *order);
    if (order == NULL)
        return pst_err_set(err, PST_ENOMEM, "sparse model file: out of memory for %zu rows", n);
    for (size_t i = 0; i < n; i++) {
        uint64_t key;
        const float *row = pst_sparse_model_entry(model, i, &key);
        if (!all_zero(row, w))
            order[kept++] = (keyed_t){key, i};
    }
    qsort(order, kept, sizeof *order, by_key);
    free(sf->keys);
    free(sf->rows);
    sf->keys = malloc((kept ? kept : 1) * sizeof *sf->keys);
    sf->rows = malloc((kept ? kept : 1) * w * sizeof *sf->rows);
    if (sf->keys == NULL || sf->rows == NULL) {
        free(order);
        return pst_err_set(err, PST_ENOMEM, "sparse model file: out of memory for %zu rows", kept);
    }
    for (size_t i = 0; i < kept; i++) {
        sf->keys[i] = order[i].key;
        memcpy(sf->rows + i * w, pst_sparse_model_entry(model, order[i].index, NULL),
               w * sizeof(float));
    }
    sf->n_rows = kept;
    free(order);
    return PST_OK;
}

int pst_sparsefile_take_wide_deep(pst_sparsefile_t *sf, pst_wide_deep_t *model, pst_err_t *err)
{
    const pst_wide_deep_spec_t *spec = pst_wide_deep_spec(model);
    pst_model_t *mlp = pst_wide_deep_mlp(model);
    size_t n_hidden = (size_t)spec->n_hidden, n = pst_model_n_params(mlp);
    free(sf->hidden);
    free(sf->dense);
    sf->hidden = malloc((n_hidden ? n_hidden : 1) * sizeof *sf->hidden);
    sf->dense = malloc((n ? n : 1) * sizeof *sf->dense);
    if (sf->hidden == NULL || sf->dense == NULL)
        return pst_err_set(err, PST_ENOMEM, "sparse model file: out of memory");
    memcpy(sf->hidden, spec->hidden, n_hidden * sizeof *sf->hidden);
    memcpy(sf->dense, pst_model_params(mlp), n * sizeof *sf->dense);
    sf->n_dense = n;
    sf->wd = *spec;
    sf->wd.hidden = sf->hidden;
    sf->wd.max_batch = 0;
    sf->type = PST_SPARSEFILE_WIDE_DEEP;
    sf->spec = (pst_sparse_spec_t){.kind = PST_SPARSE_FM, .n_factors = spec->dim};
    sf->bias = 0.0f;
    return PST_OK;
}

/* ---- packing ---- */

/* The file's checksum: pst_checksum of the three blocks' checksums as 12 little-endian bytes. */
static uint32_t content_checksum(const uint8_t *keys, size_t keys_len, const uint8_t *rows,
                                 size_t rows_len, const uint8_t *dense, size_t dense_len)
{
    uint32_t part[3] = {pst_checksum(keys, keys_len), pst_checksum(rows, rows_len),
                        pst_checksum(dense, dense_len)};
    uint8_t bytes[12];
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 4; b++)
            bytes[i * 4 + b] = (uint8_t)(part[i] >> (8 * b));
    return pst_checksum(bytes, sizeof bytes);
}

static void pack_hash(const pst_sparsefile_t *sf, Pst__HashSpec *h)
{
    bool tsv = sf->format == PST_SPARSE_TSV_HASHED;
    h->format = tsv ? "criteo" : "libsvm";
    if (!tsv)
        return;
    h->n_numeric = (uint32_t)sf->hash.n_numeric;
    h->n_categorical = (uint32_t)sf->hash.n_categorical;
    h->bits = (uint32_t)sf->hash.bits;
    h->seed = sf->hash.seed;
    h->numeric = (char *)NUMERIC_NAMES[sf->hash.numeric];
    h->field_keys = sf->hash.field_keys;
}

int pst_sparsefile_pack(const pst_sparsefile_t *sf, uint8_t **buf_out, size_t *len_out,
                        pst_err_t *err)
{
    *buf_out = NULL;
    *len_out = 0;
    Pst__Model m = PST__MODEL__INIT;
    Pst__SparseModel s = PST__SPARSE_MODEL__INIT;
    Pst__HashSpec h = PST__HASH_SPEC__INIT;
    bool wd = sf->type == PST_SPARSEFILE_WIDE_DEEP;
    size_t n_hidden = wd ? (size_t)sf->wd.n_hidden : 0;
    Pst__LayerSpec specs[PST_WD_MAX_LAYERS], *spec_ptrs[PST_WD_MAX_LAYERS];
    for (size_t i = 0; i < n_hidden; i++) {
        pst__layer_spec__init(&specs[i]);
        specs[i].kind = (char *)pst_layer_kind_name(sf->hidden[i].kind);
        specs[i].units = (uint32_t)sf->hidden[i].units;
        specs[i].rate = sf->hidden[i].rate;
        spec_ptrs[i] = &specs[i];
    }
    pack_hash(sf, &h);
    uint32_t w = pst_sparse_row_width(&sf->spec);
    s.type = (char *)pst_sparsefile_type_name(sf->type);
    s.row_width = w;
    s.n_rows = sf->n_rows;
    s.keys = (ProtobufCBinaryData){sf->n_rows * sizeof(uint64_t), (uint8_t *)sf->keys};
    s.rows = (ProtobufCBinaryData){sf->n_rows * w * sizeof(float), (uint8_t *)sf->rows};
    s.dense = (ProtobufCBinaryData){wd ? sf->n_dense * sizeof(float) : 0, (uint8_t *)sf->dense};
    s.bias = sf->bias;
    s.hash = &h;
    s.checksum = content_checksum(s.keys.data, s.keys.len, s.rows.data, s.rows.len, s.dense.data,
                                  s.dense.len);
    if (wd) {
        s.n_fields = sf->wd.n_fields;
        s.field_shift = sf->wd.field_shift;
        s.n_raw = sf->wd.n_raw;
        s.pooling = sf->wd.pooling == PST_WD_POOL_MEAN ? "mean" : "sum";
        s.n_hidden = n_hidden;
        s.hidden = spec_ptrs;
    }
    m.magic = PST_MODELFILE_MAGIC;
    m.version = PST_MODELFILE_VERSION_SPARSE;
    m.loss = "log_loss";
    m.task = "classification";
    m.n_classes = 2;
    m.config_yaml = sf->config_yaml ? sf->config_yaml : "";
    m.sparse = &s;
    size_t len = pst__model__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return pst_err_set(err, PST_ENOMEM, "sparse model file: out of memory for %zu bytes", len);
    pst__model__pack(&m, buf);
    *buf_out = buf;
    *len_out = len;
    return PST_OK;
}

int pst_sparsefile_save(const pst_sparsefile_t *sf, const char *path, size_t *bytes, pst_err_t *err)
{
    uint8_t *buf;
    size_t len;
    int rc = pst_sparsefile_pack(sf, &buf, &len, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", path);
    rc = pst_filesum_write(path, buf, len, err);
    free(buf);
    if (bytes != NULL)
        *bytes = rc == PST_OK ? len + PST_FILESUM_TRAILER : 0;
    return rc;
}

/* ---- reading ---- */

static int read_hash(pst_sparsefile_t *sf, const Pst__HashSpec *h, const char *path, pst_err_t *err)
{
    if (h == NULL || strcmp(h->format, "libsvm") == 0) {
        sf->format = PST_SPARSE_LIBSVM;
        return PST_OK;
    }
    if (strcmp(h->format, "criteo") != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: unknown input format '%s'", path, h->format);
    sf->format = PST_SPARSE_TSV_HASHED;
    int mode = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(h->numeric, NUMERIC_NAMES[i]) == 0)
            mode = i;
    if (mode < 0)
        return pst_err_set(err, PST_EFORMAT, "%s: unknown numeric mode '%s'", path, h->numeric);
    sf->hash = (pst_hash_spec_t){.n_numeric = h->n_numeric,
                                 .n_categorical = h->n_categorical,
                                 .bits = h->bits > 1024 ? 1024 : (int)h->bits,
                                 .seed = h->seed,
                                 .numeric = (pst_numeric_mode_t)mode,
                                 .field_keys = h->field_keys};
    int rc = pst_hash_spec_check(&sf->hash, err);
    return rc != PST_OK ? pst_err_prefix(err, PST_EFORMAT, "%s: hashing: ", path) : PST_OK;
}

/* The row layout of the type and width the file declares. */
static int read_spec(pst_sparsefile_t *sf, const Pst__SparseModel *s, const char *path,
                     pst_err_t *err)
{
    if (pst_sparsefile_type_parse(s->type, &sf->type) != PST_OK)
        return pst_err_set(err, PST_EFORMAT, "%s: unknown sparse model type '%s'", path, s->type);
    uint32_t w = s->row_width;
    bool lr = sf->type == PST_SPARSEFILE_LR;
    if (lr ? w != 1 : (w < 2 || w > PST_FM_MAX_FACTORS + 1))
        return pst_err_set(err, PST_EFORMAT, "%s: row width %u for model type %s", path, w,
                           s->type);
    sf->spec = (pst_sparse_spec_t){.kind = lr ? PST_SPARSE_LR : PST_SPARSE_FM,
                                   .n_factors = lr ? 0 : w - 1};
    sf->bias = s->bias;
    return PST_OK;
}

static bool all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(v[i] - v[i] == 0.0f))
            return false;
    return true;
}

/* Keys and rows: sizes from the declared count, checked against the bytes before copying. */
static int read_rows(pst_sparsefile_t *sf, const Pst__SparseModel *s, const char *path,
                     pst_err_t *err)
{
    uint64_t n = s->n_rows;
    size_t w = pst_sparse_row_width(&sf->spec), row_bytes = w * sizeof(float);
    if (n > PST_SPARSEFILE_MAX_ROWS || s->keys.len / sizeof(uint64_t) != n ||
        s->keys.len % sizeof(uint64_t) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: %llu rows declared, %zu bytes of keys", path,
                           (unsigned long long)n, s->keys.len);
    if (s->rows.len % row_bytes != 0 || s->rows.len / row_bytes != n)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: %llu rows of %zu floats declared, %zu bytes of rows", path,
                           (unsigned long long)n, w, s->rows.len);
    sf->keys = malloc(n ? s->keys.len : 1);
    sf->rows = malloc(n ? s->rows.len : 1);
    if (sf->keys == NULL || sf->rows == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: no memory for %llu rows", path,
                           (unsigned long long)n);
    if (n > 0) { /* a file without rows may carry no key or row bytes at all */
        memcpy(sf->keys, s->keys.data, s->keys.len);
        memcpy(sf->rows, s->rows.data, s->rows.len);
    }
    sf->n_rows = (size_t)n;
    for (size_t i = 1; i < sf->n_rows; i++)
        if (sf->keys[i] <= sf->keys[i - 1])
            return pst_err_set(err, PST_EFORMAT, "%s: keys out of order at row %zu", path, i + 1);
    if (!all_finite(sf->rows, sf->n_rows * w) || !all_finite(&sf->bias, 1))
        return pst_err_set(err, PST_EFORMAT, "%s: a weight is not finite", path);
    return PST_OK;
}

/* Parameters of the deep stack (hidden layers, then dense:1) on in_width inputs; 0 when a
 * layer is malformed (its message in err). */
static uint64_t dense_params(const pst_layer_spec_t *hidden, int n_hidden, uint64_t in_width,
                             const char *path, pst_err_t *err)
{
    uint64_t width = in_width, total = 0;
    for (int i = 0; i <= n_hidden; i++) {
        bool out = i == n_hidden;
        if (!out && hidden[i].kind != PST_LAYER_DENSE)
            continue;
        uint64_t units = out ? 1 : (uint64_t)hidden[i].units;
        if (units < 1 || units > MAX_DENSE_UNITS) {
            pst_err_set(err, PST_EFORMAT, "%s: hidden layer %d has %llu units", path, i + 1,
                        (unsigned long long)units);
            return 0;
        }
        total += width * units + units;
        width = units;
    }
    return total;
}

static int read_layers(pst_sparsefile_t *sf, const Pst__SparseModel *s, const char *path,
                       pst_err_t *err)
{
    if (s->n_hidden >= PST_WD_MAX_LAYERS)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu hidden layers", path, s->n_hidden);
    sf->hidden = calloc(s->n_hidden ? s->n_hidden : 1, sizeof *sf->hidden);
    if (sf->hidden == NULL)
        return PST_ENOMEM;
    for (size_t i = 0; i < s->n_hidden; i++) {
        pst_layer_spec_t *l = &sf->hidden[i];
        if (pst_layer_kind_parse(s->hidden[i]->kind, &l->kind) != PST_OK ||
            l->kind == PST_LAYER_SOFTMAX)
            return pst_err_set(err, PST_EFORMAT, "%s: hidden layer %zu has kind '%s'", path, i + 1,
                               s->hidden[i]->kind);
        l->units = s->hidden[i]->units > MAX_DENSE_UNITS ? 0 : (int)s->hidden[i]->units;
        l->rate = s->hidden[i]->rate;
        if (l->kind == PST_LAYER_DROPOUT && !(l->rate >= 0.0f && l->rate < 1.0f))
            return pst_err_set(err, PST_EFORMAT, "%s: hidden layer %zu has dropout rate %g", path,
                               i + 1, (double)l->rate);
    }
    return PST_OK;
}

/* wide_deep: the field layout and the deep stack, whose parameter count must match the bytes. */
static int read_wide_deep(pst_sparsefile_t *sf, const Pst__SparseModel *s, const char *path,
                          pst_err_t *err)
{
    pst_wide_deep_spec_t *wd = &sf->wd;
    if (s->n_fields < 1 || s->n_fields > PST_WD_MAX_FIELDS || s->n_raw > s->n_fields ||
        s->field_shift > 63)
        return pst_err_set(err, PST_EFORMAT, "%s: %u fields, %u raw, field shift %u", path,
                           s->n_fields, s->n_raw, s->field_shift);
    if (pst_wd_pooling_parse(s->pooling, &wd->pooling) != PST_OK)
        return pst_err_set(err, PST_EFORMAT, "%s: unknown pooling '%s'", path, s->pooling);
    int rc = read_layers(sf, s, path, err);
    if (rc != PST_OK)
        return rc;
    wd->n_fields = s->n_fields;
    wd->field_shift = s->field_shift;
    wd->n_raw = s->n_raw;
    wd->dim = sf->spec.n_factors;
    wd->hidden = sf->hidden;
    wd->n_hidden = (int)s->n_hidden;
    uint64_t in_width = (uint64_t)wd->n_fields * wd->dim + wd->n_raw;
    uint64_t need = dense_params(sf->hidden, wd->n_hidden, in_width, path, err);
    if (need == 0)
        return PST_EFORMAT;
    if (s->dense.len % sizeof(float) != 0 || s->dense.len / sizeof(float) != need)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: the deep stack needs %llu parameters, the file holds %zu bytes",
                           path, (unsigned long long)need, s->dense.len);
    sf->n_dense = (size_t)need;
    if (!(sf->dense = malloc(s->dense.len)))
        return PST_ENOMEM;
    memcpy(sf->dense, s->dense.data, s->dense.len);
    if (!all_finite(sf->dense, sf->n_dense))
        return pst_err_set(err, PST_EFORMAT, "%s: a deep parameter is not finite", path);
    return PST_OK;
}

static int read_sparse(pst_sparsefile_t *sf, const Pst__Model *m, const char *path, pst_err_t *err)
{
    if (m->magic != PST_MODELFILE_MAGIC)
        return pst_err_set(err, PST_EFORMAT, "%s: not a pstrain model file (bad magic)", path);
    if (m->version != PST_MODELFILE_VERSION_SPARSE || m->sparse == NULL)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: model file version %u is not a sparse model (version %u)", path,
                           m->version, PST_MODELFILE_VERSION_SPARSE);
    const Pst__SparseModel *s = m->sparse;
    int rc = read_spec(sf, s, path, err);
    if (rc == PST_OK)
        rc = read_hash(sf, s->hash, path, err);
    if (rc == PST_OK)
        rc = read_rows(sf, s, path, err);
    if (rc == PST_OK && sf->type == PST_SPARSEFILE_WIDE_DEEP)
        rc = read_wide_deep(sf, s, path, err);
    else if (rc == PST_OK && (s->n_hidden > 0 || s->dense.len > 0))
        return pst_err_set(err, PST_EFORMAT, "%s: a %s model with a deep stack", path, s->type);
    if (rc == PST_OK && m->config_yaml[0] && !(sf->config_yaml = strdup(m->config_yaml)))
        rc = PST_ENOMEM;
    /* last, so that a fuzzer's inputs reach the checks above */
    if (rc == PST_OK && content_checksum(s->keys.data, s->keys.len, s->rows.data, s->rows.len,
                                         s->dense.data, s->dense.len) != s->checksum)
        rc = pst_err_set(err, PST_EFORMAT, "%s: checksum mismatch (the file is corrupt)", path);
    return rc;
}

int pst_sparsefile_unpack(pst_sparsefile_t *sf, const uint8_t *buf, size_t len, const char *origin,
                          pst_err_t *err)
{
    memset(sf, 0, sizeof *sf);
    Pst__Model *m = pst__model__unpack(NULL, len, buf);
    if (m == NULL)
        return pst_err_set(err, PST_EFORMAT, "%s: not a pstrain model file (cannot decode)",
                           origin);
    int rc = read_sparse(sf, m, origin, err);
    pst__model__free_unpacked(m, NULL);
    if (rc == PST_ENOMEM)
        pst_err_set(err, rc, "%s: out of memory", origin);
    if (rc != PST_OK)
        pst_sparsefile_fini(sf);
    return rc;
}

int pst_sparsefile_load(pst_sparsefile_t *sf, const char *path, pst_err_t *err)
{
    memset(sf, 0, sizeof *sf);
    unsigned char *buf;
    size_t len;
    int rc = pst_filesum_read(path, SPARSEFILE_MAX_BYTES, &buf, &len, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_sparsefile_unpack(sf, buf, len, path, err);
    free(buf);
    return rc;
}
