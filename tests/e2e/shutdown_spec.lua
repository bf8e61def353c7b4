-- Graceful shutdown (README "Signals"): on SIGTERM the in-flight request still
-- completes, idle keep-alive connections close, the access log is flushed and the
-- process exits 0.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

describe("graceful shutdown", function()
    local R = {}

    lazy_setup(function()
        local up = h.start_upstream()
        local dir = h.tmpdir()
        local ok, err = pcall(function()
            local gw = h.start_gateway({
                workers = 2,
                listen = { { address = "127.0.0.1", port = h.free_port(), api = "s" } },
                apis = {
                    s = {
                        stages = {
                            ["$default"] = {
                                access_log = {
                                    path = dir .. "/access.log",
                                    format = '{"requestId":"$context.requestId","status":"$context.status","path":"$context.path"}',
                                },
                            },
                        },
                        routes = {
                            ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy+}" } },
                            ["GET /first"] = { integration = { type = "mock", body = "first" } },
                        },
                    },
                },
            }, { dir = dir })

            -- An idle keep-alive connection that has finished one request.
            local idle = h.connect(gw.port)
            idle:send("GET /first HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            R.idle_first = idle:read_response()

            local slow = h.curl_background{ gw:url "/slow?ms=1500" }
            -- Signal once the gateway is proxying the request (it then holds the only
            -- connection to the upstream).
            R.in_flight = h.wait_for(function() return h.connections_to(up.port) > 0 end, 10)
            gw:signal("TERM")
            R.idle_closed, R.idle_why = idle:closed_by_peer(10)
            idle:close()
            R.slow = slow.result()
            R.rc = gw:wait()
            if R.rc == nil then R.rc = gw:stop(2) end
            R.stderr = gw.stderr()
            R.log = h.json_log(dir .. "/access.log")
        end)
        up:stop()
        assert(ok, err)
    end)

    it("lets the in-flight request finish", function()
        assert.is_true(R.in_flight, "the request never reached the upstream")
        assert.are.equal(0, R.slow.rc, R.slow.stderr)
        assert.are.equal(200, R.slow.status)
        assert.are.equal("/slow?ms=1500", R.slow:echo().target)
    end)

    it("closes idle keep-alive connections", function()
        assert.are.equal(200, R.idle_first.status)
        assert.is_true(R.idle_closed, R.idle_why)
    end)

    it("exits 0", function()
        assert.are.equal(0, R.rc, R.stderr)
    end)

    it("flushes the access log, including the in-flight request", function()
        local e = h.find_entry(R.log, "requestId", R.slow.headers["apigw-requestid"])
        assert.is_table(e, "no access-log line for the in-flight request")
        assert.are.equal("200", e.status)
        assert.are.equal("/slow", e.path)
        assert.is_table(h.find_entry(R.log, "requestId", R.idle_first.headers["apigw-requestid"]))
    end)
end)
