/* Namespaces declared while a server runs: the contract of a plan whose tasks (folds, members,
 * trials) each create a namespace when they start and drop it when they end. */
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "ps/server_internal.h"

/* The declarations come from another thread than the server loop's (the rank's main thread,
 * which receives them over MPI), so the contract is read and changed under this lock. */
struct pst_server_namespaces {
    pthread_mutex_t lock;
    size_t max_live, n_live;
};

int pst_server_expect_namespaces(pst_server_t *self, size_t max_live, pst_err_t *err)
{
    if (self->namespaces != NULL || self->has_contract)
        return pst_err_set(err, PST_ESTATE, "server %u: a model contract is set already",
                           self->cfg.server_index);
    if (max_live == 0)
        return pst_err_set(err, PST_EINVAL, "server %u: a plan of no namespace at a time",
                           self->cfg.server_index);
    pst_server_namespaces_t *ns = calloc(1, sizeof *ns);
    if (ns == NULL || pthread_mutex_init(&ns->lock, NULL) != 0) {
        free(ns);
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    ns->max_live = max_live;
    pst_contract_fini(&self->contract);
    self->namespaces = ns;
    self->has_contract = true;
    return PST_OK;
}

void pst_server_namespaces_free(pst_server_t *srv)
{
    if (srv->namespaces == NULL)
        return;
    pthread_mutex_destroy(&srv->namespaces->lock);
    free(srv->namespaces);
    srv->namespaces = NULL;
}

/* The entries of ns, all of namespace model_id, added to the contract (lock held). */
static int add_namespace(pst_server_t *srv, uint32_t model_id, const pst_contract_t *ns,
                         pst_err_t *err)
{
    pst_server_namespaces_t *n = srv->namespaces;
    if (model_id == PST_CONTRACT_ANY_MODEL || ns->n == 0)
        return pst_err_set(err, PST_EINVAL, "namespace %u: declared without tensors", model_id);
    if (pst_contract_has_model(&srv->contract, model_id))
        return pst_err_set(err, PST_EINVAL, "namespace %u is declared already", model_id);
    for (size_t i = 0; i < ns->n; i++)
        if (ns->tensors[i].model_id != model_id)
            return pst_err_set(err, PST_EINVAL, "namespace %u: declares tensor %u/%u of another",
                               model_id, ns->tensors[i].model_id, ns->tensors[i].tensor_id);
    if (n->n_live >= n->max_live)
        return pst_err_set(err, PST_ERANGE,
                           "namespace %u: %zu namespaces are declared, the most the plan runs "
                           "at once",
                           model_id, n->n_live);
    if (srv->contract.n + ns->n > PST_CONTRACT_MAX_TENSORS)
        return pst_err_set(err, PST_ERANGE, "namespace %u: more than %d tensors declared", model_id,
                           PST_CONTRACT_MAX_TENSORS);
    int rc = PST_OK;
    for (size_t i = 0; i < ns->n && rc == PST_OK; i++)
        rc = pst_contract_add(&srv->contract, &ns->tensors[i], err);
    if (rc != PST_OK) {
        pst_contract_remove_model(&srv->contract, model_id);
        return rc;
    }
    n->n_live++;
    return PST_OK;
}

int pst_server_declare_namespace(pst_server_t *self, uint32_t model_id, const pst_contract_t *ns,
                                 pst_err_t *err)
{
    if (self->namespaces == NULL)
        return pst_err_set(err, PST_ESTATE, "server %u: takes no namespace declarations",
                           self->cfg.server_index);
    pthread_mutex_lock(&self->namespaces->lock);
    int rc = add_namespace(self, model_id, ns, err);
    size_t live = self->namespaces->n_live;
    pthread_mutex_unlock(&self->namespaces->lock);
    if (rc == PST_OK)
        pst_debug("server %u: namespace %u declared (%zu tensors; %zu live)",
                  self->cfg.server_index, model_id, ns->n, live);
    return rc;
}

size_t pst_server_namespaces_live(pst_server_t *self)
{
    if (self->namespaces == NULL)
        return 0;
    pthread_mutex_lock(&self->namespaces->lock);
    size_t live = self->namespaces->n_live;
    pthread_mutex_unlock(&self->namespaces->lock);
    return live;
}

void pst_server_forget_namespace(pst_server_t *srv, uint32_t model_id)
{
    pst_server_namespaces_t *n = srv->namespaces;
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->lock);
    if (pst_contract_remove_model(&srv->contract, model_id) > 0)
        n->n_live--;
    pthread_mutex_unlock(&n->lock);
}

int pst_server_contract_admit(pst_server_t *srv, const Pst__Header *h, pst_err_t *err)
{
    if (!srv->has_contract)
        return PST_OK;
    if (srv->namespaces == NULL)
        return pst_contract_admit(&srv->contract, h->model_id, h->tensor_id, h->sparse,
                                  h->total_size, h->row_width, err);
    pthread_mutex_lock(&srv->namespaces->lock);
    int rc;
    if (!pst_contract_has_model(&srv->contract, h->model_id))
        rc = pst_err_set(err, PST_EINVAL,
                         "tensor %u/%u: namespace %u is not declared (%zu of at most %zu "
                         "namespaces are)",
                         h->model_id, h->tensor_id, h->model_id, srv->namespaces->n_live,
                         srv->namespaces->max_live);
    else if ((rc = pst_contract_admit(&srv->contract, h->model_id, h->tensor_id, h->sparse,
                                      h->total_size, h->row_width, err)) != PST_OK)
        pst_err_prefix(err, rc, "namespace %u: ", h->model_id);
    pthread_mutex_unlock(&srv->namespaces->lock);
    return rc;
}

uint64_t pst_server_contract_key_bound(pst_server_t *srv, const Pst__Header *h)
{
    if (!srv->has_contract || !h->sparse)
        return 0;
    if (srv->namespaces != NULL)
        pthread_mutex_lock(&srv->namespaces->lock);
    const pst_contract_tensor_t *t = pst_contract_find(&srv->contract, h->model_id, h->tensor_id);
    uint64_t bound = t != NULL && t->sparse ? t->total : 0;
    if (srv->namespaces != NULL)
        pthread_mutex_unlock(&srv->namespaces->lock);
    return bound;
}
