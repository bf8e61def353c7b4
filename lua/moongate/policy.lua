-- moongate.policy: loading policy modules the way the runtime runs them, and the
-- instruction budget that stops a hook that never ends.
--
--   local mod, err = policy.load("policies/waf/ip_set.lua", { prefix = "." })
--   local conf, errs = policy.check_conf(mod, raw_conf, "apis.a.authorizers.x.config", source)
--   local ok, r1, r2 = policy.run(budget, mod.inspect, req, conf)
--
-- The budget. LuaJIT does not call count hooks from compiled code, so a hot
-- `while true do end` would never be stopped by debug.sethook. Instead a policy's
-- source is instrumented when it is loaded: a call to a budget tick is inserted
-- at every loop body, at every function entry and before every goto, on the same
-- line (line numbers in errors do not change). The tick is an upvalue that
-- decrements a counter; the JIT inlines it into traces, where it costs a
-- decrement and a guard. When the counter goes below zero the tick raises
-- "instruction budget exceeded" at the policy's line. Outside policy.run the
-- counter is infinite, so helpers can be called directly from specs.

local type, error, pcall, select, setmetatable, setfenv = type, error, pcall, select, setmetatable, setfenv
local tostring, pairs, ipairs, next, unpack = tostring, pairs, ipairs, next, unpack
local loadstring = loadstring
local io_open = io.open
local byte, sub, find, format, match, rep, gsub = string.byte, string.sub, string.find,
  string.format, string.match, string.rep, string.gsub
local concat, sort = table.concat, table.sort
local huge, floor = math.huge, math.floor

local M = {}

-- Steps (loop iterations and function calls of policy code) one hook call may take.
M.default_budget = 1000000
M.BUDGET_EXCEEDED = "instruction budget exceeded"
local TICK = "__mgw_budget_tick"

---------------------------------------------------------------------------
-- The budget counter
---------------------------------------------------------------------------

local left = huge
local exceeded = false

local function budget_error()
  exceeded = true
  error(M.BUDGET_EXCEEDED, 3) -- level 3: the policy line that ticked
end

local function tick()
  left = left - 1
  if left < 0 then
    budget_error()
  end
end
M.tick = tick

-- Sets the steps left (math.huge: unlimited) and returns what was left before,
-- so that a caller suspending a hook can save and restore its budget.
function M.set_budget(n)
  local before = left
  left = n
  exceeded = false
  return before
end

function M.budget_left()
  return left
end

function M.exceeded()
  return exceeded
end

local function pack(...)
  return { n = select("#", ...), ... }
end

-- pcall/xpcall for policies: they must not swallow the budget error, or a loop
-- around pcall would run forever.
local function policy_pcall(...)
  local r = pack(pcall(...))
  if exceeded then
    error(M.BUDGET_EXCEEDED, 0)
  end
  return unpack(r, 1, r.n)
end

local function policy_xpcall(f, handler, ...)
  local r = pack(xpcall(f, handler, ...))
  if exceeded then
    error(M.BUDGET_EXCEEDED, 0)
  end
  return unpack(r, 1, r.n)
end

-- Runs fn(...) with a budget of n steps. Returns pcall's results.
function M.run(n, fn, ...)
  local saved = left
  left, exceeded = n, false
  local r = pack(pcall(fn, ...))
  left = saved
  return unpack(r, 1, r.n)
end

---------------------------------------------------------------------------
-- Instrumentation
---------------------------------------------------------------------------

local KEYWORDS = {
  ["and"] = true, ["break"] = true, ["do"] = true, ["else"] = true, ["elseif"] = true,
  ["end"] = true, ["false"] = true, ["for"] = true, ["function"] = true, ["goto"] = true,
  ["if"] = true, ["in"] = true, ["local"] = true, ["nil"] = true, ["not"] = true,
  ["or"] = true, ["repeat"] = true, ["return"] = true, ["then"] = true, ["true"] = true,
  ["until"] = true, ["while"] = true,
}

