/*
 * The Lua hook kinds in the request lifecycle (DESIGN.md "Request lifecycle"): the
 * stage's web ACL in the WAF phase, the API's route selector in the route phase, the
 * route's Lua authorizer in the authorize phase, Lua integrations, and the stage's log
 * policy when the access-log line is written. Each hook runs through lua.c; this file
 * turns its outcome into the next phase or a gateway response, resumes hooks that
 * waited (an HTTP call, the request body), and answers the $context variables hooks
 * produce.
 */
#include <string.h>

#include "base/log.h"
#include "gw/gw.h"
#include "lua/lua_int.h"

/* ---- per-request state ---- */

static void release_cb(void *data)
{
    mgw_req_t *r = data;
    mgw__lhttp_cancel(r);
    if (r->lua->slot) mgw_lua_release(r);
}

mgw_lreq_t *mgw__lreq(mgw_req_t *r)
{
    if (r->lua == NULL) {
        r->lua = mgw_pool_calloc(r->pool, sizeof(mgw_lreq_t));
        mgw_pool_cleanup_add(r->pool, release_cb, r);
    }
    return r->lua;
}

/* ---- outcomes ---- */

static int waf_done(mgw_req_t *r, int rc)
{
    if (rc == MGW_LUA_WAIT) return MGW_PHASE_WAIT;
    mgw_lreq_t *l = r->lua;
    l->waf_done = 1;
    l->waf_latency_ms = mgw__now_ms(r) - l->hook_start_ms;
    if (rc == MGW_LUA_OK) return MGW_PHASE_NEXT;
    if (rc == MGW_LUA_BLOCK) {
        l->waf_blocked = 1;
        const mgw_wafresp_t *c = l->waf_response;
        if (c) {
            /* the rule's (or the default action's) custom response, as AWS WAF's
             * CustomResponse: its status, headers and body, no gateway response */
            mgw__resp_head(r, c->status, c->hdrs, c->nhdrs, (int64_t)c->body.n);
            mgw__resp_body(r, c->body.p, c->body.n, NULL);
            mgw__resp_end(r);
            return MGW_PHASE_STOP;
        }
        mgw__req_fail(r, MGW_GW_WAF_FILTERED, NULL);
    } else {
        mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
    }
    return MGW_PHASE_STOP;
}

static int route_done(mgw_req_t *r, int rc, int idx)
{
    if (rc == MGW_LUA_WAIT) return MGW_PHASE_WAIT;
    r->lua->route_done = 1;
    if (rc == MGW_LUA_OK) {
        /* idx < 0: the selector declined and the route keys decide */
        if (idx >= 0 && idx < r->api->nroutes) r->route = r->api->routes[idx];
        return MGW_PHASE_NEXT;
    }
    mgw__req_fail(r,
                  rc == MGW_LUA_NOT_FOUND ? mgw__api_type(r->api)->no_route
                                          : MGW_GW_API_CONFIGURATION_ERROR,
                  NULL);
    return MGW_PHASE_STOP;
}

static int authorize_done(mgw_req_t *r, int rc, int explicit_deny)
{
    if (rc == MGW_LUA_WAIT) return MGW_PHASE_WAIT;
    mgw_lreq_t *l = r->lua;
    l->authz_latency_ms = mgw__now_ms(r) - l->hook_start_ms;
    switch (rc) {
    case MGW_LUA_OK:
        l->authz_status = 200;
        return MGW_PHASE_NEXT;
    case MGW_LUA_UNAUTHORIZED:
        l->authz_status = 401;
        mgw__req_fail(r, MGW_GW_UNAUTHORIZED, NULL);
        break;
    case MGW_LUA_DENY:
        l->authz_status = 403;
        mgw__req_fail(r, MGW_GW_ACCESS_DENIED,
                      explicit_deny ? "User is not authorized to access this resource with an "
                                      "explicit deny"
                                    : NULL);
        break;
    default:
        l->authz_status = 500;
        mgw__req_fail(r, MGW_GW_AUTHORIZER_FAILURE, NULL);
        break;
    }
    return MGW_PHASE_STOP;
}

/* status: what a failed handler answers (a REST API's Lambda-style 502; 500 and other
 * values: the gateway response's own status). */
