-- moongate.config.waf: the kinds of web ACL rules (README "Managed rules", "Rule
-- statements", "Rate-based rules", "WAF logs"). A rule is a Lua policy (`policy =
-- "..."`), a managed rule set (`managed = "owasp-crs"`, evaluated in C by
-- libmodsecurity: runtime/conf/modsec.c), an AWS WAF rule statement (`statement =
-- {...}`, compiled and evaluated in C: runtime/conf/wafstmt.c) or a rate-based rule
-- (`rate_based = {...}`, moongate.config.waf_rate; counted in C: runtime/base/ratewin.c).
-- Each kind is an entry of KINDS: the field that names it (key), its own schema fields,
-- its check and its shape (what the workers get); a new kind is a new entry. Fields
-- every kind has (labels, response) are M.common_fields.
local type, ipairs, pairs, tostring = type, ipairs, pairs, tostring
local format, match, find = string.format, string.match, string.find
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local waf_rate = require "moongate.config.waf_rate"
local logsink = require "moongate.config.logsink"
local join, fail, quote = lang.join, lang.fail, lang.quote
local countries = require "moongate.config.countries"

local M = {}

-- The managed rule sets (runtime/conf/modsec.c's table has the same names).
M.MANAGED = { "owasp-crs" }

local function exclusion_error(v)
  if type(v) == "number" then
    if v ~= math.floor(v) or v < 1 then
      return "must be a rule id (a positive integer), got " .. tostring(v)
    end
    return nil
  end
  if type(v) ~= "string" then
    return "must be a rule id, an id range or a tag, got " .. lang.show(v)
  end
  local lo, hi = match(v, "^(%d+)%-(%d+)$")
  if lo then
    if #lo > 9 or #hi > 9 or tonumber(lo) > tonumber(hi) then
      return quote(v) .. " is not an id range (low-high, low <= high)"
    end
    return nil
  end
  if match(v, "^%d+$") then
    return #v > 9 and quote(v) .. " is not a rule id" or nil
  end
  if #v > 128 or not match(v, "^[%w%-_/%.:]+$") then
    return quote(v) .. " is not a tag (letters, digits and - _ / . : only)"
  end
  return nil
end

-- Schema fields of a managed rule.
local managed_fields = {
  managed = {
    type = "string", one_of = M.MANAGED,
    description = 'a managed rule set evaluated by libmodsecurity: "owasp-crs" (the OWASP Core '
      .. "Rule Set); a rule has either policy or managed",
  },
  paranoia_level = {
    type = "integer", between = { 1, 4 },
    description = "CRS paranoia level, 1 (fewest false positives) to 4 (default 1; managed rules)",
  },
  anomaly_threshold = {
    type = "integer", between = { 1, 10000 },
    description = "CRS inbound anomaly score at which the rule matches (default 5; managed rules)",
  },
  exclusions = {
    type = "list", description = "rules left out: ids (942100), id ranges (\"942100-942199\") or tags "
      .. '("attack-sqli"; managed rules)',
    elements = {
      type = "custom", description = "a rule id, an id range or a tag",
      validate = function(v)
        local err = exclusion_error(v)
        if err then
          return nil, err
        end
        return type(v) == "number" and format("%d", v) or v
      end,
    },
  },
  inspection_size = {
    type = "integer", between = { 0, 2 ^ 31 },
    description = "request body bytes the rules see, from the start (default 8192, as AWS WAF; "
      .. "managed rules)",
  },
  rules_files = {
    type = "list", elements = { type = "string", non_empty = true, description = "a SecRule file" },
    description = "extra ModSecurity rule files, relative to the prefix, loaded after the rule set "
      .. "(managed rules)",
  },
}

---------------------------------------------------------------------------
-- Rule statements (AWS WAF's, snake_case; and/or/not are and_statement,
-- or_statement and not_statement: `and`, `or` and `not` are Lua keywords)
---------------------------------------------------------------------------

-- AWS's text transformations: runtime/base/wafxform.h's list.
M.TRANSFORMS = require("moongate.constants").WAF_TRANSFORMS

-- Fields to match: the plain ones are a string, the others a table of one key.
local PLAIN_FIELDS = { "uri_path", "query_string", "method", "all_query_arguments", "headers",
  "cookies", "body" }
local TABLE_FIELDS = { "single_header", "single_query_argument", "headers", "cookies", "body" }
local SCOPES = { "ALL", "KEY", "VALUE" }
local OVERSIZE = { "CONTINUE", "MATCH", "NO_MATCH" }
local MAX_DEPTH = 20
local MAX_BODY = 65536

local contains, words = lang.contains, lang.quoted_list

-- field = "uri_path" | { single_header = "name" } | { headers = { match_scope = } } |
-- { body = { size_limit =, oversize_handling = } } ... -> { name, field_name, ... }
local function field_value(v)
  if type(v) == "string" then
    if not contains(PLAIN_FIELDS, v) then
      return nil, "must be one of " .. words(PLAIN_FIELDS) .. " or a table ({ single_header = "
        .. '"name" }, ...), got ' .. quote(v)
    end
    return { name = v }
  end
  if type(v) ~= "table" then
    return nil, "must be a field name or a table of one field, got " .. lang.show(v)
  end
  local key, n = nil, 0
  for k in pairs(v) do
    key, n = k, n + 1
  end
  if n ~= 1 or type(key) ~= "string" or not contains(TABLE_FIELDS, key) then
    return nil, "must have exactly one key among " .. words(TABLE_FIELDS)
  end
  local x = v[key]
  if key == "single_header" or key == "single_query_argument" then
    if type(x) ~= "string" or x == "" then
      return nil, key .. " must be a name (a non-empty string), got " .. lang.show(x)
    end
    return { name = key, field_name = key == "single_header" and string.lower(x) or x }
  end
  if type(x) ~= "table" then
    return nil, key .. " must be a table, got " .. lang.show(x)
  end
  local out = { name = key }
  for k, y in pairs(x) do
    if k == "match_scope" and key ~= "body" then
      if not contains(SCOPES, y) then
        return nil, key .. ".match_scope must be one of " .. words(SCOPES) .. ", got " .. lang.show(y)
      end
      out.match_scope = y
    elseif k == "oversize_handling" and key == "body" then
      if not contains(OVERSIZE, y) then
        return nil, "body.oversize_handling must be one of " .. words(OVERSIZE) .. ", got " .. lang.show(y)
      end
      out.oversize = y
    elseif k == "size_limit" and key == "body" then
      if type(y) ~= "number" or y ~= math.floor(y) or y < 1 or y > MAX_BODY then
        return nil, format("body.size_limit must be an integer between 1 and %d, got %s", MAX_BODY, lang.show(y))
      end
      out.size_limit = y
    else
      return nil, key .. ": unknown key " .. lang.show(k)
    end
  end
  return out
end

-- text_transformations = { "URL_DECODE", "LOWERCASE" } or AWS's
-- { { priority = 0, type = "URL_DECODE" }, ... }: the names in the order they run.
local function transforms_value(v)
  if type(v) ~= "table" then
    return nil, "must be a list, got " .. lang.show(v)
  end
  if #v > 10 then
    return nil, format("must have at most 10 transformations, got %d", #v)
  end
  local list = {}
  for i, t in ipairs(v) do
    local name, prio = t, i
    if type(t) == "table" then
      name, prio = t.type, t.priority
      if type(prio) ~= "number" or prio ~= math.floor(prio) or prio < 0 then
        return nil, format("[%d].priority must be an integer of 0 or more, got %s", i, lang.show(prio))
      end
    end
    if type(name) ~= "string" or not contains(M.TRANSFORMS, name) then
      return nil, format("[%d]: %s is not a transformation (%s)", i, lang.show(name), table.concat(M.TRANSFORMS, " "))
    end
    for _, o in ipairs(list) do
      if o.prio == prio then
        return nil, format("[%d]: priority %d is used twice", i, prio)
      end
    end
    list[#list + 1] = { name = name, prio = prio }
  end
  table.sort(list, function(a, b) return a.prio < b.prio end)
  local names = {}
  for i, t in ipairs(list) do
    names[i] = t.name
  end
  return names
end

local field = { type = "custom", required = true, validate = field_value,
  description = 'the part of the request inspected: "uri_path", "query_string", "method", '
    .. '"all_query_arguments", "headers", "cookies", "body", { single_header = "name" }, '
    .. '{ single_query_argument = "name" }, { headers|cookies = { match_scope = "ALL"|"KEY"|"VALUE" } }, '
    .. '{ body = { size_limit = 8192, oversize_handling = "CONTINUE"|"MATCH"|"NO_MATCH" } }' }
local transformations = { type = "custom", validate = transforms_value, default = {},
  description = "text transformations run on the field before the match, in order (or by "
    .. "priority): at most 10 of AWS's names" }

local function file_field(what)
  return { type = "string", non_empty = true, description = what .. ", relative to the prefix; "
    .. "one per line, '#' comments; watched like policy files" }
end

local statement = { type = "record", description = "an AWS WAF rule statement (exactly one kind)" }

local function needs_one(a, b)
  return function(c, raw, path, ctx)
    if type(raw) == "table" and raw[a] == nil and raw[b] == nil then
      fail(ctx, join(path, a), "is required (or " .. b .. ")")
    end
  end
end

local function statement_list(kind)
  return { type = "list", elements = statement, description = "the statements " .. kind .. " combines",
    post = function(c, raw, path, ctx)
      if #c < 2 then
        fail(ctx, path, format("%s needs at least 2 statements, got %d", kind, #c))
      end
    end }
end

-- ip_set's and geo_match's forwarded_ip (AWS's IPSetForwardedIPConfig and ForwardedIPConfig)
local forwarded_header = { type = "string", required = true, pattern = "^[%w!#$%%&'*+.^_`|~-]+$",
  pattern_message = "must be a header name", description = 'e.g. "x-forwarded-for"' }
