/*
 * JWT parsing and verification (runtime/base/jose.c, included here to reach its base64url
 * decoder). The input is a compact token, or, when it starts with '{', three lines
 * "HEADER JSON\nPAYLOAD JSON\nSIGNATURE" whose JSON the target encodes itself, so that
 * the fuzzer reaches the header and claim checks without having to find base64url. Each
 * parsed token goes through the whole path against a fixed key set (the unit tests' RSA,
 * P-256/384/521 and Ed25519 keys) and HMAC secret: key lookup, signature, claims, time,
 * scopes. Properties: results are in range and the same when parsed again; a parsed
 * token's three parts are canonical base64url (decoding and encoding again gives the same
 * text); the signing input is the token up to its second dot; its kid, alg and times agree
 * with the header and claims; a key found fits the token's algorithm; HMAC never applies
 * to a non-HS token nor a key of the set to an HS one.
 */
#include "base/jose.c"

#include "base/crypto.h"
#include "fuzz.h"

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-const-variable"
#include "../unit/base/jose_vectors.h"
#pragma clang diagnostic pop

static mgw_jwks_t *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[200];
    keys = mgw_jwks_parse(JWKS, strlen(JWKS), NULL, err, sizeof(err));
    FUZZ_CHECK(keys != NULL && mgw_jwks_count(keys) == 5);
    return 0;
}

/* Decoding then encoding each part gives it back: one encoding per byte string. */
static void check_canonical(const char *s, size_t n)
{
    uint8_t *bin = malloc(n + 1);
    char *enc = malloc(n + 8);
    size_t bn;
    FUZZ_CHECK(b64url_decode(s, n, bin, &bn) == 0);
    FUZZ_CHECK(mgw_base64(bin, bn, enc, 1) == n && memcmp(enc, s, n) == 0);
    free(bin);
    free(enc);
}

