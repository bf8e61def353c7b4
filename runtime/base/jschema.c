/*
 * JSON Schema draft 4, compiling (jschema.h): each schema object of the document becomes
 * a node whose keywords are checked and decoded once (numbers, lists of names, regexes);
 * a $ref is resolved to the node it names, compiled on first use and remembered by the
 * JSON value it came from, so that recursive schemas are cyclic graphs of nodes. The
 * nodes are walked by jschema_check.c.
 */
#include "base/jschema.h"

#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jschema_int.h"
#include "base/utf8.h"

static const struct {
    const char *name;
    unsigned bits;
} type_names[] = {{"array", T_ARR}, {"boolean", T_BOOL},       {"integer", T_INT},
                  {"null", T_NULL}, {"number", T_NUM | T_INT}, {"object", T_OBJ},
                  {"string", T_STR}};

/* ---- compiling ---- */

typedef struct {
    const mgw_json_t *v;
    node_t *n;
} memo_t;

typedef struct {
    const char *uri; /* absolute, without an empty fragment */
    const mgw_json_t *v;
} idref_t;

typedef struct {
    mgw_pool_t *pool;
    const mgw_json_t *doc;
    const char *doc_uri; /* the root's id, or "" */
    mgw_jschema_load_fn load;
    void *load_ud;
    idref_t *docs; /* the documents load gave, by uri */
    int ndocs, cap_docs;
    memo_t *memo;
    int nmemo, cap_memo;
    idref_t *ids;
    int nids, cap_ids;
    char *err;
    size_t errlen;
    int failed;
    int depth;
} cc_t;

static node_t *compile_node(cc_t *c, const mgw_json_t *v, const char *base, const char *ptr);

/* arr (n elements of size bytes in pool, room for *cap) with room for one more. */
static void *grow(mgw_pool_t *pool, void *arr, int n, int *cap, size_t size)
{
    if (n < *cap) return arr;
    int c = *cap ? *cap * 2 : 8;
    void *a = mgw_pool_alloc(pool, size * (size_t)c);
    if (n) memcpy(a, arr, size * (size_t)n);
    *cap = c;
    return a;
}

static void *cfail(cc_t *c, const char *ptr, const char *why)
{
    if (!c->failed && c->errlen) snprintf(c->err, c->errlen, "at %s: %s", *ptr ? ptr : "/", why);
    c->failed = 1;
    return NULL;
}

/* ptr + "/" + key, with ~ and / escaped as JSON pointers do. */
static const char *ptr_join(cc_t *c, const char *ptr, const char *key)
{
    size_t pn = strlen(ptr), kn = strlen(key);
    char *out = mgw_pool_alloc(c->pool, pn + 2 * kn + 2), *w = out;
    memcpy(w, ptr, pn);
    w += pn;
    *w++ = '/';
    for (size_t i = 0; i < kn; i++) {
        if (key[i] == '~' || key[i] == '/') {
            *w++ = '~';
            *w++ = key[i] == '~' ? '0' : '1';
        } else {
            *w++ = key[i];
        }
    }
    *w = '\0';
    return out;
}

static const char *ptr_idx(cc_t *c, const char *ptr, int i)
{
    return mgw_pool_printf(c->pool, "%s/%d", ptr, i);
}

/* ---- URIs: just enough of RFC 3986 section 5.2 for ids and $refs within a document ---- */

static size_t scheme_len(const char *u)
{
    size_t i = 0;
    while (u[i] && u[i] != ':' && u[i] != '/' && u[i] != '?' && u[i] != '#')
        i++;
    return u[i] == ':' && i > 0 ? i + 1 : 0;
}

/* ref resolved against base (both without surprises such as dot segments). */
static char *uri_resolve(mgw_pool_t *pool, const char *base, const char *ref)
{
    size_t bn = strcspn(base, "#");
    if (scheme_len(ref) || *base == '\0') return mgw_pool_strdup(pool, ref);
    if (ref[0] == '#') return mgw_pool_printf(pool, "%.*s%s", (int)bn, base, ref);
    if (ref[0] == '\0') return mgw_pool_strndup(pool, base, bn);
    size_t sl = scheme_len(base);
    if (ref[0] == '/' && ref[1] == '/') return mgw_pool_printf(pool, "%.*s%s", (int)sl, base, ref);
    if (ref[0] == '/') {
        const char *auth = base + sl;
        size_t an = 0;
        if (auth[0] == '/' && auth[1] == '/') an = 2 + strcspn(auth + 2, "/?#");
        return mgw_pool_printf(pool, "%.*s%s", (int)(sl + an), base, ref);
    }
    size_t cut = bn;
    while (cut > sl && base[cut - 1] != '/')
        cut--;
    return mgw_pool_printf(pool, "%.*s%s", (int)cut, base, ref);
}

