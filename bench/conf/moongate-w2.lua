-- W2 policy: API-key check, a stage token bucket that never runs out, a JSON
-- access-log line with 8 $context variables, then the W1 proxy.
-- Relative paths are resolved against the prefix (-p bench/results/run).
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  api_keys = { bench = { value = "bench-key-0123456789abcdef" } },
  apis = {
    bench = {
      stages = {
        ["$default"] = {
          throttle = { rate = 1000000, burst = 1000000 },
          access_log = {
            path = "logs/moongate-w2.access.log",
            format = '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
              .. '"requestTime":"$context.requestTime","httpMethod":"$context.httpMethod",'
              .. '"routeKey":"$context.routeKey","status":"$context.status",'
              .. '"responseLength":"$context.responseLength",'
              .. '"responseLatency":"$context.responseLatency"}',
          },
        },
      },
      routes = {
        ["GET /bench"] = {
          api_key_required = true,
          integration = { type = "http", uri = "http://127.0.0.1:18080/bench" },
        },
      },
    },
  },
}
