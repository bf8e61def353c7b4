/*
 * JOSE (base/jose.c) against fixed vectors: RFC 7515 appendix A (HS256, RS256, ES256 and
 * "none") and RFC 8037's Ed25519 example, then tokens and keys made once with PyJWT 2.6 and
 * cryptography 38 (Debian python3-jwt): one RSA-2048, P-256, P-384, P-521 and Ed25519 key,
 * a token for every algorithm (exp 2000000000: with the explicit now used here they never
 * expire), and the RSA-public-key-as-HMAC-secret forgery. Tokens that need no valid
 * signature (structure, base64url, claims) are assembled here from JSON text.
 */
#include "base/jose.c"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/crypto.h"
#include "jose_vectors.h"
#include "unit.h"

#define NOW 1700000000 /* between the tokens' nbf/iat and exp */
#define ISSUER "https://idp.test/realm"

static mgw_pool_t *pool;

/* ---- helpers ---- */

static mgw_jwt_err_t parse(const char *tok, mgw_jwt_t *t)
{
    return mgw_jwt_parse(pool, tok, strlen(tok), t);
}

static mgw_jwks_t *jwks(const char *json, int *skipped)
{
    char err[200];
    mgw_jwks_t *s = mgw_jwks_parse(json, strlen(json), skipped, err, sizeof(err));
    if (s == NULL) printf("#   jwks: %s\n", err);
    return s;
}

/* b64url(header) "." b64url(payload) "." sig (already base64url), in pool memory. */
static const char *mk(const char *header, const char *payload, const char *sig)
{
    size_t hn = strlen(header), pn = strlen(payload);
    char *out = mgw_pool_alloc(pool, 4 * (hn + pn) / 3 + strlen(sig) + 16);
    size_t n = mgw_base64(header, hn, out, 1);
    out[n++] = '.';
    n += mgw_base64(payload, pn, out + n, 1);
    out[n++] = '.';
    strcpy(out + n, sig);
    return out;
}

/* The token tok with its signature replaced by the n bytes at sig. */
static const char *resign(const char *tok, const uint8_t *sig, size_t n)
{
    const char *dot = strrchr(tok, '.');
    size_t k = (size_t)(dot - tok) + 1;
    char *out = mgw_pool_alloc(pool, k + 4 * n / 3 + 8);
    memcpy(out, tok, k);
    mgw_base64(sig, n, out + k, 1);
    return out;
}

static const mgw_jwt_rules_t rules = {ISSUER, (const char *const[]){"other", "pets"}, 2, 0};

/* ---- tests ---- */

static void test_jwa_names(void)
{
    for (int a = MGW_JWA_HS256; a < MGW_JWA__COUNT; a++) {
        const char *name = mgw_jwa_name((mgw_jwa_t)a);
        CHECK(mgw_jwa_parse(name, strlen(name)) == (mgw_jwa_t)a);
    }
    CHECK_STR(mgw_jwa_name(MGW_JWA_EDDSA), "EdDSA");
    CHECK_STR(mgw_jwa_name(MGW_JWA_PS384), "PS384");
    CHECK_STR(mgw_jwa_name(MGW_JWA_NONE), "none");
    CHECK_STR(mgw_jwa_name(MGW_JWA__COUNT), "none");
    static const char *const unknown[] = {"none",   "None",   "NONE",    "hs256",
                                          "RS256 ", "ES256K", "Ed25519", "EDDSA",
                                          "RS",     "",       "HS2560",  "RSA-OAEP"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        CHECK(mgw_jwa_parse(unknown[i], strlen(unknown[i])) == MGW_JWA_NONE);
    CHECK(mgw_jwa_parse("RS256x", 5) == MGW_JWA_RS256); /* n bytes, not a C string */
}

static void test_describe(void)
{
    static const char *const want[MGW_JWT__COUNT] = {
        "",
        "no token",
        "the token is malformed",
        "the token is too large",
        "the token's algorithm is not supported",
        "no key matches the token's kid",
        "the token has no kid and the key set has several keys",
        "the token's algorithm does not fit its key",
        "the signature is invalid",
        "the token has expired",
        "the token is not valid yet",
        "the token was issued in the future",
        "the token has an invalid issuer",
        "the token does not have a valid audience",
        "the keys could not be fetched",
        "the token lacks a required scope",
    };
    for (int e = 0; e < MGW_JWT__COUNT; e++)
        CHECK_STR(mgw_jwt_describe((mgw_jwt_err_t)e), want[e]);
    CHECK_STR(mgw_jwt_describe(MGW_JWT__COUNT), "the token is malformed");
}

static void test_rfc7515_hs256(void)
{
    mgw_jwt_t t;
    uint8_t key[64];
    size_t kn;
    CHECK(b64url_decode(RFC_A1_KEY, strlen(RFC_A1_KEY), key, &kn) == 0 && kn == 64);
    CHECK(parse(RFC_A1, &t) == MGW_JWT_OK);
    CHECK(t.alg == MGW_JWA_HS256 && !t.has_kid && t.has_exp && t.exp == 1300819380);
    CHECK(t.sig_len == 32 && t.signing_len == strlen(RFC_A1) - 44);
    const mgw_json_t *root = mgw_json_get(t.claims, "http://example.com/is_root");
    CHECK(root && root->type == MGW_JSON_TRUE);
    CHECK(mgw_jwt_verify_hmac(&t, key, kn) == MGW_JWT_OK);
    CHECK(mgw_jwt_verify_hmac(&t, key, kn - 1) == MGW_JWT_ESIG);
    key[0] ^= 1;
    CHECK(mgw_jwt_verify_hmac(&t, key, kn) == MGW_JWT_ESIG);
    CHECK(mgw_jwt_check_time(&t, 0, 1300819379) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, 0, 1300819380) == MGW_JWT_EEXP);
}

static void test_rfc7515_rs256_es256(void)
{
    const char *toks[] = {RFC_A2, RFC_A3}, *sets[] = {RFC_A2_JWKS, RFC_A3_JWKS};
    for (int i = 0; i < 2; i++) {
        mgw_jwt_t t;
        mgw_jwt_err_t why = MGW_JWT_OK;
        mgw_jwks_t *s = jwks(sets[i], NULL);
        CHECK(s && mgw_jwks_count(s) == 1);
        CHECK(parse(toks[i], &t) == MGW_JWT_OK && !t.has_kid);
        CHECK(t.alg == (i ? MGW_JWA_ES256 : MGW_JWA_RS256));
        const mgw_jwk_t *k = s ? mgw_jwks_find(s, &t, &why) : NULL;
        CHECK(k && k->kty == (i ? MGW_JWK_EC : MGW_JWK_RSA));
        CHECK(k && mgw_jwt_verify(&t, k) == MGW_JWT_OK);
        /* One bit of the signature. */
        ((uint8_t *)t.sig)[t.sig_len / 2] ^= 0x10;
        CHECK(k && mgw_jwt_verify(&t, k) == MGW_JWT_ESIG);
        mgw_jwks_unref(s);
    }
}

