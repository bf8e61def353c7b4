-- Hot reload (README "Hot reload"): `moongate reload`, SIGHUP and POST /reload swap in
-- a new generation at request boundaries; in-flight requests finish on their old
-- generation; a bad generation is rejected with its errors while the old one keeps
-- serving; 20 reloads under a steady keep-alive load lose no request; `watch = true`
-- reloads on a policy change.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

-- A Lua integration that answers "version N" (after waiting `wait` ms at the upstream).
local function versioned(n)
    return string.format([[
local http = require "moongate.http"
local M = {}
function M.handle(event, conf)
  local wait = tonumber(event.queryStringParameters and event.queryStringParameters.wait or "0")
  if wait > 0 then
    local res, err = http.get(conf.upstream .. "/slow?ms=" .. wait)
    if not res then error(err) end
  end
  return { statusCode = 200, headers = { ["content-type"] = "text/plain" }, body = "version %d" }
end
M.schema = { type = "record", fields = { upstream = { type = "string", required = true, description = "origin" } } }
return M
]], n)
end

local function config(t)
    return h.serialize({
        workers = 2,
        watch = t.watch,
        listen = { { address = "127.0.0.1", port = t.port, api = "r" } },
        management = { address = "127.0.0.1", port = t.mport },
        apis = { r = {
            stages = { ["$default"] = {} },
            routes = {
                ["GET /v"] = { integration = { type = "lua", handler = "policies/versioned.lua",
                    config = { upstream = t.upstream } } },
                ["GET /mock"] = { integration = { type = "mock", body = t.mock or "mock 1" } },
            },
        } },
    })
end

describe("hot reload", function()
    local gw, up, dir, port, mport, upstream

    local function write_config(t)
        t.port, t.mport, t.upstream = port, mport, upstream
        h.write_file(dir .. "/gateway.lua", "return " .. config(t))
    end

    local function write_policy(n)
        h.write_file(dir .. "/policies/versioned.lua", versioned(n))
    end

    -- -p: the token file the gateway generated is in its state_dir, under the prefix.
    local function reload()
        return h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })
    end

    local function body(path)
        return h.curl({ gw:url(path or "/v") }).body
    end

    lazy_setup(function()
        up = h.start_upstream()
        upstream = up.origin
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        port, mport = h.free_port(), h.free_port()
        write_policy(1)
        write_config({})
        gw = h.start_gateway(h.read_file(dir .. "/gateway.lua"), { dir = dir, ports = { port } })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    it("moongate reload swaps in a changed policy and prints what it did", function()
        assert.equal("version 1", body())
        write_policy(2)
        local out, rc = reload()
        assert.equal(0, rc, out)
        assert.matches("gateway.lua: reloaded %(generation %d+%)", out)
        assert.equal("version 2", body())
    end)

    it("SIGHUP and POST /reload reload too", function()
        write_config({ mock = "mock 2" })
        gw:signal("HUP")
        assert.truthy(h.wait_for(function() return body("/mock") == "mock 2" end, 5))
        write_config({ mock = "mock 3" })
        local auth = "Authorization: Bearer " .. h.read_file(dir .. "/state/management.token"):gsub("%s+$", "")
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/reload", "-X", "POST", "-H", auth })
        assert.equal(200, r.status)
        assert.equal("mock 3", body("/mock"))
        local st = h.curl({ "http://127.0.0.1:" .. mport .. "/status", "-H", auth }):json()
        assert.equal("running", st.status)
        assert.is_number(st.generation)
    end)

    it("rejects a policy with a syntax error: errors printed, exit 1, the old generation serves", function()
        local before = body()
        h.write_file(dir .. "/policies/versioned.lua", "local M = {}\nfunction M.handle(\nreturn M\n")
        local out, rc = reload()
        assert.equal(1, rc)
        assert.matches('apis.r.routes["GET /v"].integration.handler: policies/versioned.lua:3: ', out, 1, true)
        assert.equal(before, body())
        assert.matches("reload rejected, generation %d+ keeps serving: .*policies/versioned.lua:3:", gw.stderr())
    end)

    it("rejects a configuration that fails its schema, or changes the listeners", function()
        write_policy(3)
        h.write_file(dir .. "/gateway.lua", "return " .. config({ port = port, mport = mport, upstream = upstream })
            :gsub('upstream = "', 'upstrem = "', 1))
        local out, rc = reload()
        assert.equal(1, rc)
        assert.matches('integration.config.upstream: is required', out, 1, true)
        assert.matches('integration.config.upstrem: unknown key (did you mean "upstream"?)', out, 1, true)
        h.write_file(dir .. "/gateway.lua", "return " .. config({ port = h.free_port(), mport = mport, upstream = upstream }))
        out, rc = reload()
        assert.equal(1, rc)
        assert.matches("listen[1]: changing the listeners needs a restart", out, 1, true)
        write_config({})
        out, rc = reload()
        assert.equal(0, rc, out)
        assert.equal("version 3", body())
    end)

    it("lets in-flight requests finish on the generation they started with", function()
        write_policy(4)
        assert.equal(0, select(2, reload()))
        local slow = h.curl_background({ gw:url("/v?wait=1500") })
        assert.truthy(h.wait_for(function() return h.connections_to(up.port) > 0 end, 5))
        write_policy(5)
        local out, rc = reload()
        assert.equal(0, rc, out)
        assert.equal("version 5", body())
        local r = slow.result()
        assert.equal(200, r.status)
        assert.equal("version 4", r.body)
    end)

    it("loses no request over 20 reloads under a steady keep-alive load", function()
        local stop, out = dir .. "/stop", dir .. "/load.json"
        os.remove(stop)
        os.remove(out)
        local load = h.spawn({ "luajit", here .. "load_client.lua", tostring(port), "/v", "4", stop, out }, dir, "load")
        assert.truthy(h.wait_for(function() return h.connections_to(port) >= 4 end, 5))
        for i = 1, 20 do
            write_policy(100 + i)
            local text, rc = reload()
            assert.equal(0, rc, text)
            assert.equal("version " .. (100 + i), body(), "reload " .. i)
        end
        h.write_file(stop, "")
        assert.truthy(load:wait(20))
        local summary = h.json_decode(h.read_file(out))
        assert.same({}, summary.failures)
        assert.equal(0, summary.failed)
        assert.equal(0, summary.reconnects)
        -- the load ran across the reloads: it saw most of the generations
        local versions = 0
        for _ in pairs(summary.bodies) do versions = versions + 1 end
        print(string.format("# load: %d requests, %d versions seen", summary.ok, versions))
        assert.is_true(summary.ok > 100, "the load made " .. summary.ok .. " requests")
        assert.is_true(versions >= 10, "the load saw " .. versions .. " generations")
    end)

    it("reloads by itself with watch = true when a policy file changes", function()
        write_config({ watch = true })
        assert.equal(0, select(2, reload()))
        write_policy(200)
        assert.truthy(h.wait_for(function() return body() == "version 200" end, 10))
        write_policy(201)
        assert.truthy(h.wait_for(function() return body() == "version 201" end, 10))
    end)
end)

