/*
 * The auth layer's parts (runtime/auth/): the remote key sources (keys.c), the fetch of a
 * JWK Set over the one HTTP client (fetch.c), the verified-token cache (cache.c) and the
 * JWT authorizer itself (authz.c). Nothing outside runtime/auth/ includes this but the
 * unit tests.
 */
#ifndef MGW_AUTH_INT_H
#define MGW_AUTH_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "auth/jwt.h"
#include "base/jose.h"
#include "gw/metrics.h"
#include "gw/req_int.h"
#include "http/client.h"
#include "net/mailbox.h"

/* The limits of the contract (README "JWT authorizers"). */
#define MGW_JWKS_TIMEOUT_MS 1500  /* one fetch (discovery and the set: each) */
#define MGW_JWKS_MAX_BODY 150000  /* bytes of a JWK Set or discovery document */
#define MGW_JWKS_MAX_AGE_MIN 300  /* Cache-Control max-age is clamped to these */
#define MGW_JWKS_MAX_AGE_MAX 3600 /* ...seconds; no header: the maximum */
#define MGW_JWKS_REFETCH_MS 30000 /* at most one fetch per source in this time */
#define MGW_JWKS_RETRY_MS 5000    /* ...or in this time while it has no keys at all */

/* ---- fetch.c: one fetch of a JWK Set (with OIDC discovery first when asked) ---- */

typedef struct mgw_jwks_fetch_s mgw_jwks_fetch_t;

/* What a fetch found: set (a reference for the callee) or NULL and err; max_age_s the
 * response's Cache-Control max-age clamped to the limits; jwks_uri the URL the set was
 * fetched from (discovered or given), valid during the call. */
typedef void (*mgw_jwks_fetch_cb)(void *ud, mgw_jwks_t *set, int max_age_s, const char *jwks_uri,
                                  const char *err);

/* Where to fetch from: jwks_uri, or (NULL) OIDC discovery from issuer. tls verifies
 * https servers (NULL: https is refused); tls_id names it for the pool's connections. */
typedef struct {
    const char *jwks_uri;
    const char *issuer;
    mgw_tls_ctx_t *tls;
    const char *tls_id;
} mgw_jwks_target_t;

/*
 * Fetches t's JWK Set on loop with hc's connections and calls done(ud, ...) once, always
 * from a later turn of the loop (never inside this call). The fetch frees itself after
 * done; t's strings are copied.
 */
void mgw__jwks_fetch(uv_loop_t *loop, mgw_hc_pool_t *hc, const mgw_jwks_target_t *t,
                     mgw_jwks_fetch_cb done, void *ud);
/* The max-age of a Cache-Control value, clamped to [MGW_JWKS_MAX_AGE_MIN, _MAX]. */
int mgw__jwks_max_age(mgw_str_t cache_control);

/* ---- keys.c: remote key sources (jwks_uri, discovery) shared by every worker ---- */

typedef struct mgw_keysrc_s mgw_keysrc_t;

/* A request that waits for a fetch of a source: linked into its worker's list. */
typedef struct mgw_keywait_s {
    struct mgw_keywait_s *next, *prev;
    mgw_keysrc_t *src; /* NULL when not waiting */
    mgw_req_t *r;
    /* The fetch ended (its outcome is the source's set now): r goes on. */
    void (*wake)(mgw_req_t *r);
} mgw_keywait_t;

/*
 * The source for conf (a remote one: conf->jwks_uri or conf->discovery), shared with the
 * authorizers of other generations that fetch the same URL with the same CA; nslots:
 * worker ids go from 0 to nslots - 1. Main thread. One reference for the caller.
 */
mgw_keysrc_t *mgw__keysrc_get(const mgw_jwt_conf_t *conf, int nslots);
void mgw__keysrc_unref(mgw_keysrc_t *src);
/*
 * The set worker w uses now (NULL: none fetched yet): no lock, one atomic load, unless
 * the source has a new set since w last looked. Starts a refresh in the background when
 * the set's max-age is over.
 */
