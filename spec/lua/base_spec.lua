-- moongate.base and moongate.constants: the C types of the FFI boundary are declared
-- once, and the numbers shared with C come from the generated constants, by name.
local constants = require "moongate.constants"

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("*a")
  f:close()
  return s
end

local MODULES = { "base", "request", "runtime", "http", "throttle" }

describe("moongate.base", function()
  it("is the one module that declares the shared C types", function()
    for _, t in ipairs({ "mgw_req_t", "mgw_str_t", "mgw_kv_t", "mgw_hdr_t" }) do
      local found = {}
      for _, m in ipairs(MODULES) do
        for line in read("lua/moongate/" .. m .. ".lua"):gmatch("[^\n]+") do
          if line:find("typedef", 1, true) and line:find("[%s}]" .. t .. ";%s*$") then
            found[#found + 1] = m
          end
        end
      end
      assert.same({ "base" }, found, t .. " is declared in " .. table.concat(found, ", "))
    end
  end)

  it("declares mgw_ffi_runtime_now once, for runtime and http", function()
    local found = {}
    for _, m in ipairs(MODULES) do
      if read("lua/moongate/" .. m .. ".lua"):find("int mgw_ffi_runtime_now(", 1, true) then
        found[#found + 1] = m
      end
    end
    assert.same({ "base" }, found)
  end)

  it("hands the FFI modules the generated constants", function()
    assert.equal(constants, require("moongate.base").constants)
    assert.equal(constants.CONTEXT_VARIABLES, require("moongate.request").CONTEXT_VARIABLES)
  end)
end)

describe("moongate.constants", function()
  it("names the numbers C and Lua share", function()
    assert.equal(1, constants.HOOK.WAF)
    assert.equal(0, constants.CODE.OK)
    assert.equal(0, constants.REQUEST_FIELDS.method)
    assert.equal("requestId", constants.CONTEXT_VARIABLES[1])
  end)

  it("raises on a name C does not have, instead of handing Lua a nil", function()
    assert.has_error(function()
      return constants.HOOK.WAFF
    end, "moongate.constants: HOOK has no WAFF")
    assert.has_error(function()
      return constants.CODE.DENIED
    end, "moongate.constants: CODE has no DENIED")
  end)

  it("has the C layout of every struct the modules declare in ffi.cdef again", function()
    local ffi = require "ffi"
    require "moongate.base" -- mgw_str_t, mgw_kv_t, mgw_hdr_t, mgw_lslot_t
    require "moongate.throttle" -- mgw_ffi_limit_t
    require "moongate.http" -- mgw_ffi_http_params_t, mgw_ffi_http_result_t
    local n = 0
    for name, c in pairs(constants.LAYOUT) do
      assert.equal(c.sizeof, ffi.sizeof(name), "sizeof " .. name)
      for field, offset in pairs(c.offsets) do
        assert.equal(offset, ffi.offsetof(name, field), name .. "." .. field .. " offset")
      end
      n = n + 1
    end
    assert.equal(7, n) -- mgw_str_t, mgw_kv_t, mgw_hdr_t, mgw_lslot_t, mgw_ffi_limit_t and the two http structs
  end)

  it("lists the gateway response types sorted by name", function()
    local sorted = {}
    for i, t in ipairs(constants.GATEWAY_RESPONSE_TYPES) do
      sorted[i] = t
    end
    table.sort(sorted)
    assert.same(sorted, constants.GATEWAY_RESPONSE_TYPES)
    assert.is_true(#sorted > 20)
  end)
end)
