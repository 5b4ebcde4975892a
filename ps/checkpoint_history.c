/* Checkpoint history: clock-named checkpoints beside the one a resume reads, the oldest pruned
 * once a newer one is complete (cluster.keep_checkpoints). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "ps/checkpoint.h"

int pst_checkpoint_history_path(const char *dir, uint32_t server, uint64_t clock, char *buf,
                                size_t len, pst_err_t *err)
{
    int n = snprintf(buf, len, "%s/server-%u-clock-%" PRIu64 ".ckpt", dir, server, clock);
    if (n < 0 || (size_t)n >= len)
        return pst_err_set(err, PST_EINVAL, "checkpoint: directory name too long: %s", dir);
    return PST_OK;
}

/* Points latest at the file history: a hard link under a temporary name renamed over latest, so
 * a reader sees the old or the new checkpoint, never a partial one. */
static int link_latest(const char *history, const char *latest, pst_shard_t *shard, uint64_t clock,
                       pst_err_t *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.link-%ld", latest, (long)getpid());
    unlink(tmp);
    if (link(history, tmp) == 0) {
        if (rename(tmp, latest) == 0)
            return PST_OK;
        int e = errno;
        unlink(tmp);
        return pst_err_set(err, PST_EIO, "checkpoint: rename %s: %s", latest, strerror(e));
    }
    /* A file system without hard links: the same bytes written a second time. */
    return pst_checkpoint_write_file(latest, shard, clock, err);
}

/* The clock of a name "server-S-clock-C.ckpt" of this server, or false. */
static bool history_clock(const char *name, uint32_t server, uint64_t *clock)
{
    char prefix[64];
    int n = snprintf(prefix, sizeof prefix, "server-%u-clock-", server);
    if (strncmp(name, prefix, (size_t)n) != 0)
        return false;
    const char *p = name + n;
    char *end = NULL;
    if (*p < '0' || *p > '9')
        return false;
    errno = 0;
    unsigned long long c = strtoull(p, &end, 10);
    if (errno != 0 || strcmp(end, ".ckpt") != 0)
        return false;
    *clock = (uint64_t)c;
    return true;
}

static int by_clock_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Deletes this server's clock-named checkpoints except the newest keep, and never newest (the one
 * just written, even when older clocks of an earlier run sort above it). */
static void prune(const char *dir, uint32_t server, uint64_t newest, uint32_t keep)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    uint64_t *clocks = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t c;
        if (!history_clock(e->d_name, server, &c) || c == newest)
            continue;
        if (n == cap) {
            size_t grown_cap = cap ? 2 * cap : 16;
            uint64_t *grown = realloc(clocks, grown_cap * sizeof *grown);
            if (grown == NULL)
                break;
            clocks = grown;
            cap = grown_cap;
        }
        clocks[n++] = c;
    }
    closedir(d);
    if (clocks != NULL)
        qsort(clocks, n, sizeof *clocks, by_clock_desc);
    /* keep counts the newest, which is not in the list */
    for (size_t i = keep > 0 ? keep - 1 : n; i < n; i++) {
        char path[4200];
        if (pst_checkpoint_history_path(dir, server, clocks[i], path, sizeof path, NULL) ==
                PST_OK &&
            unlink(path) != 0 && errno != ENOENT)
            pst_warn("checkpoint: cannot delete %s: %s", path, strerror(errno));
    }
    free(clocks);
}

int pst_checkpoint_write_kept(const char *dir, pst_shard_t *shard, uint64_t clock, uint32_t keep,
                              pst_err_t *err)
{
    uint32_t server = pst_shard_server(shard);
    char history[4200], latest[4096];
    int rc = pst_checkpoint_history_path(dir, server, clock, history, sizeof history, err);
    if (rc == PST_OK)
        rc = pst_checkpoint_path(dir, server, latest, sizeof latest, err);
    if (rc == PST_OK)
        rc = pst_mkdir_p(dir, err);
    if (rc == PST_OK)
        rc = pst_checkpoint_write_file(history, shard, clock, err);
    if (rc == PST_OK)
        rc = link_latest(history, latest, shard, clock, err);
    if (rc == PST_OK && keep > 0)
        prune(dir, server, clock, keep);
    return rc;
}
