/*
 * Token buckets (GCRA): a fresh bucket admits exactly `burst`, then refills at `rate`
 * per second, never beyond `burst`; the clock is injected, so the arithmetic is exact
 * and nothing here depends on timing. Concurrent takes from several threads on a frozen
 * clock admit exactly what a single thread would; on the real clock, never more than
 * rate x time + burst.
 */
#include "base/throttle.c"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

#define MS 1000000ull
#define SEC 1000000000ull
/* Far from zero, so that no arithmetic on the injected clock can wrap. */
#define T0 (1000 * SEC)

static mgw_bucket_t *bucket(const char *key, double rate, uint64_t burst)
{
    mgw_bucket_t *b = mgw_throttle_bucket(key, strlen(key), rate, burst);
    CHECK(b != NULL);
    return b;
}

/* Takes at `now` until refused (at most `max` times); returns how many were admitted. */
static uint64_t drain(mgw_bucket_t *b, uint64_t now, uint64_t max)
{
    mgw_take_t t;
    uint64_t n = 0;
    while (n < max && mgw_bucket_take(b, now, &t))
        n++;
    return n;
}

static void test_fresh_bucket_admits_burst(void)
{
    mgw_bucket_t *b = bucket("fresh|10|5", 10, 5);
    mgw_take_t t;
    for (uint64_t i = 1; i <= 5; i++) {
        CHECK(mgw_bucket_take(b, T0, &t) == 1);
        CHECK(t.remaining == 5 - i);
        CHECK(t.retry_after_ms == 0);
        CHECK(t.reset_ms == 100 * i); /* i tokens missing, one every 100 ms */
    }
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    CHECK(t.remaining == 0);
    CHECK(t.retry_after_ms == 100); /* the next token */
    CHECK(t.reset_ms == 500);       /* full again */
    /* A refusal does not consume anything: still refused at once, still the same wait. */
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    CHECK(t.retry_after_ms == 100);
    CHECK(t.reset_ms == 500);
    /* 40 ms later the wait is 60 ms. */
    CHECK(mgw_bucket_take(b, T0 + 40 * MS, &t) == 0);
    CHECK(t.retry_after_ms == 60);
    CHECK(t.reset_ms == 460);
    CHECK(mgw_bucket_rate(b) == 10);
    CHECK(mgw_bucket_burst(b) == 5);
}

/* After draining, dt later exactly floor(rate * dt) more are admitted (at most burst). */
static void test_refill_after_dt(void)
{
    static const struct {
        double rate;
        uint64_t burst, dt_ns, want;
    } cases[] = {
        {10, 5, 250 * MS, 2},     /* 2.5 tokens */
        {10, 5, 300 * MS, 3},     /* exactly 3 */
        {10, 5, 99 * MS, 0},      /* not quite one */
        {10, 5, 100 * MS, 1},     /* exactly one */
        {3, 10, 1 * SEC, 3},      /* 1e9/3 is not a whole number of ns */
        {7, 10, 500 * MS, 3},     /* 3.5 */
        {100, 20, 123 * MS, 12},  /* 12.3 */
        {1000, 100, 57 * MS, 57}, /* exact */
        {1000, 100, 57 * MS + 999999, 57},
        {0.5, 3, 1 * SEC, 0},         /* half a token */
        {0.5, 3, 2 * SEC, 1},         /* one */
        {0.5, 3, 5 * SEC, 2},         /* 2.5 */
        {1e6, 1000, 500 * 1000, 500}, /* the fastest rate: one per us */
        {1e6, 1000, 1 * SEC, 1000},   /* capped at burst */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char key[64];
        snprintf(key, sizeof(key), "refill|%zu", i);
        mgw_bucket_t *b = bucket(key, cases[i].rate, cases[i].burst);
        uint64_t first = drain(b, T0, 10 * cases[i].burst + 10);
        uint64_t more = drain(b, T0 + cases[i].dt_ns, 10 * cases[i].burst + 10);
        /* Intervals are whole nanoseconds rounded up: never more than rate * dt, and at
         * an exact boundary (3/s after exactly 1 s) the last token may be a few ns late. */
        if (first != cases[i].burst || more > cases[i].want || more + 1 < cases[i].want)
            printf("#   case %zu (rate %g, burst %llu, dt %llu ns): admitted %llu then %llu, "
                   "want %llu then %llu\n",
                   i, cases[i].rate, (unsigned long long)cases[i].burst,
                   (unsigned long long)cases[i].dt_ns, (unsigned long long)first,
                   (unsigned long long)more, (unsigned long long)cases[i].burst,
                   (unsigned long long)cases[i].want);
        CHECK(first == cases[i].burst);
        CHECK(more <= cases[i].want);
        CHECK(more + 1 >= cases[i].want);
    }
}

