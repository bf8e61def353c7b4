-- moongate.http over https:// and its keep-alive pool (README "moongate.http"): a Lua
-- hook calls an https backend (the fake upstream with --tls and the test PKI's localhost
-- certificate) verified against a ca_file, two calls share one pooled connection (the
-- upstream numbers its connections), the system store refuses the test root, and an
-- unreadable ca_file is misuse.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local POLICIES = {
    -- Calls conf.url twice and answers with what the upstream saw of both calls.
    ["twice.lua"] = [[
local http = require "moongate.http"
local cjson = require "cjson"
local M = {}
M.schema = { type = "record", fields = {
  url = { type = "string", required = true, description = "the https backend" },
  ca_file = { type = "string", description = "its CA bundle" } } }
function M.handle(event, conf)
  local seen = {}
  for i = 1, 2 do
    local res, err = http.get(conf.url .. "/call" .. i, { ca_file = conf.ca_file, headers = { ["x-call"] = tostring(i) } })
    if not res then return { statusCode = 502, body = "call " .. i .. " failed: " .. err } end
    local echo = cjson.decode(res.body)
    seen[i] = { status = res.status, connection = echo.connection, target = echo.target,
                host = echo.headers.host, call = echo.headers["x-call"], upstream = res.headers["x-upstream"] }
  end
  return { statusCode = 200, body = cjson.encode(seen) }
end
return M
]],
    -- One call to conf.url with the ca_file given (or the system store).
    ["once.lua"] = [[
local http = require "moongate.http"
local cjson = require "cjson"
local M = {}
M.schema = { type = "record", fields = {
  url = { type = "string", required = true, description = "the https backend" },
  ca_file = { type = "string", description = "its CA bundle" } } }
function M.handle(event, conf)
  local res, err = http.post(conf.url .. "/once", "ping", { ca_file = conf.ca_file })
  if not res then return { statusCode = 502, body = "fetch failed: " .. err } end
  local echo = cjson.decode(res.body)
  return { statusCode = 200, body = cjson.encode({ connection = echo.connection, body = echo.body }) }
end
return M
]],
}

describe("moongate.http over https", function()
    local gw, up, dir, pki

    lazy_setup(function()
        pki = h.tmpdir()
        local out, rc = h.run("sh " .. h.sh_quote(h.root .. "/tests/e2e/tls_certs.sh") .. " " .. h.sh_quote(pki))
        assert(rc == 0, "tls_certs.sh failed: " .. out .. "\n" .. (h.read_file(pki .. "/gen.log") or ""))
        up = h.start_upstream(nil, { tls = { cert = pki .. "/localhost.pem", key = pki .. "/localhost.key" } })
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        for name, src in pairs(POLICIES) do
            h.write_file(dir .. "/policies/" .. name, src)
        end
        local ca = pki .. "/root.pem"
        local function lua(policy, config)
            return { integration = { type = "lua", handler = "policies/" .. policy, config = config } }
        end
        gw = h.start_gateway({
            workers = 1, -- one worker: one pool, so pooled connections are visible across requests
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
            apis = { a = {
                stages = { ["$default"] = {} },
                routes = {
                    ["GET /twice"] = lua("twice.lua", { url = up.origin, ca_file = ca }),
                    ["GET /once"] = lua("once.lua", { url = up.origin, ca_file = ca }),
                    ["GET /system"] = lua("once.lua", { url = up.origin }),
                    ["GET /bad-ca"] = lua("once.lua", { url = up.origin, ca_file = dir .. "/missing.pem" }),
                },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    it("calls an https backend verified against ca_file, twice on one pooled connection", function()
        local r = h.curl({ gw:url("/twice") })
        assert.equal(200, r.status, r.body)
        local seen = r:json()
        assert.equal(200, seen[1].status)
        assert.equal("/call1", seen[1].target)
        assert.equal("1", seen[1].call)
        assert.equal("/call2", seen[2].target)
        assert.equal("2", seen[2].call)
        assert.equal("test-upstream", seen[2].upstream)
        assert.equal("localhost:" .. up.port, seen[1].host)
        -- the upstream numbers the TLS connections it accepted: both calls came on one
        assert.is_number(seen[1].connection)
        assert.equal(seen[1].connection, seen[2].connection)
        -- and the connection stays in the worker's pool for the next request's calls
        local again = h.curl({ gw:url("/once") })
        assert.equal(200, again.status, again.body)
        assert.same({ connection = seen[1].connection, body = "ping" }, again:json())
        assert.equal(1, h.connections_to(up.port))
    end)

    it("refuses the backend against the system store (the test root is not in it)", function()
        local r = h.curl({ gw:url("/system") })
        assert.equal(502, r.status)
        assert.matches("^fetch failed: TLS with localhost:" .. up.port .. ": ", r.body)
        assert.matches("TLS handshake failed: unable to get local issuer certificate", r.body, 1, true)
    end)

    it("raises an error for a ca_file it cannot load", function()
        h.assert_gateway_response(h.curl({ gw:url("/bad-ca") }), 500, "Internal Server Error",
            "InternalServerErrorException")
        assert.matches("ca_file: cannot load CA bundle", gw.stderr(), 1, true)
    end)
end)
