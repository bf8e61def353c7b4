/*
 * JWT authorizers (apis[id].authorizers[name] with type = "jwt"; README "JWT
 * authorizers"): the authorizer type the request core runs for routes that name one
 * (gw/gw.h MGW_AUTHZ_JWT), the keys it verifies tokens with (a JWK Set file, a JWK Set
 * fetched from jwks_uri or found by OIDC discovery, an HMAC secret), and what the layers
 * above read of a verified token (its claims and scopes: Lua events and hooks, the CLI).
 *
 * The token checks themselves are base/jose.h's; this layer finds the token, the key and
 * the time, keeps keys fresh, caches verified tokens per worker and answers refusals.
 */
#ifndef MGW_AUTH_JWT_H
#define MGW_AUTH_JWT_H

#include <stdio.h>

#include "base/jose.h"
#include "conf/gen.h"
#include "gw/req_int.h"

/* Fills in the request core's MGW_AUTHZ_JWT entry and the mailbox kind that tells workers
 * a fetch of keys ended (main.c, at startup, before any worker runs). */
void mgw_jwt_register(void);

/*
 * Makes the run-time state of every JWT authorizer of g (mgw_jwt_conf_t.rt: key sources,
 * token caches), freed with g. Main thread, before g is handed to any worker (ctl/: at
 * start and on each reload), and the CLI. Key sources are shared with earlier
 * generations that fetch the same URL with the same CA, so a reload keeps their keys.
 */
void mgw_jwt_gen_prepare(mgw_gen_t *g);

/* Worker w installs g (its first generation or a reload): the first fetch of each of
 * g's remote key sources starts now, on w, unless one has started already. */
void mgw_jwt_gen_installed(mgw_worker_t *w, mgw_gen_t *g);

/* ---- what the layers above read of a request a JWT authorizer allowed ---- */

/* The verified token of r (its claims: jwt->claims), or NULL when no JWT authorizer
 * allowed r. Valid until r ends. */
const mgw_jwt_t *mgw_jwt_req_token(const mgw_req_t *r);

/*
 * A claim's value as $context.authorizer.claims.NAME and Lua events show it: a string as
 * is, a number as its JSON text, true, false, null, and objects and arrays as compact
 * JSON. In pool memory (NUL-terminated).
 */
mgw_str_t mgw_jwt_claim_text(mgw_pool_t *pool, const mgw_json_t *v);

/*
 * The scopes of token t (its space-separated scope claim, or its scp claim: a string or a
 * list of strings) into out (count-then-fill: at most max written). Returns how many
 * there are, or -1 when t has neither claim.
 */
int mgw_jwt_scopes(const mgw_jwt_t *t, mgw_str_t *out, int max);

/* ---- the CLI (ctl/): `moongate jwt check` ---- */

/*
 * Checks token with authorizer conf step by step and prints each step to out (the
 * header, the key, the signature, each claim with its value and verdict, the scopes of
 * every route of the API that uses conf). Keys from jwks_uri or discovery are fetched
 * on loop. Returns 0 when the token passes (for at least the routes without scopes),
 * else 1.
 */
int mgw_jwt_check_cli(uv_loop_t *loop, const mgw_jwt_conf_t *conf, const char *token, FILE *out);

#endif
