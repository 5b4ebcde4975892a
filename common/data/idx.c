/* IDX reader: big-endian headers, pixel data streamed in large blocks through zlib. */
#include "common/data/idx.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { IDX_BLOCK = 1 << 20 };

char *pst_idx_labels_path(const char *images_path)
{
    static const char from[] = "images-idx3", to[] = "labels-idx1";
    const char *hit = NULL;
    for (const char *p = images_path; (p = strstr(p, from)) != NULL; p++)
        hit = p;
    if (hit == NULL)
        return NULL;
    char *out = strdup(images_path);
    if (out != NULL)
        memcpy(out + (hit - images_path), to, sizeof to - 1);
    return out;
}

/* Reads exactly len bytes at stream offset *offset; error names how many arrived. */
static int read_exact(gzFile f, const char *path, void *buf, size_t len, size_t *offset,
                      const char *what, pst_err_t *err)
{
    size_t got = 0;
    while (got < len) {
        size_t want = len - got > IDX_BLOCK ? IDX_BLOCK : len - got;
        int n = gzread(f, (char *)buf + got, (unsigned)want);
        if (n < 0) {
            int zerr;
            return pst_err_set(err, PST_EIO, "%s: byte %zu: read failed: %s", path, *offset + got,
                               gzerror(f, &zerr));
        }
        if (n == 0)
            return pst_err_set(err, PST_EFORMAT,
                               "%s: byte %zu: truncated file: %s needs %zu bytes, got %zu", path,
                               *offset + got, what, len, got);
        got += (size_t)n;
    }
    *offset += len;
    return PST_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An open IDX stream after its header: dims[0..n_dims). */
typedef struct idx_file {
    gzFile f;
    const char *path;
    size_t offset; /* bytes consumed so far */
    uint32_t dims[3];
} idx_file_t;

static int idx_open(idx_file_t *file, const char *path, uint32_t magic, const char *kind,
                    pst_err_t *err)
{
    file->path = path;
    file->offset = 0;
    file->f = gzopen(path, "rb");
    if (file->f == NULL)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(file->f, (unsigned)pst_data_buffer_bytes(path, IDX_BLOCK));
    unsigned char head[16];
    size_t n_dims = magic & 0xff, head_len = 4 + 4 * n_dims;
    int rc = read_exact(file->f, path, head, 4, &file->offset, "the magic number", err);
    if (rc != PST_OK)
        return rc;
    if (be32(head) != magic)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: byte 0: wrong magic 0x%08x, expected 0x%08x (IDX uint8 %s)", path,
                           be32(head), magic, kind);
    rc = read_exact(file->f, path, head + 4, head_len - 4, &file->offset, "the header", err);
    for (size_t i = 0; rc == PST_OK && i < n_dims; i++)
        file->dims[i] = be32(head + 4 + 4 * i);
    return rc;
}

static void idx_close(idx_file_t *file)
{
    if (file->f != NULL)
        gzclose(file->f);
    file->f = NULL;
}

/* Streams n_values uint8 pixels into x as floats, one block at a time. */
static int read_pixels(idx_file_t *file, float *x, size_t n_values, pst_err_t *err)
{
    size_t block_len = n_values < IDX_BLOCK ? n_values : IDX_BLOCK;
    unsigned char *block = malloc(block_len > 0 ? block_len : 1);
    if (block == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", file->path);
    int rc = PST_OK;
    size_t done = 0, start = file->offset;
    while (rc == PST_OK && done < n_values) {
        size_t len = n_values - done > block_len ? block_len : n_values - done;
        int n = gzread(file->f, block, (unsigned)len);
        if (n < 0) {
            int zerr;
            rc = pst_err_set(err, PST_EIO, "%s: byte %zu: read failed: %s", file->path,
                             start + done, gzerror(file->f, &zerr));
        } else if (n == 0) {
            rc = pst_err_set(err, PST_EFORMAT,
                             "%s: byte %zu: truncated file: %zu pixel bytes expected, got %zu",
                             file->path, start + done, n_values, done);
        }
        for (int i = 0; i < n; i++)
            x[done + (size_t)i] = (float)block[i];
        done += n > 0 ? (size_t)n : 0;
    }
    file->offset = start + done;
    free(block);
    return rc;
}

/* For an uncompressed file, refuses a header that promises more bytes than the file holds,
 * before anything is allocated for them. */
static int check_plain_size(idx_file_t *file, size_t n_values, pst_err_t *err)
{
    struct stat st;
    if (!gzdirect(file->f) || stat(file->path, &st) != 0 || !S_ISREG(st.st_mode))
        return PST_OK;
    size_t size = (size_t)st.st_size;
    if (size - file->offset < n_values)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: byte %zu: truncated file: %zu pixel bytes expected, got %zu",
                           file->path, size, n_values, size - file->offset);
    return PST_OK;
}

