-- Response caching (README "Response caching"), with curl against the real gateway and
-- two workers sharing one store per stage: misses and hits (x-cache, Age, the same body),
-- path parameters and cache key parameters in the key, methods and statuses that are not
-- cached, responses that must not be shared, TTL expiry, the size limit and eviction,
-- Cache-Control: max-age=0 with and without the right to invalidate under each strategy,
-- flushing through the management listener, reloads, HTTP APIs and the access log.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local OPS = "ops-key-aaaaaaaaaaaaaaaaaaaaaaaa"
local USER = "user-key-bbbbbbbbbbbbbbbbbbbbbbbb"

-- A handler whose body names the request that made it: a hit repeats a miss's body.
local GEN = [[
local M = {}
function M.handle(event, conf, req)
  local p = event.pathParameters or {}
  local size = tonumber(p.size or "0") or 0
  local body = "made-by=" .. req.request_id .. (size > 0 and (";" .. string.rep("x", size)) or "")
  local headers = { ["content-type"] = "text/plain", ["x-backend"] = "gen" }
  if p.kind == "cookie" then headers["set-cookie"] = "s=1" end
  if p.kind == "nostore" then headers["cache-control"] = "no-store" end
  if p.kind == "private" then headers["cache-control"] = "private, max-age=60" end
  return { statusCode = tonumber(p.code or "200"), headers = headers, body = body }
end
return M
]]

-- An authorizer: token "admin" may invalidate the cache, "user" may not.
local AUTH = [[
return { authorize = function(req, conf, auth)
  local t = auth.identity_source[1]
  return { isAuthorized = true, context = { invalidateCache = t == "admin" } }
end }
]]

local function routes()
    local gen = { type = "lua", handler = "policies/gen.lua" }
    return {
        ["GET /gen"] = { integration = gen },
        ["ANY /any"] = { integration = gen },
        ["GET /pets/{id}"] = { integration = gen },
        ["GET /search"] = { integration = gen, cache_key_parameters = {
            "method.request.querystring.page", "method.request.header.x-tenant" } },
        ["GET /isearch"] = { integration = { type = "lua", handler = "policies/gen.lua",
            cache_key_parameters = { "method.request.querystring.page" } } },
        ["POST /gen"] = { integration = gen },
        ["POST /cached"] = { integration = gen },
        ["GET /status/{code}"] = { integration = gen },
        ["GET /kind/{kind}"] = { integration = gen },
        ["GET /big/{size}"] = { integration = gen },
        ["GET /short"] = { integration = gen },
        ["GET /off"] = { integration = gen },
        ["GET /auth"] = { integration = gen, authorizer = "tok" },
        ["GET /mock"] = { integration = { type = "mock", body = '{"mock":true}', headers = { ["x-m"] = "1" } } },
    }
end

local function config(t)
    local settings = {
        ["POST /cached"] = { cache = { enabled = true } },
        ["GET /short"] = { cache = { ttl = 1 } },
        ["GET /off"] = { cache = { enabled = false } },
    }
    local function stage(cache) return { cache = cache, route_settings = settings } end
    local search = routes()
    search["GET /search"].cache_key_parameters = t.search_params or search["GET /search"].cache_key_parameters
    return {
        workers = 2,
        listen = {
            { address = "127.0.0.1", port = t.ports.pets, api = "pets" },
            { address = "127.0.0.1", port = t.ports.web, api = "web" },
        },
        management = { address = "127.0.0.1", port = t.ports.mgmt },
        api_keys = { ops = { value = OPS }, user = { value = USER } },
        apis = {
            pets = {
                protocol = "rest",
                authorizers = { tok = { type = "lua", policy = "policies/auth.lua",
                    identity_sources = { "$request.header.x-token" }, ttl = 0 } },
                stages = {
                    prod = {
                        cache = { size_mb = 1, unauthorized_cache_control = "FAIL_WITH_403",
                                  invalidate_keys = { "ops" } },
                        route_settings = settings,
                        access_log = { path = t.dir .. "/pets.log",
                            format = '{"path":"$context.path","cache":"$context.cache.status","status":"$context.status"}' },
                    },
                    warn = stage({ unauthorized_cache_control = "SUCCEED_WITH_RESPONSE_HEADER" }),
                    quiet = stage({ unauthorized_cache_control = "SUCCEED_WITHOUT_RESPONSE_HEADER" }),
                    open = stage({ require_authorization_for_cache_control = false }),
                    plain = {},
                },
                routes = search,
            },
            web = {
                stages = { ["$default"] = { cache = { ttl = 60 } } },
                routes = { ["GET /gen"] = { integration = { type = "lua", handler = "policies/gen.lua" } },
                           ["GET /proxy"] = { integration = { type = "http", uri = t.origin .. "/ok" } } },
            },
        },
    }
