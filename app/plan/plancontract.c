/* Plans' namespaces declared to the servers over MPI: a worker rank's message is the job's own (a
 * stranger cannot join MPI_COMM_WORLD), unlike any field of a ZeroMQ header. */
#include "app/plan/plancontract.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/mpi/mpijob.h"
#include "common/clock.h"
#include "common/log.h"

#define TAG_DECLARE 74  /* group leader -> every server: a namespace's tensors */
#define TAG_DECLARED 75 /* server -> group leader: its answer */

/* A declaration: this head, then n_tensors pst_contract_tensor_t (plain fixed-width fields). */
typedef struct declare_head {
    uint32_t model_id, n_tensors;
} declare_head_t;

/* A server's answer: PST_OK, or the code and reason of its refusal. */
typedef struct declare_answer {
    int32_t rc;
    char msg[sizeof(((pst_err_t *)0)->msg)];
} declare_answer_t;

int pst_plancontract_begin(pst_plancontract_t *pc, const pst_ranks_t *r, pst_server_t *srv,
                           size_t max_live, pst_err_t *err)
{
    memset(pc, 0, sizeof *pc);
    pc->ranks = r;
    pc->server = srv;
    if (srv == NULL)
        return PST_OK;
    int rc = pst_server_expect_namespaces(srv, max_live, err);
    if (rc == PST_OK)
        pst_info("server %d accepts INIT only in the namespaces the plan's tasks declare (at "
                 "most %zu at once)",
                 r->rank, max_live);
    return rc;
}

/* The declaration in buf (len bytes from rank source) checked and set on the server. */
static int take_declaration(pst_plancontract_t *pc, const char *buf, size_t len, int source,
                            pst_err_t *err)
{
    declare_head_t head;
    if (source < pc->ranks->n_servers || source >= pc->ranks->size)
        return pst_err_set(err, PST_EPROTO, "rank %d is not a worker", source);
    if (len < sizeof head)
        return pst_err_set(err, PST_EPROTO, "a declaration of %zu bytes", len);
    memcpy(&head, buf, sizeof head);
    if (head.n_tensors == 0 || head.n_tensors > PST_CONTRACT_MAX_TENSORS ||
        len != sizeof head + (size_t)head.n_tensors * sizeof(pst_contract_tensor_t))
        return pst_err_set(err, PST_EPROTO, "a declaration of %u tensors in %zu bytes",
                           head.n_tensors, len);
    pst_contract_t ns;
    pst_contract_init(&ns);
    int rc = PST_OK;
    for (uint32_t i = 0; i < head.n_tensors && rc == PST_OK; i++) {
        pst_contract_tensor_t t;
        memcpy(&t, buf + sizeof head + i * sizeof t, sizeof t);
        rc = pst_contract_add(&ns, &t, err);
    }
    if (rc == PST_OK)
        rc = pst_server_declare_namespace(pc->server, head.model_id, &ns, err);
    pst_contract_fini(&ns);
    return rc;
}

