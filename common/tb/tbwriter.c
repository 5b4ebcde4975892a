/* TensorBoard event files: Event messages packed by protoc-c, appended as TFRecords. */
#include "common/tb/tbwriter.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/tb/tfrecord.h"
#include "tensorboard.pb-c.h"

#define DEFAULT_BUCKETS 30

struct pst_tbwriter {
    int fd;
    char path[1200];
};

static double wall_time(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Packs ev and appends it as one record. */
static int write_event(pst_tbwriter_t *w, const Tensorflow__Event *ev, pst_err_t *err)
{
    size_t len = tensorflow__event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    tensorflow__event__pack(ev, buf);
    int rc = pst_tfrecord_write(w->fd, buf, len, err);
    free(buf);
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", w->path);
}

/* Opens a fresh event file name in dir: O_EXCL, with a counter against two writers of one
 * process starting in the same second. */
static int open_event_file(pst_tbwriter_t *w, const char *dir, pst_err_t *err)
{
    static int counter;
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    long now = (long)wall_time();
    for (int attempt = 0; attempt < 1000; attempt++) {
        int n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010ld.%s.%ld.%d", dir, now, host,
                 (long)getpid(), n);
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (w->fd >= 0)
            return PST_OK;
        if (errno != EEXIST)
            return pst_err_set(err, PST_EIO, "%s: cannot create: %s", w->path, strerror(errno));
    }
    return pst_err_set(err, PST_EIO, "%s: no free event file name", dir);
}

pst_tbwriter_t *pst_tbwriter_new(const char *dir, pst_err_t *err)
{
    if (pst_mkdir_p(dir, err) != PST_OK)
        return NULL;
    pst_tbwriter_t *w = calloc(1, sizeof *w);
    if (!w) {
        pst_err_set(err, PST_ENOMEM, "out of memory");
        return NULL;
    }
    w->fd = -1;
    Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
    ev.wall_time = wall_time();
    ev.what_case = TENSORFLOW__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    if (open_event_file(w, dir, err) != PST_OK || write_event(w, &ev, err) != PST_OK)
        pst_tbwriter_destroy(&w);
    return w;
}

void pst_tbwriter_destroy(pst_tbwriter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->fd >= 0)
        close((*self_p)->fd);
    free(*self_p);
    *self_p = NULL;
}

const char *pst_tbwriter_path(const pst_tbwriter_t *w)
{
    return w->path;
}

/* Wraps values in a Summary event at step and writes it. */
static int write_summary(pst_tbwriter_t *w, int64_t step, Tensorflow__Summary__Value **values,
                         size_t n, pst_err_t *err)
{
    Tensorflow__Summary summary = TENSORFLOW__SUMMARY__INIT;
    summary.n_value = n;
    summary.value = values;
    Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
    ev.wall_time = wall_time();
    ev.step = step;
    ev.what_case = TENSORFLOW__EVENT__WHAT_SUMMARY;
    ev.summary = &summary;
    return write_event(w, &ev, err);
}

int pst_tbwriter_scalars(pst_tbwriter_t *w, int64_t step, const char *const *tags,
                         const double *values, int n, pst_err_t *err)
{
    if (n <= 0)
        return PST_OK;
    Tensorflow__Summary__Value *vals = calloc((size_t)n, sizeof *vals);
    Tensorflow__Summary__Value **ptrs = calloc((size_t)n, sizeof *ptrs);
    int rc = PST_OK;
    if (!vals || !ptrs)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    size_t used = 0;
    for (int i = 0; rc == PST_OK && i < n; i++) {
        if (!isfinite(values[i]))
            continue;
        Tensorflow__Summary__Value v = TENSORFLOW__SUMMARY__VALUE__INIT;
        v.tag = (char *)tags[i];
        v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
        v.simple_value = (float)values[i];
        vals[used] = v;
        ptrs[used] = &vals[used];
        used++;
    }
    if (rc == PST_OK && used > 0)
        rc = write_summary(w, step, ptrs, used, err);
    free(vals);
    free(ptrs);
    return rc;
}