/* RFC 8037 A.4: the payload is not JSON, so it is no JWT (EMALFORMED), but the signature
 * checks out through mgw_jwt_verify. */
static void test_rfc8037_ed25519(void)
{
    mgw_jwt_t t;
    CHECK(parse(RFC8037, &t) == MGW_JWT_EMALFORMED);
    mgw_jwks_t *s = jwks(RFC8037_JWKS, NULL);
    CHECK(s && mgw_jwks_count(s) == 1);
    if (!s) return;
    const char *dot = strrchr(RFC8037, '.');
    static uint8_t sig[64];
    memset(&t, 0, sizeof(t));
    t.alg = MGW_JWA_EDDSA;
    t.signing_input = RFC8037;
    t.signing_len = (size_t)(dot - RFC8037);
    t.sig = sig;
    CHECK(b64url_decode(dot + 1, strlen(dot + 1), sig, &t.sig_len) == 0 && t.sig_len == 64);
    mgw_jwt_err_t why;
    const mgw_jwk_t *k = mgw_jwks_find(s, &t, &why);
    CHECK(k && k->kty == MGW_JWK_OKP && k->crv == MGW_JWK_ED25519);
    CHECK(k && mgw_jwt_verify(&t, k) == MGW_JWT_OK);
    sig[63] ^= 1;
    CHECK(k && mgw_jwt_verify(&t, k) == MGW_JWT_ESIG);
    mgw_jwks_unref(s);
}

static void test_every_algorithm(void)
{
    static const struct {
        const char *tok;
        mgw_jwa_t alg;
        const char *kid;
    } cases[] = {
        {TOK_RS256, MGW_JWA_RS256, "rsa1"},  {TOK_RS384, MGW_JWA_RS384, "rsa1"},
        {TOK_RS512, MGW_JWA_RS512, "rsa1"},  {TOK_PS256, MGW_JWA_PS256, "rsa1"},
        {TOK_PS384, MGW_JWA_PS384, "rsa1"},  {TOK_PS512, MGW_JWA_PS512, "rsa1"},
        {TOK_ES256, MGW_JWA_ES256, "ec256"}, {TOK_ES384, MGW_JWA_ES384, "ec384"},
        {TOK_ES512, MGW_JWA_ES512, "ec521"}, {TOK_EDDSA, MGW_JWA_EDDSA, "ed1"},
    };
    int skipped = -1;
    mgw_jwks_t *s = jwks(JWKS, &skipped);
    CHECK(s && mgw_jwks_count(s) == 5 && skipped == 0);
    if (!s) return;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mgw_jwt_t t;
        mgw_jwt_err_t why = MGW_JWT_OK;
        CHECK(parse(cases[i].tok, &t) == MGW_JWT_OK);
        CHECK(t.alg == cases[i].alg && t.has_kid && t.kid.n == strlen(cases[i].kid) &&
              memcmp(t.kid.p, cases[i].kid, t.kid.n) == 0);
        CHECK(t.has_exp && t.exp == 2000000000 && t.has_nbf && t.nbf == 1600000000 && t.has_iat);
        const mgw_jwk_t *k = mgw_jwks_find(s, &t, &why);
        CHECK(k != NULL);
        if (!k) continue;
        if (mgw_jwt_verify(&t, k) != MGW_JWT_OK)
            printf("#   %s does not verify\n", mgw_jwa_name(t.alg));
        CHECK(mgw_jwt_verify(&t, k) == MGW_JWT_OK);
        CHECK(mgw_jwt_check_claims(&t, &rules, NOW) == MGW_JWT_OK);
        CHECK(mgw_jwt_verify_hmac(&t, (const uint8_t *)SECRET256, 32) == MGW_JWT_EKEYALG);
        /* The signature over other claims: the payload's last character changed. */
        char *other = mgw_pool_strdup(pool, cases[i].tok);
        char *dot = strrchr(other, '.');
        dot[-1] = dot[-1] == '9' ? '8' : '9';
        CHECK(parse(other, &t) == MGW_JWT_OK || parse(other, &t) == MGW_JWT_EMALFORMED);
        if (parse(other, &t) == MGW_JWT_OK) CHECK(mgw_jwt_verify(&t, k) == MGW_JWT_ESIG);
    }
    mgw_jwks_unref(s);

    static const struct {
        const char *tok, *secret;
    } hs[] = {{TOK_HS256, SECRET256}, {TOK_HS384, SECRET384}, {TOK_HS512, SECRET512}};
    for (size_t i = 0; i < 3; i++) {
        mgw_jwt_t t;
        CHECK(parse(hs[i].tok, &t) == MGW_JWT_OK && (int)t.alg == MGW_JWA_HS256 + (int)i);
        const uint8_t *sec = (const uint8_t *)hs[i].secret;
        size_t n = strlen(hs[i].secret);
        CHECK(mgw_jwt_verify_hmac(&t, sec, n) == MGW_JWT_OK);
        CHECK(mgw_jwt_verify_hmac(&t, sec, n - 1) == MGW_JWT_ESIG);
        CHECK(mgw_jwt_verify_hmac(&t, (const uint8_t *)SECRET512, i == 2 ? 63 : 64) ==
              MGW_JWT_ESIG);
        CHECK(mgw_jwt_verify_hmac(&t, NULL, 0) == MGW_JWT_ESIG);
        /* A truncated MAC (the first 16 bytes) is no MAC. */
        const char *trunc = resign(hs[i].tok, t.sig, 16);
        CHECK(parse(trunc, &t) == MGW_JWT_OK && mgw_jwt_verify_hmac(&t, sec, n) == MGW_JWT_ESIG);
        CHECK(mgw_jwt_check_claims(&t, &rules, NOW) == MGW_JWT_OK);
    }
}

/* An HS256 token whose secret is the PEM of the RSA key: a verifier that let the token's
 * alg pick how to use the key would accept it. */
static void test_rsa_key_as_hmac_secret(void)
{
    mgw_jwks_t *s = jwks(JWKS, NULL);
    mgw_jwt_t t;
    mgw_jwt_err_t why = MGW_JWT_OK;
    CHECK(parse(TOK_CONFUSION, &t) == MGW_JWT_OK && t.alg == MGW_JWA_HS256 && t.has_kid);
    /* It is a genuine MAC with the PEM... */
    CHECK(mgw_jwt_verify_hmac(&t, (const uint8_t *)PEM, strlen(PEM)) == MGW_JWT_OK);
    /* ...but no key of a set is ever an HMAC secret. */
    CHECK(s && mgw_jwks_find(s, &t, &why) == NULL && why == MGW_JWT_EKEYALG);
    const mgw_jwk_t *rsa = NULL;
    for (int i = 0; s && i < s->n; i++)
        if (s->keys[i].kty == MGW_JWK_RSA) rsa = &s->keys[i];
    CHECK(rsa && mgw_jwt_verify(&t, rsa) == MGW_JWT_ESIG);
    mgw_jwks_unref(s);
}

