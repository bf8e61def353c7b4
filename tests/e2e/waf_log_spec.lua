-- WAF logs (README "WAF logs"): a stage's web ACL writes one JSON line per request in
-- AWS WAF's log format. Real gateway, real clients (curl, raw sockets); every line is
-- decoded with cjson, and the hostile-header file with Python's strict UTF-8 and JSON
-- decoders. Covers the terminating rule and action of allow, block, count and the default
-- action, managed rule sets in ruleGroupList, redaction, filters, sampling (0, 1 and a
-- ratio checked with bounds that cannot flake), reloading to a new path, and the
-- configuration errors.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
local SQLI = "/search?q=%27%20OR%201%3D1--"

local AGENTS = [[
return { inspect = function(req) return req:header("user-agent") == "evil" end }
]]
local TRUSTED = [[
return { inspect = function(req) return req:header("x-trusted") == "yes" end }
]]
local COUNTME = [[
return { inspect = function(req) return req:header("x-count") ~= nil end }
]]

describe("WAF logs", function()
    local gw, up, dir
    local ports = {}
    local names = { "main", "crscount", "deny", "zero", "half", "redact", "filtered", "plain" }

    local function logpath(name)
        return "logs/" .. name .. ".log"
    end

    local function api(name, waf)
        ports[name] = ports[name] or h.free_port()
        return {
            stages = { ["$default"] = { waf = waf } },
            routes = { ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy}" } } },
        }
    end

    local function config(main_path)
        local trusted = { priority = 1, name = "trusted", policy = "policies/trusted.lua", action = "allow" }
        local countme = { priority = 2, name = "countme", policy = "policies/countme.lua", action = "count" }
        local agents = { priority = 3, name = "agents", policy = "policies/agents.lua", action = "block" }
        local crs = { priority = 10, name = "crs", managed = "owasp-crs", action = "block" }
        local apis = {
            main = api("main", { rules = { trusted, countme, agents, crs },
                log = { path = main_path or logpath("main"),
                        redacted_fields = { headers = { "Authorization", "x-secret" } } } }),
            crscount = api("crscount", { rules = { { priority = 1, name = "crs-count", managed = "owasp-crs",
                action = "count" } }, log = { path = logpath("crscount") } }),
            deny = api("deny", { default_action = "block", rules = { trusted },
                log = { path = logpath("deny") } }),
            zero = api("zero", { rules = { agents }, log = { path = logpath("zero"), sample_rate = 0 } }),
            half = api("half", { rules = { agents }, log = { path = logpath("half"), sample_rate = 0.5 } }),
            redact = api("redact", { rules = { agents }, log = { path = logpath("redact"),
                redacted_fields = { query_string = true, uri_path = true, method = true } } }),
            filtered = api("filtered", { rules = { countme, agents }, log = { path = logpath("filtered"),
                filter = { default_behavior = "drop", filters = {
                    { behavior = "keep", conditions = { { action = "block" } } },
                    { behavior = "keep", requirement = "meets_all",
                      conditions = { { action = "count" }, { action = "allow" } } },
                } } } }),
            plain = api("plain", { rules = { agents } }),
        }
        local listen = {}
        for _, name in ipairs(names) do
            listen[#listen + 1] = { address = "127.0.0.1", port = ports[name], api = name }
        end
        ports.management = ports.management or h.free_port()
        return { workers = 1, listen = listen, apis = apis,
            management = { address = "127.0.0.1", port = ports.management } }
    end

    lazy_setup(function()
        up = h.start_upstream()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies") .. " " .. h.sh_quote(dir .. "/logs"))
        h.write_file(dir .. "/policies/agents.lua", AGENTS)
        h.write_file(dir .. "/policies/trusted.lua", TRUSTED)
        h.write_file(dir .. "/policies/countme.lua", COUNTME)
        gw = h.start_gateway(config(), { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    local function req(name, path, ...)
        return h.curl({ gw:url(path, ports[name]), "-A", UA, ... })
    end

    -- The decoded line of request r in stage name's log (every line must decode).
    local function line(name, r, file)
        local path = dir .. "/" .. (file or logpath(name))
        return h.wait_for(function()
            for _, e in ipairs(h.json_log(path)) do
                assert.is_nil(e._error, e._raw)
                if e.httpRequest and e.httpRequest.requestId == r.headers["apigw-requestid"] then return e end
            end
        end, 5)
    end

    local function header(e, name)
        for _, hd in ipairs(e.httpRequest.headers) do
            if hd.name == name then return hd.value end
        end
    end

    local function rule_ids(list)
        local t = {}
        for _, x in ipairs(list) do t[x.ruleId] = x.action end
        return t
    end

    it("an allow rule: terminatingRuleId, REGULAR, ALLOW and the request's fields", function()
        local r = req("main", "/pets/1?a=1&b=%22x", "-H", "x-trusted: yes", "-H", "Authorization: Bearer s3cret",
            "-H", "X-Secret: hush", "-H", "X-Other: kept")
        assert.equal(200, r.status)
        local e = line("main", r)
        assert.is_table(e)
        assert.is_number(e.timestamp)
        assert.is_true(math.abs(e.timestamp - os.time() * 1000) < 600000, tostring(e.timestamp))
        assert.equal(1, e.formatVersion)
        assert.equal("arn:moongate:wafv2:::webacl/apis.main.stages.$default.waf", e.webaclId)
        assert.equal("trusted", e.terminatingRuleId)
        assert.equal("REGULAR", e.terminatingRuleType)
        assert.equal("ALLOW", e.action)
        assert.same({}, e.terminatingRuleMatchDetails)
        assert.equal("APIGW", e.httpSourceName)
        assert.equal("main:$default", e.httpSourceId)
        assert.same({}, e.ruleGroupList) -- the managed rule never ran
        assert.same({}, e.rateBasedRuleList)
        assert.same({}, e.nonTerminatingMatchingRules)
        assert.same({}, e.labels)
        assert.equal(h.json_decode("null"), e.requestHeadersInserted)
        assert.equal(h.json_decode("null"), e.responseCodeSent)
        local q = e.httpRequest
        assert.equal("127.0.0.1", q.clientIp)
        assert.equal("-", q.country)
        assert.equal("/pets/1", q.uri)
        assert.equal("a=1&b=%22x", q.args)
        assert.equal("HTTP/1.1", q.httpVersion)
        assert.equal("GET", q.httpMethod)
        assert.equal("REDACTED", header(e, "authorization"))
        assert.equal("REDACTED", header(e, "x-secret"))
        assert.equal("kept", header(e, "x-other"))
        assert.equal("yes", header(e, "x-trusted"))
        assert.equal(UA, header(e, "user-agent"))
    end)

    it("the default action: Default_Action, REGULAR, ALLOW", function()
        local r = req("main", "/pets")
        assert.equal(200, r.status)
        local e = line("main", r)
        assert.equal("Default_Action", e.terminatingRuleId)
        assert.equal("REGULAR", e.terminatingRuleType)
        assert.equal("ALLOW", e.action)
        -- the managed rule ran and matched nothing
        assert.equal(1, #e.ruleGroupList)
        assert.equal(h.json_decode("null"), e.ruleGroupList[1].terminatingRule)
    end)

    it("a block rule: BLOCK with responseCodeSent 403", function()
        local r = h.curl({ gw:url("/pets", ports.main), "-A", "evil" })
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        local e = line("main", r)
        assert.equal("agents", e.terminatingRuleId)
        assert.equal("REGULAR", e.terminatingRuleType)
        assert.equal("BLOCK", e.action)
        assert.equal(403, e.responseCodeSent)
    end)

    it("a count rule: in nonTerminatingMatchingRules with action COUNT", function()
        local r = req("main", "/pets", "-H", "x-count: 1")
        assert.equal(200, r.status)
        local e = line("main", r)
        assert.equal("ALLOW", e.action)
        assert.equal("Default_Action", e.terminatingRuleId)
        assert.same({ { ruleId = "countme", action = "COUNT", ruleMatchDetails = {} } }, e.nonTerminatingMatchingRules)
        -- count then block
        r = h.curl({ gw:url("/pets", ports.main), "-A", "evil", "-H", "x-count: 1" })
        assert.equal(403, r.status)
        e = line("main", r)
        assert.equal("BLOCK", e.action)
        assert.equal("agents", e.terminatingRuleId)
        assert.equal("countme", e.nonTerminatingMatchingRules[1].ruleId)
    end)

    it("a default action of block: Default_Action, BLOCK, 403", function()
        local r = req("deny", "/pets")
        assert.equal(403, r.status)
        local e = line("deny", r)
        assert.equal("Default_Action", e.terminatingRuleId)
        assert.equal("BLOCK", e.action)
        assert.equal(403, e.responseCodeSent)
        r = req("deny", "/pets", "-H", "x-trusted: yes")
        assert.equal(200, r.status)
        assert.equal("trusted", line("deny", r).terminatingRuleId)
    end)

    it("a managed rule set that blocks: MANAGED_RULE_GROUP and ruleGroupList with CRS ids", function()
        local r = req("main", SQLI)
        assert.equal(403, r.status)
        local e = line("main", r)
        assert.equal("crs", e.terminatingRuleId)
        assert.equal("MANAGED_RULE_GROUP", e.terminatingRuleType)
        assert.equal("BLOCK", e.action)
        assert.equal(403, e.responseCodeSent)
        assert.equal(1, #e.ruleGroupList)
        local g = e.ruleGroupList[1]
        assert.equal("moongate#owasp-crs", g.ruleGroupId)
        assert.equal("crs", g.ruleName)
        assert.same({ ruleId = "949110", action = "BLOCK" }, g.terminatingRule)
        assert.equal("COUNT", rule_ids(g.nonTerminatingMatchingRules)["942100"])
        assert.is_nil(rule_ids(g.nonTerminatingMatchingRules)["949110"])
        assert.is_true(g.anomalyScore >= 5, tostring(g.anomalyScore))
        assert.equal(h.json_decode("null"), g.excludedRules)
    end)

    it("a managed rule set in count mode: ALLOW, the rule counted, the group's rule COUNT", function()
        local r = req("crscount", SQLI)
        assert.equal(200, r.status)
        local e = line("crscount", r)
        assert.equal("ALLOW", e.action)
        assert.equal("Default_Action", e.terminatingRuleId)
        assert.equal("COUNT", rule_ids(e.nonTerminatingMatchingRules)["crs-count"])
        local g = e.ruleGroupList[1]
        assert.equal("crs-count", g.ruleName)
        assert.same({ ruleId = "949110", action = "COUNT" }, g.terminatingRule)
        assert.equal("COUNT", rule_ids(g.nonTerminatingMatchingRules)["942100"])
        assert.equal(h.json_decode("null"), e.responseCodeSent)
    end)

    it("redacts the query string, the path and the method", function()
        local r = req("redact", "/secret/path?token=abc")
        assert.equal(200, r.status)
        local e = line("redact", r)
        assert.equal("REDACTED", e.httpRequest.uri)
        assert.equal("REDACTED", e.httpRequest.args)
        assert.equal("REDACTED", e.httpRequest.httpMethod)
        assert.equal(UA, header(e, "user-agent"))
        assert.is_nil(h.read_file(dir .. "/" .. logpath("redact")):find("abc", 1, true))
    end)

    it("filters: dropped by default, kept for BLOCK and for ALLOW with a count", function()
        local plain = req("filtered", "/a")
        local counted = req("filtered", "/b", "-H", "x-count: 1")
        local blocked = h.curl({ gw:url("/c", ports.filtered), "-A", "evil" })
        assert.equal(200, plain.status)
        assert.equal(200, counted.status)
        assert.equal(403, blocked.status)
        assert.equal("BLOCK", line("filtered", blocked).action)
        assert.equal("countme", line("filtered", counted).nonTerminatingMatchingRules[1].ruleId)
        -- written in order by one worker: the later lines are there, the dropped one is not
        assert.is_nil(line("filtered", plain))
        assert.equal(2, #h.log_lines(dir .. "/" .. logpath("filtered")))
    end)

    it("sample_rate 0 logs nothing; a stage without a WAF log has no file", function()
        for _ = 1, 20 do assert.equal(200, req("zero", "/x").status) end
        local r = h.curl({ gw:url("/x", ports.zero), "-A", "evil" })
        assert.equal(403, r.status)
        local later = req("main", "/after-zero")
        assert.is_table(line("main", later)) -- flushed after the zero stage's requests
        assert.equal(0, #h.log_lines(dir .. "/" .. logpath("zero")))
        assert.equal(200, req("plain", "/x").status)
        assert.is_nil(h.read_file(dir .. "/" .. logpath("plain")))
    end)

    it("sample_rate 0.5 logs about half of 400 requests", function()
        local n = 400
        local urls = {}
        for i = 1, n do urls[i] = h.sh_quote(gw:url("/r" .. i, ports.half)) end
        local _, rc = h.run("curl -s -o /dev/null -A x " .. table.concat(urls, " ") .. " >/dev/null")
        assert.equal(0, rc)
        local later = req("main", "/after-half")
        assert.is_table(line("main", later))
        local lines = h.json_log(dir .. "/" .. logpath("half"))
        for _, e in ipairs(lines) do assert.is_nil(e._error, e._raw) end
        -- Binomial(400, 0.5): mean 200, standard deviation 10; [100, 300] is 10 deviations
        assert.is_true(#lines >= 100 and #lines <= 300, "logged " .. #lines .. " of " .. n)
    end)

    it("a hostile header value still makes one valid JSON line (strict UTF-8 and JSON)", function()
        -- quotes, backslashes, a tab, a literal \n, bytes >= 0x80, invalid UTF-8 (a lone
        -- continuation byte, a truncated sequence, 0xFF), valid UTF-8, and a hostile query
        local value = '"q" \\ \\n \t caf\xc3\xa9 \x80 \xc3 \xff \xed\xa0\x80 end'
        local before = #h.log_lines(dir .. "/" .. logpath("main"))
        local raw = "GET /hostile?x=%22%0A%0D\"\\ HTTP/1.1\r\nHost: a\r\nUser-Agent: " .. UA
            .. "\r\nX-Hostile: " .. value .. "\r\nConnection: close\r\n\r\n"
        local out = h.raw_exchange(ports.main, raw)
        assert.matches("^HTTP/1.1 200", out)
        local id = out:match("\r\n[Aa]pigw%-[Rr]equestid: (%S+)\r\n")
        local e = line("main", { headers = { ["apigw-requestid"] = id } })
        assert.is_table(e)
        assert.equal(before + 1, #h.log_lines(dir .. "/" .. logpath("main")))
        local got = header(e, "x-hostile")
        assert.equal('"q" \\ \\n \t caf\xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd '
            .. '\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end', got)
        -- every line of the file decodes as strict UTF-8 JSON, one object per line
        local py = "import json,sys\nn=0\nfor l in open(sys.argv[1],'rb'):\n"
            .. "  assert l.endswith(b'\\n')\n  json.loads(l.decode('utf-8'))\n  n+=1\nprint(n)\n"
        h.write_file(dir .. "/strict.py", py)
        local res, rc = h.run("python3 " .. h.sh_quote(dir .. "/strict.py") .. " "
            .. h.sh_quote(dir .. "/" .. logpath("main")))
        assert.equal(0, rc, res)
        assert.equal(tostring(before + 1), res:match("%d+"))
    end)

    it("a reload moves the log to a new path", function()
        h.write_file(gw.config_path, h.config_source(config(logpath("main2"))))
        local out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.equal(0, rc, out)
        local before = #h.log_lines(dir .. "/" .. logpath("main"))
        local r = req("main", "/after-reload")
        assert.equal(200, r.status)
        local e = line("main", r, logpath("main2"))
        assert.is_table(e)
        assert.equal("Default_Action", e.terminatingRuleId)
        assert.equal(before, #h.log_lines(dir .. "/" .. logpath("main")))
    end)
end)

describe("WAF log configuration errors", function()
    local dir

    setup(function()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/logs"))
    end)

    local function check(log)
        local path = h.write_file(dir .. "/gateway.lua", h.config_source({
            apis = { a = {
                stages = { ["$default"] = { waf = { log = log } } },
                routes = { ["GET /x"] = { integration = { type = "mock" } } },
            } },
        }))
        local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
        return out, rc, path
    end

    local WHERE = 'apis.a.stages["$default"].waf.log'

    it("a good log passes", function()
        local out, rc = check({ path = "logs/waf.log", sample_rate = 0.25,
            redacted_fields = { headers = { "authorization" }, query_string = true },
            filter = { default_behavior = "drop", filters = { { behavior = "keep", conditions = { { action = "block" } } } } } })
        assert.equal(0, rc, out)
    end)

    it("a directory that does not exist, named with the path", function()
        local out, rc, path = check({ path = "nodir/waf.log" })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. '.path: directory "' .. dir .. '/nodir" does not exist', out, 1, true)
    end)

    it("a missing path", function()
        local out, rc, path = check({ sample_rate = 1 })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".path: is required (or stream or syslog)", out, 1, true)
    end)

    it("a sample rate outside 0..1", function()
        local out, rc, path = check({ path = "logs/w.log", sample_rate = 1.5 })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".sample_rate: must be a number at least 0 and at most 1, got 1.5", out, 1, true)
    end)

    it("a redacted header that is not a header name", function()
        local out, rc, path = check({ path = "logs/w.log", redacted_fields = { headers = { "bad name" } } })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".redacted_fields.headers[1]: invalid header name: must be an HTTP token",
            out, 1, true)
    end)

    it("a filter with an unknown behavior, action or no conditions", function()
        local out, rc, path = check({ path = "logs/w.log", filter = { filters = {
            { behavior = "maybe", conditions = { { action = "block" } } },
            { behavior = "keep", conditions = { { action = "captcha" } } },
            { behavior = "keep", conditions = {} },
        } } })
        assert.equal(1, rc, out)
        local f = path .. ": " .. WHERE .. ".filter.filters"
        assert.matches(f .. '[1].behavior: must be one of "keep", "drop", got "maybe"', out, 1, true)
        assert.matches(f .. '[2].conditions[1].action: must be one of "allow", "block", "count", got "captcha"', out, 1, true)
        assert.matches(f .. "[3].conditions: must not be empty", out, 1, true)
    end)

    it("an unknown field", function()
        local out, rc, path = check({ path = "logs/w.log", sampling = 1 })
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. ".sampling: unknown key", out, 1, true)
    end)
end)
