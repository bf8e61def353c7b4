/*
 * Managed rules of web ACLs (README "Managed rules"), called by the rule's inspect in
 * lua/moongate/waf.lua while the web ACL runs: the request goes through the generation's
 * compiled rule set (conf/modsec.c) and the result is kept for $context.waf.managed.*.
 * FFI boundary per STYLE.md rule 9.
 */
#include <string.h>

#include "conf/wafstmt.h"
#include "lua/lua_int.h"

/* Whether a body follows the head (a request without one never waits for it). */
static int has_body(const mgw_req_t *r)
{
    return r->body_mem.p ? r->body_mem.n > 0 : r->chunked || (r->has_length && r->content_length);
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
    if (has_body(r) && mgw_modsec_inspection_size(m) > 0) {
        if (r->body_mem.p) {
            in.body = r->body_mem.p;
            in.body_len = r->body_mem.n;
        } else if (!mgw__hooks_body_complete(r)) {
            /* The client may wait for "100 Continue" before sending the body. */
            mgw__req_send_continue(r);
            l->waiting = MGW_WAIT_BODY;
            return 2;
        } else {
            in.body = r->kept_body.p;
            in.body_len = r->kept_body.n;
        }
    }
    mgw_modsec_result_t *res = mgw_pool_alloc(r->pool, sizeof(*res));
    if (mgw_modsec_eval(m, r->pool, &in, res, err) != 0) {
        return -1;
    }
    l->wafm = res;
    return res->blocked ? 1 : 0;
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
    mgw_lreq_t *l = mgw__lreq(r);
    mgw_wafstmt_req_t in = {
        .client_ip = r->from.peer,
        .method = r->method,
        .target = r->target,
        .headers = r->headers,
        .nheaders = r->nheaders,
        .labels = (const char *const *)l->waf_labels,
        .nlabels = l->nwaf_labels,
    };
    if (mgw_wafstmt_needs_body(s) && has_body(r)) {
        if (r->body_mem.p) {
            in.body = r->body_mem.p;
            in.body_len = r->body_mem.n;
        } else if (!mgw__hooks_body_complete(r)) {
            mgw__req_send_continue(r);
            l->waiting = MGW_WAIT_BODY;
            return 2;
        } else {
            in.body = r->kept_body.p;
            in.body_len = r->kept_body.n;
        }
    }
    if (!mgw_wafstmt_eval(s, &in, r->pool)) return 0;
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
