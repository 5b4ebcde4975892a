/* Elastic BSP: reductions through server 0, rejoining at the servers' clock, and the report of
 * drops. */
#include "app/mpi/elastic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "common/log.h"
#include "common/net/reduce_layout.h"
#include "worker/train/rejoin.h"

int pst_elastic_reduce_at(pst_remote_t *r, uint64_t clock, double *vals, int n, pst_err_t *err)
{
    if (clock != r->reduce_clock) {
        r->reduce_clock = clock;
        r->reduce_index = 0;
    }
    uint64_t index = r->reduce_index++;
    size_t need = (size_t)n + (size_t)r->n_workers * PST_REDUCE_WORKER_FIELDS;
    if (need > r->reduce_cap) {
        double *grown = realloc(r->reduce_buf, need * sizeof *grown);
        if (grown == NULL)
            return pst_err_set(err, PST_ENOMEM, "out of memory for a reduction of %d values", n);
        r->reduce_buf = grown;
        r->reduce_cap = need;
    }
    size_t got = 0;
    bool late = false;
    int timeout_ms = (int)(r->reduce_timeout_s * 1000);
    int rc = pst_psclient_reduce(r->client, clock, index, vals, (uint32_t)n, r->reduce_buf,
                                 r->reduce_cap, &got, &late, timeout_ms, err);
    if (rc != PST_OK)
        return rc;
    if (late && got == 0) /* the servers' clock waits for pst_elastic_rejoin_clock */
        return pst_err_set(err, PST_ESTATE,
                           "the reduction at clock %llu (#%llu) ended long before this worker "
                           "came back: it rejoins at the servers' clock",
                           (unsigned long long)clock, (unsigned long long)index);
    if (got != need)
        return pst_err_set(err, PST_EPROTO, "a reduction of %d values came back with %zu", n, got);
    r->reduce_got = got;
    memcpy(vals, r->reduce_buf, (size_t)n * sizeof *vals);
    if (late)
        pst_info("the reduction at clock %llu had completed without this worker: its figures are "
                 "the other workers'",
                 (unsigned long long)clock);
    return PST_OK;
}

int pst_elastic_reduce(pst_remote_t *r, double *vals, int n, pst_err_t *err)
{
    return pst_elastic_reduce_at(r, r->clock, vals, n, err);
}

uint64_t pst_elastic_rejoin_clock(void *ctx, uint64_t clock)
{
    pst_remote_t *r = ctx;
    uint64_t to = pst_train_rejoin_servers_clock(r->client, clock);
    if (to <= clock)
        return clock;
    /* The pulls of this step are in flight into the model: they land before it moves on. */
    for (int k = 0; k < r->n_parts; k++) {
        pst_remote_part_t *p = &r->parts[k];
        if (!p->pull_pending)
            continue;
        p->pull_pending = false;
        pst_err_t scratch;
        if (pst_psclient_wait(r->client, p->pull_ticket, &scratch) != PST_OK)
            pst_warn("rejoining: %s", scratch.msg);
    }
    r->clock = to;
    return to;
}

bool pst_elastic_finish(pst_remote_t *r, int rc, double *vals, int n, int worker, bool *missing)
{
    pst_err_t err = {0};
    if (r->client == NULL)
        return true;
    if (rc != PST_OK) {
        /* the others learn it from this worker's figures at their final agreement; it does not
         * wait for them (its SHUTDOWN next lets them go on without it) */
        r->reduce_timeout_s = PST_ELASTIC_FAILED_SEND_S;
        pst_elastic_reduce_at(r, PST_ELASTIC_FINAL_CLOCK, vals, n, &err);
        return true;
    }
    if (pst_elastic_reduce_at(r, PST_ELASTIC_FINAL_CLOCK, vals, n, &err) != PST_OK) {
        pst_app_error("worker %d: the final agreement: %s", worker, err.msg);
        return true;
    }
    for (int k = 0; missing != NULL && k < r->n_workers; k++)
        *missing = *missing || !pst_elastic_contributed(r, n, k);
    /* The lead writes the run directory: without it the run has no outputs, whatever the others
     * trained. */
    if (!pst_elastic_contributed(r, n, 0)) {
        pst_app_error("worker %d: the lead worker (0) was dropped and did not come back: the run "
                      "has no report or model",
                      worker);
        return true;
    }
    return vals[0] > 0;
}

