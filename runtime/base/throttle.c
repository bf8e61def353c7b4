#include "base/throttle.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"

/* One cache line per bucket: two busy buckets never share a line between cores. */
struct mgw_bucket_s {
    _Alignas(64) _Atomic uint64_t key; /* hash of key, rate and burst; 0 = free slot */
    uint64_t key2;                     /* a second, independent hash: no silent sharing */
    _Atomic uint64_t tat;              /* theoretical arrival time of the next request, ns */
    _Atomic int ready;                 /* interval and tolerance are set */
    uint64_t interval_ns;              /* 1 / rate */
    uint64_t tolerance_ns;             /* burst * interval */
    double rate;
    uint64_t burst;
};

static mgw_bucket_t *region;
static size_t region_mask;

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
                /* Rounded up so a limit is never exceeded: rates are at most 1e6/s, so
                 * the interval is at least 1000 ns and a bucket admits at most 0.1%
                 * less than its rate. */
                double interval = 1e9 / rate;
                b->interval_ns = (uint64_t)interval + ((double)(uint64_t)interval < interval);
                if (b->interval_ns == 0) b->interval_ns = 1;
                /* Saturate: a slow rate with a huge burst must not wrap around. */
                if (__builtin_mul_overflow(b->interval_ns, burst, &b->tolerance_ns) ||
                    b->tolerance_ns > (UINT64_MAX >> 2))
                    b->tolerance_ns = UINT64_MAX >> 2;
                b->key2 = hh[1];
                b->rate = rate;
                b->burst = burst;
                atomic_store_explicit(&b->tat, 0, memory_order_relaxed);
                atomic_store_explicit(&b->ready, 1, memory_order_release);
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

int mgw_bucket_take(mgw_bucket_t *b, uint64_t now, mgw_take_t *t)
{
    uint64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);
    for (;;) {
        uint64_t start = tat > now ? tat : now;
        uint64_t next = start + b->interval_ns;
        uint64_t ahead = next - now; /* how far the bucket is from full after this token */
        if (ahead > b->tolerance_ns) {
            t->remaining = 0;
            t->retry_after_ms = (ahead - b->tolerance_ns + 999999) / 1000000;
            t->reset_ms = (tat > now ? tat - now : 0) / 1000000;
            return 0;
        }
        if (atomic_compare_exchange_weak_explicit(&b->tat, &tat, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            uint64_t left = (b->tolerance_ns - ahead) / b->interval_ns;
            t->remaining = left < b->burst ? left : b->burst;
            t->retry_after_ms = 0;
            t->reset_ms = (ahead + 999999) / 1000000;
            return 1;
        }
    }
}

void mgw_bucket_peek(const mgw_bucket_t *b, uint64_t now, mgw_take_t *t)
{
    uint64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);
    uint64_t ahead = tat > now ? tat - now : 0;
    t->remaining = ahead >= b->tolerance_ns ? 0 : (b->tolerance_ns - ahead) / b->interval_ns;
    t->retry_after_ms =
        t->remaining ? 0 : (ahead - b->tolerance_ns + b->interval_ns + 999999) / 1000000;
    t->reset_ms = (ahead + 999999) / 1000000;
}

void mgw_bucket_refund(mgw_bucket_t *b)
{
    atomic_fetch_sub_explicit(&b->tat, b->interval_ns, memory_order_relaxed);
}

double mgw_bucket_rate(const mgw_bucket_t *b)
{
    return b->rate;
}

uint64_t mgw_bucket_burst(const mgw_bucket_t *b)
{
    return b->burst;
}
