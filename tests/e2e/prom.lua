-- The Prometheus text exposition as the e2e specs read it: samples by a key that names
-- the family and its labels sorted (key), and the TYPE and HELP lines (parse). The
-- format itself is checked by python3-prometheus-client's parser (metrics_parse.py).
local M = {}

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

return M
