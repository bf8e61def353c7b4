#include "base/pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

#define ALIGN 16
#define ALIGN_UP(n) (((n) + (ALIGN - 1)) & ~(size_t)(ALIGN - 1))

typedef struct block_s {
    struct block_s *next;
    size_t used, size;
    max_align_t data[];
} block_t;

typedef struct cleanup_s {
    struct cleanup_s *next;
    mgw_pool_cleanup_cb cb;
    void *data;
} cleanup_t;

struct mgw_pool_s {
    block_t *current; /* the block bump allocations come from */
    block_t *blocks;  /* every block, including large single allocations */
    block_t *first;   /* the block made with the pool: kept when the pool is recycled */
    cleanup_t *cleanups;
    size_t block_size, total;
    mgw_pool_t *next_free; /* in the thread's cache of destroyed pools */
};

/*
 * Destroyed pools are kept per thread (their first block with them) and handed out again
 * by mgw_pool_create: a request's arena costs no malloc in the steady state. Only the
 * most recently destroyed pool is offered; one of another block size costs a malloc, as
 * before. Not under AddressSanitizer, which should see every use after free.
 */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_CACHE_MAX 0
#else
#define POOL_CACHE_MAX 32
#endif
static _Thread_local mgw_pool_t *pool_cache;
static _Thread_local int pool_ncache;

static block_t *block_new(mgw_pool_t *pool, size_t size)
{
    block_t *b = mgw_malloc(sizeof(*b) + size);
    b->used = 0;
    b->size = size;
    b->next = pool->blocks;
    pool->blocks = b;
    return b;
}

mgw_pool_t *mgw_pool_create(size_t block_size)
{
    block_size = block_size ? ALIGN_UP(block_size) : 4096;
    mgw_pool_t *pool = pool_cache;
    if (pool && pool->block_size == block_size) {
        pool_cache = pool->next_free;
        pool_ncache--;
        pool->next_free = NULL;
        return pool;
    }
    pool = mgw_calloc(1, sizeof(*pool));
    pool->block_size = block_size;
    pool->current = pool->first = block_new(pool, pool->block_size);
    return pool;
}

void mgw_pool_destroy(mgw_pool_t *pool)
{
    if (pool == NULL) return;
    /* A cleanup may register another cleanup or allocate: drain until empty. */
    while (pool->cleanups) {
        cleanup_t *c = pool->cleanups;
        pool->cleanups = c->next;
        c->cb(c->data);
    }
    int keep = pool_ncache < POOL_CACHE_MAX;
    block_t *b = pool->blocks;
    while (b) {
        block_t *next = b->next;
        if (b != pool->first || !keep) free(b);
        b = next;
    }
    if (!keep) {
        free(pool);
        return;
    }
    pool->first->used = 0;
    pool->first->next = NULL;
    pool->blocks = pool->current = pool->first;
    pool->total = 0;
    pool->next_free = pool_cache;
    pool_cache = pool;
    pool_ncache++;
}

void *mgw_pool_alloc(mgw_pool_t *pool, size_t n)
{
    n = ALIGN_UP(n ? n : 1);
    pool->total += n;
    /* Large requests get a block of their own so they do not waste the current one. */
    if (n > pool->block_size / 4) {
        block_t *b = block_new(pool, n);
        b->used = n;
        return b->data;
    }
    block_t *b = pool->current;
    if (b->size - b->used < n) {
        b = block_new(pool, pool->block_size);
        pool->current = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

void *mgw_pool_calloc(mgw_pool_t *pool, size_t n)
{
    void *p = mgw_pool_alloc(pool, n);
    memset(p, 0, n);
    return p;
}

char *mgw_pool_strndup(mgw_pool_t *pool, const char *s, size_t n)
{
    char *d = mgw_pool_alloc(pool, n + 1);
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mgw_pool_strdup(mgw_pool_t *pool, const char *s)
{
    return mgw_pool_strndup(pool, s, strlen(s));
}

char *mgw_pool_printf(mgw_pool_t *pool, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = mgw_pool_alloc(pool, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

void mgw_pool_cleanup_add(mgw_pool_t *pool, mgw_pool_cleanup_cb cb, void *data)
{
    cleanup_t *c = mgw_pool_alloc(pool, sizeof(*c));
    c->cb = cb;
    c->data = data;
    c->next = pool->cleanups;
    pool->cleanups = c;
}

size_t mgw_pool_used(const mgw_pool_t *pool)
{
    return pool->total;
}

void mgw_buf_reserve(mgw_buf_t *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1)
        cap *= 2;
    b->p = mgw_realloc(b->p, cap);
    b->cap = cap;
}

void mgw_buf_add(mgw_buf_t *b, const void *p, size_t n)
{
    mgw_buf_reserve(b, n);
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void mgw_buf_adds(mgw_buf_t *b, const char *s)
{
    mgw_buf_add(b, s, strlen(s));
}

void mgw_buf_addc(mgw_buf_t *b, char c)
{
    mgw_buf_add(b, &c, 1);
}

void mgw_buf_printf(mgw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    mgw_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void mgw_buf_add_json(mgw_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mgw_buf_reserve(b, n + 8);
    for (size_t i = 0; i < n; i++) {
        /* runs of bytes that need no escape are copied at once */
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\' &&
               s[run] != 0x7f)
            run++;
        if (run > i) {
            mgw_buf_add(b, s + i, run - i);
            i = run;
            if (i == n) break;
        }
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            mgw_buf_add(b, "\\\"", 2);
            break;
        case '\\':
            mgw_buf_add(b, "\\\\", 2);
            break;
        case '\n':
            mgw_buf_add(b, "\\n", 2);
            break;
        case '\r':
            mgw_buf_add(b, "\\r", 2);
            break;
        case '\t':
            mgw_buf_add(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                mgw_buf_add(b, u, 6);
            } else {
                mgw_buf_addc(b, (char)c);
            }
        }
    }
}

/* The length of the UTF-8 sequence at p (of n bytes) when it is a whole, valid one;
 * 0 otherwise. */
static size_t utf8_seq(const char *p, size_t n)
{
    unsigned char c = (unsigned char)p[0];
    size_t k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return k <= n && mgw_utf8_valid(p, k) ? k : 0;
}

void mgw_buf_add_json_utf8(mgw_buf_t *b, const char *s, size_t n)
{
    if (mgw_utf8_valid(s, n)) {
        mgw_buf_add_json(b, s, n);
        return;
    }
    /* Valid runs are escaped as they are; each byte that starts no valid sequence
     * becomes U+FFFD, as a decoder that replaces errors would read it. */
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : utf8_seq(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        mgw_buf_add_json(b, s + run, i - run);
        mgw_buf_add(b, "\\ufffd", 6);
        run = ++i;
    }
    mgw_buf_add_json(b, s + run, n - run);
}

void mgw_buf_free(mgw_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
