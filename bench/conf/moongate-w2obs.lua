-- W2obs: W2 (conf/moongate-w2.lua) with observability on: trace propagation on every
-- request (traceparent to the upstream, the request id in x-request-id) and OTLP/HTTP
-- export of the sampled ones to the static upstream (which answers any path 200), the
-- metrics (always counted) scraped every second by run.sh through the management
-- listener. run.sh writes OBS_RATIO (default 0.01, Kong's default sampling rate) over
-- the sample ratio below.
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18084, api = "bench" } },
  management = { port = 18185 }, -- token: state/management.token, made at start-up
  tracing = {
    service_name = "bench",
    request_id_header = "x-request-id",
    otlp = { endpoint = "http://127.0.0.1:18080/v1/traces", sample_ratio = 0.01 },
  },
  api_keys = { bench = { value = "bench-key-0123456789abcdef" } },
  apis = {
    bench = {
      stages = {
        ["$default"] = {
          throttle = { rate = 1000000, burst = 1000000 },
          access_log = {
            path = "logs/moongate-w2obs.access.log",
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
