/* Atomic whole-file writes, whole-file reads and recursive mkdir. */
#include "common/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
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
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
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

int pst_write_file_atomic(const char *path, const void *data, size_t len, pst_err_t *err)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int rc = pst_err_set(err, PST_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int failed = pst_write_all(fd, data, len) != 0 || fsync(fd) != 0;
    int saved = errno;
    failed |= close(fd) != 0;
    if (failed || rename(tmp, path) != 0) {
        if (!failed)
            saved = errno;
        unlink(tmp);
        free(tmp);
        return pst_err_set(err, PST_EIO, "%s: write failed: %s", path, strerror(saved));
    }
    free(tmp);
    fsync_dir_of(path);
    return PST_OK;
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
    unsigned char *buf = malloc(size ? size : 1);
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
