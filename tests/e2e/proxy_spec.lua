-- HTTP proxy integrations and the HTTP/1.x client side: forwarded headers,
-- keep-alive, pipelining, upstream connection reuse, chunked bodies both ways,
-- Expect: 100-continue, HTTP/1.0 (README "HTTP", "HTTP proxy integrations").
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

describe("http proxy", function()
    local up, gw

    lazy_setup(function()
        up = h.start_upstream()
        gw = h.start_gateway({
            -- One worker: every client connection lands on the same upstream pool.
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "p" } },
            apis = {
                p = {
                    stages = { ["$default"] = {} },
                    routes = {
                        ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy+}" } },
                        ["GET /mockpipe"] = { integration = { type = "mock", body = "from mock" } },
                        ["GET /override"] = {
                            integration = { type = "http", uri = up.origin .. "/over", method = "POST" },
                        },
                    },
                },
            },
        })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local function request(method, path, headers, body)
        local lines = { method .. " " .. path .. " HTTP/1.1", "Host: gw.test" }
        for _, hd in ipairs(headers or {}) do lines[#lines + 1] = hd end
        if body then lines[#lines + 1] = "Content-Length: " .. #body end
        return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
    end

    describe("request forwarding", function()
        it("forwards method, path, query string, body and headers", function()
            local r = h.curl{ gw:url "/echo/x?a=1&b=two%20x", "--data-binary", "hi there",
                "-H", "X-Custom: v1", "-H", "X-Custom: v2", "-H", "Content-Type: text/plain" }
            assert.are.equal(200, r.status)
            local e = r:echo()
            assert.are.equal("POST", e.method)
            assert.are.equal("/echo/x?a=1&b=two%20x", e.target)
            assert.are.equal("hi there", e.body)
            assert.are.equal("v1, v2", e.headers["x-custom"])
            assert.are.equal("text/plain", e.headers["content-type"])
        end)

        it("sets host to the backend", function()
            local e = h.curl{ gw:url "/echo", "-H", "Host: client.example.test" }:echo()
            assert.are.equal("127.0.0.1:" .. up.port, e.headers.host)
        end)

        it("adds x-forwarded-for, x-forwarded-proto and x-forwarded-port", function()
            local e = h.curl{ gw:url "/echo" }:echo()
            assert.are.equal("127.0.0.1", e.headers["x-forwarded-for"])
            assert.are.equal("http", e.headers["x-forwarded-proto"])
            assert.are.equal(tostring(gw.port), e.headers["x-forwarded-port"])
        end)

        it("appends the client address to an existing x-forwarded-for", function()
            local e = h.curl{ gw:url "/echo", "-H", "X-Forwarded-For: 10.0.0.1" }:echo()
            assert.are.equal("10.0.0.1, 127.0.0.1", e.headers["x-forwarded-for"])
        end)

        it("removes hop-by-hop headers and those named by Connection", function()
            local e = h.curl{ gw:url "/echo",
                "-H", "Connection: foo, keep-alive",
                "-H", "Foo: bar",
                "-H", "Keep-Alive: timeout=5",
                "-H", "Proxy-Connection: keep-alive",
                "-H", "TE: trailers",
                "-H", "Trailer: X-Checksum",
                "-H", "Upgrade: h2c",
                "-H", "X-Keep: yes",
            }:echo()
            assert.is_nil(e.headers.foo)
            assert.is_nil(e.headers["keep-alive"])
            assert.is_nil(e.headers["proxy-connection"])
            assert.is_nil(e.headers.te)
            assert.is_nil(e.headers.trailer)
            assert.is_nil(e.headers.upgrade)
            assert.is_not.matches("foo", (e.headers.connection or ""):lower())
            assert.are.equal("yes", e.headers["x-keep"])
        end)

        it("uses integration.method when set", function()
            local e = h.curl{ gw:url "/override?z=9" }:echo()
            assert.are.equal("POST", e.method)
            assert.are.equal("/over?z=9", e.target)
        end)
    end)

    describe("responses", function()
        it("passes the backend's status, headers and body through, with apigw-requestid", function()
            local r = h.curl{ gw:url "/status/418" }
            assert.are.equal(418, r.status)
            assert.are.equal('{"status":418}', r.body)
            assert.are.equal("test-upstream", r.headers["x-upstream"])
            assert.is_nil(r.headers["x-amzn-errortype"])
            assert.matches("^%S+$", r.headers["apigw-requestid"] or "")
        end)

        it("passes a backend 404 through instead of making a gateway response", function()
            local r = h.curl{ gw:url "/status/404" }
            assert.are.equal(404, r.status)
            assert.are.equal('{"status":404}', r.body)
            assert.is_nil(r.headers["x-amzn-errortype"])
        end)

        it("streams a large response body intact", function()
            local r = h.curl{ gw:url "/big?bytes=3000000" }
            assert.are.equal(200, r.status)
            assert.are.equal(3000000, #r.body)
            assert.is_nil(r.body:find("[^x]"))
        end)

        it("answers HEAD without a body and keeps the connection usable", function()
            local c = h.connect(gw.port)
            c:send(request("HEAD", "/echo"))
            local r1 = assert(c:read_response{ head = true })
            assert.are.equal(200, r1.status)
            c:send(request("GET", "/after-head"))
            local r2 = assert(c:read_response())
            assert.are.equal(200, r2.status)
            assert.are.equal("/after-head", r2:echo().target)
            c:close()
        end)
    end)

    describe("keep-alive and pipelining", function()
        it("serves two requests on one client connection", function()
            local c = h.connect(gw.port)
            c:send(request("GET", "/one"))
            local r1 = assert(c:read_response())
            c:send(request("GET", "/two"))
            local r2 = assert(c:read_response())
            c:close()
            assert.are.equal(200, r1.status)
            assert.are.equal("/one", r1:echo().target)
            assert.are.equal(200, r2.status)
            assert.are.equal("/two", r2:echo().target)
        end)

        it("lets curl re-use its connection for a second URL", function()
            local out, err, rc = h.curl_raw{ "-v", gw:url "/a", gw:url "/b" }
            assert.are.equal(0, rc)
            assert.matches('"target":"/a"', out)
            assert.matches('"target":"/b"', out)
            assert.matches("Re%-using existing connection", err)
        end)

        it("answers pipelined requests in order", function()
            local c = h.connect(gw.port)
            c:send(request("GET", "/slow?ms=200") .. request("POST", "/pipe/2", nil, "two")
                .. request("GET", "/pipe/3", { "Connection: close" }))
            local r1 = assert(c:read_response())
            local r2 = assert(c:read_response())
            local r3 = assert(c:read_response())
            assert.are.equal("/slow?ms=200", r1:echo().target)
            assert.are.equal("/pipe/2", r2:echo().target)
            assert.are.equal("two", r2:echo().body)
            assert.are.equal("/pipe/3", r3:echo().target)
            assert.is_true(c:closed_by_peer(5))
            c:close()
        end)

        it("keeps pipelined responses in order when a mock follows a slow proxy", function()
            local c = h.connect(gw.port)
            c:send(request("GET", "/slow?ms=300") .. request("GET", "/mockpipe")
                .. request("GET", "/pipe/after-mock"))
            local r1 = assert(c:read_response())
            local r2 = assert(c:read_response())
            local r3 = assert(c:read_response())
            c:close()
            assert.are.equal("/slow?ms=300", r1:echo().target)
            assert.are.equal("from mock", r2.body)
            assert.are.equal("/pipe/after-mock", r3:echo().target)
        end)

        it("closes the connection after a response to Connection: close", function()
            local c = h.connect(gw.port)
            c:send(request("GET", "/bye", { "Connection: close" }))
            local r = assert(c:read_response())
            assert.are.equal(200, r.status)
            assert.is_true(c:closed_by_peer(5))
            c:close()
        end)

        it("reuses the upstream connection across requests on one client connection", function()
            local c = h.connect(gw.port)
            local ids = {}
            for i = 1, 3 do
                c:send(request("GET", "/reuse/" .. i))
                local r = assert(c:read_response())
                assert.are.equal(200, r.status)
                ids[i] = r:echo().connection
            end
            c:close()
            assert.are.equal(ids[1], ids[2])
            assert.are.equal(ids[1], ids[3])
        end)

        it("does not reuse an upstream connection the backend closed", function()
            local c = h.connect(gw.port)
            c:send(request("GET", "/close"))
            local r1 = assert(c:read_response())
            c:send(request("GET", "/after-close"))
            local r2 = assert(c:read_response())
            c:close()
            assert.are.equal(200, r1.status)
            assert.are.equal(200, r2.status)
            assert.are_not.equal(r1:echo().connection, r2:echo().connection)
        end)

        it("serves 60 concurrent clients", function()
            local args = { "--parallel", "--parallel-max", "30", "-w", "%{http_code} %{url_effective}\n" }
            for i = 1, 60 do
                args[#args + 1] = "-o"
                args[#args + 1] = "/dev/null"
                args[#args + 1] = gw:url("/concurrent/" .. i)
            end
            local out = h.curl_raw(args)
            local ok = 0
            for code in out:gmatch("(%d%d%d) http") do
                if code == "200" then ok = ok + 1 end
            end
            assert.are.equal(60, ok, out)
        end)

        it("reuses the upstream connection across client connections", function()
            local ids = {}
            for i = 1, 3 do
                local r = h.curl{ gw:url("/reuse-separate/" .. i) }
                assert.are.equal(200, r.status)
                ids[i] = r:echo().connection
            end
            assert.are.equal(ids[1], ids[2])
            assert.are.equal(ids[1], ids[3])
        end)
    end)

    describe("bodies", function()
        it("delivers a chunked request body to the upstream intact", function()
            local dir = h.tmpdir()
            local payload = h.payload(100000)
            h.write_file(dir .. "/body", payload)
            local r = h.curl{ gw:url "/upload", "-H", "Transfer-Encoding: chunked",
                "--data-binary", "@" .. dir .. "/body" }
            assert.are.equal(200, r.status)
            local e = r:echo()
            assert.are.equal(100000, e.bodyLength)
            assert.are.equal(payload, e.body)
        end)

        it("delivers a chunked request body sent in small raw chunks", function()
            local c = h.connect(gw.port)
            c:send("POST /raw-chunks HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                .. "5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n")
            local r = assert(c:read_response())
            c:close()
            assert.are.equal(200, r.status)
            assert.are.equal("hello world!", r:echo().body)
        end)

        it("delivers a 2 MB Content-Length body intact", function()
            local dir = h.tmpdir()
            local payload = h.payload(2000000)
            h.write_file(dir .. "/body", payload)
            local r = h.curl{ gw:url "/upload", "--data-binary", "@" .. dir .. "/body" }
            assert.are.equal(200, r.status)
            local e = r:echo()
            assert.are.equal(2000000, e.bodyLength)
            assert.are.equal(payload, e.body)
        end)

        it("delivers a chunked response body intact", function()
            local r = h.curl{ gw:url "/chunked" }
            assert.are.equal(200, r.status)
            assert.are.equal("hello chunked world", r.body)
            local c = h.connect(gw.port)
            c:send(request("GET", "/chunked"))
            local raw = assert(c:read_response())
            c:close()
            assert.are.equal("hello chunked world", raw.body)
        end)
    end)

    describe("Expect: 100-continue", function()
        it("answers 100 Continue, then the response, on a raw connection", function()
            local c = h.connect(gw.port)
            c:send("POST /expect HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 11\r\n"
                .. "Expect: 100-continue\r\n\r\n")
            local interim = assert(c:read_response())
            assert.are.equal(100, interim.status)
            c:send("hello world")
            local r = assert(c:read_response())
            c:close()
            assert.are.equal(200, r.status)
            assert.are.equal("hello world", r:echo().body)
        end)

        it("works with curl", function()
            local dir = h.tmpdir()
            local payload = h.payload(20000)
            h.write_file(dir .. "/body", payload)
            local r = h.curl{ gw:url "/expect", "-H", "Expect: 100-continue",
                "--data-binary", "@" .. dir .. "/body" }
            assert.are.equal(200, r.status)
            assert.are.equal(100, r.blocks[1].status)
            assert.are.equal(payload, r:echo().body)
        end)
    end)

    describe("request framing", function()
        it("does not answer a request smuggled behind Content-Length plus Transfer-Encoding", function()
            local raw, err = h.raw_exchange(gw.port,
                "POST /smuggle HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 40\r\n"
                .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .. "GET /smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n", 5)
            assert.is_nil(raw:find('"target":"/smuggled"', 1, true), raw)
            assert.are.equal("closed", err, "the connection stayed open: " .. raw)
        end)

        it("answers 400 to conflicting Content-Length headers", function()
            local raw = h.raw_exchange(gw.port,
                "POST /dup HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n"
                .. "Content-Length: 5\r\n\r\nhello", 5)
            local head = h.parse_heads(raw)[1]
            assert.is_table(head, "no response: " .. raw)
            assert.are.equal(400, head.status)
        end)

        it("skips the unread body of a rejected request before the next one", function()
            local c = h.connect(gw.port)
            local hidden = "GET /hidden HTTP/1.1\r\n\r\n"
            c:send("POST / HTTP/1.1\r\nHost: gw.test\r\nContent-Length: " .. #hidden .. "\r\n\r\n"
                .. hidden .. request("GET", "/visible"))
            local r1 = assert(c:read_response())
            h.assert_not_found(r1)
            if (r1.headers.connection or ""):lower() == "close" then
                -- Closing is a correct answer too, as long as nothing else is sent.
                assert.is_true(c:closed_by_peer(5))
            else
                local r2 = assert(c:read_response())
                assert.are.equal("/visible", r2:echo().target)
            end
            c:close()
        end)
    end)

    describe("clients that go away", function()
        it("do not disturb the gateway when they leave during a proxied request", function()
            local c = h.connect(gw.port)
            c:send(request("GET", "/slow?ms=300"))
            c:close()
            local d = h.connect(gw.port)
            d:send("POST /partial HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100000\r\n\r\n"
                .. h.payload(5000))
            d:close()
            local e = h.connect(gw.port)
            e:send(request("GET", "/big?bytes=2000000"))
            e.sock:receive(1000)
            e:close()
            local r = h.curl{ gw:url "/still-serving" }
            assert.are.equal(200, r.status)
            assert.are.equal("/still-serving", r:echo().target)
        end)
    end)

    describe("HTTP/1.0", function()
        it("serves curl -0", function()
            local r = h.curl{ gw:url "/old?v=1", "-0" }
            assert.are.equal(200, r.status)
            assert.are.equal("/old?v=1", r:echo().target)
        end)

        it("serves a request without Host and closes the connection afterwards", function()
            local c = h.connect(gw.port)
            c:send("GET /old10 HTTP/1.0\r\n\r\n")
            local r = assert(c:read_response())
            assert.are.equal(200, r.status)
            assert.are.equal("/old10", r:echo().target)
            assert.is_true(c:closed_by_peer(5))
            c:close()
        end)

        it("forwards a body sent by an HTTP/1.0 client", function()
            local r = h.curl{ gw:url "/old-post", "-0", "--data-binary", "ten bytes!" }
            assert.are.equal(200, r.status)
            assert.are.equal("ten bytes!", r:echo().body)
        end)
    end)
end)

-- A response body streams at the pace of its slower side. While the client is slow (the
-- gateway has stopped reading the backend because the client has not taken what it has),
-- the backend's timer (timeout_ms) stands still and timeouts.send runs instead; the log
-- blames whichever side stopped. A response queued whole (a Lua handler's) is bounded by
-- timeouts.send too, and the keep-alive idle time starts once the client has taken it.
describe("a slow client and a stalled backend", function()
    local up, gw, log_path
    local PAUSE = 2.5 -- a client's pause: longer than timeout_ms and timeouts.idle, shorter than timeouts.send
    local LUA_BIG = 16000000

    lazy_setup(function()
        up = h.start_upstream()
        local dir = h.tmpdir()
        log_path = dir .. "/access.log"
        h.write_file(dir .. "/big.lua", "return { handle = function() return { statusCode = 200, body = string.rep('y', "
            .. LUA_BIG .. ") } end }\n")
        gw = h.start_gateway({
            workers = 1,
            timeouts = { send = 5, idle = 1 },
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "p" } },
            apis = {
                p = {
                    stages = { ["$default"] = { access_log = { path = log_path,
                        format = '{"id":"$context.requestId","status":"$context.status",'
                            .. '"length":"$context.responseLength",'
                            .. '"integration":"$context.integrationErrorMessage",'
                            .. '"error":"$context.error.message"}' } } },
                    routes = {
                        ["GET /big"] = { integration = { type = "http", uri = up.origin .. "/big", timeout_ms = 1000 } },
                        ["GET /lua-big"] = { integration = { type = "lua", handler = "big.lua" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    -- Sends GET `target` on a new connection and reads the response head; returns the
    -- connection, the status and the headers.
    local function get_head(target, extra)
        local c = h.connect(gw.port, 30)
        assert(c:send("GET " .. target .. " HTTP/1.1\r\nHost: gw.test\r\n" .. (extra or "") .. "\r\n"))
        local status = tonumber(assert(c.sock:receive("*l")):match("^HTTP/1%.1 (%d+)"))
        local headers = {}
        while true do
            local l = assert(c.sock:receive("*l"))
            if l == "" then break end
            local name, value = l:match("^([^:]+):%s*(.-)%s*$")
            headers[name:lower()] = value
        end
        return c, status, headers
    end

    local function log_entry(id)
        local e = h.wait_for(function() return h.find_entry(h.json_log(log_path), "id", id) end, 10)
        return assert(e, "no access-log line for " .. id .. " in:\n" .. (h.read_file(log_path) or ""))
    end

    it("gives a client that pauses longer than timeout_ms its whole download", function()
        local size = 16000000
        local c, status, headers = get_head("/big?bytes=" .. size)
        assert.are.equal(200, status)
        assert.are.equal(tostring(size), headers["content-length"])
        local first = assert(c.sock:receive(65536))
        h.sleep(PAUSE) -- meanwhile the gateway fills the socket buffers and stops reading the backend
        local rest, err, partial = c.sock:receive(size - #first)
        c:close()
        assert.is_not_nil(rest, string.format("%s after %d of %d bytes", tostring(err),
            #first + #(partial or ""), size))
        assert.is_nil((first .. rest):find("[^x]"))
        local e = log_entry(headers["apigw-requestid"])
        assert.are.equal("200", e.status)
        assert.are.equal(tostring(size), e.length)
        assert.are.equal("-", e.integration)
        assert.are.equal("-", e.error)
    end)

    it("closes a client that stops reading for timeouts.send, and names the client", function()
        local size = 32000000
        local c, status, headers = get_head("/big?bytes=" .. size)
        assert.are.equal(200, status)
        local id = headers["apigw-requestid"]
        local got = #assert(c.sock:receive(65536))
        -- the client reads nothing more until the gateway has given up on it
        assert(h.wait_for(function() return gw.stderr():find("request " .. id .. ": ", 1, true) end, 20),
            "no error-log line for " .. id .. ":\n" .. gw.stderr())
        local rest, err, partial = c.sock:receive("*a") -- what the kernel still held, then the end
        c:close()
        got = got + #(rest or partial or "")
        assert.is_true(got < size, err)
        assert.matches("request " .. id .. ": client 127.0.0.1 took none of the response for 5 s (timeouts.send)",
            gw.stderr(), 1, true)
        local e = log_entry(id)
        assert.are.equal("200", e.status)
        assert.are.equal("-", e.integration)
        assert.are.equal("The client stopped reading the response", e.error)
        assert.does_not.match("backend", e.error)
    end)

    it("cuts a response whose backend pauses longer than timeout_ms, and names the backend", function()
        local c, status, headers = get_head("/big?bytes=200000&pause_at=100000&pause_ms=3000")
        assert.are.equal(200, status)
        local data, err, partial = c.sock:receive(200000)
        c:close()
        assert.is_nil(data)
        assert.are.equal("closed", err)
        assert.are.equal(100000, #partial)
        local e = log_entry(headers["apigw-requestid"])
        assert.are.equal("200", e.status)
        assert.are.equal("the backend stopped sending the response body", e.integration)
    end)

    it("does not count a slow download of a queued response as keep-alive idle time", function()
        local c, status, headers = get_head("/lua-big")
        assert.are.equal(200, status)
        assert.are.equal(tostring(LUA_BIG), headers["content-length"])
        local first = assert(c.sock:receive(65536))
        h.sleep(PAUSE)
        local rest, err, partial = c.sock:receive(LUA_BIG - #first)
        assert.is_not_nil(rest, string.format("%s after %d of %d bytes", tostring(err),
            #first + #(partial or ""), LUA_BIG))
        assert.is_nil((first .. rest):find("[^y]"))
        -- the connection is still good for the next request
        assert(c:send("GET /big?bytes=10 HTTP/1.1\r\nHost: gw.test\r\n\r\n"))
        local r = assert(c:read_response())
        c:close()
        assert.are.equal(200, r.status)
        assert.are.equal("xxxxxxxxxx", r.body)
    end)

    it("closes a client that stops taking a queued response for timeouts.send", function()
        local line = "worker 1: client 127.0.0.1 took none of the response for 5 s (timeouts.send)"
        local before = select(2, gw.stderr():gsub(line:gsub("%p", "%%%0"), ""))
        local c, status = get_head("/lua-big", "Connection: close\r\n")
        assert.are.equal(200, status)
        local got = #assert(c.sock:receive(65536))
        assert(h.wait_for(function() return select(2, gw.stderr():gsub(line:gsub("%p", "%%%0"), "")) > before end, 20),
            "no error-log line:\n" .. gw.stderr())
        local rest, err, partial = c.sock:receive("*a")
        c:close()
        got = got + #(rest or partial or "")
        assert.is_true(got < LUA_BIG, err)
    end)
end)
