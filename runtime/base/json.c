/*
 * Strict JSON (json.h): one recursive-descent pass over the bytes, depth bounded by
 * MGW_JSON_MAX_DEPTH, so the C stack stays small. A container's children are collected on
 * a scratch stack shared by all levels (first on the C stack, then in the pool when a
 * document is large) and copied into arrays of the exact size when the container closes;
 * so a value costs one node, and a string or number one copy, from the pool.
 */
#include "base/json.h"
#include "base/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One child of an open container: its value, and for an object member its name. */
typedef struct {
    mgw_json_t *v;
    const char *key;
    size_t klen;
} slot_t;

typedef struct {
    mgw_pool_t *pool;
    const uint8_t *p, *end, *start;
    slot_t *stk;
    size_t top, cap;
    char *err;
    size_t errlen;
    int failed;
} parser_t;

static int fail(parser_t *ps, const uint8_t *at, const char *why)
{
    if (!ps->failed && ps->errlen)
        snprintf(ps->err, ps->errlen, "%s at byte %zu", why, (size_t)(at - ps->start));
    ps->failed = 1;
    return -1;
}

static inline void skip_ws(parser_t *ps)
{
    const uint8_t *p = ps->p;
    while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static void push(parser_t *ps, mgw_json_t *v, const char *key, size_t klen)
{
    if (ps->top == ps->cap) {
        /* Doubling in the pool: the abandoned copies add up to less than the last one. */
        size_t cap = ps->cap * 2;
        slot_t *n = mgw_pool_alloc(ps->pool, cap * sizeof(*n));
        memcpy(n, ps->stk, ps->top * sizeof(*n));
        ps->stk = n;
        ps->cap = cap;
    }
    ps->stk[ps->top++] = (slot_t){v, key, klen};
}

static int hex4(const uint8_t *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = mgw_hex_digit(p[i]);
        if (d < 0) return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/*
 * The length of the UTF-8 sequence that starts at p (its first byte >= 0x80), or 0 when
 * it is not one: the second-byte ranges after E0, ED, F0 and F4 refuse overlong forms,
 * surrogates and code points above U+10FFFF (RFC 3629 section 4).
 */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end)
{
    unsigned c = p[0], need, lo = 0x80, hi = 0xBF;
    if (c < 0xC2)
        return 0;
    else if (c < 0xE0)
        need = 1;
    else if (c < 0xF0)
        need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c < 0xF5)
        need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if ((size_t)(end - p) <= need) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (unsigned i = 2; i <= need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return need + 1;
}

/* The byte each one-character escape stands for (RFC 8259 section 7); 0: not an escape. */
static const uint8_t unescape[0x80] = {
    ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
    ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t',
};

/*
 * A string whose opening quote is at ps->p: its unescaped bytes, NUL-terminated, in the
 * pool (never longer than the escaped text, so one allocation of that size suffices).
 */
static int parse_string(parser_t *ps, const char **out, size_t *outlen)
{
    const uint8_t *p = ps->p + 1, *end = ps->end, *q = p;
    /* Finds the closing quote first: plain ASCII runs need no work beyond this scan. */
    while (q < end && *q != '"') {
        if (*q == '\\') {
            if (++q == end) break;
        }
        q++;
    }
    if (q >= end) return fail(ps, ps->p, "unterminated string");
    uint8_t *o = mgw_pool_alloc(ps->pool, (size_t)(q - p) + 1), *w = o;
    while (p < q) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            *w++ = (uint8_t)c;
            p++;
        } else if (c < 0x20) {
            return fail(ps, p, "control character in string");
        } else if (c >= 0x80) {
            size_t k = utf8_seq(p, q);
            if (k == 0) return fail(ps, p, "invalid UTF-8 in string");
            memcpy(w, p, k);
            w += k, p += k;
        } else {
            if (p + 1 >= q) return fail(ps, p, "bad escape");
            if (p[1] == 'u') {
                unsigned cp, lo;
                if (q - p < 6 || hex4(p + 2, &cp) < 0) return fail(ps, p, "bad \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(ps, p, "lone low surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (q - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) < 0 ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return fail(ps, p, "lone high surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                w += mgw_utf8_put(cp, (char *)w);
                p += 4;
            } else if (p[1] < 0x80 && unescape[p[1]]) {
                *w++ = unescape[p[1]];
            } else {
                return fail(ps, p, "bad escape");
            }
            p += 2;
        }
    }
    *w = '\0';
    *out = (const char *)o;
    *outlen = (size_t)(w - o);
    ps->p = q + 1;
    return 0;
}

/* A number per RFC 8259 section 6; kept as its text and as a double. */
static int parse_number(parser_t *ps, mgw_json_t *v)
{
    const uint8_t *s = ps->p, *p = s, *end = ps->end;
    int exact = 1;
    uint64_t ival = 0;
    if (p < end && *p == '-') p++;
    if (p >= end) return fail(ps, p, "bad number");
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            if (ival < 1000000000000000ull)
                ival = ival * 10 + (uint64_t)(*p - '0');
            else
                exact = 0;
            p++;
        }
    } else {
        return fail(ps, p, "bad number");
    }
    if (p < end && *p == '.') {
        exact = 0;
        if (++p >= end || *p < '0' || *p > '9') return fail(ps, p, "bad fraction");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        exact = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return fail(ps, p, "bad exponent");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - s);
    char *t = mgw_pool_alloc(ps->pool, n + 1);
    memcpy(t, s, n);
    t[n] = '\0';
    v->type = MGW_JSON_NUMBER;
    v->str = t;
    v->len = n;
    /* Integers below 10^16 (every timestamp) are exact without strtod. The text is in
     * the grammar's own alphabet, which strtod reads the same in every locale that uses
     * '.' as its radix character; moongate never changes the C locale. */
    if (exact)
        v->num = *s == '-' ? -(double)ival : (double)ival;
    else
        v->num = strtod(t, NULL);
    ps->p = p;
    return 0;
}

