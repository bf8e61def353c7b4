-- moongate.config: JWT authorizers (type = "jwt") — every message a user can get about
-- one, and what the gateway receives (the shaped apis[i].jwt_authorizers and the routes'
-- jwt index and scopes).
local config = require "moongate.config"

local SOURCE = "conf/gateway.lua"
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir .. "/keys")

local function write(name, data)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(data)
  f:close()
end
write("keys/jwks.json", '{"keys":[]}')
write("keys/short.key", string.rep("s", 31))
write("keys/hs.key", string.rep("s", 32))
os.execute("mkdir -p " .. dir .. "/policies")
write("policies/none.lua", "return { authorize = function() return { isAuthorized = true } end }")

local function base(authorizers, routes)
  return {
    apis = { pets = {
      stages = { ["$default"] = {} },
      authorizers = authorizers,
      routes = routes or { ["GET /pets"] = { integration = { type = "mock" } } },
    } },
  }
end

local function errors_of(c)
  local out, errs = config.validate(c, { source = SOURCE, prefix = dir })
  assert.is_nil(out)
  return errs
end

local function fails_with(expected, authorizers, routes)
  local want = {}
  for i, e in ipairs(type(expected) == "table" and expected or { expected }) do
    want[i] = SOURCE .. ": " .. e
  end
  assert.same(want, errors_of(base(authorizers, routes)))
end

local function jwt(t)
  t.type = "jwt"
  t.issuer = t.issuer or "https://idp.test/realm"
  t.audience = t.audience or { "pets" }
  return t
end

