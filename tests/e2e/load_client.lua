-- A steady stream of requests on keep-alive connections, for the reload spec:
--   luajit tests/e2e/load_client.lua PORT PATH CONNECTIONS STOP_FILE OUT_FILE
-- Sends requests round-robin on CONNECTIONS keep-alive connections until STOP_FILE
-- exists, then writes a JSON summary to OUT_FILE: { ok, failed, failures = {...},
-- reconnects, bodies = { body = count } }. Any non-200 status, read error or reset is
-- a failure.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local cjson = require "cjson"

local port, path, n, stop_file, out_file = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4], arg[5]
local conns = {}
for i = 1, n do
    conns[i] = h.connect(port, 10)
end
local ok, failed, reconnects = 0, 0, 0
local failures, bodies = {}, {}
local function note(what)
    failed = failed + 1
    if #failures < 20 then failures[#failures + 1] = what end
end
while not io.open(stop_file, "r") do
    for i, c in ipairs(conns) do
        local sent, serr = c:send("GET " .. path .. " HTTP/1.1\r\nHost: load.test\r\n\r\n")
        local r, err
        if sent then r, err = c:read_response() else err = serr end
        if not r then
            note("connection " .. i .. ": " .. tostring(err))
        elseif r.status ~= 200 then
            note(string.format("status %d: %s", r.status, r.body))
        else
            ok = ok + 1
            bodies[r.body] = (bodies[r.body] or 0) + 1
        end
        if not r or (r.headers.connection or ""):lower() == "close" then
            c:close()
            conns[i] = h.connect(port, 10)
            reconnects = reconnects + 1
        end
    end
end
local f = assert(io.open(out_file .. ".tmp", "w"))
f:write(cjson.encode({ ok = ok, failed = failed, failures = failures, reconnects = reconnects, bodies = bodies }))
f:close()
os.rename(out_file .. ".tmp", out_file)
