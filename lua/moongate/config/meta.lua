-- moongate.config.meta: policy schemas. A policy's `schema` is written in the
-- schema language (moongate.config.lang); before it validates anything it is itself
-- checked against SCHEMA_NODE (the same language), so that a mistake in it reads
-- "policies/x.lua: schema.fields.n.between: ..." and never surfaces as a Lua error
-- inside the walker. Bounds, keys, values and elements are optional; what a node type
-- does not know is an unknown key.
--
--   meta.check_schema(schema, name)               -> nil, or the list of errors
--   meta.check(schema, value, path, source, name) -> the normalized value, or nil, errs
local type, pairs, ipairs, tostring, pcall, setmetatable = type, pairs, ipairs, tostring, pcall,
  setmetatable
local sort = table.sort
local format, find, sub = string.format, string.find, string.sub
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local quote, show, num, join, fail, walk = lang.quote, lang.show, lang.num, lang.join, lang.fail,
  lang.walk
local sorted_keys, deep_copy, finite = lang.sorted_keys, lang.deep_copy, lang.finite
local lua_pattern_error = values.lua_pattern_error

local M = {}

local function function_node(description)
  return {
    type = "custom", description = description,
    validate = function(v)
      if type(v) ~= "function" then
        return nil, "must be a function, got " .. show(v)
      end
      return v
    end,
  }
end

local any_value = {
  type = "custom", description = "any value",
  validate = function(v)
    return v
  end,
}

local SCHEMA_NODE = {
  type = "variant", tag = "type", description = "a schema node", variants = {},
}

local function list_of_two_numbers(v)
  local n = 0
  for _ in pairs(type(v) == "table" and v or {}) do
    n = n + 1
  end
  if n ~= 2 or not finite(v[1]) or not finite(v[2]) then
    return nil, "must be a list of two numbers { low, high }, got " .. (type(v) == "table" and "another table" or show(v))
  end
  if v[1] > v[2] then
    return nil, format("must be { low, high } with low <= high, got { %s, %s }", num(v[1]), num(v[2]))
  end
  return v
end

-- between excludes the other bounds; above and at_least exclude each other.
local function check_bounds(c, _, path, ctx)
  if c.between and (c.above or c.at_least or c.at_most) then
    fail(ctx, path, "between cannot be combined with above, at_least or at_most")
  elseif c.above and c.at_least then
    fail(ctx, path, "above and at_least cannot be combined")
  elseif c.at_most and (c.above or c.at_least) and (c.above or c.at_least) > c.at_most then
    fail(ctx, path, format("the low bound %s is above at_most %s", num(c.above or c.at_least), num(c.at_most)))
  end
end

