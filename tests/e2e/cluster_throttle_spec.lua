-- Cluster-wide throttles (README "Running a cluster", "Throttling in a cluster"): three
-- nodes and one redis-server share a stage limit of 100 requests/s with a burst of 100.
-- Under uneven load (80% of the requests to node 1, 10% to each of the others, far
-- above the limit) the cluster admits burst + rate x time within 5%, node 1 getting most
-- of it; when redis-server is killed every node falls back to a third of the limit with
-- no 5xx; when it is back the nodes share the limit again.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cl = require "cluster"
local socket = require "socket"

local RATE, BURST = 100, 100
local TOKEN = "cluster-throttle-token"
local mdir, mport = h.tmpdir(), h.free_port()

-- Node 1's metrics: the value of a sample (0 when absent).
local function metric(name, labels)
    local r = h.curl({ "http://127.0.0.1:" .. mport .. "/metrics", "-H", "Authorization: Bearer " .. TOKEN })
    assert.equal(200, r.status, r.body)
    local parts = {}
    for k, v in pairs(labels) do parts[#parts + 1] = k .. '="' .. v .. '"' end
    local want = name .. "{" .. table.concat(parts, ",") .. "} "
    for line in r.body:gmatch("[^\n]+") do
        if line:sub(1, #want) == want then return tonumber(line:sub(#want + 1)) end
    end
    return 0
end

local function conf(redis, i)
    local port = h.free_port()
    return {
        management = i == 1 and { address = "127.0.0.1", port = mport, token_file = mdir .. "/token" } or nil,
        workers = 1,
        listen = { { address = "127.0.0.1", port = port, api = "t" } },
        apis = {
            t = {
                stages = { ["$default"] = { throttle = { rate = RATE, burst = BURST } } },
                routes = { ["GET /x"] = { integration = { type = "mock", body = "ok" } } },
            },
        },
        cluster = cl.section(redis, "node" .. i, { expected_nodes = 3 }),
    }
end

-- The responses of the load client between t1 and t2: admitted per node, and the
-- statuses that are neither 200 nor 429.
local function count(lines, t1, t2)
    local ok, other = { 0, 0, 0 }, {}
    for _, l in ipairs(lines) do
        if l.t >= t1 and l.t < t2 then
            if l.status == 200 then
                ok[l.node] = ok[l.node] + 1
            elseif l.status ~= 429 then
                other[#other + 1] = string.format("node %d: status %d at %.3f", l.node, l.status, l.t)
            end
        end
    end
    return ok, other
end


describe("cluster throttle", function()
    it("holds a stage limit across three nodes, falls back to a third without Redis, shares again when it returns", function()
        h.write_file(mdir .. "/token", TOKEN .. "\n")
        local redis = cl.start_redis()
        local nodes = cl.start_nodes(3, redis, function(i) return conf(redis, i) end)
        local ok_all, err = pcall(function()
            assert.truthy(cl.wait_up(nodes), "the nodes did not reach Redis")
            local dir = h.tmpdir()
            local stop, out = dir .. "/stop", dir .. "/load.txt"
            local ports = {}
            for i, n in ipairs(nodes) do ports[i] = tostring(n.port) end
            local load = h.spawn({ "luajit", here .. "cluster_load.lua", table.concat(ports, ","), "8,1,1",
                "/x", stop, out }, dir, "load")
            assert.truthy(h.wait_for(function() return h.connections_to(nodes[3].port) >= 1 end, 5))

            -- shared: 5 s, then Redis is killed
            socket.sleep(5)
            local shared_mid = metric("moongate_cluster_throttle_buckets", { mode = "shared" })
            local syncs_ok = metric("moongate_cluster_throttle_syncs_total", { outcome = "ok" })
            local t_kill = socket.gettime()
            redis:stop()
            assert.truthy(cl.wait_down(nodes), "a node did not notice that Redis is gone")
            -- fallback: 3 s (from a second after the kill), then Redis is back on its port
            socket.sleep(math.max(0, t_kill + 4 - socket.gettime()))
            local shared_down = metric("moongate_cluster_throttle_buckets", { mode = "shared" })
            local fallback_down = metric("moongate_cluster_throttle_buckets", { mode = "fallback" })
            local t_restart = socket.gettime()
            redis = cl.start_redis({ port = redis.port })
            assert.truthy(cl.wait_up(nodes, 10, 2), "a node did not reach Redis again")
            local t_up = socket.gettime()
            -- shared again: 4 s
            socket.sleep(4)
            local shared_again = metric("moongate_cluster_throttle_buckets", { mode = "shared" })
            local t_end = socket.gettime()
            h.write_file(stop, "")
            assert.truthy(load:wait(20), "the load client did not end")

            local lines = {}
            for l in io.lines(out) do
                local t, node, status = l:match("^(%S+) (%d) (%d+)$")
                lines[#lines + 1] = { t = tonumber(t), node = tonumber(node), status = tonumber(status) }
            end
            assert.is_true(#lines > 0, "no responses")
            local t0 = lines[1].t

            -- the metrics: buckets shared, then on the fallback limit, then shared again;
            -- settlements answered
            assert.is_true(shared_mid >= 1, "shared buckets while Redis is up: " .. shared_mid)
            assert.is_true(syncs_ok >= 10, "settlements: " .. syncs_ok)
            assert.are.equal(0, shared_down)
            assert.is_true(fallback_down >= 1, "fallback buckets while Redis is down: " .. fallback_down)
            assert.is_true(shared_again >= 1, "shared buckets when Redis is back: " .. shared_again)

            -- no 5xx (nor a lost connection) from start to end, through the outage
            local _, other = count(lines, 0, math.huge)
            assert.are.same({}, other)

            -- shared: burst + rate x time, within 5%, node 1 getting most of it
            local ok = count(lines, t0, t_kill)
            local admitted = ok[1] + ok[2] + ok[3]
            local want = BURST + RATE * (t_kill - t0)
            local sent = 0
            for _, l in ipairs(lines) do if l.t < t_kill then sent = sent + 1 end end
            local what = string.format("shared: admitted %d (%d/%d/%d) of %d sent in %.2f s, want %.0f +- 5%%",
                admitted, ok[1], ok[2], ok[3], sent, t_kill - t0, want)
            print(what)
            assert.is_true(sent > 3 * want, "not enough load: " .. what)
            assert.is_true(math.abs(admitted - want) <= 0.05 * want, what)
            assert.is_true(ok[1] >= 0.6 * admitted, what)
            assert.is_true(ok[2] > 0 and ok[3] > 0, what)

            -- fallback: each node about limit / 3
            local t1 = t_kill + 1
            ok = count(lines, t1, t_restart)
            local each = RATE / 3 * (t_restart - t1)
            what = string.format("fallback: admitted %d/%d/%d in %.2f s, want about %.0f each",
                ok[1], ok[2], ok[3], t_restart - t1, each)
            print(what)
            for i = 1, 3 do
                assert.is_true(ok[i] >= 0.75 * each and ok[i] <= 1.3 * each + 5, what)
            end

            -- shared again: the cluster's rate, node 1 getting most of it
            t1 = t_up + 1
            ok = count(lines, t1, t_end)
            admitted = ok[1] + ok[2] + ok[3]
            local rate = RATE * (t_end - t1)
            what = string.format("shared again: admitted %d (%d/%d/%d) in %.2f s, want about %.0f",
                admitted, ok[1], ok[2], ok[3], t_end - t1, rate)
            print(what)
            assert.is_true(admitted >= 0.85 * rate and admitted <= 1.15 * rate + BURST, what)
            assert.is_true(ok[1] >= 0.6 * admitted, what)
        end)
        -- the nodes first, as in a deployment (a node that loses Redis during its
        -- shutdown is the link's spec)
        cl.finish(nodes, redis, ok_all, err)
    end)
    it("logs a settlement Redis refuses once and serves on the fallback limit", function()
        -- a Redis without EVALSHA (renamed away): every settlement is an error reply
        local port, rdir = h.free_port(), h.tmpdir()
        local redis = h.spawn({ "redis-server", "--port", tostring(port), "--bind", "127.0.0.1",
            "--dir", rdir, "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--rename-command", "EVALSHA", "" }, rdir, "redis")
        redis.port = port
        assert.truthy(h.wait_for(function() return h.port_open(port) end, 10), "redis-server did not start")
        local nodes = cl.start_nodes(1, redis, function()
            local c = conf(redis, 2)
            c.cluster = cl.section(redis, "solo", { expected_nodes = 4 })
            return c
        end)
        local ok_all, err = pcall(function()
            assert.truthy(cl.wait_up(nodes), "the node did not reach Redis")
            -- a burst of 100 over 4 nodes: 25 at once, then 25/s
            local c = h.connect(nodes[1].port, 5)
            local admitted, other = 0, {}
            for _ = 1, 40 do
                assert(c:send("GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n"))
                local r = assert(c:read_response())
                if r.status == 200 then
                    admitted = admitted + 1
                elseif r.status ~= 429 then
                    other[#other + 1] = r.status
                end
            end
            c:close()
            assert.are.same({}, other)
            assert.is_true(admitted >= 25 and admitted <= 35, "admitted " .. admitted)
            assert.truthy(h.wait_for(function()
                return nodes[1].stderr():find("cluster: the throttle settlement failed in Redis: ERR unknown command", 1, true)
            end, 5), nodes[1].stderr())
            socket.sleep(0.5)
            local _, n = nodes[1].stderr():gsub("the throttle settlement failed", "")
            assert.are.equal(1, n)
        end)
        cl.finish(nodes, redis, ok_all, err)
    end)
end)
