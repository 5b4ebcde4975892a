/* CURVE security of federated training: the server's ZAP handler admitting listed site keys, and
 * the socket options that make a server or a site socket encrypted and authenticated. Parameter
 * servers use the same handler for their workers' keys or tokens. */
#ifndef PST_COMMON_FED_FEDAUTH_H
#define PST_COMMON_FED_FEDAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include <zmq.h>

#include "common/err.h"
#include "common/fed/fedkeys.h"

/* The ZAP domain pst_fedauth_server_socket sets; the handler refuses every other domain. */
#define PST_FEDAUTH_DOMAIN "pstrain-fed"
/* The peer site of an admitted key that is not bound to a site id. Never a valid site id. */
#define PST_FEDAUTH_ANY_SITE "*"

/* How a server is set up, in this order:
 *   auth = pst_fedauth_start(ctx, &allowed, err);     before any CURVE server socket binds
 *   pst_fedauth_server_socket(router, &server_pair, err); zmq_bind(router, ...);
 *   ... for every message: site = pst_fedauth_peer_site(&frame); drop it when site is NULL ...
 *   zmq_close(router); pst_fedauth_stop(&auth); zmq_ctx_term(ctx);
 *
 * A site: pst_fedauth_client_socket(dealer, &site_pair, server_public, err); zmq_connect(...).
 * What the site's socket monitor (zmq_socket_monitor) reports, with libzmq 4.3.4; in every
 * refused case nothing is delivered and libzmq reconnects every ZMQ_RECONNECT_IVL, asking again:
 *   key admitted             ZMQ_EVENT_HANDSHAKE_SUCCEEDED
 *   key not listed           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, value 400 (the ZAP status): a site
 *                            should stop and tell its user "the server refused this site's key"
 *   wrong server public key  ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, value an errno (EPIPE): the
 *                            server cannot decrypt the hello and hangs up before asking ZAP
 *   site without CURVE       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, value
 *                            ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH (ZAP is not asked)
 * Only the refusals ZAP is asked about are counted and logged by the server's handler. */

typedef struct pst_fedauth pst_fedauth_t;

/* Starts the ZAP handler of zmq_ctx: a thread with a REP socket bound to inproc://zeromq.zap.01
 * that admits a CURVE handshake in domain PST_FEDAUTH_DOMAIN whose client public key is in allowed
 * (copied: the caller keeps its list), with User-Id = the site id the key is bound to, or
 * PST_FEDAUTH_ANY_SITE followed by the key. It refuses (status 400) unknown keys, other mechanisms
 * and other domains, and answers a malformed request with status 500; each refusal is counted and
 * logged as a warning naming the peer address and the key's first 8 characters (the first 10
 * refusals, then one in 100). The handler is bound when this returns, so sockets set up afterwards
 * are always checked. A context has at most one ZAP handler: a second start in it fails with
 * PST_ESTATE. Returns NULL with err set on failure (PST_EINVAL for an empty list). Caller owns the
 * result and frees it with pst_fedauth_stop. */
pst_fedauth_t *pst_fedauth_start(void *zmq_ctx, const pst_fedkey_list_t *allowed, pst_err_t *err);

/* The handler of pst_fedauth_start for another owner, whose name its log lines and errors carry
 * ("server 0 auth: refused ..."; pst_fedauth_start's owner is "federated server"), and, with
 * plain, for PLAIN handshakes instead of CURVE: one host's parameter servers, where encrypting
 * loopback traffic buys nothing (only root can read it, and root can read the processes). Each
 * entry of allowed is then (key: a secret 40-character token, site: the user name that must come
 * with it); a handshake is admitted with User-Id = site when both match one entry, and every other
 * mechanism, domain, name or token is refused and counted like an unknown CURVE key. owner is
 * copied (its first PST_FEDAUTH_OWNER_MAX characters). */
#define PST_FEDAUTH_OWNER_MAX 47
pst_fedauth_t *pst_fedauth_start_named(void *zmq_ctx, const pst_fedkey_list_t *allowed, bool plain,
                                       const char *owner, pst_err_t *err);

/* Stops and joins the handler thread, closes its sockets and frees it; *self_p becomes NULL. Safe
 * twice and on NULL. Call it before zmq_ctx_term of the context (which would otherwise wait for
 * the handler's sockets forever), and after closing the CURVE server sockets: a handshake that
 * still needs the handler then fails (or, with a libzmq without ZMQ_ZAP_ENFORCE_DOMAIN, is admitted
 * without a User-Id, which pst_fedauth_peer_site reports as NULL). A new handler may be started
 * in the same context afterwards. */
void pst_fedauth_stop(pst_fedauth_t **self_p);

/* Handshakes admitted and refused (unknown key, other mechanism or domain, malformed request)
 * since start. Safe to call from any thread while the handler runs. */
uint64_t pst_fedauth_admitted(const pst_fedauth_t *a);
uint64_t pst_fedauth_refused(const pst_fedauth_t *a);

/* Makes sock a CURVE server with the secret key of server and sets ZAP domain PST_FEDAUTH_DOMAIN
 * (and, where libzmq supports it, ZMQ_ZAP_ENFORCE_DOMAIN, so that without a running handler every
 * handshake fails instead of being admitted unauthenticated). Call before zmq_bind.
 * PST_EINVAL for a key that is not Z85, PST_EIO when libzmq refuses an option. */
int pst_fedauth_server_socket(void *sock, const pst_fedkey_pair_t *server, pst_err_t *err);

/* Makes sock a PLAIN server in domain PST_FEDAUTH_DOMAIN with ZAP enforced (a handler started
 * with pst_fedauth_start_plain decides). Call before zmq_bind. */
int pst_fedauth_plain_server_socket(void *sock, pst_err_t *err);

/* Makes sock a PLAIN client presenting user and its 40-character token. Call before
 * zmq_connect. */
int pst_fedauth_plain_client_socket(void *sock, const char *user, const char *token,
                                    pst_err_t *err);

/* Makes sock a CURVE client with its own key pair, trusting only the server whose public key is
 * server_public (Z85). Call before zmq_connect. Errors as pst_fedauth_server_socket. */
int pst_fedauth_client_socket(void *sock, const pst_fedkey_pair_t *client,
                              const char *server_public, pst_err_t *err);

/* The site id the peer that sent frame was admitted as (ZAP User-Id of a received frame; read it
 * from a frame the peer sent, since the routing-id frame a ROUTER adds does not always carry it):
 * the bound site id, or for a key allowed without one PST_FEDAUTH_ANY_SITE followed by the key
 * (Z85), so that the server can bind that key to the first site id it registers.
 * The handler admits a bound key whatever site id the peer later claims: the server must refuse
 * a site registering under another id than a bound one.
 * NULL when the frame did not come through a handshake the handler admitted (a socket without ZAP,
 * a frame that was never received): the server must then drop the message. The string lives as
 * long as frame. */
const char *pst_fedauth_peer_site(const zmq_msg_t *frame);

#endif
