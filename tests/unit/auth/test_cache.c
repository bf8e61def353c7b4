/*
 * The verified-token cache (auth/cache.c): a hit needs the whole token, not only its
 * hash; an entry is over at its until time and frees its slot; a new token replaces the
 * entry of its slot; a request's reference keeps a replaced entry alive; the hash
 * differs for tokens that differ in one byte; the Cache-Control max-age of a JWK Set is
 * clamped (auth/fetch.c).
 */
#include "auth/cache.c"

#include "auth/auth_int.h"
#include "unit.h"

static const char TOK_A[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWEtMDEyMzQ1Njc4OQ";
static const char TOK_B[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWEtMDEyMzQ1Njc4OA";

static void test_hash(void)
{
    uint64_t a = mgw__tcache_hash(TOK_A, strlen(TOK_A));
    CHECK(a == mgw__tcache_hash(TOK_A, strlen(TOK_A)));
    CHECK(a != mgw__tcache_hash(TOK_B, strlen(TOK_B)));
    CHECK(a != mgw__tcache_hash(TOK_A, strlen(TOK_A) - 1));
    /* every length up to a few blocks, and the empty string, hash without reading past n */
    char buf[80];
    memset(buf, 'x', sizeof(buf));
    uint64_t prev = 0;
    for (size_t n = 0; n <= sizeof(buf); n++) {
        uint64_t h = mgw__tcache_hash(buf, n);
        CHECK(h != prev);
        prev = h;
    }
}

static void test_hit_needs_the_whole_token(void)
{
    mgw_tcache_t *c = mgw__tcache_new();
    uint64_t h = mgw__tcache_hash(TOK_A, strlen(TOK_A));
    mgw_tok_t *t = mgw__tok_new(TOK_A, strlen(TOK_A), h);
    t->until_ms = 2000;
    mgw__tcache_put(c, t);
    CHECK(mgw__tcache_count(c) == 1);
    CHECK(mgw__tcache_get(c, h, TOK_A, strlen(TOK_A), 1000) == t);
    /* the same hash (a collision) with other bytes is a miss */
    CHECK(mgw__tcache_get(c, h, TOK_B, strlen(TOK_B), 1000) == NULL);
    CHECK(mgw__tcache_get(c, h, TOK_A, strlen(TOK_A) - 1, 1000) == NULL);
    /* over at until_ms: a miss, and the slot is free again */
    CHECK(mgw__tcache_get(c, h, TOK_A, strlen(TOK_A), 2000) == NULL);
    CHECK(mgw__tcache_count(c) == 0);
    mgw__tcache_free(c);
}

static void test_replace_keeps_referenced_entries(void)
{
    mgw_tcache_t *c = mgw__tcache_new();
    uint64_t h = 42; /* both in one slot */
    mgw_tok_t *a = mgw__tok_new(TOK_A, strlen(TOK_A), h);
    a->until_ms = 5000;
    mgw__tcache_put(c, a);
    mgw__tok_ref(a); /* a request uses it */
    mgw_tok_t *b = mgw__tok_new(TOK_B, strlen(TOK_B), h);
    b->until_ms = 5000;
    mgw__tcache_put(c, b); /* replaces a in the slot */
    CHECK(mgw__tcache_get(c, h, TOK_A, strlen(TOK_A), 1) == NULL);
    CHECK(mgw__tcache_get(c, h, TOK_B, strlen(TOK_B), 1) == b);
    CHECK(a->refs == 1); /* the request's: its text is still there */
    CHECK(memcmp(a->text.p, TOK_A, a->text.n) == 0);
    mgw__tok_unref(a); /* the request ends: freed (ASan would see a leak otherwise) */
    CHECK(mgw__tcache_count(c) == 1);
    mgw__tcache_free(c);
}

static void test_max_age(void)
{
    CHECK(mgw__jwks_max_age(MGW_STR("max-age=600")) == 600);
    CHECK(mgw__jwks_max_age(MGW_STR("public, max-age=1200, must-revalidate")) == 1200);
    CHECK(mgw__jwks_max_age(MGW_STR("max-age=10")) == MGW_JWKS_MAX_AGE_MIN);
    CHECK(mgw__jwks_max_age(MGW_STR("max-age=86400")) == MGW_JWKS_MAX_AGE_MAX);
    CHECK(mgw__jwks_max_age(MGW_STR("max-age=99999999999999")) == MGW_JWKS_MAX_AGE_MAX);
    CHECK(mgw__jwks_max_age(MGW_STR("no-cache")) == MGW_JWKS_MAX_AGE_MAX);
    CHECK(mgw__jwks_max_age(MGW_STR("s-maxage=600")) == MGW_JWKS_MAX_AGE_MAX);
    CHECK(mgw__jwks_max_age(MGW_STR("Max-Age=900")) == 900);
    CHECK(mgw__jwks_max_age(MGW_STR("max-age=")) == MGW_JWKS_MAX_AGE_MAX);
    CHECK(mgw__jwks_max_age(MGW_NULL_STR) == MGW_JWKS_MAX_AGE_MAX);
}

int main(void)
{
    RUN(test_hash);
    RUN(test_hit_needs_the_whole_token);
    RUN(test_replace_keeps_referenced_entries);
    RUN(test_max_age);
    return DONE();
}