static int handle_done(mgw_req_t *r, int rc, int status)
{
    if (rc == MGW_LUA_WAIT) return MGW_PHASE_WAIT;
    mgw_lreq_t *l = r->lua;
    r->integ_end_ns = uv_hrtime();
    if (rc != MGW_LUA_OK) {
        if (rc == MGW_LUA_GWRESP && status >= 0 && status < MGW_GW__COUNT) {
            /* the integration answered a gateway response itself: a non-proxy http
             * integration's backend failed as a proxy's would (INTEGRATION_FAILURE or
             * _TIMEOUT), a mapping template's UNSUPPORTED_MEDIA_TYPE */
            mgw__req_fail(r, (mgw_gwresp_type_t)status, NULL);
            return MGW_PHASE_STOP;
        }
        if (status > 500 && status <= 599) r->error_status = status;
        mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
        return MGW_PHASE_STOP;
    }
    /* a non-proxy http integration set the backend's status (mgw_ffi_runtime_integ_status) */
    if (r->integ_status == 0) r->integ_status = l->resp_status;
    mgw__resp_head(r, l->resp_status, l->resp_hdrs, l->nresp_hdrs, (int64_t)l->resp_body.n);
    mgw__resp_body(r, l->resp_body.p, l->resp_body.n, NULL);
    mgw__resp_end(r);
    return MGW_PHASE_STOP;
}

/* ---- the phases ---- */

int mgw__hooks_waf(mgw_req_t *r)
{
    return waf_done(r, mgw_lua_call(r, MGW_HOOK_WAF, r->stage->waf, NULL));
}

int mgw__hooks_select_route(mgw_req_t *r)
{
    mgw_lreq_t *l = mgw__lreq(r);
    if (l->route_done) return MGW_PHASE_NEXT; /* the phase runs again after a wait */
    int idx = -1;
    int rc = mgw_lua_call(r, MGW_HOOK_ROUTE, r->api->selector, &idx);
    return route_done(r, rc, idx);
}

int mgw__hooks_authorize(mgw_req_t *r)
{
    int explicit_deny = 0;
    int rc = mgw_lua_call(r, MGW_HOOK_AUTHORIZE, r->route->authorizer, &explicit_deny);
    return authorize_done(r, rc, explicit_deny);
}

int mgw__hooks_handle(mgw_req_t *r)
{
    r->integ_start_ns = uv_hrtime();
    int status = 0;
    int rc = mgw_lua_call(r, MGW_HOOK_HANDLE, r->route->integration.handler, &status);
    return handle_done(r, rc, status);
}

int mgw__hooks_log(mgw_req_t *r, const mgw_stage_t *st, mgw_buf_t *line)
{
    mgw_lreq_t *l = mgw__lreq(r);
    if (mgw_lua_call(r, MGW_HOOK_LOG, st->log_policy, NULL) != MGW_LUA_OK || !l->has_line) return 0;
    mgw_buf_add(line, l->log_line.p, l->log_line.n);
    return 1;
}

/* ---- waiting ---- */

int mgw__hooks_body_complete(const mgw_req_t *r)
{
    return r->body_done || (!r->has_length && !r->chunked) ||
           (r->has_length && r->content_length == 0);
}

void mgw__hooks_body_done(mgw_req_t *r)
{
    if (r->lua->waiting == MGW_WAIT_BODY) mgw__hooks_wakeup(r);
}

void mgw__hooks_wakeup(mgw_req_t *r)
{
    mgw_lreq_t *l = r->lua;
    l->waiting = MGW_WAIT_NONE;
    /* Answered meanwhile (body timeout, body too large): the waiting runner is dropped when
     * the request ends. */
    if (r->resp_started) return;
    int aux = -1;
    int rc = mgw_lua_resume(r, &aux);
    switch (r->phase) {
    case MGW_PHASE_WAF:
        if (waf_done(r, rc) == MGW_PHASE_NEXT) mgw__req_resume(r);
        break;
    case MGW_PHASE_ROUTE:
        /* the route phase runs again: it matches the path for the selected route */
        if (route_done(r, rc, aux) == MGW_PHASE_NEXT) mgw__req_continue(r);
        break;
    case MGW_PHASE_AUTHORIZE:
        if (authorize_done(r, rc, aux) == MGW_PHASE_NEXT) mgw__req_resume(r);
        break;
    case MGW_PHASE_INTEGRATION:
        handle_done(r, rc, aux);
        break;
    default:
        mgw_log_error("request %s: a hook resumed in phase %d", r->id, r->phase);
        mgw__req_fail(r, MGW_GW_API_CONFIGURATION_ERROR, NULL);
        break;
    }
}

/* ---- $context ---- */

static int cstr(const char *s, mgw_str_t *out)
{
    if (s == NULL) return 0;
    *out = (mgw_str_t){s, strlen(s)};
    return 1;
}

static int find(const mgw_kv_t *kv, int n, mgw_str_t name, mgw_str_t *out)
{
    for (int i = 0; i < n; i++)
        if (kv[i].name.n == name.n && memcmp(kv[i].name.p, name.p, name.n) == 0) {
            *out = kv[i].value;
            return 1;
        }
    return 0;
}

