-- Log policy: writes each access-log line as a JSON object of chosen $context
-- variables, keys in alphabetical order, null for a variable without a value.
--
--   access_log = { path = "logs/api.log", policy = "policies/log/json.lua",
--     config = { fields = { id = "requestId", ip = "identity.sourceIp", status = "status" },
--                static = { service = "pets" } } }
local encode = require("moongate.hooks").json_encode
local concat, sort = table.concat, table.sort
local pairs, ipairs = pairs, ipairs

local M = {}

M.schema = {
  type = "record",
  fields = {
    fields = {
      type = "map", description = "output key -> $context variable name (without $context.)",
      default = {
        requestId = "requestId", ip = "identity.sourceIp", requestTime = "requestTime",
        httpMethod = "httpMethod", routeKey = "routeKey", status = "status",
        responseLength = "responseLength", responseLatency = "responseLatency",
      },
      keys = { type = "string", non_empty = true, description = "a JSON key" },
      values = { type = "string", non_empty = true, description = "a $context variable name" },
    },
    static = {
      type = "map", default = {}, description = "constant members of every line",
      keys = { type = "string", non_empty = true, description = "a JSON key" },
      values = { type = "string", description = "its value" },
    },
  },
}

-- The configuration as an ordered list of { key (encoded), variable or false, value }.
function M.prepare(conf)
  local keys = {}
  for k in pairs(conf.fields) do
    keys[#keys + 1] = k
  end
  for k in pairs(conf.static) do
    if conf.fields[k] == nil then
      keys[#keys + 1] = k
    end
  end
  sort(keys)
  local members = {}
  for i, k in ipairs(keys) do
    members[i] = { encode(k), conf.fields[k] or false, conf.static[k] }
  end
  return { members = members }
end

-- The line for the values ctx:get(variable) gives.
function M.line(members, ctx)
  local parts = {}
  for i = 1, #members do
    local m = members[i]
    local v = m[3]
    if m[2] then
      v = ctx:get(m[2])
    end
    parts[i] = m[1] .. ":" .. (v == nil and "null" or encode(v))
  end
  return "{" .. concat(parts, ",") .. "}"
end

function M.log(ctx, conf)
  return M.line(conf.members, ctx)
end

return M
