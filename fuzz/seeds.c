/* Writes valid inputs for every fuzz target into DIR/TARGET/: the starting corpus of a fuzzing
 * run and the inputs the test suite replays. Usage: fuzz_seeds DIR */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>
#include <zmq.h>

#include "common/net/codec.h"
#include "common/config.h"
#include "common/drift/profile.h"
#include "common/net/keycodec.h"
#include "common/net/wire.h"
#include "fuzz/fuzz.h"
#include "fuzz/seeds_more.h"
#include "ps/checkpoint.h"
#include "worker/model/ensemble.h"
#include "worker/model/modelfile.h"
#include "worker/model/quant.h"
#include "worker/model/sparsefile.h"

static const char *root;

typedef struct buf {
    uint8_t *data;
    size_t len, cap;
} buf_t;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_seeds: %s\n", what);
    exit(1);
}

static void put(buf_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        if (b->data == NULL)
            die("out of memory");
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void put_le(buf_t *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t byte = (uint8_t)(v >> (8 * i));
        put(b, &byte, 1);
    }
}

static void put_frame(buf_t *b, const void *data, size_t n)
{
    put_le(b, n, 2);
    put(b, data, n);
}

static void save(const char *target, const char *name, const buf_t *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot create a corpus directory");
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
        die("cannot write a seed");
}

static void save_text(const char *target, const char *name, uint8_t selector, const char *text)
{
    buf_t b = {0};
    if (selector != 0xff)
        put(&b, &selector, 1);
    put(&b, text, strlen(text));
    save(target, name, &b);
    free(b.data);
}

static void fill(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = sinf(0.37f * (float)i) * (i % 7 == 0 ? 0.0f : 1.0f);
}

/* ---- codec, keycodec ---- */

/* One seed: the codec actually used, the float count, and the payload. */
static void codec_seed(pst_codec_t codec, const float *v, size_t n, const char *name)
{
    size_t cap = pst_codec_bound(codec, n), len = 0;
    uint8_t *enc = malloc(cap);
    pst_codec_t used = PST_CODEC_RAW;
    if (!enc || pst_codec_encode(codec, v, n, NULL, enc, cap, &len, &used, NULL))
        die("codec encode");
    buf_t b = {0};
    uint8_t head[3] = {(uint8_t)used, (uint8_t)n, (uint8_t)(n >> 8)};
    put(&b, head, 3);
    put(&b, enc, len);
    save("codec", name, &b);
    free(b.data);
    free(enc);
}

/* Every codec over values with a zero every 7th, and over mostly zeros (so that the LZ4 codecs
 * really compress rather than fall back). */
static void codec_seeds(void)
{
    enum { N = 300, N_NONZERO = 40 };
    float v[N], zeros[N] = {0};
    fill(v, N);
    memcpy(zeros, v, N_NONZERO * sizeof *v);
    for (int c = 0; pst_codec_known(c); c++) {
        char name[32];
        snprintf(name, sizeof name, "codec-%d", c);
        codec_seed((pst_codec_t)c, v, N, name);
        snprintf(name, sizeof name, "codec-%d-zeros", c);
        codec_seed((pst_codec_t)c, zeros, N, name);
    }
}

static void keycodec_seeds(void)
{
    pst_keycodec_t *kc = pst_keycodec_new(NULL);
    static uint64_t keys[2000];
    const size_t sizes[] = {1, 17, 2000};
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < sizes[s]; i++)
            keys[i] = (i + 1) * (s == 2 ? 3 : 1000003) + (s == 1 ? (1ull << 60) : 0);
        size_t cap = pst_keycodec_bound(sizes[s]), len = 0;
        uint8_t *enc = malloc(cap);
        if (!kc || !enc || pst_keycodec_encode(kc, keys, sizes[s], enc, cap, &len, NULL, NULL))
            die("keycodec encode");
        buf_t b = {0};
        put_le(&b, sizes[s], 2);
        put(&b, enc, len);
        char name[32];
        snprintf(name, sizeof name, "keys-%zu", sizes[s]);
        save("keycodec", name, &b);
        free(b.data);
        free(enc);
    }
    pst_keycodec_destroy(&kc);
}

/* ---- wire: real messages as sent, captured frame by frame ---- */

