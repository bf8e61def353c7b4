-- moongate.config: request validation (apis[id].models; routes' request_parameters,
-- request_validator, request_models) — every message a user can get about it, and what
-- the gateway receives (the shaped apis[i].models and routes[i].validation).
local config = require "moongate.config"
local validation = require "moongate.config.validation"

local SOURCE = "conf/gateway.lua"
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir .. "/models")

local function write(name, data)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(data)
  f:close()
end
write("models/pets.json", '{"type":"array","items":{"type":"object"}}')

local PET = { type = "object", required = { "name" }, properties = { name = { type = "string" } } }

local function base(routes, models, protocol)
  return {
    apis = { pets = {
      protocol = protocol,
      route_selection_expression = protocol == "websocket" and "$request.body.action" or nil,
      stages = { ["$default"] = {} },
      models = models,
      routes = routes,
    } },
  }
end

local function fails_with(expected, routes, models, protocol)
  local out, errs = config.validate(base(routes, models, protocol), { source = SOURCE, prefix = dir })
  assert.is_nil(out)
  local want = {}
  for i, e in ipairs(expected) do
    want[i] = SOURCE .. ": " .. e
  end
  assert.same(want, errs)
end

local mock = { type = "mock" }

describe("moongate.config: request validation", function()
  teardown(function()
    os.execute("rm -rf " .. dir)
  end)

  it("checks request_parameters", function()
    fails_with({
      'apis.pets.routes["GET /a"].request_parameters["method.request.body.x"]: must be '
        .. "method.request.querystring.NAME, method.request.header.NAME or method.request.path.NAME",
      'apis.pets.routes["GET /a"].request_parameters["method.request.header.x y"]: invalid header name: '
        .. "must be an HTTP token",
      'apis.pets.routes["GET /a"].request_parameters["method.request.path.a-b"]: invalid path parameter '
        .. "name: must match [A-Za-z0-9_]+",
      'apis.pets.routes["GET /a"].request_parameters["method.request.path.id"]: {id} is not a path '
        .. "parameter of the route",
      'apis.pets.routes["GET /a"].request_parameters["method.request.querystring.a&b"]: invalid query string '
        .. 'parameter name: at most 128 characters, no control characters, spaces or any of " \\ & = # % +',
      'apis.pets.routes["GET /a"].request_parameters["method.request.querystring.p"]: must be a boolean, '
        .. 'got "yes"',
    }, {
      ["GET /a"] = { integration = mock, request_validator = "params", request_parameters = {
        ["method.request.body.x"] = true,
        ["method.request.header.x y"] = true,
        ["method.request.path.a-b"] = true,
        ["method.request.querystring.a&b"] = true,
        ["method.request.querystring.p"] = "yes",
        ["method.request.path.id"] = true,
      } },
    })
  end)

  it("checks request_validator and request_models", function()
    fails_with({
      'apis.pets.routes["GET /a"].request_validator: must be one of "none", "params", "body", "all", '
        .. 'got "both" (did you mean "body"?)',
      'apis.pets.routes["GET /b"].request_models.json: must be a media type such as "application/json",'
        .. ' or "$default"',
      'apis.pets.routes["GET /c"].request_models["application/json"]: names no model of this API ("Pat")'
        .. ' (did you mean "Pet"?)',
      'apis.pets.routes["GET /d"].request_models["application/json"]: duplicate content type (same as '
        .. '"Application/JSON")',
    }, {
      ["GET /a"] = { integration = mock, request_validator = "both" },
      ["GET /b"] = { integration = mock, request_models = { json = "Pet" } },
      ["GET /c"] = { integration = mock, request_models = { ["application/json"] = "Pat" } },
      ["GET /d"] = { integration = mock, request_models = { ["Application/JSON"] = "Pet", ["application/json"] = "Pet" } },
    }, { Pet = { schema = PET } })
  end)

  it("checks models", function()
    fails_with({
      'apis.pets.models.a: needs either schema (a Lua table) or schema_file (a JSON file), not both',
      'apis.pets.models.b: needs either schema (a Lua table) or schema_file (a JSON file), not both',
      'apis.pets.models.c.schema: must be a table (a JSON schema), got "x"',
      'apis.pets.models.d.schema_file: file "' .. dir .. '/models/missing.json" cannot be read',
      'apis.pets.models.e.schema: at /properties/a: a table must be a list (keys 1..n) or have only string'
        .. " keys",
      'apis.pets.models.f.schema: at /enum/0: a function is no JSON value',
      'apis.pets.models.i.kind: unknown key',
      'apis.pets.models["g-h"]: invalid model name: must be alphanumeric',
    }, { ["GET /a"] = { integration = mock } }, {
      a = {},
      b = { schema = PET, schema_file = "models/pets.json" },
      c = { schema = "x" },
      d = { schema_file = "models/missing.json" },
      e = { schema = { properties = { a = { 1, x = 2 } } } },
      f = { schema = { enum = { print } } },
      ["g-h"] = { schema = PET },
      i = { schema = PET, kind = "x" },
    })
  end)

  it("is not for websocket APIs", function()
    fails_with({
      'apis.pets.routes["$default"].request_models: is not for websocket APIs (request validation is for'
        .. " http APIs)",
      'apis.pets.routes["$default"].request_validator: is not for websocket APIs (request validation is'
        .. " for http APIs)",
    }, {
      ["$default"] = { integration = mock, request_validator = "all", request_models = { ["$default"] = "Pet" } },
    }, { Pet = { schema = PET } }, "websocket")
  end)

  it("encodes Lua tables as JSON", function()
    assert.equal('{"a":[1,2.5,"x\\"",true],"b":{},"c":-3}', validation.encode({ a = { 1, 2.5, 'x"', true }, b = {}, c = -3 }))
    assert.same({ nil, "at /: NaN is no JSON number" }, { validation.encode(0 / 0) })
  end)

  it("gives the gateway the models and each route's validation, in AWS's order", function()
    local out = assert(config.validate(base({
      ["GET /pets/{id}"] = { integration = mock, request_validator = "all",
        request_parameters = {
          ["method.request.querystring.page"] = true,
          ["method.request.querystring.a"] = true,
          ["method.request.querystring.size"] = false,
          ["method.request.header.X-Trace"] = true,
          ["method.request.path.id"] = true,
        },
        request_models = { ["$default"] = "Pets", ["Application/JSON"] = "Pet", ["text/plain"] = "Pets" } },
      ["GET /plain"] = { integration = mock, request_models = { ["application/json"] = "Pet" } },
      ["GET /params"] = { integration = mock, request_validator = "params" },
    }, { Pet = { schema = PET }, Pets = { schema_file = "models/pets.json" } }),
      { source = SOURCE, prefix = dir }))
    local api = out.apis[1]
    assert.same({
      { name = "Pet", where = "apis.pets.models.Pet.schema",
        json = '{"properties":{"name":{"type":"string"}},"required":["name"],"type":"object"}' },
      { name = "Pets", where = "apis.pets.models.Pets.schema_file",
        json = '{"type":"array","items":{"type":"object"}}' },
    }, api.models)
    assert.equal("GET /params", api.routes[1].key)
    assert.same({ params = true, body = false, required = {}, models = {} }, api.routes[1].validation)
    assert.equal("GET /pets/{id}", api.routes[2].key)
    assert.same({
      params = true, body = true,
      required = {
        { kind = "header", name = "X-Trace" }, { kind = "path", name = "id" },
        { kind = "querystring", name = "a" }, { kind = "querystring", name = "page" },
      },
      models = {
        { content_type = "application/json", model = 1 }, { content_type = "text/plain", model = 2 },
        { content_type = "$default", model = 2 },
      },
    }, api.routes[2].validation)
    assert.equal("GET /plain", api.routes[3].key)
    assert.is_nil(api.routes[3].validation)
  end)
end)
