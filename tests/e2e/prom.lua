-- The Prometheus text exposition as the e2e specs read it: samples by a key that names
-- the family and its labels sorted (key), and the TYPE and HELP lines (parse); or the
-- samples as python3-prometheus-client's parser reads them (samples, metrics_samples.py),
-- looked up with value and matching, or counted per family (families). The format
-- itself is checked by that parser.
local cjson = require "cjson.safe"

local M = {}
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

-- "name{a="x",b="y"}" with the labels sorted, the key of a sample in `parse`.
function M.key(name, labels)
    local names = {}
    for k in pairs(labels or {}) do names[#names + 1] = k end
    table.sort(names)
    if #names == 0 then return name end
    local parts = {}
    for _, k in ipairs(names) do
        parts[#parts + 1] = k .. '="' .. labels[k]:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("\n", "\\n") .. '"'
    end
    return name .. "{" .. table.concat(parts, ",") .. "}"
end

-- The samples of an exposition by key, and the HELP/TYPE lines' families.
function M.parse(text)
    local samples, types, helps = {}, {}, {}
    for line in text:gmatch("[^\n]+") do
        local fam, typ = line:match("^# TYPE (%S+) (%S+)$")
        if fam then
            assert(types[fam] == nil, "TYPE twice for " .. fam)
            types[fam] = typ
        elseif line:match("^# HELP ") then
            local f = line:match("^# HELP (%S+) ")
            assert(helps[f] == nil, "HELP twice for " .. f)
            helps[f] = true
        else
            local name, lab, value = line:match("^([%w_:]+)(%b{}) (%S+)$")
            if not name then
                name, value = line:match("^([%w_:]+) (%S+)$")
                lab = "{}"
            end
            assert(name, "malformed line: " .. line)
            local labels = {}
            local body = lab:sub(2, -2)
            local pos = 1
            while pos <= #body do
                local k, rest = body:match('^([%w_]+)="()', pos)
                assert(k, "malformed labels: " .. line)
                local i, v = rest, {}
                while true do
                    local c = body:sub(i, i)
                    if c == "\\" then
                        local n = body:sub(i + 1, i + 1)
                        v[#v + 1] = n == "n" and "\n" or n
                        i = i + 2
                    elseif c == '"' then
                        break
                    else
                        v[#v + 1] = c
                        i = i + 1
                    end
                end
                labels[k] = table.concat(v)
                pos = i + 1
                if body:sub(pos, pos) == "," then pos = pos + 1 end
            end
            samples[M.key(name, labels)] = tonumber(value == "+Inf" and "inf" or value)
        end
    end
    return samples, types, helps
end

-- The body of GET /metrics on the management port, with the token.
function M.scrape(h, port, token)
    local r = h.curl({ "http://127.0.0.1:" .. port .. "/metrics", "-H", "Authorization: Bearer " .. token })
    assert(r.status == 200, "GET /metrics answered " .. tostring(r.status) .. ": " .. tostring(r.body))
    return r.body
end

-- The samples of an exposition as python3-prometheus-client's parser reads them:
-- { { name =, labels =, value =, family =, type = (the family's) }, ... }; the test fails when the
-- text does not parse. dir is a scratch directory.
function M.samples(h, dir, text)
    h.write_file(dir .. "/scrape.txt", text)
    local out, rc = h.run("/usr/bin/python3 " .. h.sh_quote(here .. "metrics_samples.py") .. " "
        .. h.sh_quote(dir .. "/scrape.txt") .. " 2>&1")
    assert(rc == 0, out)
    return assert(cjson.decode(out))
end

-- The families of samples as the parser names them (a counter without _total):
-- { name = { type =, samples = (how many) } }.
function M.families(samples)
    local out = {}
    for _, s in ipairs(samples) do
        local f = out[s.family] or { type = s.type, samples = 0 }
        f.samples = f.samples + 1
        out[s.family] = f
    end
    return out
end

-- The samples of name whose labels include labels.
function M.matching(samples, name, labels)
    local found = {}
    for _, s in ipairs(samples) do
        local ok = s.name == name
        for k, v in pairs(labels) do ok = ok and s.labels[k] == v end
        if ok then found[#found + 1] = s end
    end
    return found
end

-- The value of the sample name with exactly labels (nil: none), and its family's type.
function M.value(samples, name, labels)
    for _, s in ipairs(M.matching(samples, name, labels)) do
        local extra = false
        for k in pairs(s.labels) do extra = extra or labels[k] == nil end
        if not extra then return s.value, s.type end
    end
end

return M
