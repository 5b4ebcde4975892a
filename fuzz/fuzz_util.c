/* Helpers shared by the fuzz targets. */
#include "fuzz/fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

void pst_fuzz_check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz: invariant broken: %s\n", what);
        abort();
    }
}

const char *pst_fuzz_scratch_file(const uint8_t *data, size_t size, const char *suffix)
{
    static char path[512];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/pst-fuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             suffix);
    FILE *f = fopen(path, "wb");
    pst_fuzz_check(f != NULL, "scratch file opens");
    pst_fuzz_check(size == 0 || fwrite(data, 1, size, f) == size, "scratch file written");
    pst_fuzz_check(fclose(f) == 0, "scratch file closed");
    return path;
}

bool pst_fuzz_one_in(const uint8_t *data, size_t size, uint32_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    return n <= 1 || h % n == 0;
}

int pst_fuzz_split_frames(const uint8_t *data, size_t size, pst_fuzz_frame_t *frames, int max,
                          size_t *used)
{
    size_t at = 0;
    int n = 0;
    while (n < max && at + 2 <= size) {
        size_t len = (size_t)data[at] | (size_t)data[at + 1] << 8;
        at += 2;
        if (len > size - at)
            len = size - at;
        frames[n].data = data + at;
        frames[n].len = len;
        n++;
        at += len;
    }
    if (used != NULL)
        *used = at;
    return n;
}

int pst_fuzz_zmq_send(void *sock, const void *data, size_t len, int flags)
{
    int rc;
    while ((rc = zmq_send(sock, data, len, flags)) < 0 && errno == EINTR)
        ;
    return rc;
}
