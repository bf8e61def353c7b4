-- GET /metrics families of the network layers (README "Metrics"): TLS handshakes on the
-- API listeners by outcome (a success, plain HTTP, bytes that are no TLS, TLS 1.1, no
-- shared cipher, no http/1.1 in ALPN, an unknown SNI name refused, a client that refuses
-- the gateway's certificate, one that closes mid-handshake, one that stalls past
-- timeouts.header), mutual-TLS refusals by domain and reason (no certificate, unknown CA,
-- expired, revoked by a CRL), the truststore CAs' seconds to expiry, and the HTTP
-- client's pools per backend origin (open and idle connections after keep-alive, new
-- connections and reuses, a refused connect, a response timeout, a TLS backend that never
-- answers the handshake). Real clients (curl, openssl s_client, raw sockets); the
-- exposition is parsed by python3-prometheus-client's parser; counts are exact, summed
-- over two workers, as differences between two scrapes.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local socket = require "socket"
local h = require "helpers"
local prom = require "prom"

local TOKEN = "metrics-net-token"

describe("GET /metrics, network families", function()
    local gw, up, slow, dir, pki, hang
    local tls_port, reject_port, plain_port, mport, closed_port, hang_port

    local function P(name) return pki .. "/" .. name end

    -- The samples of a scrape, as python3-prometheus-client parses them.
    local function scrape()
        return prom.samples(h, dir, prom.scrape(h, mport, TOKEN))
    end
    local value, matching = prom.value, prom.matching

    local function handshakes(s, port, outcome)
        return value(s, "moongate_tls_handshakes_total", { port = tostring(port), outcome = outcome }) or 0
    end

    -- Runs `action`, then waits until handshakes{port, outcome} grew, and returns by how
    -- much, with the scrapes before and after.
    local function counted(port, outcome, action)
        local before = scrape()
        action()
        local after
        h.wait_for(function()
            after = scrape()
            return handshakes(after, port, outcome) > handshakes(before, port, outcome)
        end, 5)
        return handshakes(after, port, outcome) - handshakes(before, port, outcome), before, after
    end

    local function s_client(port, args)
        local argv = { "timeout", "10", "openssl", "s_client", "-connect", "127.0.0.1:" .. port }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        for i, a in ipairs(argv) do argv[i] = h.sh_quote(a) end
        return h.run(table.concat(argv, " ") .. " </dev/null 2>&1")
    end

    local function tls_curl(port, host, path, extra)
        local args = { "https://" .. host .. ":" .. port .. path, "--resolve", host .. ":" .. port .. ":127.0.0.1" }
        for _, a in ipairs(extra or {}) do args[#args + 1] = a end
        return h.curl(args)
    end

    lazy_setup(function()
        pki = h.tmpdir()
        local out, rc = h.run("sh " .. h.sh_quote(h.root .. "/tests/e2e/tls_certs.sh") .. " " .. h.sh_quote(pki))
        assert(rc == 0, "tls_certs.sh failed: " .. out)
        dir = h.tmpdir()
        h.write_file(dir .. "/token", TOKEN .. "\n")
        tls_port, reject_port, plain_port, mport, closed_port, hang_port =
            h.free_port(), h.free_port(), h.free_port(), h.free_port(), h.free_port(), h.free_port()
        up = h.start_upstream()
        slow = h.start_upstream()
        -- A TLS backend that never answers: the kernel accepts the connection into the
        -- backlog, nobody reads the ClientHello.
        hang = assert(socket.bind("127.0.0.1", hang_port))
        local tls = { certificate = P("localhost.pem"), key = P("localhost.key") }
        gw = h.start_gateway({
            workers = 2,
            timeouts = { header = 1 },
            listen = {
                { address = "127.0.0.1", port = tls_port, api = "a", tls = tls },
                { address = "127.0.0.1", port = reject_port, api = "a",
                  tls = { certificate = tls.certificate, key = tls.key, unknown_sni = "reject" } },
                { address = "127.0.0.1", port = plain_port, api = "a" },
            },
            management = { address = "127.0.0.1", port = mport, token_file = dir .. "/token" },
            domains = {
                ["api.test"] = {
                    certificate = P("api.pem"), key = P("api.key"),
                    mappings = { [""] = "a" },
                    mtls = { truststore = P("trust.pem"), crl = P("inter.crl.pem") },
                },
            },
            apis = { a = {
                stages = { ["$default"] = {} },
                routes = {
                    ["GET /hello"] = { integration = { type = "mock", body = "hello" } },
                    ["GET /items"] = { integration = { type = "http", uri = up.origin .. "/items" } },
                    ["GET /refused"] = { integration = { type = "http", uri = "http://127.0.0.1:" .. closed_port .. "/x" } },
                    ["GET /slow"] = { integration = { type = "http", uri = slow.origin .. "/slow", timeout_ms = 300 } },
                    ["GET /hang"] = { integration = { type = "http", uri = "https://127.0.0.1:" .. hang_port .. "/x", timeout_ms = 300 } },
                },
            } },
        }, { dir = dir, ports = { tls_port, reject_port, plain_port, mport } })
    end)

    lazy_teardown(function()
        if hang then hang:close() end
        h.stop_all(gw, up)
        if slow then slow:stop() end
    end)

    describe("moongate_tls_handshakes_total", function()
        it("counts a successful handshake, and the session's version", function()
            local before = scrape()
            local r = tls_curl(tls_port, "localhost", "/hello", { "--cacert", P("root.pem"), "--tlsv1.3" })
            assert.equal(200, r.status, r.stderr)
            local after = scrape()
            assert.equal(1, handshakes(after, tls_port, "success") - handshakes(before, tls_port, "success"))
            local sl = { port = tostring(tls_port), version = "TLSv1.3", resumed = "false" }
            assert.equal(1, (value(after, "moongate_tls_sessions_total", sl) or 0)
                - (value(before, "moongate_tls_sessions_total", sl) or 0))
        end)

        it("counts plain HTTP sent to the TLS port", function()
            local n = counted(tls_port, "plain_http", function()
                assert.equal(400, h.curl({ "http://127.0.0.1:" .. tls_port .. "/hello" }).status)
            end)
            assert.equal(1, n)
        end)

        it("counts bytes that are no TLS record", function()
            local n = counted(tls_port, "not_tls", function()
                h.raw_exchange(tls_port, "\0\1\2\3\4\5\6\7\8\9\10\11\12\13\14\15", 5)
            end)
            assert.equal(1, n)
        end)

        it("counts a client that offers TLS 1.1 only, and one with no cipher suite in common", function()
            local n = counted(tls_port, "protocol_version", function()
                s_client(tls_port, { "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0" })
            end)
            assert.equal(1, n)
            n = counted(tls_port, "no_shared_cipher", function()
                s_client(tls_port, { "-tls1_2", "-cipher", "AES128-SHA" })
            end)
            assert.equal(1, n)
        end)

        it("counts a client whose ALPN lacks http/1.1", function()
            local n = counted(tls_port, "no_alpn", function()
                s_client(tls_port, { "-alpn", "h2", "-CAfile", P("root.pem") })
            end)
            assert.equal(1, n)
        end)

        it("counts an SNI name that unknown_sni = \"reject\" refuses", function()
            local n = counted(reject_port, "unknown_sni", function()
                s_client(reject_port, { "-servername", "nobody.test", "-CAfile", P("root.pem") })
            end)
            assert.equal(1, n)
        end)

        it("counts a client that refuses the gateway's certificate", function()
            local n = counted(tls_port, "certificate_rejected", function()
                -- curl without the test root: its OpenSSL sends an unknown_ca alert
                local r = tls_curl(tls_port, "localhost", "/hello")
                assert.is_not.equal(0, r.rc)
            end)
            assert.equal(1, n)
        end)

        it("counts a client that closes in the middle of its hello", function()
            local n = counted(tls_port, "client_closed", function()
                local c = h.connect(tls_port)
                c:send("\22\3\1\0\200\1\0\0") -- a record header and the start of a ClientHello
                c:close()
            end)
            assert.equal(1, n)
        end)

        it("counts a handshake that does not finish within timeouts.header", function()
            local c
            local n = counted(tls_port, "timeout", function()
                c = h.connect(tls_port)
                c:send("\22\3\1\0\200") -- a record header, then nothing
            end)
            c:close()
            assert.equal(1, n)
        end)
    end)

    describe("moongate_mtls_refusals_total", function()
        local function mtls(cert)
            local extra = { "--cacert", P("root.pem") }
            if cert then
                for _, a in ipairs({ "--cert", P(cert .. ".chain.pem"), "--key", P(cert .. ".key") }) do
                    extra[#extra + 1] = a
                end
            end
            return tls_curl(tls_port, "api.test", "/hello", extra)
        end

        local function refusals(s, reason)
            return value(s, "moongate_mtls_refusals_total",
                { port = tostring(tls_port), domain = "api.test", reason = reason }) or 0
        end

        it("counts each refused client certificate by reason, and the handshake as client_certificate", function()
            local before = scrape()
            assert.equal(200, mtls("client").status)
            for _, cert in ipairs({ false, "rogue", "expired", "revoked" }) do
                assert.is_not.equal(200, mtls(cert or nil).status)
            end
            local after
            h.wait_for(function()
                after = scrape()
                return handshakes(after, tls_port, "client_certificate")
                    - handshakes(before, tls_port, "client_certificate") >= 4
            end, 5)
            assert.equal(4, handshakes(after, tls_port, "client_certificate")
                - handshakes(before, tls_port, "client_certificate"))
            assert.equal(1, handshakes(after, tls_port, "success") - handshakes(before, tls_port, "success"))
            for _, reason in ipairs({ "no_certificate", "untrusted", "expired", "revoked" }) do
                assert.equal(1, refusals(after, reason) - refusals(before, reason), reason)
            end
            assert.equal(0, refusals(after, "other"))
        end)
    end)

    describe("moongate_tls_truststore_ca_expiry_seconds", function()
        local function x509(file, ...)
            local argv = { "openssl", "x509", "-in", file, "-noout", ... }
            for i, a in ipairs(argv) do argv[i] = h.sh_quote(a) end
            local out, rc = h.run(table.concat(argv, " ") .. " 2>&1")
            assert(rc == 0, out)
            return (out:gsub("%s+$", ""))
        end

        it("says the seconds left of each CA of the domain's truststore", function()
            local s = scrape()
            local now = os.time()
            local found = matching(s, "moongate_tls_truststore_ca_expiry_seconds",
                { domain = "api.test", port = tostring(tls_port) })
            assert.equal(2, #found) -- trust.pem: the intermediate and the root
            for _, ca in ipairs({ { "inter.pem", "Moongate Test Intermediate" }, { "root.pem", "Moongate Test Root" } }) do
                local file, cn = P(ca[1]), ca[2]
                local fp = x509(file, "-fingerprint", "-sha256"):match("=(.*)$"):gsub(":", ""):lower():sub(1, 16)
                local lines = matching(s, "moongate_tls_truststore_ca_expiry_seconds",
                    { domain = "api.test", port = tostring(tls_port), ca = cn, fingerprint = fp })
                assert.equal(1, #lines, cn)
                -- the file served: the configured one (no version pinned)
                assert.equal(P("trust.pem"), lines[1].labels.truststore)
                local out = h.run("date -d " .. h.sh_quote(x509(file, "-enddate"):match("=(.*)$")) .. " +%s")
                local not_after = tonumber((out:gsub("%s+$", "")))
                assert.is_true(math.abs(lines[1].value - (not_after - now)) < 60, cn .. ": " .. lines[1].value)
                assert.is_true(lines[1].value > 300 * 86400, cn) -- the test CAs live 5 and 10 years
            end
        end)
    end)

    describe("moongate_upstream_*", function()
        local function U(s, name, origin, extra)
            local l = { origin = origin }
            for k, v in pairs(extra or {}) do l[k] = v end
            return value(s, name, l) or 0
        end

        it("keeps the connections of keep-alive requests open and idle, and counts reuses", function()
            for _ = 1, 6 do
                assert.equal(200, h.curl({ "http://127.0.0.1:" .. plain_port .. "/items" }).status)
            end
            local s = scrape()
            local o = up.origin
            local connects = U(s, "moongate_upstream_connects_total", o)
            -- one pool per worker: each worker that served a request opened one connection
            assert.is_true(connects == 1 or connects == 2, tostring(connects))
            assert.equal(6, connects + U(s, "moongate_upstream_reuses_total", o))
            assert.equal(connects, U(s, "moongate_upstream_connections", o))
            assert.equal(connects, U(s, "moongate_upstream_idle_connections", o))
            assert.equal(connects, h.connections_to(up.port))
            assert.is_nil(value(s, "moongate_upstream_connect_failures_total", { origin = o, reason = "refused" }))
        end)

        it("counts a refused connect", function()
            assert.equal(502, h.curl({ "http://127.0.0.1:" .. plain_port .. "/refused" }).status)
            local s = scrape()
            local o = "http://127.0.0.1:" .. closed_port
            assert.equal(1, U(s, "moongate_upstream_connect_failures_total", o, { reason = "refused" }))
            assert.equal(1, U(s, "moongate_upstream_connects_total", o))
            assert.equal(0, U(s, "moongate_upstream_connections", o))
        end)

        it("counts a backend that does not answer in time as a response timeout", function()
            assert.equal(504, h.curl({ "http://127.0.0.1:" .. plain_port .. "/slow?ms=3000" }).status)
            local s = scrape()
            local o = slow.origin
            assert.equal(1, U(s, "moongate_upstream_timeouts_total", o, { phase = "response" }))
            assert.equal(0, U(s, "moongate_upstream_timeouts_total", o, { phase = "connect" }))
            assert.equal(0, U(s, "moongate_upstream_connections", o)) -- closed on the timeout
            assert.equal(0, U(s, "moongate_upstream_connect_failures_total", o, { reason = "timeout" }))
        end)

        it("counts a TLS handshake that never finishes as a connect timeout", function()
            assert.equal(504, h.curl({ "http://127.0.0.1:" .. plain_port .. "/hang" }).status)
            local s = scrape()
            local o = "https://127.0.0.1:" .. hang_port
            assert.equal(1, U(s, "moongate_upstream_timeouts_total", o, { phase = "connect" }))
            assert.equal(1, U(s, "moongate_upstream_connect_failures_total", o, { reason = "timeout" }))
            assert.equal(0, U(s, "moongate_upstream_connections", o))
        end)
    end)
end)