static void test_alg_none_and_unknown(void)
{
    mgw_jwt_t t;
    CHECK(parse(RFC_A5, &t) == MGW_JWT_EALG);
    const char *p = "{\"iss\":\"" ISSUER "\",\"aud\":\"pets\"}";
    static const char *const ealg[] = {"{\"alg\":\"none\"}",
                                       "{\"alg\":\"None\"}",
                                       "{\"alg\":\"NONE\"}",
                                       "{\"alg\":\"HS999\"}",
                                       "{\"alg\":\"\"}",
                                       "{\"typ\":\"JWT\"}",
                                       "{}",
                                       "{\"alg\":\"RSA-OAEP\",\"enc\":\"A128GCM\"}"};
    for (size_t i = 0; i < sizeof(ealg) / sizeof(ealg[0]); i++) {
        CHECK(parse(mk(ealg[i], p, ""), &t) == MGW_JWT_EALG);
        CHECK(parse(mk(ealg[i], p, "AAAA"), &t) == MGW_JWT_EALG);
    }
    CHECK(parse(mk("{\"alg\":256}", p, "AAAA"), &t) == MGW_JWT_EMALFORMED);
    CHECK(parse(mk("{\"alg\":null}", p, "AAAA"), &t) == MGW_JWT_EMALFORMED);
    CHECK(parse(mk("{\"alg\":[\"RS256\"]}", p, "AAAA"), &t) == MGW_JWT_EMALFORMED);
    /* An EALG token never reaches a key, but its fields are not to be trusted either. */
    CHECK(parse(mk("{\"alg\":\"none\"}", p, ""), &t) == MGW_JWT_EALG && t.alg == MGW_JWA_NONE);
    mgw_jwks_t *s = jwks(JWKS, NULL);
    mgw_jwt_err_t why = MGW_JWT_OK;
    t.has_kid = 1;
    t.kid = (mgw_str_t){"rsa1", 4};
    CHECK(s && mgw_jwks_find(s, &t, &why) == NULL && why == MGW_JWT_EKEYALG);
    CHECK(s && mgw_jwt_verify(&t, &s->keys[0]) == MGW_JWT_ESIG);
    CHECK(mgw_jwt_verify_hmac(&t, (const uint8_t *)SECRET256, 32) == MGW_JWT_EKEYALG);
    mgw_jwks_unref(s);
}

