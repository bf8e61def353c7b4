/*
 * JWK Set parsing (runtime/base/jose.c, included here to reach the set's keys): the input
 * is a key set as an identity provider would serve it. Properties: a set is returned
 * exactly when the input is strict JSON with a "keys" array and, when it is refused, a
 * reason is given; the usable and skipped keys together are at most the array's entries;
 * every usable key is an OpenSSL key of its kty (RSA of 2048 to 16384 bits, EC on the named
 * curve, Ed25519), and its own alg, when it has one, fits it. The unit tests' tokens of
 * every algorithm are then looked up and verified against the set (OK or ESIG, nothing
 * else), and the set's references are taken and dropped.
 */
#include "base/jose.c"

#include <openssl/evp.h>

#include "fuzz.h"

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-const-variable"
#include "../unit/base/jose_vectors.h"
#pragma clang diagnostic pop

static const char *const tokens[] = {TOK_RS256, TOK_PS384,       TOK_ES256, TOK_ES384, TOK_ES512,
                                     TOK_EDDSA, TOK_RS256_NOKID, RFC_A2,    RFC_A3};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    int skipped = -1;
    err[0] = '\0';
    mgw_jwks_t *s = mgw_jwks_parse((const char *)data, size, &skipped, err, sizeof(err));
    mgw_pool_t *pool = mgw_pool_create(0);
    mgw_json_t *root = NULL;
    int json_ok =
        size <= MGW_JWKS_MAX && mgw_json_parse(pool, (const char *)data, size, &root, NULL, 0) == 0;
    const mgw_json_t *arr = json_ok ? mgw_json_get(root, "keys") : NULL;
    if (s == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        mgw_pool_destroy(pool);
        return 0;
    }
    FUZZ_CHECK(json_ok && arr && arr->type == MGW_JSON_ARRAY);
    FUZZ_CHECK(skipped >= 0 && s->n >= 0 && s->n + skipped == arr->n);
    FUZZ_CHECK(mgw_jwks_count(s) == s->n);
    for (int i = 0; i < s->n; i++) {
        const mgw_jwk_t *k = &s->keys[i];
        FUZZ_CHECK(k->pkey != NULL);
        switch (k->kty) {
        case MGW_JWK_RSA:
            FUZZ_CHECK(EVP_PKEY_is_a(k->pkey, "RSA") && k->crv == 0);
            FUZZ_CHECK(EVP_PKEY_get_bits(k->pkey) >= 2048 && EVP_PKEY_get_bits(k->pkey) <= 16384);
            break;
        case MGW_JWK_EC:
            FUZZ_CHECK(EVP_PKEY_is_a(k->pkey, "EC"));
            FUZZ_CHECK(EVP_PKEY_get_bits(k->pkey) == (k->crv == MGW_JWK_P256   ? 256
                                                      : k->crv == MGW_JWK_P384 ? 384
                                                                               : 521));
            break;
        case MGW_JWK_OKP:
            FUZZ_CHECK(EVP_PKEY_is_a(k->pkey, "ED25519") && k->crv == MGW_JWK_ED25519);
            break;
        default:
            FUZZ_CHECK(0);
        }
        if (k->alg != MGW_JWA_NONE) FUZZ_CHECK(fits(k->alg, k->kty, k->crv));
        if (k->has_kid) FUZZ_CHECK(k->kid.p != NULL && k->kid.p[k->kid.n] == '\0');
    }
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        mgw_jwt_t t;
        FUZZ_CHECK(mgw_jwt_parse(pool, tokens[i], strlen(tokens[i]), &t) == MGW_JWT_OK);
        mgw_jwt_err_t why = MGW_JWT_OK;
        const mgw_jwk_t *k = mgw_jwks_find(s, &t, &why);
        if (k == NULL) {
            FUZZ_CHECK(why == MGW_JWT_EKID || why == MGW_JWT_ENOKID || why == MGW_JWT_EKEYALG);
            continue;
        }
        FUZZ_CHECK(key_fits(k, t.alg));
        mgw_jwt_err_t v = mgw_jwt_verify(&t, k);
        FUZZ_CHECK(v == MGW_JWT_OK || v == MGW_JWT_ESIG);
    }
    mgw_jwks_ref(s);
    mgw_jwks_unref(s);
    mgw_jwks_unref(s);
    mgw_pool_destroy(pool);
    return 0;
}
