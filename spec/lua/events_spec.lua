-- moongate.events: the payload format 1.0 event and response (REST APIs' Lambda proxy
-- shape; HTTP APIs with payload_format_version = "1.0"), the 1.0 authorizer event, the
-- kit running 1.0 handlers as the gateway does, and payload_format_version in the
-- configuration. (The 2.0 and WebSocket events are checked where they always were:
-- testing_spec.lua, websocket_spec.lua.)
local events = require "moongate.events"
local hooks = require "moongate.hooks"
local testing = require "moongate.testing"
local policy = require "moongate.policy"
local config = require "moongate.config"
local cjson = require "cjson"

local function request(t)
  local r = {
    method = "POST", path = "/prod/pets/7?tag=a&tag=b&page=2&flag", route_key = "POST /pets/{id}",
    headers = { host = "api.example.com", ["user-agent"] = "spec/1.0", ["x-multi"] = { "one", "two" },
                cookie = "s=1" },
    path_params = { id = "7" }, stage_variables = { color = "blue" }, stage = "prod", api_id = "pets",
    request_id = "rid-1", body = "hello", time = 1700000000123,
  }
  for k, v in pairs(t or {}) do
    r[k] = v
  end
  return testing.request(r)
end

describe("moongate.events payload format 1.0", function()
  it("builds the event of an HTTP API's 1.0 route", function()
    local e = events.v1(request())
    local rc = e.requestContext
    e.requestContext = nil
    assert.same({
      version = "1.0",
      resource = "/pets/{id}",
      path = "/prod/pets/7", -- HTTP APIs: the path as sent, stage included
      httpMethod = "POST",
      headers = { host = "api.example.com", ["user-agent"] = "spec/1.0", ["x-multi"] = "two", cookie = "s=1" },
      multiValueHeaders = { host = { "api.example.com" }, ["user-agent"] = { "spec/1.0" },
                            ["x-multi"] = { "one", "two" }, cookie = { "s=1" } },
      queryStringParameters = { tag = "b", page = "2", flag = "" },
      multiValueQueryStringParameters = { tag = { "a", "b" }, page = { "2" }, flag = { "" } },
      pathParameters = { id = "7" },
      stageVariables = { color = "blue" },
      body = "hello",
      isBase64Encoded = false,
    }, e)
    assert.same({
      accountId = "moongate", apiId = "pets", domainName = "api.example.com", domainPrefix = "api",
      extendedRequestId = "rid-1", httpMethod = "POST",
      identity = { sourceIp = "127.0.0.1", userAgent = "spec/1.0" },
      path = "/prod/pets/7", protocol = "HTTP/1.1", requestId = "rid-1",
      requestTime = "14/Nov/2023:22:13:20 +0000", requestTimeEpoch = 1700000000123,
      resourceId = rc.resourceId, resourcePath = "/pets/{id}", stage = "prod",
    }, rc)
    -- $context.resourceId: ten of [a-z0-9] from the API id and the path template, as C makes it
    assert.matches("^" .. string.rep("[a-z0-9]", 10) .. "$", rc.resourceId)
    assert.equal(rc.resourceId, events.v1(request{ path = "/prod/pets/8" }).requestContext.resourceId)
  end)

  it("shows a REST API's event without version and with the path below the stage", function()
    local e = events.v1(request(), true)
    assert.is_nil(e.version)
    assert.equal("/pets/7", e.path)
    assert.equal("/prod/pets/7", e.requestContext.path)
    assert.equal("/", events.v1(request{ path = "/prod" }, true).path)
    -- a custom domain's base path stays, as on AWS
    assert.equal("/v1/pets/7", events.v1(request{ path = "/v1/pets/7" }, true).path)
    assert.equal("/production/x", events.v1(request{ path = "/production/x" }, true).path)
  end)

  it("leaves out what the request does not have, and names the $default route", function()
    local e = events.v1(request{ path = "/x", route_key = "$default", headers = {}, body = "", path_params = {},
      stage_variables = {} })
    assert.equal("$default", e.resource)
    assert.equal("$default", e.requestContext.resourcePath)
    assert.matches("^" .. string.rep("[a-z0-9]", 10) .. "$", e.requestContext.resourceId)
    assert.are_not.equal(e.requestContext.resourceId, events.v1(request()).requestContext.resourceId)
    for _, k in ipairs({ "queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
      "stageVariables", "body" }) do
      assert.is_nil(e[k], k)
    end
    assert.same({}, e.headers)
    assert.is_false(e.isBase64Encoded)
    assert.equal("", e.requestContext.identity.userAgent)
  end)

  it("base64-encodes a body that is not UTF-8 text", function()
    local e = events.v1(request{ body = "\0\1\2\255" })
    assert.is_true(e.isBase64Encoded)
    assert.equal("AAEC/w==", e.body)
    assert.equal("\0\1\2\255", events.base64_decode(e.body))
  end)

  it("looks header names up in any case, and encodes them in lower case", function()
    local e = events.v1(request{ headers = { ["Content-Type"] = "text/plain" } })
    assert.equal("text/plain", e.headers["Content-Type"])
    assert.equal("text/plain", e.headers["content-type"])
    assert.same({ "text/plain" }, e.multiValueHeaders["CONTENT-TYPE"])
    assert.is_nil(e.headers["X-None"])
    local json = cjson.decode(hooks.json_encode(e))
    assert.same({ ["content-type"] = "text/plain" }, json.headers)
  end)

  it("shows a Lua authorizer's context with principalId, and a JWT's claims and scopes", function()
    local req = request{ authorizer = { tier = "gold" }, context = { ["authorizer.principalId"] = "u-1",
      ["authorizer.latency"] = "3" } }
    assert.same({ principalId = "u-1", integrationLatency = 3, tier = "gold" }, events.v1(req).requestContext.authorizer)
    req = request{ jwt = { claims = { sub = "abc", n = 5 }, scopes = { "read" } } }
    assert.same({ claims = { sub = "abc", n = "5" }, scopes = { "read" } }, events.v1(req).requestContext.authorizer)
  end)

  it("shows the API key, its id and the client certificate in identity", function()
    local req = request{ context = { ["identity.apiKey"] = "k-1", ["identity.apiKeyId"] = "key1" },
      client_cert = { pem = "PEM", subject_dn = "CN=c", issuer_dn = "CN=ca", serial_number = "01",
        not_before = "a", not_after = "b" } }
    assert.same({ sourceIp = "127.0.0.1", userAgent = "spec/1.0", apiKey = "k-1", apiKeyId = "key1",
      clientCert = { clientCertPem = "PEM", subjectDN = "CN=c", issuerDN = "CN=ca", serialNumber = "01",
        validity = { notBefore = "a", notAfter = "b" } } }, events.v1(req).requestContext.identity)
  end)

  it("leaves the 2.0 event as it was", function()
    assert.equal(events.event, hooks.event)
    local e = hooks.event(request())
    assert.equal("2.0", e.version)
    assert.equal("one,two", e.headers["x-multi"])
    assert.is_nil(e.multiValueHeaders)
    assert.same({ "s=1" }, e.cookies)
  end)
end)