static void test_key_lookup(void)
{
    mgw_jwks_t *s = jwks(JWKS, NULL);
    if (!s) return;
    static const struct {
        mgw_jwa_t alg;
        const char *kid;
        mgw_jwt_err_t want;
    } cases[] = {
        {MGW_JWA_RS256, "rsa1", MGW_JWT_OK},       {MGW_JWA_PS512, "rsa1", MGW_JWT_OK},
        {MGW_JWA_ES256, "rsa1", MGW_JWT_EKEYALG},  {MGW_JWA_EDDSA, "rsa1", MGW_JWT_EKEYALG},
        {MGW_JWA_HS256, "rsa1", MGW_JWT_EKEYALG},  {MGW_JWA_ES256, "ec256", MGW_JWT_OK},
        {MGW_JWA_ES384, "ec256", MGW_JWT_EKEYALG}, {MGW_JWA_ES512, "ec256", MGW_JWT_EKEYALG},
        {MGW_JWA_RS256, "ec256", MGW_JWT_EKEYALG}, {MGW_JWA_ES384, "ec384", MGW_JWT_OK},
        {MGW_JWA_ES256, "ec384", MGW_JWT_EKEYALG}, {MGW_JWA_ES512, "ec521", MGW_JWT_OK},
        {MGW_JWA_ES384, "ec521", MGW_JWT_EKEYALG}, {MGW_JWA_EDDSA, "ed1", MGW_JWT_OK},
        {MGW_JWA_ES256, "ed1", MGW_JWT_EKEYALG},   {MGW_JWA_HS512, "ed1", MGW_JWT_EKEYALG},
        {MGW_JWA_RS256, "nope", MGW_JWT_EKID},     {MGW_JWA_RS256, "rsa", MGW_JWT_EKID},
        {MGW_JWA_RS256, "rsa1 ", MGW_JWT_EKID},    {MGW_JWA_RS256, "", MGW_JWT_EKID},
        {MGW_JWA_RS256, NULL, MGW_JWT_ENOKID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mgw_jwt_t t = {.alg = cases[i].alg};
        if (cases[i].kid) t.kid = (mgw_str_t){cases[i].kid, strlen(cases[i].kid)}, t.has_kid = 1;
        mgw_jwt_err_t why = MGW_JWT_OK;
        const mgw_jwk_t *k = mgw_jwks_find(s, &t, &why);
        if (cases[i].want == MGW_JWT_OK) {
            CHECK(k && k->kid.n == t.kid.n && memcmp(k->kid.p, t.kid.p, t.kid.n) == 0);
        } else {
            if (k || why != cases[i].want) printf("#   case %zu: why %d\n", i, why);
            CHECK(k == NULL && why == cases[i].want);
        }
    }
    mgw_jwks_unref(s);

    /* A key's own alg must be the token's; one kid may name several keys. */
    s = jwks("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"alg\":\"ES256\","
             "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
             "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
             "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\",\"alg\":\"EdDSA\","
             "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
             NULL);
    CHECK(s && mgw_jwks_count(s) == 2);
    mgw_jwt_t t = {.alg = MGW_JWA_EDDSA, .kid = {"k", 1}, .has_kid = 1};
    mgw_jwt_err_t why = MGW_JWT_OK;
    const mgw_jwk_t *k = s ? mgw_jwks_find(s, &t, &why) : NULL;
    CHECK(k && k->kty == MGW_JWK_OKP);
    t.alg = MGW_JWA_ES384;
    CHECK(s && mgw_jwks_find(s, &t, &why) == NULL && why == MGW_JWT_EKEYALG);
    /* No kid in the token: fine with exactly one key, whatever its kid. */
    t.has_kid = 0;
    CHECK(s && mgw_jwks_find(s, &t, &why) == NULL && why == MGW_JWT_ENOKID);
    mgw_jwks_unref(s);
    /* An RSA key for RS256 only: the RFC's token fits, PS256 does not. */
    char rs[600];
    snprintf(rs, sizeof(rs), "{\"keys\":[{\"alg\":\"RS256\",%s",
             RFC_A2_JWKS + strlen("{\"keys\":[{"));
    s = jwks(rs, NULL);
    CHECK(parse(RFC_A2, &t) == MGW_JWT_OK);
    CHECK(s && mgw_jwks_find(s, &t, &why) != NULL);
    t.alg = MGW_JWA_PS256;
    CHECK(s && mgw_jwks_find(s, &t, &why) == NULL && why == MGW_JWT_EKEYALG);
    CHECK(s && mgw_jwt_verify(&t, &s->keys[0]) == MGW_JWT_ESIG);
    mgw_jwks_unref(s);
    s = jwks("{\"keys\":[]}", NULL);
    t.alg = MGW_JWA_RS256;
    CHECK(s && mgw_jwks_count(s) == 0 && mgw_jwks_find(s, &t, &why) == NULL &&
          why == MGW_JWT_ENOKID);
    t.has_kid = 1;
    CHECK(s && mgw_jwks_find(s, &t, &why) == NULL && why == MGW_JWT_EKID);
    mgw_jwks_unref(s);
    CHECK(mgw_jwks_count(NULL) == 0);
    mgw_jwks_unref(NULL);

    /* A token without kid against a set of one key (the RSA key alone), and of five. */
    const char *end = strstr(JWKS, "},{");
    s = jwks(mgw_pool_printf(pool, "%.*s}]}", (int)(end - JWKS), JWKS), NULL);
    CHECK(parse(TOK_RS256_NOKID, &t) == MGW_JWT_OK && !t.has_kid);
    k = s ? mgw_jwks_find(s, &t, &why) : NULL;
    CHECK(k && mgw_jwt_verify(&t, k) == MGW_JWT_OK);
    mgw_jwks_unref(s);
    s = jwks(JWKS, NULL);
    CHECK(s && mgw_jwks_find(s, &t, &why) == NULL && why == MGW_JWT_ENOKID);
    mgw_jwks_unref(s);
}

/* ES signatures are r || s of exactly twice the field size: shorter, longer, or DER (what
 * OpenSSL itself produces) is refused, and leading zero bytes of r are kept. */
static void test_ecdsa_lengths(void)
{
    mgw_jwks_t *s = jwks(JWKS, NULL);
    static const struct {
        const char *tok;
        int field;
    } cases[] = {{TOK_ES256, 32}, {TOK_ES384, 48}, {TOK_ES512, 66}};
    for (size_t i = 0; s && i < 3; i++) {
        mgw_jwt_t t;
        mgw_jwt_err_t why;
        CHECK(parse(cases[i].tok, &t) == MGW_JWT_OK && t.sig_len == 2 * (size_t)cases[i].field);
        const mgw_jwk_t *k = mgw_jwks_find(s, &t, &why);
        CHECK(k && mgw_jwt_verify(&t, k) == MGW_JWT_OK);
        if (!k) continue;
        uint8_t sig[2 * 66 + 2], der[160];
        size_t n = t.sig_len;
        memcpy(sig, t.sig, n);
        size_t dn = ecdsa_der(&t, cases[i].field, der, sizeof(der));
        CHECK(dn > 0);
        const char *variants[] = {
            resign(cases[i].tok, sig, n - 1),
            resign(cases[i].tok, sig, n / 2),
            resign(cases[i].tok, der, dn),
            resign(cases[i].tok, (const uint8_t *)"", 0),
        };
        for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
            mgw_jwt_t u;
            CHECK(parse(variants[v], &u) == MGW_JWT_OK && mgw_jwt_verify(&u, k) == MGW_JWT_ESIG);
        }
        /* One more byte, zero, in front of the signature (r with a leading zero, s shifted). */
        memmove(sig + 1, sig, n);
        sig[0] = 0;
        mgw_jwt_t u;
        CHECK(parse(resign(cases[i].tok, sig, n + 1), &u) == MGW_JWT_OK);
        CHECK(mgw_jwt_verify(&u, k) == MGW_JWT_ESIG);
    }
    /* The ES512 token's r starts with a zero byte: it verified above with it kept. */
    mgw_jwt_t t;
    CHECK(parse(TOK_ES512, &t) == MGW_JWT_OK && t.sig[0] == 0);
    mgw_jwks_unref(s);
}

static void test_base64url(void)
{
    /* Every byte: only the 64 characters of the URL alphabet decode. */
    int accepted = 0;
    for (int c = 0; c < 256; c++) {
        char s[4] = {'A', 'A', 'A', (char)c};
        uint8_t out[3];
        size_t n;
        if (b64url_decode(s, 4, out, &n) == 0) accepted++;
        if (strchr("+/=. \t\r\n", c) && c) CHECK(b64url_decode(s, 4, out, &n) == -1);
    }
    CHECK(accepted == 64);
    /* Round trips with mgw_base64 for every length up to 70. */
    uint8_t data[70], back[70];
    for (int i = 0; i < 70; i++)
        data[i] = (uint8_t)(i * 37 + 11);
    int bad = 0;
    for (size_t n = 0; n <= 70; n++) {
        char enc[100];
        size_t en = mgw_base64(data, n, enc, 1), dn = 99;
        if (b64url_decode(enc, en, back, &dn) < 0 || dn != n || memcmp(data, back, n) != 0) bad++;
    }
    CHECK(bad == 0);
    /* Non-canonical trailing bits, and impossible lengths. */
    uint8_t out[8];
    size_t n;
    CHECK(b64url_decode("QQ", 2, out, &n) == 0 && n == 1 && out[0] == 'A');
    CHECK(b64url_decode("QR", 2, out, &n) == -1);
    CHECK(b64url_decode("QUE", 3, out, &n) == 0 && n == 2);
    CHECK(b64url_decode("QUF", 3, out, &n) == -1);
    CHECK(b64url_decode("Q", 1, out, &n) == -1);
    CHECK(b64url_decode("QUFBQ", 5, out, &n) == -1);
    CHECK(b64url_decode("", 0, out, &n) == 0 && n == 0);

    /* The same rules inside a token, in each of its three parts. */
    mgw_jwt_t t;
    size_t len = strlen(TOK_HS256);
    const char *dot1 = strchr(TOK_HS256, '.'), *dot2 = strrchr(TOK_HS256, '.');
    size_t at[3] = {(size_t)(dot1 - TOK_HS256), (size_t)(dot2 - TOK_HS256), len};
    static const char *const inserts[] = {"=", "==", " ", "\n", "\t", "+", "/", "%3D", "\\"};
    for (int part = 0; part < 3; part++) {
        for (size_t i = 0; i < sizeof(inserts) / sizeof(inserts[0]); i++) {
            /* at the end of the part, and in its middle */
            for (int mid = 0; mid < 2; mid++) {
                size_t pos = mid ? at[part] - 5 : at[part];
                char *s = mgw_pool_printf(pool, "%.*s%s%s", (int)pos, TOK_HS256, inserts[i],
                                          TOK_HS256 + pos);
                CHECK(parse(s, &t) == MGW_JWT_EMALFORMED);
            }
        }
    }
    /* The HS256 signature is 43 characters: its last one carries 2 unused bits. */
    char *s = mgw_pool_strdup(pool, TOK_HS256);
    char *last = s + len - 1;
    CHECK(parse(s, &t) == MGW_JWT_OK);
    uint8_t v = b64v[(uint8_t)*last];
    *last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[v | 1];
    CHECK(parse(s, &t) == MGW_JWT_EMALFORMED);
    *last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[v | 2];
    CHECK(parse(s, &t) == MGW_JWT_EMALFORMED);
}

