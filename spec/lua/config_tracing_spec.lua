-- The tracing section (README "Tracing"): defaults, what reaches the runtime, and the
-- errors, each naming its configuration path.
local config = require "moongate.config"

local SOURCE = "conf/gateway.lua"

local function conf(tracing)
  return {
    listen = { { port = 8080, api = "pets" } },
    tracing = tracing,
    apis = { pets = { stages = { prod = {} },
                      routes = { ["GET /pets"] = { integration = { type = "mock", body = "[]" } } } } },
  }
end

local function fails_with(expected, tracing)
  local c, errs = config.validate(conf(tracing), { source = SOURCE })
  assert.is_nil(c)
  assert.same({ SOURCE .. ": " .. expected }, errs)
end

describe("config tracing", function()
  it("is off when absent", function()
    local c = assert(config.validate(conf(nil), { source = SOURCE }))
    assert.is_nil(c.tracing)
  end)

  it("fills in the defaults and hands the fields to the runtime", function()
    local c = assert(config.validate(conf({ request_id_header = "X-Request-Id",
      otlp = { endpoint = "http://127.0.0.1:4318/v1/traces", headers = { ["X-Api-Key"] = "k" } } }),
      { source = SOURCE }))
    assert.same({
      service_name = "moongate", request_id_header = "x-request-id",
      otlp = { endpoint = "http://127.0.0.1:4318/v1/traces", sample_ratio = 1, batch_size = 512,
               max_queue = 2048, flush_interval_ms = 1000, timeout_ms = 2000,
               headers = { { name = "x-api-key", value = "k" } } },
    }, c.tracing)
    c = assert(config.validate(conf({}), { source = SOURCE }))
    assert.same({ service_name = "moongate" }, c.tracing)
  end)

  it("reports mistakes with their path", function()
    fails_with("tracing.otlp.endpoint: is required", { otlp = {} })
    fails_with('tracing.otlp.endpoint: must be an http(s) URL, got "udp://x:1"',
      { otlp = { endpoint = "udp://x:1" } })
    fails_with("tracing.otlp.sample_ratio: must be a number between 0 and 1, got 2",
      { otlp = { endpoint = "http://c:4318/v1/traces", sample_ratio = 2 } })
    fails_with("tracing.otlp.batch_size: must be at most max_queue (100), got 200",
      { otlp = { endpoint = "http://c:4318/v1/traces", batch_size = 200, max_queue = 100 } })
    fails_with("tracing.otlp.timeout_ms: must be an integer between 10 and 600000, got 0",
      { otlp = { endpoint = "http://c:4318/v1/traces", timeout_ms = 0 } })
    fails_with('tracing.request_id_header: "traceparent" is a header the gateway sets itself',
      { request_id_header = "traceparent" })
    fails_with("tracing.request_id_header: invalid header name: must be an HTTP token",
      { request_id_header = "x request" })
    fails_with('tracing.sample_ratio: unknown key (did you mean "otlp.sample_ratio"?)',
      { sample_ratio = 0.5 })
  end)
end)
