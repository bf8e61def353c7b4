/*
 * An arena: memory that lives exactly as long as one owner (a request, a configuration
 * generation). Allocations are bump-pointer from blocks and are never freed one by one;
 * mgw_pool_destroy() runs the registered cleanups (last registered first) and releases
 * every block at once.
 */
#ifndef MGW_POOL_H
#define MGW_POOL_H

#include <stdarg.h>
#include <stddef.h>

#include "base/mem.h"

typedef struct mgw_pool_s mgw_pool_t;
typedef void (*mgw_pool_cleanup_cb)(void *data);

/* Creates a pool whose blocks are block_size bytes (0 = 4096). Never returns NULL. */
mgw_pool_t *mgw_pool_create(size_t block_size);
/* Runs the cleanups in reverse order of registration, then frees all memory. */
void mgw_pool_destroy(mgw_pool_t *pool);

/* n bytes aligned for any type, owned by the pool. */
void *mgw_pool_alloc(mgw_pool_t *pool, size_t n);
void *mgw_pool_calloc(mgw_pool_t *pool, size_t n);
char *mgw_pool_strndup(mgw_pool_t *pool, const char *s, size_t n);
char *mgw_pool_strdup(mgw_pool_t *pool, const char *s);
char *mgw_pool_printf(mgw_pool_t *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Registers cb(data) to run when the pool is destroyed. */
void mgw_pool_cleanup_add(mgw_pool_t *pool, mgw_pool_cleanup_cb cb, void *data);

/* Bytes handed out so far (for tests and metrics). */
size_t mgw_pool_used(const mgw_pool_t *pool);

/*
 * Appending to memory whose size the caller reserved up front (e.g. an HTTP head in the
 * request arena): no bounds checks, no allocation, no printf on the hot path.
 */
typedef struct {
    char *p;
    size_t n;
} mgw_sbuf_t;

static inline void mgw_sbuf_add(mgw_sbuf_t *b, const char *s, size_t n)
{
    __builtin_memcpy(b->p + b->n, s, n);
    b->n += n;
}

static inline void mgw_sbuf_adds(mgw_sbuf_t *b, const char *s)
{
    mgw_sbuf_add(b, s, __builtin_strlen(s));
}

/* v's decimal digits, written backwards so that they end at end (24 bytes suffice);
 * returns where they start. No printf: for numbers written per request or per sample. */
static inline char *mgw_u64_digits(char *end, unsigned long long v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static inline void mgw_sbuf_u64(mgw_sbuf_t *b, unsigned long long v)
{
    char t[24], *p = mgw_u64_digits(t + sizeof(t), v);
    mgw_sbuf_add(b, p, (size_t)(t + sizeof(t) - p));
}

/* A growable byte buffer on the heap, for output that is built piece by piece. */
typedef struct {
    char *p;
    size_t n, cap;
} mgw_buf_t;

void mgw_buf_reserve(mgw_buf_t *b, size_t extra);
void mgw_buf_add(mgw_buf_t *b, const void *p, size_t n);
void mgw_buf_adds(mgw_buf_t *b, const char *s);
void mgw_buf_addc(mgw_buf_t *b, char c);
void mgw_buf_printf(mgw_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s JSON-escaped (without surrounding quotes). */
void mgw_buf_add_json(mgw_buf_t *b, const char *s, size_t n);
/* The same for text that must stay valid UTF-8 whatever s holds (request-controlled
 * strings in a JSON log): each byte that starts no valid UTF-8 sequence becomes \ufffd. */
void mgw_buf_add_json_utf8(mgw_buf_t *b, const char *s, size_t n);
void mgw_buf_free(mgw_buf_t *b);

#endif