describe("moongate.events.response_v1", function()
  local function ok(v)
    local r, why = events.response_v1(v)
    assert.is_nil(why)
    return r
  end
  local function bad(v, want)
    local r, why = events.response_v1(v)
    assert.is_nil(r)
    assert.equal(want, why)
  end

  it("merges headers and multiValueHeaders, multiValueHeaders winning a name in both", function()
    assert.same({ status = 201, body = "made", headers = {
      { "x-both", "h" }, { "x-num", "7" }, -- headers, sorted
      { "set-cookie", "a=1" }, { "set-cookie", "b=2" }, { "x-other", "m1" }, { "x-other", "m2" },
    } }, ok({ statusCode = 201, body = "made",
      headers = { ["X-Both"] = "h", ["X-Num"] = 7, ["X-Other"] = "dropped" },
      multiValueHeaders = { ["Set-Cookie"] = { "a=1", "b=2" }, ["x-other"] = { "m1", "m2" } } }))
  end)

  it("drops the headers the gateway sets, decodes base64 and takes an empty result", function()
    assert.same({ status = 200, headers = { { "x-a", "1" } }, body = "\0\1" },
      ok({ statusCode = 200, headers = { ["Content-Length"] = "9", ["X-A"] = "1" },
        multiValueHeaders = { Date = { "x" } }, body = "AAE=", isBase64Encoded = true }))
    assert.same({ status = 204, headers = {}, body = "" }, ok({ statusCode = 204, cookies = { "ignored" } }))
  end)

  it("calls a result malformed that AWS does not take (no plain values in 1.0)", function()
    bad("text", "a payload format 1.0 result must be a table with statusCode, got string")
    bad(nil, "a payload format 1.0 result must be a table with statusCode, got nil")
    bad({ hello = 1 }, "statusCode must be an integer between 100 and 599")
    bad({ statusCode = "200" }, "statusCode must be an integer between 100 and 599")
    bad({ statusCode = 99 }, "statusCode must be an integer between 100 and 599")
    bad({ statusCode = 200, body = { a = 1 } }, "body must be a string, got table")
    bad({ statusCode = 200, headers = "x" }, "headers must be a table")
    bad({ statusCode = 200, headers = { ["bad name"] = "x" } }, "header names must be HTTP tokens, got bad name")
    bad({ statusCode = 200, headers = { a = { 1 } } }, 'headers["a"] must be a string, got a table')
    bad({ statusCode = 200, multiValueHeaders = { a = "x" } }, 'multiValueHeaders["a"] must be a list of strings')
    bad({ statusCode = 200, multiValueHeaders = { a = { "x\r\ny: 1" } } },
      'multiValueHeaders["a"] must not contain CR, LF or NUL')
    bad({ statusCode = 200, multiValueHeaders = { a = { {} } } }, 'multiValueHeaders["a"] must be a string, got a table')
    bad({ statusCode = 200, body = "%%", isBase64Encoded = true }, "body: invalid base64")
    bad({ statusCode = 200, isBase64Encoded = "yes" }, "isBase64Encoded must be a boolean")
  end)
end)

