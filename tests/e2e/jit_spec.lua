-- Policies run JIT-compiled in the gateway too (README "The error contract"): with
-- MOONGATE_JIT_AUDIT set, the worker logs every trace abort for code LuaJIT cannot
-- compile, and every place it blacklists (stops compiling after repeated aborts).
-- Driving each stock policy, and the FFI request object under it, a few hundred times
-- through the real binary must log none; so must a thousand WebSocket messages
-- through a Lua handler (the event path once ran interpreted: a byte loop in it made
-- LuaJIT blacklist the hook's trace). (spec/lua/jit_spec.lua does the same through
-- the kit.)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local w = require "ws_helpers"

local STOCK = h.root .. "/policies/"

describe("JIT-compiled hot paths in the gateway", function()
    it("log no trace abort over 300 requests through every stock policy", function()
        local dir = h.tmpdir()
        local gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "j" } },
            apis = { j = {
                stages = { ["$default"] = {
                    access_log = { path = dir .. "/a.log", policy = STOCK .. "log/json.lua" },
                    waf = { rules = { { priority = 1, policy = STOCK .. "waf/ip_set.lua", action = "block",
                        config = { cidrs = { "203.0.113.0/24", "2001:db8::/32" }, header = "x-ip" } } } },
                } },
                authorizers = { keys = { type = "lua", policy = STOCK .. "authorizers/api_key_header.lua", ttl = 0,
                    identity_sources = { "$request.header.x-api-key" }, config = { keys = { ["k-1234567890"] = "a" } } } },
                route_selection = { policy = STOCK .. "routes/header.lua",
                    config = { header = "x-v", routes = { ["2"] = "ANY /echo/{proxy+}" } } },
                routes = {
                    ["ANY /echo/{proxy+}"] = { authorizer = "keys",
                        integration = { type = "lua", handler = STOCK .. "examples/echo.lua" } },
                },
            } },
        }, { dir = dir, env = { MOONGATE_JIT_AUDIT = "1" } })
        local c = h.connect(gw.port)
        local statuses = {}
        for i = 1, 300 do
            local ip = i % 3 == 0 and "203.0.113.7" or "198.51.100." .. (i % 200)
            c:send("POST /echo/a/" .. i .. "?q=" .. i .. " HTTP/1.1\r\nHost: j\r\nX-Api-Key: k-1234567890\r\n"
                .. "X-Ip: " .. ip .. "\r\nX-V: 2\r\nCookie: a=1; b=2\r\nContent-Length: 5\r\n\r\nhello")
            local r = assert(c:read_response())
            statuses[r.status] = (statuses[r.status] or 0) + 1
        end
        c:close()
        h.stop_all(gw)
        assert.same({ [200] = 200, [403] = 100 }, statuses)
        local aborts = {}
        for line in gw.stderr():gmatch("[^\n]*trace abort[^\n]*") do
            -- known, left for issue 13: the loops over a handler's response headers
            -- (events.lua M.response, runtime.lua RUN[HANDLE]) abort the HTTP hook's trace
            if not line:find("inner loop in root trace", 1, true) then
                aborts[#aborts + 1] = line
            end
        end
        assert.same({}, aborts)
    end)

    it("log no trace abort or blacklisting over 1,000 WebSocket messages to a Lua handler", function()
        local dir = h.tmpdir()
        local gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "ws" } },
            apis = { ws = {
                protocol = "websocket",
                route_selection_expression = "$request.body.action",
                stages = { ["$default"] = {} },
                routes = { echo = { route_response = true,
                    integration = { type = "lua", handler = h.root .. "/bench/conf/ws/ws_echo.lua" } } },
            } },
        }, { dir = dir, env = { MOONGATE_JIT_AUDIT = "1" } })
        local c, r = w.raw_open(gw.port)
        assert.equal(101, r.status)
        local msg = '{"action":"echo","data":"0123456789abcdef"}'
        local echoed = 0
        for _ = 1, 10 do
            local burst = {}
            for i = 1, 100 do burst[i] = w.frame(1, msg) end
            c:send(table.concat(burst))
            for _ = 1, 100 do
                local op, payload = w.read_frame(c)
                if op == 1 and payload == msg then echoed = echoed + 1 end
            end
        end
        c:close()
        h.stop_all(gw)
        assert.equal(1000, echoed)
        local aborts = {}
        for line in gw.stderr():gmatch("[^\n]*trace abort[^\n]*") do
            aborts[#aborts + 1] = line
        end
        assert.same({}, aborts)
    end)
end)
