-- moongate.testing and moongate.hooks: each hook kind's rules (what a result
-- means, what is malformed, the error contract), as the gateway applies them.
local testing = require "moongate.testing"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

-- Writes a policy file and returns its path.
local n = 0
local function policy(src)
  n = n + 1
  local path = dir .. "/p" .. n .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

local function authorizer(body)
  return policy("local M = {}\nfunction M.authorize(req, conf, auth)\n" .. body .. "\nend\nreturn M")
end

describe("moongate.testing", function()
  teardown(function()
    os.execute("rm -rf " .. dir)
    testing.reset()
  end)

  describe("authorize", function()
    local req = testing.request{ headers = { authorization = "Bearer t0k" }, path = "/pets/1",
      method = "GET", api_id = "pets", stage = "prod", route_path = "/pets/1" }

    it("reads simple results", function()
      local p = authorizer('return { isAuthorized = true, context = { user = "u1", n = 3, ok = true, t = { a = 1 } } }')
      local d = testing.authorize(p, nil, req)
      assert.same({ outcome = "allow", status = 200, context = { user = "u1", n = "3", ok = "true", t = '{"a":1}' } }, d)
      assert.equal(403, testing.authorize(authorizer("return { isAuthorized = false }"), nil, req).status)
    end)

    it("evaluates IAM policies against the route ARN", function()
      local p = authorizer([[
        return { principalId = "u2", usageIdentifierKey = "key-1", context = { tier = "gold" },
          policyDocument = { Version = "2012-10-17", Statement = {
            { Action = "execute-api:Invoke", Effect = "Allow", Resource = "arn:moongate:execute-api:*:*:pets/prod/GET/pets/*" },
            { Action = "execute-api:Invoke", Effect = "Deny", Resource = { "arn:moongate:execute-api:*:*:pets/prod/*/pets/13" } } } } }]])
      local d = testing.authorize(p, nil, req)
      assert.same({ outcome = "allow", status = 200, principal_id = "u2", usage_identifier_key = "key-1",
        context = { tier = "gold" } }, d)
      local denied = testing.authorize(p, nil, testing.request{ api_id = "pets", stage = "prod", route_path = "/pets/13" })
      assert.same({ "deny", 403, true }, { denied.outcome, denied.status, denied.explicit_deny })
      local implicit = testing.authorize(p, nil, testing.request{ api_id = "pets", stage = "prod", method = "POST", route_path = "/x" })
      assert.same({ "deny", 403 }, { implicit.outcome, implicit.status })
      assert.is_falsy(implicit.explicit_deny)
    end)

    it("turns error(\"Unauthorized\") into 401 and any other error into 500 with file and line", function()
      assert.same({ outcome = "unauthorized", status = 401, error = "Unauthorized" },
        testing.authorize(authorizer('error("Unauthorized")'), nil, req))
      assert.equal(401, testing.authorize(authorizer('error("Unauthorized", 0)'), nil, req).status)
      local p = authorizer('local x = nil\nreturn x.field')
      local d = testing.authorize(p, nil, req)
      assert.equal("error", d.outcome)
      assert.equal(500, d.status)
      assert.matches("^" .. p:gsub("%p", "%%%0") .. ":4: attempt to index", d.error)
      assert.matches(p:gsub("%p", "%%%0") .. ":4:", d.traceback)
    end)

    it("turns malformed results into 500", function()
      local cases = {
        ["return true"] = "an authorizer must return a table",
        ["return {}"] = "needs isAuthorized",
        ['return { isAuthorized = "yes" }'] = "isAuthorized must be a boolean",
        ["return { isAuthorized = true, context = { f = print } }"] = "context.f must be",
        ['return { policyDocument = { Statement = { { Effect = "Maybe" } } } }'] = "Effect must be",
        ["return { isAuthorized = true, usageIdentifierKey = 5 }"] = "usageIdentifierKey must be a string",
      }
      for body, why in pairs(cases) do
        local d = testing.authorize(authorizer(body), nil, req)
        assert.equal(500, d.status, body)
        assert.matches(why, d.error, 1, true)
      end
    end)

    it("answers 401 without running the policy when an identity source is missing", function()
      local p = authorizer('error("must not run")')
      for _, src in ipairs({ "$request.header.x-key", "$request.querystring.key", "$stageVariables.key", "$context.authorizer.x" }) do
        local d = testing.authorize(p, nil, req, { identity_sources = { src } })
        assert.same({ outcome = "unauthorized", status = 401, error = "missing identity source " .. src }, d)
      end
      local with = testing.request{ headers = { ["x-key"] = "1" }, query = "key=2", stage_variables = { key = "3" } }
      local ok = authorizer('return { isAuthorized = true, context = { ids = table.concat(auth.identity_source, ",") } }')
      local d = testing.authorize(ok, nil, with, { identity_sources = { "$request.header.x-key", "$request.querystring.key", "$stageVariables.key" } })
      assert.same({ ids = "1,2,3" }, d.context)
    end)

    it("gives TOKEN authorizers the token and their Lambda event", function()
      local p = authorizer('local e = auth:event()\nreturn { isAuthorized = auth.token == "Bearer t0k" and e.type == "TOKEN" and e.authorizationToken == auth.token, context = { arn = e.methodArn } }')
      local d = testing.authorize(p, nil, req, { kind = "TOKEN" })
      assert.equal(200, d.status)
      assert.equal("arn:moongate:execute-api:local:moongate:pets/prod/GET/pets/1", d.context.arn)
      local mismatch = testing.authorize(p, nil, req, { kind = "TOKEN", token_pattern = "^Basic " })
      assert.same({ outcome = "unauthorized", status = 401, error = "the token does not match token_pattern" }, mismatch)
    end)

    it("gives REQUEST authorizers a payload 2.0 event with identitySource and routeArn", function()
      local p = authorizer('local e = auth:event()\nreturn { isAuthorized = true, context = { v = e.version, t = e.type, id = e.identitySource[1], arn = e.routeArn } }')
      local d = testing.authorize(p, nil, req, { identity_sources = { "$request.header.authorization" } })
      assert.same({ v = "2.0", t = "REQUEST", id = "Bearer t0k", arn = "arn:moongate:execute-api:local:moongate:pets/prod/GET/pets/1" }, d.context)
    end)

    it("stops a runaway authorizer with a 500 at its line", function()
      local p = authorizer("local i = 0\nwhile true do i = i + 1 end")
      local d = testing.authorize(p, nil, req)
      assert.equal(500, d.status)
      assert.equal(p .. ":4: instruction budget exceeded", d.error)
    end)

    it("lets authorizers call moongate.http (answered by testing.mock_http)", function()
      local p = authorizer([[
        local http = require "moongate.http"
        local res, err = http.post("http://idp.test/introspect", req:header("authorization"))
        if not res then error("introspection failed: " .. err) end
        return { isAuthorized = res.status == 200, context = { sub = res.body } }]])
      testing.mock_http(function(r)
        assert.equal("POST", r.method)
        return { status = r.body == "Bearer t0k" and 200 or 401, body = "user-7" }
      end)
      assert.same({ outcome = "allow", status = 200, context = { sub = "user-7" } }, testing.authorize(p, nil, req))
      testing.mock_http({})
      local d = testing.authorize(p, nil, req)
      assert.equal(500, d.status)
      assert.matches("introspection failed: connect to http://idp.test/introspect failed", d.error)
      testing.mock_http(nil)
    end)
  end)

  describe("waf", function()
    local match_header = policy([[
      local M = {}
      M.schema = { type = "record", fields = { name = { type = "string", required = true, description = "header" } } }
      function M.inspect(req, conf) return req:header(conf.name) ~= nil end
      return M]])

    it("runs rules by priority; allow and block end it, count goes on", function()
      local rules = {
        { name = "blockB", priority = 30, policy = match_header, action = "block", config = { name = "b" } },
        { name = "countA", priority = 10, policy = match_header, action = "count", config = { name = "a" } },
        { name = "allowC", priority = 20, policy = match_header, action = "allow", config = { name = "c" } },
      }
      local req = testing.request{ headers = { a = "1", b = "1" } }
      assert.same({ action = "BLOCK", status = 403, rule = "blockB", counted = { "countA" } }, testing.waf(rules, req))
      req = testing.request{ headers = { a = "1", b = "1", c = "1" } }
      assert.same({ action = "ALLOW", status = 200, rule = "allowC", counted = { "countA" } }, testing.waf(rules, req))
      assert.same({ action = "BLOCK", status = 403, counted = {} }, testing.waf(rules, testing.request{}, "block"))
    end)

    it("fails the request with 500 when a rule errors", function()
      local bad = policy("local M = {}\nfunction M.inspect(req) return req:nope() end\nreturn M")
      local d = testing.waf({ { policy = bad, action = "block" } }, testing.request{})
      assert.equal(500, d.status)
      assert.matches(":2: attempt to call method 'nope'", d.error, 1, true)
    end)

    it("answers a rule statement's or a managed rule's error: the kit does not evaluate them", function()
      local d = testing.waf({ { name = "s", statement = { byte_match = { field = "uri_path",
        search_string = "/x", positional_constraint = "EXACTLY" } }, action = "block" } }, testing.request{})
      assert.equal(500, d.status)
      assert.equal("s", d.rule)
      assert.matches("rule statements run only in the gateway (the busted kit does not evaluate them", d.error, 1, true)
      d = testing.waf({ { name = "m", managed = "owasp-crs", action = "block" } }, testing.request{})
      assert.equal(500, d.status)
      assert.matches("managed rules run only in the gateway", d.error, 1, true)
    end)

    it("validates each rule's configuration", function()
      assert.has_error(function()
        testing.waf({ { policy = match_header, action = "block", config = { nme = "a" } } }, testing.request{})
      end, 'spec: config.name: is required\nspec: config.nme: unknown key (did you mean "name"?)')
    end)
  end)

  describe("select_route", function()
    it("refuses a result that is not a route key", function()
      local p = policy("return { select_route = function() return 42 end }")
      local d = testing.select_route(p, nil, testing.request{})
      assert.same({ status = 500, error = "select_route must return a route key (a string) or nil, got number" }, d)
    end)
  end)

  describe("handle", function()
    local function handler(body)
      return policy("local M = {}\nfunction M.handle(event, conf)\n" .. body .. "\nend\nreturn M")
    end

    it("sends a plain value as 200 application/json", function()
      assert.same({ status = 200, headers = { ["content-type"] = "application/json" },
        header_list = { { "content-type", "application/json" } }, body = '{"a":[1,2]}' },
        testing.handle(handler("return { a = { 1, 2 } }"), nil, testing.request{}))
      assert.equal('"hello"', testing.handle(handler('return "hello"'), nil, testing.request{}).body)
    end)

    it("sends statusCode, headers, cookies and a base64 body as given", function()
      local resp = testing.handle(handler([[
        return { statusCode = 201, headers = { ["X-Id"] = 7, ["Content-Length"] = "999" },
                 cookies = { "a=1", "b=2; Path=/" }, body = "aGk=", isBase64Encoded = true }]]), nil, testing.request{})
      assert.same({ status = 201, body = "hi", headers = { ["x-id"] = "7", ["set-cookie"] = "a=1, b=2; Path=/" },
        header_list = { { "x-id", "7" }, { "set-cookie", "a=1" }, { "set-cookie", "b=2; Path=/" } } }, resp)
    end)

    it("turns a malformed result or an error into 500", function()
      local cases = {
        ["return { statusCode = 700 }"] = "statusCode must be an integer between 100 and 599",
        ['return { statusCode = 200, body = {} }'] = "body must be a string",
        ['return { statusCode = 200, headers = { ["bad name"] = "x" } }'] = "header names must be HTTP tokens",
        ['return { statusCode = 200, headers = { x = "a\\r\\nb: c" } }'] = "must not contain CR, LF or NUL",
        ["return print"] = "cannot be encoded as JSON",
        ['error("boom")'] = ":3: boom",
      }
      for body, why in pairs(cases) do
        local resp = testing.handle(handler(body), nil, testing.request{})
        assert.equal(500, resp.status, body)
        assert.matches(why, resp.error, 1, true)
      end
    end)

    it("handles events built by hand", function()
      local resp = testing.handle(handler("return { statusCode = 200, body = event.rawPath }"), nil, { rawPath = "/x" })
      assert.equal("/x", resp.body)
    end)

    it("does not let the handler change request headers", function()
      local p = policy("return { handle = function() end }")
      local req = testing.request{}
      local mod = testing.load(p)
      mod.handle = function() req:set_header("x", "1") end
      local resp = testing.handle(mod, nil, req)
      assert.equal(500, resp.status)
      assert.matches("request headers can only be changed before the integration", resp.error, 1, true)
    end)
  end)

  describe("log", function()
    it("returns a line, custom values or nothing", function()
      local line = policy('return { log = function(ctx) return ctx.requestId .. " " .. ctx:get("status") end }')
      assert.same({ line = "r1 204" }, testing.log(line, nil, testing.context{ status = 204, request = testing.request{ request_id = "r1" } }))
      local custom = policy('return { log = function(ctx) return { tenant = ctx.request:header("x-tenant"), n = 2 } end }')
      assert.same({ custom = { tenant = "acme", n = "2" } },
        testing.log(custom, nil, testing.context{ request = testing.request{ headers = { ["x-tenant"] = "acme" } } }))
      assert.same({}, testing.log(policy("return { log = function() end }"), nil, testing.context{}))
    end)

    it("refuses lines with newlines and other result types", function()
      local nl = policy('return { log = function() return "a\\nb" end }')
      assert.equal("a log line must not contain CR or LF", testing.log(nl, nil, testing.context{}).error)
      local num = policy("return { log = function() return 5 end }")
      assert.equal("log must return a string, a table or nil, got number", testing.log(num, nil, testing.context{}).error)
    end)
  end)

  describe("request", function()
    it("exposes the request object API", function()
      local req = testing.request{ method = "PUT", path = "/a/b?x=1&y=%20z&x=2", headers = { ["X-A"] = "1", cookie = "s=1; t=2" },
        path_params = { id = 7 }, stage_variables = { env = "test" }, body = "payload", source_ip = "192.0.2.1" }
      assert.equal("PUT", req.method)
      assert.equal("/a/b", req.path)
      assert.equal("x=1&y=%20z&x=2", req.query_string)
      assert.equal("1,2", req:query("x"))
      assert.equal(" z", req:query("y"))
      assert.equal("1", req:header("x-a"))
      assert.same({ ["x-a"] = "1", cookie = "s=1; t=2" }, req:headers())
      assert.same({ "s=1", "t=2" }, req:cookies())
      assert.equal("2", req:cookie("t"))
      assert.equal("7", req:path_param("id"))
      assert.equal("test", req:stage_variable("env"))
      assert.equal("payload", req:body())
      assert.equal("192.0.2.1", req:context("identity.sourceIp"))
      assert.has_error(function() req:context("nope") end, "unknown $context variable nope")
      req:set_header("X-B", "2")
      assert.equal("2", req:header("x-b"))
      req:clear_header("x-a")
      assert.is_nil(req:header("x-a"))
      assert.has_error(function() req:set_header("bad name", "v") end, "header name must be an HTTP token")
      assert.is_table(req.ctx)
    end)

    it("is an HTTP API's request unless api_type says otherwise", function()
      local req = testing.request{ route_key = "GET /pets/{id}", time = 1700000000123 }
      assert.equal("http", req.api_type)
      assert.equal(req:context("requestId"), req:context("extendedRequestId"))
      assert.equal("1700000000", req:context("requestTimeEpoch"))
      assert.equal("/pets/{id}", req:context("resourcePath"))
      assert.equal("websocket", testing.websocket.connect{}.api_type)
    end)

    it("builds a REST API's request: UUID requestId, its own extendedRequestId, epoch in ms", function()
      local req = testing.request{ api_type = "rest", route_key = "ANY /{proxy+}", time = 1700000000123 }
      assert.equal("rest", req.api_type)
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", req.request_id)
      assert.equal(req.request_id, req:context("requestId"))
      assert.are_not.equal(req:context("requestId"), req:context("extendedRequestId"))
      assert.equal("1700000000123", req:context("requestTimeEpoch"))
      assert.equal("/{proxy+}", req:context("resourcePath"))
      local ext = testing.request{ api_type = "rest", request_id = "r-1", extended_request_id = "e-1" }
      assert.equal("r-1", ext:context("requestId"))
      assert.equal("e-1", ext:context("extendedRequestId"))
      assert.has_error(function() testing.request{ api_type = "grpc" } end,
        'api_type must be "http", "rest" or "websocket", got grpc')
    end)
  end)
end)

