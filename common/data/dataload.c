/* Dataset loading: format inference, dispatch to the readers, whole-file reads, target encoding. */
#include "common/data/dataload.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdint.h>
#include <zlib.h>

#include "common/data/csv.h"
#include "common/data/idx.h"
#include "common/data/libsvm.h"
#include "common/log.h"

enum { READ_CHUNK = 1 << 20 };

size_t pst_data_buffer_bytes(const char *path, size_t max)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size >= max)
        return max;
    size_t bytes = PST_DATA_MIN_BUFFER;
    while (bytes < (size_t)st.st_size && bytes < max)
        bytes *= 2;
    return bytes < max ? bytes : max;
}

/* Half the physical memory: a larger text file could not be parsed next to its rows anyway. */
static size_t max_text_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return SIZE_MAX;
    return (size_t)pages / 2 * (size_t)page;
}

/* Checks the bytes read so far: *line_start moves to after the last newline in
 * data[from..used); false when the line since then is longer than PST_DATA_MAX_LINE. */
static bool lines_bounded(const char *data, size_t from, size_t used, size_t *line_start)
{
    for (size_t i = used; i > from; i--) {
        if (data[i - 1] == '\n') {
            *line_start = i;
            break;
        }
    }
    return used - *line_start <= PST_DATA_MAX_LINE;
}

int pst_data_read_file(const char *path, char **buf, size_t *len, pst_err_t *err)
{
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(f, READ_CHUNK);
    size_t cap = READ_CHUNK, used = 0, line_start = 0, limit = max_text_bytes();
    char *data = malloc(cap + 1);
    int rc = PST_OK;
    while (data != NULL) {
        if (!lines_bounded(data, line_start, used, &line_start)) {
            rc = pst_err_set(err, PST_EFORMAT,
                             "%s: byte %zu: a line longer than %zu MiB: not a text data file", path,
                             line_start, PST_DATA_MAX_LINE >> 20);
            break;
        }
        if (used > limit) {
            rc = pst_err_set(err, PST_EFORMAT,
                             "%s: more than %zu MiB of text, half of this machine's memory", path,
                             limit >> 20);
            break;
        }
        if (cap - used < READ_CHUNK) {
            char *grown = realloc(data, 2 * cap + 1);
            if (grown == NULL)
                break;
            data = grown;
            cap *= 2;
        }
        int got = gzread(f, data + used, READ_CHUNK);
        if (got < 0) {
            int zerr;
            rc = pst_err_set(err, PST_EIO, "%s: byte %zu: read failed: %s", path, used,
                             gzerror(f, &zerr));
            break;
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    gzclose(f);
    if (rc == PST_OK && data == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory after %zu bytes", path, used);
    if (rc != PST_OK) {
        free(data);
        return rc;
    }
    data[used] = '\0';
    *buf = data;
    *len = used;
    return PST_OK;
}

/* ---- format inference ---- */

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && strncasecmp(s + len - n, suffix, n) == 0;
}

static const char *canonical_format(const char *format)
{
    if (strcasecmp(format, "csv") == 0)
        return "csv";
    if (strcasecmp(format, "idx") == 0)
        return "idx";
    if (strcasecmp(format, "libsvm") == 0 || strcasecmp(format, "svmlight") == 0 ||
        strcasecmp(format, "svm") == 0)
        return "libsvm";
    return NULL;
}

/* Whether the file (gzip-compressed or not) starts with an IDX magic number of unsigned bytes:
 * 0x00 0x00 0x08 and 1 to 4 dimensions. The content decides, never the name. */
static bool looks_like_idx(const char *path)
{
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return false;
    unsigned char head[4];
    bool idx = gzread(f, head, sizeof head) == (int)sizeof head && head[0] == 0 && head[1] == 0 &&
               head[2] == 0x08 && head[3] >= 1 && head[3] <= 4;
    gzclose(f);
    return idx;
}

/* Format from the file name alone, or NULL. A trailing ".gz" is ignored. */
static const char *format_from_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (ends_with(base, len, ".gz"))
        len -= 3;
    if (ends_with(base, len, ".csv"))
        return "csv";
    if (ends_with(base, len, ".svm") || ends_with(base, len, ".libsvm") ||
        ends_with(base, len, ".txt"))
        return "libsvm";
    return NULL;
}

/* True for "label idx:val ..." with at least one feature. */
static bool looks_like_libsvm(const char *line)
{
    char *end;
    strtod(line, &end);
    if (end == line || !isspace((unsigned char)*end))
        return false;
    const char *p = end;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    strtoul(p, &end, 10);
    if (*end != ':')
        return false;
    const char *value = end + 1;
    strtod(value, &end);
    return end != value && (*end == '\0' || isspace((unsigned char)*end));
}

/* Reads the first line that is neither blank nor a '#' comment into line. False if none. */
static bool first_content_line(const char *path, char *line, int cap)
{
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return false;
    bool found = false;
    for (int tries = 0; !found && tries < 64 && gzgets(f, line, cap) != NULL; tries++) {
        const char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        found = *p != '\0' && *p != '#';
    }
    gzclose(f);
    return found;
}

int pst_data_infer_format(const pst_data_spec_t *spec, const char **format, pst_err_t *err)
{
    if (spec->format != NULL && spec->format[0] != '\0') {
        *format = canonical_format(spec->format);
        if (*format == NULL)
            return pst_err_set(err, PST_EINVAL,
                               "%s: unknown data format '%s' (expected csv, idx or libsvm)",
                               spec->path, spec->format);
        return PST_OK;
    }
    *format = looks_like_idx(spec->path) ? "idx" : format_from_name(spec->path);
    if (*format != NULL)
        return PST_OK;
    char line[4096];
    if (!first_content_line(spec->path, line, sizeof line))
        return pst_err_set(err, PST_EIO, "%s: cannot read a first line to infer the data format",
                           spec->path);
    if (looks_like_libsvm(line)) {
        *format = "libsvm";
        return PST_OK;
    }
    return pst_err_set(err, PST_EINVAL,
                       "%s: cannot infer the data format from the name or the first line; "
                       "set format to csv, idx or libsvm",
                       spec->path);
}

int pst_data_load(const pst_data_spec_t *spec, pst_dataset_t **out, pst_err_t *err)
{
    if (spec == NULL || spec->path == NULL || out == NULL)
        return pst_err_set(err, PST_EINVAL, "data load: no path given");
    const char *format;
    int rc = pst_data_infer_format(spec, &format, err);
    if (rc != PST_OK)
        return rc;
    if (strcmp(format, "csv") == 0)
        rc = pst_csv_read(spec, out, err);
    else if (strcmp(format, "idx") == 0)
        rc = pst_idx_read(spec, out, err);
    else
        rc = pst_libsvm_read(spec, out, err);
    if (rc == PST_OK)
        pst_debug("%s: %zu rows x %zu features (%s)", spec->path, (*out)->n_rows,
                  (*out)->n_features, format);
    return rc;
}

/* ---- targets ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct values of raw[0..n) into a new array; count in *n_distinct. */
static double *distinct_sorted(const double *raw, size_t n, size_t *n_distinct)
{
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL)
        return NULL;
    memcpy(v, raw, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || v[i] != v[k - 1])
            v[k++] = v[i];
    *n_distinct = k;
    return v;
}

