-- The life of WebSocket connections through the real binary (README "WebSocket APIs"):
-- reloads keep open connections (later messages use the new configuration; a reload that
-- removes the API closes them with 1001), $disconnect for each way a connection ends
-- (network error, maximum duration, missed pong, shutdown with two workers), a slow
-- client's bounded send queue (1008, and 429 to the push that overflowed), throttling per
-- message, moongate.connections from a WebSocket handler to a connection on another
-- worker, what $connect kept in later events, fragmented and binary messages.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local w = require "ws_helpers"
local cjson = require "cjson.safe"

local TOKEN = "ws-life-token-0123456789abcdef0123456789"

local POLICIES = {
    ["gate.lua"] = [[
return { authorize = function(req, conf, auth)
  local who = auth.identity_source[1]
  if who == "nobody" then return { isAuthorized = false } end
  return { isAuthorized = true, principalId = who, context = { tier = "gold" } }
end }
]],
    -- $connect keeps the room; messages: "ctx" answers what the event carries, "tell"
    -- pushes text to the connection "to", $default describes the message.
    ["chat.lua"] = [[
local connections = require "moongate.connections"
local cjson = require "cjson.safe"
return { handle = function(event)
  local rc = event.requestContext
  if rc.eventType == "CONNECT" then
    local q = event.queryStringParameters or {}
    return { statusCode = 200, context = { room = q.room or "lobby", watch = q.watch } }
  elseif rc.eventType == "DISCONNECT" then
    -- a watcher connection named at $connect hears what this event carries
    local watch = rc.connectionContext and rc.connectionContext.watch
    if watch then
      connections.send(watch, cjson.encode({ eventType = rc.eventType, code = rc.disconnectStatusCode,
        reason = rc.disconnectReason, authorizer = rc.authorizer, connectionContext = rc.connectionContext }))
    end
    return { statusCode = 200 }
  end
  local msg = cjson.decode(event.body) or {}
  if rc.routeKey == "id" then return { statusCode = 200, body = rc.connectionId } end
  if rc.routeKey == "kick" then
    local ok, err, status = connections.close(msg.to)
    return { statusCode = 200, body = ok and "kicked" or (tostring(err) .. " " .. tostring(status)) }
  end
  if rc.routeKey == "tell" then
    local ok, err, status = connections.send(msg.to, msg.text)
    return { statusCode = 200, body = ok and "told" or (tostring(err) .. " " .. tostring(status)) }
  end
  return { statusCode = 200, body = cjson.encode({ routeKey = rc.routeKey, body = event.body,
    b64 = event.isBase64Encoded, authorizer = rc.authorizer,
    connectionContext = rc.connectionContext }) }
end }
]],
}

local FORMAT = '{"event":"$context.eventType","route":"$context.routeKey","conn":"$context.connectionId",'
    .. '"status":"$context.status","code":"$context.disconnectStatusCode",'
    .. '"reason":"$context.disconnectReason","error":"$context.error.message"}'

