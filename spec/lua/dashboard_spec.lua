-- conf/grafana-dashboard.json against the gateway it shows: valid JSON that Grafana
-- imports (unique panel ids, panels inside the 24-column grid and not overlapping), and
-- every metric its queries use is a family the README's Metrics section documents and
-- the runtime's C source names (a renamed metric breaks this, not a user's dashboard).
local cjson = require "cjson"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local dashboard = cjson.decode(read("conf/grafana-dashboard.json"))
local readme = read("README.md")

-- Every C source of the runtime, as one string.
local function runtime_source()
  local p = assert(io.popen("cat runtime/*/*.c"))
  local s = p:read("*a")
  p:close()
  return s
end

-- The metric names a PromQL expression uses (histogram suffixes removed).
local function metrics_of(expr)
  local names = {}
  for name in expr:gmatch("moongate_[%w_]+") do
    name = name:gsub("_bucket$", ""):gsub("_sum$", ""):gsub("_count$", "")
    names[name] = true
  end
  return names
end

describe("grafana dashboard", function()
  it("has unique panel ids and panels that fit the grid without overlapping", function()
    local ids, cells = {}, {}
    assert.is_true(#dashboard.panels > 0)
    for _, p in ipairs(dashboard.panels) do
      assert.is_nil(ids[p.id], "panel id " .. tostring(p.id) .. " twice")
      ids[p.id] = true
      local g = p.gridPos
      assert.is_true(g.x >= 0 and g.w >= 1 and g.x + g.w <= 24, p.title .. ": outside the grid")
      for x = g.x, g.x + g.w - 1 do
        for y = g.y, g.y + g.h - 1 do
          local k = x .. "," .. y
          assert.is_nil(cells[k], p.title .. " overlaps " .. tostring(cells[k]))
          cells[k] = p.title
        end
      end
    end
  end)

  it("queries only metrics that the README documents and the runtime exports", function()
    local src = runtime_source()
    local seen = 0
    for _, p in ipairs(dashboard.panels) do
      for _, t in ipairs(p.targets or {}) do
        for name in pairs(metrics_of(t.expr)) do
          seen = seen + 1
          assert.is_truthy(readme:find("| `" .. name .. "` |", 1, true),
            p.title .. ": " .. name .. " is not in the README's Metrics tables")
          assert.is_truthy(src:find('"' .. name .. '"', 1, true),
            p.title .. ": " .. name .. " is not named in runtime/")
        end
      end
    end
    assert.is_true(seen > 20)
  end)
end)
