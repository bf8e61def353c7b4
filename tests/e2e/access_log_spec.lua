-- Access logs (README "Access-log variables", stage access_log): a JSON template
-- checked field by field, a CLF template, lines for rejected requests, and a
-- relative log path resolved against -p.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local JSON_FORMAT = table.concat({
    '{"requestId":"$context.requestId"',
    '"extendedRequestId":"$context.extendedRequestId"',
    '"apiId":"$context.apiId"',
    '"stage":"$context.stage"',
    '"routeKey":"$context.routeKey"',
    '"httpMethod":"$context.httpMethod"',
    '"path":"$context.path"',
    '"protocol":"$context.protocol"',
    '"status":"$context.status"',
    '"responseLength":"$context.responseLength"',
    '"requestTime":"$context.requestTime"',
    '"requestTimeEpoch":$context.requestTimeEpoch',
    '"responseLatency":"$context.responseLatency"',
    '"integrationLatency":"$context.integrationLatency"',
    '"integrationLatency2":"$context.integration.latency"',
    '"integrationStatus":"$context.integrationStatus"',
    '"integrationStatus2":"$context.integration.status"',
    '"integrationStatus3":"$context.integration.integrationStatus"',
    '"integrationErrorMessage":"$context.integrationErrorMessage"',
    '"sourceIp":"$context.identity.sourceIp"',
    '"userAgent":"$context.identity.userAgent"',
    '"domainName":"$context.domainName"',
    '"domainPrefix":"$context.domainPrefix"',
    '"errorMessage":"$context.error.message"',
    '"responseType":"$context.error.responseType"',
    '"tag":"$stageVariables.tag"}',
}, ",")

local CLF_FORMAT = '$context.identity.sourceIp - - [$context.requestTime] '
    .. '"$context.httpMethod $context.routeKey $context.protocol" $context.status '
    .. '$context.responseLength $context.requestId err=$context.error.messageString'

local TIME_PATTERN = "^%d%d/%a%a%a/%d%d%d%d:%d%d:%d%d:%d%d [+-]%d%d%d%d$"

