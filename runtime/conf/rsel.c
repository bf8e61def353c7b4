/*
 * Route selection expressions (rsel.h). An expression compiles to a list of parts, each
 * a literal or a path of object member names. Evaluation is one pass of a strict JSON
 * scanner over the message: it validates the whole message and, on the way, notes the
 * value each path reaches. A path is "live" below an object member when the names on the
 * way match its first names, so the live paths of a value are a bit mask, and the
 * matched count is the value's object depth. With duplicate member names the first one
 * wins (the value of a later duplicate is scanned but not taken). Lone surrogates in
 * \u escapes make the message invalid (not JSON for route selection).
 */
#include "conf/rsel.h"

#include "base/utf8.h"

#include <stdint.h>
#include <string.h>

#define MAX_SRC 1024 /* bytes of an expression */
#define MAX_PATHS 16 /* ${...} parts of a template */
#define MAX_NAMES 16 /* names in one path */
#define MAX_NAME 128 /* bytes of one name */
#define MAX_DEPTH 64 /* nesting of objects and arrays in a message */

typedef struct {
    const char *lit; /* a literal part, or NULL for a path */
    size_t lit_len;
    int nnames;
    const char *names[MAX_NAMES];
    uint8_t name_len[MAX_NAMES];
} part_t;

struct mgw_rsel_s {
    int nparts, npaths;
    part_t *parts;
    int path_part[MAX_PATHS]; /* path i is parts[path_part[i]] */
};

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Parses "a.b.c" at s (up to end, or to the first character that is not a name character
 * or a dot) into p; returns the end, or NULL and *err. */
static const char *parse_path(const char *s, const char *end, part_t *p, const char **err)
{
    p->lit = NULL;
    p->nnames = 0;
    for (;;) {
        const char *start = s;
        while (s < end && name_char(*s))
            s++;
        if (s == start) {
            *err = s < end && *s != '.' && *s != '}'
                       ? "a path name may use only A-Z a-z 0-9 _ -"
                       : "empty name in a path (write $request.body.NAME or $request.body.A.B)";
            return NULL;
        }
        if (s - start > MAX_NAME) {
            *err = "a path name is longer than 128 bytes";
            return NULL;
        }
        if (p->nnames == MAX_NAMES) {
            *err = "a path has more than 16 names";
            return NULL;
        }
        p->names[p->nnames] = start;
        p->name_len[p->nnames++] = (uint8_t)(s - start);
        if (s == end || *s != '.') return s;
        s++;
    }
}

static const char PREFIX[] = "$request.body.";
static const char TPREFIX[] = "${request.body.";

mgw_rsel_t *mgw_rsel_compile(mgw_pool_t *pool, const char *src, const char **err)
{
    size_t n = strlen(src);
    part_t parts[2 * MAX_PATHS + 1];
    int nparts = 0, npaths = 0;
    const char *s = src, *end = src + n;
    *err = NULL;
    if (n == 0) {
        *err = "must not be empty";
        return NULL;
    }
    if (n > MAX_SRC) {
        *err = "must be at most 1024 bytes";
        return NULL;
    }
    if (strncmp(src, PREFIX, sizeof(PREFIX) - 1) == 0) {
        /* the plain form: the whole expression is one path */
        const char *e = parse_path(src + sizeof(PREFIX) - 1, end, &parts[0], err);
        if (e == NULL) return NULL;
        if (e != end) {
            *err = "a path name may use only A-Z a-z 0-9 _ - (for a template, write "
                   "${request.body.NAME} parts)";
            return NULL;
        }
        nparts = npaths = 1;
    } else {
        while (s < end) {
            if (*s == '$') {
                if (strncmp(s, TPREFIX, sizeof(TPREFIX) - 1) != 0) {
                    *err = strncmp(s, "${", 2) == 0
                               ? "only ${request.body.NAME} paths are supported"
                               : "\"$\" must start $request.body.NAME or ${request.body.NAME}";
                    return NULL;
                }
                if (npaths == MAX_PATHS) {
                    *err = "a template has more than 16 paths";
                    return NULL;
                }
                const char *e = parse_path(s + sizeof(TPREFIX) - 1, end, &parts[nparts], err);
                if (e == NULL) return NULL;
                if (e == end || *e != '}') {
                    *err = "unterminated ${request.body.NAME} (no \"}\")";
                    return NULL;
                }
                nparts++;
                npaths++;
                s = e + 1;
                continue;
            }
            const char *start = s;
            while (s < end && *s != '$') {
                if (*s == '{' || *s == '}') {
                    *err = "\"{\" and \"}\" may appear only in ${request.body.NAME}";
                    return NULL;
                }
                if ((unsigned char)*s < 0x20 || *s == 0x7f) {
                    *err = "must not contain control characters";
                    return NULL;
                }
                s++;
            }
            parts[nparts++] = (part_t){.lit = start, .lit_len = (size_t)(s - start)};
        }
        if (npaths == 0) {
            *err = "must be $request.body.NAME or a template with ${request.body.NAME}";
            return NULL;
        }
    }
    /* Copy into the pool, with the names and literals pointing into a copy of src. */
    const char *copy = mgw_pool_strndup(pool, src, n);
    mgw_rsel_t *e = mgw_pool_calloc(pool, sizeof(*e));
    e->parts = mgw_pool_calloc(pool, sizeof(part_t) * (size_t)nparts);
    e->nparts = nparts;
    for (int i = 0; i < nparts; i++) {
        part_t *p = &e->parts[i];
        *p = parts[i];
        if (p->lit) {
            p->lit = copy + (p->lit - src);
        } else {
            for (int j = 0; j < p->nnames; j++)
                p->names[j] = copy + (p->names[j] - src);
            e->path_part[e->npaths++] = i;
        }
    }
    return e;
}

