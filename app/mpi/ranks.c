/* Rank roles, endpoint exchange and server start-up for mpirun jobs. */
#include "app/mpi/ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/net/netaddr.h"
#include "app/session.h"
#include "common/log.h"

static bool all_on_one_host(int size)
{
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    char *all = calloc((size_t)size, sizeof host);
    if (!all)
        return false;
    MPI_Allgather(host, (int)sizeof host, MPI_BYTE, all, (int)sizeof host, MPI_BYTE,
                  MPI_COMM_WORLD);
    bool same = true;
    for (int i = 1; i < size; i++)
        same = same && strncmp(all, all + (size_t)i * sizeof host, sizeof host) == 0;
    free(all);
    return same;
}

/* Whether the servers bind loopback only: cluster.interface auto on one host, or a loopback
 * name or address. */
static bool binds_loopback(const char *interface, bool one_host)
{
    if (strcmp(interface, "auto") == 0)
        return one_host;
    return strcmp(interface, "lo") == 0 || strcmp(interface, "localhost") == 0 ||
           strncmp(interface, "127.", 4) == 0;
}

/* Every rank makes a key pair and learns every rank's public key (curve) or secret key, used as
 * a token (token: the job's ranks share their tokens over MPI, which strangers cannot join). A
 * rank whose generation failed shares an empty key, so that every rank fails alike. */