static int literal(parser_t *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "unexpected character");
    ps->p += n;
    return 0;
}

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
    return h;
}

/* 1 when two members of the n at s share a name: pairwise for small objects, through a
 * hash table in the pool for large ones (a JWK Set may hold thousands of members). */
static int has_duplicate(parser_t *ps, const slot_t *s, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (s[i].klen == s[j].klen && memcmp(s[i].key, s[j].key, s[i].klen) == 0) return 1;
        return 0;
    }
    size_t cap = 32;
    while (cap < n * 2)
        cap *= 2;
    uint32_t *tab = mgw_pool_calloc(ps->pool, cap * sizeof(*tab));
    for (size_t i = 0; i < n; i++) {
        size_t h = (size_t)hash_key(s[i].key, s[i].klen) & (cap - 1);
        while (tab[h]) {
            const slot_t *o = &s[tab[h] - 1];
            if (o->klen == s[i].klen && memcmp(o->key, s[i].key, o->klen) == 0) return 1;
            h = (h + 1) & (cap - 1);
        }
        tab[h] = (uint32_t)(i + 1);
    }
    return 0;
}

static int parse_value(parser_t *ps, mgw_json_t *v, int depth);

/* An array or object whose opening bracket is at ps->p. */
static int parse_container(parser_t *ps, mgw_json_t *v, int depth)
{
    int obj = *ps->p == '{';
    uint8_t close = obj ? '}' : ']';
    if (depth >= MGW_JSON_MAX_DEPTH) return fail(ps, ps->p, "nesting too deep");
    v->type = obj ? MGW_JSON_OBJECT : MGW_JSON_ARRAY;
    ps->p++;
    size_t base = ps->top;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        if (obj) {
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, ps->p, "expected a member name");
            if (parse_string(ps, &key, &klen) < 0) return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, ps->p, "expected ':'");
            ps->p++;
            skip_ws(ps);
        }
        mgw_json_t *child = mgw_pool_calloc(ps->pool, sizeof(*child));
        if (parse_value(ps, child, depth + 1) < 0) return -1;
        push(ps, child, key, klen);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        return fail(ps, ps->p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    size_t n = ps->top - base;
    const slot_t *s = ps->stk + base;
    if (n > INT32_MAX) return fail(ps, ps->p, "too many values");
    if (obj && has_duplicate(ps, s, n)) return fail(ps, ps->p - 1, "duplicate member name");
    v->n = (int)n;
    v->items = mgw_pool_alloc(ps->pool, n * sizeof(*v->items));
    for (size_t i = 0; i < n; i++)
        v->items[i] = s[i].v;
    if (obj) {
        v->keys = mgw_pool_alloc(ps->pool, n * sizeof(*v->keys));
        v->key_lens = mgw_pool_alloc(ps->pool, n * sizeof(*v->key_lens));
        for (size_t i = 0; i < n; i++) {
            v->keys[i] = s[i].key;
            v->key_lens[i] = s[i].klen;
        }
    }
    ps->top = base;
    return 0;
}

