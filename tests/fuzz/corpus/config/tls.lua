return {
  workers = 2,
  lua = { path = { "policies" }, instruction_budget = 50000 },
  listen = {
    { address = "::1", port = 8443, tls = { certificate = "certs/ca", key = "certs/ca", unknown_sni = "reject" } },
    { port = 8080, api = "a" },
  },
  management = { address = "127.0.0.1", port = 9180 },
  watch = true,
  throttle = { rate = 0.5, burst = 10 },
  timeouts = { header = 1.5, idle = 60, body = 30, shutdown = 0.1 },
  limits = { max_body_size = 1, max_header_size = 65536 },
  api_keys = { k = { sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" } },
  domains = {
    ["mtls.example.com"] = { mappings = { v1 = "a/s", [""] = "a" },
      certificate = "certs/ca", key = "certs/ca",
      mtls = { truststore = "certs/ca", crl = "certs/ca-crl", mode = "request",
               forward_header = "x-client-cert", version = 2,
               revocation = { policy = "policies/authorizers/revocation.lua", ttl = 5 } } },
  },
  apis = {
    a = {
      default_endpoint = false,
      route_selection = { policy = "policies/routes/header.lua", config = { header = "x-v", routes = { ["2"] = "GET /v2/{id}" } } },
      stages = { s = { variables = { u = "https://backend.example:8443/x" }, rate_limit_headers = false,
        client_certificate = { generate = true },
        access_log = { path = "logs/a.log", policy = "policies/log/json.lua" },
        route_settings = { ["GET /v2/{id}"] = { throttle = { rate = 1, burst = 1 } } } } },
      routes = {
        ["GET /v2/{id}"] = { authorizer = "tok", scopes = { "read" }, integration = { type = "http", uri = "${stageVariables.u}/{id}", method = "POST", timeout_ms = 50 } },
        ["DELETE /{p+}"] = { api_key_required = true, integration = { type = "mock", status = 599, headers = { a = "b" } } },
      },
      authorizers = { tok = { type = "lua", kind = "TOKEN", policy = "policies/authorizers/api_key_header.lua", ttl = 0, token_pattern = "^Bearer ", config = { keys = { ["fuzz-key-0123456789abcdef"] = "x" } } } },
      usage_plans = { p = { keys = { "k" }, stages = { "s" }, quota = { limit = 10, period = "month", offset = 3 }, route_settings = { ["DELETE /{p+}"] = { throttle = { rate = 2, burst = 2 } } } } },
      gateway_responses = { THROTTLED = { status = 503, body = "$context.error.message" }, MISSING_AUTHENTICATION_TOKEN = { headers = { x = "$request.header.y" } } },
    },
  },
}
