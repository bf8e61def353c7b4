#include "base/throttle.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"

/* One cache line per bucket for what a take reads: two busy buckets never share a line
 * between cores. The second line is the cluster's SHARED mode (base/throttle.h). */
struct mgw_bucket_s {
    _Alignas(64) _Atomic uint64_t key; /* hash of key, rate and burst; 0 = free slot */
    uint64_t key2;                     /* a second, independent hash: no silent sharing */
    _Atomic uint64_t tat;              /* theoretical arrival time of the next request, ns */
    _Atomic uint32_t ready;            /* interval and tolerance are set */
    _Atomic uint32_t mode;             /* MGW_BUCKET_* */
    /* The GCRA's: 1 / rate and burst * interval (FALLBACK: of limit / divisor). SHARED
     * sets the tolerance to 0, so that the GCRA refuses and its refusal path, which
     * LOCAL reaches only when a request is refused anyway, looks at the share: a
     * configuration without a cluster pays nothing on admission. */
    _Atomic uint64_t interval_ns, tolerance_ns;
    double rate;
    uint64_t burst;
    /* SHARED: the tokens leased from Redis */
    _Alignas(64) _Atomic int64_t share;
    _Atomic uint64_t demand; /* takes in SHARED since the part last looked */
    _Atomic uint32_t exact;  /* checked in Redis per request (mgw_bucket_set_exact) */
};

static mgw_bucket_t *region;
static size_t region_mask;
/* The buckets in order of creation (the cluster's part walks them), and how many. */
static mgw_bucket_t *_Atomic *order;
static _Atomic size_t norder;
/* 0: no cluster; else new buckets start in FALLBACK with limit / divisor. */
static _Atomic unsigned cluster_divisor;