/* Records every id in schema positions of v (its resolution scope rules, draft 4 7.2). */
static void scan_ids(cc_t *c, const mgw_json_t *v, const char *base, int depth)
{
    if (v == NULL || v->type != MGW_JSON_OBJECT || depth > MGW_JSON_MAX_DEPTH) return;
    const mgw_json_t *id = mgw_json_get(v, "id");
    if (id && id->type == MGW_JSON_STRING && mgw_json_get(v, "$ref") == NULL) {
        base = uri_resolve(c->pool, base, id->str);
        c->ids = grow(c->pool, c->ids, c->nids, &c->cap_ids, sizeof(*c->ids));
        size_t n = strlen(base);
        char *u = mgw_pool_strdup(c->pool, base);
        if (n && u[n - 1] == '#') u[n - 1] = '\0';
        c->ids[c->nids++] = (idref_t){u, v};
    }
    static const char *const one[] = {"items", "additionalItems", "additionalProperties", "not"};
    static const char *const maps[] = {"properties", "patternProperties", "definitions",
                                       "dependencies"};
    static const char *const lists[] = {"items", "allOf", "anyOf", "oneOf"};
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
        scan_ids(c, mgw_json_get(v, one[i]), base, depth + 1);
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        const mgw_json_t *m = mgw_json_get(v, maps[i]);
        for (int k = 0; m && m->type == MGW_JSON_OBJECT && k < m->n; k++)
            scan_ids(c, m->items[k], base, depth + 2);
    }
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        const mgw_json_t *m = mgw_json_get(v, lists[i]);
        for (int k = 0; m && m->type == MGW_JSON_ARRAY && k < m->n; k++)
            scan_ids(c, m->items[k], base, depth + 2);
    }
}

/* The value a JSON pointer (RFC 6901, percent-decoded first) names in doc, or NULL; the
 * ids of the objects it passes on the way change *base (the target's own id is its own). */
static const mgw_json_t *pointer_get(cc_t *c, const mgw_json_t *doc, const char *p,
                                     const char **base)
{
    /* percent-decoding first: a fragment is a URI component */
    size_t n = strlen(p);
    char *d = mgw_pool_alloc(c->pool, n + 1), *w = d;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (p[i] == '%' && i + 2 < n + 1 && (h = mgw_hex_digit((uint8_t)p[i + 1])) >= 0 &&
            (l = mgw_hex_digit((uint8_t)p[i + 2])) >= 0) {
            *w++ = (char)(h << 4 | l);
            i += 2;
        } else {
            *w++ = p[i];
        }
    }
    *w = '\0';
    const mgw_json_t *v = doc;
    const char *s = d;
    if (*s == '\0') return v;
    if (*s != '/') return NULL;
    while (*s == '/' && v) {
        s++;
        size_t k = strcspn(s, "/");
        char *tok = mgw_pool_alloc(c->pool, k + 1), *t = tok;
        for (size_t i = 0; i < k; i++) {
            if (s[i] == '~' && i + 1 < k && (s[i + 1] == '0' || s[i + 1] == '1')) {
                *t++ = s[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                *t++ = s[i];
            }
        }
        *t = '\0';
        size_t tn = (size_t)(t - tok);
        s += k;
        if (v != doc && v->type == MGW_JSON_OBJECT) {
            const mgw_json_t *id = mgw_json_get(v, "id");
            if (id && id->type == MGW_JSON_STRING && !memchr(id->str, '\0', id->len))
                *base = uri_resolve(c->pool, *base, id->str);
        }
        if (v->type == MGW_JSON_OBJECT) {
            const mgw_json_t *next = NULL;
            for (int i = 0; i < v->n; i++)
                if (v->key_lens[i] == tn && memcmp(v->keys[i], tok, tn) == 0) next = v->items[i];
            v = next;
        } else if (v->type == MGW_JSON_ARRAY) {
            char *end;
            long i = strtol(tok, &end, 10);
            if (tn == 0 || *end || i < 0 || i >= v->n || (tn > 1 && tok[0] == '0')) return NULL;
            v = v->items[i];
        } else {
            return NULL;
        }
    }
    return v;
}

/* The document at the un bytes of uri from the caller's loader (parsed once), or NULL;
 * *base is its uri. */
