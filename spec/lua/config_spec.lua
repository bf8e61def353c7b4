local config = require "moongate.config"

local SOURCE = "conf/gateway.lua"

-- A small valid configuration; each call returns a fresh table to modify.
local function base()
  return {
    listen = { { port = 8080, api = "pets" } },
    apis = {
      pets = {
        stages = {
          prod = { variables = { backend = "http://127.0.0.1:9001" } },
          dev = { variables = { backend = "http://127.0.0.1:9002" } },
        },
        routes = {
          ["GET /pets"] = { integration = { type = "mock", body = "[]" } },
          ["GET /pets/{id}"] = {
            integration = { type = "http", uri = "${stageVariables.backend}/pets/{id}" },
          },
        },
      },
    },
  }
end

local function with(edit)
  local c = base()
  edit(c)
  return c
end

local function errors_of(tbl, prefix)
  local conf, errs = config.validate(tbl, { source = SOURCE, prefix = prefix })
  assert.is_nil(conf)
  assert.is_table(errs)
  return errs
end

-- Asserts that validation fails with exactly this one error. `tbl` is a
-- configuration or a function that edits the base configuration.
local function fails_with(expected, tbl, prefix)
  if type(tbl) == "function" then
    tbl = with(tbl)
  end
  assert.same({ SOURCE .. ": " .. expected }, errors_of(tbl, prefix))
end

local function route(r)
  return function(c)
    c.apis.pets.routes["GET /x"] = r
  end
end

local function http_route(uri, key)
  return function(c)
    c.apis.pets.routes[key or "GET /x"] = { integration = { type = "http", uri = uri } }
  end
end

local function tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkdir -p '" .. name .. "'"))
  return name
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function find_by(list, field, value)
  for _, x in ipairs(list) do
    if x[field] == value then
      return x
    end
  end
end

