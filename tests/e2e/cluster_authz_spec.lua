-- The shared authorizer caches (README "Running a cluster", shared_cache): a decision one
-- node's Lua authorizer made, or a token one node's JWT authorizer verified, is a cache
-- hit on another node; identity values and tokens never reach Redis; Redis down, every
-- node still authorizes; the configuration errors.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cl = require "cluster"

-- The token says what the authorizer decides; every run is counted in the context.
local POLICY = [[
local M = {}
function M.authorize(req, conf, auth)
  local token = auth.identity_source[1]
  return { isAuthorized = token:sub(1, 5) ~= "deny-", context = { who = token:sub(-4) } }
end
return M
]]

local function conf(shared)
    return {
        listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
        apis = { a = {
            stages = { ["$default"] = {} },
            authorizers = { decide = { type = "lua", policy = "decide.lua",
                identity_sources = { "$request.header.x-token" }, ttl = 300, shared_cache = shared } },
            routes = { ["GET /x"] = { authorizer = "decide",
                integration = { type = "mock", body = "ok" } } },
        } },
    }
end

local function start(n, redis, shared)
    local opts = {}
    for i = 1, n do
        opts[i] = { dir = h.tmpdir() }
        h.write_file(opts[i].dir .. "/decide.lua", POLICY)
    end
    return cl.start_nodes(n, redis, function() return conf(shared) end, opts)
end

local function get(node, token)
    return h.curl({ node:url("/x"), "-H", "x-token: " .. token }).status
end

-- The authorizer's cache lookups (result "hit" or "miss") on node; authorizer "decide"
-- unless named.
local function cache(node, result, authorizer)
    return cl.metric(node, "moongate_authorizer_cache_total",
        { api = "a", authorizer = authorizer or "decide", result = result }) or 0
end