describe("WebSocket connections' life", function()
    local gw, up, dir, p_chat, p_dur, p_ping, p_gone, mport, log

    -- The configuration: version is the mock's body; without_gone, the API "gone" is
    -- removed (its listener then serves "chat").
    local function config(version, without_gone, max_message, ping)
        local chat = { type = "lua", handler = "policies/chat.lua" }
        local function simple(ws_conf)
            return {
                protocol = "websocket",
                route_selection_expression = "$request.body.action",
                websocket = ws_conf,
                stages = { ["$default"] = { access_log = { path = log, format = FORMAT } } },
                routes = {
                    ["$default"] = { integration = { type = "mock", status = 200, body = "ok" }, route_response = true },
                    id = { integration = chat, route_response = true },
                },
            }
        end
        local apis = {
            chat = {
                protocol = "websocket",
                route_selection_expression = "$request.body.action",
                websocket = { send_queue_size = 1024, max_frame_size = 1024, max_message_size = max_message or 4096,
                    ping_interval = ping or 0, pong_timeout = 1 },
                authorizers = { tok = { type = "lua", policy = "policies/gate.lua", ttl = 0,
                    identity_sources = { "$request.header.Authorization" } } },
                stages = { ["$default"] = {
                    access_log = { path = log, format = FORMAT },
                    route_settings = { limited = { throttle = { rate = 0.01, burst = 2 } } },
                } },
                routes = {
                    ["$connect"] = { integration = chat, authorizer = "tok" },
                    ["$disconnect"] = { integration = chat },
                    ["$default"] = { integration = chat, route_response = true },
                    id = { integration = chat, route_response = true },
                    tell = { integration = chat, route_response = true },
                    kick = { integration = chat, route_response = true },
                    ctx = { integration = chat, route_response = true },
                    mock = { integration = { type = "mock", status = 200, body = version }, route_response = true },
                    limited = { integration = { type = "mock", status = 200, body = "fine" }, route_response = true },
                    slow = { integration = { type = "http", uri = up.origin .. "/slow?ms=1500" }, route_response = true },
                },
            },
            dur = simple({ max_duration = 1 }),
            ping = simple({ ping_interval = 1, pong_timeout = 1 }),
            gone = not without_gone and simple({}) or nil,
        }
        return {
            workers = 2,
            timeouts = { send = 5 },
            listen = {
                { address = "127.0.0.1", port = p_chat, api = "chat" },
                { address = "127.0.0.1", port = p_dur, api = "dur" },
                { address = "127.0.0.1", port = p_ping, api = "ping" },
                { address = "127.0.0.1", port = p_gone, api = without_gone and "chat" or "gone" },
            },
            management = { address = "127.0.0.1", port = mport, token_file = dir .. "/token" },
            apis = apis,
        }
    end

    -- Reloads with `moongate reload` (post: with POST /reload on the management listener).
    local function reload(version, without_gone, max_message, post, ping)
        h.write_file(dir .. "/gateway.lua", h.config_source(config(version, without_gone, max_message, ping)))
        if post then
            local r = h.curl({ "http://127.0.0.1:" .. mport .. "/reload", "-X", "POST",
                "-H", "Authorization: Bearer " .. TOKEN })
            assert.equal(200, r.status, r.body)
            return
        end
        local out, rc = h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })
        assert.equal(0, rc, out)
    end

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        h.write_file(dir .. "/token", TOKEN .. "\n")
        os.execute("chmod 600 " .. h.sh_quote(dir .. "/token"))
        p_chat, p_dur, p_ping, p_gone, mport = h.free_port(), h.free_port(), h.free_port(), h.free_port(), h.free_port()
        log = dir .. "/access.log"
        up = h.start_upstream()
        gw = h.start_gateway(config("v1"), { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local AUTH = { "Authorization: alice" }

    -- A raw connection to chat: the connection and its id.
    local function open_chat(path)
        local c, r = w.raw_open(p_chat, path, AUTH)
        assert.equal(101, r.status)
        c:send(w.frame(1, '{"action":"id"}'))
        local op, id = w.read_message(c)
        assert.equal(1, op)
        assert.equal(16, #id)
        return c, id
    end

    local function say(c, text)
        c:send(w.frame(1, text))
        local op, payload = w.read_message(c)
        assert.equal(1, op, payload)
        return payload
    end

    local function expect_close(c, code, reason)
        local op, payload = w.read_message(c)
        assert.equal(8, op, payload)
        local got, why = w.close_code(payload)
        assert.equal(code, got)
        if reason then assert.equal(reason, why) end
    end

    local function manage(method, id, body)
        local args = { "http://127.0.0.1:" .. mport .. "/prod/@connections/" .. id, "-X", method,
            "-H", "Authorization: Bearer " .. TOKEN }
        if body then
            args[#args + 1] = "--data-binary"
            args[#args + 1] = body
        end
        return h.curl(args)
    end

    describe("reloads", function()
        it("keep an open connection: a later message uses the new configuration, what $connect kept stays", function()
            local c, id = open_chat("/?room=9")
            assert.equal("v1", say(c, '{"action":"mock"}'))
            reload("v2")
            assert.equal("v2", say(c, '{"action":"mock"}'))
            local e = cjson.decode(say(c, '{"action":"ctx"}'))
            assert.same({ principalId = "alice", tier = "gold" }, e.authorizer)
            assert.same({ room = "9" }, e.connectionContext)
            c:send(w.frame(8, "\3\232"))
            expect_close(c, 1000)
            c:close()
            assert.equal("1000", w.entry(log, id, "DISCONNECT").code)
        end)

        it("apply a changed max_message_size to open connections", function()
            local c, id = open_chat()
            local function fragmented(n)
                local parts = {}
                for i = 1, n do
                    parts[#parts + 1] = w.frame(i == 1 and 1 or 0, string.rep("z", 1000), { fin = i == n })
                end
                return table.concat(parts)
            end
            c:send(fragmented(3))
            local op = w.read_message(c)
            assert.equal(1, op) -- 3000 bytes: under 4096
            reload("v2", false, 2048)
            c:send(fragmented(3))
            expect_close(c, 1009)
            c:close()
            assert.equal("1009", w.entry(log, id, "DISCONNECT").code)
            reload("v2")
        end)

        it("start the gateway's pings on open connections when ping_interval is set", function()
            local c, id = open_chat()
            reload("v2", false, nil, false, 1)
            local op = w.read_frame(c)
            assert.equal(9, op) -- left unanswered
            expect_close(c, 1001, "Pong timeout")
            c:close()
            assert.equal("1001", w.entry(log, id, "DISCONNECT").code)
            -- and stop them when it is 0 again
            c = open_chat()
            op = w.read_frame(c)
            assert.equal(9, op)
            c:send(w.frame(10, ""))
            reload("v2")
            c:settimeout(0.3)
            repeat op = w.read_frame(c) until op == nil -- a ping sent before the reload
            c:settimeout(2.5)
            local none, err = w.read_frame(c)
            assert.is_nil(none)
            assert.equal("timeout", err)
            c:settimeout(5)
            assert.equal("v2", say(c, '{"action":"mock"}'))
            c:close()
        end)

        it("let a message under way finish on the old configuration; the next one uses the new", function()
            local c = open_chat()
            c:send(w.frame(1, '{"action":"slow"}') .. w.frame(1, '{"action":"mock"}'))
            reload("v3")
            local op, payload = w.read_message(c)
            assert.equal(1, op)
            assert.equal("POST", cjson.decode(payload).method)
            assert.equal("v3", (select(2, w.read_message(c))))
            c:close()
            reload("v2")
        end)

        it("that remove the API close its connections with 1001 and run $disconnect", function()
            local c, r = w.raw_open(p_gone)
            assert.equal(101, r.status)
            assert.equal("ok", say(c, "hello"))
            local id = say(c, '{"action":"id"}')
            reload("v2", true, nil, true)
            expect_close(c, 1001, "The API was removed")
            assert.truthy(c:closed_by_peer(5))
            c:close()
            local d = w.entry(log, id, "DISCONNECT")
            assert.truthy(d, "no DISCONNECT line for " .. tostring(id))
            assert.equal("1001", d.code)
            assert.equal("The API was removed", d.reason)
            assert.equal("$disconnect", d.route)
            reload("v2")
        end)
    end)

    describe("$disconnect", function()
        it("runs with 1006 when the client's socket closes without a close frame", function()
            local c, id = open_chat()
            c:close()
            local d = w.entry(log, id, "DISCONNECT")
            assert.truthy(d)
            assert.equal("1006", d.code)
            assert.equal("Connection lost", d.reason)
        end)

        it("runs once with 1006 when the client goes while a message is under way", function()
            local c, id = open_chat()
            c:send(w.frame(1, '{"action":"slow"}') .. w.frame(1, '{"action":"mock"}'))
            h.sleep(0.3)
            c:close()
            local d = w.entry(log, id, "DISCONNECT")
            assert.truthy(d)
            assert.equal("1006", d.code)
            local m = h.wait_for(function()
                for _, e in ipairs(w.log_entries(log)) do
                    if e.conn == id and e.route == "slow" then return e end
                end
            end, 5)
            assert.truthy(m, "no line for the message under way")
            assert.equal("MESSAGE", m.event)
            assert.equal("499", m.status)
            h.sleep(1.5) -- the backend's answer comes to nothing
            assert.equal(1, w.count(log, id, "DISCONNECT"))
            assert.equal(2, w.count(log, id, "MESSAGE")) -- id and slow; mock never started
        end)

        it("runs with 1001 at the maximum duration", function()
            local ev = w.ws(p_dur, { { "send", "x" }, { "recv" }, { "wait_closed", 5 } })
            assert.same({ event = "message", data = "ok", binary = false }, ev[2])
            assert.equal("closed", ev[3].event)
            assert.equal(1001, ev[3].code)
            assert.equal("Maximum connection duration reached", ev[3].reason)
            local found = h.wait_for(function()
                for _, e in ipairs(w.log_entries(log)) do
                    if e.event == "DISCONNECT" and e.reason == "Maximum connection duration reached" then return e end
                end
            end, 5)
            assert.equal("1001", found.code)
        end)

        it("runs with 1001 when a ping's pong does not come; a client that answers stays", function()
            local c, r = w.raw_open(p_ping)
            assert.equal(101, r.status)
            local op = w.read_frame(c)
            assert.equal(9, op) -- the gateway's ping, left unanswered
            local payload
            op, payload = w.read_frame(c)
            assert.equal(8, op)
            local code, reason = w.close_code(payload)
            assert.equal(1001, code)
            assert.equal("Pong timeout", reason)
            c:close()
            local d = h.wait_for(function()
                for _, e in ipairs(w.log_entries(log)) do
                    if e.event == "DISCONNECT" and e.reason == "Pong timeout" then return e end
                end
            end, 5)
            assert.truthy(d)
            assert.equal("1001", d.code)
            -- python3-websockets answers pings: still open after several intervals
            local ev = w.ws(p_ping, { { "sleep", 3.5 }, { "send", "x" }, { "recv" }, { "close", 1000, "" } })
            assert.same({ event = "message", data = "ok", binary = false }, ev[2])
            assert.equal("closed", ev[3].event)
            assert.equal(1000, ev[3].code)
        end)
    end)

    it("closes a client that stops reading with 1008 once pushes overflow its queue: 429, then 410", function()
        local c, id = open_chat()
        local chunk = dir .. "/chunk"
        h.write_file(chunk, h.payload(100 * 1024))
        local statuses = {}
        for _ = 1, 300 do
            local r = manage("POST", id, "@" .. chunk)
            statuses[#statuses + 1] = r.status
            if r.status ~= 200 then break end
        end
        assert.equal(429, statuses[#statuses], table.concat(statuses, " "))
        assert.is_true(#statuses > 1)
        assert.equal(410, manage("POST", id, "more").status)
        -- the client reads again: what was queued, then the close
        local n, op, payload = 0, nil, nil
        repeat
            op, payload = w.read_frame(c)
            if op == 1 then n = n + 1 end
        until op == nil or op == 8
        assert.equal(8, op, tostring(payload))
        assert.equal(1008, (w.close_code(payload)))
        assert.equal(#statuses - 1, n)
        c:close()
        local d = w.entry(log, id, "DISCONNECT")
        assert.truthy(d)
        assert.equal("1008", d.code)
        assert.equal(1, w.count(log, id, "DISCONNECT"))
    end)

    it("runs $disconnect (1008) for a client that never reads again, once the send timeout passes", function()
        local c, id = open_chat()
        local chunk = dir .. "/chunk"
        h.write_file(chunk, h.payload(100 * 1024))
        local last
        for _ = 1, 300 do
            last = manage("POST", id, "@" .. chunk).status
            if last ~= 200 then break end
        end
        assert.equal(429, last)
        local d = w.entry(log, id, "DISCONNECT", 10) -- timeouts.send = 5
        assert.truthy(d, "no DISCONNECT line")
        assert.equal("1008", d.code)
        assert.equal("Send queue full", d.reason)
        c:close()
        assert.equal(1, w.count(log, id, "DISCONNECT"))
    end)

    it("throttles per message: an error message beyond the limit, and the connection stays", function()
        local c, id = open_chat()
        assert.equal("fine", say(c, '{"action":"limited"}'))
        assert.equal("fine", say(c, '{"action":"limited"}'))
        local e = cjson.decode(say(c, '{"action":"limited"}'))
        assert.equal("Too Many Requests", e.message)
        assert.equal(id, e.connectionId)
        assert.is_string(e.requestId)
        assert.equal("v2", say(c, '{"action":"mock"}'))
        c:close()
        local found = h.wait_for(function()
            for _, l in ipairs(w.log_entries(log)) do
                if l.conn == id and l.route == "limited" and l.status == "429" then return l end
            end
        end, 5)
        assert.truthy(found)
    end)

    it("lets a WebSocket handler push to a connection on another worker", function()
        local conns, by_worker = {}, {}
        for _ = 1, 20 do
            local c, id = open_chat()
            conns[#conns + 1] = c
            by_worker[w.worker_of(id)] = by_worker[w.worker_of(id)] or { c = c, id = id }
            if by_worker[1] and by_worker[2] then break end
        end
        assert.truthy(by_worker[1] and by_worker[2], "every connection landed on one worker")
        local a, b = by_worker[1], by_worker[2]
        assert.equal("told", say(a.c, cjson.encode({ action = "tell", to = b.id, text = "from 1" })))
        local op, payload = w.read_message(b.c)
        assert.equal(1, op)
        assert.equal("from 1", payload)
        assert.equal("told", say(b.c, cjson.encode({ action = "tell", to = a.id, text = "from 2" })))
        op, payload = w.read_message(a.c)
        assert.equal("from 2", payload)
        assert.equal("kicked", say(a.c, cjson.encode({ action = "kick", to = b.id })))
        expect_close(b.c, 1000)
        assert.equal("1000", w.entry(log, b.id, "DISCONNECT").code)
        assert.equal("gone 410", say(a.c, cjson.encode({ action = "tell", to = b.id, text = "late" })))
        for _, c in ipairs(conns) do c:close() end
    end)

    it("gives $disconnect what $connect kept and the close code and reason", function()
        local watcher, wid = open_chat()
        local c = open_chat("/?room=5&watch=" .. wid)
        c:send(w.frame(8, "\15\160bye")) -- 4000
        expect_close(c, 4000)
        c:close()
        local op, payload = w.read_message(watcher)
        assert.equal(1, op)
        local e = cjson.decode(payload)
        assert.equal("DISCONNECT", e.eventType)
        assert.equal(4000, e.code)
        assert.equal("bye", e.reason)
        assert.same({ principalId = "alice", tier = "gold" }, e.authorizer)
        assert.same({ room = "5", watch = wid }, e.connectionContext)
        watcher:close()
    end)

    describe("fragments and binary messages", function()
        it("closes 1009 on a text message over max_message_size in fragments and logs it", function()
            local c, id = open_chat()
            local parts = {}
            for i = 1, 5 do
                parts[#parts + 1] = w.frame(i == 1 and 1 or 0, string.rep("y", 1000), { fin = i == 5 })
            end
            c:send(table.concat(parts))
            expect_close(c, 1009)
            c:close()
            local d = w.entry(log, id, "DISCONNECT")
            assert.equal("1009", d.code)
        end)

        it("routes a fragmented binary message to $default, base64-encoded", function()
            local c = open_chat()
            c:send(w.frame(2, "\0\1", { fin = false }) .. w.frame(9, "p") .. w.frame(0, "\255"))
            local op, pong = w.read_frame(c)
            assert.equal(10, op)
            assert.equal("p", pong)
            op = nil
            local payload
            op, payload = w.read_message(c)
            assert.equal(1, op)
            local e = cjson.decode(payload)
            assert.equal("$default", e.routeKey)
            assert.is_true(e.b64)
            assert.equal("AAH/", e.body)
            c:close()
        end)
    end)

    it("sends 1001 to the connections of both workers on shutdown and runs each $disconnect", function()
        local conns, ids, workers = {}, {}, {}
        for _ = 1, 20 do
            local c, id = open_chat()
            conns[#conns + 1] = c
            ids[#ids + 1] = id
            workers[w.worker_of(id)] = true
            if #conns >= 4 and workers[1] and workers[2] then break end
        end
        assert.truthy(workers[1] and workers[2], "every connection landed on one worker")
        conns[1]:send(w.frame(1, '{"action":"slow"}')) -- under way at the shutdown
        h.sleep(0.3)
        local g = gw
        gw = nil
        local rc = g:stop()
        for _, c in ipairs(conns) do
            expect_close(c, 1001, "Going away")
            c:close()
        end
        assert.equal(0, rc, g.stderr())
        for _, id in ipairs(ids) do
            local d = w.entry(log, id, "DISCONNECT")
            assert.truthy(d, "no DISCONNECT for " .. id)
            assert.equal("1001", d.code)
            assert.equal("Going away", d.reason)
            assert.equal(1, w.count(log, id, "DISCONNECT"))
        end
    end)
end)

describe("@connections on the API's own endpoint (websocket.connections_endpoint)", function()
    local gw, port, log
    local KEY = "ws-endpoint-key-0123456789abcdef"

    lazy_setup(function()
        local dir = h.tmpdir()
        port = h.free_port()
        log = dir .. "/access.log"
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = port, api = "ep" } },
            api_keys = { pusher = { value = KEY } },
            apis = { ep = {
                protocol = "websocket",
                route_selection_expression = "$request.body.action",
                websocket = { connections_endpoint = true },
                usage_plans = { ops = { keys = { "pusher" }, stages = { "$default" } } },
                stages = { ["$default"] = { access_log = { path = log,
                    format = '{"event":"$context.eventType","conn":"$context.connectionId","status":"$context.status"}' } } },
                routes = { ["$default"] = { integration = { type = "mock", status = 200, body = "ok" }, route_response = true } },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    local function push(id, key)
        return w.connections_call(port, "POST", id, key and ("x-api-key: " .. key), "from the endpoint")
    end

    it("pushes for a caller with a key of the API's plan; 403 without one, 410 for an unknown id", function()
        local c, r = w.raw_open(port)
        assert.equal(101, r.status)
        local id = w.last_connect_id(log)
        assert.truthy(id)
        assert.equal(403, push(id).status)
        assert.equal(403, push(id, "not-a-key-0123456789").status)
        assert.equal(200, push(id, KEY).status)
        local op, payload = w.read_frame(c)
        assert.equal(1, op)
        assert.equal("from the endpoint", payload)
        assert.equal(410, push("AAAAAAAAAAAAAAAA", KEY).status)
        c:close()
    end)
end)

describe("@connections on the API's own endpoint behind an authorizer (websocket.connections_authorizer)", function()
    local gw, port, log
    local TOKEN = "ops-token-0123456789abcdef"

    lazy_setup(function()
        local dir = h.tmpdir()
        port = h.free_port()
        log = dir .. "/access.log"
        gw = h.start_gateway({
            workers = 2,
            listen = { { address = "127.0.0.1", port = port, api = "ep" } },
            apis = { ep = {
                protocol = "websocket",
                route_selection_expression = "$request.body.action",
                websocket = { connections_endpoint = true, connections_authorizer = "ops" },
                authorizers = { ops = { type = "lua", policy = h.root .. "/policies/authorizers/api_key_header.lua",
                    identity_sources = { "$request.header.x-ops" }, ttl = 0,
                    config = { header = "x-ops", keys = { [TOKEN] = "operator" } } } },
                stages = { ["$default"] = { access_log = { path = log,
                    format = '{"event":"$context.eventType","conn":"$context.connectionId","status":"$context.status",'
                        .. '"route":"$context.routeKey","who":"$context.authorizer.principalId"}' } } },
                routes = { ["$default"] = { integration = { type = "mock", status = 200, body = "ok" }, route_response = true } },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    local function call(method, id, token)
        return w.connections_call(port, method, id, token and ("x-ops: " .. token),
            method == "POST" and "from the operator" or nil)
    end

    it("runs the authorizer: 401 without its identity, 403 when it denies, the call when it allows", function()
        local c, r = w.raw_open(port)
        assert.equal(101, r.status)
        local id = w.last_connect_id(log)
        assert.truthy(id)
        local no = call("POST", id)
        assert.equal(401, no.status)
        assert.equal('{"message":"Unauthorized"}', no.body)
        assert.equal(403, call("POST", id, "wrong-token-0123456789").status)
        assert.equal(200, call("POST", id, TOKEN).status)
        local op, payload = w.read_frame(c)
        assert.equal(1, op)
        assert.equal("from the operator", payload)
        local info = call("GET", id, TOKEN)
        assert.equal(200, info.status)
        assert.equal("127.0.0.1", cjson.decode(info.body).identity.sourceIp)
        assert.equal(410, call("GET", "AAAAAAAAAAAAAAAA", TOKEN).status)
        -- the call is logged as the "$connections" route with the authorizer's principal
        local e = h.wait_for(function()
            for _, x in ipairs(w.log_entries(log)) do
                if x.route == "$connections" and x.status == "200" then return x end
            end
        end, 5)
        assert.truthy(e)
        assert.equal("operator", e.who)
        assert.equal(204, call("DELETE", id, TOKEN).status)
        op = w.read_frame(c)
        assert.equal(8, op)
        c:close()
    end)

    it("a message cannot select the $connections route", function()
        local c, r = w.raw_open(port)
        assert.equal(101, r.status)
        c:send(w.frame(1, '{"action":"$connections"}'))
        local op, payload = w.read_frame(c)
        assert.equal(1, op)
        assert.equal("ok", payload) -- $default answered
        c:close()
    end)
end)