static const mgw_json_t *load_doc(cc_t *c, const char *uri, size_t un, const char **base)
{
    for (int i = 0; i < c->ndocs; i++)
        if (strlen(c->docs[i].uri) == un && memcmp(c->docs[i].uri, uri, un) == 0) {
            *base = c->docs[i].uri;
            return c->docs[i].v;
        }
    char *u = mgw_pool_strndup(c->pool, uri, un);
    size_t n = 0;
    const char *text = c->load(c->load_ud, u, &n);
    mgw_json_t *doc;
    char why[160];
    if (text == NULL || mgw_json_parse(c->pool, text, n, &doc, why, sizeof(why)) != 0) return NULL;
    c->docs = grow(c->pool, c->docs, c->ndocs, &c->cap_docs, sizeof(*c->docs));
    c->docs[c->ndocs++] = (idref_t){u, doc};
    scan_ids(c, doc, u, 0);
    *base = u;
    return doc;
}

/* The schema value a $ref (resolved to uri) names, or NULL; *base is its scope. */
static const mgw_json_t *ref_target(cc_t *c, const char *uri, const char **base)
{
    const char *hash = strchr(uri, '#');
    const char *frag = hash ? hash + 1 : "";
    size_t un = hash ? (size_t)(hash - uri) : strlen(uri);
    /* a location-independent identifier ("#foo" as an id) */
    if (*frag && *frag != '/') {
        for (int i = 0; i < c->nids; i++)
            if (strcmp(c->ids[i].uri, uri) == 0) {
                *base = c->ids[i].uri;
                return c->ids[i].v;
            }
        return NULL;
    }
    const mgw_json_t *doc = NULL;
    if (un == strcspn(c->doc_uri, "#") && memcmp(uri, c->doc_uri, un) == 0) {
        doc = c->doc;
        *base = c->doc_uri;
    } else {
        for (int i = 0; i < c->nids && !doc; i++)
            if (strlen(c->ids[i].uri) == un && memcmp(c->ids[i].uri, uri, un) == 0) {
                doc = c->ids[i].v;
                *base = c->ids[i].uri;
            }
    }
    if (doc == NULL && c->load) doc = load_doc(c, uri, un, base);
    return doc ? pointer_get(c, doc, frag, base) : NULL;
}

static node_t *memo_get(cc_t *c, const mgw_json_t *v)
{
    for (int i = 0; i < c->nmemo; i++)
        if (c->memo[i].v == v) return c->memo[i].n;
    return NULL;
}

static void memo_put(cc_t *c, const mgw_json_t *v, node_t *n)
{
    c->memo = grow(c->pool, c->memo, c->nmemo, &c->cap_memo, sizeof(*c->memo));
    c->memo[c->nmemo++] = (memo_t){v, n};
}

static int is_nonneg_int(const mgw_json_t *v)
{
    return v && v->type == MGW_JSON_NUMBER && !strpbrk(v->str, ".eE") && v->str[0] != '-';
}

/* keyword: a non-negative integer (-1 when absent). */
static int get_count(cc_t *c, const mgw_json_t *s, const char *kw, const char *ptr, int64_t *out)
{
    const mgw_json_t *v = mgw_json_get(s, kw);
    *out = -1;
    if (v == NULL) return 0;
    if (!is_nonneg_int(v)) {
        cfail(c, ptr_join(c, ptr, kw), "must be a non-negative integer");
        return -1;
    }
    *out = v->num > 9e18 ? INT64_MAX : (int64_t)v->num;
    return 0;
}

static void regex_free_cb(void *re)
{
    regfree(re);
}

static void add_class(mgw_buf_t *o, int neg, const char *set)
{
    mgw_buf_adds(o, neg ? "[^" : "[");
    mgw_buf_adds(o, set);
    mgw_buf_addc(o, ']');
}

/* The class set (POSIX bracket contents) of \d \w \s, or NULL. */
static const char *escape_set(char e)
{
    switch (e) {
    case 'd':
    case 'D':
        return "0-9";
    case 'w':
    case 'W':
        return "A-Za-z0-9_";
    case 's':
    case 'S':
        return "[:space:]";
    }
    return NULL;
}

/* The byte a one-character escape stands for (\n, \t, punctuation), or -1. */
static int escape_char(char e)
{
    switch (e) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'f':
        return '\f';
    case 'v':
        return '\v';
    case '0':
        return -1;
    }
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) return -1;
    return (unsigned char)e;
}

