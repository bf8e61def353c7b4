-- Rate-based rules in web ACLs (README "Rate-based rules"), through the real gateway with
-- two workers: the accuracy the issue asks for (2 × limit from one key over a window:
-- limit ± 5% pass), keys counted apart, a custom key combination, the forwarded address
-- with its fallback, the count action, the 403, counters kept across a reload, and the
-- configuration errors with their path (check, start and reload). Counts, not durations:
-- every window here is 60 s and each test sends its requests within a few seconds.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local FORMAT = '{"id":"$context.requestId","status":"$context.status","rule":"$context.waf.rule",'
    .. '"counted":"$context.waf.counted","rateBased":"$context.waf.rateBased",'
    .. '"wafStatus":"$context.waf.status","error":"$context.waf.error"}'

local NAMES = { "ip", "user", "combo", "fwd", "fwdno", "count", "keep", "mixed" }

describe("rate-based rules", function()
    local gw, up, dir
    local ports = {}

    local function api(name, rules)
        ports[name] = ports[name] or h.free_port() -- a reload keeps the ports
        return {
            stages = { ["$default"] = {
                access_log = { path = dir .. "/logs/" .. name .. ".log", format = FORMAT },
                waf = { default_action = "allow", rules = rules },
            } },
            routes = {
                ["ANY /{proxy+}"] = { integration = { type = "http", uri = up.origin .. "/{proxy}" } },
            },
        }
    end

    -- keep_limit: the "keep" rule's limit (a reload test changes it)
    local function config(keep_limit, count_limit)
        local fwd = { header_name = "X-Forwarded-For", fallback_behavior = "match" }
        local apis = {
            ip = api("ip", { { priority = 1, rate_based = { limit = 100, window = 60 }, action = "block" } }),
            user = api("user", { { priority = 1, name = "per-user", action = "block",
                rate_based = { limit = 10, window = 60, custom_keys = { { type = "header", name = "X-User" } } } } }),
            combo = api("combo", { { priority = 1, name = "combo", action = "block",
                rate_based = { limit = 10, window = 60, aggregate_key_type = "custom_keys", custom_keys = {
                    { type = "header", name = "x-user" }, { type = "query_argument", name = "k" },
                    { type = "http_method" }, { type = "cookie", name = "session" } } } } }),
            fwd = api("fwd", { { priority = 1, name = "by-xff", action = "block",
                rate_based = { limit = 10, window = 60, aggregate_key_type = "forwarded_ip", forwarded_ip = fwd } } }),
            fwdno = api("fwdno", { { priority = 1, name = "by-xff", action = "block",
                rate_based = { limit = 10, window = 60, aggregate_key_type = "forwarded_ip",
                    forwarded_ip = { header_name = "x-forwarded-for", fallback_behavior = "no_match" } } } }),
            count = api("count", { { priority = 1, name = "rl-count", action = "count",
                rate_based = { limit = count_limit or 10, window = 60, aggregate_key_type = "constant" } } }),
            keep = api("keep", { { priority = 1, name = "keep", action = "block",
                rate_based = { limit = keep_limit or 10, window = 120 } } }),
            -- a count rule and a block rule of the same key, in order
            mixed = api("mixed", {
                { priority = 2, name = "hard", action = "block",
                  rate_based = { limit = 15, window = 60, custom_keys = { { type = "uri_path" }, { type = "ip" } } } },
                { priority = 1, name = "soft", action = "count",
                  rate_based = { limit = 10, window = 60, custom_keys = { { type = "uri_path" }, { type = "ip" } } } },
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

    local function req(name, path, ...)
        return h.curl({ gw:url(path, ports[name]), ... })
    end

    -- Sends n requests to path on api name, each on a new connection (so both workers get
    -- some), 8 at a time; returns how many were answered 200 and 403.
    local function burst(name, path, n, ...)
        local args = { "--parallel", "--parallel-max", "8", "-H", "Connection: close", "-w", "%{http_code}\n" }
        for _, a in ipairs({ ... }) do args[#args + 1] = a end
        for _ = 1, n do
            args[#args + 1] = gw:url(path, ports[name])
            args[#args + 1] = "-o"
            args[#args + 1] = "/dev/null"
        end
        local out = h.curl_raw(args)
        local codes = {}
        for code in out:gmatch("%d+") do codes[code] = (codes[code] or 0) + 1 end
        return codes["200"] or 0, codes["403"] or 0
    end

    local function entry(name, r)
        return h.wait_for(function()
            return h.find_entry(h.json_log(dir .. "/logs/" .. name .. ".log"), "id", r.headers["apigw-requestid"])
        end, 5)
    end

    it("lets limit ± 5% of 2 × limit requests from one key through within a window (workers = 2)", function()
        local passed, blocked = burst("ip", "/a", 200)
        assert.equal(200, passed + blocked)
        assert.is_true(passed >= 95 and passed <= 105, "passed: " .. passed)
        -- the key is over the limit: AWS WAF's 403, logged with the rule
        local r = req("ip", "/a")
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        local e = entry("ip", r)
        assert.equal("403", e.status)
        assert.equal("rate-based", e.rule)
        assert.equal("rate-based", e.rateBased)
        assert.equal("403", e.wafStatus)
    end)

    it("counts keys apart, and does not count a request without the key", function()
        local a_ok, a_no = burst("user", "/x", 15, "-H", "X-User: alice")
        assert.equal(10, a_ok)
        assert.equal(5, a_no)
        assert.equal(5, (burst("user", "/x", 5, "-H", "X-User: bob")))
        assert.equal(20, (burst("user", "/x", 20))) -- no X-User: not counted
        local r = req("user", "/x", "-H", "X-User: alice")
        assert.equal(403, r.status)
        assert.equal("per-user", entry("user", r).rateBased)
        assert.equal(200, req("user", "/x", "-H", "X-User: carol").status)
    end)

    it("combines custom keys: header, query argument, method and cookie", function()
        local function send(n, user, k, method, cookie)
            return burst("combo", "/c?k=" .. k .. "&other=1", n, "-X", method, "-H", "x-user: " .. user,
                "-H", "Cookie: theme=dark; session=" .. cookie)
        end
        assert.equal(10, (send(12, "a", "1", "GET", "s1")))
        assert.equal(3, (send(3, "a", "2", "GET", "s1")))  -- another query argument value
        assert.equal(3, (send(3, "a", "1", "POST", "s1"))) -- another method
        assert.equal(3, (send(3, "b", "1", "GET", "s1")))  -- another header value
        assert.equal(3, (send(3, "a", "1", "GET", "s2")))  -- another cookie value
        -- a request missing one part (the cookie) is not counted
        assert.equal(12, (burst("combo", "/c?k=1", 12, "-H", "x-user: a")))
        assert.equal(403, req("combo", "/c?other=2&k=1", "-H", "x-user: a", "-H", "Cookie: session=s1").status)
    end)

    it("aggregates on the first forwarded address, with the fallback for a header that holds none", function()
        assert.equal(10, (burst("fwd", "/f", 12, "-H", "X-Forwarded-For: 203.0.113.7, 10.0.0.1")))
        assert.equal(3, (burst("fwd", "/f", 3, "-H", "X-Forwarded-For: 203.0.113.8, 203.0.113.7")))
        -- one address written two ways is one key
        assert.equal(6, (burst("fwd", "/f", 6, "-H", "X-Forwarded-For: 2001:db8::1")))
        local ok6, no6 = burst("fwd", "/f", 6, "-H", "X-Forwarded-For: 2001:0DB8:0:0::1")
        assert.equal(4, ok6)
        assert.equal(2, no6)
        -- not an address: fallback_behavior = "match" blocks at once
        local r = req("fwd", "/f", "-H", "X-Forwarded-For: not-an-address")
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        assert.equal("by-xff", entry("fwd", r).rateBased)
        -- no header: the rule does not apply (AWS WAF), however many
        assert.equal(15, (burst("fwd", "/f", 15)))
        -- fallback_behavior = "no_match": not counted, never blocked
        assert.equal(15, (burst("fwdno", "/f", 15, "-H", "X-Forwarded-For: garbage")))
        assert.equal(10, (burst("fwdno", "/f", 11, "-H", "X-Forwarded-For: 198.51.100.1")))
    end)

    it("with action count lets every request through and records the rule", function()
        assert.equal(10, (burst("count", "/n", 10)))
        local r = req("count", "/n")
        assert.equal(200, r.status)
        local e = entry("count", r)
        assert.equal("-", e.rule)
        assert.equal("rl-count", e.counted)
        assert.equal("rl-count", e.rateBased)
        assert.equal("200", e.wafStatus)
    end)

    it("runs in priority order: a count rule goes on to a block rule of the same key", function()
        assert.equal(10, (burst("mixed", "/m", 10)))
        local r = req("mixed", "/m")
        assert.equal(200, r.status)
        assert.equal("soft", entry("mixed", r).rateBased)
        assert.equal(4, (burst("mixed", "/m", 4)))
        r = req("mixed", "/m")
        assert.equal(403, r.status)
        local e = entry("mixed", r)
        assert.equal("hard", e.rule)
        assert.equal("soft", e.counted)
        assert.equal("soft,hard", e.rateBased)
        assert.equal(200, req("mixed", "/other").status) -- another path, another key
    end)

    it("keeps the counts of an unchanged rule across a reload, and starts a changed one afresh", function()
        assert.equal(6, (burst("keep", "/k", 6)))
        h.write_file(gw.config_path, h.config_source(config(10, 1000))) -- another rule changes
        local out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.equal(0, rc, out)
        local ok, no = burst("keep", "/k", 6)
        assert.equal(4, ok)
        assert.equal(2, no)
        h.write_file(gw.config_path, h.config_source(config(20, 1000))) -- this rule's limit changes
        out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.equal(0, rc, out)
        assert.equal(20, (burst("keep", "/k", 22)))
    end)

    it("rejects a bad rule on reload and keeps serving with the old counters", function()
        local c = config(20, 1000)
        c.apis.keep.stages["$default"].waf.rules[1].rate_based.limit = 5
        h.write_file(gw.config_path, h.config_source(c))
        local out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.are_not.equal(0, rc, out)
        assert.matches('apis.keep.stages["$default"].waf.rules[1].rate_based.limit: must be an integer'
            .. " between 10 and 2000000000, got 5", out, 1, true)
        assert.equal(403, req("keep", "/k").status) -- still over the limit of 20
        h.write_file(gw.config_path, h.config_source(config(20, 1000)))
    end)
end)

describe("rate-based rule configuration errors", function()
    local dir

    setup(function()
        dir = h.tmpdir()
    end)

    local function config_with(rule)
        return h.write_file(dir .. "/gateway.lua", h.config_source({
            apis = { a = {
                stages = { ["$default"] = { waf = { rules = { rule } } } },
                routes = { ["GET /x"] = { integration = { type = "mock" } } },
            } },
        }))
    end

    local function check(rule)
        local path = config_with(rule)
        local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
        return out, rc, path
    end

    local WHERE = 'apis.a.stages["$default"].waf.rules[1]'

    local function expect(rule, suffix)
        local out, rc, path = check(rule)
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. suffix, out, 1, true)
    end

    it("a limit below AWS WAF's minimum of 10", function()
        local out, rc, path = check({ priority = 1, action = "block", rate_based = { limit = 9 } })
        assert.equal(1, rc, out)
        assert.equal(path .. ": " .. WHERE .. ".rate_based.limit: must be an integer between 10 and 2000000000,"
            .. " got 9\n", out)
    end)

    it("a window that is not 60, 120, 300 or 600 seconds", function()
        expect({ priority = 1, action = "block", rate_based = { limit = 10, window = 30 } },
            ".rate_based.window: must be 60, 120, 300 or 600 (seconds), got 30")
    end)

    it("six custom keys", function()
        expect({ priority = 1, action = "block", rate_based = { limit = 10, custom_keys = {
            { type = "header", name = "a" }, { type = "header", name = "b" }, { type = "cookie", name = "c" },
            { type = "query_argument", name = "d" }, { type = "http_method" }, { type = "uri_path" } } } },
            ".rate_based.custom_keys: must have at most 5 keys (AWS WAF's limit), got 6")
    end)

    it("allow as a rate-based rule's action", function()
        expect({ priority = 1, action = "allow", rate_based = { limit = 10 } },
            '.action: a rate-based rule\'s action is "block" or "count" (as in AWS WAF)')
    end)

    it("an unknown key kind, a key without its name, the same key twice", function()
        expect({ priority = 1, action = "block", rate_based = { limit = 10, custom_keys = { { type = "label" } } } },
            '.rate_based.custom_keys[1].type: must be one of "cookie", "forwarded_ip", "header", "http_method", '
            .. '"ip", "label_namespace", "query_argument", "query_string", "uri_path", got "label" '
            .. '(did you mean "label_namespace"?)')
        expect({ priority = 1, action = "block", rate_based = { limit = 10, custom_keys = { { type = "header" } } } },
            ".rate_based.custom_keys[1].name: is required")
        expect({ priority = 1, action = "block", rate_based = { limit = 10, custom_keys = {
            { type = "header", name = "X-A" }, { type = "header", name = "x-a" } } } },
            ".rate_based.custom_keys[2]: the same key as custom_keys[1]")
    end)

    it("forwarded addresses without forwarded_ip, and forwarded_ip where none is used", function()
        expect({ priority = 1, action = "block", rate_based = { limit = 10, aggregate_key_type = "forwarded_ip" } },
            ".rate_based.forwarded_ip: is required to aggregate on a forwarded address")
        expect({ priority = 1, action = "block", rate_based = { limit = 10,
            forwarded_ip = { header_name = "X-Forwarded-For", fallback_behavior = "match" } } },
            '.rate_based.forwarded_ip: applies only with aggregate_key_type = "forwarded_ip"')
        expect({ priority = 1, action = "block", rate_based = { limit = 10, aggregate_key_type = "forwarded_ip",
            forwarded_ip = { header_name = "X-Forwarded-For", fallback_behavior = "MATCH" } } },
            '.rate_based.forwarded_ip.fallback_behavior: must be one of "match", "no_match", got "MATCH"')
    end)

    it("an address alone as a custom key, custom keys with another aggregate key type", function()
        expect({ priority = 1, action = "block", rate_based = { limit = 10, custom_keys = { { type = "ip" } } } },
            '.rate_based.custom_keys[1]: an address alone is aggregate_key_type = "ip"')
        expect({ priority = 1, action = "block", rate_based = { limit = 10, aggregate_key_type = "constant",
            custom_keys = { { type = "http_method" } } } },
            '.rate_based.custom_keys: applies only with aggregate_key_type = "custom_keys", got "constant"')
    end)

    it("rate_based with policy or managed, a managed field on a rate-based rule", function()
        expect({ priority = 1, action = "block", policy = "p.lua", rate_based = { limit = 10 } },
            ".rate_based: a rule has exactly one of policy, managed, statement or rate_based; this one has "
            .. "policy and rate_based")
        expect({ priority = 1, action = "block", managed = "owasp-crs", rate_based = { limit = 10 } },
            ".rate_based: a rule has exactly one of policy, managed, statement or rate_based; this one has "
            .. "managed and rate_based")
        expect({ priority = 1, action = "block", paranoia_level = 2, rate_based = { limit = 10 } },
            ".paranoia_level: applies only to managed rules")
        expect({ priority = 1, action = "block", config = { a = 1 }, rate_based = { limit = 10 } },
            ".config: applies only to policy rules (a policy's configuration)")
    end)

    it("refuses to start with a bad rate-based rule and says why", function()
        local path = config_with({ priority = 1, action = "block", rate_based = { limit = 10, window = 90 } })
        local p = h.spawn({ h.bin, "-c", path, "-p", dir }, dir, "badstart")
        local rc = p:wait(10)
        if rc == nil then p:stop(2) end
        assert.is_number(rc, "moongate kept running with a bad configuration")
        assert.are_not.equal(0, rc)
        assert.matches(WHERE .. ".rate_based.window: must be 60, 120, 300 or 600 (seconds), got 90",
            p.stderr() .. p.stdout(), 1, true)
    end)
end)
