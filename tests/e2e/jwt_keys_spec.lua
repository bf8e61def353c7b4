-- JWT authorizers: where the keys come from and what a verified token gives (README
-- "JWT authorizers"). Keys and tokens are made by python3-jwt (jwt_keys_mint.py, run
-- with /usr/bin/python3); remote JWK Sets are served over https, with the test PKI, by
-- jwt_keys_server.py, which reads its files at every request (a test rotates keys by
-- rewriting them) and logs every request it gets (a test counts the fetches).
-- The per-algorithm and per-failure cases are in the JWT suite of their own; here: a
-- jwks_file; jwks_uri over https with a CA; OIDC discovery; a new kid after a rotation;
-- a JWK Set server down at start, then up; the refetch limit; a request that waits for
-- the first fetch; the exact 401 and 403 headers; claims in the access log, in a Lua
-- integration's event and in a Lua hook; usage_identifier_claim with a usage plan; a
-- WebSocket $connect; `moongate jwt check`.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local w = require "ws_helpers"
local cjson = require "cjson"

local MINT = h.root .. "/tests/e2e/jwt_keys_mint.py"
local SERVER = h.root .. "/tests/e2e/jwt_keys_server.py"
local ISSUER = "https://idp.test/realm"

local function py(args)
    local q = { "/usr/bin/python3", h.sh_quote(MINT) }
    for _, a in ipairs(args) do q[#q + 1] = h.sh_quote(a) end
    local out, rc = h.run(table.concat(q, " ") .. " 2>&1")
    assert(rc == 0, "jwt_keys_mint.py failed: " .. out)
    return out
end

local keys -- directory of the private keys

-- A token signed by key (k1: ES256, k2: RS256, k3: EdDSA) with kid, and claims over the
-- defaults (iss, aud "pets", exp in 5 minutes); kid false: none.
local ALG = { k1 = "ES256", k2 = "RS256", k3 = "EdDSA" }
local function token(key, kid, claims)
    local c = { iss = ISSUER, aud = "pets", sub = "alice", exp = os.time() + 300 }
    for k, v in pairs(claims or {}) do c[k] = v end
    return py({ "sign", keys .. "/" .. key .. ".pem", ALG[key], kid or "-", cjson.encode(c) })
end

-- Writes the JWK Set of the given { kid = key } pairs to path.
local function jwks(path, pairs_)
    local args = { "jwks", path }
    local kids = {}
    for kid in pairs(pairs_) do kids[#kids + 1] = kid end
    table.sort(kids)
    for _, kid in ipairs(kids) do args[#args + 1] = kid .. "=" .. keys .. "/" .. pairs_[kid] .. ".pem" end
    py(args)
end

local pki

-- Starts a JWK Set server (https) on a new port, serving dir.
local function start_server(dir, port)
    port = port or h.free_port()
    local p = h.spawn({ "/usr/bin/python3", SERVER, tostring(port), dir, pki .. "/localhost.pem",
        pki .. "/localhost.key" }, dir, "jwks-server")
    assert(h.wait_for(function() return h.port_open(port) end, 10), "the JWK Set server did not start: " .. p.stderr())
    p.port = port
    p.url = "https://localhost:" .. port
    return p
end

-- The paths the server was asked for, in order.
local function hits(dir)
    return h.log_lines(dir .. "/hits.log")
end

local function get(gw, path, tok, extra)
    local args = { gw:url(path) }
    if tok then args[#args + 1] = "-H"; args[#args + 1] = "Authorization: Bearer " .. tok end
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    return h.curl(args)
end

-- A configuration whose one listener serves api (by default "pets").
local function serving(conf, api)
    conf.listen = { { address = "127.0.0.1", port = h.free_port(), api = api or "pets" } }
    return conf
end

local function mock(body)
    return { type = "mock", body = body or '{"ok":true}' }
end

describe("JWT authorizers: keys and identity", function()
    lazy_setup(function()
        pki = h.tmpdir()
        local out, rc = h.run("sh " .. h.sh_quote(h.root .. "/tests/e2e/tls_certs.sh") .. " " .. h.sh_quote(pki))
        assert(rc == 0, "tls_certs.sh failed: " .. out)
        keys = h.tmpdir()
        py({ "key", keys .. "/k1.pem", "ec" })
        py({ "key", keys .. "/k2.pem", "rsa" })
        py({ "key", keys .. "/k3.pem", "ed25519" })
    end)

    describe("with a jwks_file", function()
        local gw, dir, log

        lazy_setup(function()
            dir = h.tmpdir()
            log = dir .. "/access.log"
            os.execute("mkdir -p " .. dir .. "/policies")
            jwks(dir .. "/jwks.json", { k1 = "k1", k2 = "k2" })
            h.write_file(dir .. "/policies/echo_authorizer.lua", [[
local cjson = require "cjson"
local M = {}
function M.handle(event) return { statusCode = 200, body = cjson.encode(event.requestContext.authorizer) } end
return M
]])
            -- a log policy: Lua hooks see the claims as req.authorizer, the token as req.jwt
            h.write_file(dir .. "/policies/who.lua", [[
local M = {}
function M.log(ctx)
  local req = ctx.request
  local jwt = req.jwt
  return { who = req.authorizer and req.authorizer.sub or "nobody",
           scopes = jwt and jwt.scopes and table.concat(jwt.scopes, "+") or "none" }
end
return M
]])
            gw = h.start_gateway(serving {
                workers = 2,
                api_keys = { alice = { value = "alice-key-0123456789abcdef" } },
                apis = { pets = {
                    stages = { ["$default"] = { access_log = { path = log, policy = "policies/who.lua",
                        format = '{"route":"$context.routeKey","status":"$context.status",'
                            .. '"sub":"$context.authorizer.claims.sub","exp":"$context.authorizer.claims.exp",'
                            .. '"groups":"$context.authorizer.claims.groups","error":"$context.authorizer.error",'
                            .. '"message":"$context.error.message","authz":"$context.authorizer.status",'
                            .. '"key":"$context.identity.apiKeyId","who":"$context.custom.who",'
                            .. '"scopes":"$context.custom.scopes"}' } } },
                    authorizers = {
                        file = { type = "jwt", issuer = ISSUER, audience = { "pets" }, jwks_file = "jwks.json" },
                        keyed = { type = "jwt", issuer = ISSUER, audience = { "pets" }, jwks_file = "jwks.json",
                            usage_identifier_claim = "apikey", ttl = 0 },
                    },
                    usage_plans = { gold = { keys = { "alice" }, quota = { limit = 2, period = "day" } } },
                    routes = {
                        ["GET /pets"] = { authorizer = "file", scopes = { "pets:read", "pets:write" }, integration = mock() },
                        ["GET /open"] = { authorizer = "file", integration = mock() },
                        ["GET /admin"] = { authorizer = "file", scopes = { "pets:admin" }, integration = mock() },
                        ["GET /event"] = { authorizer = "file",
                            integration = { type = "lua", handler = "policies/echo_authorizer.lua" } },
                        ["GET /metered"] = { authorizer = "keyed", api_key_required = true, integration = mock() },
                    },
                } },
            }, { dir = dir })
        end)

        lazy_teardown(function()
            h.stop_all(gw)
        end)

        local function entry(route, status)
            return h.wait_for(function()
                for _, e in ipairs(h.json_log(log)) do
                    if e.route == route and e.status == tostring(status) then return e end
                end
            end, 5)
        end

        it("lets a valid token through, raw or after Bearer, and logs its claims", function()
            local tok = token("k1", "k1", { scope = "pets:read other", groups = { "a", "b" } })
            local r = get(gw, "/pets", tok)
            assert.equal(200, r.status)
            r = h.curl{ gw:url("/pets"), "-H", "Authorization: " .. tok }
            assert.equal(200, r.status)
            local e = entry("GET /pets", 200)
            assert.is_table(e)
            assert.equal("alice", e.sub)
            assert.matches("^%d+$", e.exp)
            assert.equal('["a","b"]', e.groups)
            assert.equal("-", e.error)
            assert.equal("200", e.authz)
            assert.equal("alice", e.who)
            assert.equal("pets:read+other", e.scopes)
        end)

        it("answers 401 with WWW-Authenticate: Bearer when there is no token", function()
            local r = get(gw, "/open")
            h.assert_gateway_response(r, 401, "Unauthorized", "UnauthorizedException")
            assert.equal("Bearer", r.headers["www-authenticate"])
            local e = entry("GET /open", 401)
            assert.equal("no token", e.error)
            assert.equal("no token", e.message)
            assert.equal("nobody", e.who)
        end)

        it("answers 401 with the precise error_description", function()
            local r = get(gw, "/open", token("k2", "k2", { exp = os.time() - 10 }))
            h.assert_gateway_response(r, 401, "Unauthorized", "UnauthorizedException")
            assert.equal('Bearer error="invalid_token", error_description="the token has expired"',
                r.headers["www-authenticate"])
            r = get(gw, "/open", token("k1", "k1", { aud = "cats" }))
            assert.equal('Bearer error="invalid_token", error_description="the token does not have a valid audience"',
                r.headers["www-authenticate"])
            local e = h.wait_for(function()
                for _, x in ipairs(h.json_log(log)) do
                    if x.route == "GET /open" and x.error == "the token has expired" then return x end
                end
            end, 5)
            assert.equal("the token has expired", e.message)
            assert.equal("401", e.authz)
        end)

        it("answers 403 insufficient_scope with the route's scopes, and logs who it was", function()
            local r = get(gw, "/admin", token("k1", "k1", { scope = "pets:read" }))
            h.assert_gateway_response(r, 403, "Forbidden", "AccessDeniedException")
            assert.equal('Bearer error="insufficient_scope", error_description="the token lacks a required scope",'
                .. ' scope="pets:admin"', r.headers["www-authenticate"])
            local e = entry("GET /admin", 403)
            assert.equal("the token lacks a required scope", e.error)
            assert.equal("alice", e.sub)
            -- any one of the route's scopes is enough (scp as a list works too)
            assert.equal(200, get(gw, "/pets", token("k1", "k1", { scp = { "pets:write" } })).status)
        end)

        it("gives a Lua integration requestContext.authorizer.jwt, claim values as strings", function()
            local exp = os.time() + 200
            local r = get(gw, "/event", token("k2", "k2", { exp = exp, scope = "a b", admin = true, n = 1.5 }))
            assert.equal(200, r.status)
            local a = r:json()
            assert.same({ jwt = {
                claims = { iss = ISSUER, aud = "pets", sub = "alice", exp = tostring(exp), scope = "a b",
                    admin = "true", n = "1.5" },
                scopes = { "a", "b" },
            } }, a)
            -- a token without scope or scp: no scopes
            a = get(gw, "/event", token("k1", "k1")):json()
            assert.is_nil(a.jwt.scopes)
        end)

        it("makes usage_identifier_claim the caller's API key for usage plans", function()
            -- no such claim: no key, and the route requires one
            local r = get(gw, "/metered", token("k1", "k1"))
            h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
            local tok = token("k1", "k1", { apikey = "alice-key-0123456789abcdef" })
            assert.equal(200, get(gw, "/metered", tok).status)
            assert.equal(200, get(gw, "/metered", tok).status)
            r = get(gw, "/metered", tok)
            h.assert_gateway_response(r, 429, "Limit Exceeded", "LimitExceededException")
            assert.equal("alice", entry("GET /metered", 200).key)
        end)

        it("moongate jwt check prints each step and exits 0 or 1", function()
            local tok = token("k1", "k1", { scope = "pets:read" })
            local out, rc = h.moongate{ "jwt", "check", tok, "--api", "pets", "--authorizer", "file",
                "-c", gw.config_path, "-p", dir }
            assert.equal(0, rc, out)
            assert.matches('header +{"alg":"ES256","kid":"k1","typ":"JWT"}', out)
            assert.matches("algorithm  ES256: ok", out, 1, true)
            assert.matches("key        kid \"k1\": ok", out, 1, true)
            assert.matches("signature  ES256: ok", out, 1, true)
            assert.matches("claim iss  " .. ISSUER .. ": ok", out, 1, true)
            assert.matches("claim aud  pets: ok", out, 1, true)
            assert.matches("claim sub  alice\n", out, 1, true)
            assert.matches('route "GET /admin" needs pets:admin: FAIL: the token lacks a required scope', out, 1, true)
            assert.matches('route "GET /pets" needs pets:read or pets:write: ok', out, 1, true)
            assert.matches('route "GET /open" needs no scope: ok', out, 1, true)
            out, rc = h.moongate{ "jwt", "check", token("k1", "k1", { exp = os.time() - 60 }), "--api", "pets",
                "--authorizer", "file", "-c", gw.config_path, "-p", dir }
            assert.equal(1, rc, out)
            assert.matches("claim exp  %d+ %(6%d s ago%): FAIL: the token has expired", out)
            assert.matches("result     refused (401)", out, 1, true)
            out, rc = h.moongate{ "jwt", "check", tok, "--api", "pets", "--authorizer", "nope",
                "-c", gw.config_path, "-p", dir }
            assert.equal(1, rc)
            assert.matches('apis.pets has no JWT authorizer "nope"', out, 1, true)
        end)
    end)

    describe("with remote keys", function()
        local srv, sdir

        lazy_setup(function()
            sdir = h.tmpdir()
            jwks(sdir .. "/jwks.json", { k1 = "k1" })
            srv = start_server(sdir)
        end)

        lazy_teardown(function()
            if srv then srv:stop() end
        end)

        it("fetches jwks_uri over https at start, and a new kid once after a rotation", function()
            h.write_file(sdir .. "/hits.log", "")
            local gw = h.start_gateway(serving {
                workers = 2,
                apis = { pets = {
                    stages = { ["$default"] = {} },
                    authorizers = { remote = { type = "jwt", issuer = ISSUER, audience = { "pets" },
                        jwks_uri = srv.url .. "/keys", backend_ca = pki .. "/root.pem" } },
                    routes = { ["GET /pets"] = { authorizer = "remote", integration = mock() } },
                } },
            })
            -- the first fetch happens when the generation is installed, before any request
            assert.truthy(h.wait_for(function() return #hits(sdir) == 1 end, 5))
            assert.equal(200, get(gw, "/pets", token("k1", "k1")).status)
            -- a new key appears: its first token makes the gateway fetch the set again
            jwks(sdir .. "/jwks.json", { k1 = "k1", k3 = "k3" })
            local t3 = token("k3", "k3")
            assert.equal(200, get(gw, "/pets", t3).status)
            assert.equal(200, get(gw, "/pets", t3).status)
            assert.equal(2, #hits(sdir))
            -- made-up kids: refused, and no more fetches (at most one per 30 s per source)
            for i = 1, 5 do
                local r = get(gw, "/pets", token("k1", "nope" .. i))
                assert.equal('Bearer error="invalid_token", error_description="no key matches the token\'s kid"',
                    r.headers["www-authenticate"])
            end
            assert.equal(2, #hits(sdir))
            assert.same({ "/keys", "/keys" }, hits(sdir))
            h.stop_all(gw)
            -- the CLI fetches the set itself
            local out, rc = h.moongate{ "jwt", "check", t3, "--api", "pets", "--authorizer", "remote",
                "-c", gw.config_path }
            assert.equal(0, rc, out)
            assert.matches("keys       2 from " .. srv.url .. "/keys\n", out, 1, true)
            assert.matches('key        kid "k3": ok', out, 1, true)
            assert.matches("signature  EdDSA: ok", out, 1, true)
        end)

        it("finds the keys by OIDC discovery from the issuer", function()
            h.write_file(sdir .. "/hits.log", "")
            local issuer = srv.url .. "/realm"
            local gw = h.start_gateway(serving {
                workers = 1,
                apis = { pets = {
                    stages = { ["$default"] = {} },
                    authorizers = { oidc = { type = "jwt", issuer = issuer, audience = { "pets" },
                        backend_ca = pki .. "/root.pem" } },
                    routes = { ["GET /pets"] = { authorizer = "oidc", integration = mock() } },
                } },
            })
            assert.equal(200, get(gw, "/pets", token("k1", "k1", { iss = issuer })).status)
            assert.same({ "/realm/.well-known/openid-configuration", "/keys" }, hits(sdir))
            h.stop_all(gw)
        end)

        it("makes requests wait for the first fetch instead of failing them, on every worker", function()
            h.write_file(sdir .. "/hits.log", "")
            h.write_file(sdir .. "/delay", "1.0")
            local gw = h.start_gateway(serving {
                workers = 2,
                apis = { pets = {
                    stages = { ["$default"] = {} },
                    authorizers = { remote = { type = "jwt", issuer = ISSUER, audience = { "pets" },
                        jwks_uri = srv.url .. "/keys", backend_ca = pki .. "/root.pem" } },
                    routes = { ["GET /pets"] = { authorizer = "remote", integration = mock() } },
                } },
            })
            local ok, err = pcall(function()
                -- several at once: some land on the worker that does not fetch, which is
                -- told through its mailbox when the fetch ends
                local tok = token("k1", "k1")
                local clients = {}
                for i = 1, 4 do
                    clients[i] = h.curl_background{ gw:url("/pets"), "-H", "Authorization: Bearer " .. tok }
                end
                for i = 1, 4 do
                    assert.equal(200, clients[i].result().status)
                end
                assert.same({ "/keys" }, hits(sdir))
            end)
            os.remove(sdir .. "/delay")
            h.stop_all(gw)
            assert(ok, err)
        end)

        it("keeps a request body that arrives while the request waits for the first fetch", function()
            h.write_file(sdir .. "/delay", "1.0")
            local up = h.start_upstream()
            local gw = h.start_gateway(serving {
                workers = 1,
                apis = { pets = {
                    stages = { ["$default"] = {} },
                    authorizers = { remote = { type = "jwt", issuer = ISSUER, audience = { "pets" },
                        jwks_uri = srv.url .. "/keys", backend_ca = pki .. "/root.pem" } },
                    routes = { ["POST /pets"] = { authorizer = "remote",
                        integration = { type = "http", uri = up.origin .. "/pets" } } },
                } },
            })
            local ok, err = pcall(function()
                -- sent whole, at once (no Expect: 100-continue): it is all in while the
                -- authorizer still waits for the keys
                local body = string.rep("0123456789abcdef", 4096)
                local r = h.curl{ gw:url("/pets"), "-H", "Authorization: Bearer " .. token("k1", "k1"),
                    "-H", "Expect:", "-H", "Content-Type: application/octet-stream", "--data-binary", body,
                    "--max-time", "10" }
                assert.equal(200, r.status)
                local e = r:json()
                assert.equal(#body, e.bodyLength)
                assert.equal(body, e.body)
            end)
            os.remove(sdir .. "/delay")
            h.stop_all(gw, up)
            assert(ok, err)
        end)
    end)

    it("keeps serving 401 while the JWK Set server is down, and verifies once it is up", function()
        local sdir = h.tmpdir()
        jwks(sdir .. "/jwks.json", { k2 = "k2" })
        local port = h.free_port()
        local gw = h.start_gateway(serving {
            workers = 2,
            apis = { pets = {
                stages = { ["$default"] = {} },
                authorizers = { down = { type = "jwt", issuer = ISSUER, audience = { "pets" },
                    jwks_uri = "https://localhost:" .. port .. "/keys", backend_ca = pki .. "/root.pem" } },
                routes = { ["GET /pets"] = { authorizer = "down", integration = mock() } },
            } },
        })
        local tok = token("k2", "k2")
        local r = get(gw, "/pets", tok)
        h.assert_gateway_response(r, 401, "Unauthorized", "UnauthorizedException")
        assert.equal('Bearer error="invalid_token", error_description="the keys could not be fetched"',
            r.headers["www-authenticate"])
        assert.truthy(h.wait_for(function()
            return gw.stderr():find("apis.pets.authorizers.down: the JWK Set could not be fetched: ", 1, true)
        end, 5))
        local srv = start_server(sdir, port)
        -- retried at most every 5 s while there is no key at all
        local ok = h.wait_for(function() return get(gw, "/pets", tok).status == 200 end, 12)
        srv:stop()
        h.stop_all(gw)
        assert.truthy(ok)
        assert.truthy(#hits(sdir) >= 1)
    end)

    it("authorizes a WebSocket $connect", function()
        local dir = h.tmpdir()
        jwks(dir .. "/jwks.json", { k1 = "k1" })
        local gw = h.start_gateway(serving({
            workers = 1,
            apis = { chat = {
                protocol = "websocket",
                route_selection_expression = "$request.body.action",
                stages = { ["$default"] = {} },
                authorizers = { jwt = { type = "jwt", issuer = ISSUER, audience = { "pets" },
                    jwks_file = "jwks.json", identity_source = "$request.querystring.token" } },
                routes = {
                    ["$connect"] = { authorizer = "jwt", scopes = { "chat" }, integration = mock("") },
                    ["$default"] = { integration = mock("") },
                },
            } },
        }, "chat"), { dir = dir })
        local events = w.ws(gw.port, {}, nil, "/?token=" .. token("k1", "k1", { scope = "chat" }))
        assert.equal("open", events[1].event)
        events = w.ws(gw.port, {}, nil, "/?token=" .. token("k1", "k1", { scope = "other" }))
        assert.equal("rejected", events[1].event)
        assert.equal(403, events[1].status)
        events = w.ws(gw.port, {}, nil, "/")
        assert.equal(401, events[1].status)
        h.stop_all(gw)
    end)
end)
