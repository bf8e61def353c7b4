-- moongate.config: loads the gateway configuration file, validates it and
-- returns the normalized table that the C runtime reads.
--
--   local conf, errs = config.load(path, prefix)
--   local conf, errs = config.validate(tbl, { source = "conf/x.lua", prefix = "." })
--
-- The configuration is checked in three steps:
--   1. a declarative schema (every field has a description) walked by one
--      generic walker: types, ranges, enums, unknown keys with "did you mean";
--   2. reference checks that need more than one field (routes against stages,
--      listeners against APIs), attached to schema nodes as `post` functions;
--   3. shaping into the normalized form: maps become lists sorted by key, so
--      the C side sees a deterministic order.
-- Every error is collected; nothing stops at the first one.
--
-- This module evaluates the file in a sandbox and ties the steps together; the steps
-- live in lua/moongate/config/:
--   lang.lua      the schema language, its walker and the wording of every message
--   values.lua    checks of single values (addresses, route keys, URLs, files...)
--   schema.lua    the configuration schema
--   checks.lua    the checks across fields (the schema's `post` functions)
--   policies.lua  loading the Lua policies a configuration names
--   meta.lua      policy schemas checked against the language itself; config.check
--   shape.lua     the normalized table handed to C (runtime/conf/config.c)
local type, ipairs, tostring = type, ipairs, tostring
local pcall, error, select, setfenv, setmetatable = pcall, error, select, setfenv, setmetatable
local loadfile, unpack = loadfile, unpack
local sort = table.sort
local format, find = string.format, string.find
local debug_sethook, debug_gethook = debug.sethook, debug.gethook
local jit = rawget(_G, "jit")
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local meta = require "moongate.config.meta"
local shape = require "moongate.config.shape"
local schema = require "moongate.config.schema"
local show, deep_copy, walk = lang.show, lang.deep_copy, lang.walk

local M = {}

-- Instructions a configuration chunk may execute before it is stopped.
M.instruction_budget = 1e8
local HOOK_STEP = 1000
local BUDGET_EXCEEDED = "configuration did not finish (instruction budget exceeded)"

-- The configuration schema (moongate.config.schema).
M.schema = schema

-- Policy schemas (moongate.config.meta): M.check_schema(schema, name) and
-- M.check(schema, value, path, source, name).
M.check_schema, M.check = meta.check_schema, meta.check

-- Validates a configuration table. opts.source names it in errors (default
-- "config"); opts.prefix is the directory relative file paths are resolved
-- against (default "."). Returns the normalized table, or nil and the sorted
-- list of every error.
function M.validate(tbl, opts)
  opts = opts or {}
  local ctx = { source = opts.source or "config", prefix = opts.prefix or ".", errs = {}, raw = tbl }
  if type(tbl) ~= "table" then
    return nil, { format("%s: must be a table, got %s", ctx.source, type(tbl)) }
  end
  local checked = walk(M.schema, tbl, "", ctx)
  if #ctx.errs > 0 then
    -- sorted, each once: a policy used twice reports a mistake in its schema once
    sort(ctx.errs)
    local errs = {}
    for i, e in ipairs(ctx.errs) do
      if e ~= ctx.errs[i - 1] then
        errs[#errs + 1] = e
      end
    end
    return nil, errs
  end
  local out = shape.config(checked, ctx.prefix, ctx)
  shape.policies(out, checked, ctx)
  return out
end

local SANDBOX_LIBS = { "string", "table", "math" }
local SANDBOX_FUNCTIONS = {
  "pairs", "ipairs", "next", "select", "type", "tostring", "tonumber", "error", "assert", "unpack",
}

-- Globals a configuration might reach for; naming them gives a clear error
-- instead of "attempt to index a nil value".
local FORBIDDEN = {
  io = true, os = true, require = true, load = true, loadstring = true, loadfile = true,
  dofile = true, setfenv = true, getfenv = true, rawset = true, rawget = true, rawequal = true,
  setmetatable = true, getmetatable = true, debug = true, jit = true, ffi = true,
  package = true, module = true, collectgarbage = true, newproxy = true, coroutine = true,
  xpcall = true, print = true, _G = true, bit = true,
}

local function pack(...)
  return { n = select("#", ...), ... }
end

local function sandbox_env(state)
  local env = {}
  for _, name in ipairs(SANDBOX_LIBS) do
    env[name] = deep_copy(_G[name])
  end
  env.string.dump = nil
  for _, name in ipairs(SANDBOX_FUNCTIONS) do
    env[name] = _G[name]
  end
  -- pcall must not swallow the budget error, or a loop around pcall runs forever.
  env.pcall = function(...)
    local r = pack(pcall(...))
    if state.exceeded then
      error(BUDGET_EXCEEDED, 0)
    end
    return unpack(r, 1, r.n)
  end
  return setmetatable(env, {
    __index = function(_, name)
      if FORBIDDEN[name] then
        error(format("%s is not available in the configuration sandbox", tostring(name)), 2)
      end
    end,
  })
end

-- Runs chunk under the instruction budget. Returns ok, result-or-error.
local function run_budgeted(chunk, budget, state)
  if jit then
    jit.off(chunk, true) -- compiled traces never call the count hook
  end
  local left = budget
  local old_hook, old_mask, old_count = debug_gethook()
  debug_sethook(function()
    left = left - HOOK_STEP
    if left <= 0 then
      state.exceeded = true
      error(BUDGET_EXCEEDED, 0)
    end
  end, "", HOOK_STEP)
  local ok, result = pcall(chunk)
  if old_hook then
    debug_sethook(old_hook, old_mask, old_count)
  else
    debug_sethook()
  end
  return ok, result
end

-- Evaluates the configuration file at `path` in the sandbox. Returns its table, or
-- nil and a list with the error.
local function evaluate(path)
  local chunk, err = loadfile(path, "t") -- "t": precompiled bytecode could escape the sandbox
  if not chunk then
    if not find(err, path, 1, true) then
      err = format("%s: %s", path, err) -- e.g. "attempt to load chunk with wrong mode"
    end
    return nil, { err }
  end
  local state = { exceeded = false }
  setfenv(chunk, sandbox_env(state))
  local ok, result = run_budgeted(chunk, M.instruction_budget, state)
  if state.exceeded then
    return nil, { format("%s: %s", path, BUDGET_EXCEEDED) }
  elseif not ok then
    return nil, { type(result) == "string" and result or format("%s: error: %s", path, show(result)) }
  elseif type(result) ~= "table" then
    return nil, { format("%s: must return a table, got %s", path, type(result)) }
  end
  return result
end

-- Loads the configuration file at `path` in a sandbox and validates it.
-- `prefix` is the directory relative file paths are resolved against
-- (default "."). Returns the normalized table, or nil and a list of errors.
function M.load(path, prefix)
  local result, errs = evaluate(path)
  if not result then
    return nil, errs
  end
  return M.validate(result, { source = path, prefix = prefix })
end

-- The management listener of the configuration file at `path` (what `moongate
-- reload` talks to): address, port, token file (relative paths resolved against
-- prefix) and whether that is the generated default, or nil and why there is none.
function M.management(path, prefix)
  local result, errs = evaluate(path)
  if not result then
    return nil, errs[1]
  end
  local m = result.management
  if type(m) ~= "table" or type(m.port) ~= "number" then
    return nil, format("%s: no management listener: set management = { port = N } (or send the "
      .. "running gateway SIGHUP)", path)
  end
  local token_file, generated = shape.management_token_file(m, result.state_dir, prefix or ".")
  return type(m.address) == "string" and m.address or "127.0.0.1", m.port, token_file, generated
end

-- Exposed for specs and for tools that want to explain route keys.
M.parse_route_key = values.parse_route_key

return M
