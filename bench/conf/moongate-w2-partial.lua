-- W2 while API keys and throttling (issue 6) are not available: the same JSON
-- access-log line with 8 $context variables, then the W1 proxy. run.sh uses it only
-- when `moongate check -c conf/moongate-w2.lua` fails, and marks the row "partial".
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      stages = {
        ["$default"] = {
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
        ["GET /bench"] = { integration = { type = "http", uri = "http://127.0.0.1:18080/bench" } },
      },
    },
  },
}
