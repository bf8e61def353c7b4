-- Uneven load on several nodes, for the cluster throttle spec:
--   luajit tests/e2e/cluster_load.lua PORTS WEIGHTS PATH STOP_FILE OUT_FILE
-- PORTS and WEIGHTS are comma lists ("p1,p2,p3" and "8,1,1"): of every sum(WEIGHTS)
-- requests, WEIGHTS[i] go to PORTS[i], each node on its own keep-alive connection, as
-- fast as the nodes answer, until STOP_FILE exists. Then writes OUT_FILE: one line per
-- response, "<time> <node> <status>" (time: socket.gettime(); status 0: no response).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local h = require "helpers"
local socket = require "socket"

local ports, weights = {}, {}
for p in arg[1]:gmatch("%d+") do ports[#ports + 1] = tonumber(p) end
for w in arg[2]:gmatch("%d+") do weights[#weights + 1] = tonumber(w) end
local path, stop_file, out_file = arg[3], arg[4], arg[5]

local order = {}
for i, w in ipairs(weights) do
    for _ = 1, w do order[#order + 1] = i end
end
local conns = {}
for i, p in ipairs(ports) do conns[i] = h.connect(p, 5) end
local req = "GET " .. path .. " HTTP/1.1\r\nHost: load.test\r\n\r\n"
local times, nodes, statuses, n = {}, {}, {}, 0
local k = 0
while true do
    if k % 50 == 0 and io.open(stop_file, "r") then break end
    k = k + 1
    local i = order[(k - 1) % #order + 1]
    local c = conns[i]
    local r
    if c:send(req) then r = c:read_response() end
    n = n + 1
    times[n], nodes[n], statuses[n] = socket.gettime(), i, r and r.status or 0
    if not r or (r.headers.connection or ""):lower() == "close" then
        c:close()
        local ok, nc = pcall(h.connect, ports[i], 5)
        conns[i] = ok and nc or c
        if not ok then socket.sleep(0.01) end
    end
end
local f = assert(io.open(out_file .. ".tmp", "w"))
for j = 1, n do f:write(string.format("%.4f %d %d\n", times[j], nodes[j], statuses[j])) end
f:close()
os.rename(out_file .. ".tmp", out_file)
