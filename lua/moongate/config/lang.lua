-- moongate.config.lang: the schema language that the gateway configuration
-- (moongate.config.schema) and every policy's `schema` are written in, its walker, and
-- the helpers that word error messages, so that every message names its place in the
-- configuration the same way: `conf/gateway.lua: apis.pets.routes["GET /x"]: reason`.
--
-- Node types: string, integer, number, boolean, record (fixed fields), map (keys +
-- values), list, variant (record chosen by a tag field), custom (own validate
-- function). Optional: required, default, description, check(value, ctx) -> err,
-- normalize(value), post(checked, raw, path, ctx). walk(schema, value, path, ctx)
-- returns the checked value (nil when invalid) and appends every error to ctx.errs;
-- ctx is { source = file named in messages, prefix = directory of relative paths,
-- errs = {}, raw = the whole value as written }.
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local sort, concat = table.sort, table.concat
local format, find, sub, gsub, lower, byte = string.format, string.find, string.sub,
  string.gsub, string.lower, string.byte
local floor, min, huge = math.floor, math.min, math.huge
local policy_lib = require "moongate.policy" -- it requires moongate.config lazily, not at load

local M = {}

---------------------------------------------------------------------------
-- Small pure helpers
---------------------------------------------------------------------------

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- Double-quoted string with C-like escapes, always on one line.
local function quote(s)
  local body = gsub(s, '[%c"\\]', function(c)
    return ESCAPES[c] or format("\\%03d", byte(c))
  end)
  return '"' .. body .. '"'
end

local num = policy_lib.number_text

-- How a value is shown after "got": strings quoted (shortened), numbers as
-- written, tables and functions by their type.
local function show(v)
  local t = type(v)
  if t == "string" then
    if #v > 80 then
      return quote(sub(v, 1, 77)) .. "..."
    end
    return quote(v)
  elseif t == "number" then
    return num(v)
  elseif t == "boolean" or t == "nil" then
    return tostring(v)
  end
  return t
end

local function quoted_list(list)
  local out = {}
  for i, v in ipairs(list) do
    out[i] = quote(v)
  end
  return concat(out, ", ")
end

local function contains(list, v)
  for _, x in ipairs(list) do
    if x == v then
      return true
    end
  end
  return false
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

-- Keys of a table in a deterministic order: numbers, then strings, then the rest.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then
      return (TYPE_ORDER[ta] or 4) < (TYPE_ORDER[tb] or 4)
    end
    if ta == "number" or ta == "string" then
      return a < b
    end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- Config path of `key` below `path`: `a.b`, `a["GET /x"]`, `a[1]`.
local function join(path, key)
  if type(key) == "string" and find(key, "^[A-Za-z_][A-Za-z0-9_]*$") then
    return path == "" and key or path .. "." .. key
  elseif type(key) == "string" then
    return path .. "[" .. quote(key) .. "]"
  elseif type(key) == "number" or type(key) == "boolean" then
    return path .. "[" .. show(key) .. "]"
  end
  return path .. "[" .. type(key) .. "]"
end

