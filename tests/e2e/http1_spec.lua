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
end)
