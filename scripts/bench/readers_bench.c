/* Reader throughput: a LIBSVM or Criteo TSV file loaded as a sparse run loads it (text, or the
 * mapped cache), timed with a given thread count; medians over repetitions, and a digest of the
 * rows so that runs with different thread counts can be compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/data/sparsestream.h"
#include "common/log.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* FNV-1a over bytes, folded into h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ULL;
    return h;
}

static uint64_t digest(const pst_dataset_t *d)
{
    size_t nnz = d->row_ptr[d->n_rows];
    uint64_t h = fnv(0xCBF29CE484222325ULL, d->row_ptr, (d->n_rows + 1) * sizeof *d->row_ptr);
    h = fnv(h, d->col_idx, nnz * sizeof *d->col_idx);
    h = fnv(h, d->val, nnz * sizeof *d->val);
    return fnv(h, d->y, d->n_rows * sizeof *d->y);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: readers_bench libsvm|criteo|cache-libsvm|cache-criteo FILE THREADS "
            "REPS\n"
            "Loads FILE REPS times with THREADS parsing threads (0 = all cores) and prints\n"
            "the median seconds (wall, and CPU of all threads), MB/s of FILE's size per\n"
            "wall and per CPU second, rows, entries and a digest of the\n"
            "rows. cache-*: through FILE.pstcache (written by the first, untimed load).\n");
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        usage();
        return 2;
    }
    const char *mode = argv[1], *path = argv[2];
    unsigned threads = (unsigned)atoi(argv[3]);
    int reps = atoi(argv[4]);
    bool criteo = strstr(mode, "criteo") != NULL, cache = strncmp(mode, "cache", 5) == 0;
    if (reps < 1 || (!criteo && strstr(mode, "libsvm") == NULL)) {
        usage();
        return 2;
    }
    pst_log_set_level(PST_LOG_ERROR);
    pst_sparse_source_t src = {
        .path = path,
        .format = criteo ? PST_SPARSE_TSV_HASHED : PST_SPARSE_LIBSVM,
        .hash = {.n_numeric = 13, .n_categorical = 26, .bits = 18, .numeric = PST_NUMERIC_LOG}};
    pst_data_spec_t labels = {.task = PST_DATA_TASK_CLASSIFICATION, .read_threads = threads};
    struct stat sb;
    if (stat(path, &sb) != 0) {
        perror(path);
        return 1;
    }
    pst_dataset_t *d = NULL;
    pst_err_t err;
    if (cache && pst_sparse_load(&src, true, &labels, &d, &err) != PST_OK) {
        fprintf(stderr, "readers_bench: %s\n", err.msg);
        return 1;
    }
    pst_dataset_destroy(&d);
    double times[64], cpu[64];
    reps = reps > 64 ? 64 : reps;
    uint64_t dig = 0;
    size_t rows = 0, nnz = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (pst_sparse_load(&src, cache, &labels, &d, &err) != PST_OK) {
            fprintf(stderr, "readers_bench: %s\n", err.msg);
            return 1;
        }
        times[r] = clock_s(CLOCK_MONOTONIC) - t0;
        cpu[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        dig = digest(d);
        rows = d->n_rows;
        nnz = d->row_ptr[d->n_rows];
        pst_dataset_destroy(&d);
    }
    double med = median(times, reps), med_cpu = median(cpu, reps), mb = (double)sb.st_size / 1e6;
    printf("%s threads=%u median_s=%.4f mb=%.1f mb_per_s=%.1f cpu_s=%.4f mb_per_cpu_s=%.1f "
           "rows=%zu nnz=%zu digest=%016llx\n",
           mode, threads, med, mb, mb / med, med_cpu, mb / med_cpu, rows, nnz,
           (unsigned long long)dig);
    return 0;
}
