-- GET /metrics on the management listener (README "Metrics"): the bearer token, the
-- Prometheus text format 0.0.4 parsed by a real parser (python3-prometheus-client's),
-- exact counts after known traffic summed over two workers (requests by route key and
-- status class, gateway response types, throttle levels), consistent histograms, and
-- counters that survive reloads (an unchanged route continues; a removed route is no
-- longer exported and continues where it stopped when it comes back).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local TOKEN = "metrics-test-token"

-- The exposition's samples by key (prom.lua).
local prom = require "prom"
local key, parse = prom.key, prom.parse

local BOUNDS = { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf" }

-- Checks the histogram name of labels: buckets cumulative (never decreasing), +Inf equal
-- to _count, and _count equal to count; returns _sum.
local function check_histogram(s, name, labels, count)
    local prev = 0
    for _, le in ipairs(BOUNDS) do
        local l = {}
        for k, v in pairs(labels) do l[k] = v end
        l.le = le
        local v = s[key(name .. "_bucket", l)]
        assert.is_not_nil(v, name .. " bucket le=" .. le)
        assert.is_true(v >= prev, name .. " buckets are cumulative at le=" .. le)
        prev = v
    end
    assert.equal(count, prev, name .. " +Inf bucket")
    assert.equal(count, s[key(name .. "_count", labels)], name .. "_count")
    local sum = s[key(name .. "_sum", labels)]
    assert.is_true(sum >= 0, name .. "_sum")
    return sum
end

describe("GET /metrics", function()
    local gw, up, dir, port, mport

    local function config(with_limited)
        local routes = {
            ["GET /items"] = { integration = { type = "http", uri = up.origin .. "/items" } },
            ["GET /many"] = { integration = { type = "mock", status = 200, body = "many" } },
            ["GET /down"] = { integration = { type = "mock", status = 503, body = "no" } },
        }
        if with_limited then
            routes["GET /limited"] = { integration = { type = "http", uri = up.origin .. "/limited" } }
        end
        local settings = with_limited and { ["GET /limited"] = { throttle = { rate = 0.001, burst = 1 } } } or nil
        return {
            workers = 2,
            listen = { { address = "127.0.0.1", port = port, api = "shop" } },
            management = { address = "127.0.0.1", port = mport, token_file = dir .. "/token" },
            apis = { shop = {
                stages = { ["$default"] = {
                    route_settings = settings,
                    waf = { default_action = "allow", rules = {
                        { name = "no-bots", priority = 1, action = "block", statement = { byte_match = {
                            field = { single_header = "x-bot" }, search_string = "1",
                            positional_constraint = "EXACTLY" } } },
                    } },
                } },
                routes = routes,
            } },
        }
    end

    local function scrape(token)
        local args = { "http://127.0.0.1:" .. mport .. "/metrics" }
        if token ~= false then
            args[#args + 1] = "-H"
            args[#args + 1] = "Authorization: Bearer " .. (token or TOKEN)
        end
        return h.curl(args)
    end

    local function get(path, ...)
        local args = { gw:url(path), ... }
        return h.curl(args).status
    end

    local function reload(with_limited)
        h.write_file(dir .. "/gateway.lua", h.config_source(config(with_limited)))
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/reload", "-X", "POST",
            "-H", "Authorization: Bearer " .. TOKEN })
        assert.equal(200, r.status, r.body)
    end

    local function R(route, class)
        return key("moongate_requests_total", { api = "shop", stage = "$default", route = route, status_class = class })
    end

    lazy_setup(function()
        dir = h.tmpdir()
        port, mport = h.free_port(), h.free_port()
        h.write_file(dir .. "/token", TOKEN .. "\n")
        up = h.start_upstream()
        gw = h.start_gateway(config(true), { dir = dir, ports = { port, mport } })
        -- the known traffic
        for _ = 1, 3 do assert.equal(200, get("/items")) end
        for _ = 1, 2 do assert.equal(404, get("/nope")) end -- no route
        assert.equal(200, get("/limited"))
        assert.equal(429, get("/limited"))
        assert.equal(403, get("/items", "-H", "x-bot: 1")) -- the WAF runs before routing
        assert.equal(503, get("/down"))
        -- 40 connections: both workers serve some of them (SO_REUSEPORT spreads them)
        for _ = 1, 40 do assert.equal(200, get("/many")) end
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    it("answers 401 without the token or with a wrong one", function()
        local r = scrape(false)
        assert.equal(401, r.status)
        assert.equal('Bearer realm="moongate management"', r.headers["www-authenticate"])
        r = scrape("wrong")
        assert.equal(401, r.status)
        assert.equal('Bearer realm="moongate management", error="invalid_token"', r.headers["www-authenticate"])
    end)

    it("answers 404 to another method than GET", function()
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/metrics", "-X", "POST",
            "-H", "Authorization: Bearer " .. TOKEN })
        assert.equal(404, r.status)
        assert.matches("GET /metrics", r.body, 1, true)
    end)

    it("serves the text format 0.0.4, which python3-prometheus-client's parser reads", function()
        local r = scrape()
        assert.equal(200, r.status)
        assert.equal("text/plain; version=0.0.4; charset=utf-8", r.headers["content-type"])
        local f = prom.families(prom.samples(h, dir, r.body))
        -- the parser names counters without _total
        -- five route series (four routes and "(none)") with 2xx..5xx each
        assert.same({ type = "counter", samples = 20 }, f.moongate_requests)
        assert.equal("histogram", f.moongate_request_duration_seconds.type)
        assert.equal("histogram", f.moongate_integration_duration_seconds.type)
        assert.same({ type = "counter", samples = 3 }, f.moongate_gateway_responses)
        assert.same({ type = "counter", samples = 1 }, f.moongate_throttled)
        assert.same({ type = "gauge", samples = 1 }, f.moongate_build_info)
        assert.same({ type = "counter", samples = 2 }, f.moongate_reloads)
        assert.same({ type = "gauge", samples = 1 }, f.moongate_config_generation)
        assert.same({ type = "gauge", samples = 1 }, f.moongate_workers)
    end)

    it("counts the traffic exactly, summed over the workers", function()
        local s, types = parse(scrape().body)
        assert.equal("counter", types.moongate_requests_total)
        assert.equal("histogram", types.moongate_request_duration_seconds)
        assert.equal(3, s[R("GET /items", "2xx")])
        assert.equal(0, s[R("GET /items", "4xx")])
        assert.equal(1, s[R("GET /limited", "2xx")])
        assert.equal(1, s[R("GET /limited", "4xx")])
        assert.equal(40, s[R("GET /many", "2xx")])
        assert.equal(1, s[R("GET /down", "5xx")])
        -- no route: the two misses and the WAF block
        assert.equal(3, s[R("(none)", "4xx")])
        assert.equal(0, s[R("(none)", "2xx")])
        local function G(t) return s[key("moongate_gateway_responses_total", { api = "shop", stage = "$default", type = t })] end
        assert.equal(2, G("RESOURCE_NOT_FOUND"))
        assert.equal(1, G("THROTTLED"))
        assert.equal(1, G("WAF_FILTERED"))
        assert.is_nil(G("UNAUTHORIZED")) -- types never seen are not exported
        assert.equal(1, s[key("moongate_throttled_total", { api = "shop", stage = "$default", level = "route" })])
        assert.equal(2, s["moongate_workers"])
        assert.equal(1, s["moongate_config_generation"])
        assert.equal(1, s['moongate_build_info{version="0.1.0"}'])
        assert.is_true(s["moongate_process_resident_memory_bytes"] > 1e6)
        assert.is_true(s["moongate_open_connections"] >= 0)
        -- a route never requested is not exported yet
        assert.is_nil(s[R("GET /other", "2xx")])
    end)

    it("keeps histograms consistent with the counts", function()
        local s = parse(scrape().body)
        local base = { api = "shop", stage = "$default" }
        for route, n in pairs({ ["GET /items"] = 3, ["GET /limited"] = 2, ["GET /many"] = 40, ["(none)"] = 3 }) do
            local l = { api = base.api, stage = base.stage, route = route }
            check_histogram(s, "moongate_request_duration_seconds", l, n)
        end
        -- integration latency: only requests whose integration ran (not the 429)
        check_histogram(s, "moongate_integration_duration_seconds",
            { api = "shop", stage = "$default", route = "GET /limited" }, 1)
        check_histogram(s, "moongate_integration_duration_seconds",
            { api = "shop", stage = "$default", route = "GET /items" }, 3)
        assert.is_nil(s[key("moongate_integration_duration_seconds_count", { api = "shop", stage = "$default", route = "(none)" })])
    end)

    it("keeps counting across reloads; a removed route is not exported, and continues when it comes back", function()
        reload(false) -- GET /limited removed
        assert.equal(200, get("/items"))
        local s = parse(scrape().body)
        assert.equal(4, s[R("GET /items", "2xx")])
        assert.is_nil(s[R("GET /limited", "2xx")])
        assert.equal(2, s["moongate_config_generation"])
        assert.equal(1, s['moongate_reloads_total{outcome="success"}'])
        reload(true)
        local st = get("/limited") -- 200 or 429, as the route's bucket is new or not
        s = parse(scrape().body)
        assert.equal(st == 200 and 2 or 1, s[R("GET /limited", "2xx")])
        assert.equal(st == 429 and 2 or 1, s[R("GET /limited", "4xx")])
        assert.equal(4, s[R("GET /items", "2xx")])
        check_histogram(s, "moongate_request_duration_seconds",
            { api = "shop", stage = "$default", route = "GET /items" }, 4)
        -- a rejected reload is counted too
        h.write_file(dir .. "/gateway.lua", "return {")
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/reload", "-X", "POST",
            "-H", "Authorization: Bearer " .. TOKEN })
        assert.equal(422, r.status)
        s = parse(scrape().body)
        assert.equal(1, s['moongate_reloads_total{outcome="failure"}'])
        assert.equal(2, s['moongate_reloads_total{outcome="success"}'])
        h.write_file(dir .. "/gateway.lua", h.config_source(config(true)))
    end)
