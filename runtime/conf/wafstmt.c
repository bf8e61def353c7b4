/*
 * AWS WAF rule statements (wafstmt.h). A statement compiles into a tree of nodes in the
 * generation's pool. Field statements (byte_match, size_constraint, regex_match,
 * regex_pattern_set, sqli_match, xss_match) take each value of their field, run it
 * through their transformations and test it; the first value that matches decides.
 * Nothing here allocates outside the request pool while evaluating, except PCRE2's match
 * data, made and freed per value.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "conf/wafstmt.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/geodb.h"
#include "base/ipset.h"
#include "base/wafxform.h"
#include "conf/modsec.h"

#define MAX_TRANSFORMS 10

typedef struct node_s node_t;
typedef struct field_s field_t;
typedef struct op_s op_t;

struct node_s {
    const op_t *op;
    /* field statements */
    const field_t *field;
    mgw_str_t name; /* single_header, single_query_argument */
    int scope;      /* headers, cookies: SCOPE_* */
    int oversize;   /* OVERSIZE_* */
    uint64_t size_limit;
    const mgw_wafxform_t *xf[MAX_TRANSFORMS];
    int nxf;
    mgw_str_t search;
    int constraint;
    uint64_t size;
    pcre2_code **re;
    int nre;
    /* ip_set */
    mgw_ipset_t *ips;
    mgw_str_t header;
    int fallback_match, position;
    /* geo_match: a bit per country code (base/geodb.h's numbers) */
    const mgw_geodb_t *geo;
    uint8_t countries[(MGW_GEO_NCODES + 7) / 8];
    /* label_match */
    mgw_str_t key;
    /* and/or/not */
    node_t **kids;
    int nkids;
};

struct mgw_wafstmt_s {
    node_t *root;
    int needs_body;
    const char **labels;
    int nlabels;
};

enum { SCOPE_ALL, SCOPE_KEY, SCOPE_VALUE };
enum { OVERSIZE_CONTINUE, OVERSIZE_MATCH, OVERSIZE_NO_MATCH };
enum { POS_FIRST, POS_LAST, POS_ANY };

/* ---- helpers ---- */

static int one_of(const char *v, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (v && strcmp(v, names[i]) == 0) return i;
    return -1;
}

static const mgw_str_t *find_header(const mgw_wafstmt_req_t *in, mgw_str_t name)
{
    for (int i = 0; i < in->nheaders; i++)
        if (in->headers[i].name.n == name.n &&
            strncasecmp(in->headers[i].name.p, name.p, name.n) == 0)
            return &in->headers[i].value;
    return NULL;
}

/* ---- fields: each calls test on every value it has, stops at the first match ---- */

typedef int (*test_fn)(const node_t *n, const char *p, size_t len, mgw_pool_t *pool);

/* Runs one value through the node's transformations, then its test. */
static int try_value(const node_t *n, const char *p, size_t len, mgw_pool_t *pool, test_fn test)
{
    mgw_str_t v = {p, len};
    for (int i = 0; i < n->nxf; i++)
        n->xf[i]->fn(pool, (const unsigned char *)v.p, v.n, &v);
    return test(n, v.p ? v.p : "", v.n, pool);
}

struct field_s {
    const char *name;
    int needs_name, has_scope, is_body;
    /* 1: a value matched; 0: none did (or the field is missing) */
    int (*each)(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn test);
};

static mgw_str_t path_of(const mgw_wafstmt_req_t *in)
{
    const char *q = memchr(in->target.p, '?', in->target.n);
    return (mgw_str_t){in->target.p, q ? (size_t)(q - in->target.p) : in->target.n};
}

static mgw_str_t query_of(const mgw_wafstmt_req_t *in)
{
    const char *q = memchr(in->target.p, '?', in->target.n);
    if (q == NULL) return (mgw_str_t){"", 0};
    return (mgw_str_t){q + 1, in->target.n - (size_t)(q + 1 - in->target.p)};
}

