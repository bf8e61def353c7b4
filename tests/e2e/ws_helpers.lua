-- Helpers of the WebSocket e2e specs: the real client (ws_client.py, Debian's
-- python3-websockets, run with /usr/bin/python3), raw frames over luasocket, and the
-- access-log lines of connection events.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cjson = require "cjson.safe"
local bit = require "bit"

local w = {}

w.CLIENT = h.root .. "/tests/e2e/ws_client.py"

local function client_cmd(port, steps, args, path)
    local cmd = { "/usr/bin/python3", w.CLIENT, "ws://127.0.0.1:" .. port .. (path or "/"), cjson.encode(steps) }
    for _, a in ipairs(args or {}) do cmd[#cmd + 1] = a end
    for i, a in ipairs(cmd) do cmd[i] = h.sh_quote(a) end
    return table.concat(cmd, " ")
end

local function decode_lines(out)
    local events = {}
    for line in (out or ""):gmatch("[^\n]+") do
        events[#events + 1] = cjson.decode(line) or { event = "garbage", line = line }
    end
    return events
end

-- Runs the real client through steps (see ws_client.py); returns its events.
function w.ws(port, steps, args, path)
    return decode_lines(h.run(client_cmd(port, steps, args, path)))
end

-- A client in the background: its events go to file (read them with w.events_of).
function w.ws_background(port, steps, file, path, args)
    os.execute(client_cmd(port, steps, args, path) .. " > " .. h.sh_quote(file) .. " 2>&1 &")
end

-- An @connections call with curl: on the API's own endpoint, or with base = "/STAGE" on
-- the management listener; method, connection id, an optional header line ("name:
-- value") and an optional body; returns h.curl's result.
function w.connections_call(port, method, id, header, body, base)
    local args = { "http://127.0.0.1:" .. port .. (base or "") .. "/@connections/" .. id, "-X", method }
    if body then
        args[#args + 1] = "--data-binary"
        args[#args + 1] = body
    end
    if header then
        args[#args + 1] = "-H"
        args[#args + 1] = header
    end
    return h.curl(args)
end

-- A Lua handler answering with its connection's id (route_response = true).
w.WHOAMI_POLICY = [[
return { handle = function(event)
  return { statusCode = 200, body = event.requestContext.connectionId }
end }
]]

function w.events_of(file)
    return decode_lines(h.read_file(file))
end

-- Access logs whose format is a JSON object per line.
function w.log_entries(path)
    local entries = {}
    for _, l in ipairs(h.log_lines(path)) do
        entries[#entries + 1] = cjson.decode(l)
    end
    return entries
end

-- Waits for the access-log entry of event type for connection id (field conn, event).
function w.entry(path, id, event_type, timeout)
    return h.wait_for(function()
        for _, e in ipairs(w.log_entries(path)) do
            if e.conn == id and e.event == event_type then return e end
        end
    end, timeout or 5)
end

-- How many access-log entries of event type connection id has (now).
function w.count(path, id, event_type)
    local n = 0
    for _, e in ipairs(w.log_entries(path)) do
        if e.conn == id and e.event == event_type then n = n + 1 end
    end
    return n
end

function w.last_connect_id(path)
    return h.wait_for(function()
        local found
        for _, e in ipairs(w.log_entries(path)) do
            if e.event == "CONNECT" and e.status == "200" then found = e.conn end
        end
        return found
    end, 5)
end

-- The worker a connection id names (1 .. workers): the 7th byte of the base64url-decoded id.
function w.worker_of(id)
    local alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    local a = alpha:find(id:sub(9, 9), 1, true) - 1
    local b = alpha:find(id:sub(10, 10), 1, true) - 1
    return bit.bor(bit.lshift(a, 2), bit.rshift(b, 4))
end

-- Raw frames ------------------------------------------------------------------------

-- A client frame (masked unless opts.mask == false; opts.fin == false: not the last).
function w.frame(opcode, payload, opts)
    opts = opts or {}
    local n = #payload
    local b1 = (opts.fin == false and 0 or 0x80) + opcode
    local masked = opts.mask ~= false
    local len
    if n < 126 then
        len = string.char((masked and 0x80 or 0) + n)
    elseif n < 65536 then
        len = string.char((masked and 0x80 or 0) + 126, bit.rshift(n, 8), bit.band(n, 255))
    else
        len = string.char((masked and 0x80 or 0) + 127, 0, 0, 0, 0,
            bit.band(bit.rshift(n, 24), 255), bit.band(bit.rshift(n, 16), 255),
            bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
    end
    if not masked then return string.char(b1) .. len .. payload end
    local key = { 0x11, 0x22, 0x33, 0x44 }
    local out = {}
    for i = 1, n do
        out[i] = string.char(bit.bxor(payload:byte(i), key[(i - 1) % 4 + 1]))
    end
    return string.char(b1) .. len .. string.char(unpack(key)) .. table.concat(out)
end

-- Opens a raw WebSocket connection: the connection and the handshake's response.
function w.raw_open(port, path, headers)
    local c = h.connect(port, 5)
    c:send("GET " .. (path or "/") .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        .. table.concat(headers or {}, "\r\n") .. (headers and #headers > 0 and "\r\n" or "") .. "\r\n")
    local r = assert(c:read_response())
    return c, r
end

-- Reads one frame from the server: opcode, payload (nil, err when none comes).
function w.read_frame(c)
    local hd, err = c.sock:receive(2)
    if not hd then return nil, err end
    local op, n = bit.band(hd:byte(1), 15), bit.band(hd:byte(2), 127)
    if n == 126 then
        local x = c.sock:receive(2)
        n = x:byte(1) * 256 + x:byte(2)
    elseif n == 127 then
        local x = c.sock:receive(8)
        n = 0
        for i = 5, 8 do n = n * 256 + x:byte(i) end
    end
    local payload = ""
    if n > 0 then
        payload, err = c.sock:receive(n)
        if not payload then return nil, err end
    end
    return op, payload
end

-- Reads frames until a data frame (or close) comes, answering nothing.
function w.read_message(c)
    while true do
        local op, payload = w.read_frame(c)
        if op == nil or op == 1 or op == 2 or op == 8 then return op, payload end
    end
end

function w.close_code(payload)
    return payload:byte(1) * 256 + payload:byte(2), payload:sub(3)
end

return w
