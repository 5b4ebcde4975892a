/* CURVE security of federated training: a ZAP handler thread (ZeroMQ RFC 27) admitting listed
 * site keys, and the CURVE options of server and site sockets. The same handler guards the
 * parameter servers (worker keys, or PLAIN handshakes carrying a listed secret token on one host),
 * its log lines naming the server it speaks for. */
#include "common/fed/fedauth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_VERSION "1.0"
/* version, request id, domain, address, routing id, mechanism and at most two credentials */
#define ZAP_MAX_FRAMES 8
#define ZAP_MAX_FRAME_BYTES 1024 /* libzmq's own frames are far smaller */
#define CURVE_KEY_BYTES 32
#define ADDRESS_SHOWN 64 /* characters of a peer address put in a log line */
#define KEY_SHOWN 8      /* characters of an offered key put in a log line */
#define LOG_FIRST 10     /* refusals logged one by one; after them, one in LOG_EVERY */
#define LOG_EVERY 100

/* A draft option in libzmq 4.3, accepted only by builds with the draft API (Debian's are). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

struct pst_fedauth {
    pst_fedkey_list_t allowed; /* the handler's own copy */
    void *zap;                 /* REP bound to ZAP_ENDPOINT; the thread's while it runs */
    bool zap_bound;
    int wake_fds[2]; /* a byte written to [1] stops the thread, which polls [0] */
    pthread_t thread;
    atomic_uint_fast64_t admitted, refused;
    bool plain; /* PLAIN handshakes: user name = the entry's site, password = its key (a token) */
    char owner[PST_FEDAUTH_OWNER_MAX + 1]; /* who the log lines speak for: "server 0" */
};

/* The frames of one ZAP request after the REP envelope. */
typedef struct {
    zmq_msg_t frames[ZAP_MAX_FRAMES];
    int n;
    bool too_many, too_big;
} zap_request_t;

enum { F_VERSION, F_REQUEST_ID, F_DOMAIN, F_ADDRESS, F_ROUTING_ID, F_MECHANISM, F_CREDENTIALS };

typedef struct {
    const char *status;  /* "200", "400" or "500" */
    const char *text;    /* why, for the log (libzmq passes only the status to the peer) */
    const char *user_id; /* NULL: any_key */
    char any_key[sizeof PST_FEDAUTH_ANY_SITE + PST_FEDKEY_Z85]; /* "*KEY": a key without a site */
} zap_verdict_t;

static const char *user_id(const zap_verdict_t *v)
{
    return v->user_id != NULL ? v->user_id : v->any_key;
}

/* ---- one request ---- */

static int recv_frame(zmq_msg_t *m, void *zap)
{
    zmq_msg_init(m);
    int rc;
    while ((rc = zmq_msg_recv(m, zap, 0)) < 0 && errno == EINTR) {
    }
    if (rc < 0)
        zmq_msg_close(m);
    return rc < 0 ? -1 : 0;
}

/* Receives every frame of the next request; frames past ZAP_MAX_FRAMES are dropped. On failure
 * (context terminated) the frames received so far stay in req for request_close. */
static int recv_request(void *zap, zap_request_t *req)
{
    bool more = true;
    while (more) {
        zmq_msg_t extra, *m = req->n < ZAP_MAX_FRAMES ? &req->frames[req->n] : &extra;
        if (recv_frame(m, zap) != 0)
            return -1;
        more = zmq_msg_more(m);
        req->too_big |= zmq_msg_size(m) > ZAP_MAX_FRAME_BYTES;
        if (m == &extra) {
            req->too_many = true;
            zmq_msg_close(m);
        } else {
            req->n++;
        }
    }
    return 0;
}

static void request_close(zap_request_t *req)
{
    for (int i = 0; i < req->n; i++)
        zmq_msg_close(&req->frames[i]);
    req->n = 0;
}

static bool frame_is(zmq_msg_t *m, const char *text)
{
    size_t n = strlen(text);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), text, n) == 0;
}