describe("moongate reload without a management listener", function()
    it("says how to reload instead, and exits 1", function()
        local dir = h.tmpdir()
        local path = h.write_file(dir .. "/g.lua", 'return { apis = { a = { stages = { ["$default"] = {} }, routes = { ["$default"] = { integration = { type = "mock" } } } } } }')
        local out, rc = h.moongate({ "reload", "-c", path })
        assert.equal(1, rc)
        assert.matches("no management listener: set management = { port = N } (or send the running gateway SIGHUP)", out, 1, true)
    end)
end)

describe("a reload keeps what did not change", function()
    local gw, dir, port, mport

    -- The authorizer counts its runs (one worker) and reports the count; its helper
    -- module, required from policies/lib, says which version answers.
    local AUTHZ = [[
local lib = require "lib.answer"
local instance = tostring({}) -- differs between generations: each loads the policy anew
return { authorize = function(req, conf, auth)
  return { isAuthorized = true, context = { instance = instance, version = lib.version, mode = conf.mode } }
end, schema = { type = "record", fields = { mode = { type = "string", default = "a", description = "a label" } } } }
]]

    local function write(mode, mock, lib_version)
        h.write_file(dir .. "/policies/lib/answer.lua", "return { version = " .. lib_version .. " }")
        h.write_file(dir .. "/gateway.lua", "return " .. h.serialize({
            workers = 1,
            listen = { { address = "127.0.0.1", port = port, api = "k" } },
            management = { address = "127.0.0.1", port = mport },
            apis = { k = {
                stages = { ["$default"] = {} },
                authorizers = { count = { type = "lua", policy = "policies/count.lua", ttl = 300,
                    identity_sources = { "$request.header.x-user" }, config = { mode = mode } } },
                routes = {
                    ["GET /who"] = { authorizer = "count", integration = { type = "lua",
                        handler = h.root .. "/policies/examples/echo.lua" } },
                    ["GET /mock"] = { integration = { type = "mock", body = mock } },
                },
            } },
        }))
    end

    local function who()
        return h.curl({ gw:url("/who"), "-H", "X-User: ann" }):json().authorizer
    end

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies/lib"))
        h.write_file(dir .. "/policies/count.lua", AUTHZ)
        port, mport = h.free_port(), h.free_port()
        write("a", "m1", 1)
        gw = h.start_gateway(h.read_file(dir .. "/gateway.lua"), { dir = dir, ports = { port } })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("keeps an unchanged authorizer's cache, and drops a changed one's", function()
        local first = who()
        assert.same({ "1", "a" }, { first.version, first.mode })
        write("a", "m2", 1) -- only a route changed
        assert.equal(0, select(2, h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })))
        assert.equal("m2", h.curl({ gw:url("/mock") }).body)
        assert.same(first, who()) -- the decision the old generation's policy made, from the cache
        write("b", "m2", 1) -- the authorizer's config changed: a new cache
        assert.equal(0, select(2, h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })))
        local changed = who()
        assert.equal("b", changed.mode)
        assert.are_not.equal(first.instance, changed.instance)
    end)

    it("loads the new version of a module a policy requires", function()
        write("c", "m3", 2)
        assert.equal(0, select(2, h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })))
        assert.same({ "2", "c" }, { who().version, who().mode })
    end)
end)