static int parse_value(parser_t *ps, mgw_json_t *v, int depth)
{
    if (ps->p >= ps->end) return fail(ps, ps->p, "unexpected end");
    switch (*ps->p) {
    case '{':
    case '[':
        return parse_container(ps, v, depth);
    case '"':
        v->type = MGW_JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    case 't':
        v->type = MGW_JSON_TRUE;
        return literal(ps, "true", 4);
    case 'f':
        v->type = MGW_JSON_FALSE;
        return literal(ps, "false", 5);
    case 'n':
        v->type = MGW_JSON_NULL;
        return literal(ps, "null", 4);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps, v);
        return fail(ps, ps->p, "unexpected character");
    }
}

int mgw_json_parse(mgw_pool_t *pool, const char *p, size_t n, mgw_json_t **out, char *err,
                   size_t errlen)
{
    slot_t local[64];
    parser_t ps = {.pool = pool,
                   .p = (const uint8_t *)p,
                   .end = (const uint8_t *)p + n,
                   .start = (const uint8_t *)p,
                   .stk = local,
                   .cap = sizeof(local) / sizeof(local[0]),
                   .err = err,
                   .errlen = errlen};
    *out = NULL;
    if (errlen) err[0] = '\0';
    mgw_json_t *root = mgw_pool_calloc(pool, sizeof(*root));
    skip_ws(&ps);
    if (parse_value(&ps, root, 0) < 0) return -1;
    skip_ws(&ps);
    if (ps.p != ps.end) return fail(&ps, ps.p, "trailing bytes after the value");
    *out = root;
    return 0;
}

const mgw_json_t *mgw_json_get(const mgw_json_t *obj, const char *key)
{
    if (obj == NULL || obj->type != MGW_JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (int i = 0; i < obj->n; i++)
        if (obj->key_lens[i] == n && memcmp(obj->keys[i], key, n) == 0) return obj->items[i];
    return NULL;
}

void mgw_json_write(mgw_buf_t *b, const mgw_json_t *v)
{
    switch (v->type) {
    case MGW_JSON_NULL:
        mgw_buf_adds(b, "null");
        break;
    case MGW_JSON_TRUE:
        mgw_buf_adds(b, "true");
        break;
    case MGW_JSON_FALSE:
        mgw_buf_adds(b, "false");
        break;
    case MGW_JSON_NUMBER:
        mgw_buf_add(b, v->str, v->len);
        break;
    case MGW_JSON_STRING:
        mgw_buf_addc(b, '"');
        mgw_buf_add_json(b, v->str, v->len);
        mgw_buf_addc(b, '"');
        break;
    default:
        mgw_buf_addc(b, v->type == MGW_JSON_ARRAY ? '[' : '{');
        for (int i = 0; i < v->n; i++) {
            if (i) mgw_buf_addc(b, ',');
            if (v->type == MGW_JSON_OBJECT) {
                mgw_buf_addc(b, '"');
                mgw_buf_add_json(b, v->keys[i], v->key_lens[i]);
                mgw_buf_adds(b, "\":");
            }
            mgw_json_write(b, v->items[i]);
        }
        mgw_buf_addc(b, v->type == MGW_JSON_ARRAY ? ']' : '}');
    }
}