void mgw_throttle_init(size_t nbuckets)
{
    if (region) return;
    size_t n = 1024;
    while (n < nbuckets)
        n <<= 1;
    /* One mapping for the life of the process: every worker thread sees the same
     * buckets, and nothing here is ever freed or moved. */
    void *p = mmap(NULL, n * sizeof(mgw_bucket_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        mgw_log_error("cannot map the throttle region");
        p = mgw_calloc(n, sizeof(mgw_bucket_t));
    }
    region = p;
    region_mask = n - 1;
    order = mgw_calloc(n, sizeof(*order));
}

uint64_t mgw_throttle_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Two independent 64-bit hashes of (key, rate, burst): the same key with other limits is
 * another bucket, and two keys sharing one by accident would need a 128-bit collision. */
static void hash_key(const char *s, size_t n, double rate, uint64_t burst, uint64_t h[2])
{
    for (int i = 0; i < 2; i++) {
        uint64_t x = hash_bytes(i ? 0x9e3779b97f4a7c15ull : 1469598103934665603ull, s, n);
        x = hash_bytes(x, &rate, sizeof(rate));
        x = hash_bytes(x, &burst, sizeof(burst));
        h[i] = x ? x : 1;
    }
}

/* The GCRA's interval and tolerance for rate and burst. Rounded up so a limit is never
 * exceeded: rates are at most 1e6/s, so the interval is at least 1000 ns and a bucket
 * admits at most 0.1% less than its rate. */
static void gcra_params(double rate, uint64_t burst, uint64_t *interval_ns, uint64_t *tolerance_ns)
{
    double interval = 1e9 / rate;
    uint64_t iv = (uint64_t)interval + ((double)(uint64_t)interval < interval);
    if (iv == 0) iv = 1;
    /* Saturate: a slow rate with a huge burst must not wrap around. */
    if (__builtin_mul_overflow(iv, burst, tolerance_ns) || *tolerance_ns > (UINT64_MAX >> 2))
        *tolerance_ns = UINT64_MAX >> 2;
    *interval_ns = iv;
}

mgw_bucket_t *mgw_throttle_bucket(const char *key, size_t n, double rate, uint64_t burst)
{
    /* 4 MB of address space; pages are only touched where buckets land. Every route of a
     * throttled stage has a bucket of its own, and a reload that changes a limit adds
     * buckets (old ones are never freed), so room for tens of thousands. */
    if (region == NULL) mgw_throttle_init(MGW_THROTTLE_DEFAULT_BUCKETS);
    uint64_t hh[2];
    hash_key(key, n, rate, burst, hh);
    uint64_t h = hh[0];
    for (size_t i = 0, slot = h & region_mask; i <= region_mask;
         i++, slot = (slot + 1) & region_mask) {
        mgw_bucket_t *b = &region[slot];
        uint64_t k = atomic_load_explicit(&b->key, memory_order_acquire);
        if (k == 0) {
            uint64_t expected = 0;
            if (atomic_compare_exchange_strong(&b->key, &expected, h)) {
                uint64_t iv, tol;
                gcra_params(rate, burst, &iv, &tol);
                atomic_store_explicit(&b->interval_ns, iv, memory_order_relaxed);
                atomic_store_explicit(&b->tolerance_ns, tol, memory_order_relaxed);
                b->key2 = hh[1];
                b->rate = rate;
                b->burst = burst;
                atomic_store_explicit(&b->tat, 0, memory_order_relaxed);
                unsigned div = atomic_load_explicit(&cluster_divisor, memory_order_relaxed);
                if (div) mgw_bucket_fallback(b, div);
                atomic_store_explicit(&b->ready, 1, memory_order_release);
                size_t i = atomic_fetch_add_explicit(&norder, 1, memory_order_relaxed);
                atomic_store_explicit(&order[i], b, memory_order_release);
                return b;
            }
            k = expected;
        }
        if (k == h) {
            /* Claimed by another thread a moment ago: wait until it is initialized. */
            while (!atomic_load_explicit(&b->ready, memory_order_acquire))
                ;
            if (b->key2 == hh[1]) return b;
        }
    }
    return NULL;
}

/* A take in SHARED mode: one token of the local share. Counts the demand the part sizes
 * the next lease by. */
static __attribute__((noinline)) int share_take(mgw_bucket_t *b, mgw_take_t *t)
{
    atomic_fetch_add_explicit(&b->demand, 1, memory_order_relaxed);
    int64_t s = atomic_load_explicit(&b->share, memory_order_relaxed);
    uint64_t one_ms = (uint64_t)(1000.0 / b->rate) + 1;
    while (s > 0) {
        if (atomic_compare_exchange_weak_explicit(&b->share, &s, s - 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            uint64_t left = (uint64_t)(s - 1);
            t->remaining = left < b->burst ? left : b->burst;
            t->retry_after_ms = 0;
            t->reset_ms = (b->burst - t->remaining) * one_ms;
            return 1;
        }
    }
    /* Empty until the next lease: the cluster's next token is about an interval away. */
    t->remaining = 0;
    t->retry_after_ms = one_ms;
    t->reset_ms = b->burst * one_ms;
    return 0;
}

int mgw_bucket_take(mgw_bucket_t *b, uint64_t now, mgw_take_t *t)
{
    uint64_t interval = atomic_load_explicit(&b->interval_ns, memory_order_relaxed);
    uint64_t tolerance = atomic_load_explicit(&b->tolerance_ns, memory_order_relaxed);
    uint64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);
    for (;;) {
        uint64_t start = tat > now ? tat : now;
        uint64_t next = start + interval;
        uint64_t ahead = next - now; /* how far the bucket is from full after this token */
        if (ahead > tolerance) {
            if (tolerance == 0 &&
                atomic_load_explicit(&b->mode, memory_order_relaxed) == MGW_BUCKET_SHARED)
                return share_take(b, t);
            t->remaining = 0;
            t->retry_after_ms = (ahead - tolerance + 999999) / 1000000;
            t->reset_ms = (tat > now ? tat - now : 0) / 1000000;
            return 0;
        }
        if (atomic_compare_exchange_weak_explicit(&b->tat, &tat, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            uint64_t left = (tolerance - ahead) / interval;
            t->remaining = left < b->burst ? left : b->burst;
            t->retry_after_ms = 0;
            t->reset_ms = (ahead + 999999) / 1000000;
            return 1;
        }
    }
}

void mgw_bucket_peek(const mgw_bucket_t *b, uint64_t now, mgw_take_t *t)
{
    if (atomic_load_explicit(&b->mode, memory_order_relaxed) == MGW_BUCKET_SHARED) {
        int64_t s = atomic_load_explicit(&b->share, memory_order_relaxed);
        uint64_t one_ms = (uint64_t)(1000.0 / b->rate) + 1;
        t->remaining = s <= 0 ? 0 : (uint64_t)s < b->burst ? (uint64_t)s : b->burst;
        t->retry_after_ms = t->remaining ? 0 : one_ms;
        t->reset_ms = (b->burst - t->remaining) * one_ms;
        return;
    }
    uint64_t iv = atomic_load_explicit(&b->interval_ns, memory_order_relaxed);
    uint64_t tol = atomic_load_explicit(&b->tolerance_ns, memory_order_relaxed);
    uint64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);
    uint64_t ahead = tat > now ? tat - now : 0;
    t->remaining = ahead >= tol ? 0 : (tol - ahead) / iv;
    t->retry_after_ms = t->remaining ? 0 : (ahead - tol + iv + 999999) / 1000000;
    t->reset_ms = (ahead + 999999) / 1000000;
}

void mgw_bucket_refund(mgw_bucket_t *b)
{
    if (atomic_load_explicit(&b->mode, memory_order_relaxed) == MGW_BUCKET_SHARED)
        atomic_fetch_add_explicit(&b->share, 1, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&b->tat,
                                  atomic_load_explicit(&b->interval_ns, memory_order_relaxed),
                                  memory_order_relaxed);
}

void mgw_bucket_set_exact(mgw_bucket_t *b)
{
    atomic_store_explicit(&b->exact, 1, memory_order_relaxed);
    /* leased a moment ago, by a part that had not seen the mark yet */
    if (atomic_load_explicit(&b->mode, memory_order_relaxed) == MGW_BUCKET_SHARED)
        mgw_bucket_fallback(b, atomic_load_explicit(&cluster_divisor, memory_order_relaxed));
}

int mgw_bucket_exact(const mgw_bucket_t *b)
{
    return (int)atomic_load_explicit(&b->exact, memory_order_relaxed);
}

double mgw_bucket_rate(const mgw_bucket_t *b)
{
    return b->rate;
}

uint64_t mgw_bucket_burst(const mgw_bucket_t *b)
{
    return b->burst;
}

/* ---- cluster mode ---- */

void mgw_throttle_cluster(unsigned divisor)
{
    if (divisor == 0) divisor = 1;
    atomic_store_explicit(&cluster_divisor, divisor, memory_order_relaxed);
    size_t n = mgw_throttle_count();
    for (size_t i = 0; i < n; i++) {
        mgw_bucket_t *b = mgw_throttle_nth(i);
        if (b) mgw_bucket_fallback(b, divisor);
    }
}

size_t mgw_throttle_count(void)
{
    return atomic_load_explicit(&norder, memory_order_acquire);
}

mgw_bucket_t *mgw_throttle_nth(size_t i)
{
    return atomic_load_explicit(&order[i], memory_order_acquire);
}

void mgw_bucket_id(const mgw_bucket_t *b, char out[33])
{
    snprintf(out, 33, "%016llx%016llx",
             (unsigned long long)atomic_load_explicit(&b->key, memory_order_relaxed),
             (unsigned long long)b->key2);
}

int mgw_bucket_mode(const mgw_bucket_t *b)
{
    return (int)atomic_load_explicit(&b->mode, memory_order_acquire);
}

void mgw_bucket_fallback(mgw_bucket_t *b, unsigned divisor)
{
    if (divisor == 0) divisor = 1;
    /* limit / divisor, at least one token of burst so the bucket admits at all */
    uint64_t burst = (b->burst + divisor - 1) / divisor;
    uint64_t iv, tol;
    gcra_params(b->rate / divisor, burst ? burst : 1, &iv, &tol);
    uint32_t was = atomic_exchange_explicit(&b->mode, MGW_BUCKET_FALLBACK, memory_order_relaxed);
    if (was != MGW_BUCKET_FALLBACK) {
        /* a full local bucket; the share's tokens stay Redis's (not given back) */
        atomic_store_explicit(&b->tat, 0, memory_order_relaxed);
        atomic_store_explicit(&b->share, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&b->interval_ns, iv, memory_order_relaxed);
    atomic_store_explicit(&b->tolerance_ns, tol, memory_order_relaxed);
}

int mgw_bucket_fallback_used(const mgw_bucket_t *b)
{
    return atomic_load_explicit(&b->tat, memory_order_relaxed) != 0;
}

uint64_t mgw_bucket_demand(mgw_bucket_t *b)
{
    return atomic_exchange_explicit(&b->demand, 0, memory_order_relaxed);
}

int64_t mgw_bucket_share(const mgw_bucket_t *b)
{
    return atomic_load_explicit(&b->share, memory_order_relaxed);
}

int64_t mgw_bucket_share_take(mgw_bucket_t *b, int64_t n)
{
    int64_t s = atomic_load_explicit(&b->share, memory_order_relaxed);
    for (;;) {
        int64_t k = s < n ? s : n;
        if (k <= 0) return 0;
        if (atomic_compare_exchange_weak_explicit(&b->share, &s, s - k, memory_order_relaxed,
                                                  memory_order_relaxed))
            return k;
    }
}

void mgw_bucket_share_add(mgw_bucket_t *b, int64_t n)
{
    if (atomic_load_explicit(&b->mode, memory_order_relaxed) != MGW_BUCKET_SHARED) {
        atomic_store_explicit(&b->share, n, memory_order_relaxed);
        atomic_store_explicit(&b->mode, MGW_BUCKET_SHARED, memory_order_relaxed);
        /* a huge interval and no tolerance: every take reaches share_take */
        atomic_store_explicit(&b->interval_ns, UINT64_MAX >> 2, memory_order_relaxed);
        atomic_store_explicit(&b->tolerance_ns, 0, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&b->share, n, memory_order_relaxed);
}