/* Receives the declaration waiting from st's source and answers it. */
static void handle_declaration(pst_plancontract_t *pc, const MPI_Status *st)
{
    int len = 0;
    MPI_Get_count(st, MPI_BYTE, &len);
    char *buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf == NULL) {
        /* a message left unreceived would hold its declarer (and its group) forever */
        pst_error("server %d: out of memory for a declaration of %d bytes", pc->ranks->rank, len);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Recv(buf, len, MPI_BYTE, st->MPI_SOURCE, TAG_DECLARE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    pst_err_t err = {0};
    int rc = take_declaration(pc, buf, (size_t)len, st->MPI_SOURCE, &err);
    free(buf);
    declare_answer_t answer = {.rc = rc};
    if (rc != PST_OK) {
        pc->n_refused++;
        snprintf(answer.msg, sizeof answer.msg, "server %d: %.480s", pc->ranks->rank, err.msg);
        pst_warn("%s (declared by rank %d)", answer.msg, st->MPI_SOURCE);
    } else {
        pc->n_declared++;
    }
    MPI_Send(&answer, (int)sizeof answer, MPI_BYTE, st->MPI_SOURCE, TAG_DECLARED, MPI_COMM_WORLD);
}

void pst_plancontract_idle(pst_plancontract_t *pc)
{
    for (;;) {
        if (pc == NULL || pc->server == NULL)
            break;
        MPI_Status st;
        int waiting = 0;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_DECLARE, MPI_COMM_WORLD, &waiting, &st);
        if (!waiting)
            break;
        handle_declaration(pc, &st);
    }
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

void pst_plancontract_wait(pst_plancontract_t *pc, MPI_Request *req)
{
    int done = 0;
    for (MPI_Test(req, &done, MPI_STATUS_IGNORE); !done; MPI_Test(req, &done, MPI_STATUS_IGNORE))
        pst_plancontract_idle(pc);
    if (pc != NULL && pc->server != NULL)
        pst_info("server %d: the plan's tasks declared %llu namespaces (%llu refused), %zu still "
                 "declared",
                 pc->ranks->rank, (unsigned long long)pc->n_declared,
                 (unsigned long long)pc->n_refused, pst_server_namespaces_live(pc->server));
}

/* The leader's part: the declaration sent to every server, and their answers. */
static int send_declaration(pst_plancontract_t *pc, uint32_t model_id, const pst_contract_t *ns,
                            pst_err_t *err)
{
    int n_servers = pc->ranks->n_servers;
    declare_head_t head = {model_id, (uint32_t)ns->n};
    size_t len = sizeof head + ns->n * sizeof *ns->tensors;
    char *buf = malloc(len);
    declare_answer_t *answers = calloc((size_t)n_servers, sizeof *answers);
    MPI_Request *reqs = calloc(2 * (size_t)n_servers, sizeof *reqs);
    if (buf == NULL || answers == NULL || reqs == NULL) {
        free(buf), free(answers), free(reqs);
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    memcpy(buf, &head, sizeof head);
    memcpy(buf + sizeof head, ns->tensors, ns->n * sizeof *ns->tensors);
    for (int s = 0; s < n_servers; s++) {
        MPI_Irecv(&answers[s], (int)sizeof answers[s], MPI_BYTE, s, TAG_DECLARED, MPI_COMM_WORLD,
                  &reqs[2 * s]);
        MPI_Isend(buf, (int)len, MPI_BYTE, s, TAG_DECLARE, MPI_COMM_WORLD, &reqs[2 * s + 1]);
    }
    for (int i = 0; i < 2 * n_servers; i++)
        pst_plancontract_wait(NULL, &reqs[i]);
    int rc = PST_OK;
    for (int s = 0; s < n_servers && rc == PST_OK; s++)
        if (answers[s].rc != PST_OK)
            rc = pst_err_set(err, answers[s].rc, "namespace %u refused: %.*s", model_id,
                             (int)sizeof answers[s].msg - 1, answers[s].msg);
    free(buf), free(answers), free(reqs);
    return rc;
}

int pst_plancontract_declare(pst_plancontract_t *pc, MPI_Comm group, bool leader, uint32_t model_id,
                             const pst_contract_t *ns, pst_err_t *err)
{
    int rc = leader ? send_declaration(pc, model_id, ns, err) : PST_OK;
    /* every member waits for the leader, so that no INIT reaches a server before the contract */
    return pst_mpijob_agree_err(group, rc, 1, err);
}

int pst_plancontract_remote_begin(pst_plancontract_t *pc, pst_remote_t *remote, bool leader,
                                  uint32_t model_id, const float *params, size_t n, pst_err_t *err)
{
    pst_contract_t ns;
    pst_contract_init(&ns);
    double t0 = pst_clock_seconds();
    int rc = leader ? pst_contract_add_dense(&ns, model_id, 0, n, err) : PST_OK;
    if (rc == PST_OK && leader && (rc = send_declaration(pc, model_id, &ns, err)) == PST_OK)
        pst_info("rank %d: namespace %u (%zu parameters) declared to %d servers in %.3f ms",
                 pc->ranks->rank, model_id, n, pc->ranks->n_servers,
                 1e3 * (pst_clock_seconds() - t0));
    pst_contract_fini(&ns);
    rc = pst_mpijob_agree_err(remote->group, rc, 1, err);
    return rc == PST_OK ? pst_remote_begin(remote, model_id, params, n, NULL, err) : rc;
}
