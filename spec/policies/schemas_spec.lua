-- Every stock policy documents its configuration (STYLE.md rule 13): each node of
-- its schema below the root has a description, and the schema accepts its defaults.
local testing = require "moongate.testing"

local POLICIES = {
  { "policies/authorizers/api_key_header.lua", { keys = { k = "a" } } },
  { "policies/waf/ip_set.lua", { cidrs = { "10.0.0.0/8" } } },
  { "policies/log/json.lua", {} },
  { "policies/routes/header.lua", { header = "x", routes = {} } },
  { "policies/examples/echo.lua", {} },
  { "policies/examples/echo_v1.lua", {} },
  { "policies/transforms/json_envelope.lua", {} },
}

-- Paths of schema nodes without a description.
local function undocumented(node, path, out)
  if path ~= "schema" and type(node.description) ~= "string" then
    out[#out + 1] = path
  end
  for name, f in pairs(node.fields or {}) do
    undocumented(f, path .. "." .. name, out)
  end
  for _, k in ipairs({ "keys", "values", "elements" }) do
    if node[k] then
      undocumented(node[k], path .. "." .. k, out)
    end
  end
  return out
end

describe("stock policies", function()
  for _, p in ipairs(POLICIES) do
    it(p[1] .. " documents every configuration field", function()
      local mod = testing.load(p[1])
      assert.is_table(mod.schema)
      assert.same({}, undocumented(mod.schema, "schema", {}))
      assert.is_not_nil(testing.config(p[1], p[2]))
    end)
  end
end)