/* Opens and checks the images header; *n images of rows*cols pixels. */
static int open_images(idx_file_t *file, const char *path, size_t *n, size_t *width, pst_err_t *err)
{
    int rc = idx_open(file, path, PST_IDX_IMAGES_MAGIC, "images", err);
    if (rc != PST_OK)
        return rc;
    *n = file->dims[0];
    *width = (size_t)file->dims[1] * file->dims[2];
    if (*n == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: byte 4: empty file (0 images)", path);
    if (*width == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: byte 8: images of %u x %u pixels", path,
                           file->dims[1], file->dims[2]);
    if (*width > SIZE_MAX / sizeof(float) / *n)
        return pst_err_set(err, PST_ERANGE, "%s: byte 4: %zu images of %zu pixels is too large",
                           path, *n, *width);
    return check_plain_size(file, *n * *width, err);
}

/* Reads n labels into y, checking them against k (0 = any); *max_label gets the largest. */
static int read_labels(const char *path, size_t n, int k, float *y, int *max_label,
                       const char *images_path, pst_err_t *err)
{
    idx_file_t file = {0};
    unsigned char *labels = NULL;
    int rc = idx_open(&file, path, PST_IDX_LABELS_MAGIC, "labels", err);
    if (rc == PST_OK && file.dims[0] != n)
        rc = pst_err_set(err, PST_EFORMAT, "%s: byte 4: %u labels but %s holds %zu images", path,
                         file.dims[0], images_path, n);
    if (rc == PST_OK && (labels = malloc(n)) == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    if (rc == PST_OK)
        rc = read_exact(file.f, path, labels, n, &file.offset, "the labels", err);
    *max_label = 0;
    for (size_t i = 0; rc == PST_OK && i < n; i++) {
        if (k > 0 && labels[i] >= k)
            rc = pst_err_set(err, PST_ERANGE, "%s: byte %zu: label %u out of range (%d classes)",
                             path, 8 + i, labels[i], k);
        y[i] = (float)labels[i];
        if (labels[i] > *max_label)
            *max_label = labels[i];
    }
    free(labels);
    idx_close(&file);
    return rc;
}

static int set_classes(pst_dataset_t *d, int n_classes, const char *path, pst_err_t *err)
{
    d->task = PST_TASK_CLASSIFICATION;
    d->n_classes = n_classes;
    d->class_values = malloc((size_t)n_classes * sizeof *d->class_values);
    d->target_name = strdup("label");
    if (d->class_values == NULL || d->target_name == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    for (int c = 0; c < n_classes; c++)
        d->class_values[c] = c;
    return PST_OK;
}

static int read_pair(const char *images, const char *labels, int k, pst_dataset_t **out,
                     pst_err_t *err)
{
    idx_file_t file = {0};
    size_t n = 0, width = 0;
    pst_dataset_t *d = NULL;
    int rc = open_images(&file, images, &n, &width, err), max_label = 0;
    if (rc == PST_OK && (d = pst_dataset_new(n, width, PST_TASK_CLASSIFICATION)) == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory for %zu x %zu pixels", images, n,
                         width);
    if (rc == PST_OK)
        rc = read_pixels(&file, d->x, n * width, err);
    idx_close(&file);
    if (rc == PST_OK)
        rc = read_labels(labels, n, k, d->y, &max_label, images, err);
    if (rc == PST_OK)
        rc = set_classes(d, k > 0 ? k : max_label + 1, images, err);
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}

int pst_idx_read(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    if (spec->task == PST_DATA_TASK_REGRESSION)
        return pst_err_set(err, PST_EINVAL,
                           "%s: IDX labels are classes; regression is not supported", spec->path);
    char *derived = NULL;
    const char *labels = spec->labels_path;
    if (labels == NULL || labels[0] == '\0') {
        labels = derived = pst_idx_labels_path(spec->path);
        if (labels == NULL)
            return pst_err_set(err, PST_EINVAL,
                               "%s: cannot derive the labels file (no \"images-idx3\" in the "
                               "name); set labels_path",
                               spec->path);
    }
    /* A class mapping from a training file fixes the class count of this one. */
    int k = spec->n_classes > 0 ? spec->n_classes : spec->class_values ? spec->n_class_values : 0;
    int rc = read_pair(spec->path, labels, k, out, err);
    free(derived);
    return rc;
}
