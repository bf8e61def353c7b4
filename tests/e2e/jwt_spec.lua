-- JWT authorizers through the real binary (issue 15; AWS reference section 6): keys in a
-- jwks_file and an HS* secret_file generated at test time, tokens minted at test time by
-- Debian's python3-jwt (tests/e2e/jwt_mint.py, /usr/bin/python3), one accepted request per
-- algorithm, and each refusal with its exact status, body and www-authenticate header;
-- identity sources, scopes, and the verified-token cache (it never outlives exp and never
-- skips the per-request checks).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local testing = require "moongate.testing"
local cjson = require "cjson"
local bit = require "bit"

local PYTHON = "/usr/bin/python3"
local MINT = h.root .. "/tests/e2e/jwt_mint.py"
local ISSUER = "https://idp.test/realm"
local OK = { type = "mock", status = 200, body = "ok" }

-- base64url without padding (RFC 7515), for hand-made tokens and for reading exp.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function b64url(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = bit.bor(bit.lshift(a, 16), bit.lshift(b or 0, 8), c or 0)
        local k = c and 4 or (b and 3 or 2)
        for j = 1, k do
            local v = bit.band(bit.rshift(n, 18 - 6 * (j - 1)), 63)
            out[#out + 1] = B64:sub(v + 1, v + 1)
        end
    end
    return table.concat(out)
end

local function unb64url(s)
    local out, n, bits = {}, 0, 0
    for ch in s:gmatch(".") do
        n = bit.bor(bit.lshift(n, 6), B64:find(ch, 1, true) - 1)
        bits = bits + 6
        if bits >= 8 then
            bits = bits - 8
            out[#out + 1] = string.char(bit.band(bit.rshift(n, bits), 255))
        end
    end
    return table.concat(out)
end

local function payload_of(token)
    return cjson.decode(unb64url(token:match("^[^.]*%.([^.]*)")))
end

-- Mints every token of `requests` ({ name = request }, see jwt_mint.py) in one Python run.
local function mint(keys, requests)
    local path = h.write_file(keys .. "/requests.json", cjson.encode(requests))
    local out, rc = h.run(PYTHON .. " " .. h.sh_quote(MINT) .. " mint " .. h.sh_quote(keys)
        .. " <" .. h.sh_quote(path) .. " 2>&1")
    assert(rc == 0, "jwt_mint.py mint failed: " .. out)
    return cjson.decode(out)
end

local function reason_header(reason)
    return 'Bearer error="invalid_token", error_description="' .. reason .. '"'
end

local function assert_ok(r, what)
    assert.are.equal(200, r.status, what)
    assert.are.equal("ok", r.body, what)
    assert.is_nil(r.headers["www-authenticate"], what)
end

-- 401 {"message":"Unauthorized"} with the reason in www-authenticate.
local function assert_refused(r, reason, what)
    h.assert_gateway_response(r, 401, "Unauthorized", "UnauthorizedException")
    assert.are.equal(reason_header(reason), r.headers["www-authenticate"], what)
end

-- No token at all: a plain challenge, no error code (RFC 6750 section 3.1).
local function assert_no_token(r, what)
    h.assert_gateway_response(r, 401, "Unauthorized", "UnauthorizedException")
    assert.are.equal("Bearer", r.headers["www-authenticate"], what)
end

local function assert_forbidden_scope(r, scopes, what)
    h.assert_gateway_response(r, 403, "Forbidden", "AccessDeniedException")
    assert.are.equal('Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="'
        .. scopes .. '"', r.headers["www-authenticate"], what)
end

local function authorizer(extra)
    local a = { type = "jwt", issuer = ISSUER, audience = { "pets" }, jwks_file = "keys/jwks.json" }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
end

-- The keys, in a gateway directory of their own (paths in the configuration are relative
-- to the prefix).
local function make_keys()
    local dir = h.tmpdir()
    local out, rc = h.run(PYTHON .. " " .. h.sh_quote(MINT) .. " keys " .. h.sh_quote(dir .. "/keys") .. " 2>&1")
    assert(rc == 0, "jwt_mint.py keys failed: " .. out)
    return dir, dir .. "/keys"
end

local ALGS = {
    RS256 = "rsa", RS384 = "rsa", RS512 = "rsa", PS256 = "rsa", PS384 = "rsa", PS512 = "rsa",
    ES256 = "ec256", ES384 = "ec384", ES512 = "ec521", EdDSA = "ed25519",
}
local KIDS = { rsa = "rsa", ec256 = "ec256", ec384 = "ec384", ec521 = "ec521", ed25519 = "ed" }

local function rs(extra)
    local req = { alg = "RS256", key = "rsa", kid = "rsa" }
    for k, v in pairs(extra or {}) do req[k] = v end
    return req
end

describe("JWT authorizer", function()
    local gw, dir, keys, T

    lazy_setup(function()
        dir, keys = make_keys()
        local requests = {
            -- accepted
            ["HS256"] = { alg = "HS256", key = "hs" },
            ["HS384"] = { alg = "HS384", key = "hs" },
            ["HS512"] = { alg = "HS512", key = "hs" },
            one_key_no_kid = { alg = "RS256", key = "rsa" },
            leeway_expired = rs { claims = { exp_in = -10 } },
            leeway_nbf = rs { claims = { nbf_in = 10 } },
            aud_list = rs { claims = { aud = { "other", "pets" } } },
            client_id = rs { claims = { aud = cjson.null, client_id = "pets" } },
            scope_read = rs { claims = { scope = "pets:read" } },
            scope_one = rs { claims = { scope = "openid pets:admin" } },
            scp_list = rs { claims = { scp = { "other", "pets:read" } } },
            scp_string = rs { claims = { scp = "pets:read" } },
            scope_other = rs { claims = { scope = "pets:write" } },
            -- refused
            too_large = rs { claims = { pad = string.rep("x", 8500) } },
            alg_none = { alg = "none", kid = "rsa" },
            alg_unknown = { alg = "none", kid = "rsa", header = { alg = "RS1024" } },
            ps256 = { alg = "PS256", key = "rsa", kid = "rsa" },
            confusion = { alg = "HS256", key = "rsa.pub", kid = "rsa", manual = true },
            confusion_no_kid = { alg = "HS256", key = "rsa.pub", manual = true },
            unknown_kid = rs { kid = "nope" },
            no_kid = { alg = "RS256", key = "rsa" },
            es384_on_p256 = { alg = "ES384", key = "ec384", kid = "ec256" },
            rs256_on_ed = { alg = "RS256", key = "rsa", kid = "ed" },
            flipped_rs = rs { tamper = "flip" },
            flipped_es = { alg = "ES256", key = "ec256", kid = "ec256", tamper = "flip" },
            flipped_ed = { alg = "EdDSA", key = "ed25519", kid = "ed", tamper = "flip" },
            flipped_hs = { alg = "HS256", key = "hs", tamper = "flip" },
            other_rsa_key = { alg = "RS256", key = "rsa2", kid = "rsa" },
            expired = rs { claims = { exp_in = -10 } },
            long_expired = rs { claims = { exp_in = -100 } },
            nbf_future = rs { claims = { nbf_in = 600 } },
            iat_future = rs { claims = { iat_in = 600 } },
            wrong_iss = rs { claims = { iss = "https://evil.test/realm" } },
            iss_slash = rs { claims = { iss = ISSUER .. "/" } },
            wrong_aud = rs { claims = { aud = "orders" } },
            aud_list_none = rs { claims = { aud = { "orders", "users" } } },
            client_id_wrong = rs { claims = { aud = cjson.null, client_id = "orders" } },
            aud_over_client_id = rs { claims = { aud = "orders", client_id = "pets" } },
            no_scope = rs(),
        }
        for alg, key in pairs(ALGS) do requests[alg] = { alg = alg, key = key, kid = KIDS[key] } end
        T = mint(keys, requests)
        gw = h.start_gateway({
            workers = 1,
            limits = { max_header_size = 32768 },
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "pets" } },
            apis = {
                pets = {
                    stages = { ["$default"] = { access_log = { path = dir .. "/access.log", format =
                        '{"id":"$context.requestId","status":"$context.status","err":"$context.authorizer.error",'
                        .. '"msg":"$context.error.message","sub":"$context.authorizer.claims.sub"}' } } },
                    authorizers = {
                        -- every algorithm: the JWKS and the shared secret, no leeway
                        all = authorizer { secret_file = "keys/hs.key" },
                        -- an allow-list, 30 s of leeway, no shared secret
                        strict = authorizer { algorithms = { "RS256", "ES256" }, leeway = 30 },
                        -- a key set of one key without a kid
                        single = authorizer { jwks_file = "keys/jwks_one.json" },
                        query = authorizer { identity_source = "$request.querystring.access_token" },
                        header = authorizer { identity_source = "$request.header.X-Token" },
                    },
                    routes = {
                        ["GET /all"] = { authorizer = "all", integration = OK },
                        ["GET /strict"] = { authorizer = "strict", integration = OK },
                        ["GET /single"] = { authorizer = "single", integration = OK },
                        ["GET /q"] = { authorizer = "query", integration = OK },
                        ["GET /x"] = { authorizer = "header", integration = OK },
                        ["GET /scoped"] = { authorizer = "all", scopes = { "pets:read", "pets:admin" },
                                            integration = OK },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    local function get(path, auth, ...)
        local args = { gw:url(path) }
        if auth then args[#args + 1] = "-H"; args[#args + 1] = "Authorization: " .. auth end
        for _, a in ipairs({ ... }) do args[#args + 1] = a end
        return h.curl(args)
    end
    local function bearer(path, name) return get(path, "Bearer " .. assert(T[name], name)) end

    it("accepts a token of each algorithm: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, HS256/384/512", function()
        for _, alg in ipairs({ "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                               "ES512", "EdDSA", "HS256", "HS384", "HS512" }) do
            assert_ok(bearer("/all", alg), alg)
        end
    end)

    it("takes the token raw or after Bearer, from a header or from the query string", function()
        assert_ok(get("/all", T.RS256), "raw token")
        assert_ok(get("/all", "Bearer " .. T.ES256), "Bearer")
        assert_ok(get("/q?access_token=" .. T.RS256), "query string")
        assert_ok(get("/q?x=1&access_token=" .. T.EdDSA .. "&y=2"), "query string among others")
        assert_no_token(get("/q", "Bearer " .. T.RS256), "the query authorizer ignores Authorization")
        assert_refused(get("/q?access_token=abc"), "the token is malformed")
        assert_ok(get("/x", nil, "-H", "X-Token: Bearer " .. T.ES256), "X-Token")
        assert_no_token(get("/x", "Bearer " .. T.ES256), "the X-Token authorizer ignores Authorization")
    end)

    it("answers 401 with a plain Bearer challenge when there is no token", function()
        assert_no_token(get("/all"), "no header")
        assert_no_token(get("/all", "Bearer"), '"Bearer" and nothing else')
        assert_no_token(get("/all", nil, "-H", "Authorization;"), "an empty header")
        assert_no_token(get("/q?access_token="), "an empty query parameter")
    end)

    it("refuses malformed tokens", function()
        local hd, pl, sg = T.RS256:match("^([^.]+)%.([^.]+)%.([^.]+)$")
        for what, tok in pairs({
            ["one segment"] = "not-a-token",
            ["two segments"] = hd .. "." .. pl,
            ["four segments"] = T.RS256 .. "." .. sg,
            ["not base64url"] = hd .. "." .. pl .. "!." .. sg,
            ["padded header"] = hd .. "==." .. pl .. "." .. sg,
            ["standard base64 alphabet"] = hd .. "." .. pl:gsub("[-_]", { ["-"] = "+", ["_"] = "/" })
                .. "+/." .. sg,
            ["header not JSON"] = b64url("alg=RS256") .. "." .. pl .. "." .. sg,
            ["header an array"] = b64url('["RS256"]') .. "." .. pl .. "." .. sg,
            ["duplicate header key"] = b64url('{"alg":"RS256","kid":"rsa","alg":"RS256"}') .. "." .. pl .. "." .. sg,
            ["payload not an object"] = hd .. "." .. b64url('"pets"') .. "." .. sg,
            ["payload truncated"] = hd .. "." .. b64url('{"iss":"' .. ISSUER .. '"') .. "." .. sg,
        }) do
            assert_refused(get("/all", "Bearer " .. tok), "the token is malformed", what)
        end
    end)

    it("refuses a token larger than 8 KB", function()
        assert.is_true(#T.too_large > 8192)
        assert_refused(bearer("/all", "too_large"), "the token is too large")
    end)

    it("refuses alg none, unknown algorithms and algorithms outside `algorithms`", function()
        assert_refused(bearer("/all", "alg_none"), "the token's algorithm is not supported", "none")
        assert_refused(bearer("/all", "alg_unknown"), "the token's algorithm is not supported", "RS1024")
        assert_refused(bearer("/strict", "ps256"), "the token's algorithm is not supported", "PS256 not allowed")
        assert_refused(bearer("/strict", "HS256"), "the token's algorithm is not supported", "HS256 not allowed")
        assert_ok(bearer("/strict", "RS256"), "RS256 allowed")
        assert_ok(bearer("/strict", "ES256"), "ES256 allowed")
    end)

    it("refuses HS256 signed with the RSA public key (algorithm confusion)", function()
        -- With a shared secret, HS256 is checked against the secret only.
        assert_refused(bearer("/all", "confusion"), "the signature is invalid", "with secret_file")
        -- Without one, HS* cannot be verified at all: never with a key of the JWKS.
        assert_refused(bearer("/single", "confusion_no_kid"), "the token's algorithm is not supported",
            "without secret_file")
    end)

    it("finds the key by kid, or the only key when there is no kid", function()
        assert_refused(bearer("/all", "unknown_kid"), "no key matches the token's kid")
        assert_refused(bearer("/all", "no_kid"), "the token has no kid and the key set has several keys")
        assert_ok(bearer("/single", "one_key_no_kid"), "one key, no kid")
    end)

    it("refuses an algorithm that does not fit the key", function()
        assert_refused(bearer("/all", "es384_on_p256"), "the token's algorithm does not fit its key", "ES384, P-256 key")
        assert_refused(bearer("/all", "rs256_on_ed"), "the token's algorithm does not fit its key", "RS256, Ed25519 key")
    end)

    it("refuses a bad signature", function()
        for _, name in ipairs({ "flipped_rs", "flipped_es", "flipped_ed", "flipped_hs", "other_rsa_key" }) do
            assert_refused(bearer("/all", name), "the signature is invalid", name)
        end
    end)

    it("checks exp, nbf and iat, with the leeway", function()
        assert_refused(bearer("/all", "expired"), "the token has expired", "expired 10 s ago, no leeway")
        assert_ok(bearer("/strict", "leeway_expired"), "expired 10 s ago, 30 s leeway")
        assert_refused(bearer("/strict", "long_expired"), "the token has expired", "expired 100 s ago, 30 s leeway")
        assert_refused(bearer("/all", "nbf_future"), "the token is not valid yet")
        assert_refused(bearer("/all", "leeway_nbf"), "the token is not valid yet", "nbf in 10 s, no leeway")
        assert_ok(bearer("/strict", "leeway_nbf"), "nbf in 10 s, 30 s leeway")
        assert_refused(bearer("/all", "iat_future"), "the token was issued in the future")
    end)

    it("checks the issuer and the audience (aud, a list of them, or client_id without aud)", function()
        assert_refused(bearer("/all", "wrong_iss"), "the token has an invalid issuer")
        assert_refused(bearer("/all", "iss_slash"), "the token has an invalid issuer", "a trailing slash")
        assert_refused(bearer("/all", "wrong_aud"), "the token does not have a valid audience")
        assert_refused(bearer("/all", "aud_list_none"), "the token does not have a valid audience", "list")
        assert_ok(bearer("/all", "aud_list"), "a list with one match")
        assert_ok(bearer("/all", "client_id"), "client_id without aud")
        assert_refused(bearer("/all", "client_id_wrong"), "the token does not have a valid audience", "client_id")
        assert_refused(bearer("/all", "aud_over_client_id"), "the token does not have a valid audience",
            "aud wins over client_id")
    end)

    it("answers 403 insufficient_scope when no route scope is in scope or scp", function()
        assert_ok(bearer("/all", "no_scope"), "no scope needed")
        assert_ok(bearer("/scoped", "scope_read"), "scope pets:read")
        assert_ok(bearer("/scoped", "scope_one"), "one of two scopes, space-separated")
        assert_ok(bearer("/scoped", "scp_list"), "scp list")
        assert_ok(bearer("/scoped", "scp_string"), "scp string")
        assert_forbidden_scope(bearer("/scoped", "scope_other"), "pets:read pets:admin")
        assert_forbidden_scope(bearer("/scoped", "no_scope"), "pets:read pets:admin")
    end)

    it("gives the reason to $context.authorizer.error and $context.error.message, the claims to $context.authorizer.claims",
        function()
            local cases = {
                { get("/all"), "no token" },
                { bearer("/all", "expired"), "the token has expired" },
                { bearer("/all", "flipped_es"), "the signature is invalid" },
                { bearer("/scoped", "scope_other"), "the token lacks a required scope" },
            }
            local ok = bearer("/all", "RS256")
            local function entry(r)
                return h.find_entry(h.json_log(dir .. "/access.log"), "id", r.headers["apigw-requestid"])
            end
            assert.truthy(h.wait_for(function() return entry(ok) end, 5), "the access log has the requests")
            for _, c in ipairs(cases) do
                local e = entry(c[1])
                assert.are.equal(c[2], e and e.err, c[2])
                assert.are.equal(c[2], e and e.msg, c[2])
                assert.are.equal(tostring(c[1].status), e.status, c[2])
            end
            assert.are.equal("user-1", entry(ok).sub)
        end)

    it("never keeps a cached token past its exp, and checks scopes per request", function()
        local t = mint(keys, {
            short = rs { claims = { exp_in = 2 } },
            write = rs { claims = { scope = "pets:write" } },
        })
        local exp = payload_of(t.short).exp
        -- The first request verifies and caches the token, the second finds it cached.
        assert_ok(get("/all", "Bearer " .. t.short), "first")
        assert_ok(get("/all", "Bearer " .. t.short), "cached")
        -- A cached token is still checked for the route's scopes.
        assert_ok(get("/all", "Bearer " .. t.write), "write, first")
        assert_ok(get("/all", "Bearer " .. t.write), "write, cached")
        assert_forbidden_scope(get("/scoped", "Bearer " .. t.write), "pets:read pets:admin")
        -- Past exp (one second more: the gateway's clock may tick in between), refused.
        while os.time() <= exp do h.sleep(0.1) end
        assert_refused(get("/all", "Bearer " .. t.short), "the token has expired", "after exp")
    end)
end)

-- What a JWT authorizer hands on (the claims as strings, the token's scopes) is the same in
-- the kit (moongate.testing: request{ jwt = ... }) as in the gateway: a Lua integration's
-- event (requestContext.authorizer.jwt), req.authorizer and $context.authorizer.claims.NAME.
-- (An object claim has one member here: the gateway keeps the token's member order, the
-- kit gets a decoded table and cannot.)
local CLAIMS_HANDLER = [[
local cjson = require "cjson"
return { handle = function(event, conf, req)
  local a = event.requestContext.authorizer
  return { statusCode = 200, headers = { ["content-type"] = "application/json" }, body = cjson.encode({
    jwt = a and a.jwt, authorizer = req.authorizer,
    sub = req:context("authorizer.claims.sub"), groups = req:context("authorizer.claims.groups"),
    admin = req:context("authorizer.claims.admin"), exp = req:context("authorizer.claims.exp") }) }
end }
]]

describe("the kit and the gateway agree on a JWT authorizer's claims and scopes", function()
    local gw, dir, keys, T
    local CASES = {
        scope = { claims = { sub = "alice", groups = { "a", "b" }, admin = true, ratio = 0.5, level = 3,
                             addr = { city = "Paris" }, scope = "pets:read openid" },
                  scopes = { "pets:read", "openid" } },
        scp = { claims = { sub = "bob", scp = { "pets:read", "pets:write" } }, scopes = { "pets:read", "pets:write" } },
        none = { claims = { sub = "carol" } },
    }

    lazy_setup(function()
        dir, keys = make_keys()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies"))
        h.write_file(dir .. "/policies/claims.lua", CLAIMS_HANDLER)
        local requests = {}
        for name, c in pairs(CASES) do requests[name] = { alg = "ES256", key = "ec256", kid = "ec256", claims = c.claims } end
        T = mint(keys, requests)
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "pets" } },
            apis = {
                pets = {
                    stages = { ["$default"] = {} },
                    authorizers = { jwt = authorizer() },
                    routes = {
                        ["GET /claims"] = { authorizer = "jwt",
                                            integration = { type = "lua", handler = "policies/claims.lua" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    for _, name in ipairs({ "scope", "scp", "none" }) do
        it("for a token with " .. name, function()
            local r = h.curl{ gw:url "/claims", "-H", "Authorization: Bearer " .. T[name] }
            assert.are.equal(200, r.status, r.body)
            local req = testing.request{ method = "GET", path = "/claims",
                jwt = { claims = payload_of(T[name]), scopes = CASES[name].scopes } }
            local d = testing.handle(dir .. "/policies/claims.lua", {}, req)
            assert.are.equal(200, d.status, d.error)
            local kit, real = cjson.decode(d.body), r:json()
            assert.are.same(kit, real)
            -- and what both say is what the token says
            assert.are.equal(CASES[name].claims.sub, real.sub)
            assert.are.same(CASES[name].scopes, real.jwt.scopes)
        end)
    end
end)