static void check_token(mgw_pool_t *pool, const char *tok, size_t n)
{
    mgw_jwt_t t, again;
    mgw_jwt_err_t r = mgw_jwt_parse(pool, tok, n, &t);
    FUZZ_CHECK(r >= MGW_JWT_OK && r < MGW_JWT__COUNT);
    FUZZ_CHECK(mgw_jwt_parse(pool, tok, n, &again) == r);
    FUZZ_CHECK(r == MGW_JWT_OK || mgw_jwt_describe(r)[0] != '\0');
    if (n == 0) FUZZ_CHECK(r == MGW_JWT_ENOTOKEN);
    if (n > MGW_JWT_MAX) FUZZ_CHECK(r == MGW_JWT_ETOOLARGE);
    if (r != MGW_JWT_OK) {
        FUZZ_CHECK(r == MGW_JWT_ENOTOKEN || r == MGW_JWT_ETOOLARGE || r == MGW_JWT_EMALFORMED ||
                   r == MGW_JWT_EALG);
        return;
    }

    /* The shape: three canonical parts, the signing input the first two. */
    FUZZ_CHECK(t.alg > MGW_JWA_NONE && t.alg < MGW_JWA__COUNT);
    FUZZ_CHECK(t.signing_input == tok && t.signing_len < n && tok[t.signing_len] == '.');
    const char *d1 = memchr(tok, '.', n);
    FUZZ_CHECK(d1 && d1 < tok + t.signing_len);
    check_canonical(tok, (size_t)(d1 - tok));
    check_canonical(d1 + 1, (size_t)(tok + t.signing_len - d1 - 1));
    check_canonical(tok + t.signing_len + 1, n - t.signing_len - 1);
    FUZZ_CHECK(t.sig_len <= (n - t.signing_len - 1) * 3 / 4);

    /* The fields agree with the JSON. */
    FUZZ_CHECK(t.header->type == MGW_JSON_OBJECT && t.claims->type == MGW_JSON_OBJECT);
    FUZZ_CHECK(mgw_json_get(t.header, "crit") == NULL);
    const mgw_json_t *alg = mgw_json_get(t.header, "alg"), *kid = mgw_json_get(t.header, "kid");
    FUZZ_CHECK(alg && alg->type == MGW_JSON_STRING && mgw_jwa_parse(alg->str, alg->len) == t.alg);
    FUZZ_CHECK(strcmp(mgw_jwa_name(t.alg), alg->str) == 0);
    FUZZ_CHECK(t.has_kid == (kid != NULL));
    if (kid) FUZZ_CHECK(kid->type == MGW_JSON_STRING && t.kid.p == kid->str && t.kid.n == kid->len);
    static const char *const times[] = {"exp", "nbf", "iat"};
    const int has[] = {t.has_exp, t.has_nbf, t.has_iat};
    const int64_t val[] = {t.exp, t.nbf, t.iat};
    for (int i = 0; i < 3; i++) {
        const mgw_json_t *c = mgw_json_get(t.claims, times[i]);
        FUZZ_CHECK(has[i] == (c != NULL));
        if (!c) continue;
        FUZZ_CHECK(c->type == MGW_JSON_NUMBER);
        FUZZ_CHECK(val[i] >= -(INT64_C(1) << 62) && val[i] <= INT64_C(1) << 62);
        /* Rounded to a whole second: at most 1 away (exactly 1 for tiny fractions such
         * as 1e-30, whose ceiling is 1 and whose difference rounds to 1.0). */
        if (c->num > -1e15 && c->num < 1e15)
            FUZZ_CHECK(val[i] - c->num <= 1 && c->num - val[i] <= 1);
        if (i == 0) FUZZ_CHECK(val[i] <= c->num || c->num < -(double)(INT64_C(1) << 62));
        if (i > 0) FUZZ_CHECK(val[i] >= c->num || c->num > (double)(INT64_C(1) << 62));
    }

    /* The keys. */
    mgw_jwt_err_t why = MGW_JWT_OK;
    const mgw_jwk_t *k = mgw_jwks_find(keys, &t, &why);
    int hs = t.alg == MGW_JWA_HS256 || t.alg == MGW_JWA_HS384 || t.alg == MGW_JWA_HS512;
    if (k) {
        FUZZ_CHECK(!hs && fits(t.alg, k->kty, k->crv));
        FUZZ_CHECK(k->alg == MGW_JWA_NONE || k->alg == t.alg);
        mgw_jwt_err_t v = mgw_jwt_verify(&t, k);
        FUZZ_CHECK(v == MGW_JWT_OK || v == MGW_JWT_ESIG);
    } else {
        FUZZ_CHECK(why == MGW_JWT_EKID || why == MGW_JWT_ENOKID || why == MGW_JWT_EKEYALG);
    }
    if (hs) FUZZ_CHECK(k == NULL);
    /* Every key of the set refuses what does not fit it. */
    for (int i = 0; i < keys->n; i++) {
        mgw_jwt_err_t v = mgw_jwt_verify(&t, &keys->keys[i]);
        FUZZ_CHECK(v == MGW_JWT_OK || v == MGW_JWT_ESIG);
        if (!key_fits(&keys->keys[i], t.alg)) FUZZ_CHECK(v == MGW_JWT_ESIG);
    }
    mgw_jwt_err_t h = mgw_jwt_verify_hmac(&t, (const uint8_t *)SECRET256, strlen(SECRET256));
    FUZZ_CHECK(hs ? (h == MGW_JWT_OK || h == MGW_JWT_ESIG) : h == MGW_JWT_EKEYALG);

    /* The claims. */
    static const char *const auds[] = {"pets", "other"};
    mgw_jwt_rules_t rules = {"https://idp.test/realm", auds, 2, 60};
    mgw_jwt_err_t c = mgw_jwt_check_claims(&t, &rules, 1700000000);
    FUZZ_CHECK(c == MGW_JWT_OK || c == MGW_JWT_EISS || c == MGW_JWT_EAUD || c == MGW_JWT_EEXP ||
               c == MGW_JWT_ENBF || c == MGW_JWT_EIAT);
    if (c != MGW_JWT_EISS) {
        const mgw_json_t *iss = mgw_json_get(t.claims, "iss");
        FUZZ_CHECK(iss && iss->type == MGW_JSON_STRING && strcmp(iss->str, rules.issuer) == 0);
    }
    if (c == MGW_JWT_OK) FUZZ_CHECK(mgw_jwt_check_time(&t, 60, 1700000000) == MGW_JWT_OK);
    mgw_jwt_err_t tm = mgw_jwt_check_time(&t, 0, 0);
    FUZZ_CHECK(tm == MGW_JWT_OK || tm == MGW_JWT_EEXP || tm == MGW_JWT_ENBF || tm == MGW_JWT_EIAT);
    static const char *const need[] = {"pets:read", "admin", ""};
    mgw_jwt_err_t s = mgw_jwt_check_scopes(&t, need, 3);
    FUZZ_CHECK(s == MGW_JWT_OK || s == MGW_JWT_ESCOPE);
    FUZZ_CHECK(mgw_jwt_check_scopes(&t, need, 0) == MGW_JWT_OK);
    FUZZ_CHECK(mgw_jwt_check_scopes(&t, need + 2, 1) == MGW_JWT_ESCOPE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mgw_pool_t *pool = mgw_pool_create(0);
    if (size > 0 && data[0] == '{') {
        /* Header and payload JSON, encoded here, and the signature as it is. */
        const uint8_t *h, *rest, *p, *sig;
        size_t hn, rn, pn, sn;
        fuzz_split(data, size, "\n", &h, &hn, &rest, &rn);
        fuzz_split(rest, rn, "\n", &p, &pn, &sig, &sn);
        char *tok = mgw_pool_alloc(pool, 4 * (hn + pn) / 3 + sn + 16);
        size_t n = mgw_base64(h, hn, tok, 1);
        tok[n++] = '.';
        n += mgw_base64(p, pn, tok + n, 1);
        tok[n++] = '.';
        memcpy(tok + n, sig, sn);
        check_token(pool, tok, n + sn);
    } else {
        check_token(pool, (const char *)data, size);
    }
    mgw_pool_destroy(pool);
    return 0;
}