static void capture(void *tx, void *rx, pst_wire_t *w, Pst__Header *h, const pst_wire_payload_t *p,
                    const char *name)
{
    if (pst_wire_send(w, tx, NULL, 0, h, p, NULL) != PST_OK)
        die("wire send");
    buf_t b = {0};
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, rx, 0) < 0)
            die("wire capture");
        put_frame(&b, zmq_msg_data(&m), zmq_msg_size(&m));
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    save("wire", name, &b);
    free(b.data);
}

static void wire_seeds(void)
{
    void *ctx = zmq_ctx_new();
    void *tx = zmq_socket(ctx, ZMQ_PAIR), *rx = zmq_socket(ctx, ZMQ_PAIR);
    if (zmq_bind(rx, "inproc://seeds") || zmq_connect(tx, "inproc://seeds"))
        die("wire sockets");
    pst_wire_t *w = pst_wire_new(PST_WIRE_DEALER, 0, NULL);
    float v[64];
    fill(v, 64);
    uint64_t keys[8] = {3, 9, 10, 400, 401, 90000, 1ull << 40, (1ull << 40) + 7};
    pst_wire_payload_t dense = {.values = v}, sparse = {.keys = keys, .values = v};
    for (int c = 0; pst_codec_known(c); c++) {
        Pst__Header h = PST__HEADER__INIT;
        h.op = PST__OP__OP_PUSH;
        h.count = 64;
        h.codec = (Pst__Codec)c;
        h.clock = 3;
        char name[32];
        snprintf(name, sizeof name, "push-dense-%s", pst_codec_name((pst_codec_t)c));
        capture(tx, rx, w, &h, &dense, name);
        Pst__Header s = PST__HEADER__INIT;
        s.op = PST__OP__OP_PUSH;
        s.sparse = true;
        s.count = 8;
        s.row_width = 8;
        s.codec = (Pst__Codec)c;
        snprintf(name, sizeof name, "push-sparse-%s", pst_codec_name((pst_codec_t)c));
        capture(tx, rx, w, &s, &sparse, name);
    }
    float zeros[64] = {0}; /* int8 bytes that LZ4 shrinks, so int8lz4 does not fall back */
    memcpy(zeros, v, 8 * sizeof *v);
    Pst__Header z = PST__HEADER__INIT;
    z.op = PST__OP__OP_PUSH;
    z.count = 64;
    z.codec = PST__CODEC__CODEC_INT8_LZ4;
    capture(tx, rx, w, &z, &(pst_wire_payload_t){.values = zeros}, "push-dense-int8lz4-zeros");
    if (z.codec != PST__CODEC__CODEC_INT8_LZ4)
        die("int8lz4 seed fell back to int8");
    Pst__Header pull = PST__HEADER__INIT;
    pull.op = PST__OP__OP_PULL;
    pull.sparse = true;
    pull.count = 8;
    pull.row_width = 2;
    capture(tx, rx, w, &pull, &sparse, "pull-sparse");
    pull.flags = PST_WIRE_FLAG_KEYS_CACHED;
    pull.key_signature = pst_keycodec_signature(keys, 8);
    capture(tx, rx, w, &pull, NULL, "pull-cached");
    /* auto: a PULL carries it to the server; a push resolves it before the values travel. */
    Pst__Header pull_auto = PST__HEADER__INIT;
    pull_auto.op = PST__OP__OP_PULL;
    pull_auto.count = 64;
    pull_auto.codec = (Pst__Codec)PST_CODEC_AUTO;
    capture(tx, rx, w, &pull_auto, NULL, "pull-dense-auto");
    Pst__Header push_auto = PST__HEADER__INIT;
    push_auto.op = PST__OP__OP_PUSH;
    push_auto.count = 64;
    push_auto.codec = (Pst__Codec)PST_CODEC_AUTO;
    capture(tx, rx, w, &push_auto, &dense, "push-dense-auto");
    Pst__Header err = PST__HEADER__INIT;
    err.op = PST__OP__OP_ERROR;
    err.error = "tensor 1/2 is not registered";
    capture(tx, rx, w, &err, NULL, "error");
    pst_wire_destroy(&w);
    zmq_close(tx);
    zmq_close(rx);
    zmq_ctx_term(ctx);
}