end

describe("response caching", function()
    local gw, up, dir, ports, token, conf_t

    local function get(path, ...) return h.curl({ gw:url(path, ports.pets), ... }) end
    local function web(path, ...) return h.curl({ gw:url(path, ports.web), ... }) end
    local function manage(method, path, ...)
        return h.curl({ "http://127.0.0.1:" .. ports.mgmt .. path, "-X", method, ... })
    end
    local function auth() return "Authorization: Bearer " .. token end

    local function miss(r, what)
        assert.equal(200, r.status, what)
        assert.equal("Miss from moongate", r.headers["x-cache"], what)
        assert.is_nil(r.headers["age"], what)
    end
    local function hit(r, body, what)
        assert.equal(200, r.status, what)
        assert.equal("Hit from moongate", r.headers["x-cache"], what)
        assert.matches("^%d+$", r.headers["age"] or "", what)
        if body then assert.equal(body, r.body, what) end
    end

    lazy_setup(function()
        up = h.start_upstream(nil, { raw_log = true })
        dir = h.tmpdir()
        h.run("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        h.write_file(dir .. "/policies/gen.lua", GEN)
        h.write_file(dir .. "/policies/auth.lua", AUTH)
        ports = { pets = h.free_port(), web = h.free_port(), mgmt = h.free_port() }
        conf_t = { ports = ports, dir = dir, origin = up.origin }
        gw = h.start_gateway(config(conf_t), { dir = dir })
        token = h.read_file(dir .. "/state/management.token"):gsub("%s+$", "")
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    it("answers a GET from the cache after a miss: x-cache, Age, the same body and headers", function()
        local first = get("/prod/gen")
        miss(first)
        assert.matches("^made%-by=", first.body)
        local second = get("/prod/gen")
        hit(second, first.body)
        assert.equal("gen", second.headers["x-backend"])
        assert.equal("text/plain", second.headers["content-type"])
        -- the gateway's own headers are the new request's
        assert.are_not.equal(first.headers["x-amzn-requestid"], second.headers["x-amzn-requestid"])
        -- mock integrations too
        local m1, m2 = get("/prod/mock"), get("/prod/mock")
        miss(m1)
        hit(m2, '{"mock":true}')
        assert.equal("1", m2.headers["x-m"])
    end)

    it("is shared by the two workers: every new connection gets the one entry", function()
        local first = get("/prod/pets/shared")
        miss(first)
        for i = 1, 16 do hit(get("/prod/pets/shared"), first.body, "request " .. i) end
    end)

    it("keys by path parameters (/pets/1 and /pets/2 are two entries)", function()
        local one, two = get("/prod/pets/1"), get("/prod/pets/2")
        miss(one)
        miss(two)
        assert.are_not.equal(one.body, two.body)
        hit(get("/prod/pets/1"), one.body)
        hit(get("/prod/pets/2"), two.body)
    end)

    it("keys by the cache key parameters, and by nothing else", function()
        local p1 = get("/prod/search?page=1")
        miss(p1)
        miss(get("/prod/search?page=2"))
        hit(get("/prod/search?page=1&other=x"), p1.body)
        miss(get("/prod/search?page=1", "-H", "x-tenant: a"))
        local ta = get("/prod/search?page=1", "-H", "x-tenant: a")
        hit(ta)
        miss(get("/prod/search?page=1", "-H", "x-tenant: b"))
        -- parameters named on the integration count the same
        local i1 = get("/prod/isearch?page=1")
        miss(i1)
        miss(get("/prod/isearch?page=2"))
        hit(get("/prod/isearch?page=1"), i1.body)
    end)

    it("caches only GET unless the route enables other methods", function()
        local a = get("/prod/gen", "-X", "POST", "-d", "x")
        local b = get("/prod/gen", "-X", "POST", "-d", "x")
        assert.equal(200, a.status)
        assert.is_nil(a.headers["x-cache"])
        assert.are_not.equal(a.body, b.body)
        local c1 = get("/prod/cached", "-X", "POST", "-d", "x")
        miss(c1)
        hit(get("/prod/cached", "-X", "POST", "-d", "y"), c1.body)
        -- an ANY route caches GET requests only; HEAD is never answered from the cache
        local g1 = get("/prod/any")
        miss(g1)
        hit(get("/prod/any"), g1.body)
        local d = get("/prod/any", "-X", "DELETE")
        assert.equal(200, d.status)
        assert.is_nil(d.headers["x-cache"])
        local hd = h.curl({ "-I", gw:url("/prod/any", ports.pets) })
        assert.equal(200, hd.status)
        assert.is_nil(hd.headers["x-cache"])
    end)

    it("does not cache a route whose cache is off, nor a stage without a cache", function()
        local r = get("/prod/off")
        assert.equal(200, r.status)
        assert.is_nil(r.headers["x-cache"])
        assert.are_not.equal(r.body, get("/prod/off").body)
        local p = get("/plain/gen")
        assert.is_nil(p.headers["x-cache"])
        assert.are_not.equal(p.body, get("/plain/gen").body)
    end)

    it("stores only 200 responses", function()
        for _, code in ipairs({ "404", "500", "201" }) do
            local a, b = get("/prod/status/" .. code), get("/prod/status/" .. code)
            assert.equal(tonumber(code), a.status)
            assert.equal("Miss from moongate", a.headers["x-cache"])
            assert.equal("Miss from moongate", b.headers["x-cache"])
            assert.are_not.equal(a.body, b.body)
        end
    end)

    it("does not share responses that set a cookie or say no-store or private", function()
        for _, kind in ipairs({ "cookie", "nostore", "private" }) do
            local a, b = get("/prod/kind/" .. kind), get("/prod/kind/" .. kind)
            miss(a, kind)
            miss(b, kind)
            assert.are_not.equal(a.body, b.body)
        end
        hit((function() get("/prod/kind/plain"); return get("/prod/kind/plain") end)())
    end)

    it("never serves an entry older than its TTL", function()
        local a = get("/prod/short")
        miss(a)
        hit(get("/prod/short"), a.body)
        h.sleep(1.2)
        local b = get("/prod/short")
        miss(b)
        assert.are_not.equal(a.body, b.body)
    end)

    it("does not store a body past the size limit, and evicts the least recently used", function()
        -- a 1 MB cache takes bodies up to 512 KB
        local big = get("/prod/big/600000")
        miss(big)
        miss(get("/prod/big/600000"))
        -- three 300 KB bodies fit in 1 MB; a fourth evicts the least recently used
        manage("DELETE", "/cache/pets/prod", "-H", auth())
        miss(get("/prod/big/300001"))
        miss(get("/prod/big/300002"))
        miss(get("/prod/big/300003"))
        hit(get("/prod/big/300001")) -- now the most recent; 300002 the least
        miss(get("/prod/big/300004"))
        miss(get("/prod/big/300002"))
        local st = manage("GET", "/cache/pets/prod", "-H", auth()):json()
        assert.is_true(st.bytes <= 1048576)
    end)

    describe("Cache-Control: max-age=0", function()
        local NOCACHE = "Cache-Control: max-age=0"

        it("FAIL_WITH_403: a caller without the right gets 403", function()
            miss(get("/prod/pets/cc"))
            local r = get("/prod/pets/cc", "-H", NOCACHE)
            assert.equal(403, r.status)
            assert.equal("AccessDeniedException", r.headers["x-amzn-errortype"])
            assert.is_nil(r.headers["x-cache"])
            assert.equal('{"Message":"User is not authorized to access this resource"}', r.body)
            r = get("/prod/pets/cc", "-H", NOCACHE, "-H", "x-api-key: " .. USER)
            assert.equal(403, r.status)
        end)

        it("refreshes the entry for a caller whose API key is in invalidate_keys", function()
            local a = get("/prod/pets/refresh")
            miss(a)
            local b = get("/prod/pets/refresh", "-H", NOCACHE, "-H", "x-api-key: " .. OPS)
            miss(b)
            assert.are_not.equal(a.body, b.body)
            hit(get("/prod/pets/refresh"), b.body)
        end)

        it("refreshes for a caller whose authorizer says invalidateCache", function()
            local a = get("/prod/auth", "-H", "x-token: user")
            miss(a)
            assert.equal(403, get("/prod/auth", "-H", "x-token: user", "-H", NOCACHE).status)
            local b = get("/prod/auth", "-H", "x-token: admin", "-H", NOCACHE)
            miss(b)
            assert.are_not.equal(a.body, b.body)
            hit(get("/prod/auth", "-H", "x-token: user"), b.body)
        end)

        it("SUCCEED_WITH_RESPONSE_HEADER: the cached response, with a Warning", function()
            local a = get("/warn/gen")
            miss(a)
            local r = get("/warn/gen", "-H", NOCACHE)
            hit(r, a.body)
            assert.matches('^199 moongate ".*may not invalidate', r.headers["warning"])
            assert.is_nil(get("/warn/gen").headers["warning"])
        end)

        it("SUCCEED_WITHOUT_RESPONSE_HEADER: the cached response, nothing else", function()
            local a = get("/quiet/gen")
            miss(a)
            local r = get("/quiet/gen", "-H", NOCACHE)
            hit(r, a.body)
            assert.is_nil(r.headers["warning"])
        end)

        it("refreshes for anyone when authorization is not required", function()
            local a = get("/open/gen")
            miss(a)
            local b = get("/open/gen", "-H", "Cache-Control: no-cache, max-age=0")
            miss(b)
            assert.are_not.equal(a.body, b.body)
            hit(get("/open/gen"), b.body)
        end)
    end)

    it("flushes one stage through the management listener", function()
        local a = get("/prod/pets/flush")
        miss(a)
        local w = get("/warn/pets/flush")
        miss(w)
        assert.equal(401, manage("DELETE", "/cache/pets/prod").status)
        local r = manage("DELETE", "/cache/pets/prod", "-H", auth())
        assert.equal(200, r.status)
        local j = r:json()
        assert.equal("pets", j.api)
        assert.equal("prod", j.stage)
        assert.is_true(j.flushed >= 1)
        assert.equal(0, j.entries)
        miss(get("/prod/pets/flush"))
        hit(get("/warn/pets/flush"), w.body) -- another stage keeps its entries
        assert.equal(404, manage("DELETE", "/cache/pets/plain", "-H", auth()).status)
        assert.equal(404, manage("DELETE", "/cache/pets/nope", "-H", auth()).status)
        assert.equal(405, manage("PUT", "/cache/pets/prod", "-H", auth()).status)
    end)

    it("works on HTTP APIs, proxy integrations included", function()
        local a = web("/gen")
        miss(a)
        hit(web("/gen"), a.body)
        local before = select(2, up.received():gsub("GET /ok", ""))
        miss(web("/proxy"))
        local p = web("/proxy")
        hit(p)
        assert.equal(before + 1, select(2, up.received():gsub("GET /ok", "")))
    end)

    it("says HIT or MISS in $context.cache.status", function()
        get("/prod/pets/logged")
        get("/prod/pets/logged")
        assert.is_true(h.wait_for(function()
            local n = 0
            for _, e in ipairs(h.json_log(dir .. "/pets.log")) do
                if e.path == "/prod/pets/logged" then n = n + 1 end
            end
            return n == 2
        end, 5))
        local seen = {}
        for _, e in ipairs(h.json_log(dir .. "/pets.log")) do
            if e.path == "/prod/pets/logged" then seen[#seen + 1] = e.cache end
        end
        -- two workers buffer their own lines: the file need not hold them in request order
        table.sort(seen)
        assert.same({ "HIT", "MISS" }, seen)
    end)

    it("keeps entries over a reload that changes no key setting, and starts empty otherwise", function()
        local a = get("/prod/pets/reload")
        miss(a)
        local function reload()
            h.write_file(gw.config_path, h.config_source(config(conf_t)))
            local r = manage("POST", "/reload", "-H", auth())
            assert.equal(200, r.status, r.body)
        end
        reload()
        hit(get("/prod/pets/reload"), a.body)
        conf_t.search_params = { "method.request.querystring.page" } -- a key setting changes
        reload()
        miss(get("/prod/pets/reload"))
    end)
end)

describe("response caching configuration", function()
    it("names an unknown API key in invalidate_keys", function()
        local dir = h.tmpdir()
        local path = h.write_file(dir .. "/gateway.lua", h.config_source({
            api_keys = { ops = { value = OPS } },
            apis = { pets = { protocol = "rest",
                stages = { prod = { cache = { invalidate_keys = { "opz" } } } },
                routes = { ["GET /a"] = { integration = { type = "mock" } } } } },
        }))
        local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
        assert.are_not.equal(0, rc)
        assert.matches('apis%.pets%.stages%.prod%.cache%.invalidate_keys%[1%]: unknown API key "opz" %(api_keys%)', out)
    end)
end)
