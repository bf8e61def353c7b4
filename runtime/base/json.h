/*
 * A strict JSON (RFC 8259) parser into a DOM in pool memory, for the documents a gateway
 * must not be lenient about (the header and claims of a JWT, a JWK Set): no trailing
 * bytes, no duplicate member names, at most 32 levels of nesting, strings valid UTF-8
 * (no overlong forms, no surrogates; \u escapes of a pair are joined), numbers exactly as
 * the grammar has them. Nothing is allocated outside the pool.
 */
#ifndef MGW_JSON_H
#define MGW_JSON_H

#include <stddef.h>

#include "base/pool.h"

/* Nesting deeper than this (arrays and objects) is refused. */
#define MGW_JSON_MAX_DEPTH 32

typedef enum {
    MGW_JSON_NULL,
    MGW_JSON_FALSE,
    MGW_JSON_TRUE,
    MGW_JSON_NUMBER,
    MGW_JSON_STRING,
    MGW_JSON_ARRAY,
    MGW_JSON_OBJECT
} mgw_json_type_t;

typedef struct mgw_json_s mgw_json_t;

/*
 * One value. A string holds its unescaped bytes in str (NUL-terminated; len bytes, which
 * may include an escaped NUL); a number holds its source text in str/len and its value in
 * num; an array holds its n values in items; an object holds its n members as keys[i]
 * (unescaped, NUL-terminated, key_lens[i] bytes) and items[i], in document order.
 */
struct mgw_json_s {
    mgw_json_type_t type;
    const char *str;
    size_t len;
    double num;
    mgw_json_t **items;
    const char **keys;
    size_t *key_lens;
    int n;
};

/*
 * Parses the n bytes at p as one JSON text. On success *out is the root (pool memory,
 * which also holds every string) and 0 is returned; otherwise -1 with a sentence and the
 * byte offset in err (errlen bytes, may be 0). p need not be NUL-terminated.
 */
int mgw_json_parse(mgw_pool_t *pool, const char *p, size_t n, mgw_json_t **out, char *err,
                   size_t errlen);

/* The value of obj's member named key (a NUL-terminated name), or NULL when obj is not an
 * object or has no such member. */
const mgw_json_t *mgw_json_get(const mgw_json_t *obj, const char *key);

/* Appends v to b as compact JSON text (strings escaped, members in their order). */
void mgw_json_write(mgw_buf_t *b, const mgw_json_t *v);

#endif