describe("moongate.config", function()
  describe("validate() on a valid configuration", function()
    local conf, errs, dir

    setup(function()
      dir = tmpdir()
      assert(os.execute("mkdir '" .. dir .. "/logs'"))
      local c = base()
      c.workers = 4
      c.listen[2] = { address = "::1", port = 8081 }
      c.timeouts = { idle = 2.5 }
      c.domains = {
        ["API.Example.test"] = { mappings = { [""] = "pets/prod", ["/v1/"] = "pets" } },
      }
      c.apis.pets.stages.prod.variables.retries = 3
      c.apis.pets.stages.prod.access_log = { path = "logs/pets.log", format = "$context.requestId" }
      c.apis.pets.routes["$default"] = { integration = { type = "mock", status = 404, headers = { ["X-A"] = "1" } } }
      c.apis.pets.routes["POST /pets"] = {
        integration = { type = "http", uri = "http://127.0.0.1:9001/pets", method = "PUT", timeout_ms = 500 },
      }
      c.apis.pets.gateway_responses = {
        DEFAULT_4XX = { headers = { ["access-control-allow-origin"] = "*" } },
        THROTTLED = { status = 429, body = '{"m":"slow down"}' },
      }
      conf, errs = config.validate(c, { source = SOURCE, prefix = dir .. "/" })
    end)

    teardown(function()
      os.execute("rm -r '" .. dir .. "'")
    end)

    it("returns no errors", function()
      assert.is_nil(errs)
      assert.is_table(conf)
    end)

    it("keeps workers and listeners, defaulting the address", function()
      assert.equal(4, conf.workers)
      assert.same({
        { address = "127.0.0.1", port = 8080, api = "pets" },
        { address = "::1", port = 8081 },
      }, conf.listen)
    end)

    it("fills limits and timeouts defaults", function()
      assert.same({ max_body_size = 10485760, max_header_size = 10240 }, conf.limits)
      assert.same({ header = 10, idle = 2.5, body = 30, shutdown = 10, send = 60 }, conf.timeouts)
    end)

    it("lower-cases hosts and strips slashes from base paths", function()
      assert.same({ {
        host = "api.example.test",
        mappings = {
          { base = "", api = "pets", stage = "prod" },
          { base = "v1", api = "pets" },
        },
      } }, conf.domains)
    end)

    it("normalizes an API with sorted stages and variables", function()
      local api = conf.apis[1]
      assert.equal(1, #conf.apis)
      assert.equal("pets", api.id)
      assert.equal("http", api.protocol)
      assert.is_true(api.default_endpoint)
      assert.same({ "dev", "prod" }, { api.stages[1].name, api.stages[2].name })
      assert.same({
        { name = "backend", value = "http://127.0.0.1:9001" },
        { name = "retries", value = "3" },
      }, api.stages[2].variables)
      assert.is_nil(api.stages[1].access_log)
      assert.same({
        sink = { kind = "file", path = dir .. "/logs/pets.log", where = "apis.pets.stages.prod.access_log.path" },
        format = "$context.requestId",
        where = "apis.pets.stages.prod.access_log.format",
      }, api.stages[2].access_log)
    end)

    it("sorts routes by key and fills integration defaults", function()
      local routes = conf.apis[1].routes
      local keys = {}
      for i, r in ipairs(routes) do
        keys[i] = r.key
      end
      assert.same({ "$default", "GET /pets", "GET /pets/{id}", "POST /pets" }, keys)
      assert.same({
        key = "$default", api_key_required = false,
        integration = { type = "mock", status = 404, headers = { { name = "x-a", value = "1" } }, body = "" },
      }, routes[1])
      assert.same({
        key = "GET /pets/{id}", method = "GET", path = "/pets/{id}", api_key_required = false,
        integration = { type = "http", uri = "${stageVariables.backend}/pets/{id}", timeout_ms = 29000 },
      }, routes[3])
      assert.same({ type = "http", uri = "http://127.0.0.1:9001/pets", method = "PUT", timeout_ms = 500 },
        routes[4].integration)
    end)

    it("lists gateway responses with where they were configured", function()
      assert.same({
        {
          type = "DEFAULT_4XX",
          headers = { { name = "access-control-allow-origin", value = "*" } },
          where = "apis.pets.gateway_responses.DEFAULT_4XX",
        },
        { type = "THROTTLED", status = 429, headers = {}, body = '{"m":"slow down"}',
          where = "apis.pets.gateway_responses.THROTTLED" },
      }, conf.apis[1].gateway_responses)
    end)
  end)

  describe("defaults", function()
    it("uses workers 0 (auto) and one listener on 127.0.0.1:8080", function()
      local c = base()
      c.listen = nil
      local conf = assert(config.validate(c))
      assert.equal(0, conf.workers)
      assert.same({ { address = "127.0.0.1", port = 8080 } }, conf.listen)
      assert.same({}, conf.domains)
      assert.same({}, conf.apis[1].gateway_responses)
    end)
  end)

  describe("validate() errors", function()
    it("reports an unknown key with a suggestion", function()
      fails_with('apis.pets.stags: unknown key (did you mean "stages"?)', with(function(c)
        c.apis.pets.stags = {}
      end))
    end)

    it("suggests a key that the unknown key is a prefix of", function()
      fails_with('limits.max_body: unknown key (did you mean "max_body_size"?)', with(function(c)
        c.limits = { max_body = 1 }
      end))
    end)

    it("reports an unknown key without a suggestion when nothing is close", function()
      fails_with("colour: unknown key", with(function(c)
        c.colour = "blue"
      end))
    end)

    it("reports every error, sorted", function()
      local errs = errors_of(with(function(c)
        c.workers = 0
        c.listen[2] = { port = 70000 }
        c.apis.pets.routes["GET /x"] = { integration = { type = "http", uri = "ftp://x" } }
        c.limits = { max_header_size = 100 }
      end))
      assert.same({
        SOURCE .. ': apis.pets.routes["GET /x"].integration.uri: must be an http(s) URL, got "ftp://x"',
        SOURCE .. ": limits.max_header_size: must be an integer between 1024 and 65536, got 100",
        SOURCE .. ": listen[2].port: must be an integer between 1 and 65535, got 70000",
        SOURCE .. ': workers: must be "auto" or an integer between 1 and 256, got 0',
      }, errs)
    end)

    it("rejects workers above 256 and non-integers", function()
      fails_with('workers: must be "auto" or an integer between 1 and 256, got 257', with(function(c)
        c.workers = 257
      end))
      fails_with('workers: must be "auto" or an integer between 1 and 256, got 1.5', with(function(c)
        c.workers = 1.5
      end))
    end)

    it("requires apis", function()
      fails_with("apis: is required", { listen = { { port = 1 } } })
    end)

    it("rejects an empty listen list and a map in its place", function()
      fails_with("listen: must not be empty", with(function(c)
        c.listen = {}
      end))
      fails_with('listen: must be a list, found key "port"', with(function(c)
        c.listen = { port = 8080 }
      end))
    end)

    it("requires a listener port and checks the address literal", function()
      fails_with("listen[1].port: is required", with(function(c)
        c.listen = { {} }
      end))
      fails_with('listen[1].address: must be an IPv4 or IPv6 address literal, got "localhost"', with(function(c)
        c.listen = { { address = "localhost", port = 80 } }
      end))
      fails_with('listen[1].address: must be an IPv4 or IPv6 address literal, got "256.1.1.1"', with(function(c)
        c.listen = { { address = "256.1.1.1", port = 80 } }
      end))
    end)

    it("accepts IPv4 and IPv6 literals", function()
      local c = base()
      c.listen = {
        { address = "0.0.0.0", port = 1 }, { address = "::", port = 2 },
        { address = "fe80::1:2", port = 3 }, { address = "::ffff:10.0.0.1", port = 4 },
        { address = "1:2:3:4:5:6:7:8", port = 5 },
      }
      local conf, errs = config.validate(c)
      assert.is_nil(errs)
      assert.equal(5, #conf.listen)
    end)

    it("rejects a listener naming an unknown API", function()
      fails_with('listen[1].api: unknown API "petz" (did you mean "pets"?)', with(function(c)
        c.listen[1].api = "petz"
      end))
    end)

    it("rejects two listeners on the same address and port", function()
      fails_with("listen[3]: 127.0.0.1:8080 is already used by listen[1]", with(function(c)
        c.listen[2] = { address = "127.0.0.2", port = 8080 }
        c.listen[3] = { address = "127.0.0.1", port = 8080 }
      end))
    end)

    it("checks limits and timeouts ranges", function()
      fails_with("limits.max_body_size: must be an integer between 0 and 1099511627776, got -1", with(function(c)
        c.limits = { max_body_size = -1 }
      end))
      fails_with("timeouts.header: must be a number greater than 0 and at most 86400, got 0", with(function(c)
        c.timeouts = { header = 0 }
      end))
      fails_with('timeouts.idle: must be a number greater than 0 and at most 86400, got "60"', with(function(c)
        c.timeouts = { idle = "60" }
      end))
      fails_with("timeouts.send: must be a number greater than 0 and at most 86400, got -1", with(function(c)
        c.timeouts = { send = -1 }
      end))
      fails_with("timeouts.send: must be a number greater than 0 and at most 86400, got 86401", with(function(c)
        c.timeouts = { send = 86401 }
      end))
    end)

    it("takes exact = true on throttle limits, a boolean and false by default", function()
      local conf = assert(config.validate(with(function(c)
        c.throttle = { rate = 1, burst = 2 }
        c.apis.pets.stages.prod.throttle = { rate = 0.1, burst = 5, exact = true }
      end), { source = SOURCE }))
      assert.is_false(conf.throttle.exact)
      local prod = find_by(find_by(conf.apis, "id", "pets").stages, "name", "prod")
      assert.is_true(prod.throttle.exact)
      fails_with('apis.pets.stages.prod.shared_throttle.exact: must be a boolean, got "yes"', with(function(c)
        c.apis.pets.stages.prod.shared_throttle = { rate = 1, burst = 1, exact = "yes" }
      end))
    end)

    it("checks domain host names and base paths", function()
      fails_with('domains["a b"]: invalid host name: only letters, digits, "-" and "." are allowed', with(function(c)
        c.domains = { ["a b"] = { mappings = { [""] = "pets" } } }
      end))
      fails_with('domains.x.mappings["v1/v2"]: invalid base path: must be "" or one path segment of [A-Za-z0-9._~-]',
        with(function(c)
          c.domains = { x = { mappings = { ["v1/v2"] = "pets" } } }
        end))
    end)

    it("rejects hosts that are equal once lower-cased", function()
      fails_with('domains["a.test"]: duplicate host (same as "A.test")', with(function(c)
        c.domains = { ["A.test"] = { mappings = { [""] = "pets" } }, ["a.test"] = { mappings = { [""] = "pets" } } }
      end))
    end)

    it("checks that mappings name an existing API and stage", function()
      fails_with('domains.x.mappings[""]: unknown API "pet" (did you mean "pets"?)', with(function(c)
        c.domains = { x = { mappings = { [""] = "pet" } } }
      end))
      fails_with('domains.x.mappings.v1: API "pets" has no stage "prd" (did you mean "prod"?)', with(function(c)
        c.domains = { x = { mappings = { v1 = "pets/prd" } } }
      end))
      fails_with('domains.x.mappings.v1: must be "api" or "api/stage", got "pets/a/b"', with(function(c)
        c.domains = { x = { mappings = { v1 = "pets/a/b" } } }
      end))
    end)

    it("checks API ids and protocol", function()
      fails_with('apis["my api"]: invalid API id: must match [A-Za-z0-9_-]+', with(function(c)
        c.apis["my api"] = c.apis.pets
        c.listen[1].api = nil
        c.apis.pets = nil
      end))
      fails_with('apis.pets.protocol: must be one of "http", "rest", "websocket", got "grpc"', with(function(c)
        c.apis.pets.protocol = "grpc"
      end))
      fails_with('apis.pets.default_endpoint: must be a boolean, got "no"', with(function(c)
        c.apis.pets.default_endpoint = "no"
      end))
    end)

    it("requires non-empty stages and routes", function()
      fails_with("apis.pets.stages: must not be empty", with(function(c)
        c.apis.pets.stages = {}
      end))
      fails_with("apis.pets.routes: is required", with(function(c)
        c.apis.pets.routes = nil
      end))
    end)

    it("checks stage names and variables", function()
      fails_with('apis.pets.stages["pro d"]: invalid stage name: must be "$default" or match [A-Za-z0-9_-]{1,128}',
        with(function(c)
          c.apis.pets.stages["pro d"] = {}
        end))
      local long = ("s"):rep(129)
      fails_with('apis.pets.stages.' .. long .. ': invalid stage name: must be "$default" or match [A-Za-z0-9_-]{1,128}',
        with(function(c)
          c.apis.pets.stages[long] = {}
        end))
      fails_with("apis.pets.stages.prod.variables[\"a-b\"]: invalid variable name: must match [A-Za-z0-9_]+",
        with(function(c)
          c.apis.pets.stages.prod.variables["a-b"] = "x"
        end))
      fails_with("apis.pets.stages.prod.variables.flag: must be a string, got true", with(function(c)
        c.apis.pets.stages.prod.variables.flag = true
      end))
    end)

    it("limits a stage to 100 variables", function()
      fails_with("apis.pets.stages.dev.variables: must have at most 100 entries, got 101", with(function(c)
        for i = 1, 100 do
          c.apis.pets.stages.dev.variables["v" .. i] = "x"
        end
      end))
    end)

    it("checks the access log directory and format", function()
      fails_with('apis.pets.stages.prod.access_log.path: directory "no-such-dir" does not exist', with(function(c)
        c.apis.pets.stages.prod.access_log = { path = "no-such-dir/a.log", format = "$context.status" }
      end))
      fails_with("apis.pets.stages.prod.access_log.format: must be at most 3072 bytes, got 3073", with(function(c)
        c.apis.pets.stages.prod.access_log = { path = "a.log", format = ("x"):rep(3073) }
      end))
      fails_with("apis.pets.stages.prod.access_log.path: must not be empty", with(function(c)
        c.apis.pets.stages.prod.access_log = { path = "", format = "x" }
      end))
    end)

    it("resolves the access log path against the prefix", function()
      local dir = tmpdir()
      assert(os.execute("mkdir '" .. dir .. "/logs'"))
      local c = base()
      c.apis.pets.stages.dev.access_log = { path = "logs/a.log", format = "$context.status" }
      local conf, errs = config.validate(c, { prefix = dir })
      assert.is_nil(errs)
      assert.equal(dir .. "/logs/a.log", conf.apis[1].stages[1].access_log.sink.path)
      fails_with('apis.pets.stages.dev.access_log.path: directory "' .. dir .. '/nope" does not exist',
        with(function(x)
          x.apis.pets.stages.dev.access_log = { path = "nope/a.log", format = "x" }
        end), dir)
      os.execute("rm -r '" .. dir .. "'")
    end)
  end)

  describe("route keys", function()
    local function route_at(key)
      return function(c)
        c.apis.pets.routes[key] = { integration = { type = "mock" } }
      end
    end

    local function key_fails(key, reason)
      fails_with('apis.pets.routes["' .. key .. '"]: ' .. reason, with(function(c)
        c.apis.pets.routes[key] = { integration = { type = "mock" } }
      end))
    end

    it("accepts $default, / and parameters", function()
      local c = base()
      for _, key in ipairs({ "$default", "ANY /", "OPTIONS /a.b/~c/{p}/x:y@z", "DELETE /{proxy+}", "PATCH /a/{b}/{c+}" }) do
        c.apis.pets.routes[key] = { integration = { type = "mock" } }
      end
      local conf, errs = config.validate(c)
      assert.is_nil(errs)
      assert.equal(7, #conf.apis[1].routes)
    end)

    it("requires METHOD and path separated by one space", function()
      key_fails("GET  /x", 'must be "METHOD /path" or "$default" (one space between method and path)')
      fails_with('apis.pets.routes.GET: must be "METHOD /path" or "$default" (one space between method and path)',
        route_at("GET"))
      key_fails("GET /x ", 'must be "METHOD /path" or "$default" (one space between method and path)')
    end)

    it("requires an upper-case known method", function()
      key_fails("get /x", 'method "get" must be one of GET POST PUT DELETE PATCH HEAD OPTIONS ANY')
      key_fails("FETCH /x", 'method "FETCH" must be one of GET POST PUT DELETE PATCH HEAD OPTIONS ANY')
    end)

    it("requires a clean absolute path", function()
      key_fails("GET pets", 'path "pets" must start with "/"')
      key_fails("GET /pets/", 'path must not end with "/"')
      key_fails("GET /a//b", "path must not contain empty segments")
      key_fails("GET /a/../b", 'segment ".." is not allowed')
      key_fails("GET /a%20b", "segment \"a%20b\" has characters outside [A-Za-z0-9._~!$&'()*+,;=:@-]")
    end)

    it("checks parameters", function()
      key_fails("GET /{proxy+}/x", "greedy variable {proxy+} must be the last segment")
      key_fails("GET /a{id}", 'segment "a{id}" mixes literal text and a {parameter}')
      key_fails("GET /{1d}", 'parameter name "1d" must match [A-Za-z_][A-Za-z0-9_]*')
      key_fails("GET /{id}/{id}", "duplicate path parameter {id}")
    end)

    it("rejects routes with the same method and path shape", function()
      fails_with('apis.pets.routes["GET /pets/{petId}"]: conflicts with "GET /pets/{id}"', with(function(c)
        c.apis.pets.routes["GET /pets/{petId}"] = { integration = { type = "mock" } }
      end))
    end)

    it("allows the same path with another method or another parameter kind", function()
      local c = base()
      c.apis.pets.routes["ANY /pets/{id}"] = { integration = { type = "mock" } }
      c.apis.pets.routes["GET /pets/{rest+}"] = { integration = { type = "mock" } }
      assert.is_nil(select(2, config.validate(c)))
    end)

    it("allows only integration in a route", function()
      assert.same({
        SOURCE .. ': apis.pets.routes["GET /x"].integration: is required',
        SOURCE .. ': apis.pets.routes["GET /x"].integraton: unknown key (did you mean "integration"?)',
      }, errors_of(with(route({ integraton = { type = "mock" } }))))
      fails_with('apis.pets.routes["GET /x"].integration: is required', route({}))
    end)
  end)

  describe("websocket APIs", function()
    local function ws_base()
      return {
        listen = { { port = 8080, api = "chat" } },
        apis = {
          chat = {
            protocol = "websocket",
            route_selection_expression = "$request.body.action",
            stages = { prod = { variables = { backend = "http://127.0.0.1:9001" } } },
            routes = {
              ["$connect"] = { integration = { type = "mock" } },
              ["$default"] = { integration = { type = "mock", body = "?" }, route_response = true },
              sendmessage = { integration = { type = "lua", handler = "policies/examples/echo.lua" }, route_response = true },
            },
          },
        },
      }
    end

    local function ws_with(edit)
      local c = ws_base()
      edit(c.apis.chat, c)
      return c
    end

    it("accepts a websocket API and shapes its settings with their defaults", function()
      local conf, errs = config.validate(ws_with(function(a)
        a.websocket = { max_frame_size = 4096, ping_interval = 20.5 }
        a.routes["$disconnect"] = { integration = { type = "http", uri = "${stageVariables.backend}/gone" } }
        a.routes["$connect"].api_key_required = true
        a.routes["weird key: 1/2 ~!"] = { integration = { type = "mock" } }
      end), { source = SOURCE })
      assert.is_nil(errs)
      local api = conf.apis[1]
      assert.equal("websocket", api.protocol)
      assert.equal("$request.body.action", api.route_selection_expression)
      assert.same({
        max_frame_size = 4096, max_message_size = 131072, idle_timeout = 600, max_duration = 7200,
        ping_interval = 20.5, pong_timeout = 30, send_queue_size = 1048576,
      }, api.websocket)
      local r = find_by(api.routes, "key", "sendmessage")
      assert.is_true(r.route_response)
      assert.is_nil(r.method)
      assert.is_false(find_by(api.routes, "key", "$connect").route_response)
      assert.is_true(find_by(api.routes, "key", "$connect").api_key_required)
      assert.is_table(find_by(api.routes, "key", "weird key: 1/2 ~!"))
    end)

    it("leaves HTTP APIs without websocket settings", function()
      local conf = config.validate(base(), { source = SOURCE })
      assert.is_nil(conf.apis[1].websocket)
      assert.is_nil(conf.apis[1].route_selection_expression)
    end)

    it("requires route_selection_expression", function()
      fails_with("apis.chat.route_selection_expression: is required for websocket APIs", ws_with(function(a)
        a.route_selection_expression = nil
      end))
      fails_with("apis.chat.route_selection_expression: must be a string, got 5", ws_with(function(a)
        a.route_selection_expression = 5
      end))
    end)

    it("refuses what only websocket APIs have on HTTP APIs", function()
      fails_with("apis.pets.route_selection_expression: is only for websocket APIs", with(function(c)
        c.apis.pets.route_selection_expression = "$request.body.action"
      end))
      fails_with("apis.pets.websocket: is only for websocket APIs", with(function(c)
        c.apis.pets.websocket = {}
      end))
      fails_with('apis.pets.routes["GET /pets"].route_response: is only for websocket APIs', with(function(c)
        c.apis.pets.routes["GET /pets"].route_response = true
      end))
      fails_with('apis.pets.routes["GET /pets"].route_response: must be a boolean, got "yes"', with(function(c)
        c.apis.pets.routes["GET /pets"].route_response = "yes"
      end))
    end)

    it("refuses the route_selection policy on websocket APIs", function()
      local errs = errors_of(ws_with(function(a)
        a.route_selection = { policy = "policies/routes/header.lua", config = { header = "x", routes = {} } }
      end))
      assert.is_truthy(#errs >= 1)
      local want = SOURCE .. ": apis.chat.route_selection: is not for websocket APIs"
        .. " (route_selection_expression selects their routes)"
      local found = false
      for _, e in ipairs(errs) do
        found = found or e == want
      end
      assert.is_true(found, table.concat(errs, "\n"))
    end)

    it("checks websocket route keys", function()
      fails_with('apis.chat.routes["$conect"]: must be "$connect", "$disconnect", "$default" or a key not'
        .. ' starting with "$" (did you mean "$connect"?)', ws_with(function(a)
        a.routes["$conect"] = { integration = { type = "mock" } }
      end))
      fails_with('apis.chat.routes[""]: must be 1 to 128 characters, got 0', ws_with(function(a)
        a.routes[""] = { integration = { type = "mock" } }
      end))
      fails_with("apis.chat.routes." .. string.rep("k", 129) .. ": must be 1 to 128 characters, got 129",
        ws_with(function(a)
          a.routes[string.rep("k", 129)] = { integration = { type = "mock" } }
        end))
      fails_with('apis.chat.routes["a\\tb"]: must be printable ASCII characters (space to ~)', ws_with(function(a)
        a.routes["a\tb"] = { integration = { type = "mock" } }
      end))
      fails_with('apis.chat.routes["caf\195\169"]: must be printable ASCII characters (space to ~)',
        ws_with(function(a)
          a.routes["caf\195\169"] = { integration = { type = "mock" } }
        end))
      -- "METHOD /path" is an ordinary key there, and an HTTP API keeps its own form
      assert.is_nil(select(2, config.validate(ws_with(function(a)
        a.routes["GET /x"] = { integration = { type = "mock" } }
      end), { source = SOURCE })))
      fails_with('apis.pets.routes.sendmessage: must be "METHOD /path" or "$default" (one space between method and path)',
        with(function(c)
          c.apis.pets.routes.sendmessage = { integration = { type = "mock" } }
        end))
    end)

    it("checks route_settings keys against the routes", function()
      fails_with('apis.chat.stages.prod.route_settings.sendmesage: is not a route of the API (did you mean "sendmessage"?)',
        ws_with(function(a)
          a.stages.prod.route_settings = { sendmesage = { throttle = { rate = 1, burst = 1 } } }
        end))
      assert.is_nil(select(2, config.validate(ws_with(function(a)
        a.stages.prod.route_settings = { sendmessage = { throttle = { rate = 1, burst = 1 } } }
      end), { source = SOURCE })))
      fails_with('apis.pets.stages.prod.route_settings.sendmessage: must be "METHOD /path" or "$default"'
        .. " (one space between method and path)", with(function(c)
          c.apis.pets.stages.prod.route_settings = { sendmessage = { throttle = { rate = 1, burst = 1 } } }
        end))
    end)

    it("allows authorizers and API keys only on $connect", function()
      local function with_authorizer(edit)
        return ws_with(function(a)
          a.authorizers = { auth = { type = "lua", policy = "policies/authorizers/api_key_header.lua",
            config = { keys = { k = "caller" } }, ttl = 0 } }
          edit(a)
        end)
      end
      fails_with('apis.chat.routes.sendmessage.authorizer: only the "$connect" route may have an authorizer'
        .. " (a WebSocket is authorized when it connects)", with_authorizer(function(a)
          a.routes.sendmessage.authorizer = "auth"
        end))
      fails_with('apis.chat.routes["$default"].api_key_required: only the "$connect" route may require an API key'
        .. " (a WebSocket is authorized when it connects)", ws_with(function(a)
          a.routes["$default"].api_key_required = true
        end))
      assert.is_nil(select(2, config.validate(ws_with(function(a)
        a.routes.sendmessage.api_key_required = false
        a.routes["$connect"].api_key_required = true
      end), { source = SOURCE })))
    end)

    it("checks websocket settings", function()
      fails_with("apis.chat.websocket.max_frame_size: must be an integer between 125 and 16777216, got 100",
        ws_with(function(a)
          a.websocket = { max_frame_size = 100 }
        end))
      fails_with("apis.chat.websocket.max_message_size: must be at least max_frame_size (65536), got 1000",
        ws_with(function(a)
          a.websocket = { max_frame_size = 65536, max_message_size = 1000 }
        end))
      fails_with("apis.chat.websocket.max_message_size: must be at least max_frame_size (32768), got 1000",
        ws_with(function(a)
          a.websocket = { max_message_size = 1000 }
        end))
      fails_with("apis.chat.websocket.idle_timeout: must be a number at least 0 and at most 604800, got -1",
        ws_with(function(a)
          a.websocket = { idle_timeout = -1 }
        end))
      fails_with("apis.chat.websocket.pong_timeout: must be a number greater than 0 and at most 3600, got 0",
        ws_with(function(a)
          a.websocket = { pong_timeout = 0 }
        end))
      fails_with("apis.chat.websocket.send_queue_size: must be an integer between 1024 and 1073741824, got 10",
        ws_with(function(a)
          a.websocket = { send_queue_size = 10 }
        end))
      fails_with('apis.chat.websocket.max_frame: unknown key (did you mean "max_frame_size"?)', ws_with(function(a)
        a.websocket = { max_frame = 1000 }
      end))
      fails_with('apis.chat.websocket.connections_endpoint: must be a boolean, got 1', ws_with(function(a)
        a.websocket = { connections_endpoint = 1 }
      end))
    end)

    it("checks the authorizer of @connections on the API's endpoint", function()
      local function with_ops(edit)
        return ws_with(function(a)
          a.authorizers = { ops = { type = "lua", policy = "policies/authorizers/api_key_header.lua",
            config = { keys = { k = "caller" } }, ttl = 0 } }
          edit(a)
        end)
      end
      fails_with("apis.chat.websocket.connections_authorizer: needs connections_endpoint = true", with_ops(function(a)
        a.websocket = { connections_authorizer = "ops" }
      end))
      fails_with('apis.chat.websocket.connections_authorizer: names no authorizer of this API ("opz")',
        with_ops(function(a)
          a.websocket = { connections_endpoint = true, connections_authorizer = "opz" }
        end))
      fails_with("apis.chat.websocket.connections_scopes: needs connections_authorizer", with_ops(function(a)
        a.websocket = { connections_endpoint = true, connections_scopes = { "ws:manage" } }
      end))
      assert.is_nil(select(2, config.validate(with_ops(function(a)
        a.websocket = { connections_endpoint = true, connections_authorizer = "ops", connections_scopes = { "x" } }
      end), { source = SOURCE })))
    end)

    it("checks http integrations without path parameters", function()
      fails_with("apis.chat.routes.sendmessage.integration.uri: {id} is not a path parameter of the route",
        ws_with(function(a)
          a.routes.sendmessage.integration = { type = "http", uri = "http://127.0.0.1:9001/{id}" }
        end))
      fails_with('apis.chat.routes.sendmessage.integration.uri: stage "prod" has no variable "nope"',
        ws_with(function(a)
          a.routes.sendmessage.integration = { type = "http", uri = "${stageVariables.nope}/x" }
        end))
    end)
  end)

  describe("REST APIs", function()
    local function rest_with(edit)
      return with(function(c)
        c.apis.pets.protocol = "rest"
        if edit then edit(c.apis.pets, c) end
      end)
    end

    it("accepts a REST API and shapes its protocol and api_key_source", function()
      local conf, errs = config.validate(rest_with(function(a)
        a.routes["ANY /{proxy+}"] = { integration = { type = "mock" } }
        a.api_key_source = "AUTHORIZER"
      end), { source = SOURCE })
      assert.is_nil(errs)
      assert.equal("rest", conf.apis[1].protocol)
      assert.equal("AUTHORIZER", conf.apis[1].api_key_source)
      local r = find_by(conf.apis[1].routes, "key", "GET /pets/{id}")
      assert.equal("GET", r.method)
      assert.equal("/pets/{id}", r.path)
    end)

    it("leaves api_key_source to the protocol's default when unset", function()
      local conf = assert(config.validate(rest_with(), { source = SOURCE }))
      assert.is_nil(conf.apis[1].api_key_source)
      conf = assert(config.validate(with(function(c) c.apis.pets.api_key_source = "HEADER" end)))
      assert.equal("HEADER", conf.apis[1].api_key_source)
    end)

    it("rejects a $default stage", function()
      fails_with('apis.pets.stages["$default"]: a REST API has no "$default" stage (the first path segment always names the stage)',
        rest_with(function(a)
          a.stages["$default"] = { variables = { backend = "http://127.0.0.1:9003" } }
        end))
    end)

    it("rejects a $default route", function()
      fails_with('apis.pets.routes["$default"]: a REST API has no "$default" route (use "ANY /{proxy+}")',
        rest_with(function(a)
          a.routes["$default"] = { integration = { type = "mock" } }
        end))
    end)

    it("checks api_key_source", function()
      fails_with('apis.pets.api_key_source: must be one of "HEADER", "AUTHORIZER", got "QUERY"', rest_with(function(a)
        a.api_key_source = "QUERY"
      end))
      fails_with('apis.pets.api_key_source: must be a string, got 1', rest_with(function(a)
        a.api_key_source = 1
      end))
    end)

    it("refuses api_key_source on websocket APIs", function()
      fails_with("apis.chat.api_key_source: is not for websocket APIs (their API key is the x-api-key header of $connect)", {
        listen = { { port = 8080, api = "chat" } },
        apis = { chat = {
          protocol = "websocket", route_selection_expression = "$request.body.action", api_key_source = "HEADER",
          stages = { prod = {} }, routes = { ["$connect"] = { integration = { type = "mock" } } },
        } },
      })
    end)

    it("refuses what only websocket APIs have", function()
      fails_with("apis.pets.route_selection_expression: is only for websocket APIs", rest_with(function(a)
        a.route_selection_expression = "$request.body.action"
      end))
      fails_with('apis.pets.routes["GET /x"].route_response: is only for websocket APIs', rest_with(function(a)
        a.routes["GET /x"] = { integration = { type = "mock" }, route_response = true }
      end))
    end)

    it("checks route keys as on HTTP APIs", function()
      fails_with('apis.pets.routes.sendmessage: must be "METHOD /path" or "$default" (one space between method and path)',
        rest_with(function(a)
        a.routes.sendmessage = { integration = { type = "mock" } }
      end))
    end)

    it("serves a REST API and an HTTP API from one configuration", function()
      local conf, errs = config.validate(with(function(c)
        c.apis.web = { stages = { ["$default"] = {} }, routes = { ["$default"] = { integration = { type = "mock" } } } }
        c.apis.pets.protocol = "rest"
      end), { source = SOURCE })
      assert.is_nil(errs)
      assert.equal("rest", find_by(conf.apis, "id", "pets").protocol)
      assert.equal("http", find_by(conf.apis, "id", "web").protocol)
    end)
  end)

  describe("integrations", function()
    it("requires a supported type", function()
      fails_with('apis.pets.routes["GET /x"].integration.type: is required', route({ integration = {} }))
      fails_with('apis.pets.routes["GET /x"].integration.handler: is required',
        route({ integration = { type = "lua" } }))
      fails_with('apis.pets.routes["GET /x"].integration.type: must be one of "http", "lua", "mock", got "htp" (did you mean "http"?)',
        route({ integration = { type = "htp" } }))
    end)

    it("requires an http(s) uri with a host", function()
      fails_with('apis.pets.routes["GET /x"].integration.uri: is required', route({ integration = { type = "http" } }))
      fails_with('apis.pets.routes["GET /x"].integration.uri: must be an http(s) URL, got "ftp://x"', http_route("ftp://x"))
      fails_with('apis.pets.routes["GET /x"].integration.uri: must have a host, got "http:///x"', http_route("http:///x"))
    end)

    it("expands stage variables in every stage", function()
      fails_with('apis.pets.routes["GET /x"].integration.uri: stage "dev" has no variable "other"', with(function(c)
        c.apis.pets.stages.prod.variables.other = "http://o"
        http_route("${stageVariables.other}/x")(c)
      end))
      fails_with('apis.pets.routes["GET /x"].integration.uri: must be an http(s) URL, got "ftp://o/x" (stage "prod")',
        with(function(c)
          c.apis.pets.stages.prod.variables.other = "ftp://o"
          c.apis.pets.stages.dev.variables.other = "http://o"
          http_route("${stageVariables.other}/x")(c)
        end))
      fails_with('apis.pets.routes["GET /x"].integration.uri: unsupported substitution "${stage.x}" (use ${stageVariables.NAME})',
        http_route("http://h/${stage.x}"))
    end)

    it("allows only the route's path parameters in the uri", function()
      fails_with('apis.pets.routes["GET /x/{id}"].integration.uri: {x} is not a path parameter of the route',
        http_route("http://h/{id}/{x}", "GET /x/{id}"))
      local c = base()
      http_route("http://h/{proxy}", "GET /a/{proxy+}")(c)
      http_route("http://h/b/{proxy+}", "GET /b/{proxy+}")(c)
      assert.is_nil(select(2, config.validate(c)))
    end)

    it("checks method and timeout_ms", function()
      fails_with('apis.pets.routes["GET /x"].integration.method: must be one of "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", got "ANY"',
        route({ integration = { type = "http", uri = "http://h", method = "ANY" } }))
      fails_with('apis.pets.routes["GET /x"].integration.timeout_ms: must be an integer between 50 and 29000, got 30000',
        route({ integration = { type = "http", uri = "http://h", timeout_ms = 30000 } }))
    end)

    it("checks mock status, headers and body", function()
      fails_with('apis.pets.routes["GET /x"].integration.status: must be an integer between 100 and 599, got 600',
        route({ integration = { type = "mock", status = 600 } }))
      fails_with('apis.pets.routes["GET /x"].integration.headers["bad header"]: invalid header name: must be an HTTP token',
        route({ integration = { type = "mock", headers = { ["bad header"] = "x" } } }))
      fails_with('apis.pets.routes["GET /x"].integration.headers.a: must not contain CR, LF or NUL',
        route({ integration = { type = "mock", headers = { a = "x\r\nb: y" } } }))
      fails_with('apis.pets.routes["GET /x"].integration.body: must be a string, got table',
        route({ integration = { type = "mock", body = {} } }))
    end)

    it("rejects keys of the other integration type", function()
      fails_with('apis.pets.routes["GET /x"].integration.uri: unknown key',
        route({ integration = { type = "mock", uri = "http://h" } }))
    end)
  end)

  describe("gateway responses", function()
    it("accepts the types of later releases", function()
      local c = base()
      c.apis.pets.gateway_responses = { WAF_FILTERED = { status = 403 }, ACCESS_DENIED = { body = "no" } }
      local conf, errs = config.validate(c)
      assert.is_nil(errs)
      assert.same({ "ACCESS_DENIED", "WAF_FILTERED" },
        { conf.apis[1].gateway_responses[1].type, conf.apis[1].gateway_responses[2].type })
    end)

    it("rejects unknown types and bad fields", function()
      fails_with('apis.pets.gateway_responses.THROTLED: unknown gateway response type (did you mean "THROTTLED"?)',
        with(function(c)
          c.apis.pets.gateway_responses = { THROTLED = {} }
        end))
      fails_with("apis.pets.gateway_responses.DEFAULT_5XX.status: must be an integer between 100 and 599, got 99",
        with(function(c)
          c.apis.pets.gateway_responses = { DEFAULT_5XX = { status = 99 } }
        end))
      fails_with('apis.pets.gateway_responses.DEFAULT_5XX.header: unknown key (did you mean "headers"?)',
        with(function(c)
          c.apis.pets.gateway_responses = { DEFAULT_5XX = { header = {} } }
        end))
    end)
  end)

  describe("validate() input", function()
    it("rejects a non-table", function()
      assert.same({ "x.lua: must be a table, got string" }, select(2, config.validate("x", { source = "x.lua" })))
    end)

    it("reports non-string map keys", function()
      fails_with("apis[1]: key must be a string, got 1", with(function(c)
        c.apis[1] = c.apis.pets
      end))
    end)
  end)

  describe("schema", function()
    it("describes every field", function()
      local missing, seen = {}, {}
      local function visit(s, path)
        if seen[s] then
          return -- a recursive schema (rule statements nest)
        end
        seen[s] = true
        if not s.description then
          missing[#missing + 1] = path
        end
        for name, f in pairs(s.fields or {}) do
          visit(f, path .. "." .. name)
        end
        for name, v in pairs(s.variants or {}) do
          visit(v, path .. "<" .. name .. ">")
        end
        if s.keys then
          visit(s.keys, path .. "[key]")
        end
        if s.values then
          visit(s.values, path .. "[value]")
        end
        if s.elements then
          visit(s.elements, path .. "[i]")
        end
      end
      visit(config.schema, "config")
      assert.same({}, missing)
    end)
  end)

  describe("load()", function()
    local dir

    before_each(function()
      dir = tmpdir()
    end)

    after_each(function()
      os.execute("rm -rf '" .. dir .. "'")
    end)

    it("loads and validates a file, resolving paths against the prefix", function()
      assert(os.execute("mkdir '" .. dir .. "/logs'"))
      local path = write(dir .. "/gw.lua", [[
        local routes = {}
        for _, name in ipairs({ "a", "b" }) do
          routes["GET /" .. name] = { integration = { type = "mock", body = string.upper(name) } }
        end
        return {
          apis = { pets = {
            stages = { ["$default"] = { access_log = { path = "logs/x.log", format = "$context.status" } } },
            routes = routes,
          } },
        }
      ]])
      local conf, errs = config.load(path, dir)
      assert.is_nil(errs)
      local r = find_by(conf.apis[1].routes, "key", "GET /b")
      assert.equal("B", r.integration.body)
      assert.equal(dir .. "/logs/x.log", conf.apis[1].stages[1].access_log.sink.path)
    end)

    it("names the file in validation errors", function()
      local path = write(dir .. "/gw.lua", "return { apis = {}, workrs = 2 }")
      local conf, errs = config.load(path)
      assert.is_nil(conf)
      assert.same({
        path .. ": apis: must not be empty",
        path .. ': workrs: unknown key (did you mean "workers"?)',
      }, errs)
    end)

    it("reports a syntax error with file and line", function()
      local path = write(dir .. "/gw.lua", "return {\n  apis = {\n}} }\n")
      local conf, errs = config.load(path)
      assert.is_nil(conf)
      assert.equal(1, #errs)
      assert.matches(path .. ":3: ", errs[1], 1, true)
    end)

    it("reports a runtime error with file and line", function()
      local path = write(dir .. "/gw.lua", "local x = nil\nreturn x.y\n")
      local _, errs = config.load(path)
      assert.equal(1, #errs)
      assert.matches(path .. ":2: attempt to index local 'x' (a nil value)", errs[1], 1, true)
    end)

    it("requires the chunk to return a table", function()
      local path = write(dir .. "/gw.lua", "return 42")
      assert.same({ path .. ": must return a table, got number" }, select(2, config.load(path)))
    end)

    it("reports a missing file", function()
      local conf, errs = config.load(dir .. "/missing.lua")
      assert.is_nil(conf)
      assert.matches("cannot open " .. dir .. "/missing.lua", errs[1], 1, true)
    end)

    it("blocks io, os and require", function()
      for _, code in ipairs({ "io.open('/etc/passwd')", "os.exit(1)", "require('ffi')" }) do
        local global = code:match("^(%a+)")
        local path = write(dir .. "/gw.lua", "local x = 1\n" .. code .. "\nreturn {}")
        local conf, errs = config.load(path)
        assert.is_nil(conf)
        assert.same({ path .. ":2: " .. global .. " is not available in the configuration sandbox" }, errs)
      end
    end)

    it("offers only the documented globals", function()
      local path = write(dir .. "/gw.lua", [[
        assert(string and table and math and pairs and ipairs and next and select and type
               and tostring and tonumber and error and assert and pcall and unpack, "missing global")
        local blocked = { function() return load end, function() return print end,
                          function() return getmetatable end, function() return setfenv end,
                          function() return debug end, function() return _G end }
        for i, f in ipairs(blocked) do
          assert(not pcall(f), "global " .. i .. " is reachable")
        end
        assert(string.dump == nil, "string.dump is reachable")
        return { apis = { a = { stages = { s = {} }, routes = { ["$default"] = { integration = { type = "mock" } } } } } }
      ]])
      local conf, errs = config.load(path)
      assert.is_nil(errs)
      assert.equal("a", conf.apis[1].id)
    end)

    it("does not let the configuration change the loader's libraries", function()
      local path = write(dir .. "/gw.lua", "string.format = nil\ntable.sort = nil\nreturn {}")
      config.load(path)
      assert.is_function(string.format)
      assert.is_function(table.sort)
    end)

    it("stops an infinite loop", function()
      local path = write(dir .. "/gw.lua", "local i = 0\nwhile true do i = i + 1 end\nreturn {}")
      assert.same({ path .. ": configuration did not finish (instruction budget exceeded)" },
        select(2, config.load(path)))
    end)

    it("stops an infinite loop hidden behind pcall", function()
      local path = write(dir .. "/gw.lua", [[
        local function spin() while true do end end
        while true do pcall(spin) end
      ]])
      assert.same({ path .. ": configuration did not finish (instruction budget exceeded)" },
        select(2, config.load(path)))
    end)

    it("refuses precompiled bytecode", function()
      local path = dir .. "/gw.lua"
      write(path, string.dump(function()
        return {}
      end))
      local conf, errs = config.load(path)
      assert.is_nil(conf)
      assert.same({ path .. ": attempt to load chunk with wrong mode" }, errs)
    end)
  end)
end)
