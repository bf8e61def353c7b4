-- Managed rules in web ACLs (README "Managed rules"): the OWASP Core Rule Set through
-- libmodsecurity. Attack payloads from public lists are blocked with AWS WAF's 403 and
-- logged with their rule ids; ordinary requests pass at paranoia level 1; count mode,
-- exclusions, the body inspection size, ordering with Lua rules, the user's own SecRule
-- files, configuration errors with their path, and reloads.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local FORMAT = '{"id":"$context.requestId","status":"$context.status","rule":"$context.waf.rule",'
    .. '"counted":"$context.waf.counted","ids":"$context.waf.managed.ruleIds",'
    .. '"score":"$context.waf.managed.score","messages":"$context.waf.managed.messages",'
    .. '"wafStatus":"$context.waf.status","error":"$context.waf.error"}'

local UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

-- A Lua rule that allows requests with x-trusted: yes.
local TRUSTED = [[
return { inspect = function(req) return req:header("x-trusted") == "yes" end }
]]

-- The user's own rules: a header no client should send.
local CUSTOM_RULES = [[
SecRule REQUEST_HEADERS:X-Evil "@streq 1" "id:10001,phase:1,deny,status:403,log,msg:'evil header'"
]]

local function ids(entry)
    local t = {}
    for id in (entry.ids or ""):gmatch("[^,]+") do t[id] = true end
    return t
end

