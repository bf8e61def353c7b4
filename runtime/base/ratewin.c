#include "base/ratewin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/crypto.h"
#include "base/log.h"
#include "base/mem.h"

/* A sub-window's counter: its sub-window number (mod 2^24) above, its count below. A
 * counter whose number is not one of the current window's holds an old count, which is
 * read as 0 and replaced by the next request: no thread ever has to clear a window. */
#define TAG_BITS 24
#define COUNT_BITS 40
#define TAG_MASK ((1ull << TAG_BITS) - 1)
#define COUNT_MASK ((1ull << COUNT_BITS) - 1)
#define RING (MGW_RATEWIN_SUBS + 1) /* the window's sub-windows and the one leaving it */

typedef struct {
    _Alignas(64) _Atomic uint64_t key; /* the key's hash; 0: never used */
    _Atomic uint64_t sub[RING];        /* sub-window e is at sub[e % RING] */
    _Atomic uint64_t others;           /* shared stores: the other nodes' count, tagged as a sub */
} slot_t;

struct mgw_ratewin_s {
    mgw_ratewin_t *next; /* the registry's list */
    char *name;
    int refs; /* under the registry's lock */
    uint64_t sub_ms;
    uint64_t limit;
    uint64_t offset_ms;     /* added to every now_ms (shared stores: wall clock) */
    _Atomic uint64_t *hits; /* shared stores: a bit per place hit since last reported */
    slot_t *slots;          /* MGW_RATEWIN_SLOTS */
    uint32_t scan;          /* where mgw_ratewin_changed goes on from */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mgw_ratewin_t *registry;
static uint64_t sip_key[2];

uint64_t mgw_ratewin_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein): keyed, so that no client can choose keys
 * that collide with another's ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash(const void *p, size_t n, const uint64_t k[2])
{
    const unsigned char *s = p;
    uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
    uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
    uint64_t b = (uint64_t)n << 56, m;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&m, s + i, 8); /* little-endian hosts: the reference reads bytes LE */
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; i + j < n; j++)
        b |= (uint64_t)s[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the registry ---- */

mgw_ratewin_t *mgw_ratewin_get(const char *name, uint64_t window_ms, uint64_t limit)
{
    pthread_mutex_lock(&registry_lock);
    if (sip_key[0] == 0 && sip_key[1] == 0) {
        if (mgw_random_bytes(sip_key, sizeof(sip_key)) != 0) {
            /* not secret then, but the table still works */
            mgw_log_error("rate-based rules: no random bytes for the key hash");
            sip_key[0] = (uint64_t)mgw_ratewin_now_ms() | 1;
        }
    }
    mgw_ratewin_t *w;
    for (w = registry; w; w = w->next)
        if (strcmp(w->name, name) == 0) {
            w->refs++;
            pthread_mutex_unlock(&registry_lock);
            return w;
        }
    w = mgw_calloc(1, sizeof(*w));
    w->name = mgw_strdup(name);
    w->refs = 1;
    w->sub_ms = window_ms / MGW_RATEWIN_SUBS ? window_ms / MGW_RATEWIN_SUBS : 1;
    w->limit = limit;
    /* Anonymous pages are zero until touched: a store costs memory for the keys it sees. */
    size_t bytes = sizeof(slot_t) * MGW_RATEWIN_SLOTS;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        mgw_log_error("out of memory mapping %zu bytes for rate-based rule counters", bytes);
        abort();
    }
    w->slots = p;
    w->next = registry;
    registry = w;
    pthread_mutex_unlock(&registry_lock);
    return w;
}

void mgw_ratewin_release(mgw_ratewin_t *w)
{
    if (w == NULL) return;
    pthread_mutex_lock(&registry_lock);
    int last = --w->refs == 0;
    if (last)
        for (mgw_ratewin_t **pp = &registry; *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                break;
            }
    pthread_mutex_unlock(&registry_lock);
    if (!last) return;
    munmap(w->slots, sizeof(slot_t) * MGW_RATEWIN_SLOTS);
    free((void *)w->hits);
    free(w->name);
    free(w);
}

/* ---- counting ---- */

/* The slot's requests in the window of sub-window e, the leaving sub-window weighted by
 * the share of it (left of sub_ms) still inside. */
static uint64_t count_of(const slot_t *s, uint64_t e, uint64_t left, uint64_t sub_ms)
{
    uint64_t full = 0, old = 0;
    for (uint64_t d = 0; d <= MGW_RATEWIN_SUBS && d <= e; d++) {
        uint64_t v = atomic_load_explicit(&s->sub[(e - d) % RING], memory_order_relaxed);
        if ((v >> COUNT_BITS) != ((e - d) & TAG_MASK)) continue;
        if (d < MGW_RATEWIN_SUBS)
            full += v & COUNT_MASK;
        else
            old = v & COUNT_MASK;
    }
    return full + old * left / sub_ms;
}

