/*
 * Response caches shared by every worker of the process (a stage's cache, README
 * "Response caching"): a bounded store of immutable, reference-counted entries found by
 * a key string, evicting the least recently used entry of a shard when an insert would
 * pass its budget.
 *
 * The store is split into shards (one lock each, held only to find, link or unlink an
 * entry); an entry a lookup returns carries a reference, so that its response is written
 * without any lock held, and it is freed when the last reference goes (the store's, or a
 * request's that still writes it). An entry is filled by one request before it is
 * inserted, and never changes afterwards.
 *
 * Caches are found by name in a registry (mgw_rcache_get): a reload that asks for the
 * same name and size gets the same store, with its entries.
 */
#ifndef MGW_RCACHE_H
#define MGW_RCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"

typedef struct mgw_rcache_s mgw_rcache_t;
typedef struct mgw_rentry_s mgw_rentry_t;

/* The largest body an entry may hold (as API Gateway: 1,048,576 bytes), unless the shard
 * budget is smaller (mgw_rcache_max_body). */
#define MGW_RCACHE_MAX_BODY 1048576

/* What an entry holds, for the one who writes it (read-only). */
struct mgw_rentry_s {
    int status;
    const mgw_hdr_t *hdrs; /* the response's own headers, in the entry's memory */
    int nhdrs;
    const char *body;
    size_t body_len;
    uint64_t stored_ms; /* the clock of mgw_rcache_lookup's now_ms */
};

/*
 * The cache named name (a key that includes what makes two caches different) with a
 * budget of max_bytes (keys, headers, bodies and each entry's bookkeeping), created empty
 * when the registry has no cache of that name and size. Returns a new reference. Safe
 * from any thread.
 */
mgw_rcache_t *mgw_rcache_get(const char *name, size_t max_bytes);
/* Drops a reference of mgw_rcache_get; the last one frees the cache and its entries (an
 * entry a request still writes lives until it is released). */
void mgw_rcache_release(mgw_rcache_t *c);

/*
 * The entry for key (n bytes) stored less than max_age_ms before now_ms, with a reference
 * the caller releases (mgw_rentry_release), or NULL. An older entry is removed: an
 * expired entry is never returned.
 */
const mgw_rentry_t *mgw_rcache_lookup(mgw_rcache_t *c, const char *key, size_t n, uint64_t now_ms,
                                      uint64_t max_age_ms);
/* Removes the entry for key, if any; returns 1 when there was one. */
int mgw_rcache_remove(mgw_rcache_t *c, const char *key, size_t n);
/* Removes every entry; returns how many there were. */
uint64_t mgw_rcache_flush(mgw_rcache_t *c);
/* The number of entries and the bytes they are counted for. */
void mgw_rcache_stats(mgw_rcache_t *c, uint64_t *entries, uint64_t *bytes);
/* The largest body an entry of c may have: MGW_RCACHE_MAX_BODY, or less for a small cache. */
size_t mgw_rcache_max_body(const mgw_rcache_t *c);

/*
 * A new entry for key, private to the caller until mgw_rcache_insert: the status and
 * headers are copied; the body is added with mgw_rentry_append. Returns NULL when the key
 * and headers alone do not fit in the cache.
 */
mgw_rentry_t *mgw_rentry_new(mgw_rcache_t *c, const char *key, size_t n, int status,
                             const mgw_hdr_t *hdrs, int nhdrs);
/* Adds body bytes; returns -1 (and adds nothing) when the body would pass
 * mgw_rcache_max_body: the caller then gives the entry up (mgw_rentry_release). */
int mgw_rentry_append(mgw_rentry_t *e, const char *p, size_t n);
/*
 * Publishes e (which must come from mgw_rentry_new of c), stored at now_ms: it replaces
 * the entry of the same key, and least recently used entries of its shard go until it
 * fits. The caller's reference is taken over.
 */
void mgw_rcache_insert(mgw_rcache_t *c, mgw_rentry_t *e, uint64_t now_ms);
/* Drops a reference (a lookup's, or an entry given up before its insert). */
void mgw_rentry_release(const mgw_rentry_t *e);

#endif
