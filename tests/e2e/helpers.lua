-- End-to-end harness: starts the real moongate binary and the fake upstream
-- (build/test-upstream) as background processes on loopback, and talks to them
-- with real clients (curl, raw luasocket connections).
--
--   local h  = require "helpers"
--   local up = h.start_upstream()
--   local gw = h.start_gateway{ apis = { ... } }     -- a table, serialized to Lua
--   local r  = h.curl{ gw:url "/pets", "-H", "X-A: 1" }
--   r.status, r.headers["content-type"], r.body, r:json()
--   gw:stop(); up:stop()
--
-- MOONGATE_BIN overrides the gateway binary (an ASan build, for example);
-- MOONGATE_UPSTREAM_BIN the fake upstream.

local socket = require "socket"
local cjson = require "cjson.safe"

local h = {}

-- Where things are -------------------------------------------------------------

local function dirname(p)
    return (p:match("^(.*)/[^/]*$")) or "."
end

local function sh_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
h.sh_quote = sh_quote

local function run(cmd)
    -- LuaJIT's popen():close() does not report the exit status: print it last.
    local f = assert(io.popen("( " .. cmd .. "\n); echo \"__rc=$?\"", "r"))
    local out = f:read("*a")
    f:close()
    local body, code = out:match("^(.-)__rc=(%d+)\n?$")
    if not body then return out, -1 end
    return body, tonumber(code)
end
h.run = run

