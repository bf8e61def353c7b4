-- Which API, stage and route answer a request (README "Which API answers a
-- request", "Routing"), path normalization, and the 404 gateway response.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local function mock(body)
    return { integration = { type = "mock", status = 200, body = body } }
end

local function http(uri)
    return { integration = { type = "http", uri = uri } }
end

describe("routing", function()
    local up, gw, P1, P2

    lazy_setup(function()
        up = h.start_upstream()
        local UP = up.origin
        P1, P2 = h.free_port(), h.free_port()
        gw = h.start_gateway({
            workers = 2,
            listen = {
                { address = "127.0.0.1", port = P1, api = "r" },
                { address = "127.0.0.1", port = P2 },
            },
            domains = {
                ["api.example.test"] = {
                    mappings = { [""] = "r/prod", v2 = "other", v3 = "other/beta" },
                },
                ["only.example.test"] = { mappings = { v1 = "other/alpha" } },
            },
            apis = {
                r = {
                    stages = {
                        ["$default"] = { variables = { backend = UP, tag = "defvar" } },
                        prod = { variables = { backend = UP, tag = "prodvar" } },
                    },
                    routes = {
                        ["GET /items/special"] = mock("static"),
                        ["GET /items/{id}"] = mock("param"),
                        ["ANY /items/{proxy+}"] = mock("greedy"),
                        ["ANY /things/{id}"] = mock("any-param"),
                        ["POST /things/{id}"] = mock("post-param"),
                        ["ANY /m"] = mock("any-m"),
                        ["GET /m"] = mock("get-m"),
                        ["GET /lit/{x}/c"] = mock("x-c"),
                        ["GET /lit/b/{y}"] = mock("b-y"),
                        ["GET /Alpha"] = mock("alpha"),
                        ["GET /p/{a}/x/{b}"] = http(UP .. "/echo/{b}/{a}"),
                        ["ANY /proxy/{proxy+}"] = http(UP .. "/up/{proxy+}"),
                        ["GET /sv"] = http("${stageVariables.backend}/sv/${stageVariables.tag}"),
                        ["$default"] = mock("default"),
                    },
                },
                other = {
                    stages = {
                        alpha = { variables = { name = "alpha" } },
                        beta = { variables = { name = "beta" } },
                    },
                    routes = { ["GET /hello"] = http(UP .. "/hello/${stageVariables.name}") },
                },
                hostsel = {
                    stages = { ["$default"] = {} },
                    routes = { ["GET /who"] = mock("hostsel") },
                },
                hidden = {
                    default_endpoint = false,
                    stages = { ["$default"] = {} },
                    routes = { ["GET /who"] = mock("hidden") },
                },
                nodefault = {
                    stages = { v1 = {} },
                    routes = { ["GET /x"] = mock("nodefault-v1") },
                },
            },
        })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    -- GET `path` on `port` (P1 by default) with an optional Host header; the path
    -- is sent exactly as written.
    local function get(path, opts)
        opts = opts or {}
        local args = { gw:url(path, opts.port or P1), "--path-as-is" }
        if opts.host then
            args[#args + 1] = "-H"
            args[#args + 1] = "Host: " .. opts.host
        end
        if opts.method then
            args[#args + 1] = "-X"
            args[#args + 1] = opts.method
        end
        return h.curl(args)
    end

    local function body_of(path, opts)
        local r = get(path, opts)
        assert.are.equal(200, r.status, "status for " .. path .. ": " .. r.body)
        return r.body
    end

    local function upstream_target(path, opts)
        local r = get(path, opts)
        assert.are.equal(200, r.status, "status for " .. path .. ": " .. r.body)
        return r:echo().target
    end

    describe("priority", function()
        it("a static route beats {param}, which beats {proxy+}", function()
            assert.are.equal("static", body_of("/items/special"))
            assert.are.equal("param", body_of("/items/42"))
            assert.are.equal("greedy", body_of("/items/42/more/segments"))
        end)

        it("{proxy+} needs at least one segment; $default catches the rest", function()
            assert.are.equal("default", body_of("/items"))
            assert.are.equal("default", body_of("/no/such/route"))
            assert.are.equal("default", body_of("/"))
        end)

        it("a route for the method beats ANY on the same path", function()
            assert.are.equal("post-param", body_of("/things/1", { method = "POST" }))
            assert.are.equal("any-param", body_of("/things/1", { method = "DELETE" }))
            assert.are.equal("get-m", body_of("/m"))
            assert.are.equal("any-m", body_of("/m", { method = "PUT" }))
        end)

        it("a route for another method does not match; ANY greedy does", function()
            assert.are.equal("greedy", body_of("/items/42", { method = "POST" }))
        end)

        it("a literal beats {param} at the first segment where they differ", function()
            assert.are.equal("b-y", body_of("/lit/b/c"))
            assert.are.equal("x-c", body_of("/lit/z/c"))
        end)
    end)

    describe("integration uri", function()
        it("path parameters reach the upstream through the uri template", function()
            assert.are.equal("/echo/two/one", upstream_target("/p/one/x/two"))
        end)

        it("{proxy+} substitution keeps the slashes and the query string follows", function()
            assert.are.equal("/up/a/b/c?x=1&y=2", upstream_target("/proxy/a/b/c?x=1&y=2"))
        end)

        it("stage variables expand in the uri", function()
            assert.are.equal("/sv/defvar", upstream_target("/sv"))
            assert.are.equal("/sv/prodvar", upstream_target("/prod/sv"))
        end)
    end)

    describe("stages", function()
        it("the first path segment selects a stage and is removed", function()
            assert.are.equal("static", body_of("/prod/items/special"))
        end)

        it("without a stage segment the $default stage answers", function()
            assert.are.equal("/sv/defvar", upstream_target("/sv"))
        end)

        it("an API without a $default stage answers 404 when no stage matches", function()
            assert.are.equal("nodefault-v1", body_of("/v1/x", { port = P2, host = "nodefault.localhost" }))
            h.assert_not_found(get("/x", { port = P2, host = "nodefault.localhost" }))
            h.assert_not_found(get("/v2/x", { port = P2, host = "nodefault.localhost" }))
        end)
    end)

    describe("API selection", function()
        it("a domain mapping for the root with api/stage goes straight to that stage", function()
            assert.are.equal("/sv/prodvar", upstream_target("/sv", { host = "api.example.test" }))
        end)

        it("a base path mapping to an API takes the stage from the next segment", function()
            assert.are.equal("/hello/alpha", upstream_target("/v2/alpha/hello", { host = "api.example.test" }))
            assert.are.equal("/hello/beta", upstream_target("/v2/beta/hello", { host = "api.example.test" }))
        end)

        it("a base path mapping to api/stage removes only the base path", function()
            assert.are.equal("/hello/beta", upstream_target("/v3/hello", { host = "api.example.test" }))
        end)

        it("the Host header matches case-insensitively and without its port", function()
            assert.are.equal("/hello/beta", upstream_target("/v3/hello", { host = "API.Example.TEST:8080" }))
        end)

        it("a domain whose mappings do not match answers 404", function()
            h.assert_not_found(get("/v9/hello", { host = "only.example.test" }))
            h.assert_not_found(get("/v2/hello", { host = "api.example.test" }))
        end)

        it("a domain is chosen before the listener's api", function()
            assert.are.equal("/hello/alpha", upstream_target("/v1/hello", { host = "only.example.test" }))
        end)

        it("the listener's api is chosen before the Host label", function()
            assert.are.equal("default", body_of("/who", { host = "hostsel.localhost" }))
        end)

        it("the first Host label names the API on a listener without api", function()
            assert.are.equal("hostsel", body_of("/who", { port = P2, host = "hostsel.localhost:" .. P2 }))
        end)

        it("an API with default_endpoint = false is not reachable by Host label", function()
            h.assert_not_found(get("/who", { port = P2, host = "hidden.localhost" }))
        end)

        it("an unknown Host on a listener without api answers 404", function()
            h.assert_not_found(get("/who", { port = P2, host = "unknown.localhost" }))
            h.assert_not_found(get("/who", { port = P2 }))
        end)
    end)

    describe("404", function()
        it("has the Not Found body, x-amzn-ErrorType and a unique apigw-requestid", function()
            local a = get("/nope", { port = P2, host = "hostsel.localhost" })
            local b = get("/nope", { port = P2, host = "hostsel.localhost" })
            h.assert_not_found(a)
            h.assert_not_found(b)
            assert.are_not.equal(a.headers["apigw-requestid"], b.headers["apigw-requestid"])
        end)

        it("successful responses carry apigw-requestid too", function()
            local r = get("/items/special")
            assert.are.equal(200, r.status)
            assert.matches("^%S+$", r.headers["apigw-requestid"] or "")
            r = get("/sv")
            assert.are.equal(200, r.status)
            assert.matches("^%S+$", r.headers["apigw-requestid"] or "")
        end)
    end)

    describe("path normalization", function()
        it("resolves %2e%2e as a .. segment", function()
            assert.are.equal("static", body_of("/a/%2e%2e/items/special"))
        end)

        it("never goes above the root", function()
            assert.are.equal("static", body_of("/../../items/special"))
        end)

        it("decodes escaped unreserved characters", function()
            assert.are.equal("alpha", body_of("/%41lpha"))
            assert.are.equal("static", body_of("/%69tems/special"))
        end)

        it("merges repeated slashes and drops a trailing slash", function()
            assert.are.equal("static", body_of("//items///special/"))
        end)

        it("keeps %2F inside one segment", function()
            assert.are.equal("param", body_of("/items/a%2Fb"))
        end)

        it("sends the normalized path to the backend", function()
            assert.are.equal("/up/a/c?x=1", upstream_target("/proxy/a/./b/../c?x=1"))
            assert.are.equal("/echo/~/a%2Fb", upstream_target("/p/a%2fb/x/%7e"))
        end)

        it("answers 400 to %00", function()
            h.assert_gateway_response(get("/items/%00"), 400, "Bad Request", "BadRequestException")
        end)

        it("answers 400 to a broken escape", function()
            h.assert_gateway_response(get("/items/%zz"), 400, "Bad Request", "BadRequestException")
        end)
    end)
end)
