-- GET /metrics families of WebSocket APIs and Lua policies (README "Metrics"), through
-- the real binary with two workers, parsed by python3-prometheus-client's parser:
-- open connections, messages in and out by route (route responses, error frames,
-- @connections pushes), @connections calls by method, status and origin, disconnects
-- by cause (client close, idle timeout, DELETE @connections), hook errors and budget
-- stops by policy and hook, and each worker's Lua memory.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local prom = require "prom"
local w = require "ws_helpers"
local cjson = require "cjson.safe"

local TOKEN = "metrics-ws-token-0123456789abcdef"

local POLICIES = {
    ["whoami.lua"] = w.WHOAMI_POLICY,
    -- pushes "hi" to the connection itself with moongate.connections, then to an id
    -- that is no connection's
    ["tell.lua"] = [[
local connections = require "moongate.connections"
return { handle = function(event)
  local ok = connections.send(event.requestContext.connectionId, "hi")
  local _, _, other = connections.send("AAAAAAAAAAAAAAAA", "hi")
  return { statusCode = 200, body = tostring(ok) .. " " .. tostring(other) }
end }
]],
    ["wafboom.lua"] = [[
return { inspect = function(req)
  if req:header("x-boom") then error("waf boom") end
  return false
end }
]],
    ["boom.lua"] = [[
return { handle = function() error("boom") end }
]],
    ["spin.lua"] = [[
return { handle = function()
  local n = 0
  while true do n = n + 1 end
end }
]],
}

