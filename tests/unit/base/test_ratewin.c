/*
 * base/ratewin.c: the sliding-window counters of rate-based rules, on a clock the tests
 * move by hand (the store takes now_ms from its caller): counting, the sliding window's
 * accuracy, keys apart, the bounded table's eviction policy, the registry, and threads.
 */
#include <pthread.h>
#include <stdio.h>

#include "base/ratewin.c"
#include "unit.h"

#define MIN 60000ull
#define T0 (1000 * MIN) /* a clock far from 0 */

static void test_counts_one_key(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("t1", MIN, 100);
    for (uint64_t i = 1; i <= 250; i++)
        CHECK(mgw_ratewin_hit(w, "a", 1, T0 + i) == i);
    CHECK(mgw_ratewin_count(w, "a", 1, T0 + 300) == 250);
    CHECK(mgw_ratewin_count(w, "b", 1, T0 + 300) == 0);
    mgw_ratewin_release(w);
}

static void test_keys_apart(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("t2", MIN, 100);
    for (int i = 0; i < 30; i++)
        mgw_ratewin_hit(w, "alice", 5, T0);
    for (int i = 0; i < 3; i++)
        mgw_ratewin_hit(w, "bob", 3, T0);
    CHECK(mgw_ratewin_count(w, "alice", 5, T0) == 30);
    CHECK(mgw_ratewin_count(w, "bob", 3, T0) == 3);
    CHECK(mgw_ratewin_count(w, "alic", 4, T0) == 0);
    CHECK(mgw_ratewin_keys(w, T0) == 2);
    mgw_ratewin_release(w);
}

/* A burst counts fully for 0.9 window, fades over the next 0.2, and is gone after 1.1. */
static void test_burst_leaves_the_window(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("t3", MIN, 100);
    uint64_t t = T0; /* the start of a sub-window (6 s) */
    for (int i = 0; i < 100; i++)
        mgw_ratewin_hit(w, "k", 1, t);
    CHECK(mgw_ratewin_count(w, "k", 1, t + MIN - 1) == 100);
    uint64_t mid = mgw_ratewin_count(w, "k", 1, t + MIN + MIN / 20); /* half the sub-window */
    CHECK(mid == 50);
    CHECK(mgw_ratewin_count(w, "k", 1, t + MIN + MIN / 10) == 0);
    CHECK(mgw_ratewin_count(w, "k", 1, t + 2 * MIN) == 0);
    /* counting again starts from 1 */
    CHECK(mgw_ratewin_hit(w, "k", 1, t + 3 * MIN) == 1);
    mgw_ratewin_release(w);
}

/* Requests spread evenly are counted within 1% of the true sliding count. */
static void test_even_traffic_is_exact(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("t4", MIN, 100);
    /* one request every 100 ms for three windows: 600 per window */
    uint64_t worst = 0;
    for (uint64_t t = T0; t < T0 + 3 * MIN; t += 100) {
        uint64_t c = mgw_ratewin_hit(w, "k", 1, t);
        if (t >= T0 + MIN + MIN / 10) {
            uint64_t d = c > 600 ? c - 600 : 600 - c;
            if (d > worst) worst = d;
        }
    }
    CHECK(worst <= 6);
    mgw_ratewin_release(w);
}

/*
 * The accuracy a rate-based rule promises: a key sending 2 × limit over a window, as a
 * rule sees it (a request matches when the count passes the limit), gets limit requests
 * through within 5%, wherever the window starts.
 */
static void test_two_times_limit_over_a_window(void)
{
    for (uint64_t start = 0; start < MIN; start += 7919) {
        char name[32];
        snprintf(name, sizeof(name), "t5-%llu", (unsigned long long)start);
        mgw_ratewin_t *w = mgw_ratewin_get(name, MIN, 100);
        int passed = 0;
        for (uint64_t i = 0; i < 200; i++)
            if (mgw_ratewin_hit(w, "k", 1, T0 + start + i * (MIN / 200)) <= 100) passed++;
        CHECK(passed >= 95 && passed <= 105);
        mgw_ratewin_release(w);
    }
}

/* Blocking is lifted once the key's rate falls under the limit. */
static void test_blocking_lifted(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("t6", MIN, 10);
    for (int i = 0; i < 50; i++)
        mgw_ratewin_hit(w, "k", 1, T0);
    CHECK(mgw_ratewin_hit(w, "k", 1, T0 + MIN / 2) > 10);
    CHECK(mgw_ratewin_hit(w, "k", 1, T0 + 2 * MIN) <= 10);
    mgw_ratewin_release(w);
}

