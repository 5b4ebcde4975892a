/* fed serve's checkpoint after every round, and the restart that carries on from it. */
#include "app/fed/fedresume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "ps/fed/fedstate.h"

#define CKPT_DIR "checkpoints"
#define CKPT_FILE "fed-server.ckpt"
/* metrics.jsonl holds a line per round: far below this. */
#define METRICS_MAX_BYTES ((size_t)1 << 30)

bool pst_fedresume_found(const char *out)
{
    if (out == NULL || out[0] == '\0')
        return false;
    char path[1200];
    snprintf(path, sizeof path, "%s/" CKPT_DIR "/" CKPT_FILE, out);
    return access(path, R_OK) == 0;
}

int pst_fedresume_save(pst_fedserve_t *fs, pst_err_t *err)
{
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/" CKPT_DIR, fs->s->rundir.path);
    snprintf(path, sizeof path, "%s/" CKPT_FILE, dir);
    int rc = pst_mkdir_p(dir, err);
    if (rc == PST_OK)
        rc = pst_fedstate_write(fs->coord, pst_fedserver_trust(fs->srv), path, err);
    return rc == PST_OK ? PST_OK : pst_err_prefix(err, rc, "fed server checkpoint: ");
}

/* Whether a metrics line belongs to a round after `round` (a torn line counts as one). */
static bool after_round(const char *line, size_t len, uint64_t round)
{
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "round");
    bool after = !cJSON_IsNumber(r) || r->valuedouble > (double)round;
    cJSON_Delete(j);
    return after;
}

/* metrics.jsonl keeps the lines of rounds 1..round, then is appended to again. */
static int keep_rounds(pst_rundir_t *rd, uint64_t round, pst_err_t *err)
{
    if (rd->metrics != NULL)
        fclose(rd->metrics);
    rd->metrics = NULL;
    char file[1100];
    pst_rundir_file(rd, "metrics.jsonl", file, sizeof file);
    unsigned char *text = NULL;
    size_t len = 0, kept = 0;
    int rc = pst_read_file(file, METRICS_MAX_BYTES, &text, &len, err);
    for (size_t at = 0; rc == PST_OK && at < len;) {
        const unsigned char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl != NULL ? (size_t)(nl - text) + 1 : len;
        if (nl != NULL && !after_round((const char *)text + at, end - at, round)) {
            memmove(text + kept, text + at, end - at);
            kept += end - at;
        }
        at = end;
    }
    if (rc == PST_OK)
        rc = pst_write_file_atomic(file, text, kept, err);
    free(text);
    if (rc == PST_OK && (rd->metrics = fopen(file, "a")) == NULL)
        rc = pst_err_set(err, PST_EIO, "%s: cannot reopen: %s", file, strerror(errno));
    return rc;
}

int pst_fedresume_restore(pst_fedserve_t *fs, uint64_t *round, pst_err_t *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/" CKPT_DIR "/" CKPT_FILE, fs->s->rundir.path);
    int rc = pst_fedstate_read(fs->coord, pst_fedserver_trust(fs->srv), path, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "fed serve cannot resume: ");
    *round = pst_fedcoord_round(fs->coord);
    int n_sites = pst_fedround_n_sites(pst_fedcoord_sites(fs->coord));
    /* The final model is written after the sites were sent the final weights: without it, a
     * server stopped after its last round owes them those weights. */
    char model[1100];
    pst_rundir_file(&fs->s->rundir, "model.pst", model, sizeof model);
    bool owed = pst_fedcoord_finished(fs->coord) && access(model, F_OK) != 0;
    pst_fedserver_expect_sites(fs->srv, pst_fedcoord_finished(fs->coord) && !owed ? 0 : n_sites);
    fs->report.rounds_run = (int)*round;
    pst_info("fed server: resuming after round %llu with %d registered sites (%s)%s",
             (unsigned long long)*round, n_sites, path,
             owed ? "; the run is over: its sites get the final weights as they come back" : "");
    return keep_rounds(&fs->s->rundir, *round, err);
}
