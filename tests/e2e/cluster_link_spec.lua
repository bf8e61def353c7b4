-- The cluster's link to Redis (README "Running a cluster"): configuration errors, the
-- node reaching Redis (log, metrics, the nodes alive), Redis killed and back, a Redis that
-- stops answering, a wrong password, and a node that leaves at shutdown.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cl = require "cluster"

local function conf()
    return {
        listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
        apis = { a = { stages = { ["$default"] = {} },
            routes = { ["GET /x"] = { integration = { type = "mock", body = "ok" } } } } },
    }
end

local function count(text, pattern)
    local n = 0
    for _ in text:gmatch(pattern) do n = n + 1 end
    return n
end

describe("cluster configuration #e2e", function()
    local function check(section)
        local c = conf()
        c.cluster = section
        local dir = h.tmpdir()
        local path = h.write_file(dir .. "/gateway.lua", h.config_source(c))
        local out, code = h.moongate({ "check", "-c", path, "-p", dir })
        return code, out
    end

    it("refuses redis.tls, which Debian bookworm's hiredis cannot do, and says what to do instead", function()
        local code, out = check({ node_id = "a", redis = { port = 6379, tls = true } })
        assert.are_not.equal(0, code)
        assert.truthy(out:find("cluster.redis.tls: not supported", 1, true), out)
        assert.truthy(out:find("stunnel", 1, true), out)
    end)

    it("names a password file that cannot be read, and a node_id that is not a name", function()
        local code, out = check({ node_id = "a b", redis = { port = 6379 } })
        assert.are_not.equal(0, code)
        assert.truthy(out:find("cluster.node_id: must be letters, digits", 1, true), out)
        code, out = check({ node_id = "a", redis = { port = 6379, password_file = "/nonexistent/pw" } })
        assert.are_not.equal(0, code)
        assert.truthy(out:find('cluster.redis.password_file: cannot read "/nonexistent/pw"', 1, true), out)
    end)

    it("requires redis and bounds sync_interval_ms", function()
        local code, out = check({ node_id = "a" })
        assert.are_not.equal(0, code)
        assert.truthy(out:find("cluster.redis: is required", 1, true), out)
        code, out = check({ node_id = "a", redis = {}, sync_interval_ms = 5 })
        assert.are_not.equal(0, code)
        assert.truthy(out:find("cluster.sync_interval_ms: must be", 1, true), out)
    end)
end)

describe("cluster link #e2e", function()
    it("reaches Redis, counts the nodes, survives Redis going and coming back, and leaves at shutdown", function()
        local redis = cl.start_redis()
        local nodes = cl.start_nodes(2, redis, conf)
        local ok, err = pcall(function()
            assert.truthy(cl.wait_up(nodes), nodes[1].stderr())
            assert.are.equal(1, cl.metric(nodes[1], "moongate_cluster_redis_up"))
            assert.truthy(h.wait_for(function()
                return cl.metric(nodes[1], "moongate_cluster_nodes") == 2
            end, 5), "node1 never saw 2 nodes alive")
            local members = redis:cli("ZRANGE", "moongate:nodes", 0, -1)
            assert.truthy(members:find("node1", 1, true) and members:find("node2", 1, true), members)

            -- Redis dies: the node says so once, keeps serving, and connects again.
            local port = redis.port
            redis:stop()
            assert.truthy(h.wait_for(function()
                return nodes[1].stderr():find("is unreachable", 1, true)
            end, 3), nodes[1].stderr())
            assert.are.equal(0, cl.metric(nodes[1], "moongate_cluster_redis_up"))
            assert.are.equal(200, h.curl({ nodes[1]:url("/x") }).status)
            h.sleep(1.5) -- several failed reconnects: still one line
            assert.are.equal(1, count(nodes[1].stderr(), "is unreachable"), nodes[1].stderr())
            redis = cl.start_redis({ port = port })
            assert.truthy(h.wait_for(function()
                return count(nodes[1].stderr(), "is reachable") == 2
            end, 5), nodes[1].stderr())
            assert.are.equal(1, cl.metric(nodes[1], "moongate_cluster_redis_up"))
            assert.are.equal(1, cl.metric(nodes[1], "moongate_cluster_redis_down_total"))

            -- A Redis that stops answering is down after redis.timeout_ms (500 ms).
            redis:signal("STOP")
            local stopped = h.wait_for(function()
                return count(nodes[1].stderr(), "is unreachable") == 2
            end, 5)
            redis:signal("CONT")
            assert.truthy(stopped, nodes[1].stderr())
            assert.truthy(nodes[1].stderr():find("no answer in 500 ms", 1, true), nodes[1].stderr())
            assert.truthy(h.wait_for(function()
                return count(nodes[1].stderr(), "is reachable") == 3
            end, 5), nodes[1].stderr())

            -- A node that stops leaves the set of nodes alive.
            nodes[2]:stop()
            assert.are.equal(0, nodes[2].rc)
            local left = redis:cli("ZRANGE", "moongate:nodes", 0, -1)
            assert.falsy(left:find("node2", 1, true), left)
        end)
        cl.finish(nodes, redis, ok, err)
    end)

    it("logs a refused password once, with Redis's reason, and serves meanwhile", function()
        local redis = cl.start_redis({ password = "right-password" })
        local dir = h.tmpdir()
        h.write_file(dir .. "/pw", "wrong-password\n")
        local nodes = cl.start_nodes(1, redis, function()
            local c = conf()
            c.cluster = cl.section(redis, "solo", { redis = {
                address = "127.0.0.1", port = redis.port, password_file = dir .. "/pw" } })
            return c
        end)
        local ok, err = pcall(function()
            assert.truthy(h.wait_for(function()
                return nodes[1].stderr():find("is unreachable", 1, true)
            end, 5), nodes[1].stderr())
            local log = nodes[1].stderr()
            assert.truthy(log:find("WRONGPASS", 1, true) or log:find("invalid password", 1, true), log)
            assert.falsy(log:find("wrong-password", 1, true), "the password is never logged")
            assert.are.equal(200, h.curl({ nodes[1]:url("/x") }).status)
            h.sleep(1)
            assert.are.equal(1, count(nodes[1].stderr(), "is unreachable"))
        end)
        cl.finish(nodes, redis, ok, err)

        -- The right password: the node is up.
        redis = cl.start_redis({ password = "right-password" })
        h.write_file(dir .. "/pw", "right-password\n")
        nodes = cl.start_nodes(1, redis, function()
            local c = conf()
            c.cluster = cl.section(redis, "solo", { redis = {
                address = "127.0.0.1", port = redis.port, password_file = dir .. "/pw" } })
            return c
        end)
        ok, err = pcall(function()
            assert.truthy(cl.wait_up(nodes), nodes[1].stderr())
        end)
        cl.finish(nodes, redis, ok, err)
    end)
end)
