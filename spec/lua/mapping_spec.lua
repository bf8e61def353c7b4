-- moongate.mapping through the busted kit: testing.transform runs a transform policy,
-- testing.http_integration a whole non-proxy integration against testing.mock_http, with
-- the code the gateway runs (tests/e2e/mapping_spec.lua checks the gateway itself).
local testing = require "moongate.testing"
local mapping = require "moongate.mapping"

local ENVELOPE = "policies/transforms/json_envelope.lua"

describe("moongate.mapping", function()
  after_each(function()
    testing.reset()
  end)

  describe("parse_source", function()
    it("reads every source kind", function()
      assert.same({ kind = "header", name = "x-a" }, mapping.parse_source("method.request.header.X-A", "request"))
      assert.same({ kind = "querystring", name = "Q" }, mapping.parse_source("method.request.querystring.Q", "request"))
      assert.same({ kind = "path", name = "id" }, mapping.parse_source("method.request.path.id", "request"))
      assert.same({ kind = "body" }, mapping.parse_source("method.request.body", "request"))
      assert.same({ kind = "context", name = "identity.sourceIp" }, mapping.parse_source("context.identity.sourceIp", "request"))
      assert.same({ kind = "stage", name = "v" }, mapping.parse_source("stageVariables.v", "response"))
      assert.same({ kind = "literal", value = "it's" }, mapping.parse_source("'it's'", "request"))
      assert.same({ kind = "response_header", name = "etag" }, mapping.parse_source("integration.response.header.ETag", "response"))
      assert.same({ kind = "response_body" }, mapping.parse_source("integration.response.body", "response"))
    end)

    it("keeps each side's sources to its side", function()
      assert.is_nil(mapping.parse_source("integration.response.header.a", "request"))
      assert.is_nil(mapping.parse_source("method.request.header.a", "response"))
    end)
  end)

  describe("regex", function()
    it("matches the whole status text", function()
      local m = assert(mapping.regex("5\\d{2}"))
      assert.is_true(m("503"))
      assert.is_false(m("5030"))
      assert.is_false(m("1503"))
      m = assert(mapping.regex("4\\d{2}|302"))
      assert.is_true(m("404"))
      assert.is_true(m("302"))
      assert.is_false(m("3022"))
      m = assert(mapping.regex(".*"))
      assert.is_true(m(""))
    end)

    it("reports an invalid pattern", function()
      local m, err = mapping.regex("[")
      assert.is_nil(m)
      assert.matches("invalid regular expression at offset 1", err, 1, true)
    end)
  end)

  describe("testing.transform", function()
    it("runs a transform as the gateway does", function()
      local out = testing.transform(ENVELOPE, { key = "pet", from = { id = "request_id" } }, '{"a":1}',
        { request_id = "r1" })
      assert.are.equal("application/json", out.content_type)
      assert.same({ pet = { a = 1 }, id = "r1" }, require("cjson").decode(out.body))
    end)

    it("reports a bad result and the budget", function()
      local bad = { transform = function() return 42 end }
      assert.are.equal("transform must return the new body (a string or a table), got number",
        testing.transform(bad, nil, "x").error)
      -- a policy file is instrumented for the budget (a module table is not)
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write("return { transform = function() while true do end end }")
      f:close()
      assert.matches("instruction budget exceeded", testing.transform(path, nil, "x").error, 1, true)
      os.remove(path)
      local ctype = { transform = function(b) return b, "a\nb" end }
      assert.matches("content type", testing.transform(ctype, nil, "x").error, 1, true)
    end)
  end)

  describe("testing.http_integration", function()
    local integration = {
      type = "http", proxy = false, uri = "http://b.test/items/{item}",
      request_parameters = {
        ["integration.request.path.item"] = "method.request.path.id",
        ["integration.request.querystring.p"] = "method.request.querystring.page",
        ["integration.request.header.x-trace"] = "method.request.header.x-trace",
        ["integration.request.header.x-lit"] = "'v'",
      },
      responses = {
        { selection_pattern = "5\\d{2}", status = 502,
          response_parameters = { ["method.response.header.x-up"] = "integration.response.header.X-Up" } },
        { status = 200, transform = { policy = ENVELOPE, config = { from = { backend = "status" } } } },
      },
    }

    it("maps the request and selects the response by the backend status", function()
      local seen
      testing.mock_http(function(req)
        seen = req
        return { status = 503, headers = { ["X-Up"] = "u1" }, body = "down" }
      end)
      local req = testing.request{ method = "GET", path = "/pets/7", path_params = { id = "7" },
        query = { page = "2", other = "x" }, headers = { ["x-trace"] = "t", cookie = "c=1" } }
      local res = testing.http_integration(integration, req)
      assert.are.equal("http://b.test/items/7?p=2", seen.url)
      assert.same({ ["x-trace"] = "t", ["x-lit"] = "v" }, seen.headers)
      assert.are.equal(502, res.status)
      assert.are.equal(503, res.backend_status)
      assert.same({ { "content-type", "application/json" }, { "x-up", "u1" } }, res.header_list)
      assert.are.equal("down", res.body)
    end)

    it("runs the default response's transform", function()
      testing.mock_http({ ["http://b.test/items/7"] = { status = 200, body = '{"n":1}' } })
      local res = testing.http_integration(integration,
        testing.request{ method = "GET", path = "/pets/7", path_params = { id = "7" } })
      assert.are.equal(200, res.status)
      assert.same({ data = { n = 1 }, backend = 200 }, require("cjson").decode(res.body))
    end)

    it("answers 502 and 504 for backend failures", function()
      testing.mock_http({})
      local req = testing.request{ method = "GET", path = "/pets/7", path_params = { id = "7" } }
      local res = testing.http_integration(integration, req)
      assert.are.equal(502, res.status)
      assert.matches("connection refused", res.error, 1, true)
      testing.mock_http(function()
        return nil, "timeout"
      end)
      assert.are.equal(504, testing.http_integration(integration, req).status)
    end)

    it("raises the configuration's messages", function()
      assert.has_error(function()
        testing.http_integration({ type = "http", proxy = false, uri = "http://b.test/",
          responses = { { selection_pattern = "(", status = 200 } } }, testing.request{})
      end, "spec: integration.responses[1].selection_pattern: invalid regular expression at offset 1: missing closing parenthesis")
    end)
  end)
end)
