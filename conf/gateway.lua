-- The example served by `make run`: the API "pets" on 127.0.0.1:8080, whose http route
-- proxies to the mock-only API "backend" served by the same gateway on 127.0.0.1:8081.
return {
  workers = "auto",
  listen = {
    { address = "127.0.0.1", port = 8080, api = "pets" },
    { address = "127.0.0.1", port = 8081, api = "backend" },
  },
  apis = {
    pets = {
      stages = {
        ["$default"] = {
          variables = { backend = "http://127.0.0.1:8081" },
          access_log = {
            path = "logs/pets.log",
            format = '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
              .. '"time":"$context.requestTime","method":"$context.httpMethod",'
              .. '"routeKey":"$context.routeKey","status":"$context.status",'
              .. '"length":"$context.responseLength","latency":"$context.responseLatency",'
              .. '"integrationStatus":"$context.integrationStatus",'
              .. '"integrationLatency":"$context.integrationLatency",'
              .. '"error":"$context.error.responseType"}',
          },
        },
      },
      routes = {
        ["GET /pets"] = { integration = { type = "mock", status = 200,
          headers = { ["content-type"] = "application/json" },
          body = '[{"id":1,"type":"dog"},{"id":2,"type":"cat"}]' } },
        ["GET /pets/{id}"] = { integration = { type = "http",
          uri = "${stageVariables.backend}/animals/{id}", timeout_ms = 5000 } },
        ["ANY /echo/{proxy+}"] = { integration = { type = "http",
          uri = "${stageVariables.backend}/{proxy}" } },
        ["GET /health"] = { integration = { type = "mock", body = '{"status":"ok"}' } },
      },
      gateway_responses = {
        DEFAULT_4XX = { headers = { ["access-control-allow-origin"] = "*" } },
      },
    },
    backend = {
      stages = { ["$default"] = {} },
      routes = {
        ["GET /animals/{id}"] = { integration = { type = "mock",
          body = '{"source":"backend","kind":"animal"}' } },
        ["$default"] = { integration = { type = "mock", status = 200,
          body = '{"source":"backend","route":"$default"}' } },
      },
    },
  },
}
