-- W5b no-op Lua hooks: W1 plus one Lua hook of each kind a request meets, each doing
-- next to nothing (noop/bench_noop.lua, the same code the other gateways run): a
-- stage web ACL of one rule (blocks only requests with x-bench-block), a REQUEST Lua
-- authorizer without a cache (ttl = 0: it runs for every request; denies only requests
-- with x-bench-deny), and W2's JSON access log with a log policy that returns nil (so
-- the format line is written). run.sh copies noop/ to <prefix>/policies/bench/.
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      stages = {
        ["$default"] = {
          waf = {
            default_action = "allow",
            rules = {
              { name = "noop", priority = 1, policy = "policies/bench/waf_noop.lua", action = "block" },
            },
          },
          access_log = {
            path = "logs/moongate-w5b.access.log",
            format = '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
              .. '"requestTime":"$context.requestTime","httpMethod":"$context.httpMethod",'
              .. '"routeKey":"$context.routeKey","status":"$context.status",'
              .. '"responseLength":"$context.responseLength",'
              .. '"responseLatency":"$context.responseLatency"}',
            policy = "policies/bench/log_noop.lua",
          },
        },
      },
      authorizers = {
        noop = { type = "lua", kind = "REQUEST", policy = "policies/bench/authorizer_noop.lua", ttl = 0 },
      },
      routes = {
        ["GET /bench"] = {
          authorizer = "noop",
          integration = { type = "http", uri = "http://127.0.0.1:18080/bench" },
        },
      },
    },
  },
}