local forwarded_fallback = { type = "string", required = true, one_of = { "MATCH", "NO_MATCH" },
  description = "the result when the header is missing or holds no valid address" }

statement.fields = {
  byte_match = { type = "record", description = "the field contains a string", fields = {
    field = field, text_transformations = transformations,
    search_string = { type = "string", non_empty = true, required = true, description = "the bytes looked for" },
    positional_constraint = { type = "string", required = true, description = "where they must be",
      one_of = { "EXACTLY", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "CONTAINS_WORD" } },
  } },
  size_constraint = { type = "record", description = "the field's size (bytes, after the transformations)",
    fields = {
      field = field, text_transformations = transformations,
      comparison_operator = { type = "string", required = true, one_of = { "EQ", "NE", "LE", "LT", "GE", "GT" },
        description = "how the size compares with size" },
      size = { type = "integer", required = true, between = { 0, 21474836480 }, description = "bytes" },
    } },
  regex_match = { type = "record", description = "the field matches a PCRE2 pattern", fields = {
    field = field, text_transformations = transformations,
    regex_string = { type = "string", non_empty = true, required = true, description = "the pattern (PCRE2)" },
  } },
  regex_pattern_set = { type = "record", description = "the field matches one of several patterns",
    post = needs_one("patterns", "file"), fields = {
      field = field, text_transformations = transformations,
      patterns = { type = "list", non_empty = true, elements = { type = "string", non_empty = true,
        description = "a PCRE2 pattern" }, description = "the patterns" },
      file = file_field("a file of patterns"),
    } },
  sqli_match = { type = "record", description = "the field is SQL injection (libinjection)", fields = {
    field = field, text_transformations = transformations } },
  xss_match = { type = "record", description = "the field is cross-site scripting (libinjection)", fields = {
    field = field, text_transformations = transformations } },
  ip_set = { type = "record", description = "the client address is in a set of CIDR blocks",
    post = needs_one("addresses", "file"), fields = {
      addresses = { type = "list", elements = { type = "string", non_empty = true,
        description = "an IPv4 or IPv6 CIDR block or address" }, description = "the blocks" },
      file = file_field("a file of CIDR blocks"),
      forwarded_ip = { type = "record", description = "take the address from a header (AWS ForwardedIPConfig)",
        fields = {
          header_name = forwarded_header,
          fallback_behavior = forwarded_fallback,
          position = { type = "string", one_of = { "FIRST", "LAST", "ANY" }, default = "FIRST",
            description = "which address of a comma-separated list" },
        } },
    } },
  geo_match = { type = "record", description = "the client address is in one of some countries "
    .. "(the country database: waf_geo)", fields = {
      country_codes = { type = "list", required = true, non_empty = true, max_entries = 250,
        elements = { type = "string", check = countries.check,
          description = 'an ISO 3166-1 alpha-2 country code ("US")' },
        description = "the countries" },
      forwarded_ip = { type = "record", description = "take the address from a header: its first "
        .. "address (AWS ForwardedIPConfig)", fields = {
          header_name = forwarded_header,
          fallback_behavior = forwarded_fallback,
        } },
    } },
  label_match = { type = "record", description = "an earlier rule added a label", fields = {
    scope = { type = "string", required = true, one_of = { "LABEL", "NAMESPACE" }, description = "what key names" },
    key = { type = "string", required = true, pattern = "^[%w_%-:]+$",
      pattern_message = "must be a label or a namespace (letters, digits, _ - :)",
      description = 'a label ("ns:name", or "name" for any namespace) or a namespace ("ns:")' },
  } },
  and_statement = statement_list("and_statement"),
  or_statement = statement_list("or_statement"),
  not_statement = statement,
}
statement.post = function(c, raw, path, ctx)
  if type(raw) ~= "table" then
    return
  end
  local n = 0
  for k in pairs(statement.fields) do
    if raw[k] ~= nil then
      n = n + 1
    end
  end
  if n ~= 1 then
    fail(ctx, path, "must have exactly one statement kind (byte_match, size_constraint, regex_match, "
      .. "regex_pattern_set, sqli_match, xss_match, ip_set, geo_match, label_match, and_statement, or_statement, "
      .. format("not_statement), got %d", n))
  end
  if c.label_match and c.label_match.scope == "NAMESPACE" and c.label_match.key
      and not find(c.label_match.key, ":$") then
    fail(ctx, join(join(path, "label_match"), "key"), 'a namespace ends with ":"')
  end
