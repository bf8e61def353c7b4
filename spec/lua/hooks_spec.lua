-- moongate.hooks.call: how the gateway and the kit call every hook function (fixed
-- arity: up to three arguments, the first two results; the budget; errors).
local hooks = require "moongate.hooks"
local policy = require "moongate.policy"

local mod = assert(policy.load_source(table.concat({
  "local M = {}",
  "function M.three(a, b, c) return a, b, c end",
  "function M.verdict(cert, conf) return conf.verdict, 'serial ' .. cert.serial end",
  "function M.fails(req) error('no ' .. req.what) end",
  "function M.spins() while true do end end",
  "return M",
}, "\n"), "policies/t.lua"))

describe("moongate.hooks.call", function()
  it("passes the hook its three arguments and returns its first two results", function()
    assert.same({ true, 1, "b" }, { hooks.call(1000, mod.three, 1, "b", "c") })
    assert.same({ true, "deny", "serial 7" },
      { hooks.call(1000, mod.verdict, { serial = 7 }, { verdict = "deny" }) })
  end)

  it("turns an error into false and { message, traceback } at the policy's line", function()
    local ok, err = hooks.call(1000, mod.fails, { what = "key" })
    assert.is_false(ok)
    assert.equal("policies/t.lua:4: no key", err.message)
    assert.truthy(err.traceback:find("policies/t.lua:4", 1, true))
  end)

  it("stops a hook at its budget and restores the budget of the caller", function()
    local before = policy.set_budget(50000)
    local ok, err = hooks.call(1000, mod.spins)
    assert.is_false(ok)
    assert.truthy(err.message:find(policy.BUDGET_EXCEEDED, 1, true))
    assert.equal(50000, policy.budget_left())
    policy.set_budget(before)
  end)
end)
