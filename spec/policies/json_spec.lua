-- policies/log/json.lua: one JSON object per line, sorted keys, null for values
-- the request does not have.
local testing = require "moongate.testing"
local cjson = require "cjson"

local POLICY = "policies/log/json.lua"

describe("log/json", function()
  it("writes the configured $context variables and constants as one JSON line", function()
    local ctx = testing.context{
      status = 201, ["identity.sourceIp"] = "10.0.0.1",
      request = testing.request{ request_id = "abc", method = "POST" },
    }
    local d = testing.log(POLICY, {
      fields = { id = "requestId", ip = "identity.sourceIp", status = "status", method = "httpMethod",
                 user = "authorizer.caller" },
      static = { service = "pets" },
    }, ctx)
    assert.equal('{"id":"abc","ip":"10.0.0.1","method":"POST","service":"pets","status":"201","user":null}', d.line)
    assert.same({ id = "abc", ip = "10.0.0.1", method = "POST", service = "pets", status = "201",
      user = cjson.null }, cjson.decode(d.line))
  end)

  it("has a default set of fields", function()
    local d = testing.log(POLICY, {}, testing.context{ status = 200 })
    local v = cjson.decode(d.line)
    assert.equal("200", v.status)
    assert.equal("kit-request-id", v.requestId)
    assert.equal("GET", v.httpMethod)
  end)

  it("refuses an unknown $context variable at run time with the policy's error", function()
    local d = testing.log(POLICY, { fields = { x = "nope" } }, testing.context{})
    assert.equal(500, d.status)
    assert.matches("unknown %$context variable nope", d.error)
  end)
end)
