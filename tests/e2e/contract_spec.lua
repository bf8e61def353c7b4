-- The kit and the gateway agree (README "Testing a policy"): the same policies, the
-- same configurations and the same requests give the same decisions, contexts,
-- responses and log lines through moongate.testing (no gateway) and through the
-- real binary. Each case becomes one API of one gateway, reached by its Host.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local testing = require "moongate.testing"
local cjson = require "cjson"

local STOCK = h.root .. "/policies/"
local KEYS = { keys = { ["k-0123456789abcdef"] = "alice" }, usage_identifier = false }
local SOURCES = { "$request.header.x-api-key" }
local ACL = {
    { name = "deny", priority = 2, policy = STOCK .. "waf/ip_set.lua", action = "block",
      config = { cidrs = { "203.0.113.0/24", "2001:db8::/32" }, header = "x-client-ip" } },
    { name = "watch", priority = 1, policy = STOCK .. "waf/ip_set.lua", action = "count",
      config = { cidrs = { "198.51.100.0/24", "203.0.113.0/25" }, header = "x-client-ip" } },
}
local SELECTOR = { header = "x-version", routes = { ["2"] = "GET /v2", ["3"] = "GET /v3" } }
local LOG = { fields = { method = "httpMethod", path = "path", ua = "identity.userAgent", ip = "identity.sourceIp",
                         stage = "stage" }, static = { app = "contract" } }

-- kind, what the API is configured with, and the request.
local CASES = {
    { kind = "authorizer", request = { headers = { ["x-api-key"] = "k-0123456789abcdef" } } },
    { kind = "authorizer", request = { headers = { ["x-api-key"] = "k-wrong" } } },
    { kind = "authorizer", request = {} },
    { kind = "waf", request = { headers = { ["x-client-ip"] = "203.0.113.9" } } },
    { kind = "waf", request = { headers = { ["x-client-ip"] = "203.0.113.200" } } },
    { kind = "waf", request = { headers = { ["x-client-ip"] = "198.51.100.1" } } },
    { kind = "waf", request = { headers = { ["x-client-ip"] = "2001:db8::42" } } },
    { kind = "waf", request = { headers = { ["x-client-ip"] = "192.0.2.1" } } },
    { kind = "route", request = { path = "/v1", headers = { ["x-version"] = "2" } } },
    { kind = "route", request = { path = "/v1" } },
    { kind = "route", request = { path = "/v1", headers = { ["x-version"] = "3" } } },
    { kind = "handle", request = { method = "POST", path = "/echo/a/b?q=1&q=2", body = "hello",
                                   headers = { ["content-type"] = "text/plain", cookie = "s=1" } } },
    { kind = "handle", request = { method = "PUT", path = "/echo/bin", body = "\0\1\2\3\255" } },
    { kind = "log", request = { method = "DELETE", path = "/echo/x" } },
    -- payload format 1.0 (an HTTP API route with payload_format_version = "1.0"): the whole
    -- event the handler gets, and its 1.0 response
    { kind = "handle_v1", request = { method = "POST", path = "/v1/a/b?q=1&q=2&r=x", body = "hello",
                                      headers = { ["content-type"] = "text/plain", cookie = "s=1",
                                                  ["x-multi"] = { "one", "two" } } } },
    { kind = "handle_v1", request = { method = "PUT", path = "/v1/bin", body = "\0\1\2\3\255" } },
    { kind = "handle_v1", request = { method = "GET", path = "/v1/x" } },
    -- a mapping template (non-proxy http integration): the response template sends back what
    -- the request template rendered, which testing.vtl must render the same
    { kind = "vtl", request = { method = "POST", path = "/vtl/a/b?q=1&q=2&r=x", body = '{"name": "rex", "n": 2.5}',
                                headers = { ["content-type"] = "application/json", ["x-h"] = "v" } } },
    { kind = "vtl", request = { method = "POST", path = "/vtl/c", body = '{"name": "it\'s \\"x\\"", "n": [1, {}]}',
                                headers = { ["content-type"] = "application/json; charset=utf-8" } } },
}
local VTL = [[
#set($b = $input.path('$'))
{"name": "$util.escapeJavaScript($b.name)", "n": $input.json('$.n'), "q": "$input.params('q')",
 "h": "$input.params('x-h')", "proxy": "$input.params('proxy')", "method": "$context.httpMethod",
 "stage": "$context.stage", "route": "$context.routeKey", "ip": "$context.identity.sourceIp",
 "qs": "$input.params().querystring", "ua": "$input.params().header.get('user-agent')", "env": "$stageVariables.env"}
]]
local upstream_origin
local ECHO_V1 = { cookies = { "a=1", "b=2; Path=/" } }

