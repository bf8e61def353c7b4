/*
 * Token buckets shared by every worker, without locks. Each bucket is one atomic
 * "theoretical arrival time" (the generic cell rate algorithm, equivalent to a token
 * bucket refilled at `rate` per second holding at most `burst` tokens): taking a token
 * is a load, some arithmetic and one compare-and-swap.
 *
 * Buckets live in one region allocated at start-up for the life of the process and are
 * found by a key string. Configuration keys include the limit itself, so a reload keeps
 * the state of every bucket whose limit did not change and starts a changed one afresh.
 * The interface is small on purpose: a Redis-backed store can sit behind it later.
 */
#ifndef MGW_THROTTLE_H
#define MGW_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mgw_bucket_s mgw_bucket_t;

typedef struct {
    uint64_t remaining;      /* tokens left after this request (0 when refused) */
    uint64_t retry_after_ms; /* refused: when the next token is there */
    uint64_t reset_ms;       /* when the bucket is full again */
} mgw_take_t;

/* Buckets in the region when nothing called mgw_throttle_init before the first bucket. */
#define MGW_THROTTLE_DEFAULT_BUCKETS 65536

/* Allocates the region for nbuckets buckets (rounded up to a power of two, at least
 * 1024); idempotent. */
void mgw_throttle_init(size_t nbuckets);

/*
 * The bucket for key (n bytes) with this rate (tokens/second, > 0) and burst, created
 * full on first use. Safe from any thread. Returns NULL when the region is full.
 */
mgw_bucket_t *mgw_throttle_bucket(const char *key, size_t n, double rate, uint64_t burst);

/* Takes one token at now_ns (mgw_throttle_now). Returns 1 and fills t, or 0 (refused). */
int mgw_bucket_take(mgw_bucket_t *b, uint64_t now_ns, mgw_take_t *t);
/* Fills t with the bucket's state at now_ns without taking a token. */
void mgw_bucket_peek(const mgw_bucket_t *b, uint64_t now_ns, mgw_take_t *t);
/* Gives back the token of a successful take (a later level refused the request). */
void mgw_bucket_refund(mgw_bucket_t *b);
/* The bucket's limits. */
double mgw_bucket_rate(const mgw_bucket_t *b);
uint64_t mgw_bucket_burst(const mgw_bucket_t *b);

/* Monotonic nanoseconds: the clock buckets run on. */
uint64_t mgw_throttle_now(void);

#endif
