-- Integration failures (502 / 504), mock integrations and customized gateway
-- responses (README "HTTP proxy integrations", "Gateway responses").
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

describe("integration errors", function()
    -- Every request runs once here; the gateway is then stopped so its access log
    -- is complete, and the tests below check what was recorded.
    local R, log, stop_rc = {}, {}, nil

    lazy_setup(function()
        local up = h.start_upstream()
        local dead = h.free_port()
        local dir = h.tmpdir()
        local ok, err = pcall(function()
            local gw = h.start_gateway({
                workers = 2,
                listen = { { address = "127.0.0.1", port = h.free_port(), api = "e" } },
                apis = {
                    e = {
                        stages = {
                            ["$default"] = {
                                access_log = {
                                    path = dir .. "/access.log",
                                    format = '{"requestId":"$context.requestId","status":"$context.status",'
                                        .. '"integrationErrorMessage":"$context.integrationErrorMessage",'
                                        .. '"integrationError":"$context.integration.error",'
                                        .. '"responseType":"$context.error.responseType",'
                                        .. '"integrationStatus":"$context.integrationStatus",'
                                        .. '"path":"$context.path"}',
                                },
                            },
                        },
                        routes = {
                            ["GET /down"] = { integration = { type = "http", uri = "http://127.0.0.1:" .. dead .. "/x" } },
                            ["GET /t"] = { integration = { type = "http", uri = up.origin .. "/slow", timeout_ms = 300 } },
                            ["GET /reset"] = { integration = { type = "http", uri = up.origin .. "/reset" } },
                            ["GET /ok"] = { integration = { type = "http", uri = up.origin .. "/ok" } },
                        },
                    },
                },
            }, { dir = dir })
            local ok2, err2 = pcall(function()
                R.down = h.curl{ gw:url "/down" }
                R.timeout = h.curl{ gw:url "/t?ms=2000" }
                R.after_timeout = h.curl{ gw:url "/t?ms=0" }
                R.reset = h.curl{ gw:url "/reset" }
                R.ok = h.curl{ gw:url "/ok" }
            end)
            stop_rc = gw:stop()
            R.stderr = gw.stderr()
            assert(ok2, err2)
            log = h.json_log(dir .. "/access.log")
        end)
        up:stop()
        assert(ok, err)
    end)

    local function entry_for(r)
        local id = r.headers["apigw-requestid"]
        assert.is_string(id, "response has no apigw-requestid")
        local e = h.find_entry(log, "requestId", id)
        assert.is_table(e, "no access-log line for request " .. id)
        return e
    end

    it("answers 502 when nothing listens on the upstream port", function()
        h.assert_gateway_response(R.down, 502, "Bad Gateway", "BadGatewayException")
    end)

    it("answers 504 when the upstream does not answer within timeout_ms", function()
        h.assert_gateway_response(R.timeout, 504, "Endpoint request timed out", "GatewayTimeoutException")
    end)

    it("serves the same route again after a timeout", function()
        assert.are.equal(200, R.after_timeout.status)
        assert.are.equal("/slow?ms=0", R.after_timeout:echo().target)
    end)

    it("answers 502 when the upstream resets the connection", function()
        h.assert_gateway_response(R.reset, 502, "Bad Gateway", "BadGatewayException")
    end)

    it("logs why the integration failed", function()
        for _, name in ipairs{ "down", "timeout", "reset" } do
            local e = entry_for(R[name])
            assert.are_not.equal("-", e.integrationErrorMessage, name)
            assert.are_not.equal("", e.integrationErrorMessage, name)
            assert.are.equal(e.integrationErrorMessage, e.integrationError, name)
        end
        assert.are.equal("INTEGRATION_FAILURE", entry_for(R.down).responseType)
        assert.are.equal("INTEGRATION_TIMEOUT", entry_for(R.timeout).responseType)
        assert.are.equal("INTEGRATION_FAILURE", entry_for(R.reset).responseType)
        assert.are.equal("502", entry_for(R.down).status)
        assert.are.equal("504", entry_for(R.timeout).status)
    end)

    it("logs a successful integration without an error", function()
        assert.are.equal(200, R.ok.status)
        local e = entry_for(R.ok)
        assert.are.equal("200", e.status)
        assert.are.equal("200", e.integrationStatus)
        assert.are.equal("-", e.integrationErrorMessage)
        assert.are.equal("-", e.responseType)
    end)

    it("exits 0 on SIGTERM", function()
        assert.are.equal(0, stop_rc, R.stderr)
    end)
end)