/*
 * The slot of key hash h: found, or taken (claim set) for it; NULL when the key cannot be
 * tracked. Keys are placed at the first free or idle place of their MGW_RATEWIN_PROBES
 * places, and a place once used never becomes free again, so a lookup ends at the first
 * free place.
 */
static slot_t *find(mgw_ratewin_t *w, uint64_t h, uint64_t e, uint64_t left, int claim)
{
    slot_t *idle = NULL, *victim = NULL;
    uint64_t fewest = UINT64_MAX;
    for (;;) {
        slot_t *target = NULL;
        for (uint64_t i = 0; i < MGW_RATEWIN_PROBES; i++) {
            slot_t *s = &w->slots[(h + i) & (MGW_RATEWIN_SLOTS - 1)];
            uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
            if (k == h) return s;
            if (k == 0) {
                target = idle ? idle : s;
                break;
            }
            if (!claim) continue;
            uint64_t c = count_of(s, e, left, w->sub_ms);
            if (c == 0 && idle == NULL) idle = s;
            if (c < fewest) fewest = c, victim = s;
        }
        if (!claim) return NULL;
        if (target == NULL) target = idle ? idle : fewest <= w->limit ? victim : NULL;
        if (target == NULL) return NULL;
        uint64_t k = atomic_load_explicit(&target->key, memory_order_relaxed);
        if (atomic_compare_exchange_strong(&target->key, &k, h)) {
            /* Another key's old counts go (a request of that key counted at this very
             * instant may land here: one request, once). */
            if (k != 0) {
                for (int i = 0; i < RING; i++)
                    atomic_store_explicit(&target->sub[i], 0, memory_order_relaxed);
                atomic_store_explicit(&target->others, 0, memory_order_relaxed);
            }
            return target;
        }
        if (k == h) return target; /* another thread took it for the same key */
        idle = victim = NULL;      /* taken for another key meanwhile: look again */
        fewest = UINT64_MAX;
    }
}

static uint64_t hash_key(const void *key, size_t n)
{
    uint64_t h = siphash(key, n, sip_key);
    return h ? h : 1;
}

/* What the other nodes counted for s's key, when it was set this sub-window or the last. */
static uint64_t others_of(const slot_t *s, uint64_t e)
{
    uint64_t v = atomic_load_explicit(&s->others, memory_order_relaxed), tag = v >> COUNT_BITS;
    return tag == (e & TAG_MASK) || tag == ((e - 1) & TAG_MASK) ? v & COUNT_MASK : 0;
}

