/*
 * The shared response store: entries by key, expiry on the caller's clock (never served
 * when expired), size accounting against the budget, least-recently-used eviction,
 * references that outlive removal, the registry, and lookups and inserts from two threads.
 */
#include "base/rcache.c"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

static mgw_rcache_t *cache(const char *name, size_t max)
{
    return mgw_rcache_get(name, max);
}

/* Stores key with a body of n bytes of c at now. */
static void put(mgw_rcache_t *c, const char *key, size_t n, char ch, uint64_t now)
{
    mgw_hdr_t h[] = {{MGW_STR("content-type"), MGW_STR("text/plain")}};
    mgw_rentry_t *e = mgw_rentry_new(c, key, strlen(key), 200, h, 1);
    CHECK(e != NULL);
    if (e == NULL) return;
    char buf[4096];
    memset(buf, ch, sizeof(buf));
    while (n) {
        size_t k = n < sizeof(buf) ? n : sizeof(buf);
        CHECK(mgw_rentry_append(e, buf, k) == 0);
        n -= k;
    }
    mgw_rcache_insert(c, e, now);
}

static int has(mgw_rcache_t *c, const char *key, uint64_t now, uint64_t ttl)
{
    const mgw_rentry_t *e = mgw_rcache_lookup(c, key, strlen(key), now, ttl);
    if (e) mgw_rentry_release(e);
    return e != NULL;
}

static void test_hit_keeps_status_headers_body(void)
{
    mgw_rcache_t *c = cache("t1", 1 << 20);
    CHECK(mgw_rcache_lookup(c, "GET /a", 6, 1000, 300000) == NULL);
    put(c, "GET /a", 5, 'x', 1000);
    const mgw_rentry_t *e = mgw_rcache_lookup(c, "GET /a", 6, 2000, 300000);
    CHECK(e != NULL);
    if (e) {
        CHECK(e->status == 200);
        CHECK(e->nhdrs == 1);
        CHECK(e->hdrs[0].value.n == 10 && memcmp(e->hdrs[0].value.p, "text/plain", 10) == 0);
        CHECK(e->body_len == 5 && memcmp(e->body, "xxxxx", 5) == 0);
        CHECK(e->stored_ms == 1000);
        mgw_rentry_release(e);
    }
    CHECK(!has(c, "GET /b", 2000, 300000));
    mgw_rcache_release(c);
}

static void test_expired_entry_is_never_served_and_goes(void)
{
    mgw_rcache_t *c = cache("t2", 1 << 20);
    put(c, "k", 10, 'a', 1000);
    CHECK(has(c, "k", 1000 + 299999, 300000));
    CHECK(!has(c, "k", 1000 + 300000, 300000)); /* exactly the TTL: expired */
    uint64_t n, b;
    mgw_rcache_stats(c, &n, &b);
    CHECK(n == 0 && b == 0); /* removed by the lookup that found it expired */
    /* a shorter TTL (a reload) applies to entries stored before it */
    put(c, "k", 10, 'a', 5000);
    CHECK(!has(c, "k", 6000, 1000));
    mgw_rcache_release(c);
}

static void test_size_accounting_and_replacement(void)
{
    mgw_rcache_t *c = cache("t3", 1 << 20);
    uint64_t n, b;
    put(c, "k", 1000, 'a', 1);
    mgw_rcache_stats(c, &n, &b);
    CHECK(n == 1);
    /* counted: the body, the key, the headers and the bookkeeping */
    CHECK(b >= 1000 + 1 + 12 + 10 && b < 1000 + 1024);
    uint64_t one = b;
    put(c, "k", 3000, 'b', 2); /* the same key replaces */
    mgw_rcache_stats(c, &n, &b);
    CHECK(n == 1 && b == one + 2000);
    const mgw_rentry_t *e = mgw_rcache_lookup(c, "k", 1, 3, 1000);
    CHECK(e && e->body_len == 3000 && e->body[0] == 'b');
    if (e) mgw_rentry_release(e);
    CHECK(mgw_rcache_remove(c, "k", 1) == 1);
    CHECK(mgw_rcache_remove(c, "k", 1) == 0);
    mgw_rcache_stats(c, &n, &b);
    CHECK(n == 0 && b == 0);
    mgw_rcache_release(c);
}

static void test_lru_eviction_within_budget(void)
{
    /* 1 MB: one shard, exact LRU; bodies of 300 KB, so three fit and a fourth evicts */
    mgw_rcache_t *c = cache("t4", 1 << 20);
    CHECK(c->nshards == 1);
    put(c, "a", 300000, 'a', 1);
    put(c, "b", 300000, 'b', 2);
    put(c, "c", 300000, 'c', 3);
    CHECK(has(c, "a", 4, 100000)); /* a is now the most recently used; b the least */
    put(c, "d", 300000, 'd', 5);
    CHECK(!has(c, "b", 6, 100000));
    CHECK(has(c, "a", 6, 100000));
    CHECK(has(c, "c", 6, 100000));
    CHECK(has(c, "d", 6, 100000));
    uint64_t n, b;
    mgw_rcache_stats(c, &n, &b);
    CHECK(n == 3 && b <= (1 << 20));
    mgw_rcache_release(c);
}

