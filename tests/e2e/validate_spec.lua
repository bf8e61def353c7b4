-- Request validation (README "Request validation"), walked with curl as an AWS user
-- would: required parameters (400 BAD_REQUEST_PARAMETERS in AWS's order and wording),
-- bodies against JSON Schema draft 4 models by content type (400 BAD_REQUEST_BODY, the
-- reasons in $context.error.validationErrorString), bodies that are not JSON, content
-- types with and without a model, the order of the checks (API key before validation),
-- and valid requests reaching the backend byte for byte, up to a body near the limit.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local LIMIT = 262144 -- limits.max_body_size of this gateway
local KEY = "validate-spec-key-0123456789"
local STOCK = h.root .. "/policies/"
local LUA_KEYS = { keys = { ["k-0123456789abcdef"] = "alice" }, usage_identifier = false }

local PET = {
    type = "object",
    required = { "name" },
    properties = {
        name = { type = "string", minLength = 1 },
        age = { type = "integer", minimum = 0 },
        tags = { type = "array", items = { type = "string" } },
        note = { type = "string" },
    },
}

-- A model in a JSON file: a list of pets, by reference.
local PETS_JSON = [[{
  "type": "array",
  "maxItems": 3,
  "items": { "$ref": "#/definitions/pet" },
  "definitions": {
    "pet": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } }
  }
}]]

-- A model that names another by its AWS model URL (as exported from API Gateway), with
-- the formats AWS's validator checks.
local ADOPTION = {
    type = "object",
    required = { "pet", "email", "at" },
    properties = {
        pet = { ["$ref"] = "https://apigateway.amazonaws.com/restapis/a1b2c3d4e5/models/Pet" },
        email = { type = "string", format = "email" },
        at = { type = "string", format = "date-time" },
        home = { type = "string", format = "uri" },
    },
}

