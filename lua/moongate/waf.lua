-- moongate.waf: the web ACL rules evaluated in C (README "Managed rules", "Rule
-- statements"), and the labels and custom responses of every rule. A managed rule or a
-- rule statement takes its place in the web ACL's chain (moongate.hooks) like a Lua
-- policy: its inspect makes one FFI call (runtime/lua/ffi_waf.c) that evaluates the
-- generation's compiled rule set or statement and says whether it matches; the rule's
-- action does the rest. M.kinds maps the rule field that names such a kind to its
-- module. They run only in the gateway: the busted kit has neither libmodsecurity nor
-- the statement compiler, so there inspect raises an error.
local ffi = require "ffi"
local request = require "moongate.request"

ffi.cdef [[
int mgw_ffi_waf_managed(mgw_req_t *r, int idx, const char **err);
int mgw_ffi_waf_statement(mgw_req_t *r, int idx, const char **err);
int mgw_ffi_waf_add_labels(mgw_req_t *r, const char *s, size_t n);
int mgw_ffi_waf_response(mgw_req_t *r, int idx);
]]

local C = ffi.C
local ffi_string, error = ffi.string, error
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

-- The inspect of a statement rule; conf is its use entry ({ statement = index }). A
-- match adds the rule's labels in C.
local function inspect_statement(_, conf)
  local st = current()
  if st == nil then
    error("rule statements run only in the gateway (the busted kit does not evaluate them: "
      .. "test them with an e2e spec)", 2)
  end
  local rc = C.mgw_ffi_waf_statement(st.slot.r, conf.statement, err_buf)
  while rc == 2 do
    wait(1) -- the request body
    rc = C.mgw_ffi_waf_statement(st.slot.r, conf.statement, err_buf)
  end
  if rc < 0 then
    error(ffi_string(err_buf[0]), 0)
  end
  return rc == 1
end

M.statement = { inspect = inspect_statement }

-- The kinds evaluated in C, by the rule field that names them.
M.kinds = { managed = M.managed, statement = M.statement }

-- Adds the labels ("a,b", a policy or managed rule's that matched) to the request;
-- nothing outside the gateway.
function M.add_labels(labels)
  local st = current()
  if st ~= nil then
    C.mgw_ffi_waf_add_labels(st.slot.r, labels, #labels)
  end
end

-- The custom response (its index) that a block answers.
function M.set_response(r, idx)
  C.mgw_ffi_waf_response(r, idx)
end

return M
