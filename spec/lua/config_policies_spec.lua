-- moongate.config: the configuration of Lua policies (WAF, authorizers, route
-- selection, Lua integrations, log policies, management, lua) — every message a
-- user can get, and what the workers receive.
local config = require "moongate.config"
local policy = require "moongate.policy"

local SOURCE = "conf/gateway.lua"
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir .. "/policies")

local function write(name, src)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(src)
  f:close()
end

write("policies/all.lua", [[
local M = {}
M.schema = { type = "record", fields = { level = { type = "integer", between = { 1, 3 }, default = 1, description = "a level" } } }
function M.inspect() return false end
function M.authorize() return { isAuthorized = true } end
function M.select_route() return nil end
function M.handle() return {} end
function M.log() return nil end
return M
]])
write("policies/none.lua", "return {}")
write("policies/syntax.lua", "local M = {\nreturn M")
write("policies/prepare.lua", "return { inspect = function() end, prepare = function(conf) error('no good', 0) end }")

local function base(edit)
  local c = {
    apis = { pets = {
      stages = { ["$default"] = {} },
      routes = { ["GET /pets"] = { integration = { type = "mock" } } },
    } },
  }
  if edit then
    edit(c, c.apis.pets)
  end
  return c
end

local function errors_of(c)
  local out, errs = config.validate(c, { source = SOURCE, prefix = dir })
  assert.is_nil(out)
  return errs
end

local function fails_with(expected, edit)
  local want = {}
  for i, e in ipairs(type(expected) == "table" and expected or { expected }) do
    want[i] = SOURCE .. ": " .. e
  end
  assert.same(want, errors_of(base(edit)))
end

