-- moongate.http through the real binary (README "moongate.http"): hooks call other
-- services without blocking the worker, with timeouts; a client that goes away
-- while its hook waits cancels the call cleanly.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local socket = require "socket"

local POLICIES = {
    -- Introspects the caller's token at the fake upstream (which echoes the request).
    ["introspect.lua"] = [[
local http = require "moongate.http"
local cjson = require "cjson"
local M = {}
M.schema = { type = "record", fields = { url = { type = "string", required = true, description = "introspection URL" } } }
function M.authorize(req, conf, auth)
  local res, err = http.post(conf.url, "token=" .. auth.identity_source[1],
    { headers = { ["content-type"] = "application/x-www-form-urlencoded", ["x-token"] = auth.identity_source[1] }, timeout = 5 })
  if not res then error("introspection failed: " .. err) end
  local seen = cjson.decode(res.body)
  return { isAuthorized = res.status == 200 and seen.headers["x-token"] ~= "revoked",
           context = { sub = seen.headers["x-token"], bodyLength = seen.bodyLength, target = seen.target } }
end
return M
]],
    -- Fetches a URL from a header and answers with what came back, or the error.
    ["fetch.lua"] = [[
local http = require "moongate.http"
local cjson = require "cjson"
return { handle = function(event)
  local t = tonumber(event.headers["x-timeout"] or "5")
  local res, err = http.get(event.headers["x-url"], { timeout = t })
  if not res then return { statusCode = 502, body = "fetch failed: " .. err } end
  return { statusCode = 200, headers = { ["x-upstream-status"] = res.status },
           body = cjson.encode({ status = res.status, ct = res.headers["content-type"], len = #res.body }) }
end }
]],
    ["misuse.lua"] = [[
local http = require "moongate.http"
return { handle = function() return http.get("ftp://example.test/") end }
]],
    ["logwait.lua"] = [[
-- A log policy may not wait: the call raises an error (log hooks run as the request ends).
local http = require "moongate.http"
return { log = function(ctx, conf)
  if ctx.request:header("x-log-call") then
    local ok, err = pcall(http.get, conf.url)
    return { waited = ok and "called" or tostring(err):gsub("^.-: ", "") }
  end
end }
]],
}

describe("moongate.http", function()
    local gw, up, dir

    lazy_setup(function()
        up = h.start_upstream(nil, { raw_log = true })
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        gw = h.start_gateway({
            workers = 1, -- one event loop: "served meanwhile" proves the call did not block it
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
            apis = { a = {
                stages = { ["$default"] = { access_log = { path = dir .. "/access.log",
                    format = '{"id":"$context.requestId","waited":"$context.custom.waited"}',
                    policy = "policies/logwait.lua", config = { url = up.origin .. "/x" } } } },
                authorizers = {
                    idp = { type = "lua", policy = "policies/introspect.lua", ttl = 0,
                            identity_sources = { "$request.header.x-token" },
                            config = { url = up.origin .. "/introspect" } },
                    slow = { type = "lua", policy = "policies/introspect.lua", ttl = 0,
                             identity_sources = { "$request.header.x-token" },
                             config = { url = up.origin .. "/slow?ms=1500" } },
                },
                routes = {
                    ["GET /private"] = { authorizer = "idp", integration = { type = "mock", body = "secret" } },
                    ["ANY /slow-auth"] = { authorizer = "slow", integration = { type = "mock", body = "slow" } },
                    ["GET /fetch"] = { integration = { type = "lua", handler = "policies/fetch.lua" } },
                    ["GET /short"] = { integration = { type = "lua", handler = "policies/fetch.lua", timeout_ms = 300 } },
                    ["GET /misuse"] = { integration = { type = "lua", handler = "policies/misuse.lua" } },
                    ["GET /fast"] = { integration = { type = "mock", body = "fast" } },
                },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    it("lets an authorizer call an introspection endpoint", function()
        local r = h.curl({ gw:url("/private"), "-H", "X-Token: alice" })
        assert.equal(200, r.status)
        assert.equal("secret", r.body)
        h.assert_gateway_response(h.curl({ gw:url("/private"), "-H", "X-Token: revoked" }), 403, "Forbidden",
            "AccessDeniedException")
    end)

    it("serves other requests while a hook waits", function()
        local slow = h.curl_background({ gw:url("/slow-auth"), "-H", "X-Token: alice" })
        h.wait_for(function() return h.connections_to(up.port) > 0 end, 5)
        local t0 = socket.gettime()
        local fast = h.curl({ gw:url("/fast") })
        local fast_done = socket.gettime()
        assert.equal("fast", fast.body)
        assert.is_nil(slow.exited(), "the slow request finished before the fast one")
        local r = slow.result()
        assert.equal(200, r.status)
        assert.equal("slow", r.body)
        assert.is_true(fast_done - t0 < 1.5)
    end)

    it("returns a timeout as nil, err, bounded by the hook's deadline", function()
        local r = h.curl({ gw:url("/fetch"), "-H", "X-Url: " .. up.origin .. "/slow?ms=3000", "-H", "X-Timeout: 0.2" })
        assert.equal(502, r.status)
        assert.equal("fetch failed: timeout", r.body)
        -- timeout_ms = 300 on the route wins over the call's 5 s
        r = h.curl({ gw:url("/short"), "-H", "X-Url: " .. up.origin .. "/slow?ms=3000" })
        assert.equal(502, r.status)
        assert.equal("fetch failed: timeout", r.body)
    end)

    it("returns a refused connection as nil, err", function()
        local r = h.curl({ gw:url("/fetch"), "-H", "X-Url: http://127.0.0.1:" .. h.free_port() .. "/" })
        assert.equal(502, r.status)
        assert.matches("^fetch failed: connect to 127.0.0.1:%d+ failed: connection refused$", r.body)
    end)

    it("reads status, headers and body of the response", function()
        local r = h.curl({ gw:url("/fetch"), "-H", "X-Url: " .. up.origin .. "/status/404" })
        assert.equal(200, r.status)
        assert.equal("404", r.headers["x-upstream-status"])
        assert.same({ status = 404, ct = "application/json", len = #'{"status":404}' }, r:json())
        r = h.curl({ gw:url("/fetch"), "-H", "X-Url: " .. up.origin .. "/chunked" })
        assert.equal(#"hello chunked world", r:json().len)
    end)

    it("raises an error for misuse (a URL that is not http:// or https://)", function()
        h.assert_gateway_response(h.curl({ gw:url("/misuse") }), 500, "Internal Server Error", "InternalServerErrorException")
        assert.matches("url must be an absolute http:// or https:// URL", gw.stderr(), 1, true)
    end)

    it("raises an error when a log policy calls it (log hooks may not wait)", function()
        local r = h.curl({ gw:url("/fast"), "-H", "x-log-call: 1" })
        assert.equal(200, r.status)
        local id = r.headers["apigw-requestid"]
        local e = h.wait_for(function() return h.find_entry(h.json_log(dir .. "/access.log"), "id", id) end, 5)
        assert.is_table(e, "no access-log line")
        assert.matches("can only be waited for from the hook itself", e.waited, 1, true)
    end)

    it("cancels the call when the client goes away, and keeps serving", function()
        -- The gateway reads while the body is due, so it sees the client go.
        -- Wait until the authorizer's call has reached the backend (a pooled connection
        -- left by the tests before may be open already, so counting connections is not
        -- enough), then close the client while the backend still holds the answer.
        local function slow_calls()
            local n = 0
            for _ in up.received():gmatch("/slow%?ms=1500") do n = n + 1 end
            return n
        end
        local before = slow_calls()
        local c = h.connect(gw.port)
        c:send("POST /slow-auth HTTP/1.1\r\nHost: a\r\nX-Token: bob\r\nContent-Length: 100\r\n\r\n")
        assert.truthy(h.wait_for(function() return slow_calls() > before end, 5))
        c.sock:setoption("linger", { on = true, timeout = 0 }) -- close with a reset
        c:close()
        -- the gateway drops its connection to the upstream without waiting for the answer
        assert.truthy(h.wait_for(function() return h.connections_to(up.port) == 0 end, 1.2))
        assert.equal("fast", h.curl({ gw:url("/fast") }).body)
        assert.equal(200, h.curl({ gw:url("/private"), "-H", "X-Token: alice" }).status)
    end)
end)
