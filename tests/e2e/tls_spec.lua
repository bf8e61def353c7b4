-- TLS and mutual TLS (README "TLS and mutual TLS"), with real clients: curl and
-- `openssl s_client` against TLS listeners (versions, ALPN, SNI, unknown names, keep-alive,
-- plain HTTP, garbage and stalled handshakes), mutual TLS per custom domain (valid,
-- missing, unknown CA, expired and revoked client certificates, mode = "request", the
-- client certificate's identity in the access log and in forward_header, 421 for a Host
-- header naming an mTLS domain on another connection, default_endpoint = false),
-- truststore rotation and rollback under a running client loop, https backends
-- (`openssl s_server`) verified against backend_ca and requiring the stage's generated
-- client certificate, and refused handshakes that leave the other TLS connections of
-- their worker alone. The PKI is generated at test time by tls_certs.sh.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

-- The test PKI, generated once for every block of this file.
local pki
local function P(name) return pki .. "/" .. name end

local function make_pki()
    if pki then return end
    local d = h.tmpdir()
    local out, rc = h.run("sh " .. h.sh_quote(h.root .. "/tests/e2e/tls_certs.sh") .. " " .. h.sh_quote(d))
    assert(rc == 0, "tls_certs.sh failed: " .. out .. "\n" .. (h.read_file(d .. "/gen.log") or ""))
    pki = d
end

local function shell(argv)
    local q = {}
    for i, a in ipairs(argv) do q[i] = h.sh_quote(a) end
    return table.concat(q, " ")
end

-- `openssl s_client` to 127.0.0.1:port with `args`, stdin closed (so it ends after the
-- handshake); returns its whole output (stdout and stderr) and exit status.
local function s_client(port, args)
    local argv = { "timeout", "10", "openssl", "s_client", "-connect", "127.0.0.1:" .. port }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return h.run(shell(argv) .. " </dev/null 2>&1")
end

-- `openssl x509 -noout ARGS` of a certificate file, without the trailing newline.
local function x509(file, ...)
    local out, rc = h.run(shell({ "openssl", "x509", "-in", file, "-noout", ... }) .. " 2>&1")
    assert(rc == 0, out)
    return (out:gsub("%s+$", ""))
end

-- The first PEM certificate in a text, with "\n" line ends.
local function first_pem(text)
    return text:gsub("\r\n", "\n"):match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-")
end