/* remaining and the waits after a partial refill. */
static void test_values_after_refill(void)
{
    mgw_bucket_t *b = bucket("values|10|5", 10, 5);
    mgw_take_t t;
    CHECK(drain(b, T0, 100) == 5);
    /* 250 ms: 2.5 tokens back. */
    CHECK(mgw_bucket_take(b, T0 + 250 * MS, &t) == 1);
    CHECK(t.remaining == 1); /* 1.5 left */
    CHECK(t.reset_ms == 350);
    CHECK(mgw_bucket_take(b, T0 + 250 * MS, &t) == 1);
    CHECK(t.remaining == 0); /* 0.5 left */
    CHECK(t.reset_ms == 450);
    CHECK(mgw_bucket_take(b, T0 + 250 * MS, &t) == 0);
    CHECK(t.remaining == 0);
    CHECK(t.retry_after_ms == 50); /* the missing half token */
    CHECK(t.reset_ms == 450);
    /* Waiting exactly that long is enough. */
    CHECK(mgw_bucket_take(b, T0 + 300 * MS, &t) == 1);
    CHECK(t.remaining == 0);
}

/* Partial refills add up: 10 steps of 0.3 tokens give 3 tokens, not 0. */
static void test_small_steps_accumulate(void)
{
    mgw_bucket_t *b = bucket("steps|10|5", 10, 5);
    CHECK(drain(b, T0, 100) == 5);
    uint64_t n = 0;
    for (int i = 1; i <= 10; i++)
        n += drain(b, T0 + (uint64_t)i * 30 * MS, 100);
    CHECK(n == 3);
}

static void test_long_idle_refills_to_burst_only(void)
{
    mgw_bucket_t *b = bucket("idle|10|5", 10, 5);
    mgw_take_t t;
    CHECK(drain(b, T0, 100) == 5);
    /* An hour later: full, and no more than full. */
    CHECK(mgw_bucket_take(b, T0 + 3600 * SEC, &t) == 1);
    CHECK(t.remaining == 4);
    CHECK(drain(b, T0 + 3600 * SEC, 100) == 4);
    /* Exactly the time to refill completely: full. */
    CHECK(drain(b, T0 + 3600 * SEC + 500 * MS, 100) == 5);
    /* A bucket used once and then idle for a day has burst tokens, not more. */
    mgw_bucket_t *c = bucket("idle-once|10|5", 10, 5);
    CHECK(drain(c, T0, 1) == 1);
    CHECK(drain(c, T0 + 86400 * SEC, 100) == 5);
}

static void test_clock_going_backwards_grants_nothing(void)
{
    mgw_bucket_t *b = bucket("back|10|5", 10, 5);
    mgw_take_t t;
    CHECK(drain(b, T0, 100) == 5);
    /* Earlier than the drain: nothing, and the wait is not shorter than at T0. */
    CHECK(mgw_bucket_take(b, T0 - 2 * SEC, &t) == 0);
    CHECK(t.retry_after_ms >= 100);
    CHECK(mgw_bucket_take(b, T0 - 1, &t) == 0);
    /* Forward by 150 ms: one token (of 1.5). */
    CHECK(drain(b, T0 + 150 * MS, 100) == 1);
    /* Back to 100 ms, then to 0: nothing extra. */
    CHECK(drain(b, T0 + 100 * MS, 100) == 0);
    CHECK(drain(b, T0, 100) == 0);
    /* Forward again to 200 ms: the half token left over plus 0.5 more = 1. */
    CHECK(drain(b, T0 + 200 * MS, 100) == 1);
    /* After a step back, a long idle still refills to burst exactly. */
    CHECK(drain(b, T0 + 3600 * SEC, 100) == 5);
}

