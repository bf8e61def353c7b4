-- policies/examples/echo_v1.lua: a payload format 1.0 Lua integration that answers with
-- the event it got.
local testing = require "moongate.testing"
local cjson = require "cjson"

local POLICY = "policies/examples/echo_v1.lua"
local V1 = { payload_format_version = "1.0" }

describe("examples/echo_v1", function()
  it("answers 200 JSON with the 1.0 event", function()
    local req = testing.request{
      method = "POST", path = "/echo/a?x=1&x=2", body = "hi", route_key = "ANY /echo/{proxy+}",
      headers = { ["Content-Type"] = "text/plain", cookie = "a=1; b=2", ["x-m"] = { "1", "2" } },
      path_params = { proxy = "a" },
    }
    local resp = testing.handle(POLICY, {}, req, V1)
    assert.equal(200, resp.status)
    assert.equal("application/json", resp.headers["content-type"])
    local e = cjson.decode(resp.body)
    assert.equal("1.0", e.version)
    assert.equal("POST", e.httpMethod)
    assert.equal("/echo/{proxy+}", e.resource)
    assert.same({ x = "2" }, e.queryStringParameters)
    assert.same({ x = { "1", "2" } }, e.multiValueQueryStringParameters)
    assert.same({ "1", "2" }, e.multiValueHeaders["x-m"])
    assert.equal("a=1; b=2", e.headers.cookie)
    assert.equal("hi", e.body)
    assert.same({ proxy = "a" }, e.pathParameters)
  end)

  it("sets the configured cookies through multiValueHeaders, and the configured status", function()
    local resp = testing.handle(POLICY, { status = 202, cookies = { "a=1", "b=2" } }, testing.request{}, V1)
    assert.equal(202, resp.status)
    local cookies = {}
    for _, h in ipairs(resp.header_list) do
      if h[1] == "set-cookie" then cookies[#cookies + 1] = h[2] end
    end
    assert.same({ "a=1", "b=2" }, cookies)
  end)
end)
