-- The management listener's bearer token (README "Configuration reference",
-- `management`; "Command line"; "Hot reload"): every request without the token of
-- management.token_file is answered 401, whatever its path; the default token is
-- generated in state_dir/management.token with mode 0600; a configured token file is
-- used as written (trailing newline dropped); `moongate reload` and `moongate status`
-- send the token; replacing the file rotates the token; a gateway that cannot have a
-- token does not start.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"

local function gateway_config(t)
    return {
        workers = 1,
        state_dir = t.state_dir,
        listen = { { address = "127.0.0.1", port = t.port, api = "a" } },
        management = { address = "127.0.0.1", port = t.mport, token_file = t.token_file },
        apis = { a = {
            stages = { ["$default"] = {} },
            routes = { ["$default"] = { integration = { type = "mock", body = t.body or "one" } } },
        } },
    }
end

local function mode_of(path)
    local p = io.popen("stat -c %a " .. h.sh_quote(path))
    local mode = p:read("*l")
    p:close()
    return mode
end

-- The management API with curl: method, path and the Authorization header (or none).
local function manage(mport, method, path, authorization)
    local args = { "http://127.0.0.1:" .. mport .. path, "-X", method }
    if authorization then
        args[#args + 1] = "-H"
        args[#args + 1] = "Authorization: " .. authorization
    end
    return h.curl(args)
end

describe("the management listener with the generated token", function()
    local gw, dir, port, mport, raw, token

    local function cli(...)
        local args = { ... }
        for _, a in ipairs({ "-c", dir .. "/gateway.lua", "-p", dir }) do args[#args + 1] = a end
        return h.moongate(args)
    end

    local function generation()
        return manage(mport, "GET", "/status", "Bearer " .. token):json().generation
    end

    lazy_setup(function()
        dir = h.tmpdir()
        port, mport = h.free_port(), h.free_port()
        gw = h.start_gateway(gateway_config({ port = port, mport = mport }), { dir = dir })
        raw = h.read_file(dir .. "/state/management.token")
        token = raw:gsub("%s+$", "")
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("generates 32 random bytes as hex in state_dir/management.token, mode 0600", function()
        assert.matches("^%x+\n$", raw)
        assert.equal(65, #raw)
        assert.equal("600", mode_of(dir .. "/state/management.token"))
        assert.matches("generated the management token \"" .. dir:gsub("%p", "%%%0") .. "/state/management.token\"", gw.stderr())
    end)

    it("answers 401 with a Bearer challenge to every request without a token", function()
        for _, req in ipairs({ { "POST", "/reload" }, { "GET", "/status" }, { "GET", "/nope" },
            { "GET", "/reload" }, { "DELETE", "/status" } }) do
            local r = manage(mport, req[1], req[2])
            local what = req[1] .. " " .. req[2]
            assert.equal(401, r.status, what)
            assert.equal('Bearer realm="moongate management"', r.headers["www-authenticate"], what)
            assert.equal("application/json", r.headers["content-type"], what)
            assert.same({ message = "Unauthorized" }, r:json(), what)
        end
        assert.equal(1, generation()) -- POST /reload without the token reloaded nothing
    end)

    it("answers 401 with error=\"invalid_token\" to a wrong token", function()
        local t = token
        for _, auth in ipairs({
            "Bearer nope",
            "Bearer " .. t:sub(1, -2), -- all but the last character
            "Bearer " .. t .. "0", -- one more
            "Bearer " .. t:sub(1, -2) .. (t:sub(-1) == "0" and "1" or "0"), -- the last one differs
            "Bearer",
            "Bearer ",
            "Basic " .. t,
            t, -- no scheme
            "Bearer" .. t, -- no space
        }) do
            local r = manage(mport, "POST", "/reload", auth)
            assert.equal(401, r.status, auth)
            assert.equal('Bearer realm="moongate management", error="invalid_token"',
                r.headers["www-authenticate"], auth)
            assert.same({ message = "Unauthorized" }, r:json(), auth)
        end
        -- the right token, but next to a wrong one
        local r = h.curl({ "http://127.0.0.1:" .. mport .. "/status", "-H", "Authorization: Bearer nope",
            "-H", "Authorization: Bearer " .. t })
        assert.equal(401, r.status)
        assert.equal(1, generation())
    end)

    it("serves a request with the token", function()
        local t = token
        local r = manage(mport, "GET", "/status", "Bearer " .. t)
        assert.equal(200, r.status)
        assert.same({ status = "running", generation = 1, file = dir .. "/gateway.lua" }, r:json())
        -- the scheme is case-insensitive (RFC 7235), extra blanks are allowed
        assert.equal(200, manage(mport, "GET", "/status", "bearer   " .. t).status)
        assert.equal(200, manage(mport, "GET", "/status", "BEARER " .. t).status)
        -- behind the token, the paths answer as before
        assert.equal(404, manage(mport, "GET", "/nope", "Bearer " .. t).status)
        assert.equal(405, manage(mport, "GET", "/reload", "Bearer " .. t).status)
        r = manage(mport, "POST", "/reload", "Bearer " .. t)
        assert.equal(200, r.status)
        assert.matches("gateway.lua: reloaded %(generation 2%)", r.body)
        assert.equal(2, generation())
    end)

    it("reads an Authorization header that arrives a byte at a time", function()
        local t = token
        local c = h.connect(mport)
        c:send("GET /status HTTP/1.1\r\nHost: x\r\n")
        for ch in ("Authorization: Bearer " .. t .. "\r\n\r\n"):gmatch(".") do c:send(ch) end
        local r = assert(c:read_response())
        c:close()
        assert.equal(200, r.status)
        assert.equal("running", r:json().status)
    end)

    it("moongate reload and moongate status send the token", function()
        local out, rc = cli("reload")
        assert.equal(0, rc, out)
        assert.matches("gateway.lua: reloaded %(generation %d+%)", out)
        out, rc = cli("status")
        assert.equal(0, rc, out)
        assert.equal("running", require("cjson").decode(out).status)
        assert.equal(generation(), require("cjson").decode(out).generation)
    end)

    it("moongate reload says where it looked for the token when it finds none", function()
        local other = h.tmpdir()
        local out, rc = h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", other })
        assert.equal(1, rc)
        assert.matches("gateway.lua: management.token_file: cannot read \"" .. other
            .. "/state/management.token\": No such file or directory (the gateway creates it under its "
            .. "state_dir when it starts: give the -p DIR it runs with)", out, 1, true)
        -- a token file that is not the gateway's: refused, and said so
        h.write_file(other .. "/gateway.lua", h.read_file(dir .. "/gateway.lua"))
        os.execute("mkdir -p " .. h.sh_quote(other .. "/state"))
        h.write_file(other .. "/state/management.token", "not-the-token\n")
        out, rc = h.moongate({ "status", "-c", dir .. "/gateway.lua", "-p", other })
        assert.equal(1, rc)
        assert.matches("the management listener 127.0.0.1:" .. mport .. " refused the token of \""
            .. other:gsub("%p", "%%%0") .. "/state/management.token\"", out)
    end)

    it("rotates the token when the file is replaced, without a reload", function()
        local old = token
        local new = string.rep("ab", 32)
        h.write_file(dir .. "/state/management.token.new", new .. "\n")
        assert(os.rename(dir .. "/state/management.token.new", dir .. "/state/management.token"))
        assert.equal(401, manage(mport, "GET", "/status", "Bearer " .. old).status)
        assert.equal(200, manage(mport, "GET", "/status", "Bearer " .. new).status)
        local out, rc = cli("status")
        assert.equal(0, rc, out)
        token = new
    end)

    it("refuses every request while the token file cannot be read, and says why", function()
        local t = token
        assert(os.rename(dir .. "/state/management.token", dir .. "/state/moved"))
        local r = manage(mport, "GET", "/status", "Bearer " .. t)
        assert(os.rename(dir .. "/state/moved", dir .. "/state/management.token"))
        assert.equal(401, r.status)
        assert.matches("management.token_file: cannot read \"[^\"]*/state/management.token\": No such "
            .. "file or directory: every management request is refused", gw.stderr())
        assert.equal(200, manage(mport, "GET", "/status", "Bearer " .. t).status)
    end)
end)

describe("the management listener with a configured token_file", function()
    local gw, dir, port, mport

    lazy_setup(function()
        dir = h.tmpdir()
        port, mport = h.free_port(), h.free_port()
        h.write_file(dir .. "/mgmt.token", "s3cret-token_0123\n")
        os.execute("chmod 600 " .. h.sh_quote(dir .. "/mgmt.token"))
        gw = h.start_gateway(gateway_config({ port = port, mport = mport, token_file = "mgmt.token" }),
            { dir = dir })
    end)

    lazy_teardown(function()
        h.stop_all(gw)
    end)

    it("takes the file's token verbatim, without its trailing newline", function()
        assert.equal(200, manage(mport, "GET", "/status", "Bearer s3cret-token_0123").status)
        assert.equal(401, manage(mport, "GET", "/status", "Bearer s3cret-token_012").status)
        assert.equal(401, manage(mport, "GET", "/status", "Bearer S3CRET-TOKEN_0123").status)
        assert.is_nil(io.open(dir .. "/state/management.token")) -- nothing generated
        assert.is_nil(gw.stderr():find("open to other users", 1, true))
    end)

    it("is what moongate reload sends", function()
        h.write_file(dir .. "/gateway.lua", h.config_source(gateway_config({ port = port, mport = mport,
            token_file = "mgmt.token", body = "two" })))
        local out, rc = h.moongate({ "reload", "-c", dir .. "/gateway.lua", "-p", dir })
        assert.equal(0, rc, out)
        assert.equal("two", h.curl({ gw:url("/") }).body)
    end)
end)

describe("a management token_file that cannot serve", function()
    local dir, port, mport

    lazy_setup(function()
        dir = h.tmpdir()
        port, mport = h.free_port(), h.free_port()
    end)

    local function check(t)
        local path = h.write_file(dir .. "/gateway.lua", h.config_source(gateway_config(t)))
        return h.moongate({ "check", "-c", path, "-p", dir })
    end

    it("is a configuration error naming management.token_file when missing or empty", function()
        local out, rc = check({ port = port, mport = mport, token_file = "missing.token" })
        assert.equal(1, rc)
        assert.matches("gateway.lua: management.token_file: cannot read \"[^\"]*/missing.token\": No such "
            .. "file or directory", out)
        h.write_file(dir .. "/empty.token", "\n")
        out, rc = check({ port = port, mport = mport, token_file = "empty.token" })
        assert.equal(1, rc)
        assert.matches("gateway.lua: management.token_file: \"[^\"]*/empty.token\" is empty: it must hold "
            .. "the token", out)
        h.write_file(dir .. "/spaced.token", "two words\n")
        out, rc = check({ port = port, mport = mport, token_file = "spaced.token" })
        assert.equal(1, rc)
        assert.matches("management.token_file: \"[^\"]*/spaced.token\": the token must be one line of "
            .. "visible ASCII characters", out)
        out, rc = check({ port = port, mport = mport, token_file = "" })
        assert.equal(1, rc)
        assert.matches("management.token_file: must not be empty", out, 1, true)
    end)

    it("keeps the gateway from starting: it never serves the management API without a token", function()
        -- state_dir below a regular file: the token cannot be created (root or not)
        h.write_file(dir .. "/afile", "x")
        local path = h.write_file(dir .. "/gateway.lua", h.config_source(gateway_config({ port = port,
            mport = mport, state_dir = "afile/state" })))
        assert.equal(0, select(2, h.moongate({ "check", "-c", path, "-p", dir }))) -- check creates nothing
        local p = h.spawn({ h.bin, "-c", path, "-p", dir }, dir, "refused")
        local rc = p:wait()
        if rc == nil then p:stop() end
        assert.equal(1, rc)
        assert.matches("gateway.lua: management.token_file: cannot create \"[^\"]*/afile/state/"
            .. "management.token\": Not a directory", p.stderr())
    end)
end)