int pst_tbwriter_scalar(pst_tbwriter_t *w, const char *tag, int64_t step, double value,
                        pst_err_t *err)
{
    return pst_tbwriter_scalars(w, step, &tag, &value, 1, err);
}

/* Fills h's statistics and equal-width buckets (limits and counts, n_buckets each). */
static void fill_histogram(Tensorflow__HistogramProto *h, const float *v, size_t n, int n_buckets,
                           double *limits, double *counts)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        double x = v[i];
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        h->num += 1;
        h->sum += x;
        h->sum_squares += x * x;
    }
    if (h->num == 0)
        lo = hi = 0;
    h->min = lo;
    h->max = hi;
    double width = (hi - lo) / n_buckets;
    for (int b = 0; b < n_buckets; b++) {
        limits[b] = b == n_buckets - 1 ? hi : lo + width * (b + 1);
        counts[b] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        int b = width > 0 ? (int)((v[i] - lo) / width) : 0;
        counts[b < n_buckets ? b : n_buckets - 1] += 1;
    }
    h->n_bucket_limit = h->n_bucket = (size_t)n_buckets;
    h->bucket_limit = limits;
    h->bucket = counts;
}

int pst_tbwriter_histogram(pst_tbwriter_t *w, const char *tag, int64_t step, const float *v,
                           size_t n, int buckets, pst_err_t *err)
{
    int nb = buckets > 0 ? buckets : DEFAULT_BUCKETS;
    double *limits = malloc((size_t)nb * sizeof *limits);
    double *counts = malloc((size_t)nb * sizeof *counts);
    if (!limits || !counts) {
        free(limits);
        free(counts);
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    Tensorflow__HistogramProto h = TENSORFLOW__HISTOGRAM_PROTO__INIT;
    fill_histogram(&h, v, n, nb, limits, counts);
    Tensorflow__Summary__Value val = TENSORFLOW__SUMMARY__VALUE__INIT;
    val.tag = (char *)tag;
    val.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_HISTO;
    val.histo = &h;
    Tensorflow__Summary__Value *ptr = &val;
    int rc = write_summary(w, step, &ptr, 1, err);
    free(limits);
    free(counts);
    return rc;
}

int pst_tbwriter_plugin(pst_tbwriter_t *w, const char *tag, int64_t step, const char *plugin_name,
                        const uint8_t *content, size_t content_len, pst_err_t *err)
{
    Tensorflow__SummaryMetadata__PluginData pd = TENSORFLOW__SUMMARY_METADATA__PLUGIN_DATA__INIT;
    pd.plugin_name = (char *)plugin_name;
    pd.content.data = (uint8_t *)content;
    pd.content.len = content_len;
    Tensorflow__SummaryMetadata md = TENSORFLOW__SUMMARY_METADATA__INIT;
    md.plugin_data = &pd;
    Tensorflow__TensorShapeProto__Dim dim = TENSORFLOW__TENSOR_SHAPE_PROTO__DIM__INIT;
    Tensorflow__TensorShapeProto__Dim *dims = &dim;
    Tensorflow__TensorShapeProto shape = TENSORFLOW__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = 1;
    shape.dim = &dims;
    Tensorflow__TensorProto tensor = TENSORFLOW__TENSOR_PROTO__INIT;
    tensor.dtype = 1; /* DT_FLOAT */
    tensor.tensor_shape = &shape;
    Tensorflow__Summary__Value val = TENSORFLOW__SUMMARY__VALUE__INIT;
    val.tag = (char *)tag;
    val.metadata = &md;
    val.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_TENSOR;
    val.tensor = &tensor;
    Tensorflow__Summary__Value *ptr = &val;
    return write_summary(w, step, &ptr, 1, err);
}
