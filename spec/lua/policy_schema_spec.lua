-- Policy schemas (README "Writing policies", schema keywords): every keyword with and
-- without its optional parts, the messages a bad config gets, and the messages a
-- mistake in the schema itself gets: "FILE: schema.PATH: reason", never a Lua error.
local config = require "moongate.config"
local policy = require "moongate.policy"
local testing = require "moongate.testing"

local SOURCE, NAME = "conf/gateway.lua", "policies/p.lua"

-- Checks { x = v } against a record with the one field x = node: x's value, or nil
-- and the errors.
local function field(node, v)
  local out, errs = config.check({ type = "record", fields = { x = node } }, { x = v }, "config", SOURCE, NAME)
  if out then
    return out.x
  end
  return nil, errs
end

local function accepts(node, v, want)
  local out, errs = field(node, v)
  assert.is_nil(errs)
  if want == nil then
    want = v
  end
  assert.same(want, out)
end

-- reason: the message for config.x (or a list of "PATH: reason" below config).
local function rejects(node, v, reason)
  local out, errs = field(node, v)
  assert.is_nil(out)
  local want = {}
  for i, r in ipairs(type(reason) == "table" and reason or { reason }) do
    want[i] = SOURCE .. ": config." .. (type(reason) == "table" and r or "x: " .. r)
  end
  assert.same(want, errs)
end

-- A mistake in the schema: each message is "PATH below schema.fields.x: reason".
local function bad_schema(node, reasons)
  local out, errs = field(node, nil)
  assert.is_nil(out)
  local want = {}
  for i, r in ipairs(type(reasons) == "table" and reasons or { reasons }) do
    want[i] = NAME .. ": schema.fields.x" .. r
  end
  assert.same(want, errs)
end

