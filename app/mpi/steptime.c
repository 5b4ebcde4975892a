/* Per-step figures of a distributed training run: workers' waits and bytes, servers' time. */
#include "app/mpi/steptime.h"

#include <math.h>

#include "app/rundir.h"
#include "common/log.h"

void pst_steptime_worker(const pst_psclient_stats_t *from, const pst_psclient_stats_t *to,
                         double steps, double seconds, double out[PST_STEPTIME_N])
{
    out[PST_STEPTIME_STEPS] = steps;
    out[PST_STEPTIME_SECONDS] = seconds;
    out[PST_STEPTIME_PULL_WAIT_MS] = to->pull_wait_ms - from->pull_wait_ms;
    out[PST_STEPTIME_PUSH_WAIT_MS] = to->push_wait_ms - from->push_wait_ms;
    out[PST_STEPTIME_BYTES_SENT] = (double)(to->bytes_wire_sent - from->bytes_wire_sent);
    out[PST_STEPTIME_BYTES_RECEIVED] =
        (double)(to->bytes_wire_received - from->bytes_wire_received);
}

static double per(double total, double n)
{
    return n > 0 ? total / n : NAN;
}

void pst_steptime_json(cJSON *comm, const double sum[PST_STEPTIME_N])
{
    double steps = sum[PST_STEPTIME_STEPS];
    double step_ms = per(sum[PST_STEPTIME_SECONDS] * 1000, steps);
    double pull_ms = per(sum[PST_STEPTIME_PULL_WAIT_MS], steps);
    double push_ms = per(sum[PST_STEPTIME_PUSH_WAIT_MS], steps);
    cJSON *step = cJSON_AddObjectToObject(comm, "step");
    pst_json_add_number(step, "steps", steps);
    pst_json_add_number(step, "step_ms", step_ms);
    pst_json_add_number(step, "compute_ms", step_ms - pull_ms - push_ms);
    pst_json_add_number(step, "pull_wait_ms", pull_ms);
    pst_json_add_number(step, "push_wait_ms", push_ms);
    pst_json_add_number(step, "bytes_sent", per(sum[PST_STEPTIME_BYTES_SENT], steps));
    pst_json_add_number(step, "bytes_received", per(sum[PST_STEPTIME_BYTES_RECEIVED], steps));
}

void pst_steptime_server_json(cJSON *comm, const double counters[PST_STAT_COUNT], double steps)
{
    double pushes = counters[PST_STAT_PUSHES], pulls = counters[PST_STAT_PULLS];
    double push_us = counters[PST_STAT_PUSH_US], pull_us = counters[PST_STAT_PULL_US];
    cJSON *server = cJSON_AddObjectToObject(comm, "server");
    pst_json_add_number(server, "pushes", pushes);
    pst_json_add_number(server, "pulls", pulls);
    pst_json_add_number(server, "push_us", per(push_us, pushes));
    pst_json_add_number(server, "pull_us", per(pull_us, pulls));
    pst_json_add_number(server, "busy_ms_per_step", per((push_us + pull_us) / 1000, steps));
    pst_json_add_number(server, "bytes_in", counters[PST_STAT_BYTES_WIRE_IN]);
    pst_json_add_number(server, "bytes_out", counters[PST_STAT_BYTES_WIRE_OUT]);
}

void pst_steptime_query_servers(cJSON *comm, pst_psclient_t *client, int n_servers, double steps)
{
    double sum[PST_STAT_COUNT] = {0};
    for (int s = 0; s < n_servers; s++) {
        uint64_t c[PST_STAT_COUNT];
        pst_err_t err = {0};
        if (pst_psclient_server_stats(client, (uint32_t)s, c, &err) != PST_OK) {
            pst_warn("server %d: no timings: %s", s, err.msg);
            return;
        }
        for (int i = 0; i < PST_STAT_COUNT; i++)
            sum[i] += (double)c[i];
    }
    pst_steptime_server_json(comm, sum, steps);
}