static int f_uri_path(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    mgw_str_t s = path_of(in);
    return try_value(n, s.p, s.n, pool, t);
}

static int f_query(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    mgw_str_t s = query_of(in);
    return try_value(n, s.p, s.n, pool, t);
}

static int f_method(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    return try_value(n, in->method.p, in->method.n, pool, t);
}

static int f_single_header(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool,
                           test_fn t)
{
    const mgw_str_t *v = find_header(in, n->name);
    return v ? try_value(n, v->p, v->n, pool, t) : 0;
}

/* Calls back on every name=value of a list separated by sep (query args: '&', cookies:
 * ';' with spaces trimmed). want_name: only the pairs of that name (case-insensitive). */
static int each_pair(const node_t *n, mgw_str_t s, char sep, int trim, const mgw_str_t *want_name,
                     mgw_pool_t *pool, test_fn t)
{
    const char *p = s.p, *end = s.p + s.n;
    while (p < end) {
        const char *e = memchr(p, sep, (size_t)(end - p));
        if (e == NULL) e = end;
        const char *a = p;
        while (trim && a < e && *a == ' ')
            a++;
        if (a < e) {
            const char *eq = memchr(a, '=', (size_t)(e - a));
            mgw_str_t k = {a, eq ? (size_t)(eq - a) : (size_t)(e - a)};
            mgw_str_t v = eq ? (mgw_str_t){eq + 1, (size_t)(e - eq - 1)} : (mgw_str_t){"", 0};
            if (want_name) {
                if (k.n == want_name->n && strncasecmp(k.p, want_name->p, k.n) == 0 &&
                    try_value(n, v.p, v.n, pool, t))
                    return 1;
            } else {
                if (n->scope != SCOPE_VALUE && try_value(n, k.p, k.n, pool, t)) return 1;
                if (n->scope != SCOPE_KEY && try_value(n, v.p, v.n, pool, t)) return 1;
            }
        }
        p = e + 1;
    }
    return 0;
}

static int f_single_arg(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    return each_pair(n, query_of(in), '&', 0, &n->name, pool, t);
}

static int f_all_args(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    return each_pair(n, query_of(in), '&', 0, NULL, pool, t);
}

static int f_headers(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    for (int i = 0; i < in->nheaders; i++) {
        const mgw_hdr_t *h = &in->headers[i];
        if (n->scope != SCOPE_VALUE && try_value(n, h->name.p, h->name.n, pool, t)) return 1;
        if (n->scope != SCOPE_KEY && try_value(n, h->value.p, h->value.n, pool, t)) return 1;
    }
    return 0;
}

static int f_cookies(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    for (int i = 0; i < in->nheaders; i++) {
        const mgw_hdr_t *h = &in->headers[i];
        if (h->name.n == 6 && strncasecmp(h->name.p, "cookie", 6) == 0 &&
            each_pair(n, h->value, ';', 1, NULL, pool, t))
            return 1;
    }
    return 0;
}

/* The first size_limit bytes of the body; a longer body is handled as oversize says. */
static int f_body(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool, test_fn t)
{
    size_t len = in->body ? in->body_len : 0;
    if (len > n->size_limit) {
        if (n->oversize == OVERSIZE_MATCH) return 1;
        if (n->oversize == OVERSIZE_NO_MATCH) return 0;
        len = (size_t)n->size_limit;
    }
    return try_value(n, in->body ? in->body : "", len, pool, t);
}

static const field_t fields[] = {
    {"uri_path", 0, 0, 0, f_uri_path},
    {"query_string", 0, 0, 0, f_query},
    {"method", 0, 0, 0, f_method},
    {"single_header", 1, 0, 0, f_single_header},
    {"single_query_argument", 1, 0, 0, f_single_arg},
    {"all_query_arguments", 0, 0, 0, f_all_args},
    {"headers", 0, 1, 0, f_headers},
    {"cookies", 0, 1, 0, f_cookies},
    {"body", 0, 0, 1, f_body},
    {NULL, 0, 0, 0, NULL},
};

