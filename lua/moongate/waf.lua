-- moongate.waf: the web ACL rules evaluated in C (README "Managed rules", "Rule
-- statements", "Rate-based rules"), and the labels and custom responses of every rule.
-- Such a rule takes its place in the web ACL's chain (moongate.hooks) like a Lua
-- policy: its inspect makes one FFI call (runtime/lua/ffi_waf.c) that evaluates the
-- generation's compiled rule set, statement or rate counter and says whether it
-- matches; the rule's action does the rest. M.kinds maps the rule field that names such
-- a kind to its module. They run only in the gateway: the busted kit has neither
-- libmodsecurity, the statement compiler nor the shared counters, so there inspect
-- raises an error.
local ffi = require "ffi"
local request = require "moongate.request"

ffi.cdef [[
int mgw_ffi_waf_managed(mgw_req_t *r, int idx, const char **err);
int mgw_ffi_waf_statement(mgw_req_t *r, int idx, const char **err);
int mgw_ffi_waf_rate(mgw_req_t *r, int idx, const char **err);
int mgw_ffi_waf_add_labels(mgw_req_t *r, const char *s, size_t n);
int mgw_ffi_waf_response(mgw_req_t *r, int idx);
]]

local C = ffi.C
local ffi_string, error, rawget, type = ffi.string, error, rawget, type
local wait = request.wait

local M = {}

local err_buf = ffi.new("const char *[1]")

-- The C request of req, nil outside the gateway. It comes from the request object
-- itself (its slot, moongate.request), not from request.current(): coroutine.running()
-- there kept the web ACL's trace from being compiled whole (a rate-based rule cost
-- 8,000 instructions a request instead of 1,900).
local function c_request(req)
  local slot = rawget(req, 1)
  if type(slot) ~= "cdata" or slot.serial ~= rawget(req, 2) then
    return nil
  end
  return slot.r
end

-- A kind evaluated in C by the function named name: (r, index, err) answers 0 (no
-- match), 1 (match), 2 (wait for the request body, then call again) or -1 with err;
-- conf is the rule's use entry, whose field names the index. The function is looked up
-- on first use: the busted kit loads this module without the gateway's symbols.
local function c_kind(name, field, outside)
  local eval
  return { inspect = function(req, conf)
    local r = c_request(req)
    if r == nil then
      error(outside, 2)
    end
    eval = eval or C[name]
    local idx = conf[field]
    local rc = eval(r, idx, err_buf)
    while rc == 2 do
      wait(1) -- the request body
      rc = eval(r, idx, err_buf)
    end
    if rc < 0 then
      error(ffi_string(err_buf[0]), 0)
    end
    return rc == 1
  end }
end

M.managed = c_kind("mgw_ffi_waf_managed", "managed",
  "managed rules run only in the gateway (the busted kit has no libmodsecurity)")
-- A statement's match adds the rule's labels in C.
M.statement = c_kind("mgw_ffi_waf_statement", "statement",
  "rule statements run only in the gateway (the busted kit does not evaluate them: test them "
    .. "with an e2e spec)")
-- The request is counted in the counters every worker shares.
M.rate_based = c_kind("mgw_ffi_waf_rate", "rate",
  "rate-based rules run only in the gateway (the busted kit has no shared counters)")

-- The kinds evaluated in C, by the rule field that names them in the use entry.
M.kinds = { managed = M.managed, statement = M.statement, rate = M.rate_based }

-- Adds the labels ("a,b", a policy, managed or rate-based rule's that matched) to req;
-- nothing outside the gateway.
function M.add_labels(req, labels)
  local r = c_request(req)
  if r ~= nil then
    C.mgw_ffi_waf_add_labels(r, labels, #labels)
  end
end

-- The custom response (its index) that a block answers.
function M.set_response(r, idx)
  C.mgw_ffi_waf_response(r, idx)
end

return M
