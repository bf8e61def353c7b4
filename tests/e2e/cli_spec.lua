-- The command line (README "Command line", "Configuration reference"): version,
-- check with good and bad configurations, and refusing to start on a bad one.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

describe("moongate command line", function()
    local dir

    lazy_setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. dir .. "/policies")
    end)

    local function config_file(name, source)
        return h.write_file(dir .. "/" .. name, source)
    end

    local GOOD = [[
return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18080, api = "pets" } },
  apis = {
    pets = {
      stages = { ["$default"] = { variables = { backend = "http://127.0.0.1:9001" } } },
      routes = {
        ["GET /pets"] = { integration = { type = "mock", body = "[]" } },
        ["GET /pets/{id}"] = { integration = { type = "http", uri = "${stageVariables.backend}/pets/{id}" } },
        ["$default"] = { integration = { type = "mock", status = 404 } },
      },
    },
  },
}
]]

    it("version prints a version and exits 0", function()
        local out, rc = h.moongate{ "version" }
        assert.are.equal(0, rc)
        assert.matches("%d+%.%d+", out)
    end)

    it("check accepts a good configuration", function()
        local out, rc = h.moongate{ "check", "-c", config_file("good.lua", GOOD) }
        assert.are.equal(0, rc, out)
        assert.matches("OK", out)
    end)

    it("check prints every error with the file and the config path, and exits 1", function()
        local path = config_file("bad.lua", [[
return {
  workers = 0,
  listen = { { address = "127.0.0.1", port = 70000 } },
  apis = {
    pets = {
      stags = {},
      routes = {
        ["GET /x"] = { integration = { type = "http", uri = "ftp://x" } },
      },
    },
  },
}
]])
        local out, rc = h.moongate{ "check", "-c", path }
        assert.are.equal(1, rc, out)
        for _, p in ipairs{
            "workers",
            "listen[1].port",
            "apis.pets.stags",
            'apis.pets.routes["GET /x"].integration.uri',
        } do
            assert.is_truthy(out:find(path .. ": " .. p .. ":", 1, true),
                "no error for " .. p .. " in:\n" .. out)
        end
        assert.matches('did you mean "stages"', out)
        assert.matches("ftp://x", out, 1, true)
    end)

    it("check rejects an unknown $context variable in an access-log format", function()
        local path = config_file("badlog.lua", [[
return {
  apis = {
    a = {
      stages = { prod = { access_log = { path = "/tmp/x.log", format = '{"a":"$context.nope"}' } } },
      routes = { ["GET /x"] = { integration = { type = "mock" } } },
    },
  },
}
]])
        local out, rc = h.moongate{ "check", "-c", path }
        assert.are.equal(1, rc, out)
        assert.is_truthy(out:find(path .. ": apis.a.stages.prod.access_log.format:", 1, true), out)
        assert.matches("nope", out)
    end)

    it("check reports template and certificate errors along with a missing log directory", function()
        h.write_file(dir .. "/garbage.pem", "not a certificate\n")
        local path = config_file("everything.lua", string.format([[
return {
  listen = { { address = "127.0.0.1", port = 18443, tls = { certificate = %q, key = %q } } },
  apis = {
    a = {
      stages = { prod = { access_log = { path = %q, format = '{"a":"$context.nope"}' } } },
      gateway_responses = { THROTTLED = { body = '{"m":"$context.bogus"}' } },
      routes = { ["GET /x"] = { integration = { type = "mock" } } },
    },
  },
}
]], dir .. "/garbage.pem", dir .. "/garbage.pem", dir .. "/no-such-dir/access.log"))
        local out, rc = h.moongate{ "check", "-c", path }
        assert.are.equal(1, rc, out)
        local lines = {}
        for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
        assert.are.same({
            path .. ": apis.a.gateway_responses.THROTTLED.body: unknown variable $context.bogus",
            path .. ": apis.a.stages.prod.access_log.format: unknown variable $context.nope",
            path .. ': apis.a.stages.prod.access_log.path: directory "' .. dir .. '/no-such-dir" does not exist',
        }, { lines[1], lines[2], lines[3] })
        assert.are.equal(4, #lines, out)
        assert.is_truthy(lines[4]:find(path .. ': listen[1].tls: cannot load certificate "' .. dir .. '/garbage.pem"', 1, true), out)
    end)

    -- Issue item 7: bounds are optional in a policy schema, and a mistake in a schema is
    -- reported naming the policy file and the field, never as a Lua error.
    local function waf_config(name, policy_file, config)
        return config_file(name, string.format([[
return {
  apis = {
    a = {
      stages = { ["$default"] = { waf = { rules = {
        { priority = 1, policy = %q, action = "block", config = %s },
        { priority = 2, name = "again", policy = %q, action = "count" },
      } } } },
      routes = { ["GET /x"] = { integration = { type = "mock" } } },
    },
  },
}
]], policy_file, config, policy_file))
    end

    it("check accepts a policy schema with an integer and a number without bounds", function()
        h.write_file(dir .. "/policies/unbounded.lua", [[
return {
  schema = { type = "record", fields = {
    limit = { type = "integer", default = 10 },
    ratio = { type = "number" },
  } },
  inspect = function() return false end,
}
]])
        local path = waf_config("unbounded.lua", "policies/unbounded.lua", "{ limit = 3, ratio = 0.5 }")
        local out, rc = h.moongate{ "check", "-c", path, "-p", dir }
        assert.are.equal(0, rc, out)
        assert.matches("OK", out)
        path = waf_config("unbounded2.lua", "policies/unbounded.lua", "{ limit = 2.5 }")
        out, rc = h.moongate{ "check", "-c", path, "-p", dir }
        assert.are.equal(1, rc, out)
        assert.are.equal(path .. ': apis.a.stages["$default"].waf.rules[1].config.limit: must be an integer, got 2.5\n', out)
    end)

    it("check reports every mistake in a policy schema once, naming the policy file and the field", function()
        h.write_file(dir .. "/policies/badschema.lua", [[
return {
  schema = { type = "record", fields = {
    limit = { type = "integer", between = { 10 } },
    mode = { type = "strnig" },
    ratio = { type = "number", default = "half" },
  } },
  inspect = function() return false end,
}
]])
        local path = waf_config("badschema.lua", "policies/badschema.lua", "{ limit = 1 }")
        local out, rc = h.moongate{ "check", "-c", path, "-p", dir }
        assert.are.equal(1, rc, out)
        assert.are.equal(table.concat({
            "policies/badschema.lua: schema.fields.limit.between: must be a list of two numbers { low, high }, got another table",
            'policies/badschema.lua: schema.fields.mode.type: must be one of "boolean", "custom", "integer", "list", '
                .. '"map", "number", "record", "string", "variant", got "strnig" (did you mean "string"?)',
            'policies/badschema.lua: schema.fields.ratio.default: must be a number, got "half"',
            "",
        }, "\n"), out)
    end)

    it("check rejects a bad route key and a greedy segment that is not last", function()
        local path = config_file("badroutes.lua", [[
return {
  apis = {
    a = {
      stages = { ["$default"] = {} },
      routes = {
        ["FETCH /x"] = { integration = { type = "mock" } },
        ["GET /{p+}/x"] = { integration = { type = "mock" } },
      },
    },
  },
}
]])
        local out, rc = h.moongate{ "check", "-c", path }
        assert.are.equal(1, rc, out)
        assert.is_truthy(out:find('apis.a.routes["FETCH /x"]', 1, true), out)
        assert.is_truthy(out:find('apis.a.routes["GET /{p+}/x"]', 1, true), out)
    end)

    it("check rejects a configuration that reaches outside the sandbox", function()
        local path = config_file("sandbox.lua", [[
local f = io.open("/etc/hostname")
return { apis = {} }
]])
        local out, rc = h.moongate{ "check", "-c", path }
        assert.are.equal(1, rc, out)
        assert.is_truthy(out:find(path, 1, true), out)
    end)

    it("check reports a file that does not exist", function()
        local out, rc = h.moongate{ "check", "-c", dir .. "/missing.lua" }
        assert.are.equal(1, rc, out)
        assert.is_truthy(out:find(dir .. "/missing.lua", 1, true), out)
    end)

    it("check accepts a websocket API and reports its expression errors", function()
        local good = config_file("ws.lua", [[
return {
  listen = { { address = "127.0.0.1", port = 18080, api = "chat" } },
  apis = {
    chat = {
      protocol = "websocket",
      route_selection_expression = "${request.body.action}/${request.body.data.kind}",
      websocket = { max_frame_size = 4096, max_message_size = 65536, idle_timeout = 60, ping_interval = 20 },
      stages = { prod = { throttle = { rate = 100, burst = 50 } } },
      routes = {
        ["$connect"] = { integration = { type = "mock" }, api_key_required = true },
        ["$default"] = { integration = { type = "mock", body = "?" }, route_response = true },
        ["send/text"] = { integration = { type = "http", uri = "http://127.0.0.1:9001/send" }, route_response = true },
      },
    },
  },
}
]])
        local out, rc = h.moongate{ "check", "-c", good }
        assert.are.equal(0, rc, out)
        local bad = config_file("wsbad.lua", [[
return {
  apis = {
    chat = {
      protocol = "websocket",
      route_selection_expression = "$request.header.action",
      stages = { prod = {} },
      routes = { ["$default"] = { integration = { type = "mock" } } },
    },
    chat2 = {
      protocol = "websocket",
      route_selection_expression = "${request.body.a",
      stages = { prod = {} },
      routes = { ["$default"] = { integration = { type = "mock" } } },
    },
  },
}
]])
        out, rc = h.moongate{ "check", "-c", bad }
        assert.are.equal(1, rc, out)
        assert.is_truthy(out:find('apis.chat.route_selection_expression: "$" must start $request.body.NAME'
          .. " or ${request.body.NAME}", 1, true), out)
        assert.is_truthy(out:find('apis.chat2.route_selection_expression: unterminated ${request.body.NAME}', 1,
          true), out)
    end)

    it("refuses to start with a bad configuration and says why", function()
        local path = config_file("bad2.lua", [[
return { apis = { pets = { stags = {}, routes = {} } } }
]])
        local p = h.spawn({ h.bin, "-c", path }, dir, "badstart")
        local rc = p:wait(10)
        if rc == nil then p:stop(2) end
        assert.is_number(rc, "moongate kept running with a bad configuration")
        assert.are_not.equal(0, rc)
        assert.is_truthy((p.stderr() .. p.stdout()):find("apis.pets.stags", 1, true), p.stderr())
    end)

    it("check reports a broken Lua installation instead of crashing", function()
        -- A configuration module that returns no table (a half-written upgrade).
        local lua_dir = dir .. "/broken-lua"
        os.execute("mkdir -p " .. lua_dir .. "/moongate")
        h.write_file(lua_dir .. "/moongate/config.lua", "return true\n")
        local path = config_file("good-broken-lua.lua", GOOD)
        local out, rc = h.run_env({ MOONGATE_LUA_DIR = lua_dir }, { "check", "-c", path })
        assert.are.equal(1, rc, out)
        assert.is_truthy(out:find(path .. ": cannot load the configuration module: " .. lua_dir ..
            "/moongate/config.lua returned a boolean, not its module table", 1, true), out)
    end)
end)
