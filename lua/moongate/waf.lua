-- moongate.waf: the rules of web ACLs evaluated in C: managed rules (README "Managed
-- rules") and rate-based rules (README "Rate-based rules"). A managed rule
-- takes its place in the web ACL's chain (moongate.hooks) like a Lua policy: its inspect
-- runs the generation's rule set in C (runtime/lua/ffi_waf.c, runtime/conf/modsec.c)
-- and says whether the rule set blocks the request; the rule's action (block or count)
-- does the rest. Managed rules run only in the gateway: the busted kit has no
-- libmodsecurity, so there inspect raises an error.
local ffi = require "ffi"
local request = require "moongate.request"

ffi.cdef [[
int mgw_ffi_waf_managed(mgw_req_t *r, int idx, const char **err);
int mgw_ffi_waf_rate(mgw_req_t *r, int idx, const char **err);
]]

local C = ffi.C
local ffi_string, error, rawget, type = ffi.string, error, rawget, type
local current, wait = request.current, request.wait

local M = {}

local err_buf = ffi.new("const char *[1]")

-- The inspect of a managed rule; conf is its use entry ({ managed = index }).
local function inspect(_, conf)
  local st = current()
  if st == nil then
    error("managed rules run only in the gateway (the busted kit has no libmodsecurity)", 2)
  end
  local rc = C.mgw_ffi_waf_managed(st.slot.r, conf.managed, err_buf)
  while rc == 2 do
    wait(1) -- the request body
    rc = C.mgw_ffi_waf_managed(st.slot.r, conf.managed, err_buf)
  end
  if rc < 0 then
    error(ffi_string(err_buf[0]), 0)
  end
  return rc == 1
end

M.managed = { inspect = inspect }

-- The inspect of a rate-based rule (README "Rate-based rules"); conf is its use entry
-- ({ rate = index }). The request is counted in C, in the counters every worker shares.
-- The C request comes from the request object itself (its slot, moongate.request), not
-- from request.current(): coroutine.running() there kept the web ACL's trace from being
-- compiled whole (the rule cost 8,000 instructions a request instead of 1,900).
local function rate_inspect(req, conf)
  local slot = rawget(req, 1)
  if type(slot) ~= "cdata" or slot.serial ~= rawget(req, 2) then
    error("rate-based rules run only in the gateway (the busted kit has no shared counters)", 2)
  end
  local rc = C.mgw_ffi_waf_rate(slot.r, conf.rate, err_buf)
  if rc < 0 then
    error(ffi_string(err_buf[0]), 0)
  end
  return rc == 1
end

M.rate_based = { inspect = rate_inspect }

return M
