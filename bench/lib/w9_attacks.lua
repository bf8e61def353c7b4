-- wrk script for W9's attack traffic: the requests below in turn (SQL injection in the
-- query and in a JSON body, XSS, path traversal, a scanner's User-Agent), each of which
-- the OWASP Core Rule Set blocks at paranoia level 1; results as report.lua prints them
-- (BENCH_LIB: the directory of report.lua).
dofile(os.getenv("BENCH_LIB") .. "/report.lua")

local UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
local reqs, n, i = {}, 0, 0

init = function()
    local h = { ["Host"] = "bench.example.test", ["User-Agent"] = UA, ["Accept"] = "*/*" }
    local function add(method, path, headers, body)
        local all = {}
        for k, v in pairs(h) do all[k] = v end
        for k, v in pairs(headers or {}) do all[k] = v end
        n = n + 1
        reqs[n] = wrk.format(method, path, all, body)
    end
    add("GET", "/bench?q=1%27%20OR%201%3D1--")
    add("GET", "/bench?q=%3Cscript%3Ealert(1)%3C/script%3E")
    add("GET", "/bench?file=../../etc/passwd")
    add("GET", "/bench?q=shoes", { ["User-Agent"] = "sqlmap/1.7.2#stable (https://sqlmap.org)" })
    add("POST", "/bench", { ["Content-Type"] = "application/json" },
        '{"q":"1 UNION SELECT password FROM users"}')
end

request = function()
    i = i % n + 1
    return reqs[i]
end
