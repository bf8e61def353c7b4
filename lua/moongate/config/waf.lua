-- moongate.config.waf: the kinds of web ACL rules (README "Managed rules"). A rule is
-- a Lua policy (`policy = "..."`) or a managed rule set (`managed = "owasp-crs"`,
-- evaluated in C by libmodsecurity: runtime/conf/modsec.c). Each kind is an entry of
-- KINDS: its schema fields, its check and what the workers get; a new kind (an AWS rule
-- statement, a rate-based rule) is a new entry.
local type, ipairs, pairs, tostring = type, ipairs, pairs, tostring
local format, match, find = string.format, string.match, string.find
local lang = require "moongate.config.lang"
local waf_rate = require "moongate.config.waf_rate"
local values = require "moongate.config.values"
local join, fail, quote = lang.join, lang.fail, lang.quote

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

-- Schema fields of a managed rule (added to the web ACL rule's record).
M.fields = {
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

-- A rate-based rule (moongate.config.waf_rate) has its own field.
M.rate = waf_rate
for k, f in pairs(waf_rate.fields) do
  M.fields[k] = f
end

local MANAGED_ONLY = { "paranoia_level", "anomaly_threshold", "exclusions", "inspection_size", "rules_files" }
local NOT_RATE = { "paranoia_level", "anomaly_threshold", "exclusions", "inspection_size", "rules_files", "config" }

-- The rule's kind, checked: "policy", "managed" or "rate_based" (nil after an error). raw is the rule
-- as written (a managed name that failed its own check is nil in rule).
function M.check_rule(rule, raw, rpath, ctx)
  if type(raw) == "table" and raw.rate_based ~= nil then -- "rate_based" (nil: reported at .rate_based)
    return rule.rate_based and waf_rate.check_rule(rule, rpath, ctx, NOT_RATE) or nil
  end
  if rule.managed == nil and type(raw) == "table" and raw.managed ~= nil then
    return nil -- reported at .managed
  end
  if rule.policy ~= nil and rule.managed ~= nil then
    fail(ctx, join(rpath, "managed"), "a rule has either policy or managed, not both")
    return nil
  end
  if rule.managed ~= nil then
    if rule.action == "allow" then
      fail(ctx, join(rpath, "action"), 'a managed rule\'s action is "block" or "count"')
    end
    if rule.name == nil then
      rule.name = rule.managed
    end
    return "managed"
  end
  for _, f in ipairs(MANAGED_ONLY) do
    if rule[f] ~= nil then
      fail(ctx, join(rpath, f), "applies only to managed rules (managed = \"owasp-crs\")")
    end
  end
  if rule.policy == nil then
    fail(ctx, join(rpath, "policy"), 'is required (or managed = "owasp-crs")')
    return nil
  end
  return "policy"
end

-- What the workers get for a managed rule: the rule set's entry in out.waf_managed
-- (compiled by runtime/conf/config.c) and the rule's use entry, which names it by index.
function M.shape_managed(out, rule, where, prefix, watch)
  out.waf_managed = out.waf_managed or {}
  local files = {}
  for i, f in ipairs(rule.rules_files or {}) do
    files[i] = values.resolve(prefix, f)
    watch[#watch + 1] = files[i]
  end
  local set = {
    where = where, managed = rule.managed, paranoia_level = rule.paranoia_level or 1,
    anomaly_threshold = rule.anomaly_threshold or 5, inspection_size = rule.inspection_size or 8192,
    exclusions = rule.exclusions or {}, rules_files = files,
  }
  out.waf_managed[#out.waf_managed + 1] = set
  return { name = rule.name, priority = rule.priority, action = rule.action,
    managed = #out.waf_managed - 1 }
end

---------------------------------------------------------------------------
-- The web ACL's log (README "WAF logs"): AWS WAF's LoggingConfiguration, written as
-- JSON lines in AWS WAF's log format by runtime/lua/waflog.c.
---------------------------------------------------------------------------

local BEHAVIORS = { "keep", "drop" }

M.log_field = {
  type = "record",
  description = "the web ACL's log: one JSON line per request in AWS WAF's log format",
  fields = {
    path = {
      type = "string", required = true, non_empty = true, check = values.log_path_error,
      description = "log file; relative paths are resolved against the prefix; its directory must exist",
    },
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
    path = values.resolve(prefix, log.path), where = where,
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