static void test_burst_zero_refuses_everything(void)
{
    mgw_bucket_t *b = bucket("zero|100|0", 100, 0);
    mgw_take_t t;
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    CHECK(t.remaining == 0);
    CHECK(drain(b, T0 + 3600 * SEC, 100) == 0);
    CHECK(drain(b, T0 + 7200 * SEC + 1, 100) == 0);
}

static void test_fractional_rate(void)
{
    mgw_bucket_t *b = bucket("half|0.5|1", 0.5, 1);
    mgw_take_t t;
    CHECK(mgw_bucket_take(b, T0, &t) == 1);
    CHECK(t.remaining == 0);
    CHECK(t.reset_ms == 2000);
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    CHECK(t.retry_after_ms == 2000);
    CHECK(mgw_bucket_take(b, T0 + 1 * SEC, &t) == 0);
    CHECK(t.retry_after_ms == 1000);
    CHECK(mgw_bucket_take(b, T0 + 2 * SEC - 1, &t) == 0);
    CHECK(t.retry_after_ms == 1); /* 1 ns, rounded up to a millisecond */
    CHECK(mgw_bucket_take(b, T0 + 2 * SEC, &t) == 1);
    CHECK(mgw_bucket_take(b, T0 + 2 * SEC, &t) == 0);
    /* 0.25/s with burst 2: one token per 4 s. */
    mgw_bucket_t *q = bucket("quarter|0.25|2", 0.25, 2);
    CHECK(drain(q, T0, 100) == 2);
    CHECK(drain(q, T0 + 3999 * MS, 100) == 0);
    CHECK(drain(q, T0 + 4 * SEC, 100) == 1);
    CHECK(drain(q, T0 + 11 * SEC, 100) == 1); /* 1.75 accumulated since 4 s */
}

static void test_very_high_rate(void)
{
    mgw_bucket_t *b = bucket("high|1e9|1000000", 1e9, 1000000);
    mgw_take_t t;
    CHECK(drain(b, T0, 2000000) == 1000000);
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    CHECK(t.retry_after_ms == 1); /* 1 ns rounds up to a millisecond */
    CHECK(t.reset_ms == 1);       /* 1 ms to be full again */
    CHECK(drain(b, T0 + 1000, 2000000) == 1000);
    CHECK(drain(b, T0 + 1 * SEC, 2000000) == 1000000);
}

/*
 * Rates the configuration allows (up to 1e6/s) that are not a whole number of
 * nanoseconds apart: over 1 ms, 6e8/s is 600,000 requests, 3e8/s 300,000 and so on;
 * never more than rate x time.
 */
static void test_high_rate_not_exceeded(void)
{
    static const struct {
        double rate;
        uint64_t dt_ns, want;
    } cases[] = {
        {1e6, 1 * SEC, 1000000},
        {7e5, 1 * SEC, 700000},
        {3.3e5, 1 * SEC, 330000},
        {333.3, 10 * SEC, 3333},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char key[64];
        snprintf(key, sizeof(key), "highrate|%zu", i);
        /* A burst larger than what refills meanwhile, so that only the rate counts. */
        uint64_t burst = 2 * cases[i].want;
        mgw_bucket_t *b = bucket(key, cases[i].rate, burst);
        CHECK(drain(b, T0, 2 * burst) == burst);
        uint64_t more = drain(b, T0 + cases[i].dt_ns, 2 * burst);
        if (more > cases[i].want)
            printf("#   rate %g over %llu ns: admitted %llu, at most %llu\n", cases[i].rate,
                   (unsigned long long)cases[i].dt_ns, (unsigned long long)more,
                   (unsigned long long)cases[i].want);
        /* never more than the rate; at most 0.1% less (intervals round up) */
        CHECK(more <= cases[i].want);
        CHECK(more * 1000 >= cases[i].want * 999);
    }
}