bool pst_elastic_contributed(const pst_remote_t *r, int n, int w)
{
    size_t at = (size_t)n + (size_t)w * PST_REDUCE_WORKER_FIELDS + PST_REDUCE_CONTRIBUTED;
    return r->reduce_buf != NULL && at < r->reduce_got && r->reduce_buf[at] != 0;
}

/* The rows worker w trains in the clocks [from, until): its share's rows of each step. */
static double rows_between(long share, long steps, long batch, uint64_t from, uint64_t until)
{
    double rows = 0;
    for (uint64_t c = from; c < until; c++) {
        long step = (long)(c % (uint64_t)steps), left = share - step * batch;
        rows += left <= 0 ? 0 : left < batch ? left : batch;
    }
    return rows;
}

int pst_elastic_drops(const pst_remote_t *r, int n, const long *share_rows, long steps_per_epoch,
                      long batch, uint64_t final_clock, pst_elastic_drop_t *out, int cap)
{
    int found = 0;
    for (int w = 0; w < r->n_workers; w++) {
        size_t at = (size_t)n + (size_t)w * PST_REDUCE_WORKER_FIELDS;
        if (r->reduce_buf == NULL || at + PST_REDUCE_WORKER_FIELDS > r->reduce_got)
            break;
        const double *f = r->reduce_buf + at;
        int kept = (int)fmin(f[PST_REDUCE_N_DROPS], PST_REDUCE_MAX_DROPS);
        for (int d = 0; d < kept && found < cap; d++) {
            pst_elastic_drop_t *x = &out[found++];
            double back = f[PST_REDUCE_DROPS + 2 * d + 1];
            x->worker = w;
            x->dropped_at = (uint64_t)f[PST_REDUCE_DROPS + 2 * d];
            x->rejoined = back >= 0;
            x->until = x->rejoined ? (uint64_t)back : final_clock;
            if (x->until < x->dropped_at)
                x->until = x->dropped_at;
            x->rows_not_seen =
                rows_between(share_rows[w], steps_per_epoch, batch, x->dropped_at, x->until);
        }
    }
    return found;
}

void pst_elastic_report(cJSON *extra, const pst_elastic_drop_t *drops, int n_drops)
{
    cJSON *el = cJSON_AddObjectToObject(extra, "elastic");
    cJSON *list = el ? cJSON_AddArrayToObject(el, "dropped_workers") : NULL;
    double total = 0;
    for (int i = 0; list != NULL && i < n_drops; i++) {
        const pst_elastic_drop_t *d = &drops[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "worker", d->worker);
        cJSON_AddNumberToObject(o, "dropped_at_clock", (double)d->dropped_at);
        if (d->rejoined)
            cJSON_AddNumberToObject(o, "rejoined_at_clock", (double)d->until);
        else
            cJSON_AddNullToObject(o, "rejoined_at_clock");
        cJSON_AddBoolToObject(o, "rejoined", d->rejoined);
        cJSON_AddNumberToObject(o, "clocks_missed", (double)(d->until - d->dropped_at));
        cJSON_AddNumberToObject(o, "rows_not_seen", d->rows_not_seen);
        cJSON_AddItemToArray(list, o);
        total += d->rows_not_seen;
        if (d->rejoined)
            pst_warn(
                "worker %d dropped at clock %llu, rejoined at clock %llu: %.0f of its rows not "
                "seen in clocks %llu..%llu",
                d->worker, (unsigned long long)d->dropped_at, (unsigned long long)d->until,
                d->rows_not_seen, (unsigned long long)d->dropped_at,
                (unsigned long long)d->until - 1);
        else
            pst_warn(
                "worker %d dropped at clock %llu, did not rejoin: %.0f of its rows not seen in "
                "clocks %llu..%llu",
                d->worker, (unsigned long long)d->dropped_at, d->rows_not_seen,
                (unsigned long long)d->dropped_at, (unsigned long long)d->until - 1);
    }
    if (el != NULL)
        cJSON_AddNumberToObject(el, "rows_not_seen", total);
}