describe("the 1.0 authorizer event", function()
  local seen
  local mod = {
    authorize = function(_, _, auth)
      seen = auth:event()
      return { isAuthorized = true }
    end,
  }

  it("is the 1.0 event without the body, with type and methodArn (HTTP APIs: identitySource too)", function()
    local req = request{ headers = { ["x-token"] = "t1", ["x-org"] = "o1" } }
    local d = testing.authorize(mod, nil, req, { payload_format_version = "1.0",
      identity_sources = { "$request.header.x-token", "$request.header.x-org" } })
    assert.equal("allow", d.outcome)
    assert.equal("REQUEST", seen.type)
    assert.equal("1.0", seen.version)
    assert.equal("arn:moongate:execute-api:local:moongate:pets/prod/POST/prod/pets/7", seen.methodArn)
    assert.equal("t1,o1", seen.identitySource)
    assert.equal("t1,o1", seen.authorizationToken)
    assert.is_nil(seen.body)
    assert.is_nil(seen.isBase64Encoded)
    assert.is_nil(seen.routeArn)
    assert.same({ "b" }, { seen.queryStringParameters.tag })
    assert.equal("/pets/{id}", seen.requestContext.resourcePath)
  end)

  it("on a REST API has neither version nor identitySource", function()
    local use = { mod = mod, conf = {}, kind = "REQUEST", identity_sources = { "$request.header.host" },
      payload_format_version = "1.0", rest = true }
    local d = hooks.authorize(use, request(), function(fn, a, b, c) return hooks.call(1e6, fn, a, b, c) end)
    assert.equal("allow", d.outcome)
    assert.is_nil(seen.version)
    assert.is_nil(seen.identitySource)
    assert.equal("/pets/7", seen.path)
    assert.equal("REQUEST", seen.type)
  end)

  it("stays 2.0 by default (routeArn, identitySource as a list)", function()
    testing.authorize(mod, nil, request{ headers = { ["x-token"] = "t1" } },
      { identity_sources = { "$request.header.x-token" } })
    assert.equal("2.0", seen.version)
    assert.same({ "t1" }, seen.identitySource)
    assert.is_string(seen.routeArn)
  end)
end)

