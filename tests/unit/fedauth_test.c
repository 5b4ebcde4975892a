/* Tests for common/fedauth: CURVE sockets over loopback TCP, the ZAP handler admitting listed site
 * keys (with their site ids) and refusing everything else, malformed requests, rate-limited
 * refusal logs naming the handler's owner, and a clean start/stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fed/fedauth.h"
#include "tests/unit/scratch.h"

/* A draft option in libzmq 4.3 (see common/fed/fedauth.c). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define NOTHING_MS 500 /* how long "nothing arrives" is watched */
#define EVENT_MS 3000  /* the longest wait for an expected event */

typedef struct {
    void *ctx;
    pst_fedauth_t *auth;
    pst_fedkey_pair_t server, bound, unbound, unknown;
    pst_fedkey_list_t allowed; /* bound as "site-a", unbound for any site */
    void *router;
    char endpoint[128];
} fixture_t;

static void set_int(void *sock, int option, int value)
{
    assert_int_equal(zmq_setsockopt(sock, option, &value, sizeof value), 0);
}

static void *new_socket(void *ctx, int type, int rcvtimeo_ms)
{
    void *s = zmq_socket(ctx, type);
    assert_non_null(s);
    set_int(s, ZMQ_LINGER, 0);
    set_int(s, ZMQ_RCVTIMEO, rcvtimeo_ms);
    return s;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->ctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    assert_int_equal(pst_fedkey_generate(&f->server, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&f->bound, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&f->unbound, NULL), PST_OK);
    assert_int_equal(pst_fedkey_generate(&f->unknown, NULL), PST_OK);
    assert_int_equal(pst_fedkey_list_add(&f->allowed, f->bound.public_key, "site-a", NULL), PST_OK);
    assert_int_equal(pst_fedkey_list_add(&f->allowed, f->unbound.public_key, NULL, NULL), PST_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->router != NULL)
        zmq_close(f->router);
    pst_fedauth_stop(&f->auth);
    zmq_ctx_term(f->ctx);
    pst_fedkey_list_fini(&f->allowed);
    free(f);
    return 0;
}

