/*
 * JOSE (jose.h): compact JWS parsing, JWK Sets as OpenSSL 3 keys, signature and claim
 * checks. The token path (parse, find, verify, check) allocates only from the caller's
 * pool and from OpenSSL's verification context; key sets are built once per fetch on the
 * heap and shared read-only between workers.
 */
#include "base/jose.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "base/crypto.h"

/* ---- algorithms ---- */

enum { FAM_NONE, FAM_HS, FAM_RS, FAM_PS, FAM_ES, FAM_ED };

static const struct {
    const char *name;
    int family;
    int bits; /* the SHA-2 size; for ES, the curve's too */
} jwa[MGW_JWA__COUNT] = {
    [MGW_JWA_NONE] = {"none", FAM_NONE, 0},   [MGW_JWA_HS256] = {"HS256", FAM_HS, 256},
    [MGW_JWA_HS384] = {"HS384", FAM_HS, 384}, [MGW_JWA_HS512] = {"HS512", FAM_HS, 512},
    [MGW_JWA_RS256] = {"RS256", FAM_RS, 256}, [MGW_JWA_RS384] = {"RS384", FAM_RS, 384},
    [MGW_JWA_RS512] = {"RS512", FAM_RS, 512}, [MGW_JWA_PS256] = {"PS256", FAM_PS, 256},
    [MGW_JWA_PS384] = {"PS384", FAM_PS, 384}, [MGW_JWA_PS512] = {"PS512", FAM_PS, 512},
    [MGW_JWA_ES256] = {"ES256", FAM_ES, 256}, [MGW_JWA_ES384] = {"ES384", FAM_ES, 384},
    [MGW_JWA_ES512] = {"ES512", FAM_ES, 512}, [MGW_JWA_EDDSA] = {"EdDSA", FAM_ED, 0},
};

mgw_jwa_t mgw_jwa_parse(const char *name, size_t n)
{
    for (int a = MGW_JWA_HS256; a < MGW_JWA__COUNT; a++)
        if (strlen(jwa[a].name) == n && memcmp(jwa[a].name, name, n) == 0) return (mgw_jwa_t)a;
    return MGW_JWA_NONE;
}

const char *mgw_jwa_name(mgw_jwa_t a)
{
    return a > MGW_JWA_NONE && a < MGW_JWA__COUNT ? jwa[a].name : "none";
}