/* The longest refill window the configuration allows (burst / rate <= 1e7 s) does not
 * overflow: a fresh bucket is full, so after one take burst - 1 are left (what the
 * RateLimit header shows). Beyond that range the bucket saturates instead of wrapping. */
static void test_large_burst_slow_rate(void)
{
    mgw_bucket_t *b = bucket("bigburst|0.01|1e5", 0.01, 100000);
    mgw_take_t t;
    CHECK(mgw_bucket_take(b, T0, &t) == 1);
    if (t.remaining != 99999)
        printf("#   rate 0.01, burst 1e5: %llu remaining after one take, want 99999\n",
               (unsigned long long)t.remaining);
    CHECK(t.remaining == 99999);
    CHECK(t.reset_ms == 100000); /* one token at 0.01/s: 100 s */
    CHECK(drain(b, T0, 1000) == 1000);
    mgw_bucket_t *huge = bucket("bigburst|0.01|1e9", 0.01, 1000000000);
    CHECK(mgw_bucket_take(huge, T0, &t) == 1);
    CHECK(t.remaining > 1000000); /* saturated, not wrapped around to a small number */
}

static void test_refund_gives_back_one(void)
{
    mgw_bucket_t *b = bucket("refund|10|5", 10, 5);
    mgw_take_t t;
    CHECK(drain(b, T0, 100) == 5);
    mgw_bucket_refund(b);
    CHECK(mgw_bucket_take(b, T0, &t) == 1);
    CHECK(t.remaining == 0);
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    /* Two refunds, two tokens. */
    mgw_bucket_refund(b);
    mgw_bucket_refund(b);
    CHECK(drain(b, T0, 100) == 2);
    /* A refund on a bucket that refilled completely meanwhile does not go beyond burst. */
    mgw_bucket_t *c = bucket("refund-full|10|5", 10, 5);
    CHECK(drain(c, T0, 1) == 1);
    mgw_bucket_refund(c);
    CHECK(drain(c, T0 + 3600 * SEC, 100) == 5);
    /* Take then refund right away: as if nothing happened. */
    mgw_bucket_t *d = bucket("refund-same|10|5", 10, 5);
    CHECK(drain(d, T0, 1) == 1);
    mgw_bucket_refund(d);
    CHECK(drain(d, T0, 100) == 5);
}

/* peek shows the state a take would see, and takes nothing. */
static void test_peek(void)
{
    mgw_bucket_t *b = bucket("peek|10|5", 10, 5);
    mgw_take_t t;
    mgw_bucket_peek(b, T0, &t);
    CHECK(t.remaining == 5); /* fresh: full */
    CHECK(t.retry_after_ms == 0);
    CHECK(t.reset_ms == 0);
    for (int i = 0; i < 10; i++)
        mgw_bucket_peek(b, T0, &t);
    CHECK(drain(b, T0, 2) == 2);
    mgw_bucket_peek(b, T0, &t);
    CHECK(t.remaining == 3);
    CHECK(t.reset_ms == 200);
    CHECK(drain(b, T0, 100) == 3);
    mgw_bucket_peek(b, T0, &t);
    CHECK(t.remaining == 0);
    CHECK(t.retry_after_ms == 100);
    CHECK(t.reset_ms == 500);
    /* 250 ms later 2.5 tokens: peek says 2, and two takes succeed. */
    mgw_bucket_peek(b, T0 + 250 * MS, &t);
    CHECK(t.remaining == 2);
    CHECK(t.reset_ms == 250);
    CHECK(drain(b, T0 + 250 * MS, 100) == 2);
    /* Half a token left: 0 remaining, and the wait a take would report. */
    mgw_bucket_peek(b, T0 + 250 * MS, &t);
    CHECK(t.remaining == 0);
    CHECK(t.retry_after_ms == 50);
    CHECK(t.reset_ms == 450);
    mgw_take_t t2;
    CHECK(mgw_bucket_take(b, T0 + 250 * MS, &t2) == 0);
    CHECK(t2.retry_after_ms == t.retry_after_ms);
    /* Long idle: full again. */
    mgw_bucket_peek(b, T0 + 3600 * SEC, &t);
    CHECK(t.remaining == 5);
    CHECK(t.reset_ms == 0);
}