describe("managed rules (OWASP CRS on libmodsecurity)", function()
    local gw, up, dir
    local ports = {}

    local function stage(name, rules)
        return {
            access_log = { path = dir .. "/logs/" .. name .. ".log", format = FORMAT },
            waf = { default_action = "allow", rules = rules },
        }
    end

    local function api(name, rules)
        ports[name] = ports[name] or h.free_port() -- a reload keeps the ports
        return {
            stages = { ["$default"] = rules and stage(name, rules) or {
                access_log = { path = dir .. "/logs/" .. name .. ".log", format = FORMAT } } },
            routes = {
                ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy}" } },
            },
        }
    end

    local function config()
        local crs = { priority = 10, managed = "owasp-crs", action = "block" }
        local apis = {
            block = api("block", { crs }),
            count = api("count", { { priority = 10, name = "crs-count", managed = "owasp-crs", action = "count" } }),
            excl = api("excl", { { priority = 10, managed = "owasp-crs", action = "block",
                exclusions = { 913100, "941100-941199", "attack-sqli" } } }),
            small = api("small", { { priority = 10, managed = "owasp-crs", action = "block", inspection_size = 64 } }),
            order = api("order", {
                { priority = 2, managed = "owasp-crs", action = "block" },
                { priority = 1, name = "trusted", policy = "policies/trusted.lua", action = "allow" },
            }),
            custom = api("custom", { { priority = 10, managed = "owasp-crs", action = "block",
                rules_files = { "rules/custom.conf" } } }),
            plain = api("plain", nil),
        }
        local listen = {}
        for _, name in ipairs({ "block", "count", "excl", "small", "order", "custom", "plain" }) do
            listen[#listen + 1] = { address = "127.0.0.1", port = ports[name], api = name }
        end
        ports.management = ports.management or h.free_port()
        return { workers = 2, listen = listen, apis = apis,
            management = { address = "127.0.0.1", port = ports.management } }
    end

    lazy_setup(function()
        up = h.start_upstream()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies") .. " " .. h.sh_quote(dir .. "/logs")
            .. " " .. h.sh_quote(dir .. "/rules"))
        h.write_file(dir .. "/policies/trusted.lua", TRUSTED)
        h.write_file(dir .. "/rules/custom.conf", CUSTOM_RULES)
        gw = h.start_gateway(config(), { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local function req(name, path, ...)
        return h.curl({ gw:url(path, ports[name]), "-H", "Host: api.example.test", "-A", UA, "-H", "Accept: */*", ... })
    end

    local function entry(name, r)
        return h.wait_for(function()
            return h.find_entry(h.json_log(dir .. "/logs/" .. name .. ".log"), "id", r.headers["apigw-requestid"])
        end, 5)
    end

    -- Blocked with WAF_FILTERED's 403 and logged with the rule that caught it.
    local function assert_blocked(r, rule_id, name)
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        local e = entry(name or "block", r)
        assert.is_table(e)
        assert.equal("403", e.status)
        assert.equal("owasp-crs", e.rule)
        assert.is_true(ids(e)["949110"], e.ids)
        assert.is_true(ids(e)[rule_id], "expected rule " .. rule_id .. " in " .. e.ids)
        assert.is_true(tonumber(e.score) >= 5, e.score)
        return e
    end

    describe("block attacks from public payload lists", function()
        it("SQL injection in the query: ' OR 1=1-- and UNION SELECT", function()
            assert_blocked(req("block", "/search?q=%27%20OR%201%3D1--"), "942100")
            assert_blocked(req("block", "/search?id=1%20UNION%20SELECT%20username,password%20FROM%20users"), "942100")
        end)

        it("SQL injection in a JSON body and in a form body", function()
            assert_blocked(req("block", "/search", "-H", "Content-Type: application/json",
                "--data", '{"filter":"1 UNION SELECT password FROM users"}'), "942100")
            assert_blocked(req("block", "/login", "--data", "user=admin%27--&pass=x"), "942100")
        end)

        it("XSS: <script>alert(1)</script> and an onerror= handler", function()
            local e = assert_blocked(req("block", "/page?q=%3Cscript%3Ealert(1)%3C/script%3E"), "941100")
            assert.matches("XSS Attack Detected via libinjection", e.messages, 1, true)
            assert_blocked(req("block", "/page?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"), "941100")
        end)

        it("path traversal: ../../etc/passwd", function()
            assert_blocked(req("block", "/files?name=../../etc/passwd"), "930100")
        end)

        it("scanner user agents: sqlmap and nikto", function()
            assert_blocked(h.curl({ gw:url("/", ports.block), "-H", "Host: api.example.test",
                "-A", "sqlmap/1.7.2#stable (https://sqlmap.org)" }), "913100")
            assert_blocked(h.curl({ gw:url("/", ports.block), "-H", "Host: api.example.test",
                "-A", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)" }), "913100")
        end)

        it("protocol attacks: request smuggling and response splitting in arguments", function()
            assert_blocked(req("block", "/x?q=%0d%0aGET%20/admin%20HTTP/1.1%0d%0aHost:%20x"), "921110")
            assert_blocked(req("block", "/x?lang=en%0d%0aContent-Length:%200%0d%0a%0d%0aHTTP/1.1%20200%20OK"), "921120")
        end)

        it("a stage without a managed rule lets the same request through", function()
            local r = req("plain", "/search?q=%27%20OR%201%3D1--")
            assert.equal(200, r.status)
            local e = entry("plain", r)
            assert.equal("-", e.ids)
        end)
    end)

    describe("let ordinary requests through at paranoia level 1", function()
        it("a JSON body", function()
            local r = req("block", "/orders", "-H", "Content-Type: application/json",
                "--data", '{"item":"running shoes","size":42,"gift":true,"note":"leave at the door"}')
            assert.equal(200, r.status)
            local e = entry("block", r)
            assert.equal("-", e.rule)
            assert.equal("-", e.ids)
        end)

        it("search queries with quotes and apostrophes", function()
            assert.equal(200, req("block", "/search?q=O%27Brien").status)
            assert.equal(200, req("block", "/search?q=%22hello%20world%22&sort=price").status)
            assert.equal(200, req("block", "/people", "--data", "name=Miles O'Brien&city=Dublin").status)
        end)

        it("unicode text", function()
            assert.equal(200, req("block", "/search?q=%E6%97%A5%E6%9C%AC%E8%AA%9E%20caf%C3%A9%20%D0%BC%D0%B8%D1%80").status)
            assert.equal(200, req("block", "/notes", "-H", "Content-Type: application/json",
                "--data", '{"text":"Grüße aus Köln — naïve café, 日本語のテキスト, мир"}').status)
        end)

        it("a large ordinary body", function()
            local items = {}
            for i = 1, 2000 do items[i] = string.format('{"sku":"A%05d","qty":%d}', i, i % 7) end
            local r = req("block", "/bulk", "-H", "Content-Type: application/json",
                "--data", '{"items":[' .. table.concat(items, ",") .. ']}')
            assert.equal(200, r.status)
        end)
    end)

    it("count mode lets the request through and records the rule and its ids", function()
        local r = req("count", "/search?q=%27%20OR%201%3D1--")
        assert.equal(200, r.status)
        local e = entry("count", r)
        assert.equal("-", e.rule)
        assert.equal("crs-count", e.counted)
        assert.is_true(ids(e)["942100"], e.ids)
        assert.is_true(tonumber(e.score) >= 5, e.score)
        assert.equal("200", e.wafStatus)
    end)

    it("a match below the threshold is recorded with its score and does not block", function()
        -- a numeric Host (920350, a warning: 3 points) alone stays under the threshold of 5
        local r = h.curl({ gw:url("/search?q=shoes", ports.block), "-A", UA, "-H", "Accept: */*" })
        assert.equal(200, r.status)
        local e = entry("block", r)
        assert.equal("-", e.rule)
        assert.equal("920350", e.ids)
        assert.equal("3", e.score)
    end)

    it("exclusions leave out rule ids, id ranges and tags", function()
        -- 913100 (scanner user agents) by id
        local r = h.curl({ gw:url("/x", ports.excl), "-H", "Host: api.example.test", "-A", "sqlmap/1.7.2#stable" })
        assert.equal(200, r.status)
        -- attack-sqli by tag
        assert.equal(200, req("excl", "/search?q=%27%20OR%201%3D1--").status)
        -- path traversal is not excluded
        assert.equal(403, req("excl", "/files?name=../../etc/passwd").status)
    end)

    it("a payload past inspection_size is not seen, one within it is", function()
        local pad = string.rep("a", 80)
        local late = req("small", "/search", "-H", "Content-Type: application/json",
            "--data", '{"pad":"' .. pad .. '","q":"1 UNION SELECT password FROM users"}')
        assert.equal(200, late.status)
        local early = req("small", "/search", "-H", "Content-Type: application/json",
            "--data", '{"q":"1 UNION SELECT password FROM users","pad":"' .. pad .. '"}')
        assert.equal(403, early.status)
    end)

    it("runs in priority order with Lua rules: a lower-priority allow rule wins", function()
        local r = req("order", "/search?q=%27%20OR%201%3D1--", "-H", "X-Trusted: yes")
        assert.equal(200, r.status)
        local e = entry("order", r)
        assert.equal("trusted", e.rule)
        assert.equal("-", e.ids) -- the managed rule did not run
        assert.equal(403, req("order", "/search?q=%27%20OR%201%3D1--").status)
    end)

    it("loads the user's own SecRule files after the rule set", function()
        local r = req("custom", "/x", "-H", "X-Evil: 1")
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        local e = entry("custom", r)
        assert.is_true(ids(e)["10001"], e.ids)
        assert.matches("evil header", e.messages, 1, true)
        assert.equal(200, req("custom", "/x").status)
        assert.equal(403, req("custom", "/search?q=%27%20OR%201%3D1--").status)
    end)

    it("stays healthy whatever a request contains", function()
        -- malformed JSON, a body that claims XML, many arguments, binary bytes
        assert.equal(200, req("block", "/x", "-H", "Content-Type: application/json", "--data", '{"a":').status)
        assert.equal(200, req("block", "/x", "-H", "Content-Type: application/xml", "--data", "<a><b>").status)
        local many = {}
        for i = 1, 500 do many[i] = "k" .. i .. "=v" .. i end
        local r = req("block", "/x?" .. table.concat(many, "&"))
        assert.is_true(r.status == 200 or r.status == 403, tostring(r.status))
        -- (CRS refuses content types outside its allowed list: 920420)
        r = req("block", "/x", "-H", "Content-Type: application/octet-stream", "--data-binary", "\1\2\3\255\254")
        assert.equal(403, r.status)
        assert.is_true(ids(entry("block", r))["920420"])
        assert.equal(403, req("block", "/search?q=%27%20OR%201%3D1--").status)
    end)

    it("reload swaps in a changed rule set and keeps serving", function()
        assert.equal(403, req("block", "/search?q=%27%20OR%201%3D1--").status)
        local c = config()
        c.apis.block.stages["$default"].waf.rules[1].exclusions = { "attack-sqli" }
        h.write_file(gw.config_path, h.config_source(c))
        local out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.equal(0, rc, out)
        assert.equal(200, req("block", "/search?q=%27%20OR%201%3D1--").status)
        assert.equal(403, req("block", "/page?q=%3Cscript%3Ealert(1)%3C/script%3E").status)
    end)
end)

describe("managed rule configuration errors", function()
    local dir

    setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/rules"))
    end)

    local function check(rule)
        local path = h.write_file(dir .. "/gateway.lua", h.config_source({
            apis = { a = {
                stages = { ["$default"] = { waf = { rules = { rule } } } },
                routes = { ["GET /x"] = { integration = { type = "mock" } } },
            } },
        }))
        local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
        return out, rc, path
    end

    local WHERE = 'apis.a.stages["$default"].waf.rules[1]'

    it("an unknown managed rule set", function()
        local out, rc, path = check({ priority = 1, managed = "owasp-crs-9", action = "block" })
        assert.equal(1, rc, out)
        assert.equal(path .. ": " .. WHERE .. '.managed: must be one of "owasp-crs", got "owasp-crs-9"'
            .. ' (did you mean "owasp-crs"?)\n', out)
    end)

    it("a paranoia level out of range", function()
        local out, rc, path = check({ priority = 1, managed = "owasp-crs", paranoia_level = 5, action = "block" })
        assert.equal(1, rc, out)
        assert.equal(path .. ": " .. WHERE .. ".paranoia_level: must be an integer between 1 and 4, got 5\n", out)
    end)

    it("a bad exclusion", function()
        local out, rc, path = check({ priority = 1, managed = "owasp-crs", action = "block",
            exclusions = { "942200-942100" } })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".exclusions[1]: \"942200-942100\" is not an id range", out, 1, true)
    end)

    it("a rules file that does not parse: ModSecurity's message with its file and line", function()
        h.write_file(dir .. "/rules/bad.conf", "SecRule ARGS \"@rx a\" \"id:10002,phase:2,pass\"\nSecRule ARGS @rx\n")
        local out, rc, path = check({ priority = 1, managed = "owasp-crs", action = "block",
            rules_files = { "rules/bad.conf" } })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ": ModSecurity: ", out, 1, true)
        assert.matches(dir .. "/rules/bad.conf", out, 1, true)
        assert.matches("Line: 2", out, 1, true)
    end)

    it("a rules file that does not exist", function()
        local out, rc, path = check({ priority = 1, managed = "owasp-crs", action = "block",
            rules_files = { "rules/missing.conf" } })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ": ModSecurity: ", out, 1, true)
        assert.matches("missing.conf", out, 1, true)
    end)

    it("policy and managed together, allow as a managed rule's action, managed fields on a policy rule", function()
        local out, rc, path = check({ priority = 1, managed = "owasp-crs", policy = "p.lua", action = "block" })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".managed: a rule has exactly one of policy, managed, statement or rate_based; this one has policy and managed", out, 1, true)
        out, rc, path = check({ priority = 1, managed = "owasp-crs", action = "allow" })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. '.action: a managed rule\'s action is "block" or "count"', out, 1, true)
        h.write_file(dir .. "/p.lua", "return { inspect = function() return false end }")
        out, rc, path = check({ priority = 1, policy = "p.lua", paranoia_level = 2, action = "block" })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".paranoia_level: applies only to managed rules", out, 1, true)
        out, rc, path = check({ priority = 1, action = "block" })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".policy: is required", out, 1, true)
    end)
end)