end
M.statement = statement

local function kind_of(st)
  for k in pairs(statement.fields) do
    if st[k] then
      return k, st[k]
    end
  end
end

local function depth(st)
  local k, v = kind_of(st)
  if k == "not_statement" then
    return 1 + depth(v)
  elseif k == "and_statement" or k == "or_statement" then
    local d = 0
    for _, x in ipairs(v) do
      if x then
        d = math.max(d, depth(x))
      end
    end
    return 1 + d
  end
  return 1
end

-- The statement as a flat list of nodes for runtime/conf/config.c: the root first,
-- children by 0-based index; file paths resolved and watched.
local function flatten(st, where, nodes, prefix, watch)
  local k, v = kind_of(st)
  local node = { op = k, where = join(where, k) }
  nodes[#nodes + 1] = node
  if k == "and_statement" or k == "or_statement" or k == "not_statement" then
    node.kids = {}
    local list = k == "not_statement" and { v } or v
    for i, x in ipairs(list) do
      node.kids[i] = #nodes
      flatten(x, k == "not_statement" and node.where or join(node.where, i), nodes, prefix, watch)
    end
    return
  end
  if v.field then
    node.field, node.field_name = v.field.name, v.field.field_name
    node.match_scope, node.oversize, node.size_limit = v.field.match_scope, v.field.oversize, v.field.size_limit
  end
  node.transforms = v.text_transformations
  node.search, node.constraint = v.search_string, v.positional_constraint or v.comparison_operator
  node.size = v.size
  node.values = v.patterns or v.addresses or v.country_codes or (v.regex_string and { v.regex_string })
  if v.file then
    node.file = values.resolve(prefix, v.file)
    watch[#watch + 1] = node.file
  end
  if v.forwarded_ip then
    node.header = string.lower(v.forwarded_ip.header_name)
    node.fallback, node.position = v.forwarded_ip.fallback_behavior, v.forwarded_ip.position
  end
  if v.scope then
    node.scope, node.key = v.scope, v.key
  end
end

---------------------------------------------------------------------------
-- Fields every kind has
---------------------------------------------------------------------------

local response = { type = "record", description = "the custom response of a block (AWS CustomResponse)",
  fields = {
    status = { type = "integer", required = true, between = { 400, 599 }, description = "the status" },
    body = { type = "string", default = "", description = "the body" },
    content_type = { type = "string", non_empty = true, description = "the content-type header" },
    headers = { type = "map", keys = { type = "string", pattern = "^[%w!#$%%&'*+.^_`|~-]+$",
      pattern_message = "must be a header name", description = "a header name" },
      values = { type = "string", pattern = "^[^\r\n]*$", pattern_message = "must not contain line breaks",
        description = "its value" }, description = "response headers" },
  } }
M.response = response

M.common_fields = {
  labels = { type = "list", elements = { type = "string", pattern = "^[%w_%-]+[%w_%-:]*$",
    pattern_message = 'must be a label ("namespace:name": letters, digits, _ - :)',
    description = "a label" }, max_entries = 100,
    description = "labels added to the request when the rule matches (count included); later rules "
      .. "match them with label_match" },
  response = response,
}

-- The shaped custom response: its index (0-based) in out.waf_responses.
function M.shape_response(out, r)
  if r == nil then
    return nil
  end
  out.waf_responses = out.waf_responses or {}
  local headers = {}
  if r.content_type then
    headers[1] = { name = "content-type", value = r.content_type }
  end
  local names = {}
  for name in pairs(r.headers or {}) do
    names[#names + 1] = name
  end
  table.sort(names)
  for _, name in ipairs(names) do
    headers[#headers + 1] = { name = string.lower(name), value = r.headers[name] }
  end
  out.waf_responses[#out.waf_responses + 1] = { status = r.status, body = r.body, headers = headers }
  return #out.waf_responses - 1
end

-- A checked statement compiled by runtime/conf/wafstmt.c: its index (0-based) in
-- out.waf_statements; labels are added when it matches as a rule (a scope-down
-- statement has none).
local function shape_statement(out, st, where, ctx, labels)
  out.waf_statements = out.waf_statements or {}
  local nodes = {}
  flatten(st, where, nodes, ctx.prefix, ctx.watch)
  for _, node in ipairs(nodes) do
    -- the first geo_match makes the gateway load the country database (config.c)
    if node.op == "geo_match" and not out.waf_geo then
      out.waf_geo = { ipv4 = ctx.geo.ipv4, ipv6 = ctx.geo.ipv6, used_by = node.where }
      ctx.watch[#ctx.watch + 1] = ctx.geo.ipv4
      ctx.watch[#ctx.watch + 1] = ctx.geo.ipv6
    end
  end
  out.waf_statements[#out.waf_statements + 1] = { nodes = nodes, labels = labels }
  return #out.waf_statements - 1
end

-- A rate-based rule's scope-down statement (AWS's ScopeDownStatement) is a statement.
waf_rate.fields.rate_based.fields.scope_down = statement

---------------------------------------------------------------------------
-- The kinds
---------------------------------------------------------------------------

M.KINDS = {
  {
    key = "policy", fields = {},
    check = function()
    end,
    shape = function(out, rule, where, ctx)
      return { policy = ctx.pid(rule._policy), conf = rule.config }
    end,
  },
  {
    key = "managed", fields = managed_fields,
    check = function(rule, rpath, ctx)
      if rule.action == "allow" then
        fail(ctx, join(rpath, "action"), 'a managed rule\'s action is "block" or "count"')
      end
      if rule.name == nil then
        rule.name = rule.managed
      end
    end,
    shape = function(out, rule, where, ctx)
      out.waf_managed = out.waf_managed or {}
      local files = {}
      for i, f in ipairs(rule.rules_files or {}) do
        files[i] = values.resolve(ctx.prefix, f)
        ctx.watch[#ctx.watch + 1] = files[i]
      end
      out.waf_managed[#out.waf_managed + 1] = {
        where = where, managed = rule.managed, paranoia_level = rule.paranoia_level or 1,
        anomaly_threshold = rule.anomaly_threshold or 5, inspection_size = rule.inspection_size or 8192,
        exclusions = rule.exclusions or {}, rules_files = files,
      }
      return { managed = #out.waf_managed - 1 }
    end,
  },
  {
    key = "statement",
    fields = { statement = statement },
    check = function(rule, rpath, ctx)
      if depth(rule.statement) > MAX_DEPTH then
        fail(ctx, join(rpath, "statement"), format("statements nest at most %d levels deep", MAX_DEPTH))
      end
      if rule.name == nil then
        fail(ctx, join(rpath, "name"), "is required for a statement rule")
      end
    end,
    shape = function(out, rule, where, ctx)
      -- the C evaluation adds the rule's labels itself
      return { statement = shape_statement(out, rule.statement, join(where, "statement"), ctx,
        rule.labels or {}) }, true
    end,
  },
  {
    key = "rate_based", fields = waf_rate.fields,
    check = function(rule, rpath, ctx)
      waf_rate.check_rule(rule, rpath, ctx)
      local sd = rule.rate_based.scope_down
      if sd and depth(sd) > MAX_DEPTH then
        fail(ctx, join(join(rpath, "rate_based"), "scope_down"),
          format("statements nest at most %d levels deep", MAX_DEPTH))
      end
    end,
    shape = function(out, rule, where, ctx)
      local entry = waf_rate.shape(out, rule, where, ctx.acl)
      local sd = rule.rate_based.scope_down
      if sd then
        out.waf_rate[entry.rate + 1].scope_down = shape_statement(out, sd,
          join(join(where, "rate_based"), "scope_down"), ctx, {})
      end
      return entry
    end,
  },
}

-- The schema fields of every kind, added to the web ACL rule's record by moongate.config.schema.
M.fields = {}
for _, kind in ipairs(M.KINDS) do
  for k, f in pairs(kind.fields) do
    M.fields[k] = f
  end
end
for k, f in pairs(M.common_fields) do
  M.fields[k] = f
end

local KEYS = {}
for i, kind in ipairs(M.KINDS) do
  KEYS[i] = kind.key
end

-- The rule's kind, checked: its KINDS entry (nil after an error), also kept in
-- rule._kind. raw is the rule as written (a field that failed its own check is nil in
-- rule but not in raw).
function M.check_rule(rule, raw, rpath, ctx)
  local chosen, named = nil, {}
  for _, kind in ipairs(M.KINDS) do
    local written = rule[kind.key] ~= nil or (type(raw) == "table" and raw[kind.key] ~= nil)
    if written then
      named[#named + 1] = kind.key
      chosen = chosen or kind
    end
  end
  if #named > 1 then
    fail(ctx, join(rpath, named[2]), "a rule has exactly one of " .. table.concat(KEYS, ", ", 1, #KEYS - 1)
      .. " or " .. KEYS[#KEYS] .. "; this one has " .. table.concat(named, " and "))
    return nil
  end
  if chosen == nil then
    fail(ctx, join(rpath, "policy"), "is required (or managed = \"owasp-crs\", statement = {...} or rate_based = {...})")
    return nil
  end
  if chosen.key ~= "policy" and type(raw) == "table" and raw.config ~= nil then
    fail(ctx, join(rpath, "config"), "applies only to policy rules (a policy's configuration)")
  end
  for _, kind in ipairs(M.KINDS) do
    if kind ~= chosen then
      for f in pairs(kind.fields) do
        if f ~= kind.key and rule[f] ~= nil then
          fail(ctx, join(rpath, f), "applies only to " .. kind.key .. " rules")
        end
      end
    end
  end
  if rule[chosen.key] == nil then
    return nil -- reported at its own path
  end
  if rule.response and rule.action ~= "block" then
    fail(ctx, join(rpath, "response"), 'applies only to rules whose action is "block"')
  end
  chosen.check(rule, rpath, ctx)
  rule._kind = chosen
  return chosen
end

-- What the workers get for a checked rule: its use entry (name, priority, action, the
-- kind's own entries, labels comma-separated, the custom response's index). ctx has
-- pid (policy id of a policy entry), prefix and watch (the watched files).
function M.shape_rule(out, rule, where, ctx)
  local entry, own_labels = rule._kind.shape(out, rule, where, ctx)
  entry.name, entry.priority, entry.action = rule.name, rule.priority, rule.action
  if rule.labels and #rule.labels > 0 and not own_labels then
    entry.labels = table.concat(rule.labels, ",")
  end
  entry.response = M.shape_response(out, rule.response)
  return entry
end

---------------------------------------------------------------------------
-- The web ACL's log (README "WAF logs"): AWS WAF's LoggingConfiguration, written as
-- JSON lines in AWS WAF's log format by runtime/lua/waflog.c.
---------------------------------------------------------------------------

local BEHAVIORS = { "keep", "drop" }

M.log_field = {
  type = "record",
  description = "the web ACL's log: one JSON line per request in AWS WAF's log format",
  post = function(_, v, path, ctx)
    logsink.check(v, path, ctx)
  end,
  fields = {
    path = logsink.fields.path,
    stream = logsink.fields.stream,
    syslog = logsink.fields.syslog,
    sample_rate = {
      type = "number", at_least = 0, at_most = 1, default = 1,
      description = "the share of requests logged, drawn at random per request (1: all, 0: none)",
    },
    redacted_fields = {
      type = "record", default = {},
      description = "request parts written as \"REDACTED\" (AWS RedactedFields)",
      fields = {
        headers = {
          type = "list", default = {}, max_entries = 100,
          description = "headers whose values are redacted, by name (any case)",
          elements = {
            type = "string", pattern = values.HEADER_TOKEN, normalize = string.lower,
            pattern_message = "invalid header name: must be an HTTP token",
            description = "a header name",
          },
        },
        query_string = { type = "boolean", default = false, description = "redact args (the query string)" },
        uri_path = { type = "boolean", default = false, description = "redact uri (the path)" },
        method = { type = "boolean", default = false, description = "redact httpMethod" },
      },
    },
    filter = {
      type = "record", default = {},
      description = "which requests are logged (AWS LoggingFilter): the first filter whose "
        .. "conditions a request meets decides, else default_behavior",
      fields = {
        default_behavior = {
          type = "string", one_of = BEHAVIORS, default = "keep",
          description = "what happens to a request no filter matches",
        },
        filters = {
          type = "list", default = {}, max_entries = 100, description = "the filters, in order",
          elements = {
            type = "record", description = "a filter",
            fields = {
              behavior = {
                type = "string", one_of = BEHAVIORS, required = true,
                description = "keep or drop the requests that meet the conditions",
              },
              requirement = {
                type = "string", one_of = { "meets_all", "meets_any" }, default = "meets_any",
                description = "whether a request must meet all the conditions or one",
              },
              conditions = {
                type = "list", required = true, non_empty = true, max_entries = 10,
                description = "the conditions",
                elements = {
                  type = "record", description = "a condition",
                  fields = {
                    action = {
                      type = "string", one_of = { "allow", "block", "count" }, required = true,
                      description = "the request's action (allow, block), or count: a count rule matched",
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
}

-- What the workers get for a stage's WAF log (runtime/conf/config.c build_waf_log); the
-- managed rules are added by shape_log_managed once their rule sets are numbered.
function M.shape_log(log, prefix, where)
  local rf, filter = log.redacted_fields or {}, log.filter or {}
  local filters = {}
  for i, f in ipairs(filter.filters or {}) do
    local sf = { keep = f.behavior == "keep", all = f.requirement == "meets_all" }
    for _, c in ipairs(f.conditions or {}) do
      sf[c.action] = true
    end
    filters[i] = sf
  end
  return {
    sink = logsink.shape(log, prefix, where, "waf"),
    sample_rate = log.sample_rate or 1,
    redact_headers = rf.headers or {}, redact_query = rf.query_string == true,
    redact_uri = rf.uri_path == true, redact_method = rf.method == true,
    keep = filter.default_behavior ~= "drop", filters = filters, managed = {},
  }
end

-- Adds a managed rule's use entry (from shape_managed) to the stage's shaped WAF log.
function M.shape_log_managed(slog, rule, use)
  slog.managed[#slog.managed + 1] = { index = use.managed, name = use.name,
    group = "moongate#" .. rule.managed, count = rule.action == "count" }
end

return M