static void test_same_key_same_bucket(void)
{
    mgw_bucket_t *a = bucket("stage|api|prod|10|5", 10, 5);
    mgw_bucket_t *b = bucket("stage|api|prod|10|5", 10, 5);
    CHECK(a == b);
    /* The state is shared: what one took, the other does not get. */
    CHECK(drain(a, T0, 3) == 3);
    CHECK(drain(b, T0, 100) == 2);
    /* A key with a different limit in it: a different, full bucket. */
    mgw_bucket_t *c = bucket("stage|api|prod|10|6", 10, 6);
    CHECK(c != a);
    CHECK(drain(c, T0, 100) == 6);
    mgw_bucket_t *d = bucket("stage|api|other|10|5", 10, 5);
    CHECK(d != a && d != c);
    CHECK(drain(d, T0, 100) == 5);
}

/* The same key asked for with other limits must not hand back a bucket with the old ones. */
static void test_same_key_other_limits(void)
{
    mgw_bucket_t *a = bucket("named-bucket", 10, 5);
    mgw_bucket_t *b = bucket("named-bucket", 20, 8);
    CHECK(a != b);
    CHECK(mgw_bucket_rate(b) == 20);
    CHECK(mgw_bucket_burst(b) == 8);
    CHECK(drain(b, T0, 100) == 8);
}

/* Many distinct keys: each its own bucket, found again. */
static void test_many_keys(void)
{
    enum { N = 500 };
    static mgw_bucket_t *bs[N];
    int distinct = 1, again = 1;
    for (int i = 0; i < N; i++) {
        char key[64];
        snprintf(key, sizeof(key), "many|%d", i);
        bs[i] = bucket(key, 1, 1);
        for (int j = 0; j < i; j++)
            if (bs[j] == bs[i]) distinct = 0;
    }
    for (int i = 0; i < N; i++) {
        char key[64];
        snprintf(key, sizeof(key), "many|%d", i);
        if (mgw_throttle_bucket(key, strlen(key), 1, 1) != bs[i]) again = 0;
    }
    CHECK(distinct);
    CHECK(again);
}

/* Concurrency ------------------------------------------------------------------------ */

enum { NTHREADS = 4 };

typedef struct {
    mgw_bucket_t *b;
    uint64_t now;   /* frozen clock, or 0 for the real one */
    uint64_t until; /* real clock: stop at this time */
    uint64_t attempts;
    uint64_t admitted;
    pthread_barrier_t *start;
} hammer_t;

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    mgw_take_t t;
    pthread_barrier_wait(h->start);
    if (h->now) {
        for (uint64_t i = 0; i < h->attempts; i++)
            h->admitted += (uint64_t)mgw_bucket_take(h->b, h->now, &t);
    } else {
        uint64_t now;
        while ((now = mgw_throttle_now()) < h->until)
            h->admitted += (uint64_t)mgw_bucket_take(h->b, now, &t);
    }
    return NULL;
}

/* NTHREADS threads take from b at once: `attempts` each at the frozen time `now`, or on
 * the real clock until `until`. Returns how many were admitted in all. */