static const EVP_MD *jwa_md(mgw_jwa_t a)
{
    switch (jwa[a].bits) {
    case 256:
        return EVP_sha256();
    case 384:
        return EVP_sha384();
    case 512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

static const char *const reasons[MGW_JWT__COUNT] = {
    [MGW_JWT_OK] = "",
    [MGW_JWT_ENOTOKEN] = "no token",
    [MGW_JWT_EMALFORMED] = "the token is malformed",
    [MGW_JWT_ETOOLARGE] = "the token is too large",
    [MGW_JWT_EALG] = "the token's algorithm is not supported",
    [MGW_JWT_EKID] = "no key matches the token's kid",
    [MGW_JWT_ENOKID] = "the token has no kid and the key set has several keys",
    [MGW_JWT_EKEYALG] = "the token's algorithm does not fit its key",
    [MGW_JWT_ESIG] = "the signature is invalid",
    [MGW_JWT_EEXP] = "the token has expired",
    [MGW_JWT_ENBF] = "the token is not valid yet",
    [MGW_JWT_EIAT] = "the token was issued in the future",
    [MGW_JWT_EISS] = "the token has an invalid issuer",
    [MGW_JWT_EAUD] = "the token does not have a valid audience",
    [MGW_JWT_EFETCH] = "the keys could not be fetched",
    [MGW_JWT_ESCOPE] = "the token lacks a required scope",
};

const char *mgw_jwt_describe(mgw_jwt_err_t e)
{
    return (unsigned)e < MGW_JWT__COUNT ? reasons[e] : "the token is malformed";
}

/* ---- base64url ---- */

/* The value of each base64url character, 64 for any other byte. */
static const uint8_t b64v[256] = {
#define X64 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
    X64, X64, 64, 64, 64, 64, 64, 64, 64,  64,  64,  64,  64,  64,  64,  62,  64, 64,
    52,  53,  54, 55, 56, 57, 58, 59, 60,  61,  64,  64,  64,  64,  64,  64,  64, 0,
    1,   2,   3,  4,  5,  6,  7,  8,  9,   10,  11,  12,  13,  14,  15,  16,  17, 18,
    19,  20,  21, 22, 23, 24, 25, 64, 64,  64,  64,  63,  64,  26,  27,  28,  29, 30,
    31,  32,  33, 34, 35, 36, 37, 38, 39,  40,  41,  42,  43,  44,  45,  46,  47, 48,
    49,  50,  51, 64, 64, 64, 64, 64, X64, X64, X64, X64, X64, X64, X64, X64,
#undef X64
};

/*
 * Decodes the n base64url characters at s into out (room for n * 3 / 4 bytes) and sets
 * *outlen; -1 for any byte outside the alphabet (padding and whitespace included), a
 * length that no encoding has (n % 4 == 1), or unused low bits in the last character that
 * are not zero: each byte string has exactly one encoding, so a token cannot be altered
 * without changing its signature check.
 */
static int b64url_decode(const char *s, size_t n, uint8_t *out, size_t *outlen)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    for (; i + 4 <= n; i += 4) {
        unsigned a = b64v[p[i]], b = b64v[p[i + 1]], c = b64v[p[i + 2]], d = b64v[p[i + 3]];
        if ((a | b | c | d) & 64) return -1;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    size_t rest = n - i;
    if (rest == 1) return -1;
    if (rest >= 2) {
        unsigned a = b64v[p[i]], b = b64v[p[i + 1]], c = rest == 3 ? b64v[p[i + 2]] : 0;
        if ((a | b | c) & 64) return -1;
        if (rest == 2 && (b & 0x0F)) return -1;
        if (rest == 3 && (c & 0x03)) return -1;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        if (rest == 3) out[o++] = (uint8_t)(b << 4 | c >> 2);
    }
    *outlen = o;
    return 0;
}

/* ---- tokens ---- */

/* A NumericDate as whole seconds: exp rounded down and nbf/iat up, so that a fraction
 * never widens the window, and clamped far beyond any clock. */
static int64_t numeric_date(double v, int up)
{
    const double lim = 4611686018427387904.0; /* 2^62 */
    if (!(v > -lim)) return -(INT64_C(1) << 62);
    if (!(v < lim)) return INT64_C(1) << 62;
    return (int64_t)(up ? ceil(v) : floor(v));
}

/* Reads an optional NumericDate claim: 0 when it is absent or a number, -1 otherwise. */
static int time_claim(const mgw_json_t *claims, const char *name, int up, int64_t *v, int *has)
{
    const mgw_json_t *c = mgw_json_get(claims, name);
    if (c == NULL) return 0;
    if (c->type != MGW_JSON_NUMBER) return -1;
    *v = numeric_date(c->num, up);
    *has = 1;
    return 0;
}

/* Decodes one part of the token and parses it as a JSON object. */
static const mgw_json_t *json_part(mgw_pool_t *pool, const char *s, size_t n, uint8_t *buf)
{
    size_t len;
    mgw_json_t *v;
    if (b64url_decode(s, n, buf, &len) < 0) return NULL;
    if (mgw_json_parse(pool, (const char *)buf, len, &v, NULL, 0) < 0) return NULL;
    return v->type == MGW_JSON_OBJECT ? v : NULL;
}

mgw_jwt_err_t mgw_jwt_parse(mgw_pool_t *pool, const char *tok, size_t n, mgw_jwt_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0) return MGW_JWT_ENOTOKEN;
    if (n > MGW_JWT_MAX) return MGW_JWT_ETOOLARGE;
    const char *end = tok + n;
    const char *d1 = memchr(tok, '.', n);
    if (d1 == NULL) return MGW_JWT_EMALFORMED;
    const char *d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1))) return MGW_JWT_EMALFORMED;

    /* One buffer for the three decoded parts: each decodes to at most 3/4 of its length. */
    uint8_t *buf = mgw_pool_alloc(pool, n * 3 / 4 + 3);
    size_t hn = (size_t)(d1 - tok), pn = (size_t)(d2 - d1 - 1), sn = (size_t)(end - d2 - 1);
    const mgw_json_t *h = json_part(pool, tok, hn, buf);
    if (h == NULL) return MGW_JWT_EMALFORMED;
    uint8_t *pbuf = buf + hn * 3 / 4 + 1;
    const mgw_json_t *c = json_part(pool, d1 + 1, pn, pbuf);
    if (c == NULL) return MGW_JWT_EMALFORMED;
    uint8_t *sig = pbuf + pn * 3 / 4 + 1;
    if (b64url_decode(d2 + 1, sn, sig, &out->sig_len) < 0) return MGW_JWT_EMALFORMED;

    /* No extension is understood, so a token that marks one as critical is refused
     * (RFC 7515 section 4.1.11); b64=false (RFC 7797) can only come that way. */
    if (mgw_json_get(h, "crit")) return MGW_JWT_EMALFORMED;
    const mgw_json_t *kid = mgw_json_get(h, "kid"), *alg = mgw_json_get(h, "alg");
    if (kid) {
        if (kid->type != MGW_JSON_STRING) return MGW_JWT_EMALFORMED;
        out->kid = (mgw_str_t){kid->str, kid->len};
        out->has_kid = 1;
    }
    if (alg && alg->type != MGW_JSON_STRING) return MGW_JWT_EMALFORMED;
    if (time_claim(c, "exp", 0, &out->exp, &out->has_exp) < 0 ||
        time_claim(c, "nbf", 1, &out->nbf, &out->has_nbf) < 0 ||
        time_claim(c, "iat", 1, &out->iat, &out->has_iat) < 0)
        return MGW_JWT_EMALFORMED;
    out->header = h;
    out->claims = c;
    out->signing_input = tok;
    out->signing_len = (size_t)(d2 - tok);
    out->sig = sig;
    out->alg = alg ? mgw_jwa_parse(alg->str, alg->len) : MGW_JWA_NONE;
    return out->alg == MGW_JWA_NONE ? MGW_JWT_EALG : MGW_JWT_OK;
}

