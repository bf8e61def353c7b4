/*
 * The web ACL rules evaluated in C, called by the rules' inspect in lua/moongate/waf.lua
 * while the web ACL runs. Managed rules (README "Managed rules"): the request goes through
 * the generation's compiled rule set (conf/modsec.c) and the result is kept for
 * $context.waf.managed.*. Rate-based rules (README "Rate-based rules"): the request is
 * counted by its key in the rule's counters (base/ratewin.h), shared by every worker, and
 * the rules that matched are kept for $context.waf.rateBased and the WAF log
 * (mgw__waf_rate_matches). Rule statements (README "Rule statements"): the compiled
 * statement (conf/wafstmt.c) is evaluated on the request; labels and custom responses of
 * every kind are kept here too. FFI boundary per STYLE.md rule 9.
 */
#include <arpa/inet.h>
#include <string.h>

#include "base/ratewin.h"
#include "conf/wafstmt.h"
#include "lua/lua_int.h"

/* Whether a body follows the head (a request without one never waits for it). */
static int has_body(const mgw_req_t *r)
{
    return r->body_mem.p ? r->body_mem.n > 0 : r->chunked || (r->has_length && r->content_length);
}

/*
 * The request body a rule inspects, in *p and *n: 0 when there (or when the request has
 * none: *p NULL), 2 when the rule must wait for it (then call again). The client may
 * wait for "100 Continue" before sending it.
 */
static int rule_body(mgw_req_t *r, mgw_lreq_t *l, const char **p, size_t *n)
{
    *p = NULL, *n = 0;
    if (!has_body(r)) return 0;
    if (r->body_mem.p) {
        *p = r->body_mem.p, *n = r->body_mem.n;
    } else if (!mgw__hooks_body_complete(r)) {
        mgw__req_send_continue(r);
        l->waiting = MGW_WAIT_BODY;
        return 2;
    } else {
        *p = r->kept_body.p, *n = r->kept_body.n;
    }
    return 0;
}

static void stmt_label(void *r, const char *s, size_t n);

/*
 * Statement s on r: 0 (no match), 1 (match) or 2 (wait for the request body, then call
 * again; only when s reads the body and the request has one).
 */
static int eval_statement(mgw_req_t *r, const mgw_wafstmt_t *s)
{
    mgw_lreq_t *l = mgw__lreq(r);
    mgw_wafstmt_req_t in = {
        .client_ip = r->from.peer,
        .method = r->method,
        .target = r->target,
        .headers = r->headers,
        .nheaders = r->nheaders,
        .labels = (const char *const *)l->waf_labels,
        .nlabels = l->nwaf_labels,
        .add_label = stmt_label,
        .ud = r,
    };
    if (mgw_wafstmt_needs_body(s) && rule_body(r, l, &in.body, &in.body_len) == 2) return 2;
    return mgw_wafstmt_eval(s, &in, r->pool) ? 1 : 0;
}

/*
 * Evaluates managed rule set idx of the request's generation. Returns 0 (no match), 1
 * (the rule set blocks the request: the web ACL rule's action applies), 2 (wait for the
 * request body, then call again) or -1 with *err (libmodsecurity failed: the WAF phase's
 * error response).
 */
int mgw_ffi_waf_managed(mgw_req_t *r, int idx, const char **err)
{
    if (idx < 0 || idx >= r->gen->nwaf_managed || r->gen->waf_managed[idx] == NULL) {
        *err = "no such managed rule set";
        return -1;
    }
    const mgw_modsec_t *m = r->gen->waf_managed[idx];
    mgw_lreq_t *l = mgw__lreq(r);
    mgw_modsec_req_t in = {
        .id = r->id,
        .client_ip = r->from.peer,
        .method = r->method,
        .target = r->target,
        .http_minor = r->minor,
        .headers = r->headers,
        .nheaders = r->nheaders,
    };
    if (mgw_modsec_inspection_size(m) > 0 && rule_body(r, l, &in.body, &in.body_len) == 2) return 2;
    mgw_modsec_result_t *res = mgw_pool_alloc(r->pool, sizeof(*res));
    if (mgw_modsec_eval(m, r->pool, &in, res, err) != 0) {
        return -1;
    }
    l->wafm = res;
    /* kept in evaluation order for the WAF log's ruleGroupList */
    mgw_wafm_run_t *run = mgw_pool_alloc(r->pool, sizeof(*run)), **tail = &l->wafm_runs;
    while (*tail)
        tail = &(*tail)->next;
    *run = (mgw_wafm_run_t){.idx = idx, .res = res, .next = NULL};
    *tail = run;
    return res->blocked ? 1 : 0;
}

