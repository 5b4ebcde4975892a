/* Reductions among the workers through server 0, and the clock a stale push reveals. */
#include <string.h>

#include "common/net/reduce_layout.h"
#include "worker/psclient_internal.h"

int pst_psclient_reduce(pst_psclient_t *self, uint64_t clock, uint64_t index, const double *vals,
                        uint32_t n, double *out, size_t cap, size_t *got, bool *late,
                        int timeout_ms, pst_err_t *err)
{
    if (n == 0 || n > PST_REDUCE_MAX_VALUES || cap < n)
        return pst_err_set(err, PST_EINVAL, "client: a reduction of %u values into %zu", n, cap);
    pst_psclient_op_t *op = pst_psclient_op_start(self, PST__OP__OP_BARRIER, -1, err);
    if (op == NULL)
        return PST_ESTATE;
    op->sums = out;
    op->sums_cap = cap;
    for (uint32_t s = 1; s < self->cfg.n_servers; s++) {
        op->replied[s] = 1;
        op->n_waiting--;
    }
    Pst__Header h = pst_psclient_request_header(NULL, PST__OP__OP_BARRIER, clock);
    h.offset = index;
    h.count = n;
    pst_wire_payload_t p = {0};
    p.blob = (const uint8_t *)vals;
    p.blob_len = (size_t)n * sizeof *vals;
    int rc = pst_psclient_send_to(self, 0, op, &h, &p, err);
    if (rc != PST_OK)
        return rc;
    pst_ticket_t ticket = op->seq;
    rc = pst_psclient_wait_for(self, ticket, timeout_ms, err);
    /* the slot is released now, but a finished op's fields stay until the slot is reused */
    *got = rc == PST_OK ? op->sums_got : 0;
    *late = rc == PST_OK && op->late;
    return rc;
}

uint64_t pst_psclient_take_stale_clock(pst_psclient_t *self)
{
    uint64_t c = self->stale_clock;
    self->stale_clock = 0;
    return c;
}