local function absolute(p)
    if p:sub(1, 1) ~= "/" then
        p = run("pwd"):gsub("%s+$", "") .. "/" .. p
    end
    local parts = {}
    for seg in p:gmatch("[^/]+") do
        if seg == ".." then
            parts[#parts] = nil
        elseif seg ~= "." then
            parts[#parts + 1] = seg
        end
    end
    return "/" .. table.concat(parts, "/")
end

h.root = dirname(dirname(dirname(absolute(debug.getinfo(1, "S").source:gsub("^@", "")))))
h.bin = os.getenv("MOONGATE_BIN") or (h.root .. "/build/moongate")
h.upstream_bin = os.getenv("MOONGATE_UPSTREAM_BIN") or (h.root .. "/build/test-upstream")

-- Generous bounds: they only stop a broken run from hanging, nothing is timed.
h.start_timeout = tonumber(os.getenv("MOONGATE_E2E_START_TIMEOUT") or "") or 15
h.stop_timeout = 20
h.curl_timeout = 15

-- Small utilities --------------------------------------------------------------

function h.sleep(s) socket.sleep(s) end

function h.read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return s
end

function h.write_file(path, data)
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
    return path
end

-- Every directory the run creates lives under one base directory, removed when
-- the Lua state closes (busted exits with os.exit(code, true)) unless
-- MOONGATE_E2E_KEEP is set, so a failed run can be inspected.
local base_dir, dir_count = nil, 0

function h.tmpdir()
    if not base_dir then
        base_dir = run("mktemp -d /tmp/moongate-e2e.XXXXXX"):gsub("%s+$", "")
        assert(base_dir ~= "", "mktemp failed")
        if not os.getenv("MOONGATE_E2E_KEEP") then
            local dir = base_dir
            h._cleanup = newproxy(true)
            getmetatable(h._cleanup).__gc = function()
                os.execute("rm -rf " .. sh_quote(dir))
            end
        end
    end
    dir_count = dir_count + 1
    local d = base_dir .. "/" .. dir_count
    local rc = os.execute("mkdir " .. sh_quote(d))
    assert(rc == 0 or rc == true, "mkdir " .. d)
    return d
end

-- A port nothing listens on right now (the kernel's choice for an ephemeral bind), and
-- not one handed out before in this run: a port closed again at once may come back on
-- the next call, and two listeners of one configuration then get the same port.
local given = {}
function h.free_port()
    for _ = 1, 100 do
        local s = assert(socket.bind("127.0.0.1", 0))
        local _, port = s:getsockname()
        s:close()
        port = tonumber(port)
        if not given[port] then
            given[port] = true
            return port
        end
    end
    error("no fresh ephemeral port in 100 tries")
end

function h.port_open(port, host)
    local c = socket.tcp()
    c:settimeout(0.5)
    local ok = c:connect(host or "127.0.0.1", port)
    c:close()
    return ok ~= nil
end

-- The number of established loopback TCP connections whose remote port is
-- `port` (from /proc/net/tcp): how many connections a gateway holds to a backend.
function h.connections_to(port)
    local n = 0
    local s = h.read_file("/proc/net/tcp") or ""
    for rem, st in s:gmatch("\n%s*%d+: %x+:%x+ %x+:(%x+) (%x%x)") do
        if tonumber(rem, 16) == port and st == "01" then n = n + 1 end
    end
    return n
end

-- Polls `pred` every 20 ms until it returns a true value or `timeout` seconds pass.
function h.wait_for(pred, timeout)
    local deadline = socket.gettime() + (timeout or 5)
    repeat
        local v = pred()
        if v then return v end
        socket.sleep(0.02)
    until socket.gettime() > deadline
    return pred()
end

h.json_decode = cjson.decode

-- Lua source for a config table ------------------------------------------------

local function is_ident(k)
    return type(k) == "string" and k:match("^[%a_][%w_]*$") and not ({
        ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1, ["end"] = 1,
        ["false"] = 1, ["for"] = 1, ["function"] = 1, ["if"] = 1, ["in"] = 1, ["local"] = 1,
        ["nil"] = 1, ["not"] = 1, ["or"] = 1, ["repeat"] = 1, ["return"] = 1, ["then"] = 1,
        ["true"] = 1, ["until"] = 1, ["while"] = 1, ["goto"] = 1,
    })[k]
end

local function serialize(v, indent)
    indent = indent or ""
    local t = type(v)
    if t == "string" then
        return string.format("%q", v)
    elseif t == "number" or t == "boolean" then
        return tostring(v)
    elseif t ~= "table" then
        error("cannot serialize a " .. t)
    end
    local inner = indent .. "  "
    local parts = {}
    local n = #v
    for i = 1, n do parts[#parts + 1] = inner .. serialize(v[i], inner) end
    local keys = {}
    for k in pairs(v) do
        if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then
            keys[#keys + 1] = k
        end
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
        local key = is_ident(k) and k or ("[" .. serialize(k) .. "]")
        parts[#parts + 1] = inner .. key .. " = " .. serialize(v[k], inner)
    end
    if #parts == 0 then return "{}" end
    return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end
h.serialize = serialize

function h.config_source(conf)
    if type(conf) == "string" then return conf end
    return "return " .. serialize(conf) .. "\n"
end

-- Background processes ---------------------------------------------------------

-- Starts `argv` (a list) in the background. A wrapper shell waits for it and writes
-- its exit status, so stop() can report how the process ended even though it is
-- not our child.
local function spawn(argv, dir, name)
    local quoted = {}
    for i, a in ipairs(argv) do quoted[i] = sh_quote(a) end
    local p = {
        dir = dir,
        name = name,
        stdout_path = dir .. "/" .. name .. ".stdout",
        stderr_path = dir .. "/" .. name .. ".stderr",
        pid_path = dir .. "/" .. name .. ".pid",
        rc_path = dir .. "/" .. name .. ".rc",
    }
    os.remove(p.pid_path)
    os.remove(p.rc_path)
    local cmd = string.format(
        "( %s >%s 2>%s </dev/null & echo $! >%s.tmp; mv %s.tmp %s; wait $!; echo $? >%s.tmp; mv %s.tmp %s ) >/dev/null 2>&1 </dev/null &",
        table.concat(quoted, " "), sh_quote(p.stdout_path), sh_quote(p.stderr_path),
        sh_quote(p.pid_path), sh_quote(p.pid_path), sh_quote(p.pid_path),
        sh_quote(p.rc_path), sh_quote(p.rc_path), sh_quote(p.rc_path))
    os.execute(cmd)
    local pid = h.wait_for(function()
        local s = h.read_file(p.pid_path)
        return s and tonumber(s:match("%d+"))
    end, 5)
    assert(pid, "could not start " .. argv[1])
    p.pid = pid

    function p.exited()
        local s = h.read_file(p.rc_path)
        return s and tonumber(s:match("%d+"))
    end

    function p.stderr() return h.read_file(p.stderr_path) or "" end
    function p.stdout() return h.read_file(p.stdout_path) or "" end

    function p.signal(_, sig)
        if not p.exited() then os.execute("kill -" .. sig .. " " .. p.pid .. " 2>/dev/null") end
    end

    -- SIGTERM, wait (bounded), then SIGKILL. Returns the exit status (128+N for a
    -- signal N) and whether it had to be killed.
    function p.stop(_, timeout)
        if p.rc ~= nil then return p.rc end
        p:signal("TERM")
        local rc = h.wait_for(p.exited, timeout or h.stop_timeout)
        local killed = false
        if not rc then
            killed = true
            p:signal("KILL")
            rc = h.wait_for(p.exited, 5)
        end
        p.rc, p.killed = rc, killed
        return rc, killed
    end

    -- Waits (bounded) for the process to end by itself; returns its status or nil.
    function p.wait(_, timeout)
        local rc = h.wait_for(p.exited, timeout or h.stop_timeout)
        if rc then p.rc = rc end
        return rc
    end

    return p
end
h.spawn = spawn

local function wait_listening(p, ports, what)
    local ok = h.wait_for(function()
        if p.exited() then return "exited" end
        for _, port in ipairs(ports) do
            if not h.port_open(port) then return false end
        end
        return true
    end, h.start_timeout)
    if ok ~= true then
        local why = ok == "exited" and ("exited with status " .. tostring(p.exited()))
            or "did not listen in time"
        p:stop(2)
        error(string.format("%s %s; stderr:\n%s", what, why, p.stderr()), 3)
    end
end

-- Starts the fake backend. opts.raw_log: it appends every byte it receives to a file,
-- and p:received() returns all of them so far (what reached the backend at all).
-- opts.tls = { cert = PEM chain file, key = key file }: it speaks https, and p.origin
-- is "https://localhost:PORT".
function h.start_upstream(port, opts)
    opts = opts or {}
    assert(io.open(h.upstream_bin, "rb"), "missing " .. h.upstream_bin .. " (make all)"):close()
    port = port or h.free_port()
    local dir = h.tmpdir()
    local argv = { h.upstream_bin }
    if opts.tls then
        for _, a in ipairs({ "--tls", opts.tls.cert, opts.tls.key }) do argv[#argv + 1] = a end
    end
    argv[#argv + 1] = tostring(port)
    local raw = dir .. "/received.raw"
    if opts.raw_log then argv[#argv + 1] = raw end
    local p = spawn(argv, dir, "upstream")
    p.port = port
    p.origin = opts.tls and ("https://localhost:" .. port) or ("http://127.0.0.1:" .. port)
    function p.received() return opts.raw_log and (h.read_file(raw) or "") or error("no raw_log") end
    wait_listening(p, { port }, "test-upstream")
    return p
end

-- Starts the gateway with `conf` (a config table or Lua source text).
-- opts.dir: the directory for the config, logs and output (a new temp dir by default);
-- opts.prefix: passed as -p (default: opts.dir); opts.env: extra environment variables. A table config without `listen`
-- gets one listener on a free port. Returns a process object with .port (the first
-- listener), .ports, .dir, .config_path, :url(path), :stop(), :stderr().
function h.start_gateway(conf, opts)
    opts = opts or {}
    assert(io.open(h.bin, "rb"), "missing " .. h.bin .. " (make all)"):close()
    local dir = opts.dir or h.tmpdir()
    local ports = opts.ports or {}
    if type(conf) == "table" then
        if conf.listen == nil then
            conf.listen = { { address = "127.0.0.1", port = h.free_port() } }
        end
        if #ports == 0 then
            for _, l in ipairs(conf.listen) do ports[#ports + 1] = l.port end
        end
    end
    assert(#ports > 0, "start_gateway: no port to wait for")
    local path = h.write_file(dir .. "/gateway.lua", h.config_source(conf))
    local argv = { h.bin, "-c", path, "-p", opts.prefix or dir }
    if opts.env then -- { NAME = "value" }: the gateway's extra environment
        local names = {}
        for k in pairs(opts.env) do names[#names + 1] = k end
        table.sort(names)
        for i = #names, 1, -1 do table.insert(argv, 1, names[i] .. "=" .. opts.env[names[i]]) end
        table.insert(argv, 1, "env")
    end
    local p = spawn(argv, dir, "gateway")
    p.config_path = path
    p.ports = ports
    p.port = ports[1]
    function p.url(_, path_, port)
        return "http://127.0.0.1:" .. (port or p.port) .. (path_ or "/")
    end
    wait_listening(p, ports, "moongate")
    return p
end

-- Stops the gateway and then every other process given (upstreams, key servers; any may
-- be nil) and raises an error, with the gateway's stderr, when the gateway did not exit
-- 0: a crash or a sanitizer report at shutdown then fails the block instead of passing
-- unseen.
function h.stop_all(gw, ...)
    local rc, killed
    if gw then rc, killed = gw:stop() end
    for i = 1, select("#", ...) do
        local p = select(i, ...)
        if p then p:stop() end
    end
    if gw and (rc ~= 0 or killed) then
        error(string.format("moongate exited with status %s%s; stderr:\n%s", tostring(rc),
            killed and " after SIGKILL" or "", gw.stderr()), 2)
    end
end

-- Runs `moongate ARGS...`; returns combined stdout+stderr and the exit status.
function h.moongate(args)
    local quoted = { sh_quote(h.bin) }
    for _, a in ipairs(args) do quoted[#quoted + 1] = sh_quote(a) end
    return run(table.concat(quoted, " ") .. " 2>&1")
end

-- Runs `moongate ARGS...` with the environment variables env set; like h.moongate.
function h.run_env(env, args)
    local quoted = {}
    for k, v in pairs(env) do quoted[#quoted + 1] = k .. "=" .. sh_quote(v) end
    quoted[#quoted + 1] = sh_quote(h.bin)
    for _, a in ipairs(args) do quoted[#quoted + 1] = sh_quote(a) end
    return run(table.concat(quoted, " ") .. " 2>&1")
end

-- curl ---------------------------------------------------------------------------

-- Parses one or more HTTP response heads ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK...").
local function parse_heads(text)
    local blocks = {}
    text = text:gsub("\r?\n", "\r\n")
    for block in (text .. "\r\n\r\n"):gmatch("(.-)\r\n\r\n") do
        local version, status, reason = block:match("^HTTP/(%S+)%s+(%d+)%s*([^\r\n]*)")
        if version then
            local b = {
                version = version,
                status = tonumber(status),
                reason = reason,
                headers = {},
                header_list = {},
            }
            for name, value in block:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
                local lname = name:lower()
                value = value:gsub("[ \t]+$", "")
                b.header_list[#b.header_list + 1] = { lname, value }
                if b.headers[lname] then
                    b.headers[lname] = b.headers[lname] .. ", " .. value
                else
                    b.headers[lname] = value
                end
            end
            blocks[#blocks + 1] = b
        end
    end
    return blocks
end
h.parse_heads = parse_heads

local Response = {}
Response.__index = Response

function Response:json()
    local v, err = cjson.decode(self.body or "")
    assert(v ~= nil, "response body is not JSON (" .. tostring(err) .. "): " .. tostring(self.body))
    return v
end

-- The request as the upstream echoed it.
Response.echo = Response.json

-- h.curl{ url, extra curl args... } runs curl once and returns
-- { status, version, headers (lower-case names, duplicates joined with ", "),
--   header_list, blocks (every head, 1xx included), body, stderr, rc }.
function h.curl(args)
    local dir = h.curl_dir or h.tmpdir()
    h.curl_dir = dir
    local hdr, body, err = dir .. "/h", dir .. "/b", dir .. "/e"
    os.remove(hdr); os.remove(body)
    local quoted = { "curl", "-s", "-S", "--max-time", tostring(args.max_time or h.curl_timeout),
        "-D", sh_quote(hdr), "-o", sh_quote(body) }
    for _, a in ipairs(args) do quoted[#quoted + 1] = sh_quote(a) end
    local _, rc = run(table.concat(quoted, " ") .. " 2>" .. sh_quote(err))
    local blocks = parse_heads(h.read_file(hdr) or "")
    local last = blocks[#blocks] or { headers = {}, header_list = {} }
    return setmetatable({
        rc = rc,
        status = last.status,
        version = last.version,
        headers = last.headers,
        header_list = last.header_list,
        blocks = blocks,
        body = h.read_file(body) or "",
        stderr = h.read_file(err) or "",
    }, Response)
end

-- Runs curl with the given arguments and returns stdout, stderr, exit status
-- (for checks on curl's own verbose output, such as connection re-use).
function h.curl_raw(args)
    local dir = h.curl_dir or h.tmpdir()
    h.curl_dir = dir
    local err = dir .. "/raw.e"
    local quoted = { "curl", "-s", "--max-time", tostring(h.curl_timeout) }
    for _, a in ipairs(args) do quoted[#quoted + 1] = sh_quote(a) end
    local out, rc = run(table.concat(quoted, " ") .. " 2>" .. sh_quote(err))
    return out, h.read_file(err) or "", rc
end

-- Starts curl in the background; returns a process object whose :result() waits for
-- curl to finish and returns the same table as h.curl.
function h.curl_background(args)
    local dir = h.tmpdir()
    local argv = { "curl", "-s", "-S", "--max-time", tostring(args.max_time or h.curl_timeout),
        "-D", dir .. "/h", "-o", dir .. "/b" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local p = spawn(argv, dir, "curl")
    function p.result()
        local rc = p:wait(h.curl_timeout + 5)
        local blocks = parse_heads(h.read_file(dir .. "/h") or "")
        local last = blocks[#blocks] or { headers = {}, header_list = {} }
        return setmetatable({
            rc = rc,
            status = last.status,
            headers = last.headers,
            header_list = last.header_list,
            blocks = blocks,
            body = h.read_file(dir .. "/b") or "",
            stderr = p.stderr(),
        }, Response)
    end
    return p
end

-- Raw connections ----------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

function h.connect(port, timeout)
    local s = assert(socket.tcp())
    s:settimeout(timeout or 10)
    assert(s:connect("127.0.0.1", port))
    s:setoption("tcp-nodelay", true)
    return setmetatable({ sock = s, timeout = timeout or 10 }, Conn)
end

function Conn:send(data)
    local i = 1
    while i <= #data do
        local last, err, partial = self.sock:send(data, i)
        if not last then
            if partial and partial >= i then i = partial + 1 end
            if err ~= "timeout" then return nil, err end
        else
            i = last + 1
        end
    end
    return true
end

function Conn:close() self.sock:close() end

function Conn:settimeout(t)
    self.timeout = t
    self.sock:settimeout(t)
end

-- Reads one response. opts.head = true for a response to HEAD. Returns a table
-- { version, status, reason, headers, header_list, body, raw_head } or nil, err.
function Conn:read_response(opts)
    opts = opts or {}
    local s = self.sock
    local line, err = s:receive("*l")
    if not line then return nil, err end
    local version, status, reason = line:match("^HTTP/(%S+)%s+(%d+)%s*(.-)\r?$")
    if not version then return nil, "bad status line: " .. line end
    local r = { version = version, status = tonumber(status), reason = reason,
        headers = {}, header_list = {} }
    local raw = { line }
    while true do
        local l, e = s:receive("*l")
        if not l then return nil, "head: " .. tostring(e) end
        raw[#raw + 1] = l
        if l == "" or l == "\r" then break end
        local name, value = l:match("^([^:]+):%s*(.-)%s*$")
        if name then
            name = name:lower()
            r.header_list[#r.header_list + 1] = { name, value }
            r.headers[name] = r.headers[name] and (r.headers[name] .. ", " .. value) or value
        end
    end
    r.raw_head = table.concat(raw, "\n")
    local st = r.status
    if opts.head or (st >= 100 and st < 200) or st == 204 or st == 304 then
        r.body = ""
        return setmetatable(r, Response)
    end
    local te = (r.headers["transfer-encoding"] or ""):lower()
    if te:find("chunked", 1, true) then
        local parts = {}
        while true do
            local l, e = s:receive("*l")
            if not l then return nil, "chunk size: " .. tostring(e) end
            local n = tonumber(l:match("^%s*(%x+)"), 16)
            if not n then return nil, "bad chunk size: " .. l end
            if n == 0 then
                repeat
                    l, e = s:receive("*l")
                    if not l then return nil, "trailer: " .. tostring(e) end
                until l == ""
                break
            end
            local data, e2 = s:receive(n)
            if not data then return nil, "chunk: " .. tostring(e2) end
            parts[#parts + 1] = data
            s:receive("*l")
        end
        r.body = table.concat(parts)
    elseif r.headers["content-length"] then
        local n = tonumber(r.headers["content-length"])
        local data, e = s:receive(n)
        if not data then return nil, "body: " .. tostring(e) end
        r.body = data
    else
        local data, e, partial = s:receive("*a")
        r.body = data or partial or ""
        if not data and e ~= "closed" then return nil, "body: " .. tostring(e) end
    end
    return setmetatable(r, Response)
end

-- True when the peer closes the connection (EOF or reset) within `timeout` seconds
-- without sending anything more; false when data arrives or it stays open.
function Conn:closed_by_peer(timeout)
    self.sock:settimeout(timeout or 5)
    local data, err, partial = self.sock:receive(1)
    self.sock:settimeout(self.timeout)
    if data or (partial and #partial > 0) then return false, "data: " .. (data or partial) end
    if err == "closed" or err == "connection reset by peer" then return true end
    return false, err
end

-- Sends `data` on a new connection and returns everything read until the peer
-- closes the connection, and "closed" (or the error that ended the wait instead,
-- such as "timeout").
function h.raw_exchange(port, data, timeout)
    local c = h.connect(port, timeout or 10)
    c:send(data)
    local out, err, partial = c.sock:receive("*a")
    c:close()
    if out then return out, "closed" end
    return partial or "", err
end

-- Access logs ----------------------------------------------------------------------

function h.log_lines(path)
    local s = h.read_file(path) or ""
    local lines = {}
    for l in s:gmatch("[^\n]+") do lines[#lines + 1] = l end
    return lines
end

-- Decodes every line of a JSON access log; lines that are not JSON are kept as
-- { _raw = line, _error = why } so a test can show them.
function h.json_log(path)
    local out = {}
    for _, l in ipairs(h.log_lines(path)) do
        local v, err = cjson.decode(l)
        out[#out + 1] = v or { _raw = l, _error = err }
    end
    return out
end

-- The decoded JSON log entry whose `field` equals `value`, or nil.
function h.find_entry(entries, field, value)
    for _, e in ipairs(entries) do
        if e[field] == value then return e end
    end
    return nil
end

-- A request body of `n` bytes that is easy to check: "0123456789" repeated.
function h.payload(n)
    local s = string.rep("0123456789", math.floor(n / 10) + 1)
    return s:sub(1, n)
end

-- Assertions shared by the specs ----------------------------------------------------

-- A response the gateway made itself: status, exact body, x-amzn-ErrorType,
-- JSON content type and a request id.
function h.assert_gateway_response(r, status, message, error_type)
    local A = require "luassert"
    A.are.equal(status, r.status)
    A.are.equal('{"message":"' .. message .. '"}', r.body)
    A.are.equal(error_type, r.headers["x-amzn-errortype"])
    A.matches("^application/json", r.headers["content-type"] or "")
    A.matches("^%S+$", r.headers["apigw-requestid"] or "")
end

function h.assert_not_found(r)
    h.assert_gateway_response(r, 404, "Not Found", "NotFoundException")
end

return h
