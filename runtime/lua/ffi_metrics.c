/*
 * GET /metrics for what Lua decides (README "Metrics"): the web ACL's matches and
 * terminating actions, and the Lua authorizers' outcomes and cache. lua/moongate/metrics.lua
 * finds the series (base/stat.h) once per worker and generation, when runtime.lua loads the
 * generation's uses, and keeps their handles in the use tables; a request then counts with
 * mgw_ffi_metrics_count, one FFI call and no lookup. FFI boundary per STYLE.md rule 9 (the
 * lookups take no request: they run when a generation loads).
 */
#include <string.h>

#include "base/stat.h"
#include "gw/metrics.h"
#include "lua/lua_int.h"

/* Label values are the configuration's: the web ACL's path
 * (apis.ID.stages.NAME.waf), rule names, and the actions of the WAF log. */
static mgw_stat_family_t waf_matches = {
    .name = "moongate_waf_matches_total",
    .type = "counter",
    .help = "Web ACL rules that matched, by the rule's action (BLOCK, ALLOW, COUNT); "
            "rule Default_Action: requests no terminating rule matched.",
    .labels = {"web_acl", "rule", "action"}};
static mgw_stat_family_t waf_requests = {
    .name = "moongate_waf_requests_total",
    .type = "counter",
    .help = "Requests a web ACL evaluated, by its terminating action (ALLOW, BLOCK, or ERROR "
            "when a rule failed).",
    .labels = {"web_acl", "action"}};

/* The series of rule's matches with action in web ACL acl, or (rule NULL) of the web ACL's
 * requests that ended with action. Returns 0; *out 0 (counts nothing) when the registry
 * is full or the process counts nothing (moongate check). */
int mgw_ffi_metrics_waf(const char *acl, const char *rule, const char *action, uint32_t *out)
{
    const char *m[] = {acl, rule, action}, *q[] = {acl, action};
    *out = rule ? mgw_stat_series(&waf_matches, m) : mgw_stat_series(&waf_requests, q);
    return 0;
}

/* The series of the Lua authorizer name of API api for what: an outcome of
 * moongate.hooks' authorize ("allow", "deny", "unauthorized", "error") or a cache lookup's
 * ("hit", "miss"; 0 when cached is 0). Returns 0, or -1 for another what. */
int mgw_ffi_metrics_authorizer(const char *api, const char *name, const char *what, int cached,
                               uint32_t *out)
{
    static const char *const whats[MGW_AUTHZ_OUT__COUNT + 2] = {
        [MGW_AUTHZ_OUT_ALLOW] = "allow",
        [MGW_AUTHZ_OUT_DENY] = "deny",
        [MGW_AUTHZ_OUT_UNAUTHORIZED] = "unauthorized",
        [MGW_AUTHZ_OUT_ERROR] = "error",
        [MGW_AUTHZ_OUT__COUNT] = "hit",
        [MGW_AUTHZ_OUT__COUNT + 1] = "miss"};
    mgw_authz_stat_t s;
    mgw_metrics_authorizer(&s, api, name, cached);
    for (int i = 0; i < MGW_AUTHZ_OUT__COUNT + 2; i++) {
        if (strcmp(whats[i], what) != 0) continue;
        *out = i < MGW_AUTHZ_OUT__COUNT ? s.outcome[i] : i == MGW_AUTHZ_OUT__COUNT ? s.hit : s.miss;
        return 0;
    }
    return -1;
}

/* Adds one to series a and b in the calling worker's cells (0: the null series, which
 * counts nothing). Returns 0. */
int mgw_ffi_metrics_count(mgw_req_t *r, uint32_t a, uint32_t b)
{
    (void)r;
    mgw_stat_add(a, 1);
    mgw_stat_add(b, 1);
    return 0;
}
