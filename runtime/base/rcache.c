#include "base/rcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"

/* What an entry is counted for besides its key, headers and body: its bookkeeping and
 * the allocator's overhead, so that a cache of many tiny entries stays within budget. */
#define ENTRY_OVERHEAD 128

/* A cache below this many bytes per shard has fewer shards: a small cache evicts in an
 * exact LRU order, and no shard is too small for a 1 MB response. */
#define SHARD_MIN_BYTES (4u << 20)
#define MAX_SHARDS 16

typedef struct entry_s {
    mgw_rentry_t pub; /* first: a mgw_rentry_t * is an entry_t * */
    struct entry_s *hnext;
    struct entry_s *prev, *next; /* the shard's LRU list, most recent first */
    _Atomic int refs;
    int linked; /* in its shard (under the shard's lock) */
    uint64_t hash;
    mgw_rcache_t *cache;
    char *key;
    size_t keyn;
    size_t size; /* what it is counted for */
    mgw_buf_t body;
} entry_t;

typedef struct {
    _Alignas(64) pthread_mutex_t lock;
    entry_t **table;
    size_t mask;  /* table size - 1 */
    size_t count; /* entries linked */
    size_t bytes;
    size_t max_bytes;
    entry_t *head, *tail;
} shard_t;

struct mgw_rcache_s {
    mgw_rcache_t *next; /* the registry's list */
    char *name;
    size_t max_bytes;
    int refs; /* under the registry's lock */
    size_t max_body;
    unsigned nshards;
    shard_t shards[MAX_SHARDS];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mgw_rcache_t *registry;

static uint64_t hash_key(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static shard_t *shard_of(mgw_rcache_t *c, uint64_t hash)
{
    return &c->shards[(hash >> 40) & (c->nshards - 1)];
}

static void entry_free(entry_t *e)
{
    mgw_buf_free(&e->body);
    free(e);
}

void mgw_rentry_release(const mgw_rentry_t *pub)
{
    entry_t *e = (entry_t *)pub;
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) entry_free(e);
}

/* ---- a shard's table and LRU list (under its lock) ---- */

static void lru_unlink(shard_t *s, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(shard_t *s, entry_t *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head) s->head->prev = e;
    s->head = e;
    if (s->tail == NULL) s->tail = e;
}

/* Unlinks e from s and chains it on *dead, whose references the caller drops after the
 * lock (freeing a body is no work for a critical section). */
static void unlink_entry(shard_t *s, entry_t *e, entry_t **dead)
{
    entry_t **pp = &s->table[e->hash & s->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(s, e);
    s->count--;
    s->bytes -= e->size;
    e->linked = 0;
    e->hnext = *dead;
    *dead = e;
}

static void release_dead(entry_t *dead)
{
    while (dead) {
        entry_t *next = dead->hnext;
        mgw_rentry_release(&dead->pub);
        dead = next;
    }
}

static entry_t *find(shard_t *s, uint64_t hash, const char *key, size_t n)
{
    for (entry_t *e = s->table[hash & s->mask]; e; e = e->hnext)
        if (e->hash == hash && e->keyn == n && memcmp(e->key, key, n) == 0) return e;
    return NULL;
}

/* Doubles the table when chains grow longer than two on average. */
static void maybe_grow(shard_t *s)
{
    if (s->count <= 2 * (s->mask + 1)) return;
    size_t size = 2 * (s->mask + 1);
    entry_t **t = mgw_calloc(size, sizeof(*t));
    for (size_t i = 0; i <= s->mask; i++) {
        for (entry_t *e = s->table[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = t[e->hash & (size - 1)];
            t[e->hash & (size - 1)] = e;
        }
    }
    free(s->table);
    s->table = t;
    s->mask = size - 1;
}

/* ---- lookups and inserts ---- */

const mgw_rentry_t *mgw_rcache_lookup(mgw_rcache_t *c, const char *key, size_t n, uint64_t now_ms,
                                      uint64_t max_age_ms)
{
    uint64_t h = hash_key(key, n);
    shard_t *s = shard_of(c, h);
    entry_t *dead = NULL;
    pthread_mutex_lock(&s->lock);
    entry_t *e = find(s, h, key, n);
    /* (another worker's loop clock may be a little behind the one that stored it) */
    if (e && now_ms > e->pub.stored_ms && now_ms - e->pub.stored_ms >= max_age_ms) {
        unlink_entry(s, e, &dead); /* expired: never served */
        e = NULL;
    } else if (e) {
        if (s->head != e) {
            lru_unlink(s, e);
            lru_push(s, e);
        }
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->lock);
    release_dead(dead);
    return e ? &e->pub : NULL;
}

int mgw_rcache_remove(mgw_rcache_t *c, const char *key, size_t n)
{
    uint64_t h = hash_key(key, n);
    shard_t *s = shard_of(c, h);
    entry_t *dead = NULL;
    pthread_mutex_lock(&s->lock);
    entry_t *e = find(s, h, key, n);
    if (e) unlink_entry(s, e, &dead);
    pthread_mutex_unlock(&s->lock);
    release_dead(dead);
    return e != NULL;
}

mgw_rentry_t *mgw_rentry_new(mgw_rcache_t *c, const char *key, size_t n, int status,
                             const mgw_hdr_t *hdrs, int nhdrs)
{
    /* one block: the entry, its header table, the key and the header strings */
    size_t strs = n;
    for (int i = 0; i < nhdrs; i++)
        strs += hdrs[i].name.n + hdrs[i].value.n;
    size_t fixed = sizeof(entry_t) + sizeof(mgw_hdr_t) * (size_t)nhdrs;
    if (strs + fixed + ENTRY_OVERHEAD > c->shards[0].max_bytes) return NULL;
    entry_t *e = mgw_calloc(1, fixed + strs);
    mgw_hdr_t *h = (mgw_hdr_t *)(e + 1);
    char *p = (char *)(h + nhdrs);
    e->cache = c;
    e->key = p;
    e->keyn = n;
    memcpy(p, key, n);
    p += n;
    for (int i = 0; i < nhdrs; i++) {
        memcpy(p, hdrs[i].name.p, hdrs[i].name.n);
        h[i].name = (mgw_str_t){p, hdrs[i].name.n};
        p += hdrs[i].name.n;
        memcpy(p, hdrs[i].value.p, hdrs[i].value.n);
        h[i].value = (mgw_str_t){p, hdrs[i].value.n};
        p += hdrs[i].value.n;
    }
    e->pub.status = status;
    e->pub.hdrs = h;
    e->pub.nhdrs = nhdrs;
    e->hash = hash_key(key, n);
    e->size = fixed + strs + ENTRY_OVERHEAD;
    atomic_init(&e->refs, 1);
    return &e->pub;
}

int mgw_rentry_append(mgw_rentry_t *pub, const char *p, size_t n)
{
    entry_t *e = (entry_t *)pub;
    if (e->body.n + n > e->cache->max_body) return -1;
    mgw_buf_add(&e->body, p, n);
    return 0;
}

void mgw_rcache_insert(mgw_rcache_t *c, mgw_rentry_t *pub, uint64_t now_ms)
{
    entry_t *e = (entry_t *)pub, *dead = NULL;
    e->pub.body = e->body.p ? e->body.p : "";
    e->pub.body_len = e->body.n;
    e->pub.stored_ms = now_ms;
    e->size += e->body.n;
    shard_t *s = shard_of(c, e->hash);
    pthread_mutex_lock(&s->lock);
    entry_t *old = find(s, e->hash, e->key, e->keyn);
    if (old) unlink_entry(s, old, &dead);
    while (s->tail && s->bytes + e->size > s->max_bytes)
        unlink_entry(s, s->tail, &dead); /* the least recently used */
    if (s->bytes + e->size <= s->max_bytes) {
        e->hnext = s->table[e->hash & s->mask];
        s->table[e->hash & s->mask] = e;
        lru_push(s, e);
        e->linked = 1;
        s->count++;
        s->bytes += e->size;
        maybe_grow(s);
        e = NULL; /* the store's reference now */
    }
    pthread_mutex_unlock(&s->lock);
    if (e) mgw_rentry_release(&e->pub); /* larger than the shard: not stored */
    release_dead(dead);
}

uint64_t mgw_rcache_flush(mgw_rcache_t *c)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < c->nshards; i++) {
        shard_t *s = &c->shards[i];
        entry_t *dead = NULL;
        pthread_mutex_lock(&s->lock);
        n += s->count;
        while (s->tail)
            unlink_entry(s, s->tail, &dead);
        pthread_mutex_unlock(&s->lock);
        release_dead(dead);
    }
    return n;
}

void mgw_rcache_stats(mgw_rcache_t *c, uint64_t *entries, uint64_t *bytes)
{
    *entries = *bytes = 0;
    for (unsigned i = 0; i < c->nshards; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        *entries += s->count;
        *bytes += s->bytes;
        pthread_mutex_unlock(&s->lock);
    }
}

size_t mgw_rcache_max_body(const mgw_rcache_t *c)
{
    return c->max_body;
}

/* ---- the registry ---- */

static mgw_rcache_t *cache_new(const char *name, size_t max_bytes)
{
    mgw_rcache_t *c = mgw_calloc(1, sizeof(*c));
    c->name = mgw_strdup(name);
    c->max_bytes = max_bytes;
    c->nshards = 1;
    while (c->nshards < MAX_SHARDS && max_bytes / (c->nshards * 2) >= SHARD_MIN_BYTES)
        c->nshards *= 2;
    size_t per = max_bytes / c->nshards;
    /* a body may take at most half of its shard: one response never empties a cache */
    c->max_body = per / 2 < MGW_RCACHE_MAX_BODY ? per / 2 : MGW_RCACHE_MAX_BODY;
    for (unsigned i = 0; i < c->nshards; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->mask = 255;
        s->table = mgw_calloc(s->mask + 1, sizeof(entry_t *));
        s->max_bytes = per;
    }
    return c;
}

mgw_rcache_t *mgw_rcache_get(const char *name, size_t max_bytes)
{
    pthread_mutex_lock(&registry_lock);
    mgw_rcache_t *c = registry;
    while (c && !(c->max_bytes == max_bytes && strcmp(c->name, name) == 0))
        c = c->next;
    if (c == NULL) {
        c = cache_new(name, max_bytes);
        c->next = registry;
        registry = c;
    }
    c->refs++;
    pthread_mutex_unlock(&registry_lock);
    return c;
}

void mgw_rcache_release(mgw_rcache_t *c)
{
    if (c == NULL) return;
    pthread_mutex_lock(&registry_lock);
    int last = --c->refs == 0;
    if (last) {
        mgw_rcache_t **pp = &registry;
        while (*pp != c)
            pp = &(*pp)->next;
        *pp = c->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (!last) return;
    mgw_rcache_flush(c);
    for (unsigned i = 0; i < c->nshards; i++) {
        pthread_mutex_destroy(&c->shards[i].lock);
        free(c->shards[i].table);
    }
    free(c->name);
    free(c);
}