static int share_keys(pst_ranks_t *r, bool token, pst_err_t *err)
{
    pst_err_t why = {0};
    char mine[PST_FEDKEY_Z85 + 1] = "";
    if (pst_fedkey_generate(&r->key, &why) == PST_OK)
        memcpy(mine, token ? r->key.secret_key : r->key.public_key, sizeof mine);
    r->public_keys = calloc((size_t)r->size, sizeof *r->public_keys);
    if (r->public_keys == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    MPI_Allgather(mine, (int)sizeof mine, MPI_CHAR, r->public_keys, (int)sizeof mine, MPI_CHAR,
                  MPI_COMM_WORLD);
    for (int i = 0; i < r->size; i++) {
        r->public_keys[i][PST_FEDKEY_Z85] = '\0';
        if (!pst_fedkey_valid(r->public_keys[i]))
            return pst_err_set(err, PST_EIO, "cluster.security=%s: rank %d has no key%s%s",
                               token ? "token" : "curve", i, i == r->rank && why.msg[0] ? ": " : "",
                               i == r->rank ? why.msg : "");
    }
    r->curve = !token;
    r->token = token;
    memset(mine, 0, sizeof mine);
    return PST_OK;
}

int pst_ranks_init(pst_ranks_t *r, const pst_config_t *cfg, pst_err_t *err)
{
    memset(r, 0, sizeof *r);
    r->role = MPI_COMM_NULL;
    MPI_Comm_rank(MPI_COMM_WORLD, &r->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &r->size);
    r->n_servers = (int)cfg->cluster.servers;
    r->n_workers = r->size - r->n_servers;
    if (r->n_workers < 1)
        return pst_err_set(err, PST_EINVAL,
                           "cluster.servers=%d leaves no worker among %d ranks; start more ranks "
                           "(mpirun -np %d) or lower cluster.servers",
                           r->n_servers, r->size, r->n_servers + 1);
    bool server = r->rank < r->n_servers;
    r->worker = server ? -1 : r->rank - r->n_servers;
    MPI_Comm_split(MPI_COMM_WORLD, server ? 0 : 1, r->rank, &r->role);
    r->one_host = all_on_one_host(r->size);
    r->hellos = calloc((size_t)r->size, sizeof *r->hellos);
    if (!r->hellos)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    const char *mode = cfg->cluster.security;
    if (strcmp(mode, "auto") == 0)
        mode = binds_loopback(cfg->cluster.interface, r->one_host) ? "token" : "curve";
    int rc = strcmp(mode, "none") == 0 ? PST_OK : share_keys(r, strcmp(mode, "token") == 0, err);
    if (rc != PST_OK)
        return rc;
    char tag[32];
    snprintf(tag, sizeof tag, "%s %d", server ? "server" : "worker", server ? r->rank : r->worker);
    pst_log_set_tag(tag);
    return PST_OK;
}

void pst_ranks_fini(pst_ranks_t *r)
{
    if (r->role != MPI_COMM_NULL)
        MPI_Comm_free(&r->role);
    free(r->hellos);
    r->hellos = NULL;
    free(r->public_keys);
    r->public_keys = NULL;
    memset(&r->key, 0, sizeof r->key); /* the secret key leaves no copy behind */
    r->curve = r->token = false;
}

bool pst_ranks_exchange(pst_ranks_t *r, const pst_hello_t *mine)
{
    MPI_Allgather(mine, (int)sizeof *mine, MPI_BYTE, r->hellos, (int)sizeof *mine, MPI_BYTE,
                  MPI_COMM_WORLD);
    for (int i = 0; i < r->size; i++)
        if (!r->hellos[i].ok)
            return false;
    return true;
}

void pst_ranks_nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

void pst_ranks_wait(MPI_Request *req)
{
    int done = 0;
    for (MPI_Test(req, &done, MPI_STATUS_IGNORE); !done; MPI_Test(req, &done, MPI_STATUS_IGNORE))
        pst_ranks_nap();
}

void pst_ranks_endpoints(const pst_ranks_t *r, const char **endpoints)
{
    for (int i = 0; i < r->n_servers; i++)
        endpoints[i] = r->hellos[i].endpoint;
}

void pst_ranks_server_keys(const pst_ranks_t *r, const char **keys)
{
    for (int i = 0; i < r->n_servers; i++)
        keys[i] = r->public_keys[i];
}

/* The workers' public keys (or tokens), each bound to its worker index (the server's sender
 * ids). */
static int worker_keys(const pst_ranks_t *r, pst_fedkey_list_t *list, pst_err_t *err)
{
    memset(list, 0, sizeof *list);
    for (int w = 0; w < r->n_workers; w++) {
        char id[16];
        snprintf(id, sizeof id, "%d", w);
        int rc = pst_fedkey_list_add(list, r->public_keys[r->n_servers + w], id, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int server_config(const pst_ranks_t *r, const pst_config_t *cfg, const char *ckpt_dir,
                         pst_server_cfg_t *sc, pst_err_t *err)
{
    pst_server_cfg_defaults(sc);
    sc->server_index = (uint32_t)r->rank;
    sc->n_servers = (uint32_t)r->n_servers;
    sc->n_workers = (uint32_t)r->n_workers;
    if (pst_consistency_parse(cfg->cluster.consistency, &sc->consistency) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "cluster.consistency: '%s'", cfg->cluster.consistency);
    sc->staleness = (uint32_t)cfg->cluster.staleness;
    sc->heartbeat_timeout_ms = (int)(cfg->cluster.heartbeat_timeout * 1000);
    sc->max_store_bytes = (uint64_t)cfg->cluster.server_memory << 20;
    pst_session_optim_cfg(cfg, &sc->optim);
    if (ckpt_dir) {
        sc->checkpoint_dir = ckpt_dir;
        sc->checkpoint_every = (uint64_t)cfg->cluster.checkpoint_every;
        sc->keep_checkpoints = (uint32_t)cfg->cluster.keep_checkpoints;
    }
    return PST_OK;
}

int pst_ranks_open_server(const pst_ranks_t *r, const pst_config_t *cfg, const char *ckpt_dir,
                          bool resume, pst_server_t **srv, pst_hello_t *hello, pst_err_t *err)
{
    pst_server_cfg_t sc;
    int rc = server_config(r, cfg, ckpt_dir, &sc, err);
    if (rc != PST_OK)
        return rc;
    char ip[64], why[160], endpoint[128];
    if ((rc = pst_netaddr_choose(cfg->cluster.interface, r->one_host, ip, sizeof ip, why,
                                 sizeof why, err)) != PST_OK)
        return rc;
    if (strcmp(ip, "0.0.0.0") == 0)
        pst_warn("server %d binds every interface (cluster.interface=%s)%s", r->rank,
                 cfg->cluster.interface,
                 r->curve   ? ""
                 : r->token ? " with tokens in clear (cluster.security=token)"
                            : " without authentication (cluster.security=none)");
    pst_fedkey_list_t keys = {0};
    if ((r->curve || r->token) && (rc = worker_keys(r, &keys, err)) != PST_OK) {
        pst_fedkey_list_fini(&keys);
        return rc;
    }
    sc.curve_key = r->curve ? &r->key : NULL;
    sc.worker_keys = r->curve || r->token ? &keys : NULL;
    sc.plain_tokens = r->token;
    *srv = pst_server_new(&sc, err);
    pst_fedkey_list_fini(&keys);
    if (*srv == NULL)
        return err->code ? err->code : PST_ENOMEM;
    snprintf(endpoint, sizeof endpoint, "tcp://%s:*", ip);
    if ((rc = pst_server_bind(*srv, endpoint, hello->endpoint, sizeof hello->endpoint, err)))
        return rc;
    pst_info("server %d of %d listening on %s (%s; security %s)", r->rank, r->n_servers,
             hello->endpoint, why,
             r->curve   ? "curve"
             : r->token ? "token"
                        : "none");
    if (resume) {
        uint64_t clock = 0;
        if ((rc = pst_server_restore(*srv, &clock, err)) != PST_OK)
            return rc;
        pst_info("server %d restored its slices at clock %llu", r->rank, (unsigned long long)clock);
    }
    return PST_OK;
}
