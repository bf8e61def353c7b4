-- Tracing (README "Tracing"): W3C traceparent/tracestate continued or started and sent
-- to backends and moongate.http calls, $context.traceId in the access log, the request
-- id header, and spans exported over OTLP/HTTP JSON to a fake collector (a test-upstream
-- that records the bytes it receives); a collector that hangs or is down leaves requests
-- unaffected.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local socket = require "socket"
local cjson = require "cjson"

local TID = "4bf92f3577b34da6a3ce929d0e0e4736"
local PID = "00f067aa0ba902b7"

local POLICIES = {
    ["allow.lua"] = [[
return { authorize = function() return { isAuthorized = true } end }
]],
    -- Calls the upstream and answers with what it saw.
    ["fetch.lua"] = [[
local http = require "moongate.http"
return { handle = function(event, conf)
  local own = event.headers["x-own-traceparent"]
  local res, err = http.get(conf.url, { timeout = 5, headers = own and { traceparent = own } or nil })
  if not res then return { statusCode = 502, body = "fetch failed: " .. err } end
  return { statusCode = 200, headers = { ["content-type"] = "application/json" }, body = res.body }
end, schema = { type = "record", fields = { url = { type = "string", description = "url" } } } }
]],
}

local function write_policies(dir)
    os.execute("mkdir -p " .. h.sh_quote(dir .. "/policies/waf"))
    for name, src in pairs(POLICIES) do h.write_file(dir .. "/policies/" .. name, src) end
    h.write_file(dir .. "/policies/waf/ip_set.lua", h.read_file(h.root .. "/policies/waf/ip_set.lua"))
end