/* ---- the statement kinds ---- */

typedef int (*eval_fn)(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool);

struct op_s {
    const char *name;
    int has_field;
    int (*compile)(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                   size_t errlen);
    test_fn test; /* field statements */
    eval_fn eval; /* the others */
};

static int eval_node(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    if (n->op->test) return n->field->each(n, in, pool, n->op->test);
    return n->op->eval(n, in, pool);
}

/* byte_match */
static const char *const positions[] = {"EXACTLY",  "STARTS_WITH",   "ENDS_WITH",
                                        "CONTAINS", "CONTAINS_WORD", NULL};

static int c_byte(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                  size_t errlen)
{
    (void)pool;
    n->search = c->search;
    n->constraint = one_of(c->constraint, positions);
    if (n->constraint < 0) {
        snprintf(err, errlen, "%s.positional_constraint: unknown constraint", c->where);
        return -1;
    }
    return 0;
}

static int word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

static int t_byte(const node_t *n, const char *p, size_t len, mgw_pool_t *pool)
{
    (void)pool;
    const mgw_str_t s = n->search;
    switch (n->constraint) {
    case 0:
        return len == s.n && memcmp(p, s.p, len) == 0;
    case 1:
        return len >= s.n && memcmp(p, s.p, s.n) == 0;
    case 2:
        return len >= s.n && memcmp(p + len - s.n, s.p, s.n) == 0;
    case 3:
        return memmem(p, len, s.p, s.n) != NULL;
    default:
        for (const char *q = p; len >= s.n && q <= p + len - s.n;) {
            const char *m = memmem(q, (size_t)(p + len - q), s.p, s.n);
            if (m == NULL) return 0;
            if ((m == p || !word_char(m[-1])) && (m + s.n == p + len || !word_char(m[s.n])))
                return 1;
            q = m + 1;
        }
        return 0;
    }
}

/* size_constraint */
static const char *const comparisons[] = {"EQ", "NE", "LE", "LT", "GE", "GT", NULL};

static int c_size(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                  size_t errlen)
{
    (void)pool;
    n->size = c->size;
    n->constraint = one_of(c->constraint, comparisons);
    if (n->constraint < 0) {
        snprintf(err, errlen, "%s.comparison_operator: unknown operator", c->where);
        return -1;
    }
    return 0;
}

static int t_size(const node_t *n, const char *p, size_t len, mgw_pool_t *pool)
{
    (void)p;
    (void)pool;
    uint64_t v = len, s = n->size;
    switch (n->constraint) {
    case 0:
        return v == s;
    case 1:
        return v != s;
    case 2:
        return v <= s;
    case 3:
        return v < s;
    case 4:
        return v >= s;
    default:
        return v > s;
    }
}

/* regex_match, regex_pattern_set: PCRE2 with JIT */
static void re_free_cb(void *p)
{
    pcre2_code_free(p);
}

static int add_regex(node_t *n, const char *pat, size_t len, mgw_pool_t *pool, const char *where,
                     char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, 0, &code, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "%s: PCRE2 error at offset %zu: %s", where, (size_t)off, msg);
        return -1;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT (unsupported CPU) it still runs */
    mgw_pool_cleanup_add(pool, re_free_cb, re);
    n->re[n->nre++] = re;
    return 0;
}

