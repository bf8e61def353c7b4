-- Throttling, API keys, usage plans and quotas (README "Throttling, API keys and usage
-- plans"): a stage limit under load from many keep-alive connections on 2 workers,
-- per-route, account, per-key and per-plan limits, the 429 and 403 responses with their
-- headers, RateLimit headers switched off, and quota counters that survive kill -9.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local socket = require "socket"

local THROTTLED = '{"message":"Too Many Requests"}'

-- Key values (20+ characters); the last 4 characters are what the access log shows.
local KEYS = {
    alice = "alice-0123456789-key-a1ce",
    bob = "bob-0123456789abc-key-b0b0",
    carl = "carl-0123456789ab-key-ca71",
    dave = "dave-0123456789ab-key-da7e",
    erin = "erin-0123456789ab-key-e71n",
    frank = "frank-0123456789a-key-f7a2",
    hashed = "hashed-0123456789-key-4a54",
    filekey = "filekey-012345678-key-f11e",
    filehash = "filehash-01234567-key-f4a5",
    carol = "carol-0123456789-key-ca20",
}

local function sha256(s)
    local out = h.run("printf %s " .. h.sh_quote(s) .. " | sha256sum")
    return assert(out:match("^(%x+)"), "sha256sum failed: " .. out)
end

-- A GET on a raw keep-alive connection, optionally with an API key.
local function get(conn, path, key)
    assert(conn:send("GET " .. path .. " HTTP/1.1\r\nHost: gw.test\r\n"
        .. (key and ("x-api-key: " .. key .. "\r\n") or "") .. "\r\n"))
    return assert(conn:read_response())
end

local function mock(body)
    return { integration = { type = "mock", body = body or "ok" } }
end

-- The policy name of a RateLimit / RateLimit-Policy header value.
local function policy(v)
    return v and v:match('^"([^"]+)"')
end

local function assert_throttled(r, name)
    h.assert_gateway_response(r, 429, "Too Many Requests", "TooManyRequestsException")
    assert.is_true((tonumber(r.headers["retry-after"]) or 0) >= 1, "retry-after: " .. tostring(r.headers["retry-after"]))
    if name then
        assert.are.equal(name, policy(r.headers["ratelimit-policy"]), r.raw_head)
        assert.matches('^"' .. name:gsub("%-", "%%-") .. '";r=0;t=%d+$', r.headers["ratelimit"] or "")
    end
end

local function assert_forbidden(r)
    h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
end

describe("throttling", function()
    local gw, dir, port_t, port_k
    local log_path

    lazy_setup(function()
        dir = h.tmpdir()
        log_path = dir .. "/keys.log"
        port_t, port_k = h.free_port(), h.free_port()
        local api_keys = {}
        for _, id in ipairs({ "alice", "bob", "carl", "dave", "erin", "frank" }) do
            api_keys[id] = { value = KEYS[id] }
        end
        api_keys.hashed = { sha256 = sha256(KEYS.hashed) }
        local routes_t = {
            ["GET /load"] = mock(),
            ["GET /tight"] = mock(),
            ["GET /other"] = mock(),
            ["GET /x"] = mock(),
        }
        local slow = { rate = 0.01, burst = 1 } -- one token per 100 s: nothing refills during the test
        gw = h.start_gateway({
            workers = 2,
            listen = {
                { address = "127.0.0.1", port = port_t, api = "t" },
                { address = "127.0.0.1", port = port_k, api = "k" },
            },
            api_keys = api_keys,
            apis = {
                t = {
                    stages = {
                        ["$default"] = { throttle = { rate = 100, burst = 20 } },
                        rt = {
                            throttle = { rate = 1000, burst = 1000 },
                            route_settings = { ["GET /tight"] = { throttle = { rate = 0.01, burst = 2 } } },
                        },
                        order = {
                            shared_throttle = { rate = 0.01, burst = 5 },
                            route_settings = { ["GET /tight"] = { throttle = slow } },
                        },
                        tie = {
                            shared_throttle = { rate = 0.01, burst = 2 },
                            route_settings = { ["GET /tight"] = { throttle = slow } },
                        },
                        nohdr = { throttle = slow, rate_limit_headers = false },
                        free = {},
                    },
                    routes = routes_t,
                },
                k = {
                    stages = {
                        ["$default"] = {
                            access_log = {
                                path = log_path,
                                format = '{"status":"$context.status","path":"$context.path",'
                                    .. '"keyId":"$context.identity.apiKeyId","key":"$context.identity.apiKey",'
                                    .. '"policy":"$context.throttle.policy","remaining":"$context.throttle.remaining"}',
                            },
                        },
                        beta = {},
                    },
                    routes = {
                        ["GET /secure"] = { api_key_required = true, integration = { type = "mock", body = "secret" } },
                        ["GET /limited"] = { api_key_required = true, integration = { type = "mock", body = "lim" } },
                        ["GET /open"] = mock("open"),
                    },
                    usage_plans = {
                        gold = {
                            keys = { "alice", "bob", "carl", "hashed" },
                            throttle = { rate = 0.01, burst = 3 },
                            stages = { "$default" },
                        },
                        perroute = {
                            keys = { "erin" },
                            route_settings = { ["GET /limited"] = { throttle = slow } },
                        },
                        betaonly = { keys = { "frank" }, stages = { "beta" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    describe("a stage limit under load", function()
        local R

        lazy_setup(function()
            -- As fast as one client can: a request on each of 8 keep-alive connections
            -- (spread over both workers), then the 8 responses, for 3 seconds.
            local conns = {}
            for i = 1, 8 do conns[i] = h.connect(port_t) end
            local req = "GET /load HTTP/1.1\r\nHost: gw.test\r\n\r\n"
            R = { ok = 0, throttled = 0, other = {}, bad429 = {}, bad200 = {}, total = 0 }
            local t0 = socket.gettime()
            local deadline = t0 + 3
            repeat
                for i = 1, 8 do assert(conns[i]:send(req)) end
                for i = 1, 8 do
                    local r = assert(conns[i]:read_response())
                    R.total = R.total + 1
                    if r.status == 200 then
                        R.ok = R.ok + 1
                        if r.headers["ratelimit-policy"] ~= '"stage";q=20;w=1'
                            or not (r.headers["ratelimit"] or ""):match('^"stage";r=%d+;t=%d+$') then
                            R.bad200[#R.bad200 + 1] = r.raw_head
                        end
                    elseif r.status == 429 then
                        R.throttled = R.throttled + 1
                        R.sample = R.sample or r
                        local t = tonumber((r.headers["ratelimit"] or ""):match('^"stage";r=0;t=(%d+)$'))
                        if r.body ~= THROTTLED
                            or r.headers["x-amzn-errortype"] ~= "TooManyRequestsException"
                            or (tonumber(r.headers["retry-after"]) or 0) < 1
                            or r.headers["ratelimit-policy"] ~= '"stage";q=20;w=1'
                            or not t or t < 1 then
                            R.bad429[#R.bad429 + 1] = r.raw_head .. "\n" .. r.body
                        end
                    else
                        R.other[#R.other + 1] = r.status
                    end
                end
            until socket.gettime() >= deadline
            R.elapsed = socket.gettime() - t0
            for i = 1, 8 do conns[i]:close() end
        end)

        it("admits rate x seconds + burst (within 2%)", function()
            local want = 100 * R.elapsed
            local msg = string.format("%d admitted of %d in %.3f s", R.ok, R.total, R.elapsed)
            assert.is_true(R.ok <= (want + 20) * 1.02, msg)
            assert.is_true(R.ok >= 0.98 * want, msg)
            -- The client really was faster than the limit.
            assert.is_true(R.throttled > R.ok, msg)
        end)

        it("refuses the rest with 429, Retry-After and RateLimit headers", function()
            assert.are.same({}, R.other)
            assert_throttled(R.sample, "stage")
            assert.are.equal('"stage";q=20;w=1', R.sample.headers["ratelimit-policy"])
            assert.are.same({}, R.bad429)
        end)

        it("sends RateLimit headers with admitted responses too", function()
            assert.are.same({}, R.bad200)
        end)
    end)

    describe("levels", function()
        it("applies a route's limit, tighter than the stage's, as policy \"route\"", function()
            local c = h.connect(port_t)
            for i = 1, 2 do
                local r = get(c, "/rt/tight")
                assert.are.equal(200, r.status)
                assert.matches('^"route";q=2;w=%d+$', r.headers["ratelimit-policy"] or "")
                assert.matches('^"route";r=' .. (2 - i) .. ';t=%d+$', r.headers["ratelimit"] or "")
            end
            assert_throttled(get(c, "/rt/tight"), "route")
            -- Other routes of the stage only have the stage's limit.
            local r = get(c, "/rt/other")
            assert.are.equal(200, r.status)
            assert.are.equal('"stage";q=1000;w=1', r.headers["ratelimit-policy"])
            c:close()
        end)

        it("gives back the tokens of earlier levels when a later level refuses", function()
            local c = h.connect(port_t)
            assert.are.equal(200, get(c, "/order/tight").status) -- shared 5 -> 4, route 1 -> 0
            for _ = 1, 3 do
                assert_throttled(get(c, "/order/tight"), "route")
            end
            -- The shared limit still has its 4 tokens, for any route of the stage.
            for i = 1, 2 do
                local r = get(c, "/order/other")
                assert.are.equal(200, r.status, "request " .. i .. " to /order/other")
            end
            for i = 1, 2 do
                local r = get(c, "/order/x")
                assert.are.equal(200, r.status, "request " .. i .. " to /order/x")
            end
            assert_throttled(get(c, "/order/other"), "stage-shared")
            assert_throttled(get(c, "/order/x"), "stage-shared")
            c:close()
        end)

        it("names the limit that refused in the RateLimit headers of a 429", function()
            local c = h.connect(port_t)
            local r = get(c, "/tie/tight") -- shared 2 -> 1, route 1 -> 0
            assert.are.equal(200, r.status)
            assert.are.equal("route", policy(r.headers["ratelimit-policy"]))
            -- Now the shared limit's last token and the route's empty bucket: the route
            -- refuses (and the shared limit keeps its token).
            assert_throttled(get(c, "/tie/tight"), "route")
            r = get(c, "/tie/other")
            assert.are.equal(200, r.status)
            assert.are.equal('"stage-shared";r=0;', (r.headers["ratelimit"] or ""):match('^"stage%-shared";r=0;'))
            assert_throttled(get(c, "/tie/x"), "stage-shared")
            c:close()
        end)

        it("sends no RateLimit headers with rate_limit_headers = false, but Retry-After on 429", function()
            local c = h.connect(port_t)
            local r = get(c, "/nohdr/x")
            assert.are.equal(200, r.status)
            assert.is_nil(r.headers["ratelimit-policy"])
            assert.is_nil(r.headers["ratelimit"])
            r = get(c, "/nohdr/x")
            h.assert_gateway_response(r, 429, "Too Many Requests", "TooManyRequestsException")
            assert.is_true((tonumber(r.headers["retry-after"]) or 0) >= 1)
            assert.is_nil(r.headers["ratelimit-policy"])
            assert.is_nil(r.headers["ratelimit"])
            c:close()
        end)

        it("sends no throttling headers on a route without any limit", function()
            local c = h.connect(port_t)
            for _ = 1, 30 do
                local r = get(c, "/free/x")
                assert.are.equal(200, r.status)
                assert.is_nil(r.headers["ratelimit-policy"])
                assert.is_nil(r.headers["retry-after"])
            end
            c:close()
        end)
    end)

    describe("API keys", function()
        local c
        before_each(function() c = h.connect(port_k) end)
        after_each(function() c:close() end)

        it("answers 403 INVALID_API_KEY without a key", function()
            assert_forbidden(get(c, "/secure"))
        end)

        it("answers 403 to an unknown key", function()
            assert_forbidden(get(c, "/secure", "nobody-0123456789-key-0000"))
            assert_forbidden(get(c, "/secure", "x"))
        end)

        it("accepts a key from the configuration", function()
            local r = get(c, "/secure", KEYS.alice)
            assert.are.equal(200, r.status)
            assert.are.equal("secret", r.body)
        end)

        it("accepts a key given only as its SHA-256", function()
            assert.are.equal(200, get(c, "/secure", KEYS.hashed).status)
        end)

        it("answers 403 to a valid key in no usage plan of the API", function()
            assert_forbidden(get(c, "/secure", KEYS.dave))
        end)

        it("answers 403 when the key's plans do not cover the stage", function()
            assert_forbidden(get(c, "/beta/secure", KEYS.alice)) -- gold: $default only
            assert_forbidden(get(c, "/secure", KEYS.frank)) -- betaonly: beta only
            assert.are.equal(200, get(c, "/beta/secure", KEYS.frank).status)
        end)

        it("needs no key on a route without api_key_required", function()
            assert.are.equal(200, get(c, "/open").status)
            assert.are.equal(200, get(c, "/open", "nobody-0123456789-key-0000").status)
        end)
    end)

    describe("usage plans", function()
        it("gives every key of a plan its own bucket", function()
            local c = h.connect(port_k)
            for _, id in ipairs({ "bob", "carl" }) do
                for i = 1, 3 do
                    local r = get(c, "/secure", KEYS[id])
                    assert.are.equal(200, r.status, id .. " request " .. i)
                    assert.matches('^"plan";q=3;w=%d+$', r.headers["ratelimit-policy"] or "")
                    assert.matches('^"plan";r=' .. (3 - i) .. ';t=%d+$', r.headers["ratelimit"] or "")
                end
                assert_throttled(get(c, "/secure", KEYS[id]), "plan")
            end
            c:close()
        end)

        it("applies a plan's per-route limit as policy \"plan-route\"", function()
            local c = h.connect(port_k)
            local r = get(c, "/limited", KEYS.erin)
            assert.are.equal(200, r.status)
            assert.matches('^"plan%-route";q=1;w=%d+$', r.headers["ratelimit-policy"] or "")
            assert_throttled(get(c, "/limited", KEYS.erin), "plan-route")
            -- The plan has no limit on other routes.
            for _ = 1, 5 do
                assert.are.equal(200, get(c, "/secure", KEYS.erin).status)
            end
            c:close()
        end)
    end)

    describe("access log", function()
        local entries

        lazy_setup(function()
            local c = h.connect(port_k)
            get(c, "/open?logged=1")
            get(c, "/secure?logged=2", KEYS.hashed)
            c:close()
            -- Lines are flushed every 100 ms: wait for the second line of "hashed".
            entries = h.wait_for(function()
                local e, n = h.json_log(log_path), 0
                for _, x in ipairs(e) do
                    if x.keyId == "hashed" then n = n + 1 end
                end
                return n >= 2 and e
            end, 5) or h.json_log(log_path)
        end)

        it("shows the key id and the masked key", function()
            local found
            for _, e in ipairs(entries) do
                if e.keyId == "alice" then found = e end
            end
            assert.is_table(found, "no access-log line for alice")
            assert.are.equal("****a1ce", found.key)
            assert.are.equal("plan", found.policy)
            assert.are.equal("2", found.remaining)
            -- A key configured only as its SHA-256: the log shows the tail of what was sent.
            local f
            for _, e in ipairs(entries) do
                if e.keyId == "hashed" then f = e end
            end
            assert.is_table(f, "no access-log line for hashed")
            assert.are.equal("****4a54", f.key)
            assert.are.equal("200", f.status)
        end)

        it("shows the limit that refused a request", function()
            local refused
            for _, e in ipairs(entries) do
                if e.keyId == "bob" and e.status == "429" then refused = e end
            end
            assert.is_table(refused, "no 429 line for bob")
            assert.are.equal("****b0b0", refused.key)
            assert.are.equal("plan", refused.policy)
            assert.are.equal("0", refused.remaining)
        end)

        it("shows - for a request without a key", function()
            local found
            for _, e in ipairs(entries) do
                if e.path == "/open" and e.keyId == "-" then found = e end
            end
            assert.is_table(found)
            assert.are.equal("-", found.key)
        end)

        it("never shows the whole key", function()
            local text = h.read_file(log_path) or ""
            for id, v in pairs(KEYS) do
                assert.is_nil(text:find(v, 1, true), "the log holds the key of " .. id)
            end
        end)
    end)
end)

-- Issue 6: as in API Gateway, a stage's throttle is the default limit of each route and
-- a route's own route_settings throttle replaces it for that route.
describe("a stage's throttle as each route's default", function()
    local gw, dir, log_path

    lazy_setup(function()
        dir = h.tmpdir()
        log_path = dir .. "/access.log"
        h.write_file(dir .. "/limits.lua", [[
local throttle = require "moongate.throttle"
return { handle = function(event, conf, req)
  local out = {}
  for _, l in ipairs(throttle.limits(req.r)) do
    out[#out + 1] = l.policy .. ":" .. l.burst
  end
  return { statusCode = 200, body = table.concat(out, ",") }
end }
]])
        gw = h.start_gateway({
            workers = 2,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "w" } },
            apis = {
                w = {
                    stages = {
                        ["$default"] = {
                            throttle = { rate = 0.01, burst = 2 },
                            route_settings = { ["GET /wide"] = { throttle = { rate = 1000, burst = 100 } } },
                            access_log = {
                                path = log_path,
                                format = '{"status":"$context.status","path":"$context.path",'
                                    .. '"policy":"$context.throttle.policy","limit":"$context.throttle.limit",'
                                    .. '"remaining":"$context.throttle.remaining"}',
                            },
                        },
                    },
                    routes = {
                        ["GET /wide"] = mock(),
                        ["GET /a"] = mock(),
                        ["GET /b"] = mock(),
                        ["GET /limits"] = { integration = { type = "lua", handler = dir .. "/limits.lua" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("lets a route's own setting replace the stage's: the third request to /wide is 200", function()
        local c = h.connect(gw.port)
        for i = 1, 10 do
            local r = get(c, "/wide")
            assert.are.equal(200, r.status, "request " .. i .. " to /wide: " .. r.raw_head)
            assert.are.equal('"route";q=100;w=1', r.headers["ratelimit-policy"])
        end
        c:close()
    end)

    it("gives every other route its own bucket with the stage's rate and burst", function()
        local c = h.connect(gw.port)
        for _, path in ipairs({ "/a", "/b" }) do
            for i = 1, 2 do
                local r = get(c, path)
                assert.are.equal(200, r.status, "request " .. i .. " to " .. path)
                assert.matches('^"stage";q=2;w=%d+$', r.headers["ratelimit-policy"] or "")
                assert.matches('^"stage";r=' .. (2 - i) .. ';t=%d+$', r.headers["ratelimit"] or "")
            end
            assert_throttled(get(c, path), "stage")
        end
        -- /wide is untouched by the other routes' empty buckets
        assert.are.equal(200, get(c, "/wide").status)
        c:close()
    end)

    it("shows Lua the route's level by the setting that made it", function()
        local r = h.curl({ gw:url("/limits") })
        assert.are.equal(200, r.status)
        assert.are.equal("stage:2", r.body)
    end)

    it("logs the level that refused", function()
        local entries = h.wait_for(function()
            local e = h.json_log(log_path)
            local n = 0
            for _, x in ipairs(e) do
                if x.status == "429" then n = n + 1 end
            end
            return n >= 2 and e
        end, 5) or h.json_log(log_path)
        local refused, wide = {}, nil
        for _, e in ipairs(entries) do
            if e.status == "429" then refused[e.path] = e end
            if e.path == "/wide" then wide = e end
        end
        for _, path in ipairs({ "/a", "/b" }) do
            assert.is_table(refused[path], "no 429 line for " .. path)
            assert.are.equal("stage", refused[path].policy)
            assert.are.equal("2", refused[path].limit)
            assert.are.equal("0", refused[path].remaining)
        end
        assert.is_nil(refused["/wide"])
        assert.is_table(wide, "no line for /wide")
        assert.are.equal("route", wide.policy)
        assert.are.equal("100", wide.limit)
    end)
end)

describe("api_keys_file", function()
    it("holds keys by value and by SHA-256", function()
        local dir = h.tmpdir()
        local file = h.write_file(dir .. "/keys.txt", table.concat({
            "# more keys",
            "filekey " .. KEYS.filekey,
            "filehash sha256:" .. sha256(KEYS.filehash):upper(),
            "",
        }, "\n"))
        local port = h.free_port()
        local gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = port, api = "f" } },
            api_keys = { alice = { value = KEYS.alice } },
            api_keys_file = file,
            apis = {
                f = {
                    stages = { ["$default"] = {} },
                    routes = { ["GET /secure"] = { api_key_required = true, integration = { type = "mock", body = "s" } } },
                },
            },
        }, { dir = dir })
        local ok, err = pcall(function()
            local c = h.connect(port)
            assert.are.equal(200, get(c, "/secure", KEYS.filekey).status)
            assert.are.equal(200, get(c, "/secure", KEYS.filehash).status)
            assert.are.equal(200, get(c, "/secure", KEYS.alice).status)
            assert_forbidden(get(c, "/secure", KEYS.bob))
            c:close()
        end)
        h.stop_all(gw)
        assert(ok, err)
    end)
end)

describe("account limit", function()
    it("is shared by every API of the gateway", function()
        local p1, p2 = h.free_port(), h.free_port()
        local gw = h.start_gateway({
            workers = 2,
            throttle = { rate = 0.01, burst = 3 },
            listen = {
                { address = "127.0.0.1", port = p1, api = "a1" },
                { address = "127.0.0.1", port = p2, api = "a2" },
            },
            apis = {
                a1 = { stages = { ["$default"] = {} }, routes = { ["GET /x"] = mock() } },
                a2 = { stages = { ["$default"] = { throttle = { rate = 100, burst = 100 } } }, routes = { ["GET /x"] = mock() } },
            },
        })
        local ok, err = pcall(function()
            local c1, c2 = h.connect(p1), h.connect(p2)
            local r = get(c1, "/x")
            assert.are.equal(200, r.status)
            assert.are.equal('"account";q=3;w=300', r.headers["ratelimit-policy"])
            assert.are.equal(200, get(c2, "/x").status)
            assert.are.equal(200, get(c1, "/x").status)
            assert_throttled(get(c2, "/x"), "account")
            assert_throttled(get(c1, "/x"), "account")
            c1:close(); c2:close()
        end)
        h.stop_all(gw)
        assert(ok, err)
    end)
end)

describe("quota", function()
    local dir, port
    local R = {}

    local function conf()
        return {
            workers = 2,
            listen = { { address = "127.0.0.1", port = port, api = "q" } },
            api_keys = { carol = { value = KEYS.carol }, alice = { value = KEYS.alice } },
            apis = {
                q = {
                    stages = { ["$default"] = {} },
                    routes = { ["GET /q"] = { api_key_required = true, integration = { type = "mock", body = "q" } } },
                    usage_plans = {
                        five = { keys = { "carol" }, quota = { limit = 5, period = "day" } },
                        other = { keys = { "alice" }, quota = { limit = 5, period = "day" } },
                    },
                },
            },
        }
    end

    lazy_setup(function()
        dir = h.tmpdir()
        port = h.free_port()
        local gw = h.start_gateway(conf(), { dir = dir })
        local ok, err = pcall(function()
            local c = h.connect(port)
            R.before = {}
            for i = 1, 6 do R.before[i] = get(c, "/q", KEYS.carol) end
            R.midnight = 86400 - os.time() % 86400
            R.alice = get(c, "/q", KEYS.alice)
            c:close()
            -- Counters reach the disk at least every second; then a crash.
            h.sleep(1.3)
            gw:signal("KILL")
            R.kill_rc = gw:wait(10)
            R.wal = h.read_file(dir .. "/state/quotas.wal")

            -- Restart on the same prefix, hence the same state directory.
            port = h.free_port()
            gw = h.start_gateway(conf(), { dir = dir })
            c = h.connect(port)
            R.after = get(c, "/q", KEYS.carol)
            R.alice_after = get(c, "/q", KEYS.alice)
            c:close()
            gw:signal("KILL")
            gw:wait(10)

            -- A corrupt record: reported in the error log, skipped; the gateway starts.
            local f = assert(io.open(dir .. "/state/quotas.wal", "ab"))
            f:write("quota|q|five|garbage\tnot a record\n\0\1\2 binary junk\n")
            f:close()
            port = h.free_port()
            gw = h.start_gateway(conf(), { dir = dir })
            c = h.connect(port)
            R.corrupt = get(c, "/q", KEYS.carol)
            c:close()
            R.stderr = gw.stderr()
        end)
        if gw then
            local ok2, err2 = pcall(h.stop_all, gw)
            if ok and not ok2 then ok, err = ok2, err2 end
        end
        assert(ok, err)
    end)

    it("admits the limit, with the quota in the RateLimit headers", function()
        for i = 1, 5 do
            local r = R.before[i]
            assert.are.equal(200, r.status, "request " .. i)
            assert.are.equal('"quota";q=5;w=86400', r.headers["ratelimit-policy"])
            local rem, t = (r.headers["ratelimit"] or ""):match('^"quota";r=(%d+);t=(%d+)$')
            assert.are.equal(5 - i, tonumber(rem), r.raw_head)
            assert.is_true(math.abs(tonumber(t) - R.midnight) <= 2, r.raw_head)
        end
        -- Every key has its own count.
        assert.are.equal(200, R.alice.status)
    end)

    it("answers 429 QUOTA_EXCEEDED with Retry-After until midnight UTC", function()
        local r = R.before[6]
        h.assert_gateway_response(r, 429, "Limit Exceeded", "LimitExceededException")
        local retry = tonumber(r.headers["retry-after"])
        assert.is_true(retry and math.abs(retry - R.midnight) <= 2,
            "retry-after " .. tostring(r.headers["retry-after"]) .. ", midnight in " .. R.midnight)
        assert.are.equal("quota", policy(r.headers["ratelimit-policy"]))
        assert.matches('^"quota";r=0;t=%d+$', r.headers["ratelimit"] or "")
    end)

    it("survives kill -9 and a restart", function()
        assert.are.equal(137, R.kill_rc)
        assert.is_string(R.wal, "no state/quotas.wal")
        assert.matches("five", R.wal)
        h.assert_gateway_response(R.after, 429, "Limit Exceeded", "LimitExceededException")
        -- alice had used 1 of 5.
        assert.are.equal(200, R.alice_after.status)
        assert.matches('"quota";r=3;', R.alice_after.headers["ratelimit"] or "")
    end)

    it("reports a corrupt quota record and starts anyway", function()
        assert.matches("corrupt quota record", R.stderr)
        h.assert_gateway_response(R.corrupt, 429, "Limit Exceeded", "LimitExceededException")
    end)
end)

-- Bucket state across reloads (README "Throttling": state survives a reload for every
-- limit whose rate and burst did not change; a changed limit starts from a full bucket),
-- and throttling from Lua policies (lua/moongate/throttle.lua): a WAF rule consuming
-- from named buckets, and a Lua integration reading the limits of its request.
describe("throttle state across reloads and from Lua", function()
    local gw, dir, port, mport

    local LIMITER = [[
local throttle = require "moongate.throttle"
local M = {}
-- blocks (matches) when the caller's own bucket refuses
function M.inspect(req, conf)
  local ok = throttle.take(req.r, "client:" .. (req:header("x-client") or "anon"), conf.rate, conf.burst)
  return not ok
end
return M
]]

    local LIMITS = [[
local throttle = require "moongate.throttle"
local M = {}
function M.handle(event, conf, req)
  local out = {}
  for _, l in ipairs(throttle.limits(req.r)) do
    out[#out + 1] = l.policy .. ":" .. l.burst .. ":" .. l.remaining
  end
  return { statusCode = 200, body = table.concat(out, ",") }
end
return M
]]

    local function write_config(burst)
        h.write_file(dir .. "/gateway.lua", h.config_source({
            workers = 1,
            listen = { { address = "127.0.0.1", port = port, api = "t" } },
            management = { address = "127.0.0.1", port = mport },
            apis = { t = {
                stages = { ["$default"] = {
                    route_settings = {
                        ["GET /slow"] = { throttle = { rate = 0.01, burst = burst } },
                        ["GET /limits"] = { throttle = { rate = 0.01, burst = 10 } },
                    },
                    waf = { rules = { { name = "per-client", priority = 1, policy = dir .. "/limiter.lua",
                        action = "block", config = { rate = 0.01, burst = 2 } } } },
                } },
                routes = {
                    ["GET /slow"] = { integration = { type = "mock", body = "ok" } },
                    ["GET /limits"] = { integration = { type = "lua", handler = dir .. "/limits.lua" } },
                },
            } },
        }))
    end

    local function status(path, client)
        return h.curl({ gw:url(path), "-H", "x-client: " .. (client or "c0") }).status
    end

    local function reload()
        local out, rc = h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })
        assert.are.equal(0, rc, out)
    end

    lazy_setup(function()
        dir = h.tmpdir()
        port, mport = h.free_port(), h.free_port()
        h.write_file(dir .. "/limiter.lua", LIMITER)
        h.write_file(dir .. "/limits.lua", LIMITS)
        write_config(3)
        gw = h.start_gateway(h.read_file(dir .. "/gateway.lua"), { dir = dir, ports = { port } })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("keeps an unchanged bucket's state across a reload, and starts a changed one full", function()
        -- each request from a new client, so the WAF's per-client buckets stay out of it
        for i = 1, 3 do assert.are.equal(200, status("/slow", "r" .. i)) end
        assert.are.equal(429, status("/slow", "r4"))
        reload() -- same limits: still empty
        assert.are.equal(429, status("/slow", "r5"))
        write_config(4) -- the route's burst changed: a new, full bucket
        reload()
        assert.are.equal(200, status("/slow", "r6"))
    end)

    it("lets a WAF rule in Lua limit each caller by its own named bucket", function()
        assert.are.equal(200, status("/limits", "alice"))
        assert.are.equal(200, status("/limits", "alice"))
        local r = h.curl({ gw:url("/limits"), "-H", "x-client: alice" })
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        assert.are.equal(200, status("/limits", "bob")) -- bob's bucket is his own
    end)

    it("shows a Lua integration the limits of its request", function()
        local r = h.curl({ gw:url("/limits"), "-H", "x-client: carol" })
        assert.are.equal(200, r.status)
        -- the route's bucket (burst 10) after the earlier /limits requests and this one
        assert.matches("^route:10:%d+$", r.body)
        local remaining = tonumber(r.body:match(":(%d+)$"))
        assert.is_true(remaining < 10)
    end)
end)
