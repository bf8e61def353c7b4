-- Authorizer: an API key in a request header, checked against the configured keys.
--
--   authorizers = { keys = { type = "lua", policy = "policies/authorizers/api_key_header.lua",
--     identity_sources = { "$request.header.x-api-key" },   -- no header: 401 at once
--     config = { keys = { ["k-6f1c..."] = "alice" } } } }
--
-- A known key: allowed, with $context.authorizer.caller = the key's name (and the
-- key as the request's API key for usage plans when usage_identifier = true). An
-- unknown key: 403. The result is cached per key for the authorizer's ttl.
local M = {}

M.schema = {
  type = "record",
  fields = {
    header = { type = "string", default = "x-api-key", description = "request header that carries the key" },
    keys = {
      type = "map", required = true, non_empty = true,
      description = "accepted keys: key value -> the caller's name",
      keys = { type = "string", non_empty = true, description = "an API key value" },
      values = { type = "string", non_empty = true, description = "the caller's name (principalId)" },
    },
    usage_identifier = {
      type = "boolean", default = false,
      description = "true: the key also becomes the request's API key for usage plans (usageIdentifierKey)",
    },
  },
}

-- The caller's name for key, or nil.
function M.caller(keys, key)
  if key == nil or key == "" then
    return nil
  end
  return keys[key]
end

function M.authorize(req, conf)
  local key = req:header(conf.header)
  local name = M.caller(conf.keys, key)
  if name == nil then
    return { isAuthorized = false }
  end
  return {
    isAuthorized = true,
    principalId = name,
    context = { caller = name },
    usageIdentifierKey = conf.usage_identifier and key or nil,
  }
end

return M
