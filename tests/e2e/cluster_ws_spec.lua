-- @connections across the nodes of a cluster (README "Running a cluster"): three nodes
-- and a real redis-server; a WebSocket client on node C is reached by @connections calls
-- on node A's and B's management listeners, on node B's API endpoint and by
-- moongate.connections in a policy on node A, with AWS's statuses; an owner that does
-- not answer gives 503; a node killed with -9 has its connections answer 410
-- within seconds; with Redis down a call for another node's connection answers 503.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local w = require "ws_helpers"
local cl = require "cluster"
local prom = require "prom"
local cjson = require "cjson.safe"

local TOKEN = "cluster-ws-token-0123456789abcdef0123"
local KEY = "cluster-ws-key-0123456789abcdef"

local POLICIES = {
    ["whoami.lua"] = w.WHOAMI_POLICY,
    -- moongate.connections on the connection in x-id: x-op "text" sends a text message,
    -- "big" a binary message of 131,072 bytes (every byte value), "info" asks for its
    -- information; the outcome comes back as JSON.
    ["push.lua"] = [[
local connections = require "moongate.connections"
local cjson = require "cjson"
return { handle = function(event)
  local id, op = event.headers["x-id"], event.headers["x-op"]
  local ok, err, status
  if op == "text" then
    ok, err, status = connections.send(id, "hi from a policy")
  elseif op == "big" then
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    ok, err, status = connections.send(id, string.rep(table.concat(t), 512), { binary = true })
  else
    ok, err, status = connections.info(id)
  end
  return { ok = ok and true or false, err = err, status = status,
           ip = type(ok) == "table" and ok.identity.sourceIp or nil }
end }
]],
}

-- The binary message "big" sends, as the client prints it (hex).
local function big_hex()
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.format("%02x", i) end
    return string.rep(table.concat(t), 512)
end