describe("shared authorizer cache #e2e", function()
    it("makes one node's decision a hit on the others, allow and deny alike", function()
        local redis = cl.start_redis()
        local nodes = start(3, redis, true)
        local ok, err = pcall(function()
            assert.truthy(cl.wait_up(nodes), nodes[1].stderr())
            assert.equal(200, get(nodes[1], "alice-token-1234"))
            assert.equal(403, get(nodes[1], "deny-mallory-0000"))
            assert.equal(2, cache(nodes[1], "miss"))
            -- the writes are fire-and-forget: wait until Redis has both
            assert.truthy(h.wait_for(function()
                local n = 0
                for _ in redis:cli("KEYS", "moongate:authz:*"):gmatch("%S+") do n = n + 1 end
                return n >= 2
            end, 5), redis:cli("KEYS", "*"))
            for i = 2, 3 do
                assert.equal(200, get(nodes[i], "alice-token-1234"))
                assert.equal(403, get(nodes[i], "deny-mallory-0000"))
                assert.equal(2, cache(nodes[i], "hit"))
                assert.equal(0, cache(nodes[i], "miss"))
            end
            -- a token no node has seen runs the authorizer
            assert.equal(200, get(nodes[2], "bob-token-5678"))
            assert.equal(1, cache(nodes[2], "miss"))

            -- nothing in Redis names a token
            local dump = ""
            for key in redis:cli("KEYS", "moongate:authz:*"):gmatch("%S+") do
                dump = dump .. key .. " " .. redis:cli("GET", key)
            end
            assert.falsy(dump:find("alice", 1, true), dump)
            assert.falsy(dump:find("mallory", 1, true), dump)
            assert.truthy(dump:find('"allowed":true', 1, true), dump)

            -- Redis gone: every node authorizes by itself
            redis:stop()
            assert.truthy(h.wait_for(function()
                return nodes[3].stderr():find("is unreachable", 1, true)
            end, 5))
            assert.equal(200, get(nodes[3], "carol-token-9999"))
            assert.equal(1, cache(nodes[3], "miss"))
        end)
        cl.finish(nodes, redis, ok, err)
    end)

    it("keeps each node's cache its own without shared_cache", function()
        local redis = cl.start_redis()
        local nodes = start(2, redis, false)
        local ok, err = pcall(function()
            assert.truthy(cl.wait_up(nodes), nodes[1].stderr())
            assert.equal(200, get(nodes[1], "alice-token-1234"))
            assert.equal(200, get(nodes[2], "alice-token-1234"))
            assert.equal(1, cache(nodes[2], "miss"))
            assert.equal("", redis:cli("KEYS", "moongate:authz:*"):gsub("%s+", ""))
        end)
        cl.finish(nodes, redis, ok, err)
    end)

    it("refuses shared_cache without cluster or without a cache", function()
        local dir = h.tmpdir()
        h.write_file(dir .. "/decide.lua", POLICY)
        local c = conf(true)
        local path = h.write_file(dir .. "/gateway.lua", h.config_source(c))
        local out, code = h.moongate({ "check", "-c", path, "-p", dir })
        assert.are_not.equal(0, code)
        assert.truthy(out:find("apis.a.authorizers.decide.shared_cache: needs cluster", 1, true), out)
        c.cluster = { node_id = "a", redis = {} }
        c.apis.a.authorizers.decide.ttl = 0
        path = h.write_file(dir .. "/gateway.lua", h.config_source(c))
        out, code = h.moongate({ "check", "-c", path, "-p", dir })
        assert.are_not.equal(0, code)
        assert.truthy(out:find("apis.a.authorizers.decide.shared_cache: needs ttl > 0", 1, true), out)
    end)

    describe("of a JWT authorizer", function()
        local PYTHON, MINT = "/usr/bin/python3", h.root .. "/tests/e2e/jwt_mint.py"
        local cjson = require "cjson"

        -- RS256 keys (a jwks_file each node reads from its own directory) and tokens.
        local function keys_and_tokens(requests)
            local keys = h.tmpdir() .. "/keys"
            local out, rc = h.run(PYTHON .. " " .. h.sh_quote(MINT) .. " keys " .. h.sh_quote(keys) .. " 2>&1")
            assert(rc == 0, out)
            local req = h.write_file(keys .. "/requests.json", cjson.encode(requests))
            out, rc = h.run(PYTHON .. " " .. h.sh_quote(MINT) .. " mint " .. h.sh_quote(keys) .. " <" .. h.sh_quote(req) .. " 2>&1")
            assert(rc == 0, out)
            return keys, cjson.decode(out)
        end

        local function jwt_conf(keys, shared)
            return {
                listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
                apis = { a = {
                    stages = { ["$default"] = {} },
                    authorizers = { jwt = { type = "jwt", issuer = "https://idp.test/realm", audience = { "pets" },
                        jwks_file = keys .. "/jwks.json", shared_cache = shared } },
                    routes = {
                        ["GET /x"] = { authorizer = "jwt", integration = { type = "mock", body = "ok" } },
                        ["GET /admin"] = { authorizer = "jwt", scopes = { "admin" },
                            integration = { type = "mock", body = "ok" } },
                    },
                } },
            }
        end

        local function jget(node, token, path)
            local r = h.curl({ node:url(path or "/x"), "-H", "Authorization: Bearer " .. token })
            return r.status, r.headers["www-authenticate"]
        end

        local function jcache(node, result) return cache(node, result, "jwt") end

        it("makes a token one node verified a hit on the others, and nothing else", function()
            local keys, T = keys_and_tokens({
                good = { alg = "RS256", key = "rsa", kid = "rsa" },
                other = { alg = "RS256", key = "rsa", kid = "rsa", header = { n = 2 } },
                third = { alg = "RS256", key = "rsa", kid = "rsa", header = { n = 3 } },
            })
            -- one byte of the signature changed: never verified, so never shared
            local forged = T.good:sub(1, -3) .. (T.good:sub(-2, -2) == "A" and "B" or "A") .. T.good:sub(-1)
            local redis = cl.start_redis()
            local nodes = cl.start_nodes(2, redis, function() return jwt_conf(keys, true) end)
            local ok, err = pcall(function()
                assert.truthy(cl.wait_up(nodes), nodes[1].stderr())
                assert.equal(200, jget(nodes[1], T.good))
                assert.equal(1, jcache(nodes[1], "miss"))
                assert.truthy(h.wait_for(function()
                    return redis:cli("KEYS", "moongate:jwt:*"):find("moongate:jwt:%x+:%x+") ~= nil
                end, 5), redis:cli("KEYS", "*"))
                -- node 2: a hit from Redis (no signature check), then its own cache
                assert.equal(200, jget(nodes[2], T.good))
                assert.equal(200, jget(nodes[2], T.good))
                assert.equal(2, jcache(nodes[2], "hit"))
                assert.equal(0, jcache(nodes[2], "miss"))
                -- the route's scopes still apply to a shared token
                local status, www = jget(nodes[2], T.good, "/admin")
                assert.equal(403, status)
                assert.truthy(www:find("insufficient_scope", 1, true), www)
                -- a token no node verified is verified here; a forged one is refused
                assert.equal(200, jget(nodes[2], T.other))
                assert.equal(1, jcache(nodes[2], "miss"))
                status, www = jget(nodes[2], forged)
                assert.equal(401, status)
                assert.truthy(www:find("signature", 1, true), www)
                -- Redis holds digests and times, no token; it expires with the token
                for key in redis:cli("KEYS", "moongate:jwt:*"):gmatch("%S+") do
                    assert.falsy(key:find(T.good:sub(1, 20), 1, true), key)
                    local until_ms = tonumber(redis:cli("GET", key):match("%d+"))
                    assert.truthy(until_ms and until_ms > os.time() * 1000, key)
                    local ttl = tonumber(redis:cli("PTTL", key):match("%-?%d+"))
                    assert.truthy(ttl > 0 and ttl <= 300000, key .. " pttl " .. tostring(ttl))
                end

                -- Redis gone: each node verifies by itself
                redis:stop()
                assert.truthy(h.wait_for(function()
                    return nodes[2].stderr():find("is unreachable", 1, true)
                end, 5))
                assert.equal(200, jget(nodes[2], T.third))
                assert.equal(3, jcache(nodes[2], "miss")) -- other, forged, third
            end)
            cl.finish(nodes, redis, ok, err)
        end)

        it("refuses shared_cache without cluster", function()
            local keys = keys_and_tokens({})
            local dir = h.tmpdir()
            local path = h.write_file(dir .. "/gateway.lua", h.config_source(jwt_conf(keys, true)))
            local out, code = h.moongate({ "check", "-c", path, "-p", dir })
            assert.are_not.equal(0, code)
            assert.truthy(out:find("apis.a.authorizers.jwt.shared_cache: needs cluster (verified tokens are shared through its Redis)", 1, true), out)
        end)
    end)
end)