-- The JSON bodies of the requests in a raw HTTP/1.1 byte stream (what the collector got).
local function posted_bodies(raw)
    local out, pos = {}, 1
    while true do
        local s, e = raw:find("\r\n\r\n", pos, true)
        if not s then break end
        local head = raw:sub(pos, s - 1)
        local len = tonumber(head:lower():match("content%-length:%s*(%d+)")) or 0
        out[#out + 1] = { head = head, body = raw:sub(e + 1, e + len) }
        pos = e + 1 + len
    end
    return out
end

-- Every span the collector received, with its attributes as a key -> value table.
local function spans_of(raw)
    local spans = {}
    for _, req in ipairs(posted_bodies(raw)) do
        local doc = cjson.decode(req.body)
        for _, rs in ipairs(doc.resourceSpans) do
            local service
            for _, a in ipairs(rs.resource.attributes) do
                if a.key == "service.name" then service = a.value.stringValue end
            end
            for _, ss in ipairs(rs.scopeSpans) do
                for _, sp in ipairs(ss.spans) do
                    sp.attrs = {}
                    for _, a in ipairs(sp.attributes) do
                        sp.attrs[a.key] = a.value.stringValue or tonumber(a.value.intValue)
                    end
                    sp.service, sp.head = service, req.head
                    spans[#spans + 1] = sp
                end
            end
        end
    end
    return spans
end

local function traceparent_of(r)
    local seen = r:json()
    assert.is_table(seen, r.body)
    local tp = seen.headers.traceparent
    assert.is_string(tp, "the backend got no traceparent: " .. r.body)
    local v, tid, pid, flags = tp:match("^(%x%x)%-(%x+)%-(%x+)%-(%x%x)$")
    assert.are.equal("00", v, tp)
    return { trace_id = tid, parent_id = pid, flags = flags, state = seen.headers.tracestate,
             request_id = seen.headers["x-request-id"], seen = seen }
end

describe("tracing", function()
    local gw, up, collector, dir

    lazy_setup(function()
        up = h.start_upstream()
        collector = h.start_upstream(nil, { raw_log = true })
        dir = h.tmpdir()
        write_policies(dir)
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "pets" } },
            tracing = {
                request_id_header = "x-request-id",
                service_name = "edge",
                otlp = { endpoint = collector.origin .. "/v1/traces", flush_interval_ms = 50,
                         headers = { ["x-api-key"] = "k1" } },
            },
            apis = { pets = {
                stages = { ["$default"] = {
                    access_log = { path = dir .. "/access.log",
                        format = '{"id":"$context.requestId","traceId":"$context.traceId","spanId":"$context.spanId"}' },
                    waf = { rules = { { priority = 1, policy = "policies/waf/ip_set.lua", action = "block",
                                        config = { cidrs = { "203.0.113.0/24" } } } } },
                } },
                authorizers = { allow = { type = "lua", policy = "policies/allow.lua", ttl = 0,
                                          identity_sources = { "$request.header.x-token" } } },
                routes = {
                    ["GET /pets/{id}"] = { authorizer = "allow",
                        integration = { type = "http", uri = up.origin .. "/pets/{id}" } },
                    ["GET /fetch"] = { integration = { type = "lua", handler = "policies/fetch.lua",
                        config = { url = up.origin .. "/seen" } } },
                    ["GET /plain"] = { integration = { type = "http", uri = up.origin .. "/plain" } },
                },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
        if up then up:stop() end
        if collector then collector:stop() end
    end)

    local function get(path, headers)
        local args = { gw:url(path), "-H", "x-token: t" }
        for _, hd in ipairs(headers or {}) do
            args[#args + 1] = "-H"
            args[#args + 1] = hd
        end
        local r = h.curl(args)
        assert.are.equal(200, r.status, r.body)
        return r
    end

    it("continues a valid traceparent: same trace id, the gateway's span as the parent", function()
        local r = get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01" })
        local tp = traceparent_of(r)
        assert.are.equal(TID, tp.trace_id)
        assert.are.equal(16, #tp.parent_id)
        assert.are_not.equal(PID, tp.parent_id)
        assert.are.equal("01", tp.flags)
        assert.is_nil(tp.state)
    end)

    it("passes tracestate on, and several tracestate headers combined", function()
        local tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01",
            "tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" }))
        assert.are.equal("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", tp.state)
        tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01",
            "tracestate: a=1", "tracestate: b@vendor=2" }))
        assert.are.equal("a=1,b@vendor=2", tp.state)
        -- an invalid tracestate (a duplicate key, an upper-case key) is dropped, the trace continues
        tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01",
            "tracestate: a=1,a=2" }))
        assert.are.equal(TID, tp.trace_id)
        assert.is_nil(tp.state)
        tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01",
            "tracestate: Rojo=1" }))
        assert.is_nil(tp.state)
    end)

    it("keeps tracestate to 32 members and 512 characters", function()
        local many = {}
        for i = 1, 33 do many[i] = "k" .. i .. "=v" end
        local tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01",
            "tracestate: " .. table.concat(many, ",") }))
        assert.is_nil(tp.state) -- 33 members: not valid
        local long = {}
        for i = 1, 6 do long[i] = "k" .. i .. "=" .. string.rep("v", 100) end
        long[7] = "big=" .. string.rep("w", 200)
        tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01",
            "tracestate: " .. table.concat(long, ",") }))
        -- the member over 128 characters goes first; the rest (6 x 103 + 5 commas) is still
        -- over 512, so the last ones go too
        assert.is_nil(tp.state:find("big=", 1, true))
        assert.is_true(#tp.state <= 512)
        assert.truthy(tp.state:find("^k1="))
        assert.are.equal(4, #tp.state:gsub("[^,]", "") + 1)
    end)

    it("starts a new trace without a traceparent, or with an invalid one", function()
        local seen = {}
        local cases = {
            none = {},
            upper = { "traceparent: 00-" .. TID:upper() .. "-" .. PID .. "-01" },
            version_ff = { "traceparent: ff-" .. TID .. "-" .. PID .. "-01" },
            zero_trace = { "traceparent: 00-" .. string.rep("0", 32) .. "-" .. PID .. "-01" },
            zero_parent = { "traceparent: 00-" .. TID .. "-" .. string.rep("0", 16) .. "-01" },
            short = { "traceparent: 00-" .. TID:sub(2) .. "-" .. PID .. "-01" },
            v00_longer = { "traceparent: 00-" .. TID .. "-" .. PID .. "-01-extra" },
            no_dash = { "traceparent: 00_" .. TID .. "-" .. PID .. "-01" },
            not_hex = { "traceparent: 00-" .. TID:sub(1, 31) .. "g-" .. PID .. "-01" },
            bad_flags = { "traceparent: 00-" .. TID .. "-" .. PID .. "-0x" },
            future_no_dash = { "traceparent: cc-" .. TID .. "-" .. PID .. "-01x" },
            two = { "traceparent: 00-" .. TID .. "-" .. PID .. "-01", "traceparent: 00-" .. TID .. "-" .. PID .. "-01" },
            with_state = { "traceparent: 00-" .. TID:upper() .. "-" .. PID .. "-01", "tracestate: a=1" },
        }
        for name, hdrs in pairs(cases) do
            local tp = traceparent_of(get("/plain", hdrs))
            assert.are_not.equal(TID, tp.trace_id, name)
            assert.truthy(tp.trace_id:match("^[0-9a-f]+$") and #tp.trace_id == 32, name)
            assert.are_not.equal(string.rep("0", 32), tp.trace_id, name)
            assert.truthy(tp.parent_id:match("^[0-9a-f]+$") and #tp.parent_id == 16, name)
            assert.are.equal("01", tp.flags, name) -- sample_ratio 1
            assert.is_nil(tp.state, name)          -- an invalid traceparent's tracestate goes too
            assert.is_nil(seen[tp.trace_id], name)
            seen[tp.trace_id] = true
        end
    end)

    it("continues a later version's traceparent and ignores what follows", function()
        local tp = traceparent_of(get("/plain",
            { "traceparent: cc-" .. TID .. "-" .. PID .. "-01-what-the-future-will-be-like" }))
        assert.are.equal(TID, tp.trace_id)
        tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-00" }))
        assert.are.equal(TID, tp.trace_id)
        assert.are.equal("00", tp.flags) -- not sampled upstream: not here either
        tp = traceparent_of(get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-ff" }))
        assert.are.equal("01", tp.flags) -- unknown flags are not passed on
    end)

    it("sends the request id in the configured header, replacing the client's", function()
        local r = get("/plain", { "x-request-id: from-client" })
        local tp = traceparent_of(r)
        assert.are.equal(r.headers["apigw-requestid"], tp.request_id)
    end)

    it("sends the trace context with moongate.http calls of policies", function()
        local r = get("/fetch", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01", "tracestate: a=1" })
        local tp = traceparent_of(r)
        assert.are.equal(TID, tp.trace_id)
        assert.are_not.equal(PID, tp.parent_id)
        assert.are.equal("a=1", tp.state)
        assert.are.equal(r.headers["apigw-requestid"], tp.request_id)
    end)

    it("keeps a traceparent the policy set on its moongate.http call", function()
        local own = "00-" .. string.rep("ab", 16) .. "-" .. string.rep("cd", 8) .. "-00"
        local tp = traceparent_of(get("/fetch", { "x-own-traceparent: " .. own }))
        assert.are.equal(string.rep("ab", 16), tp.trace_id)
        assert.are.equal(string.rep("cd", 8), tp.parent_id)
        assert.is_string(tp.request_id) -- the other headers still go
    end)

    it("logs the trace id the backend saw, and exports the spans", function()
        local r = get("/pets/7", { "traceparent: 00-" .. TID .. "-" .. PID .. "-01", "tracestate: a=1",
            "user-agent: trace-e2e" })
        local tp = traceparent_of(r)
        local id = r.headers["apigw-requestid"]
        local entry
        h.wait_for(function()
            entry = h.find_entry(h.json_log(dir .. "/access.log"), "id", id)
            return entry
        end, 5)
        assert.is_table(entry, "no access-log line for " .. id)
        assert.are.equal(TID, entry.traceId)

        local server
        h.wait_for(function()
            for _, sp in ipairs(spans_of(collector.received())) do
                if sp.attrs["moongate.request_id"] == id and sp.kind == 2 then server = sp end
            end
            return server
        end, 5)
        assert.is_table(server, "the collector got no span for " .. id)
        assert.are.equal("edge", server.service)
        assert.truthy(server.head:find("^POST /v1/traces HTTP/1.1"))
        assert.truthy(server.head:lower():find("content-type: application/json", 1, true))
        assert.truthy(server.head:lower():find("x-api-key: k1", 1, true))
        assert.are.equal(TID, server.traceId)
        assert.are.equal(PID, server.parentSpanId)
        assert.are.equal(entry.spanId, server.spanId)
        assert.are.equal("a=1", server.traceState)
        assert.are.equal("GET /pets/{id}", server.name)
        assert.are.equal("GET", server.attrs["http.request.method"])
        assert.are.equal("/pets/7", server.attrs["url.path"])
        assert.are.equal("/pets/{id}", server.attrs["http.route"])
        assert.are.equal(200, server.attrs["http.response.status_code"])
        assert.are.equal("127.0.0.1", server.attrs["server.address"])
        assert.are.equal("127.0.0.1", server.attrs["client.address"])
        assert.are.equal("trace-e2e", server.attrs["user_agent.original"])
        assert.are.equal("pets", server.attrs["moongate.api_id"])
        assert.are.equal("$default", server.attrs["moongate.stage"])
        assert.is_true(tonumber(server.endTimeUnixNano) >= tonumber(server.startTimeUnixNano))
        local now_ns = os.time() * 1e9
        assert.is_true(math.abs(tonumber(server.startTimeUnixNano) - now_ns) < 600 * 1e9)

        local children = {}
        for _, sp in ipairs(spans_of(collector.received())) do
            if sp.parentSpanId == server.spanId then children[sp.name] = sp end
        end
        assert.is_table(children.waf, "no WAF span")
        assert.is_table(children.authorizer, "no authorizer span")
        local integ = children.GET
        assert.is_table(integ, "no integration span")
        assert.are.equal(3, integ.kind) -- CLIENT
        assert.are.equal(tp.parent_id, integ.spanId) -- the parent the backend saw
        assert.are.equal(up.origin .. "/pets/7", integ.attrs["url.full"])
        assert.are.equal(200, integ.attrs["http.response.status_code"])
        for _, c in pairs(children) do
            assert.are.equal(TID, c.traceId)
            assert.is_true(tonumber(c.startTimeUnixNano) >= tonumber(server.startTimeUnixNano))
            assert.is_true(tonumber(c.endTimeUnixNano) <= tonumber(server.endTimeUnixNano))
        end
    end)

    it("exports every sampled request at sample_ratio 1, none whose caller did not sample", function()
        local ids, unsampled = {}, nil
        for i = 1, 10 do ids[i] = get("/plain").headers["apigw-requestid"] end
        unsampled = get("/plain", { "traceparent: 00-" .. TID .. "-" .. PID .. "-00" }).headers["apigw-requestid"]
        local found
        h.wait_for(function()
            found = {}
            for _, sp in ipairs(spans_of(collector.received())) do
                if sp.kind == 2 then found[sp.attrs["moongate.request_id"]] = true end
            end
            for _, id in ipairs(ids) do if not found[id] then return false end end
            return true
        end, 5)
        for _, id in ipairs(ids) do assert.is_true(found[id], id) end
        -- the last export went out after the unsampled request ended
        assert.is_nil(found[unsampled])
    end)
end)

describe("tracing with sample_ratio 0", function()
    it("exports nothing for new traces, and a caller's sampled trace still", function()
        local up = h.start_upstream()
        local collector = h.start_upstream(nil, { raw_log = true })
        local gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
            tracing = { otlp = { endpoint = collector.origin .. "/v1/traces", sample_ratio = 0,
                                 flush_interval_ms = 50 } },
            apis = { a = { stages = { ["$default"] = {} }, routes = { ["GET /x"] = { integration = { type = "http", uri = up.origin .. "/x" } } } } },
        })
        local ok, err = pcall(function()
            for _ = 1, 10 do
                local r = h.curl{ gw:url "/x" }
                assert.are.equal(200, r.status)
                assert.are.equal("00", traceparent_of(r).flags)
            end
            local r = h.curl{ gw:url "/x", "-H", "traceparent: 00-" .. TID .. "-" .. PID .. "-01" }
            local sampled = r.headers["apigw-requestid"]
            local spans
            h.wait_for(function()
                spans = spans_of(collector.received())
                return #spans > 0
            end, 5)
            local servers = {}
            for _, sp in ipairs(spans) do if sp.kind == 2 then servers[#servers + 1] = sp end end
            assert.are.equal(1, #servers)
            assert.are.equal(sampled, servers[1].attrs["moongate.request_id"])
            assert.are.equal("moongate", servers[1].service)
        end)
        h.stop_all(gw)
        up:stop()
        collector:stop()
        assert(ok, err)
    end)
end)

describe("tracing with a collector that", function()
    local function run(endpoint, n)
        local up = h.start_upstream()
        local gw = h.start_gateway({
            workers = 1,
            timeouts = { shutdown = 2 },
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "a" } },
            tracing = { otlp = { endpoint = endpoint, flush_interval_ms = 20, timeout_ms = 300,
                                 batch_size = 2, max_queue = 4 } },
            apis = { a = { stages = { ["$default"] = {} }, routes = { ["GET /x"] = { integration = { type = "http", uri = up.origin .. "/x" } } } } },
        })
        local statuses = {}
        local ok, err = pcall(function()
            for i = 1, n do
                statuses[i] = h.curl{ gw:url "/x" }.status
                if i % 10 == 0 then h.sleep(0.1) end -- let exports start and time out meanwhile
            end
        end)
        h.stop_all(gw) -- exits 0, within its shutdown budget
        up:stop()
        assert(ok, err)
        return statuses, gw.stderr()
    end

    it("accepts connections and never answers: requests are answered normally", function()
        local hung = assert(socket.bind("127.0.0.1", 0, 64))
        local _, port = hung:getsockname()
        local statuses, stderr = run("http://127.0.0.1:" .. port .. "/v1/traces", 60)
        hung:close()
        for i = 1, 60 do assert.are.equal(200, statuses[i], "request " .. i) end
        assert.truthy(stderr:find("span%(s%) dropped"), stderr)
    end)

    it("is down: requests are answered normally", function()
        local statuses, stderr = run("http://127.0.0.1:" .. h.free_port() .. "/v1/traces", 40)
        for i = 1, 40 do assert.are.equal(200, statuses[i], "request " .. i) end
        assert.truthy(stderr:find("span%(s%) dropped: export to http://127.0.0.1:%d+/v1/traces failed"), stderr)
    end)
end)

describe("tracing across reloads", function()
    it("follows the configuration: a new collector, then tracing off", function()
        local up = h.start_upstream()
        local c1 = h.start_upstream(nil, { raw_log = true })
        local c2 = h.start_upstream(nil, { raw_log = true })
        local dir = h.tmpdir()
        local port, mport = h.free_port(), h.free_port()
        local function conf(tracing)
            return {
                workers = 1,
                listen = { { address = "127.0.0.1", port = port, api = "a" } },
                management = { port = mport },
                tracing = tracing,
                apis = { a = { stages = { ["$default"] = {} },
                    routes = { ["GET /x"] = { integration = { type = "http", uri = up.origin .. "/x" } } } } },
            }
        end
        local function reload(tracing)
            h.write_file(dir .. "/gateway.lua", h.config_source(conf(tracing)))
            local out, rc = h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })
            assert.are.equal(0, rc, out)
        end
        local function server_spans(c)
            local out = {}
            for _, sp in ipairs(spans_of(c.received())) do
                if sp.kind == 2 then out[sp.attrs["moongate.request_id"]] = sp end
            end
            return out
        end
        local gw = h.start_gateway(conf({ service_name = "first",
            otlp = { endpoint = c1.origin .. "/v1/traces", flush_interval_ms = 50 } }), { dir = dir })
        local ok, err = pcall(function()
            local first = h.curl{ gw:url "/x" }.headers["apigw-requestid"]
            -- exported before the reload: spans still queued at a reload go to the new
            -- generation's collector (README "Tracing")
            assert.truthy(h.wait_for(function() return server_spans(c1)[first] end, 5))
            reload({ service_name = "second", otlp = { endpoint = c2.origin .. "/v1/traces", flush_interval_ms = 50 } })
            local second = h.curl{ gw:url "/x" }.headers["apigw-requestid"]
            h.wait_for(function() return server_spans(c1)[first] and server_spans(c2)[second] end, 5)
            assert.are.equal("first", server_spans(c1)[first].service)
            assert.are.equal("second", server_spans(c2)[second].service)
            assert.is_nil(server_spans(c1)[second])
            reload(nil)
            -- off: the client's trace context goes to the backend as it came
            local sent = "00-" .. TID .. "-" .. PID .. "-01"
            local r = h.curl{ gw:url "/x", "-H", "traceparent: " .. sent, "-H", "tracestate: A=1" }
            assert.are.equal(sent, r:json().headers.traceparent)
            assert.are.equal("A=1", r:json().headers.tracestate)
        end)
        h.stop_all(gw)
        up:stop()
        c1:stop()
        c2:stop()
        assert(ok, err)
    end)
end)