local function api_for(case, dir)
    local api = { stages = { ["$default"] = { access_log = { path = dir .. "/" .. case.id .. ".log",
        format = '{"id":"$context.requestId","rule":"$context.waf.rule","counted":"$context.waf.counted",'
            .. '"route":"$context.routeKey","status":"$context.status"}' } } },
        routes = { ["ANY /echo/{proxy+}"] = { integration = { type = "lua", handler = STOCK .. "examples/echo.lua" } } } }
    if case.kind == "authorizer" then
        api.authorizers = { keys = { type = "lua", policy = STOCK .. "authorizers/api_key_header.lua", config = KEYS,
            identity_sources = SOURCES } }
        api.routes["ANY /echo/{proxy+}"] = nil
        api.routes["$default"] = { authorizer = "keys", integration = { type = "lua", handler = STOCK .. "examples/echo.lua" } }
    elseif case.kind == "waf" then
        api.stages["$default"].waf = { default_action = "allow", rules = ACL }
        api.routes["$default"] = { integration = { type = "mock", body = "passed" } }
    elseif case.kind == "route" then
        api.route_selection = { policy = STOCK .. "routes/header.lua", config = SELECTOR }
        for _, k in ipairs({ "GET /v1", "GET /v2" }) do
            api.routes[k] = { integration = { type = "mock", body = k } }
        end
    elseif case.kind == "log" then
        api.stages["$default"].access_log = { path = dir .. "/" .. case.id .. ".log", policy = STOCK .. "log/json.lua", config = LOG }
    elseif case.kind == "vtl" then
        api.stages["$default"].variables = { env = "green" }
        api.routes["POST /vtl/{proxy+}"] = { integration = { type = "http", proxy = false,
            uri = upstream_origin .. "/echo", request_templates = { ["application/json"] = VTL },
            responses = { { status = 200, response_templates = { ["application/json"] = "$input.path('$.body')" } } } } }
    elseif case.kind == "handle_v1" then
        api.routes["ANY /v1/{proxy+}"] = { integration = { type = "lua", handler = STOCK .. "examples/echo_v1.lua",
            payload_format_version = "1.0", config = ECHO_V1 } }
    end
    return api
end

local function kit_request(case)
    local r = case.request
    local headers = { ["user-agent"] = "contract/1.0", host = case.id .. ".localhost" }
    for k, v in pairs(r.headers or {}) do headers[k] = v end
    return testing.request{ method = r.method or "GET", path = r.path or "/echo/x", headers = headers,
        body = r.body, source_ip = "127.0.0.1", api_id = case.id, stage = "$default" }
end

