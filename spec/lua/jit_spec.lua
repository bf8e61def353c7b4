-- Policies run JIT-compiled (STYLE.md rule 18): each hot path, driven a few hundred
-- times through the kit (the same hooks.lua code the gateway runs), must compile
-- without a single trace abort. An abort names the function, line and reason.
local testing = require "moongate.testing"
local vmdef = require "jit.vmdef"
local jutil = require "jit.util"

local function where(func, pc)
  local info = jutil.funcinfo(func, pc)
  return (info.source or "?"):gsub("^@", "") .. ":" .. tostring(info.currentline or info.linedefined or "?")
end

-- Trace aborts that only shape traces (the JIT retries elsewhere), as opposed to
-- code it cannot compile ("NYI: ...").
local BENIGN = {
  ["NYI: return to lower frame"] = true,
}

-- Runs fn n times under jit.attach. Returns the aborts that mean uncompilable code,
-- and the number of traces completed.
local function trace(fn, n)
  fn() -- the first call loads the policy and validates its configuration: not hot
  jit.flush()
  local bad, compiled = {}, 0
  local function on_trace(what, _, func, pc, otr, oex)
    if what == "abort" then
      local reason = vmdef.traceerr[otr] or tostring(otr)
      if type(oex) == "number" and reason:find("%%d") then
        reason = reason:format(oex)
      elseif oex ~= nil and reason:find("%%s") then
        reason = reason:format(type(oex) == "number" and (vmdef.ffnames[oex] or oex) or tostring(oex))
      end
      if reason:find("^NYI") and not BENIGN[reason] then
        bad[#bad + 1] = where(func, pc) .. ": " .. reason
      end
    elseif what == "stop" then
      compiled = compiled + 1
    end
  end
  jit.attach(on_trace, "trace")
  local ok, err = pcall(function()
    for _ = 1, n do
      fn()
    end
  end)
  jit.attach(on_trace)
  assert(ok, err)
  return bad, compiled
end

-- Fails on an uncompilable construct anywhere in the hot path (the policy's hook
-- is inlined into the traces of the loop that drives it), or when nothing compiled.
local function compiles(policy_file, fn)
  local bad, compiled = trace(fn, 500)
  assert(#bad == 0, policy_file .. ": trace aborts:\n  " .. table.concat(bad, "\n  "))
  assert(compiled > 0, policy_file .. ": no trace was compiled")
end

describe("JIT-compiled hot paths", function()
  it("waf/ip_set: matching an address against CIDR blocks", function()
    local rules = { { policy = "policies/waf/ip_set.lua", action = "block",
      config = { cidrs = { "10.0.0.0/8", "2001:db8::/32", "192.0.2.0/24" } } } }
    local v4, v6 = testing.request{ source_ip = "192.0.2.55" }, testing.request{ source_ip = "2001:db8::7" }
    compiles("policies/waf/ip_set.lua", function()
      assert(testing.waf(rules, v4).status == 403)
      assert(testing.waf(rules, v6).status == 403)
    end)
  end)

  it("authorizers/api_key_header: a key lookup", function()
    local req = testing.request{ headers = { ["x-api-key"] = "k-1" } }
    local conf = { keys = { ["k-1"] = "a" } }
    compiles("policies/authorizers/api_key_header.lua", function()
      assert(testing.authorize("policies/authorizers/api_key_header.lua", conf, req).status == 200)
    end)
  end)

  it("log/json: one line", function()
    local ctx = testing.context{ status = 200, request = testing.request{} }
    local conf = {}
    compiles("policies/log/json.lua", function()
      assert(testing.log("policies/log/json.lua", conf, ctx).line)
    end)
  end)

  it("routes/header: a selection", function()
    local req = testing.request{ headers = { ["x-v"] = "2" } }
    local conf = { header = "x-v", routes = { ["2"] = "GET /b" } }
    compiles("policies/routes/header.lua", function()
      assert(testing.select_route("policies/routes/header.lua", conf, req).route_key)
    end)
  end)

  it("examples/echo: event, handler and response", function()
    local req = testing.request{ method = "POST", path = "/echo/x?a=1", body = "{}", headers = { ["content-type"] = "application/json" } }
    local conf = {}
    compiles("policies/examples/echo.lua", function()
      assert(testing.handle("policies/examples/echo.lua", conf, req).status == 200)
    end)
  end)
end)
