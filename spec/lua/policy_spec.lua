-- moongate.policy: loading policies with the instruction budget, and the values
-- that travel to the workers.
local policy = require "moongate.policy"

local function load(src, name)
  return policy.load_source(src, name or "policies/t.lua")
end

describe("moongate.policy", function()
  describe("instrument", function()
    it("ticks in every loop body, function entry and before goto, on the same lines", function()
      local src = table.concat({
        "local function f(a, b)",
        "  while a < b do a = a + 1 end",
        "  for i = 1, 3 do b = b + i end",
        "  for k, v in pairs({}) do end",
        "  repeat a = a - 1 until a < 0",
        "  ::top:: if a < -5 then goto done end a = a - 1 goto top",
        "  ::done:: return function() return a end",
        "end",
      }, "\n")
      local out = policy.instrument(src)
      local _, ticks = out:gsub("__mgw_budget_tick%(%);?", "")
      assert.equal(8, ticks) -- f, while, for, for-in, repeat, 2 gotos, the closure
      local _, lines_in = src:gsub("\n", "")
      local _, lines_out = out:gsub("\n", "")
      assert.equal(lines_in, lines_out)
      assert.is_function(loadstring("local __mgw_budget_tick = function() end " .. out))
    end)

    it("leaves strings, long strings and comments alone", function()
      local src = [==[local s = "while do end" .. 'for x' .. [[repeat]] -- function() while
--[[ for i=1,2 do end ]] local t = { ["do"] = 1 } return s, t]==]
      assert.equal(src, policy.instrument(src))
    end)

    it("keeps `(` after a tick from calling its result", function()
      local mod = assert(load("local M = {} function M.f() local x = 0 for i = 1, 2 do (function() x = x + i end)() end return x end return M"))
      assert.equal(3, mod.f())
    end)
  end)

  describe("the budget", function()
    it("stops an endless loop, even once the JIT has compiled it", function()
      local mod = assert(load("local M = {}\nfunction M.spin()\n  while true do end\nend\nreturn M"))
      local ok, err = policy.run(100000, mod.spin)
      assert.is_false(ok)
      assert.equal("policies/t.lua:3: instruction budget exceeded", err)
    end)

    it("stops endless tail calls", function()
      local mod = assert(load("local M = {}\nlocal function f(n) return f(n + 1) end\nM.f = f\nreturn M"))
      local ok, err = policy.run(100000, mod.f, 1)
      assert.is_false(ok)
      assert.matches("instruction budget exceeded", err)
    end)

    it("cannot be swallowed by pcall in the policy", function()
      local mod = assert(load("local M = {}\nfunction M.f() while true do pcall(function() while true do end end) end end\nreturn M"))
      local ok, err = policy.run(100000, mod.f)
      assert.is_false(ok)
      assert.matches("instruction budget exceeded", err)
    end)

    it("does not limit helpers called outside a hook run", function()
      local mod = assert(load("local M = {} function M.sum(n) local s = 0 for i = 1, n do s = s + i end return s end return M"))
      assert.equal(50000005000000, mod.sum(10000000))
    end)

    it("lets a finite loop finish within the budget", function()
      local mod = assert(load("local M = {} function M.sum(n) local s = 0 for i = 1, n do s = s + i end return s end return M"))
      assert.same({ true, 5050 }, { policy.run(1000, mod.sum, 100) })
    end)
  end)

  describe("load_source", function()
    it("reports syntax errors with the file and line as written", function()
      local mod, err = load("local M = {}\nfunction M.f(\nreturn M", "policies/bad.lua")
      assert.is_nil(mod)
      assert.matches("^policies/bad.lua:3: ", err)
    end)

    it("requires a table of hooks", function()
      assert.same({ nil, "policies/t.lua: a policy must return a table of hook functions, got number" },
        { load("return 1") })
    end)

    it("refuses bytecode", function()
      local _, err = load(string.dump(function() end))
      assert.matches("precompiled bytecode is not accepted", err)
    end)

    it("keeps a policy's globals to itself", function()
      local a = assert(load("counter = 1 local M = {} function M.get() return counter end return M"))
      local b = assert(load("local M = {} function M.get() return counter end return M"))
      assert.equal(1, a.get())
      assert.is_nil(b.get())
      assert.is_nil(rawget(_G, "counter"))
    end)
  end)

  describe("serialize", function()
    it("round-trips plain values", function()
      local v = { a = 1, b = { 1.5, "x\n\"y\"", true }, [3] = false, big = 2 ^ 53, neg = -7 }
      assert.same(v, policy.deserialize(policy.serialize(v)))
    end)

    it("refuses functions and cycles", function()
      assert.same({ nil, "a function" }, { policy.serialize({ f = print }) })
      local t = {}
      t.t = t
      assert.same({ nil, "a table that contains itself" }, { policy.serialize(t) })
    end)
  end)
end)
