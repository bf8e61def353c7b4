-- The example served by `make run`: the API "pets" on 127.0.0.1:8080, whose http route
-- proxies to the mock-only API "backend" served by the same gateway on 127.0.0.1:8081,
-- with Lua policies (a WAF rule, an API-key authorizer, a Lua integration) and the
-- management listener `moongate reload -c conf/gateway.lua` talks to.
return {
  workers = "auto",
  listen = {
    { address = "127.0.0.1", port = 8080, api = "pets" },
    { address = "127.0.0.1", port = 8081, api = "backend" },
  },
  management = { address = "127.0.0.1", port = 9180 },
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
              .. '"error":"$context.error.responseType","waf":"$context.wafResponseCode",'
              .. '"caller":"$context.authorizer.caller"}',
          },
          waf = { default_action = "allow", rules = {
            { name = "blocked-nets", priority = 1, policy = "policies/waf/ip_set.lua", action = "block",
              config = { cidrs = { "192.0.2.0/24", "2001:db8::/32" }, header = "x-forwarded-for" } },
          } },
        },
      },
      authorizers = {
        keys = { type = "lua", policy = "policies/authorizers/api_key_header.lua",
                 identity_sources = { "$request.header.x-api-key" },
                 config = { keys = { ["demo-key-0123456789abcdef"] = "demo" } } },
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
        ["ANY /lua/{proxy+}"] = { authorizer = "keys",
          integration = { type = "lua", handler = "policies/examples/echo.lua" } },
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
