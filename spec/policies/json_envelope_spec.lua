local testing = require "moongate.testing"
local cjson = require "cjson"

local P = "policies/transforms/json_envelope.lua"

describe("policies/transforms/json_envelope.lua", function()
  it("wraps a JSON body with fixed fields and ctx values", function()
    local out = testing.transform(P, { key = "pet", fields = { v = "1" }, from = { id = "request_id", s = "status" } },
      '{"name":"rex"}', { status = 200, request = { request_id = "r1" } })
    assert.are.equal("application/json", out.content_type)
    assert.same({ pet = { name = "rex" }, v = "1", id = "r1", s = 200 }, cjson.decode(out.body))
  end)

  it("wraps text as a string and an empty body as null", function()
    assert.same({ data = "plain" }, cjson.decode(testing.transform(P, {}, "plain", {}).body))
    assert.are.equal('{"data":null}', testing.transform(P, {}, "", {}).body)
  end)
end)