/* An ECMA 262 character class at *ps ('[' seen), rewritten as a POSIX bracket. */
static const char *ecma_class(const char **ps, mgw_buf_t *o)
{
    const char *s = *ps;
    int neg = 0, has_close = 0, has_dash = 0, has_caret = 0;
    mgw_buf_t items = {0};
    if (*s == '^') neg = 1, s++;
    while (*s && *s != ']') {
        int ch;
        if (*s == '\\') {
            s++;
            if (*s == '\0') break;
            const char *set = escape_set(*s);
            if (set) {
                if (*s >= 'A' && *s <= 'Z') {
                    mgw_buf_free(&items);
                    return "negated class escapes inside [] are not supported";
                }
                mgw_buf_adds(&items, set);
                s++;
                continue;
            }
            if ((ch = escape_char(*s)) < 0) {
                mgw_buf_free(&items);
                return "unsupported escape in a character class";
            }
            s++;
        } else {
            ch = (unsigned char)*s++;
        }
        if (s[0] == '-' && s[1] && s[1] != ']') {
            int hi;
            s++;
            if (*s == '\\') {
                s++;
                hi = escape_char(*s);
                if (hi < 0) {
                    mgw_buf_free(&items);
                    return "unsupported range in a character class";
                }
                s++;
            } else {
                hi = (unsigned char)*s++;
            }
            if (hi < ch) {
                mgw_buf_free(&items);
                return "range out of order in a character class";
            }
            if (ch == ']' || ch == '-' || ch == '^' || ch == '[' || hi == ']' || hi == '[') {
                mgw_buf_free(&items);
                return "unsupported range in a character class";
            }
            mgw_buf_printf(&items, "%c-%c", ch, hi);
            continue;
        }
        if (ch == ']')
            has_close = 1;
        else if (ch == '-')
            has_dash = 1;
        else if (ch == '^')
            has_caret = 1;
        else if (ch == '[')
            mgw_buf_adds(&items, "[.[.]");
        else
            mgw_buf_addc(&items, (char)ch);
    }
    if (*s != ']') {
        mgw_buf_free(&items);
        return "unterminated character class";
    }
    *ps = s + 1;
    if (!items.n && !has_close && !has_dash && !has_caret) {
        /* [] matches nothing, [^] anything */
        mgw_buf_adds(o, neg ? "(.|\n)" : "[^\\x00-\\xff]");
        mgw_buf_free(&items);
        return neg ? NULL : "an empty character class is not supported";
    }
    if (!items.n && !has_close && !has_dash && has_caret && !neg) {
        mgw_buf_adds(o, "\\^");
        mgw_buf_free(&items);
        return NULL;
    }
    mgw_buf_addc(o, '[');
    if (neg) mgw_buf_addc(o, '^');
    if (has_close) mgw_buf_addc(o, ']');
    if (items.n) mgw_buf_add(o, items.p, items.n);
    if (has_caret) mgw_buf_addc(o, '^');
    if (has_dash) mgw_buf_addc(o, '-');
    mgw_buf_addc(o, ']');
    mgw_buf_free(&items);
    return NULL;
}

/* Bounds on what a regex may cost glibc's compiler, which expands counted repetitions:
 * a regex whose atoms, repetitions multiplied out, pass MGW_RE_MAX_WEIGHT is refused. */
#define MGW_RE_MAX_WEIGHT 20000L
#define MGW_RE_MAX_GROUPS 32
#define MGW_RE_MAX_COUNT 1000L

/* A counted repetition {n}, {n,} or {n,m} at s: its largest count (n when open), and
 * where it ends; -1 when s holds none (then '{' is a literal, as ECMA 262 Annex B has it). */
static long brace_count(const char *s, const char *end, const char **after)
{
    const char *p = s + 1;
    long n = 0, m = -1;
    if (p >= end || *p < '0' || *p > '9') return -1;
    while (p < end && *p >= '0' && *p <= '9' && n <= MGW_RE_MAX_COUNT)
        n = n * 10 + (*p++ - '0');
    if (p < end && *p == ',') {
        p++;
        if (p < end && *p >= '0' && *p <= '9') {
            m = 0;
            while (p < end && *p >= '0' && *p <= '9' && m <= MGW_RE_MAX_COUNT)
                m = m * 10 + (*p++ - '0');
        }
    }
    if (p >= end || *p != '}') return -1;
    *after = p + 1;
    return m > n ? m : n;
}

/*
 * The ECMA 262 regex src as a POSIX extended regex in o; NULL or why it cannot be. Its
 * weight (atoms, counted repetitions multiplied out) is tracked per group, so that a
 * regex glibc would expand beyond reason is refused here.
 */
