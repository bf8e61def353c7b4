-- W10: W2 (conf/moongate-w2.lua) with cluster throttling: the stage's token bucket is
-- cluster-wide, shared with two more nodes through one Redis (run.sh starts
-- redis-server on port 18189 and nodes w10-2 and w10-3 from this file with their own
-- port, node id and log). wrk loads this node; the others idle but settle with Redis.
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18086, api = "bench" } },
  cluster = { node_id = "w10-1", redis = { address = "127.0.0.1", port = 18189 }, expected_nodes = 3 },
  api_keys = { bench = { value = "bench-key-0123456789abcdef" } },
  apis = {
    bench = {
      stages = {
        ["$default"] = {
          throttle = { rate = 1000000, burst = 1000000 },
          access_log = {
            path = "logs/moongate-w10.access.log",
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