static void test_structure(void)
{
    mgw_jwt_t t;
    const char *h = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";
    const char *p = "{\"iss\":\"" ISSUER "\",\"aud\":\"pets\",\"exp\":2000000000}";
    CHECK(parse(mk(h, p, "AAAA"), &t) == MGW_JWT_OK);
    CHECK(mgw_jwt_parse(pool, "", 0, &t) == MGW_JWT_ENOTOKEN);
    CHECK(mgw_jwt_parse(pool, NULL, 0, &t) == MGW_JWT_ENOTOKEN);

    /* Size: 8192 bytes are parsed, 8193 are not. */
    static char big[MGW_JWT_MAX + 2];
    char *pad = mgw_pool_alloc(pool, 6000);
    const char *fits;
    size_t fn, plen = 5999;
    do { /* a payload after which the rest up to the limit is a possible base64url length */
        memset(pad, 'x', plen);
        pad[plen--] = '\0';
        fits = mk(h, mgw_pool_printf(pool, "{\"x\":\"%s\"}", pad), "");
        fn = strlen(fits);
    } while ((MGW_JWT_MAX - fn) % 4 == 1);
    memcpy(big, fits, fn);
    memset(big + fn, 'A', MGW_JWT_MAX - fn); /* a signature up to the limit */
    CHECK(mgw_jwt_parse(pool, big, MGW_JWT_MAX, &t) == MGW_JWT_OK);
    memset(big, 'A', sizeof(big));
    CHECK(mgw_jwt_parse(pool, big, MGW_JWT_MAX + 1, &t) == MGW_JWT_ETOOLARGE);
    CHECK(mgw_jwt_parse(pool, big, MGW_JWT_MAX, &t) == MGW_JWT_EMALFORMED);

    static const char *const bad_shapes[] = {
        "abc",
        "abc.def",
        "a.b.c.d",
        "a.b.c.d.e",
        "..",
        "...",
        ".eyJ9.",
        "eyJhbGciOiJSUzI1NiJ9..",
        "eyJhbGciOiJSUzI1NiJ9",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.",
    };
    for (size_t i = 0; i < sizeof(bad_shapes) / sizeof(bad_shapes[0]); i++) {
        if (parse(bad_shapes[i], &t) != MGW_JWT_EMALFORMED) printf("#   %s\n", bad_shapes[i]);
        CHECK(parse(bad_shapes[i], &t) == MGW_JWT_EMALFORMED);
    }
    CHECK(parse(mk(h, "{}", ""), &t) == MGW_JWT_OK); /* the smallest: {} claims, no signature */

    static const char *const bad_headers[] = {
        "",
        "[]",
        "\"RS256\"",
        "null",
        "{\"alg\":\"RS256\"",
        "{\"alg\":\"RS256\"}}",
        "{\"alg\":\"RS256\",\"alg\":\"none\"}",             /* duplicate */
        "{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}", /* crit */
        "{\"alg\":\"RS256\",\"crit\":[]}",
        "{\"alg\":\"RS256\",\"b64\":false,\"crit\":[\"b64\"]}",
        "{\"alg\":\"RS256\",\"kid\":7}",
        "{\"alg\":\"RS256\",\"kid\":null}",
        "{\"alg\":\"RS256\",\"kid\":\"\xc0\xaf\"}", /* bad UTF-8 */
        "{\"alg\":\"RS256\"}x",
    };
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        if (parse(mk(bad_headers[i], p, "AAAA"), &t) != MGW_JWT_EMALFORMED)
            printf("#   %s\n", bad_headers[i]);
        CHECK(parse(mk(bad_headers[i], p, "AAAA"), &t) == MGW_JWT_EMALFORMED);
    }
    /* Whitespace around the JSON is JSON's own: the header is still one object. */
    CHECK(parse(mk(" {\"alg\":\"RS256\"}\r\n", p, ""), &t) == MGW_JWT_OK);

    char deep32[200], deep33[220];
    int n = snprintf(deep32, sizeof(deep32), "{\"a\":");
    for (int i = 0; i < 31; i++) /* the object and 31 arrays: 32 levels */
        deep32[n++] = '[';
    for (int i = 0; i < 31; i++)
        deep32[n++] = ']';
    deep32[n++] = '}';
    deep32[n] = '\0';
    snprintf(deep33, sizeof(deep33), "{\"b\":%s}", deep32);
    static const struct {
        const char *payload;
        mgw_jwt_err_t want;
    } payloads[] = {
        {"", MGW_JWT_EMALFORMED},
        {"[]", MGW_JWT_EMALFORMED},
        {"\"claims\"", MGW_JWT_EMALFORMED},
        {"{\"sub\":\"a\",\"sub\":\"b\"}", MGW_JWT_EMALFORMED},
        {"{\"sub\":\"\xed\xa0\x80\"}", MGW_JWT_EMALFORMED}, /* a surrogate in UTF-8 */
        {"{\"sub\":\"\\udc00\"}", MGW_JWT_EMALFORMED},      /* a lone surrogate escape */
        {"{\"sub\":\"\xff\"}", MGW_JWT_EMALFORMED},
        {"{\"exp\":\"2000000000\"}", MGW_JWT_EMALFORMED},
        {"{\"exp\":null}", MGW_JWT_EMALFORMED},
        {"{\"nbf\":true}", MGW_JWT_EMALFORMED},
        {"{\"iat\":[1]}", MGW_JWT_EMALFORMED},
        {"{\"exp\":01}", MGW_JWT_EMALFORMED},
        {"{\"exp\":1,}", MGW_JWT_EMALFORMED},
        {"{\"exp\":1.5,\"nbf\":1.5,\"iat\":-2.5}", MGW_JWT_OK},
        {"{\"exp\":1e300,\"nbf\":-1e300}", MGW_JWT_OK},
    };
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        mgw_jwt_err_t got = parse(mk(h, payloads[i].payload, "AAAA"), &t);
        if (got != payloads[i].want) printf("#   payload %zu: %d\n", i, got);
        CHECK(got == payloads[i].want);
    }
    CHECK(parse(mk(h, deep32, ""), &t) == MGW_JWT_OK);
    CHECK(parse(mk(h, deep33, ""), &t) == MGW_JWT_EMALFORMED);

    /* Fractions never widen the window: exp down, nbf and iat up. */
    CHECK(parse(mk(h, "{\"exp\":1.5,\"nbf\":1.5,\"iat\":-2.5}", ""), &t) == MGW_JWT_OK);
    CHECK(t.exp == 1 && t.nbf == 2 && t.iat == -2);
    CHECK(parse(mk(h, "{\"exp\":1e300,\"nbf\":-1e300}", ""), &t) == MGW_JWT_OK);
    CHECK(t.exp == INT64_C(1) << 62 && t.nbf == -(INT64_C(1) << 62) && !t.has_iat);
    CHECK(mgw_jwt_check_time(&t, 300, NOW) == MGW_JWT_OK);
    CHECK(parse(mk(h, "{\"exp\":1e400}", ""), &t) == MGW_JWT_OK && t.exp == INT64_C(1) << 62);
    /* The signing input is the first two parts, as sent. */
    const char *tok = mk(h, p, "AAAA");
    CHECK(parse(tok, &t) == MGW_JWT_OK && t.signing_input == tok &&
          t.signing_len == (size_t)(strrchr(tok, '.') - tok) && t.sig_len == 3);
}