static const char *ecma_to_ere(const char *src, size_t n, mgw_buf_t *o)
{
    const char *s = src, *end = src + n;
    long outer[MGW_RE_MAX_GROUPS], cur = 0, last = 0; /* last: the atom a quantifier takes */
    int depth = 0;
    if (memchr(src, '\0', n)) return "a NUL in a regex is not supported";
    while (s < end) {
        char ch = *s;
        const char *after;
        long k;
        if (ch == '*' || ch == '+' || ch == '?' ||
            (ch == '{' && (k = brace_count(s, end, &after)) >= 0)) {
            if (last == 0) return "a quantifier has nothing to repeat";
            if (ch == '{') {
                if (k > MGW_RE_MAX_COUNT) return "a repetition count above 1000";
                mgw_buf_add(o, s, (size_t)(after - s));
                s = after;
                cur += last * (k > 1 ? k - 1 : 0);
                if (k == 0) cur -= last;
            } else {
                mgw_buf_addc(o, ch);
                s++;
                if (ch == '+') cur += last;
            }
            if (s < end && *s == '?') s++; /* lazy: the same language */
            last = 0;                      /* a quantifier may not follow */
            if (cur > MGW_RE_MAX_WEIGHT)
                return "the regex is too large once its repetitions are expanded";
            continue;
        }
        if (ch == '(') {
            if (depth == MGW_RE_MAX_GROUPS) return "groups nest too deeply";
            if (s + 1 < end && s[1] == '?') {
                if (!(s + 2 < end && s[2] == ':'))
                    return "lookaround and named groups are not supported";
                s += 2;
            }
            mgw_buf_addc(o, '(');
            s++;
            outer[depth++] = cur;
            cur = 0;
            last = 0;
            continue;
        }
        if (ch == ')') {
            if (depth == 0) return "unmatched )";
            mgw_buf_addc(o, ')');
            s++;
            last = cur > 0 ? cur : 1;
            cur = outer[--depth] + last;
            continue;
        }
        if (ch == '|' || ch == '^' || ch == '$') {
            mgw_buf_addc(o, ch);
            s++;
            last = 0;
            continue;
        }
        if (ch == '\\') {
            s++;
            if (s >= end) return "trailing backslash";
            const char *set = escape_set(*s);
            if (set) {
                add_class(o, *s >= 'A' && *s <= 'Z', set);
            } else if (*s == 'b' || *s == 'B') {
                mgw_buf_addc(o, '\\');
                mgw_buf_addc(o, *s);
                s++;
                last = 0;
                continue;
            } else {
                int e = escape_char(*s);
                if (e < 0) return "unsupported escape (back references, \\u and the like)";
                if (strchr("^$.[]|()*+?{}\\", e)) mgw_buf_addc(o, '\\');
                mgw_buf_addc(o, (char)e);
            }
            s++;
        } else if (ch == '[') {
            s++;
            const char *why = ecma_class(&s, o);
            if (why) return why;
        } else if (ch == '{' || ch == '}') {
            mgw_buf_addc(o, '\\'); /* a literal brace */
            mgw_buf_addc(o, ch);
            s++;
        } else {
            mgw_buf_addc(o, ch);
            s++;
        }
        last = 1;
        if (++cur > MGW_RE_MAX_WEIGHT)
            return "the regex is too large once its repetitions are expanded";
    }
    return depth ? "missing )" : NULL;
}

static regex_t *compile_regex(cc_t *c, const mgw_json_t *v, const char *ptr)
{
    if (v->type != MGW_JSON_STRING) return cfail(c, ptr, "must be a string (a regex)");
    mgw_buf_t ere = {0};
    const char *why = ecma_to_ere(v->str, v->len, &ere);
    if (why) {
        mgw_buf_free(&ere);
        return cfail(c, ptr, mgw_pool_printf(c->pool, "regex \"%s\": %s", v->str, why));
    }
    mgw_buf_addc(&ere, '\0');
    regex_t *re = mgw_pool_calloc(c->pool, sizeof(*re));
    int rc = regcomp(re, ere.p, REG_EXTENDED | REG_NOSUB);
    mgw_buf_free(&ere);
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof(msg));
        return cfail(c, ptr, mgw_pool_printf(c->pool, "regex \"%s\": %s", v->str, msg));
    }
    mgw_pool_cleanup_add(c->pool, regex_free_cb, re);
    return re;
}

/* A schema list keyword (allOf, anyOf, oneOf): a non-empty array of schemas. */
static node_t **compile_list(cc_t *c, const mgw_json_t *v, const char *base, const char *ptr,
                             int *n)
{
    if (v->type != MGW_JSON_ARRAY || v->n == 0)
        return cfail(c, ptr, "must be a non-empty array of schemas");
    node_t **out = mgw_pool_alloc(c->pool, sizeof(*out) * (size_t)v->n);
    for (int i = 0; i < v->n; i++)
        if ((out[i] = compile_node(c, v->items[i], base, ptr_idx(c, ptr, i))) == NULL) return NULL;
    *n = v->n;
    return out;
}