describe("moongate.config: Lua policies", function()
  teardown(function()
    os.execute("rm -rf " .. dir)
  end)

  describe("policy files", function()
    it("must exist, compile, and have the hook their use needs", function()
      fails_with('apis.pets.route_selection.policy: cannot read "' .. dir .. '/policies/nope.lua": '
        .. dir .. "/policies/nope.lua: No such file or directory", function(_, a)
        a.route_selection = { policy = "policies/nope.lua" }
      end)
      fails_with("apis.pets.route_selection.policy: policies/syntax.lua:2: unexpected symbol near 'return'",
        function(_, a) a.route_selection = { policy = "policies/syntax.lua" } end)
      fails_with('apis.pets.route_selection.policy: "policies/none.lua" has no select_route function, which a route selector needs',
        function(_, a) a.route_selection = { policy = "policies/none.lua" } end)
    end)

    it("validate config against the policy's schema, and run prepare", function()
      fails_with("apis.pets.route_selection.config.level: must be an integer between 1 and 3, got 7", function(_, a)
        a.route_selection = { policy = "policies/all.lua", config = { level = 7 } }
      end)
      fails_with('apis.pets.route_selection.config.levle: unknown key (did you mean "level"?)', function(_, a)
        a.route_selection = { policy = "policies/all.lua", config = { levle = 2 } }
      end)
      fails_with("apis.pets.route_selection.config: must be a table, got 5", function(_, a)
        a.route_selection = { policy = "policies/all.lua", config = 5 }
      end)
      fails_with("apis.pets.stages[\"$default\"].waf.rules[1].config: no good", function(_, a)
        a.stages["$default"].waf = { rules = { { priority = 1, policy = "policies/prepare.lua", action = "block" } } }
      end)
    end)
  end)

  describe("waf", function()
    it("needs unique priorities and names, and a known action", function()
      fails_with({
        'apis.pets.stages["$default"].waf.rules[2].name: "all" is also rules[1]\'s name (give rules distinct names)',
        'apis.pets.stages["$default"].waf.rules[2].priority: priority 1 is also rules[1]\'s (priorities must be unique)',
        'apis.pets.stages["$default"].waf.rules[3].action: must be one of "allow", "block", "count", got "deny"',
      }, function(_, a)
        a.stages["$default"].waf = { rules = {
          { priority = 1, policy = "policies/all.lua", action = "block" },
          { priority = 1, policy = "policies/all.lua", action = "count" },
          { name = "x", priority = 2, policy = "policies/all.lua", action = "deny" },
        } }
      end)
    end)
  end)

  describe("authorizers", function()
    it("check identity sources, kinds, ttl and token patterns", function()
      fails_with({
        'apis.pets.authorizers.a.identity_sources: must not be empty when ttl > 0 (the cache is keyed by them); set ttl = 0 to call the authorizer on every request',
        'apis.pets.authorizers.b.identity_sources: a TOKEN authorizer takes exactly one identity source',
        'apis.pets.authorizers.c.identity_sources[1]: must be $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME, got "header.x"',
        'apis.pets.authorizers.d.identity_sources[1]: unknown variable $context.nope',
        'apis.pets.authorizers.e.token_pattern: invalid Lua pattern: malformed pattern (ends with \'%\')',
        'apis.pets.authorizers.f.token_pattern: is for kind = "TOKEN" authorizers',
        'apis.pets.authorizers.g.ttl: must be an integer between 0 and 3600, got 4000',
        'apis.pets.authorizers.h.type: must be one of "jwt", "lua", got "jwx" (did you mean "jwt"?)',
      }, function(_, a)
        local p = "policies/all.lua"
        a.authorizers = {
          a = { type = "lua", policy = p },
          b = { type = "lua", kind = "TOKEN", policy = p, identity_sources = { "$request.header.a", "$request.header.b" } },
          c = { type = "lua", policy = p, ttl = 0, identity_sources = { "header.x" } },
          d = { type = "lua", policy = p, identity_sources = { "$context.nope" } },
          e = { type = "lua", kind = "TOKEN", policy = p, token_pattern = "abc%" },
          f = { type = "lua", policy = p, ttl = 0, token_pattern = "^B" },
          g = { type = "lua", policy = p, ttl = 4000, identity_sources = { "$request.header.a" } },
          h = { type = "jwx" },
        }
      end)
    end)

    it("must exist for the routes that name them; scopes need one", function()
      fails_with({
        'apis.pets.routes["GET /a"].authorizer: no authorizer "kyes" (did you mean "keys"?)',
        'apis.pets.routes["GET /b"].scopes: scopes need an authorizer on the route',
      }, function(_, a)
        a.authorizers = { keys = { type = "lua", policy = "policies/all.lua", ttl = 0 } }
        a.routes["GET /a"] = { authorizer = "kyes", integration = { type = "mock" } }
        a.routes["GET /b"] = { scopes = { "x" }, integration = { type = "mock" } }
      end)
    end)
  end)

  describe("access_log", function()
    it("needs a format unless a log policy writes the lines", function()
      fails_with('apis.pets.stages["$default"].access_log.format: is required (unless a log policy writes the lines)',
        function(_, a) a.stages["$default"].access_log = { path = dir .. "/a.log" } end)
      local out = config.validate(base(function(_, a)
        a.stages["$default"].access_log = { path = dir .. "/a.log", policy = "policies/all.lua" }
      end), { source = SOURCE, prefix = dir })
      assert.equal(1, out.apis[1].stages[1].access_log.policy)
    end)
  end)

  describe("top level", function()
    it("checks the management listener and lua settings", function()
      assert.same({
        SOURCE .. ": lua.instruction_budget: must be an integer between 1000 and 10000000000, got 10",
        SOURCE .. ": management.port: 127.0.0.1:8080 is also listen[1]",
      }, errors_of(base(function(c)
        c.listen = { { port = 8080 } }
        c.management = { port = 8080 }
        c.lua = { instruction_budget = 10 }
      end)))
    end)

    it("takes management.token_file as given, resolved against the prefix", function()
      local out = assert(config.validate(base(function(c)
        c.management = { port = 9180, token_file = "secrets/mgmt.token" }
      end), { source = SOURCE, prefix = dir }))
      assert.same({ address = "127.0.0.1", port = 9180, token_file = dir .. "/secrets/mgmt.token",
        token_generated = false }, out.management)
      assert.same({ SOURCE .. ': management.token_file: must not be empty' }, errors_of(base(function(c)
        c.management = { port = 9180, token_file = "" }
      end)))
    end)
  end)

  describe("what the workers receive", function()
    it("numbers the uses and ships the policies with their validated configs", function()
      local out = assert(config.validate(base(function(c, a)
        c.management = { port = 9180 }
        c.watch = true
        c.lua = { instruction_budget = 5000 }
        a.route_selection = { policy = "policies/all.lua" }
        a.authorizers = { k = { type = "lua", policy = "policies/all.lua", identity_sources = { "$request.header.k" }, config = { level = 2 } } }
        a.routes["GET /pets"] = { authorizer = "k", scopes = { "s1" }, integration = { type = "lua", handler = "policies/all.lua" } }
        a.stages["$default"].waf = { default_action = "block", rules = {
          { priority = 9, policy = "policies/all.lua", action = "count", name = "late" },
          { priority = 2, policy = "policies/all.lua", action = "allow", name = "early", config = { level = 3 } } } }
      end), { source = SOURCE, prefix = dir }))
      -- the token file defaults to state_dir/management.token, under the prefix
      assert.same({ address = "127.0.0.1", port = 9180, token_file = dir .. "/state/management.token",
        token_generated = true }, out.management)
      assert.is_true(out.watch)
      assert.same({ SOURCE, dir .. "/policies/all.lua" }, out.watch_files)
      local api = out.apis[1]
      assert.equal(1, api.selector)
      assert.equal(2, api.routes[1].authorizer)
      assert.same({ type = "lua", timeout_ms = 29000, use = 3 }, api.routes[1].integration)
      assert.equal(4, api.stages[1].waf)
      local spec = policy.deserialize(out.lua_spec)
      assert.equal(5000, spec.budget)
      assert.equal(1, #spec.policies) -- one file, shipped once
      assert.equal("policies/all.lua", spec.policies[1].name)
      assert.same({ hook = "authorize", api = "pets", name = "k", where = "apis.pets.authorizers.k", policy = 1,
        conf = { level = 2 }, kind = "REQUEST", identity_sources = { "$request.header.k" }, ttl = 300,
        scopes = { "s1" } }, spec.uses[2])
      assert.same({ "early", "late" }, { spec.uses[4].rules[1].name, spec.uses[4].rules[2].name })
      assert.same({ level = 3 }, spec.uses[4].rules[1].conf)
      assert.same({ level = 1 }, spec.uses[4].rules[2].conf)
      assert.equal("block", spec.uses[4].default_action)
      assert.same({ ["GET /pets"] = 0 }, spec.uses[1].routes)
    end)

    it("ships no spec when no policy is used", function()
      local out = assert(config.validate(base(), { source = SOURCE, prefix = dir }))
      assert.is_nil(out.lua_spec)
    end)
  end)
end)
