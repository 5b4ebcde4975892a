/* What the federated server believes of its sites: a key allowed without a site id binds to the
 * first site id it registers and speaks for no other; the registry holds at most max_sites ids;
 * and a site's claimed rows never count for more than it registered with (its first accepted
 * claim when it registered with none). */
#ifndef PST_PS_FED_FEDTRUST_H
#define PST_PS_FED_FEDTRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/fed/fedkeys.h"

typedef struct pst_fedtrust pst_fedtrust_t;

/* allowed: the admitted keys (NULL without CURVE; copied: the site ids bound to keys are kept, so
 * that no unbound key can take one); max_sites >= 1. Caller owns the result. */
pst_fedtrust_t *pst_fedtrust_new(const pst_fedkey_list_t *allowed, int max_sites, pst_err_t *err);
void pst_fedtrust_destroy(pst_fedtrust_t **self_p);

/* Whether a message from the peer admitted as peer (ZAP User-Id; NULL: no ZAP on the socket) may
 * name site. A bound key speaks only as its site; an unbound key, once bound (pst_fedtrust_bind),
 * only as the site it registered; before that it may only register (registering), and only a site
 * id no other key holds. PST_EINVAL with the reason in err otherwise. */
int pst_fedtrust_admit(pst_fedtrust_t *t, const char *peer, const char *site, bool registering,
                       pst_err_t *err);

/* After a registration of site was accepted: an unbound key (peer) is bound to site from now on.
 * A no-op for bound keys and without ZAP. */
int pst_fedtrust_bind(pst_fedtrust_t *t, const char *peer, const char *site, pst_err_t *err);

/* A registration of a new site id (known: it is registered already) when n_registered are:
 * PST_ERANGE past max_sites. */
int pst_fedtrust_may_register(const pst_fedtrust_t *t, int n_registered, bool known,
                              pst_err_t *err);

/* Site index registered (or rejoined) declaring rows (0: it declared none). */
int pst_fedtrust_set_rows(pst_fedtrust_t *t, int index, uint64_t rows, pst_err_t *err);
/* The rows an update of site index may count for: the claim, lowered to what the site registered
 * with (or, when it declared none, to its first accepted claim, which this call records).
 * *lowered tells whether it was. */
double pst_fedtrust_claim(pst_fedtrust_t *t, int index, double claim, bool *lowered);

/* The registered rows of site index (0: none known yet). */
double pst_fedtrust_rows(const pst_fedtrust_t *t, int index);

/* Checkpoint support: the key bound to a site id by its first registration (NULL: none), and
 * such a binding restored (the key as Z85). */
const char *pst_fedtrust_bound_key(const pst_fedtrust_t *t, const char *site);
int pst_fedtrust_restore_binding(pst_fedtrust_t *t, const char *key, const char *site,
                                 pst_err_t *err);
/* Sets the rows of site index as registered (a restored registry). */
int pst_fedtrust_restore_rows(pst_fedtrust_t *t, int index, double rows, pst_err_t *err);

#endif
