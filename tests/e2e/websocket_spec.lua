-- WebSocket APIs through the real binary (README "WebSocket APIs"): the upgrade through
-- $connect (authorizer, subprotocol), messages routed by the selection expression to
-- Lua, mock and http integrations, the error message of an unroutable message, one
-- access-log line per event, $disconnect with its close code for each way a connection
-- ends, @connections on the management listener from another thread, and the protocol
-- errors of raw frames (a real client: Debian's python3-websockets; raw frames: luasocket).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local w = require "ws_helpers"
local cjson = require "cjson.safe"
local TOKEN = "ws-test-token-0123456789abcdef0123456789"

local POLICIES = {
    ["echo.lua"] = [[
return { handle = function(event)
  return { statusCode = 200, body = "echo:" .. (event.body or "") }
end }
]],
    ["whoami.lua"] = [[
return { handle = function(event)
  local rc = event.requestContext
  return { statusCode = 200, body = rc.eventType .. " " .. rc.routeKey .. " " .. rc.connectionId }
end }
]],
    ["connect.lua"] = [[
-- $connect: a query parameter decides; the subprotocol "chat" is chosen when offered.
return { handle = function(event)
  local q = event.queryStringParameters or {}
  if q.reject then return { statusCode = 403, body = "rejected" } end
  return { statusCode = 200, headers = { ["Sec-WebSocket-Protocol"] = "chat" } }
end }
]],
    ["gate.lua"] = [[
return { authorize = function(req, conf, auth)
  return { isAuthorized = auth.identity_source[1] == "letmein" }
end }
]],
}

local ws, ws_background, events_of, entry = w.ws, w.ws_background, w.events_of, w.entry
local frame, raw_open, read_frame, close_code = w.frame, w.raw_open, w.read_frame, w.close_code

describe("WebSocket APIs", function()
    local gw, up, dir, port, mport, log

    lazy_setup(function()
        up = h.start_upstream()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        h.write_file(dir .. "/token", TOKEN .. "\n")
        os.execute("chmod 600 " .. h.sh_quote(dir .. "/token"))
        port, mport = h.free_port(), h.free_port()
        log = dir .. "/access.log"
        gw = h.start_gateway({
            workers = 2,
            listen = { { address = "127.0.0.1", port = port, api = "chat" } },
            management = { address = "127.0.0.1", port = mport, token_file = dir .. "/token" },
            apis = {
                chat = {
                    protocol = "websocket",
                    route_selection_expression = "$request.body.action",
                    websocket = { idle_timeout = 2 },
                    authorizers = {
                        gate = { type = "lua", policy = "policies/gate.lua",
                            identity_sources = { "$request.querystring.token" }, ttl = 0 },
                    },
                    stages = { ["$default"] = { access_log = { path = log, format =
                        '{"event":"$context.eventType","route":"$context.routeKey","conn":"$context.connectionId",'
                        .. '"status":"$context.status","code":"$context.disconnectStatusCode",'
                        .. '"reason":"$context.disconnectReason","msg":"$context.messageId","error":"$context.error.message"}' } } },
                    routes = {
                        ["$connect"] = { authorizer = "gate", integration = { type = "lua", handler = "policies/connect.lua" } },
                        echo = { integration = { type = "lua", handler = "policies/echo.lua" }, route_response = true },
                        whoami = { integration = { type = "lua", handler = "policies/whoami.lua" }, route_response = true },
                        silent = { integration = { type = "lua", handler = "policies/echo.lua" } },
                        mock = { integration = { type = "mock", status = 200, body = "{\"mocked\":true}" }, route_response = true },
                        backend = { integration = { type = "http", uri = up.origin .. "/ws-backend" }, route_response = true },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local OK = { "--header", "Origin: http://test" }
    local function url_ok(steps, extra)
        return ws(port, steps, extra or OK, "/?token=letmein")
    end

    it("routes a JSON message by its action to a Lua handler and answers it (route_response)", function()
        local ev = url_ok({ { "send", '{"action":"echo","n":1}' }, { "recv" }, { "close", 1000, "done" } })
        assert.equal("open", ev[1].event)
        assert.same({ event = "message", data = 'echo:{"action":"echo","n":1}', binary = false }, ev[2])
        assert.equal("closed", ev[3].event)
        assert.equal(1000, ev[3].code)
    end)

    it("gives the handler the AWS event: eventType, routeKey, connectionId", function()
        local ev = url_ok({ { "send", '{"action":"whoami"}' }, { "recv" } })
        local t, route, id = ev[2].data:match("^(%S+) (%S+) (%S+)$")
        assert.equal("MESSAGE", t)
        assert.equal("whoami", route)
        assert.equal(16, #id)
        assert.truthy(entry(log, id, "CONNECT"))
    end)

    it("answers with a mock integration's body and sends nothing without route_response", function()
        local ev = url_ok({ { "send", '{"action":"silent"}' }, { "recv_timeout", 0.5 },
            { "send", '{"action":"mock"}' }, { "recv" } })
        assert.equal("timeout", ev[2].event)
        assert.same({ event = "message", data = '{"mocked":true}', binary = false }, ev[3])
    end)

    it("POSTs the message to an http integration and sends its response body back", function()
        local ev = url_ok({ { "send", '{"action":"backend","v":"x"}' }, { "recv" } })
        assert.equal("message", ev[2].event)
        local body = cjson.decode(ev[2].data)
        assert.equal("POST", body.method)
        assert.equal('{"action":"backend","v":"x"}', body.body)
    end)

    it("answers an unroutable message (no such key, no $default) with AWS's error message", function()
        local ev = url_ok({ { "send", '{"action":"nope"}' }, { "recv" }, { "send", "not json" }, { "recv" } })
        for _, m in ipairs({ ev[2], ev[3] }) do
            local e = cjson.decode(m.data)
            assert.equal("Forbidden", e.message)
            assert.equal(16, #e.connectionId)
            assert.truthy(e.requestId)
        end
    end)

    it("refuses the upgrade with 403 when the $connect authorizer denies, and no connection exists", function()
        local ev = ws(port, { { "send", "x" } }, OK, "/?token=wrong")
        assert.same("rejected", ev[1].event)
        assert.equal(403, ev[1].status)
        local ev2 = ws(port, {}, OK, "/")
        assert.equal("rejected", ev2[1].event)
        assert.equal(401, ev2[1].status) -- no identity source: Unauthorized, as AWS
    end)

    it("answers the $connect integration's own status (403) and keeps no connection", function()
        local ev = ws(port, {}, OK, "/?token=letmein&reject=1")
        assert.equal("rejected", ev[1].event)
        assert.equal(403, ev[1].status)
    end)

    it("sends the subprotocol the $connect integration chose when the client offered it", function()
        local ev = ws(port, {}, { "--subprotocol", "chat" }, "/?token=letmein")
        assert.equal("open", ev[1].event)
        assert.equal("chat", ev[1].subprotocol)
    end)

    it("refuses a plain GET to a WebSocket API with 400 and Sec-WebSocket-Version", function()
        local r = h.curl({ "http://127.0.0.1:" .. port .. "/?token=letmein", "-i" })
        assert.equal(400, r.status)
        assert.equal("13", r.headers["sec-websocket-version"])
    end)

    it("logs one line per connect, message and disconnect, with the close code and reason", function()
        local ev = url_ok({ { "send", '{"action":"whoami"}' }, { "recv" }, { "close", 4001, "see you" } })
        local id = ev[2].data:match("(%S+)$")
        local d = entry(log, id, "DISCONNECT")
        assert.truthy(d)
        assert.equal("4001", d.code)
        assert.equal("see you", d.reason)
        assert.equal("$disconnect", d.route)
        local m = entry(log, id, "MESSAGE")
        assert.equal("whoami", m.route)
        assert.matches("^" .. id:gsub("%p", "%%%0") .. "%.1$", m.msg)
    end)

    it("answers pings with pongs", function()
        local ev = url_ok({ { "ping", "abc" } })
        assert.equal("pong", ev[2].event)
    end)

    it("closes an idle connection (1001) and runs $disconnect", function()
        local ev = url_ok({ { "send", '{"action":"whoami"}' }, { "recv" }, { "wait_closed", 5 } })
        local id = ev[2].data:match("(%S+)$")
        assert.equal("closed", ev[3].event)
        assert.equal(1001, ev[3].code)
        assert.equal("Idle timeout", ev[3].reason)
        local d = entry(log, id, "DISCONNECT")
        assert.equal("1001", d.code)
    end)

    describe("@connections on the management listener", function()
        local function manage(method, id, body)
            local args = { "http://127.0.0.1:" .. mport .. "/prod/@connections/" .. id, "-X", method,
                "-H", "Authorization: Bearer " .. TOKEN }
            if body then
                args[#args + 1] = "--data-binary"
                args[#args + 1] = body
            end
            return h.curl(args)
        end

        it("pushes a message, tells connectedAt/identity/lastActiveAt, deletes; then 410", function()
            local out = dir .. "/bg1.out"
            ws_background(port, { { "send", '{"action":"whoami"}' }, { "recv" }, { "recv" }, { "wait_closed", 5 } }, out, "/?token=letmein")
            local id = h.wait_for(function()
                local ev = events_of(out)
                return ev[2] and ev[2].data and ev[2].data:match("(%S+)$")
            end, 5)
            assert.truthy(id)
            local r = manage("POST", id, "pushed from afar")
            assert.equal(200, r.status)
            r = manage("GET", id)
            assert.equal(200, r.status)
            local info = r:json()
            assert.matches("^%d%d%d%d%-%d%d%-%d%dT", info.connectedAt)
            assert.equal("127.0.0.1", info.identity.sourceIp)
            assert.matches("websockets", info.identity.userAgent)
            assert.truthy(info.lastActiveAt)
            r = manage("DELETE", id)
            assert.equal(204, r.status)
            local ev = h.wait_for(function()
                local e = events_of(out)
                return #e >= 4 and e
            end, 5)
            assert.same({ event = "message", data = "pushed from afar", binary = false }, ev[3])
            assert.equal("closed", ev[4].event)
            assert.equal(1000, ev[4].code)
            assert.truthy(entry(log, id, "DISCONNECT"))
            r = manage("GET", id)
            assert.equal(410, r.status)
            assert.equal("GoneException", r.headers["x-amzn-errortype"])
        end)

        it("answers 410 for an unknown id and 413 for a message over 128 KB", function()
            assert.equal(410, manage("POST", "AAAAAAAAAAAAAAAA", "x").status)
            assert.equal(410, manage("GET", "nonsense").status)
            h.write_file(dir .. "/big", h.payload(128 * 1024 + 1))
            assert.equal(413, manage("POST", "AAAAAAAAAAAAAAAA", "@" .. dir .. "/big").status)
        end)

        it("refuses a request without the token", function()
            local r = h.curl({ "http://127.0.0.1:" .. mport .. "/@connections/AAAAAAAAAAAAAAAA" })
            assert.equal(401, r.status)
        end)
    end)
end)

describe("WebSocket protocol errors", function()
    local gw, dir, port, log

    lazy_setup(function()
        dir = h.tmpdir()
        port = h.free_port()
        log = dir .. "/access.log"
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = port, api = "raw" } },
            apis = { raw = {
                protocol = "websocket",
                route_selection_expression = "$request.body.action",
                websocket = { max_frame_size = 1024, max_message_size = 4096 },
                stages = { ["$default"] = { access_log = { path = log, format =
                    '{"event":"$context.eventType","conn":"$context.connectionId","code":"$context.disconnectStatusCode","reason":"$context.disconnectReason"}' } } },
                routes = { ["$default"] = { integration = { type = "mock", status = 200, body = "ok" }, route_response = true } },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    local function expect_close(frames, code)
        local c, r = raw_open(port)
        assert.equal(101, r.status)
        assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", r.headers["sec-websocket-accept"])
        c:send(frames)
        local op, payload
        repeat
            op, payload = read_frame(c)
        until op == nil or op == 8
        assert.equal(8, op)
        local got, reason = close_code(payload)
        assert.equal(code, got)
        assert.truthy(c:closed_by_peer(5))
        c:close()
        return reason
    end

    it("answers a masked text frame, then closes 1002 on an unmasked one", function()
        local c, r = raw_open(port)
        assert.equal(101, r.status)
        c:send(frame(1, "hi"))
        local op, payload = read_frame(c)
        assert.equal(1, op)
        assert.equal("ok", payload)
        c:send(frame(1, "hi", { mask = false }))
        op, payload = read_frame(c)
        assert.equal(8, op)
        assert.equal(1002, (close_code(payload)))
        c:close()
    end)

    it("closes 1007 on invalid UTF-8 in a text message", function()
        expect_close(frame(1, "bad \xff\xfe"), 1007)
    end)

    it("closes 1009 on a frame over max_frame_size and a message over max_message_size", function()
        expect_close(frame(2, string.rep("x", 1025)), 1009)
        local parts = {}
        for i = 1, 5 do
            parts[#parts + 1] = frame(i == 1 and 2 or 0, string.rep("y", 1000), { fin = i == 5 })
        end
        expect_close(table.concat(parts), 1009)
    end)

    it("closes 1002 on a fragmented control frame", function()
        expect_close(frame(9, "p", { fin = false }), 1002)
    end)

    it("joins fragments with a ping in between and answers the ping first", function()
        local c, r = raw_open(port)
        assert.equal(101, r.status)
        c:send(frame(1, "hel", { fin = false }) .. frame(9, "pp") .. frame(0, "lo"))
        local op, payload = read_frame(c)
        assert.equal(10, op)
        assert.equal("pp", payload)
        op, payload = read_frame(c)
        assert.equal(1, op)
        assert.equal("ok", payload)
        c:send(frame(8, "\3\232bye"))
        op, payload = read_frame(c)
        assert.equal(8, op)
        assert.equal(1000, (close_code(payload)))
        assert.truthy(c:closed_by_peer(5))
        c:close()
    end)

    it("records the protocol error's code on $disconnect", function()
        expect_close(frame(1, "x", { mask = false }), 1002)
        local found = h.wait_for(function()
            for _, l in ipairs(h.log_lines(log)) do
                local e = cjson.decode(l)
                if e and e.event == "DISCONNECT" and e.code == "1002" then return e end
            end
        end, 5)
        assert.truthy(found)
    end)

    it("sends close 1001 to open connections and runs $disconnect on shutdown", function()
        local c, r = raw_open(port)
        assert.equal(101, r.status)
        gw:stop()
        local op, payload = read_frame(c)
        assert.equal(8, op)
        assert.equal(1001, (close_code(payload)))
        c:close()
        local found = h.wait_for(function()
            for _, l in ipairs(h.log_lines(log)) do
                local e = cjson.decode(l)
                if e and e.event == "DISCONNECT" and e.code == "1001" then return e end
            end
        end, 5)
        assert.truthy(found)
    end)
end)
