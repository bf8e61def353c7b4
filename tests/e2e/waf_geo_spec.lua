-- geo_match rule statements (README "geo_match"): a country database in Tor's geoip
-- format (test files here, Debian's tor-geoipdb in the last block), the client address
-- and the forwarded header's first address, the fallback, the country label AWS adds
-- (`awswaf:clientip:geo:country:CC`, `awswaf:forwardedip:geo:country:CC`) seen by a
-- later label_match and in $context.waf.labels ("-" when empty), the WAF log's httpRequest.country, a
-- reload that shares the loaded database while its files are unchanged and loads it
-- again when one changes, and every configuration error with its path.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local FORMAT = '{"id":"$context.requestId","status":"$context.status","rule":"$context.waf.rule",'
    .. '"labels":"$context.waf.labels"}'

-- 127/8 is "JP" here (so that the test client has a country), 192.0.2.0/24 unknown.
local V4 = [[
# test database (Tor's geoip format)
2130706432,2147483647,JP
3221225984,3221226239,??
3325256704,3325256959,US
3405803776,3405804031,DE
]]
local V6 = [[
# IPv6
2001:db8::,2001:db8:0:ffff:ffff:ffff:ffff:ffff,US
2001:db8:1::,2001:db8:1:ffff:ffff:ffff:ffff:ffff,DE
]]

local US, DE, UNKNOWN = "198.51.100.7", "203.0.113.9", "192.0.2.1"

local function geo(codes, header, fallback)
    local g = { country_codes = codes }
    if header then g.forwarded_ip = { header_name = header, fallback_behavior = fallback } end
    return { geo_match = g }
end

describe("geo_match", function()
    local gw, dir
    local ports = {}
    local names = { "xff", "fbmatch", "fbnomatch", "client" }

    local function api(name, rules)
        ports[name] = ports[name] or h.free_port()
        return {
            stages = { ["$default"] = {
                access_log = { path = dir .. "/logs/" .. name .. ".log", format = FORMAT },
                waf = { default_action = "allow", rules = rules, log = { path = dir .. "/logs/" .. name .. ".waf" } },
            } },
            routes = { ["ANY /{proxy+}"] = { integration = { type = "mock", status = 200, body = "ok" } },
                       ["ANY /"] = { integration = { type = "mock", status = 200, body = "ok" } } },
        }
    end

    local function config()
        local apis = {
            xff = api("xff", {
                { name = "us", priority = 1, action = "block",
                  statement = geo({ "US" }, "X-Forwarded-For", "NO_MATCH") },
                { name = "de-admin", priority = 2, action = "block", statement = { and_statement = {
                    { label_match = { scope = "LABEL", key = "awswaf:forwardedip:geo:country:DE" } },
                    { byte_match = { field = "uri_path", search_string = "/admin", positional_constraint = "STARTS_WITH" } },
                } } },
            }),
            fbmatch = api("fbmatch", {
                { name = "cn", priority = 1, action = "block", statement = geo({ "CN", "RU" }, "x-client", "MATCH") },
            }),
            fbnomatch = api("fbnomatch", {
                { name = "cn", priority = 1, action = "block", statement = geo({ "CN" }, "X-Client", "NO_MATCH") },
            }),
            client = api("client", {
                { name = "jp", priority = 1, action = "count", labels = { "geo:jp" }, statement = geo({ "JP" }) },
                { name = "jp-flagged", priority = 2, action = "block", statement = { and_statement = {
                    { label_match = { scope = "NAMESPACE", key = "awswaf:clientip:geo:country:" } },
                    { byte_match = { field = { single_header = "x-flag" }, search_string = "1",
                        positional_constraint = "EXACTLY" } },
                } } },
            }),
        }
        local listen = {}
        for _, name in ipairs(names) do
            listen[#listen + 1] = { address = "127.0.0.1", port = ports[name], api = name }
        end
        ports.management = ports.management or h.free_port()
        return { workers = 2, listen = listen, apis = apis,
            waf_geo = { ipv4 = "geo/v4", ipv6 = "geo/v6" },
            management = { address = "127.0.0.1", port = ports.management } }
    end

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/logs") .. " " .. h.sh_quote(dir .. "/geo"))
        h.write_file(dir .. "/geo/v4", V4)
        h.write_file(dir .. "/geo/v6", V6)
        gw = h.start_gateway(config(), { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    local function req(name, path, ...)
        return h.curl({ gw:url(path, ports[name]), ... })
    end

    local function entry(name, r)
        return h.wait_for(function()
            return h.find_entry(h.json_log(dir .. "/logs/" .. name .. ".log"), "id", r.headers["apigw-requestid"])
        end, 5)
    end

    local function waf_line(name, r)
        return h.wait_for(function()
            for _, e in ipairs(h.json_log(dir .. "/logs/" .. name .. ".waf")) do
                if e.httpRequest and e.httpRequest.requestId == r.headers["apigw-requestid"] then return e end
            end
        end, 5)
    end

    local function blocked(name, rule, r)
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        local e = entry(name, r)
        assert.equal(rule, e.rule)
        return e
    end

    local function passes(name, r)
        assert.equal(200, r.status, r.body)
        return entry(name, r)
    end

    local function xff(addr, path)
        return req("xff", path or "/", "-H", "X-Forwarded-For: " .. addr)
    end

    it("the forwarded header's first address: a US address is blocked, a DE one passes, both labelled", function()
        local e = blocked("xff", "us", xff(US))
        assert.equal("awswaf:forwardedip:geo:country:US", e.labels)
        e = passes("xff", xff(DE .. ", " .. US))
        assert.equal("awswaf:forwardedip:geo:country:DE", e.labels)
        -- only the first address counts
        e = blocked("xff", "us", xff(US .. ",  " .. DE))
        assert.equal("awswaf:forwardedip:geo:country:US", e.labels)
        -- IPv6, and an IPv4-mapped IPv6 address
        blocked("xff", "us", xff("2001:db8::42"))
        assert.equal("awswaf:forwardedip:geo:country:DE", passes("xff", xff("2001:db8:1::1")).labels)
        blocked("xff", "us", xff("::ffff:198.51.100.200"))
    end)

    it("an address without a country (a ?? range, private, unlisted): no match, no label", function()
        assert.equal("-", passes("xff", xff(UNKNOWN)).labels)
        assert.equal("-", passes("xff", xff("10.1.2.3, " .. US)).labels)
        assert.equal("-", passes("xff", xff("2001:db8:2::1")).labels)
    end)

    it("a missing header or one whose first item is no address: the fallback (NO_MATCH here)", function()
        assert.equal("-", passes("xff", req("xff", "/")).labels)
        assert.equal("-", passes("xff", xff("unknown, " .. US)).labels)
        assert.equal("-", passes("xff", xff("198.51.100.7:443")).labels)
    end)

    it("fallback_behavior MATCH blocks a request without a usable address; other countries pass", function()
        blocked("fbmatch", "cn", req("fbmatch", "/"))
        blocked("fbmatch", "cn", req("fbmatch", "/", "-H", "X-Client: unknown"))
        blocked("fbmatch", "cn", req("fbmatch", "/", "-H", "X-Client;"))
        local e = passes("fbmatch", req("fbmatch", "/", "-H", "X-Client: " .. DE))
        assert.equal("awswaf:forwardedip:geo:country:DE", e.labels)
        passes("fbnomatch", req("fbnomatch", "/"))
        passes("fbnomatch", req("fbnomatch", "/", "-H", "X-Client: unknown"))
    end)

    it("a later rule's label_match sees the country label, whether the geo rule matched or not", function()
        local e = blocked("xff", "de-admin", xff(DE, "/admin/users"))
        assert.equal("awswaf:forwardedip:geo:country:DE", e.labels)
        passes("xff", xff(UNKNOWN, "/admin/users"))
        passes("xff", req("xff", "/admin/users"))
    end)

    it("without forwarded_ip the client address is looked up (clientip label, then the rule's labels)", function()
        local e = passes("client", req("client", "/"))
        assert.equal("awswaf:clientip:geo:country:JP,geo:jp", e.labels)
        e = blocked("client", "jp-flagged", req("client", "/", "-H", "x-flag: 1"))
        assert.equal("awswaf:clientip:geo:country:JP,geo:jp", e.labels)
    end)

    it("the WAF log writes the client address's country and the country label", function()
        local r = req("client", "/")
        local e = waf_line("client", r)
        assert.equal("127.0.0.1", e.httpRequest.clientIp)
        assert.equal("JP", e.httpRequest.country)
        assert.same({ { name = "awswaf:clientip:geo:country:JP" }, { name = "geo:jp" } }, e.labels)
        -- the country is the client's (the TCP peer's), not the forwarded address's
        r = xff(US)
        e = waf_line("xff", r)
        assert.equal("JP", e.httpRequest.country)
        assert.equal("BLOCK", e.action)
        assert.same({ { name = "awswaf:forwardedip:geo:country:US" } }, e.labels)
    end)

    it("a reload shares the loaded database while its files are unchanged, and loads a changed one", function()
        local function loads()
            local n = 0
            for _ in gw.stderr():gmatch("waf_geo: loaded 3 IPv4 and 2 IPv6 country ranges in %d+ ms") do n = n + 1 end
            return n
        end
        assert.equal(1, loads(), gw.stderr())
        local out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.equal(0, rc, out)
        assert.equal(1, loads(), gw.stderr())
        passes("xff", xff(DE))
        -- a bad file: the reload is rejected and the old database keeps serving
        h.write_file(dir .. "/geo/v4", V4 .. "1,2,us\n")
        out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.not_equal(0, rc, out)
        assert.matches("waf_geo.ipv4: " .. dir .. '/geo/v4:6: "us" is not a country code', out, 1, true)
        passes("xff", xff(DE))
        -- 203.0.113.0/24 moves to the US
        h.write_file(dir .. "/geo/v4", (V4:gsub("3405804031,DE", "3405804031,US")))
        out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.equal(0, rc, out)
        assert.equal(2, loads(), gw.stderr())
        assert.equal("awswaf:forwardedip:geo:country:US", blocked("xff", "us", xff(DE)).labels)
    end)
end)

describe("geo_match with Debian's tor-geoipdb", function()
    local gw, dir, port

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/logs"))
        port = h.free_port()
        -- no waf_geo: the defaults, /usr/share/tor/geoip and geoip6
        gw = h.start_gateway({ workers = 1, listen = { { address = "127.0.0.1", port = port, api = "a" } }, apis = { a = {
            stages = { ["$default"] = {
                access_log = { path = dir .. "/logs/a.log", format = FORMAT },
                waf = { default_action = "allow", log = { path = dir .. "/logs/a.waf" }, rules = {
                    { name = "us", priority = 1, action = "block", statement = geo({ "US" }, "X-Forwarded-For", "NO_MATCH") },
                } },
            } },
            routes = { ["ANY /"] = { integration = { type = "mock", status = 200, body = "ok" } } },
        } } }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    local function labels(r)
        return h.wait_for(function()
            return h.find_entry(h.json_log(dir .. "/logs/a.log"), "id", r.headers["apigw-requestid"])
        end, 5).labels
    end

    local function xff(addr)
        return h.curl({ gw:url("/"), "-H", "X-Forwarded-For: " .. addr })
    end

    -- Addresses whose country has not moved in years: Google's public DNS (US), and the
    -- Deutsche Telekom and Deutsches Forschungsnetz blocks (DE).
    it("Google's DNS is in the US, Deutsche Telekom's and DFN's blocks in Germany", function()
        for _, a in ipairs({ "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888" }) do
            local r = xff(a)
            assert.equal(403, r.status, a)
            assert.equal("awswaf:forwardedip:geo:country:US", labels(r), a)
        end
        for _, a in ipairs({ "80.128.0.1", "141.76.1.1", "2003::1" }) do
            local r = xff(a)
            assert.equal(200, r.status, a)
            assert.equal("awswaf:forwardedip:geo:country:DE", labels(r), a)
        end
        local r = xff("10.0.0.1")
        assert.equal(200, r.status)
        assert.equal("-", labels(r))
    end)

    it("the WAF log's country of a loopback client is \"-\" (not in the database)", function()
        local r = xff("8.8.8.8")
        local e = h.wait_for(function()
            for _, x in ipairs(h.json_log(dir .. "/logs/a.waf")) do
                if x.httpRequest and x.httpRequest.requestId == r.headers["apigw-requestid"] then return x end
            end
        end, 5)
        assert.equal("-", e.httpRequest.country)
        assert.equal("BLOCK", e.action)
    end)
end)

describe("geo_match configuration errors", function()
    local dir

    setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/geo"))
        h.write_file(dir .. "/geo/v4", V4)
        h.write_file(dir .. "/geo/v6", V6)
    end)

    local WHERE = 'apis.a.stages["$default"].waf.rules[1]'

    local function check(stmt, waf_geo)
        local path = h.write_file(dir .. "/gateway.lua", h.config_source({
            waf_geo = waf_geo or { ipv4 = "geo/v4", ipv6 = "geo/v6" },
            apis = { a = {
                stages = { ["$default"] = { waf = { rules = {
                    { name = "r", priority = 1, action = "block", statement = stmt } } } } },
                routes = { ["GET /x"] = { integration = { type = "mock" } } },
            } },
        }))
        local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
        return out, rc, path
    end

    local function fails(stmt, want, waf_geo)
        local out, rc, path = check(stmt, waf_geo)
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. want, out, 1, true)
    end

    it("a good statement passes moongate check", function()
        local out, rc = check(geo({ "US", "DE", "XK" }, "X-Forwarded-For", "MATCH"))
        assert.equal(0, rc, out)
    end)

    it("country codes: empty, too many, not ISO 3166-1 alpha-2, lower case, missing", function()
        fails(geo({}), WHERE .. ".statement.geo_match.country_codes: must not be empty")
        local many = {}
        for i = 1, 251 do many[i] = "US" end
        fails(geo(many), WHERE .. ".statement.geo_match.country_codes: must have at most 250 entries, got 251")
        fails(geo({ "US", "UK" }), WHERE .. '.statement.geo_match.country_codes[2]: "UK" is not an ISO 3166-1 '
            .. 'alpha-2 country code (the United Kingdom is "GB")')
        fails(geo({ "EU" }), WHERE .. '.statement.geo_match.country_codes[1]: "EU" is not an ISO 3166-1 alpha-2 '
            .. 'country code (a region, not a country')
        fails(geo({ "ZZ" }), WHERE .. '.statement.geo_match.country_codes[1]: "ZZ" is not an ISO 3166-1 alpha-2 '
            .. "country code")
        fails(geo({ "us" }), WHERE .. '.statement.geo_match.country_codes[1]: "us" is not a country code: two '
            .. 'upper-case letters, ISO 3166-1 alpha-2 ("US", "DE")')
        fails({ geo_match = {} }, WHERE .. ".statement.geo_match.country_codes: is required")
    end)

    it("forwarded_ip: the fallback is required, position is ip_set's only", function()
        fails(geo({ "US" }, "X-Forwarded-For"), WHERE .. ".statement.geo_match.forwarded_ip.fallback_behavior: is required")
        fails({ geo_match = { country_codes = { "US" }, forwarded_ip = { header_name = "x-ff",
            fallback_behavior = "NO_MATCH", position = "LAST" } } },
            WHERE .. ".statement.geo_match.forwarded_ip.position: unknown key")
        fails(geo({ "US" }, "bad header", "MATCH"),
            WHERE .. ".statement.geo_match.forwarded_ip.header_name: must be a header name")
    end)

    it("an error in a nested geo_match names its whole path", function()
        fails({ not_statement = geo({ "UK" }) },
            WHERE .. '.statement.not_statement.geo_match.country_codes[1]: "UK" is not an ISO 3166-1')
    end)

    it("a missing database file names waf_geo's key, the file, and the package", function()
        local missing = dir .. "/geo/missing"
        fails(geo({ "US" }), 'waf_geo.ipv4: cannot read "' .. missing .. '": No such file or directory (the '
            .. "country database of " .. WHERE .. ".statement.geo_match; Debian's is the package "
            .. "tor-geoipdb: apt-get install tor-geoipdb, or set waf_geo.ipv4 to a file in Tor's geoip format)",
            { ipv4 = "geo/missing", ipv6 = "geo/v6" })
        fails(geo({ "US" }), 'waf_geo.ipv6: cannot read "' .. missing .. '": No such file or directory',
            { ipv4 = "geo/v4", ipv6 = "geo/missing" })
        -- nothing reads the files when no statement needs them
        local out, rc = check({ ip_set = { addresses = { "10.0.0.0/8" } } }, { ipv4 = "geo/missing" })
        assert.equal(0, rc, out)
    end)

    it("a bad line names the file, the line and the reason", function()
        h.write_file(dir .. "/geo/bad4", "# x\n1,2,US\n5,4,DE\n")
        fails(geo({ "US" }), "waf_geo.ipv4: " .. dir .. '/geo/bad4:3: the range ends before it starts, got "5,4,DE"',
            { ipv4 = "geo/bad4", ipv6 = "geo/v6" })
        h.write_file(dir .. "/geo/bad4", "16777216,16777471,AUS\n")
        fails(geo({ "US" }), "waf_geo.ipv4: " .. dir .. '/geo/bad4:1: "AUS" is not a country code (two letters '
            .. "A-Z, or ?? for unknown)", { ipv4 = "geo/bad4", ipv6 = "geo/v6" })
        h.write_file(dir .. "/geo/bad6", "2001:db8::,2001:db8::ff,US\n2001:db8::,2001:db8::1ff,DE\n")
        fails(geo({ "US" }), "waf_geo.ipv6: " .. dir .. "/geo/bad6:2: the range starts at or before the end of "
            .. "the range on line 1 (ranges must be in increasing order and must not overlap)",
            { ipv4 = "geo/v4", ipv6 = "geo/bad6" })
        h.write_file(dir .. "/geo/bad6", "1.0.0.0,1.0.0.255,AU\n")
        fails(geo({ "US" }), "waf_geo.ipv6: " .. dir .. '/geo/bad6:1: "1.0.0.0" is not an IPv6 address',
            { ipv4 = "geo/v4", ipv6 = "geo/bad6" })
    end)

    it("waf_geo's own keys", function()
        fails(geo({ "US" }), 'waf_geo.ipv4: must not be empty', { ipv4 = "" })
        fails(geo({ "US" }), "waf_geo.ipv6: must be a string, got 6", { ipv6 = 6 })
        fails(geo({ "US" }), "waf_geo.path: unknown key", { path = "x" })
    end)
end)
