/* Federated server: one ROUTER socket, optionally CURVE-encrypted with only listed site keys
 * admitted, that registers sites, hands each round's asked sites the global weights, collects
 * their updates into the coordinator (ps/fed/fedcoord), closes rounds, and at the end sends every
 * site the final weights. */
#ifndef PST_PS_FED_FEDSERVER_H
#define PST_PS_FED_FEDSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/net/codec.h"
#include "common/err.h"
#include "common/fed/fedkeys.h"
#include "ps/fed/fedcoord.h"
#include "ps/fed/fedtrust.h"

typedef struct pst_fedserver_cfg {
    const char *endpoint;             /* to bind, e.g. tcp://0.0.0.0:7600 or tcp://127.0.0.1:* */
    const pst_fedkey_pair_t *key;     /* CURVE server key pair; NULL: plaintext */
    const pst_fedkey_list_t *allowed; /* with key: the site keys admitted */
    pst_codec_t down_codec;           /* global weights sent to sites (lossless codecs only) */
    pst_codec_t up_codec;             /* the codec sites are told to send their updates in */
    const uint8_t *contract;          /* sent to every site that registers (the model contract) */
    size_t contract_len;
    uint64_t seed;            /* run seed: each task's training seed derives from it */
    int expected_sites;       /* round 1 waits for this many registered sites... */
    double start_timeout;     /* ...for at most this many seconds */
    double heartbeat_timeout; /* a round stops waiting for an asked site silent this long */
    void *zmq_ctx;            /* a context to use, or NULL for the server's own */
    int max_sites;            /* most site ids that may register; 0: no limit */
} pst_fedserver_cfg_t;

/* Model traffic of a round: "raw" counts floats (4 bytes each), "wire" the bytes of the messages
 * as they travelled (headers and compressed payloads). */
typedef struct pst_fedtraffic {
    double down_raw, down_wire; /* tasks: global weights to the asked sites */
    double up_raw, up_wire;     /* updates received while the round was open */
} pst_fedtraffic_t;

typedef struct pst_fedserver_hooks {
    void *ctx;
    /* After each round (r filled by pst_fedcoord_end; a round that could not aggregate is
     * logged and has r->aggregated false). A non-OK return ends the run with that error. */
    int (*on_round)(void *ctx, const pst_fedcoord_round_t *r, const pst_fedtraffic_t *traffic,
                    double seconds, pst_err_t *err);
} pst_fedserver_hooks_t;

/* Counters of a server's life. */
typedef struct pst_fedserver_stats {
    uint64_t registrations, rejoins; /* REGISTER accepted: new sites, known ones again */
    uint64_t refused_registrations;  /* bad site ids */
    uint64_t impostors;              /* messages naming another site than the key is bound to */
    uint64_t lowered_claims;         /* updates claiming more rows than the site registered with */
    uint64_t bad_frames;             /* malformed messages dropped */
    uint64_t bad_updates;            /* updates that failed to decode or had the wrong size */
    uint64_t declined;               /* sites that answered a task without an update */
    uint64_t heartbeat_drops;        /* asked sites dropped from a round for silence */
    uint64_t unreachable;            /* messages to sites that were no longer connected */
    uint64_t auth_admitted, auth_refused; /* CURVE handshakes (0 without CURVE) */
    uint64_t done_acked;                  /* sites that acknowledged the final weights (DONE) */
    uint64_t done_unacked; /* sites told DONE that had not acknowledged it when the wait ended */
} pst_fedserver_stats_t;

typedef struct pst_fedserver pst_fedserver_t;

/* A server driving coord (borrowed; it must outlive the server). Binds cfg->endpoint; actual
 * receives the endpoint bound (for tcp://HOST:* the port chosen). Caller owns the result. */
pst_fedserver_t *pst_fedserver_new(const pst_fedserver_cfg_t *cfg, pst_fedcoord_t *coord,
                                   char *actual, size_t actual_len, pst_err_t *err);
/* Closes the socket (letting the last messages leave for up to two seconds: only sites that did
 * not acknowledge their DONE within the wait of run() still depend on that) and frees all. */
void pst_fedserver_destroy(pst_fedserver_t **self_p);

/* Runs rounds until the coordinator is finished, then sends every registered site the final
 * weights (DONE) and waits until each has acknowledged them (an ACK), for up to
 * cfg.heartbeat_timeout, sending DONE again to a site that reconnects meanwhile; the sites that did
 * not acknowledge are named in the log. PST_ESTATE when pst_fedserver_stop ended it early (sites
 * are told the run is over, without weights). A coordinator finished already (restored after its
 * last round) runs no round: the expected sites get the final weights as they come back, for up to
 * the start timeout, and their acknowledgements are awaited as above. */
int pst_fedserver_run(pst_fedserver_t *self, const pst_fedserver_hooks_t *hooks, pst_err_t *err);

/* For a caller that drives the server at a clock of its own instead of run() (the fuzz target):
 * one turn of run()'s loop at now (seconds; the first call starts the run's clock), without
 * waiting: a round started or ended when due, then the messages already waiting handled as if
 * they arrived at now. A turn that ends a round returns before reading any: call again. Sends no
 * DONE; not while run() runs. Returns run()'s errors. */
int pst_fedserver_step(pst_fedserver_t *self, const pst_fedserver_hooks_t *hooks, double now,
                       pst_err_t *err);

/* Makes run() return within a poll tick. Safe from a signal handler or another thread. */
void pst_fedserver_stop(pst_fedserver_t *self);

void pst_fedserver_stats(const pst_fedserver_t *self, pst_fedserver_stats_t *out);

/* What the server believes of its sites (ps/fed/fedtrust), for its checkpoint. */
pst_fedtrust_t *pst_fedserver_trust(pst_fedserver_t *self);
/* Before run(), after a registry was restored: the first round this server starts waits for
 * n_sites ready sites (or fed.start_timeout), as round 1 waits for expected_sites; after the last
 * round, run() waits as long for n_sites sites to collect the final weights (0: none). */
void pst_fedserver_expect_sites(pst_fedserver_t *self, int n_sites);

#endif
