-- policies/examples/echo.lua: a Lua integration that answers with the request.
local testing = require "moongate.testing"
local cjson = require "cjson"

local POLICY = "policies/examples/echo.lua"

describe("examples/echo", function()
  it("answers 200 JSON with what the gateway saw", function()
    local req = testing.request{
      method = "POST", path = "/echo/a?x=1&x=2", body = "hi", route_key = "ANY /echo/{proxy+}",
      headers = { ["Content-Type"] = "text/plain", cookie = "a=1; b=2" },
      path_params = { proxy = "a" }, authorizer = { caller = "alice" },
    }
    local resp = testing.handle(POLICY, {}, req)
    assert.equal(200, resp.status)
    assert.equal("application/json", resp.headers["content-type"])
    local v = cjson.decode(resp.body)
    assert.equal("POST", v.method)
    assert.equal("/echo/a", v.path)
    assert.same({ x = "1,2" }, v.query)
    assert.same({ "a=1", "b=2" }, v.cookies)
    assert.is_nil(v.headers.cookie)
    assert.equal("hi", v.body)
    assert.same({ proxy = "a" }, v.pathParameters)
    assert.same({ caller = "alice" }, v.authorizer)
    assert.equal("ANY /echo/{proxy+}", v.routeKey)
  end)

  it("base64-encodes a binary body", function()
    local resp = testing.handle(POLICY, {}, testing.request{ body = "\0\1\2\255" })
    local v = cjson.decode(resp.body)
    assert.is_true(v.isBase64Encoded)
    assert.equal("AAEC/w==", v.body)
  end)

  it("answers with the configured status", function()
    assert.equal(202, testing.handle(POLICY, { status = 202 }, testing.request{}).status)
  end)
end)