describe("request validation", function()
    local up, gw, dir, port_v, port_w, port_r

    lazy_setup(function()
        dir = h.tmpdir()
        h.write_file(dir .. "/pets.json", PETS_JSON)
        up = h.start_upstream(nil, { raw_log = true })
        port_v, port_w, port_r = h.free_port(), h.free_port(), h.free_port()
        local function proxy(path) return { type = "http", uri = up.origin .. path } end
        gw = h.start_gateway({
            workers = 1,
            limits = { max_body_size = LIMIT },
            api_keys = { k = { value = KEY } },
            listen = {
                { address = "127.0.0.1", port = port_v, api = "v" },
                { address = "127.0.0.1", port = port_w, api = "w" },
                { address = "127.0.0.1", port = port_r, api = "r" },
            },
            apis = {
                v = {
                    stages = { ["$default"] = { access_log = { path = dir .. "/access.log",
                        format = "$context.requestId $context.routeKey $context.status $context.error.responseType "
                            .. "$context.error.validationErrorString" } } },
                    models = { Pet = { schema = PET }, Pets = { schema_file = "pets.json" } },
                    authorizers = { keys = { type = "lua", policy = STOCK .. "authorizers/api_key_header.lua",
                        config = LUA_KEYS, identity_sources = { "$request.header.x-api-key" } } },
                    routes = {
                        ["POST /lua"] = {
                            authorizer = "keys", request_validator = "body",
                            request_models = { ["application/json"] = "Pet" },
                            integration = { type = "lua", handler = STOCK .. "examples/echo.lua" },
                        },
                        ["GET /pets"] = {
                            integration = proxy("/pets"), request_validator = "params",
                            request_parameters = {
                                ["method.request.querystring.page"] = true,
                                ["method.request.querystring.size"] = false,
                                ["method.request.header.x-trace"] = true,
                            },
                        },
                        ["GET /pets/{id}"] = {
                            integration = proxy("/pets/{id}"), request_validator = "all",
                            request_parameters = { ["method.request.path.id"] = true },
                        },
                        ["POST /pets"] = {
                            integration = proxy("/pets"), request_validator = "body",
                            request_models = { ["application/json"] = "Pet" },
                        },
                        ["POST /any"] = {
                            integration = proxy("/any"), request_validator = "all",
                            request_models = { ["$default"] = "Pet", ["application/json"] = "Pets" },
                            request_parameters = { ["method.request.header.x-trace"] = true },
                        },
                        ["POST /unchecked"] = {
                            integration = proxy("/unchecked"),
                            request_models = { ["application/json"] = "Pet" },
                            request_parameters = { ["method.request.querystring.page"] = true },
                        },
                        ["POST /keyed"] = {
                            integration = { type = "mock", body = "{\"ok\":true}" },
                            api_key_required = true, request_validator = "all",
                            request_models = { ["application/json"] = "Pet" },
                        },
                    },
                },
                r = { -- a REST API: the same validation, REST's responses
                    protocol = "rest",
                    stages = { prod = {} },
                    models = { Pet = { schema = PET }, Adoption = { schema = ADOPTION } },
                    routes = {
                        ["POST /adoptions"] = {
                            integration = proxy("/adoptions"), request_validator = "body",
                            request_models = { ["application/json"] = "Adoption" },
                        },
                        ["POST /pets"] = {
                            integration = proxy("/pets"), request_validator = "all",
                            request_parameters = { ["method.request.header.x-trace"] = true },
                            request_models = { ["application/json"] = "Pet" },
                        },
                    },
                },
                w = {
                    stages = { ["$default"] = {} },
                    models = { Pet = { schema = PET }, Adoption = { schema = ADOPTION } },
                    gateway_responses = {
                        BAD_REQUEST_BODY = { status = 422,
                            body = '{"message":"$context.error.message","why":"$context.error.validationErrorString"}' },
                    },
                    routes = {
                        ["POST /pets"] = {
                            integration = proxy("/pets"), request_validator = "body",
                            request_models = { ["application/json"] = "Pet" },
                        },
                        ["POST /adoptions"] = {
                            integration = proxy("/adoptions"), request_validator = "body",
                            request_models = { ["application/json"] = "Adoption" },
                        },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local function url(path, port) return gw:url(path, port or port_v) end

    local function post(path, body, ctype, extra)
        local args = { url(path), "--data-binary", body }
        if ctype then
            args[#args + 1] = "-H"
            args[#args + 1] = "Content-Type: " .. ctype
        else
            args[#args + 1] = "-H"
            args[#args + 1] = "Content-Type:" -- none at all
        end
        for _, a in ipairs(extra or {}) do args[#args + 1] = a end
        return h.curl(args)
    end

    -- Runs fn (one request) and returns its result and its access-log line, found by its
    -- request id (lines are written, and flushed, as requests end), without the id.
    local function logged(fn)
        local r = fn()
        local id = assert(r.headers["apigw-requestid"])
        local line
        h.wait_for(function()
            local s = h.read_file(dir .. "/access.log") or ""
            for l in s:gmatch("[^\n]+") do
                if l:sub(1, #id + 1) == id .. " " then line = l:sub(#id + 2) end
            end
            return line
        end, 5)
        return r, line
    end

    describe("required parameters", function()
        it("answers 400 naming every missing parameter, headers first, as AWS", function()
            local r = h.curl{ url "/pets" }
            assert.are.equal(400, r.status)
            assert.are.equal("BadRequestException", r.headers["x-amzn-errortype"])
            assert.are.same({ message = "Missing required request parameters: [x-trace, page]" }, r:json())
            local line
            r, line = logged(function() return h.curl{ url "/pets?size=2", "-H", "X-Trace: abc" } end)
            assert.are.same({ message = "Missing required request parameters: [page]" }, r:json())
            assert.are.equal("GET /pets 400 BAD_REQUEST_PARAMETERS -", line)
        end)

        it("takes blank values as missing and decodes parameter names", function()
            local r = h.curl{ url "/pets?page=", "-H", "X-Trace:  " }
            assert.are.same({ message = "Missing required request parameters: [x-trace, page]" }, r:json())
            r = h.curl{ url "/pets?p%61ge=1", "-H", "x-trace: t" }
            assert.are.equal(200, r.status)
        end)

        it("lets a request with them reach the backend", function()
            local r = h.curl{ url "/pets?page=1", "-H", "X-TRACE: t1" }
            assert.are.equal(200, r.status)
            local e = r:json()
            assert.are.equal("/pets?page=1", e.target)
            assert.are.equal("t1", e.headers["x-trace"])
        end)

        it("checks path parameters", function()
            assert.are.equal(200, h.curl{ url "/pets/7" }.status)
        end)

        it("checks nothing without a validator (AWS's default)", function()
            local r = post("/unchecked", "not json", "application/json")
            assert.are.equal(200, r.status)
            assert.are.equal("not json", r:json().body)
        end)
    end)

    describe("bodies", function()
        it("answers 400 Invalid request body with the reason in validationErrorString", function()
            local r, line = logged(function() return post("/pets", "{}", "application/json") end)
            assert.are.equal(400, r.status)
            assert.are.equal("BadRequestException", r.headers["x-amzn-errortype"])
            assert.are.same({ message = "Invalid request body" }, r:json())
            assert.are.equal('POST /pets 400 BAD_REQUEST_BODY [object has missing required properties (["name"])]',
                line)
            _, line = logged(function() return post("/pets", '{"name":"rex","age":-1,"tags":[1]}', "application/json") end)
            assert.are.equal("POST /pets 400 BAD_REQUEST_BODY [numeric instance is lower than the required "
                .. "minimum (minimum: 0, found: -1), instance type (integer) does not match any allowed "
                .. 'primitive type (allowed: ["string"])]', line)
        end)

        it("refuses a body that is not JSON, and an empty body as an empty object", function()
            local r, line = logged(function() return post("/pets", "name=rex", "application/json") end)
            assert.are.equal(400, r.status)
            assert.are.same({ message = "Invalid request body" }, r:json())
            assert.are.equal("POST /pets 400 BAD_REQUEST_BODY [instance is not valid JSON: unexpected character "
                .. "at byte 0]", line)
            r = post("/pets", '{"name":"a","name":"b"}', "application/json")
            assert.are.equal(400, r.status)
            r, line = logged(function() return h.curl{ url "/pets", "-X", "POST" } end)
            assert.are.equal(400, r.status)
            assert.are.equal('POST /pets 400 BAD_REQUEST_BODY [object has missing required properties (["name"])]',
                line)
        end)

        it("picks the model by media type, ignoring case and parameters", function()
            assert.are.equal(400, post("/pets", "{}", "Application/JSON; charset=utf-8").status)
            -- no Content-Type: application/json, as AWS assumes
            assert.are.equal(400, post("/pets", "{}", nil).status)
            -- a content type without a model (and no $default): not checked
            local r = post("/pets", "{}", "text/plain")
            assert.are.equal(200, r.status)
            assert.are.equal("{}", r:json().body)
        end)

        it("uses the $default model for other content types, and a model from a file", function()
            local trace = { "-H", "X-Trace: t" }
            assert.are.equal(400, post("/any", "{}", "text/plain", trace).status)
            assert.are.equal(200, post("/any", '{"name":"rex"}', "text/plain", trace).status)
            assert.are.equal(400, post("/any", '{"name":"rex"}', "application/json", trace).status)
            assert.are.equal(200, post("/any", '[{"name":"a"},{"name":"b"}]', "application/json", trace).status)
            local r, line = logged(function() return post("/any", '[{"name":"a"},{}]', "application/json", trace) end)
            assert.are.equal(400, r.status)
            assert.are.equal("POST /any 400 BAD_REQUEST_BODY [object has missing required properties "
                .. '(["name"])]', line)
            -- parameters are checked before the body
            r = post("/any", "{}", "text/plain")
            assert.are.same({ message = "Missing required request parameters: [x-trace]" }, r:json())
        end)

        it("shows validationErrorString in a customized gateway response", function()
            local r = h.curl{ url("/pets", port_w), "--data-binary", '{"name":""}', "-H", "Content-Type: application/json" }
            assert.are.equal(422, r.status)
            assert.are.same({ message = "Invalid request body",
                why = '[string "" is too short (length: 0, required minimum: 1)]' }, r:json())
        end)

        it("checks the API key before the body", function()
            assert.are.equal(403, post("/keyed", "{}", "application/json").status)
            assert.are.equal(400, post("/keyed", "{}", "application/json", { "-H", "x-api-key: " .. KEY }).status)
            local r = post("/keyed", '{"name":"a"}', "application/json", { "-H", "x-api-key: " .. KEY })
            assert.are.equal(200, r.status)
            assert.are.equal('{"ok":true}', r.body)
        end)
    end)

    describe("valid requests", function()
        it("reach the backend byte for byte", function()
            local body = '{ "name" :"r\\u00e9x \xe2\x9c\x93",\n\t"age":3 ,"tags":["a"]}  '
            local r = post("/pets", body, "application/json")
            assert.are.equal(200, r.status)
            local e = r:json()
            assert.are.equal(body, e.body)
            assert.are.equal(#body, e.bodyLength)
            assert.are.equal(tostring(#body), e.headers["content-length"])
            local raw = up.received()
            assert.truthy(raw:find("\r\n\r\n" .. body, 1, true))
        end)

        it("reach a Lua integration behind a Lua authorizer, body and all", function()
            local auth = { "-H", "x-api-key: k-0123456789abcdef" }
            assert.are.equal(401, post("/lua", '{"name":"rex"}', "application/json").status)
            assert.are.equal(400, post("/lua", '{"nom":"rex"}', "application/json", auth).status)
            local body = '{"name":"rex", "note":"' .. string.rep("n", 3000) .. '"}'
            local r = post("/lua", body, "application/json", auth)
            assert.are.equal(200, r.status)
            assert.are.equal(body, r:json().body)
        end)

        it("reach the backend with a chunked body", function()
            local body = '{"name":"chunky","note":"' .. string.rep("c", 5000) .. '"}'
            local r = post("/pets", body, "application/json", { "-H", "Transfer-Encoding: chunked" })
            assert.are.equal(200, r.status)
            assert.are.equal(body, r:json().body)
        end)

        it("take a body near the limit (after 100 Continue), and 413 above it", function()
            local filler = string.rep("x", LIMIT - 40)
            local body = '{"name":"big","note":"' .. filler .. '"}'
            assert.is_true(#body <= LIMIT and #body > LIMIT - 64)
            local path = h.write_file(dir .. "/big.json", body)
            local r = h.curl{ url "/pets", "--data-binary", "@" .. path, "-H", "Content-Type: application/json",
                "-H", "Expect: 100-continue" }
            assert.are.equal(200, r.status)
            local e = r:json()
            assert.are.equal(#body, e.bodyLength)
            assert.are.equal(body, e.body)
            local over = h.write_file(dir .. "/over.json", body .. string.rep(" ", LIMIT - #body + 1))
            r = h.curl{ url "/pets", "--data-binary", "@" .. over, "-H", "Content-Type: application/json" }
            assert.are.equal(413, r.status)
            -- an invalid body near the limit still gets its reasons
            local bad = h.write_file(dir .. "/bad.json", '{"note":"' .. filler .. '"}')
            local line
            r, line = logged(function()
                return h.curl{ url "/pets", "--data-binary", "@" .. bad, "-H", "Content-Type: application/json" }
            end)
            assert.are.equal(400, r.status)
            assert.are.equal('POST /pets 400 BAD_REQUEST_BODY [object has missing required properties (["name"])]',
                line)
        end)
    end)

    describe("on a REST API", function()
        it("answers REST's 400s with its id headers, and passes a valid request on", function()
            local function rpost(body, trace)
                local args = { gw:url("/prod/pets", port_r), "--data-binary", body, "-H",
                    "Content-Type: application/json" }
                if trace then
                    args[#args + 1] = "-H"
                    args[#args + 1] = "x-trace: t1"
                end
                return h.curl(args)
            end
            local r = rpost('{"name":"rex"}')
            assert.are.equal(400, r.status)
            assert.are.same({ message = "Missing required request parameters: [x-trace]" }, r:json())
            assert.are.equal("BadRequestException", r.headers["x-amzn-errortype"])
            assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", r.headers["x-amzn-requestid"] or "")
            assert.is_nil(r.headers["apigw-requestid"])
            r = rpost('{"age":3}', true)
            assert.are.equal(400, r.status)
            assert.are.same({ message = "Invalid request body" }, r:json())
            r = rpost('{"name":"rex"}', true)
            assert.are.equal(200, r.status)
            local e = r:json() -- the backend echoes what it received
            assert.are.equal("/pets", e.target)
            assert.are.equal('{"name":"rex"}', e.body)
            assert.are.equal("t1", e.headers["x-trace"])
        end)

        it("resolves references to other models by their AWS model URLs and checks formats", function()
            local function adopt(body)
                return h.curl({ gw:url("/prod/adoptions", port_r), "--data-binary", body, "-H",
                    "Content-Type: application/json" })
            end
            local ok = '{"pet":{"name":"rex"},"email":"ann@example.com","at":"2026-12-04T10:00:00Z",'
                .. '"home":"https://example.com/ann"}'
            local r = adopt(ok)
            assert.are.equal(200, r.status, r.body)
            assert.are.equal(ok, r:json().body)
            r = adopt('{"pet":{"age":2},"email":"ann@example.com","at":"2026-12-04T10:00:00Z"}')
            assert.are.equal(400, r.status)
            assert.are.same({ message = "Invalid request body" }, r:json())
            r = adopt('{"pet":{"name":"rex"},"email":"ann at example","at":"2026-02-30T10:00:00Z"}')
            assert.are.equal(400, r.status)
            assert.are.same({ message = "Invalid request body" }, r:json())
            -- the reasons, as AWS words them (the w API shows them in its gateway response)
            r = h.curl({ gw:url("/adoptions", port_w), "--data-binary",
                '{"pet":{},"email":"ann at example","at":"2026-02-30T10:00:00Z","home":"a b"}',
                "-H", "Content-Type: application/json" })
            assert.are.equal(422, r.status)
            assert.are.equal('[object has missing required properties (["name"]), '
                .. 'string "ann at example" is not a valid email address, '
                .. 'string "2026-02-30T10:00:00Z" is invalid against requested date format(s) '
                .. "[yyyy-MM-dd'T'HH:mm:ssZ, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,12}Z], "
                .. 'string "a b" is not a valid URI]', r:json().why)
        end)

        it("refuses a configuration whose model names a model the API does not have", function()
            local path = dir .. "/badref.lua"
            h.write_file(path, [[
return {
  apis = {
    r = {
      protocol = "rest",
      stages = { prod = {} },
      models = {
        Pet = { schema = { type = "object" } },
        Adoption = { schema = { properties = { pet = {
          ["$ref"] = "https://apigateway.amazonaws.com/restapis/x1/models/Pets" } } } },
      },
      routes = { ["POST /a"] = { integration = { type = "mock" } } },
    },
  },
}
]])
            local out, rc = h.moongate{ "check", "-c", path }
            assert.are.equal(1, rc, out)
            assert.are.equal(path .. ': apis.r.models.Adoption.schema: at /properties/pet/$ref: '
                .. '"https://apigateway.amazonaws.com/restapis/x1/models/Pets" names nothing in this schema\n', out)
        end)
    end)
end)
