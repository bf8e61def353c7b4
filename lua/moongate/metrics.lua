-- moongate.metrics: the GET /metrics series of what Lua decides (README "Metrics"), the
-- Lua side of runtime/lua/ffi_metrics.c. When runtime.lua loads a generation, prepare_waf
-- and prepare_authorizer find the series of a use once (per worker) and keep their
-- handles in the use's tables; a request then counts with count(r, a, b): one FFI call,
-- no lookup. Handles are numbers; 0 is the null series, which counts nothing.
local ffi = require "ffi"

ffi.cdef [[
int mgw_ffi_metrics_waf(const char *acl, const char *rule, const char *action, uint32_t *out);
int mgw_ffi_metrics_authorizer(const char *api, const char *name, const char *what, int cached,
                               uint32_t *out);
int mgw_ffi_metrics_count(mgw_req_t *r, uint32_t a, uint32_t b);
]]

local C = ffi.C
local upper, tonumber, ipairs = string.upper, tonumber, ipairs

local M = {}

local out = ffi.new("uint32_t[1]")

local function waf_series(acl, rule, action)
  C.mgw_ffi_metrics_waf(acl, rule, action, out)
  return tonumber(out[0])
end

-- A web ACL use (moongate.hooks' shape; use.web_acl names it as the WAF log's webaclId
-- ends: apis.ID.stages.NAME.waf): use.stat maps a terminating action (ALLOW,
-- BLOCK, ERROR) to moongate_waf_requests_total's series; use.stat_default is the
-- default action's match (rule Default_Action, as the WAF log's terminatingRuleId), each
-- rule's rule.stat its matches with its action, and use.stat_counted maps a count rule's
-- name to its rule.stat (hooks.waf_run reports count rules by name).
function M.prepare_waf(use)
  local acl = use.web_acl or use.where
  use.stat = { ALLOW = waf_series(acl, nil, "ALLOW"), BLOCK = waf_series(acl, nil, "BLOCK"),
               ERROR = waf_series(acl, nil, "ERROR") }
  use.stat_default = waf_series(acl, "Default_Action",
    use.default_action == "block" and "BLOCK" or "ALLOW")
  use.stat_counted = {}
  for _, rule in ipairs(use.rules) do
    rule.stat = waf_series(acl, rule.name, upper(rule.action))
    if rule.action == "count" then
      use.stat_counted[rule.name] = rule.stat
    end
  end
end

-- An authorizer use: use.stat maps an outcome of hooks.authorize (allow, deny,
-- unauthorized, error) to its series, and use.stat_hit / use.stat_miss are its cache's
-- (0 without a cache).
function M.prepare_authorizer(use)
  local cached = (use.ttl or 0) > 0 and 1 or 0
  local function series(what)
    C.mgw_ffi_metrics_authorizer(use.api, use.name, what, cached, out)
    return tonumber(out[0])
  end
  use.stat = { allow = series("allow"), deny = series("deny"),
               unauthorized = series("unauthorized"), error = series("error") }
  use.stat_hit, use.stat_miss = series("hit"), series("miss")
end

-- Adds one to series a and b (numbers; 0 counts nothing) in the calling worker's cells.
function M.count(r, a, b)
  C.mgw_ffi_metrics_count(r, a, b)
end

return M
