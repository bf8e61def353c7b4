-- The shaped configuration of geo_match statements (lua/moongate/config/waf.lua): the
-- country database's files (waf_geo) go to the gateway only when a statement needs them,
-- resolved against the prefix and watched; the statement's node carries its codes and
-- forwarded header. The gateway side is tests/e2e/waf_geo_spec.lua.
local config = require "moongate.config"

local function conf(rules, waf_geo)
  return {
    waf_geo = waf_geo,
    apis = { a = {
      stages = { prod = { waf = { rules = rules } } },
      routes = { ["GET /x"] = { integration = { type = "mock" } } },
    } },
  }
end

local GEO = { name = "geo", priority = 1, action = "block", statement = { geo_match = {
  country_codes = { "US", "DE" }, forwarded_ip = { header_name = "X-Forwarded-For", fallback_behavior = "MATCH" } } } }

local function contains(list, v)
  for _, x in ipairs(list) do
    if x == v then return true end
  end
  return false
end

describe("geo_match configuration", function()
  it("gives the gateway the default files, and the statement's codes and header", function()
    local out = assert(config.validate(conf({ GEO }), { source = "gw.lua", prefix = "/srv/gw" }))
    assert.same({ ipv4 = "/usr/share/tor/geoip", ipv6 = "/usr/share/tor/geoip6",
      used_by = "apis.a.stages.prod.waf.rules[1].statement.geo_match" }, out.waf_geo)
    local node = out.waf_statements[1].nodes[1]
    assert.equal("geo_match", node.op)
    assert.same({ "US", "DE" }, node.values)
    assert.equal("x-forwarded-for", node.header)
    assert.equal("MATCH", node.fallback)
    assert.is_true(contains(out.watch_files, "/usr/share/tor/geoip6"))
  end)

  it("resolves waf_geo's files against the prefix; a nested or scope-down statement needs them too", function()
    local nested = { name = "n", priority = 1, action = "count", statement = { not_statement = {
      geo_match = { country_codes = { "FR" } } } } }
    local out = assert(config.validate(conf({ nested }, { ipv4 = "geo/v4", ipv6 = "/abs/v6" }),
      { source = "gw.lua", prefix = "/srv/gw" }))
    assert.equal("/srv/gw/geo/v4", out.waf_geo.ipv4)
    assert.equal("/abs/v6", out.waf_geo.ipv6)
    assert.equal("apis.a.stages.prod.waf.rules[1].statement.not_statement.geo_match", out.waf_geo.used_by)
    local rate = { name = "r", priority = 1, action = "block", rate_based = { limit = 100,
      scope_down = { geo_match = { country_codes = { "CN" } } } } }
    out = assert(config.validate(conf({ rate }), { source = "gw.lua" }))
    assert.is_table(out.waf_geo)
  end)

  it("without a geo_match statement the files are neither read nor watched", function()
    local ip = { name = "ip", priority = 1, action = "block", statement = { ip_set = { addresses = { "10.0.0.0/8" } } } }
    local out = assert(config.validate(conf({ ip }, { ipv4 = "missing" }), { source = "gw.lua" }))
    assert.is_nil(out.waf_geo)
    assert.is_false(contains(out.watch_files, "/usr/share/tor/geoip6"))
  end)

  it("refuses codes outside ISO 3166-1 alpha-2", function()
    local bad = { name = "g", priority = 1, action = "block", statement = { geo_match = { country_codes = { "GB", "UK" } } } }
    local out, errs = config.validate(conf({ bad }), { source = "gw.lua" })
    assert.is_nil(out)
    assert.same({ 'gw.lua: apis.a.stages.prod.waf.rules[1].statement.geo_match.country_codes[2]: "UK" is not '
      .. 'an ISO 3166-1 alpha-2 country code (the United Kingdom is "GB")' }, errs)
  end)
end)