static bool all_integral(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != floor(v[i]))
            return false;
    return true;
}

/* Index of the first raw value that is not an integer in [0, k), or n if none. */
static size_t first_outside_range(const double *raw, size_t n, int k)
{
    for (size_t i = 0; i < n; i++)
        if (raw[i] != floor(raw[i]) || raw[i] < 0 || raw[i] >= k)
            return i;
    return n;
}

/* Writes "FILE:LINE" or "FILE: row R" for row i into where. */
static void row_location(char *where, size_t cap, const char *path, const size_t *lines, size_t i)
{
    if (lines != NULL)
        snprintf(where, cap, "%s:%zu", path, lines[i]);
    else
        snprintf(where, cap, "%s: row %zu", path, i + 1);
}

/* Maps every raw label to its index in classes[0..k) (sorted); error for a label not found. */
static int map_to_classes(pst_dataset_t *d, const double *raw, const double *classes, size_t k,
                          const size_t *lines, const char *path, pst_err_t *err)
{
    for (size_t i = 0; i < d->n_rows; i++) {
        const double *hit = bsearch(&raw[i], classes, k, sizeof *classes, cmp_double);
        if (hit == NULL) {
            char where[600];
            row_location(where, sizeof where, path, lines, i);
            return pst_err_set(err, PST_ERANGE,
                               "%s: label %g out of range: not one of the %zu known classes", where,
                               raw[i], k);
        }
        d->y[i] = (float)(hit - classes);
    }
    return PST_OK;
}

static bool sorted_strictly(const double *v, int n)
{
    for (int i = 1; i < n; i++)
        if (!(v[i - 1] < v[i]))
            return false;
    return true;
}