/* The n strings of v joined by sep, in the request pool; nothing when n is 0. */
static int join(mgw_req_t *r, const char *const *v, int n, const char *sep, mgw_str_t *out)
{
    if (n == 0) return 0;
    size_t len = 0, sn = strlen(sep);
    for (int i = 0; i < n; i++)
        len += strlen(v[i]) + sn;
    char *p = mgw_pool_alloc(r->pool, len + 1), *q = p;
    for (int i = 0; i < n; i++) {
        if (i) q = (char *)memcpy(q, sep, sn) + sn;
        size_t k = strlen(v[i]);
        q = (char *)memcpy(q, v[i], k) + k;
    }
    *q = '\0';
    *out = (mgw_str_t){p, (size_t)(q - p)};
    return 1;
}

int mgw__hooks_lookup(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out)
{
    const mgw_lreq_t *l = r->lua;
    if (l == NULL) return 0;
    switch (var) {
    case MGW_VAR_AUTHORIZER_PRINCIPAL:
        return cstr(l->principal, out);
    case MGW_VAR_AUTHORIZER_ERROR:
        return cstr(l->authz_error, out);
    case MGW_VAR_AUTHORIZER_STATUS:
        return l->authz_status ? mgw__req_u64(r, (uint64_t)l->authz_status, out) : 0;
    case MGW_VAR_AUTHORIZER_LATENCY:
        return l->authz_status ? mgw__req_u64(r, l->authz_latency_ms, out) : 0;
    case MGW_VAR_AUTHORIZER_KEY:
        return find(l->authz, l->nauthz, arg, out);
    case MGW_VAR_CUSTOM:
        return find(l->custom, l->ncustom, arg, out);
    case MGW_VAR_WAF_STATUS:
        if (!l->waf_done) return 0;
        return cstr(l->waf_error ? "500" : l->waf_blocked ? "403" : "200", out);
    case MGW_VAR_WAF_LATENCY:
        return l->waf_done ? mgw__req_u64(r, l->waf_latency_ms, out) : 0;
    case MGW_VAR_WAF_ERROR:
        return cstr(l->waf_error, out);
    case MGW_VAR_WAF_RULE:
        return cstr(l->waf_rule, out);
    case MGW_VAR_WAF_COUNTED:
        return cstr(l->waf_counted, out);
    case MGW_VAR_WAF_MANAGED_RULE_IDS:
        return l->wafm ? join(r, l->wafm->ids, l->wafm->nmatches, ",", out) : 0;
    case MGW_VAR_WAF_MANAGED_MESSAGES:
        return l->wafm ? join(r, l->wafm->messages, l->wafm->nmatches, "; ", out) : 0;
    case MGW_VAR_WAF_MANAGED_SCORE:
        return l->wafm ? mgw__req_u64(r, (uint64_t)(l->wafm->score > 0 ? l->wafm->score : 0), out)
                       : 0;
    case MGW_VAR_WAF_RATE_BASED: { /* the rate-based rules that matched, comma-separated */
        const char *names[l->nwafr ? l->nwafr : 1];
        for (int i = 0; i < l->nwafr; i++)
            names[i] = l->wafr[i].rule;
        return join(r, names, l->nwafr, ",", out);
    }
    case MGW_VAR_WAF_LABELS:
        return join(r, (const char *const *)l->waf_labels, l->nwaf_labels, ",", out);
    case MGW_VAR_WAF_RESPONSE_CODE:
        if (!l->waf_done || l->waf_error) return 0;
        return cstr(l->waf_blocked ? "WAF_BLOCK" : "WAF_ALLOW", out);
    }
    return 0;
}

/* ---- the request core's entries ---- */

static const mgw_gw_hooks_t hooks = {
    .waf = mgw__hooks_waf,
    .select_route = mgw__hooks_select_route,
    .body_done = mgw__hooks_body_done,
    .log = mgw__hooks_log,
    .lookup = mgw__hooks_lookup,
    .waf_log = mgw__waflog_line,
};

static const mgw_integ_ops_t lua_integration = {.name = "lua", .start = mgw__hooks_handle};

static const mgw_authz_ops_t lua_authorizer = {.name = "lua", .authorize = mgw__hooks_authorize};

void mgw_lua_register(void)
{
    mgw_gw_set_hooks(&hooks);
    mgw_gw_set_integration(MGW_INTEG_LUA, &lua_integration);
    mgw_gw_set_authorizer(MGW_AUTHZ_LUA, &lua_authorizer);
    mgw__lws_register();
}
