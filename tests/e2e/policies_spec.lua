-- Lua policies through the real binary (README "Writing policies"): WAF rules,
-- authorizers (REQUEST, TOKEN, IAM, cache, usage identifier key), route selection,
-- Lua integrations, log policies, header changes the backend sees, the request body
-- in hooks, and the error contract (a script error, a bad result or an endless loop
-- becomes the phase's 500 and an error-log line with file, line and traceback, and
-- the worker keeps serving).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local STOCK = h.root .. "/policies/"

-- Test policies, written into the gateway's directory (policies/ under the prefix).
local POLICIES = {
    ["counting.lua"] = [[
-- An authorizer that counts its runs (per worker) and says so in its context.
local calls = 0
local M = {}
function M.authorize(req, conf, auth)
  calls = calls + 1
  local token = auth.identity_source[1]
  if token == "boom" then error("token store unavailable") end
  if token == "bad-shape" then return { isAuthorized = "yes" } end
  if token == "unauthorized" then error("Unauthorized") end
  return { isAuthorized = token ~= "deny", context = { calls = calls, token = token },
           usageIdentifierKey = token == "key-user" and "key-aaaaaaaaaaaaaaaaaaaaaaaa" or nil }
end
return M
]],
    ["iam.lua"] = [[
local M = {}
function M.authorize(req, conf, auth)
  return { principalId = "user-" .. auth.token, context = { scopes = table.concat(auth.scopes, " ") },
    policyDocument = { Version = "2012-10-17", Statement = {
      { Action = "execute-api:Invoke", Effect = "Allow", Resource = "arn:moongate:execute-api:*:*:p/$default/GET/*" },
      { Action = "execute-api:Invoke", Effect = "Deny", Resource = "arn:moongate:execute-api:*:*:p/$default/GET/secret" } } } }
end
return M
]],
    ["spin.lua"] = [[
local M = {}
function M.handle(event)
  local n = 0
  while true do
    n = n + 1
  end
end
return M
]],
    ["broken.lua"] = [[
local M = {}
local function lookup(t) return t.missing.field end
function M.handle(event)
  local v = lookup({})
  return v
end
return M
]],
    ["badresult.lua"] = [[
return { handle = function() return { statusCode = "two hundred" } end }
]],
    ["plain.lua"] = [[
return { handle = function(event) return { ok = true, route = event.routeKey } end }
]],
    ["yields.lua"] = [[
-- Yields the hook's coroutine itself: only moongate.http and req:body() may wait.
return { handle = function(event) coroutine.yield("not a wait") return { ok = true } end }
]],
    ["tag.lua"] = [[
-- A WAF rule that matches nothing but adds a header for the backend.
local M = {}
function M.inspect(req)
  req:set_header("x-waf-seen", "yes")
  req:clear_header("x-drop-me")
  req.ctx.inspected = true
  return false
end
return M
]],
    ["body.lua"] = [[
-- A WAF rule that inspects the request body.
return { inspect = function(req) return req:body():find("DROP TABLE", 1, true) ~= nil end }
]],
    ["ctxcheck.lua"] = [[
-- A Lua integration that reports what earlier hooks left in the request.
local cjson = require "cjson"
return { handle = function(event, conf, req)
  local a = event.requestContext.authorizer
  local out = a and a.lambda or {}
  out.inspected = req.ctx.inspected -- set by the WAF rule tag.lua
  return { statusCode = 200, body = cjson.encode(out) }
end }
]],
    ["stale.lua"] = [[
-- Keeps the previous request's object and uses it: the gateway must refuse, not crash.
local last
return { handle = function(event, conf, req)
  local out = {}
  if last then
    local ok, err = pcall(function() return last:header("host") end)
    out.header = ok and "worked" or tostring(err)
    ok, err = pcall(function() return last.r end)
    out.r = ok and "worked" or tostring(err)
    ok, err = pcall(function() return last:context("requestId") end)
    out.context = ok and "worked" or tostring(err)
    ok, err = pcall(function() return last.path end) -- read (and kept) while it was live
    out.path = ok and "worked" or tostring(err)
    ok, err = pcall(function() return last.ctx end)
    out.ctx = ok and "worked" or tostring(err)
  end
  last = req
  local _ = req.path, req.ctx
  return out
end }
]],
    ["fresh.lua"] = [[
-- Reports what it reads, then marks the request: the next request (which takes the same
-- slot of the worker's Lua state) must see its own values, not these.
local cjson = require "cjson"
return { handle = function(event, conf, req)
  local out = { before = req.ctx.mark or "none", path = req.path, v = req:query_params().v,
                vars = req:stage_variables().color or "none" }
  req.ctx.mark = req.path
  return { statusCode = 200, body = cjson.encode(out) }
end }
]],
    ["custom_log.lua"] = [[
-- who: the Lua authorizer's context as later hooks see it (req.authorizer)
return { log = function(ctx)
  local a = ctx.request.authorizer
  return { tenant = ctx.request:header("x-tenant") or "none", st = ctx.status, who = a and a.token or "none" }
end }
]],
}

local function log_lines(path)
    return h.wait_for(function()
        local l = h.log_lines(path)
        return #l > 0 and l
    end, 5) or {}
end

describe("Lua policies", function()
    local gw, up, dir

    lazy_setup(function()
        up = h.start_upstream()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies") .. " " .. h.sh_quote(dir .. "/logs"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "p" } },
            api_keys = { user = { value = "key-aaaaaaaaaaaaaaaaaaaaaaaa" } },
            apis = {
                p = {
                    stages = {
                        ["$default"] = {
                            access_log = {
                                path = dir .. "/logs/access.log",
                                format = '{"id":"$context.requestId","status":"$context.status",'
                                    .. '"waf":"$context.wafResponseCode","wafStatus":"$context.waf.status",'
                                    .. '"rule":"$context.waf.rule","counted":"$context.waf.counted",'
                                    .. '"principal":"$context.authorizer.principalId","token":"$context.authorizer.token",'
                                    .. '"authzStatus":"$context.authorizer.status","authzError":"$context.authorizer.error",'
                                    .. '"integrationError":"$context.integrationErrorMessage",'
                                    .. '"tenant":"$context.custom.tenant","who":"$context.custom.who","route":"$context.routeKey"}',
                                policy = "policies/custom_log.lua",
                            },
                            waf = {
                                default_action = "allow",
                                rules = {
                                    { name = "tag", priority = 1, policy = "policies/tag.lua", action = "count" },
                                    { name = "deny-net", priority = 5, policy = STOCK .. "waf/ip_set.lua", action = "block",
                                      config = { cidrs = { "203.0.113.0/24", "2001:db8::/32" }, header = "x-client-ip" } },
                                    { name = "count-net", priority = 3, policy = STOCK .. "waf/ip_set.lua", action = "count",
                                      config = { cidrs = { "198.51.100.0/24" }, header = "x-client-ip" } },
                                    { name = "sqli", priority = 7, policy = "policies/body.lua", action = "block" },
                                },
                            },
                        },
                    },
                    authorizers = {
                        counting = { type = "lua", policy = "policies/counting.lua",
                            identity_sources = { "$request.header.x-token" }, ttl = 300 },
                        nocache = { type = "lua", policy = "policies/counting.lua",
                            identity_sources = { "$request.header.x-token" }, ttl = 0 },
                        iam = { type = "lua", kind = "TOKEN", policy = "policies/iam.lua", token_pattern = "^%w+$", ttl = 0 },
                    },
                    route_selection = { policy = STOCK .. "routes/header.lua",
                        config = { header = "x-version", routes = { ["2"] = "GET /v2", ["9"] = "GET /v9" } } },
                    routes = {
                        ["ANY /echo/{proxy+}"] = { integration = { type = "lua", handler = STOCK .. "examples/echo.lua" } },
                        ["GET /cached"] = { authorizer = "counting", integration = { type = "lua", handler = "policies/ctxcheck.lua" } },
                        ["GET /uncached"] = { authorizer = "nocache", integration = { type = "lua", handler = "policies/ctxcheck.lua" } },
                        ["GET /keyed"] = { authorizer = "nocache", api_key_required = true,
                            integration = { type = "mock", body = "keyed" } },
                        ["GET /{thing}"] = { authorizer = "iam", scopes = { "pets:read", "pets:write" },
                            integration = { type = "lua", handler = "policies/ctxcheck.lua" } },
                        ["ANY /proxy/{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy}" } },
                        ["GET /spin"] = { integration = { type = "lua", handler = "policies/spin.lua" } },
                        ["GET /broken"] = { integration = { type = "lua", handler = "policies/broken.lua" } },
                        ["GET /badresult"] = { integration = { type = "lua", handler = "policies/badresult.lua" } },
                        ["GET /plain"] = { integration = { type = "lua", handler = "policies/plain.lua" } },
                        ["GET /yields"] = { integration = { type = "lua", handler = "policies/yields.lua" } },
                        ["GET /stale"] = { integration = { type = "lua", handler = "policies/stale.lua" } },
                        ["GET /fresh/{x}"] = { integration = { type = "lua", handler = "policies/fresh.lua" } },
                        ["GET /v1"] = { integration = { type = "mock", body = "v1" } },
                        ["GET /v2"] = { integration = { type = "mock", body = "v2" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local function get(path, ...)
        return h.curl({ gw:url(path), ... })
    end

    describe("a Lua integration", function()
        it("gets the payload 2.0 event and answers with its result", function()
            local r = get("/echo/a/b?x=1&x=2", "-X", "POST", "-d", "hello", "-H", "Cookie: c=1", "-H", "X-Tenant: acme")
            assert.equal(200, r.status)
            assert.equal("application/json", r.headers["content-type"])
            local e = r:json()
            assert.equal("POST", e.method)
            assert.equal("/echo/a/b", e.path)
            assert.same({ x = "1,2" }, e.query)
            assert.same({ proxy = "a/b" }, e.pathParameters)
            assert.same({ "c=1" }, e.cookies)
            assert.equal("hello", e.body)
            assert.equal("ANY /echo/{proxy+}", e.routeKey)
            assert.equal(r.headers["apigw-requestid"], e.requestId)
            assert.equal("acme", e.headers["x-tenant"])
        end)

        it("turns a plain return value into 200 application/json", function()
            local r = get("/plain")
            assert.equal(200, r.status)
            assert.equal("application/json", r.headers["content-type"])
            assert.same({ ok = true, route = "GET /plain" }, r:json())
        end)

        it("answers 500 for a script error and logs the file, line and traceback", function()
            local r = get("/broken")
            h.assert_gateway_response(r, 500, "Internal Server Error", "InternalServerErrorException")
            local line = h.wait_for(function()
                local id = r.headers["apigw-requestid"]:gsub("%p", "%%%0")
                return gw.stderr():match("[^\n]*request " .. id .. "[^\n]*")
            end, 5)
            assert.matches("policies/broken.lua:2: attempt to index field 'missing'", line, 1, true)
            assert.matches("traceback: policies/broken.lua:2: in function 'lookup' | policies/broken.lua:4: in function", line, 1, true)
        end)

        it("answers 500 for a malformed result", function()
            h.assert_gateway_response(get("/badresult"), 500, "Internal Server Error", "InternalServerErrorException")
            assert.matches("malformed handler result: statusCode must be an integer between 100 and 599", gw.stderr(), 1, true)
        end)

        it("stops an endless loop with a 500 and keeps the worker serving", function()
            local r = get("/spin")
            h.assert_gateway_response(r, 500, "Internal Server Error", "InternalServerErrorException")
            -- the loop's line: the budget is counted where the loop starts over
            assert.matches("policies/spin.lua:4: instruction budget exceeded", gw.stderr(), 1, true)
            assert.equal(200, get("/plain").status)
        end)

        -- Hook coroutines are reused after a hook finishes; one a policy yielded is not.
        it("answers 500 when a policy yields by itself, and later hooks run as before", function()
            local r = get("/yields")
            h.assert_gateway_response(r, 500, "Internal Server Error", "InternalServerErrorException")
            assert.matches("the policy yielded (only moongate.http and req:body() may wait)", gw.stderr(), 1, true)
            for _ = 1, 3 do
                local p = get("/plain")
                assert.equal(200, p.status)
                assert.same({ ok = true, route = "GET /plain" }, p:json())
            end
            -- a WAF rule that waits for the body, then one that does not wait
            assert.equal(200, get("/echo/x", "--data-binary", "@" .. h.write_file(dir .. "/mid", h.payload(200000))).status)
            assert.equal(403, get("/echo/x", "-d", "1; DROP TABLE pets").status)
            assert.equal(500, get("/yields").status)
            assert.equal(200, get("/plain").status)
        end)

        it("see only their own request's fields, ctx and query (nothing left from the one before)", function()
            local first = get("/fresh/a?v=1"):json()
            assert.same({ before = "none", path = "/fresh/a", v = "1", vars = "none" }, first)
            for _, x in ipairs({ "b", "c" }) do
                local r = get("/fresh/" .. x .. "?v=" .. x)
                assert.equal(200, r.status)
                assert.same({ before = "none", path = "/fresh/" .. x, v = x, vars = "none" }, r:json())
            end
        end)

        it("refuse a request object kept past its request (an error in the policy, not a crash)", function()
            get("/stale")
            for _ = 1, 3 do
                local r = get("/stale")
                assert.equal(200, r.status)
                local why = "the request object is used after its request ended"
                local out = r:json()
                assert.matches(why, out.header, 1, true)
                assert.matches(why, out.r, 1, true)
                assert.matches(why, out.context, 1, true)
                assert.matches(why, out.path, 1, true)
                assert.matches(why, out.ctx, 1, true)
            end
            assert.equal(200, get("/plain").status)
        end)
    end)

    describe("WAF rules", function()
        it("block a listed client with 403 WAF_FILTERED, as Amazon API Gateway does", function()
            local r = get("/v1", "-H", "X-Client-Ip: 203.0.113.7")
            h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
            r = get("/v1", "-H", "X-Client-Ip: 2001:db8::1")
            assert.equal(403, r.status)
        end)

        it("let other clients through, count matches and record them in $context", function()
            local blocked = get("/v1", "-H", "X-Client-Ip: 203.0.113.7")
            local counted = get("/v1", "-H", "X-Client-Ip: 198.51.100.20")
            assert.equal(200, counted.status)
            assert.equal("v1", counted.body)
            local entries = h.wait_for(function()
                local log = h.json_log(dir .. "/logs/access.log")
                local b = h.find_entry(log, "id", blocked.headers["apigw-requestid"])
                local c = h.find_entry(log, "id", counted.headers["apigw-requestid"])
                return b and c and { b, c }
            end, 5)
            assert.is_table(entries, "no access-log lines")
            local b, c = entries[1], entries[2]
            assert.same({ "WAF_BLOCK", "403", "deny-net", "-", "403" }, { b.waf, b.wafStatus, b.rule, b.counted, b.status })
            assert.same({ "WAF_ALLOW", "200", "-", "count-net", "200" }, { c.waf, c.wafStatus, c.rule, c.counted, c.status })
        end)

        it("can read the request body", function()
            assert.equal(403, get("/echo/x", "-d", "1; DROP TABLE pets").status)
            assert.equal(200, get("/echo/x", "-d", "harmless").status)
            -- a body that arrives after "100 Continue"
            local r = get("/echo/x", "-H", "Expect: 100-continue", "--data-binary", "@" .. h.write_file(dir .. "/big", h.payload(300000)))
            assert.equal(200, r.status)
            assert.equal(300000, #r:json().body)
        end)

        it("change the headers the backend receives", function()
            local r = get("/proxy/anything", "-H", "X-Drop-Me: 1")
            assert.equal(200, r.status)
            local e = r:echo()
            assert.equal("yes", e.headers["x-waf-seen"])
            assert.is_nil(e.headers["x-drop-me"])
        end)
    end)

    describe("authorizers", function()
        it("answer 401 when the identity source is missing, without running", function()
            h.assert_gateway_response(get("/cached"), 401, "Unauthorized", "UnauthorizedException")
        end)

        it("allow with a context that reaches the integration and $context.authorizer.*", function()
            local r = get("/cached", "-H", "X-Token: alice")
            assert.equal(200, r.status)
            local ctx = r:json()
            assert.equal("alice", ctx.token)
            assert.is_true(ctx.inspected) -- req.ctx is shared by the request's hooks
            local e = h.wait_for(function()
                return h.find_entry(h.json_log(dir .. "/logs/access.log"), "id", r.headers["apigw-requestid"])
            end, 5)
            assert.same({ "alice", "200", "alice" }, { e.token, e.authzStatus, e.who })
        end)

        it("cache decisions per identity for the TTL, and not with ttl = 0", function()
            local first = get("/cached", "-H", "X-Token: carol"):json().calls
            local again = get("/cached", "-H", "X-Token: carol"):json().calls
            assert.equal(first, again)
            local other = get("/cached", "-H", "X-Token: dave"):json().calls
            assert.is_true(tonumber(other) > tonumber(first))
            local u1 = get("/uncached", "-H", "X-Token: erin"):json().calls
            local u2 = get("/uncached", "-H", "X-Token: erin"):json().calls
            assert.equal(tonumber(u1) + 1, tonumber(u2))
        end)

        it("deny with 403, error(\"Unauthorized\") with 401, failures with 500 AUTHORIZER_FAILURE", function()
            h.assert_gateway_response(get("/uncached", "-H", "X-Token: deny"), 403, "Forbidden", "AccessDeniedException")
            h.assert_gateway_response(get("/uncached", "-H", "X-Token: unauthorized"), 401, "Unauthorized", "UnauthorizedException")
            local r = get("/uncached", "-H", "X-Token: boom")
            h.assert_gateway_response(r, 500, "Internal Server Error", "AuthorizerFailureException")
            assert.matches("policies/counting.lua:7: token store unavailable", gw.stderr(), 1, true)
            h.assert_gateway_response(get("/uncached", "-H", "X-Token: bad-shape"), 500, "Internal Server Error", "AuthorizerFailureException")
            local e = h.wait_for(function()
                return h.find_entry(h.json_log(dir .. "/logs/access.log"), "id", r.headers["apigw-requestid"])
            end, 5)
            assert.equal("500", e.authzStatus)
            assert.matches("token store unavailable", e.authzError, 1, true)
        end)

        it("evaluate IAM policies for TOKEN authorizers, with the route's scopes", function()
            local r = get("/pets", "-H", "Authorization: bob")
            assert.equal(200, r.status)
            assert.same({ scopes = "pets:read pets:write", inspected = true }, r:json())
            local denied = get("/secret", "-H", "Authorization: bob")
            h.assert_gateway_response(denied, 403,
                "User is not authorized to access this resource with an explicit deny", "AccessDeniedException")
            assert.equal(401, get("/pets", "-H", "Authorization: not a word").status)
            assert.equal(401, get("/pets").status)
        end)

        it("hand the usage identifier key to API-key checks", function()
            assert.equal("keyed", get("/keyed", "-H", "X-Token: key-user").body)
            h.assert_gateway_response(get("/keyed", "-H", "X-Token: someone"), 403, "Forbidden", "ForbiddenException")
        end)
    end)

    describe("route selection", function()
        it("picks the route the selector names, else the route keys decide", function()
            assert.equal("v2", get("/v1", "-H", "X-Version: 2").body)
            assert.equal("v1", get("/v1").body)
        end)

        it("answers 404 for a key the API does not have (no $default route)", function()
            h.assert_not_found(get("/v1", "-H", "X-Version: 9"))
        end)
    end)

    describe("log policies", function()
        it("add $context.custom values to the line", function()
            local r = get("/v1", "-H", "X-Tenant: acme")
            local e = h.wait_for(function()
                return h.find_entry(h.json_log(dir .. "/logs/access.log"), "id", r.headers["apigw-requestid"])
            end, 5)
            assert.equal("acme", e.tenant)
            assert.equal("GET /v1", e.route)
            assert.equal("none", e.who) -- no authorizer: req.authorizer is nil
        end)
    end)
end)

describe("a JSON log policy", function()
    it("writes whole lines, also for requests the gateway rejected", function()
        local dir = h.tmpdir()
        local gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "j" } },
            apis = { j = {
                stages = { ["$default"] = { access_log = { path = dir .. "/json.log", policy = STOCK .. "log/json.lua",
                    config = { fields = { id = "requestId", status = "status", type = "error.responseType" },
                               static = { service = "j" } } } } },
                routes = { ["GET /ok"] = { integration = { type = "mock", body = "ok" } } },
            } },
        }, { dir = dir })
        local ok = h.curl({ gw:url("/ok") })
        local missing = h.curl({ gw:url("/missing") })
        h.stop_all(gw)
        local lines = log_lines(dir .. "/json.log")
        assert.same({
            string.format('{"id":"%s","service":"j","status":"200","type":null}', ok.headers["apigw-requestid"]),
            string.format('{"id":"%s","service":"j","status":"404","type":"RESOURCE_NOT_FOUND"}', missing.headers["apigw-requestid"]),
        }, lines)
    end)
end)

describe("lua.path", function()
    it("lets policies require modules from more directories, loaded with the budget", function()
        local dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/shared/acme") .. " " .. h.sh_quote(dir .. "/policies"))
        h.write_file(dir .. "/shared/acme/greet.lua",
            "local M = {}\nfunction M.greet(n) return 'hello ' .. n end\nfunction M.spin() while true do end end\nreturn M")
        h.write_file(dir .. "/policies/h.lua", [[
local greet = require "acme.greet"
return { handle = function(event)
  if event.rawPath == "/spin" then greet.spin() end
  return { statusCode = 200, body = greet.greet("moon") }
end }]])
        local gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "l" } },
            lua = { path = { "shared" }, instruction_budget = 50000 },
            apis = { l = { stages = { ["$default"] = {} },
                routes = { ["$default"] = { integration = { type = "lua", handler = "policies/h.lua" } } } } },
        }, { dir = dir })
        local ok = h.curl({ gw:url("/x") })
        local spin = h.curl({ gw:url("/spin") })
        h.stop_all(gw)
        assert.equal("hello moon", ok.body)
        assert.equal(500, spin.status)
        assert.matches("shared/acme/greet.lua:3: instruction budget exceeded", gw.stderr(), 1, true)
    end)
end)