/* ---- rate-based rules (README "Rate-based rules") ---- */

/* What reading a key part found. */
enum { PART_MISSING = 0, PART_FOUND = 1, PART_INVALID = -1 };

typedef int (*part_fn)(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k, mgw_str_t *out);

static int found(mgw_str_t v, mgw_str_t *out)
{
    *out = v;
    return v.p ? PART_FOUND : PART_MISSING;
}

static int part_ip(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k, mgw_str_t *out)
{
    (void)rr, (void)k;
    return found(r->from.peer ? (mgw_str_t){r->from.peer, strlen(r->from.peer)} : MGW_NULL_STR,
                 out);
}

/*
 * The first address of the forwarded header, in its canonical text form (AWS WAF reads
 * only the first). A request without the header is not counted at all, as AWS WAF does
 * not apply the rule to it; a header whose first item is no address is the fallback's.
 */
static int part_forwarded_ip(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k,
                             mgw_str_t *out)
{
    (void)k;
    mgw_str_t v = mgw__req_header(r, rr->forwarded_header.p);
    if (v.p == NULL) return PART_MISSING;
    size_t i = 0, end;
    while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    for (end = i; end < v.n && v.p[end] != ',' && v.p[end] != ' ' && v.p[end] != '\t'; end++)
        ;
    char text[64];
    unsigned char addr[16];
    if (end - i == 0 || end - i >= sizeof(text)) return PART_INVALID;
    memcpy(text, v.p + i, end - i);
    text[end - i] = '\0';
    int af = memchr(text, ':', end - i) ? AF_INET6 : AF_INET;
    if (inet_pton(af, text, addr) != 1) return PART_INVALID;
    char *canon = mgw_pool_alloc(r->pool, INET6_ADDRSTRLEN);
    inet_ntop(af, addr, canon, INET6_ADDRSTRLEN);
    *out = (mgw_str_t){canon, strlen(canon)};
    return PART_FOUND;
}

static int part_header(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k, mgw_str_t *out)
{
    (void)rr;
    return found(mgw__req_header(r, k->name.p), out);
}

/* The value of cookie k->name in the request's Cookie headers ("a=1; b=2"). */
static int part_cookie(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k, mgw_str_t *out)
{
    (void)rr;
    for (int h = 0; h < r->nheaders; h++) {
        mgw_str_t name = r->headers[h].name; /* stored lower case */
        if (name.n != 6 || memcmp(name.p, "cookie", 6) != 0) continue;
        const char *p = r->headers[h].value.p, *end = p + r->headers[h].value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p)), *e = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == k->name.n && memcmp(p, k->name.p, k->name.n) == 0) {
                const char *vs = eq + 1, *ve = e;
                while (ve > vs && ve[-1] == ' ')
                    ve--;
                *out = (mgw_str_t){vs, (size_t)(ve - vs)};
                return PART_FOUND;
            }
            p = e;
        }
    }
    return PART_MISSING;
}

/* The (raw) value of the first query argument named k->name (percent-decoded names). */
static int part_query_argument(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k,
                               mgw_str_t *out)
{
    (void)rr;
    const char *p = r->query.p, *end = p ? p + r->query.n : NULL;
    return mgw__query_next(&p, end, k->name, out) ? PART_FOUND : PART_MISSING;
}

static int part_query_string(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k,
                             mgw_str_t *out)
{
    (void)rr, (void)k;
    return r->query.n ? found(r->query, out) : PART_MISSING;
}

static int part_http_method(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k,
                            mgw_str_t *out)
{
    (void)rr, (void)k;
    return found(r->method, out);
}

/* The path as the client sent it (without the query string). */
static int part_uri_path(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k, mgw_str_t *out)
{
    (void)rr, (void)k;
    return found(r->raw_path.p ? r->raw_path : r->path, out);
}