static int c_regex(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                   size_t errlen)
{
    int cap = c->nvalues + 1;
    FILE *f = NULL;
    char line[4096], where[1024];
    if (c->file) {
        f = fopen(c->file, "r");
        if (f == NULL) {
            snprintf(err, errlen, "%s.file: cannot read \"%s\": %s", c->where, c->file,
                     strerror(errno));
            return -1;
        }
        while (fgets(line, sizeof(line), f))
            cap++;
        rewind(f);
    }
    n->re = mgw_pool_calloc(pool, sizeof(pcre2_code *) * (size_t)cap);
    for (int i = 0; i < c->nvalues; i++) {
        if (strcmp(c->op, "regex_match") == 0)
            snprintf(where, sizeof(where), "%s.regex_string", c->where);
        else
            snprintf(where, sizeof(where), "%s.patterns[%d]", c->where, i + 1);
        if (add_regex(n, c->values[i], strlen(c->values[i]), pool, where, err, errlen) != 0) {
            if (f) fclose(f);
            return -1;
        }
    }
    int lineno = 0, rc = 0;
    while (f && fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        if (len == 0 || line[0] == '#') continue;
        snprintf(where, sizeof(where), "%s.file: %s:%d", c->where, c->file, lineno);
        if (add_regex(n, line, len, pool, where, err, errlen) != 0) {
            rc = -1;
            break;
        }
    }
    if (f) fclose(f);
    if (rc == 0 && n->nre == 0) {
        snprintf(err, errlen, "%s: has no pattern", c->where);
        return -1;
    }
    return rc;
}

/* PCRE2's allocations for a match come from the request pool (freed with it). */
static void *pool_malloc(PCRE2_SIZE n, void *pool)
{
    return mgw_pool_alloc(pool, n);
}

static void pool_free(void *p, void *pool)
{
    (void)p, (void)pool;
}

/* The match data comes from the request pool: no malloc per value, and nothing per
 * thread that would outlive its worker. */
static int t_regex(const node_t *n, const char *p, size_t len, mgw_pool_t *pool)
{
    pcre2_general_context *gc = pcre2_general_context_create(pool_malloc, pool_free, pool);
    pcre2_match_data *md = gc ? pcre2_match_data_create(1, gc) : NULL;
    if (md == NULL) return 0;
    int hit = 0;
    for (int i = 0; i < n->nre && !hit; i++)
        hit = pcre2_match(n->re[i], (PCRE2_SPTR)p, len, 0, 0, md, NULL) >= 0;
    return hit;
}

/* sqli_match, xss_match: libinjection through conf/modsec.c */
static int c_inject(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                    size_t errlen)
{
    (void)n;
    (void)pool;
    if (!mgw_modsec_detect_ok()) {
        snprintf(err, errlen, "%s: this libmodsecurity does not export libinjection", c->where);
        return -1;
    }
    return 0;
}

static int t_sqli(const node_t *n, const char *p, size_t len, mgw_pool_t *pool)
{
    (void)n;
    (void)pool;
    return mgw_modsec_is_sqli(p, len);
}

static int t_xss(const node_t *n, const char *p, size_t len, mgw_pool_t *pool)
{
    (void)n;
    (void)pool;
    return mgw_modsec_is_xss(p, len);
}

/* ip_set */
static void ipset_free_cb(void *p)
{
    mgw_ipset_free(p);
}