describe("the kit runs 1.0 handlers as the gateway does", function()
  local echo = "policies/examples/echo_v1.lua"

  it("gives the handler the 1.0 event and reads its 1.0 response", function()
    local d = testing.handle(echo, { cookies = { "a=1", "b=2" } }, request(), { payload_format_version = "1.0" })
    assert.equal(200, d.status)
    assert.equal("application/json", d.headers["content-type"])
    assert.equal("a=1, b=2", d.headers["set-cookie"])
    local e = cjson.decode(d.body)
    assert.equal("1.0", e.version)
    assert.same({ "one", "two" }, e.multiValueHeaders["x-multi"])
    assert.same(e, cjson.decode(hooks.json_encode(testing.event(request(), { payload_format_version = "1.0" }))))
  end)

  it("answers a malformed result or a failed handler with 500 (a REST API's event: 502)", function()
    local plain = { handle = function() return { hello = "world" } end }
    local fails = { handle = function() error("boom") end }
    local opts = { payload_format_version = "1.0" }
    local d = testing.handle(plain, nil, request(), opts)
    assert.same({ status = 500, error = "malformed handler result: statusCode must be an integer between 100 and 599" }, d)
    assert.equal(500, testing.handle(fails, nil, request(), opts).status)
    -- an event table: HTTP APIs' 1.0 events say version = "1.0"; REST APIs' do not
    local event = testing.event(request(), opts)
    assert.equal(500, testing.handle(plain, nil, event).status)
    event.version = nil
    assert.equal(502, testing.handle(plain, nil, event).status)
    assert.equal(502, testing.handle(fails, nil, event).status)
    -- through hooks.handle, as the runtime runs it: a REST API's use answers 502
    local use = { mod = plain, conf = {}, payload_format_version = "1.0", rest = true }
    local r = hooks.handle(use, request(), function(fn, a, b, c) return hooks.call(1e6, fn, a, b, c) end)
    assert.equal(502, r.status)
    assert.truthy(r.error:find("malformed handler result", 1, true))
  end)

  it("keeps 2.0 the default for HTTP requests", function()
    local plain = { handle = function() return { hello = "world" } end }
    local d = testing.handle(plain, nil, request())
    assert.equal(200, d.status)
    assert.equal('{"hello":"world"}', d.body)
    assert.has_error(function() testing.event(request(), { payload_format_version = "3.0" }) end,
      'payload_format_version must be "1.0" or "2.0"')
  end)
end)

describe("payload_format_version in the configuration", function()
  local function conf(edit)
    local c = {
      listen = { { port = 8080, api = "pets" } },
      apis = { pets = {
        stages = { ["$default"] = {} },
        authorizers = { a = { type = "lua", policy = "policies/authorizers/api_key_header.lua",
          config = { keys = { ["k-0123456789abcdef"] = "alice" } }, identity_sources = { "$request.header.x-api-key" } } },
        routes = {
          ["GET /one"] = { authorizer = "a", integration = { type = "lua", handler = "policies/examples/echo_v1.lua",
            payload_format_version = "1.0" } },
          ["GET /two"] = { integration = { type = "lua", handler = "policies/examples/echo.lua" } },
        },
      } },
    }
    if edit then edit(c.apis.pets) end
    return c
  end

  local function uses(c)
    local shaped, errs = config.validate(c)
    assert.is_nil(errs)
    local spec = policy.deserialize(shaped.lua_spec)
    local by = {}
    for _, u in ipairs(spec.uses) do
      by[u.where] = u
    end
    return by
  end

  it("defaults to 2.0 (no version on the use) on HTTP APIs and takes 1.0 per integration and authorizer", function()
    local by = uses(conf())
    assert.equal("1.0", by["apis.pets.routes[\"GET /one\"].integration"].payload_format_version)
    assert.is_nil(by["apis.pets.routes[\"GET /two\"].integration"].payload_format_version) -- 2.0
    assert.is_nil(by["apis.pets.authorizers.a"].payload_format_version)
    assert.is_nil(by["apis.pets.routes[\"GET /one\"].integration"].rest)
    by = uses(conf(function(a) a.authorizers.a.payload_format_version = "1.0" end))
    assert.equal("1.0", by["apis.pets.authorizers.a"].payload_format_version)
  end)

  it("rejects other versions, and any on a websocket API", function()
    local _, errs = config.validate(conf(function(a)
      a.routes["GET /two"].integration.payload_format_version = "1"
      a.authorizers.a.payload_format_version = 2
    end))
    assert.same({
      'config: apis.pets.authorizers.a.payload_format_version: must be a string, got 2',
      'config: apis.pets.routes["GET /two"].integration.payload_format_version: must be one of "1.0", "2.0", got "1"',
    }, errs)
    _, errs = config.validate({
      listen = { { port = 8080, api = "ws" } },
      apis = { ws = { protocol = "websocket", route_selection_expression = "$request.body.action",
        stages = { ["$default"] = {} },
        routes = { ["$default"] = { integration = { type = "lua", handler = "policies/examples/echo.lua",
          payload_format_version = "1.0" } } } } },
    })
    assert.same({ 'config: apis.ws.routes["$default"].integration.payload_format_version: is not for websocket APIs'
      .. " (their Lua integrations and authorizers get the WebSocket event)" }, errs)
  end)
end)
