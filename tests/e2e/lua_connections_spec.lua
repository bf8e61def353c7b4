-- moongate.connections through the real binary, from an HTTP API's hooks (README
-- "moongate.connections"): an id no connection has is gone (410), a malformed one is
-- refused, misuse is an error, and log policies may not use it.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cjson = require "cjson"

local POLICIES = {
    -- Runs the three operations on the connection id in x-id and answers with the outcomes.
    ["push.lua"] = [[
local connections = require "moongate.connections"
local cjson = require "cjson"
return { handle = function(event)
  local id = event.headers["x-id"]
  local out = {}
  local function put(name, ...)
    local a, b, c = ...
    out[name] = { ok = a and true or false, err = b, status = c }
  end
  put("send", connections.send(id, "hi"))
  put("binary", connections.send(id, "\1\2", { binary = true }))
  put("info", connections.info(id))
  put("close", connections.close(id))
  return out
end }
]],
    ["misuse.lua"] = [[
local connections = require "moongate.connections"
return { handle = function() return connections.send(1, "x") end }
]],
    ["logcall.lua"] = [[
local connections = require "moongate.connections"
return { log = function(ctx)
  if ctx.request:header("x-log-call") then
    local ok, err = pcall(connections.info, "AAAAAAAAAAAAAAAA")
    return { called = ok and "called" or tostring(err):gsub("^.-: ", "") }
  end
end }
]],
}

describe("moongate.connections", function()
    local gw, dir

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        gw = h.start_gateway({
            workers = 2,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
            apis = { a = {
                stages = { ["$default"] = { access_log = { path = dir .. "/access.log",
                    format = '{"id":"$context.requestId","called":"$context.custom.called"}',
                    policy = "policies/logcall.lua" } } },
                routes = {
                    ["GET /push"] = { integration = { type = "lua", handler = "policies/push.lua" } },
                    ["GET /misuse"] = { integration = { type = "lua", handler = "policies/misuse.lua" } },
                },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("answers gone for an id no connection has", function()
        local r = h.curl({ gw:url("/push"), "-H", "X-Id: AAAAAAAAAAAAAAAA" })
        assert.equal(200, r.status)
        local gone = { ok = false, err = "gone", status = 410 }
        assert.same({ send = gone, binary = gone, info = gone, close = gone }, cjson.decode(r.body))
    end)

    it("refuses a malformed id", function()
        local r = h.curl({ gw:url("/push"), "-H", "X-Id: nope" })
        assert.equal(200, r.status)
        local bad = { ok = false, err = "invalid connection id", status = 400 }
        assert.same({ send = bad, binary = bad, info = bad, close = bad }, cjson.decode(r.body))
    end)

    it("raises an error for misuse", function()
        local r = h.curl({ gw:url("/misuse") })
        h.assert_gateway_response(r, 500, "Internal Server Error", "InternalServerErrorException")
        assert.matches("send: connection id must be a string, got number", gw.stderr(), 1, true)
    end)

    it("is refused in a log policy", function()
        local r = h.curl({ gw:url("/push"), "-H", "X-Id: AAAAAAAAAAAAAAAA", "-H", "X-Log-Call: 1" })
        assert.equal(200, r.status)
        local id = r.headers["apigw-requestid"]
        local line = h.wait_for(function() return h.find_entry(h.json_log(dir .. "/access.log"), "id", id) end, 5)
        assert.is_table(line, "no access-log line")
        assert.matches("can only be used from the hook itself", line.called, 1, true)
    end)
end)
