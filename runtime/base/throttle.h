/*
 * Token buckets shared by every worker, without locks. Each bucket is one atomic
 * "theoretical arrival time" (the generic cell rate algorithm, equivalent to a token
 * bucket refilled at `rate` per second holding at most `burst` tokens): taking a token
 * is a load, some arithmetic and one compare-and-swap.
 *
 * Buckets live in one region allocated at start-up for the life of the process and are
 * found by a key string. Configuration keys include the limit itself, so a reload keeps
 * the state of every bucket whose limit did not change and starts a changed one afresh.
 * The interface is small on purpose: a Redis-backed store sits behind it in a cluster.
 *
 * In a cluster (cluster/throttle.c) a bucket's limit is cluster-wide. Its mode says how
 * a take is decided: LOCAL, the GCRA above with the configured limit (no cluster: the
 * only mode, and the only one a take pays for is one relaxed load of the mode, on the
 * bucket's first cache line); SHARED, a local share of tokens leased from Redis (a take
 * is one compare-and-swap on the share); FALLBACK, the GCRA with limit / divisor while
 * Redis is unreachable. The cluster's part moves buckets between modes and settles the
 * shares on the main thread; a request never waits for it. An exact bucket
 * (mgw_bucket_set_exact) is never leased: it stays in FALLBACK, which decides only when
 * Redis, asked by each request, is down or late.
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
/*
 * Marks b exact (its limit's `exact = true`; the key given to mgw_throttle_bucket must say
 * so, so that an exact and a leased bucket of one limit are two buckets): in a cluster each
 * request asks Redis (cluster/exact.c); the bucket itself keeps the local fallback, used
 * while Redis is down or late. Without a cluster it changes nothing.
 */
void mgw_bucket_set_exact(mgw_bucket_t *b);
int mgw_bucket_exact(const mgw_bucket_t *b);
/* The bucket's limits. */
double mgw_bucket_rate(const mgw_bucket_t *b);
uint64_t mgw_bucket_burst(const mgw_bucket_t *b);

/* ---- cluster mode: the cluster's part, main thread unless said ---- */

enum { MGW_BUCKET_LOCAL = 0, MGW_BUCKET_SHARED = 1, MGW_BUCKET_FALLBACK = 2 };

/* Buckets made from now on (and every existing one) start in FALLBACK with limit /
 * divisor (divisor >= 1): they become SHARED when their first lease arrives. */
void mgw_throttle_cluster(unsigned divisor);
/* How many buckets exist; mgw_throttle_nth(i) for i below it is one of them, in order of
 * creation (NULL for a moment while another thread makes it). */
size_t mgw_throttle_count(void);
mgw_bucket_t *mgw_throttle_nth(size_t i);
/* The bucket's cluster-wide name: 32 hex digits of its key and limit, the same on every
 * node with the same configuration; out has room for 33 bytes. */
void mgw_bucket_id(const mgw_bucket_t *b, char out[33]);
int mgw_bucket_mode(const mgw_bucket_t *b);
/* FALLBACK with limit / divisor, a full local bucket. */
void mgw_bucket_fallback(mgw_bucket_t *b, unsigned divisor);
/* FALLBACK: 1 when a take reached the bucket since it fell back. */
int mgw_bucket_fallback_used(const mgw_bucket_t *b);
/* Attempts (admitted or not) in SHARED since the last call; resets them. */
uint64_t mgw_bucket_demand(mgw_bucket_t *b);
/* The tokens of the local share (SHARED). */
int64_t mgw_bucket_share(const mgw_bucket_t *b);
/* Takes up to n tokens out of the local share (to give back); returns how many. */
int64_t mgw_bucket_share_take(mgw_bucket_t *b, int64_t n);
/* Adds n leased tokens to the share and makes the bucket SHARED. */
void mgw_bucket_share_add(mgw_bucket_t *b, int64_t n);

/* Monotonic nanoseconds: the clock buckets run on. */
uint64_t mgw_throttle_now(void);

#endif