static void test_claims(void)
{
    static const struct {
        const char *payload;
        mgw_jwt_err_t want;
    } cases[] = {
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"pets\"}", MGW_JWT_OK},
        {"{\"iss\":\"" ISSUER "\",\"aud\":[\"x\",\"pets\"]}", MGW_JWT_OK},
        {"{\"iss\":\"" ISSUER "\",\"aud\":[1,null,\"other\"]}", MGW_JWT_OK},
        {"{\"iss\":\"" ISSUER "\",\"client_id\":\"pets\"}", MGW_JWT_OK},
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"x\",\"client_id\":\"pets\"}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":[],\"client_id\":\"pets\"}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"Pets\"}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"pets \"}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"pets other\"}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":[\"x\",[\"pets\"]]}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":{\"pets\":1}}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":null}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"client_id\":[\"pets\"]}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\"}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"pe\\u0000ts\"}", MGW_JWT_EAUD},
        {"{\"iss\":\"" ISSUER "/\",\"aud\":\"pets\"}", MGW_JWT_EISS},
        {"{\"iss\":\"https://idp.test/realm2\",\"aud\":\"pets\"}", MGW_JWT_EISS},
        {"{\"iss\":[\"" ISSUER "\"],\"aud\":\"pets\"}", MGW_JWT_EISS},
        {"{\"aud\":\"pets\"}", MGW_JWT_EISS},
        {"{\"iss\":\"https://idp.test/REALM\",\"aud\":\"x\",\"exp\":1}",
         MGW_JWT_EISS},                                                              /* iss first */
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"x\",\"exp\":1}", MGW_JWT_EAUD},          /* then aud */
        {"{\"iss\":\"" ISSUER "\",\"aud\":\"pets\",\"exp\":1}", MGW_JWT_EEXP},       /* then time */
        {"{\"iss\":\"https:\\/\\/idp.test\\/realm\",\"aud\":\"pets\"}", MGW_JWT_OK}, /* escapes */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mgw_jwt_t t;
        CHECK(parse(mk("{\"alg\":\"ES256\"}", cases[i].payload, ""), &t) == MGW_JWT_OK);
        mgw_jwt_err_t got = mgw_jwt_check_claims(&t, &rules, NOW);
        if (got != cases[i].want) printf("#   claims %zu: %s\n", i, mgw_jwt_describe(got));
        CHECK(got == cases[i].want);
    }
    /* Rules without an audience or an issuer accept nothing. */
    mgw_jwt_t t;
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{\"iss\":\"" ISSUER "\",\"aud\":\"pets\"}", ""), &t) ==
          0);
    mgw_jwt_rules_t none = {ISSUER, NULL, 0, 0};
    CHECK(mgw_jwt_check_claims(&t, &none, NOW) == MGW_JWT_EAUD);
    mgw_jwt_rules_t noiss = {NULL, rules.audiences, 2, 0};
    CHECK(mgw_jwt_check_claims(&t, &noiss, NOW) == MGW_JWT_EISS);
}

static void test_time(void)
{
    mgw_jwt_t t;
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{\"exp\":1000,\"nbf\":900,\"iat\":950}", ""), &t) == 0);
    CHECK(mgw_jwt_check_time(&t, 0, 999) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, 0, 1000) == MGW_JWT_EEXP);
    CHECK(mgw_jwt_check_time(&t, 10, 1009) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, 10, 1010) == MGW_JWT_EEXP);
    CHECK(mgw_jwt_check_time(&t, 0, 950) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, 0, 949) == MGW_JWT_EIAT);
    CHECK(mgw_jwt_check_time(&t, 0, 900) == MGW_JWT_EIAT);
    CHECK(mgw_jwt_check_time(&t, 0, 899) == MGW_JWT_ENBF); /* nbf before iat */
    CHECK(mgw_jwt_check_time(&t, 50, 900) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, 50, 899) == MGW_JWT_EIAT);
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{\"exp\":1000,\"nbf\":900}", ""), &t) == 0);
    CHECK(mgw_jwt_check_time(&t, 0, 900) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, 50, 850) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, 50, 849) == MGW_JWT_ENBF);
    CHECK(mgw_jwt_check_time(&t, -5, 999) == MGW_JWT_OK); /* a negative leeway is none */
    CHECK(mgw_jwt_check_time(&t, -5, 1000) == MGW_JWT_EEXP);
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{\"exp\":1000,\"nbf\":2000}", ""), &t) == 0);
    CHECK(mgw_jwt_check_time(&t, 0, 1500) == MGW_JWT_EEXP); /* exp first */
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{\"iat\":2000}", ""), &t) == 0);
    CHECK(mgw_jwt_check_time(&t, 0, 1999) == MGW_JWT_EIAT);
    CHECK(mgw_jwt_check_time(&t, 1, 1999) == MGW_JWT_OK);
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{}", ""), &t) == 0);
    CHECK(mgw_jwt_check_time(&t, 0, INT64_MAX) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, INT64_MAX, INT64_MIN) == MGW_JWT_OK);
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{\"exp\":1e30,\"nbf\":-1e30}", ""), &t) == 0);
    CHECK(mgw_jwt_check_time(&t, INT64_MAX, INT64_MAX) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_time(&t, INT64_MAX, INT64_MIN) == MGW_JWT_OK);
    /* The claims check uses the rules' leeway. */
    CHECK(parse(mk("{\"alg\":\"ES256\"}", "{\"iss\":\"" ISSUER "\",\"aud\":\"pets\",\"exp\":1000}",
                   ""),
                &t) == 0);
    mgw_jwt_rules_t r = rules;
    r.leeway = 30;
    CHECK(mgw_jwt_check_claims(&t, &r, 1029) == MGW_JWT_OK);
    CHECK(mgw_jwt_check_claims(&t, &r, 1030) == MGW_JWT_EEXP);
}

