-- Log destinations (README "Log destinations"): access and WAF logs to standard output
-- and standard error, to syslog servers over UDP, TCP and a unix socket (RFC 5424
-- messages, read here by real sockets), a server that is down, the error log as JSON
-- lines and its level, and the configuration errors.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local socket = require "socket"
local unix = require "socket.unix"

local FORMAT = '{"id":"$context.requestId","status":$context.status,"path":"$context.path"}'
-- <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG (RFC 5424 6)
local SYSLOG = "^<(%d+)>1 (%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ) (%S+) (%S+) (%d+) (%S+) %- (.*)$"

local function parse_syslog(msg)
    local pri, ts, host, app, pid, msgid, body = msg:match(SYSLOG)
    assert(pri, "not an RFC 5424 message: " .. tostring(msg))
    return { pri = tonumber(pri), ts = ts, host = host, app = app, pid = tonumber(pid), msgid = msgid,
        body = h.json_decode(body) }
end

local function gateway(stage, extra)
    local conf = {
        workers = 2,
        apis = { sinks = { stages = { ["$default"] = stage }, routes = {
            ["GET /hello"] = { integration = { type = "mock", body = "hi" } },
        } } },
    }
    for k, v in pairs(extra or {}) do conf[k] = v end
    local listen_port = h.free_port()
    conf.listen = { { address = "127.0.0.1", port = listen_port, api = "sinks" } }
    return h.start_gateway(conf)
end

local function get(gw, path)
    local r = h.curl{ gw:url(path) }
    assert.are.equal(200, r.status)
    return r
end

-- Reads octet-counted frames (RFC 6587 3.4.1) from a TCP connection.
local function read_frame(conn)
    local digits = ""
    while true do
        local c, err = conn:receive(1)
        if not c then return nil, err end
        if c == " " then break end
        digits = digits .. c
    end
    return conn:receive(tonumber(digits))
end