/* ---- key sets ---- */

struct mgw_jwks_s {
    atomic_int refs;
    int n;
    mgw_jwk_t keys[];
};

static const struct {
    const char *name;
    int crv, kty, field; /* field: bytes of a coordinate */
    const char *group;
} curves[] = {
    {"P-256", MGW_JWK_P256, MGW_JWK_EC, 32, "P-256"},
    {"P-384", MGW_JWK_P384, MGW_JWK_EC, 48, "P-384"},
    {"P-521", MGW_JWK_P521, MGW_JWK_EC, 66, "P-521"},
    {"Ed25519", MGW_JWK_ED25519, MGW_JWK_OKP, 32, NULL},
};

/* 1 when the key's kty and crv can verify alg a (its own alg is not looked at). */
static int fits(mgw_jwa_t a, int kty, int crv)
{
    if (a <= MGW_JWA_NONE || a >= MGW_JWA__COUNT) return 0;
    switch (jwa[a].family) {
    case FAM_RS:
    case FAM_PS:
        return kty == MGW_JWK_RSA;
    case FAM_ES:
        return kty == MGW_JWK_EC && crv == (a == MGW_JWA_ES256   ? MGW_JWK_P256
                                            : a == MGW_JWA_ES384 ? MGW_JWK_P384
                                                                 : MGW_JWK_P521);
    case FAM_ED:
        return kty == MGW_JWK_OKP && crv == MGW_JWK_ED25519;
    default:
        return 0;
    }
}