/* The first label the request has in namespace k->name (which ends in ':'), whole. */
static int part_label_namespace(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_rkey_t *k,
                                mgw_str_t *out)
{
    (void)rr;
    int n;
    const char *const *labels = mgw__waf_labels(r, &n);
    for (int i = 0; i < n; i++)
        if (strncmp(labels[i], k->name.p, k->name.n) == 0) {
            *out = (mgw_str_t){labels[i], strlen(labels[i])};
            return PART_FOUND;
        }
    return PART_MISSING;
}

/* How each kind of key part is read (conf/wafrate.h MGW_RKEY_KINDS). */
static const part_fn PARTS[MGW_RKEY__COUNT] = {
    [MGW_RKEY_IP] = part_ip,
    [MGW_RKEY_FORWARDED_IP] = part_forwarded_ip,
    [MGW_RKEY_HEADER] = part_header,
    [MGW_RKEY_COOKIE] = part_cookie,
    [MGW_RKEY_QUERY_ARGUMENT] = part_query_argument,
    [MGW_RKEY_QUERY_STRING] = part_query_string,
    [MGW_RKEY_HTTP_METHOD] = part_http_method,
    [MGW_RKEY_URI_PATH] = part_uri_path,
    [MGW_RKEY_LABEL_NAMESPACE] = part_label_namespace,
};

/* Records that rule rr matched r (its key's parts in vals). */
static void add_match(mgw_req_t *r, const mgw_wafrate_t *rr, const mgw_str_t *vals, uint64_t count,
                      int fallback)
{
    mgw_lreq_t *l = mgw__lreq(r);
    if (l->wafr == NULL)
        l->wafr = mgw_pool_calloc(r->pool, sizeof(*l->wafr) * (size_t)r->gen->nwaf_rate);
    if (l->nwafr == r->gen->nwaf_rate) return; /* each rule runs once per request */
    mgw_waf_rate_value_t *v = NULL;
    if (rr->nkeys) v = mgw_pool_calloc(r->pool, sizeof(*v) * (size_t)rr->nkeys);
    for (int i = 0; i < rr->nkeys; i++)
        v[i] = (mgw_waf_rate_value_t){mgw_wafrate_kind_aws(rr->keys[i].kind), rr->keys[i].name.p,
                                      vals[i]};
    l->wafr[l->nwafr++] = (mgw_waf_rate_match_t){
        .rule = rr->name,
        .limit = rr->limit,
        .window_s = rr->window_s,
        .limit_key = rr->limit_key,
        .values = v,
        .nvalues = rr->nkeys,
        .count = count,
        .fallback = fallback,
    };
}

/*
 * Rate-based rule idx of the request's generation: builds the request's key from the
 * rule's key parts, counts the request in the rule's shared counters and says whether the
 * key is over the limit. A request missing a key part is not counted (as AWS WAF). Returns
 * 1 (the rule matches: its action applies), 0, or -1 with *err.
 */
int mgw_ffi_waf_rate(mgw_req_t *r, int idx, const char **err)
{
    if (idx < 0 || idx >= r->gen->nwaf_rate || r->gen->waf_rate[idx].counters == NULL) {
        *err = "no such rate-based rule";
        return -1;
    }
    const mgw_wafrate_t *rr = &r->gen->waf_rate[idx];
    /* AWS's ScopeDownStatement: a request out of its scope is neither counted nor matched */
    if (rr->scope_down > 0) {
        int sd = rr->scope_down - 1;
        if (sd >= r->gen->nwaf_statements || r->gen->waf_statements[sd] == NULL) {
            *err = "no such scope-down statement";
            return -1;
        }
        int in = eval_statement(r, r->gen->waf_statements[sd]);
        if (in != 1) return in;
    }
    mgw_str_t vals[MGW_WAFRATE_MAX_KEYS];
    size_t n = 0;
    for (int i = 0; i < rr->nkeys; i++) {
        int got = PARTS[rr->keys[i].kind](r, rr, &rr->keys[i], &vals[i]);
        if (got == PART_MISSING) return 0;
        if (got == PART_INVALID) {
            if (!rr->fallback_match) return 0;
            mgw_str_t v = mgw__req_header(r, rr->forwarded_header.p);
            for (int j = 0; j < rr->nkeys; j++)
                vals[j] = j == i ? v : j < i ? vals[j] : MGW_NULL_STR;
            add_match(r, rr, vals, 0, 1);
            return 1;
        }
        n += 1 + 4 + vals[i].n;
    }
    /* the key: each part's kind, length and bytes, so that no two keys read alike */
    char stack[512], *key = n <= sizeof(stack) ? stack : mgw_pool_alloc(r->pool, n), *q = key;
    for (int i = 0; i < rr->nkeys; i++) {
        uint32_t len = (uint32_t)vals[i].n;
        *q++ = (char)rr->keys[i].kind;
        memcpy(q, &len, 4);
        memcpy(q + 4, vals[i].p, vals[i].n);
        q += 4 + vals[i].n;
    }
    uint64_t count = mgw_ratewin_hit(rr->counters, key, n, mgw__now_ms(r));
    if (count <= rr->limit) return 0;
    add_match(r, rr, vals, count, 0);
    return 1;
}

