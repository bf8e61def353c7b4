-- Exact limits in a cluster (README "Running a cluster", "Exact limits"): a stage limit
-- with exact = true is decided by Redis for every request, so that three nodes together
-- admit exactly the burst, however the requests are spread, and the RateLimit header
-- counts down across the nodes. Redis down: each node decides alone with limit / 3, no
-- 5xx; Redis back (empty): the cluster-wide bucket again. Redis stopped (SIGSTOP) for a
-- moment: a request is not held, the node's fallback decides once sync_interval_ms passed.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cl = require "cluster"

-- A tenth of a token per second: during the test the bucket holds what its burst holds.
local RATE, BURST = 0.1, 6

local function conf(redis, i, extra)
    local c = {
        workers = 2,
        listen = { { address = "127.0.0.1", port = h.free_port(), api = "t" } },
        apis = {
            t = {
                stages = { ["$default"] = { throttle = { rate = RATE, burst = BURST, exact = true } } },
                routes = { ["GET /x"] = { integration = { type = "mock", body = "ok" } } },
            },
        },
        cluster = cl.section(redis, "node" .. i, extra or { expected_nodes = 3 }),
    }
    return c
end

-- One request on conn (a kept-alive connection to a node): the response.
local function get(conn)
    assert(conn:send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"))
    local r, err = conn:read_response()
    assert(r, err)
    return r
end

-- n requests in turn over the nodes' connections: the statuses' counts per node, the
-- 200s' remaining tokens in order, and the statuses that are neither 200 nor 429.
local function spread(conns, n)
    local ok, refused, remaining, other = {}, {}, {}, {}
    for i = 1, #conns do ok[i], refused[i] = 0, 0 end
    for k = 1, n do
        local i = (k - 1) % #conns + 1
        local r = get(conns[i])
        if r.status == 200 then
            ok[i] = ok[i] + 1
            remaining[#remaining + 1] = tonumber((r.headers["ratelimit"] or ""):match("r=(%d+)"))
        elseif r.status == 429 then
            refused[i] = refused[i] + 1
            assert.truthy(tonumber(r.headers["retry-after"] or "") >= 1, "a 429 without Retry-After")
            assert.equal('{"message":"Too Many Requests"}', r.body)
        else
            other[#other + 1] = string.format("node %d: %d %s", i, r.status, r.body)
        end
    end
    return ok, refused, remaining, other
end

local function sum(t)
    local s = 0
    for _, v in ipairs(t) do s = s + v end
    return s
end

local function connect_all(nodes)
    local conns = {}
    for i, n in ipairs(nodes) do conns[i] = h.connect(n.port, 10) end
    return conns
end

local function close_all(conns)
    for _, c in ipairs(conns) do c:close() end
end

local function with_cluster(n, redis, conf_for, body)
    local nodes = cl.start_nodes(n, redis, conf_for)
    cl.finish(nodes, nil, pcall(body, nodes))
end

describe("cluster exact limits", function()
    it("admit exactly the burst across three nodes, fall back to a third without Redis, and start again when it returns", function()
        local redis = cl.start_redis()
        local ok_all, err = pcall(with_cluster, 3, redis, function(i) return conf(redis, i) end, function(nodes)
            assert.truthy(cl.wait_up(nodes), "the nodes did not reach Redis")
            local conns = connect_all(nodes)

            -- 30 requests, 10 on each node: 6 admitted in all, counted down in one bucket
            local ok, refused, remaining, other = spread(conns, 30)
            assert.are.same({}, other)
            assert.equal(BURST, sum(ok), "admitted per node: " .. table.concat(ok, "/"))
            assert.equal(30 - BURST, sum(refused))
            for i = 1, 3 do assert.equal(2, ok[i], "node " .. i .. " of " .. table.concat(ok, "/")) end
            assert.are.same({ 5, 4, 3, 2, 1, 0 }, remaining)
            -- one string in Redis, the bucket's
            local keys = redis:cli("--scan", "--pattern", "moongate:thrx:*")
            assert.equal(1, select(2, keys:gsub("moongate:thrx:%x+", "")), keys)
            -- node 1 counted what it asked, and has the bucket as exact
            assert.equal(2, cl.metric(nodes[1], "moongate_cluster_throttle_exact_total", { outcome = "allowed" }))
            assert.equal(8, cl.metric(nodes[1], "moongate_cluster_throttle_exact_total", { outcome = "throttled" }))
            assert.equal(1, cl.metric(nodes[1], "moongate_cluster_throttle_buckets", { mode = "exact" }))

            -- Redis gone: each node decides alone, with a third of the burst (2), no 5xx
            close_all(conns)
            redis:stop()
            assert.truthy(cl.wait_down(nodes), "a node did not notice that Redis is gone")
            conns = connect_all(nodes)
            ok, refused, remaining, other = spread(conns, 15)
            assert.are.same({}, other)
            assert.are.same({ 2, 2, 2 }, ok)
            assert.is_true(cl.metric(nodes[1], "moongate_cluster_throttle_exact_total", { outcome = "down" }) >= 5)

            -- Redis back, empty: the cluster-wide bucket is full again
            close_all(conns)
            redis = cl.start_redis({ port = redis.port })
            assert.truthy(cl.wait_up(nodes, 10, 2), "a node did not reach Redis again")
            conns = connect_all(nodes)
            ok, refused, remaining, other = spread(conns, 12)
            assert.are.same({}, other)
            assert.equal(BURST, sum(ok), "admitted per node: " .. table.concat(ok, "/"))
            assert.are.same({ 5, 4, 3, 2, 1, 0 }, remaining)
            close_all(conns)
        end)
        pcall(function() redis:stop() end)
        assert(ok_all, err)
    end)

    it("does not hold a request for a Redis that stopped answering: the fallback decides", function()
        local redis = cl.start_redis()
        local ok_all, err = pcall(with_cluster, 1, redis, function(i)
            -- the link's watchdog after 3 s; the exact check's bound 100 ms
            return conf(redis, i, { expected_nodes = 3, sync_interval_ms = 100, redis = {
                address = "127.0.0.1", port = redis.port, timeout_ms = 3000 } })
        end, function(nodes)
            assert.truthy(cl.wait_up(nodes), "the node did not reach Redis")
            local conn = h.connect(nodes[1].port, 10)
            assert.equal(200, get(conn).status)
            assert.equal(1, cl.metric(nodes[1], "moongate_cluster_throttle_exact_total", { outcome = "allowed" }))
            redis:signal("STOP")
            local ok_stopped, e = pcall(function()
                -- within the watchdog's 3 s: each answer comes from the fallback (2 of 6 / 3)
                local statuses = {}
                for k = 1, 3 do statuses[k] = get(conn).status end
                assert.are.same({ 200, 200, 429 }, statuses)
                assert.equal(3, cl.metric(nodes[1], "moongate_cluster_throttle_exact_total", { outcome = "late" }))
            end)
            redis:signal("CONT")
            assert(ok_stopped, e)
            conn:close()
        end)
        pcall(function() redis:stop() end)
        assert(ok_all, err)
    end)

    it("forgets a request whose client left while it waited for Redis, and serves the next", function()
        local redis = cl.start_redis()
        local ok_all, err = pcall(with_cluster, 1, redis, function(i)
            -- the bound 2 s, the watchdog 5 s: a stopped Redis holds the requests
            return conf(redis, i, { expected_nodes = 1, sync_interval_ms = 2000, redis = {
                address = "127.0.0.1", port = redis.port, timeout_ms = 5000 } })
        end, function(nodes)
            assert.truthy(cl.wait_up(nodes), "the node did not reach Redis")
            redis:signal("STOP")
            local ok_stopped, e = pcall(function()
                -- three clients send a request and leave while it waits
                for _ = 1, 3 do
                    local c = h.connect(nodes[1].port, 10)
                    assert(c:send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"))
                    c:close()
                end
                h.sleep(0.3)
            end)
            redis:signal("CONT")
            assert(ok_stopped, e)
            -- Redis answers the three for nobody (their tokens are spent: the checks were
            -- on their way); the node serves on, from Redis
            assert.truthy(h.wait_for(function()
                return (cl.metric(nodes[1], "moongate_cluster_throttle_exact_total", { outcome = "allowed" }) or 0) >= 3
            end, 5))
            local conn = h.connect(nodes[1].port, 10)
            local r = get(conn)
            assert.equal(200, r.status, r.body)
            assert.equal('"stage";r=2;t=40', r.headers["ratelimit"])
            conn:close()
        end)
        pcall(function() redis:stop() end)
        assert(ok_all, err)
    end)

    it("takes a token from every exact level of a request or from none", function()
        local redis = cl.start_redis()
        local ok_all, err = pcall(with_cluster, 1, redis, function(i)
            local c = conf(redis, i)
            -- two exact levels on /x: the stage's shared limit (4) and the route's own (6)
            c.apis.t.stages["$default"] = {
                shared_throttle = { rate = RATE, burst = 4, exact = true },
                throttle = { rate = RATE, burst = BURST, exact = true },
            }
            return c
        end, function(nodes)
            assert.truthy(cl.wait_up(nodes), "the node did not reach Redis")
            local conn = h.connect(nodes[1].port, 10)
            local function state()
                local out = {}
                for key in redis:cli("--scan", "--pattern", "moongate:thrx:*"):gmatch("%S+") do
                    out[key] = redis:cli("GET", key)
                end
                return out
            end
            for k = 1, 4 do
                local r = get(conn)
                assert.equal(200, r.status, "request " .. k)
            end
            -- both levels are in Redis; the shared one is empty, the route's has 2 left
            local before = state()
            local n = 0
            for _ in pairs(before) do n = n + 1 end
            assert.equal(2, n)
            local r = get(conn)
            assert.equal(429, r.status)
            assert.truthy((r.headers["ratelimit"] or ""):find('^"stage%-shared";r=0'), r.headers["ratelimit"])
            -- the refusal took nothing: neither key moved
            assert.are.same(before, state())
            conn:close()
        end)
        pcall(function() redis:stop() end)
        assert(ok_all, err)
    end)
end)

