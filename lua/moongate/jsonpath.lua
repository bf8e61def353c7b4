-- moongate.jsonpath: JSON that keeps what a mapping template sees of it (member order,
-- null) and the JSONPath subset API Gateway's mapping sources and templates use.
--
--   decode(text)          -> value or nil, why   (objects keep their member order)
--   encode(value)         -> compact JSON text
--   compile(path)         -> steps or nil, why   ("$.a['b'][0][*]..c"; the leading "$" may
--                             be left out, as in method.request.body.a.b)
--   query(value, steps)   -> the value found (nil: nothing), as Jayway's JsonPath answers:
--                             a definite path gives the value, a path with [*] or .. a list
--
-- Values: strings, numbers and booleans are Lua's; null is M.null; an array is a table
-- with metatable M.List ({ n = count, ... }); an object a table with metatable M.Map
-- ({ keys = { in order }, vals = { key -> value } }). moongate.vtl renders these as
-- Velocity renders Java's lists and maps.
local type, tonumber, tostring, setmetatable, getmetatable, error, pcall, ipairs =
  type, tonumber, tostring, setmetatable, getmetatable, error, pcall, ipairs
local byte, sub, find, format, char, match, gsub = string.byte, string.sub, string.find,
  string.format, string.char, string.match, string.gsub
local concat = table.concat
local floor, huge = math.floor, math.huge
local policy = require "moongate.policy"
local tick = policy.tick

local M = {}

M.null = setmetatable({}, { __tostring = function() return "null" end })
M.List = { __name = "list" }
M.Map = { __name = "map" }
local NULL, List, Map = M.null, M.List, M.Map

function M.list(t, n)
  t = t or {}
  t.n = n or #t
  return setmetatable(t, List)
end

function M.map()
  return setmetatable({ keys = {}, vals = {} }, Map)
end

-- Puts key = v into map m (a new key goes last).
function M.put(m, key, v)
  local vals = m.vals
  if vals[key] == nil then
    m.keys[#m.keys + 1] = key
  end
  vals[key] = v
end

function M.is_list(v)
  return getmetatable(v) == List
end

function M.is_map(v)
  return getmetatable(v) == Map
end

---------------------------------------------------------------------------
-- Decoding (strict JSON, RFC 8259; nesting at most 512 levels)
---------------------------------------------------------------------------

local MAX_DEPTH = 512
local ESC = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n",
  [114] = "\r", [116] = "\t" }

local function utf8(cp)
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(0xC0 + floor(cp / 64), 0x80 + cp % 64)
  elseif cp < 0x10000 then
    return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64,
    0x80 + cp % 64)
end

local decode_value

local function fail(s, i, why)
  error({ format("%s at byte %d", why, i) }, 0)
end

local function skip(s, i)
  return (find(s, "[^ \t\r\n]", i)) or #s + 1
end