describe("@connections across cluster nodes", function()
    local redis, nodes, dir, ports = nil, nil, nil, {}

    lazy_setup(function()
        dir = h.tmpdir()
        local node_dirs = {}
        for i = 1, 3 do
            node_dirs[i] = { dir = h.tmpdir() } -- each node its own (pid file, logs)
            os.execute("mkdir -p " .. h.sh_quote(node_dirs[i].dir .. "/policies"))
            for name, src in pairs(POLICIES) do
                h.write_file(node_dirs[i].dir .. "/policies/" .. name, src)
            end
        end
        h.write_file(dir .. "/token", TOKEN .. "\n")
        os.execute("chmod 600 " .. h.sh_quote(dir .. "/token"))
        redis = cl.start_redis()
        nodes = cl.start_nodes(3, redis, function(i)
            local p = { chat = h.free_port(), http = h.free_port(), manage = h.free_port() }
            ports[i] = p
            return {
                workers = 2,
                listen = {
                    { address = "127.0.0.1", port = p.chat, api = "chat" },
                    { address = "127.0.0.1", port = p.http, api = "push" },
                },
                management = { address = "127.0.0.1", port = p.manage, token_file = dir .. "/token" },
                api_keys = { pusher = { value = KEY } },
                apis = {
                    chat = {
                        protocol = "websocket",
                        route_selection_expression = "$request.body.action",
                        websocket = { connections_endpoint = true },
                        usage_plans = { ops = { keys = { "pusher" }, stages = { "$default" } } },
                        stages = { ["$default"] = {} },
                        routes = {
                            whoami = { integration = { type = "lua", handler = "policies/whoami.lua" },
                                route_response = true },
                        },
                    },
                    push = { stages = { ["$default"] = {} }, routes = {
                        ["GET /push"] = { integration = { type = "lua", handler = "policies/push.lua" } },
                    } },
                },
            }
        end, node_dirs)
        assert.truthy(cl.wait_up(nodes), "the nodes did not reach Redis")
    end)

    lazy_teardown(function()
        if nodes then
            local alive = {}
            for _, n in ipairs(nodes) do
                if not n.killed_on_purpose then alive[#alive + 1] = n end
            end
            cl.stop_nodes(alive)
        end
        if redis then redis:stop() end
    end)

    -- An @connections call on node i's management listener.
    local function manage(i, method, id, body)
        return w.connections_call(ports[i].manage, method, id, "Authorization: Bearer " .. TOKEN, body, "/prod")
    end

    -- moongate.connections in a policy on node i.
    local function lua_call(i, op, id)
        local r = h.curl({ "http://127.0.0.1:" .. ports[i].http .. "/push", "-H", "X-Id: " .. id,
            "-H", "X-Op: " .. op })
        assert.equal(200, r.status, r.body)
        return cjson.decode(r.body)
    end

    -- A client on node i that asks for its id and then reads n messages (in file out).
    local function client_on(i, out, n)
        local steps = { { "send", '{"action":"whoami"}' }, { "recv" } }
        for _ = 1, n do steps[#steps + 1] = { "recv" } end
        steps[#steps + 1] = { "wait_closed", 10 }
        w.ws_background(ports[i].chat, steps, out)
        local id = h.wait_for(function()
            local ev = w.events_of(out)
            return ev[2] and ev[2].data
        end, 5)
        assert.truthy(id, "the client on node " .. i .. " got no id")
        assert.equal(16, #id)
        return id
    end

    local function scrape(i)
        return prom.samples(h, dir, prom.scrape(h, ports[i].manage, TOKEN))
    end

    it("reaches a client on node C from A and B: POST, GET, Lua send and info, DELETE; then 410", function()
        local out = dir .. "/c1.out"
        local id = client_on(3, out, 5)
        local r = manage(1, "POST", id, "pushed from node A")
        assert.equal(200, r.status)
        assert.equal("", r.body)
        -- node B's API endpoint (websocket.connections_endpoint)
        r = w.connections_call(ports[2].chat, "POST", id, "x-api-key: " .. KEY, "from B's endpoint")
        assert.equal(200, r.status)

        r = manage(2, "GET", id)
        assert.equal(200, r.status)
        local info = r:json()
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT", info.connectedAt)
        assert.equal("127.0.0.1", info.identity.sourceIp)
        assert.matches("websockets", info.identity.userAgent)
        assert.truthy(info.lastActiveAt)

        assert.same({ ok = true }, lua_call(1, "text", id))
        assert.same({ ok = true, ip = "127.0.0.1" }, lua_call(1, "info", id))
        assert.same({ ok = true }, lua_call(1, "big", id))

        -- a text message of exactly 131,072 bytes, multi-byte UTF-8 in it
        local text = string.rep("é", 1024) .. h.payload(128 * 1024 - 2048)
        h.write_file(dir .. "/text128k", text)
        r = manage(1, "POST", id, "@" .. dir .. "/text128k")
        assert.equal(200, r.status)

        r = manage(1, "DELETE", id)
        assert.equal(204, r.status)
        local ev = h.wait_for(function()
            local e = w.events_of(out)
            return #e >= 8 and e
        end, 10)
        assert.truthy(ev, "the client did not see its messages and the close")
        assert.same({ event = "message", data = "pushed from node A", binary = false }, ev[3])
        assert.same({ event = "message", data = "from B's endpoint", binary = false }, ev[4])
        assert.same({ event = "message", data = "hi from a policy", binary = false }, ev[5])
        assert.same({ event = "message", data = big_hex(), binary = true }, ev[6])
        assert.same({ event = "message", data = text, binary = false }, ev[7])
        assert.equal("closed", ev[8].event)
        assert.equal(1000, ev[8].code)

        -- the connection is gone: every node answers 410, as AWS does
        h.wait_for(function() return manage(2, "GET", id).status == 410 end, 5)
        r = manage(2, "GET", id)
        assert.equal(410, r.status)
        assert.equal("GoneException", r.headers["x-amzn-errortype"])
        assert.equal(410, manage(1, "POST", id, "late").status)
        assert.same({ ok = false, err = "gone", status = 410 }, lua_call(1, "text", id))

        -- the calls count on both sides
        local a, c = scrape(1), scrape(3)
        local F = "moongate_websocket_connections_remote_total"
        assert.equal(4, prom.value(a, F, { method = "POST", status = "200", direction = "out" }))
        assert.equal(1, prom.value(a, F, { method = "DELETE", status = "204", direction = "out" }))
        local b = scrape(2)
        assert.equal(1, prom.value(b, F, { method = "GET", status = "200", direction = "out" }))
        assert.equal(1, prom.value(b, F, { method = "POST", status = "200", direction = "out" }))
        assert.equal(1, prom.value(b, "moongate_websocket_connections_api_total",
            { method = "POST", status = "200", via = "endpoint" }))
        assert.equal(5, prom.value(c, F, { method = "POST", status = "200", direction = "in" }))
        assert.equal(2, prom.value(c, F, { method = "GET", status = "200", direction = "in" }))
        assert.equal(1, prom.value(c, F, { method = "DELETE", status = "204", direction = "in" }))
        assert.equal(1, prom.value(a, "moongate_websocket_connections_api_total",
            { method = "DELETE", status = "204", via = "management" }))
        assert.equal(2, prom.value(a, "moongate_websocket_connections_api_total",
            { method = "POST", status = "200", via = "lua" }))
    end)

    it("answers 410 for an id of no node, and 413 for a message over 128 KB before sending it", function()
        assert.equal(410, manage(1, "POST", "AAAAAAAAAAAAAAAA", "x").status)
        assert.equal(410, manage(1, "GET", "AAAAAAAAAAAAAAAA").status)
        local out = dir .. "/c2.out"
        local id = client_on(3, out, 1)
        h.write_file(dir .. "/big", h.payload(128 * 1024 + 1))
        local r = manage(1, "POST", id, "@" .. dir .. "/big")
        assert.equal(413, r.status)
        assert.equal("PayloadTooLargeException", r.headers["x-amzn-errortype"])
        assert.equal(204, manage(2, "DELETE", id).status)
    end)

    it("answers 503 while the owning node does not answer (SIGSTOP), and 200 again once it runs", function()
        local out = dir .. "/c5.out"
        local id = client_on(3, out, 1)
        assert.equal(200, manage(1, "GET", id).status)
        nodes[3]:signal("STOP")
        local ok, r = pcall(manage, 1, "GET", id)
        nodes[3]:signal("CONT")
        assert.truthy(ok, r)
        -- its subscriber is still there (the call is received) but no answer comes back
        -- within 2 x redis.timeout_ms
        assert.equal(503, r.status)
        assert.equal("ServiceUnavailableException", r.headers["x-amzn-errortype"])
        assert.truthy(h.wait_for(function() return manage(1, "GET", id).status == 200 end, 10))
        assert.equal(204, manage(1, "DELETE", id).status)
        assert.truthy(prom.value(scrape(1), "moongate_websocket_connections_remote_total",
            { method = "GET", status = "503", direction = "out" }) >= 1)
    end)

    it("answers 410 within seconds for the connections of a node killed with -9", function()
        local out = dir .. "/c3.out"
        local id = client_on(3, out, 1)
        assert.equal(200, manage(1, "GET", id).status)
        nodes[3]:signal(9)
        nodes[3].killed_on_purpose = true
        assert.truthy(h.wait_for(function() return nodes[3].exited() ~= nil end, 5))
        -- until the dead node's presence in Redis expires the answer is 503 (it may be
        -- reconnecting); then 410
        local seen = {}
        local gone = h.wait_for(function()
            local s = manage(1, "POST", id, "anyone there?").status
            seen[s] = true
            return s == 410
        end, 10)
        assert.truthy(gone, "no 410 after the owner died")
        for s in pairs(seen) do assert.truthy(s == 410 or s == 503, "unexpected status " .. s) end
        assert.same({ ok = false, err = "gone", status = 410 }, lua_call(2, "text", id))
    end)

    it("answers 503 for a connection of another node while Redis is down", function()
        local out = dir .. "/c4.out"
        local id = client_on(2, out, 1)
        assert.equal(200, manage(1, "GET", id).status)
        redis:stop()
        redis = nil
        local r
        assert.truthy(h.wait_for(function()
            r = manage(1, "GET", id)
            return r.status == 503
        end, 10), "no 503 once Redis is down")
        assert.equal("ServiceUnavailableException", r.headers["x-amzn-errortype"])
        assert.same({ ok = false, err = "unavailable", status = 503 }, lua_call(1, "text", id))
        -- the node's own connections do not need Redis
        assert.equal(200, manage(2, "GET", id).status)
        assert.equal(1, prom.value(scrape(1), "moongate_websocket_connections_api_total",
            { method = "POST", status = "503", via = "lua" }))
        assert.equal(204, manage(2, "DELETE", id).status)
    end)
end)
