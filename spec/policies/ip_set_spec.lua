-- policies/waf/ip_set.lua: CIDR matching (IPv4, IPv6, IPv4-mapped), and the rule
-- as a web ACL runs it.
local testing = require "moongate.testing"
local ip_set = require "waf.ip_set"

local POLICY = "policies/waf/ip_set.lua"

describe("waf/ip_set", function()
  describe("parse_ip", function()
    it("reads IPv4 as ::ffff:a.b.c.d and IPv6 in every spelling", function()
      assert.same({ 0, 0, 0xffff, 0x0a010203 }, { ip_set.parse_ip("10.1.2.3") })
      assert.same({ 0, 0, 0, 1 }, { ip_set.parse_ip("::1") })
      assert.same({ ip_set.parse_ip("2001:db8:0:0:0:0:0:1") }, { ip_set.parse_ip("2001:DB8::1") })
      assert.same({ ip_set.parse_ip("::ffff:10.1.2.3") }, { ip_set.parse_ip("10.1.2.3") })
      assert.same({ ip_set.parse_ip("fe80::1") }, { ip_set.parse_ip("fe80::1%eth0") })
      assert.same({ ip_set.parse_ip("::1") }, { ip_set.parse_ip("[::1]") })
    end)

    it("rejects what is not an address", function()
      for _, s in ipairs({ "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04x", "1::2::3", ":::",
        "1:2:3:4:5:6:7:8:9", "12345::", "g::1", ":1::", "1:" }) do
        assert.is_nil(ip_set.parse_ip(s), s)
      end
    end)
  end)

  describe("matches", function()
    local function blocks(list)
      return ip_set.prepare({ cidrs = list }).blocks
    end

    it("matches IPv4 blocks, single addresses and their IPv4-mapped form", function()
      local b = blocks({ "10.0.0.0/8", "192.0.2.7" })
      assert.is_true(ip_set.matches(b, "10.255.255.255"))
      assert.is_true(ip_set.matches(b, "::ffff:10.0.0.1"))
      assert.is_true(ip_set.matches(b, "192.0.2.7"))
      assert.is_false(ip_set.matches(b, "192.0.2.8"))
      assert.is_false(ip_set.matches(b, "11.0.0.0"))
      assert.is_false(ip_set.matches(b, "not an ip"))
    end)

    it("matches IPv6 blocks on any prefix length", function()
      local b = blocks({ "2001:db8::/32", "fe80::/10", "2001:db8:1:2:3:4:5:6/127" })
      assert.is_true(ip_set.matches(b, "2001:db8:ffff::1"))
      assert.is_false(ip_set.matches(b, "2001:db9::1"))
      assert.is_true(ip_set.matches(b, "febf::1"))
      assert.is_false(ip_set.matches(b, "fec0::1"))
      assert.is_false(ip_set.matches(blocks({ "2001:db8:1:2:3:4:5:6/127" }), "2001:db8:1:2:3:4:5:8"))
      assert.is_true(ip_set.matches(blocks({ "2001:db8:1:2:3:4:5:6/127" }), "2001:db8:1:2:3:4:5:7"))
      assert.is_true(ip_set.matches(blocks({ "::/0" }), "10.0.0.1"))
    end)

    it("refuses bad blocks when the configuration loads", function()
      assert.has_error(function() ip_set.prepare({ cidrs = { "10.0.0.0/33" } }) end,
        "cidrs[1]: prefix length above 32 in 10.0.0.0/33")
      assert.has_error(function() ip_set.prepare({ cidrs = { "10.0.0/8" } }) end,
        "cidrs[1]: invalid address in 10.0.0/8")
    end)
  end)

  describe("as a WAF rule", function()
    it("blocks a deny-listed client and lets others through", function()
      local rules = { { policy = POLICY, action = "block", config = { cidrs = { "203.0.113.0/24" } } } }
      local blocked = testing.waf(rules, testing.request{ source_ip = "203.0.113.9" })
      assert.same({ action = "BLOCK", status = 403, rule = "ip_set", counted = {} }, blocked)
      local allowed = testing.waf(rules, testing.request{ source_ip = "198.51.100.1" })
      assert.same({ action = "ALLOW", status = 200, counted = {} }, allowed)
    end)

    it("is an allow list with action allow and default_action block", function()
      local rules = { { policy = POLICY, action = "allow", config = { cidrs = { "2001:db8::/32" } } } }
      assert.equal(200, testing.waf(rules, testing.request{ source_ip = "2001:db8::5" }, "block").status)
      assert.equal(403, testing.waf(rules, testing.request{ source_ip = "2001:db9::5" }, "block").status)
    end)

    it("reads the first address of a header when configured", function()
      local conf = { cidrs = { "10.0.0.0/8" }, header = "x-forwarded-for" }
      local req = testing.request{ headers = { ["X-Forwarded-For"] = "10.1.1.1, 192.0.2.1" }, source_ip = "127.0.0.1" }
      assert.same({ match = true }, testing.inspect(POLICY, conf, req))
      assert.same({ match = false }, testing.inspect(POLICY, conf, testing.request{ source_ip = "10.0.0.1" }))
    end)

    it("validates its configuration", function()
      assert.has_error(function()
        testing.inspect(POLICY, { cidr = "10.0.0.0/8" }, testing.request{})
      end, "spec: config.cidr: unknown key (did you mean \"cidrs\"?)\nspec: config.cidrs: is required")
    end)
  end)
end)