describe("mock integrations and gateway responses", function()
    local gw, P1, P2

    lazy_setup(function()
        local dead = h.free_port()
        P1, P2 = h.free_port(), h.free_port()
        gw = h.start_gateway({
            workers = 2,
            listen = {
                { address = "127.0.0.1", port = P1, api = "m" },
                { address = "127.0.0.1", port = P2, api = "plain" },
            },
            limits = { max_body_size = 100 },
            apis = {
                m = {
                    stages = { ["$default"] = { variables = { tag = "sv-value" } } },
                    routes = {
                        ["GET /mock"] = { integration = {
                            type = "mock", status = 201, body = "mocked body",
                            headers = { ["x-mock"] = "yes", ["content-type"] = "text/plain" },
                        } },
                        ["GET /empty"] = { integration = { type = "mock" } },
                        ["GET /down"] = { integration = { type = "http", uri = "http://127.0.0.1:" .. dead .. "/" } },
                        ["POST /post"] = { integration = { type = "mock", body = "posted" } },
                    },
                    gateway_responses = {
                        RESOURCE_NOT_FOUND = {
                            status = 410,
                            headers = { ["x-custom"] = "literal", ["x-echo"] = "$request.header.x-in" },
                            body = '{"id":"$context.requestId","sv":"$stageVariables.tag",'
                                .. '"msg":$context.error.messageString,"type":"$context.error.responseType"}',
                        },
                        DEFAULT_5XX = { headers = { ["x-five"] = "yes" } },
                        DEFAULT_4XX = { body = '{"oops":$context.error.messageString}' },
                    },
                },
                plain = {
                    stages = { ["$default"] = {} },
                    routes = { ["GET /mock"] = { integration = { type = "mock", body = "plain" } } },
                },
            },
        })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("a mock integration answers with its status, headers and body", function()
        local r = h.curl{ gw:url("/mock", P1) }
        assert.are.equal(201, r.status)
        assert.are.equal("mocked body", r.body)
        assert.are.equal("yes", r.headers["x-mock"])
        assert.are.equal("text/plain", r.headers["content-type"])
        assert.matches("^%S+$", r.headers["apigw-requestid"] or "")
    end)

    it("a mock integration without settings answers 200 with an empty body", function()
        local r = h.curl{ gw:url("/empty", P1) }
        assert.are.equal(200, r.status)
        assert.are.equal("", r.body)
    end)

    it("a mock integration reads and ignores a request body", function()
        local c = h.connect(P1)
        c:send("POST /post HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n\r\nhello"
            .. "GET /mock HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        local r1 = assert(c:read_response())
        local r2 = assert(c:read_response())
        c:close()
        assert.are.equal("posted", r1.body)
        assert.are.equal("mocked body", r2.body)
    end)

    it("a customized type uses its status, literal and copied headers, and body template", function()
        local r = h.curl{ gw:url("/nope", P1), "-H", "X-In: hello" }
        assert.are.equal(410, r.status)
        assert.are.equal("literal", r.headers["x-custom"])
        assert.are.equal("hello", r.headers["x-echo"])
        assert.are.equal("NotFoundException", r.headers["x-amzn-errortype"])
        local b = r:json()
        assert.are.equal(r.headers["apigw-requestid"], b.id)
        assert.are.equal("sv-value", b.sv)
        assert.are.equal("Not Found", b.msg)
        assert.are.equal("RESOURCE_NOT_FOUND", b.type)
    end)

    it("a 5xx type without its own customization falls back to DEFAULT_5XX", function()
        local r = h.curl{ gw:url("/down", P1) }
        assert.are.equal(502, r.status)
        assert.are.equal("yes", r.headers["x-five"])
        assert.are.equal('{"message":"Bad Gateway"}', r.body)
        assert.are.equal("BadGatewayException", r.headers["x-amzn-errortype"])
    end)

    it("a 4xx type without its own customization falls back to DEFAULT_4XX", function()
        local r = h.curl{ gw:url("/post", P1), "--data-binary", h.payload(200) }
        assert.are.equal(413, r.status)
        assert.are.equal('{"oops":"Request Too Long"}', r.body)
        assert.are.equal("RequestTooLargeException", r.headers["x-amzn-errortype"])
        assert.is_nil(r.headers["x-five"])
    end)

    it("customizations belong to their API only", function()
        h.assert_not_found(h.curl{ gw:url("/nope", P2), "-H", "X-In: hello" })
        local r = h.curl{ gw:url("/mock", P2) }
        assert.are.equal(200, r.status)
        assert.are.equal("plain", r.body)
    end)
end)