-- End of a long bracket "[==[" starting at i (the first "["), or nil when i does
-- not start one. Returns the index of the last character of the closing bracket.
local function long_bracket_end(s, i)
  local eq = match(s, "^%[(=*)%[", i)
  if not eq then
    return nil
  end
  local _, e = find(s, "]" .. eq .. "]", i + #eq + 2, true)
  return e or #s
end

-- End of a quoted string starting at i (the quote).
local function quoted_end(s, i)
  local q = byte(s, i)
  local j = i + 1
  local n = #s
  while j <= n do
    local c = byte(s, j)
    if c == 92 then -- backslash: skip the escaped character
      j = j + 2
    elseif c == q then
      return j
    elseif c == 10 then
      return j -- unfinished string; loadstring already rejected it
    else
      j = j + 1
    end
  end
  return n
end

local TICK_CALL = " " .. TICK .. "();"

-- Appends s[last..i] and a tick to out; the new last.
local function insert_after(out, s, last, i)
  out[#out + 1] = sub(s, last, i)
  out[#out + 1] = TICK_CALL
  return i + 1
end

-- Returns source with budget ticks inserted (see the top of this file). The source
-- must already compile: this is a tokenizer with a block stack, not a parser. No
-- closure in it: a closure's upvalues make the function's return a UCLO, which LuaJIT
-- does not compile, and a trace of the scanning loop that ran into it aborted (the JIT
-- audit, MOONGATE_JIT_AUDIT, logged it when a policy loaded).
function M.instrument(s)
  local out, last = {}, 1
  local stack, top = {}, 0
  local i, n = 1, #s
  while i <= n do
    local c = sub(s, i, i)
    if find(c, "^[%a_]") then
      local _, e = find(s, "^[%w_]+", i)
      local word = sub(s, i, e)
      if KEYWORDS[word] then
        if word == "function" then
          top = top + 1
          stack[top] = "params"
        elseif word == "while" or word == "for" then
          top = top + 1
          stack[top] = "header"
        elseif word == "do" then
          if stack[top] == "header" then
            stack[top] = "block"
            last = insert_after(out, s, last, e)
          else
            top = top + 1
            stack[top] = "block"
          end
        elseif word == "if" then
          top = top + 1
          stack[top] = "block"
        elseif word == "repeat" then
          top = top + 1
          stack[top] = "repeat"
          last = insert_after(out, s, last, e)
        elseif word == "end" or word == "until" then
          stack[top] = nil
          top = top - 1
        elseif word == "goto" then
          out[#out + 1] = sub(s, last, i - 1)
          out[#out + 1] = TICK .. "(); "
          last = i
        end
      end
      i = e + 1
    elseif c == "-" and sub(s, i + 1, i + 1) == "-" then
      local e = long_bracket_end(s, i + 2)
      if not e then
        e = find(s, "\n", i + 2, true) or n
      end
      i = e + 1
    elseif c == "[" then
      i = (long_bracket_end(s, i) or i) + 1
    elseif c == '"' or c == "'" then
      i = quoted_end(s, i) + 1
    elseif find(c, "^%d") or (c == "." and find(s, "^%.%d", i)) then
      -- numbers, including 1e-5, 0x1p4 and 1.5LL: exponent signs belong to them
      local _, e = find(s, "^[%w_%.]*", i)
      while find(s, "^[eEpP][%+%-]", e) and find(s, "^[%+%-][%w%.]", e + 1) do
        _, e = find(s, "^[%w_%.]*", e + 2)
      end
      i = e + 1
    elseif c == ")" then
      if stack[top] == "params" then
        stack[top] = "block"
        last = insert_after(out, s, last, i)
      end
      i = i + 1
    else
      i = i + 1
    end
  end
  out[#out + 1] = sub(s, last)
  return concat(out)
end

---------------------------------------------------------------------------
-- Loading
---------------------------------------------------------------------------

local function read_file(path)
  local f, err = io_open(path, "rb")
  if not f then
    return nil, err
  end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

-- The environment of a policy chunk: its own table (globals it sets stay its
-- own), reading through to the real globals, with the budget-safe pcall/xpcall.
local function policy_env()
  return setmetatable({ [TICK] = tick, pcall = policy_pcall, xpcall = policy_xpcall },
    { __index = _G })
end

-- Compiles source (the text of the file named name, as the configuration writes
-- it) into an instrumented chunk. Returns the function or nil and the error.
function M.compile(source, name)
  if byte(source, 1) == 27 then
    return nil, name .. ": precompiled bytecode is not accepted"
  end
  -- Syntax errors are reported against the source as written.
  local ok, err = loadstring(source, "@" .. name)
  if not ok then
    return nil, err
  end
  local fn, err2 = loadstring("local " .. TICK .. " = " .. TICK .. "; " .. M.instrument(source), "@" .. name)
  if not fn then
    return nil, err2
  end
  setfenv(fn, policy_env())
  return fn
end

-- Steps a module's top-level code may take when it is loaded.
M.load_budget = 10000000

-- Runs a compiled chunk and checks that it returns a table of hooks.
function M.instantiate(fn, name)
  local ok, mod = M.run(M.load_budget, fn, name)
  if not ok then
    return nil, tostring(mod)
  end
  if type(mod) ~= "table" then
    return nil, format("%s: a policy must return a table of hook functions, got %s", name, type(mod))
  end
  return mod
end

-- Loads the policy whose source is given (or read from path). name is how
-- errors and tracebacks name the file. Returns the module table or nil, err.
function M.load_source(source, name)
  local fn, err = M.compile(source, name)
  if not fn then
    return nil, err
  end
  return M.instantiate(fn, name)
end

function M.load(path, name)
  local source, err = read_file(path)
  if not source then
    return nil, format("cannot read %s: %s", name or path, tostring(err))
  end
  return M.load_source(source, name or path)
end

-- Names of the modules M.searcher loaded (they are dropped from package.loaded
-- when the next generation loads, so that it sees their new versions).
M.loaded_names = {}

-- Forgets the modules policies required: the next `require` loads them afresh.
-- Policies already loaded keep the module they got.
function M.forget_required()
  for name in pairs(M.loaded_names) do
    package.loaded[name] = nil
  end
  M.loaded_names = {}
end

-- A package loader for modules found on `dirs` (policies/ and the configured
-- extra directories): `require "waf.lib"` from a policy is instrumented too.
function M.searcher(dirs)
  return function(modname)
    local rel = gsub(modname, "%.", "/")
    local tried = {}
    for _, dir in ipairs(dirs) do
      for _, pat in ipairs({ "%s/%s.lua", "%s/%s/init.lua" }) do
        local path = format(pat, dir, rel)
        local source = read_file(path)
        if source then
          local fn, err = M.compile(source, path)
          if not fn then
            error(err, 0)
          end
          M.loaded_names[modname] = true
          return fn
        end
        tried[#tried + 1] = "\n\tno file '" .. path .. "'"
      end
    end
    return concat(tried)
  end
end

-- Installs M.searcher(dirs) in front of the standard Lua file searcher.
function M.install_searcher(dirs)
  local loaders = package.loaders
  for i = #loaders, 1, -1 do
    if loaders[i] == M._installed then
      table.remove(loaders, i)
    end
  end
  M._installed = M.searcher(dirs)
  table.insert(loaders, 2, M._installed)
end

---------------------------------------------------------------------------
-- Configuration of a policy use
---------------------------------------------------------------------------

-- The hook function a use needs, by use kind.
M.HOOKS = {
  authorizer = "authorize", waf = "inspect", log = "log", route_selection = "select_route",
  integration = "handle", revocation = "check", transform = "transform",
}

-- Validates conf against mod.schema (the same schema language as the gateway
-- configuration, see moongate.config). path names conf in messages, source the
-- file, name the policy file (a mistake in its schema is reported as
-- "NAME: schema.fields.x: ..."). Returns the normalized conf, or nil and a list of
-- errors.
function M.check_conf(mod, conf, path, source, name)
  name = name or "the policy"
  if mod.schema == nil then
    return conf == nil and {} or conf
  end
  if type(mod.schema) ~= "table" then
    return nil, { format("%s: schema: must be a table, got %s", name, type(mod.schema)) }
  end
  local config = require "moongate.config"
  return config.check(mod.schema, conf, path, source, name)
end

-- Runs the optional prepare(conf) of a module: its result is what the hooks get
-- as conf (precompiled patterns, parsed CIDRs). Returns the value or nil, err.
function M.prepare(mod, conf)
  if type(mod.prepare) ~= "function" then
    return conf
  end
  local ok, v = M.run(M.load_budget, mod.prepare, conf)
  if not ok then
    return nil, tostring(v)
  end
  if v == nil then
    return nil, "prepare(conf) returned nothing"
  end
  return v
end

---------------------------------------------------------------------------
-- Serialization of plain values (configurations travel to the workers as text)
---------------------------------------------------------------------------

-- n as text: an integer (within 2^53) without a decimal point or an exponent.
local function integer_text(n)
  if n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
    return format("%d", n)
  end
end

-- A number as messages and $context show it (integers as integers).
function M.number_text(n)
  return integer_text(n) or tostring(n)
end

local function serialize(v, out, seen)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = format("%q", v)
  elseif t == "number" then
    if v ~= v then
      out[#out + 1] = "0/0"
    elseif v == huge then
      out[#out + 1] = "1/0"
    elseif v == -huge then
      out[#out + 1] = "-1/0"
    else
      out[#out + 1] = integer_text(v) or format("%.17g", v) -- reads back exactly
    end
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    if seen[v] then
      return nil, "a table that contains itself"
    end
    seen[v] = true
    local keys = {}
    for k in pairs(v) do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
        return nil, "a " .. kt .. " key"
      end
      keys[#keys + 1] = k
    end
    sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then
        return ta < tb
      end
      if ta == "boolean" then
        return (a and 1 or 0) < (b and 1 or 0)
      end
      return a < b
    end)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      out[#out + 1] = "["
      serialize(k, out, seen)
      out[#out + 1] = "]="
      local ok, err = serialize(v[k], out, seen)
      if ok == nil then
        return nil, err
      end
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
    seen[v] = nil
  else
    return nil, "a " .. t
  end
  return true
end

-- Lua source for a plain value (strings, numbers, booleans, tables of them), or
-- nil and what could not be serialized.
function M.serialize(v)
  local out = {}
  local ok, err = serialize(v, out, {})
  if not ok then
    return nil, err
  end
  return concat(out)
end

-- The value serialized by M.serialize, evaluated in an empty environment.
function M.deserialize(s)
  local fn, err = loadstring("return " .. s, "=spec")
  if not fn then
    return nil, err
  end
  setfenv(fn, {})
  return fn()
end

return M
