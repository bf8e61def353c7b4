-- policies/routes/header.lua: a header value picks the route.
local testing = require "moongate.testing"

local POLICY = "policies/routes/header.lua"
local CONF = { header = "x-api-version", routes = { ["2"] = "GET /v2/pets", ["9"] = "GET /v9/pets" } }
local ROUTES = { "GET /v1/pets", "GET /v2/pets", "$default" }

describe("routes/header", function()
  it("selects the route listed for the header's value", function()
    local d = testing.select_route(POLICY, CONF, testing.request{ headers = { ["X-Api-Version"] = "2" } }, ROUTES)
    assert.same({ route_key = "GET /v2/pets" }, d)
  end)

  it("leaves the choice to the route keys without the header", function()
    assert.same({ declined = true }, testing.select_route(POLICY, CONF, testing.request{}, ROUTES))
  end)

  it("sends a key the API does not have to $default, or 404 without one", function()
    local req = testing.request{ headers = { ["x-api-version"] = "9" } }
    assert.same({ route_key = "$default", unknown = "GET /v9/pets" }, testing.select_route(POLICY, CONF, req, ROUTES))
    assert.same({ status = 404, unknown = "GET /v9/pets" },
      testing.select_route(POLICY, CONF, req, { "GET /v1/pets" }))
  end)

  it("uses the default key when configured", function()
    local conf = { header = "x-api-version", routes = {}, default = "GET /v1/pets" }
    assert.same({ route_key = "GET /v1/pets" }, testing.select_route(POLICY, conf, testing.request{}, ROUTES))
  end)
end)