describe("moongate.config: JWT authorizers", function()
  teardown(function()
    os.execute("rm -rf " .. dir)
  end)

  it("checks every field", function()
    local fifty_one = {}
    for i = 1, 51 do fifty_one[i] = "a" .. i end
    fails_with({
      'apis.pets.authorizers.a.audience: must have at most 50 entries, got 51',
      'apis.pets.authorizers.b.audience: must not be empty',
      'apis.pets.authorizers.c.audience[2]: must not be empty',
      'apis.pets.authorizers.d.issuer: is required',
      'apis.pets.authorizers.e.jwks_uri: must be an http(s) URL, got "ftp://idp.test/keys"',
      'apis.pets.authorizers.f.jwks_file: file "' .. dir .. '/keys/missing.json" cannot be read',
      'apis.pets.authorizers.g.leeway: must be an integer between 0 and 300, got 301',
      'apis.pets.authorizers.h.ttl: must be an integer between 0 and 3600, got -1',
      'apis.pets.authorizers.i.algorithms[1]: must be one of "HS256", "HS384", "HS512", "RS256", "RS384", '
        .. '"RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", got "none"',
      'apis.pets.authorizers.j.identity_source: must be $request.header.NAME or $request.querystring.NAME, '
        .. 'got "$context.requestId"',
      'apis.pets.authorizers.k.usage_identifier_claim: must not be empty',
      'apis.pets.authorizers.l.kind: unknown key',
    }, {
      a = jwt { audience = fifty_one, jwks_file = "keys/jwks.json" },
      b = jwt { audience = {}, jwks_file = "keys/jwks.json" },
      c = jwt { audience = { "x", "" }, jwks_file = "keys/jwks.json" },
      d = { type = "jwt", audience = { "x" }, jwks_file = "keys/jwks.json" },
      e = jwt { jwks_uri = "ftp://idp.test/keys" },
      f = jwt { jwks_file = "keys/missing.json" },
      g = jwt { jwks_file = "keys/jwks.json", leeway = 301 },
      h = jwt { jwks_file = "keys/jwks.json", ttl = -1 },
      i = jwt { jwks_file = "keys/jwks.json", algorithms = { "none" } },
      j = jwt { jwks_file = "keys/jwks.json", identity_source = "$context.requestId" },
      k = jwt { jwks_file = "keys/jwks.json", usage_identifier_claim = "" },
      l = jwt { jwks_file = "keys/jwks.json", kind = "TOKEN" },
    })
  end)

  it("checks the key sources", function()
    fails_with({
      'apis.pets.authorizers.a.jwks_file: cannot be used with jwks_uri (give one JWK Set)',
      'apis.pets.authorizers.b: needs a key source: jwks_uri, jwks_file, secret_file, or discovery = true',
      'apis.pets.authorizers.c.issuer: must be an http(s) URL for OIDC discovery (or give jwks_uri, '
        .. 'jwks_file or secret_file), got "idp"',
      'apis.pets.authorizers.d.secret_file: the secret must be at least 32 bytes, got 31',
      'apis.pets.authorizers.e.algorithms[2]: "HS384" needs secret_file (an HS algorithm never uses a key '
        .. 'from a JWK Set)',
      'apis.pets.authorizers.f.algorithms: has no HS algorithm, and secret_file is the only key source',
    }, {
      a = jwt { jwks_uri = "https://idp.test/keys", jwks_file = "keys/jwks.json" },
      b = jwt { discovery = false },
      c = jwt { issuer = "idp" },
      d = jwt { secret_file = "keys/short.key" },
      e = jwt { jwks_file = "keys/jwks.json", algorithms = { "RS256", "HS384" } },
      f = jwt { secret_file = "keys/hs.key", algorithms = { "RS256" } },
    })
  end)

  it("is named by routes like any authorizer, with at most 10 scopes", function()
    local eleven = {}
    for i = 1, 11 do eleven[i] = "s" .. i end
    fails_with({
      'apis.pets.routes["GET /a"].authorizer: no authorizer "jwx" (did you mean "jwt"?)',
      'apis.pets.routes["GET /b"].scopes: must have at most 10 entries, got 11',
    }, { jwt = jwt { jwks_file = "keys/jwks.json" } }, {
      ["GET /a"] = { authorizer = "jwx", integration = { type = "mock" } },
      ["GET /b"] = { authorizer = "jwt", scopes = eleven, integration = { type = "mock" } },
    })
  end)

  it("gives the gateway the authorizers, resolved, and each route's index and scopes", function()
    local out = assert(config.validate(base({
      disc = jwt { issuer = "https://idp.test" },
      file = jwt { jwks_file = "keys/jwks.json", secret_file = "keys/hs.key", audience = { "a", "b" },
        algorithms = { "ES256", "HS256" }, leeway = 30, ttl = 0, usage_identifier_claim = "sub",
        identity_source = "$request.querystring.token" },
      lua = { type = "lua", policy = "policies/none.lua", ttl = 0 },
    }, {
      ["GET /a"] = { authorizer = "file", scopes = { "pets:read" }, integration = { type = "mock" } },
      ["GET /b"] = { authorizer = "disc", integration = { type = "mock" } },
      ["GET /c"] = { integration = { type = "mock" } },
    }), { source = SOURCE, prefix = dir }))
    local api = out.apis[1]
    assert.same({
      {
        name = "disc", where = "apis.pets.authorizers.disc", issuer = "https://idp.test",
        audience = { "pets" }, discovery = true, identity_source = "$request.header.Authorization",
        leeway = 0, ttl = 300,
      },
      {
        name = "file", where = "apis.pets.authorizers.file", issuer = "https://idp.test/realm",
        audience = { "a", "b" }, jwks_file = dir .. "/keys/jwks.json", secret_file = dir .. "/keys/hs.key",
        discovery = true, identity_source = "$request.querystring.token", leeway = 30,
        algorithms = { "ES256", "HS256" }, ttl = 0, usage_identifier_claim = "sub",
      },
    }, api.jwt_authorizers)
    assert.equal("GET /a", api.routes[1].key)
    assert.equal(2, api.routes[1].jwt)
    assert.same({ "pets:read" }, api.routes[1].scopes)
    assert.equal(1, api.routes[2].jwt)
    assert.same({}, api.routes[2].scopes)
    assert.is_nil(api.routes[3].jwt)
    assert.is_nil(api.routes[1].authorizer) -- no Lua use
  end)
end)