describe("moongate.testing: a request a JWT authorizer allowed", function()
  local testing = require "moongate.testing"

  it("gives hooks the claims and integrations requestContext.authorizer.jwt", function()
    local req = testing.request{
      path = "/pets",
      jwt = { claims = { sub = "alice", exp = 1700000300, admin = true, groups = { "a", "b" },
        addr = { city = "Paris" } }, scopes = { "pets:read" } },
    }
    assert.same({ sub = "alice", exp = "1700000300", admin = "true", groups = '["a","b"]',
      addr = '{"city":"Paris"}' }, req.authorizer)
    assert.equal("alice", req:context("authorizer.claims.sub"))
    assert.equal("1700000300", req:context("authorizer.claims.exp"))
    local e = testing.event(req)
    assert.same({ jwt = { claims = req.authorizer, scopes = { "pets:read" } } },
      e.requestContext.authorizer)
  end)

  it("has no scopes when the token has none, and works for a WebSocket $connect", function()
    local req = testing.websocket.connect{ jwt = { claims = { sub = "bob" } } }
    local e = testing.event(req)
    assert.same({ jwt = { claims = { sub = "bob" } } }, e.requestContext.authorizer)
    assert.has_error(function() testing.request{ jwt = "token" } end,
      "jwt must be a table { claims = {...}, scopes = {...} }")
  end)
end)