local function url_decode(s)
    return (s:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

local function count(text, needle)
    local n, i = 0, 1
    while true do
        local s, e = text:find(needle, i, true)
        if not s then return n end
        n, i = n + 1, e + 1
    end
end

-- curl to https://HOST:PORT/PATH with HOST resolved to 127.0.0.1 and the test root
-- trusted; `extra` are more curl arguments.
local function tls_curl(port, host, path, extra)
    local args = { "https://" .. host .. ":" .. port .. path, "--cacert", P("root.pem"),
        "--resolve", host .. ":" .. port .. ":127.0.0.1" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    return h.curl(args)
end

-- curl arguments presenting client certificate NAME (its chain file and key).
local function cert_args(name, chain)
    return { "--cert", P(name .. (chain == false and ".pem" or ".chain.pem")), "--key", P(name .. ".key") }
end

local function mock(body)
    return { integration = { type = "mock", body = body } }
end

local LOG_FORMAT = '{"id":"$context.requestId","status":"$context.status","path":"$context.path",'
    .. '"subject":"$context.identity.clientCert.subjectDN",'
    .. '"issuer":"$context.identity.clientCert.issuerDN",'
    .. '"serial":"$context.identity.clientCert.serialNumber",'
    .. '"notBefore":"$context.identity.clientCert.validity.notBefore",'
    .. '"notAfter":"$context.identity.clientCert.validity.notAfter",'
    .. '"pem":"$context.identity.clientCert.clientCertPem",'
    .. '"error":"$context.integrationErrorMessage"}'

-- The access-log entry of the response `r` (by its apigw-requestid), waiting for the
-- log writer's flush.
local function log_entry(path, r)
    local id = assert(r.headers["apigw-requestid"], "no apigw-requestid")
    local e = h.wait_for(function() return h.find_entry(h.json_log(path), "id", id) end, 5)
    assert(e, "no access-log line for request " .. id .. " in:\n" .. (h.read_file(path) or ""))
    return e
end

describe("TLS listeners and mutual TLS", function()
    local gw, up, dir, log_path
    local tls_port, reject_port, plain_port, mplain_port, bare_port

    lazy_setup(function()
        make_pki()
        up = h.start_upstream()
        dir = h.tmpdir()
        log_path = dir .. "/m.log"
        tls_port, reject_port, plain_port, mplain_port, bare_port =
            h.free_port(), h.free_port(), h.free_port(), h.free_port(), h.free_port()
        local function tls(extra)
            local t = { certificate = P("localhost.pem"), key = P("localhost.key") }
            for k, v in pairs(extra or {}) do t[k] = v end
            return t
        end
        gw = h.start_gateway({
            workers = 2,
            timeouts = { header = 2 },
            listen = {
                { address = "127.0.0.1", port = tls_port, api = "a", tls = tls() },
                { address = "127.0.0.1", port = reject_port, api = "a", tls = tls({ unknown_sni = "reject" }) },
                { address = "127.0.0.1", port = plain_port, api = "a" },
                { address = "127.0.0.1", port = mplain_port, api = "m" },
                { address = "127.0.0.1", port = bare_port },
            },
            domains = {
                ["api.test"] = {
                    certificate = P("api.pem"), key = P("api.key"),
                    mappings = { [""] = "m" },
                    mtls = { truststore = P("trust.pem"), crl = P("inter.crl.pem"), forward_header = "x-client-cert" },
                },
                ["req.test"] = {
                    certificate = P("req.test.pem"), key = P("req.test.key"),
                    mappings = { [""] = "m" },
                    mtls = { truststore = P("trust.pem"), mode = "request" },
                },
                ["other.test"] = {
                    certificate = P("other.pem"), key = P("other.key"),
                    mappings = { [""] = "a" },
                },
            },
            apis = {
                a = {
                    stages = { ["$default"] = {} },
                    routes = { ["GET /hello"] = mock("hello") },
                },
                m = {
                    default_endpoint = false,
                    stages = { ["$default"] = { access_log = { path = log_path, format = LOG_FORMAT } } },
                    routes = {
                        ["GET /hello"] = mock("mtls hello"),
                        ["GET /echo"] = { integration = { type = "http", uri = up.origin .. "/echo" } },
                    },
                },
            },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw, up)
    end)

    -- Error-log lines about TLS connections from the test's clients.
    local function tls_log_lines()
        return count(gw.stderr(), "TLS from 127.0.0.1: ")
    end

    -- Waits until the error log has more TLS lines than `before`, and returns how many more.
    local function new_tls_log_lines(before)
        h.wait_for(function() return tls_log_lines() > before end, 5)
        return tls_log_lines() - before
    end

    describe("a TLS listener", function()
        it("serves https with its certificate, and keeps the connection alive", function()
            local r = tls_curl(tls_port, "localhost", "/hello")
            assert.are.equal(0, r.rc, r.stderr)
            assert.are.equal(200, r.status)
            assert.are.equal("hello", r.body)

            local url = "https://localhost:" .. tls_port .. "/hello"
            local out, err, rc = h.curl_raw({ "-v", "--cacert", P("root.pem"), url, url })
            assert.are.equal(0, rc, err)
            assert.are.equal("hellohello", out)
            assert.matches("Re%-using existing connection", err)
            assert.are.equal(1, count(err, "SSL connection using"), err)
        end)

        it("speaks TLS 1.3 and 1.2 with ALPN http/1.1, and refuses TLS 1.1", function()
            for _, v in ipairs({ "1_3", "1_2" }) do
                local out, rc = s_client(tls_port, { "-tls" .. v, "-CAfile", P("root.pem"), "-alpn", "http/1.1" })
                assert.are.equal(0, rc, out)
                assert.matches("New, TLSv" .. v:gsub("_", ".") .. ", Cipher is ", out, 1, true)
                assert.matches("ALPN protocol: http/1.1", out, 1, true)
                assert.matches("Verify return code: 0 (ok)", out, 1, true)
            end
            -- The client allows TLS 1.1 (security level 0), so the refusal is the server's.
            local out, rc = s_client(tls_port, { "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", P("root.pem") })
            assert.are_not.equal(0, rc, out)
            assert.matches("alert protocol version", out, 1, true)
            assert.matches("Cipher is (NONE)", out, 1, true)
        end)

        it("picks the domain's certificate by SNI, and the listener's for other names", function()
            local out = s_client(tls_port, { "-servername", "api.test", "-showcerts", "-CAfile", P("root.pem") })
            assert.matches("\n 0 s:CN = api.test\n", out, 1, true)
            assert.matches("\nsubject=CN = api.test\n", out, 1, true)
            assert.matches("Verify return code: 0 (ok)", out, 1, true)

            out = s_client(tls_port, { "-servername", "unknown.test", "-showcerts", "-CAfile", P("root.pem") })
            assert.matches("\n 0 s:CN = localhost\n", out, 1, true)
            assert.matches("\nsubject=CN = localhost\n", out, 1, true)

            -- curl checks the name against the certificate the SNI picked
            local r = tls_curl(tls_port, "other.test", "/hello")
            assert.are.equal(0, r.rc, r.stderr)
            assert.are.equal(200, r.status)
            assert.are.equal("hello", r.body)
        end)

        it("with unknown_sni = \"reject\" fails the handshake for an unknown name", function()
            local out, rc = s_client(reject_port, { "-servername", "unknown.test", "-CAfile", P("root.pem") })
            assert.are_not.equal(0, rc, out)
            assert.does_not.match("subject=", out, 1, true)
            local r = tls_curl(reject_port, "unknown.test", "/hello", { "-k" })
            assert.are_not.equal(0, r.rc)
            assert.is_nil(r.status)

            -- a configured name still gets through on the same listener
            r = tls_curl(reject_port, "other.test", "/hello")
            assert.are.equal(0, r.rc, r.stderr)
            assert.are.equal(200, r.status)
            assert.are.equal("hello", r.body)
        end)

        it("answers plain HTTP with 400 \"The plain HTTP request was sent to HTTPS port\" and logs one line", function()
            local before = count(gw.stderr(), "plain HTTP request sent to a TLS port")
            local r = h.curl({ "http://127.0.0.1:" .. tls_port .. "/hello" })
            assert.are.equal(400, r.status)
            assert.are.equal('{"message":"The plain HTTP request was sent to HTTPS port"}', r.body)
            assert.are.equal("BadRequestException", r.headers["x-amzn-errortype"])
            assert.matches("^application/json", r.headers["content-type"] or "")
            h.wait_for(function() return count(gw.stderr(), "plain HTTP request sent to a TLS port") > before end, 5)
            assert.are.equal(before + 1, count(gw.stderr(), "plain HTTP request sent to a TLS port"))
            -- the port keeps serving TLS
            assert.are.equal(200, tls_curl(tls_port, "localhost", "/hello").status)
        end)

        it("gives the plain-HTTP 400 an apigw-requestid, as every response has", function()
            local r = h.curl({ "http://127.0.0.1:" .. tls_port .. "/hello" })
            h.assert_gateway_response(r, 400, "The plain HTTP request was sent to HTTPS port", "BadRequestException")
        end)

        it("closes a connection that sends garbage, logs one line, and keeps serving", function()
            local before = tls_log_lines()
            local _, how = h.raw_exchange(tls_port, "\0\1\2\3\255\254garbage, not TLS\r\n\r\n" .. string.rep("\7", 300))
            assert.are.equal("closed", how)
            local r = tls_curl(tls_port, "localhost", "/hello")
            assert.are.equal(200, r.status)
            assert.are.equal(1, new_tls_log_lines(before), gw.stderr())
        end)

        it("closes a stalled half handshake after timeouts.header, logs one line, and keeps serving", function()
            local before = count(gw.stderr(), "handshake timed out")
            local c = h.connect(tls_port)
            -- a TLS record header announcing a 512-byte ClientHello, and its first bytes only
            assert(c:send("\22\3\1\2\0\1\0\1\252\3\3"))
            local r = tls_curl(tls_port, "localhost", "/hello")
            assert.are.equal(200, r.status)
            assert.are.equal("hello", r.body)
            assert.is_true(c:closed_by_peer(15))
            c:close()
            h.wait_for(function() return count(gw.stderr(), "handshake timed out") > before end, 5)
            assert.are.equal(before + 1, count(gw.stderr(), "handshake timed out"), gw.stderr())
            assert.are.equal(200, tls_curl(tls_port, "localhost", "/hello").status)
        end)

        it("reports a certificate that expires within 30 days in the error log", function()
            assert.matches('certificate "' .. P("other.pem"):gsub("%p", "%%%0") .. '" expires in %d+ day', gw.stderr())
            assert.does_not.match('certificate "' .. P("api.pem"):gsub("%p", "%%%0") .. '" expires', gw.stderr())
        end)
    end)

    describe("mutual TLS", function()
        it("lets a client certificate of the truststore's CA through, and logs its identity", function()
            local r = tls_curl(tls_port, "api.test", "/hello", cert_args("client"))
            assert.are.equal(0, r.rc, r.stderr)
            assert.are.equal(200, r.status)
            assert.are.equal("mtls hello", r.body)

            local e = log_entry(log_path, r)
            assert.are.equal("200", e.status)
            assert.are.equal(x509(P("client.pem"), "-subject", "-nameopt", "RFC2253"), "subject=" .. e.subject)
            assert.are.equal("CN=client,O=Moongate Test", e.subject)
            assert.are.equal(x509(P("client.pem"), "-issuer", "-nameopt", "RFC2253"), "issuer=" .. e.issuer)
            assert.are.equal("a1:b2:c3", e.serial)
            local dates = x509(P("client.pem"), "-dates")
            assert.are.equal(dates, "notBefore=" .. e.notBefore .. "\nnotAfter=" .. e.notAfter)
            assert.matches("^%u%l%l [ %d]%d %d%d:%d%d:%d%d %d%d%d%d GMT$", e.notAfter)
            assert.are.equal(first_pem(h.read_file(P("client.pem"))), first_pem(e.pem))
        end)

        it("sends the client certificate URL-encoded in forward_header", function()
            local r = tls_curl(tls_port, "api.test", "/echo", cert_args("client"))
            assert.are.equal(200, r.status, r.stderr)
            local sent = r:echo().headers["x-client-cert"]
            assert.is_string(sent)
            assert.matches("^[%w%-%._~%%]+$", sent) -- encoded: no space, newline, '/', '+' or '='
            assert.are.equal(first_pem(h.read_file(P("client.pem"))), first_pem(url_decode(sent)))
        end)

        it("replaces a forward_header the client sent with the certificate it presented", function()
            local args = cert_args("client")
            args[#args + 1] = "-H"
            args[#args + 1] = "x-client-cert: forged"
            local r = tls_curl(tls_port, "api.test", "/echo", args)
            assert.are.equal(200, r.status, r.stderr)
            local sent = r:echo().headers["x-client-cert"]
            assert.is_string(sent)
            assert.are.equal(first_pem(h.read_file(P("client.pem"))), (url_decode(sent):gsub("\n$", "")))
        end)

        it("fails the handshake of a client without a certificate", function()
            local before = tls_log_lines()
            local r = tls_curl(tls_port, "api.test", "/hello")
            assert.are_not.equal(0, r.rc)
            assert.is_nil(r.status)
            assert.are.equal(1, new_tls_log_lines(before), gw.stderr())
        end)

        local refused = {
            { "a certificate from an unknown CA", "rogue", "Could not find issuer for certificate (/O=Moongate Test/CN=rogue)" },
            { "an expired certificate", "expired", "Certificate has expired (/O=Moongate Test/CN=expired)" },
            { "a certificate revoked by the CRL", "revoked", "Certificate has been revoked (/O=Moongate Test/CN=revoked)" },
        }
        for _, case in ipairs(refused) do
            local what, name, reason = case[1], case[2], case[3]
            it("fails the handshake of " .. what .. ": " .. reason:match("^[^(]+"), function()
                local before = tls_log_lines()
                local r = tls_curl(tls_port, "api.test", "/hello", cert_args(name, name ~= "rogue"))
                assert.are_not.equal(0, r.rc)
                assert.is_nil(r.status)
                assert.are.equal(1, new_tls_log_lines(before), gw.stderr())
                assert.matches("TLS from 127.0.0.1: Access denied. Reason: " .. reason, gw.stderr(), 1, true)
            end)
        end

        it("with mode = \"request\" lets a client without a certificate through", function()
            local r = tls_curl(tls_port, "req.test", "/hello")
            assert.are.equal(0, r.rc, r.stderr)
            assert.are.equal(200, r.status)
            assert.are.equal("mtls hello", r.body)
            assert.are.equal("-", log_entry(log_path, r).subject)

            r = tls_curl(tls_port, "req.test", "/hello", cert_args("client"))
            assert.are.equal(200, r.status)
            assert.are.equal("CN=client,O=Moongate Test", log_entry(log_path, r).subject)
        end)

        it("answers 421 to a Host header naming the mTLS domain on another connection", function()
            local cases = {
                tls_curl(tls_port, "localhost", "/hello", { "-H", "Host: api.test" }),
                tls_curl(tls_port, "req.test", "/hello", { "-H", "Host: api.test" }),
                h.curl({ "http://127.0.0.1:" .. plain_port .. "/hello", "-H", "Host: api.test" }),
            }
            for i, r in ipairs(cases) do
                assert.are.equal(421, r.status, "case " .. i)
                assert.are.equal('{"message":"Misdirected Request"}', r.body)
                assert.are.equal("MisdirectedRequestException", r.headers["x-amzn-errortype"])
                assert.matches("^application/json", r.headers["content-type"] or "")
            end
        end)

        it("names 421 Misdirected Request in the status line", function()
            local r = h.curl({ "http://127.0.0.1:" .. plain_port .. "/hello", "-H", "Host: api.test" })
            assert.are.equal(421, r.status)
            assert.are.equal("Misdirected Request", r.blocks[#r.blocks].reason)
        end)

        it("with default_endpoint = false serves the API only through its domain", function()
            -- neither the listener naming it nor a Host header naming it reaches it ...
            h.assert_not_found(h.curl({ "http://127.0.0.1:" .. mplain_port .. "/hello" }))
            local plain = "http://127.0.0.1:" .. bare_port .. "/hello"
            h.assert_not_found(h.curl({ plain, "-H", "Host: m.localhost" }))
            -- ... while a Host header reaches an API that keeps its default endpoint
            local r = h.curl({ plain, "-H", "Host: a.localhost" })
            assert.are.equal(200, r.status)
            assert.are.equal("hello", r.body)

            r = tls_curl(tls_port, "api.test", "/hello", cert_args("client"))
            assert.are.equal(200, r.status)
            assert.are.equal("mtls hello", r.body)
        end)
    end)
end)

describe("truststore rotation", function()
    local gw, dir, port, loop, results, stop_file

    lazy_setup(function()
        make_pki()
        dir = h.tmpdir()
        port = h.free_port()
        h.write_file(dir .. "/ts.pem", h.read_file(P("trust.pem")))
        gw = h.start_gateway({
            workers = 2,
            management = { address = "127.0.0.1", port = h.free_port() },
            listen = { { address = "127.0.0.1", port = port,
                tls = { certificate = P("localhost.pem"), key = P("localhost.key") } } },
            domains = {
                ["api.test"] = {
                    certificate = P("api.pem"), key = P("api.key"),
                    mappings = { [""] = "a" },
                    mtls = { truststore = "ts.pem" },
                },
            },
            apis = { a = {
                default_endpoint = false,
                stages = { ["$default"] = {} },
                routes = { ["GET /hello"] = mock("hello") },
            } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        if loop then
            h.write_file(stop_file, "")
            loop:stop(5)
        end
        h.stop_all(gw)
    end)

    local function moongate(...)
        local args = { ... }
        for _, a in ipairs({ "-c", gw.config_path, "-p", dir }) do args[#args + 1] = a end
        return h.moongate(args)
    end

    local function status_of(name)
        local r = tls_curl(port, "api.test", "/hello", cert_args(name))
        return r.status or ("curl exit " .. r.rc)
    end

    -- The lines the client loop wrote: one per request ("200"), or how curl failed.
    local function loop_lines()
        return h.log_lines(results)
    end

    -- Waits until the client loop has made `n` more requests than it had made so far.
    local function loop_advances(n)
        local start = #loop_lines()
        assert(h.wait_for(function() return #loop_lines() >= start + n end, 15),
            "the client loop stopped: " .. loop.stderr())
    end

    it("adds a CA on reload and rolls it back, without a failed request", function()
        -- a client of CA A in a loop for the whole sequence: two requests per connection
        results, stop_file = dir .. "/loop.out", dir .. "/loop.stop"
        local url = "https://api.test:" .. port .. "/hello"
        local curl = shell({ "curl", "-s", "--max-time", "10", "-o", "/dev/null", "-o", "/dev/null",
            "-w", "%{http_code}\\n", "--cacert", P("root.pem"), "--resolve", "api.test:" .. port .. ":127.0.0.1",
            "--cert", P("client.chain.pem"), "--key", P("client.key"), url, url })
        loop = h.spawn({ "sh", "-c", string.format(
            'while [ ! -e %s ]; do %s >>%s; rc=$?; [ $rc -eq 0 ] || echo "curl exit $rc" >>%s; done',
            h.sh_quote(stop_file), curl, h.sh_quote(results), h.sh_quote(results)) }, dir, "loop")
        loop_advances(4)

        -- CA B's client is refused until CA B is in the truststore
        assert.matches("^curl exit %d+$", status_of("rogue"))
        assert.are.equal(200, status_of("client"))

        h.write_file(dir .. "/ts.pem", h.read_file(P("trust_ab.pem")))
        local out, rc = moongate("reload")
        assert.are.equal(0, rc, out)
        assert.matches("gateway.lua: reloaded %(generation 2%)", out)
        assert.are.equal(200, status_of("rogue"))
        assert.are.equal(200, status_of("client"))
        loop_advances(4)

        out, rc = moongate("truststore", "rollback", "api.test")
        assert.are.equal(0, rc, out)
        assert.matches("api.test: truststore rolled back to version 1", out, 1, true)
        assert.matches("^curl exit %d+$", status_of("rogue"))
        assert.are.equal(200, status_of("client"))
        loop_advances(4)

        out, rc = moongate("truststore", "unpin", "api.test")
        assert.are.equal(0, rc, out)
        assert.are.equal(200, status_of("rogue"))
        loop_advances(4)

        h.write_file(stop_file, "")
        assert.is_not_nil(loop:wait(15), "the client loop did not stop")
        loop = nil
        local lines = loop_lines()
        local failed = {}
        for _, l in ipairs(lines) do
            if l ~= "200" then failed[#failed + 1] = l end
        end
        assert.are.same({}, failed)
        assert.is_true(#lines >= 16)

        local versions = dir .. "/state/truststores/api.test/"
        assert.are.equal(h.read_file(P("trust.pem")), h.read_file(versions .. "v1.pem"))
        assert.are.equal(h.read_file(P("trust_ab.pem")), h.read_file(versions .. "v2.pem"))
        assert.is_nil(h.read_file(versions .. "v3.pem"))
    end)

    -- Issue item 8: switching the file A -> B -> A -> B recorded v3 ... v6.
    it("records each distinct content once, and rolls back through what was served", function()
        -- the file holds B (trust_ab, version 2) after the test above
        for _, name in ipairs({ "trust.pem", "trust_ab.pem", "trust.pem", "trust_ab.pem" }) do
            h.write_file(dir .. "/ts.pem", h.read_file(P(name)))
            local out, rc = moongate("reload")
            assert.are.equal(0, rc, out)
            if name == "trust.pem" then -- CA A only: CA B's client is refused
                assert.matches("^curl exit %d+$", status_of("rogue"))
            else
                assert.are.equal(200, status_of("rogue"))
            end
        end
        local versions = dir .. "/state/truststores/api.test/"
        assert.are.equal(h.read_file(P("trust.pem")), h.read_file(versions .. "v1.pem"))
        assert.are.equal(h.read_file(P("trust_ab.pem")), h.read_file(versions .. "v2.pem"))
        assert.is_nil(h.read_file(versions .. "v3.pem"))

        -- Each rollback goes one step back in what the file served: A, then B before it.
        local out, rc = moongate("truststore", "rollback", "api.test")
        assert.are.equal(0, rc, out)
        assert.matches("api.test: truststore rolled back to version 1", out, 1, true)
        assert.matches("^curl exit %d+$", status_of("rogue"))
        out, rc = moongate("truststore", "rollback", "api.test")
        assert.are.equal(0, rc, out)
        assert.matches("api.test: truststore rolled back to version 2", out, 1, true)
        assert.are.equal(200, status_of("rogue"))
        out, rc = moongate("truststore", "unpin", "api.test")
        assert.are.equal(0, rc, out)
        assert.is_nil(h.read_file(versions .. "v3.pem"))
    end)
end)

describe("https backends", function()
    local www, strict, gw, gw_system, dir, sys_dir
    local client_pem

    -- `openssl s_server -www` with the localhost certificate on `port`.
    local function s_server(name, port, args)
        local argv = { "openssl", "s_server", "-www", "-accept", tostring(port),
            "-cert", P("localhost.pem"), "-key", P("localhost.key") }
        for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
        local p = h.spawn(argv, dir, name)
        p.port = port
        h.wait_for(function() return p.exited() or h.port_open(port) end, 10)
        assert(not p.exited() and h.port_open(port), "s_server did not start: " .. p.stderr())
        return p
    end

    lazy_setup(function()
        make_pki()
        dir, sys_dir = h.tmpdir(), h.tmpdir()
        local www_port, strict_port = h.free_port(), h.free_port()
        local routes = {
            ["GET /www"] = { integration = { type = "http", uri = "https://localhost:" .. www_port .. "/" } },
            ["GET /strict"] = { integration = { type = "http", uri = "https://localhost:" .. strict_port .. "/" } },
        }
        local conf = {
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "b" } },
            backend_ca = P("root.pem"),
            apis = { b = {
                stages = {
                    ["$default"] = { access_log = { path = dir .. "/b.log", format = LOG_FORMAT } },
                    mt = { client_certificate = { generate = true } },
                },
                routes = routes,
            } },
        }
        -- The stage's generated certificate, printed before the gateway starts so that
        -- the strict backend can require it.
        h.write_file(dir .. "/gateway.lua", h.config_source(conf))
        local out, rc = h.run(shell({ h.bin, "client-cert", "show", "b", "mt", "-c", dir .. "/gateway.lua", "-p", dir })
            .. " 2>" .. h.sh_quote(dir .. "/show.err"))
        assert(rc == 0, "client-cert show: " .. out .. (h.read_file(dir .. "/show.err") or ""))
        client_pem = assert(first_pem(out), "client-cert show printed no certificate: " .. out)
        h.write_file(dir .. "/stage-cert.pem", out)

        www = s_server("www", www_port)
        strict = s_server("strict", strict_port, { "-Verify", "1", "-CAfile", dir .. "/stage-cert.pem" })
        gw = h.start_gateway(conf, { dir = dir })
        -- the same backends, verified against the system store
        gw_system = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = h.free_port(), api = "n" } },
            apis = { n = {
                stages = { ["$default"] = { access_log = { path = sys_dir .. "/n.log", format = LOG_FORMAT } } },
                routes = routes,
            } },
        }, { dir = sys_dir })
    end)

    lazy_teardown(function()
        if www then www:stop(5) end
        if strict then strict:stop(5) end
        local ok, err = pcall(h.stop_all, gw_system)
        h.stop_all(gw)
        assert(ok, err)
    end)

    it("verifies the backend against backend_ca", function()
        local r = h.curl({ gw:url("/www") })
        assert.are.equal(200, r.status, r.body)
        assert.matches("s_server -www", r.body, 1, true)
    end)

    it("fails with 502 against the system store, and says why in integrationErrorMessage", function()
        local r = h.curl({ gw_system:url("/www") })
        h.assert_gateway_response(r, 502, "Bad Gateway", "BadGatewayException")
        local e = log_entry(sys_dir .. "/n.log", r)
        assert.matches("^TLS with localhost:" .. www.port .. ": ", e.error)
        assert.matches("TLS handshake failed: unable to get local issuer certificate", e.error, 1, true)
    end)

    it("presents the stage's generated client certificate to a backend that requires it", function()
        local r = h.curl({ gw:url("/mt/strict") })
        assert.are.equal(200, r.status, r.body)
        -- s_server -www shows the client certificate it received
        assert.are.equal(client_pem, first_pem(r.body:match("Client certificate(.*)$") or ""))
    end)

    it("fails with 502 on a stage without a client certificate", function()
        local r = h.curl({ gw:url("/strict") })
        h.assert_gateway_response(r, 502, "Bad Gateway", "BadGatewayException")
        local e = log_entry(dir .. "/b.log", r)
        assert.matches("^TLS with localhost:" .. strict.port .. ": TLS handshake failed", e.error)
    end)
end)

-- OpenSSL keeps its errors in a queue per thread, shared by every connection of a worker:
-- a refused handshake must not fail the next TLS call of another connection on the same
-- worker, be it an established client connection or a connection to an https backend
-- halfway through its handshake. Each refusal comes between two steps of the other
-- connection, so the order is fixed, not left to load.
describe("a refused handshake on one worker", function()
    local socket = require "socket"
    local gw, up, www, dir, tls_port, plain_port, relay
    local ka -- a keep-alive `openssl s_client` driven through a FIFO
    local ka_in

    lazy_setup(function()
        make_pki()
        dir = h.tmpdir()
        up = h.start_upstream()
        tls_port, plain_port = h.free_port(), h.free_port()
        local www_port = h.free_port()
        www = h.spawn({ "openssl", "s_server", "-www", "-tls1_2", "-accept", tostring(www_port),
            "-cert", P("localhost.pem"), "-key", P("localhost.key") }, dir, "www")
        www.port = www_port
        h.wait_for(function() return www.exited() or h.port_open(www_port) end, 10)
        assert(not www.exited() and h.port_open(www_port), "s_server did not start: " .. www.stderr())
        -- the https backend the gateway sees: this process, relaying to s_server
        relay = assert(socket.bind("127.0.0.1", 0))
        relay:settimeout(10)
        local _, relay_port = relay:getsockname()
        gw = h.start_gateway({
            workers = 1, -- every connection on the same thread, and its error queue
            backend_ca = P("root.pem"),
            listen = {
                { address = "127.0.0.1", port = tls_port, api = "a",
                    tls = { certificate = P("localhost.pem"), key = P("localhost.key") } },
                { address = "127.0.0.1", port = plain_port, api = "a" },
            },
            domains = {
                ["api.test"] = {
                    certificate = P("api.pem"), key = P("api.key"),
                    mappings = { [""] = "m" },
                    mtls = { truststore = P("trust.pem") },
                },
            },
            apis = {
                a = {
                    stages = { ["$default"] = {} },
                    routes = {
                        ["GET /echo"] = { integration = { type = "http", uri = up.origin .. "/echo" } },
                        ["GET /relayed"] = { integration = { type = "http", uri = "https://localhost:" .. relay_port .. "/" } },
                    },
                },
                m = {
                    default_endpoint = false,
                    stages = { ["$default"] = {} },
                    routes = { ["GET /hello"] = mock("mtls hello") },
                },
            },
        }, { dir = dir })

        -- The FIFO is opened read-write, so that opening it does not wait for s_client
        -- and s_client never sees the end of its input.
        local fifo = dir .. "/ka.in"
        assert(h.run("mkfifo " .. h.sh_quote(fifo)) == "")
        ka_in = assert(io.open(fifo, "r+"))
        ka = h.spawn({ "sh", "-c", "exec " .. shell({ "openssl", "s_client", "-quiet",
            "-connect", "127.0.0.1:" .. tls_port, "-servername", "localhost",
            "-CAfile", P("root.pem") }) .. " <" .. h.sh_quote(fifo) }, dir, "ka")
    end)

    lazy_teardown(function()
        if ka then ka:stop(5) end
        if ka_in then ka_in:close() end
        if www then www:stop(5) end
        if relay then relay:close() end
        h.stop_all(gw, up)
    end)

    local refusals = {
        { "a client certificate from an unknown CA", function()
            local r = tls_curl(tls_port, "api.test", "/hello", cert_args("rogue", false))
            assert.is_nil(r.status)
        end },
        { "plain HTTP", function()
            assert.are.equal(400, h.curl({ "http://127.0.0.1:" .. tls_port .. "/hello" }).status)
        end },
        { "an SSH banner", function()
            assert.are.equal("closed", select(2, h.raw_exchange(tls_port, "SSH-2.0-OpenSSH_9.6\r\n")))
        end },
        { "binary garbage", function()
            assert.are.equal("closed", select(2, h.raw_exchange(tls_port, "\0\1\2\3\255\254garbage\r\n\r\n")))
        end },
    }

    local sent = 0

    -- Sends one more request on the established connection; returns how many answers the
    -- connection has got once this one's came (or the wait gave up).
    local function ka_request()
        sent = sent + 1
        ka_in:write("GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
        ka_in:flush()
        local function answers() return count(ka.stdout(), "HTTP/1.1 200 OK") end
        h.wait_for(function() return answers() >= sent end, 10)
        return answers()
    end

    it("leaves an established keep-alive TLS connection alone", function()
        assert.are.equal(1, ka_request(), ka.stderr())
        for _, case in ipairs(refusals) do
            case[2]()
            local answers = ka_request()
            assert.are.equal(sent, answers, "after " .. case[1] .. ":\n" .. gw.stderr())
        end
        assert.is_nil(ka.exited())
    end)

    -- Takes the gateway's connection to the relay and relays it to s_server (TLS 1.2, whose
    -- record types show where the handshake ends): once the gateway sends its request, its
    -- handshake is over and it waits for the response; `between` runs then, and the relay
    -- goes on until a side closes.
    local function relay_once(between)
        local g = assert(relay:accept())
        local s = assert(socket.connect("127.0.0.1", www.port))
        g:settimeout(10)
        s:settimeout(0)
        local request
        while not request do
            local ready = socket.select({ g, s }, nil, 10)
            assert(#ready > 0, "the TLS handshake through the relay stalled")
            for _, x in ipairs(ready) do
                if x == g then -- one whole record of the gateway's
                    local head = assert(g:receive(5))
                    local record = head .. assert(g:receive(head:byte(4) * 256 + head:byte(5)))
                    if head:byte(1) == 23 then request = record else assert(s:send(record)) end
                else
                    local data, err, partial = s:receive(65536)
                    data = data or partial
                    if data and #data > 0 then assert(g:send(data)) end
                    assert(err ~= "closed", "s_server closed the connection during the handshake")
                end
            end
        end
        between()
        assert(s:send(request))
        g:settimeout(0)
        local peer = { [g] = s, [s] = g }
        local closed = false
        while not closed do
            local ready = socket.select({ g, s }, nil, 10)
            if #ready == 0 then break end
            for _, x in ipairs(ready) do
                local data, err, partial = x:receive(65536)
                data = data or partial
                if data and #data > 0 then peer[x]:send(data) end
                if err == "closed" then closed = true end
            end
        end
        g:close()
        s:close()
    end

    it("leaves an established https backend connection alone", function()
        for _, case in ipairs(refusals) do
            local c = h.curl_background({ "http://127.0.0.1:" .. plain_port .. "/relayed" })
            relay_once(case[2])
            local r = c:result()
            assert.are.equal(0, r.rc, "after " .. case[1] .. ": " .. r.stderr .. "\n" .. gw.stderr())
            assert.are.equal(200, r.status, "after " .. case[1] .. ": " .. r.body .. "\n" .. gw.stderr())
            assert.matches("s_server -www", r.body, 1, true)
        end
    end)
end)

-- The Lua revocation hook (mtls.revocation): asked once per handshake about a verified
-- client certificate, with the stock policy policies/authorizers/revocation.lua; a
-- policy that fails refuses the certificate (fail closed) and says why in the error log.
describe("mTLS revocation hook", function()
    local gw, dir, port

    lazy_setup(function()
        make_pki()
        dir = h.tmpdir()
        port = h.free_port()
        local broken = dir .. "/broken_check.lua"
        local f = assert(io.open(broken, "w"))
        f:write("local M = {}\nfunction M.check(cert, conf)\n  error(\"lookup service down\")\nend\nreturn M\n")
        f:close()
        gw = h.start_gateway({
            workers = 1,
            listen = { { address = "127.0.0.1", port = port, api = "a",
                tls = { certificate = P("localhost.pem"), key = P("localhost.key") } } },
            domains = {
                ["api.test"] = {
                    certificate = P("api.pem"), key = P("api.key"), mappings = { [""] = "a" },
                    mtls = { truststore = P("trust.pem"), revocation = {
                        policy = h.root .. "/policies/authorizers/revocation.lua",
                        config = { serials = { "A1:B2:C3" } } } },
                },
                ["other.test"] = {
                    certificate = P("other.pem"), key = P("other.key"), mappings = { [""] = "a" },
                    mtls = { truststore = P("trust.pem"), revocation = { policy = broken, ttl = 0 } },
                },
            },
            apis = { a = { stages = { ["$default"] = {} }, routes = { ["GET /hello"] = mock("hello") } } },
        }, { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("refuses a certificate the policy denies, with its reason in the error log", function()
        local r = tls_curl(port, "api.test", "/hello", cert_args("client"))
        assert.are_not.equal(0, r.rc)
        assert.is_nil(r.status)
        -- the gateway logs the refusal after it sent the alert that ended curl
        local why = "Access denied. Reason: Certificate has been revoked (serial a1:b2:c3 is revoked)"
        h.wait_for(function() return gw.stderr():find(why, 1, true) end, 5)
        assert.matches(why, gw.stderr(), 1, true)
    end)

    it("lets a certificate the policy allows through, again from its cached verdict", function()
        for _ = 1, 2 do
            local r = tls_curl(port, "api.test", "/hello", cert_args("revoked"))
            assert.are.equal(200, r.status)
            assert.are.equal("hello", r.body)
        end
    end)

    it("fails closed when the policy fails, naming the policy's error", function()
        local r = tls_curl(port, "other.test", "/hello", cert_args("revoked"))
        assert.are_not.equal(0, r.rc)
        assert.is_nil(r.status)
        h.wait_for(function() return gw.stderr():find("lookup service down", 1, true) end, 5)
        local log = gw.stderr()
        assert.matches('other.test: mtls.revocation: domains["other.test"].mtls.revocation: ', log, 1, true)
        assert.matches("lookup service down", log, 1, true)
        -- the worker keeps serving
        assert.are.equal(200, tls_curl(port, "api.test", "/hello", cert_args("revoked")).status)
    end)
end)
