-- moongate.config.policies: the Lua policies a configuration names (WAF rules,
-- authorizers, route selection, Lua integrations, log policies, revocation checks).
-- A policy use names a file (`policy`, or `handler` for integrations) and its
-- `config`; the file is loaded here the way the workers load it (moongate.policy),
-- must have the hook its use needs, and `config` is validated against the policy's
-- `schema`.
local type, ipairs, tostring = type, ipairs, tostring
local format = string.format
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local policy_lib = require "moongate.policy"
local quote, join, fail = lang.quote, lang.join, lang.fail
local resolve = values.resolve

local M = {}

-- Directories `require` searches from a policy: <prefix>/policies and lua.path.
local function policy_dirs(ctx)
  local dirs = { resolve(ctx.prefix, "policies") }
  local raw = type(ctx.raw) == "table" and type(ctx.raw.lua) == "table" and ctx.raw.lua.path
  if type(raw) == "table" then
    for _, d in ipairs(raw) do
      if type(d) == "string" then
        dirs[#dirs + 1] = resolve(ctx.prefix, d)
      end
    end
  end
  return dirs
end

-- Loads a policy file once per validation: { name, full, source, mod } or nil, err.
local function load_policy(ctx, name)
  ctx.policies = ctx.policies or {}
  local full = resolve(ctx.prefix, name)
  local entry = ctx.policies[full]
  if entry == nil then
    if not ctx.searcher_installed then
      policy_lib.install_searcher(policy_dirs(ctx))
      ctx.searcher_installed = true
    end
    local source, err = policy_lib.read_file(full)
    if not source then
      entry = { err = format("cannot read %s: %s", quote(full), tostring(err)) }
    else
      local mod, lerr = policy_lib.load_source(source, name)
      entry = mod and { name = name, full = full, source = source, mod = mod } or { err = lerr }
    end
    ctx.policies[full] = entry
  end
  if entry.err then
    return nil, entry.err
  end
  return entry
end

local USE_NAMES = {
  authorizer = "an authorizer", waf = "a WAF rule", log = "a log policy",
  route_selection = "a route selector", integration = "a Lua integration",
  revocation = "a revocation check", transform = "a body transform",
}

-- A schema `post` for a record naming a policy in `field`: loads it, checks that it
-- has the hook `kind` needs, validates and normalizes `config`.
local function policy_use(kind, field)
  field = field or "policy"
  return function(c, v, path, ctx)
    if c[field] == nil or (c.config == nil and v.config ~= nil) then
      return -- reported already
    end
    local entry, err = load_policy(ctx, c[field])
    if not entry then
      return fail(ctx, join(path, field), err)
    end
    local hook = policy_lib.HOOKS[kind]
    if type(entry.mod[hook]) ~= "function" then
      return fail(ctx, join(path, field), format("%s has no %s function, which %s needs",
        quote(c[field]), hook, USE_NAMES[kind]))
    end
    local conf, errs = policy_lib.check_conf(entry.mod, v.config, join(path, "config"), ctx.source, c[field])
    if not conf then
      for _, e in ipairs(errs) do
        ctx.errs[#ctx.errs + 1] = e
      end
      return
    end
    local _, serr = policy_lib.serialize(conf)
    if serr then
      return fail(ctx, join(path, "config"), "must hold only strings, numbers, booleans and tables, found " .. serr)
    end
    local prepared, perr = policy_lib.prepare(entry.mod, conf)
    if prepared == nil then
      return fail(ctx, join(path, "config"), perr)
    end
    c.config = conf
    c._policy = entry
  end
end

M.dirs, M.use = policy_dirs, policy_use

return M