end)

describe("moongate_tls_certificate_expiry_seconds", function()
    local gw, dir, pki, tls_port, mport

    lazy_setup(function()
        pki = h.tmpdir()
        local out, rc = h.run("sh " .. h.sh_quote(h.root .. "/tests/e2e/tls_certs.sh") .. " " .. h.sh_quote(pki))
        assert(rc == 0, "tls_certs.sh failed: " .. out)
        dir = h.tmpdir()
        tls_port, mport = h.free_port(), h.free_port()
        h.write_file(dir .. "/token", TOKEN .. "\n")
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = tls_port, api = "a",
                         tls = { certificate = pki .. "/localhost.pem", key = pki .. "/localhost.key" } } },
            management = { address = "127.0.0.1", port = mport, token_file = dir .. "/token" },
            domains = { ["other.test"] = { certificate = pki .. "/other.pem", key = pki .. "/other.key",
                                           mappings = { [""] = "a" } } },
            apis = { a = { stages = { ["$default"] = {} },
                           routes = { ["$default"] = { integration = { type = "mock" } } } } },
        }, { dir = dir, ports = { tls_port, mport } })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    -- notAfter of a certificate file as Unix time, from openssl and date.
    local function not_after(file)
        local out = h.run("date -d \"$(openssl x509 -noout -enddate -in " .. h.sh_quote(file)
            .. " | cut -d= -f2)\" +%s")
        return tonumber((out:gsub("%s+$", "")))
    end

    it("says the seconds left of the listener's default certificate and of each domain's", function()
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/metrics", "-H", "Authorization: Bearer " .. TOKEN })
        assert.equal(200, r.status)
        local s = parse(r.body)
        local now = os.time()
        for domain, file in pairs({ ["(default)"] = pki .. "/localhost.pem", ["other.test"] = pki .. "/other.pem" }) do
            local v = s[key("moongate_tls_certificate_expiry_seconds",
                { domain = domain, certificate = file, port = tostring(tls_port) })]
            assert.is_not_nil(v, domain)
            -- the scrape and this test's clock agree within a minute
            assert.is_true(math.abs(v - (not_after(file) - now)) < 60, domain .. ": " .. tostring(v))
        end
    end)
end)