/* ---- model, ensemble, checkpoint files ---- */

static void read_back(const char *path, buf_t *b)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        die("cannot read back a file");
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        put(b, chunk, n);
    fclose(f);
}

static void small_model(pst_modelfile_t *mf, float *params, float *pre)
{
    static pst_layer_spec_t layers[4] = {{.kind = PST_LAYER_DENSE, .units = 3},
                                         {.kind = PST_LAYER_RELU, .units = 0},
                                         {.kind = PST_LAYER_DENSE, .units = 2},
                                         {.kind = PST_LAYER_SOFTMAX, .units = 0}};
    static double classes[2] = {0, 1};
    memset(mf, 0, sizeof *mf);
    mf->n_inputs = 4;
    mf->n_layers = 4;
    mf->layers = layers;
    mf->loss = PST_LOSS_SOFTMAX_CE;
    mf->task = PST_TASK_CLASSIFICATION;
    mf->n_classes = 2;
    mf->class_values = classes;
    mf->n_params = 4 * 3 + 3 + 3 * 2 + 2;
    fill(params, mf->n_params);
    mf->params = params;
    fill(pre, 12);
    mf->shift = pre;
    mf->scale = pre + 4;
    mf->fill = pre + 8;
}

/* The same model with a drift profile of 16 rows (model file field 22, packed). */
static void drift_seed(pst_modelfile_t *mf)
{
    pst_dataset_t *ds = pst_dataset_new(16, 4, PST_TASK_CLASSIFICATION);
    pst_drift_profile_t *profile = NULL;
    if (ds == NULL)
        die("drift dataset");
    fill(ds->x, 64);
    ds->n_classes = 2;
    if (pst_drift_profile_fit_features(ds, &profile, NULL) != PST_OK ||
        pst_drift_profile_fit_labels(profile, ds, NULL) != PST_OK)
        die("drift profile");
    mf->drift = profile;
    uint8_t *packed;
    size_t len;
    if (pst_modelfile_pack(mf, &packed, &len, NULL) != PST_OK)
        die("model pack");
    buf_t b = {.data = packed, .len = len, .cap = len};
    save("modelfile", "mlp-drift", &b);
    free(packed);
    mf->drift = NULL;
    pst_drift_profile_destroy(&profile);
    pst_dataset_destroy(&ds);
}

/* The same model quantised to int8 (Model field 19), calibrated on four rows. */
static void int8_seed(pst_modelfile_t *mf)
{
    float x[16];
    fill(x, 16);
    pst_model_t *model = pst_modelfile_build(mf, 4, NULL);
    pst_quant_t *q = model ? pst_quant_new(model, x, 4, 100.0, NULL) : NULL;
    if (!q)
        die("model quantize");
    mf->quant = q;
    uint8_t *packed;
    size_t len;
    if (pst_modelfile_pack(mf, &packed, &len, NULL) != PST_OK)
        die("int8 model pack");
    buf_t b = {.data = packed, .len = len, .cap = len};
    save("modelfile", "mlp-int8", &b);
    free(packed);
    mf->quant = NULL;
    pst_quant_destroy(&q);
    pst_model_destroy(&model);
}

static void file_seeds(void)
{
    char path[4096];
    float params[32], pre[12];
    pst_modelfile_t mf;
    small_model(&mf, params, pre);
    uint8_t *packed;
    size_t len;
    if (pst_modelfile_pack(&mf, &packed, &len, NULL) != PST_OK)
        die("model pack");
    buf_t b = {.data = packed, .len = len, .cap = len};
    save("modelfile", "mlp", &b);
    snprintf(path, sizeof path, "%s/model.tmp", root);
    if (pst_modelfile_save(&mf, path, NULL) != PST_OK)
        die("model save");
    buf_t mb = {0};
    read_back(path, &mb);
    save("modelfile", "mlp-file", &mb); /* as written: with the checksum trailer */
    free(mb.data);
    remove(path);
    free(packed);
    drift_seed(&mf);
    float pruned[32]; /* every other weight zero: stored as bitmaps and values (field 20) */
    memcpy(pruned, params, mf.n_params * sizeof(float));
    for (size_t i = 0; i < mf.n_params; i += 2)
        pruned[i] = 0.0f;
    pst_modelfile_t pmf = mf;
    pmf.params = pruned;
    if (pst_modelfile_pack(&pmf, &packed, &len, NULL) != PST_OK)
        die("pruned model pack");
    buf_t pb = {.data = packed, .len = len, .cap = len};
    save("modelfile", "mlp-pruned", &pb);
    free(packed);
    int8_seed(&mf);
    pst_modelfile_t members[2] = {mf, mf};
    pst_ensemble_t e = {.method = PST_ENSEMBLE_BAGGING, .n_members = 2, .members = members};
    snprintf(path, sizeof path, "%s/ensemble.tmp", root);
    if (pst_ensemble_save(&e, path, NULL) != PST_OK)
        die("ensemble save");
    buf_t eb = {0};
    read_back(path, &eb);
    save("modelfile", "bagging", &eb);
    free(eb.data);
    remove(path);
}