mgw_jwks_t *mgw__keys_current(mgw_keysrc_t *src, mgw_worker_t *w);
/*
 * w needs fresher keys: with wt (its r and wake set), a token's kid is not in the set, or
 * there is no set at all; without wt, the set's max-age is over. Joins the fetch in
 * flight, or starts one unless its limit says no: for an unknown kid, one started less
 * than MGW_JWKS_REFETCH_MS ago for an unknown kid; without a set, any fetch started less
 * than MGW_JWKS_RETRY_MS ago; for max-age, any fetch started less than
 * MGW_JWKS_REFETCH_MS ago. With wt, r then waits for that fetch: returns 1 and
 * wt->wake(r) runs when it ended (on w's loop, a later turn). Returns 0 when no fetch is
 * allowed now (nothing waits).
 */
int mgw__keys_refresh(mgw_keysrc_t *src, mgw_worker_t *w, mgw_keywait_t *wt);
/* Starts the first fetch of src on w if none has started yet (a generation installed). */
void mgw__keys_first(mgw_keysrc_t *src, mgw_worker_t *w);
/* r ends while wt waits: unlinks it (a pool cleanup of r). */
void mgw__keys_unwait(void *wt);
/* The mailbox kind of MGW_MSG_JWKS: a fetch ended, the worker's waiting requests go on. */
extern const mgw_msg_kind_t mgw__jwks_msg_kind;
/* For tests and the CLI: how many fetches src started. */
int mgw__keysrc_fetches(const mgw_keysrc_t *src);

/* ---- cache.c: verified tokens, per worker and authorizer, no locks ---- */

/* A verified token: its claims stay valid while a request holds a reference. */
typedef struct mgw_tok_s {
    mgw_pool_t *pool; /* the token text and what mgw_jwt_parse made of it */
    mgw_str_t text;
    uint64_t hash;
    uint64_t until_ms; /* wall clock: the entry is good until then (exp, or now + ttl) */
    int refs;          /* the cache's, and each request's that uses it */
    mgw_jwt_t jwt;
} mgw_tok_t;

typedef struct mgw_tcache_s mgw_tcache_t;

/* The number of entries of one cache (a power of two). */
#define MGW_TCACHE_SLOTS 2048

mgw_tcache_t *mgw__tcache_new(void);
void mgw__tcache_free(mgw_tcache_t *c);
/* The hash of a token (keyed per process). */
uint64_t mgw__tcache_hash(const char *p, size_t n);
/* The entry for the token (p, n; hash h) still good at now_ms, or NULL. */
mgw_tok_t *mgw__tcache_get(mgw_tcache_t *c, uint64_t h, const char *p, size_t n, uint64_t now_ms);
/* Stores t (the cache takes the caller's reference), replacing what had its slot. */
void mgw__tcache_put(mgw_tcache_t *c, mgw_tok_t *t);
/* A new entry (one reference) for the token text p, n: its own pool holds a copy. */
mgw_tok_t *mgw__tok_new(const char *p, size_t n, uint64_t h);
void mgw__tok_ref(mgw_tok_t *t);
void mgw__tok_unref(void *t); /* a pool cleanup too */
/* How many entries c holds (tests). */
int mgw__tcache_count(const mgw_tcache_t *c);

/* ---- the runtime state of one authorizer (mgw_jwt_conf_t.rt, jwt.c) ---- */

struct mgw_jwt_rt_s {
    mgw_keysrc_t *src;     /* jwks_uri or discovery, else NULL */
    int nslots;            /* worker ids go from 0 to nslots - 1 */
    mgw_tcache_t **caches; /* by worker id, made on the worker's first use */
    mgw_authz_stat_t stat; /* its GET /metrics series (gw/metrics.h) */
};

#endif
