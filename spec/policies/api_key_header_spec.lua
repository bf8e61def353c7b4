-- policies/authorizers/api_key_header.lua through the kit: the decisions and the
-- context the gateway would use.
local testing = require "moongate.testing"

local POLICY = "policies/authorizers/api_key_header.lua"
local CONF = { keys = { ["k-alice-0123456789"] = "alice" } }
local SOURCES = { identity_sources = { "$request.header.x-api-key" } }

describe("authorizers/api_key_header", function()
  it("allows a known key with the caller's name as principal and context", function()
    local req = testing.request{ headers = { ["X-Api-Key"] = "k-alice-0123456789" } }
    local d = testing.authorize(POLICY, CONF, req, SOURCES)
    assert.same({ outcome = "allow", status = 200, principal_id = "alice", context = { caller = "alice" } }, d)
    assert.same({ caller = "alice" }, req.authorizer)
  end)

  it("denies an unknown key with 403", function()
    local d = testing.authorize(POLICY, CONF, testing.request{ headers = { ["x-api-key"] = "nope" } }, SOURCES)
    assert.equal("deny", d.outcome)
    assert.equal(403, d.status)
  end)

  it("answers 401 without running when the header is missing", function()
    local d = testing.authorize(POLICY, CONF, testing.request{}, SOURCES)
    assert.same({ outcome = "unauthorized", status = 401, error = "missing identity source $request.header.x-api-key" }, d)
  end)

  it("hands the key on as the usage identifier when asked", function()
    local conf = { keys = CONF.keys, usage_identifier = true }
    local d = testing.authorize(POLICY, conf, testing.request{ headers = { ["x-api-key"] = "k-alice-0123456789" } }, SOURCES)
    assert.equal("k-alice-0123456789", d.usage_identifier_key)
  end)

  it("reads another header when configured", function()
    local conf = { header = "authorization", keys = CONF.keys }
    local d = testing.authorize(POLICY, conf, testing.request{ headers = { authorization = "k-alice-0123456789" } })
    assert.equal(200, d.status)
  end)

  it("requires keys", function()
    assert.has_error(function()
      testing.authorize(POLICY, {}, testing.request{})
    end, "spec: config.keys: is required")
  end)
end)
