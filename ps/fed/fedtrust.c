/* The federated server's trust in its sites: key bindings, the registry's size, rows claims. */
#include "ps/fed/fedtrust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/fed/fedauth.h"

typedef char site_id_t[PST_FEDKEY_NAME_MAX + 1];

/* An unbound key and the site id it registered first. */
typedef struct binding {
    char key[PST_FEDKEY_Z85 + 1];
    site_id_t site;
} binding_t;

struct pst_fedtrust {
    site_id_t *key_sites; /* (n_key_sites) the site ids bound to keys in the allowed list */
    size_t n_key_sites;
    binding_t *bindings; /* (n_bindings, at most the allowed list's unbound keys) */
    size_t n_bindings, bindings_cap;
    int max_sites;
    double *rows; /* (rows_cap) by registry index: registered rows, 0 when none known yet */
    size_t rows_cap;
};

pst_fedtrust_t *pst_fedtrust_new(const pst_fedkey_list_t *allowed, int max_sites, pst_err_t *err)
{
    pst_fedtrust_t *t = calloc(1, sizeof *t);
    size_t n = allowed != NULL ? allowed->n : 0;
    if (t != NULL && n > 0) {
        t->key_sites = calloc(n, sizeof *t->key_sites);
        t->bindings = calloc(n, sizeof *t->bindings);
    }
    if (t == NULL || (n > 0 && (t->key_sites == NULL || t->bindings == NULL))) {
        pst_fedtrust_destroy(&t);
        pst_err_set(err, PST_ENOMEM, "fed server: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (allowed->items[i].site[0] != '\0')
            memcpy(t->key_sites[t->n_key_sites++], allowed->items[i].site, sizeof(site_id_t));
    t->bindings_cap = n;
    t->max_sites = max_sites;
    return t;
}

void pst_fedtrust_destroy(pst_fedtrust_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_fedtrust_t *t = *self_p;
    free(t->key_sites);
    free(t->bindings);
    free(t->rows);
    free(t);
    *self_p = NULL;
}

/* The key of an unbound key's User-Id ("*KEY"), or NULL for a bound one. */
static const char *unbound_key(const char *peer)
{
    size_t any = strlen(PST_FEDAUTH_ANY_SITE);
    return strncmp(peer, PST_FEDAUTH_ANY_SITE, any) == 0 ? peer + any : NULL;
}

static const binding_t *binding_of(const pst_fedtrust_t *t, const char *key)
{
    for (size_t i = 0; i < t->n_bindings; i++)
        if (strcmp(t->bindings[i].key, key) == 0)
            return &t->bindings[i];
    return NULL;
}

/* Whether a key other than key holds site id site. */
static bool held_by_another(const pst_fedtrust_t *t, const char *key, const char *site)
{
    for (size_t i = 0; i < t->n_key_sites; i++)
        if (strcmp(t->key_sites[i], site) == 0)
            return true;
    for (size_t i = 0; i < t->n_bindings; i++)
        if (strcmp(t->bindings[i].site, site) == 0 && strcmp(t->bindings[i].key, key) != 0)
            return true;
    return false;
}

int pst_fedtrust_admit(pst_fedtrust_t *t, const char *peer, const char *site, bool registering,
                       pst_err_t *err)
{
    if (peer == NULL)
        return PST_OK;
    const char *key = unbound_key(peer);
    if (key == NULL)
        return strcmp(peer, site) == 0
                   ? PST_OK
                   : pst_err_set(err, PST_EINVAL, "this site's key may only speak as '%s'", peer);
    const binding_t *b = binding_of(t, key);
    if (b != NULL)
        return strcmp(b->site, site) == 0
                   ? PST_OK
                   : pst_err_set(err, PST_EINVAL,
                                 "this key registered as '%s' and may only speak as that site",
                                 b->site);
    if (!registering)
        return pst_err_set(err, PST_EINVAL, "this key has registered no site yet");
    if (held_by_another(t, key, site))
        return pst_err_set(err, PST_EINVAL, "site id '%.64s' belongs to another key", site);
    return PST_OK;
}

int pst_fedtrust_bind(pst_fedtrust_t *t, const char *peer, const char *site, pst_err_t *err)
{
    const char *key = peer != NULL ? unbound_key(peer) : NULL;
    if (key == NULL || binding_of(t, key) != NULL)
        return PST_OK;
    if (t->n_bindings >= t->bindings_cap || strlen(key) > PST_FEDKEY_Z85 ||
        strlen(site) > PST_FEDKEY_NAME_MAX)
        return pst_err_set(err, PST_EINVAL, "fed server: key binding for '%.64s' refused", site);
    binding_t *b = &t->bindings[t->n_bindings++];
    strcpy(b->key, key);
    strcpy(b->site, site);
    return PST_OK;
}

int pst_fedtrust_may_register(const pst_fedtrust_t *t, int n_registered, bool known, pst_err_t *err)
{
    if (known || n_registered < t->max_sites)
        return PST_OK;
    return pst_err_set(err, PST_ERANGE, "%d sites are registered already (fed.max_sites)",
                       n_registered);
}

int pst_fedtrust_set_rows(pst_fedtrust_t *t, int index, uint64_t rows, pst_err_t *err)
{
    if (index < 0)
        return pst_err_set(err, PST_EINVAL, "fed server: site index %d", index);
    if ((size_t)index >= t->rows_cap) {
        size_t cap = t->rows_cap ? t->rows_cap : 16;
        while (cap <= (size_t)index)
            cap *= 2;
        if (pst_array_resize((void **)&t->rows, cap, sizeof *t->rows) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "fed server: out of memory");
        memset(t->rows + t->rows_cap, 0, (cap - t->rows_cap) * sizeof *t->rows);
        t->rows_cap = cap;
    }
    /* a rejoining site keeps the rows it first registered or claimed: it cannot raise them */
    if (t->rows[index] == 0)
        t->rows[index] = (double)rows;
    return PST_OK;
}

double pst_fedtrust_claim(pst_fedtrust_t *t, int index, double claim, bool *lowered)
{
    *lowered = false;
    if (index < 0 || (size_t)index >= t->rows_cap)
        return claim; /* never registered here: the caller refuses it before */
    if (t->rows[index] == 0) {
        t->rows[index] = claim;
        return claim;
    }
    if (claim > t->rows[index]) {
        *lowered = true;
        return t->rows[index];
    }
    return claim;
}

double pst_fedtrust_rows(const pst_fedtrust_t *t, int index)
{
    return index >= 0 && (size_t)index < t->rows_cap ? t->rows[index] : 0;
}

const char *pst_fedtrust_bound_key(const pst_fedtrust_t *t, const char *site)
{
    for (size_t i = 0; i < t->n_bindings; i++)
        if (strcmp(t->bindings[i].site, site) == 0)
            return t->bindings[i].key;
    return NULL;
}

int pst_fedtrust_restore_binding(pst_fedtrust_t *t, const char *key, const char *site,
                                 pst_err_t *err)
{
    char peer[sizeof PST_FEDAUTH_ANY_SITE + PST_FEDKEY_Z85];
    if (strlen(key) != PST_FEDKEY_Z85)
        return pst_err_set(err, PST_EFORMAT, "a key binding of '%.64s' without a key", site);
    snprintf(peer, sizeof peer, "%s%s", PST_FEDAUTH_ANY_SITE, key);
    return pst_fedtrust_bind(t, peer, site, err);
}

int pst_fedtrust_restore_rows(pst_fedtrust_t *t, int index, double rows, pst_err_t *err)
{
    int rc = pst_fedtrust_set_rows(t, index, 0, err);
    if (rc == PST_OK)
        t->rows[index] = rows >= 0 ? rows : 0;
    return rc;
}
