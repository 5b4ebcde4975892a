/* The running-statistics file of one worker at one clock. */
#include "worker/train/statefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/crc32c.h"

static const char MAGIC[8] = {'P', 'S', 'T', 'S', 'T', 'A', 'T', '1'};
enum { HEADER = 8 + 8 + 8, TRAILER = 4 };

void pst_statefile_path(char *path, size_t n, const char *dir, int worker)
{
    snprintf(path, n, "%s/worker-%d.state", dir, worker);
}

/* Little-endian, as the model file's floats. */
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int pst_statefile_save(const char *path, uint64_t clock, const float *state, size_t n_state,
                       pst_err_t *err)
{
    size_t len = HEADER + n_state * sizeof(float) + TRAILER;
    unsigned char *buf = malloc(len);
    if (buf == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    memcpy(buf, MAGIC, 8);
    put_u64(buf + 8, clock);
    put_u64(buf + 16, (uint64_t)n_state);
    memcpy(buf + HEADER, state, n_state * sizeof(float));
    uint32_t crc = pst_crc32c(0, buf, len - TRAILER);
    for (int i = 0; i < 4; i++)
        buf[len - TRAILER + i] = (unsigned char)(crc >> (8 * i));
    int rc = pst_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

int pst_statefile_load(const char *path, uint64_t clock, float *state, size_t n_state,
                       uint64_t *file_clock, pst_err_t *err)
{
    *file_clock = 0;
    if (access(path, F_OK) != 0)
        return pst_err_set(err, PST_ENOTFOUND, "%s: no such file", path);
    size_t want = HEADER + n_state * sizeof(float) + TRAILER, len = 0;
    unsigned char *buf = NULL;
    int rc = pst_read_file(path, want, &buf, &len, err);
    if (rc == PST_EFORMAT) /* larger than this model's statistics */
        return pst_err_set(err, PST_EFORMAT,
                           "%s: not the running statistics of this model (more than the %zu "
                           "bytes expected)",
                           path, want);
    if (rc != PST_OK)
        return rc;
    uint32_t crc = 0;
    for (int i = 0; len >= want && i < 4; i++)
        crc |= (uint32_t)buf[len - TRAILER + i] << (8 * i);
    if (len != want || memcmp(buf, MAGIC, 8) != 0 || get_u64(buf + 16) != n_state ||
        crc != pst_crc32c(0, buf, len - TRAILER)) {
        free(buf);
        return pst_err_set(err, PST_EFORMAT,
                           "%s: not the running statistics of this model (%zu bytes, expected "
                           "%zu), or damaged",
                           path, len, want);
    }
    *file_clock = get_u64(buf + 8);
    if (*file_clock == clock)
        memcpy(state, buf + HEADER, n_state * sizeof(float));
    free(buf);
    if (*file_clock != clock)
        return pst_err_set(err, PST_ENOTFOUND, "%s: statistics of clock %llu, not %llu", path,
                           (unsigned long long)*file_clock, (unsigned long long)clock);
    return PST_OK;
}