/* ---- evaluation: the JSON scanner ---- */

enum { V_NONE, V_STRING, V_SCALAR, V_CONTAINER };

typedef struct {
    const char *p, *end;
    const mgw_rsel_t *e;
    uint32_t found;                 /* paths whose value was seen */
    const char *val[MAX_PATHS];     /* its first byte (a string: after the quote) */
    const char *val_end[MAX_PATHS]; /* its end (a string: the closing quote) */
    uint8_t kind[MAX_PATHS];
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = mgw_hex_digit(p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/*
 * Decodes the escape at p (after the backslash; p < end) into out (at least 4 bytes);
 * returns the bytes written and advances *pp past the escape, or -1 when it is invalid.
 * Surrogate pairs become one code point; a lone surrogate is invalid.
 */
static int unescape(const char **pp, const char *end, char *out)
{
    const char *p = *pp;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *f = memchr(from, *p, sizeof(from) - 1);
    if (f) {
        out[0] = to[f - from];
        *pp = p + 1;
        return 1;
    }
    if (*p != 'u' || end - p < 5) return -1;
    long cp = hex4(p + 1);
    if (cp < 0) return -1;
    p += 5;
    if (cp >= 0xdc00 && cp <= 0xdfff) return -1;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
        long lo = hex4(p + 2);
        if (lo < 0xdc00 || lo > 0xdfff) return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
    }
    *pp = p;
    return (int)mgw_utf8_put((unsigned)cp, out);
}

/*
 * Scans a string at s->p (the opening quote). With key != NULL, writes its unescaped
 * text there (at most MAX_NAME bytes; *klen = MAX_NAME + 1 when longer: no name matches
 * it). Returns 0, or -1 when it is not a valid string.
 */
/* Where the bytes from q on stop being plain string text (a quote, a backslash or a
 * control character), or end: eight bytes at a time. In each mask the lowest flagged
 * byte is exact (a borrow only runs upwards), so its position is the first stop. */
static const char *plain_run(const char *q, const char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - q >= 8) {
        uint64_t v;
        memcpy(&v, q, 8);
        uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
        /* a zero byte in quote or bslash, or a byte below 0x20 in v */
        uint64_t stop = ((quote - ones) & ~quote & highs) | ((bslash - ones) & ~bslash & highs) |
                        ((v - ones * 0x20) & ~v & highs);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (stop) return q + (__builtin_ctzll(stop) >> 3);
#else
        if (stop) break;
#endif
        q += 8;
    }
    while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    return q;
}

static int scan_string(scan_t *s, char *key, size_t *klen)
{
    const char *p = s->p + 1, *end = s->end;
    size_t k = 0;
    for (;;) {
        const char *q = plain_run(p, end);
        if (key) {
            size_t m = (size_t)(q - p), room = MAX_NAME + 1 - k;
            memcpy(key + k, p, m < room ? m : room);
            k += m < room ? m : room;
        }
        if (q == end || (unsigned char)*q < 0x20) return -1;
        if (*q == '"') {
            s->p = q + 1;
            if (klen) *klen = k;
            return 0;
        }
        q++; /* the backslash */
        if (q == end) return -1;
        char u[4];
        int m = unescape(&q, end, u);
        if (m < 0) return -1;
        if (key && k <= MAX_NAME) {
            for (int i = 0; i < m && k <= MAX_NAME; i++)
                key[k++] = u[i];
        }
        p = q;
    }
}

static int digits(scan_t *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

static int scan_number(scan_t *s)
{
    if (*s->p == '-') s->p++;
    if (s->p == s->end) return -1;
    if (*s->p == '0')
        s->p++;
    else if (digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) != 0) return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (digits(s) != 0) return -1;
    }
    return 0;
}

static int scan_literal(scan_t *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return -1;
    s->p += n;
    return 0;
}

/* Records the value [start, end) for the live paths whose last name it is. */
static void take(scan_t *s, uint32_t live, int depth, const char *start, const char *end, int kind)
{
    for (int i = 0; live; i++, live >>= 1) {
        if (!(live & 1) || (s->found >> i & 1)) continue;
        if (s->e->parts[s->e->path_part[i]].nnames != depth) continue;
        s->found |= 1u << i;
        s->val[i] = start;
        s->val_end[i] = end;
        s->kind[i] = (uint8_t)kind;
    }
}

