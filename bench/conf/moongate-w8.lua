-- W8 JWT authorizer: GET /bench with a bearer token (RS256 or ES256) checked by a JWT
-- authorizer against a local JWKS (run.sh generates the keys, the JWKS and the tokens in
-- <prefix>/jwt/ at start), answered by a mock integration (no backend, as HAProxy's
-- `http-request return`). /bench has the verified-token cache off (ttl = 0: signature
-- and claims checked on every request), /cached has it on (ttl = 300: the signature once
-- per token, the claims on every request).
local function authorizer(ttl)
  return {
    type = "jwt",
    issuer = "https://idp.test/realm",
    audience = { "bench" },
    jwks_file = "jwt/jwks.json",
    algorithms = { "RS256", "ES256" },
    ttl = ttl,
  }
end

local ok = { type = "mock", status = 200, headers = { ["content-type"] = "text/plain" }, body = "ok" }

return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      stages = { ["$default"] = {} },
      authorizers = { jwt = authorizer(0), jwt_cached = authorizer(300) },
      routes = {
        ["GET /bench"] = { authorizer = "jwt", integration = ok },
        ["GET /cached"] = { authorizer = "jwt_cached", integration = ok },
      },
    },
  },
}