local function decode_string(s, i)
  -- i: the opening quote
  local j = i + 1
  local parts, np = {}, 0
  while true do
    local k = find(s, '["\\%z\1-\31]', j)
    if not k then
      fail(s, i, "unterminated string")
    end
    if k > j then
      np = np + 1
      parts[np] = sub(s, j, k - 1)
    end
    local c = byte(s, k)
    if c == 34 then
      return concat(parts), k + 1
    elseif c == 92 then
      local e = byte(s, k + 1)
      if e == 117 then
        local hex = match(s, "^%x%x%x%x", k + 2)
        if not hex then
          fail(s, k, "bad \\u escape")
        end
        local cp = tonumber(hex, 16)
        local nxt = k + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = match(s, "^\\u(%x%x%x%x)", nxt)
          lo = lo and tonumber(lo, 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            nxt = nxt + 6
          end
        end
        np = np + 1
        parts[np] = utf8(cp)
        j = nxt
      elseif e and ESC[e] then
        np = np + 1
        parts[np] = ESC[e]
        j = k + 2
      else
        fail(s, k, "bad escape")
      end
    else
      fail(s, k, "control character in string")
    end
  end
end

-- The JSON number at i: its text and the index after it, or nil.
local function scan_number(s, i)
  local j = i
  if byte(s, j) == 45 then
    j = j + 1
  end
  local c = byte(s, j)
  if c == 48 then
    j = j + 1
  elseif c and c >= 49 and c <= 57 then
    local _, e = find(s, "^%d+", j)
    j = e + 1
  else
    return nil
  end
  if byte(s, j) == 46 then
    local _, e = find(s, "^%d+", j + 1)
    if not e then
      return nil
    end
    j = e + 1
  end
  c = byte(s, j)
  if c == 101 or c == 69 then
    local _, e = find(s, "^[+-]?%d+", j + 1)
    if not e then
      return nil
    end
    j = e + 1
  end
  return sub(s, i, j - 1), j
end

function decode_value(s, i, depth)
  i = skip(s, i)
  local c = byte(s, i)
  if c == 123 then -- {
    if depth >= MAX_DEPTH then
      fail(s, i, "nesting too deep")
    end
    local m = M.map()
    i = skip(s, i + 1)
    if byte(s, i) == 125 then
      return m, i + 1
    end
    while true do
      tick()
      if byte(s, i) ~= 34 then
        fail(s, i, "expected a member name")
      end
      local key
      key, i = decode_string(s, i)
      i = skip(s, i)
      if byte(s, i) ~= 58 then
        fail(s, i, "expected ':'")
      end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      M.put(m, key, v)
      i = skip(s, i)
      local d = byte(s, i)
      if d == 125 then
        return m, i + 1
      elseif d ~= 44 then
        fail(s, i, "expected ',' or '}'")
      end
      i = skip(s, i + 1)
    end
  elseif c == 91 then -- [
    if depth >= MAX_DEPTH then
      fail(s, i, "nesting too deep")
    end
    local l, n = M.list({}, 0), 0
    i = skip(s, i + 1)
    if byte(s, i) == 93 then
      return l, i + 1
    end
    while true do
      tick()
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      l[n] = v
      i = skip(s, i)
      local d = byte(s, i)
      if d == 93 then
        l.n = n
        return l, i + 1
      elseif d ~= 44 then
        fail(s, i, "expected ',' or ']'")
      end
      i = i + 1
    end
  elseif c == 34 then
    return decode_string(s, i)
  elseif c == 116 and sub(s, i, i + 3) == "true" then
    return true, i + 4
  elseif c == 102 and sub(s, i, i + 4) == "false" then
    return false, i + 5
  elseif c == 110 and sub(s, i, i + 3) == "null" then
    return NULL, i + 4
  end
  local num, j = scan_number(s, i)
  if num then
    local v = tonumber(num)
    if v == huge or v == -huge then
      fail(s, i, "number out of range")
    end
    return v, j
  end
  fail(s, i, c and "unexpected character" or "unexpected end of input")
end

-- The value of JSON text s, or nil and why.
function M.decode(s)
  if type(s) ~= "string" then
    return nil, "not a string"
  end
  local ok, v, i = pcall(decode_value, s, 1, 0)
  if not ok then
    if type(v) == "table" then
      return nil, v[1]
    end
    error(v, 0) -- the budget, not the text
  end
  i = skip(s, i)
  if i <= #s then
    return nil, format("unexpected text after the value at byte %d", i)
  end
  return v
end

---------------------------------------------------------------------------
-- Encoding
---------------------------------------------------------------------------

-- A number as Java prints it when it is integral, else its shortest round-trip form.
function M.number_text(v)
  if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
    return format("%d", v)
  end
  if v ~= v or v == huge or v == -huge then
    return "null"
  end
  for p = 15, 17 do
    local s = format("%." .. p .. "g", v)
    if tonumber(s) == v then
      return s
    end
  end
  return format("%.17g", v)
end

local QUOTE = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t" }

function M.quote(s)
  return '"' .. gsub(s, '[%c"\\]', function(c)
    return QUOTE[c] or format("\\u%04x", byte(c))
  end) .. '"'
end

local function encode(v, out, n)
  tick()
  local t = type(v)
  if t == "string" then
    n = n + 1
    out[n] = M.quote(v)
  elseif t == "number" then
    n = n + 1
    out[n] = M.number_text(v)
  elseif t == "boolean" then
    n = n + 1
    out[n] = v and "true" or "false"
  elseif v == nil or v == NULL then
    n = n + 1
    out[n] = "null"
  else
    local mt = getmetatable(v)
    if mt == List then
      n = n + 1
      out[n] = "["
      for i = 1, v.n do
        if i > 1 then
          n = n + 1
          out[n] = ","
        end
        n = encode(v[i], out, n)
      end
      n = n + 1
      out[n] = "]"
    elseif mt == Map then
      n = n + 1
      out[n] = "{"
      for i, k in ipairs(v.keys) do
        n = n + 1
        out[n] = (i > 1 and "," or "") .. M.quote(k) .. ":"
        n = encode(v.vals[k], out, n)
      end
      n = n + 1
      out[n] = "}"
    else
      n = n + 1
      out[n] = M.quote(tostring(v))
    end
  end
  return n
end

function M.encode(v)
  local out = {}
  local n = encode(v, out, 0)
  return concat(out, "", 1, n)
end

---------------------------------------------------------------------------
-- JSONPath: $, .name, ['name'], ["name"], [n] (n < 0 from the end), [*], .*, ..name
---------------------------------------------------------------------------

-- Steps of path, or nil and why. A step is { "child", name } | { "index", n } |
-- { "all" } | { "deep", name }.
function M.compile(path)
  if type(path) ~= "string" then
    return nil, "a JSONPath must be a string"
  end
  local steps = {}
  local i, n = 1, #path
  if sub(path, 1, 1) == "$" then
    i = 2
  elseif n > 0 and sub(path, 1, 1) ~= "." and sub(path, 1, 1) ~= "[" then
    path = "." .. path -- method.request.body.a.b: the "$." is left out
    n = #path
  end
  while i <= n do
    local c = sub(path, i, i)
    if c == "." then
      if sub(path, i + 1, i + 1) == "." then
        local name = match(path, "^[%w_$-]+", i + 2)
        if not name then
          return nil, format("expected a member name after '..' at character %d", i + 2)
        end
        steps[#steps + 1] = { "deep", name }
        i = i + 2 + #name
      elseif sub(path, i + 1, i + 1) == "*" then
        steps[#steps + 1] = { "all" }
        i = i + 2
      else
        local name = match(path, "^[^%.%[%]%s]+", i + 1)
        if not name then
          return nil, format("expected a member name at character %d", i + 1)
        end
        steps[#steps + 1] = { "child", name }
        i = i + 1 + #name
      end
    elseif c == "[" then
      local q = sub(path, i + 1, i + 1)
      if q == "'" or q == '"' then
        local e = find(path, q .. "]", i + 2, true)
        if not e then
          return nil, format("unterminated [%s...%s] at character %d", q, q, i)
        end
        steps[#steps + 1] = { "child", sub(path, i + 2, e - 1) }
        i = e + 2
      elseif sub(path, i, i + 2) == "[*]" then
        steps[#steps + 1] = { "all" }
        i = i + 3
      else
        local num = match(path, "^%s*(-?%d+)%s*%]", i + 1)
        if not num then
          return nil, format("expected an index, '*' or a quoted name in [] at character %d", i)
        end
        steps[#steps + 1] = { "index", tonumber(num) }
        i = find(path, "]", i, true) + 1
      end
    else
      return nil, format("unexpected %q at character %d", c, i)
    end
  end
  return steps
end

local function deep(v, name, out)
  tick()
  local mt = getmetatable(v)
  if mt == Map then
    for _, k in ipairs(v.keys) do
      if k == name then
        out[#out + 1] = v.vals[k]
      end
      deep(v.vals[k], name, out)
    end
  elseif mt == List then
    for i = 1, v.n do
      deep(v[i], name, out)
    end
  end
end

-- Applies steps to the values of nodes (a Lua array), returning the new nodes.
local function step(nodes, s)
  local out = {}
  local kind = s[1]
  for _, v in ipairs(nodes) do
    tick()
    local mt = getmetatable(v)
    if kind == "child" then
      if mt == Map and v.vals[s[2]] ~= nil then
        out[#out + 1] = v.vals[s[2]]
      end
    elseif kind == "index" then
      if mt == List then
        local k = s[2] < 0 and v.n + s[2] + 1 or s[2] + 1
        if k >= 1 and k <= v.n then
          out[#out + 1] = v[k]
        end
      end
    elseif kind == "all" then
      if mt == List then
        for k = 1, v.n do
          out[#out + 1] = v[k]
        end
      elseif mt == Map then
        for _, k in ipairs(v.keys) do
          out[#out + 1] = v.vals[k]
        end
      end
    else
      deep(v, s[2], out)
    end
  end
  return out
end

-- What steps find in root: the value (nil when a definite path finds nothing), or a list
-- when the path has [*] or .. (Jayway's JsonPath: an indefinite path answers a list).
function M.query(root, steps)
  local nodes = { root }
  local definite = true
  for _, s in ipairs(steps) do
    if s[1] == "all" or s[1] == "deep" then
      definite = false
    end
    nodes = step(nodes, s)
  end
  if definite then
    return nodes[1]
  end
  return M.list(nodes, #nodes)
end

return M
