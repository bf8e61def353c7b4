-- Route selector: picks the route from a request header, e.g. an API version or a
-- canary flag set by a load balancer.
--
--   route_selection = { policy = "policies/routes/header.lua",
--     config = { header = "x-api-version", routes = { ["2"] = "GET /v2/pets" } } }
--
-- A header value listed in routes selects that route key; anything else leaves the
-- choice to the route keys (or to `default`, when set). A key the API does not
-- have goes to its $default route, else 404.
local M = {}

M.schema = {
  type = "record",
  fields = {
    header = { type = "string", required = true, description = "the request header to read" },
    routes = {
      type = "map", required = true, description = "header value -> route key",
      keys = { type = "string", description = "a header value" },
      values = { type = "string", description = "a route key of the API" },
    },
    default = { type = "string", description = "route key when the header is absent or not listed" },
  },
}

-- The route key for a header value (nil: no choice).
function M.choose(routes, value, default)
  if value ~= nil then
    local key = routes[value]
    if key ~= nil then
      return key
    end
  end
  return default
end

function M.select_route(req, conf)
  return M.choose(conf.routes, req:header(conf.header), conf.default)
end

return M