static void test_scopes(void)
{
    static const struct {
        const char *payload;
        const char *need[3];
        int n;
        mgw_jwt_err_t want;
    } cases[] = {
        {"{\"scope\":\"pets:read pets:write\"}", {"pets:read"}, 1, MGW_JWT_OK},
        {"{\"scope\":\"pets:read pets:write\"}", {"pets:write"}, 1, MGW_JWT_OK},
        {"{\"scope\":\"  a   b  \"}", {"b"}, 1, MGW_JWT_OK},
        {"{\"scope\":\"pets:read pets:write\"}", {"pets"}, 1, MGW_JWT_ESCOPE},
        {"{\"scope\":\"pets:read pets:write\"}", {"pets:read pets:write"}, 1, MGW_JWT_ESCOPE},
        {"{\"scope\":\"pets:readx\"}", {"pets:read"}, 1, MGW_JWT_ESCOPE},
        {"{\"scope\":\"a\"}", {"x", "y", "a"}, 3, MGW_JWT_OK},
        {"{\"scope\":\"a\"}", {"x", "y"}, 2, MGW_JWT_ESCOPE},
        {"{\"scope\":\"a\"}", {""}, 1, MGW_JWT_ESCOPE},
        {"{\"scope\":\"\"}", {""}, 1, MGW_JWT_ESCOPE},
        {"{\"scope\":[\"a\"]}", {"a"}, 1, MGW_JWT_ESCOPE}, /* scope is a string or nothing */
        {"{\"scp\":[\"a\",\"b c\"]}", {"b c"}, 1, MGW_JWT_OK},
        {"{\"scp\":[\"a\",\"b c\"]}", {"b"}, 1, MGW_JWT_ESCOPE},
        {"{\"scp\":[1,\"a\"]}", {"a"}, 1, MGW_JWT_OK},
        {"{\"scp\":\"a b\"}", {"b"}, 1, MGW_JWT_OK},
        {"{\"scp\":{\"a\":1}}", {"a"}, 1, MGW_JWT_ESCOPE},
        {"{\"scope\":\"x\",\"scp\":[\"a\"]}", {"a"}, 1, MGW_JWT_OK},
        {"{\"scope\":\"a\\tb\"}", {"b"}, 1, MGW_JWT_ESCOPE}, /* space-separated, nothing else */
        {"{}", {"a"}, 1, MGW_JWT_ESCOPE},
        {"{}", {NULL}, 0, MGW_JWT_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mgw_jwt_t t;
        CHECK(parse(mk("{\"alg\":\"ES256\"}", cases[i].payload, ""), &t) == MGW_JWT_OK);
        mgw_jwt_err_t got = mgw_jwt_check_scopes(&t, cases[i].need, cases[i].n);
        if (got != cases[i].want) printf("#   scopes %zu\n", i);
        CHECK(got == cases[i].want);
    }
}

/* A JWKS with one key, the given members around the RFC 7515 A.3 P-256 point. */
static const char *ec_set(const char *members)
{
    return mgw_pool_printf(pool,
                           "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                           "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                           "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"%s}]}",
                           members);
}

static void test_jwks_skipped(void)
{
    static const struct {
        const char *json;
        int count, skipped;
    } cases[] = {
        {"{\"keys\":[]}", 0, 0},
        {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"oct\",\"alg\":\"HS256\",\"use\":\"sig\",\"k\":\"AAAA\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"O9FKrCKW4VRbwIzxkrxaxUr-"
         "hfwfFnglVzTbB2EnKBg\"}]}",
         0, 1},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AAAA\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"P-256\",\"x\":\"AAAA\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"PQC\",\"pub\":\"AAAA\"},{\"kty\":\"rsa\",\"n\":\"AAAA\"}]}", 0, 2},
        {"{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"ES256\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"HS256\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"none\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"RSA\",\"d\":\"AAAA\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"RSA\",\"p\":\"AAAA\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\"x\",\"x\":\"AAAA\"}]}", 0, 1},
        {"{\"keys\":[{\"kty\":\"EC\",\"use\":\"sig\",\"crv\":\"P-256\",\"alg\":\"ES384\",\"x\":"
         "\"A\",\"y\":\"A\"}]}",
         0, 1},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
         "7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
         "{\"kty\":\"oct\",\"k\":\"AAAA\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"enc\","
         "\"x\":\"AAAA\"}],"
         "\"other\":[1,2]}",
         1, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int skipped = -1;
        mgw_jwks_t *s = jwks(cases[i].json, &skipped);
        if (!s || mgw_jwks_count(s) != cases[i].count || skipped != cases[i].skipped)
            printf("#   jwks case %zu: %d keys, %d skipped\n", i, mgw_jwks_count(s), skipped);
        CHECK(s && mgw_jwks_count(s) == cases[i].count && skipped == cases[i].skipped);
        mgw_jwks_unref(s);
    }
    /* skipped may be NULL. */
    mgw_jwks_t *s = jwks(cases[1].json, NULL);
    CHECK(s && mgw_jwks_count(s) == 0);
    mgw_jwks_unref(s);
    /* The RFC 7515 A.2 private key (it carries d, p, q...): skipped, not published. */
    s = jwks(ec_set(",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\""), NULL);
    CHECK(s && mgw_jwks_count(s) == 0);
    mgw_jwks_unref(s);
    s = jwks(ec_set(",\"use\":\"sig\",\"alg\":\"ES256\",\"kid\":\"\""), NULL);
    CHECK(s && mgw_jwks_count(s) == 1 && s->keys[0].has_kid && s->keys[0].kid.n == 0 &&
          s->keys[0].alg == MGW_JWA_ES256 && s->keys[0].crv == MGW_JWK_P256);
    mgw_jwks_unref(s);
}