describe("log destinations", function()
    it("writes access-log lines to standard output, one whole line per request across workers", function()
        local gw = gateway({ access_log = { stream = "stdout", format = FORMAT } })
        for i = 1, 30 do get(gw, "/hello?i=" .. i) end
        local lines
        assert.is_true(h.wait_for(function()
            lines = {}
            for l in gw.stdout():gmatch("[^\n]+") do lines[#lines + 1] = l end
            return #lines >= 30
        end, 10), "stdout: " .. gw.stdout())
        h.stop_all(gw)
        assert.are.equal(30, #lines)
        for _, l in ipairs(lines) do
            local e = h.json_decode(l)
            assert.are.equal(200, e.status)
            assert.are.equal("/hello", e.path)
        end
    end)

    it("keeps a JSON line valid UTF-8 when a header is not", function()
        local gw = gateway({ access_log = { stream = "stdout",
            format = '{"ua":"$context.identity.userAgent","status":$context.status}' } })
        local c = h.connect(gw.port)
        c:send("GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: ok \xff\xc3( \xe2\x82\xac end\r\n\r\n")
        assert.are.equal(200, assert(c:read_response()).status)
        c:close()
        assert.truthy(h.wait_for(function() return gw.stdout():find("status", 1, true) end, 10))
        h.stop_all(gw)
        local line = gw.stdout():match("[^\n]+")
        assert.are.equal('{"ua":"ok \\ufffd\\ufffd( \xe2\x82\xac end","status":200}', line)
    end)

    it("writes the error log as JSON lines to standard error, the access log there too", function()
        local gw = gateway({ access_log = { stream = "stderr", format = FORMAT } },
            { error_log = { format = "json" } })
        get(gw, "/hello")
        assert.truthy(h.wait_for(function() return gw.stderr():find('"status":200', 1, true) end, 10))
        h.stop_all(gw)
        local levels, access = {}, 0
        for l in gw.stderr():gmatch("[^\n]+") do
            local e = h.json_decode(l) -- every line is JSON
            if e.status then
                access = access + 1
            else
                assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", e.time)
                assert.is_string(e.message)
                assert.is_number(e.worker)
                levels[e.level] = true
            end
        end
        assert.are.equal(1, access)
        assert.is_true(levels.info) -- "listening on ...", "shutting down"
    end)

    it("leaves out error-log lines below the configured level", function()
        local gw = gateway({ access_log = { stream = "stdout", format = FORMAT } },
            { error_log = { level = "warn" } })
        get(gw, "/hello")
        h.stop_all(gw)
        assert.is_nil(gw.stderr():find("[info]", 1, true), gw.stderr())
    end)

    it("sends RFC 5424 messages to a syslog server over UDP", function()
        local server = assert(socket.udp())
        assert(server:setsockname("127.0.0.1", 0))
        local _, port = server:getsockname()
        server:settimeout(5)
        local gw = gateway({ access_log = { format = FORMAT, syslog = {
            server = "udp://127.0.0.1:" .. port, facility = "local0", severity = "notice",
            app_name = "gw-e2e", hostname = "edge-1" } } })
        for i = 1, 5 do get(gw, "/hello?n=" .. i) end
        local msgs = {}
        for _ = 1, 5 do
            local d = server:receive()
            if d then msgs[#msgs + 1] = parse_syslog(d) end
        end
        h.stop_all(gw)
        server:close()
        assert.are.equal(5, #msgs)
        for _, m in ipairs(msgs) do
            assert.are.equal(16 * 8 + 5, m.pri) -- local0.notice
            assert.are.equal("edge-1", m.host)
            assert.are.equal("gw-e2e", m.app)
            assert.are.equal("access", m.msgid)
            assert.are.equal(200, m.body.status)
        end
    end)

    it("sends octet-counted messages over TCP, a connection per worker, and connects again", function()
        local server = assert(socket.bind("127.0.0.1", 0))
        local _, port = server:getsockname()
        server:settimeout(5)
        local gw = gateway({ access_log = { format = FORMAT, syslog = { server = "tcp://127.0.0.1:" .. port } } })
        local conns = { assert(server:accept()), assert(server:accept()) } -- workers = 2
        -- The next n frames from any of the connections.
        local function frames(n)
            local out = {}
            while #out < n do
                local ready = socket.select(conns, nil, 5)
                assert(#ready > 0, "timeout")
                for _, c in ipairs(ready) do
                    if #out == n then break end
                    c:settimeout(5)
                    out[#out + 1] = parse_syslog(assert(read_frame(c)))
                end
            end
            return out
        end
        for _ = 1, 6 do get(gw, "/hello") end
        for _, m in ipairs(frames(6)) do
            assert.are.equal(23 * 8 + 6, m.pri) -- the default: local7.info
            assert.are.equal("moongate", m.app)
            assert.are.equal(200, m.body.status)
        end
        -- the server goes away: the gateway drops lines while it is down, connects again
        for _, c in ipairs(conns) do c:close() end
        server:settimeout(0.2)
        conns = {}
        for _ = 1, 100 do
            get(gw, "/hello?after=close")
            local c = server:accept()
            if c then conns[#conns + 1] = c end
            if #conns == 2 then break end
        end
        assert.are.equal(2, #conns, "no new connections")
        for _ = 1, 4 do get(gw, "/hello?after=reconnect") end
        local seen = 0
        for _, m in ipairs(frames(4)) do
            if m.body.status == 200 then seen = seen + 1 end
        end
        assert.are.equal(4, seen)
        for _, c in ipairs(conns) do c:close() end
        server:close()
        h.stop_all(gw)
    end)

    it("loses no line sent over TCP at a reload: the old connection sends everything, then closes", function()
        local server = assert(socket.bind("127.0.0.1", 0))
        local _, port = server:getsockname()
        server:settimeout(5)
        local gw = gateway({ access_log = { format = FORMAT, syslog = { server = "tcp://127.0.0.1:" .. port } } },
            { workers = 1 })
        local old = assert(server:accept())
        old:settimeout(5)
        for i = 1, 50 do get(gw, "/hello?i=" .. i) end
        gw:signal("HUP") -- the buffered lines go on the old connection, which then closes
        local got = 0
        while true do
            local f = read_frame(old)
            if not f then break end
            if parse_syslog(f).body.status == 200 then got = got + 1 end
        end
        assert.are.equal(50, got)
        local new = assert(server:accept()) -- the new generation's connection
        new:settimeout(5)
        get(gw, "/hello")
        assert.are.equal(200, parse_syslog(assert(read_frame(new))).body.status)
        new:close()
        server:close()
        h.stop_all(gw)
    end)

    it("sends datagrams to a unix socket such as /dev/log", function()
        local dir = h.tmpdir()
        local path = dir .. "/log.sock"
        local server = assert(unix.dgram())
        assert(server:bind(path))
        server:settimeout(5)
        local gw = gateway({ access_log = { format = FORMAT, syslog = { server = "unix:" .. path } } })
        get(gw, "/hello")
        local d = server:receive()
        h.stop_all(gw)
        server:close()
        os.remove(path)
        local m = parse_syslog(assert(d, "no datagram"))
        assert.are.equal(200, m.body.status)
    end)

    it("keeps answering when the syslog server is not there, and says so once per worker", function()
        local path = h.tmpdir() .. "/no-daemon.sock" -- no syslog daemon: the socket file is missing
        local gw = gateway({ access_log = { format = FORMAT, syslog = { server = "unix:" .. path } } })
        for _ = 1, 20 do get(gw, "/hello") end
        h.stop_all(gw)
        local err = gw.stderr()
        local msg = "access log <syslog unix:" .. path .. " 190 %S+ moongate access>: No such file or directory; "
            .. "lines are dropped until it answers again"
        local n = select(2, err:gsub((msg:gsub("[%.%-]", "%%%0")), ""))
        assert.are.equal(2, n, err) -- workers = 2, within the 10 s between reports
    end)

    it("writes the WAF log to a destination too", function()
        local gw = gateway({
            access_log = { stream = "stderr", format = FORMAT },
            waf = { log = { stream = "stdout" }, rules = { {
                name = "no-admin", priority = 1, action = "block",
                statement = { byte_match = { field = "uri_path", search_string = "/admin",
                    positional_constraint = "STARTS_WITH" } },
            } } },
        })
        local r = h.curl{ gw:url "/admin" }
        assert.are.equal(403, r.status)
        assert.truthy(h.wait_for(function() return gw.stdout():find("no-admin", 1, true) end, 10))
        h.stop_all(gw)
        local e = h.json_decode(gw.stdout():match("[^\n]+"))
        assert.are.equal("BLOCK", e.action)
        assert.are.equal("no-admin", e.terminatingRuleId)
    end)

    describe("configuration errors", function()
        local function check(stage, extra)
            local dir = h.tmpdir()
            local conf = { apis = { a = { stages = { ["$default"] = stage }, routes = {
                ["GET /"] = { integration = { type = "mock" } } } } } }
            for k, v in pairs(extra or {}) do conf[k] = v end
            local path = h.write_file(dir .. "/gateway.lua", h.config_source(conf))
            local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
            assert.are_not.equal(0, rc)
            return out
        end
        local W = 'apis.a.stages["$default"].access_log'

        it("a log with two destinations or none", function()
            assert.matches(W .. ".syslog: a log has exactly one of path, stream or syslog; this one has path and syslog",
                check({ access_log = { path = "x.log", syslog = { server = "udp://127.0.0.1" }, format = FORMAT } }), 1, true)
            assert.matches(W .. ".path: is required (or stream or syslog)", check({ access_log = { format = FORMAT } }), 1, true)
        end)

        it("a bad stream, server, facility or host name", function()
            assert.matches(W .. '.stream: must be one of "stdout", "stderr", got "stdlog"',
                check({ access_log = { stream = "stdlog", format = FORMAT } }), 1, true)
            assert.matches(W .. '.syslog.server: must be "udp://HOST:PORT", "tcp://HOST:PORT" or "unix:/PATH", got "http://x"',
                check({ access_log = { syslog = { server = "http://x" }, format = FORMAT } }), 1, true)
            assert.matches(W .. '.syslog.server: "udp://h:70000": the port must be 1 to 65535',
                check({ access_log = { syslog = { server = "udp://h:70000" }, format = FORMAT } }), 1, true)
            assert.matches(W .. ".syslog.server: is required",
                check({ access_log = { syslog = {}, format = FORMAT } }), 1, true)
            assert.matches(W .. '.syslog.facility: must be one of "kern", ',
                check({ access_log = { syslog = { server = "udp://127.0.0.1", facility = "local8" }, format = FORMAT } }), 1, true)
            assert.matches(W .. '.syslog.app_name: must be 1 to 48 printable ASCII characters without spaces, got "my app"',
                check({ access_log = { syslog = { server = "udp://127.0.0.1", app_name = "my app" }, format = FORMAT } }), 1, true)
            assert.matches(W .. '.syslog.server: cannot resolve "no-such-host.invalid"',
                check({ access_log = { syslog = { server = "tcp://no-such-host.invalid:514" }, format = FORMAT } }), 1, true)
        end)

        it("a bad error-log format or level", function()
            assert.matches('error_log.format: must be one of "text", "json", got "xml"',
                check({}, { error_log = { format = "xml" } }), 1, true)
            assert.matches('error_log.level: must be one of "error", "warn", "info", "debug", got "trace"',
                check({}, { error_log = { level = "trace" } }), 1, true)
        end)
    end)
end)