describe("policy schemas", function()
  describe("integer", function()
    it("needs no bounds", function()
      accepts({ type = "integer" }, 42)
      accepts({ type = "integer" }, -7)
      accepts({ type = "integer" }, nil)
      rejects({ type = "integer" }, 1.5, "must be an integer, got 1.5")
      rejects({ type = "integer" }, "3", 'must be an integer, got "3"')
      rejects({ type = "integer" }, math.huge, "must be an integer, got inf")
      rejects({ type = "integer" }, 0 / 0, "must be an integer, got nan")
    end)

    it("takes between, or any of above / at_least and at_most", function()
      accepts({ type = "integer", between = { 1, 3 } }, 3)
      rejects({ type = "integer", between = { 1, 3 } }, 4, "must be an integer between 1 and 3, got 4")
      accepts({ type = "integer", above = 0 }, 1)
      rejects({ type = "integer", above = 0 }, 0, "must be an integer greater than 0, got 0")
      accepts({ type = "integer", at_least = 0 }, 0)
      rejects({ type = "integer", at_least = 0 }, -1, "must be an integer at least 0, got -1")
      accepts({ type = "integer", at_most = 10 }, -100)
      rejects({ type = "integer", at_most = 10 }, 11, "must be an integer at most 10, got 11")
      rejects({ type = "integer", at_least = 1, at_most = 9 }, 10, "must be an integer at least 1 and at most 9, got 10")
      rejects({ type = "integer", above = 1, at_most = 9 }, 1, "must be an integer greater than 1 and at most 9, got 1")
    end)

    it("reports bad bounds in the schema", function()
      bad_schema({ type = "integer", between = { 1 } }, ".between: must be a list of two numbers { low, high }, got another table")
      bad_schema({ type = "integer", between = { 1, 2, 3 } }, ".between: must be a list of two numbers { low, high }, got another table")
      bad_schema({ type = "integer", between = { "a", 2 } }, ".between: must be a list of two numbers { low, high }, got another table")
      bad_schema({ type = "integer", between = 5 }, ".between: must be a list of two numbers { low, high }, got 5")
      bad_schema({ type = "integer", between = { 5, 1 } }, ".between: must be { low, high } with low <= high, got { 5, 1 }")
      bad_schema({ type = "integer", between = { 1, 5 }, at_most = 3 }, ": between cannot be combined with above, at_least or at_most")
      bad_schema({ type = "integer", above = 1, at_least = 1 }, ": above and at_least cannot be combined")
      bad_schema({ type = "integer", at_least = 5, at_most = 1 }, ": the low bound 5 is above at_most 1")
      bad_schema({ type = "integer", at_most = "10" }, '.at_most: must be a number, got "10"')
      bad_schema({ type = "integer", betwen = { 1, 2 } }, '.betwen: unknown key (did you mean "between"?)')
    end)
  end)

  describe("number", function()
    it("needs no bounds", function()
      accepts({ type = "number" }, 0.25)
      accepts({ type = "number" }, -1e9)
      rejects({ type = "number" }, "1", 'must be a number, got "1"')
      rejects({ type = "number" }, -math.huge, "must be a number, got -inf")
    end)

    it("takes between, or any of above / at_least and at_most", function()
      accepts({ type = "number", between = { 0, 1 } }, 0.5)
      rejects({ type = "number", between = { 0, 1 } }, 1.5, "must be a number between 0 and 1, got 1.5")
      rejects({ type = "number", above = 0 }, 0, "must be a number greater than 0, got 0")
      rejects({ type = "number", at_least = 0.5 }, 0.25, "must be a number at least 0.5, got 0.25")
      rejects({ type = "number", at_most = 1 }, 1.5, "must be a number at most 1, got 1.5")
      rejects({ type = "number", above = 0, at_most = 1 }, 2, "must be a number greater than 0 and at most 1, got 2")
    end)

    it("reports bad bounds in the schema", function()
      bad_schema({ type = "number", between = { 0 } }, ".between: must be a list of two numbers { low, high }, got another table")
      bad_schema({ type = "number", above = 2, at_most = 1 }, ": the low bound 2 is above at_most 1")
      bad_schema({ type = "number", above = 0 / 0 }, ".above: must be a number, got nan")
    end)
  end)

  describe("boolean", function()
    it("takes true and false only", function()
      accepts({ type = "boolean" }, false)
      rejects({ type = "boolean" }, "yes", 'must be a boolean, got "yes"')
      bad_schema({ type = "boolean", one_of = { true } }, '.one_of: unknown key')
    end)
  end)

  describe("string", function()
    it("needs nothing but its type", function()
      accepts({ type = "string" }, "")
      rejects({ type = "string" }, 5, "must be a string, got 5")
    end)

    it("takes one_of, non_empty and max_len", function()
      accepts({ type = "string", one_of = { "a", "b" } }, "b")
      rejects({ type = "string", one_of = { "alpha", "beta" } }, "alhpa",
        'must be one of "alpha", "beta", got "alhpa" (did you mean "alpha"?)')
      rejects({ type = "string", non_empty = true }, "", "must not be empty")
      accepts({ type = "string", non_empty = false }, "")
      rejects({ type = "string", max_len = 3 }, "abcd", "must be at most 3 bytes, got 4")
      accepts({ type = "string", max_len = 3 }, "abc")
    end)

    it("takes a pattern, with or without its message", function()
      accepts({ type = "string", pattern = "^%d+$" }, "123")
      rejects({ type = "string", pattern = "^%d+$" }, "12a", 'must match the pattern "^%d+$", got "12a"')
      rejects({ type = "string", pattern = "^%d+$", pattern_message = "digits only" }, "x", "digits only")
    end)

    it("takes check and normalize functions", function()
      local function odd_length(v)
        return #v % 2 == 0 and "must have an odd length" or nil
      end
      accepts({ type = "string", check = odd_length }, "abc")
      rejects({ type = "string", check = odd_length }, "ab", "must have an odd length")
      accepts({ type = "string", normalize = string.upper }, "abc", "ABC")
    end)

    it("reports bad keywords in the schema", function()
      bad_schema({ type = "string", one_of = {} }, ".one_of: must not be empty")
      bad_schema({ type = "string", one_of = { "a", 1 } }, ".one_of[2]: must be a string, got 1")
      bad_schema({ type = "string", pattern = "[a-" }, ".pattern: invalid Lua pattern: malformed pattern (missing ']')")
      bad_schema({ type = "string", max_len = -1 }, ".max_len: must be an integer at least 0, got -1")
      bad_schema({ type = "string", check = "odd" }, '.check: must be a function, got "odd"')
      bad_schema({ type = "string", normalize = true }, ".normalize: must be a function, got true")
      bad_schema({ type = "string", between = { 1, 2 } }, ".between: unknown key")
    end)
  end)

  describe("common keywords", function()
    it("required, default and description", function()
      rejects({ type = "string", required = true }, nil, "is required")
      accepts({ type = "string", required = false }, nil)
      accepts({ type = "integer", default = 3 }, nil, 3)
      accepts({ type = "integer", default = 3 }, 4)
      accepts({ type = "list", default = { "a" } }, nil, { "a" })
      accepts({ type = "string", description = "a name" }, "x")
    end)

    it("check on any type", function()
      local function even(v)
        return v % 2 == 1 and "must be even" or nil
      end
      rejects({ type = "integer", check = even }, 3, "must be even")
      accepts({ type = "integer", check = even }, 4)
      local function one_of_two(v)
        return (v.a == nil) == (v.b == nil) and 'needs exactly one of "a" and "b"' or nil
      end
      local rec = { type = "record", check = one_of_two,
        fields = { a = { type = "string" }, b = { type = "string" } } }
      accepts(rec, { a = "x" })
      rejects(rec, { a = "x", b = "y" }, 'needs exactly one of "a" and "b"')
    end)

    it("reports bad common keywords and defaults in the schema", function()
      bad_schema({ type = "integer", required = "yes" }, '.required: must be a boolean, got "yes"')
      bad_schema({ type = "integer", description = 5 }, ".description: must be a string, got 5")
      bad_schema({ type = "integer", default = "x" }, '.default: must be an integer, got "x"')
      bad_schema({ type = "integer", between = { 1, 3 }, default = 7 }, ".default: must be an integer between 1 and 3, got 7")
      bad_schema({ type = "record", fields = { size = { type = "integer" } }, default = { szie = 1 } },
        '.default.szie: unknown key (did you mean "size"?)')
      bad_schema({ type = "strnig" }, '.type: must be one of "boolean", "custom", "integer", "list", "map", "number", '
        .. '"record", "string", "variant", got "strnig" (did you mean "string"?)')
      bad_schema({ description = "no type" }, ".type: is required")
      bad_schema(5, ": must be a table, got 5")
    end)
  end)

  describe("record", function()
    it("takes fields, required or with defaults, and nothing else", function()
      local rec = { type = "record", fields = {
        name = { type = "string", required = true },
        size = { type = "integer", default = 1 },
      } }
      accepts(rec, { name = "a" }, { name = "a", size = 1 })
      rejects(rec, { size = 2 }, { "x.name: is required" })
      rejects(rec, { name = "a", nmae = "b" }, { 'x.nmae: unknown key (did you mean "name"?)' })
      rejects(rec, "a", 'must be a table, got "a"')
      accepts({ type = "record", fields = {} }, {})
    end)

    it("reports a record without fields, or a bad field", function()
      bad_schema({ type = "record" }, ".fields: is required")
      bad_schema({ type = "record", fields = { a = { type = "integer", between = {} } } },
        ".fields.a.between: must be a list of two numbers { low, high }, got another table")
      bad_schema({ type = "record", fields = { "a" } },
        { ".fields[1]: key must be a string, got 1", '.fields[1]: must be a table, got "a"' })
    end)
  end)

  describe("map", function()
    it("needs no keys or values schema", function()
      accepts({ type = "map" }, { a = 1, b = { 2 } })
      rejects({ type = "map" }, { 1 }, { "x[1]: key must be a string, got 1" })
    end)

    it("takes keys, values, non_empty and max_entries", function()
      local m = { type = "map", keys = { type = "string", pattern = "^%l+$" }, values = { type = "integer" } }
      accepts(m, { ab = 1 })
      rejects(m, { Ab = 1 }, { 'x.Ab: must match the pattern "^%l+$", got "Ab"' })
      rejects(m, { ab = "1" }, { 'x.ab: must be an integer, got "1"' })
      rejects({ type = "map", non_empty = true }, {}, "must not be empty")
      rejects({ type = "map", max_entries = 1 }, { a = 1, b = 2 }, "must have at most 1 entries, got 2")
    end)

    it("reports keys that are not strings and bad nodes in the schema", function()
      bad_schema({ type = "map", keys = { type = "integer" } }, '.keys.type: must be "string": map keys are strings, got "integer"')
      bad_schema({ type = "map", values = { type = "number", above = "0" } }, '.values.above: must be a number, got "0"')
      bad_schema({ type = "map", max_entries = 1.5 }, ".max_entries: must be an integer at least 0, got 1.5")
    end)
  end)

  describe("list", function()
    it("needs no elements schema", function()
      accepts({ type = "list" }, { 1, "a", true })
      rejects({ type = "list" }, { a = 1 }, 'must be a list, found key "a"')
    end)

    it("takes elements and non_empty", function()
      accepts({ type = "list", elements = { type = "string" } }, { "a", "b" })
      rejects({ type = "list", elements = { type = "string" } }, { "a", 2 }, { "x[2]: must be a string, got 2" })
      rejects({ type = "list", non_empty = true }, {}, "must not be empty")
    end)

    it("reports a bad elements node", function()
      bad_schema({ type = "list", elements = { type = "string", pattern = "(" } },
        ".elements.pattern: invalid Lua pattern: unfinished capture")
      bad_schema({ type = "list", elements = "string" }, '.elements: must be a table, got "string"')
    end)
  end)

  describe("variant", function()
    local v = { type = "variant", tag = "kind", variants = {
      a = { type = "record", fields = { kind = { type = "string" }, n = { type = "integer" } } },
      b = { type = "record", fields = { kind = { type = "string" } } },
    } }

    it("picks a record by its tag", function()
      accepts(v, { kind = "a", n = 1 })
      rejects(v, { n = 1 }, { "x.kind: is required" })
      rejects(v, { kind = "c" }, { 'x.kind: must be one of "a", "b", got "c"' })
      rejects(v, { kind = "b", n = 1 }, { "x.n: unknown key" })
    end)

    it("reports a missing tag or variants, and variants that cannot hold the tag", function()
      bad_schema({ type = "variant", variants = v.variants }, ".tag: is required")
      bad_schema({ type = "variant", tag = "kind" }, ".variants: is required")
      bad_schema({ type = "variant", tag = "kind", variants = { a = { type = "string" } } },
        '.variants.a.type: must be "record": a variant is a record, got "string"')
      bad_schema({ type = "variant", tag = "type", variants = { a = v.variants.a } },
        '.variants.a.fields: must have the tag field "type"')
    end)
  end)

  describe("custom", function()
    local function port(x)
      if type(x) ~= "number" then
        return nil, "must be a port"
      end
      return x
    end

    it("runs its validate function", function()
      accepts({ type = "custom", validate = port }, 80)
      rejects({ type = "custom", validate = port }, "80", "must be a port")
    end)

    it("needs validate", function()
      bad_schema({ type = "custom" }, ".validate: is required")
    end)

    it("reports an error raised by the policy's own function, naming the policy", function()
      local out, errs = field({ type = "custom", validate = function() error("boom", 0) end }, 1)
      assert.is_nil(out)
      assert.same({ SOURCE .. ": config: the schema of " .. NAME .. " raised an error: boom" }, errs)
    end)
  end)

  describe("the whole schema", function()
    it("must be a tree of tables", function()
      local node = { type = "list" }
      node.elements = node
      local out, errs = config.check({ type = "record", fields = { x = node } }, {}, "config", SOURCE, NAME)
      assert.is_nil(out)
      assert.same({ NAME .. ": schema.fields.x.elements: contains itself (a schema is a tree of tables)" }, errs)
    end)

    it("reports every mistake at once, each naming the file and the field", function()
      local out, errs = config.check({ type = "record", fields = {
        a = { type = "integer", betwen = { 1, 2 } },
        b = { type = "number", default = "x" },
      } }, {}, "config", SOURCE, NAME)
      assert.is_nil(out)
      assert.same({
        NAME .. ': schema.fields.a.betwen: unknown key (did you mean "between"?)',
        NAME .. ': schema.fields.b.default: must be a number, got "x"',
      }, errs)
    end)

    it("is checked by policy.check_conf, which names a schema that is no table", function()
      local out, errs = policy.check_conf({ schema = "x" }, {}, "config", SOURCE, NAME)
      assert.is_nil(out)
      assert.same({ NAME .. ": schema: must be a table, got string" }, errs)
      out, errs = policy.check_conf({ schema = { type = "record", fields = { n = { type = "integer" } } } },
        { n = 2 }, "config", SOURCE, NAME)
      assert.is_nil(errs)
      assert.same({ n = 2 }, out)
    end)
  end)

  describe("in the busted kit", function()
    local dir = os.tmpname()

    setup(function()
      os.remove(dir)
      os.execute("mkdir -p " .. dir)
    end)

    teardown(function()
      os.execute("rm -rf " .. dir)
      testing.reset()
    end)

    local function write(name, src)
      local path = dir .. "/" .. name
      local f = assert(io.open(path, "w"))
      f:write(src)
      f:close()
      return path
    end

    it("runs a policy whose schema has unbounded integer and number fields", function()
      local p = write("unbounded.lua", [[
return {
  schema = { type = "record", fields = {
    limit = { type = "integer", default = 5 },
    ratio = { type = "number" },
  } },
  inspect = function(req, conf) return conf.limit > 3 and conf.ratio == nil end,
}
]])
      local conf = testing.config(p, {})
      assert.same({ limit = 5 }, conf)
      assert.same({ limit = 7, ratio = 0.5 }, testing.config(p, { limit = 7, ratio = 0.5 }))
      assert.has_error(function() testing.config(p, { limit = 1.5 }) end,
        "spec: config.limit: must be an integer, got 1.5")
    end)

    it("raises a schema mistake naming the policy file and the field", function()
      local p = write("badschema.lua", [[
return {
  schema = { type = "record", fields = { limit = { type = "integer", between = { 10 } } } },
  inspect = function() return false end,
}
]])
      assert.has_error(function() testing.config(p, {}) end,
        p .. ": schema.fields.limit.between: must be a list of two numbers { low, high }, got another table")
    end)
  end)
end)