static void test_jwks_errors(void)
{
    char rsa_e1[600], rsa_e2[600], rsa_big_e[700], rsa_no_e[600];
    const char *rest = RFC_A2_JWKS + strlen("{\"keys\":[{\"kty\":\"RSA\",");
    /* rest is "n":"...","e":"AQAB"}]} */
    size_t nlen = strstr(rest, ",\"e\"") - rest;
    snprintf(rsa_e1, sizeof(rsa_e1), "{\"keys\":[{\"kty\":\"RSA\",%.*s,\"e\":\"AQ\"}]}", (int)nlen,
             rest);
    snprintf(rsa_e2, sizeof(rsa_e2), "{\"keys\":[{\"kty\":\"RSA\",%.*s,\"e\":\"AQAA\"}]}",
             (int)nlen, rest);
    snprintf(rsa_big_e, sizeof(rsa_big_e),
             "{\"keys\":[{\"kty\":\"RSA\",%.*s,\"e\":\"AQAAAAAAAAAB\"}]}", (int)nlen, rest);
    snprintf(rsa_no_e, sizeof(rsa_no_e), "{\"keys\":[{\"kty\":\"RSA\",%.*s}]}", (int)nlen, rest);
    char small[600];
    snprintf(small, sizeof(small), "{\"keys\":[%s]}", RSA1024_JWK);
    static const char y_off_curve[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5aA";
    static const struct {
        const char *json, *why;
    } fixed[] = {
        {"", "not JSON"},
        {"{\"keys\":[]", "not JSON"},
        {"{\"keys\":[]} x", "not JSON"},
        {"{\"keys\":[],\"keys\":[]}", "duplicate"},
        {"[]", "no \"keys\""},
        {"{}", "no \"keys\""},
        {"{\"keys\":{}}", "no \"keys\""},
        {"{\"keys\":[1]}", "key 0: not an object"},
        {"{\"keys\":[{}]}", "kty"},
        {"{\"keys\":[{\"kty\":1}]}", "kty"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"use\":1}]}", "use"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":1}]}", "alg"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":1}]}", "kid"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", "\"n\""},
        {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"AQAB\"}]}", "\"n\""},
        {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AA==\",\"e\":\"AQAB\"}]}", "base64url"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", "2048"},
        {"{\"keys\":[{\"kty\":\"EC\",\"x\":\"A\"}]}", "crv"},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}]}", "\"x\""},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
         "7TyWQHOg7hcvPapiMlrwIaaPcH\"}]}",
         "32 bytes"},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
         "7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}",
         "base64url"},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
         "7TyWQHOg7hcvPapiMlrwIaaPcHURp\"}]}",
         "base64url"},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        char err[200] = "";
        int skipped = -1;
        mgw_jwks_t *s =
            mgw_jwks_parse(fixed[i].json, strlen(fixed[i].json), &skipped, err, sizeof(err));
        if (s || !strstr(err, fixed[i].why)) printf("#   jwks error %zu: '%s'\n", i, err);
        CHECK(s == NULL && strstr(err, fixed[i].why) != NULL);
        mgw_jwks_unref(s);
    }
    const struct {
        const char *json, *why;
    } built[] = {
        {small, "2048"},
        {rsa_e1, "exponent"},
        {rsa_e2, "exponent"},
        {rsa_big_e, "exponent"},
        {rsa_no_e, "\"e\""},
        {mgw_pool_printf(
             pool, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
             "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y_off_curve),
         "not on its curve"},
        {mgw_pool_printf(
             pool, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}]}",
             "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"),
         "wrong length"},
        {mgw_pool_printf(
             pool, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA%s\",\"y\":\"%s\"}]}",
             "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"),
         "wrong length"},
        {mgw_pool_printf(
             pool, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
         "not on its curve"},
        /* A good key first: the set is refused as a whole, and nothing leaks. */
        {mgw_pool_printf(pool, "{\"keys\":[%.*s,{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                         (int)(strlen(JWKS) - strlen("{\"keys\":[") - 2),
                         JWKS + strlen("{\"keys\":[")),
         "key 5: "},
    };
    for (size_t i = 0; i < sizeof(built) / sizeof(built[0]); i++) {
        char err[200] = "";
        mgw_jwks_t *s =
            mgw_jwks_parse(built[i].json, strlen(built[i].json), NULL, err, sizeof(err));
        if (s || !strstr(err, built[i].why)) printf("#   jwks built %zu: '%s'\n", i, err);
        CHECK(s == NULL && strstr(err, built[i].why) != NULL);
        mgw_jwks_unref(s);
    }
    /* Size: over 150,000 bytes is refused before parsing; errlen 0 is fine. */
    char *big = mgw_pool_alloc(pool, MGW_JWKS_MAX + 2);
    size_t n = (size_t)snprintf(big, 32, "{\"keys\":[],\"pad\":\"");
    memset(big + n, 'x', MGW_JWKS_MAX - n - 2);
    memcpy(big + MGW_JWKS_MAX - 2, "\"}", 3);
    mgw_jwks_t *s = jwks(big, NULL);
    CHECK(s && mgw_jwks_count(s) == 0);
    mgw_jwks_unref(s);
    big[MGW_JWKS_MAX - 2] = 'x';
    memcpy(big + MGW_JWKS_MAX - 1, "\"}", 3);
    char err[100];
    CHECK(mgw_jwks_parse(big, MGW_JWKS_MAX + 1, NULL, err, sizeof(err)) == NULL &&
          strstr(err, "150000"));
    CHECK(mgw_jwks_parse("[]", 2, NULL, NULL, 0) == NULL);
}

static void *ref_worker(void *arg)
{
    mgw_jwks_t *s = arg;
    for (int i = 0; i < 100000; i++) {
        mgw_jwks_ref(s);
        mgw_jwks_unref(s);
    }
    return NULL;
}

/* Two threads taking and dropping references leave the count where it was; the last
 * unref frees (a leak or a double free shows under the sanitizers). */
static void test_jwks_refcount(void)
{
    mgw_jwks_t *s = jwks(JWKS, NULL);
    if (!s) return;
    pthread_t a, b;
    pthread_create(&a, NULL, ref_worker, s);
    pthread_create(&b, NULL, ref_worker, s);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK(atomic_load(&s->refs) == 1);
    mgw_jwks_ref(s);
    mgw_jwks_unref(s);
    CHECK(mgw_jwks_count(s) == 5);
    mgw_jwks_unref(s);
}

int main(void)
{
    pool = mgw_pool_create(0);
    RUN(test_jwa_names);
    RUN(test_describe);
    RUN(test_rfc7515_hs256);
    RUN(test_rfc7515_rs256_es256);
    RUN(test_rfc8037_ed25519);
    RUN(test_every_algorithm);
    RUN(test_rsa_key_as_hmac_secret);
    RUN(test_alg_none_and_unknown);
    RUN(test_key_lookup);
    RUN(test_ecdsa_lengths);
    RUN(test_base64url);
    RUN(test_structure);
    RUN(test_claims);
    RUN(test_time);
    RUN(test_scopes);
    RUN(test_jwks_skipped);
    RUN(test_jwks_errors);
    RUN(test_jwks_refcount);
    mgw_pool_destroy(pool);
    return DONE();
}
