-- Quotas and rate-based rules counted across the nodes of a cluster (README "Running a
-- cluster"): three nodes and a real redis-server (tests/e2e/cluster.lua). A usage plan's
-- quota of 30 a day takes requests spread over the nodes and refuses the 31st on every
-- node with AWS's 429; a restart of Redis without persistence loses no count (each node
-- writes its own count again); while Redis is down the nodes count alone, with no 5xx.
-- A rate-based rule's limit holds across the nodes too, and a node that lost its state
-- directory takes its count back from Redis. No timings: a node's view is
-- waited for through Redis's contents and the node's settlement counter in /metrics.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cl = require "cluster"

local KEY = "carol-0123456789-key-ca20"
local DAVE = "dave-0123456789ab-key-da7e"

-- The sum of every field of every hash whose name matches pattern, and the hashes.
local function redis_sum(redis, pattern)
    local total, hashes = 0, 0
    for key in redis:cli("--scan", "--pattern", pattern):gmatch("[^\n]+") do
        hashes = hashes + 1
        local out = redis:cli("HGETALL", key)
        local i = 0
        for line in out:gmatch("[^\n]+") do
            i = i + 1
            if i % 2 == 0 then total = total + (tonumber(line) or 0) end
        end
    end
    return total, hashes
end

-- How many keys node has settled with Redis (family: a part's counter).
local function synced(node, family)
    return tonumber(cl.metric(node, family)) or 0
end

-- Waits until Redis holds total for pattern and then until each of nodes has made two
-- more settlements (the second was sent after Redis held the total, so the node's view
-- includes it); fails the test otherwise.
local function settle(redis, nodes, pattern, total, family)
    local ok = h.wait_for(function() return redis_sum(redis, pattern) == total end, 10)
    assert(ok, "Redis holds " .. redis_sum(redis, pattern) .. " for " .. pattern .. ", want " .. total)
    for _, n in ipairs(nodes) do
        local before = synced(n, family)
        assert(h.wait_for(function() return synced(n, family) >= before + 2 end, 10),
            n.node_id .. " made no settlement")
    end
end

local function get(node, path, key)
    local args = { node:url(path) }
    if key then
        args[#args + 1] = "-H"
        args[#args + 1] = "x-api-key: " .. key
    end
    return h.curl(args)
end

-- A request the rate-based rule counts (user u1's).
local function hit(node)
    return h.curl({ node:url("/w"), "-H", "X-User: u1" })
end

local function conf_for(dir)
    return function(i)
        return {
            workers = 2,
            state_dir = dir .. "/state" .. i,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "q" } },
            api_keys = { carol = { value = KEY }, dave = { value = DAVE } },
            apis = {
                q = {
                    stages = { ["$default"] = {
                        -- counts the requests with an X-User header, per user
                        waf = { default_action = "allow", rules = { { priority = 1, name = "per-user",
                            action = "block", rate_based = { limit = 10, window = 60,
                                custom_keys = { { type = "header", name = "X-User" } } } } } },
                    } },
                    routes = {
                        ["GET /q"] = { api_key_required = true, integration = { type = "mock", body = "q" } },
                        ["GET /w"] = { integration = { type = "mock", body = "w" } },
                    },
                    usage_plans = { thirty = { keys = { "carol", "dave" }, quota = { limit = 30, period = "day" } } },
                },
            },
        }
    end
end

describe("cluster quotas", function()
    local redis, nodes, dir
    local QUOTA = "moongate:quota:*"
    local QSYNC = "moongate_cluster_quota_keys_synced_total"

    lazy_setup(function()
        dir = h.tmpdir()
        redis = cl.start_redis()
        nodes = cl.start_nodes(3, redis, conf_for(dir))
        assert(cl.wait_up(nodes), "the nodes did not reach Redis")
    end)

    lazy_teardown(function()
        if nodes then cl.stop_nodes(nodes) end
        if redis then redis:stop() end
    end)

    local function take(node, n)
        local codes = {}
        for _ = 1, n do
            local r = get(node, "/q", KEY)
            codes[#codes + 1] = r
        end
        return codes
    end

    it("adds up across the nodes, survives a Redis restart and counts alone while Redis is down", function()
        -- 10 on node 1, 10 on node 2: all admitted, and Redis holds each node's count.
        for _, r in ipairs(take(nodes[1], 10)) do assert.equal(200, r.status) end
        settle(redis, nodes, QUOTA, 10, QSYNC)
        for _, r in ipairs(take(nodes[2], 10)) do assert.equal(200, r.status) end
        settle(redis, nodes, QUOTA, 20, QSYNC)
        -- node 3 has served nothing, yet knows the cluster's 20: 30 - 20 - 1 remain.
        local r = get(nodes[3], "/q", KEY)
        assert.equal(200, r.status)
        assert.matches('^"quota";r=9;', r.headers["ratelimit"] or "")

        -- Redis goes away: no 5xx, node 3 counts alone against what it knew (20).
        redis:stop()
        for i = 1, 4 do
            r = get(nodes[3], "/q", KEY)
            assert.equal(200, r.status)
            assert.matches('^"quota";r=' .. (9 - i) .. ';', r.headers["ratelimit"] or "")
        end
        r = get(nodes[1], "/w")
        assert.equal(200, r.status)

        -- Redis comes back empty (no persistence) on the same port: the nodes write their
        -- counts again (10 + 10 + 5), nothing is lost.
        local before = {}
        for i, n in ipairs(nodes) do before[i] = cl.told(n, "reachable") end
        redis = cl.start_redis({ port = redis.port, dir = redis.dir })
        assert(h.wait_for(function()
            for i, n in ipairs(nodes) do if cl.told(n, "reachable") <= before[i] then return false end end
            return true
        end, 15), "the nodes did not reach Redis again")
        settle(redis, nodes, QUOTA, 25, QSYNC)

        -- 5 more spread over the nodes, then the 31st is refused on every node.
        for i = 1, 5 do
            r = get(nodes[(i % 3) + 1], "/q", KEY)
            assert.equal(200, r.status)
            settle(redis, nodes, QUOTA, 25 + i, QSYNC)
        end
        for _, n in ipairs(nodes) do
            r = get(n, "/q", KEY)
            h.assert_gateway_response(r, 429, "Limit Exceeded", "LimitExceededException")
            assert.matches('^"quota";r=0;', r.headers["ratelimit"] or "")
        end
        -- the log said once that Redis went away, and no settlement error is a 5xx
        for _, n in ipairs(nodes) do
            assert.not_matches("quota settlement failed[^\n]*\n.*quota settlement failed", n.stderr())
        end
    end)

    it("holds a rate-based rule's limit across the nodes", function()
        local WAF = "moongate:wafrate:*"
        local WSYNC = "moongate_cluster_waf_rate_keys_synced_total"
        -- 4 on node 1, 4 on node 2, all from user u1
        -- (a node settles the keys it counts: the others' counts reach a node that has
        -- served the key)
        for _ = 1, 4 do assert.equal(200, hit(nodes[1]).status) end
        settle(redis, { nodes[1] }, WAF, 4, WSYNC)
        for _ = 1, 4 do assert.equal(200, hit(nodes[2]).status) end
        settle(redis, { nodes[1], nodes[2] }, WAF, 8, WSYNC)
        -- node 3's first: 9 in the cluster; then 10; the 11th is over the limit on any node
        assert.equal(200, hit(nodes[3]).status)
        settle(redis, nodes, WAF, 9, WSYNC)
        assert.equal(200, hit(nodes[3]).status)
        settle(redis, nodes, WAF, 10, WSYNC)
        for _, n in ipairs(nodes) do
            h.assert_gateway_response(hit(n), 403, "Forbidden", "ForbiddenException")
        end
        -- another user is not limited
        assert.equal(200, h.curl({ nodes[1]:url("/w"), "-H", "X-User: u2" }).status)
    end)

    it("gives a node that lost its state directory its count back from Redis", function()
        local DQ = "moongate:quota:*dave*"
        for _ = 1, 5 do assert.equal(200, get(nodes[1], "/q", DAVE).status) end
        settle(redis, nodes, DQ, 5, QSYNC)
        -- node 1 stops, loses its state directory and starts again as node1
        cl.stop_nodes({ nodes[1] })
        os.execute("rm -rf " .. h.sh_quote(dir .. "/state1"))
        nodes[1] = cl.start_nodes(1, redis, conf_for(dir))[1]
        assert(cl.wait_up({ nodes[1] }), "node 1 did not reach Redis")
        settle(redis, { nodes[1] }, DQ, 5, QSYNC)
        -- it took Redis's 5 rather than writing its empty count over them
        local r = get(nodes[1], "/q", DAVE)
        assert.equal(200, r.status)
        assert.matches('^"quota";r=24;', r.headers["ratelimit"] or "")
        settle(redis, nodes, DQ, 6, QSYNC)
    end)
end)
