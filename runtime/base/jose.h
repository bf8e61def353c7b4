/*
 * JOSE without I/O: JSON Web Algorithms (RFC 7518, 8037), compact JWS tokens (RFC 7515,
 * 7519), JWK Sets (RFC 7517) turned into OpenSSL keys, signature checks and the claim
 * checks of a JWT authorizer. No clock (callers pass now), no loop, no global state; the
 * authorizer (runtime/auth) adds key fetching and caching on top.
 */
#ifndef MGW_JOSE_H
#define MGW_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "base/json.h"
#include "base/mem.h"
#include "base/pool.h"

/* Tokens longer than this are refused (MGW_JWT_ETOOLARGE) before any decoding. */
#define MGW_JWT_MAX 8192
/* JWK Sets longer than this are refused by mgw_jwks_parse. */
#define MGW_JWKS_MAX 150000

typedef enum {
    MGW_JWA_NONE,
    MGW_JWA_HS256,
    MGW_JWA_HS384,
    MGW_JWA_HS512,
    MGW_JWA_RS256,
    MGW_JWA_RS384,
    MGW_JWA_RS512,
    MGW_JWA_PS256,
    MGW_JWA_PS384,
    MGW_JWA_PS512,
    MGW_JWA_ES256,
    MGW_JWA_ES384,
    MGW_JWA_ES512,
    MGW_JWA_EDDSA,
    MGW_JWA__COUNT
} mgw_jwa_t;

/* The algorithm named by the n bytes at name ("RS256", ... "EdDSA", case-sensitive);
 * MGW_JWA_NONE for an unknown name and for "none", which is never accepted. */
mgw_jwa_t mgw_jwa_parse(const char *name, size_t n);
/* The RFC name of a ("none" for MGW_JWA_NONE and anything out of range). */
const char *mgw_jwa_name(mgw_jwa_t a);

typedef enum {
    MGW_JWT_OK,
    MGW_JWT_ENOTOKEN,
    MGW_JWT_EMALFORMED,
    MGW_JWT_ETOOLARGE,
    MGW_JWT_EALG,
    MGW_JWT_EKID,
    MGW_JWT_ENOKID,
    MGW_JWT_EKEYALG,
    MGW_JWT_ESIG,
    MGW_JWT_EEXP,
    MGW_JWT_ENBF,
    MGW_JWT_EIAT,
    MGW_JWT_EISS,
    MGW_JWT_EAUD,
    MGW_JWT_EFETCH,
    MGW_JWT_ESCOPE,
    MGW_JWT__COUNT
} mgw_jwt_err_t;

/* The reason a client is told for e (www-authenticate error_description and
 * $context.authorizer.error), e.g. "the token has expired"; "" for MGW_JWT_OK. */
const char *mgw_jwt_describe(mgw_jwt_err_t e);

/*
 * A parsed compact JWS. header and claims are the decoded JSON objects; signing_input
 * points into the caller's token (the "header.payload" bytes the signature covers); sig
 * is the decoded signature. Everything else lives in the pool given to mgw_jwt_parse.
 * exp, nbf and iat are whole seconds, set when has_* is 1: a fraction rounds exp down and
 * nbf and iat up, so that it never widens the window; values beyond +-2^62 are clamped.
 */
typedef struct {
    mgw_jwa_t alg;
    mgw_str_t kid;
    int has_kid;
    const mgw_json_t *header, *claims;
    const char *signing_input;
    size_t signing_len;
    const uint8_t *sig;
    size_t sig_len;
    int64_t exp, nbf, iat;
    int has_exp, has_nbf, has_iat;
} mgw_jwt_t;

/*
 * Parses the n bytes at tok as a compact JWS into pool memory (*out). Empty: ENOTOKEN;
 * over MGW_JWT_MAX bytes: ETOOLARGE; not three strict base64url parts (no padding, no
 * whitespace, canonical trailing bits), header or payload not a JSON object, "crit" in
 * the header, kid or alg not a string, exp/nbf/iat not numbers: EMALFORMED; alg absent,
 * unknown or "none": EALG. The token must outlive *out (signing_input points into it).
 */
mgw_jwt_err_t mgw_jwt_parse(mgw_pool_t *pool, const char *tok, size_t n, mgw_jwt_t *out);

