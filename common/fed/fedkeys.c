/* CURVE key files: generation, 0600 secret files, public files and the allowed-key list. */
#include "common/fed/fedkeys.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#define LINE_MAX_LEN 512

bool pst_fedkey_valid(const char *text)
{
    if (text == NULL || strlen(text) != PST_FEDKEY_Z85)
        return false;
    uint8_t raw[32];
    return zmq_z85_decode(raw, text) != NULL;
}

int pst_fedkey_generate(pst_fedkey_pair_t *kp, pst_err_t *err)
{
    if (zmq_curve_keypair(kp->public_key, kp->secret_key) != 0)
        return pst_err_set(err, PST_EIO, "keygen: this libzmq has no CURVE support: %s",
                           zmq_strerror(errno));
    return PST_OK;
}

/* Creates path exclusively with mode and writes text; a partial file is removed. */
static int write_new(const char *path, mode_t mode, const char *text, pst_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return pst_err_set(err, PST_EIO, "%s: %s%s", path, strerror(errno),
                           errno == EEXIST ? " (not overwritten)" : "");
    size_t len = strlen(text);
    bool ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(path);
        return pst_err_set(err, PST_EIO, "%s: writing: %s", path, strerror(saved));
    }
    return PST_OK;
}

int pst_fedkey_write(const pst_fedkey_pair_t *kp, const char *prefix, pst_err_t *err)
{
    char key_path[4096], pub_path[4096], text[256];
    if (snprintf(key_path, sizeof key_path, "%s.key", prefix) >= (int)sizeof key_path ||
        snprintf(pub_path, sizeof pub_path, "%s.pub", prefix) >= (int)sizeof pub_path)
        return pst_err_set(err, PST_EINVAL, "keygen: prefix too long");
    if (access(pub_path, F_OK) == 0)
        return pst_err_set(err, PST_EIO, "%s: exists (not overwritten)", pub_path);
    snprintf(text, sizeof text,
             "# pstrain CURVE key pair: keep this file secret\npublic: %s\nsecret: %s\n",
             kp->public_key, kp->secret_key);
    int rc = write_new(key_path, 0600, text, err);
    if (rc != PST_OK)
        return rc;
    snprintf(text, sizeof text, "# pstrain CURVE public key\npublic: %s\n", kp->public_key);
    rc = write_new(pub_path, 0644, text, err);
    if (rc != PST_OK)
        unlink(key_path);
    return rc;
}

/* Cuts leading and trailing white space of s in place; returns the start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Reads "public:" and "secret:" lines of a key file into pub and sec (either may be NULL). */
static int read_key_lines(const char *path, char *pub, char *sec, pst_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    char line[LINE_MAX_LEN];
    int rc = PST_OK;
    for (int no = 1; rc == PST_OK && fgets(line, sizeof line, f); no++) {
        char *t = trim(line);
        if (t[0] == '#' || t[0] == '\0')
            continue;
        bool is_pub = strncmp(t, "public:", 7) == 0, is_sec = strncmp(t, "secret:", 7) == 0;
        char *value = trim(t + 7);
        if (!is_pub && !is_sec)
            rc = pst_err_set(err, PST_EFORMAT, "%s:%d: expected 'public: KEY' or 'secret: KEY'",
                             path, no);
        else if (!pst_fedkey_valid(value))
            rc = pst_err_set(err, PST_EFORMAT, "%s:%d: not a 40-character Z85 key", path, no);
        else if (is_pub && pub)
            memcpy(pub, value, PST_FEDKEY_Z85 + 1);
        else if (is_sec && sec)
            memcpy(sec, value, PST_FEDKEY_Z85 + 1);
    }
    fclose(f);
    return rc;
}