/* The live paths of a member named key (klen bytes) of an object at depth - 1. */
static uint32_t narrow(const scan_t *s, uint32_t live, int depth, const char *key, size_t klen)
{
    uint32_t out = 0;
    for (int i = 0; live >> i; i++) {
        if (!(live >> i & 1)) continue;
        const part_t *p = &s->e->parts[s->e->path_part[i]];
        if (p->nnames > depth && p->name_len[depth] == klen &&
            memcmp(p->names[depth], key, klen) == 0)
            out |= 1u << i;
    }
    return out;
}

/*
 * Scans one value at s->p (after whitespace). live: the paths that reach this value
 * (its depth counts the object members on the way); nest: the containers around it.
 */
static int scan_value(scan_t *s, uint32_t live, int depth, int nest)
{
    if (s->p == s->end) return -1;
    const char *start = s->p;
    char c = *s->p;
    if (c == '{' || c == '[') {
        if (nest == MAX_DEPTH) return -1;
        s->p++;
        skip_ws(s);
        char close = c == '{' ? '}' : ']';
        if (s->p < s->end && *s->p == close) {
            s->p++;
        } else {
            for (;;) {
                uint32_t sub = 0;
                if (c == '{') {
                    char key[MAX_NAME + 1];
                    size_t klen;
                    if (s->p == s->end || *s->p != '"') return -1;
                    if (scan_string(s, live ? key : NULL, &klen) != 0) return -1;
                    if (live) sub = narrow(s, live, depth, key, klen);
                    skip_ws(s);
                    if (s->p == s->end || *s->p != ':') return -1;
                    s->p++;
                    skip_ws(s);
                }
                if (scan_value(s, sub, depth + 1, nest + 1) != 0) return -1;
                skip_ws(s);
                if (s->p == s->end) return -1;
                if (*s->p == close) {
                    s->p++;
                    break;
                }
                if (*s->p != ',') return -1;
                s->p++;
                skip_ws(s);
            }
        }
        if (live) take(s, live, depth, start, s->p, V_CONTAINER);
        return 0;
    }
    int kind = V_SCALAR, rc;
    if (c == '"') {
        kind = V_STRING;
        rc = scan_string(s, NULL, NULL);
    } else if (c == 't') {
        rc = scan_literal(s, "true", 4);
    } else if (c == 'f') {
        rc = scan_literal(s, "false", 5);
    } else if (c == 'n') {
        rc = scan_literal(s, "null", 4);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        rc = scan_number(s);
    } else {
        return -1;
    }
    if (rc != 0) return -1;
    if (live) {
        if (kind == V_STRING)
            take(s, live, depth, start + 1, s->p - 1, V_STRING);
        else
            take(s, live, depth, start, s->p, V_SCALAR);
    }
    return 0;
}

/* Appends n bytes of src to out (len of cap used); the rest is cut. */
static void put(char *out, size_t cap, size_t *len, const char *src, size_t n)
{
    if (*len >= cap) return;
    if (n > cap - *len) n = cap - *len;
    memcpy(out + *len, src, n);
    *len += n;
}

/* Appends a string value's unescaped text (already validated). */
static void put_string(char *out, size_t cap, size_t *len, const char *p, const char *end)
{
    while (p < end && *len < cap) {
        const char *q = p;
        while (q < end && *q != '\\')
            q++;
        put(out, cap, len, p, (size_t)(q - p));
        if (q == end) return;
        q++;
        char u[4];
        int m = unescape(&q, end, u);
        if (m < 0) return; /* not reached: the scanner accepted the string */
        put(out, cap, len, u, (size_t)m);
        p = q;
    }
}

int mgw_rsel_eval(const mgw_rsel_t *e, const char *msg, size_t n, char *out, size_t cap)
{
    scan_t s = {.p = msg, .end = msg + n, .e = e};
    skip_ws(&s);
    if (s.p == s.end || *s.p != '{') return -1;
    uint32_t all = e->npaths >= 32 ? UINT32_MAX : (1u << e->npaths) - 1;
    if (scan_value(&s, all, 0, 0) != 0) return -1;
    skip_ws(&s);
    if (s.p != s.end) return -1;
    size_t len = 0;
    for (int i = 0, path = 0; i < e->nparts; i++) {
        const part_t *p = &e->parts[i];
        if (p->lit) {
            put(out, cap, &len, p->lit, p->lit_len);
            continue;
        }
        int k = path++;
        if (!(s.found >> k & 1)) continue; /* missing: "" */
        if (s.kind[k] == V_STRING)
            put_string(out, cap, &len, s.val[k], s.val_end[k]);
        else if (s.kind[k] == V_SCALAR)
            put(out, cap, &len, s.val[k], (size_t)(s.val_end[k] - s.val[k]));
    }
    return (int)len;
}
