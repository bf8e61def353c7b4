-- Request limits and client timeouts (README "limits", "timeouts", "Gateway
-- responses"): 431, 413, 400 for malformed requests, 408 for slow heads, and a
-- slow client does not stop others from being served.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

describe("limits", function()
    local up, gw

    lazy_setup(function()
        up = h.start_upstream()
        gw = h.start_gateway({
            -- One worker, so a stuck slow client would block everything.
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "l" } },
            limits = { max_body_size = 1000 },
            timeouts = { header = 1, idle = 1 },
            apis = {
                l = {
                    stages = { ["$default"] = {} },
                    routes = {
                        ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy+}" } },
                        ["GET /mock"] = { integration = { type = "mock", body = "mocked" } },
                    },
                },
            },
        })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    -- The first response head and the body after it, from raw bytes.
    local function parse(raw)
        return { head = h.parse_heads(raw)[1], body = raw:match("\r\n\r\n(.*)$") }
    end

    describe("head size", function()
        it("accepts a head below max_header_size", function()
            local r = h.curl{ gw:url "/echo", "-H", "X-Pad: " .. string.rep("a", 8000) }
            assert.are.equal(200, r.status)
            assert.are.equal(8000, #r:echo().headers["x-pad"])
        end)

        it("answers 431 to a head above max_header_size", function()
            local r = h.curl{ gw:url "/echo", "-H", "X-Pad: " .. string.rep("a", 11000) }
            h.assert_gateway_response(r, 431, "Request Header Fields Too Large",
                "RequestHeaderFieldsTooLargeException")
        end)

        it("counts the request line towards the limit", function()
            local r = h.curl{ gw:url("/echo?q=" .. string.rep("q", 11000)) }
            h.assert_gateway_response(r, 431, "Request Header Fields Too Large",
                "RequestHeaderFieldsTooLargeException")
        end)

        it("counts many small headers towards the limit", function()
            local args = { gw:url "/echo" }
            for i = 1, 200 do
                args[#args + 1] = "-H"
                args[#args + 1] = string.format("X-H%03d: %s", i, string.rep("b", 60))
            end
            h.assert_gateway_response(h.curl(args), 431, "Request Header Fields Too Large",
                "RequestHeaderFieldsTooLargeException")
        end)
    end)

    describe("body size", function()
        it("accepts a body of exactly max_body_size", function()
            local r = h.curl{ gw:url "/upload", "--data-binary", h.payload(1000) }
            assert.are.equal(200, r.status)
            assert.are.equal(1000, r:echo().bodyLength)
        end)

        it("answers 413 to a Content-Length above max_body_size before the body arrives", function()
            local c = h.connect(gw.port)
            c:send("POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2000\r\n\r\n")
            local r = assert(c:read_response())
            c:close()
            h.assert_gateway_response(r, 413, "Request Too Long", "RequestTooLargeException")
        end)

        it("answers 413 with curl sending the body", function()
            local r = h.curl{ gw:url "/upload", "--data-binary", h.payload(2000) }
            h.assert_gateway_response(r, 413, "Request Too Long", "RequestTooLargeException")
        end)

        it("answers 413 to a chunked body that grows above max_body_size", function()
            local c = h.connect(gw.port)
            local chunk = h.payload(500)
            c:send("POST /upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                .. string.format("%x\r\n%s\r\n", #chunk, chunk):rep(3) .. "0\r\n\r\n")
            local r = assert(c:read_response())
            c:close()
            h.assert_gateway_response(r, 413, "Request Too Long", "RequestTooLargeException")
        end)

        it("answers 413 instead of 100 Continue when the body is too large", function()
            local c = h.connect(gw.port)
            c:send("POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2000\r\n"
                .. "Expect: 100-continue\r\n\r\n")
            local r = assert(c:read_response())
            c:close()
            h.assert_gateway_response(r, 413, "Request Too Long", "RequestTooLargeException")
        end)
    end)

    describe("Expect: 100-continue", function()
        it("is not answered with 100 when no route matches", function()
            local c = h.connect(gw.port)
            c:send("POST / HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n"
                .. "Expect: 100-continue\r\n\r\n")
            local r = assert(c:read_response())
            c:close()
            h.assert_not_found(r)
        end)
    end)

    describe("malformed requests", function()
        it("answer 400 to a garbage request line and close the connection", function()
            local raw, err = h.raw_exchange(gw.port, "GARBAGE\r\n\r\n")
            assert.are.equal("closed", err)
            local r = parse(raw)
            assert.is_not_nil(r.head, "no response: " .. raw)
            assert.are.equal(400, r.head.status)
            assert.are.equal("BadRequestException", r.head.headers["x-amzn-errortype"])
            assert.are.equal('{"message":"Bad Request"}', r.body)
        end)

        it("answer 400 to a header line without a colon and close the connection", function()
            local raw, err = h.raw_exchange(gw.port, "GET /mock HTTP/1.1\r\nHost: gw.test\r\nno colon here\r\n\r\n")
            assert.are.equal("closed", err)
            local r = parse(raw)
            assert.is_not_nil(r.head, "no response: " .. raw)
            assert.are.equal(400, r.head.status)
            assert.are.equal('{"message":"Bad Request"}', r.body)
        end)

        it("answer 400 to an invalid Content-Length", function()
            local raw = h.raw_exchange(gw.port, "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: abc\r\n\r\n")
            local r = parse(raw)
            assert.is_not_nil(r.head, "no response: " .. raw)
            assert.are.equal(400, r.head.status)
        end)

        it("leave the gateway serving others", function()
            local r = h.curl{ gw:url "/mock" }
            assert.are.equal(200, r.status)
            assert.are.equal("mocked", r.body)
        end)
    end)

    describe("timeouts", function()
        it("answer 408 to a slow head and close, while another client is served", function()
            local slow = h.connect(gw.port)
            slow:send("GET /mock HTTP/1.1\r\nHost: gw.test\r\nX-Slow: ")
            -- The single worker still serves a normal client meanwhile.
            local r = h.curl{ gw:url "/mock" }
            assert.are.equal(200, r.status)
            assert.are.equal("mocked", r.body)
            local t = assert(slow:read_response())
            h.assert_gateway_response(t, 408, "Request Timeout", "RequestTimeoutException")
            assert.is_true(slow:closed_by_peer(5))
            slow:close()
        end)

        it("close an idle keep-alive connection without a response", function()
            local c = h.connect(gw.port)
            c:send("GET /mock HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            local r = assert(c:read_response())
            assert.are.equal(200, r.status)
            local closed, why = c:closed_by_peer(8)
            c:close()
            assert.is_true(closed, why)
        end)
    end)
end)
