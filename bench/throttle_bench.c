/*
 * Micro-benchmark of one token-bucket check (mgw_bucket_take): nanoseconds per check,
 * single-threaded, two threads on one bucket (contended), two threads on two buckets.
 * Run by `make bench-throttle`; timings live here, never in tests.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/throttle.h"

#define N 20000000L

typedef struct {
    mgw_bucket_t *b;
    long admitted;
    int fixed_clock;
} arg_t;

static void *run(void *p)
{
    arg_t *a = p;
    mgw_take_t t;
    uint64_t now = mgw_throttle_now();
    for (long i = 0; i < N; i++) {
        if (!a->fixed_clock && (i & 63) == 0) now = mgw_throttle_now();
        a->admitted += mgw_bucket_take(a->b, now, &t);
    }
    return NULL;
}

static double measure(const char *what, mgw_bucket_t *b1, mgw_bucket_t *b2, int threads, int fixed)
{
    pthread_t th[2];
    arg_t args[2] = {{b1, 0, fixed}, {b2, 0, fixed}};
    uint64_t t0 = mgw_throttle_now();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, run, &args[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double ns = (double)(mgw_throttle_now() - t0) / (double)N;
    printf("%-46s %6.1f ns/check  (%ld admitted)\n", what, ns,
           args[0].admitted + (threads > 1 ? args[1].admitted : 0));
    return ns;
}

int main(void)
{
    mgw_throttle_init(4096);
    mgw_bucket_t *big = mgw_throttle_bucket("bench|big", 9, 1e9, 1000000000);
    mgw_bucket_t *other = mgw_throttle_bucket("bench|other", 11, 1e9, 1000000000);
    mgw_bucket_t *small = mgw_throttle_bucket("bench|small", 11, 1000, 100);
    printf("token bucket check (GCRA, one CAS), %ld checks per thread\n", N);
    measure("1 thread, admitting (clock read every 64)", big, NULL, 1, 0);
    measure("1 thread, refusing", small, NULL, 1, 1);
    measure("2 threads, one shared bucket (contended CAS)", big, big, 2, 0);
    measure("2 threads, two buckets", big, other, 2, 0);
    return 0;
}