local function levenshtein(a, b)
  local prev = {}
  for j = 0, #b do
    prev[j] = j
  end
  for i = 1, #a do
    local cur = { [0] = i }
    local ca = byte(a, i)
    for j = 1, #b do
      local cost = ca == byte(b, j) and 0 or 1
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The candidate closest to `word` (case-insensitive): distance at most 2 (and
-- less than the word's length), or one a prefix of the other (3+ characters).
local function suggest(word, candidates)
  if type(word) ~= "string" or word == "" then
    return nil
  end
  local w = lower(word)
  local best, best_d
  for _, c in ipairs(candidates) do
    local lc = lower(c)
    local d = levenshtein(w, lc)
    local close = d <= 2 and d < #w
    local prefix = (#w >= 3 and sub(lc, 1, #w) == w) or (#lc >= 3 and sub(w, 1, #lc) == lc)
    if (close or prefix) and (best_d == nil or d < best_d) then
      best, best_d = c, d
    end
  end
  return best
end

local function did_you_mean(word, candidates)
  local s = suggest(word, candidates)
  return s and format(" (did you mean %s?)", quote(s)) or ""
end

local function deep_copy(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = deep_copy(x)
  end
  return out
end

local function string_keys(t)
  local out = {}
  if type(t) == "table" then
    for _, k in ipairs(sorted_keys(t)) do
      if type(k) == "string" then
        out[#out + 1] = k
      end
    end
  end
  return out
end

-- Records an error at path (the configuration path, "" for the whole) and returns nil.
local function fail(ctx, path, msg)
  local errs = ctx.errs
  errs[#errs + 1] = path == "" and format("%s: %s", ctx.source, msg)
    or format("%s: %s: %s", ctx.source, path, msg)
  return nil
end

---------------------------------------------------------------------------
-- The walker: walk(schema, value, path, ctx) returns the checked value (nil
-- when invalid) and appends every error to ctx.errs.
---------------------------------------------------------------------------

local kinds = {}

local function walk(s, v, path, ctx)
  if v == nil then
    if s.required then
      return fail(ctx, path, "is required")
    end
    if s.default == nil then
      return nil
    end
    v = deep_copy(s.default)
  end
  local out = kinds[s.type](s, v, path, ctx)
  -- Strings run check(value) among their own checks; every other type runs it here.
  if out ~= nil and s.check and s.type ~= "string" then
    local err = s.check(out, ctx)
    if err then
      return fail(ctx, path, err)
    end
  end
  return out
end

local function field_names(s)
  local names = {}
  for name in pairs(s.fields) do
    names[#names + 1] = name
  end
  sort(names)
  return names
end

local function string_error(s, v, ctx)
  if s.unsupported and s.unsupported[v] then
    return quote(v) .. " is not supported yet"
  end
  if s.one_of and not contains(s.one_of, v) then
    local msg = s.enum_message or ("must be one of " .. quoted_list(s.one_of) .. ", got " .. show(v))
    return msg .. did_you_mean(v, s.one_of)
  end
  if s.non_empty and v == "" then
    return "must not be empty"
  end
  if s.max_len and #v > s.max_len then
    return format("must be at most %d bytes, got %d", s.max_len, #v)
  end
  if s.pattern and not find(v, s.pattern) then
    return s.pattern_message or format("must match the pattern %s, got %s", quote(s.pattern), show(v))
  end
  if s.check then
    return s.check(v, ctx)
  end
end

function kinds.string(s, v, path, ctx)
  if type(v) == "number" and s.numbers then
    v = tostring(v)
  end
  if type(v) ~= "string" then
    return fail(ctx, path, "must be a string, got " .. show(v))
  end
  local err = string_error(s, v, ctx)
  if err then
    return fail(ctx, path, err)
  end
  return s.normalize and s.normalize(v) or v
end

-- Bounds of integer and number nodes, each optional: between = { low, high }, or any
-- of above / at_least (the low end) and at_most. within() says whether v is inside
-- them, bounds_text() words them for a message (" between 1 and 5", or "").
local function within(s, v)
  if s.between then
    return v >= s.between[1] and v <= s.between[2]
  end
  return (s.above == nil or v > s.above) and (s.at_least == nil or v >= s.at_least)
    and (s.at_most == nil or v <= s.at_most)
end

local function bounds_text(s)
  if s.between then
    return format(" between %s and %s", num(s.between[1]), num(s.between[2]))
  end
  local parts = {}
  if s.above then
    parts[#parts + 1] = "greater than " .. num(s.above)
  elseif s.at_least then
    parts[#parts + 1] = "at least " .. num(s.at_least)
  end
  if s.at_most then
    parts[#parts + 1] = "at most " .. num(s.at_most)
  end
  return #parts > 0 and " " .. concat(parts, " and ") or ""
end

-- A finite number: NaN and infinities are no configuration value.
local function finite(v)
  return type(v) == "number" and v == v and v ~= huge and v ~= -huge
end

function kinds.integer(s, v, path, ctx)
  if not finite(v) or v ~= floor(v) or not within(s, v) then
    return fail(ctx, path, format("must be an integer%s, got %s", bounds_text(s), show(v)))
  end
  return v
end

function kinds.number(s, v, path, ctx)
  if not finite(v) or not within(s, v) then
    return fail(ctx, path, format("must be a number%s, got %s", bounds_text(s), show(v)))
  end
  return v
end

function kinds.boolean(_, v, path, ctx)
  if type(v) ~= "boolean" then
    return fail(ctx, path, "must be a boolean, got " .. show(v))
  end
  return v
end

function kinds.custom(s, v, path, ctx)
  local value, err = s.validate(v)
  if err then
    return fail(ctx, path, err)
  end
  return value
end

-- A record field of s that has a field named k: "otlp.sample_ratio" for tracing's
-- sample_ratio, the key written one level too high.
local function nested_field(s, k, names)
  for _, name in ipairs(names) do
    local f = s.fields[name]
    if type(f) == "table" and f.type == "record" and f.fields[k] ~= nil then
      return name .. "." .. k
    end
  end
end

function kinds.record(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local names = field_names(s)
  for _, k in ipairs(sorted_keys(v)) do
    if type(k) ~= "string" or s.fields[k] == nil then
      local hint = did_you_mean(k, names)
      local nested = hint == "" and type(k) == "string" and nested_field(s, k, names)
      if nested then
        hint = format(" (did you mean %s?)", quote(nested))
      end
      fail(ctx, join(path, k), "unknown key" .. hint)
    end
  end
  local out = {}
  for _, name in ipairs(names) do
    out[name] = walk(s.fields[name], v[name], join(path, name), ctx)
  end
  if s.post then
    s.post(out, v, path, ctx)
  end
  return out
end

function kinds.map(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local keys = sorted_keys(v)
  if s.non_empty and #keys == 0 then
    return fail(ctx, path, "must not be empty")
  end
  if s.max_entries and #keys > s.max_entries then
    fail(ctx, path, format("must have at most %d entries, got %d", s.max_entries, #keys))
  end
  local out, first = {}, {}
  for _, k in ipairs(keys) do
    local kpath = join(path, k)
    local nk
    if type(k) ~= "string" then
      fail(ctx, kpath, "key must be a string, got " .. show(k))
    elseif s.keys then
      nk = walk(s.keys, k, kpath, ctx)
    else
      nk = k
    end
    if nk ~= nil and first[nk] then
      fail(ctx, kpath, format("duplicate %s (same as %s)", s.keys.duplicate or "key", quote(first[nk])))
      nk = nil
    end
    local nv = v[k]
    if s.values then
      nv = walk(s.values, nv, kpath, ctx)
    end
    if nk ~= nil then
      first[nk] = k
      out[nk] = nv
    end
  end
  if s.post then
    s.post(out, v, path, ctx)
  end
  return out
end

function kinds.list(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local keys = sorted_keys(v)
  for _, k in ipairs(keys) do
    if type(k) ~= "number" or k < 1 or k > #keys or k ~= floor(k) then
      return fail(ctx, path, "must be a list, found key " .. show(k))
    end
  end
  if s.non_empty and #keys == 0 then
    return fail(ctx, path, "must not be empty")
  end
  if s.max_entries and #keys > s.max_entries then
    fail(ctx, path, format("must have at most %d entries, got %d", s.max_entries, #keys))
  end
  local out = {}
  for i = 1, #keys do
    local x = v[i]
    if s.elements then
      x = walk(s.elements, x, join(path, i), ctx)
    end
    if x == nil then
      x = false -- keep positions: false marks an invalid element
    end
    out[i] = x
  end
  if s.post then
    s.post(out, v, path, ctx)
  end
  return out
end

function kinds.variant(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local tag, tpath = v[s.tag], join(path, s.tag)
  local names = sorted_keys(s.variants)
  if tag == nil then
    return fail(ctx, tpath, "is required")
  elseif type(tag) ~= "string" then
    return fail(ctx, tpath, "must be a string, got " .. show(tag))
  elseif s.unsupported and s.unsupported[tag] then
    return fail(ctx, tpath, quote(tag) .. " is not supported yet")
  elseif not s.variants[tag] then
    return fail(ctx, tpath, "must be one of " .. quoted_list(names) .. ", got " .. show(tag)
      .. did_you_mean(tag, names))
  end
  return walk(s.variants[tag], v, path, ctx)
end

M.quote, M.show, M.quoted_list, M.contains = quote, show, quoted_list, contains
M.sorted_keys, M.string_keys, M.join, M.did_you_mean = sorted_keys, string_keys, join, did_you_mean
M.deep_copy, M.num, M.finite = deep_copy, num, finite
M.fail, M.walk = fail, walk

return M
