-- AWS WAF rule statements in web ACLs (README "Rule statements"): every statement kind
-- through the real gateway, text-transformation chains that undo encoded attacks, CIDR
-- edge cases on the client address and on forwarded headers, label chains (count rules
-- label, later rules match), and/or/not, custom block responses byte for byte, every
-- documented configuration error with its path, and reloads (a bad one keeps the old
-- generation; a changed IP-set file takes effect).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local FORMAT = '{"id":"$context.requestId","status":"$context.status","rule":"$context.waf.rule",'
    .. '"counted":"$context.waf.counted","labels":"$context.waf.labels"}'

-- A Lua rule that labels requests carrying x-bot: 1 (policy rules add labels too).
local BOT = [[
return { inspect = function(req) return req:header("x-bot") == "1" end }
]]

local IPS = [[
# blocked networks
10.0.0.0/8
10.1.0.0/16      # overlaps the /8
192.0.2.7
2001:db8::/32
]]

local UA_PATTERNS = "# scanners\n(?i)nikto\n(?i)masscan/[0-9]\n"

local function field(name, stmt)
    stmt.field = name
    return stmt
end

describe("rule statements", function()
    local gw, dir
    local ports = {}

    local function api(name, rules, extra)
        ports[name] = ports[name] or h.free_port()
        local waf = { default_action = "allow", rules = rules }
        for k, v in pairs(extra or {}) do waf[k] = v end
        return {
            stages = { ["$default"] = {
                access_log = { path = dir .. "/logs/" .. name .. ".log", format = FORMAT },
                waf = waf,
            } },
            routes = { ["ANY /{proxy+}"] = { integration = { type = "mock", status = 200, body = "ok" } },
                       ["ANY /"] = { integration = { type = "mock", status = 200, body = "ok" } } },
        }
    end

    local function config()
        local apis = {
            bytes = api("bytes", {
                { name = "admin", priority = 1, action = "block", statement = { byte_match = field("uri_path", {
                    search_string = "/admin", positional_constraint = "STARTS_WITH",
                    text_transformations = { "URL_DECODE", "URL_DECODE", "NORMALIZE_PATH", "LOWERCASE" } }) } },
                { name = "sqlmap", priority = 2, action = "block", statement = { byte_match = field(
                    { single_header = "User-Agent" }, { search_string = "sqlmap", positional_constraint = "CONTAINS_WORD",
                    text_transformations = { { priority = 1, type = "LOWERCASE" } } }) } },
                { name = "arg", priority = 3, action = "block", statement = { byte_match = field(
                    { single_query_argument = "mode" }, { search_string = "debug", positional_constraint = "EXACTLY" }) } },
                { name = "delete", priority = 4, action = "block", statement = { byte_match = field("method",
                    { search_string = "DELETE", positional_constraint = "EXACTLY" }) } },
                { name = "php", priority = 5, action = "block", statement = { byte_match = field("uri_path",
                    { search_string = ".php", positional_constraint = "ENDS_WITH" }) } },
                { name = "hdrkey", priority = 6, action = "block", statement = { byte_match = field(
                    { headers = { match_scope = "KEY" } }, { search_string = "x-debug", positional_constraint = "EXACTLY",
                    text_transformations = { "LOWERCASE" } }) } },
                { name = "cookie", priority = 7, action = "block", statement = { byte_match = field(
                    { cookies = { match_scope = "VALUE" } }, { search_string = "evil", positional_constraint = "CONTAINS" }) } },
            }),
            size = api("size", {
                { name = "longq", priority = 1, action = "block", statement = { size_constraint = field("query_string",
                    { comparison_operator = "GT", size = 20 }) } },
                { name = "bigbody", priority = 2, action = "block", statement = { size_constraint = field(
                    { body = { size_limit = 1000 } }, { comparison_operator = "GE", size = 50 }) } },
            }),
            regex = api("regex", {
                { name = "secret", priority = 1, action = "block", statement = { regex_match = field("uri_path",
                    { regex_string = "^/v[0-9]+/secret" }) } },
                { name = "scanners", priority = 2, action = "block", statement = { regex_pattern_set = field(
                    { single_header = "user-agent" }, { file = "patterns/ua.txt" }) } },
                { name = "args", priority = 3, action = "block", statement = { regex_pattern_set = field(
                    "all_query_arguments", { patterns = { "^\\.\\./", "etc/passwd$" }, text_transformations = { "URL_DECODE" } }) } },
            }),
            inject = api("inject", {
                { name = "sqli", priority = 1, action = "block", statement = { sqli_match = field("all_query_arguments",
                    { text_transformations = { "URL_DECODE", "HTML_ENTITY_DECODE" } }) },
                  response = { status = 400, body = '{"error":"sqli"}', content_type = "application/json",
                               headers = { ["x-waf"] = "sqli" } } },
                { name = "sqlibody", priority = 2, action = "block", statement = { sqli_match = field("body",
                    { text_transformations = { "URL_DECODE", "REPLACE_COMMENTS", "COMPRESS_WHITE_SPACE" } }) } },
                { name = "xss", priority = 3, action = "block", statement = { xss_match = field(
                    { body = { oversize_handling = "CONTINUE" } }, { text_transformations = { "URL_DECODE", "HTML_ENTITY_DECODE" } }) } },
            }),
            ips = api("ips", {
                { name = "local", priority = 1, action = "count", labels = { "net:local" },
                  statement = { ip_set = { addresses = { "127.0.0.1" } } } },
                { name = "xff", priority = 2, action = "block", statement = { ip_set = { file = "ips/blocked.txt",
                    forwarded_ip = { header_name = "X-Forwarded-For", fallback_behavior = "NO_MATCH" } } } },
                { name = "last", priority = 3, action = "block", statement = { ip_set = { addresses = { "198.51.100.0/24" },
                    forwarded_ip = { header_name = "X-Last", fallback_behavior = "MATCH", position = "LAST" } } } },
                { name = "any", priority = 4, action = "block", statement = { ip_set = { addresses = { "203.0.113.0/24" },
                    forwarded_ip = { header_name = "X-Any", fallback_behavior = "NO_MATCH", position = "ANY" } } } },
                { name = "v6all", priority = 5, action = "block", statement = { ip_set = { addresses = { "::/0" },
                    forwarded_ip = { header_name = "X-V6", fallback_behavior = "NO_MATCH" } } } },
                { name = "v4all", priority = 6, action = "block", statement = { ip_set = { addresses = { "0.0.0.0/0" },
                    forwarded_ip = { header_name = "X-V4", fallback_behavior = "NO_MATCH" } } } },
            }),
            labels = api("labels", {
                { name = "tag", priority = 1, action = "count", labels = { "sus:scanner" },
                  statement = { byte_match = field({ single_header = "x-scan" }, { search_string = "1",
                    positional_constraint = "EXACTLY" }) } },
                { name = "bot", priority = 2, action = "count", labels = { "bot:lua", "bot:any" },
                  policy = "policies/bot.lua" },
                { name = "onlabel", priority = 3, action = "block",
                  statement = { label_match = { scope = "LABEL", key = "scanner" } },
                  response = { status = 429, body = "slow down\n", headers = { ["retry-after"] = "30" } } },
                { name = "onns", priority = 4, action = "block",
                  statement = { and_statement = {
                      { label_match = { scope = "NAMESPACE", key = "bot:" } },
                      { not_statement = { byte_match = field("uri_path", { search_string = "/robots.txt",
                          positional_constraint = "EXACTLY" }) } },
                  } } },
                { name = "postform", priority = 5, action = "block",
                  statement = { and_statement = {
                      { byte_match = field("method", { search_string = "POST", positional_constraint = "EXACTLY" }) },
                      { not_statement = { or_statement = {
                          { byte_match = field({ single_header = "content-type" }, { search_string = "json",
                              positional_constraint = "CONTAINS" }) },
                          { byte_match = field({ single_header = "content-type" }, { search_string = "text/plain",
                              positional_constraint = "STARTS_WITH" }) },
                      } } },
                  } } },
            }),
            default = api("default", {
                { name = "open", priority = 1, action = "allow", statement = { byte_match = field("uri_path",
                    { search_string = "/open", positional_constraint = "STARTS_WITH" }) } },
            }, { default_action = "block", default_response = { status = 403, body = "<h1>closed</h1>",
                content_type = "text/html" } }),
        }
        local listen = {}
        for name in pairs(apis) do
            listen[#listen + 1] = { address = "127.0.0.1", port = ports[name], api = name }
        end
        table.sort(listen, function(a, b) return a.port < b.port end)
        ports.management = ports.management or h.free_port()
        return { workers = 2, listen = listen, apis = apis,
            management = { address = "127.0.0.1", port = ports.management } }
    end

    lazy_setup(function()
        dir = h.tmpdir()
        for _, d in ipairs({ "policies", "logs", "ips", "patterns" }) do
            os.execute("mkdir -p " .. h.sh_quote(dir .. "/" .. d))
        end
        h.write_file(dir .. "/policies/bot.lua", BOT)
        h.write_file(dir .. "/ips/blocked.txt", IPS)
        h.write_file(dir .. "/patterns/ua.txt", UA_PATTERNS)
        gw = h.start_gateway(config(), { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    local function req(name, path, ...)
        return h.curl({ gw:url(path, ports[name]), ... })
    end

    local function entry(name, r)
        return h.wait_for(function()
            return h.find_entry(h.json_log(dir .. "/logs/" .. name .. ".log"), "id", r.headers["apigw-requestid"])
        end, 5)
    end

    local function blocked(name, rule, r)
        h.assert_gateway_response(r, 403, "Forbidden", "ForbiddenException")
        local e = entry(name, r)
        assert.equal(rule, e.rule)
        return e
    end

    local function passes(r)
        assert.equal(200, r.status, r.body)
        assert.equal("ok", r.body)
    end

    describe("byte_match", function()
        it("STARTS_WITH on the path, after URL-decoding twice, normalizing and lower-casing", function()
            blocked("bytes", "admin", req("bytes", "/admin/users"))
            blocked("bytes", "admin", req("bytes", "/%2561dmin"))        -- double URL encoding
            blocked("bytes", "admin", req("bytes", "/public/..%2F..%2FADMIN", "--path-as-is"))
            blocked("bytes", "admin", req("bytes", "/administrator"))
            passes(req("bytes", "/public/admin"))
        end)

        it("CONTAINS_WORD on a single header, case-folded", function()
            blocked("bytes", "sqlmap", req("bytes", "/", "-A", "SQLMap/1.7 (https://sqlmap.org)"))
            passes(req("bytes", "/", "-A", "notsqlmapper"))
        end)

        it("EXACTLY on one query argument, the method, ENDS_WITH on the path", function()
            blocked("bytes", "arg", req("bytes", "/x?a=1&MODE=debug"))
            passes(req("bytes", "/x?mode=debugger"))
            blocked("bytes", "delete", req("bytes", "/x", "-X", "DELETE"))
            blocked("bytes", "php", req("bytes", "/index.php"))
            passes(req("bytes", "/index.php5"))
        end)

        it("header names (match_scope KEY) and cookie values", function()
            blocked("bytes", "hdrkey", req("bytes", "/", "-H", "X-Debug: on"))
            passes(req("bytes", "/", "-H", "X-Other: x-debug"))
            blocked("bytes", "cookie", req("bytes", "/", "-H", "Cookie: a=1; session=evil123"))
            passes(req("bytes", "/", "-H", "Cookie: evil=1"))
        end)
    end)

    describe("size_constraint", function()
        it("the query string's length and the body's size", function()
            passes(req("size", "/x?a=12345678901234"))
            blocked("size", "longq", req("size", "/x?a=123456789012345678901"))
            passes(req("size", "/x", "--data", string.rep("a", 49)))
            blocked("size", "bigbody", req("size", "/x", "--data", string.rep("a", 50)))
        end)
    end)

    describe("regex_match and regex_pattern_set", function()
        it("a PCRE2 pattern, patterns from a file, patterns on every query argument", function()
            blocked("regex", "secret", req("regex", "/v2/secret/x"))
            passes(req("regex", "/v2/public"))
            blocked("regex", "scanners", req("regex", "/", "-A", "Mozilla/5.00 (Nikto/2.1.6)"))
            blocked("regex", "scanners", req("regex", "/", "-A", "masscan/1.3"))
            passes(req("regex", "/", "-A", "masscan"))
            blocked("regex", "args", req("regex", "/x?a=1&file=%2E%2E%2Fetc"))
            blocked("regex", "args", req("regex", "/x?f=/etc/passwd"))
            passes(req("regex", "/x?f=passwd.txt"))
        end)
    end)

    describe("sqli_match and xss_match", function()
        it("SQL injection in an argument gets the rule's custom response, byte for byte", function()
            local r = req("inject", "/search?q=1%27%20OR%20%271%27%3D%271")
            assert.equal(400, r.status)
            assert.equal('{"error":"sqli"}', r.body)
            assert.equal("application/json", r.headers["content-type"])
            assert.equal("sqli", r.headers["x-waf"])
            assert.equal("16", r.headers["content-length"])
            assert.equal("sqli", entry("inject", r).rule)
            -- HTML entities hide the quote
            assert.equal(400, req("inject", "/search?q=1%26%2339%3B%20OR%201%3D1--").status)
        end)

        it("comment-obfuscated SQL in a form body", function()
            blocked("inject", "sqlibody", req("inject", "/login",
                "--data", "user=admin&q=1%27/**/UNION/**/SELECT/**/password/**/FROM/**/users--"))
        end)

        it("XSS in a body, also as HTML entities", function()
            blocked("inject", "xss", req("inject", "/c", "--data", "comment=%3Cscript%3Ealert(1)%3C/script%3E"))
            blocked("inject", "xss", req("inject", "/c", "--data",
                "comment=&lt;img src=x onerror=alert(1)&gt;"))
        end)

        it("ordinary requests pass: searches, JSON, unicode", function()
            passes(req("inject", "/search?q=rock%20and%20roll&page=2"))
            passes(req("inject", "/search?q=caf%C3%A9%20cr%C3%A8me"))
            passes(req("inject", "/items", "-H", "Content-Type: application/json",
                "--data", '{"name":"Widget","tags":["a","b"],"price":9.5}'))
            passes(req("inject", "/c", "--data", "comment=I love this product, 5 stars!"))
        end)
    end)

    describe("ip_set", function()
        -- rule "last" matches when X-Last is missing (its fallback is MATCH)
        local function ipreq(path, ...)
            return req("ips", path, "-H", "X-Last: 1.1.1.1", ...)
        end

        it("the client address, with a count rule's label in the log", function()
            local r = ipreq("/")
            passes(r)
            local e = entry("ips", r)
            assert.equal("local", e.counted)
            assert.equal("net:local", e.labels)
        end)

        it("a forwarded header: the first address, overlapping blocks, IPv6, and the NO_MATCH fallback", function()
            blocked("ips", "xff", ipreq("/", "-H", "X-Forwarded-For: 10.1.2.3, 8.8.8.8"))
            blocked("ips", "xff", ipreq("/", "-H", "X-Forwarded-For: 10.200.0.1"))
            blocked("ips", "xff", ipreq("/", "-H", "X-Forwarded-For: 192.0.2.7"))
            blocked("ips", "xff", ipreq("/", "-H", "X-Forwarded-For: 2001:db8:abcd::1"))
            blocked("ips", "xff", ipreq("/", "-H", "X-Forwarded-For: ::ffff:10.0.0.1"))
            passes(ipreq("/", "-H", "X-Forwarded-For: 8.8.8.8, 10.1.2.3"))
            passes(ipreq("/", "-H", "X-Forwarded-For: 192.0.2.8"))
            passes(ipreq("/", "-H", "X-Forwarded-For: 2001:db9::1"))
            passes(ipreq("/", "-H", "X-Forwarded-For: not-an-address"))
        end)

        it("the last address, and the MATCH fallback when the header is missing or not an address", function()
            blocked("ips", "last", req("ips", "/", "-H", "X-Last: 8.8.8.8, 198.51.100.9"))
            passes(req("ips", "/", "-H", "X-Last: 198.51.100.9, 8.8.8.8"))
            blocked("ips", "last", req("ips", "/", "-H", "X-Last: garbage"))
        end)

        it("any address of the list", function()
            blocked("ips", "any", req("ips", "/", "-H", "X-Last: 1.1.1.1", "-H", "X-Any: 8.8.8.8, 203.0.113.5 ,1.1.1.1"))
            passes(req("ips", "/", "-H", "X-Last: 1.1.1.1", "-H", "X-Any: 8.8.8.8, 1.1.1.1"))
        end)

        it("::/0 holds every IPv6 address and no IPv4 one; 0.0.0.0/0 every IPv4 one", function()
            local last = { "-H", "X-Last: 1.1.1.1" }
            blocked("ips", "v6all", req("ips", "/", last[1], last[2], "-H", "X-V6: ::1"))
            passes(req("ips", "/", last[1], last[2], "-H", "X-V6: 1.2.3.4"))
            blocked("ips", "v4all", req("ips", "/", last[1], last[2], "-H", "X-V4: 255.255.255.255"))
            passes(req("ips", "/", last[1], last[2], "-H", "X-V4: 2001:db8::1"))
        end)
    end)

    describe("labels and and/or/not", function()
        it("a count rule labels, a later rule blocks on the label with its custom response", function()
            local r = req("labels", "/", "-H", "x-scan: 1")
            assert.equal(429, r.status)
            assert.equal("slow down\n", r.body)
            assert.equal("30", r.headers["retry-after"])
            local e = entry("labels", r)
            assert.equal("onlabel", e.rule)
            assert.equal("tag", e.counted)
            assert.equal("sus:scanner", e.labels)
        end)

        it("a Lua policy rule's labels, matched by namespace, scoped down with not", function()
            local e = blocked("labels", "onns", req("labels", "/page", "-H", "x-bot: 1"))
            assert.equal("bot:lua,bot:any", e.labels)
            local r = req("labels", "/robots.txt", "-H", "x-bot: 1")
            passes(r)
            assert.equal("bot:lua,bot:any", entry("labels", r).labels)
        end)

        it("and + not + or: a POST that is neither JSON nor text", function()
            blocked("labels", "postform", req("labels", "/f", "--data", "a=1"))
            passes(req("labels", "/f", "-H", "Content-Type: application/json", "--data", "{}"))
            passes(req("labels", "/f", "-H", "Content-Type: text/plain", "--data", "hi"))
            passes(req("labels", "/f"))
        end)
    end)

    it("the web ACL's default block action with a custom response", function()
        local r = req("default", "/closed")
        assert.equal(403, r.status)
        assert.equal("<h1>closed</h1>", r.body)
        assert.equal("text/html", r.headers["content-type"])
        passes(req("default", "/open/x"))
    end)

    it("a reload with a bad statement keeps the old generation; a changed IP-set file takes effect", function()
        local c = config()
        c.apis.regex.stages["$default"].waf.rules[1].statement.regex_match.regex_string = "(unclosed"
        h.write_file(gw.config_path, h.config_source(c))
        local out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.not_equal(0, rc, out)
        assert.matches("regex_string: PCRE2 error at offset 9: missing closing parenthesis", out, 1, true)
        blocked("regex", "secret", req("regex", "/v2/secret/x"))
        h.write_file(gw.config_path, h.config_source(config()))
        h.write_file(dir .. "/ips/blocked.txt", "8.8.8.0/24\n")
        out, rc = h.moongate({ "reload", "-c", gw.config_path, "-p", dir })
        assert.equal(0, rc, out)
        blocked("ips", "xff", req("ips", "/", "-H", "X-Last: 1.1.1.1", "-H", "X-Forwarded-For: 8.8.8.8"))
        passes(req("ips", "/", "-H", "X-Last: 1.1.1.1", "-H", "X-Forwarded-For: 10.1.2.3"))
    end)
end)

describe("rule statement configuration errors", function()
    local dir

    setup(function()
        dir = h.tmpdir()
    end)

    local function check(rule, waf)
        waf = waf or {}
        waf.rules = { rule }
        local path = h.write_file(dir .. "/gateway.lua", h.config_source({
            apis = { a = {
                stages = { ["$default"] = { waf = waf } },
                routes = { ["GET /x"] = { integration = { type = "mock" } } },
            } },
        }))
        local out, rc = h.moongate({ "check", "-c", path, "-p", dir })
        return out, rc, path
    end

    local WHERE = 'apis.a.stages["$default"].waf.rules[1]'

    local function rule(stmt, extra)
        local r = { name = "r", priority = 1, action = "block", statement = stmt }
        for k, v in pairs(extra or {}) do r[k] = v end
        return r
    end

    local function fails(r, want, waf)
        local out, rc, path = check(r, waf)
        assert.equal(1, rc, out)
        assert.matches(path .. ": " .. WHERE .. want, out, 1, true)
    end

    local BM = function(t)
        local s = { field = "uri_path", search_string = "x", positional_constraint = "CONTAINS" }
        for k, v in pairs(t or {}) do s[k] = v end
        return { byte_match = s }
    end

    it("a good statement passes moongate check", function()
        local out, rc = check(rule(BM()))
        assert.equal(0, rc, out)
    end)

    it("byte_match: a bad field, constraint, transformation, too many transformations", function()
        fails(rule(BM({ field = "url" })), '.statement.byte_match.field: must be one of "uri_path"')
        fails(rule(BM({ field = { single_header = "" } })), ".statement.byte_match.field: single_header must be a name")
        fails(rule(BM({ field = { body = { oversize_handling = "DROP" } } })),
            '.statement.byte_match.field: body.oversize_handling must be one of "CONTINUE", "MATCH", "NO_MATCH"')
        fails(rule(BM({ positional_constraint = "BEGINS" })),
            '.statement.byte_match.positional_constraint: must be one of "EXACTLY"')
        fails(rule(BM({ text_transformations = { "URL_DECODED" } })),
            '.statement.byte_match.text_transformations: [1]: "URL_DECODED" is not a transformation')
        local many = {}
        for i = 1, 11 do many[i] = "NONE" end
        fails(rule(BM({ text_transformations = many })),
            ".statement.byte_match.text_transformations: must have at most 10 transformations, got 11")
        fails(rule(BM({ search_string = "" })), ".statement.byte_match.search_string: must not be empty")
        fails(rule(BM({ field = { body = { size_limit = 0 } } })),
            ".statement.byte_match.field: body.size_limit must be an integer between 1 and 65536, got 0")
        fails(rule(BM({ text_transformations = { { priority = 0, type = "LOWERCASE" }, { priority = 0, type = "NONE" } } })),
            ".statement.byte_match.text_transformations: [2]: priority 0 is used twice")
    end)

    it("a statement with no kind or two kinds, an unknown kind, a rule without a name", function()
        fails(rule({}), ".statement: must have exactly one statement kind")
        local two = BM()
        two.sqli_match = { field = "body" }
        fails(rule(two), ".statement: must have exactly one statement kind")
        fails(rule({ asn_match = { asn_list = { 64496 } } }), ".statement.asn_match: unknown key")
        local r = rule(BM())
        r.name = nil
        fails(r, ".name: is required for a statement rule")
    end)

    it("ip_set: a bad CIDR inline and in a file (with its line), a missing file, no addresses", function()
        fails(rule({ ip_set = { addresses = { "10.0.0.0/8", "10.0.0.1/8" } } }),
            '.statement.ip_set.addresses[2]: "10.0.0.1/8" has bits set after its /8 prefix')
        fails(rule({ ip_set = { addresses = { "2001:db8::/129" } } }),
            '.statement.ip_set.addresses[1]: "2001:db8::/129": the prefix length must be 0 to 128')
        h.write_file(dir .. "/bad.txt", "# x\n10.0.0.0/8\n10.0.0.256\n")
        fails(rule({ ip_set = { file = "bad.txt" } }),
            '.statement.ip_set.file: ' .. dir .. '/bad.txt:3: "10.0.0.256" is not an IPv4 or IPv6 address')
        fails(rule({ ip_set = { file = "none.txt" } }), '.statement.ip_set.file: cannot read "' .. dir
            .. '/none.txt": No such file or directory')
        h.write_file(dir .. "/two.txt", "10.0.0.0/8 10.1.0.0/16\n")
        fails(rule({ ip_set = { file = "two.txt" } }), ".statement.ip_set.file: " .. dir .. "/two.txt:1: one block per line")
        fails(rule({ ip_set = {} }), ".statement.ip_set.addresses: is required (or file)")
        fails(rule({ ip_set = { addresses = { "1.2.3.4" }, forwarded_ip = { header_name = "x-ff" } } }),
            ".statement.ip_set.forwarded_ip.fallback_behavior: is required")
    end)

    it("regex: a PCRE2 compile error with its offset, inline and in a file", function()
        fails(rule({ regex_match = { field = "uri_path", regex_string = "a[b" } }),
            ".statement.regex_match.regex_string: PCRE2 error at offset 3: missing terminating ] for character class")
        h.write_file(dir .. "/p.txt", "ok\n(x\n")
        fails(rule({ regex_pattern_set = { field = "uri_path", file = "p.txt" } }),
            ".statement.regex_pattern_set.file: " .. dir .. "/p.txt:2: PCRE2 error at offset 2: missing closing parenthesis")
        fails(rule({ regex_pattern_set = { field = "uri_path", patterns = { "ok", "*x" } } }),
            ".statement.regex_pattern_set.patterns[2]: PCRE2 error at offset 0: quantifier does not follow a repeatable item")
        fails(rule({ regex_pattern_set = { field = "uri_path", file = "nope.txt" } }),
            '.statement.regex_pattern_set.file: cannot read "' .. dir .. '/nope.txt": No such file or directory')
        fails(rule({ regex_pattern_set = { field = "uri_path" } }),
            ".statement.regex_pattern_set.patterns: is required (or file)")
    end)

    it("and/or/not: too few statements, nesting deeper than 20 levels, a nested error's path", function()
        fails(rule({ and_statement = { BM() } }), ".statement.and_statement: and_statement needs at least 2 statements, got 1")
        local s = BM()
        for _ = 1, 21 do s = { not_statement = s } end
        fails(rule(s), ".statement: statements nest at most 20 levels deep")
        fails(rule({ or_statement = { BM(), { not_statement = BM({ positional_constraint = "NOPE" }) } } }),
            ".statement.or_statement[2].not_statement.byte_match.positional_constraint: must be one of")
    end)

    it("label_match and labels", function()
        fails(rule({ label_match = { scope = "NAMESPACE", key = "bot" } }),
            '.statement.label_match.key: a namespace ends with ":"')
        fails(rule({ label_match = { scope = "LABELS", key = "bot" } }), ".statement.label_match.scope: must be one of")
        fails(rule(BM(), { labels = { "bad label" } }), '.labels[1]: must be a label ("namespace:name"')
    end)

    it("custom responses: a bad status, on a count rule, on a default action that allows", function()
        fails(rule(BM(), { response = { status = 200 } }), ".response.status: must be an integer between 400 and 599, got 200")
        fails(rule(BM(), { action = "count", response = { status = 403 } }),
            '.response: applies only to rules whose action is "block"')
        fails(rule(BM(), { response = { status = 403, headers = { ["bad header"] = "x" } } }),
            '.response.headers["bad header"]: must be a header name')
        local out, rc, path = check(rule(BM()), { default_action = "allow", default_response = { status = 403 } })
        assert.equal(1, rc, out)
        assert.matches(path .. ': apis.a.stages["$default"].waf.default_response: applies only when default_action is "block"',
            out, 1, true)
    end)

    it("statement and policy together; statement fields on a policy rule", function()
        fails(rule(BM(), { policy = "p.lua" }),
            ".statement: a rule has exactly one of policy, managed, statement or rate_based; this one has "
            .. "policy and statement")
    end)
end)
