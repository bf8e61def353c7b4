-- moongate.config.waf_rate: the rate-based kind of web ACL rule (README "Rate-based
-- rules"), AWS WAF's RateBasedStatement: at most `limit` requests per `window` seconds per
-- aggregation key. Its schema field (`rate_based = {...}`), its check and what the workers
-- get: the counting is C's (runtime/base/ratewin.c, runtime/lua/ffi_waf.c), so the rule's
-- entry in out.waf_rate says everything C needs, and the rule's use entry names it by index.
--
-- The key is a list of key parts, one kind each (KEY_KINDS: a new kind is an entry here,
-- a line in conf/wafrate.h and one in ffi_waf.c's table). The scope-down statement
-- (scope_down) is a rule statement: moongate.config.waf adds the field and shapes it. The aggregate key types
-- are lists too: "ip" is { ip }, "forwarded_ip" is { forwarded_ip }, "constant" is {}.
local ipairs, pairs, concat = ipairs, pairs, table.concat
local format = string.format
local lang = require "moongate.config.lang"
local join, fail, quote, num = lang.join, lang.fail, lang.quote, lang.num

local M = {}

-- AWS WAF's bounds: limit 10 to 2,000,000,000; windows of 1, 2, 5 or 10 minutes; up to 5
-- custom keys.
M.MIN_LIMIT, M.MAX_LIMIT, M.MAX_KEYS = 10, 2000000000, 5
M.WINDOWS = { 60, 120, 300, 600 }

-- The custom key kinds: `named` kinds take a name (a header, cookie or query argument);
-- `aws` is the key's name in AWS WAF's log (rateBasedRuleList customValues[].key).
M.KEY_KINDS = {
  header = { named = true, aws = "HEADER", what = "the value of a request header" },
  cookie = { named = true, aws = "COOKIE", what = "the value of a cookie" },
  query_argument = { named = true, aws = "QUERY_ARGUMENT", what = "the value of a query string argument" },
  query_string = { aws = "QUERY_STRING", what = "the whole query string" },
  http_method = { aws = "HTTP_METHOD", what = "the request method" },
  uri_path = { aws = "URI_PATH", what = "the request path" },
  ip = { aws = "IP", what = "the client address" },
  forwarded_ip = { aws = "FORWARDED_IP", what = "the first address of forwarded_ip.header_name" },
  label_namespace = { named = true, aws = "LABEL_NAMESPACE",
    what = "the first label the request has in namespace name (e.g. \"app:tier:\"), whole" },
}

-- The aggregate key types (AWS AggregateKeyType) and their log names (limitKey).
local AGGREGATES = { ip = "IP", forwarded_ip = "FORWARDEDIP", constant = "CONSTANT", custom_keys = "CUSTOMKEYS" }

local function window_error(v)
  for _, w in ipairs(M.WINDOWS) do
    if v == w then
      return nil
    end
  end
  return "must be 60, 120, 300 or 600 (seconds), got " .. num(v)
end

local custom_variants = {}
for kind, k in pairs(M.KEY_KINDS) do
  local fields = { type = { type = "string", description = "the key kind: " .. kind } }
  if k.named then
    fields.name = { type = "string", required = true, non_empty = true, max_len = 256,
      description = "the " .. kind:gsub("_", " ") .. "'s name" }
  end
  custom_variants[kind] = { type = "record", fields = fields, description = k.what }
end

-- The schema field of a rate-based rule (added to the web ACL rule's record).
M.fields = {
  rate_based = {
    type = "record",
    description = "a rate-based rule (AWS WAF's RateBasedStatement): at most limit requests per window "
      .. "per aggregation key; a rule has one of policy, managed or rate_based",
    fields = {
      limit = {
        type = "integer", between = { M.MIN_LIMIT, M.MAX_LIMIT }, required = true,
        description = "requests a key may make per window; more match the rule",
      },
      window = {
        type = "integer", default = 300, check = window_error,
        description = "the evaluation window in seconds: 60, 120, 300 (default) or 600",
      },
      aggregate_key_type = {
        type = "string", one_of = { "ip", "forwarded_ip", "constant", "custom_keys" },
        description = 'what requests are counted by: "ip" (default), "forwarded_ip", "constant" (all '
          .. 'together) or "custom_keys" (the default when custom_keys is set)',
      },
      forwarded_ip = {
        type = "record", description = "where the forwarded address is (aggregate_key_type or a custom key "
          .. "forwarded_ip)",
        fields = {
          header_name = {
            type = "string", required = true, non_empty = true, pattern = "^[%w!#$%%&'*+.^_`|~-]+$",
            pattern_message = "must be a header name", description = "the header, e.g. X-Forwarded-For",
          },
          fallback_behavior = {
            type = "string", one_of = { "match", "no_match" }, required = true,
            description = 'a request whose header holds no valid address: "match" (the rule matches) or '
              .. '"no_match" (not counted)',
          },
        },
      },
      custom_keys = {
        type = "list", non_empty = true, description = "the parts of the key (1 to 5)",
        elements = { type = "variant", tag = "type", variants = custom_variants,
          description = "a key part: { type = KIND, name = NAME } (name for header, cookie, query_argument)" },
      },
    },
  },
}

-- Checks the rate_based record's fields together (the record's post).
function M.check(c, _, path, ctx)
  local agg = c.aggregate_key_type
  if agg == nil then
    agg = c.custom_keys and "custom_keys" or "ip"
    c.aggregate_key_type = agg
  end
  local keys = c.custom_keys
  if agg == "custom_keys" and keys == nil then
    fail(ctx, join(path, "custom_keys"), 'is required with aggregate_key_type = "custom_keys"')
  elseif agg ~= "custom_keys" and keys ~= nil then
    fail(ctx, join(path, "custom_keys"), 'applies only with aggregate_key_type = "custom_keys", got '
      .. quote(agg))
  end
  local wants_fwd = agg == "forwarded_ip"
  if keys then
    if #keys > M.MAX_KEYS then
      fail(ctx, join(path, "custom_keys"), format("must have at most %d keys (AWS WAF's limit), got %d",
        M.MAX_KEYS, #keys))
    end
    local seen = {}
    for i, k in ipairs(keys) do
      if k then
        local id = k.type .. ":" .. (k.name or "")
        if k.type == "header" and k.name then
          id = "header:" .. k.name:lower()
        end
        if seen[id] then
          fail(ctx, join(join(path, "custom_keys"), i), format("the same key as custom_keys[%d]", seen[id]))
        end
        seen[id] = i
        wants_fwd = wants_fwd or k.type == "forwarded_ip"
        if k.type == "label_namespace" and k.name and k.name:sub(-1) ~= ":" then
          fail(ctx, join(join(join(path, "custom_keys"), i), "name"), 'a namespace ends with ":", got '
            .. quote(k.name))
        end
        if (k.type == "ip" or k.type == "forwarded_ip") and #keys == 1 then
          fail(ctx, join(join(path, "custom_keys"), i), format('an address alone is aggregate_key_type = %s, '
            .. "not a custom key (custom keys with an address need another key, as in AWS WAF)", quote(k.type)))
        end
      end
    end
  end
  if wants_fwd and c.forwarded_ip == nil then
    fail(ctx, join(path, "forwarded_ip"), "is required to aggregate on a forwarded address "
      .. '(e.g. { header_name = "X-Forwarded-For", fallback_behavior = "match" })')
  elseif not wants_fwd and c.forwarded_ip ~= nil then
    fail(ctx, join(path, "forwarded_ip"), 'applies only with aggregate_key_type = "forwarded_ip" or a '
      .. "forwarded_ip custom key")
  end
end

M.fields.rate_based.post = M.check

-- The kind's check of the rest of the rule (moongate.config.waf's KINDS entry; the
-- table makes sure a rule has one kind and no field of another): no allow action, as in
-- AWS WAF, and a default name.
function M.check_rule(rule, rpath, ctx)
  if rule.action == "allow" then
    fail(ctx, join(rpath, "action"), 'a rate-based rule\'s action is "block" or "count" (as in AWS WAF)')
  end
  if rule.name == nil then
    rule.name = "rate-based"
  end
end

-- The rule's key as a list of { kind, name } parts (header names in lower case, as
-- requests keep them).
local function key_parts(c)
  local agg = c.aggregate_key_type
  if agg == "ip" or agg == "forwarded_ip" then
    return { { kind = agg } }
  elseif agg == "constant" then
    return {}
  end
  local parts = {}
  for i, k in ipairs(c.custom_keys) do
    parts[i] = { kind = k.type, name = k.type == "header" and k.name:lower() or k.name }
  end
  return parts
end

-- What the workers get for a rate-based rule: its entry in out.waf_rate (read by
-- runtime/conf/config.c) and the rule's use entry, which names it by index. acl is the
-- web ACL's config path: `counter` names the rule's counters, so that a reload that keeps
-- the rule's name, limit, window and key keeps its counts.
function M.shape(out, rule, where, acl)
  local c = rule.rate_based
  local parts = key_parts(c)
  local spec = {}
  for i, p in ipairs(parts) do
    spec[i] = p.name and (p.kind .. "=" .. p.name) or p.kind
  end
  local fwd = c.forwarded_ip
  if fwd then
    spec[#spec + 1] = "via=" .. fwd.header_name:lower() .. "/" .. fwd.fallback_behavior
  end
  out.waf_rate = out.waf_rate or {}
  out.waf_rate[#out.waf_rate + 1] = {
    where = where, name = rule.name, limit = c.limit, window = c.window,
    limit_key = AGGREGATES[c.aggregate_key_type], keys = parts,
    forwarded_header = fwd and fwd.header_name:lower(), fallback_match = fwd and fwd.fallback_behavior == "match",
    counter = concat({ acl, rule.name, num(c.limit), num(c.window), concat(spec, ",") }, "|"),
  }
  return { rate = #out.waf_rate - 1 }
end

return M
