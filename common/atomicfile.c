/* Atomic file writes (streamed or whole), whole-file reads and recursive mkdir. */
#include "common/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int pst_write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

#define DEFAULT_WRITER_BUFFER (4u << 20)

struct pst_atomic_writer {
    int fd;
    char *path, *tmp;
    char *buf;
    size_t cap, len; /* buffer size, bytes buffered */
    uint64_t flushed;
};

static int writer_flush(pst_atomic_writer_t *w, pst_err_t *err)
{
    if (w->len > 0 && pst_write_all(w->fd, w->buf, w->len) != 0)
        return pst_err_set(err, PST_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->flushed += w->len;
    w->len = 0;
    return PST_OK;
}

int pst_atomic_writer_open(const char *path, size_t buffer_bytes, pst_atomic_writer_t **out,
                           pst_err_t *err)
{
    *out = NULL;
    pst_atomic_writer_t *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 32;
    if (w == NULL || (w->tmp = malloc(n)) == NULL || (w->path = strdup(path)) == NULL) {
        pst_atomic_writer_destroy(&w);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    w->fd = -1;
    w->cap = buffer_bytes ? buffer_bytes : DEFAULT_WRITER_BUFFER;
    snprintf(w->tmp, n, "%s.tmp.XXXXXX", path);
    w->buf = malloc(w->cap);
    if (w->buf == NULL) {
        pst_atomic_writer_destroy(&w);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    w->fd = mkstemp(w->tmp); /* a unique name: two writers of one path never share it */
    if (w->fd < 0) {
        int rc = pst_err_set(err, PST_EIO, "%s: cannot create: %s", path, strerror(errno));
        w->tmp[0] = '\0';
        pst_atomic_writer_destroy(&w);
        return rc;
    }
    fchmod(w->fd, 0644);
    *out = w;
    return PST_OK;
}

int pst_atomic_writer_write(pst_atomic_writer_t *w, const void *data, size_t len, pst_err_t *err)
{
    if (len > w->cap - w->len) {
        int rc = writer_flush(w, err);
        if (rc != PST_OK)
            return rc;
    }
    if (len >= w->cap) {
        if (pst_write_all(w->fd, data, len) != 0)
            return pst_err_set(err, PST_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
        w->flushed += len;
        return PST_OK;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    return PST_OK;
}

int pst_atomic_writer_reserve(pst_atomic_writer_t *w, size_t len, char **p, pst_err_t *err)
{
    if (len > w->cap)
        return pst_err_set(err, PST_EINVAL, "%s: reserve of %zu bytes exceeds the buffer", w->path,
                           len);
    if (len > w->cap - w->len) {
        int rc = writer_flush(w, err);
        if (rc != PST_OK)
            return rc;
    }
    *p = w->buf + w->len;
    return PST_OK;
}

void pst_atomic_writer_advance(pst_atomic_writer_t *w, size_t used)
{
    w->len += used;
}

uint64_t pst_atomic_writer_offset(const pst_atomic_writer_t *w)
{
    return w->flushed + w->len;
}

int pst_atomic_writer_patch(pst_atomic_writer_t *w, uint64_t offset, const void *data, size_t len,
                            pst_err_t *err)
{
    if (offset + len > pst_atomic_writer_offset(w))
        return pst_err_set(err, PST_EINVAL, "%s: patch beyond the written bytes", w->path);
    int rc = writer_flush(w, err);
    const char *p = data;
    while (rc == PST_OK && len > 0) {
        ssize_t n = pwrite(w->fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pst_err_set(err, PST_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
        p += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    return rc;
}

int pst_atomic_writer_commit(pst_atomic_writer_t **w_p, pst_err_t *err)
{
    pst_atomic_writer_t *w = *w_p;
    int rc = writer_flush(w, err);
    if (rc == PST_OK && fsync(w->fd) != 0)
        rc = pst_err_set(err, PST_EIO, "%s: fsync failed: %s", w->tmp, strerror(errno));
    if (close(w->fd) != 0 && rc == PST_OK)
        rc = pst_err_set(err, PST_EIO, "%s: close failed: %s", w->tmp, strerror(errno));
    w->fd = -1;
    if (rc == PST_OK && rename(w->tmp, w->path) != 0)
        rc = pst_err_set(err, PST_EIO, "%s: rename failed: %s", w->path, strerror(errno));
    if (rc == PST_OK) {
        fsync_dir_of(w->path);
        w->tmp[0] = '\0'; /* nothing left to unlink */
    }
    pst_atomic_writer_destroy(w_p);
    return rc;
}

void pst_atomic_writer_destroy(pst_atomic_writer_t **w_p)
{
    if (w_p == NULL || *w_p == NULL)
        return;
    pst_atomic_writer_t *w = *w_p;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp != NULL && w->tmp[0] != '\0' && w->path != NULL)
        unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w->buf);
    free(w);
    *w_p = NULL;
}

int pst_write_file_atomic(const char *path, const void *data, size_t len, pst_err_t *err)
{
    pst_atomic_writer_t *w;
    int rc = pst_atomic_writer_open(path, 1, &w, err); /* one byte: data goes straight through */
    if (rc == PST_OK)
        rc = pst_atomic_writer_write(w, data, len, err);
    if (rc == PST_OK)
        return pst_atomic_writer_commit(&w, err);
    pst_atomic_writer_destroy(&w);
    return rc;
}

int pst_read_file(const char *path, size_t max_len, unsigned char **data, size_t *len,
                  pst_err_t *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return pst_err_set(err, PST_EIO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > max_len) {
        fclose(f);
        return pst_err_set(err, PST_EFORMAT, "%s: %lld bytes is larger than the %zu allowed", path,
                           (long long)sb.st_size, max_len);
    }
    size_t size = (size_t)sb.st_size;
    unsigned char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    if (got != size) {
        free(buf);
        return pst_err_set(err, PST_EIO, "%s: short read", path);
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return PST_OK;
}

int pst_mkdir_p(const char *path, pst_err_t *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return pst_err_set(err, PST_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return pst_err_set(err, PST_EIO, "%s: cannot create directory: %s", buf,
                                   strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return PST_OK;
}