/* Picks the class list: the caller's, 0..K-1, or this file's distinct labels. Caller frees. */
static int choose_classes(const double *raw, size_t n, const size_t *lines,
                          const pst_data_spec_t *spec, const char *path, double **classes,
                          size_t *k, pst_err_t *err)
{
    if (spec->class_values != NULL) {
        if (spec->n_class_values <= 0 || !sorted_strictly(spec->class_values, spec->n_class_values))
            return pst_err_set(err, PST_EINVAL, "%s: class_values must be non-empty and sorted",
                               path);
        *k = (size_t)spec->n_class_values;
        *classes = malloc(*k * sizeof **classes);
        if (*classes != NULL)
            memcpy(*classes, spec->class_values, *k * sizeof **classes);
    } else if (spec->n_classes > 0 && first_outside_range(raw, n, spec->n_classes) == n) {
        *k = (size_t)spec->n_classes;
        *classes = malloc(*k * sizeof **classes);
        for (size_t c = 0; *classes != NULL && c < *k; c++)
            (*classes)[c] = (double)c;
    } else {
        *classes = distinct_sorted(raw, n, k);
        if (*classes != NULL && spec->n_classes > 0 && *k != (size_t)spec->n_classes) {
            size_t i = first_outside_range(raw, n, spec->n_classes);
            char where[600];
            row_location(where, sizeof where, path, lines, i);
            free(*classes);
            *classes = NULL;
            return pst_err_set(err, PST_ERANGE,
                               "%s: label %g out of range: expected %d classes (labels 0..%d or "
                               "exactly %d distinct values), found %zu distinct values",
                               where, raw[i], spec->n_classes, spec->n_classes - 1, spec->n_classes,
                               *k);
        }
    }
    if (*classes == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory mapping classes", path);
    return PST_OK;
}

/* Classification unless told otherwise; auto looks at the distinct values. */
static int resolve_task(const double *raw, size_t n, const pst_data_spec_t *spec, pst_task_t *task)
{
    if (spec->task == PST_DATA_TASK_REGRESSION) {
        *task = PST_TASK_REGRESSION;
        return PST_OK;
    }
    if (spec->task == PST_DATA_TASK_CLASSIFICATION || spec->n_classes > 0 ||
        spec->class_values != NULL) {
        *task = PST_TASK_CLASSIFICATION;
        return PST_OK;
    }
    size_t k;
    double *v = distinct_sorted(raw, n, &k);
    if (v == NULL)
        return PST_ENOMEM;
    bool classes = k <= PST_DATA_AUTO_MAX_CLASSES && all_integral(v, k);
    free(v);
    *task = classes ? PST_TASK_CLASSIFICATION : PST_TASK_REGRESSION;
    return PST_OK;
}

int pst_data_set_targets(pst_dataset_t *d, const double *raw, const size_t *lines,
                         const pst_data_spec_t *spec, const char *path, pst_err_t *err)
{
    int rc = resolve_task(raw, d->n_rows, spec, &d->task);
    if (rc != PST_OK)
        return pst_err_set(err, rc, "%s: out of memory resolving the task", path);
    free(d->class_values);
    d->class_values = NULL;
    d->n_classes = 0;
    if (d->task == PST_TASK_REGRESSION) {
        for (size_t i = 0; i < d->n_rows; i++)
            d->y[i] = (float)raw[i];
        return PST_OK;
    }
    double *classes;
    size_t k;
    rc = choose_classes(raw, d->n_rows, lines, spec, path, &classes, &k, err);
    if (rc != PST_OK)
        return rc;
    rc = map_to_classes(d, raw, classes, k, lines, path, err);
    if (rc != PST_OK) {
        free(classes);
        return rc;
    }
    d->class_values = classes;
    d->n_classes = (int)k;
    return PST_OK;
}

int pst_data_from_csr(pst_data_csr_t *csr, const pst_data_spec_t *spec, const char *path,
                      pst_dataset_t **out, pst_err_t *err)
{
    *out = NULL;
    if (csr->n_rows == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: no data rows", path);
    pst_dataset_t *d = pst_dataset_new(csr->n_rows, 0, PST_TASK_REGRESSION);
    if (d == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    free(d->x);
    d->x = NULL;
    d->n_features = csr->n_features;
    d->row_ptr = csr->row_ptr;
    d->col_idx = csr->col_idx;
    d->val = csr->val;
    csr->row_ptr = NULL;
    csr->col_idx = NULL;
    csr->val = NULL;
    int rc = pst_data_set_targets(d, csr->raw, csr->lines, spec, path, err);
    if (rc != PST_OK)
        pst_dataset_destroy(&d);
    *out = d;
    return rc;
}
