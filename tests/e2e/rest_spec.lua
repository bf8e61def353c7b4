-- REST APIs next to an HTTP API, served from one configuration and walked as an AWS
-- user walks them with curl (README "REST APIs"): the stage is the first path segment,
-- an unknown stage, resource or method is 403 Missing Authentication Token, responses
-- carry x-amzn-RequestId (a UUID, the client's when it sends one) and x-amz-apigw-id,
-- gateway responses have REST's defaults and can be customized, API keys come from the
-- x-api-key header or from the authorizer (api_key_source), and the REST $context
-- variables reach the access log and Lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local STOCK = h.root .. "/policies/"
local KEY = "key-aaaaaaaaaaaaaaaaaaaaaaaa"
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local POLICIES = {
    -- REQUEST authorizer: x-token names the outcome; "key-user" also returns an API key.
    ["keyauth.lua"] = [[
local M = {}
function M.authorize(req, conf, auth)
  local token = auth.identity_source[1]
  if token == "boom" then error("token store unavailable") end
  if token == "deny" then
    return { principalId = "u", policyDocument = { Version = "2012-10-17", Statement = {
      { Action = "execute-api:Invoke", Effect = "Deny", Resource = "*" } } } }
  end
  return { isAuthorized = true, context = { who = token },
           usageIdentifierKey = token == "key-user" and "]] .. KEY .. [[" or nil }
end
return M
]],
    -- Lua integration: the REST values a handler reads through req.
    ["context.lua"] = [[
local cjson = require "cjson"
local M = {}
local NAMES = { "requestId", "extendedRequestId", "resourcePath", "resourceId",
  "requestTimeEpoch", "stage", "path", "httpMethod" }
function M.handle(event, conf, req)
  local out = { api_type = req.api_type, request_id = req.request_id }
  for _, n in ipairs(NAMES) do out[n] = req:context(n) end
  return { statusCode = 200, headers = { ["content-type"] = "application/json" },
           body = cjson.encode(out) }
end
return M
]],
    ["broken.lua"] = [[
return { handle = function(event) return event.missing.field end }
]],
}

describe("a REST API next to an HTTP API", function()
    local gw, up, dir, ports, log
    local R = {}

    local function url(api, path) return gw:url(path, ports[api]) end
    local function get(api, path, ...) return h.curl({ url(api, path), ... }) end

    lazy_setup(function()
        up = h.start_upstream()
        dir = h.tmpdir()
        h.run("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do h.write_file(dir .. "/policies/" .. name, src) end
        ports = { web = h.free_port(), pets = h.free_port(), akeys = h.free_port() }
        local dead = h.free_port()
        local log_format = '{"requestId":"$context.requestId","extendedRequestId":"$context.extendedRequestId",'
            .. '"resourcePath":"$context.resourcePath","resourceId":"$context.resourceId",'
            .. '"requestTimeEpoch":"$context.requestTimeEpoch","status":"$context.status",'
            .. '"responseType":"$context.error.responseType","apiKeyId":"$context.identity.apiKeyId",'
            .. '"authorizerLatency":"$context.authorizer.integrationLatency",'
            .. '"authorizerStatus":"$context.authorizer.integrationStatus",'
            .. '"webaclArn":"$context.webaclArn","wafResponseCode":"$context.wafResponseCode"}'
        local function rest_routes(extra)
            local routes = {
                ["GET /pets"] = { integration = { type = "mock", body = '["rest"]' } },
                ["GET /pets/{id}"] = { integration = { type = "lua", handler = "policies/context.lua" } },
                ["GET /keyed"] = { api_key_required = true, integration = { type = "mock", body = "keyed" } },
                ["GET /authkeyed"] = { authorizer = "keyauth", api_key_required = true,
                    integration = { type = "mock", body = "authkeyed" } },
            }
            for k, v in pairs(extra or {}) do routes[k] = v end
            return routes
        end
        gw = h.start_gateway({
            workers = 1,
            listen = {
                { address = "127.0.0.1", port = ports.web, api = "web" },
                { address = "127.0.0.1", port = ports.pets, api = "pets" },
                { address = "127.0.0.1", port = ports.akeys, api = "akeys" },
            },
            limits = { max_body_size = 1000 },
            api_keys = { k1 = { value = KEY } },
            apis = {
                web = {
                    stages = { ["$default"] = {} },
                    routes = { ["GET /pets"] = { integration = { type = "mock", body = '["http"]' } } },
                },
                pets = {
                    protocol = "rest",
                    stages = {
                        prod = {
                            access_log = { path = dir .. "/pets.log", format = log_format },
                            route_settings = { ["GET /tight"] = { throttle = { rate = 0.01, burst = 1 } } },
                            waf = { default_action = "allow", rules = {
                                { name = "deny-net", priority = 1, policy = STOCK .. "waf/ip_set.lua", action = "block",
                                  config = { cidrs = { "203.0.113.0/24" }, header = "x-client-ip" } } } },
                        },
                        dev = {},
                    },
                    authorizers = {
                        keyauth = { type = "lua", policy = "policies/keyauth.lua",
                            identity_sources = { "$request.header.x-token" }, ttl = 0 },
                    },
                    routes = rest_routes({
                        ["POST /pets"] = { integration = { type = "mock", status = 201, body = "{}" } },
                        ["GET /down"] = { integration = { type = "http", uri = "http://127.0.0.1:" .. dead .. "/x" } },
                        ["GET /slow"] = { integration = { type = "http", uri = up.origin .. "/slow", timeout_ms = 300 } },
                        ["GET /proxy"] = { integration = { type = "http", uri = up.origin .. "/ok" } },
                        ["GET /broken"] = { integration = { type = "lua", handler = "policies/broken.lua" } },
                        ["GET /tight"] = { integration = { type = "mock", body = "tight" } },
                    }),
                },
                akeys = {
                    protocol = "rest",
                    api_key_source = "AUTHORIZER",
                    stages = { v1 = {} },
                    authorizers = {
                        keyauth = { type = "lua", policy = "policies/keyauth.lua",
                            identity_sources = { "$request.header.x-token" }, ttl = 0 },
                    },
                    routes = rest_routes(),
                    gateway_responses = {
                        MISSING_AUTHENTICATION_TOKEN = {
                            status = 404,
                            headers = { ["access-control-allow-origin"] = "*", ["x-echo"] = "$request.header.x-trace" },
                            body = '{"error":$context.error.messageString,"type":"$context.error.responseType",'
                                .. '"requestId":"$context.requestId"}',
                        },
                        DEFAULT_4XX = { headers = { ["access-control-allow-origin"] = "*" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    -- A REST gateway response: status, body, x-amzn-ErrorType, the two id headers.
    local function assert_rest_error(r, status, body, error_type)
        assert.are.equal(status, r.status)
        assert.are.equal(body, r.body)
        assert.are.equal(error_type, r.headers["x-amzn-errortype"])
        assert.matches("^application/json", r.headers["content-type"] or "")
        assert.matches(UUID, r.headers["x-amzn-requestid"] or "")
        assert.is_string(r.headers["x-amz-apigw-id"])
        assert.is_nil(r.headers["apigw-requestid"])
    end

    local MAT = '{"message":"Missing Authentication Token"}'

    describe("requests and ids", function()
        it("serves the HTTP API as before: apigw-requestid, 404 Not Found", function()
            local r = get("web", "/pets")
            assert.are.equal(200, r.status)
            assert.are.equal('["http"]', r.body)
            assert.matches("^%S+$", r.headers["apigw-requestid"])
            assert.is_nil(r.headers["x-amzn-requestid"])
            assert.is_nil(r.headers["x-amz-apigw-id"])
            h.assert_not_found(get("web", "/nothing"))
        end)

        it("takes the stage from the first path segment", function()
            local r = get("pets", "/prod/pets")
            assert.are.equal(200, r.status)
            assert.are.equal('["rest"]', r.body)
            assert.are.equal(200, get("pets", "/dev/pets").status)
            assert.are.equal(201, get("pets", "/prod/pets", "-X", "POST", "-d", "{}").status)
        end)

        it("sends x-amzn-RequestId (a UUID) and x-amz-apigw-id, which differ", function()
            local r = get("pets", "/prod/pets")
            local names = {}
            for _, hv in ipairs(r.header_list) do names[hv[1]] = true end
            assert.matches(UUID, r.headers["x-amzn-requestid"])
            assert.matches("^%S+$", r.headers["x-amz-apigw-id"])
            assert.are_not.equal(r.headers["x-amzn-requestid"], r.headers["x-amz-apigw-id"])
            assert.is_nil(names["apigw-requestid"])
            -- the exact spelling AWS uses
            local raw = h.curl_raw({ "-D", "-", "-o", "/dev/null", url("pets", "/prod/pets") })
            assert.matches("\nx%-amzn%-RequestId: ", raw)
            assert.matches("\nx%-amz%-apigw%-id: ", raw)
        end)

        it("sends its own ids on proxied responses", function()
            local r = get("pets", "/prod/proxy")
            assert.are.equal(200, r.status)
            assert.matches(UUID, r.headers["x-amzn-requestid"])
            assert.matches("^%S+$", r.headers["x-amz-apigw-id"])
            assert.is_nil(r.headers["apigw-requestid"])
        end)

        it("takes a client's x-amzn-RequestId UUID as requestId, never as extendedRequestId", function()
            local id = "0f8fad5b-d9cb-469f-a165-70867728950e"
            local r = get("pets", "/prod/pets/7", "-H", "X-Amzn-RequestId: " .. id)
            assert.are.equal(200, r.status)
            local c = r:json()
            assert.are.equal(id, r.headers["x-amzn-requestid"])
            assert.are.equal(id, c.requestId)
            assert.are.equal(id, c.request_id)
            assert.are.equal(r.headers["x-amz-apigw-id"], c.extendedRequestId)
            assert.are_not.equal(id, c.extendedRequestId)
            R.client_id = id
        end)

        it("makes its own UUID when the client's x-amzn-RequestId is no UUID", function()
            local r = get("pets", "/prod/pets/7", "-H", "X-Amzn-RequestId: not-a-uuid")
            assert.matches(UUID, r.headers["x-amzn-requestid"])
            assert.are.equal(r.headers["x-amzn-requestid"], r:json().requestId)
        end)

        it("gives Lua the API type and the REST $context values", function()
            local r = get("pets", "/prod/pets/7")
            local c = r:json()
            assert.are.equal("rest", c.api_type)
            assert.are.equal(r.headers["x-amzn-requestid"], c.requestId)
            assert.are.equal(r.headers["x-amz-apigw-id"], c.extendedRequestId)
            assert.are.equal("/pets/{id}", c.resourcePath)
            assert.matches("^[a-z0-9]+$", c.resourceId)
            assert.are.equal(10, #c.resourceId)
            assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d%d$", c.requestTimeEpoch) -- milliseconds
            assert.are.equal("prod", c.stage)
            assert.are.equal("/prod/pets/7", c.path)
            assert.are.equal("GET", c.httpMethod)
            -- the same resource always has the same id
            assert.are.equal(c.resourceId, get("pets", "/prod/pets/8"):json().resourceId)
        end)
    end)

    describe("Missing Authentication Token", function()
        it("answers 403 for a path without a stage", function()
            assert_rest_error(get("pets", "/"), 403, MAT, "MissingAuthenticationTokenException")
        end)

        it("answers 403 for an unknown stage", function()
            assert_rest_error(get("pets", "/staging/pets"), 403, MAT, "MissingAuthenticationTokenException")
        end)

        it("answers 403 for an unknown resource", function()
            assert_rest_error(get("pets", "/prod/nothing"), 403, MAT, "MissingAuthenticationTokenException")
            assert_rest_error(get("pets", "/prod"), 403, MAT, "MissingAuthenticationTokenException")
        end)

        it("answers 403 for a method the resource does not have", function()
            assert_rest_error(get("pets", "/prod/pets", "-X", "DELETE"), 403, MAT,
                "MissingAuthenticationTokenException")
        end)

        it("can be customized per API: status, headers and body template", function()
            local r = get("akeys", "/v1/nothing", "-H", "X-Trace: t-1")
            assert.are.equal(404, r.status)
            assert.are.equal("*", r.headers["access-control-allow-origin"])
            assert.are.equal("t-1", r.headers["x-echo"])
            assert.are.equal("MissingAuthenticationTokenException", r.headers["x-amzn-errortype"])
            local b = r:json()
            assert.are.same({ error = "Missing Authentication Token", type = "MISSING_AUTHENTICATION_TOKEN",
                requestId = r.headers["x-amzn-requestid"] }, b)
        end)
    end)

    describe("REST defaults of the other gateway responses", function()
        it("INVALID_API_KEY: 403 Forbidden", function()
            assert_rest_error(get("pets", "/prod/keyed"), 403, '{"message":"Forbidden"}', "ForbiddenException")
            assert.are.equal("keyed", get("pets", "/prod/keyed", "-H", "x-api-key: " .. KEY).body)
        end)

        it("INTEGRATION_FAILURE: 504 Internal server error", function()
            assert_rest_error(get("pets", "/prod/down"), 504, '{"message":"Internal server error"}',
                "InternalServerErrorException")
        end)

        it("INTEGRATION_TIMEOUT: 504 Endpoint request timed out", function()
            assert_rest_error(get("pets", "/prod/slow?ms=2000"), 504, '{"message":"Endpoint request timed out"}',
                "GatewayTimeoutException")
        end)

        it("a failing Lua integration: 502 Internal server error (AWS's Lambda proxy error)", function()
            assert_rest_error(get("pets", "/prod/broken"), 502, '{"message":"Internal server error"}',
                "InternalServerErrorException")
        end)

        it("a failing authorizer: 500 with a null message", function()
            assert_rest_error(get("pets", "/prod/authkeyed", "-H", "x-token: boom"), 500, '{"message":null}',
                "AuthorizerConfigurationException")
        end)

        it("an explicit deny: 403 with REST's capitalized Message", function()
            assert_rest_error(get("pets", "/prod/authkeyed", "-H", "x-token: deny"), 403,
                '{"Message":"User is not authorized to access this resource with an explicit deny"}',
                "AccessDeniedException")
        end)

        it("UNAUTHORIZED: 401 without the identity source", function()
            assert_rest_error(get("pets", "/prod/authkeyed"), 401, '{"message":"Unauthorized"}',
                "UnauthorizedException")
        end)

        it("THROTTLED: 429 Too Many Requests", function()
            assert.are.equal(200, get("pets", "/prod/tight").status)
            assert_rest_error(get("pets", "/prod/tight"), 429, '{"message":"Too Many Requests"}',
                "TooManyRequestsException")
        end)

        it("WAF_FILTERED: 403 Forbidden", function()
            assert_rest_error(get("pets", "/prod/pets", "-H", "x-client-ip: 203.0.113.9"), 403,
                '{"message":"Forbidden"}', "ForbiddenException")
        end)

        it("REQUEST_TOO_LARGE: 413", function()
            assert_rest_error(get("pets", "/prod/pets", "-X", "POST", "--data-binary", h.payload(2000)), 413,
                '{"message":"Request Too Long"}', "RequestTooLargeException")
        end)

        it("a customized DEFAULT_4XX applies to the 4xx types without their own", function()
            local r = get("akeys", "/v1/keyed", "-H", "x-api-key: " .. KEY)
            assert_rest_error(r, 403, '{"message":"Forbidden"}', "ForbiddenException")
            assert.are.equal("*", r.headers["access-control-allow-origin"])
        end)
    end)

    describe("api_key_source", function()
        it("HEADER (the REST default): x-api-key counts, an authorizer's key does not", function()
            assert.are.equal(403, get("pets", "/prod/authkeyed", "-H", "x-token: key-user").status)
            local r = get("pets", "/prod/authkeyed", "-H", "x-token: key-user", "-H", "x-api-key: " .. KEY)
            assert.are.equal(200, r.status)
            assert.are.equal("authkeyed", r.body)
        end)

        it("AUTHORIZER: the authorizer's usageIdentifierKey counts, x-api-key does not", function()
            local r = get("akeys", "/v1/authkeyed", "-H", "x-token: key-user")
            assert.are.equal(200, r.status)
            assert.are.equal("authkeyed", r.body)
            assert.are.equal(403, get("akeys", "/v1/authkeyed", "-H", "x-token: other", "-H", "x-api-key: " .. KEY).status)
        end)
    end)

    describe("the access log", function()
        lazy_setup(function()
            -- the requests the entries below are found by
            R.logged = get("pets", "/prod/pets/9", "-H", "x-api-key: " .. KEY)
            R.authz = get("pets", "/prod/authkeyed", "-H", "x-token: key-user", "-H", "x-api-key: " .. KEY)
            R.mat = get("pets", "/prod/none")
            h.wait_for(function()
                log = h.json_log(dir .. "/pets.log")
                return h.find_entry(log, "requestId", R.mat.headers["x-amzn-requestid"])
            end, 5)
        end)

        local function entry(r)
            local e = h.find_entry(log, "requestId", r.headers["x-amzn-requestid"])
            assert.is_table(e, "no access-log line for " .. tostring(r.headers["x-amzn-requestid"]))
            return e
        end

        it("records requestId, extendedRequestId, resourcePath, resourceId and the epoch in ms", function()
            local e = entry(R.logged)
            assert.are.equal(R.logged.headers["x-amz-apigw-id"], e.extendedRequestId)
            assert.are.equal("/pets/{id}", e.resourcePath)
            assert.are.equal(R.logged:json().resourceId, e.resourceId)
            assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d%d$", e.requestTimeEpoch)
            assert.matches("^arn:moongate:wafv2:::webacl/apis%.pets%.stages%.prod%.waf$", e.webaclArn)
            assert.are.equal("WAF_ALLOW", e.wafResponseCode)
        end)

        it("records the API key id and the authorizer's latency and status", function()
            local e = entry(R.authz)
            assert.are.equal("k1", e.apiKeyId)
            assert.matches("^%d+$", e.authorizerLatency)
            assert.are.equal("200", e.authorizerStatus)
        end)

        it("records a refused request's response type", function()
            local e = entry(R.mat)
            assert.are.equal("403", e.status)
            assert.are.equal("MISSING_AUTHENTICATION_TOKEN", e.responseType)
            assert.are.equal("-", e.resourcePath)
        end)

        it("records a client's requestId", function()
            assert.is_table(h.find_entry(log, "requestId", R.client_id))
        end)
    end)
end)
