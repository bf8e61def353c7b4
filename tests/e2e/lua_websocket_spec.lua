-- The Lua side of WebSocket APIs through the real binary, with a real client
-- (tests/e2e/ws_client.py): the AWS WebSocket event a Lua integration gets, what the
-- $connect authorizer and handler keep for later events, and moongate.connections from
-- a WebSocket handler and from an HTTP API's handler (the connection may be on either
-- worker).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cjson = require "cjson"

local POLICIES = {
    ["token.lua"] = [[
return { authorize = function(req, conf, auth)
  local who = auth.identity_source[1]
  if who == "nobody" then return { isAuthorized = false } end
  return { isAuthorized = true, principalId = who, context = { tier = "gold" } }
end }
]],
    -- $connect keeps the room; messages answer with what their event says, after pushing
    -- "pushed" to their own connection; "info" and "bye" use the other operations.
    ["chat.lua"] = [[
local connections = require "moongate.connections"
local cjson = require "cjson.safe"
return { handle = function(event)
  local rc = event.requestContext
  if rc.eventType == "CONNECT" then
    local q = event.queryStringParameters or {}
    if q.fail then error("refused on purpose") end
    return { statusCode = 200, context = { room = q.room or "lobby", n = 7 } }
  elseif rc.eventType == "DISCONNECT" then
    return { statusCode = 200 }
  end
  local msg = cjson.decode(event.body) or {}
  if msg.action == "kept" then
    return { statusCode = 200, body = tostring(connections.kept_count()) }
  end
  if msg.action == "bye" then
    assert(connections.close(rc.connectionId))
    return { statusCode = 200, body = "closing" }
  end
  assert(connections.send(rc.connectionId, "pushed"))
  local info, ierr
  if msg.action == "info" then info, ierr = connections.info(rc.connectionId) end
  return { statusCode = 200, body = cjson.encode({
    eventType = rc.eventType, routeKey = rc.routeKey, body = event.body, id = rc.connectionId,
    b64 = event.isBase64Encoded, messageId = rc.messageId, authorizer = rc.authorizer,
    connectionContext = rc.connectionContext, info = info, ierr = ierr, connectedAt = rc.connectedAt,
    sourceIp = rc.identity.sourceIp }) }
end }
]],
    -- An HTTP API's handler pushes to the connection named in x-id.
    ["push.lua"] = [[
local connections = require "moongate.connections"
return { handle = function(event)
  local ok, err, status = connections.send(event.headers["x-id"], event.body or "")
  if ok then return { statusCode = 200, body = "sent" } end
  return { statusCode = status, body = err }
end }
]],
}