static int str_is(const mgw_json_t *v, const char *s)
{
    return v && v->type == MGW_JSON_STRING && v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

typedef struct {
    char *err;
    size_t errlen;
    int index;
} kctx_t;

static int key_fail(kctx_t *k, const char *why)
{
    if (k->errlen) snprintf(k->err, k->errlen, "key %d: %s", k->index, why);
    return -1;
}

/* A required base64url member of a key, decoded into pool memory. */
static int key_bytes(mgw_pool_t *pool, kctx_t *k, const mgw_json_t *key, const char *name,
                     uint8_t **out, size_t *len)
{
    const mgw_json_t *v = mgw_json_get(key, name);
    char why[64];
    if (v == NULL || v->type != MGW_JSON_STRING || v->len == 0) {
        snprintf(why, sizeof(why), "\"%s\" is missing or not a string", name);
        return key_fail(k, why);
    }
    *out = mgw_pool_alloc(pool, v->len * 3 / 4 + 3);
    if (b64url_decode(v->str, v->len, *out, len) < 0) {
        snprintf(why, sizeof(why), "\"%s\" is not base64url", name);
        return key_fail(k, why);
    }
    return 0;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(mgw_pool_t *pool, kctx_t *k, const mgw_json_t *key)
{
    uint8_t *nb, *eb;
    size_t nn, en;
    if (key_bytes(pool, k, key, "n", &nb, &nn) < 0 || key_bytes(pool, k, key, "e", &eb, &en) < 0)
        return NULL;
    BIGNUM *n = BN_bin2bn(nb, (int)nn, NULL), *e = BN_bin2bn(eb, (int)en, NULL);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    /* 16384 bits bounds the work one signature check can cost; OpenSSL itself refuses
     * public exponents over 64 bits for large moduli. */
    if (BN_num_bits(n) < 2048)
        key_fail(k, "the RSA modulus is shorter than 2048 bits");
    else if (BN_num_bits(n) > 16384)
        key_fail(k, "the RSA modulus is longer than 16384 bits");
    else if (BN_num_bits(e) > 64 || BN_cmp(e, BN_value_one()) <= 0 || !BN_is_odd(e))
        key_fail(k, "the RSA exponent is invalid");
    else if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
             !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
             !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
             (pkey = from_params("RSA", bld)) == NULL)
        key_fail(k, "OpenSSL refused the RSA key");
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

/* An EC key of curve c: x and y of exactly the field's size, a point on the curve. */
static EVP_PKEY *ec_key(mgw_pool_t *pool, kctx_t *k, const mgw_json_t *key, int c)
{
    uint8_t *x, *y;
    size_t xn, yn, f = (size_t)curves[c].field;
    if (key_bytes(pool, k, key, "x", &x, &xn) < 0 || key_bytes(pool, k, key, "y", &y, &yn) < 0)
        return NULL;
    if (xn != f || yn != f) return key_fail(k, "the EC coordinates have the wrong length"), NULL;
    uint8_t pub[1 + 2 * 66];
    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, x, f);
    memcpy(pub + 1 + f, y, f);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[c].group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * f))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (pkey) {
        /* An off-curve point invites invalid-curve attacks on anything that trusts it. */
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        int ok = ctx && EVP_PKEY_public_check(ctx) == 1;
        EVP_PKEY_CTX_free(ctx);
        if (!ok) EVP_PKEY_free(pkey), pkey = NULL;
    }
    if (pkey == NULL) key_fail(k, "the EC point is not on its curve");
    return pkey;
}

static EVP_PKEY *okp_key(mgw_pool_t *pool, kctx_t *k, const mgw_json_t *key)
{
    uint8_t *x;
    size_t xn;
    if (key_bytes(pool, k, key, "x", &x, &xn) < 0) return NULL;
    if (xn != 32) return key_fail(k, "the Ed25519 key is not 32 bytes"), NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xn);
    if (pkey == NULL) key_fail(k, "OpenSSL refused the Ed25519 key");
    return pkey;
}

/*
 * One entry of "keys": 1 with *out filled, 0 when it is skipped, -1 when it is malformed.
 * A key is skipped when nothing here could use it (another use, kty, curve or algorithm,
 * or a private key, which a key set published for verifiers must not carry).
 */