static void test_body_limit(void)
{
    mgw_rcache_t *c = cache("t5", 64u << 20);
    CHECK(mgw_rcache_max_body(c) == MGW_RCACHE_MAX_BODY);
    CHECK(c->nshards == 16);
    mgw_rentry_t *e = mgw_rentry_new(c, "k", 1, 200, NULL, 0);
    static char big[MGW_RCACHE_MAX_BODY + 1];
    CHECK(mgw_rentry_append(e, big, MGW_RCACHE_MAX_BODY) == 0);
    CHECK(mgw_rentry_append(e, big, 1) == -1); /* one byte over: given up */
    mgw_rentry_release(e);
    CHECK(!has(c, "k", 1, 1000));
    mgw_rcache_t *small = cache("t5s", 1 << 20);
    CHECK(mgw_rcache_max_body(small) == (1 << 19)); /* half the only shard */
    mgw_rcache_release(small);
    mgw_rcache_release(c);
}

static void test_reference_outlives_removal_and_flush(void)
{
    mgw_rcache_t *c = cache("t6", 1 << 20);
    put(c, "k", 100, 'z', 1);
    put(c, "j", 100, 'y', 1);
    const mgw_rentry_t *e = mgw_rcache_lookup(c, "k", 1, 2, 1000);
    CHECK(mgw_rcache_flush(c) == 2);
    CHECK(!has(c, "k", 2, 1000));
    /* still readable by the request that holds it */
    CHECK(e && e->body_len == 100 && e->body[99] == 'z');
    if (e) mgw_rentry_release(e);
    mgw_rcache_release(c);
}

static void test_registry_same_name_same_store(void)
{
    mgw_rcache_t *a = mgw_rcache_get("pets|prod|x", 1 << 20);
    put(a, "k", 10, 'a', 1);
    mgw_rcache_t *b = mgw_rcache_get("pets|prod|x", 1 << 20); /* a reload, same settings */
    CHECK(a == b);
    CHECK(has(b, "k", 2, 1000));
    mgw_rcache_t *other = mgw_rcache_get("pets|prod|y", 1 << 20); /* changed key settings */
    CHECK(other != a && !has(other, "k", 2, 1000));
    mgw_rcache_t *bigger = mgw_rcache_get("pets|prod|x", 2 << 20); /* another size */
    CHECK(bigger != a);
    mgw_rcache_release(other);
    mgw_rcache_release(bigger);
    mgw_rcache_release(a);
    CHECK(has(b, "k", 2, 1000)); /* b still holds it */
    mgw_rcache_release(b);
    mgw_rcache_t *again = mgw_rcache_get("pets|prod|x", 1 << 20);
    CHECK(!has(again, "k", 2, 1000)); /* the last release freed it: a new, empty one */
    mgw_rcache_release(again);
}

/* Two threads insert, look up and flush keys of one cache; every entry found must be
 * whole (its body all one byte, the key's), and the budget must hold at the end. */
static mgw_rcache_t *shared;
static int bad;

static void *worker(void *arg)
{
    int id = *(int *)arg;
    char key[32];
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7 + id) % 500;
        snprintf(key, sizeof(key), "k%d", k);
        const mgw_rentry_t *e = mgw_rcache_lookup(shared, key, strlen(key), (uint64_t)i, 1u << 30);
        if (e) {
            for (size_t j = 0; j < e->body_len; j++)
                if (e->body[j] != (char)('a' + k % 26)) bad = 1;
            mgw_rentry_release(e);
        } else {
            mgw_rentry_t *n = mgw_rentry_new(shared, key, strlen(key), 200, NULL, 0);
            char body[2000];
            memset(body, 'a' + k % 26, sizeof(body));
            mgw_rentry_append(n, body, (size_t)(k * 4));
            mgw_rcache_insert(shared, n, (uint64_t)i);
        }
        if (i % 5000 == 2500) mgw_rcache_flush(shared);
    }
    return NULL;
}

static void test_two_threads(void)
{
    shared = cache("t8", 1 << 20);
    pthread_t t[2];
    int ids[2] = {0, 1};
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, &ids[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(!bad);
    uint64_t n, b;
    mgw_rcache_stats(shared, &n, &b);
    CHECK(b <= (1 << 20));
    CHECK(n > 0);
    mgw_rcache_release(shared);
}

int main(void)
{
    RUN(test_hit_keeps_status_headers_body);
    RUN(test_expired_entry_is_never_served_and_goes);
    RUN(test_size_accounting_and_replacement);
    RUN(test_lru_eviction_within_budget);
    RUN(test_body_limit);
    RUN(test_reference_outlives_removal_and_flush);
    RUN(test_registry_same_name_same_store);
    RUN(test_two_threads);
    return DONE();
}