static void save_sparse(const char *name, const pst_sparsefile_t *sf)
{
    uint8_t *packed;
    size_t len;
    if (pst_sparsefile_pack(sf, &packed, &len, NULL) != PST_OK)
        die("sparse model pack");
    buf_t b = {.data = packed, .len = len, .cap = len};
    save("sparsefile", name, &b);
    free(packed);
}

/* An FM on hashed TSV and a wide & deep on LIBSVM ids, a few rows each. */
static void sparse_seeds(void)
{
    uint64_t keys[5] = {1, 7, 42, 1000, (uint64_t)3 << 20};
    float rows[5 * 3], dense[4 * 2 + 2 + 2 + 1];
    fill(rows, 15);
    fill(dense, 13);
    pst_sparsefile_t fm = {.type = PST_SPARSEFILE_FM,
                           .spec = {PST_SPARSE_FM, 2},
                           .format = PST_SPARSE_TSV_HASHED,
                           .hash = {2, 3, 12, 9, PST_NUMERIC_LOG, false},
                           .n_rows = 5,
                           .keys = keys,
                           .rows = rows,
                           .bias = -0.25f};
    save_sparse("fm", &fm);
    static pst_layer_spec_t hidden[2] = {{.kind = PST_LAYER_DENSE, .units = 2},
                                         {.kind = PST_LAYER_RELU, .units = 0}};
    pst_sparsefile_t wd = {.type = PST_SPARSEFILE_WIDE_DEEP,
                           .spec = {PST_SPARSE_FM, 2},
                           .format = PST_SPARSE_LIBSVM,
                           .n_rows = 5,
                           .keys = keys,
                           .rows = rows,
                           .wd = {.n_fields = 2, .dim = 2, .hidden = hidden, .n_hidden = 2},
                           .hidden = hidden,
                           .dense = dense,
                           .n_dense = 13};
    save_sparse("wide_deep", &wd);
}

static void checkpoint_seeds(void)
{
    static const pst_optim_kind_t kinds[] = {PST_OPT_SGD, PST_OPT_ADAM, PST_OPT_ADAGRAD,
                                             PST_OPT_FTRL};
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/ckpt.tmp", root);
    for (uint8_t k = 0; k < 4; k++) {
        pst_optim_cfg_t oc;
        pst_optim_cfg_defaults(&oc, kinds[k]);
        pst_shard_t *sh = pst_shard_new(0, 1, &oc, NULL);
        float init[10], g[10];
        fill(init, 10);
        fill(g, 10);
        uint64_t keys[3] = {5, 77, 1u << 30};
        uint32_t rows[3];
        if (!sh || pst_shard_add_dense(sh, 1, 0, 10, init, NULL) < 0 ||
            pst_slice_dense_step(pst_shard_slice(sh, 0), g, 0.1f, NULL) != PST_OK ||
            pst_shard_add_sparse(sh, 1, 1, 3, 0.01f, 42, NULL) < 0 ||
            pst_slice_rows(pst_shard_slice(sh, 1), keys, 3, rows, NULL) != PST_OK ||
            pst_slice_sparse_step(pst_shard_slice(sh, 1), rows, 3, g, 0.1f, NULL) != PST_OK ||
            pst_checkpoint_write(dir, sh, 7, NULL) != PST_OK)
            die("checkpoint write");
        pst_shard_destroy(&sh);
        snprintf(path, sizeof path, "%s/server-0.ckpt", dir);
        buf_t file = {0}, b = {0};
        read_back(path, &file);
        put(&b, &k, 1);
        put(&b, file.data, file.len - 4); /* the target appends the CRC itself */
        char name[32];
        snprintf(name, sizeof name, "optim-%u", k);
        save("checkpoint", name, &b);
        free(file.data);
        free(b.data);
        remove(path);
    }
    rmdir(dir);
}