/* A non-empty array of unique strings (required, a property dependency). */
static int unique_names(cc_t *c, const mgw_json_t *v, const char *ptr)
{
    if (v->type != MGW_JSON_ARRAY || v->n == 0) {
        cfail(c, ptr, "must be a non-empty array of strings");
        return -1;
    }
    for (int i = 0; i < v->n; i++) {
        if (v->items[i]->type != MGW_JSON_STRING) {
            cfail(c, ptr, "must be a non-empty array of strings");
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (v->items[j]->len == v->items[i]->len &&
                memcmp(v->items[j]->str, v->items[i]->str, v->items[i]->len) == 0) {
                cfail(c, ptr, "must not repeat a name");
                return -1;
            }
    }
    return 0;
}

static int compile_types(cc_t *c, node_t *n, const mgw_json_t *t, const char *ptr)
{
    int one = t->type == MGW_JSON_STRING;
    if (!one && (t->type != MGW_JSON_ARRAY || t->n == 0)) {
        cfail(c, ptr, "must be a type name or a non-empty array of them");
        return -1;
    }
    for (int i = 0; i < (one ? 1 : t->n); i++) {
        const mgw_json_t *e = one ? t : t->items[i];
        unsigned bits = 0;
        for (size_t k = 0;
             e->type == MGW_JSON_STRING && k < sizeof(type_names) / sizeof(type_names[0]); k++)
            if (strcmp(e->str, type_names[k].name) == 0) bits = type_names[k].bits;
        if (bits == 0) {
            cfail(c, ptr, "unknown type (array, boolean, integer, null, number, object, string)");
            return -1;
        }
        n->types |= bits;
    }
    n->type_src = t;
    return 0;
}

static int compile_number(cc_t *c, const mgw_json_t *s, const char *kw, const char *ptr, int *has,
                          double *val, const char **text)
{
    const mgw_json_t *v = mgw_json_get(s, kw);
    if (v == NULL) return 0;
    if (v->type != MGW_JSON_NUMBER) {
        cfail(c, ptr_join(c, ptr, kw), "must be a number");
        return -1;
    }
    *has = 1;
    *val = v->num;
    *text = v->str;
    return 0;
}

static int compile_bool(cc_t *c, const mgw_json_t *s, const char *kw, const char *ptr, int *out)
{
    const mgw_json_t *v = mgw_json_get(s, kw);
    *out = 0;
    if (v == NULL) return 0;
    if (v->type != MGW_JSON_TRUE && v->type != MGW_JSON_FALSE) {
        cfail(c, ptr_join(c, ptr, kw), "must be a boolean");
        return -1;
    }
    *out = v->type == MGW_JSON_TRUE;
    return 0;
}

/* additionalItems / additionalProperties: false, or a schema (true is the empty schema). */
static int compile_addl(cc_t *c, const mgw_json_t *s, const char *kw, const char *base,
                        const char *ptr, int *is_false, node_t **out)
{
    const mgw_json_t *v = mgw_json_get(s, kw);
    if (v == NULL || v->type == MGW_JSON_TRUE) return 0;
    if (v->type == MGW_JSON_FALSE) {
        *is_false = 1;
        return 0;
    }
    *out = compile_node(c, v, base, ptr_join(c, ptr, kw));
    return *out ? 0 : -1;
}

static int compile_keywords(cc_t *c, node_t *n, const mgw_json_t *s, const char *base,
                            const char *ptr)
{
    const mgw_json_t *v;
    if ((v = mgw_json_get(s, "type")) && compile_types(c, n, v, ptr_join(c, ptr, "type")))
        return -1;
    if (compile_number(c, s, "minimum", ptr, &n->has_min, &n->min, &n->min_text) ||
        compile_number(c, s, "maximum", ptr, &n->has_max, &n->max, &n->max_text) ||
        compile_number(c, s, "multipleOf", ptr, &n->has_mult, &n->mult, &n->mult_text) ||
        compile_bool(c, s, "exclusiveMinimum", ptr, &n->excl_min) ||
        compile_bool(c, s, "exclusiveMaximum", ptr, &n->excl_max) ||
        compile_bool(c, s, "uniqueItems", ptr, &n->unique))
        return -1;
    if (n->has_mult && !(n->mult > 0))
        return cfail(c, ptr_join(c, ptr, "multipleOf"), "must be greater than 0"), -1;
    if (mgw_json_get(s, "exclusiveMinimum") && !n->has_min)
        return cfail(c, ptr_join(c, ptr, "exclusiveMinimum"), "needs minimum"), -1;
    if (mgw_json_get(s, "exclusiveMaximum") && !n->has_max)
        return cfail(c, ptr_join(c, ptr, "exclusiveMaximum"), "needs maximum"), -1;
    if (get_count(c, s, "minLength", ptr, &n->min_len) ||
        get_count(c, s, "maxLength", ptr, &n->max_len) ||
        get_count(c, s, "minItems", ptr, &n->min_items) ||
        get_count(c, s, "maxItems", ptr, &n->max_items) ||
        get_count(c, s, "minProperties", ptr, &n->min_props) ||
        get_count(c, s, "maxProperties", ptr, &n->max_props))
        return -1;
    if ((v = mgw_json_get(s, "pattern"))) {
        n->pattern_src = v->str;
        if ((n->pattern = compile_regex(c, v, ptr_join(c, ptr, "pattern"))) == NULL) return -1;
    }
    if ((v = mgw_json_get(s, "format"))) {
        if (v->type != MGW_JSON_STRING)
            return cfail(c, ptr_join(c, ptr, "format"), "must be a string"), -1;
        n->format = mgw__jformat_find(v->str, v->len);
    }
    if ((v = mgw_json_get(s, "enum"))) {
        if (v->type != MGW_JSON_ARRAY || v->n == 0)
            return cfail(c, ptr_join(c, ptr, "enum"), "must be a non-empty array"), -1;
        n->enumv = v;
    }
    if ((v = mgw_json_get(s, "required"))) {
        if (unique_names(c, v, ptr_join(c, ptr, "required"))) return -1;
        n->required = v;
    }
    if ((v = mgw_json_get(s, "items"))) {
        const char *ip = ptr_join(c, ptr, "items");
        if (v->type == MGW_JSON_ARRAY) {
            n->items_is_list = 1;
            n->nitems_list = v->n;
            n->items_list = mgw_pool_alloc(c->pool, sizeof(node_t *) * (size_t)(v->n ? v->n : 1));
            for (int i = 0; i < v->n; i++)
                if ((n->items_list[i] = compile_node(c, v->items[i], base, ptr_idx(c, ip, i))) ==
                    NULL)
                    return -1;
        } else if ((n->items = compile_node(c, v, base, ip)) == NULL) {
            return -1;
        }
    }
    if (compile_addl(c, s, "additionalItems", base, ptr, &n->addl_items_false, &n->addl_items) ||
        compile_addl(c, s, "additionalProperties", base, ptr, &n->addl_props_false, &n->addl_props))
        return -1;
    if ((v = mgw_json_get(s, "properties"))) {
        const char *pp = ptr_join(c, ptr, "properties");
        if (v->type != MGW_JSON_OBJECT) return cfail(c, pp, "must be an object of schemas"), -1;
        n->nprops = v->n;
        n->props = mgw_pool_alloc(c->pool, sizeof(prop_t) * (size_t)(v->n ? v->n : 1));
        for (int i = 0; i < v->n; i++) {
            n->props[i] = (prop_t){v->keys[i], v->key_lens[i], NULL};
            if ((n->props[i].s = compile_node(c, v->items[i], base, ptr_join(c, pp, v->keys[i]))) ==
                NULL)
                return -1;
        }
    }
    if ((v = mgw_json_get(s, "patternProperties"))) {
        const char *pp = ptr_join(c, ptr, "patternProperties");
        if (v->type != MGW_JSON_OBJECT) return cfail(c, pp, "must be an object of schemas"), -1;
        n->npprops = v->n;
        n->pprops = mgw_pool_alloc(c->pool, sizeof(pprop_t) * (size_t)(v->n ? v->n : 1));
        for (int i = 0; i < v->n; i++) {
            const char *kp = ptr_join(c, pp, v->keys[i]);
            mgw_json_t key = {.type = MGW_JSON_STRING, .str = v->keys[i], .len = v->key_lens[i]};
            n->pprops[i].src = v->keys[i];
            if ((n->pprops[i].re = compile_regex(c, &key, kp)) == NULL) return -1;
            if ((n->pprops[i].s = compile_node(c, v->items[i], base, kp)) == NULL) return -1;
        }
    }
    if ((v = mgw_json_get(s, "dependencies"))) {
        const char *dp = ptr_join(c, ptr, "dependencies");
        if (v->type != MGW_JSON_OBJECT) return cfail(c, dp, "must be an object"), -1;
        n->ndeps = v->n;
        n->deps = mgw_pool_calloc(c->pool, sizeof(dep_t) * (size_t)(v->n ? v->n : 1));
        for (int i = 0; i < v->n; i++) {
            const char *kp = ptr_join(c, dp, v->keys[i]);
            dep_t *d = &n->deps[i];
            d->name = v->keys[i];
            d->len = v->key_lens[i];
            if (v->items[i]->type == MGW_JSON_ARRAY) {
                if (unique_names(c, v->items[i], kp)) return -1;
                d->names = v->items[i];
            } else if ((d->s = compile_node(c, v->items[i], base, kp)) == NULL) {
                return -1;
            }
        }
    }
    if ((v = mgw_json_get(s, "allOf")) &&
        !(n->all = compile_list(c, v, base, ptr_join(c, ptr, "allOf"), &n->nall)))
        return -1;
    if ((v = mgw_json_get(s, "anyOf")) &&
        !(n->any = compile_list(c, v, base, ptr_join(c, ptr, "anyOf"), &n->nany)))
        return -1;
    if ((v = mgw_json_get(s, "oneOf")) &&
        !(n->one = compile_list(c, v, base, ptr_join(c, ptr, "oneOf"), &n->none)))
        return -1;
    if ((v = mgw_json_get(s, "not")) &&
        !(n->not_ = compile_node(c, v, base, ptr_join(c, ptr, "not"))))
        return -1;
    return 0;
}

static node_t *compile_node(cc_t *c, const mgw_json_t *s, const char *base, const char *ptr)
{
    if (c->failed) return NULL;
    if (s->type != MGW_JSON_OBJECT) return cfail(c, ptr, "must be a schema (an object)");
    node_t *n = memo_get(c, s);
    if (n) return n;
    if (++c->depth > 4 * MGW_JSON_MAX_DEPTH)
        return cfail(c, ptr, "schema references nest too deeply");
    n = mgw_pool_calloc(c->pool, sizeof(*n));
    memo_put(c, s, n);
    const mgw_json_t *ref = mgw_json_get(s, "$ref");
    if (ref) {
        const char *rp = ptr_join(c, ptr, "$ref");
        if (ref->type != MGW_JSON_STRING) return cfail(c, rp, "must be a string");
        if (memchr(ref->str, '\0', ref->len)) return cfail(c, rp, "must not hold a NUL");
        const char *uri = uri_resolve(c->pool, base, ref->str), *tbase = base;
        const mgw_json_t *t = ref_target(c, uri, &tbase);
        if (t == NULL)
            return cfail(c, rp,
                         mgw_pool_printf(c->pool, "\"%s\" names nothing in this schema", ref->str));
        if ((n->ref = compile_node(c, t, tbase, rp)) == NULL) return NULL;
        /* a chain of references must end at a schema that does something */
        const node_t *x = n->ref;
        for (int i = 0; x && i <= c->nmemo; i++, x = x->ref)
            if (x == n) return cfail(c, rp, "the references loop without reaching a schema");
        c->depth--;
        return n;
    }
    const mgw_json_t *id = mgw_json_get(s, "id");
    if (id && id->type == MGW_JSON_STRING && !memchr(id->str, '\0', id->len))
        base = uri_resolve(c->pool, base, id->str);
    if (compile_keywords(c, n, s, base, ptr) != 0) return NULL;
    c->depth--;
    return n;
}

mgw_jschema_t *mgw_jschema_compile(mgw_pool_t *pool, const char *json, size_t n, char *err,
                                   size_t errlen)
{
    return mgw_jschema_compile_docs(pool, json, n, NULL, NULL, err, errlen);
}

mgw_jschema_t *mgw_jschema_compile_docs(mgw_pool_t *pool, const char *json, size_t n,
                                        mgw_jschema_load_fn load, void *ud, char *err,
                                        size_t errlen)
{
    mgw_json_t *doc;
    char why[160];
    if (errlen) err[0] = '\0';
    if (mgw_json_parse(pool, json, n, &doc, why, sizeof(why)) != 0) {
        if (errlen) snprintf(err, errlen, "not JSON: %s", why);
        return NULL;
    }
    cc_t c = {.pool = pool,
              .doc = doc,
              .doc_uri = "",
              .load = load,
              .load_ud = ud,
              .err = err,
              .errlen = errlen};
    const mgw_json_t *id = mgw_json_get(doc, "id");
    if (id && id->type == MGW_JSON_STRING && !memchr(id->str, '\0', id->len)) {
        char *u = mgw_pool_strndup(pool, id->str, strcspn(id->str, "#"));
        c.doc_uri = u;
    }
    scan_ids(&c, doc, "", 0);
    node_t *root = compile_node(&c, doc, c.doc_uri, "");
    if (root == NULL) return NULL;
    mgw_jschema_t *s = mgw_pool_calloc(pool, sizeof(*s));
    s->root = root;
    return s;
}