/* mgw_jwk_t.kty */
enum { MGW_JWK_RSA = 1, MGW_JWK_EC, MGW_JWK_OKP };
/* mgw_jwk_t.crv (0 for RSA) */
enum { MGW_JWK_P256 = 1, MGW_JWK_P384, MGW_JWK_P521, MGW_JWK_ED25519 };

/* One public key of a set: its kid (when it has one), its own alg (MGW_JWA_NONE: any
 * algorithm that fits kty and crv), and the OpenSSL key, owned by the set. */
typedef struct mgw_jwk_s {
    mgw_str_t kid;
    int has_kid;
    mgw_jwa_t alg;
    int kty;
    int crv;
    EVP_PKEY *pkey;
} mgw_jwk_t;

/* An immutable set of keys, reference counted (atomically: workers share one). */
typedef struct mgw_jwks_s mgw_jwks_t;

/*
 * Parses a JWK Set ({"keys": [...]}, at most MGW_JWKS_MAX bytes). Keys whose use is not
 * "sig", of an unknown kty or crv, or carrying private parts are skipped and counted in
 * *skipped (may be NULL); symmetric ("oct") keys are always skipped. RSA moduli under
 * 2048 bits and EC points off their curve are errors. Returns the set with one reference
 * (it may hold no key), or NULL with a sentence in err (errlen bytes) when the JSON or a
 * key of a known kty is malformed.
 */
mgw_jwks_t *mgw_jwks_parse(const char *p, size_t n, int *skipped, char *err, size_t errlen);
/* Takes one more reference to s. */
void mgw_jwks_ref(mgw_jwks_t *s);
/* Drops one reference; the last frees the set and its keys. NULL is ignored. */
void mgw_jwks_unref(mgw_jwks_t *s);
/* The number of usable keys in s. */
int mgw_jwks_count(const mgw_jwks_t *s);

/*
 * The key of s for t: the one whose kid equals t's, or the only key when t has no kid.
 * It must fit t's alg (RS and PS: RSA; ES256/384/512: EC P-256/384/521; EdDSA: Ed25519;
 * HS never fits, and the key's own alg, when it has one, must equal t's). NULL with *why
 * = EKID (no key has that kid), ENOKID (t has no kid and s has several keys, or none) or
 * EKEYALG. The key is valid as long as s.
 */
const mgw_jwk_t *mgw_jwks_find(const mgw_jwks_t *s, const mgw_jwt_t *t, mgw_jwt_err_t *why);

/* Checks t's signature with k (asymmetric algorithms only): OK, or ESIG (also when the
 * algorithm does not fit the key). */
mgw_jwt_err_t mgw_jwt_verify(const mgw_jwt_t *t, const mgw_jwk_t *k);
/* Checks an HS256/384/512 signature against the n-byte shared secret, in constant time:
 * OK, EKEYALG when t's alg is not HS*, or ESIG. */
mgw_jwt_err_t mgw_jwt_verify_hmac(const mgw_jwt_t *t, const uint8_t *secret, size_t n);

/* What an authorizer requires of the claims: iss equal to issuer, an audience among
 * audiences (naudiences of them), and the clock skew allowed for exp, nbf and iat. */
typedef struct {
    const char *issuer;
    const char *const *audiences;
    int naudiences;
    int64_t leeway;
} mgw_jwt_rules_t;

/*
 * Checks, in this order: iss (a string equal to rules->issuer, else EISS); aud (a string
 * or a list of strings, one of them among the audiences) or, when aud is absent,
 * client_id (a string among them), else EAUD; then mgw_jwt_check_time.
 */
mgw_jwt_err_t mgw_jwt_check_claims(const mgw_jwt_t *t, const mgw_jwt_rules_t *rules, int64_t now);
/* The time claims against now (seconds since the epoch): EEXP when now >= exp + leeway,
 * ENBF when now + leeway < nbf, EIAT when now + leeway < iat; absent claims pass. */
mgw_jwt_err_t mgw_jwt_check_time(const mgw_jwt_t *t, int64_t leeway, int64_t now);
/*
 * OK when one of the n scopes is granted by t: a word of its "scope" claim (a string of
 * space-separated scopes) or an entry of its "scp" claim (a string or a list of strings);
 * else ESCOPE. n == 0 is always OK.
 */
mgw_jwt_err_t mgw_jwt_check_scopes(const mgw_jwt_t *t, const char *const *scopes, int n);

#endif
