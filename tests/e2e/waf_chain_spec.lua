-- How the kinds of web ACL rules work together (README "Web ACLs"): a rate-based rule
-- scoped down by a rule statement, a rate-based rule keyed by a label namespace that an
-- earlier statement rule added, labels added by a managed rule and matched by a later
-- statement with a custom response, and the WAF log of all of it (labels,
-- rateBasedRuleList, terminatingRuleType RATE_BASED). Real gateway, curl; counts, not
-- durations (windows of 60 s, each test sends its requests within a few seconds).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cjson = require "cjson.safe"

local FORMAT = '{"id":"$context.requestId","status":"$context.status","rule":"$context.waf.rule",'
    .. '"labels":"$context.waf.labels","rateBased":"$context.waf.rateBased","counted":"$context.waf.counted"}'

local NAMES = { "scoped", "plans", "crs" }

describe("web ACL rule kinds together", function()
    local gw, up, dir
    local ports = {}

    local function api(name, rules, log)
        ports[name] = ports[name] or h.free_port()
        return {
            stages = { ["$default"] = {
                access_log = { path = dir .. "/logs/" .. name .. ".log", format = FORMAT },
                waf = { default_action = "allow", rules = rules, log = log },
            } },
            routes = { ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy}" } } },
        }
    end

    local function config(scoped_rule)
        local login = { byte_match = { field = "uri_path", search_string = "/login",
            positional_constraint = "STARTS_WITH", text_transformations = { "LOWERCASE" } } }
        local apis = {
            scoped = api("scoped", { scoped_rule or { priority = 1, name = "logins", action = "block",
                rate_based = { limit = 10, window = 60, scope_down = login } } }),
            plans = api("plans", {
                { priority = 1, name = "free-plan", action = "count", labels = { "plan:free" },
                  statement = { byte_match = { field = { single_header = "x-plan" }, search_string = "free",
                      positional_constraint = "EXACTLY" } } },
                { priority = 2, name = "per-plan", action = "block",
                  rate_based = { limit = 10, window = 60,
                      custom_keys = { { type = "label_namespace", name = "plan:" } } } },
            }, { path = "logs/plans-waf.log" }),
            crs = api("crs", {
                { priority = 1, name = "crs", managed = "owasp-crs", action = "count", labels = { "crs:hit" } },
                { priority = 2, name = "after-crs", action = "block",
                  statement = { label_match = { scope = "NAMESPACE", key = "crs:" } },
                  response = { status = 406, content_type = "text/plain", body = "refused by the WAF\n",
                      headers = { ["x-waf"] = "crs" } } },
            }),
        }
        local listen = {}
        for _, name in ipairs(NAMES) do
            listen[#listen + 1] = { address = "127.0.0.1", port = ports[name], api = name }
        end
        ports.management = ports.management or h.free_port()
        return { workers = 2, listen = listen, apis = apis,
            management = { address = "127.0.0.1", port = ports.management } }
    end

    lazy_setup(function()
        up = h.start_upstream()
        dir = h.tmpdir()
        os.execute("mkdir -p " .. h.sh_quote(dir .. "/logs"))
        gw = h.start_gateway(config(), { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    -- Sends n requests to path on api name one after another; returns the counts of 200s
    -- and 403s.
    local function send(name, path, n, ...)
        local ok, blocked = 0, 0
        for _ = 1, n do
            local r = h.curl({ gw:url(path, ports[name]), ... })
            if r.status == 200 then ok = ok + 1 elseif r.status == 403 then blocked = blocked + 1 end
        end
        return ok, blocked
    end

    local function entry(name, r)
        return h.wait_for(function()
            return h.find_entry(h.json_log(dir .. "/logs/" .. name .. ".log"), "id", r.headers["apigw-requestid"])
        end, 5)
    end

    it("counts only the requests in a rate-based rule's scope-down statement", function()
        assert.same({ 15, 0 }, { send("scoped", "/other", 15) })
        assert.same({ 10, 5 }, { send("scoped", "/LOGIN/form", 15) })
        -- out of scope: neither counted nor matched, even with the key over the limit
        local r = h.curl({ gw:url("/other", ports.scoped) })
        assert.equal(200, r.status)
        assert.equal("-", entry("scoped", r).rateBased)
        r = h.curl({ gw:url("/login", ports.scoped) })
        assert.equal(403, r.status)
        assert.equal("logins", entry("scoped", r).rateBased)
    end)

    it("aggregates on a label namespace an earlier statement rule added; no label, no count", function()
        assert.same({ 10, 2 }, { send("plans", "/p", 12, "-H", "X-Plan: free") })
        assert.same({ 12, 0 }, { send("plans", "/p", 12, "-H", "X-Plan: gold") })
        local r = h.curl({ gw:url("/p", ports.plans), "-H", "X-Plan: free" })
        assert.equal(403, r.status)
        local e = entry("plans", r)
        assert.equal("plan:free", e.labels)
        assert.equal("free-plan", e.counted)
        assert.equal("per-plan", e.rule)
    end)

    it("writes labels, rateBasedRuleList and RATE_BASED in the WAF log", function()
        local r = h.curl({ gw:url("/p", ports.plans), "-H", "X-Plan: free" })
        assert.equal(403, r.status)
        local id = r.headers["apigw-requestid"]
        local line = h.wait_for(function()
            for l in (h.read_file(dir .. "/logs/plans-waf.log") or ""):gmatch("[^\n]+") do
                local j = assert(cjson.decode(l))
                if j.httpRequest.requestId == id then return j end
            end
        end, 5)
        assert.equal("BLOCK", line.action)
        assert.equal("per-plan", line.terminatingRuleId)
        assert.equal("RATE_BASED", line.terminatingRuleType)
        assert.same({ { name = "plan:free" } }, line.labels)
        assert.equal(1, #line.rateBasedRuleList)
        local rb = line.rateBasedRuleList[1]
        assert.equal("per-plan", rb.rateBasedRuleName)
        assert.equal("CUSTOMKEYS", rb.limitKey)
        assert.equal(10, rb.maxRateAllowed)
        assert.equal("60", rb.evaluationWindowSec)
        assert.same({ { key = "LABEL_NAMESPACE", name = "plan:", value = "plan:free" } }, rb.customValues)
        assert.same({ { ruleId = "free-plan", action = "COUNT", ruleMatchDetails = {} } },
            line.nonTerminatingMatchingRules)
        -- a request the rules let through: its label, no rate-based rule
        r = h.curl({ gw:url("/p", ports.plans), "-H", "X-Plan: gold" })
        id = r.headers["apigw-requestid"]
        line = h.wait_for(function()
            for l in (h.read_file(dir .. "/logs/plans-waf.log") or ""):gmatch("[^\n]+") do
                local j = assert(cjson.decode(l))
                if j.httpRequest.requestId == id then return j end
            end
        end, 5)
        assert.equal("ALLOW", line.action)
        assert.equal("Default_Action", line.terminatingRuleId)
        assert.same({}, line.labels)
        assert.same({}, line.rateBasedRuleList)
    end)

    it("adds a managed rule's labels when it matches; a later statement blocks on them with its response", function()
        local r = h.curl({ gw:url("/search?q=%27%20OR%201%3D1--", ports.crs) })
        assert.equal(406, r.status)
        assert.equal("refused by the WAF\n", r.body)
        assert.equal("crs", r.headers["x-waf"])
        assert.equal("text/plain", r.headers["content-type"])
        local e = entry("crs", r)
        assert.equal("crs:hit", e.labels)
        assert.equal("crs", e.counted)
        assert.equal("after-crs", e.rule)
        r = h.curl({ gw:url("/search?q=moon%20gate", ports.crs) })
        assert.equal(200, r.status)
        assert.equal("-", entry("crs", r).labels)
    end)

    it("names the scope-down statement's path in its errors; a namespace key needs its colon", function()
        local function fails(rule, want)
            local path = h.write_file(dir .. "/bad.lua", h.config_source({ apis = { a = {
                stages = { ["$default"] = { waf = { rules = { rule } } } },
                routes = { ["GET /x"] = { integration = { type = "mock" } } },
            } } }))
            local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
            assert.equal(1, rc, out)
            assert.matches(path .. ': apis.a.stages["$default"]' .. want, out, 1, true)
        end
        fails({ priority = 1, action = "block", rate_based = { limit = 10, scope_down = {
            byte_match = { field = "url", search_string = "/x", positional_constraint = "EXACTLY" } } } },
            '.waf.rules[1].rate_based.scope_down.byte_match.field: must be one of')
        fails({ priority = 1, action = "block", rate_based = { limit = 10,
            custom_keys = { { type = "label_namespace", name = "plan" }, { type = "ip" } } } },
            '.waf.rules[1].rate_based.custom_keys[1].name: a namespace ends with ":", got "plan"')
        fails({ priority = 1, action = "block" },
            '.waf.rules[1].policy: is required (or managed = "owasp-crs", statement = {...} or rate_based = {...})')
    end)
end)
