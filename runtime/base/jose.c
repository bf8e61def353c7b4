/* JOSE (see jose.h). Stub: the implementation follows. */
#include <stdio.h>

#include "base/jose.h"

mgw_jwa_t mgw_jwa_parse(const char *name, size_t n) { (void)name, (void)n; return MGW_JWA_NONE; }
const char *mgw_jwa_name(mgw_jwa_t a) { (void)a; return "none"; }
const char *mgw_jwt_describe(mgw_jwt_err_t e) { (void)e; return ""; }
mgw_jwt_err_t mgw_jwt_parse(mgw_pool_t *pool, const char *tok, size_t n, mgw_jwt_t *out)
{
    (void)pool, (void)tok, (void)n, (void)out;
    return MGW_JWT_EMALFORMED;
}
mgw_jwks_t *mgw_jwks_parse(const char *p, size_t n, int *skipped, char *err, size_t errlen)
{
    (void)p, (void)n, (void)skipped;
    if (errlen) snprintf(err, errlen, "not implemented");
    return NULL;
}
void mgw_jwks_ref(mgw_jwks_t *s) { (void)s; }
void mgw_jwks_unref(mgw_jwks_t *s) { (void)s; }
int mgw_jwks_count(const mgw_jwks_t *s) { (void)s; return 0; }
const mgw_jwk_t *mgw_jwks_find(const mgw_jwks_t *s, const mgw_jwt_t *t, mgw_jwt_err_t *why)
{
    (void)s, (void)t;
    *why = MGW_JWT_EKID;
    return NULL;
}
mgw_jwt_err_t mgw_jwt_verify(const mgw_jwt_t *t, const mgw_jwk_t *k) { (void)t, (void)k; return MGW_JWT_ESIG; }
mgw_jwt_err_t mgw_jwt_verify_hmac(const mgw_jwt_t *t, const uint8_t *secret, size_t n)
{
    (void)t, (void)secret, (void)n;
    return MGW_JWT_ESIG;
}
mgw_jwt_err_t mgw_jwt_check_claims(const mgw_jwt_t *t, const mgw_jwt_rules_t *rules, int64_t now)
{
    (void)t, (void)rules, (void)now;
    return MGW_JWT_EISS;
}
mgw_jwt_err_t mgw_jwt_check_time(const mgw_jwt_t *t, int64_t leeway, int64_t now)
{
    (void)t, (void)leeway, (void)now;
    return MGW_JWT_EEXP;
}
mgw_jwt_err_t mgw_jwt_check_scopes(const mgw_jwt_t *t, const char *const *scopes, int n)
{
    (void)t, (void)scopes, (void)n;
    return MGW_JWT_ESCOPE;
}