/* Starts the handler and a CURVE ROUTER on an ephemeral loopback port. */
static void start_server(fixture_t *f)
{
    pst_err_t err = {0};
    f->auth = pst_fedauth_start(f->ctx, &f->allowed, &err);
    assert_non_null(f->auth);
    f->router = new_socket(f->ctx, ZMQ_ROUTER, NOTHING_MS);
    assert_int_equal(pst_fedauth_server_socket(f->router, &f->server, &err), PST_OK);
    assert_int_equal(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof f->endpoint;
    assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
}

/* A PAIR receiving the events of sock; made before sock connects so no event is missed. */
static void *monitor(void *ctx, void *sock)
{
    static int n_monitors;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fedauth-test-monitor-%d", n_monitors++);
    assert_int_equal(zmq_socket_monitor(sock, ep, ZMQ_EVENT_ALL), 0);
    void *pair = new_socket(ctx, ZMQ_PAIR, 50);
    assert_int_equal(zmq_connect(pair, ep), 0);
    return pair;
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

/* Reads events for up to ms or until one is `wanted`; returns whether it came, with its value.
 * *seen collects every event read. */
static int wait_event(void *mon, uint16_t wanted, int ms, uint32_t *value, unsigned *seen)
{
    for (long end = now_ms() + ms; now_ms() < end;) {
        uint8_t head[6];
        char where[256];
        if (zmq_recv(mon, head, sizeof head, 0) != (int)sizeof head)
            continue;
        assert_true(zmq_recv(mon, where, sizeof where, 0) >= 0);
        uint16_t event;
        memcpy(&event, head, 2);
        *seen |= event;
        if (event == wanted) {
            memcpy(value, head + 2, 4);
            return 1;
        }
    }
    return 0;
}

/* A DEALER connected to the server (CURVE when kp is given), with a monitor in *mon if asked. */
static void *connect_client(fixture_t *f, const pst_fedkey_pair_t *kp, const char *server_public,
                            void **mon)
{
    void *s = new_socket(f->ctx, ZMQ_DEALER, NOTHING_MS);
    if (kp != NULL)
        assert_int_equal(pst_fedauth_client_socket(s, kp, server_public, NULL), PST_OK);
    if (mon != NULL)
        *mon = monitor(f->ctx, s);
    assert_int_equal(zmq_connect(s, f->endpoint), 0);
    zmq_send(s, "hello", 5, ZMQ_DONTWAIT);
    return s;
}

static void close_client(void *s, void *mon)
{
    if (mon != NULL) {
        zmq_socket_monitor(s, NULL, 0);
        zmq_close(mon);
    }
    zmq_close(s);
}

/* Receives one [routing id, "hello"] message within ms; copies each frame's peer site ("(null)"
 * for none). Returns 0 when nothing arrives. */
static int recv_hello(void *router, int ms, char *site_of_id, char *site_of_payload)
{
    assert_int_equal(zmq_setsockopt(router, ZMQ_RCVTIMEO, &ms, sizeof ms), 0);
    zmq_msg_t id, payload;
    zmq_msg_init(&id);
    zmq_msg_init(&payload);
    int got = zmq_msg_recv(&id, router, 0) >= 0;
    if (got) {
        assert_true(zmq_msg_more(&id));
        assert_int_equal(zmq_msg_recv(&payload, router, 0), 5);
        assert_memory_equal(zmq_msg_data(&payload), "hello", 5);
        const char *a = pst_fedauth_peer_site(&id), *b = pst_fedauth_peer_site(&payload);
        snprintf(site_of_id, 80, "%s", a ? a : "(null)");
        snprintf(site_of_payload, 80, "%s", b ? b : "(null)");
    } else {
        assert_int_equal(errno, EAGAIN);
    }
    zmq_msg_close(&id);
    zmq_msg_close(&payload);
    return got;
}

static void allowed_sites_arrive_with_their_site_id(void **state)
{
    fixture_t *f = *state;
    start_server(f);
    char by_id[80], by_payload[80];
    void *a = connect_client(f, &f->bound, f->server.public_key, NULL);
    assert_true(recv_hello(f->router, EVENT_MS, by_id, by_payload));
    assert_string_equal(by_id, "site-a");
    assert_string_equal(by_payload, "site-a");
    void *b = connect_client(f, &f->unbound, f->server.public_key, NULL);
    assert_true(recv_hello(f->router, EVENT_MS, by_id, by_payload));
    /* a key allowed without a site id arrives as "*" and the key, for the server to bind */
    char any[80];
    snprintf(any, sizeof any, "%s%s", PST_FEDAUTH_ANY_SITE, f->unbound.public_key);
    assert_string_equal(by_id, any);
    assert_string_equal(by_payload, any);
    assert_int_equal(pst_fedauth_admitted(f->auth), 2);
    assert_int_equal(pst_fedauth_refused(f->auth), 0);

    zmq_msg_t never_received;
    zmq_msg_init(&never_received);
    assert_null(pst_fedauth_peer_site(&never_received));
    zmq_msg_close(&never_received);
    close_client(a, NULL);
    close_client(b, NULL);
}

static void unknown_key_is_refused_and_the_site_sees_auth_failure(void **state)
{
    fixture_t *f = *state;
    start_server(f);
    void *mon;
    void *c = connect_client(f, &f->unknown, f->server.public_key, &mon);
    uint32_t status = 0;
    unsigned seen = 0;
    assert_true(wait_event(mon, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, EVENT_MS, &status, &seen));
    assert_int_equal(status, 400);
    char by_id[80], by_payload[80];
    assert_false(recv_hello(f->router, NOTHING_MS, by_id, by_payload));
    assert_true(pst_fedauth_refused(f->auth) >= 1); /* the site retries while it stays connected */
    assert_int_equal(pst_fedauth_admitted(f->auth), 0);
    assert_false(seen & ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    close_client(c, mon);
}

static void plain_clients_are_never_delivered(void **state)
{
    fixture_t *f = *state;
    start_server(f);
    void *mon;
    void *c = connect_client(f, NULL, NULL, &mon);
    char by_id[80], by_payload[80];
    assert_false(recv_hello(f->router, NOTHING_MS, by_id, by_payload));
    uint32_t value;
    unsigned seen = 0;
    /* libzmq refuses the mechanism mismatch itself, before ZAP is asked */
    assert_true(wait_event(mon, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, EVENT_MS, &value, &seen));
    assert_int_equal(value, ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH);
    assert_false(seen & ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(pst_fedauth_refused(f->auth), 0);
    close_client(c, mon);

    /* A socket without CURVE but with a ZAP domain asks the handler, which refuses it. */
    void *null_server = new_socket(f->ctx, ZMQ_ROUTER, NOTHING_MS);
    assert_int_equal(
        zmq_setsockopt(null_server, ZMQ_ZAP_DOMAIN, PST_FEDAUTH_DOMAIN, strlen(PST_FEDAUTH_DOMAIN)),
        0);
    assert_int_equal(zmq_bind(null_server, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof f->endpoint;
    assert_int_equal(zmq_getsockopt(null_server, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
    c = connect_client(f, NULL, NULL, &mon);
    assert_false(recv_hello(null_server, NOTHING_MS, by_id, by_payload));
    assert_true(pst_fedauth_refused(f->auth) >= 1);
    assert_int_equal(pst_fedauth_admitted(f->auth), 0);
    close_client(c, mon);
    zmq_close(null_server);
}

static void wrong_server_key_never_gets_through(void **state)
{
    fixture_t *f = *state;
    start_server(f);
    pst_fedkey_pair_t impostor;
    assert_int_equal(pst_fedkey_generate(&impostor, NULL), PST_OK);
    void *mon;
    void *c = connect_client(f, &f->bound, impostor.public_key, &mon);
    char by_id[80], by_payload[80];
    assert_false(recv_hello(f->router, NOTHING_MS, by_id, by_payload));
    uint32_t value;
    unsigned seen = 0;
    /* the server cannot decrypt the hello and hangs up before ZAP is asked: the site sees its
     * handshake fail without detail (the value is an errno such as EPIPE) */
    assert_true(wait_event(mon, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, EVENT_MS, &value, &seen));
    assert_false(seen & (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH));
    assert_int_equal(pst_fedauth_admitted(f->auth), 0);
    assert_int_equal(pst_fedauth_refused(f->auth), 0);
    close_client(c, mon);
}

static void start_and_stop_are_clean(void **state)
{
    fixture_t *f = *state;
    pst_err_t err = {0};
    for (int i = 0; i < 2; i++) {
        pst_fedauth_t *a = pst_fedauth_start(f->ctx, &f->allowed, &err);
        assert_non_null(a);
        assert_null(pst_fedauth_start(f->ctx, &f->allowed, &err));
        assert_int_equal(err.code, PST_ESTATE);
        pst_fedauth_stop(&a);
        assert_null(a);
        pst_fedauth_stop(&a);
    }
    pst_fedauth_stop(NULL);
    pst_fedkey_list_t empty = {0};
    assert_null(pst_fedauth_start(f->ctx, &empty, &err));
    assert_int_equal(err.code, PST_EINVAL);

    /* bad keys are refused before any option is set */
    void *s = new_socket(f->ctx, ZMQ_DEALER, 0);
    pst_fedkey_pair_t bad = f->bound;
    bad.secret_key[3] = '\0';
    assert_int_equal(pst_fedauth_server_socket(s, &bad, &err), PST_EINVAL);
    assert_int_equal(pst_fedauth_client_socket(s, &bad, f->server.public_key, &err), PST_EINVAL);
    assert_int_equal(pst_fedauth_client_socket(s, &f->bound, "short", &err), PST_EINVAL);
    zmq_close(s);
    /* the teardown then terminates the context, which must not hang */
}

/* One ZAP request sent straight to the handler; the reply's status and user id. */
static void zap_ask(void *req, const char *const *frames, const size_t *sizes, int n, char *status,
                    char *user_id)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(req, frames[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
    char reply[6][128];
    int parts = 0, more = 1;
    while (more) {
        int size = zmq_recv(req, reply[parts < 6 ? parts : 5], 127, 0);
        assert_true(size >= 0);
        reply[parts < 6 ? parts : 5][size < 127 ? size : 127] = '\0';
        parts++;
        size_t len = sizeof more;
        assert_int_equal(zmq_getsockopt(req, ZMQ_RCVMORE, &more, &len), 0);
    }
    assert_int_equal(parts, 6);
    assert_string_equal(reply[0], "1.0");
    snprintf(status, 4, "%.3s", reply[2]);
    snprintf(user_id, 80, "%.79s", reply[4]);
}

/* A well-formed request: version, id, domain, address, routing id, mechanism, credentials. */
static void zap_ask_curve(void *req, const char *version, const char *domain, const char *mechanism,
                          const uint8_t *key, size_t key_size, char *status, char *user_id)
{
    const char *frames[] = {version, "7", domain, "198.51.100.9", "", mechanism, (const char *)key};
    size_t sizes[] = {strlen(version), 1, strlen(domain), 12, 0, strlen(mechanism), key_size};
    zap_ask(req, frames, sizes, key ? 7 : 6, status, user_id);
}

static void malformed_requests_get_errors_and_the_handler_keeps_working(void **state)
{
    fixture_t *f = *state;
    start_server(f);
    void *req = new_socket(f->ctx, ZMQ_REQ, EVENT_MS);
    assert_int_equal(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
    char status[4], user[80];
    uint8_t bound[32], unknown[32], big[2000] = {0};
    assert_non_null(zmq_z85_decode(bound, f->bound.public_key));
    assert_non_null(zmq_z85_decode(unknown, f->unknown.public_key));

    const char *garbage[] = {"garbage"};
    size_t garbage_size[] = {7};
    zap_ask(req, garbage, garbage_size, 1, status, user);
    assert_string_equal(status, "500");
    const char *many[20];
    size_t many_sizes[20];
    for (int i = 0; i < 20; i++)
        many[i] = "1.0", many_sizes[i] = 3;
    zap_ask(req, many, many_sizes, 20, status, user);
    assert_string_equal(status, "500");
    zap_ask_curve(req, "2.0", PST_FEDAUTH_DOMAIN, "CURVE", bound, 32, status, user);
    assert_string_equal(status, "500");
    zap_ask_curve(req, "1.0", PST_FEDAUTH_DOMAIN, "CURVE", bound, 5, status, user);
    assert_string_equal(status, "500");
    zap_ask_curve(req, "1.0", PST_FEDAUTH_DOMAIN, "CURVE", NULL, 0, status, user);
    assert_string_equal(status, "500");
    zap_ask_curve(req, "1.0", PST_FEDAUTH_DOMAIN, "CURVE", big, sizeof big, status, user);
    assert_string_equal(status, "500");
    zap_ask_curve(req, "1.0", PST_FEDAUTH_DOMAIN, "PLAIN", bound, 32, status, user);
    assert_string_equal(status, "400");
    zap_ask_curve(req, "1.0", "elsewhere", "CURVE", bound, 32, status, user);
    assert_string_equal(status, "400");
    zap_ask_curve(req, "1.0", PST_FEDAUTH_DOMAIN, "CURVE", unknown, 32, status, user);
    assert_string_equal(status, "400");
    assert_string_equal(user, "");
    assert_int_equal(pst_fedauth_refused(f->auth), 9);
    zap_ask_curve(req, "1.0", PST_FEDAUTH_DOMAIN, "CURVE", bound, 32, status, user);
    assert_string_equal(status, "200");
    assert_string_equal(user, "site-a");
    assert_int_equal(pst_fedauth_admitted(f->auth), 1);
    zmq_close(req);

    char by_id[80], by_payload[80];
    void *c = connect_client(f, &f->bound, f->server.public_key, NULL);
    assert_true(recv_hello(f->router, EVENT_MS, by_id, by_payload));
    assert_string_equal(by_id, "site-a");
    close_client(c, NULL);
}

static int count_lines_with(const char *path, const char *needle, char *first, size_t first_cap)
{
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, in)) {
        if (strstr(line, needle) && n++ == 0)
            snprintf(first, first_cap, "%s", line);
    }
    fclose(in);
    return n;
}

/* Sends stderr to path until stderr_restore(saved) (the handler logs there). */
static int stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    return saved;
}

static void stderr_restore(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

static void refusals_are_logged_rate_limited(void **state)
{
    fixture_t *f = *state;
    start_server(f);
    void *req = new_socket(f->ctx, ZMQ_REQ, EVENT_MS);
    assert_int_equal(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
    uint8_t unknown[32];
    assert_non_null(zmq_z85_decode(unknown, f->unknown.public_key));
    char path[256], status[4], user[80];
    pst_scratch_path(path, "fedauth.log");
    int saved = stderr_to(path);
    for (int i = 0; i < 250; i++)
        zap_ask_curve(req, "1.0", PST_FEDAUTH_DOMAIN, "CURVE", unknown, 32, status, user);
    stderr_restore(saved);
    zmq_close(req);
    assert_int_equal(pst_fedauth_refused(f->auth), 250);
    char first[1024] = "", expected_key[16];
    /* the first 10, then the 100th and the 200th */
    assert_int_equal(count_lines_with(path, "refused", first, sizeof first), 12);
    assert_non_null(strstr(first, "federated server auth: refused an unknown key from"));
    assert_non_null(strstr(first, "198.51.100.9"));
    snprintf(expected_key, sizeof expected_key, "key %.8s)", f->unknown.public_key);
    assert_non_null(strstr(first, expected_key));
    assert_null(strstr(first, f->unknown.public_key)); /* never the whole key */
}

/* A parameter server's handler (PLAIN tokens) names that server in its log lines, never
 * "federated", and admits a worker's name and token. */
static void a_named_handler_speaks_for_its_owner(void **state)
{
    fixture_t *f = *state;
    pst_fedkey_list_t tokens = {0};
    assert_int_equal(pst_fedkey_list_add(&tokens, f->bound.public_key, "1", NULL), PST_OK);
    pst_err_t err = {0};
    f->auth = pst_fedauth_start_named(f->ctx, &tokens, true, "server 3", &err);
    pst_fedkey_list_fini(&tokens);
    assert_non_null(f->auth);
    void *req = new_socket(f->ctx, ZMQ_REQ, EVENT_MS);
    assert_int_equal(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
    char path[256], status[4], user[80];
    pst_scratch_path(path, "fedauth-named.log");
    const char *frames[] = {"1.0",   "7", PST_FEDAUTH_DOMAIN,   "198.51.100.9", "",
                            "PLAIN", "1", f->unknown.public_key};
    size_t sizes[] = {3, 1, strlen(PST_FEDAUTH_DOMAIN), 12, 0, 5, 1, PST_FEDKEY_Z85};
    int saved = stderr_to(path);
    zap_ask(req, frames, sizes, 8, status, user);
    stderr_restore(saved);
    assert_string_equal(status, "400");
    frames[7] = f->bound.public_key;
    zap_ask(req, frames, sizes, 8, status, user);
    assert_string_equal(status, "200");
    assert_string_equal(user, "1");
    zmq_close(req);
    char first[1024] = "";
    assert_int_equal(count_lines_with(path, "refused", first, sizeof first), 1);
    assert_non_null(strstr(first, "server 3 auth: refused a wrong user name or token from"));
    assert_int_equal(count_lines_with(path, "federated", first, sizeof first), 0);

    /* a failed start names its owner too */
    pst_fedkey_list_t empty = {0};
    assert_null(pst_fedauth_start_named(f->ctx, &empty, true, "server 3", &err));
    assert_string_equal(err.msg, "server 3 auth: no allowed keys");
}

static void without_a_handler_no_peer_is_authenticated(void **state)
{
    fixture_t *f = *state;
    start_server(f);
    pst_fedauth_stop(&f->auth);
    int one = 1;
    int enforced = zmq_setsockopt(f->router, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) == 0;
    void *mon = NULL;
    void *c = connect_client(f, &f->bound, f->server.public_key, &mon);
    char by_id[80], by_payload[80];
    /* a libzmq with ZMQ_ZAP_ENFORCE_DOMAIN fails the handshake (the client sees it); one without
     * sets no User-Id */
    if (enforced) {
        uint32_t value;
        unsigned seen = 0;
        assert_true(
            wait_event(mon, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, EVENT_MS, &value, &seen) ||
            (seen & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)));
        assert_false(seen & ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
        assert_false(recv_hello(f->router, NOTHING_MS, by_id, by_payload));
    } else if (recv_hello(f->router, EVENT_MS, by_id, by_payload)) {
        assert_string_equal(by_id, "(null)");
        assert_string_equal(by_payload, "(null)");
    }
    close_client(c, mon);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(allowed_sites_arrive_with_their_site_id),
        TEST(unknown_key_is_refused_and_the_site_sees_auth_failure),
        TEST(plain_clients_are_never_delivered),
        TEST(wrong_server_key_never_gets_through),
        TEST(start_and_stop_are_clean),
        TEST(malformed_requests_get_errors_and_the_handler_keeps_working),
        TEST(refusals_are_logged_rate_limited),
        TEST(a_named_handler_speaks_for_its_owner),
        TEST(without_a_handler_no_peer_is_authenticated),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
