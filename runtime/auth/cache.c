/*
 * The verified-token cache (README "JWT authorizers", ttl): one per worker and
 * authorizer, so no lock and no atomic is taken. A fixed table of MGW_TCACHE_SLOTS
 * entries indexed by a fast keyed hash of the token; a hit compares the whole token, so a
 * collision is only a miss, and a new token replaces whatever had its slot. An entry is
 * good until its token's exp or the ttl after it was verified, whichever comes first;
 * what may change per request (exp, nbf, iat against the clock, the route's scopes) is
 * checked on every hit by the authorizer (authz.c).
 *
 * An entry owns a pool with the token text and its parse (mgw_jwt_t and the claims), and
 * is reference counted: a request that uses it holds a reference until it ends, so that a
 * replaced entry's claims stay valid for the requests that still read them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include "auth/auth_int.h"

struct mgw_tcache_s {
    mgw_tok_t *slots[MGW_TCACHE_SLOTS];
};

static uint64_t seed;
static uv_once_t seed_once = UV_ONCE_INIT;

static void seed_init(void)
{
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = uv_hrtime() ^ (uint64_t)(uintptr_t)&seed;
    seed |= 1;
}

#define K1 0x9e3779b97f4a7c15ULL
#define K2 0xc2b2ae3d27d4eb4fULL

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= K1;
    return h ^ (h >> 31);
}

/* Four independent lanes of 8 bytes each, so that the multiplies overlap: a token of a
 * few hundred bytes hashes in a few hundred cycles. */
uint64_t mgw__tcache_hash(const char *p, size_t n)
{
    uv_once(&seed_once, seed_init);
    uint64_t a = seed, b = seed ^ K2, c = seed * K2, d = ~seed;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t x[4];
        memcpy(x, p + i, 32);
        a = mix(a, x[0]);
        b = mix(b, x[1]);
        c = mix(c, x[2]);
        d = mix(d, x[3]);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        a = mix(a, x);
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    uint64_t h = mix(a, tail) ^ mix(b, n) ^ (c * K2) ^ (d * K1);
    h ^= h >> 29;
    h *= K2;
    return h ^ (h >> 32);
}

mgw_tcache_t *mgw__tcache_new(void)
{
    return mgw_calloc(1, sizeof(mgw_tcache_t));
}

void mgw__tcache_free(mgw_tcache_t *c)
{
    if (c == NULL) return;
    for (int i = 0; i < MGW_TCACHE_SLOTS; i++)
        if (c->slots[i]) mgw__tok_unref(c->slots[i]);
    free(c);
}

mgw_tok_t *mgw__tcache_get(mgw_tcache_t *c, uint64_t h, const char *p, size_t n, uint64_t now_ms)
{
    mgw_tok_t **slot = &c->slots[h & (MGW_TCACHE_SLOTS - 1)];
    mgw_tok_t *t = *slot;
    if (t == NULL || t->hash != h || t->text.n != n || memcmp(t->text.p, p, n) != 0) return NULL;
    if (now_ms >= t->until_ms) { /* over: the slot is free again */
        *slot = NULL;
        mgw__tok_unref(t);
        return NULL;
    }
    return t;
}

void mgw__tcache_put(mgw_tcache_t *c, mgw_tok_t *t)
{
    mgw_tok_t **slot = &c->slots[t->hash & (MGW_TCACHE_SLOTS - 1)];
    mgw_tok_t *old = *slot;
    *slot = t;
    if (old) mgw__tok_unref(old);
}

int mgw__tcache_count(const mgw_tcache_t *c)
{
    int n = 0;
    for (int i = 0; i < MGW_TCACHE_SLOTS; i++)
        n += c->slots[i] != NULL;
    return n;
}

mgw_tok_t *mgw__tok_new(const char *p, size_t n, uint64_t h)
{
    mgw_pool_t *pool = mgw_pool_create(n + 2048);
    mgw_tok_t *t = mgw_pool_calloc(pool, sizeof(*t));
    t->pool = pool;
    t->text = (mgw_str_t){mgw_pool_strndup(pool, p, n), n};
    t->hash = h;
    t->refs = 1;
    return t;
}

void mgw__tok_ref(mgw_tok_t *t)
{
    t->refs++;
}

void mgw__tok_unref(void *p)
{
    mgw_tok_t *t = p;
    if (--t->refs == 0) mgw_pool_destroy(t->pool);
}
