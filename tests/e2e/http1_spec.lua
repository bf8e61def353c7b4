-- HTTP/1 request parsing (README "HTTP"): a request whose framing, header names, Host
-- or version is ambiguous is answered 400 and reaches nobody. The backend logs every
-- byte it receives, so each test can assert that nothing of the request got there, not
-- even a part of it.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

describe("HTTP/1 parsing", function()
    local up, gw, dir

    lazy_setup(function()
        up = h.start_upstream(nil, { raw_log = true })
        dir = h.tmpdir()
        gw = h.start_gateway({
            -- One worker: every client connection lands on the same (warm) upstream pool.
            workers = 1,
            timeouts = { body = 1 },
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "p" } },
            apis = {
                p = {
                    stages = {
                        ["$default"] = {
                            access_log = {
                                path = dir .. "/access.log",
                                format = '{"id":"$context.requestId","status":"$context.status",'
                                    .. '"type":"$context.error.responseType",'
                                    .. '"message":"$context.error.message"}',
                            },
                        },
                    },
                    routes = {
                        ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy+}" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    -- A request through the gateway on its own connection, answered 200 by the backend:
    -- it leaves an idle connection in the upstream pool, and once it is answered, the
    -- backend has logged everything the gateway sent it before.
    local function through(path)
        local c = h.connect(gw.port)
        c:send("GET " .. path .. " HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        local r = assert(c:read_response())
        c:close()
        assert.are.equal(200, r.status)
        assert.are.equal(path, r:echo().target)
    end

    -- What the backend has received so far, after a request that went through.
    local seq = 0
    local function received()
        seq = seq + 1
        through("/sentinel-" .. seq)
        return up.received()
    end

    -- Sends raw bytes on a new connection; returns the response, the body and whether
    -- the gateway closed the connection after it.
    local function exchange(data)
        local raw, err = h.raw_exchange(gw.port, data, 10)
        local head = h.parse_heads(raw)[1]
        assert.is_table(head, "no response to: " .. data .. "\ngot: " .. raw)
        return head, raw:match("\r\n\r\n(.*)$"), err == "closed"
    end

    -- The access-log line of the response with this head.
    local function log_entry(head)
        local id = head.headers["apigw-requestid"]
        local e = h.wait_for(function()
            return h.find_entry(h.json_log(dir .. "/access.log"), "id", id)
        end, 5)
        assert.is_table(e, "no access-log line for " .. tostring(id))
        return e
    end

    -- data (a request naming `marker`) is answered 400 BAD_REQUEST with the type's
    -- body, the connection is closed, the log says why, and the backend never saw it.
    local function assert_refused(data, marker, why)
        through("/warm") -- a warm pool: a forwarded request would be written at once
        local head, body, closed = exchange(data)
        assert.are.equal(400, head.status)
        assert.are.equal('{"message":"Bad Request"}', body)
        assert.are.equal("BadRequestException", head.headers["x-amzn-errortype"])
        assert.is_true(closed, "the connection stayed open")
        local e = log_entry(head)
        assert.are.equal("BAD_REQUEST", e.type)
        if why then assert.are.equal(why, e.message) end
        local got = received()
        assert.is_nil(got:find(marker, 1, true), "the backend received:\n" .. got)
    end

    describe("Transfer-Encoding", function()
        it("refuses an unknown coding without forwarding any of it, with a warm pool, 40 times", function()
            for i = 1, 40 do
                through("/warm-" .. i)
                local head, body, closed = exchange("POST /xchunked-" .. i .. " HTTP/1.1\r\nHost: gw.test\r\n"
                    .. "Transfer-Encoding: xchunked\r\n\r\n")
                assert.are.equal(400, head.status)
                assert.are.equal('{"message":"Bad Request"}', body)
                assert.is_true(closed)
            end
            local got = received()
            assert.is_nil(got:find("xchunked", 1, true), "the backend received:\n" .. got)
        end)

        it("refuses codings other than chunked before chunked", function()
            assert_refused("POST /gzip-chunked HTTP/1.1\r\nHost: gw.test\r\n"
                .. "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "/gzip-chunked",
                "Unsupported Transfer-Encoding")
        end)

        it("refuses chunked in two Transfer-Encoding lines", function()
            assert_refused("POST /te-twice HTTP/1.1\r\nHost: gw.test\r\n"
                .. "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "/te-twice")
        end)

        it("still forwards a chunked body", function()
            local head, body = exchange("POST /chunked-ok HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n"
                .. "Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            assert.are.equal(200, head.status)
            assert.are.equal("hello", h.json_decode(body).body)
        end)
    end)

    describe("header names", function()
        it("refuses a name with a space", function()
            assert_refused("POST /space-name HTTP/1.1\r\nHost: gw.test\r\nTransfer Encoding: chunked\r\n\r\n",
                "/space-name", "Invalid header name")
        end)

        it("refuses whitespace between a name and its colon", function()
            assert_refused("GET /space-colon HTTP/1.1\r\nHost: gw.test\r\nX-A : b\r\n\r\n", "/space-colon")
        end)

        it("refuses a name with a character that is not a token character", function()
            assert_refused("GET /bad-char HTTP/1.1\r\nHost: gw.test\r\nX(A): b\r\n\r\n", "/bad-char")
        end)
    end)

    describe("Host", function()
        it("refuses an HTTP/1.1 request without Host", function()
            assert_refused("GET /no-host HTTP/1.1\r\n\r\n", "/no-host", "Missing Host header")
        end)

        it("refuses an absolute-form HTTP/1.1 request without Host", function()
            assert_refused("GET http://gw.test/abs-no-host HTTP/1.1\r\n\r\n", "/abs-no-host")
        end)

        it("refuses two Host headers", function()
            assert_refused("GET /two-hosts HTTP/1.1\r\nHost: gw.test\r\nHost: other.test\r\n\r\n",
                "/two-hosts", "Multiple Host headers")
        end)

        it("refuses two Host headers in HTTP/1.0 too", function()
            assert_refused("GET /two-hosts-10 HTTP/1.0\r\nHost: gw.test\r\nhost: gw.test\r\n\r\n", "/two-hosts-10")
        end)

        it("serves HTTP/1.0 without Host", function()
            local head, body = exchange("GET /no-host-10 HTTP/1.0\r\n\r\n")
            assert.are.equal(200, head.status)
            assert.are.equal("/no-host-10", h.json_decode(body).target)
        end)

        it("serves an HTTP/1.1 request with an empty Host", function()
            local head, body = exchange("GET /empty-host HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")
            assert.are.equal(200, head.status)
            assert.are.equal("/empty-host", h.json_decode(body).target)
        end)

        it("serves an absolute-form request with Host", function()
            local head, body = exchange("GET http://gw.test/abs-ok HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
            assert.are.equal(200, head.status)
            assert.are.equal("/abs-ok", h.json_decode(body).target)
        end)
    end)

    describe("gateway response bodies", function()
        -- The body says the type's message (API Gateway's default body); the reason is
        -- $context.error.message, in the access log.
        it("say Bad Request for %00 and a broken escape, the log says why", function()
            local c = h.connect(gw.port)
            for _, path in ipairs({ "/path-nul/%00", "/path-escape/%zz" }) do
                c:send("GET " .. path .. " HTTP/1.1\r\nHost: gw.test\r\n\r\n")
                local r = assert(c:read_response())
                h.assert_gateway_response(r, 400, "Bad Request", "BadRequestException")
                local e = log_entry(r)
                assert.are.equal("BAD_REQUEST", e.type)
                assert.are.equal("Invalid request path", e.message)
            end
            c:close()
        end)

        it("say Request Timeout for a stalled body, the log says why", function()
            local c = h.connect(gw.port)
            c:send("PUT /stalled HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\nabc")
            local r = assert(c:read_response())
            c:close()
            h.assert_gateway_response(r, 408, "Request Timeout", "RequestTimeoutException")
            local e = log_entry(r)
            assert.are.equal("REQUEST_TIMEOUT", e.type)
            assert.are.equal("Request body timed out", e.message)
        end)
    end)

    describe("versions", function()
        it("refuses an HTTP/0.9 request line", function()
            assert_refused("GET /http09\r\n\r\n", "/http09", "Unsupported HTTP version")
        end)

        it("refuses HTTP/2.0 in an HTTP/1 request line", function()
            assert_refused("GET /http20 HTTP/2.0\r\nHost: gw.test\r\n\r\n", "/http20", "Unsupported HTTP version")
        end)

        it("keeps serving pipelined keep-alive requests", function()
            local c = h.connect(gw.port)
            c:send("GET /pipe-1 HTTP/1.1\r\nHost: gw.test\r\n\r\n"
                .. "POST /pipe-2 HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .. "GET /pipe-3 HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            for i = 1, 3 do
                local r = assert(c:read_response())
                assert.are.equal(200, r.status)
                assert.are.equal("/pipe-" .. i, r:echo().target)
            end
            c:close()
        end)
    end)
end)