int pst_fedkey_read_pair(const char *path, pst_fedkey_pair_t *kp, pst_err_t *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pst_err_set(err, PST_EIO, "%s: %s", path, strerror(errno));
    if (st.st_mode & 077)
        return pst_err_set(err, PST_EINVAL,
                           "%s: a secret key file must not be readable by others (mode %04o; "
                           "chmod 600 it)",
                           path, (unsigned)(st.st_mode & 07777));
    kp->public_key[0] = kp->secret_key[0] = '\0';
    int rc = read_key_lines(path, kp->public_key, kp->secret_key, err);
    if (rc != PST_OK)
        return rc;
    if (!kp->secret_key[0])
        return pst_err_set(err, PST_EFORMAT, "%s: no 'secret:' line (is this a .pub file?)", path);
    char derived[PST_FEDKEY_Z85 + 1];
    if (zmq_curve_public(derived, kp->secret_key) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: the secret key does not decode", path);
    if (kp->public_key[0] && strcmp(derived, kp->public_key) != 0)
        return pst_err_set(err, PST_EFORMAT, "%s: the public key does not match the secret key",
                           path);
    memcpy(kp->public_key, derived, sizeof derived);
    return PST_OK;
}

int pst_fedkey_read_public(const char *path, char out[PST_FEDKEY_Z85 + 1], pst_err_t *err)
{
    out[0] = '\0';
    int rc = read_key_lines(path, out, NULL, err);
    if (rc == PST_OK && !out[0])
        rc = pst_err_set(err, PST_EFORMAT, "%s: no 'public:' line", path);
    return rc;
}

/* ---- allowed keys ---- */

bool pst_fedkey_site_char(int c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

bool pst_fedkey_site_valid(const char *site)
{
    size_t n = strlen(site);
    if (n == 0 || n > PST_FEDKEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!pst_fedkey_site_char(site[i]))
            return false;
    return true;
}

/* A key's site binding: none (""), or a site id. */
static bool site_name_ok(const char *s)
{
    return s[0] == '\0' || pst_fedkey_site_valid(s);
}

int pst_fedkey_list_add(pst_fedkey_list_t *list, const char *key, const char *site, pst_err_t *err)
{
    site = site ? site : "";
    if (!pst_fedkey_valid(key))
        return pst_err_set(err, PST_EFORMAT, "not a 40-character Z85 key");
    if (!site_name_ok(site))
        return pst_err_set(err, PST_EFORMAT,
                           "site id '%.80s': at most %d letters, digits, '-', '_' or '.'", site,
                           PST_FEDKEY_NAME_MAX);
    if (pst_fedkey_list_find(list, key))
        return PST_OK;
    pst_fedkey_entry_t *grown = realloc(list->items, (list->n + 1) * sizeof *grown);
    if (grown == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    list->items = grown;
    memcpy(grown[list->n].key, key, PST_FEDKEY_Z85 + 1);
    snprintf(grown[list->n].site, sizeof grown[list->n].site, "%s", site);
    list->n++;
    return PST_OK;
}

/* '#' is a Z85 character too: a line starting with it is a comment unless it starts with a key. */
static bool is_comment(const char *t)
{
    if (t[0] != '#')
        return false;
    char first[PST_FEDKEY_Z85 + 1];
    size_t n = strcspn(t, " \t");
    if (n != PST_FEDKEY_Z85)
        return true;
    memcpy(first, t, n);
    first[n] = '\0';
    return !pst_fedkey_valid(first);
}

/* One line of an allowed-keys file: "KEY [SITE]" or "public: KEY [SITE]". */
static int add_line(pst_fedkey_list_t *list, char *t, pst_err_t *err)
{
    if (strncmp(t, "public:", 7) == 0)
        t = trim(t + 7);
    char *site = t;
    while (*site && !isspace((unsigned char)*site))
        site++;
    if (*site)
        *site++ = '\0';
    return pst_fedkey_list_add(list, t, trim(site), err);
}

static int load_file(pst_fedkey_list_t *list, const char *path, const char *bound_site,
                     pst_err_t *err)
{
    if (bound_site) {
        char key[PST_FEDKEY_Z85 + 1];
        int rc = pst_fedkey_read_public(path, key, err);
        if (rc == PST_OK && (rc = pst_fedkey_list_add(list, key, bound_site, err)) != PST_OK)
            pst_err_prefix(err, rc, "%s: ", path);
        return rc;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    char line[LINE_MAX_LEN];
    int rc = PST_OK;
    for (int no = 1; rc == PST_OK && fgets(line, sizeof line, f); no++) {
        char *t = trim(line);
        if (t[0] != '\0' && !is_comment(t) && (rc = add_line(list, t, err)) != PST_OK)
            pst_err_prefix(err, rc, "%s:%d: ", path, no);
    }
    fclose(f);
    return rc;
}

static int load_dir(pst_fedkey_list_t *list, const char *path, pst_err_t *err)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = PST_OK;
    for (struct dirent *e = readdir(d); e && rc == PST_OK; e = readdir(d)) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        char file[4096], site[256];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        snprintf(site, sizeof site, "%.*s", (int)(n - 4), e->d_name);
        rc = load_file(list, file, site, err);
    }
    closedir(d);
    return rc;
}

int pst_fedkey_list_load(pst_fedkey_list_t *list, const char *path, pst_err_t *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pst_err_set(err, PST_EIO, "%s: %s", path, strerror(errno));
    int rc = S_ISDIR(st.st_mode) ? load_dir(list, path, err) : load_file(list, path, NULL, err);
    if (rc == PST_OK && list->n == 0)
        rc = pst_err_set(err, PST_EINVAL, "%s: no public keys", path);
    return rc;
}

const pst_fedkey_entry_t *pst_fedkey_list_find(const pst_fedkey_list_t *list, const char *key)
{
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->items[i].key, key) == 0)
            return &list->items[i];
    }
    return NULL;
}

void pst_fedkey_list_fini(pst_fedkey_list_t *list)
{
    free(list->items);
    list->items = NULL;
    list->n = 0;
}
