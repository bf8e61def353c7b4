-- moongate.config: response caching (stages' cache, route_settings[key].cache, routes'
-- and integrations' cache_key_parameters) — every message a user can get about it, and
-- what the gateway receives (the shaped stages[i].cache).
local config = require "moongate.config"

local SOURCE = "conf/gateway.lua"
local mock = { type = "mock" }

local function base(stage, routes, protocol)
  return {
    api_keys = { ops = { value = "ops-key-aaaaaaaaaaaaaaaaaaaa" } },
    apis = { pets = {
      protocol = protocol,
      route_selection_expression = protocol == "websocket" and "$request.body.action" or nil,
      stages = { prod = stage },
      routes = routes or { ["GET /pets/{id}"] = { integration = mock } },
    } },
  }
end

local function fails_with(expected, stage, routes, protocol)
  local out, errs = config.validate(base(stage, routes, protocol), { source = SOURCE })
  assert.is_nil(out)
  local want = {}
  for i, e in ipairs(expected) do
    want[i] = SOURCE .. ": " .. e
  end
  assert.same(want, errs)
end

local function shaped(stage, routes, protocol)
  local out, errs = config.validate(base(stage, routes, protocol), { source = SOURCE })
  assert.is_nil(errs)
  return out.apis[1].stages[1].cache, out
end

describe("moongate.config: response caching", function()
  it("checks the stage's cache fields", function()
    fails_with({
      "apis.pets.stages.prod.cache.size_mb: must be an integer between 1 and 65536, got 0",
      "apis.pets.stages.prod.cache.ttl: must be an integer between 0 and 3600, got 4000",
      'apis.pets.stages.prod.cache.unauthorized_cache_control: must be one of "FAIL_WITH_403", '
        .. '"SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER", got "FAIL" (did you mean "FAIL_WITH_403"?)',
    }, { cache = { size_mb = 0, ttl = 4000, unauthorized_cache_control = "FAIL" } })
  end)

  it("checks route_settings[key].cache", function()
    fails_with({
      'apis.pets.stages.prod.route_settings["GET /pets/{id}"].cache.ttl: must be an integer between 0 and 3600, got -1',
    }, { cache = {}, route_settings = { ["GET /pets/{id}"] = { cache = { ttl = -1 } } } })
    fails_with({
      'apis.pets.stages.prod.route_settings["GET /pets/{id}"].cache: the stage has no cache (set stages.prod.cache)',
    }, { route_settings = { ["GET /pets/{id}"] = { cache = { enabled = true } } } })
  end)

  it("checks cache_key_parameters on routes and integrations", function()
    fails_with({
      'apis.pets.routes["GET /a"].cache_key_parameters[1]: must be method.request.querystring.NAME, '
        .. "method.request.header.NAME or method.request.path.NAME",
      'apis.pets.routes["GET /b/{id}"].integration.cache_key_parameters: {nope} is not a path parameter of the route',
    }, { cache = {} }, {
      ["GET /a"] = { integration = mock, cache_key_parameters = { "method.request.body.x" } },
      ["GET /b/{id}"] = { integration = { type = "http", uri = "http://127.0.0.1:1/x",
        cache_key_parameters = { "method.request.path.nope" } } },
    })
  end)

  it("refuses a cache on WebSocket APIs", function()
    fails_with({
      "apis.pets.stages.prod.cache: WebSocket APIs have no response cache",
    }, { cache = {} }, { ["$default"] = { integration = mock } }, "websocket")
  end)

  it("shapes the stage's cache: defaults, per-route modes, TTLs and key parameters", function()
    local c = shaped({ cache = { invalidate_keys = { "ops" } }, route_settings = {
      ["POST /pets"] = { cache = { enabled = true, ttl = 60 } },
      ["GET /off"] = { cache = { enabled = false } },
      ["GET /zero"] = { cache = { ttl = 0 } },
    } }, {
      ["GET /pets/{id}"] = { integration = mock, cache_key_parameters = {
        "method.request.querystring.page", "method.request.header.X-Tenant", "method.request.path.id" } },
      ["POST /pets"] = { integration = mock },
      ["GET /off"] = { integration = mock },
      ["GET /zero"] = { integration = mock },
    })
    assert.equal(64, c.size_mb)
    assert.is_true(c.require_authorization)
    assert.equal("SUCCEED_WITH_RESPONSE_HEADER", c.unauthorized)
    assert.same({ "ops" }, c.invalidate_keys)
    -- routes in key order: GET /off, GET /pets/{id}, GET /zero, POST /pets
    assert.same({ mode = "off", ttl = 300, params = {} }, c.routes[1])
    assert.same({ mode = "get", ttl = 300, params = {
      { kind = "header", name = "x-tenant" }, { kind = "querystring", name = "page" } } }, c.routes[2])
    assert.same({ mode = "off", ttl = 0, params = {} }, c.routes[3])
    assert.same({ mode = "all", ttl = 60, params = {} }, c.routes[4])
    -- the store's name changes with the key parameters, not with TTLs
    local again = shaped({ cache = { ttl = 10 } }, {
      ["GET /pets/{id}"] = { integration = mock, cache_key_parameters = {
        "method.request.header.x-tenant", "method.request.querystring.page" } },
      ["POST /pets"] = { integration = mock }, ["GET /off"] = { integration = mock },
      ["GET /zero"] = { integration = mock } })
    assert.equal(c.name, again.name)
    local other = shaped({ cache = {} }, {
      ["GET /pets/{id}"] = { integration = mock }, ["POST /pets"] = { integration = mock },
      ["GET /off"] = { integration = mock }, ["GET /zero"] = { integration = mock } })
    assert.are_not.equal(c.name, other.name)
  end)

  it("leaves stages without a cache, or with enabled = false, uncached", function()
    assert.is_nil(shaped({}))
    assert.is_nil(shaped({ cache = { enabled = false } }))
  end)
end)
