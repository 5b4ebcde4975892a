/* Whole text files in memory (mapped or decompressed) and their line-aligned parallel ranges. */
#include "common/data/textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/data/dataload.h"

#define BYTES_PER_AUTO_THREAD (1u << 20)
#define MAX_THREADS 256

void pst_text_file_close(pst_text_file_t *f)
{
    if (f->map != NULL)
        munmap(f->map, f->map_len);
    free(f->owned);
    memset(f, 0, sizeof *f);
}

static bool is_gzip(int fd)
{
    unsigned char magic[2];
    return pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

int pst_text_file_open(pst_text_file_t *f, const char *path, pst_err_t *err)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || is_gzip(fd)) {
        /* gzip, or not a regular file (a pipe, a device): read it through zlib as before */
        close(fd);
        char *buf;
        size_t len;
        int rc = pst_data_read_file(path, &buf, &len, err);
        if (rc != PST_OK)
            return rc;
        f->owned = buf;
        f->data = buf;
        f->len = len;
        return PST_OK;
    }
    f->len = (size_t)sb.st_size;
    f->data = "";
    if (f->len > 0) {
        void *map = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) {
            int rc = pst_err_set(err, PST_EIO, "%s: cannot map: %s", path, strerror(errno));
            close(fd);
            memset(f, 0, sizeof *f);
            return rc;
        }
        madvise(map, f->len, MADV_SEQUENTIAL);
        f->map = map;
        f->map_len = f->len;
        f->data = map;
    }
    close(fd);
    return PST_OK;
}

unsigned pst_text_thread_count(unsigned requested, size_t len)
{
    size_t n = requested;
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (size_t)cores : 1;
        if (n > len / BYTES_PER_AUTO_THREAD + 1)
            n = len / BYTES_PER_AUTO_THREAD + 1;
    }
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    if (n > len)
        n = len;
    return n > 0 ? (unsigned)n : 1;
}

size_t pst_text_range_start(const char *data, size_t len, unsigned i, unsigned n)
{
    if (i == 0)
        return 0;
    if (i >= n)
        return len;
    size_t offset = (size_t)((unsigned __int128)len * i / n);
    if (data[offset - 1] == '\n')
        return offset;
    const char *nl = memchr(data + offset, '\n', len - offset);
    return nl ? (size_t)(nl - data) + 1 : len;
}

void pst_text_advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (bytes < 2 * huge)
        return;
    uintptr_t first = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t last = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (last > first)
        madvise((void *)first, last - first, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

typedef struct run_arg {
    void (*fn)(void *arg);
    void *arg;
} run_arg_t;

static void *run_thread(void *p)
{
    run_arg_t *r = p;
    r->fn(r->arg);
    return NULL;
}

static atomic_bool run_inline;

void pst_text_set_inline(bool on)
{
    atomic_store(&run_inline, on);
}

void pst_text_run_parallel(void (*fn)(void *arg), void *args, size_t arg_size, unsigned n)
{
    if (n == 0)
        return;
    if (atomic_load(&run_inline)) {
        for (unsigned k = 0; k < n && k < MAX_THREADS; k++)
            fn((char *)args + k * arg_size);
        return;
    }
    pthread_t tid[MAX_THREADS];
    run_arg_t run[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    for (unsigned k = 1; k < n; k++) {
        run[k] = (run_arg_t){fn, (char *)args + k * arg_size};
        started[k] = pthread_create(&tid[k], NULL, run_thread, &run[k]) == 0;
    }
    fn(args);
    for (unsigned k = 1; k < n; k++) {
        if (started[k])
            pthread_join(tid[k], NULL);
        else
            fn((char *)args + k * arg_size);
    }
}
