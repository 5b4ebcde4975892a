/* CURVE key files of federated training: generating a key pair, writing and reading the secret
 * and public key files, and the server's list of allowed site keys. */
#ifndef PST_COMMON_FED_FEDKEYS_H
#define PST_COMMON_FED_FEDKEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define PST_FEDKEY_Z85 40      /* Z85 text of a 32-byte CURVE key */
#define PST_FEDKEY_NAME_MAX 64 /* longest site id bound to an allowed key */

/* Key files are text:
 *   PREFIX.key  "public: Z85\nsecret: Z85\n"  (mode 0600; refused when group or others can read)
 *   PREFIX.pub  "public: Z85\n"
 * Lines starting with '#' are comments (unless they start with a key: '#' is a Z85 character). */
typedef struct pst_fedkey_pair {
    char public_key[PST_FEDKEY_Z85 + 1];
    char secret_key[PST_FEDKEY_Z85 + 1];
} pst_fedkey_pair_t;

/* A fresh random key pair (libzmq's CURVE). */
int pst_fedkey_generate(pst_fedkey_pair_t *kp, pst_err_t *err);
/* Writes PREFIX.key (created with mode 0600) and PREFIX.pub; refuses to overwrite either. */
int pst_fedkey_write(const pst_fedkey_pair_t *kp, const char *prefix, pst_err_t *err);
/* Reads a key pair file; checks both keys and that the public key belongs to the secret one. */
int pst_fedkey_read_pair(const char *path, pst_fedkey_pair_t *kp, pst_err_t *err);
/* Reads the public key of a .pub file (or of a .key file). */
int pst_fedkey_read_public(const char *path, char out[PST_FEDKEY_Z85 + 1], pst_err_t *err);
/* True when text is 40 Z85 characters that decode to a key. */
bool pst_fedkey_valid(const char *text);

/* Site ids, everywhere a site is named (registration, bound keys, fed.site): 1 to
 * PST_FEDKEY_NAME_MAX characters, each a letter, a digit, '-', '_' or '.'. */
bool pst_fedkey_site_char(int c);
bool pst_fedkey_site_valid(const char *site);

/* Public keys a server accepts, each optionally bound to the one site id it may register as. */
typedef struct pst_fedkey_entry {
    char key[PST_FEDKEY_Z85 + 1];
    char site[PST_FEDKEY_NAME_MAX + 1]; /* "" when any site id may use the key */
} pst_fedkey_entry_t;

typedef struct pst_fedkey_list {
    size_t n;
    pst_fedkey_entry_t *items; /* (n) */
} pst_fedkey_list_t;

/* Loads path: a directory (every *.pub file in it; the file name without .pub is the site id the
 * key is bound to) or a file with one key per line, "KEY [SITE]" or "public: KEY [SITE]".
 * Errors name the file and line. An empty list is an error. */
int pst_fedkey_list_load(pst_fedkey_list_t *list, const char *path, pst_err_t *err);
/* Adds one key (site may be NULL or ""). */
int pst_fedkey_list_add(pst_fedkey_list_t *list, const char *key, const char *site, pst_err_t *err);
/* The entry for a Z85 key, or NULL. */
const pst_fedkey_entry_t *pst_fedkey_list_find(const pst_fedkey_list_t *list, const char *key);
void pst_fedkey_list_fini(pst_fedkey_list_t *list);

#endif