/* The same name is the same store (a reload keeps its counts); another name is another. */
static void test_registry(void)
{
    mgw_ratewin_t *a = mgw_ratewin_get("t7", MIN, 10);
    mgw_ratewin_hit(a, "k", 1, T0);
    mgw_ratewin_t *b = mgw_ratewin_get("t7", MIN, 10);
    CHECK(a == b);
    CHECK(mgw_ratewin_count(b, "k", 1, T0) == 1);
    mgw_ratewin_t *c = mgw_ratewin_get("t7|20", MIN, 20);
    CHECK(c != a && mgw_ratewin_count(c, "k", 1, T0) == 0);
    mgw_ratewin_release(a);
    mgw_ratewin_release(c);
    CHECK(mgw_ratewin_count(b, "k", 1, T0) == 1);
    mgw_ratewin_release(b);
    mgw_ratewin_t *d = mgw_ratewin_get("t7", MIN, 10); /* the last reference freed it */
    CHECK(mgw_ratewin_count(d, "k", 1, T0) == 0);
    mgw_ratewin_release(d);
}

/*
 * A flood of distinct keys: the table stays bounded, keys over the limit are never
 * pushed out, and a new key that finds only keys over the limit is not counted.
 */
static void test_flood_keeps_keys_over_the_limit(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("t8", MIN, 10);
    char key[32];
    for (int i = 0; i < 100; i++) { /* 100 keys over the limit */
        int n = snprintf(key, sizeof(key), "heavy-%d", i);
        for (int j = 0; j < 20; j++)
            mgw_ratewin_hit(w, key, (size_t)n, T0);
    }
    for (int i = 0; i < 200000; i++) { /* 200,000 keys with one request each */
        int n = snprintf(key, sizeof(key), "flood-%d", i);
        mgw_ratewin_hit(w, key, (size_t)n, T0 + 1);
    }
    CHECK(mgw_ratewin_keys(w, T0 + 1) <= MGW_RATEWIN_SLOTS);
    int kept = 0;
    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof(key), "heavy-%d", i);
        kept += mgw_ratewin_count(w, key, (size_t)n, T0 + 2) == 20;
    }
    CHECK(kept == 100);
    mgw_ratewin_release(w);

    /* every place of every key taken by keys over the limit: a new key is not counted.
     * Whether 40,000 keys fill all 16,384 places depends on the hash key: a fixed one
     * makes the outcome the same on every run (a random one left a place empty now and
     * then, and a new key was counted there). */
    static const uint64_t seed[2] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull};
    mgw_ratewin_seed(seed);
    w = mgw_ratewin_get("t8b", MIN, 10);
    for (int i = 0; i < 40000; i++) {
        int n = snprintf(key, sizeof(key), "over-%d", i);
        for (int j = 0; j < 11; j++)
            mgw_ratewin_hit(w, key, (size_t)n, T0);
    }
    int untracked = 0;
    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof(key), "new-%d", i);
        untracked += mgw_ratewin_hit(w, key, (size_t)n, T0) == 0;
    }
    CHECK(untracked == 100);
    /* once they are idle, new keys take their places */
    CHECK(mgw_ratewin_hit(w, "later", 5, T0 + 3 * MIN) == 1);
    mgw_ratewin_release(w);
}

typedef struct {
    mgw_ratewin_t *w;
    int passed;
} worker_t;

static void *hammer(void *arg)
{
    worker_t *t = arg;
    for (int i = 0; i < 100000; i++)
        if (mgw_ratewin_hit(t->w, "shared", 6, T0) <= 1000) t->passed++;
    return NULL;
}

/* Four threads on one key: every request is counted, and the limit lets about limit through. */
static void test_threads_count_exactly(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("t9", MIN, 1000);
    worker_t t[4] = {{w, 0}, {w, 0}, {w, 0}, {w, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, &t[i]);
    int passed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        passed += t[i].passed;
    }
    CHECK(mgw_ratewin_count(w, "shared", 6, T0) == 400000);
    CHECK(passed >= 1000 && passed <= 1004);
    mgw_ratewin_release(w);
}

/* Shared stores (cluster/wafrate.c): sub-windows on the wall clock, the keys hit reported
 * once each, and the others' counts added while fresh. */