-- A node's default must itself pass the node; checked after the walk (ctx.deferred),
-- for nodes with no error of their own inside, since walking a broken node is exactly
-- what this section prevents.
local function check_default(_, v, path, ctx)
  if v.default ~= nil then
    ctx.deferred[#ctx.deferred + 1] = function()
      local prefix = format("%s: %s", ctx.source, path)
      for _, e in ipairs(ctx.errs) do
        if sub(e, 1, #prefix) == prefix and find(sub(e, #prefix + 1, #prefix + 1), "^[%.%[:]") then
          return
        end
      end
      local dpath = join(path, "default")
      local ok, err = pcall(walk, v, deep_copy(v.default), dpath, ctx)
      if not ok then
        fail(ctx, dpath, "the schema raised an error checking it: " .. tostring(err))
      end
    end
  end
end

local function node_type(name, extra, post)
  local fields = {
    type = { type = "string", description = "the node type" },
    description = { type = "string", description = "what the value means" },
    required = { type = "boolean", description = "the value must be present" },
    default = any_value,
    check = function_node("check(value) returns an error message, or nil when the value is good"),
  }
  for k, v in pairs(extra) do
    fields[k] = v
  end
  SCHEMA_NODE.variants[name] = {
    type = "record", description = "a " .. name .. " node", fields = fields,
    post = function(c, v, path, ctx)
      if post then
        post(c, v, path, ctx)
      end
      check_default(c, v, path, ctx)
    end,
  }
end

local bound = { type = "number", description = "a bound (inclusive unless above)" }
local numeric = {
  between = { type = "custom", description = "{ low, high }, both inclusive", validate = list_of_two_numbers },
  above = bound, at_least = bound, at_most = bound,
}
local flag = { type = "boolean", description = "a flag" }
local count = { type = "integer", at_least = 0, description = "a count" }

node_type("boolean", {})
node_type("integer", numeric, check_bounds)
node_type("number", numeric, check_bounds)
node_type("string", {
  one_of = { type = "list", non_empty = true, elements = { type = "string", description = "an allowed value" },
    description = "the allowed values" },
  pattern = { type = "string", check = lua_pattern_error, description = "a Lua pattern the value must match" },
  pattern_message = { type = "string", description = "the message when the pattern does not match" },
  non_empty = flag,
  max_len = count,
  normalize = function_node("normalize(value) returns the value to keep"),
})
node_type("record", {
  fields = {
    type = "map", required = true, description = "the fields by name",
    keys = { type = "string", description = "a field name" }, values = SCHEMA_NODE,
  },
})
node_type("map", { keys = SCHEMA_NODE, values = SCHEMA_NODE, non_empty = flag, max_entries = count },
  function(c, _, path, ctx)
    if c.keys and c.keys.type ~= "string" then
      fail(ctx, join(join(path, "keys"), "type"), 'must be "string": map keys are strings, got ' .. show(c.keys.type))
    end
  end)
node_type("list", { elements = SCHEMA_NODE, non_empty = flag, max_entries = count })
node_type("variant", {
  tag = { type = "string", required = true, non_empty = true, description = "the field that picks the variant" },
  variants = {
    type = "map", required = true, non_empty = true, description = "a record node by tag value",
    keys = { type = "string", description = "a tag value" }, values = SCHEMA_NODE,
  },
}, function(c, _, path, ctx)
  for _, name in ipairs(sorted_keys(c.variants or {})) do
    local vnode = c.variants[name]
    local vpath = join(join(path, "variants"), name)
    if vnode and vnode.type ~= "record" then
      fail(ctx, join(vpath, "type"), 'must be "record": a variant is a record, got ' .. show(vnode.type))
    elseif vnode and c.tag and vnode.fields and vnode.fields[c.tag] == nil then
      fail(ctx, join(vpath, "fields"), format("must have the tag field %s", quote(c.tag)))
    end
  end
end)
node_type("custom", { validate = function_node("validate(value) returns the value, or nil and a message") })
SCHEMA_NODE.variants.custom.fields.validate.required = true

-- The path of a table that contains itself (a schema must be a tree), or nil.
local function find_cycle(t, path, open)
  open[t] = true
  for _, k in ipairs(sorted_keys(t)) do
    local v = t[k]
    if type(v) == "table" then
      local p = join(path, k)
      if open[v] then
        return p
      end
      local found = find_cycle(v, p, open)
      if found then
        return found
      end
    end
  end
  open[t] = nil
end

local schema_errors = setmetatable({}, { __mode = "k" })

-- Checks a policy's schema; name is the policy file as configured. Returns nil, or the
-- list of errors, each "NAME: schema.PATH: reason". Cached per schema table.
function M.check_schema(schema, name)
  local cached = schema_errors[schema]
  if cached == nil then
    local ctx = { source = name, prefix = ".", errs = {}, raw = {}, deferred = {} }
    local cycle = type(schema) == "table" and find_cycle(schema, "schema", {})
    if cycle then
      fail(ctx, cycle, "contains itself (a schema is a tree of tables)")
    else
      walk(SCHEMA_NODE, schema, "schema", ctx)
      for _, fn in ipairs(ctx.deferred) do
        fn()
      end
    end
    sort(ctx.errs)
    cached = #ctx.errs > 0 and ctx.errs or false
    if type(schema) == "table" then
      schema_errors[schema] = cached
    end
  end
  return cached or nil
end

-- Validates value against a schema written in this module's schema language (a
-- policy's `schema`, checked first: see M.check_schema). path names value in messages,
-- source the file, name the policy. Returns the normalized value, or nil and the sorted
-- list of errors.
function M.check(schema, value, path, source, name)
  name = name or "the policy"
  local errs = M.check_schema(schema, name)
  if errs then
    return nil, errs
  end
  local ctx = { source = source or "config", prefix = ".", errs = {}, raw = {} }
  if value == nil then
    value = {}
  end
  -- What can still raise is the policy's own check, normalize or validate function.
  local ok, out = pcall(walk, schema, value, path, ctx)
  if not ok then
    return nil, { format("%s: %s: the schema of %s raised an error: %s", ctx.source, path, name, tostring(out)) }
  end
  if #ctx.errs > 0 then
    sort(ctx.errs)
    return nil, ctx.errs
  end
  return out
end

return M