/* A printable copy of frame i of req (at most cap - 1 characters), or "?" when it is absent. */
static void printable_frame(char *out, size_t cap, zap_request_t *req, int i)
{
    snprintf(out, cap, "?");
    if (i >= req->n)
        return;
    const unsigned char *data = zmq_msg_data(&req->frames[i]);
    size_t n = zmq_msg_size(&req->frames[i]);
    if (n > cap - 1)
        n = cap - 1;
    for (size_t k = 0; k < n; k++)
        out[k] = data[k] >= 0x20 && data[k] < 0x7f ? (char)data[k] : '?';
    out[n] = '\0';
}

/* The Z85 text of a CURVE request's client key into key, or false when the credentials are not
 * one 32-byte key. */
static bool curve_key(zap_request_t *req, char key[PST_FEDKEY_Z85 + 1])
{
    if (req->n != F_CREDENTIALS + 1 || zmq_msg_size(&req->frames[F_CREDENTIALS]) != CURVE_KEY_BYTES)
        return false;
    return zmq_z85_encode(key, zmq_msg_data(&req->frames[F_CREDENTIALS]), CURVE_KEY_BYTES) != NULL;
}

/* Whether the n bytes at a and b are equal, in a time that does not depend on where they differ
 * (a token is a secret). */
static bool same_secret(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* A PLAIN request: the user name must be a listed entry's site and the password that entry's
 * token. Every entry is compared, so the time does not tell which part was wrong. */
static zap_verdict_t judge_plain(const pst_fedauth_t *a, zap_request_t *req)
{
    if (!frame_is(&req->frames[F_MECHANISM], "PLAIN"))
        return (zap_verdict_t){"400", "a handshake without the job's token", "", ""};
    if (req->n != F_CREDENTIALS + 2)
        return (zap_verdict_t){"500", "a PLAIN request without a user name and a password", "", ""};
    if (!frame_is(&req->frames[F_DOMAIN], PST_FEDAUTH_DOMAIN))
        return (zap_verdict_t){"400", "a handshake in another ZAP domain", "", ""};
    zmq_msg_t *user = &req->frames[F_CREDENTIALS], *password = &req->frames[F_CREDENTIALS + 1];
    const pst_fedkey_entry_t *match = NULL;
    for (size_t i = 0; i < a->allowed.n; i++) {
        const pst_fedkey_entry_t *e = &a->allowed.items[i];
        bool ok =
            zmq_msg_size(password) == PST_FEDKEY_Z85 &&
            same_secret(zmq_msg_data(password), (const unsigned char *)e->key, PST_FEDKEY_Z85);
        if (ok && frame_is(user, e->site))
            match = e;
    }
    if (match == NULL)
        return (zap_verdict_t){"400", "a wrong user name or token", "", ""};
    return (zap_verdict_t){"200", "OK", match->site, ""};
}

/* Decides one request. key gets the offered CURVE key, or "" when there is none. */
static zap_verdict_t judge(const pst_fedauth_t *a, zap_request_t *req, char key[PST_FEDKEY_Z85 + 1])
{
    key[0] = '\0';
    if (req->too_many || req->too_big || req->n <= F_MECHANISM ||
        !frame_is(&req->frames[F_VERSION], ZAP_VERSION))
        return (zap_verdict_t){"500", "a malformed ZAP request", "", ""};
    if (a->plain)
        return judge_plain(a, req);
    if (!frame_is(&req->frames[F_MECHANISM], "CURVE"))
        return (zap_verdict_t){"400", "a handshake without CURVE", "", ""};
    if (!curve_key(req, key))
        return (zap_verdict_t){"500", "a CURVE request without one 32-byte key", "", ""};
    if (!frame_is(&req->frames[F_DOMAIN], PST_FEDAUTH_DOMAIN))
        return (zap_verdict_t){"400", "a handshake in another ZAP domain", "", ""};
    const pst_fedkey_entry_t *entry = pst_fedkey_list_find(&a->allowed, key);
    if (entry == NULL)
        return (zap_verdict_t){"400", "an unknown key", "", ""};
    if (entry->site[0] != '\0')
        return (zap_verdict_t){"200", "OK", entry->site, ""};
    /* the key itself, so that the server can bind it to the first site id it registers */
    zap_verdict_t v = {"200", "OK", NULL, ""};
    snprintf(v.any_key, sizeof v.any_key, "%s%s", PST_FEDAUTH_ANY_SITE, key);
    return v;
}

/* Counts a refusal and logs it, rate-limited so that a peer retrying forever cannot flood the
 * log: the first LOG_FIRST refusals, then one in LOG_EVERY. */
static void note_refusal(pst_fedauth_t *a, zap_request_t *req, const zap_verdict_t *v,
                         const char *key)
{
    uint64_t n = atomic_fetch_add(&a->refused, 1) + 1;
    if (n > LOG_FIRST && n % LOG_EVERY != 0)
        return;
    char address[ADDRESS_SHOWN + 1];
    printable_frame(address, sizeof address, req, F_ADDRESS);
    char suffix[96] = "";
    if (n > LOG_FIRST)
        snprintf(suffix, sizeof suffix, " [%llu refusals so far; logging one in %d]",
                 (unsigned long long)n, LOG_EVERY);
    pst_warn("%s auth: refused %s from %s (key %.*s)%s", a->owner, v->text, address, KEY_SHOWN,
             key[0] ? key : "-", suffix);
}

static int send_text(void *zap, const char *text, bool more)
{
    return zmq_send(zap, text, strlen(text), more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

/* The reply: version, request id (echoed when the request had one), status code, status text,
 * user id, metadata (none). REP puts the envelope back in front. */
static int send_reply(void *zap, zap_request_t *req, const zap_verdict_t *v)
{
    const void *id = "";
    size_t id_size = 0;
    if (req->n > F_REQUEST_ID && !req->too_big) {
        id = zmq_msg_data(&req->frames[F_REQUEST_ID]);
        id_size = zmq_msg_size(&req->frames[F_REQUEST_ID]);
    }
    if (send_text(zap, ZAP_VERSION, true) != 0 || zmq_send(zap, id, id_size, ZMQ_SNDMORE) < 0 ||
        send_text(zap, v->status, true) != 0 || send_text(zap, v->text, true) != 0 ||
        send_text(zap, user_id(v), true) != 0 || send_text(zap, "", false) != 0)
        return -1;
    return 0;
}

/* Answers one request. 0, or the errno of a failing socket (ETERM: the context terminates). */
static int serve_one(pst_fedauth_t *a)
{
    zap_request_t req = {.n = 0};
    if (recv_request(a->zap, &req) != 0) {
        int e = errno;
        request_close(&req);
        return e;
    }
    char key[PST_FEDKEY_Z85 + 1];
    zap_verdict_t v = judge(a, &req, key);
    if (strcmp(v.status, "200") == 0) {
        atomic_fetch_add(&a->admitted, 1);
        pst_debug("%s auth: admitted %s (key %.*s)", a->owner,
                  v.user_id ? v.user_id : "any site id", KEY_SHOWN, key);
    } else {
        note_refusal(a, &req, &v, key);
    }
    int e = send_reply(a->zap, &req, &v) != 0 ? errno : 0;
    request_close(&req);
    return e;
}

static void *handler_main(void *arg)
{
    pst_fedauth_t *a = arg;
    zmq_pollitem_t items[2] = {{a->zap, 0, ZMQ_POLLIN, 0}, {NULL, a->wake_fds[0], ZMQ_POLLIN, 0}};
    for (;;) {
        int rc = zmq_poll(items, 2, -1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 || (items[1].revents & ZMQ_POLLIN))
            return NULL; /* ETERM (the context terminates) or pst_fedauth_stop */
        int e = items[0].revents & ZMQ_POLLIN ? serve_one(a) : 0;
        if (e != 0) {
            /* Handshakes now wait for a reply that never comes and time out: closed, not open. */
            if (e != ETERM)
                pst_error("%s auth: the ZAP handler stopped: %s", a->owner, zmq_strerror(e));
            return NULL;
        }
    }
}

/* ---- lifecycle ---- */

static int copy_list(pst_fedkey_list_t *to, const pst_fedkey_list_t *from)
{
    to->items = malloc(from->n * sizeof *to->items);
    if (to->items == NULL)
        return PST_ENOMEM;
    memcpy(to->items, from->items, from->n * sizeof *to->items);
    to->n = from->n;
    return PST_OK;
}

static int open_wake_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    return 0;
}

static int open_zap_socket(pst_fedauth_t *a, void *zmq_ctx, pst_err_t *err)
{
    int linger = 0;
    a->zap = zmq_socket(zmq_ctx, ZMQ_REP);
    if (a->zap == NULL)
        return pst_err_set(err, PST_EIO, "%s auth: cannot create the ZAP socket: %s", a->owner,
                           zmq_strerror(errno));
    zmq_setsockopt(a->zap, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(a->zap, ZAP_ENDPOINT) != 0) {
        int e = errno;
        return pst_err_set(err, e == EADDRINUSE ? PST_ESTATE : PST_EIO,
                           "%s auth: cannot bind %s: %s%s", a->owner, ZAP_ENDPOINT, zmq_strerror(e),
                           e == EADDRINUSE ? " (this context already has a ZAP handler)" : "");
    }
    a->zap_bound = true;
    return PST_OK;
}

/* Closes what start opened. Unbinding first frees the ZAP endpoint at once (closing alone frees it
 * later, in libzmq's reaper), so a new handler can bind it right after. */
static void release(pst_fedauth_t *a)
{
    if (a->zap_bound)
        zmq_unbind(a->zap, ZAP_ENDPOINT);
    if (a->zap != NULL)
        zmq_close(a->zap);
    for (int i = 0; i < 2; i++) {
        if (a->wake_fds[i] >= 0)
            close(a->wake_fds[i]);
    }
    pst_fedkey_list_fini(&a->allowed);
    free(a);
}

pst_fedauth_t *pst_fedauth_start_named(void *zmq_ctx, const pst_fedkey_list_t *allowed, bool plain,
                                       const char *owner, pst_err_t *err)
{
    if (owner == NULL || owner[0] == '\0')
        owner = "federated server";
    if (zmq_ctx == NULL || allowed == NULL || allowed->n == 0) {
        pst_err_set(err, PST_EINVAL, "%s auth: no allowed keys", owner);
        return NULL;
    }
    pst_fedauth_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        pst_err_set(err, PST_ENOMEM, "%s auth: out of memory", owner);
        return NULL;
    }
    a->wake_fds[0] = a->wake_fds[1] = -1;
    a->plain = plain;
    snprintf(a->owner, sizeof a->owner, "%s", owner);
    atomic_init(&a->admitted, 0);
    atomic_init(&a->refused, 0);
    int rc = copy_list(&a->allowed, allowed);
    if (rc != PST_OK)
        pst_err_set(err, rc, "%s auth: out of memory", owner);
    else if (open_wake_pipe(a->wake_fds) != 0)
        rc = pst_err_set(err, PST_EIO, "%s auth: pipe: %s", owner, strerror(errno));
    else
        rc = open_zap_socket(a, zmq_ctx, err);
    if (rc == PST_OK && pthread_create(&a->thread, NULL, handler_main, a) != 0)
        rc = pst_err_set(err, PST_EIO, "%s auth: cannot start the ZAP handler thread", owner);
    if (rc != PST_OK) {
        release(a);
        return NULL;
    }
    return a;
}

pst_fedauth_t *pst_fedauth_start(void *zmq_ctx, const pst_fedkey_list_t *allowed, pst_err_t *err)
{
    return pst_fedauth_start_named(zmq_ctx, allowed, false, "federated server", err);
}

void pst_fedauth_stop(pst_fedauth_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_fedauth_t *a = *self_p;
    /* Every handler start returned is running (start releases what fails). */
    const char stop = 1;
    while (write(a->wake_fds[1], &stop, 1) < 0 && errno == EINTR) {
    }
    pthread_join(a->thread, NULL);
    release(a);
    *self_p = NULL;
}

uint64_t pst_fedauth_admitted(const pst_fedauth_t *a)
{
    return atomic_load(&a->admitted);
}

uint64_t pst_fedauth_refused(const pst_fedauth_t *a)
{
    return atomic_load(&a->refused);
}

/* ---- sockets ---- */

static int set_option(void *sock, int option, const char *name, const void *value, size_t size,
                      pst_err_t *err)
{
    if (zmq_setsockopt(sock, option, value, size) == 0)
        return PST_OK;
    return pst_err_set(err, PST_EIO, "auth: setting %s: %s", name, zmq_strerror(errno));
}

int pst_fedauth_server_socket(void *sock, const pst_fedkey_pair_t *server, pst_err_t *err)
{
    if (!pst_fedkey_valid(server->secret_key))
        return pst_err_set(err, PST_EINVAL, "auth: the server's secret key is not Z85");
    int one = 1, rc;
    if ((rc = set_option(sock, ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER", &one, sizeof one, err)) ||
        (rc = set_option(sock, ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", server->secret_key,
                         PST_FEDKEY_Z85, err)) ||
        (rc = set_option(sock, ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", PST_FEDAUTH_DOMAIN,
                         strlen(PST_FEDAUTH_DOMAIN), err)))
        return rc;
    /* Without it, a handshake finding no ZAP handler is admitted unauthenticated. A libzmq
     * without the draft API refuses the option; the server dropping messages whose
     * pst_fedauth_peer_site is NULL still keeps such peers out. */
    if (zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) != 0)
        pst_debug("auth: this libzmq cannot enforce ZAP: %s", zmq_strerror(errno));
    return PST_OK;
}

/* ZAP's domain is set and enforced as for CURVE, so no handshake passes unasked. */
static int enforce_zap(void *sock, pst_err_t *err)
{
    int one = 1;
    int rc = set_option(sock, ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", PST_FEDAUTH_DOMAIN,
                        strlen(PST_FEDAUTH_DOMAIN), err);
    if (rc == PST_OK && zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) != 0)
        pst_debug("auth: this libzmq cannot enforce ZAP: %s", zmq_strerror(errno));
    return rc;
}

int pst_fedauth_plain_server_socket(void *sock, pst_err_t *err)
{
    int one = 1;
    int rc = set_option(sock, ZMQ_PLAIN_SERVER, "ZMQ_PLAIN_SERVER", &one, sizeof one, err);
    return rc != PST_OK ? rc : enforce_zap(sock, err);
}

int pst_fedauth_plain_client_socket(void *sock, const char *user, const char *token, pst_err_t *err)
{
    if (user == NULL || token == NULL || strlen(token) != PST_FEDKEY_Z85)
        return pst_err_set(err, PST_EINVAL, "auth: a PLAIN client needs a user and a token");
    int rc = set_option(sock, ZMQ_PLAIN_USERNAME, "ZMQ_PLAIN_USERNAME", user, strlen(user), err);
    if (rc == PST_OK)
        rc = set_option(sock, ZMQ_PLAIN_PASSWORD, "ZMQ_PLAIN_PASSWORD", token, PST_FEDKEY_Z85, err);
    return rc;
}

int pst_fedauth_client_socket(void *sock, const pst_fedkey_pair_t *client,
                              const char *server_public, pst_err_t *err)
{
    if (!pst_fedkey_valid(client->public_key) || !pst_fedkey_valid(client->secret_key))
        return pst_err_set(err, PST_EINVAL, "auth: the client's key pair is not Z85");
    if (server_public == NULL || !pst_fedkey_valid(server_public))
        return pst_err_set(err, PST_EINVAL,
                           "auth: the server's public key is not a 40-character Z85 key");
    int rc;
    if ((rc = set_option(sock, ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", server_public,
                         PST_FEDKEY_Z85, err)) ||
        (rc = set_option(sock, ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", client->public_key,
                         PST_FEDKEY_Z85, err)) ||
        (rc = set_option(sock, ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", client->secret_key,
                         PST_FEDKEY_Z85, err)))
        return rc;
    return PST_OK;
}

const char *pst_fedauth_peer_site(const zmq_msg_t *frame)
{
    const char *site = zmq_msg_gets(frame, "User-Id");
    return site != NULL && site[0] != '\0' ? site : NULL;
}
