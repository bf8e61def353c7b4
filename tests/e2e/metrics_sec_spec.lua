-- GET /metrics for the security layers (README "Metrics"): web ACL matches and
-- terminating actions (a managed CRS rule counts under its rule's name), Lua and JWT
-- authorizer outcomes and cache lookups, JWK Set fetches by outcome, and usage-plan
-- quotas. Known traffic, then exact counts summed over two workers; requests that must
-- meet the same worker's cache share one keep-alive connection. Counts continue across a
-- reload, and the scrape goes through python3-prometheus-client's parser.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local prom = require "prom"
local cjson = require "cjson"

local TOKEN = "metrics-sec-token"
local MINT = h.root .. "/tests/e2e/jwt_keys_mint.py"
local SERVER = h.root .. "/tests/e2e/jwt_keys_server.py"
local ISSUER = "https://idp.test/realm"
local CAROL = "carol-0123456789-key-ca20"

local POLICIES = {
    -- a web ACL rule that fails on x-fail (its request is the WAF's 500)
    ["fragile.lua"] = [[
local M = {}
function M.inspect(req)
  if req:header("x-fail") then error("rule store unavailable") end
  return false
end
return M
]],
    -- an authorizer whose token says what it decides
    ["decide.lua"] = [[
local M = {}
function M.authorize(req, conf, auth)
  local token = auth.identity_source[1]
  if token == "boom" then error("token store unavailable") end
  if token == "unauthorized" then error("Unauthorized") end
  return { isAuthorized = token ~= "deny" }
end
return M
]],
}

local function py(args)
    local q = { "/usr/bin/python3", h.sh_quote(MINT) }
    for _, a in ipairs(args) do q[#q + 1] = h.sh_quote(a) end
    local out, rc = h.run(table.concat(q, " ") .. " 2>&1")
    assert(rc == 0, "jwt_keys_mint.py failed: " .. out)
    return out
end

-- A GET on a raw keep-alive connection with extra header lines.
local function get(conn, path, headers)
    local extra = ""
    for name, v in pairs(headers or {}) do extra = extra .. name .. ": " .. v .. "\r\n" end
    assert(conn:send("GET " .. path .. " HTTP/1.1\r\nHost: gw.test\r\n" .. extra .. "\r\n"))
    return assert(conn:read_response())
end

describe("GET /metrics: WAF, authorizers, JWK Set fetches, quotas", function()
    local gw, dir, wport, aport, mport, good, broken, tok, bad_aud, config
    local S -- the samples of one scrape after the traffic

    local function scrape()
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/metrics", "-H", "Authorization: Bearer " .. TOKEN })
        assert.equal(200, r.status, r.body)
        return r.body
    end

    local function start_server(sdir)
        local port = h.free_port()
        local p = h.spawn({ "/usr/bin/python3", SERVER, tostring(port), sdir }, sdir, "jwks-server")
        assert(h.wait_for(function() return h.port_open(port) end, 10), "the JWK Set server did not start: " .. p.stderr())
        p.url = "http://127.0.0.1:" .. port
        p.dir = sdir
        return p
    end

    -- The requests the JWK Set server of dir got for its set.
    local function set_hits(sdir)
        local n = 0
        for _, l in ipairs(h.log_lines(sdir .. "/hits.log")) do
            if l == "/keys" then n = n + 1 end
        end
        return n
    end

    local function W(rule, action)
        return S[prom.key("moongate_waf_matches_total", { web_acl = "apis.w.stages.$default.waf", rule = rule, action = action })]
    end
    local function WR(action)
        return S[prom.key("moongate_waf_requests_total", { web_acl = "apis.w.stages.$default.waf", action = action })]
    end
    local function A(authorizer, outcome)
        return S[prom.key("moongate_authorizer_results_total", { api = "a", authorizer = authorizer, outcome = outcome })]
    end
    local function AC(authorizer, result)
        return S[prom.key("moongate_authorizer_cache_total", { api = "a", authorizer = authorizer, result = result })]
    end
    local function J(source, outcome)
        return S[prom.key("moongate_jwks_fetches_total", { source = source, outcome = outcome })]
    end
    local function Q(result)
        return S[prom.key("moongate_quota_requests_total", { api = "a", plan = "gold", result = result })]
    end

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do h.write_file(dir .. "/policies/" .. name, src) end
        h.write_file(dir .. "/token", TOKEN .. "\n")
        -- two JWK Set servers: one with the key, one whose set does not parse
        local keys = h.tmpdir()
        py({ "key", keys .. "/k1.pem", "ec" })
        local gdir, bdir = h.tmpdir(), h.tmpdir()
        py({ "jwks", gdir .. "/jwks.json", "k1=" .. keys .. "/k1.pem" })
        h.write_file(bdir .. "/jwks.json", "this is not a JWK Set")
        good, broken = start_server(gdir), start_server(bdir)
        local function sign(claims)
            local c = { iss = ISSUER, aud = "pets", sub = "alice", exp = os.time() + 300 }
            for k, v in pairs(claims or {}) do c[k] = v end
            return py({ "sign", keys .. "/k1.pem", "ES256", "k1", cjson.encode(c) })
        end
        tok, bad_aud = sign(), sign({ aud = "other" })

        wport, aport, mport = h.free_port(), h.free_port(), h.free_port()
        local function header_is(name)
            return { byte_match = { field = { single_header = name }, search_string = "1",
                positional_constraint = "EXACTLY" } }
        end
        local function mock() return { type = "mock", status = 200, body = "ok" } end
        config = {
            workers = 2,
            listen = { { address = "127.0.0.1", port = wport, api = "w" },
                       { address = "127.0.0.1", port = aport, api = "a" } },
            management = { address = "127.0.0.1", port = mport, token_file = dir .. "/token" },
            api_keys = { carol = { value = CAROL } },
            apis = {
                w = {
                    stages = { ["$default"] = { waf = { default_action = "allow", rules = {
                        { name = "watch", priority = 1, action = "count", statement = header_is("x-watch") },
                        { name = "no-bots", priority = 2, action = "block", statement = header_is("x-bot") },
                        { name = "office", priority = 3, action = "allow", statement = header_is("x-office") },
                        { name = "fragile", priority = 4, action = "block", policy = "policies/fragile.lua" },
                        { name = "crs", priority = 5, action = "count", managed = "owasp-crs" },
                    } } } },
                    routes = { ["GET /w"] = { integration = mock() } },
                },
                a = {
                    stages = { ["$default"] = {} },
                    authorizers = {
                        decide = { type = "lua", policy = "policies/decide.lua",
                            identity_sources = { "$request.header.x-token" }, ttl = 300 },
                        good = { type = "jwt", issuer = ISSUER, audience = { "pets" }, jwks_uri = good.url .. "/keys" },
                        broken = { type = "jwt", issuer = ISSUER, audience = { "pets" }, jwks_uri = broken.url .. "/keys", ttl = 0 },
                    },
                    routes = {
                        ["GET /lua"] = { authorizer = "decide", integration = mock() },
                        ["GET /jwt"] = { authorizer = "good", integration = mock() },
                        ["GET /jwt-admin"] = { authorizer = "good", scopes = { "admin" }, integration = mock() },
                        ["GET /broken"] = { authorizer = "broken", integration = mock() },
                        ["GET /metered"] = { api_key_required = true, integration = mock() },
                    },
                    usage_plans = { gold = { keys = { "carol" }, quota = { limit = 3, period = "day" } } },
                },
            },
        }
        gw = h.start_gateway(config, { dir = dir, ports = { wport, aport, mport } })

        -- the web ACL: curl, a new connection each (either worker)
        local function waf(headers, query)
            local args = { "http://127.0.0.1:" .. wport .. "/w" .. (query or "") }
            for _, hd in ipairs(headers) do args[#args + 1] = "-H"; args[#args + 1] = hd end
            return h.curl(args).status
        end
        for _ = 1, 3 do assert.equal(403, waf({ "x-bot: 1" })) end
        for _ = 1, 2 do assert.equal(200, waf({ "x-watch: 1" })) end
        assert.equal(403, waf({ "x-watch: 1", "x-bot: 1" })) -- counted, then blocked
        assert.equal(200, waf({ "x-office: 1", "x-fail: 1" })) -- allowed before fragile runs
        assert.equal(200, waf({}))
        assert.equal(500, waf({ "x-fail: 1" }))
        assert.equal(200, waf({}, "?q=%27%20OR%201%3D1--")) -- CRS counts it (942100, score >= 5)

        -- the Lua authorizer: what must meet the cache on one connection (one worker)
        local c = h.connect(aport)
        for _ = 1, 3 do assert.equal(200, get(c, "/lua", { ["x-token"] = "alice" }).status) end
        for _ = 1, 2 do assert.equal(403, get(c, "/lua", { ["x-token"] = "deny" }).status) end
        -- the JWT authorizer with its cache (the default ttl)
        for _ = 1, 3 do assert.equal(200, get(c, "/jwt", { authorization = "Bearer " .. tok }).status) end
        assert.equal(403, get(c, "/jwt-admin", { authorization = "Bearer " .. tok }).status) -- a cache hit
        c:close()
        local function curl(path, headers)
            local args = { "http://127.0.0.1:" .. aport .. path }
            for _, hd in ipairs(headers or {}) do args[#args + 1] = "-H"; args[#args + 1] = hd end
            return h.curl(args).status
        end
        assert.equal(401, curl("/lua")) -- no identity: no cache lookup
        assert.equal(401, curl("/lua", { "x-token: unauthorized" }))
        assert.equal(500, curl("/lua", { "x-token: boom" }))
        assert.equal(401, curl("/jwt", { "Authorization: Bearer " .. bad_aud }))
        assert.equal(401, curl("/jwt")) -- no token: no cache lookup
        assert.equal(401, curl("/broken", { "Authorization: Bearer " .. tok })) -- no keys
        -- the quota: 3 a day
        for _ = 1, 3 do assert.equal(200, curl("/metered", { "x-api-key: " .. CAROL })) end
        assert.equal(429, curl("/metered", { "x-api-key: " .. CAROL }))

        S = prom.parse(scrape())
    end)

    lazy_teardown(function()
        h.stop_all(gw, good, broken)
    end)

    it("counts web ACL matches per rule and action, and requests per terminating action", function()
        assert.equal(4, W("no-bots", "BLOCK"))
        assert.equal(3, W("watch", "COUNT"))
        assert.equal(1, W("office", "ALLOW"))
        assert.equal(0, W("fragile", "BLOCK")) -- it failed, it did not match
        assert.equal(1, W("crs", "COUNT")) -- a managed rule set counts under its rule's name
        assert.equal(4, W("Default_Action", "ALLOW")) -- two watched, one plain, one CRS counted
        assert.equal(4, WR("BLOCK"))
        assert.equal(5, WR("ALLOW"))
        assert.equal(1, WR("ERROR"))
    end)

    it("counts Lua authorizer outcomes and cache hits and misses", function()
        assert.equal(3, A("decide", "allow"))
        assert.equal(2, A("decide", "deny"))
        assert.equal(2, A("decide", "unauthorized"))
        assert.equal(1, A("decide", "error"))
        assert.equal(3, AC("decide", "hit")) -- alice twice, deny once
        assert.equal(4, AC("decide", "miss")) -- alice, deny, unauthorized, boom
    end)

    it("counts JWT authorizer outcomes and cache lookups", function()
        assert.equal(3, A("good", "allow"))
        assert.equal(1, A("good", "deny"))
        assert.equal(2, A("good", "unauthorized"))
        assert.equal(0, A("good", "error"))
        assert.equal(3, AC("good", "hit"))
        assert.equal(2, AC("good", "miss")) -- the first token, the wrong audience
        assert.equal(1, A("broken", "error")) -- refused for want of keys
        assert.equal(0, A("broken", "unauthorized"))
        assert.is_nil(AC("broken", "hit")) -- ttl = 0: no cache series
    end)

    it("counts JWK Set fetches by source and outcome, as the servers saw them", function()
        assert.equal(1, J(good.url .. "/keys", "success"))
        assert.equal(1, set_hits(good.dir))
        local n = set_hits(broken.dir)
        assert.is_true(n >= 1)
        assert.equal(n, J(broken.url .. "/keys", "parse_error"))
        assert.is_nil(J(broken.url .. "/keys", "success"))
    end)

    it("counts the requests a usage plan's quota took and refused", function()
        assert.equal(3, Q("counted"))
        assert.equal(1, Q("exceeded"))
    end)

    it("keeps counting across a reload", function()
        h.write_file(dir .. "/gateway.lua", h.config_source(config))
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/reload", "-X", "POST",
            "-H", "Authorization: Bearer " .. TOKEN })
        assert.equal(200, r.status, r.body)
        assert.equal(403, h.curl({ "http://127.0.0.1:" .. wport .. "/w", "-H", "x-bot: 1" }).status)
        assert.equal(401, h.curl({ "http://127.0.0.1:" .. aport .. "/lua" }).status)
        assert.equal(429, h.curl({ "http://127.0.0.1:" .. aport .. "/metered", "-H", "x-api-key: " .. CAROL }).status)
        local s = prom.parse(scrape())
        local before = S
        S = s
        assert.equal(5, W("no-bots", "BLOCK"))
        assert.equal(5, WR("BLOCK"))
        assert.equal(3, A("decide", "unauthorized"))
        assert.equal(2, Q("exceeded"))
        assert.equal(3, A("good", "allow")) -- unchanged, still exported
        S = before
    end)

    it("exports families python3-prometheus-client's parser reads", function()
        local f = prom.families(prom.samples(h, dir, scrape()))
        assert.equal("counter", f.moongate_waf_matches.type)
        assert.same({ type = "counter", samples = 3 }, f.moongate_waf_requests)
        assert.same({ type = "counter", samples = 12 }, f.moongate_authorizer_results)
        assert.same({ type = "counter", samples = 4 }, f.moongate_authorizer_cache)
        assert.equal("counter", f.moongate_jwks_fetches.type)
        assert.same({ type = "counter", samples = 2 }, f.moongate_quota_requests)
    end)
end)