describe("GET /metrics: WebSocket and Lua families", function()
    local gw, dir, p_chat, p_idle, p_http, p_more, mport

    -- without_more: the API "more" is removed (its listener then serves "chat").
    local function config(without_more)
        local ok = { type = "mock", status = 200, body = "ok" }
        return {
            workers = 2,
            lua = { instruction_budget = 100000 },
            listen = {
                { address = "127.0.0.1", port = p_chat, api = "chat" },
                { address = "127.0.0.1", port = p_idle, api = "idle" },
                { address = "127.0.0.1", port = p_http, api = "scripts" },
                { address = "127.0.0.1", port = p_more, api = without_more and "chat" or "more" },
            },
            management = { address = "127.0.0.1", port = mport, token_file = dir .. "/token" },
            apis = {
                chat = {
                    protocol = "websocket",
                    route_selection_expression = "$request.body.action",
                    stages = { ["$default"] = {} },
                    routes = {
                        echo = { integration = { type = "mock", status = 200, body = "pong" }, route_response = true },
                        quiet = { integration = ok }, -- no route response: nothing goes out
                        whoami = { integration = { type = "lua", handler = "policies/whoami.lua" }, route_response = true },
                        ["$default"] = { integration = { type = "mock", status = 200, body = "default" }, route_response = true },
                    },
                },
                idle = {
                    protocol = "websocket",
                    route_selection_expression = "$request.body.action",
                    websocket = { idle_timeout = 1 },
                    stages = { ["$default"] = {} },
                    routes = { -- no $default: a message no route takes gets an error frame
                        echo = { integration = { type = "mock", status = 200, body = "pong" }, route_response = true },
                    },
                },
                more = not without_more and {
                    protocol = "websocket",
                    route_selection_expression = "$request.body.action",
                    stages = { ["$default"] = {} },
                    routes = {
                        tell = { integration = { type = "lua", handler = "policies/tell.lua" }, route_response = true },
                    },
                } or nil,
                scripts = {
                    stages = { ["$default"] = { waf = { default_action = "allow", rules = {
                        { name = "boom", priority = 1, action = "block", policy = "policies/wafboom.lua" },
                    } } } },
                    routes = {
                        ["GET /boom"] = { integration = { type = "lua", handler = "policies/boom.lua" } },
                        ["GET /spin"] = { integration = { type = "lua", handler = "policies/spin.lua" } },
                    },
                },
            },
        }
    end

    -- The scrape's samples, read by the real parser (which fails the test on bad text).
    local function scrape()
        return prom.samples(h, dir, prom.scrape(h, mport, TOKEN))
    end
    local value = prom.value

    -- Waits until the sample's value is want (a connection's end is counted when the
    -- gateway has closed it, which comes after the client read the close frame).
    local function wait_value(name, labels, want)
        local got
        h.wait_for(function()
            got = value(scrape(), name, labels)
            return got == want
        end, 5)
        assert.equal(want, got, name)
    end

    local function M(api, route, direction)
        return { api = api, stage = "$default", route = route, direction = direction }
    end

    local function D(api, cause)
        return { api = api, stage = "$default", cause = cause }
    end

    local function open(port)
        local c, r = w.raw_open(port)
        assert.equal(101, r.status)
        return c
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
        local args = { "http://127.0.0.1:" .. mport .. "/@connections/" .. id, "-X", method,
            "-H", "Authorization: Bearer " .. TOKEN }
        if body then
            args[#args + 1] = "--data-binary"
            args[#args + 1] = body
        end
        return h.curl(args)
    end

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        h.write_file(dir .. "/token", TOKEN .. "\n")
        os.execute("chmod 600 " .. h.sh_quote(dir .. "/token"))
        p_chat, p_idle, p_http, p_more, mport = h.free_port(), h.free_port(), h.free_port(), h.free_port(), h.free_port()
        gw = h.start_gateway(config(), { dir = dir, ports = { p_chat, p_idle, p_http, p_more, mport } })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("exports every series of a websocket API at zero before any traffic", function()
        local s = scrape()
        local v, typ = value(s, "moongate_websocket_connections", { api = "chat", stage = "$default" })
        assert.equal(0, v)
        assert.equal("gauge", typ)
        for _, cause in ipairs({ "client_close", "connection_lost", "idle_timeout", "max_duration",
            "pong_timeout", "deleted", "protocol_error", "message_too_big", "send_queue_full",
            "shutdown", "api_removed" }) do
            v, typ = value(s, "moongate_websocket_disconnects_total", D("chat", cause))
            assert.equal(0, v, cause)
            assert.equal("counter", typ)
        end
        for _, route in ipairs({ "echo", "quiet", "whoami", "$default", "(none)" }) do
            assert.equal(0, value(s, "moongate_websocket_messages_total", M("chat", route, "in")), route)
            assert.equal(0, value(s, "moongate_websocket_messages_total", M("chat", route, "out")), route)
        end
        assert.equal(0, value(s, "moongate_websocket_messages_total", M("chat", "@connections", "out")))
        -- the connection's own events are not message routes
        assert.is_nil(value(s, "moongate_websocket_messages_total", M("chat", "$connect", "in")))
        assert.is_nil(value(s, "moongate_websocket_messages_total", M("chat", "@connections", "in")))
    end)

    it("counts open connections, messages by route and direction, pushes and disconnects", function()
        local c1, c2, c3 = open(p_chat), open(p_chat), open(p_chat)
        local s = scrape()
        assert.equal(3, value(s, "moongate_websocket_connections", { api = "chat", stage = "$default" }))
        -- c2 closes: client_close
        c2:send(w.frame(8, "\3\232"))
        expect_close(c2, 1000)
        c2:close()
        wait_value("moongate_websocket_connections", { api = "chat", stage = "$default" }, 2)
        -- messages: in on their route, out when a response goes back
        for _ = 1, 3 do assert.equal("pong", say(c1, '{"action":"echo"}')) end
        c1:send(w.frame(1, '{"action":"quiet"}'))
        c1:send(w.frame(1, '{"action":"quiet"}'))
        assert.equal("default", say(c1, '{"action":"nothing-like-it"}'))
        assert.equal("default", say(c1, "not json"))
        local id = say(c1, '{"action":"whoami"}')
        assert.equal(16, #id)
        -- @connections on the management listener: a push, an unknown id, info, a delete
        local r = manage("POST", id, "pushed")
        assert.equal(200, r.status, r.body)
        local op, payload = w.read_message(c1)
        assert.equal(1, op)
        assert.equal("pushed", payload)
        r = manage("POST", "AAAAAAAAAAAAAAAA", "lost")
        assert.equal(410, r.status)
        assert.equal(200, manage("GET", id).status)
        local id3 = say(c3, '{"action":"whoami"}')
        assert.equal(204, manage("DELETE", id3).status)
        expect_close(c3, 1000)
        c3:close()
        wait_value("moongate_websocket_connections", { api = "chat", stage = "$default" }, 1)
        s = scrape()
        local function msg(route, dir) return value(s, "moongate_websocket_messages_total", M("chat", route, dir)) end
        assert.equal(3, msg("echo", "in"))
        assert.equal(3, msg("echo", "out"))
        assert.equal(2, msg("quiet", "in"))
        assert.equal(0, msg("quiet", "out"))
        assert.equal(2, msg("$default", "in"))
        assert.equal(2, msg("$default", "out"))
        assert.equal(2, msg("whoami", "in"))
        assert.equal(2, msg("whoami", "out"))
        assert.equal(0, msg("(none)", "in"))
        assert.equal(1, msg("@connections", "out"))
        local function calls(method, status)
            return value(s, "moongate_websocket_connections_api_total",
                { method = method, status = status, via = "management" })
        end
        assert.equal(1, calls("POST", "200"))
        assert.equal(1, calls("POST", "410"))
        assert.equal(1, calls("GET", "200"))
        assert.equal(1, calls("DELETE", "204"))
        assert.equal("counter", select(2, value(s, "moongate_websocket_connections_api_total",
            { method = "POST", status = "200", via = "management" })))
        assert.equal(1, value(s, "moongate_websocket_disconnects_total", D("chat", "client_close")))
        assert.equal(1, value(s, "moongate_websocket_disconnects_total", D("chat", "deleted")))
        assert.equal(0, value(s, "moongate_websocket_disconnects_total", D("chat", "connection_lost")))
        -- c1 goes without a close frame: connection_lost
        c1:close()
        wait_value("moongate_websocket_disconnects_total", D("chat", "connection_lost"), 1)
        assert.equal(0, value(scrape(), "moongate_websocket_connections", { api = "chat", stage = "$default" }))
    end)

    it("counts a message no route took, its error frame, and the idle timeout", function()
        local c = open(p_idle)
        local err = cjson.decode(say(c, '{"action":"elsewhere"}'))
        assert.equal("Forbidden", err.message)
        assert.equal("pong", say(c, '{"action":"echo"}'))
        expect_close(c, 1001, "Idle timeout")
        c:close()
        wait_value("moongate_websocket_disconnects_total", D("idle", "idle_timeout"), 1)
        local s = scrape()
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("idle", "(none)", "in")))
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("idle", "(none)", "out")))
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("idle", "echo", "in")))
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("idle", "echo", "out")))
        assert.equal(0, value(s, "moongate_websocket_disconnects_total", D("idle", "client_close")))
        assert.equal(0, value(s, "moongate_websocket_connections", { api = "idle", stage = "$default" }))
    end)

    it("counts pushes from moongate.connections (via lua) and a bad frame's protocol_error", function()
        local c = open(p_more)
        c:send(w.frame(1, '{"action":"tell"}'))
        local op, payload = w.read_message(c)
        assert.equal(1, op)
        assert.equal("hi", payload)
        assert.equal("true 410", select(2, w.read_message(c)))
        -- an unmasked client frame: 1002
        c:send(w.frame(1, "x", { mask = false }))
        expect_close(c, 1002)
        c:close()
        wait_value("moongate_websocket_disconnects_total", D("more", "protocol_error"), 1)
        local s = scrape()
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("more", "tell", "in")))
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("more", "tell", "out")))
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("more", "@connections", "out")))
        assert.equal(1, value(s, "moongate_websocket_connections_api_total", { method = "POST", status = "200", via = "lua" }))
        assert.equal(1, value(s, "moongate_websocket_connections_api_total", { method = "POST", status = "410", via = "lua" }))
        assert.equal(0, value(s, "moongate_websocket_connections", { api = "more", stage = "$default" }))
    end)

    it("counts hook errors and budget stops by policy and hook, exactly", function()
        local function get(path, ...)
            return h.curl({ "http://127.0.0.1:" .. p_http .. path, ... }).status
        end
        assert.equal(500, get("/boom"))
        assert.equal(500, get("/boom"))
        assert.equal(500, get("/spin"))
        local s = scrape()
        local function L(name, policy)
            return value(s, name, { policy = policy, hook = "integration" })
        end
        assert.equal(2, L("moongate_lua_hook_errors_total", "policies/boom.lua"))
        assert.equal(1, L("moongate_lua_budget_stops_total", "policies/spin.lua"))
        -- a web ACL rule's error counts for the rule's policy
        assert.is_nil(value(s, "moongate_lua_hook_errors_total", { policy = "policies/wafboom.lua", hook = "waf" }))
        assert.equal(500, get("/boom", "-H", "x-boom: 1"))
        assert.equal(1, value(scrape(), "moongate_lua_hook_errors_total", { policy = "policies/wafboom.lua", hook = "waf" }))
        -- the integration did not run: boom.lua's count stays
        assert.equal(2, value(scrape(), "moongate_lua_hook_errors_total", { policy = "policies/boom.lua", hook = "integration" }))
        -- a budget stop is not also an error, and an error is not a budget stop
        assert.is_nil(L("moongate_lua_hook_errors_total", "policies/spin.lua"))
        assert.is_nil(L("moongate_lua_budget_stops_total", "policies/boom.lua"))
        assert.equal("counter", select(2, value(s, "moongate_lua_budget_stops_total",
            { policy = "policies/spin.lua", hook = "integration" })))
        -- the handle the first error found is used again (same series, not a second one)
        assert.equal(500, get("/spin"))
        assert.equal(2, value(scrape(), "moongate_lua_budget_stops_total",
            { policy = "policies/spin.lua", hook = "integration" }))
    end)

    it("says each worker's Lua memory", function()
        local s = scrape()
        for _, worker in ipairs({ "1", "2" }) do
            local v, typ = value(s, "moongate_lua_memory_bytes", { worker = worker })
            assert.is_not_nil(v, worker)
            assert.equal("gauge", typ)
            assert.is_true(v > 100000, worker .. ": " .. tostring(v)) -- moongate.runtime is loaded
        end
        assert.is_nil(value(s, "moongate_lua_memory_bytes", { worker = "0" }))
        assert.is_nil(value(s, "moongate_lua_memory_bytes", { worker = "3" }))
    end)

    it("keeps counting across a reload; a connection whose API a reload removed counts api_removed", function()
        local c = open(p_more)
        assert.equal(1, value(scrape(), "moongate_websocket_connections", { api = "more", stage = "$default" }))
        h.write_file(dir .. "/gateway.lua", h.config_source(config(true)))
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/reload", "-X", "POST",
            "-H", "Authorization: Bearer " .. TOKEN })
        assert.equal(200, r.status, r.body)
        expect_close(c, 1001, "The API was removed")
        c:close()
        wait_value("moongate_websocket_disconnects_total", D("more", "api_removed"), 1)
        local s = scrape()
        -- the removed API's series keep their last values
        assert.equal(0, value(s, "moongate_websocket_connections", { api = "more", stage = "$default" }))
        assert.equal(1, value(s, "moongate_websocket_messages_total", M("more", "tell", "in")))
        -- the chat API's series go on where they were
        assert.equal(3, value(s, "moongate_websocket_messages_total", M("chat", "echo", "in")))
        local c2 = open(p_chat)
        assert.equal("pong", say(c2, '{"action":"echo"}'))
        s = scrape()
        assert.equal(4, value(s, "moongate_websocket_messages_total", M("chat", "echo", "in")))
        assert.equal(4, value(s, "moongate_websocket_messages_total", M("chat", "echo", "out")))
        assert.equal(1, value(s, "moongate_websocket_connections", { api = "chat", stage = "$default" }))
        c2:send(w.frame(8, "\3\232"))
        expect_close(c2, 1000)
        c2:close()
        wait_value("moongate_websocket_disconnects_total", D("chat", "client_close"), 2)
        assert.equal(0, value(scrape(), "moongate_websocket_connections", { api = "chat", stage = "$default" }))
    end)
end)