describe("the kit and the gateway", function()
    local gw, dir, up
    local got = {}

    lazy_setup(function()
        up = h.start_upstream()
        upstream_origin = up.origin
        dir = h.tmpdir()
        local apis = {}
        for i, case in ipairs(CASES) do
            case.id = "c" .. i
            apis[case.id] = api_for(case, dir)
        end
        gw = h.start_gateway({ workers = 1, listen = { { address = "127.0.0.1", port = h.free_port() } }, apis = apis },
            { dir = dir })
        for _, case in ipairs(CASES) do
            local r = case.request
            local args = { gw:url(r.path or "/echo/x"), "-X", r.method or "GET", "-H", "Host: " .. case.id .. ".localhost",
                "-H", "User-Agent: contract/1.0", "-H", "Accept:" }
            for k, v in pairs(r.headers or {}) do
                for _, value in ipairs(type(v) == "table" and v or { v }) do -- a list: sent once per value
                    args[#args + 1] = "-H"
                    args[#args + 1] = k .. ": " .. value
                end
            end
            if r.body then
                args[#args + 1] = "--data-binary"
                args[#args + 1] = "@" .. h.write_file(dir .. "/" .. case.id .. ".body", r.body)
            end
            got[case.id] = h.curl(args)
        end
        h.stop_all(gw, up) -- flushes the access logs
    end)

    local function log_entry(case)
        local lines = h.log_lines(dir .. "/" .. case.id .. ".log")
        return lines[#lines]
    end

    for i, case in ipairs(CASES) do
        local title = string.format("agree on %s case %d", case.kind, i)
        it(title, function()
            local resp = got[case.id]
            local req = kit_request(case)
            if case.kind == "authorizer" then
                local d = testing.authorize(STOCK .. "authorizers/api_key_header.lua", KEYS, req,
                    { identity_sources = SOURCES })
                assert.equal(d.status, resp.status)
                if d.status == 200 then
                    assert.same(d.context, resp:json().authorizer)
                end
            elseif case.kind == "waf" then
                local rules = {}
                for k, r in ipairs(ACL) do rules[k] = r end
                local d = testing.waf(rules, req, "allow")
                assert.equal(d.status, resp.status)
                local e = cjson.decode(log_entry(case))
                assert.equal(d.rule or "-", e.rule)
                assert.equal(#d.counted > 0 and table.concat(d.counted, ",") or "-", e.counted)
            elseif case.kind == "route" then
                local d = testing.select_route(STOCK .. "routes/header.lua", SELECTOR, req, { "GET /v1", "GET /v2" })
                if d.status then
                    assert.equal(d.status, resp.status)
                else
                    assert.equal(200, resp.status)
                    assert.equal(d.route_key or "GET /v1", resp.body) -- declined: the route keys pick GET /v1
                end
            elseif case.kind == "handle" then
                req.route_key = "ANY /echo/{proxy+}"
                req._path_params = { proxy = (case.request.path:match("^/echo/([^?]*)")) }
                req.request_id = resp.headers["apigw-requestid"]
                local d = testing.handle(STOCK .. "examples/echo.lua", {}, req)
                assert.equal(d.status, resp.status)
                assert.equal(d.headers["content-type"], resp.headers["content-type"])
                local kit, real = cjson.decode(d.body), resp:json()
                real.headers["content-length"], real.headers["content-type"] = nil, nil
                kit.headers["content-type"] = nil
                assert.same(kit, real)
            elseif case.kind == "handle_v1" then
                req.route_key = "ANY /v1/{proxy+}"
                req._path_params = { proxy = (case.request.path:match("^/v1/([^?]*)")) }
                req.request_id = resp.headers["apigw-requestid"]
                local d = testing.handle(STOCK .. "examples/echo_v1.lua", ECHO_V1, req, { payload_format_version = "1.0" })
                assert.equal(d.status, resp.status)
                assert.same({ "content-type", "set-cookie", "set-cookie" }, (function()
                    local names = {}
                    for _, hd in ipairs(resp.header_list) do
                        if hd[1] == "content-type" or hd[1] == "set-cookie" then names[#names + 1] = hd[1] end
                    end
                    return names
                end)())
                assert.same(d.header_list, (function()
                    local own = {}
                    for _, hd in ipairs(resp.header_list) do
                        if hd[1] == "content-type" or hd[1] == "set-cookie" then own[#own + 1] = hd end
                    end
                    return own
                end)())
                local kit, real = cjson.decode(d.body), resp:json()
                -- what only the wire has (curl's content type, the length) or the clock says
                for _, e in ipairs({ kit, real }) do
                    e.headers["content-length"], e.multiValueHeaders["content-length"] = nil, nil
                    e.headers["content-type"], e.multiValueHeaders["content-type"] = nil, nil
                    e.requestContext.requestTime, e.requestContext.requestTimeEpoch = nil, nil
                end
                assert.same(kit, real)
            elseif case.kind == "vtl" then
                req.route_key = "POST /vtl/{proxy+}"
                req._path_params = { proxy = (case.request.path:match("^/vtl/([^?]*)")) }
                req._stage_variables = { env = "green" }
                local out, err = testing.vtl(VTL, req)
                assert(out, err)
                assert.equal(200, resp.status)
                assert.equal(out, resp.body)
            elseif case.kind == "log" then
                req.route_key = "ANY /echo/{proxy+}"
                local d = testing.log(STOCK .. "log/json.lua", LOG, testing.context{ request = req })
                assert.equal(d.line, log_entry(case))
            end
        end)
    end
end)
