/*
 * What lua/moongate/runtime.lua hands back to C after a hook: an authorizer's principal,
 * context and usage identifier key, the WAF's matching rules, a Lua integration's
 * response, a log policy's line or custom values, errors for $context and the error log.
 * These functions only store (copies into the request's arena): hooks.c acts on them
 * once Lua has returned. FFI boundary per STYLE.md rule 9.
 */
#include <string.h>

#include "base/utf8.h"
#include "base/log.h"
#include "base/stat.h"
#include "lua/lua_int.h"

static const char *dup_or_null(mgw_req_t *r, const char *s, size_t n)
{
    return s ? mgw_pool_strndup(r->pool, s, n) : NULL;
}

static mgw_kv_t *dup_kvs(mgw_req_t *r, const mgw_kv_t *kv, int n)
{
    if (n <= 0) return NULL;
    mgw_kv_t *out = mgw_pool_alloc(r->pool, sizeof(*out) * (size_t)n);
    for (int i = 0; i < n; i++) {
        out[i].name =
            (mgw_str_t){mgw_pool_strndup(r->pool, kv[i].name.p, kv[i].name.n), kv[i].name.n};
        out[i].value =
            (mgw_str_t){mgw_pool_strndup(r->pool, kv[i].value.p, kv[i].value.n), kv[i].value.n};
    }
    return out;
}

/*
 * An authorizer allowed the request: its principal id (may be NULL), its context
 * ($context.authorizer.KEY; values as strings) and its usage identifier key (may be
 * NULL), which becomes the request's API key for usage plans. Returns 0.
 */
int mgw_ffi_runtime_authorized(mgw_req_t *r, const char *principal, size_t pn, const mgw_kv_t *ctx,
                               int n, const char *key, size_t kn)
{
    mgw_lreq_t *l = mgw__lreq(r);
    l->principal = dup_or_null(r, principal, pn);
    l->authz = dup_kvs(r, ctx, n);
    l->nauthz = n > 0 ? n : 0;
    if (key) r->api_key = (mgw_str_t){mgw_pool_strndup(r->pool, key, kn), kn};
    return 0;
}

/* The web ACL's terminating rule (NULL: the default action) and the names of the count
 * rules that matched (comma-separated, NULL when none). Returns 0. */
int mgw_ffi_runtime_waf(mgw_req_t *r, const char *rule, size_t rn, const char *counted, size_t cn)
{
    mgw_lreq_t *l = mgw__lreq(r);
    l->waf_rule = dup_or_null(r, rule, rn);
    l->waf_counted = dup_or_null(r, counted, cn);
    return 0;
}