/* ---- data files, configuration ---- */

static void data_seeds(void)
{
    save_text("data", "csv", 0x20, "a,b,y\n1,2,0\n3,NA,1\n5,6,0\n7,,1\n");
    save_text("data", "csv-regression", 0x08, "x1,x2,t\n0.5,1e3,2.5\n-1,2,?\n");
    /* typed columns: a BOM, CRLF, quoted commas, line breaks and quotes, dates, yes/no, text
     * categories and text labels */
    save_text("data", "csv-typed", 0x20,
              "\xEF\xBB\xBFwhen,city,\"note, free\",ok,n,y\r\n"
              "2024-02-29,\"Lyon, FR\",\"a \"\"b\"\"\nc\",yes,1.5,churn\r\n"
              "2024/03/01 10:00,Paris,,no,NA,stay\r\n"
              "2023-12-31T23:59:00,,x,y,3,churn\r\n");
    save_text("data", "libsvm", 1, "+1 1:0.5 3:2 # comment\n-1 2:1\n+1 1:1 4:-3\n");
    buf_t b = {0};
    uint8_t sel = 2;
    put(&b, &sel, 1);
    uint8_t img[16 + 2 * 4] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                               0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t lab[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    put_frame(&b, img, sizeof img);
    put_frame(&b, lab, sizeof lab);
    save("data", "idx", &b);
    free(b.data);
}

static void config_seeds(void)
{
    pst_config_t cfg;
    if (pst_config_init(&cfg) != PST_OK)
        die("config defaults");
    char *text = pst_config_to_string(&cfg);
    save_text("config", "defaults", 0xff, text);
    free(text);
    pst_config_fini(&cfg);
    save_text("config", "mlp", 0xff,
              "name: t\ndata:\n  train: x.csv\n  target: y\nmodel:\n  hidden: [8, 4]\n"
              "optimizer:\n  name: adam\n  lr: 0.01\ntrain:\n  epochs: 2\n");
    save_text("config", "layers", 0xff,
              "model:\n  layers: [dense:4, tanh, dropout:0.1, dense:2]\n");
}

/* ---- server request sequences ---- */

static void descriptor(buf_t *b, int op, int flags, int tensor, int row_width, int count,
                       uint64_t offset, uint64_t total, int clock)
{
    uint8_t d[8] = {(uint8_t)op, (uint8_t)flags, 1, (uint8_t)tensor};
    put(b, d, 4);
    put_le(b, (uint64_t)row_width, 2);
    put_le(b, (uint64_t)count, 2);
    put_le(b, offset, 8);
    put_le(b, total, 8);
    put_le(b, (uint64_t)clock, 4);
    put_le(b, 1, 2);
    uint8_t tail[2] = {16, 3};
    put(b, tail, 2);
}

static void server_seeds(void)
{
    float v[16];
    fill(v, 16);
    for (uint8_t setup = 0; setup < 12; setup += 5) {
        buf_t b = {0};
        put(&b, &setup, 1);
        descriptor(&b, PST__OP__OP_INIT, 0, 0, 0, 16, 0, 16, 0);
        put(&b, v, sizeof v);
        descriptor(&b, PST__OP__OP_INIT, 1 << 5, 0, 0, 16, 0, 16, 0);
        put(&b, v, sizeof v);
        descriptor(&b, PST__OP__OP_PUSH, 0, 0, 0, 16, 0, 16, 0);
        put(&b, v, sizeof v);
        /* Every descriptor is followed by the value bytes of its count (see next_message in
         * fuzz_server.c), pulls too, or the next descriptor would be read as values. */
        descriptor(&b, PST__OP__OP_PULL, 0, 0, 0, 16, 0, 16, 1);
        put(&b, v, sizeof v);
        descriptor(&b, PST__OP__OP_INIT, 1, 1, 2, 0, 0, 0, 0);
        descriptor(&b, PST__OP__OP_PUSH, 1, 1, 2, 3, 0, 0, 0);
        put(&b, v, 6 * sizeof(float));
        descriptor(&b, PST__OP__OP_PULL, 1, 1, 2, 3, 0, 0, 1);
        put(&b, v, 6 * sizeof(float));
        /* The model goes and comes back: requests in between name a tensor no longer held. */
        descriptor(&b, PST_FUZZ_SERVER_OP_DROP, 0, 0, 0, 0, 0, 0, 0);
        descriptor(&b, PST__OP__OP_PUSH, 0, 0, 0, 16, 0, 16, 1);
        put(&b, v, sizeof v);
        descriptor(&b, PST__OP__OP_INIT, 1 << 5, 0, 0, 16, 0, 16, 0);
        put(&b, v, sizeof v);
        descriptor(&b, PST__OP__OP_BARRIER, 0, 0, 0, 0, 0, 0, 1);
        descriptor(&b, PST__OP__OP_HEARTBEAT, 1 << 5, 0, 0, 0, 0, 0, 0);
        descriptor(&b, PST__OP__OP_CHECKPOINT, 0, 0, 0, 0, 0, 0, 1);
        descriptor(&b, PST__OP__OP_SHUTDOWN, 1 << 5, 0, 0, 0, 0, 0, 1);
        char name[32];
        snprintf(name, sizeof name, "session-%u", setup);
        save("server", name, &b);
        free(b.data);
    }
}

/* ---- federated server message sequences (fuzz/fuzz_fedserver.c) ---- */

/* Descriptor kinds of the target (the low 4 bits of byte 0); an other op is FED_OTHER | (op - 1)
 * << 4. Site ids: 0-3 well-formed, 4 empty, 5 "bad id", 6 "*", 7 one too long, 8 raw bytes. */
enum {
    FED_UPDATE = 0,
    FED_DECLINE = 4,
    FED_HEARTBEAT = 5,
    FED_REGISTER = 7,
    FED_CORRUPT = 9,
    FED_RECONNECT = 10,
    FED_OTHER = 11,
};
enum { FED_PARAMS = 8, FED_RAW_ID = 8 };

/* count: 0 the model's size, 4 none, 5 one short, 6 one over, 8 sparse rows of width 1.
 * values: 0 the floats that follow, 2 small ones, 3 a NaN, 4 an infinity, 5 a huge one. */
static void fed_message(buf_t *b, int kind, int conn, int site, int round, int count, int values,
                        int rows)
{
    uint8_t d[16] = {(uint8_t)kind,
                     (uint8_t)(conn | site << 2),
                     (uint8_t)round,
                     (uint8_t)count,
                     (uint8_t)values,
                     (uint8_t)(round % 3),
                     (uint8_t)rows,
                     (uint8_t)(rows >> 8),
                     16,
                     'r',
                     'a',
                     'w',
                     '.',
                     'i',
                     'd',
                     '7'};
    put(b, d, sizeof d);
    /* The target reads as many floats as the message carries (only updates here). */
    static const size_t counts[8] = {FED_PARAMS, FED_PARAMS,     FED_PARAMS,     FED_PARAMS,
                                     0,          FED_PARAMS - 1, FED_PARAMS + 1, 2 * FED_PARAMS};
    if (values == 0 && kind == FED_UPDATE) {
        float v[4 * FED_PARAMS];
        size_t n = counts[count % 8] * ((count & 8) ? 1 + (count >> 4) % 3 : 1);
        fill(v, n);
        put(b, v, n * sizeof *v);
    }
}

static void fed_ready(buf_t *b, int conn, int site)
{
    fed_message(b, FED_REGISTER, conn, site, 0, 0, 2, 0);
    fed_message(b, FED_HEARTBEAT, conn, site, 0, 0, 2, 0);
}

/* Two sites through clean rounds, then everything a hostile site may send. */
static void fed_session(buf_t *b)
{
    fed_ready(b, 0, 0);
    fed_ready(b, 1, 1);
    for (int round = 1; round <= 3; round++) {
        fed_message(b, FED_UPDATE, 0, 0, round, 0, 0, 10);
        fed_message(b, FED_UPDATE, 1, 1, round, 0, 2, 30);
        fed_message(b, FED_HEARTBEAT, 0, 0, 0, 0, 2, 0);
    }
    fed_message(b, FED_DECLINE, 1, 1, 4, 0, 2, 0);
    fed_message(b, FED_OTHER | (PST__OP__OP_PUSH - 1) << 4, 0, 0, 4, 0, 2, 0);
    fed_message(b, FED_OTHER | (PST__OP__OP_STATS - 1) << 4, 0, 0, 4, 0, 2, 0);
    fed_message(b, FED_OTHER | (PST__OP__OP_FED_TASK - 1) << 4, 0, 0, 4, 0, 2, 0);
    for (int site = 4; site <= 7; site++)
        fed_message(b, FED_REGISTER, 2, site, 0, 0, 2, 0);
    fed_message(b, FED_HEARTBEAT, 2, 2, 0, 0, 2, 0);
    fed_message(b, FED_UPDATE, 2, 3, 4, 0, 2, 5);
    fed_message(b, FED_UPDATE, 0, 0, 5, 0, 2, 5);
    fed_message(b, FED_UPDATE, 0, 0, 4, 6, 2, 5);
    fed_message(b, FED_UPDATE, 0, 0, 4, 4, 2, 5);
    fed_message(b, FED_UPDATE, 0, 0, 4, 0, 2, 0);
    fed_message(b, FED_CORRUPT, 0, 0, 4, 0, 2, 5);
    fed_message(b, FED_RECONNECT, 1, 1, 0, 0, 2, 0);
    fed_message(b, FED_HEARTBEAT, 1, 1, 0, 0, 2, 0);
    fed_message(b, FED_UPDATE, 1, 1, 4, 0, 3, 5);
    fed_message(b, FED_UPDATE, 0, 0, 4, 0, 4, 5);
    fed_message(b, FED_UPDATE, 1, 1, 5, 0, 5, 5);
    fed_message(b, FED_UPDATE, 0, 0, 5, 8, 2, 5);
    fed_ready(b, 2, FED_RAW_ID);
    fed_message(b, FED_UPDATE, 2, FED_RAW_ID, 255, 0, 2, 0xffff);
}

/* Two sites expected; rounds with a NaN, an infinity and a huge value among the updates. */
static void fed_rounds(buf_t *b)
{
    fed_ready(b, 0, 0);
    fed_ready(b, 1, 1);
    for (int round = 1; round <= 4; round++) {
        fed_message(b, FED_UPDATE, 0, 0, round, 0, round < 4 ? 2 + round : 2, 10);
        fed_message(b, FED_UPDATE, 1, 1, round, round == 2 ? 8 : 0, 0, 30);
        fed_message(b, FED_HEARTBEAT, 0, 0, 0, 0, 2, 0); /* the next round starts meanwhile */
    }
}

static void fedserver_seeds(void)
{
    /* Setups: expected sites, fraction, min_responses, rule and optimizer, start timeout. */
    const uint8_t setups[] = {0x00, 0x21, 0x4a, 0x63, 0x85};
    for (size_t i = 0; i < sizeof setups; i++) {
        buf_t b = {0};
        put(&b, &setups[i], 1);
        fed_session(&b);
        char name[32];
        snprintf(name, sizeof name, "session-%02x", setups[i]);
        save("fedserver", name, &b);
        free(b.data);
    }
    /* Round 1 waits for two sites; min_responses 2; each rule and optimizer. */
    const uint8_t rounds_setups[] = {0x8a, 0xaa, 0xca, 0xea};
    for (size_t i = 0; i < sizeof rounds_setups; i++) {
        buf_t b = {0};
        put(&b, &rounds_setups[i], 1);
        fed_rounds(&b);
        char name[32];
        snprintf(name, sizeof name, "rounds-%02x", rounds_setups[i]);
        save("fedserver", name, &b);
        free(b.data);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST)
        die("cannot create DIR");
    codec_seeds();
    keycodec_seeds();
    wire_seeds();
    file_seeds();
    sparse_seeds();
    checkpoint_seeds();
    data_seeds();
    config_seeds();
    server_seeds();
    fedserver_seeds();
    pst_fuzz_more_seeds(root);
    return 0;
}