describe("Lua on WebSocket APIs", function()
    local gw, dir, ws_port, http_port

    local function client(steps, headers, path)
        local args = { "/usr/bin/python3", here .. "ws_client.py",
            "ws://127.0.0.1:" .. ws_port .. (path or "/?room=7"), cjson.encode(steps) }
        for _, hd in ipairs(headers or { "Authorization: alice" }) do
            args[#args + 1] = "--header"
            args[#args + 1] = hd
        end
        local quoted = {}
        for i, a in ipairs(args) do quoted[i] = h.sh_quote(a) end
        return table.concat(quoted, " ")
    end

    local function run(steps, headers, path)
        local p = io.popen(client(steps, headers, path))
        local out = {}
        for line in p:lines() do out[#out + 1] = cjson.decode(line) end
        p:close()
        return out
    end

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        ws_port, http_port = h.free_port(), h.free_port()
        local chat = { type = "lua", handler = "policies/chat.lua" }
        gw = h.start_gateway({
            workers = 2,
            listen = { { address = "127.0.0.1", port = ws_port, api = "chat" },
                       { address = "127.0.0.1", port = http_port, api = "web" } },
            apis = {
                chat = {
                    protocol = "websocket",
                    route_selection_expression = "$request.body.action",
                    stages = { ["$default"] = {} },
                    authorizers = { tok = { type = "lua", policy = "policies/token.lua", ttl = 0,
                        identity_sources = { "$request.header.Authorization" } } },
                    routes = {
                        ["$connect"] = { integration = chat, authorizer = "tok" },
                        ["$disconnect"] = { integration = chat },
                        ["$default"] = { integration = chat, route_response = true },
                    },
                },
                web = {
                    stages = { ["$default"] = {} },
                    routes = { ["POST /push"] = { integration = { type = "lua", handler = "policies/push.lua" } } },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("gives handlers the WebSocket event, with what $connect kept", function()
        local out = run({ { "send", '{"action":"hello"}' }, { "recv" }, { "recv" }, { "close", 1000, "" } })
        assert.equal("open", out[1].event)
        assert.same({ event = "message", data = "pushed", binary = false }, out[2])
        local e = cjson.decode(out[3].data)
        assert.equal("MESSAGE", e.eventType)
        assert.equal("$default", e.routeKey)
        assert.equal('{"action":"hello"}', e.body)
        assert.is_false(e.b64)
        assert.equal(16, #e.id)
        assert.is_string(e.messageId)
        assert.is_number(e.connectedAt)
        assert.equal("127.0.0.1", e.sourceIp)
        assert.same({ principalId = "alice", tier = "gold" }, e.authorizer)
        assert.same({ room = "7", n = 7 }, e.connectionContext)
    end)

    it("carries a binary message base64-encoded", function()
        local out = run({ { "sendb", "00ff" }, { "recv" }, { "recv" }, { "close", 1000, "" } })
        local e = cjson.decode(out[3].data)
        assert.is_true(e.b64)
        assert.equal("AP8=", e.body)
        -- binary stays binary when its bytes happen to be text
        out = run({ { "sendb", "6869" }, { "recv" }, { "recv" }, { "close", 1000, "" } })
        e = cjson.decode(out[3].data)
        assert.is_true(e.b64)
        assert.equal("aGk=", e.body)
    end)

    it("answers info and closes by id", function()
        local out = run({ { "send", '{"action":"info"}' }, { "recv" }, { "recv" },
            { "send", '{"action":"bye"}' }, { "wait_closed", 5 } })
        local e = cjson.decode(out[3].data)
        assert.is_table(e.info, out[3].data)
        assert.equal("127.0.0.1", e.info.identity.sourceIp)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", e.info.connectedAt)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT", e.info.lastActiveAt)
        local last = out[#out]
        assert.equal("closed", last.event)
        assert.equal(1000, last.code)
    end)

    it("drops what it kept when a connection ends, a failed $connect's too", function()
        local out = run({}, nil, "/?fail=1")
        assert.equal("rejected", out[1].event)
        assert.equal(500, out[1].status)
        -- every connection before this one has ended: its worker keeps only its own values
        local n
        h.wait_for(function()
            local o = run({ { "send", '{"action":"kept"}' }, { "recv" }, { "close", 1000, "" } })
            n = o[2] and o[2].data
            return n == "1"
        end, 5)
        assert.equal("1", n)
    end)

    it("refuses $connect when the authorizer does", function()
        local out = run({}, { "Authorization: nobody" })
        assert.equal("rejected", out[1].event)
        assert.equal(403, out[1].status)
    end)

    it("lets an HTTP API's handler push to a connection on any worker", function()
        -- several connections: with two workers, some are another worker's than the pushes'
        for _ = 1, 4 do
            local outfile = os.tmpname()
            local cmd = client({ { "send", '{"action":"hello"}' }, { "recv" }, { "recv" },
                { "recv_timeout", 5 }, { "close", 1000, "" } })
            os.execute(cmd .. " > " .. h.sh_quote(outfile) .. " 2>&1 &")
            local id
            h.wait_for(function()
                for line in (h.read_file(outfile) or ""):gmatch("[^\n]+") do
                    local ev = cjson.decode(line)
                    if ev.event == "message" and ev.data:find("^{") then id = cjson.decode(ev.data).id end
                end
                return id ~= nil
            end, 5)
            assert.is_string(id)
            local r = h.curl({ "http://127.0.0.1:" .. http_port .. "/push", "-H", "x-id: " .. id, "-d", "from http" })
            assert.equal(200, r.status)
            assert.equal("sent", r.body)
            local got
            h.wait_for(function()
                got = (h.read_file(outfile) or ""):find('"data": "from http"', 1, true)
                return got or (h.read_file(outfile) or ""):find('"closed"', 1, true)
            end, 8)
            assert.truthy(got, h.read_file(outfile))
            h.wait_for(function() return (h.read_file(outfile) or ""):find('"closed"', 1, true) end, 8)
            os.remove(outfile)
        end
        local r = h.curl({ "http://127.0.0.1:" .. http_port .. "/push", "-H", "x-id: AAAAAAAAAAAAAAAA", "-d", "x" })
        assert.equal(410, r.status)
        assert.equal("gone", r.body)
        for line in gw.stderr():gmatch("[^\n]+") do
            if line:find("[error]", 1, true) and not line:find("refused on purpose", 1, true) then
                error("unexpected error-log line: " .. line)
            end
        end
    end)
end)