/* A Lua integration's response, already checked by runtime.lua. Returns 0. */
int mgw_ffi_runtime_response(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int n,
                             const char *body, size_t bn)
{
    mgw_lreq_t *l = mgw__lreq(r);
    l->resp_status = status;
    l->nresp_hdrs = n > 0 ? n : 0;
    l->resp_hdrs = mgw_pool_alloc(r->pool, sizeof(mgw_hdr_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        const mgw_hdr_t *h = &hdrs[i];
        l->resp_hdrs[i].name =
            (mgw_str_t){mgw_pool_strndup(r->pool, h->name.p, h->name.n), h->name.n};
        l->resp_hdrs[i].value =
            (mgw_str_t){mgw_pool_strndup(r->pool, h->value.p, h->value.n), h->value.n};
    }
    l->resp_body = (mgw_str_t){bn ? mgw_pool_strndup(r->pool, body, bn) : "", bn};
    return 0;
}

/* 1 when n bytes at p are text a JSON event carries as is: valid UTF-8 without NUL (the
 * body check of hooks.lua, in C because a Lua byte loop there kept the JIT from compiling
 * the hook's path: bench/README, W6). */
int mgw_ffi_runtime_is_text(const char *p, size_t n)
{
    return mgw_utf8_text(p, n);
}

/* A log policy's whole access-log line (without the newline). Returns 0. */
int mgw_ffi_runtime_log_line(mgw_req_t *r, const char *line, size_t n)
{
    mgw_lreq_t *l = mgw__lreq(r);
    l->log_line = (mgw_str_t){mgw_pool_strndup(r->pool, line, n), n};
    l->has_line = 1;
    return 0;
}

/* $context.custom.NAME values from a log policy. Returns 0. */
int mgw_ffi_runtime_custom(mgw_req_t *r, const mgw_kv_t *kv, int n)
{
    mgw_lreq_t *l = mgw__lreq(r);
    l->custom = dup_kvs(r, kv, n);
    l->ncustom = n > 0 ? n : 0;
    return 0;
}

/*
 * Why hook (MGW_HOOK_*) failed: kept for $context.waf.error, $context.authorizer.error or
 * $context.integrationErrorMessage. Returns 0.
 */
int mgw_ffi_runtime_error(mgw_req_t *r, int hook, const char *msg, size_t n)
{
    mgw_lreq_t *l = mgw__lreq(r);
    const char *m = mgw_pool_strndup(r->pool, msg, n);
    if (hook == MGW_HOOK_WAF)
        l->waf_error = m;
    else if (hook == MGW_HOOK_AUTHORIZE)
        l->authz_error = m;
    else if (hook == MGW_HOOK_HANDLE)
        r->integ_error = m;
    return 0;
}

static mgw_stat_family_t hook_errors = {
    .name = "moongate_lua_hook_errors_total",
    .type = "counter",
    .help = "Lua hook calls that failed (a script error, a malformed result, a policy that "
            "failed to load or yielded), budget stops apart, by policy and hook.",
    .labels = {"policy", "hook"},
};

static mgw_stat_family_t budget_stops = {
    .name = "moongate_lua_budget_stops_total",
    .type = "counter",
    .help = "Lua hook calls the instruction budget stopped, by policy and hook.",
    .labels = {"policy", "hook"},
};

/* The hook label, by MGW_HOOK_*: the configuration's words for the uses. */
static const char *const hook_names[] = {
    [MGW_HOOK_WAF] = "waf",
    [MGW_HOOK_ROUTE] = "route_selection",
    [MGW_HOOK_AUTHORIZE] = "authorizer",
    [MGW_HOOK_HANDLE] = "integration",
    [MGW_HOOK_LOG] = "log",
    [MGW_HOOK_CHECK_CERT] = "revocation",
};

/*
 * Counts a failed hook call of policy (n bytes: the policy file as configured, or the
 * configuration path of a use without one) in hook (MGW_HOOK_*): in
 * moongate_lua_budget_stops_total when budget is set, else in
 * moongate_lua_hook_errors_total. *handle is the series' handle: 0 the first time, when
 * it is looked up; the caller keeps it for the next failure of the same policy, hook and
 * kind, which then takes no lookup. r may be NULL (a revocation check). Returns 0.
 */
int mgw_ffi_runtime_failed(mgw_req_t *r, int hook, int budget, const char *policy, size_t n,
                           uint32_t *handle)
{
    (void)r;
    if (*handle == 0) {
        if (hook < MGW_HOOK_WAF || hook > MGW_HOOK_CHECK_CERT) return 0;
        char name[256];
        if (n >= sizeof(name)) n = sizeof(name) - 1;
        memcpy(name, policy, n);
        name[n] = '\0';
        const char *v[] = {name, hook_names[hook]};
        *handle = mgw_stat_series(budget ? &budget_stops : &hook_errors, v);
    }
    mgw_stat_add(*handle, 1);
    return 0;
}

/* The backend status of a non-proxy http integration ($context.integration.status),
 * which differs from the method response's. Returns 0. */
int mgw_ffi_runtime_integ_status(mgw_req_t *r, int status)
{
    r->integ_status = status;
    return 0;
}

/* A line for the error log (level: MGW_LOG_*), about r when r is not NULL. Returns 0. */
int mgw_ffi_runtime_log(mgw_req_t *r, int level, const char *msg, size_t n)
{
    if (r)
        mgw_log(level, "request %s: %.*s", r->id, (int)n, msg);
    else
        mgw_log(level, "%.*s", (int)n, msg);
    return 0;
}

/* The loop's clock in milliseconds (deadlines of hook calls). */
int mgw_ffi_runtime_now(mgw_req_t *r, uint64_t *ms)
{
    *ms = mgw__now_ms(r);
    return 0;
}

int mgw_ffi_runtime_hook_start(mgw_req_t *r, uint64_t *ms)
{
    *ms = r->lua->hook_start_ms;
    return 0;
}
