/*
 * Sliding-window request counters shared by every worker thread: the counting behind a
 * web ACL's rate-based rules (README "Rate-based rules"). A store counts requests per key
 * over its window (60 to 600 s) and answers, for each request it counts, how many
 * requests the key made in the window ending now, this one included.
 *
 * Accuracy: the window is cut into MGW_RATEWIN_SUBS sub-windows of window/10; a key's
 * count is the sum of its last ten sub-windows plus the one leaving the window, weighted
 * by the share of it still inside. A request therefore counts fully for at least 0.9 ×
 * window, not at all after 1.1 × window, and fades linearly in between; for requests
 * spread evenly the count is exact. Concurrent requests of one key are counted exactly
 * (one atomic add each); a request that two threads see at the same instant can be
 * judged on a count one request apart.
 *
 * Memory: a store is one table of MGW_RATEWIN_SLOTS keys (128 bytes each: 2 MiB of
 * address space, touched as keys arrive) that never grows. A key may live in one of
 * MGW_RATEWIN_PROBES places; when all of them hold keys that still count, the new key
 * takes the place of the one with the fewest requests, unless every one of them is over
 * the store's limit: then the new key is not counted (a key over its limit is never
 * dropped to make room, as AWS WAF limits the keys with the highest rates first). Keys
 * are 64-bit keyed hashes (SipHash-2-4 with a per-process random key): two keys share a
 * counter only by a collision an attacker cannot aim for.
 *
 * Stores are found by name in a registry (mgw_ratewin_get): a reload that asks for the
 * same name (the rule, its limit, window and key) gets the same store, with its counts.
 * Nothing on the counting path takes a lock: a lookup is a few loads, counting is one
 * compare-and-swap.
 */
#ifndef MGW_RATEWIN_H
#define MGW_RATEWIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct mgw_ratewin_s mgw_ratewin_t;

#define MGW_RATEWIN_SLOTS 16384 /* keys a store holds at most */
#define MGW_RATEWIN_PROBES 8    /* places a key may take */
#define MGW_RATEWIN_SUBS 10     /* sub-windows per window */

/*
 * The store named name counting over window_ms (at least 10 ms) for a limit of limit
 * requests (which only decides what may be evicted), created empty when the registry has
 * none of that name. Returns a new reference. Safe from any thread.
 */
mgw_ratewin_t *mgw_ratewin_get(const char *name, uint64_t window_ms, uint64_t limit);
/* Drops a reference of mgw_ratewin_get; the last one frees the store. */
void mgw_ratewin_release(mgw_ratewin_t *w);

/*
 * Counts one request of key (n bytes) at now_ms (any monotonic millisecond clock, the
 * same for every caller of a store). Returns the key's requests in the window ending at
 * now_ms, this one included, or 0 when the key could not be tracked (see Memory above).
 */
uint64_t mgw_ratewin_hit(mgw_ratewin_t *w, const void *key, size_t n, uint64_t now_ms);
/* The key's requests in the window ending at now_ms, without counting one. */
uint64_t mgw_ratewin_count(mgw_ratewin_t *w, const void *key, size_t n, uint64_t now_ms);
/* The number of keys that count at now_ms (made a request in the last 1.1 windows). */
uint64_t mgw_ratewin_keys(mgw_ratewin_t *w, uint64_t now_ms);

/*
 * ---- sharing with other nodes (cluster/wafrate.c, README "Running a cluster") ----
 * A shared store lines its sub-windows up on the wall clock (every now_ms gets offset_ms
 * added: wall clock minus the monotonic one), notes which keys requests hit, and adds to
 * each count what the other nodes counted for the key, as last set by the main thread
 * (a value older than one sub-window is not used). A store that is not shared pays one
 * add and one well-predicted branch per request.
 */

/* Makes w shared (before any request counts in it; a second call changes nothing). */
void mgw_ratewin_share(mgw_ratewin_t *w, uint64_t offset_ms);
/* Sets the key of the keyed hash (before any store counts): nodes that share stores must
 * hash keys alike. */
void mgw_ratewin_seed(const uint64_t k[2]);
/* A new reference to w (release it with mgw_ratewin_release). */
mgw_ratewin_t *mgw_ratewin_ref(mgw_ratewin_t *w);
/* The name w was made with, and its sub-window in milliseconds. */
const char *mgw_ratewin_name(const mgw_ratewin_t *w);
uint64_t mgw_ratewin_sub_ms(const mgw_ratewin_t *w);

/* A key of a shared store as mgw_ratewin_changed reports it. */
typedef struct {
    uint32_t slot;   /* where the store keeps it */
    uint64_t hash;   /* the key's hash: the same on every node */
    uint64_t sub;    /* the current sub-window: (now_ms + offset_ms) / sub_ms */
    uint64_t own[2]; /* this node's requests in sub-window sub and in sub - 1 */
} mgw_ratewin_own_t;

/*
 * Up to max keys of shared store w to settle, with this node's counts at now_ms (the
 * monotonic clock): the keys requests hit since they were last reported, and again each
 * call the keys this node still counts in the window (their others' count changes).
 * Calls go on where the last one stopped. Returns the number written to out. Main thread.
 */
int mgw_ratewin_changed(mgw_ratewin_t *w, uint64_t now_ms, mgw_ratewin_own_t *out, int max);
/* Notes key o as hit again (its counts could not be sent). */
void mgw_ratewin_mark(mgw_ratewin_t *w, const mgw_ratewin_own_t *o);
/* Sets what the other nodes counted for o's key in the window ending in sub-window o->sub
 * (nothing when the store's place no longer holds that key). */
void mgw_ratewin_set_others(mgw_ratewin_t *w, const mgw_ratewin_own_t *o, uint64_t count);

/* Milliseconds on the monotonic clock. */
uint64_t mgw_ratewin_now_ms(void);

#endif