const mgw_waf_rate_match_t *mgw__waf_rate_matches(mgw_req_t *r, int *n)
{
    *n = r->lua ? r->lua->nwafr : 0;
    return *n ? r->lua->wafr : NULL;
}

/* ---- labels ---- */

static void add_label(mgw_req_t *r, mgw_lreq_t *l, const char *s, size_t n)
{
    for (int i = 0; i < l->nwaf_labels; i++)
        if (strlen(l->waf_labels[i]) == n && memcmp(l->waf_labels[i], s, n) == 0) return;
    if (l->nwaf_labels == l->cap_waf_labels) {
        int cap = l->cap_waf_labels ? 2 * l->cap_waf_labels : 8;
        const char **v = mgw_pool_alloc(r->pool, sizeof(char *) * (size_t)cap);
        if (l->nwaf_labels) memcpy(v, l->waf_labels, sizeof(char *) * (size_t)l->nwaf_labels);
        l->waf_labels = v;
        l->cap_waf_labels = cap;
    }
    l->waf_labels[l->nwaf_labels++] = mgw_pool_strndup(r->pool, s, n);
}

/* A label a statement adds while it is evaluated (geo_match's country). */
static void stmt_label(void *r, const char *s, size_t n)
{
    add_label(r, mgw__lreq(r), s, n);
}

const char *const *mgw__waf_labels(mgw_req_t *r, int *n)
{
    *n = r->lua ? r->lua->nwaf_labels : 0;
    return *n ? (const char *const *)r->lua->waf_labels : NULL;
}

/*
 * Adds the labels of a rule that matched (a policy or managed rule: a statement rule's
 * are added by mgw_ffi_waf_statement): s holds them separated by commas. Returns 0.
 */
int mgw_ffi_waf_add_labels(mgw_req_t *r, const char *s, size_t n)
{
    mgw_lreq_t *l = mgw__lreq(r);
    const char *end = s + n;
    while (s < end) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        if (c == NULL) c = end;
        if (c > s) add_label(r, l, s, (size_t)(c - s));
        s = c + 1;
    }
    return 0;
}

/*
 * Evaluates rule statement idx of the request's generation. Returns 0 (no match), 1 (a
 * match: the rule's labels are added and its action applies), 2 (wait for the request
 * body, then call again) or -1 with *err.
 */
int mgw_ffi_waf_statement(mgw_req_t *r, int idx, const char **err)
{
    if (idx < 0 || idx >= r->gen->nwaf_statements || r->gen->waf_statements[idx] == NULL) {
        *err = "no such rule statement";
        return -1;
    }
    const mgw_wafstmt_t *s = r->gen->waf_statements[idx];
    int rc = eval_statement(r, s);
    if (rc != 1) return rc;
    mgw_lreq_t *l = mgw__lreq(r);
    int n;
    const char *const *labels = mgw_wafstmt_labels(s, &n);
    for (int i = 0; i < n; i++)
        add_label(r, l, labels[i], strlen(labels[i]));
    return 1;
}

/* The custom response (index idx of the generation's) that a block of the web ACL
 * answers: the terminating rule's or the default action's. Returns 0, or -1 when there
 * is no such response. */
int mgw_ffi_waf_response(mgw_req_t *r, int idx)
{
    if (idx < 0 || idx >= r->gen->nwaf_responses) return -1;
    mgw__lreq(r)->waf_response = &r->gen->waf_responses[idx];
    return 0;
}