static int parse_key(mgw_pool_t *pool, kctx_t *k, const mgw_json_t *key, mgw_jwk_t *out)
{
    static const char *const private_parts[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    if (key->type != MGW_JSON_OBJECT) return key_fail(k, "not an object");
    const mgw_json_t *kty = mgw_json_get(key, "kty"), *use = mgw_json_get(key, "use");
    const mgw_json_t *alg = mgw_json_get(key, "alg"), *kid = mgw_json_get(key, "kid");
    const mgw_json_t *crv = mgw_json_get(key, "crv");
    if (kty == NULL || kty->type != MGW_JSON_STRING)
        return key_fail(k, "\"kty\" is missing or not a string");
    if (use && use->type != MGW_JSON_STRING) return key_fail(k, "\"use\" is not a string");
    if (alg && alg->type != MGW_JSON_STRING) return key_fail(k, "\"alg\" is not a string");
    if (kid && kid->type != MGW_JSON_STRING) return key_fail(k, "\"kid\" is not a string");
    if (use && !str_is(use, "sig")) return 0;
    for (size_t i = 0; i < sizeof(private_parts) / sizeof(private_parts[0]); i++)
        if (mgw_json_get(key, private_parts[i])) return 0;
    memset(out, 0, sizeof(*out));
    int c = -1;
    if (str_is(kty, "RSA")) {
        out->kty = MGW_JWK_RSA;
    } else if (str_is(kty, "EC") || str_is(kty, "OKP")) {
        out->kty = str_is(kty, "EC") ? MGW_JWK_EC : MGW_JWK_OKP;
        if (crv == NULL || crv->type != MGW_JSON_STRING)
            return key_fail(k, "\"crv\" is missing or not a string");
        for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
            if (curves[i].kty == out->kty && str_is(crv, curves[i].name)) c = (int)i;
        if (c < 0) return 0;
        out->crv = curves[c].crv;
    } else {
        return 0; /* "oct" (symmetric: never from a key set) and kinds unknown here */
    }
    if (alg) {
        out->alg = mgw_jwa_parse(alg->str, alg->len);
        if (!fits(out->alg, out->kty, out->crv)) return 0; /* e.g. an RSA-OAEP key */
    }
    out->pkey = out->kty == MGW_JWK_RSA  ? rsa_key(pool, k, key)
                : out->kty == MGW_JWK_EC ? ec_key(pool, k, key, c)
                                         : okp_key(pool, k, key);
    if (out->pkey == NULL) return -1;
    if (kid) {
        out->kid = (mgw_str_t){mgw_strndup(kid->str, kid->len), kid->len};
        out->has_kid = 1;
    }
    return 1;
}

static void jwks_free(mgw_jwks_t *s)
{
    for (int i = 0; i < s->n; i++) {
        EVP_PKEY_free(s->keys[i].pkey);
        free((char *)s->keys[i].kid.p);
    }
    free(s);
}

mgw_jwks_t *mgw_jwks_parse(const char *p, size_t n, int *skipped, char *err, size_t errlen)
{
    int skip = 0;
    mgw_jwks_t *s = NULL;
    mgw_json_t *root;
    if (errlen) err[0] = '\0';
    if (skipped) *skipped = 0;
    if (n > MGW_JWKS_MAX) {
        if (errlen) snprintf(err, errlen, "the key set is larger than %d bytes", MGW_JWKS_MAX);
        return NULL;
    }
    mgw_pool_t *pool = mgw_pool_create(0);
    char jerr[96];
    if (mgw_json_parse(pool, p, n, &root, jerr, sizeof(jerr)) < 0) {
        if (errlen) snprintf(err, errlen, "the key set is not JSON: %s", jerr);
        goto done;
    }
    const mgw_json_t *keys = mgw_json_get(root, "keys");
    if (keys == NULL || keys->type != MGW_JSON_ARRAY) {
        if (errlen) snprintf(err, errlen, "the key set has no \"keys\" array");
        goto done;
    }
    s = mgw_calloc(1, sizeof(*s) + (size_t)keys->n * sizeof(mgw_jwk_t));
    atomic_init(&s->refs, 1);
    for (int i = 0; i < keys->n; i++) {
        kctx_t k = {err, errlen, i};
        int r = parse_key(pool, &k, keys->items[i], &s->keys[s->n]);
        if (r < 0) {
            jwks_free(s);
            s = NULL;
            goto done;
        }
        if (r == 0)
            skip++;
        else
            s->n++;
    }
    if (skipped) *skipped = skip;
done:
    mgw_pool_destroy(pool);
    return s;
}

void mgw_jwks_ref(mgw_jwks_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void mgw_jwks_unref(mgw_jwks_t *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) jwks_free(s);
}

int mgw_jwks_count(const mgw_jwks_t *s)
{
    return s ? s->n : 0;
}

static int key_fits(const mgw_jwk_t *k, mgw_jwa_t a)
{
    return fits(a, k->kty, k->crv) && (k->alg == MGW_JWA_NONE || k->alg == a);
}

const mgw_jwk_t *mgw_jwks_find(const mgw_jwks_t *s, const mgw_jwt_t *t, mgw_jwt_err_t *why)
{
    int n = mgw_jwks_count(s);
    if (!t->has_kid) {
        if (n != 1) return *why = MGW_JWT_ENOKID, NULL;
        if (!key_fits(&s->keys[0], t->alg)) return *why = MGW_JWT_EKEYALG, NULL;
        return &s->keys[0];
    }
    /* A set may publish one kid for several keys (one per algorithm): the first that fits. */
    int seen = 0;
    for (int i = 0; i < n; i++) {
        const mgw_jwk_t *k = &s->keys[i];
        if (!k->has_kid || k->kid.n != t->kid.n || memcmp(k->kid.p, t->kid.p, k->kid.n) != 0)
            continue;
        if (key_fits(k, t->alg)) return k;
        seen = 1;
    }
    *why = seen ? MGW_JWT_EKEYALG : MGW_JWT_EKID;
    return NULL;
}

/* ---- signatures ---- */

/* A JWS ECDSA signature (r || s, each exactly the field's size: RFC 7518 section 3.4) as
 * the DER ECDSA-Sig-Value OpenSSL verifies; its length, or 0 when it is the wrong size. */
static size_t ecdsa_der(const mgw_jwt_t *t, int field, uint8_t *der, size_t cap)
{
    if (t->sig_len != 2 * (size_t)field) return 0;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(t->sig, field, NULL), *s = BN_bin2bn(t->sig + field, field, NULL);
    size_t len = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es now */
        int need = i2d_ECDSA_SIG(es, NULL);
        if (need > 0 && (size_t)need <= cap) {
            unsigned char *w = der;
            len = (size_t)i2d_ECDSA_SIG(es, &w);
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

mgw_jwt_err_t mgw_jwt_verify(const mgw_jwt_t *t, const mgw_jwk_t *k)
{
    if (!key_fits(k, t->alg) || k->pkey == NULL) return MGW_JWT_ESIG;
    int fam = jwa[t->alg].family;
    const uint8_t *sig = t->sig;
    size_t sig_len = t->sig_len;
    uint8_t der[160];
    if (fam == FAM_ES) {
        int field = t->alg == MGW_JWA_ES256 ? 32 : t->alg == MGW_JWA_ES384 ? 48 : 66;
        sig_len = ecdsa_der(t, field, der, sizeof(der));
        if (sig_len == 0) return MGW_JWT_ESIG;
        sig = der;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, fam == FAM_ED ? NULL : jwa_md(t->alg), NULL,
                                         k->pkey) == 1;
    if (ok && fam == FAM_PS)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)t->signing_input,
                                t->signing_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? MGW_JWT_OK : MGW_JWT_ESIG;
}

mgw_jwt_err_t mgw_jwt_verify_hmac(const mgw_jwt_t *t, const uint8_t *secret, size_t n)
{
    if (t->alg <= MGW_JWA_NONE || t->alg >= MGW_JWA__COUNT || jwa[t->alg].family != FAM_HS)
        return MGW_JWT_EKEYALG;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const uint8_t empty[1];
    if (HMAC(jwa_md(t->alg), n ? secret : empty, (int)n, (const unsigned char *)t->signing_input,
             t->signing_len, mac, &len) == NULL)
        return MGW_JWT_ESIG;
    /* The length is public (it follows from alg); the bytes are compared in constant time. */
    if (t->sig_len != len || !mgw_equal_ct(mac, t->sig, len)) return MGW_JWT_ESIG;
    return MGW_JWT_OK;
}

/* ---- claims ---- */

static int str_eq(const mgw_json_t *v, const char *s)
{
    return v && v->type == MGW_JSON_STRING && s && v->len == strlen(s) &&
           memcmp(v->str, s, v->len) == 0;
}

static int audience_ok(const mgw_json_t *v, const mgw_jwt_rules_t *r)
{
    for (int i = 0; i < r->naudiences; i++)
        if (str_eq(v, r->audiences[i])) return 1;
    return 0;
}

mgw_jwt_err_t mgw_jwt_check_claims(const mgw_jwt_t *t, const mgw_jwt_rules_t *rules, int64_t now)
{
    if (!str_eq(mgw_json_get(t->claims, "iss"), rules->issuer)) return MGW_JWT_EISS;
    const mgw_json_t *aud = mgw_json_get(t->claims, "aud");
    int ok = 0;
    if (aud == NULL) {
        ok = audience_ok(mgw_json_get(t->claims, "client_id"), rules);
    } else if (aud->type == MGW_JSON_ARRAY) {
        for (int i = 0; i < aud->n && !ok; i++)
            ok = audience_ok(aud->items[i], rules);
    } else {
        ok = audience_ok(aud, rules);
    }
    if (!ok) return MGW_JWT_EAUD;
    return mgw_jwt_check_time(t, rules->leeway, now);
}

mgw_jwt_err_t mgw_jwt_check_time(const mgw_jwt_t *t, int64_t leeway, int64_t now)
{
    /* exp, nbf and iat are within +-2^62 and a leeway is small: no overflow. */
    if (leeway < 0) leeway = 0;
    if (leeway > INT64_C(1) << 40) leeway = INT64_C(1) << 40;
    if (now > INT64_C(1) << 61) now = INT64_C(1) << 61;
    if (now < -(INT64_C(1) << 61)) now = -(INT64_C(1) << 61);
    if (t->has_exp && now >= t->exp + leeway) return MGW_JWT_EEXP;
    if (t->has_nbf && now + leeway < t->nbf) return MGW_JWT_ENBF;
    if (t->has_iat && now + leeway < t->iat) return MGW_JWT_EIAT;
    return MGW_JWT_OK;
}

/* 1 when w is one of the space-separated words of the n bytes at s. */
static int has_word(const char *s, size_t n, const char *w, size_t wn)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        if (j > i && j - i == wn && memcmp(s + i, w, wn) == 0) return 1;
        i = j;
    }
    return 0;
}