static int c_ipset(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                   size_t errlen)
{
    char why[512];
    n->ips = mgw_ipset_new();
    mgw_pool_cleanup_add(pool, ipset_free_cb, n->ips);
    for (int i = 0; i < c->nvalues; i++) {
        if (mgw_ipset_add(n->ips, c->values[i], strlen(c->values[i]), why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s.addresses[%d]: %s", c->where, i + 1, why);
            return -1;
        }
    }
    if (c->file && mgw_ipset_add_file(n->ips, c->file, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s.file: %s", c->where, why);
        return -1;
    }
    mgw_ipset_seal(n->ips);
    if (c->header) {
        n->header = (mgw_str_t){c->header, strlen(c->header)};
        n->fallback_match = c->fallback && strcmp(c->fallback, "MATCH") == 0;
        static const char *const pos[] = {"FIRST", "LAST", "ANY", NULL};
        n->position = c->position ? one_of(c->position, pos) : POS_FIRST;
        if (n->position < 0) n->position = POS_FIRST;
    }
    return 0;
}

static mgw_str_t trim(const char *a, const char *e)
{
    while (a < e && (*a == ' ' || *a == '\t'))
        a++;
    while (e > a && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return (mgw_str_t){a, (size_t)(e - a)};
}

/* The first item of a comma-separated list (a forwarded header's original client). */
static mgw_str_t first_item(const mgw_str_t *v)
{
    const char *e = memchr(v->p, ',', v->n);
    return trim(v->p, e ? e : v->p + v->n);
}

/* The forwarded header: a list of addresses separated by commas; the one at position
 * (or any of them). Not an address, or the header missing: the fallback. */
static int e_ipset(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    (void)pool;
    if (n->header.n == 0) {
        const char *ip = in->client_ip ? in->client_ip : "";
        return mgw_ipset_contains(n->ips, ip, strlen(ip)) == 1;
    }
    const mgw_str_t *v = find_header(in, n->header);
    if (v == NULL) return n->fallback_match;
    const char *p = v->p, *end = v->p + v->n;
    int rc = -1;
    if (n->position == POS_ANY) {
        while (p <= end) {
            const char *e = memchr(p, ',', (size_t)(end - p));
            if (e == NULL) e = end;
            mgw_str_t a = trim(p, e);
            int r = mgw_ipset_contains(n->ips, a.p, a.n);
            if (r == 1) return 1;
            if (r == 0) rc = 0;
            p = e + 1;
        }
        return rc < 0 ? n->fallback_match : 0;
    }
    mgw_str_t a;
    if (n->position == POS_FIRST) {
        a = first_item(v);
    } else {
        const char *s = end;
        while (s > p && s[-1] != ',')
            s--;
        a = trim(s, end);
    }
    rc = mgw_ipset_contains(n->ips, a.p, a.n);
    return rc < 0 ? n->fallback_match : rc;
}

/* geo_match: the country of the client address, or of the forwarded header's first
 * address (AWS's ForwardedIPConfig reads only the first). */
static int c_geo(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                 size_t errlen)
{
    (void)pool;
    n->geo = c->geodb;
    if (n->geo == NULL) {
        snprintf(err, errlen, "%s: no country database was loaded (waf_geo)", c->where);
        return -1;
    }
    if (c->nvalues < 1) {
        snprintf(err, errlen, "%s.country_codes: is empty", c->where);
        return -1;
    }
    for (int i = 0; i < c->nvalues; i++) {
        const char *v = c->values[i];
        if (strlen(v) != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z') {
            snprintf(err, errlen, "%s.country_codes[%d]: \"%s\" is not a country code", c->where,
                     i + 1, v);
            return -1;
        }
        int code = MGW_GEO_CODE(v[0], v[1]);
        n->countries[code / 8] |= (uint8_t)(1u << (code % 8));
    }
    if (c->header) {
        n->header = (mgw_str_t){c->header, strlen(c->header)};
        n->fallback_match = c->fallback && strcmp(c->fallback, "MATCH") == 0;
    }
    return 0;
}

static int e_geo(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    (void)pool;
    mgw_str_t a = MGW_STR("");
    if (n->header.n == 0) {
        if (in->client_ip) a = (mgw_str_t){in->client_ip, strlen(in->client_ip)};
    } else {
        const mgw_str_t *v = find_header(in, n->header);
        if (v == NULL) return n->fallback_match;
        a = first_item(v);
    }
    int code = mgw_geodb_lookup(n->geo, a.p, a.n);
    if (code == MGW_GEO_NOT_ADDRESS) return n->header.n ? n->fallback_match : 0;
    if (code < 0) return 0; /* no country known: no label, no match */
    if (in->add_label) {
        char cc[3], label[40];
        mgw_geo_code_text(code, cc);
        int len = snprintf(label, sizeof(label), "awswaf:%s:geo:country:%s",
                           n->header.n ? "forwardedip" : "clientip", cc);
        in->add_label(in->ud, label, (size_t)len);
    }
    return (n->countries[code / 8] >> (code % 8)) & 1;
}

/* label_match: LABEL matches a label equal to key or ending in ":key"; NAMESPACE matches
 * labels that start with key (which ends with ':'). */
static int c_label(node_t *n, const mgw_wafstmt_node_conf_t *c, mgw_pool_t *pool, char *err,
                   size_t errlen)
{
    (void)pool;
    n->key = (mgw_str_t){c->key ? c->key : "", c->key ? strlen(c->key) : 0};
    n->constraint = c->scope && strcmp(c->scope, "NAMESPACE") == 0;
    if (n->key.n == 0) {
        snprintf(err, errlen, "%s.key: is empty", c->where);
        return -1;
    }
    return 0;
}

static int e_label(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    (void)pool;
    const mgw_str_t k = n->key;
    for (int i = 0; i < in->nlabels; i++) {
        const char *l = in->labels[i];
        size_t ln = strlen(l);
        if (n->constraint) {
            if (ln >= k.n && memcmp(l, k.p, k.n) == 0) return 1;
        } else if (ln == k.n ? memcmp(l, k.p, k.n) == 0
                             : ln > k.n && l[ln - k.n - 1] == ':' &&
                                   memcmp(l + ln - k.n, k.p, k.n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* and/or/not */
static int e_and(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    for (int i = 0; i < n->nkids; i++)
        if (!eval_node(n->kids[i], in, pool)) return 0;
    return 1;
}

static int e_or(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    for (int i = 0; i < n->nkids; i++)
        if (eval_node(n->kids[i], in, pool)) return 1;
    return 0;
}

static int e_not(const node_t *n, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    return !eval_node(n->kids[0], in, pool);
}

static const op_t ops[] = {
    {"byte_match", 1, c_byte, t_byte, NULL},
    {"size_constraint", 1, c_size, t_size, NULL},
    {"regex_match", 1, c_regex, t_regex, NULL},
    {"regex_pattern_set", 1, c_regex, t_regex, NULL},
    {"sqli_match", 1, c_inject, t_sqli, NULL},
    {"xss_match", 1, c_inject, t_xss, NULL},
    {"ip_set", 0, c_ipset, NULL, e_ipset},
    {"geo_match", 0, c_geo, NULL, e_geo},
    {"label_match", 0, c_label, NULL, e_label},
    {"and_statement", 0, NULL, NULL, e_and},
    {"or_statement", 0, NULL, NULL, e_or},
    {"not_statement", 0, NULL, NULL, e_not},
    {NULL, 0, NULL, NULL, NULL},
};

/* ---- compile ---- */

static int compile_field(node_t *n, const mgw_wafstmt_node_conf_t *c, char *err, size_t errlen)
{
    for (const field_t *f = fields; f->name; f++)
        if (c->field && strcmp(f->name, c->field) == 0) n->field = f;
    if (n->field == NULL) {
        snprintf(err, errlen, "%s.field: unknown field \"%s\"", c->where, c->field ? c->field : "");
        return -1;
    }
    if (n->field->needs_name) {
        if (c->field_name == NULL || !*c->field_name) {
            snprintf(err, errlen, "%s.field: %s needs a name", c->where, c->field);
            return -1;
        }
        n->name = (mgw_str_t){c->field_name, strlen(c->field_name)};
    }
    static const char *const scopes[] = {"ALL", "KEY", "VALUE", NULL};
    n->scope = c->match_scope ? one_of(c->match_scope, scopes) : SCOPE_ALL;
    if (n->scope < 0) n->scope = SCOPE_ALL;
    static const char *const over[] = {"CONTINUE", "MATCH", "NO_MATCH", NULL};
    n->oversize = c->oversize ? one_of(c->oversize, over) : OVERSIZE_CONTINUE;
    if (n->oversize < 0) n->oversize = OVERSIZE_CONTINUE;
    n->size_limit = c->size_limit ? c->size_limit : 8192;
    if (c->ntransforms > MAX_TRANSFORMS) {
        snprintf(err, errlen, "%s.text_transformations: at most %d", c->where, MAX_TRANSFORMS);
        return -1;
    }
    for (int i = 0; i < c->ntransforms; i++) {
        const mgw_wafxform_t *x = mgw_wafxform_find(c->transforms[i]);
        if (x == NULL) {
            snprintf(err, errlen, "%s.text_transformations[%d]: unknown transformation \"%s\"",
                     c->where, i + 1, c->transforms[i]);
            return -1;
        }
        if (x->fn != mgw_wafxforms[0].fn) n->xf[n->nxf++] = x; /* NONE does nothing */
    }
    return 0;
}

static node_t *compile_node(const mgw_wafstmt_conf_t *c, int idx, int depth, mgw_pool_t *pool,
                            int *needs_body, char *err, size_t errlen)
{
    const mgw_wafstmt_node_conf_t *nc = &c->nodes[idx];
    if (depth > 20) {
        snprintf(err, errlen, "%s: statements nest at most 20 levels deep", nc->where);
        return NULL;
    }
    node_t *n = mgw_pool_calloc(pool, sizeof(node_t));
    for (const op_t *o = ops; o->name; o++)
        if (nc->op && strcmp(o->name, nc->op) == 0) n->op = o;
    if (n->op == NULL) {
        snprintf(err, errlen, "%s: unknown statement \"%s\"", nc->where, nc->op ? nc->op : "");
        return NULL;
    }
    if (n->op->has_field) {
        if (compile_field(n, nc, err, errlen) != 0) return NULL;
        if (n->field->is_body) *needs_body = 1;
    }
    if (n->op->compile && n->op->compile(n, nc, pool, err, errlen) != 0) return NULL;
    if (nc->nkids > 0) {
        n->kids = mgw_pool_calloc(pool, sizeof(node_t *) * (size_t)nc->nkids);
        for (int i = 0; i < nc->nkids; i++) {
            int k = nc->kids[i];
            if (k <= idx || k >= c->nnodes) {
                snprintf(err, errlen, "%s: bad statement tree", nc->where);
                return NULL;
            }
            n->kids[i] = compile_node(c, k, depth + 1, pool, needs_body, err, errlen);
            if (n->kids[i] == NULL) return NULL;
        }
        n->nkids = nc->nkids;
    }
    if (n->op->eval == e_not ? n->nkids != 1
                             : (n->op->eval == e_and || n->op->eval == e_or) && n->nkids < 1) {
        snprintf(err, errlen, "%s: has the wrong number of statements", nc->where);
        return NULL;
    }
    return n;
}

mgw_wafstmt_t *mgw_wafstmt_compile(const mgw_wafstmt_conf_t *c, mgw_pool_t *pool, char *err,
                                   size_t errlen)
{
    if (c->nnodes < 1) {
        snprintf(err, errlen, "statement: is empty");
        return NULL;
    }
    mgw_wafstmt_t *s = mgw_pool_calloc(pool, sizeof(*s));
    s->root = compile_node(c, 0, 1, pool, &s->needs_body, err, errlen);
    if (s->root == NULL) return NULL;
    s->labels = c->labels;
    s->nlabels = c->nlabels;
    return s;
}

int mgw_wafstmt_needs_body(const mgw_wafstmt_t *s)
{
    return s->needs_body;
}

int mgw_wafstmt_eval(const mgw_wafstmt_t *s, const mgw_wafstmt_req_t *in, mgw_pool_t *pool)
{
    return eval_node(s->root, in, pool);
}

const char *const *mgw_wafstmt_labels(const mgw_wafstmt_t *s, int *n)
{
    *n = s->nlabels;
    return s->labels;
}