static void test_shared_store(void)
{
    mgw_ratewin_t *w = mgw_ratewin_get("shared", MIN, 10);
    uint64_t sub = mgw_ratewin_sub_ms(w), off = 5 * sub + 123;
    CHECK(sub == MIN / 10);
    CHECK_STR(mgw_ratewin_name(w), "shared");
    mgw_ratewin_own_t o[4];
    CHECK(mgw_ratewin_changed(w, T0, o, 4) == 0); /* not shared: nothing noted */
    mgw_ratewin_share(w, off);
    mgw_ratewin_share(w, 7); /* the first offset stays */
    for (int i = 0; i < 3; i++)
        mgw_ratewin_hit(w, "a", 1, T0);
    mgw_ratewin_hit(w, "b", 1, T0);
    CHECK(mgw_ratewin_changed(w, T0, o, 4) == 2);
    uint64_t e = (T0 + off) / sub;
    int ia = o[0].own[0] == 3 ? 0 : 1;
    CHECK(o[ia].own[0] == 3 && o[ia].own[1] == 0 && o[ia].sub == e);
    CHECK(o[1 - ia].own[0] == 1);
    CHECK(o[0].hash != o[1].hash && o[0].hash && o[1].hash);
    /* Keys counted in the window are reported at every call (their others change). */
    CHECK(mgw_ratewin_changed(w, T0, o, 4) == 2);
    /* The others' count adds to this node's while fresh (this sub-window or the next). */
    mgw_ratewin_set_others(w, &o[ia], 20);
    CHECK(mgw_ratewin_count(w, "a", 1, T0) == 23);
    CHECK(mgw_ratewin_hit(w, "a", 1, T0 + sub) == 24);
    CHECK(mgw_ratewin_count(w, "a", 1, T0 + 2 * sub) == 4); /* stale: left out */
    CHECK(mgw_ratewin_count(w, "b", 1, T0) == 1);
    /* A hit in the next sub-window: both sub-windows' own counts are reported. */
    CHECK(mgw_ratewin_changed(w, T0 + sub, o, 4) == 2);
    ia = o[0].own[1] == 3 ? 0 : 1;
    CHECK(o[ia].own[0] == 1 && o[ia].own[1] == 3 && o[ia].sub == e + 1);
    /* Out of the window: no longer reported. */
    CHECK(mgw_ratewin_changed(w, T0 + 2 * MIN, o, 4) == 2);
    CHECK(mgw_ratewin_changed(w, T0 + 2 * MIN, o, 4) == 0);
    CHECK(mgw_ratewin_changed(w, T0 + sub, o, 4) == 0);
    ia = 0;
    mgw_ratewin_hit(w, "a", 1, T0 + sub);
    CHECK(mgw_ratewin_changed(w, T0 + sub, o, 4) == 1);
    /* mark: reported again; max bounds a call and the rest comes next time. */
    mgw_ratewin_mark(w, &o[0]);
    char key[16];
    for (int i = 0; i < 9; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        mgw_ratewin_hit(w, key, strlen(key), T0 + sub);
    }
    /* (the ten keys in three calls of at most 4: each call goes on where the last stopped) */
    uint64_t seen[12];
    int got = 0;
    for (int i = 0; i < 3; i++) {
        int n = mgw_ratewin_changed(w, T0 + sub, o, 4);
        CHECK(n == 4);
        for (int j = 0; j < n; j++) {
            int dup = 0;
            for (int k = 0; k < got; k++)
                dup |= seen[k] == o[j].hash;
            if (!dup && got < 12) seen[got++] = o[j].hash;
        }
    }
    CHECK(got == 10);
    /* A new reference to the same store. */
    mgw_ratewin_t *r = mgw_ratewin_ref(w);
    CHECK(r == w);
    mgw_ratewin_release(r);
    mgw_ratewin_release(w);
}

/* Two stores seeded alike hash a key alike (two nodes of a cluster). */
static void test_seed(void)
{
    static const uint64_t k[2] = {0x0123456789abcdefull, 0xfedcba9876543210ull};
    mgw_ratewin_seed(k);
    mgw_ratewin_t *w = mgw_ratewin_get("seeded", MIN, 10);
    mgw_ratewin_share(w, 0);
    mgw_ratewin_hit(w, "x", 1, T0);
    mgw_ratewin_own_t o;
    CHECK(mgw_ratewin_changed(w, T0, &o, 1) == 1);
    CHECK(o.hash == siphash("x", 1, k));
    mgw_ratewin_release(w);
}

int main(void)
{
    RUN(test_counts_one_key);
    RUN(test_keys_apart);
    RUN(test_burst_leaves_the_window);
    RUN(test_even_traffic_is_exact);
    RUN(test_two_times_limit_over_a_window);
    RUN(test_blocking_lifted);
    RUN(test_registry);
    RUN(test_flood_keeps_keys_over_the_limit);
    RUN(test_threads_count_exactly);
    RUN(test_shared_store);
    RUN(test_seed);
    return DONE();
}