/* 1 when the scope or scp claim v grants w: a string of space-separated scopes, or a list
 * of strings (each a scope). */
static int grants(const mgw_json_t *v, const char *w, size_t wn)
{
    if (v == NULL) return 0;
    if (v->type == MGW_JSON_STRING) return has_word(v->str, v->len, w, wn);
    if (v->type != MGW_JSON_ARRAY) return 0;
    for (int i = 0; i < v->n; i++)
        if (v->items[i]->type == MGW_JSON_STRING && v->items[i]->len == wn &&
            memcmp(v->items[i]->str, w, wn) == 0)
            return 1;
    return 0;
}

mgw_jwt_err_t mgw_jwt_check_scopes(const mgw_jwt_t *t, const char *const *scopes, int n)
{
    if (n <= 0) return MGW_JWT_OK;
    const mgw_json_t *scope = mgw_json_get(t->claims, "scope"),
                     *scp = mgw_json_get(t->claims, "scp");
    if (scope && scope->type != MGW_JSON_STRING) scope = NULL;
    for (int i = 0; i < n; i++) {
        size_t wn = strlen(scopes[i]);
        if (wn && (grants(scope, scopes[i], wn) || grants(scp, scopes[i], wn))) return MGW_JWT_OK;
    }
    return MGW_JWT_ESCOPE;
}
