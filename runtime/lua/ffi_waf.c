/*
 * Managed rules of web ACLs (README "Managed rules"), called by the rule's inspect in
 * lua/moongate/waf.lua while the web ACL runs: the request goes through the generation's
 * compiled rule set (conf/modsec.c) and the result is kept for $context.waf.managed.*.
 * FFI boundary per STYLE.md rule 9.
 */
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
    /* kept in evaluation order for the WAF log's ruleGroupList */
    mgw_wafm_run_t *run = mgw_pool_alloc(r->pool, sizeof(*run)), **tail = &l->wafm_runs;
    while (*tail)
        tail = &(*tail)->next;
    *run = (mgw_wafm_run_t){.idx = idx, .res = res, .next = NULL};
    *tail = run;
    return res->blocked ? 1 : 0;
}
