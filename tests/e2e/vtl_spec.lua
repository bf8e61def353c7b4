-- Mapping templates (Velocity) on non-proxy http integrations, walked as an AWS user walks
-- a REST API with curl: a request template reshaping a JSON body, response templates chosen
-- by Accept, AWS's 415 for NEVER and WHEN_NO_TEMPLATES, responseOverride, a runtime error
-- and a budget stop (500 + the configuration path in the error log), and a template that
-- does not compile refused at load with its path, line and column (docs-vtl.md).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cjson = require "cjson"

local REQUEST = [[
#set($pet = $input.path('$'))
{
  "pet": {
    "name": "$util.escapeJavaScript($pet.name)",
    "kind": "$pet.type.toLowerCase()",
    "tags": [#foreach($t in $pet.tags)"$t"#if($foreach.hasNext),#end#end]
  },
  "ip": "$context.identity.sourceIp",
  "stage": "$context.stage",
  "env": "$stageVariables.env",
  "q": "$input.params('q')"
}
]]

-- The backend (test-upstream) echoes the request it got as JSON: the response templates
-- reshape that answer.
local RESPONSE_JSON = [[
#set($r = $input.path('$'))
{"backend_method": "$r.method", "backend_target": "$r.target", "sent": $r.body}]]
local RESPONSE_XML = [[<echo method="$input.path('$.method')"/>]]

describe("mapping templates", function()
    local up, gw, dir, base

    lazy_setup(function()
        up = h.start_upstream()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. dir .. "/templates")
        h.write_file(dir .. "/templates/response.vtl", RESPONSE_JSON)
        local origin = up.origin
        local port = h.free_port()
        base = "http://127.0.0.1:" .. port .. "/prod"
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = port, api = "pets" } },
            lua = { instruction_budget = 100000 },
            apis = {
                pets = {
                    protocol = "rest",
                    stages = { prod = { variables = { env = "blue" } } },
                    routes = {
                        ["POST /pets"] = {
                            integration = {
                                type = "http", proxy = false, uri = origin .. "/store/pets",
                                request_templates = { ["application/json"] = REQUEST },
                                responses = { { status = 201, response_templates = {
                                    ["application/json"] = { file = "templates/response.vtl" },
                                    ["application/xml"] = RESPONSE_XML,
                                } } },
                            },
                        },
                        ["POST /never"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/n",
                                passthrough_behavior = "NEVER",
                                request_templates = { ["application/json"] = '{"wrapped": $input.json(\'$\')}' } },
                        },
                        ["POST /notemplates"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/n",
                                passthrough_behavior = "WHEN_NO_TEMPLATES",
                                request_templates = { ["application/json"] = '{"wrapped": $input.json(\'$\')}' } },
                        },
                        ["POST /match"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/n",
                                request_templates = { ["application/json"] = '{"wrapped": $input.json(\'$\')}' } },
                        },
                        ["GET /teapot"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/status/404",
                                responses = { { status = 200, response_templates = { ["application/json"] = [[
#set($b = $input.path('$'))
#if($b.status == 404)
#set($context.responseOverride.status = 418)
#set($context.responseOverride.header.x-teapot = "short and stout")
#end
{"was": $b.status}]] } } } },
                        },
                        ["GET /spin"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/s",
                                request_templates = { ["application/json"] = "#foreach($i in [1..100000000])x#end" } },
                        },
                        ["POST /badjson"] = {
                            integration = { type = "http", proxy = false, uri = origin .. "/s",
                                request_templates = { ["application/json"] = "{\n  \"a\": $input.json('$.a')\n}" } },
                        },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local function post(path, body, ...)
        local args = { base .. path, "-X", "POST", "--data-binary", body, ... }
        return h.curl(args)
    end

    it("reshapes the request body with the request template and the answer with the response template", function()
        local r = post("/pets?q=7", '{"name": "Rex \\"the\\" dog", "type": "DOG", "tags": ["a", "b"]}',
            "-H", "Content-Type: application/json", "-H", "Accept: application/json")
        assert.equal(201, r.status)
        assert.equal("application/json", r.headers["content-type"])
        local got = cjson.decode(r.body)
        assert.equal("POST", got.backend_method)
        assert.equal("/store/pets", got.backend_target)
        assert.same({ pet = { name = 'Rex "the" dog', kind = "dog", tags = { "a", "b" } }, ip = "127.0.0.1",
            stage = "prod", env = "blue", q = "7" }, got.sent)
    end)

    it("picks the response template by Accept: xml, none (application/json), */* (the first)", function()
        local body = '{"name": "a", "type": "cat", "tags": []}'
        local xml = post("/pets", body, "-H", "Content-Type: application/json", "-H", "Accept: application/xml")
        assert.equal(201, xml.status)
        assert.equal('<echo method="POST"/>', xml.body)
        assert.equal("application/xml", xml.headers["content-type"])
        local none = post("/pets", body, "-H", "Content-Type: application/json", "-H", "Accept:")
        assert.equal("POST", cjson.decode(none.body).backend_method)
        local any = post("/pets", body, "-H", "Content-Type: application/json", "-H", "Accept: */*")
        assert.equal("POST", cjson.decode(any.body).backend_method) -- application/json sorts first
    end)

    it("without a Content-Type the request is application/json", function()
        local r = h.curl({ base .. "/match", "-X", "POST", "--data-binary", '{"x":1}', "-H", "Content-Type:" })
        assert.equal(200, r.status)
        assert.same({ wrapped = { x = 1 } }, cjson.decode(cjson.decode(r.body).body))
    end)

    it("passes an unmatched media type through (WHEN_NO_MATCH)", function()
        local r = post("/match", "plain words", "-H", "Content-Type: text/plain")
        assert.equal(200, r.status)
        local echo = cjson.decode(r.body)
        assert.equal("plain words", echo.body)
        assert.equal("text/plain", echo.headers["content-type"])
    end)

    it("answers 415 Unsupported Media Type for NEVER and WHEN_NO_TEMPLATES", function()
        for _, path in ipairs({ "/never", "/notemplates" }) do
            local r = post(path, "<x/>", "-H", "Content-Type: application/xml")
            assert.equal(415, r.status)
            assert.equal('{"message":"Unsupported Media Type"}', r.body)
            assert.equal("UnsupportedMediaTypeException", r.headers["x-amzn-errortype"])
            local ok = post(path, '{"y":2}', "-H", "Content-Type: application/json; charset=utf-8")
            assert.equal(200, ok.status)
            assert.same({ wrapped = { y = 2 } }, cjson.decode(cjson.decode(ok.body).body))
        end
    end)

    it("overrides the status and a header with $context.responseOverride", function()
        local r = h.curl({ base .. "/teapot" })
        assert.equal(418, r.status)
        assert.equal("short and stout", r.headers["x-teapot"])
        assert.same({ was = 404 }, cjson.decode(r.body))
    end)

    it("answers 500 and logs the template's path when it runs out of budget or the body is not JSON", function()
        local r = h.curl({ base .. "/spin" })
        assert.equal(500, r.status)
        assert.equal('{"message":"Internal server error"}', r.body)
        assert.truthy(h.wait_for(function()
            return gw:stderr():find('apis.pets.routes["GET /spin"].integration.request_templates["application/json"]: '
                .. "instruction budget exceeded", 1, true)
        end), gw:stderr())
        local bad = post("/badjson", "{not json", "-H", "Content-Type: application/json")
        assert.equal(500, bad.status)
        assert.truthy(h.wait_for(function()
            return gw:stderr():find('apis.pets.routes["POST /badjson"].integration.request_templates["application/json"]: '
                .. "line 2, column 8: the body is not JSON", 1, true)
        end), gw:stderr())
    end)
end)

describe("a mapping template that does not compile", function()
    it("is refused at load with its path, line and column", function()
        local dir = h.tmpdir()
        local path = h.write_file(dir .. "/gateway.lua", h.config_source({
            apis = { pets = { protocol = "rest", stages = { prod = {} }, routes = {
                ["POST /pets"] = { integration = { type = "http", proxy = false, uri = "http://127.0.0.1:9/x",
                    request_templates = { ["application/json"] = "{\n  #if($a)\n    x\n    #end\n  #end\n}" },
                    request_transform = { policy = "policies/none.lua" } } },
            } } },
        }))
        os.execute("mkdir -p " .. dir .. "/policies")
        h.write_file(dir .. "/policies/none.lua", "return { transform = function(b) return b end }")
        local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
        assert.equal(1, rc)
        assert.truthy(out:find('apis.pets.routes["POST /pets"].integration.request_templates["application/json"]: '
            .. "line 5, column 3: #end without #if", 1, true), out)
        assert.truthy(out:find('apis.pets.routes["POST /pets"].integration.request_templates: cannot be used with '
            .. "request_transform", 1, true), out)
    end)
end)
