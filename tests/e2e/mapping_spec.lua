-- Non-proxy HTTP integrations (proxy = false): request parameter mapping onto the
-- backend request, integration responses selected by the backend status, response
-- header mapping and Lua body transforms, checked byte for byte on both sides
-- (docs-mapping.md).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local ENVELOPE = h.root .. "/policies/transforms/json_envelope.lua"

-- Test policies, written into the gateway's directory.
local POLICIES = {
    ["upper.lua"] = [[
return {
  transform = function(body, ctx, conf)
    return body:upper() .. "|" .. ctx.method .. "|" .. (ctx.headers["x-note"] or "-"), "text/plain"
  end,
}]],
    ["broken.lua"] = [[
return { transform = function(body) error("cannot transform " .. #body .. " bytes") end }]],
    ["spin.lua"] = [[
return { transform = function(body) while true do end end }]],
    ["status.lua"] = [[
return {
  transform = function(body, ctx)
    return ctx.status .. ">" .. ctx.method_status .. " " .. body .. " " .. ctx.request.path
  end,
}]],
}

-- The request the upstream received last (its raw bytes after `before`).
local function received_since(up, before)
    return up.received():sub(#before + 1)
end

describe("non-proxy http integrations", function()
    local up, gw, dir

    lazy_setup(function()
        up = h.start_upstream(nil, { raw_log = true })
        dir = h.tmpdir()
        os.execute("mkdir -p " .. dir .. "/policies")
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        local origin = up.origin
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "m" } },
            lua = { instruction_budget = 100000 },
            apis = {
                m = {
                    stages = { ["$default"] = { variables = { who = "blue", backend = origin },
                        access_log = { path = dir .. "/access.log",
                            format = "$context.requestId $context.status $context.integration.status" } } },
                    routes = {
                        ["GET /pets/{id}"] = {
                            integration = {
                                type = "http", proxy = false, uri = "${stageVariables.backend}/items/{item}",
                                request_parameters = {
                                    ["integration.request.path.item"] = "method.request.path.id",
                                    ["integration.request.querystring.p"] = "method.request.querystring.page",
                                    ["integration.request.querystring.lit"] = "'a b/c'",
                                    ["integration.request.querystring.gone"] = "method.request.querystring.nope",
                                    ["integration.request.header.x-trace-id"] = "method.request.header.x-trace",
                                    ["integration.request.header.x-stage"] = "stageVariables.who",
                                    ["integration.request.header.x-route"] = "context.routeKey",
                                },
                            },
                        },
                        ["GET /status/{code}"] = {
                            integration = {
                                type = "http", proxy = false, uri = origin .. "/status/{code}",
                                responses = {
                                    { selection_pattern = "20", status = 500 }, -- never: anchored
                                    { selection_pattern = "5\\d{2}", status = 502,
                                      response_parameters = {
                                          ["method.response.header.x-backend-type"] = "integration.response.header.content-type",
                                          ["method.response.header.x-lit"] = "'yes'",
                                          ["method.response.header.x-stage"] = "stageVariables.who",
                                      } },
                                    { selection_pattern = "404|410", status = 404,
                                      transform = { policy = "policies/status.lua" } },
                                    { status = 200 },
                                },
                            },
                        },
                        ["GET /nodefault/{code}"] = {
                            integration = {
                                type = "http", proxy = false, uri = origin .. "/status/{code}",
                                responses = { { selection_pattern = "2\\d{2}", status = 200 } },
                            },
                        },
                        ["POST /wrap"] = {
                            integration = {
                                type = "http", proxy = false, uri = origin .. "/wrapped", method = "PUT",
                                request_transform = { policy = ENVELOPE,
                                    config = { key = "pet", fields = { source = "gw" } } },
                                responses = { { status = 201, transform = { policy = ENVELOPE,
                                    config = { key = "echo", from = { backend = "status" } } } } },
                            },
                        },
                        ["POST /upper"] = {
                            integration = {
                                type = "http", proxy = false, uri = origin .. "/up",
                                request_transform = { policy = "policies/upper.lua" },
                            },
                        },
                        ["POST /passthrough"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/pass" },
                        },
                        ["GET /broken"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/b",
                                request_transform = { policy = "policies/broken.lua" } },
                        },
                        ["GET /spin"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/b",
                                responses = { { status = 200, transform = { policy = "policies/spin.lua" } } } },
                        },
                        ["GET /slow"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/slow?ms=2000",
                                timeout_ms = 200 },
                        },
                        ["GET /down"] = {
                            integration = { type = "http", proxy = false,
                                uri = "http://127.0.0.1:" .. h.free_port() .. "/x" },
                        },
                        ["GET /proxy/{p+}"] = { integration = { type = "http", uri = origin .. "/{p+}" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local function exchange(method, path, headers, body)
        local lines = { method .. " " .. path .. " HTTP/1.1", "Host: gw.test", "Connection: close" }
        for _, hd in ipairs(headers or {}) do lines[#lines + 1] = hd end
        if body then lines[#lines + 1] = "Content-Length: " .. #body end
        local raw = h.raw_exchange(gw.port, table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
        -- the request id and date vary: named, then blanked
        local id = raw:match("\r\napigw%-requestid: ([^\r]+)\r\n")
        local norm = raw:gsub("\r\ndate: [^\r]+", "\r\ndate: DATE")
        if id then norm = norm:gsub(id:gsub("%p", "%%%0"), "ID") end
        return norm, id
    end

    local function host()
        return "host: 127.0.0.1:" .. up.port .. "\r\n"
    end

    local function response(status, headers, body)
        return "HTTP/1.1 " .. status .. "\r\n" .. headers .. "date: DATE\r\napigw-requestid: ID\r\n"
            .. "content-length: " .. #body .. "\r\nconnection: close\r\n\r\n" .. body
    end

    it("sends the backend only the mapped parameters, in a fixed order", function()
        local before = up.received()
        local raw = exchange("GET", "/pets/7?page=2&other=x", { "X-Trace: abc", "Cookie: a=1", "X-Other: o" })
        assert.are.equal("GET /items/7?lit=a%20b%2Fc&p=2 HTTP/1.1\r\n" .. host()
            .. "x-route: GET /pets/{id}\r\nx-stage: blue\r\nx-trace-id: abc\r\n\r\n", received_since(up, before))
        -- the backend's 200 goes through the default response: its body as is, application/json
        local e = h.json_decode(raw:match("\r\n\r\n(.*)$"))
        assert.are.equal("/items/7?lit=a%20b%2Fc&p=2", e.target)
        assert.truthy(raw:find("^HTTP/1.1 200 OK\r\ncontent%-type: application/json\r\ndate: DATE\r\n"))
    end)

    it("leaves out a parameter whose source is missing", function()
        local before = up.received()
        exchange("GET", "/pets/x%20y")
        assert.are.equal("GET /items/x%20y?lit=a%20b%2Fc HTTP/1.1\r\n" .. host()
            .. "x-route: GET /pets/{id}\r\nx-stage: blue\r\n\r\n", received_since(up, before))
    end)

    it("selects the integration response by the backend status and maps its headers", function()
        assert.are.equal(response("502 Bad Gateway", "content-type: application/json\r\n"
            .. "x-backend-type: application/json\r\nx-lit: yes\r\nx-stage: blue\r\n", '{"status":503}'),
            exchange("GET", "/status/503"))
        -- an alternative of the pattern, with a response transform that sees both statuses
        assert.are.equal(response("404 Not Found", "content-type: application/json\r\n",
            '410>404 {"status":410} /status/410'), exchange("GET", "/status/410"))
        -- no pattern matches: the default response (the backend's headers do not pass)
        assert.are.equal(response("200 OK", "content-type: application/json\r\n", '{"status":302}'),
            exchange("GET", "/status/302"))
    end)

    it("anchors the selection pattern at both ends", function()
        -- "20" does not match 201 (nor 200): the default answers
        assert.are.equal(response("200 OK", "content-type: application/json\r\n", '{"status":201}'),
            exchange("GET", "/status/201"))
    end)

    it("answers 500 when no response matches and none is the default", function()
        local raw = exchange("GET", "/nodefault/500")
        assert.truthy(raw:find("^HTTP/1.1 500 Internal Server Error\r\n"), raw)
        assert.truthy(h.wait_for(function()
            return gw:stderr():find('apis.m.routes["GET /nodefault/{code}"].integration: no integration '
                .. "response matches the backend status 500 and none is the default", 1, true)
        end), gw:stderr())
        assert.truthy(exchange("GET", "/nodefault/201"):find("^HTTP/1.1 200 OK\r\n"))
    end)

    it("transforms the request and response bodies with Lua policies", function()
        local before = up.received()
        local raw = exchange("POST", "/wrap", { "Content-Type: text/plain", "X-Note: n" }, '{"name":"rex"}')
        local sent = '{"source":"gw","pet":{"name":"rex"}}'
        local ok_order = '{"pet":{"name":"rex"},"source":"gw"}'
        local got = received_since(up, before)
        local body = got:match("\r\n\r\n(.*)$")
        assert.is_true(body == sent or body == ok_order, got)
        assert.are.equal("PUT /wrapped HTTP/1.1\r\n" .. host() .. "content-type: application/json\r\n"
            .. "content-length: " .. #sent .. "\r\n\r\n" .. body, got)
        assert.truthy(raw:find("^HTTP/1.1 201 Created\r\ncontent%-type: application/json\r\n"), raw)
        local out = h.json_decode(raw:match("\r\n\r\n(.*)$"))
        assert.are.equal(200, out.backend)
        assert.are.equal("/wrapped", out.echo.target)
        assert.are.equal(body, out.echo.body)
    end)

    it("gives a transform the request (headers, method) and takes its content type", function()
        local before = up.received()
        exchange("POST", "/upper", { "Content-Type: application/json", "X-Note: n" }, "abc")
        assert.are.equal("POST /up HTTP/1.1\r\n" .. host() .. "content-type: text/plain\r\n"
            .. "content-length: 10\r\n\r\nABC|POST|n", received_since(up, before))
    end)

    it("passes the body and its content type through without a transform", function()
        local before = up.received()
        exchange("POST", "/passthrough", { "Content-Type: text/x", "X-Note: n" }, "abc")
        assert.are.equal("POST /pass HTTP/1.1\r\n" .. host() .. "content-type: text/x\r\n"
            .. "content-length: 3\r\n\r\nabc", received_since(up, before))
    end)

    it("answers 500 for a failing transform and logs its configuration path", function()
        local raw, id = exchange("GET", "/broken")
        assert.are.equal(response("500 Internal Server Error", "content-type: application/json\r\n"
            .. "x-amzn-errortype: InternalServerErrorException\r\n", '{"message":"Internal Server Error"}'), raw)
        assert.truthy(h.wait_for(function()
            return gw:stderr():find("request " .. id .. ': apis.m.routes["GET /broken"].integration.request_transform: '
                .. "policies/broken.lua:1: cannot transform 0 bytes", 1, true)
        end), gw:stderr())
        raw, id = exchange("GET", "/spin")
        assert.truthy(raw:find("^HTTP/1.1 500 "), raw)
        assert.truthy(h.wait_for(function()
            return gw:stderr():find("request " .. id .. ': apis.m.routes["GET /spin"].integration.responses[1].transform: '
                .. "policies/spin.lua:1: instruction budget exceeded", 1, true)
        end), gw:stderr())
    end)

    it("answers a backend timeout with 504 and a failure with 502, as a proxy does", function()
        assert.are.equal(response("504 Gateway Timeout", "content-type: application/json\r\n"
            .. "x-amzn-errortype: GatewayTimeoutException\r\n", '{"message":"Endpoint request timed out"}'),
            exchange("GET", "/slow"))
        assert.are.equal(response("502 Bad Gateway", "content-type: application/json\r\n"
            .. "x-amzn-errortype: BadGatewayException\r\n", '{"message":"Bad Gateway"}'),
            exchange("GET", "/down"))
    end)

    it("records the backend status as $context.integration.status", function()
        local _, id = exchange("GET", "/status/503")
        local line
        h.wait_for(function()
            for _, l in ipairs(h.log_lines(dir .. "/access.log")) do
                if l:find(id, 1, true) then line = l end
            end
            return line
        end, 5)
        assert.are.equal(id .. " 502 503", line)
        -- also when the response then fails (no integration response matches)
        _, id = exchange("GET", "/nodefault/503")
        line = nil
        h.wait_for(function()
            for _, l in ipairs(h.log_lines(dir .. "/access.log")) do
                if l:find(id, 1, true) then line = l end
            end
            return line
        end, 5)
        assert.are.equal(id .. " 500 503", line)
    end)

    it("leaves proxy routes as they were", function()
        local raw = exchange("GET", "/proxy/status/201")
        assert.truthy(raw:find("^HTTP/1.1 201 Created\r\nContent%-Type: application/json\r\nX%-Upstream: test%-upstream\r\n"), raw)
    end)
end)

describe("non-proxy http integrations on a REST API", function()
    local up, gw

    lazy_setup(function()
        up = h.start_upstream(nil, { raw_log = true })
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "r" } },
            apis = {
                r = {
                    protocol = "rest",
                    stages = { prod = { variables = { backend = up.origin } } },
                    routes = {
                        ["GET /pets/{id}"] = {
                            integration = {
                                type = "http", proxy = false, uri = "${stageVariables.backend}/status/{code}",
                                request_parameters = {
                                    ["integration.request.path.code"] = "method.request.querystring.code",
                                    ["integration.request.header.x-resource"] = "context.resourcePath",
                                    ["integration.request.header.x-pet"] = "method.request.path.id",
                                },
                                responses = {
                                    { selection_pattern = "4\\d{2}", status = 400,
                                      response_parameters = { ["method.response.header.x-stage"] = "context.stage" } },
                                    { status = 200 },
                                },
                            },
                        },
                    },
                },
            },
        })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    it("maps REST $context variables and selects the response", function()
        local before = up.received()
        local r = h.curl{ gw:url "/prod/pets/7?code=404" }
        assert.are.equal("GET /status/404 HTTP/1.1\r\nhost: 127.0.0.1:" .. up.port .. "\r\n"
            .. "x-pet: 7\r\nx-resource: /pets/{id}\r\n\r\n", up.received():sub(#before + 1))
        assert.are.equal(400, r.status)
        assert.are.equal("prod", r.headers["x-stage"])
        assert.are.equal('{"status":404}', r.body)
        assert.is_string(r.headers["x-amzn-requestid"])
    end)
end)