static uint64_t hammer_all(mgw_bucket_t *b, uint64_t now, uint64_t attempts, uint64_t until)
{
    pthread_t th[NTHREADS];
    hammer_t hs[NTHREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        hs[i] = (hammer_t){b, now, until, attempts, 0, &start};
        pthread_create(&th[i], NULL, hammer, &hs[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        total += hs[i].admitted;
    }
    pthread_barrier_destroy(&start);
    return total;
}

static void test_threads_frozen_clock(void)
{
    mgw_bucket_t *b = bucket("threads|100|1000", 100, 1000);
    /* Every thread tries more than the whole burst: exactly the burst gets through. */
    uint64_t first = hammer_all(b, T0, 5000, 0);
    /* 2.345 s later: 234.5 tokens. */
    uint64_t second = hammer_all(b, T0 + 2345 * MS, 5000, 0);
    if (first != 1000 || second != 234)
        printf("#   admitted %llu then %llu, want 1000 then 234\n", (unsigned long long)first,
               (unsigned long long)second);
    CHECK(first == 1000);
    CHECK(second == 234);
    /* Same instant again: nothing left. */
    CHECK(hammer_all(b, T0 + 2345 * MS, 1000, 0) == 0);

    /* A fast bucket with a large burst: more contention, same exact counts. */
    mgw_bucket_t *c = bucket("threads-fast|1e6|50000", 1e6, 50000);
    CHECK(hammer_all(c, T0, 20000, 0) == 50000);
    CHECK(hammer_all(c, T0 + 10 * MS, 20000, 0) == 10000);
}

typedef struct {
    const char *key;
    mgw_bucket_t *got;
    pthread_barrier_t *start;
} creator_t;

static void *create_bucket(void *arg)
{
    creator_t *c = arg;
    pthread_barrier_wait(c->start);
    c->got = mgw_throttle_bucket(c->key, strlen(c->key), 5, 3);
    return NULL;
}

/* Threads racing to create the same bucket all get the one bucket, initialized. */
static void test_threads_create_same_bucket(void)
{
    pthread_t th[NTHREADS];
    creator_t cs[NTHREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        cs[i] = (creator_t){"race|5|3", NULL, &start};
        pthread_create(&th[i], NULL, create_bucket, &cs[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(cs[i].got != NULL && cs[i].got == cs[0].got);
    if (cs[0].got == NULL) return;
    CHECK(mgw_bucket_rate(cs[0].got) == 5);
    CHECK(mgw_bucket_burst(cs[0].got) == 3);
    CHECK(drain(cs[0].got, T0, 100) == 3);
}

/* The real clock: an upper bound on what gets through, not a timing assertion. */
static void test_threads_real_clock(void)
{
    double rate = 2000;
    uint64_t burst = 100;
    mgw_bucket_t *b = bucket("threads-real|2000|100", rate, burst);
    uint64_t start = mgw_throttle_now();
    uint64_t admitted = hammer_all(b, 0, 0, start + 300 * MS);
    uint64_t elapsed = mgw_throttle_now() - start;
    double bound = rate * (double)elapsed / 1e9 + (double)burst + 1;
    if ((double)admitted > bound)
        printf("#   admitted %llu in %.1f ms, bound %.1f\n", (unsigned long long)admitted,
               (double)elapsed / 1e6, bound);
    CHECK((double)admitted <= bound);
    CHECK(admitted >= burst); /* the bucket was full at the start */
}

/* A full region: NULL for a new key, while every existing bucket is still found. Runs last. */
static void test_region_full(void)
{
    int created = 0;
    mgw_bucket_t *last = NULL;
    for (int i = 0; i < 10000; i++) {
        char key[64];
        snprintf(key, sizeof(key), "fill|%d", i);
        mgw_bucket_t *b = mgw_throttle_bucket(key, strlen(key), 1, 1);
        if (b == NULL) break;
        last = b;
        created++;
    }
    CHECK(created > 0 && created < 4096); /* the region holds 4096, some already in use */
    CHECK(mgw_throttle_bucket("one more", 8, 1, 1) == NULL);
    char key[64];
    snprintf(key, sizeof(key), "fill|%d", created - 1);
    CHECK(last != NULL && mgw_throttle_bucket(key, strlen(key), 1, 1) == last);
    CHECK(mgw_throttle_bucket("fresh|10|5", 10, 10, 5) != NULL);
}

/* ---- cluster mode (cluster/throttle.c moves buckets between modes) ---- */

/* mgw_throttle_cluster puts every bucket in FALLBACK: the GCRA with limit / divisor,
 * burst rounded up, a full local bucket; buckets made afterwards start there too. */
static void test_cluster_fallback_divides_the_limit(void)
{
    mgw_bucket_t *old = bucket("cl-old|30|10", 30, 10);
    CHECK(mgw_bucket_mode(old) == MGW_BUCKET_LOCAL);
    CHECK(drain(old, T0, 100) == 10);
    mgw_throttle_cluster(3);
    CHECK(mgw_bucket_mode(old) == MGW_BUCKET_FALLBACK);
    CHECK(mgw_bucket_fallback_used(old) == 0);
    CHECK(drain(old, T0, 100) == 4); /* ceil(10 / 3), full again */
    CHECK(mgw_bucket_fallback_used(old) == 1);
    CHECK(drain(old, T0 + SEC, 100) == 4);            /* 10/s for a second, capped at the burst */
    CHECK(drain(old, T0 + SEC + 300 * MS, 100) == 3); /* 10/s: 3 in 300 ms */
    mgw_bucket_t *fresh = bucket("cl-new|30|10", 30, 10);
    CHECK(mgw_bucket_mode(fresh) == MGW_BUCKET_FALLBACK);
    CHECK(drain(fresh, T0, 100) == 4);
    /* the limit the rate headers show is still the configured one */
    CHECK(mgw_bucket_rate(fresh) == 30);
    CHECK(mgw_bucket_burst(fresh) == 10);
    /* the demand is only counted in SHARED */
    CHECK(mgw_bucket_demand(fresh) == 0);
}

/* An exact bucket is marked so; marked while SHARED (a lease that came before the mark),
 * it drops the share and runs on its fallback, the limit / divisor it decides with when
 * Redis does not answer. */
static void test_cluster_exact_mark(void)
{
    mgw_bucket_t *b = bucket("cl-exact|6|6|exact", 6, 6);
    CHECK(mgw_bucket_exact(b) == 0);
    mgw_bucket_share_add(b, 5);
    CHECK(mgw_bucket_mode(b) == MGW_BUCKET_SHARED);
    mgw_bucket_set_exact(b);
    CHECK(mgw_bucket_exact(b) == 1);
    CHECK(mgw_bucket_mode(b) == MGW_BUCKET_FALLBACK);
    CHECK(mgw_bucket_share(b) == 0);
    CHECK(drain(b, T0, 100) == 2); /* ceil(6 / 3): the divisor of mgw_throttle_cluster(3) */
    /* marking again changes nothing */
    mgw_bucket_set_exact(b);
    CHECK(mgw_bucket_mode(b) == MGW_BUCKET_FALLBACK);
    CHECK(drain(b, T0, 100) == 0);
    CHECK(mgw_bucket_exact(bucket("cl-exact|6|6", 6, 6)) == 0);
}

/* A lease makes the bucket SHARED: it admits exactly the share, whatever the clock,
 * counts every attempt as demand, and a refund goes back to the share. */
static void test_cluster_shared_takes_the_share(void)
{
    mgw_bucket_t *b = bucket("cl-share|100|50", 100, 50);
    mgw_bucket_share_add(b, 3);
    CHECK(mgw_bucket_mode(b) == MGW_BUCKET_SHARED);
    mgw_take_t t;
    CHECK(mgw_bucket_take(b, T0, &t) == 1);
    CHECK(t.remaining == 2);
    CHECK(mgw_bucket_take(b, T0 + 10 * SEC, &t) == 1);
    mgw_bucket_refund(b);
    CHECK(mgw_bucket_share(b) == 2);
    CHECK(drain(b, T0 + 20 * SEC, 100) == 2);
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    CHECK(t.remaining == 0);
    CHECK(t.retry_after_ms == 11); /* about one interval of the cluster-wide rate */
    CHECK(mgw_bucket_share(b) == 0);
    /* 2 + 3 taken (one refunded) + 2 refusals */
    CHECK(mgw_bucket_demand(b) == 6);
    CHECK(mgw_bucket_demand(b) == 0);
    mgw_bucket_peek(b, T0, &t);
    CHECK(t.remaining == 0);
    /* another lease adds to what is left */
    mgw_bucket_share_add(b, 5);
    mgw_bucket_share_add(b, 2);
    mgw_bucket_peek(b, T0, &t);
    CHECK(t.remaining == 7);
    /* giving back takes at most what is there */
    CHECK(mgw_bucket_share_take(b, 4) == 4);
    CHECK(mgw_bucket_share_take(b, 10) == 3);
    CHECK(mgw_bucket_share_take(b, 10) == 0);
    CHECK(mgw_bucket_take(b, T0, &t) == 0);
    /* Redis goes away: FALLBACK again, a full local bucket, the share dropped */
    mgw_bucket_share_add(b, 9);
    mgw_bucket_fallback(b, 2);
    CHECK(mgw_bucket_mode(b) == MGW_BUCKET_FALLBACK);
    CHECK(mgw_bucket_share(b) == 0);
    CHECK(drain(b, T0, 100) == 25);
    mgw_bucket_refund(b);
    CHECK(drain(b, T0, 100) == 1);
}

/* Concurrent takes on a share admit exactly the share. */
static void *take_share_thread(void *p)
{
    mgw_take_t t;
    long n = 0;
    for (int i = 0; i < 100000; i++)
        n += mgw_bucket_take(p, T0, &t);
    return (void *)n;
}

static void test_cluster_shared_threads(void)
{
    mgw_bucket_t *b = bucket("cl-threads|1000|1000", 1000, 1000);
    mgw_bucket_share_add(b, 123456);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, take_share_thread, b);
    long n = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        n += (long)r;
    }
    CHECK(n == 123456);
    CHECK(mgw_bucket_share(b) == 0);
    CHECK(mgw_bucket_demand(b) == 400000);
}

/* Every bucket is listed once, in order of creation; ids are stable and distinct. */
static void test_cluster_listing_and_ids(void)
{
    size_t before = mgw_throttle_count();
    mgw_bucket_t *a = bucket("cl-list-a|5|5", 5, 5);
    mgw_bucket_t *b = bucket("cl-list-b|5|5", 5, 5);
    CHECK(bucket("cl-list-a|5|5", 5, 5) == a);
    CHECK(mgw_throttle_count() == before + 2);
    CHECK(mgw_throttle_nth(before) == a);
    CHECK(mgw_throttle_nth(before + 1) == b);
    char ia[33], ib[33], ia2[33];
    mgw_bucket_id(a, ia);
    mgw_bucket_id(b, ib);
    mgw_bucket_id(a, ia2);
    CHECK(strlen(ia) == 32);
    CHECK(strcmp(ia, ia2) == 0);
    CHECK(strcmp(ia, ib) != 0);
    /* the same key with another limit is another bucket with another id */
    mgw_bucket_t *c = bucket("cl-list-a|5|5", 5, 6);
    char ic[33];
    mgw_bucket_id(c, ic);
    CHECK(strcmp(ia, ic) != 0);
    atomic_store(&cluster_divisor, 0); /* the other tests run without a cluster */
}

int main(void)
{
    mgw_throttle_init(4096);
    RUN(test_fresh_bucket_admits_burst);
    RUN(test_refill_after_dt);
    RUN(test_values_after_refill);
    RUN(test_small_steps_accumulate);
    RUN(test_long_idle_refills_to_burst_only);
    RUN(test_clock_going_backwards_grants_nothing);
    RUN(test_burst_zero_refuses_everything);
    RUN(test_fractional_rate);
    RUN(test_very_high_rate);
    RUN(test_high_rate_not_exceeded);
    RUN(test_large_burst_slow_rate);
    RUN(test_refund_gives_back_one);
    RUN(test_peek);
    RUN(test_same_key_same_bucket);
    RUN(test_same_key_other_limits);
    RUN(test_many_keys);
    RUN(test_threads_frozen_clock);
    RUN(test_threads_create_same_bucket);
    RUN(test_threads_real_clock);
    RUN(test_cluster_fallback_divides_the_limit);
    RUN(test_cluster_shared_takes_the_share);
    RUN(test_cluster_exact_mark);
    RUN(test_cluster_shared_threads);
    RUN(test_cluster_listing_and_ids);
    RUN(test_region_full);
    return DONE();
}
