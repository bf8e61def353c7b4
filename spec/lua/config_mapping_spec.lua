-- moongate.config: non-proxy http integrations (proxy = false) — every message a user
-- can get, and the use the workers receive.
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

write("policies/t.lua", [[
return {
  schema = { type = "record", fields = { n = { type = "integer", default = 1, description = "n" } } },
  transform = function(body) return body end,
}]])
write("policies/none.lua", "return {}")

local R = 'apis.pets.routes["GET /pets/{id}"].integration'

-- A configuration whose route GET /pets/{id} has integration i.
local function with(i, ws)
  return {
    apis = { pets = {
      stages = { prod = { variables = { backend = "http://127.0.0.1:9001" } } },
      routes = { ["GET /pets/{id}"] = { integration = i } },
    } },
  }
end

local function errors(c)
  local conf, errs = config.validate(c, { source = SOURCE, prefix = dir })
  assert.is_nil(conf)
  return errs
end

local function fails_with(expected, i)
  assert.same({ SOURCE .. ": " .. R .. expected }, errors(with(i)))
end

local function mapped(fields)
  local i = { type = "http", proxy = false, uri = "http://b.test/items/{id}" }
  for k, v in pairs(fields) do
    i[k] = v
  end
  return i
end

describe("moongate.config: non-proxy http integrations", function()
  it("accepts a full integration and hands the workers a mapping use", function()
    local conf, errs = config.validate(with(mapped({
      uri = "${stageVariables.backend}/items/{item}/{id}",
      request_parameters = {
        ["integration.request.path.item"] = "method.request.path.id",
        ["integration.request.querystring.page"] = "method.request.querystring.p",
        ["integration.request.header.X-Trace"] = "method.request.header.X-Trace",
        ["integration.request.header.x-id"] = "context.requestId",
        ["integration.request.header.x-stage"] = "stageVariables.backend",
        ["integration.request.header.x-lit"] = "'a b'",
        ["integration.request.header.x-body"] = "method.request.body",
      },
      request_transform = { policy = "policies/t.lua" },
      responses = {
        { selection_pattern = "5\\d{2}", status = 502,
          response_parameters = { ["method.response.header.X-Up"] = "integration.response.header.X-Up",
                                  ["method.response.header.x-all"] = "integration.response.body" } },
        { status = 200, transform = { policy = "policies/t.lua", config = { n = 2 } } },
      },
    })), { source = SOURCE, prefix = dir })
    assert.is_nil(errs)
    local route = conf.apis[1].routes[1]
    assert.same({ type = "lua", timeout_ms = 29000, use = 1 }, route.integration)
    local use = policy.deserialize(conf.lua_spec).uses[1]
    assert.are.equal("handle", use.hook)
    assert.is_true(use.mapping)
    assert.are.equal(R, use.where)
    assert.same({
      { target = "header", name = "x-body", source = { kind = "body" } },
      { target = "header", name = "x-id", source = { kind = "context", name = "requestId" } },
      { target = "header", name = "x-lit", source = { kind = "literal", value = "a b" } },
      { target = "header", name = "x-stage", source = { kind = "stage", name = "backend" } },
      { target = "header", name = "x-trace", source = { kind = "header", name = "x-trace" } },
      -- {id} is not mapped: it takes the route's path parameter of that name
      { target = "path", name = "id", source = { kind = "path", name = "id" } },
      { target = "path", name = "item", source = { kind = "path", name = "id" } },
      { target = "querystring", name = "page", source = { kind = "querystring", name = "p" } },
    }, use.params)
    assert.same({ { name = "x-all", source = { kind = "response_body" } },
                  { name = "x-up", source = { kind = "response_header", name = "x-up" } } }, use.responses[1].params)
    assert.are.equal("5\\d{2}", use.responses[1].pattern)
    assert.are.equal(R .. ".responses[2].transform", use.responses[2].transform.where)
    assert.same({ n = 2 }, use.responses[2].transform.conf)
    assert.same({ n = 1 }, use.request_transform.conf)
  end)

  it("gives a non-proxy integration without responses one default 200 response", function()
    local conf = assert(config.validate(with(mapped({})), { source = SOURCE, prefix = dir }))
    local use = policy.deserialize(conf.lua_spec).uses[1]
    assert.same({ { status = 200, params = {} } }, use.responses)
  end)

  it("leaves a proxy integration as it was", function()
    local conf = assert(config.validate(with({ type = "http", uri = "http://b.test/{id}" }),
      { source = SOURCE, prefix = dir }))
    assert.are.equal("http", conf.apis[1].routes[1].integration.type)
    assert.is_nil(conf.lua_spec)
  end)

  it("refuses mapping fields on a proxy integration", function()
    fails_with(".responses: needs proxy = false (a proxy integration passes requests and responses through)",
      { type = "http", uri = "http://b.test/", responses = { { status = 200 } } })
    fails_with(".request_parameters: needs proxy = false (a proxy integration passes requests and responses through)",
      { type = "http", proxy = true, uri = "http://b.test/",
        request_parameters = { ["integration.request.header.a"] = "'b'" } })
  end)

  it("names a bad request parameter target", function()
    fails_with('.request_parameters["integration.request.body.x"]: must be integration.request.header.NAME, '
      .. "integration.request.querystring.NAME or integration.request.path.NAME",
      mapped({ request_parameters = { ["integration.request.body.x"] = "'v'" } }))
    fails_with('.request_parameters["integration.request.header.a b"]: invalid header name: must be an HTTP token',
      mapped({ request_parameters = { ["integration.request.header.a b"] = "'v'" } }))
    fails_with('.request_parameters["integration.request.header.Host"]: is a header the gateway sets itself',
      mapped({ request_parameters = { ["integration.request.header.Host"] = "'v'" } }))
    fails_with('.request_parameters["integration.request.querystring.a&b"]: invalid parameter name: must match [A-Za-z0-9._~-]+',
      mapped({ request_parameters = { ["integration.request.querystring.a&b"] = "'v'" } }))
    fails_with('.request_parameters["integration.request.path.nope"]: the uri has no {nope} to fill',
      mapped({ request_parameters = { ["integration.request.path.nope"] = "'v'" } }))
  end)

  it("names a bad request parameter source", function()
    fails_with('.request_parameters["integration.request.header.a"]: must be method.request.body, '
      .. "method.request.body.JSONPATH, method.request.header.NAME, method.request.multivalueheader.NAME, "
      .. "method.request.multivaluequerystring.NAME, method.request.path.NAME, method.request.querystring.NAME, "
      .. [[context.NAME, stageVariables.NAME or a 'quoted literal', got "request.header.a"]],
      mapped({ request_parameters = { ["integration.request.header.a"] = "request.header.a" } }))
    fails_with('.request_parameters["integration.request.header.a"]: context.nope is not a $context variable',
      mapped({ request_parameters = { ["integration.request.header.a"] = "context.nope" } }))
    fails_with('.request_parameters["integration.request.header.a"]: method.request.header. needs a parameter name ([A-Za-z0-9._$-]+)',
      mapped({ request_parameters = { ["integration.request.header.a"] = "method.request.header." } }))
    fails_with('.request_parameters["integration.request.header.a"]: stageVariables needs a variable name ([A-Za-z0-9_]+)',
      mapped({ request_parameters = { ["integration.request.header.a"] = "stageVariables.a-b" } }))
    fails_with('.request_parameters["integration.request.header.a"]: must not contain CR, LF or NUL',
      mapped({ request_parameters = { ["integration.request.header.a"] = "'a\nb'" } }))
    fails_with('.request_parameters["integration.request.header.a"]: method.request.path.pid is not a path parameter of the route',
      mapped({ request_parameters = { ["integration.request.header.a"] = "method.request.path.pid" } }))
  end)

  it("checks the uri against the mapped path parameters", function()
    fails_with(".uri: {item} is not a path parameter of the route", mapped({ uri = "http://b.test/{item}" }))
    assert(config.validate(with(mapped({ uri = "http://b.test/{item}",
      request_parameters = { ["integration.request.path.item"] = "'x'" } })), { source = SOURCE, prefix = dir }))
  end)

  it("names a bad integration response", function()
    fails_with(".responses[1].selection_pattern: invalid regular expression at offset 3: missing closing parenthesis",
      mapped({ responses = { { selection_pattern = "5(d", status = 502 } } }))
    fails_with(".responses[1].status: is required", mapped({ responses = { { selection_pattern = "5\\d{2}" } } }))
    fails_with(".responses[1].status: must be an integer between 100 and 599, got 99",
      mapped({ responses = { { status = 99 } } }))
    fails_with(".responses[3]: responses[1] is the default already (no selection_pattern): only one may be",
      mapped({ responses = { { status = 200 }, { selection_pattern = "4\\d\\d", status = 400 }, { status = 201 } } }))
    fails_with('.responses[1].response_parameters["method.request.header.a"]: must be method.response.header.NAME',
      mapped({ responses = { { status = 200, response_parameters = { ["method.request.header.a"] = "'b'" } } } }))
    fails_with('.responses[1].response_parameters["method.response.header.a"]: must be integration.response.body, '
      .. "integration.response.body.JSONPATH, integration.response.header.NAME, "
      .. "integration.response.multivalueheader.NAME, context.NAME, stageVariables.NAME or a 'quoted literal', got "
      .. '"method.request.header.a"',
      mapped({ responses = { { status = 200, response_parameters = { ["method.response.header.a"] = "method.request.header.a" } } } }))
  end)

  it("names a transform policy without a transform function, or a bad config", function()
    fails_with('.request_transform.policy: "policies/none.lua" has no transform function, which a body transform needs',
      mapped({ request_transform = { policy = "policies/none.lua" } }))
    fails_with(".responses[1].transform.config.n: must be an integer, got \"x\"",
      mapped({ responses = { { status = 200, transform = { policy = "policies/t.lua", config = { n = "x" } } } } }))
  end)

  it("refuses proxy = false on websocket APIs", function()
    local errs = errors({
      apis = { chat = {
        protocol = "websocket", route_selection_expression = "$request.body.action",
        stages = { prod = {} },
        routes = { send = { integration = { type = "http", proxy = false, uri = "http://b.test/" } } },
      } },
    })
    assert.same({ SOURCE .. ": apis.chat.routes.send.integration.proxy: must be true on websocket APIs" }, errs)
  end)
end)
