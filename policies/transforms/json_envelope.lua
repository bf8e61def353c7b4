-- Body transform (non-proxy http integrations): wraps a JSON body in an envelope,
-- { [key] = the body, plus fixed fields and the request's values named in from }.
-- A body that is not JSON is wrapped as a string; an empty one as null.
--
--   request_transform = { policy = "policies/transforms/json_envelope.lua",
--                         config = { key = "pet", fields = { source = "gateway" },
--                                    from = { requestId = "request_id" } } }
local cjson = require "cjson.safe"

local M = {}

M.schema = {
  type = "record",
  fields = {
    key = { type = "string", non_empty = true, default = "data", description = "the field the body goes in" },
    fields = {
      type = "map", default = {}, description = "fixed string fields added to the envelope",
      keys = { type = "string", non_empty = true, description = "field name" },
      values = { type = "string", description = "field value" },
    },
    from = {
      type = "map", default = {}, description = "fields taken from ctx (or ctx.request): field name -> ctx key",
      keys = { type = "string", non_empty = true, description = "field name" },
      values = { type = "string", non_empty = true, description = "a ctx key: method, path, request_id, status, ..." },
    },
  },
}

function M.transform(body, ctx, conf)
  local value = cjson.null
  if body ~= "" then
    value = cjson.decode(body)
    if value == nil then
      value = body
    end
  end
  local out = { [conf.key] = value }
  for k, v in pairs(conf.fields) do
    out[k] = v
  end
  for k, name in pairs(conf.from) do
    local v = ctx[name]
    if v == nil and ctx.request then
      v = ctx.request[name]
    end
    out[k] = v
  end
  return out, "application/json"
end

return M