describe("access log", function()
    local dir, R, stop_rc = nil, {}, nil
    local json_log, clf_lines, rel_lines
    local UA = 'e2e "agent"/1.0 \\ tab\tend'

    lazy_setup(function()
        local up = h.start_upstream()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/logs"))
        local ok, err = pcall(function()
            local gw = h.start_gateway({
                workers = 2,
                listen = { { address = "127.0.0.1", port = h.free_port(), api = "logs" } },
                limits = { max_body_size = 100 },
                apis = {
                    logs = {
                        stages = {
                            ["$default"] = {
                                variables = { tag = "T1" },
                                access_log = { path = dir .. "/json.log", format = JSON_FORMAT },
                            },
                            clf = { access_log = { path = dir .. "/clf.log", format = CLF_FORMAT } },
                            rel = { access_log = { path = "logs/rel.log", format = "$context.requestId $context.status" } },
                        },
                        routes = {
                            ["GET /hello"] = { integration = { type = "http", uri = up.origin .. "/hello" } },
                            ["POST /hello"] = { integration = { type = "http", uri = up.origin .. "/hello" } },
                            ["GET /mocked"] = { integration = { type = "mock", body = "m" } },
                        },
                    },
                },
            }, { dir = dir })
            local ok2, err2 = pcall(function()
                R.ok = h.curl{ gw:url "/hello?x=1", "-A", UA, "-H", "Host: GW.example.test:8080" }
                R.not_found = h.curl{ gw:url "/nope", "-H", "Host: gw.example.test" }
                local c = h.connect(gw.port)
                c:send("POST /hello HTTP/1.1\r\nHost: gw.example.test\r\nContent-Length: 200\r\n\r\n")
                R.too_large = assert(c:read_response())
                c:close()
                R.http10 = h.curl{ gw:url "/hello", "-0", "-H", "Host: gw.example.test" }
                R.raw_path = h.curl{ gw:url "//hello/", "--path-as-is", "-H", "Host: gw.example.test" }
                R.mock = h.curl{ gw:url "/mocked", "-H", "Host: gw.example.test" }
                R.clf_ok = h.curl{ gw:url "/clf/hello" }
                R.clf_404 = h.curl{ gw:url "/clf/nope" }
                R.rel = h.curl{ gw:url "/rel/mocked" }
                local g = h.connect(gw.port)
                g:send("GARBAGE\r\n\r\n")
                R.garbage = assert(g:read_response())
                g:close()
                local big = h.connect(gw.port)
                big:send("GET /hello HTTP/1.1\r\nHost: gw.example.test\r\nX-Big: "
                    .. string.rep("b", 11000) .. "\r\n\r\n")
                R.head_too_large = assert(big:read_response())
                big:close()
                -- 40 proxied requests on one connection: their latencies side by side
                R.latency = {}
                local k = h.connect(gw.port)
                for i = 1, 40 do
                    k:send("GET /hello HTTP/1.1\r\nHost: gw.example.test\r\n\r\n")
                    R.latency[i] = assert(k:read_response())
                end
                k:close()
            end)
            stop_rc = gw:stop()
            R.stderr = gw.stderr()
            assert(ok2, err2)
        end)
        up:stop()
        assert(ok, err)
        json_log = h.json_log(dir .. "/json.log")
        clf_lines = h.log_lines(dir .. "/clf.log")
        rel_lines = h.log_lines(dir .. "/logs/rel.log")
    end)

    local function entry_for(r)
        local id = r.headers["apigw-requestid"]
        assert.is_string(id, "response has no apigw-requestid")
        local e = h.find_entry(json_log, "requestId", id)
        assert.is_table(e, "no JSON access-log line for request " .. id)
        return e
    end

    local function clf_line_for(r)
        local id = r.headers["apigw-requestid"]
        assert.is_string(id, "response has no apigw-requestid")
        for _, l in ipairs(clf_lines) do
            if l:find(" " .. id .. " err=", 1, true) then return l end
        end
        error("no CLF access-log line for request " .. id .. " in:\n" .. table.concat(clf_lines, "\n"))
    end

    it("writes one valid JSON line per request to the stage's log", function()
        for _, e in ipairs(json_log) do
            assert.is_nil(e._error, e._raw)
        end
        -- ok, not_found, too_large, http10, raw_path, mock, garbage, head_too_large, 40 latency
        assert.are.equal(48, #json_log)
    end)

    it("records the request id that the client saw in apigw-requestid", function()
        local e = entry_for(R.ok)
        assert.are.equal(e.requestId, e.extendedRequestId)
    end)

    it("records the request line fields", function()
        local e = entry_for(R.ok)
        assert.are.equal("GET", e.httpMethod)
        assert.are.equal("/hello", e.path)
        assert.are.equal("HTTP/1.1", e.protocol)
        assert.are.equal("GET /hello", e.routeKey)
        assert.are.equal("$default", e.stage)
        assert.are.equal("logs", e.apiId)
    end)

    it("records the response", function()
        local e = entry_for(R.ok)
        assert.are.equal(200, R.ok.status)
        assert.are.equal("200", e.status)
        assert.are.equal(tostring(#R.ok.body), e.responseLength)
        assert.are.equal("200", e.integrationStatus)
        assert.are.equal("200", e.integrationStatus2)
        assert.are.equal("200", e.integrationStatus3)
        assert.are.equal("-", e.integrationErrorMessage)
        assert.are.equal("-", e.responseType)
        assert.are.equal("-", e.errorMessage)
    end)

    it("records times and latencies as numbers", function()
        local e = entry_for(R.ok)
        assert.matches(TIME_PATTERN, e.requestTime)
        assert.is_number(e.requestTimeEpoch)
        assert.is_true(math.abs(e.requestTimeEpoch - os.time()) < 3600, "epoch " .. e.requestTimeEpoch)
        assert.matches("^%d+$", e.responseLatency)
        assert.matches("^%d+$", e.integrationLatency)
        assert.are.equal(e.integrationLatency, e.integrationLatency2)
    end)

    it("records an integration latency within the response latency, request after request", function()
        for i, r in ipairs(R.latency) do
            assert.are.equal(200, r.status)
            local e = entry_for(r)
            local integ, resp = tonumber(e.integrationLatency), tonumber(e.responseLatency)
            assert.is_true(integ <= resp, string.format("request %d: integrationLatency %d > responseLatency %d",
                i, integ, resp))
        end
    end)

    it("records the client identity, JSON-escaped", function()
        local e = entry_for(R.ok)
        assert.are.equal("127.0.0.1", e.sourceIp)
        assert.are.equal(UA, e.userAgent)
    end)

    it("records the domain name without port, and its first label", function()
        local e = entry_for(R.ok)
        assert.are.equal("gw.example.test", e.domainName:lower())
        assert.are.equal("gw", e.domainPrefix:lower())
    end)

    it("renders stage variables", function()
        assert.are.equal("T1", entry_for(R.ok).tag)
    end)

    it("records a 404 with the error fields and no route key", function()
        h.assert_not_found(R.not_found)
        local e = entry_for(R.not_found)
        assert.are.equal("404", e.status)
        assert.are.equal("-", e.routeKey)
        assert.are.equal("RESOURCE_NOT_FOUND", e.responseType)
        assert.are.equal("Not Found", e.errorMessage)
        assert.are.equal(tostring(#R.not_found.body), e.responseLength)
        assert.are.equal("-", e.integrationStatus)
    end)

    it("records a request rejected with 413", function()
        h.assert_gateway_response(R.too_large, 413, "Request Too Long", "RequestTooLargeException")
        local e = entry_for(R.too_large)
        assert.are.equal("413", e.status)
        assert.are.equal("POST", e.httpMethod)
        assert.are.equal("REQUEST_TOO_LARGE", e.responseType)
        assert.are.equal("Request Too Long", e.errorMessage)
    end)

    it("records HTTP/1.0", function()
        assert.are.equal(200, R.http10.status)
        assert.are.equal("HTTP/1.0", entry_for(R.http10).protocol)
    end)

    it("records the path as received", function()
        assert.are.equal(200, R.raw_path.status)
        local e = entry_for(R.raw_path)
        assert.are.equal("//hello/", e.path)
        assert.are.equal("GET /hello", e.routeKey)
    end)

    it("records a mock integration", function()
        assert.are.equal("m", R.mock.body)
        local e = entry_for(R.mock)
        assert.are.equal("200", e.status)
        assert.are.equal("GET /mocked", e.routeKey)
        assert.are.equal("1", e.responseLength)
    end)

    it("writes a CLF line", function()
        assert.are.equal(200, R.clf_ok.status)
        local l = clf_line_for(R.clf_ok)
        local t, len, id = l:match('^127%.0%.0%.1 %- %- %[([^%]]+)%] "GET GET /hello HTTP/1%.1" 200 (%d+) (%S+) err=%-$')
        assert.is_string(t, "line: " .. l)
        assert.matches(TIME_PATTERN, t)
        assert.are.equal(tostring(#R.clf_ok.body), len)
        assert.are.equal(R.clf_ok.headers["apigw-requestid"], id)
    end)

    it("writes a CLF line for a 404 with the quoted error message", function()
        h.assert_not_found(R.clf_404)
        local l = clf_line_for(R.clf_404)
        assert.matches('^127%.0%.0%.1 %- %- %[[^%]]+%] "GET %- HTTP/1%.1" 404 23 %S+ err="Not Found"$', l)
    end)

    it("writes each stage's lines to its own file only", function()
        assert.are.equal(2, #clf_lines)
        for _, e in ipairs(json_log) do
            assert.are_not.equal(R.clf_ok.headers["apigw-requestid"], e.requestId)
        end
    end)

    it("resolves a relative log path against -p", function()
        assert.are.equal(200, R.rel.status)
        assert.are.same({ R.rel.headers["apigw-requestid"] .. " 200" }, rel_lines)
    end)

    it("flushes the logs and exits 0 on SIGTERM", function()
        assert.are.equal(0, stop_rc, R.stderr)
    end)

    it("records requests rejected before their stage was known in the API's $default stage", function()
        assert.equal(400, R.garbage.status)
        assert.equal(431, R.head_too_large.status)
        local e = entry_for(R.garbage)
        assert.equal("400", e.status)
        assert.equal("BAD_REQUEST", e.responseType)
        -- the request never reached a stage: the line says so rather than borrow one
        assert.equal("-", e.stage)
        assert.equal("-", e.tag)
        e = entry_for(R.head_too_large)
        assert.equal("431", e.status)
        assert.equal("REQUEST_HEADERS_TOO_LARGE", e.responseType)
    end)
end)