/* Notes place i as hit (a shared store's): one load when it already is. */
static void note_hit(mgw_ratewin_t *w, size_t i)
{
    uint64_t bit = 1ull << (i & 63);
    if (!(atomic_load_explicit(&w->hits[i >> 6], memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(&w->hits[i >> 6], bit, memory_order_relaxed);
}

uint64_t mgw_ratewin_hit(mgw_ratewin_t *w, const void *key, size_t n, uint64_t now_ms)
{
    now_ms += w->offset_ms;
    uint64_t e = now_ms / w->sub_ms, left = w->sub_ms - now_ms % w->sub_ms;
    slot_t *s = find(w, hash_key(key, n), e, left, 1);
    if (s == NULL) return 0;
    _Atomic uint64_t *c = &s->sub[e % RING];
    uint64_t tag = e & TAG_MASK, v = atomic_load_explicit(c, memory_order_relaxed), nv;
    do {
        if ((v >> COUNT_BITS) == tag)
            nv = (v & COUNT_MASK) == COUNT_MASK ? v : v + 1;
        else
            nv = tag << COUNT_BITS | 1;
    } while (!atomic_compare_exchange_weak_explicit(c, &v, nv, memory_order_relaxed,
                                                    memory_order_relaxed));
    if (w->hits == NULL) return count_of(s, e, left, w->sub_ms);
    note_hit(w, (size_t)(s - w->slots));
    return count_of(s, e, left, w->sub_ms) + others_of(s, e);
}

uint64_t mgw_ratewin_count(mgw_ratewin_t *w, const void *key, size_t n, uint64_t now_ms)
{
    now_ms += w->offset_ms;
    uint64_t e = now_ms / w->sub_ms, left = w->sub_ms - now_ms % w->sub_ms;
    slot_t *s = find(w, hash_key(key, n), e, left, 0);
    if (s == NULL) return 0;
    return count_of(s, e, left, w->sub_ms) + (w->hits ? others_of(s, e) : 0);
}

uint64_t mgw_ratewin_keys(mgw_ratewin_t *w, uint64_t now_ms)
{
    now_ms += w->offset_ms;
    uint64_t e = now_ms / w->sub_ms, left = w->sub_ms - now_ms % w->sub_ms, n = 0;
    for (size_t i = 0; i < MGW_RATEWIN_SLOTS; i++) {
        const slot_t *s = &w->slots[i];
        if (atomic_load_explicit(&s->key, memory_order_relaxed) == 0) continue;
        /* a key whose leaving sub-window still has requests counts, even weighted to 0 */
        if (count_of(s, e, left, w->sub_ms) || count_of(s, e, w->sub_ms, w->sub_ms)) n++;
    }
    return n;
}

/* ---- sharing with other nodes ---- */

void mgw_ratewin_seed(const uint64_t k[2])
{
    pthread_mutex_lock(&registry_lock);
    sip_key[0] = k[0];
    sip_key[1] = k[1];
    pthread_mutex_unlock(&registry_lock);
}

void mgw_ratewin_share(mgw_ratewin_t *w, uint64_t offset_ms)
{
    if (w->hits) return;
    w->offset_ms = offset_ms;
    w->hits = mgw_calloc(MGW_RATEWIN_SLOTS / 64, sizeof(*w->hits));
}

mgw_ratewin_t *mgw_ratewin_ref(mgw_ratewin_t *w)
{
    pthread_mutex_lock(&registry_lock);
    w->refs++;
    pthread_mutex_unlock(&registry_lock);
    return w;
}

const char *mgw_ratewin_name(const mgw_ratewin_t *w)
{
    return w->name;
}

uint64_t mgw_ratewin_sub_ms(const mgw_ratewin_t *w)
{
    return w->sub_ms;
}

/* This node's requests in sub-window e of slot s. */
static uint64_t sub_count(const slot_t *s, uint64_t e)
{
    uint64_t v = atomic_load_explicit(&s->sub[e % RING], memory_order_relaxed);
    return (v >> COUNT_BITS) == (e & TAG_MASK) ? v & COUNT_MASK : 0;
}

int mgw_ratewin_changed(mgw_ratewin_t *w, uint64_t now_ms, mgw_ratewin_own_t *out, int max)
{
    if (w->hits == NULL) return 0;
    now_ms += w->offset_ms;
    uint64_t e = now_ms / w->sub_ms, left = w->sub_ms - now_ms % w->sub_ms;
    int n = 0;
    uint32_t words = MGW_RATEWIN_SLOTS / 64, next = w->scan;
    for (uint32_t i = 0; i < words && n < max; i++) {
        uint32_t wi = (w->scan + i) % words;
        uint64_t bits = atomic_exchange_explicit(&w->hits[wi], 0, memory_order_relaxed), again = 0;
        while (bits) {
            int b = __builtin_ctzll(bits);
            bits &= bits - 1;
            const slot_t *s = &w->slots[wi * 64 + (uint32_t)b];
            mgw_ratewin_own_t *o = &out[n];
            o->slot = wi * 64 + (uint32_t)b;
            o->hash = atomic_load_explicit(&s->key, memory_order_relaxed);
            o->sub = e;
            o->own[0] = sub_count(s, e);
            o->own[1] = sub_count(s, e - 1);
            if (o->hash == 0) continue;
            /* a key this node counts in the window is settled again (the others' change) */
            if (count_of(s, e, left, w->sub_ms)) again |= 1ull << b;
            if (++n == max) break;
        }
        /* a word left unfinished is where the next call begins */
        next = bits ? wi : (wi + 1) % words;
        if (bits | again)
            atomic_fetch_or_explicit(&w->hits[wi], bits | again, memory_order_relaxed);
    }
    w->scan = next;
    return n;
}

void mgw_ratewin_mark(mgw_ratewin_t *w, const mgw_ratewin_own_t *o)
{
    if (w->hits) note_hit(w, o->slot);
}

void mgw_ratewin_set_others(mgw_ratewin_t *w, const mgw_ratewin_own_t *o, uint64_t count)
{
    slot_t *s = &w->slots[o->slot % MGW_RATEWIN_SLOTS];
    if (atomic_load_explicit(&s->key, memory_order_relaxed) != o->hash) return;
    if (count > COUNT_MASK) count = COUNT_MASK;
    atomic_store_explicit(&s->others, (o->sub & TAG_MASK) << COUNT_BITS | count,
                          memory_order_relaxed);
}
